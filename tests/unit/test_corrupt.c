/*
 * Corruption sweep: from a populated image (items, file extents, a snapshot, deletions), flip
 * one byte at 1,000 seeded random places, one at a time (restoring it after): mostly inside
 * live tree blocks and superblock copies, some anywhere. Each time the image is opened and, if
 * that succeeds, checked. Opening must either succeed or fail with a clear error; a flip inside
 * a live tree block must be found (the open fails or the check reports a problem), never
 * passed as clean; nothing may crash or hang. COWFS_CORRUPT_FLIPS overrides the count.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"

#define IMG (96ull << 20)
#define NODE 4096u

struct region { uint64_t start, len; };

struct regions {
	struct region *v;
	size_t n, cap;
};

static int collect_tree_block(void *arg, const struct extent_info *e)
{
	struct regions *r = arg;

	if (!(e->flags & EXTENT_FLAG_TREE_BLOCK))
		return 0;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = (struct region){ e->start, e->len };
	return 0;
}

static void populate(struct fsfix *x)
{
	struct cowfs_root *snap;
	uint64_t start, len;
	uint8_t buf[200];

	struct cowfs_trans *tx = cowfs_trans_begin(x->fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&x->fs->ext, &tx->bt, 1 << 20, 1 << 20, 0, &start, &len),
			 0);
	for (uint64_t id = 0; id < 8000; id++) {
		struct bt_key k = { id, 1, 0 };
		memset(buf, (int)id, sizeof(buf));
		ck_assert_int_eq(bt_insert(&tx->bt, &x->fs->fs_root.t, &k, buf, 20 + id % 180), 0);
		if (id % 40 == 0) {
			struct file_extent_item fe = { .type = FILE_EXTENT_PREALLOC };
			struct bt_key fk = { 100000 + id, EXTENT_DATA_KEY, 0 };
			put_le64(&fe.disk_bytenr, start);
			put_le64(&fe.disk_num_bytes, len);
			ck_assert_int_eq(bt_insert(&tx->bt, &x->fs->fs_root.t, &fk, &fe,
						   sizeof(fe)), 0);
		}
	}
	ck_assert_int_eq(cowfs_tree_clone(tx, &x->fs->fs_root, 256, &snap), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x->fs), 0);
	tx = cowfs_trans_begin(x->fs, ALLOC_PRIVILEGED);
	for (uint64_t id = 0; id < 8000; id += 3) {
		struct bt_key k = { id, 1, 0 };
		ck_assert_int_eq(bt_delete(&tx->bt, &x->fs->fs_root.t, &k), 0);
	}
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x->fs), 0);
}

static bool in_regions(const struct regions *r, uint64_t off)
{
	for (size_t i = 0; i < r->n; i++)
		if (off >= r->v[i].start && off < r->v[i].start + r->v[i].len)
			return true;
	return false;
}

START_TEST(thousand_byte_flips)
{
	struct fsfix x;
	struct regions blocks = { 0 };
	uint64_t seed = test_seed("thousand_byte_flips", 0xf11b);
	const char *env = getenv("COWFS_CORRUPT_FLIPS");
	uint64_t flips = env && *env ? strtoull(env, NULL, 0) : 1000;
	uint64_t open_failed = 0, found = 0, clean = 0, in_block = 0;

	fsfix_setup(&x, "corrupt", IMG, NODE);
	populate(&x);
	ck_assert_int_eq(extent_walk(&x.fs->ext, &(struct extent_walk){ .extent_fn = collect_tree_block,
									 .arg = &blocks }), 0);
	ck_assert_uint_gt(blocks.n, 50);
	cowfs_close(x.fs);
	x.fs = NULL;
	int fd = open(x.path, O_RDWR);
	ck_assert_int_ge(fd, 0);

	for (uint64_t i = 0; i < flips; i++) {
		uint64_t r = rng_next(&seed), off;
		if (r % 10 < 7) {             /* inside a live tree block */
			const struct region *b = &blocks.v[(r >> 8) % blocks.n];
			off = b->start + (r >> 32) % b->len;
		} else if (r % 10 < 8) {      /* a superblock copy */
			off = cowfs_super_offsets[(r >> 8) % 2] + (r >> 32) % COWFS_SUPER_SIZE;
		} else {                      /* anywhere */
			off = (r >> 8) % IMG;
		}
		uint8_t orig, flipped;
		ck_assert_int_eq(pread(fd, &orig, 1, (off_t)off), 1);
		flipped = orig ^ (uint8_t)(1 + (r >> 56) % 255);
		ck_assert_int_eq(pwrite(fd, &flipped, 1, (off_t)off), 1);

		struct cowfs_opts o = fsfix_opts(&x);
		o.read_only = true;
		struct cowfs *fs;
		struct cowfs_check_stats st;
		int ret = cowfs_open(x.path, &o, &fs);
		bool live = in_regions(&blocks, off);
		in_block += live;
		if (ret < 0) {
			REQUIRE(ret == -EINVAL || ret == -EUCLEAN || ret == -EIO || ret == -EOPNOTSUPP,
				"flip %" PRIu64 " at %" PRIu64 ": open failed with unexpected %d", i, off, ret);
			open_failed++;
		} else {
			ret = cowfs_check(fs, &st, NULL, NULL);
			REQUIRE(ret == 0 || ret == -EUCLEAN, "flip %" PRIu64 ": check returned %d", i, ret);
			REQUIRE(!live || ret == -EUCLEAN,
				"flip %" PRIu64 " at %" PRIu64 " inside a live tree block passed as clean", i, off);
			ret == 0 ? clean++ : found++;
			cowfs_close(fs);
		}
		ck_assert_int_eq(pwrite(fd, &orig, 1, (off_t)off), 1);
	}
	close(fd);
	fprintf(stderr, "corrupt: %" PRIu64 " flips (%" PRIu64 " in live tree blocks): open refused %" PRIu64
		", problems found %" PRIu64 ", clean %" PRIu64 "\n", flips, in_block, open_failed, found,
		clean);
	/* And the restored image is clean again. */
	struct cowfs_opts o = fsfix_opts(&x);
	ck_assert_int_eq(cowfs_open(x.path, &o, &x.fs), 0);
	fsfix_assert_clean(&x, NULL);
	free(blocks.v);
	fsfix_teardown(&x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("corrupt");
	TCase *tc = tcase_create("corrupt");

	tcase_add_test(tc, thousand_byte_flips);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
