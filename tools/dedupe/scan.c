/*
 * Hashing a file's chunks. A chunk is `chunk` bytes at a multiple of it; a file's last, shorter
 * chunk (its tail) is hashed too, seeded with its length, so that it can only match another
 * tail of the same length, and a dedupe can then run to both files' ends (which the ioctl
 * allows unaligned): without it the tail would keep a destination's last extent alive.
 *
 * FIEMAP says what needs no reading: a chunk with a hole or a preallocated (unwritten) range in
 * it is left out, and a chunk made of the same shared disk pieces as one already seen in this
 * pass is left out too (it is the same disk bytes: already deduped), its count going to the
 * seen chunk's `refs`, which the plan prefers as a source.
 *
 * Reads are large preads over runs of consecutive chunks to hash (SCAN_READ_BYTES).
 */
#include "tools/dedupe/parts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>


#define SCAN_READ_BYTES (8u << 20)

/* ---- the cache of the locations of shared chunks ----------------------------------------- */

/*
 * Direct-mapped by location (struct chunk_where), fixed size: a collision forgets the older
 * entry, which costs only a chunk hashed again (its record then groups with the first and the
 * server finds the range shared already). Entries carry the pass (tag) that made them, so a new
 * pass needs no clearing.
 */
struct addr_entry {
	uint64_t loc;
	uint32_t rec;
	uint32_t tag;
};

struct dd_addr_cache {
	struct addr_entry *e;
	size_t mask;
};

struct dd_addr_cache *dd_addr_cache_new(uint64_t bytes, uint64_t chunks)
{
	struct dd_addr_cache *c = calloc(1, sizeof(*c));
	size_t n = 1024;

	if (!c)
		return NULL;
	while (n * 2 * sizeof(struct addr_entry) <= bytes && n < 2 * chunks)
		n *= 2;
	/* calloc of this size maps fresh zero pages: only the entries used become resident. */
	c->e = calloc(n, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	return c;
}

void dd_addr_cache_free(struct dd_addr_cache *c)
{
	if (c)
		free(c->e);
	free(c);
}

static struct addr_entry *addr_slot(struct dd_addr_cache *c, uint64_t loc)
{
	return &c->e[loc & c->mask];
}

/* ---- the extent cursor --------------------------------------------------------------------- */

/* Extents come a batch at a time; chunks are looked at in increasing order of offset. */
struct extent_cursor {
	int fd;
	struct cowfs_ioc_fiemap map;
	uint32_t i;
	bool loaded, last;
};

enum chunk_kind {
	CHUNK_SKIP,      /* a hole or preallocated range in it */
	CHUNK_DATA,
};

/*
 * Where a chunk's bytes are: `loc` names the disk pieces it is made of (their addresses and
 * lengths, mixed into 64 bits), known when every piece is placed and in a shared extent. Two
 * chunks with the same `loc` read the same disk bytes, so the second needs no hashing. (Equal
 * names of different pieces would only make a chunk be left out, never shared wrongly: the
 * server compares every byte it shares.)
 */
struct chunk_where {
	enum chunk_kind kind;
	bool loc_known;
	uint64_t loc;
	bool shared;
};

/* The extents from `start` on, one batch. The data was committed (SYNC) before the scan. */
static int fiemap_batch(int fd, uint64_t start, struct cowfs_ioc_fiemap *map)
{
	int ret;

	memset(map, 0, sizeof(*map));
	map->version = COWFS_FIEMAP_VERSION;
	map->start = start;
	map->length = UINT64_MAX;
	ret = cowfs_ioctl(fd, COWFS_IOC_FIEMAP, map);
	if (ret == 0 && map->count > COWFS_FIEMAP_BATCH)
		ret = -EPROTO;
	return ret;
}

/* The extent containing pos or the first after it; NULL past the last. */
static int cursor_at(struct extent_cursor *cur, uint64_t pos, const struct cowfs_ioc_extent **e)
{
	for (;;) {
		while (cur->loaded && cur->i < cur->map.count) {
			const struct cowfs_ioc_extent *x = &cur->map.extents[cur->i];
			if (x->logical + x->length > pos) {
				*e = x;
				return 0;
			}
			cur->i++;
		}
		if (cur->loaded && (cur->last || cur->map.count == 0)) {
			*e = NULL;
			return 0;
		}
		int ret = fiemap_batch(cur->fd, pos, &cur->map);
		if (ret < 0)
			return ret;
		cur->loaded = true;
		cur->i = 0;
		cur->last = cur->map.count == 0 ||
			    (cur->map.extents[cur->map.count - 1].flags & COWFS_EXTENT_LAST);
	}
}

static uint64_t loc_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static int chunk_locate(struct extent_cursor *cur, uint64_t off, uint64_t len,
			struct chunk_where *w)
{
	const struct cowfs_ioc_extent *e;
	uint64_t pos = off, end = off + len;
	int ret;

