/* The checker: recompute every extent's references from the trees, compare with the extent tree. */
#include "fs/super/fsck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/btree/internal.h"
#include "fs/extent/csum.h"
#include "fs/lib/endian.h"
#include "fs/super/root_item.h"

struct exp_backref {
	uint64_t owner, inode, offset, count;
	bool matched;
};

/* Problems in the tree structure itself, which repair cannot fix. */
#define UNFIXABLE(c) ((c)->st->unfixable++)

/* What the trees say one extent must look like. */
struct exp_extent {
	uint64_t start, len, refs;
	bool is_data, walked, matched;
	bool written;                  /* data: a REG file extent item references it */
	uint64_t csum_sectors;         /* data: sectors the checksum tree covers */
	uint8_t level;
	uint32_t nback, capback;
	struct exp_backref *back;
};

struct checker {
	struct cowfs *fs;
	struct cowfs_check_stats *st;
	struct exp_extent **slots;     /* open addressing by start */
	size_t cap, count;
	uint64_t prev_end;             /* end of the previous extent item seen */
	struct exp_extent *cur;        /* extent item whose backrefs follow */
	uint64_t cur_start;
	struct extent_info cur_item;   /* that extent item */
	cowfs_check_progress_fn progress;
	void *progress_arg;
	bool repair;
	int error;                     /* first failure to queue a repair */
};

static void problem(struct checker *c, uint64_t bytenr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct checker *c, uint64_t bytenr, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->st->problems++;
	if (c->fs->report)
		c->fs->report(c->fs->report_arg, bytenr, msg);
}

static size_t slot_of(const struct checker *c, uint64_t start)
{
	return (size_t)((start * 0x9e3779b97f4a7c15ULL) >> 17) & (c->cap - 1);
}

static struct exp_extent *exp_find(struct checker *c, uint64_t start)
{
	for (size_t i = slot_of(c, start);; i = (i + 1) & (c->cap - 1)) {
		if (!c->slots[i])
			return NULL;
		if (c->slots[i]->start == start)
			return c->slots[i];
	}
}

static int exp_grow(struct checker *c)
{
	struct checker old = *c;

	c->cap = old.cap ? old.cap * 2 : 4096;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (!c->slots) {
		*c = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.slots[i])
			continue;
		size_t j = slot_of(c, old.slots[i]->start);
		while (c->slots[j])
			j = (j + 1) & (c->cap - 1);
		c->slots[j] = old.slots[i];
	}
	free(old.slots);
	return 0;
}

static struct exp_extent *exp_get(struct checker *c, uint64_t start)
{
	struct exp_extent *e = c->cap ? exp_find(c, start) : NULL;

	if (e)
		return e;
	if ((c->count + 1) * 2 > c->cap && exp_grow(c) < 0)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->start = start;
	size_t i = slot_of(c, start);
	while (c->slots[i])
		i = (i + 1) & (c->cap - 1);
	c->slots[i] = e;
	c->count++;
	return e;
}

