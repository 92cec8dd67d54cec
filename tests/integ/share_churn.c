/*
 * share_churn [options] DIR: a seeded churn of sharing operations on a cowfs mount, checked
 * against an in-memory model after every step (issue 11's churn test).
 *
 * The model keeps, for every file, its bytes and, per block, which extent it maps (an extent
 * being what one write made, or a hole): writes, overwrites, truncates and hole punches make or
 * drop extents, COWFS_IOC_CLONE_RANGE and COWFS_IOC_DEDUPE_RANGE copy block mappings, unlinks
 * drop a file's. Every operation is block aligned and followed by COWFS_IOC_SYNC, so each write
 * becomes exactly one extent of its blocks and the model knows every extent's boundaries.
 *
 * After every step, every file is read whole and compared byte for byte, and its FIEMAP
 * (COWFS_IOC_FIEMAP) is checked against the model: two blocks lie at the same disk address
 * exactly when the model says they map the same block of the same extent, the blocks of one
 * extent are contiguous on disk, holes are holes, and SHARED is set where another file maps the
 * extent or the file maps the block twice, and not where nothing but the file's own blocks of
 * it, each once, map an extent (check_fiemap says what it leaves unchecked).
 *
 * At the end it checks COWFS_IOC_SPACE of every directory, of a set of two directories and of
 * the whole tree against the figures recomputed from the model, and writes those expected
 * figures as JSON (--expect FILE) so that the caller can compare `cowfs du -s --json` with them.
 *
 *   share_churn [-S SEED] [-N STEPS] [-q] [--expect FILE] DIR
 *
 * Exit status 0 when everything matched; 1 with a message naming the step otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/cowfs_ioctl.h"

#define NDIRS 4
#define NFILES 24
#define MAX_BLOCKS 128         /* largest file: 512 KiB at 4 KiB blocks */
#define MAX_OP_BLOCKS 32
#define HOLE 0                 /* extent id of a hole */

struct block_map {
	uint32_t extent;          /* HOLE, or an extent id */
	uint32_t index;           /* block within the extent */
};

struct file_model {
	bool exists;
	char path[512];
	uint64_t nblocks;         /* size in blocks (sizes are block multiples) */
	uint8_t *data;            /* MAX_BLOCKS blocks */
	struct block_map map[MAX_BLOCKS];
	struct cowfs_ioc_file id;
};

struct extent_model {
	uint32_t nblocks;
	uint64_t physical;        /* learned from the first FIEMAP that shows it; 0: not yet */
};

static struct {
	const char *dir;
	uint32_t bs;
	uint64_t seed, rng;
	long step, steps;
	bool quiet;
	struct file_model files[NFILES];
	struct extent_model *extents;  /* index = extent id */
	uint32_t nextents, extents_cap;
	long counts[8];
} g;

