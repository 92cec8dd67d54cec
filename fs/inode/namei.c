/*
 * Namespace operations: lookup, create, mkdir, symlink, link, unlink, rmdir, rename. Each is
 * checked in full before it changes anything, then applied inside one transaction with the
 * helpers of inode.c and dir.c.
 */
#include "fs/inode/internal.h"
#include "fs/inode/subvol.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/extent/extent_format.h"
#include "fs/extent/file_extent.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

static int lookup_locked(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
			 struct dentry *out)
{
	struct inode d;
	int ret;

	if (len > INODE_NAME_MAX)
		return -ENAMETOOLONG;
	ret = inode_read_dir(it, dir, &d);
	if (ret < 0)
		return ret;
	if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
		return -ENOENT;
	out->type = DT_DIR;
	if (len == 1 && name[0] == '.') {
		out->child = dir;
		return 0;
	}
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return dir_parent(it, dir, &out->child);
	return dir_find(it, dir, name, len, out);
}

int inode_lookup(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		 struct cowfs_attr *attr)
{
	struct inode in;
	struct dentry e = { 0 };
	int ret;

	inode_lock_read(it);
	ret = lookup_locked(it, dir, name, len, &e);
	if (ret == 0 && !(e.type & DIR_ENTRY_SUBVOL)) {
		ret = inode_read(it, e.child, &in);
		if (ret == -ENOENT)
			ret = inode_corrupt(it, dir, "directory entry names a missing inode");
	}
	inode_unlock_read(it);
	if (ret == 0 && (e.type & DIR_ENTRY_SUBVOL)) {
		/* Another tree's root directory: its attributes are that tree's to give. */
		memset(attr, 0, sizeof(*attr));
		attr->ino = INODE_ROOT_INO;
		attr->subvol = e.child;
		attr->mode = S_IFDIR;
	} else if (ret == 0) {
		inode_to_attr(it, e.child, &in, attr);
	}
	return ret;
}

/* Checks for a new name in `dir`: a directory, a valid name, not taken. */
static int check_new_entry(struct inode_tree *it, uint64_t dir, const char *name, size_t len)
{
	struct inode d;
	struct dentry e;
	int ret = dir_check_new_name(name, len);

	if (ret < 0)
		return ret;
	ret = inode_read_dir(it, dir, &d);
	if (ret < 0)
		return ret;
	if (d.nlink == 0)
		return -ENOENT;
	ret = dir_find(it, dir, name, len, &e);
	if (ret == 0)
		return -EEXIST;
	return ret == -ENOENT ? 0 : ret;
}

/* Make a new inode and link it as `name` in `dir`; symlinks also get their target. */
static int make_node(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		     uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid,
		     const char *target, size_t tlen, struct cowfs_attr *attr)
{
	struct cowfs_trans *tx;
	struct inode in, parent;
	uint64_t ino = 0;
	int ret = inode_update_begin(it, ALLOC_NORMAL, 8, &tx);

	if (ret < 0)
		return ret;
	ret = check_new_entry(it, dir, name, len);
	if (ret == 0)
		ret = inode_read_dir(it, dir, &parent);
	/* BSD group semantics in a setgid directory: the group is the directory's, and new
	 * subdirectories carry the bit on. */
	if (ret == 0 && (parent.mode & S_ISGID)) {
		gid = parent.gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	if (ret == 0)
		ret = inode_alloc_ino(it, &ino);
	if (ret == 0)
		ret = dir_check_link_fits(it, ino, dir, name, len);
	if (ret < 0)
		goto out;

	inode_init_new(tx, &in, mode, S_ISDIR(mode) ? 2 : 1, uid, gid, rdev);
	if (S_ISLNK(mode))
		in.size = in.nbytes = tlen;
	it->next_ino = ino + 1;
	ret = inode_insert(tx, it, ino, &in);
	if (ret == 0 && S_ISLNK(mode)) {
		uint8_t buf[FILE_EXTENT_INLINE_HEADER + INODE_SYMLINK_MAX];
		struct file_extent_item *fe = (void *)buf;
		struct bt_key k = { ino, EXTENT_DATA_KEY, 0 };

		memset(buf, 0, FILE_EXTENT_INLINE_HEADER);
		put_le64(&fe->generation, cowfs_trans_id(tx));
		put_le64(&fe->ram_bytes, tlen);
		fe->type = FILE_EXTENT_INLINE;
		memcpy(buf + FILE_EXTENT_INLINE_HEADER, target, tlen);
		ret = bt_insert(&tx->bt, inode_btree(it), &k, buf,
				(uint32_t)(FILE_EXTENT_INLINE_HEADER + tlen));
	}
	if (ret == 0)
		ret = dir_link_add(tx, it, dir, name, len, ino, inode_mode_to_dtype(mode));
	if (ret == 0 && S_ISDIR(mode))
		ret = inode_adjust(tx, it, dir, 1, 0);
	if (ret == 0)
		inode_to_attr(it, ino, &in, attr);
out:
	return inode_update_end(tx, ret);
}

int inode_create(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		 uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid, struct cowfs_attr *attr)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFIFO: case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR: case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return make_node(it, dir, name, len, mode & (S_IFMT | 07777), rdev, uid, gid, NULL, 0,
			 attr);
}

