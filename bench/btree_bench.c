/*
 * btree_bench: the cowfs B+tree side by side with LMDB, in the same run, on the same keys.
 *
 * Phases, each timed for both engines:
 *   random insert   N random keys in one transaction, then commit (durable: fsync/fdatasync)
 *   random lookup   the same N keys in another random order, every value verified
 *   ordered scan    one cursor pass over all N items, order, count and values verified
 *   seq insert      N ascending keys into a fresh file, one transaction, then commit
 *
 * Keys are cowfs keys (objectid, type 1, offset 0). LMDB gets the same key as 17 big-endian
 * bytes (objectid, type, offset), so memcmp order there equals bt_key_cmp order here. Values
 * are 16 bytes derived from the key, so every read can be checked.
 *
 * Fairness: both engines run on a file in --dir, buffered I/O, warm caches, durable commit
 * inside the timed region (LMDB: mdb_txn_commit with default flags; cowfs: bt_writeback then
 * bdev_flush). LMDB puts use MDB_NOOVERWRITE, the semantics of bt_insert; MDB_APPEND is not
 * used (cowfs has no append mode). Each engine's run is a forked child, so peak RSS is per
 * engine; runs alternate which engine goes first, and the table reports medians.
 *
 * A wrong answer from either engine (a missed lookup, a bad value, a scan out of order or with
 * the wrong item set, a failed structural check) aborts the bench with a reproducer: a
 * benchmark of a broken tree is worthless.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "bench/bench_util.h"
#include "fs/btree/btree.h"
#include "fs/btree/key.h"
#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "tests/support/memrefs.h"

#define KEY_TYPE 1
#define VALUE_LEN 16
#define LM_KEY_LEN 17
#define NODESIZE 16384u
#define TREE_OWNER 5
#define ALLOC_START (1ull << 20)        /* memrefs hands out blocks from 1 MiB up */
#define SUPER_OFFSET 65536ull           /* stand-in superblock, below ALLOC_START */
#define SUPER_BYTES 4096u
#define MIN_FILE_BYTES (4ull << 30)     /* image size and LMDB map size */
#define GOLDEN 0x9e3779b97f4a7c15ull

enum { ENG_COWFS, ENG_LMDB, NENGINES };
enum { PH_RAND_INSERT, PH_RAND_LOOKUP, PH_SCAN, PH_SEQ_INSERT, NPHASES };
enum { KEYS_RANDOM, KEYS_SEQ, NKINDS };

static const char *const engine_names[NENGINES] = { "cowfs", "LMDB" };
static const char *const phase_names[NPHASES] = {
	"random insert", "random lookup", "ordered scan", "seq insert",
};

struct opts {
	const char *dir;
	uint64_t n;
	uint64_t seed;
	int runs;
	bool check;     /* untimed structural check and cold re-read after the timed phases */
	bool keep;      /* keep the files of the last child */
};

/* What the children get (by fork), computed once in the parent. */
struct workload {
	uint64_t n, seed;
	uint64_t rand_base;            /* random key i = mix64(rand_base + (i + 1) * GOLDEN) */
	uint64_t perm_a, perm_c;       /* lookup j reads key (perm_a * j + perm_c) mod n */
	uint64_t file_bytes;
	uint64_t sum[NKINDS], xr[NKINDS];   /* expected item set: sum and xor of mix64(objectid) */
	char dir[PATH_MAX - 64];
	bool check;
	bool keep;
};

/* What a child sends back over its pipe. */
struct result {
	int ok;
	double secs[NPHASES];
	double commit_secs[NKINDS];   /* part of the insert phases spent committing */
	long maxrss_kb;
	uint64_t disk_bytes[NKINDS];  /* allocated bytes of the file after the phase */
	uint64_t height, nodes, leaves;   /* shape of the random tree */
	uint64_t dirty_bytes;         /* cowfs: dirty cache bytes at the random commit */
	uint64_t lookup_misses;       /* cowfs: cache misses during the lookup phase */
	long anon_kb, file_kb;        /* RSS split, sampled after the scan (random tree open) */
};

