/*
 * The extent layer: reference counts and backrefs of every extent, data and tree block alike.
 *
 * It is the one place references change. The B+tree reaches it through extent_bt_ops (tree
 * blocks, and data extents through file extent items: item_refs); fs/inode allocates data
 * extents with extent_alloc_data(). Snapshots (bt_clone), reflink (inserting file extent items
 * that point at existing extents) and dedup (the same, after comparing the bytes) therefore
 * all reduce to adding references here, and freeing to dropping one: an extent whose count is
 * zero when the transaction commits loses its extent item and its space is pinned until that
 * commit is on disk.
 *
 * Changes are collected as delayed refs (delayed_ref.h) and applied to the extent tree by
 * extent_run_delayed_refs() during commit.
 */
#ifndef COWFS_EXTENT_EXTENT_H
#define COWFS_EXTENT_EXTENT_H

#include <stdint.h>

#include "fs/alloc/alloc.h"
#include "fs/btree/btree.h"
#include "fs/extent/delayed_ref.h"
#include "fs/extent/extent_format.h"
#include "fs/extent/file_extent.h"

struct extents {
	struct bt_fs *fs;
	struct allocator *alloc;
	struct btree *tree;        /* the extent tree; owned by fs/super */
	struct btree *csum_tree;   /* data checksums (csum.h); owned by fs/super */
	struct dref_table refs;
	uint64_t meta_hint;        /* where the next tree block is allocated: after the last */
	uint32_t sectorsize;
};

/* The bt_ops of every tree of a filesystem: ctx is the struct extents. */
extern const struct bt_ops extent_bt_ops;

int extents_init(struct extents *x, struct bt_fs *fs, struct allocator *alloc,
		 uint32_t sectorsize);
void extents_destroy(struct extents *x);

/*
 * A new data extent of between min_len and max_len bytes (sector multiples), at or after
 * `hint`, of the transaction's allocation class. It has no references yet: a file extent item
 * inserted into a tree adds the first. One still unreferenced when the transaction commits is
 * freed.
 */
int extent_alloc_data(struct extents *x, struct bt_trans *tx, uint64_t min_len, uint64_t max_len,
		      uint64_t hint, uint64_t *start, uint64_t *len);

/*
 * The one path references change by. A reference is identified by its extent (start, len,
 * kind: data, or a tree block at `level`) and its backref key (owner; for data also inode and
 * file offset). Adding a reference to an existing extent is what a snapshot (through bt_clone),
 * a reflink and a dedup all do; dropping one is all freeing ever is: an extent whose count is
 * zero when the transaction commits is freed, its space pinned until that commit is on disk.
 * Both record the change as a delayed reference (no I/O) and count it in tx->changes; one that
 * fails half made poisons tx. The B+tree's callbacks and the item hook are built on the same
 * two steps (without counting: a node shadowed or a leaf copied changes no tree's content).
 */
struct extent_ref {
	uint64_t start, len;
	bool is_data;
	uint8_t level;           /* tree blocks */
	uint64_t owner;          /* backref key: owner of the referring node or leaf, or tree id */
	uint64_t inode, offset;  /* data: the file extent item's key */
};
int extent_ref_add(struct extents *x, struct bt_trans *tx, const struct extent_ref *r);
/* *remaining (may be NULL): the count left after this drop, pending changes included. */
int extent_ref_drop(struct extents *x, struct bt_trans *tx, const struct extent_ref *r,
		    uint64_t *remaining);

/* Forget every pending change (the transaction that made them was aborted). */
void extent_forget_pending(struct extents *x);

/*
 * Repairs (fsck --repair, through ref_check.h, in the transaction `tx`), for the damage no
 * reference added or dropped can express. With extent_ref_add/drop and allocation these are the
 * only writers of reference changes; like them, they queue delayed references for an ordinary commit to apply, and only
 * read the extent tree. Each returns 0, -ENOMEM, or what it says.
 */

/*
 * An extent item whose count disagrees with its own backrefs: queue the change that makes the
 * count the sum of the counts of the backrefs the extent tree stores for it, leaving every
 * backref as it is. Backrefs that are wrong themselves are corrected afterwards with
 * extent_ref_add/drop, which move the count along. -ENOENT if `start` has no extent item;
 * -EUCLEAN if its items are malformed (reported); -EOVERFLOW for counts no extent can have.
 */
int extent_recount(struct extents *x, struct bt_trans *tx, uint64_t start);

/*
 * An extent item nothing references (a leak): queue the drop of its count and of every
 * backref it stores to zero, so that the commit frees it as it frees an extent whose last
 * reference went. Errors as extent_recount.
 */
int extent_forget_leak(struct extents *x, struct bt_trans *tx, uint64_t start);

