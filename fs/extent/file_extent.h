/*
 * The one decoder of file extent items (docs/FORMAT.md 7), for everything that reads them:
 * the extent layer (the reference an item holds: the B+tree's item hook, the reference
 * checker), fs/inode (the file range it maps, a symlink's target, the namespace checker) and
 * the dump tool. Writers are fs/inode's (fmap.c, namei.c).
 *
 * Decoding checks the item's own bytes; whether the range it maps is valid for a regular file
 * needs its key and the sector size (file_extent_check_range). The two are apart because a
 * reference is counted from any well-formed item, as the B+tree's hook counts it on insert,
 * whatever range the item maps: a range out of bounds is the file's problem, not the
 * extent's.
 */
#ifndef COWFS_EXTENT_FILE_EXTENT_H
#define COWFS_EXTENT_FILE_EXTENT_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/btree/key.h"
#include "fs/extent/extent_format.h"

/* A file extent item in host byte order. */
struct file_extent {
	uint64_t generation;        /* transaction that wrote the data */
	uint64_t ram_bytes;         /* bytes of the whole extent's data */
	uint8_t type;               /* FILE_EXTENT_INLINE, _REG or _PREALLOC */
	/* INLINE: the bytes after the header, pointing into the decoded payload. */
	const void *inline_data;
	uint32_t inline_len;
	/* REG and PREALLOC (zero for INLINE). */
	uint64_t disk_bytenr;       /* start of the data extent; 0: a hole */
	uint64_t disk_num_bytes;    /* its length */
	uint64_t offset;            /* where in the extent the item's bytes start */
	uint64_t num_bytes;         /* bytes of file the item covers */
};

/*
 * Decode a file extent item's payload of `len` bytes, checking its form: the 24-byte header
 * at least, a known type, compression 0 (the only one there is) and zero reserved bytes; a
 * REG or PREALLOC item exactly 56 bytes, and if it references an extent (disk_bytenr != 0),
 * one of non-zero length that does not wrap around the address space. 0, or -EUCLEAN with
 * nothing in *out to be used.
 */
int file_extent_decode(const void *data, uint32_t len, struct file_extent *out);

/* Whether a decoded item holds a reference to a data extent (REG or PREALLOC, not a hole). */
static inline bool file_extent_refers(const struct file_extent *fe)
{
	return fe->type != FILE_EXTENT_INLINE && fe->disk_bytenr != 0;
}

/*
 * FORMAT.md 7.1's rules for a regular file's REG or PREALLOC item at `file_offset` (its key
 * offset): it covers a non-empty range of whole sectors from a sector boundary that does not
 * wrap; its `offset` is sector aligned; and unless it is a hole, [offset, offset + num_bytes)
 * lies inside its extent. 0, or -EUCLEAN (an INLINE item too: it maps no range).
 */
int file_extent_check_range(const struct file_extent *fe, uint64_t file_offset,
			    uint32_t sectorsize);

/*
 * The data extent an item with this key and payload references, if any: 1 with *start and
 * *disk_len set; 0 if it references none (not a file extent item, inline, a hole); -EUCLEAN
 * if it is a malformed file extent item.
 */
int file_extent_target(const struct bt_key *key, const void *data, uint32_t len,
		       uint64_t *start, uint64_t *disk_len);

#endif
