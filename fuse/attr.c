/*
 * Conversions between what fs/ reports and what the kernel is told: inode numbers, struct
 * stat, entry parameters, setattr requests, statfs figures. No fs/ calls happen here.
 */
#include "fuse/internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* The kernel's preferred I/O size: a page, the unit of file data in fs/inode/file.c. */
#define STAT_BLKSIZE 4096

static uint64_t subvol_index(uint64_t subvol)
{
	return subvol == FS_TREE_ID ? 0 : subvol - (SUBVOL_FIRST_ID - 1);
}

uint64_t node_encode(uint64_t subvol, uint64_t ino)
{
	return subvol_index(subvol) << NODE_INO_BITS | ino;
}

/* FUSE calls the mount's root FUSE_ROOT_ID; every other inode has its full number. */
fuse_ino_t ino_to_fuse(uint64_t subvol, uint64_t ino, uint64_t root_subvol)
{
	if (subvol == root_subvol && ino == INODE_ROOT_INO)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)node_encode(subvol, ino);
}

int ino_from_fuse(fuse_ino_t node, uint64_t root_subvol, uint64_t *subvol, uint64_t *ino)
{
	uint64_t index = (uint64_t)node >> NODE_INO_BITS;

	if (node == FUSE_ROOT_ID) {
		*subvol = root_subvol;
		*ino = INODE_ROOT_INO;
		return 0;
	}
	*subvol = index == 0 ? FS_TREE_ID : index + (SUBVOL_FIRST_ID - 1);
	*ino = (uint64_t)node & INODE_MAX_INO;
	return *subvol <= SUBVOL_LAST_ID && *ino >= INODE_ROOT_INO ? 0 : -ESTALE;
}

void attr_to_stat(const struct cowfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = node_encode(a->subvol, a->ino);
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = STAT_BLKSIZE;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

int attr_to_entry(const struct cowfs_attr *a, uint64_t root_subvol, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	if (a->ino > INODE_MAX_INO)
		return -EOVERFLOW;
	e->ino = ino_to_fuse(a->subvol, a->ino, root_subvol);
	/* With the inode number, what a file handle (name_to_handle_at) names: a number reused
	 * after the inode was freed comes with another generation, so old handles go stale. */
	e->generation = a->generation;
	attr_to_stat(a, &e->attr);
	e->attr_timeout = SERVER_TIMEOUT;
	e->entry_timeout = SERVER_TIMEOUT;
	return 0;
}

static struct timespec time_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

/* The inode_setattr mask and values of a FUSE setattr request. */
unsigned attr_from_setattr(const struct stat *st, int to_set, struct cowfs_attr *out)
{
	unsigned mask = 0;

	memset(out, 0, sizeof(*out));
	if (to_set & FUSE_SET_ATTR_MODE) {
		mask |= INODE_SET_MODE;
		out->mode = st->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		mask |= INODE_SET_UID;
		out->uid = st->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		mask |= INODE_SET_GID;
		out->gid = st->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		mask |= INODE_SET_SIZE;
		out->size = (uint64_t)st->st_size;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		mask |= INODE_SET_ATIME;
		out->atime = to_set & FUSE_SET_ATTR_ATIME_NOW ? time_now() : st->st_atim;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		mask |= INODE_SET_MTIME;
		out->mtime = to_set & FUSE_SET_ATTR_MTIME_NOW ? time_now() : st->st_mtim;
	}
	return mask;
}

void statfs_to_statvfs(const struct cowfs_statfs *in, struct statvfs *out)
{
	uint64_t bs = in->blocksize ? in->blocksize : STAT_BLKSIZE;

	memset(out, 0, sizeof(*out));
	out->f_bsize = bs;
	out->f_frsize = bs;
	out->f_blocks = in->total / bs;
	out->f_bfree = in->free / bs;
	out->f_bavail = in->avail / bs;
	/* Inodes are allocated dynamically (an item in a tree leaf): there is no inode count
	 * to report, and like btrfs (f_files = f_ffree = 0) nothing is, so df -i shows '-'
	 * instead of a percentage of a made-up total. */
	out->f_files = 0;
	out->f_ffree = 0;
	out->f_favail = 0;
	out->f_namemax = INODE_NAME_MAX;
}
