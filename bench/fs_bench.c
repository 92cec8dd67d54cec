/*
 * fs_bench: whole-filesystem figures of cowfs (no comparison engine).
 *
 *   commit latency  A committed filesystem whose fs tree has at least D leaves; a new
 *                   transaction updates one item in each of D distinct leaves (bt_update
 *                   shadows each leaf and its path); then cowfs_commit() alone is timed.
 *                   D = 1,000 and 100,000 with 16 KiB nodes, 100,000 with 4 KiB nodes.
 *                   Each configuration is built once and committed --runs times (the same D
 *                   leaves dirtied again each time); the table shows the median. One more
 *                   round times the commit's steps one by one: extent_run_delayed_refs(),
 *                   bt_writeback(), bdev_flush(), then cowfs_commit() for the rest.
 *   fsck            An image with --extents data extents of 4 KiB, each referenced by one
 *                   REG file extent item, built through the normal API (cowfs_reserve,
 *                   extent_alloc_data, bt_insert) with a commit every 100,000 items. Then,
 *                   --runs times each: cowfs_open (read-only) + cowfs_check in a child
 *                   process, and the fsck.cowfs binary end to end (fork/exec/wait4).
 *
 * Timer commits are off (commit_interval_ms = -1): they would land at random points. The
 * commit bench raises dirty_limit above D nodes, or cowfs_reserve would commit while the D
 * leaves are being dirtied (the bench checks that no commit happened there); the fsck build
 * keeps the library defaults (and reports any commit cowfs_reserve adds).
 *
 * Every phase runs in a forked child so its peak RSS (ru_maxrss from wait4) is its own.
 * Images are sparse files in --dir; nothing is dropped from the page cache (the images are
 * warm: they were just written). Data extents are allocated but their bytes never written.
 *
 * Anything wrong (an error return, a checker problem, fsck.cowfs exiting non-zero, a commit
 * happening where none should) aborts with exit status 1 and a reproducer; the image is then
 * left in --dir.
 */
#include <errno.h>
#include <fcntl.h>
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

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "fs/btree/btree.h"
#include "fs/extent/extent.h"
#include "fs/extent/extent_format.h"
#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "fs/lib/compiler.h"
#include "fs/lib/endian.h"
#include "fs/super/fsck.h"
#include "fs/super/fs.h"

#define MAX_RUNS 16
#define ITEM_LEN 200                  /* commit bench: fs tree item payload */
#define ITEM_TYPE 1
#define DATA_EXTENT 4096ull           /* fsck bench: bytes per data extent */
#define FILE_EXTENTS_PER_INODE 1000   /* fsck bench: file extent items per inode */
#define FIRST_INODE 257
#define BUILD_COMMIT_DIRTY (128u << 20)   /* commit bench build: commit past this dirty */
#define GIB (1ull << 30)
#define MIB (1ull << 20)

struct opts {
	const char *dir;
	const char *fsck_bin;
	uint64_t extents;
	uint64_t commit_every;
	int runs;
	bool skip_fsck, skip_commit, keep;
};

/* ---- small helpers ---- */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("fs_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (double)MIB;
}

