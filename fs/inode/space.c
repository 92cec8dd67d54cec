/*
 * Space accounting (space.h): a set records every file extent item of its members, then
 * compares, extent by extent, the references it recorded with the extent's refcount.
 *
 * Locks: a file is read (and written back) in one transaction of its own, a directory in
 * batches of entries under the read lock, and the refcounts are looked up in batches of
 * extents: a walk over a huge tree never holds the filesystem for long.
 *
 * Note for snapshots (not built yet): refcounts count file extent items, and a snapshot
 * shares leaves rather than adding references to the extents in them. Once a set can reach
 * trees that share leaves, an extent behind a shared leaf must count as shared (or the set's
 * references be counted per tree block); today every fs tree has leaves of its own.
 */
#include "fs/inode/space.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fs/extent/extent.h"
#include "fs/inode/fmap.h"
#include "fs/inode/internal.h"
#include "fs/lib/compiler.h"

/* Directory entries read per hold of the lock, and extents looked up per hold. */
#define DIR_BATCH 256
#define REFCOUNT_BATCH 1024

/* One file extent item: the part [offset, offset + mapped) of the extent it references. */
struct space_record {
	uint64_t extent_start, extent_len;
	uint64_t offset, mapped;
};
_Static_assert(sizeof(struct space_record) == SPACE_RECORD_BYTES, "space.h says otherwise");

/* Inode numbers visited: open addressing, 0 is an empty slot, at most half full. */
struct ino_set {
	uint64_t *slots;
	size_t cap, count;
};

struct space_set {
	struct inode_tree *it;
	size_t budget, used;          /* bytes: the bound (cowfs_cache_bytes), and held */
	struct space_record *recs;
	size_t nrec, caprec;
	uint64_t *dirs;               /* directories still to read */
	size_t ndirs, capdirs;
	struct ino_set seen;
};

struct space_set *space_set_new(struct inode_tree *it)
{
	struct space_set *s = calloc(1, sizeof(*s));

	if (s) {
		s->it = it;
		s->budget = cowfs_cache_bytes(it->fs);
	}
	return s;
}

void space_set_free(struct space_set *s)
{
	if (!s)
		return;
	free(s->recs);
	free(s->dirs);
	free(s->seen.slots);
	free(s);
}

/* ---- memory, within the budget ------------------------------------------------------------- */

/* Trade `old` bytes held for `new`: -ENOMEM if that passes the budget. */
static int budget_swap(struct space_set *s, size_t old, size_t new)
{
	if (s->used - old + new > s->budget)
		return -ENOMEM;
	s->used = s->used - old + new;
	return 0;
}

/* The capacity an array of `size`-byte elements of capacity `cap` grows to for `need`: double,
 * or what is left of the budget. 0: not even `need` fits. */
static size_t grown_capacity(const struct space_set *s, size_t cap, size_t need, size_t size)
{
	size_t other = s->used - cap * size;
	size_t fits = s->budget > other ? (s->budget - other) / size : 0;
	size_t want = MAX(cap ? cap * 2 : 64, need);

	want = MIN(want, fits);
	return want >= need ? want : 0;
}

static int add_record(struct space_set *s, const struct fmap_seg *seg)
{
	if (s->nrec == s->caprec) {
		size_t cap = grown_capacity(s, s->caprec, s->nrec + 1, sizeof(*s->recs));
		struct space_record *v = cap ? realloc(s->recs, cap * sizeof(*v)) : NULL;
		if (!v)
			return -ENOMEM;
		budget_swap(s, s->caprec * sizeof(*v), cap * sizeof(*v));
		s->recs = v;
		s->caprec = cap;
	}
	s->recs[s->nrec++] = (struct space_record){ .extent_start = seg->extent_start,
						    .extent_len = seg->extent_len,
						    .offset = seg->disk - seg->extent_start,
						    .mapped = seg->len };
	return 0;
}

