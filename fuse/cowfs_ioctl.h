/*
 * The ioctls a cowfs mount answers (docs/IOCTL.md): the interface between the FUSE server and
 * the cowfs tool. FUSE forwards only restricted ioctls to a server: fixed-size structs whose
 * size the command number encodes, no pointers inside. Fields are in host byte order; every
 * struct starts with a version its user sets (in) or the server fills in (out).
 */
#ifndef COWFS_FUSE_COWFS_IOCTL_H
#define COWFS_FUSE_COWFS_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

#define COWFS_IOC_MAGIC 0xCF

/* COWFS_IOC_STATUS: the state of the mounted filesystem, on any file or directory of it. */
#define COWFS_STATUS_VERSION 1
#define COWFS_STATUS_READ_ONLY 0x1u   /* mounted read-only, or read-only since an abort */
#define COWFS_STATUS_ABORTED   0x2u   /* a transaction was aborted: error and message say why */
#define COWFS_STATUS_MSG_MAX 256

struct cowfs_ioc_status {
	uint32_t version;        /* out: COWFS_STATUS_VERSION */
	uint32_t flags;          /* COWFS_STATUS_* */
	uint64_t generation;     /* of the last commit */
	uint64_t commits;        /* since mount */
	uint64_t flushes;        /* background write-backs since mount */
	uint64_t aborted_transid;
	int32_t error;           /* the aborted transaction's first error (negative errno) */
	uint32_t reserved;
	char message[COWFS_STATUS_MSG_MAX];   /* cause and location, as reported; NUL-terminated */
};

#define COWFS_IOC_STATUS _IOR(COWFS_IOC_MAGIC, 1, struct cowfs_ioc_status)

/*
 * A file as the sharing ioctls name it: the subvolume (fs tree id: cowfs_ioc_file_id.subvol of
 * any file of the mount), the inode number (st_ino) and its generation, which tells a file from
 * a later one that reused its number. COWFS_IOC_FILE_ID returns all three for the file it is
 * issued on.
 */
struct cowfs_ioc_file {
	uint64_t subvol;
	uint64_t ino;
	uint64_t generation;
};

#define COWFS_FILE_ID_VERSION 1
struct cowfs_ioc_file_id {
	uint32_t version;        /* out */
	uint32_t blocksize;      /* out: the alignment clone and dedupe ranges need */
	struct cowfs_ioc_file file;   /* out */
};
#define COWFS_IOC_FILE_ID _IOR(COWFS_IOC_MAGIC, 2, struct cowfs_ioc_file_id)

/*
 * COWFS_IOC_CLONE_RANGE, on the destination file (open for writing): make [dst_offset,
 * dst_offset + length) share the extents of [src_offset, ...) of `src`, as FICLONERANGE does.
 * Offsets are blocksize aligned; length too, unless the range ends at the source's end of file;
 * length 0 runs to the source's end of file. The destination grows when the range ends past its
 * end. The same file is allowed when the ranges do not overlap. Out: bytes shared.
 */
#define COWFS_CLONE_VERSION 1
struct cowfs_ioc_clone_range {
	uint32_t version;        /* in: COWFS_CLONE_VERSION */
	uint32_t flags;          /* in: 0 */
	struct cowfs_ioc_file src;
	uint64_t src_offset;
	uint64_t length;         /* in: 0 = to the source's end of file; out: bytes cloned */
	uint64_t dst_offset;
};
#define COWFS_IOC_CLONE_RANGE _IOWR(COWFS_IOC_MAGIC, 3, struct cowfs_ioc_clone_range)

/*
 * COWFS_IOC_DEDUPE_RANGE, on the source file (open for reading): for each destination, compare
 * its range with the source's under the lock that orders writes and, where every byte is the
 * same, make it share the source's extents (FIDEDUPERANGE). Ranges lie within both files' sizes;
 * offsets are blocksize aligned, the length too unless the ranges end at both files' ends. A
 * destination needs write permission (or ownership) by the caller.
 */
