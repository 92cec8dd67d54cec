/*
 * Subvolumes as the inode layer shows them (DESIGN.md 16): every subvolume is an fs tree with
 * an inode_tree of its own, and appears as a directory in its parent's tree.
 *
 * Two parts:
 *   subvol_entry.c  the namespace operations that involve a subvolume entry: making a
 *                   subvolume or snapshot under a directory, unlinking one for deletion,
 *                   crossing into one at lookup (fs/super/subvol.h keeps the root-tree side);
 *   subvols.c       struct subvols, the set of open inode_trees of one filesystem (one per
 *                   subvolume reached), the read-only flag, permission rules, and the cleaner
 *                   thread that drops deleted subvolumes in bounded steps.
 *
 * The FUSE server holds one struct subvols and asks it for the inode_tree of each request.
 */
#ifndef COWFS_INODE_SUBVOL_H
#define COWFS_INODE_SUBVOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/inode/inode.h"
#include "fs/super/subvol.h"

/* The subvolume `it` shows (its fs tree id). */
uint64_t inode_tree_subvol(const struct inode_tree *it);

/* ---- subvol_entry.c: entries of subvolumes in directories ------------------------------ */

/*
 * inode_lookup() and dir_readdir() show a subvolume entry as its root directory: lookup fills
 * attr->ino = INODE_ROOT_INO and attr->subvol = the subvolume's id (every other lookup and
 * getattr gives attr->subvol = inode_tree_subvol(it)), and nothing else: the caller reads the
 * attributes from the subvolume's own inode_tree. readdir gives such an entry with ino = the
 * subvolume's id and type DT_DIR | INODE_DT_SUBVOL.
 * inode_unlink of one is -EISDIR, inode_rmdir -EPERM (subvol_unlink deletes), inode_link
 * cannot make one (it names inodes), inode_rename moves one within its tree (ROOT_REF and
 * ROOT_BACKREF follow) and never over one (-EBUSY for a target that is one).
 */
#define INODE_DT_SUBVOL 0x80u

/*
 * A new empty subvolume `name` in directory `dir` of `parent`: its root directory (inode 256)
 * has `mode` (S_IFDIR added), `uid`, `gid`. -EEXIST, -ENAMETOOLONG, -EROFS, -ENOSPC.
 * *id: the new subvolume's id. The caller checked permissions.
 */
int subvol_make(struct inode_tree *parent, uint64_t dir, const char *name, size_t len,
		uint32_t mode, uint32_t uid, uint32_t gid, uint64_t *id);
/*
 * A snapshot of `src` as `name` in `dir` of `parent`, read-only if `rdonly`: `src`'s buffered
 * file data is written back into the same transaction first, so the snapshot holds every write
 * that completed before the call and nothing after. O(1) in the size of `src`. Subvolumes
 * nested in `src` are not part of it (their entries are left out, as btrfs leaves them empty).
 * *id: its id.
 */
int subvol_snapshot(struct inode_tree *src, struct inode_tree *parent, uint64_t dir,
		    const char *name, size_t len, bool rdonly, uint64_t *id);
/*
 * Remove the subvolume entry `name` of `dir` in `parent` and mark it deleting
 * (cowfs_subvol_unlink), in one transaction: -ENOENT, -ENOTDIR (a name that is not a
 * subvolume: -ENOTDIR for files, -EINVAL for directories), -EBUSY (the default subvolume, or
 * `busy_id`: the mount's root), -ENOTEMPTY (it holds subvolumes: delete those first).
 * *id: the deleted id. Dropping its tree is the cleaner's.
 */
int subvol_unlink(struct inode_tree *parent, uint64_t dir, const char *name, size_t len,
		  uint64_t busy_id, uint64_t *id);
/* The path of directory `dir` of `it` from the tree's root ("" for the root), into buf
 * (NUL-terminated): -ENAMETOOLONG if it does not fit. */
int inode_dir_path(struct inode_tree *it, uint64_t dir, char *buf, size_t size);

/* ---- subvols.c: every open subvolume of a filesystem ------------------------------------- */

struct subvols;

struct subvols_config {
	bool noreflink;                    /* as inode_tree's */
	enum inode_atime_mode atime_mode;
	bool nodiratime;
	bool user_subvol_rm_allowed;       /* owners may delete their subvolumes */
	/* Tests: the cleaner sleeps this long after each drop step (0: never), so that a test
	 * can land a kill in the middle of a drop that would otherwise be over in a moment. */
	unsigned cleaner_pause_ms;
};

/*
 * Open the set over `fs` (read-only mounts too): subvolume trees are opened when first asked
 * for. A writable filesystem starts the cleaner, which resumes deletions left by an earlier
 * mount. subvols_close stops it, writes back and frees every inode_tree (before cowfs_close).
 */
int subvols_open(struct cowfs *fs, const struct subvols_config *cfg, struct subvols **out);
int subvols_close(struct subvols *sv);
/* A writable mount's first step: replay the fsync log (fsync_log_replay_resolve: each record
 * to its subvolume's tree), free the orphans a crash left in the trees opened, start the
 * cleaner. */
int subvols_replay_log(struct subvols *sv, uint64_t *records);
/* Before the server waits for its late replies: subvols_sync waiters return -EINTR and the
 * cleaner ends after its current step (subvols_close then joins it). */
void subvols_stop(struct subvols *sv);

/* The inode_tree of subvolume `id`: 0, -ENOENT (no such subvolume, or deleted and not open). The
 * pointer stays valid until subvols_close. */
int subvols_tree(struct subvols *sv, uint64_t id, struct inode_tree **out);

/* Permission-checked operations for the ioctls (caller: the requester's credentials). */
int subvols_create(struct subvols *sv, struct inode_tree *parent, uint64_t dir,
		   const char *name, size_t len, const struct inode_caller *c, uint64_t *id);
int subvols_snapshot(struct subvols *sv, uint64_t source, struct inode_tree *parent,
		     uint64_t dir, const char *name, size_t len, bool rdonly,
		     const struct inode_caller *c, uint64_t *id);
int subvols_delete(struct subvols *sv, struct inode_tree *parent, uint64_t dir,
		   const char *name, size_t len, uint64_t busy_id, const struct inode_caller *c,
		   uint64_t *id);
int subvols_set_readonly(struct subvols *sv, uint64_t id, bool rdonly,
			 const struct inode_caller *c);
/* Make `id` the default subvolume (root only). */
int subvols_set_default(struct subvols *sv, uint64_t id, const struct inode_caller *c);
/* Wait until `id` (0: every subvolume deleting now) is dropped and committed. *count: how many. */
int subvols_sync(struct subvols *sv, uint64_t id, unsigned *count);

#endif
