/*
 * Shadowing, clones and drops: everything that touches reference counts.
 *
 * Reference counting rules (Rodeh's lazy scheme, as btrfs uses it):
 *
 *  - Every tree block has a count equal to the number of pointers to it from live nodes, plus
 *    one for each tree whose root it is. A freshly allocated node has count 1.
 *  - A node is writable in place only if this transaction allocated it and no clone can share
 *    it (BT_CB_WRITABLE). Anything else is shadowed before it changes: a copy is allocated and
 *    the pointer to the old node is redirected to the copy.
 *  - The mark lives only in the cache, and a node of this transaction loses it when it is
 *    written out early (bt_relieve_cache; it may then be evicted and read again) or when a
 *    clone may share it. It is recovered from what is on the node and in the extent tree:
 *    paths are made writable top-down, so the node's parent is writable (ours alone), and a
 *    node whose generation is this transaction's and whose count is 1 is reached through that
 *    parent only. Such a node changes in place and is marked dirty again: it is still a new
 *    block in free space, so writing it again at the same address at commit is allowed.
 *  - Shadowing a node with count 1: the copy takes over its children as they are (their counts
 *    do not change) and the old node is freed.
 *  - Shadowing a shared node (count > 1): the copy and the old node now both point at every
 *    child, so each child gains a reference (for a leaf, each item gains a reference to what it
 *    points at, through item_refs); the old node loses the one reference this tree held.
 *    That pushes sharing down one level, only along the path being changed.
 *  - Cloning copies the root and adds a reference to each child of the root. Every node this
 *    transaction wrote may now be shared, so the writable mark is cleared on all of them.
 *  - Dropping a tree walks down from its root: a node with count > 1 just loses one reference
 *    (someone else still needs all of it); a node with count 1 is the tree's alone, so its
 *    children are dropped the same way and then it is freed.
 *
 * Backref keys. Each reference is recorded under the owner of whatever holds the pointer: the
 * `owner` field of the node holding it, or the tree id for a root pointer (bt_ref_owner()).
 * A node's owner is the tree that created it by allocation, clone or shadowing a shared node,
 * and is *inherited* when the node is shadowed exclusively or split. Inheriting is what keeps
 * the keys of a node's children valid without touching them: an exclusive shadow or a split
 * moves pointers to a node with the same owner. Only three things move pointers between owners:
 *  - shadowing a shared node: the copy is the changing tree's; its children gain references
 *    keyed by that tree (the old node keeps its own);
 *  - merging nodes of different owners: each moved pointer gains a reference under the new
 *    owner and loses the one under the old (bt_entries_ref twice);
 *  - the root shrinking to its only child: the child's reference moves from the old root's
 *    owner to the tree's root pointer.
 * Items that reference outside the tree follow the same keys through item_refs, keyed by the
 * owner of the leaf they sit in.
 */
#include <errno.h>
#include <stdlib.h>

#include "fs/btree/internal.h"

int bt_trans_fail_at(struct bt_trans *tx, int err, const char *where)
{
	if (tx && err < 0 && !tx->error) {
		tx->error = err;
		tx->error_where = where;
	}
	return err;
}

void bt_report(const struct bt_fs *fs, uint64_t bytenr, const char *msg)
{
	if (fs->report)
		fs->report(fs->report_arg, bytenr, msg);
}

bool bt_nodesize_valid(uint32_t nodesize)
{
	return nodesize >= BT_MIN_NODESIZE && nodesize <= BT_MAX_NODESIZE &&
	       (nodesize & (nodesize - 1)) == 0;
}

uint32_t bt_max_item_size(uint32_t nodesize)
{
	return nodesize - BT_HDR - BT_ITEM;
}

bool bt_node_addr_valid(const struct bt_fs *fs, uint64_t bytenr)
{
	return !fs->node_end || (bytenr >= fs->node_start && bytenr <= fs->node_end - fs->nodesize &&
				 !(fs->node_align && bytenr % fs->node_align));
}

int bt_read_node(struct bt_fs *fs, uint64_t bytenr, uint8_t level, uint64_t gen,
		 struct cblock **out)
{
	struct cblock *b;
	const char *msg = NULL;
	int ret;

	if (!bt_node_addr_valid(fs, bytenr)) {
		bt_report(fs, bytenr, "node pointer outside the filesystem or misaligned");
		return -EIO;
	}
	ret = bcache_get(fs->cache, bytenr, fs->nodesize, &b);

