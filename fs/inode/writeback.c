/*
 * Write-back of dirty file data (delayed allocation): first in every commit, and in the
 * background between commits (a flush).
 *
 * Each inode's dirty pages are sorted; every run of consecutive pages becomes as few new data
 * extents as the allocator can give (up to FILE_EXTENT_MAX each, placed after the previous
 * one when possible), written in one batch, checksummed into the checksum tree and mapped
 * over the run, which cuts whatever the file had there before. The commit's own flush makes
 * the data durable before the superblock that points at it: no separate ordering is needed.
 *
 * Allocation uses the privileged class: the space was promised when the data was buffered
 * (fs->delalloc_bytes), and write-back must not fail for want of it. Pages written into
 * preallocated space go where it is, needing none (inplace.c).
 *
 * Why flushes, and why writes may go on during one. Inside a commit the data I/O runs with
 * the lock held, and a writer waits for all of it (70 ms for 32 MiB of scattered pages here).
 * So once buffered data passes half its bound, the
 * timer thread flushes: it takes the pages (pages_take: copies of index and memory, the
 * table may change meanwhile) and gives them extents with the lock held, lets the lock go to
 * write the data, and takes it again to insert checksums and maps. Meanwhile:
 *   - writes go on (cowfs_trans_begin_beside_flush): a page under write-back is not changed
 *     but given a copy (page_get), so the memory being written stays as taken; the copy is
 *     dirty again, and pages_written leaves it in the table. Sizes and times they set are in
 *     the tree at once, as ever: no commit can start before the flush has mapped its data
 *     (cowfs_trans_commit_wait), so a committed size never reaches past data the commit lacks.
 *   - reads go on: the pages are still in the table, and the map is untouched until the
 *     lock is held again.
 *   - everything else waits (cowfs_trans_begin): a truncate, punch, clone or unlink would
 *     drop pages being written or change the map under the extents about to be inserted.
 *   - the fsync log: pages it did not hold are on disk now, but only in the running
 *     transaction, so fsync of such a file commits until the next commit (log_unfit).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/extent/csum_tree.h"
#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"

static int adjust_nbytes(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, int64_t delta)
{
	struct inode in;
	int ret;

	if (delta == 0)
		return 0;
	ret = inode_read(it, ino, &in);
	if (ret < 0)
		return ret;
	in.nbytes += delta;
	return inode_write(tx, it, ino, &in);
}

/* Pages are gathered into requests of this size: one request per page would cost the device
 * layer (and the kernel under it) thousands of requests per extent. */
#define WB_REQUEST_BYTES (1u << 20)
/* Below this, pages contiguous in memory are still staged (fewer, larger requests win). */
#define WB_MIN_DIRECT (64u << 10)
/* Requests submitted together, and the staging memory one submission may use. */
#define WB_WINDOW_REQUESTS 64u
#define WB_STAGE_BYTES (16u << 20)

/* Pages v[first, first + n) of an inode go to disk: a new extent, or (in place, extent_len
 * not 0) the preallocated extent [extent_start, + extent_len) that holds disk. */
struct wb_piece {
	size_t first, n;
	uint64_t disk;
	uint64_t extent_start, extent_len;
};

/* Write-back of one inode: its dirty pages sorted, and where each piece of them goes. */
struct wb_plan {
	uint64_t ino;
	struct dirty_page *v;   /* copies (pages_take) */
	size_t n;
	struct wb_piece *pieces;
	size_t npieces, cap;
};

/* How many of pages [0, n) follow each other in memory (from the first). */
static size_t contiguous_pages(const struct dirty_page *pages, size_t n, uint32_t ps)
{
	size_t k = 1;

	while (k < n && pages[k].data == pages[0].data + (size_t)k * ps)
		k++;
	return k;
}

/* Below this a run may be split over small free ranges (the holes freed tree blocks leave);
 * above it, it first looks for a range this long, so streaming data stays contiguous. */
#define WB_MIN_PIECE (1ull << 20)

static int alloc_data(struct cowfs_trans *tx, struct extents *x, uint64_t want, uint64_t hint,
		      uint64_t *disk, uint64_t *len)
{
	uint64_t piece = want < WB_MIN_PIECE ? want : WB_MIN_PIECE;
	int ret = extent_alloc_data(x, &tx->bt, piece, want, hint, disk, len);

	if (ret == -ENOSPC && piece > x->sectorsize)
		ret = extent_alloc_data(x, &tx->bt, x->sectorsize, want, hint, disk, len);
	return ret;
}

