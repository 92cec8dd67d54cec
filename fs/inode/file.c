/*
 * File data: reads, writes, size changes, fallocate, SEEK_DATA/SEEK_HOLE, fsync and
 * copy_file_range (file.h). Write-back of the dirty pages lives in writeback.c, the extent
 * map in fmap.c, the pages themselves in icache.c.
 *
 * Invariant that makes partial blocks simple: the bytes of a file's last block past end of
 * file are zero, on disk and in its dirty page. Writes keep it (a new page starts zeroed, an
 * existing block is read whole), shrinking keeps it by zeroing the cut block's tail, so
 * growing a file never needs to touch data.
 *
 * Reads run mostly outside the filesystem lock: the map is resolved, dirty pages copied and
 * checksums fetched under it; the disk reads happen after it is released, with
 * fs->data_readers held shared so that no commit can make the extents being read allocatable
 * (and rewritten) until the read is done.
 */
#include "fs/inode/file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/extent/csum_tree.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"
#include "fs/inode/remap.h"

/* Bytes one read or write call handles at once (larger calls loop): bounds the memory a
 * single request pins and the time the lock is held. */
#define FILE_IO_CHUNK (4u << 20)

static uint32_t page_size(struct inode_tree *it)
{
	return cowfs_sectorsize(it->fs);
}

static int regular_file(const struct inode *in)
{
	if (S_ISDIR(in->mode))
		return -EISDIR;
	return S_ISREG(in->mode) ? 0 : -EINVAL;
}

static struct icache_entry *dirty_entry(struct inode_tree *it, uint64_t ino)
{
	return it->icache ? icache_find(it->icache, ino, false) : NULL;
}

/* ---- reading extents, verified ------------------------------------------------------------ */

/* Disk reads of whole sectors and the checksums they must match. */
struct read_plan {
	struct bdev_io *ios;
	size_t nios;
	uint64_t *csums;      /* one per page of the buffer (only those read from disk used) */
	uint8_t *base;        /* the buffer the ios read into (it->read_bufs) */
	size_t base_len;
};

static int plan_disk_read(struct inode_tree *it, struct read_plan *rp, uint64_t disk,
			  uint8_t *dst, uint64_t npages)
{
	uint32_t ps = page_size(it);
	size_t first = (size_t)(dst - rp->base) / ps;
	int ret = csum_lookup(cowfs_extents(it->fs), disk, npages, rp->csums + first);

	if (ret < 0)
		return ret;
	rp->ios[rp->nios++] = (struct bdev_io){ .off = disk, .buf = dst,
						.len = (uint32_t)(npages * ps) };
	return 0;
}

static int run_read_plan(struct inode_tree *it, struct read_plan *rp)
{
	uint32_t ps = page_size(it);
	int ret = rp->nios ? bdev_read_batch(cowfs_bdev(it->fs), rp->ios, rp->nios) : 0;

	for (size_t i = 0; i < rp->nios && ret == 0; i++) {
		const struct bdev_io *io = &rp->ios[i];
		for (uint32_t done = 0; done < io->len; done += ps) {
			const uint8_t *p = (const uint8_t *)io->buf + done;
			if (csum_sector(p, ps) != rp->csums[(size_t)(p - rp->base) / ps]) {
				cowfs_report(it->fs, io->off + done, "data checksum mismatch");
				ret = -EIO;
				break;
			}
		}
	}
	return ret;
}

/*
 * Fill pages [first, first + n) of the file into `buf` (page aligned, n pages): dirty pages
 * copied, holes and preallocated ranges zeroed, data planned into `rp`.
 */
