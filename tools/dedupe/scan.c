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
 * Reads are preads of up to SCAN_READ_BYTES over runs of consecutive chunks to hash, by
 * SCAN_THREADS threads, each on a file of its own.
 */
#include "tools/dedupe/parts.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/*
 * The mount's read-ahead (1 MiB by default): while a thread hashes one read, the kernel has the
 * next in flight. Reads of 8 MiB were no faster (the whole read waits, then nothing is in
 * flight while it is hashed) and take 8 times the buffer.
 */
#define SCAN_READ_BYTES (1u << 20)

/* ---- the cache of the locations of shared chunks ----------------------------------------- */

/*
 * By location (struct chunk_where), ADDR_WAYS entries a set, fixed size: a set that overflows
 * forgets an older entry, which costs only a chunk hashed again (its record then groups with
 * the first, and the server finds the range shared already). Sized for at most a quarter of
 * its entries in use. Entries carry the pass (tag) that made them, so a new pass needs no
 * clearing.
 *
 * The first chunk looked up at a location claims it (ADDR_PENDING) before it is read, so that
 * another thread's chunk at the same location, looked up while the first is being read, is
 * counted on it rather than read too: which chunk is read may depend on the threads' timing,
 * how many are read does not. Chunks at one location hold the same bytes, so the same hash and
 * pass: once the claimed chunk is found to belong to another pass (ADDR_OTHER_PASS), the
 * others are left out unread too.
 */
#define ADDR_PENDING    UINT32_MAX
#define ADDR_OTHER_PASS (UINT32_MAX - 1)
struct addr_entry {
	uint64_t loc;
	uint32_t rec;        /* the record of the chunk read here, or ADDR_* */
	uint32_t tag;
	uint32_t pending;    /* chunks counted here while ADDR_PENDING: refs once recorded */
	uint32_t unused;
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

/*
 * SCAN_THREADS files are read at once, each by a thread of its own: a read on the mount waits
 * for the server, which reads the image, and two readers keep both of a 2-core machine's cores
 * busy (measured on the 2 GiB benchmark tree, cold: `cat` of the files one at a time 4.8 s, two
 * at a time 2.8 s, three 3.4 s). What they share (the pass's records and address cache, the
 * counters, the progress line) is under one lock, taken once per read run and per chunk looked
 * up in the cache, never while reading or hashing.
 */
#define SCAN_THREADS 2

/* What a thread reads into: one run of consecutive chunks, where each lies and its hash. */
struct scan_worker {
	struct dd_scanner *sc;
	struct dd_pass *pass;
	uint8_t *buf;
	struct chunk_where *where;
	XXH128_hash_t *hash;
	int ret;                     /* of the thread: an error that ended the pass, or 0 */
};

struct dd_scanner {
	const struct dd_options *opt;
	struct dd_files *files;
	struct dd_stats *st;
	struct dd_progress *pg;
	size_t buf_chunks;
	struct scan_worker workers[SCAN_THREADS];
	pthread_mutex_t lock;        /* the pass, st, pg and the fields below */
	uint32_t next;               /* the next file to scan */
	bool stop;                   /* an error ended the pass: take no more files */
	uint64_t files_done, bytes_done;
};

static int worker_init(struct scan_worker *w, struct dd_scanner *sc)
{
	size_t bytes = (sc->buf_chunks * sc->opt->chunk + 4095) & ~(size_t)4095;

	w->sc = sc;
	w->buf = aligned_alloc(4096, bytes);
	w->where = calloc(sc->buf_chunks, sizeof(*w->where));
	w->hash = calloc(sc->buf_chunks, sizeof(*w->hash));
	return w->buf && w->where && w->hash ? 0 : -ENOMEM;
}

static void worker_free(struct scan_worker *w)
{
	free(w->buf);
	free(w->where);
	free(w->hash);
}

struct dd_scanner *dd_scanner_new(const struct dd_options *opt, struct dd_files *files,
				  struct dd_stats *st, struct dd_progress *pg)
{
	struct dd_scanner *sc = calloc(1, sizeof(*sc));
	int ret = 0;

