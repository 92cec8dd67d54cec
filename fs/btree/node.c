/*
 * B+tree node layout: accessors, primitive edits and verification of one node in memory.
 * Knows nothing of trees, paths or transactions; see node.h for the layout.
 */
#include "fs/btree/node.h"

#include <assert.h>

#include "fs/lib/csum.h"

uint32_t leaf_free_space(const struct cblock *b, uint32_t nodesize)
{
	uint32_t n = node_nritems(b);
	uint32_t data_start = n ? leaf_item_offset(b, n - 1) : nodesize;

	return data_start - BT_HDR - n * BT_ITEM;
}

uint32_t leaf_bytes(const struct cblock *b, uint32_t from, uint32_t to)
{
	if (from >= to)
		return 0;
	/* Payloads of a run of items are contiguous: from the last one's start to the first's end. */
	uint32_t end = from == 0 ? leaf_item_offset(b, 0) + leaf_item_size(b, 0)
				 : leaf_item_offset(b, from - 1);
	return (to - from) * BT_ITEM + end - leaf_item_offset(b, to - 1);
}

void node_first_key(const struct cblock *b, struct bt_key *k)
{
	bt_key_from_disk(k, node_disk_key(b, 0));
}

int node_search(const struct cblock *b, const struct bt_key *key, uint32_t *slot)
{
	uint32_t lo = 0, hi = node_nritems(b);
	const char *base = (const char *)b->data + BT_HDR;
	uint32_t stride = node_level(b) ? BT_PTR : BT_ITEM;

	/* Lower bound: first entry >= key. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = bt_key_cmp_disk(key, (const struct bt_disk_key *)(base + mid * stride));
		if (c > 0)
			lo = mid + 1;
		else if (c < 0)
			hi = mid;
		else {
			*slot = mid;
			return 0;
		}
	}
	if (node_level(b) == 0) {
		*slot = lo;
		return 1;
	}
	*slot = lo ? lo - 1 : 0;
	return 1;
}

void leaf_insert_gap(struct cblock *b, uint32_t nodesize, uint32_t slot,
		     const struct bt_key *key, uint32_t size)
{
	uint32_t n = node_nritems(b);
	uint32_t data_end = leaf_data_end(b, slot, nodesize);

	assert(slot <= n && leaf_free_space(b, nodesize) >= size + BT_ITEM);
	if (slot < n) {
		/* Payloads of items slot..n-1 move down by `size` to open the gap at data_end. */
		uint32_t lo = leaf_item_offset(b, n - 1);
		char *d = b->data;
		memmove(d + lo - size, d + lo, data_end - lo);
		for (uint32_t i = slot; i < n; i++)
			put_le32(&leaf_item(b, i)->offset, leaf_item_offset(b, i) - size);
		memmove(leaf_item(b, slot + 1), leaf_item(b, slot), (n - slot) * BT_ITEM);
	}
	struct bt_item *it = leaf_item(b, slot);
	bt_key_to_disk(&it->key, key);
	put_le32(&it->offset, data_end - size);
	put_le32(&it->size, size);
	node_set_nritems(b, n + 1);
}

void leaf_delete_items(struct cblock *b, uint32_t nodesize, uint32_t slot, uint32_t count)
{
	uint32_t n = node_nritems(b);

	assert(count && slot + count <= n);
	uint32_t gap = leaf_data_end(b, slot, nodesize) - leaf_item_offset(b, slot + count - 1);
	if (slot + count < n) {
		uint32_t lo = leaf_item_offset(b, n - 1);
		uint32_t hi = leaf_item_offset(b, slot + count - 1);
		char *d = b->data;
		memmove(d + lo + gap, d + lo, hi - lo);
		for (uint32_t i = slot + count; i < n; i++)
			put_le32(&leaf_item(b, i)->offset, leaf_item_offset(b, i) + gap);
		memmove(leaf_item(b, slot), leaf_item(b, slot + count), (n - slot - count) * BT_ITEM);
	}
	node_set_nritems(b, n - count);
}

void leaf_resize_item(struct cblock *b, uint32_t nodesize, uint32_t slot, uint32_t newsize)
{
	uint32_t n = node_nritems(b);
	uint32_t old = leaf_item_size(b, slot);
	uint32_t lo = leaf_item_offset(b, n - 1);
	uint32_t tail = leaf_item_offset(b, slot) + old;  /* end of the item's payload */
	char *d = b->data;

	(void)nodesize;
	if (newsize == old)
		return;
	if (newsize > old) {
		uint32_t grow = newsize - old;
		assert(leaf_free_space(b, nodesize) >= grow);
		memmove(d + lo - grow, d + lo, tail - lo);
		memset(d + tail - grow, 0, grow);
		for (uint32_t i = slot; i < n; i++)
			put_le32(&leaf_item(b, i)->offset, leaf_item_offset(b, i) - grow);
	} else {
		uint32_t cut = old - newsize;
		memmove(d + lo + cut, d + lo, tail - cut - lo);
		for (uint32_t i = slot; i < n; i++)
			put_le32(&leaf_item(b, i)->offset, leaf_item_offset(b, i) + cut);
	}
	put_le32(&leaf_item(b, slot)->size, newsize);
}

