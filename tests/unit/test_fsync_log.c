/*
 * The fsync log (fs/super/log.c, fs/inode/fsync_log.c): fsync without a commit when the log
 * can say what changed, replay after a crash, and what makes fsync commit instead.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
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

static uint64_t mkfile(struct ifix *f, const char *name)
{
	struct cowfs_attr a;

	ck_assert_int_eq(inode_create(&f->it, ROOT, name, strlen(name), S_IFREG | 0644, 0, 0, 0,
				      &a), 0);
	return a.ino;
}

/* Page `n` of a file written by these tests: its number in every 8 bytes. */
static void page_fill(uint8_t *p, uint64_t n, uint64_t salt)
{
	for (uint32_t i = 0; i < PAGE; i += 8)
		put_le64(p + i, n * 1000003 + salt);
}

static void append_page(struct ifix *f, uint64_t ino, uint64_t n, uint64_t salt)
{
	uint8_t p[PAGE];

	page_fill(p, n, salt);
	ck_assert_int_eq(file_write(&f->it, ino, p, PAGE, n * PAGE, 0), PAGE);
}

/* The first `pages` pages of the file hold what append_page wrote. */
static void expect_pages(struct ifix *f, uint64_t ino, uint64_t pages, uint64_t salt)
{
	uint8_t want[PAGE], got[PAGE];

	for (uint64_t n = 0; n < pages; n++) {
		page_fill(want, n, salt);
		ck_assert_int_eq(file_read(&f->it, ino, got, PAGE, n * PAGE), PAGE);
		REQUIRE(memcmp(want, got, PAGE) == 0, "page %" PRIu64 " differs", n);
	}
}

static uint64_t replay(struct ifix *f)
{
	uint64_t records;

	ck_assert_int_eq(fsync_log_replay(&f->it, &records), 0);
	return records;
}

/* A committed file to log against: its creation bars the log, so this fsync commits. */
static uint64_t committed_file(struct ifix *f, const char *name)
{
	uint64_t ino = mkfile(f, name);

	ck_assert_int_eq(file_fsync(&f->it, ino), 0);
	return ino;
}

START_TEST(appends_survive_a_crash)
{
	struct ifix f;

	ifix_setup(&f, "log-append", 128 * MiB, 16384);
	uint64_t ino = committed_file(&f, "a");
	uint64_t commits = f.x.fs->commits;
	for (uint64_t n = 0; n < 200; n++) {
		append_page(&f, ino, n, 7);
		ck_assert_int_eq(file_fsync(&f.it, ino), 0);
	}
	ck_assert_uint_eq(f.x.fs->commits, commits);   /* no fsync committed */
	ck_assert_uint_gt(f.x.fs->log.seq, 199);
	struct cowfs_attr before = ifix_attr(&f, ino);
	/* Written after the last fsync: may be lost. */
	append_page(&f, ino, 200, 7);

	ifix_crash_reopen(&f);
	ck_assert(f.x.fs->log.replay_pending);
	ifix_check(&f);   /* a pending log is a clean image */
	ck_assert_uint_eq(replay(&f), 400);   /* an inode and a write record per fsync */
	struct cowfs_attr after = ifix_attr(&f, ino);
	ck_assert_uint_eq(after.size, 200 * PAGE);
	ck_assert_int_eq(after.mtime.tv_sec, before.mtime.tv_sec);
	ck_assert_int_eq(after.mtime.tv_nsec, before.mtime.tv_nsec);
	ck_assert_int_eq(after.ctime.tv_nsec, before.ctime.tv_nsec);
	ck_assert_uint_eq(after.mode, before.mode);
	expect_pages(&f, ino, 200, 7);
	ck_assert(!f.x.fs->log.replay_pending);
	ifix_check(&f);
	/* Replayed and committed: a second crash finds nothing more to do. */
	ifix_crash_reopen(&f);
	ck_assert(!f.x.fs->log.replay_pending);
	expect_pages(&f, ino, 200, 7);
	ifix_teardown(&f);
}
END_TEST

