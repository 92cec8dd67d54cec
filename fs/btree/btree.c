/*
 * B+tree search and updates: insert with splits, delete with merges, in-place update, resize.
 *
 * Updates work on a full root-to-leaf path that bt_search() has already made writable, and fix
 * the tree bottom-up: a leaf split adds a pointer to the parent, which may split in turn, up to
 * a new root; a delete that leaves a node too empty merges it into a sibling, which removes a
 * pointer from the parent, and so on up to the root, which is dropped when it has one child.
 *
 * Every internal pointer's key equals the first key of its child (checked on every read), so
 * an insert or delete at slot 0 rewrites the keys up the path (fixup_low_keys).
 *
 * After a split the insert searches again from the root rather than patching the path: splits
 * are rare (one per few hundred inserts) and the re-search keeps the split code simple.
 */
#include <errno.h>
#include <stdlib.h>

#include "fs/btree/internal.h"

/* Nodes below this fill try to merge with a sibling. */
#define MERGE_FRACTION 4

void bt_path_release(struct bt_fs *fs, struct bt_path *p)
{
	for (int i = 0; i < BT_MAX_LEVEL; i++) {
		if (p->nodes[i])
			bcache_put(fs->cache, p->nodes[i]);
		p->nodes[i] = NULL;
	}
	p->height = 0;
}

int bt_search(struct bt_trans *tx, struct btree *t, const struct bt_key *key, struct bt_path *p)
{
	struct bt_fs *fs = t->fs;
	struct cblock *b, *child;
	uint32_t slot;
	int ret;

	memset(p, 0, sizeof(*p));
	ret = bt_read_root(t, &b);
	if (ret < 0)
		return bt_trans_fail(tx, ret);
	if (tx && (ret = bt_cow(tx, t, NULL, 0, b, &b)) < 0)
		return ret;
	p->height = t->level + 1;
	for (int level = t->level;; level--) {
		p->nodes[level] = b;
		ret = node_search(b, key, &slot);
		p->slots[level] = slot;
		if (level == 0)
			return ret;
		ret = bt_read_child(fs, b, slot, &child);
		if (ret == 0 && tx)
			ret = bt_cow(tx, t, b, slot, child, &child);
		if (ret < 0) {
			bt_path_release(fs, p);
			return bt_trans_fail(tx, ret);
		}
		b = child;
	}
}

/* Descend from p->nodes[level] at p->slots[level] to a leaf along first (or last) children. */
static int descend_edge(struct bt_fs *fs, struct bt_path *p, int level, bool last)
{
	for (int l = level; l > 0; l--) {
		struct cblock *c;
		int ret = bt_read_child(fs, p->nodes[l], p->slots[l], &c);
		if (ret < 0)
			return ret;
		if (p->nodes[l - 1])
			bcache_put(fs->cache, p->nodes[l - 1]);
		p->nodes[l - 1] = c;
		uint32_t n = node_nritems(c);
		/* A leaf reached from the right sits one past its last item: callers step back. */
		p->slots[l - 1] = !last ? 0 : (l - 1 ? (int)n - 1 : (int)n);
	}
	return 0;
}

int bt_path_next_leaf(struct bt_fs *fs, struct bt_path *p)
{
	for (int l = 1; l < p->height; l++) {
		if ((uint32_t)p->slots[l] + 1 < node_nritems(p->nodes[l])) {
			p->slots[l]++;
			return descend_edge(fs, p, l, false);
		}
	}
	return -ENOENT;
}

int bt_path_prev_leaf(struct bt_fs *fs, struct bt_path *p)
{
	for (int l = 1; l < p->height; l++) {
		if (p->slots[l] > 0) {
			p->slots[l]--;
			return descend_edge(fs, p, l, true);
		}
	}
	return -ENOENT;
}

/* The node holding the pointer to the path's node at `level`, NULL for the root. */
static struct cblock *parent_of(const struct bt_path *p, int level)
{
	return level + 1 < p->height ? p->nodes[level + 1] : NULL;
}

/* The first key of the node at `level` changed to `key`: rewrite it in the ancestors. */
static void fixup_low_keys(struct bt_path *p, int level, const struct bt_key *key)
{
	for (int l = level; l < p->height; l++) {
		node_set_key(p->nodes[l], p->slots[l], key);
		if (p->slots[l] != 0)
			break;
	}
}

