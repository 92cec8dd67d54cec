/* Unit tests for fs/io/bcache: hits and misses, writeback, eviction, forget, concurrency. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "tests/support/fixture.h"

#define BS 4096u
#define CB_TEST_A CB_USER0
#define CB_TEST_B (CB_USER0 << 1)

static char img[512];
static struct blockdev *bd;
static struct bcache *cache;

static void setup(void)
{
	const char *dir = getenv("COWFS_TEST_DIR");

	snprintf(img, sizeof(img), "%s/bcache-%ld.img", dir && *dir ? dir : "/tmp",
		 (long)getpid());
	unlink(img);
	bd = NULL;
	cache = NULL;
}

static void teardown(void)
{
	unlink(img);
}

/* On-disk content of block `blk` in generation `gen`: every 8-byte word names both. */
static void fill_block(void *buf, uint64_t blk, uint64_t gen)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < BS / 8; i++)
		w[i] = (blk << 40) ^ (gen << 20) ^ i;
}

static bool block_is(const void *buf, uint64_t blk, uint64_t gen)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < BS / 8; i++)
		if (w[i] != ((blk << 40) ^ (gen << 20) ^ i))
			return false;
	return true;
}

static void make_image(uint64_t nblocks, uint64_t gen)
{
	uint64_t buf[BS / 8];
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	for (uint64_t b = 0; b < nblocks; b++) {
		fill_block(buf, b, gen);
		ck_assert_int_eq(pwrite(fd, buf, BS, (off_t)(b * BS)), BS);
	}
	ck_assert_int_eq(close(fd), 0);
}

static void open_cache(size_t max_bytes)
{
	struct bdev_opts o = { 0 };

	ck_assert_int_eq(bdev_open(img, &o, &bd), 0);
	ck_assert_int_eq(bcache_create(bd, max_bytes, &cache), 0);
	ck_assert_ptr_eq(bcache_device(cache), bd);
}

static void close_cache(void)
{
	bcache_destroy(cache);
	bdev_close(bd);
	cache = NULL;
	bd = NULL;
}

static struct bcache_stats stats(void)
{
	struct bcache_stats st;

	bcache_get_stats(cache, &st);
	return st;
}

static struct cblock *get(uint64_t blk)
{
	struct cblock *b = NULL;

	ck_assert_int_eq(bcache_get(cache, blk * BS, BS, &b), 0);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->addr, blk * BS);
	ck_assert_uint_eq(b->len, BS);
	ck_assert_uint_eq((uintptr_t)b->data % BDEV_ALIGN, 0);
	return b;
}

static struct cblock *get_new(uint64_t blk)
{
	struct cblock *b = NULL;

	ck_assert_int_eq(bcache_get_new(cache, blk * BS, BS, &b), 0);
	ck_assert_ptr_nonnull(b);
	return b;
}

/* Blocks 0..n-1 new, dirty, with the content of generation `gen`, unreferenced. */
static void put_new_blocks(uint64_t n, uint64_t gen)
{
	for (uint64_t i = 0; i < n; i++) {
		struct cblock *b = get_new(i);
		fill_block(b->data, i, gen);
		bcache_put(cache, b);
	}
}

/* Read straight from the image, bypassing any cache. */
static bool disk_block_is(uint64_t blk, uint64_t gen)
{
	uint64_t buf[BS / 8];
	int fd = open(img, O_RDONLY);
	bool ok;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, BS, (off_t)(blk * BS)), BS);
	ok = block_is(buf, blk, gen);
	close(fd);
	return ok;
}

START_TEST(test_miss_then_hit)
{
	struct cblock *a, *b;
	struct bcache_stats st;

	make_image(4, 1);
	open_cache(0);
	ck_assert_uint_eq(stats().max_bytes, BCACHE_DEFAULT_BYTES);
	a = get(2);
	ck_assert(block_is(a->data, 2, 1));
	ck_assert_uint_eq(a->flags, 0);
	b = get(2);
	ck_assert_ptr_eq(a, b);
	st = stats();
	ck_assert_uint_eq(st.misses, 1);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.blocks, 1);
	ck_assert_uint_eq(st.bytes, BS);
	ck_assert_uint_eq(st.dirty_bytes, 0);
	bcache_put(cache, a);
	bcache_put(cache, b);
	/* Unreferenced clean blocks stay cached. */
	b = get(2);
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(stats().hits, 2);
	bcache_put(cache, b);
	close_cache();
}
END_TEST

START_TEST(test_ref_put)
{
	struct cblock *a;

	make_image(4, 1);
	open_cache(BS);
	a = get(0);
	bcache_ref(cache, a);
	bcache_put(cache, a);
	/* Still referenced: pressure from other blocks does not evict it. */
	for (uint64_t i = 1; i < 4; i++)
		bcache_put(cache, get(i));
	ck_assert(block_is(a->data, 0, 1));
	ck_assert_ptr_eq(get(0), a);
	ck_assert_uint_eq(stats().misses, 4);
	bcache_put(cache, a);
	bcache_put(cache, a);
	ck_assert_uint_le(stats().bytes, BS);
	close_cache();
}
END_TEST

