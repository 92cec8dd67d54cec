/*
 * File data: read, write, truncate (inode_setattr with INODE_SET_SIZE), fallocate, SEEK_DATA /
 * SEEK_HOLE, fsync, copy_file_range.
 *
 * Writes are copy-on-write with delayed allocation: file_write() copies the bytes into dirty
 * pages held in memory (per inode, 4 KiB each) and updates the inode's size and times at once;
 * the pages become data extents only when they are written back: before every commit, on
 * fsync, and when dirty data passes its limit. Write-back turns each run of contiguous dirty
 * pages into as few extents as the allocator allows (up to FILE_EXTENT_MAX bytes each), writes
 * them with one batch, records an XXH3 checksum per sector in the checksum tree and replaces
 * the file's extent items over that range, dropping the references of what they replace.
 * A committed or shared extent is therefore never written again, except where it holds no
 * data: pages written into preallocated space only this file maps go there (inplace.c).
 *
 * Space: a write that cannot be backed fails with -ENOSPC before it changes anything; after
 * a successful fallocate, writes into its range do not (inplace.c says how far that goes).
 *
 * Reads see dirty pages first, then the extents; every sector read from disk is checked
 * against its checksum: a mismatch is -EIO (and is reported naming the block), never data.
 *
 * All functions take the filesystem lock themselves; errors are negative errnos.
 */
#ifndef COWFS_INODE_FILE_H
#define COWFS_INODE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/inode/inode.h"

/* Largest file size (and end offset of any write): 8 EiB minus one block. */
#define FILE_SIZE_MAX     ((1ull << 63) - 4096)
/* Largest data extent write-back makes. */
#define FILE_EXTENT_MAX   (128ull << 20)

/* Bytes read (0 at or past end of file), or a negative errno (-EISDIR for a directory). */
ssize_t file_read(struct inode_tree *it, uint64_t ino, void *buf, size_t len, uint64_t off);

/* The same, read into a buffer of the inode tree's pool (fs/io/bufpool.h) and not copied out:
 * the bytes are at v->data. Release the view (also after an error) when done with it. */
struct file_read_view {
	const uint8_t *data;
	uint8_t *buf;
	size_t buf_len;
};
ssize_t file_read_view(struct inode_tree *it, uint64_t ino, size_t len, uint64_t off,
		       struct file_read_view *v);
void file_read_view_release(struct inode_tree *it, struct file_read_view *v);

/* file_write flags. */
#define FILE_WRITE_APPEND 0x1u   /* write at the end of file; `off` is ignored */

/*
 * Write `len` bytes at `off`. Returns the bytes written (all of them) or a negative errno:
 * -EFBIG past FILE_SIZE_MAX, -ENOSPC when the data could not be given space.
 * Updates size, mtime and ctime.
 */
ssize_t file_write(struct inode_tree *it, uint64_t ino, const void *buf, size_t len,
		   uint64_t off, unsigned flags);

/* Make the file's data and attributes durable: through the fsync log when it can express
 * what changed since the last commit (fsync_log.c), else by committing. */
int file_fsync(struct inode_tree *it, uint64_t ino);

/*
 * Replay the fsync log found when the image was opened (fs/super/log.h), then commit: a
 * writer must do this before any other update (cowfs_opts.replays_log). *records gets the
 * number of records applied. -EUCLEAN if an entry does not make sense (reported).
 */
int fsync_log_replay(struct inode_tree *it, uint64_t *records);
/* The same when several fs trees are open: each record goes to the tree it names (n >= 1, all
 * of one filesystem); a record for a tree not among them is -EUCLEAN. */
int fsync_log_replay_trees(struct inode_tree *const *trees, size_t n, uint64_t *records);
/* The same with the trees found by `tree_of` (subvolumes: fs/inode/subvol.h), which gives 0, or
 * -ENOENT for an id that names no tree (the record is then -EUCLEAN). */
int fsync_log_replay_resolve(struct cowfs *fs,
			     int (*tree_of)(void *arg, uint64_t id, struct inode_tree **it),
			     void *arg, uint64_t *records);
/* Write back every file's dirty data and commit (syncfs). */
int file_sync_all(struct inode_tree *it);

