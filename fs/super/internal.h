/* Declarations shared by fs/super's files; not part of its interface. */
#ifndef COWFS_SUPER_INTERNAL_H
#define COWFS_SUPER_INTERNAL_H

#include "fs/super/fs.h"

/* fs->report, if set. */
void fs_report(struct cowfs *fs, uint64_t bytenr, const char *msg);

/* The block cache's share of the memory bound. */
size_t fs_tree_cache_bytes(size_t cache_bytes);

/* Point `r` at the tree its root item in the root tree names: -EUCLEAN (reported) when the
 * item is missing or malformed. */
int fs_load_root(struct cowfs *fs, uint64_t id, struct cowfs_root *r);
/* Remember the root tree as committed (at open, and after every commit). */
void fs_note_committed(struct cowfs *fs);

/* Tree `id` if it is open (trees.c): the extent, csum and default fs trees, or one of
 * fs->more; NULL otherwise. */
struct cowfs_root *fs_find_open_tree(struct cowfs *fs, uint64_t id);
/* Tree `r` (one of fs->more) is gone, its blocks dropped: its root item goes, and `r` is
 * closed and freed (trees.c). -EINVAL if `r` is not one of fs->more. */
int fs_tree_forget(struct cowfs_trans *tx, struct cowfs_root *r);
/* Record a deleting subvolume's drop progress in its SUBVOL_ITEM (subvol.c). */
int subvol_item_update_progress(struct cowfs_trans *tx, uint64_t id, uint64_t total,
				uint64_t done);

/* The checker's look at the subvolume items of the root tree (subvol_check.c): each problem
 * goes to `problem` and is counted in *problems. 0 or -EIO. */
int subvol_check_items(struct cowfs *fs, void (*problem)(void *, uint64_t, const char *),
		       void *arg, uint64_t *problems);

/* The timer thread (committer.c). */
int fs_start_committer(struct cowfs *fs, int interval_ms);
void fs_stop_committer(struct cowfs *fs);

/* Commit with fs->lock held, from inside an update or the timer thread (commit.c). */
int fs_commit_locked(struct cowfs_trans *tx);
/* The running transaction, for fs/super's own work outside any update: opening it, the
 * commit, the timer thread, the fsync log (trans.c). */
struct cowfs_trans *fs_running_trans(struct cowfs *fs);
void fs_trans_init(struct cowfs *fs, uint64_t transid, enum alloc_class cls);
/* The running transaction is poisoned: abort it if not done yet (trans.c). */
void fs_abort_if_poisoned(struct cowfs *fs);
/* Run every tree's before_commit / flush hook (trans.c). */
int fs_hooks_before_commit(struct cowfs_trans *tx);
int fs_hooks_flush(struct cowfs_trans *tx);

#endif
