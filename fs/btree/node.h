/*
 * On-disk layout of a B+tree node, and the accessors and primitive edits on it.
 * docs/FORMAT.md describes the same bytes; keep the two in step.
 *
 *   leaf:     [header 64][item 0][item 1]...[item n-1] ... free ... [data n-1]...[data 1][data 0]
 *   internal: [header 64][ptr 0][ptr 1]...[ptr n-1] ... unused
 *
 * Leaf payloads are packed from the end of the node in item order, without gaps: item 0's data
 * ends at the node's end and item i's data ends where item i-1's begins. That invariant makes
 * verification exact (every byte is accounted for) and lets an insert shift data with one
 * memmove.
 */
#ifndef COWFS_BTREE_NODE_H
#define COWFS_BTREE_NODE_H

#include <stdint.h>
#include <string.h>

#include "fs/btree/btree.h"
#include "fs/io/bcache.h"

#define BT_NODE_VERSION 1

struct bt_header {
	uint64_t csum;        /* XXH3-64 of bytes [8, nodesize) */
	uint8_t fsid[16];
	uint64_t bytenr;      /* this node's own address: catches misdirected writes */
	uint64_t generation;  /* transaction that wrote it: must equal the parent pointer's */
	uint64_t owner;       /* tree that allocated it */
	uint32_t nritems;
	uint8_t level;        /* 0 = leaf */
	uint8_t version;      /* BT_NODE_VERSION */
	uint16_t flags;       /* none defined yet; must be 0 */
	uint8_t reserved[8];  /* must be 0 */
} __packed;
STATIC_ASSERT(sizeof(struct bt_header) == 64, "node header is 64 bytes");

struct bt_item {
	struct bt_disk_key key;
	uint32_t offset;      /* payload offset from the start of the node */
	uint32_t size;        /* payload bytes */
} __packed;
STATIC_ASSERT(sizeof(struct bt_item) == 25, "leaf item header is 25 bytes");

struct bt_ptr {
	struct bt_disk_key key;  /* first key of the child */
	uint64_t blockptr;
	uint64_t generation;     /* the child's header generation */
} __packed;
STATIC_ASSERT(sizeof(struct bt_ptr) == 33, "internal node pointer is 33 bytes");

#define BT_HDR  ((uint32_t)sizeof(struct bt_header))
#define BT_ITEM ((uint32_t)sizeof(struct bt_item))
#define BT_PTR  ((uint32_t)sizeof(struct bt_ptr))

/* B+tree bits in struct cblock flags. */
#define BT_CB_NODE     (CB_USER0 << 0)  /* block is a tree node (sealed at writeback) */
#define BT_CB_VERIFIED (CB_USER0 << 1)  /* header and structure checked since it was read */
#define BT_CB_WRITABLE (CB_USER0 << 2)  /* allocated by this transaction and shared by no clone */

static inline struct bt_header *node_hdr(const struct cblock *b) { return b->data; }
static inline uint32_t node_nritems(const struct cblock *b) { return get_le32(&node_hdr(b)->nritems); }
static inline void node_set_nritems(struct cblock *b, uint32_t n) { put_le32(&node_hdr(b)->nritems, n); }
static inline uint8_t node_level(const struct cblock *b) { return node_hdr(b)->level; }
static inline uint64_t node_gen(const struct cblock *b) { return get_le64(&node_hdr(b)->generation); }
static inline uint64_t node_owner(const struct cblock *b) { return get_le64(&node_hdr(b)->owner); }

