/*
 * The abort rule (fs/super/trans.h, docs/DESIGN.md §5), by fault injection: for each of a
 * representative set of inode operations, fail the 1st, 2nd, ... step that changes a tree or
 * allocates space (bt_fs.inject: every item insert, delete, update and resize, every tree
 * block and data allocation) until the operation gets through. After each injected failure
 * either
 *   - the transaction was poisoned and aborted: the first error is reported once and kept
 *     (cowfs_failure), every update returns -EROFS, reads show the last committed generation
 *     exactly (fingerprint of the fs tree and generation), and so does a reopen; fsck is
 *     clean; or
 *   - the failure came before the operation changed anything: the tree is exactly as before,
 *     the transaction is usable (a further update and a commit succeed) and fsck is clean.
 * The first injected failure of every operation is of the second kind, but for those that
 * change buffered file data before their first tree step (a write, a truncate).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/xattr.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define BIG_EXTENTS 100   /* more than INODE_DROP_INLINE: freed in batches after the unlink */

struct injector {
	long countdown;      /* fail the step this counts down to (0: none) */
	long steps;          /* steps seen since armed */
	int err;
	const char *site;    /* where the failure was injected */
};

static int inject(void *arg, const char *site)
{
	struct injector *j = arg;

	j->steps++;
	if (j->countdown > 0 && --j->countdown == 0) {
		j->site = site;
		return j->err;
	}
	return 0;
}

static void arm(struct ifix *f, struct injector *j, long n, int err)
{
	*j = (struct injector){ .countdown = n, .err = err };
	f->x.fs->bfs.inject = inject;
	f->x.fs->bfs.inject_arg = j;
}

static void disarm(struct ifix *f)
{
	f->x.fs->bfs.inject = NULL;
	f->x.fs->bfs.inject_arg = NULL;
}

/* What every operation starts from, committed. */
struct world {
	uint64_t file, other, dir, big, target;
};

static void write_pattern(struct ifix *f, uint64_t ino, uint64_t off, size_t len, int seed)
{
	static char buf[65536];

	ck_assert_uint_le(len, sizeof(buf));
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed + i * 7);
	ck_assert_int_eq(file_write(&f->it, ino, buf, len, off, 0), (ssize_t)len);
}

/* A value too large for its entry's item with 4 KiB nodes: three pieces (xattr.c). */
#define SPILLED_LEN 10000

static const char *spilled_value(void)
{
	static char v[SPILLED_LEN];

	for (size_t i = 0; i < sizeof(v); i++)
		v[i] = (char)(i * 13 + (i >> 8));
	return v;
}

static void build_world(struct ifix *f, struct world *w)
{
	w->file = ifix_mk(f, ROOT, "file", S_IFREG | 0644);
	w->other = ifix_mk(f, ROOT, "other", S_IFREG | 0644);
	w->dir = ifix_mk(f, ROOT, "dir", S_IFDIR | 0755);
	w->target = ifix_mk(f, w->dir, "target", S_IFREG | 0644);
	w->big = ifix_mk(f, ROOT, "big", S_IFREG | 0644);
	write_pattern(f, w->file, 0, 65536, 1);
	write_pattern(f, w->file, 65536, 65536, 2);
	write_pattern(f, w->other, 0, 8192, 3);
	ck_assert_int_eq(inode_setxattr(&f->it, w->file, "user.a", "1", 1, 0), 0);
	ck_assert_int_eq(inode_setxattr(&f->it, w->file, "user.spilled", spilled_value(),
					SPILLED_LEN, 0), 0);
	/* One extent per 4 KiB piece: every other page, written back by its own commit. */
	for (int i = 0; i < BIG_EXTENTS; i++) {
		write_pattern(f, w->big, (uint64_t)i * 8192, 4096, i);
		if (i % 25 == 24)
			ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	}
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
}

/* ---- the operations ------------------------------------------------------------------ */

static int op_create(struct ifix *f, const struct world *w)
{
	struct cowfs_attr a;

	return inode_create(&f->it, w->dir, "new", 3, S_IFREG | 0644, 0, 0, 0, &a);
}

