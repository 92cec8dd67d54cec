/*
 * Clone tests: O(1) clones with lazy refcounting. Clone a tree, mutate both sides heavily,
 * check that each side sees exactly its own contents and that reference counts are conserved
 * after every step (each block's count equals the pointers to it from all live roots, each
 * external extent's count equals the items referencing it); drop one side and check that what
 * it owned alone is freed and what it shared survives; drop the rest and check nothing is left.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/btree/view.h"
#include "tests/support/fixture.h"
#include "tests/support/refmap.h"

#define NODESIZE 4096u
#define MAX_TREES 4

struct side {
	struct btree t;
	struct refmap ref;
};

struct world {
	struct fixture f;
	struct side s[MAX_TREES];
	int n;
	uint64_t rng;
	uint64_t next_ext;     /* next external extent id (0 is never used) */
	uint8_t buf[NODESIZE];
};

static void conserve(struct world *w)
{
	struct btree *roots[MAX_TREES];
	int n = 0;

	for (int i = 0; i < w->n; i++)
		if (w->s[i].t.root)
			roots[n++] = &w->s[i].t;
	assert_refcounts_conserved(&w->f, roots, n);
}

static void verify_side(struct world *w, struct side *s)
{
	struct bt_cursor c;
	struct bt_key k;
	const void *d;
	uint32_t len;
	size_t i = 0;
	int ret;

	bt_cursor_init(&c, &s->t);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c), i++) {
		bt_cursor_item(&c, &k, &d, &len);
		REQUIRE(i < s->ref.n, "tree %" PRIu64 " has extra items", s->t.owner);
		REQUIRE(bt_key_cmp(&k, &s->ref.v[i].key) == 0, "tree %" PRIu64 ": wrong key at %zu", s->t.owner, i);
		REQUIRE(len == s->ref.v[i].len && memcmp(d, s->ref.v[i].data, len) == 0,
			"tree %" PRIu64 ": wrong content at %zu", s->t.owner, i);
	}
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_uint_eq(i, s->ref.n);
	bt_cursor_release(&c);
	REQUIRE(bt_check(&s->t) == 0, "bt_check failed");
	(void)w;
}

static struct bt_key random_key(struct world *w)
{
	uint64_t r = rng_next(&w->rng);
	/* Every fourth key is an external-reference item. */
	uint8_t type = (r & 3) == 0 ? MEMREFS_EXT_TYPE : 1;
	return (struct bt_key){ (r >> 8) % 20000, type, 0 };
}

static void side_insert(struct world *w, struct side *s)
{
	struct bt_key k = random_key(w);
	uint32_t len = 8 + rng_next(&w->rng) % 100;
	uint64_t id = 0;

	for (uint32_t i = 0; i < len; i++)
		w->buf[i] = (uint8_t)rng_next(&w->rng);
	if (k.type == MEMREFS_EXT_TYPE) {
		id = ++w->next_ext;
		put_le64(w->buf, id);
	}
	int ret = bt_insert(&w->f.tx, &s->t, &k, w->buf, len);
	if (ref_find(&s->ref, &k)) {
		REQUIRE(ret == -EEXIST, "insert of existing key returned %d", ret);
		return;
	}
	REQUIRE(ret == 0, "insert returned %d", ret);
	ref_insert(&s->ref, &k, w->buf, len);
}

static void side_delete(struct world *w, struct side *s)
{
	if (!s->ref.n)
		return;
	struct ref_item *it = &s->ref.v[rng_next(&w->rng) % s->ref.n];
	REQUIRE(bt_delete(&w->f.tx, &s->t, &it->key) == 0, "bt_delete failed");
	ref_delete(&s->ref, it);
}

static void side_update(struct world *w, struct side *s)
{
	if (!s->ref.n)
		return;
	struct ref_item *it = &s->ref.v[rng_next(&w->rng) % s->ref.n];
	if (it->key.type == MEMREFS_EXT_TYPE)
		return;
	for (uint32_t i = 0; i < it->len; i++)
		it->data[i] = (uint8_t)rng_next(&w->rng);
	REQUIRE(bt_update(&w->f.tx, &s->t, &it->key, it->data, it->len) == 0, "bt_update failed");
}

