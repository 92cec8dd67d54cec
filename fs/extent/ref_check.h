/*
 * The reference checker: fsck's check of every extent's references, and its repair.
 *
 * It reads every node of the trees it is given, each distinct node once (verifying each as
 * it is read), checks each tree's structure, and recomputes from what it reached the exact count and backrefs every extent
 * must have: one reference per pointer from a distinct reachable node (keyed by that node's
 * owner) or per tree root (keyed by the tree id), and one per file extent item in a distinct
 * reachable leaf (keyed by the leaf's owner, the inode and the file offset). It then compares
 * that with the extent tree item by item: counts, kinds, lengths, levels, every backref;
 * extents nothing references (leaks); referenced extents with no item; overlapping extents;
 * extents outside the data area or over a superblock copy. Last, the checksum tree against the
 * data extents: every sector of an extent a regular file extent item references has exactly
 * one checksum, and no checksum lies outside such an extent.
 *
 * Which trees exist is the caller's knowledge (fs/super's root items), not this layer's: it
 * hands the checker every tree, the root tree included, then asks for the comparison.
 *
 * Repair queues the difference between what the trees say and what the extent tree stores
 * through the extent layer's own reference path: extent_ref_add and extent_ref_drop for each
 * backref that is missing, extra or miscounted, and, where no reference added or dropped can
 * express the fix, extent_recount (a count that disagrees with the extent's own backrefs),
 * extent_forget_leak (an extent nothing references) and extent_adopt (a referenced extent
 * with no item). An ordinary commit applies them. Corrections are queued only while nothing
 * beyond repair has been found (unreadable nodes, broken structure, extents of the wrong kind
 * or length): computed against damaged trees they would make things worse, and they are never
 * committed then.
 *
 * Every problem is reported through the bt_fs's report hook with the block it concerns.
 * Memory: proportional to the number of extents.
 */
#ifndef COWFS_EXTENT_REF_CHECK_H
#define COWFS_EXTENT_REF_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/extent/extent.h"

/* Bytes no extent may touch (the superblock copies and the space kept around them). */
struct ref_check_hole {
	uint64_t start, len;
};

/*
 * Where a check is, for a progress display (fsck -C): pass 1 walks the trees (done and total
 * count trees), pass 2 compares the extent tree with what they say (extent items, against
 * the extents the trees reference), pass 3 checks the checksum tree (bytes of the data area,
 * by address). done never exceeds total. nodes: tree nodes read so far, for a human display.
 */
enum { REF_CHECK_PASS_TREES = 1, REF_CHECK_PASS_EXTENTS = 2, REF_CHECK_PASS_CSUMS = 3 };

struct ref_check_progress {
	unsigned pass;
	uint64_t done, total;
	uint64_t nodes;
};

typedef void (*ref_check_progress_fn)(void *arg, const struct ref_check_progress *p);

struct ref_check_opts {
	uint64_t data_start, data_end;      /* every extent lies in [data_start, data_end) */
	const struct ref_check_hole *holes; /* and touches none of these */
	size_t nholes;
	bool repair;                        /* queue corrections (the filesystem is writable) */
	struct bt_trans *tx;                /* with repair: the transaction they are queued in */
	uint64_t trees;                     /* how many trees the caller will give (pass 1) */
	ref_check_progress_fn progress;     /* now and then, and at each pass's end; may be NULL */
	void *progress_arg;
};

struct ref_check_stats {
	uint64_t trees;          /* trees walked */
	uint64_t tree_blocks;    /* distinct reachable nodes */
	uint64_t data_extents;   /* distinct referenced data extents */
	uint64_t extent_items;   /* items in the extent tree */
	uint64_t bytes_used;     /* the lengths of the extent items something references */
	uint64_t problems;       /* each also reported */
	uint64_t queued;         /* problems a correction was queued for */
	uint64_t unfixable;      /* problems repair cannot fix */
};

struct ref_check;

/* A checker for the extents of `x` (its extent and checksum trees). -ENOMEM. */
int ref_check_begin(struct extents *x, const struct ref_check_opts *o, struct ref_check **out);

/*
 * Count the references tree `t` holds: its root pointer, and everything in the nodes it
 * reaches that no tree given before reached; then check its structure (bt_check), since
 * references counted in a broken tree are not to be trusted. An unreadable node is a problem,
 * not the end: the walk goes on without its subtree. 0, or -ENOMEM.
 */
int ref_check_tree(struct ref_check *rc, struct btree *t);

/*
 * After every tree: compare with the extent tree, check the checksum tree against the data
 * extents, report referenced extents and backrefs the extent tree lacks; with repair, queue
 * the corrections. An extent or checksum tree that cannot be read completely is one more
 * problem. 0, or -ENOMEM.
 */
int ref_check_compare(struct ref_check *rc);

const struct ref_check_stats *ref_check_stats(const struct ref_check *rc);
void ref_check_end(struct ref_check *rc);

#endif
