/*
 * The reference checker (ref_check.h): what the trees say every extent's references must be,
 * against what the extent tree stores, and the corrections for the difference.
 */
#include "fs/extent/ref_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/btree/view.h"
#include "fs/lib/compiler.h"
#include "fs/extent/csum_tree.h"
#include "fs/extent/file_extent.h"

/*
 * Drops one backref correction may take, one extent_ref_drop each: its count comes from the
 * extent tree, which is what is damaged, and one beyond any real count (2^64 - 1, say) would
 * take forever one reference at a time. Far more than any real extent's references under one
 * backref key, each a pointer or an item in a distinct node.
 */
#define MAX_DROPS_PER_BACKREF (1u << 24)

/* Progress is reported at most once per this many steps of a pass, and at its end. */
#define PROGRESS_EVERY 4096

/* ---- what the trees say: the expected extents --------------------------------------- */

struct exp_backref {
	uint64_t owner, inode, offset, count;
	bool matched;
};

/* Byte ranges, in the order added, adjacent ones joined. */
struct byte_ranges {
	struct { uint64_t from, to; } *v;
	uint32_t n, cap;
};

static int ranges_add(struct byte_ranges *r, uint64_t from, uint64_t to)
{
	if (r->n && r->v[r->n - 1].to == from) {
		r->v[r->n - 1].to = to;
		return 0;
	}
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? 2 * r->cap : 2;
		void *v = realloc(r->v, cap * sizeof(*r->v));
		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].from = from;
	r->v[r->n++].to = to;
	return 0;
}

struct written_ranges {
	struct byte_ranges reg, csum;
};

/* What the trees say one extent must look like. */
struct exp_extent {
	uint64_t start, len, refs;
	bool is_data, walked, matched;
	bool written;                  /* data: a REG item maps all of it */
	uint64_t csum_sectors;         /* data: sectors the checksum tree covers */
	/* Data: byte ranges (from the extent's start) REG items map of it when none maps all of
	 * it, and then where its checksums are (check_coverage); NULL for most extents. */
	struct written_ranges *ranges;
	uint8_t level;
	uint32_t nback, capback;
	struct exp_backref *back;
};

/* A correction of one backref of the extent item being compared. */
struct backref_fix {
	uint64_t owner, inode, offset;
	int64_t delta;
};

/* The extent item being compared, whose backrefs follow it in the extent tree. */
struct cur_item {
	bool valid;
	struct extent_info item;
	struct exp_extent *e;          /* what the trees say; NULL: nothing references it */
	uint64_t stored_backrefs;      /* what the counts of its backrefs add up to */
	bool overflow;                 /* ... or a count no real extent can have */
	uint64_t queued;               /* its problems that have corrections waiting */
	struct backref_fix *fix;       /* corrections of its backrefs, in the order found */
	uint32_t nfix, capfix;
};

struct ref_check {
	struct extents *x;
	struct ref_check_opts o;
	struct ref_check_stats st;
	struct exp_extent **slots;     /* open addressing by start */
	size_t cap, count;
	uint64_t prev_end;             /* end of the previous extent item seen */
	struct cur_item cur;
	int error;                     /* first failure to queue a repair (-ENOMEM) */
};

static void problem(struct ref_check *rc, uint64_t bytenr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct ref_check *rc, uint64_t bytenr, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rc->st.problems++;
	if (rc->x->fs->report)
		rc->x->fs->report(rc->x->fs->report_arg, bytenr, msg);
}

/* A problem in the structure itself, which no reference correction fixes. */
static void progress(const struct ref_check *rc, unsigned pass, uint64_t done, uint64_t total)
{
	struct ref_check_progress p = { pass, done, MAX(done, total), rc->st.tree_blocks };

	if (rc->o.progress)
		rc->o.progress(rc->o.progress_arg, &p);
}

/* A pass's end: done is its total, whatever the estimate was. */
static void pass_done(const struct ref_check *rc, unsigned pass, uint64_t done, uint64_t total)
{
	done = MAX(done, total);
	progress(rc, pass, done, done);
}

static void unfixable(struct ref_check *rc)
{
	rc->st.unfixable++;
}

