/* Test fixture for the inode layer: see ifix.h. */
#include "tests/support/ifix.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/inode/check.h"

void ifix_setup(struct ifix *f, const char *name, uint64_t size, uint32_t nodesize)
{
	fsfix_setup(&f->x, name, size, nodesize);
	f->seen[0] = '\0';
	ck_assert_int_eq(inode_make_root(f->x.fs, &f->x.fs->fs_root), 0);
	inode_tree_init(&f->it, f->x.fs, &f->x.fs->fs_root);
}

void ifix_reopen(struct ifix *f)
{
	ck_assert_int_eq(inode_tree_destroy(&f->it), 0);
	fsfix_reopen(&f->x);
	inode_tree_init(&f->it, f->x.fs, &f->x.fs->fs_root);
}

void ifix_check(struct ifix *f)
{
	struct inode_check_stats ns;

	fsfix_assert_clean(&f->x, NULL);
	/* The namespace checker as an oracle too (fsfix cannot: other tests fill fs trees with
	 * items that are no namespace). */
	ck_assert_msg(inode_check_all(f->x.fs, &ns) == 0, "namespace check: %" PRIu64
		      " problems; last: %s", ns.problems, f->x.last_report);
}

void ifix_teardown(struct ifix *f)
{
	ck_assert_int_eq(inode_tree_destroy(&f->it), 0);
	ifix_check(f);
	fsfix_teardown(&f->x);
}

static void collect_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct ifix *f = arg;
	size_t n = strlen(f->seen);

	(void)bytenr;
	f->x.reports++;
	snprintf(f->x.last_report, sizeof(f->x.last_report), "%s", msg);
	if (n + strlen(msg) + 2 < sizeof(f->seen))
		snprintf(f->seen + n, sizeof(f->seen) - n, "%s\n", msg);
	if (getenv("COWFS_TEST_VERBOSE"))
		fprintf(stderr, "report: %s\n", msg);
}

void ifix_collect_reports(struct ifix *f)
{
	f->x.fs->report = collect_report;
	f->x.fs->report_arg = f;
	f->seen[0] = '\0';
}
