/* Write fault injection: see fault.h. */
#include "fs/io/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fault_arm_fail(struct bdev_fault *f, uint64_t n)
{
	f->fail_left = n;
}

void fault_arm_cut(struct bdev_fault *f, uint64_t n)
{
	f->cut_left = n;
	f->cut_armed = n != 0;
	if (n == 0)
		f->power_cut = true;
}

void fault_disarm(struct bdev_fault *f)
{
	f->fail_left = 0;
	f->cut_left = 0;
	f->cut_armed = false;
}

/* The power goes right after the n-th write is queued, so a flush that follows it is lost. */
static void count_toward_cut(struct bdev_fault *f)
{
	if (!f->cut_armed || --f->cut_left != 0)
		return;
	f->cut_armed = false;
	f->power_cut = true;
}

enum fault_verdict fault_write_verdict(struct bdev_fault *f)
{
	enum fault_verdict v = FAULT_WRITE;

	if (f->power_cut)
		return FAULT_DROP;
	if (f->fail_left != 0 && --f->fail_left == 0)
		v = FAULT_FAIL;
	count_toward_cut(f);
	return v;
}

bool fault_power_is_cut(const struct bdev_fault *f)
{
	return f->power_cut;
}

int fault_hold_write(struct bdev_fault *f, uint64_t off, const void *buf, uint32_t len)
{
	if (f->nheld == f->capheld) {
		size_t cap = f->capheld ? f->capheld * 2 : 64;
		struct held_write *v = realloc(f->held, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		f->held = v;
		f->capheld = cap;
	}
	void *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	f->held[f->nheld++] = (struct held_write){ off, len, copy };
	return 0;
}

void fault_overlay_reads(const struct bdev_fault *f, uint64_t off, void *buf, uint32_t len)
{
	/* In the order written: a later write to the same bytes wins, as the cache would have it. */
	for (size_t i = 0; i < f->nheld; i++) {
		const struct held_write *h = &f->held[i];
		uint64_t lo = h->off > off ? h->off : off;
		uint64_t hi = h->off + h->len < off + len ? h->off + h->len : off + len;
		if (lo < hi)
			memcpy((char *)buf + (lo - off), (char *)h->data + (lo - h->off), hi - lo);
	}
}

static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int fault_release_held(struct bdev_fault *f, int fd, bool all)
{
	int ret = 0;

	for (size_t i = 0; i < f->nheld; i++) {
		struct held_write *h = &f->held[i];
		if ((all || next_rand(&f->rng) & 1) && ret == 0 &&
		    pwrite(fd, h->data, h->len, (off_t)h->off) != (ssize_t)h->len)
			ret = -EIO;
		free(h->data);
	}
	f->nheld = 0;
	return ret;
}

void fault_free_held(struct bdev_fault *f)
{
	for (size_t i = 0; i < f->nheld; i++)
		free(f->held[i].data);
	free(f->held);
	f->held = NULL;
	f->nheld = f->capheld = 0;
}
