/*
 * A file's extent map (file_map_extents, fiemap.c) and extent_refcount: holes, preallocated
 * and shared extents (what SHARED means: another file, or the same bytes twice in one file;
 * not the pieces a punch or an overwrite leaves), merging, batching, dirty data with and without sync, the LAST flag; and
 * refcounts with pending references and after the commit that applies them. Physical
 * addresses are checked against the image itself.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/extent/extent.h"
#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/inode.h"
#include "tests/support/fixture.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define MAXX 256

struct fm {
	struct file_map_extent e[MAXX];
	size_t n;
};

static uint64_t mkfile(struct ifix *f, const char *name)
{
	return ifix_mk(f, ROOT, name, S_IFREG | 0644);
}

static struct fm map(struct ifix *f, uint64_t ino, uint64_t start, uint64_t end, bool sync,
		     size_t max)
{
	struct fm m;

	ck_assert_int_eq(file_map_extents(&f->it, ino, start, end, sync, m.e, max, &m.n), 0);
	return m;
}

static struct fm map_all(struct ifix *f, uint64_t ino, bool sync)
{
	return map(f, ino, 0, UINT64_MAX, sync, MAXX);
}

static void expect_extent(const struct fm *m, size_t i, uint64_t logical, uint64_t length,
			  unsigned flags)
{
	ck_assert_uint_lt(i, m->n);
	ck_assert_uint_eq(m->e[i].logical, logical);
	ck_assert_uint_eq(m->e[i].length, length);
	ck_assert_uint_eq(m->e[i].flags, flags);
}

/* The image holds at e's physical address what the file holds at its logical one. */
static void expect_on_disk(struct ifix *f, uint64_t ino, const struct file_map_extent *e,
			   uint64_t size)
{
	uint64_t len = e->logical + e->length > size ? size - e->logical : e->length;
	uint8_t *disk = malloc(len), *file = malloc(len);
	int fd = open(f->x.path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, disk, len, (off_t)e->physical), (ssize_t)len);
	close(fd);
	ck_assert_int_eq(file_read(&f->it, ino, file, len, e->logical), (ssize_t)len);
	ck_assert_msg(memcmp(disk, file, len) == 0, "extent at %" PRIu64 " is not on disk at %"
		      PRIu64, e->logical, e->physical);
	free(disk);
	free(file);
}

/* The disk extent under file offset `off` (a DATA or PREALLOC piece). */
static struct fmap_seg seg_at(struct ifix *f, uint64_t ino, uint64_t off)
{
	struct fmap_seg seg = ifix_seg_at(f, ino, off);

	ck_assert_int_ne(seg.kind, FMAP_HOLE);
	return seg;
}

static uint64_t refs_of(struct ifix *f, const struct fmap_seg *seg)
{
	uint64_t refs = 0;

	cowfs_lock(f->x.fs);
	ck_assert_int_eq(extent_refcount(&f->x.fs->ext, seg->extent_start, seg->extent_len, &refs),
			 0);
	cowfs_unlock(f->x.fs);
	return refs;
}