	if (ret < 0) {
		/* The address came from the image: a failed read (out of range, device error)
		 * means the tree cannot be trusted here, whatever errno the device chose. */
		bt_report(fs, bytenr, "node could not be read");
		return ret == -ENOMEM ? ret : -EIO;
	}
	if (!(b->flags & BT_CB_VERIFIED)) {
		msg = node_verify(fs, b, bytenr, level, gen);
		if (!msg)
			bcache_set_flags(fs->cache, b, BT_CB_VERIFIED | BT_CB_NODE);
	} else if (node_level(b) != level || (gen && node_gen(b) != gen)) {
		msg = "cached node differs from its parent's pointer";
	}
	if (msg) {
		bt_report(fs, bytenr, msg);
		bcache_put(fs->cache, b);
		bcache_forget(fs->cache, bytenr);
		return -EIO;
	}
	*out = b;
	return 0;
}

int bt_read_root(struct btree *t, struct cblock **out)
{
	if (t->level >= BT_MAX_LEVEL || t->root == 0 || t->root_gen == 0) {
		bt_report(t->fs, t->root, "tree root pointer is invalid");
		return -EIO;
	}
	return bt_read_node(t->fs, t->root, t->level, t->root_gen, out);
}

/*
 * A child's first key must equal its pointer's key: searches route by pointer keys, so a
 * mismatch would make present keys unfindable (and insertable twice). Only a leaf this
 * transaction just made for an item about to be inserted may be empty.
 */
static const char *child_key_mismatch(struct cblock *parent, uint32_t slot, struct cblock *c)
{
	if (node_nritems(c) == 0)
		return (c->flags & BT_CB_WRITABLE) ? NULL : "empty non-root node";
	const struct bt_disk_key *pk = &node_ptr(parent, slot)->key;
	if (memcmp(pk, node_disk_key(c, 0), sizeof(*pk)))
		return "first key differs from the parent's pointer key";
	return NULL;
}

int bt_read_child(struct bt_fs *fs, struct cblock *parent, uint32_t slot, struct cblock **out)
{
	struct cblock *c;
	const char *msg;
	int ret = bt_read_node(fs, node_blockptr(parent, slot), node_level(parent) - 1,
			       node_ptr_gen(parent, slot), &c);

	if (ret < 0)
		return ret;
	msg = child_key_mismatch(parent, slot, c);
	if (msg) {
		bt_report(fs, c->addr, msg);
		bcache_put(fs->cache, c);
		return -EIO;
	}
	*out = c;
	return 0;
}

int bt_alloc_node(struct bt_trans *tx, uint8_t level, uint64_t hint, uint64_t owner,
		  uint64_t ref_owner, struct cblock **out)
{
	struct bt_fs *fs = tx->fs;
	uint64_t bytenr, left;
	struct cblock *b;
	int ret = bt_inject(fs, "block_alloc");

	if (ret == 0)
		ret = fs->ops->block_alloc(fs->ops_ctx, tx, level, ref_owner, hint, &bytenr);

	if (ret < 0)
		return bt_trans_fail(tx, ret);
	ret = bcache_get_new(fs->cache, bytenr, fs->nodesize, &b);
	if (ret < 0) {
		fs->ops->block_ref_drop(fs->ops_ctx, tx, bytenr, level, ref_owner, &left);
		return bt_trans_fail(tx, ret);
	}
	node_init(b, fs, bytenr, tx->transid, owner, level);
	bcache_set_flags(fs->cache, b, BT_CB_NODE | BT_CB_VERIFIED | BT_CB_WRITABLE);
	*out = b;
	return 0;
}

int bt_ref_drop(struct bt_trans *tx, uint64_t bytenr, uint8_t level, uint64_t ref_owner,
		uint64_t *left)
{
	struct bt_fs *fs = tx->fs;
	int ret = fs->ops->block_ref_drop(fs->ops_ctx, tx, bytenr, level, ref_owner, left);

	if (ret < 0)
		return bt_trans_fail(tx, ret);
	if (*left == 0)
		bcache_forget(fs->cache, bytenr);
	return 0;
}

int bt_free_node(struct bt_trans *tx, struct cblock *b, uint64_t ref_owner)
{
	uint64_t left;
	int ret = bt_ref_drop(tx, b->addr, node_level(b), ref_owner, &left);

	if (ret < 0)
		return ret;
	if (left) {
		bt_report(tx->fs, b->addr, "node freed by its only owner is still referenced");
		return bt_trans_fail(tx, -EUCLEAN);
	}
	return 0;
}

