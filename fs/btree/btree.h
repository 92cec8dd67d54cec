/*
 * The generic copy-on-write B+tree. Every tree of cowfs (root tree, fs trees, extent tree) is
 * one of these; they differ only in their owner id and in what their items mean.
 *
 * Shadowing: a node that may be on disk or shared is never changed; the change goes to a fresh
 * copy and the parent pointers up to the root are rewritten (path copying). A node this
 * transaction allocated, and that no clone shares, is changed in place in memory.
 *
 * Clones (Rodeh, "B-trees, Shadowing, and Clones"): bt_clone() copies only the root and adds one
 * reference to each of its children. Reference counts live outside the tree (the extent tree,
 * in tests an in-memory table), reached through struct bt_ops. When a shared node (refs > 1)
 * is shadowed, its children each gain a reference and the node loses one (lazy refcounting:
 * the counts are pushed down one level at a time, only where trees diverge). bt_drop() frees
 * what a tree owns alone and only drops one reference from what it shares.
 *
 * Errors are negative errnos. On-disk inconsistency found while reading a node (checksum,
 * fsid, address, generation, level or structural mismatch) is -EIO and names the block through
 * the bt_fs error hook; it is never an assert. A transaction that hit an error is marked
 * (tx->error) and every later update through it returns that error.
 *
 * Not thread-safe: callers serialize updates and exclude readers of the same tree while it is
 * updated (the FUSE layer holds a filesystem-wide rwlock).
 */
#ifndef COWFS_BTREE_BTREE_H
#define COWFS_BTREE_BTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/btree/key.h"

struct bcache;
struct cblock;
struct bt_trans;

#define BT_MAX_LEVEL 8            /* height limit: leaves are level 0 */
#define BT_MIN_NODESIZE 4096u
#define BT_MAX_NODESIZE 65536u
#define BT_DEFAULT_NODESIZE 16384u

/*
 * What the tree needs from the space and refcount layer (fs/extent; tests use an in-memory
 * table). Every function returns 0 or a negative errno.
 *
 * Every callback that changes something gets the transaction it belongs to (`tx`): the space
 * layer takes its allocation class from it and counts its changes (tx->changes).
 *
 * Every reference to a tree block is held either by a pointer in another node or by a tree's
 * root pointer, and is recorded under a backref key `ref_owner`: the owner field of the node
 * holding the pointer, or the tree id for a root pointer. A block's count is the sum over its
 * keys. The B+tree keeps these keys exact (see cow.c for the rules), so a checker can
 * recompute every block's backrefs from the reachable nodes alone.
 *
 * block_alloc: a new node-sized block at `level` with one reference keyed `ref_owner`.
 * block_ref_add / block_ref_drop: one more / one fewer reference keyed `ref_owner`.
 *   block_ref_drop reports the count left; at 0 the block is free (the callee decides when the
 *   space is reusable: not before the transaction commits if the block was ever committed).
 * block_refs: the current count of a tree block.
 * item_refs (may be NULL): an item can reference something outside the tree (a file extent
 *   item references a data extent). The tree calls it with +1 whenever an item enters a leaf
 *   (insert, update's new payload, the copy of a shared leaf being shadowed, a move into a leaf
 *   of another owner) and -1 whenever it leaves one (delete, update's old payload, a leaf freed
 *   by a drop, a move out), always with the owner and the address of that leaf (the address
 *   for reports). The callee ignores items that reference nothing. Within one call a count may pass through zero (an update drops the old
 *   payload's reference before adding the new one's): something is free only if its count is
 *   zero when the transaction commits.
 */
struct bt_ops {
	int (*block_alloc)(void *ctx, struct bt_trans *tx, uint8_t level, uint64_t ref_owner,
			   uint64_t hint, uint64_t *bytenr);
	int (*block_ref_add)(void *ctx, struct bt_trans *tx, uint64_t bytenr, uint8_t level,
			     uint64_t ref_owner);
	int (*block_ref_drop)(void *ctx, struct bt_trans *tx, uint64_t bytenr, uint8_t level,
			      uint64_t ref_owner, uint64_t *remaining);
	int (*block_refs)(void *ctx, uint64_t bytenr, uint64_t *refs);
	int (*item_refs)(void *ctx, struct bt_trans *tx, uint64_t leaf_owner, uint64_t leaf,
			 const struct bt_key *key, const void *data, uint32_t len, int delta);
};

