/*
 * fs/inode file data (file.h): reads and writes through dirty pages and write-back, size
 * changes, fallocate, SEEK_DATA/SEEK_HOLE, orphans, data checksums, ENOSPC; and a random
 * model test. Every test ends with the whole-filesystem checker (exact refcounts and
 * backrefs of every data extent) and the namespace checker clean.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/extent/csum_tree.h"
#include "fs/extent/extent_format.h"
#include "fs/inode/namespace_check.h"
#include "fs/super/fsck.h"
#include "fs/inode/file.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"
#include "fs/inode/inode.h"
#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define MiB (1ull << 20)

static uint64_t mkfile(struct ifix *f, const char *name)
{
	struct cowfs_attr a;

	ck_assert_int_eq(inode_create(&f->it, ROOT, name, strlen(name), S_IFREG | 0644, 0, 0, 0,
				      &a), 0);
	return a.ino;
}

static void wr(struct ifix *f, uint64_t ino, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = file_write(&f->it, ino, buf, len, off, 0);

	REQUIRE(n == (ssize_t)len, "write %zu at %" PRIu64 ": %zd", len, off, n);
}

/* Read [off, off + len) and compare with `want` (NULL: zeros). */
static void expect(struct ifix *f, uint64_t ino, const uint8_t *want, size_t len, uint64_t off)
{
	uint8_t *got = malloc(len);
	ssize_t n = file_read(&f->it, ino, got, len, off);

	REQUIRE(n == (ssize_t)len, "read %zu at %" PRIu64 ": %zd", len, off, n);
	for (size_t i = 0; i < len; i++)
		REQUIRE(got[i] == (want ? want[i] : 0), "byte %" PRIu64 ": %u, want %u", off + i,
			got[i], want ? want[i] : 0);
	free(got);
}

static uint64_t count_file_extents(struct ifix *f, uint64_t ino, uint8_t type)
{
	struct bt_key from = { ino, EXTENT_DATA_KEY, 0 }, k;
	struct bt_cursor c;
	uint64_t n = 0;
	const void *d;
	uint32_t len;
	int ret;

	bt_cursor_init(&c, &f->x.fs->fs_root.t);
	for (ret = bt_cursor_seek(&c, &from, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, &d, &len);
		if (k.objectid != ino || k.type != EXTENT_DATA_KEY)
			break;
		n += ((const struct file_extent_item *)d)->type == type;
	}
	bt_cursor_release(&c);
	return n;
}

/* ---- basics ---------------------------------------------------------------------------------- */

START_TEST(write_read_unaligned)
{
	struct ifix f;
	uint8_t buf[3 * 4096 + 100], out[8];

	ifix_setup(&f, "file-basic", 128 * MiB, 16384);
	uint64_t ino = mkfile(&f, "a");
	rng_fill(buf, sizeof(buf), 1);
	wr(&f, ino, buf, sizeof(buf), 1000);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, 1000 + sizeof(buf));
	expect(&f, ino, NULL, 1000, 0);
	expect(&f, ino, buf, sizeof(buf), 1000);
	/* Reads stop at end of file, and return 0 past it. */
	ck_assert_int_eq(file_read(&f.it, ino, out, 8, 1000 + sizeof(buf) - 3), 3);
	ck_assert_int_eq(file_read(&f.it, ino, out, 8, 1 << 20), 0);
	/* The same after write-back, and after a cold reopen. */
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	expect(&f, ino, buf, sizeof(buf), 1000);
	ifix_reopen(&f);
	expect(&f, ino, NULL, 1000, 0);
	expect(&f, ino, buf, sizeof(buf), 1000);
	ck_assert_uint_eq(ifix_attr(&f, ino).blocks, 4 * 8);
	/* Overwrite across committed data: the rest of each block survives. */
	wr(&f, ino, "XYZ", 3, 4095);
	memcpy(buf + 4095 - 1000, "XYZ", 3);
	expect(&f, ino, buf, sizeof(buf), 1000);
	ifix_reopen(&f);
	expect(&f, ino, buf, sizeof(buf), 1000);
	ifix_teardown(&f);
}
END_TEST