static int plan_add(struct wb_plan *p, const struct wb_piece *pc)
{
	if (p->npieces == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct wb_piece *w = realloc(p->pieces, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		p->pieces = w;
		p->cap = cap;
	}
	p->pieces[p->npieces++] = *pc;
	return 0;
}

/* Extents for the run of consecutive pages v[first, first + n): as few as the allocator
 * gives, each placed after the previous one. */
static int plan_new_space(struct cowfs_trans *tx, struct inode_tree *it, struct wb_plan *p,
			  size_t first, size_t n)
{
	struct extents *x = cowfs_extents(it->fs);
	uint32_t ps = x->sectorsize;
	int ret = 0;

	while (n && ret == 0) {
		uint64_t disk, len;
		ret = alloc_data(tx, x, (uint64_t)n * ps, it->icache->data_hint, &disk, &len);
		if (ret == 0)
			ret = plan_add(p, &(struct wb_piece){ .first = first, .n = len / ps,
							      .disk = disk });
		if (ret == 0) {
			it->icache->data_hint = disk + len;
			first += len / ps;
			n -= len / ps;
		}
	}
	return ret;
}

/*
 * The run v[first, first + n) of pages that go in place, one after the other on disk: a piece
 * per preallocated item it spans. The map is looked at again to find the items (and as a
 * check: inplace.c says why it still shows each page's preallocated place; a page it does not
 * goes to new space, which is still right, only not what was promised).
 */
static int plan_in_place(struct cowfs_trans *tx, struct inode_tree *it, struct wb_plan *p,
			 size_t first, size_t n)
{
	uint32_t ps = cowfs_sectorsize(it->fs);
	int ret = 0;

	while (n && ret == 0) {
		const struct dirty_page *pg = &p->v[first];
		struct fmap_seg seg;
		size_t k;
		ret = fmap_lookup(it, p->ino, pg->index * ps, (pg->index + n) * ps, &seg);
		if (ret < 0)
			break;
		k = (size_t)(seg.len / ps);
		if (seg.kind == FMAP_PREALLOC && seg.disk == pg->inplace)
			ret = plan_add(p, &(struct wb_piece){ .first = first, .n = k, .disk = seg.disk,
							      .extent_start = seg.extent_start,
							      .extent_len = seg.extent_len });
		else
			ret = plan_new_space(tx, it, p, first, k = 1);
		first += k;
		n -= k;
	}
	return ret;
}

static int plan_run(struct cowfs_trans *tx, struct inode_tree *it, struct wb_plan *p, size_t first,
		    size_t n)
{
	if (p->v[first].inplace)
		return plan_in_place(tx, it, p, first, n);
	return plan_new_space(tx, it, p, first, n);
}

/* Whether page b may follow page a in one run: the next index, and both going to new space
 * or both in place one after the other on disk. */
static bool run_continues(const struct dirty_page *a, const struct dirty_page *b, uint32_t ps)
{
	if (b->index != a->index + 1 || !a->inplace != !b->inplace)
		return false;
	return !a->inplace || b->inplace == a->inplace + ps;
}

/* Pages that may form one run: consecutive, and no more than an extent's worth. */
static size_t run_length(const struct dirty_page *v, size_t n, uint32_t ps)
{
	size_t max = FILE_EXTENT_MAX / ps, k = 1;

	while (k < n && k < max && run_continues(&v[k - 1], &v[k], ps))
		k++;
	return k;
}

static int plan_inode(struct cowfs_trans *tx, struct inode_tree *it, struct wb_plan *p)
{
	int ret = 0;

	for (size_t i = 0; i < p->n && ret == 0;) {
		size_t k = run_length(p->v + i, p->n - i, it->icache->page_size);
		ret = plan_run(tx, it, p, i, k);
		i += k;
	}
	return ret;
}

/*
 * The data goes out in windows of many requests (random writes make thousands of one-page
 * pieces, and one submission each would cost a round trip to the ring apiece). Pages that lie
 * one after the other in memory (a file written in order gets them so: icache.c), and single
 * pages, are written where they are; other runs are copied into staging memory first.
 */
struct wb_window {
	struct bdev_io ios[WB_WINDOW_REQUESTS];
	size_t nios, staged;
	uint8_t *stage;
};

static int window_flush(struct inode_tree *it, struct wb_window *w)
{
	int ret = w->nios ? bdev_write_batch(cowfs_bdev(it->fs), w->ios, w->nios) : 0;

	w->nios = 0;
	w->staged = 0;
	return ret;
}

/* Queue the write of pages[0, k) to disk (k at most a request's worth). */
static int window_add(struct inode_tree *it, struct wb_window *w,
		      const struct dirty_page *pages, size_t k, uint64_t disk)
{
	uint32_t ps = cowfs_sectorsize(it->fs);
	size_t run = contiguous_pages(pages, k, ps);
	uint8_t *buf;
	int ret = 0;

	if (run < k && run * ps >= WB_MIN_DIRECT)
		k = run;
	if (w->nios == WB_WINDOW_REQUESTS || (k > run && w->staged + k * ps > WB_STAGE_BYTES))
		ret = window_flush(it, w);
	if (ret < 0)
		return ret;
	if (k <= run) {
		buf = pages[0].data;
	} else {
		buf = w->stage + w->staged;
		w->staged += k * ps;
		for (size_t i = 0; i < k; i++)
			memcpy(buf + i * ps, pages[i].data, ps);
	}
	w->ios[w->nios++] = (struct bdev_io){ .off = disk, .buf = buf, .len = (uint32_t)(k * ps) };
	return (int)k;
}

static int write_plan(struct inode_tree *it, const struct wb_plan *p)
{
	uint32_t ps = cowfs_sectorsize(it->fs), per_req = WB_REQUEST_BYTES / ps;
	struct wb_window w = { .stage = aligned_alloc(BDEV_ALIGN, WB_STAGE_BYTES) };
	int ret = w.stage ? 0 : -ENOMEM;

	for (size_t i = 0; i < p->npieces && ret >= 0; i++) {
		const struct wb_piece *pc = &p->pieces[i];
		for (size_t done = 0; done < pc->n && ret >= 0; done += (size_t)ret) {
			size_t k = pc->n - done < per_req ? pc->n - done : per_req;
			ret = window_add(it, &w, p->v + pc->first + done, k,
					 pc->disk + (uint64_t)done * ps);
		}
	}
	if (ret >= 0)
		ret = window_flush(it, &w);
	free(w.stage);
	return ret < 0 ? ret : 0;
}

/* Checksums into the checksum tree and the file's map pointed at the new extents. */
static int map_plan(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		    const struct wb_plan *p, int64_t *nbytes)
{
	struct extents *x = cowfs_extents(it->fs);
	uint32_t ps = x->sectorsize;
	uint64_t *csums = malloc(p->n * sizeof(*csums));
	int ret = csums ? 0 : -ENOMEM;

	for (size_t i = 0; i < p->n && ret == 0; i++)
		csums[i] = csum_sector(p->v[i].data, ps);
	for (size_t i = 0; i < p->npieces && ret == 0; i++) {
		const struct wb_piece *pc = &p->pieces[i];
		uint64_t len = (uint64_t)pc->n * ps;
		struct file_extent_item fe;
		int64_t delta;
		ret = csum_insert(x, &tx->bt, pc->disk, csums + pc->first, pc->n);
		if (ret < 0)
			break;
		if (pc->extent_len)   /* in place: the same extent, written now */
			fmap_extent_item(&fe, FILE_EXTENT_REG, cowfs_trans_id(tx), pc->extent_start,
					 pc->extent_len, pc->disk, len);
		else
			fmap_new_item(&fe, FILE_EXTENT_REG, cowfs_trans_id(tx), pc->disk, len);
		ret = fmap_replace(tx, it, ino, p->v[pc->first].index * ps, len, &fe, &delta);
		*nbytes += delta;
	}
	free(csums);
	return ret;
}

static void plan_free(struct wb_plan *p)
{
	free(p->v);
	free(p->pieces);
	*p = (struct wb_plan){ 0 };
}

/* Take e's pages and give them extents (lock held). */
static int plan_take(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e,
		     struct wb_plan *p)
{
	int ret;

	*p = (struct wb_plan){ .ino = e->ino };
	ret = pages_take(it->icache, e, &p->v, &p->n);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < p->n; i++) {
		if (!p->v[i].logged) {
			log_note_flushed(it, e);
			break;
		}
	}
	ret = plan_inode(tx, it, p);
	if (ret < 0) {
		pages_untake(it->icache, e, p->v, p->n);
		plan_free(p);
	}
	return ret;
}

