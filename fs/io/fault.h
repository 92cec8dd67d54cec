/*
 * Write fault injection for blockdev (internal to fs/io).
 *
 * The device asks for a verdict once per write request, in the order it queues them and
 * before it queues each one, so a fault can land in the middle of a batch. The caller holds
 * the device lock around every call here.
 */
#ifndef COWFS_IO_FAULT_H
#define COWFS_IO_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fault_verdict {
	FAULT_WRITE, /* do the write */
	FAULT_FAIL,  /* report -EIO, write nothing */
	FAULT_DROP,  /* report success, write nothing (power is cut) */
};

/* A write held in the volatile cache: not on the image until a flush (or, maybe, a cut). */
struct held_write {
	uint64_t off;
	uint32_t len;
	void *data;
};

/* Zero-initialised means disarmed with the power on. */
struct bdev_fault {
	bool volatile_cache;
	uint64_t rng;           /* decides which held writes survive a cut */
	struct held_write *held;
	size_t nheld, capheld;
	uint64_t fail_left; /* the write that makes this reach 0 fails; 0 = disarmed */
	uint64_t cut_left;  /* writes still allowed before the power goes */
	bool cut_armed;
	bool power_cut;     /* sticky: survives fault_disarm() */
};

/* The n-th write from now fails; n == 0 disarms. */
void fault_arm_fail(struct bdev_fault *f, uint64_t n);
/* The first n writes from now happen, then the power is cut (at once if n == 0). */
void fault_arm_cut(struct bdev_fault *f, uint64_t n);
void fault_disarm(struct bdev_fault *f);

/* Consumes one write number. */
enum fault_verdict fault_write_verdict(struct bdev_fault *f);
/* A flush after the cut must not reach the disk either. */
bool fault_power_is_cut(const struct bdev_fault *f);

/* Hold a copy of a write in the volatile cache: 0 or -ENOMEM. */
int fault_hold_write(struct bdev_fault *f, uint64_t off, const void *buf, uint32_t len);
/* Overlay held writes on data just read from [off, off+len). */
void fault_overlay_reads(const struct bdev_fault *f, uint64_t off, void *buf, uint32_t len);
/* Write the held writes to fd: all of them (a flush), or a random subset (a cut). Clears them. */
int fault_release_held(struct bdev_fault *f, int fd, bool all);
void fault_free_held(struct bdev_fault *f);

#endif
