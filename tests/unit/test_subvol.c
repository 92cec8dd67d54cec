/*
 * Subvolumes and snapshots at the inode layer (fs/inode/subvol_entry.c over fs/super/subvol.c):
 * entries in directories, lookups into them, snapshots that hold buffered data, divergence,
 * renames, unlinking for deletion, the root tree's items across a reopen; every step followed
 * by both checkers.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/inode/namespace_check.h"
#include "fs/inode/subvol.h"
#include "fs/inode/xattr.h"
#include "tests/support/fixture.h"
#include "tests/support/ifix.h"

#define IMG (128ull << 20)
#define ROOT INODE_ROOT_INO

/* An inode_tree over subvolume `id` (the test destroys it). */
static void open_sub(struct ifix *f, uint64_t id, struct inode_tree *it)
{
	struct cowfs_root *r;

	cowfs_lock(f->x.fs);
	ck_assert_int_eq(cowfs_tree_open(f->x.fs, id, &r), 0);
	cowfs_unlock(f->x.fs);
	inode_tree_init(it, f->x.fs, r);
}

/* Commit, then both checkers (they compare what is committed). */
static void check(struct ifix *f)
{
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	ifix_check(f);
}

static uint64_t mkfile(struct inode_tree *it, uint64_t dir, const char *name)
{
	struct cowfs_attr a;

	ck_assert_int_eq(inode_create(it, dir, name, strlen(name), S_IFREG | 0644, 0, 1000, 100,
				      &a), 0);
	return a.ino;
}

static void put(struct inode_tree *it, uint64_t ino, char fill, size_t len, uint64_t off)
{
	char *buf = malloc(len);

	memset(buf, fill, len);
	ck_assert_int_eq(file_write(it, ino, buf, len, off, 0), (ssize_t)len);
	free(buf);
}

