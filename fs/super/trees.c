/*
 * The tree of trees: trees beyond the extent tree and the default fs tree. Each has a root
 * item in the root tree, kept up to date by the commit (commit.c walks every open tree).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/super/fs.h"
#include "fs/super/internal.h"
#include "fs/super/root_item.h"

struct cowfs_root *fs_find_open_tree(struct cowfs *fs, uint64_t id)
{
	if (id == EXTENT_TREE_ID)
		return &fs->extent_root;
	if (id == FS_TREE_ID)
		return &fs->fs_root;
	if (id == CSUM_TREE_ID)
		return &fs->csum_root;
	for (size_t i = 0; i < fs->nmore; i++)
		if (fs->more[i]->t.owner == id)
			return fs->more[i];
	return NULL;
}

static bool id_taken(struct cowfs *fs, uint64_t id)
{
	struct bt_key k = { id, ROOT_ITEM_KEY, 0 };

	return id <= ROOT_TREE_ID || fs_find_open_tree(fs, id) ||
	       bt_lookup(&fs->root_tree, &k, NULL, 0, NULL) != -ENOENT;
}

static int add_open(struct cowfs *fs, struct cowfs_root *r)
{
	struct cowfs_root **v = realloc(fs->more, (fs->nmore + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	fs->more = v;
	fs->more[fs->nmore++] = r;
	return 0;
}

static int new_root(struct cowfs *fs, struct cowfs_root **out)
{
	struct cowfs_root *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	int ret = add_open(fs, r);
	if (ret < 0) {
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

/* A fresh slot for tree `id`, which must not exist yet. */
static int claim_new_tree(struct cowfs *fs, uint64_t id, struct cowfs_root **out)
{
	return id_taken(fs, id) ? -EEXIST : new_root(fs, out);
}

/* On failure the transaction is marked; the slot stays listed and is never committed. */
int cowfs_tree_create(struct cowfs_trans *tx, uint64_t id, struct cowfs_root **out)
{
	struct cowfs_root *r;
	int ret = claim_new_tree(tx->fs, id, &r);

	if (ret == 0 && (ret = bt_create(&tx->bt, id, &r->t)) == 0) {
		tx->bt.changes++;   /* the commit inserts its root item */
		*out = r;
	}
	return ret;
}

int cowfs_tree_clone(struct cowfs_trans *tx, struct cowfs_root *src, uint64_t id,
		     struct cowfs_root **out)
{
	struct cowfs_root *r;
	int ret = claim_new_tree(tx->fs, id, &r);

	if (ret == 0 && (ret = bt_clone(&tx->bt, &src->t, id, &r->t)) == 0)
		*out = r;
	return ret;
}

int cowfs_tree_open(struct cowfs *fs, uint64_t id, struct cowfs_root **out)
{
	struct cowfs_root *r = fs_find_open_tree(fs, id);
	struct tree_root tr;
	int ret;

	if (r) {
		*out = r;
		return 0;
	}
	ret = root_item_lookup(&fs->root_tree, id, &tr);
	if (ret < 0)
		return ret;
	ret = new_root(fs, &r);
	if (ret < 0)
		return ret;
	bt_open(&r->t, &fs->bfs, id, tr.bytenr, tr.generation, tr.level);
	r->saved_root = r->t.root;
	r->saved_gen = r->t.root_gen;
	r->saved_level = r->t.level;
	*out = r;
	return 0;
}

/* Where `r` is in fs->more, or fs->nmore if it is not one of them. */
static size_t more_index(struct cowfs *fs, const struct cowfs_root *r)
{
	size_t i;

	for (i = 0; i < fs->nmore && fs->more[i] != r; i++)
		;
	return i;
}

int fs_tree_forget(struct cowfs_trans *tx, struct cowfs_root *r)
{
	struct cowfs *fs = tx->fs;
	struct bt_key k = { r->t.owner, ROOT_ITEM_KEY, 0 };
	size_t i = more_index(fs, r);
	int ret;

	if (i == fs->nmore)
		return -EINVAL;
	ret = bt_delete(&tx->bt, &fs->root_tree, &k);
	if (ret == -ENOENT && r->saved_root == 0)
		ret = 0;   /* created and dropped within this transaction */
	if (ret < 0)
		return ret;
	fs->more[i] = fs->more[--fs->nmore];
	free(r);
	return 0;
}

int cowfs_tree_drop(struct cowfs_trans *tx, struct cowfs_root *r)
{
	int ret;

	if (more_index(tx->fs, r) == tx->fs->nmore)
		return -EINVAL;   /* the extent tree and the default fs tree are not dropped */
	ret = bt_drop(&tx->bt, &r->t);
	return ret < 0 ? ret : fs_tree_forget(tx, r);
}