int bt_item_refs(struct bt_trans *tx, uint64_t leaf_owner, const struct cblock *leaf,
		 uint32_t slot, int delta)
{
	const struct bt_ops *ops = tx->fs->ops;
	struct bt_key k;

	if (!ops->item_refs)
		return 0;
	leaf_item_key(leaf, slot, &k);
	return bt_trans_fail(tx, ops->item_refs(tx->fs->ops_ctx, tx, leaf_owner, leaf->addr, &k,
					  leaf_item_data(leaf, slot), leaf_item_size(leaf, slot),
					  delta));
}

int bt_entries_ref(struct bt_trans *tx, const struct cblock *b, uint32_t from, uint32_t to,
		   uint64_t ref_owner, int delta)
{
	const struct bt_ops *ops = tx->fs->ops;
	uint8_t level = node_level(b);
	uint64_t left;
	int ret = 0;

	for (uint32_t i = from; i < to && ret == 0; i++) {
		if (level == 0)
			ret = bt_item_refs(tx, ref_owner, b, i, delta);
		else if (delta > 0)
			ret = bt_trans_fail(tx, ops->block_ref_add(tx->fs->ops_ctx, tx,
								   node_blockptr(b,
										 i), level - 1, ref_owner));
		else
			ret = bt_ref_drop(tx, node_blockptr(b, i), level - 1, ref_owner, &left);
	}
	return ret;
}

/* A copy of `b` with a fresh header: the caller decides what happens to the references. */
static int copy_node(struct bt_trans *tx, struct cblock *b, uint64_t owner, uint64_t ref_owner,
		     struct cblock **out)
{
	struct cblock *nb;
	int ret = bt_alloc_node(tx, node_level(b), b->addr, owner, ref_owner, &nb);

	if (ret < 0)
		return ret;
	memcpy((char *)nb->data + BT_HDR, (char *)b->data + BT_HDR, tx->fs->nodesize - BT_HDR);
	node_set_nritems(nb, node_nritems(b));
	*out = nb;
	return 0;
}

/* A node of this transaction that lost its writable mark gets it back, and is dirty again. */
static void make_writable(struct bt_fs *fs, struct cblock *b)
{
	bcache_mark_dirty(fs->cache, b);
	bcache_set_flags(fs->cache, b, BT_CB_WRITABLE);
}

int bt_cow(struct bt_trans *tx, struct btree *t, struct cblock *parent, uint32_t pslot,
	   struct cblock *b, struct cblock **out)
{
	struct bt_fs *fs = tx->fs;
	uint64_t refs, left, key = bt_ref_owner(t, parent);
	struct cblock *nb = NULL;
	int ret;

	if (b->flags & BT_CB_WRITABLE) {
		*out = b;
		return 0;
	}
	ret = bt_live_refs(tx, b->addr, &refs);
	if (ret < 0)
		goto fail;
	if (refs == 1 && node_gen(b) == tx->transid) {
		make_writable(fs, b);
		*out = b;
		return 0;
	}
	if (refs > 1) {
		/* Shared: the copy is this tree's, and its children gain references under it. */
		ret = copy_node(tx, b, t->owner, key, &nb);
		if (ret == 0)
			ret = bt_entries_ref(tx, nb, 0, node_nritems(nb), t->owner, +1);
		if (ret == 0)
			ret = bt_ref_drop(tx, b->addr, node_level(b), key, &left);
	} else {
		/* Ours alone: the copy inherits the owner, so the children's keys stay valid. */
		ret = copy_node(tx, b, node_owner(b), key, &nb);
		if (ret == 0)
			ret = bt_free_node(tx, b, key);
	}
	if (ret < 0) {
		if (nb)
			bcache_put(fs->cache, nb);
		goto fail;
	}
	if (parent) {
		node_set_ptr(parent, pslot, nb->addr, tx->transid);
	} else {
		t->root = nb->addr;
		t->root_gen = tx->transid;
	}
	bcache_put(fs->cache, b);
	*out = nb;
	return 0;
fail:
	bcache_put(fs->cache, b);
	return bt_trans_fail(tx, ret);
}

int bt_create(struct bt_trans *tx, uint64_t owner, struct btree *t)
{
	struct cblock *b;
	int ret;

	if (tx->error)
		return tx->error;
	if (!bt_nodesize_valid(tx->fs->nodesize))
		return -EINVAL;
	bt_open(t, tx->fs, owner, 0, 0, 0);
	ret = bt_alloc_node(tx, 0, 0, owner, owner, &b);
	if (ret < 0)
		return ret;
	t->root = b->addr;
	t->root_gen = tx->transid;
	bcache_put(tx->fs->cache, b);
	return 0;
}