int inode_mkdir(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		uint32_t mode, uint32_t uid, uint32_t gid, struct cowfs_attr *attr)
{
	return make_node(it, dir, name, len, S_IFDIR | (mode & 07777), 0, uid, gid, NULL, 0,
			 attr);
}

int inode_symlink(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		  const char *target, size_t tlen, uint32_t uid, uint32_t gid,
		  struct cowfs_attr *attr)
{
	if (tlen == 0)
		return -ENOENT;
	if (tlen > INODE_SYMLINK_MAX ||
	    tlen + FILE_EXTENT_INLINE_HEADER > bt_max_item_size(cowfs_nodesize(it->fs)))
		return -ENAMETOOLONG;
	return make_node(it, dir, name, len, S_IFLNK | 0777, 0, uid, gid, target, tlen, attr);
}

static int readlink_locked(struct inode_tree *it, uint64_t ino, char *out, size_t bufsize,
			   size_t *tlen)
{
	struct bt_key k = { ino, EXTENT_DATA_KEY, 0 };
	struct file_extent fe;
	struct inode in;
	uint8_t *buf;
	uint32_t len;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	if (!S_ISLNK(in.mode))
		return -EINVAL;
	ret = inode_item_read(it, &k, &buf, &len);
	if (ret == -ENOENT)
		return inode_corrupt(it, ino, "symlink without its target");
	if (ret < 0)
		return ret;
	if (file_extent_decode(buf, len, &fe) < 0 || fe.type != FILE_EXTENT_INLINE ||
	    fe.inline_len != in.size) {
		free(buf);
		return inode_corrupt(it, ino, "symlink target is not an inline extent of its size");
	}
	*tlen = fe.inline_len;
	memcpy(out, fe.inline_data, *tlen < bufsize ? *tlen : bufsize);
	free(buf);
	return 0;
}

int inode_readlink(struct inode_tree *it, uint64_t ino, char *buf, size_t bufsize, size_t *len)
{
	int ret;

	inode_lock_read(it);
	ret = readlink_locked(it, ino, buf, bufsize, len);
	inode_unlock_read(it);
	return ret;
}

int inode_link(struct inode_tree *it, uint64_t ino, uint64_t newdir, const char *name,
	       size_t len, struct cowfs_attr *attr)
{
	struct cowfs_trans *tx;
	struct inode in;
	int ret = inode_update_begin(it, ALLOC_NORMAL, 8, &tx);

	if (ret < 0)
		return ret;
	ret = inode_read(it, ino, &in);
	if (ret == 0 && S_ISDIR(in.mode))
		ret = -EPERM;
	if (ret == 0 && in.nlink >= INODE_LINK_MAX)
		ret = -EMLINK;
	if (ret == 0 && in.nlink == 0)
		ret = -ENOENT;
	if (ret == 0)
		ret = check_new_entry(it, newdir, name, len);
	if (ret == 0)
		ret = dir_check_link_fits(it, ino, newdir, name, len);
	if (ret == 0)
		ret = dir_link_add(tx, it, newdir, name, len, ino, inode_mode_to_dtype(in.mode));
	if (ret == 0)
		ret = inode_adjust(tx, it, ino, 1, TOUCH_CTIME);
	if (ret == 0)
		ret = inode_read(it, ino, &in);
	if (ret == 0)
		inode_to_attr(it, ino, &in, attr);
	return inode_update_end(tx, ret);
}

