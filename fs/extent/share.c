/*
 * Whether a file's bytes of a data extent are shared (extent.h: extent_shared_beyond).
 *
 * The rule, and why it is exact. Every reference to a data extent is one file extent item,
 * recorded under the backref key (owner of its leaf, inode, the item's key offset) (FORMAT.md
 * 6.3); the extent tree's backrefs with the pending deltas of the extent's dref head added
 * are the items as they are now (items change at once, only their counts wait for commit).
 * Within one tree a key is one item, so a count above 1 under one key means leaves of one
 * owner reached from several trees. The bytes [d, d + n) of extent E that an item of file
 * (T, I) maps are then shared iff
 *   (a) some reference to E is not an item of (T, I) (another owner or inode), or a key of
 *       (T, I) counts more than one: another file or tree holds E, and like btrfs we call
 *       the whole extent shared then, whichever part of it the other side maps; or
 *   (b) all of E's references are items of (T, I), one per key, and some disk byte of
 *       [d, d + n) lies in the extent ranges [offset, offset + num_bytes) of two of them.
 *       Two items of one file never cover the same file bytes, so two items mapping one disk
 *       byte map it at two file offsets: a clone within the file. Conversely the pieces a
 *       punch or an overwrite leaves of one item keep their bytes where they were in the
 *       extent (a cut advances the extent offset with the file offset), so they map disjoint
 *       ranges and are not counted, which is what xfs (a refcount per block) says too.
 * A refcount of 1 is the item itself: never shared, and nothing more is read.
 *
 * Why the items must be read for (b): unlike btrfs, whose data backref key is (root, inode,
 * file offset - extent offset) so that a punch's pieces fall under one key, ours is the file
 * offset itself, so every item of a file has a key of its own, and only the items' extent
 * offsets tell a punch's pieces (disjoint) from a clone within the file (overlapping). They
 * are read only when every reference is the file's own and there are at least two.
 *
 * Cost: a count of 1 costs one lookup (the dref head or the extent item). Otherwise E's
 * backrefs are read once (they follow the extent item in the extent tree; an extent with
 * pending changes only has none there, its dref head is all), stopping at the first foreign
 * one when nothing is pending, plus one lookup per item for (b). The memo keeps the answer per
 * extent, so a file whose extent was cut into K items costs O(K log K) per FIEMAP call, not
 * that per item.
 */
#include "fs/extent/extent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One backref key's count: the extent tree's plus the pending delta. */
struct share_ref {
	uint64_t owner, inode, offset;
	int64_t count;
};

/* The backrefs of one extent, as read for one file. */
struct share_refs {
	uint64_t owner, inode;        /* the file asking */
	bool settled;                 /* nothing pending: what the tree says is final */
	bool beyond;                  /* a reference not the file's own was seen */
	struct share_ref *v;
	size_t n, cap;
};

static int share_corrupt(struct extents *x, uint64_t bytenr, const char *msg)
{
	if (x->fs->report)
		x->fs->report(x->fs->report_arg, bytenr, msg);
	return -EUCLEAN;
}

static bool is_own(const struct share_refs *l, uint64_t owner, uint64_t inode)
{
	return owner == l->owner && inode == l->inode;
}

static int refs_push(struct share_refs *l, uint64_t owner, uint64_t inode, uint64_t offset,
		     int64_t count)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct share_ref *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct share_ref){ owner, inode, offset, count };
	return 0;
}

/* extent_walk's data_ref_fn: collect, or stop (1) at a foreign reference if it is final. */
static int collect_committed(void *arg, uint64_t start, const struct extent_data_ref *r)
{
	struct share_refs *l = arg;

	(void)start;
	if (l->settled && (!is_own(l, r->owner, r->inode) || r->count > 1)) {
		l->beyond = true;
		return 1;
	}
	return refs_push(l, r->owner, r->inode, r->offset, (int64_t)r->count);
}

