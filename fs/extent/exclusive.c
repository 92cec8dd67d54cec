/*
 * Exclusive space of a set of trees from reference counts (exclusive.h).
 *
 * Why it is exact. Let S be the set. Every reference to a tree block is a root pointer of a
 * tree or a pointer in a distinct live node (DESIGN.md 4.4); a pointer in a node at level L+1
 * leads to a node at level L, and a tree is a tree: no node is reached twice within one tree,
 * so no node holds two pointers to one child. Call a node or data extent S-exclusive when
 * every path from any tree's root to it starts at the root of a tree of S.
 *
 * Claim: a node X at level L is S-exclusive iff refs(X) = c(X), where c(X) counts the root
 * pointers of trees of S to X and the S-exclusive nodes at level L+1 pointing at X.
 *   If: then every reference to X is one of those (each is counted in refs(X) once, being a
 *   distinct node or root pointer), so every path to X enters through a root of S or an
 *   S-exclusive parent, whose own paths all start in S.
 *   Only if: every referrer of X is reached from some root (it is live). A referrer that is a
 *   root pointer of a tree outside S, or a node reached from outside S, gives a path to X from
 *   outside S. So each referrer is a root pointer of S or an S-exclusive node at L+1: all are
 *   counted, c(X) = refs(X).
 * Hence, level by level from the highest: the candidates at L are the roots of S at level L and
 * the children of the S-exclusive nodes found at L+1, each pointer once; grouping them by
 * address gives c(X) for every X with c(X) > 0, and X with c(X) = 0 is not S-exclusive (it has
 * a referrer outside S, or none: then it is not reachable from S at all). Only S-exclusive
 * nodes are read; a shared node is neither read nor descended into (everything below it is
 * reachable from outside S too). c(X) > refs(X) cannot happen in a sound filesystem: it is
 * reported as corruption.
 *
 * Data extents: refs(E) = file extent items referencing E in distinct live leaves. Items are
 * keyed, so a leaf holds each item once; an item in a leaf not S-exclusive is reached from
 * outside S. By the same argument E is S-exclusive iff refs(E) equals the number of items
 * referencing E in S-exclusive leaves.
 *
 * Cost: the nodes S holds alone, plus one reference count lookup per candidate (the frontier
 * of shared nodes just below them included) and one per data extent S-exclusive leaves
 * reference; lookups go in address order (the records are sorted), along one extent tree
 * cursor (extent_counter) rather than a search from the root each. Memory: one level's
 * candidates and the data records of the exclusive leaves, bounded by what S holds alone.
 */
#include "fs/extent/exclusive.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/btree/view.h"

struct node_ptr {
	uint64_t bytenr, gen;
};

struct data_ptr {
	uint64_t start, len;
};

/* A growing array whose memory counts against the walk's bound. */
struct vec {
	void *v;
	size_t n, cap;
};

struct excl {
	struct extents *x;
	size_t used, limit;
	struct vec cand, next;    /* struct node_ptr: this level's candidates, the next level's */
	struct vec data;          /* struct data_ptr: items of exclusive leaves */
	struct extent_exclusive *out;
};

int extent_exclusive_corrupt(struct extents *x, uint64_t bytenr, const char *msg)
{
	if (x->fs->report)
		x->fs->report(x->fs->report_arg, bytenr, msg);
	return -EUCLEAN;
}

int extent_leaf_data_refs(struct extents *x, const struct bt_node *n,
			  int (*fn)(void *arg, uint64_t start, uint64_t len), void *arg)
{
	int ret = 0;

	for (uint32_t i = 0; i < bt_node_nritems(n) && ret == 0; i++) {
		uint64_t start, len;
		struct bt_key k;
		const void *p;
		uint32_t size;
		bt_node_key(n, i, &k);
		bt_node_item(n, i, &p, &size);
		ret = file_extent_target(&k, p, size, &start, &len);
		if (ret < 0)
			return extent_exclusive_corrupt(x, bt_node_bytenr(n),
							"malformed file extent item");
		ret = ret ? fn(arg, start, len) : 0;
	}
	return ret;
}