int bt_lookup(struct btree *t, const struct bt_key *key, void *buf, uint32_t bufsize,
	      uint32_t *len)
{
	struct bt_path p;
	int ret = bt_search(NULL, t, key, &p);

	if (ret < 0)
		return ret;
	if (ret == 0) {
		struct cblock *leaf = p.nodes[0];
		uint32_t size = leaf_item_size(leaf, p.slots[0]);
		t->item_leaf = leaf->addr;
		if (buf)
			memcpy(buf, leaf_item_data(leaf, p.slots[0]), MIN(size, bufsize));
		if (len)
			*len = size;
	}
	bt_path_release(t->fs, &p);
	return ret == 0 ? 0 : -ENOENT;
}

int bt_path_exclusive(struct btree *t, const struct bt_key *key, bool *exclusive)
{
	struct bt_path p;
	int ret = bt_search(NULL, t, key, &p);

	if (ret < 0)
		return ret;
	*exclusive = true;
	ret = 0;
	for (int level = p.height - 1; level >= 0 && *exclusive && ret == 0; level--) {
		uint64_t refs = 0;
		ret = t->fs->ops->block_refs(t->fs->ops_ctx, p.nodes[level]->addr, &refs);
		*exclusive = refs == 1;
	}
	bt_path_release(t->fs, &p);
	return ret;
}

static int split_node(struct bt_trans *tx, struct btree *t, struct bt_path *p, int level);

/* The tree grows by one level: a new root above the old one and its new sibling. */
static int grow_root(struct bt_trans *tx, struct btree *t, struct bt_path *p,
		     const struct bt_key *key, struct cblock *sibling, bool after)
{
	int top = p->height;
	struct cblock *old = p->nodes[top - 1], *root;
	struct bt_key oldkey;
	int ret;

	if (top >= BT_MAX_LEVEL)
		return bt_trans_fail(tx, -EFBIG);
	/* The old root's reference moves from the root pointer to the new root: both keyed
	 * by this tree, so its count and key stay as they are. */
	ret = bt_alloc_node(tx, top, old->addr, t->owner, t->owner, &root);
	if (ret < 0)
		return ret;
	node_first_key(old, &oldkey);
	if (after) {
		node_insert_ptr(root, 0, &oldkey, old->addr, node_gen(old));
		node_insert_ptr(root, 1, key, sibling->addr, tx->transid);
	} else {
		node_insert_ptr(root, 0, key, sibling->addr, tx->transid);
		node_insert_ptr(root, 1, &oldkey, old->addr, node_gen(old));
	}
	p->nodes[top] = root;
	p->slots[top] = after ? 0 : 1;
	p->height = top + 1;
	t->root = root->addr;
	t->root_gen = tx->transid;
	t->level = top;
	return 0;
}

/*
 * Add a pointer to `sibling` (first key `key`) next to the child at p->slots[level]: after it
 * or before it. On return p->nodes[level]/p->slots[level] still locate that child's pointer,
 * and the new pointer sits next to it in the same node.
 */
static int insert_ptr(struct bt_trans *tx, struct btree *t, struct bt_path *p, int level,
		      const struct bt_key *key, struct cblock *sibling, bool after)
{
	struct cblock *node;
	uint32_t slot;
	int ret;

	if (level >= p->height)
		return grow_root(tx, t, p, key, sibling, after);
	if (node_nritems(p->nodes[level]) >= node_max_ptrs(tx->fs->nodesize)) {
		ret = split_node(tx, t, p, level);
		if (ret < 0)
			return ret;
	}
	node = p->nodes[level];
	slot = p->slots[level] + (after ? 1 : 0);
	node_insert_ptr(node, slot, key, sibling->addr, tx->transid);
	if (!after)
		p->slots[level]++;
	if (slot == 0)
		fixup_low_keys(p, level + 1, key);
	return 0;
}

/*
 * Split a full internal node in half. The path is left pointing into whichever half now holds
 * p->slots[level]; split happens before the caller's insert, so the insert lands next to it.
 */
