/*
 * The commit protocol.
 *
 *   1. Bring every root item up to date and apply every delayed reference to the extent tree.
 *      Each feeds the other (updating a root item shadows root-tree nodes, which changes
 *      references; applying references reshapes the extent tree, whose root item then
 *      changes), so alternate until neither has anything left: a few rounds, since nodes
 *      shadowed once are writable for the rest of the transaction.
 *   2. Write every dirty node in one batch. Retire the fsync log and hold space for the next
 *      one (log.c); fill in the superblock.
 *   3. Seal: what this transaction freed is set aside (alloc_pin_seal), the next transaction
 *      starts, and the lock is let go.
 *   4. Flush; write every superblock copy; flush.
 *   5. With the lock again: the sealed space becomes allocatable.
 *
 * Until step 4 completes the previous superblock is the valid one, and nothing it reaches has
 * been touched: new nodes went to free space, freed space stays pinned until step 5. A crash
 * anywhere leaves either the old generation or the new one.
 *
 * Why the lock is let go in step 4: the flushes wait for the disk to take everything the
 * transaction wrote (a sequential writer's 64 MiB of data: 50 ms here), and updates of the
 * next transaction need none of it. They cannot disturb the commit: every node step 2 wrote
 * lost its writable mark and is of the old generation once the number is bumped, so changing
 * one shadows it into a new block (bt_cow changes in place only nodes of the running
 * generation); frees go to the new pinned set; the superblock image is complete. What must
 * wait is what depends on this commit being on disk: the next commit and fsync log entries
 * (the chain the new superblock points at), through `committing` and commit_done. If step 4
 * fails, the running transaction is poisoned and aborted (trans.h): it builds on a generation
 * that never reached the disk.
 */
#include <errno.h>
#include <string.h>

#include "fs/lib/endian.h"
#include "fs/super/internal.h"
#include "fs/super/super.h"

#define MAX_COMMIT_ROUNDS 32

static bool root_changed(const struct cowfs_root *r)
{
	return r->t.root != r->saved_root || r->t.root_gen != r->saved_gen ||
	       r->t.level != r->saved_level;
}

static int update_root_item(struct cowfs_trans *tx, struct cowfs_root *r)
{
	struct bt_key k = { r->t.owner, ROOT_ITEM_KEY, 0 };
	struct root_item ri = { 0 };
	int ret;

	put_le64(&ri.bytenr, r->t.root);
	put_le64(&ri.generation, r->t.root_gen);
	ri.level = r->t.level;
	ret = bt_update(&tx->bt, &tx->fs->root_tree, &k, &ri, sizeof(ri));
	if (ret == -ENOENT)
		ret = bt_insert(&tx->bt, &tx->fs->root_tree, &k, &ri, sizeof(ri));
	if (ret < 0)
		return ret;
	r->saved_root = r->t.root;
	r->saved_gen = r->t.root_gen;
	r->saved_level = r->t.level;
	return 0;
}

static int update_changed_roots(struct cowfs_trans *tx, bool *changed)
{
	struct cowfs *fs = tx->fs;
	struct cowfs_root *fixed[] = { &fs->extent_root, &fs->fs_root, &fs->csum_root };
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	int ret = 0;

	for (size_t i = 0; i < nfixed + fs->nmore && ret == 0; i++) {
		struct cowfs_root *r = i < nfixed ? fixed[i] : fs->more[i - nfixed];
		if (root_changed(r)) {
			*changed = true;
			ret = update_root_item(tx, r);
		}
	}
	return ret;
}

/* Step 1: root items and delayed references, until both are settled. */
static int settle_trees(struct cowfs_trans *tx)
{
	struct cowfs *fs = tx->fs;

	for (int round = 0; round < MAX_COMMIT_ROUNDS; round++) {
		bool changed = false;
		int ret = update_changed_roots(tx, &changed);
		if (ret == 0 && extent_pending(&fs->ext)) {
			changed = true;
			ret = extent_run_delayed_refs(&fs->ext, &tx->bt);
		}
		if (ret < 0 || !changed)
			return ret;
	}
	fs_report(fs, 0, "commit did not settle");
	return -EUCLEAN;
}

static void fill_super(struct cowfs_trans *tx, uint64_t log_held)
{
	struct cowfs *fs = tx->fs;
	struct alloc_stats st;
	struct cowfs_super *sb = &fs->sb;

	alloc_get_stats(fs->alloc, &st);
	put_le64(&sb->generation, cowfs_trans_id(tx));
	put_le64(&sb->incompat_flags, get_le64(&sb->incompat_flags) | fs->incompat_new);
	fs->incompat_new = 0;
	put_le64(&sb->root_tree_bytenr, fs->root_tree.root);
	put_le64(&sb->root_tree_gen, fs->root_tree.root_gen);
	sb->root_tree_level = fs->root_tree.level;
	/* Space this commit frees is pinned now but free in the generation being written; the
	 * fsync log's space is held in memory only. */
	put_le64(&sb->bytes_used, st.total - st.free - st.pinned - fs->guard_bytes - log_held);
}

/* Steps 1-2, with the lock held. */
static int commit_prepare(struct cowfs_trans *tx)
{
	struct cowfs *fs = tx->fs;
	uint64_t log_held = 0;
	int ret = fs_hooks_before_commit(tx);

	if (ret == 0)
		ret = settle_trees(tx);
	if (ret == 0)
		ret = bt_writeback(&fs->bfs);
	if (ret == 0)
		ret = log_commit_prepare(fs, &log_held);
	if (ret == 0)
		fill_super(tx, log_held);
	return ret;
}

/* Step 4, without the lock: the nodes, then the superblock that points at them. */
static int commit_write_super(struct cowfs *fs)
{
	int ret = bdev_flush(fs->bd);

	if (ret == 0)
		ret = super_write_all(fs->bd, &fs->sb);
	if (ret == 0)
		ret = bdev_flush(fs->bd);
	return ret;
}

int fs_commit_locked(struct cowfs_trans *tx)
{
	struct cowfs *fs = tx->fs;
	struct alloc_stats st;
	unsigned cls;
	int ret;

	cowfs_trans_commit_wait(tx);
	if (fs->read_only || fs->aborted)
		return -EROFS;
	if (cowfs_trans_error(tx))
		return cowfs_trans_error(tx);
	/* Committing must succeed on a full filesystem: it may use the reserve. */
	cls = cowfs_trans_set_class(tx, ALLOC_PRIVILEGED);
	ret = commit_prepare(tx);
	cowfs_trans_set_class(tx, cls);
	if (ret < 0)
		return cowfs_trans_fail(tx, ret);
	alloc_get_stats(fs->alloc, &st);
	fs->last_commit_pinned = st.pinned;
	alloc_pin_seal(fs->alloc);
	tx->bt.transid++;
	fs->committing = true;
	pthread_mutex_unlock(&fs->lock);
	ret = commit_write_super(fs);
	pthread_mutex_lock(&fs->lock);
	if (ret == 0) {
		/* A read that mapped a freed extent before this commit may still be reading it. */
		pthread_rwlock_wrlock(&fs->data_readers);
		alloc_unpin_sealed(fs->alloc);
		pthread_rwlock_unlock(&fs->data_readers);
		fs->commits++;
		fs_note_committed(fs);
	}
	fs->committing = false;
	pthread_cond_broadcast(&fs->commit_done);
	return ret < 0 ? cowfs_trans_fail(tx, ret) : 0;
}

int cowfs_commit(struct cowfs *fs)
{
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = fs_commit_locked(fs_running_trans(fs));
	fs_abort_if_poisoned(fs);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}