START_TEST(test_get_new)
{
	struct cblock *b;
	static const uint8_t zero[BS];

	make_image(4, 1);
	open_cache(0);
	/* A cached clean copy of the address is discarded, not reused. */
	bcache_put(cache, get(1));
	b = get_new(1);
	ck_assert_mem_eq(b->data, zero, BS);
	ck_assert_uint_eq(b->flags, CB_DIRTY);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), BS);
	ck_assert_uint_eq(stats().blocks, 1);
	bcache_put(cache, b);
	/* Dirty and unreferenced: still the same block on the next get. */
	ck_assert_ptr_eq(get(1), b);
	bcache_put(cache, b);
	/* An address beyond the device end needs no read. */
	b = get_new(100);
	ck_assert_mem_eq(b->data, zero, BS);
	bcache_put(cache, b);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 2 * BS);
	close_cache();
}
END_TEST

struct seal_log {
	uint64_t addrs[64];
	size_t n;
	struct bcache *c;
};

/* Stamps the block's own address in its first word, as a checksum would be computed. */
static void seal_cb(void *arg, struct cblock *b)
{
	struct seal_log *log = arg;

	ck_assert(b->flags & CB_DIRTY);
	ck_assert_uint_lt(log->n, 64);
	log->addrs[log->n++] = b->addr;
	((uint64_t *)b->data)[0] = b->addr ^ 0xabcdefull;
	bcache_set_flags(log->c, b, CB_TEST_B);
}

START_TEST(test_writeback)
{
	static const uint64_t order[] = { 7, 3, 12, 0, 9, 5 };
	struct cblock *blocks[6];
	struct seal_log log = { .n = 0 };
	struct bdev_stats bst;
	struct cblock *b;

	make_image(16, 1);
	open_cache(0);
	log.c = cache;
	for (size_t i = 0; i < 6; i++) {
		if (i % 2) {
			b = get(order[i]);
			fill_block(b->data, order[i], 2);
			bcache_mark_dirty(cache, b);
		} else {
			b = get_new(order[i]);
			fill_block(b->data, order[i], 2);
		}
		bcache_set_flags(cache, b, CB_TEST_A);
		ck_assert(b->flags & CB_DIRTY);
		blocks[i] = b;
	}
	/* One block stays referenced through the writeback. */
	for (size_t i = 1; i < 6; i++)
		bcache_put(cache, blocks[i]);
	bcache_put(cache, get(15));
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 6 * BS);

	ck_assert_int_eq(bcache_writeback(cache, seal_cb, &log, CB_TEST_A), 0);
	ck_assert_uint_eq(log.n, 6);
	for (size_t i = 1; i < log.n; i++)
		ck_assert_uint_lt(log.addrs[i - 1], log.addrs[i]);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 0);
	bdev_get_stats(bd, &bst);
	ck_assert_uint_eq(bst.writes, 6);
	for (size_t i = 0; i < 6; i++) {
		b = get(order[i]);
		ck_assert_uint_eq(b->flags, CB_TEST_B);
		bcache_put(cache, b);
	}
	bcache_put(cache, blocks[0]);
	/* Nothing is dirty any more: a second writeback writes nothing. */
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, 0), 0);
	bdev_get_stats(bd, &bst);
	ck_assert_uint_eq(bst.writes, 6);
	close_cache();

	/* Reopen: sealed content is on disk, other blocks are untouched. */
	open_cache(0);
	for (uint64_t blk = 0; blk < 16; blk++) {
		uint64_t buf[BS / 8];
		bool written = false;

		for (size_t i = 0; i < 6; i++)
			written |= order[i] == blk;
		b = get(blk);
		fill_block(buf, blk, written ? 2 : 1);
		if (written)
			buf[0] = blk * BS ^ 0xabcdefull;
		ck_assert_msg(!memcmp(b->data, buf, BS), "block %lu", (unsigned long)blk);
		bcache_put(cache, b);
	}
	close_cache();
}
END_TEST

START_TEST(test_writeback_error)
{
	struct bdev_stats bst;
	struct cblock *b;

	make_image(4, 1);
	open_cache(0);
	for (uint64_t i = 0; i < 3; i++) {
		b = get_new(i);
		fill_block(b->data, i, 2);
		bcache_set_flags(cache, b, CB_TEST_A);
		bcache_put(cache, b);
	}
	/* Sorted by address, so the second write is block 1. */
	bdev_fault_fail_write(bd, 2);
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, CB_TEST_A), -EIO);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), BS);
	b = get(1);
	ck_assert_uint_eq(b->flags, CB_DIRTY | CB_TEST_A);
	bcache_put(cache, b);
	b = get(2);
	ck_assert_uint_eq(b->flags, 0);
	bcache_put(cache, b);
	ck_assert(disk_block_is(0, 2));
	ck_assert(disk_block_is(1, 1));
	ck_assert(disk_block_is(2, 2));
	/* The retry writes only what failed. */
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, CB_TEST_A), 0);
	bdev_get_stats(bd, &bst);
	ck_assert_uint_eq(bst.writes, 4);
	ck_assert(disk_block_is(1, 2));
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 0);
	close_cache();
}
END_TEST

