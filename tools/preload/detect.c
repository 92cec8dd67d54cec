/*
 * Which descriptors the shim answers for: files and directories of a cowfs mount. A file is on
 * cowfs when its filesystem is FUSE (fstatfs) and the server answers COWFS_IOC_FILE_ID; another
 * FUSE server answers ENOTTY or ENOSYS. The answer is cached per (device, mount), so that the
 * probe costs one round trip per mount and process; the mount id (unique ids where the kernel
 * has them) keeps a device number reused by a later mount from inheriting a stale answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "tools/preload/shim.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

int shim_describe(int fd, bool refresh, struct shim_file *f)
{
	unsigned mask = STATX_TYPE | STATX_MODE | STATX_UID | STATX_INO | STATX_SIZE |
			STATX_MNT_ID | STATX_MNT_ID_UNIQUE;
	struct statx stx;
	int flags = AT_EMPTY_PATH | (refresh ? AT_STATX_FORCE_SYNC : 0);

	f->fd = fd;
	f->open_flags = fcntl(fd, F_GETFL);
	if (f->open_flags < 0)
		return -errno;
	if (statx(fd, "", flags, mask, &stx) != 0)
		return -errno;
	f->mode = stx.stx_mode;
	f->uid = stx.stx_uid;
	f->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	f->ino = stx.stx_ino;
	f->size = stx.stx_size;
	f->mnt_id = (stx.stx_mask & (STATX_MNT_ID | STATX_MNT_ID_UNIQUE)) ? stx.stx_mnt_id : 0;
	return 0;
}

bool shim_readable(const struct shim_file *f)
{
	int acc = f->open_flags & O_ACCMODE;

	return acc == O_RDONLY || acc == O_RDWR;
}

bool shim_writable(const struct shim_file *f)
{
	int acc = f->open_flags & O_ACCMODE;

	return acc == O_WRONLY || acc == O_RDWR;
}

int shim_file_id(int fd, struct cowfs_ioc_file_id *id)
{
	memset(id, 0, sizeof(*id));
	if (shim_real_ioctl(fd, COWFS_IOC_FILE_ID, id) != 0)
		return -errno;
	if (id->version < COWFS_FILE_ID_VERSION || id->blocksize == 0)
		return -EPROTO;
	return 0;
}

/* ---- the per-mount cache ---------------------------------------------------------------- */

#define CACHE_SLOTS 64

struct mount_answer {
	bool used;
	bool cowfs;
	dev_t dev;
	uint64_t mnt_id;
};

static struct mount_answer cache[CACHE_SLOTS];
static unsigned cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int cache_lookup(const struct shim_file *f)
{
	int answer = -1;

	pthread_mutex_lock(&cache_lock);
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].used && cache[i].dev == f->dev && cache[i].mnt_id == f->mnt_id) {
			answer = cache[i].cowfs;
			break;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return answer;
}

static void cache_store(const struct shim_file *f, bool cowfs)
{
	pthread_mutex_lock(&cache_lock);
	struct mount_answer *slot = &cache[cache_next++ % CACHE_SLOTS];
	*slot = (struct mount_answer){ .used = true, .cowfs = cowfs, .dev = f->dev,
				       .mnt_id = f->mnt_id };
	pthread_mutex_unlock(&cache_lock);
}

/* 1 cowfs, 0 not, -1 unknown (a transient failure: ask again next time). */
static int probe(int fd)
{
	struct cowfs_ioc_file_id id;
	struct statfs sfs;
	int ret;

	if (fstatfs(fd, &sfs) != 0)
		return -1;
	if ((unsigned long)sfs.f_type != FUSE_SUPER_MAGIC)
		return 0;
	ret = shim_file_id(fd, &id);
	if (ret == 0)
		return 1;
	if (ret == -ENOTTY || ret == -ENOSYS || ret == -EINVAL || ret == -EOPNOTSUPP ||
	    ret == -EPROTO)
		return 0;
	return -1;
}

bool shim_on_cowfs(const struct shim_file *f)
{
	int answer = cache_lookup(f);

	if (answer >= 0)
		return answer;
	answer = probe(f->fd);
	if (answer < 0)
		return false;
	cache_store(f, answer);
	return answer;
}

/* ---- the caller's memory ---------------------------------------------------------------- */

/* process_vm_readv/writev on ourselves fail with EFAULT on a bad address instead of crashing. */
static int copy_self(void *dst, const void *src, size_t len, bool out)
{
	struct iovec local = { .iov_base = out ? (void *)src : dst, .iov_len = len };
	struct iovec remote = { .iov_base = out ? dst : (void *)src, .iov_len = len };
	ssize_t n;

	if (len == 0)
		return 0;
	n = out ? process_vm_writev(getpid(), &local, 1, &remote, 1, 0)
		: process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0 || errno == EFAULT)
		return -EFAULT;
	/* Not allowed here (seccomp, old kernel): plain copies, as the caller passed them. */
	memcpy(dst, src, len);
	return 0;
}

int shim_copy_in(void *dst, const void *user, size_t len)
{
	return copy_self(dst, user, len, false);
}

int shim_copy_out(void *user, const void *src, size_t len)
{
	return copy_self(user, src, len, true);
}

/* ---- the page cache --------------------------------------------------------------------- */

void shim_flush_range(int fd, uint64_t offset, uint64_t length)
{
	unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			 SYNC_FILE_RANGE_WAIT_AFTER;

	/* 0 = to the end of the file; the kernel's filemap_write_and_wait_range before a remap. */
	if (length > (uint64_t)INT64_MAX - offset)
		length = 0;
	sync_file_range(fd, (off64_t)offset, (off64_t)length, flags);
}

void shim_forget_cached(int fd)
{
	struct statx stx;

	/* The server replaced the data of a range: refetch the size, drop clean cached pages. */
	statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_SIZE, &stx);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

bool shim_range_valid(uint64_t pos, uint64_t len)
{
	return pos <= (uint64_t)INT64_MAX && len <= (uint64_t)INT64_MAX &&
	       pos + len <= (uint64_t)INT64_MAX;
}
