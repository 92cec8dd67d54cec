/*
 * Request-sized I/O buffers kept for reuse: see bufpool.h.
 */
#include "fs/io/bufpool.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "fs/io/blockdev.h"

void bufpool_init(struct bufpool *p, unsigned keep)
{
	pthread_mutex_init(&p->lock, NULL);
	p->keep = keep < BUFPOOL_KEEP_MAX ? keep : BUFPOOL_KEEP_MAX;
	p->nfree = 0;
}

/* Mapped, not from the heap: see bufpool.h. */
static void *buffer_map(void)
{
	void *b = mmap(NULL, BUFPOOL_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	return b == MAP_FAILED ? NULL : b;
}

void *bufpool_get(struct bufpool *p, size_t len)
{
	void *b = NULL;

	if (len > BUFPOOL_BYTES)
		return aligned_alloc(BDEV_ALIGN, (len + BDEV_ALIGN - 1) / BDEV_ALIGN * BDEV_ALIGN);
	pthread_mutex_lock(&p->lock);
	if (p->nfree)
		b = p->free[--p->nfree];
	pthread_mutex_unlock(&p->lock);
	return b ? b : buffer_map();
}

void bufpool_put(struct bufpool *p, void *buf, size_t len)
{
	if (!buf)
		return;
	if (len > BUFPOOL_BYTES) {
		free(buf);
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (p->nfree < p->keep) {
		p->free[p->nfree++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (buf)
		munmap(buf, BUFPOOL_BYTES);
}

void bufpool_empty(struct bufpool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->nfree)
		munmap(p->free[--p->nfree], BUFPOOL_BYTES);
	pthread_mutex_unlock(&p->lock);
}
