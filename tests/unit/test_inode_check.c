/*
 * fs/inode/namespace_check.c, the namespace checker: a varied workload checks clean; each kind of damage,
 * written straight into the fs tree, is reported naming the inode; fsck.cowfs exits 4 on a
 * damaged namespace and --repair writes nothing.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/inode/namespace_check.h"
#include "fs/inode/inode.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define IMG (64ull << 20)
#define ROOT INODE_ROOT_INO

static void cfix_setup(struct ifix *f, const char *name)
{
	ifix_setup(f, name, IMG, 4096);
	ifix_collect_reports(f);
}

static uint64_t mk(struct ifix *f, uint64_t dir, const char *name, uint32_t mode)
{
	struct cowfs_attr a;
	int ret;

	if (S_ISDIR(mode))
		ret = inode_mkdir(&f->it, dir, name, strlen(name), mode, 0, 0, &a);
	else
		ret = inode_create(&f->it, dir, name, strlen(name), mode, 0, 0, 0, &a);
	REQUIRE(ret == 0, "create %s: %d", name, ret);
	return a.ino;
}

static struct inode_check_stats check_ns(struct ifix *f, int want)
{
	struct inode_check_stats st;

	ck_assert_int_eq(inode_check_all(f->x.fs, &st), want);
	return st;
}

/* The namespace check found damage and said which inode. */
static void assert_reported(struct ifix *f, uint64_t ino)
{
	struct inode_check_stats st = check_ns(f, -EUCLEAN);
	char needle[64];

	ck_assert_uint_gt(st.problems, 0);
	snprintf(needle, sizeof(needle), "inode %" PRIu64 ":", ino);
	ck_assert_msg(strstr(f->seen, needle), "no report names inode %" PRIu64 "; got:\n%s", ino,
		      f->seen);
}

/* Damage helpers: each one change, committed. */
static void del_item(struct ifix *f, uint64_t objectid, uint8_t type, uint64_t offset)
{
	struct bt_key k = { objectid, type, offset };
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_PRIVILEGED);

	ck_assert_int_eq(bt_delete(&tx->bt, &f->x.fs->fs_root.t, &k), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
}

static void set_nlink(struct ifix *f, uint64_t ino, uint32_t nlink)
{
	struct bt_key k = { ino, INODE_ITEM_KEY, 0 };
	struct inode_item raw;
	uint32_t len;

	ck_assert_int_eq(bt_lookup(&f->x.fs->fs_root.t, &k, &raw, sizeof(raw), &len), 0);
	put_le32(&raw.nlink, nlink);
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_update(&tx->bt, &f->x.fs->fs_root.t, &k, &raw, sizeof(raw)), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
}

/* The DIR_INDEX offset of the only link of `ino` in `dir`. */
static uint64_t index_of(struct ifix *f, uint64_t ino, uint64_t dir)
{
	struct bt_key k = { ino, INODE_REF_KEY, dir };
	uint8_t buf[300];
	uint32_t len;

	ck_assert_int_eq(bt_lookup(&f->x.fs->fs_root.t, &k, buf, sizeof(buf), &len), 0);
	return get_le64(&((struct inode_ref_entry *)buf)->index);
}

/* ---- clean ------------------------------------------------------------------------------------ */

