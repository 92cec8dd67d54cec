/*
 * Whole-filesystem tests: format, open, commit, reopen, and the checker's exact recomputation
 * of every extent's references (tree blocks and data extents) after each step.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	ck_assert_uint_eq(st.trees, 4);          /* root, extent, fs, checksums */
	ck_assert_uint_eq(st.tree_blocks, 4);
	ck_assert_uint_eq(st.extent_items, 4);
	ck_assert_uint_eq(st.bytes_used, 4 * 16384);
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
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	REQUIRE(bt_insert(&tx->bt, &fs->fs_root.t, &k, buf, len) == 0, "insert %" PRIu64, id);
	cowfs_trans_end(tx, 0);
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
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	for (uint64_t id = 0; id < 30000; id += 2) {
		struct bt_key k = { id, 1, 0 };
		REQUIRE(bt_delete(&tx->bt, &x.fs->fs_root.t, &k) == 0, "delete %" PRIu64, id);
	}
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);
	fsfix_reopen(&x);
	verify_items(x.fs, 1, 30000, 2);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/*
 * Space freed by a transaction is held (pinned) until its commit is on disk, and only then
 * becomes allocatable: the old generation still uses it until the superblock moves.
 */
START_TEST(freed_space_pinned_until_commit)
{
	struct fsfix x;
	struct alloc_stats a, b;

	fsfix_setup(&x, "sb-pin", IMG, 4096);
	for (uint64_t id = 0; id < 20000; id++)
		put_item(x.fs, id, 20 + id % 200);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	alloc_get_stats(x.fs->alloc, &a);
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	for (uint64_t id = 0; id < 20000; id++) {
		struct bt_key k = { id, 1, 0 };
		REQUIRE(bt_delete(&tx->bt, &x.fs->fs_root.t, &k) == 0, "delete");
	}
	cowfs_trans_end(tx, 0);
	/* Before the commit nothing is free yet: the committed tree still owns every block. */
	alloc_get_stats(x.fs->alloc, &b);
	ck_assert_uint_le(b.free, a.free);
	ck_assert_uint_eq(b.pinned, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_uint_gt(x.fs->last_commit_pinned, 500 * 4096);
	alloc_get_stats(x.fs->alloc, &b);
	ck_assert_uint_eq(b.pinned, 0);
	ck_assert_uint_gt(b.free, a.free);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/*
 * ENOSPC: fill the filesystem; the error is clean (nothing half done, the transaction still
 * commits); dropping a snapshot and deleting everything still work on the full filesystem,
 * and the space comes back.
 */
START_TEST(enospc_clean_and_deletes_work)
{
	struct fsfix x;
	struct alloc_stats empty, full, after;
	uint8_t buf[400];
	uint64_t n = 0;
	int ret;

	fsfix_setup(&x, "sb-enospc", 24ull << 20, 4096);
	alloc_get_stats(x.fs->alloc, &empty);
	memset(buf, 0xab, sizeof(buf));
	/* A snapshot taken early shares the first items; after the fill it is dropped. */
	for (uint64_t id = 0; id < 2000; id++)
		put_item(x.fs, 2000000 + id, 300);
	struct cowfs_root *snap;
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_tree_clone(tx, &x.fs->fs_root, 256, &snap), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	for (uint64_t id = 0; id < 2000; id++) {
		struct bt_key k = { 2000000 + id, 1, 0 };
		tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
		ck_assert_int_eq(bt_delete(&tx->bt, &x.fs->fs_root.t, &k), 0);
		cowfs_trans_end(tx, 0);
	}
	n = fsfix_fill(&x, sizeof(buf));
	ck_assert_uint_gt(n, 10000);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	alloc_get_stats(x.fs->alloc, &full);
	ck_assert_uint_le(full.free, full.reserve + 64 * 4096);
	fsfix_assert_clean(&x, NULL);
	fsfix_reopen(&x);

	/* Drop the snapshot on the full filesystem. */
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	ck_assert_int_eq(cowfs_tree_open(x.fs, 256, &snap), 0);
	ret = cowfs_reserve(tx, cowfs_update_nodes(&x.fs->root_tree));
	if (ret == 0)
		ret = cowfs_tree_drop(tx, snap);
	cowfs_trans_end(tx, ret);
	ck_assert_int_eq(ret, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);

	/* Delete everything in one go on the full filesystem. */
	for (uint64_t i = 0; i < n; i++) {
		struct bt_key k = fsfix_fill_key(i);
		tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
		ret = cowfs_reserve(tx, cowfs_update_nodes(&x.fs->fs_root.t));
		if (ret == 0)
			ret = bt_delete(&tx->bt, &x.fs->fs_root.t, &k);
		cowfs_trans_end(tx, ret);
		REQUIRE(ret == 0, "delete %" PRIu64 " of %" PRIu64 " on a full filesystem: %d", i, n, ret);
	}
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	alloc_get_stats(x.fs->alloc, &after);
	ck_assert_uint_ge(after.free + 16 * 4096, empty.free);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

static void reopen_with(struct fsfix *x, struct cowfs_opts *o)
{
	ck_assert_int_eq(cowfs_close(x->fs), 0);
	ck_assert_int_eq(cowfs_open(x->path, o, &x->fs), 0);
}

/* Changes are committed by the timer without anyone asking; a crash then keeps them. */
START_TEST(timer_commits)
{
	struct fsfix x;
	struct cowfs_opts o;

	fsfix_setup(&x, "sb-timer", IMG, 4096);
	o = fsfix_opts(&x);
	o.commit_interval_ms = 100;
	reopen_with(&x, &o);
	uint64_t gen = cowfs_generation(x.fs);
	for (uint64_t id = 0; id < 2000; id++)
		put_item(x.fs, id, 20 + id % 200);
	for (int i = 0; i < 100 && cowfs_generation(x.fs) == gen; i++)
		usleep(20 * 1000);
	ck_assert_uint_gt(cowfs_generation(x.fs), gen);
	/* Idle: nothing to commit, the generation stays. */
	usleep(300 * 1000);
	gen = cowfs_generation(x.fs);
	usleep(300 * 1000);
	ck_assert_uint_eq(cowfs_generation(x.fs), gen);
	fsfix_crash_reopen(&x);
	verify_items(x.fs, 0, 2000, 1);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/* Past the dirty limit, updates commit first. */
START_TEST(dirty_limit_commits)
{
	struct fsfix x;
	struct cowfs_opts o;
	uint8_t buf[200];
	size_t peak = 0;

	fsfix_setup(&x, "sb-dirty", IMG, 4096);
	o = fsfix_opts(&x);
	o.dirty_limit = 512 << 10;
	reopen_with(&x, &o);
	uint64_t gen = cowfs_generation(x.fs);
	memset(buf, 3, sizeof(buf));
	for (uint64_t id = 0; id < 20000; id++) {
		struct bt_key k = { id * 2654435761u % 1000003, 1, id };
		struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
		int ret = cowfs_reserve(tx, cowfs_update_nodes(&x.fs->fs_root.t));
		if (ret == 0)
			ret = bt_insert(&tx->bt, &x.fs->fs_root.t, &k, buf, sizeof(buf));
		size_t dirty = bcache_dirty_bytes(x.fs->cache);
		cowfs_trans_end(tx, ret);
		REQUIRE(ret == 0, "insert %" PRIu64 ": %d", id, ret);
		if (dirty > peak)
			peak = dirty;
	}
	ck_assert_uint_gt(cowfs_generation(x.fs), gen + 5);
	/* One update past the limit at most: its path and splits. */
	ck_assert_uint_le(peak, (512 << 10) + 32 * 4096);
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

	fe.type = FILE_EXTENT_PREALLOC;
	put_le64(&fe.disk_bytenr, start);
	put_le64(&fe.disk_num_bytes, len);
	put_le64(&fe.num_bytes, len);
	put_le64(&fe.ram_bytes, len);
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	REQUIRE(bt_insert(&tx->bt, t, &k, &fe, sizeof(fe)) == 0, "insert file extent");
	cowfs_trans_end(tx, 0);
}

START_TEST(data_extent_refs_exact)
{
	struct fsfix x;
	struct extent_info e;
	uint64_t start, len;
	struct cowfs_check_stats st;

	fsfix_setup(&x, "sb-data", IMG, 16384);
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&x.fs->ext, &tx->bt, 1 << 20, 1 << 20, 0, &start, &len),
			 0);
	cowfs_trans_end(tx, 0);
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
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	for (uint64_t i = 1; i < 50; i++) {
		struct bt_key k = { 257 + i % 2, EXTENT_DATA_KEY, i * 4096 };
		ck_assert_int_eq(bt_delete(&tx->bt, &x.fs->fs_root.t, &k), 0);
	}
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(extent_lookup(&x.fs->ext, start, len, &e), 0);
	ck_assert_uint_eq(e.refs, 1);
	fsfix_assert_clean(&x, NULL);
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	struct bt_key k0 = { 257, EXTENT_DATA_KEY, 0 };
	ck_assert_int_eq(bt_delete(&tx->bt, &x.fs->fs_root.t, &k0), 0);
	cowfs_trans_end(tx, 0);
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
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&x.fs->ext, &tx->bt, 65536, 65536, 0, &start, &len), 0);
	cowfs_trans_end(tx, 0);
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

/*
 * Snapshots through the real extent tree: a tree full of file extent items is cloned, both
 * sides change (shared leaves are shadowed, pushing data references down), the snapshot is
 * dropped; after every step the checker recomputes every count and backref.
 */
START_TEST(snapshot_modify_drop)
{
	struct fsfix x;
	struct cowfs_check_stats st;
	struct cowfs_root *snap, *snap2;
	uint64_t start[64], len;
	uint64_t seed = test_seed("snapshot_modify_drop", 77);

	fsfix_setup(&x, "sb-snap", IMG, 4096);
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(extent_alloc_data(&x.fs->ext, &tx->bt, 65536, 65536, 0, &start[i],
						   &len), 0);
	cowfs_trans_end(tx, 0);
	for (uint64_t i = 0; i < 6000; i++)
		put_file_extent(x.fs, &x.fs->fs_root.t, 300 + i / 100, (i % 100) * 65536,
				start[i % 64], 65536);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);

	tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_tree_clone(tx, &x.fs->fs_root, 256, &snap), 0);
	ck_assert_int_eq(cowfs_tree_clone(tx, &x.fs->fs_root, 256, &snap2), -EEXIST);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);

	/* Change both sides: delete from the original, add to the snapshot. */
	for (int round = 0; round < 3; round++) {
		tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
		for (int i = 0; i < 700; i++) {
			uint64_t r = rng_next(&seed) % 6000;
			struct bt_key k = { 300 + r / 100, EXTENT_DATA_KEY, (r % 100) * 65536 };
			int ret = bt_delete(&tx->bt, &x.fs->fs_root.t, &k);
			REQUIRE(ret == 0 || ret == -ENOENT, "delete returned %d", ret);
		}
		cowfs_trans_end(tx, 0);
		for (uint64_t i = 0; i < 500; i++)
			put_file_extent(x.fs, &snap->t, 900 + round, i * 65536, start[i % 64], 65536);
		ck_assert_int_eq(cowfs_commit(x.fs), 0);
		fsfix_assert_clean(&x, &st);
	}
	ck_assert_uint_eq(st.trees, 5);

	fsfix_reopen(&x);
	ck_assert_int_eq(cowfs_tree_open(x.fs, 256, &snap), 0);
	fsfix_assert_clean(&x, NULL);
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	ck_assert_int_eq(cowfs_tree_drop(tx, snap), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, &st);
	ck_assert_uint_eq(st.trees, 4);
	fsfix_reopen(&x);
	ck_assert_int_eq(cowfs_tree_open(x.fs, 256, &snap), -ENOENT);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