static int split_node(struct bt_trans *tx, struct btree *t, struct bt_path *p, int level)
{
	struct bt_fs *fs = tx->fs;
	struct cblock *node = p->nodes[level], *right;
	uint32_t mid = node_nritems(node) / 2;
	struct bt_key rkey;
	int ret = bt_alloc_node(tx, level, node->addr, node_owner(node),
				bt_ref_owner(t, parent_of(p, level)), &right);

	if (ret < 0)
		return ret;
	node_move_tail(right, node, mid);
	node_first_key(right, &rkey);
	ret = insert_ptr(tx, t, p, level + 1, &rkey, right, true);
	if (ret < 0) {
		bcache_put(fs->cache, right);
		return ret;
	}
	if ((uint32_t)p->slots[level] >= mid) {
		p->slots[level] -= mid;
		p->slots[level + 1]++;
		p->nodes[level] = right;
		bcache_put(fs->cache, node);
	} else {
		bcache_put(fs->cache, right);
	}
	return 0;
}

/*
 * Where to split a full leaf for an insert of `need` bytes at `slot`: items [0, k) stay, [k, n)
 * move to a new right leaf, and the new item goes left when slot <= k (that is where a search
 * for its key lands). Returns the k in [1, n-1] that balances the halves best, or -1.
 */
static int choose_leaf_split(const struct cblock *leaf, uint32_t nodesize, uint32_t slot,
			     uint32_t need)
{
	uint32_t n = node_nritems(leaf), avail = nodesize - BT_HDR;
	uint32_t total = leaf_bytes(leaf, 0, n);
	uint32_t best_diff = UINT32_MAX;
	int best = -1;

	for (uint32_t k = 1; k < n; k++) {
		uint32_t left = leaf_bytes(leaf, 0, k), right = total - left;
		if (slot <= k)
			left += need;
		else
			right += need;
		if (left > avail || right > avail)
			continue;
		uint32_t diff = left > right ? left - right : right - left;
		if (diff < best_diff) {
			best_diff = diff;
			best = (int)k;
		}
	}
	return best;
}

/* Move items [k, n) of the path's leaf to a new leaf right of it. */
static int split_leaf_at(struct bt_trans *tx, struct btree *t, struct bt_path *p, uint32_t k)
{
	struct cblock *leaf = p->nodes[0], *right;
	struct bt_key rkey;
	int ret = bt_alloc_node(tx, 0, leaf->addr, node_owner(leaf),
				bt_ref_owner(t, parent_of(p, 0)), &right);

	if (ret < 0)
		return ret;
	leaf_move_tail(right, leaf, tx->fs->nodesize, k);
	node_first_key(right, &rkey);
	ret = insert_ptr(tx, t, p, 1, &rkey, right, true);
	bcache_put(tx->fs->cache, right);
	return ret;
}

/* A new empty leaf, next to the path's leaf, that a search for `key` will reach. */
static int add_empty_leaf(struct bt_trans *tx, struct btree *t, struct bt_path *p,
			  const struct bt_key *key, bool after)
{
	struct cblock *leaf;
	int ret = bt_alloc_node(tx, 0, p->nodes[0]->addr, node_owner(p->nodes[0]),
				bt_ref_owner(t, parent_of(p, 0)), &leaf);

	if (ret < 0)
		return ret;
	ret = insert_ptr(tx, t, p, 1, key, leaf, after);
	bcache_put(tx->fs->cache, leaf);
	return ret;
}

static bool path_is_rightmost(const struct bt_path *p)
{
	for (int l = 1; l < p->height; l++)
		if ((uint32_t)p->slots[l] + 1 != node_nritems(p->nodes[l]))
			return false;
	return true;
}

/*
 * Make room for an item of `need` bytes (header included) at the path's slot. Appending at the
 * right edge of the tree starts a new leaf (sequential inserts then fill leaves completely);
 * otherwise the leaf is split in two, or, when no split point leaves room for the item on its
 * side, around the item, which then gets a leaf of its own.
 */
static int split_leaf(struct bt_trans *tx, struct btree *t, struct bt_path *p,
		      const struct bt_key *key, uint32_t need)
{
	struct cblock *leaf = p->nodes[0];
	uint32_t n = node_nritems(leaf), slot = p->slots[0];
	int k, ret;

	if (slot == n && path_is_rightmost(p))
		return add_empty_leaf(tx, t, p, key, true);
	k = choose_leaf_split(leaf, tx->fs->nodesize, slot, need);
	if (k > 0)
		return split_leaf_at(tx, t, p, k);
	if (slot == 0)
		return add_empty_leaf(tx, t, p, key, false);
	if (slot < n && (ret = split_leaf_at(tx, t, p, slot)) < 0)
		return ret;
	return add_empty_leaf(tx, t, p, key, true);
}

