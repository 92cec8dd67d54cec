/*
 * Chunk fingerprints from the stored sector checksums (file_chunk_hashes, chunk_hash.c): the
 * definition pinned against one computed here from the data read back; equal bytes equal,
 * other bytes not, wherever they lie; the tail chunk and its seed; holes, preallocated space,
 * dirty data without and with sync; CONTIGUOUS/physical and SHARED as file_map_extents says
 * them; batches and windows; bad arguments; a missing checksum is -EUCLEAN, reported.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "fs/extent/csum_tree.h"
#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/inode.h"
#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define SS 4096u
#define MAXC 256

#define NO_HASH (FILE_CHUNK_HOLE | FILE_CHUNK_UNWRITTEN | FILE_CHUNK_DELALLOC)

struct chunks {
	struct file_chunk c[MAXC];
	size_t n;
};

static uint64_t mkfile(struct ifix *f, const char *name)
{
	return ifix_mk(f, ROOT, name, S_IFREG | 0644);
}

static struct chunks *hashes(struct ifix *f, uint64_t ino, uint64_t start, uint64_t chunk,
			     bool sync, size_t max)
{
	struct chunks *h = malloc(sizeof(*h));

	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(file_chunk_hashes(&f->it, ino, start, chunk, sync, h->c, max, &h->n), 0);
	return h;
}

/*
 * The definition, from the data: XXH3-64 of each sector read back (the last one's bytes past
 * end of file zero), as little-endian u64s, hashed with XXH3-128 seeded with the length.
 */
static XXH128_hash_t fingerprint_of_data(struct ifix *f, uint64_t ino, uint64_t off,
					 uint64_t len)
{
	uint64_t nsect = (len + SS - 1) / SS;
	uint8_t *data = calloc(nsect, SS);
	uint64_t *sums = malloc(nsect * sizeof(*sums));

	ck_assert_int_eq(file_read(&f->it, ino, data, len, off), (ssize_t)len);
	for (uint64_t i = 0; i < nsect; i++)
		put_le64(&sums[i], XXH3_64bits(data + i * SS, SS));
	XXH128_hash_t h = XXH3_128bits_withSeed(sums, nsect * sizeof(*sums), len);
	free(data);
	free(sums);
	return h;
}

static void expect_fingerprint_of_data(struct ifix *f, uint64_t ino, const struct file_chunk *c)
{
	XXH128_hash_t h = fingerprint_of_data(f, ino, c->offset, c->length);

	ck_assert_uint_ne(c->flags & FILE_CHUNK_HASHED, 0);
	ck_assert_msg(c->hash_lo == h.low64 && c->hash_hi == h.high64,
		      "chunk at %" PRIu64 ": not the fingerprint of its data", c->offset);
}

static bool same_fp(const struct file_chunk *a, const struct file_chunk *b)
{
	return a->hash_lo == b->hash_lo && a->hash_hi == b->hash_hi;
}

/* The disk address of file offset `off` (data or preallocated). */
static uint64_t disk_at(struct ifix *f, uint64_t ino, uint64_t off)
{
	struct fmap_seg seg;

	cowfs_lock(f->x.fs);
	ck_assert_int_eq(fmap_lookup(&f->it, ino, off, UINT64_MAX, &seg), 0);
	cowfs_unlock(f->x.fs);
	ck_assert_int_ne(seg.kind, FMAP_HOLE);
	return seg.disk;
}

/* Two files written separately with the same bytes: equal fingerprints at other places on
 * disk; other bytes differ; the same bytes at another offset of another file are equal too;
 * each is the fingerprint of the data. */