/* Every byte of [off, off + len) of `ino` is `fill`. */
static void expect(struct inode_tree *it, uint64_t ino, char fill, size_t len, uint64_t off)
{
	char *buf = malloc(len);

	ck_assert_int_eq(file_read(it, ino, buf, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(buf[i] == fill, "byte %zu is %d, expected %d", i, buf[i], fill);
	free(buf);
}

static int64_t lk(struct inode_tree *it, uint64_t dir, const char *name, uint64_t *subvol)
{
	struct cowfs_attr a;
	int ret = inode_lookup(it, dir, name, strlen(name), &a);

	if (ret < 0)
		return ret;
	if (subvol)
		*subvol = a.subvol;
	return (int64_t)a.ino;
}

struct listing {
	uint64_t ino;
	uint8_t type;
	const char *want;
	bool found;
};

static int find_entry(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type,
		      uint64_t next)
{
	struct listing *l = arg;

	(void)next;
	if (len == strlen(l->want) && memcmp(name, l->want, len) == 0) {
		l->found = true;
		l->ino = ino;
		l->type = type;
	}
	return 0;
}

START_TEST(make_snapshot_diverge)
{
	struct ifix f;
	struct inode_tree sv, snap, ro;
	uint64_t id, sid, rid, subvol = 0, file;
	struct subvol_info si;

	ifix_setup(&f, "subvol_make", IMG, 0);
	ck_assert_int_eq(subvol_make(&f.it, ROOT, "sv", 2, 0750, 1000, 100, &id), 0);
	ck_assert_uint_eq(id, SUBVOL_FIRST_ID);
	ck_assert_int_eq(subvol_make(&f.it, ROOT, "sv", 2, 0750, 1000, 100, &id), -EEXIST);
	ck_assert_int_eq(lk(&f.it, ROOT, "sv", &subvol), (int64_t)ROOT);
	ck_assert_uint_eq(subvol, SUBVOL_FIRST_ID);
	ck_assert_uint_eq(ifix_attr(&f, ROOT).nlink, 3);   /* a subvolume is a subdirectory */

	struct listing l = { .want = "sv" };
	ck_assert_int_eq(dir_readdir(&f.it, ROOT, 0, find_entry, &l), 0);
	ck_assert(l.found);
	ck_assert_uint_eq(l.ino, SUBVOL_FIRST_ID);
	ck_assert_uint_eq(l.type, DT_DIR | INODE_DT_SUBVOL);

	open_sub(&f, SUBVOL_FIRST_ID, &sv);
	struct cowfs_attr a;
	ck_assert_int_eq(inode_getattr(&sv, ROOT, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0750);
	ck_assert_uint_eq(a.uid, 1000);
	ck_assert_uint_eq(a.subvol, SUBVOL_FIRST_ID);
	file = mkfile(&sv, ROOT, "f");
	put(&sv, file, 'a', 100000, 0);
	check(&f);   /* commits first: the sv file's pages are written back */

	/* Buffered data is in the snapshot: written after the last commit, before the call. */
	put(&sv, file, 'b', 4096, 8192);
	ck_assert_int_eq(subvol_snapshot(&sv, &f.it, ROOT, "snap", 4, false, &sid), 0);
	ck_assert_uint_eq(sid, SUBVOL_FIRST_ID + 1);
	ck_assert_int_eq(subvol_snapshot(&sv, &f.it, ROOT, "ro", 2, true, &rid), 0);
	open_sub(&f, sid, &snap);
	open_sub(&f, rid, &ro);
	expect(&snap, file, 'b', 4096, 8192);
	expect(&snap, file, 'a', 8192, 0);

	/* Divergence both ways. */
	put(&sv, file, 'c', 4096, 0);
	put(&snap, file, 'd', 4096, 4096);
	expect(&sv, file, 'c', 4096, 0);
	expect(&sv, file, 'a', 4096, 4096);
	expect(&snap, file, 'a', 4096, 0);
	expect(&snap, file, 'd', 4096, 4096);
	expect(&ro, file, 'a', 4096, 0);
	expect(&ro, file, 'b', 4096, 8192);
	ck_assert_int_eq(cowfs_subvol_get(f.x.fs, rid, &si), 0);
	ck_assert_uint_eq(si.flags, SUBVOL_RDONLY);
	ck_assert_uint_eq(si.source, SUBVOL_FIRST_ID);
	ck_assert_uint_eq(si.parent, FS_TREE_ID);
	ck_assert_str_eq(si.name, "ro");
	ro.read_only = true;   /* what subvols.c sets from the flag */
	ck_assert_int_eq(file_write(&ro, file, "x", 1, 0, 0), -EROFS);
	ck_assert_int_eq(inode_create(&ro, ROOT, "n", 1, S_IFREG | 0644, 0, 0, 0, &a), -EROFS);
	ck_assert_int_eq(inode_setxattr(&ro, file, "user.a", "v", 1, 0), -EROFS);
	check(&f);

	ck_assert_int_eq(inode_tree_destroy(&sv), 0);
	ck_assert_int_eq(inode_tree_destroy(&snap), 0);
	ck_assert_int_eq(inode_tree_destroy(&ro), 0);
	ifix_reopen(&f);
	open_sub(&f, sid, &snap);
	expect(&snap, file, 'd', 4096, 4096);
	ck_assert_int_eq(inode_tree_destroy(&snap), 0);
	ifix_teardown(&f);
}
END_TEST

START_TEST(rename_and_unlink)
{
	struct ifix f;
	struct subvol_info si;
	uint64_t id, d, got = 0, subvol = 0;

	ifix_setup(&f, "subvol_rename", IMG, 0);
	d = ifix_mk(&f, ROOT, "d", S_IFDIR | 0755);
	ck_assert_int_eq(subvol_make(&f.it, ROOT, "sv", 2, 0755, 0, 0, &id), 0);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "sv", 2), -EISDIR);
	ck_assert_int_eq(inode_rmdir(&f.it, ROOT, "sv", 2), -EPERM);
	ck_assert_int_eq(subvol_unlink(&f.it, ROOT, "d", 1, 0, &got), -EINVAL);
	ck_assert_int_eq(subvol_unlink(&f.it, ROOT, "sv", 2, id, &got), -EBUSY);

	/* Within a directory, into another, over an empty directory. */
	ck_assert_int_eq(inode_rename(&f.it, ROOT, "sv", 2, ROOT, "sv2", 3, 0), 0);
	ck_assert_int_eq(lk(&f.it, ROOT, "sv", NULL), -ENOENT);
	ck_assert_int_eq(lk(&f.it, ROOT, "sv2", &subvol), (int64_t)ROOT);
	ck_assert_uint_eq(subvol, id);
	ck_assert_int_eq(inode_rename(&f.it, ROOT, "sv2", 3, d, "in", 2, 0), 0);
	ck_assert_int_eq(cowfs_subvol_get(f.x.fs, id, &si), 0);
	ck_assert_uint_eq(si.dir, d);
	ck_assert_str_eq(si.name, "in");
	ck_assert_uint_eq(ifix_attr(&f, d).nlink, 3);
	ck_assert_uint_eq(ifix_attr(&f, ROOT).nlink, 3);
	ifix_mk(&f, ROOT, "e", S_IFDIR | 0755);
	ck_assert_int_eq(inode_rename(&f.it, d, "in", 2, ROOT, "e", 1, 0), 0);
	ck_assert_int_eq(lk(&f.it, ROOT, "e", &subvol), (int64_t)ROOT);
	ck_assert_uint_eq(subvol, id);
	ck_assert_uint_eq(ifix_attr(&f, d).nlink, 2);
	/* Never over a subvolume, never in an exchange. */
	ck_assert_int_eq(inode_rename(&f.it, ROOT, "d", 1, ROOT, "e", 1, 0), -EBUSY);
	ck_assert_int_eq(inode_rename(&f.it, ROOT, "e", 1, ROOT, "d", 1, INODE_RENAME_EXCHANGE),
			 -EBUSY);
	char path[64];
	char cpath[64];
	uint64_t c = ifix_mk(&f, d, "c", S_IFDIR | 0755);
	ck_assert_int_eq(inode_dir_path(&f.it, c, path, sizeof(path)), 0);
	ck_assert_str_eq(path, "d/c");
	ck_assert_int_eq(inode_dir_path(&f.it, ROOT, cpath, sizeof(cpath)), 0);
	ck_assert_str_eq(cpath, "");
	ck_assert_int_eq(inode_dir_path(&f.it, c, path, 3), -ENAMETOOLONG);
	check(&f);

	ck_assert_int_eq(subvol_unlink(&f.it, ROOT, "e", 1, 0, &got), 0);
	ck_assert_uint_eq(got, id);
	ck_assert_int_eq(lk(&f.it, ROOT, "e", NULL), -ENOENT);
	ck_assert_uint_eq(ifix_attr(&f, ROOT).nlink, 3);   /* root: d and . and .. */
	ck_assert_int_eq(cowfs_subvol_next_deleting(f.x.fs, 0, &got), 0);
	ck_assert_uint_eq(got, id);
	ck_assert_int_eq(cowfs_subvol_get(f.x.fs, id, &si), 0);
	ck_assert(si.flags & SUBVOL_DELETING);
	ck_assert_uint_eq(si.parent, 0);
	check(&f);
	ifix_reopen(&f);
	ck_assert_int_eq(cowfs_subvol_next(f.x.fs, 0, &si), 0);
	ck_assert_uint_eq(si.id, FS_TREE_ID);
	ck_assert_int_eq(cowfs_subvol_next(f.x.fs, si.id + 1, &si), 0);
	ck_assert_uint_eq(si.id, id);
	ck_assert(si.flags & SUBVOL_DELETING);
	ck_assert_int_eq(cowfs_subvol_next(f.x.fs, si.id + 1, &si), -ENOENT);
	ifix_teardown(&f);
}
END_TEST

START_TEST(default_and_flags)
{
	struct ifix f;
	struct cowfs_trans *tx;
	struct subvol_info si;
	uint64_t id, def = 0, got;

	ifix_setup(&f, "subvol_default", IMG, 0);
	ck_assert_int_eq(cowfs_subvol_get_default(f.x.fs, &def), 0);
	ck_assert_uint_eq(def, FS_TREE_ID);
	ck_assert_int_eq(subvol_make(&f.it, ROOT, "sv", 2, 0755, 0, 0, &id), 0);
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_subvol_set_default(tx, id), 0);
	ck_assert_int_eq(cowfs_subvol_set_flags(tx, FS_TREE_ID, SUBVOL_RDONLY), 0);
	ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
	ck_assert_int_eq(subvol_unlink(&f.it, ROOT, "sv", 2, 0, &got), -EBUSY);
	check(&f);
	ifix_reopen(&f);
	ck_assert_int_eq(cowfs_subvol_get_default(f.x.fs, &def), 0);
	ck_assert_uint_eq(def, id);
	ck_assert_int_eq(cowfs_subvol_get(f.x.fs, FS_TREE_ID, &si), 0);
	ck_assert_uint_eq(si.flags, SUBVOL_RDONLY);
	ck_assert(cowfs_incompat_features(f.x.fs) & COWFS_INCOMPAT_SUBVOLS);
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_subvol_set_flags(tx, FS_TREE_ID, 0), 0);
	ck_assert_int_eq(cowfs_subvol_set_flags(tx, FS_TREE_ID, SUBVOL_DELETING), -EINVAL);
	ck_assert_int_eq(cowfs_subvol_set_default(tx, FS_TREE_ID), 0);
	ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
	ck_assert_int_eq(subvol_unlink(&f.it, ROOT, "sv", 2, 0, &got), 0);
	check(&f);
	ifix_teardown(&f);
}
END_TEST

