/*
 * The namespace checker: the fs-tree half of fsck (fs/super/fsck.h checks blocks and extent
 * references; it may not call this layer, so fsck.cowfs calls both).
 *
 * One forward cursor pass over an fs tree, plus point lookups, verifies:
 *   - every INODE_ITEM decodes (size, version, directory index counter);
 *   - every item of an inode (refs, directory items, file extents) follows that inode's item,
 *     and no item sits below the root's inode number;
 *   - each DIR_ITEM entry: its name hashes to the key offset, it names an existing inode of the
 *     entry's type, and the child has an INODE_REF entry for (that directory, that name);
 *   - each DIR_INDEX item: below the directory's next_index, with a DIR_ITEM entry of the same
 *     name and child, and the child's INODE_REF entry for that name gives that index;
 *   - each INODE_REF entry: its DIR_ITEM entry and its DIR_INDEX item (same child and name);
 *   - link counts: a non-directory's nlink is its number of INODE_REF entries; a directory has
 *     exactly one (the root, inode 256, none) and nlink 2 + its subdirectories; every inode
 *     but the root has a link (else it is unreachable); a non-empty tree has a root directory;
 *   - a symlink's target is one inline extent item at offset 0 whose length is the size.
 * Objectids above INODE_LAST_INO are reserved (orphan items, later) and skipped.
 *
 * Every problem is reported through fs->report ("fs tree T inode I: ...") and counted; the
 * checker never stops at corruption except an unreadable tree, which ends that tree's check
 * as one more problem. Nothing is repaired.
 *
 * Memory: a hash table of small per-inode counters (mode, nlink, links and subdirectories
 * seen), so proportional to the number of inodes in the tree, plus one item at a time.
 *
 * The caller keeps updates out while it runs (fsck opens the image alone).
 */
#ifndef COWFS_INODE_NAMESPACE_CHECK_H
#define COWFS_INODE_NAMESPACE_CHECK_H

#include <stdint.h>

#include "fs/super/fs.h"

struct inode_check_stats {
	uint64_t trees;          /* fs trees checked */
	uint64_t inodes;         /* inode items seen */
	uint64_t dirs;           /* of which directories */
	uint64_t links;          /* INODE_REF entries seen */
	uint64_t problems;       /* each also reported through fs->report */
};

/*
 * Check the namespace of one fs tree, adding to *st (zero it first). Returns 0 if clean,
 * -EUCLEAN if this tree has problems, or another negative errno if the check could not run.
 */
int inode_check_tree(struct cowfs *fs, struct cowfs_root *root, struct inode_check_stats *st);

/*
 * The same for every fs tree: each root item with id FS_TREE_ID or >= 256 (snapshots and
 * subvolumes). Zeroes *st first. Returns 0, -EUCLEAN if any tree has problems, or another
 * negative errno.
 */
int inode_check_all(struct cowfs *fs, struct inode_check_stats *st);

#endif
