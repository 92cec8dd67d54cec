/*
 * Checksums: XXH3-64 everywhere (tree blocks, data blocks, superblocks).
 * One definition so that the on-disk checksum algorithm is named in exactly one place.
 */
#ifndef COWFS_LIB_CSUM_H
#define COWFS_LIB_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

static inline uint64_t cowfs_csum(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

#endif
