/*
 * Finding a file's chunks' fingerprints. A chunk is `chunk` bytes at a multiple of it; a
 * file's last, shorter chunk (its tail) counts too, its fingerprint seeded with its length, so
 * that it can only match another tail of the same length, and a dedupe can then run to both
 * files' ends (which the ioctl allows unaligned): without it the tail would keep a
 * destination's last extent alive.
 *
 * The fingerprints come from the server (COWFS_IOC_CHUNK_HASHES): it hashes the per-sector
 * checksums it already stores, so no data crosses the mount. A chunk the server gives no
 * fingerprint (a hole or preallocated range in it) is left out, and so is a chunk on the same
 * shared disk bytes as one already recorded in this pass (already deduped): its count goes to
 * the recorded chunk's `refs`, which the plan prefers as a source. Equal fingerprints are only
 * candidates: the server compares the bytes before it shares them.
 *
 * One thread: a call answers 256 chunks (32 MiB at 128 KiB chunks) from the checksum tree, so
 * the scan waits on nothing a second thread could overlap.
 */
#include "tools/dedupe/parts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the cache of the locations of shared chunks ----------------------------------------- */

/*
 * By location (struct chunk_where), ADDR_WAYS entries a set, fixed size: a set that overflows
 * forgets an older entry, which costs only a chunk recorded again (its record then groups with
 * the first, and the server finds the range shared already). Sized for at most a quarter of
 * its entries in use. Entries carry the pass (tag) that made them, so a new pass needs no
 * clearing.
 */
struct addr_entry {
	uint64_t loc;
	uint32_t rec;        /* the record of the chunk seen here */
	uint32_t tag;
};

#define ADDR_WAYS 4

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
	while (n * 2 * sizeof(struct addr_entry) <= bytes && n < 4 * chunks)
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

static struct addr_entry *addr_set(struct dd_addr_cache *c, uint64_t loc)
{
	return &c->e[loc & c->mask & ~(size_t)(ADDR_WAYS - 1)];
}

/* The entry of `loc` made in the pass `tag`, or NULL. */
static struct addr_entry *addr_find(struct dd_addr_cache *c, uint64_t loc, uint32_t tag)
{
	struct addr_entry *set = addr_set(c, loc);

	for (int i = 0; i < ADDR_WAYS; i++) {
		if (set[i].tag == tag && set[i].loc == loc)
			return &set[i];
	}
	return NULL;
}

/* Where a new entry of `loc` goes: a free one of its set, else one chosen by loc. */
static struct addr_entry *addr_new(struct dd_addr_cache *c, uint64_t loc, uint32_t tag)
{
	struct addr_entry *set = addr_set(c, loc);

	for (int i = 0; i < ADDR_WAYS; i++) {
		if (set[i].tag != tag)
			return &set[i];
	}
	return &set[(loc >> 40) % ADDR_WAYS];
}

/* ---- where a shared chunk lies ------------------------------------------------------------- */

/*
 * `loc` names the disk pieces a chunk is made of (their addresses and lengths, mixed into 64
 * bits). Two chunks with the same `loc` are the same disk bytes, so the second is already
 * shared. (Equal names of different pieces would only make a chunk be left out, never shared
 * wrongly: the server compares every byte it shares.) A chunk in one run of disk bytes
 * (CONTIGUOUS) is named by its physical address; one in several, only when shared, from
 * FIEMAP (extent boundaries are anywhere: appends, earlier dedupes of other lengths), else a
 * second run would dedupe those chunks again.
 */
struct chunk_where {
	bool loc_known;
	uint64_t loc;
};

/* Extents come a batch at a time; chunks are looked at in increasing order of offset. */
struct extent_cursor {
	int fd;
	struct cowfs_ioc_fiemap map;
	uint32_t i;
	bool loaded, last;
};

/* The extents from `start` on, one batch. */
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

/* A chunk in several pieces: known when every piece is placed and in a shared extent. */
static int chunk_locate_pieces(struct extent_cursor *cur, uint64_t off, uint64_t len,
			       struct chunk_where *w)
{
	const struct cowfs_ioc_extent *e;
	uint64_t pos = off, end = off + len;
	int ret;

	w->loc_known = false;
	w->loc = 0;
	while (pos < end) {
		ret = cursor_at(cur, pos, &e);
		if (ret < 0)
			return ret;
		if (!e || e->logical > pos || !(e->flags & COWFS_EXTENT_SHARED) ||
		    (e->flags & (COWFS_EXTENT_UNWRITTEN | COWFS_EXTENT_DELALLOC)))
			return 0;
		uint64_t piece_end = e->logical + e->length < end ? e->logical + e->length : end;
		w->loc = loc_mix(loc_mix(w->loc, e->physical + (pos - e->logical)), piece_end - pos);
		pos = piece_end;
	}
	w->loc_known = true;
	return 0;
}

