/*
 * Sharing extents between files: the remap path (DESIGN.md 10). Cloning a range inserts, in
 * the destination, file extent items that point at the source's extents: each insert adds a
 * reference through the item hook, so the extents are shared and refcounts stay exact, and
 * a later write to either file goes to new extents (copy-on-write) and only drops its share.
 *
 * file_clone_range is the strict form (FICLONERANGE): the kernel's checks (remap_plan), made
 * once to size the transaction and again under its lock, and nothing is ever copied.
 * copy_file_range is built on the same remap: the sector-aligned middle of a copy is cloned,
 * the unaligned ends (if any) copied through the page cache of dirty pages. Dedupe (dedupe.c)
 * uses the checks and the remap too.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"
#include "fs/inode/remap.h"
#include "fs/lib/endian.h"

/*
 * Map [off_out, off_out + len) of `out` to what [off_in, ...) of `in` maps to. Written data is
 * shared; preallocated space gets new preallocated extents instead (it reads as zeros either
 * way): sharing it would break the fallocate promise of both files, since a write into
 * shared space must go to new space (inplace.c). remap_begin made sure of the space.
 */
static int share_range(struct cowfs_trans *tx, struct inode_tree *it_in, uint64_t in,
		       uint64_t off_in, struct inode_tree *it_out, uint64_t out, uint64_t off_out,
		       uint64_t len, int64_t *nbytes)
{
	uint64_t done = 0, hint = 0;
	int ret = 0;

	*nbytes = 0;
	while (done < len && ret == 0) {
		struct fmap_seg seg;
		struct file_extent_item fe;
		int64_t delta;
		ret = fmap_lookup(it_in, in, off_in + done, off_in + len, &seg);
		if (ret < 0)
			break;
		if (seg.kind == FMAP_DATA) {
			fmap_extent_item(&fe, FILE_EXTENT_REG, cowfs_trans_id(tx), seg.extent_start,
					 seg.extent_len, seg.disk, seg.len);
			ret = fmap_replace(tx, it_out, out, off_out + done, seg.len, &fe, &delta);
			*nbytes += delta;
		} else if (seg.kind == FMAP_PREALLOC) {
			ret = prealloc_map(tx, it_out, out, off_out + done, seg.len, &hint, &delta);
			*nbytes += delta;
		}
		done += seg.len;
	}
	return ret;
}

/* ---- the kernel's checks ------------------------------------------------------------------- */

static uint64_t round_up(uint64_t x, uint32_t ps)
{
	return (x + ps - 1) / ps * ps;
}

static int regular_pair(const struct inode *a, const struct inode *b)
{
	if (S_ISDIR(a->mode) || S_ISDIR(b->mode))
		return -EISDIR;
	return S_ISREG(a->mode) && S_ISREG(b->mode) ? 0 : -EINVAL;
}

/*
 * generic_remap_checks and generic_remap_check_len over p's sizes, for `len` > 0 bytes: set
 * p->len and p->span. Only a dedupe may be shortened (REMAP_FILE_CAN_SHORTEN); a clone whose
 * range the checks would cut (past the source's end, past FILE_SIZE_MAX, unaligned) fails.
 */