static void side_resize(struct world *w, struct side *s)
{
	if (!s->ref.n)
		return;
	struct ref_item *it = &s->ref.v[rng_next(&w->rng) % s->ref.n];
	if (it->key.type == MEMREFS_EXT_TYPE)
		return;
	uint32_t nl = rng_next(&w->rng) % 400;
	REQUIRE(bt_resize(&w->f.tx, &s->t, &it->key, nl) == 0, "bt_resize failed");
	it->data = realloc(it->data, nl ? nl : 1);
	if (nl > it->len)
		memset(it->data + it->len, 0, nl - it->len);
	it->len = nl;
}

static void side_random_op(struct world *w, struct side *s)
{
	uint64_t r = rng_next(&w->rng) % 10;

	if (r < 4)
		side_insert(w, s);
	else if (r < 7)
		side_delete(w, s);
	else if (r < 9)
		side_update(w, s);
	else
		side_resize(w, s);
}

static void world_setup(struct world *w, const char *name, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->rng = test_seed(name, seed);
	fixture_setup(&w->f, name, NODESIZE, 256ull << 20);
	REQUIRE(bt_create(&w->f.tx, 5, &w->s[0].t) == 0, "bt_create failed");
	w->n = 1;
}

static void world_teardown(struct world *w)
{
	for (int i = 0; i < w->n; i++)
		ref_free(&w->s[i].ref);
	fixture_teardown(&w->f);
}

static void populate(struct world *w, struct side *s, int n)
{
	for (int i = 0; i < n; i++)
		side_insert(w, s);
}

static struct side *clone_side(struct world *w, struct side *src)
{
	struct side *dst = &w->s[w->n];

	REQUIRE(bt_clone(&w->f.tx, &src->t, 5 + w->n, &dst->t) == 0, "bt_clone failed");
	ref_copy(&dst->ref, &src->ref);
	w->n++;
	return dst;
}

static void drop_side(struct world *w, struct side *s)
{
	REQUIRE(bt_drop(&w->f.tx, &s->t) == 0, "bt_drop failed");
	/* The items of a dropped tree no longer hold their extents: the drop released them only
	 * for leaves the tree owned alone, so conservation below proves it did exactly that. */
	ref_free(&s->ref);
}

/* Clone is O(1): one new node, the rest shared. */
START_TEST(clone_shares_all_but_root)
{
	struct world *w = malloc(sizeof(*w));
	struct bt_stats st;

	world_setup(w, "clone_basic", 101);
	populate(w, &w->s[0], 15000);
	fixture_commit(&w->f);
	REQUIRE(bt_stats(&w->s[0].t, &st) == 0, "bt_stats failed");
	ck_assert_uint_ge(st.height, 3);
	uint64_t before = memrefs_allocated(w->f.mr);
	struct side *b = clone_side(w, &w->s[0]);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), before + 1);
	ck_assert_uint_ne(b->t.root, w->s[0].t.root);
	verify_side(w, &w->s[0]);
	verify_side(w, b);
	conserve(w);
	world_teardown(w);
	free(w);
}
END_TEST