static int exp_backref_add(struct exp_extent *e, uint64_t owner, uint64_t inode, uint64_t offset)
{
	for (uint32_t i = 0; i < e->nback; i++) {
		struct exp_backref *b = &e->back[i];
		if (b->owner == owner && b->inode == inode && b->offset == offset) {
			b->count++;
			return 0;
		}
	}
	if (e->nback == e->capback) {
		uint32_t cap = e->capback ? e->capback * 2 : 2;
		struct exp_backref *nb = realloc(e->back, cap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		e->back = nb;
		e->capback = cap;
	}
	e->back[e->nback++] = (struct exp_backref){ owner, inode, offset, 1, false };
	return 0;
}

/* ---- recomputing references from the trees -------------------------------------------- */

static int expect_tree_ref(struct checker *c, uint64_t bytenr, uint8_t level, uint64_t owner)
{
	struct exp_extent *e = exp_get(c, bytenr);

	if (!e)
		return -ENOMEM;
	if (e->refs && (e->is_data || e->level != level))
		problem(c, bytenr, "block referenced both as level %u and as %s", level,
			e->is_data ? "data" : "another level");
	e->len = c->fs->bfs.nodesize;
	e->level = level;
	e->refs++;
	return exp_backref_add(e, owner, 0, 0);
}

static int expect_data_ref(struct checker *c, uint64_t start, uint64_t len, uint64_t owner,
			   const struct bt_key *k, bool written)
{
	struct exp_extent *e = exp_get(c, start);

	if (!e)
		return -ENOMEM;
	if (e->refs && (!e->is_data || e->len != len))
		problem(c, start, "data extent referenced with two lengths or also as a tree block");
	if (!e->refs)
		c->st->data_extents++;
	e->is_data = true;
	e->written |= written;
	e->len = len;
	e->refs++;
	return exp_backref_add(e, owner, k->objectid, k->offset);
}

static int walk_leaf_items(struct checker *c, struct cblock *b)
{
	for (uint32_t i = 0; i < node_nritems(b); i++) {
		struct bt_key k;
		uint64_t start, len;
		leaf_item_key(b, i, &k);
		int ret = file_extent_target(&k, leaf_item_data(b, i), leaf_item_size(b, i),
					     &start, &len);
		if (ret < 0) {
			problem(c, b->addr, "malformed file extent item (%llu,%u,%llu)",
				(unsigned long long)k.objectid, k.type, (unsigned long long)k.offset);
			continue;
		}
		if (ret == 0)
			continue;
		/* A reference means a full-sized item (file_extent_target checked): type is in it. */
		bool written = ((const struct file_extent_item *)leaf_item_data(b, i))->type ==
			       FILE_EXTENT_REG;
		if ((ret = expect_data_ref(c, start, len, node_owner(b), &k, written)) < 0)
			return ret;
	}
	return 0;
}

/* Walk a subtree once per distinct node; an unreadable node is a problem, not the end. */
static int walk_node(struct checker *c, uint64_t bytenr, uint8_t level, uint64_t gen)
{
	struct exp_extent *e = exp_find(c, bytenr);
	struct cblock *b;
	int ret;

	if (e->walked)
		return 0;
	e->walked = true;
	ret = bt_read_node(&c->fs->bfs, bytenr, level, gen, &b);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		problem(c, bytenr, "node unreadable or invalid (%s)", strerror(-ret));
		UNFIXABLE(c);
		return 0;
	}
	c->st->tree_blocks++;
	if (c->progress && c->st->tree_blocks % 4096 == 0)
		c->progress(c->progress_arg, c->st->tree_blocks);
	if (level == 0) {
		ret = walk_leaf_items(c, b);
	} else {
		for (uint32_t i = 0; i < node_nritems(b) && ret == 0; i++) {
			ret = expect_tree_ref(c, node_blockptr(b, i), level - 1, node_owner(b));
			if (ret == 0)
				ret = walk_node(c, node_blockptr(b, i), level - 1, node_ptr_gen(b, i));
		}
	}
	bcache_put(c->fs->cache, b);
	return ret;
}

static int walk_tree(struct checker *c, struct btree *t)
{
	int ret = expect_tree_ref(c, t->root, t->level, t->owner);

	c->st->trees++;
	if (ret == 0)
		ret = walk_node(c, t->root, t->level, t->root_gen);
	if (ret == 0 && bt_check(t) == -EUCLEAN)
	{
		problem(c, t->root, "tree %llu breaks B+tree invariants", (unsigned long long)t->owner);
		UNFIXABLE(c);
	}
	return ret;
}

/* The root tree, then every tree a root item names. */
static int walk_all_trees(struct checker *c)
{
	struct cowfs *fs = c->fs;
	struct bt_cursor cur;
	struct bt_key k;
	const void *d;
	uint32_t len;
	int ret = walk_tree(c, &fs->root_tree);

	bt_cursor_init(&cur, &fs->root_tree);
	for (int r = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); r == 0 && ret == 0;
	     r = bt_cursor_next(&cur)) {
		struct tree_root tr;
		struct btree t;
		bt_cursor_item(&cur, &k, &d, &len);
		if (k.type != ROOT_ITEM_KEY)
			continue;
		if (root_item_decode(d, len, &tr) < 0) {
			problem(c, fs->root_tree.root, "malformed root item for tree %llu",
				(unsigned long long)k.objectid);
			continue;
		}
		bt_open(&t, &fs->bfs, k.objectid, tr.bytenr, tr.generation, tr.level);
		/* The walk below re-seeks the root tree's nodes: keep the cursor's key. */
		ret = walk_tree(c, &t);
	}
	bt_cursor_release(&cur);
	return ret;
}

/* ---- comparing with the extent tree ---------------------------------------------------- */

/* ---- repair: corrections queued as delayed references -------------------------------------- */