/* Where chunk ch lies, if it is shared (one piece: the same name FIEMAP's would give). */
static int chunk_locate(struct extent_cursor *cur, const struct cowfs_ioc_chunk *ch,
			struct chunk_where *w)
{
	w->loc_known = false;
	if (!(ch->flags & COWFS_CHUNK_SHARED))
		return 0;
	if (ch->flags & COWFS_CHUNK_CONTIGUOUS) {
		w->loc_known = true;
		w->loc = loc_mix(loc_mix(0, ch->physical), ch->length);
		return 0;
	}
	return chunk_locate_pieces(cur, ch->offset, ch->length, w);
}

/* ---- the scan ------------------------------------------------------------------------------ */

struct dd_scanner {
	const struct dd_options *opt;
	struct dd_files *files;
	struct dd_stats *st;
	struct dd_progress *pg;
	struct cowfs_ioc_chunk_hashes batch;
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
	return sc;
}

void dd_scanner_free(struct dd_scanner *sc)
{
	free(sc);
}

/* The pass a fingerprint belongs to: its share of the top 64 bits. */
static uint32_t hash_pass(uint64_t high64, uint32_t passes)
{
	return (uint32_t)(((unsigned __int128)high64 * passes) >> 64);
}

/* Per file, what a scan of it needs. */
struct file_scan {
	int fd;
	uint32_t fi;
	uint64_t size;
	uint64_t hashed;             /* bytes of it recorded, taken back if it fails */
	struct extent_cursor cur;
};

/* The record a chunk at w would be counted on: one this pass made at its location. */
static struct chunk_rec *seen_at(struct dd_pass *pass, const struct chunk_where *w,
				 struct addr_entry **e)
{
	*e = w->loc_known ? addr_find(pass->cache, w->loc, pass->index + 1) : NULL;
	/* (A dropped record: its file changed under the scan: record this one.) */
	if (*e && (*e)->rec < pass->n && !(pass->slots[(*e)->rec].rec.flags & CHUNK_DROPPED))
		return &pass->slots[(*e)->rec].rec;
	return NULL;
}

/* Record chunk ch of the pass. -E2BIG: the pass is full. */
static int record_chunk(struct dd_scanner *sc, struct dd_pass *pass, struct file_scan *fs,
			const struct cowfs_ioc_chunk *ch)
{
	struct chunk_where w;
	struct addr_entry *e;
	struct chunk_rec *r;
	int ret;

	ret = chunk_locate(&fs->cur, ch, &w);
	if (ret < 0)
		return ret;
	r = seen_at(pass, &w, &e);
	if (r) {
		if (r->refs < UINT16_MAX)
			r->refs++;
		sc->st->bytes_already_shared += ch->length;
		return 0;
	}
	if (pass->n == pass->cap)
		return -E2BIG;
	if (w.loc_known) {
		if (!e)
			e = addr_new(pass->cache, w.loc, pass->index + 1);
		*e = (struct addr_entry){ .loc = w.loc, .rec = (uint32_t)pass->n,
					  .tag = pass->index + 1 };
	}
	r = &pass->slots[pass->n++].rec;
	memset(r, 0, sizeof(*r));
	r->hash[0] = ch->hash_lo;
	r->hash[1] = ch->hash_hi;
	r->file = fs->fi;
	r->chunk = (uint32_t)(ch->offset / sc->opt->chunk);
	r->refs = 1;
	r->flags = ch->flags & COWFS_CHUNK_SHARED ? CHUNK_SHARED : 0;
	sc->st->bytes_hashed += ch->length;
	fs->hashed += ch->length;
	return 0;
}

/* One batch of fingerprints from `start`, dirty data written back first if `sync`. */
static int chunk_batch(struct dd_scanner *sc, int fd, uint64_t start, bool sync)
{
	struct cowfs_ioc_chunk_hashes *b = &sc->batch;
	int ret;

	memset(b, 0, offsetof(struct cowfs_ioc_chunk_hashes, chunks));
	b->version = COWFS_CHUNK_HASHES_VERSION;
	b->flags = sync ? COWFS_CHUNK_SYNC : 0;
	b->chunk_bytes = sc->opt->chunk;
	b->start = start;
	ret = cowfs_ioctl(fd, COWFS_IOC_CHUNK_HASHES, b);
	if (ret == 0 && b->count > COWFS_CHUNK_BATCH)
		ret = -EPROTO;
	return ret;
}

static bool batch_has_dirty(const struct cowfs_ioc_chunk_hashes *b)
{
	for (uint32_t i = 0; i < b->count; i++) {
		if (b->chunks[i].flags & COWFS_CHUNK_DELALLOC)
			return true;
	}
	return false;
}

/*
 * The batch from `start`. The first of a file writes its dirty data back (the SYNC before the
 * scan does not cover writes since); a later one only if some of it was written since.
 */
static int file_batch(struct dd_scanner *sc, struct file_scan *fs, uint64_t start)
{
	int ret = chunk_batch(sc, fs->fd, start, start == 0);

	if (ret == 0 && start && batch_has_dirty(&sc->batch))
		ret = chunk_batch(sc, fs->fd, start, true);
	return ret;
}

