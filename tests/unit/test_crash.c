/*
 * Crash tests. A seeded workload of transactions (item inserts, deletes and updates, file
 * extent items referencing data extents, tree clones and drops; a commit after each) runs once
 * to record every committed generation's exact content (a digest per tree) and the number of
 * device writes. Then, for hundreds of cut points N spread over that run, the workload runs
 * again on a fresh image with power cut after write N (later writes silently dropped), the
 * image is reopened, and: it opens, at a committed generation, with exactly that generation's
 * content in every tree, and the checker finds it clean. Every other cut also models a disk
 * with a volatile write cache: writes not yet flushed reach the image only partly, in any
 * order, so the commit's flushes are what is being tested, not the order of its writes.
 * COWFS_CRASH_POINTS overrides the number of cut points (default 520).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/refmap.h"

#define IMG (96ull << 20)
#define NTRANS 24
#define MAXTREES 8

struct wtree {
	struct cowfs_root *r;
	uint64_t id;
	struct refmap ref;
};

struct workload {
	struct fsfix *x;
	uint64_t rng;
	struct wtree t[MAXTREES];
	int n;
	uint64_t next_id;
	uint64_t data[32];   /* live data extents to reference */
	int ndata;
};

/* The content of one committed generation: (tree id, digest) per tree, sorted by id. */
struct gen_record {
	uint64_t gen;
	int ntrees;
	uint64_t id[MAXTREES], digest[MAXTREES];
};

/*
 * Past the power cut, a node written early (with a small cache) may read back as it was before
 * a write that never happened: errors or stale items then are the crash (the process would have
 * died with the power). The run goes on unchecked; only what reached the image counts.
 */
static bool dead(struct workload *w)
{
	return bdev_power_is_cut(w->x->fs->bd);
}

static void insert_one(struct workload *w, struct bt_trans *tx, struct wtree *t)
{
	uint64_t r = rng_next(&w->rng);
	uint8_t buf[300];
	uint32_t len;
	struct bt_key k;

	if (r % 3 == 0 && w->ndata) {
		struct file_extent_item fe = { 0 };
		uint64_t start = w->data[(r >> 8) % w->ndata];
		k = (struct bt_key){ 1000 + (r >> 16) % 500, EXTENT_DATA_KEY, ((r >> 32) % 64) * 65536 };
		fe.type = FILE_EXTENT_PREALLOC;
		put_le64(&fe.disk_bytenr, start);
		put_le64(&fe.disk_num_bytes, 65536);
		put_le64(&fe.num_bytes, 65536);
		memcpy(buf, &fe, sizeof(fe));
		len = sizeof(fe);
	} else {
		k = (struct bt_key){ (r >> 8) % 3000, 1, 0 };
		len = 1 + (r >> 40) % 250;
		for (uint32_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(r >> (i % 7 * 8)) + i;
	}
	int ret = bt_insert(tx, &t->r->t, &k, buf, len);
	if (dead(w))
		return;
	if (ref_find(&t->ref, &k)) {
		REQUIRE(ret == -EEXIST, "insert of existing key: %d", ret);
		return;
	}
	REQUIRE(ret == 0, "insert: %d", ret);
	ref_insert(&t->ref, &k, buf, len);
}

static void delete_one(struct workload *w, struct bt_trans *tx, struct wtree *t)
{
	if (!t->ref.n)
		return;
	struct ref_item *it = &t->ref.v[rng_next(&w->rng) % t->ref.n];
	int ret = bt_delete(tx, &t->r->t, &it->key);
	if (dead(w))
		return;
	REQUIRE(ret == 0, "delete failed: %d", ret);
	ref_delete(&t->ref, it);
}

static void clone_one(struct workload *w, struct cowfs_trans *tx, struct wtree *src)
{
	struct wtree *t = &w->t[w->n];

	t->id = w->next_id++;
	int ret = cowfs_tree_clone(tx, src->r, t->id, &t->r);
	if (dead(w))
		return;
	REQUIRE(ret == 0, "clone failed: %d", ret);
	ref_copy(&t->ref, &src->ref);
	w->n++;
}

static void drop_one(struct workload *w, struct cowfs_trans *tx, int i)
{
	int ret = cowfs_tree_drop(tx, w->t[i].r);
	if (dead(w))
		return;
	REQUIRE(ret == 0, "drop failed: %d", ret);
	ref_free(&w->t[i].ref);
	w->t[i] = w->t[--w->n];
}

static void one_transaction(struct workload *w)
{
	struct cowfs *fs = w->x->fs;
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_PRIVILEGED);
	uint64_t r = rng_next(&w->rng) % 10;
	uint64_t len;

	if (w->ndata < 32 && r < 5) {
		REQUIRE(extent_alloc_data(&fs->ext, &tx->bt, 65536, 65536, 0, &w->data[w->ndata],
					  &len) == 0,
			"data alloc failed");
		w->ndata++;
	}
	int nops = 50 + rng_next(&w->rng) % 300;
	for (int i = 0; i < nops; i++) {
		struct wtree *t = &w->t[rng_next(&w->rng) % w->n];
		if (rng_next(&w->rng) % 100 < 65)
			insert_one(w, &tx->bt, t);
		else
			delete_one(w, &tx->bt, t);
	}
	if (r == 7 && w->n < MAXTREES)
		clone_one(w, tx, &w->t[rng_next(&w->rng) % w->n]);
	if (r == 8 && w->n > 1)
		drop_one(w, tx, 1 + rng_next(&w->rng) % (w->n - 1));
	cowfs_trans_end(tx, 0);
}