static size_t slot_of(const struct ref_check *rc, uint64_t start)
{
	return (size_t)((start * 0x9e3779b97f4a7c15ULL) >> 17) & (rc->cap - 1);
}

static struct exp_extent *exp_find(struct ref_check *rc, uint64_t start)
{
	for (size_t i = slot_of(rc, start);; i = (i + 1) & (rc->cap - 1)) {
		if (!rc->slots[i])
			return NULL;
		if (rc->slots[i]->start == start)
			return rc->slots[i];
	}
}

static int exp_grow(struct ref_check *rc)
{
	struct exp_extent **old = rc->slots;
	size_t old_cap = rc->cap;

	rc->cap = old_cap ? old_cap * 2 : 4096;
	rc->slots = calloc(rc->cap, sizeof(*rc->slots));
	if (!rc->slots) {
		rc->slots = old;
		rc->cap = old_cap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i])
			continue;
		size_t j = slot_of(rc, old[i]->start);
		while (rc->slots[j])
			j = (j + 1) & (rc->cap - 1);
		rc->slots[j] = old[i];
	}
	free(old);
	return 0;
}

static struct exp_extent *exp_get(struct ref_check *rc, uint64_t start)
{
	struct exp_extent *e = exp_find(rc, start);

	if (e)
		return e;
	if ((rc->count + 1) * 2 > rc->cap && exp_grow(rc) < 0)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->start = start;
	size_t i = slot_of(rc, start);
	while (rc->slots[i])
		i = (i + 1) & (rc->cap - 1);
	rc->slots[i] = e;
	rc->count++;
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

static struct exp_backref *exp_backref_find(struct exp_extent *e, uint64_t owner,
					    uint64_t inode, uint64_t offset)
{
	for (uint32_t i = 0; e && i < e->nback; i++)
		if (e->back[i].owner == owner && e->back[i].inode == inode &&
		    e->back[i].offset == offset)
			return &e->back[i];
	return NULL;
}

/* ---- recomputing references from the trees ---------------------------------------- */

static struct exp_extent *expect_tree_ref(struct ref_check *rc, uint64_t bytenr, uint8_t level,
					  uint64_t owner)
{
	struct exp_extent *e = exp_get(rc, bytenr);

	if (!e)
		return NULL;
	if (e->refs && (e->is_data || e->level != level))
		problem(rc, bytenr, "block referenced both as level %u and as %s", level,
			e->is_data ? "data" : "another level");
	e->len = rc->x->fs->nodesize;
	e->level = level;
	e->refs++;
	return exp_backref_add(e, owner, 0, 0) == 0 ? e : NULL;
}

/* A REG item maps part of e. */
static int note_written_range(struct exp_extent *e, const struct file_extent *fe)
{
	if (!e->ranges && !(e->ranges = calloc(1, sizeof(*e->ranges))))
		return -ENOMEM;
	return ranges_add(&e->ranges->reg, fe->offset, fe->offset + fe->num_bytes);
}

static int expect_data_ref(struct ref_check *rc, const struct file_extent *fe, uint64_t owner,
			   const struct bt_key *k)
{
	struct exp_extent *e = exp_get(rc, fe->disk_bytenr);

	if (!e)
		return -ENOMEM;
	if (e->refs && (!e->is_data || e->len != fe->disk_num_bytes))
		problem(rc, fe->disk_bytenr,
			"data extent referenced with two lengths or also as a tree block");
	if (!e->refs)
		rc->st.data_extents++;
	e->is_data = true;
	e->len = fe->disk_num_bytes;
	e->refs++;
	if (fe->type == FILE_EXTENT_REG && fe->offset == 0 && fe->num_bytes == fe->disk_num_bytes)
		e->written = true;
	else if (fe->type == FILE_EXTENT_REG && note_written_range(e, fe) < 0)
		return -ENOMEM;
	return exp_backref_add(e, owner, k->objectid, k->offset);
}

/* The references a leaf's file extent items hold. */
static int expect_leaf_refs(struct ref_check *rc, const struct bt_node *n)
{
	for (uint32_t i = 0; i < bt_node_nritems(n); i++) {
		struct file_extent fe;
		struct bt_key k;
		const void *data;
		uint32_t len;
		bt_node_key(n, i, &k);
		if (k.type != EXTENT_DATA_KEY)
			continue;
		bt_node_item(n, i, &data, &len);
		if (file_extent_decode(data, len, &fe) < 0) {
			problem(rc, bt_node_bytenr(n), "malformed file extent item (%llu,%u,%llu)",
				(unsigned long long)k.objectid, k.type, (unsigned long long)k.offset);
			continue;
		}
		if (!file_extent_refers(&fe))
			continue;
		int ret = expect_data_ref(rc, &fe, bt_node_owner(n), &k);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* One tree's walk: its id keys the reference its root pointer holds. */
struct tree_walk {
	struct ref_check *rc;
	uint64_t tree;
};

/* Every pointer is a reference; only the first to a node leads into it. */
static int enter_node(void *arg, uint64_t bytenr, uint8_t level, const struct bt_node *parent)
{
	struct tree_walk *tw = arg;
	struct exp_extent *e = expect_tree_ref(tw->rc, bytenr, level,
					       parent ? bt_node_owner(parent) : tw->tree);

	if (!e)
		return -ENOMEM;
	if (e->walked)
		return 1;
	e->walked = true;
	return 0;
}

static int visit_node(void *arg, const struct bt_node *n, uint64_t parent)
{
	struct ref_check *rc = ((struct tree_walk *)arg)->rc;

	(void)parent;
	rc->st.tree_blocks++;
	if (rc->st.tree_blocks % PROGRESS_EVERY == 0)
		progress(rc, REF_CHECK_PASS_TREES, rc->st.trees - 1, rc->o.trees);
	return bt_node_level(n) == 0 ? expect_leaf_refs(rc, n) : 0;
}

static int node_unreadable(void *arg, uint64_t bytenr, uint8_t level, uint64_t parent, int err)
{
	struct ref_check *rc = ((struct tree_walk *)arg)->rc;

	(void)level, (void)parent;
	problem(rc, bytenr, "node unreadable or invalid (%s)", strerror(-err));
	unfixable(rc);
	return 0;
}

int ref_check_tree(struct ref_check *rc, struct btree *t)
{
	struct tree_walk tw = { rc, t->owner };
	int ret;

	rc->st.trees++;
	ret = bt_walk(t, &(struct bt_walk){ .enter = enter_node, .node = visit_node,
					    .unreadable = node_unreadable, .arg = &tw });
	if (ret == 0 && bt_check(t) == -EUCLEAN) {
		problem(rc, t->root, "tree %llu breaks B+tree invariants",
			(unsigned long long)t->owner);
		unfixable(rc);
	}
	progress(rc, REF_CHECK_PASS_TREES, rc->st.trees, rc->o.trees);
	return ret;
}

/* ---- repair: corrections through the reference path ------------------------------- */

/* Queue corrections only while every problem so far is one repair can fix. */
static bool repairing(const struct ref_check *rc)
{
	return rc->o.repair && rc->st.unfixable == 0;
}

/* A correction the extent layer refused is damage beyond repair; -ENOMEM ends the check. */
static int repair_result(struct ref_check *rc, int ret)
{
	if (ret == -ENOMEM)
		rc->error = ret;
	else if (ret < 0)
		unfixable(rc);
	return ret;
}

static struct extent_ref ref_of_item(const struct extent_info *e, uint64_t owner,
				     uint64_t inode, uint64_t offset)
{
	return (struct extent_ref){ .start = e->start, .len = e->len,
				    .is_data = e->flags & EXTENT_FLAG_DATA, .level = e->level,
				    .owner = owner, .inode = inode, .offset = offset };
}

/* Move backref (owner, inode, offset) of extent `e` by `delta`, a reference at a time. */
static int repair_backref(struct ref_check *rc, const struct extent_info *e, uint64_t owner,
			  uint64_t inode, uint64_t offset, int64_t delta)
{
	struct extent_ref r = ref_of_item(e, owner, inode, offset);
	int ret = 0;

	if (delta < -(int64_t)MAX_DROPS_PER_BACKREF)
		return repair_result(rc, -EOVERFLOW);
	for (; delta > 0 && ret == 0; delta--)
		ret = extent_ref_add(rc->x, rc->o.tx, &r);
	for (; delta < 0 && ret == 0; delta++)
		ret = extent_ref_drop(rc->x, rc->o.tx, &r, NULL);
	return repair_result(rc, ret);
}

static void cur_fix_add(struct ref_check *rc, uint64_t owner, uint64_t inode, uint64_t offset,
			int64_t delta)
{
	struct cur_item *ci = &rc->cur;

	if (ci->nfix == ci->capfix) {
		uint32_t cap = ci->capfix ? ci->capfix * 2 : 4;
		struct backref_fix *v = realloc(ci->fix, cap * sizeof(*v));
		if (!v) {
			rc->error = -ENOMEM;
			return;
		}
		ci->fix = v;
		ci->capfix = cap;
	}
	ci->fix[ci->nfix++] = (struct backref_fix){ owner, inode, offset, delta };
	ci->queued++;
}

/*
 * The corrections of the item whose backrefs were all compared: a leak goes whole; otherwise
 * the count is first made what its stored backrefs say, then each wrong backref is corrected
 * with the reference it stands for, which moves the count along to what the trees say.
 */
static void repair_item(struct ref_check *rc, struct cur_item *ci)
{
	uint64_t start = ci->item.start;

	if (ci->overflow) {
		unfixable(rc);
		return;
	}
	if (!ci->e) {
		if (repair_result(rc, extent_forget_leak(rc->x, rc->o.tx, start)) == 0)
			rc->st.queued += ci->queued;
		return;
	}
	if (ci->stored_backrefs != ci->item.refs &&
	    repair_result(rc, extent_recount(rc->x, rc->o.tx, start)) < 0)
		return;
	for (uint32_t i = 0; i < ci->nfix; i++) {
		const struct backref_fix *f = &ci->fix[i];
		if (repair_backref(rc, &ci->item, f->owner, f->inode, f->offset, f->delta) < 0)
			return;
	}
	rc->st.queued += ci->queued;
}

static void close_item(struct ref_check *rc)
{
	struct cur_item *ci = &rc->cur;

	/* Even with no problem of its own, its count may disagree with its stored backrefs:
	 * one the trees need is missing (report_unmatched adds it later). */
	if (ci->valid && repairing(rc) && !rc->error)
		repair_item(rc, ci);
	ci->valid = false;
	ci->nfix = 0;
}

/* The extent as the trees describe it (for an extent the extent tree lacks, or agrees on). */
static struct extent_info item_of_expected(const struct exp_extent *e)
{
	return (struct extent_info){ .start = e->start, .len = e->len, .level = e->level,
				     .flags = e->is_data ? EXTENT_FLAG_DATA
							 : EXTENT_FLAG_TREE_BLOCK };
}

/* A referenced extent with no item: claim it, then add what the trees say it holds. */
static void repair_missing_extent(struct ref_check *rc, const struct exp_extent *e)
{
	struct extent_info item = item_of_expected(e);

	if (repair_result(rc, extent_adopt(rc->x, rc->o.tx, e->start, e->len, e->is_data,
					   e->level)) < 0)
		return;
	rc->st.queued++;
	for (uint32_t j = 0; j < e->nback; j++) {
		const struct exp_backref *b = &e->back[j];
		if (repair_backref(rc, &item, b->owner, b->inode, b->offset, (int64_t)b->count) < 0)
			return;
	}
}

/* A backref the trees need that the extent tree lacks: the references it stands for. */
static void repair_missing_backref(struct ref_check *rc, const struct exp_extent *e,
				   const struct exp_backref *b)
{
	struct extent_info item = item_of_expected(e);

	if (repair_backref(rc, &item, b->owner, b->inode, b->offset, (int64_t)b->count) == 0)
		rc->st.queued++;
}

/* ---- comparing with the extent tree ----------------------------------------------- */

static bool over_a_hole(const struct ref_check *rc, uint64_t start, uint64_t len)
{
	for (size_t i = 0; i < rc->o.nholes; i++) {
		const struct ref_check_hole *h = &rc->o.holes[i];
		if (start < h->start + h->len && h->start < start + len)
			return true;
	}
	return false;
}

static int cmp_extent(void *arg, const struct extent_info *x)
{
	struct ref_check *rc = arg;
	struct exp_extent *e = exp_find(rc, x->start);
	bool is_data = x->flags & EXTENT_FLAG_DATA;

	close_item(rc);
	rc->st.extent_items++;
	if (rc->st.extent_items % PROGRESS_EVERY == 0)
		progress(rc, REF_CHECK_PASS_EXTENTS, rc->st.extent_items, rc->count);
	rc->cur.valid = true;
	rc->cur.item = *x;
	rc->cur.e = e;
	rc->cur.stored_backrefs = 0;
	rc->cur.overflow = false;
	rc->cur.queued = 0;
	if (x->start < rc->prev_end)
		problem(rc, x->start, "extent overlaps the previous one (which ends at %llu)",
			(unsigned long long)rc->prev_end);
	rc->prev_end = x->start + x->len;
	if (x->start < rc->o.data_start || x->start + x->len > rc->o.data_end ||
	    over_a_hole(rc, x->start, x->len))
		problem(rc, x->start, "extent outside the data area or over a superblock copy");
	if (!e) {
		problem(rc, x->start, "extent has %llu references recorded but none exist (leak)",
			(unsigned long long)x->refs);
		rc->cur.queued += rc->o.repair;
		return 0;
	}
	e->matched = true;
	rc->st.bytes_used += x->len;
	if (e->len != x->len || e->is_data != is_data || (!e->is_data && e->level != x->level))
		problem(rc, x->start,
			"extent item says %s of %llu bytes (level %u), references say %s of %llu (level %u)", is_data ? "data" : "tree block", (unsigned long long)x->len, x->level, e->is_data ? "data" : "tree block", (unsigned long long)e->len, e->level);
	if (e->len != x->len || e->is_data != is_data) {
		unfixable(rc);
		return 0;
	}
	if (e->refs != x->refs) {
		problem(rc, x->start, "refcount %llu, but %llu references exist",
			(unsigned long long)x->refs, (unsigned long long)e->refs);
		rc->cur.queued += rc->o.repair;
	}
	return 0;
}

static void cmp_backref(struct ref_check *rc, uint64_t start, uint64_t owner, uint64_t inode,
			uint64_t offset, uint64_t count)
{
	struct cur_item *ci = &rc->cur;
	struct exp_backref *b;

	if (!ci->valid || ci->item.start != start) {
		problem(rc, start, "backref for an extent with no extent item");
		unfixable(rc);
		return;
	}
	ci->overflow |= count > INT64_MAX ||
			__builtin_add_overflow(ci->stored_backrefs, count, &ci->stored_backrefs);
	b = exp_backref_find(ci->e, owner, inode, offset);
	if (!b) {
		problem(rc, start,
			"backref (owner %llu, inode %llu, offset %llu) x%llu matches no reference", (unsigned long long)owner, (unsigned long long)inode, (unsigned long long)offset, (unsigned long long)count);
		/* A leak's backrefs all go with it (extent_forget_leak). */
		if (!rc->o.repair)
			return;
		if (ci->e)
			cur_fix_add(rc, owner, inode, offset, -(int64_t)count);
		else
			ci->queued++;
		return;
	}
	b->matched = true;
	if (b->count != count) {
		problem(rc, start,
			"backref (owner %llu, inode %llu, offset %llu) says %llu, %llu references exist", (unsigned long long)owner, (unsigned long long)inode, (unsigned long long)offset, (unsigned long long)count, (unsigned long long)b->count);
		if (rc->o.repair)
			cur_fix_add(rc, owner, inode, offset, (int64_t)b->count - (int64_t)count);
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

static int compare_extent_tree(struct ref_check *rc)
{
	struct extent_walk w = { cmp_extent, cmp_tree_ref, cmp_data_ref, rc };
	int ret = extent_walk(rc->x, &w);

	if (ret == -EUCLEAN || ret == -EIO) {
		problem(rc, rc->x->tree->root, "extent tree could not be read completely");
		unfixable(rc);
		ret = 0;
	}
	close_item(rc);
	pass_done(rc, REF_CHECK_PASS_EXTENTS, rc->st.extent_items, rc->count);
	return ret;
}

/* References with no extent item, backrefs the extent tree lacks. */
static void report_unmatched(struct ref_check *rc)
{
	for (size_t i = 0; i < rc->cap && !rc->error; i++) {
		struct exp_extent *e = rc->slots[i];
		if (!e)
			continue;
		if (!e->matched) {
			problem(rc, e->start, "%s referenced %llu times has no extent item",
				e->is_data ? "data extent" : "tree block", (unsigned long long)e->refs);
			if (repairing(rc))
				repair_missing_extent(rc, e);
			continue;
		}
		for (uint32_t j = 0; j < e->nback; j++) {
			const struct exp_backref *b = &e->back[j];
			if (b->matched)
				continue;
			problem(rc, e->start,
				"missing backref (owner %llu, inode %llu, offset %llu) x%llu", (unsigned long long)b->owner, (unsigned long long)b->inode, (unsigned long long)b->offset, (unsigned long long)b->count);
			if (repairing(rc))
				repair_missing_backref(rc, e, b);
		}
	}
}

/* ---- data checksums --------------------------------------------------------------- */

/*
 * Every sector a REG item maps has a checksum, and checksums lie in data extents only. An
 * extent written whole (write-back's new extents) has one for every sector; one written into
 * where it was preallocated (fs/inode/inplace.c) has them where it was written, which is all
 * its REG items map and perhaps more (pieces written and since overwritten elsewhere), and a
 * preallocated extent never written has none.
 */
struct data_spans {
	struct exp_extent **v;   /* the data extents, by address */
	size_t n;
};

static int cmp_span(const void *a, const void *b)
{
	const struct exp_extent *x = *(const struct exp_extent *const *)a;
	const struct exp_extent *y = *(const struct exp_extent *const *)b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int data_spans(struct ref_check *rc, struct data_spans *s)
{
	s->n = 0;
	s->v = malloc((rc->count + 1) * sizeof(*s->v));
	if (!s->v)
		return -ENOMEM;
	for (size_t i = 0; i < rc->cap; i++)
		if (rc->slots[i] && rc->slots[i]->is_data)
			s->v[s->n++] = rc->slots[i];
	qsort(s->v, s->n, sizeof(*s->v), cmp_span);
	return 0;
}

/* The data extent containing `addr`, or NULL. */
static struct exp_extent *span_find(const struct data_spans *s, uint64_t addr)
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

static int cmp_range(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;   /* each range starts with its `from` */

	return *x < *y ? -1 : *x > *y;
}

static void check_csum_item(struct ref_check *rc, const struct data_spans *s,
			    const struct bt_key *k, uint32_t len, uint64_t *prev_end)
{
	uint32_t ss = rc->x->sectorsize;
	uint64_t n = len / sizeof(uint64_t), end = k->offset + n * ss;
	struct exp_extent *e = span_find(s, k->offset);

	if (k->objectid != CSUM_OBJECTID || k->type != EXTENT_CSUM_KEY || !len ||
	    len % sizeof(uint64_t) || k->offset % ss) {
		problem(rc, k->offset, "malformed checksum item");
		unfixable(rc);
		return;
	}
	if (k->offset < *prev_end)
		problem(rc, k->offset, "checksum items overlap");
	*prev_end = end;
	if (!e || end > e->start + e->len) {
		problem(rc, k->offset, "checksums for %llu sectors outside any data extent",
			(unsigned long long)n);
		unfixable(rc);
		return;
	}
	e->csum_sectors += n;
	if (!e->written && e->ranges &&
	    ranges_add(&e->ranges->csum, k->offset - e->start, end - e->start) < 0)
		rc->error = -ENOMEM;
}

/* Whether every range of `want` lies in one of `have`'s (in address order, adjacent ones
 * joined: checksum items come in order). */
static bool ranges_within(struct byte_ranges *want, const struct byte_ranges *have)
{
	qsort(want->v, want->n, sizeof(*want->v), cmp_range);
	for (uint32_t i = 0; i < want->n; i++) {
		uint32_t lo = 0, hi = have->n;
		while (lo < hi) {   /* the first range ending past want's start */
			uint32_t mid = lo + (hi - lo) / 2;
			if (have->v[mid].to <= want->v[i].from)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == have->n || have->v[lo].from > want->v[i].from ||
		    have->v[lo].to < want->v[i].to)
			return false;
	}
	return true;
}

static void check_coverage(struct ref_check *rc, const struct data_spans *s)
{
	uint32_t ss = rc->x->sectorsize;

	for (size_t i = 0; i < s->n; i++) {
		struct exp_extent *e = s->v[i];
		if (e->written && e->csum_sectors != e->len / ss) {
			problem(rc, e->start, "data extent of %llu sectors has %llu checksums, not %llu",
				(unsigned long long)(e->len / ss), (unsigned long long)e->csum_sectors,
				(unsigned long long)(e->len / ss));
			unfixable(rc);
		} else if (!e->written && e->ranges && e->csum_sectors != e->len / ss &&
			   !ranges_within(&e->ranges->reg, &e->ranges->csum)) {
			problem(rc, e->start, "data extent of %llu sectors: sectors its file extent "
				"items map as written have no checksums",
				(unsigned long long)(e->len / ss));
			unfixable(rc);
		}
	}
}

static int check_csums(struct ref_check *rc)
{
	struct bt_cursor cur;
	struct data_spans s;
	uint64_t prev_end = 0, items = 0, area = rc->o.data_end - rc->o.data_start;
	int ret;

	if (!rc->x->csum_tree) {
		pass_done(rc, REF_CHECK_PASS_CSUMS, 0, area);
		return 0;
	}
	ret = data_spans(rc, &s);
	if (ret < 0)
		return ret;
	bt_cursor_init(&cur, rc->x->csum_tree);
	for (ret = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); ret == 0;
	     ret = bt_cursor_next(&cur)) {
		struct bt_key k;
		uint32_t len;
		bt_cursor_item(&cur, &k, NULL, &len);
		check_csum_item(rc, &s, &k, len, &prev_end);
		if (++items % PROGRESS_EVERY == 0 && k.offset >= rc->o.data_start)
			progress(rc, REF_CHECK_PASS_CSUMS, k.offset - rc->o.data_start, area);
	}
	bt_cursor_release(&cur);
	if (ret == -ENOENT) {
		ret = 0;
		check_coverage(rc, &s);
	} else if (ret == -EIO || ret == -EUCLEAN) {
		problem(rc, rc->x->csum_tree->root, "checksum tree could not be read completely");
		unfixable(rc);
		ret = 0;
	}
	free(s.v);
	pass_done(rc, REF_CHECK_PASS_CSUMS, 0, area);
	return ret;
}

/* ---- the checker ------------------------------------------------------------------ */

int ref_check_begin(struct extents *x, const struct ref_check_opts *o, struct ref_check **out)
{
	struct ref_check *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return -ENOMEM;
	rc->x = x;
	rc->o = *o;
	if (exp_grow(rc) < 0) {
		free(rc);
		return -ENOMEM;
	}
	*out = rc;
	return 0;
}

int ref_check_compare(struct ref_check *rc)
{
	int ret = compare_extent_tree(rc);

	if (ret == 0)
		ret = check_csums(rc);
	if (ret == 0)
		report_unmatched(rc);
	return ret ? ret : rc->error;
}

const struct ref_check_stats *ref_check_stats(const struct ref_check *rc)
{
	return &rc->st;
}

void ref_check_end(struct ref_check *rc)
{
	if (!rc)
		return;
	for (size_t i = 0; i < rc->cap; i++) {
		if (rc->slots[i]) {
			free(rc->slots[i]->back);
			if (rc->slots[i]->ranges) {
				free(rc->slots[i]->ranges->reg.v);
				free(rc->slots[i]->ranges->csum.v);
				free(rc->slots[i]->ranges);
			}
			free(rc->slots[i]);
		}
	}
	free(rc->slots);
	free(rc->cur.fix);
	free(rc);
}
