/*
 * Subvolume entries in directories (subvol.h): making a subvolume or a snapshot under a
 * directory, unlinking one for deletion, and the path of a directory. The root tree's side
 * (ids, SUBVOL_ITEM, ROOT_REF/ROOT_BACKREF) is fs/super/subvol.c's; each operation here does
 * both in one transaction.
 */
#include "fs/inode/subvol.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/dir_entry.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"

/* Tree blocks one subvolume operation may allocate: the directory's items, the root tree's
 * items (SUBVOL_ITEM, two refs, the registry), a new root directory. */
#define SUBVOL_UPDATE_ITEMS 16

/* Check that `name` can be added to `dir` of `it`: a live directory, a free valid name. */
static int check_new_name(struct inode_tree *it, uint64_t dir, const char *name, size_t len)
{
	struct inode d;
	struct dentry e;
	int ret = dir_check_new_name(name, len);

	if (ret == 0)
		ret = inode_read_dir(it, dir, &d);
	if (ret == 0 && d.nlink == 0)
		ret = -ENOENT;
	if (ret == 0)
		ret = dir_find(it, dir, name, len, &e);
	if (ret == 0)
		return -EEXIST;
	return ret == -ENOENT ? 0 : ret;
}

/* Make the subvolume's tree (a clone of `source`, or empty), its root-tree items, and its
 * entry in `dir`, in tx. */
static int link_new_subvol(struct cowfs_trans *tx, struct inode_tree *parent, uint64_t dir,
			   const char *name, size_t len, struct cowfs_root *source,
			   uint32_t flags, struct cowfs_root **root, uint64_t *id)
{
	uint64_t index, got;
	int ret = check_new_name(parent, dir, name, len);

	if (ret == 0)
		ret = dir_peek_index(parent, dir, &index);
	if (ret == 0)
		ret = cowfs_subvol_create(tx, inode_tree_subvol(parent), dir, index, name, len,
					  source, flags, root);
	if (ret == 0)
		ret = dir_subvol_link(tx, parent, dir, name, len, (*root)->t.owner, &got);
	if (ret == 0 && got != index)
		ret = inode_corrupt(parent, dir, "directory index moved while a subvolume was linked");
	if (ret == 0)
		*id = (*root)->t.owner;
	return ret;
}

int subvol_make(struct inode_tree *parent, uint64_t dir, const char *name, size_t len,
		uint32_t mode, uint32_t uid, uint32_t gid, uint64_t *id)
{
	struct cowfs_trans *tx;
	struct cowfs_root *root;
	struct inode_tree sub;
	struct inode in;
	int ret = inode_update_begin(parent, ALLOC_NORMAL, SUBVOL_UPDATE_ITEMS, &tx);

	if (ret < 0)
		return ret;
	ret = link_new_subvol(tx, parent, dir, name, len, NULL, 0, &root, id);
	if (ret == 0) {
		/* The root directory of the new tree: a stack inode_tree, as inode_make_root's. */
		inode_tree_init(&sub, parent->fs, root);
		inode_init_new(tx, &in, S_IFDIR | (mode & 07777), 2, uid, gid, 0);
		ret = inode_insert(tx, &sub, INODE_ROOT_INO, &in);
	}
	return inode_update_end(tx, ret);
}

/*
 * Subvolumes nested in the source are trees of their own, not part of its snapshot (as on
 * btrfs): the clone copied their entries, which would name subvolumes that do not hang there;
 * remove them from the snapshot. O(nested subvolumes), not O(files).
 */
static int drop_nested_entries(struct cowfs_trans *tx, struct inode_tree *src,
			       struct cowfs_root *snap)
{
	struct inode_tree it;
	struct subvol_info si;
	uint64_t from = SUBVOL_FIRST_ID;
	int ret;

	inode_tree_init(&it, src->fs, snap);
	while ((ret = cowfs_subvol_next_child(src->fs, inode_tree_subvol(src), from, &si)) == 0) {
		from = si.id + 1;
		if (si.id == snap->t.owner)
			continue;
		ret = dir_subvol_unlink(tx, &it, si.dir, si.name, si.name_len, si.index);
		if (ret < 0)
			break;
	}
	return ret == -ENOENT ? 0 : ret;
}

/* Whether subvolume `id` holds others (which must be deleted first). */
static int has_nested(struct cowfs *fs, uint64_t id)
{
	struct subvol_info si;
	int ret = cowfs_subvol_next_child(fs, id, SUBVOL_FIRST_ID, &si);

	if (ret == 0)
		return -ENOTEMPTY;
	return ret == -ENOENT ? 0 : ret;
}

