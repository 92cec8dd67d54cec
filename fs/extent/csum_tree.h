/*
 * Data checksums: one XXH3-64 per sector of every written data extent, kept in the checksum
 * tree (docs/FORMAT.md section 7) under keys (CSUM_OBJECTID, EXTENT_CSUM_KEY, disk address of
 * the first sector), each item an array of little-endian u64s for consecutive sectors. An
 * item never spans two extents: it is written with its extent and deleted when the extent is
 * freed (extent_run_delayed_refs), so the checksums of a shared extent live as long as its
 * last reference. Preallocated extents have none until written, and they never are: writes go
 * to new extents.
 */
#ifndef COWFS_EXTENT_CSUM_TREE_H
#define COWFS_EXTENT_CSUM_TREE_H

#include <stdint.h>

#include "fs/extent/extent.h"

#define CSUM_OBJECTID   0xfffffffffffffff6ull   /* (u64)-10 */
#define EXTENT_CSUM_KEY 128

/* Record the checksums of `nsectors` sectors starting at `bytenr` (new, unwritten space). */
int csum_insert(struct extents *x, struct bt_trans *tx, uint64_t bytenr, const uint64_t *csums,
		uint64_t nsectors);

/*
 * The checksums of `nsectors` sectors from `bytenr` into `out`. A sector without one is
 * corruption (-EUCLEAN, reported naming the address): callers only ask for written data.
 */
int csum_lookup(struct extents *x, uint64_t bytenr, uint64_t nsectors, uint64_t *out);

/* Delete every checksum of sectors in [bytenr, bytenr + len) (whole items: see above). */
int csum_delete(struct extents *x, struct bt_trans *tx, uint64_t bytenr, uint64_t len);

/* Checksum of one sector of data. */
uint64_t csum_sector(const void *data, uint32_t sectorsize);

#endif