int bt_insert(struct bt_trans *tx, struct btree *t, const struct bt_key *key, const void *data,
	      uint32_t len)
{
	struct bt_fs *fs = tx->fs;
	uint32_t need = len + BT_ITEM;
	struct bt_path p;
	int ret;

	if (tx->error)
		return tx->error;
	if ((ret = bt_inject(tx->fs, "bt_insert")) < 0)
		return ret;
	if (len > bt_max_item_size(fs->nodesize))
		return -EOVERFLOW;
	if ((ret = bt_relieve_cache(tx)) < 0)
		return ret;
	for (int tries = 0;; tries++) {
		ret = bt_search(tx, t, key, &p);
		if (ret <= 0) {
			if (ret == 0)
				bt_path_release(fs, &p);
			return ret == 0 ? -EEXIST : ret;
		}
		if (leaf_free_space(p.nodes[0], fs->nodesize) >= need)
			break;
		/* One split always makes room where the key lands; needing another is a bug. */
		if (tries == 1) {
			bt_report(fs, p.nodes[0]->addr, "leaf split did not make room");
			bt_path_release(fs, &p);
			return bt_trans_fail(tx, -EUCLEAN);
		}
		ret = split_leaf(tx, t, &p, key, need);
		t->seq++;
		bt_path_release(fs, &p);
		if (ret < 0)
			return ret;
	}
	leaf_insert_gap(p.nodes[0], fs->nodesize, p.slots[0], key, len);
	if (len)   /* an item of no payload may come with data NULL: memcpy must not see it */
		memcpy(leaf_item_data(p.nodes[0], p.slots[0]), data, len);
	if (p.slots[0] == 0)
		fixup_low_keys(&p, 1, key);
	t->seq++;
	tx->changes++;
	ret = bt_item_refs(tx, node_owner(p.nodes[0]), p.nodes[0], p.slots[0], +1);
	bt_path_release(fs, &p);
	return ret;
}

static int rebalance_node(struct bt_trans *tx, struct btree *t, struct bt_path *p, int level);

/*
 * Remove the pointer at `slot` of p->nodes[level] and free `child`, then rebalance the node
 * that lost a pointer.
 */
static int unlink_child(struct bt_trans *tx, struct btree *t, struct bt_path *p, int level,
			uint32_t slot, struct cblock *child)
{
	struct cblock *node = p->nodes[level];
	int ret;

	node_delete_ptrs(node, slot, 1);
	ret = bt_free_node(tx, child, node_owner(node));
	if (ret < 0)
		return ret;
	if (slot == 0 && node_nritems(node) > 0) {
		struct bt_key k;
		node_first_key(node, &k);
		fixup_low_keys(p, level + 1, &k);
	}
	return rebalance_node(tx, t, p, level);
}

/* Bytes in use in a node, the measure for "too empty" and "fits in a sibling". */
static uint32_t node_used(const struct cblock *b)
{
	uint32_t n = node_nritems(b);
	return node_level(b) ? n * BT_PTR : leaf_bytes(b, 0, n);
}

static uint32_t node_room(const struct cblock *b, uint32_t nodesize)
{
	return node_level(b) ? (node_max_ptrs(nodesize) - node_nritems(b)) * BT_PTR
			     : leaf_free_space(b, nodesize);
}

/* Move every entry of `src` to the end of `dst`, moving their references between owners. */
static int move_all(struct bt_trans *tx, struct cblock *dst, struct cblock *src)
{
	uint32_t n = node_nritems(src);
	int ret = 0;

	if (node_owner(src) != node_owner(dst)) {
		ret = bt_entries_ref(tx, src, 0, n, node_owner(dst), +1);
		if (ret == 0)
			ret = bt_entries_ref(tx, src, 0, n, node_owner(src), -1);
		if (ret < 0)
			return ret;
	}
	if (node_level(src))
		node_move_tail(dst, src, 0);
	else
		leaf_move_tail(dst, src, tx->fs->nodesize, 0);
	return 0;
}

