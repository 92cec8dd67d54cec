/*
 * The one decoder of the name arrays (FORMAT.md 9-10): a DIR_ITEM holds {dir_entry, name}
 * entries (one per name with that hash), a DIR_INDEX exactly one, an INODE_REF one
 * {inode_ref_entry, name} per link from that parent. The runtime (dir.c) and the namespace
 * checker walk them with these iterators, which validate every entry they return.
 */
#ifndef COWFS_INODE_DIR_ENTRY_H
#define COWFS_INODE_DIR_ENTRY_H

#include <stdint.h>

#include "fs/inode/inode_format.h"

struct dir_entry_view {
	uint64_t child, transid;
	uint8_t type;
	const char *name;        /* into the item; not terminated */
	uint32_t name_len;
	uint32_t off, size;      /* where the entry lies in the item, header included */
};

struct inode_ref_view {
	uint64_t index;          /* the DIR_INDEX offset of the link */
	const char *name;
	uint32_t name_len;
	uint32_t off, size;
};

/*
 * The entry at *off of an array of `len` bytes: 1 with *e filled and *off past it, 0 at the
 * end, or -EUCLEAN if it is malformed (a header cut short, a name empty, longer than
 * INODE_NAME_MAX or past the item), with *why saying which.
 */
int dir_entry_next(const void *item, uint32_t len, uint32_t *off, struct dir_entry_view *e,
		   const char **why);
int inode_ref_next(const void *item, uint32_t len, uint32_t *off, struct inode_ref_view *r,
		   const char **why);

#endif