/*
 * The batch's chunks of the pass recorded; false past the size the scan goes to. -ESTALE:
 * a chunk that is not as long as the file's size says (it changed under the scan).
 */
static int record_batch(struct dd_scanner *sc, struct dd_pass *pass, struct file_scan *fs,
			uint64_t *holes)
{
	const struct cowfs_ioc_chunk_hashes *b = &sc->batch;
	uint64_t chunk = sc->opt->chunk;
	int ret = 0;

	for (uint32_t i = 0; ret == 0 && i < b->count; i++) {
		const struct cowfs_ioc_chunk *ch = &b->chunks[i];
		uint64_t off = b->start + i * chunk;

		if (off >= fs->size)
			break;
		if (ch->offset != off || ch->length != (fs->size - off < chunk ? fs->size - off : chunk))
			return -ESTALE;
		sc->bytes_done += ch->length;
		if (!(ch->flags & COWFS_CHUNK_HASHED)) {
			if (ch->flags & (COWFS_CHUNK_HOLE | COWFS_CHUNK_UNWRITTEN))
				*holes += ch->length;
			continue;
		}
		if (hash_pass(ch->hash_hi, pass->count) == pass->index)
			ret = record_chunk(sc, pass, fs, ch);
	}
	return ret;
}

static int scan_chunks(struct dd_scanner *sc, struct dd_pass *pass, struct file_scan *fs)
{
	uint64_t start = 0, holes = 0;
	int ret = 0;

	while (ret == 0 && start < fs->size) {
		ret = file_batch(sc, fs, start);
		if (ret == 0 && sc->batch.count == 0)
			ret = -ESTALE;          /* it shrank */
		if (ret == 0)
			ret = record_batch(sc, pass, fs, &holes);
		start += (uint64_t)sc->batch.count * sc->opt->chunk;
		dd_progress_scan(sc->pg, pass, sc->files_done, sc->files->n, sc->bytes_done);
	}
	if (pass->index == 0)
		sc->st->bytes_holes += holes;
	return ret;
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
	memset(&fs->cur, 0, sizeof(fs->cur));
	fs->cur.fd = fs->fd;
	return 0;
}

/* What was recorded of a file that failed might not be what it holds now: drop it. */
static void drop_file_records(struct dd_scanner *sc, struct dd_pass *pass, struct file_scan *fs)
{
	for (size_t i = 0; fs->hashed && i < pass->n; i++) {
		if (pass->slots[i].rec.file == fs->fi)
			pass->slots[i].rec.flags |= CHUNK_DROPPED;
	}
	sc->st->bytes_hashed -= fs->hashed;
}

/*
 * Record file fi's chunks of the pass. A file that vanished, was replaced or shrank is skipped
 * with a note (files_changed): the scan goes on. Errors of the pass itself (-E2BIG: the pass
 * is full; -ENOMEM; -EINVAL: a chunk size that is not a multiple of its blocksize) end it.
 */
static int scan_file(struct dd_scanner *sc, struct dd_pass *pass, uint32_t fi)
{
	struct dd_file *f = &sc->files->v[fi];
	bool first_pass = pass->index == 0;
	struct file_scan fs = { .fi = fi };
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
	if (ret < 0 && ret != -E2BIG && ret != -ENOMEM && ret != -EINVAL) {
		drop_file_records(sc, pass, &fs);
		if (first_pass)
			fprintf(stderr, DD_PROG ": %s: %s (skipped)\n", f->path,
				ret == -ESTALE ? "changed during the scan" : strerror(-ret));
		sc->st->files_changed += first_pass;
		f->scanned = false;
		ret = 0;
	} else if (ret == 0 && first_pass) {
		f->scanned = true;
	}
	if (ret == -EINVAL)
		fprintf(stderr, DD_PROG ": %s: the chunk size is not a multiple of its blocksize\n",
			f->path);
	return ret;
}

/* The records of files that failed out; the cache is not used after the scan of a pass. */
static void compact_records(struct dd_pass *pass)
{
	size_t w = 0;

	for (size_t r = 0; r < pass->n; r++) {
		if (!(pass->slots[r].rec.flags & CHUNK_DROPPED))
			pass->slots[w++] = pass->slots[r];
	}
	pass->n = w;
}

int dd_scan_pass(struct dd_scanner *sc, struct dd_pass *pass)
{
	int ret = 0;

	sc->files_done = 0;
	sc->bytes_done = 0;
	for (uint32_t fi = 0; ret == 0 && fi < sc->files->n; fi++)
		ret = scan_file(sc, pass, fi);
	compact_records(pass);
	return ret;
}

uint64_t dd_chunks_upper_bound(const struct dd_files *files, uint64_t chunk)
{
	uint64_t n = 0;

	for (size_t i = 0; i < files->n; i++)
		n += (files->v[i].size + chunk - 1) / chunk;
	return n;
}
