#include "tests/support/fixture.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/btree/node.h"

int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

const char *test_dir(void)
{
	const char *d = getenv("COWFS_TEST_DIR");
	return d && *d ? d : "/tmp";
}

uint64_t test_seed(const char *test, uint64_t def)
{
	const char *s = getenv("COWFS_TEST_SEED");
	uint64_t seed = s && *s ? strtoull(s, NULL, 0) : def;

	fprintf(stderr, "%s: seed %" PRIu64 " (override with COWFS_TEST_SEED)\n", test, seed);
	return seed;
}

uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rng_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(rng_next(&seed) >> 56);
}

static void fixture_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct fixture *f = arg;

	f->reports++;
	snprintf(f->last_report, sizeof(f->last_report), "block %" PRIu64 ": %s", bytenr, msg);
}

static void fixture_open_device(struct fixture *f)
{
	struct bdev_opts o = { 0 };

	ck_assert_int_eq(bdev_open(f->path, &o, &f->bd), 0);
	ck_assert_int_eq(bcache_create(f->bd, BCACHE_DEFAULT_BYTES, &f->cache), 0);
	f->fs.cache = f->cache;
}

void fixture_setup(struct fixture *f, const char *name, uint32_t nodesize, uint64_t size)
{
	int fd;

	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s/%s-%d.img", test_dir(), name, (int)getpid());
	fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
	f->size = size;
	f->mr = memrefs_create(1 << 20, size, nodesize);
	ck_assert_ptr_nonnull(f->mr);
	f->fs.nodesize = nodesize;
	memcpy(f->fs.fsid, "cowfs-test-fsid!", 16);
	f->fs.ops = &memrefs_ops;
	f->fs.ops_ctx = f->mr;
	f->fs.report = fixture_report;
	f->fs.report_arg = f;
	fixture_open_device(f);
	f->tx.fs = &f->fs;
	f->tx.transid = 1;
}

void fixture_teardown(struct fixture *f)
{
	bcache_destroy(f->cache);
	bdev_close(f->bd);
	memrefs_destroy(f->mr);
	unlink(f->path);
}

void fixture_commit(struct fixture *f)
{
	ck_assert_int_eq(f->tx.error, 0);
	ck_assert_int_eq(bt_writeback(&f->fs), 0);
	ck_assert_int_eq(bdev_flush(f->bd), 0);
	memrefs_unpin(f->mr);
	f->tx.transid++;
}

void fixture_reopen(struct fixture *f)
{
	bcache_destroy(f->cache);
	bdev_close(f->bd);
	fixture_open_device(f);
}

/* ---- refcount conservation ---- */

struct u64count {
	uint64_t *key, *val;
	size_t cap, n;
};

static uint64_t *count_slot(struct u64count *m, uint64_t k)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct u64count old = *m;
		m->cap = old.cap ? old.cap * 2 : 4096;
		m->key = calloc(m->cap, sizeof(uint64_t));
		m->val = calloc(m->cap, sizeof(uint64_t));
		m->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.key[i])
				*count_slot(m, old.key[i]) = old.val[i];
		free(old.key);
		free(old.val);
	}
	size_t i = (k * 0x9e3779b97f4a7c15ULL) >> 20 & (m->cap - 1);
	while (m->key[i] && m->key[i] != k)
		i = (i + 1) & (m->cap - 1);
	if (!m->key[i]) {
		m->key[i] = k;
		m->n++;
	}
	return &m->val[i];
}

static uint64_t count_get(struct u64count *m, uint64_t k)
{
	if (!m->cap)
		return 0;
	size_t i = (k * 0x9e3779b97f4a7c15ULL) >> 20 & (m->cap - 1);
	while (m->key[i] && m->key[i] != k)
		i = (i + 1) & (m->cap - 1);
	return m->key[i] ? m->val[i] : 0;
}

struct conserve {
	struct fixture *f;
	struct u64count seen;      /* distinct reachable nodes */
	struct u64count expect;    /* expected count per node */
	struct u64count back;      /* expected count per (node, owner): key node << 12 | owner */
	struct u64count ext;       /* expected count per external id */
	struct u64count ext_back;  /* expected count per (id, owner) */
};

#define PAIR(hi, owner) ((hi) << 12 | (owner))

/* One reference to `bytenr` held under key `owner`. */
static void expect_ref(struct conserve *c, uint64_t bytenr, uint64_t owner)
{
	(*count_slot(&c->expect, bytenr))++;
	(*count_slot(&c->back, PAIR(bytenr, owner)))++;
}

