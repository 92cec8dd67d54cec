/*
 * libcowfs-preload.so (docs/PRELOAD.md): the kernel answers FICLONE, FICLONERANGE, FIDEDUPERANGE
 * and FS_IOC_FIEMAP itself on a FUSE file (EOPNOTSUPP) and never sends sync(2)/syncfs(2) to the
 * server, so this library interposes ioctl, sync and syncfs and, on a file of a cowfs mount only,
 * turns them into the mount's own ioctls (fuse/cowfs_ioctl.h). Everything else runs the real
 * call unchanged. Internal interfaces of the shim; nothing here is exported from the library.
 */
#ifndef COWFS_TOOLS_PRELOAD_SHIM_H
#define COWFS_TOOLS_PRELOAD_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fuse/cowfs_ioctl.h"

/* What the shim needs to know of a descriptor it acts on (one statx and one F_GETFL). */
struct shim_file {
	int fd;
	int open_flags;          /* F_GETFL */
	mode_t mode;
	uid_t uid;
	dev_t dev;
	ino_t ino;
	uint64_t size;
	uint64_t mnt_id;         /* 0 when the kernel does not say */
};

/* The real calls (dlsym(RTLD_NEXT), a raw system call if that fails). */
int shim_real_ioctl(int fd, unsigned long request, void *arg);
int shim_real_syncfs(int fd);
void shim_real_sync(void);

/* Fills *f for fd; refresh asks the server for the current size (FUSE caches attributes). */
int shim_describe(int fd, bool refresh, struct shim_file *f);
bool shim_readable(const struct shim_file *f);
bool shim_writable(const struct shim_file *f);

/* Whether f is a regular file or directory of a cowfs mount (cached per device and mount). */
bool shim_on_cowfs(const struct shim_file *f);
int shim_file_id(int fd, struct cowfs_ioc_file_id *id);

/* Copies from or to the caller's memory: -EFAULT where the kernel would say so, not a crash. */
int shim_copy_in(void *dst, const void *user, size_t len);
int shim_copy_out(void *user, const void *src, size_t len);

/* Write back dirty page-cache pages of a range (mmap writes) before the server reads it. */
void shim_flush_range(int fd, uint64_t offset, uint64_t length);
/* After the server changed a file's data behind the kernel's back: drop stale cached views. */
void shim_forget_cached(int fd);

/* The ioctls, each returning 0 or a negative errno, on a descriptor shim_on_cowfs() accepted. */
int shim_ficlone(const struct shim_file *dst, int src_fd);
int shim_ficlonerange(const struct shim_file *dst, void *arg);
int shim_fideduperange(const struct shim_file *src, void *arg);
int shim_fiemap(const struct shim_file *f, void *arg);

/* COWFS_IOC_SYNC on fd: 0 or a negative errno. */
int shim_cowfs_sync(int fd);
/* COWFS_IOC_SYNC on the root of every cowfs mount this process can open. */
void shim_sync_all_mounts(void);
/* COWFS_IOC_SYNC on the cowfs mount of device dev (found in mountinfo): 0, -ENOENT if none. */
int shim_sync_mount_of(dev_t dev);

/* Kernel range checks shared by clone and dedupe (fs/remap_range.c: remap_verify_area). */
bool shim_range_valid(uint64_t pos, uint64_t len);

#endif