/* ---- small helpers ---- */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("btree_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* splitmix64's output function: a bijection on 64-bit integers. */
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * The i-th key of a kind. Random keys are the splitmix64 stream of the seed; since mix64 is a
 * bijection and i * GOLDEN (odd) is one too, the N keys are distinct.
 */
static inline uint64_t key_objectid(const struct workload *w, int kind, uint64_t i)
{
	if (kind == KEYS_SEQ)
		return i + 1;
	return mix64(w->rand_base + (i + 1) * GOLDEN);
}

/*
 * Lookup order: the j-th lookup reads key (perm_a * j + perm_c) mod n, an affine permutation
 * of [0, n) (perm_a < n, coprime with n). Stepped incrementally: no division in the loop.
 */
static inline uint64_t lookup_next(const struct workload *w, uint64_t i)
{
	i += w->perm_a;
	return i >= w->n ? i - w->n : i;
}

static inline void make_value(uint64_t objectid, uint8_t v[VALUE_LEN])
{
	uint64_t a = objectid ^ 0x5bd1e9955bd1e995ull, b = ~objectid * GOLDEN;

	memcpy(v, &a, 8);
	memcpy(v + 8, &b, 8);
}

static inline bool value_ok(uint64_t objectid, const void *data, size_t len)
{
	uint8_t v[VALUE_LEN];

	make_value(objectid, v);
	return len == VALUE_LEN && memcmp(v, data, VALUE_LEN) == 0;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void bench_path(char *out, size_t size, const char *dir, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static int remove_file(const char *path)
{
	if (unlink(path) != 0 && errno != ENOENT)
		return fail("unlink %s: %s", path, strerror(errno));
	return 0;
}

/* Current anonymous and file-backed RSS (LMDB's map counts as file-backed). */
static void sample_rss(struct result *r)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "RssAnon:", 8) == 0)
			r->anon_kb = strtol(line + 8, NULL, 10);
		else if (strncmp(line, "RssFile:", 8) == 0)
			r->file_kb = strtol(line + 8, NULL, 10);
	}
	fclose(f);
}

/* ---- scan verification, shared by both engines so both pay the same ---- */

struct scan_check {
	const char *what;
	uint64_t count, sum, xr;
	struct bt_key prev;
};

static int scan_item(struct scan_check *s, const struct bt_key *k, const void *data, size_t len)
{
	if (s->count && bt_key_cmp(&s->prev, k) >= 0)
		return fail("%s: item %" PRIu64 ": key (%#" PRIx64 ",%u,%" PRIu64 ") does not "
			    "follow (%#" PRIx64 ",%u,%" PRIu64 ")", s->what, s->count,
			    k->objectid, k->type, k->offset, s->prev.objectid, s->prev.type,
			    s->prev.offset);
	if (k->type != KEY_TYPE || k->offset != 0)
		return fail("%s: item %" PRIu64 ": unexpected key (%#" PRIx64 ",%u,%" PRIu64 ")",
			    s->what, s->count, k->objectid, k->type, k->offset);
	if (!value_ok(k->objectid, data, len))
		return fail("%s: item %" PRIu64 ": key %#" PRIx64 ": wrong value (len %zu)",
			    s->what, s->count, k->objectid, len);
	s->prev = *k;
	s->count++;
	s->sum += k->objectid;
	s->xr ^= mix64(k->objectid);
	return 0;
}

static int scan_done(const struct scan_check *s, const struct workload *w, int kind)
{
	if (s->count != w->n)
		return fail("%s: %" PRIu64 " items, expected %" PRIu64, s->what, s->count, w->n);
	if (s->sum != w->sum[kind] || s->xr != w->xr[kind])
		return fail("%s: %" PRIu64 " items in order, but not the inserted set", s->what,
			    s->count);
	return 0;
}

/* ---- cowfs ---- */

struct cow {
	char path[PATH_MAX];
	struct blockdev *bd;
	struct bcache *cache;
	struct memrefs *mr;
	struct bt_fs fs;
	struct bt_trans tx;
	struct btree t;
	unsigned reports;
};

static void cow_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct cow *c = arg;

	c->reports++;
	fprintf(stderr, "btree_bench: cowfs: %s: block %" PRIu64 ": %s\n", c->path, bytenr, msg);
}

static void cow_close(struct cow *c)
{
	if (c->cache)
		bcache_destroy(c->cache);
	if (c->bd)
		bdev_close(c->bd);
	memrefs_destroy(c->mr);
	c->cache = NULL;
	c->bd = NULL;
	c->mr = NULL;
}