/* Holes are not listed; preallocated ranges are UNWRITTEN; physical addresses are real. */
START_TEST(holes_and_preallocated)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-holes", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	struct fm m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 0);                                   /* empty file */
	ifix_write_pattern(&f, a, 64 * KiB, 0, 1);
	ck_assert_int_eq(file_fallocate(&f.it, a, 0, 1 * MiB, 64 * KiB), 0);
	ifix_write_pattern(&f, a, 1000, 2 * MiB, 2);                                 /* a partial last sector */
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 3);
	expect_extent(&m, 0, 0, 64 * KiB, 0);
	expect_extent(&m, 1, 1 * MiB, 64 * KiB, FILE_MAP_UNWRITTEN);
	expect_extent(&m, 2, 2 * MiB, 4 * KiB, FILE_MAP_LAST);       /* rounded up to the sector */
	expect_on_disk(&f, a, &m.e[0], 2 * MiB + 1000);
	expect_on_disk(&f, a, &m.e[2], 2 * MiB + 1000);
	ck_assert_uint_eq(m.e[1].physical, seg_at(&f, a, 1 * MiB).disk);
	/* A range that is all hole lists nothing; one ending inside an extent lists it whole. */
	ck_assert_uint_eq(map(&f, a, 128 * KiB, 1 * MiB, false, MAXX).n, 0);
	m = map(&f, a, 128 * KiB, 1 * MiB + 1, false, MAXX);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 1 * MiB, 64 * KiB, FILE_MAP_UNWRITTEN);
	/* Preallocated past end of file (KEEP_SIZE) is listed whole, and is the last. */
	ck_assert_int_eq(file_fallocate(&f.it, a, FALLOC_FL_KEEP_SIZE, 3 * MiB, 128 * KiB), 0);
	m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 4);
	expect_extent(&m, 2, 2 * MiB, 4 * KiB, 0);
	expect_extent(&m, 3, 3 * MiB, 128 * KiB, FILE_MAP_UNWRITTEN | FILE_MAP_LAST);
	/* Not a regular file; nothing asked for. */
	size_t n = 7;
	struct file_map_extent e;
	ck_assert_int_eq(file_map_extents(&f.it, ROOT, 0, UINT64_MAX, false, &e, 1, &n), -EISDIR);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(file_map_extents(&f.it, 9999, 0, UINT64_MAX, false, &e, 1, &n), -ENOENT);
	ck_assert_uint_eq(map(&f, a, 0, UINT64_MAX, false, 0).n, 0);
	ck_assert_uint_eq(map(&f, a, 5 * MiB, 5 * MiB, false, MAXX).n, 0);
	ifix_teardown(&f);
}
END_TEST

/* copy_file_range of an aligned range shares: SHARED on both files, refcounts 2 as soon as the
 * clone is made (pending) and after its commit; an overwrite drops the share again. */
START_TEST(shared_and_refcounts)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-shared", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	ifix_write_pattern(&f, a, 1 * MiB, 0, 3);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct fmap_seg ext = seg_at(&f, a, 0);
	ck_assert_uint_eq(ext.extent_len, 1 * MiB);                  /* one extent to begin with */
	ck_assert_uint_eq(refs_of(&f, &ext), 1);
	struct fm m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 1 * MiB, FILE_MAP_LAST);

	ck_assert_int_eq(file_copy_range(&f.it, a, 0, b, 0, 512 * KiB), (ssize_t)(512 * KiB));
	ck_assert_uint_eq(refs_of(&f, &ext), 2);                     /* pending */
	m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 1);    /* the whole extent is referenced twice: all of it shared */
	expect_extent(&m, 0, 0, 1 * MiB, FILE_MAP_SHARED | FILE_MAP_LAST);
	m = map_all(&f, b, false);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 512 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST);
	ck_assert_uint_eq(m.e[0].physical, ext.disk);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_eq(refs_of(&f, &ext), 2);                     /* applied */
	struct extent_info info;
	ck_assert_int_eq(extent_lookup(&f.x.fs->ext, ext.extent_start, ext.extent_len, &info), 0);
	ck_assert_uint_eq(info.refs, 2);

	/* b's copy is overwritten: pending, the extent is a's alone again. */
	ifix_write_pattern(&f, b, 512 * KiB, 0, 4);
	m = map_all(&f, b, true);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 512 * KiB, FILE_MAP_LAST);
	ck_assert_uint_eq(refs_of(&f, &ext), 1);
	m = map_all(&f, a, false);
	expect_extent(&m, 0, 0, 1 * MiB, FILE_MAP_LAST);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_eq(refs_of(&f, &ext), 1);
	/* An extent nobody has, and one whose length is wrong. */
	uint64_t refs;
	ck_assert_int_eq(extent_refcount(&f.x.fs->ext, 4096, 4096, &refs), -ENOENT);
	ck_assert_int_eq(extent_refcount(&f.x.fs->ext, ext.extent_start, 4096, &refs), -ENOENT);
	ifix_teardown(&f);
}
END_TEST