static int count_backref(void *arg, uint64_t start, const struct extent_data_ref *r)
{
	(void)start;
	*(uint64_t *)arg += r->count;
	return 0;
}

/*
 * extent_ref_add / extent_ref_drop directly: the path reflink and dedup use. References added
 * for an existing extent show in its count and backrefs after commit; dropping them all frees
 * it at the next commit.
 */
START_TEST(extent_ref_api)
{
	struct fsfix x;
	struct extent_info e;
	uint64_t start, len, left, backrefs = 0;

	fsfix_setup(&x, "sb-refapi", IMG, 16384);
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&x.fs->ext, &tx->bt, 131072, 131072, 0, &start, &len),
			 0);
	cowfs_trans_end(tx, 0);
	put_file_extent(x.fs, &x.fs->fs_root.t, 700, 0, start, len);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	/* Two more references, as a reflink would add (held by imaginary items). */
	struct extent_ref r = { .start = start, .len = len, .is_data = true, .owner = FS_TREE_ID,
				.inode = 701, .offset = 0 };
	tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_ref_add(&x.fs->ext, &tx->bt, &r), 0);
	r.inode = 702;
	ck_assert_int_eq(extent_ref_add(&x.fs->ext, &tx->bt, &r), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(extent_lookup(&x.fs->ext, start, len, &e), 0);
	ck_assert_uint_eq(e.refs, 3);
	ck_assert_int_eq(extent_walk_one(&x.fs->ext, start,
					 &(struct extent_walk){ .data_ref_fn = count_backref, .arg = &backrefs }), 0);
	ck_assert_uint_eq(backrefs, 3);
	ck_assert_int_eq(extent_walk_one(&x.fs->ext, start + 4096, &(struct extent_walk){ 0 }), -ENOENT);
	/* The checker sees the two references nobody holds. */
	struct cowfs_check_stats st;
	ck_assert_int_eq(cowfs_check(x.fs, &st, NULL, NULL), -EUCLEAN);
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	ck_assert_int_eq(extent_ref_drop(&x.fs->ext, &tx->bt, &r, &left), 0);
	ck_assert_uint_eq(left, 2);
	r.inode = 701;
	ck_assert_int_eq(extent_ref_drop(&x.fs->ext, &tx->bt, &r, &left), 0);
	ck_assert_uint_eq(left, 1);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	struct bt_key k = { 700, EXTENT_DATA_KEY, 0 };
	ck_assert_int_eq(bt_delete(&tx->bt, &x.fs->fs_root.t, &k), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(extent_lookup(&x.fs->ext, start, len, &e), -ENOENT);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/* A tree pointer outside the filesystem or misaligned is refused by name, before any read. */
START_TEST(node_pointer_range_checked)
{
	static const uint64_t bad[] = { 65536, IMG, IMG + (1ull << 30), (2ull << 20) + 512 };
	struct fsfix x;

	fsfix_setup(&x, "sb-range", IMG, 4096);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bt_key k = { FS_TREE_ID, ROOT_ITEM_KEY, 0 }, probe = { 1, 1, 0 };
		struct root_item ri;
		uint32_t len;
		ck_assert_int_eq(bt_lookup(&x.fs->root_tree, &k, &ri, sizeof(ri), &len), 0);
		uint64_t good = get_le64(&ri.bytenr);
		struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
		put_le64(&ri.bytenr, bad[i]);
		ck_assert_int_eq(bt_update(&tx->bt, &x.fs->root_tree, &k, &ri, sizeof(ri)), 0);
		cowfs_trans_end(tx, 0);
		ck_assert_int_eq(cowfs_commit(x.fs), 0);
		cowfs_close(x.fs);
		struct cowfs_opts o = fsfix_opts(&x);
		ck_assert_int_eq(cowfs_open(x.path, &o, &x.fs), 0);
		x.reports = 0;
		ck_assert_int_eq(bt_lookup(&x.fs->fs_root.t, &probe, NULL, 0, NULL), -EIO);
		ck_assert_int_gt(x.reports, 0);
		ck_assert_ptr_nonnull(strstr(x.last_report, "outside the filesystem or misaligned"));
		/* Put it back for the next case. */
		tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
		put_le64(&ri.bytenr, good);
		ck_assert_int_eq(bt_update(&tx->bt, &x.fs->root_tree, &k, &ri, sizeof(ri)), 0);
		cowfs_trans_end(tx, 0);
		ck_assert_int_eq(cowfs_commit(x.fs), 0);
		/* The open above recorded the bad root as the tree's: take the restored one. */
		fsfix_reopen(&x);
	}
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/*
 * Walk a snapshot's fs tree of put_item()s: 0 if it holds exactly ids 0..n-1 with their
 * contents, else the read error met (never success over other data).
 */
static int snapshot_items_exact(struct cowfs *fs, uint64_t n)
{
	uint8_t want[512];
	struct bt_cursor c;
	struct bt_key k;
	const void *d;
	uint32_t len;
	uint64_t next = 0;
	int ret;

	bt_cursor_init(&c, &fs->fs_root.t);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, &d, &len);
		memset(want, (int)k.objectid, sizeof(want));
		REQUIRE(k.objectid == next && len == 20 + next % 200 && memcmp(d, want, len) == 0,
			"the snapshot read item %" PRIu64 " where %" PRIu64 " was", k.objectid, next);
		next++;
	}
	bt_cursor_release(&c);
	if (ret != -ENOENT)
		return ret;
	REQUIRE(next == n, "the snapshot read %" PRIu64 " items of %" PRIu64, next, n);
	return 0;
}

