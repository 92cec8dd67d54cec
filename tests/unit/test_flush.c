/*
 * Background flush (fs/inode/writeback.c): write-back between commits that lets the lock go
 * while the data is written. The tests act at that moment (bdev_fault_before_write runs a
 * callback when the flush's first data write starts, with the filesystem lock let go):
 * writes and reads go on beside it and see their own data; other updates wait for it; what
 * it wrote is in no commit until the next one; and a file it wrote unlogged pages of is
 * fsync'd by a commit, not the log.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/inode.h"
#include "fs/io/blockdev.h"
#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define MiB (1ull << 20)
#define PAGE 4096u
#define PAGES 64u
#define MODEL_BYTES ((PAGES + 8) * PAGE)

static uint64_t mkfile(struct ifix *f, const char *name)
{
	struct cowfs_attr a;

	ck_assert_int_eq(inode_create(&f->it, ROOT, name, strlen(name), S_IFREG | 0644, 0, 0, 0,
				      &a), 0);
	return a.ino;
}

/* A file and what it must read as. */
struct model {
	struct ifix *f;
	uint64_t ino, size;
	uint8_t bytes[MODEL_BYTES];
};

static void page_fill(uint8_t *p, uint64_t n, uint64_t salt)
{
	for (uint32_t i = 0; i < PAGE; i += 8)
		put_le64(p + i, n * 1000003 + salt);
}

static int model_write(struct model *m, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = file_write(&m->f->it, m->ino, buf, len, off, 0);

	if (n != (ssize_t)len)
		return n < 0 ? (int)n : -EIO;
	memcpy(m->bytes + off, buf, len);
	if (off + len > m->size)
		m->size = off + len;
	return 0;
}

static int model_write_pages(struct model *m, uint64_t first, uint64_t n, uint64_t salt)
{
	uint8_t p[PAGE];
	int ret = 0;

	for (uint64_t i = first; i < first + n && ret == 0; i++) {
		page_fill(p, i, salt);
		ret = model_write(m, p, PAGE, i * PAGE);
	}
	return ret;
}

/* 0 if the file reads exactly as the model. */
static int model_differs(struct model *m)
{
	static uint8_t got[MODEL_BYTES + 1];
	ssize_t n = file_read(&m->f->it, m->ino, got, sizeof(got), 0);

	return n != (ssize_t)m->size || memcmp(got, m->bytes, m->size) != 0;
}

/* Run a flush as the timer thread would: with the lock held, let go for the data I/O. */
static int flush_now(struct ifix *f)
{
	int ret;

	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);
	ret = inode_flush(&f->it, tx);
	cowfs_trans_end(tx, 0);
	return ret;
}

/* ---- writes and reads beside a flush ------------------------------------------------------ */

struct beside {
	struct model *m;
	bool flushing;      /* the flush had let the lock go */
	int write_ret;
	bool read_ok;
};

/* During the flush's data I/O: rewrite pages it is writing, whole and in part, append past
 * the end, and read everything back. */
static void write_beside_flush(void *arg)
{
	struct beside *b = arg;
	uint8_t bytes[100];

	b->flushing = b->m->f->x.fs->flushing;
	memset(bytes, 0xA5, sizeof(bytes));
	b->write_ret = model_write_pages(b->m, 1, 2, 7);
	if (b->write_ret == 0)
		b->write_ret = model_write(b->m, bytes, sizeof(bytes), 5 * PAGE + 10);
	if (b->write_ret == 0)
		b->write_ret = model_write_pages(b->m, PAGES, 2, 8);
	b->read_ok = model_differs(b->m) == 0;
}

