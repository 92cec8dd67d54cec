/*
 * The filesystem checker: everything fsck.cowfs verifies about blocks and references, as a
 * library function so the tests use the same oracle (the namespace is fs/inode's:
 * namespace_check.h).
 *
 * This level knows which trees there are: the root tree and every tree a root item names
 * (a malformed root item is a problem). It hands each to the extent layer's reference checker
 * (fs/extent/ref_check.h), which reads every node reachable from them (each verified as it is
 * read: checksum, fsid, address, generation, level, structure), checks each tree's structural
 * invariants, and recomputes from what it reached the exact reference count and backrefs
 * every extent must have: one reference per pointer from a distinct reachable node (keyed by
 * that node's owner) or per tree root (keyed by the tree id), and one per file extent item in
 * a distinct reachable leaf (keyed by the leaf's owner, the inode and the file offset). That
 * is compared with the extent tree item by item: counts, kinds, levels, every backref; extents
 * nobody references (leaks); referenced extents with no item; overlapping extents; extents
 * outside the filesystem or over a superblock copy; and the checksum tree against the data
 * extents. Last, this level checks the superblock's used-bytes figure.
 *
 * Memory: proportional to the number of extents (the recomputed table), which fsck needs.
 */
#ifndef COWFS_SUPER_FSCK_H
#define COWFS_SUPER_FSCK_H

#include <stdint.h>

#include "fs/extent/ref_check.h"
#include "fs/super/fs.h"
#include "fs/super/subvol.h"

struct cowfs_check_stats {
	uint64_t trees;          /* trees walked, the root tree included */
	uint64_t tree_blocks;    /* distinct reachable nodes */
	uint64_t data_extents;   /* distinct referenced data extents */
	uint64_t extent_items;   /* items in the extent tree */
	uint64_t bytes_used;     /* recomputed */
	uint64_t problems;       /* each also reported through fs->report */
	uint64_t queued;         /* repairs queued (cowfs_check_repair) */
	uint64_t unfixable;      /* problems repair cannot fix */
};

/*
 * Progress for long checks (may be NULL): called now and then and at the end of each pass
 * with the pass and how far it is (struct ref_check_progress: passes 1-3 are the tree walk,
 * the extent tree comparison and the checksum tree, in that order).
 */
typedef ref_check_progress_fn cowfs_check_progress_fn;

/*
 * Check the filesystem. Returns 0 if clean, -EUCLEAN if problems were found (st->problems,
 * each reported), or another negative errno if the check itself could not run (-ENOMEM).
 */
int cowfs_check(struct cowfs *fs, struct cowfs_check_stats *st,
		cowfs_check_progress_fn progress, void *progress_arg);

/*
 * The same check, queueing a correction for every reference problem it can fix (a wrong
 * count, a missing or extra backref, a leaked extent, a referenced extent with no item)
 * through the extent layer's reference path (ref_check.h says which call fixes what): the
 * next cowfs_commit() applies them like any other change, and rewrites the superblock's
 * figures. Problems it cannot fix (unreadable nodes, broken tree structure, extents of the
 * wrong kind or length) are counted in st->unfixable; from the first of them on, nothing more
 * is queued. Needs a writable filesystem.
 */
int cowfs_check_repair(struct cowfs *fs, struct cowfs_check_stats *st,
		       cowfs_check_progress_fn progress, void *progress_arg);

/*
 * The oracle for cowfs_subvol_space (subvol.h): the same figures for subvolumes ids[0..n)
 * together, recomputed by brute force (fs/extent/exclusive.h: extent_exclusive_recount) over
 * every fs tree of the image (the top level and every subvolume with a root item or open, those
 * being deleted included), without looking at a reference count. `referenced` is always
 * filled in. Call with fs->lock held. 0, -ENOENT (an id that is no fs tree), -ENOMEM, -EIO,
 * -EUCLEAN (reported).
 */
int cowfs_subvol_space_recount(struct cowfs *fs, const uint64_t *ids, size_t n,
			       struct subvol_space *out);

#endif
