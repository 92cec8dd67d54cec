/*
 * mount -o remount,ro|rw,commit=N on a live mount: mount(8) runs the helper (mount.fuse.cowfs,
 * which is the cowfs program) with `remount` among the options. Starting a server would find
 * the image locked by the running one, so this asks that server instead (COWFS_IOC_REMOUNT on
 * the mount's root) and then changes the kernel's flags with mount(2) MS_REMOUNT, so that
 * /proc/mounts and the VFS's own EROFS checks agree with the server.
 *
 * The order matters. Going read-only, the kernel goes first: its reconfigure (fuse_reconfigure)
 * writes back the dirty pages it caches, while the server still takes them, and refuses with
 * EBUSY while a file is open for writing, as for any filesystem; then the server commits and
 * stops taking changes. Going read-write, the server goes first, so that a refusal (after an
 * aborted transaction, or a mount read-only from the start) leaves the kernel read-only too.
 * FUSE ignores the option string of a remount: only the flags change.
 */
#include "fuse/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define PROG "cowfs"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

/* The mount's per-mount flags as they are, kept: MS_REMOUNT sets every one it is given. */
static unsigned long kept_flags(unsigned long f_flag)
{
	static const struct { unsigned long st, ms; } map[] = {
		{ ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
		{ ST_SYNCHRONOUS, MS_SYNCHRONOUS }, { ST_NOATIME, MS_NOATIME },
		{ ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
	};
	unsigned long ms = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (f_flag & map[i].st)
			ms |= map[i].ms;
	return ms;
}

/* The mount's root, checked to be a FUSE mount (the ioctl then tells a cowfs one). */
static int open_root(const struct mount_config *c)
{
	struct statfs sf;
	int fd = open(c->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", c->mountpoint, strerror(errno));
		return -1;
	}
	if (fstatfs(fd, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC) {
		fprintf(stderr, PROG ": %s: not a mounted cowfs filesystem\n", c->mountpoint);
		close(fd);
		return -1;
	}
	return fd;
}

/* Why the server said no to read-write, in words a user can act on. */
static void explain_refusal(int fd, const struct mount_config *c, int err)
{
	struct cowfs_ioc_status st = { 0 };

	if (err == EROFS && ioctl(fd, COWFS_IOC_STATUS, &st) == 0 &&
	    (st.flags & COWFS_STATUS_ABORTED))
		fprintf(stderr, PROG ": %s: cannot remount read-write: read-only since a transaction "
			"was aborted (%s: %s); unmount it, run fsck.cowfs, and mount it again\n",
			c->mountpoint, strerror(-st.error), st.message);
	else if (err == EOPNOTSUPP)
		fprintf(stderr, PROG ": %s: cannot remount read-write: it was mounted read-only "
			"(its image is open for reading only); unmount it and mount it read-write\n",
			c->mountpoint);
	else if (err == ENOTTY)
		fprintf(stderr, PROG ": %s: not the root of a cowfs mount\n", c->mountpoint);
	else
		fprintf(stderr, PROG ": %s: remount: %s\n", c->mountpoint, strerror(err));
}

static int ask_server(int fd, const struct mount_config *c, bool to_ro, bool to_rw)
{
	struct cowfs_ioc_remount r = {
		.version = COWFS_REMOUNT_VERSION,
		.flags = (to_ro ? COWFS_REMOUNT_READ_ONLY : 0) |
			 (to_rw ? COWFS_REMOUNT_READ_WRITE : 0) |
			 (c->commit_set ? COWFS_REMOUNT_COMMIT : 0),
		.commit_seconds = (uint32_t)(c->commit_interval_ms / 1000),
	};

	if (!r.flags)
		return 0;
	if (ioctl(fd, COWFS_IOC_REMOUNT, &r) < 0) {
		explain_refusal(fd, c, errno);
		return -1;
	}
	return 0;
}

static int kernel_remount(const struct mount_config *c, unsigned long flags, bool ro)
{
	if (mount(c->image, c->mountpoint, NULL, MS_REMOUNT | flags | (ro ? MS_RDONLY : 0),
		  NULL) == 0)
		return 0;
	if (errno == EBUSY && ro)
		fprintf(stderr, PROG ": %s: cannot remount read-only: a file is open for writing\n",
			c->mountpoint);
	else
		fprintf(stderr, PROG ": %s: remount: %s\n", c->mountpoint, strerror(errno));
	return -1;
}

int remount_main(const struct mount_config *c)
{
	struct statvfs sv;
	bool was_ro, ro;
	unsigned long flags;
	int fd = open_root(c), ret;

	if (fd < 0)
		return 1;
	if (fstatvfs(fd, &sv) < 0) {
		fprintf(stderr, PROG ": %s: %s\n", c->mountpoint, strerror(errno));
		close(fd);
		return 1;
	}
	was_ro = sv.f_flag & ST_RDONLY;
	ro = c->mode_set ? c->read_only : was_ro;
	flags = kept_flags(sv.f_flag);
	if (ro) {
		/* The kernel's cached writes reach the server before it stops taking them. */
		ret = kernel_remount(c, flags, true);
		if (ret == 0)
			ret = ask_server(fd, c, !was_ro || c->mode_set, false);
	} else {
		ret = ask_server(fd, c, false, true);
		if (ret == 0)
			ret = kernel_remount(c, flags, false);
	}
	close(fd);
	return ret == 0 ? 0 : 1;
}
