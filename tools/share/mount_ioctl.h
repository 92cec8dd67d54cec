/*
 * A path on a cowfs mount, opened for one of its ioctls (fuse/cowfs_ioctl.h), with the errors a
 * user can act on. The commands of the cowfs program that talk to a mount (reflink, dedupe,
 * fiemap, du, sync, stats) open what they work on with cowfs_file_open and issue their ioctls
 * with cowfs_ioctl; their messages come from cowfs_strerror.
 *
 * A path is on a cowfs mount when its filesystem is FUSE (fstatfs: FUSE_SUPER_MAGIC) and it
 * answers COWFS_IOC_FILE_ID (or, on a cowfs that predates it, COWFS_IOC_STATUS). The magic is
 * checked first so that no cowfs ioctl number ever reaches another filesystem, whose own ioctl
 * with the same number could do something else.
 */
#ifndef COWFS_TOOLS_SHARE_MOUNT_IOCTL_H
#define COWFS_TOOLS_SHARE_MOUNT_IOCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fuse/cowfs_ioctl.h"

/* The errors of this file's own checks (negative, like every other error here). */
#define COWFS_ERR_NOT_COWFS  (-ENOTTY)  /* not on a cowfs mount */
#define COWFS_ERR_OTHER_MOUNT (-EXDEV)  /* two files on different mounts */

/* An open file or directory of a cowfs mount and what identifies it. */
struct cowfs_file {
	int fd;
	dev_t dev;                       /* st_dev: one per mount */
	ino_t ino;                       /* st_ino: what a path names, to tell a file replaced */
	mode_t mode;                     /* st_mode */
	uint64_t size;                   /* st_size when opened */
	struct cowfs_ioc_file_id id;     /* subvol, ino, generation; the clone/dedupe blocksize */
};

/*
 * Open `path` (relative to `dirfd`, or AT_FDCWD) with `flags` (O_CLOEXEC is added; `mode` for
 * O_CREAT) and check that it is on a cowfs mount. Returns 0, or a negative errno with nothing
 * left open: COWFS_ERR_NOT_COWFS when the file is not on a cowfs mount, -EOPNOTSUPP when it is
 * on a cowfs too old for the sharing ioctls, -EPROTO when the mount answers with a FILE_ID
 * version this program does not know.
 */
int cowfs_file_open(int dirfd, const char *path, int flags, mode_t mode, struct cowfs_file *f);
/* The same checks on a descriptor the caller opened; `f` takes it over only on success. */
int cowfs_file_adopt(int fd, struct cowfs_file *f);
void cowfs_file_close(struct cowfs_file *f);

/* Whether two open files are on the same mount (what a clone or a dedupe needs). */
bool cowfs_same_mount(const struct cowfs_file *a, const struct cowfs_file *b);

/*
 * Issue a cowfs ioctl on an open file of a mount cowfs_file_open accepted (or a descriptor
 * below one: same st_dev). Returns 0 or a negative errno; ENOTTY from the mount (it does not
 * know the command: an older server) comes back as -EOPNOTSUPP, so that COWFS_ERR_NOT_COWFS
 * keeps meaning what it says.
 */
int cowfs_ioctl(int fd, unsigned long request, void *arg);

/*
 * Write the kernel's dirty pages of [offset, offset + length) (length 0: to the end) to the
 * server and wait: what the VFS does before a clone or dedupe on a kernel filesystem. The server
 * never sees pages dirtied through mmap until then, and would share what it has instead.
 */
int cowfs_flush_range(int fd, uint64_t offset, uint64_t length);

/* A message for an error of the above (and any other negative errno). */
const char *cowfs_strerror(int err);
/* "cowfs CMD: PATH: message" on stderr. */
void cowfs_perror(const char *cmd, const char *path, int err);

#endif
