/*
 * Extent reference counting: the bt_ops callbacks that record changes as delayed refs, and
 * the commit-time application of those changes to the extent tree.
 */
#include "fs/extent/extent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/extent/csum_tree.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

/* Rounds of delayed-ref application before giving up: each round only handles the extent
 * tree's own reshaping by the previous one, so a handful always suffices. */
#define MAX_APPLY_ROUNDS 64

uint64_t extent_data_ref_hash(uint64_t owner, uint64_t inode, uint64_t offset)
{
	uint8_t b[24];

	put_le64(b, owner);
	put_le64(b + 8, inode);
	put_le64(b + 16, offset);
	return cowfs_csum(b, sizeof(b));
}

static int corrupt(struct extents *x, uint64_t bytenr, const char *msg)
{
	if (x->fs->report)
		x->fs->report(x->fs->report_arg, bytenr, msg);
	return -EUCLEAN;
}

/* A malformed item: name the leaf it lives in, its tree and its key (SQLITE_CORRUPT_PAGE). */
static int corrupt_in_leaf(struct extents *x, uint64_t tree, uint64_t leaf,
			   const struct bt_key *k, const char *msg)
{
	char buf[224];

	snprintf(buf, sizeof(buf), "tree %" PRIu64 " leaf %" PRIu64 " (level 0) item (%" PRIu64
		 " %u %" PRIu64 "): %s", tree, leaf, k->objectid, k->type, k->offset, msg);
	return corrupt(x, leaf, buf);
}

/* The same for an item of the extent tree just read (bt_item_leaf). */
static int corrupt_item(struct extents *x, const struct bt_key *k, const char *msg)
{
	return corrupt_in_leaf(x, x->tree->owner, bt_item_leaf(x->tree), k, msg);
}

/* ---- reading the extent tree ---------------------------------------------------------- */

static int decode_extent_item(struct extents *x, const struct bt_key *k, const void *d,
			      uint32_t len, struct extent_info *out)
{
	const struct extent_item *ei = d;

	if (len != sizeof(*ei) || k->offset == 0)
		return corrupt_item(x, k, "malformed extent item");
	out->start = k->objectid;
	out->len = k->offset;
	out->refs = get_le64(&ei->refs);
	out->generation = get_le64(&ei->generation);
	out->flags = get_le64(&ei->flags);
	out->level = ei->level;
	if (out->refs == 0 || (out->flags != EXTENT_FLAG_DATA && out->flags != EXTENT_FLAG_TREE_BLOCK))
		return corrupt_item(x, k, "extent item with no references or unknown kind");
	return 0;
}

int extent_lookup(struct extents *x, uint64_t start, uint64_t len, struct extent_info *out)
{
	struct bt_key k = { start, EXTENT_ITEM_KEY, len };
	struct extent_item ei;
	uint32_t size;
	int ret = bt_lookup(x->tree, &k, &ei, sizeof(ei), &size);

	if (ret < 0)
		return ret;
	return decode_extent_item(x, &k, &ei, size, out);
}

/* The refcount the extent tree holds for a head's extent (0 if the head is new). */
static int head_base(struct extents *x, struct dref_head *h)
{
	struct extent_info e;
	int ret;

	if (h->base_known || h->is_new)
		return 0;
	ret = extent_lookup(x, h->bytenr, h->len, &e);
	if (ret == -ENOENT)
		return corrupt(x, h->bytenr, "reference to an extent with no extent item");
	if (ret < 0)
		return ret;
	h->base = e.refs;
	h->base_known = true;
	return 0;
}

int extent_refcount(struct extents *x, uint64_t start, uint64_t len, uint64_t *refs)
{
	struct dref_head *h = dref_find(&x->refs, start);
	struct extent_info e;
	int ret;

	if (h && h->len && h->len != len)
		return corrupt(x, start, "reference disagrees with its extent's length");
	if (h) {
		ret = head_base(x, h);
		if (ret < 0)
			return ret;
		/* A data count may pass through zero within an update (ref_drop). */
		*refs = (uint64_t)MAX((int64_t)h->base + h->delta, 0);
		return 0;
	}
	ret = extent_lookup(x, start, len, &e);
	if (ret < 0)
		return ret;
	*refs = e.refs;
	return 0;
}

/* Steps along the extent tree before a search from the root is cheaper: the items between
 * two extents asked for one after the other are their backrefs, or extents not asked for. */