/* The writer replaces every item, committing after each round: the old nodes are freed and
 * their space reused. */
static void replace_items(struct cowfs *fs, uint64_t n, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
		for (uint64_t id = 0; id < n; id++) {
			struct bt_key k = { id + (uint64_t)r * n, 1, 0 };
			REQUIRE(bt_delete(&tx->bt, &fs->fs_root.t, &k) == 0, "delete %" PRIu64,
				k.objectid);
		}
		cowfs_trans_end(tx, 0);
		for (uint64_t id = 0; id < n; id++)
			put_item(fs, id + (uint64_t)(r + 1) * n, 20 + id % 200);
		ck_assert_int_eq(cowfs_commit(fs), 0);
	}
}

/*
 * A snapshot read (cowfs dump of a mounted image) opens without the lock the writer holds,
 * shows the generation it opened, and when the writer has reused that generation's blocks,
 * meets an error (checked against the parent's pointer), never the new data; the superblock
 * says the image moved on.
 */
#define ROUNDS 30
START_TEST(snapshot_read_under_a_writer)
{
	const uint64_t n = 3000;
	struct fsfix x;
	struct cowfs *busy, *early, *late;

	/* A small image: the allocator comes back to the freed space soon. */
	fsfix_setup(&x, "sb-snapshot", 24ull << 20, 4096);
	for (uint64_t id = 0; id < n; id++)
		put_item(x.fs, id, 20 + id % 200);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	struct cowfs_opts o = fsfix_opts(&x);
	o.read_only = true;
	ck_assert_int_eq(cowfs_open(x.path, &o, &busy), -EBUSY);   /* a reader still refused */
	o.snapshot = true;
	ck_assert_int_eq(cowfs_open(x.path, &o, &early), 0);
	ck_assert_int_eq(cowfs_open(x.path, &o, &late), 0);
	ck_assert_int_eq(cowfs_set_read_only(early, false), -EOPNOTSUPP);
	ck_assert_int_eq(cowfs_snapshot_current(early), 0);
	/* Read before the writer moves on: generation G, exactly. */
	ck_assert_int_eq(snapshot_items_exact(early, n), 0);
	replace_items(x.fs, n, ROUNDS);
	ck_assert_int_eq(cowfs_snapshot_current(early), -ESTALE);
	ck_assert_int_eq(cowfs_snapshot_current(late), -ESTALE);
	/* Read after: G's nodes were freed and written over, so an error, not other items. */
	int ret = snapshot_items_exact(late, n);
	ck_assert_msg(ret == -EUCLEAN || ret == -EIO, "a reused node read as %d", ret);
	ck_assert_uint_eq(cowfs_generation(late), cowfs_generation(early));
	ck_assert_int_eq(cowfs_close(early), 0);
	ck_assert_int_eq(cowfs_close(late), 0);
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
	tcase_add_test(tc, snapshot_modify_drop);
	tcase_add_test(tc, freed_space_pinned_until_commit);
	tcase_add_test(tc, enospc_clean_and_deletes_work);
	tcase_add_test(tc, timer_commits);
	tcase_add_test(tc, dirty_limit_commits);
	tcase_add_test(tc, extent_ref_api);
	tcase_add_test(tc, node_pointer_range_checked);
	tcase_add_test(tc, snapshot_read_under_a_writer);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
