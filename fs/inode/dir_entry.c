/* Decoding the name arrays of DIR_ITEM, DIR_INDEX and INODE_REF items (dir_entry.h). */
#include "fs/inode/dir_entry.h"

#include <errno.h>

#include "fs/inode/inode.h"
#include "fs/lib/endian.h"

/* The name of an entry whose header of `hdr` bytes, naming `n` bytes, starts at off. */
static int name_fits(uint32_t len, uint32_t off, uint32_t hdr, uint32_t n, const char **why)
{
	if (n == 0 || n > INODE_NAME_MAX || len - off - hdr < n) {
		*why = "bad name length";
		return -EUCLEAN;
	}
	return 0;
}

int dir_entry_next(const void *item, uint32_t len, uint32_t *off, struct dir_entry_view *e,
		   const char **why)
{
	const uint8_t *p = (const uint8_t *)item + *off;
	const struct dir_entry *d = (const void *)p;
	int ret;

	if (*off >= len)
		return 0;
	if (len - *off < sizeof(*d)) {
		*why = "truncated";
		return -EUCLEAN;
	}
	e->name_len = get_le16(&d->name_len);
	ret = name_fits(len, *off, sizeof(*d), e->name_len, why);
	if (ret < 0)
		return ret;
	e->child = get_le64(&d->child);
	e->transid = get_le64(&d->transid);
	e->type = d->type;
	e->name = (const char *)p + sizeof(*d);
	e->off = *off;
	e->size = (uint32_t)sizeof(*d) + e->name_len;
	*off += e->size;
	return 1;
}

int inode_ref_next(const void *item, uint32_t len, uint32_t *off, struct inode_ref_view *r,
		   const char **why)
{
	const uint8_t *p = (const uint8_t *)item + *off;
	const struct inode_ref_entry *d = (const void *)p;
	int ret;

	if (*off >= len)
		return 0;
	if (len - *off < sizeof(*d)) {
		*why = "truncated";
		return -EUCLEAN;
	}
	r->name_len = get_le16(&d->name_len);
	ret = name_fits(len, *off, sizeof(*d), r->name_len, why);
	if (ret < 0)
		return ret;
	r->index = get_le64(&d->index);
	r->name = (const char *)p + sizeof(*d);
	r->off = *off;
	r->size = (uint32_t)sizeof(*d) + r->name_len;
	*off += r->size;
	return 1;
}