static int remap_checks(uint32_t ps, bool same_file, uint64_t off_in, uint64_t off_out,
			uint64_t len, bool dedupe, struct remap_plan *p)
{
	uint64_t count = len, span;

	if (off_in % ps || off_out % ps)
		return -EINVAL;
	if (off_in + len < off_in || off_out + len < off_out)
		return -EINVAL;
	if (dedupe && (off_in >= p->in_size || len > p->in_size - off_in ||
		       off_out >= p->out_size || len > p->out_size - off_out))
		return -EINVAL;
	if (off_in >= p->in_size)
		return -EINVAL;
	count = MIN(count, p->in_size - off_in);
	if (off_out >= FILE_SIZE_MAX)
		return -EFBIG;
	count = MIN(count, FILE_SIZE_MAX - off_out);
	/* Running to the source's end of file, the last sector goes whole (zero past the end);
	 * a dedupe only when the destination ends there too, as its bytes must compare equal. */
	if (off_in + count == p->in_size && (!dedupe || off_out + count == p->out_size)) {
		span = round_up(p->in_size, ps) - off_in;
	} else {
		count = count / ps * ps;
		span = count;
	}
	if (same_file && off_out + span > off_in && off_out < off_in + span)
		return -EINVAL;
	if (count != len && !dedupe)
		return -EINVAL;
	/* An unaligned end inside the destination would zero its bytes past the source's end
	 * of file in that sector. */
	if (count % ps && off_out + count < p->out_size) {
		if (!dedupe)
			return -EINVAL;
		count = count / ps * ps;
		span = count;
	}
	p->len = count;
	p->span = span;
	return 0;
}

int remap_plan_locked(struct inode_tree *it_in, uint64_t in, uint64_t off_in,
		      struct inode_tree *it_out, uint64_t out, uint64_t off_out, uint64_t len,
		      bool dedupe, struct remap_plan *p)
{
	struct inode a, b;
	int ret = inode_read(it_in, in, &a);

	if (ret == 0)
		ret = inode_read(it_out, out, &b);
	if (ret == 0)
		ret = regular_pair(&a, &b);
	if (ret < 0)
		return ret;
	*p = (struct remap_plan){ .in_size = a.size, .out_size = b.size };
	/* A zero length: a dedupe does nothing, a clone runs to the source's end of file. */
	if (len == 0) {
		if (dedupe || off_in == a.size)
			return 0;
		if (off_in > a.size)
			return -EINVAL;
		len = a.size - off_in;
	}
	return remap_checks(cowfs_sectorsize(it_in->fs), it_in == it_out && in == out, off_in,
			    off_out, len, dedupe, p);
}

int remap_plan(struct inode_tree *it_in, uint64_t in, uint64_t off_in, struct inode_tree *it_out,
	       uint64_t out, uint64_t off_out, uint64_t len, bool dedupe, struct remap_plan *p)
{
	int ret;

	/* One filesystem lock serves every tree of the filesystem. */
	inode_lock_read(it_in);
	ret = remap_plan_locked(it_in, in, off_in, it_out, out, off_out, len, dedupe, p);
	inode_unlock_read(it_in);
	return ret;
}

int remap_plan_still(struct inode_tree *it_in, uint64_t in, uint64_t off_in,
		     struct inode_tree *it_out, uint64_t out, uint64_t off_out, uint64_t len,
		     bool dedupe, const struct remap_plan *p)
{
	struct remap_plan now;
	int ret = remap_plan_locked(it_in, in, off_in, it_out, out, off_out, len, dedupe, &now);

	if (ret < 0)
		return ret;
	return now.len == p->len && now.span == p->span && now.in_size == p->in_size &&
	       now.out_size == p->out_size ? 0 : -EAGAIN;
}

/* ---- the remap ------------------------------------------------------------------------------- */

int remap_begin(struct inode_tree *it_in, uint64_t in, uint64_t off_in, struct inode_tree *it_out,
		uint64_t out, uint64_t off_out, uint64_t span, struct cowfs_trans **tx)
{
	uint64_t nodes = 0, prealloc = 0, now = 0;
	int ret = data_update_begin(it_out, out, off_out, span, 0, ALLOC_NORMAL, tx);

	if (ret < 0)
		return ret;
	/* Items added: at most one per source item in the range, plus the cuts; and new
	 * preallocated extents for the source's (share_range). (A commit in cowfs_reserve is
	 * followed by its own space check, so this one holds.) */
	uint64_t gen = cowfs_generation(it_out->fs);
	ret = fmap_cost(it_in, in, off_in, span, &nodes);
	if (ret == 0)
		ret = fmap_prealloc_bytes(it_in, in, off_in, span, &prealloc);
	if (ret == 0)
		ret = cowfs_reserve_data(*tx, 2 * nodes + cowfs_update_nodes(inode_btree(it_out)),
					 prealloc);
	/* The commit let the lock go: a fallocate of the source meanwhile would need more. */
	if (ret == 0 && cowfs_generation(it_out->fs) != gen)
		ret = fmap_prealloc_bytes(it_in, in, off_in, span, &now);
	if (ret == 0 && now > prealloc)
		ret = -EAGAIN;
	if (ret < 0)
		return inode_update_end(*tx, ret);
	return 0;
}

