/*
 * The interposed entry points: ioctl, sync, syncfs. Only these three symbols are exported from
 * libcowfs-preload.so (the Makefile builds it with -fvisibility=hidden). A call the shim does not
 * map, or one on a file that is not on a cowfs mount, goes to the real function unchanged.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tools/preload/shim.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*syncfs_fn)(int);
typedef void (*sync_fn)(void);

static ioctl_fn next_ioctl;
static syncfs_fn next_syncfs;
static sync_fn next_sync;
static pthread_once_t next_once = PTHREAD_ONCE_INIT;

static void find_next_symbols(void)
{
	next_ioctl = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
	next_syncfs = (syncfs_fn)dlsym(RTLD_NEXT, "syncfs");
	next_sync = (sync_fn)dlsym(RTLD_NEXT, "sync");
}

int shim_real_ioctl(int fd, unsigned long request, void *arg)
{
	pthread_once(&next_once, find_next_symbols);
	if (next_ioctl)
		return next_ioctl(fd, request, arg);
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

int shim_real_syncfs(int fd)
{
	pthread_once(&next_once, find_next_symbols);
	if (next_syncfs)
		return next_syncfs(fd);
	return (int)syscall(SYS_syncfs, fd);
}

void shim_real_sync(void)
{
	pthread_once(&next_once, find_next_symbols);
	if (next_sync)
		next_sync();
	else
		syscall(SYS_sync);
}

static bool is_mapped_request(unsigned long request)
{
	return request == FICLONE || request == FICLONERANGE || request == FIDEDUPERANGE ||
	       request == FS_IOC_FIEMAP;
}

static int mapped_ioctl(const struct shim_file *f, unsigned long request, void *arg)
{
	switch (request) {
	case FICLONE:
		/* The kernel takes the source descriptor from the argument itself, as an int. */
		return shim_ficlone(f, (int)(uintptr_t)arg);
	case FICLONERANGE:
		return shim_ficlonerange(f, arg);
	case FIDEDUPERANGE:
		return shim_fideduperange(f, arg);
	default:
		return shim_fiemap(f, arg);
	}
}

/* The descriptor the request is for, if the shim answers it: a cowfs file that is not O_PATH. */
static bool takes_request(int fd, unsigned long request, struct shim_file *f)
{
	if (!is_mapped_request(request))
		return false;
	if (shim_describe(fd, false, f) != 0)
		return false;
	if ((f->open_flags & O_PATH) || !(S_ISREG(f->mode) || S_ISDIR(f->mode)))
		return false;
	/* A directory's FIEMAP is not ours to answer: the kernel says EOPNOTSUPP, as for fuse. */
	if (request == FS_IOC_FIEMAP && !S_ISREG(f->mode))
		return false;
	return shim_on_cowfs(f);
}

SHIM_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	struct shim_file f;
	int saved_errno = errno, ret;
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);

	if (!takes_request(fd, request, &f)) {
		errno = saved_errno;
		return shim_real_ioctl(fd, request, arg);
	}
	ret = mapped_ioctl(&f, request, arg);
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	errno = saved_errno;
	return 0;
}

SHIM_EXPORT void sync(void)
{
	int saved_errno = errno;

	shim_real_sync();
	shim_sync_all_mounts();
	errno = saved_errno;
}

/* On a descriptor that takes no ioctl (a FIFO, a device node) of a cowfs mount: its root's. */
static int cowfs_syncfs(const struct shim_file *f)
{
	int ret;

	if (S_ISREG(f->mode) || S_ISDIR(f->mode))
		return shim_on_cowfs(f) ? shim_cowfs_sync(f->fd) : 0;
	ret = shim_sync_mount_of(f->dev);
	return ret == -ENOENT ? 0 : ret;
}

SHIM_EXPORT int syncfs(int fd)
{
	struct shim_file f;
	int saved_errno = errno, ret;

	/* First the kernel's part (the real call; dirty mmap pages go to the server), then the
	 * commit the kernel cannot ask a FUSE server for. */
	if (shim_real_syncfs(fd) != 0)
		return -1;
	ret = shim_describe(fd, false, &f) == 0 ? cowfs_syncfs(&f) : 0;
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	errno = saved_errno;
	return 0;
}
