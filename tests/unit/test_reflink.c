/*
 * Reflink and dedupe at the fs level (file.h: file_clone_range, file_dedupe_range,
 * file_set_reflink, file_get_share_stats): the kernel's FICLONERANGE and FIDEDUPERANGE rules
 * (each case checked against XFS on Linux 6.18 with xfs_io's ioctls), the OpenZFS 2.2 bug
 * class (clones of data not yet written back or committed, read byte for byte), dedupe
 * compared on disk under the lock, exact refcounts (the whole-filesystem checker after every
 * test, extent items looked up where a count matters), space coming back when the last
 * reference goes, the noreflink switch and the counters.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/extent/extent.h"
#include "fs/extent/extent_format.h"
#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/inode.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define MiB (1ull << 20)
#define PS 4096u

static uint64_t mkfile(struct ifix *f, const char *name)
{
	return ifix_mk(f, ROOT, name, S_IFREG | 0644);
}

static void wr(struct ifix *f, uint64_t ino, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = file_write(&f->it, ino, buf, len, off, 0);

	REQUIRE(n == (ssize_t)len, "write %zu at %" PRIu64 ": %zd", len, off, n);
}

/* A file of `size` bytes from `seed`; its bytes in *data (malloc'd) if data is not NULL. */
static uint64_t mkdata(struct ifix *f, const char *name, size_t size, uint64_t seed,
		       uint8_t **data)
{
	uint64_t ino = mkfile(f, name);
	uint8_t *buf = malloc(size ? size : 1);

	rng_fill(buf, size, seed);
	if (size)
		wr(f, ino, buf, size, 0);
	if (data)
		*data = buf;
	else
		free(buf);
	return ino;
}

/* The whole file must be exactly `want` (size and every byte). */
static void expect_file(struct ifix *f, uint64_t ino, const uint8_t *want, size_t size)
{
	uint8_t *got = malloc(size + 1);
	ssize_t n = file_read(&f->it, ino, got, size + 1, 0);

	ck_assert_uint_eq(ifix_attr(f, ino).size, size);
	REQUIRE(n == (ssize_t)size, "read of ino %" PRIu64 ": %zd, want %zu", ino, n, size);
	for (size_t i = 0; i < size; i++)
		REQUIRE(got[i] == want[i], "ino %" PRIu64 " byte %zu: %u, want %u", ino, i, got[i],
			want[i]);
	free(got);
}

static int reflink(struct ifix *f, uint64_t in, uint64_t off_in, uint64_t out, uint64_t off_out,
		 uint64_t len, uint64_t *cloned)
{
	return file_clone_range(&f->it, in, off_in, out, off_out, len, cloned);
}

/* A clone that must fail with `err` and change nothing. */
static void clone_fails(struct ifix *f, uint64_t in, uint64_t off_in, uint64_t out,
			uint64_t off_out, uint64_t len, int err)
{
	uint64_t cloned = 99;

	IFIX_EXPECT_UNCHANGED(f, reflink(f, in, off_in, out, off_out, len, &cloned), err);
	ck_assert_uint_eq(cloned, 0);
}

/* Dedupe of one destination: its status; *deduped the bytes now shared. */
static int dedupe1(struct ifix *f, uint64_t src, uint64_t off, uint64_t len, uint64_t dst,
		   uint64_t dst_off, uint64_t *deduped)
{
	struct file_dedupe_dest d = { .ino = dst, .off = dst_off, .deduped = 77, .status = 77 };

	ck_assert_int_eq(file_dedupe_range(&f->it, src, off, len, &d, 1), 0);
	*deduped = d.deduped;
	return d.status;
}

/* A dedupe whose only destination gets `status` and whose fs tree stays exactly as it was. */
static void dedupe_unchanged(struct ifix *f, uint64_t src, uint64_t off, uint64_t len,
			     uint64_t dst, uint64_t dst_off, int status)
{
	uint64_t deduped = 0;
	int got;

	IFIX_EXPECT_UNCHANGED(f, (got = dedupe1(f, src, off, len, dst, dst_off, &deduped)), got);
	ck_assert_int_eq(got, status);
	ck_assert_uint_eq(deduped, 0);
}

/* Commit, then both checkers: exact refcounts and backrefs of every extent, the namespace.
 * (The checker sees extents written back in the running transaction only once committed.) */
static void check(struct ifix *f)
{
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	ifix_check(f);
}

static struct fmap_seg seg_at(struct ifix *f, uint64_t ino, uint64_t off)
{
	struct fmap_seg seg;

	ck_assert_int_eq(fmap_lookup(&f->it, ino, off, off + PS, &seg), 0);
	return seg;
}

/* References of the data extent under [off, off + 1) of ino, once committed. */
static uint64_t refs_at(struct ifix *f, uint64_t ino, uint64_t off)
{
	struct extent_info info;

	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	struct fmap_seg seg = seg_at(f, ino, off);
	ck_assert_int_eq(seg.kind, FMAP_DATA);
	ck_assert_int_eq(extent_lookup(&f->x.fs->ext, seg.extent_start, seg.extent_len, &info), 0);
	return info.refs;
}

static int count_shared(void *arg, const struct extent_info *e)
{
	uint64_t *n = arg;

	if ((e->flags & EXTENT_FLAG_DATA) && e->refs > 1)
		(*n)++;
	return 0;
}

/* Committed data extents with more than one reference. */
static uint64_t shared_extents(struct ifix *f)
{
	uint64_t n = 0;

	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	ck_assert_int_eq(extent_walk(&f->x.fs->ext, &(struct extent_walk){
		.extent_fn = count_shared, .arg = &n }), 0);
	return n;
}

static int64_t free_bytes(struct ifix *f)
{
	struct cowfs_statfs st;

	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	cowfs_statfs(f->x.fs, &st);
	return (int64_t)st.free;
}

