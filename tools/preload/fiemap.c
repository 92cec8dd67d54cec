/*
 * FS_IOC_FIEMAP on a cowfs file: fs/ioctl.c ioctl_fiemap and fiemap_prep, then the extents from
 * COWFS_IOC_FIEMAP, COWFS_FIEMAP_BATCH at a time, written into fm_extents as
 * fiemap_fill_next_extent does (fm_extent_count 0: only counted in fm_mapped_extents).
 * COWFS_EXTENT_* have the values of FIEMAP_EXTENT_*, so flags are copied; DELALLOC implies
 * UNKNOWN, as the kernel adds it.
 */
#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdint.h>
#include <string.h>

#include "tools/preload/shim.h"

#define FIEMAP_MAX_EXTENTS (UINT32_MAX / sizeof(struct fiemap_extent))
/* FUSE's s_maxbytes (MAX_LFS_FILESIZE). */
#define FUSE_MAX_BYTES ((uint64_t)INT64_MAX)
/* What fiemap_prep accepts here: SYNC (FIEMAP_FLAGS_COMPAT minus XATTR: no xattr extents). */
#define SUPPORTED_FLAGS FIEMAP_FLAG_SYNC

static uint32_t kernel_flags(uint32_t cowfs_flags)
{
	uint32_t flags = cowfs_flags;

	if (flags & FIEMAP_EXTENT_DELALLOC)
		flags |= FIEMAP_EXTENT_UNKNOWN;
	return flags;
}

/*
 * The extents reported are those of xfs and ext4 (iomap_fiemap): each trimmed to the requested
 * range rounded out to whole blocks, and FIEMAP_EXTENT_LAST on the last extent of that range
 * (not only on the file's last one), unless fm_extents filled up before it. So every extent is
 * held back until the next one is known, as iomap_fiemap holds `prev`.
 */
struct fiemap_walk {
	struct fiemap *user;     /* the caller's struct */
	uint32_t max;            /* fm_extent_count */
	uint32_t mapped;
	uint64_t lo, hi;         /* the range, in whole blocks */
	bool have_prev;
	bool stop;               /* fm_extents is full (or an error): no more */
	struct fiemap_extent prev;
};

/* fiemap_fill_next_extent: 0 to go on, 1 when full, -EFAULT. */
static int fill_next(struct fiemap_walk *w, struct fiemap_extent *e, uint32_t flags)
{
	e->fe_flags |= flags;
	if (w->max == 0) {
		w->mapped++;
		return (e->fe_flags & FIEMAP_EXTENT_LAST) ? 1 : 0;
	}
	if (w->mapped == w->max)
		return 1;
	if (shim_copy_out(&w->user->fm_extents[w->mapped], e, sizeof(*e)) < 0)
		return -EFAULT;
	w->mapped++;
	return (w->mapped == w->max || (e->fe_flags & FIEMAP_EXTENT_LAST)) ? 1 : 0;
}

/* The kernel's form of a cowfs extent, trimmed to the walk's range: false if none of it is in. */
static bool kernel_extent(const struct fiemap_walk *w, const struct cowfs_ioc_extent *c,
			  struct fiemap_extent *e)
{
	uint64_t start = c->logical > w->lo ? c->logical : w->lo;
	uint64_t c_end = c->length > UINT64_MAX - c->logical ? UINT64_MAX : c->logical + c->length;
	uint64_t end = c_end < w->hi ? c_end : w->hi;

	if (end <= start)
		return false;
	memset(e, 0, sizeof(*e));
	e->fe_logical = start;
	e->fe_length = end - start;
	/* Dirty data has no place yet (physical 0): nothing to shift. */
	e->fe_physical = (c->flags & COWFS_EXTENT_DELALLOC) ? c->physical
							    : c->physical + (start - c->logical);
	e->fe_flags = kernel_flags(c->flags & ~COWFS_EXTENT_LAST);
	return true;
}

/* iomap_fiemap_iter for one extent: the one before it goes out now. */
static int walk_one(struct fiemap_walk *w, const struct fiemap_extent *e)
{
	int ret = w->have_prev ? fill_next(w, &w->prev, 0) : 0;

	w->prev = *e;
	w->have_prev = true;
	if (ret != 0)
		w->stop = true;
	return ret < 0 ? ret : 0;
}

