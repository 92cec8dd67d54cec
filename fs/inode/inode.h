/*
 * Inodes, directories and the namespace operations of one fs tree (POSIX semantics, btrfs
 * item layout: fs/inode/inode_format.h, docs/FORMAT.md 8-11).
 *
 * Every update runs inside one cowfs transaction (cowfs_trans_begin .. end) after reserving
 * the tree blocks it may need, and checks everything it can (existence, types, name, emptiness,
 * item sizes) before changing anything: an error it returns for a user mistake leaves the tree
 * as it was. Reads take the filesystem lock too, so callers need no locking of their own; the
 * readdir callback runs with that lock held and must not call back into this layer.
 *
 * Errors are negative errnos; a malformed item is -EUCLEAN, reported through fs->report
 * naming the inode.
 *
 * File data is file.h, xattrs and ACLs xattr.h; an inode whose last name goes while it is held
 * (inode_hold) becomes an orphan and is freed at its last release.
 */
#ifndef COWFS_INODE_INODE_H
#define COWFS_INODE_INODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "fs/inode/inode_format.h"
#include "fs/io/bufpool.h"
#include "fs/super/fs.h"

#define INODE_NAME_MAX  255
#define INODE_LINK_MAX  65000
#define INODE_SYMLINK_MAX 4095

struct inode_cache;

/* When reads update atime (the mount's atime options; atime.c). */
enum inode_atime_mode {
	INODE_ATIME_RELATIME = 0,   /* the default: see inode_atime_needs_update */
	INODE_ATIME_STRICT,         /* at every read */
	INODE_ATIME_NOATIME,        /* never */
};

/* What shared and what copied since the tree was opened (file.h: file_get_share_stats). */
struct file_share_stats {
	uint64_t copy_calls, copy_bytes_shared, copy_bytes_copied;   /* file_copy_range */
	uint64_t clone_calls, clone_bytes;                           /* file_clone_range */
	/* Destinations asked, bytes found identical (now shared), bytes that differed. */
	uint64_t dedupe_calls, dedupe_bytes_same, dedupe_bytes_differ;
	/* file_fsync calls; made durable by the fsync log; by a commit. */
	uint64_t fsyncs, fsync_log_hits, fsync_commits;
};

/* Read buffers kept for reuse: as many as reads usually run at once (the FUSE layer's request
 * threads, fuse/mount.c). */
#define INODE_READ_BUFS_KEPT 8u

/* The inode layer's view of one fs tree. */
struct inode_tree {
	struct cowfs *fs;
	struct cowfs_root *root;
	uint64_t next_ino;   /* 0 until first needed: then (highest inode number) + 1 */
	struct inode_cache *icache;   /* in-memory state of inodes: holds, dirty pages */
	struct cowfs_hooks hooks;     /* its part in commits, flushes and aborts (fs/super) */
	bool noreflink;               /* copy_file_range copies every byte (file_set_reflink) */
	/* A read-only subvolume (SUBVOL_RDONLY, set by subvols.c): every update is -EROFS. */
	bool read_only;
	enum inode_atime_mode atime_mode;   /* inode_set_atime_mode */
	bool nodiratime;              /* directories' atimes never change */
	/* Updated and read with atomics: copy_file_range counts outside the lock. */
	struct file_share_stats share_stats;
	struct bufpool read_bufs;     /* buffers of file reads (file_read_view) */
};

/* Updates of `it` are refused: the mount is read-only, or the subvolume is. */
static inline bool inode_tree_read_only(const struct inode_tree *it)
{
	return it->read_only || cowfs_read_only(it->fs);
}

struct cowfs_attr {
	uint64_t ino;
	uint64_t subvol;     /* the subvolume (fs tree id) the inode is in (fs/inode/subvol.h) */
	uint32_t mode, nlink, uid, gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t blocks;     /* 512-byte units */
	struct timespec atime, mtime, ctime, btime;
	uint64_t generation;
};

/* inode_setattr mask bits. */
#define INODE_SET_MODE  0x01u   /* permission bits only; the file type never changes */
#define INODE_SET_UID   0x02u
#define INODE_SET_GID   0x04u
#define INODE_SET_ATIME 0x08u
#define INODE_SET_MTIME 0x10u
#define INODE_SET_SIZE  0x20u   /* regular files: truncate or extend (file.h) */

/* Rename flags (the values of linux/fs.h). */
#define INODE_RENAME_NOREPLACE 0x1u
#define INODE_RENAME_EXCHANGE  0x2u
#define INODE_RENAME_WHITEOUT  0x4u   /* leave a whiteout (char device 0/0) at the source */

