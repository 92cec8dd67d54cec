/*
 * Early write-out of dirty tree blocks (bt_relieve_cache): with a block cache far smaller than
 * what one transaction dirties, nodes are written before the commit, evicted, read back (their
 * checksums verified), changed again in place, and committed. A clone in the same transaction
 * must still shadow what it shares; a crash anywhere before the commit's superblock leaves the
 * previous generation, exactly; file data written back by a commit that writes nodes early
 * reads back and checks clean.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define IMG (128ull << 20)
#define NODE 4096u
/* cache_size: a block cache of 128 KiB (32 nodes); dirty nodes are written early past 24. */
#define TINY (256u << 10)
#define BOUND (TINY / 2)
/* Dirty nodes never force a commit: everything below is one transaction. */
#define NO_LIMIT ((size_t)1 << 40)
#define NITEMS 12000

static struct bt_key key_of(uint64_t i)
{
	return (struct bt_key){ i * 2654435761u % 1000003, 1, 0 };
}

static uint32_t len_of(uint64_t i)
{
	return 40 + i % 100;
}

static void payload(uint64_t i, uint64_t version, uint8_t *buf)
{
	for (uint32_t j = 0; j < len_of(i); j++)
		buf[j] = (uint8_t)(i * 31 + version * 7 + j);
}

/*
 * Items [from, to) of `t` at `version` (0 inserts, later versions update), one update per
 * cowfs_trans_begin as the inode layer does them. The cache stays within its bound, give or
 * take the nodes one update dirties. Returns 0 or the first error.
 */
static int put_items(struct cowfs *fs, struct btree *t, uint64_t from, uint64_t to,
		     uint64_t version)
{
	uint8_t buf[256];
	int ret = 0;

	for (uint64_t i = from; i < to && ret == 0; i++) {
		struct bt_key k = key_of(i);
		struct bcache_stats st;
		struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
		payload(i, version, buf);
		ret = cowfs_reserve(tx, cowfs_update_nodes(t));
		if (ret == 0 && version == 0)
			ret = bt_insert(&tx->bt, t, &k, buf, len_of(i));
		else if (ret == 0)
			ret = bt_update(&tx->bt, t, &k, buf, len_of(i));
		bcache_get_stats(fs->cache, &st);
		cowfs_trans_end(tx, ret);
		if (fs->cache_bytes == TINY)
			REQUIRE(st.bytes <= BOUND + 16 * NODE && st.dirty_bytes <= BOUND / 4 * 3 + 16 * NODE,
				"item %" PRIu64 ": %zu bytes cached, %zu dirty", i, st.bytes, st.dirty_bytes);
	}
	return ret;
}

static void verify_items(struct btree *t, uint64_t from, uint64_t to, uint64_t step,
			 uint64_t version)
{
	uint8_t buf[256], want[256];
	uint32_t len;

	for (uint64_t i = from; i < to; i += step) {
		struct bt_key k = key_of(i);
		REQUIRE(bt_lookup(t, &k, buf, sizeof(buf), &len) == 0, "lookup %" PRIu64, i);
		payload(i, version, want);
		REQUIRE(len == len_of(i) && !memcmp(buf, want, len), "item %" PRIu64 " differs", i);
	}
}

struct addrs {
	uint64_t v[4096];
	size_t n;
};

static int note_leaf(void *arg, uint64_t bytenr, uint8_t level, uint32_t nritems, uint64_t parent)
{
	struct addrs *a = arg;

	(void)nritems;
	(void)parent;
	if (level == 0) {
		REQUIRE(a->n < 4096, "too many leaves");
		a->v[a->n++] = bytenr;
	}
	return 0;
}

static struct bcache_stats cache_stats(struct cowfs *fs)
{
	struct bcache_stats st;

	bcache_get_stats(fs->cache, &st);
	return st;
}

/*
 * One transaction fills a tree through a tiny cache (nodes written early and evicted), then
 * changes every item again: the nodes written early are read back and changed in place (same
 * addresses: they are this transaction's own), the commit writes them again, and everything
 * reads back after a reopen with a cold cache.
 */