#define COUNTER_MAX_STEPS 16

void extent_counter_init(struct extent_counter *ec, struct extents *x)
{
	ec->x = x;
	ec->positioned = false;
	bt_cursor_init(&ec->c, x->tree);
}

/*
 * Put the cursor on the first item >= k. The cursor is on the first item >= the key asked
 * before (ec->last); when k is not below that, the items in between are stepped over, a few
 * at most, before a seek from the root takes over.
 */
static int counter_move(struct extent_counter *ec, const struct bt_key *k, struct bt_key *at)
{
	int ret = 0;

	if (ec->positioned && bt_key_cmp(k, &ec->last) >= 0) {
		bt_cursor_item(&ec->c, at, NULL, NULL);
		for (int i = 0; ret == 0 && bt_key_cmp(at, k) < 0; i++) {
			if (i == COUNTER_MAX_STEPS)
				break;
			if ((ret = bt_cursor_next(&ec->c)) == 0)
				bt_cursor_item(&ec->c, at, NULL, NULL);
		}
		if (ret == 0 && bt_key_cmp(at, k) >= 0) {
			ec->last = *k;
			return 0;
		}
		if (ret < 0 && ret != -ENOENT)
			return ret;
	}
	ec->positioned = false;
	ret = bt_cursor_seek(&ec->c, k, BT_SEEK_GE);
	if (ret == 0) {
		ec->positioned = true;
		ec->last = *k;
		bt_cursor_item(&ec->c, at, NULL, NULL);
	}
	return ret;
}

int extent_counter_get(struct extent_counter *ec, uint64_t start, uint64_t len, uint64_t *refs)
{
	struct extents *x = ec->x;
	struct bt_key k = { start, EXTENT_ITEM_KEY, len }, at;
	struct extent_info e;
	const void *d;
	uint32_t size;
	int ret;

	/* Pending changes: the head knows the count, the one path for it is extent_refcount. */
	if (dref_find(&x->refs, start))
		return extent_refcount(x, start, len, refs);
	ret = counter_move(ec, &k, &at);
	if (ret < 0)
		return ret;
	if (bt_key_cmp(&at, &k) != 0)
		return -ENOENT;
	bt_cursor_item(&ec->c, &at, &d, &size);
	ret = decode_extent_item(x, &at, d, size, &e);
	if (ret == 0)
		*refs = e.refs;
	return ret;
}

void extent_counter_release(struct extent_counter *ec)
{
	bt_cursor_release(&ec->c);
	ec->positioned = false;
}

/* ---- bt_ops: recording changes ------------------------------------------------------- */

/* The head for a reference's extent, describing the extent on first use. */
static struct dref_head *ref_head(struct extents *x, const struct extent_ref *r)
{
	struct dref_head *h = dref_get(&x->refs, r->start);

	if (h && !h->len) {
		h->len = r->len;
		h->is_data = r->is_data;
		h->level = r->level;
	} else if (h && (h->len != r->len || h->is_data != r->is_data)) {
		corrupt(x, r->start, "reference disagrees with its extent's length or kind");
		return NULL;
	}
	return h;
}

/*
 * The two changes below are made in two steps (the count, then the backref key): a failure
 * between them leaves the pending change half made, so it poisons the transaction.
 */
static int ref_add(struct extents *x, struct bt_trans *tx, const struct extent_ref *r)
{
	struct dref_head *h = ref_head(x, r);
	int ret;

	if (!h)
		return dref_find(&x->refs, r->start) ? -EUCLEAN : -ENOMEM;
	h->delta++;
	ret = dref_backref_add(h, r->owner, r->inode, r->offset, +1);
	return ret < 0 ? bt_trans_fail(tx, ret) : 0;
}

static int ref_drop(struct extents *x, struct bt_trans *tx, const struct extent_ref *r,
		    uint64_t *remaining)
{
	struct dref_head *h = ref_head(x, r);
	int ret;

	if (!h)
		return dref_find(&x->refs, r->start) ? -EUCLEAN : -ENOMEM;
	/* Data counts may pass through zero within one update (checked at commit instead);
	 * a tree block's may not. */
	if (!r->is_data || remaining) {
		ret = head_base(x, h);
		if (ret < 0)
			return ret;
		if (!r->is_data && (int64_t)h->base + h->delta <= 0)
			return corrupt(x, r->start, "reference dropped from a block with none");
	}
	h->delta--;
	if (remaining)
		*remaining = (uint64_t)MAX((int64_t)h->base + h->delta, 0);
	ret = dref_backref_add(h, r->owner, r->inode, r->offset, -1);
	return ret < 0 ? bt_trans_fail(tx, ret) : 0;
}