/* 10 MiB of clean blocks through a 1 MiB cache. */
START_TEST(test_eviction_bound)
{
	const size_t bound = 1u << 20;
	const uint64_t n = (10u << 20) / BS;
	struct bcache_stats st;
	struct cblock *b;

	make_image(n, 1);
	open_cache(bound);
	for (uint64_t i = 0; i < n; i++) {
		b = get(i);
		ck_assert(block_is(b->data, i, 1));
		bcache_put(cache, b);
		ck_assert_uint_le(stats().bytes, bound);
	}
	st = stats();
	ck_assert_uint_eq(st.misses, n);
	ck_assert_uint_ge(st.evictions, n - bound / BS);
	ck_assert_uint_eq(st.blocks * BS, st.bytes);
	ck_assert_uint_ge(st.bytes, bound - BS);
	/* LRU: the most recent block is cached, the first one was evicted. */
	bcache_put(cache, get(n - 1));
	ck_assert_uint_eq(stats().hits, 1);
	bcache_put(cache, get(0));
	ck_assert_uint_eq(stats().misses, n + 1);
	close_cache();
}
END_TEST

/* A hit moves a block to the LRU head, so it outlives blocks touched after it but not since. */
START_TEST(test_lru_order)
{
	make_image(8, 1);
	open_cache(4 * BS);
	for (uint64_t i = 0; i < 4; i++)
		bcache_put(cache, get(i));
	bcache_put(cache, get(0));
	bcache_put(cache, get(4));      /* evicts 1, the least recently used */
	ck_assert_uint_eq(stats().evictions, 1);
	bcache_put(cache, get(0));
	ck_assert_uint_eq(stats().misses, 5);
	bcache_put(cache, get(1));
	ck_assert_uint_eq(stats().misses, 6);
	close_cache();
}
END_TEST

START_TEST(test_dirty_not_evicted)
{
	const size_t bound = 16 * BS;
	struct cblock *b;
	struct bcache_stats st;

	make_image(0, 0);
	open_cache(bound);
	put_new_blocks(64, 3);
	st = stats();
	ck_assert_uint_eq(st.bytes, 64 * BS);
	ck_assert_uint_eq(st.dirty_bytes, 64 * BS);
	ck_assert_uint_eq(st.evictions, 0);
	for (uint64_t i = 0; i < 64; i++) {
		b = get(i);
		ck_assert(block_is(b->data, i, 3));
		bcache_put(cache, b);
	}
	ck_assert_uint_eq(stats().misses, 0);
	/* Once written back they are clean, and the cache shrinks to its bound. */
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, 0), 0);
	st = stats();
	ck_assert_uint_le(st.bytes, bound);
	ck_assert_uint_eq(st.dirty_bytes, 0);
	for (uint64_t i = 0; i < 64; i++)
		ck_assert(disk_block_is(i, 3));
	close_cache();
}
END_TEST

START_TEST(test_forget_dirty)
{
	struct bdev_stats bst;
	struct cblock *b;

	make_image(4, 1);
	open_cache(0);
	b = get_new(1);
	fill_block(b->data, 1, 2);
	bcache_put(cache, b);
	b = get(2);
	fill_block(b->data, 2, 2);
	bcache_mark_dirty(cache, b);
	bcache_put(cache, b);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 2 * BS);
	bcache_forget(cache, 1 * BS);
	bcache_forget(cache, 2 * BS);
	bcache_forget(cache, 3 * BS);          /* not cached: no-op */
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 0);
	ck_assert_uint_eq(stats().blocks, 0);
	ck_assert_uint_eq(stats().bytes, 0);
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, 0), 0);
	bdev_get_stats(bd, &bst);
	ck_assert_uint_eq(bst.writes, 0);
	close_cache();
	ck_assert(disk_block_is(1, 1));
	ck_assert(disk_block_is(2, 1));
}
END_TEST

START_TEST(test_forget_referenced)
{
	struct cblock *old, *fresh;
	struct bdev_stats bst;

	make_image(4, 1);
	open_cache(0);
	old = get(3);
	fill_block(old->data, 3, 9);
	bcache_mark_dirty(cache, old);
	bcache_forget(cache, 3 * BS);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 0);
	/* The holder keeps a usable block; the cache has moved on. */
	ck_assert(block_is(old->data, 3, 9));
	fresh = get(3);
	ck_assert_ptr_ne(fresh, old);
	ck_assert(block_is(fresh->data, 3, 1));
	ck_assert_uint_eq(stats().misses, 2);
	ck_assert_uint_eq(stats().blocks, 2);
	bcache_put(cache, old);
	ck_assert_uint_eq(stats().blocks, 1);
	ck_assert_uint_eq(stats().bytes, BS);
	bcache_put(cache, fresh);
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, 0), 0);
	bdev_get_stats(bd, &bst);
	ck_assert_uint_eq(bst.writes, 0);
	close_cache();
	ck_assert(disk_block_is(3, 1));
}
END_TEST

