/*
 * Chunk fingerprints from the stored sector checksums (file.h: file_chunk_hashes).
 *
 * Every written sector already has its XXH3-64 in the checksum tree, so hashing the checksums
 * of a chunk's sectors fingerprints its bytes at 8 bytes read per sector, none of them data.
 * The cost is the checksum lookups, so they are made one per run of the map (a file extent
 * item, or the part of it a window holds), not one per chunk: the chunks are taken a window
 * at a time, the window's checksums gathered into one array walking its map once, then each
 * chunk hashed from its slice of that array.
 *
 * The file is seen as reads see it, as fiemap.c sees it: dirty pages first (they shadow the
 * extent under them, whose checksums are about to be stale), then the items.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "fs/extent/csum_tree.h"
#include "fs/extent/extent.h"
#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"
#include "fs/lib/compiler.h"
#include "fs/lib/endian.h"

/* Sectors whose checksums one window holds (512 KiB of them), unless one chunk has more. */
#define WINDOW_SECTORS (1u << 16)

#define CHUNK_NO_HASH (FILE_CHUNK_HOLE | FILE_CHUNK_UNWRITTEN | FILE_CHUNK_DELALLOC)

struct chunk_walk {
	struct inode_tree *it;
	uint64_t ino;
	uint64_t size;               /* i_size: the last chunk ends there */
	uint64_t chunk;              /* chunk_bytes */
	uint32_t ps;
	struct dirty_page **dirty;   /* the file's dirty pages from the first chunk on, by index */
	size_t ndirty, next_dirty;
	struct share_memos share;
	uint64_t *csums;             /* the window's sectors', from its first chunk's offset */
};

static bool chunk_args_valid(uint32_t ps, uint64_t start, uint64_t chunk_bytes)
{
	return chunk_bytes && chunk_bytes % ps == 0 && chunk_bytes <= FILE_CHUNK_MAX &&
	       start % chunk_bytes == 0;
}

/* The chunks of the window `c` (n of them) that [off, off + len) meets: [*first, *last]. */
static void chunks_met(const struct chunk_walk *w, const struct file_chunk *c, size_t n,
		       uint64_t off, uint64_t len, size_t *first, size_t *last)
{
	*first = (size_t)((off - c[0].offset) / w->chunk);
	*last = MIN(n - 1, (size_t)((off + len - 1 - c[0].offset) / w->chunk));
}

/* Flag every chunk [off, off + len) meets; none of them is one run of disk bytes. */
static void mark_unmapped(const struct chunk_walk *w, struct file_chunk *c, size_t n,
			  uint64_t off, uint64_t len, unsigned flag)
{
	size_t first, last;

	chunks_met(w, c, n, off, len, &first, &last);
	for (size_t i = first; i <= last; i++)
		c[i].flags = (c[i].flags | flag) & ~FILE_CHUNK_CONTIGUOUS;
}

/* [from, to) of chunk `c` is mapped by `seg` (DATA or PREALLOC): contiguity and sharing. */
static int chunk_add_mapped(struct chunk_walk *w, struct file_chunk *c, const struct fmap_seg *seg,
			    uint64_t from, uint64_t to)
{
	struct fmap_seg part = *seg;
	bool shared;
	int ret;

	part.off = from;
	part.disk = seg->disk + (from - seg->off);
	/* Contiguous until a piece does not continue where the chunk's first one began. */
	if (from == c->offset) {
		c->physical = part.disk;
		c->flags |= FILE_CHUNK_CONTIGUOUS;
	} else if (part.disk != c->physical + (from - c->offset)) {
		c->flags &= ~FILE_CHUNK_CONTIGUOUS;
	}
	if (c->flags & FILE_CHUNK_SHARED)
		return 0;
	ret = file_seg_reached_elsewhere(w->it, w->ino, &part, to - from, &w->share, &shared);
	if (ret == 0 && shared)
		c->flags |= FILE_CHUNK_SHARED;
	return ret;
}

/* A piece of the map in the window: its checksums (data) and what it makes of its chunks. */
static int add_seg(struct chunk_walk *w, struct file_chunk *c, size_t n, const struct fmap_seg *seg)
{
	uint64_t end = seg->off + seg->len;
	size_t first, last;
	int ret = 0;

	if (seg->kind == FMAP_HOLE) {
		mark_unmapped(w, c, n, seg->off, seg->len, FILE_CHUNK_HOLE);
		return 0;
	}
	if (seg->kind == FMAP_DATA)
		ret = csum_lookup(cowfs_extents(w->it->fs), seg->disk, seg->len / w->ps,
				  w->csums + (seg->off - c[0].offset) / w->ps);
	chunks_met(w, c, n, seg->off, seg->len, &first, &last);
	for (size_t i = first; i <= last && ret == 0; i++) {
		uint64_t cend = c[i].offset + c[i].length;
		if (seg->kind == FMAP_PREALLOC)
			c[i].flags |= FILE_CHUNK_UNWRITTEN;
		ret = chunk_add_mapped(w, &c[i], seg, MAX(seg->off, c[i].offset), MIN(end, cend));
	}
	return ret;
}