static int plan_pages(struct inode_tree *it, uint64_t ino, uint64_t first, uint64_t n,
		      uint8_t *buf, struct read_plan *rp)
{
	struct icache_entry *e = dirty_entry(it, ino);
	uint32_t ps = page_size(it);
	uint64_t end = (first + n) * ps;
	int ret = 0;

	for (uint64_t i = 0; i < n && ret == 0;) {
		uint8_t *dst = buf + i * ps;
		struct dirty_page *p = e ? page_find(e, first + i) : NULL;
		struct fmap_seg seg;
		if (p) {
			memcpy(dst, p->data, ps);
			i++;
			continue;
		}
		ret = fmap_lookup(it, ino, (first + i) * ps, end, &seg);
		if (ret < 0)
			break;
		uint64_t k = seg.len / ps ? seg.len / ps : 1;
		for (uint64_t j = 1; e && e->pages.count && j < k; j++)
			if (page_find(e, first + i + j))
				k = j;
		if (seg.kind == FMAP_DATA)
			ret = plan_disk_read(it, rp, seg.disk, dst, k);
		else
			memset(dst, 0, k * ps);
		i += k;
	}
	return ret;
}

static int plan_alloc(struct inode_tree *it, struct read_plan *rp, uint64_t npages, uint32_t ps)
{
	rp->nios = 0;
	rp->ios = malloc(npages * sizeof(*rp->ios));
	rp->csums = malloc(npages * sizeof(*rp->csums));
	rp->base_len = npages * ps;
	rp->base = bufpool_get(&it->read_bufs, rp->base_len);
	return rp->ios && rp->csums && rp->base ? 0 : -ENOMEM;
}

static void plan_free(struct inode_tree *it, struct read_plan *rp)
{
	free(rp->ios);
	free(rp->csums);
	bufpool_put(&it->read_bufs, rp->base, rp->base_len);
	rp->ios = NULL;
	rp->csums = NULL;
	rp->base = NULL;
}

/* ---- read --------------------------------------------------------------------------------- */

/*
 * Plan the read of [off, off + len) of ino into rp (fs->lock held): *len is cut at end of
 * file (0 at or past it: nothing planned), *first gets the first page read.
 */
static int plan_read(struct inode_tree *it, uint64_t ino, size_t *len, uint64_t off,
		     struct read_plan *rp, uint64_t *first)
{
	uint32_t ps = page_size(it);
	struct inode in;
	int ret = inode_read(it, ino, &in);

	if (ret == 0)
		ret = regular_file(&in);
	if (ret < 0 || off >= in.size || *len == 0) {
		*len = 0;
		return ret;
	}
	if (*len > in.size - off)
		*len = in.size - off;
	uint64_t n = (off + *len - 1) / ps - off / ps + 1;
	*first = off / ps;
	ret = plan_alloc(it, rp, n, ps);
	if (ret == 0)
		ret = plan_pages(it, ino, *first, n, rp->base, rp);
	return ret;
}

/* Read [off, off + *len) into rp's buffer (*len cut at end of file); the bytes start at the
 * returned offset in rp->base. The caller frees rp (plan_free), also on error. */
static ssize_t read_planned(struct inode_tree *it, uint64_t ino, size_t *len, uint64_t off,
			    struct read_plan *rp)
{
	uint64_t first = 0;
	int ret;

	inode_lock_read(it);
	ret = plan_read(it, ino, len, off, rp, &first);
	if (ret < 0 || *len == 0) {
		inode_unlock_read(it);
		return ret;
	}
	/* Taken before the lock is let go: a commit (which needs the lock) cannot slip in. */
	cowfs_data_read_begin(it->fs);
	inode_unlock_read(it);
	ret = run_read_plan(it, rp);
	cowfs_data_read_end(it->fs);
	return ret < 0 ? ret : (ssize_t)(off - first * page_size(it));
}

static ssize_t read_chunk(struct inode_tree *it, uint64_t ino, uint8_t *buf, size_t len,
			  uint64_t off)
{
	struct read_plan rp = { 0 };
	ssize_t at = read_planned(it, ino, &len, off, &rp);

	if (at >= 0 && len)
		memcpy(buf, rp.base + at, len);
	plan_free(it, &rp);
	return at < 0 ? at : (ssize_t)len;
}