/* Rewrites of logged pages are logged again; the last version wins. */
START_TEST(overwrites_and_growing_size)
{
	struct ifix f;
	uint8_t p[PAGE];

	ifix_setup(&f, "log-overwrite", 128 * MiB, 16384);
	uint64_t ino = committed_file(&f, "o");
	for (uint64_t n = 0; n < 8; n++)
		append_page(&f, ino, n, 1);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	uint64_t commits = f.x.fs->commits;
	/* Overwrite pages 2..5 twice with an fsync in between, and a partial page at 3. */
	for (uint64_t n = 2; n < 6; n++)
		append_page(&f, ino, n, 2);
	ck_assert_int_eq(file_fsync(&f.it, ino), 0);
	for (uint64_t n = 2; n < 6; n++)
		append_page(&f, ino, n, 3);
	memset(p, 0xab, 100);
	ck_assert_int_eq(file_write(&f.it, ino, p, 100, 3 * PAGE + 50, 0), 100);
	/* Grow it: truncate up and a write past the end, leaving a hole. */
	struct cowfs_attr a = { .size = 20 * PAGE + 123 };
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0);
	append_page(&f, ino, 30, 3);
	a.size = 40 * PAGE + 5;
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0);
	a.atime = (struct timespec){ 1000, 1 };
	a.mtime = (struct timespec){ 2000, 2 };
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_ATIME | INODE_SET_MTIME, &a), 0);
	ck_assert_int_eq(file_fsync(&f.it, ino), 0);
	ck_assert_uint_eq(f.x.fs->commits, commits);

	ifix_crash_reopen(&f);
	replay(&f);
	struct cowfs_attr got = ifix_attr(&f, ino);
	ck_assert_uint_eq(got.size, 40 * PAGE + 5);
	ck_assert_int_eq(got.atime.tv_sec, 1000);
	ck_assert_int_eq(got.atime.tv_nsec, 1);
	ck_assert_int_eq(got.mtime.tv_sec, 2000);
	ck_assert_int_eq(got.mtime.tv_nsec, 2);
	uint8_t want[PAGE], buf[PAGE];
	for (uint64_t n = 0; n < 41; n++) {
		uint64_t salt = n >= 2 && n < 6 ? 3 : 1;
		if (n < 8 || n == 30)
			page_fill(want, n, n == 30 ? 3 : salt);
		else
			memset(want, 0, PAGE);
		if (n == 3)
			memset(want + 50, 0xab, 100);
		size_t len = n == 40 ? 5 : PAGE;
		ck_assert_int_eq(file_read(&f.it, ino, buf, PAGE, n * PAGE), (ssize_t)len);
		REQUIRE(memcmp(want, buf, len) == 0, "page %" PRIu64 " differs", n);
	}
	ifix_teardown(&f);
}
END_TEST

/* What the log cannot say makes fsync commit, until the commit. */
START_TEST(barred_updates_commit)
{
	struct ifix f;
	struct cowfs_attr a = { .mode = 0600, .size = PAGE };

	ifix_setup(&f, "log-barred", 128 * MiB, 16384);
	uint64_t ino = committed_file(&f, "b");
	for (uint64_t n = 0; n < 4; n++)
		append_page(&f, ino, n, 4);
	ck_assert_int_eq(file_fsync(&f.it, ino), 0);
	uint64_t commits = f.x.fs->commits;

	/* Each of these bars the log: the next fsync commits. */
	for (int step = 0; step < 5; step++) {
		append_page(&f, ino, 4, 5);
		switch (step) {
		case 0: ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_MODE, &a), 0); break;
		case 1: ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0); break;
		case 2: mkfile(&f, "other"); break;
		case 3: ck_assert_int_eq(inode_unlink(&f.it, ROOT, "other", 5), 0); break;
		case 4: ck_assert_int_eq(file_fallocate(&f.it, ino, 0, 0, 8 * PAGE), 0); break;
		}
		ck_assert_int_eq(file_fsync(&f.it, ino), 0);
		ck_assert_uint_eq(f.x.fs->commits, ++commits);
		/* After the commit the log is open again. */
		append_page(&f, ino, 0, 4);
		ck_assert_int_eq(file_fsync(&f.it, ino), 0);
		ck_assert_uint_eq(f.x.fs->commits, commits);
	}
	/* fsync of a file nothing changed: neither a commit nor an entry. */
	uint64_t other = committed_file(&f, "quiet");
	commits = f.x.fs->commits;
	uint64_t seq = f.x.fs->log.seq;
	append_page(&f, ino, 1, 4);
	ck_assert_int_eq(file_fsync(&f.it, other), 0);
	ck_assert_uint_eq(f.x.fs->commits, commits);
	ck_assert_uint_eq(f.x.fs->log.seq, seq);
	ifix_teardown(&f);
}
END_TEST

