/*
 * Whole-filesystem tests: format, open, commit, reopen, and the checker's exact recomputation
 * of every extent's references (tree blocks and data extents) after each step.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"

#define IMG (256ull << 20)

START_TEST(format_open_check)
{
	struct fsfix x;
	struct cowfs_check_stats st;

	fsfix_setup(&x, "sb-fresh", IMG, 16384);
	fsfix_assert_clean(&x, &st);
	ck_assert_uint_eq(st.trees, 3);          /* root, extent, fs */
	ck_assert_uint_eq(st.tree_blocks, 3);
	ck_assert_uint_eq(st.extent_items, 3);
	ck_assert_uint_eq(st.bytes_used, 3 * 16384);
	ck_assert_uint_eq(cowfs_generation(x.fs), 1);
	fsfix_reopen(&x);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

static void put_item(struct cowfs *fs, uint64_t id, uint32_t len)
{
	uint8_t buf[512];
	struct bt_key k = { id, 1, 0 };

	memset(buf, (int)id, len);
	struct bt_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	REQUIRE(bt_insert(tx, &fs->fs_root.t, &k, buf, len) == 0, "insert %" PRIu64, id);
	cowfs_trans_end(fs);
}

static void verify_items(struct cowfs *fs, uint64_t from, uint64_t to, uint64_t step)
{
	uint8_t buf[512], want[512];
	uint32_t len;

	for (uint64_t id = from; id < to; id += step) {
		struct bt_key k = { id, 1, 0 };
		REQUIRE(bt_lookup(&fs->fs_root.t, &k, buf, sizeof(buf), &len) == 0, "lookup %" PRIu64, id);
		memset(want, (int)id, len);
		REQUIRE(len == 20 + id % 200 && memcmp(buf, want, len) == 0, "content of %" PRIu64, id);
	}
}

START_TEST(items_persist_across_commits)
{
	struct fsfix x;
	struct cowfs_check_stats st;

	fsfix_setup(&x, "sb-items", IMG, 4096);
	for (uint64_t id = 0; id < 30000; id++) {
		put_item(x.fs, id, 20 + id % 200);
		if (id % 10000 == 9999)
			ck_assert_int_eq(cowfs_commit(x.fs), 0);
	}
	fsfix_assert_clean(&x, &st);
	ck_assert_uint_gt(st.tree_blocks, 1000);
	fsfix_reopen(&x);
	verify_items(x.fs, 0, 30000, 1);
	/* Delete every other item: nodes are shadowed and freed, the extent tree follows. */
	struct bt_trans *tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	for (uint64_t id = 0; id < 30000; id += 2) {
		struct bt_key k = { id, 1, 0 };
		REQUIRE(bt_delete(tx, &x.fs->fs_root.t, &k) == 0, "delete %" PRIu64, id);
	}
	cowfs_trans_end(x.fs);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);
	fsfix_reopen(&x);
	verify_items(x.fs, 1, 30000, 2);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/* A file extent item referencing [start, start+len). */
static void put_file_extent(struct cowfs *fs, struct btree *t, uint64_t inode, uint64_t off,
			    uint64_t start, uint64_t len)
{
	struct file_extent_item fe = { 0 };
	struct bt_key k = { inode, EXTENT_DATA_KEY, off };

	fe.type = FILE_EXTENT_REG;
	put_le64(&fe.disk_bytenr, start);
	put_le64(&fe.disk_num_bytes, len);
	put_le64(&fe.num_bytes, len);
	put_le64(&fe.ram_bytes, len);
	struct bt_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	REQUIRE(bt_insert(tx, t, &k, &fe, sizeof(fe)) == 0, "insert file extent");
	cowfs_trans_end(fs);
}

START_TEST(data_extent_refs_exact)
{
	struct fsfix x;
	struct extent_info e;
	uint64_t start, len;
	struct cowfs_check_stats st;

	fsfix_setup(&x, "sb-data", IMG, 16384);
	cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&x.fs->ext, 1 << 20, 1 << 20, 0, &start, &len), 0);
	cowfs_trans_end(x.fs);
	ck_assert_uint_eq(len, 1 << 20);
	/* The same extent referenced from 50 places in two inodes (reflinks). */
	for (uint64_t i = 0; i < 50; i++)
		put_file_extent(x.fs, &x.fs->fs_root.t, 257 + i % 2, i * 4096, start, len);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(extent_lookup(&x.fs->ext, start, len, &e), 0);
	ck_assert_uint_eq(e.refs, 50);
	ck_assert(e.flags & EXTENT_FLAG_DATA);
	fsfix_assert_clean(&x, &st);
	ck_assert_uint_eq(st.data_extents, 1);

	/* Drop all references but one; then the last: the extent item goes, the space returns. */
	struct bt_trans *tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	for (uint64_t i = 1; i < 50; i++) {
		struct bt_key k = { 257 + i % 2, EXTENT_DATA_KEY, i * 4096 };
		ck_assert_int_eq(bt_delete(tx, &x.fs->fs_root.t, &k), 0);
	}
	cowfs_trans_end(x.fs);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(extent_lookup(&x.fs->ext, start, len, &e), 0);
	ck_assert_uint_eq(e.refs, 1);
	fsfix_assert_clean(&x, NULL);
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	struct bt_key k0 = { 257, EXTENT_DATA_KEY, 0 };
	ck_assert_int_eq(bt_delete(tx, &x.fs->fs_root.t, &k0), 0);
	cowfs_trans_end(x.fs);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(extent_lookup(&x.fs->ext, start, len, &e), -ENOENT);
	fsfix_assert_clean(&x, NULL);
	fsfix_reopen(&x);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/* An extent allocated and never referenced is gone after the commit. */
START_TEST(unreferenced_data_extent_freed)
{
	struct fsfix x;
	struct extent_info e;
	uint64_t start, len;

	fsfix_setup(&x, "sb-unref", IMG, 16384);
	cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&x.fs->ext, 65536, 65536, 0, &start, &len), 0);
	cowfs_trans_end(x.fs);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(extent_lookup(&x.fs->ext, start, len, &e), -ENOENT);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/* Uncommitted changes vanish at a crash; committed ones stay. */
START_TEST(crash_loses_only_uncommitted)
{
	struct fsfix x;

	fsfix_setup(&x, "sb-crash", IMG, 4096);
	for (uint64_t id = 0; id < 5000; id++)
		put_item(x.fs, id, 20 + id % 200);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	uint64_t gen = cowfs_generation(x.fs);
	for (uint64_t id = 5000; id < 9000; id++)
		put_item(x.fs, id, 20 + id % 200);
	fsfix_crash_reopen(&x);
	ck_assert_uint_eq(cowfs_generation(x.fs), gen);
	verify_items(x.fs, 0, 5000, 1);
	struct bt_key k = { 5000, 1, 0 };
	ck_assert_int_eq(bt_lookup(&x.fs->fs_root.t, &k, NULL, 0, NULL), -ENOENT);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("super");
	TCase *tc = tcase_create("super");

	tcase_add_test(tc, format_open_check);
	tcase_add_test(tc, items_persist_across_commits);
	tcase_add_test(tc, data_extent_refs_exact);
	tcase_add_test(tc, unreferenced_data_extent_freed);
	tcase_add_test(tc, crash_loses_only_uncommitted);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
