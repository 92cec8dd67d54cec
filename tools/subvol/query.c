/*
 * Paths on a mount with subvolumes, and the SUBVOL_INFO, SPACE and SYNC calls (parts.h).
 *
 * Every command opens its path through sv_open, which asks SUBVOL_INFO for the path's own
 * subvolume: a server with subvolumes answers that on any file, so a failure with ENOTTY (a
 * cowfs that does not know the command; cowfs_ioctl gives -EOPNOTSUPP for it), EINVAL or
 * ENOSYS means "no subvolumes here", and later errors of the other ioctls mean what their
 * contract says rather than "unknown command".
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/inode_format.h"
#include "tools/subvol/parts.h"

/* st_ino and FILE_ID carry the subvolume's index above the inode number (DESIGN.md 16). */
#define SV_INO_BITS 48
#define SV_INO_MASK ((1ull << SV_INO_BITS) - 1)

/* The strings the server fills are NUL-terminated by contract; a short one is not trusted. */
static void terminate(struct cowfs_ioc_subvol_info *info)
{
	info->name[sizeof(info->name) - 1] = '\0';
	info->path[sizeof(info->path) - 1] = '\0';
}

int sv_info(int fd, uint64_t id, bool next, struct cowfs_ioc_subvol_info *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->version = COWFS_SUBVOL_VERSION;
	out->in_flags = next ? COWFS_SUBVOL_INFO_NEXT : 0;
	out->id = id;
	ret = cowfs_ioctl(fd, COWFS_IOC_SUBVOL_INFO, out);
	if (ret == 0)
		terminate(out);
	return ret;
}

int sv_open(const char *path, bool dir, struct sv_path *p)
{
	int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | (dir ? O_DIRECTORY : 0);
	int ret = cowfs_file_open(AT_FDCWD, path, flags, 0, &p->f);

	if (ret < 0)
		return ret;
	ret = sv_info(p->f.fd, 0, false, &p->info);
	if (ret == -EOPNOTSUPP || ret == -EINVAL || ret == -ENOSYS)
		ret = SV_ERR_NO_SUPPORT;
	if (ret < 0)
		cowfs_file_close(&p->f);
	return ret;
}

void sv_close(struct sv_path *p)
{
	cowfs_file_close(&p->f);
}

bool sv_is_root(const struct sv_path *p)
{
	return S_ISDIR(p->f.mode) && p->f.id.file.subvol == p->info.id &&
	       (p->f.id.file.ino & SV_INO_MASK) == INODE_ROOT_INO;
}

int sv_open_root(const char *path, struct sv_path *p)
{
	int ret = sv_open(path, true, p);

	if (ret == 0 && !sv_is_root(p)) {
		sv_close(p);
		ret = SV_ERR_NOT_SUBVOL;
	}
	return ret == -ENOTDIR ? SV_ERR_NOT_SUBVOL : ret;
}

int sv_open_root_said(const char *cmd, const char *path, struct sv_path *p)
{
	int ret = sv_open_root(path, p);

	if (ret < 0)
		sv_perror(cmd, path, SV_OP_OPEN, ret);
	return ret;
}

int sv_each(int fd, int (*fn)(const struct cowfs_ioc_subvol_info *info, void *ctx), void *ctx)
{
	struct cowfs_ioc_subvol_info info;
	uint64_t from = 0;
	int ret;

	for (;;) {
		ret = sv_info(fd, from, true, &info);
		if (ret == -ENOENT)
			return 0;
		if (ret < 0)
			return ret;
		/* An answer below what was asked would loop for ever: a server bug, said so. */
		if (info.id < from)
			return -EPROTO;
		ret = fn(&info, ctx);
		if (ret)
			return ret;
		if (info.id == UINT64_MAX)
			return 0;
		from = info.id + 1;
	}
}

int sv_space(int fd, const uint64_t *ids, size_t count, bool referenced,
	     struct cowfs_ioc_subvol_space *out)
{
	if (count == 0 || count > COWFS_SUBVOL_SPACE_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->version = COWFS_SUBVOL_VERSION;
	out->count = (uint16_t)count;
	out->flags = referenced ? COWFS_SUBVOL_SPACE_REFERENCED : 0;
	memcpy(out->ids, ids, count * sizeof(*ids));
	return cowfs_ioctl(fd, COWFS_IOC_SUBVOL_SPACE, out);
}

int sv_sync(int fd, uint64_t id, uint32_t *count)
{
	struct cowfs_ioc_subvol_sync s = { .version = COWFS_SUBVOL_VERSION, .id = id };
	int ret = cowfs_ioctl(fd, COWFS_IOC_SUBVOL_SYNC, &s);

	*count = ret == 0 ? s.count : 0;
	return ret;
}

int sv_create_in(int dirfd, unsigned long request, const char *name, uint64_t source,
		 uint32_t flags, uint64_t *id)
{
	struct cowfs_ioc_subvol_create c;
	int ret;

	if (strlen(name) > COWFS_SUBVOL_NAME_MAX)
		return -ENAMETOOLONG;
	memset(&c, 0, sizeof(c));
	c.version = COWFS_SUBVOL_VERSION;
	c.flags = flags;
	c.source = source;
	strcpy(c.name, name);
	ret = cowfs_ioctl(dirfd, request, &c);
	*id = ret == 0 ? c.id : 0;
	return ret;
}