START_TEST(errors)
{
	struct ifix f;
	struct cowfs_attr a;
	uint8_t b = 0;

	ifix_setup(&f, "file-err", 64 * MiB, 16384);
	uint64_t ino = mkfile(&f, "a");
	ck_assert_int_eq(inode_mkdir(&f.it, ROOT, "d", 1, S_IFDIR | 0755, 0, 0, &a), 0);
	ck_assert_int_eq(file_read(&f.it, a.ino, &b, 1, 0), -EISDIR);
	ck_assert_int_eq(file_write(&f.it, a.ino, &b, 1, 0, 0), -EISDIR);
	ck_assert_int_eq(file_write(&f.it, 999999, &b, 1, 0, 0), -ENOENT);
	ck_assert_int_eq(file_write(&f.it, ino, &b, 1, FILE_SIZE_MAX, 0), -EFBIG);
	ck_assert_int_eq(file_write(&f.it, ino, &b, 1, UINT64_MAX, 0), -EFBIG);
	ck_assert_int_eq(file_fallocate(&f.it, ino, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(file_fallocate(&f.it, ino, FALLOC_FL_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
	ck_assert_int_eq(file_fallocate(&f.it, ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -EOPNOTSUPP);
	ck_assert_int_eq(file_fallocate(&f.it, ino, 0, UINT64_MAX - 10, 100), -EFBIG);
	/* A huge size works exactly (sparse), reads zeros at the end, and shrinks back. */
	a.size = 8ull << 40;
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, 8ull << 40);
	expect(&f, ino, NULL, 4096, (8ull << 40) - 4096);
	a.size = FILE_SIZE_MAX + 1;
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), -EFBIG);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, 8ull << 40);
	ifix_teardown(&f);
}
END_TEST

START_TEST(append_and_sequential_extents)
{
	struct ifix f;
	uint8_t *buf = malloc(MiB);

	ifix_setup(&f, "file-seq", 512 * MiB, 16384);
	uint64_t ino = mkfile(&f, "big");
	/* 64 MiB in 1 MiB appends become a few large extents, not one per write. */
	for (int i = 0; i < 64; i++) {
		rng_fill(buf, MiB, i);
		ck_assert_int_eq(file_write(&f.it, ino, buf, MiB, 0, FILE_WRITE_APPEND), (ssize_t)MiB);
	}
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, 64 * MiB);
	uint64_t n = count_file_extents(&f, ino, FILE_EXTENT_REG);
	ck_assert_msg(n >= 1 && n <= 4, "%" PRIu64 " extents for 64 MiB of appends", n);
	for (int i = 0; i < 64; i += 7) {
		rng_fill(buf, MiB, i);
		expect(&f, ino, buf, MiB, (uint64_t)i * MiB);
	}
	free(buf);
	ifix_teardown(&f);
}
END_TEST

/* ---- size changes ---------------------------------------------------------------------------- */

START_TEST(truncate_zeroes_the_cut_tail)
{
	struct ifix f;
	struct cowfs_attr a = { 0 };
	uint8_t buf[20000];

	ifix_setup(&f, "file-trunc", 128 * MiB, 16384);
	uint64_t ino = mkfile(&f, "t");
	memset(buf, 0xAB, sizeof(buf));
	wr(&f, ino, buf, sizeof(buf), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	a.size = 5000;
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0);
	a.size = 20000;
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0);
	expect(&f, ino, buf, 5000, 0);
	expect(&f, ino, NULL, 15000, 5000);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).blocks, 2 * 8);   /* 4 KiB pages 0 and 1 */
	ifix_reopen(&f);
	expect(&f, ino, buf, 5000, 0);
	expect(&f, ino, NULL, 15000, 5000);
	/* To zero: no data left at all. */
	a.size = 0;
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).blocks, 0);
	ck_assert_uint_eq(count_file_extents(&f, ino, FILE_EXTENT_REG), 0);
	ifix_teardown(&f);
}
END_TEST

START_TEST(fallocate_modes)
{
	struct ifix f;
	uint8_t buf[64 * 1024];
	uint64_t at;

	ifix_setup(&f, "file-falloc", 128 * MiB, 16384);
	uint64_t ino = mkfile(&f, "p");
	/* Default mode: size grows, zeros, space counted, no data for SEEK_DATA. */
	ck_assert_int_eq(file_fallocate(&f.it, ino, 0, 0, 1 * MiB), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, MiB);
	ck_assert_uint_eq(ifix_attr(&f, ino).blocks, MiB / 512);
	expect(&f, ino, NULL, MiB, 0);
	ck_assert_int_eq(file_seek(&f.it, ino, 0, SEEK_DATA, &at), -ENXIO);
	/* KEEP_SIZE past end of file: size unchanged. */
	ck_assert_int_eq(file_fallocate(&f.it, ino, FALLOC_FL_KEEP_SIZE, MiB, MiB), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, MiB);
	ck_assert_uint_eq(ifix_attr(&f, ino).blocks, 2 * MiB / 512);
	/* Writing into preallocated space. */
	rng_fill(buf, sizeof(buf), 3);
	wr(&f, ino, buf, sizeof(buf), 100000);
	expect(&f, ino, buf, sizeof(buf), 100000);
	expect(&f, ino, NULL, 100000, 0);
	/* Punch a hole through the data, unaligned. */
	ck_assert_int_eq(file_fallocate(&f.it, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					110000, 30000), 0);
	memset(buf + 10000, 0, 30000);
	expect(&f, ino, buf, sizeof(buf), 100000);
	ifix_reopen(&f);
	expect(&f, ino, buf, sizeof(buf), 100000);
	/* ZERO_RANGE with KEEP_SIZE past end of file: size unchanged; without, size grows. */
	ck_assert_int_eq(file_fallocate(&f.it, ino, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					MiB - 100, 5000), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, MiB);
	ck_assert_int_eq(file_fallocate(&f.it, ino, FALLOC_FL_ZERO_RANGE, 101000, 3 * MiB), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).size, 101000 + 3 * MiB);
	expect(&f, ino, buf, 1000, 100000);
	expect(&f, ino, NULL, 3 * MiB, 101000);
	ifix_teardown(&f);
}
END_TEST