#define COWFS_DEDUPE_VERSION 1
#define COWFS_DEDUPE_MAX_DESTS 64
#define COWFS_DEDUPE_MAX_LEN (16ull << 20)   /* longer requests are cut to it (bytes_deduped) */
#define COWFS_DEDUPE_SAME    0   /* status: shared now */
#define COWFS_DEDUPE_DIFFERS 1   /* status: the bytes differ; nothing changed */
struct cowfs_ioc_dedupe_dest {
	struct cowfs_ioc_file dst;   /* in */
	uint64_t dst_offset;     /* in */
	uint64_t bytes_deduped;  /* out */
	int32_t status;          /* out: COWFS_DEDUPE_SAME, _DIFFERS, or a negative errno */
	uint32_t reserved;
};
struct cowfs_ioc_dedupe_range {
	uint32_t version;        /* in: COWFS_DEDUPE_VERSION */
	uint16_t dest_count;     /* in: 1 .. COWFS_DEDUPE_MAX_DESTS */
	uint16_t reserved;
	uint64_t src_offset;
	uint64_t src_length;
	struct cowfs_ioc_dedupe_dest dests[COWFS_DEDUPE_MAX_DESTS];
};
#define COWFS_IOC_DEDUPE_RANGE _IOWR(COWFS_IOC_MAGIC, 4, struct cowfs_ioc_dedupe_range)

/*
 * COWFS_IOC_FIEMAP, on a regular file: its extents from `start` on, COWFS_FIEMAP_BATCH at a time
 * (call again from the end of the last one until one has COWFS_EXTENT_LAST). Adjacent pieces of
 * the file that lie next to each other on disk with the same flags are one extent. Holes are
 * not listed.
 */
#define COWFS_FIEMAP_VERSION 1
#define COWFS_FIEMAP_BATCH 64
#define COWFS_FIEMAP_SYNC 0x1u          /* in: write dirty data back first (FIEMAP_FLAG_SYNC) */
#define COWFS_EXTENT_LAST      0x0001u  /* the file's last extent */
#define COWFS_EXTENT_DELALLOC  0x0004u  /* dirty data with no place on disk yet (physical 0) */
#define COWFS_EXTENT_UNWRITTEN 0x0800u  /* preallocated: reads as zeros */
#define COWFS_EXTENT_SHARED    0x2000u  /* its disk extent is referenced more than once */
struct cowfs_ioc_extent {
	uint64_t logical;        /* file offset */
	uint64_t physical;       /* byte offset in the image */
	uint64_t length;
	uint32_t flags;          /* COWFS_EXTENT_*: the values of FIEMAP_EXTENT_* */
	uint32_t reserved;
};
struct cowfs_ioc_fiemap {
	uint32_t version;        /* in: COWFS_FIEMAP_VERSION */
	uint32_t flags;          /* in: COWFS_FIEMAP_* */
	uint64_t start;          /* in: file offset */
	uint64_t length;         /* in: bytes from start to map (UINT64_MAX: all) */
	uint32_t count;          /* out: extents filled in */
	uint32_t reserved;
	struct cowfs_ioc_extent extents[COWFS_FIEMAP_BATCH];
};
#define COWFS_IOC_FIEMAP _IOWR(COWFS_IOC_MAGIC, 5, struct cowfs_ioc_fiemap)

/*
 * COWFS_IOC_SPACE: the space the file or directory tree it is issued on uses. Each data extent
 * its files reference is counted by what the references from the set do to it:
 *   referenced: bytes the files map (every reference counted, holes not);
 *   exclusive:  disk bytes of extents referenced only from the set (deleting it frees them);
 *   shared:     bytes the set maps of extents also referenced from elsewhere;
 *   pinned:     disk bytes of the set's exclusive extents that no file maps any more (kept
 *               alive by a reference to another part of the same extent).
 * A set of several trees: SET_ADD on each (set 0 starts a new one: its id comes back in `set`),
 * then SET_RESULT for the figures of all of them together, which ends the set. Without a SET_*
 * op the figures are for this tree alone. Hard links are counted once.
 */
