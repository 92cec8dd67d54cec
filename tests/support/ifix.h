/* Test fixture for the inode layer: a whole filesystem (fsfix) with a root directory and an
 * inode_tree over the default fs tree; teardown runs both checkers. */
#ifndef COWFS_TESTS_IFIX_H
#define COWFS_TESTS_IFIX_H

#include <stdint.h>

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
/* The filesystem checker and the namespace checker must both find nothing. */
void ifix_check(struct ifix *f);
/* Let go of the inode layer, check everything, close, remove the image. */
void ifix_teardown(struct ifix *f);
/* From now until the next reopen, every report is appended to f->seen (not just the last). */
void ifix_collect_reports(struct ifix *f);

#endif