/* What all trees of one filesystem share. */
struct bt_fs {
	struct bcache *cache;
	uint32_t nodesize;
	uint8_t fsid[16];
	const struct bt_ops *ops;
	void *ops_ctx;
	/* Where nodes may live: [node_start, node_end), node addresses multiples of node_align
	 * (0: not checked). A pointer outside is corruption, reported as such before any read. */
	uint64_t node_start, node_end;
	uint32_t node_align;
	/* Called with a message naming the block for every on-disk inconsistency (may be NULL). */
	void (*report)(void *arg, uint64_t bytenr, const char *msg);
	void *report_arg;
	/* Fault injection for tests (may be NULL): called at every step that may change a tree
	 * (an item insert, delete, update or resize, before it changes anything) and at every
	 * block allocation, with the step's name; a negative errno fails the step there, as if
	 * it had failed by itself. */
	int (*inject)(void *arg, const char *site);
	void *inject_arg;
};

static inline int bt_inject(const struct bt_fs *fs, const char *site)
{
	return fs->inject ? fs->inject(fs->inject_arg, site) : 0;
}

/*
 * The B+tree's part of a transaction, passed through every update. The filesystem's handle
 * (struct cowfs_trans, fs/super/trans.h) embeds it.
 *
 * error: the first failure that left the transaction's changes incomplete; once set, every
 * update through it returns it, and it can never commit. bt_trans_fail is its only setter.
 * changes: bumped by every change made through the transaction (items inserted, deleted or
 * changed, trees cloned or dropped, references added or dropped), so that the layer that
 * began an update can tell whether a failure came before or after it changed anything.
 * alloc_class: the space layer's class for allocations made now (fs/alloc: enum alloc_class;
 * opaque to the B+tree, which only passes the transaction to bt_ops).
 */
struct bt_trans {
	struct bt_fs *fs;
	uint64_t transid;   /* generation stamped on every node written in this transaction */
	int error;
	const char *error_where;   /* the function that failed first */
	uint64_t changes;
	unsigned alloc_class;
};

/* Poison `tx` with `err` (negative) unless it already failed; returns err. */
int bt_trans_fail_at(struct bt_trans *tx, int err, const char *where);
#define bt_trans_fail(tx, err) bt_trans_fail_at((tx), (err), __func__)

/* One tree: where its root is. The owner layer persists (root, root_gen, level). */
struct btree {
	struct bt_fs *fs;
	uint64_t owner;     /* tree id, stamped in every node this tree allocates */
	uint64_t root;      /* byte address of the root node */
	uint64_t root_gen;  /* generation of the root node (checked on read) */
	uint8_t level;      /* level of the root: 0 when the root is a leaf */
	uint64_t seq;       /* bumped by every modification: cursors re-search when it moved */
	uint64_t item_leaf; /* the leaf the last item read came from (bt_lookup, bt_cursor_item) */
};

/* Where the item last read from `t` lives: a decoder that finds it malformed names this
 * block (level 0) in its report. */
static inline uint64_t bt_item_leaf(const struct btree *t) { return t->item_leaf; }

/* Whether `nodesize` is usable: a power of two from BT_MIN_NODESIZE to BT_MAX_NODESIZE. */
bool bt_nodesize_valid(uint32_t nodesize);

/* Largest item payload a leaf of `nodesize` can hold. */
uint32_t bt_max_item_size(uint32_t nodesize);

/* Create an empty tree (one empty leaf) owned by `owner`. -EINVAL if fs->nodesize is not valid. */
int bt_create(struct bt_trans *tx, uint64_t owner, struct btree *t);
/* Describe an existing tree (no I/O; the root is verified when first read). */
void bt_open(struct btree *t, struct bt_fs *fs, uint64_t owner, uint64_t root,
	     uint64_t root_gen, uint8_t level);

/*
 * Exact lookup. Copies up to `bufsize` bytes of the item into `buf` (buf may be NULL) and sets
 * *len to the item's full size. Returns 0, -ENOENT, or -EIO.
 */
int bt_lookup(struct btree *t, const struct bt_key *key, void *buf, uint32_t bufsize,
	      uint32_t *len);

/*
 * Whether the leaf a search for `key` ends in, and every node above it, belong to `t` alone
 * (reference count 1 all the way down): then nothing `t` reaches there is reachable from another
 * tree through shared structure (a snapshot). 0 or -EIO.
 */
int bt_path_exclusive(struct btree *t, const struct bt_key *key, bool *exclusive);

/* Insert a new item (data may be NULL when len is 0). -EEXIST if the key is present,
 * -EOVERFLOW if len > bt_max_item_size. */
int bt_insert(struct bt_trans *tx, struct btree *t, const struct bt_key *key, const void *data,
	      uint32_t len);