/*
 * Writes into preallocated space go back in place when nothing else reaches it: after a
 * snapshot the snapshot's leaves reach it with a count of 1 still, and the write must not show
 * there (nor later, after the memo of exclusive extents from before the snapshot).
 */
START_TEST(prealloc_written_after_snapshot)
{
	struct ifix f;
	struct inode_tree snap;
	uint64_t file, sid;

	ifix_setup(&f, "subvol_prealloc", IMG, 0);
	file = mkfile(&f.it, ROOT, "p");
	ck_assert_int_eq(file_fallocate(&f.it, file, 0, 0, 256 << 10), 0);
	put(&f.it, file, 'a', 4096, 0);       /* in place: the file's alone so far */
	check(&f);
	put(&f.it, file, 'b', 4096, 8192);    /* remembered as exclusive, then the snapshot */
	ck_assert_int_eq(subvol_snapshot(&f.it, &f.it, ROOT, "snap", 4, false, &sid), 0);
	put(&f.it, file, 'c', 4096, 16384);
	put(&f.it, file, 'd', 4096, 4096);
	check(&f);
	put(&f.it, file, 'e', 4096, 32768);
	check(&f);
	open_sub(&f, sid, &snap);
	expect(&snap, file, 'a', 4096, 0);
	expect(&snap, file, 0, 4096, 4096);
	expect(&snap, file, 'b', 4096, 8192);
	expect(&snap, file, 0, 4096, 16384);
	expect(&snap, file, 0, 4096, 32768);
	expect(&f.it, file, 'e', 4096, 32768);
	expect(&f.it, file, 'd', 4096, 4096);
	ck_assert_int_eq(inode_tree_destroy(&snap), 0);
	ifix_teardown(&f);
}
END_TEST