/*
 * A referenced extent with no extent item: take its space from the allocator and record it as
 * allocated in this transaction with no references yet, as extent_alloc_data does for new
 * space. Its references are then added with extent_ref_add, and the commit inserts its item.
 * -EEXIST if the space is not free or the extent has pending changes already (it is known to
 * this transaction), -ERANGE or -EINVAL if it is not space the allocator manages.
 */
int extent_adopt(struct extents *x, struct bt_trans *tx, uint64_t start, uint64_t len,
		 bool is_data, uint8_t level);

/* Apply every pending change to the extent tree, until none is left. */
int extent_run_delayed_refs(struct extents *x, struct bt_trans *tx);
static inline size_t extent_pending(const struct extents *x) { return x->refs.count; }

/*
 * The reference count of the extent at `start` of `len` bytes as the running transaction sees
 * it: the extent tree's count plus pending changes. -ENOENT if it has neither (reported as
 * corruption when a caller held a reference to it).
 */
int extent_refcount(struct extents *x, uint64_t start, uint64_t len, uint64_t *refs);

/*
 * The same for many extents asked in ascending address order (exclusive.c): a cursor moves
 * along the extent tree from one to the next instead of a search from the root for each.
 * Init, get any number of counts (each start >= the one before; otherwise it searches
 * afresh), release. Hold the lock throughout: the trees must not change in between.
 */
struct extent_counter {
	struct extents *x;
	struct bt_cursor c;
	bool positioned;       /* c is on the first item >= last */
	struct bt_key last;
};
void extent_counter_init(struct extent_counter *ec, struct extents *x);
int extent_counter_get(struct extent_counter *ec, uint64_t start, uint64_t len, uint64_t *refs);
void extent_counter_release(struct extent_counter *ec);

/*
 * Sharing as FIEMAP reports it (share.c): whether bytes of a data extent that a file extent
 * item of `inode` in `tree` maps are mapped by any other place too. They are when any
 * reference to the extent comes from another file or tree (the whole extent is then shared,
 * as btrfs reports it), or when another item of the same file maps some of the same bytes (a
 * clone within the file). Items of one file that map different parts of one extent (what a
 * punched hole or an overwrite in the middle leaves) share nothing. Pending references count,
 * applied on the extent tree's. Only one tree's leaves are seen: a leaf shared by snapshots
 * (bt_clone) holds one reference for all of them.
 *
 * `memo` carries what one call learnt of the last extent whose backrefs it had to read, for
 * the next call about the same extent: zero it before the first call, release it after the
 * last, and do not keep it past the lock the calls were made under (it describes the trees as
 * they were). Returns 0, -ENOENT if the extent has no references at all, -EUCLEAN if its
 * backrefs and the file's items disagree (reported), -ENOMEM, -EIO.
 */
struct extent_span {
	uint64_t start, end;
};
struct extent_share_memo {
	bool valid;
	uint64_t start;               /* the extent described */
	bool beyond;                  /* referenced from outside the file: all of it shared */
	size_t n;                     /* else the disk bytes two or more of its items map */
	struct extent_span *twice;    /* sorted, disjoint */
};
/* [disk, disk + len) of the data extent [extent_start, extent_start + extent_len). */
struct extent_bytes {
	uint64_t extent_start, extent_len;
	uint64_t disk, len;
};
int extent_shared_beyond(struct extents *x, struct btree *tree, uint64_t inode,
			 const struct extent_bytes *b, struct extent_share_memo *memo,
			 bool *shared);
void extent_share_memo_release(struct extent_share_memo *memo);

struct extent_info {
	uint64_t start, len;
	uint64_t refs, generation, flags;
	uint8_t level;
};

/* The extent item at `start` of `len` bytes as the extent tree has it: 0, -ENOENT, -EIO. */
int extent_lookup(struct extents *x, uint64_t start, uint64_t len, struct extent_info *out);

/*
 * Walk the extent tree in address order. extent_fn gets every extent item; tree_ref_fn and
 * data_ref_fn (either may be NULL) every backref entry. A malformed item is reported through
 * fs->report and ends the walk with -EUCLEAN. A non-zero return from a callback stops it.
 */
struct extent_walk {
	int (*extent_fn)(void *arg, const struct extent_info *e);
	int (*tree_ref_fn)(void *arg, uint64_t start, uint64_t owner, uint64_t count);
	int (*data_ref_fn)(void *arg, uint64_t start, const struct extent_data_ref *r);
	void *arg;
};
int extent_walk(struct extents *x, const struct extent_walk *w);
/* The same for one extent: its item and its backrefs only (-ENOENT if it has no item). */
int extent_walk_one(struct extents *x, uint64_t start, const struct extent_walk *w);

#endif