/* Items that follow each other on disk are one extent; a piece elsewhere on disk splits it. */
START_TEST(merged_contiguous)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-merge", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	ifix_write_pattern(&f, a, 256 * KiB, 0, 10);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	/* Four clones, each continuing the last in the file and on disk: joined into one item. */
	for (uint64_t i = 0; i < 4; i++)
		ck_assert_int_eq(file_copy_range(&f.it, a, i * 64 * KiB, b, i * 64 * KiB, 64 * KiB),
				 (ssize_t)(64 * KiB));
	for (uint64_t i = 0; i < 4; i++)
		ck_assert_uint_eq(seg_at(&f, b, i * 64 * KiB).len, (4 - i) * 64 * KiB);
	struct fm m = map_all(&f, b, false);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 256 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST);
	expect_on_disk(&f, b, &m.e[0], 256 * KiB);
	/* Overwrite 4 KiB in the middle of b: it goes elsewhere, cutting the run in three. */
	ifix_write_pattern(&f, b, 4 * KiB, 100 * KiB, 20);
	m = map_all(&f, b, true);
	ck_assert_uint_eq(m.n, 3);
	expect_extent(&m, 0, 0, 100 * KiB, FILE_MAP_SHARED);
	expect_extent(&m, 1, 100 * KiB, 4 * KiB, 0);
	expect_extent(&m, 2, 104 * KiB, 152 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST);
	for (size_t i = 0; i < m.n; i++)
		expect_on_disk(&f, b, &m.e[i], 256 * KiB);
	/* a's one item is one extent too (still shared with b). */
	m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 256 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST);
	ifix_teardown(&f);
}
END_TEST

/* Up to `max` at a time, continuing from the end of the last one, gives the whole map, with
 * LAST only on the file's last extent; a start inside an extent lists that extent whole. */
START_TEST(batches_and_start)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-batch", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	for (uint64_t i = 0; i < 20; i++)
		ifix_write_pattern(&f, a, 4 * KiB, i * 8 * KiB, 30 + i);                /* 20 extents, holes between */
	struct fm all = map_all(&f, a, true);
	ck_assert_uint_eq(all.n, 20);
	for (size_t i = 0; i < all.n; i++) {
		expect_extent(&all, i, i * 8 * KiB, 4 * KiB, i == 19 ? FILE_MAP_LAST : 0);
		expect_on_disk(&f, a, &all.e[i], 160 * KiB);
	}
	for (size_t max = 1; max <= 7; max++) {
		size_t got = 0;
		uint64_t start = 0;
		for (;;) {
			struct fm m = map(&f, a, start, UINT64_MAX, false, max);
			ck_assert_uint_ge(m.n, 1);
			ck_assert_uint_le(m.n, max);
			for (size_t i = 0; i < m.n; i++, got++) {
				ck_assert_uint_lt(got, all.n);
				expect_extent(&m, i, all.e[got].logical, all.e[got].length,
					      all.e[got].flags);
				ck_assert_uint_eq(m.e[i].physical, all.e[got].physical);
			}
			if (m.e[m.n - 1].flags & FILE_MAP_LAST)
				break;
			start = m.e[m.n - 1].logical + m.e[m.n - 1].length;
		}
		ck_assert_uint_eq(got, all.n);
	}
	/* A start inside the fourth extent; an end inside the sixth. */
	struct fm m = map(&f, a, 3 * 8 * KiB + 100, 5 * 8 * KiB + 1, false, MAXX);
	ck_assert_uint_eq(m.n, 3);
	expect_extent(&m, 0, 3 * 8 * KiB, 4 * KiB, 0);
	expect_extent(&m, 2, 5 * 8 * KiB, 4 * KiB, 0);
	/* An end before the last extent: not LAST; an end inside it: LAST. */
	m = map(&f, a, 0, 19 * 8 * KiB, false, MAXX);
	ck_assert_uint_eq(m.n, 19);
	ck_assert_uint_eq(m.e[18].flags, 0);
	m = map(&f, a, 19 * 8 * KiB + 4095, 19 * 8 * KiB + 4096, false, MAXX);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 19 * 8 * KiB, 4 * KiB, FILE_MAP_LAST);
	/* Past the last extent: nothing. */
	ck_assert_uint_eq(map(&f, a, 20 * 8 * KiB, UINT64_MAX, false, MAXX).n, 0);
	ifix_teardown(&f);
}
END_TEST