/* Checksums, map and size accounting for written plan p (lock held); its pages leave the
 * table, or, if anything failed, stay dirty. */
static int plan_finish(struct cowfs_trans *tx, struct inode_tree *it, struct wb_plan *p, int ret)
{
	struct icache_entry *e = icache_find(it->icache, p->ino, false);
	int64_t nbytes = 0;

	assert(e);   /* pages under write-back keep their entry */
	if (ret == 0)
		ret = map_plan(tx, it, p->ino, p, &nbytes);
	/* One inode update for all runs (random writes make thousands of runs). */
	if (ret == 0)
		ret = adjust_nbytes(tx, it, p->ino, nbytes);
	if (ret == 0)
		pages_written(it->icache, e, p->v, p->n);
	else
		pages_untake(it->icache, e, p->v, p->n);
	if (!e->pages.count)
		e->unlogged.n = 0;   /* no pages left to log */
	icache_release_if_idle(it->icache, e);
	plan_free(p);
	return ret;
}

/* An inode's write-back inside a running update or commit. */
struct writeback {
	struct cowfs_trans *tx;
	struct inode_tree *it;
};

/*
 * One inode, inside a commit: extents for every run of its pages (data continues where the
 * last write-back's ended, so files written one after the other, and a file written across
 * commits, come out in address order), then all the data, then checksums and map.
 */
