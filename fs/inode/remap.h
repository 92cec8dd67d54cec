/*
 * Sharing extents between files, inside fs/inode (clone.c, dedupe.c): the kernel's remap
 * rules, the transaction a remap runs in, and the remap itself. Not part of the interface.
 */
#ifndef COWFS_INODE_REMAP_H
#define COWFS_INODE_REMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/inode/inode.h"
#include "fs/super/trans.h"

/* What a remap of [off_in, ...) of `in` onto [off_out, ...) of `out` does, once checked. */
struct remap_plan {
	uint64_t len;        /* bytes remapped (0: nothing to do) */
	uint64_t span;       /* what the maps change: len, or up to the end of the source's
			      * last sector when len ends at the source's end of file */
	uint64_t in_size, out_size;   /* the sizes the plan was made for */
};

/*
 * The checks of Linux's generic_remap_file_range_prep / generic_remap_checks /
 * generic_remap_check_len (fs/remap_range.c), for a clone (dedupe false: no shortening) or
 * a dedupe (both ranges within end of file, the length cut to whole sectors unless both
 * ranges end at both files' ends). The _locked form with fs->lock held.
 */
int remap_plan_locked(struct inode_tree *it_in, uint64_t in, uint64_t off_in,
		      struct inode_tree *it_out, uint64_t out, uint64_t off_out, uint64_t len,
		      bool dedupe, struct remap_plan *p);
int remap_plan(struct inode_tree *it_in, uint64_t in, uint64_t off_in, struct inode_tree *it_out,
	       uint64_t out, uint64_t off_out, uint64_t len, bool dedupe, struct remap_plan *p);
/* Under the lock again: -EAGAIN if a size changed since `p` was made (start over). */
int remap_plan_still(struct inode_tree *it_in, uint64_t in, uint64_t off_in,
		     struct inode_tree *it_out, uint64_t out, uint64_t off_out, uint64_t len,
		     bool dedupe, const struct remap_plan *p);

/* Begin the update of a remap of `span` bytes: the running transaction, with the space for
 * out's map edits and in's items reserved. Holds the lock on success. The two trees may
 * differ (subvolumes of one filesystem): `in` is read in it_in, `out` changed in it_out. */
int remap_begin(struct inode_tree *it_in, uint64_t in, uint64_t off_in, struct inode_tree *it_out,
		uint64_t out, uint64_t off_out, uint64_t span, struct cowfs_trans **tx);
/* 0 if ino has no dirty pages; else write them back in tx and -EAGAIN: the space reserved
 * for the remap went to them, so the caller ends the update and starts over. */
int remap_write_back(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino);
/*
 * Make [off_out, off_out + span) of `out` (sector aligned) map what [off_in, ...) of `in`
 * maps: out's dirty pages there go, its size grows to at least `grow_to`; `touch`: mtime and
 * ctime change (a clone; a dedupe changes no content).
 */
int remap_locked(struct cowfs_trans *tx, struct inode_tree *it_in, uint64_t in, uint64_t off_in,
		 struct inode_tree *it_out, uint64_t out, uint64_t off_out, uint64_t span,
		 uint64_t grow_to, bool touch);

/* share_stats.c: counters (atomic adds) and the reflink switch. */
void share_stat_add(uint64_t *counter, uint64_t n);
bool file_reflink_on(struct inode_tree *it);

/* file.c: read [off, off + len) with fs->lock held (from disk when needed, checksums
 * verified): bytes read, short at end of file, or a negative errno. */
ssize_t file_read_locked(struct inode_tree *it, uint64_t ino, void *buf, size_t len,
			 uint64_t off);

#endif