/* Find an existing entry to remove: `dir` a directory, `name` a real name in it. */
static int find_victim(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		       struct dentry *e, struct inode *child)
{
	struct inode d;
	int ret;

	if (len > INODE_NAME_MAX)
		return -ENAMETOOLONG;
	ret = inode_read_dir(it, dir, &d);
	if (ret < 0)
		return ret;
	ret = dir_check_new_name(name, len);
	if (ret < 0)
		return ret;
	ret = dir_find(it, dir, name, len, e);
	if (ret < 0)
		return ret;
	if (e->type & DIR_ENTRY_SUBVOL) {
		/* Not an inode of this tree: callers see a directory and must check e->type. */
		memset(child, 0, sizeof(*child));
		child->mode = S_IFDIR;
		return 0;
	}
	ret = inode_read(it, e->child, child);
	if (ret == -ENOENT)
		return inode_corrupt(it, dir, "directory entry names a missing inode");
	return ret;
}

/* Unlink a checked entry: drop its link, and the inode with its last link. */
static int remove_entry(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir,
			const char *name, size_t len, uint64_t ino, const struct inode *child)
{
	bool isdir = S_ISDIR(child->mode);
	int ret = dir_link_remove(tx, it, dir, name, len, ino);

	if (ret < 0)
		return ret;
	if (isdir) {
		ret = inode_adjust(tx, it, dir, -1, 0);   /* the child's ".." is gone */
		if (ret == 0)
			ret = inode_last_link_gone(tx, it, ino);
		return ret;
	}
	if (child->nlink <= 1)
		return inode_last_link_gone(tx, it, ino);
	return inode_adjust(tx, it, ino, -1, TOUCH_CTIME);
}

/* Tree blocks an unlink of `ino` may allocate: the link's items, plus freeing the inode's
 * (at most a batch of them: a bigger inode is freed in batches afterwards). */
static int unlink_cost(struct inode_tree *it, uint64_t ino, const struct inode *child,
		       uint64_t *nodes)
{
	uint64_t n = 0;
	int ret = 0;

	if (S_ISDIR(child->mode) || child->nlink <= 1)
		ret = inode_count_items(it, ino, INODE_DROP_INLINE + 1, &n);
	*nodes = 8 * cowfs_update_nodes(inode_btree(it)) +
		 inode_drop_nodes(it, n < INODE_DROP_INLINE ? n : INODE_DROP_INLINE);
	return ret;
}

/* Shared by unlink and rmdir: `want_dir` says which kind the entry must be. */
static int remove_name(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		       bool want_dir)
{
	struct cowfs_trans *tx;
	struct dentry e;
	struct inode child;
	uint64_t nodes = 0;
	int ret;

	/* Check under the lock, then reserve (which may commit), then check again. */
	inode_lock_read(it);
	ret = find_victim(it, dir, name, len, &e, &child);
	if (ret == 0 && (e.type & DIR_ENTRY_SUBVOL))
		ret = want_dir ? -EPERM : -EISDIR;   /* a subvolume goes by subvol_unlink */
	if (ret == 0)
		ret = unlink_cost(it, e.child, &child, &nodes);
	inode_unlock_read(it);
	if (ret < 0)
		return ret;
	ret = inode_update_begin_nodes(it, ALLOC_PRIVILEGED, nodes, &tx);
	if (ret < 0)
		return ret;
	ret = find_victim(it, dir, name, len, &e, &child);
	if (ret == 0 && (e.type & DIR_ENTRY_SUBVOL))
		ret = want_dir ? -EPERM : -EISDIR;
	if (ret == 0 && want_dir && !S_ISDIR(child.mode))
		ret = -ENOTDIR;
	if (ret == 0 && !want_dir && S_ISDIR(child.mode))
		ret = -EISDIR;
	if (ret == 0 && want_dir)
		ret = dir_is_empty(it, e.child);
	if (ret == 0)
		ret = unlink_cost(it, e.child, &child, &nodes);
	if (ret == 0)
		ret = cowfs_reserve(tx, nodes);
	if (ret == 0)
		ret = remove_entry(tx, it, dir, name, len, e.child, &child);
	inode_update_end(tx, ret);
	return ret == 0 ? inode_orphan_reap(it, e.child) : ret;
}