/* What changes besides data: tree blocks, a few of them. */
#define TREE_SLACK ((int64_t)MiB)

static void set_read_only(struct ifix *f, bool ro)
{
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);

	f->x.fs->read_only = ro;
	cowfs_trans_end(tx, 0);
}

static struct file_share_stats stats(struct ifix *f)
{
	struct file_share_stats s;

	file_get_share_stats(&f->it, &s);
	return s;
}

/* ---- clone: the kernel's rules --------------------------------------------------------------- */

/* Source of 10000 bytes (two sectors and 1808 bytes): the cases run on XFS. */
START_TEST(clone_lengths_and_ends)
{
	struct ifix f;
	uint8_t *s_data, *d_data, *want = malloc(200000);
	uint64_t cloned;

	ifix_setup(&f, "reflink-ends", 128 * MiB, 16384);
	uint64_t s = mkdata(&f, "s", 10000, 1, &s_data);
	/* len 0: to the source's end of file. */
	uint64_t d = mkfile(&f, "d1");
	ck_assert_int_eq(reflink(&f, s, 0, d, 0, 0, &cloned), 0);
	ck_assert_uint_eq(cloned, 10000);
	expect_file(&f, d, s_data, 10000);
	/* len 0 at the end: nothing, successfully (before any alignment check, as Linux). */
	d = mkfile(&f, "d2");
	IFIX_EXPECT_UNCHANGED(&f, reflink(&f, s, 10000, d, 0, 0, &cloned), 0);
	ck_assert_uint_eq(cloned, 0);
	/* Past the end, or running past it (a clone is never shortened). */
	clone_fails(&f, s, 12288, d, 0, 0, -EINVAL);
	clone_fails(&f, s, 12288, d, 0, 4096, -EINVAL);
	clone_fails(&f, s, 8192, d, 0, 4096, -EINVAL);
	clone_fails(&f, s, 0, d, 0, 20000, -EINVAL);
	/* An unaligned length that does not end at the source's end of file. */
	clone_fails(&f, s, 0, d, 0, 4000, -EINVAL);
	/* The source's last, partial sector into the middle of a destination would zero the
	 * destination's bytes past the source's end in it. */
	d = mkdata(&f, "d7", 100000, 2, &d_data);
	clone_fails(&f, s, 4096, d, 0, 10000 - 4096, -EINVAL);
	clone_fails(&f, s, 4096, d, 8192, 0, -EINVAL);
	/* ... allowed where it ends at or past the destination's end. */
	free(d_data);
	d = mkdata(&f, "d8", 6000, 3, &d_data);
	ck_assert_int_eq(reflink(&f, s, 4096, d, 4096, 10000 - 4096, &cloned), 0);
	ck_assert_uint_eq(cloned, 10000 - 4096);
	memcpy(want, d_data, 4096);
	memcpy(want + 4096, s_data + 4096, 10000 - 4096);
	expect_file(&f, d, want, 10000);
	free(d_data);
	d = mkdata(&f, "d8b", 6000, 4, &d_data);
	clone_fails(&f, s, 8192, d, 4096, 10000 - 8192, -EINVAL);   /* ends at 5904 < 6000 */
	/* The same with the destination's end exactly at the clone's end: allowed. */
	free(d_data);
	d = mkdata(&f, "d8c", 5904, 4, &d_data);
	ck_assert_int_eq(reflink(&f, s, 8192, d, 4096, 10000 - 8192, &cloned), 0);
	memcpy(want, d_data, 4096);
	memcpy(want + 4096, s_data + 8192, 10000 - 8192);
	expect_file(&f, d, want, 5904);
	/* Aligned offsets only. */
	clone_fails(&f, s, 100, d, 0, 4096, -EINVAL);
	clone_fails(&f, s, 0, d, 100, 4096, -EINVAL);
	/* Past the destination's end: a hole before the clone. */
	d = mkfile(&f, "d11");
	ck_assert_int_eq(reflink(&f, s, 0, d, 65536, 4096, &cloned), 0);
	memset(want, 0, 65536);
	memcpy(want + 65536, s_data, 4096);
	expect_file(&f, d, want, 65536 + 4096);
	/* The size limit: an offset at it is too big, a range running past it would be cut. */
	clone_fails(&f, s, 0, d, FILE_SIZE_MAX, 4096, -EFBIG);
	clone_fails(&f, s, 0, d, FILE_SIZE_MAX - 4096, 8192, -EINVAL);
	clone_fails(&f, s, 0, d, UINT64_MAX - 4095, 8192, -EINVAL);   /* wraps */
	ck_assert_int_eq(reflink(&f, s, 0, d, FILE_SIZE_MAX - 4096, 4096, &cloned), 0);
	ck_assert_uint_eq(ifix_attr(&f, d).size, FILE_SIZE_MAX);
	uint8_t tail[4096];
	ck_assert_int_eq(file_read(&f.it, d, tail, 4096, FILE_SIZE_MAX - 4096), 4096);
	ck_assert_int_eq(memcmp(tail, s_data, 4096), 0);
	check(&f);
	free(s_data);
	free(d_data);
	free(want);
	ifix_teardown(&f);
}
END_TEST