/* Both sides diverge; conservation is checked every few operations. */
START_TEST(clone_diverge_and_drop)
{
	struct world *w = malloc(sizeof(*w));

	world_setup(w, "clone_diverge", 202);
	populate(w, &w->s[0], 12000);
	fixture_commit(&w->f);
	clone_side(w, &w->s[0]);
	for (int step = 0; step < 6000; step++) {
		side_random_op(w, &w->s[step & 1]);
		if (step % 10 == 9)
			conserve(w);
		if (step % 1000 == 999)
			fixture_commit(&w->f);
	}
	verify_side(w, &w->s[0]);
	verify_side(w, &w->s[1]);
	conserve(w);

	/* Drop the clone: only the original's blocks remain, its content intact. */
	drop_side(w, &w->s[1]);
	conserve(w);
	verify_side(w, &w->s[0]);
	fixture_commit(&w->f);
	drop_side(w, &w->s[0]);
	conserve(w);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

/* bt_walk with `enter`: the nodes of two trees sharing most of them, each read once. */
struct walk_once {
	uint64_t seen[4096];   /* open addressing, 0 empty */
	uint64_t entered, read, skipped, roots;
	uint64_t last_entered, last_parent;
};

static bool seen_add(struct walk_once *wo, uint64_t bytenr)
{
	size_t n = sizeof(wo->seen) / sizeof(wo->seen[0]), i = (bytenr >> 12) % n;

	for (; wo->seen[i]; i = (i + 1) % n)
		if (wo->seen[i] == bytenr)
			return false;
	wo->seen[i] = bytenr;
	return true;
}

static int once_enter(void *arg, uint64_t bytenr, uint8_t level, const struct bt_node *parent)
{
	struct walk_once *wo = arg;

	(void)level;
	wo->entered++;
	wo->roots += !parent;
	if (!seen_add(wo, bytenr)) {
		wo->skipped++;
		return 1;
	}
	wo->last_entered = bytenr;
	wo->last_parent = parent ? bt_node_bytenr(parent) : 0;
	return 0;
}

static int once_node(void *arg, const struct bt_node *n, uint64_t parent)
{
	struct walk_once *wo = arg;

	/* Read right after it was entered, and named with the same parent. */
	REQUIRE(bt_node_bytenr(n) == wo->last_entered && parent == wo->last_parent,
		"node %" PRIu64 " read out of turn", bt_node_bytenr(n));
	wo->read++;
	return 0;
}

START_TEST(walk_enters_shared_nodes_once)
{
	struct world *w = malloc(sizeof(*w));
	struct walk_once *wo = calloc(1, sizeof(*wo));
	struct bt_walk walk = { .node = once_node, .enter = once_enter, .arg = wo };

	world_setup(w, "clone_walk", 303);
	populate(w, &w->s[0], 12000);
	fixture_commit(&w->f);
	clone_side(w, &w->s[0]);
	for (int step = 0; step < 40; step++)
		side_random_op(w, &w->s[step & 1]);
	fixture_commit(&w->f);
	conserve(w);
	ck_assert_int_eq(bt_walk(&w->s[0].t, &walk), 0);
	uint64_t first = wo->read;
	ck_assert_int_eq(bt_walk(&w->s[1].t, &walk), 0);
	/* Every allocated block is reachable (conserve), and each was read exactly once. */
	ck_assert_uint_eq(wo->read, memrefs_allocated(w->f.mr));
	ck_assert_uint_eq(wo->entered, wo->read + wo->skipped);
	ck_assert_uint_eq(wo->roots, 2);
	ck_assert_uint_gt(wo->skipped, 0);
	ck_assert_uint_lt(wo->read - first, first / 2);   /* the clone shares most of it */
	world_teardown(w);
	free(wo);
	free(w);
}
END_TEST

/*
 * Clone in the middle of a transaction: nodes the source wrote in this transaction are
 * writable in place until the clone; afterwards they are shared and must be shadowed.
 */
START_TEST(clone_within_transaction)
{
	struct world *w = malloc(sizeof(*w));

	world_setup(w, "clone_txn", 303);
	populate(w, &w->s[0], 8000);
	fixture_commit(&w->f);
	for (int i = 0; i < 2000; i++)
		side_random_op(w, &w->s[0]);           /* dirty, writable nodes */
	struct side *b = clone_side(w, &w->s[0]);  /* same transaction */
	for (int i = 0; i < 3000; i++) {
		side_random_op(w, &w->s[0]);
		if (i % 50 == 49)
			conserve(w);
	}
	verify_side(w, b);                         /* unchanged by the source's edits */
	verify_side(w, &w->s[0]);
	fixture_commit(&w->f);
	drop_side(w, &w->s[0]);
	conserve(w);
	verify_side(w, b);
	drop_side(w, b);
	conserve(w);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

/* Clones of clones, mutated in turn, dropped in an order that leaves shared middles. */
START_TEST(clone_chain)
{
	struct world *w = malloc(sizeof(*w));

	world_setup(w, "clone_chain", 404);
	populate(w, &w->s[0], 10000);
	fixture_commit(&w->f);
	struct side *b = clone_side(w, &w->s[0]);
	for (int i = 0; i < 1500; i++)
		side_random_op(w, b);
	fixture_commit(&w->f);
	struct side *c = clone_side(w, b);
	struct side *d = clone_side(w, &w->s[0]);
	for (int i = 0; i < 4000; i++) {
		side_random_op(w, &w->s[i % 4]);
		if (i % 20 == 19)
			conserve(w);
		if (i % 700 == 699)
			fixture_commit(&w->f);
	}
	for (int i = 0; i < 4; i++)
		verify_side(w, &w->s[i]);
	drop_side(w, b);
	conserve(w);
	verify_side(w, c);
	drop_side(w, &w->s[0]);
	conserve(w);
	verify_side(w, c);
	verify_side(w, d);
	drop_side(w, d);
	conserve(w);
	drop_side(w, c);
	conserve(w);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

/* Emptying a clone completely shrinks it to a leaf without disturbing the source. */
START_TEST(clone_emptied)
{
	struct world *w = malloc(sizeof(*w));

	world_setup(w, "clone_empty", 505);
	populate(w, &w->s[0], 9000);
	fixture_commit(&w->f);
	struct side *b = clone_side(w, &w->s[0]);
	while (b->ref.n) {
		side_delete(w, b);
		if (b->ref.n % 500 == 0)
			conserve(w);
	}
	ck_assert_uint_eq(b->t.level, 0);
	verify_side(w, &w->s[0]);
	verify_side(w, b);
	conserve(w);
	world_teardown(w);
	free(w);
}
END_TEST

static void drain(struct world *w, struct side *s, size_t keep, int check_every)
{
	for (int i = 0; s->ref.n > keep; i++) {
		side_delete(w, s);
		if (i % check_every == check_every - 1)
			conserve(w);
	}
}

/*
 * Both sides change the same regions, so each tree ends up holding nodes of both owners (a
 * node shadowed exclusively keeps the owner it had); then growth splits such nodes and
 * draining merges nodes of different owners and shrinks roots to children of the other owner.
 */
START_TEST(clone_interleaved_then_drained)
{
	struct world *w = malloc(sizeof(*w));

	world_setup(w, "clone_interleave", 606);
	populate(w, &w->s[0], 10000);
	fixture_commit(&w->f);
	clone_side(w, &w->s[0]);
	for (int step = 0; step < 8000; step++) {
		side_random_op(w, &w->s[(step / 7) & 1]);
		if (step % 25 == 24)
			conserve(w);
		if (step % 1500 == 1499)
			fixture_commit(&w->f);
	}
	for (int step = 0; step < 6000; step++)
		side_insert(w, &w->s[step & 1]);
	conserve(w);
	drain(w, &w->s[0], 300, 25);
	drain(w, &w->s[1], 10, 25);
	verify_side(w, &w->s[0]);
	verify_side(w, &w->s[1]);
	drain(w, &w->s[0], 0, 5);
	ck_assert_uint_eq(w->s[0].t.level, 0);
	conserve(w);
	drop_side(w, &w->s[0]);
	drop_side(w, &w->s[1]);
	conserve(w);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

/*
 * The original is dropped while the clone lives: the clone now holds the original's nodes
 * alone, shadows them exclusively (keeping their owner), splits and merges them with its own.
 */
START_TEST(clone_outlives_original)
{
	struct world *w = malloc(sizeof(*w));

	world_setup(w, "clone_outlives", 707);
	populate(w, &w->s[0], 12000);
	fixture_commit(&w->f);
	struct side *b = clone_side(w, &w->s[0]);
	for (int i = 0; i < 1500; i++)
		side_random_op(w, b);
	drop_side(w, &w->s[0]);
	conserve(w);
	fixture_commit(&w->f);
	for (int i = 0; i < 5000; i++) {
		if (i & 1)
			side_insert(w, b);
		else
			side_random_op(w, b);
		if (i % 25 == 24)
			conserve(w);
	}
	drain(w, b, 0, 20);
	ck_assert_uint_eq(b->t.level, 0);
	verify_side(w, b);
	drop_side(w, b);
	conserve(w);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree_clone");
	TCase *tc = tcase_create("clone");

	tcase_add_test(tc, clone_shares_all_but_root);
	tcase_add_test(tc, clone_diverge_and_drop);
	tcase_add_test(tc, walk_enters_shared_nodes_once);
	tcase_add_test(tc, clone_within_transaction);
	tcase_add_test(tc, clone_chain);
	tcase_add_test(tc, clone_emptied);
	tcase_add_test(tc, clone_interleaved_then_drained);
	tcase_add_test(tc, clone_outlives_original);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