START_TEST(equal_bytes_equal_fingerprints)
{
	struct ifix f;

	ifix_setup(&f, "chunk-equal", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b"), c = mkfile(&f, "c");
	ifix_write_pattern(&f, a, 1 * MiB, 0, 1);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_write_pattern(&f, b, 1 * MiB, 0, 1);
	ifix_write_pattern(&f, c, 1 * MiB, 0, 2);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct chunks *ha = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	struct chunks *hb = hashes(&f, b, 0, 128 * KiB, false, MAXC);
	struct chunks *hc = hashes(&f, c, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(ha->n, 8);
	ck_assert_uint_eq(hb->n, 8);
	for (size_t i = 0; i < 8; i++) {
		const struct file_chunk *x = &ha->c[i], *y = &hb->c[i];
		ck_assert_uint_eq(x->offset, i * 128 * KiB);
		ck_assert_uint_eq(x->length, 128 * KiB);
		ck_assert_uint_eq(x->flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);
		ck_assert_uint_eq(y->flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);
		ck_assert_uint_eq(x->physical, disk_at(&f, a, x->offset));
		ck_assert_uint_ne(x->physical, y->physical);
		ck_assert(same_fp(x, y));
		ck_assert(!same_fp(x, &hc->c[i]));
		for (size_t j = 0; j < i; j++)
			ck_assert(!same_fp(x, &ha->c[j]));
		expect_fingerprint_of_data(&f, a, x);
		expect_fingerprint_of_data(&f, c, &hc->c[i]);
	}
	/* a's third chunk again, at the start of another file (a clone would share: a copy). */
	uint8_t *buf = malloc(128 * KiB);
	uint64_t d = mkfile(&f, "d");
	ck_assert_int_eq(file_read(&f.it, a, buf, 128 * KiB, 256 * KiB), (ssize_t)(128 * KiB));
	ck_assert_int_eq(file_write(&f.it, d, buf, 128 * KiB, 0, 0), (ssize_t)(128 * KiB));
	free(buf);
	struct chunks *hd = hashes(&f, d, 0, 128 * KiB, true, MAXC);
	ck_assert_uint_eq(hd->n, 1);
	ck_assert(same_fp(&hd->c[0], &ha->c[2]));
	/* Another chunk size: other fingerprints, each still the data's. */
	struct chunks *h64 = hashes(&f, a, 0, 64 * KiB, false, MAXC);
	ck_assert_uint_eq(h64->n, 16);
	for (size_t i = 0; i < h64->n; i++)
		expect_fingerprint_of_data(&f, a, &h64->c[i]);
	free(ha);
	free(hb);
	free(hc);
	free(hd);
	free(h64);
	ifix_teardown(&f);
}
END_TEST

/* The last chunk ends at end of file and is seeded with its length: the same bytes with one
 * zero byte more (same sector checksums) fingerprint differently. */
START_TEST(tail_chunk)
{
	struct ifix f;

	ifix_setup(&f, "chunk-tail", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b"), c = mkfile(&f, "c");
	uint64_t size = 300 * KiB + 1000;
	ifix_write_pattern(&f, a, size, 0, 3);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct chunks *h = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(h->n, 3);
	ck_assert_uint_eq(h->c[2].offset, 256 * KiB);
	ck_assert_uint_eq(h->c[2].length, size - 256 * KiB);
	ck_assert_uint_eq(h->c[2].flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);
	for (size_t i = 0; i < h->n; i++)
		expect_fingerprint_of_data(&f, a, &h->c[i]);
	/* b: the tail's bytes alone; c: the same and one zero byte. */
	uint8_t *buf = calloc(1, 64 * KiB);
	uint64_t tail = size - 256 * KiB;
	ck_assert_int_eq(file_read(&f.it, a, buf, tail, 256 * KiB), (ssize_t)tail);
	ck_assert_int_eq(file_write(&f.it, b, buf, tail, 0, 0), (ssize_t)tail);
	ck_assert_int_eq(file_write(&f.it, c, buf, tail + 1, 0, 0), (ssize_t)(tail + 1));
	free(buf);
	struct chunks *hb = hashes(&f, b, 0, 128 * KiB, true, MAXC);
	struct chunks *hc = hashes(&f, c, 0, 128 * KiB, true, MAXC);
	ck_assert_uint_eq(hb->n, 1);
	ck_assert_uint_eq(hc->n, 1);
	ck_assert(same_fp(&hb->c[0], &h->c[2]));
	ck_assert(!same_fp(&hc->c[0], &h->c[2]));
	expect_fingerprint_of_data(&f, c, &hc->c[0]);
	/* Starting at the tail; at and past end of file nothing. */
	struct chunks *t = hashes(&f, a, 256 * KiB, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(t->n, 1);
	ck_assert(same_fp(&t->c[0], &h->c[2]));
	free(t);
	t = hashes(&f, a, 384 * KiB, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(t->n, 0);
	free(t);
	t = hashes(&f, a, 1ull << 40, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(t->n, 0);
	free(t);
	free(h);
	free(hb);
	free(hc);
	ifix_teardown(&f);
}
END_TEST

/* Holes and preallocated space get a flag, no fingerprint; a chunk part data part hole is a
 * HOLE and not contiguous; preallocated space is contiguous (it has its place). */
START_TEST(holes_and_preallocated)
{
	struct ifix f;

	ifix_setup(&f, "chunk-holes", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	ifix_write_pattern(&f, a, 128 * KiB, 0, 4);
	ck_assert_int_eq(file_fallocate(&f.it, a, 0, 256 * KiB, 128 * KiB), 0);
	ifix_write_pattern(&f, a, 64 * KiB, 384 * KiB, 5);
	ifix_write_pattern(&f, a, 64 * KiB, 640 * KiB - 64 * KiB + 128 * KiB, 6);    /* [704K, 768K) */
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct chunks *h = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(h->n, 6);
	ck_assert_uint_eq(h->c[0].flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);
	expect_fingerprint_of_data(&f, a, &h->c[0]);
	ck_assert_uint_eq(h->c[1].flags, FILE_CHUNK_HOLE);
	ck_assert_uint_eq(h->c[1].physical, 0);
	ck_assert_uint_eq(h->c[2].flags, FILE_CHUNK_UNWRITTEN | FILE_CHUNK_CONTIGUOUS);
	ck_assert_uint_eq(h->c[2].physical, disk_at(&f, a, 256 * KiB));
	ck_assert_uint_eq(h->c[3].flags, FILE_CHUNK_HOLE);           /* data, then a hole */
	ck_assert_uint_eq(h->c[4].flags, FILE_CHUNK_HOLE);
	ck_assert_uint_eq(h->c[5].flags, FILE_CHUNK_HOLE);           /* a hole, then data */
	for (size_t i = 1; i < h->n; i++)
		ck_assert_uint_eq(h->c[i].hash_lo | h->c[i].hash_hi, 0);
	/* Preallocated past end of file makes no chunk; inside one it is UNWRITTEN. */
	ck_assert_int_eq(file_fallocate(&f.it, a, FALLOC_FL_KEEP_SIZE, 1 * MiB, 128 * KiB), 0);
	ck_assert_int_eq(file_fallocate(&f.it, a, FALLOC_FL_KEEP_SIZE, 64 * KiB, 4 * KiB), 0);
	free(h);
	h = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(h->n, 6);
	ck_assert_uint_eq(h->c[0].flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);  /* was data */
	ck_assert_int_eq(file_fallocate(&f.it, a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					64 * KiB, 4 * KiB), 0);
	ck_assert_int_eq(file_fallocate(&f.it, a, FALLOC_FL_KEEP_SIZE, 64 * KiB, 4 * KiB), 0);
	free(h);
	h = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(h->c[0].flags, FILE_CHUNK_UNWRITTEN);
	free(h);
	ifix_teardown(&f);
}
END_TEST

/* Dirty pages are DELALLOC (no fingerprint, not contiguous) without sync; with it they are
 * written back first and hashed; a dirty page over a written chunk too. */
START_TEST(delalloc_and_sync)
{
	struct ifix f;

	ifix_setup(&f, "chunk-delalloc", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	ifix_write_pattern(&f, a, 256 * KiB + 100, 0, 7);
	struct chunks *h = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(h->n, 3);
	for (size_t i = 0; i < h->n; i++) {
		ck_assert_uint_eq(h->c[i].flags, FILE_CHUNK_DELALLOC);
		ck_assert_uint_eq(h->c[i].physical, 0);
	}
	free(h);
	h = hashes(&f, a, 0, 128 * KiB, true, MAXC);
	ck_assert_uint_eq(h->n, 3);
	for (size_t i = 0; i < h->n; i++) {
		ck_assert_uint_eq(h->c[i].flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);
		expect_fingerprint_of_data(&f, a, &h->c[i]);
	}
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	/* One dirty page in the middle chunk over the written extent. */
	ifix_write_pattern(&f, a, 4 * KiB, 132 * KiB, 8);
	free(h);
	h = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(h->c[0].flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);
	ck_assert_uint_eq(h->c[1].flags, FILE_CHUNK_DELALLOC);
	ck_assert_uint_eq(h->c[2].flags, FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS);
	free(h);
	h = hashes(&f, a, 0, 128 * KiB, true, MAXC);
	ck_assert_uint_eq(h->c[1].flags, FILE_CHUNK_HASHED);         /* the page went elsewhere */
	for (size_t i = 0; i < h->n; i++)
		expect_fingerprint_of_data(&f, a, &h->c[i]);
	free(h);
	ifix_teardown(&f);
}
END_TEST

struct range {
	uint64_t off, len;
};

static bool meets(const struct range *r, size_t n, uint64_t off, uint64_t end)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].off < end && off < r[i].off + r[i].len)
			return true;
	return false;
}

/*
 * Every chunk's CONTIGUOUS and physical from file_map_extents's map; SHARED where the chunk
 * meets the file's shared bytes `sh` (FIEMAP's rule applied to the chunk's own bytes: an
 * extent FIEMAP lists SHARED because some other part of it is mapped twice in the file need
 * not make every chunk of it shared), which are always in extents FIEMAP calls SHARED.
 */
static void expect_as_fiemap(struct ifix *f, uint64_t ino, uint64_t chunk,
			     const struct range *sh, size_t nsh)
{
	static struct file_map_extent e[1024];
	size_t ne = 0;

	ck_assert_int_eq(file_map_extents(&f->it, ino, 0, UINT64_MAX, true, e, 1024, &ne), 0);
	struct chunks *h = hashes(f, ino, 0, chunk, false, MAXC);
	ck_assert_uint_ge(h->n, 1);
	for (size_t i = 0; i < h->n; i++) {
		const struct file_chunk *c = &h->c[i];
		uint64_t off = c->offset, end = c->offset + c->length, next = off, phys = 0;
		bool run = true, fiemap_shared = false;
		for (size_t k = 0; k < ne; k++) {
			if (e[k].logical + e[k].length <= off || e[k].logical >= end)
				continue;
			uint64_t from = e[k].logical > off ? e[k].logical : off;
			uint64_t at = e[k].physical + (from - e[k].logical);
			if (from != next || (from > off && at != phys + (from - off)))
				run = false;
			if (from == off)
				phys = at;
			next = e[k].logical + e[k].length;
			fiemap_shared |= (e[k].flags & FILE_MAP_SHARED) != 0;
		}
		run &= next >= end;
		ck_assert_msg(!!(c->flags & FILE_CHUNK_CONTIGUOUS) == run,
			      "chunk at %" PRIu64 ": contiguous %u, fiemap says %d", off,
			      c->flags & FILE_CHUNK_CONTIGUOUS, run);
		ck_assert_uint_eq(c->physical, run ? phys : 0);
		bool shared = meets(sh, nsh, off, end);
		ck_assert_msg(!!(c->flags & FILE_CHUNK_SHARED) == shared,
			      "chunk at %" PRIu64 ": shared %u, expected %d", off,
			      c->flags & FILE_CHUNK_SHARED, shared);
		ck_assert(!shared || fiemap_shared);
		if (!(c->flags & NO_HASH))
			expect_fingerprint_of_data(f, ino, c);
	}
	free(h);
}

/* A file of many pieces (overwrites, clones from another file and from itself, a punch):
 * contiguity as FIEMAP has it and sharing, for several chunk sizes. */
START_TEST(contiguous_and_shared_as_fiemap)
{
	struct ifix f;
	uint64_t cloned;

	ifix_setup(&f, "chunk-fiemap", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	ifix_write_pattern(&f, a, 1 * MiB, 0, 9);
	ifix_write_pattern(&f, b, 256 * KiB, 0, 10);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	for (uint64_t p = 3; p < 256; p += 37)
		ifix_write_pattern(&f, a, 4 * KiB, p * 4 * KiB, 11 + p);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(file_clone_range(&f.it, b, 0, a, 512 * KiB, 64 * KiB, &cloned), 0);
	ck_assert_int_eq(file_clone_range(&f.it, a, 0, a, 768 * KiB, 8 * KiB, &cloned), 0);
	ck_assert_int_eq(file_fallocate(&f.it, a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					900 * KiB, 8 * KiB), 0);
	/* a: b's bytes (another file's), and its first 8 KiB mapped twice; b: all of it. */
	static const struct range sh_a[] = { { 0, 8 * KiB }, { 512 * KiB, 64 * KiB },
					     { 768 * KiB, 8 * KiB } };
	static const struct range sh_b[] = { { 0, 256 * KiB } };
	static const uint64_t sizes[] = { 4 * KiB, 16 * KiB, 64 * KiB, 128 * KiB, 1 * MiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		expect_as_fiemap(&f, a, sizes[i], sh_a, 3);
		expect_as_fiemap(&f, b, sizes[i], sh_b, 1);
	}
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	expect_as_fiemap(&f, a, 4 * KiB, sh_a, 3);
	ifix_teardown(&f);
}
END_TEST

/* After copy_file_range shares a range, both files' chunks over it are SHARED, at the same
 * place and with the same fingerprints. */
START_TEST(shared_after_copy_range)
{
	struct ifix f;

	ifix_setup(&f, "chunk-shared", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	ifix_write_pattern(&f, a, 512 * KiB, 0, 12);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	struct chunks *before = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	for (size_t i = 0; i < before->n; i++)
		ck_assert_uint_eq(before->c[i].flags & FILE_CHUNK_SHARED, 0);
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, b, 0, 256 * KiB), (ssize_t)(256 * KiB));
	struct chunks *ha = hashes(&f, a, 0, 128 * KiB, false, MAXC);
	struct chunks *hb = hashes(&f, b, 0, 128 * KiB, false, MAXC);
	ck_assert_uint_eq(ha->n, 4);
	ck_assert_uint_eq(hb->n, 2);
	for (size_t i = 0; i < ha->n; i++) {
		/* The extent has two references: all of a's chunks are shared (btrfs's rule). */
		ck_assert_uint_eq(ha->c[i].flags,
				  FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS | FILE_CHUNK_SHARED);
		ck_assert(same_fp(&ha->c[i], &before->c[i]));
	}
	for (size_t i = 0; i < hb->n; i++) {
		ck_assert_uint_eq(hb->c[i].flags,
				  FILE_CHUNK_HASHED | FILE_CHUNK_CONTIGUOUS | FILE_CHUNK_SHARED);
		ck_assert_uint_eq(hb->c[i].physical, ha->c[i].physical);
		ck_assert(same_fp(&hb->c[i], &ha->c[i]));
	}
	free(before);
	free(ha);
	free(hb);
	ifix_teardown(&f);
}
END_TEST

/* Batches of up to `max` chunks, continued from where the last ended, give what one call
 * does; chunks of 16 MiB cross a window of checksums (65536 sectors) at 256 MiB. */
START_TEST(batches_and_windows)
{
	struct ifix f;

	ifix_setup(&f, "chunk-batch", 128 * MiB, 16384);
	uint64_t a = mkfile(&f, "a"), b = mkfile(&f, "b");
	for (uint64_t i = 0; i < 40; i++)
		ifix_write_pattern(&f, a, 4 * KiB, i * 8 * KiB, 20 + i);
	struct chunks *all = hashes(&f, a, 0, 8 * KiB, true, MAXC);
	ck_assert_uint_eq(all->n, 40);
	for (size_t max = 1; max <= 7; max += 3) {
		size_t got = 0;
		for (;;) {
			struct chunks *h = hashes(&f, a, got * 8 * KiB, 8 * KiB, false, max);
			size_t n = h->n;
			ck_assert_uint_le(n, max);
			for (size_t i = 0; i < n; i++, got++) {
				ck_assert_uint_eq(h->c[i].offset, all->c[got].offset);
				ck_assert_uint_eq(h->c[i].length, all->c[got].length);
				ck_assert_uint_eq(h->c[i].flags, all->c[got].flags);
				ck_assert(same_fp(&h->c[i], &all->c[got]));
			}
			free(h);
			if (n == 0)
				break;
		}
		ck_assert_uint_eq(got, 40);
	}
	/* The last chunk (4 KiB of data, its second page past end of file): hashed. */
	ck_assert_uint_eq(all->c[39].length, 4 * KiB);
	ck_assert_uint_eq(all->c[39].flags & FILE_CHUNK_HASHED, FILE_CHUNK_HASHED);
	free(all);
	/* b: data in its 16th and 17th chunks of 16 MiB, the first and second window's. */
	uint64_t chunk = 16 * MiB;
	ifix_write_pattern(&f, b, 2 * chunk, 15 * chunk, 70);
	struct chunks *h = hashes(&f, b, 0, chunk, true, MAXC);
	ck_assert_uint_eq(h->n, 17);
	for (size_t i = 0; i < 15; i++)
		ck_assert_uint_eq(h->c[i].flags, FILE_CHUNK_HOLE);
	for (size_t i = 15; i < 17; i++)
		expect_fingerprint_of_data(&f, b, &h->c[i]);
	free(h);
	ifix_teardown(&f);
}
END_TEST

/* What the arguments must be; what the file must be. */
START_TEST(bad_arguments)
{
	struct ifix f;
	struct file_chunk c[2];
	size_t n = 7;

	ifix_setup(&f, "chunk-args", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	ifix_write_pattern(&f, a, 64 * KiB, 0, 30);
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 0, 0, false, c, 2, &n), -EINVAL);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 0, 1000, false, c, 2, &n), -EINVAL);
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 0, 6 * KiB, false, c, 2, &n), -EINVAL);
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 0, FILE_CHUNK_MAX + SS, false, c, 2, &n),
			 -EINVAL);
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 4 * KiB, 8 * KiB, false, c, 2, &n), -EINVAL);
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 0, FILE_CHUNK_MAX, false, c, 2, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(c[0].length, 64 * KiB);
	ck_assert_int_eq(file_chunk_hashes(&f.it, ROOT, 0, 8 * KiB, false, c, 2, &n), -EISDIR);
	ck_assert_int_eq(file_chunk_hashes(&f.it, 9999, 0, 8 * KiB, false, c, 2, &n), -ENOENT);
	uint64_t fifo = ifix_mk(&f, ROOT, "fifo", S_IFIFO | 0644);
	ck_assert_int_eq(file_chunk_hashes(&f.it, fifo, 0, 8 * KiB, false, c, 2, &n), -EINVAL);
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 0, 8 * KiB, false, c, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	uint64_t empty = mkfile(&f, "empty");
	ck_assert_int_eq(file_chunk_hashes(&f.it, empty, 0, 8 * KiB, false, c, 2, &n), 0);
	ck_assert_uint_eq(n, 0);
	ifix_teardown(&f);
}
END_TEST