int subvol_snapshot(struct inode_tree *src, struct inode_tree *parent, uint64_t dir,
		    const char *name, size_t len, bool rdonly, uint64_t *id)
{
	struct cowfs_trans *tx;
	struct cowfs_root *root;
	int ret;

	if (src->fs != parent->fs)
		return -EXDEV;
	ret = inode_update_begin(parent, ALLOC_NORMAL, SUBVOL_UPDATE_ITEMS, &tx);
	if (ret < 0)
		return ret;
	/* Under the lock from here: every write that completed is in the pages written back,
	 * and none can land between the write-back and the clone. */
	ret = inode_writeback_tree(tx, src);
	if (ret == 0)
		ret = link_new_subvol(tx, parent, dir, name, len, src->root,
				      rdonly ? SUBVOL_RDONLY : 0, &root, id);
	if (ret == 0)
		ret = drop_nested_entries(tx, src, root);
	return inode_update_end(tx, ret);
}

int subvol_unlink(struct inode_tree *parent, uint64_t dir, const char *name, size_t len,
		  uint64_t busy_id, uint64_t *id)
{
	struct cowfs_trans *tx;
	struct subvol_info si;
	struct dentry e;
	int ret;

	if (len > INODE_NAME_MAX)
		return -ENAMETOOLONG;
	ret = dir_check_new_name(name, len);
	if (ret < 0)
		return ret == -EEXIST ? -EINVAL : ret;
	ret = inode_update_begin(parent, ALLOC_PRIVILEGED, SUBVOL_UPDATE_ITEMS, &tx);
	if (ret < 0)
		return ret;
	ret = dir_find(parent, dir, name, len, &e);
	if (ret == 0 && !(e.type & DIR_ENTRY_SUBVOL))
		ret = (e.type == DT_DIR) ? -EINVAL : -ENOTDIR;
	if (ret == 0 && e.child == busy_id)
		ret = -EBUSY;
	if (ret == 0)
		ret = cowfs_subvol_get(parent->fs, e.child, &si);
	if (ret == 0 && (si.parent != inode_tree_subvol(parent) || si.dir != dir))
		ret = inode_corrupt(parent, dir, "subvolume entry disagrees with its root backref");
	if (ret == 0)
		ret = has_nested(parent->fs, e.child);
	if (ret == 0)
		ret = cowfs_subvol_unlink(tx, e.child);
	if (ret == 0)
		ret = dir_subvol_unlink(tx, parent, dir, name, len, si.index);
	if (ret == 0)
		*id = e.child;
	return inode_update_end(tx, ret);
}

/* The name of directory `dir`'s one link, and its parent: from its INODE_REF. */
static int dir_name(struct inode_tree *it, uint64_t dir, uint64_t *parent, char *name,
		    size_t *len)
{
	struct bt_cursor c;
	struct bt_key k = { dir, INODE_REF_KEY, 0 };
	const void *data;
	uint32_t dlen;
	int ret;

	bt_cursor_init(&c, inode_btree(it));
	ret = bt_cursor_seek(&c, &k, BT_SEEK_GE);
	if (ret == 0) {
		bt_cursor_item(&c, &k, &data, &dlen);
		struct inode_ref_view r;
		const char *why = "no entry";
		uint32_t off = 0;
		if (k.objectid != dir || k.type != INODE_REF_KEY ||
		    inode_ref_next(data, dlen, &off, &r, &why) != 1) {
			ret = inode_corrupt(it, dir, "directory without a readable inode ref");
		} else {
			*parent = k.offset;
			memcpy(name, r.name, r.name_len);
			*len = r.name_len;
		}
	} else if (ret == -ENOENT) {
		ret = inode_corrupt(it, dir, "directory without an inode ref");
	}
	bt_cursor_release(&c);
	return ret;
}

int inode_dir_path(struct inode_tree *it, uint64_t dir, char *buf, size_t size)
{
	size_t at = size;   /* the path is built backwards from the end of buf */
	int ret = 0;

	if (size == 0)
		return -ENAMETOOLONG;
	buf[--at] = 0;
	inode_lock_read(it);
	for (int depth = 0; dir != INODE_ROOT_INO && ret == 0; depth++) {
		char name[INODE_NAME_MAX];
		size_t len = 0;
		uint64_t parent = 0;
		if (depth > 4096) {
			ret = inode_corrupt(it, dir, "directory parents form a loop");
			break;
		}
		ret = dir_name(it, dir, &parent, name, &len);
		if (ret == 0 && len + 1 > at)
			ret = -ENAMETOOLONG;
		if (ret == 0) {
			at -= len;
			memcpy(buf + at, name, len);
			buf[--at] = '/';
			dir = parent;
		}
	}
	inode_unlock_read(it);
	if (ret < 0)
		return ret;
	/* Drop the leading '/': paths are relative to the tree's root. */
	if (buf[at] == '/')
		at++;
	memmove(buf, buf + at, size - at);
	return 0;
}
