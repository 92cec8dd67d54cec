/*
 * The one decoder of XATTR_ITEM entry arrays (FORMAT.md 12, fs/inode/xattr_format.h): the
 * runtime (xattr.c, acl.c), the namespace checker and cowfs dump walk them with
 * xattr_entry_next, which validates every entry it returns, spilled ones included.
 */
#ifndef COWFS_INODE_XATTR_ENTRY_H
#define COWFS_INODE_XATTR_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/inode/xattr_format.h"

/* One entry of an xattr item, pointing into the item's bytes. */
struct xattr_ref {
	const char *name;
	const uint8_t *value;     /* the value's bytes; NULL when spilled */
	uint32_t name_len;
	uint32_t value_len;       /* the value's length, in the item or in its pieces */
	bool spilled;             /* the value is in XATTR_VALUE pieces from value_key on */
	uint64_t value_key;
	uint32_t at, size;        /* where the entry starts in the item, and its bytes in all */
};

/* The entry at *off of an item of `len` bytes; *off moves past it. 1: got one, 0: end of the
 * item, -1: malformed (cut short, a name of no or more than 255 bytes, unknown flag bits, a
 * spilled entry whose spill record is not 12 bytes, has no bytes or more than
 * XATTR_VALUE_MAX, or a value key off its span's start). */
int xattr_entry_next(const uint8_t *buf, uint32_t len, uint32_t *off, struct xattr_ref *e);

/* Bytes of an entry in its item: inline with a value of `vlen` bytes, or spilled. */
static inline size_t xattr_entry_size(size_t nlen, size_t vlen)
{
	return sizeof(struct xattr_entry) + nlen + vlen;
}
#define XATTR_SPILLED_ENTRY_SIZE(nlen) xattr_entry_size((nlen), sizeof(struct xattr_spill))

/* Write an entry at `p`; returns its size. */
uint32_t xattr_entry_encode(uint8_t *p, const char *name, size_t nlen, const void *value,
			    size_t vlen);
uint32_t xattr_spilled_encode(uint8_t *p, const char *name, size_t nlen, uint32_t value_len,
			      uint64_t value_key);

#endif
