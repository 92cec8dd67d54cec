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
	struct u64count seen;     /* distinct reachable nodes */
	struct u64count expect;   /* expected count per node */
	struct u64count ext;      /* expected count per external id */
};

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
			(*count_slot(&c->expect, node_blockptr(b, i)))++;
			conserve_walk(c, node_blockptr(b, i), level - 1, node_ptr_gen(b, i));
		} else if (leaf_item(b, i)->key.type == MEMREFS_EXT_TYPE) {
			(*count_slot(&c->ext, get_le64(leaf_item_data(b, i))))++;
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

void assert_refcounts_conserved(struct fixture *f, struct btree **roots, int nroots)
{
	struct conserve c = { .f = f };

	for (int i = 0; i < nroots; i++) {
		(*count_slot(&c.expect, roots[i]->root))++;
		conserve_walk(&c, roots[i]->root, roots[i]->level, roots[i]->root_gen);
	}
	ck_assert_uint_eq(memrefs_allocated(f->mr), c.seen.n);
	memrefs_for_each(f->mr, conserve_block, &c);
	memrefs_for_each_ext(f->mr, conserve_ext, &c);
	/* And every expected external reference is counted (none missing from memrefs). */
	for (size_t i = 0; i < c.ext.cap; i++)
		if (c.ext.key[i])
			REQUIRE(memrefs_ext_refs(f->mr, c.ext.key[i]) == c.ext.val[i],
				"extent %" PRIu64 " missing from the refcount table", c.ext.key[i]);
	free(c.seen.key); free(c.seen.val);
	free(c.expect.key); free(c.expect.val);
	free(c.ext.key); free(c.ext.val);
}
