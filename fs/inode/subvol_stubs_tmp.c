/*
 * TEMPORARY (i13-fuse): weak stand-ins for functions other branches of issue 13 write
 * (fs/inode/subvol_entry.c, cowfs_subvol_drop_step, cowfs_subvol_space), so that this branch
 * links until they land on main. Delete this file once they are there.
 */
#include <errno.h>

#include "fs/inode/subvol.h"

#define WEAK __attribute__((weak))

WEAK int subvol_make(struct inode_tree *parent, uint64_t dir, const char *name, size_t len,
		     uint32_t mode, uint32_t uid, uint32_t gid, uint64_t *id)
{
	(void)parent; (void)dir; (void)name; (void)len; (void)mode; (void)uid; (void)gid; (void)id;
	return -ENOSYS;
}

WEAK int subvol_snapshot(struct inode_tree *src, struct inode_tree *parent, uint64_t dir,
			 const char *name, size_t len, bool rdonly, uint64_t *id)
{
	(void)src; (void)parent; (void)dir; (void)name; (void)len; (void)rdonly; (void)id;
	return -ENOSYS;
}

WEAK int subvol_unlink(struct inode_tree *parent, uint64_t dir, const char *name, size_t len,
		       uint64_t busy_id, uint64_t *id)
{
	(void)parent; (void)dir; (void)name; (void)len; (void)busy_id; (void)id;
	return -ENOSYS;
}

WEAK int inode_dir_path(struct inode_tree *it, uint64_t dir, char *buf, size_t size)
{
	(void)it; (void)dir;
	if (size)
		buf[0] = '\0';
	return -ENOSYS;
}

WEAK int cowfs_subvol_drop_step(struct cowfs_trans *tx, uint64_t id, unsigned budget, bool *done)
{
	(void)tx; (void)id; (void)budget;
	*done = false;
	return -ENOSYS;
}

WEAK int cowfs_subvol_space(struct cowfs *fs, const uint64_t *ids, size_t n, bool referenced,
			    struct subvol_space *out)
{
	(void)fs; (void)ids; (void)n; (void)referenced; (void)out;
	return -ENOSYS;
}
