/*
 * Exclusive space of a set of trees (docs/DESIGN.md 16, "Exclusive space"): the bytes of tree
 * blocks and of data extents that only trees of the set reach, i.e. what dropping all of them
 * together would free.
 *
 * extent_exclusive_of() answers from reference counts, reading only what the set holds alone
 * (exclusive.c proves why that is exact). extent_exclusive_recount() answers the same question
 * by brute force, without looking at a single reference count: it walks every tree it is
 * given completely and notes which of them reach each extent (exclusive_check.c). The second
 * is the oracle for the first (tests, fsck, `cowfs dump --subvol-space`).
 *
 * Both read nodes through the B+tree's read-only view (fs/btree/view.h) and run with the
 * trees still (the caller holds the filesystem lock): pending reference changes of the
 * running transaction count, as extent_refcount() sees them.
 */
#ifndef COWFS_EXTENT_EXCLUSIVE_H
#define COWFS_EXTENT_EXCLUSIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/extent/extent.h"

struct extent_exclusive {
	uint64_t exclusive_meta;   /* bytes of tree blocks only the set reaches */
	uint64_t exclusive_data;   /* bytes (whole disk length) of data extents only it reaches */
	uint64_t referenced;       /* with `referenced`: every distinct extent the set reaches */
	uint64_t nodes_read;       /* tree nodes read to answer */
};

/*
 * The exclusive space of trees set[0..n) together (each given once). `referenced` adds a full
 * walk of the set for out->referenced. `mem_limit` bounds the memory the count takes (0: no
 * bound): -ENOMEM beyond it. Errors: -ENOMEM, -EIO (a node unreadable: reported), -EUCLEAN (a
 * reference count below what the set alone holds, or a referenced extent with no count:
 * reported, naming the block).
 */
int extent_exclusive_of(struct extents *x, struct btree *const *set, size_t n, bool referenced,
			size_t mem_limit, struct extent_exclusive *out);

/*
 * The same figures by brute force: walks every tree of trees[0..n) completely (all trees that
 * can reach a tree block or data extent: every fs tree of the filesystem), notes for every
 * tree block and data extent whether a tree with in_set[i] and whether one without reaches
 * it, and sums those reached from the set only. out->referenced is always computed;
 * nodes_read counts the nodes read. Reference counts are never looked at. Errors as above
 * (-EUCLEAN: one data extent seen with two lengths).
 */
int extent_exclusive_recount(struct extents *x, struct btree *const *trees, const bool *in_set,
			     size_t n, size_t mem_limit, struct extent_exclusive *out);

/*
 * Shared by the two (not for other callers): every data extent the file extent items of leaf
 * `n` reference, in slot order, to fn (which returns 0 to go on or a negative errno to stop);
 * a malformed item is reported, naming the leaf, and is -EUCLEAN. And the report of damage
 * found at `bytenr` (-EUCLEAN).
 */
struct bt_node;
int extent_leaf_data_refs(struct extents *x, const struct bt_node *n,
			  int (*fn)(void *arg, uint64_t start, uint64_t len), void *arg);
int extent_exclusive_corrupt(struct extents *x, uint64_t bytenr, const char *msg);

#endif
