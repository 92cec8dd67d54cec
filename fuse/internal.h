/*
 * What the files of fuse/ share: the server state (one struct, libfuse's userdata), the
 * request handlers each file provides, and the conversions between fs/ and FUSE types.
 *
 *   mount.c     cowfs_mount_main: daemon, session setup and teardown, closing the image
 *   options.c   the command line and -o options
 *   ops.c       the handler table; init, lookup counts, attributes, statfs, access
 *   ops_namei.c names: mknod, mkdir, symlink, link, create, unlink, rmdir, rename
 *   ops_dir.c   opendir, readdir, readdirplus, fsyncdir
 *   ops_data.c  open, read, write, fsync, fallocate, lseek, copy_file_range
 *   xattr.c     extended attributes (POSIX ACLs are two of them)
 *   ioctl.c     the mount's own ioctls (cowfs_ioctl.h): dispatch, status, file ids, sync, stats
 *   ioctl_share.c   clone, dedupe and extent-map ioctls
 *   space_sets.c    the SPACE ioctl and its sets
 *   attr.c      cowfs_attr / cowfs_statfs <-> struct stat / statvfs, inode numbers
 *
 * Every handler replies exactly once (fuse_reply_none for forgets), with the negative errno
 * of the fs/ call it made turned into libfuse's positive one.
 */
#ifndef COWFS_FUSE_INTERNAL_H
#define COWFS_FUSE_INTERNAL_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/inode/inode.h"
#include "fs/inode/subvol.h"
#include "fs/inode/space.h"
#include "fuse/cowfs_ioctl.h"
#include "fs/super/fs.h"

/*
 * How long the kernel may trust an entry or attributes it was given (and a name it was told
 * does not exist). Every change goes through this kernel mount, which updates or drops what
 * it cached as it makes them; the timeout only bounds how long a missed case could show.
 */
#define SERVER_TIMEOUT 1.0

/* The largest write the kernel may send in one request. */
#define SERVER_MAX_WRITE (1u << 20)

/*
 * The kernel's read-ahead on the mount, raised from its 128 KiB default once the mount is up
 * (readahead.c). FUSE cannot negotiate more than the default, yet every read request costs a
 * round trip: 1 MiB requests read a cold file sequentially about 1.2x as fast as 128 KiB ones
 * (measured: 1,180 -> 1,430 MiB/s).
 */
#define SERVER_READAHEAD (1u << 20)
#define READAHEAD_MAX (64u << 20)

/* The mount's configuration: the command line, parsed (options.c). */
struct mount_config {
	char *image;               /* absolute path */
	char *mountpoint;          /* absolute path: unmounting happens after chdir("/") */
	bool foreground, debug, single_thread;
	bool read_only, default_permissions;
	bool noreflink;            /* copy_file_range copies, never shares */
	enum inode_atime_mode atime_mode;
	bool nodiratime;
	bool user_subvol_rm_allowed;   /* owners may delete their subvolumes */
	char *subvol_path;         /* subvol=: the mount's root subvolume by path; NULL: none */
	uint64_t subvol_id;        /* subvolid=: by id; 0: none (then the default subvolume) */
	int commit_interval_ms;    /* 0: cowfs's default */
	size_t cache_bytes;        /* 0: cowfs's default */
	size_t readahead_bytes;    /* 0: the kernel's own */
	unsigned max_read;         /* max_read=: 0 none */
	char *fuse_opts;           /* comma-separated options for libfuse, escaped */
	/* -o remount (remount.c): ask the running server of `mountpoint` to change, rather than
	 * mount. mode_set: ro or rw was given; commit_set: commit= was. */
	bool remount, mode_set, commit_set;
	char *unknown_opt;         /* the first option not known here (an error unless remount) */
};

/*
 * The SPACE ioctl's sets being built (space_sets.c): at most SPACE_SETS_MAX at a time, the
 * oldest dropped to make room; ids count up from 1 and are never reused, so a dropped set's id
 * is ENOENT rather than someone else's set.
 */
#define SPACE_SETS_MAX 16
struct space_sets {
	pthread_mutex_t lock;      /* held for a whole SPACE request on a set */
	uint64_t last_id;
	struct space_slot {
		uint64_t id;       /* 0: free */
		uid_t owner;       /* who made it: only they (and root) may use it */
		struct space_set *set;
		struct inode_tree *it;   /* the subvolume it measures: one per set */
	} slot[SPACE_SETS_MAX];
};