START_TEST(test_read_error)
{
	struct cblock *b = NULL;
	struct bcache_stats st;

	make_image(4, 1);
	open_cache(0);
	ck_assert_int_eq(bcache_get(cache, 4 * BS, BS, &b), -EIO);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(bcache_get(cache, 100 * BS, BS, &b), -EIO);
	ck_assert_int_eq(bcache_get(cache, 4 * BS, BS, &b), -EIO);
	st = stats();
	ck_assert_uint_eq(st.misses, 3);
	ck_assert_uint_eq(st.hits, 0);
	ck_assert_uint_eq(st.blocks, 0);
	ck_assert_uint_eq(st.bytes, 0);
	/* Once the device has the block, the same address reads fine. */
	b = get_new(4);
	fill_block(b->data, 4, 1);
	bcache_put(cache, b);
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, 0), 0);
	bcache_drop_clean(cache);
	b = get(4);
	ck_assert(block_is(b->data, 4, 1));
	bcache_put(cache, b);
	close_cache();
}
END_TEST

START_TEST(test_drop_clean)
{
	struct cblock *held, *dirty;
	struct bcache_stats st;

	make_image(8, 1);
	open_cache(0);
	for (uint64_t i = 0; i < 4; i++)
		bcache_put(cache, get(i));
	held = get(4);
	dirty = get_new(5);
	bcache_put(cache, dirty);
	bcache_drop_clean(cache);
	st = stats();
	ck_assert_uint_eq(st.blocks, 2);
	ck_assert_uint_eq(st.bytes, 2 * BS);
	bcache_put(cache, get(0));
	ck_assert_uint_eq(stats().misses, 6);
	ck_assert_ptr_eq(get(5), dirty);
	bcache_put(cache, dirty);
	bcache_put(cache, held);
	close_cache();
}
END_TEST

START_TEST(test_clear_flags_dirty)
{
	struct cblock *clean, *dirty;

	make_image(4, 1);
	open_cache(0);
	clean = get(0);
	dirty = get(1);
	bcache_mark_dirty(cache, dirty);
	bcache_set_flags(cache, clean, CB_TEST_A | CB_TEST_B);
	bcache_set_flags(cache, dirty, CB_TEST_A | CB_TEST_B);
	bcache_clear_flags_dirty(cache, CB_TEST_A);
	ck_assert_uint_eq(clean->flags, CB_TEST_A | CB_TEST_B);
	ck_assert_uint_eq(dirty->flags, CB_DIRTY | CB_TEST_B);
	bcache_clear_flags(cache, clean, CB_TEST_B);
	ck_assert_uint_eq(clean->flags, CB_TEST_A);
	bcache_put(cache, clean);
	bcache_put(cache, dirty);
	close_cache();
}
END_TEST

/* Many blocks make the hash table grow several times; every one must stay findable. */
START_TEST(test_many_blocks)
{
	const uint64_t n = 5000;
	struct cblock *b;

	make_image(0, 0);
	open_cache(0);
	for (uint64_t i = 0; i < n; i++) {
		b = get_new(i * 7);
		((uint64_t *)b->data)[0] = i;
		bcache_put(cache, b);
	}
	for (uint64_t i = 0; i < n; i++) {
		b = get(i * 7);
		ck_assert_uint_eq(((uint64_t *)b->data)[0], i);
		bcache_put(cache, b);
	}
	ck_assert_uint_eq(stats().blocks, n);
	ck_assert_uint_eq(stats().misses, 0);
	close_cache();
}
END_TEST

enum { THREADS = 8, SHARED_BLOCKS = 256, ROUNDS = 3000 };

struct reader {
	uint64_t seed;
	uint64_t nblocks;
	int bad;
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Gets random blocks (holding a few at once), checks content, puts them. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct cblock *held[4] = { 0 };

	for (unsigned i = 0; i < ROUNDS; i++) {
		uint64_t blk = next_rand(&r->seed) % r->nblocks;
		unsigned slot = i % 4;

		if (held[slot])
			bcache_put(cache, held[slot]);
		held[slot] = NULL;
		if (bcache_get(cache, blk * BS, BS, &held[slot]) || held[slot]->addr != blk * BS ||
		    !block_is(held[slot]->data, blk, 1)) {
			r->bad++;
			held[slot] = NULL;
		}
	}
	for (unsigned slot = 0; slot < 4; slot++)
		if (held[slot])
			bcache_put(cache, held[slot]);
	return NULL;
}