START_TEST(written_early_changed_in_place)
{
	static struct addrs before, after;
	struct fsfix x;

	fsfix_setup(&x, "wo-inplace", IMG, NODE);
	fsfix_set_memory(&x, TINY, NO_LIMIT);
	struct btree *t = &x.fs->fs_root.t;
	uint64_t gen = cowfs_generation(x.fs);
	ck_assert_int_eq(put_items(x.fs, t, 0, NITEMS, 0), 0);
	struct bcache_stats st1 = cache_stats(x.fs);
	ck_assert_uint_gt(st1.early_writes, 100);
	ck_assert_uint_gt(st1.evictions, 100);
	ck_assert_uint_eq(cowfs_generation(x.fs), gen);
	before.n = 0;
	ck_assert_int_eq(bt_visit(t, note_leaf, &before), 0);
	ck_assert_uint_gt(before.n, 100);

	ck_assert_int_eq(put_items(x.fs, t, 0, NITEMS, 1), 0);
	struct bcache_stats st2 = cache_stats(x.fs);
	ck_assert_uint_gt(st2.misses, st1.misses + 100);         /* read back, verified */
	ck_assert_uint_gt(st2.early_writes, st1.early_writes + 100);
	after.n = 0;
	ck_assert_int_eq(bt_visit(t, note_leaf, &after), 0);
	ck_assert_uint_eq(after.n, before.n);
	ck_assert_mem_eq(after.v, before.v, before.n * sizeof(before.v[0]));
	verify_items(t, 0, NITEMS, 1, 1);
	ck_assert_uint_eq(x.reports, 0);

	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_uint_eq(cowfs_generation(x.fs), gen + 1);
	ck_assert_int_eq(bt_check(t), 0);
	fsfix_assert_clean(&x, NULL);
	fsfix_set_memory(&x, 0, 0);
	verify_items(&x.fs->fs_root.t, 0, NITEMS, 1, 1);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

/*
 * A clone in the middle of the transaction: nodes written early before it are shared, and
 * must be shadowed, not changed in place, when either side changes them.
 */
START_TEST(written_early_then_cloned)
{
	struct fsfix x;
	struct cowfs_root *snap;

	fsfix_setup(&x, "wo-clone", IMG, NODE);
	fsfix_set_memory(&x, TINY, NO_LIMIT);
	uint64_t gen = cowfs_generation(x.fs);
	ck_assert_int_eq(put_items(x.fs, &x.fs->fs_root.t, 0, NITEMS / 2, 0), 0);
	ck_assert_uint_gt(cache_stats(x.fs).early_writes, 0);
	struct cowfs_trans *tx = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_tree_clone(tx, &x.fs->fs_root, 256, &snap), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(put_items(x.fs, &x.fs->fs_root.t, 0, NITEMS / 2, 1), 0);
	ck_assert_int_eq(put_items(x.fs, &snap->t, NITEMS / 2, NITEMS, 0), 0);
	ck_assert_int_eq(put_items(x.fs, &snap->t, 0, NITEMS / 2, 2), 0);
	ck_assert_uint_eq(cowfs_generation(x.fs), gen);

	for (int pass = 0; pass < 2; pass++) {
		verify_items(&x.fs->fs_root.t, 0, NITEMS / 2, 1, 1);
		verify_items(&snap->t, 0, NITEMS / 2, 1, 2);
		verify_items(&snap->t, NITEMS / 2, NITEMS, 1, 0);
		struct bt_key k = key_of(NITEMS / 2);
		ck_assert_int_eq(bt_lookup(&x.fs->fs_root.t, &k, NULL, 0, NULL), -ENOENT);
		ck_assert_int_eq(cowfs_commit(x.fs), 0);
		fsfix_assert_clean(&x, NULL);
		fsfix_set_memory(&x, pass ? TINY : 0, pass ? NO_LIMIT : 0);
		ck_assert_int_eq(cowfs_tree_open(x.fs, 256, &snap), 0);
	}
	fsfix_teardown(&x);
}
END_TEST

#define NBASE 3000
#define CUT_POINTS 30          /* spread over the transaction's (early) writes */
#define COMMIT_CUT_POINTS 10   /* and over the commit's */

/* A committed tree of NBASE items, then reopened with the tiny cache. */
static void base_image(struct fsfix *x)
{
	fsfix_setup(x, "wo-crash", IMG, NODE);
	ck_assert_int_eq(put_items(x->fs, &x->fs->fs_root.t, 0, NBASE, 0), 0);
	ck_assert_int_eq(cowfs_commit(x->fs), 0);
	fsfix_set_memory(x, TINY, NO_LIMIT);
}

/* New items, then every item changed: committed leaves are shadowed, nodes written early
 * are changed again. 0 or the first error. */
static int big_transaction(struct fsfix *x)
{
	struct btree *t = &x->fs->fs_root.t;
	int ret = put_items(x->fs, t, NBASE, NITEMS, 0);

	return ret ? ret : put_items(x->fs, t, 0, NITEMS, 1);
}

/*
 * The power goes at one of the writes of the transaction (all of them early ones) or of its
 * commit; every other cut also loses part of what was never flushed. Until the commit's superblock, the image must open at the previous generation with
 * exactly its content; after, at either. Then the checker finds it clean.
 */
START_TEST(crash_after_early_writeout)
{
	struct fsfix x;
	struct bdev_stats before, mid, after;
	uint64_t seed = test_seed("crash_after_early_writeout", 0xfeed);

	/* Dry run: the two generations' content, and where the writes fall. */
	base_image(&x);
	uint64_t gen = cowfs_generation(x.fs), digest = fsfix_tree_digest(&x.fs->fs_root.t);
	bdev_get_stats(x.fs->bd, &before);
	ck_assert_int_eq(big_transaction(&x), 0);
	bdev_get_stats(x.fs->bd, &mid);
	ck_assert_uint_gt(cache_stats(x.fs).early_writes, 100);
	ck_assert_uint_eq(cowfs_generation(x.fs), gen);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	bdev_get_stats(x.fs->bd, &after);
	uint64_t digest1 = fsfix_tree_digest(&x.fs->fs_root.t);
	uint64_t in_tx = mid.writes - before.writes, total = after.writes - before.writes;
	fsfix_teardown(&x);
	fprintf(stderr, "early write-out: %" PRIu64 " writes before the commit, %" PRIu64
		" in all\n", in_tx, total);

	/* The process dies after writing early, before committing: the previous generation. */
	base_image(&x);
	ck_assert_int_eq(big_transaction(&x), 0);
	fsfix_crash_reopen(&x);
	ck_assert_uint_eq(cowfs_generation(x.fs), gen);
	ck_assert_uint_eq(fsfix_tree_digest(&x.fs->fs_root.t), digest);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);

	for (uint64_t p = 0; p < CUT_POINTS + COMMIT_CUT_POINTS; p++) {
		uint64_t cut = p < CUT_POINTS ? 1 + p * (in_tx - 1) / (CUT_POINTS - 1)
					      : in_tx + 1 + (p - CUT_POINTS) * (total - in_tx - 1) /
								(COMMIT_CUT_POINTS - 1);
		base_image(&x);
		bdev_fault_cut_power(x.fs->bd, cut);
		if (p & 1)
			bdev_fault_volatile_cache(x.fs->bd, seed + p);
		/* Past the cut, nodes written early may read back as what was there before (the
		 * write never happened): errors then are the crash, not a bug. */
		int ret = big_transaction(&x);
		if (ret == 0)
			ret = cowfs_commit(x.fs);
		REQUIRE(ret == 0 || bdev_power_is_cut(x.fs->bd), "cut %" PRIu64 ": %d", cut, ret);
		fsfix_crash_reopen(&x);
		uint64_t g = cowfs_generation(x.fs);
		REQUIRE(g == gen || (cut > in_tx && g == gen + 1),
			"cut %" PRIu64 ": opened at generation %" PRIu64, cut, g);
		REQUIRE(fsfix_tree_digest(&x.fs->fs_root.t) == (g == gen ? digest : digest1),
			"cut %" PRIu64 ": content differs from generation %" PRIu64, cut, g);
		fsfix_assert_clean(&x, NULL);
		fsfix_teardown(&x);
	}
}
END_TEST