/* Dirty pages are DELALLOC (physical 0) over whatever lies under them; with sync they are
 * written back first and the real extents show. */
START_TEST(delalloc_and_sync)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-delalloc", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	ifix_write_pattern(&f, a, 64 * KiB, 0, 40);
	struct fm m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 64 * KiB, FILE_MAP_DELALLOC | FILE_MAP_LAST);
	ck_assert_uint_eq(m.e[0].physical, 0);
	m = map_all(&f, a, true);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 64 * KiB, FILE_MAP_LAST);
	ck_assert_uint_ne(m.e[0].physical, 0);
	expect_on_disk(&f, a, &m.e[0], 64 * KiB);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);

	/* Dirty pages over a written extent, and past it after a hole. */
	ifix_write_pattern(&f, a, 8 * KiB, 16 * KiB, 41);
	ifix_write_pattern(&f, a, 4 * KiB, 1 * MiB, 42);
	m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 4);
	expect_extent(&m, 0, 0, 16 * KiB, 0);
	expect_extent(&m, 1, 16 * KiB, 8 * KiB, FILE_MAP_DELALLOC);
	expect_extent(&m, 2, 24 * KiB, 40 * KiB, 0);
	expect_extent(&m, 3, 1 * MiB, 4 * KiB, FILE_MAP_DELALLOC | FILE_MAP_LAST);
	/* A batch of one from inside the dirty run, then the rest. */
	m = map(&f, a, 20 * KiB, UINT64_MAX, false, 1);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 16 * KiB, 8 * KiB, FILE_MAP_DELALLOC);
	m = map_all(&f, a, true);
	ck_assert_uint_eq(m.n, 4);
	for (size_t i = 0; i < m.n; i++) {
		ck_assert_uint_eq(m.e[i].flags & FILE_MAP_DELALLOC, 0);
		expect_on_disk(&f, a, &m.e[i], 1 * MiB + 4 * KiB);
	}
	ck_assert_uint_eq(m.e[3].flags, FILE_MAP_LAST);
	/* A file that is all dirty data in an unaligned tail. */
	ifix_write_pattern(&f, b, 5000, 0, 43);
	m = map_all(&f, b, false);
	ck_assert_uint_eq(m.n, 1);
	expect_extent(&m, 0, 0, 8 * KiB, FILE_MAP_DELALLOC | FILE_MAP_LAST);
	ifix_teardown(&f);
}
END_TEST

static void punch(struct ifix *f, uint64_t ino, uint64_t off, uint64_t len)
{
	ck_assert_int_eq(file_fallocate(&f->it, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					off, len), 0);
}

static void clone_in(struct ifix *f, uint64_t in, uint64_t off_in, uint64_t out,
		     uint64_t off_out, uint64_t len)
{
	uint64_t cloned = 0;

	ck_assert_int_eq(file_clone_range(&f->it, in, off_in, out, off_out, len, &cloned), 0);
	ck_assert_uint_eq(cloned, len);
}

struct want {
	uint64_t logical, length;
	unsigned flags;
};

/* The file's map is w[0..n) now (references pending), and again once they are committed. */
static void expect_map_across_commit(struct ifix *f, uint64_t ino, const struct want *w,
				     size_t n)
{
	for (int committed = 0; committed < 2; committed++) {
		struct fm m = map_all(f, ino, false);
		ck_assert_uint_eq(m.n, n);
		for (size_t i = 0; i < n; i++)
			expect_extent(&m, i, w[i].logical, w[i].length, w[i].flags);
		if (!committed)
			ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	}
}

static void expect_none_shared(const struct fm *m)
{
	for (size_t i = 0; i < m->n; i++)
		ck_assert_uint_eq(m->e[i].flags & FILE_MAP_SHARED, 0);
}