int extent_ref_add(struct extents *x, struct bt_trans *tx, const struct extent_ref *r)
{
	int ret = ref_add(x, tx, r);

	if (ret == 0)
		tx->changes++;
	return ret;
}

int extent_ref_drop(struct extents *x, struct bt_trans *tx, const struct extent_ref *r,
		    uint64_t *remaining)
{
	int ret = ref_drop(x, tx, r, remaining);

	if (ret == 0)
		tx->changes++;
	return ret;
}

static struct extent_ref tree_ref(struct extents *x, uint64_t bytenr, uint8_t level,
				  uint64_t owner)
{
	return (struct extent_ref){ .start = bytenr, .len = x->fs->nodesize, .level = level,
				    .owner = owner };
}

static int ext_block_alloc(void *ctx, struct bt_trans *tx, uint8_t level, uint64_t ref_owner,
			   uint64_t hint, uint64_t *bytenr)
{
	struct extents *x = ctx;
	uint32_t ns = x->fs->nodesize;
	uint64_t len;
	struct dref_head *h;
	/*
	 * New tree blocks go one after the other (the caller's hint, the old block's address, is
	 * only a fallback): the extent items of a transaction's new blocks then sit together in a
	 * leaf or two of the extent tree instead of one leaf each, which is what a commit costs.
	 */
	int ret = alloc_extent(x->alloc, ns, ns, x->meta_hint ? x->meta_hint : hint, ns,
			       (enum alloc_class)tx->alloc_class,
			       bytenr, &len);

	if (ret < 0)
		return ret;
	x->meta_hint = *bytenr + ns;
	h = dref_get(&x->refs, *bytenr);
	if (!h)
		return -ENOMEM;
	/* Freed space is pinned until commit, so a new block never has a live head. */
	if (h->len || h->delta || h->nback)
		return corrupt(x, *bytenr, "allocator handed out an extent still referenced");
	h->len = ns;
	h->level = level;
	h->is_new = true;
	h->delta = 1;
	return dref_backref_add(h, ref_owner, 0, 0, +1);
}

static int ext_block_ref_add(void *ctx, struct bt_trans *tx, uint64_t bytenr, uint8_t level,
			     uint64_t ref_owner)
{
	struct extents *x = ctx;
	struct extent_ref r = tree_ref(x, bytenr, level, ref_owner);

	return ref_add(x, tx, &r);
}

static int ext_block_ref_drop(void *ctx, struct bt_trans *tx, uint64_t bytenr, uint8_t level,
			      uint64_t ref_owner, uint64_t *remaining)
{
	struct extents *x = ctx;
	struct extent_ref r = tree_ref(x, bytenr, level, ref_owner);

	return ref_drop(x, tx, &r, remaining);
}

static int ext_block_refs(void *ctx, uint64_t bytenr, uint64_t *refs)
{
	struct extents *x = ctx;
	int ret = extent_refcount(x, bytenr, x->fs->nodesize, refs);

	return ret == -ENOENT ? corrupt(x, bytenr, "tree block with no extent item") : ret;
}

static int ext_item_refs(void *ctx, struct bt_trans *tx, uint64_t leaf_owner, uint64_t leaf,
			 const struct bt_key *key,
			 const void *data, uint32_t len, int delta)
{
	struct extents *x = ctx;
	struct extent_ref r = { .is_data = true, .owner = leaf_owner, .inode = key->objectid,
				.offset = key->offset };
	int ret = file_extent_target(key, data, len, &r.start, &r.len);

	if (ret <= 0)
		return ret < 0 ? corrupt_in_leaf(x, leaf_owner, leaf, key,
						 "malformed file extent item")
			       : 0;
	return delta > 0 ? ref_add(x, tx, &r) : ref_drop(x, tx, &r, NULL);
}

const struct bt_ops extent_bt_ops = {
	.block_alloc = ext_block_alloc,
	.block_ref_add = ext_block_ref_add,
	.block_ref_drop = ext_block_ref_drop,
	.block_refs = ext_block_refs,
	.item_refs = ext_item_refs,
};

