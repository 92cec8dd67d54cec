/*
 * Inodes and directories on top of one fs tree. Each namespace operation is checked in full
 * first, then applied as a sequence of small item updates inside one transaction:
 *
 *   link_add     DIR_ITEM entry + DIR_INDEX item + INODE_REF entry, directory times/index
 *   link_remove  the same three removed (the INODE_REF entry tells the DIR_INDEX offset)
 *   inode_adjust read-modify-write of one inode item (nlink, times)
 *   inode_drop   delete every item of an inode whose last link went away
 *
 * Every helper re-reads what it changes, so operations that touch one inode twice (a rename
 * within one directory) never write a stale copy.
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
#include "fs/inode/icache.h"
#include "fs/inode/xattr_internal.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

/* ---- small helpers ----------------------------------------------------------------------- */

int inode_corrupt(struct inode_tree *it, uint64_t ino, const char *what)
{
	const struct btree *t = inode_btree(it);

	/* The leaf the malformed item came from (bt_item_leaf): the block to look at. */
	cowfs_report(it->fs, bt_item_leaf(t),
		     "fs tree %" PRIu64 " leaf %" PRIu64 " (level 0) inode %"
		     PRIu64 ": %s", t->owner, bt_item_leaf(t), ino, what);
	return -EUCLEAN;
}

struct btree *inode_btree(struct inode_tree *it)
{
	return &it->root->t;
}

uint8_t inode_mode_to_dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

struct timespec inode_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

uint64_t dir_name_hash(const char *name, size_t len)
{
	return cowfs_csum(name, len);
}

