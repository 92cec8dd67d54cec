/* Declarations shared by fs/inode's files; not part of its interface. */
#ifndef COWFS_INODE_INTERNAL_H
#define COWFS_INODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fs/btree/btree.h"
#include "fs/extent/extent.h"
#include "fs/inode/inode.h"

struct icache_entry;
struct inode_timespec;

/* An inode item in host byte order. */

struct inode {
	uint64_t generation, size, nbytes;
	uint32_t nlink, uid, gid, mode;
	uint64_t rdev, flags, next_index;
	struct timespec atime, mtime, ctime, otime;
};

/* A directory entry found by name. */
struct dentry {
	uint64_t child;
	uint8_t type;
};

/* What an update touches in inode_adjust. */
#define TOUCH_CTIME 0x1u
#define TOUCH_MTIME 0x2u

/* The most levels a rename's ancestor walk climbs before calling the tree corrupt. */
#define MAX_DEPTH 100000

int dir_check_link_fits(struct inode_tree *it, uint64_t ino, uint64_t dir, const char *name, size_t len);
int dir_check_not_below(struct inode_tree *it, uint64_t dir, uint64_t ancestor);
int dir_find(struct inode_tree *it, uint64_t dir, const char *name, size_t len, struct dentry *out);
int dir_is_empty(struct inode_tree *it, uint64_t dir);
int dir_parent(struct inode_tree *it, uint64_t dir, uint64_t *parent);
int inode_count_items(struct inode_tree *it, uint64_t ino, uint64_t limit, uint64_t *count);
int inode_drop(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino);
int dir_link_add(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir, const char *name,
		 size_t len, uint64_t ino, uint8_t type);
int dir_link_remove(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir, const char *name,
		    size_t len, uint64_t ino);
/* Subvolume entries (dir.c): the DIR_INDEX offset the next entry of `dir` gets; link and unlink
 * the entry of subvolume `id` (its parent's nlink counts it as a subdirectory). */
int dir_peek_index(struct inode_tree *it, uint64_t dir, uint64_t *index);
int dir_subvol_link(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir,
		    const char *name, size_t len, uint64_t id, uint64_t *index);
int dir_subvol_unlink(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir,
		      const char *name, size_t len, uint64_t index);
int inode_alloc_ino(struct inode_tree *it, uint64_t *ino);
int dir_check_new_name(const char *name, size_t len);
int inode_corrupt(struct inode_tree *it, uint64_t ino, const char *what);
int inode_adjust(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, int nlink_delta,
		 unsigned touch);
int inode_insert(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		 const struct inode *in);
int inode_read(struct inode_tree *it, uint64_t ino, struct inode *in);
/* Decode an inode item of `len` bytes; a malformed one is reported and -EUCLEAN. */
int inode_decode(struct inode_tree *it, uint64_t ino, const struct inode_item *d, uint32_t len,
		 struct inode *in);
int inode_write(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		const struct inode *in);
int inode_item_read(struct inode_tree *it, const struct bt_key *k, uint8_t **buf, uint32_t *len);
void inode_lock_read(struct inode_tree *it);
uint8_t inode_mode_to_dtype(uint32_t mode);
uint64_t dir_name_hash(const char *name, size_t len);
void inode_init_new(struct cowfs_trans *tx, struct inode *in, uint32_t mode, uint32_t nlink,
		    uint32_t uid, uint32_t gid, uint64_t rdev);
struct timespec inode_now(void);
int inode_read_dir(struct inode_tree *it, uint64_t dir, struct inode *in);
void inode_to_attr(const struct inode_tree *it, uint64_t ino, const struct inode *in,
		   struct cowfs_attr *a);
struct btree *inode_btree(struct inode_tree *it);
void inode_unlock_read(struct inode_tree *it);
/*
 * Begin an update of `items` scattered items (or that may allocate `nodes` tree blocks): the
 * running transaction, in *tx, with the space reserved. End it with inode_update_end(tx, ret),
 * which returns ret: a failure after the update changed something poisons the transaction.
 */
int inode_update_begin(struct inode_tree *it, enum alloc_class cls, uint64_t items,
		       struct cowfs_trans **tx);