#define COWFS_SPACE_VERSION 1
#define COWFS_SPACE_ALONE      0u   /* op */
#define COWFS_SPACE_SET_ADD    1u
#define COWFS_SPACE_SET_RESULT 2u
struct cowfs_ioc_space {
	uint32_t version;        /* in: COWFS_SPACE_VERSION */
	uint32_t op;             /* in: COWFS_SPACE_* */
	uint64_t set;            /* in/out: the set's id (SET_ADD with 0: a new set) */
	uint64_t files;          /* out: inodes counted */
	uint64_t extents;        /* out: distinct data extents referenced */
	uint64_t referenced;     /* out: bytes */
	uint64_t exclusive;
	uint64_t shared;
	uint64_t pinned;
};
#define COWFS_IOC_SPACE _IOWR(COWFS_IOC_MAGIC, 6, struct cowfs_ioc_space)

/* COWFS_IOC_SYNC: commit and wait for it (what sync(2) and syncfs(2) do on a kernel mount). */
#define COWFS_IOC_SYNC _IO(COWFS_IOC_MAGIC, 7)

/* COWFS_IOC_STATS: counters since the mount, to tell a clone from a copy. */
#define COWFS_STATS_VERSION 1
struct cowfs_ioc_stats {
	uint32_t version;        /* out */
	uint32_t reserved;
	uint64_t copy_calls;             /* copy_file_range requests */
	uint64_t copy_bytes_shared;      /* of those: bytes shared (reflinked) */
	uint64_t copy_bytes_copied;      /* bytes copied */
	uint64_t clone_calls;            /* COWFS_IOC_CLONE_RANGE */
	uint64_t clone_bytes;
	uint64_t dedupe_calls;           /* destinations asked */
	uint64_t dedupe_bytes_same;      /* bytes shared by dedupe */
	uint64_t dedupe_bytes_differ;    /* bytes compared and found different */
	uint64_t commits;
	uint64_t fsyncs;                 /* fsync and fdatasync requests */
	uint64_t fsync_log_hits;         /* of those: made durable through the fsync log */
	uint64_t fsync_commits;          /* of those: that took a commit */
};
#define COWFS_IOC_STATS _IOR(COWFS_IOC_MAGIC, 8, struct cowfs_ioc_stats)

/*
 * COWFS_IOC_CHUNK_HASHES, on a regular file open for reading: fingerprints of its chunks from
 * `start` on, computed in the server from the per-sector data checksums the checksum tree
 * already holds (no data is read): XXH3-128 over the chunk's sector checksums, seeded with the
 * chunk's length in bytes. Equal bytes give equal fingerprints; equal fingerprints are only
 * candidates (COWFS_IOC_DEDUPE_RANGE compares the bytes). A chunk is chunk_bytes long except
 * the file's last, which ends at end of file (its last sector's bytes past end of file are
 * zero on disk, so they hash alike). Chunks holding a hole, preallocated space or data not yet
 * written back (call with COWFS_CHUNK_SYNC to write it back first) get no fingerprint but a
 * flag. `physical` is the disk address of the chunk's first byte when the whole chunk lies in
 * one run of disk bytes (COWFS_CHUNK_CONTIGUOUS), so that a caller can tell chunks already
 * sharing one place apart from copies.
 */