/* Leaf items. */
static inline struct bt_item *leaf_item(const struct cblock *b, uint32_t i)
{
	return (struct bt_item *)((char *)b->data + BT_HDR) + i;
}
static inline uint32_t leaf_item_offset(const struct cblock *b, uint32_t i) { return get_le32(&leaf_item(b, i)->offset); }
static inline uint32_t leaf_item_size(const struct cblock *b, uint32_t i) { return get_le32(&leaf_item(b, i)->size); }
static inline void *leaf_item_data(const struct cblock *b, uint32_t i)
{
	return (char *)b->data + leaf_item_offset(b, i);
}
static inline void leaf_item_key(const struct cblock *b, uint32_t i, struct bt_key *k)
{
	bt_key_from_disk(k, &leaf_item(b, i)->key);
}
/* Where item i's payload must end: the node's end for item 0, else item i-1's start. */
static inline uint32_t leaf_data_end(const struct cblock *b, uint32_t i, uint32_t nodesize)
{
	return i == 0 ? nodesize : leaf_item_offset(b, i - 1);
}
uint32_t leaf_free_space(const struct cblock *b, uint32_t nodesize);
/* Bytes items [from, to) take: headers plus payloads. */
uint32_t leaf_bytes(const struct cblock *b, uint32_t from, uint32_t to);

/* Internal pointers. */
static inline struct bt_ptr *node_ptr(const struct cblock *b, uint32_t i)
{
	return (struct bt_ptr *)((char *)b->data + BT_HDR) + i;
}
static inline uint64_t node_blockptr(const struct cblock *b, uint32_t i) { return get_le64(&node_ptr(b, i)->blockptr); }
static inline uint64_t node_ptr_gen(const struct cblock *b, uint32_t i) { return get_le64(&node_ptr(b, i)->generation); }
static inline void node_ptr_key(const struct cblock *b, uint32_t i, struct bt_key *k)
{
	bt_key_from_disk(k, &node_ptr(b, i)->key);
}
static inline uint32_t node_max_ptrs(uint32_t nodesize) { return (nodesize - BT_HDR) / BT_PTR; }

/* First key of any node. */
void node_first_key(const struct cblock *b, struct bt_key *k);
static inline const struct bt_disk_key *node_disk_key(const struct cblock *b, uint32_t i)
{
	return node_level(b) ? &node_ptr(b, i)->key : &leaf_item(b, i)->key;
}

/*
 * Binary search in one node. Leaf: *slot = first item >= key, returns 0 if equal else 1.
 * Internal: *slot = last pointer whose key <= key (0 if key is below all), returns 0 if equal.
 */
int node_search(const struct cblock *b, const struct bt_key *key, uint32_t *slot);

/* Primitive edits (the node must be writable and, for inserts, have room). */
void leaf_insert_gap(struct cblock *b, uint32_t nodesize, uint32_t slot,
		     const struct bt_key *key, uint32_t size);
void leaf_delete_items(struct cblock *b, uint32_t nodesize, uint32_t slot, uint32_t count);
void leaf_resize_item(struct cblock *b, uint32_t nodesize, uint32_t slot, uint32_t newsize);
/* Move items [from, n) of `src` to the end of `dst` (dst's keys must all be smaller). */
void leaf_move_tail(struct cblock *dst, struct cblock *src, uint32_t nodesize, uint32_t from);
void node_insert_ptr(struct cblock *b, uint32_t slot, const struct bt_key *key,
		     uint64_t blockptr, uint64_t gen);
void node_delete_ptrs(struct cblock *b, uint32_t slot, uint32_t count);
void node_set_ptr(struct cblock *b, uint32_t slot, uint64_t blockptr, uint64_t gen);
void node_set_key(struct cblock *b, uint32_t slot, const struct bt_key *key);
void node_move_tail(struct cblock *dst, struct cblock *src, uint32_t from);

/* Fresh header for a node this transaction allocated. */
void node_init(struct cblock *b, const struct bt_fs *fs, uint64_t bytenr, uint64_t gen,
	       uint64_t owner, uint8_t level);

/*
 * Verify a node read from disk: checksum, fsid, address, generation and level against what the
 * parent pointer promised (expect_gen 0 = don't check), and the structural invariants.
 * Returns NULL if sound, else a static message naming what is wrong.
 */
const char *node_verify(const struct bt_fs *fs, const struct cblock *b, uint64_t bytenr,
			uint8_t expect_level, uint64_t expect_gen);

/* Write the checksum (at writeback). */
void node_seal(const struct bt_fs *fs, struct cblock *b);

#endif
