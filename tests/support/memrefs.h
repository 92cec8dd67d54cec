/*
 * memrefs: an in-memory stand-in for the extent tree, implementing struct bt_ops for tests and
 * the B+tree benchmark. It allocates node-sized blocks from a byte range of the image and
 * keeps their refcounts in a hash table.
 *
 * Freed blocks are pinned until memrefs_unpin() (call it after a commit), like the real
 * allocator: a block freed in a transaction is not reused before the transaction commits.
 *
 * External references: items of type MEMREFS_EXT_TYPE carry an 8-byte "extent id" (non-zero)
 * as the first bytes of their payload, like a file extent item referencing a data extent.
 * item_refs counts references to those ids, so tests can check the item hook too.
 * Owners (backref keys) must be below 4096 and non-zero.
 */
#ifndef COWFS_TESTS_MEMREFS_H
#define COWFS_TESTS_MEMREFS_H

#include <stdint.h>

#include "fs/btree/btree.h"

#define MEMREFS_EXT_TYPE 200

struct memrefs;

extern const struct bt_ops memrefs_ops;

struct memrefs *memrefs_create(uint64_t start, uint64_t end, uint32_t nodesize);
void memrefs_destroy(struct memrefs *m);

/* Refcount of a tree block (0 = free or pinned). */
uint64_t memrefs_refs(struct memrefs *m, uint64_t bytenr);
/* Number of tree blocks with a non-zero refcount. */
uint64_t memrefs_allocated(struct memrefs *m);
/* Make blocks freed so far reusable. */
void memrefs_unpin(struct memrefs *m);
/* Call fn for every allocated block; stops at the first non-zero return and returns it. */
int memrefs_for_each(struct memrefs *m, int (*fn)(void *arg, uint64_t bytenr, uint64_t refs),
		     void *arg);

/* External references (items of MEMREFS_EXT_TYPE), counted through item_refs. */
uint64_t memrefs_ext_refs(struct memrefs *m, uint64_t ext_id);
int memrefs_for_each_ext(struct memrefs *m, int (*fn)(void *arg, uint64_t id, uint64_t refs),
			 void *arg);

/* Backrefs: references to a block (or extent id) recorded under one owner key. */
uint64_t memrefs_backref(struct memrefs *m, uint64_t bytenr, uint64_t owner);
uint64_t memrefs_ext_backref(struct memrefs *m, uint64_t ext_id, uint64_t owner);
/* How many (block, owner) / (extent, owner) keys have a non-zero count. */
uint64_t memrefs_backref_keys(struct memrefs *m);
uint64_t memrefs_ext_backref_keys(struct memrefs *m);

/* Fault hooks for tests: make the next block_alloc fail with `err` after `n` more successes. */
void memrefs_fail_alloc_after(struct memrefs *m, uint64_t n, int err);

#endif
