/*
 * bcache: a block cache over a blockdev, bounded in memory.
 *
 * Blocks are identified by their byte address on the device and have a fixed length per
 * block (tree nodes are node-sized; callers never ask for the same address with two lengths).
 * A block handed out by bcache_get()/bcache_get_new() is referenced: it stays in memory, at
 * the same address, until bcache_put(). Unreferenced clean blocks sit on an LRU list and are
 * evicted when the cache holds more than its byte bound. Dirty blocks are never evicted: the
 * upper layer writes them (bcache_writeback at commit, or early with bcache_write_cold when
 * bcache_dirty_excess says they crowd the cache), after which they are clean and evictable.
 *
 * Memory: blocks of the length first asked for (tree nodes are all node-sized) come from a pool
 * of slabs mapped from the system and are recycled there, never returned to malloc (whose heaps
 * the copy-on-write churn fragmented); the pool keeps the most ever cached at once.
 *
 * Freed blocks: bcache_forget() drops a block from the cache even if dirty (its content is
 * garbage now: writing it would be wasted I/O). If it is still referenced, it is unhashed at
 * once (a later get of that address is a new entry) and its memory goes at the last put.
 *
 * Flags: the low 16 bits belong to the cache (CB_DIRTY); bits from CB_USER0 up belong to the
 * layer that owns the block (e.g. the B+tree's "verified" and "writable" bits). Change flags
 * only with bcache_set_flags()/bcache_clear_flags(), which take the cache lock.
 *
 * Thread safety: all functions are thread-safe. Two threads getting the same missing block
 * read it once (the second waits for the first). The *content* of a block is the owner's
 * business: the cache does not lock it.
 */
#ifndef COWFS_IO_BCACHE_H
#define COWFS_IO_BCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blockdev;
struct bcache;

#define CB_DIRTY 0x0001u
#define CB_USER0 0x10000u

struct cblock {
	uint64_t addr;   /* byte address on the device */
	uint32_t len;    /* bytes */
	uint32_t flags;  /* CB_* */
	void *data;      /* len bytes, aligned to BDEV_ALIGN (usable with O_DIRECT) */
};

/* Default memory bound: 256 MiB. */
#define BCACHE_DEFAULT_BYTES (256u << 20)

int bcache_create(struct blockdev *bd, size_t max_bytes, struct bcache **out);
/* Frees everything. Dirty blocks are discarded: write back first. No block may be referenced. */
void bcache_destroy(struct bcache *c);
struct blockdev *bcache_device(struct bcache *c);

/*
 * Referenced access to the block at `addr`, reading it from the device on a miss.
 * Returns 0 or a negative errno from the read (the block is then not cached).
 */
int bcache_get(struct bcache *c, uint64_t addr, uint32_t len, struct cblock **out);

/*
 * Referenced access to a freshly allocated block: no read, content zeroed, marked dirty.
 * Any cached (unreferenced) content for `addr` is discarded first. Returns 0 or -ENOMEM.
 * It is a bug (assert) to call this while another reference to `addr` is held.
 */
int bcache_get_new(struct bcache *c, uint64_t addr, uint32_t len, struct cblock **out);

/*
 * Read ahead: the blocks of addrs[0..n) (each `len` bytes) that are not cached, in one
 * bdev_read_batch, into the cache, unreferenced and clean, at the most recently used end of the
 * LRU list: a later bcache_get of one is a hit, and one never asked for is evicted like any
 * clean block. Nothing is checked and no owner flag is set, so the owner verifies each block at
 * its first use exactly as after a miss (the B+tree: against the parent pointer, which only its
 * caller knows). A block whose read fails is not cached (its first get reads it again and sees
 * the error). Bounded: at most an eighth of the cache's bound per call, and only into room that
 * evicting clean unreferenced blocks gives: it never takes the cache past its bound and never
 * evicts a dirty or held block; the addresses past what fits are skipped. Addresses must not be
 * ones bcache_get_new may be asked for meanwhile (live blocks, not free space).
 * Returns how many blocks it read (0..n), or -ENOMEM.
 */