static void run_readers(uint64_t nblocks)
{
	struct reader r[THREADS];
	pthread_t tid[THREADS];

	for (unsigned i = 0; i < THREADS; i++) {
		r[i] = (struct reader){ .seed = 0x1234567 + i * 7919, .nblocks = nblocks };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, reader_main, &r[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
		ck_assert_int_eq(r[i].bad, 0);
	}
}

/* Everything fits: each block is read from the device exactly once, however many getters. */
START_TEST(test_threads_read_once)
{
	struct bdev_stats bst;
	struct bcache_stats st;

	make_image(SHARED_BLOCKS, 1);
	open_cache(0);
	run_readers(SHARED_BLOCKS);
	bdev_get_stats(bd, &bst);
	st = stats();
	ck_assert_uint_eq(bst.reads, SHARED_BLOCKS);
	ck_assert_uint_eq(st.misses, SHARED_BLOCKS);
	ck_assert_uint_eq(st.hits + st.misses, THREADS * ROUNDS);
	ck_assert_uint_eq(st.blocks, SHARED_BLOCKS);
	close_cache();
}
END_TEST

/* A small cache under contention: constant eviction and re-reading. */
START_TEST(test_threads_evicting)
{
	struct bcache_stats st;

	make_image(SHARED_BLOCKS, 1);
	open_cache(48 * BS);
	run_readers(SHARED_BLOCKS);
	st = stats();
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_le(st.bytes, 48 * BS);
	close_cache();
}
END_TEST

struct failer {
	int wrong;
};

static void *failer_main(void *arg)
{
	struct failer *f = arg;

	for (unsigned i = 0; i < 500; i++) {
		struct cblock *b = NULL;

		if (bcache_get(cache, (64 + i % 4) * BS, BS, &b) != -EIO || b)
			f->wrong++;
	}
	return NULL;
}

/* Concurrent getters of a block that cannot be read all see the error; nothing leaks. */
START_TEST(test_threads_read_error)
{
	struct failer f[THREADS];
	pthread_t tid[THREADS];

	make_image(4, 1);
	open_cache(0);
	for (unsigned i = 0; i < THREADS; i++) {
		f[i] = (struct failer){ 0 };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, failer_main, &f[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
		ck_assert_int_eq(f[i].wrong, 0);
	}
	ck_assert_uint_eq(stats().blocks, 0);
	ck_assert_uint_eq(stats().bytes, 0);
	close_cache();
}
END_TEST

/*
 * Early write-out: past 3/4 of the bound in dirty blocks, the least recently used ones nobody
 * holds are written in one batch, sealed, down to half the bound; they are clean, lose the
 * flags asked, and are the first evicted. A block changed again is dirty again.
 */
START_TEST(test_write_cold)
{
	const size_t bound = 16 * BS;
	struct seal_log log = { .n = 0 };
	struct bdev_stats before, after;
	struct cblock *held, *b;

	make_image(32, 1);
	open_cache(bound);
	log.c = cache;
	for (uint64_t i = 0; i < 12; i++) {
		b = get_new(i);
		fill_block(b->data, i, 2);
		bcache_set_flags(cache, b, CB_TEST_A);
		bcache_put(cache, b);
	}
	/* 0..3 used again (most recent now), 4 held: the coldest unheld are 5, 6, 7, ... */
	for (uint64_t i = 0; i < 4; i++)
		bcache_put(cache, get(i));
	held = get(4);
	ck_assert_uint_eq(bcache_dirty_excess(cache), 0);   /* 12 blocks: exactly 3/4 */
	b = get_new(12);
	fill_block(b->data, 12, 2);
	bcache_set_flags(cache, b, CB_TEST_A);
	bcache_put(cache, b);
	ck_assert_uint_eq(bcache_dirty_excess(cache), 5 * BS);   /* 13 down to 8 */

	bdev_get_stats(bd, &before);
	ck_assert_int_eq(bcache_write_cold(cache, 5 * BS, seal_cb, &log, CB_TEST_A), 0);
	bdev_get_stats(bd, &after);
	ck_assert_uint_eq(after.writes - before.writes, 5);
	ck_assert_uint_eq(after.submits - before.submits, 1);
	ck_assert_uint_eq(log.n, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_uint_eq(log.addrs[i], (5 + i) * BS);   /* sealed in address order */
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 8 * BS);
	ck_assert_uint_eq(stats().early_writes, 5);
	for (uint64_t i = 0; i < 13; i++) {
		bool written = i >= 5 && i < 10;
		b = get(i);
		ck_assert_uint_eq(!!(b->flags & CB_DIRTY), !written);
		ck_assert_uint_eq(!!(b->flags & CB_TEST_A), !written);
		bcache_put(cache, b);
		if (written) {
			uint64_t buf[BS / 8];
			ck_assert(!disk_block_is(i, 1));
			fill_block(buf, i, 2);
			buf[0] = i * BS ^ 0xabcdefull;
			b = get(i);
			ck_assert_mem_eq(b->data, buf, BS);
			bcache_put(cache, b);
		}
	}
	bcache_put(cache, held);
	ck_assert_uint_eq(bcache_dirty_excess(cache), 0);

	/* Changed again: dirty again, written again by the next writeback. */
	b = get(6);
	fill_block(b->data, 6, 3);
	bcache_mark_dirty(cache, b);
	bcache_put(cache, b);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), 9 * BS);
	ck_assert_int_eq(bcache_writeback(cache, NULL, NULL, 0), 0);
	ck_assert(disk_block_is(6, 3));
	close_cache();
}
END_TEST