/* Open `path` (a fresh sparse image when `create`), a cache over it and a fresh allocator. */
static int cow_open(struct cow *c, const char *path, uint64_t bytes, bool create)
{
	static const uint8_t fsid[16] = "cowfs-btreebench";
	struct bdev_opts bo = { .read_only = false, .direct = false, .queue_depth = 0 };
	int ret;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (create && make_image(path, bytes))
		return -1;
	ret = bdev_open(path, &bo, &c->bd);
	if (ret)
		return fail("cowfs: bdev_open %s: %s", path, strerror(-ret));
	ret = bcache_create(c->bd, BCACHE_DEFAULT_BYTES, &c->cache);
	if (ret) {
		cow_close(c);
		return fail("cowfs: bcache_create: %s", strerror(-ret));
	}
	c->mr = memrefs_create(ALLOC_START, bdev_size(c->bd), NODESIZE);
	if (!c->mr) {
		cow_close(c);
		return fail("cowfs: memrefs_create: out of memory");
	}
	c->fs.cache = c->cache;
	c->fs.nodesize = NODESIZE;
	memcpy(c->fs.fsid, fsid, sizeof(c->fs.fsid));
	c->fs.ops = &memrefs_ops;
	c->fs.ops_ctx = c->mr;
	c->fs.report = cow_report;
	c->fs.report_arg = c;
	c->tx.fs = &c->fs;
	c->tx.transid = 1;
	c->tx.error = 0;
	return 0;
}

/*
 * Commit, as the commit protocol will do it (blockdev.h): write back every dirty node, flush,
 * then write a superblock naming the new root and flush again. The superblock here is a
 * stand-in (fs/super does not exist yet), written so that cowfs pays the same second barrier
 * LMDB pays for its meta page.
 */
static int cow_commit(struct cow *c)
{
	static uint8_t super[SUPER_BYTES] __attribute__((aligned(BDEV_ALIGN)));
	int ret = bt_writeback(&c->fs);

	if (ret)
		return fail("cowfs: %s: bt_writeback: %s", c->path, strerror(-ret));
	ret = bdev_flush(c->bd);
	if (ret)
		return fail("cowfs: %s: bdev_flush: %s", c->path, strerror(-ret));
	memcpy(super, "cowfs-bench-sb\0", 16);
	put_le64(super + 16, c->tx.transid);
	put_le64(super + 24, c->t.root);
	put_le64(super + 32, c->t.root_gen);
	super[40] = c->t.level;
	ret = bdev_write(c->bd, SUPER_OFFSET, super, sizeof(super));
	if (ret)
		return fail("cowfs: %s: superblock write: %s", c->path, strerror(-ret));
	ret = bdev_flush(c->bd);
	if (ret)
		return fail("cowfs: %s: bdev_flush after superblock: %s", c->path,
			    strerror(-ret));
	memrefs_unpin(c->mr);
	c->tx.transid++;
	return 0;
}

static int cow_insert_phase(struct cow *c, const struct workload *w, int kind,
			    struct result *r, int phase)
{
	uint8_t v[VALUE_LEN];
	struct bt_key k = { 0, KEY_TYPE, 0 };
	double t0, t1;
	int ret;

	ret = bt_create(&c->tx, TREE_OWNER, &c->t);
	if (ret)
		return fail("cowfs: bt_create: %s", strerror(-ret));
	t0 = now();
	for (uint64_t i = 0; i < w->n; i++) {
		k.objectid = key_objectid(w, kind, i);
		make_value(k.objectid, v);
		ret = bt_insert(&c->tx, &c->t, &k, v, VALUE_LEN);
		if (ret)
			return fail("cowfs: %s insert %" PRIu64 " of %" PRIu64 ", key %#" PRIx64
				    ": %s", phase_names[phase], i, w->n, k.objectid,
				    strerror(-ret));
	}
	if (kind == KEYS_RANDOM)
		r->dirty_bytes = bcache_dirty_bytes(c->cache);
	t1 = now();
	if (cow_commit(c))
		return -1;
	r->secs[phase] = now() - t0;
	r->commit_secs[kind] = now() - t1;
	return 0;
}

static int cow_lookup_phase(struct cow *c, const struct workload *w, struct result *r)
{
	uint8_t buf[VALUE_LEN];
	struct bt_key k = { 0, KEY_TYPE, 0 };
	struct bcache_stats before, after;
	uint32_t len;
	double t0;
	int ret;

	bcache_get_stats(c->cache, &before);
	t0 = now();
	for (uint64_t j = 0, i = w->perm_c; j < w->n; j++, i = lookup_next(w, i)) {
		k.objectid = key_objectid(w, KEYS_RANDOM, i);
		ret = bt_lookup(&c->t, &k, buf, sizeof(buf), &len);
		if (ret)
			return fail("cowfs: lookup %" PRIu64 ": key %#" PRIx64 " (insert #%" PRIu64
				    "): %s", j, k.objectid, i, strerror(-ret));
		if (!value_ok(k.objectid, buf, len))
			return fail("cowfs: lookup %" PRIu64 ": key %#" PRIx64 " (insert #%" PRIu64
				    "): wrong value (len %u)", j, k.objectid, i, len);
	}
	r->secs[PH_RAND_LOOKUP] = now() - t0;
	bcache_get_stats(c->cache, &after);
	r->lookup_misses = after.misses - before.misses;
	return 0;
}