/*
 * Writes into preallocated space go into it (inplace.c): no new extent, the written piece a
 * regular item of the same extent, joined with its written neighbours; written back but not
 * committed, a crash leaves the zeros the committed map says; a clone of preallocated space
 * gets extents of its own.
 */
START_TEST(prealloc_written_in_place)
{
	struct ifix f;
	uint8_t buf[64 * 1024];
	struct fmap_seg pre, s;
	uint64_t at;

	ifix_setup(&f, "file-inplace", 128 * MiB, 16384);
	uint64_t ino = mkfile(&f, "p");
	ck_assert_int_eq(file_fallocate(&f.it, ino, 0, 0, MiB), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	pre = ifix_seg_at(&f, ino, 0);
	ck_assert_int_eq(pre.kind, FMAP_PREALLOC);
	ck_assert_uint_eq(pre.extent_len, MiB);
	rng_fill(buf, sizeof(buf), 5);
	/* Written back (SEEK_DATA does it) into the extent, then a crash before any commit. */
	wr(&f, ino, buf, 4096, 64 * 1024);
	ck_assert_uint_eq(ifix_attr(&f, ino).blocks, MiB / 512);   /* no new space counted */
	ck_assert_int_eq(file_seek(&f.it, ino, 0, SEEK_DATA, &at), 0);
	ck_assert_uint_eq(at, 64 * 1024);
	s = ifix_seg_at(&f, ino, 64 * 1024);
	ck_assert_int_eq(s.kind, FMAP_DATA);
	ck_assert_uint_eq(s.disk, pre.disk + 64 * 1024);
	ck_assert_uint_eq(s.extent_start, pre.extent_start);
	ifix_crash_reopen(&f);
	expect(&f, ino, NULL, MiB, 0);
	ck_assert_int_eq(ifix_seg_at(&f, ino, 64 * 1024).kind, FMAP_PREALLOC);
	/* Written in 64 KiB pieces, last first, committed each time: one regular item at the
	 * end, the extent's own. */
	for (uint64_t i = 16; i-- > 0;) {
		rng_fill(buf, sizeof(buf), i);
		wr(&f, ino, buf, sizeof(buf), i * sizeof(buf));
		ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	}
	s = ifix_seg_at(&f, ino, 0);
	ck_assert_int_eq(s.kind, FMAP_DATA);
	ck_assert_uint_eq(s.disk, pre.disk);
	ck_assert_uint_eq(s.len, MiB);
	ck_assert_uint_eq(count_file_extents(&f, ino, FILE_EXTENT_REG), 1);
	ck_assert_uint_eq(count_file_extents(&f, ino, FILE_EXTENT_PREALLOC), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).blocks, MiB / 512);
	ifix_reopen(&f);
	for (uint64_t i = 0; i < 16; i++) {
		rng_fill(buf, sizeof(buf), i);
		expect(&f, ino, buf, sizeof(buf), i * sizeof(buf));
	}
	/* Overwriting written data is copy-on-write again. */
	wr(&f, ino, buf, 4096, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_ne(ifix_seg_at(&f, ino, 0).disk, pre.disk);
	/* A clone of preallocated space: the destination's own preallocated extent. */
	uint64_t q = mkfile(&f, "q"), r = mkfile(&f, "r"), cloned;
	ck_assert_int_eq(file_fallocate(&f.it, q, 0, 0, 256 * 1024), 0);
	ck_assert_int_eq(file_clone_range(&f.it, q, 0, r, 0, 256 * 1024, &cloned), 0);
	ck_assert_uint_eq(cloned, 256 * 1024);
	s = ifix_seg_at(&f, r, 0);
	ck_assert_int_eq(s.kind, FMAP_PREALLOC);
	ck_assert_uint_ne(s.extent_start, ifix_seg_at(&f, q, 0).extent_start);
	ck_assert_uint_eq(ifix_attr(&f, r).blocks, 256 * 1024 / 512);
	ifix_teardown(&f);
}
END_TEST

START_TEST(seek_data_and_hole)
{
	struct ifix f;
	uint8_t buf[8192];
	uint64_t at;

	ifix_setup(&f, "file-seek", 128 * MiB, 16384);
	uint64_t ino = mkfile(&f, "s");
	memset(buf, 7, sizeof(buf));
	wr(&f, ino, buf, sizeof(buf), 0);
	wr(&f, ino, buf, sizeof(buf), MiB);
	/* Dirty data counts as data. */
	ck_assert_int_eq(file_seek(&f.it, ino, 0, SEEK_DATA, &at), 0);
	ck_assert_uint_eq(at, 0);
	ck_assert_int_eq(file_seek(&f.it, ino, 0, SEEK_HOLE, &at), 0);
	ck_assert_uint_eq(at, 8192);
	ck_assert_int_eq(file_seek(&f.it, ino, 8192, SEEK_DATA, &at), 0);
	ck_assert_uint_eq(at, MiB);
	ck_assert_int_eq(file_seek(&f.it, ino, MiB + 100, SEEK_DATA, &at), 0);
	ck_assert_uint_eq(at, MiB + 100);
	ck_assert_int_eq(file_seek(&f.it, ino, MiB, SEEK_HOLE, &at), 0);
	ck_assert_uint_eq(at, MiB + 8192);
	ck_assert_int_eq(file_seek(&f.it, ino, MiB + 8192, SEEK_DATA, &at), -ENXIO);
	/* A hole at the end of file. */
	struct cowfs_attr a = { .size = 4 * MiB };
	ck_assert_int_eq(inode_setattr(&f.it, ino, INODE_SET_SIZE, &a), 0);
	ck_assert_int_eq(file_seek(&f.it, ino, MiB + 8192, SEEK_HOLE, &at), 0);
	ck_assert_uint_eq(at, MiB + 8192);
	ck_assert_int_eq(file_seek(&f.it, ino, MiB + 8192, SEEK_DATA, &at), -ENXIO);
	ck_assert_int_eq(file_seek(&f.it, ino, 4 * MiB, SEEK_HOLE, &at), -ENXIO);
	ifix_teardown(&f);
}
END_TEST

START_TEST(copy_range)
{
	struct ifix f;
	uint8_t buf[50000];

	ifix_setup(&f, "file-copy", 128 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	rng_fill(buf, sizeof(buf), 9);
	wr(&f, a, buf, sizeof(buf), 0);
	ck_assert_int_eq(file_copy_range(&f.it, a, 1000, b, 3, 20000), 20000);
	expect(&f, b, NULL, 3, 0);
	expect(&f, b, buf + 1000, 20000, 3);
	/* Short at the source's end of file, 0 past it. */
	ck_assert_int_eq(file_copy_range(&f.it, a, 40000, b, 0, 20000), 10000);
	ck_assert_int_eq(file_copy_range(&f.it, a, 60000, b, 0, 20000), 0);
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, a, 100, 200), -EINVAL);
	ifix_teardown(&f);
}
END_TEST