int bcache_prefetch(struct bcache *c, const uint64_t *addrs, size_t n, uint32_t len);

/*
 * Ask the device to start reading the blocks of addrs[0..n) that are not cached
 * (bdev_readahead) and return at once: for a caller that will get or prefetch them a little
 * later, so that their reads overlap with its work on the blocks before them. Takes no room in
 * the cache and changes nothing in it. A hint: returns nothing; -ENOMEM only skips it.
 */
void bcache_readahead(struct bcache *c, const uint64_t *addrs, size_t n, uint32_t len);

/* Take one more reference to a block already held. */
void bcache_ref(struct bcache *c, struct cblock *b);
void bcache_put(struct bcache *c, struct cblock *b);

void bcache_mark_dirty(struct bcache *c, struct cblock *b);
void bcache_set_flags(struct bcache *c, struct cblock *b, uint32_t flags);
void bcache_clear_flags(struct bcache *c, struct cblock *b, uint32_t flags);

/* Drop `addr` from the cache, dirty or not (see above). No-op if not cached. */
void bcache_forget(struct bcache *c, uint64_t addr);
/* Drop every dirty block, as bcache_forget does: an aborted transaction's new blocks. */
void bcache_forget_dirty(struct bcache *c);

/*
 * Write every dirty block in one batch (bdev_write_batch), then mark them clean.
 * `seal`, if not NULL, is called on each dirty block just before it is written (the B+tree
 * computes node checksums there); blocks are sealed in address order.
 * `clear_flags` are cleared on every block written (e.g. the B+tree's "writable" bit).
 * On error, blocks whose write failed stay dirty and the first error is returned.
 * Does not flush: the caller orders writes with bdev_flush().
 */
int bcache_writeback(struct bcache *c, void (*seal)(void *arg, struct cblock *b), void *arg,
		     uint32_t clear_flags);

/*
 * Early write-out, for an owner whose dirty blocks may reach the device before its commit
 * (the B+tree's may: they are new blocks in free space). Writes the least recently used dirty
 * blocks that nobody holds, until they add up to `bytes` (or there are no more), in one batch,
 * sealed, sorted and flag-cleared as bcache_writeback does. They become clean and go to the
 * end of the LRU list that eviction takes first. Holding a block is what keeps it out: the
 * caller must make sure nobody changes a block without holding it, and that a block changed
 * after this is marked dirty again (it is then written again, at the same address).
 * Returns 0 or the first write error (blocks whose write failed stay dirty). Does not flush.
 */
int bcache_write_cold(struct bcache *c, size_t bytes, void (*seal)(void *arg, struct cblock *b),
		      void *arg, uint32_t clear_flags);
/*
 * How many dirty bytes to write out early now: 0 while dirty blocks hold at most 3/4 of the
 * bound, else enough to bring them down to half (so one batch is at least a quarter of it).
 * The quarter above 3/4 is for clean blocks being used and blocks held.
 */
size_t bcache_dirty_excess(struct bcache *c);

/* Clear `flags` on every dirty block (the B+tree uses it when a tree is cloned). */
void bcache_clear_flags_dirty(struct bcache *c, uint32_t flags);

/* Drop every clean, unreferenced block (tests use it to force re-reads from the device). */
void bcache_drop_clean(struct bcache *c);

struct bcache_stats {
	uint64_t hits, misses, evictions;
	uint64_t early_writes;  /* blocks written by bcache_write_cold */
	uint64_t prefetched;    /* blocks read by bcache_prefetch (not counted as misses) */
	size_t bytes;        /* memory held by cached blocks */
	size_t pool_bytes;   /* memory mapped for blocks, cached or free (see above) */
	size_t dirty_bytes;
	size_t max_bytes;
	size_t blocks;
};
void bcache_get_stats(struct bcache *c, struct bcache_stats *st);
size_t bcache_dirty_bytes(struct bcache *c);

#endif
