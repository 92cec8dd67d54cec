/*
 * Access times. Under FUSE the kernel leaves atime to the filesystem (it marks every inode
 * S_NOATIME), so the server asks for an update after each read and readdir it serves, and
 * this file applies the mount's rule, as the kernel's atime_needs_update does for a local
 * filesystem: noatime, nodiratime, relatime (the default) or strictatime; never on a
 * read-only mount.
 *
 * An update is cheap: the inode item changes in the running transaction, which the next
 * periodic commit writes with everything else. It never commits on its own, is not an
 * fsync log barrier (a crash may lose an atime, never anything else), and a failure (no
 * space to reserve) only leaves the old atime: a read never fails for its atime.
 */
#include "fs/inode/internal.h"

#include <errno.h>
#include <sys/stat.h>

/* relatime's bound: an atime older than this is updated whatever mtime and ctime say. */
#define RELATIME_SECONDS (24 * 60 * 60)

static int ts_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

bool inode_atime_needs_update(enum inode_atime_mode mode, bool nodiratime, uint32_t imode,
			      const struct timespec *atime, const struct timespec *mtime,
			      const struct timespec *ctime, const struct timespec *now)
{
	if (mode == INODE_ATIME_NOATIME || (nodiratime && S_ISDIR(imode)))
		return false;
	if (ts_cmp(atime, now) == 0)
		return false;
	if (mode == INODE_ATIME_STRICT)
		return true;
	if (ts_cmp(atime, mtime) <= 0 || ts_cmp(atime, ctime) <= 0)
		return true;
	return now->tv_sec - atime->tv_sec >= RELATIME_SECONDS;
}

void inode_set_atime_mode(struct inode_tree *it, enum inode_atime_mode mode, bool nodiratime)
{
	__atomic_store_n(&it->atime_mode, mode, __ATOMIC_RELAXED);
	__atomic_store_n(&it->nodiratime, nodiratime, __ATOMIC_RELAXED);
}

static bool needs_update(struct inode_tree *it, const struct inode *in,
			 const struct timespec *now)
{
	return inode_atime_needs_update(__atomic_load_n(&it->atime_mode, __ATOMIC_RELAXED),
					__atomic_load_n(&it->nodiratime, __ATOMIC_RELAXED),
					in->mode, &in->atime, &in->mtime, &in->ctime, now);
}

int inode_atime_wanted(struct inode_tree *it, uint64_t ino, bool *wanted)
{
	struct timespec now = inode_now();
	struct inode in;
	int ret;

	*wanted = false;
	if (inode_tree_read_only(it) ||
	    __atomic_load_n(&it->atime_mode, __ATOMIC_RELAXED) == INODE_ATIME_NOATIME)
		return 0;
	inode_lock_read(it);
	ret = inode_read(it, ino, &in);
	inode_unlock_read(it);
	if (ret == 0)
		*wanted = needs_update(it, &in, &now);
	return ret;
}

int inode_touch_atime(struct inode_tree *it, uint64_t ino)
{
	struct cowfs_trans *tx;
	struct timespec now;
	struct inode in;
	bool wanted;
	int ret = inode_atime_wanted(it, ino, &wanted);

	/* Most reads need none (relatime): found out above without a transaction. */
	if (ret < 0 || !wanted)
		return ret;
	ret = inode_update_begin_unlogged(it, ALLOC_NORMAL, 1, &tx);
	if (ret < 0)
		return ret;
	now = inode_now();
	ret = inode_read(it, ino, &in);
	if (ret == 0 && needs_update(it, &in, &now)) {
		in.atime = now;
		ret = inode_write(tx, it, ino, &in);
	}
	return inode_update_end(tx, ret);
}