static int count_shared(void *arg, const struct extent_info *e)
{
	uint64_t *n = arg;

	if ((e->flags & EXTENT_FLAG_DATA) && e->refs == 2)
		(*n)++;
	return 0;
}

/* copy_file_range with matching alignment shares extents: a reflink. */
START_TEST(copy_range_shares_extents)
{
	struct ifix f;
	uint8_t *buf = malloc(4 * MiB), *other = malloc(4 * MiB);
	uint64_t shared = 0;

	ifix_setup(&f, "file-clone", 128 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	rng_fill(buf, 4 * MiB - 1000, 21);
	wr(&f, a, buf, 4 * MiB - 1000, 0);
	/* Dirty source data is written back first; the tail past its end of file is shared. */
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, b, 0, 8 * MiB), (ssize_t)(4 * MiB - 1000));
	ck_assert_uint_eq(ifix_attr(&f, b).size, 4 * MiB - 1000);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(extent_walk(&f.x.fs->ext, &(struct extent_walk){
		.extent_fn = count_shared, .arg = &shared }), 0);
	ck_assert_uint_ge(shared, 1);
	expect(&f, b, buf, 4 * MiB - 1000, 0);
	ifix_check(&f);
	/* Writing either copy leaves the other alone (copy-on-write of shared extents). */
	rng_fill(other, 8192, 22);
	wr(&f, a, other, 8192, 4096);
	expect(&f, b, buf, 4 * MiB - 1000, 0);
	memcpy(buf + 4096, other, 8192);
	expect(&f, a, buf, 4 * MiB - 1000, 0);
	/* An aligned middle with unaligned ends: shared middle, copied ends. */
	ck_assert_int_eq(file_copy_range(&f.it, a, 100, b, 8292, 1 * MiB), (ssize_t)MiB);
	expect(&f, b, buf + 100, MiB, 8292);
	ifix_reopen(&f);
	expect(&f, b, buf + 100, MiB, 8292);
	expect(&f, a, buf, 4 * MiB - 1000, 0);
	free(buf);
	free(other);
	ifix_teardown(&f);
}
END_TEST

/* ---- orphans --------------------------------------------------------------------------------- */