/* Delete an item. -ENOENT if absent. */
int bt_delete(struct bt_trans *tx, struct btree *t, const struct bt_key *key);
/* Overwrite an item's payload in place; `len` must equal its size (else -EINVAL). */
int bt_update(struct bt_trans *tx, struct btree *t, const struct bt_key *key, const void *data,
	      uint32_t len);
/* Grow (zero-filling the new tail) or shrink (cutting the tail) an item to `newlen`. */
int bt_resize(struct bt_trans *tx, struct btree *t, const struct bt_key *key, uint32_t newlen);

/*
 * Clone `src` into a new tree owned by `owner`, sharing every node but the root (O(1) in the
 * size of the tree: one node copied, one reference added per child of the root).
 */
int bt_clone(struct bt_trans *tx, struct btree *src, uint64_t owner, struct btree *dst);
/* Drop a tree: free the nodes it owns alone, drop one reference from those it shares. */
int bt_drop(struct bt_trans *tx, struct btree *t);
/*
 * Drop part of a tree, from its right edge (drop.c): about `budget` blocks freed or let go
 * (shared blocks lose the one reference this tree held; at least one, whatever the budget),
 * *freed saying how many. After every call `t` is a valid, smaller B+tree with exact counts
 * and backref keys, so the layer above can commit between steps and resume after a crash from
 * the persisted root. *done: the tree is gone (t->root is 0; calling again does nothing).
 */
int bt_drop_step(struct bt_trans *tx, struct btree *t, unsigned budget, unsigned *freed,
		 bool *done);
/*
 * Progress of a bounded drop: the units of work still to go, 0 once the tree is gone. Never
 * grows while bt_drop_step takes the tree apart, so with total = the units when the drop
 * began, (total - units) / total is "how far". Units: a root leaf is 1; a root of level 1
 * counts its pointers; a higher root counts node_max_ptrs for each pointer but its last,
 * plus the pointers of its last child. Reads the root and its last child only.
 */
int bt_drop_units(struct btree *t, uint64_t *units);

/*
 * Seal every dirty node (write its checksum) and write them all back (one batch).
 * The caller flushes the device and then writes its superblock. Clears the "writable" state
 * of every node written: the next transaction shadows them.
 */
int bt_writeback(struct bt_fs *fs);

/*
 * Cursor: ordered iteration forward and backward. A cursor survives modifications of its tree
 * through the same handle: it remembers its key and re-searches when the tree changed.
 * The item pointers it hands out are valid until the cursor moves or the tree changes.
 */
struct bt_path {
	struct cblock *nodes[BT_MAX_LEVEL];
	int slots[BT_MAX_LEVEL];
	int height;    /* number of levels held: root level + 1 */
};

struct bt_cursor {
	struct btree *t;
	struct bt_path path;
	struct bt_key key;   /* key of the current item */
	uint64_t seq;        /* t->seq when the path was taken */
	bool valid;
};

void bt_cursor_init(struct bt_cursor *c, struct btree *t);
/*
 * Position at the first item with key >= `key` (BT_SEEK_GE) or the last item with key <= `key`
 * (BT_SEEK_LE). Returns 0, -ENOENT when there is none, or -EIO.
 */
enum { BT_SEEK_GE, BT_SEEK_LE };
int bt_cursor_seek(struct bt_cursor *c, const struct bt_key *key, int mode);
/* Step to the next / previous item. 0, -ENOENT at the end, or -EIO. */
int bt_cursor_next(struct bt_cursor *c);
int bt_cursor_prev(struct bt_cursor *c);
/* The current item (cursor must be valid). */
void bt_cursor_item(struct bt_cursor *c, struct bt_key *key, const void **data, uint32_t *len);
/* Release the nodes the cursor holds. The cursor can seek again afterwards. */
void bt_cursor_release(struct bt_cursor *c);

/*
 * Visit every node reachable from the root, parents before children. `fn` gets the node's
 * address, level, item count and parent (0 for the root); returning 1 skips its children,
 * a negative errno stops the walk and is returned.
 */
typedef int (*bt_visit_fn)(void *arg, uint64_t bytenr, uint8_t level, uint32_t nritems,
			   uint64_t parent);
int bt_visit(struct btree *t, bt_visit_fn fn, void *arg);

/*
 * Check every structural invariant of the tree (key order within and across nodes, parent key
 * equals child's first key, levels, generations, fill). Every violation is reported through
 * fs->report; returns 0 if none, -EUCLEAN if some, -EIO if a node could not be read.
 */
int bt_check(struct btree *t);

/* Node counts, for tests and benchmarks. */
struct bt_stats {
	uint64_t nodes, leaves, items, height;
};
int bt_stats(struct btree *t, struct bt_stats *st);

#endif
