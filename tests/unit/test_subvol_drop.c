/*
 * Deleting a subvolume in bounded steps (cowfs_subvol_drop_step): a snapshot of a tree of
 * thousands of items is made, changed (so it shares some blocks and owns others, and alone
 * references a data extent), unlinked, and dropped a few blocks at a time, each step an update
 * of its own with commits, reopens and power cuts in between. After every commit the checker
 * finds the image clean (every count and backref exact, nothing leaked); the progress figure
 * only grows; the top level's tree never changes; and when the drop is done nothing of the
 * subvolume is left and the space used is exactly what it was before the snapshot.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "fs/extent/extent_format.h"
#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/inode/subvol.h"
#include "fs/lib/endian.h"
#include "fs/super/subvol.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define IMG (128ull << 20)
#define ITEMS 6000u
#define NDATA 8
#define DATA_LEN 65536u

struct dropfix {
	struct fsfix x;
	uint64_t rng;
	uint64_t id;            /* the subvolume being dropped */
	uint64_t digest;        /* of the top level's tree, which never changes */
	uint64_t used_before;   /* bytes used before the snapshot */
	uint64_t extent_nodes, root_nodes;   /* the extent and root trees' sizes then */
	uint64_t data[NDATA + 1];   /* the last one only the snapshot references */
	uint64_t total, done;   /* progress last seen */
};

/* Item i of the original tree: a key spread over the key space, every fifth a file extent. */
static struct bt_key item_key(uint32_t i)
{
	uint64_t obj = 256 + (uint64_t)i * 7919 % ITEMS;
	return (struct bt_key){ obj, i % 5 == 0 ? EXTENT_DATA_KEY : 1, 0 };
}

static void put_item(struct dropfix *d, struct cowfs_trans *tx, struct btree *t,
		     const struct bt_key *k, uint64_t data)
{
	uint8_t buf[200];
	uint32_t len;

	if (k->type == EXTENT_DATA_KEY) {
		struct file_extent_item fe = { 0 };
		fe.type = FILE_EXTENT_PREALLOC;
		put_le64(&fe.disk_bytenr, data);
		put_le64(&fe.disk_num_bytes, DATA_LEN);
		put_le64(&fe.num_bytes, DATA_LEN);
		put_le64(&fe.ram_bytes, DATA_LEN);
		memcpy(buf, &fe, sizeof(fe));
		len = sizeof(fe);
	} else {
		len = 20 + rng_next(&d->rng) % 150;
		rng_fill(buf, len, rng_next(&d->rng));
	}
	REQUIRE(bt_insert(&tx->bt, t, k, buf, len) == 0, "insert failed");
}

static uint64_t used_bytes(struct dropfix *d)
{
	struct cowfs_check_stats st;

	fsfix_assert_clean(&d->x, &st);
	REQUIRE(st.bytes_used == get_le64(&d->x.fs->sb.bytes_used),
		"superblock says %" PRIu64 " bytes used, the checker %" PRIu64,
		get_le64(&d->x.fs->sb.bytes_used), st.bytes_used);
	return st.bytes_used;
}

static uint64_t tree_nodes(struct btree *t)
{
	struct bt_stats st;

	REQUIRE(bt_stats(t, &st) == 0, "bt_stats failed");
	return st.nodes;
}

static void commit_clean(struct dropfix *d)
{
	ck_assert_int_eq(cowfs_commit(d->x.fs), 0);
	fsfix_assert_clean(&d->x, NULL);
}

/* The top level's tree of ITEMS items, committed and measured. */
static void make_original(struct dropfix *d, uint64_t seed)
{
	struct cowfs *fs;
	uint64_t len;

	memset(d, 0, sizeof(*d));
	d->rng = seed;
	fsfix_setup(&d->x, "subvol_drop", IMG, 4096);
	fs = d->x.fs;
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	for (int i = 0; i < NDATA; i++)
		REQUIRE(extent_alloc_data(&fs->ext, &tx->bt, DATA_LEN, DATA_LEN, 0, &d->data[i],
					  &len) == 0, "data alloc failed");
	for (uint32_t i = 0; i < ITEMS; i++) {
		struct bt_key k = item_key(i);
		put_item(d, tx, &fs->fs_root.t, &k, d->data[i % NDATA]);
	}
	ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
	commit_clean(d);
	ck_assert_uint_ge(fs->fs_root.t.level, 2);
	d->digest = fsfix_tree_digest(&fs->fs_root.t);
	d->used_before = used_bytes(d);
	d->extent_nodes = tree_nodes(&fs->extent_root.t);
	d->root_nodes = tree_nodes(&fs->root_tree);
}