/* FIEMAP's SHARED as btrfs means it: a snapshot shares every extent until a side rewrites it. */
START_TEST(fiemap_shared_with_snapshot)
{
	struct ifix f;
	struct file_map_extent m[8];
	uint64_t file, sid;
	size_t n = 0;

	ifix_setup(&f, "subvol_fiemap", IMG, 0);
	file = mkfile(&f.it, ROOT, "x");
	put(&f.it, file, 'a', 64 << 10, 0);
	check(&f);
	ck_assert_int_eq(file_map_extents(&f.it, file, 0, UINT64_MAX, true, m, 8, &n), 0);
	ck_assert_uint_ge(n, 1);
	ck_assert(!(m[0].flags & FILE_MAP_SHARED));
	ck_assert_int_eq(subvol_snapshot(&f.it, &f.it, ROOT, "snap", 4, true, &sid), 0);
	ck_assert_int_eq(file_map_extents(&f.it, file, 0, UINT64_MAX, true, m, 8, &n), 0);
	ck_assert(m[0].flags & FILE_MAP_SHARED);
	check(&f);
	ifix_teardown(&f);
}
END_TEST

/*
 * A snapshot taken while a writer streams into the source holds a prefix of the writes: every
 * write that had returned before the call, perhaps some that were running, none torn, nothing
 * after. Each write is one 12 KiB record (three pages, not aligned) of its own pattern.
 */
#define STREAM_RECORD 12300u
#define STREAM_RECORDS 600u
#define STREAM_SNAPS 12

struct streamer {
	struct inode_tree *it;
	uint64_t ino;
	_Atomic unsigned done;   /* records whose write returned */
	_Atomic unsigned started;
};

static void record_fill(uint8_t *buf, unsigned r)
{
	rng_fill(buf, STREAM_RECORD, 1000 + r);
}

static void *stream_writes(void *arg)
{
	struct streamer *st = arg;
	uint8_t *buf = malloc(STREAM_RECORD);

	for (unsigned r = 0; r < STREAM_RECORDS; r++) {
		record_fill(buf, r);
		st->started = r + 1;
		ck_assert_int_eq(file_write(st->it, st->ino, buf, STREAM_RECORD,
					    (uint64_t)r * STREAM_RECORD, 0), (ssize_t)STREAM_RECORD);
		st->done = r + 1;
	}
	free(buf);
	return NULL;
}