/*
 * fallocate(2): mode 0 and FALLOC_FL_KEEP_SIZE preallocate (unwritten extents that read as
 * zeros), FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE) frees the range, FALLOC_FL_ZERO_RANGE (with or
 * without KEEP_SIZE) makes it read as zeros with space preallocated. Other modes: -EOPNOTSUPP.
 */
int file_fallocate(struct inode_tree *it, uint64_t ino, int mode, uint64_t off, uint64_t len);

/*
 * lseek(2) SEEK_DATA / SEEK_HOLE from `off`: the offset in *out, or -ENXIO (off at or past
 * end of file, or no data after it). Unwritten (preallocated) ranges are holes. Dirty data
 * counts as data (it is written back first).
 */
int file_seek(struct inode_tree *it, uint64_t ino, uint64_t off, int whence, uint64_t *out);

/*
 * copy_file_range(2) from one file to another (or the same, ranges not overlapping): bytes
 * copied (short only at the source's end of file), or a negative errno. Where both offsets
 * have the same alignment the sector-aligned part is shared, not copied (a reflink: clone.c);
 * the rest is copied.
 */
ssize_t file_copy_range(struct inode_tree *it, uint64_t ino_in, uint64_t off_in,
			uint64_t ino_out, uint64_t off_out, size_t len);

/*
 * Reflink (FICLONERANGE's rules, clone.c): make [off_out, off_out + len) of `out` share the
 * extents of [off_in, ...) of `in`; nothing is copied. Offsets are sector aligned, len too
 * unless off_in + len is the source's size (then the last sector is shared whole, which is
 * allowed only where off_out + len reaches at least out's size: it would zero out's bytes
 * past the source's end); len 0 runs to the source's size (nothing, successfully, when
 * off_in is that size). As in Linux, a clone is never shortened: a range running past the
 * source's end or past FILE_SIZE_MAX is -EINVAL. `out` grows to at least off_out + len; its
 * mtime and ctime change. The same file is allowed when the ranges do not overlap. *cloned
 * gets the bytes cloned. Errors: -EINVAL (alignment, overlap, past the source's end, not a
 * regular file), -EISDIR, -EFBIG (off_out at or past FILE_SIZE_MAX), -ENOSPC, -EROFS, -ENOENT,
 * -EAGAIN (writers kept giving the source new buffered data: nothing was changed).
 */
int file_clone_range(struct inode_tree *it, uint64_t ino_in, uint64_t off_in, uint64_t ino_out,
		     uint64_t off_out, uint64_t len, uint64_t *cloned);
/*
 * file_copy_range and file_clone_range between two trees of one filesystem (two subvolumes):
 * the destination's items reference the source's extents, shared as within one tree. The
 * destination's tree decides reflink (noreflink), read-only and counts the statistics.
 */
ssize_t file_copy_range_between(struct inode_tree *it_in, uint64_t ino_in, uint64_t off_in,
				struct inode_tree *it_out, uint64_t ino_out, uint64_t off_out,
				size_t len);
int file_clone_range_between(struct inode_tree *it_in, uint64_t ino_in, uint64_t off_in,
			     struct inode_tree *it_out, uint64_t ino_out, uint64_t off_out,
			     uint64_t len, uint64_t *cloned);

/*
 * Dedupe (FIDEDUPERANGE's rules, dedupe.c): for each destination, compare [off, off + len) of
 * `src` with its range under the filesystem lock and, where they are identical, make it share
 * the source's extents; times do not change. Per destination `status` is FILE_DEDUPE_SAME,
 * FILE_DEDUPE_DIFFERS or a negative errno (-EINVAL: a range past its file's end, unaligned
 * offsets (the source's too), overlap in one file; -EISDIR; ...), and `deduped` the bytes now
 * shared: len cut to whole sectors unless both ranges end at both files' ends (Linux reports
 * the length asked for instead). len is at most 1 GiB per call (Linux's bound), 0 is SAME.
 * Returns 0, or a negative errno for what concerns the source or the filesystem (src not a
 * regular file, off + len past its end, -EROFS): then no destination was touched.
 */
#define FILE_DEDUPE_SAME    0
#define FILE_DEDUPE_DIFFERS 1
struct file_dedupe_dest {
	uint64_t ino, off;       /* in */
	uint64_t deduped;        /* out */
	int status;              /* out */
};
int file_dedupe_range(struct inode_tree *it, uint64_t src, uint64_t off, uint64_t len,
		      struct file_dedupe_dest *dests, size_t n);

