/* Test fixture for the inode layer: a whole filesystem (fsfix) with a root directory and an
 * inode_tree over the default fs tree; teardown runs both checkers. */
#ifndef COWFS_TESTS_IFIX_H
#define COWFS_TESTS_IFIX_H

#include <stdint.h>

#include "fs/inode/fmap.h"
#include "fs/inode/inode.h"
#include "tests/support/fsfix.h"

struct ifix {
	struct fsfix x;
	struct inode_tree it;
	char seen[8192];        /* every report since ifix_collect_reports (if called) */
};

void ifix_setup(struct ifix *f, const char *name, uint64_t size, uint32_t nodesize);
/* Close (committing, after the inode layer wrote back and let go) and open again. */
void ifix_reopen(struct ifix *f);
/* The process dies: the inode layer's memory goes, nothing more is written; open again. */
void ifix_crash_reopen(struct ifix *f);
/* The filesystem checker and the namespace checker must both find nothing. */
void ifix_check(struct ifix *f);
/* Let go of the inode layer, check everything, close, remove the image. */
void ifix_teardown(struct ifix *f);
/* From now until the next reopen, every report is appended to f->seen (not just the last). */
void ifix_collect_reports(struct ifix *f);

/* A new inode `name` in `dir` of `mode` (directories through mkdir), owned by 1000:100. */
uint64_t ifix_mk(struct ifix *f, uint64_t dir, const char *name, uint32_t mode);
struct cowfs_attr ifix_attr(struct ifix *f, uint64_t ino);
/* The piece of ino's map (fmap.h) that holds `off`. */
struct fmap_seg ifix_seg_at(struct ifix *f, uint64_t ino, uint64_t off);
/* Write `len` bytes of the pattern `seed` (rng_fill) at `off` of `ino`; fails the test if short. */
void ifix_write_pattern(struct ifix *f, uint64_t ino, size_t len, uint64_t off, uint64_t seed);
/* Every item of the fs tree, as a fingerprint (count and a hash of keys and payloads). */
void ifix_fingerprint(struct ifix *f, uint64_t *count, uint64_t *hash);

/* `call` must return `err` and leave the fs tree exactly as it was. */
#define IFIX_EXPECT_UNCHANGED(f, call, err) do {                                               \
	uint64_t c0_, h0_, c1_, h1_;                                                           \
	ifix_fingerprint(f, &c0_, &h0_);                                                       \
	int r_ = (int)(call);                                                                  \
	ck_assert_msg(r_ == (err), "%s: %d, expected %d", #call, r_, (err));                   \
	ifix_fingerprint(f, &c1_, &h1_);                                                       \
	ck_assert_msg(c0_ == c1_ && h0_ == h1_, "%s changed the tree", #call);                 \
} while (0)

#endif