/*
 * A snapshot of the top level that then changes: items deleted, changed and added (some
 * referencing a data extent of its own), so it holds blocks of its own beside shared ones.
 * Then it is unlinked: deleting, its tree whole.
 */
static void make_deleting_snapshot(struct dropfix *d)
{
	struct cowfs *fs = d->x.fs;
	struct cowfs_root *r;
	uint64_t len;

	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_subvol_create(tx, FS_TREE_ID, 256, 2, "snap", 4, &fs->fs_root, 0,
					     &r), 0);
	d->id = r->t.owner;
	ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
	commit_clean(d);

	tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_tree_open(fs, d->id, &r), 0);
	REQUIRE(extent_alloc_data(&fs->ext, &tx->bt, DATA_LEN, DATA_LEN, 0, &d->data[NDATA],
				  &len) == 0, "data alloc failed");
	/* Delete a stretch in the middle and every seventh item; add new ones at both ends. */
	for (uint32_t i = 0; i < ITEMS; i++) {
		struct bt_key k = item_key(i);
		if ((k.objectid > 2000 && k.objectid < 2600) || i % 7 == 3)
			REQUIRE(bt_delete(&tx->bt, &r->t, &k) == 0, "delete failed");
	}
	for (uint64_t i = 0; i < 1500; i++) {
		struct bt_key k = { i < 750 ? 100 + i / 5 : 10000 + i, i % 3 ? 1 : EXTENT_DATA_KEY,
				    i % 5 };
		put_item(d, tx, &r->t, &k, d->data[NDATA]);
	}
	ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
	commit_clean(d);

	tx = cowfs_trans_begin(fs, ALLOC_PRIVILEGED);
	ck_assert_int_eq(cowfs_trans_end(tx, cowfs_subvol_unlink(tx, d->id)), 0);
	commit_clean(d);
	ck_assert_uint_gt(used_bytes(d), d->used_before);
}

/* One step as its own update; the progress it records never goes back. */
static int drop_step(struct dropfix *d, unsigned budget, bool *done)
{
	struct cowfs_trans *tx = cowfs_trans_begin(d->x.fs, ALLOC_NORMAL);
	int ret = cowfs_trans_end(tx, cowfs_subvol_drop_step(tx, d->id, budget, done));
	struct subvol_info si;

	if (ret < 0 || *done)
		return ret;
	REQUIRE(cowfs_subvol_get(d->x.fs, d->id, &si) == 0, "deleting subvolume vanished");
	REQUIRE(si.flags & SUBVOL_DELETING, "not marked deleting");
	REQUIRE(si.drop_total > 0 && si.drop_done <= si.drop_total, "progress %" PRIu64
		" of %" PRIu64, si.drop_done, si.drop_total);
	REQUIRE(d->total == 0 || si.drop_total == d->total, "the drop's total changed");
	REQUIRE(si.drop_done >= d->done, "progress went back: %" PRIu64 " after %" PRIu64,
		si.drop_done, d->done);
	d->total = si.drop_total;
	d->done = si.drop_done;
	return 0;
}

/* Nothing of the subvolume is left, the top level is as it was, and so is the space used
 * (but for the change in shape of the extent and root trees, counted node by node). */
static void assert_all_gone(struct dropfix *d)
{
	struct cowfs *fs = d->x.fs;
	struct subvol_info si;
	struct cowfs_root *r;
	uint64_t next;

	ck_assert_int_eq(cowfs_subvol_get(fs, d->id, &si), -ENOENT);
	ck_assert_int_eq(cowfs_subvol_next_deleting(fs, 0, &next), -ENOENT);
	ck_assert_int_eq(cowfs_tree_open(fs, d->id, &r), -ENOENT);
	ck_assert_uint_eq(fsfix_tree_digest(&fs->fs_root.t), d->digest);
	int64_t shape = (int64_t)(tree_nodes(&fs->extent_root.t) - d->extent_nodes) +
			(int64_t)(tree_nodes(&fs->root_tree) - d->root_nodes);
	uint64_t used = used_bytes(d);
	fprintf(stderr, "space used %" PRIu64 " before the snapshot, %" PRIu64 " after its drop"
		" (extent tree %" PRIu64 " -> %" PRIu64 " nodes, root tree %" PRIu64 " -> %" PRIu64
		")\n", d->used_before, used, d->extent_nodes, tree_nodes(&fs->extent_root.t),
		d->root_nodes, tree_nodes(&fs->root_tree));
	ck_assert_uint_eq(used, d->used_before + shape * (int64_t)fs->bfs.nodesize);
}

