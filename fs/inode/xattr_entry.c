/* Encoding and decoding the entries of XATTR_ITEM items (xattr_entry.h). */
#include "fs/inode/xattr_entry.h"

#include <string.h>

#include "fs/inode/xattr.h"
#include "fs/lib/endian.h"

/* A spilled entry's record, as xattr_entry_next checks it. */
static int spill_decode(const uint8_t *p, uint32_t len, struct xattr_ref *e)
{
	const struct xattr_spill *s = (const void *)p;

	if (len != sizeof(*s))
		return -1;
	e->value_len = get_le32(&s->value_len);
	e->value_key = get_le64(&s->value_key);
	e->value = NULL;
	if (e->value_len == 0 || e->value_len > XATTR_VALUE_MAX ||
	    e->value_key % XATTR_VALUE_KEY_SPAN)
		return -1;
	return 0;
}

int xattr_entry_next(const uint8_t *buf, uint32_t len, uint32_t *off, struct xattr_ref *e)
{
	const struct xattr_entry *d = (const void *)(buf + *off);
	uint32_t rest, raw_len, stored;

	if (*off == len)
		return 0;
	if (len - *off < sizeof(*d))
		return -1;
	rest = len - *off - (uint32_t)sizeof(*d);
	raw_len = get_le16(&d->name_len);
	stored = get_le16(&d->value_len);
	e->spilled = raw_len & XATTR_ENTRY_SPILLED;
	e->name_len = raw_len & ~XATTR_ENTRY_SPILLED;
	if (e->name_len == 0 || e->name_len > XATTR_NAME_LEN_MAX || rest < e->name_len + stored)
		return -1;
	e->at = *off;
	e->size = (uint32_t)xattr_entry_size(e->name_len, stored);
	e->name = (const char *)buf + *off + sizeof(*d);
	e->value = buf + *off + sizeof(*d) + e->name_len;
	e->value_len = stored;
	e->value_key = 0;
	if (e->spilled && spill_decode(e->value, stored, e) < 0)
		return -1;
	*off += e->size;
	return 1;
}

static uint8_t *header_encode(uint8_t *p, uint16_t raw_len, const char *name, size_t nlen,
			      size_t stored)
{
	struct xattr_entry *d = (void *)p;

	put_le16(&d->name_len, raw_len);
	put_le16(&d->value_len, (uint16_t)stored);
	memcpy(p + sizeof(*d), name, nlen);
	return p + sizeof(*d) + nlen;
}

uint32_t xattr_entry_encode(uint8_t *p, const char *name, size_t nlen, const void *value,
			    size_t vlen)
{
	uint8_t *v = header_encode(p, (uint16_t)nlen, name, nlen, vlen);

	if (vlen)
		memcpy(v, value, vlen);
	return (uint32_t)xattr_entry_size(nlen, vlen);
}

uint32_t xattr_spilled_encode(uint8_t *p, const char *name, size_t nlen, uint32_t value_len,
			      uint64_t value_key)
{
	struct xattr_spill *s = (void *)header_encode(p, (uint16_t)(nlen | XATTR_ENTRY_SPILLED),
						      name, nlen, sizeof(*s));

	put_le32(&s->value_len, value_len);
	put_le64(&s->value_key, value_key);
	return (uint32_t)XATTR_SPILLED_ENTRY_SIZE(nlen);
}