/*
 * The root has one child: that child becomes the root. Repeat while the root is ours alone
 * (writable); a shared root with one child is left as it is, still a valid tree.
 * The path is not updated: callers release it right after.
 */
static int shrink_root(struct bt_trans *tx, struct btree *t)
{
	struct cblock *root;
	int ret;

	while (t->level > 0) {
		ret = bt_read_root(t, &root);
		if (ret < 0)
			return bt_trans_fail(tx, ret);
		if (node_nritems(root) != 1 || !(root->flags & BT_CB_WRITABLE)) {
			bcache_put(tx->fs->cache, root);
			break;
		}
		uint64_t child = node_blockptr(root, 0), gen = node_ptr_gen(root, 0);
		uint64_t left, from = node_owner(root);
		uint8_t clevel = node_level(root) - 1;
		ret = bt_free_node(tx, root, t->owner);
		bcache_put(tx->fs->cache, root);
		/* The child's reference moves from the old root's pointer to the root pointer. */
		if (ret == 0 && from != t->owner) {
			ret = bt_trans_fail(tx, tx->fs->ops->block_ref_add(tx->fs->ops_ctx, tx,
									   child, clevel, t->owner));
			if (ret == 0)
				ret = bt_ref_drop(tx, child, clevel, from, &left);
		}
		if (ret < 0)
			return ret;
		t->root = child;
		t->root_gen = gen;
		t->level--;
	}
	return 0;
}

/*
 * The node at `level` lost something: drop it if empty, merge it into a sibling if it is too
 * empty and fits, shrink the root if it is down to one child.
 */
static int rebalance_node(struct bt_trans *tx, struct btree *t, struct bt_path *p, int level)
{
	struct bt_fs *fs = tx->fs;
	struct cblock *node = p->nodes[level], *parent, *sib;
	uint32_t ps, used = node_used(node);
	int ret;

	if (level == p->height - 1)
		return shrink_root(tx, t);
	parent = p->nodes[level + 1];
	ps = p->slots[level + 1];
	if (node_nritems(node) == 0)
		return unlink_child(tx, t, p, level + 1, ps, node);
	if (used >= (fs->nodesize - BT_HDR) / MERGE_FRACTION)
		return 0;
	if (ps > 0) {
		ret = bt_read_child(fs, parent, ps - 1, &sib);
		if (ret < 0)
			return bt_trans_fail(tx, ret);
		if (node_room(sib, fs->nodesize) >= used) {
			ret = bt_cow(tx, t, parent, ps - 1, sib, &sib);
			if (ret < 0)
				return ret;
			ret = move_all(tx, sib, node);
			bcache_put(fs->cache, sib);
			return ret < 0 ? ret : unlink_child(tx, t, p, level + 1, ps, node);
		}
		bcache_put(fs->cache, sib);
	}
	if (ps + 1 < node_nritems(parent)) {
		ret = bt_read_child(fs, parent, ps + 1, &sib);
		if (ret < 0)
			return bt_trans_fail(tx, ret);
		if (node_room(node, fs->nodesize) >= node_used(sib)) {
			ret = bt_cow(tx, t, parent, ps + 1, sib, &sib);
			if (ret < 0)
				return ret;
			ret = move_all(tx, node, sib);
			if (ret == 0)
				ret = unlink_child(tx, t, p, level + 1, ps + 1, sib);
			bcache_put(fs->cache, sib);
			return ret;
		}
		bcache_put(fs->cache, sib);
	}
	return 0;
}

int bt_delete(struct bt_trans *tx, struct btree *t, const struct bt_key *key)
{
	struct bt_fs *fs = tx->fs;
	struct bt_path p;
	struct cblock *leaf;
	int ret;

	if (tx->error)
		return tx->error;
	if ((ret = bt_inject(tx->fs, "bt_delete")) < 0)
		return ret;
	if ((ret = bt_relieve_cache(tx)) < 0)
		return ret;
	ret = bt_search(tx, t, key, &p);
	if (ret != 0) {
		if (ret > 0)
			bt_path_release(fs, &p);
		return ret > 0 ? -ENOENT : ret;
	}
	leaf = p.nodes[0];
	ret = bt_item_refs(tx, node_owner(leaf), leaf, p.slots[0], -1);
	if (ret < 0) {
		bt_path_release(fs, &p);
		return ret;
	}
	leaf_delete_items(leaf, fs->nodesize, p.slots[0], 1);
	if (p.slots[0] == 0 && node_nritems(leaf) > 0) {
		struct bt_key k;
		leaf_item_key(leaf, 0, &k);
		fixup_low_keys(&p, 1, &k);
	}
	ret = rebalance_node(tx, t, &p, 0);
	t->seq++;
	tx->changes++;
	bt_path_release(fs, &p);
	return ret;
}