/* Room for one more element of `size` bytes, within the bound. */
static int vec_reserve(struct excl *e, struct vec *a, size_t size)
{
	size_t cap, more;
	void *v;

	if (a->n < a->cap)
		return 0;
	cap = a->cap ? 2 * a->cap : 256;
	more = (cap - a->cap) * size;
	if (e->limit && e->used + more > e->limit) {
		cap = a->cap + (e->limit - e->used) / size;
		if (cap <= a->n)
			return -ENOMEM;
		more = (cap - a->cap) * size;
	}
	v = realloc(a->v, cap * size);
	if (!v)
		return -ENOMEM;
	a->v = v;
	a->cap = cap;
	e->used += more;
	return 0;
}

static int push_node(struct excl *e, struct vec *a, uint64_t bytenr, uint64_t gen)
{
	int ret = vec_reserve(e, a, sizeof(struct node_ptr));

	if (ret == 0)
		((struct node_ptr *)a->v)[a->n++] = (struct node_ptr){ bytenr, gen };
	return ret;
}

static int cmp_node(const void *a, const void *b)
{
	const struct node_ptr *p = a, *q = b;

	return p->bytenr < q->bytenr ? -1 : p->bytenr > q->bytenr;
}

static int cmp_data(const void *a, const void *b)
{
	const struct data_ptr *p = a, *q = b;

	if (p->start != q->start)
		return p->start < q->start ? -1 : 1;
	return p->len < q->len ? -1 : p->len > q->len;
}

/*
 * The data records are sorted by a radix sort on their start (11 bits a pass: three passes for
 * a device below 8 GiB) once there are this many: a million records took qsort a quarter of a
 * second, a third of the whole count.
 */
#define RADIX_MIN  4096u
#define RADIX_BITS 11
#define RADIX      (1u << RADIX_BITS)

/* d[0..n) by start, stable, through tmp (n records). */
static void radix_sort_data(struct data_ptr *d, struct data_ptr *tmp, size_t n)
{
	struct data_ptr *src = d, *dst = tmp, *t;
	uint64_t max = 0;

	for (size_t i = 0; i < n; i++)
		max |= d[i].start;
	for (unsigned shift = 0; shift < 64 && (max >> shift); shift += RADIX_BITS) {
		size_t count[RADIX] = { 0 }, sum = 0;
		for (size_t i = 0; i < n; i++)
			count[(src[i].start >> shift) & (RADIX - 1)]++;
		for (unsigned b = 0; b < RADIX; b++) {
			size_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].start >> shift) & (RADIX - 1)]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != d)
		memcpy(d, src, n * sizeof(*d));
}

/* The data records grouped by start; qsort when the radix sort's buffer is beyond the bound. */
static void sort_data(struct excl *e)
{
	size_t n = e->data.n, bytes = n * sizeof(struct data_ptr);
	struct data_ptr *tmp = NULL;

	if (n < 2)
		return;
	if (n >= RADIX_MIN && (!e->limit || e->used + bytes <= e->limit))
		tmp = malloc(bytes);
	if (!tmp) {
		qsort(e->data.v, n, sizeof(struct data_ptr), cmp_data);
		return;
	}
	radix_sort_data(e->data.v, tmp, n);
	free(tmp);
}

/*
 * Whether an extent `count` references from the set reach is the set's alone: its count as the
 * running transaction sees it (extent_refcount's, asked in address order through `ec`). An
 * extent referenced but uncounted, or counted below what the set holds, is damage.
 */
static int is_exclusive(struct extent_counter *ec, uint64_t start, uint64_t len, size_t count,
			bool *exclusive)
{
	uint64_t refs;
	int ret = extent_counter_get(ec, start, len, &refs);

	if (ret == -ENOENT)
		return extent_exclusive_corrupt(ec->x, start,
						"referenced extent with no reference count");
	if (ret < 0)
		return ret;
	if (count > refs)
		return extent_exclusive_corrupt(ec->x, start,
						"extent referenced more often than its count says");
	*exclusive = count == refs;
	return 0;
}