START_TEST(workload_checks_clean)
{
	struct ifix f;
	struct cowfs_attr a;
	char name[32];

	cfix_setup(&f, "nsck-clean");
	check_ns(&f, 0);   /* just the root */
	uint64_t d1 = mk(&f, ROOT, "d1", S_IFDIR | 0755);
	uint64_t d2 = mk(&f, d1, "d2", S_IFDIR | 0755);
	uint64_t d3 = mk(&f, ROOT, "d3", S_IFDIR | 0755);
	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), "file%d", i);
		mk(&f, i % 2 ? d1 : d2, name, S_IFREG | 0644);
	}
	uint64_t hl = mk(&f, ROOT, "linked", S_IFREG | 0644);
	ck_assert_int_eq(inode_link(&f.it, hl, d1, "l2", 2, &a), 0);
	ck_assert_int_eq(inode_link(&f.it, hl, d2, "l3", 2, &a), 0);
	ck_assert_int_eq(inode_link(&f.it, hl, d2, "l4", 2, &a), 0);
	ck_assert_int_eq(inode_symlink(&f.it, d3, "sym", 3, "d1/file1", 8, 0, 0, &a), 0);
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "sym2", 4, "x", 1, 0, 0, &a), 0);
	mk(&f, ROOT, "fifo", S_IFIFO | 0600);
	ck_assert_int_eq(inode_rename(&f.it, d1, "file1", 5, d3, "moved", 5, 0), 0);
	ck_assert_int_eq(inode_rename(&f.it, d1, "d2", 2, d3, "d2moved", 7, 0), 0);
	ck_assert_int_eq(inode_rename(&f.it, d2, "file0", 5, d2, "file2", 5, 0), 0);   /* replace */
	ck_assert_int_eq(inode_rename(&f.it, ROOT, "sym2", 4, d3, "moved", 5,
				      INODE_RENAME_EXCHANGE), 0);
	ck_assert_int_eq(inode_unlink(&f.it, d1, "l2", 2), 0);
	ck_assert_int_eq(inode_unlink(&f.it, d1, "file3", 5), 0);
	mk(&f, d3, "empty", S_IFDIR | 0700);
	ck_assert_int_eq(inode_rmdir(&f.it, d3, "empty", 5), 0);
	check_ns(&f, 0);
	fsfix_reopen(&f.x);
	ifix_collect_reports(&f);
	inode_tree_init(&f.it, f.x.fs, &f.x.fs->fs_root);
	struct inode_check_stats st = check_ns(&f, 0);
	ck_assert_uint_eq(st.trees, 1);
	ck_assert_uint_eq(st.dirs, 4);
	ck_assert_uint_eq(st.inodes, 4 + 60 - 2 + 1 + 2 + 1);
	ck_assert_int_eq(f.x.reports, 0);
	fsfix_assert_clean(&f.x, NULL);
	fsfix_teardown(&f.x);
}
END_TEST

/* ---- damage -------------------------------------------------------------------------------- */

START_TEST(missing_dir_index)
{
	struct ifix f;

	cfix_setup(&f, "nsck-index");
	uint64_t d = mk(&f, ROOT, "d", S_IFDIR | 0755);
	uint64_t file = mk(&f, d, "victim", S_IFREG | 0644);
	check_ns(&f, 0);
	del_item(&f, d, DIR_INDEX_KEY, index_of(&f, file, d));
	assert_reported(&f, file);
	fsfix_teardown(&f.x);
}
END_TEST

START_TEST(missing_inode_ref)
{
	struct ifix f;

	cfix_setup(&f, "nsck-ref");
	uint64_t file = mk(&f, ROOT, "victim", S_IFREG | 0644);
	del_item(&f, file, INODE_REF_KEY, ROOT);
	assert_reported(&f, file);
	fsfix_teardown(&f.x);
}
END_TEST

START_TEST(wrong_file_nlink)
{
	struct ifix f;
	struct cowfs_attr a;

	cfix_setup(&f, "nsck-nlink");
	uint64_t file = mk(&f, ROOT, "victim", S_IFREG | 0644);
	ck_assert_int_eq(inode_link(&f.it, file, ROOT, "again", 5, &a), 0);
	set_nlink(&f, file, 3);
	assert_reported(&f, file);
	fsfix_teardown(&f.x);
}
END_TEST

START_TEST(wrong_dir_nlink)
{
	struct ifix f;

	cfix_setup(&f, "nsck-dnlink");
	uint64_t d = mk(&f, ROOT, "d", S_IFDIR | 0755);
	mk(&f, d, "sub", S_IFDIR | 0755);
	set_nlink(&f, d, 2);   /* should be 3: one subdirectory */
	assert_reported(&f, d);
	fsfix_teardown(&f.x);
}
END_TEST

/* A directory entry (DIR_ITEM only) naming an inode that does not exist. */
START_TEST(entry_to_missing_inode)
{
	struct ifix f;
	uint8_t buf[sizeof(struct dir_entry) + 5];
	struct dir_entry *e = (void *)buf;

	cfix_setup(&f, "nsck-dangling");
	mk(&f, ROOT, "real", S_IFREG | 0644);
	memset(buf, 0, sizeof(buf));
	put_le64(&e->child, 4242);
	e->type = S_IFREG >> 12;
	put_le16(&e->name_len, 5);
	memcpy(buf + sizeof(*e), "ghost", 5);
	struct bt_key k = { ROOT, DIR_ITEM_KEY, cowfs_csum("ghost", 5) };
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_insert(&tx->bt, &f.x.fs->fs_root.t, &k, buf, sizeof(buf)), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	assert_reported(&f, ROOT);
	ck_assert_ptr_nonnull(strstr(f.seen, "4242"));
	ck_assert_ptr_nonnull(strstr(f.seen, "ghost"));
	fsfix_teardown(&f.x);
}
END_TEST