struct server {
	struct cowfs *fs;          /* NULL once closed */
	struct fuse_session *se;   /* for notifications to the kernel */
	struct subvols *sv;        /* every subvolume's inode_tree, opened when reached */
	uint64_t root_subvol;      /* the mount's root: FUSE_ROOT_ID is its inode 256 */
	struct inode_tree *root_it;   /* its tree */
	const char *image;         /* for messages */
	bool read_only;
	bool default_permissions;  /* the kernel checks permissions itself */
	bool posix_acl;            /* set at init: the kernel enforces ACLs and leaves umask to us */
	struct space_sets space_sets;
	/* Clones running on threads of their own (ioctl_share.c), not yet replied to. */
	pthread_mutex_t late_lock;
	pthread_cond_t late_cond;
	unsigned late_pending;
	atomic_bool to_syslog;     /* reports go to syslog once the daemon has left the terminal */
	int close_result;          /* what closing the image returned */
	pthread_mutex_t remount_lock;   /* one COWFS_IOC_REMOUNT at a time */
	const char *mountpoint;    /* absolute */
	size_t readahead_bytes;    /* 0: leave the kernel's */
	unsigned max_read;         /* -o max_read=, which op_init must repeat; 0: none */
	atomic_bool readahead_done;
	/* COWFS_FAULT_INJECT=N:ERRNO (tests): the Nth tree step or allocation after the mount
	 * fails with -ERRNO (mount.c). */
	long inject_countdown;
	int inject_errno;
};

static inline struct server *server_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Reply with a negative errno from fs/. */
static inline void reply_err(fuse_req_t req, int neg_errno)
{
	fuse_reply_err(req, -neg_errno);
}

/*
 * attr.c: node ids and st_ino. Every subvolume has its own inode numbers (below 2^48), so the
 * kernel's number of an inode is ((subvolume index) << 48) | ino, index 0 for the top level
 * (id 5) and id - 255 for the others; FUSE_ROOT_ID stands for the mount's root subvolume's
 * inode 256 as a node id (st_ino always has the full form).
 */
#define NODE_INO_BITS 48
uint64_t node_encode(uint64_t subvol, uint64_t ino);
fuse_ino_t ino_to_fuse(uint64_t subvol, uint64_t ino, uint64_t root_subvol);
/* The subvolume and inode of node `node`: -ESTALE for a number no subvolume can have. */
int ino_from_fuse(fuse_ino_t node, uint64_t root_subvol, uint64_t *subvol, uint64_t *ino);
void attr_to_stat(const struct cowfs_attr *a, struct stat *st);
/* -EOVERFLOW for an inode number the encoding cannot carry. */
int attr_to_entry(const struct cowfs_attr *a, uint64_t root_subvol, struct fuse_entry_param *e);
unsigned attr_from_setattr(const struct stat *st, int to_set, struct cowfs_attr *out);
void statfs_to_statvfs(const struct cowfs_statfs *in, struct statvfs *out);

/* options.c: 0, or -1 after printing why the command line is wrong. */
int config_parse(struct mount_config *c, int argc, char **argv);
void config_free(struct mount_config *c);

/* remount.c: mount -o remount on a live mount. Returns the exit status. */
int remount_main(const struct mount_config *c);

/* mount.c */
int server_close(struct server *s);
void server_say(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* readahead.c */
void readahead_raise_once(struct server *s);

/* ops.c */
extern const struct fuse_lowlevel_ops server_ops;
bool name_too_long(const char *name);
/* The inode_tree and inode of node `node`: what every handler starts with. -ESTALE for a
 * subvolume deleted since. */
int node_resolve(struct server *s, fuse_ino_t node, struct inode_tree **it, uint64_t *ino);
/* The node id of `ino` of `it`, for notifications. */
fuse_ino_t node_of(const struct server *s, struct inode_tree *it, uint64_t ino);
/* An entry that names a subvolume (a->subvol is not it's): its root directory from its own
 * tree instead, *it switched to that tree. */
int entry_cross(struct server *s, struct inode_tree **it, struct cowfs_attr *a);
int entry_hold(struct server *s, struct inode_tree *it, uint64_t ino);
void entry_release(struct server *s, fuse_ino_t node, uint64_t n);
void reply_entry_held(fuse_req_t req, struct server *s, struct inode_tree *it,
		      const struct cowfs_attr *a);

/* The caller of a request, for inode_permission: its groups in `small`, or on the heap if
 * it has more. */
struct req_caller {
	struct inode_caller c;
	gid_t small[64];
	gid_t *heap;
};
void req_caller_init(struct req_caller *rc, fuse_req_t req);
void req_caller_free(struct req_caller *rc);

/* The caller of a request that changes a file, for the setuid/setgid rule of fs/inode
 * (inode_privs_dropped): its groups are read only if the rule asks. Root is taken to hold
 * CAP_FSETID: the request says who the caller is, not what capabilities it has. */
struct req_changer {
	struct inode_changer ch;
	fuse_req_t req;
	bool have_groups;
	struct req_caller rc;
};
void req_changer_init(struct req_changer *rch, fuse_req_t req);
void req_changer_free(struct req_changer *rch);
/* Before a change to the data of `ino` by the caller of `req`: drop setuid/setgid as the
 * kernel's file_modified does (and the kernel's cached mode with them). */
int req_drop_privs(struct server *s, fuse_req_t req, struct inode_tree *it, uint64_t ino);

/* ops_namei.c */
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);