START_TEST(clone_same_file_types_and_errors)
{
	struct ifix f;
	uint8_t *t_data, *want = malloc(131072);
	uint64_t cloned;

	ifix_setup(&f, "reflink-kinds", 128 * MiB, 16384);
	uint64_t t = mkdata(&f, "t", 65536, 5, &t_data);
	/* The same file: overlapping ranges refused, others fine. */
	clone_fails(&f, t, 0, t, 4096, 8192, -EINVAL);
	clone_fails(&f, t, 8192, t, 4096, 8192, -EINVAL);
	ck_assert_int_eq(reflink(&f, t, 0, t, 16384, 8192, &cloned), 0);
	memcpy(want, t_data, 65536);
	memcpy(want + 16384, t_data, 8192);
	expect_file(&f, t, want, 65536);
	ck_assert_int_eq(reflink(&f, t, 0, t, 65536, 0, &cloned), 0);
	ck_assert_uint_eq(cloned, 65536);
	memcpy(want + 65536, want, 65536);
	expect_file(&f, t, want, 131072);
	/* Directories, other kinds, missing inodes, a read-only filesystem. */
	uint64_t dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	uint64_t fifo = ifix_mk(&f, ROOT, "fifo", S_IFIFO | 0644);
	uint64_t e = mkfile(&f, "e");
	clone_fails(&f, t, 0, dir, 0, 4096, -EISDIR);
	clone_fails(&f, dir, 0, e, 0, 4096, -EISDIR);
	clone_fails(&f, fifo, 0, e, 0, 4096, -EINVAL);
	clone_fails(&f, t, 0, fifo, 0, 4096, -EINVAL);
	clone_fails(&f, t, 0, 999999, 0, 4096, -ENOENT);
	clone_fails(&f, 999999, 0, e, 0, 4096, -ENOENT);
	set_read_only(&f, true);
	clone_fails(&f, t, 0, e, 0, 4096, -EROFS);
	set_read_only(&f, false);
	ck_assert_uint_eq(ifix_attr(&f, e).size, 0);
	free(t_data);
	free(want);
	ifix_teardown(&f);
}
END_TEST

/* A clone changes the destination's mtime and ctime, never the source's; a dedupe neither. */
START_TEST(clone_and_dedupe_times)
{
	struct ifix f;
	struct cowfs_attr old = { .mtime = { 1, 0 } };
	uint64_t cloned, deduped;

	ifix_setup(&f, "reflink-times", 64 * MiB, 16384);
	uint64_t s = mkdata(&f, "s", 3 * PS, 6, NULL), d = mkdata(&f, "d", 3 * PS, 6, NULL);
	ck_assert_int_eq(inode_setattr(&f.it, s, INODE_SET_MTIME, &old), 0);
	ck_assert_int_eq(inode_setattr(&f.it, d, INODE_SET_MTIME, &old), 0);
	struct cowfs_attr s0 = ifix_attr(&f, s), d0 = ifix_attr(&f, d);
	ck_assert_int_eq(dedupe1(&f, s, 0, 3 * PS, d, 0, &deduped), FILE_DEDUPE_SAME);
	struct cowfs_attr d1 = ifix_attr(&f, d);
	ck_assert_int_eq(d1.mtime.tv_sec, 1);
	ck_assert(d1.ctime.tv_sec == d0.ctime.tv_sec && d1.ctime.tv_nsec == d0.ctime.tv_nsec);
	ck_assert_int_eq(reflink(&f, s, 0, d, PS, PS, &cloned), 0);
	struct cowfs_attr s2 = ifix_attr(&f, s), d2 = ifix_attr(&f, d);
	ck_assert_int_ne(d2.mtime.tv_sec, 1);
	ck_assert(d2.ctime.tv_sec > d0.ctime.tv_sec ||
		  (d2.ctime.tv_sec == d0.ctime.tv_sec && d2.ctime.tv_nsec >= d0.ctime.tv_nsec));
	ck_assert_int_eq(s2.mtime.tv_sec, 1);
	ck_assert(s2.ctime.tv_sec == s0.ctime.tv_sec && s2.ctime.tv_nsec == s0.ctime.tv_nsec);
	ifix_teardown(&f);
}
END_TEST

/* ---- clone: the OpenZFS 2.2 bug class -------------------------------------------------------- */

/* Written, then cloned at once (the data still in dirty pages, nothing committed). */
START_TEST(clone_of_unwritten_back_data)
{
	struct ifix f;
	size_t size = 3 * MiB + 777;
	uint8_t *data;
	uint64_t cloned;

	ifix_setup(&f, "reflink-dirty", 128 * MiB, 16384);
	uint64_t gen = cowfs_generation(f.x.fs);
	uint64_t s = mkdata(&f, "s", size, 7, &data), d = mkfile(&f, "d");
	ck_assert_int_eq(reflink(&f, s, 0, d, 0, 0, &cloned), 0);
	ck_assert_uint_eq(cloned, size);
	ck_assert_uint_eq(cowfs_generation(f.x.fs), gen);   /* no commit happened */
	expect_file(&f, d, data, size);
	expect_file(&f, s, data, size);
	/* Shared, not copied: both map the same disk bytes. */
	for (uint64_t off = 0; off < size; off += 256 * 1024)
		ck_assert_uint_eq(seg_at(&f, s, off).disk, seg_at(&f, d, off).disk);
	ck_assert_uint_ge(shared_extents(&f), 1);
	ck_assert_uint_eq(refs_at(&f, d, 0), 2);
	check(&f);
	ifix_reopen(&f);
	expect_file(&f, d, data, size);
	expect_file(&f, s, data, size);
	free(data);
	ifix_teardown(&f);
}
END_TEST

/* Cloned, then the source overwritten (before and after a commit): the clone keeps its bytes. */
START_TEST(clone_then_overwrite_source)
{
	struct ifix f;
	size_t size = 2 * MiB;
	uint8_t *data, *s_now, patch[3 * PS + 5];
	uint64_t cloned;

	ifix_setup(&f, "reflink-overwrite", 128 * MiB, 16384);
	uint64_t s = mkdata(&f, "s", size, 8, &data), d = mkfile(&f, "d");
	s_now = malloc(size);
	memcpy(s_now, data, size);
	ck_assert_int_eq(reflink(&f, s, 0, d, 0, 0, &cloned), 0);
	rng_fill(patch, sizeof(patch), 9);
	wr(&f, s, patch, sizeof(patch), 4096 + 100);
	memcpy(s_now + 4096 + 100, patch, sizeof(patch));
	expect_file(&f, s, s_now, size);
	expect_file(&f, d, data, size);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	expect_file(&f, s, s_now, size);
	expect_file(&f, d, data, size);
	/* And the clone overwritten: the source keeps its bytes. */
	wr(&f, d, patch, sizeof(patch), MiB);
	memcpy(data + MiB, patch, sizeof(patch));
	expect_file(&f, s, s_now, size);
	expect_file(&f, d, data, size);
	check(&f);
	ifix_reopen(&f);
	expect_file(&f, s, s_now, size);
	expect_file(&f, d, data, size);
	free(data);
	free(s_now);
	ifix_teardown(&f);
}
END_TEST