#define FILE_BYTES (8u << 20)
#define PAGE 4096u

/*
 * File data through the inode layer, as on a mount: scattered 4 KiB writes whose write-back
 * (inside the commit) changes tree blocks all over the fs, checksum and extent trees, more
 * than the tiny cache holds, so the commit writes nodes early. Both checkers stay clean and
 * every byte reads back.
 */
START_TEST(file_writeback_written_early)
{
	struct ifix f;
	uint8_t *model = malloc(FILE_BYTES), buf[PAGE];
	uint64_t rng = test_seed("file_writeback_written_early", 99);

	ck_assert_ptr_nonnull(model);
	ifix_setup(&f, "wo-file", IMG, NODE);
	ck_assert_int_eq(inode_tree_destroy(&f.it), 0);
	fsfix_set_memory(&f.x, TINY, 0);
	inode_tree_init(&f.it, f.x.fs, &f.x.fs->fs_root);
	uint64_t ino = ifix_mk(&f, INODE_ROOT_INO, "data", S_IFREG | 0644);
	for (size_t i = 0; i < FILE_BYTES; i++)
		model[i] = (uint8_t)rng_next(&rng);
	for (size_t off = 0; off < FILE_BYTES; off += 1 << 20)
		ck_assert_int_eq(file_write(&f.it, ino, model + off, 1 << 20, off, 0), 1 << 20);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	for (int i = 0; i < 3000; i++) {
		uint64_t off = rng_next(&rng) % (FILE_BYTES / PAGE) * PAGE;
		for (size_t j = 0; j < PAGE; j++)
			model[off + j] = (uint8_t)rng_next(&rng);
		REQUIRE(file_write(&f.it, ino, model + off, PAGE, off, 0) == PAGE, "write at %" PRIu64,
			off);
	}
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_gt(cache_stats(f.x.fs).early_writes, 0);
	ifix_check(&f);
	ifix_reopen(&f);
	for (size_t off = 0; off < FILE_BYTES; off += PAGE) {
		REQUIRE(file_read(&f.it, ino, buf, PAGE, off) == PAGE, "read at %zu", off);
		REQUIRE(!memcmp(buf, model + off, PAGE), "data differs at %zu", off);
	}
	free(model);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("writeout");
	TCase *tc = tcase_create("writeout");

	tcase_add_test(tc, written_early_changed_in_place);
	tcase_add_test(tc, written_early_then_cloned);
	tcase_add_test(tc, crash_after_early_writeout);
	tcase_add_test(tc, file_writeback_written_early);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
