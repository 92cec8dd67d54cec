/*
 * The running transaction: the handle every update is passed (bcachefs's btree_trans), its
 * sticky failure state (LMDB's MDB_TXN_ERROR), and the hooks through which the layers above
 * take part in commits.
 *
 * There is one running transaction per filesystem: updates are serialized by the filesystem
 * lock, which cowfs_trans_begin takes and cowfs_trans_end lets go. The handle carries what an
 * update needs: the B+tree transaction (generation, first error, change count), the
 * allocation class of the update, and where the update began (to tell a failure before any
 * change from one after). fs/inode, fs/extent and fs/super take it as an explicit argument.
 *
 * The abort rule (docs/DESIGN.md §5):
 *   - An update that fails before it changed anything (a user mistake: EEXIST, ENOENT,
 *     ENOTEMPTY, EACCES; ENOSPC or ENOMEM found before the first change) leaves the
 *     transaction as it was: cowfs_trans_end just returns the error.
 *   - An update that fails after it changed something poisons the transaction, as does any
 *     failure inside the B+tree, the reference layer, a write-back or a commit that left its
 *     work half done (bt_trans_fail, the one setter). A poisoned transaction never commits.
 *   - When the update that poisoned it ends, the transaction is aborted: its changes are
 *     forgotten in memory (dirty tree blocks, pending references, each tree's dirty file data
 *     through its abort hook), every tree is reopened at the last committed generation, the
 *     first error is reported once (fs->report: syslog on a mount) with where it happened,
 *     and the filesystem stays up read-only: reads see the last committed generation, every
 *     update returns -EROFS. cowfs_failure() says what happened.
 */
#ifndef COWFS_SUPER_TRANS_H
#define COWFS_SUPER_TRANS_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/alloc/alloc.h"
#include "fs/btree/btree.h"

struct cowfs;
struct extents;

/* The running update's own part of the handle, kept across a wait that lets the lock go. */
struct cowfs_update_frame {
	unsigned cls, outer_class;
	uint64_t changes_at_begin;
};

struct cowfs_trans {
	struct bt_trans bt;         /* generation, first error, changes, allocation class */
	struct cowfs *fs;
	uint64_t changes_at_begin;  /* bt.changes when the update began, or at the last commit */
	unsigned outer_class;       /* allocation class to restore at cowfs_trans_end */
	struct cowfs_update_frame flush_frame;   /* the flush's, while it has let the lock go */
};

/*
 * Begin an update: take the filesystem lock and return the running transaction, with the
 * update's allocation class: ALLOC_PRIVILEGED for updates that free space (deletes, dropping
 * snapshots) and may eat into half of the reserve, ALLOC_NORMAL otherwise. Waits for a
 * background flush to finish; cowfs_trans_begin_beside_flush does not, for updates that only
 * buffer file data and change inode attributes (fs/inode/writeback.c says why that is safe).
 */
struct cowfs_trans *cowfs_trans_begin(struct cowfs *fs, enum alloc_class cls);
struct cowfs_trans *cowfs_trans_begin_beside_flush(struct cowfs *fs, enum alloc_class cls);
/*
 * End the update whose result is `ret`: a failure after the update changed something poisons
 * the transaction (`where` names the update), and a poisoned transaction is aborted (see
 * above). Lets the lock go; returns ret.
 */
int cowfs_trans_end_at(struct cowfs_trans *tx, int ret, const char *where);
#define cowfs_trans_end(tx, ret) cowfs_trans_end_at((tx), (ret), __func__)
/* The update changes something the B+tree does not see (buffered file data): from here on a
 * failure poisons. */
static inline void cowfs_trans_note_change(struct cowfs_trans *tx)
{
	tx->bt.changes++;
}
/* What the update changed so far is complete and consistent (a write-back of file data before
 * the update's own changes): a failure from here on poisons only if more was changed. */
static inline void cowfs_trans_checkpoint(struct cowfs_trans *tx)
{
	tx->changes_at_begin = tx->bt.changes;
}
/* Poison the transaction (bt_trans_fail); returns err. */
#define cowfs_trans_fail(tx, err) bt_trans_fail(&(tx)->bt, (err))
/* Whether the transaction is poisoned: its first error, or 0. */
static inline int cowfs_trans_error(const struct cowfs_trans *tx) { return tx->bt.error; }
/* The generation this transaction will commit as. */
static inline uint64_t cowfs_trans_id(const struct cowfs_trans *tx) { return tx->bt.transid; }
/* The update writes something that only a reader knowing the incompat feature `bit`
 * (COWFS_INCOMPAT_*) may read: the transaction's commit sets it in the superblock, for good,
 * so that an older program refuses the image instead of misreading it. */