#define COWFS_CHUNK_HASHES_VERSION 1
#define COWFS_CHUNK_BATCH 256
#define COWFS_CHUNK_SYNC        0x1u   /* in: write dirty data back first */
#define COWFS_CHUNK_HASHED      0x1u   /* entry: hash_lo/hash_hi are the fingerprint */
#define COWFS_CHUNK_HOLE        0x2u   /* entry: some of it is a hole */
#define COWFS_CHUNK_UNWRITTEN   0x4u   /* entry: some of it is preallocated */
#define COWFS_CHUNK_DELALLOC    0x8u   /* entry: some of it is dirty data (no checksums yet) */
#define COWFS_CHUNK_CONTIGUOUS  0x10u  /* entry: one run of disk bytes, starting at physical */
#define COWFS_CHUNK_SHARED      0x20u  /* entry: some of it is SHARED as FIEMAP means it */
struct cowfs_ioc_chunk {
	uint64_t offset;         /* file offset of the chunk */
	uint64_t length;         /* chunk_bytes, or less for the file's last chunk */
	uint64_t physical;       /* COWFS_CHUNK_CONTIGUOUS: disk address of offset */
	uint64_t hash_lo, hash_hi;
	uint32_t flags;          /* COWFS_CHUNK_* */
	uint32_t reserved;
};
struct cowfs_ioc_chunk_hashes {
	uint32_t version;        /* in: COWFS_CHUNK_HASHES_VERSION */
	uint32_t flags;          /* in: COWFS_CHUNK_SYNC */
	uint64_t chunk_bytes;    /* in: a multiple of the block size, at most COWFS_DEDUPE_MAX_LEN */
	uint64_t start;          /* in: a multiple of chunk_bytes */
	uint32_t count;          /* out: entries filled (0: start is at or past end of file) */
	uint32_t reserved;
	struct cowfs_ioc_chunk chunks[COWFS_CHUNK_BATCH];
};
#define COWFS_IOC_CHUNK_HASHES _IOWR(COWFS_IOC_MAGIC, 9, struct cowfs_ioc_chunk_hashes)

/*
 * COWFS_IOC_REMOUNT, on the mount's root directory, by root or the user who mounted: what
 * `mount -o remount,...` asks of the running server (the mount helper sends it, then changes
 * the kernel's flags with mount(2)). READ_ONLY commits everything and refuses changes from
 * then on (EROFS); READ_WRITE takes them again: EROFS if a transaction was aborted (STATUS
 * says why), EOPNOTSUPP if the mount was read-only from the start. COMMIT sets the commit
 * interval (0: the default). Out: the mount's COWFS_STATUS_* flags afterwards.
 */
#define COWFS_REMOUNT_VERSION 1
#define COWFS_REMOUNT_READ_ONLY  0x1u
#define COWFS_REMOUNT_READ_WRITE 0x2u
#define COWFS_REMOUNT_COMMIT     0x4u   /* commit_seconds is set */
struct cowfs_ioc_remount {
	uint32_t version;        /* in: COWFS_REMOUNT_VERSION */
	uint32_t flags;          /* in: COWFS_REMOUNT_*; out: COWFS_STATUS_* */
	uint32_t commit_seconds; /* in, with COWFS_REMOUNT_COMMIT */
	uint32_t reserved;
};
#define COWFS_IOC_REMOUNT _IOWR(COWFS_IOC_MAGIC, 10, struct cowfs_ioc_remount)

/*
 * Subvolumes and snapshots (docs/SUBVOLUMES.md). A subvolume is an fs tree of its own, shown
 * as a directory; a snapshot is a subvolume made as an O(1) copy of another. Subvolume ids:
 * 5 is the top level (the mount's root unless subvol=/subvolid=/set-default say otherwise),
 * others count up from 256 and are never reused. Names are one path component (1..255 bytes,
 * no '/', not "." or ".."), NUL-terminated in the struct.
 *
 * COWFS_IOC_SUBVOL_CREATE, on a directory (the parent): a new empty subvolume `name` in it,
 * owned by the caller (mode 0755). Needs write and search permission on the directory.
 * Out: its id. EEXIST, EROFS (the parent's subvolume is read-only), ENAMETOOLONG, EINVAL.
 *
 * COWFS_IOC_SNAP_CREATE, on a directory (where the snapshot goes): a snapshot `name` of the
 * subvolume `source` (its id), read-only with COWFS_SUBVOL_RDONLY, holding exactly what a
 * reader of the source saw when the call began (its buffered data is written back into the
 * snapshot first). Needs write and search permission on the directory and read permission on
 * the source's root directory. Out: its id.
 */