/* Scan `t` from the first key, checking every item against the workload. */
static int cow_scan(struct btree *t, const struct workload *w, int kind, const char *what)
{
	struct scan_check s = { .what = what };
	struct bt_cursor cur;
	struct bt_key start = BT_KEY_MIN, k;
	const void *data;
	uint32_t len;
	int ret;

	bt_cursor_init(&cur, t);
	ret = bt_cursor_seek(&cur, &start, BT_SEEK_GE);
	while (ret == 0) {
		bt_cursor_item(&cur, &k, &data, &len);
		if (scan_item(&s, &k, data, len)) {
			bt_cursor_release(&cur);
			return -1;
		}
		ret = bt_cursor_next(&cur);
	}
	bt_cursor_release(&cur);
	if (ret != -ENOENT)
		return fail("%s: cursor after %" PRIu64 " items: %s", what, s.count,
			    strerror(-ret));
	return scan_done(&s, w, kind);
}

static int cow_scan_phase(struct cow *c, const struct workload *w, struct result *r)
{
	double t0 = now();

	if (cow_scan(&c->t, w, KEYS_RANDOM, "cowfs: scan"))
		return -1;
	r->secs[PH_SCAN] = now() - t0;
	sample_rss(r);
	return 0;
}

/* Untimed: the tree's own invariant check, then its shape (into `r` if not NULL). */
static int cow_check_tree(struct cow *c, const struct workload *w, const char *what,
			  struct result *r)
{
	struct bt_stats st;
	int ret = bt_check(&c->t);

	if (ret || c->reports)
		return fail("cowfs: %s: bt_check: %s (%u reports)", what,
			    ret ? strerror(-ret) : "ok", c->reports);
	ret = bt_stats(&c->t, &st);
	if (ret)
		return fail("cowfs: %s: bt_stats: %s", what, strerror(-ret));
	if (st.items != w->n)
		return fail("cowfs: %s: bt_stats counts %" PRIu64 " items, expected %" PRIu64,
			    what, st.items, w->n);
	if (r) {
		r->height = st.height;
		r->nodes = st.nodes;
		r->leaves = st.leaves;
	}
	return 0;
}

/* Untimed: close everything, reopen the image cold and scan the committed tree from disk. */
static int cow_reopen_scan(struct cow *c, const struct workload *w, int kind)
{
	uint64_t root = c->t.root, gen = c->t.root_gen;
	uint8_t level = c->t.level;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", c->path);
	cow_close(c);
	if (cow_open(c, path, 0, false))
		return -1;
	bt_open(&c->t, &c->fs, TREE_OWNER, root, gen, level);
	if (cow_scan(&c->t, w, kind, "cowfs: scan after reopen"))
		return -1;
	return cow_check_tree(c, w, "after reopen", NULL);
}

static int cow_run(const struct workload *w, struct result *r)
{
	char path[PATH_MAX];
	struct cow c;
	int ret = -1;

	bench_path(path, sizeof(path), w->dir, "cowfs-random.img");
	if (cow_open(&c, path, w->file_bytes, true))
		return -1;
	if (cow_insert_phase(&c, w, KEYS_RANDOM, r, PH_RAND_INSERT) ||
	    cow_lookup_phase(&c, w, r) || cow_scan_phase(&c, w, r) ||
	    (w->check && cow_check_tree(&c, w, "random tree", r)) ||
	    (w->check && cow_reopen_scan(&c, w, KEYS_RANDOM)))
		goto out;
	cow_close(&c);
	r->disk_bytes[KEYS_RANDOM] = disk_bytes(path);
	if (!w->keep && remove_file(path))
		return -1;

	bench_path(path, sizeof(path), w->dir, "cowfs-seq.img");
	if (cow_open(&c, path, w->file_bytes, true))
		return -1;
	if (cow_insert_phase(&c, w, KEYS_SEQ, r, PH_SEQ_INSERT) ||
	    (w->check && cow_check_tree(&c, w, "seq tree", NULL)) ||
	    (w->check && cow_reopen_scan(&c, w, KEYS_SEQ)))
		goto out;
	r->disk_bytes[KEYS_SEQ] = disk_bytes(path);
	ret = 0;
out:
	cow_close(&c);
	return ret;
}