static struct dref_head *repair_head(struct checker *c, uint64_t start, uint64_t len,
				     bool is_data, uint8_t level)
{
	struct dref_head *h = dref_get(&c->fs->ext.refs, start);

	if (!h) {
		c->error = -ENOMEM;
		return NULL;
	}
	if (!h->len) {
		h->len = len;
		h->is_data = is_data;
		h->level = level;
	}
	c->st->queued++;
	return h;
}

static struct dref_head *repair_head_of(struct checker *c, const struct extent_info *x)
{
	return repair_head(c, x->start, x->len, x->flags & EXTENT_FLAG_DATA, x->level);
}

static void repair_count(struct checker *c, uint64_t start, uint64_t len, bool is_data,
			 uint8_t level, int64_t delta)
{
	struct dref_head *h;

	if (!c->repair || !delta || !(h = repair_head(c, start, len, is_data, level)))
		return;
	h->delta += delta;
}

static void repair_backref(struct checker *c, struct dref_head *h, uint64_t owner,
			   uint64_t inode, uint64_t offset, int64_t delta)
{
	if (!c->repair || !delta || !h)
		return;
	if (dref_backref_add(h, owner, inode, offset, delta) < 0)
		c->error = -ENOMEM;
}

/* A referenced extent with no item: claim its space first, so the repair cannot hand it out. */
static void repair_missing_extent(struct checker *c, struct exp_extent *e)
{
	struct dref_head *h;

	if (!c->repair)
		return;
	if (alloc_mark_used(c->fs->alloc, e->start, e->len) < 0) {
		UNFIXABLE(c);   /* overlaps an extent that has an item */
		return;
	}
	h = repair_head(c, e->start, e->len, e->is_data, e->level);
	if (!h)
		return;
	h->is_new = true;
	h->delta += e->refs;
	for (uint32_t j = 0; j < e->nback; j++)
		repair_backref(c, h, e->back[j].owner, e->back[j].inode, e->back[j].offset,
			       e->back[j].count);
}

static bool overlaps_super_copy(struct checker *c, uint64_t start, uint64_t len)
{
	uint64_t total = get_le64(&c->fs->sb.total_bytes);

	for (int i = 1; i < COWFS_SUPER_MIRRORS; i++) {
		uint64_t off = cowfs_super_offsets[i];
		if (off < total && start < off + COWFS_SUPER_GUARD && off < start + len)
			return true;
	}
	return false;
}

static int cmp_extent(void *arg, const struct extent_info *x)
{
	struct checker *c = arg;
	uint64_t total = get_le64(&c->fs->sb.total_bytes);
	struct exp_extent *e = exp_find(c, x->start);

	c->st->extent_items++;
	c->cur = e;
	c->cur_start = x->start;
	c->cur_item = *x;
	if (x->start < c->prev_end)
		problem(c, x->start, "extent overlaps the previous one (which ends at %llu)",
			(unsigned long long)c->prev_end);
	c->prev_end = x->start + x->len;
	if (x->start < COWFS_DATA_START || x->start + x->len > total ||
	    overlaps_super_copy(c, x->start, x->len))
		problem(c, x->start, "extent outside the data area or over a superblock copy");
	if (!e) {
		problem(c, x->start, "extent has %llu references recorded but none exist (leak)",
			(unsigned long long)x->refs);
		/* Its backrefs follow: each is dropped as an extra one (cmp_backref). */
		repair_count(c, x->start, x->len, x->flags & EXTENT_FLAG_DATA, x->level,
			     -(int64_t)x->refs);
		return 0;
	}
	e->matched = true;
	c->st->bytes_used += x->len;
	if (e->len != x->len || e->is_data != !!(x->flags & EXTENT_FLAG_DATA) ||
	    (!e->is_data && e->level != x->level))
		problem(c, x->start, "extent item says %s of %llu bytes (level %u), references say %s of %llu (level %u)",
			x->flags & EXTENT_FLAG_DATA ? "data" : "tree block", (unsigned long long)x->len,
			x->level, e->is_data ? "data" : "tree block", (unsigned long long)e->len,
			e->level);
	if (e->len != x->len || e->is_data != !!(x->flags & EXTENT_FLAG_DATA)) {
		UNFIXABLE(c);
		return 0;
	}
	if (e->refs != x->refs) {
		problem(c, x->start, "refcount %llu, but %llu references exist",
			(unsigned long long)x->refs, (unsigned long long)e->refs);
		repair_count(c, x->start, x->len, e->is_data, e->level,
			     (int64_t)e->refs - (int64_t)x->refs);
	}
	return 0;
}

