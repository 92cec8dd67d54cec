/*
 * Updates from several threads while commits run beside them (a 2 ms commit timer, fsyncs
 * through the log and through commits, truncates that bar the log): every thread checks its
 * own file against a model after every operation, and at the end the image is consistent,
 * survives a reopen, and a crash after the last fsyncs replays to exactly the models.
 *
 * The second case gives buffered data a small bound, so that background flushes (write-back
 * with the lock let go for the data I/O) run all the time beside writes, reads, truncates,
 * punches and clones.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/lib/compiler.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define MiB (1ull << 20)
#define THREADS 4
#define OPS 1500
#define FILE_MAX (2 * MiB)

struct worker {
	struct ifix *f;
	uint64_t ino, seed;
	uint8_t *model;
	uint64_t size;
	bool punches_and_clones;
	char failure[256];
};

static uint64_t next_rand(uint64_t *s)
{
	return rng_next(s) >> 11;
}

/* The file must read as the model. */
static int verify(struct worker *w)
{
	uint8_t *got = malloc(FILE_MAX + 1);
	ssize_t n = file_read(&w->f->it, w->ino, got, FILE_MAX + 1, 0);
	int bad = n != (ssize_t)w->size || memcmp(got, w->model, w->size) != 0;

	if (bad)
		snprintf(w->failure, sizeof(w->failure), "ino %" PRIu64 ": read %zd bytes, size %"
			 PRIu64 "%s", w->ino, n, w->size, n == (ssize_t)w->size ? ", data differs" : "");
	free(got);
	return bad;
}

static int one_op(struct worker *w)
{
	uint64_t r = next_rand(&w->seed) % 100;
	uint64_t off = next_rand(&w->seed) % FILE_MAX, len = 1 + next_rand(&w->seed) % 65536;
	struct cowfs_attr a = { 0 };

	if (off + len > FILE_MAX)
		len = FILE_MAX - off;
	/* With punches and clones, fewer truncates and fsyncs (each commits or logs), so that
	 * buffered data builds up to flushes: 82-84 truncate, 85-98 write, 99 fsync. */
	bool write = r < 70 || (w->punches_and_clones && r >= 85 && r < 99);
	if (w->punches_and_clones && r >= 99)
		return file_fsync(&w->f->it, w->ino);
	if (write) {
		uint8_t *buf = malloc(len);
		for (uint64_t i = 0; i < len; i++)
			buf[i] = (uint8_t)next_rand(&w->seed);
		ssize_t n = file_write(&w->f->it, w->ino, buf, len, off, 0);
		if (n == (ssize_t)len) {
			if (off > w->size)
				memset(w->model + w->size, 0, off - w->size);
			memcpy(w->model + off, buf, len);
			if (off + len > w->size)
				w->size = off + len;
		}
		free(buf);
		return n == (ssize_t)len ? 0 : (int)n;
	}
	if (w->punches_and_clones && r < 76) {
		int ret = file_fallocate(&w->f->it, w->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 off, len);
		if (ret == 0 && off < w->size)
			memset(w->model + off, 0, MIN(len, w->size - off));
		return ret;
	}
	if (w->punches_and_clones && r < 82) {
		/* Within the file, to a range that does not overlap: sector-aligned ones share
		 * extents (and need the source's pages flushed first), others copy. */
		uint64_t src = next_rand(&w->seed) % (w->size + 1);
		uint64_t n = MIN(len, w->size - src);
		if ((src < off + n && off < src + n) || off + n > FILE_MAX)
			return 0;
		if (next_rand(&w->seed) & 1) {
			src &= ~4095ull;
			off &= ~4095ull;
			n = MIN(n, w->size - src);
			if (src < off + n && off < src + n)
				return 0;
		}
		ssize_t got = file_copy_range(&w->f->it, w->ino, src, w->ino, off, n);
		if (got <= 0)
			return (int)got;   /* nothing copied: nothing grows either */
		if (off > w->size)
			memset(w->model + w->size, 0, off - w->size);
		memmove(w->model + off, w->model + src, (size_t)got);
		if (off + (uint64_t)got > w->size)
			w->size = off + (uint64_t)got;
		return 0;
	}
	if (r < (w->punches_and_clones ? 85u : 80u)) {
		a.size = off;
		int ret = inode_setattr(&w->f->it, w->ino, INODE_SET_SIZE, &a);
		if (ret == 0) {
			if (off > w->size)
				memset(w->model + w->size, 0, off - w->size);
			w->size = off;
		}
		return ret;
	}
	return file_fsync(&w->f->it, w->ino);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < OPS && !w->failure[0]; i++) {
		uint64_t seed = w->seed;
		int ret = one_op(w);
		if (ret < 0)
			snprintf(w->failure, sizeof(w->failure), "op %d: %d", i, ret);
		else if (verify(w))
			snprintf(w->failure + strlen(w->failure),
				 sizeof(w->failure) - strlen(w->failure), " (after op %d, kind %" PRIu64
				 ")", i, (seed = rng_next(&seed) >> 11, seed % 100));
	}
	if (!w->failure[0] && file_fsync(&w->f->it, w->ino) < 0)
		snprintf(w->failure, sizeof(w->failure), "final fsync failed");
	return NULL;
}

