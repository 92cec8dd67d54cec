/*
 * Space accounting (space.c): what the data of a set of files and directory trees costs, from
 * the references their file extent items hold and the refcounts the extent tree keeps.
 *
 * A set is built by adding trees (space_set_add: a file, or a directory and everything below
 * it; an inode reached twice, through hard links or by adding overlapping trees, counts once)
 * and then measured (space_set_result). Every data extent a member references falls in one of
 * two classes: all of its references come from the set (exclusive: deleting the set frees the
 * whole extent), or some come from elsewhere (shared). See struct space_figures.
 *
 * Memory: a set keeps one record per file extent item it met (SPACE_RECORD_BYTES) and refuses
 * to grow past the filesystem's cache size (-ENOMEM): the figures for such a set would need
 * more memory than the mount is allowed. The inodes it has visited (a hash set of 8-byte
 * slots at most half full: 16 to 32 bytes an inode) and the directories still to read (8
 * bytes each) count against the same bound. After
 * -ENOMEM the set holds part of what was added: free it.
 *
 * What is measured is what is on disk: space_set_add writes a file's dirty pages back first
 * (in the running transaction, as SEEK_DATA does), since data not written back holds no
 * extent yet. Mappings are read when a file is added, refcounts when the set is measured, and
 * the locks are let go in between (per file, per batch of directory entries): a tree that
 * changes meanwhile gives figures of no single moment. An extent freed since it was recorded
 * then counts for nothing, one with fewer references than the set recorded as exclusive.
 */
#ifndef COWFS_INODE_SPACE_H
#define COWFS_INODE_SPACE_H

#include <stdint.h>

#include "fs/inode/inode.h"

struct space_set;

/* Memory per file extent item recorded (extent start and length, offset in it, bytes mapped). */
#define SPACE_RECORD_BYTES 32

struct space_figures {
	uint64_t files;        /* inodes counted */
	uint64_t extents;      /* distinct data extents referenced */
	uint64_t referenced;   /* bytes the files map (each reference counted; holes not) */
	uint64_t exclusive;    /* disk bytes of extents referenced only from the set */
	uint64_t shared;       /* bytes mapped from extents also referenced from elsewhere */
	uint64_t pinned;       /* disk bytes of exclusive extents no member maps (partial refs) */
};

/* An empty set over tree `it` (NULL: out of memory). */
struct space_set *space_set_new(struct inode_tree *it);
void space_set_free(struct space_set *s);
/* Add inode `ino` (a file, or a directory with all below it; any other inode only counts).
 * An inode already in the set adds nothing. -ENOENT if ino does not exist, -ENOMEM past the
 * memory bound, or what reading the trees returned. */
int space_set_add(struct space_set *s, uint64_t ino);
/* The figures of everything added so far (the set stays as it is: more may be added). */
int space_set_result(struct space_set *s, struct space_figures *out);

#endif
