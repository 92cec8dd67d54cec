/*
 * alloc: the free-space index. See alloc.h for the contract.
 *
 * Free space is a set of disjoint ranges, never adjacent (a range that would touch a neighbour
 * is merged with it), kept in an AVL tree keyed by start. Each node also records the longest
 * range in its subtree, so the search for "the first range at or after the hint that holds
 * min_len bytes" skips every subtree too short to hold them: O(log n), except that alignment
 * waste can make a long-enough range unusable, and the search then goes on in order.
 *
 * Pinned space lives in a second tree of the same kind, never in the free tree: nothing may
 * allocate it before the commit. Both trees hold disjoint ranges, so "does [s, e) overlap
 * anything in this tree" is one look-up of the last range starting before e. That is how a
 * double free or a free of never-allocated space is caught in O(log n).
 *
 * Both trees own their nodes (malloc'ed one by one). Unpinning moves the pinned nodes into
 * the free tree, so it needs no memory and cannot fail.
 *
 * One mutex guards everything. Arguments are validated before taking it.
 */
#include "fs/alloc/alloc.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "fs/lib/compiler.h"

/* A free or pinned range [start, start + len): a node of an AVL tree keyed by start. */
struct range {
	uint64_t start;
	uint64_t len;
	uint64_t max_len;            /* the longest len in this subtree */
	struct range *left, *right;
	int height;                  /* AVL height: 1 for a leaf */
};

/* Disjoint, non-adjacent ranges. */
struct range_tree {
	struct range *root;
	uint64_t count;              /* ranges */
	uint64_t bytes;              /* sum of their lengths */
};

struct allocator {
	pthread_mutex_t lock;
	uint64_t start, end;         /* the space: [start, end) */
	uint32_t sectorsize;
	uint64_t reserve;
	struct range_tree free;
	struct range_tree pinned;
	struct range_tree sealed;    /* pinned by a transaction whose commit is in flight */
};

/* ---- one node ---------------------------------------------------------------------------- */

static uint64_t range_end(const struct range *r)
{
	return r->start + r->len;
}

static int subtree_height(const struct range *n)
{
	return n ? n->height : 0;
}

static uint64_t subtree_max_len(const struct range *n)
{
	return n ? n->max_len : 0;
}

/* Recompute n's height and max_len from its children (which must be up to date). */
static void node_update(struct range *n)
{
	int hl = subtree_height(n->left), hr = subtree_height(n->right);

	n->height = 1 + MAX(hl, hr);
	n->max_len = MAX(n->len, MAX(subtree_max_len(n->left), subtree_max_len(n->right)));
}

static struct range *range_new(uint64_t start, uint64_t len)
{
	struct range *r = malloc(sizeof(*r));

	if (r) {
		r->start = start;
		r->len = len;
		r->left = r->right = NULL;
		node_update(r);
	}
	return r;
}

/* ---- AVL subtrees (each returns the subtree's new root) ------------------------------------ */

static struct range *rotate_right(struct range *n)
{
	struct range *l = n->left;

	n->left = l->right;
	l->right = n;
	node_update(n);
	node_update(l);
	return l;
}

static struct range *rotate_left(struct range *n)
{
	struct range *r = n->right;

	n->right = r->left;
	r->left = n;
	node_update(n);
	node_update(r);
	return r;
}

/* Restore the AVL balance at n, whose subtrees are balanced and differ in height by <= 2. */
static struct range *rebalance(struct range *n)
{
	int balance;