enum { OP_WRITE, OP_TRUNCATE, OP_PUNCH, OP_CLONE, OP_DEDUPE, OP_DEDUPE_DIFF, OP_UNLINK, OP_COUNT };
static const char *const op_names[OP_COUNT] = {
	"write", "truncate", "punch", "clone", "dedupe", "dedupe-differs", "unlink",
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "share_churn: step %ld (seed %" PRIu64 "): ", g.step, g.seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t rnd(void)   /* splitmix64 */
{
	uint64_t z = (g.rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static uint32_t new_extent(uint32_t nblocks)
{
	if (g.nextents + 1 >= g.extents_cap) {
		g.extents_cap = g.extents_cap ? 2 * g.extents_cap : 1024;
		g.extents = realloc(g.extents, g.extents_cap * sizeof(*g.extents));
		if (!g.extents)
			fail("out of memory");
	}
	uint32_t id = ++g.nextents;
	g.extents[id] = (struct extent_model){ .nblocks = nblocks };
	return id;
}

/* ---- the mount ---------------------------------------------------------------------------- */

static int open_file(struct file_model *f, int flags)
{
	int fd = open(f->path, flags, 0644);

	if (fd < 0)
		fail("open %s: %s", f->path, strerror(errno));
	return fd;
}

static void sync_mount(void)
{
	int fd = open(g.dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || ioctl(fd, COWFS_IOC_SYNC) < 0)
		fail("COWFS_IOC_SYNC on %s: %s", g.dir, strerror(errno));
	close(fd);
}

static void read_id(struct file_model *f)
{
	struct cowfs_ioc_file_id id;
	int fd = open_file(f, O_RDONLY);

	if (ioctl(fd, COWFS_IOC_FILE_ID, &id) < 0)
		fail("COWFS_IOC_FILE_ID on %s: %s", f->path, strerror(errno));
	close(fd);
	f->id = id.file;
	if (!g.bs)
		g.bs = id.blocksize;
}

static void create_file(struct file_model *f)
{
	int fd = open_file(f, O_RDWR | O_CREAT | O_TRUNC);

	close(fd);
	f->exists = true;
	f->nblocks = 0;
	memset(f->map, 0, sizeof(f->map));
	memset(f->data, 0, (size_t)MAX_BLOCKS * g.bs);
	read_id(f);
}

/* ---- operations, on the mount and on the model --------------------------------------------- */

/* Block-aligned pwrite of fresh bytes; `from` (may be NULL) gives them instead of random ones. */
static void op_write(struct file_model *f, uint64_t blk, uint64_t n, const uint8_t *from)
{
	size_t len = (size_t)n * g.bs;
	uint8_t *buf = f->data + blk * g.bs;
	int fd = open_file(f, O_WRONLY);

	if (from)
		memmove(buf, from, len);
	else
		for (size_t i = 0; i < len; i += 8) {
			uint64_t r = rnd();
			memcpy(buf + i, &r, 8);
		}
	if (pwrite(fd, buf, len, (off_t)(blk * g.bs)) != (ssize_t)len)
		fail("pwrite %s: %s", f->path, strerror(errno));
	close(fd);
	uint32_t e = new_extent((uint32_t)n);
	for (uint64_t i = 0; i < n; i++)
		f->map[blk + i] = (struct block_map){ e, (uint32_t)i };
	if (blk + n > f->nblocks)
		f->nblocks = blk + n;
}

static void model_unmap(struct file_model *f, uint64_t from, uint64_t to)
{
	for (uint64_t b = from; b < to; b++) {
		f->map[b] = (struct block_map){ HOLE, 0 };
		memset(f->data + b * g.bs, 0, g.bs);
	}
}

static void op_truncate(struct file_model *f, uint64_t nblocks)
{
	if (truncate(f->path, (off_t)(nblocks * g.bs)) < 0)
		fail("truncate %s: %s", f->path, strerror(errno));
	if (nblocks < f->nblocks)
		model_unmap(f, nblocks, f->nblocks);
	f->nblocks = nblocks;
}

static void op_punch(struct file_model *f, uint64_t blk, uint64_t n)
{
	int fd = open_file(f, O_WRONLY);

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(blk * g.bs),
		      (off_t)(n * g.bs)) < 0)
		fail("punch %s: %s", f->path, strerror(errno));
	close(fd);
	model_unmap(f, blk, blk + n);
}

/* The model of a clone or dedupe: dst's blocks map what src's do (holes included). */
static void model_share(struct file_model *src, uint64_t sblk, struct file_model *dst,
			uint64_t dblk, uint64_t n)
{
	struct block_map tmp[MAX_BLOCKS];

	memcpy(tmp, src->map + sblk, n * sizeof(tmp[0]));
	memmove(dst->data + dblk * g.bs, src->data + sblk * g.bs, (size_t)n * g.bs);
	memcpy(dst->map + dblk, tmp, n * sizeof(tmp[0]));
	if (dblk + n > dst->nblocks)
		dst->nblocks = dblk + n;
}

static void op_clone(struct file_model *src, uint64_t sblk, struct file_model *dst, uint64_t dblk,
		     uint64_t n)
{
	struct cowfs_ioc_clone_range c = {
		.version = COWFS_CLONE_VERSION, .src = src->id, .src_offset = sblk * g.bs,
		.length = n * g.bs, .dst_offset = dblk * g.bs,
	};
	int fd = open_file(dst, O_WRONLY);

	if (ioctl(fd, COWFS_IOC_CLONE_RANGE, &c) < 0)
		fail("clone %s@%" PRIu64 " -> %s@%" PRIu64 " (%" PRIu64 " blocks): %s", src->path,
		     sblk, dst->path, dblk, n, strerror(errno));
	close(fd);
	if (c.length != n * g.bs)
		fail("clone reported %" PRIu64 " bytes, asked %" PRIu64, c.length, n * g.bs);
	model_share(src, sblk, dst, dblk, n);
}

static bool model_equal(struct file_model *a, uint64_t ablk, struct file_model *b, uint64_t bblk,
			uint64_t n)
{
	return !memcmp(a->data + ablk * g.bs, b->data + bblk * g.bs, (size_t)n * g.bs);
}

static void op_dedupe(struct file_model *src, uint64_t sblk, struct file_model *dst, uint64_t dblk,
		      uint64_t n)
{
	struct cowfs_ioc_dedupe_range d = {
		.version = COWFS_DEDUPE_VERSION, .dest_count = 1, .src_offset = sblk * g.bs,
		.src_length = n * g.bs,
	};
	bool same = model_equal(src, sblk, dst, dblk, n);
	int fd = open_file(src, O_RDONLY);

	d.dests[0].dst = dst->id;
	d.dests[0].dst_offset = dblk * g.bs;
	if (ioctl(fd, COWFS_IOC_DEDUPE_RANGE, &d) < 0)
		fail("dedupe %s: %s", src->path, strerror(errno));
	close(fd);
	int want = same ? COWFS_DEDUPE_SAME : COWFS_DEDUPE_DIFFERS;
	if (d.dests[0].status != want)
		fail("dedupe %s@%" PRIu64 " -> %s@%" PRIu64 " (%" PRIu64 " blocks): status %d, model "
		     "says %d", src->path, sblk, dst->path, dblk, n, d.dests[0].status, want);
	if (same && d.dests[0].bytes_deduped != n * g.bs)
		fail("dedupe: %" PRIu64 " bytes deduped, want %" PRIu64, d.dests[0].bytes_deduped,
		     n * g.bs);
	if (same)
		model_share(src, sblk, dst, dblk, n);
}

static void op_unlink(struct file_model *f)
{
	if (unlink(f->path) < 0)
		fail("unlink %s: %s", f->path, strerror(errno));
	f->exists = false;
	f->nblocks = 0;
	memset(f->map, 0, sizeof(f->map));
}

/* ---- one random step ---------------------------------------------------------------------- */

static struct file_model *some_file(bool nonempty)
{
	for (int tries = 0; tries < 4 * NFILES; tries++) {
		struct file_model *f = &g.files[below(NFILES)];
		if (!f->exists)
			create_file(f);
		if (!nonempty || f->nblocks)
			return f;
	}
	return NULL;
}

/* A range of n blocks within [0, limit) that does not overlap [avoid, avoid + n) when same. */
static bool pick_range(uint64_t limit, uint64_t n, bool same, uint64_t avoid, uint64_t *out)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t b = below(limit - n + 1);
		if (!same || b + n <= avoid || avoid + n <= b) {
			*out = b;
			return true;
		}
	}
	return false;
}