START_TEST(writes_and_reads_go_on_beside_a_flush)
{
	static struct model m;
	struct ifix f;
	struct beside b = { .m = &m };

	ifix_setup(&f, "flush", 64 * MiB, 16384);
	m = (struct model){ .f = &f, .ino = mkfile(&f, "a") };
	ck_assert_int_eq(model_write_pages(&m, 0, PAGES, 1), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	static struct model committed;
	committed = m;

	ck_assert_int_eq(model_write_pages(&m, 0, PAGES, 2), 0);
	bdev_fault_before_write(f.x.fs->bd, write_beside_flush, &b);
	ck_assert_int_eq(flush_now(&f), 0);
	ck_assert(b.flushing);
	ck_assert_int_eq(b.write_ret, 0);
	ck_assert_msg(b.read_ok, "a read beside the flush saw other data");
	/* What was written beside it is dirty again (pages 1, 2, 5 and two new ones); the rest
	 * is mapped to the flush's extents. */
	ck_assert_uint_eq(inode_dirty_bytes(&f.it, m.ino), 5 * PAGE);
	ck_assert_int_eq(model_differs(&m), 0);

	/* The flush committed nothing: a crash now shows the last commit, and loses no space. */
	ifix_crash_reopen(&f);
	committed.f = &f;
	ck_assert_int_eq(model_differs(&committed), 0);
	ifix_check(&f);

	/* Again, this time with a commit after the flush: everything is there. */
	ck_assert_int_eq(model_write_pages(&m, 0, PAGES, 2), 0);
	b = (struct beside){ .m = &m };
	bdev_fault_before_write(f.x.fs->bd, write_beside_flush, &b);
	ck_assert_int_eq(flush_now(&f), 0);
	ck_assert(b.flushing && b.read_ok && b.write_ret == 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_crash_reopen(&f);
	ck_assert_int_eq(model_differs(&m), 0);
	ifix_teardown(&f);
}
END_TEST

/* ---- other updates wait ------------------------------------------------------------------- */

struct truncater {
	struct ifix *f;
	uint64_t ino;
	volatile bool done;
	int ret;
};

static void *truncate_main(void *arg)
{
	struct truncater *t = arg;
	struct cowfs_attr a = { .size = PAGE / 2 };

	t->ret = inode_setattr(&t->f->it, t->ino, INODE_SET_SIZE, &a);
	t->done = true;
	return NULL;
}

struct waiting {
	struct truncater t;
	pthread_t thread;
	bool done_during_flush;
};

/* During the flush's data I/O: start a truncate of the file being written and give it time
 * to run: it must not, until the flush has finished. */
static void truncate_beside_flush(void *arg)
{
	struct waiting *w = arg;

	ck_assert_int_eq(pthread_create(&w->thread, NULL, truncate_main, &w->t), 0);
	usleep(100 * 1000);
	w->done_during_flush = w->t.done;
}

START_TEST(truncate_waits_for_a_flush)
{
	static struct model m;
	struct ifix f;
	struct waiting w = { 0 };

	ifix_setup(&f, "flush-wait", 64 * MiB, 16384);
	m = (struct model){ .f = &f, .ino = mkfile(&f, "a") };
	ck_assert_int_eq(model_write_pages(&m, 0, PAGES, 3), 0);
	w.t = (struct truncater){ .f = &f, .ino = m.ino };
	bdev_fault_before_write(f.x.fs->bd, truncate_beside_flush, &w);
	ck_assert_int_eq(flush_now(&f), 0);
	pthread_join(w.thread, NULL);
	ck_assert_msg(!w.done_during_flush, "a truncate ran while a flush wrote the file's pages");
	ck_assert_int_eq(w.t.ret, 0);
	m.size = PAGE / 2;
	ck_assert_int_eq(model_differs(&m), 0);
	ck_assert_uint_eq(inode_dirty_bytes(&f.it, m.ino), PAGE);   /* the zeroed tail's page */
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_check(&f);
	ifix_reopen(&f);
	ck_assert_int_eq(model_differs(&m), 0);
	ifix_teardown(&f);
}
END_TEST

/* ---- fsync after a flush ------------------------------------------------------------------ */

START_TEST(fsync_commits_after_a_flush_wrote_unlogged_pages)
{
	static struct model a, b;
	struct ifix f;
	uint64_t commits, records;

	ifix_setup(&f, "flush-fsync", 64 * MiB, 16384);
	a = (struct model){ .f = &f, .ino = mkfile(&f, "a") };
	b = (struct model){ .f = &f, .ino = mkfile(&f, "b") };
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);

	/* b: written and fsync'd, no flush: the log does it. */
	ck_assert_int_eq(model_write_pages(&b, 0, 8, 4), 0);
	commits = f.x.fs->commits;
	ck_assert_int_eq(file_fsync(&f.it, b.ino), 0);
	ck_assert_uint_eq(f.x.fs->commits, commits);

	/* a: its pages go to disk in a flush before the fsync: the log no longer holds what
	 * the file is, so the fsync commits. */
	ck_assert_int_eq(model_write_pages(&a, 0, 16, 5), 0);
	ck_assert_int_eq(flush_now(&f), 0);
	ck_assert_uint_eq(inode_dirty_bytes(&f.it, a.ino), 0);
	ck_assert_int_eq(file_fsync(&f.it, a.ino), 0);
	ck_assert_uint_eq(f.x.fs->commits, commits + 1);

	/* After that commit the log serves a again. */
	ck_assert_int_eq(model_write_pages(&a, 16, 4, 6), 0);
	ck_assert_int_eq(file_fsync(&f.it, a.ino), 0);
	ck_assert_uint_eq(f.x.fs->commits, commits + 1);

	ifix_crash_reopen(&f);
	ck_assert_int_eq(fsync_log_replay(&f.it, &records), 0);
	ck_assert_uint_gt(records, 0);
	a.f = b.f = &f;
	ck_assert_int_eq(model_differs(&a), 0);
	ck_assert_int_eq(model_differs(&b), 0);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("flush");
	TCase *tc = tcase_create("flush");

	tcase_add_test(tc, writes_and_reads_go_on_beside_a_flush);
	tcase_add_test(tc, truncate_waits_for_a_flush);
	tcase_add_test(tc, fsync_commits_after_a_flush_wrote_unlogged_pages);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