/* ---- LMDB ---- */

struct lm {
	char path[PATH_MAX];
	MDB_env *env;
	MDB_dbi dbi;
};

static void lm_key(uint8_t out[LM_KEY_LEN], uint64_t objectid)
{
	put_be64(out, objectid);
	out[8] = KEY_TYPE;
	put_be64(out + 9, 0);
}

static int lm_remove(const char *path)
{
	char lock[PATH_MAX + 8];

	snprintf(lock, sizeof(lock), "%s-lock", path);
	return remove_file(path) || remove_file(lock) ? -1 : 0;
}

static void lm_close(struct lm *l)
{
	if (l->env)
		mdb_env_close(l->env);
	l->env = NULL;
}

static int lm_open(struct lm *l, const char *path, uint64_t mapsize)
{
	MDB_txn *txn;
	int ret;

	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "%s", path);
	ret = mdb_env_create(&l->env);
	if (ret)
		return fail("LMDB: mdb_env_create: %s", mdb_strerror(ret));
	ret = mdb_env_set_mapsize(l->env, (size_t)mapsize);
	if (ret)
		goto err;
	ret = mdb_env_open(l->env, path, MDB_NOSUBDIR, 0644);
	if (ret)
		goto err;
	ret = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (ret)
		goto err;
	ret = mdb_dbi_open(txn, NULL, 0, &l->dbi);
	if (ret) {
		mdb_txn_abort(txn);
		goto err;
	}
	ret = mdb_txn_commit(txn);
	if (ret)
		goto err;
	return 0;
err:
	lm_close(l);
	return fail("LMDB: open %s: %s", path, mdb_strerror(ret));
}

static int lm_insert_phase(struct lm *l, const struct workload *w, int kind, struct result *r,
			   int phase)
{
	uint8_t kb[LM_KEY_LEN], v[VALUE_LEN];
	MDB_val key = { LM_KEY_LEN, kb }, val = { VALUE_LEN, v };
	MDB_txn *txn;
	double t0, t1;
	int ret;

	t0 = now();
	ret = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (ret)
		return fail("LMDB: mdb_txn_begin: %s", mdb_strerror(ret));
	for (uint64_t i = 0; i < w->n; i++) {
		uint64_t id = key_objectid(w, kind, i);
		lm_key(kb, id);
		make_value(id, v);
		ret = mdb_put(txn, l->dbi, &key, &val, MDB_NOOVERWRITE);
		if (ret) {
			mdb_txn_abort(txn);
			return fail("LMDB: %s insert %" PRIu64 " of %" PRIu64 ", key %#" PRIx64
				    ": %s", phase_names[phase], i, w->n, id, mdb_strerror(ret));
		}
	}
	t1 = now();
	ret = mdb_txn_commit(txn);
	if (ret)
		return fail("LMDB: mdb_txn_commit: %s", mdb_strerror(ret));
	r->secs[phase] = now() - t0;
	r->commit_secs[kind] = now() - t1;
	return 0;
}

static int lm_lookup_phase(struct lm *l, const struct workload *w, struct result *r)
{
	uint8_t kb[LM_KEY_LEN];
	MDB_val key = { LM_KEY_LEN, kb }, val;
	MDB_txn *txn;
	double t0 = now();
	int ret;

	ret = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
	if (ret)
		return fail("LMDB: mdb_txn_begin(RDONLY): %s", mdb_strerror(ret));
	for (uint64_t j = 0, i = w->perm_c; j < w->n; j++, i = lookup_next(w, i)) {
		uint64_t id = key_objectid(w, KEYS_RANDOM, i);
		lm_key(kb, id);
		ret = mdb_get(txn, l->dbi, &key, &val);
		if (ret || !value_ok(id, val.mv_data, val.mv_size)) {
			mdb_txn_abort(txn);
			return fail("LMDB: lookup %" PRIu64 ": key %#" PRIx64 " (insert #%" PRIu64
				    "): %s", j, id, i, ret ? mdb_strerror(ret) : "wrong value");
		}
	}
	mdb_txn_abort(txn);
	r->secs[PH_RAND_LOOKUP] = now() - t0;
	return 0;
}