int inode_unlink(struct inode_tree *it, uint64_t dir, const char *name, size_t len)
{
	return remove_name(it, dir, name, len, false);
}

int inode_rmdir(struct inode_tree *it, uint64_t dir, const char *name, size_t len)
{
	return remove_name(it, dir, name, len, true);
}

/* ---- rename ------------------------------------------------------------------------------------ */

struct rename_side {
	uint64_t dir;
	const char *name;
	size_t len;
	struct dentry e;
	struct inode in;
	bool exists;
};

static int rename_find(struct inode_tree *it, struct rename_side *s, bool must_exist)
{
	int ret = find_victim(it, s->dir, s->name, s->len, &s->e, &s->in);

	s->exists = ret == 0;
	if (ret == -ENOENT && !must_exist) {
		/* -ENOENT may also mean a missing directory: tell them apart. */
		struct inode d;
		return inode_read_dir(it, s->dir, &d);
	}
	return ret;
}

/* A subvolume moves within its parent's tree; it neither replaces nor is replaced by
 * another subvolume, and does not take part in an exchange. */
static int rename_check_subvol(struct inode_tree *it, struct rename_side *dst, unsigned flags)
{
	if ((flags & INODE_RENAME_EXCHANGE) || (dst->exists && (dst->e.type & DIR_ENTRY_SUBVOL)))
		return -EBUSY;
	if (!dst->exists)
		return 0;
	if (flags & INODE_RENAME_NOREPLACE)
		return -EEXIST;
	if (!S_ISDIR(dst->in.mode))
		return -ENOTDIR;
	return dir_is_empty(it, dst->e.child);
}

/* Move subvolume entry `s` to `to` as `name`: the entries, and its ROOT_REF/ROOT_BACKREF. */
static int rename_move_subvol(struct cowfs_trans *tx, struct inode_tree *it,
			      const struct rename_side *s, uint64_t to, const char *name,
			      size_t len)
{
	struct subvol_info si;
	uint64_t index;
	int ret = cowfs_subvol_get(it->fs, s->e.child, &si);

	if (ret == 0 && (si.parent != inode_tree_subvol(it) || si.dir != s->dir))
		ret = inode_corrupt(it, s->dir, "subvolume entry disagrees with its root backref");
	if (ret == 0)
		ret = dir_subvol_unlink(tx, it, s->dir, s->name, s->len, si.index);
	if (ret == 0)
		ret = dir_subvol_link(tx, it, to, name, len, s->e.child, &index);
	if (ret == 0)
		ret = cowfs_subvol_move(tx, s->e.child, inode_tree_subvol(it), to, index, name, len);
	return ret;
}