ssize_t file_read_locked(struct inode_tree *it, uint64_t ino, void *buf, size_t len,
			 uint64_t off)
{
	struct read_plan rp = { 0 };
	uint64_t first = 0;
	/* With the lock held no commit can free (and let be rewritten) what is being read. */
	int ret = plan_read(it, ino, &len, off, &rp, &first);

	if (ret == 0 && len)
		ret = run_read_plan(it, &rp);
	if (ret == 0 && len)
		memcpy(buf, rp.base + (off - first * page_size(it)), len);
	plan_free(it, &rp);
	return ret < 0 ? ret : (ssize_t)len;
}

ssize_t file_read_view(struct inode_tree *it, uint64_t ino, size_t len, uint64_t off,
		       struct file_read_view *v)
{
	struct read_plan rp = { 0 };
	ssize_t at;

	*v = (struct file_read_view){ 0 };
	if (len > FILE_IO_CHUNK) {   /* more than one plan: read into a buffer of its own */
		v->buf = bufpool_get(&it->read_bufs, len);
		v->buf_len = len;
		v->data = v->buf;
		return v->buf ? file_read(it, ino, v->buf, len, off) : -ENOMEM;
	}
	at = read_planned(it, ino, &len, off, &rp);
	free(rp.ios);
	free(rp.csums);
	v->buf = rp.base;
	v->buf_len = rp.base_len;
	v->data = rp.base ? rp.base + (at > 0 ? at : 0) : NULL;
	return at < 0 ? at : (ssize_t)len;
}

void file_read_view_release(struct inode_tree *it, struct file_read_view *v)
{
	bufpool_put(&it->read_bufs, v->buf, v->buf_len);
	*v = (struct file_read_view){ 0 };
}

ssize_t file_read(struct inode_tree *it, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		size_t want = len - done < FILE_IO_CHUNK ? len - done : FILE_IO_CHUNK;
		ssize_t got = read_chunk(it, ino, (uint8_t *)buf + done, want, off + done);
		if (got < 0)
			return done ? (ssize_t)done : got;
		done += got;
		if ((size_t)got < want)
			break;
	}
	return (ssize_t)done;
}

/* ---- updates ------------------------------------------------------------------------------ */

/* The transaction of an update of file data (its space not reserved yet): for one that edits
 * the map over `len` bytes, or for a write (len 0). */
static int data_update_enter(struct inode_tree *it, uint64_t len, enum alloc_class cls,
			     struct cowfs_trans **txp)
{
	struct cowfs_trans *tx;

	if (inode_tree_read_only(it))
		return -EROFS;
	/* Only a write (no range to edit) may run beside a flush (writeback.c). */
	if (len)
		tx = cowfs_trans_begin(it->fs, cls);
	else
		tx = cowfs_trans_begin_beside_flush(it->fs, cls);
	if (!icache_of(it))
		return cowfs_trans_end(tx, -ENOMEM);
	*txp = tx;
	return 0;
}

/*
 * Begin an update of ino's data that edits its map over [off, off + len) and may buffer up to
 * `data_bytes` of new dirty pages. Holds the lock on success.
 */
static int data_update_begin_loggable(struct inode_tree *it, uint64_t ino, uint64_t off,
				      uint64_t len, uint64_t data_bytes, enum alloc_class cls,
				      struct cowfs_trans **txp)
{
	struct cowfs_trans *tx;
	uint64_t nodes = 0;
	int ret = data_update_enter(it, len, cls, &tx);

	if (ret < 0)
		return ret;
	if (len)
		ret = fmap_cost(it, ino, off, len, &nodes);
	if (ret == 0)
		ret = cowfs_reserve_data(tx, nodes + 2 * cowfs_update_nodes(inode_btree(it)),
					 data_bytes);
	if (ret < 0)
		return cowfs_trans_end(tx, ret);
	*txp = tx;
	return 0;
}

/* The same for updates the fsync log does not express (fallocate, clones): fsync commits
 * until the next commit. */
