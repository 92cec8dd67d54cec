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
 * A committed or shared extent is therefore never written again.
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

#endif
