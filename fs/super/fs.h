/*
 * The filesystem handle: one image, its superblock, its tree of trees, the running
 * transaction and the commit protocol.
 *
 * Trees: the superblock points at the root tree; the root tree holds a root item per other
 * tree (the extent tree, the default fs tree, later subvolumes and snapshots). Every update
 * goes through the one running transaction (trans.h: cowfs_trans_begin .. cowfs_trans_end);
 * commits happen at cowfs_commit(), which writes every dirty node in one batch, flushes,
 * writes the superblock copies and flushes again. Only superblocks are overwritten in place.
 *
 * The fields of struct cowfs are fs/super's (and its tests'): the layers above use the
 * functions below and in trans.h and log.h.
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
#include "fs/super/trans.h"

/* A tree whose root item the commit keeps up to date. */
struct cowfs_root {
	struct btree t;
	uint64_t saved_root, saved_gen;   /* what its root item says */
	uint8_t saved_level;
};

struct cowfs_opts {
	bool read_only;
	/* A snapshot read: the last committed generation of an image another process may be
	 * writing (a mount), for tools that only look. Implies read_only; takes no lock, reads
	 * no fsync log, starts no commit timer, never writes. Every block read is checked
	 * against its parent's pointer (address, generation, checksum), so a block the writer
	 * has reused since shows as an error, never as other data: cowfs_snapshot_current()
	 * then tells such an error from damage. */
	bool snapshot;
	/* The memory bound (0: BCACHE_DEFAULT_BYTES): half for the block cache (tree blocks,
	 * clean and dirty), a quarter for file data buffered before write-back, a quarter left
	 * for the rest. */
	size_t cache_bytes;
	unsigned lock_wait_ms; /* how long to wait for another user of the image to let go */
	/* Called once, with report_arg, when that wait begins: the holder's pid (0: unknown). */
	void (*lock_waiting)(void *arg, long holder_pid, unsigned wait_ms);
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

/* The first error of an aborted transaction (trans.h), as reported. */
struct cowfs_failure {
	int err;                  /* negative errno */
	uint64_t transid;         /* the transaction that was aborted */
	uint64_t generation;      /* the committed generation the filesystem shows now */
	char msg[256];            /* cause and location, as reported */
};

struct cowfs {
	struct blockdev *bd;
	struct bcache *cache;
	struct allocator *alloc;
	struct extents ext;
	struct bt_fs bfs;
	struct cowfs_super sb;      /* the superblock (on-disk byte order): the last committed one
				     * but while a commit fills it in */
	struct btree root_tree;
	struct cowfs_root extent_root, fs_root, csum_root;
	struct cowfs_root **more;   /* other open trees: snapshots, subvolumes */
	size_t nmore;
	/* The last committed root tree: what an abort goes back to. */
	uint64_t committed_gen, committed_root, committed_root_gen;
	uint8_t committed_root_level;
	struct cowfs_trans trans;   /* the running transaction (trans.c alone touches it) */
	pthread_mutex_t lock;       /* serializes updates and commits */
	bool read_only;
	bool snapshot;              /* opened as a snapshot read (cowfs_opts.snapshot) */
	bool aborted;               /* a transaction was aborted: read-only from then on */
	struct cowfs_failure failure;
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
	/* The timer thread (committer.c). */
	pthread_t committer;
	pthread_cond_t wake;
	bool committer_running, stopping;
	int commit_interval_ms;
	/* The open trees' hooks (trans.h). While a flush hook has let the lock go to write data
	 * (cowfs_flush_unlock .. relock), `flushing` holds off commits and every update that does
	 * not begin with cowfs_trans_begin_beside_flush. */
	struct cowfs_hooks *hooks;
	bool flush_requested, flushing;
	uint64_t flushes;           /* flushes the timer thread ran */
	/* Readers of data extents outside fs->lock hold this shared; a commit takes it
	 * exclusively before freed space becomes allocatable (see file_read). */
	pthread_rwlock_t data_readers;
	/* Bytes of file data buffered in memory that will need space when written back: space
	 * checks count them as used, so write-back never runs out of space. */
	uint64_t delalloc_bytes;
	struct cowfs_log log;       /* the fsync log (log.h) */
	/* Incompat feature bits the running transaction began to use (cowfs_trans_use_feature):
	 * its commit adds them to the superblock. */
	uint64_t incompat_new;
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
 * (or, for a writer, at all). A snapshot read never gets -EBUSY; it gets -ESTALE when what it
 * read at open failed and the image has a newer generation since (the writer moved on
 * underneath it: open again).
 */
int cowfs_open(const char *path, const struct cowfs_opts *o, struct cowfs **out);
/*
 * For a snapshot read: 0 if the image's newest superblock is still of the generation opened,
 * -ESTALE if a commit has happened since (errors met while reading may be the writer's reuse
 * of blocks, not damage), or a negative errno from reading the superblocks.
 */
int cowfs_snapshot_current(struct cowfs *fs);
/* Commit what is pending (unless read-only or the transaction failed), then free everything.
 * Returns the commit's result. */
int cowfs_close(struct cowfs *fs);

/*
 * Commit the running transaction, outside any update: afterwards, a crash at any instant
 * leaves the image at this generation or a later one. Fails (and keeps failing) once the
 * transaction is poisoned; a failed commit aborts it (trans.h).
 */
int cowfs_commit(struct cowfs *fs);

/*
 * Trees other than the extent tree and the default fs tree (snapshots, subvolumes), each with
 * a root item in the root tree. Call inside cowfs_trans_begin .. end.
 * create: a new empty tree; clone: an O(1) copy of `src` (a snapshot); open: an existing one
 * (-ENOENT if no root item); drop: free what it owns alone and remove its root item.
 * create/clone return -EEXIST if `id` is taken.
 */
int cowfs_tree_create(struct cowfs_trans *tx, uint64_t id, struct cowfs_root **out);
int cowfs_tree_clone(struct cowfs_trans *tx, struct cowfs_root *src, uint64_t id,
		     struct cowfs_root **out);
int cowfs_tree_open(struct cowfs *fs, uint64_t id, struct cowfs_root **out);
int cowfs_tree_drop(struct cowfs_trans *tx, struct cowfs_root *r);

/*
 * Remount (mount -o remount,ro|rw,commit=N on a live mount). Read-only commits everything
 * pending, stops the commit timer, and updates get -EROFS from then on. Read-write takes
 * updates again and restarts the timer: -EROFS if a transaction was aborted (cowfs_failure
 * says why), -EOPNOTSUPP if the filesystem was opened read-only (its image is open for
 * reading only). The commit interval (0: COWFS_COMMIT_INTERVAL_MS) applies from the next
 * commit on, and to a later return to read-write.
 */
int cowfs_set_read_only(struct cowfs *fs, bool read_only);
int cowfs_set_commit_interval(struct cowfs *fs, int interval_ms);

/* statfs(2) figures, in bytes. */
struct cowfs_statfs {
	uint64_t total;      /* the data area */
	uint64_t free;       /* free as the next commit counts it: space freed but not yet
	                      * committed, and the fsync log's held space, included */
	uint64_t avail;      /* what normal (non-deleting) updates may still use */
	uint32_t blocksize;  /* sector size */
};
void cowfs_statfs(struct cowfs *fs, struct cowfs_statfs *st);

/* Whether the running transaction has anything to commit (call with fs->lock held). */
bool cowfs_has_changes(struct cowfs *fs);

/* Generation of the last commit. */
uint64_t cowfs_generation(const struct cowfs *fs);

/* The superblock's incompat feature bits (COWFS_INCOMPAT_*), with those the running
 * transaction will add (call with fs->lock held, or with no updates running: fsck). */
uint64_t cowfs_incompat_features(const struct cowfs *fs);

/* What a mounted filesystem reports about itself (cowfs status). */
struct cowfs_status {
	uint64_t generation;      /* of the last commit */
	uint64_t commits, flushes;
	bool read_only;           /* mounted read-only, or since an abort */
	bool aborted;
	struct cowfs_failure failure;   /* when aborted */
};
void cowfs_get_status(struct cowfs *fs, struct cowfs_status *st);

/* Fault injection for tests (bt_fs.inject): `fn` is asked at every tree step and allocation
 * whether to fail it (NULL: never). */
void cowfs_inject_faults(struct cowfs *fs, int (*fn)(void *arg, const char *site), void *arg);

/*
 * What the layers above use of the filesystem handle.
 *   cowfs_lock/unlock: the filesystem lock, for reads (updates take it with trans.h);
 *   cowfs_read_only: mounted read-only, or read-only since an abort (updates get -EROFS);
 *   cowfs_failure: whether a transaction was aborted, and its first error as reported;
 *   cowfs_report: tell the user about something found (corruption: name the block);
 *   cowfs_data_read_begin/end: around reading data extents without the lock (a commit waits
 *     for such readers before the space it freed can be reused).
 */
void cowfs_lock(struct cowfs *fs);
void cowfs_unlock(struct cowfs *fs);
bool cowfs_read_only(const struct cowfs *fs);
bool cowfs_failure(struct cowfs *fs, struct cowfs_failure *out);
void cowfs_report(struct cowfs *fs, uint64_t bytenr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cowfs_data_read_begin(struct cowfs *fs);
void cowfs_data_read_end(struct cowfs *fs);
struct extents *cowfs_extents(struct cowfs *fs);
struct blockdev *cowfs_bdev(struct cowfs *fs);
uint32_t cowfs_sectorsize(const struct cowfs *fs);
uint32_t cowfs_nodesize(const struct cowfs *fs);
/* The memory bound (cowfs_opts.cache_bytes): fs/inode takes a quarter for file data. */
size_t cowfs_cache_bytes(const struct cowfs *fs);
/*
 * Forget every clean tree block cached and have the kernel drop its pages of the image: the
 * reads after it come from the device, as right after a mount on a rebooted machine (for
 * benchmarks of cold reads; dirty blocks stay). Under the lock. 0 or a negative errno.
 */
int cowfs_drop_caches(struct cowfs *fs);
/* The default fs tree; the root tree (read-only use: its root items name every tree). */
struct cowfs_root *cowfs_default_root(struct cowfs *fs);
struct btree *cowfs_root_tree(struct cowfs *fs);

#endif