static int push_dir(struct space_set *s, uint64_t dir)
{
	if (s->ndirs == s->capdirs) {
		size_t cap = grown_capacity(s, s->capdirs, s->ndirs + 1, sizeof(*s->dirs));
		uint64_t *v = cap ? realloc(s->dirs, cap * sizeof(*v)) : NULL;
		if (!v)
			return -ENOMEM;
		budget_swap(s, s->capdirs * sizeof(*v), cap * sizeof(*v));
		s->dirs = v;
		s->capdirs = cap;
	}
	s->dirs[s->ndirs++] = dir;
	return 0;
}

static size_t ino_slot(const struct ino_set *h, uint64_t ino)
{
	size_t i = (size_t)(ino * 0x9e3779b97f4a7c15ull) & (h->cap - 1);

	while (h->slots[i] && h->slots[i] != ino)
		i = (i + 1) & (h->cap - 1);
	return i;
}

static int ino_set_grow(struct space_set *s)
{
	struct ino_set *h = &s->seen;
	struct ino_set n = { .cap = h->cap ? h->cap * 2 : 64, .count = h->count };
	int ret = budget_swap(s, h->cap * sizeof(*h->slots), n.cap * sizeof(*n.slots));

	if (ret < 0)
		return ret;
	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots) {
		budget_swap(s, n.cap * sizeof(*n.slots), h->cap * sizeof(*h->slots));
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->cap; i++)
		if (h->slots[i])
			n.slots[ino_slot(&n, h->slots[i])] = h->slots[i];
	free(h->slots);
	*h = n;
	return 0;
}

/* 1 if `ino` is new to the set (and now in it), 0 if it was in it already. */
static int visit(struct space_set *s, uint64_t ino)
{
	struct ino_set *h = &s->seen;
	int ret;

	if (h->cap && h->slots[ino_slot(h, ino)])
		return 0;
	if ((h->count + 1) * 2 > h->cap && (ret = ino_set_grow(s)) < 0)
		return ret;
	h->slots[ino_slot(h, ino)] = ino;
	h->count++;
	return 1;
}

/* ---- walking the trees ---------------------------------------------------------------------- */

static int record_extents(struct space_set *s, uint64_t ino)
{
	for (uint64_t off = 0;;) {
		struct fmap_seg seg;
		int ret = fmap_lookup(s->it, ino, off, UINT64_MAX, &seg);

		if (ret == 0 && seg.kind != FMAP_HOLE)
			ret = add_record(s, &seg);
		if (ret < 0 || seg.len >= UINT64_MAX - off)
			return ret;
		off += seg.len;
	}
}

/* A regular file: its extents as on disk once its dirty pages are written back. */
static int add_file(struct space_set *s, uint64_t ino)
{
	struct cowfs_trans *tx = cowfs_trans_begin(s->it->fs, ALLOC_NORMAL);
	struct inode in;
	int ret = inode_read(s->it, ino, &in);

	if (ret == 0 && S_ISREG(in.mode)) {
		ret = file_writeback_dirty(tx, s->it, ino);
		if (ret == 0)
			ret = record_extents(s, ino);
	}
	return cowfs_trans_end(tx, ret);
}

/* An entry found in a directory; one gone since (a race with unlink) adds nothing. */
static int add_child(struct space_set *s, uint64_t ino, uint8_t type)
{
	int ret = visit(s, ino);

	if (ret <= 0)
		return ret;
	if (type == DT_DIR)
		return push_dir(s, ino);
	if (type != DT_REG)
		return 0;
	ret = add_file(s, ino);
	return ret == -ENOENT ? 0 : ret;
}

struct dir_batch {
	struct {
		uint64_t ino;
		uint8_t type;
	} e[DIR_BATCH];
	size_t n;
	uint64_t cookie;    /* continues after the last entry taken */
	bool full;
};

