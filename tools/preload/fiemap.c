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

struct fiemap_walk {
	struct fiemap *user;     /* the caller's struct */
	uint32_t max;            /* fm_extent_count */
	uint32_t mapped;
	bool full;               /* max extents written: stop */
};

static uint32_t kernel_flags(uint32_t cowfs_flags)
{
	uint32_t flags = cowfs_flags;

	if (flags & FIEMAP_EXTENT_DELALLOC)
		flags |= FIEMAP_EXTENT_UNKNOWN;
	return flags;
}

/* fiemap_fill_next_extent for a batch: 0, or -EFAULT. */
static int fill_batch(struct fiemap_walk *w, const struct cowfs_ioc_fiemap *b)
{
	struct fiemap_extent out[COWFS_FIEMAP_BATCH];
	uint32_t n = 0;

	for (uint32_t i = 0; i < b->count; i++) {
		if (w->max == 0) {
			w->mapped++;
			continue;
		}
		if (w->mapped + n == w->max) {
			w->full = true;
			break;
		}
		memset(&out[n], 0, sizeof(out[n]));
		out[n].fe_logical = b->extents[i].logical;
		out[n].fe_physical = b->extents[i].physical;
		out[n].fe_length = b->extents[i].length;
		out[n].fe_flags = kernel_flags(b->extents[i].flags);
		n++;
	}
	if (n && shim_copy_out(&w->user->fm_extents[w->mapped], out, n * sizeof(out[0])) < 0)
		return -EFAULT;
	w->mapped += n;
	if (w->max && w->mapped == w->max)
		w->full = true;
	return 0;
}

static int walk_extents(const struct shim_file *f, struct fiemap_walk *w, uint64_t start,
			uint64_t len, uint32_t flags)
{
	static __thread struct cowfs_ioc_fiemap b;
	uint64_t end = start + len, next;
	int ret;

	while (start < end && !w->full) {
		memset(&b, 0, sizeof(b));
		b.version = COWFS_FIEMAP_VERSION;
		b.flags = flags;
		b.start = start;
		b.length = end == FUSE_MAX_BYTES ? UINT64_MAX : end - start;
		if (shim_real_ioctl(f->fd, COWFS_IOC_FIEMAP, &b) != 0)
			return -errno;
		if (b.count > COWFS_FIEMAP_BATCH)
			return -EPROTO;
		ret = fill_batch(w, &b);
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
