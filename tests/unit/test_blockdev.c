/* Unit tests for fs/io/blockdev: batched io_uring I/O, error paths, stats, fault injection. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/io/blockdev.h"
#include "tests/support/fixture.h"

#define BS 4096u

static char img[512];

/* Each Check test runs in its own forked process, so the pid keeps the names apart. */
static void setup(void)
{
	const char *dir = getenv("COWFS_TEST_DIR");

	snprintf(img, sizeof(img), "%s/blockdev-%ld.img", dir && *dir ? dir : "/tmp",
		 (long)getpid());
	unlink(img);
}

static void teardown(void)
{
	unlink(img);
}

/* Every byte depends on the block number, the byte offset and a per-test generation. */
static uint8_t pattern(uint64_t blk, size_t i, unsigned gen)
{
	uint64_t x = (blk + 1) * 0x9e3779b97f4a7c15ull + i * 0x100000001b3ull + gen * 0x51ull;

	return (uint8_t)(x ^ (x >> 29) ^ (x >> 47));
}

static void fill_block(uint8_t *buf, uint64_t blk, unsigned gen)
{
	for (size_t i = 0; i < BS; i++)
		buf[i] = pattern(blk, i, gen);
}

static bool block_is(const uint8_t *buf, uint64_t blk, unsigned gen)
{
	for (size_t i = 0; i < BS; i++)
		if (buf[i] != pattern(blk, i, gen))
			return false;
	return true;
}

/* An image of `nblocks` blocks filled with generation `gen`, written with plain pwrite. */
static void make_image(uint64_t nblocks, unsigned gen)
{
	uint8_t buf[BS];
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	for (uint64_t b = 0; b < nblocks; b++) {
		fill_block(buf, b, gen);
		ck_assert_int_eq(pwrite(fd, buf, BS, (off_t)(b * BS)), BS);
	}
	ck_assert_int_eq(close(fd), 0);
}

static struct blockdev *open_img(bool read_only, bool direct, unsigned qd)
{
	struct bdev_opts o = { .read_only = read_only, .direct = direct, .queue_depth = qd };
	struct blockdev *bd = NULL;

	ck_assert_int_eq(bdev_open(img, &o, &bd), 0);
	ck_assert_ptr_nonnull(bd);
	return bd;
}

static uint8_t *alloc_blocks(size_t n)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, BDEV_ALIGN, n * BS), 0);
	return p;
}

static void set_ios(struct bdev_io *ios, uint8_t *bufs, size_t n, uint64_t first_blk)
{
	for (size_t i = 0; i < n; i++)
		ios[i] = (struct bdev_io){ .off = (first_blk + i) * BS, .buf = bufs + i * BS,
					   .len = BS, .res = 12345 };
}

/* Reopen the image and check blocks [0, n) hold generation gens[i]. */
static void verify_image(uint64_t n, const unsigned *gens)
{
	struct blockdev *bd = open_img(true, false, 0);
	uint8_t buf[BS];

	for (uint64_t b = 0; b < n; b++) {
		ck_assert_int_eq(bdev_read(bd, b * BS, buf, BS), 0);
		ck_assert_msg(block_is(buf, b, gens[b]), "block %lu: expected gen %u",
			      (unsigned long)b, gens[b]);
	}
	bdev_close(bd);
}

START_TEST(test_open_missing)
{
	struct bdev_opts o = { 0 };
	struct blockdev *bd = NULL;

	ck_assert_int_eq(bdev_open(img, &o, &bd), -ENOENT);
	ck_assert_ptr_null(bd);
}
END_TEST

