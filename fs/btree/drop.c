/*
 * The bounded drop (bt_drop_step): a tree is taken apart from its right edge, a few blocks at
 * a time, so that a large snapshot can be deleted in many small updates of ordinary
 * transactions, and a crash between two of them leaves a valid, smaller tree to go on from.
 *
 * Each step walks from the root down the last pointers. It holds a path of writable nodes
 * (made so by bt_cow, as any update does: nothing committed is overwritten) from the root
 * down to the lowest node it works on, and looks at that node's last child:
 *  - a child with count > 1 is shared with another tree: the pointer's one reference goes
 *    (keyed by the owner of the node holding it) and the pointer is removed;
 *  - a leaf with count 1 is ours alone: its items give up what they reference, the leaf is
 *    freed and its pointer removed;
 *  - an internal node with count 1 is made writable (an exclusive shadow: it keeps its owner,
 *    so its children's keys stay valid) and the walk goes down into it.
 * A node left without pointers is freed and removed from its parent in turn; when the root
 * goes (emptied, a leaf of ours, or shared and let go) the tree is gone.
 *
 * Only ever the LAST pointer of a node is removed, so no node's first key changes and no
 * parent key needs fixing; a node with fewer entries than a merge would leave is still a
 * valid node. The tree's height never changes (the root is never shrunk), which is what makes
 * the progress figure (bt_drop_units) monotonic.
 */
#include <errno.h>

#include "fs/btree/internal.h"

struct drop_walk {
	struct bt_trans *tx;
	struct btree *t;
	struct bt_path p;   /* p.nodes[low .. t->level]: writable, each the parent's last child */
	int low;
	unsigned freed;     /* blocks freed or let go */
	bool gone;          /* the root went: the tree is empty */
};

/* The items of a leaf of ours give up their references; the leaf is freed. */
static int free_leaf(struct bt_trans *tx, struct cblock *leaf, uint64_t ref_owner)
{
	int ret = bt_entries_ref(tx, leaf, 0, node_nritems(leaf), node_owner(leaf), -1);

	if (ret == 0)
		ret = bt_free_node(tx, leaf, ref_owner);
	bcache_put(tx->fs->cache, leaf);
	return ret;
}

static void tree_gone(struct drop_walk *w)
{
	w->t->root = 0;
	w->t->root_gen = 0;
	w->t->level = 0;
	w->gone = true;
	w->freed++;
}

/*
 * Start at the root: a shared root just loses the tree's reference, a leaf root of ours is
 * freed; otherwise the root is made writable and becomes the path's top.
 */
static int drop_begin(struct drop_walk *w)
{
	struct bt_trans *tx = w->tx;
	struct btree *t = w->t;
	struct cblock *root;
	uint64_t refs, left;
	int ret = bt_live_refs(tx, t->root, &refs);

	if (ret < 0)
		return ret;
	if (refs > 1) {
		ret = bt_ref_drop(tx, t->root, t->level, t->owner, &left);
		if (ret == 0)
			tree_gone(w);
		return ret;
	}
	ret = bt_read_root(t, &root);
	if (ret < 0)
		return bt_trans_fail(tx, ret);
	if (t->level == 0) {
		ret = free_leaf(tx, root, t->owner);
		if (ret == 0)
			tree_gone(w);
		return ret;
	}
	ret = bt_cow(tx, t, NULL, 0, root, &root);
	if (ret < 0)
		return ret;
	w->p.nodes[t->level] = root;
	w->p.height = t->level + 1;
	w->low = t->level;
	return 0;
}

/* The path's lowest node has no pointers left: free it, and remove it from its parent. */
static int drop_empty(struct drop_walk *w)
{
	struct bt_trans *tx = w->tx;
	struct cblock *node = w->p.nodes[w->low];
	int ret;

	w->p.nodes[w->low] = NULL;
	if (w->low == w->t->level) {
		ret = bt_free_node(tx, node, w->t->owner);
		bcache_put(tx->fs->cache, node);
		if (ret == 0)
			tree_gone(w);
		return ret;
	}
	struct cblock *parent = w->p.nodes[++w->low];
	node_delete_ptrs(parent, node_nritems(parent) - 1, 1);
	ret = bt_free_node(tx, node, node_owner(parent));
	bcache_put(tx->fs->cache, node);
	w->freed++;
	return ret;
}

/* One move at the path's lowest node (not empty): let go of, free, or descend into its last
 * child. */
static int drop_last_child(struct drop_walk *w)
{
	struct bt_trans *tx = w->tx;
	struct cblock *node = w->p.nodes[w->low], *child;
	uint32_t slot = node_nritems(node) - 1;
	uint64_t refs, left, bytenr = node_blockptr(node, slot);
	uint8_t clevel = (uint8_t)(w->low - 1);
	int ret = bt_live_refs(tx, bytenr, &refs);

	if (ret < 0)
		return ret;
	if (refs > 1) {
		/* Shared: the other trees need all of it; nothing below is read. */
		ret = bt_ref_drop(tx, bytenr, clevel, node_owner(node), &left);
	} else {
		ret = bt_read_child(tx->fs, node, slot, &child);
		if (ret < 0)
			return bt_trans_fail(tx, ret);
		if (clevel > 0) {
			ret = bt_cow(tx, w->t, node, slot, child, &child);
			if (ret < 0)
				return ret;
			w->p.nodes[clevel] = child;
			w->low = clevel;
			return 0;
		}
		ret = free_leaf(tx, child, node_owner(node));
	}
	if (ret < 0)
		return ret;
	node_delete_ptrs(node, slot, 1);
	w->freed++;
	return 0;
}

int bt_drop_step(struct bt_trans *tx, struct btree *t, unsigned budget, unsigned *freed,
		 bool *done)
{
	struct drop_walk w = { .tx = tx, .t = t };
	int ret;

	*freed = 0;
	*done = t->root == 0;
	if (tx->error)
		return tx->error;
	if (*done)
		return 0;
	if (t->level >= BT_MAX_LEVEL) {
		bt_report(t->fs, t->root, "tree root pointer is invalid");
		return bt_trans_fail(tx, -EIO);
	}
	if ((ret = bt_relieve_cache(tx)) < 0)
		return ret;
	ret = drop_begin(&w);
	/* Empty nodes go at once, whatever the budget: a tree never keeps an empty non-root
	 * node. The first move always happens, so every step makes progress. */
	while (ret == 0 && !w.gone) {
		if (node_nritems(w.p.nodes[w.low]) == 0)
			ret = drop_empty(&w);
		else if (w.freed >= budget && w.freed > 0)
			break;
		else
			ret = drop_last_child(&w);
	}
	bt_path_release(tx->fs, &w.p);
	t->seq++;
	tx->changes++;
	*freed = w.freed;
	*done = w.gone;
	return ret < 0 ? bt_trans_fail(tx, ret) : 0;
}

int bt_drop_units(struct btree *t, uint64_t *units)
{
	struct cblock *root, *last;
	uint32_t slots;
	int ret;

	*units = 0;
	if (t->root == 0)
		return 0;
	if ((ret = bt_read_root(t, &root)) < 0)
		return ret;
	slots = node_nritems(root);
	if (t->level == 0) {
		*units = 1;
	} else if (t->level == 1 || slots == 0) {
		*units = slots;
	} else if ((ret = bt_read_child(t->fs, root, slots - 1, &last)) == 0) {
		*units = (uint64_t)(slots - 1) * node_max_ptrs(t->fs->nodesize) +
			 node_nritems(last);
		bcache_put(t->fs->cache, last);
	}
	bcache_put(t->fs->cache, root);
	return ret;
}
