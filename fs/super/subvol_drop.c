/*
 * Deleting a subvolume's tree in bounded steps (DESIGN.md 16). cowfs_subvol_unlink marked it
 * SUBVOL_DELETING and put it on the deleting list; each step here takes a few blocks off the
 * tree's right edge (bt_drop_step) inside the running transaction and records how far the
 * drop is in the SUBVOL_ITEM. Between steps the tree is a valid, smaller B+tree whose root
 * item the commit keeps up to date like any other, so a crash resumes from the last committed
 * step. The step that takes the last block also removes the subvolume's root item, its
 * SUBVOL_ITEM and its deleting entry: nothing of it is left.
 *
 * Deleting frees space, so it must work on a full filesystem: it runs in the privileged
 * allocation class (it may use half the reserve, as deletes do), whatever its caller began.
 */
#include <errno.h>

#include "fs/super/internal.h"
#include "fs/super/subvol.h"

/* A step frees at most this many blocks, whatever it is asked: what it may allocate, and so
 * reserve, stays small. */
#define DROP_MAX_BUDGET 4096u

/*
 * Tree blocks one step may allocate: the right edge's nodes are shadowed once each: the path
 * from the root, and every node the walk goes down into, which it then frees (counted in the
 * budget, which empty nodes may overrun by the height) or holds on the path at the end. Plus
 * the root-tree updates of the step's items.
 */
static uint64_t step_nodes(struct cowfs *fs, unsigned budget)
{
	return (uint64_t)budget + 3 * BT_MAX_LEVEL + 4 * cowfs_update_nodes(&fs->root_tree);
}

/* The tree is gone: so are its root item, its SUBVOL_ITEM and its deleting entry. */
static int forget_subvol(struct cowfs_trans *tx, struct cowfs_root *r)
{
	uint64_t id = r->t.owner;
	struct bt_key item = { id, SUBVOL_ITEM_KEY, 0 };
	struct bt_key deleting = { SUBVOL_DELETING_OBJECTID, SUBVOL_DELETING_KEY, id };
	struct btree *rt = &tx->fs->root_tree;
	int ret = fs_tree_forget(tx, r);

	if (ret == 0)
		ret = bt_delete(&tx->bt, rt, &item);
	if (ret == 0)
		ret = bt_delete(&tx->bt, rt, &deleting);
	return ret;
}

/* Record how far the drop is: total - what bt_drop_units says is left. */
static int note_progress(struct cowfs_trans *tx, struct cowfs_root *r, uint64_t total)
{
	uint64_t left;
	int ret = bt_drop_units(&r->t, &left);

	if (ret < 0)
		return ret;
	return subvol_item_update_progress(tx, r->t.owner, total, left < total ? total - left : 0);
}

static int drop_step(struct cowfs_trans *tx, uint64_t id, unsigned budget, bool *done)
{
	struct cowfs *fs = tx->fs;
	struct subvol_info si;
	struct cowfs_root *r;
	uint64_t total;
	unsigned freed;
	bool gone;
	int ret = cowfs_reserve(tx, step_nodes(fs, budget));

	if (ret == 0)
		ret = cowfs_subvol_get(fs, id, &si);
	if (ret == 0 && !(si.flags & SUBVOL_DELETING))
		ret = -EINVAL;
	if (ret == 0)
		ret = cowfs_tree_open(fs, id, &r);
	if (ret < 0)
		return ret;
	/* Unlink leaves the total to the first step: the tree as it is when its drop begins. */
	total = si.drop_total;
	if (total == 0 && (ret = bt_drop_units(&r->t, &total)) < 0)
		return ret;
	ret = bt_drop_step(&tx->bt, &r->t, budget, &freed, &gone);
	if (ret < 0)
		return ret;
	if (!gone)
		return note_progress(tx, r, total);
	ret = forget_subvol(tx, r);
	*done = ret == 0;
	return ret;
}

int cowfs_subvol_drop_step(struct cowfs_trans *tx, uint64_t id, unsigned budget, bool *done)
{
	unsigned cls = cowfs_trans_set_class(tx, ALLOC_PRIVILEGED);
	int ret;

	*done = false;
	ret = drop_step(tx, id, budget < DROP_MAX_BUDGET ? budget : DROP_MAX_BUDGET, done);
	cowfs_trans_set_class(tx, cls);
	return ret;
}
