/* A path on a cowfs mount opened for its ioctls, with errors a user can act on (mount_ioctl.h). */
#include "tools/share/mount_ioctl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "tools/prog.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

static int is_fuse(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return -errno;
	return sfs.f_type == FUSE_SUPER_MAGIC ? 0 : COWFS_ERR_NOT_COWFS;
}

/* A cowfs older than the sharing ioctls still answers COWFS_IOC_STATUS. */
static bool answers_status(int fd)
{
	struct cowfs_ioc_status st;

	memset(&st, 0, sizeof(st));
	return ioctl(fd, COWFS_IOC_STATUS, &st) == 0 && st.version == COWFS_STATUS_VERSION;
}

/* COWFS_IOC_FILE_ID: a FUSE filesystem that is not cowfs answers ENOTTY (or, some, EINVAL). */
static int file_id(int fd, struct cowfs_ioc_file_id *id)
{
	memset(id, 0, sizeof(*id));
	if (ioctl(fd, COWFS_IOC_FILE_ID, id) < 0) {
		if (errno != ENOTTY && errno != EINVAL && errno != ENOSYS)
			return -errno;
		return answers_status(fd) ? -EOPNOTSUPP : COWFS_ERR_NOT_COWFS;
	}
	return id->version == COWFS_FILE_ID_VERSION ? 0 : -EPROTO;
}

int cowfs_file_adopt(int fd, struct cowfs_file *f)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	ret = is_fuse(fd);
	if (ret == 0)
		ret = file_id(fd, &f->id);
	if (ret < 0)
		return ret;
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->mode = st.st_mode;
	f->size = (uint64_t)st.st_size;
	return 0;
}

int cowfs_file_open(int dirfd, const char *path, int flags, mode_t mode, struct cowfs_file *f)
{
	int fd = openat(dirfd, path, flags | O_CLOEXEC, mode);
	int ret;

	if (fd < 0)
		return -errno;
	ret = cowfs_file_adopt(fd, f);
	if (ret < 0)
		close(fd);
	return ret;
}

void cowfs_file_close(struct cowfs_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

bool cowfs_same_mount(const struct cowfs_file *a, const struct cowfs_file *b)
{
	return a->dev == b->dev;
}

int cowfs_ioctl(int fd, unsigned long request, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, request, arg);
	} while (ret < 0 && errno == EINTR);
	if (ret >= 0)
		return 0;
	return errno == ENOTTY ? -EOPNOTSUPP : -errno;
}

const char *cowfs_strerror(int err)
{
	switch (err) {
	case COWFS_ERR_NOT_COWFS:
		return "not on a cowfs mount";
	case COWFS_ERR_OTHER_MOUNT:
		return "not on the same cowfs mount";
	case -EPROTO:
		return "the mount answered with an ioctl version this program does not know";
	case -EOPNOTSUPP:
		return "operation not supported by this cowfs mount";
	default:
		return strerror(-err);
	}
}

void cowfs_perror(const char *cmd, const char *path, int err)
{
	fprintf(stderr, PROG " %s: %s: %s\n", cmd, path, cowfs_strerror(err));
}

int cowfs_flush_range(int fd, uint64_t offset, uint64_t length)
{
	unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			 SYNC_FILE_RANGE_WAIT_AFTER;

	if (length > (uint64_t)INT64_MAX - offset)
		length = 0;
	return sync_file_range(fd, (off64_t)offset, (off64_t)length, flags) < 0 ? -errno : 0;
}
