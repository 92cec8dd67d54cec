/*
 * A regular file's extent map (fs/inode only): its file extent items, (ino, EXTENT_DATA_KEY,
 * file offset) -> struct file_extent_item, sorted and never overlapping; ranges without an
 * item are holes. Every item starts and ends on a sector boundary (the last one may reach
 * past end of file up to the end of its sector, and preallocated ones further).
 *
 * Items reference their data extent through the B+tree's item hook (fs/extent): inserting
 * one adds a reference, deleting one drops it, so editing the map here is all it takes to
 * keep refcounts exact.
 */
#ifndef COWFS_INODE_FMAP_H
#define COWFS_INODE_FMAP_H

#include <stdint.h>

#include "fs/extent/extent_format.h"
#include "fs/inode/inode.h"

enum fmap_kind { FMAP_HOLE, FMAP_DATA, FMAP_PREALLOC };

/* One piece of the map: [off, off + len) of the file. */
struct fmap_seg {
	uint64_t off, len;
	enum fmap_kind kind;
	uint64_t disk;                    /* DATA, PREALLOC: disk address of `off` */
	uint64_t extent_start, extent_len;   /* DATA, PREALLOC: the whole disk extent */
};

/*
 * The piece containing `off`, cut at `end` (> off): the item covering off, or the hole up to
 * the next item. A malformed item is -EUCLEAN (reported).
 */
int fmap_lookup(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t end,
		struct fmap_seg *seg);

/*
 * Make [off, off + len) (sector aligned; len may run to UINT64_MAX - off) map to `fe` (a
 * REG or PREALLOC item covering exactly len bytes), or be a hole when fe is NULL. Items that
 * overlap the range are cut. *nbytes_delta gets the change in bytes the file references.
 */
int fmap_replace(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t off,
		 uint64_t len, const struct file_extent_item *fe, int64_t *nbytes_delta);

/* Tree blocks an fmap_replace over [off, off + len) may need (for cowfs_reserve). */
int fmap_cost(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t len,
	      uint64_t *nodes);

/* Bytes of [off, off + len) mapped by PREALLOC items. */
int fmap_prealloc_bytes(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t len,
			uint64_t *bytes);

/* A REG (disk != 0) or PREALLOC item for a new extent of `len` bytes at `disk`. */
void fmap_new_item(struct file_extent_item *fe, uint8_t type, uint64_t transid, uint64_t disk,
		   uint64_t len);
/* A REG or PREALLOC item mapping `len` bytes from disk address `disk` of the existing extent
 * [extent_start, extent_start + extent_len). */
void fmap_extent_item(struct file_extent_item *fe, uint8_t type, uint64_t transid,
		      uint64_t extent_start, uint64_t extent_len, uint64_t disk, uint64_t len);

/* Write back every inode's dirty pages (cowfs's before_commit hook; arg: the inode_tree). */
int inode_writeback_all(void *arg, struct cowfs_trans *tx);
/* Write every dirty page of `it` back into tx, inside an update (a snapshot's: its clone then
 * holds the data); the fsync log is left as it is. */
int inode_writeback_tree(struct cowfs_trans *tx, struct inode_tree *it);
/* The same between commits, letting the lock go for the data I/O (cowfs's flush hook). */
int inode_flush(void *arg, struct cowfs_trans *tx);
struct icache_entry;
/* Write back e's dirty pages now, in the running transaction (e may be gone afterwards). A
 * failure fails the transaction. */
int inode_writeback_one(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e);

#endif
