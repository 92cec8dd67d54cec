/*
 * Superblock copies: reading every copy that fits in the image and picking the newest valid
 * one, and writing them all at commit.
 */
#ifndef COWFS_SUPER_SUPER_H
#define COWFS_SUPER_SUPER_H

#include <stdint.h>

#include "fs/io/blockdev.h"
#include "fs/super/super_format.h"

/* Called for each message worth telling the user (a bad or stale copy). */
typedef void (*super_note_fn)(void *arg, uint64_t bytenr, const char *msg);

/*
 * Read every superblock copy, validate each (magic, checksum, own address, version, geometry),
 * and copy the valid one with the highest generation into *out. Copies that are invalid or
 * older are noted. Returns 0; -EINVAL when no copy carries the magic (not a cowfs image);
 * -EUCLEAN when copies carry it but none is valid; -EOPNOTSUPP for an unknown incompat
 * feature or newer format version; or an I/O error.
 */
int super_read_best(struct blockdev *bd, struct cowfs_super *out, super_note_fn note, void *arg);

/* Write `sb` to every copy position that fits in total_bytes (one batch; no flush). */
int super_write_all(struct blockdev *bd, const struct cowfs_super *sb);

/* Validate one copy read from `bytenr`: NULL if sound, else what is wrong. */
const char *super_check(const struct cowfs_super *sb, uint64_t bytenr, uint64_t device_size);

/* Whether copy i lies inside an image of `total_bytes`. */
static inline int super_copy_fits(int i, uint64_t total_bytes)
{
	return cowfs_super_offsets[i] + COWFS_SUPER_SIZE <= total_bytes;
}

#endif
