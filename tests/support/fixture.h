/*
 * Test fixture: an image file under $COWFS_TEST_DIR with a blockdev, a block cache, the
 * in-memory refcount table (memrefs) and a bt_fs/bt_trans over them, plus seeds and helpers
 * shared by the B+tree tests.
 */
#ifndef COWFS_TESTS_FIXTURE_H
#define COWFS_TESTS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <check.h>

#include "fs/btree/btree.h"
#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "tests/support/memrefs.h"

struct fixture {
	char path[512];
	uint64_t size;
	struct blockdev *bd;
	struct bcache *cache;
	struct memrefs *mr;
	struct bt_fs fs;
	struct bt_trans tx;
	int reports;            /* on-disk inconsistencies reported through fs.report */
	char last_report[256];
};

/*
 * Assert without Check's bookkeeping: every ck_assert_* writes a checkpoint record to the
 * test runner's pipe, which dominates loops that verify millions of facts.
 */
#define REQUIRE(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

/* Run a suite the way every test program does; returns the program's exit status. */
int run_suite(Suite *s);

/* Scratch directory for test images ($COWFS_TEST_DIR or /tmp). */
const char *test_dir(void);

/* Seed for randomized tests: $COWFS_TEST_SEED if set, else `def`. Printed, so failures reproduce. */
uint64_t test_seed(const char *test, uint64_t def);
uint64_t rng_next(uint64_t *state);   /* splitmix64 */
/* `len` bytes of the pattern `seed` (the top byte of each splitmix64 step). */
void rng_fill(uint8_t *buf, size_t len, uint64_t seed);

/* New image of `size` bytes, nodes of `nodesize`; node space starts at 1 MiB. */
void fixture_setup(struct fixture *f, const char *name, uint32_t nodesize, uint64_t size);
void fixture_teardown(struct fixture *f);
/* Write back every dirty node, flush, unpin freed blocks, start the next transaction. */
void fixture_commit(struct fixture *f);
/* Drop the cache and device and open them again (cold cache); memrefs is kept. */
void fixture_reopen(struct fixture *f);

/*
 * Refcount conservation across all live roots: every reachable node's count equals the number
 * of pointers to it from distinct reachable nodes plus root pointers; nothing else is
 * allocated; every external (EXT item) count equals the number of items referencing it in
 * distinct reachable leaves. Fails the test (ck_assert) on the first mismatch.
 */
void assert_refcounts_conserved(struct fixture *f, struct btree **roots, int nroots);

#endif