void leaf_move_tail(struct cblock *dst, struct cblock *src, uint32_t nodesize, uint32_t from)
{
	uint32_t n = node_nritems(src), dn = node_nritems(dst);

	if (from >= n)
		return;
	uint32_t count = n - from;
	uint32_t src_hi = leaf_data_end(src, from, nodesize);
	uint32_t src_lo = leaf_item_offset(src, n - 1);
	uint32_t dst_hi = dn ? leaf_item_offset(dst, dn - 1) : nodesize;
	uint32_t len = src_hi - src_lo;

	assert(leaf_free_space(dst, nodesize) >= len + count * BT_ITEM);
	memcpy((char *)dst->data + dst_hi - len, (char *)src->data + src_lo, len);
	memcpy(leaf_item(dst, dn), leaf_item(src, from), count * BT_ITEM);
	/* Offsets shift by the distance the payload block moved. */
	for (uint32_t i = dn; i < dn + count; i++)
		put_le32(&leaf_item(dst, i)->offset,
			 leaf_item_offset(dst, i) - src_hi + dst_hi);
	node_set_nritems(dst, dn + count);
	node_set_nritems(src, from);
}

void node_insert_ptr(struct cblock *b, uint32_t slot, const struct bt_key *key,
		     uint64_t blockptr, uint64_t gen)
{
	uint32_t n = node_nritems(b);

	assert(slot <= n);
	memmove(node_ptr(b, slot + 1), node_ptr(b, slot), (n - slot) * BT_PTR);
	node_set_key(b, slot, key);
	node_set_ptr(b, slot, blockptr, gen);
	node_set_nritems(b, n + 1);
}

void node_delete_ptrs(struct cblock *b, uint32_t slot, uint32_t count)
{
	uint32_t n = node_nritems(b);

	assert(slot + count <= n);
	memmove(node_ptr(b, slot), node_ptr(b, slot + count), (n - slot - count) * BT_PTR);
	node_set_nritems(b, n - count);
}

void node_set_ptr(struct cblock *b, uint32_t slot, uint64_t blockptr, uint64_t gen)
{
	put_le64(&node_ptr(b, slot)->blockptr, blockptr);
	put_le64(&node_ptr(b, slot)->generation, gen);
}

void node_set_key(struct cblock *b, uint32_t slot, const struct bt_key *key)
{
	bt_key_to_disk(&node_ptr(b, slot)->key, key);
}

void node_move_tail(struct cblock *dst, struct cblock *src, uint32_t from)
{
	uint32_t n = node_nritems(src), dn = node_nritems(dst);

	if (from >= n)
		return;
	memcpy(node_ptr(dst, dn), node_ptr(src, from), (n - from) * BT_PTR);
	node_set_nritems(dst, dn + n - from);
	node_set_nritems(src, from);
}

void node_init(struct cblock *b, const struct bt_fs *fs, uint64_t bytenr, uint64_t gen,
	       uint64_t owner, uint8_t level)
{
	struct bt_header *h = node_hdr(b);

	memset(h, 0, BT_HDR);
	memcpy(h->fsid, fs->fsid, sizeof(h->fsid));
	put_le64(&h->bytenr, bytenr);
	put_le64(&h->generation, gen);
	put_le64(&h->owner, owner);
	h->level = level;
	h->version = BT_NODE_VERSION;
}

void node_seal(const struct bt_fs *fs, struct cblock *b)
{
	put_le64(&node_hdr(b)->csum, cowfs_csum((char *)b->data + 8, fs->nodesize - 8));
}

static const char *verify_keys_sorted(const struct cblock *b)
{
	uint32_t n = node_nritems(b);
	struct bt_key prev, cur;

	for (uint32_t i = 0; i < n; i++) {
		bt_key_from_disk(&cur, node_disk_key(b, i));
		if (i && bt_key_cmp(&prev, &cur) >= 0)
			return "keys out of order";
		prev = cur;
	}
	return NULL;
}

static const char *verify_leaf(const struct bt_fs *fs, const struct cblock *b)
{
	uint32_t n = node_nritems(b);

	if ((uint64_t)n * BT_ITEM > fs->nodesize - BT_HDR)
		return "leaf item count too large";
	uint32_t floor = BT_HDR + n * BT_ITEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t off = leaf_item_offset(b, i), size = leaf_item_size(b, i);
		uint32_t end = i == 0 ? fs->nodesize : leaf_item_offset(b, i - 1);
		if (off < floor || off > end || end - off != size)
			return "leaf item payload out of place";
	}
	return verify_keys_sorted(b);
}

static const char *verify_internal(const struct bt_fs *fs, const struct cblock *b, uint64_t gen)
{
	uint32_t n = node_nritems(b);

	if (n == 0)
		return "empty internal node";
	if (n > node_max_ptrs(fs->nodesize))
		return "internal node pointer count too large";
	for (uint32_t i = 0; i < n; i++) {
		if (node_blockptr(b, i) == 0)
			return "null child pointer";
		/* A child is written no later than its parent: shadowing rewrites the path up. */
		if (node_ptr_gen(b, i) > gen || node_ptr_gen(b, i) == 0)
			return "child generation newer than parent";
	}
	return verify_keys_sorted(b);
}

const char *node_verify(const struct bt_fs *fs, const struct cblock *b, uint64_t bytenr,
			uint8_t expect_level, uint64_t expect_gen)
{
	const struct bt_header *h = node_hdr(b);
	static const uint8_t zero[8];

	if (get_le64(&h->csum) != cowfs_csum((const char *)b->data + 8, fs->nodesize - 8))
		return "checksum mismatch";
	if (memcmp(h->fsid, fs->fsid, sizeof(h->fsid)))
		return "node belongs to another filesystem (fsid mismatch)";
	if (get_le64(&h->bytenr) != bytenr)
		return "node address mismatch (misdirected write)";
	if (h->version != BT_NODE_VERSION || h->flags || memcmp(h->reserved, zero, sizeof(zero)))
		return "unknown node version or flags";
	if (h->level != expect_level)
		return "node level differs from its parent's pointer";
	if (expect_gen && get_le64(&h->generation) != expect_gen)
		return "node generation differs from its parent's pointer (lost write)";
	return h->level ? verify_internal(fs, b, get_le64(&h->generation)) : verify_leaf(fs, b);
}