static int batch_entry(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type,
		       uint64_t next_cookie)
{
	struct dir_batch *b = arg;
	bool dots = (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');

	if (b->n == DIR_BATCH) {
		b->full = true;
		return 1;
	}
	b->cookie = next_cookie;
	if (!dots) {
		b->e[b->n].ino = ino;
		b->e[b->n++].type = type;
	}
	return 0;
}

/* The entries of `dir`, a batch per hold of the lock (the entries are handled without it). */
static int read_dir(struct space_set *s, uint64_t dir)
{
	uint64_t cookie = 0;
	int ret;

	for (;;) {
		struct dir_batch b = { .cookie = cookie };
		ret = dir_readdir(s->it, dir, cookie, batch_entry, &b);
		for (size_t i = 0; i < b.n && ret == 0; i++)
			ret = add_child(s, b.e[i].ino, b.e[i].type);
		if (ret < 0 || !b.full)
			break;
		cookie = b.cookie;
	}
	/* A directory removed while the walk was on its way to it holds nothing. */
	return ret == -ENOENT ? 0 : ret;
}

int space_set_add(struct space_set *s, uint64_t ino)
{
	struct inode in;
	int ret;

	inode_lock_read(s->it);
	ret = inode_read(s->it, ino, &in);
	inode_unlock_read(s->it);
	if (ret == 0)
		ret = visit(s, ino);
	if (ret <= 0)
		return ret;
	if (S_ISREG(in.mode))
		return add_file(s, ino);
	if (!S_ISDIR(in.mode))
		return 0;
	ret = push_dir(s, ino);
	while (ret == 0 && s->ndirs)
		ret = read_dir(s, s->dirs[--s->ndirs]);
	return ret;
}

/* ---- measuring ------------------------------------------------------------------------------ */

static int record_cmp(const void *a, const void *b)
{
	const struct space_record *x = a, *y = b;

	if (x->extent_start != y->extent_start)
		return x->extent_start < y->extent_start ? -1 : 1;
	if (x->extent_len != y->extent_len)
		return x->extent_len < y->extent_len ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return 0;
}

static bool same_extent(const struct space_record *a, const struct space_record *b)
{
	return a->extent_start == b->extent_start && a->extent_len == b->extent_len;
}

/* What the records of one extent (sorted by offset) map: each reference, and their union. */
static void extent_usage(const struct space_record *r, size_t n, uint64_t *mapped,
			 uint64_t *covered)
{
	uint64_t cover_end = 0;

	*mapped = *covered = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t lo = MAX(r[i].offset, cover_end);
		uint64_t hi = MIN(r[i].offset + r[i].mapped, r[i].extent_len);
		*mapped += r[i].mapped;
		if (hi > lo) {
			*covered += hi - lo;
			cover_end = hi;
		}
	}
}

/* Count the extent of records [*i, ...) into `out`; *i moves past them. Lock held. */
static int count_extent(struct space_set *s, size_t *i, struct space_figures *out)
{
	const struct space_record *r = &s->recs[*i];
	uint64_t refs, mapped, covered;
	size_t n = 1;
	int ret;

	while (*i + n < s->nrec && same_extent(r, r + n))
		n++;
	*i += n;
	ret = extent_refcount(cowfs_extents(s->it->fs), r->extent_start, r->extent_len, &refs);
	/* Freed since it was recorded (space.h): nothing of it is left to count. */
	if (ret == -ENOENT || (ret == 0 && refs == 0))
		return 0;
	if (ret < 0)
		return ret;
	extent_usage(r, n, &mapped, &covered);
	out->extents++;
	out->referenced += mapped;
	if (refs <= n) {
		out->exclusive += r->extent_len;
		out->pinned += r->extent_len - covered;
	} else {
		out->shared += mapped;
	}
	return 0;
}

int space_set_result(struct space_set *s, struct space_figures *out)
{
	size_t i = 0;
	int ret = 0;

	*out = (struct space_figures){ .files = s->seen.count };
	if (s->nrec > 1)
		qsort(s->recs, s->nrec, sizeof(*s->recs), record_cmp);
	while (i < s->nrec && ret == 0) {
		inode_lock_read(s->it);
		for (size_t k = 0; k < REFCOUNT_BATCH && i < s->nrec && ret == 0; k++)
			ret = count_extent(s, &i, out);
		inode_unlock_read(s->it);
	}
	return ret;
}
