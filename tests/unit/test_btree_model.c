/*
 * Randomized model test: hundreds of thousands of mixed operations on a B+tree, each checked
 * against a simple sorted-array reference map. Seeded and reproducible: the seed is printed,
 * and COWFS_TEST_SEED overrides it; COWFS_MODEL_OPS overrides the operation count.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/refmap.h"

/*
 * The tree under test lives either on the in-memory refcount table (memrefs) or, with `real`,
 * in the default fs tree of a real filesystem: the extent tree, allocator and commit protocol
 * underneath, and the full checker as the conservation oracle.
 */
struct model {
	struct fixture f;
	struct fsfix x;
	bool real;
	struct bt_trans *tx;
	struct btree *tp;
	struct btree t;
	struct refmap ref;
	uint64_t rng;
	uint64_t op;
	uint32_t maxlen;
	uint64_t keyspace;
	uint8_t buf[65536];
};

static struct bt_key random_key(struct model *m)
{
	uint64_t r = rng_next(&m->rng);
	/* A small key space so that inserts collide and deletes hit. */
	return (struct bt_key){ (r >> 24) % m->keyspace, (uint8_t)(r >> 12) % 3, (r >> 16) % 8 };
}

static uint32_t random_len(struct model *m)
{
	uint64_t r = rng_next(&m->rng) % 1000;
	if (r < 5)
		return rng_next(&m->rng) % (m->maxlen + 1);   /* now and then a huge item */
	if (r < 50)
		return rng_next(&m->rng) % 1024;
	return rng_next(&m->rng) % 64;
}

static void fill(struct model *m, uint8_t *d, uint32_t len)
{
	uint64_t x = rng_next(&m->rng);
	for (uint32_t i = 0; i < len; i++)
		d[i] = (uint8_t)(x >> ((i % 8) * 8)) ^ (uint8_t)i;
}

#define FAILF(m, fmt, ...) ck_abort_msg("op %" PRIu64 ": " fmt, (m)->op, ##__VA_ARGS__)

static void op_insert(struct model *m)
{
	struct bt_key k = random_key(m);
	uint32_t len = random_len(m);
	fill(m, m->buf, len);
	int ret = bt_insert(m->tx, m->tp, &k, m->buf, len);
	if (ref_find(&m->ref, &k)) {
		if (ret != -EEXIST)
			FAILF(m, "insert of existing key returned %d", ret);
		return;
	}
	if (ret != 0)
		FAILF(m, "insert returned %d", ret);
	ref_insert(&m->ref, &k, m->buf, len);
}

static struct ref_item *random_existing(struct model *m)
{
	return m->ref.n ? &m->ref.v[rng_next(&m->rng) % m->ref.n] : NULL;
}

static void op_delete(struct model *m)
{
	struct ref_item *it = random_existing(m);
	struct bt_key k = it && rng_next(&m->rng) % 8 ? it->key : random_key(m);
	it = ref_find(&m->ref, &k);
	int ret = bt_delete(m->tx, m->tp, &k);
	if (ret != (it ? 0 : -ENOENT))
		FAILF(m, "delete returned %d (present: %d)", ret, !!it);
	if (it)
		ref_delete(&m->ref, it);
}

static void op_update(struct model *m)
{
	struct ref_item *it = random_existing(m);
	if (!it)
		return;
	fill(m, it->data, it->len);
	int ret = bt_update(m->tx, m->tp, &it->key, it->data, it->len);
	if (ret)
		FAILF(m, "update returned %d", ret);
	if (it->len && bt_update(m->tx, m->tp, &it->key, it->data, it->len - 1) != -EINVAL)
		FAILF(m, "update with wrong size did not fail");
}

