/*
 * On-disk items of an fs tree that describe inodes and directories. docs/FORMAT.md sections
 * 8-11 describe the same bytes. All integers little-endian, every structure packed.
 *
 *   (ino, INODE_ITEM, 0)          struct inode_item
 *   (ino, INODE_REF, parent)      array of {struct inode_ref_entry, name}: one per link of
 *                                 ino in directory `parent`
 *   (dir, DIR_ITEM, name hash)    array of {struct dir_entry, name}: more than one only when
 *                                 names collide (hash = XXH3-64 of the name bytes)
 *   (dir, DIR_INDEX, index)       one {struct dir_entry, name}: readdir order
 *   (ino, EXTENT_DATA, offset)    file extent items (fs/extent/extent_format.h); a symlink's
 *                                 target is one inline item at offset 0
 *   (ORPHAN_OBJECTID, ORPHAN_ITEM_KEY, ino)  inode ino is an orphan (below)
 */
#ifndef COWFS_INODE_FORMAT_H
#define COWFS_INODE_FORMAT_H

#include <stdint.h>

#include "fs/lib/compiler.h"

#define INODE_ITEM_KEY  1
#define INODE_REF_KEY   12
#define DIR_ITEM_KEY    84
#define DIR_INDEX_KEY   96

/* The root directory of every fs tree, and the first inode number handed out after it. */
#define INODE_ROOT_INO      256ull
/* Objectids from here up are reserved for special items (orphans, later): never inodes. */
#define INODE_LAST_INO      ((1ull << 63) - 1)
/* The highest inode number handed out: the FUSE server keeps the subvolume in the 16 bits
 * above (fuse/attr.c), so that st_ino is unique across subvolumes. */
#define INODE_MAX_INO       ((1ull << 48) - 1)

/*
 * (ORPHAN_OBJECTID, ORPHAN_ITEM_KEY, ino), no payload: inode `ino` has no names left but was
 * still in use; it is freed when the last user lets go, or at the next mount.
 */
#define ORPHAN_OBJECTID     0xfffffffffffffffbull   /* (u64)-5 */
#define ORPHAN_ITEM_KEY     48

/* A dir_entry type bit: the entry is a subvolume (child = its id, in the root tree's
 * ROOT_REF/ROOT_BACKREF), not an inode of this tree; the rest of type is DT_DIR. */
#define DIR_ENTRY_SUBVOL    0x80u

/* Directory indexes 0 and 1 are "." and ".."; real entries start here. */
#define DIR_FIRST_INDEX     2ull

#define INODE_ITEM_VERSION  1

struct inode_timespec {
	uint64_t sec;
	uint32_t nsec;
} __packed;
STATIC_ASSERT(sizeof(struct inode_timespec) == 12, "timestamp is 12 bytes");

struct inode_item {
	uint8_t version;          /* INODE_ITEM_VERSION */
	uint8_t reserved0[7];
	uint64_t generation;      /* transaction that created the inode */
	uint64_t size;
	uint64_t nbytes;          /* bytes of data extents and inline data it references */
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint32_t mode;            /* S_IFMT type bits and permission bits, as stat(2) */
	uint64_t rdev;
	uint64_t flags;           /* none defined */
	uint64_t next_index;      /* directories: DIR_INDEX offset of the next entry */
	struct inode_timespec atime, mtime, ctime, otime;
	uint8_t reserved[40];
} __packed;
STATIC_ASSERT(sizeof(struct inode_item) == 160, "inode item is 160 bytes");

struct inode_ref_entry {
	uint64_t index;           /* the DIR_INDEX offset of this link in the parent */
	uint16_t name_len;
	/* name bytes follow */
} __packed;
STATIC_ASSERT(sizeof(struct inode_ref_entry) == 10, "inode ref entry header is 10 bytes");

struct dir_entry {
	uint64_t child;           /* inode number */
	uint8_t type;             /* DT_* of the child */
	uint64_t transid;         /* transaction that made the entry */
	uint16_t name_len;
	/* name bytes follow */
} __packed;
STATIC_ASSERT(sizeof(struct dir_entry) == 19, "dir entry header is 19 bytes");

#endif