int inode_update_begin_nodes(struct inode_tree *it, enum alloc_class cls, uint64_t nodes,
			     struct cowfs_trans **tx);
#define inode_update_end(tx, ret) cowfs_trans_end((tx), (ret))
/* An update whose loss in a crash harms nothing, so fsync need not see it (an atime): no
 * barrier to the fsync log, nothing noted for it. */
int inode_update_begin_unlogged(struct inode_tree *it, enum alloc_class cls, uint64_t items,
				struct cowfs_trans **tx);
/* File data (file.c): an update of ino's map over [off, off + len) that may buffer
 * data_bytes of dirty pages; a size change inside one (file_size_update_begin). */
int data_update_begin(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t len,
		      uint64_t data_bytes, enum alloc_class cls, struct cowfs_trans **tx);
int file_size_update_begin(struct inode_tree *it, uint64_t ino, uint64_t size,
			   struct cowfs_trans **tx);
int file_set_size_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			 struct inode *in, uint64_t size);
/*
 * The last name of `ino` is gone (orphan.c): free it, or keep it as an orphan while held or
 * while it has more items than one transaction frees (INODE_DROP_BATCH); such an unheld
 * orphan is freed by inode_orphan_reap once the caller's transaction is over.
 */
int inode_last_link_gone(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino);
int inode_orphan_reap(struct inode_tree *it, uint64_t ino);
/* Items of an inode freed per transaction: bounds what one transaction reserves, so that
 * files of any size can be deleted on a full filesystem. An inode with more items than
 * INODE_DROP_INLINE is freed after its unlink, in batches of up to INODE_DROP_BATCH items,
 * halved while the space to do a batch is not there. */
#define INODE_DROP_INLINE 64
#define INODE_DROP_BATCH 1024
/* Tree blocks that freeing up to `items` items of one inode may allocate (trim.c). */
uint64_t inode_drop_nodes(struct inode_tree *it, uint64_t items);
/*
 * trim.c: in a transaction of its own, free a batch of ino's file extent items from `from` on
 * (a hole), if still(it, ino, arg) says so once the transaction has begun. *more: a batch
 * went; false when fewer than a batch are left (the caller frees those itself).
 */
int file_trim_batch(struct inode_tree *it, uint64_t ino, uint64_t from,
		    bool (*still)(struct inode_tree *it, uint64_t ino, void *arg), void *arg,
		    bool *more);
/* Before a truncate to `size`: if it cuts more than a few extent items, free all but those in
 * batches first, so that the truncate's own transaction stays small. */
int file_shrink_in_batches(struct inode_tree *it, uint64_t ino, uint64_t size);
void inode_ts_get(struct timespec *ts, const struct inode_timespec *d);
void inode_ts_put(struct inode_timespec *d, const struct timespec *ts);
/* The fsync log (fsync_log.c): what an update inside the running transaction changed. */
int log_note_setattr(struct inode_tree *it, uint64_t ino, const struct inode *in, unsigned mask,
		     const struct cowfs_attr *attr);
void log_note_write(struct inode_tree *it, struct icache_entry *e);
/* Page `index` of e is about to change and was in the log, or is new. */
void log_note_page(struct inode_tree *it, struct icache_entry *e, uint64_t index);
/* A flush is writing back pages of e the log does not hold. */
void log_note_flushed(struct inode_tree *it, struct icache_entry *e);
/* Commit: nothing is waiting to be logged any more. */
void log_forget_all(struct inode_tree *it);
/* fsync through the log, fs->lock held: 1 if ino's changes are durable now (logged, or
 * nothing to log), 0 if only a commit can make them so. */
int log_fsync(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino);

/* Write back ino's dirty pages in the running transaction, if it has any (fiemap.c): what
 * reports the file's extents (FIEMAP with sync, space accounting) sees them on disk. */
int file_writeback_dirty(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino);

/* 0 for a regular file, else -EISDIR or -EINVAL (fiemap.c). */
int file_regular_only(const struct inode *in);
/* Reading a file's map under the read lock, or with sync in a transaction after writing its
 * dirty pages back (fiemap.c): FIEMAP and the chunk hashes. */
