/*
 * Several fs trees open on one filesystem at once (what subvolumes and snapshots need): each
 * inode layer registers its own commit, flush and abort hooks (fs/super/trans.h), so every
 * commit writes back the dirty data of all of them, an fsync log replay sends each record to
 * the tree it names, and orphans of every tree are freed.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/icache.h"
#include "fs/inode/namespace_check.h"
#include "tests/support/fsfix.h"

#define NTREES 3
#define ROOT INODE_ROOT_INO
#define DATA_LEN (256u << 10)

struct trees {
	struct fsfix x;
	uint64_t ids[NTREES];         /* FS_TREE_ID, 256, 257 */
	struct inode_tree it[NTREES];
	uint64_t file[NTREES], orphan[NTREES];
};

static struct cowfs_root *root_of(struct trees *t, int i)
{
	struct cowfs_root *r;

	if (t->ids[i] == FS_TREE_ID)
		return cowfs_default_root(t->x.fs);
	cowfs_lock(t->x.fs);
	int ret = cowfs_tree_open(t->x.fs, t->ids[i], &r);
	cowfs_unlock(t->x.fs);
	ck_assert_int_eq(ret, 0);
	return r;
}

static void open_trees(struct trees *t)
{
	for (int i = 0; i < NTREES; i++)
		inode_tree_init(&t->it[i], t->x.fs, root_of(t, i));
}

static void setup(struct trees *t)
{
	struct cowfs_trans *tx;
	struct cowfs_root *r;

	memset(t, 0, sizeof(*t));
	fsfix_setup(&t->x, "trees", 256ull << 20, 4096);
	t->ids[0] = FS_TREE_ID;
	t->ids[1] = 256;
	t->ids[2] = 257;
	for (int i = 1; i < NTREES; i++) {
		tx = cowfs_trans_begin(t->x.fs, ALLOC_NORMAL);
		ck_assert_int_eq(cowfs_trans_end(tx, cowfs_tree_create(tx, t->ids[i], &r)), 0);
	}
	for (int i = 0; i < NTREES; i++)
		ck_assert_int_eq(inode_make_root(t->x.fs, root_of(t, i)), 0);
	ck_assert_int_eq(cowfs_commit(t->x.fs), 0);
	open_trees(t);
}

/* The kernel is gone: every hold is dropped, nothing more is written; open again. */
static void crash_reopen(struct trees *t)
{
	struct cowfs_trans *tx = cowfs_trans_begin(t->x.fs, ALLOC_NORMAL);

	for (int i = 0; i < NTREES; i++) {
		cowfs_hooks_remove(t->x.fs, &t->it[i].hooks);
		if (t->it[i].icache)
			icache_destroy(t->it[i].icache);
		t->it[i].icache = NULL;
	}
	cowfs_trans_end(tx, 0);
	fsfix_crash_reopen(&t->x);
	open_trees(t);
}

static void pattern(uint8_t *buf, size_t len, int tree, int round)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(tree * 31 + round * 7 + i / 4096 + i);
}

static void write_all(struct trees *t, int round)
{
	static uint8_t buf[DATA_LEN];

	for (int i = 0; i < NTREES; i++) {
		pattern(buf, sizeof(buf), i, round);
		ck_assert_int_eq(file_write(&t->it[i], t->file[i], buf, sizeof(buf), 0, 0),
				 (ssize_t)sizeof(buf));
	}
}

static void assert_data(struct trees *t, int round)
{
	static uint8_t want[DATA_LEN], got[DATA_LEN];

	for (int i = 0; i < NTREES; i++) {
		pattern(want, sizeof(want), i, round);
		memset(got, 0, sizeof(got));
		ck_assert_int_eq(file_read(&t->it[i], t->file[i], got, sizeof(got), 0),
				 (ssize_t)sizeof(got));
		ck_assert_msg(memcmp(got, want, sizeof(got)) == 0, "tree %" PRIu64 ": data differs",
			      t->ids[i]);
	}
}

static uint64_t dirty_bytes(struct trees *t, int i)
{
	return t->it[i].icache ? t->it[i].icache->dirty_bytes : 0;
}

static void assert_clean(struct trees *t)
{
	struct inode_check_stats ns;

	fsfix_assert_clean(&t->x, NULL);
	ck_assert_msg(inode_check_all(t->x.fs, &ns) == 0, "namespace check: %s",
		      t->x.last_report);
	ck_assert_uint_eq(ns.trees, NTREES);
}