	if (!sc)
		return NULL;
	sc->opt = opt;
	sc->files = files;
	sc->st = st;
	sc->pg = pg;
	sc->buf_chunks = opt->chunk >= SCAN_READ_BYTES ? 1 : SCAN_READ_BYTES / opt->chunk;
	for (int i = 0; i < SCAN_THREADS; i++)
		ret = ret ? ret : worker_init(&sc->workers[i], sc);
	if (ret == 0 && pthread_mutex_init(&sc->lock, NULL) == 0)
		return sc;
	for (int i = 0; i < SCAN_THREADS; i++)
		worker_free(&sc->workers[i]);
	free(sc);
	return NULL;
}

void dd_scanner_free(struct dd_scanner *sc)
{
	if (!sc)
		return;
	for (int i = 0; i < SCAN_THREADS; i++)
		worker_free(&sc->workers[i]);
	pthread_mutex_destroy(&sc->lock);
	free(sc);
}

/* The pass a hash belongs to: its share of the top 64 bits. */
static uint32_t hash_pass(const XXH128_hash_t *h, uint32_t passes)
{
	return (uint32_t)(((unsigned __int128)h->high64 * passes) >> 64);
}

/* Per file, what a scan of it needs. */
struct file_scan {
	int fd;
	uint32_t fi;
	uint64_t size;
	uint64_t hashed;             /* bytes of it recorded, taken back if it fails */
	struct extent_cursor cur;
};

/* The entry chunk w claimed, if no collision took it since. */
static struct addr_entry *own_claim(struct dd_pass *pass, const struct chunk_where *w)
{
	struct addr_entry *e;

	if (!w->loc_known)
		return NULL;
	e = addr_find(pass->cache, w->loc, pass->index + 1);
	return e && e->rec == ADDR_PENDING ? e : NULL;
}

/* Record chunk c (its hash in, where it lies): under sc->lock. -E2BIG: the pass is full. */
static int record_chunk(struct dd_scanner *sc, struct dd_pass *pass, struct file_scan *fs,
			uint64_t c, uint64_t len, const XXH128_hash_t *h, const struct chunk_where *w)
{
	struct addr_entry *e = own_claim(pass, w);
	struct chunk_rec *r;

	if (hash_pass(h, pass->count) != pass->index) {
		if (e)
			e->rec = ADDR_OTHER_PASS;
		return 0;
	}
	if (pass->n == pass->cap)
		return -E2BIG;
	r = &pass->slots[pass->n].rec;
	memset(r, 0, sizeof(*r));
	r->hash[0] = h->low64;
	r->hash[1] = h->high64;
	r->file = fs->fi;
	r->chunk = (uint32_t)c;
	r->refs = 1;
	r->flags = w->shared ? CHUNK_SHARED : 0;
	if (e) {
		r->refs = e->pending < UINT16_MAX ? (uint16_t)(1 + e->pending) : UINT16_MAX;
		sc->st->bytes_already_shared += (uint64_t)e->pending * len;
		e->rec = (uint32_t)pass->n;
		e->pending = 0;
	}
	pass->n++;
	sc->st->bytes_hashed += len;
	fs->hashed += len;
	return 0;
}

/*
 * Whether a chunk needs no reading: it lies on the same shared disk pieces as one this pass
 * has read or is reading (counted on that one). Otherwise, when its location is known, it
 * claims it (see ADDR_PENDING).
 */
static bool already_seen(struct dd_scanner *sc, struct dd_pass *pass, const struct chunk_where *w,
			 uint64_t len)
{
	struct addr_entry *e;
	bool seen = false;

	if (!w->loc_known)
		return false;
	pthread_mutex_lock(&sc->lock);
	e = addr_find(pass->cache, w->loc, pass->index + 1);
	if (e) {
		if (e->rec == ADDR_PENDING) {
			e->pending++;
			seen = true;
		} else if (e->rec == ADDR_OTHER_PASS) {
			seen = true;
		} else if (e->rec < pass->n && !(pass->slots[e->rec].rec.flags & CHUNK_DROPPED)) {
			/* (A dropped record: its file changed under the scan: read this one.) */
			if (pass->slots[e->rec].rec.refs < UINT16_MAX)
				pass->slots[e->rec].rec.refs++;
			sc->st->bytes_already_shared += len;
			seen = true;
		}
	}
	if (!seen) {
		if (!e)
			e = addr_new(pass->cache, w->loc, pass->index + 1);
		*e = (struct addr_entry){ .loc = w->loc, .rec = ADDR_PENDING, .tag = pass->index + 1 };
	}
	pthread_mutex_unlock(&sc->lock);
	return seen;
}

/* The claims of chunks that will not be recorded (their file failed): others may read them. */
static void release_claims(struct dd_scanner *sc, struct dd_pass *pass,
			   const struct chunk_where *where, size_t n)
{
	pthread_mutex_lock(&sc->lock);
	for (size_t i = 0; i < n; i++) {
		struct addr_entry *e = own_claim(pass, &where[i]);
		if (e)
			e->tag = 0;
	}
	pthread_mutex_unlock(&sc->lock);
}

static int read_fully(int fd, uint8_t *buf, uint64_t want, uint64_t off)
{
	uint64_t got = 0;

	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ESTALE;
		got += (uint64_t)r;
	}
	return 0;
}