static int random_step(void)
{
	int op = (int)below(100);
	struct file_model *a, *b;
	uint64_t n, sb, db;

	if (op < 30) {                      /* write, extending now and then */
		a = some_file(false);
		n = 1 + below(MAX_OP_BLOCKS);
		sb = below(MAX_BLOCKS - n + 1);
		if (a->nblocks && below(2)) {     /* mostly an overwrite */
			uint64_t s = below(a->nblocks);
			if (s <= MAX_BLOCKS - n)
				sb = s;
		}
		/* Now and then the bytes of another file's range, so that dedupe finds them equal. */
		b = below(4) == 0 ? some_file(true) : NULL;
		if (b && b->nblocks >= n && b != a) {
			uint64_t from = below(b->nblocks - n + 1);
			op_write(a, sb, n, b->data + from * g.bs);
		} else {
			op_write(a, sb, n, NULL);
		}
		return OP_WRITE;
	}
	if (op < 38) {
		a = some_file(false);
		switch (below(3)) {
		case 0: n = below(MAX_BLOCKS + 1); break;
		case 1: n = a->nblocks / 2; break;
		default: n = a->nblocks + 1 + below(8); break;   /* grow: a hole at the end */
		}
		op_truncate(a, n < MAX_BLOCKS ? n : MAX_BLOCKS);
		return OP_TRUNCATE;
	}
	if (op < 46) {
		a = some_file(true);
		if (!a)
			return -1;
		n = 1 + below(a->nblocks < MAX_OP_BLOCKS ? a->nblocks : MAX_OP_BLOCKS);
		op_punch(a, below(a->nblocks - n + 1), n);
		return OP_PUNCH;
	}
	if (op < 95) {                      /* clone or dedupe */
		a = some_file(true);
		b = below(5) ? some_file(false) : a;
		if (!a || !b)
			return -1;
		n = 1 + below(a->nblocks < MAX_OP_BLOCKS ? a->nblocks : MAX_OP_BLOCKS);
		sb = below(a->nblocks - n + 1);
		if (op < 70) {
			uint64_t limit = b->nblocks + n < MAX_BLOCKS ? b->nblocks + n : MAX_BLOCKS;
			if (limit < n || !pick_range(limit, n, a == b, sb, &db))
				return -1;
			op_clone(a, sb, b, db, n);
			return OP_CLONE;
		}
		if (b->nblocks < n || !pick_range(b->nblocks, n, a == b, sb, &db))
			return -1;
		/* Half the time make the ranges equal first (a clone's worth of bytes through a
		 * write of the same content: equal bytes, different extents). */
		if (op < 85 && !model_equal(a, sb, b, db, n)) {
			op_write(b, db, n, a->data + sb * g.bs);
			sync_mount();
		}
		bool same = model_equal(a, sb, b, db, n);
		op_dedupe(a, sb, b, db, n);
		return same ? OP_DEDUPE : OP_DEDUPE_DIFF;
	}
	a = some_file(false);
	op_unlink(a);
	return OP_UNLINK;
}