static void op_resize(struct model *m)
{
	struct ref_item *it = random_existing(m);
	if (!it)
		return;
	uint32_t nl = random_len(m);
	int ret = bt_resize(m->tx, m->tp, &it->key, nl);
	if (ret)
		FAILF(m, "resize %u -> %u returned %d", it->len, nl, ret);
	it->data = realloc(it->data, nl ? nl : 1);
	if (nl > it->len)
		memset(it->data + it->len, 0, nl - it->len);
	it->len = nl;
}

static void check_item(struct model *m, const struct ref_item *it, const void *d, uint32_t len)
{
	if (len != it->len || memcmp(d, it->data, len))
		FAILF(m, "item (%" PRIu64 ",%u,%" PRIu64 ") has wrong content (len %u, want %u)",
		      it->key.objectid, it->key.type, it->key.offset, len, it->len);
}

static void op_lookup(struct model *m)
{
	struct ref_item *it = random_existing(m);
	struct bt_key k = it && rng_next(&m->rng) % 4 ? it->key : random_key(m);
	uint32_t len = 0;
	int ret = bt_lookup(m->tp, &k, m->buf, sizeof(m->buf), &len);
	it = ref_find(&m->ref, &k);
	if (ret != (it ? 0 : -ENOENT))
		FAILF(m, "lookup returned %d (present: %d)", ret, !!it);
	if (it)
		check_item(m, it, m->buf, len);
}

static void op_scan(struct model *m, bool forward)
{
	struct bt_key k = random_key(m), got;
	struct bt_cursor c;
	const void *d;
	uint32_t len;
	size_t i = ref_lower(&m->ref, &k);
	int steps = 1 + rng_next(&m->rng) % 64;
	int ret;

	bt_cursor_init(&c, m->tp);
	if (!forward) {
		/* Last item <= k. */
		if (i < m->ref.n && bt_key_cmp(&m->ref.v[i].key, &k) == 0)
			i++;
		i = i - 1;   /* wraps to SIZE_MAX when there is none */
	}
	ret = bt_cursor_seek(&c, &k, forward ? BT_SEEK_GE : BT_SEEK_LE);
	for (int s = 0; s < steps; s++) {
		bool expect = i < m->ref.n;
		if (!expect) {
			if (ret != -ENOENT)
				FAILF(m, "scan went past the end (ret %d)", ret);
			break;
		}
		if (ret != 0)
			FAILF(m, "scan ended early (ret %d) at step %d", ret, s);
		bt_cursor_item(&c, &got, &d, &len);
		if (bt_key_cmp(&got, &m->ref.v[i].key))
			FAILF(m, "scan returned the wrong key at step %d", s);
		check_item(m, &m->ref.v[i], d, len);
		ret = forward ? bt_cursor_next(&c) : bt_cursor_prev(&c);
		i = forward ? i + 1 : i - 1;
	}
	bt_cursor_release(&c);
}

static void full_check(struct model *m)
{
	struct bt_stats st;

	if (bt_check(m->tp) != 0)
		FAILF(m, "bt_check failed: %s", m->real ? m->x.last_report : m->f.last_report);
	ck_assert_int_eq(bt_stats(m->tp, &st), 0);
	fprintf(stderr, "  op %" PRIu64 ": %" PRIu64 " items, %" PRIu64 " leaves, %" PRIu64 " nodes, height %" PRIu64 "\n",
		m->op, st.items, st.leaves, st.nodes, st.height);
	if (st.items != m->ref.n)
		FAILF(m, "tree has %" PRIu64 " items, model %zu", st.items, m->ref.n);
	if (m->real) {
		fsfix_assert_clean(&m->x, NULL);
	} else {
		struct btree *roots[] = { &m->t };
		assert_refcounts_conserved(&m->f, roots, 1);
	}
}

static void model_commit(struct model *m)
{
	if (m->real)
		ck_assert_int_eq(cowfs_commit(m->x.fs), 0);
	else
		fixture_commit(&m->f);
}