static uint64_t mk(struct inode_tree *it, const char *name)
{
	struct cowfs_attr a;

	ck_assert_int_eq(inode_create(it, ROOT, name, strlen(name), S_IFREG | 0644, 0, 0, 0, &a), 0);
	return a.ino;
}

/* In every tree a file "f", and (with orphans) a file held by the kernel and unlinked. */
static void make_files(struct trees *t, bool orphans)
{
	for (int i = 0; i < NTREES; i++) {
		t->file[i] = mk(&t->it[i], "f");
		if (!orphans)
			continue;
		t->orphan[i] = mk(&t->it[i], "o");
		ck_assert_int_eq(inode_hold(&t->it[i], t->orphan[i]), 0);
		ck_assert_int_eq(inode_unlink(&t->it[i], ROOT, "o", 1), 0);
	}
}

START_TEST(every_commit_writes_back_every_tree)
{
	struct trees t;
	struct cowfs_attr a;

	setup(&t);
	make_files(&t, true);
	write_all(&t, 1);
	for (int i = 0; i < NTREES; i++)
		ck_assert_uint_eq(dirty_bytes(&t, i), DATA_LEN);
	ck_assert_int_eq(cowfs_commit(t.x.fs), 0);
	for (int i = 0; i < NTREES; i++)
		ck_assert_msg(dirty_bytes(&t, i) == 0,
			      "tree %" PRIu64 " kept %" PRIu64 " dirty bytes", t.ids[i], dirty_bytes(&t, i));
	assert_data(&t, 1);

	/* Written and fsync'd in every tree after the commit: the log holds all three. */
	write_all(&t, 2);
	uint64_t commits = t.x.fs->commits;
	for (int i = 0; i < NTREES; i++)
		ck_assert_int_eq(file_fsync(&t.it[i], t.file[i]), 0);
	ck_assert_uint_eq(t.x.fs->commits, commits);   /* logged, not committed */

	crash_reopen(&t);
	uint64_t records, freed;
	struct inode_tree *its[NTREES] = { &t.it[0], &t.it[1], &t.it[2] };
	ck_assert_int_eq(fsync_log_replay_trees(its, NTREES, &records), 0);
	ck_assert_uint_ge(records, 2 * NTREES);   /* a write and an inode record each */
	assert_data(&t, 2);
	/* The orphans the crash left, one per tree: freed by each tree's cleanup. */
	for (int i = 0; i < NTREES; i++) {
		ck_assert_int_eq(inode_orphans_cleanup(&t.it[i], &freed), 0);
		ck_assert_uint_eq(freed, 1);
		ck_assert_int_eq(inode_getattr(&t.it[i], t.orphan[i], &a), -ENOENT);
	}
	assert_clean(&t);
	for (int i = 0; i < NTREES; i++)
		ck_assert_int_eq(inode_tree_destroy(&t.it[i]), 0);
	assert_clean(&t);
	fsfix_teardown(&t.x);
}
END_TEST

/* An abort resets every tree: each drops its dirty pages and reads its last commit. */
START_TEST(an_abort_resets_every_tree)
{
	struct trees t;

	setup(&t);
	make_files(&t, false);
	write_all(&t, 1);
	ck_assert_int_eq(cowfs_commit(t.x.fs), 0);
	write_all(&t, 2);
	cowfs_lock(t.x.fs);
	cowfs_trans_fail(&t.x.fs->trans, -EIO);
	cowfs_unlock(t.x.fs);
	ck_assert_int_eq(cowfs_commit(t.x.fs), -EIO);   /* aborts */
	ck_assert(cowfs_failure(t.x.fs, NULL));
	for (int i = 0; i < NTREES; i++)
		ck_assert_uint_eq(dirty_bytes(&t, i), 0);
	assert_data(&t, 1);
	crash_reopen(&t);
	assert_data(&t, 1);
	assert_clean(&t);
	for (int i = 0; i < NTREES; i++)
		ck_assert_int_eq(inode_tree_destroy(&t.it[i]), 0);
	fsfix_teardown(&t.x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trees");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, every_commit_writes_back_every_tree);
	tcase_add_test(tc, an_abort_resets_every_tree);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