/* Blocks written early are the first evicted, and nothing held is ever written early. */
START_TEST(test_write_cold_evicts_first)
{
	const size_t bound = 8 * BS;
	struct cblock *b, *held;

	make_image(32, 1);
	open_cache(bound);
	for (uint64_t i = 16; i < 20; i++)
		bcache_put(cache, get(i));          /* clean, older than the dirty ones */
	put_new_blocks(4, 2);
	held = get(0);
	ck_assert_int_eq(bcache_write_cold(cache, SIZE_MAX, NULL, NULL, 0), 0);
	ck_assert_uint_eq(stats().early_writes, 3);
	ck_assert_uint_eq(bcache_dirty_bytes(cache), BS);   /* the held one */
	/* The cache is full: the next miss evicts a block written early, not 16..19. */
	bcache_put(cache, get(20));
	ck_assert_uint_eq(stats().evictions, 1);
	uint64_t misses = stats().misses;
	for (uint64_t i = 16; i < 20; i++)
		bcache_put(cache, get(i));
	ck_assert_uint_eq(stats().misses, misses);
	bcache_put(cache, held);
	for (uint64_t i = 0; i < 4; i++) {
		ck_assert(disk_block_is(i, 2) == (i != 0));
		b = get(i);
		ck_assert(block_is(b->data, i, 2));
		bcache_put(cache, b);
	}
	close_cache();
}
END_TEST

/*
 * Copy-on-write churn (a block forgotten for every one allocated) recycles pooled memory: the
 * pool grows with the most blocks held at once, not with how many were ever allocated. A
 * block of another length is not pooled, and works the same.
 */
START_TEST(test_pool_recycles)
{
	static const uint8_t zero[6000];
	struct bcache_stats st;
	struct cblock *b;

	make_image(0, 0);
	open_cache(64 * BS);
	for (uint64_t i = 0; i < 20000; i++) {
		b = get_new(i);
		ck_assert_mem_eq(b->data, zero, BS);
		fill_block(b->data, i, 1);
		bcache_put(cache, b);
		if (i >= 32)
			bcache_forget(cache, (i - 32) * BS);
	}
	st = stats();
	ck_assert_uint_eq(st.blocks, 32);
	ck_assert_uint_gt(st.pool_bytes, 0);
	ck_assert_uint_le(st.pool_bytes, 2u << 20);
	ck_assert_int_eq(bcache_get_new(cache, 1ull << 30, sizeof(zero), &b), 0);
	ck_assert_uint_eq((uintptr_t)b->data % BDEV_ALIGN, 0);
	ck_assert_mem_eq(b->data, zero, sizeof(zero));
	bcache_put(cache, b);
	bcache_forget(cache, 1ull << 30);
	ck_assert_uint_eq(stats().pool_bytes, st.pool_bytes);
	close_cache();
}
END_TEST

/* ---- prefetch ---------------------------------------------------------------------------- */

static void prefetch_range(uint64_t first, uint64_t n, int want)
{
	uint64_t addrs[256];

	ck_assert_uint_le(n, 256);
	for (uint64_t i = 0; i < n; i++)
		addrs[i] = (first + i) * BS;
	ck_assert_int_eq(bcache_prefetch(cache, addrs, n, BS), want);
}

static uint64_t device_reads(void)
{
	struct bdev_stats bst;

	bdev_get_stats(bd, &bst);
	return bst.reads;
}

/*
 * Blocks read ahead, in one batch, are then served without another read: as hits, with their
 * content, and with no owner flag (the owner verifies them at first use, as after a miss).
 * What is cached already or asked twice is read once.
 */
START_TEST(test_prefetch_then_hit)
{
	uint64_t addrs[40];
	struct bdev_stats before, after;
	struct bcache_stats st;

	make_image(64, 1);
	open_cache(0);
	bcache_put(cache, get(3));
	for (uint64_t i = 0; i < 32; i++)
		addrs[i] = i * BS;
	for (uint64_t i = 32; i < 40; i++)
		addrs[i] = (i - 32) * 2 * BS;    /* asked again */
	bdev_get_stats(bd, &before);
	ck_assert_int_eq(bcache_prefetch(cache, addrs, 40, BS), 31);
	bdev_get_stats(bd, &after);
	ck_assert_uint_eq(after.reads - before.reads, 31);
	ck_assert_uint_le(after.submits - before.submits, 2);
	st = stats();
	ck_assert_uint_eq(st.prefetched, 31);
	ck_assert_uint_eq(st.misses, 1);
	ck_assert_uint_eq(st.blocks, 32);
	for (uint64_t i = 0; i < 32; i++) {
		struct cblock *b = get(i);
		ck_assert(block_is(b->data, i, 1));
		ck_assert_uint_eq(b->flags, 0);
		bcache_put(cache, b);
	}
	ck_assert_uint_eq(device_reads(), after.reads);
	ck_assert_uint_eq(stats().misses, 1);
	ck_assert_uint_eq(stats().hits, 32);
	/* Everything asked is cached: nothing to read. */
	prefetch_range(0, 32, 0);
	ck_assert_uint_eq(device_reads(), after.reads);
	close_cache();
}
END_TEST