START_TEST(test_size_and_single_io)
{
	struct blockdev *bd;
	uint8_t in[BS], out[BS];

	make_image(8, 1);
	bd = open_img(false, false, 0);
	ck_assert_uint_eq(bdev_size(bd), 8 * BS);
	ck_assert(!bdev_is_read_only(bd));
	ck_assert_int_eq(bdev_read(bd, 3 * BS, out, BS), 0);
	ck_assert(block_is(out, 3, 1));
	fill_block(in, 3, 2);
	ck_assert_int_eq(bdev_write(bd, 3 * BS, in, BS), 0);
	memset(out, 0, BS);
	ck_assert_int_eq(bdev_read(bd, 3 * BS, out, BS), 0);
	ck_assert(block_is(out, 3, 2));
	/* Unaligned offsets and lengths are fine without O_DIRECT. */
	ck_assert_int_eq(bdev_read(bd, 3 * BS + 100, out, 1000), 0);
	ck_assert_mem_eq(out, in + 100, 1000);
	/* Writing past the end grows a regular file image. */
	ck_assert_int_eq(bdev_write(bd, 10 * BS, in, BS), 0);
	ck_assert_uint_eq(bdev_size(bd), 11 * BS);
	bdev_close(bd);
}
END_TEST

static void batch_round_trip(size_t n, unsigned qd)
{
	uint8_t *bufs = alloc_blocks(n);
	struct bdev_io *ios = calloc(n, sizeof(*ios));
	struct bdev_stats st;
	struct blockdev *bd;

	ck_assert_ptr_nonnull(ios);
	make_image(0, 0);
	bd = open_img(false, false, qd);
	for (size_t i = 0; i < n; i++)
		fill_block(bufs + i * BS, i, 7);
	set_ios(ios, bufs, n, 0);
	ck_assert_int_eq(bdev_write_batch(bd, ios, n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(ios[i].res, 0);
	ck_assert_uint_eq(bdev_size(bd), n * BS);

	memset(bufs, 0, n * BS);
	set_ios(ios, bufs, n, 0);
	ck_assert_int_eq(bdev_read_batch(bd, ios, n), 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(ios[i].res, 0);
		ck_assert_msg(block_is(bufs + i * BS, i, 7), "block %zu differs", i);
	}
	bdev_get_stats(bd, &st);
	ck_assert_uint_eq(st.writes, n);
	ck_assert_uint_eq(st.reads, n);
	ck_assert_uint_eq(st.bytes_written, n * BS);
	ck_assert_uint_eq(st.bytes_read, n * BS);
	bdev_close(bd);
	free(ios);
	free(bufs);
}

START_TEST(test_batch_round_trip)
{
	batch_round_trip(5000, 0);
}
END_TEST

/* A queue far smaller than the batch: the ring is refilled many times. */
START_TEST(test_batch_small_queue)
{
	batch_round_trip(777, 4);
}
END_TEST

/* Requests in one batch may be of different lengths and unaligned without O_DIRECT. */
START_TEST(test_batch_mixed_lengths)
{
	enum { N = 64 };
	struct bdev_io ios[N];
	uint8_t *src = alloc_blocks(N), *dst = alloc_blocks(N);
	struct blockdev *bd;
	uint64_t off = 0;

	make_image(0, 0);
	bd = open_img(false, false, 8);
	for (size_t i = 0; i < N * BS; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	for (int i = 0; i < N; i++) {
		uint32_t len = 1 + (uint32_t)i * 61;

		ios[i] = (struct bdev_io){ .off = off, .buf = src + off, .len = len };
		off += len;
	}
	ck_assert_int_eq(bdev_write_batch(bd, ios, N), 0);
	ck_assert_uint_eq(bdev_size(bd), off);
	for (int i = 0; i < N; i++)
		ios[i].buf = dst + ios[i].off;
	ck_assert_int_eq(bdev_read_batch(bd, ios, N), 0);
	ck_assert_mem_eq(src, dst, off);
	bdev_close(bd);
	free(src);
	free(dst);
}
END_TEST

START_TEST(test_read_eof)
{
	uint8_t buf[4 * BS];
	struct bdev_io ios[4];
	struct blockdev *bd;

	make_image(4, 1);
	ck_assert_int_eq(truncate(img, 3 * BS + 100), 0);
	bd = open_img(false, false, 0);
	ck_assert_uint_eq(bdev_size(bd), 3 * BS + 100);
	/* Entirely past the end, and straddling it (a short read, then end of file). */
	ck_assert_int_eq(bdev_read(bd, 5 * BS, buf, BS), -EIO);
	ck_assert_int_eq(bdev_read(bd, 3 * BS, buf, BS), -EIO);
	ck_assert_int_eq(bdev_read(bd, 3 * BS, buf, 100), 0);

	/* Each request gets its own result; the batch returns the first error. */
	ios[0] = (struct bdev_io){ .off = 0, .buf = buf, .len = BS };
	ios[1] = (struct bdev_io){ .off = 2 * BS + 200, .buf = buf + BS, .len = BS };
	ios[2] = (struct bdev_io){ .off = BS, .buf = buf + 2 * BS, .len = BS };
	ios[3] = (struct bdev_io){ .off = 9 * BS, .buf = buf + 3 * BS, .len = 1 };
	ck_assert_int_eq(bdev_read_batch(bd, ios, 4), -EIO);
	ck_assert_int_eq(ios[0].res, 0);
	ck_assert_int_eq(ios[1].res, -EIO);
	ck_assert_int_eq(ios[2].res, 0);
	ck_assert_int_eq(ios[3].res, -EIO);
	ck_assert(block_is(buf, 0, 1));
	ck_assert(block_is(buf + 2 * BS, 1, 1));
	bdev_close(bd);
}
END_TEST

START_TEST(test_read_only)
{
	uint8_t buf[BS];
	struct bdev_io ios[2];
	struct blockdev *bd;
	unsigned gens[2] = { 1, 1 };

	make_image(2, 1);
	bd = open_img(true, false, 0);
	ck_assert(bdev_is_read_only(bd));
	fill_block(buf, 0, 2);
	ck_assert_int_eq(bdev_write(bd, 0, buf, BS), -EROFS);
	ios[0] = (struct bdev_io){ .off = 0, .buf = buf, .len = BS };
	ios[1] = (struct bdev_io){ .off = BS, .buf = buf, .len = BS };
	ck_assert_int_eq(bdev_write_batch(bd, ios, 2), -EROFS);
	ck_assert_int_eq(ios[0].res, -EROFS);
	ck_assert_int_eq(ios[1].res, -EROFS);
	ck_assert_int_eq(bdev_read(bd, BS, buf, BS), 0);
	ck_assert(block_is(buf, 1, 1));
	bdev_close(bd);
	verify_image(2, gens);
}
END_TEST

START_TEST(test_direct)
{
	uint8_t *buf = alloc_blocks(4);
	struct bdev_io ios[3];
	struct blockdev *bd;
	struct bdev_opts o = { .direct = true };

	make_image(16, 1);
	ck_assert_int_eq(bdev_open(img, &o, &bd), 0);
	fill_block(buf, 5, 3);
	fill_block(buf + BS, 6, 3);
	ck_assert_int_eq(bdev_write(bd, 5 * BS, buf, 2 * BS), 0);
	memset(buf, 0, 4 * BS);
	ck_assert_int_eq(bdev_read(bd, 4 * BS, buf, 3 * BS), 0);
	ck_assert(block_is(buf, 4, 1));
	ck_assert(block_is(buf + BS, 5, 3));
	ck_assert(block_is(buf + 2 * BS, 6, 3));

	ck_assert_int_eq(bdev_read(bd, 100, buf, BS), -EINVAL);        /* offset */
	ck_assert_int_eq(bdev_read(bd, 0, buf, 512), -EINVAL);         /* length */
	ck_assert_int_eq(bdev_read(bd, 0, buf + 8, BS), -EINVAL);      /* buffer */
	ck_assert_int_eq(bdev_write(bd, 0, buf + 8, BS), -EINVAL);

	/* A misaligned request fails alone; the others in its batch still run. */
	ios[0] = (struct bdev_io){ .off = 0, .buf = buf, .len = BS };
	ios[1] = (struct bdev_io){ .off = BS, .buf = buf + BS + 1, .len = BS };
	ios[2] = (struct bdev_io){ .off = 2 * BS, .buf = buf + 2 * BS, .len = BS };
	ck_assert_int_eq(bdev_read_batch(bd, ios, 3), -EINVAL);
	ck_assert_int_eq(ios[0].res, 0);
	ck_assert_int_eq(ios[1].res, -EINVAL);
	ck_assert_int_eq(ios[2].res, 0);
	ck_assert(block_is(buf, 0, 1));
	ck_assert(block_is(buf + 2 * BS, 2, 1));
	ck_assert_int_eq(bdev_flush(bd), 0);
	bdev_close(bd);
	free(buf);
}
END_TEST

START_TEST(test_flush)
{
	uint8_t buf[BS];
	struct bdev_stats st;
	struct blockdev *bd;
	unsigned gens[3] = { 1, 4, 1 };

	make_image(3, 1);
	bd = open_img(false, false, 0);
	fill_block(buf, 1, 4);
	ck_assert_int_eq(bdev_write(bd, BS, buf, BS), 0);
	ck_assert_int_eq(bdev_flush(bd), 0);
	ck_assert_int_eq(bdev_flush(bd), 0);
	bdev_get_stats(bd, &st);
	ck_assert_uint_eq(st.flushes, 2);
	ck_assert_uint_eq(st.writes, 1);
	bdev_close(bd);
	verify_image(3, gens);

	/* Flushing a read-only device is harmless. */
	bd = open_img(true, false, 0);
	ck_assert_int_eq(bdev_flush(bd), 0);
	bdev_close(bd);
}
END_TEST

START_TEST(test_stats_submits)
{
	enum { N = 1000 };
	uint8_t *bufs = alloc_blocks(N);
	struct bdev_io ios[N];
	struct bdev_stats st;
	struct blockdev *bd;

	make_image(0, 0);
	bd = open_img(false, false, 0);
	for (size_t i = 0; i < N; i++)
		fill_block(bufs + i * BS, i, 1);
	set_ios(ios, bufs, N, 0);
	ck_assert_int_eq(bdev_write_batch(bd, ios, N), 0);
	bdev_get_stats(bd, &st);
	ck_assert_uint_eq(st.writes, N);
	ck_assert_uint_ge(st.submits, 1);
	/* 256-entry queue: a few fills of the ring, not one syscall per block. */
	ck_assert_msg(st.submits <= 50, "%lu submits for %d writes", (unsigned long)st.submits, N);
	ck_assert_uint_eq(st.reads, 0);
	ck_assert_uint_eq(st.flushes, 0);
	bdev_close(bd);
	free(bufs);
}
END_TEST

START_TEST(test_fail_write)
{
	enum { N = 6 };
	uint8_t *bufs = alloc_blocks(N);
	struct bdev_io ios[N];
	struct blockdev *bd;
	unsigned gens[N] = { 2, 2, 2, 1, 2, 3 };

	make_image(N, 1);
	bd = open_img(false, false, 0);
	for (size_t i = 0; i < N; i++)
		fill_block(bufs + i * BS, i, 2);
	/* Writes 1 and 2 are single calls, then a batch numbers 3..6: the 4th is block 3. */
	bdev_fault_fail_write(bd, 4);
	ck_assert_int_eq(bdev_write(bd, 0, bufs, BS), 0);
	ck_assert_int_eq(bdev_write(bd, BS, bufs + BS, BS), 0);
	set_ios(ios, bufs + 2 * BS, 4, 2);
	ck_assert_int_eq(bdev_write_batch(bd, ios, 4), -EIO);
	ck_assert_int_eq(ios[0].res, 0);
	ck_assert_int_eq(ios[1].res, -EIO);
	ck_assert_int_eq(ios[2].res, 0);
	ck_assert_int_eq(ios[3].res, 0);
	/* One-shot: later writes succeed. */
	fill_block(bufs, 5, 3);
	ck_assert_int_eq(bdev_write(bd, 5 * BS, bufs, BS), 0);
	ck_assert(!bdev_power_is_cut(bd));
	ck_assert_int_eq(bdev_flush(bd), 0);
	bdev_close(bd);
	verify_image(N, gens);
	free(bufs);
}
END_TEST

START_TEST(test_fail_write_clear)
{
	uint8_t buf[BS];
	struct blockdev *bd;
	unsigned gens[2] = { 2, 2 };

	make_image(2, 1);
	bd = open_img(false, false, 0);
	bdev_fault_fail_write(bd, 2);
	fill_block(buf, 0, 2);
	ck_assert_int_eq(bdev_write(bd, 0, buf, BS), 0);
	bdev_fault_clear(bd);
	fill_block(buf, 1, 2);
	ck_assert_int_eq(bdev_write(bd, BS, buf, BS), 0);
	bdev_close(bd);
	verify_image(2, gens);
}
END_TEST

/* The cut falls inside a batch: writes 1..3 land, 4..8 of that batch and all later do not. */
START_TEST(test_cut_power)
{
	enum { N = 10 };
	uint8_t *bufs = alloc_blocks(N);
	struct bdev_io ios[N];
	struct blockdev *bd;
	unsigned gens[N] = { 2, 2, 2, 1, 1, 1, 1, 1, 1, 1 };

	make_image(N, 1);
	bd = open_img(false, false, 0);
	for (size_t i = 0; i < N; i++)
		fill_block(bufs + i * BS, i, 2);
	bdev_fault_cut_power(bd, 3);
	ck_assert_int_eq(bdev_write(bd, 0, bufs, BS), 0);
	ck_assert(!bdev_power_is_cut(bd));
	set_ios(ios, bufs + BS, 7, 1);
	ck_assert_int_eq(bdev_write_batch(bd, ios, 7), 0);
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(ios[i].res, 0);
	ck_assert(bdev_power_is_cut(bd));
	ck_assert_int_eq(bdev_flush(bd), 0);
	set_ios(ios, bufs + 8 * BS, 2, 8);
	ck_assert_int_eq(bdev_write_batch(bd, ios, 2), 0);
	/* Clearing the faults does not bring the power back. */
	bdev_fault_clear(bd);
	ck_assert(bdev_power_is_cut(bd));
	ck_assert_int_eq(bdev_write(bd, 9 * BS, bufs + 9 * BS, BS), 0);
	ck_assert_int_eq(bdev_flush(bd), 0);
	bdev_close(bd);
	verify_image(N, gens);
	free(bufs);
}
END_TEST

/*
 * A volatile write cache: writes are visible to reads but not on the image until a flush;
 * at a cut, flushed writes are all there and the unflushed ones only partly, each either old
 * or new in full.
 */
START_TEST(test_volatile_cache)
{
	enum { N = 64 };
	uint8_t *bufs = alloc_blocks(N), *rd = alloc_blocks(1);
	struct bdev_io ios[N];
	struct blockdev *bd;
	int fd;

	make_image(N, 1);
	bd = open_img(false, false, 0);
	bdev_fault_volatile_cache(bd, 42);
	for (size_t i = 0; i < N; i++)
		fill_block(bufs + i * BS, i, 2);
	/* Blocks 0..15 written and flushed. */
	set_ios(ios, bufs, 16, 0);
	ck_assert_int_eq(bdev_write_batch(bd, ios, 16), 0);
	ck_assert_int_eq(bdev_read(bd, 3 * BS, rd, BS), 0);
	ck_assert(block_is(rd, 3, 2));                 /* reads see the cache */
	uint8_t raw[BS];
	fd = open(img, O_RDONLY);
	ck_assert_int_eq(pread(fd, raw, BS, 3 * BS), BS);
	ck_assert(block_is(raw, 3, 1));                /* the image does not, yet */
	ck_assert_int_eq(bdev_flush(bd), 0);
	ck_assert_int_eq(pread(fd, raw, BS, 3 * BS), BS);
	ck_assert(block_is(raw, 3, 2));
	close(fd);
	/* Blocks 16..63 written, never flushed, then the power goes. */
	bdev_fault_cut_power(bd, 48);
	set_ios(ios, bufs + 16 * BS, 48, 16);
	ck_assert_int_eq(bdev_write_batch(bd, ios, 48), 0);
	ck_assert(bdev_power_is_cut(bd));
	bdev_close(bd);
	bd = open_img(true, false, 0);
	int survived = 0;
	for (uint64_t b = 0; b < N; b++) {
		ck_assert_int_eq(bdev_read(bd, b * BS, rd, BS), 0);
		if (b < 16) {
			ck_assert(block_is(rd, b, 2));
		} else {
			ck_assert(block_is(rd, b, 2) || block_is(rd, b, 1));
			survived += block_is(rd, b, 2);
		}
	}
	/* Some of the unflushed writes survived and some did not (seeded: not all, not none). */
	ck_assert_int_gt(survived, 0);
	ck_assert_int_lt(survived, 48);
	bdev_close(bd);
	free(bufs);
	free(rd);
}
END_TEST

START_TEST(test_cut_power_now)
{
	uint8_t buf[BS];
	struct blockdev *bd;
	unsigned gens[1] = { 1 };

	make_image(1, 1);
	bd = open_img(false, false, 0);
	bdev_fault_cut_power(bd, 0);
	ck_assert(bdev_power_is_cut(bd));
	fill_block(buf, 0, 2);
	ck_assert_int_eq(bdev_write(bd, 0, buf, BS), 0);
	ck_assert_int_eq(bdev_flush(bd), 0);
	/* Reads still see the file. */
	ck_assert_int_eq(bdev_read(bd, 0, buf, BS), 0);
	ck_assert(block_is(buf, 0, 1));
	bdev_close(bd);
	verify_image(1, gens);
}
END_TEST

/* Faults are per device: arming one leaves another alone. */
START_TEST(test_fault_per_device)
{
	uint8_t buf[BS];
	struct blockdev *a, *b;

	make_image(1, 1);
	a = open_img(false, false, 0);
	b = open_img(false, false, 0);
	bdev_fault_fail_write(a, 1);
	fill_block(buf, 0, 1);
	ck_assert_int_eq(bdev_write(b, 0, buf, BS), 0);
	ck_assert_int_eq(bdev_write(a, 0, buf, BS), -EIO);
	bdev_close(a);
	bdev_close(b);
}
END_TEST

struct worker {
	struct blockdev *bd;
	unsigned id;
	int failures;
};

enum { THREADS = 4, PER_THREAD = 200 };

/* Each thread owns a disjoint range of blocks: write, read back, compare, repeatedly. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t in[BS], out[BS];

	for (unsigned r = 0; r < 3; r++) {
		for (uint64_t i = 0; i < PER_THREAD; i++) {
			uint64_t blk = w->id * PER_THREAD + i;

			fill_block(in, blk, r + 10);
			if (bdev_write(w->bd, blk * BS, in, BS) ||
			    bdev_read(w->bd, blk * BS, out, BS) || memcmp(in, out, BS))
				w->failures++;
		}
	}
	return NULL;
}

START_TEST(test_threads)
{
	struct worker w[THREADS];
	pthread_t tid[THREADS];
	struct bdev_stats st;
	struct blockdev *bd;

	make_image(THREADS * PER_THREAD, 1);
	bd = open_img(false, false, 0);
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .bd = bd, .id = i };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
		ck_assert_int_eq(w[i].failures, 0);
	}
	bdev_get_stats(bd, &st);
	ck_assert_uint_eq(st.writes, 3 * THREADS * PER_THREAD);
	ck_assert_uint_eq(st.reads, 3 * THREADS * PER_THREAD);
	bdev_close(bd);
}
END_TEST

static Suite *blockdev_suite(void)
{
	Suite *s = suite_create("blockdev");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_size_and_single_io);
	tcase_add_test(tc, test_batch_round_trip);
	tcase_add_test(tc, test_batch_small_queue);
	tcase_add_test(tc, test_batch_mixed_lengths);
	tcase_add_test(tc, test_read_eof);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_direct);
	tcase_add_test(tc, test_flush);
	tcase_add_test(tc, test_stats_submits);
	tcase_add_test(tc, test_volatile_cache);
	tcase_add_test(tc, test_fail_write);
	tcase_add_test(tc, test_fail_write_clear);
	tcase_add_test(tc, test_cut_power);
	tcase_add_test(tc, test_cut_power_now);
	tcase_add_test(tc, test_fault_per_device);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(blockdev_suite());
}