int remap_write_back(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;
	int ret;

	/* Buffered data must be in extents to be shared or compared on disk; it need not be
	 * committed. */
	if (!e || !e->pages.count)
		return 0;
	ret = inode_writeback_one(tx, it, e);
	return ret < 0 ? ret : -EAGAIN;
}

int remap_locked(struct cowfs_trans *tx, struct inode_tree *it_in, uint64_t in, uint64_t off_in,
		 struct inode_tree *it_out, uint64_t out, uint64_t off_out, uint64_t span,
		 uint64_t grow_to, bool touch)
{
	struct inode_tree *it = it_out;   /* what changes is the destination's */
	uint32_t ps = cowfs_sectorsize(it->fs);
	struct icache_entry *dst;
	struct inode din;
	int64_t freed = 0, added = 0;
	int ret = inode_read(it, out, &din);

	if (ret < 0)
		return ret;
	dst = icache_find(it->icache, out, false);
	if (dst) {
		cowfs_trans_note_change(tx);
		pages_drop_range(it->icache, dst, off_out / ps, (off_out + span) / ps - 1);
		icache_release_if_idle(it->icache, dst);
	}
	ret = fmap_replace(tx, it, out, off_out, span, NULL, &freed);
	if (ret == 0)
		ret = share_range(tx, it_in, in, off_in, it_out, out, off_out, span, &added);
	if (ret < 0)
		return ret;
	din.nbytes += freed + added;
	if (grow_to > din.size)
		din.size = grow_to;
	if (touch)
		din.mtime = din.ctime = inode_now();
	return inode_write(tx, it, out, &din);
}

/* ---- clones ---------------------------------------------------------------------------------- */

/*
 * Source and destination may be in two trees (two subvolumes of one filesystem): the items
 * inserted in the destination's tree reference the source's extents, which counts as a
 * reference like any other (extents are the filesystem's, not a tree's). The source's side
 * (its map, its dirty pages) is read through its tree, the destination's changed through its
 * own; one filesystem lock covers both.
 */
struct remap_pair {
	struct inode_tree *in_tree, *out_tree;
	uint64_t in, out;
};

/* Clone `span` bytes (sector aligned) for copy_file_range, whose checks are its own; out's
 * size becomes at least off_out + bytes. */
static int clone_range_once(const struct remap_pair *rp, uint64_t off_in, uint64_t off_out,
			    uint64_t span, uint64_t bytes)
{
	struct cowfs_trans *tx;
	int ret = remap_begin(rp->in_tree, rp->in, off_in, rp->out_tree, rp->out, off_out, span,
			      &tx);

	if (ret < 0)
		return ret;
	ret = remap_write_back(tx, rp->in_tree, rp->in);
	if (ret == 0)
		ret = remap_locked(tx, rp->in_tree, rp->in, off_in, rp->out_tree, rp->out, off_out,
				   span, off_out + bytes, true);
	return inode_update_end(tx, ret);
}

/* Tries before a source that keeps getting new buffered data is copied instead. */
#define CLONE_TRIES 4

static int clone_range(const struct remap_pair *rp, uint64_t off_in, uint64_t off_out,
		       uint64_t len, uint64_t bytes)
{
	int ret = -EAGAIN;

	for (int i = 0; i < CLONE_TRIES && ret == -EAGAIN; i++)
		ret = clone_range_once(rp, off_in, off_out, len, bytes);
	return ret;
}