static struct exp_backref *find_backref(struct exp_extent *e, uint64_t owner, uint64_t inode,
					uint64_t offset)
{
	for (uint32_t i = 0; e && i < e->nback; i++)
		if (e->back[i].owner == owner && e->back[i].inode == inode &&
		    e->back[i].offset == offset)
			return &e->back[i];
	return NULL;
}

static void cmp_backref(struct checker *c, uint64_t start, uint64_t owner, uint64_t inode,
			uint64_t offset, uint64_t count)
{
	struct exp_extent *e = c->cur_start == start ? c->cur : NULL;
	struct exp_backref *b;

	if (c->cur_start != start) {
		problem(c, start, "backref for an extent with no extent item");
		UNFIXABLE(c);
		return;
	}
	b = find_backref(e, owner, inode, offset);
	if (!b) {
		problem(c, start, "backref (owner %llu, inode %llu, offset %llu) x%llu matches no reference",
			(unsigned long long)owner, (unsigned long long)inode,
			(unsigned long long)offset, (unsigned long long)count);
		if (c->repair)
			repair_backref(c, repair_head_of(c, &c->cur_item), owner, inode, offset,
				       -(int64_t)count);
		return;
	}
	b->matched = true;
	if (b->count != count) {
		problem(c, start, "backref (owner %llu, inode %llu, offset %llu) says %llu, %llu references exist",
			(unsigned long long)owner, (unsigned long long)inode,
			(unsigned long long)offset, (unsigned long long)count,
			(unsigned long long)b->count);
		if (c->repair)
			repair_backref(c, repair_head_of(c, &c->cur_item), owner, inode, offset,
				       (int64_t)b->count - (int64_t)count);
	}
}

static int cmp_tree_ref(void *arg, uint64_t start, uint64_t owner, uint64_t count)
{
	cmp_backref(arg, start, owner, 0, 0, count);
	return 0;
}

static int cmp_data_ref(void *arg, uint64_t start, const struct extent_data_ref *r)
{
	cmp_backref(arg, start, r->owner, r->inode, r->offset, r->count);
	return 0;
}

/* References with no extent item, backrefs the extent tree lacks. */
static void report_unmatched(struct checker *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		struct exp_extent *e = c->slots[i];
		if (!e)
			continue;
		if (!e->matched) {
			problem(c, e->start, "%s referenced %llu times has no extent item",
				e->is_data ? "data extent" : "tree block", (unsigned long long)e->refs);
			repair_missing_extent(c, e);
			continue;
		}
		for (uint32_t j = 0; j < e->nback; j++) {
			if (e->back[j].matched)
				continue;
			problem(c, e->start, "missing backref (owner %llu, inode %llu, offset %llu) x%llu",
				(unsigned long long)e->back[j].owner,
				(unsigned long long)e->back[j].inode,
				(unsigned long long)e->back[j].offset,
				(unsigned long long)e->back[j].count);
			if (c->repair)
				repair_backref(c, repair_head(c, e->start, e->len, e->is_data, e->level),
					       e->back[j].owner, e->back[j].inode, e->back[j].offset,
					       e->back[j].count);
		}
	}
}

/* ---- data checksums ------------------------------------------------------------------------ */

/*
 * Every sector of a written data extent has a checksum, and checksums exist for nothing else:
 * an extent referenced only by preallocated items never had data written to it.
 */
struct data_span {
	struct exp_extent **v;   /* the data extents, by address */
	size_t n;
};

static int cmp_span(const void *a, const void *b)
{
	const struct exp_extent *x = *(const struct exp_extent *const *)a;
	const struct exp_extent *y = *(const struct exp_extent *const *)b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int data_spans(struct checker *c, struct data_span *s)
{
	s->n = 0;
	s->v = malloc((c->count + 1) * sizeof(*s->v));
	if (!s->v)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i] && c->slots[i]->is_data)
			s->v[s->n++] = c->slots[i];
	qsort(s->v, s->n, sizeof(*s->v), cmp_span);
	return 0;
}

/* The data extent containing `addr`, or NULL. */
static struct exp_extent *span_find(const struct data_span *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid]->start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	struct exp_extent *e = s->v[lo - 1];
	return addr < e->start + e->len ? e : NULL;
}