/* Read chunks [first, first + n) and hash each. -ESTALE: the file shrank under the scan. */
static int hash_run(struct scan_worker *wk, struct file_scan *fs, uint64_t first, size_t n)
{
	struct dd_scanner *sc = wk->sc;
	uint64_t chunk = sc->opt->chunk, off = first * chunk, want = n * chunk;
	int ret;

	if (off + want > fs->size)
		want = fs->size - off;
	ret = read_fully(fs->fd, wk->buf, want, off);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		uint64_t len = want - i * chunk < chunk ? want - i * chunk : chunk;
		const uint8_t *data = wk->buf + i * chunk;
		wk->hash[i] = len == chunk ? XXH3_128bits(data, len) :
			      XXH3_128bits_withSeed(data, len, len);
	}
	pthread_mutex_lock(&sc->lock);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		uint64_t len = want - i * chunk < chunk ? want - i * chunk : chunk;
		ret = record_chunk(sc, wk->pass, fs, first + i, len, &wk->hash[i], &wk->where[i]);
	}
	sc->bytes_done += want;
	dd_progress_scan(sc->pg, wk->pass, sc->files_done, sc->files->n, sc->bytes_done);
	pthread_mutex_unlock(&sc->lock);
	return ret;
}

static int scan_chunks(struct scan_worker *wk, struct file_scan *fs)
{
	struct dd_scanner *sc = wk->sc;
	struct dd_pass *pass = wk->pass;
	uint64_t chunk = sc->opt->chunk;
	uint64_t nchunks = (fs->size + chunk - 1) / chunk;
	uint64_t run_first = 0, holes = 0;
	size_t run_n = 0;
	int ret = 0;

	for (uint64_t c = 0; ret == 0 && c < nchunks; c++) {
		uint64_t off = c * chunk;
		uint64_t len = fs->size - off < chunk ? fs->size - off : chunk;
		struct chunk_where w;

		ret = chunk_locate(&fs->cur, off, len, &w);
		if (ret < 0)
			break;
		bool skip = w.kind == CHUNK_SKIP;
		if (skip)
			holes += len;
		if (!skip)
			skip = already_seen(sc, pass, &w, len);
		if (run_n && (skip || run_first + run_n != c || run_n == sc->buf_chunks)) {
			ret = hash_run(wk, fs, run_first, run_n);
			if (ret < 0)
				release_claims(sc, pass, wk->where, run_n);
			run_n = 0;
		}
		if (skip)
			continue;
		if (run_n == 0)
			run_first = c;
		wk->where[run_n++] = w;
	}
	if (ret == 0 && run_n)
		ret = hash_run(wk, fs, run_first, run_n);
	/* The run not recorded: not hashed yet, or its hashing failed. */
	if (ret < 0)
		release_claims(sc, pass, wk->where, run_n);
	if (pass->index == 0) {
		pthread_mutex_lock(&sc->lock);
		sc->st->bytes_holes += holes;
		pthread_mutex_unlock(&sc->lock);
	}
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
	posix_fadvise(fs->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
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
 * Hash file fi's chunks into the pass. A file that vanished, was replaced or shrank is skipped
 * with a note (files_changed): the scan goes on. Errors of the pass itself (-E2BIG: the pass
 * is full; -ENOMEM; -EINVAL: a chunk size that is not a multiple of its blocksize) end it.
 */
static int scan_file(struct scan_worker *wk, uint32_t fi)
{
	struct dd_scanner *sc = wk->sc;
	struct dd_file *f = &sc->files->v[fi];
	bool first_pass = wk->pass->index == 0;
	struct file_scan fs = { .fi = fi };
	int ret;

	ret = file_open_checked(sc, f, first_pass, &fs);
	if (ret == 0) {
		if (first_pass) {
			pthread_mutex_lock(&sc->lock);
			sc->st->files_scanned++;
			sc->st->bytes_scanned += fs.size;
			pthread_mutex_unlock(&sc->lock);
		}
		ret = scan_chunks(wk, &fs);
		close(fs.fd);
	}
	pthread_mutex_lock(&sc->lock);
	sc->files_done++;
	if (ret < 0 && ret != -E2BIG && ret != -ENOMEM && ret != -EINVAL) {
		drop_file_records(sc, wk->pass, &fs);
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
	pthread_mutex_unlock(&sc->lock);
	return ret;
}

/* The next file for a thread to scan; false when none is left or the pass ended. */
static bool take_file(struct dd_scanner *sc, uint32_t *fi)
{
	bool ok;

	pthread_mutex_lock(&sc->lock);
	ok = !sc->stop && sc->next < sc->files->n;
	if (ok)
		*fi = sc->next++;
	pthread_mutex_unlock(&sc->lock);
	return ok;
}

static void *worker_run(void *arg)
{
	struct scan_worker *wk = arg;
	uint32_t fi;

	wk->ret = 0;
	while (wk->ret == 0 && take_file(wk->sc, &fi)) {
		wk->ret = scan_file(wk, fi);
		if (wk->ret < 0) {
			pthread_mutex_lock(&wk->sc->lock);
			wk->sc->stop = true;
			pthread_mutex_unlock(&wk->sc->lock);
		}
	}
	return NULL;
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
	pthread_t threads[SCAN_THREADS];
	bool started[SCAN_THREADS] = { false };
	int ret = 0;

	sc->next = 0;
	sc->stop = false;
	sc->files_done = 0;
	sc->bytes_done = 0;
	for (int i = 0; i < SCAN_THREADS; i++)
		sc->workers[i].pass = pass;
	/* The caller's thread is one of the readers; one that cannot be started is not needed. */
	for (int i = 1; i < SCAN_THREADS; i++)
		started[i] = pthread_create(&threads[i], NULL, worker_run, &sc->workers[i]) == 0;
	worker_run(&sc->workers[0]);
	for (int i = 1; i < SCAN_THREADS; i++) {
		if (started[i])
			pthread_join(threads[i], NULL);
	}
	for (int i = 0; i < SCAN_THREADS; i++) {
		if (started[i] || i == 0)
			ret = ret ? ret : sc->workers[i].ret;
	}
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