/* SEEK_DATA / SEEK_HOLE over a clone of data just written, with a hole in it. */
START_TEST(clone_then_seek)
{
	struct ifix f;
	uint8_t *buf = malloc(MiB), *want = calloc(1, 3 * MiB);
	uint64_t cloned, at;

	ifix_setup(&f, "reflink-seek", 128 * MiB, 16384);
	uint64_t s = mkfile(&f, "s"), d = mkfile(&f, "d");
	rng_fill(buf, MiB, 10);
	wr(&f, s, buf, MiB, 0);
	wr(&f, s, buf, MiB, 2 * MiB);
	memcpy(want, buf, MiB);
	memcpy(want + 2 * MiB, buf, MiB);
	ck_assert_int_eq(reflink(&f, s, 0, d, 0, 0, &cloned), 0);
	ck_assert_uint_eq(cloned, 3 * MiB);
	ck_assert_int_eq(file_seek(&f.it, d, 0, SEEK_DATA, &at), 0);
	ck_assert_uint_eq(at, 0);
	ck_assert_int_eq(file_seek(&f.it, d, 0, SEEK_HOLE, &at), 0);
	ck_assert_uint_eq(at, MiB);
	ck_assert_int_eq(file_seek(&f.it, d, MiB, SEEK_DATA, &at), 0);
	ck_assert_uint_eq(at, 2 * MiB);
	ck_assert_int_eq(file_seek(&f.it, d, 2 * MiB, SEEK_HOLE, &at), 0);
	ck_assert_uint_eq(at, 3 * MiB);
	ck_assert_int_eq(file_seek(&f.it, d, 3 * MiB, SEEK_DATA, &at), -ENXIO);
	expect_file(&f, d, want, 3 * MiB);
	free(buf);
	free(want);
	ifix_teardown(&f);
}
END_TEST

/* Clone and dedupe, then the process dies before the commit (both as last committed) or after
 * it (both as they were), and reopened cleanly. */
START_TEST(clone_dedupe_crash_and_reopen)
{
	struct ifix f;
	size_t size = MiB + 300;
	uint8_t *a_data, *zero = calloc(1, size);
	uint64_t cloned, deduped;

	ifix_setup(&f, "reflink-crash", 128 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", size, 11, &a_data), b = mkfile(&f, "b");
	uint64_t c = mkdata(&f, "c", size, 11, NULL);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(reflink(&f, a, 0, b, 0, 0, &cloned), 0);
	ck_assert_int_eq(dedupe1(&f, a, 0, size, c, 0, &deduped), FILE_DEDUPE_SAME);
	ifix_crash_reopen(&f);
	expect_file(&f, a, a_data, size);
	expect_file(&f, b, zero, 0);
	expect_file(&f, c, a_data, size);
	ck_assert_uint_ne(seg_at(&f, a, 0).disk, seg_at(&f, c, 0).disk);
	check(&f);
	ck_assert_int_eq(reflink(&f, a, 0, b, 0, 0, &cloned), 0);
	ck_assert_int_eq(dedupe1(&f, a, 0, size, c, 0, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, size);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_crash_reopen(&f);
	expect_file(&f, a, a_data, size);
	expect_file(&f, b, a_data, size);
	expect_file(&f, c, a_data, size);
	ck_assert_uint_eq(refs_at(&f, a, 0), 3);
	check(&f);
	ifix_reopen(&f);
	expect_file(&f, b, a_data, size);
	expect_file(&f, c, a_data, size);
	free(a_data);
	free(zero);
	ifix_teardown(&f);
}
END_TEST

/* ---- refcounts and space --------------------------------------------------------------------- */

/* The space of a shared extent comes back only with its last reference. */
START_TEST(space_returned_with_last_reference)
{
	struct ifix f;
	size_t size = 8 * MiB;
	uint64_t cloned;

	ifix_setup(&f, "reflink-space", 128 * MiB, 16384);
	int64_t empty = free_bytes(&f);
	uint64_t a = mkdata(&f, "a", size, 12, NULL), b = mkfile(&f, "b");
	int64_t with_a = free_bytes(&f);
	ck_assert_int_ge(empty - with_a, (int64_t)size);
	ck_assert_int_eq(reflink(&f, a, 0, b, 0, 0, &cloned), 0);
	int64_t with_b = free_bytes(&f);
	/* The clone took tree blocks at most, no data space. */
	ck_assert_int_lt(llabs(with_a - with_b), TREE_SLACK);
	ck_assert_uint_eq(refs_at(&f, b, 0), 2);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "a", 1), 0);
	int64_t without_a = free_bytes(&f);
	ck_assert_int_lt(llabs(without_a - with_b), TREE_SLACK);   /* still referenced by b */
	ck_assert_uint_eq(refs_at(&f, b, 0), 1);
	check(&f);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "b", 1), 0);
	int64_t gone = free_bytes(&f);
	ck_assert_int_ge(gone - without_a, (int64_t)size);
	ck_assert_int_lt(llabs(gone - empty), TREE_SLACK);
	ifix_teardown(&f);
}
END_TEST