/* ops_dir.c */
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ops_data.c. An open file's fi->fh: its open flags, which only open and create see (the
 * ioctl request, for one, carries fh alone). */
#define FH_APPEND 0x1u   /* O_APPEND: fs/ writes at its end of file */
#define FH_READ   0x2u   /* open for reading */
#define FH_WRITE  0x4u   /* open for writing */
#define FH_NOATIME 0x8u  /* O_NOATIME: reads leave atime alone */
void file_handle_init(struct fuse_file_info *fi);
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
		  struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi);
void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi);
void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags);

/* xattr.c */
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ioctl.c: the dispatcher, and what the handlers share. One request's arguments: */
struct ioctl_req {
	fuse_req_t req;
	struct server *s;
	struct inode_tree *it;     /* the subvolume of the file or directory it is issued on */
	uint64_t ino;              /* fs/'s number of it in that tree */
	bool dir;                  /* FUSE_IOCTL_DIR */
	uint64_t fh;               /* the open file's FH_* (0 for a directory) */
	const void *in;
	size_t in_size, out_size;
};
void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
	      struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
	      size_t out_bufsz);
/* Whether the request's buffers hold an in (out) struct of `size` bytes; replies EINVAL if
 * not (in_size 0: nothing comes in). */
bool ioctl_sizes_ok(const struct ioctl_req *r, size_t in_size, size_t out_size);
/* The file `f` names (its subvolume's tree in *it): -ENOENT, -ESTALE (its number now belongs
 * to another file). */
int ioctl_file_resolve(struct server *s, const struct cowfs_ioc_file *f, struct inode_tree **it,
		       struct cowfs_attr *a);
/* -EROFS unless the mount takes changes. */
int ioctl_writable(struct server *s);

/* ioctl_share.c: clone, dedupe, extent map, chunk fingerprints. */
void ioctl_clone_range(const struct ioctl_req *r);
void ioctl_dedupe_range(const struct ioctl_req *r);
void ioctl_fiemap(const struct ioctl_req *r);
void ioctl_chunk_hashes(const struct ioctl_req *r);
void late_replies_init(struct server *s);
/* Drop what the kernel caches of [off, off + len) of `ino` and its attributes (off < 0:
 * attributes only). */
void invalidate_cache(struct server *s, struct inode_tree *it, uint64_t ino, int64_t off,
		      int64_t len);
/* Start fn(arg) on a detached thread of its own with every signal blocked, counted as a late
 * reply (late_replies_wait): false if no thread could be had. */
bool late_thread_start(struct server *s, void *(*fn)(void *), void *arg);
void late_thread_done(struct server *s);
/* Until every clone thread has replied: before the session is destroyed. */
void late_replies_wait(struct server *s);

/* space_sets.c: SPACE, and the sets it keeps. */
void space_sets_init(struct space_sets *t);
void space_sets_destroy(struct space_sets *t);
void ioctl_space(const struct ioctl_req *r);

/* ioctl_subvol.c: the subvolume ioctls (COWFS_IOC_SUBVOL_*, SNAP_CREATE). */
void ioctl_subvol_create(const struct ioctl_req *r, bool snapshot);
void ioctl_subvol_delete(const struct ioctl_req *r);
void ioctl_subvol_info(const struct ioctl_req *r);
void ioctl_subvol_set_flags(const struct ioctl_req *r);
void ioctl_subvol_default(const struct ioctl_req *r);
void ioctl_subvol_sync(const struct ioctl_req *r);
void ioctl_subvol_space(const struct ioctl_req *r);

#endif
