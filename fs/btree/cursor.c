/*
 * Ordered iteration. A cursor holds a read-only path to its current item and remembers the
 * item's key and the tree's modification count. When the tree changed under it (through the
 * same handle), the held path may point at shadowed or freed nodes, so the next step first
 * searches again by the remembered key.
 */
#include <errno.h>

#include "fs/btree/internal.h"

void bt_cursor_init(struct bt_cursor *c, struct btree *t)
{
	memset(c, 0, sizeof(*c));
	c->t = t;
}

void bt_cursor_release(struct bt_cursor *c)
{
	bt_path_release(c->t->fs, &c->path);
	c->valid = false;
}

static int cursor_settle(struct bt_cursor *c)
{
	struct cblock *leaf = c->path.nodes[0];

	leaf_item_key(leaf, c->path.slots[0], &c->key);
	c->valid = true;
	return 0;
}

static int cursor_fail(struct bt_cursor *c, int err)
{
	bt_cursor_release(c);
	return err;
}

/* From a leaf slot that may be past the leaf's end, move forward to a real item. */
static int cursor_forward(struct bt_cursor *c)
{
	struct bt_path *p = &c->path;

	while ((uint32_t)p->slots[0] >= node_nritems(p->nodes[0])) {
		int ret = bt_path_next_leaf(c->t->fs, p);
		if (ret < 0)
			return cursor_fail(c, ret);
	}
	return cursor_settle(c);
}

/* Step back from slot (which may be one past the end): to slot-1, or the previous leaf. */
static int cursor_backward(struct bt_cursor *c)
{
	struct bt_path *p = &c->path;

	while (p->slots[0] == 0) {
		int ret = bt_path_prev_leaf(c->t->fs, p);
		if (ret < 0)
			return cursor_fail(c, ret);
	}
	p->slots[0]--;
	return cursor_settle(c);
}

int bt_cursor_seek(struct bt_cursor *c, const struct bt_key *key, int mode)
{
	int ret;

	bt_cursor_release(c);
	ret = bt_search(NULL, c->t, key, &c->path);
	if (ret < 0)
		return ret;
	c->seq = c->t->seq;
	if (mode == BT_SEEK_GE || ret == 0)
		return cursor_forward(c);
	return cursor_backward(c);
}

/* The tree changed since the path was taken: find the current key again. Returns 1 when the
 * re-search already landed on the item a step in direction `fwd` must reach. */
static int cursor_reseek(struct bt_cursor *c, bool fwd)
{
	struct bt_key k = c->key;
	int ret = bt_cursor_seek(c, &k, fwd ? BT_SEEK_GE : BT_SEEK_LE);

	if (ret < 0)
		return ret;
	return bt_key_cmp(&c->key, &k) != 0;
}

int bt_cursor_next(struct bt_cursor *c)
{
	int ret;

	if (!c->valid)
		return -ENOENT;
	if (c->seq != c->t->seq && (ret = cursor_reseek(c, true)) != 0)
		return ret < 0 ? ret : 0;
	c->path.slots[0]++;
	return cursor_forward(c);
}

int bt_cursor_prev(struct bt_cursor *c)
{
	int ret;

	if (!c->valid)
		return -ENOENT;
	if (c->seq != c->t->seq && (ret = cursor_reseek(c, false)) != 0)
		return ret < 0 ? ret : 0;
	return cursor_backward(c);
}

void bt_cursor_item(struct bt_cursor *c, struct bt_key *key, const void **data, uint32_t *len)
{
	struct cblock *leaf = c->path.nodes[0];
	uint32_t slot = c->path.slots[0];

	c->t->item_leaf = leaf->addr;
	if (key)
		*key = c->key;
	if (data)
		*data = leaf_item_data(leaf, slot);
	if (len)
		*len = leaf_item_size(leaf, slot);
}