/* One data extent an exclusive leaf references: a record. */
static int push_data(void *arg, uint64_t start, uint64_t len)
{
	struct excl *e = arg;
	int ret = vec_reserve(e, &e->data, sizeof(struct data_ptr));

	if (ret == 0)
		((struct data_ptr *)e->data.v)[e->data.n++] = (struct data_ptr){ start, len };
	return ret;
}

/* Read exclusive node `p` at `level`: its children become candidates, or its items records. */
static int read_exclusive(struct excl *e, const struct node_ptr *p, uint8_t level)
{
	struct bt_node n;
	int ret = bt_node_get(e->x->fs, p->bytenr, level, p->gen, &n);

	if (ret < 0)
		return ret;
	e->out->nodes_read++;
	e->out->exclusive_meta += e->x->fs->nodesize;
	if (level == 0) {
		ret = extent_leaf_data_refs(e->x, &n, push_data, e);
	} else {
		for (uint32_t i = 0; i < bt_node_nritems(&n) && ret == 0; i++) {
			uint64_t gen, child = bt_node_child(&n, i, &gen);
			ret = push_node(e, &e->next, child, gen);
		}
	}
	bt_node_put(&n);
	return ret;
}

/*
 * Exclusive nodes are read this many at a time, read ahead together first (bt_prefetch): one
 * batch of device reads instead of one wait per node when they are not cached. 32 nodes of
 * 16 KiB are 512 KiB: still in the CPU's cache when they are verified and parsed right after
 * (with 128, 2 MiB, the reads from the page cache got no faster than one at a time).
 */
#define READ_CHUNK 32

/*
 * The device is asked to start reading this many nodes beyond the chunk being read
 * (bt_readahead), so that their reads are in flight together while the chunks before them are
 * parsed. Measured on a cold 100,000-file snapshot's 3,076 exclusive nodes (bench/README.md):
 * 134-163 ms in batches of 32 alone, 60-81 ms with the reads of the next 128 started.
 */
#define READ_AHEAD 128

/* Read the exclusive nodes chunk[0..k) at `level`, in address order, read ahead first. */
static int read_chunk(struct excl *e, const struct node_ptr *chunk, size_t k, uint8_t level)
{
	uint64_t addrs[READ_CHUNK];
	int ret = 0;

	for (size_t i = 0; i < k; i++)
		addrs[i] = chunk[i].bytenr;
	if (k > 1)
		(void)bt_prefetch(e->x->fs, addrs, k);
	for (size_t i = 0; i < k && ret == 0; i++)
		ret = read_exclusive(e, &chunk[i], level);
	return ret;
}

/* Start the reads of p[from..to): the device reads them while the nodes before are parsed. */
static void read_ahead(struct excl *e, const struct node_ptr *p, size_t from, size_t to)
{
	uint64_t addrs[READ_CHUNK + READ_AHEAD];
	size_t k = 0;

	for (size_t i = from; i < to && k < sizeof(addrs) / sizeof(addrs[0]); i++)
		addrs[k++] = p[i].bytenr;
	if (k > 0)
		bt_readahead(e->x->fs, addrs, k);
}

/*
 * The candidates at `level`, grouped by address, filtered down to the exclusive ones in place
 * (kept in address order); *n_excl says how many.
 */
static int keep_exclusive(struct excl *e, size_t *n_excl)
{
	struct node_ptr *c = e->cand.v;
	struct extent_counter ec;
	size_t i = 0, k = 0;
	int ret = 0;

	if (e->cand.n > 1)
		qsort(c, e->cand.n, sizeof(*c), cmp_node);
	extent_counter_init(&ec, e->x);
	while (i < e->cand.n && ret == 0) {
		size_t j = i + 1;
		bool exclusive;
		while (j < e->cand.n && c[j].bytenr == c[i].bytenr)
			j++;
		ret = is_exclusive(&ec, c[i].bytenr, e->x->fs->nodesize, j - i, &exclusive);
		if (ret == 0 && exclusive)
			c[k++] = c[i];
		i = j;
	}
	extent_counter_release(&ec);
	*n_excl = k;
	return ret;
}

