/*
 * blockdev: an image file (regular file or block device) read and written through io_uring.
 *
 * All I/O is positional and synchronous from the caller's point of view: a call returns when
 * every request it queued has completed. Batches exist so that a commit of thousands of dirty
 * blocks costs a handful of io_uring_enter() calls instead of one syscall per block: queue
 * everything, submit once, reap all (re-submitting as the submission queue drains).
 *
 * Ordering: requests inside one batch complete in any order. bdev_flush() returns only after
 * every write that completed before it was called is durable (fdatasync through the ring).
 * "These writes, then that write" is therefore: bdev_write_batch(these); bdev_flush();
 * bdev_write(that); bdev_flush(). The commit protocol (fs/super) is built on exactly this.
 *
 * Thread safety: one ring per device, guarded by a mutex; any thread may call any function.
 *
 * Fault injection (for crash tests) lives here too, because only this layer sees every write:
 * see bdev_fault_*() below.
 */
#ifndef COWFS_IO_BLOCKDEV_H
#define COWFS_IO_BLOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Buffers used with O_DIRECT must be aligned to this, as must offsets and lengths. */
#define BDEV_ALIGN 4096u

struct blockdev;

struct bdev_opts {
	bool read_only;       /* open O_RDONLY; writes return -EROFS */
	bool direct;          /* O_DIRECT: offsets, lengths and buffers aligned to BDEV_ALIGN */
	unsigned queue_depth; /* io_uring submission queue entries; 0 means 256 */
};

/* One request of a batch. `res` is filled in: 0 on success or a negative errno. */
struct bdev_io {
	uint64_t off;
	void *buf;
	uint32_t len;
	int res;
};

/* Open `path`. Returns 0 and sets *out, or a negative errno (e.g. -ENOENT, -EACCES, -EINVAL). */
int bdev_open(const char *path, const struct bdev_opts *opts, struct blockdev **out);
void bdev_close(struct blockdev *bd);

/*
 * Lock the image against other users (flock on the open file): exclusive for a writer (a
 * mount, fsck --repair), shared for a reader. With `wait_ms` 0 it fails at once with -EBUSY
 * when another holder conflicts; otherwise it retries for up to wait_ms milliseconds (a mount
 * right after an unmount waits for the previous daemon to let go). Released at bdev_close.
 */
int bdev_lock(struct blockdev *bd, bool exclusive, unsigned wait_ms);
/* The same, calling `waiting` once with the holder's pid (0: unknown) if it has to wait. */
int bdev_lock_wait(struct blockdev *bd, bool exclusive, unsigned wait_ms,
		   void (*waiting)(void *arg, long holder_pid), void *arg);
/* The pid of another process holding a lock on the image (/proc/locks), or 0. */
long bdev_lock_holder(const struct blockdev *bd);

/* Size of the image in bytes (file size, or the block device's size). */
uint64_t bdev_size(const struct blockdev *bd);
bool bdev_is_read_only(const struct blockdev *bd);

/*
 * Read or write exactly `len` bytes at `off`. Short transfers are continued internally.
 * A read that reaches end of file returns -EIO (an image never has holes past its size).
 * Returns 0 or a negative errno.
 */
int bdev_read(struct blockdev *bd, uint64_t off, void *buf, size_t len);
int bdev_write(struct blockdev *bd, uint64_t off, const void *buf, size_t len);

/*
 * Submit all `n` requests (reads or writes) together and wait for all of them.
 * Every request is attempted even if another fails; each gets its own `res`.
 * Returns 0 if all succeeded, otherwise the first negative errno (in array order).
 */
int bdev_read_batch(struct blockdev *bd, struct bdev_io *ios, size_t n);
int bdev_write_batch(struct blockdev *bd, struct bdev_io *ios, size_t n);

/*
 * Start reading the ranges [offs[i], offs[i] + len) into the kernel's page cache and return
 * without waiting (readahead(2)), ranges that follow each other in one call. For a caller about
 * to read them: its reads then wait for I/O that is already in flight together. Buffered
 * io_uring reads of uncached pages hardly overlap (measured here, 3,076 cold 16 KiB reads:
 * 133 ms one at a time, 103 ms in batches of 32, 153 ms of 128; 53 ms with readahead(2)
 * issued 128 blocks ahead of batches of 32), so this is what makes cold reads overlap.
 * A hint: nothing for an O_DIRECT device, errors ignored; what a later read returns is the same.
 */
void bdev_readahead(struct blockdev *bd, const uint64_t *offs, size_t n, uint32_t len);

/*
 * Write back the kernel's dirty pages of the image and drop every page it caches of it: what
 * is read next comes from the device, as after a reboot (benchmarks of cold reads). Nothing
 * for an O_DIRECT device. 0 or a negative errno.
 */
int bdev_drop_page_cache(struct blockdev *bd);

/* Make every completed write durable (IORING_OP_FSYNC with IORING_FSYNC_DATASYNC). */
int bdev_flush(struct blockdev *bd);

/* Counters since open: for tests and benchmarks. */
struct bdev_stats {
	uint64_t reads, writes, flushes;       /* requests */
	uint64_t bytes_read, bytes_written;
	uint64_t submits;                      /* io_uring_enter calls that submitted work */
};
void bdev_get_stats(const struct blockdev *bd, struct bdev_stats *st);

/*
 * Fault injection. Writes are numbered from 1 in the order they are queued (one per request,
 * batched or not), counting from the moment the fault is armed.
 *
 * bdev_fault_fail_write(bd, n): the n-th write from now fails with -EIO (nothing is written);
 *   later writes succeed. One-shot.
 * bdev_fault_cut_power(bd, n): the first n writes from now happen; after them "power is cut":
 *   every later write and flush reports success but changes nothing. Reads still read the
 *   file, so a test can close the device, reopen the image and see what survived.
 * bdev_fault_volatile_cache(bd, seed): model a disk with a volatile write cache. Writes are
 *   held (reads see them) until bdev_flush() writes them out; when the power is cut, a random
 *   subset (seeded) of the writes not yet flushed reaches the image and the rest are lost, in
 *   no particular order. Only what a flush covered is sure to survive, as on real disks.
 * bdev_fault_clear(bd): disarm both (power stays cut once it was cut).
 * bdev_power_is_cut(bd): whether the cut has happened.
 * bdev_fault_before_write(bd, fn, arg): fn(arg) runs when the next write batch starts,
 *   without the device lock (it may do I/O): a test acts at the moment data is being
 *   written, with whatever locks the writer let go. One-shot.
 */
void bdev_fault_fail_write(struct blockdev *bd, uint64_t n);
void bdev_fault_cut_power(struct blockdev *bd, uint64_t n);
void bdev_fault_volatile_cache(struct blockdev *bd, uint64_t seed);
void bdev_fault_clear(struct blockdev *bd);
bool bdev_power_is_cut(const struct blockdev *bd);
void bdev_fault_before_write(struct blockdev *bd, void (*fn)(void *arg), void *arg);

#endif