/* Make tree `root`'s root directory (inode 256). -EEXIST if it has one. */
int inode_make_root(struct cowfs *fs, struct cowfs_root *root);

/*
 * Set up the inode layer over tree `root`. The in-memory state (holds, dirty pages) is made
 * when first needed, and then registers the write-back of dirty file data before every
 * commit; inode_tree_destroy() writes back what is dirty, frees unheld orphans and the
 * in-memory state. Call it before cowfs_close() (a no-op if nothing was ever made).
 */
void inode_tree_init(struct inode_tree *it, struct cowfs *fs, struct cowfs_root *root);
int inode_tree_destroy(struct inode_tree *it);
/* The running transaction was aborted (its abort hook): forget the dirty pages and cached
 * state, so that reads show the last committed generation. */
void inode_tree_abort(void *arg);

/*
 * In-use references: the kernel's lookup counts. An inode whose last name is removed while it
 * is held is kept, with an orphan item, until its last reference is released (an open file
 * that was unlinked stays readable); then it is freed. Orphans left by a crash are freed by
 * inode_orphans_cleanup(), which mount runs (and unmount, for inodes the kernel never
 * released).
 */
int inode_hold(struct inode_tree *it, uint64_t ino);
int inode_release(struct inode_tree *it, uint64_t ino, uint64_t n);
int inode_orphans_cleanup(struct inode_tree *it, uint64_t *freed);

int inode_getattr(struct inode_tree *it, uint64_t ino, struct cowfs_attr *attr);
int inode_setattr(struct inode_tree *it, uint64_t ino, unsigned mask,
		  const struct cowfs_attr *attr);
struct inode_changer;
/* The same, by `c`: a truncate or chown also drops the setuid and setgid bits the kernel's
 * rule drops (inode_privs_dropped), in the same transaction, from the mode given with it if
 * there is one (the FUSE kernel's own guess at them). */
int inode_setattr_as(struct inode_tree *it, uint64_t ino, unsigned mask,
		     const struct cowfs_attr *attr, const struct inode_changer *c);

/*
 * Access times (atime.c). inode_touch_atime: `ino` was read (a file's data, a directory's
 * entries); update its atime if the mount's rule says so, in the running transaction (no
 * commit of its own); never on a read-only mount. inode_atime_wanted: whether a read now
 * would update it (the server keeps no cached pages for such a file, so that the read
 * reaches it). inode_atime_needs_update is the rule itself, the kernel's: never for
 * noatime (or a directory under nodiratime), nor if atime is `now` already; always for
 * strictatime; for relatime if atime is not after mtime or ctime, or is 24 hours old.
 */
void inode_set_atime_mode(struct inode_tree *it, enum inode_atime_mode mode, bool nodiratime);
int inode_touch_atime(struct inode_tree *it, uint64_t ino);
int inode_atime_wanted(struct inode_tree *it, uint64_t ino, bool *wanted);
bool inode_atime_needs_update(enum inode_atime_mode mode, bool nodiratime, uint32_t imode,
			      const struct timespec *atime, const struct timespec *mtime,
			      const struct timespec *ctime, const struct timespec *now);

/* Look `name` up in `dir` ("." and ".." included). */
int inode_lookup(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		 struct cowfs_attr *attr);

/* A regular file, FIFO, socket or device node (S_IFMT of mode; rdev for devices). */
int inode_create(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		 uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid, struct cowfs_attr *attr);
int inode_mkdir(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		uint32_t mode, uint32_t uid, uint32_t gid, struct cowfs_attr *attr);
int inode_symlink(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		  const char *target, size_t tlen, uint32_t uid, uint32_t gid,
		  struct cowfs_attr *attr);
/* Copies up to `bufsize` bytes of the target (no terminator); *len gets its full length. */
int inode_readlink(struct inode_tree *it, uint64_t ino, char *buf, size_t bufsize,
		   size_t *len);

int inode_link(struct inode_tree *it, uint64_t ino, uint64_t newdir, const char *name,
	       size_t len, struct cowfs_attr *attr);
int inode_unlink(struct inode_tree *it, uint64_t dir, const char *name, size_t len);
int inode_rmdir(struct inode_tree *it, uint64_t dir, const char *name, size_t len);
int inode_rename(struct inode_tree *it, uint64_t olddir, const char *oldname, size_t oldlen,
		 uint64_t newdir, const char *newname, size_t newlen, unsigned flags);