int extent_alloc_data(struct extents *x, struct bt_trans *tx, uint64_t min_len, uint64_t max_len,
		      uint64_t hint, uint64_t *start, uint64_t *len)
{
	struct dref_head *h;
	int ret = bt_inject(x->fs, "data_alloc");

	if (ret == 0)
		ret = alloc_extent(x->alloc, min_len, max_len, hint, x->sectorsize,
				   (enum alloc_class)tx->alloc_class, start, len);

	if (ret < 0)
		return ret;
	h = dref_get(&x->refs, *start);
	if (!h)
		return -ENOMEM;
	if (h->len || h->delta || h->nback)
		return corrupt(x, *start, "allocator handed out an extent still referenced");
	h->len = *len;
	h->is_data = true;
	h->is_new = true;
	return 0;
}

int extents_init(struct extents *x, struct bt_fs *fs, struct allocator *alloc,
		 uint32_t sectorsize)
{
	memset(x, 0, sizeof(*x));
	x->fs = fs;
	x->alloc = alloc;
	x->sectorsize = sectorsize;
	return dref_table_init(&x->refs);
}

void extents_destroy(struct extents *x)
{
	dref_table_destroy(&x->refs);
}

/* ---- applying changes to the extent tree ---------------------------------------------- */

static int put_extent_item(struct extents *x, struct bt_trans *tx, struct dref_head *h,
			   uint64_t refs, bool insert)
{
	struct bt_key k = { h->bytenr, EXTENT_ITEM_KEY, h->len };
	struct extent_item ei = { 0 };

	put_le64(&ei.refs, refs);
	put_le64(&ei.generation, tx->transid);
	put_le64(&ei.flags, h->is_data ? EXTENT_FLAG_DATA : EXTENT_FLAG_TREE_BLOCK);
	ei.level = h->is_data ? 0 : h->level;
	if (insert)
		return bt_insert(tx, x->tree, &k, &ei, sizeof(ei));
	/* Keep the generation of the allocation: only the count changes. */
	struct extent_item old;
	uint32_t size;
	int ret = bt_lookup(x->tree, &k, &old, sizeof(old), &size);
	if (ret < 0)
		return ret;
	old.refs = ei.refs;
	return bt_update(tx, x->tree, &k, &old, sizeof(old));
}

/* Move the head's pending count change into the extent item. Sets *freed at zero. */
static int apply_count(struct extents *x, struct bt_trans *tx, struct dref_head *h, bool *freed)
{
	int64_t d = h->delta;
	int ret;

	*freed = false;
	if (h->is_new) {
		if (d < 0)
			return corrupt(x, h->bytenr, "new extent dropped below zero references");
		ret = d ? put_extent_item(x, tx, h, d, true) : 0;
		if (ret < 0)
			return ret;
		h->is_new = false;
		h->base = d;
		h->base_known = true;
		h->delta -= d;
		*freed = d == 0;
		return 0;
	}
	if (d == 0)
		return 0;
	ret = head_base(x, h);
	if (ret < 0)
		return ret;
	if ((int64_t)h->base + d < 0)
		return corrupt(x, h->bytenr, "extent dropped below zero references");
	uint64_t refs = h->base + d;
	if (refs == 0) {
		struct bt_key k = { h->bytenr, EXTENT_ITEM_KEY, h->len };
		ret = bt_delete(tx, x->tree, &k);
	} else {
		ret = put_extent_item(x, tx, h, refs, false);
	}
	if (ret < 0)
		return ret;
	h->base = refs;
	h->delta -= d;
	*freed = refs == 0;
	return 0;
}

static int apply_tree_backref(struct extents *x, struct bt_trans *tx, uint64_t bytenr,
			      uint64_t owner, int64_t delta)
{
	struct bt_key k = { bytenr, TREE_BLOCK_REF_KEY, owner };
	uint8_t buf[8];
	uint32_t size;
	uint64_t count = 0;
	int ret = bt_lookup(x->tree, &k, buf, sizeof(buf), &size);

	if (ret == 0) {
		if (size != 8)
			return corrupt_item(x, &k, "malformed tree block backref");
		count = get_le64(buf);
	} else if (ret != -ENOENT) {
		return ret;
	}
	if ((int64_t)count + delta < 0)
		return corrupt(x, bytenr, "tree block backref dropped below zero");
	uint64_t now = count + delta;
	put_le64(buf, now);
	if (now == 0)
		return bt_delete(tx, x->tree, &k);
	return count ? bt_update(tx, x->tree, &k, buf, 8) : bt_insert(tx, x->tree, &k, buf, 8);
}