/* Find `key` for an in-place change: 0 with a writable path, or a negative errno. */
static int search_existing(struct bt_trans *tx, struct btree *t, const struct bt_key *key,
			   struct bt_path *p)
{
	int ret;

	if (tx->error)
		return tx->error;
	if ((ret = bt_relieve_cache(tx)) < 0)
		return ret;
	ret = bt_search(tx, t, key, p);
	if (ret > 0) {
		bt_path_release(t->fs, p);
		return -ENOENT;
	}
	return ret;
}

int bt_update(struct bt_trans *tx, struct btree *t, const struct bt_key *key, const void *data,
	      uint32_t len)
{
	struct bt_path p;
	int ret = bt_inject(tx->fs, "bt_update");

	if (ret == 0)
		ret = search_existing(tx, t, key, &p);
	if (ret < 0)
		return ret;
	struct cblock *leaf = p.nodes[0];
	if (leaf_item_size(leaf, p.slots[0]) != len) {
		ret = -EINVAL;
	} else {
		/* The old payload's references go, the new one's come. */
		ret = bt_item_refs(tx, node_owner(leaf), leaf, p.slots[0], -1);
		if (ret == 0) {
			memcpy(leaf_item_data(leaf, p.slots[0]), data, len);
			ret = bt_item_refs(tx, node_owner(leaf), leaf, p.slots[0], +1);
		}
		t->seq++;
		tx->changes++;
	}
	bt_path_release(t->fs, &p);
	return ret;
}

/* Resize by moving the item: out of the leaf and back in with its new size. */
static int resize_by_reinsert(struct bt_trans *tx, struct btree *t, const struct bt_key *key,
			      const void *data, uint32_t oldlen, uint32_t newlen)
{
	char *copy = calloc(1, newlen);
	int ret;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, MIN(oldlen, newlen));
	ret = bt_delete(tx, t, key);
	if (ret == 0)
		ret = bt_insert(tx, t, key, copy, newlen);
	/* Between the two the item is gone: a failed insert must not look like success. */
	if (ret < 0)
		bt_trans_fail(tx, ret);
	free(copy);
	return ret;
}

int bt_resize(struct bt_trans *tx, struct btree *t, const struct bt_key *key, uint32_t newlen)
{
	struct bt_fs *fs = tx->fs;
	struct bt_path p;
	uint32_t old;
	int ret;

	if (tx->error)
		return tx->error;
	if ((ret = bt_inject(tx->fs, "bt_resize")) < 0)
		return ret;
	if (newlen > bt_max_item_size(fs->nodesize))
		return -EOVERFLOW;
	ret = search_existing(tx, t, key, &p);
	if (ret < 0)
		return ret;
	old = leaf_item_size(p.nodes[0], p.slots[0]);
	if (newlen <= old || leaf_free_space(p.nodes[0], fs->nodesize) >= newlen - old) {
		struct cblock *leaf = p.nodes[0];
		ret = bt_item_refs(tx, node_owner(leaf), leaf, p.slots[0], -1);
		if (ret == 0) {
			leaf_resize_item(leaf, fs->nodesize, p.slots[0], newlen);
			ret = bt_item_refs(tx, node_owner(leaf), leaf, p.slots[0], +1);
		}
		t->seq++;
		tx->changes++;
	} else {
		/* Copy first: the path's leaf is released (and may be freed) by the delete. */
		char *data = malloc(old);
		if (!data) {
			bt_path_release(fs, &p);
			return -ENOMEM;
		}
		memcpy(data, leaf_item_data(p.nodes[0], p.slots[0]), old);
		bt_path_release(fs, &p);
		ret = resize_by_reinsert(tx, t, key, data, old, newlen);
		free(data);
		return ret;
	}
	bt_path_release(fs, &p);
	return ret;
}