/* A name a new link may have: 1..255 bytes, no '/' or NUL, not "." or "..". */
int dir_check_new_name(const char *name, size_t len)
{
	if (len > INODE_NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
		return -EINVAL;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	return 0;
}

/* Read a whole item into a malloc'ed buffer. */
int inode_item_read(struct inode_tree *it, const struct bt_key *k, uint8_t **buf,
		     uint32_t *len)
{
	uint32_t n;
	int ret = bt_lookup(inode_btree(it), k, NULL, 0, &n);

	if (ret < 0)
		return ret;
	*buf = malloc(n ? n : 1);
	if (!*buf)
		return -ENOMEM;
	ret = bt_lookup(inode_btree(it), k, *buf, n, len);
	if (ret < 0) {
		free(*buf);
		*buf = NULL;
	}
	return ret;
}

/* ---- inode items --------------------------------------------------------------------------- */

void inode_ts_get(struct timespec *ts, const struct inode_timespec *d)
{
	ts->tv_sec = (time_t)get_le64(&d->sec);
	ts->tv_nsec = (long)get_le32(&d->nsec);
}

void inode_ts_put(struct inode_timespec *d, const struct timespec *ts)
{
	put_le64(&d->sec, (uint64_t)ts->tv_sec);
	put_le32(&d->nsec, (uint32_t)ts->tv_nsec);
}

static void inode_encode(struct inode_item *d, const struct inode *in)
{
	memset(d, 0, sizeof(*d));
	d->version = INODE_ITEM_VERSION;
	put_le64(&d->generation, in->generation);
	put_le64(&d->size, in->size);
	put_le64(&d->nbytes, in->nbytes);
	put_le32(&d->nlink, in->nlink);
	put_le32(&d->uid, in->uid);
	put_le32(&d->gid, in->gid);
	put_le32(&d->mode, in->mode);
	put_le64(&d->rdev, in->rdev);
	put_le64(&d->flags, in->flags);
	put_le64(&d->next_index, in->next_index);
	inode_ts_put(&d->atime, &in->atime);
	inode_ts_put(&d->mtime, &in->mtime);
	inode_ts_put(&d->ctime, &in->ctime);
	inode_ts_put(&d->otime, &in->otime);
}

int inode_decode(struct inode_tree *it, uint64_t ino, const struct inode_item *d, uint32_t len,
		 struct inode *in)
{
	if (len != sizeof(*d))
		return inode_corrupt(it, ino, "inode item has the wrong size");
	if (d->version != INODE_ITEM_VERSION)
		return inode_corrupt(it, ino, "inode item has an unknown version");
	in->generation = get_le64(&d->generation);
	in->size = get_le64(&d->size);
	in->nbytes = get_le64(&d->nbytes);
	in->nlink = get_le32(&d->nlink);
	in->uid = get_le32(&d->uid);
	in->gid = get_le32(&d->gid);
	in->mode = get_le32(&d->mode);
	in->rdev = get_le64(&d->rdev);
	in->flags = get_le64(&d->flags);
	in->next_index = get_le64(&d->next_index);
	inode_ts_get(&in->atime, &d->atime);
	inode_ts_get(&in->mtime, &d->mtime);
	inode_ts_get(&in->ctime, &d->ctime);
	inode_ts_get(&in->otime, &d->otime);
	if (S_ISDIR(in->mode) && in->next_index < DIR_FIRST_INDEX)
		return inode_corrupt(it, ino, "directory index counter below 2");
	return 0;
}

int inode_read(struct inode_tree *it, uint64_t ino, struct inode *in)
{
	struct bt_key k = { ino, INODE_ITEM_KEY, 0 };
	struct inode_item d;
	uint32_t len;
	int ret = bt_lookup(inode_btree(it), &k, &d, sizeof(d), &len);

	if (ret < 0)
		return ret;
	return inode_decode(it, ino, &d, len, in);
}

int inode_write(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		const struct inode *in)
{
	struct bt_key k = { ino, INODE_ITEM_KEY, 0 };
	struct inode_item d;

	inode_encode(&d, in);
	return bt_update(&tx->bt, inode_btree(it), &k, &d, sizeof(d));
}

int inode_insert(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		 const struct inode *in)
{
	struct bt_key k = { ino, INODE_ITEM_KEY, 0 };
	struct inode_item d;

	inode_encode(&d, in);
	return bt_insert(&tx->bt, inode_btree(it), &k, &d, sizeof(d));
}

int inode_read_dir(struct inode_tree *it, uint64_t dir, struct inode *in)
{
	int ret = inode_read(it, dir, in);

	if (ret < 0)
		return ret;
	return S_ISDIR(in->mode) ? 0 : -ENOTDIR;
}

void inode_to_attr(const struct inode_tree *it, uint64_t ino, const struct inode *in,
		   struct cowfs_attr *a)
{
	a->ino = ino;
	a->subvol = inode_tree_subvol(it);
	a->mode = in->mode;
	a->nlink = in->nlink;
	a->uid = in->uid;
	a->gid = in->gid;
	a->rdev = in->rdev;
	a->size = in->size;
	a->blocks = (in->nbytes + 511) / 512;
	a->atime = in->atime;
	a->mtime = in->mtime;
	a->ctime = in->ctime;
	a->btime = in->otime;
	/* The root is never freed, so no reused number needs telling apart from it; and FUSE's
	 * root has generation 0 (the kernel warns "root generation should be zero" otherwise). */
	a->generation = ino == INODE_ROOT_INO ? 0 : in->generation;
}

void inode_init_new(struct cowfs_trans *tx, struct inode *in, uint32_t mode, uint32_t nlink,
		    uint32_t uid, uint32_t gid, uint64_t rdev)
{
	memset(in, 0, sizeof(*in));
	in->generation = cowfs_trans_id(tx);
	in->mode = mode;
	in->nlink = nlink;
	in->uid = uid;
	in->gid = gid;
	in->rdev = rdev;
	in->next_index = S_ISDIR(mode) ? DIR_FIRST_INDEX : 0;
	in->atime = in->mtime = in->ctime = in->otime = inode_now();
}

/* Change an inode's link count and times. */
int inode_adjust(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, int nlink_delta,
		 unsigned touch)
{
	struct inode in;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	in.nlink = (uint32_t)((int64_t)in.nlink + nlink_delta);
	if (touch) {
		struct timespec t = inode_now();
		if (touch & TOUCH_CTIME)
			in.ctime = t;
		if (touch & TOUCH_MTIME)
			in.mtime = t;
	}
	return inode_write(tx, it, ino, &in);
}

/* Highest objectid of any item below the reserved range: every item belongs to an inode. */
static int find_next_ino(struct inode_tree *it)
{
	struct bt_cursor c;
	struct bt_key k = { INODE_LAST_INO, UINT8_MAX, UINT64_MAX };
	int ret;

	bt_cursor_init(&c, inode_btree(it));
	ret = bt_cursor_seek(&c, &k, BT_SEEK_LE);
	if (ret == 0)
		it->next_ino = c.key.objectid + 1;
	else if (ret == -ENOENT)
		ret = 0;
	bt_cursor_release(&c);
	if (it->next_ino <= INODE_ROOT_INO)
		it->next_ino = INODE_ROOT_INO + 1;
	return ret;
}

int inode_alloc_ino(struct inode_tree *it, uint64_t *ino)
{
	if (it->next_ino == 0) {
		int ret = find_next_ino(it);
		if (ret < 0)
			return ret;
	}
	if (it->next_ino > INODE_MAX_INO)
		return -ENOSPC;
	*ino = it->next_ino;
	return 0;
}

/* ---- transactions ----------------------------------------------------------------------------- */

void inode_lock_read(struct inode_tree *it)
{
	cowfs_lock(it->fs);
}

void inode_unlock_read(struct inode_tree *it)
{
	cowfs_unlock(it->fs);
}

/* Begin an update that may allocate `nodes` tree blocks. */
static int update_begin_nodes(struct inode_tree *it, enum alloc_class cls, uint64_t nodes,
			      struct cowfs_trans **txp)
{
	struct cowfs_trans *tx;
	int ret;

	if (inode_tree_read_only(it))
		return -EROFS;
	tx = cowfs_trans_begin(it->fs, cls);
	ret = cowfs_reserve(tx, nodes);
	if (ret < 0)
		return cowfs_trans_end(tx, ret);
	*txp = tx;
	return 0;
}

/* Begin an update of `items` items the fsync log can express (the caller says what changed:
 * log_note_*). */
static int update_begin_loggable(struct inode_tree *it, enum alloc_class cls, uint64_t items,
				 struct cowfs_trans **txp)
{
	return update_begin_nodes(it, cls, items * cowfs_update_nodes(inode_btree(it)), txp);
}

int inode_update_begin_unlogged(struct inode_tree *it, enum alloc_class cls, uint64_t items,
				struct cowfs_trans **txp)
{
	return update_begin_loggable(it, cls, items, txp);
}

/*
 * Begin any other update. Namespace changes, xattrs, links, orphans: the fsync log expresses
 * none of them, so until the next commit fsync commits (fsync_log.c).
 */
int inode_update_begin_nodes(struct inode_tree *it, enum alloc_class cls, uint64_t nodes,
			     struct cowfs_trans **txp)
{
	int ret = update_begin_nodes(it, cls, nodes, txp);

	if (ret == 0)
		cowfs_log_bar(it->fs);
	return ret;
}

int inode_update_begin(struct inode_tree *it, enum alloc_class cls, uint64_t items,
		       struct cowfs_trans **txp)
{
	return inode_update_begin_nodes(it, cls, items * cowfs_update_nodes(inode_btree(it)), txp);
}

uint64_t inode_tree_subvol(const struct inode_tree *it)
{
	return it->root->t.owner;
}

/* ---- public operations ---------------------------------------------------------------------------- */

void inode_tree_init(struct inode_tree *it, struct cowfs *fs, struct cowfs_root *root)
{
	it->fs = fs;
	it->root = root;
	it->next_ino = 0;
	it->icache = NULL;
	it->noreflink = false;
	it->read_only = false;
	it->atime_mode = INODE_ATIME_RELATIME;
	it->nodiratime = false;
	it->share_stats = (struct file_share_stats){ 0 };
	bufpool_init(&it->read_bufs, INODE_READ_BUFS_KEPT);
}

int inode_make_root(struct cowfs *fs, struct cowfs_root *root)
{
	struct inode_tree it;
	struct cowfs_trans *tx;
	struct inode in;
	int ret;

	inode_tree_init(&it, fs, root);
	ret = inode_update_begin(&it, ALLOC_NORMAL, 1, &tx);
	if (ret < 0)
		return ret;
	inode_init_new(tx, &in, S_IFDIR | 0755, 2, 0, 0, 0);
	ret = inode_insert(tx, &it, INODE_ROOT_INO, &in);
	return inode_update_end(tx, ret);
}

int inode_getattr(struct inode_tree *it, uint64_t ino, struct cowfs_attr *attr)
{
	struct inode in;
	int ret;

	inode_lock_read(it);
	ret = inode_read(it, ino, &in);
	if (ret == 0) {
		inode_to_attr(it, ino, &in, attr);
		attr->blocks += inode_dirty_bytes(it, ino) / 512;
	}
	inode_unlock_read(it);
	return ret;
}

/*
 * The setuid/setgid bits a setattr by `c` drops: a truncate is a data change, a chown an
 * owner change. A mode that comes with them is the FUSE kernel's own guess at the bits to
 * drop ("setuid, and setgid if group-executable": no chmod(2) comes with a size or owner),
 * which misses a setgid the caller's groups decide on: the rule still applies on top. A
 * mode keeps setgid only for a caller in the (new) group: the kernel checks that itself only
 * with default_permissions.
 */
static uint32_t setattr_privs_dropped(const struct inode *in, unsigned mask,
				      const struct cowfs_attr *attr, const struct inode_changer *c)
{
	uint32_t drop = 0;

	if (!c)
		return 0;
	if (mask & INODE_SET_MODE)
		drop |= inode_privs_dropped((in->mode & S_IFMT) | (attr->mode & 07777),
					    mask & INODE_SET_GID ? attr->gid : in->gid,
					    INODE_CHANGE_MODE, c);
	if (mask & INODE_SET_SIZE)
		drop |= inode_privs_dropped(in->mode, in->gid, INODE_CHANGE_DATA, c);
	if (mask & (INODE_SET_UID | INODE_SET_GID))
		drop |= inode_privs_dropped(in->mode, in->gid, INODE_CHANGE_OWNER, c);
	return drop;
}

int inode_setattr(struct inode_tree *it, uint64_t ino, unsigned mask,
		  const struct cowfs_attr *attr)
{
	return inode_setattr_as(it, ino, mask, attr, NULL);
}

int inode_setattr_as(struct inode_tree *it, uint64_t ino, unsigned mask,
		     const struct cowfs_attr *attr, const struct inode_changer *c)
{
	struct cowfs_trans *tx;
	struct inode in;
	uint32_t drop = 0;
	int ret = mask & INODE_SET_SIZE ? file_shrink_in_batches(it, ino, attr->size) : 0;

	if (ret < 0)
		return ret;
	if (mask & INODE_SET_SIZE)
		ret = file_size_update_begin(it, ino, attr->size, &tx);
	else
		ret = update_begin_loggable(it, ALLOC_NORMAL, 3, &tx);   /* inode, access ACL */
	if (ret < 0)
		return ret;
	ret = inode_read(it, ino, &in);
	if (ret == 0)
		drop = setattr_privs_dropped(&in, mask, attr, c);
	/* Dropped bits need no commit: the fsync log records the mode as it is then. */
	if (ret == 0)
		ret = log_note_setattr(it, ino, &in, mask, attr);
	if (ret == 0 && (mask & INODE_SET_SIZE))
		ret = file_set_size_locked(tx, it, ino, &in, attr->size);
	if (ret == 0 && (mask & INODE_SET_MODE)) {
		in.mode = (in.mode & S_IFMT) | (attr->mode & 07777);
		/* An access ACL says what the permission bits say: both change together. */
		ret = acl_chmod_locked(tx, it, ino, in.mode);
	}
	if (ret == 0) {
		in.mode &= ~drop;
		if (mask & INODE_SET_UID)
			in.uid = attr->uid;
		if (mask & INODE_SET_GID)
			in.gid = attr->gid;
		if (mask & INODE_SET_ATIME)
			in.atime = attr->atime;
		if (mask & INODE_SET_MTIME)
			in.mtime = attr->mtime;
		in.ctime = inode_now();
		ret = inode_write(tx, it, ino, &in);
	}
	return inode_update_end(tx, ret);
}