/* Data backrefs sharing one hash live in one item: an array of entries. */
static int apply_data_backref(struct extents *x, struct bt_trans *tx, uint64_t bytenr,
			      const struct dref_backref *b)
{
	struct bt_key k = { bytenr, EXTENT_DATA_REF_KEY,
			    extent_data_ref_hash(b->owner, b->inode, b->offset) };
	uint32_t max = bt_max_item_size(x->fs->nodesize), size = 0, n, i;
	struct extent_data_ref *v = malloc(max);
	int ret;

	if (!v)
		return -ENOMEM;
	ret = bt_lookup(x->tree, &k, v, max, &size);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	bool existed = ret == 0;
	if (size % sizeof(*v) || (existed && size == 0)) {
		ret = corrupt_item(x, &k, "malformed data backref item");
		goto out;
	}
	n = size / sizeof(*v);
	for (i = 0; i < n; i++)
		if (get_le64(&v[i].owner) == b->owner && get_le64(&v[i].inode) == b->inode &&
		    get_le64(&v[i].offset) == b->offset)
			break;
	uint64_t count = i < n ? get_le64(&v[i].count) : 0;
	if ((int64_t)count + b->delta < 0) {
		ret = corrupt(x, bytenr, "data backref dropped below zero");
		goto out;
	}
	count += b->delta;
	if (i == n) {
		if ((n + 1) * sizeof(*v) > max) {
			ret = -EOVERFLOW;
			goto out;
		}
		put_le64(&v[n].owner, b->owner);
		put_le64(&v[n].inode, b->inode);
		put_le64(&v[n].offset, b->offset);
		n++;
	}
	put_le64(&v[i].count, count);
	if (count == 0)
		v[i] = v[--n];
	if (n == 0)
		ret = bt_delete(tx, x->tree, &k);
	else if (!existed)
		ret = bt_insert(tx, x->tree, &k, v, n * sizeof(*v));
	else if ((ret = bt_resize(tx, x->tree, &k, n * sizeof(*v))) == 0)
		ret = bt_update(tx, x->tree, &k, v, n * sizeof(*v));
out:
	free(v);
	return ret;
}

