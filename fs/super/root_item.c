/* Decoding root items (root_item.h). */
#include "fs/super/root_item.h"

#include <errno.h>
#include <string.h>

#include "fs/lib/endian.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int root_item_decode(const void *data, uint32_t len, struct tree_root *out)
{
	const struct root_item *ri = data;

	memset(out, 0, sizeof(*out));
	if (len != sizeof(*ri))
		return -EUCLEAN;
	if (get_le64(&ri->flags) != 0 || !all_zero(ri->reserved0, sizeof(ri->reserved0)) ||
	    !all_zero((const uint8_t *)ri->reserved, sizeof(ri->reserved)))
		return -EUCLEAN;
	out->bytenr = get_le64(&ri->bytenr);
	out->generation = get_le64(&ri->generation);
	out->level = ri->level;
	if (out->bytenr == 0 || out->generation == 0 || out->level >= BT_MAX_LEVEL)
		return -EUCLEAN;
	return 0;
}

int root_item_lookup(struct btree *root_tree, uint64_t id, struct tree_root *out)
{
	struct bt_key k = { id, ROOT_ITEM_KEY, 0 };
	struct root_item ri;
	uint32_t len;
	/* A longer item is copied in part, but its length is what the decoder refuses. */
	int ret = bt_lookup(root_tree, &k, &ri, sizeof(ri), &len);

	return ret < 0 ? ret : root_item_decode(&ri, len, out);
}