/* Four threads on four files, with a commit every interval_ms; cache_bytes 0: the default. */
static void run_threads(size_t cache_bytes, int interval_ms, bool punches_and_clones,
			uint64_t *flushes)
{
	struct ifix f;
	struct worker w[THREADS];
	pthread_t t[THREADS];

	ifix_setup(&f, "concurrency", 256 * MiB, 16384);
	ck_assert_int_eq(inode_tree_destroy(&f.it), 0);
	f.x.commit_interval_ms = interval_ms;
	if (cache_bytes)
		fsfix_set_memory(&f.x, cache_bytes, 0);
	else
		fsfix_reopen(&f.x);
	inode_tree_init(&f.it, f.x.fs, &f.x.fs->fs_root);
	for (int i = 0; i < THREADS; i++) {
		char name[16];
		struct cowfs_attr a;
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(inode_create(&f.it, ROOT, name, strlen(name), S_IFREG | 0644, 0, 0,
					      0, &a), 0);
		w[i] = (struct worker){ .f = &f, .ino = a.ino, .seed = 1000 + (uint64_t)i,
					.model = calloc(1, FILE_MAX),
					.punches_and_clones = punches_and_clones };
	}
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++)
		ck_assert_msg(!w[i].failure[0], "worker %d: %s", i, w[i].failure);
	ck_assert_uint_gt(f.x.fs->commits, 2);
	*flushes = f.x.fs->flushes;
	/* Everything was fsync'd last: a crash now must come back as the models say. */
	ifix_crash_reopen(&f);
	uint64_t records;
	ck_assert_int_eq(fsync_log_replay(&f.it, &records), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_msg(verify(&w[i]) == 0, "after crash: %s", w[i].failure);
	ifix_check(&f);
	ifix_reopen(&f);
	for (int i = 0; i < THREADS; i++) {
		ck_assert_msg(verify(&w[i]) == 0, "after reopen: %s", w[i].failure);
		free(w[i].model);
	}
	ifix_teardown(&f);
}

START_TEST(threads_update_while_commits_run)
{
	uint64_t flushes;

	run_threads(0, 2, false, &flushes);
}
END_TEST

START_TEST(threads_update_while_flushes_run)
{
	uint64_t flushes;

	/* 16 MiB: 4 MiB of buffered data, flushed from 2 MiB on; four 2 MiB files pass it.
	 * No timed commits: how often the data is flushed depends on how much is written
	 * between fsyncs, not on how fast (40-53 flushes, with and without sanitizers). */
	run_threads(16 * MiB, 60000, true, &flushes);
	ck_assert_uint_gt(flushes, 10);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("concurrency");
	TCase *tc = tcase_create("concurrency");

	tcase_add_test(tc, threads_update_while_commits_run);
	tcase_add_test(tc, threads_update_while_flushes_run);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