int file_map_begin(struct inode_tree *it, uint64_t ino, bool sync, struct cowfs_trans **tx,
		   struct inode *in);
int file_map_end(struct inode_tree *it, struct cowfs_trans *tx, int ret);
/* ino's dirty pages from page `first` on, sorted by index, as a malloc'd array (NULL when
 * there are none) (fiemap.c). */
struct dirty_page;
int file_dirty_pages(struct inode_tree *it, uint64_t ino, uint64_t first,
		     struct dirty_page ***out, size_t *n);
/*
 * What file_seg_shared learnt of the last few extents it was asked about (the least recently
 * used is forgotten): a file whose items alternate between two extents each mapped by many
 * of them (what overwriting every other page leaves) would otherwise have the backrefs of
 * each read again at every item.
 */
#define SHARE_MEMOS 4
struct share_memos {
	struct extent_share_memo m[SHARE_MEMOS];
	uint64_t used[SHARE_MEMOS], clock;
};
/*
 * fiemap.c: whether [seg->disk, seg->disk + len) of `seg` (a DATA or PREALLOC piece of ino's
 * map) is shared, as btrfs and xfs mean it (FIEMAP's SHARED, and the chunk hashes'): another
 * file or tree references the extent, or another item of this file maps some of the same
 * bytes (a clone within the file). Two items that are what a punch or an overwrite left of one are not
 * sharing, though each is a reference (extent_shared_beyond has the rule and its proof).
 *
 * That is sharing by references. A snapshot shares the tree's leaves, not their file extent
 * items, so an extent reached through a leaf two trees share still has one reference:
 * file_seg_reached_elsewhere adds that (bt_path_exclusive) for what users are told (FIEMAP's
 * SHARED, chunk fingerprints). In-place writes into preallocated space (inplace.c) need only
 * file_seg_shared: the other tree's item still says unwritten there, and reads zeros whatever
 * the disk holds; the write's conversion to a regular item shadows the leaf, after which the
 * extent has a reference per tree.
 */
struct fmap_seg;
int file_seg_shared(struct inode_tree *it, uint64_t ino, const struct fmap_seg *seg,
		    uint64_t len, struct share_memos *memos, bool *shared);
int file_seg_reached_elsewhere(struct inode_tree *it, uint64_t ino, const struct fmap_seg *seg,
			       uint64_t len, struct share_memos *memos, bool *shared);
void share_memos_release(struct share_memos *memos);

/*
 * inplace.c: the pages of a write that go back in place, into preallocated extents only this
 * file maps (the fallocate promise). A plan holds runs of them, in file order.
 */
struct inplace_run {
	uint64_t first, n;   /* pages [first, first + n) */
	uint64_t disk;       /* where page `first` goes */
};
struct inplace_plan {
	struct inplace_run *v;
	size_t n, cap, at;   /* at: where inplace_disk_of looks first */
};
/* The plan for a write of [off, off + len) of ino, whose icache entry is e (fs->lock held). */
int inplace_plan_write(struct inode_tree *it, struct icache_entry *e, uint64_t ino,
		       uint64_t off, uint64_t len, struct inplace_plan *ip);
/* Where page `index` goes in place, or 0; indexes asked for in increasing order. */
uint64_t inplace_disk_of(struct inplace_plan *ip, uint64_t index, uint32_t ps);
/* The space the write of [off, off + len) needs: *data for pages that go to new space, *map
 * for the pieces of the map of those that go in place; pages already dirty need none. */
void inplace_space_needed(struct inode_tree *it, uint64_t ino, struct inplace_plan *ip,
			  uint64_t off, uint64_t len, uint64_t *data, uint64_t *map);
void inplace_plan_free(struct inplace_plan *ip);
/* Map [off, off + len) (sector aligned, a hole or about to be one) of ino to newly allocated
 * preallocated extents (file.c): fallocate, and clones of preallocated ranges (clone.c). */
int prealloc_map(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t off,
		 uint64_t len, uint64_t *hint, int64_t *nbytes);

#endif