static void run_model(uint32_t nodesize, uint64_t seed_default, uint64_t nops, bool real)
{
	struct model *m = calloc(1, sizeof(*m));
	const char *ops_env = getenv("COWFS_MODEL_OPS");

	if (ops_env && *ops_env)
		nops = strtoull(ops_env, NULL, 0);
	char name[32];
	snprintf(name, sizeof(name), "btree_model_%uk%s", nodesize / 1024, real ? "_real" : "");
	m->rng = test_seed(name, seed_default);
	m->real = real;
	if (real) {
		fsfix_setup(&m->x, "model-real", 512ull << 20, nodesize);
		m->tx = &m->x.fs->trans.bt;
		m->tp = &m->x.fs->fs_root.t;
	} else {
		fixture_setup(&m->f, "model", nodesize, 512ull << 20);
		m->tx = &m->f.tx;
		m->tp = &m->t;
	}
	m->maxlen = bt_max_item_size(nodesize);
	/* Small nodes get a larger key space: more items, a taller tree. */
	m->keyspace = nodesize == 4096 ? 16384 : 4096;
	if (!real)
		ck_assert_int_eq(bt_create(m->tx, 5, m->tp), 0);

	for (m->op = 0; m->op < nops; m->op++) {
		uint64_t r = rng_next(&m->rng) % 100;
		/* Grow first, then churn, then drain: the tree goes up and comes back down. */
		uint64_t phase = m->op * 3 / nops;
		uint64_t ins = phase == 0 ? 45 : phase == 1 ? 25 : 5;
		uint64_t del = phase == 0 ? 10 : phase == 1 ? 25 : 45;
		if (r < ins)
			op_insert(m);
		else if (r < ins + del)
			op_delete(m);
		else if (r < ins + del + 8)
			op_update(m);
		else if (r < ins + del + 16)
			op_resize(m);
		else if (r < ins + del + 36)
			op_lookup(m);
		else
			op_scan(m, r & 1);
		if (m->op % 5000 == 4999)
			model_commit(m);
		if (m->op % 20000 == 19999)
			full_check(m);
	}
	full_check(m);

	/* Delete everything: the tree must come back to one empty leaf. */
	while (m->ref.n) {
		ck_assert_int_eq(bt_delete(m->tx, m->tp, &m->ref.v[m->ref.n - 1].key), 0);
		ref_delete(&m->ref, &m->ref.v[m->ref.n - 1]);
	}
	struct bt_stats st;
	ck_assert_int_eq(bt_stats(m->tp, &st), 0);
	ck_assert_uint_eq(st.nodes, 1);
	ck_assert_uint_eq(st.items, 0);
	ck_assert_uint_eq(m->tp->level, 0);
	model_commit(m);
	if (real) {
		/* The default fs tree stays; everything it held is gone from the extent tree.
		 * Left: the root, extent, fs and checksum trees' roots. */
		struct cowfs_check_stats cst;
		fsfix_assert_clean(&m->x, &cst);
		ck_assert_uint_eq(cst.tree_blocks, 4);
		fsfix_teardown(&m->x);
	} else {
		ck_assert_int_eq(bt_drop(m->tx, m->tp), 0);
		ck_assert_uint_eq(memrefs_allocated(m->f.mr), 0);
		fixture_teardown(&m->f);
	}
	ref_free(&m->ref);
	free(m);
}

START_TEST(model_4k_nodes)
{
	run_model(4096, 0x5eed4096, 200000, false);
}
END_TEST

/* The largest node size: few, wide nodes and items up to 64 KiB. */
START_TEST(model_64k_nodes)
{
	run_model(65536, 0x5eed65536, 60000, false);
}
END_TEST

/* The same model on the real allocator, extent tree and commit protocol. */
START_TEST(model_4k_nodes_real_extent_tree)
{
	run_model(4096, 0x5eed4096, 200000, true);
}
END_TEST

START_TEST(model_16k_nodes_real_extent_tree)
{
	run_model(16384, 0x5eed16384, 200000, true);
}
END_TEST

