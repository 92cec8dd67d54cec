/* Test fixture for whole filesystems: a fresh image, format, open, check, reopen. */
#ifndef COWFS_TESTS_FSFIX_H
#define COWFS_TESTS_FSFIX_H

#include <stdint.h>

#include "fs/super/fsck.h"
#include "fs/super/fs.h"

struct fsfix {
	char path[512];
	uint64_t size;
	uint32_t nodesize;
	struct cowfs *fs;
	/* Used by every open after they are set (0: the defaults); see fsfix_set_memory. */
	size_t cache_bytes, dirty_limit;
	int reports;
	char last_report[256];
	int commit_interval_ms;   /* for the next open: 0 none (commits where tests make them) */
};

/* Create an image of `size` bytes, format it, open it. */
void fsfix_setup(struct fsfix *x, const char *name, uint64_t size, uint32_t nodesize);
/* Close (committing) and open again. */
void fsfix_reopen(struct fsfix *x);   /* x->fs may be NULL (closed by the test) */
/* Open again (committing first) with this memory bound and dirty limit (cowfs_opts). */
void fsfix_set_memory(struct fsfix *x, size_t cache_bytes, size_t dirty_limit);
/* Close without committing what is pending (as if the process died), and open again. */
void fsfix_crash_reopen(struct fsfix *x);
void fsfix_teardown(struct fsfix *x);
/* cowfs_check must find nothing; on failure the message names the last problem. */
void fsfix_assert_clean(struct fsfix *x, struct cowfs_check_stats *st);
/* A hash of every item (keys, sizes, payloads) of a tree, in order. */
uint64_t fsfix_tree_digest(struct btree *t);
/*
 * Fill the filesystem: items of `len` bytes (at most 400) into the default fs tree, one
 * ordinary update each (space reserved first), until the reserve fails with ENOSPC (asserted;
 * the transaction is left unpoisoned). Returns how many went in; item i has key
 * fsfix_fill_key(i).
 */
uint64_t fsfix_fill(struct fsfix *x, uint32_t len);
struct bt_key fsfix_fill_key(uint64_t i);
/* Open options with this fixture's report hook. */
struct cowfs_opts fsfix_opts(struct fsfix *x);

#endif