/* Walk a subtree once per distinct node, counting pointers from distinct parents. */
static void conserve_walk(struct conserve *c, uint64_t bytenr, uint8_t level, uint64_t gen)
{
	struct cblock *b;
	uint64_t *seen = count_slot(&c->seen, bytenr);

	if ((*seen)++)
		return;
	REQUIRE(bcache_get(c->f->cache, bytenr, c->f->fs.nodesize, &b) == 0,
		"read of node %" PRIu64 " failed", bytenr);
	REQUIRE(node_verify(&c->f->fs, b, bytenr, level, gen) == NULL || (b->flags & CB_DIRTY),
		"node %" PRIu64 " does not verify", bytenr);
	for (uint32_t i = 0; i < node_nritems(b); i++) {
		if (level) {
			expect_ref(c, node_blockptr(b, i), node_owner(b));
			conserve_walk(c, node_blockptr(b, i), level - 1, node_ptr_gen(b, i));
		} else if (leaf_item(b, i)->key.type == MEMREFS_EXT_TYPE) {
			uint64_t id = get_le64(leaf_item_data(b, i));
			(*count_slot(&c->ext, id))++;
			(*count_slot(&c->ext_back, PAIR(id, node_owner(b))))++;
		}
	}
	bcache_put(c->f->cache, b);
}

static int conserve_block(void *arg, uint64_t bytenr, uint64_t refs)
{
	struct conserve *c = arg;

	REQUIRE(count_get(&c->expect, bytenr) == refs,
		"block %" PRIu64 ": refcount %" PRIu64 ", pointers %" PRIu64, bytenr, refs,
		count_get(&c->expect, bytenr));
	return 0;
}

static int conserve_ext(void *arg, uint64_t id, uint64_t refs)
{
	struct conserve *c = arg;

	REQUIRE(count_get(&c->ext, id) == refs,
		"extent %" PRIu64 ": refcount %" PRIu64 ", items %" PRIu64, id, refs,
		count_get(&c->ext, id));
	return 0;
}

static void free_count(struct u64count *m)
{
	free(m->key);
	free(m->val);
}

void assert_refcounts_conserved(struct fixture *f, struct btree **roots, int nroots)
{
	struct conserve c = { .f = f };

	for (int i = 0; i < nroots; i++) {
		expect_ref(&c, roots[i]->root, roots[i]->owner);
		conserve_walk(&c, roots[i]->root, roots[i]->level, roots[i]->root_gen);
	}
	ck_assert_uint_eq(memrefs_allocated(f->mr), c.seen.n);
	memrefs_for_each(f->mr, conserve_block, &c);
	memrefs_for_each_ext(f->mr, conserve_ext, &c);
	/* Every expected backref key holds exactly its count, and there are no others. */
	for (size_t i = 0; i < c.back.cap; i++)
		if (c.back.key[i])
			REQUIRE(memrefs_backref(f->mr, c.back.key[i] >> 12, c.back.key[i] & 4095) ==
				c.back.val[i], "block %" PRIu64 " owner %" PRIu64 ": backref %" PRIu64
				", pointers %" PRIu64, c.back.key[i] >> 12, c.back.key[i] & 4095,
				memrefs_backref(f->mr, c.back.key[i] >> 12, c.back.key[i] & 4095),
				c.back.val[i]);
	REQUIRE(memrefs_backref_keys(f->mr) == c.back.n, "%" PRIu64 " backref keys, expected %zu",
		memrefs_backref_keys(f->mr), c.back.n);
	for (size_t i = 0; i < c.ext_back.cap; i++)
		if (c.ext_back.key[i])
			REQUIRE(memrefs_ext_backref(f->mr, c.ext_back.key[i] >> 12,
						    c.ext_back.key[i] & 4095) == c.ext_back.val[i],
				"extent %" PRIu64 " owner %" PRIu64 ": backref wrong",
				c.ext_back.key[i] >> 12, c.ext_back.key[i] & 4095);
	REQUIRE(memrefs_ext_backref_keys(f->mr) == c.ext_back.n,
		"%" PRIu64 " extent backref keys, expected %zu", memrefs_ext_backref_keys(f->mr),
		c.ext_back.n);
	free_count(&c.seen);
	free_count(&c.expect);
	free_count(&c.back);
	free_count(&c.ext);
	free_count(&c.ext_back);
}
