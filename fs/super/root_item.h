/*
 * The one decoder of root items (docs/FORMAT.md 5.1): the root tree's item for every other
 * tree, saying where its root node is. Opening a tree (fs.c, trees.c), fsck's walk of every
 * tree (fsck.c) and the dump tool read them through here; the commit writes them.
 */
#ifndef COWFS_SUPER_ROOT_ITEM_H
#define COWFS_SUPER_ROOT_ITEM_H

#include <stdint.h>

#include "fs/btree/btree.h"
#include "fs/super/super_format.h"

/* A root item in host byte order: the pointer to a tree's root node. */
struct tree_root {
	uint64_t bytenr;       /* the root node */
	uint64_t generation;   /* its header generation */
	uint8_t level;         /* its level */
};

/*
 * Decode a root item's payload of `len` bytes: exactly 64, a non-zero address and generation
 * (a zero generation would tell the B+tree not to check the node's), a level below
 * BT_MAX_LEVEL, no flags (none are defined) and zero reserved bytes. 0, or -EUCLEAN with
 * nothing in *out to be used. No byte is read unless `len` is right.
 */
int root_item_decode(const void *data, uint32_t len, struct tree_root *out);

/* Tree `id`'s root item in `root_tree`, decoded: 0, -ENOENT, -EUCLEAN (malformed), -EIO. */
int root_item_lookup(struct btree *root_tree, uint64_t id, struct tree_root *out);

#endif