/* The snapshot's file is records [0, n) exactly, with n within [lo, hi]. */
static void expect_prefix(struct inode_tree *it, uint64_t ino, unsigned lo, unsigned hi)
{
	struct cowfs_attr a;
	uint8_t *got = malloc(STREAM_RECORD), *want = malloc(STREAM_RECORD);
	unsigned n;

	ck_assert_int_eq(inode_getattr(it, ino, &a), 0);
	ck_assert_msg(a.size % STREAM_RECORD == 0, "torn: size %" PRIu64, a.size);
	n = (unsigned)(a.size / STREAM_RECORD);
	ck_assert_msg(n >= lo && n <= hi, "snapshot has %u records, writer had done %u..%u", n,
		      lo, hi);
	for (unsigned r = 0; r < n; r++) {
		record_fill(want, r);
		ck_assert_int_eq(file_read(it, ino, got, STREAM_RECORD, (uint64_t)r * STREAM_RECORD),
				 (ssize_t)STREAM_RECORD);
		ck_assert_msg(memcmp(got, want, STREAM_RECORD) == 0, "record %u of %u differs", r, n);
	}
	free(got);
	free(want);
}

START_TEST(snapshot_under_a_streaming_writer)
{
	struct ifix f;
	struct streamer st = { .it = NULL };
	struct inode_tree sv, snap;
	uint64_t svid, ids[STREAM_SNAPS];
	unsigned lo[STREAM_SNAPS], hi[STREAM_SNAPS];
	pthread_t th;

	ifix_setup(&f, "subvol_stream", IMG, 0);
	ck_assert_int_eq(subvol_make(&f.it, ROOT, "sv", 2, 0755, 0, 0, &svid), 0);
	open_sub(&f, svid, &sv);
	st.it = &sv;
	st.ino = mkfile(&sv, ROOT, "stream");
	ck_assert_int_eq(pthread_create(&th, NULL, stream_writes, &st), 0);
	for (int i = 0; i < STREAM_SNAPS; i++) {
		char name[16];
		while (st.done < (unsigned)(i + 1) * STREAM_RECORDS / (STREAM_SNAPS + 1))
			sched_yield();
		snprintf(name, sizeof(name), "snap%d", i);
		lo[i] = st.done;
		ck_assert_int_eq(subvol_snapshot(&sv, &f.it, ROOT, name, strlen(name), true, &ids[i]), 0);
		hi[i] = st.started;
	}
	pthread_join(th, NULL);
	for (int i = 0; i < STREAM_SNAPS; i++) {
		open_sub(&f, ids[i], &snap);
		expect_prefix(&snap, st.ino, lo[i], hi[i]);
		ck_assert_int_eq(inode_tree_destroy(&snap), 0);
	}
	fprintf(stderr, "stream: snapshots at records");
	for (int i = 0; i < STREAM_SNAPS; i++)
		fprintf(stderr, " %u..%u", lo[i], hi[i]);
	fprintf(stderr, "\n");
	expect_prefix(&sv, st.ino, STREAM_RECORDS, STREAM_RECORDS);
	ck_assert_int_eq(inode_tree_destroy(&sv), 0);
	check(&f);
	ifix_teardown(&f);
}
END_TEST

/* The checkers see a subvolume cut loose from its entry, and an entry without its subvolume. */
START_TEST(damage_is_found)
{
	struct ifix f;
	struct cowfs_check_stats st;
	struct inode_check_stats ns;
	struct cowfs_trans *tx;
	uint64_t id;

	ifix_setup(&f, "subvol_damage", IMG, 0);
	ck_assert_int_eq(subvol_make(&f.it, ROOT, "sv", 2, 0755, 0, 0, &id), 0);
	check(&f);
	struct bt_key back = { id, ROOT_BACKREF_KEY, FS_TREE_ID };
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_delete(&tx->bt, cowfs_root_tree(f.x.fs), &back), 0);
	ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(cowfs_check(f.x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_uint_ge(st.problems, 2);   /* the ref without its twin; linked nowhere */
	ck_assert_int_eq(inode_check_all(f.x.fs, &ns), -EUCLEAN);   /* the entry's subvolume */
	ck_assert_int_eq(inode_tree_destroy(&f.it), 0);
	fsfix_teardown(&f.x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("subvol");
	TCase *tc = tcase_create("subvol");

	tcase_add_test(tc, make_snapshot_diverge);
	tcase_add_test(tc, rename_and_unlink);
	tcase_add_test(tc, default_and_flags);
	tcase_add_test(tc, damage_is_found);
	tcase_add_test(tc, prealloc_written_after_snapshot);
	tcase_add_test(tc, fiemap_shared_with_snapshot);
	tcase_add_test(tc, snapshot_under_a_streaming_writer);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