/*
 * A file's extents (fiemap.c), for FIEMAP: up to `max` of them from the one containing `start`
 * on, ending before `end`; adjacent pieces contiguous on disk with the same flags are merged.
 * `sync`: write dirty data back first (else it is reported as DELALLOC). *n: extents filled.
 * Holes are not listed. The first extent is listed whole from the start of the file extent
 * item containing `start` (as the kernel lists them); data reaches at most to the end of the
 * sector holding end of file, preallocated space past it is listed whole. LAST: nothing
 * follows it in the file. SHARED: another file or tree references its disk extent, or
 * another place in this file maps some of the same disk bytes (extent_shared_beyond); the
 * pieces a punch or an overwrite leaves of one extent are not shared. DELALLOC extents have
 * physical 0. -EISDIR, -EINVAL (not a regular file), -ENOENT.
 */
#define FILE_MAP_LAST      0x0001u
#define FILE_MAP_DELALLOC  0x0004u
#define FILE_MAP_UNWRITTEN 0x0800u
#define FILE_MAP_SHARED    0x2000u
struct file_map_extent {
	uint64_t logical, physical, length;
	unsigned flags;
};
int file_map_extents(struct inode_tree *it, uint64_t ino, uint64_t start, uint64_t end,
		     bool sync, struct file_map_extent *out, size_t max, size_t *n);

/*
 * Fingerprints of a file's chunks from the stored sector checksums (chunk_hash.c), for
 * finding dedupe candidates without reading data: up to `max` chunks of `chunk_bytes` (a
 * multiple of the sector size, at most FILE_CHUNK_MAX) from `start` (a multiple of it) on;
 * the file's last chunk ends at end of file. A chunk's fingerprint is XXH3-128, seeded with
 * its length in bytes, over the array of its sectors' XXH3-64 checksums as little-endian
 * u64s (the last sector whole: its bytes past end of file are zero). It is given (HASHED)
 * only to chunks without a hole, preallocated space or dirty data, which get HOLE,
 * UNWRITTEN, DELALLOC instead (`sync`: write dirty data back first). CONTIGUOUS: the chunk
 * is one run of disk bytes from `physical`. SHARED: some of it is, as file_map_extents
 * means it. *n: chunks filled, 0 when start is at or past end of file. -EINVAL (arguments,
 * not a regular file), -EISDIR, -ENOENT; -EUCLEAN (reported) for a written sector without
 * a checksum.
 */
#define FILE_CHUNK_MAX        (16ull << 20)
#define FILE_CHUNK_HASHED     0x1u
#define FILE_CHUNK_HOLE       0x2u
#define FILE_CHUNK_UNWRITTEN  0x4u
#define FILE_CHUNK_DELALLOC   0x8u
#define FILE_CHUNK_CONTIGUOUS 0x10u
#define FILE_CHUNK_SHARED     0x20u
struct file_chunk {
	uint64_t offset, length, physical;
	uint64_t hash_lo, hash_hi;
	unsigned flags;
};
int file_chunk_hashes(struct inode_tree *it, uint64_t ino, uint64_t start, uint64_t chunk_bytes,
		      bool sync, struct file_chunk *out, size_t max, size_t *n);

/*
 * Whether copy_file_range may share extents (the default) or must copy every byte (-o
 * noreflink). Clones asked for explicitly (file_clone_range) always share.
 */
void file_set_reflink(struct inode_tree *it, bool on);

/*
 * Counters since the tree was opened (share_stats.c): what shared and what copied. The
 * struct is in inode.h (struct inode_tree holds one). Calls count every call, failed ones
 * too; dedupe_calls the destinations asked. Bytes: copy_bytes_shared / _copied what
 * copy_file_range cloned / copied; clone_bytes what clones shared; dedupe_bytes_same what
 * dedupes shared, _differ the bytes of ranges found different. An fsync that found nothing
 * to commit counts in fsyncs only; fsync_log_hits are those the fsync log made durable.
 */
void file_get_share_stats(struct inode_tree *it, struct file_share_stats *out);

#endif
