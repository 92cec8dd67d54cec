/*
 * Sharing extents between files: the remap path (DESIGN.md 10). Cloning a range inserts, in
 * the destination, file extent items that point at the source's extents: each insert adds a
 * reference through the item hook, so the extents are shared and refcounts stay exact, and
 * a later write to either file goes to new extents (copy-on-write) and only drops its share.
 *
 * copy_file_range is built on it: the sector-aligned middle of a copy is cloned, the unaligned
 * ends (if any) copied through the page cache of dirty pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"
#include "fs/lib/endian.h"

/* The item mapping `seg` (DATA or PREALLOC), for a new place in a file. */
static void item_for_seg(struct file_extent_item *fe, const struct fmap_seg *seg,
			 uint64_t transid)
{
	fmap_new_item(fe, seg->kind == FMAP_DATA ? FILE_EXTENT_REG : FILE_EXTENT_PREALLOC, transid,
		      seg->extent_start, seg->extent_len);
	put_le64(&fe->offset, seg->disk - seg->extent_start);
	put_le64(&fe->num_bytes, seg->len);
}

/* Map [off_out, off_out + len) of `out` to what [off_in, ...) of `in` maps to. */
static int share_range(struct cowfs_trans *tx, struct inode_tree *it, uint64_t in, uint64_t off_in,
		       uint64_t out, uint64_t off_out, uint64_t len, int64_t *nbytes)
{
	uint64_t done = 0;
	int ret = 0;

	*nbytes = 0;
	while (done < len && ret == 0) {
		struct fmap_seg seg;
		struct file_extent_item fe;
		int64_t delta;
		ret = fmap_lookup(it, in, off_in + done, off_in + len, &seg);
		if (ret < 0)
			break;
		if (seg.kind != FMAP_HOLE) {
			item_for_seg(&fe, &seg, cowfs_trans_id(tx));
			ret = fmap_replace(tx, it, out, off_out + done, seg.len, &fe, &delta);
			*nbytes += delta;
		}
		done += seg.len;
	}
	return ret;
}

static int clone_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t in, uint64_t off_in,
			uint64_t out, uint64_t off_out, uint64_t len, uint64_t new_size)
{
	uint32_t ps = cowfs_sectorsize(it->fs);
	struct icache_entry *src = icache_find(it->icache, in, false);
	struct icache_entry *dst;
	struct inode din;
	int64_t freed = 0, added = 0;
	int ret = 0;

	/* The source's buffered data must be in extents to be shared: write it back (it need
	 * not be committed). That used space reserved for the clone: the caller starts over. */
	if (src && src->pages.count) {
		ret = inode_writeback_one(tx, it, src);
		return ret < 0 ? ret : -EAGAIN;
	}
	ret = inode_read(it, out, &din);
	if (ret < 0)
		return ret;
	dst = icache_find(it->icache, out, false);
	if (dst) {
		pages_drop_range(it->icache, dst, off_out / ps, (off_out + len) / ps - 1);
		icache_release_if_idle(it->icache, dst);
	}
	ret = fmap_replace(tx, it, out, off_out, len, NULL, &freed);
	if (ret == 0)
		ret = share_range(tx, it, in, off_in, out, off_out, len, &added);
	if (ret < 0)
		return ret;
	din.nbytes += freed + added;
	if (new_size > din.size)
		din.size = new_size;
	din.mtime = din.ctime = inode_now();
	return inode_write(tx, it, out, &din);
}

/*
 * Clone [off_in, off_in + len) of `in` onto `out` at off_out: offsets sector aligned, len
 * too, or running to the source's end of file (whose last sector is zero past it), in which
 * case out's size becomes at least off_out + the bytes up to that end.
 */
static int clone_range_once(struct inode_tree *it, uint64_t in, uint64_t off_in, uint64_t out,
			    uint64_t off_out, uint64_t len, uint64_t bytes)
{
	struct cowfs_trans *tx;
	uint64_t nodes = 0;
	int ret = data_update_begin(it, out, off_out, len, 0, ALLOC_NORMAL, &tx);

	if (ret < 0)
		return ret;
	/* Items added: at most one per source item in the range, plus the cuts. (A commit in
	 * cowfs_reserve is followed by its own space check, so this one holds.) */
	ret = fmap_cost(it, in, off_in, len, &nodes);
	if (ret == 0)
		ret = cowfs_reserve(tx, 2 * nodes + cowfs_update_nodes(inode_btree(it)));
	if (ret == 0)
		ret = clone_locked(tx, it, in, off_in, out, off_out, len, off_out + bytes);
	return inode_update_end(tx, ret);
}