int data_update_begin(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t len,
		      uint64_t data_bytes, enum alloc_class cls, struct cowfs_trans **tx)
{
	int ret = data_update_begin_loggable(it, ino, off, len, data_bytes, cls, tx);

	if (ret == 0)
		cowfs_log_bar(it->fs);
	return ret;
}

/* The dirty page `index` of the file, made from its current contents if it has none (and
 * then written back in place to `inplace` if that is not 0: inplace.c). */
static int page_get(struct inode_tree *it, struct icache_entry *e, const struct inode *in,
		    uint64_t index, bool whole, uint64_t inplace, struct dirty_page **out)
{
	struct dirty_page *p = page_find(e, index);
	bool listed = p && !p->logged;   /* already waiting for the fsync log */
	struct read_plan rp = { 0 };
	/* Past end of file there is nothing to keep: a new page stays zero. */
	bool keep = !p && !whole && index * page_size(it) < in->size;
	int ret = 0;

	/* A flush is writing this memory: change a copy (writeback.c). */
	if (p && p->writeback) {
		ret = page_copy_for_write(it->icache, e, p);
		if (ret < 0)
			return ret;
	}

	/* Read before adding the page: the read would otherwise find it, still zero. */
	if (keep) {
		ret = plan_alloc(it, &rp, 1, page_size(it));
		if (ret == 0)
			ret = plan_pages(it, e->ino, index, 1, rp.base, &rp);
		if (ret == 0)
			ret = run_read_plan(it, &rp);
	}
	if (ret == 0 && !p) {
		p = page_add(it->icache, e, index, !whole, inplace);
		if (!p)
			ret = -ENOMEM;
		else if (keep)
			memcpy(p->data, rp.base, page_size(it));
	}
	plan_free(it, &rp);
	if (p) {
		p->logged = false;   /* the caller is about to change it */
		if (!listed)
			log_note_page(it, e, index);
	}
	*out = p;
	return ret;
}

/* Copy `len` bytes at `off` into the file's dirty pages, new ones going in place where `ip`
 * says. A page that cannot be had (its old data unreadable) is no change: only from the
 * first page changed on does a failure poison. */
