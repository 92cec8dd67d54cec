/*
 * File data handlers: open, read, write_buf, flush, release, fsync, fallocate, lseek,
 * copy_file_range, on top of fs/inode/file.h.
 *
 * An open file needs no state beyond its open flags, so fi->fh holds flags (FH_*, internal.h)
 * rather than a pointer, and release has nothing to free.
 */
#include "fuse/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/inode/file.h"

/* The handle of a file being opened or created, from its open flags. */
void file_handle_init(struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE;

	fi->fh = (fi->flags & O_APPEND ? FH_APPEND : 0) |
		 (acc == O_RDONLY || acc == O_RDWR ? FH_READ : 0) |
		 (acc == O_WRONLY || acc == O_RDWR ? FH_WRITE : 0) |
		 (fi->flags & O_NOATIME ? FH_NOATIME : 0);
	/* The cache may outlive this open: every change comes through the kernel, which keeps
	 * it in step. No FUSE direct_io mode for O_DIRECT: there the kernel refuses a shared
	 * mapping (ENODEV), keeps setuid/setgid on a non-owner's write, and keeps other opens'
	 * cached pages in step only in recent versions. Without it the kernel serves an
	 * O_DIRECT read or write through fuse's direct_IO, writing back and dropping its cached
	 * pages of the range as for any filesystem's direct I/O, after file_remove_privs. */
	fi->direct_io = 0;
	fi->keep_cache = 1;
}

/*
 * Whether a read through this open would update atime. The kernel serves reads from its
 * cached pages without asking, so such an open drops them: its first read reaches cowfs,
 * which updates atime (relatime: then the next opens keep the cache again). An O_DIRECT
 * open's reads reach cowfs anyway: other opens' cached pages need not go.
 */
static bool atime_wants_read(struct inode_tree *it, uint64_t ino, const struct fuse_file_info *fi)
{
	bool wanted = false;

	if ((fi->fh & (FH_READ | FH_NOATIME)) != FH_READ || fi->flags & O_DIRECT)
		return false;
	return inode_atime_wanted(it, ino, &wanted) == 0 && wanted;
}

/* open(O_TRUNC) (the kernel leaves it to us: FUSE_CAP_ATOMIC_O_TRUNC): a truncate by the
 * opener, setuid/setgid dropped as for truncate(2). */
static int truncate_on_open(struct inode_tree *it, fuse_req_t req, uint64_t ino)
{
	struct cowfs_attr a;
	struct req_changer rch;
	int ret = inode_getattr(it, ino, &a);

	if (ret < 0)
		return ret;
	if (!S_ISREG(a.mode))
		return 0;
	a.size = 0;
	req_changer_init(&rch, req);
	ret = inode_setattr_as(it, ino, INODE_SET_SIZE, &a, &rch.ch);
	req_changer_free(&rch);
	return ret;
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct server *s = server_of(req);
	struct inode_tree *it;
	uint64_t i;
	int ret = node_resolve(s, ino, &it, &i);

	if (ret == 0 && (fi->flags & O_TRUNC))
		ret = truncate_on_open(it, req, i);
	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	readahead_raise_once(s);
	file_handle_init(fi);
	if (fi->keep_cache && atime_wants_read(it, i, fi))
		fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct file_read_view v;
	struct inode_tree *it;
	uint64_t i;
	ssize_t n = node_resolve(server_of(req), ino, &it, &i);

	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	n = file_read_view(it, i, size, (uint64_t)off, &v);
	/* Before the reply: the kernel asks for atime again once it has it. A failure leaves
	 * the old atime, as it would on a full ext4; the read stands. */
	if (n >= 0 && !(fi->fh & FH_NOATIME))
		(void)inode_touch_atime(it, i);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, (const char *)v.data, (size_t)n);
	file_read_view_release(it, &v);
}

/*
 * The bytes of a write. Without splicing (see CAPS_REFUSED) libfuse hands over one buffer
 * in memory, used as it is; anything else (a pipe) is copied into *copy, which the caller
 * frees. NULL if out of memory or the copy failed.
 */
