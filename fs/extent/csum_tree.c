/*
 * The checksum tree: see csum.h.
 */
#include "fs/extent/csum_tree.h"

#include <errno.h>
#include <stdlib.h>

#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

static int corrupt(struct extents *x, uint64_t bytenr, const char *msg)
{
	if (x->fs->report)
		x->fs->report(x->fs->report_arg, bytenr, msg);
	return -EUCLEAN;
}

uint64_t csum_sector(const void *data, uint32_t sectorsize)
{
	return cowfs_csum(data, sectorsize);
}

/* Sectors one item may hold. */
static uint64_t item_sectors_max(const struct extents *x)
{
	return bt_max_item_size(x->fs->nodesize) / sizeof(uint64_t);
}

int csum_insert(struct extents *x, struct bt_trans *tx, uint64_t bytenr, const uint64_t *csums,
		uint64_t nsectors)
{
	uint64_t per_item = item_sectors_max(x), done = 0;
	uint64_t *buf = malloc(MIN(per_item, nsectors) * sizeof(uint64_t));
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (done < nsectors && ret == 0) {
		uint64_t n = MIN(per_item, nsectors - done);
		struct bt_key k = { CSUM_OBJECTID, EXTENT_CSUM_KEY,
				    bytenr + done * x->sectorsize };
		for (uint64_t i = 0; i < n; i++)
			put_le64(&buf[i], csums[done + i]);
		ret = bt_insert(tx, x->csum_tree, &k, buf, (uint32_t)(n * sizeof(uint64_t)));
		done += n;
	}
	free(buf);
	return ret;
}

/* Copy the sectors of item (start, len bytes of checksums) that fall in [*pos, end). */
static int take_item(struct extents *x, uint64_t start, const void *data, uint32_t len,
		     uint64_t *pos, uint64_t end, uint64_t bytenr, uint64_t *out)
{
	uint64_t ss = x->sectorsize;

	if (len == 0 || len % sizeof(uint64_t) || start % ss)
		return corrupt(x, start, "malformed checksum item");
	uint64_t item_end = start + len / sizeof(uint64_t) * ss;
	if (start > *pos || item_end <= *pos)
		return corrupt(x, *pos, "data sector without a checksum");
	while (*pos < end && *pos < item_end) {
		out[(*pos - bytenr) / ss] = get_le64((const uint8_t *)data +
						     (*pos - start) / ss * sizeof(uint64_t));
		*pos += ss;
	}
	return 0;
}

int csum_lookup(struct extents *x, uint64_t bytenr, uint64_t nsectors, uint64_t *out)
{
	struct bt_key from = { CSUM_OBJECTID, EXTENT_CSUM_KEY, bytenr }, k;
	uint64_t pos = bytenr, end = bytenr + nsectors * x->sectorsize;
	struct bt_cursor c;
	const void *data;
	uint32_t len;
	int ret;

	bt_cursor_init(&c, x->csum_tree);
	ret = bt_cursor_seek(&c, &from, BT_SEEK_LE);
	while (ret == 0 && pos < end) {
		bt_cursor_item(&c, &k, &data, &len);
		if (k.objectid != CSUM_OBJECTID || k.type != EXTENT_CSUM_KEY) {
			ret = -ENOENT;
			break;
		}
		ret = take_item(x, k.offset, data, len, &pos, end, bytenr, out);
		if (ret == 0 && pos < end)
			ret = bt_cursor_next(&c);
	}
	bt_cursor_release(&c);
	if (ret == -ENOENT)
		return corrupt(x, pos, "data sector without a checksum");
	return ret;
}

int csum_delete(struct extents *x, struct bt_trans *tx, uint64_t bytenr, uint64_t len)
{
	struct bt_key from = { CSUM_OBJECTID, EXTENT_CSUM_KEY, bytenr };
	struct bt_cursor c;
	int ret;

	bt_cursor_init(&c, x->csum_tree);
	for (;;) {
		struct bt_key k;
		ret = bt_cursor_seek(&c, &from, BT_SEEK_GE);
		if (ret < 0)
			break;
		bt_cursor_item(&c, &k, NULL, NULL);
		bt_cursor_release(&c);
		if (k.objectid != CSUM_OBJECTID || k.type != EXTENT_CSUM_KEY ||
		    k.offset >= bytenr + len)
			break;
		ret = bt_delete(tx, x->csum_tree, &k);
		if (ret < 0)
			break;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}