START_TEST(unlinked_while_held)
{
	struct ifix f;
	uint8_t buf[10000];

	ifix_setup(&f, "file-orphan", 128 * MiB, 16384);
	uint64_t ino = mkfile(&f, "o");
	rng_fill(buf, sizeof(buf), 5);
	wr(&f, ino, buf, sizeof(buf), 0);
	ck_assert_int_eq(inode_hold(&f.it, ino), 0);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "o", 1), 0);
	ck_assert_uint_eq(ifix_attr(&f, ino).nlink, 0);
	expect(&f, ino, buf, sizeof(buf), 0);
	wr(&f, ino, buf, 100, 10000);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_check(&f);   /* an orphan is consistent */
	ck_assert_int_eq(inode_release(&f.it, ino, 1), 0);
	ck_assert_int_eq(inode_getattr(&f.it, ino, &(struct cowfs_attr){ 0 }), -ENOENT);

	/* The daemon dies while an unlinked file is held: the next mount frees it. */
	ino = mkfile(&f, "p");
	wr(&f, ino, buf, sizeof(buf), 0);
	ck_assert_int_eq(inode_hold(&f.it, ino), 0);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "p", 1), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	/* The process dies: its memory goes, the committed orphan item stays. */
	ifix_crash_reopen(&f);
	ck_assert_int_eq(inode_getattr(&f.it, ino, &(struct cowfs_attr){ 0 }), 0);
	uint64_t freed;
	ck_assert_int_eq(inode_orphans_cleanup(&f.it, &freed), 0);
	ck_assert_uint_eq(freed, 1);
	ck_assert_int_eq(inode_getattr(&f.it, ino, &(struct cowfs_attr){ 0 }), -ENOENT);
	ifix_teardown(&f);
}
END_TEST

/* ---- checksums ------------------------------------------------------------------------------- */

static int first_data_extent(void *arg, const struct extent_info *e)
{
	uint64_t *start = arg;

	if ((e->flags & EXTENT_FLAG_DATA) && !*start)
		*start = e->start;
	return 0;
}

START_TEST(corrupt_data_is_eio)
{
	struct ifix f;
	uint8_t buf[3 * 4096], out[4096];
	uint64_t start = 0;

	ifix_setup(&f, "file-csum", 64 * MiB, 16384);
	uint64_t ino = mkfile(&f, "c");
	rng_fill(buf, sizeof(buf), 11);
	wr(&f, ino, buf, sizeof(buf), 0);
	ck_assert_int_eq(inode_tree_destroy(&f.it), 0);
	ck_assert_int_eq(extent_walk(&f.x.fs->ext, &(struct extent_walk){
		.extent_fn = first_data_extent, .arg = &start }), 0);
	ck_assert_uint_ne(start, 0);
	cowfs_close(f.x.fs);
	f.x.fs = NULL;
	/* Flip one byte of the second block. */
	int fd = open(f.x.path, O_RDWR);
	uint8_t b;
	ck_assert_int_eq(pread(fd, &b, 1, start + 4096 + 17), 1);
	b ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &b, 1, start + 4096 + 17), 1);
	close(fd);
	ck_assert_int_eq(cowfs_open(f.x.path, &(struct cowfs_opts){ .report = NULL,
		.commit_interval_ms = -1 }, &f.x.fs), 0);
	inode_tree_init(&f.it, f.x.fs, &f.x.fs->fs_root);
	ck_assert_int_eq(file_read(&f.it, ino, out, 4096, 0), 4096);
	ck_assert_int_eq(memcmp(out, buf, 4096), 0);
	ck_assert_int_eq(file_read(&f.it, ino, out, 4096, 4096), -EIO);
	ck_assert_int_eq(file_read(&f.it, ino, out, 100, 5000), -EIO);
	/* A partial overwrite needs the bad block's other bytes: refused, not invented. */
	ck_assert_int_eq(file_write(&f.it, ino, "x", 1, 4096, 0), -EIO);
	ck_assert_int_eq(file_read(&f.it, ino, out, 4096, 8192), 4096);
	/* Overwriting the whole block repairs the file. */
	wr(&f, ino, buf + 4096, 4096, 4096);
	expect(&f, ino, buf, sizeof(buf), 0);
	ifix_teardown(&f);
}
END_TEST

