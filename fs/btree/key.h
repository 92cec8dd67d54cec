/*
 * B+tree keys: (objectid u64, type u8, offset u64), ordered by objectid, then type, then offset.
 * On disk a key is 17 packed little-endian bytes (struct bt_disk_key, docs/FORMAT.md).
 */
#ifndef COWFS_BTREE_KEY_H
#define COWFS_BTREE_KEY_H

#include <stdint.h>

#include "fs/lib/compiler.h"
#include "fs/lib/endian.h"

struct bt_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
};

struct bt_disk_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
} __packed;
STATIC_ASSERT(sizeof(struct bt_disk_key) == 17, "disk key is 17 bytes");

#define BT_KEY_MIN ((struct bt_key){ 0, 0, 0 })
#define BT_KEY_MAX ((struct bt_key){ UINT64_MAX, UINT8_MAX, UINT64_MAX })

static inline int bt_key_cmp(const struct bt_key *a, const struct bt_key *b)
{
	if (a->objectid != b->objectid)
		return a->objectid < b->objectid ? -1 : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}

static inline void bt_key_from_disk(struct bt_key *k, const struct bt_disk_key *d)
{
	k->objectid = get_le64(&d->objectid);
	k->type = d->type;
	k->offset = get_le64(&d->offset);
}

static inline void bt_key_to_disk(struct bt_disk_key *d, const struct bt_key *k)
{
	put_le64(&d->objectid, k->objectid);
	d->type = k->type;
	put_le64(&d->offset, k->offset);
}

/* Compare an in-memory key with an on-disk one without converting the whole key. */
static inline int bt_key_cmp_disk(const struct bt_key *a, const struct bt_disk_key *d)
{
	uint64_t o = get_le64(&d->objectid);
	if (a->objectid != o)
		return a->objectid < o ? -1 : 1;
	if (a->type != d->type)
		return a->type < d->type ? -1 : 1;
	o = get_le64(&d->offset);
	if (a->offset != o)
		return a->offset < o ? -1 : 1;
	return 0;
}

#endif