	memset(w, 0, sizeof(*w));
	w->kind = CHUNK_DATA;
	w->loc_known = true;
	while (pos < end) {
		ret = cursor_at(cur, pos, &e);
		if (ret < 0)
			return ret;
		if (!e || e->logical > pos || (e->flags & COWFS_EXTENT_UNWRITTEN)) {
			w->kind = CHUNK_SKIP;
			return 0;
		}
		uint64_t piece_end = e->logical + e->length < end ? e->logical + e->length : end;
		if (e->flags & COWFS_EXTENT_SHARED)
			w->shared = true;
		else
			w->loc_known = false;
		if (e->flags & COWFS_EXTENT_DELALLOC)
			w->loc_known = false;
		w->loc = loc_mix(loc_mix(w->loc, e->physical + (pos - e->logical)), piece_end - pos);
		pos = piece_end;
	}
	return 0;
}

/* ---- hashing ------------------------------------------------------------------------------- */

struct chunk_meta {
	struct chunk_where where;
};

struct dd_scanner {
	const struct dd_options *opt;
	struct dd_files *files;
	struct dd_stats *st;
	struct dd_progress *pg;
	uint8_t *buf;
	size_t buf_chunks;
	struct chunk_meta *meta;     /* of the chunks in buf */
	uint64_t files_done, bytes_done;
};

struct dd_scanner *dd_scanner_new(const struct dd_options *opt, struct dd_files *files,
				  struct dd_stats *st, struct dd_progress *pg)
{
	struct dd_scanner *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->opt = opt;
	sc->files = files;
	sc->st = st;
	sc->pg = pg;
	sc->buf_chunks = opt->chunk >= SCAN_READ_BYTES ? 1 : SCAN_READ_BYTES / opt->chunk;
	sc->buf = aligned_alloc(4096, (sc->buf_chunks * opt->chunk + 4095) & ~(size_t)4095);
	sc->meta = calloc(sc->buf_chunks, sizeof(*sc->meta));
	if (!sc->buf || !sc->meta) {
		dd_scanner_free(sc);
		return NULL;
	}
	return sc;
}

void dd_scanner_free(struct dd_scanner *sc)
{
	if (!sc)
		return;
	free(sc->buf);
	free(sc->meta);
	free(sc);
}

/* The pass a hash belongs to: its share of the top 64 bits. */
static uint32_t hash_pass(const uint64_t hash[2], uint32_t passes)
{
	return (uint32_t)(((unsigned __int128)hash[1] * passes) >> 64);
}

/* Per file, what a scan of it needs. */
struct file_scan {
	int fd;
	uint32_t fi;
	uint64_t size;
	struct extent_cursor cur;
};

static int keep_chunk(struct dd_scanner *sc, struct dd_pass *pass, const struct file_scan *fs,
		      uint64_t c, const uint8_t *data, uint64_t len, const struct chunk_where *w)
{
	XXH128_hash_t h = len == sc->opt->chunk ? XXH3_128bits(data, len) :
			  XXH3_128bits_withSeed(data, len, len);
	uint64_t hash[2] = { h.low64, h.high64 };
	struct chunk_rec *r;

	if (hash_pass(hash, pass->count) != pass->index)
		return 0;
	if (pass->n == pass->cap)
		return -E2BIG;
	r = &pass->slots[pass->n].rec;
	memset(r, 0, sizeof(*r));
	r->hash[0] = hash[0];
	r->hash[1] = hash[1];
	r->file = fs->fi;
	r->chunk = (uint32_t)c;
	r->refs = 1;
	r->flags = w->shared ? CHUNK_SHARED : 0;
	if (w->loc_known) {
		struct addr_entry *e = addr_slot(pass->cache, w->loc);
		*e = (struct addr_entry){ .loc = w->loc, .rec = (uint32_t)pass->n,
					  .tag = pass->index + 1 };
	}
	pass->n++;
	sc->st->bytes_hashed += len;
	return 0;
}

/* A chunk on the same shared disk pieces as one this pass has a record of: count it there. */
static bool already_seen(struct dd_scanner *sc, struct dd_pass *pass, const struct chunk_where *w,
			 uint64_t len)
{
	struct addr_entry *e;

	if (!w->loc_known)
		return false;
	e = addr_slot(pass->cache, w->loc);
	/* rec >= n: its record was dropped with a file that changed under the scan. */
	if (e->tag != pass->index + 1 || e->loc != w->loc || e->rec >= pass->n)
		return false;
	if (pass->slots[e->rec].rec.refs < UINT16_MAX)
		pass->slots[e->rec].rec.refs++;
	sc->st->bytes_already_shared += len;
	return true;
}

/* Read chunks [first, first + n) and hash each. -ESTALE: the file shrank under the scan. */
static int hash_run(struct dd_scanner *sc, struct dd_pass *pass, struct file_scan *fs,
		    uint64_t first, size_t n)
{
	uint64_t off = first * sc->opt->chunk;
	uint64_t want = n * sc->opt->chunk, got = 0;
	int ret;

	if (off + want > fs->size)
		want = fs->size - off;
	while (got < want) {
		ssize_t r = pread(fs->fd, sc->buf + got, want - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ESTALE;
		got += (uint64_t)r;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t coff = i * sc->opt->chunk;
		uint64_t len = want - coff < sc->opt->chunk ? want - coff : sc->opt->chunk;
		ret = keep_chunk(sc, pass, fs, first + i, sc->buf + coff, len, &sc->meta[i].where);
		if (ret < 0)
			return ret;
	}
	sc->bytes_done += want;
	dd_progress_scan(sc->pg, pass, sc->files_done, sc->files->n, sc->bytes_done);
	return 0;
}

static int scan_chunks(struct dd_scanner *sc, struct dd_pass *pass, struct file_scan *fs)
{
	uint64_t chunk = sc->opt->chunk;
	uint64_t nchunks = (fs->size + chunk - 1) / chunk;
	uint64_t run_first = 0;
	size_t run_n = 0;
	int ret;

	for (uint64_t c = 0; c < nchunks; c++) {
		uint64_t off = c * chunk;
		uint64_t len = fs->size - off < chunk ? fs->size - off : chunk;
		struct chunk_where w;

		ret = chunk_locate(&fs->cur, off, len, &w);
		if (ret < 0)
			return ret;
		bool skip = w.kind == CHUNK_SKIP;
		if (skip && pass->index == 0)
			sc->st->bytes_holes += len;
		if (!skip)
			skip = already_seen(sc, pass, &w, len);
		if (run_n && (skip || run_first + run_n != c || run_n == sc->buf_chunks)) {
			ret = hash_run(sc, pass, fs, run_first, run_n);
			if (ret < 0)
				return ret;
			run_n = 0;
		}
		if (skip)
			continue;
		if (run_n == 0)
			run_first = c;
		sc->meta[run_n++].where = w;
	}
	return run_n ? hash_run(sc, pass, fs, run_first, run_n) : 0;
}

/* Opened without updating its atime where the caller may (O_NOATIME needs ownership). */
static int open_for_reading(const char *path, struct cowfs_file *cf)
{
	int ret = cowfs_file_open(AT_FDCWD, path, O_RDONLY | O_NOATIME, 0, cf);

	if (ret == -EPERM)
		ret = cowfs_file_open(AT_FDCWD, path, O_RDONLY, 0, cf);
	return ret;
}

/* The file at the path must still be the one the walk found (and, after pass 0, scanned). */
static int file_open_checked(struct dd_scanner *sc, struct dd_file *f, bool first_pass,
			     struct file_scan *fs)
{
	struct cowfs_file cf;
	int ret = open_for_reading(f->path, &cf);

	if (ret < 0)
		return ret;
	if ((uint64_t)cf.ino != f->ino || !S_ISREG(cf.mode))
		ret = -ESTALE;
	else if (sc->opt->chunk % cf.id.blocksize)
		ret = -EINVAL;
	else if (!first_pass && (!f->scanned || memcmp(&cf.id.file, &f->id, sizeof(f->id))))
		ret = -ESTALE;
	if (ret < 0) {
		cowfs_file_close(&cf);
		return ret;
	}
	f->id = cf.id.file;
	fs->fd = cf.fd;
	fs->size = cf.size;
	if (first_pass)
		f->size = fs->size;
	else if (fs->size > f->size)
		fs->size = f->size;
	posix_fadvise(fs->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	memset(&fs->cur, 0, sizeof(fs->cur));
	fs->cur.fd = fs->fd;
	return 0;
}

/*
 * A file that vanished, was replaced or shrank is skipped with a note (files_changed): the scan
 * goes on. Errors of the pass itself (-E2BIG, -ENOMEM) end it.
 */
int dd_scan_file(struct dd_scanner *sc, struct dd_pass *pass, uint32_t fi)
{
	struct dd_file *f = &sc->files->v[fi];
	bool first_pass = pass->index == 0;
	struct file_scan fs = { .fi = fi };
	size_t records_before = pass->n;
	uint64_t hashed_before = sc->st->bytes_hashed;
	int ret;

	ret = file_open_checked(sc, f, first_pass, &fs);
	if (ret == 0) {
		if (first_pass) {
			sc->st->files_scanned++;
			sc->st->bytes_scanned += fs.size;
		}
		ret = scan_chunks(sc, pass, &fs);
		close(fs.fd);
	}
	sc->files_done++;
	if (ret == -E2BIG || ret == -ENOMEM)
		return ret;
	if (ret == -EINVAL) {
		fprintf(stderr, DD_PROG ": %s: the chunk size is not a multiple of its blocksize\n",
			f->path);
		return ret;
	}
	if (ret < 0) {
		/* What was hashed of it might not be what it holds now: forget it. */
		pass->n = records_before;
		sc->st->bytes_hashed = hashed_before;
		if (first_pass)
			fprintf(stderr, DD_PROG ": %s: %s (skipped)\n", f->path,
				ret == -ESTALE ? "changed during the scan" : strerror(-ret));
		sc->st->files_changed += first_pass;
		f->scanned = false;
		return 0;
	}
	f->scanned = first_pass ? true : f->scanned;
	return 0;
}

void dd_scanner_pass(struct dd_scanner *sc)
{
	sc->files_done = 0;
	sc->bytes_done = 0;
}

uint64_t dd_chunks_upper_bound(const struct dd_files *files, uint64_t chunk)
{
	uint64_t n = 0;

	for (size_t i = 0; i < files->n; i++)
		n += (files->v[i].size + chunk - 1) / chunk;
	return n;
}