/* One try of a strict clone: checked, then checked again under the lock of its update. */
static int clone_once(const struct remap_pair *rp, uint64_t off_in, uint64_t off_out,
		      uint64_t len, uint64_t *cloned)
{
	struct remap_plan p;
	struct cowfs_trans *tx;
	int ret = remap_plan(rp->in_tree, rp->in, off_in, rp->out_tree, rp->out, off_out, len,
			     false, &p);

	if (ret < 0 || p.len == 0)
		return ret;
	ret = remap_begin(rp->in_tree, rp->in, off_in, rp->out_tree, rp->out, off_out, p.span,
			  &tx);
	if (ret < 0)
		return ret;
	ret = remap_plan_still(rp->in_tree, rp->in, off_in, rp->out_tree, rp->out, off_out, len,
			       false, &p);
	if (ret == 0)
		ret = remap_write_back(tx, rp->in_tree, rp->in);
	if (ret == 0)
		ret = remap_locked(tx, rp->in_tree, rp->in, off_in, rp->out_tree, rp->out, off_out,
				   p.span, off_out + p.len, true);
	if (ret == 0)
		*cloned = p.len;
	return inode_update_end(tx, ret);
}

/* Tries of a strict clone, which never falls back to copying: each -EAGAIN means a writer
 * gave the source new buffered data (or changed a size) between two tries. */
#define CLONE_STRICT_TRIES 16

int file_clone_range_between(struct inode_tree *it_in, uint64_t ino_in, uint64_t off_in,
			     struct inode_tree *it_out, uint64_t ino_out, uint64_t off_out,
			     uint64_t len, uint64_t *cloned)
{
	const struct remap_pair rp = { it_in, it_out, ino_in, ino_out };
	int ret = -EAGAIN;

	*cloned = 0;
	share_stat_add(&it_out->share_stats.clone_calls, 1);
	if (it_in->fs != it_out->fs)
		return -EXDEV;
	if (inode_tree_read_only(it_out))
		return -EROFS;
	for (int i = 0; i < CLONE_STRICT_TRIES && ret == -EAGAIN; i++)
		ret = clone_once(&rp, off_in, off_out, len, cloned);
	if (ret == 0)
		share_stat_add(&it_out->share_stats.clone_bytes, *cloned);
	return ret;
}

int file_clone_range(struct inode_tree *it, uint64_t ino_in, uint64_t off_in, uint64_t ino_out,
		     uint64_t off_out, uint64_t len, uint64_t *cloned)
{
	return file_clone_range_between(it, ino_in, off_in, it, ino_out, off_out, len, cloned);
}

/* ---- copy_file_range ------------------------------------------------------------------------- */

/* Size and type checks of both files; *avail: bytes the source has from off_in. */
static int copy_check(const struct remap_pair *rp, uint64_t off_in, uint64_t *avail,
		      uint64_t *dst_size)
{
	struct inode a, b;
	int ret;

	inode_lock_read(rp->in_tree);
	ret = inode_read(rp->in_tree, rp->in, &a);
	if (ret == 0)
		ret = inode_read(rp->out_tree, rp->out, &b);
	inode_unlock_read(rp->in_tree);
	if (ret < 0)
		return ret;
	if (S_ISDIR(a.mode) || S_ISDIR(b.mode))
		return -EISDIR;
	if (!S_ISREG(a.mode) || !S_ISREG(b.mode))
		return -EINVAL;
	*avail = off_in < a.size ? a.size - off_in : 0;
	*dst_size = b.size;
	return 0;
}

/* Copy bytes through a read buffer, a pooled one at a time (bufpool.h): for what cannot be
 * shared. */
#define COPY_CHUNK (1u << 20)