/* A block whose read fails is not cached: its first get reads it again and sees the error. */
START_TEST(test_prefetch_read_error)
{
	struct cblock *b = NULL;

	make_image(4, 1);
	open_cache(0);
	prefetch_range(2, 4, 2);            /* blocks 4 and 5 are past the end of the image */
	ck_assert_uint_eq(stats().blocks, 2);
	ck_assert_int_eq(bcache_get(cache, 4 * BS, BS, &b), -EIO);
	ck_assert_ptr_null(b);
	ck_assert_uint_eq(stats().misses, 1);
	b = get(3);
	ck_assert(block_is(b->data, 3, 1));
	bcache_put(cache, b);
	ck_assert_uint_eq(stats().hits, 1);
	close_cache();
}
END_TEST

/*
 * One call reads at most an eighth of the bound; calls after it fill the cache up to its bound
 * and never past it, evicting what they read earlier like any clean block; a block read ahead
 * and never used goes like any clean block too.
 */
START_TEST(test_prefetch_bounded)
{
	const size_t bound = 64 * BS;
	struct bcache_stats st;

	make_image(256, 1);
	open_cache(bound);
	prefetch_range(0, 256, 8);
	ck_assert_uint_eq(stats().bytes, 8 * BS);
	prefetch_range(0, 8, 0);             /* cached already */
	for (uint64_t i = 1; i < 32; i++) {
		prefetch_range(i * 8, 8, 8);
		ck_assert_uint_le(stats().bytes, bound);
	}
	st = stats();
	ck_assert_uint_eq(st.bytes, bound);
	ck_assert_uint_eq(st.prefetched, 256);
	ck_assert_uint_eq(st.evictions, 256 - 64);
	/* The most recent are cached, the oldest were evicted unused. */
	bcache_put(cache, get(255));
	ck_assert_uint_eq(stats().hits, 1);
	bcache_put(cache, get(0));
	ck_assert_uint_eq(stats().misses, 1);
	/* Ordinary gets evict blocks read ahead and never used. */
	for (uint64_t i = 100; i < 164; i++)
		bcache_put(cache, get(i));
	ck_assert_uint_le(stats().bytes, bound);
	bcache_put(cache, get(250));
	ck_assert_uint_eq(stats().misses, 2 + 64);
	close_cache();
}
END_TEST