/* ---- checks ------------------------------------------------------------------------------- */

static void check_content(struct file_model *f)
{
	size_t len = (size_t)f->nblocks * g.bs;
	uint8_t *buf = malloc(len + 1);
	int fd = open_file(f, O_RDONLY);
	struct stat st;

	if (!buf)
		fail("out of memory");
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != len)
		fail("%s: size %lld, model %zu", f->path, (long long)st.st_size, len);
	ssize_t got = pread(fd, buf, len + 1, 0);
	if (got != (ssize_t)len)
		fail("%s: read %zd bytes, model %zu", f->path, got, len);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != f->data[i])
			fail("%s: byte %zu is %#x, model %#x", f->path, i, buf[i], f->data[i]);
	close(fd);
	free(buf);
}

/* Blocks mapping each extent, from all files, and how many files map it (rebuilt per check). */
static uint32_t *extent_refs, *extent_files, *extent_last_file;
/* Per file checked (find_twice): the extents of which it maps some block twice (those whose
 * stamp is the check's), and its blocks whose (extent, index) it maps twice. */
static uint32_t *extent_twice_stamp, twice_stamp;
static bool block_twice[MAX_BLOCKS];

static void count_refs(void)
{
	size_t sz = (g.nextents + 1) * sizeof(uint32_t);

	extent_refs = realloc(extent_refs, sz);
	extent_files = realloc(extent_files, sz);
	extent_last_file = realloc(extent_last_file, sz);
	extent_twice_stamp = realloc(extent_twice_stamp, sz);
	if (!extent_refs || !extent_files || !extent_last_file || !extent_twice_stamp)
		fail("out of memory");
	memset(extent_refs, 0, sz);
	memset(extent_files, 0, sz);
	memset(extent_twice_stamp, 0, sz);
	twice_stamp = 0;
	memset(extent_last_file, 0xff, sz);
	for (uint32_t i = 0; i < NFILES; i++)
		for (uint64_t b = 0; g.files[i].exists && b < g.files[i].nblocks; b++) {
			uint32_t e = g.files[i].map[b].extent;
			extent_refs[e]++;
			if (extent_last_file[e] != i) {
				extent_last_file[e] = i;
				extent_files[e]++;
			}
		}
}

static uint64_t block_key(const struct block_map *m)
{
	return (uint64_t)m->extent << 32 | m->index;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Which blocks of an extent f maps at two offsets or more (a clone within the file). */
static void find_twice(const struct file_model *f)
{
	uint64_t keys[MAX_BLOCKS], twice[MAX_BLOCKS];
	size_t n = 0, nt = 0;

	twice_stamp++;
	for (uint64_t b = 0; b < f->nblocks; b++)
		if (f->map[b].extent != HOLE)
			keys[n++] = block_key(&f->map[b]);
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t i = 1; i < n; i++)
		if (keys[i] == keys[i - 1] && (nt == 0 || twice[nt - 1] != keys[i])) {
			twice[nt++] = keys[i];
			extent_twice_stamp[keys[i] >> 32] = twice_stamp;
		}
	for (uint64_t b = 0; b < f->nblocks; b++) {
		uint64_t k = block_key(&f->map[b]);
		block_twice[b] = f->map[b].extent != HOLE &&
				 bsearch(&k, twice, nt, sizeof(*twice), cmp_key);
	}
}

