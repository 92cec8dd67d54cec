/*
 * On-disk items of the extent tree, and the part of a file extent item that references a
 * data extent. docs/FORMAT.md section 6 describes the same bytes.
 *
 * For every allocated extent, data or tree block:
 *   (start, EXTENT_ITEM, length)            struct extent_item: total refcount, generation, kind
 * and one backref item per key that holds references to it:
 *   (start, TREE_BLOCK_REF, owner)          le64 count: references from nodes owned by `owner`
 *                                           (or from tree `owner`'s root pointer)
 *   (start, EXTENT_DATA_REF, hash(o, i, f)) array of struct extent_data_ref: references from
 *                                           file extent items of inode i at file offset f in
 *                                           leaves owned by o; an array so that hash collisions
 *                                           share one item
 * The sum of all backref counts of an extent equals its refcount (fsck checks it).
 */
#ifndef COWFS_EXTENT_FORMAT_H
#define COWFS_EXTENT_FORMAT_H

#include <stdint.h>

#include "fs/btree/key.h"
#include "fs/lib/compiler.h"

/* Key types of the extent tree. */
#define EXTENT_ITEM_KEY      168
#define TREE_BLOCK_REF_KEY   176
#define EXTENT_DATA_REF_KEY  178

/* Key type of a file extent item in an fs tree: (inode, EXTENT_DATA_KEY, file offset). */
#define EXTENT_DATA_KEY      108

#define EXTENT_FLAG_DATA       0x1ull
#define EXTENT_FLAG_TREE_BLOCK 0x2ull

struct extent_item {
	uint64_t refs;
	uint64_t generation;  /* transaction that allocated the extent */
	uint64_t flags;       /* EXTENT_FLAG_DATA or EXTENT_FLAG_TREE_BLOCK */
	uint8_t level;        /* tree blocks: the node's level; data: 0 */
	uint8_t reserved[7];
} __packed;
STATIC_ASSERT(sizeof(struct extent_item) == 32, "extent item is 32 bytes");

struct extent_data_ref {
	uint64_t owner;       /* owner of the leaf holding the file extent item */
	uint64_t inode;
	uint64_t offset;      /* file offset (the file extent item's key offset) */
	uint64_t count;
} __packed;
STATIC_ASSERT(sizeof(struct extent_data_ref) == 32, "data backref entry is 32 bytes");

/* File extent item payload (fs/inode writes these; the extent layer reads the reference). */
#define FILE_EXTENT_INLINE   0
#define FILE_EXTENT_REG      1
#define FILE_EXTENT_PREALLOC 2

struct file_extent_item {
	uint64_t generation;
	uint64_t ram_bytes;       /* bytes of the whole extent's data */
	uint8_t type;             /* FILE_EXTENT_* */
	uint8_t compression;      /* 0: none */
	uint8_t reserved[6];
	/* Only for REG and PREALLOC; an INLINE item's data follows the first 24 bytes. */
	uint64_t disk_bytenr;     /* 0: a hole */
	uint64_t disk_num_bytes;  /* the extent's length on disk */
	uint64_t offset;          /* where in the extent this item's bytes start */
	uint64_t num_bytes;       /* bytes of file this item covers */
} __packed;
STATIC_ASSERT(sizeof(struct file_extent_item) == 56, "file extent item is 56 bytes");
#define FILE_EXTENT_INLINE_HEADER 24

/* Hash of a data backref's identity (XXH3 of the three little-endian u64s). */
uint64_t extent_data_ref_hash(uint64_t owner, uint64_t inode, uint64_t offset);

#endif