/* Everything rename checks before changing anything. *noop: nothing to do. */
static int rename_check(struct inode_tree *it, struct rename_side *src, struct rename_side *dst,
			unsigned flags, bool *noop)
{
	bool exchange = flags & INODE_RENAME_EXCHANGE;
	int ret = rename_find(it, src, true);

	if (ret == 0)
		ret = rename_find(it, dst, exchange);
	if (ret < 0)
		return ret;
	*noop = false;
	if (src->e.type & DIR_ENTRY_SUBVOL)
		return rename_check_subvol(it, dst, flags);
	if (dst->exists && (dst->e.type & DIR_ENTRY_SUBVOL))
		return -EBUSY;   /* a subvolume is not replaced by a rename */
	if (dst->exists && dst->e.child == src->e.child) {
		*noop = true;   /* two names of one inode: POSIX says do nothing */
		return 0;
	}
	if (dst->exists && !exchange) {
		if (flags & INODE_RENAME_NOREPLACE)
			return -EEXIST;
		if (S_ISDIR(src->in.mode) && !S_ISDIR(dst->in.mode))
			return -ENOTDIR;
		if (!S_ISDIR(src->in.mode) && S_ISDIR(dst->in.mode))
			return -EISDIR;
		if (S_ISDIR(dst->in.mode)) {
			ret = dir_is_empty(it, dst->e.child);
			if (ret < 0)
				return ret;
		}
	}
	if (S_ISDIR(src->in.mode) && src->dir != dst->dir) {
		ret = dir_check_not_below(it, dst->dir, src->e.child);
		if (ret < 0)
			return ret;
	}
	if (exchange && S_ISDIR(dst->in.mode) && src->dir != dst->dir) {
		ret = dir_check_not_below(it, src->dir, dst->e.child);
		if (ret < 0)
			return ret;
	}
	if (!dst->exists || !exchange)
		return dir_check_link_fits(it, src->e.child, dst->dir, dst->name, dst->len);
	ret = dir_check_link_fits(it, src->e.child, dst->dir, dst->name, dst->len);
	if (ret == 0)
		ret = dir_check_link_fits(it, dst->e.child, src->dir, src->name, src->len);
	return ret;
}

/* Move the entry of `s` (a link of s->e.child) from s->dir to `to` as `name`. */
static int rename_move(struct cowfs_trans *tx, struct inode_tree *it, const struct rename_side *s,
		       uint64_t to, const char *name, size_t len)
{
	int ret = dir_link_remove(tx, it, s->dir, s->name, s->len, s->e.child);

	if (ret == 0)
		ret = dir_link_add(tx, it, to, name, len, s->e.child, s->e.type);
	if (ret == 0)
		ret = inode_adjust(tx, it, s->e.child, 0, TOUCH_CTIME);
	if (ret == 0 && S_ISDIR(s->in.mode) && s->dir != to) {
		/* The directory's ".." now counts in its new parent. */
		ret = inode_adjust(tx, it, s->dir, -1, 0);
		if (ret == 0)
			ret = inode_adjust(tx, it, to, 1, 0);
	}
	return ret;
}

static int rename_exchange(struct cowfs_trans *tx, struct inode_tree *it,
			   const struct rename_side *src, const struct rename_side *dst)
{
	/* Remove both names first so that each can be added back with the other inode. */
	int ret = dir_link_remove(tx, it, src->dir, src->name, src->len, src->e.child);

	if (ret == 0)
		ret = dir_link_remove(tx, it, dst->dir, dst->name, dst->len, dst->e.child);
	if (ret == 0)
		ret = dir_link_add(tx, it, dst->dir, dst->name, dst->len, src->e.child,
				   src->e.type);
	if (ret == 0)
		ret = dir_link_add(tx, it, src->dir, src->name, src->len, dst->e.child,
				   dst->e.type);
	if (ret == 0)
		ret = inode_adjust(tx, it, src->e.child, 0, TOUCH_CTIME);
	if (ret == 0)
		ret = inode_adjust(tx, it, dst->e.child, 0, TOUCH_CTIME);
	if (ret == 0 && src->dir != dst->dir) {
		int moved = (S_ISDIR(src->in.mode) ? 1 : 0) - (S_ISDIR(dst->in.mode) ? 1 : 0);
		if (moved) {
			ret = inode_adjust(tx, it, src->dir, -moved, 0);
			if (ret == 0)
				ret = inode_adjust(tx, it, dst->dir, moved, 0);
		}
	}
	return ret;
}

/*
 * RENAME_WHITEOUT: where the source was, a whiteout (a character device 0/0 of mode 0, as
 * the kernel's vfs_whiteout makes), owned by the caller (the group of a setgid directory).
 * overlayfs leaves these in its upper layer to hide a lower file.
 */
