/*
 * Permission checks for callers the kernel cannot check for us (inode.h: inode_permission):
 * the FUSE server's access(2) without default_permissions, and the sharing ioctls, which name
 * a source or destination by inode number rather than by an open file. The rules are Linux's
 * generic_permission and acl_permission_check, so that an ioctl allows exactly what opening
 * the file would have.
 */
#include <errno.h>
#include <sys/stat.h>

#include "fs/inode/internal.h"
#include "fs/inode/xattr_internal.h"

#define MAY_RWX (INODE_MAY_READ | INODE_MAY_WRITE | INODE_MAY_EXEC)

bool inode_caller_in_group(const struct inode_caller *c, gid_t gid)
{
	if (c->gid == gid)
		return true;
	for (size_t i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

static int mode_allows(uint32_t bits, unsigned want)
{
	return want & ~bits & MAY_RWX ? -EACCES : 0;
}

/* acl_permission_check: the owner's bits (ACLs do not matter to the owner), else the access
 * ACL when the mode's group bits say there may be one, else the group's or others' bits. */
static int dac_check(struct inode_tree *it, uint64_t ino, const struct inode *in,
		     const struct inode_caller *c, unsigned want)
{
	int ret;

	if (c->uid == in->uid)
		return mode_allows(in->mode >> 6, want);
	/* An inode with an access ACL always has group bits (its mask or GROUP_OBJ): without
	 * them, the ACL grants no group anything and the item need not be read. */
	if (in->mode & S_IRWXG) {
		ret = acl_access_permission(it, ino, in->uid, in->gid, c, want);
		if (ret != -ENODATA)
			return ret;
	}
	if (inode_caller_in_group(c, in->gid))
		return mode_allows(in->mode >> 3, want);
	return mode_allows(in->mode, want);
}

/* What CAP_DAC_OVERRIDE lets root do where the bits say no: everything on a directory, and
 * on anything else all but executing what nobody may execute. */
static bool root_overrides(const struct inode *in, unsigned want)
{
	return S_ISDIR(in->mode) || !(want & INODE_MAY_EXEC) || (in->mode & 0111);
}

int inode_permission(struct inode_tree *it, uint64_t ino, const struct inode_caller *c,
		     int mask)
{
	unsigned want = (unsigned)mask & MAY_RWX;
	struct inode in;
	int ret;

	inode_lock_read(it);
	ret = inode_read(it, ino, &in);
	if (ret == 0)
		ret = dac_check(it, ino, &in, c, want);
	if (ret == -EACCES && c->uid == 0 && root_overrides(&in, want))
		ret = 0;
	inode_unlock_read(it);
	return ret;
}