/* Whether block `blk` of the image is in the kernel's page cache (mincore of a mapping). */
static bool page_cached(uint64_t blk, uint64_t nblocks)
{
	int fd = open(img, O_RDONLY);
	unsigned char vec[256];
	void *m;

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_le(nblocks * BS / (uint64_t)sysconf(_SC_PAGESIZE), sizeof(vec));
	m = mmap(NULL, nblocks * BS, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	ck_assert_int_eq(mincore(m, nblocks * BS, vec), 0);
	munmap(m, nblocks * BS);
	close(fd);
	return vec[blk * BS / (uint64_t)sysconf(_SC_PAGESIZE)] & 1;
}

/* Whether the block gets into the page cache: the kernel reads ahead asynchronously. */
static bool page_cached_soon(uint64_t blk, uint64_t nblocks)
{
	for (int i = 0; i < 10000; i++) {
		if (page_cached(blk, nblocks))
			return true;
		usleep(1000);
	}
	return false;
}

/* The image out of the kernel's page cache, as after a reboot. */
static void drop_page_cache(void)
{
	int fd = open(img, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
}

/*
 * A read-ahead hint starts the device reading what is not cached, into the kernel's page
 * cache only: the block cache, its counters and the device's read count are unchanged, past
 * the end of the image is ignored, and what a get returns afterwards is the same.
 */
START_TEST(test_readahead_hint)
{
	const uint64_t nblocks = 128;
	uint64_t addrs[] = { 10 * BS, 11 * BS, 12 * BS, 3 * BS, 40 * BS, 90 * BS, 500 * BS };
	struct bcache_stats before, after;
	uint64_t reads;

	make_image(nblocks, 1);
	drop_page_cache();
	open_cache(0);
	bcache_put(cache, get(3));
	for (size_t i = 0; i < 6; i++)
		if (addrs[i] != 3 * BS)
			ck_assert_msg(!page_cached(addrs[i] / BS, nblocks),
				      "block %llu cached before the hint", (unsigned long long)addrs[i] / BS);
	before = stats();
	reads = device_reads();
	bcache_readahead(cache, addrs, sizeof(addrs) / sizeof(addrs[0]), BS);
	after = stats();
	ck_assert_uint_eq(device_reads(), reads);
	ck_assert_uint_eq(after.blocks, before.blocks);
	ck_assert_uint_eq(after.bytes, before.bytes);
	ck_assert_uint_eq(after.misses, before.misses);
	ck_assert_uint_eq(after.prefetched, before.prefetched);
	for (size_t i = 0; i < 6; i++)
		ck_assert_msg(page_cached_soon(addrs[i] / BS, nblocks), "block %llu not read ahead",
			      (unsigned long long)addrs[i] / BS);
	for (size_t i = 0; i < 6; i++) {
		struct cblock *b = get(addrs[i] / BS);
		ck_assert(block_is(b->data, addrs[i] / BS, 1));
		bcache_put(cache, b);
	}
	ck_assert_uint_eq(stats().misses, before.misses + 5);
	close_cache();
}
END_TEST

/* Dirty and held blocks are never evicted for a prefetch: it reads only into what is left. */
START_TEST(test_prefetch_keeps_dirty)
{
	const size_t bound = 16 * BS;
	struct cblock *held[6], *b;
	struct bcache_stats st;

	make_image(64, 1);
	open_cache(bound);
	put_new_blocks(10, 3);
	for (uint64_t i = 0; i < 4; i++)
		held[i] = get(10 + i);
	prefetch_range(20, 2, 2);          /* room for exactly these two */
	st = stats();
	ck_assert_uint_eq(st.bytes, bound);
	prefetch_range(30, 2, 2);          /* they take the place of the two clean ones */
	st = stats();
	ck_assert_uint_eq(st.bytes, bound);
	ck_assert_uint_eq(st.evictions, 2);
	for (uint64_t i = 0; i < 4; i++)
		bcache_put(cache, held[i]);
	for (uint64_t i = 0; i < 4; i++)
		held[i] = get(10 + i);       /* only hits: nothing held was evicted */
	held[4] = get(30);
	held[5] = get(31);
	ck_assert_uint_eq(stats().misses, 4);
	/* The cache is all dirty or held: nothing is read, nothing evicted. */
	prefetch_range(40, 2, 0);
	st = stats();
	ck_assert_uint_eq(st.evictions, 2);
	ck_assert_uint_eq(st.dirty_bytes, 10 * BS);
	ck_assert_uint_eq(st.bytes, bound);
	for (uint64_t i = 0; i < 10; i++) {
		b = get(i);
		ck_assert(block_is(b->data, i, 3));
		bcache_put(cache, b);
	}
	for (uint64_t i = 0; i < 6; i++)
		bcache_put(cache, held[i]);
	close_cache();
}
END_TEST

struct prefetcher {
	unsigned id;
	int bad;
};

static void *prefetcher_main(void *arg)
{
	struct prefetcher *p = arg;
	uint64_t addrs[SHARED_BLOCKS];

	for (uint64_t i = 0; i < SHARED_BLOCKS; i++)
		addrs[i] = ((i + p->id * 17) % SHARED_BLOCKS) * BS;
	if (bcache_prefetch(cache, addrs, SHARED_BLOCKS, BS) < 0)
		p->bad++;
	for (uint64_t i = 0; i < SHARED_BLOCKS; i++) {
		struct cblock *b = NULL;
		uint64_t blk = addrs[i] / BS;
		if (bcache_get(cache, addrs[i], BS, &b) != 0 || !block_is(b->data, blk, 1))
			p->bad++;
		if (b)
			bcache_put(cache, b);
	}
	return NULL;
}

/* Threads reading ahead and getting the same blocks: each block is read from the device once. */
START_TEST(test_threads_prefetch)
{
	struct prefetcher p[THREADS];
	pthread_t tid[THREADS];

	make_image(SHARED_BLOCKS, 1);
	open_cache(0);
	for (unsigned i = 0; i < THREADS; i++) {
		p[i] = (struct prefetcher){ .id = i };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, prefetcher_main, &p[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
		ck_assert_int_eq(p[i].bad, 0);
	}
	ck_assert_uint_eq(device_reads(), SHARED_BLOCKS);
	ck_assert_uint_eq(stats().prefetched + stats().misses, SHARED_BLOCKS);
	close_cache();
}
END_TEST

static Suite *bcache_suite(void)
{
	Suite *s = suite_create("bcache");
	TCase *tc = tcase_create("core");
	TCase *mt = tcase_create("threads");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_miss_then_hit);
	tcase_add_test(tc, test_ref_put);
	tcase_add_test(tc, test_get_new);
	tcase_add_test(tc, test_writeback);
	tcase_add_test(tc, test_writeback_error);
	tcase_add_test(tc, test_eviction_bound);
	tcase_add_test(tc, test_lru_order);
	tcase_add_test(tc, test_dirty_not_evicted);
	tcase_add_test(tc, test_write_cold);
	tcase_add_test(tc, test_write_cold_evicts_first);
	tcase_add_test(tc, test_pool_recycles);
	tcase_add_test(tc, test_forget_dirty);
	tcase_add_test(tc, test_forget_referenced);
	tcase_add_test(tc, test_read_error);
	tcase_add_test(tc, test_drop_clean);
	tcase_add_test(tc, test_clear_flags_dirty);
	tcase_add_test(tc, test_many_blocks);
	tcase_add_test(tc, test_prefetch_then_hit);
	tcase_add_test(tc, test_prefetch_read_error);
	tcase_add_test(tc, test_prefetch_bounded);
	tcase_add_test(tc, test_prefetch_keeps_dirty);
	tcase_add_test(tc, test_readahead_hint);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(mt, setup, teardown);
	tcase_add_test(mt, test_threads_read_once);
	tcase_add_test(mt, test_threads_evicting);
	tcase_add_test(mt, test_threads_read_error);
	tcase_add_test(mt, test_threads_prefetch);
	suite_add_tcase(s, mt);
	return s;
}

int main(void)
{
	return run_suite(bcache_suite());
}