#define COWFS_SUBVOL_VERSION 1
#define COWFS_SUBVOL_NAME_MAX 255
#define COWFS_SUBVOL_RDONLY    0x1u   /* read-only: every change is EROFS */
#define COWFS_SUBVOL_DELETING  0x2u   /* out: deleted, its tree being dropped in the background */
#define COWFS_SUBVOL_DEFAULT   0x4u   /* out: what a mount without subvol= shows */
struct cowfs_ioc_subvol_create {
	uint32_t version;        /* in: COWFS_SUBVOL_VERSION */
	uint32_t flags;          /* in: COWFS_SUBVOL_RDONLY (snapshots only) */
	uint64_t source;         /* in: SNAP_CREATE: the subvolume to snapshot */
	uint64_t id;             /* out: the new subvolume's id */
	uint64_t generation;     /* out: the transaction it was made in */
	char name[COWFS_SUBVOL_NAME_MAX + 1];
};
#define COWFS_IOC_SUBVOL_CREATE _IOWR(COWFS_IOC_MAGIC, 11, struct cowfs_ioc_subvol_create)
#define COWFS_IOC_SNAP_CREATE   _IOWR(COWFS_IOC_MAGIC, 12, struct cowfs_ioc_subvol_create)

/*
 * COWFS_IOC_SUBVOL_DELETE, on a directory: delete the subvolume `name` in it. Its directory
 * goes at once; its tree is dropped in the background in bounded steps (the progress is kept
 * on disk, resumed at the next mount), returning the space nothing else references as it goes.
 * Files of it still open keep working until closed; the drop waits for them. Needs write and
 * search permission on the directory, and root or (with the mount option
 * user_subvol_rm_allowed) ownership of the subvolume's root directory. EBUSY for the mount's
 * root subvolume and the default one; ENOTDIR/EINVAL when `name` is not a subvolume; EPERM.
 * Out: the deleted id.
 */
struct cowfs_ioc_subvol_delete {
	uint32_t version;        /* in: COWFS_SUBVOL_VERSION */
	uint32_t flags;          /* in: 0 */
	uint64_t id;             /* out */
	char name[COWFS_SUBVOL_NAME_MAX + 1];
};
#define COWFS_IOC_SUBVOL_DELETE _IOWR(COWFS_IOC_MAGIC, 13, struct cowfs_ioc_subvol_delete)

/*
 * COWFS_IOC_SUBVOL_INFO, on any file or directory of the mount: what a subvolume is. In:
 * `id` (0: the subvolume of the file it is issued on); with COWFS_SUBVOL_INFO_NEXT, the first
 * subvolume (deleting ones included) whose id is >= `id` instead: a listing asks from 0 and then
 * from id + 1 until ENOENT. `path` is the subvolume's path from the top level's root
 * ("" for the top level itself; "" too for one being deleted). Space is not computed here
 * (COWFS_IOC_SUBVOL_SPACE).
 */
#define COWFS_SUBVOL_INFO_NEXT 0x1u
#define COWFS_SUBVOL_PATH_MAX 4096
struct cowfs_ioc_subvol_info {
	uint32_t version;        /* in: COWFS_SUBVOL_VERSION */
	uint32_t in_flags;       /* in: COWFS_SUBVOL_INFO_* */
	uint64_t id;             /* in/out */
	uint64_t parent;         /* out: the subvolume whose directory holds it (0: the top level) */
	uint64_t dir;            /* out: the inode number of that directory in `parent` */
	uint64_t source;         /* out: what it is a snapshot of (0: made empty) */
	uint64_t generation;     /* out: the last transaction that changed it */
	uint64_t ctransid;       /* out: the transaction that made it */
	int64_t otime_sec;       /* out: when it was made */
	uint32_t otime_nsec;
	uint32_t flags;          /* out: COWFS_SUBVOL_RDONLY | _DELETING | _DEFAULT */
	uint32_t drop_permille;  /* out: deleting: how much of its tree is dropped (0..1000) */
	uint32_t reserved;
	uint8_t uuid[16];        /* out: its own */
	uint8_t source_uuid[16]; /* out: its source's (zeros if none) */
	char name[COWFS_SUBVOL_NAME_MAX + 1];   /* out: its name in its parent directory */
	char path[COWFS_SUBVOL_PATH_MAX];
};
#define COWFS_IOC_SUBVOL_INFO _IOWR(COWFS_IOC_MAGIC, 14, struct cowfs_ioc_subvol_info)

