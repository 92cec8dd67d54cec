/*
 * bufpool: request-sized I/O buffers (a FUSE read's whole reply), kept for reuse.
 *
 * A read allocates a buffer of up to 1 MiB and frees it when replied. From malloc's heap such
 * buffers fragment it (a freed one is split for small allocations, the next one extends the
 * heap: the daemon's RSS grew to several times cache_size); mapped and unmapped each time
 * (glibc's mmap threshold) every read pays a page fault per 4 KiB (sequential reads at 40%
 * of the speed). The pool maps buffers of one size, hands them out, and keeps at most `keep`
 * free ones: what it holds beyond those in use is bounded by keep x BUFPOOL_BYTES.
 *
 * Thread-safe. Buffers are BDEV_ALIGN-aligned.
 */
#ifndef COWFS_IO_BUFPOOL_H
#define COWFS_IO_BUFPOOL_H

#include <pthread.h>
#include <stddef.h>

/* A FUSE read (1 MiB at most) rounded out to whole pages of up to 64 KiB at both ends. */
#define BUFPOOL_BYTES ((1u << 20) + (128u << 10))
#define BUFPOOL_KEEP_MAX 16u

struct bufpool {
	pthread_mutex_t lock;
	unsigned keep, nfree;
	void *free[BUFPOOL_KEEP_MAX];
};

/* keep: free buffers kept (at most BUFPOOL_KEEP_MAX). */
void bufpool_init(struct bufpool *p, unsigned keep);
/* A buffer of len bytes: from the pool if len <= BUFPOOL_BYTES, else its own. NULL: no memory. */
void *bufpool_get(struct bufpool *p, size_t len);
/* Give back what bufpool_get(p, len) returned (NULL is ignored). */
void bufpool_put(struct bufpool *p, void *buf, size_t len);
/* Unmap the free buffers kept (at the end; the pool stays usable). */
void bufpool_empty(struct bufpool *p);

#endif