	node_update(n);
	balance = subtree_height(n->left) - subtree_height(n->right);
	if (balance > 1) {
		if (subtree_height(n->left->left) < subtree_height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (balance < -1) {
		if (subtree_height(n->right->right) < subtree_height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

static struct range *subtree_insert(struct range *n, struct range *x)
{
	if (!n) {
		x->left = x->right = NULL;
		node_update(x);
		return x;
	}
	assert(x->start != n->start);
	if (x->start < n->start)
		n->left = subtree_insert(n->left, x);
	else
		n->right = subtree_insert(n->right, x);
	return rebalance(n);
}

/* Unlink the leftmost node of n into *min. */
static struct range *subtree_unlink_min(struct range *n, struct range **min)
{
	if (!n->left) {
		*min = n;
		return n->right;
	}
	n->left = subtree_unlink_min(n->left, min);
	return rebalance(n);
}

/* Unlink the node keyed `start`, which must exist. The node itself is the caller's. */
static struct range *subtree_unlink(struct range *n, uint64_t start)
{
	struct range *successor;

	assert(n);
	if (start < n->start) {
		n->left = subtree_unlink(n->left, start);
		return rebalance(n);
	}
	if (start > n->start) {
		n->right = subtree_unlink(n->right, start);
		return rebalance(n);
	}
	if (!n->left)
		return n->right;
	if (!n->right)
		return n->left;
	n->right = subtree_unlink_min(n->right, &successor);
	successor->left = n->left;
	successor->right = n->right;
	return rebalance(successor);
}

/*
 * The node keyed `start` had its length (or its start, without passing a neighbour) changed
 * in place: recompute max_len on the path down to it. Heights do not change.
 */
static void subtree_refresh_path(struct range *n, uint64_t start)
{
	assert(n);
	if (start < n->start)
		subtree_refresh_path(n->left, start);
	else if (start > n->start)
		subtree_refresh_path(n->right, start);
	node_update(n);
}

static void subtree_free(struct range *n)
{
	if (n) {
		subtree_free(n->left);
		subtree_free(n->right);
		free(n);
	}
}

static int subtree_walk(const struct range *n, int (*fn)(void *arg, uint64_t start, uint64_t len),
			void *arg)
{
	int ret;

	if (!n)
		return 0;
	ret = subtree_walk(n->left, fn, arg);
	if (!ret)
		ret = fn(arg, n->start, n->len);
	if (!ret)
		ret = subtree_walk(n->right, fn, arg);
	return ret;
}

/* ---- range trees ----------------------------------------------------------------------------- */

/* The range with the greatest start <= key, or NULL. */
static struct range *tree_floor(const struct range_tree *t, uint64_t key)
{
	struct range *n = t->root, *best = NULL;

	while (n) {
		if (n->start <= key) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

/* The range with the least start >= key, or NULL. */
static struct range *tree_ceil(const struct range_tree *t, uint64_t key)
{
	struct range *n = t->root, *best = NULL;

	while (n) {
		if (n->start >= key) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

/* Does any range overlap [s, e)? Ranges are disjoint: only the last one starting before e can. */
static bool tree_overlaps(const struct range_tree *t, uint64_t s, uint64_t e)
{
	struct range *r = tree_floor(t, e - 1);

	return r && range_end(r) > s;
}

/* The range containing all of [s, e), or NULL. */
static struct range *tree_containing(const struct range_tree *t, uint64_t s, uint64_t e)
{
	struct range *r = tree_floor(t, s);

	return r && range_end(r) >= e ? r : NULL;
}

static void tree_unlink(struct range_tree *t, struct range *r)
{
	t->root = subtree_unlink(t->root, r->start);
	t->count--;
}

/*
 * Add x, which overlaps nothing in t, merging it with the ranges that end where it starts
 * and start where it ends. Takes ownership of x: it is linked in, or freed if merged.
 */
static void tree_add(struct range_tree *t, struct range *x)
{
	uint64_t s = x->start, e = range_end(x);
	struct range *prev = s ? tree_floor(t, s - 1) : NULL;
	struct range *next = tree_ceil(t, e);
	bool join_prev = prev && range_end(prev) == s;
	bool join_next = next && next->start == e;

	assert(!prev || range_end(prev) <= s);
	t->bytes += x->len;
	if (join_prev && join_next) {
		prev->len += x->len + next->len;
		tree_unlink(t, next);
		free(next);
		subtree_refresh_path(t->root, prev->start);
		free(x);
	} else if (join_prev) {
		prev->len += x->len;
		subtree_refresh_path(t->root, prev->start);
		free(x);
	} else if (join_next) {
		/* No other range starts in [s, e): next keeps its place in the tree. */
		next->start = s;
		next->len += x->len;
		subtree_refresh_path(t->root, next->start);
		free(x);
	} else {
		t->root = subtree_insert(t->root, x);
		t->count++;
	}
}

/* Cutting [s, e) out of r leaves a piece on each side: one more node is needed. */
static bool cut_splits(const struct range *r, uint64_t s, uint64_t e)
{
	return r->start < s && e < range_end(r);
}

/*
 * Remove [s, e), which r contains, from t. `spare` is a node for the piece after e when the
 * cut splits r (cut_splits()), else NULL.
 */
static void tree_cut(struct range_tree *t, struct range *r, uint64_t s, uint64_t e,
		     struct range *spare)
{
	uint64_t r_end = range_end(r);

	assert(r->start <= s && s < e && e <= r_end);
	assert(!spare == !cut_splits(r, s, e));
	t->bytes -= e - s;
	if (r->start == s && e == r_end) {
		tree_unlink(t, r);
		free(r);
	} else if (r->start == s) {
		/* The range [s, e) held no other start: r keeps its place in the tree. */
		r->start = e;
		r->len = r_end - e;
		subtree_refresh_path(t->root, r->start);
	} else {
		r->len = s - r->start;
		subtree_refresh_path(t->root, r->start);
		if (spare) {
			spare->start = e;
			spare->len = r_end - e;
			t->root = subtree_insert(t->root, spare);
			t->count++;
		}
	}
}

/* Free every node. */
static void tree_clear(struct range_tree *t)
{
	subtree_free(t->root);
	t->root = NULL;
	t->count = 0;
	t->bytes = 0;
}

/* Move every range of subtree n into dst (merging): the nodes themselves move. */
static void tree_absorb(struct range_tree *dst, struct range *n)
{
	struct range *l, *r;

	if (!n)
		return;
	l = n->left;
	r = n->right;
	tree_absorb(dst, l);
	tree_absorb(dst, r);
	tree_add(dst, n);
}

/* ---- first fit --------------------------------------------------------------------------- */

/* What an allocation asks of a free range. */
struct fit_query {
	uint64_t lower;      /* the allocation starts at or after this */
	uint64_t min_len;
	uint64_t align;      /* power of two */
};

/* Where in r an allocation for q would start (aligned, at or after q->lower), if it fits. */
static bool range_fits(const struct range *r, const struct fit_query *q, uint64_t *at)
{
	uint64_t from = MAX(r->start, q->lower);
	uint64_t end = range_end(r);
	uint64_t aligned;

	if (from > UINT64_MAX - (q->align - 1))
		return false;
	aligned = (from + q->align - 1) & ~(q->align - 1);
	if (aligned >= end || end - aligned < q->min_len)
		return false;
	*at = aligned;
	return true;
}

/*
 * The first range of subtree n, in address order, with an allocation for q. Subtrees whose
 * longest range is shorter than min_len cannot hold one; nodes ending at or before q->lower
 * (and their left subtrees) are entirely before the hint.
 */
static struct range *subtree_first_fit(struct range *n, const struct fit_query *q, uint64_t *at)
{
	struct range *found;

	while (n && n->max_len >= q->min_len) {
		if (range_end(n) <= q->lower) {
			n = n->right;
			continue;
		}
		found = subtree_first_fit(n->left, q, at);
		if (found)
			return found;
		if (range_fits(n, q, at))
			return n;
		n = n->right;
	}
	return NULL;
}

/* First fit at or after the hint, else from the start of the space. */
static struct range *first_fit(struct allocator *a, uint64_t hint, uint64_t min_len,
			       uint64_t align, uint64_t *at)
{
	struct fit_query q = { .lower = a->start, .min_len = min_len, .align = align };
	struct range *found;

	if (hint > a->start && hint < a->end) {
		q.lower = hint;
		found = subtree_first_fit(a->free.root, &q, at);
		if (found)
			return found;
		q.lower = a->start;
	}
	return subtree_first_fit(a->free.root, &q, at);
}

/* ---- argument checks ------------------------------------------------------------------------ */

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static bool sector_aligned(const struct allocator *a, uint64_t x)
{
	return !(x & (a->sectorsize - 1));
}

/* [s, s + len) lies inside [start, end), without overflowing. */
static bool in_space(const struct allocator *a, uint64_t s, uint64_t len)
{
	return s >= a->start && s < a->end && len <= a->end - s;
}

/* A well-formed range to give back: non-empty, sector-aligned, inside the space. */
static bool valid_release(const struct allocator *a, uint64_t s, uint64_t len)
{
	return len && sector_aligned(a, s) && sector_aligned(a, len) && in_space(a, s, len);
}

static bool valid_request(const struct allocator *a, uint64_t min_len, uint64_t max_len,
			  uint32_t align, enum alloc_class cls)
{
	return min_len && min_len <= max_len && sector_aligned(a, min_len) &&
	       sector_aligned(a, max_len) && is_pow2(align) && align >= a->sectorsize &&
	       (cls == ALLOC_NORMAL || cls == ALLOC_PRIVILEGED || cls == ALLOC_PROMISED);
}

/* ---- the API ----------------------------------------------------------------------------- */

int alloc_create(uint64_t start, uint64_t end, uint32_t sectorsize, struct allocator **out)
{
	struct allocator *a;

	if (!is_pow2(sectorsize) || sectorsize < 512 || start >= end ||
	    (start | end) & (sectorsize - 1))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->start = start;
	a->end = end;
	a->sectorsize = sectorsize;
	a->free.root = range_new(start, end - start);
	if (!a->free.root) {
		free(a);
		return -ENOMEM;
	}
	a->free.count = 1;
	a->free.bytes = end - start;
	if (pthread_mutex_init(&a->lock, NULL)) {
		free(a->free.root);
		free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

void alloc_destroy(struct allocator *a)
{
	if (!a)
		return;
	tree_clear(&a->free);
	tree_clear(&a->pinned);
	tree_clear(&a->sealed);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Cut [s, e) out of free range r, allocating the node a split needs. */
static int take_from_range(struct allocator *a, struct range *r, uint64_t s, uint64_t e)
{
	struct range *spare = NULL;

	if (cut_splits(r, s, e)) {
		spare = range_new(0, 0);
		if (!spare)
			return -ENOMEM;
	}
	tree_cut(&a->free, r, s, e, spare);
	return 0;
}

int alloc_mark_used(struct allocator *a, uint64_t start, uint64_t len)
{
	struct range *r;
	int ret;

	if (!len || !sector_aligned(a, start) || !sector_aligned(a, len))
		return -EINVAL;
	if (!in_space(a, start, len))
		return -ERANGE;
	pthread_mutex_lock(&a->lock);
	r = tree_containing(&a->free, start, start + len);
	ret = r ? take_from_range(a, r, start, start + len) : -EEXIST;
	pthread_mutex_unlock(&a->lock);
	return ret;
}

/*
 * The most a request of class cls may take, given the reserve: 0 if not even min_len.
 * Rounded down to sectors, as the reserve need not be.
 */
static uint64_t request_budget(const struct allocator *a, uint64_t min_len, uint64_t max_len,
			       enum alloc_class cls)
{
	uint64_t spendable, floor = alloc_class_floor(a->reserve, cls);

	if (cls == ALLOC_PRIVILEGED)
		return max_len;
	if (a->free.bytes <= floor)
		return 0;
	spendable = (a->free.bytes - floor) & ~(uint64_t)(a->sectorsize - 1);
	return spendable < min_len ? 0 : MIN(max_len, spendable);
}

int alloc_extent(struct allocator *a, uint64_t min_len, uint64_t max_len, uint64_t hint,
		 uint32_t align, enum alloc_class cls, uint64_t *start, uint64_t *len)
{
	uint64_t budget, at = 0, take = 0;
	struct range *r;
	int ret = -ENOSPC;

	if (!valid_request(a, min_len, max_len, align, cls))
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	budget = request_budget(a, min_len, max_len, cls);
	r = budget ? first_fit(a, hint, min_len, align, &at) : NULL;
	if (r) {
		take = MIN(budget, range_end(r) - at);
		ret = take_from_range(a, r, at, at + take);
	}
	pthread_mutex_unlock(&a->lock);
	if (!ret) {
		*start = at;
		*len = take;
	}
	return ret;
}

/* [s, e) is allocated: neither free nor pinned. */
static bool is_allocated(const struct allocator *a, uint64_t s, uint64_t e)
{
	return !tree_overlaps(&a->free, s, e) && !tree_overlaps(&a->pinned, s, e) &&
	       !tree_overlaps(&a->sealed, s, e);
}

/* Give [start, start + len) back into tree `to` (the free or the pinned tree). */
static int release(struct allocator *a, struct range_tree *to, uint64_t start, uint64_t len)
{
	struct range *x;
	int ret = 0;

	if (!valid_release(a, start, len))
		return -EINVAL;
	x = range_new(start, len);
	if (!x)
		return -ENOMEM;
	pthread_mutex_lock(&a->lock);
	if (is_allocated(a, start, start + len))
		tree_add(to, x);
	else
		ret = -EINVAL;
	pthread_mutex_unlock(&a->lock);
	if (ret)
		free(x);
	return ret;
}

int alloc_pin(struct allocator *a, uint64_t start, uint64_t len)
{
	return release(a, &a->pinned, start, len);
}

int alloc_free_now(struct allocator *a, uint64_t start, uint64_t len)
{
	return release(a, &a->free, start, len);
}

/* Move every range of `from` into `to` (the caller holds the lock). */
static void tree_move_all(struct range_tree *to, struct range_tree *from)
{
	struct range *all = from->root;

	from->root = NULL;
	from->count = 0;
	from->bytes = 0;
	tree_absorb(to, all);
}

void alloc_unpin_all(struct allocator *a)
{
	pthread_mutex_lock(&a->lock);
	tree_move_all(&a->free, &a->sealed);
	tree_move_all(&a->free, &a->pinned);
	pthread_mutex_unlock(&a->lock);
}

void alloc_pin_seal(struct allocator *a)
{
	pthread_mutex_lock(&a->lock);
	tree_move_all(&a->sealed, &a->pinned);
	pthread_mutex_unlock(&a->lock);
}

void alloc_unpin_sealed(struct allocator *a)
{
	pthread_mutex_lock(&a->lock);
	tree_move_all(&a->free, &a->sealed);
	pthread_mutex_unlock(&a->lock);
}

uint64_t alloc_class_floor(uint64_t reserve, enum alloc_class cls)
{
	switch (cls) {
	case ALLOC_PRIVILEGED:
		return 0;
	case ALLOC_PROMISED:
		return reserve - reserve / 4;
	default:
		return reserve;
	}
}

void alloc_set_reserve(struct allocator *a, uint64_t bytes)
{
	pthread_mutex_lock(&a->lock);
	a->reserve = bytes;
	pthread_mutex_unlock(&a->lock);
}

void alloc_get_stats(struct allocator *a, struct alloc_stats *st)
{
	pthread_mutex_lock(&a->lock);
	st->total = a->end - a->start;
	st->free = a->free.bytes;
	st->pinned = a->pinned.bytes + a->sealed.bytes;
	st->reserve = a->reserve;
	st->fragments = a->free.count;
	st->largest = subtree_max_len(a->free.root);
	pthread_mutex_unlock(&a->lock);
}

int alloc_for_each_free(struct allocator *a,
			int (*fn)(void *arg, uint64_t start, uint64_t len), void *arg)
{
	int ret;

	pthread_mutex_lock(&a->lock);
	ret = subtree_walk(a->free.root, fn, arg);
	pthread_mutex_unlock(&a->lock);
	return ret;
}
