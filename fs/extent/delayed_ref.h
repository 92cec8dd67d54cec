/*
 * Delayed references: reference count changes collected in memory during a transaction and
 * applied to the extent tree at commit (btrfs's delayed refs).
 *
 * Why: changing the extent tree shadows extent-tree nodes, which allocates and frees blocks,
 * which changes references: applied immediately, every reference change would recurse into
 * the tree it changes, and a transaction touching 100,000 references would update the extent
 * tree 100,000 times. Collected per extent, the changes net out (a block allocated and freed
 * in one transaction never reaches the tree), and the tree is updated once per extent, in
 * address order, at commit.
 *
 * A head holds the changes still pending for one extent *relative to what the extent tree says
 * now*: applying a head moves its deltas into the tree; changes that arrive while it is being
 * applied (the extent tree shadowing its own nodes) stay in the head for the next round.
 */
#ifndef COWFS_EXTENT_DELAYED_REF_H
#define COWFS_EXTENT_DELAYED_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One backref key's pending change. Tree blocks: inode = offset = 0. */
struct dref_backref {
	uint64_t owner, inode, offset;
	int64_t delta;
};

struct dref_head {
	struct dref_head *next;    /* hash chain */
	uint64_t bytenr, len;
	int64_t delta;             /* pending change of the refcount */
	uint64_t base;             /* refcount in the extent tree (valid if base_known) */
	bool base_known;
	bool is_new;               /* allocated in this transaction: no extent item yet */
	bool is_data;
	uint8_t level;             /* tree blocks */
	uint32_t nback, capback;
	struct dref_backref *back;
	/* Past DREF_INDEX_MIN backrefs, an open-addressing index into back[] (entries are
	 * position + 1, 0 is empty; nslots a power of two at least twice nback): a data extent
	 * that 4 KiB random writes cut up gets a backref per piece, thousands in a transaction,
	 * and finding each by a scan made them quadratic. */
	uint32_t *slots;
	uint32_t nslots;
};

struct dref_table {
	struct dref_head **buckets;
	size_t nbuckets, count;
};

int dref_table_init(struct dref_table *t);
void dref_table_destroy(struct dref_table *t);
/* Free every head, keeping the table. */
void dref_table_clear(struct dref_table *t);

struct dref_head *dref_find(struct dref_table *t, uint64_t bytenr);
/* Find or create the head for `bytenr`; NULL on -ENOMEM. */
struct dref_head *dref_get(struct dref_table *t, uint64_t bytenr);
/* Add `delta` to the backref key (owner, inode, offset). -ENOMEM or 0. */
int dref_backref_add(struct dref_head *h, uint64_t owner, uint64_t inode, uint64_t offset,
		     int64_t delta);
/* Whether a head has nothing left to apply. */
bool dref_head_settled(const struct dref_head *h);
/* Remove and free a head. */
void dref_remove(struct dref_table *t, struct dref_head *h);
/*
 * Give back buckets a big transaction needed and the next ones will not: every walk of the
 * table (dref_snapshot, at every commit) costs its bucket count, not its head count.
 */
void dref_table_shrink(struct dref_table *t);
/* All heads, sorted by bytenr, in a malloc'ed array (caller frees the array, not the heads). */
int dref_snapshot(struct dref_table *t, struct dref_head ***out, size_t *n);

#endif
