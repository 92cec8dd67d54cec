/*
 * Power cuts while a 100,000-file snapshot is dropped. A subvolume of 100,000 files (every
 * tenth with a page of data) is snapshotted read-only, the source deleted and dropped, so the
 * snapshot holds everything alone; then it is deleted. That image is kept; for each of several
 * write numbers spread over the whole drop, the drop runs on a copy of it (bounded steps with a
 * commit after each, as the cleaner commits) until the fault-injecting device cuts the power
 * there (every other time with a volatile write cache, so unflushed writes are lost in part).
 * Reopened, the image must be clean (both checkers), still deleting or done, and finishing the
 * drop must leave no data extent and no tree of the snapshot behind. COWFS_POWER_FILES and
 * COWFS_POWER_POINTS change the size and the number of cut points.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/inode/namespace_check.h"
#include "fs/inode/subvol.h"
#include "fs/super/subvol.h"
#include "tests/support/fixture.h"
#include "tests/support/ifix.h"

#define IMG (512ull << 20)
#define ROOT INODE_ROOT_INO
#define PER_DIR 1000u
#define BUDGET 128u

static unsigned env_unsigned(const char *name, unsigned def)
{
	const char *v = getenv(name);

	return v && atoi(v) > 0 ? (unsigned)atoi(v) : def;
}

static struct inode_tree *open_tree(struct ifix *f, uint64_t id, struct inode_tree *it)
{
	struct cowfs_root *r;

	cowfs_lock(f->x.fs);
	ck_assert_int_eq(cowfs_tree_open(f->x.fs, id, &r), 0);
	cowfs_unlock(f->x.fs);
	inode_tree_init(it, f->x.fs, r);
	return it;
}

static void fill(struct inode_tree *it, unsigned files)
{
	char page[4096], name[32];
	struct cowfs_attr a;
	uint64_t dir = ROOT;

	memset(page, 'p', sizeof(page));
	for (unsigned i = 0; i < files; i++) {
		if (i % PER_DIR == 0) {
			snprintf(name, sizeof(name), "d%04u", i / PER_DIR);
			ck_assert_int_eq(inode_mkdir(it, ROOT, name, strlen(name), 0755, 0, 0, &a), 0);
			dir = a.ino;
		}
		snprintf(name, sizeof(name), "f%06u", i);
		ck_assert_int_eq(inode_create(it, dir, name, strlen(name), S_IFREG | 0644, 0, 0, 0,
					      &a), 0);
		if (i % 10 == 0)
			ck_assert_int_eq(file_write(it, a.ino, page, sizeof(page), 0, 0),
					 (ssize_t)sizeof(page));
	}
}

/* Drop every deleting subvolume, a commit after each step, until done or the power is cut. */
static int drop_all(struct ifix *f)
{
	uint64_t id;

	while (cowfs_subvol_next_deleting(f->x.fs, 0, &id) == 0) {
		bool done = false;
		while (!done) {
			struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_PRIVILEGED);
			int ret = cowfs_trans_end(tx, cowfs_subvol_drop_step(tx, id, BUDGET, &done));
			if (ret == 0)
				ret = cowfs_commit(f->x.fs);
			if (bdev_power_is_cut(f->x.fs->bd))
				return -EIO;
			ck_assert_int_eq(ret, 0);
		}
	}
	return 0;
}

/* Copy the image, skipping its holes (it is sparse: most of it was never written). */
static void copy_file(const char *from, const char *to)
{
	static char buf[1 << 20];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	off_t size, data, hole;

	ck_assert(in >= 0 && out >= 0);
	size = lseek(in, 0, SEEK_END);
	ck_assert_int_eq(ftruncate(out, size), 0);
	for (data = lseek(in, 0, SEEK_DATA); data >= 0 && data < size;
	     data = lseek(in, hole, SEEK_DATA)) {
		hole = lseek(in, data, SEEK_HOLE);
		for (off_t at = data; at < hole;) {
			size_t want = (size_t)(hole - at < (off_t)sizeof(buf) ? hole - at : (off_t)sizeof(buf));
			ssize_t n = pread(in, buf, want, at);
			ck_assert(n > 0);
			ck_assert_int_eq(pwrite(out, buf, (size_t)n, at), n);
			at += n;
		}
	}
	close(in);
	close(out);
}