/* An extent whose count reached zero must have no backref left. */
static int check_no_backrefs(struct extents *x, uint64_t bytenr)
{
	struct bt_key from = { bytenr, EXTENT_ITEM_KEY + 1, 0 }, k;
	struct bt_cursor c;
	int ret;

	bt_cursor_init(&c, x->tree);
	ret = bt_cursor_seek(&c, &from, BT_SEEK_GE);
	if (ret == 0) {
		bt_cursor_item(&c, &k, NULL, NULL);
		ret = k.objectid == bytenr ? corrupt(x, bytenr, "freed extent still has backrefs") : 0;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

static int apply_head(struct extents *x, struct bt_trans *tx, struct dref_head *h)
{
	uint32_t nback = h->nback;
	bool freed;
	int ret = apply_count(x, tx, h, &freed);

	/* Index, not pointer: applying may append to h->back (the extent tree shadowing a node
	 * whose head this is) and move the array. Appended entries wait for the next round. */
	for (uint32_t i = 0; i < nback && ret == 0; i++) {
		int64_t d = h->back[i].delta;
		if (d == 0)
			continue;
		if (h->is_data)
			ret = apply_data_backref(x, tx, h->bytenr, &h->back[i]);
		else
			ret = apply_tree_backref(x, tx, h->bytenr, h->back[i].owner, d);
		h->back[i].delta -= d;
	}
	if (ret == 0 && freed) {
		ret = check_no_backrefs(x, h->bytenr);
		if (ret == 0 && h->is_data && x->csum_tree)
			ret = csum_delete(x, tx, h->bytenr, h->len);
		if (ret == 0)
			ret = alloc_pin(x->alloc, h->bytenr, h->len);
	}
	return ret;
}

void extent_forget_pending(struct extents *x)
{
	dref_table_clear(&x->refs);
}

int extent_run_delayed_refs(struct extents *x, struct bt_trans *tx)
{
	unsigned saved = tx->alloc_class;
	int ret = 0;

	if (tx->error)
		return tx->error;
	/* Committing must succeed on a full filesystem: it may use the reserve. */
	tx->alloc_class = ALLOC_PRIVILEGED;
	for (int round = 0; x->refs.count && ret == 0; round++) {
		struct dref_head **v;
		size_t n;
		if (round == MAX_APPLY_ROUNDS) {
			ret = corrupt(x, 0, "delayed references did not settle");
			break;
		}
		ret = dref_snapshot(&x->refs, &v, &n);
		if (ret < 0)
			break;
		for (size_t i = 0; i < n && ret == 0; i++) {
			ret = apply_head(x, tx, v[i]);
			if (ret == 0 && dref_head_settled(v[i]))
				dref_remove(&x->refs, v[i]);
		}
		free(v);
	}
	tx->alloc_class = saved;
	dref_table_shrink(&x->refs);
	return ret < 0 ? bt_trans_fail(tx, ret) : 0;
}

/* ---- walking ------------------------------------------------------------------------- */

static int walk_item(struct extents *x, const struct extent_walk *w, const struct bt_key *k,
		     const void *d, uint32_t len)
{
	struct extent_info e;
	int ret;

	switch (k->type) {
	case EXTENT_ITEM_KEY:
		ret = decode_extent_item(x, k, d, len, &e);
		return ret ? ret : w->extent_fn ? w->extent_fn(w->arg, &e) : 0;
	case TREE_BLOCK_REF_KEY:
		if (len != 8 || get_le64(d) == 0)
			return corrupt_item(x, k, "malformed tree block backref");
		return w->tree_ref_fn ? w->tree_ref_fn(w->arg, k->objectid, k->offset, get_le64(d)) : 0;
	case EXTENT_DATA_REF_KEY:
		if (len == 0 || len % sizeof(struct extent_data_ref))
			return corrupt_item(x, k, "malformed data backref item");
		for (uint32_t i = 0; i < len / sizeof(struct extent_data_ref); i++) {
			struct extent_data_ref r;
			memcpy(&r, (const char *)d + i * sizeof(r), sizeof(r));
			r.owner = get_le64(&r.owner);
			r.inode = get_le64(&r.inode);
			r.offset = get_le64(&r.offset);
			r.count = get_le64(&r.count);
			if (r.count == 0 || extent_data_ref_hash(r.owner, r.inode, r.offset) != k->offset)
				return corrupt_item(x, k, "malformed data backref entry");
			ret = w->data_ref_fn ? w->data_ref_fn(w->arg, k->objectid, &r) : 0;
			if (ret)
				return ret;
		}
		return 0;
	default:
		return corrupt_item(x, k, "unknown item type in the extent tree");
	}
}

int extent_walk_one(struct extents *x, uint64_t start, const struct extent_walk *w)
{
	struct bt_key from = { start, 0, 0 }, k;
	struct bt_cursor c;
	const void *d;
	uint32_t len;
	bool seen = false;
	int ret;

	bt_cursor_init(&c, x->tree);
	for (ret = bt_cursor_seek(&c, &from, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, &d, &len);
		if (k.objectid != start)
			break;
		seen |= k.type == EXTENT_ITEM_KEY;
		ret = walk_item(x, w, &k, d, len);
		if (ret)
			break;
	}
	bt_cursor_release(&c);
	if (ret == -ENOENT || ret == 0)
		return seen ? 0 : -ENOENT;
	return ret;
}

int extent_walk(struct extents *x, const struct extent_walk *w)
{
	struct bt_cursor c;
	struct bt_key k;
	const void *d;
	uint32_t len;
	int ret;

	bt_cursor_init(&c, x->tree);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, &d, &len);
		ret = walk_item(x, w, &k, d, len);
		if (ret)
			break;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

/* ---- repairs (fsck) ------------------------------------------------------------------- */

/* An extent item and what its backrefs, as the extent tree stores them, add up to. */
struct stored_extent {
	struct extent_info item;
	uint64_t backrefs;
	bool overflow;
};

static int stored_item(void *arg, const struct extent_info *e)
{
	struct stored_extent *s = arg;

	s->item = *e;
	return 0;
}

static void stored_add(struct stored_extent *s, uint64_t count)
{
	s->overflow |= __builtin_add_overflow(s->backrefs, count, &s->backrefs);
}

static int stored_tree_ref(void *arg, uint64_t start, uint64_t owner, uint64_t count)
{
	(void)start, (void)owner;
	stored_add(arg, count);
	return 0;
}

static int stored_data_ref(void *arg, uint64_t start, const struct extent_data_ref *r)
{
	(void)start;
	stored_add(arg, r->count);
	return 0;
}

static int read_stored(struct extents *x, uint64_t start, struct stored_extent *s)
{
	struct extent_walk w = { stored_item, stored_tree_ref, stored_data_ref, s };
	int ret = extent_walk_one(x, start, &w);

	if (ret < 0)
		return ret;
	/* Counts are applied as signed deltas: beyond that range no count is real. */
	if (s->overflow || s->backrefs > INT64_MAX || s->item.refs > INT64_MAX)
		return -EOVERFLOW;
	return 0;
}

/* The head of an extent item's pending changes, as the item describes the extent. */
static struct dref_head *item_head(struct extents *x, const struct extent_info *e)
{
	struct extent_ref r = { .start = e->start, .len = e->len,
				.is_data = e->flags & EXTENT_FLAG_DATA, .level = e->level };

	return ref_head(x, &r);
}

static int recount_queued(struct extents *x, uint64_t start)
{
	struct stored_extent s = { .backrefs = 0 };
	struct dref_head *h;
	int ret = read_stored(x, start, &s);

	if (ret < 0)
		return ret;
	if (s.backrefs == s.item.refs)
		return 0;
	h = item_head(x, &s.item);
	if (!h)
		return dref_find(&x->refs, start) ? -EUCLEAN : -ENOMEM;
	h->delta += (int64_t)s.backrefs - (int64_t)s.item.refs;
	return 0;
}

/* Every backref the extent tree stores for a leaked extent, dropped whole (arg: its head). */
static int drop_tree_backref(void *arg, uint64_t start, uint64_t owner, uint64_t count)
{
	(void)start;
	return dref_backref_add(arg, owner, 0, 0, -(int64_t)count);
}

static int drop_data_backref(void *arg, uint64_t start, const struct extent_data_ref *r)
{
	(void)start;
	return dref_backref_add(arg, r->owner, r->inode, r->offset, -(int64_t)r->count);
}

static int forget_leak_queued(struct extents *x, uint64_t start)
{
	struct stored_extent s = { .backrefs = 0 };
	struct dref_head *h;
	int ret = read_stored(x, start, &s);

	if (ret < 0)
		return ret;
	h = item_head(x, &s.item);
	if (!h)
		return dref_find(&x->refs, start) ? -EUCLEAN : -ENOMEM;
	/* read_stored checked every count, so the negations cannot overflow. */
	ret = extent_walk_one(x, start, &(struct extent_walk){ .tree_ref_fn = drop_tree_backref,
							       .data_ref_fn = drop_data_backref,
							       .arg = h });
	if (ret < 0)
		return ret;
	h->delta -= (int64_t)s.item.refs;
	return 0;
}

static int adopt_queued(struct extents *x, uint64_t start, uint64_t len, bool is_data,
			uint8_t level)
{
	struct dref_head *h;
	int ret;

	if (dref_find(&x->refs, start))
		return -EEXIST;
	ret = alloc_mark_used(x->alloc, start, len);
	if (ret < 0)
		return ret;
	h = dref_get(&x->refs, start);
	if (!h)
		return -ENOMEM;
	h->len = len;
	h->is_data = is_data;
	h->level = is_data ? 0 : level;
	h->is_new = true;
	return 0;
}

int extent_recount(struct extents *x, struct bt_trans *tx, uint64_t start)
{
	int ret = recount_queued(x, start);

	if (ret == 0)
		tx->changes++;
	return ret;
}

int extent_forget_leak(struct extents *x, struct bt_trans *tx, uint64_t start)
{
	int ret = forget_leak_queued(x, start);

	if (ret == 0)
		tx->changes++;
	return ret;
}

int extent_adopt(struct extents *x, struct bt_trans *tx, uint64_t start, uint64_t len, bool is_data,
		 uint8_t level)
{
	int ret = adopt_queued(x, start, len, is_data, level);

	if (ret == 0)
		tx->changes++;
	return ret;
}