/* Big entries: chunks run out, jumps chain them; all of it replays. */
START_TEST(chain_across_chunks)
{
	struct ifix f;

	ifix_setup(&f, "log-chunks", 256 * MiB, 16384);
	uint64_t ino = committed_file(&f, "c");
	uint64_t commits = f.x.fs->commits, n = 0;
	/* 300 KiB per fsync: three entries to a 1 MiB chunk, then a jump. */
	for (int i = 0; i < 20; i++) {
		for (int j = 0; j < 75; j++, n++)
			append_page(&f, ino, n, 9);
		ck_assert_int_eq(file_fsync(&f.it, ino), 0);
	}
	ck_assert_uint_eq(f.x.fs->commits, commits);
	ck_assert_uint_gt(f.x.fs->log.nranges, 1);
	ifix_crash_reopen(&f);
	ifix_check(&f);
	replay(&f);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, n * PAGE);
	expect_pages(&f, ino, n, 9);
	ifix_teardown(&f);
}
END_TEST

/* A writer that does not replay may not open an image with a pending log. */
START_TEST(pending_log_needs_a_replaying_writer)
{
	struct ifix f;

	ifix_setup(&f, "log-pending", 64 * MiB, 16384);
	uint64_t ino = committed_file(&f, "p");
	append_page(&f, ino, 0, 3);
	ck_assert_int_eq(file_fsync(&f.it, ino), 0);
	ifix_crash_reopen(&f);
	ck_assert_int_eq(inode_tree_destroy(&f.it), 0);
	cowfs_close(f.x.fs);
	f.x.fs = NULL;
	struct cowfs_opts o = fsfix_opts(&f.x);
	struct cowfs *fs;
	o.replays_log = false;
	ck_assert_int_eq(cowfs_open(f.x.path, &o, &fs), -EAGAIN);
	ck_assert_msg(strstr(f.x.last_report, "fsync log"), "report: %s", f.x.last_report);
	/* Read-only is fine: it shows the last commit. */
	o.read_only = true;
	ck_assert_int_eq(cowfs_open(f.x.path, &o, &fs), 0);
	ck_assert(fs->log.replay_pending);
	cowfs_close(fs);
	o.read_only = false;
	o.replays_log = true;
	ck_assert_int_eq(cowfs_open(f.x.path, &o, &f.x.fs), 0);
	inode_tree_init(&f.it, f.x.fs, &f.x.fs->fs_root);
	replay(&f);
	expect_pages(&f, ino, 1, 3);
	ifix_teardown(&f);
}
END_TEST

/*
 * Power cuts at every write of an append+fsync sequence, half of them with a volatile write
 * cache that loses a random part of what was not flushed: every fsync that returned before
 * the cut is there after replay, and the file is always a prefix of what was written.
 */
START_TEST(power_cut_at_every_write)
{
	const int fsyncs = 24;

	for (int cut = 1; cut <= fsyncs + 4; cut++) {
		struct ifix f;
		int durable = 0;

		ifix_setup(&f, "log-cut", 64 * MiB, 16384);
		uint64_t ino = committed_file(&f, "x");
		if (cut & 1)
			bdev_fault_volatile_cache(f.x.fs->bd, (uint64_t)cut * 77);
		bdev_fault_cut_power(f.x.fs->bd, (uint64_t)cut);
		for (int n = 0; n < fsyncs; n++) {
			/* Every fifth fsync is of a bigger entry (two sectors of pages). */
			append_page(&f, ino, 2 * (uint64_t)n, 11);
			append_page(&f, ino, 2 * (uint64_t)n + 1, 11);
			ck_assert_int_eq(file_fsync(&f.it, ino), 0);
			if (!bdev_power_is_cut(f.x.fs->bd))
				durable = n + 1;
		}
		bdev_fault_clear(f.x.fs->bd);
		ifix_crash_reopen(&f);
		replay(&f);
		uint64_t size = ifix_attr(&f, ino).size;
		REQUIRE(size % (2 * PAGE) == 0 && size >= (uint64_t)durable * 2 * PAGE,
			"cut %d: size %" PRIu64 ", %d fsyncs were durable", cut, size, durable);
		expect_pages(&f, ino, size / PAGE, 11);
		ifix_teardown(&f);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fsync_log");
	TCase *tc = tcase_create("fsync_log");

	tcase_add_test(tc, appends_survive_a_crash);
	tcase_add_test(tc, overwrites_and_growing_size);
	tcase_add_test(tc, barred_updates_commit);
	tcase_add_test(tc, chain_across_chunks);
	tcase_add_test(tc, pending_log_needs_a_replaying_writer);
	tcase_add_test(tc, power_cut_at_every_write);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