static int walk_batch(struct fiemap_walk *w, const struct cowfs_ioc_fiemap *b)
{
	struct fiemap_extent e;
	int ret;

	for (uint32_t i = 0; i < b->count && !w->stop; i++) {
		if (!kernel_extent(w, &b->extents[i], &e))
			continue;
		ret = walk_one(w, &e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int walk_extents(const struct shim_file *f, struct fiemap_walk *w, uint64_t start,
			uint64_t len, uint32_t flags)
{
	static __thread struct cowfs_ioc_fiemap b;
	uint64_t end = start + len, next;
	int ret;

	while (start < end && !w->stop) {
		memset(&b, 0, sizeof(b));
		b.version = COWFS_FIEMAP_VERSION;
		b.flags = flags;
		b.start = start;
		b.length = end == FUSE_MAX_BYTES ? UINT64_MAX : end - start;
		if (shim_real_ioctl(f->fd, COWFS_IOC_FIEMAP, &b) != 0)
			return -errno;
		if (b.count > COWFS_FIEMAP_BATCH)
			return -EPROTO;
		ret = walk_batch(w, &b);
		if (ret < 0)
			return ret;
		if (b.count < COWFS_FIEMAP_BATCH || (b.extents[b.count - 1].flags & COWFS_EXTENT_LAST))
			break;
		next = b.extents[b.count - 1].logical + b.extents[b.count - 1].length;
		if (next <= start)
			return -EPROTO;
		start = next;
		flags &= ~COWFS_FIEMAP_SYNC;   /* written back once is enough */
	}
	/* The range's last extent, if there was room for it. */
	if (w->have_prev && !w->stop) {
		ret = fill_next(w, &w->prev, FIEMAP_EXTENT_LAST);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The range rounded out to the file's blocks (iomap maps whole blocks). */
static int block_range(const struct shim_file *f, uint64_t start, uint64_t len,
		       struct fiemap_walk *w)
{
	struct cowfs_ioc_file_id id;
	int ret = shim_file_id(f->fd, &id);

	if (ret < 0)
		return ret;
	w->lo = start - start % id.blocksize;
	w->hi = start + len;
	if (w->hi % id.blocksize && w->hi <= FUSE_MAX_BYTES - id.blocksize)
		w->hi += id.blocksize - w->hi % id.blocksize;
	return 0;
}

/* fiemap_prep: the range clamped, the flags checked (*fm_flags = the unsupported ones). */
static int prep(uint64_t start, uint64_t *len, uint32_t *fm_flags)
{
	uint32_t incompat = *fm_flags & ~(uint32_t)SUPPORTED_FLAGS;

	if (*len == 0)
		return -EINVAL;
	if (start >= FUSE_MAX_BYTES)
		return -EFBIG;
	if (*len > FUSE_MAX_BYTES || FUSE_MAX_BYTES - *len < start)
		*len = FUSE_MAX_BYTES - start;
	if (incompat) {
		*fm_flags = incompat;
		return -EBADR;
	}
	return 0;
}

int shim_fiemap(const struct shim_file *f, void *arg)
{
	struct fiemap head;
	struct fiemap_walk w;
	uint64_t len;
	int ret = shim_copy_in(&head, arg, sizeof(head));

	if (ret < 0)
		return ret;
	if (head.fm_extent_count > FIEMAP_MAX_EXTENTS)
		return -EINVAL;
	w = (struct fiemap_walk){ .user = arg, .max = head.fm_extent_count };
	len = head.fm_length;
	ret = prep(head.fm_start, &len, &head.fm_flags);
	if (ret == 0)
		ret = block_range(f, head.fm_start, len, &w);
	if (ret == 0 && (head.fm_flags & FIEMAP_FLAG_SYNC))
		shim_flush_range(f->fd, 0, 0);   /* the kernel's part: mmap pages to the server */
	if (ret == 0)
		ret = walk_extents(f, &w, head.fm_start, len,
				   (head.fm_flags & FIEMAP_FLAG_SYNC) ? COWFS_FIEMAP_SYNC : 0);
	/* The kernel writes the header back whatever happened (EBADR reports the flags so). */
	head.fm_mapped_extents = w.mapped;
	if (shim_copy_out(arg, &head, sizeof(head)) < 0)
		ret = -EFAULT;
	return ret;
}
