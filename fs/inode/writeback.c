/*
 * Write-back of dirty file data (delayed allocation), run first in every commit.
 *
 * Each inode's dirty pages are sorted; every run of consecutive pages becomes as few new data
 * extents as the allocator can give (up to FILE_EXTENT_MAX each, placed after the previous
 * one when possible), written in one batch, checksummed into the checksum tree and mapped
 * over the run, which cuts whatever the file had there before. Because this happens inside
 * the commit, the commit's own flush makes the data durable before the superblock that
 * points at it: no separate ordering is needed.
 *
 * Allocation uses the privileged class: the space was promised when the data was buffered
 * (fs->delalloc_bytes), and a commit must not fail for want of it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/extent/csum.h"
#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"

static int adjust_nbytes(struct inode_tree *it, uint64_t ino, int64_t delta)
{
	struct inode in;
	int ret;

	if (delta == 0)
		return 0;
	ret = inode_read(it, ino, &in);
	if (ret < 0)
		return ret;
	in.nbytes += delta;
	return inode_write(it, ino, &in);
}

/* Pages are gathered into requests of this size: one request per page would cost the device
 * layer (and the kernel under it) thousands of requests per extent. */
#define WB_REQUEST_BYTES (1u << 20)
/* Below this, pages contiguous in memory are still staged (fewer, larger requests win). */
#define WB_MIN_DIRECT (64u << 10)
/* Requests staged and submitted together. */
#define WB_WINDOW_REQUESTS 16u

/* How many of pages [0, n) follow each other in memory (from the first). */
static size_t contiguous_pages(struct dirty_page **pages, size_t n, uint32_t ps)
{
	size_t k = 1;

	while (k < n && pages[k]->data == pages[0]->data + (size_t)k * ps)
		k++;
	return k;
}

/*
 * Write pages [0, n) to `disk` onward, a window of requests at a time. Pages that lie one
 * after the other in memory (a file written in order gets them so: icache.c) are written
 * where they are; the rest are copied into a staging request.
 */
static int write_staged(struct inode_tree *it, struct dirty_page **pages, size_t n,
			uint64_t disk, uint8_t *stage)
{
	uint32_t ps = it->fs->ext.sectorsize, per_req = WB_REQUEST_BYTES / ps;
	struct bdev_io ios[WB_WINDOW_REQUESTS];
	int ret = 0;

	for (size_t done = 0; done < n && ret == 0;) {
		size_t nios = 0, staged = 0;   /* bytes of `stage` this window uses */
		while (done < n && nios < WB_WINDOW_REQUESTS) {
			size_t k = n - done < per_req ? n - done : per_req;
			size_t run = contiguous_pages(pages + done, k, ps);
			uint8_t *buf;
			if (run * ps >= WB_MIN_DIRECT) {
				k = run;
				buf = pages[done]->data;
			} else {
				buf = stage + staged;
				staged += k * ps;
				for (size_t i = 0; i < k; i++)
					memcpy(buf + i * ps, pages[done + i]->data, ps);
			}
			ios[nios++] = (struct bdev_io){ .off = disk + (uint64_t)done * ps, .buf = buf,
							.len = (uint32_t)(k * ps) };
			done += k;
		}
		ret = bdev_write_batch(it->fs->bd, ios, nios);
	}
	return ret;
}

/* Write `n` pages to the new extent at `disk` and record their checksums. */
static int write_pages(struct inode_tree *it, struct dirty_page **pages, size_t n,
		       uint64_t disk)
{
	struct extents *x = &it->fs->ext;
	uint32_t ps = x->sectorsize;
	uint64_t *csums = malloc(n * sizeof(*csums));
	size_t window = (size_t)WB_WINDOW_REQUESTS * WB_REQUEST_BYTES;
	/* Small write-backs (an fsync of a few pages) stage only what they need. */
	uint8_t *stage = aligned_alloc(BDEV_ALIGN, n * ps < window ? (n * ps + BDEV_ALIGN - 1) /
				       BDEV_ALIGN * BDEV_ALIGN : window);
	int ret = -ENOMEM;

	if (csums && stage) {
		for (size_t i = 0; i < n; i++)
			csums[i] = csum_sector(pages[i]->data, ps);
		ret = write_staged(it, pages, n, disk, stage);
		if (ret == 0)
			ret = csum_insert(x, &it->fs->trans, disk, csums, n);
	}
	free(stage);
	free(csums);
	return ret;
}

