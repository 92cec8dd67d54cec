/*
 * A file's extent map as FIEMAP shows it (file.h: file_map_extents).
 *
 * The file is seen as reads see it: dirty pages first (DELALLOC: they have no place on disk
 * yet, and whatever extent lies under them is about to be replaced), then the file extent
 * items. Holes are not listed. Pieces that follow each other in the file and on disk with the
 * same flags are one extent, as btrfs reports them (filefrag then counts what a reader seeks
 * over, not how the items happen to be cut).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fs/extent/extent.h"
#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"
#include "fs/lib/compiler.h"

int file_writeback_dirty(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;

	return e && e->pages.count ? inode_writeback_one(tx, it, e) : 0;
}

/* One piece of the file: a run of dirty pages, or an item (or the part of it before a dirty
 * page). */
struct map_piece {
	uint64_t off, len, disk;
	unsigned flags;
};

/* A walk over one file's pieces in file order, under the filesystem lock. */
struct map_walk {
	struct inode_tree *it;
	uint64_t ino;
	uint64_t data_end;          /* i_size rounded up to a sector: no DATA reported past it */
	uint32_t ps;
	struct dirty_page **dirty;  /* the file's dirty pages from the walk's start, by index */
	size_t ndirty, next_dirty;
	struct share_memos share;   /* the last extents whose backrefs were read */
};

int file_regular_only(const struct inode *in)
{
	if (S_ISDIR(in->mode))
		return -EISDIR;
	return S_ISREG(in->mode) ? 0 : -EINVAL;
}

/* The memo for seg's extent if one holds it, else the least recently used. */
static struct extent_share_memo *memo_for(struct share_memos *s, uint64_t extent_start)
{
	size_t pick = 0;

	for (size_t i = 0; i < SHARE_MEMOS; i++) {
		if (s->m[i].valid && s->m[i].start == extent_start) {
			pick = i;
			break;
		}
		if (s->used[i] < s->used[pick])
			pick = i;
	}
	s->used[pick] = ++s->clock;
	return &s->m[pick];
}

int file_seg_shared(struct inode_tree *it, uint64_t ino, const struct fmap_seg *seg,
		    uint64_t len, struct share_memos *memos, bool *shared)
{
	struct extent_bytes b = { seg->extent_start, seg->extent_len, seg->disk, len };
	int ret = extent_shared_beyond(cowfs_extents(it->fs), inode_btree(it), ino, &b,
				       memo_for(memos, seg->extent_start), shared);

	if (ret == -ENOENT)
		return inode_corrupt(it, ino, "file extent item of an extent with no references");
	return ret;
}

int file_seg_reached_elsewhere(struct inode_tree *it, uint64_t ino, const struct fmap_seg *seg,
			       uint64_t len, struct share_memos *memos, bool *shared)
{
	int ret = file_seg_shared(it, ino, seg, len, memos, shared);

	if (ret == 0 && !*shared) {
		/* Its count says one reference, but the leaf holding it may be a snapshot's too
		 * (lazy counting: a snapshot shares leaves until one side changes them). */
		struct bt_key k = { ino, EXTENT_DATA_KEY, seg->off };
		bool exclusive;
		ret = bt_path_exclusive(inode_btree(it), &k, &exclusive);
		*shared = ret == 0 && !exclusive;
	}
	return ret;
}

void share_memos_release(struct share_memos *memos)
{
	for (size_t i = 0; i < SHARE_MEMOS; i++)
		extent_share_memo_release(&memos->m[i]);
}

/* 1 with *p made of `seg`, 0 if it shows nothing (data past end of file), or an errno. */
static int piece_from_seg(struct map_walk *w, const struct fmap_seg *seg, struct map_piece *p)
{
	uint64_t len = seg->len;
	bool shared;
	int ret;

	/* Preallocated space past end of file is reported whole (it is held); data only up to
	 * the sector that holds end of file, as btrfs does. */
	if (seg->kind == FMAP_DATA) {
		if (seg->off >= w->data_end)
			return 0;
		len = MIN(len, w->data_end - seg->off);
	}
	ret = file_seg_reached_elsewhere(w->it, w->ino, seg, len, &w->share, &shared);
	if (ret < 0)
		return ret;
	*p = (struct map_piece){ .off = seg->off, .len = len, .disk = seg->disk,
				 .flags = (seg->kind == FMAP_PREALLOC ? FILE_MAP_UNWRITTEN : 0) |
					  (shared ? FILE_MAP_SHARED : 0) };
	return 1;
}

/* The run of consecutive dirty pages starting at the next one. */
static int dirty_run(struct map_walk *w, struct map_piece *p)
{
	size_t i = w->next_dirty, k = 1;

	while (i + k < w->ndirty && w->dirty[i + k]->index == w->dirty[i]->index + k)
		k++;
	w->next_dirty = i + k;
	*p = (struct map_piece){ .off = w->dirty[i]->index * w->ps, .len = k * w->ps,
				 .flags = FILE_MAP_DELALLOC };
	return 1;
}