/*
 * The file's FIEMAP against its block map. SHARED is set per file extent item, and the model
 * does not know the items (a punch inside an extent leaves the file two items of it): so a block
 * must be SHARED where another file maps its extent or this file maps the block twice, must not
 * be where only this file maps the extent and maps none of its blocks twice (its items then map
 * disjoint parts of it), and may be either in an extent some other block of which the file maps
 * twice (its item may be the one that overlaps).
 */
static void check_shared(const struct file_model *f, uint64_t blk, bool shared)
{
	uint32_t e = f->map[blk].extent;
	bool elsewhere = extent_files[e] > 1 || block_twice[blk];

	if (elsewhere && !shared)
		fail("%s: block %" PRIu64 " not SHARED, %u files map its extent%s", f->path, blk,
		     extent_files[e], block_twice[blk] ? ", the file maps it twice" : "");
	if (shared && extent_files[e] == 1 && extent_twice_stamp[e] != twice_stamp)
		fail("%s: block %" PRIu64 " SHARED, nothing else maps its extent's bytes", f->path,
		     blk);
}

static void check_fiemap(struct file_model *f)
{
	struct cowfs_ioc_fiemap fm;
	uint64_t blk = 0, pos = 0;
	int fd = open_file(f, O_RDONLY);
	bool last = false;

	find_twice(f);

	while (!last) {
		memset(&fm, 0, sizeof(fm));
		fm.version = COWFS_FIEMAP_VERSION;
		fm.start = pos;
		fm.length = UINT64_MAX;
		if (ioctl(fd, COWFS_IOC_FIEMAP, &fm) < 0)
			fail("COWFS_IOC_FIEMAP %s: %s", f->path, strerror(errno));
		if (fm.count == 0)
			break;
		for (uint32_t i = 0; i < fm.count; i++) {
			struct cowfs_ioc_extent *x = &fm.extents[i];
			if (x->logical % g.bs || x->length % g.bs || x->physical % g.bs)
				fail("%s: extent %" PRIu64 "+%" PRIu64 " not block aligned", f->path,
				     x->logical, x->length);
			for (; blk < x->logical / g.bs; blk++)
				if (f->map[blk].extent != HOLE)
					fail("%s: block %" PRIu64 " is a hole, model maps it", f->path, blk);
			for (uint64_t j = 0; j < x->length / g.bs; j++, blk++) {
				struct block_map *m = &f->map[blk];
				uint64_t phys = x->physical + j * g.bs;
				if (blk >= f->nblocks || m->extent == HOLE)
					fail("%s: block %" PRIu64 " mapped, model has a hole", f->path, blk);
				struct extent_model *e = &g.extents[m->extent];
				uint64_t base = phys - (uint64_t)m->index * g.bs;
				if (!e->physical)
					e->physical = base;
				else if (e->physical != base)
					fail("%s: block %" PRIu64 " at %" PRIu64 ", model extent %u is at %"
					     PRIu64 " (index %u)", f->path, blk, phys, m->extent,
					     e->physical, m->index);
				check_shared(f, blk, x->flags & COWFS_EXTENT_SHARED);
			}
			last = x->flags & COWFS_EXTENT_LAST;
			pos = x->logical + x->length;
		}
	}
	for (; blk < f->nblocks; blk++)
		if (f->map[blk].extent != HOLE)
			fail("%s: block %" PRIu64 " not in FIEMAP, model maps it", f->path, blk);
	close(fd);
}