/* A written sector without its checksum is corruption: -EUCLEAN, reported naming it; with
 * the checksum back, the fingerprint is the data's again. */
START_TEST(missing_checksum_is_euclean)
{
	struct ifix f;
	uint8_t buf[4 * SS];

	ifix_setup(&f, "chunk-csum", 64 * MiB, 16384);
	uint64_t a = mkfile(&f, "a");
	rng_fill(buf, sizeof(buf), 31);
	ck_assert_int_eq(file_write(&f.it, a, buf, sizeof(buf), 0, 0), (ssize_t)sizeof(buf));
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	uint64_t disk = disk_at(&f, a, 0);
	struct chunks *good = hashes(&f, a, 0, 8 * KiB, false, MAXC);
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(csum_delete(&f.x.fs->ext, &tx->bt, disk, sizeof(buf)), 0);
	cowfs_trans_end(tx, 0);
	struct file_chunk c[2];
	size_t n = 7;
	ck_assert_int_eq(file_chunk_hashes(&f.it, a, 0, 8 * KiB, false, c, 2, &n), -EUCLEAN);
	ck_assert_uint_eq(n, 0);
	char want[96];
	snprintf(want, sizeof(want), "block %" PRIu64 ": data sector without a checksum", disk);
	ck_assert_str_eq(f.x.last_report, want);
	/* Put them back, one wrong: that chunk's fingerprint changes, the other's does not. */
	uint64_t sums[4];
	for (size_t i = 0; i < 4; i++)
		sums[i] = csum_sector(buf + i * SS, SS);
	sums[3] ^= 1;
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(csum_insert(&f.x.fs->ext, &tx->bt, disk, sums, 4), 0);
	cowfs_trans_end(tx, 0);
	struct chunks *h = hashes(&f, a, 0, 8 * KiB, false, MAXC);
	ck_assert_uint_eq(h->n, 2);
	ck_assert(same_fp(&h->c[0], &good->c[0]));
	ck_assert(!same_fp(&h->c[1], &good->c[1]));
	free(h);
	sums[3] ^= 1;
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(csum_delete(&f.x.fs->ext, &tx->bt, disk, sizeof(buf)), 0);
	ck_assert_int_eq(csum_insert(&f.x.fs->ext, &tx->bt, disk, sums, 4), 0);
	cowfs_trans_end(tx, 0);
	h = hashes(&f, a, 0, 8 * KiB, false, MAXC);
	ck_assert(same_fp(&h->c[1], &good->c[1]));
	expect_fingerprint_of_data(&f, a, &h->c[1]);
	free(h);
	free(good);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("chunk_hash");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, equal_bytes_equal_fingerprints);
	tcase_add_test(tc, tail_chunk);
	tcase_add_test(tc, holes_and_preallocated);
	tcase_add_test(tc, delalloc_and_sync);
	tcase_add_test(tc, contiguous_and_shared_as_fiemap);
	tcase_add_test(tc, shared_after_copy_range);
	tcase_add_test(tc, batches_and_windows);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, missing_checksum_is_euclean);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