START_TEST(drop_in_steps_with_commits_and_reopens)
{
	struct dropfix d;
	bool done = false;
	int steps = 0, commits = 0;

	make_original(&d, test_seed("subvol_drop_steps", 1301));
	make_deleting_snapshot(&d);
	/* Not a deleting subvolume: refused, nothing changed. */
	struct cowfs_trans *tx = cowfs_trans_begin(d.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_trans_end(tx, cowfs_subvol_drop_step(tx, FS_TREE_ID, 5, &done)),
			 -EINVAL);
	ck_assert(!done);
	while (!done) {
		ck_assert_int_eq(drop_step(&d, 1 + rng_next(&d.rng) % 12, &done), 0);
		if (++steps % 2 == 0 || done) {
			commit_clean(&d);
			if (++commits % 5 == 0)
				fsfix_reopen(&d.x);
		}
	}
	fprintf(stderr, "dropped in %d steps, %d commits (progress total %" PRIu64 ")\n", steps,
		commits, d.total);
	ck_assert_int_gt(steps, 10);
	assert_all_gone(&d);
	fsfix_reopen(&d.x);
	assert_all_gone(&d);
	fsfix_teardown(&d.x);
}
END_TEST

/* The whole drop in one step (any budget is capped at what a step can reserve for). */
START_TEST(drop_in_one_step)
{
	struct dropfix d;
	bool done = false;

	make_original(&d, test_seed("subvol_drop_one", 1302));
	make_deleting_snapshot(&d);
	ck_assert_int_eq(drop_step(&d, UINT32_MAX, &done), 0);
	ck_assert(done);
	commit_clean(&d);
	assert_all_gone(&d);
	fsfix_teardown(&d.x);
}
END_TEST

/* Run the drop with a commit after every step: 0, or the first error once the power is cut. */
static void drop_committing(struct dropfix *d, unsigned budget)
{
	bool done = false;

	while (!done) {
		int ret = drop_step(d, budget, &done);
		if (ret == 0)
			ret = cowfs_commit(d->x.fs);
		if (bdev_power_is_cut(d->x.fs->bd))
			return;   /* what happens past the cut is lost anyway */
		ck_assert_int_eq(ret, 0);
	}
}

/* The image made, with the memory bound `cache_bytes` from the drop on (0: the default). */
static void make_image(struct dropfix *d, uint64_t seed, size_t cache_bytes)
{
	make_original(d, seed);
	make_deleting_snapshot(d);
	if (cache_bytes)
		fsfix_set_memory(&d->x, cache_bytes, 0);
}

/*
 * Power cut at write numbers spread over the drop: the image opens clean at some step, still
 * deleting (or done), and the drop finishes from there with everything freed.
 */
static void power_cut_sweep(const char *name, size_t cache_bytes, unsigned points)
{
	struct dropfix d;
	struct bdev_stats before, after;
	uint64_t seed = test_seed(name, 1303);
	const unsigned budget = 6;

	make_image(&d, seed, cache_bytes);
	bdev_get_stats(d.x.fs->bd, &before);
	drop_committing(&d, budget);
	bdev_get_stats(d.x.fs->bd, &after);
	uint64_t writes = after.writes - before.writes;
	fsfix_teardown(&d.x);
	fprintf(stderr, "drop: %" PRIu64 " writes, %u cut points\n", writes, points);
	ck_assert_uint_gt(writes, points);

	for (unsigned p = 0; p < points; p++) {
		uint64_t cut = 1 + p * (writes - 1) / (points - 1);
		make_image(&d, seed, cache_bytes);
		bdev_fault_cut_power(d.x.fs->bd, cut);
		if (p & 1)
			bdev_fault_volatile_cache(d.x.fs->bd, seed + p);
		drop_committing(&d, budget);
		fsfix_crash_reopen(&d.x);
		fsfix_assert_clean(&d.x, NULL);
		ck_assert_uint_eq(fsfix_tree_digest(&d.x.fs->fs_root.t), d.digest);
		struct subvol_info si;
		int left = cowfs_subvol_get(d.x.fs, d.id, &si);
		ck_assert(left == 0 || left == -ENOENT);
		fprintf(stderr, "cut at write %" PRIu64 ": %s\n", cut,
			left ? "the drop had committed in full" : "still deleting");
		d.total = d.done = 0;
		if (left == 0)
			drop_committing(&d, budget);
		commit_clean(&d);
		assert_all_gone(&d);
		fsfix_teardown(&d.x);
	}
}