/* A field of /proc/self/status in KiB (VmRSS, VmHWM), or 0. */
static long proc_status_kb(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

static double median(const double *v, int n)
{
	double s[MAX_RUNS];

	if (n <= 0)
		return 0;
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double vmax(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* "1,234,567" into buf. */
static const char *grouped(char *buf, size_t size, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v), o = 0;

	for (int i = 0; i < n && (size_t)o + 2 < size; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}
#define G(v) grouped((char[32]){ 0 }, 32, (v))

/* ---- a filesystem handle with a loud report hook ---- */

static unsigned reports;

static void on_report(void *arg, uint64_t bytenr, const char *msg)
{
	(void)arg;
	reports++;
	if (reports <= 20)
		fprintf(stderr, "fs_bench: cowfs report: block %" PRIu64 ": %s\n", bytenr, msg);
}

/*
 * A fresh image, formatted and opened for writing. No timer commits (they would land at random
 * points of the timed phases); `dirty_limit` 0 keeps the library's default (half the cache).
 */
static int fs_create(const char *path, uint64_t bytes, uint32_t nodesize, size_t dirty_limit,
		     struct cowfs **fs)
{
	struct cowfs_mkfs_opts mo = { .nodesize = nodesize };
	struct cowfs_opts o = { .report = on_report, .commit_interval_ms = -1,
				.dirty_limit = dirty_limit };
	int ret;

	if (make_image(path, bytes))
		return -1;
	ret = cowfs_format(path, &mo, NULL);
	if (ret)
		return fail("cowfs_format %s (%" PRIu64 " bytes, nodesize %u): %s", path, bytes,
			    nodesize, strerror(-ret));
	ret = cowfs_open(path, &o, fs);
	if (ret)
		return fail("cowfs_open %s: %s", path, strerror(-ret));
	return 0;
}

/* One timed commit and what it did. */
struct commit_rec {
	double secs;
	uint64_t dirty_nodes;     /* dirty cache blocks / nodesize just before the commit */
	uint64_t heads;           /* delayed-ref heads pending just before it */
	uint64_t writes, submits, flushes, bytes_written, reads;
	uint64_t items;           /* fsck build: items inserted so far */
};

static int timed_commit(struct cowfs *fs, struct commit_rec *c)
{
	struct bdev_stats a, b;
	double t0;
	int ret;

	c->dirty_nodes = bcache_dirty_bytes(fs->cache) / fs->bfs.nodesize;
	c->heads = extent_pending(&fs->ext);
	bdev_get_stats(fs->bd, &a);
	t0 = now();
	ret = cowfs_commit(fs);
	c->secs = now() - t0;
	bdev_get_stats(fs->bd, &b);
	c->writes = b.writes - a.writes;
	c->submits = b.submits - a.submits;
	c->flushes = b.flushes - a.flushes;
	c->bytes_written = b.bytes_written - a.bytes_written;
	c->reads = b.reads - a.reads;
	if (ret)
		return fail("cowfs_commit (%" PRIu64 " dirty nodes, %" PRIu64 " delayed-ref heads): "
			    "%s after %.3f s", c->dirty_nodes, c->heads, strerror(-ret), c->secs);
	return 0;
}

static int check_clean(struct cowfs *fs, const char *what, struct cowfs_check_stats *st)
{
	int ret = cowfs_check(fs, st, NULL, NULL);

	if (ret || st->problems)
		return fail("%s: cowfs_check: %s, %" PRIu64 " problems (see reports above)", what,
			    ret ? strerror(-ret) : "ok", st->problems);
	return 0;
}

/* ---- children ---- */

/* ---- commit latency ---- */

struct commit_cfg {
	uint32_t nodesize;
	uint64_t dirty;          /* D: leaves to dirty */
	int runs;
	bool keep;
	char path[PATH_MAX];
};

/* The split round's steps. */
struct split {
	uint64_t dirty_nodes, heads;     /* before */
	double refs_secs;                /* extent_run_delayed_refs */
	uint64_t refs_reads;
	uint64_t wb_nodes;               /* dirty after the refs: what the writeback writes */
	double wb_secs;                  /* bt_writeback: seal (checksums) + write batch */
	uint64_t wb_writes, wb_submits, wb_reads;
	double flush_secs;               /* bdev_flush */
	struct commit_rec rest;          /* cowfs_commit afterwards */
};

struct commit_result {
	uint64_t image_bytes;
	uint64_t items, leaves, height, nodes;   /* fs tree after the build */
	double build_secs;
	uint64_t build_commits;
	struct commit_rec build_last;            /* the build's last commit */
	double dirty_secs[MAX_RUNS];             /* the untimed updates before each commit */
	struct commit_rec runs[MAX_RUNS];
	struct split split;
	struct cowfs_check_stats st;             /* the untimed check at the end */
	double check_secs;
	long maxrss_kb;
};

static void make_item(uint64_t id, uint64_t round, uint8_t v[ITEM_LEN])
{
	memset(v, (int)(id & 0xff), ITEM_LEN);
	put_le64(v, id);
	put_le64(v + 8, round);
}

/* Sequential inserts of ids [*next, upto) (full leaves), committing to bound the dirty cache. */
static int fill_tree(struct cowfs *fs, uint64_t *next, uint64_t upto)
{
	uint8_t v[ITEM_LEN];
	int ret = 0;

	while (*next < upto && ret == 0) {
		struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
		for (int i = 0; i < 4096 && *next < upto && ret == 0; i++, (*next)++) {
			struct bt_key k = { *next, ITEM_TYPE, 0 };
			make_item(*next, 0, v);
			ret = cowfs_reserve(tx, cowfs_update_nodes(&fs->fs_root.t));
			if (ret == 0)
				ret = bt_insert(&tx->bt, &fs->fs_root.t, &k, v, ITEM_LEN);
			if (ret)
				fail("build: insert of item %" PRIu64 ": %s", *next, strerror(-ret));
		}
		cowfs_trans_end(tx, ret);
		if (ret == 0 && bcache_dirty_bytes(fs->cache) > BUILD_COMMIT_DIRTY &&
		    (ret = cowfs_commit(fs)) != 0)
			fail("build: commit after item %" PRIu64 ": %s", *next, strerror(-ret));
	}
	return ret ? -1 : 0;
}

/* One cursor pass over the fs tree: items, and the first key of every leaf. */
static int leaf_first_keys(struct cowfs *fs, uint64_t *items, uint64_t **ids, uint64_t *nleaves)
{
	struct bt_cursor c;
	struct bt_key k;
	uint64_t prev_leaf = 0, n = 0, cap = 1024, *v = malloc(cap * sizeof(*v));
	int ret;

	if (!v)
		return fail("out of memory");
	*items = 0;
	bt_cursor_init(&c, &fs->fs_root.t);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		uint64_t leaf = c.path.nodes[0]->addr;
		bt_cursor_item(&c, &k, NULL, NULL);
		(*items)++;
		if (leaf == prev_leaf)
			continue;
		prev_leaf = leaf;
		if (n == cap) {
			uint64_t *nv = realloc(v, 2 * cap * sizeof(*v));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[n++] = k.objectid;
	}
	bt_cursor_release(&c);
	if (ret != -ENOENT) {
		free(v);
		return fail("scan of the fs tree after %" PRIu64 " items: %s", *items, strerror(-ret));
	}
	*ids = v;
	*nleaves = n;
	return 0;
}

/* Update the first item of D evenly spaced leaves (of L) in one transaction. */
static int dirty_leaves(struct cowfs *fs, const uint64_t *ids, uint64_t nleaves, uint64_t d,
			uint64_t round)
{
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	uint64_t commits = fs->commits;
	uint8_t v[ITEM_LEN];
	uint32_t len;
	int ret = 0;

	for (uint64_t i = 0; i < d && ret == 0; i++) {
		uint64_t id = ids[i * nleaves / d];
		struct bt_key k = { id, ITEM_TYPE, 0 };
		ret = cowfs_reserve(tx, cowfs_update_nodes(&fs->fs_root.t));
		if (ret == 0)
			ret = bt_lookup(&fs->fs_root.t, &k, v, sizeof(v), &len);
		if (ret == 0 && len != ITEM_LEN)
			ret = -EUCLEAN;
		if (ret == 0) {
			put_le64(v + 8, round);
			ret = bt_update(&tx->bt, &fs->fs_root.t, &k, v, ITEM_LEN);
		}
		if (ret)
			fail("round %" PRIu64 ": update %" PRIu64 " of %" PRIu64 " (item %" PRIu64
			     "): %s", round, i, d, id, strerror(-ret));
	}
	cowfs_trans_end(tx, ret);
	if (ret == 0 && fs->commits != commits)
		return fail("round %" PRIu64 ": cowfs_reserve committed %" PRIu64 " times while "
			    "dirtying: the measurement would be of a partial transaction", round,
			    fs->commits - commits);
	return ret ? -1 : 0;
}

/* Every chosen item carries the last round's marker. */
static int verify_rounds(struct cowfs *fs, const uint64_t *ids, uint64_t nleaves, uint64_t d,
			 uint64_t round)
{
	uint8_t v[ITEM_LEN], want[ITEM_LEN];
	uint32_t len;

	for (uint64_t i = 0; i < d; i++) {
		uint64_t id = ids[i * nleaves / d];
		struct bt_key k = { id, ITEM_TYPE, 0 };
		int ret = bt_lookup(&fs->fs_root.t, &k, v, sizeof(v), &len);
		make_item(id, round, want);
		if (ret || len != ITEM_LEN || memcmp(v, want, ITEM_LEN) != 0)
			return fail("verify: item %" PRIu64 ": %s", id,
				    ret ? strerror(-ret) : "wrong content");
	}
	return 0;
}

static int commit_child(const void *arg, void *res)
{
	const struct commit_cfg *cfg = arg;
	struct commit_result *r = res;
	uint32_t ns = cfg->nodesize;
	/* Items per full leaf: header ~100 bytes, item header 25 bytes (key + offset + size). */
	uint64_t per_leaf = (ns - 128) / (ITEM_LEN + 25), next = 1, target, *ids = NULL;
	struct bt_stats bs;
	struct cowfs *fs;
	double t0;
	int ret = -1;

	/* The tree (D leaves at least), a shadow copy of D leaves per round, slack. */
	r->image_bytes = ALIGN_UP(cfg->dirty * ns * 5 + 512 * MIB, GIB);
	/* Raise the dirty limit past D nodes, or cowfs_reserve would commit while dirtying. */
	if (fs_create(cfg->path, r->image_bytes, ns, (size_t)(cfg->dirty * 4 + 4096) * ns, &fs))
		return -1;
	t0 = now();
	target = 1 + cfg->dirty * per_leaf + cfg->dirty * per_leaf / 50;
	for (;;) {
		if (fill_tree(fs, &next, target) || timed_commit(fs, &r->build_last))
			goto out;
		free(ids);
		ids = NULL;
		if (leaf_first_keys(fs, &r->items, &ids, &r->leaves))
			goto out;
		if (r->leaves >= cfg->dirty)
			break;
		target += (cfg->dirty - r->leaves) * per_leaf + per_leaf;
	}
	r->build_secs = now() - t0;
	r->build_commits = fs->commits;
	if ((ret = bt_stats(&fs->fs_root.t, &bs)) != 0) {
		fail("bt_stats: %s", strerror(-ret));
		goto out;
	}
	r->height = bs.height;
	r->nodes = bs.nodes;
	ret = -1;
	printf("  commit %u KiB D=%s: built %s items in %s leaves (%s nodes, height %" PRIu64
	       ") in %.1f s, %" PRIu64 " commits; image %" PRIu64 " GiB sparse\n", ns >> 10,
	       G(cfg->dirty), G(r->items), G(r->leaves), G(r->nodes), r->height, r->build_secs,
	       r->build_commits, (uint64_t)(r->image_bytes / GIB));
	fflush(stdout);

	for (int run = 0; run < cfg->runs; run++) {
		struct commit_rec *c = &r->runs[run];
		t0 = now();
		if (dirty_leaves(fs, ids, r->leaves, cfg->dirty, (uint64_t)run + 1))
			goto out;
		r->dirty_secs[run] = now() - t0;
		if (timed_commit(fs, c))
			goto out;
		printf("  commit %u KiB D=%s run %d/%d: %.3f s, %s dirty nodes, %s delayed-ref heads,"
		       " %s writes (%.1f MiB) in %" PRIu64 " submits, %" PRIu64 " flushes, %" PRIu64
		       " reads; updates took %.2f s\n", ns >> 10, G(cfg->dirty), run + 1, cfg->runs,
		       c->secs, G(c->dirty_nodes), G(c->heads), G(c->writes), mib(c->bytes_written),
		       c->submits, c->flushes, c->reads, r->dirty_secs[run]);
		fflush(stdout);
	}

	/*
	 * The split round: the commit's steps one by one, each timed. Step 1's delayed refs
	 * (extent_run_delayed_refs), step 2's writeback (bt_writeback) and flush (bdev_flush),
	 * then cowfs_commit() for the rest: root items (which re-shadow the few root-tree and
	 * extent-tree nodes just written), what that leaves to write, the superblock copies
	 * and the second flush.
	 */
	{
		uint64_t round = (uint64_t)cfg->runs + 1;
		struct split *sp = &r->split;
		struct bdev_stats b0, b1, b2, b3;
		double t1, t2, t3;
		if (dirty_leaves(fs, ids, r->leaves, cfg->dirty, round))
			goto out;
		sp->dirty_nodes = bcache_dirty_bytes(fs->cache) / ns;
		sp->heads = extent_pending(&fs->ext);
		struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
		bdev_get_stats(fs->bd, &b0);
		t0 = now();
		ret = extent_run_delayed_refs(&fs->ext, &tx->bt);
		t1 = now();
		bdev_get_stats(fs->bd, &b1);
		sp->wb_nodes = bcache_dirty_bytes(fs->cache) / ns;
		if (ret == 0)
			ret = bt_writeback(&fs->bfs);
		t2 = now();
		bdev_get_stats(fs->bd, &b2);
		if (ret == 0)
			ret = bdev_flush(fs->bd);
		t3 = now();
		bdev_get_stats(fs->bd, &b3);
		cowfs_trans_end(tx, ret);
		if (ret) {
			fail("split round: %s: %s", t2 == t3 ? "delayed refs or writeback" : "flush",
			     strerror(-ret));
			ret = -1;
			goto out;
		}
		sp->refs_secs = t1 - t0;
		sp->refs_reads = b1.reads - b0.reads;
		sp->wb_secs = t2 - t1;
		sp->wb_writes = b2.writes - b1.writes;
		sp->wb_submits = b2.submits - b1.submits;
		sp->wb_reads = b2.reads - b1.reads;
		sp->flush_secs = t3 - t2;
		if (timed_commit(fs, &sp->rest))
			goto out;
		printf("  commit %u KiB D=%s split round: delayed refs (%s heads) %.3f s with %s "
		       "reads; writeback of %s nodes %.3f s (%s writes, %s submits); flush %.3f s; "
		       "cowfs_commit for the rest %.3f s (%s writes)\n", ns >> 10, G(cfg->dirty),
		       G(sp->heads), sp->refs_secs, G(sp->refs_reads), G(sp->wb_nodes), sp->wb_secs,
		       G(sp->wb_writes), G(sp->wb_submits), sp->flush_secs, sp->rest.secs,
		       G(sp->rest.writes));
		fflush(stdout);
		if (verify_rounds(fs, ids, r->leaves, cfg->dirty, round))
			goto out;
	}

	t0 = now();
	if (check_clean(fs, "after the commit rounds", &r->st))
		goto out;
	r->check_secs = now() - t0;
	if (reports) {
		fail("%u cowfs reports (see above)", reports);
		goto out;
	}
	ret = 0;
out:
	free(ids);
	if (ret == 0) {
		ret = cowfs_close(fs);
		if (ret)
			fail("cowfs_close: %s", strerror(-ret));
		if (ret == 0 && !cfg->keep)
			unlink(cfg->path);
	} else {
		fs->read_only = true;   /* leave the last commit for inspection */
		cowfs_close(fs);
	}
	return ret ? -1 : 0;
}

/* ---- fsck on N extents ---- */

struct fsck_cfg {
	uint64_t extents, commit_every;
	char path[PATH_MAX];
	char bin[PATH_MAX];
};

#define MAX_BUILD_COMMITS 256

struct build_result {
	uint64_t image_bytes, disk_bytes;
	double secs, insert_secs, close_secs;
	uint64_t ncommits, extra_commits;
	struct commit_rec commits[MAX_BUILD_COMMITS];
};

static int build_child(const void *arg, void *res)
{
	const struct fsck_cfg *cfg = arg;
	struct build_result *r = res;
	struct cowfs *fs;
	uint64_t hint = 0, commits0;
	double t0, tcommit = 0;
	int ret = 0;

	r->image_bytes = ALIGN_UP(cfg->extents * DATA_EXTENT * 2, GIB);
	if (r->image_bytes < GIB)
		r->image_bytes = GIB;
	if (fs_create(cfg->path, r->image_bytes, BT_DEFAULT_NODESIZE, 0, &fs))
		return -1;
	commits0 = fs->commits;
	t0 = now();
	for (uint64_t i = 0; i < cfg->extents && ret == 0; i++) {
		struct file_extent_item fe = { 0 };
		struct bt_key k = { FIRST_INODE + i / FILE_EXTENTS_PER_INODE, EXTENT_DATA_KEY,
				    (i % FILE_EXTENTS_PER_INODE) * DATA_EXTENT };
		uint64_t start = 0, len = 0;
		struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
		ret = cowfs_reserve(tx, cowfs_update_nodes(&fs->fs_root.t));
		if (ret == 0)
			ret = extent_alloc_data(&fs->ext, &tx->bt, DATA_EXTENT, DATA_EXTENT, hint,
						&start, &len);
		if (ret == 0) {
			hint = start + len;
			/* Preallocated: written data would need checksums, which fsck checks. */
			fe.type = FILE_EXTENT_PREALLOC;
			put_le64(&fe.generation, cowfs_trans_id(tx));
			put_le64(&fe.ram_bytes, len);
			put_le64(&fe.disk_bytenr, start);
			put_le64(&fe.disk_num_bytes, len);
			put_le64(&fe.num_bytes, len);
			ret = bt_insert(&tx->bt, &fs->fs_root.t, &k, &fe, sizeof(fe));
		}
		cowfs_trans_end(tx, ret);
		if (ret) {
			fail("build: extent %" PRIu64 " of %" PRIu64 ": %s", i, cfg->extents,
			     strerror(-ret));
			break;
		}
		if ((i + 1) % cfg->commit_every == 0 || i + 1 == cfg->extents) {
			if (r->ncommits == MAX_BUILD_COMMITS) {
				ret = fail("more than %d commits: raise --commit-every",
					   MAX_BUILD_COMMITS);
				break;
			}
			struct commit_rec *c = &r->commits[r->ncommits++];
			c->items = i + 1;
			if (timed_commit(fs, c)) {
				ret = -1;
				break;
			}
			tcommit += c->secs;
			printf("  build: %s items, commit %" PRIu64 ": %.3f s, %s dirty nodes, %s "
			       "delayed-ref heads, %s writes (%.1f MiB) in %" PRIu64 " submits, %" PRIu64
			       " flushes, %" PRIu64 " reads; %.1f s so far\n", G(c->items), r->ncommits,
			       c->secs, G(c->dirty_nodes), G(c->heads), G(c->writes),
			       mib(c->bytes_written), c->submits, c->flushes, c->reads, now() - t0);
			fflush(stdout);
		}
	}
	r->secs = now() - t0;
	r->insert_secs = r->secs - tcommit;
	r->extra_commits = fs->commits - commits0 - r->ncommits;
	if (ret == 0 && reports)
		ret = fail("%u cowfs reports during the build (see above)", reports);
	if (ret) {
		fs->read_only = true;
		cowfs_close(fs);
		return -1;
	}
	t0 = now();
	ret = cowfs_close(fs);
	r->close_secs = now() - t0;
	if (ret)
		return fail("cowfs_close after the build: %s", strerror(-ret));
	r->disk_bytes = disk_bytes(cfg->path);
	return 0;
}

struct check_result {
	double open_secs, check_secs;
	struct cowfs_check_stats st;
	long rss_open_kb, hwm_kb;
	uint64_t cache_bytes_open, cache_bytes_end, cache_misses;
};

static int check_child(const void *arg, void *res)
{
	const struct fsck_cfg *cfg = arg;
	struct check_result *r = res;
	struct cowfs_opts o = { .read_only = true, .report = on_report };
	struct bcache_stats cs;
	struct cowfs *fs;
	double t0 = now();
	int ret = cowfs_open(cfg->path, &o, &fs);

	r->open_secs = now() - t0;
	if (ret)
		return fail("cowfs_open %s (read-only): %s", cfg->path, strerror(-ret));
	r->rss_open_kb = proc_status_kb("VmRSS");
	bcache_get_stats(fs->cache, &cs);
	r->cache_bytes_open = cs.bytes;
	uint64_t misses0 = cs.misses;
	t0 = now();
	ret = cowfs_check(fs, &r->st, NULL, NULL);
	r->check_secs = now() - t0;
	r->hwm_kb = proc_status_kb("VmHWM");
	bcache_get_stats(fs->cache, &cs);
	r->cache_bytes_end = cs.bytes;
	r->cache_misses = cs.misses - misses0;
	cowfs_close(fs);
	if (ret || r->st.problems || reports)
		return fail("cowfs_check of %s: %s, %" PRIu64 " problems, %u reports: THE IMAGE IS "
			    "NOT CLEAN", cfg->path, ret ? strerror(-ret) : "ok", r->st.problems,
			    reports);
	return 0;
}

struct bin_result {
	double secs;
	long maxrss_kb;
	char out[512];
};

/* fsck.cowfs IMAGE: wall time around fork/exec/wait4, its stdout kept, exit status 0. */
static int run_fsck_bin(const struct fsck_cfg *cfg, struct bin_result *r)
{
	struct rusage ru;
	int fds[2], status;
	ssize_t got;
	pid_t pid;
	double t0;

	memset(r, 0, sizeof(*r));
	if (pipe(fds) != 0)
		return fail("pipe: %s", strerror(errno));
	fflush(NULL);
	t0 = now();
	pid = fork();
	if (pid < 0)
		return fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[1]);
		execl(cfg->bin, cfg->bin, cfg->path, (char *)NULL);
		fprintf(stderr, "fs_bench: exec %s: %s\n", cfg->bin, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	got = read_all(fds[0], r->out, sizeof(r->out) - 1);
	if (got == (ssize_t)sizeof(r->out) - 1) {   /* drain the rest */
		char sink[4096];
		while (read(fds[0], sink, sizeof(sink)) > 0)
			;
	}
	close(fds[0]);
	r->out[got > 0 ? got : 0] = '\0';
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return fail("wait4: %s", strerror(errno));
	r->secs = now() - t0;
	r->maxrss_kb = ru.ru_maxrss;
	size_t n = strlen(r->out);
	while (n && r->out[n - 1] == '\n')
		r->out[--n] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("%s %s: %s %d: THE IMAGE IS NOT CLEAN (or fsck failed); output: %s",
			    cfg->bin, cfg->path, WIFEXITED(status) ? "exit status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), r->out);
	return 0;
}

/* ---- report ---- */

static void print_machine(void)
{
	struct utsname u;
	char date[64] = "?";
	time_t t = time(NULL);
	struct tm tm;

	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "?");
	if (gmtime_r(&t, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	double load = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	printf("machine: %ld cpus, %.1f GiB RAM, %s %s %s, %s, load average %.2f\n",
	       sysconf(_SC_NPROCESSORS_ONLN),
	       (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (double)GIB,
	       u.sysname, u.release, u.machine, date, load);
}

#define NCOMMIT_CFGS 3
static const struct { uint32_t nodesize; uint64_t dirty; } commit_cfgs[NCOMMIT_CFGS] = {
	{ 16384, 1000 }, { 16384, 100000 }, { 4096, 100000 },
};

static const char *node_name(int i)
{
	return commit_cfgs[i].nodesize == 16384 ? "16K" : "4K";
}

static void print_commit_table(const struct commit_result *res, const bool *done, int runs)
{
	printf("\ncommit latency: cowfs_commit() alone, median of %d commits (min-max), each after "
	       "dirtying D leaves in one transaction\n", runs);
	print_machine();
	printf("%-5s %8s %12s %10s %22s %10s %8s %8s %8s %8s\n", "node", "D leaves",
	       "dirty nodes", "ref heads", "commit s (min-max)", "writes", "MiB", "submits",
	       "reads", "flushes");
	for (int i = 0; i < NCOMMIT_CFGS; i++) {
		const struct commit_result *r = &res[i];
		double s[MAX_RUNS], w[MAX_RUNS], sub[MAX_RUNS], fl[MAX_RUNS], dn[MAX_RUNS],
		       hd[MAX_RUNS], by[MAX_RUNS], rd[MAX_RUNS];
		char range[48];

		if (!done[i])
			continue;
		for (int k = 0; k < runs; k++) {
			s[k] = r->runs[k].secs;
			w[k] = (double)r->runs[k].writes;
			sub[k] = (double)r->runs[k].submits;
			fl[k] = (double)r->runs[k].flushes;
			dn[k] = (double)r->runs[k].dirty_nodes;
			hd[k] = (double)r->runs[k].heads;
			by[k] = (double)r->runs[k].bytes_written;
			rd[k] = (double)r->runs[k].reads;
		}
		snprintf(range, sizeof(range), "%.3f (%.3f-%.3f)", median(s, runs), vmin(s, runs),
			 vmax(s, runs));
		printf("%-5s %8s %12s %10s %22s %10s %8.1f %8s %8s %8.0f\n", node_name(i),
		       G(commit_cfgs[i].dirty), G((uint64_t)median(dn, runs)),
		       G((uint64_t)median(hd, runs)), range, G((uint64_t)median(w, runs)),
		       median(by, runs) / (double)MIB, G((uint64_t)median(sub, runs)),
		       G((uint64_t)median(rd, runs)), median(fl, runs));
	}
	printf("dirty nodes: dirty cache blocks before the commit (D leaves + their internal "
	       "nodes); ref heads: pending delayed-ref heads; writes/submits/reads/flushes: "
	       "blockdev requests during the commit (writes include extent-tree nodes and the "
	       "superblock copies; each read is its own submit)\n");

	printf("\none more commit per configuration, its steps timed one by one (seconds)\n");
	printf("%-5s %8s %22s %28s %8s %16s\n", "node", "D leaves", "delayed refs (reads)",
	       "writeback (writes/submits)", "flush", "rest (writes)");
	for (int i = 0; i < NCOMMIT_CFGS; i++) {
		const struct split *sp = &res[i].split;
		char a[48], b[48], c[48];

		if (!done[i])
			continue;
		snprintf(a, sizeof(a), "%.3f (%s)", sp->refs_secs, G(sp->refs_reads));
		snprintf(b, sizeof(b), "%.3f (%s/%s)", sp->wb_secs, G(sp->wb_writes),
			 G(sp->wb_submits));
		snprintf(c, sizeof(c), "%.3f (%s)", sp->rest.secs, G(sp->rest.writes));
		printf("%-5s %8s %22s %28s %8.3f %16s\n", node_name(i), G(commit_cfgs[i].dirty), a, b,
		       sp->flush_secs, c);
	}
	printf("delayed refs: extent_run_delayed_refs(); writeback: bt_writeback() (checksums + "
	       "one write batch); flush: bdev_flush() (fdatasync); rest: cowfs_commit() "
	       "afterwards (root items, superblock copies, second flush)\n");
	for (int i = 0; i < NCOMMIT_CFGS; i++) {
		const struct commit_result *r = &res[i];
		if (!done[i])
			continue;
		printf("  %s D=%s: fs tree %s items, %s leaves, %s nodes, height %" PRIu64
		       "; build %.1f s; peak RSS %.0f MiB; final check %.1f s: %s tree blocks, "
		       "%s extent items, 0 problems\n", node_name(i), G(commit_cfgs[i].dirty),
		       G(r->items), G(r->leaves), G(r->nodes), r->height, r->build_secs,
		       (double)r->maxrss_kb / 1024.0, r->check_secs, G(r->st.tree_blocks),
		       G(r->st.extent_items));
	}
}

static int commit_bench(const struct opts *o)
{
	static struct commit_result res[NCOMMIT_CFGS];
	bool done[NCOMMIT_CFGS] = { false };
	int status = 0;

	for (int i = 0; i < NCOMMIT_CFGS; i++) {
		struct commit_cfg cfg = { .nodesize = commit_cfgs[i].nodesize,
					  .dirty = commit_cfgs[i].dirty, .runs = o->runs,
					  .keep = o->keep };
		char what[64];

		snprintf(cfg.path, sizeof(cfg.path), "%s/commit-%uk-%" PRIu64 ".img", o->dir,
			 cfg.nodesize >> 10, cfg.dirty);
		snprintf(what, sizeof(what), "commit %u KiB D=%" PRIu64, cfg.nodesize >> 10,
			 cfg.dirty);
		if (run_child(what, commit_child, &cfg, &res[i], sizeof(res[i]),
			      &res[i].maxrss_kb)) {
			fprintf(stderr, "fs_bench: %s aborted; image left at %s; reproduce with: "
				"fs_bench --dir %s --skip-fsck --runs %d\n", what, cfg.path, o->dir,
				o->runs);
			status = 1;
			break;   /* print what was measured */
		}
		done[i] = true;
	}
	print_commit_table(res, done, o->runs);
	return status;
}

static int fsck_bench(const struct opts *o)
{
	static struct build_result b;
	struct check_result c[MAX_RUNS];
	struct bin_result f[MAX_RUNS];
	long brss = 0, crss[MAX_RUNS];
	struct fsck_cfg cfg = { .extents = o->extents, .commit_every = o->commit_every };
	double v[MAX_RUNS];
	int runs_c = 0, runs_f = 0, status = 0;

	snprintf(cfg.path, sizeof(cfg.path), "%s/fsck-%" PRIu64 ".img", o->dir, o->extents);
	snprintf(cfg.bin, sizeof(cfg.bin), "%s", o->fsck_bin);
	if (access(cfg.bin, X_OK) != 0)
		return fail("fsck binary %s: %s (build it: make all, or pass --fsck-bin)", cfg.bin,
			    strerror(errno));
	printf("fsck: building %s data extents of %llu KiB, one file extent item each, %d per "
	       "inode, a commit every %s items\n", G(cfg.extents), DATA_EXTENT >> 10,
	       FILE_EXTENTS_PER_INODE, G(cfg.commit_every));
	if (run_child("fsck build", build_child, &cfg, &b, sizeof(b), &brss)) {
		fprintf(stderr, "fs_bench: fsck build aborted; image left at %s; reproduce with: "
			"fs_bench --dir %s --skip-commit --extents %" PRIu64 "\n", cfg.path, o->dir,
			o->extents);
		return 1;
	}
	printf("  build: %.1f s (inserts %.1f s = %s items/s, %" PRIu64 " commits %.1f s, %"
	       PRIu64 " more by cowfs_reserve), close %.3f s, peak RSS %.0f MiB; image %" PRIu64
	       " GiB sparse, %.1f MiB on disk\n", b.secs, b.insert_secs,
	       G((uint64_t)((double)cfg.extents / b.insert_secs)), b.ncommits, b.secs - b.insert_secs,
	       b.extra_commits, b.close_secs, (double)brss / 1024.0, (uint64_t)(b.image_bytes / GIB),
	       mib(b.disk_bytes));
	fflush(stdout);

	for (int run = 0; run < o->runs; run++) {
		if (run_child("cowfs_check", check_child, &cfg, &c[run], sizeof(c[run]), &crss[run])) {
			status = 1;
			break;
		}
		runs_c++;
		printf("  run %d/%d cowfs_open %.3f s + cowfs_check %.3f s, peak RSS %.0f MiB (after "
		       "open %.0f MiB; cache %.0f -> %.0f MiB, %s misses)\n", run + 1, o->runs,
		       c[run].open_secs, c[run].check_secs, (double)crss[run] / 1024.0,
		       (double)c[run].rss_open_kb / 1024.0, mib(c[run].cache_bytes_open),
		       mib(c[run].cache_bytes_end), G(c[run].cache_misses));
		fflush(stdout);
		if (run_fsck_bin(&cfg, &f[run])) {
			status = 1;
			break;
		}
		runs_f++;
		printf("  run %d/%d fsck.cowfs %.3f s, peak RSS %.0f MiB: %s\n", run + 1, o->runs,
		       f[run].secs, (double)f[run].maxrss_kb / 1024.0, f[run].out);
		fflush(stdout);
	}
	if (status)
		fprintf(stderr, "fs_bench: fsck phase failed; image left at %s; reproduce with: "
			"%s %s\n", cfg.path, cfg.bin, cfg.path);

	printf("\nfsck on %s extents (data extents of 4 KiB, 16 KiB nodes), median of %d runs\n",
	       G(cfg.extents), runs_c);
	print_machine();
	printf("%-34s %12s %14s\n", "phase", "seconds", "peak RSS MiB");
	printf("%-34s %12.1f %14.0f\n", "build (inserts + commits)", b.secs, (double)brss / 1024.0);
	if (runs_c) {
		long m = 0, mf = 0;
		for (int k = 0; k < runs_c; k++)
			m = crss[k] > m ? crss[k] : m;
		for (int k = 0; k < runs_c; k++)
			v[k] = c[k].open_secs;
		printf("%-34s %12.3f %14s\n", "cowfs_open (read-only)", median(v, runs_c), "");
		for (int k = 0; k < runs_c; k++)
			v[k] = c[k].check_secs;
		printf("%-34s %12.3f %14s\n", "cowfs_check", median(v, runs_c), "");
		for (int k = 0; k < runs_c; k++)
			v[k] = c[k].open_secs + c[k].check_secs;
		printf("%-34s %12.3f %14.0f\n", "cowfs_open + cowfs_check", median(v, runs_c),
		       (double)m / 1024.0);
		for (int k = 0; k < runs_f; k++) {
			v[k] = f[k].secs;
			mf = f[k].maxrss_kb > mf ? f[k].maxrss_kb : mf;
		}
		if (runs_f)
			printf("%-34s %12.3f %14.0f\n", "fsck.cowfs IMAGE (end to end)",
			       median(v, runs_f), (double)mf / 1024.0);
		const struct check_result *r = &c[0];
		uint64_t table_kb = (uint64_t)(r->hwm_kb - r->rss_open_kb) -
				    (r->cache_bytes_end - r->cache_bytes_open) / 1024;
		uint64_t nent = r->st.data_extents + r->st.tree_blocks;
		printf("check stats: %" PRIu64 " trees, %s tree blocks, %s data extents, %s extent "
		       "items, %.1f MiB used, %" PRIu64 " problems\n", r->st.trees,
		       G(r->st.tree_blocks), G(r->st.data_extents), G(r->st.extent_items),
		       mib(r->st.bytes_used), r->st.problems);
		printf("checker memory: peak %.0f MiB = %.0f after open + %.0f block cache growth + "
		       "%.0f other (the recomputed table): ~%.0f bytes per extent (%s data extents + "
		       "tree blocks)\n", (double)r->hwm_kb / 1024.0, (double)r->rss_open_kb / 1024.0,
		       mib(r->cache_bytes_end - r->cache_bytes_open), (double)table_kb / 1024.0,
		       nent ? (double)table_kb * 1024.0 / (double)nent : 0.0, G(nent));
	}
	printf("build commits (every %s items):", G(cfg.commit_every));
	for (uint64_t k = 0; k < b.ncommits; k++)
		printf(" %.2f", b.commits[k].secs);
	printf(" s\n");
	if (status == 0 && !o->keep)
		unlink(cfg.path);
	return status;
}

/* ---- setup ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: fs_bench [--dir DIR] [--extents N] [--runs R] [--skip-fsck] "
		   "[--skip-commit] [--fsck-bin PATH] [--commit-every N] [--keep]\n"
		   "  --dir DIR          where the images go (created; default build/bench-tmp)\n"
		   "  --extents N        data extents in the fsck image (default 1000000)\n"
		   "  --runs R           timed repetitions per figure, medians reported (default 3)\n"
		   "  --skip-fsck        skip the fsck figures\n"
		   "  --skip-commit      skip the commit latency figures\n"
		   "  --fsck-bin PATH    the fsck.cowfs binary (default: bin/fsck.cowfs next to "
		   "this program's directory)\n"
		   "  --commit-every N   fsck build: items per commit (default 100000)\n"
		   "  --keep             keep the images\n");
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

/* build/bench/fs_bench -> build/bin/fsck.cowfs */
static void default_fsck_bin(char *out, size_t size)
{
	char self[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0) {
		snprintf(out, size, "build/bin/fsck.cowfs");
		return;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(out, size, "%.*s/../bin/fsck.cowfs", (int)(size - 32), self);
}

static int parse_opts(int argc, char **argv, struct opts *o, char *binbuf, size_t binsize)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "extents", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "skip-fsck", no_argument, NULL, 'F' },
		{ "skip-commit", no_argument, NULL, 'C' },
		{ "fsck-bin", required_argument, NULL, 'b' },
		{ "commit-every", required_argument, NULL, 'e' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	default_fsck_bin(binbuf, binsize);
	*o = (struct opts){ .dir = "build/bench-tmp", .fsck_bin = binbuf, .extents = 1000000,
			    .commit_every = 100000, .runs = 3 };
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': o->dir = optarg; break;
		case 'n':
			if (parse_u64(optarg, "--extents", &o->extents))
				return -1;
			if (o->extents == 0 || o->extents > (1ull << 28))
				return fail("--extents must be in 1..2^28");
			break;
		case 'r':
			if (parse_u64(optarg, "--runs", &v))
				return -1;
			if (v < 1 || v > MAX_RUNS)
				return fail("--runs must be in 1..%d", MAX_RUNS);
			o->runs = (int)v;
			break;
		case 'F': o->skip_fsck = true; break;
		case 'C': o->skip_commit = true; break;
		case 'b': o->fsck_bin = optarg; break;
		case 'e':
			if (parse_u64(optarg, "--commit-every", &o->commit_every))
				return -1;
			if (o->commit_every == 0)
				return fail("--commit-every must be at least 1");
			break;
		case 'k': o->keep = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	if (strlen(o->dir) > PATH_MAX - 64)
		return fail("--dir too long");
	return 0;
}

int main(int argc, char **argv)
{
	char binbuf[PATH_MAX];
	struct opts o;
	int status = 0;

	if (parse_opts(argc, argv, &o, binbuf, sizeof(binbuf)) || mkdir_p(o.dir))
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("fs_bench: dir=%s runs=%d extents=%s; images are sparse files, buffered I/O, "
	       "page cache not dropped (warm); block cache %u MiB\n", o.dir, o.runs,
	       G(o.extents), BCACHE_DEFAULT_BYTES >> 20);
	if (!o.skip_commit)
		status |= commit_bench(&o);
	if (!o.skip_fsck)
		status |= fsck_bench(&o) ? 1 : 0;
	return status;
}
