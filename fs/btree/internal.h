/* Declarations shared by the B+tree's own files; not part of its interface. */
#ifndef COWFS_BTREE_INTERNAL_H
#define COWFS_BTREE_INTERNAL_H

#include "fs/btree/btree.h"
#include "fs/btree/node.h"

/* Record the first error of a transaction; returns err so callers can `return tx_fail(...)`. */
static inline int tx_fail(struct bt_trans *tx, int err)
{
	if (tx && err < 0 && !tx->error)
		tx->error = err;
	return err;
}

void bt_report(const struct bt_fs *fs, uint64_t bytenr, const char *msg);

/* Read and verify a node: -EIO (reported) when it is not what the pointer promised. */
int bt_read_node(struct bt_fs *fs, uint64_t bytenr, uint8_t level, uint64_t gen,
		 struct cblock **out);
int bt_read_root(struct btree *t, struct cblock **out);
int bt_read_child(struct bt_fs *fs, struct cblock *parent, uint32_t slot, struct cblock **out);

/*
 * Walk from the root to the leaf for `key`, filling `p`. With a transaction every node on the
 * way is made writable (shadowed if needed). Returns 0 if the key is in the leaf, 1 if not
 * (slot = where it would go), or a negative errno (path released).
 */
int bt_search(struct bt_trans *tx, struct btree *t, const struct bt_key *key, struct bt_path *p);
void bt_path_release(struct bt_fs *fs, struct bt_path *p);

/* Move the leaf path to the first item of the next / the end of the previous leaf. */
int bt_path_next_leaf(struct bt_fs *fs, struct bt_path *p);
int bt_path_prev_leaf(struct bt_fs *fs, struct bt_path *p);

/* Allocate a fresh writable node at `level`. */
int bt_alloc_node(struct bt_trans *tx, struct btree *t, uint8_t level, uint64_t hint,
		  struct cblock **out);
/* Free a node the tree owns alone (its count must drop to zero). */
int bt_free_node(struct bt_trans *tx, struct btree *t, struct cblock *b, uint64_t parent);
/*
 * Make `b` writable. `parent`/`pslot` locate the pointer to it (parent NULL: `b` is the root).
 * Consumes the caller's reference to `b`; on success *out is the writable node (maybe `b`).
 */
int bt_cow(struct bt_trans *tx, struct btree *t, struct cblock *parent, uint32_t pslot,
	   struct cblock *b, struct cblock **out);

#endif