static int copy_into_pages(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e,
			   const struct inode *in, struct inplace_plan *ip, const uint8_t *buf,
			   size_t len, uint64_t off)
{
	uint32_t ps = page_size(it);

	while (len) {
		uint32_t in_page = off % ps, n = ps - in_page < len ? ps - in_page : (uint32_t)len;
		struct dirty_page *p;
		int ret = page_get(it, e, in, off / ps, n == ps, inplace_disk_of(ip, off / ps, ps),
				   &p);
		if (ret < 0)
			return ret;
		cowfs_trans_note_change(tx);
		memcpy(p->data + in_page, buf, n);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Zero [off, end) of the file, within one page (only if the page has data under EOF). */
static int zero_in_page(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e,
			const struct inode *in, uint64_t off, uint64_t end)
{
	uint32_t ps = page_size(it);
	struct dirty_page *p;
	int ret;

	if (off >= end || off >= in->size)
		return 0;
	ret = page_get(it, e, in, off / ps, false, 0, &p);
	if (ret == 0) {
		cowfs_trans_note_change(tx);
		memset(p->data + off % ps, 0, end - off);
	}
	return ret;
}

/* Zero [off, end) of the file through its pages: for ranges of at most two pages. */
static int zero_partial(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e,
			const struct inode *in, uint64_t off, uint64_t end)
{
	uint32_t ps = page_size(it);
	int ret = 0;

	while (off < end && ret == 0) {
		uint64_t page_end = (off / ps + 1) * ps, to = page_end < end ? page_end : end;
		ret = zero_in_page(tx, it, e, in, off, to);
		off = to;
	}
	return ret;
}

/*
 * Keep buffered data within its bound. Past half of it the timer thread flushes in the
 * background while writers go on; only past all of it does a writer wait for a flush or
 * commit to make room. Without a timer thread, the writer commits (which writes back).
 */
static int limit_dirty(struct cowfs_trans *tx, struct inode_tree *it)
{
	struct inode_cache *ic = it->icache;

	if (ic->dirty_bytes <= ic->dirty_limit / 2)
		return 0;
	while (ic->dirty_bytes > ic->dirty_limit / 2 && !cowfs_trans_error(tx)) {
		if (!cowfs_flush_soon(it->fs))
			return ic->dirty_bytes > ic->dirty_limit ? cowfs_trans_commit(tx) : 0;
		if (ic->dirty_bytes <= ic->dirty_limit)
			return 0;
		cowfs_trans_wait_progress(tx);
	}
	return cowfs_trans_error(tx);
}

/* Where a write of `len` bytes lands (*off: asked for, then placed), with ino's inode in *in. */
static int write_place(struct inode_tree *it, uint64_t ino, size_t len, unsigned flags,
		       uint64_t *off, struct inode *in)
{
	int ret = inode_read(it, ino, in);

	if (ret == 0)
		ret = regular_file(in);
	if (ret < 0)
		return ret;
	if (flags & FILE_WRITE_APPEND)
		*off = in->size;
	if (*off >= FILE_SIZE_MAX || len > FILE_SIZE_MAX - *off)
		return -EFBIG;
	return 0;
}

/* Plans before a write stops looking for pages to write in place and asks space for all. */
#define WRITE_PLAN_TRIES 4

/*
 * Place the write, find which of its pages go in place (inplace.c) and make sure the space the
 * others need is there. A commit inside the space check lets the lock go and writes pages
 * back, which turns preallocated space into written data: a plan made before it could write
 * in place over what that commit just made durable, so after one everything is looked at
 * again (a second commit in a row is rare: the first made the space).
 */
static int write_prepare(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, size_t len,
			 unsigned flags, uint64_t *off, struct inode *in, struct inplace_plan *ip)
{
	uint64_t nodes = 2 * cowfs_update_nodes(inode_btree(it)), want = *off;
	struct icache_entry *e;

	for (int tries = 0;; tries++) {
		uint64_t gen = cowfs_generation(it->fs), data, map;
		int ret;
		*off = want;
		ret = write_place(it, ino, len, flags, off, in);
		ip->n = 0;
		/* The entry may go in a commit below: found again each time. */
		e = ret == 0 ? icache_find(it->icache, ino, true) : NULL;
		if (ret == 0 && !e)
			ret = -ENOMEM;
		if (ret == 0 && tries < WRITE_PLAN_TRIES)
			ret = inplace_plan_write(it, e, ino, *off, len, ip);
		if (ret < 0)
			return ret;
		inplace_space_needed(it, ino, ip, *off, len, &data, &map);
		/* Needing no data space, a write into preallocated space keeps its promise also
		 * when the space is nearly all preallocated: the map's tree blocks may come from
		 * a quarter of the reserve. */
		cowfs_trans_set_class(tx, map && !data ? ALLOC_PROMISED : ALLOC_NORMAL);
		ret = cowfs_reserve_data(tx, nodes, data + map);
		if (ret < 0 || cowfs_generation(it->fs) == gen)
			return ret;
		if (tries >= WRITE_PLAN_TRIES) {   /* no plan to go stale: only the inode can */
			*off = want;
			return write_place(it, ino, len, flags, off, in);
		}
	}
}

static ssize_t write_chunk(struct inode_tree *it, uint64_t ino, const uint8_t *buf, size_t len,
			   uint64_t off, unsigned flags)
{
	struct inplace_plan ip = { 0 };
	struct cowfs_trans *tx;
	struct icache_entry *e;
	struct inode in;
	int ret = data_update_enter(it, 0, ALLOC_NORMAL, &tx);

	if (ret < 0)
		return ret;
	ret = write_prepare(tx, it, ino, len, flags, &off, &in, &ip);
	if (ret < 0)
		goto out;
	e = icache_find(it->icache, ino, true);
	/* The pages change first (counted as they do), then the inode. */
	ret = e ? copy_into_pages(tx, it, e, &in, &ip, buf, len, off) : -ENOMEM;
	if (ret == 0) {
		if (off + len > in.size)
			in.size = off + len;
		in.mtime = in.ctime = inode_now();
		ret = inode_write(tx, it, ino, &in);
		log_note_write(it, e);
	}
	if (ret == 0)
		ret = limit_dirty(tx, it);
out:
	inplace_plan_free(&ip);
	inode_update_end(tx, ret);
	return ret < 0 ? ret : (ssize_t)len;
}

ssize_t file_write(struct inode_tree *it, uint64_t ino, const void *buf, size_t len,
		   uint64_t off, unsigned flags)
{
	size_t done = 0;

	if (len == 0)
		return 0;
	while (done < len) {
		size_t n = len - done < FILE_IO_CHUNK ? len - done : FILE_IO_CHUNK;
		ssize_t ret = write_chunk(it, ino, (const uint8_t *)buf + done, n, off + done, flags);
		if (ret < 0)
			return done ? (ssize_t)done : ret;
		done += n;
	}
	return (ssize_t)done;
}

/* ---- size changes ------------------------------------------------------------------------- */

static uint64_t round_up(uint64_t x, uint32_t ps)
{
	return (x + ps - 1) / ps * ps;
}

/* Free everything of the file from `from` (sector aligned) on: pages and map. */
static int cut_from(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e,
		    uint64_t ino, struct inode *in, uint64_t from)
{
	int64_t delta;
	int ret;

	if (e) {
		cowfs_trans_note_change(tx);
		pages_drop_range(it->icache, e, from / page_size(it), UINT64_MAX);
	}
	ret = fmap_replace(tx, it, ino, from, UINT64_MAX - from, NULL, &delta);
	in->nbytes += delta;
	return ret;
}

int file_set_size_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			 struct inode *in, uint64_t size)
{
	uint32_t ps = page_size(it);
	struct icache_entry *e;
	int ret = regular_file(in);

	if (ret < 0)
		return ret;
	if (size > FILE_SIZE_MAX)
		return -EFBIG;
	if (size < in->size) {
		e = icache_find(it->icache, ino, true);
		if (!e)
			return -ENOMEM;
		ret = zero_in_page(tx, it, e, in, size, round_up(size, ps));
		if (ret == 0)
			ret = cut_from(tx, it, e, ino, in, round_up(size, ps));
		icache_release_if_idle(it->icache, e);
		if (ret < 0)
			return ret;
	}
	if (size != in->size)
		in->mtime = inode_now();
	in->size = size;
	return 0;
}

int file_size_update_begin(struct inode_tree *it, uint64_t ino, uint64_t size,
			   struct cowfs_trans **tx)
{
	uint32_t ps = page_size(it);
	uint64_t from = size > FILE_SIZE_MAX ? FILE_SIZE_MAX : round_up(size, ps);

	/* Shrinking frees space: it must work on a full filesystem. Whether the log can express
	 * the change is for the caller to say (log_note_setattr). */
	return data_update_begin_loggable(it, ino, from, UINT64_MAX - from, ps, ALLOC_PRIVILEGED,
					  tx);
}

/* ---- fallocate ---------------------------------------------------------------------------- */

/* Make [off, end) of the file read as zeros, freeing what lies under whole pages. */
static int punch_locked(struct cowfs_trans *tx, struct inode_tree *it, struct icache_entry *e,
			uint64_t ino, struct inode *in, uint64_t off, uint64_t end)
{
	uint32_t ps = page_size(it);
	uint64_t inner_from = round_up(off, ps), inner_to = end / ps * ps;
	int64_t delta = 0;
	int ret;

	if (inner_from >= inner_to)   /* no whole page inside */
		return zero_partial(tx, it, e, in, off, end);
	ret = zero_partial(tx, it, e, in, off, inner_from);
	if (ret == 0)
		ret = zero_partial(tx, it, e, in, inner_to, end);
	if (ret < 0)
		return ret;
	cowfs_trans_note_change(tx);
	pages_drop_range(it->icache, e, inner_from / ps, inner_to / ps - 1);
	ret = fmap_replace(tx, it, ino, inner_from, inner_to - inner_from, NULL, &delta);
	in->nbytes += delta;
	return ret;
}

int prealloc_map(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t off,
		 uint64_t len, uint64_t *hint, int64_t *nbytes)
{
	struct extents *x = cowfs_extents(it->fs);
	uint64_t end = off + len;
	int ret = 0;

	*nbytes = 0;
	while (off < end && ret == 0) {
		struct file_extent_item fe;
		uint64_t disk, got, want = end - off < FILE_EXTENT_MAX ? end - off : FILE_EXTENT_MAX;
		int64_t delta;
		ret = extent_alloc_data(x, &tx->bt, x->sectorsize, want, *hint, &disk, &got);
		if (ret < 0)
			break;
		fmap_new_item(&fe, FILE_EXTENT_PREALLOC, cowfs_trans_id(tx), disk, got);
		ret = fmap_replace(tx, it, ino, off, got, &fe, &delta);
		*nbytes += delta;
		*hint = disk + got;
		off += got;
	}
	return ret;
}

/* Give the holes of [off, end) (page aligned) preallocated extents. */
static int prealloc_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			   struct inode *in, uint64_t off, uint64_t end)
{
	uint64_t hint = 0;
	int ret = 0;

	while (off < end && ret == 0) {
		struct fmap_seg seg;
		int64_t delta = 0;
		ret = fmap_lookup(it, ino, off, end, &seg);
		if (ret == 0 && seg.kind == FMAP_HOLE)
			ret = prealloc_map(tx, it, ino, off, seg.len, &hint, &delta);
		in->nbytes += delta;
		off += seg.len;
	}
	return ret;
}