static const char *write_data(struct fuse_bufvec *bufv, size_t *len, char **copy)
{
	const struct fuse_buf *b = &bufv->buf[bufv->idx];
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(0);
	ssize_t n;

	*copy = NULL;
	*len = fuse_buf_size(bufv);
	if (bufv->count - bufv->idx == 1 && !(b->flags & FUSE_BUF_IS_FD)) {
		*len = b->size - bufv->off;
		return (const char *)b->mem + bufv->off;
	}
	dst.buf[0].mem = *copy = malloc(*len ? *len : 1);
	dst.buf[0].size = *len;
	if (!*copy)
		return NULL;
	n = fuse_buf_copy(&dst, bufv, 0);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return *copy;
}

/* An O_DIRECT write too goes into the file's dirty pages: written back at once, each would be
 * an extent of its own and fsync could not log it (docs/DESIGN.md section 15). */
void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
		  struct fuse_file_info *fi)
{
	struct server *s = server_of(req);
	unsigned flags = fi->fh & FH_APPEND ? FILE_WRITE_APPEND : 0;
	size_t len;
	char *copy;
	const char *data = write_data(bufv, &len, &copy);
	struct inode_tree *it;
	uint64_t i;
	ssize_t n;

	if (data && (n = node_resolve(s, ino, &it, &i)) < 0) {
		reply_err(req, (int)n);
		free(copy);
		return;
	}
	if (!data) {
		fuse_reply_err(req, copy ? EIO : ENOMEM);
		free(copy);
		return;
	}
	/* A write-back of mmap'ed pages comes from the kernel, not a writer: ext4 drops
	 * nothing for a store through a mapping either. */
	n = fi->writepage ? 0 : req_drop_privs(s, req, it, i);
	if (n == 0)
		n = file_write(it, i, data, len, (uint64_t)off, flags);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
	free(copy);
}

/* close(2): nothing to do. Written data is in fs/ already and becomes durable at the next
 * commit or fsync, as with any local filesystem. */
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* fdatasync is fsync: making the data durable is a commit, which carries the inode too. */
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct inode_tree *it;
	uint64_t i;
	int ret = node_resolve(server_of(req), ino, &it, &i);

	(void)datasync;
	(void)fi;
	reply_err(req, ret < 0 ? ret : file_fsync(it, i));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi)
{
	struct server *s = server_of(req);
	struct inode_tree *it;
	uint64_t i;
	int ret;

	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = node_resolve(s, ino, &it, &i);
	if (ret == 0)
		ret = req_drop_privs(s, req, it, i);
	if (ret == 0)
		ret = file_fallocate(it, i, mode, (uint64_t)off, (uint64_t)len);
	reply_err(req, ret);
}

/* Only SEEK_DATA and SEEK_HOLE come here: the kernel does the others itself. */
void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi)
{
	struct inode_tree *it;
	uint64_t pos, i;
	int ret;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* ext4 and btrfs answer a negative offset like one past the end: no data, no hole. */
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	ret = node_resolve(server_of(req), ino, &it, &i);
	if (ret == 0)
		ret = file_seek(it, i, (uint64_t)off, whence, &pos);
	if (ret < 0)
		reply_err(req, ret);
	else
		fuse_reply_lseek(req, (off_t)pos);
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct server *s = server_of(req);
	struct inode_tree *it_in, *it_out;
	uint64_t in, out;
	ssize_t n;

	(void)fi_in;
	(void)fi_out;
	if (flags != 0 || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = node_resolve(s, ino_in, &it_in, &in);
	if (n == 0)
		n = node_resolve(s, ino_out, &it_out, &out);
	if (n == 0)
		n = req_drop_privs(s, req, it_out, out);
	/* Between subvolumes too: the destination's items share the source's extents. */
	if (n == 0)
		n = file_copy_range_between(it_in, in, (uint64_t)off_in, it_out, out,
					    (uint64_t)off_out, len);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}
