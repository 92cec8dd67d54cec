/*
 * The cowfs ioctls `cowfs dedupe` issues (fuse/cowfs_ioctl.h, docs/IOCTL.md). Each returns 0 or
 * a negative errno; a reply of another version is -EPROTO. (A shared helper under tools/share/
 * is to replace this once it lands.)
 */
#include "tools/dedupe/parts.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

int mnt_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY);

	return fd < 0 ? -errno : fd;
}

int mnt_file_id(int fd, struct cowfs_ioc_file_id *id)
{
	memset(id, 0, sizeof(*id));
	if (ioctl(fd, COWFS_IOC_FILE_ID, id) < 0)
		return -errno;
	return id->version == COWFS_FILE_ID_VERSION ? 0 : -EPROTO;
}

/* The extents from `start` on, one batch. The data was synced before the scan began. */
int mnt_fiemap(int fd, uint64_t start, struct cowfs_ioc_fiemap *map)
{
	memset(map, 0, sizeof(*map));
	map->version = COWFS_FIEMAP_VERSION;
	map->start = start;
	map->length = UINT64_MAX;
	if (ioctl(fd, COWFS_IOC_FIEMAP, map) < 0)
		return -errno;
	return map->count <= COWFS_FIEMAP_BATCH ? 0 : -EPROTO;
}

int mnt_dedupe(int src_fd, struct cowfs_ioc_dedupe_range *req)
{
	req->version = COWFS_DEDUPE_VERSION;
	return ioctl(src_fd, COWFS_IOC_DEDUPE_RANGE, req) < 0 ? -errno : 0;
}

int mnt_sync(int fd)
{
	return ioctl(fd, COWFS_IOC_SYNC) < 0 ? -errno : 0;
}

/* Whether fd is on a cowfs mount: only cowfs answers COWFS_IOC_STATUS. */
int mnt_is_cowfs(int fd)
{
	struct cowfs_ioc_status st;

	memset(&st, 0, sizeof(st));
	if (ioctl(fd, COWFS_IOC_STATUS, &st) < 0)
		return -errno;
	return st.version == COWFS_STATUS_VERSION ? 0 : -EPROTO;
}

int mnt_free_bytes(int fd, uint64_t *free_bytes)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return -errno;
	*free_bytes = (uint64_t)sv.f_bfree * sv.f_frsize;
	return 0;
}

static int space_ioctl(const char *path, struct cowfs_ioc_space *sp)
{
	int fd = mnt_open(path, O_RDONLY), ret = 0;

	if (fd < 0)
		return fd;
	sp->version = COWFS_SPACE_VERSION;
	if (ioctl(fd, COWFS_IOC_SPACE, sp) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The figures of all the PATHs together (one set: shared among them counts once). */
int mnt_space_of(char **paths, int n, struct cowfs_ioc_space *out)
{
	struct cowfs_ioc_space sp;
	uint64_t set = 0;
	int ret;

	for (int i = 0; i < n; i++) {
		memset(&sp, 0, sizeof(sp));
		sp.op = COWFS_SPACE_SET_ADD;
		sp.set = set;
		ret = space_ioctl(paths[i], &sp);
		if (ret < 0)
			return ret;
		set = sp.set;
	}
	memset(out, 0, sizeof(*out));
	out->op = COWFS_SPACE_SET_RESULT;
	out->set = set;
	ret = space_ioctl(paths[0], out);
	if (ret == 0 && out->version != COWFS_SPACE_VERSION)
		ret = -EPROTO;
	return ret;
}