#define FALLOC_SUPPORTED (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)

static int fallocate_check(int mode, uint64_t off, uint64_t len)
{
	if (mode & ~FALLOC_SUPPORTED)
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) &&
	    (!(mode & FALLOC_FL_KEEP_SIZE) || (mode & FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if (len == 0)
		return -EINVAL;
	if (off > FILE_SIZE_MAX || len > FILE_SIZE_MAX - off)
		return -EFBIG;
	return 0;
}

static int fallocate_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, int mode,
			    uint64_t off, uint64_t end)
{
	uint32_t ps = page_size(it);
	struct icache_entry *e = icache_find(it->icache, ino, true);
	struct inode in;
	int ret = e ? inode_read(it, ino, &in) : -ENOMEM;

	if (ret == 0)
		ret = regular_file(&in);
	/* Preallocation covers whole pages: all the range touches, or for ZERO_RANGE the
	 * pages inside it (its partial ends were zeroed in place). */
	uint64_t from = off / ps * ps, to = round_up(end, ps);
	if (mode & FALLOC_FL_ZERO_RANGE) {
		from = round_up(off, ps);
		to = end / ps * ps;
	}
	if (ret == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		ret = punch_locked(tx, it, e, ino, &in, off, end);
	if (ret == 0 && !(mode & FALLOC_FL_PUNCH_HOLE) && from < to)
		ret = prealloc_locked(tx, it, ino, &in, from, to);
	if (ret == 0) {
		bool grows = !(mode & FALLOC_FL_KEEP_SIZE) && end > in.size;
		if (grows)
			in.size = end;
		in.ctime = inode_now();
		if (grows || (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
			in.mtime = in.ctime;
		ret = inode_write(tx, it, ino, &in);
	}
	if (e)
		icache_release_if_idle(it->icache, e);
	return ret;
}

int file_fallocate(struct inode_tree *it, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	struct cowfs_trans *tx;
	uint32_t ps = page_size(it);
	bool frees = mode & FALLOC_FL_PUNCH_HOLE;
	int ret = fallocate_check(mode, off, len);

	if (ret < 0)
		return ret;
	/* Preallocation needs the pages the range touches (statfs's avail is exactly what a
	 * fallocate may ask for); zeroing a range also dirties its two partial ends, which is
	 * all punching needs (and, freeing, it may use the reserve). */
	uint64_t pages = round_up(off + len, ps) - off / ps * ps;
	if (mode & FALLOC_FL_ZERO_RANGE)
		pages += 2ull * ps;
	ret = data_update_begin(it, ino, off, len, frees ? 2ull * ps : pages,
				frees ? ALLOC_PRIVILEGED : ALLOC_NORMAL, &tx);
	if (ret < 0)
		return ret;
	ret = fallocate_locked(tx, it, ino, mode, off, off + len);
	return inode_update_end(tx, ret);
}

/* ---- SEEK_DATA / SEEK_HOLE ---------------------------------------------------------------- */

static int seek_locked(struct inode_tree *it, uint64_t ino, uint64_t size, uint64_t off,
		       int whence, uint64_t *out)
{
	while (off < size) {
		struct fmap_seg seg;
		int ret = fmap_lookup(it, ino, off, size, &seg);
		if (ret < 0)
			return ret;
		if ((seg.kind == FMAP_DATA) == (whence == SEEK_DATA)) {
			*out = off;
			return 0;
		}
		off += seg.len;
	}
	if (whence == SEEK_DATA)
		return -ENXIO;
	*out = size;   /* the implicit hole at end of file */
	return 0;
}

int file_seek(struct inode_tree *it, uint64_t ino, uint64_t off, int whence, uint64_t *out)
{
	struct cowfs_trans *tx;
	struct icache_entry *e;
	struct inode in;
	int ret;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	tx = cowfs_trans_begin(it->fs, ALLOC_NORMAL);
	ret = inode_read(it, ino, &in);
	if (ret == 0)
		ret = regular_file(&in);
	if (ret == 0 && off >= in.size)
		ret = -ENXIO;
	/* Dirty pages are data the map does not show yet: write them back first (in the
	 * running transaction; the size is unchanged by it). */
	e = ret == 0 ? dirty_entry(it, ino) : NULL;
	if (e && e->pages.count)
		ret = inode_writeback_one(tx, it, e);
	if (ret == 0)
		ret = seek_locked(it, ino, in.size, off, whence, out);
	return cowfs_trans_end(tx, ret);
}

/* ---- durability --------------------------------------------------------------------------- */

/* Whether there is nothing to make durable: read-only, or -EIO when a transaction was
 * aborted (what was written since the last commit is gone: ext4's errors= behaviour). */
static int durable_already(struct inode_tree *it)
{
	if (cowfs_failure(it->fs, NULL))
		return -EIO;
	return cowfs_read_only(it->fs) ? 1 : 0;
}

/* Make ino's changes durable (ino 0: everyone's). The log does it for one inode with one
 * write and one flush; what it cannot express takes a commit, which covers everything. */
static int make_durable(struct inode_tree *it, uint64_t ino)
{
	struct file_share_stats *st = &it->share_stats;
	struct cowfs_trans *tx;
	int ret = durable_already(it);

	if (ret != 0)
		return ret < 0 ? ret : 0;
	tx = cowfs_trans_begin(it->fs, ALLOC_NORMAL);
	cowfs_trans_commit_wait(tx);   /* what a commit in flight carries is not durable yet */
	if (cowfs_has_changes(it->fs)) {
		if (ino && log_fsync(tx, it, ino) == 1) {
			share_stat_add(&st->fsync_log_hits, 1);
		} else {
			ret = cowfs_trans_commit(tx);
			if (ino)
				share_stat_add(&st->fsync_commits, 1);
		}
	}
	return cowfs_trans_end(tx, ret);
}

int file_fsync(struct inode_tree *it, uint64_t ino)
{
	share_stat_add(&it->share_stats.fsyncs, 1);
	return make_durable(it, ino);
}

int file_sync_all(struct inode_tree *it)
{
	return make_durable(it, 0);
}
