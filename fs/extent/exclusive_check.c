/*
 * The brute-force recount of exclusive space (exclusive.h: extent_exclusive_recount), the
 * oracle for extent_exclusive_of. No reference count is looked at: every tree given is walked
 * completely, and each tree block and data extent notes which kind of tree reached it, one of
 * the set or one outside it (for the question asked, which trees reach an extent matters only
 * up to these two classes).
 *
 * Why each tree's walk may stop at a node its class has already marked: a node is marked by a
 * class only when a walk of that class enters it, and that walk then descends into all of its
 * children, so everything below a marked node is marked by the class too (by induction on the
 * level). Data extents are marked from every leaf entered, so the same holds for them. The
 * marks are then exactly "reachable from a tree of the set" and "reachable from a tree outside
 * it", through any path.
 *
 * Memory: one entry per distinct extent reached, in an open-addressing table by address.
 */
#include "fs/extent/exclusive.h"

#include <errno.h>
#include <stdlib.h>

#include "fs/btree/view.h"

enum {
	REACH_SET = 1,     /* a tree of the set reaches it */
	REACH_OTHER = 2,   /* a tree outside the set does */
};

struct reach {
	uint64_t start;    /* 0: a free slot (no extent starts at 0) */
	uint64_t len;
	bool is_data;
	uint8_t marks;
};

struct recount {
	struct extents *x;
	struct reach *v;
	size_t cap, n;        /* cap: a power of two */
	size_t limit;
	uint8_t mark;         /* the class of the tree being walked */
	uint64_t nodes_read;
};

static size_t slot_of(uint64_t start, size_t cap)
{
	return (size_t)((start * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static struct reach *probe(struct reach *v, size_t cap, size_t slot, uint64_t start)
{
	while (v[slot].start && v[slot].start != start)
		slot = (slot + 1) & (cap - 1);
	return &v[slot];
}

/* Double the table (kept at most half full), within the bound. */
static int grow(struct recount *r)
{
	size_t cap = r->cap ? 2 * r->cap : 4096;
	struct reach *v;

	if (r->limit && cap * sizeof(*v) > r->limit)
		return -ENOMEM;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < r->cap; i++) {
		if (!r->v[i].start)
			continue;
		*probe(v, cap, slot_of(r->v[i].start, cap), r->v[i].start) = r->v[i];
	}
	free(r->v);
	r->v = v;
	r->cap = cap;
	return 0;
}

/* The entry of the extent at `start`, made (with `len`, `is_data`) if new; NULL: -ENOMEM. */
static struct reach *reach_get(struct recount *r, uint64_t start, uint64_t len, bool is_data)
{
	struct reach *e;

	if (2 * (r->n + 1) > r->cap && grow(r) < 0)
		return NULL;
	e = probe(r->v, r->cap, slot_of(start, r->cap), start);
	if (!e->start) {
		*e = (struct reach){ .start = start, .len = len, .is_data = is_data };
		r->n++;
	}
	return e;
}

/* A pointer about to be followed: enter the node unless this class was there already. */
static int enter_node(void *arg, uint64_t bytenr, uint8_t level, const struct bt_node *parent)
{
	struct recount *r = arg;
	struct reach *e = reach_get(r, bytenr, r->x->fs->nodesize, false);

	(void)level, (void)parent;
	if (!e)
		return -ENOMEM;
	if (e->is_data)
		return extent_exclusive_corrupt(r->x, bytenr,
						"tree block where a data extent is referenced");
	if (e->marks & r->mark)
		return 1;
	e->marks |= r->mark;
	return 0;
}

/* A data extent a leaf of the tree being walked references. */
static int mark_data(void *arg, uint64_t start, uint64_t len)
{
	struct recount *r = arg;
	struct reach *e = reach_get(r, start, len, true);

	if (!e)
		return -ENOMEM;
	if (!e->is_data || e->len != len)
		return extent_exclusive_corrupt(r->x, start, "data extent referenced with two "
						"lengths or as a tree block");
	e->marks |= r->mark;
	return 0;
}

static int visit_node(void *arg, const struct bt_node *n, uint64_t parent)
{
	struct recount *r = arg;

	(void)parent;
	r->nodes_read++;
	return bt_node_level(n) == 0 ? extent_leaf_data_refs(r->x, n, mark_data, r) : 0;
}

static void sum_marks(const struct recount *r, struct extent_exclusive *out)
{
	for (size_t i = 0; i < r->cap; i++) {
		const struct reach *e = &r->v[i];
		if (!(e->marks & REACH_SET))
			continue;
		out->referenced += e->len;
		if (e->marks & REACH_OTHER)
			continue;
		if (e->is_data)
			out->exclusive_data += e->len;
		else
			out->exclusive_meta += e->len;
	}
}

int extent_exclusive_recount(struct extents *x, struct btree *const *trees, const bool *in_set,
			     size_t n, size_t mem_limit, struct extent_exclusive *out)
{
	struct recount r = { .x = x, .limit = mem_limit };
	struct bt_walk w = { .enter = enter_node, .node = visit_node, .arg = &r, .prefetch = true };
	int ret = grow(&r);

	*out = (struct extent_exclusive){ 0 };
	for (size_t i = 0; i < n && ret == 0; i++) {
		r.mark = in_set[i] ? REACH_SET : REACH_OTHER;
		ret = bt_walk(trees[i], &w);
	}
	if (ret == 0)
		sum_marks(&r, out);
	out->nodes_read = r.nodes_read;
	free(r.v);
	return ret;
}