START_TEST(power_cut_during_drop)
{
	power_cut_sweep("subvol_drop_cut", 0, 9);
}
END_TEST

/* The same with a cache of 32 nodes: the right edge is written early and read back, and its
 * nodes are made writable again from their generation and count (DESIGN 4.3). */
START_TEST(power_cut_during_drop_early_writeout)
{
	power_cut_sweep("subvol_drop_cut_small", 128 << 10, 9);
}
END_TEST

/*
 * A full filesystem: the snapshot holds most of what is allocated alone (the top level
 * deleted it after the snapshot), the rest was filled until ENOSPC. Dropping steps begun as
 * ordinary updates still run (deleting is privileged) and give the space back.
 */
START_TEST(drop_on_a_full_filesystem)
{
	struct fsfix x;
	struct alloc_stats full, after;
	struct cowfs_root *snap;
	uint8_t buf[400];
	uint64_t id;
	bool done = false;
	int ret, steps = 0;

	fsfix_setup(&x, "subvol_drop_full", 24ull << 20, 4096);
	memset(buf, 0xcd, sizeof(buf));
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	for (uint64_t i = 0; i < 3000; i++) {
		struct bt_key k = { 1000000 + i, 1, 0 };
		ck_assert_int_eq(bt_insert(&tx->bt, &x.fs->fs_root.t, &k, buf, 300), 0);
	}
	ck_assert_int_eq(cowfs_subvol_create(tx, FS_TREE_ID, 256, 2, "s", 1, &x.fs->fs_root, 0,
					     &snap), 0);
	id = snap->t.owner;
	ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	tx = cowfs_trans_begin(x.fs, ALLOC_PRIVILEGED);
	for (uint64_t i = 0; i < 3000; i++) {
		struct bt_key k = { 1000000 + i, 1, 0 };
		ck_assert_int_eq(bt_delete(&tx->bt, &x.fs->fs_root.t, &k), 0);
	}
	ck_assert_int_eq(cowfs_trans_end(tx, cowfs_subvol_unlink(tx, id)), 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_uint_gt(fsfix_fill(&x, sizeof(buf)), 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);
	alloc_get_stats(x.fs->alloc, &full);

	while (!done) {
		tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
		ret = cowfs_trans_end(tx, cowfs_subvol_drop_step(tx, id, 8, &done));
		REQUIRE(ret == 0, "drop step %d on a full filesystem: %d", steps, ret);
		if (++steps % 4 == 0 || done) {
			ck_assert_int_eq(cowfs_commit(x.fs), 0);
			fsfix_assert_clean(&x, NULL);
		}
	}
	alloc_get_stats(x.fs->alloc, &after);
	fprintf(stderr, "full: %" PRIu64 " bytes free (reserve %" PRIu64 "), after the drop in %d"
		" steps: %" PRIu64 "\n", full.free, full.reserve, steps, after.free);
	/* 3000 items of 300 bytes: more than 200 leaves the snapshot held alone. */
	ck_assert_uint_ge(after.free, full.free + 200 * 4096);
	/* The space is usable again by ordinary updates. */
	tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ret = cowfs_reserve(tx, cowfs_update_nodes(&x.fs->fs_root.t));
	struct bt_key k = { 7, 7, 7 };
	if (ret == 0)
		ret = bt_insert(&tx->bt, &x.fs->fs_root.t, &k, buf, sizeof(buf));
	ck_assert_int_eq(cowfs_trans_end(tx, ret), 0);
	fsfix_reopen(&x);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/* Nodes of every tree that stays (all but the subvolume being dropped). */
static uint64_t kept_tree_nodes(struct cowfs *fs)
{
	return tree_nodes(&fs->extent_root.t) + tree_nodes(&fs->root_tree) +
	       tree_nodes(&fs->fs_root.t) + tree_nodes(&fs->csum_root.t);
}

static uint64_t checked_used(struct ifix *f)
{
	struct cowfs_check_stats st;

	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	ifix_check(f);
	fsfix_assert_clean(&f->x, &st);
	return st.bytes_used;
}

/*
 * Through the inode layer: a snapshot of a directory of files (data extents, checksums) gets
 * files of its own and changed ones, is unlinked (subvol_unlink) and dropped in steps; both
 * checkers (the namespace one skips the deleting tree) after every commit. At the end its data
 * and blocks are all gone: the space used is what it was before the snapshot, plus what the
 * kept trees changed in size, node for node.
 */
START_TEST(drop_a_snapshot_with_files)
{
	struct ifix f;
	struct inode_tree snap;
	struct cowfs_root *r;
	uint64_t sid, got, files[200];
	char name[16];
	bool done = false;
	int steps = 0;

	ifix_setup(&f, "subvol_drop_files", IMG, 4096);
	uint64_t d = ifix_mk(&f, INODE_ROOT_INO, "d", S_IFDIR | 0755);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		files[i] = ifix_mk(&f, d, name, S_IFREG | 0644);
		ifix_write_pattern(&f, files[i], 8192 + i * 97, 0, i);
	}
	uint64_t used0 = checked_used(&f), nodes0 = kept_tree_nodes(f.x.fs);

	ck_assert_int_eq(subvol_snapshot(&f.it, &f.it, INODE_ROOT_INO, "snap", 4, false, &sid), 0);
	cowfs_lock(f.x.fs);
	ck_assert_int_eq(cowfs_tree_open(f.x.fs, sid, &r), 0);
	cowfs_unlock(f.x.fs);
	inode_tree_init(&snap, f.x.fs, r);
	for (int i = 0; i < 100; i++) {
		uint8_t buf[4096];
		rng_fill(buf, sizeof(buf), 1000 + i);
		ck_assert_int_eq(file_write(&snap, files[i], buf, sizeof(buf), 4096, 0),
				 (ssize_t)sizeof(buf));
	}
	for (int i = 100; i < 130; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(inode_unlink(&snap, d, name, strlen(name)), 0);
	}
	for (int i = 0; i < 50; i++) {
		struct cowfs_attr a;
		uint8_t buf[6000];
		snprintf(name, sizeof(name), "new%d", i);
		ck_assert_int_eq(inode_create(&snap, d, name, strlen(name), S_IFREG | 0644, 0, 0, 0,
					      &a), 0);
		rng_fill(buf, sizeof(buf), 2000 + i);
		ck_assert_int_eq(file_write(&snap, a.ino, buf, sizeof(buf), 0, 0),
				 (ssize_t)sizeof(buf));
	}
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(inode_tree_destroy(&snap), 0);
	ck_assert_uint_gt(checked_used(&f), used0);

	ck_assert_int_eq(subvol_unlink(&f.it, INODE_ROOT_INO, "snap", 4, 0, &got), 0);
	ck_assert_uint_eq(got, sid);
	checked_used(&f);
	while (!done) {
		struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
		ck_assert_int_eq(cowfs_trans_end(tx, cowfs_subvol_drop_step(tx, sid, 3, &done)), 0);
		if (++steps % 3 == 0 || done)
			checked_used(&f);
	}
	uint64_t used = checked_used(&f), nodes = kept_tree_nodes(f.x.fs);
	fprintf(stderr, "snapshot with files dropped in %d steps: used %" PRIu64 " before it, %"
		PRIu64 " after, kept trees %" PRIu64 " -> %" PRIu64 " nodes\n", steps, used0, used,
		nodes0, nodes);
	ck_assert_uint_eq(used, used0 + (nodes - nodes0) * cowfs_nodesize(f.x.fs));
	ck_assert_int_eq(cowfs_subvol_get(f.x.fs, sid, &(struct subvol_info){ 0 }), -ENOENT);
	ifix_reopen(&f);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("subvol_drop");
	TCase *tc = tcase_create("subvol_drop");

	tcase_add_test(tc, drop_in_steps_with_commits_and_reopens);
	tcase_add_test(tc, drop_in_one_step);
	tcase_add_test(tc, power_cut_during_drop);
	tcase_add_test(tc, power_cut_during_drop_early_writeout);
	tcase_add_test(tc, drop_on_a_full_filesystem);
	tcase_add_test(tc, drop_a_snapshot_with_files);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