static void record_gen(struct workload *w, struct gen_record *g)
{
	g->gen = cowfs_generation(w->x->fs);
	g->ntrees = 0;
	/* Sorted by id: insertion sort over the few trees. */
	for (int i = 0; i < w->n; i++) {
		int j = g->ntrees++;
		while (j > 0 && g->id[j - 1] > w->t[i].id) {
			g->id[j] = g->id[j - 1];
			g->digest[j] = g->digest[j - 1];
			j--;
		}
		g->id[j] = w->t[i].id;
		g->digest[j] = fsfix_tree_digest(&w->t[i].r->t);
	}
}

static void workload_start(struct workload *w, struct fsfix *x, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->x = x;
	w->rng = seed;
	w->t[0].r = &x->fs->fs_root;
	w->t[0].id = FS_TREE_ID;
	w->n = 1;
	w->next_id = 256;
}

static void workload_free(struct workload *w)
{
	for (int i = 0; i < w->n; i++)
		ref_free(&w->t[i].ref);
}

/* Run the workload; records[i] after commit i when `records` is not NULL. */
static void run_workload(struct workload *w, struct gen_record *records)
{
	for (int i = 0; i < NTRANS; i++) {
		one_transaction(w);
		/* After the power is cut the commit still "succeeds": writes are dropped silently
		 * (unless it reads a node whose early write was dropped: see dead()). */
		int ret = cowfs_commit(w->x->fs);
		REQUIRE(ret == 0 || dead(w), "commit %d failed: %d", i, ret);
		if (records)
			record_gen(w, &records[i]);
	}
}

/* The reopened image holds exactly one recorded generation's trees. */
static void verify_generation(struct fsfix *x, const struct gen_record *records, int nrec,
			      uint64_t format_gen, uint64_t cut)
{
	uint64_t gen = cowfs_generation(x->fs);
	struct bt_cursor c;
	struct bt_key k;
	int ret, found = 0;

	if (gen == format_gen)
		return;   /* nothing of the workload committed before the cut: the fresh image */
	const struct gen_record *g = NULL;
	for (int i = 0; i < nrec; i++)
		if (records[i].gen == gen)
			g = &records[i];
	REQUIRE(g, "cut %" PRIu64 ": opened at generation %" PRIu64 ", never committed", cut, gen);
	bt_cursor_init(&c, &x->fs->root_tree);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, NULL, NULL);
		if (k.type != ROOT_ITEM_KEY || k.objectid < FS_TREE_ID || k.objectid == CSUM_TREE_ID)
			continue;
		struct cowfs_root *r;
		REQUIRE(found < g->ntrees && g->id[found] == k.objectid,
			"cut %" PRIu64 " gen %" PRIu64 ": unexpected tree %" PRIu64, cut, gen, k.objectid);
		REQUIRE(cowfs_tree_open(x->fs, k.objectid, &r) == 0, "tree open");
		REQUIRE(fsfix_tree_digest(&r->t) == g->digest[found],
			"cut %" PRIu64 " gen %" PRIu64 ": tree %" PRIu64 " content differs", cut, gen,
			k.objectid);
		found++;
	}
	bt_cursor_release(&c);
	REQUIRE(found == g->ntrees, "cut %" PRIu64 ": %d trees, expected %d", cut, found, g->ntrees);
}

