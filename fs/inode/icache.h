/*
 * In-memory state of inodes (fs/inode only): the kernel's holds on an inode, whether it is an
 * orphan, and its dirty pages (file data written but not yet given extents: file.h).
 *
 * An entry exists while any of those is non-trivial; everything here is guarded by fs->lock.
 * Pages are sector-sized and keyed by index (file offset / sector size) in a per-inode open
 * addressing table: writes, reads and truncates look pages up one by one, and write-back,
 * which needs them in order, sorts them once.
 */
#ifndef COWFS_INODE_ICACHE_H
#define COWFS_INODE_ICACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/inode/inode.h"

struct dirty_page {
	uint64_t index;
	uint8_t *data;       /* NULL: empty slot */
	bool logged;         /* in the fsync log as it is now (fsync_log.c) */
	/* A flush is writing `data` to disk: a write gives the page new memory rather than
	 * change it (page_copy_for_write; writeback.c). */
	bool writeback;
	/* Non-zero: the disk address write-back writes the page to, in a preallocated extent
	 * only this file maps and nothing was ever written to (inplace.c: the fallocate
	 * promise). Such a page needs no data space, only room for its piece of the map: it
	 * counts INPLACE_MAP_BYTES in fs->delalloc_bytes, not a page. */
	uint64_t inplace;
};

/* What writing back one page in place may add to the trees, for the space checks: in the
 * worst case (every other page written) a file extent item of its own plus one for the
 * preallocated rest it splits off (81 bytes each with key and header) and a checksum item
 * (33), leaves half full after splits. */
#define INPLACE_MAP_BYTES 640u

struct page_table {
	struct dirty_page *slots;
	size_t cap, count;   /* cap: 0 or a power of two */
};

#define ICACHE_EXCLUSIVE_MAX 256

struct icache_entry {
	uint64_t ino;
	uint64_t holds;      /* lookups the kernel has not forgotten */
	bool orphan;         /* no names left; an orphan item keeps it until the last hold goes */
	/* Its inode item changed since the last commit in ways the fsync log can express and
	 * has not been logged as it is now (fsync_log.c). */
	bool log_dirty;
	/* A flush wrote back pages of it that the log did not hold: the log cannot bring back
	 * what the next commit will, so until then fsync commits (log_note_flushed). */
	bool log_unfit;
	/* Indexes of the pages not in the fsync log as they are now (logged false), in no order,
	 * maybe with repeats and pages gone since: what the next fsync logs, without looking at
	 * every page (fsync_log.c). */
	struct {
		uint64_t *idx;
		size_t n, cap;
	} unlogged;
	struct page_table pages;
	size_t inplace_pages;        /* pages with `inplace` set */
	/* Preallocated extents found to be this file's alone (inplace.c), so that the next
	 * writes into them need not ask the backrefs again: up to ICACHE_EXCLUSIVE_MAX of them
	 * (a 32 GiB preallocation in 128 MiB extents), the oldest forgotten first. */
	struct {
		uint64_t *v;
		uint32_t n, next;
	} exclusive;
	struct icache_entry *next;   /* hash chain */
};

struct page_chunk;

struct inode_cache {
	struct inode_tree *it;
	struct icache_entry **buckets;
	size_t nbuckets, count;
	uint32_t page_size;          /* the filesystem's sector size */
	uint64_t dirty_bytes;        /* pages held, all inodes (also in fs->delalloc_bytes) */
	uint64_t dirty_limit;        /* commit (which writes back) once dirty_bytes passes it */
	uint64_t data_hint;          /* where write-back allocates next: after its last extent */
	uint64_t log_dirty_count;    /* entries with log_dirty set */
	struct page_chunk *chunks;   /* memory pages are carved from (icache.c) */
	uint8_t *free_pages;         /* pages not in use, linked through their first bytes */
};

/* The cache of `it`, made (and write-back registered) on first use. NULL: out of memory. */
struct inode_cache *icache_of(struct inode_tree *it);
/* The entry of `ino`: NULL if none (create false) or out of memory (create true). */
struct icache_entry *icache_find(struct inode_cache *ic, uint64_t ino, bool create);
/* Forget the entry if nothing about it needs remembering any more. */
void icache_release_if_idle(struct inode_cache *ic, struct icache_entry *e);
/* Call fn on every entry; it may not add or remove entries. Stops at a non-zero return. */
int icache_for_each(struct inode_cache *ic, int (*fn)(void *arg, struct icache_entry *e),
		    void *arg);
/* The transaction was aborted: drop every dirty page and what the fsync log was to hold
 * (holds stay: the kernel still has its references). */
void icache_abort(struct inode_cache *ic);
void icache_destroy(struct inode_cache *ic);

/* Bytes of dirty pages `ino` has that will need new space (0 without an entry): those
 * written back in place are in the file's preallocated extents already. */
uint64_t inode_dirty_bytes(struct inode_tree *it, uint64_t ino);

/* Memory for one page (aligned for direct I/O), and its return. */
uint8_t *page_mem_get(struct inode_cache *ic);
void page_mem_put(struct inode_cache *ic, uint8_t *p);

struct dirty_page *page_find(struct icache_entry *e, uint64_t index);
/* A new page at `index` (must not exist), zero-filled unless the caller fills all of it;
 * counted as dirty, and in fs->delalloc_bytes (as a page, or INPLACE_MAP_BYTES if `inplace`:
 * its disk address, or 0). NULL: no memory. */
struct dirty_page *page_add(struct inode_cache *ic, struct icache_entry *e, uint64_t index,
			    bool zero, uint64_t inplace);
/* Drop every page with index in [first, last]. */
void pages_drop_range(struct inode_cache *ic, struct icache_entry *e, uint64_t first,
		      uint64_t last);
/*
 * Write-back of e's pages (writeback.c). pages_take: copies of every page (index and memory,
 * sorted by index, as a malloc'd array: *n gets the count, 0 pages gives NULL), each marked
 * under write-back; they stop counting in fs->delalloc_bytes, being given extents now.
 * Then exactly one of: pages_written, the data is on disk: a page still holding the same
 * memory leaves the table; pages_untake, write-back failed: they stay, unmarked. Either way
 * memory a write replaced meanwhile goes back, in file order, so that a sequential writer
 * gets contiguous memory again.
 */
int pages_take(struct inode_cache *ic, struct icache_entry *e, struct dirty_page **out,
	       size_t *n);
void pages_written(struct inode_cache *ic, struct icache_entry *e, const struct dirty_page *v,
		   size_t n);
void pages_untake(struct inode_cache *ic, struct icache_entry *e, const struct dirty_page *v,
		  size_t n);
/* p is under write-back: give it a copy of its memory to change. The copy is written back
 * to new space (where p goes in place is about to hold p's data). -ENOMEM: none. */
int page_copy_for_write(struct inode_cache *ic, struct icache_entry *e, struct dirty_page *p);
/* Sort page pointers by index. */
void pages_sort(struct dirty_page **v, size_t n);

#endif