/* What a 1 MiB extent with [256 KiB, 512 KiB) punched out of it maps as. */
#define PUNCHED_HEAD { 0, 256 * KiB, 0 }
#define PUNCHED_TAIL { 512 * KiB, 512 * KiB, FILE_MAP_LAST }

/* The pieces a punch and an overwrite leave of one file's extent are references of their own
 * (refcount 3) but share nothing: not SHARED, as on xfs; pending and committed alike, and for
 * an extent written in the running transaction (dref head only) too. */
START_TEST(punched_extent_not_shared)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-punch", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	ifix_write_pattern(&f, a, 1 * MiB, 0, 50);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct fmap_seg ext = seg_at(&f, a, 0);
	punch(&f, a, 256 * KiB, 256 * KiB);
	ck_assert_uint_eq(refs_of(&f, &ext), 2);                     /* pending */
	ck_assert_uint_eq(seg_at(&f, a, 512 * KiB).disk, ext.extent_start + 512 * KiB);
	expect_map_across_commit(&f, a, (struct want[]){ PUNCHED_HEAD, PUNCHED_TAIL }, 2);
	ifix_write_pattern(&f, a, 64 * KiB, 640 * KiB, 51);                          /* overwrite in the middle */
	struct fm m = map_all(&f, a, true);
	ck_assert_uint_eq(refs_of(&f, &ext), 3);
	expect_map_across_commit(&f, a, (struct want[]){ PUNCHED_HEAD, { 512 * KiB, 128 * KiB, 0 },
				 { 640 * KiB, 64 * KiB, 0 }, { 704 * KiB, 320 * KiB, FILE_MAP_LAST } }, 4);
	ck_assert_uint_eq(refs_of(&f, &ext), 3);                     /* committed */
	m = map_all(&f, a, false);
	for (size_t i = 0; i < m.n; i++)
		expect_on_disk(&f, a, &m.e[i], 1 * MiB);

	/* Written and punched in one transaction: the extent is known to its dref head only. */
	ifix_write_pattern(&f, b, 1 * MiB, 0, 52);
	ck_assert_uint_eq(map_all(&f, b, true).n, 1);
	struct fmap_seg fresh = seg_at(&f, b, 0);
	struct extent_info info;
	ck_assert_int_eq(extent_lookup(&f.x.fs->ext, fresh.extent_start, fresh.extent_len, &info),
			 -ENOENT);
	punch(&f, b, 256 * KiB, 256 * KiB);
	ck_assert_uint_eq(refs_of(&f, &fresh), 2);
	m = map_all(&f, b, false);
	ck_assert_uint_eq(m.n, 2);
	expect_none_shared(&m);
	/* ... and a clone of part of it within b, still in that transaction, shares. */
	clone_in(&f, b, 0, b, 2 * MiB, 64 * KiB);
	expect_map_across_commit(&f, b, (struct want[]){ { 0, 256 * KiB, FILE_MAP_SHARED },
				 { 512 * KiB, 512 * KiB, 0 },
				 { 2 * MiB, 64 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST } }, 3);
	ifix_teardown(&f);
}
END_TEST

/* A clone into another file makes the extent SHARED in both, all of it (another file holds
 * it, as btrfs reports it); removing the clone makes it the file's own again, pending and
 * committed. */
START_TEST(clone_to_other_file_shared)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-clone-other", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	ifix_write_pattern(&f, a, 1 * MiB, 0, 60);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	punch(&f, a, 256 * KiB, 256 * KiB);
	clone_in(&f, a, 512 * KiB, b, 1 * MiB, 128 * KiB);
	expect_map_across_commit(&f, b, (struct want[]){
				 { 1 * MiB, 128 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST } }, 1);
	expect_map_across_commit(&f, a, (struct want[]){ { 0, 256 * KiB, FILE_MAP_SHARED },
				 { 512 * KiB, 512 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST } }, 2);
	/* The clone goes (b's item is deleted; its reference is dropped pending). */
	punch(&f, b, 1 * MiB, 128 * KiB);
	expect_map_across_commit(&f, a, (struct want[]){ PUNCHED_HEAD, PUNCHED_TAIL }, 2);
	ifix_teardown(&f);
}
END_TEST