/* An inode item nothing links to (nlink 0, so only reachability is wrong). */
START_TEST(unreachable_inode)
{
	struct ifix f;
	struct inode_item raw;
	uint32_t len;

	cfix_setup(&f, "nsck-orphan");
	uint64_t file = mk(&f, ROOT, "model", S_IFREG | 0644);
	struct bt_key mk_key = { file, INODE_ITEM_KEY, 0 }, k = { file + 100, INODE_ITEM_KEY, 0 };
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &mk_key, &raw, sizeof(raw), &len), 0);
	put_le32(&raw.nlink, 0);
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_insert(&tx->bt, &f.x.fs->fs_root.t, &k, &raw, sizeof(raw)), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct inode_check_stats st = check_ns(&f, -EUCLEAN);
	ck_assert_uint_eq(st.problems, 1);
	ck_assert_ptr_nonnull(strstr(f.seen, "unreachable"));
	f.seen[0] = '\0';
	assert_reported(&f, file + 100);
	fsfix_teardown(&f.x);
}
END_TEST

/* ---- fsck.cowfs -------------------------------------------------------------------------- */

static int run_fsck(const char *args, const char *image)
{
	const char *bin = getenv("COWFS_BIN");
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "%s/fsck.cowfs %s %s >/dev/null 2>&1",
		 bin && *bin ? bin : "build/bin", args, image);
	int st = system(cmd);
	ck_assert_msg(WIFEXITED(st), "fsck did not exit normally (%d): crashed?", st);
	return WEXITSTATUS(st);
}

/* A checksum of the whole image file. */
static uint64_t file_sum(const char *path)
{
	FILE *fp = fopen(path, "rb");
	static uint8_t buf[1 << 16];
	uint64_t sum = 0;
	size_t n;

	ck_assert_ptr_nonnull(fp);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		sum = sum * 0x100000001b3ull ^ cowfs_csum(buf, n);
	fclose(fp);
	return sum;
}

START_TEST(fsck_exit_codes)
{
	struct ifix f;

	cfix_setup(&f, "nsck-fsck");
	uint64_t d = mk(&f, ROOT, "d", S_IFDIR | 0755);
	mk(&f, d, "sub", S_IFDIR | 0755);
	mk(&f, d, "file", S_IFREG | 0644);
	/* A snapshot: fsck checks every fs tree. */
	struct cowfs_root *snap;
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_tree_clone(tx, &f.x.fs->fs_root, 256, &snap), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct inode_check_stats st = check_ns(&f, 0);
	ck_assert_uint_eq(st.trees, 2);
	cowfs_close(f.x.fs);
	f.x.fs = NULL;
	ck_assert_int_eq(run_fsck("", f.x.path), 0);

	struct cowfs_opts o = fsfix_opts(&f.x);
	ck_assert_int_eq(cowfs_open(f.x.path, &o, &f.x.fs), 0);
	set_nlink(&f, d, 7);
	cowfs_close(f.x.fs);
	f.x.fs = NULL;
	uint64_t before = file_sum(f.x.path);
	ck_assert_int_eq(run_fsck("", f.x.path), 4);
	ck_assert_int_eq(run_fsck("--repair", f.x.path), 4);
	ck_assert_uint_eq(file_sum(f.x.path), before);
	ck_assert_int_eq(run_fsck("-v", f.x.path), 4);
	fsfix_teardown(&f.x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inode_check");
	TCase *tc = tcase_create("inode_check");

	tcase_add_test(tc, workload_checks_clean);
	tcase_add_test(tc, missing_dir_index);
	tcase_add_test(tc, missing_inode_ref);
	tcase_add_test(tc, wrong_file_nlink);
	tcase_add_test(tc, wrong_dir_nlink);
	tcase_add_test(tc, entry_to_missing_inode);
	tcase_add_test(tc, unreachable_inode);
	tcase_add_test(tc, fsck_exit_codes);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
