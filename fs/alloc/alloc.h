/*
 * alloc: which bytes of the image are free, and handing them out.
 *
 * The free-space index lives in memory only. It is rebuilt when the filesystem is opened, from
 * the extent tree (every allocated extent has an extent item; everything else in the data area
 * is free). Persisting it would mean a second structure to keep consistent with the extent tree
 * across crashes (btrfs's free-space cache v1 and its invalidation troubles); rebuilding costs
 * one scan of the extent tree's leaves at open. Its memory is O(number of free fragments).
 *
 * Freed space is pinned: alloc_pin() puts it aside, and only alloc_unpin_all(), called after
 * the transaction that freed it has committed, makes it allocatable again. A crash before that
 * commit leaves the old tree (which still uses that space) intact.
 *
 * Reserve: a normal allocation fails with -ENOSPC rather than take free space below the reserve;
 * a privileged one (deleting, dropping snapshots, committing) may use the reserve. That is what
 * lets deletes and commits succeed on a full filesystem.
 *
 * Thread-safe (one internal mutex). No I/O.
 */
#ifndef COWFS_ALLOC_ALLOC_H
#define COWFS_ALLOC_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

struct allocator;

enum alloc_class {
	ALLOC_NORMAL,      /* may not take free space below the reserve */
	ALLOC_PRIVILEGED,  /* may use the reserve */
	/* Writes into preallocated space (the fallocate promise: fs/inode/inplace.c): their
	 * data needs no space, but splitting the map may; they may use a quarter of the
	 * reserve, leaving the rest to deletes and commits. */
	ALLOC_PROMISED,
};

/*
 * An allocator for byte range [start, end), all free, in units of `sectorsize` (a power of
 * two >= 512): every start and length passed in or handed out is a multiple of it.
 * Returns 0, -EINVAL (bad geometry) or -ENOMEM.
 */
int alloc_create(uint64_t start, uint64_t end, uint32_t sectorsize, struct allocator **out);
void alloc_destroy(struct allocator *a);

/*
 * Take [start, start+len) out of the free space while building the index at open (an extent
 * found in the extent tree, or a superblock copy's area). -ERANGE if outside [start, end),
 * -EEXIST if any of it is not free (two extents overlap: the caller reports corruption),
 * -EINVAL if not sector-aligned or empty, -ENOMEM if splitting a free range found no memory.
 */
int alloc_mark_used(struct allocator *a, uint64_t start, uint64_t len);

/*
 * Allocate between min_len and max_len bytes (as much as one contiguous free range allows),
 * aligned to `align` (a power of two, a multiple of sectorsize), first fit at or after `hint`,
 * wrapping around to the start of the space. Tree blocks ask for min_len == max_len ==
 * nodesize with the old block's address as hint (locality); data asks for a large max_len.
 * Sets *start and *len. -ENOSPC if no free range of min_len exists, or if a normal
 * allocation would leave less than the reserve free (when max_len would, but min_len would
 * not, a normal allocation gets the most that keeps the reserve). "At or after hint" is about
 * the allocated bytes: a free range containing the hint is used from the hint on (the part
 * before stays free, as does alignment waste). -EINVAL for bad lengths, alignment or class;
 * -ENOMEM if splitting a free range found no memory.
 */
int alloc_extent(struct allocator *a, uint64_t min_len, uint64_t max_len, uint64_t hint,
		 uint32_t align, enum alloc_class cls, uint64_t *start, uint64_t *len);

/*
 * Give back [start, start+len), which must be allocated (-EINVAL otherwise, e.g. a double
 * free: the caller reports corruption). alloc_pin() holds it until alloc_unpin_all();
 * alloc_free_now() frees it at once, only for space that no committed tree ever referenced
 * (allocated and freed within the running transaction). Also -EINVAL if empty, not
 * sector-aligned or outside [start, end); -ENOMEM if no memory for the index entry.
 */
int alloc_pin(struct allocator *a, uint64_t start, uint64_t len);
int alloc_free_now(struct allocator *a, uint64_t start, uint64_t len);
/* After a commit: pinned space becomes free. */
void alloc_unpin_all(struct allocator *a);
/*
 * For a commit that lets the next transaction start before it is durable: alloc_pin_seal()
 * sets aside what is pinned now (the committing transaction's frees), so that frees of the
 * next transaction stay pinned when alloc_unpin_sealed() frees it once the commit is on disk.
 */
void alloc_pin_seal(struct allocator *a);
void alloc_unpin_sealed(struct allocator *a);

void alloc_set_reserve(struct allocator *a, uint64_t bytes);
/* The free space an allocation of class cls may not take, given the reserve. */
uint64_t alloc_class_floor(uint64_t reserve, enum alloc_class cls);

struct alloc_stats {
	uint64_t total;      /* end - start */
	uint64_t free;       /* allocatable now (reserve included) */
	uint64_t pinned;     /* freed, waiting for a commit (sealed included) */
	uint64_t reserve;
	uint64_t fragments;  /* free ranges */
	uint64_t largest;    /* largest free range */
};
void alloc_get_stats(struct allocator *a, struct alloc_stats *st);

/*
 * Call fn on every free range in address order; stops at the first non-zero return, which it
 * returns. fn runs under the allocator's lock: it must not call the allocator.
 */
int alloc_for_each_free(struct allocator *a,
			int (*fn)(void *arg, uint64_t start, uint64_t len), void *arg);

#endif
