/*
 * The filesystem handle: one image, its superblock, its tree of trees, the running
 * transaction and the commit protocol.
 *
 * Trees: the superblock points at the root tree; the root tree holds a root item per other
 * tree (the extent tree, the default fs tree, later subvolumes and snapshots). Every update
 * goes through the one running transaction (cowfs_trans_begin .. cowfs_trans_end); commits
 * happen at cowfs_commit(), which writes every dirty node in one batch, flushes, writes the
 * superblock copies and flushes again. Only superblocks are overwritten in place.
 */
#ifndef COWFS_SUPER_FS_H
#define COWFS_SUPER_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/alloc/alloc.h"
#include "fs/btree/btree.h"
#include "fs/extent/extent.h"
#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "fs/super/log.h"
#include "fs/super/super_format.h"

/* A tree whose root item the commit keeps up to date. */
struct cowfs_root {
	struct btree t;
	uint64_t saved_root, saved_gen;   /* what its root item says */
	uint8_t saved_level;
};

struct cowfs_opts {
	bool read_only;
	/* The memory bound (0: BCACHE_DEFAULT_BYTES): half for the block cache (tree blocks,
	 * clean and dirty), a quarter for file data buffered before write-back, a quarter left
	 * for the rest. */
	size_t cache_bytes;
	unsigned lock_wait_ms; /* how long to wait for another user of the image to let go */
	/* Commit this often when there are changes: 0 means COWFS_COMMIT_INTERVAL_MS, negative
	 * means never by timer (tests that need commits at exact points). Writable only. */
	int commit_interval_ms;
	/* Commit before an update once this many bytes of the cache are dirty: 0 means half the
	 * block cache. Memory does not depend on it (dirty nodes past 3/4 of the block cache are
	 * written out early: bt_relieve_cache); it bounds what one transaction holds. */
	size_t dirty_limit;
	/* A writer that replays the fsync log (fsync_log_replay) before any update. Without it,
	 * a writable open of an image with entries to replay fails with -EAGAIN. */
	bool replays_log;
	/* Called for everything worth telling the user: corruption found, stale copies. */
	void (*report)(void *arg, uint64_t bytenr, const char *msg);
	void *report_arg;
};

struct cowfs {
	struct blockdev *bd;
	struct bcache *cache;
	struct allocator *alloc;
	struct extents ext;
	struct bt_fs bfs;
	struct cowfs_super sb;      /* the last committed superblock (on-disk byte order) */
	struct btree root_tree;
	struct cowfs_root extent_root, fs_root, csum_root;
	struct cowfs_root **more;   /* other open trees: snapshots, subvolumes */
	size_t nmore;
	struct bt_trans trans;      /* the running transaction */
	pthread_mutex_t lock;       /* serializes updates and commits */
	bool read_only;
	uint64_t guard_bytes;       /* kept from the allocator around superblock copies */
	void (*report)(void *arg, uint64_t bytenr, const char *msg);
	void *report_arg;
	uint64_t commits;
	uint64_t last_commit_pinned;
	/* A commit is writing its superblock with the lock let go (commit.c): the next one, and
	 * fsync log appends, wait for commit_done. */
	bool committing;
	pthread_cond_t commit_done;
	size_t dirty_limit;
	size_t cache_bytes;         /* the configured memory bound (cowfs_opts) */
	/* The timer thread. */
	pthread_t committer;
	pthread_cond_t wake;
	bool committer_running, stopping;
	int commit_interval_ms;  /* bytes the last commit freed (pinned until it was on disk) */
	/* Called first in every commit, with fs->lock held: the inode layer writes back dirty
	 * file data here, so that a commit always carries the data its trees point at. */
	int (*before_commit)(void *arg);
	void *before_commit_arg;
	/* Background write-back of file data, between commits: the timer thread calls flush
	 * (with flush_arg, fs->lock held) when asked to (cowfs_flush_soon). While it has let
	 * the lock go to write data (cowfs_flush_unlock .. relock), `flushing` holds off
	 * commits and every update that does not begin with cowfs_trans_begin_beside_flush. */
	int (*flush)(void *arg);
	void *flush_arg;
	bool flush_requested, flushing;
	uint64_t flushes;           /* flushes the timer thread ran */
	/* Readers of data extents outside fs->lock hold this shared; a commit takes it
	 * exclusively before freed space becomes allocatable (see file_read). */
	pthread_rwlock_t data_readers;
	/* Bytes of file data buffered in memory that will need space when written back: space
	 * checks count them as used, so write-back never runs out of space. */
	uint64_t delalloc_bytes;
	struct cowfs_log log;       /* the fsync log (log.h) */
};

struct cowfs_mkfs_opts {
	uint32_t nodesize;       /* 0: BT_DEFAULT_NODESIZE */
	uint32_t sectorsize;     /* 0: 4096 */
	uint8_t fsid[16];
	bool fsid_set;           /* else random */
	char label[COWFS_LABEL_SIZE];
};

#define COWFS_COMMIT_INTERVAL_MS 5000
/* How long a mount or fsck waits for another process to let go of the image: `umount` returns
 * before the FUSE daemon has committed and exited, and what follows must not fail for that. */
#define COWFS_LOCK_WAIT_MS 10000
/* Commit before an update once this many references are waiting to be applied. */
#define COWFS_PENDING_REFS_LIMIT 262144

/* Smallest image mkfs accepts. */
#define COWFS_MIN_SIZE (16ull << 20)