static ssize_t copy_bytes(const struct remap_pair *rp, uint64_t off_in, uint64_t off_out,
			  size_t len)
{
	size_t done = 0;
	ssize_t got = 0;

	while (done < len) {
		size_t want = len - done < COPY_CHUNK ? len - done : COPY_CHUNK;
		struct file_read_view v;

		got = file_read_view(rp->in_tree, rp->in, want, off_in + done, &v);
		if (got > 0)
			got = file_write(rp->out_tree, rp->out, v.data, (size_t)got, off_out + done,
					 0);
		file_read_view_release(rp->in_tree, &v);
		if (got <= 0)
			break;
		done += (size_t)got;
	}
	share_stat_add(&rp->out_tree->share_stats.copy_bytes_copied, done);
	return done || got == 0 ? (ssize_t)done : got;
}

static ssize_t copy_range(const struct remap_pair *rp, uint64_t off_in, uint64_t off_out,
			  size_t len)
{
	struct inode_tree *it = rp->out_tree;
	uint32_t ps = cowfs_sectorsize(it->fs);
	uint64_t avail, dst_size;
	int ret;

	if (rp->in_tree == rp->out_tree && rp->in == rp->out && off_in < off_out + len &&
	    off_out < off_in + len)
		return -EINVAL;
	if (off_out > FILE_SIZE_MAX || len > FILE_SIZE_MAX - off_out)
		return -EFBIG;
	ret = copy_check(rp, off_in, &avail, &dst_size);
	if (ret < 0)
		return ret;
	if (len > avail)
		len = avail;
	if (len == 0)
		return 0;
	if (off_in % ps != off_out % ps || !file_reflink_on(it))
		return copy_bytes(rp, off_in, off_out, len);

	/* Head up to a sector boundary, the shared middle, the tail. */
	uint64_t head = (ps - off_in % ps) % ps;
	if (head >= len)
		return copy_bytes(rp, off_in, off_out, len);
	uint64_t mid = (len - head) / ps * ps, tail = len - head - mid;
	/* A tail that ends the source and lands at or past the destination's end can be shared
	 * whole: its bytes past end of file are zero in both. */
	if (tail && len == avail && off_out + len >= dst_size) {
		mid += ps;
		tail = 0;
	}
	ssize_t done = head ? copy_bytes(rp, off_in, off_out, head) : 0;
	if (done < (ssize_t)head)
		return done;
	uint64_t bytes = MIN(mid, len - head);
	if (mid) {
		ret = clone_range(rp, off_in + head, off_out + head, mid, bytes);
		if (ret == 0)
			share_stat_add(&it->share_stats.copy_bytes_shared, bytes);
		if (ret == -EAGAIN) {
			ssize_t c = copy_bytes(rp, off_in + head, off_out + head, bytes);
			ret = c == (ssize_t)bytes ? 0 : c < 0 ? (int)c : -EIO;
		}
		if (ret < 0)
			return head ? (ssize_t)head : ret;
	}
	done = (ssize_t)(head + bytes);
	if (tail) {
		ssize_t t = copy_bytes(rp, off_in + done, off_out + done, tail);
		if (t < 0)
			return done;
		done += t;
	}
	return done;
}

ssize_t file_copy_range_between(struct inode_tree *it_in, uint64_t ino_in, uint64_t off_in,
				struct inode_tree *it_out, uint64_t ino_out, uint64_t off_out,
				size_t len)
{
	const struct remap_pair rp = { it_in, it_out, ino_in, ino_out };

	share_stat_add(&it_out->share_stats.copy_calls, 1);
	if (it_in->fs != it_out->fs)
		return -EXDEV;
	return copy_range(&rp, off_in, off_out, len);
}

ssize_t file_copy_range(struct inode_tree *it, uint64_t ino_in, uint64_t off_in,
			uint64_t ino_out, uint64_t off_out, size_t len)
{
	return file_copy_range_between(it, ino_in, off_in, it, ino_out, off_out, len);
}