void cowfs_trans_use_feature(struct cowfs_trans *tx, uint64_t bit);
/* Switch the allocation class for part of an update (write-back may use the reserve); returns
 * the class to switch back to. */
unsigned cowfs_trans_set_class(struct cowfs_trans *tx, enum alloc_class cls);

/*
 * Before an update that may allocate up to `nodes` tree blocks: make sure the space is there,
 * so that running out is a clean -ENOSPC before anything changed rather than a failed
 * transaction. Normal updates may not eat into the reserve; privileged ones (deletes) may use
 * half of it, the other half being the commit's. When space is short it commits first (frees
 * become free space only at commit), then checks again. -EROFS once the filesystem is
 * read-only or aborted.
 */
int cowfs_reserve(struct cowfs_trans *tx, uint64_t nodes);
/* The same, for an update that also buffers `data_bytes` more bytes of file data (which it
 * then counts with cowfs_delalloc_add). */
int cowfs_reserve_data(struct cowfs_trans *tx, uint64_t nodes, uint64_t data_bytes);
/* Worst case of tree blocks one item insert or delete in tree `t` may allocate. */
uint64_t cowfs_update_nodes(const struct btree *t);
/* The same for `items` neighbouring items of at most 128 bytes (all file extent items of a
 * range, all items of one inode): they share leaves and paths. */
uint64_t cowfs_neighbour_update_nodes(const struct btree *t, uint64_t items);
/* Bytes of buffered file data that will need space when written back (negative: written
 * back or dropped). Space checks count them as used, so write-back never runs out. */
void cowfs_delalloc_add(struct cowfs *fs, int64_t bytes);

/*
 * Commit from inside an update. The lock is let go while the commit flushes and writes its
 * superblock, and taken again before it returns: callers must not rely on anything they saw
 * before the call. A failure poisons the transaction.
 */
int cowfs_trans_commit(struct cowfs_trans *tx);
/* Wait (lock let go meanwhile) until no commit or background flush is in flight. */
void cowfs_trans_commit_wait(struct cowfs_trans *tx);
/* Wait (lock let go meanwhile) until a commit or a flush ends. */
void cowfs_trans_wait_progress(struct cowfs_trans *tx);

/*
 * Hooks of one open tree (an fs tree with its inode layer). Any number may be registered:
 * every commit calls every before_commit, every background flush every flush, an abort every
 * abort. All run with the filesystem lock held.
 *   before_commit: first in every commit: write back dirty file data, so that a commit always
 *     carries the data its trees point at.
 *   flush: background write-back between commits (the timer thread); it may let the lock go
 *     around its data I/O with cowfs_flush_unlock .. relock.
 *   abort: the running transaction was aborted: forget its in-memory changes (dirty pages,
 *     cached inode state) so that reads see the last committed generation.
 */
struct cowfs_hooks {
	int (*before_commit)(void *arg, struct cowfs_trans *tx);
	int (*flush)(void *arg, struct cowfs_trans *tx);
	void (*abort)(void *arg);
	void *arg;
	struct cowfs_hooks *next;   /* fs/super's list */
};
/* Register / unregister (with the filesystem lock held, e.g. inside begin .. end). */
void cowfs_hooks_add(struct cowfs *fs, struct cowfs_hooks *h);
void cowfs_hooks_remove(struct cowfs *fs, struct cowfs_hooks *h);

/*
 * Background write-back. cowfs_flush_soon asks the timer thread to run the flush hooks and
 * returns true, or returns false if there is no timer thread (the caller commits instead).
 * A flush hook lets the lock go around its data I/O with cowfs_flush_unlock .. relock; while
 * it is let go only updates begun with cowfs_trans_begin_beside_flush run.
 */
bool cowfs_flush_soon(struct cowfs *fs);
void cowfs_flush_unlock(struct cowfs_trans *tx);
void cowfs_flush_relock(struct cowfs_trans *tx);

#endif