/* Below this a run may be split over small free ranges (the holes freed tree blocks leave);
 * above it, it first looks for a range this long, so streaming data stays contiguous. */
#define WB_MIN_PIECE (1ull << 20)

static int alloc_data(struct extents *x, uint64_t want, uint64_t hint, uint64_t *disk,
		      uint64_t *len)
{
	uint64_t piece = want < WB_MIN_PIECE ? want : WB_MIN_PIECE;
	int ret = extent_alloc_data(x, piece, want, hint, disk, len);

	if (ret == -ENOSPC && piece > x->sectorsize)
		ret = extent_alloc_data(x, x->sectorsize, want, hint, disk, len);
	return ret;
}

/* One run of consecutive pages: extents for it, data written, the map pointed at them.
 * *nbytes gathers the change in bytes the file references. */
static int write_run(struct inode_tree *it, uint64_t ino, struct dirty_page **pages, size_t n,
		     uint64_t *hint, int64_t *nbytes)
{
	struct extents *x = &it->fs->ext;
	uint32_t ps = x->sectorsize;
	int ret = 0;

	while (n && ret == 0) {
		struct file_extent_item fe;
		uint64_t disk, len, want = (uint64_t)n * ps;
		int64_t delta;
		ret = alloc_data(x, want, *hint, &disk, &len);
		if (ret < 0)
			break;
		size_t got = len / ps;
		ret = write_pages(it, pages, got, disk);
		if (ret < 0)
			break;
		fmap_new_item(&fe, FILE_EXTENT_REG, it->fs->trans.transid, disk, len);
		ret = fmap_replace(it, ino, pages[0]->index * ps, len, &fe, &delta);
		*nbytes += delta;
		*hint = disk + len;
		pages += got;
		n -= got;
	}
	return ret;
}

/* Pages that may form one run: consecutive, and no more than an extent's worth. */
static size_t run_length(struct dirty_page **v, size_t n, uint32_t ps)
{
	size_t max = FILE_EXTENT_MAX / ps, k = 1;

	while (k < n && k < max && v[k]->index == v[k - 1]->index + 1)
		k++;
	return k;
}

static int writeback_inode(struct inode_tree *it, struct icache_entry *e)
{
	struct inode_cache *ic = it->icache;
	struct dirty_page **v;
	int64_t nbytes = 0;
	size_t n;
	int ret = pages_sorted(e, &v, &n);

	/* Data continues where the last write-back's ended: files written one after the other
	 * (and a file written across commits) come out in address order. */
	for (size_t i = 0; i < n && ret == 0;) {
		size_t k = run_length(v + i, n - i, ic->page_size);
		ret = write_run(it, e->ino, v + i, k, &ic->data_hint, &nbytes);
		i += k;
	}
	/* One inode update for all runs (random writes make thousands of runs). */
	if (ret == 0)
		ret = adjust_nbytes(it, e->ino, nbytes);
	/* Given back in file order, so that the next pages a sequential writer takes are
	 * contiguous in memory again. */
	if (ret == 0)
		pages_release_sorted(ic, e, v, n);
	free(v);
	return ret;
}

static int writeback_entry(void *arg, struct icache_entry *e)
{
	struct inode_tree *it = arg;
	int ret = e->pages.count ? writeback_inode(it, e) : 0;

	if (ret == 0)
		icache_release_if_idle(it->icache, e);
	return ret;
}

int inode_writeback_all(void *arg)
{
	struct inode_tree *it = arg;
	struct extents *x = &it->fs->ext;
	enum alloc_class saved = x->cls;
	int ret = 0;

	if (!it->icache)
		return 0;
	if (it->icache->dirty_bytes) {
		x->cls = ALLOC_PRIVILEGED;
		ret = icache_for_each(it->icache, writeback_entry, it);
		x->cls = saved;
	}
	/* This commit carries everything the log held or was waiting to hold. */
	if (ret == 0)
		log_forget_all(it);
	return ret;
}
