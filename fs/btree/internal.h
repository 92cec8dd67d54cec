/* Declarations shared by the B+tree's own files; not part of its interface. */
#ifndef COWFS_BTREE_INTERNAL_H
#define COWFS_BTREE_INTERNAL_H

#include "fs/btree/btree.h"
#include "fs/btree/node.h"

void bt_report(const struct bt_fs *fs, uint64_t bytenr, const char *msg);

/* Whether a node may live at `bytenr` (bt_fs: node_start, node_end, node_align). */
bool bt_node_addr_valid(const struct bt_fs *fs, uint64_t bytenr);
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

/* Backref key of a reference held by node `holder`, or by t's root pointer (holder NULL). */
static inline uint64_t bt_ref_owner(const struct btree *t, const struct cblock *holder)
{
	return holder ? node_owner(holder) : t->owner;
}

/* A fresh writable node at `level` with header owner `owner`, referenced under `ref_owner`. */
int bt_alloc_node(struct bt_trans *tx, uint8_t level, uint64_t hint, uint64_t owner,
		  uint64_t ref_owner, struct cblock **out);
/* Drop one reference keyed `ref_owner`; forgets the block from the cache when it is freed. */
int bt_ref_drop(struct bt_trans *tx, uint64_t bytenr, uint8_t level, uint64_t ref_owner,
		uint64_t *left);
/* The count of a block a live pointer names: 0 there is corruption (-EUCLEAN, reported). */
int bt_live_refs(struct bt_trans *tx, uint64_t bytenr, uint64_t *refs);
/* Free a node held by one reference keyed `ref_owner` (its count must drop to zero). */
int bt_free_node(struct bt_trans *tx, struct cblock *b, uint64_t ref_owner);
/* item_refs for one leaf item. */
int bt_item_refs(struct bt_trans *tx, uint64_t leaf_owner, const struct cblock *leaf,
		 uint32_t slot, int delta);
/* Entries [from, to) of `b` (children, or items' targets) gain/lose a reference keyed ref_owner. */
int bt_entries_ref(struct bt_trans *tx, const struct cblock *b, uint32_t from, uint32_t to,
		   uint64_t ref_owner, int delta);
/*
 * Make `b` writable. `parent`/`pslot` locate the pointer to it (parent NULL: `b` is the root).
 * Consumes the caller's reference to `b`; on success *out is the writable node (maybe `b`).
 */
int bt_cow(struct bt_trans *tx, struct btree *t, struct cblock *parent, uint32_t pslot,
	   struct cblock *b, struct cblock **out);

/*
 * Early write-out, called where an update starts (no path held, every node consistent):
 * when dirty nodes crowd the cache (bcache_dirty_excess), seal and write the least recently
 * used ones that nobody holds, in one batch. They are this transaction's new blocks in free
 * space, so the committed trees are untouched; they lose their writable mark (bt_cow gives it
 * back, and marks them dirty again, if they change). A failed write fails the transaction.
 */
int bt_relieve_cache(struct bt_trans *tx);

#endif
