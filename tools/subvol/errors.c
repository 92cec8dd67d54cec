/*
 * Messages for the subvolume ioctls' errors that say what to do (parts.h): the errno's text,
 * then what it means for this operation, from the contract in fuse/cowfs_ioctl.h.
 */
#include <stdio.h>

#include "fs/lib/compiler.h"
#include "tools/prog.h"
#include "tools/subvol/parts.h"

#define SV_ANY_OP (-1)

static const struct hint {
	int op;              /* enum sv_op, or SV_ANY_OP */
	int err;             /* negative errno */
	bool alone;          /* the hint replaces the errno's text */
	const char *text;
} hints[] = {
	{ SV_OP_CREATE, -EEXIST, false, "the name is taken" },
	{ SV_OP_SNAPSHOT, -EEXIST, false, "the name is taken" },
	{ SV_OP_CREATE, -EROFS, false, "the directory is in a read-only subvolume ('" PROG
	  " property set SUBVOL ro false' makes it writable) or the mount is read-only" },
	{ SV_OP_SNAPSHOT, -EROFS, false, "the destination is in a read-only subvolume ('" PROG
	  " property set SUBVOL ro false' makes it writable) or the mount is read-only" },
	{ SV_OP_CREATE, -EACCES, false, "needs write and search permission on the directory" },
	{ SV_OP_SNAPSHOT, -EACCES, false, "needs write and search permission on the destination "
	  "directory and read permission on the source" },
	{ SV_OP_CREATE, -EINVAL, false, "not a valid subvolume name (one path component, not "
	  "'.' or '..')" },
	{ SV_OP_SNAPSHOT, -EINVAL, false, "not a valid snapshot name (one path component, not "
	  "'.' or '..'), or the source is not a subvolume" },
	{ SV_OP_SNAPSHOT, -ENOENT, false, "the source subvolume is gone" },
	{ SV_ANY_OP, -ENAMETOOLONG, false, "a subvolume name is at most 255 bytes" },
	{ SV_OP_DELETE, -EPERM, false, "needs root or the mount option user_subvol_rm_allowed "
	  "(and then owning the subvolume)" },
	{ SV_OP_DELETE, -EACCES, false, "needs write and search permission on the directory "
	  "that holds it" },
	{ SV_OP_DELETE, -EBUSY, false, "is the mount's root or the default subvolume ('" PROG
	  " subvolume set-default' another one first)" },
	{ SV_OP_DELETE, -ENOTDIR, true, "not a subvolume" },
	{ SV_OP_DELETE, -EINVAL, true, "not a subvolume" },
	{ SV_OP_DELETE, -EROFS, false, "the directory holding it is in a read-only subvolume or "
	  "the mount is read-only" },
	{ SV_OP_SET_FLAGS, -EPERM, false, "needs the subvolume's owner or root" },
	{ SV_OP_SET_FLAGS, -EACCES, false, "needs the subvolume's owner or root" },
	{ SV_OP_SET_FLAGS, -EROFS, false, "the mount is read-only" },
	{ SV_OP_DEFAULT, -EPERM, false, "setting the default needs root" },
	{ SV_OP_DEFAULT, -EACCES, false, "setting the default needs root" },
	{ SV_OP_DEFAULT, -ENOENT, false, "no such subvolume" },
	{ SV_OP_DEFAULT, -EBUSY, false, "a subvolume being deleted cannot become the default" },
	{ SV_OP_DEFAULT, -EINVAL, false, "no such subvolume, or it is being deleted" },
	{ SV_OP_DEFAULT, -EROFS, false, "the mount is read-only" },
	{ SV_OP_SYNC, -ENOENT, false, "no such subvolume" },
	{ SV_OP_SPACE, -ENOENT, false, "no such subvolume" },
	{ SV_OP_SPACE, -E2BIG, true, "more than 64 subvolumes in one set" },
	{ SV_OP_INFO, -ENOENT, false, "no such subvolume" },
	/* Only the probe (sv_open) tells "no subvolumes at all"; later, one operation unknown. */
	{ SV_OP_OPEN, SV_ERR_NO_SUPPORT, true, "this cowfs mount does not support subvolumes (its "
	  "server is older than them)" },
	{ SV_ANY_OP, SV_ERR_NOT_SUBVOL, true, "not a subvolume (its root directory is needed)" },
	{ SV_ANY_OP, SV_ERR_NOT_DELETING, true, "not being deleted: nothing to wait for" },
};

const char *sv_strerror(enum sv_op op, int err, char buf[SV_MSG_MAX])
{
	for (size_t i = 0; i < ARRAY_SIZE(hints); i++) {
		const struct hint *h = &hints[i];

		if (h->err != err || (h->op != SV_ANY_OP && h->op != (int)op))
			continue;
		if (h->alone)
			snprintf(buf, SV_MSG_MAX, "%s", h->text);
		else
			snprintf(buf, SV_MSG_MAX, "%s: %s", cowfs_strerror(err), h->text);
		return buf;
	}
	snprintf(buf, SV_MSG_MAX, "%s", cowfs_strerror(err));
	return buf;
}

void sv_perror(const char *cmd, const char *path, enum sv_op op, int err)
{
	char msg[SV_MSG_MAX];

	fprintf(stderr, PROG " %s: %s: %s\n", cmd, path, sv_strerror(op, err, msg));
}