static int writeback_entry(void *arg, struct icache_entry *e)
{
	struct writeback *wb = arg;
	struct inode_tree *it = wb->it;
	struct wb_plan p = { 0 };
	int ret;

	if (!e->pages.count) {
		icache_release_if_idle(it->icache, e);
		return 0;
	}
	ret = plan_take(wb->tx, it, e, &p);
	if (ret < 0)
		return ret;
	return plan_finish(wb->tx, it, &p, write_plan(it, &p));
}

int inode_writeback_one(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e)
{
	struct writeback wb = { tx, it };
	unsigned cls = cowfs_trans_set_class(tx, ALLOC_PRIVILEGED);
	int ret = writeback_entry(&wb, e);

	cowfs_trans_set_class(tx, cls);
	if (ret < 0)
		return cowfs_trans_fail(tx, ret);
	/* Data written back and mapped is a complete change: the caller's update goes on. */
	cowfs_trans_checkpoint(tx);
	return 0;
}

int inode_writeback_tree(struct cowfs_trans *tx, struct inode_tree *it)
{
	struct writeback wb = { tx, it };
	int ret = 0;

	if (it->icache && it->icache->dirty_bytes) {
		unsigned cls = cowfs_trans_set_class(tx, ALLOC_PRIVILEGED);
		ret = icache_for_each(it->icache, writeback_entry, &wb);
		cowfs_trans_set_class(tx, cls);
	}
	return ret;
}

int inode_writeback_all(void *arg, struct cowfs_trans *tx)
{
	struct inode_tree *it = arg;
	int ret;

	if (!it->icache)
		return 0;
	ret = inode_writeback_tree(tx, it);
	/* This commit carries everything the log held or was waiting to hold. */
	if (ret == 0)
		log_forget_all(it);
	return ret;
}

/* ---- background flush ---------------------------------------------------------------------- */

struct flush {
	struct cowfs_trans *tx;
	struct inode_tree *it;
	struct wb_plan *v;
	size_t n, cap;
};

static int flush_take_entry(void *arg, struct icache_entry *e)
{
	struct flush *f = arg;
	int ret;

	if (!e->pages.count)
		return 0;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct wb_plan *v = realloc(f->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	ret = plan_take(f->tx, f->it, e, &f->v[f->n]);
	if (ret == 0)
		f->n++;
	return ret;
}

/* Tree blocks the maps and checksums of `pages` pages may need, as if neighbours: a check
 * that space is not short, not a bound (random pages share fewer leaves). */
static uint64_t flush_nodes(struct inode_tree *it, uint64_t pages)
{
	return 2 * cowfs_neighbour_update_nodes(inode_btree(it), pages);
}

int inode_flush(void *arg, struct cowfs_trans *tx)
{
	struct inode_tree *it = arg;
	struct flush f = { .tx = tx, .it = it };
	unsigned cls;
	int ret;

	if (!it->icache || !it->icache->dirty_bytes)
		return 0;
	/* Short of space, leave it to the commit (which may use the reserve). */
	if (cowfs_reserve(tx, flush_nodes(it, it->icache->dirty_bytes / it->icache->page_size)) < 0)
		return 0;
	/* Writers that run while the lock is let go set their own class and restore this one. */
	cls = cowfs_trans_set_class(tx, ALLOC_PRIVILEGED);
	ret = icache_for_each(it->icache, flush_take_entry, &f);
	if (ret == 0 && f.n) {
		cowfs_flush_unlock(tx);
		for (size_t i = 0; i < f.n && ret == 0; i++)
			ret = write_plan(it, &f.v[i]);
		cowfs_flush_relock(tx);
	}
	for (size_t i = 0; i < f.n; i++) {
		int r = plan_finish(tx, it, &f.v[i], ret);
		if (ret == 0)
			ret = r;
	}
	cowfs_trans_set_class(tx, cls);
	free(f.v);
	/* Extents were given to pages that did not get mapped: the transaction is lost. */
	return ret < 0 ? cowfs_trans_fail(tx, ret) : 0;
}