/* The run of consecutive dirty pages at `off` (the next one's), up to `end`: its length. */
static uint64_t dirty_run(struct chunk_walk *w, uint64_t end)
{
	size_t i = w->next_dirty, k = 1;

	while (i + k < w->ndirty && w->dirty[i + k]->index == w->dirty[i]->index + k &&
	       (w->dirty[i]->index + k) * w->ps < end)
		k++;
	w->next_dirty = i + k;
	return k * w->ps;
}

/* Walk the window's map (its sectors, to the end of the one holding its last byte). */
static int walk_window(struct chunk_walk *w, struct file_chunk *c, size_t n)
{
	uint64_t off = c[0].offset;
	uint64_t end = ALIGN_UP(c[n - 1].offset + c[n - 1].length, (uint64_t)w->ps);

	while (off < end) {
		struct fmap_seg seg;
		uint64_t dirty_at;
		int ret;

		while (w->next_dirty < w->ndirty && w->dirty[w->next_dirty]->index < off / w->ps)
			w->next_dirty++;
		dirty_at = w->next_dirty < w->ndirty ? w->dirty[w->next_dirty]->index * w->ps
						     : UINT64_MAX;
		if (dirty_at <= off) {
			uint64_t len = dirty_run(w, end);
			mark_unmapped(w, c, n, off, len, FILE_CHUNK_DELALLOC);
			off += len;
			continue;
		}
		ret = fmap_lookup(w->it, w->ino, off, MIN(dirty_at, end), &seg);
		if (ret == 0)
			ret = add_seg(w, c, n, &seg);
		if (ret < 0)
			return ret;
		off += seg.len;
	}
	return 0;
}

/* The fingerprint of chunk `c` from its sectors' checksums (host order; made little-endian
 * here, in place). */
static void chunk_hash(struct file_chunk *c, uint64_t *csums, uint32_t ps)
{
	size_t nsectors = (size_t)ALIGN_UP(c->length, (uint64_t)ps) / ps;
	XXH128_hash_t h;

	for (size_t i = 0; i < nsectors; i++)
		put_le64(&csums[i], csums[i]);
	h = XXH3_128bits_withSeed(csums, nsectors * sizeof(*csums), c->length);
	c->hash_lo = h.low64;
	c->hash_hi = h.high64;
	c->flags |= FILE_CHUNK_HASHED;
}

/* The n chunks from `off` on, one window. */
static int hash_window(struct chunk_walk *w, uint64_t off, struct file_chunk *c, size_t n)
{
	int ret;

	for (size_t i = 0; i < n; i++) {
		uint64_t at = off + i * w->chunk;
		c[i] = (struct file_chunk){ .offset = at, .length = MIN(w->chunk, w->size - at) };
	}
	ret = walk_window(w, c, n);
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (!(c[i].flags & CHUNK_NO_HASH))
			chunk_hash(&c[i], w->csums + i * (w->chunk / w->ps), w->ps);
		if (!(c[i].flags & FILE_CHUNK_CONTIGUOUS))
			c[i].physical = 0;
	}
	return ret;
}

static int hash_locked(struct chunk_walk *w, uint64_t start, struct file_chunk *out, size_t max,
		       size_t *n)
{
	uint64_t spc = w->chunk / w->ps;                    /* sectors per chunk */
	size_t total = (size_t)MIN((uint64_t)max, (w->size - start + w->chunk - 1) / w->chunk);
	size_t per_window = (size_t)MIN((uint64_t)total, MAX(1, WINDOW_SECTORS / spc));
	int ret = file_dirty_pages(w->it, w->ino, start / w->ps, &w->dirty, &w->ndirty);

	if (ret == 0) {
		w->csums = malloc(per_window * spc * sizeof(*w->csums));
		if (!w->csums)
			ret = -ENOMEM;
	}
	for (size_t done = 0; done < total && ret == 0;) {
		size_t k = MIN(per_window, total - done);
		ret = hash_window(w, start + done * w->chunk, out + done, k);
		done += k;
	}
	if (ret == 0)
		*n = total;
	free(w->csums);
	free(w->dirty);
	share_memos_release(&w->share);
	return ret;
}

int file_chunk_hashes(struct inode_tree *it, uint64_t ino, uint64_t start, uint64_t chunk_bytes,
		      bool sync, struct file_chunk *out, size_t max, size_t *n)
{
	uint32_t ps = cowfs_sectorsize(it->fs);
	struct cowfs_trans *tx;
	struct inode in;
	int ret;

	*n = 0;
	if (!chunk_args_valid(ps, start, chunk_bytes))
		return -EINVAL;
	ret = file_map_begin(it, ino, sync, &tx, &in);
	if (ret == 0 && start < in.size && max) {
		struct chunk_walk w = { .it = it, .ino = ino, .size = in.size,
					.chunk = chunk_bytes, .ps = ps };
		ret = hash_locked(&w, start, out, max, n);
	}
	return file_map_end(it, tx, ret);
}