static int lm_scan(struct lm *l, const struct workload *w, int kind, const char *what)
{
	struct scan_check s = { .what = what };
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val key, val;
	struct bt_key k;
	int ret;

	ret = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
	if (ret)
		return fail("%s: mdb_txn_begin(RDONLY): %s", what, mdb_strerror(ret));
	ret = mdb_cursor_open(txn, l->dbi, &cur);
	if (ret) {
		mdb_txn_abort(txn);
		return fail("%s: mdb_cursor_open: %s", what, mdb_strerror(ret));
	}
	for (ret = mdb_cursor_get(cur, &key, &val, MDB_FIRST); ret == 0;
	     ret = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != LM_KEY_LEN) {
			ret = fail("%s: item %" PRIu64 ": key of %zu bytes", what, s.count,
				   key.mv_size);
			break;
		}
		k.objectid = get_be64(key.mv_data);
		k.type = ((const uint8_t *)key.mv_data)[8];
		k.offset = get_be64((const uint8_t *)key.mv_data + 9);
		if (scan_item(&s, &k, val.mv_data, val.mv_size)) {
			ret = -1;
			break;
		}
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret == -1)
		return -1;
	if (ret != MDB_NOTFOUND)
		return fail("%s: cursor after %" PRIu64 " items: %s", what, s.count,
			    mdb_strerror(ret));
	return scan_done(&s, w, kind);
}

static int lm_scan_phase(struct lm *l, const struct workload *w, struct result *r)
{
	double t0 = now();

	if (lm_scan(l, w, KEYS_RANDOM, "LMDB: scan"))
		return -1;
	r->secs[PH_SCAN] = now() - t0;
	sample_rss(r);
	return 0;
}

/* Untimed: entry count and shape. */
static int lm_check(struct lm *l, const struct workload *w, struct result *r)
{
	MDB_txn *txn;
	MDB_stat st;
	int ret = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);

	if (ret)
		return fail("LMDB: mdb_txn_begin(RDONLY): %s", mdb_strerror(ret));
	ret = mdb_stat(txn, l->dbi, &st);
	mdb_txn_abort(txn);
	if (ret)
		return fail("LMDB: mdb_stat: %s", mdb_strerror(ret));
	if (st.ms_entries != w->n)
		return fail("LMDB: %zu entries, expected %" PRIu64, st.ms_entries, w->n);
	if (r) {
		r->height = st.ms_depth;
		r->nodes = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
		r->leaves = st.ms_leaf_pages;
	}
	return 0;
}

/* Untimed, mirroring cowfs: close, reopen and scan. */
static int lm_reopen_scan(struct lm *l, const struct workload *w, int kind)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", l->path);
	lm_close(l);
	if (lm_open(l, path, w->file_bytes))
		return -1;
	return lm_scan(l, w, kind, "LMDB: scan after reopen");
}

static int lm_run(const struct workload *w, struct result *r)
{
	char path[PATH_MAX];
	struct lm l;
	int ret = -1;

	bench_path(path, sizeof(path), w->dir, "lmdb-random.mdb");
	if (lm_remove(path) || lm_open(&l, path, w->file_bytes))
		return -1;
	if (lm_insert_phase(&l, w, KEYS_RANDOM, r, PH_RAND_INSERT) ||
	    lm_lookup_phase(&l, w, r) || lm_scan_phase(&l, w, r) ||
	    (w->check && lm_check(&l, w, r)) ||
	    (w->check && lm_reopen_scan(&l, w, KEYS_RANDOM)))
		goto out;
	lm_close(&l);
	r->disk_bytes[KEYS_RANDOM] = disk_bytes(path);
	if (!w->keep && lm_remove(path))
		return -1;

	bench_path(path, sizeof(path), w->dir, "lmdb-seq.mdb");
	if (lm_remove(path) || lm_open(&l, path, w->file_bytes))
		return -1;
	if (lm_insert_phase(&l, w, KEYS_SEQ, r, PH_SEQ_INSERT) ||
	    (w->check && lm_check(&l, w, NULL)) ||
	    (w->check && lm_reopen_scan(&l, w, KEYS_SEQ)))
		goto out;
	r->disk_bytes[KEYS_SEQ] = disk_bytes(path);
	ret = 0;
out:
	lm_close(&l);
	return ret;
}

/* ---- children ---- */

static void remove_files(const struct workload *w)
{
	static const char *const names[] = {
		"cowfs-random.img", "cowfs-seq.img", "lmdb-random.mdb", "lmdb-seq.mdb",
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		bench_path(path, sizeof(path), w->dir, names[i]);
		if (i < 2)
			remove_file(path);
		else
			lm_remove(path);
	}
}

struct engine_arg {
	int engine;
	const struct workload *w;
};