static int op_write(struct ifix *f, const struct world *w)
{
	static char buf[16384];
	ssize_t n;

	memset(buf, 'w', sizeof(buf));
	n = file_write(&f->it, w->file, buf, sizeof(buf), 200000, 0);
	/* Buffered data reaches the trees at write-back: make it part of the operation. */
	return n < 0 ? (int)n : file_fsync(&f->it, w->file);
}

static int op_truncate(struct ifix *f, const struct world *w)
{
	struct cowfs_attr a = { .size = 10000 };

	return inode_setattr(&f->it, w->file, INODE_SET_SIZE, &a);
}

static int op_rename(struct ifix *f, const struct world *w)
{
	/* Over an existing name: the target's inode goes with it. */
	return inode_rename(&f->it, ROOT, "other", 5, w->dir, "target", 6, 0);
}

static int op_setxattr(struct ifix *f, const struct world *w)
{
	return inode_setxattr(&f->it, w->file, "user.b", "value", 5, 0);
}

static int op_setxattr_spilled(struct ifix *f, const struct world *w)
{
	return inode_setxattr(&f->it, w->file, "user.c", spilled_value(), SPILLED_LEN, 0);
}

static int op_replace_spilled(struct ifix *f, const struct world *w)
{
	return inode_setxattr(&f->it, w->file, "user.spilled", "small", 5, XATTR_REPLACE);
}

static int op_removexattr_spilled(struct ifix *f, const struct world *w)
{
	return inode_removexattr(&f->it, w->file, "user.spilled");
}

static int op_unlink_big(struct ifix *f, const struct world *w)
{
	(void)w;
	return inode_unlink(&f->it, ROOT, "big", 3);
}

static int op_clone(struct ifix *f, const struct world *w)
{
	ssize_t n = file_copy_range(&f->it, w->file, 0, w->other, 65536, 65536);

	return n < 0 ? (int)n : 0;
}

struct op {
	const char *name;
	int (*run)(struct ifix *f, const struct world *w);
	/* Whether a failure the transaction survives leaves the tree exactly as before. Not so
	 * for the unlink of a big file: its name goes in one update, its extents in batches of
	 * their own, and a batch failing cleanly leaves a consistent orphan. */
	bool atomic;
	/* Whether the operation changes buffered file data before its first tree step (a write
	 * copies into the pages, a truncate zeroes the tail of the last page): then no step comes
	 * before a change, and the first failure poisons too. */
	bool pages_first;
};

static const struct op ops[] = {
	{ "create", op_create, true, false },
	{ "write", op_write, true, true },
	{ "truncate", op_truncate, true, true },
	{ "rename", op_rename, true, false },
	{ "setxattr", op_setxattr, true, false },
	{ "setxattr of a value in pieces", op_setxattr_spilled, true, false },
	{ "a value in pieces replaced by a small one", op_replace_spilled, true, false },
	{ "removexattr of a value in pieces", op_removexattr_spilled, true, false },
	{ "unlink of a big file", op_unlink_big, false, false },
	{ "clone", op_clone, true, false },
};

/* ---- the checks ------------------------------------------------------------------------ */

struct snapshot {
	uint64_t count, hash, generation;
};

static struct snapshot take(struct ifix *f)
{
	struct snapshot s;

	ifix_fingerprint(f, &s.count, &s.hash);
	s.generation = cowfs_generation(f->x.fs);
	return s;
}

static void assert_same(struct ifix *f, const struct snapshot *want, const char *when)
{
	struct snapshot got = take(f);

	ck_assert_msg(got.count == want->count && got.hash == want->hash &&
		      got.generation == want->generation,
		      "%s: %" PRIu64 " items at generation %" PRIu64 ", want %" PRIu64 " at %" PRIu64, when, got.count, got.generation, want->count, want->generation);
}