/* Distinct model extents never share a disk address (checked once all are learned). */
static int cmp_phys(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

static void check_extents_disjoint(void)
{
	uint64_t (*v)[2] = malloc((g.nextents + 1) * sizeof(*v));
	size_t n = 0;

	for (uint32_t e = 1; e <= g.nextents; e++)
		if (extent_refs[e] && g.extents[e].physical) {
			v[n][0] = g.extents[e].physical;
			v[n][1] = e;
			n++;
		}
	qsort(v, n, sizeof(*v), cmp_phys);
	for (size_t i = 1; i < n; i++) {
		struct extent_model *p = &g.extents[v[i - 1][1]];
		if (p->physical + (uint64_t)p->nblocks * g.bs > v[i][0])
			fail("model extents %" PRIu64 " and %" PRIu64 " overlap on disk", v[i - 1][1],
			     v[i][1]);
	}
	free(v);
}

static void check_all(void)
{
	count_refs();
	for (int i = 0; i < NFILES; i++)
		if (g.files[i].exists) {
			check_content(&g.files[i]);
			check_fiemap(&g.files[i]);
		}
	check_extents_disjoint();
}

/* ---- space figures ------------------------------------------------------------------------ */

struct figures {
	uint64_t files, extents, referenced, exclusive, shared, pinned;
};

/* What COWFS_IOC_SPACE should say for the files whose bit is set in `members`, below `dirs`
 * directories (every inode counts in `files`, directories too). */
static struct figures model_space(uint32_t members, uint64_t dirs)
{
	uint32_t *in = calloc(g.nextents + 1, sizeof(*in));
	uint8_t *used = calloc((size_t)(g.nextents + 1) * 1, MAX_BLOCKS);
	struct figures fg = { .files = dirs };

	count_refs();
	for (int i = 0; i < NFILES; i++) {
		struct file_model *f = &g.files[i];
		if (!f->exists || !(members & (1u << i)))
			continue;
		fg.files++;
		for (uint64_t b = 0; b < f->nblocks; b++) {
			uint32_t e = f->map[b].extent;
			if (e == HOLE)
				continue;
			in[e]++;
			used[(size_t)e * MAX_BLOCKS + f->map[b].index] = 1;
			fg.referenced += g.bs;
		}
	}
	for (uint32_t e = 1; e <= g.nextents; e++) {
		if (!in[e])
			continue;
		fg.extents++;
		if (in[e] == extent_refs[e]) {
			uint32_t mapped = 0;
			for (uint32_t k = 0; k < g.extents[e].nblocks; k++)
				mapped += used[(size_t)e * MAX_BLOCKS + k];
			fg.exclusive += (uint64_t)g.extents[e].nblocks * g.bs;
			fg.pinned += (uint64_t)(g.extents[e].nblocks - mapped) * g.bs;
		} else {
			fg.shared += (uint64_t)in[e] * g.bs;
		}
	}
	free(in);
	free(used);
	return fg;
}

static uint32_t dir_members(int d)
{
	uint32_t m = 0;

	for (int i = 0; i < NFILES; i++)
		if (i % NDIRS == d)
			m |= 1u << i;
	return m;
}

static void space_ioctl(const char *path, uint32_t op, uint64_t *set, struct figures *out)
{
	struct cowfs_ioc_space sp = { .version = COWFS_SPACE_VERSION, .op = op, .set = *set };
	int fd = open(path, O_RDONLY);

	if (fd < 0 || ioctl(fd, COWFS_IOC_SPACE, &sp) < 0)
		fail("COWFS_IOC_SPACE %s: %s", path, strerror(errno));
	close(fd);
	*set = sp.set;
	*out = (struct figures){ sp.files, sp.extents, sp.referenced, sp.exclusive, sp.shared,
				 sp.pinned };
}

static void compare_figures(const char *what, const struct figures *got, const struct figures *want)
{
	if (memcmp(got, want, sizeof(*got)))
		fail("space of %s: files %" PRIu64 " extents %" PRIu64 " referenced %" PRIu64
		     " exclusive %" PRIu64 " shared %" PRIu64 " pinned %" PRIu64 "; model: files %"
		     PRIu64 " extents %" PRIu64 " referenced %" PRIu64 " exclusive %" PRIu64
		     " shared %" PRIu64 " pinned %" PRIu64, what, got->files, got->extents,
		     got->referenced, got->exclusive, got->shared, got->pinned, want->files,
		     want->extents, want->referenced, want->exclusive, want->shared, want->pinned);
}

static void print_figures(FILE *f, const char *path, const struct figures *fg, bool comma)
{
	fprintf(f, "  \"%s\": {\"files\": %" PRIu64 ", \"extents\": %" PRIu64 ", \"referenced\": %"
		PRIu64 ", \"exclusive\": %" PRIu64 ", \"shared\": %" PRIu64 ", \"pinned\": %" PRIu64
		"}%s\n", path, fg->files, fg->extents, fg->referenced, fg->exclusive, fg->shared,
		fg->pinned, comma ? "," : "");
}

static void check_space(const char *expect_path)
{
	char path[600];
	struct figures got, want[NDIRS + 2];
	uint64_t set = 0;
	FILE *out = expect_path ? fopen(expect_path, "w") : NULL;

	if (expect_path && !out)
		fail("%s: %s", expect_path, strerror(errno));
	for (int d = 0; d < NDIRS; d++) {
		snprintf(path, sizeof(path), "%s/d%d", g.dir, d);
		uint64_t none = 0;
		space_ioctl(path, COWFS_SPACE_ALONE, &none, &got);
		want[d] = model_space(dir_members(d), 1);
		compare_figures(path, &got, &want[d]);
	}
	/* A set of two directories: what deleting both frees. */
	for (int d = 0; d < 2; d++) {
		snprintf(path, sizeof(path), "%s/d%d", g.dir, d);
		space_ioctl(path, COWFS_SPACE_SET_ADD, &set, &got);
	}
	space_ioctl(g.dir, COWFS_SPACE_SET_RESULT, &set, &got);
	want[NDIRS] = model_space(dir_members(0) | dir_members(1), 2);
	compare_figures("the set {d0, d1}", &got, &want[NDIRS]);
	uint64_t none = 0;
	space_ioctl(g.dir, COWFS_SPACE_ALONE, &none, &got);
	want[NDIRS + 1] = model_space(~0u, 1 + NDIRS);
	compare_figures(g.dir, &got, &want[NDIRS + 1]);
	if (want[NDIRS + 1].shared)
		fail("the whole tree has %" PRIu64 " shared bytes: nothing outside references them",
		     want[NDIRS + 1].shared);
	if (out) {
		fprintf(out, "{\n");
		for (int d = 0; d < NDIRS; d++) {
			snprintf(path, sizeof(path), "d%d", d);
			print_figures(out, path, &want[d], true);
		}
		print_figures(out, "set:d0,d1", &want[NDIRS], true);
		print_figures(out, ".", &want[NDIRS + 1], false);
		fprintf(out, "}\n");
		fclose(out);
	}
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "expect", required_argument, NULL, 'e' }, { 0 } };
	const char *expect = NULL;
	int c;

	g.seed = 20261202;
	g.steps = 2000;
	while ((c = getopt_long(argc, argv, "S:N:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': g.seed = strtoull(optarg, NULL, 0); break;
		case 'N': g.steps = strtol(optarg, NULL, 0); break;
		case 'q': g.quiet = true; break;
		case 'e': expect = optarg; break;
		default:
			fprintf(stderr, "usage: share_churn [-S SEED] [-N STEPS] [-q] [--expect FILE] DIR\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: share_churn [-S SEED] [-N STEPS] [-q] [--expect FILE] DIR\n");
		return 2;
	}
	g.dir = argv[optind];
	g.rng = g.seed;
	for (int d = 0; d < NDIRS; d++) {
		char p[600];
		snprintf(p, sizeof(p), "%s/d%d", g.dir, d);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			fail("mkdir %s: %s", p, strerror(errno));
	}
	/* The block size comes from the first file's COWFS_IOC_FILE_ID. */
	for (int i = 0; i < NFILES; i++)
		snprintf(g.files[i].path, sizeof(g.files[i].path), "%s/d%d/f%d", g.dir, i % NDIRS, i);
	g.bs = 0;
	{
		struct file_model *f0 = &g.files[0];
		int fd = open(f0->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			fail("create %s: %s", f0->path, strerror(errno));
		close(fd);
		read_id(f0);
	}
	for (int i = 0; i < NFILES; i++) {
		g.files[i].data = calloc(MAX_BLOCKS, g.bs);
		if (!g.files[i].data)
			fail("out of memory");
		create_file(&g.files[i]);
	}
	if (!g.quiet)
		printf("share_churn: seed %" PRIu64 ", %ld steps, block size %u\n", g.seed, g.steps, g.bs);
	for (g.step = 1; g.step <= g.steps; g.step++) {
		int op = random_step();
		if (op < 0)
			continue;
		g.counts[op]++;
		sync_mount();
		check_all();
	}
	check_space(expect);
	printf("share_churn: %ld steps:", g.steps);
	for (int i = 0; i < OP_COUNT; i++)
		printf(" %s %ld%s", op_names[i], g.counts[i], i + 1 < OP_COUNT ? "," : "\n");
	return 0;
}