/*
 * The exclusive nodes at `level`, read a chunk at a time in address order, the reads of the
 * next READ_AHEAD nodes always in flight.
 */
static int do_level(struct excl *e, uint8_t level)
{
	const struct node_ptr *c = e->cand.v;
	size_t n;
	int ret = keep_exclusive(e, &n);

	for (size_t i = 0; i < n && ret == 0; i += READ_CHUNK) {
		size_t k = n - i < READ_CHUNK ? n - i : READ_CHUNK;
		size_t ahead = i + k + READ_AHEAD < n ? i + k + READ_AHEAD : n;
		read_ahead(e, c, i == 0 ? 0 : i + READ_AHEAD, ahead);
		ret = read_chunk(e, c + i, k, level);
	}
	return ret;
}

/* The data records, grouped by extent in address order. */
static int count_data(struct excl *e)
{
	struct data_ptr *d = e->data.v;
	struct extent_counter ec;
	size_t i = 0;
	int ret = 0;

	sort_data(e);
	extent_counter_init(&ec, e->x);
	while (i < e->data.n && ret == 0) {
		size_t j = i + 1;
		bool exclusive, two_lengths = false;
		while (j < e->data.n && d[j].start == d[i].start)
			two_lengths |= d[j++].len != d[i].len;
		if (two_lengths)
			ret = extent_exclusive_corrupt(e->x, d[i].start,
						       "data extent referenced with two lengths");
		if (ret == 0)
			ret = is_exclusive(&ec, d[i].start, d[i].len, j - i, &exclusive);
		if (ret == 0 && exclusive)
			e->out->exclusive_data += d[i].len;
		i = j;
	}
	extent_counter_release(&ec);
	return ret;
}

static uint8_t top_level(struct btree *const *set, size_t n)
{
	uint8_t top = 0;

	for (size_t i = 0; i < n; i++)
		top = set[i]->level > top ? set[i]->level : top;
	return top;
}

/* Levels from the highest down; the candidates of each are the roots there and the children
 * of the exclusive nodes of the level above. */
static int count_nodes(struct excl *e, struct btree *const *set, size_t n)
{
	int ret = 0;

	for (int level = top_level(set, n); level >= 0 && ret == 0; level--) {
		for (size_t i = 0; i < n && ret == 0; i++)
			if (set[i]->level == level)
				ret = push_node(e, &e->cand, set[i]->root, set[i]->root_gen);
		if (ret == 0)
			ret = do_level(e, (uint8_t)level);
		struct vec t = e->cand;
		e->cand = e->next;
		e->next = t;
		e->next.n = 0;
	}
	return ret;
}

/* out->referenced: every distinct extent the set reaches, by the full walk of the recount. */
static int count_referenced(struct extents *x, struct btree *const *set, size_t n,
			    size_t mem_limit, struct extent_exclusive *out)
{
	struct extent_exclusive all;
	bool *in_set = malloc(n ? n : 1);
	int ret;

	if (!in_set)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		in_set[i] = true;
	ret = extent_exclusive_recount(x, set, in_set, n, mem_limit, &all);
	free(in_set);
	if (ret < 0)
		return ret;
	out->referenced = all.referenced;
	out->nodes_read += all.nodes_read;
	return 0;
}

int extent_exclusive_of(struct extents *x, struct btree *const *set, size_t n, bool referenced,
			size_t mem_limit, struct extent_exclusive *out)
{
	struct excl e = { .x = x, .limit = mem_limit, .out = out };
	int ret;

	*out = (struct extent_exclusive){ 0 };
	for (size_t i = 0; i < n; i++)
		if (set[i]->root == 0)
			return extent_exclusive_corrupt(x, 0, "tree with no root node");
	ret = count_nodes(&e, set, n);
	free(e.cand.v);
	free(e.next.v);
	if (ret == 0)
		ret = count_data(&e);
	free(e.data.v);
	if (ret == 0 && referenced)
		ret = count_referenced(x, set, n, mem_limit, out);
	return ret;
}
