/*
 * A read-only view of tree nodes, for checkers and dump tools: one node read and verified by
 * address, its header, keys, child pointers and items, and a walk over a whole tree that hands
 * each node to a callback. Nothing here can change a node; updates go through btree.h.
 *
 * A view holds its node in the block cache until bt_node_put. Item data pointers stay valid
 * while the view is held.
 */
#ifndef COWFS_BTREE_VIEW_H
#define COWFS_BTREE_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/btree/btree.h"

struct bt_node {
	struct bt_fs *fs;
	struct cblock *b;
};

/*
 * Read and verify the node at `bytenr`, which its pointer says is at `level` of generation
 * `gen` (checksum, fsid, address, generation, level, structure). -EIO (reported through
 * fs->report, naming the block) when it is not what the pointer promised; -ENOMEM.
 */
int bt_node_get(struct bt_fs *fs, uint64_t bytenr, uint8_t level, uint64_t gen,
		struct bt_node *out);
void bt_node_put(struct bt_node *n);

uint64_t bt_node_bytenr(const struct bt_node *n);
uint8_t bt_node_level(const struct bt_node *n);
uint32_t bt_node_nritems(const struct bt_node *n);
uint64_t bt_node_generation(const struct bt_node *n);
uint64_t bt_node_owner(const struct bt_node *n);
/* Key of slot i: the item's key in a leaf, the pointer's key in an internal node. */
void bt_node_key(const struct bt_node *n, uint32_t i, struct bt_key *k);
/* Internal nodes: where slot i points and the generation the pointer promises. */
uint64_t bt_node_child(const struct bt_node *n, uint32_t i, uint64_t *gen);
/* Leaves: the payload of item i. */
void bt_node_item(const struct bt_node *n, uint32_t i, const void **data, uint32_t *len);
/* Leaves: where item i's payload starts, in bytes from the node's start (its header's word). */
uint32_t bt_node_item_offset(const struct bt_node *n, uint32_t i);

/*
 * Read ahead the nodes at bytenrs[0..n) that are not cached, in one batch of device reads
 * (bcache_prefetch: bounded to a fraction of the cache, never evicting what eviction may not):
 * for a caller about to bt_node_get each of them, who would otherwise wait for one read at a
 * time. Nothing is verified here: each node is verified at its first bt_node_get, against the
 * pointer the caller passes then, exactly as if it had not been read ahead. Addresses where no
 * node may live are skipped (bt_node_get reports them). A hint: it never fails; returns how
 * many nodes it read.
 */
size_t bt_prefetch(struct bt_fs *fs, const uint64_t *bytenrs, size_t n);

/*
 * Start the device reading the nodes at bytenrs[0..n) that are not cached and return at once
 * (bcache_readahead): for nodes a caller will bt_prefetch or bt_node_get after working on
 * others, so that the reads overlap with that work and with each other. Takes no room in the
 * cache; addresses where no node may live are skipped. A hint: it never fails.
 */
void bt_readahead(struct bt_fs *fs, const uint64_t *bytenrs, size_t n);

/*
 * The level the header of the node at `bytenr` claims, read without verifying anything: for a
 * node looked at by address alone, with no parent pointer to say which level it must be (then
 * bt_node_get verifies it against that). The block cache's errno when it cannot be read.
 */
int bt_node_peek_level(struct bt_fs *fs, uint64_t bytenr, uint8_t *level);

/*
 * Walk every node reachable from the root, parents before children, children in key order.
 * `node` gets each node that reads and verifies, with its parent's address (0 for the root);
 * it returns 0 to descend, 1 to skip the node's children (a shared subtree already seen), or
 * a negative errno to stop the walk. `unreadable` (may be NULL: then the walk stops with the
 * error) gets each node that does not; it returns 0 to go on without that subtree, or a
 * negative errno to stop. -ENOMEM always stops the walk.
 *
 * `enter` (may be NULL) is asked about each pointer before its node is read, with the node
 * holding it (NULL for the root: the tree's own pointer); it returns 0 to read the node, 1 to
 * skip it and its subtree unread, or a negative errno to stop. A walker that visits each
 * distinct node once (a checker counting references to shared nodes) reads and reports each
 * once this way, where `node` returning 1 would read a shared node again for every pointer.
 *
 * `prefetch`: read each node's children that `enter` accepts ahead, in one batch (bt_prefetch),
 * before walking the first of them. `enter` is then asked about all the children of a node
 * before any of them is walked (without it, about each just before it is walked): only for a
 * walker whose answers do not depend on what the walk of a sibling's subtree saw.
 */
struct bt_walk {
	int (*node)(void *arg, const struct bt_node *n, uint64_t parent);
	int (*unreadable)(void *arg, uint64_t bytenr, uint8_t level, uint64_t parent, int err);
	void *arg;
	int (*enter)(void *arg, uint64_t bytenr, uint8_t level, const struct bt_node *parent);
	bool prefetch;
};
int bt_walk(struct btree *t, const struct bt_walk *w);

#endif