static void check_aborted(struct ifix *f, const struct snapshot *committed, int err,
			  const char *what)
{
	struct cowfs_failure fl;
	struct cowfs_attr a;

	ck_assert_msg(cowfs_failure(f->x.fs, &fl), "%s: poisoned but not aborted", what);
	ck_assert_int_eq(fl.err, err);
	ck_assert_uint_eq(fl.generation, committed->generation);
	ck_assert_msg(strstr(f->seen, "aborted") != NULL, "%s: abort not reported", what);
	ck_assert_msg(strstr(fl.msg, "aborted") && strstr(fl.msg, strerror(-err)),
		      "%s: failure says %s", what, fl.msg);
	/* Read-only for updates, reads of the last commit. */
	ck_assert_int_eq(inode_create(&f->it, ROOT, "after", 5, S_IFREG | 0644, 0, 0, 0, &a),
			 -EROFS);
	ck_assert_int_eq(cowfs_commit(f->x.fs), -EROFS);
	assert_same(f, committed, what);
	ifix_crash_reopen(f);
	assert_same(f, committed, what);
	ifix_check(f);
}

static void check_survived(struct ifix *f, const struct snapshot *before, bool atomic,
			   const char *what)
{
	struct cowfs_attr a;

	ck_assert_msg(!cowfs_failure(f->x.fs, NULL), "%s: aborted", what);
	if (atomic)
		assert_same(f, before, what);
	ck_assert_int_eq(inode_create(&f->it, ROOT, "after", 5, S_IFREG | 0644, 0, 0, 0, &a), 0);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	ifix_check(f);
	ifix_crash_reopen(f);
	ifix_check(f);
}

/*
 * Fail step n of `op` with `err`: 1 if the step was reached, 0 if the operation did not take
 * that many steps (and succeeded).
 */
static int run_once(const struct op *op, long n, int err, bool *poisoned)
{
	struct ifix f;
	struct world w;
	struct injector j;
	char what[128];

	if (getenv("COWFS_TEST_VERBOSE"))
		fprintf(stderr, "%s: failure %ld\n", op->name, n);
	ifix_setup(&f, "abort", 64ull << 20, 4096);
	build_world(&f, &w);
	ifix_collect_reports(&f);
	struct snapshot committed = take(&f);
	arm(&f, &j, n, err);
	int ret = op->run(&f, &w);
	disarm(&f);
	if (!j.site) {
		ck_assert_msg(ret == 0, "%s without a failure: %d", op->name, ret);
		ifix_teardown(&f);
		return 0;
	}
	snprintf(what, sizeof(what), "%s, failure %ld (%s, %s)", op->name, n, j.site,
		 strerror(-err));
	ck_assert_msg(ret < 0, "%s: the operation succeeded", what);
	*poisoned = cowfs_trans_error(&f.x.fs->trans) != 0;
	if (*poisoned)
		check_aborted(&f, &committed, err, what);
	else
		check_survived(&f, &committed, op->atomic, what);
	ifix_teardown(&f);
	return 1;
}

static void sweep(const struct op *op, int err)
{
	long n, aborted = 0;
	bool poisoned = false;

	for (n = 1; run_once(op, n, err, &poisoned); n++) {
		if (n == 1)
			ck_assert_msg(poisoned == op->pages_first,
				      "%s: the first failure %s", op->name,
				      poisoned ? "poisoned, before any change" : "did not poison");
		aborted += poisoned;
	}
	ck_assert_msg(n > 2 && aborted > 0, "%s: %ld steps, %ld aborts", op->name, n - 1, aborted);
	if (getenv("COWFS_TEST_VERBOSE"))
		fprintf(stderr, "%s (%s): %ld steps, %ld aborted\n", op->name, strerror(-err),
			n - 1, aborted);
}

START_TEST(every_step_fails_with_enomem)
{
	sweep(&ops[_i], -ENOMEM);
}
END_TEST

START_TEST(every_step_fails_with_eio)
{
	sweep(&ops[_i], -EIO);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("abort");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, every_step_fails_with_enomem, 0, sizeof(ops) / sizeof(ops[0]));
	tcase_add_loop_test(tc, every_step_fails_with_eio, 0, sizeof(ops) / sizeof(ops[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
