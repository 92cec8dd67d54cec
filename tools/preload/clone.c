/*
 * FICLONE (== BTRFS_IOC_CLONE) and FICLONERANGE on a cowfs destination: the kernel's checks, in
 * the kernel's order so that a caller gets the errno a kernel filesystem would give (fs/ioctl.c
 * ioctl_file_clone, fs/remap_range.c vfs_clone_file_range and generic_remap_file_range_prep),
 * then COWFS_IOC_CLONE_RANGE on the destination with the source named by COWFS_IOC_FILE_ID.
 * The server checks again; these checks only make the errors the kernel's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/preload/shim.h"

struct clone_request {
	int src_fd;
	uint64_t src_offset;
	uint64_t length;         /* as asked: 0 = to the source's end of file */
	uint64_t dst_offset;
};

/* generic_file_rw_checks. */
static int check_files(const struct shim_file *src, const struct shim_file *dst)
{
	if (S_ISDIR(src->mode) || S_ISDIR(dst->mode))
		return -EISDIR;
	if (!S_ISREG(src->mode) || !S_ISREG(dst->mode))
		return -EINVAL;
	if (!shim_readable(src) || !shim_writable(dst) || (dst->open_flags & O_APPEND))
		return -EBADF;
	return 0;
}

static uint64_t align_down(uint64_t v, uint64_t bs)
{
	return v - v % bs;
}

static uint64_t align_up(uint64_t v, uint64_t bs)
{
	return align_down(v + bs - 1, bs);
}

/*
 * generic_remap_file_range_prep for a clone: *len becomes the bytes to share (0: nothing to do).
 * A clone is never shortened: what would be is EINVAL.
 */
static int check_clone_range(const struct shim_file *src, const struct shim_file *dst, uint64_t bs,
			     uint64_t pos_in, uint64_t pos_out, uint64_t *len)
{
	uint64_t count = *len, bcount;

	if (count == 0) {
		if (pos_in == src->size)
			return 0;
		if (pos_in > src->size)
			return -EINVAL;
		count = src->size - pos_in;
		*len = count;
	}
	if (pos_in % bs || pos_out % bs)
		return -EINVAL;
	if (pos_in + count < pos_in || pos_out + count < pos_out)
		return -EINVAL;
	if (pos_in >= src->size)
		return -EINVAL;
	if (count > src->size - pos_in)
		count = src->size - pos_in;
	if (pos_in + count == src->size) {
		bcount = align_up(src->size, bs) - pos_in;
	} else {
		count = align_down(count, bs);
		bcount = count;
	}
	if (src->dev == dst->dev && src->ino == dst->ino && pos_out + bcount > pos_in &&
	    pos_out < pos_in + bcount)
		return -EINVAL;
	if (count != *len)
		return -EINVAL;
	/* A partial last block links only at or past the destination's end of file. */
	if (count % bs && pos_out + count < dst->size)
		return -EINVAL;
	return 0;
}

static int server_clone(const struct shim_file *dst, const struct cowfs_ioc_file *src_id,
			uint64_t src_offset, uint64_t len, uint64_t dst_offset, uint64_t *cloned)
{
	struct cowfs_ioc_clone_range req;

	memset(&req, 0, sizeof(req));
	req.version = COWFS_CLONE_VERSION;
	req.src = *src_id;
	req.src_offset = src_offset;
	req.length = len;
	req.dst_offset = dst_offset;
	if (shim_real_ioctl(dst->fd, COWFS_IOC_CLONE_RANGE, &req) != 0)
		return -errno;
	*cloned = req.length;
	return 0;
}

static int clone_files(const struct shim_file *dst, const struct clone_request *r)
{
	struct cowfs_ioc_file_id src_id;
	struct shim_file src;
	uint64_t len = r->length, cloned = 0;
	int ret;

	if (r->src_fd < 0 || shim_describe(r->src_fd, true, &src) != 0 || (src.open_flags & O_PATH))
		return -EBADF;
	if (!shim_range_valid(r->src_offset, r->length) ||
	    !shim_range_valid(r->dst_offset, r->length))
		return -EINVAL;
	if (src.dev != dst->dev)
		return -EXDEV;
	ret = check_files(&src, dst);
	if (ret < 0)
		return ret;
	ret = shim_file_id(src.fd, &src_id);
	if (ret < 0)
		return ret;
	ret = check_clone_range(&src, dst, src_id.blocksize, r->src_offset, r->dst_offset, &len);
	if (ret < 0 || len == 0)
		return ret;
	shim_flush_range(src.fd, r->src_offset, len);
	shim_flush_range(dst->fd, r->dst_offset, len);
	ret = server_clone(dst, &src_id.file, r->src_offset, len, r->dst_offset, &cloned);
	shim_forget_cached(dst->fd);
	if (ret < 0)
		return ret;
	if (r->length && cloned != r->length)
		return -EINVAL;
	return 0;
}

/* The destination's size as the server has it: the checks compare ranges with it. */
static int refreshed(const struct shim_file *dst, struct shim_file *out)
{
	return shim_describe(dst->fd, true, out) == 0 ? 0 : -EBADF;
}

int shim_ficlone(const struct shim_file *dst, int src_fd)
{
	struct clone_request r = { .src_fd = src_fd };
	struct shim_file d;
	int ret = refreshed(dst, &d);

	return ret < 0 ? ret : clone_files(&d, &r);
}

int shim_ficlonerange(const struct shim_file *dst, void *arg)
{
	struct file_clone_range args;
	struct clone_request r;
	struct shim_file d;
	int ret = shim_copy_in(&args, arg, sizeof(args));

	if (ret < 0)
		return ret;
	ret = refreshed(dst, &d);
	if (ret < 0)
		return ret;
	/* The kernel reads the descriptor as an unsigned int (fdget). */
	r.src_fd = (int)(unsigned)args.src_fd;
	r.src_offset = args.src_offset;
	r.length = args.src_length;
	r.dst_offset = args.dest_offset;
	return clone_files(&d, &r);
}