/*
 * Write a new, empty filesystem to the image at `path` (which must exist and be at least
 * COWFS_MIN_SIZE bytes). Returns 0 or a negative errno; on success *fsid_out (if not NULL)
 * receives the filesystem UUID.
 */
int cowfs_format(const char *path, const struct cowfs_mkfs_opts *o, uint8_t fsid_out[16]);

/*
 * Open the filesystem in the image at `path`: read the superblocks, the tree of trees, and
 * rebuild the free-space index from the extent tree. A writer locks the image exclusively, a
 * reader shares it. -EINVAL: not a cowfs image; -EUCLEAN: corrupt beyond use (reported);
 * -EOPNOTSUPP: made by a newer cowfs; -EBUSY: another process has the image open for writing
 * (or, for a writer, at all).
 */
int cowfs_open(const char *path, const struct cowfs_opts *o, struct cowfs **out);
/* Commit what is pending (unless read-only or the transaction failed), then free everything.
 * Returns the commit's result. */
int cowfs_close(struct cowfs *fs);

/*
 * The running transaction, for an update. `cls` says whether the update may use the space
 * reserve (deleting, dropping snapshots) or not. Holds fs->lock until cowfs_trans_end().
 */
struct bt_trans *cowfs_trans_begin(struct cowfs *fs, enum alloc_class cls);
/* The same for an update that only buffers file data and changes inode attributes (a write):
 * it may run while a background flush writes data with the lock let go, where
 * cowfs_trans_begin waits for the flush to finish (fs/inode/writeback.c says why). */
struct bt_trans *cowfs_trans_begin_beside_flush(struct cowfs *fs, enum alloc_class cls);
void cowfs_trans_end(struct cowfs *fs);

/*
 * Background write-back (fs->flush). cowfs_flush_soon asks the timer thread to call it and
 * returns true, or returns false if there is no timer thread (the caller commits instead).
 * The flush lets the lock go around its data I/O with cowfs_flush_unlock .. relock.
 * cowfs_wait_progress waits (fs->lock held, let go meanwhile) until a commit or a flush ends.
 */
bool cowfs_flush_soon(struct cowfs *fs);
void cowfs_flush_unlock(struct cowfs *fs);
void cowfs_flush_relock(struct cowfs *fs);
void cowfs_wait_progress(struct cowfs *fs);
/* Mark the running transaction failed (it can never commit); returns err. */
int cowfs_trans_fail(struct cowfs *fs, int err);

/*
 * Before an update that may allocate up to `nodes` tree blocks, inside cowfs_trans_begin ..
 * end: make sure the space is there, so that running out is a clean -ENOSPC before anything
 * changed rather than a failed transaction. Normal updates may not eat into the reserve;
 * privileged ones (deletes) may use half of it, the other half being the commit's. When space
 * is short it commits first (frees become free space only at commit), then checks again.
 */
int cowfs_reserve(struct cowfs *fs, uint64_t nodes);
/* The same, for an update that also buffers `data_bytes` more bytes of file data: on success
 * the caller adds them to fs->delalloc_bytes (and write-back subtracts them). */
int cowfs_reserve_data(struct cowfs *fs, uint64_t nodes, uint64_t data_bytes);
/* Worst case of tree blocks one item insert or delete in tree `t` may allocate. */
uint64_t cowfs_update_nodes(const struct btree *t);
/* The same for `items` neighbouring items of at most 128 bytes (all file extent items of a
 * range, all items of one inode): they share leaves and paths. */
uint64_t cowfs_neighbour_update_nodes(const struct btree *t, uint64_t items);

/*
 * Commit the running transaction: afterwards, a crash at any instant leaves the image at this
 * generation or a later one. Fails (and keeps failing) if the transaction hit an error.
 */
int cowfs_commit(struct cowfs *fs);
/* The same, with fs->lock already held (inside cowfs_trans_begin .. end). The lock is let go
 * while the commit flushes and writes its superblock, and taken again before it returns:
 * callers must not rely on anything they saw before the call. */
int cowfs_commit_locked(struct cowfs *fs);
/* Wait (fs->lock held, and let go meanwhile) until no commit or flush is in flight. */
void cowfs_commit_wait(struct cowfs *fs);

/*
 * Trees other than the extent tree and the default fs tree (snapshots, subvolumes), each with
 * a root item in the root tree. Call inside cowfs_trans_begin .. end.
 * create: a new empty tree; clone: an O(1) copy of `src` (a snapshot); open: an existing one
 * (-ENOENT if no root item); drop: free what it owns alone and remove its root item.
 * create/clone return -EEXIST if `id` is taken.
 */
int cowfs_tree_create(struct cowfs *fs, uint64_t id, struct cowfs_root **out);
int cowfs_tree_clone(struct cowfs *fs, struct cowfs_root *src, uint64_t id,
		     struct cowfs_root **out);
int cowfs_tree_open(struct cowfs *fs, uint64_t id, struct cowfs_root **out);
int cowfs_tree_drop(struct cowfs *fs, struct cowfs_root *r);

/* statfs(2) figures, in bytes. */
struct cowfs_statfs {
	uint64_t total;      /* the data area */
	uint64_t free;       /* free, including space freed but not yet committed */
	uint64_t avail;      /* what normal (non-deleting) updates may still use */
	uint32_t blocksize;  /* sector size */
};
void cowfs_statfs(struct cowfs *fs, struct cowfs_statfs *st);

/* Whether the running transaction has anything to commit (call with fs->lock held). */
bool cowfs_has_changes(struct cowfs *fs);

/* Generation of the last commit. */
uint64_t cowfs_generation(const struct cowfs *fs);

#endif