static void check_both(struct ifix *f, struct cowfs_check_stats *st)
{
	struct inode_check_stats ns;

	fsfix_assert_clean(&f->x, st);
	ck_assert_msg(inode_check_all(f->x.fs, &ns) == 0, "namespace: %s", f->x.last_report);
}

/* Close the image as it is (committed), put `from` in its place, open that. */
static void reopen_from(struct ifix *f, const char *from)
{
	ck_assert_int_eq(inode_tree_destroy(&f->it), 0);
	cowfs_close(f->x.fs);
	f->x.fs = NULL;
	copy_file(from, f->x.path);
	fsfix_reopen(&f->x);
	inode_tree_init(&f->it, f->x.fs, &f->x.fs->fs_root);
}

START_TEST(power_cuts_dropping_a_big_snapshot)
{
	unsigned files = env_unsigned("COWFS_POWER_FILES", 100000);
	unsigned points = env_unsigned("COWFS_POWER_POINTS", 6);
	struct cowfs_check_stats st;
	struct bdev_stats before, after;
	struct inode_tree src;
	struct ifix f;
	uint64_t sid, snap, got;
	char tmpl[600];

	ifix_setup(&f, "subvol_power", IMG, 0);
	snprintf(tmpl, sizeof(tmpl), "%s.tmpl", f.x.path);
	ck_assert_int_eq(subvol_make(&f.it, ROOT, "src", 3, 0755, 0, 0, &sid), 0);
	fill(open_tree(&f, sid, &src), files);
	ck_assert_int_eq(subvol_snapshot(&src, &f.it, ROOT, "snap", 4, true, &snap), 0);
	ck_assert_int_eq(inode_tree_destroy(&src), 0);
	ck_assert_int_eq(subvol_unlink(&f.it, ROOT, "src", 3, 0, &got), 0);
	ck_assert_int_eq(drop_all(&f), 0);     /* the source shared everything: the snapshot
						* holds it alone now */
	ck_assert_int_eq(subvol_unlink(&f.it, ROOT, "snap", 4, 0, &got), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	check_both(&f, &st);
	fprintf(stderr, "power: %u files, %" PRIu64 " data extents, %" PRIu64 " tree blocks "
		"before the drop\n", files, st.data_extents, st.tree_blocks);
	ck_assert_uint_eq(st.data_extents, (files + 9) / 10);
	ck_assert_int_eq(inode_tree_destroy(&f.it), 0);
	cowfs_close(f.x.fs);
	f.x.fs = NULL;
	copy_file(f.x.path, tmpl);
	fsfix_reopen(&f.x);
	inode_tree_init(&f.it, f.x.fs, &f.x.fs->fs_root);

	/* The whole drop once, to know how many writes it makes. */
	bdev_get_stats(f.x.fs->bd, &before);
	ck_assert_int_eq(drop_all(&f), 0);
	bdev_get_stats(f.x.fs->bd, &after);
	uint64_t writes = after.writes - before.writes;
	fprintf(stderr, "power: the drop makes %" PRIu64 " writes; %u cut points\n", writes, points);
	ck_assert_uint_gt(writes, points);

	for (unsigned p = 0; p < points; p++) {
		uint64_t cut = 1 + (p + 1) * (writes - 1) / (points + 1);
		struct subvol_info si;
		reopen_from(&f, tmpl);
		bdev_fault_cut_power(f.x.fs->bd, cut);
		if (p & 1)
			bdev_fault_volatile_cache(f.x.fs->bd, 77 + p);
		ck_assert_int_eq(drop_all(&f), -EIO);
		fsfix_crash_reopen(&f.x);
		inode_tree_init(&f.it, f.x.fs, &f.x.fs->fs_root);
		check_both(&f, &st);
		int left = cowfs_subvol_get(f.x.fs, snap, &si);
		ck_assert(left == 0 || left == -ENOENT);
		fprintf(stderr, "power: cut at write %" PRIu64 ": %s, %" PRIu64 " data extents "
			"left\n", cut, left ? "dropped and committed" : "still deleting",
			st.data_extents);
		ck_assert_int_eq(drop_all(&f), 0);
		check_both(&f, &st);
		ck_assert_uint_eq(st.data_extents, 0);
		ck_assert_int_eq(cowfs_subvol_get(f.x.fs, snap, &si), -ENOENT);
	}
	unlink(tmpl);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("subvol_power");
	TCase *tc = tcase_create("subvol_power");

	tcase_add_test(tc, power_cuts_dropping_a_big_snapshot);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