/* The same, by caller uid/gid: the owner of the whiteout INODE_RENAME_WHITEOUT leaves. */
int inode_rename_as(struct inode_tree *it, uint64_t olddir, const char *oldname, size_t oldlen,
		    uint64_t newdir, const char *newname, size_t newlen, unsigned flags,
		    uint32_t uid, uint32_t gid);

/*
 * Who asks for access: the credentials a kernel would check (fsuid, fsgid and the
 * supplementary groups), for operations whose checks the kernel cannot make itself (the FUSE
 * server's access and its ioctls, which name files by inode number).
 */
struct inode_caller {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;     /* supplementary groups */
	size_t ngroups;
};

/* Permission mask bits: the values of R_OK, W_OK and X_OK (the kernel's MAY_*). */
#define INODE_MAY_EXEC  0x1
#define INODE_MAY_WRITE 0x2
#define INODE_MAY_READ  0x4

/*
 * Whether `c` may access `ino` as `mask` asks (permission.c), as Linux's generic_permission:
 * the owner's bits for the owner; else the POSIX access ACL if the inode has one; else the
 * group's bits for a member of its group, the others' bits for everyone else. Root (uid 0)
 * may read and write anything and search any directory, but execute a file only if some x bit
 * is set. 0, -EACCES, or the errors of reading the inode (-ENOENT, -EUCLEAN, -EIO). Mask 0
 * only checks that the inode exists.
 */
int inode_permission(struct inode_tree *it, uint64_t ino, const struct inode_caller *c,
		     int mask);
/* Whether `gid` is the caller's group or one of its supplementary groups. */
bool inode_caller_in_group(const struct inode_caller *c, gid_t gid);

/*
 * Who changes a file, for the setuid/setgid rule (inode_privs_dropped). The supplementary
 * groups are asked for through `in_groups` only when the rule needs them (a setgid file
 * that is not group-executable, of a group other than the caller's own): a FUSE server reads
 * them from /proc, which no write should pay for. in_groups NULL: no supplementary groups.
 * `fsetid`: the caller holds CAP_FSETID (the FUSE server takes it that root does).
 */
struct inode_changer {
	uid_t uid;
	gid_t gid;
	bool fsetid;
	bool (*in_groups)(void *arg, gid_t gid);
	void *arg;
};

/* What a change is, for the rule: Linux treats these differently. */
enum inode_change {
	INODE_CHANGE_DATA,        /* write, truncate, O_TRUNC, fallocate, copy_file_range, clone */
	INODE_CHANGE_OWNER,       /* chown, chgrp */
	INODE_CHANGE_ACL,         /* setting an access ACL */
	INODE_CHANGE_MODE,        /* chmod: `mode` and `gid` are the new ones */
};

/*
 * The bits of S_ISUID | S_ISGID that `change` of a file of `mode` and group `gid` by `c`
 * drops: Linux's setattr_should_drop_suidgid (data), chown_common (owner),
 * posix_acl_update_mode (ACL) and setattr_prepare (chmod) (permission.c).
 */
uint32_t inode_privs_dropped(uint32_t mode, gid_t gid, enum inode_change change,
			     const struct inode_changer *c);
/* Drop them from `ino` (with a ctime update), in a transaction of its own if there is any
 * to drop: before a write or fallocate, as the kernel's file_modified. 1 if it dropped
 * something (the mode the kernel has cached is then stale), 0 if not, or a negative errno. */
int inode_drop_privs(struct inode_tree *it, uint64_t ino, enum inode_change change,
		     const struct inode_changer *c);

/*
 * Entries of `dir` in DIR_INDEX order, starting at `cookie` (0: from the start, with "."
 * and ".."). `fn` gets each entry and the cookie that continues after it; returning non-zero
 * stops the walk (that entry counts as not returned). Cookies are directory indexes, so they
 * stay valid while other entries come and go.
 */
typedef int (*dir_fill_fn)(void *arg, const char *name, size_t len, uint64_t ino,
			   uint8_t type, uint64_t next_cookie);
int dir_readdir(struct inode_tree *it, uint64_t dir, uint64_t cookie, dir_fill_fn fn,
		void *arg);
/*
 * A listing that ends: dir_readdir_end gives the cookie beyond every entry `dir` has now, and
 * dir_readdir_upto stops there. An entry renamed within the directory, or added, while it is
 * listed gets an index past that end, so it is not given again at its new index (which would
 * never end if each entry is renamed as it is read: btrfs's last_index, taken at opendir).
 */
int dir_readdir_end(struct inode_tree *it, uint64_t dir, uint64_t *end);
int dir_readdir_upto(struct inode_tree *it, uint64_t dir, uint64_t cookie, uint64_t end,
		     dir_fill_fn fn, void *arg);

#endif
