/* Test fixture for whole filesystems: a fresh image, format, open, check, reopen. */
#ifndef COWFS_TESTS_FSFIX_H
#define COWFS_TESTS_FSFIX_H

#include <stdint.h>

#include "fs/super/check.h"
#include "fs/super/fs.h"

struct fsfix {
	char path[512];
	uint64_t size;
	uint32_t nodesize;
	struct cowfs *fs;
	int reports;
	char last_report[256];
	int commit_interval_ms;   /* for the next open: 0 none (commits where tests make them) */
};

/* Create an image of `size` bytes, format it, open it. */
void fsfix_setup(struct fsfix *x, const char *name, uint64_t size, uint32_t nodesize);
/* Close (committing) and open again. */
void fsfix_reopen(struct fsfix *x);
/* Close without committing what is pending (as if the process died), and open again. */
void fsfix_crash_reopen(struct fsfix *x);
void fsfix_teardown(struct fsfix *x);
/* cowfs_check must find nothing; on failure the message names the last problem. */
void fsfix_assert_clean(struct fsfix *x, struct cowfs_check_stats *st);
/* Open options with this fixture's report hook. */
struct cowfs_opts fsfix_opts(struct fsfix *x);

#endif