/* fsck: a written extent must have every checksum, and checksums nothing else. */
START_TEST(fsck_finds_missing_checksums)
{
	struct ifix f;
	struct cowfs_check_stats st;
	uint8_t buf[8192];
	uint64_t start = 0;

	ifix_setup(&f, "file-fsck-csum", 64 * MiB, 16384);
	uint64_t ino = mkfile(&f, "c");
	rng_fill(buf, sizeof(buf), 4);
	wr(&f, ino, buf, sizeof(buf), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_check(&f);
	ck_assert_int_eq(extent_walk(&f.x.fs->ext, &(struct extent_walk){
		.extent_fn = first_data_extent, .arg = &start }), 0);
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(csum_delete(&f.x.fs->ext, &tx->bt, start, 8192), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(cowfs_check(f.x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_uint_eq(st.problems, 1);
	ck_assert_msg(strstr(f.x.last_report, "has 0 checksums, not 2"), "%s", f.x.last_report);
	/* Reading the unprotected data is refused too. */
	ck_assert_int_eq(file_read(&f.it, ino, buf, 10, 0), -EUCLEAN);
	/* Put them back: clean again. */
	rng_fill(buf, sizeof(buf), 4);
	uint64_t sums[2] = { csum_sector(buf, 4096), csum_sector(buf + 4096, 4096) };
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(csum_insert(&f.x.fs->ext, &tx->bt, start, sums, 2), 0);
	cowfs_trans_end(tx, 0);
	expect(&f, ino, buf, sizeof(buf), 0);
	ifix_teardown(&f);
}
END_TEST

/* The namespace checker: a file's items must not overlap and must add up to its nbytes. */
/* An extent written in part, in place (inplace.c): fsck wants checksums exactly where the
 * regular pieces map, none elsewhere needed. */
START_TEST(fsck_checks_pieces_written_in_place)
{
	struct ifix f;
	struct cowfs_check_stats st;
	uint8_t buf[4096];

	ifix_setup(&f, "file-fsck-inplace", 64 * MiB, 16384);
	uint64_t ino = mkfile(&f, "c");
	ck_assert_int_eq(file_fallocate(&f.it, ino, 0, 0, 64 * 1024), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	rng_fill(buf, sizeof(buf), 9);
	wr(&f, ino, buf, sizeof(buf), 16 * 1024);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_check(&f);
	struct fmap_seg s = ifix_seg_at(&f, ino, 16 * 1024);
	ck_assert_int_eq(s.kind, FMAP_DATA);
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(csum_delete(&f.x.fs->ext, &tx->bt, s.disk, 4096), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(cowfs_check(f.x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_uint_eq(st.problems, 1);
	ck_assert_msg(strstr(f.x.last_report, "map as written have no checksums"), "%s",
		      f.x.last_report);
	uint64_t sum = csum_sector(buf, 4096);
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(csum_insert(&f.x.fs->ext, &tx->bt, s.disk, &sum, 1), 0);
	cowfs_trans_end(tx, 0);
	expect(&f, ino, buf, sizeof(buf), 16 * 1024);
	ifix_teardown(&f);
}
END_TEST

START_TEST(checker_finds_bad_file_extents)
{
	struct ifix f;
	struct inode_check_stats ns;
	uint8_t buf[16384];
	struct inode in;
	struct cowfs_trans *tx;

	ifix_setup(&f, "file-fsck-items", 64 * MiB, 16384);
	uint64_t ino = mkfile(&f, "c");
	rng_fill(buf, sizeof(buf), 8);
	wr(&f, ino, buf, sizeof(buf), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(inode_check_all(f.x.fs, &ns), 0);
	/* nbytes that does not match the items. */
	ck_assert_int_eq(inode_update_begin(&f.it, ALLOC_NORMAL, 1, &tx), 0);
	ck_assert_int_eq(inode_read(&f.it, ino, &in), 0);
	in.nbytes += 4096;
	ck_assert_int_eq(inode_write(tx, &f.it, ino, &in), 0);
	inode_update_end(tx, 0);
	ck_assert_int_eq(inode_check_all(f.x.fs, &ns), -EUCLEAN);
	ck_assert_msg(strstr(f.x.last_report, "nbytes 20480, but its file extent items reference"
			     " 16384 bytes"), "%s", f.x.last_report);
	/* A shrunk size leaves data past end of file. */
	ck_assert_int_eq(inode_update_begin(&f.it, ALLOC_NORMAL, 1, &tx), 0);
	ck_assert_int_eq(inode_read(&f.it, ino, &in), 0);
	in.nbytes -= 4096;
	in.size = 4096;
	ck_assert_int_eq(inode_write(tx, &f.it, ino, &in), 0);
	inode_update_end(tx, 0);
	ck_assert_int_eq(inode_check_all(f.x.fs, &ns), -EUCLEAN);
	ck_assert_msg(strstr(f.x.last_report, "past end of file 4096"), "%s", f.x.last_report);
	/* Put it right: the checker is quiet again. */
	ck_assert_int_eq(inode_update_begin(&f.it, ALLOC_NORMAL, 1, &tx), 0);
	ck_assert_int_eq(inode_read(&f.it, ino, &in), 0);
	in.size = sizeof(buf);
	ck_assert_int_eq(inode_write(tx, &f.it, ino, &in), 0);
	inode_update_end(tx, 0);
	ck_assert_int_eq(inode_check_all(f.x.fs, &ns), 0);
	ifix_teardown(&f);
}
END_TEST

/* ---- space ----------------------------------------------------------------------------------- */

START_TEST(enospc_then_delete)
{
	struct ifix f;
	uint8_t *buf = calloc(1, MiB);
	int files = 0, ret = 0;
	char name[32];

	ifix_setup(&f, "file-enospc", 64 * MiB, 16384);
	while (ret >= 0 && files < 200) {
		snprintf(name, sizeof(name), "f%d", files++);
		uint64_t ino = mkfile(&f, name);
		for (int i = 0; i < 4 && ret >= 0; i++)
			ret = (int)file_write(&f.it, ino, buf, MiB, (uint64_t)i * MiB, 0);
	}
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_check(&f);
	/* Deleting works on the full filesystem, and the space comes back. */
	for (int i = 0; i < files; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(inode_unlink(&f.it, ROOT, name, strlen(name)), 0);
	}
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	uint64_t ino = mkfile(&f, "again");
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(file_write(&f.it, ino, buf, MiB, (uint64_t)i * MiB, 0), (ssize_t)MiB);
	free(buf);
	ifix_teardown(&f);
}
END_TEST

/*
 * A file with more extent items than one transaction frees (INODE_DROP_BATCH), on a full
 * filesystem: unlinking it works (unheld: freed right after the unlink; held: at release),
 * in batches; a crash while it is an orphan leaves a clean image that the next cleanup frees.
 */
static uint64_t fragmented_file(struct ifix *f, const char *name, uint64_t extents)
{
	uint8_t page[4096];
	uint64_t ino = mkfile(f, name);

	for (uint64_t i = 0; i < extents; i++) {
		rng_fill(page, sizeof(page), i);
		wr(f, ino, page, sizeof(page), 2 * i * sizeof(page));   /* every other page */
	}
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	return ino;
}

static void fill_up(struct ifix *f)
{
	uint8_t *buf = calloc(1, MiB);
	uint64_t ino = mkfile(f, "filler"), off = 0;
	ssize_t n;

	while ((n = file_write(&f->it, ino, buf, MiB, off, 0)) > 0)
		off += (uint64_t)n;
	ck_assert_int_eq(n, -ENOSPC);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	free(buf);
}

START_TEST(delete_fragmented_file_on_full_fs)
{
	const uint64_t extents = INODE_DROP_BATCH * 5 / 2;
	struct ifix f;
	struct cowfs_statfs full, after;

	ifix_setup(&f, "file-frag", 96 * MiB, 4096);
	fragmented_file(&f, "a", extents);
	uint64_t held = fragmented_file(&f, "b", extents);
	uint64_t trunc = fragmented_file(&f, "c", extents);
	fill_up(&f);
	ifix_check(&f);
	cowfs_statfs(f.x.fs, &full);
	/* Unheld: freed in batches right after the unlink. */
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "a", 1), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	cowfs_statfs(f.x.fs, &after);
	/* The data came back (less what the commit's new tree blocks and log space took). */
	ck_assert_uint_ge(after.free, full.free + extents * 4096 * 3 / 4);
	ifix_check(&f);
	/* Truncating one to three pages works too (in batches), and keeps what is left. */
	uint8_t page[4096];
	struct cowfs_attr a = { .size = 3 * sizeof(page) };
	ck_assert_int_eq(inode_setattr(&f.it, trunc, INODE_SET_SIZE, &a), 0);
	ck_assert_uint_eq(ifix_attr(&f, trunc).size, 3 * sizeof(page));
	rng_fill(page, sizeof(page), 0);
	expect(&f, trunc, page, sizeof(page), 0);
	expect(&f, trunc, NULL, sizeof(page), sizeof(page));
	rng_fill(page, sizeof(page), 1);
	expect(&f, trunc, page, sizeof(page), 2 * sizeof(page));
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_check(&f);
	/* Held: an orphan until released. The process dies first: the next cleanup frees it. */
	ck_assert_int_eq(inode_hold(&f.it, held), 0);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "b", 1), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_crash_reopen(&f);
	ifix_check(&f);
	/* Power cut after 1, 2, 3 ... writes of the cleanup's commit: clean every time, and the
	 * orphan is either gone or still there to free. */
	uint64_t freed;
	for (uint64_t cut = 1; cut < 8; cut++) {
		bdev_fault_cut_power(f.x.fs->bd, cut);
		ck_assert_int_eq(inode_orphans_cleanup(&f.it, &freed), 0);
		ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
		bdev_fault_clear(f.x.fs->bd);
		ifix_crash_reopen(&f);
		ifix_check(&f);
		if (inode_getattr(&f.it, held, &(struct cowfs_attr){ 0 }) == -ENOENT)
			break;
	}
	ck_assert_int_eq(inode_orphans_cleanup(&f.it, &freed), 0);
	ck_assert_int_eq(inode_getattr(&f.it, held, &(struct cowfs_attr){ 0 }), -ENOENT);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_teardown(&f);
}
END_TEST

/* ---- random operations against a model ------------------------------------------------------- */

#define MODEL_FILES 3
#define MODEL_MAX (3 * MiB)

struct model {
	uint64_t ino[MODEL_FILES];
	uint8_t *data[MODEL_FILES];
	uint64_t size[MODEL_FILES];
};

static void model_verify(struct ifix *f, struct model *m, int i)
{
	expect(f, m->ino[i], m->data[i], m->size[i], 0);
	ck_assert_uint_eq(ifix_attr(f, m->ino[i]).size, m->size[i]);
}

static void model_op(struct ifix *f, struct model *m, uint64_t *rng, uint8_t *tmp)
{
	int i = rng_next(rng) % MODEL_FILES, op = rng_next(rng) % 10;
	uint64_t off = rng_next(rng) % MODEL_MAX, len = 1 + rng_next(rng) % (256 * 1024);
	struct cowfs_attr a = { 0 };

	if (len > MODEL_MAX - off)
		len = MODEL_MAX - off;
	switch (op) {
	case 0: case 1: case 2: case 3:
		rng_fill(tmp, len, rng_next(rng));
		wr(f, m->ino[i], tmp, len, off);
		memcpy(m->data[i] + off, tmp, len);
		if (off + len > m->size[i])
			m->size[i] = off + len;
		break;
	case 4:
		a.size = off;
		ck_assert_int_eq(inode_setattr(&f->it, m->ino[i], INODE_SET_SIZE, &a), 0);
		if (off < m->size[i])
			memset(m->data[i] + off, 0, m->size[i] - off);
		m->size[i] = off;
		break;
	case 5:
		ck_assert_int_eq(file_fallocate(&f->it, m->ino[i],
			FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len), 0);
		if (off < m->size[i])
			memset(m->data[i] + off, 0, MIN(len, m->size[i] - off));
		break;
	case 6:
		ck_assert_int_eq(file_fallocate(&f->it, m->ino[i], FALLOC_FL_ZERO_RANGE, off, len), 0);
		memset(m->data[i] + off, 0, len);
		m->size[i] = MAX(m->size[i], off + len);
		break;
	case 7: {
		int j = (i + 1) % MODEL_FILES;
		uint64_t src = rng_next(rng) % MODEL_MAX;
		if (rng_next(rng) % 2) {   /* aligned alike: the shared (reflink) path */
			src -= src % 4096;
			off = off - off % 4096 + src % 4096;
		}
		ssize_t want = src >= m->size[j] ? 0 : (ssize_t)MIN(len, m->size[j] - src);
		ck_assert_int_eq(file_copy_range(&f->it, m->ino[j], src, m->ino[i], off, len), want);
		memmove(m->data[i] + off, m->data[j] + src, want);
		if (want && off + want > m->size[i])
			m->size[i] = off + want;
		break;
	}
	case 8:
		ck_assert_int_eq(file_fallocate(&f->it, m->ino[i], 0, off, len), 0);
		m->size[i] = MAX(m->size[i], off + len);
		break;
	default:
		if (m->size[i])
			expect(f, m->ino[i], m->data[i] + off % m->size[i],
			       MIN(len, m->size[i] - off % m->size[i]), off % m->size[i]);
		break;
	}
}

START_TEST(random_against_model)
{
	uint64_t rng = test_seed("random_against_model", 20261122);
	struct ifix f;
	struct model m;
	uint8_t *tmp = malloc(256 * 1024);
	char name[16];

	ifix_setup(&f, "file-model", 256 * MiB, 16384);
	for (int i = 0; i < MODEL_FILES; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		m.ino[i] = mkfile(&f, name);
		m.data[i] = calloc(1, MODEL_MAX);
		m.size[i] = 0;
	}
	for (int op = 1; op <= 3000; op++) {
		model_op(&f, &m, &rng, tmp);
		if (op % 250 == 0)
			ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
		if (op % 1000 == 0) {
			ifix_reopen(&f);
			ifix_check(&f);
			for (int i = 0; i < MODEL_FILES; i++)
				model_verify(&f, &m, i);
		}
	}
	for (int i = 0; i < MODEL_FILES; i++) {
		model_verify(&f, &m, i);
		free(m.data[i]);
	}
	free(tmp);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("file");
	TCase *tc = tcase_create("file");

	tcase_add_test(tc, write_read_unaligned);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, append_and_sequential_extents);
	tcase_add_test(tc, truncate_zeroes_the_cut_tail);
	tcase_add_test(tc, fallocate_modes);
	tcase_add_test(tc, prealloc_written_in_place);
	tcase_add_test(tc, seek_data_and_hole);
	tcase_add_test(tc, copy_range);
	tcase_add_test(tc, copy_range_shares_extents);
	tcase_add_test(tc, unlinked_while_held);
	tcase_add_test(tc, corrupt_data_is_eio);
	tcase_add_test(tc, fsck_finds_missing_checksums);
	tcase_add_test(tc, fsck_checks_pieces_written_in_place);
	tcase_add_test(tc, checker_finds_bad_file_extents);
	tcase_add_test(tc, enospc_then_delete);
	tcase_add_test(tc, delete_fragmented_file_on_full_fs);
	tcase_add_test(tc, random_against_model);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