/* A clone within one file at another offset shares the bytes it maps twice: both places are
 * SHARED, and only they. Punching the clone away ends the sharing, pending and committed. Once
 * the source's bytes are overwritten, the clone is the only map of them and nothing is shared,
 * though every item still refers to the one extent. */
START_TEST(clone_within_file_shared)
{
	struct ifix f;

	ifix_setup(&f, "fiemap-clone-self", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	ifix_write_pattern(&f, a, 1 * MiB, 0, 70);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct fmap_seg ext = seg_at(&f, a, 0);
	punch(&f, a, 256 * KiB, 256 * KiB);
	clone_in(&f, a, 640 * KiB, a, 2 * MiB, 64 * KiB);            /* from the second piece */
	ck_assert_uint_eq(seg_at(&f, a, 2 * MiB).disk, ext.extent_start + 640 * KiB);
	expect_map_across_commit(&f, a, (struct want[]){ PUNCHED_HEAD,
				 { 512 * KiB, 512 * KiB, FILE_MAP_SHARED },
				 { 2 * MiB, 64 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST } }, 3);
	punch(&f, a, 2 * MiB, 64 * KiB);
	expect_map_across_commit(&f, a, (struct want[]){ PUNCHED_HEAD, PUNCHED_TAIL }, 2);

	/* Cloned again, then the source range overwritten: same extent, different bytes. */
	clone_in(&f, a, 0, a, 4 * MiB, 128 * KiB);
	ifix_write_pattern(&f, a, 128 * KiB, 0, 71);
	struct fm m = map_all(&f, a, true);
	ck_assert_uint_eq(m.n, 4);
	ck_assert_uint_eq(refs_of(&f, &ext), 3);
	expect_none_shared(&m);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	m = map_all(&f, a, false);
	ck_assert_uint_eq(m.n, 4);
	expect_none_shared(&m);
	for (size_t i = 0; i < m.n; i++)
		expect_on_disk(&f, a, &m.e[i], 4 * MiB + 128 * KiB);
	ifix_teardown(&f);
}
END_TEST

/* An extent cut into 64 pieces by overwrites of every other page, and one of its pieces cloned
 * within the file: that piece and the clone are SHARED, no other (each piece is answered from
 * what was read of the extent once, and looked up by its own bytes); mapped one extent a call,
 * the same. */
START_TEST(many_pieces_one_cloned)
{
	struct ifix f;
	struct want w[129];

	ifix_setup(&f, "fiemap-pieces", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	ifix_write_pattern(&f, a, 512 * KiB, 0, 80);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	for (uint64_t p = 1; p < 128; p += 2)
		ifix_write_pattern(&f, a, 4 * KiB, p * 4 * KiB, 81 + p);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	clone_in(&f, a, 40 * KiB, a, 1 * MiB, 4 * KiB);              /* page 10: the extent's */
	for (size_t i = 0; i < 128; i++)
		w[i] = (struct want){ i * 4 * KiB, 4 * KiB, i == 10 ? FILE_MAP_SHARED : 0 };
	w[128] = (struct want){ 1 * MiB, 4 * KiB, FILE_MAP_SHARED | FILE_MAP_LAST };
	expect_map_across_commit(&f, a, w, 129);
	for (size_t i = 0; i < 129; i++) {
		struct fm one = map(&f, a, w[i].logical, UINT64_MAX, false, 1);
		ck_assert_uint_eq(one.n, 1);
		expect_extent(&one, 0, w[i].logical, w[i].length, w[i].flags);
	}
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fiemap");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, holes_and_preallocated);
	tcase_add_test(tc, shared_and_refcounts);
	tcase_add_test(tc, merged_contiguous);
	tcase_add_test(tc, batches_and_start);
	tcase_add_test(tc, delalloc_and_sync);
	tcase_add_test(tc, punched_extent_not_shared);
	tcase_add_test(tc, clone_to_other_file_shared);
	tcase_add_test(tc, clone_within_file_shared);
	tcase_add_test(tc, many_pieces_one_cloned);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
