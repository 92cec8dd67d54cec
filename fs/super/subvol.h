/*
 * Subvolumes in the tree of trees (docs/FORMAT.md 5.2, DESIGN.md 16): which fs trees exist, how
 * they hang in each other's directories, their flags, the default one, and deletion. This is
 * the one decoder of the root tree's subvolume items (SUBVOL_ITEM, ROOT_REF, ROOT_BACKREF, the
 * registry, the deleting list), shared by the runtime, fsck and the dump tool.
 *
 * fs/super knows trees, not inodes: a subvolume's directory entry in its parent's fs tree and
 * its root directory (inode 256 of its own tree) are fs/inode's (fs/inode/subvol.c), which
 * calls these inside the same transaction. Call everything with fs->lock held: updates inside
 * cowfs_trans_begin .. end (they take the transaction handle), reads under cowfs_lock or in an
 * update.
 */
#ifndef COWFS_SUPER_SUBVOL_H
#define COWFS_SUPER_SUBVOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fs/super/fs.h"

/* A subvolume, decoded (host order). */
struct subvol_info {
	uint64_t id;
	uint64_t parent;          /* the subvolume whose directory holds it; 0: top level, or deleting */
	uint64_t dir;             /* that directory's inode number in `parent` */
	uint64_t index;           /* the entry's DIR_INDEX offset there */
	uint64_t source;          /* snapshot of (0: made empty, or the top level) */
	uint64_t ctransid;        /* made in (0 for the top level of an image from before subvolumes) */
	uint64_t generation;      /* the last transaction that changed its tree (its root node's) */
	struct timespec otime;
	uint32_t flags;           /* SUBVOL_RDONLY | SUBVOL_DELETING */
	uint8_t uuid[16], source_uuid[16];
	uint64_t drop_total, drop_done;   /* while deleting */
	size_t name_len;
	char name[256];           /* NUL-terminated; "" for the top level and deleting ones */
};

/* The one decoders: 0 or -EUCLEAN with *why (nothing in *out is to be used). */
int subvol_item_decode(const void *data, uint32_t len, struct subvol_info *out,
		       const char **why);
int root_ref_decode(const void *data, uint32_t len, struct subvol_info *out, const char **why);
int subvol_registry_decode(const void *data, uint32_t len, uint64_t *default_id,
			   uint64_t *last_id, const char **why);

/* Whether `id` can name a subvolume at all (FS_TREE_ID or [SUBVOL_FIRST_ID, SUBVOL_LAST_ID]). */
bool subvol_id_valid(uint64_t id);

/* Subvolume `id` (deleting ones included): 0, -ENOENT, -EUCLEAN (reported), -EIO. */
int cowfs_subvol_get(struct cowfs *fs, uint64_t id, struct subvol_info *out);
/* The first subvolume whose id is >= `from` (the top level first): 0 or -ENOENT at the end. */
int cowfs_subvol_next(struct cowfs *fs, uint64_t from, struct subvol_info *out);
/* The first subvolume linked in `parent` (a ROOT_REF of it) whose id is >= `from`: the
 * children of one tree without looking at every other subvolume. 0 or -ENOENT at the end. */
int cowfs_subvol_next_child(struct cowfs *fs, uint64_t parent, uint64_t from,
			    struct subvol_info *out);
/* The subvolume whose entry `name` is in directory `dir` of `parent`: 0 (*id), -ENOENT. */
int cowfs_subvol_child(struct cowfs *fs, uint64_t parent, uint64_t dir, const char *name,
		       size_t len, uint64_t *id);

/* The default subvolume (FS_TREE_ID when none was set). */
int cowfs_subvol_get_default(struct cowfs *fs, uint64_t *id);
int cowfs_subvol_set_default(struct cowfs_trans *tx, uint64_t id);

/*
 * A new subvolume as entry `name` (DIR_INDEX `index`) of directory `dir` in subvolume `parent`:
 * an O(1) clone of `source`'s tree (a snapshot; the caller wrote its buffered data back into
 * this transaction first) or, with source NULL, an empty tree (the caller then inserts its root
 * directory, inode 256). Hands out the next id (-ENOSPC past SUBVOL_LAST_ID), writes the
 * SUBVOL_ITEM (`flags`: SUBVOL_RDONLY or 0; otime now, a random uuid), ROOT_REF and
 * ROOT_BACKREF, and marks the image COWFS_INCOMPAT_SUBVOLS. The caller inserts the entry in
 * the parent directory. *out: the new tree, open.
 */
int cowfs_subvol_create(struct cowfs_trans *tx, uint64_t parent, uint64_t dir, uint64_t index,
			const char *name, size_t len, struct cowfs_root *source, uint32_t flags,
			struct cowfs_root **out);
/* Set or clear SUBVOL_RDONLY (the only flag that may change this way). */
int cowfs_subvol_set_flags(struct cowfs_trans *tx, uint64_t id, uint32_t flags);
/* Move subvolume `id`'s entry (the caller moves the directory entries themselves). */
int cowfs_subvol_move(struct cowfs_trans *tx, uint64_t id, uint64_t parent, uint64_t dir,
		      uint64_t index, const char *name, size_t len);
/*
 * Begin deleting `id` (not FS_TREE_ID, not the default: -EBUSY): its ROOT_REF and ROOT_BACKREF
 * go (the caller removes the directory entries), SUBVOL_DELETING is set with its drop_total,
 * and it joins the deleting list. Its tree stays whole until cowfs_subvol_drop_step runs.
 */
int cowfs_subvol_unlink(struct cowfs_trans *tx, uint64_t id);
/* The first deleting subvolume whose id is >= `from`: 0 (*id), -ENOENT. */
int cowfs_subvol_next_deleting(struct cowfs *fs, uint64_t from, uint64_t *id);
/*
 * Drop a bounded part of deleting subvolume `id`'s tree (at most `budget` tree blocks freed or
 * let go), in this transaction, and record the progress in its SUBVOL_ITEM. After every step the
 * tree is a valid, smaller B+tree with exact reference counts, so a crash between steps resumes
 * from the last committed one. *done: the tree is gone, and with it every item of `id` (root
 * item, SUBVOL_ITEM, deleting entry).
 */
int cowfs_subvol_drop_step(struct cowfs_trans *tx, uint64_t id, unsigned budget, bool *done);

/* Exact space of a set of subvolumes together (fs/extent/exclusive.h does the counting). */
struct subvol_space {
	uint64_t exclusive_data, exclusive_meta;   /* bytes only these reference */
	uint64_t referenced;                       /* with `referenced`: every distinct extent's bytes */
	uint64_t nodes_read;                       /* how much the answer cost */
};
/*
 * (subvol_space.c) Each id counted once; reads only what the set holds alone (a fresh
 * snapshot: its root node). fs->lock held. -ENOENT: an id that is no subvolume; -ENOMEM past
 * a quarter of the memory bound (cowfs_cache_bytes / 4); -EIO, -EUCLEAN (reported).
 */
int cowfs_subvol_space(struct cowfs *fs, const uint64_t *ids, size_t n, bool referenced,
		       struct subvol_space *out);

#endif