/* A fresh image, opened with the memory bound `cache_bytes` (0: the default). */
static void fresh_image(struct fsfix *x, size_t cache_bytes)
{
	fsfix_setup(x, "crash", IMG, 4096);
	if (cache_bytes)
		fsfix_set_memory(x, cache_bytes, 0);
}

static void cut_power_sweep(const char *name, size_t cache_bytes, uint64_t default_points)
{
	struct fsfix x;
	struct workload w;
	struct gen_record records[NTRANS];
	struct bdev_stats before, after;
	struct bcache_stats cst;
	uint64_t seed = test_seed(name, 0xc0ffee);
	const char *env = getenv("COWFS_CRASH_POINTS");
	uint64_t points = env && *env ? strtoull(env, NULL, 0) : default_points;

	/* Dry run: the content of every generation and the number of writes. */
	fresh_image(&x, cache_bytes);
	uint64_t format_gen = cowfs_generation(x.fs);
	bdev_get_stats(x.fs->bd, &before);
	workload_start(&w, &x, seed);
	run_workload(&w, records);
	bdev_get_stats(x.fs->bd, &after);
	uint64_t writes = after.writes - before.writes;
	bcache_get_stats(x.fs->cache, &cst);
	workload_free(&w);
	fsfix_teardown(&x);
	fprintf(stderr, "%s: %d transactions, %" PRIu64 " writes (%" PRIu64 " early), %" PRIu64
		" cut points\n", name, NTRANS, writes, cst.early_writes, points);
	/* A small cache writes nodes early in most transactions. */
	ck_assert(cache_bytes ? cst.early_writes > writes / 4 : cst.early_writes == 0);
	ck_assert_uint_gt(writes, points);

	uint64_t gens_seen = 0, last_gen = 0;
	for (uint64_t p = 0; p < points; p++) {
		uint64_t cut = 1 + p * (writes - 1) / (points - 1);   /* spread, first and last */
		fresh_image(&x, cache_bytes);
		bdev_fault_cut_power(x.fs->bd, cut);
		/* Every other cut also loses a random part of what was never flushed. */
		if (p & 1)
			bdev_fault_volatile_cache(x.fs->bd, seed + p);
		workload_start(&w, &x, seed);
		run_workload(&w, NULL);
		workload_free(&w);
		fsfix_crash_reopen(&x);
		verify_generation(&x, records, NTRANS, format_gen, cut);
		fsfix_assert_clean(&x, NULL);
		if (cowfs_generation(x.fs) != last_gen)
			gens_seen++;
		last_gen = cowfs_generation(x.fs);
		fsfix_teardown(&x);
	}
	fprintf(stderr, "%s: %" PRIu64 " cut points verified, %" PRIu64
		" distinct generations reached\n", name, points, gens_seen);
	ck_assert_uint_ge(gens_seen, NTRANS / 2);
}

START_TEST(power_cut_at_many_points)
{
	cut_power_sweep("power_cut_at_many_points", 0, 520);
}
END_TEST

/* The same with a cache of 16 nodes: most nodes reach the image early, before their commit
 * (bt_relieve_cache), and are read back, changed again, cloned and dropped. */
START_TEST(power_cut_with_early_writeout)
{
	cut_power_sweep("power_cut_with_early_writeout", 128 << 10, 260);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crash");

	tcase_add_test(tc, power_cut_at_many_points);
	tcase_add_test(tc, power_cut_with_early_writeout);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