/* Tries before a source that keeps getting new buffered data is copied instead. */
#define CLONE_TRIES 4

static int clone_range(struct inode_tree *it, uint64_t in, uint64_t off_in, uint64_t out,
		       uint64_t off_out, uint64_t len, uint64_t bytes)
{
	int ret = -EAGAIN;

	for (int i = 0; i < CLONE_TRIES && ret == -EAGAIN; i++)
		ret = clone_range_once(it, in, off_in, out, off_out, len, bytes);
	return ret;
}

/* Size and type checks of both files; *avail: bytes the source has from off_in. */
static int copy_check(struct inode_tree *it, uint64_t in, uint64_t off_in, uint64_t out,
		      uint64_t *avail, uint64_t *dst_size)
{
	struct inode a, b;
	int ret;

	inode_lock_read(it);
	ret = inode_read(it, in, &a);
	if (ret == 0)
		ret = inode_read(it, out, &b);
	inode_unlock_read(it);
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

/* Copy bytes through a buffer: for what cannot be shared. */
static ssize_t copy_bytes(struct inode_tree *it, uint64_t in, uint64_t off_in, uint64_t out,
			  uint64_t off_out, size_t len)
{
	size_t chunk = len < (4u << 20) ? len : (4u << 20), done = 0;
	uint8_t *buf = malloc(chunk ? chunk : 1);

	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t want = len - done < chunk ? len - done : chunk;
		ssize_t got = file_read(it, in, buf, want, off_in + done);
		if (got > 0)
			got = file_write(it, out, buf, (size_t)got, off_out + done, 0);
		if (got <= 0) {
			free(buf);
			return done ? (ssize_t)done : got;
		}
		done += (size_t)got;
	}
	free(buf);
	return (ssize_t)done;
}

ssize_t file_copy_range(struct inode_tree *it, uint64_t ino_in, uint64_t off_in,
			uint64_t ino_out, uint64_t off_out, size_t len)
{
	uint32_t ps = cowfs_sectorsize(it->fs);
	uint64_t avail, dst_size;
	int ret;

	if (ino_in == ino_out && off_in < off_out + len && off_out < off_in + len)
		return -EINVAL;
	if (off_out > FILE_SIZE_MAX || len > FILE_SIZE_MAX - off_out)
		return -EFBIG;
	ret = copy_check(it, ino_in, off_in, ino_out, &avail, &dst_size);
	if (ret < 0)
		return ret;
	if (len > avail)
		len = avail;
	if (len == 0)
		return 0;
	if (off_in % ps != off_out % ps)
		return copy_bytes(it, ino_in, off_in, ino_out, off_out, len);

	/* Head up to a sector boundary, the shared middle, the tail. */
	uint64_t head = (ps - off_in % ps) % ps;
	if (head >= len)
		return copy_bytes(it, ino_in, off_in, ino_out, off_out, len);
	uint64_t mid = (len - head) / ps * ps, tail = len - head - mid;
	/* A tail that ends the source and lands at or past the destination's end can be shared
	 * whole: its bytes past end of file are zero in both. */
	if (tail && len == avail && off_out + len >= dst_size) {
		mid += ps;
		tail = 0;
	}
	ssize_t done = head ? copy_bytes(it, ino_in, off_in, ino_out, off_out, head) : 0;
	if (done < (ssize_t)head)
		return done;
	if (mid) {
		ret = clone_range(it, ino_in, off_in + head, ino_out, off_out + head, mid,
				  MIN(mid, len - head));
		if (ret == -EAGAIN) {
			ssize_t c = copy_bytes(it, ino_in, off_in + head, ino_out, off_out + head,
					       MIN(mid, len - head));
			ret = c == (ssize_t)MIN(mid, len - head) ? 0 : c < 0 ? (int)c : -EIO;
		}
		if (ret < 0)
			return head ? (ssize_t)head : ret;
	}
	done = (ssize_t)(head + MIN(mid, len - head));
	if (tail) {
		ssize_t t = copy_bytes(it, ino_in, off_in + done, ino_out, off_out + done, tail);
		if (t < 0)
			return done;
		done += t;
	}
	return done;
}
