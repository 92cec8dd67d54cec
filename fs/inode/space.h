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
 * more memory than the mount is allowed.
 */
#ifndef COWFS_INODE_SPACE_H
#define COWFS_INODE_SPACE_H

#include <stdint.h>

#include "fs/inode/inode.h"

struct space_set;

struct space_figures {
	uint64_t files;        /* inodes counted */
	uint64_t extents;      /* distinct data extents referenced */
	uint64_t referenced;   /* bytes the files map (each reference counted; holes not) */
	uint64_t exclusive;    /* disk bytes of extents referenced only from the set */
	uint64_t shared;       /* bytes mapped from extents also referenced from elsewhere */
	uint64_t pinned;       /* disk bytes of exclusive extents no member maps (partial refs) */
};

struct space_set *space_set_new(struct inode_tree *it);
void space_set_free(struct space_set *s);
/* Add inode `ino` (a file, or a directory with all below it). */
int space_set_add(struct space_set *s, uint64_t ino);
int space_set_result(struct space_set *s, struct space_figures *out);

#endif