/* In the child: run one engine into the result the parent will read. */
static int engine_child(const void *arg, void *res)
{
	const struct engine_arg *a = arg;
	struct result *r = res;
	int ret = a->engine == ENG_COWFS ? cow_run(a->w, r) : lm_run(a->w, r);

	r->ok = ret == 0;
	return ret;
}

static int run_engine(int engine, const struct workload *w, struct result *r)
{
	struct engine_arg a = { engine, w };
	long rss = 0;

	if (run_child(engine_names[engine], engine_child, &a, r, sizeof(*r), &rss) != 0)
		return -1;
	r->maxrss_kb = rss;
	return 0;
}

/* ---- report ---- */

static double median(const double *v, int n)
{
	double s[n];

	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

static void print_run(int run, int runs, int engine, const struct workload *w,
		      const struct result *r)
{
	printf("run %d/%d %-5s:", run + 1, runs, engine_names[engine]);
	for (int p = 0; p < NPHASES; p++)
		printf(" %s %.3fs", phase_names[p], r->secs[p]);
	printf(" | commits %.3fs %.3fs | peak RSS %.1f MiB (after scan: anon %.1f, file %.1f)\n",
	       r->commit_secs[KEYS_RANDOM], r->commit_secs[KEYS_SEQ],
	       (double)r->maxrss_kb / 1024.0, (double)r->anon_kb / 1024.0,
	       (double)r->file_kb / 1024.0);
	if (w->check)
		printf("           random tree: height %" PRIu64 ", %" PRIu64 " nodes (%" PRIu64
		       " leaves, %.1f items/leaf), on disk %.1f MiB; seq file %.1f MiB",
		       r->height, r->nodes, r->leaves,
		       r->leaves ? (double)w->n / (double)r->leaves : 0.0,
		       mib(r->disk_bytes[KEYS_RANDOM]), mib(r->disk_bytes[KEYS_SEQ]));
	else
		printf("           on disk: random %.1f MiB, seq %.1f MiB",
		       mib(r->disk_bytes[KEYS_RANDOM]), mib(r->disk_bytes[KEYS_SEQ]));
	if (engine == ENG_COWFS)
		printf("; dirty at commit %.1f MiB; cache misses in lookups %" PRIu64,
		       mib(r->dirty_bytes), r->lookup_misses);
	printf("\n");
	fflush(stdout);
}

static void print_machine(void)
{
	struct utsname u;
	char date[64] = "?";
	time_t t = time(NULL);
	struct tm tm;
	int maj, min, pat;

	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "?");
	if (gmtime_r(&t, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	mdb_version(&maj, &min, &pat);
	printf("machine: %ld cpus, %.1f GiB RAM, %s %s %s, %s, LMDB %d.%d.%d\n",
	       sysconf(_SC_NPROCESSORS_ONLN),
	       (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1 << 30),
	       u.sysname, u.release, u.machine, date, maj, min, pat);
}

static void print_table(const struct workload *w, int runs, double ops[][NPHASES][64],
			const long *rss_kb)
{
	bool all_ok = true;

	printf("\nmedian of %d runs, N=%" PRIu64 ", seed=%" PRIu64 ", 17-byte keys, %d-byte "
	       "values\n", runs, w->n, w->seed, VALUE_LEN);
	print_machine();
	printf("%-16s %14s %14s %8s\n", "phase", "cowfs ops/s", "LMDB ops/s", "ratio");
	for (int p = 0; p < NPHASES; p++) {
		double c = median(ops[ENG_COWFS][p], runs), l = median(ops[ENG_LMDB][p], runs);
		double ratio = l > 0 ? c / l : 0;
		bool ok = ratio >= 0.5;

		all_ok &= ok;
		printf("%-16s %14.0f %14.0f %8.2f%s\n", phase_names[p], c, l, ratio,
		       ok ? "" : "  (below 0.5 goal)");
	}
	printf("%-16s %14.1f %14.1f %8.2f\n", "peak RSS MiB", (double)rss_kb[ENG_COWFS] / 1024.0,
	       (double)rss_kb[ENG_LMDB] / 1024.0,
	       rss_kb[ENG_LMDB] ? (double)rss_kb[ENG_COWFS] / (double)rss_kb[ENG_LMDB] : 0.0);
	printf("goal (every ratio >= 0.5): %s\n", all_ok ? "met" : "NOT met");
}

/* ---- setup ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: btree_bench [--dir DIR] [--n N] [--seed S] [--runs R] [--no-check] "
		   "[--keep]\n"
		   "  --dir DIR    where the image and LMDB files go (created; default .)\n"
		   "  --n N        items per phase (default 1000000)\n"
		   "  --seed S     PRNG seed for keys and lookup order (default 1)\n"
		   "  --runs R     runs per engine, alternating order; medians reported "
		   "(default 3, max 64)\n"
		   "  --no-check   skip the untimed structural check and cold re-read\n"
		   "  --keep       keep the files of the last run\n");
}

static int parse_u64(const char *s, const char *name, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0' || s[0] == '-')
		return fail("bad %s '%s'", name, s);
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "n", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "no-check", no_argument, NULL, 'C' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	*o = (struct opts){ .dir = ".", .n = 1000000, .seed = 1, .runs = 3, .check = true };
	while ((ch = getopt_long(argc, argv, "d:n:s:r:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': o->dir = optarg; break;
		case 'n':
			if (parse_u64(optarg, "--n", &o->n))
				return -1;
			if (o->n == 0 || o->n > (1ull << 32))
				return fail("--n must be in 1..2^32");
			break;
		case 's':
			if (parse_u64(optarg, "--seed", &o->seed))
				return -1;
			break;
		case 'r':
			if (parse_u64(optarg, "--runs", &v))
				return -1;
			if (v < 1 || v > 64)
				return fail("--runs must be in 1..64");
			o->runs = (int)v;
			break;
		case 'C': o->check = false; break;
		case 'k': o->keep = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int make_workload(const struct opts *o, struct workload *w)
{
	uint64_t need;

	memset(w, 0, sizeof(*w));
	if (strlen(o->dir) >= sizeof(w->dir))
		return fail("--dir too long");
	snprintf(w->dir, sizeof(w->dir), "%s", o->dir);
	w->n = o->n;
	w->seed = o->seed;
	w->check = o->check;
	w->keep = o->keep;
	w->rand_base = mix64(o->seed ^ 0x6a09e667f3bcc908ull);
	/* An affine permutation of [0, n): multiplier coprime with n. */
	w->perm_c = mix64(o->seed + 1) % o->n;
	w->perm_a = (mix64(o->seed + 2) % o->n) | 1;
	while (o->n > 1 && gcd64(w->perm_a, o->n) != 1)
		w->perm_a = (w->perm_a + 2) % o->n;
	if (o->n == 1)
		w->perm_a = 0;
	/* Generous: ~100 bytes per item in either engine's worst fill, times slack. */
	need = o->n * 512;
	w->file_bytes = need > MIN_FILE_BYTES ? ALIGN_UP(need, 1ull << 30) : MIN_FILE_BYTES;
	for (int kind = 0; kind < NKINDS; kind++)
		for (uint64_t i = 0; i < o->n; i++) {
			uint64_t id = key_objectid(w, kind, i);
			w->sum[kind] += id;
			w->xr[kind] ^= mix64(id);
		}
	return 0;
}

int main(int argc, char **argv)
{
	static double ops[NENGINES][NPHASES][64];
	long rss_kb[NENGINES] = { 0, 0 };
	struct workload w;
	struct opts o;

	if (parse_opts(argc, argv, &o) || make_workload(&o, &w) || mkdir_p(o.dir))
		return 2;
	printf("btree_bench: N=%" PRIu64 " seed=%" PRIu64 " runs=%d dir=%s, nodes %u bytes, "
	       "cache %u MiB, files %" PRIu64 " GiB sparse\n", w.n, w.seed, o.runs, w.dir,
	       NODESIZE, BCACHE_DEFAULT_BYTES >> 20, w.file_bytes >> 30);
	for (int run = 0; run < o.runs; run++) {
		for (int e = 0; e < NENGINES; e++) {
			int engine = (run % 2 == 0) ? e : NENGINES - 1 - e;
			struct result r;

			if (run_engine(engine, &w, &r)) {
				fprintf(stderr, "btree_bench: aborted in run %d; files left in %s; "
					"reproduce with: btree_bench --dir %s --n %" PRIu64
					" --seed %" PRIu64 " --runs 1\n", run + 1, w.dir, w.dir,
					w.n, w.seed);
				return 1;
			}
			for (int p = 0; p < NPHASES; p++)
				ops[engine][p][run] = (double)w.n / (r.secs[p] > 1e-9 ? r.secs[p] : 1e-9);
			if (r.maxrss_kb > rss_kb[engine])
				rss_kb[engine] = r.maxrss_kb;
			print_run(run, o.runs, engine, &w, &r);
		}
	}
	print_table(&w, o.runs, ops, rss_kb);
	if (!o.keep)
		remove_files(&w);
	return 0;
}