/* Dedupe frees the destination's old extent: the space comes back at once. */
START_TEST(dedupe_returns_space)
{
	struct ifix f;
	size_t size = 8 * MiB;
	uint64_t deduped;

	ifix_setup(&f, "reflink-dedupe-space", 128 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", size, 13, NULL), b = mkdata(&f, "b", size, 13, NULL);
	int64_t before = free_bytes(&f);
	ck_assert_uint_eq(shared_extents(&f), 0);
	ck_assert_int_eq(dedupe1(&f, a, 0, size, b, 0, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, size);
	int64_t after = free_bytes(&f);
	ck_assert_int_gt(after - before, (int64_t)size - TREE_SLACK);
	ck_assert_uint_eq(refs_at(&f, a, 0), 2);
	ck_assert_uint_eq(refs_at(&f, b, size - 1), 2);
	ck_assert_uint_eq(ifix_attr(&f, b).blocks * 512, ifix_attr(&f, a).blocks * 512);
	check(&f);
	ifix_teardown(&f);
}
END_TEST

/* ---- dedupe ---------------------------------------------------------------------------------- */

/* The FIDEDUPERANGE rules (the source of 10000 bytes, as on XFS). */
START_TEST(dedupe_rules)
{
	struct ifix f;
	uint8_t *s_data;
	uint64_t deduped;

	ifix_setup(&f, "reflink-dedupe-rules", 128 * MiB, 16384);
	uint64_t s = mkdata(&f, "s", 10000, 14, &s_data);
	uint64_t e1 = mkdata(&f, "e1", 10000, 14, NULL);
	uint64_t e3 = mkdata(&f, "e3", 8000, 14, NULL);
	uint64_t e4 = mkfile(&f, "e4");
	wr(&f, e4, s_data, 10000, 0);
	wr(&f, e4, s_data, 10000, 10000);
	uint64_t e11 = mkdata(&f, "e11", 3000, 14, NULL);
	uint64_t dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	/* What concerns the source fails the whole call. */
	struct file_dedupe_dest d = { .ino = e1 };
	IFIX_EXPECT_UNCHANGED(&f, file_dedupe_range(&f.it, s, 0, 10001, &d, 1), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, file_dedupe_range(&f.it, s, 12288, 4096, &d, 1), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, file_dedupe_range(&f.it, dir, 0, 4096, &d, 1), -EISDIR);
	set_read_only(&f, true);
	IFIX_EXPECT_UNCHANGED(&f, file_dedupe_range(&f.it, s, 0, 4096, &d, 1), -EROFS);
	set_read_only(&f, false);
	/* Per destination: out of its size, unaligned offsets (the source's too), at its end,
	 * a directory, nothing there. */
	dedupe_unchanged(&f, s, 0, 10000, e3, 0, -EINVAL);
	dedupe_unchanged(&f, s, 0, 4096, e1, 100, -EINVAL);
	dedupe_unchanged(&f, s, 100, 4096, e1, 0, -EINVAL);
	dedupe_unchanged(&f, s, 0, 4096, e1, 10000, -EINVAL);
	dedupe_unchanged(&f, s, 0, 4096, dir, 0, -EISDIR);
	dedupe_unchanged(&f, s, 0, 4096, 999999, 0, -ENOENT);
	/* Length 0: nothing to do, the same (even where the offsets are unaligned). */
	dedupe_unchanged(&f, s, 0, 0, e1, 0, FILE_DEDUPE_SAME);
	dedupe_unchanged(&f, s, 10000, 0, e1, 100, FILE_DEDUPE_SAME);
	/* Cut to whole sectors unless both ranges end at both files' ends. */
	ck_assert_int_eq(dedupe1(&f, s, 0, 10000, e4, 0, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, 8192);
	ck_assert_uint_eq(seg_at(&f, s, 0).disk, seg_at(&f, e4, 0).disk);
	ck_assert_uint_ne(seg_at(&f, s, 8192).disk, seg_at(&f, e4, 8192).disk);
	dedupe_unchanged(&f, s, 0, 3000, e11, 0, FILE_DEDUPE_SAME);   /* cut to 0 */
	ck_assert_int_eq(dedupe1(&f, s, 0, 10000, e1, 0, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, 10000);
	ck_assert_uint_eq(seg_at(&f, s, 8192).disk, seg_at(&f, e1, 8192).disk);
	expect_file(&f, e1, s_data, 10000);
	/* The same file: overlapping ranges refused, others fine. */
	uint64_t t = mkfile(&f, "t");
	wr(&f, t, s_data, 8192, 0);
	wr(&f, t, s_data, 8192, 16384);
	dedupe_unchanged(&f, t, 0, 8192, t, 4096, -EINVAL);
	ck_assert_int_eq(dedupe1(&f, t, 0, 8192, t, 16384, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, 8192);
	ck_assert_uint_eq(seg_at(&f, t, 4096).disk, seg_at(&f, t, 16384 + 4096).disk);
	check(&f);
	free(s_data);
	ifix_teardown(&f);
}
END_TEST

/* Several destinations in one call, each with its own status. */
START_TEST(dedupe_many_destinations)
{
	struct ifix f;
	size_t size = 256 * 1024;
	uint8_t *data;

	ifix_setup(&f, "reflink-dedupe-many", 128 * MiB, 16384);
	uint64_t s = mkdata(&f, "s", size, 15, &data);
	uint64_t same1 = mkfile(&f, "same1"), same2 = mkfile(&f, "same2");
	wr(&f, same1, data, size, 0);
	wr(&f, same2, data, size, 0);
	uint64_t other = mkdata(&f, "other", size, 16, NULL);
	uint64_t dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	struct file_dedupe_dest d[4] = { { .ino = same1 }, { .ino = other }, { .ino = dir },
					 { .ino = same2 } };
	ck_assert_int_eq(file_dedupe_range(&f.it, s, 0, size, d, 4), 0);
	ck_assert_int_eq(d[0].status, FILE_DEDUPE_SAME);
	ck_assert_uint_eq(d[0].deduped, size);
	ck_assert_int_eq(d[1].status, FILE_DEDUPE_DIFFERS);
	ck_assert_uint_eq(d[1].deduped, 0);
	ck_assert_int_eq(d[2].status, -EISDIR);
	ck_assert_int_eq(d[3].status, FILE_DEDUPE_SAME);
	ck_assert_uint_eq(refs_at(&f, s, 0), 3);
	ck_assert_uint_eq(refs_at(&f, other, 0), 1);
	expect_file(&f, same1, data, size);
	expect_file(&f, same2, data, size);
	free(data);
	ifix_teardown(&f);
}
END_TEST

/* Differing and partly identical ranges: a difference anywhere (even the last byte) shares
 * nothing; the identical part alone dedupes. */
START_TEST(dedupe_differing_and_partly_identical)
{
	struct ifix f;
	size_t size = 3 * MiB;
	uint8_t *data, *b_data;
	uint64_t deduped;

	ifix_setup(&f, "reflink-dedupe-differs", 128 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", size, 17, &data), b = mkfile(&f, "b");
	b_data = malloc(size);
	memcpy(b_data, data, size);
	b_data[size - 1] ^= 1;              /* the last byte of the last 1 MiB chunk */
	b_data[2 * MiB + 5] ^= 0x80;        /* and one in the third */
	wr(&f, b, b_data, size, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	dedupe_unchanged(&f, a, 0, size, b, 0, FILE_DEDUPE_DIFFERS);
	dedupe_unchanged(&f, a, 2 * MiB, MiB, b, 2 * MiB, FILE_DEDUPE_DIFFERS);
	expect_file(&f, b, b_data, size);
	ck_assert_uint_eq(shared_extents(&f), 0);
	/* The identical first 2 MiB. */
	ck_assert_int_eq(dedupe1(&f, a, 0, 2 * MiB, b, 0, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, 2 * MiB);
	expect_file(&f, b, b_data, size);
	expect_file(&f, a, data, size);
	ck_assert_uint_eq(seg_at(&f, a, MiB).disk, seg_at(&f, b, MiB).disk);
	ck_assert_uint_ne(seg_at(&f, a, 2 * MiB).disk, seg_at(&f, b, 2 * MiB).disk);
	ck_assert_uint_eq(refs_at(&f, b, 0), 2);
	check(&f);
	free(data);
	free(b_data);
	ifix_teardown(&f);
}
END_TEST

/* The destination (or the source) got new dirty data before the call: what is compared is
 * what a read shows, so new different bytes differ and new identical bytes dedupe. */
START_TEST(dedupe_sees_new_dirty_data)
{
	struct ifix f;
	size_t size = MiB;
	uint8_t *data, patch[PS];
	uint64_t deduped;

	ifix_setup(&f, "reflink-dedupe-dirty", 128 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", size, 18, &data), b = mkdata(&f, "b", size, 18, NULL);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	rng_fill(patch, sizeof(patch), 19);
	wr(&f, b, patch, sizeof(patch), 8192);   /* dirty, not written back */
	ck_assert_int_eq(dedupe1(&f, a, 0, size, b, 0, &deduped), FILE_DEDUPE_DIFFERS);
	ck_assert_uint_eq(deduped, 0);
	uint8_t *b_data = malloc(size);
	memcpy(b_data, data, size);
	memcpy(b_data + 8192, patch, sizeof(patch));
	expect_file(&f, b, b_data, size);
	/* The source gets the same new bytes, dirty: now identical. */
	wr(&f, a, patch, sizeof(patch), 8192);
	ck_assert_int_eq(dedupe1(&f, a, 0, size, b, 0, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, size);
	expect_file(&f, a, b_data, size);
	expect_file(&f, b, b_data, size);
	ck_assert_uint_eq(seg_at(&f, a, 8192).disk, seg_at(&f, b, 8192).disk);
	ck_assert_uint_eq(refs_at(&f, b, 8192), 2);
	check(&f);
	ifix_reopen(&f);
	expect_file(&f, a, b_data, size);
	expect_file(&f, b, b_data, size);
	free(data);
	free(b_data);
	ifix_teardown(&f);
}
END_TEST

static uint64_t image_byte_flip(struct ifix *f, uint64_t at)
{
	int fd = open(f->x.path, O_RDWR);
	uint8_t b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)at), 1);
	b ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)at), 1);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	return at;
}

/* Ranges that map the same disk bytes are the same without being read: shown by damaging the
 * data on disk (a read would be -EIO). */
START_TEST(dedupe_of_shared_ranges_reads_nothing)
{
	struct ifix f;
	size_t size = 64 * 1024;
	uint8_t buf[PS];
	uint64_t cloned, deduped;

	ifix_setup(&f, "reflink-dedupe-shared", 64 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", size, 20, NULL), b = mkfile(&f, "b");
	ck_assert_int_eq(reflink(&f, a, 0, b, 0, 0, &cloned), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	uint64_t at = image_byte_flip(&f, seg_at(&f, a, PS).disk + 17);
	ck_assert_int_eq(file_read(&f.it, a, buf, PS, PS), -EIO);
	ck_assert_int_eq(dedupe1(&f, a, 0, size, b, 0, &deduped), FILE_DEDUPE_SAME);
	ck_assert_uint_eq(deduped, size);
	/* Ranges that do not share do get read: the damage is found, nothing changes. */
	uint64_t c = mkdata(&f, "c", size, 20, NULL);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(dedupe1(&f, a, 0, size, c, 0, &deduped), -EIO);
	ck_assert_uint_eq(deduped, 0);
	image_byte_flip(&f, at);
	ck_assert_int_eq(file_read(&f.it, a, buf, PS, PS), PS);
	ifix_teardown(&f);
}
END_TEST

/*
 * A writer keeps changing pages of the destination and changing them back while dedupes of
 * the range run: whenever all pages are back the ranges are identical and a dedupe may share
 * them. The compare and the share are one update, so a share never undoes a write: the
 * writer reads each write back, and the last pass of writes stays.
 */
struct race {
	struct ifix *f;
	uint64_t ino;
	const uint8_t *orig;    /* the source's (and at first the destination's) bytes */
	int pages, passes;
	int done, lost;
};

static void race_page(uint8_t *p, int k)
{
	memset(p, 0x5a ^ k, PS);
	memcpy(p, &k, sizeof(k));
}

/* Write `page` at page k and read it back: 0, or 1 if the read shows something else. */
static int write_and_read_back(struct race *r, const uint8_t *page, int k)
{
	uint8_t got[PS];
	uint64_t off = (uint64_t)k * PS;

	if (file_write(&r->f->it, r->ino, page, PS, off, 0) != PS ||
	    file_read(&r->f->it, r->ino, got, PS, off) != PS)
		return 1;
	return memcmp(got, page, PS) != 0;
}

static void *race_writer(void *arg)
{
	struct race *r = arg;
	uint8_t page[PS];

	for (int pass = 0; pass < r->passes; pass++)
		for (int k = 0; k < r->pages; k++) {
			race_page(page, k);
			r->lost += write_and_read_back(r, page, k);
			if (pass + 1 < r->passes)
				r->lost += write_and_read_back(r, r->orig + (size_t)k * PS, k);
		}
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(dedupe_races_a_writer)
{
	struct ifix f;
	int pages = 64;
	size_t size = (size_t)pages * PS;
	uint8_t *data, want[PS], got[PS];
	uint64_t deduped, rounds = 0, same = 0;
	pthread_t th;

	ifix_setup(&f, "reflink-dedupe-race", 128 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", size, 27, &data), b = mkfile(&f, "b");
	wr(&f, b, data, size, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct race r = { .f = &f, .ino = b, .orig = data, .pages = pages, .passes = 16 };
	ck_assert_int_eq(pthread_create(&th, NULL, race_writer, &r), 0);
	while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
		int st = dedupe1(&f, a, 0, size, b, 0, &deduped);
		REQUIRE(st == FILE_DEDUPE_SAME || st == FILE_DEDUPE_DIFFERS, "status %d", st);
		same += st == FILE_DEDUPE_SAME;
		rounds++;
	}
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	fprintf(stderr, "dedupe_races_a_writer: %" PRIu64 " dedupes, %" PRIu64 " same\n", rounds,
		same);
	ck_assert_int_eq(r.lost, 0);
	ck_assert_int_eq(dedupe1(&f, a, 0, size, b, 0, &deduped), FILE_DEDUPE_DIFFERS);
	for (int k = 0; k < pages; k++) {
		race_page(want, k);
		ck_assert_int_eq(file_read(&f.it, b, got, PS, (uint64_t)k * PS), PS);
		REQUIRE(memcmp(got, want, PS) == 0, "page %d of the destination lost its write", k);
	}
	expect_file(&f, a, data, size);
	check(&f);
	free(data);
	ifix_teardown(&f);
}
END_TEST

/* ---- copy_file_range, noreflink, counters ---------------------------------------------------- */

START_TEST(noreflink_copies)
{
	struct ifix f;
	size_t size = 2 * MiB;
	uint8_t *data;
	uint64_t cloned;

	ifix_setup(&f, "reflink-off", 128 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", size, 21, &data), b = mkfile(&f, "b"), c = mkfile(&f, "c");
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	int64_t before = free_bytes(&f);
	file_set_reflink(&f.it, false);
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, b, 0, size), (ssize_t)size);
	expect_file(&f, b, data, size);
	ck_assert_uint_eq(shared_extents(&f), 0);
	ck_assert_uint_eq(refs_at(&f, a, 0), 1);
	ck_assert_uint_eq(refs_at(&f, b, 0), 1);
	ck_assert_int_ge(before - free_bytes(&f), (int64_t)size);
	struct file_share_stats st = stats(&f);
	ck_assert_uint_eq(st.copy_calls, 1);
	ck_assert_uint_eq(st.copy_bytes_copied, size);
	ck_assert_uint_eq(st.copy_bytes_shared, 0);
	/* An explicit clone shares all the same. */
	ck_assert_int_eq(reflink(&f, a, 0, c, 0, 0, &cloned), 0);
	ck_assert_uint_eq(refs_at(&f, a, 0), 2);
	/* Back on: copy_file_range shares again. */
	file_set_reflink(&f.it, true);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "b", 1), 0);
	b = mkfile(&f, "b2");
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, b, 0, size), (ssize_t)size);
	ck_assert_uint_eq(refs_at(&f, a, 0), 3);
	expect_file(&f, b, data, size);
	st = stats(&f);
	ck_assert_uint_eq(st.copy_calls, 2);
	ck_assert_uint_eq(st.copy_bytes_copied, size);
	ck_assert_uint_eq(st.copy_bytes_shared, size);
	free(data);
	ifix_teardown(&f);
}
END_TEST

/* Every counter, exact, through a known sequence. */
START_TEST(share_stats_exact)
{
	struct ifix f;
	uint8_t *data, one[PS];
	uint64_t cloned, deduped;

	ifix_setup(&f, "reflink-stats", 128 * MiB, 16384);
	struct file_share_stats st = stats(&f);
	ck_assert_uint_eq(st.copy_calls + st.clone_calls + st.dedupe_calls + st.fsyncs, 0);
	uint64_t a = mkdata(&f, "a", 100000, 22, &data), b = mkfile(&f, "b");
	uint64_t c = mkdata(&f, "c", 100000, 22, NULL), e = mkdata(&f, "e", 100000, 23, NULL);
	/* copy_file_range: 100 copied head, 98304 - 4096 shared middle, the rest copied (the
	 * destination runs on past the copy's end, so its tail sector cannot be shared). */
	wr(&f, b, data, 100000, 0);
	wr(&f, b, data, 100000, 100000);
	ck_assert_int_eq(file_copy_range(&f.it, a, 4000, b, 4000, 90000), 90000);
	st = stats(&f);
	ck_assert_uint_eq(st.copy_calls, 1);
	ck_assert_uint_eq(st.copy_bytes_copied, 96 + (94000 - 90112));
	ck_assert_uint_eq(st.copy_bytes_shared, 90112 - 4096);
	/* Unaligned against each other: all copied. A failing call counts as a call. */
	ck_assert_int_eq(file_copy_range(&f.it, a, 1, b, 0, 5000), 5000);
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, a, 0, 5000), -EINVAL);
	st = stats(&f);
	ck_assert_uint_eq(st.copy_calls, 3);
	ck_assert_uint_eq(st.copy_bytes_copied, 96 + 3888 + 5000);
	/* Clones: the bytes of those that succeed. */
	ck_assert_int_eq(reflink(&f, a, 0, b, 0, 8192, &cloned), 0);
	ck_assert_int_eq(reflink(&f, a, 0, b, 0, 1, &cloned), -EINVAL);
	ck_assert_int_eq(reflink(&f, a, 0, b, 200000, 0, &cloned), -EINVAL);   /* unaligned */
	ck_assert_int_eq(reflink(&f, a, 0, b, 204800, 0, &cloned), 0);
	st = stats(&f);
	ck_assert_uint_eq(st.clone_calls, 4);
	ck_assert_uint_eq(st.clone_bytes, 8192 + 100000);
	/* Dedupe: destinations asked, bytes the same, bytes that differed. */
	struct file_dedupe_dest d[2] = { { .ino = c }, { .ino = e } };
	ck_assert_int_eq(file_dedupe_range(&f.it, a, 0, 100000, d, 2), 0);
	ck_assert_int_eq(dedupe1(&f, a, 0, 8192, e, 0, &deduped), FILE_DEDUPE_DIFFERS);
	st = stats(&f);
	ck_assert_uint_eq(st.dedupe_calls, 3);
	ck_assert_uint_eq(st.dedupe_bytes_same, 100000);
	ck_assert_uint_eq(st.dedupe_bytes_differ, 100000 + 8192);
	/* fsync: the first of a new file commits; then an append goes through the log. */
	ck_assert_int_eq(file_fsync(&f.it, b), 0);
	rng_fill(one, PS, 24);
	wr(&f, b, one, PS, 300000);
	ck_assert_int_eq(file_fsync(&f.it, b), 0);
	/* Nothing of b waiting: durable through the log as it is. */
	ck_assert_int_eq(file_fsync(&f.it, b), 0);
	st = stats(&f);
	ck_assert_uint_eq(st.fsyncs, 3);
	ck_assert_uint_eq(st.fsync_commits, 1);
	ck_assert_uint_eq(st.fsync_log_hits, 2);
	/* A clone bars the log (it cannot express one): the next fsync commits. */
	ck_assert_int_eq(reflink(&f, a, 0, b, 0, 4096, &cloned), 0);
	ck_assert_int_eq(file_fsync(&f.it, b), 0);
	st = stats(&f);
	ck_assert_uint_eq(st.fsyncs, 4);
	ck_assert_uint_eq(st.fsync_commits, 2);
	ck_assert_uint_eq(st.fsync_log_hits, 2);
	free(data);
	ifix_teardown(&f);
}
END_TEST

/* A copy_file_range onto a destination whose tail lies past the copy: only whole sectors are
 * shared, and the destination's bytes past the source's end of file stay. */
START_TEST(copy_range_keeps_destination_tail)
{
	struct ifix f;
	uint8_t *a_data, *b_data;

	ifix_setup(&f, "reflink-copy-tail", 64 * MiB, 16384);
	uint64_t a = mkdata(&f, "a", 10000, 25, &a_data), b = mkdata(&f, "b", 50000, 26, &b_data);
	ck_assert_int_eq(file_copy_range(&f.it, a, 4096, b, 8192, 20000), 10000 - 4096);
	memcpy(b_data + 8192, a_data + 4096, 10000 - 4096);
	expect_file(&f, b, b_data, 50000);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_eq(seg_at(&f, a, 4096).disk, seg_at(&f, b, 8192).disk);
	expect_file(&f, b, b_data, 50000);
	free(a_data);
	free(b_data);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reflink");
	TCase *tc = tcase_create("reflink");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, clone_lengths_and_ends);
	tcase_add_test(tc, clone_same_file_types_and_errors);
	tcase_add_test(tc, clone_and_dedupe_times);
	tcase_add_test(tc, clone_of_unwritten_back_data);
	tcase_add_test(tc, clone_then_overwrite_source);
	tcase_add_test(tc, clone_then_seek);
	tcase_add_test(tc, clone_dedupe_crash_and_reopen);
	tcase_add_test(tc, space_returned_with_last_reference);
	tcase_add_test(tc, dedupe_returns_space);
	tcase_add_test(tc, dedupe_rules);
	tcase_add_test(tc, dedupe_many_destinations);
	tcase_add_test(tc, dedupe_differing_and_partly_identical);
	tcase_add_test(tc, dedupe_sees_new_dirty_data);
	tcase_add_test(tc, dedupe_of_shared_ranges_reads_nothing);
	tcase_add_test(tc, dedupe_races_a_writer);
	tcase_add_test(tc, noreflink_copies);
	tcase_add_test(tc, share_stats_exact);
	tcase_add_test(tc, copy_range_keeps_destination_tail);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