void bt_open(struct btree *t, struct bt_fs *fs, uint64_t owner, uint64_t root,
	     uint64_t root_gen, uint8_t level)
{
	t->fs = fs;
	t->owner = owner;
	t->root = root;
	t->root_gen = root_gen;
	t->level = level;
	t->seq = 0;
}

int bt_clone(struct bt_trans *tx, struct btree *src, uint64_t owner, struct btree *dst)
{
	struct bt_fs *fs = tx->fs;
	struct cblock *root, *nr;
	int ret;

	if (tx->error)
		return tx->error;
	ret = bt_read_root(src, &root);
	if (ret < 0)
		return bt_trans_fail(tx, ret);
	bt_open(dst, fs, owner, 0, 0, src->level);
	ret = copy_node(tx, root, owner, owner, &nr);
	bcache_put(fs->cache, root);
	if (ret < 0)
		return ret;
	ret = bt_entries_ref(tx, nr, 0, node_nritems(nr), owner, +1);
	if (ret < 0) {
		bcache_put(fs->cache, nr);
		return ret;
	}
	/* Nodes written earlier in this transaction may now be reachable from both trees. */
	bcache_clear_flags_dirty(fs->cache, BT_CB_WRITABLE);
	bcache_set_flags(fs->cache, nr, BT_CB_WRITABLE);
	dst->root = nr->addr;
	dst->root_gen = tx->transid;
	src->seq++;
	tx->changes++;
	bcache_put(fs->cache, nr);
	return 0;
}

int bt_live_refs(struct bt_trans *tx, uint64_t bytenr, uint64_t *refs)
{
	struct bt_fs *fs = tx->fs;
	int ret = fs->ops->block_refs(fs->ops_ctx, bytenr, refs);

	if (ret < 0 || *refs == 0) {
		bt_report(fs, bytenr, "no reference count for a live node");
		return bt_trans_fail(tx, ret < 0 ? ret : -EUCLEAN);
	}
	return 0;
}

/* Drop the reference keyed `ref_owner` to the subtree at `bytenr`, freeing what it alone held. */
static int drop_subtree(struct bt_trans *tx, uint64_t bytenr, uint8_t level, uint64_t gen,
			uint64_t ref_owner)
{
	struct bt_fs *fs = tx->fs;
	struct cblock *b;
	uint64_t refs, left;
	int ret = bt_live_refs(tx, bytenr, &refs);

	if (ret < 0)
		return ret;
	if (refs > 1)
		return bt_ref_drop(tx, bytenr, level, ref_owner, &left);
	ret = bt_read_node(fs, bytenr, level, gen, &b);
	if (ret < 0)
		return bt_trans_fail(tx, ret);
	if (level == 0) {
		ret = bt_entries_ref(tx, b, 0, node_nritems(b), node_owner(b), -1);
	} else {
		for (uint32_t i = 0; i < node_nritems(b) && !ret; i++)
			ret = drop_subtree(tx, node_blockptr(b, i), level - 1, node_ptr_gen(b, i),
					   node_owner(b));
	}
	if (ret == 0)
		ret = bt_free_node(tx, b, ref_owner);
	bcache_put(fs->cache, b);
	return ret;
}

int bt_drop(struct bt_trans *tx, struct btree *t)
{
	int ret;

	if (tx->error)
		return tx->error;
	if (t->level >= BT_MAX_LEVEL || t->root == 0) {
		bt_report(t->fs, t->root, "tree root pointer is invalid");
		return bt_trans_fail(tx, -EIO);
	}
	ret = drop_subtree(tx, t->root, t->level, t->root_gen, t->owner);
	if (ret == 0) {
		t->root = 0;
		t->root_gen = 0;
		t->level = 0;
		t->seq++;
		tx->changes++;
	}
	return ret;
}

static void seal_node(void *arg, struct cblock *b)
{
	if (b->flags & BT_CB_NODE)
		node_seal(arg, b);
}

int bt_writeback(struct bt_fs *fs)
{
	return bcache_writeback(fs->cache, seal_node, fs, BT_CB_WRITABLE);
}

int bt_relieve_cache(struct bt_trans *tx)
{
	struct bt_fs *fs = tx->fs;
	size_t excess = bcache_dirty_excess(fs->cache);

	if (excess == 0)
		return 0;
	return bt_trans_fail(tx, bcache_write_cold(fs->cache, excess, seal_node, fs,
						   BT_CB_WRITABLE));
}