/* The first piece at or after `off` (sector aligned): 1 with *p set, 0 if there is none. */
static int next_piece(struct map_walk *w, uint64_t off, struct map_piece *p)
{
	for (;;) {
		struct fmap_seg seg;
		uint64_t dirty_at;
		int ret;

		while (w->next_dirty < w->ndirty && w->dirty[w->next_dirty]->index < off / w->ps)
			w->next_dirty++;
		dirty_at = w->next_dirty < w->ndirty ? w->dirty[w->next_dirty]->index * w->ps
						     : UINT64_MAX;
		if (dirty_at <= off)
			return dirty_run(w, p);
		ret = fmap_lookup(w->it, w->ino, off, dirty_at, &seg);
		if (ret == 0 && seg.kind != FMAP_HOLE)
			ret = piece_from_seg(w, &seg, p);
		if (ret != 0)
			return ret;
		if (seg.len >= UINT64_MAX - off)
			return 0;     /* a hole to the end, and no dirty page in it */
		off += seg.len;
	}
}

/* Where the walk for `start` begins: the item containing it (reported whole, as the kernel
 * reports extents) or, without one, start's sector. */
static int walk_start(struct map_walk *w, uint64_t start, uint64_t *from)
{
	struct bt_key key = { w->ino, EXTENT_DATA_KEY, start }, k;
	struct bt_cursor c;
	int ret;

	*from = start / w->ps * w->ps;
	bt_cursor_init(&c, inode_btree(w->it));
	ret = bt_cursor_seek(&c, &key, BT_SEEK_LE);
	if (ret == 0) {
		bt_cursor_item(&c, &k, NULL, NULL);
		if (k.objectid == w->ino && k.type == EXTENT_DATA_KEY && k.offset < *from)
			*from = k.offset;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

int file_dirty_pages(struct inode_tree *it, uint64_t ino, uint64_t first,
		     struct dirty_page ***out, size_t *n)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;

	*out = NULL;
	*n = 0;
	if (!e || !e->pages.count)
		return 0;
	*out = malloc(e->pages.count * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < e->pages.cap; i++) {
		struct dirty_page *p = &e->pages.slots[i];
		if (p->data && p->index >= first)
			(*out)[(*n)++] = p;
	}
	pages_sort(*out, *n);
	return 0;
}

static bool piece_extends(const struct file_map_extent *e, const struct map_piece *p)
{
	if (e->logical + e->length != p->off || e->flags != p->flags)
		return false;
	return (p->flags & FILE_MAP_DELALLOC) || e->physical + e->length == p->disk;
}

/* Fill out[] from the walk; 1 if it stopped with pieces left (out of room or range). */
static int fill_extents(struct map_walk *w, uint64_t off, uint64_t start, uint64_t end,
			struct file_map_extent *out, size_t max, size_t *n)
{
	struct map_piece p = { 0 };
	int ret;

	while ((ret = next_piece(w, off, &p)) == 1 && p.off < end) {
		off = p.off + p.len;
		if (off <= start)
			continue;
		if (*n && piece_extends(&out[*n - 1], &p)) {
			out[*n - 1].length += p.len;
			continue;
		}
		if (*n == max)
			break;
		out[(*n)++] = (struct file_map_extent){ .logical = p.off, .physical = p.disk,
						       .length = p.len, .flags = p.flags };
	}
	return ret;
}

static int map_locked(struct map_walk *w, uint64_t start, uint64_t end,
		      struct file_map_extent *out, size_t max, size_t *n)
{
	uint64_t off;
	int ret = walk_start(w, start, &off);

	if (ret == 0)
		ret = file_dirty_pages(w->it, w->ino, off / w->ps, &w->dirty, &w->ndirty);
	if (ret == 0)
		ret = fill_extents(w, off, start, end, out, max, n);
	/* The walk ran out of pieces: nothing follows the last one, whatever `end` was. */
	if (ret == 0 && *n)
		out[*n - 1].flags |= FILE_MAP_LAST;
	free(w->dirty);
	share_memos_release(&w->share);
	return ret < 0 ? ret : 0;
}

/*
 * Begin reading ino's map as FIEMAP and the chunk hashes do: under the read lock, or with `sync`
 * in a transaction (*tx) whose dirty pages of ino are written back first (they become extents
 * with checksums in the running transaction, which need not commit for the map to show them).
 * *in gets the inode. End with file_map_end, whatever this returned.
 */
int file_map_begin(struct inode_tree *it, uint64_t ino, bool sync, struct cowfs_trans **tx,
		   struct inode *in)
{
	int ret;

	*tx = NULL;
	if (sync)
		*tx = cowfs_trans_begin(it->fs, ALLOC_NORMAL);
	else
		inode_lock_read(it);
	ret = inode_read(it, ino, in);
	if (ret == 0)
		ret = file_regular_only(in);
	if (ret == 0 && sync)
		ret = file_writeback_dirty(*tx, it, ino);
	return ret;
}

int file_map_end(struct inode_tree *it, struct cowfs_trans *tx, int ret)
{
	if (tx)
		return cowfs_trans_end(tx, ret);
	inode_unlock_read(it);
	return ret;
}

int file_map_extents(struct inode_tree *it, uint64_t ino, uint64_t start, uint64_t end,
		     bool sync, struct file_map_extent *out, size_t max, size_t *n)
{
	struct cowfs_trans *tx;
	struct inode in;
	int ret;

	*n = 0;
	ret = file_map_begin(it, ino, sync, &tx, &in);
	if (ret == 0 && start < end) {
		uint32_t ps = cowfs_sectorsize(it->fs);
		struct map_walk w = { .it = it, .ino = ino, .ps = ps,
				      .data_end = ALIGN_UP(in.size, (uint64_t)ps) };
		ret = map_locked(&w, start, end, out, max, n);
	}
	return file_map_end(it, tx, ret);
}