/*
 * COWFS_IOC_SUBVOL_SET_FLAGS, on a subvolume's root directory, by its owner or root: make it
 * read-only or writable again (COWFS_SUBVOL_RDONLY in `flags`, the only flag that may be set).
 * Out: the flags afterwards.
 */
struct cowfs_ioc_subvol_flags {
	uint32_t version;        /* in: COWFS_SUBVOL_VERSION */
	uint32_t flags;          /* in/out */
};
#define COWFS_IOC_SUBVOL_SET_FLAGS _IOWR(COWFS_IOC_MAGIC, 15, struct cowfs_ioc_subvol_flags)

/*
 * COWFS_IOC_SUBVOL_DEFAULT, on any file of the mount: GET the default subvolume (what a mount
 * without subvol=/subvolid= shows) or, by root, SET it to `id` (5: the top level again). A
 * deleting subvolume cannot become the default; the default cannot be deleted (EBUSY).
 */
#define COWFS_SUBVOL_DEFAULT_GET 0u
#define COWFS_SUBVOL_DEFAULT_SET 1u
struct cowfs_ioc_subvol_default {
	uint32_t version;        /* in: COWFS_SUBVOL_VERSION */
	uint32_t op;             /* in: COWFS_SUBVOL_DEFAULT_* */
	uint64_t id;             /* in (SET) / out */
};
#define COWFS_IOC_SUBVOL_DEFAULT _IOWR(COWFS_IOC_MAGIC, 16, struct cowfs_ioc_subvol_default)

/*
 * COWFS_IOC_SUBVOL_SYNC, on any file of the mount: wait until subvolume `id` (0: every
 * subvolume being deleted now) has been dropped completely and that is committed. Out: how
 * many were waited for. EINTR-safe: the server answers when done; a caller may repeat it.
 */
struct cowfs_ioc_subvol_sync {
	uint32_t version;        /* in: COWFS_SUBVOL_VERSION */
	uint32_t count;          /* out */
	uint64_t id;             /* in */
};
#define COWFS_IOC_SUBVOL_SYNC _IOWR(COWFS_IOC_MAGIC, 17, struct cowfs_ioc_subvol_sync)

/*
 * COWFS_IOC_SUBVOL_SPACE, on any file of the mount: exact space figures for a set of
 * subvolumes taken together (1..COWFS_SUBVOL_SPACE_MAX ids), computed from the extent tree's
 * reference counts and the trees' shared structure (no rescan, no stored counters):
 *   exclusive: bytes of tree blocks and data extents referenced only from these subvolumes:
 *              what deleting all of them together would free;
 *   exclusive_data / exclusive_meta: the same split into data extents and tree blocks;
 *   referenced: with COWFS_SUBVOL_SPACE_REFERENCED only (it walks the whole trees, where
 *              the exclusive figures read only what the set does not share): bytes of every
 *              distinct extent (data and tree blocks) they reach.
 * The work is proportional to what the set holds alone, not to its size: a fresh snapshot of a
 * million files is answered after reading a node or two.
 */
#define COWFS_SUBVOL_SPACE_MAX 64
#define COWFS_SUBVOL_SPACE_REFERENCED 0x1u
struct cowfs_ioc_subvol_space {
	uint32_t version;        /* in: COWFS_SUBVOL_VERSION */
	uint16_t count;          /* in */
	uint16_t flags;          /* in: COWFS_SUBVOL_SPACE_* */
	uint64_t ids[COWFS_SUBVOL_SPACE_MAX];   /* in */
	uint64_t exclusive;      /* out */
	uint64_t exclusive_data;
	uint64_t exclusive_meta;
	uint64_t referenced;
};
#define COWFS_IOC_SUBVOL_SPACE _IOWR(COWFS_IOC_MAGIC, 18, struct cowfs_ioc_subvol_space)

#endif