static void check_csum_item(struct checker *c, const struct data_span *s, const struct bt_key *k,
			    uint32_t len, uint64_t *prev_end)
{
	uint32_t ss = c->fs->ext.sectorsize;
	uint64_t n = len / sizeof(uint64_t), end = k->offset + n * ss;
	struct exp_extent *e = span_find(s, k->offset);

	if (k->objectid != CSUM_OBJECTID || k->type != EXTENT_CSUM_KEY || !len ||
	    len % sizeof(uint64_t) || k->offset % ss) {
		problem(c, k->offset, "malformed checksum item");
		UNFIXABLE(c);
		return;
	}
	if (k->offset < *prev_end)
		problem(c, k->offset, "checksum items overlap");
	*prev_end = end;
	if (!e || end > e->start + e->len) {
		problem(c, k->offset, "checksums for %llu sectors outside any data extent",
			(unsigned long long)n);
		UNFIXABLE(c);
		return;
	}
	e->csum_sectors += n;
}

static void check_coverage(struct checker *c, const struct data_span *s)
{
	uint32_t ss = c->fs->ext.sectorsize;

	for (size_t i = 0; i < s->n; i++) {
		struct exp_extent *e = s->v[i];
		uint64_t want = e->written ? e->len / ss : 0;
		if (e->csum_sectors == want)
			continue;
		problem(c, e->start, "data extent of %llu sectors has %llu checksums, not %llu",
			(unsigned long long)(e->len / ss), (unsigned long long)e->csum_sectors,
			(unsigned long long)want);
		UNFIXABLE(c);
	}
}

static int check_csums(struct checker *c)
{
	struct bt_cursor cur;
	struct data_span s;
	uint64_t prev_end = 0;
	int ret = data_spans(c, &s);

	if (ret < 0)
		return ret;
	bt_cursor_init(&cur, &c->fs->csum_root.t);
	for (ret = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); ret == 0;
	     ret = bt_cursor_next(&cur)) {
		struct bt_key k;
		uint32_t len;
		bt_cursor_item(&cur, &k, NULL, &len);
		check_csum_item(c, &s, &k, len, &prev_end);
	}
	bt_cursor_release(&cur);
	if (ret == -ENOENT) {
		ret = 0;
		check_coverage(c, &s);
	} else if (ret == -EIO || ret == -EUCLEAN) {
		problem(c, c->fs->csum_root.t.root, "checksum tree could not be read completely");
		UNFIXABLE(c);
		ret = 0;
	}
	free(s.v);
	return ret;
}

static void checker_free(struct checker *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		if (c->slots[i]) {
			free(c->slots[i]->back);
			free(c->slots[i]);
		}
	}
	free(c->slots);
}

static int run_check(struct cowfs *fs, struct cowfs_check_stats *st, bool repair,
		     cowfs_check_progress_fn progress, void *progress_arg)
{
	struct checker c = { .fs = fs, .st = st, .progress = progress, .repair = repair,
			     .progress_arg = progress_arg, .cur_start = UINT64_MAX };
	struct extent_walk w = { cmp_extent, cmp_tree_ref, cmp_data_ref, &c };
	int ret;

	memset(st, 0, sizeof(*st));
	ret = exp_grow(&c);
	if (ret == 0)
		ret = walk_all_trees(&c);
	if (ret == 0) {
		ret = extent_walk(&fs->ext, &w);
		if (ret == -EUCLEAN || ret == -EIO) {
			problem(&c, fs->extent_root.t.root, "extent tree could not be read completely");
			UNFIXABLE(&c);
			ret = 0;
		}
	}
	if (ret == 0)
		ret = check_csums(&c);
	if (ret == 0) {
		report_unmatched(&c);
		if (get_le64(&fs->sb.bytes_used) != st->bytes_used)
			problem(&c, COWFS_SUPER_OFFSET, "superblock says %llu bytes used, extents add up to %llu",
				(unsigned long long)get_le64(&fs->sb.bytes_used),
				(unsigned long long)st->bytes_used);
	}
	checker_free(&c);
	if (ret == 0)
		ret = c.error;
	if (ret < 0)
		return ret;
	return st->problems ? -EUCLEAN : 0;
}

int cowfs_check(struct cowfs *fs, struct cowfs_check_stats *st,
		cowfs_check_progress_fn progress, void *progress_arg)
{
	return run_check(fs, st, false, progress, progress_arg);
}

int cowfs_check_repair(struct cowfs *fs, struct cowfs_check_stats *st,
		       cowfs_check_progress_fn progress, void *progress_arg)
{
	if (fs->read_only)
		return -EROFS;
	return run_check(fs, st, true, progress, progress_arg);
}