START_TEST(nodesize_validated)
{
	struct fixture f;
	struct btree t;
	static const uint32_t bad[] = { 0, 2048, 12288, 131072 };

	fixture_setup(&f, "nodesize", 4096, 16ull << 20);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.fs.nodesize = bad[i];
		ck_assert_int_eq(bt_create(&f.tx, 5, &t), -EINVAL);
	}
	ck_assert_int_eq(f.tx.error, 0);
	fixture_teardown(&f);
}
END_TEST

START_TEST(model_16k_nodes)
{
	run_model(16384, 0x5eed16384, 200000, false);
}
END_TEST

/*
 * Insert orders that stress internal splits and first-key fixups: descending keys (every
 * insert at slot 0 of the leftmost path), and keys that fill gaps left by an earlier pass
 * (inserts at the front of right halves). Deep trees with 4 KiB nodes and large items.
 */
static void check_against(struct btree *t, struct refmap *ref, struct fixture *f)
{
	struct bt_cursor c;
	struct bt_key k;
	const void *d;
	uint32_t len;
	size_t i = 0;
	int ret;

	REQUIRE(bt_check(t) == 0, "bt_check: %s", f->last_report);
	bt_cursor_init(&c, t);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c), i++) {
		bt_cursor_item(&c, &k, &d, &len);
		REQUIRE(i < ref->n && bt_key_cmp(&k, &ref->v[i].key) == 0, "wrong key at %zu", i);
		REQUIRE(len == ref->v[i].len && !memcmp(d, ref->v[i].data, len), "wrong data at %zu", i);
	}
	REQUIRE(ret == -ENOENT && i == ref->n, "scan ended at %zu of %zu (%d)", i, ref->n, ret);
	bt_cursor_release(&c);
}

START_TEST(internal_splits_and_fixups)
{
	struct fixture f;
	struct btree t;
	struct refmap ref = { 0 };
	uint8_t val[200];
	struct bt_stats st;

	fixture_setup(&f, "splits", 4096, 256ull << 20);
	ck_assert_int_eq(bt_create(&f.tx, 5, &t), 0);
	/* Pass 1: descending even keys. Pass 2: the odd keys between them, ascending. */
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = 0; i < 30000; i++) {
			uint64_t id = pass == 0 ? 2 * (30000 - i) : 2 * i + 1;
			struct bt_key k = { id, 1, 0 };
			uint32_t len = (uint32_t)(id * 7 % sizeof(val));
			memset(val, (int)id, len);
			REQUIRE(bt_insert(&f.tx, &t, &k, val, len) == 0, "insert %" PRIu64, id);
			ref_insert(&ref, &k, val, len);
			if (i % 7000 == 6999)
				fixture_commit(&f);
		}
		check_against(&t, &ref, &f);
	}
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	ck_assert_uint_ge(st.height, 3);
	/* Drain from the front: every delete changes the first key of the whole tree. */
	for (uint64_t id = 1; id <= 60000; id++) {
		struct bt_key k = { id, 1, 0 };
		REQUIRE(bt_delete(&f.tx, &t, &k) == 0, "delete %" PRIu64, id);
		ref_delete(&ref, &ref.v[0]);
		if (id % 15000 == 0)
			check_against(&t, &ref, &f);
	}
	ck_assert_uint_eq(t.level, 0);
	struct btree *roots[] = { &t };
	assert_refcounts_conserved(&f, roots, 1);
	ref_free(&ref);
	fixture_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree_model");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, model_4k_nodes);
	tcase_add_test(tc, model_16k_nodes);
	tcase_add_test(tc, model_64k_nodes);
	tcase_add_test(tc, model_4k_nodes_real_extent_tree);
	tcase_add_test(tc, model_16k_nodes_real_extent_tree);
	tcase_add_test(tc, nodesize_validated);
	tcase_add_test(tc, internal_splits_and_fixups);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
