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
#define MAX_TREES 6

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

/*
 * Scan `s`: every item equals the model's item at the same place, and the tree passes
 * bt_check. Returns how many items there are (a tree being dropped from the right holds a
 * prefix of its model).
 */
static size_t scan_side(struct side *s)
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
	bt_cursor_release(&c);
	REQUIRE(bt_check(&s->t) == 0, "bt_check failed");
	return i;
}

static void verify_side(struct world *w, struct side *s)
{
	ck_assert_uint_eq(scan_side(s), s->ref.n);
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

/* ---- bounded drops (bt_drop_step) ---- */

struct drop_plan {
	unsigned max_budget;   /* budgets drawn from [1, max_budget] */
	int commit_every;      /* steps between commits (0: never) */
	int reopen_every;      /* commits between cold-cache reopens (0: never) */
};

/*
 * Drop `s` in bounded steps. After every step: counts and backref keys exact for every
 * block and extent (conserve), the rest of `s` a valid tree holding a prefix of its items,
 * every other tree unchanged, the progress units never growing, the step within its budget.
 */
static void drop_in_steps(struct world *w, struct side *s, const struct drop_plan *pl)
{
	uint64_t total, units, prev;
	size_t items = s->ref.n;
	unsigned freed, steps = 0, commits = 0;
	bool done = false;

	REQUIRE(bt_drop_units(&s->t, &total) == 0, "bt_drop_units failed");
	ck_assert_uint_gt(total, 0);
	prev = total;
	while (!done) {
		unsigned budget = 1 + rng_next(&w->rng) % pl->max_budget;
		REQUIRE(bt_drop_step(&w->f.tx, &s->t, budget, &freed, &done) == 0,
			"bt_drop_step failed at step %u", steps);
		steps++;
		/* At least one; past the budget only by the empty nodes the last move left. */
		REQUIRE(freed >= 1 && freed <= budget + BT_MAX_LEVEL, "step %u freed %u of %u",
			steps, freed, budget);
		REQUIRE(done == (s->t.root == 0), "done but a root is left");
		REQUIRE(bt_drop_units(&s->t, &units) == 0, "bt_drop_units failed");
		REQUIRE(units <= prev, "progress went back: %" PRIu64 " after %" PRIu64, units, prev);
		REQUIRE(done == (units == 0), "units %" PRIu64 " with done %d", units, done);
		prev = units;
		size_t left = s->t.root ? scan_side(s) : 0;
		REQUIRE(left <= items, "the tree being dropped grew");
		items = left;
		conserve(w);
		for (int i = 0; i < w->n; i++)
			if (&w->s[i] != s && w->s[i].t.root)
				verify_side(w, &w->s[i]);
		if (pl->commit_every && steps % pl->commit_every == 0) {
			fixture_commit(&w->f);
			if (pl->reopen_every && ++commits % pl->reopen_every == 0)
				fixture_reopen(&w->f);
		}
	}
	ck_assert_uint_eq(items, 0);
	/* Once gone, another step does nothing. */
	ck_assert_int_eq(bt_drop_step(&w->f.tx, &s->t, 5, &freed, &done), 0);
	ck_assert(done);
	ck_assert_uint_eq(freed, 0);
	ref_free(&s->ref);
	fprintf(stderr, "tree %" PRIu64 ": dropped in %u steps, %" PRIu64 " units\n", s->t.owner,
		steps, total);
}

/*
 * Three trees sharing most of their nodes, diverged on every side; each is dropped in small
 * steps with commits and cold-cache reopens in between: a clone first (the original's nodes
 * in it are let go), then the original (whose nodes the last clone still shares), then the
 * last. After the first drop exactly what the other two reach survives; at the end nothing.
 */
START_TEST(drop_step_diverged_clones)
{
	struct world *w = malloc(sizeof(*w));
	struct drop_plan pl = { .max_budget = 6, .commit_every = 4, .reopen_every = 4 };

	world_setup(w, "drop_step_clones", 808);
	populate(w, &w->s[0], 6000);
	fixture_commit(&w->f);
	clone_side(w, &w->s[0]);
	fixture_commit(&w->f);
	clone_side(w, &w->s[0]);
	for (int step = 0; step < 3000; step++) {
		side_random_op(w, &w->s[step % 3]);
		if (step % 1000 == 999)
			fixture_commit(&w->f);
	}
	for (int i = 0; i < 3; i++)
		verify_side(w, &w->s[i]);
	conserve(w);
	ck_assert_uint_ge(w->s[1].t.level, 2);
	/* The first steps run in the transaction that changed the trees (nodes still writable). */
	drop_in_steps(w, &w->s[1], &pl);
	conserve(w);
	verify_side(w, &w->s[0]);
	verify_side(w, &w->s[2]);
	fixture_commit(&w->f);
	pl.max_budget = 20;
	drop_in_steps(w, &w->s[0], &pl);
	verify_side(w, &w->s[2]);
	pl.commit_every = 1;
	drop_in_steps(w, &w->s[2], &pl);
	conserve(w);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	ck_assert_uint_eq(memrefs_backref_keys(w->f.mr), 0);
	ck_assert_uint_eq(memrefs_ext_backref_keys(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

/*
 * Nodes of another owner in the tree being dropped, holding shared pointers: the original
 * is dropped while its clone lives (the clone now holds the original's nodes alone), the clone
 * is cloned again and both change, then the first clone is dropped: the references it lets go
 * are keyed by the owner of the node holding them, not by the tree.
 */
START_TEST(drop_step_foreign_owners)
{
	struct world *w = malloc(sizeof(*w));
	struct drop_plan pl = { .max_budget = 5, .commit_every = 3, .reopen_every = 5 };

	world_setup(w, "drop_step_foreign", 1111);
	populate(w, &w->s[0], 6000);
	fixture_commit(&w->f);
	struct side *b = clone_side(w, &w->s[0]);
	fixture_commit(&w->f);
	drop_in_steps(w, &w->s[0], &pl);
	/* b's root points at the original's nodes, b's alone now: changing them keeps their
	 * owner (an exclusive shadow). */
	for (int i = 0; i < 300; i++)
		side_random_op(w, b);
	fixture_commit(&w->f);
	/* A few changes in the second clone: it shadows b's nodes of owner 5 on the way, which
	 * b then holds alone, with children that both still share. */
	struct side *c = clone_side(w, b);
	for (int i = 0; i < 40; i++)
		side_random_op(w, i & 1 ? c : b);
	fixture_commit(&w->f);
	drop_in_steps(w, b, &pl);
	verify_side(w, c);
	drop_in_steps(w, c, &pl);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

/* Budget 1: one block freed or let go per step, checked after each. */
START_TEST(drop_step_budget_one)
{
	struct world *w = malloc(sizeof(*w));
	struct drop_plan pl = { .max_budget = 1, .commit_every = 7, .reopen_every = 3 };

	world_setup(w, "drop_step_one", 909);
	populate(w, &w->s[0], 2500);
	fixture_commit(&w->f);
	clone_side(w, &w->s[0]);
	for (int step = 0; step < 600; step++)
		side_random_op(w, &w->s[step & 1]);
	fixture_commit(&w->f);
	drop_in_steps(w, &w->s[1], &pl);
	verify_side(w, &w->s[0]);
	drop_in_steps(w, &w->s[0], &pl);
	ck_assert_uint_eq(memrefs_allocated(w->f.mr), 0);
	world_teardown(w);
	free(w);
}
END_TEST

/* Trees of one leaf: a leaf root of its own is freed (its items' references go with it) in one
 * step, a shared leaf root just loses the tree's reference. */
START_TEST(drop_step_single_leaf)
{
	struct world *w = malloc(sizeof(*w));
	struct drop_plan pl = { .max_budget = 3 };
	unsigned freed;
	bool done;

	world_setup(w, "drop_step_leaf", 1010);
	populate(w, &w->s[0], 12);
	ck_assert_uint_eq(w->s[0].t.level, 0);
	fixture_commit(&w->f);
	clone_side(w, &w->s[0]);
	drop_in_steps(w, &w->s[1], &pl);
	verify_side(w, &w->s[0]);
	conserve(w);

	/* An empty tree is a leaf too. */
	struct side *e = &w->s[w->n++];
	REQUIRE(bt_create(&w->f.tx, 5 + w->n - 1, &e->t) == 0, "bt_create failed");
	ck_assert_int_eq(bt_drop_step(&w->f.tx, &e->t, 1, &freed, &done), 0);
	ck_assert(done);
	ck_assert_uint_eq(freed, 1);
	conserve(w);

	/* A root that is a shared leaf: a clone emptied down to its one shared leaf. Sequential
	 * inserts fill the first leaf completely, so the second, emptied, merges into nothing. */
	struct side *q = &w->s[w->n++];
	REQUIRE(bt_create(&w->f.tx, 5 + w->n - 1, &q->t) == 0, "bt_create failed");
	memset(w->buf, 0x5a, 60);
	for (uint64_t i = 0; q->t.level == 0 || q->ref.n < 60; i++) {
		struct bt_key k = { i, 1, 0 };
		REQUIRE(bt_insert(&w->f.tx, &q->t, &k, w->buf, 60) == 0, "bt_insert failed");
		ref_insert(&q->ref, &k, w->buf, 60);
	}
	fixture_commit(&w->f);
	struct side *c = clone_side(w, q);
	while (c->t.level > 0) {
		struct ref_item *last = &c->ref.v[c->ref.n - 1];
		REQUIRE(bt_delete(&w->f.tx, &c->t, &last->key) == 0, "bt_delete failed");
		ref_delete(&c->ref, last);
	}
	ck_assert_uint_gt(memrefs_refs(w->f.mr, c->t.root), 1);
	conserve(w);
	drop_in_steps(w, c, &pl);
	conserve(w);
	verify_side(w, q);
	drop_in_steps(w, q, &pl);
	drop_in_steps(w, &w->s[0], &pl);
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
	tcase_add_test(tc, drop_step_diverged_clones);
	tcase_add_test(tc, drop_step_foreign_owners);
	tcase_add_test(tc, drop_step_budget_one);
	tcase_add_test(tc, drop_step_single_leaf);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