static int collect_pending(struct share_refs *l, const struct dref_head *h)
{
	for (uint32_t i = 0; i < h->nback; i++) {
		const struct dref_backref *b = &h->back[i];
		int ret = b->delta ? refs_push(l, b->owner, b->inode, b->offset, b->delta) : 0;
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct share_ref *p = a, *q = b;

	if (p->owner != q->owner)
		return p->owner < q->owner ? -1 : 1;
	if (p->inode != q->inode)
		return p->inode < q->inode ? -1 : 1;
	return p->offset < q->offset ? -1 : p->offset > q->offset;
}

/* Sum the counts of equal keys (the tree's and the pending one), dropping those now zero;
 * note whether any left is foreign. The file's own are left sorted by offset. */
static int merge_refs(struct extents *x, uint64_t start, struct share_refs *l)
{
	size_t k = 0;

	qsort(l->v, l->n, sizeof(*l->v), cmp_ref);
	for (size_t i = 0; i < l->n; i++) {
		if (k && cmp_ref(&l->v[k - 1], &l->v[i]) == 0)
			l->v[k - 1].count += l->v[i].count;
		else
			l->v[k++] = l->v[i];
	}
	l->n = 0;
	for (size_t i = 0; i < k; i++) {
		struct share_ref *r = &l->v[i];
		if (r->count < 0)
			return share_corrupt(x, start, "pending drop of a data backref the extent has not");
		if (r->count == 0)
			continue;
		l->beyond |= !is_own(l, r->owner, r->inode) || r->count > 1;
		l->v[l->n++] = *r;
	}
	return 0;
}

/* The extent's backrefs with pending changes applied, as far as the answer needs them. */
static int read_refs(struct extents *x, uint64_t start, struct share_refs *l)
{
	const struct dref_head *h = dref_find(&x->refs, start);
	struct extent_walk w = { .data_ref_fn = collect_committed, .arg = l };
	int ret = 0;

	l->settled = !h;
	/* An extent allocated in this transaction is in the extent tree not yet. */
	if (!h || !h->is_new)
		ret = extent_walk_one(x, start, &w);
	if (ret < 0 || l->beyond)
		return ret < 0 ? ret : 0;
	if (h && (ret = collect_pending(l, h)) < 0)
		return ret;
	return merge_refs(x, start, l);
}

/* The part of extent [start, start + len) that the file's item at `offset` maps. */
static int own_item_span(struct extents *x, struct btree *tree, uint64_t inode,
			 uint64_t offset, uint64_t start, uint64_t len, struct extent_span *s)
{
	struct bt_key k = { inode, EXTENT_DATA_KEY, offset };
	struct file_extent_item fi;
	struct file_extent fe;
	uint32_t size;
	int ret = bt_lookup(tree, &k, &fi, sizeof(fi), &size);

	if (ret == -ENOENT)
		return share_corrupt(x, start, "data backref of a file extent item that is not there");
	if (ret < 0)
		return ret;
	if (size > sizeof(fi) || file_extent_decode(&fi, size, &fe) < 0 || !file_extent_refers(&fe) ||
	    fe.disk_bytenr != start || fe.disk_num_bytes != len ||
	    file_extent_check_range(&fe, offset, x->sectorsize) < 0)
		return share_corrupt(x, start, "data backref of an item that does not map the extent");
	*s = (struct extent_span){ start + fe.offset, start + fe.offset + fe.num_bytes };
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const struct extent_span *p = a, *q = b;

	return p->start < q->start ? -1 : p->start > q->start;
}

/*
 * The bytes two or more of the spans cover, in place of the spans (sorted, disjoint). In start
 * order, the part of a span before the furthest end seen so far is covered by an earlier one
 * too; every byte two spans cover is found so at the later of the two.
 */
static size_t covered_twice(struct extent_span *v, size_t n)
{
	uint64_t reach = 0;
	size_t k = 0;

	qsort(v, n, sizeof(*v), cmp_span);
	for (size_t i = 0; i < n; i++) {
		struct extent_span s = { v[i].start, MIN(v[i].end, reach) };
		reach = MAX(reach, v[i].end);
		if (s.start >= s.end)
			continue;
		if (k && v[k - 1].end >= s.start)
			v[k - 1].end = MAX(v[k - 1].end, s.end);
		else
			v[k++] = s;     /* k <= i: nothing not yet read is overwritten */
	}
	return k;
}

/* Fill the memo for extent (start, len) from its references. */
static int learn_extent(struct extents *x, struct btree *tree, uint64_t inode, uint64_t start,
			uint64_t len, struct extent_share_memo *m)
{
	struct share_refs l = { .owner = tree->owner, .inode = inode };
	struct extent_span *spans = NULL;
	int ret = read_refs(x, start, &l);

	if (ret == 0 && !l.beyond && l.n > 1) {
		spans = malloc(l.n * sizeof(*spans));
		ret = spans ? 0 : -ENOMEM;
		for (size_t i = 0; i < l.n && ret == 0; i++)
			ret = own_item_span(x, tree, inode, l.v[i].offset, start, len, &spans[i]);
	}
	free(l.v);
	if (ret < 0) {
		free(spans);
		return ret;
	}
	extent_share_memo_release(m);
	*m = (struct extent_share_memo){ .valid = true, .start = start, .beyond = l.beyond,
					 .twice = spans };
	m->n = spans ? covered_twice(spans, l.n) : 0;
	return 0;
}

/* Whether [disk, disk + len) meets one of the memo's spans. */
static bool memo_covers(const struct extent_share_memo *m, uint64_t disk, uint64_t len)
{
	size_t lo = 0, hi = m->n;

	if (m->beyond)
		return true;
	while (lo < hi) {             /* the first span ending after disk */
		size_t mid = lo + (hi - lo) / 2;
		if (m->twice[mid].end <= disk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->twice[lo].start < disk + len;
}

int extent_shared_beyond(struct extents *x, struct btree *tree, uint64_t inode,
			 const struct extent_bytes *b, struct extent_share_memo *memo,
			 bool *shared)
{
	uint64_t refs;
	int ret;

	*shared = false;
	if (!memo->valid || memo->start != b->extent_start) {
		ret = extent_refcount(x, b->extent_start, b->extent_len, &refs);
		if (ret < 0 || refs <= 1)
			return ret;
		ret = learn_extent(x, tree, inode, b->extent_start, b->extent_len, memo);
		if (ret < 0)
			return ret;
	}
	*shared = memo_covers(memo, b->disk, b->len);
	return 0;
}

void extent_share_memo_release(struct extent_share_memo *memo)
{
	free(memo->twice);
	memset(memo, 0, sizeof(*memo));
}
