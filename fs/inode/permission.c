/*
 * Permission checks for callers the kernel cannot check for us (inode.h: inode_permission):
 * the FUSE server's access(2) without default_permissions, and the sharing ioctls, which name
 * a source or destination by inode number rather than by an open file. The rules are Linux's
 * generic_permission and acl_permission_check, so that an ioctl allows exactly what opening
 * the file would have.
 *
 * Also which setuid/setgid bits a change drops (inode_privs_dropped), the one place of that
 * rule. The FUSE kernel leaves it to the server (FUSE_CAP_HANDLE_KILLPRIV), or else sends a
 * chmod of its own that knows only "setuid, and setgid if group-executable", and nothing at
 * all for O_DIRECT writes or ACLs.
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

/* ---- setuid/setgid on change ----------------------------------------------------------- */

/* in_group_or_capable: the caller is in the group `gid`, or holds CAP_FSETID. */
static bool changer_in_group_or_capable(const struct inode_changer *c, gid_t gid)
{
	if (c->fsetid || c->gid == gid)
		return true;
	return c->in_groups && c->in_groups(c->arg, gid);
}

/* setattr_should_drop_sgid: a group-executable setgid file loses it (setgid then means
 * "run as the group"); one that is not (mandatory locking's old mark) only when the caller
 * could not have set it, being outside the group. */
static uint32_t sgid_dropped(uint32_t mode, gid_t gid, const struct inode_changer *c)
{
	if (!(mode & S_ISGID))
		return 0;
	if (mode & S_IXGRP)
		return S_ISGID;
	return changer_in_group_or_capable(c, gid) ? 0 : S_ISGID;
}

uint32_t inode_privs_dropped(uint32_t mode, gid_t gid, enum inode_change change,
			     const struct inode_changer *c)
{
	switch (change) {
	case INODE_CHANGE_DATA:
		/* setattr_should_drop_suidgid: regular files only, and not for CAP_FSETID. */
		if (!S_ISREG(mode) || c->fsetid)
			return 0;
		return (mode & S_ISUID) | sgid_dropped(mode, gid, c);
	case INODE_CHANGE_OWNER:
		/* chown_common: setuid goes even for root (CAP_FSETID only spares setgid);
		 * a directory keeps both. */
		if (S_ISDIR(mode))
			return 0;
		return (mode & S_ISUID) | sgid_dropped(mode, gid, c);
	case INODE_CHANGE_ACL:
	case INODE_CHANGE_MODE:
		/* posix_acl_update_mode, setattr_prepare: a mode set keeps setgid only for a
		 * caller in the group (or with CAP_FSETID), whatever the type or x bits. */
		return changer_in_group_or_capable(c, gid) ? 0 : mode & S_ISGID;
	}
	return 0;
}

int inode_drop_privs(struct inode_tree *it, uint64_t ino, enum inode_change change,
		     const struct inode_changer *c)
{
	struct cowfs_trans *tx;
	struct inode in;
	uint32_t drop;
	int ret;

	/* Nearly every file has nothing to drop: find out without a transaction. */
	inode_lock_read(it);
	ret = inode_read(it, ino, &in);
	inode_unlock_read(it);
	if (ret < 0)
		return ret;
	if (!inode_privs_dropped(in.mode, in.gid, change, c))
		return 0;
	ret = inode_update_begin(it, ALLOC_NORMAL, 1, &tx);
	if (ret < 0)
		return ret;
	ret = inode_read(it, ino, &in);
	drop = ret == 0 ? inode_privs_dropped(in.mode, in.gid, change, c) : 0;
	if (drop) {
		in.mode &= ~drop;
		in.ctime = inode_now();
		ret = inode_write(tx, it, ino, &in);
	}
	ret = inode_update_end(tx, ret);
	return ret < 0 ? ret : drop != 0;
}