static int add_whiteout(struct cowfs_trans *tx, struct inode_tree *it,
			const struct rename_side *src, uint32_t uid, uint32_t gid)
{
	struct inode in, d;
	uint64_t ino;
	int ret = inode_read_dir(it, src->dir, &d);

	if (ret == 0)
		ret = inode_alloc_ino(it, &ino);
	if (ret < 0)
		return ret;
	if (d.mode & S_ISGID)
		gid = d.gid;
	inode_init_new(tx, &in, S_IFCHR, 1, uid, gid, 0);
	it->next_ino = ino + 1;
	ret = inode_insert(tx, it, ino, &in);
	if (ret == 0)
		ret = dir_link_add(tx, it, src->dir, src->name, src->len, ino, DT_CHR);
	return ret;
}

static int rename_apply(struct cowfs_trans *tx, struct inode_tree *it, struct rename_side *src,
			struct rename_side *dst, unsigned flags, uint32_t uid, uint32_t gid)
{
	int ret;

	if (flags & INODE_RENAME_EXCHANGE)
		return rename_exchange(tx, it, src, dst);
	if (dst->exists) {
		ret = remove_entry(tx, it, dst->dir, dst->name, dst->len, dst->e.child, &dst->in);
		if (ret < 0)
			return ret;
	}
	if (src->e.type & DIR_ENTRY_SUBVOL)
		ret = rename_move_subvol(tx, it, src, dst->dir, dst->name, dst->len);
	else
		ret = rename_move(tx, it, src, dst->dir, dst->name, dst->len);
	if (ret == 0 && (flags & INODE_RENAME_WHITEOUT))
		ret = add_whiteout(tx, it, src, uid, gid);
	return ret;
}

int inode_rename(struct inode_tree *it, uint64_t olddir, const char *oldname, size_t oldlen,
		 uint64_t newdir, const char *newname, size_t newlen, unsigned flags)
{
	return inode_rename_as(it, olddir, oldname, oldlen, newdir, newname, newlen, flags, 0, 0);
}

int inode_rename_as(struct inode_tree *it, uint64_t olddir, const char *oldname, size_t oldlen,
		    uint64_t newdir, const char *newname, size_t newlen, unsigned flags,
		    uint32_t uid, uint32_t gid)
{
	struct cowfs_trans *tx;
	struct rename_side src = { olddir, oldname, oldlen };
	struct rename_side dst = { newdir, newname, newlen };
	uint64_t nodes = 0;
	bool noop;
	int ret;

	if (flags & ~(INODE_RENAME_NOREPLACE | INODE_RENAME_EXCHANGE | INODE_RENAME_WHITEOUT) ||
	    ((flags & INODE_RENAME_EXCHANGE) &&
	     (flags & (INODE_RENAME_NOREPLACE | INODE_RENAME_WHITEOUT))))
		return -EINVAL;
	/* Check under the lock to learn what a replaced target costs, then check again. */
	inode_lock_read(it);
	ret = rename_check(it, &src, &dst, flags, &noop);
	if (ret == 0 && dst.exists && !(flags & INODE_RENAME_EXCHANGE))
		ret = unlink_cost(it, dst.e.child, &dst.in, &nodes);
	inode_unlock_read(it);
	if (ret < 0 || noop)
		return ret;
	/* A whiteout is one more inode and link: what make_node reserves for one. */
	ret = inode_update_begin_nodes(it, ALLOC_PRIVILEGED,
				       nodes + (flags & INODE_RENAME_WHITEOUT ? 32 : 24) *
				       cowfs_update_nodes(inode_btree(it)), &tx);
	if (ret < 0)
		return ret;
	ret = rename_check(it, &src, &dst, flags, &noop);
	if (ret == 0 && !noop)
		ret = rename_apply(tx, it, &src, &dst, flags, uid, gid);
	inode_update_end(tx, ret);
	/* A replaced target too big to free in the rename's transaction is an orphan now. */
	if (ret == 0 && dst.exists && !(flags & INODE_RENAME_EXCHANGE))
		ret = inode_orphan_reap(it, dst.e.child);
	return ret;
}
