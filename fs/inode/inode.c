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
#include "fs/inode/inode.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/extent/extent_format.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

/* An inode item in host byte order. */
struct inode {
	uint64_t generation, size, nbytes;
	uint32_t nlink, uid, gid, mode;
	uint64_t rdev, flags, next_index;
	struct timespec atime, mtime, ctime, otime;
};

/* A directory entry found by name. */
struct dentry {
	uint64_t child;
	uint8_t type;
};

/* What an update touches in inode_adjust. */
#define TOUCH_CTIME 0x1u
#define TOUCH_MTIME 0x2u

/* The most levels a rename's ancestor walk climbs before calling the tree corrupt. */
#define MAX_DEPTH 100000

/* ---- small helpers ----------------------------------------------------------------------- */

static int corrupt(struct inode_tree *it, uint64_t ino, const char *what)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "fs tree %" PRIu64 " inode %" PRIu64 ": %s",
		 it->root->t.owner, ino, what);
	if (it->fs->report)
		it->fs->report(it->fs->report_arg, 0, msg);
	return -EUCLEAN;
}

static struct btree *tree(struct inode_tree *it)
{
	return &it->root->t;
}

static uint8_t mode_to_dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

static struct timespec now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static uint64_t name_hash(const char *name, size_t len)
{
	return cowfs_csum(name, len);
}

/* A name a new link may have: 1..255 bytes, no '/' or NUL, not "." or "..". */
static int check_new_name(const char *name, size_t len)
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
static int item_read(struct inode_tree *it, const struct bt_key *k, uint8_t **buf,
		     uint32_t *len)
{
	uint32_t n;
	int ret = bt_lookup(tree(it), k, NULL, 0, &n);

	if (ret < 0)
		return ret;
	*buf = malloc(n ? n : 1);
	if (!*buf)
		return -ENOMEM;
	ret = bt_lookup(tree(it), k, *buf, n, len);
	if (ret < 0) {
		free(*buf);
		*buf = NULL;
	}
	return ret;
}

/* ---- inode items --------------------------------------------------------------------------- */

static void ts_get(struct timespec *ts, const struct inode_timespec *d)
{
	ts->tv_sec = (time_t)get_le64(&d->sec);
	ts->tv_nsec = (long)get_le32(&d->nsec);
}

static void ts_put(struct inode_timespec *d, const struct timespec *ts)
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
	ts_put(&d->atime, &in->atime);
	ts_put(&d->mtime, &in->mtime);
	ts_put(&d->ctime, &in->ctime);
	ts_put(&d->otime, &in->otime);
}

static int inode_decode(struct inode_tree *it, uint64_t ino, const struct inode_item *d,
			uint32_t len, struct inode *in)
{
	if (len != sizeof(*d))
		return corrupt(it, ino, "inode item has the wrong size");
	if (d->version != INODE_ITEM_VERSION)
		return corrupt(it, ino, "inode item has an unknown version");
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
	ts_get(&in->atime, &d->atime);
	ts_get(&in->mtime, &d->mtime);
	ts_get(&in->ctime, &d->ctime);
	ts_get(&in->otime, &d->otime);
	if (S_ISDIR(in->mode) && in->next_index < DIR_FIRST_INDEX)
		return corrupt(it, ino, "directory index counter below 2");
	return 0;
}

static int inode_read(struct inode_tree *it, uint64_t ino, struct inode *in)
{
	struct bt_key k = { ino, INODE_ITEM_KEY, 0 };
	struct inode_item d;
	uint32_t len;
	int ret = bt_lookup(tree(it), &k, &d, sizeof(d), &len);

	if (ret < 0)
		return ret;
	return inode_decode(it, ino, &d, len, in);
}

static int inode_write(struct inode_tree *it, uint64_t ino, const struct inode *in)
{
	struct bt_key k = { ino, INODE_ITEM_KEY, 0 };
	struct inode_item d;

	inode_encode(&d, in);
	return bt_update(&it->fs->trans, tree(it), &k, &d, sizeof(d));
}

static int inode_insert(struct inode_tree *it, uint64_t ino, const struct inode *in)
{
	struct bt_key k = { ino, INODE_ITEM_KEY, 0 };
	struct inode_item d;

	inode_encode(&d, in);
	return bt_insert(&it->fs->trans, tree(it), &k, &d, sizeof(d));
}

static int read_dir(struct inode_tree *it, uint64_t dir, struct inode *in)
{
	int ret = inode_read(it, dir, in);

	if (ret < 0)
		return ret;
	return S_ISDIR(in->mode) ? 0 : -ENOTDIR;
}

static void to_attr(uint64_t ino, const struct inode *in, struct cowfs_attr *a)
{
	a->ino = ino;
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
	a->generation = in->generation;
}

static void new_inode(struct inode_tree *it, struct inode *in, uint32_t mode, uint32_t nlink,
		      uint32_t uid, uint32_t gid, uint64_t rdev)
{
	memset(in, 0, sizeof(*in));
	in->generation = it->fs->trans.transid;
	in->mode = mode;
	in->nlink = nlink;
	in->uid = uid;
	in->gid = gid;
	in->rdev = rdev;
	in->next_index = S_ISDIR(mode) ? DIR_FIRST_INDEX : 0;
	in->atime = in->mtime = in->ctime = in->otime = now();
}

/* Change an inode's link count and times. */
static int inode_adjust(struct inode_tree *it, uint64_t ino, int nlink_delta, unsigned touch)
{
	struct inode in;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	in.nlink = (uint32_t)((int64_t)in.nlink + nlink_delta);
	if (touch) {
		struct timespec t = now();
		if (touch & TOUCH_CTIME)
			in.ctime = t;
		if (touch & TOUCH_MTIME)
			in.mtime = t;
	}
	return inode_write(it, ino, &in);
}

/* Highest objectid of any item below the reserved range: every item belongs to an inode. */
static int find_next_ino(struct inode_tree *it)
{
	struct bt_cursor c;
	struct bt_key k = { INODE_LAST_INO, UINT8_MAX, UINT64_MAX };
	int ret;

	bt_cursor_init(&c, tree(it));
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

static int alloc_ino(struct inode_tree *it, uint64_t *ino)
{
	if (it->next_ino == 0) {
		int ret = find_next_ino(it);
		if (ret < 0)
			return ret;
	}
	if (it->next_ino > INODE_LAST_INO)
		return -ENOSPC;
	*ino = it->next_ino;
	return 0;
}

/* ---- directory entries ---------------------------------------------------------------------- */

/* Walk the {dir_entry, name} array of a DIR_ITEM; *at gets the matching entry's offset. */
static int dir_item_find(struct inode_tree *it, uint64_t dir, const uint8_t *buf, uint32_t len,
			 const char *name, size_t nlen, uint32_t *at, uint32_t *esize)
{
	uint32_t off = 0;

	while (off < len) {
		const struct dir_entry *e = (const void *)(buf + off);
		uint32_t n;

		if (len - off < sizeof(*e))
			return corrupt(it, dir, "truncated directory entry");
		n = get_le16(&e->name_len);
		if (n == 0 || n > INODE_NAME_MAX || len - off - sizeof(*e) < n)
			return corrupt(it, dir, "directory entry with a bad name length");
		if (n == nlen && memcmp(buf + off + sizeof(*e), name, n) == 0) {
			*at = off;
			*esize = (uint32_t)sizeof(*e) + n;
			return 0;
		}
		off += (uint32_t)sizeof(*e) + n;
	}
	return -ENOENT;
}

static void dir_entry_encode(uint8_t *p, uint64_t child, uint8_t type, uint64_t transid,
			     const char *name, size_t len)
{
	struct dir_entry *e = (void *)p;

	put_le64(&e->child, child);
	e->type = type;
	put_le64(&e->transid, transid);
	put_le16(&e->name_len, (uint16_t)len);
	memcpy(p + sizeof(*e), name, len);
}

/* Find `name` in `dir` (not "." or ".."). */
static int dir_find(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		    struct dentry *out)
{
	struct bt_key k = { dir, DIR_ITEM_KEY, name_hash(name, len) };
	uint8_t *buf;
	uint32_t blen, at, esize;
	int ret = item_read(it, &k, &buf, &blen);

	if (ret < 0)
		return ret;
	ret = dir_item_find(it, dir, buf, blen, name, len, &at, &esize);
	if (ret == 0) {
		const struct dir_entry *e = (const void *)(buf + at);
		out->child = get_le64(&e->child);
		out->type = e->type;
	}
	free(buf);
	return ret;
}

/* Bytes a DIR_ITEM of `dir` would have after adding `name` (0 if the item does not exist). */
static int dir_item_size(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
			 uint32_t *size)
{
	struct bt_key k = { dir, DIR_ITEM_KEY, name_hash(name, len) };
	uint32_t n;
	int ret = bt_lookup(tree(it), &k, NULL, 0, &n);

	if (ret == -ENOENT) {
		*size = 0;
		return 0;
	}
	*size = n;
	return ret;
}

/* Size of the INODE_REF (ino, parent) now (0 if none). */
static int inode_ref_size(struct inode_tree *it, uint64_t ino, uint64_t parent, uint32_t *size)
{
	struct bt_key k = { ino, INODE_REF_KEY, parent };
	uint32_t n;
	int ret = bt_lookup(tree(it), &k, NULL, 0, &n);

	if (ret == -ENOENT) {
		*size = 0;
		return 0;
	}
	*size = n;
	return ret;
}

/* Whether a new link `name` of `ino` in `dir` fits in the items it extends. */
static int check_link_fits(struct inode_tree *it, uint64_t ino, uint64_t dir, const char *name,
			   size_t len)
{
	uint32_t max = bt_max_item_size(it->fs->bfs.nodesize), di = 0, ir = 0;
	int ret = dir_item_size(it, dir, name, len, &di);

	if (ret == 0)
		ret = inode_ref_size(it, ino, dir, &ir);
	if (ret < 0)
		return ret;
	if (di + sizeof(struct dir_entry) + len > max)
		return -ENOSPC;    /* a hash collision chain as long as a node: not in practice */
	if (ir + sizeof(struct inode_ref_entry) + len > max)
		return -EMLINK;
	return 0;
}

/* Append an entry to the array item `k` (creating it), keeping what is there. */
static int array_append(struct inode_tree *it, const struct bt_key *k, const uint8_t *entry,
			uint32_t esize)
{
	struct bt_trans *tx = &it->fs->trans;
	uint8_t *buf;
	uint32_t len;
	int ret = item_read(it, k, &buf, &len);

	if (ret == -ENOENT)
		return bt_insert(tx, tree(it), k, entry, esize);
	if (ret < 0)
		return ret;
	uint8_t *nbuf = realloc(buf, len + esize);
	if (!nbuf) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(nbuf + len, entry, esize);
	ret = bt_resize(tx, tree(it), k, len + esize);
	if (ret == 0)
		ret = bt_update(tx, tree(it), k, nbuf, len + esize);
	free(nbuf);
	return ret;
}

/* Cut bytes [at, at + esize) out of the array item `k` whose content is `buf` (len bytes). */
static int array_cut(struct inode_tree *it, const struct bt_key *k, uint8_t *buf, uint32_t len,
		     uint32_t at, uint32_t esize)
{
	struct bt_trans *tx = &it->fs->trans;
	int ret;

	if (esize == len)
		return bt_delete(tx, tree(it), k);
	memmove(buf + at, buf + at + esize, len - at - esize);
	ret = bt_resize(tx, tree(it), k, len - esize);
	if (ret == 0)
		ret = bt_update(tx, tree(it), k, buf, len - esize);
	return ret;
}

/* Walk an INODE_REF array for `name`; *index gets the link's DIR_INDEX offset. */
static int inode_ref_find(struct inode_tree *it, uint64_t ino, const uint8_t *buf, uint32_t len,
			  const char *name, size_t nlen, uint32_t *at, uint32_t *esize,
			  uint64_t *index)
{
	uint32_t off = 0;

	while (off < len) {
		const struct inode_ref_entry *e = (const void *)(buf + off);
		uint32_t n;

		if (len - off < sizeof(*e))
			return corrupt(it, ino, "truncated inode ref");
		n = get_le16(&e->name_len);
		if (n == 0 || n > INODE_NAME_MAX || len - off - sizeof(*e) < n)
			return corrupt(it, ino, "inode ref with a bad name length");
		if (n == nlen && memcmp(buf + off + sizeof(*e), name, n) == 0) {
			*at = off;
			*esize = (uint32_t)sizeof(*e) + n;
			*index = get_le64(&e->index);
			return 0;
		}
		off += (uint32_t)sizeof(*e) + n;
	}
	return corrupt(it, ino, "directory entry without a matching inode ref");
}

/* Take the next DIR_INDEX offset of `dir` and touch its times. */
static int dir_take_index(struct inode_tree *it, uint64_t dir, size_t name_len, int sign,
			  uint64_t *index)
{
	struct inode in;
	int ret = inode_read(it, dir, &in);

	if (ret < 0)
		return ret;
	if (index)
		*index = in.next_index++;
	/* Directory size as btrfs counts it: each name twice (DIR_ITEM and DIR_INDEX). */
	in.size = (uint64_t)((int64_t)in.size + sign * 2 * (int64_t)name_len);
	in.mtime = in.ctime = now();
	return inode_write(it, dir, &in);
}

/* Add the link `name` -> ino (of type `type`) in `dir`. Does not change ino's nlink. */
static int link_add(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		    uint64_t ino, uint8_t type)
{
	uint64_t transid = it->fs->trans.transid, index;
	uint8_t ebuf[sizeof(struct dir_entry) + INODE_NAME_MAX];
	uint8_t rbuf[sizeof(struct inode_ref_entry) + INODE_NAME_MAX];
	struct inode_ref_entry *r = (void *)rbuf;
	uint32_t esize = (uint32_t)(sizeof(struct dir_entry) + len);
	int ret = dir_take_index(it, dir, len, 1, &index);

	if (ret < 0)
		return ret;
	dir_entry_encode(ebuf, ino, type, transid, name, len);
	struct bt_key dk = { dir, DIR_ITEM_KEY, name_hash(name, len) };
	ret = array_append(it, &dk, ebuf, esize);
	if (ret < 0)
		return ret;
	struct bt_key xk = { dir, DIR_INDEX_KEY, index };
	ret = bt_insert(&it->fs->trans, tree(it), &xk, ebuf, esize);
	if (ret < 0)
		return ret;
	put_le64(&r->index, index);
	put_le16(&r->name_len, (uint16_t)len);
	memcpy(rbuf + sizeof(*r), name, len);
	struct bt_key rk = { ino, INODE_REF_KEY, dir };
	return array_append(it, &rk, rbuf, (uint32_t)(sizeof(*r) + len));
}

/* Remove the link `name` -> ino from `dir`. Does not change ino's nlink. */
static int link_remove(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		       uint64_t ino)
{
	struct bt_key dk = { dir, DIR_ITEM_KEY, name_hash(name, len) };
	struct bt_key rk = { ino, INODE_REF_KEY, dir };
	uint8_t *buf;
	uint32_t blen, at, esize;
	uint64_t index;
	int ret = item_read(it, &rk, &buf, &blen);

	if (ret == -ENOENT)
		return corrupt(it, ino, "linked from a directory without an inode ref");
	if (ret < 0)
		return ret;
	ret = inode_ref_find(it, ino, buf, blen, name, len, &at, &esize, &index);
	if (ret == 0)
		ret = array_cut(it, &rk, buf, blen, at, esize);
	free(buf);
	if (ret < 0)
		return ret;

	struct bt_key xk = { dir, DIR_INDEX_KEY, index };
	ret = bt_delete(&it->fs->trans, tree(it), &xk);
	if (ret == -ENOENT)
		return corrupt(it, dir, "directory entry without its index item");
	if (ret < 0)
		return ret;

	ret = item_read(it, &dk, &buf, &blen);
	if (ret == -ENOENT)
		return corrupt(it, dir, "inode ref without its directory item");
	if (ret < 0)
		return ret;
	ret = dir_item_find(it, dir, buf, blen, name, len, &at, &esize);
	if (ret == -ENOENT)
		ret = corrupt(it, dir, "inode ref without its directory entry");
	if (ret == 0)
		ret = array_cut(it, &dk, buf, blen, at, esize);
	free(buf);
	if (ret < 0)
		return ret;
	return dir_take_index(it, dir, len, -1, NULL);
}

/* Count the items of `ino` (all of them belong to it: objectid == ino). */
static int inode_count_items(struct inode_tree *it, uint64_t ino, uint64_t *count)
{
	struct bt_cursor c;
	struct bt_key k = { ino, 0, 0 };
	int ret;

	*count = 0;
	bt_cursor_init(&c, tree(it));
	for (ret = bt_cursor_seek(&c, &k, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		if (c.key.objectid != ino)
			break;
		(*count)++;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

/* Delete every item of `ino`: inode item, refs, file extents (dropping their references). */
static int inode_drop(struct inode_tree *it, uint64_t ino)
{
	struct bt_key first = { ino, 0, 0 };
	struct bt_cursor c;
	int ret;

	bt_cursor_init(&c, tree(it));
	for (;;) {
		struct bt_key k;
		ret = bt_cursor_seek(&c, &first, BT_SEEK_GE);
		if (ret < 0)
			break;
		k = c.key;
		bt_cursor_release(&c);
		if (k.objectid != ino)
			break;
		ret = bt_delete(&it->fs->trans, tree(it), &k);
		if (ret < 0)
			break;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

/* Whether directory `dir` has no entries. */
static int dir_is_empty(struct inode_tree *it, uint64_t dir)
{
	struct bt_cursor c;
	struct bt_key k = { dir, DIR_INDEX_KEY, 0 };
	int ret;

	bt_cursor_init(&c, tree(it));
	ret = bt_cursor_seek(&c, &k, BT_SEEK_GE);
	if (ret == 0)
		ret = c.key.objectid == dir && c.key.type == DIR_INDEX_KEY ? -ENOTEMPTY : 0;
	else if (ret == -ENOENT)
		ret = 0;
	bt_cursor_release(&c);
	return ret;
}

/* The parent of directory `dir` (a directory has exactly one link); the root is its own. */
static int dir_parent(struct inode_tree *it, uint64_t dir, uint64_t *parent)
{
	struct bt_cursor c;
	struct bt_key k = { dir, INODE_REF_KEY, 0 };
	int ret;

	if (dir == INODE_ROOT_INO) {
		*parent = dir;
		return 0;
	}
	bt_cursor_init(&c, tree(it));
	ret = bt_cursor_seek(&c, &k, BT_SEEK_GE);
	if (ret == 0 && c.key.objectid == dir && c.key.type == INODE_REF_KEY)
		*parent = c.key.offset;
	else if (ret == 0 || ret == -ENOENT)
		ret = corrupt(it, dir, "directory without an inode ref");
	bt_cursor_release(&c);
	return ret;
}

/* -EINVAL if `dir` is `ancestor` or lies below it. */
static int check_not_below(struct inode_tree *it, uint64_t dir, uint64_t ancestor)
{
	for (int depth = 0; depth < MAX_DEPTH; depth++) {
		uint64_t parent;
		int ret;

		if (dir == ancestor)
			return -EINVAL;
		if (dir == INODE_ROOT_INO)
			return 0;
		ret = dir_parent(it, dir, &parent);
		if (ret < 0)
			return ret;
		dir = parent;
	}
	return corrupt(it, dir, "directory parents form a loop");
}

/* ---- transactions ----------------------------------------------------------------------------- */

static void lock_read(struct inode_tree *it)
{
	pthread_mutex_lock(&it->fs->lock);
}

static void unlock_read(struct inode_tree *it)
{
	pthread_mutex_unlock(&it->fs->lock);
}

/* Begin an update that changes up to `items` items. */
static int update_begin(struct inode_tree *it, enum alloc_class cls, uint64_t items)
{
	int ret;

	if (it->fs->read_only)
		return -EROFS;
	cowfs_trans_begin(it->fs, cls);
	ret = cowfs_reserve(it->fs, items * cowfs_update_nodes(tree(it)));
	if (ret < 0)
		cowfs_trans_end(it->fs);
	return ret;
}

static void update_end(struct inode_tree *it)
{
	cowfs_trans_end(it->fs);
}

/* ---- public operations ---------------------------------------------------------------------------- */

void inode_tree_init(struct inode_tree *it, struct cowfs *fs, struct cowfs_root *root)
{
	it->fs = fs;
	it->root = root;
	it->next_ino = 0;
}

int inode_make_root(struct cowfs *fs, struct cowfs_root *root)
{
	struct inode_tree it;
	struct inode in;
	int ret;

	inode_tree_init(&it, fs, root);
	ret = update_begin(&it, ALLOC_NORMAL, 1);
	if (ret < 0)
		return ret;
	new_inode(&it, &in, S_IFDIR | 0755, 2, 0, 0, 0);
	ret = inode_insert(&it, INODE_ROOT_INO, &in);
	update_end(&it);
	return ret;
}

int inode_getattr(struct inode_tree *it, uint64_t ino, struct cowfs_attr *attr)
{
	struct inode in;
	int ret;

	lock_read(it);
	ret = inode_read(it, ino, &in);
	unlock_read(it);
	if (ret == 0)
		to_attr(ino, &in, attr);
	return ret;
}

int inode_setattr(struct inode_tree *it, uint64_t ino, unsigned mask,
		  const struct cowfs_attr *attr)
{
	struct inode in;
	int ret;

	if (mask & INODE_SET_SIZE)
		return -EOPNOTSUPP;
	ret = update_begin(it, ALLOC_NORMAL, 1);
	if (ret < 0)
		return ret;
	ret = inode_read(it, ino, &in);
	if (ret == 0) {
		if (mask & INODE_SET_MODE)
			in.mode = (in.mode & S_IFMT) | (attr->mode & 07777);
		if (mask & INODE_SET_UID)
			in.uid = attr->uid;
		if (mask & INODE_SET_GID)
			in.gid = attr->gid;
		if (mask & INODE_SET_ATIME)
			in.atime = attr->atime;
		if (mask & INODE_SET_MTIME)
			in.mtime = attr->mtime;
		in.ctime = now();
		ret = inode_write(it, ino, &in);
	}
	update_end(it);
	return ret;
}

static int lookup_locked(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
			 uint64_t *ino)
{
	struct inode d;
	struct dentry e;
	int ret;

	if (len > INODE_NAME_MAX)
		return -ENAMETOOLONG;
	ret = read_dir(it, dir, &d);
	if (ret < 0)
		return ret;
	if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
		return -ENOENT;
	if (len == 1 && name[0] == '.') {
		*ino = dir;
		return 0;
	}
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return dir_parent(it, dir, ino);
	ret = dir_find(it, dir, name, len, &e);
	if (ret == 0)
		*ino = e.child;
	return ret;
}

int inode_lookup(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		 struct cowfs_attr *attr)
{
	struct inode in;
	uint64_t ino = 0;
	int ret;

	lock_read(it);
	ret = lookup_locked(it, dir, name, len, &ino);
	if (ret == 0) {
		ret = inode_read(it, ino, &in);
		if (ret == -ENOENT)
			ret = corrupt(it, dir, "directory entry names a missing inode");
	}
	unlock_read(it);
	if (ret == 0)
		to_attr(ino, &in, attr);
	return ret;
}

/* Checks for a new name in `dir`: a directory, a valid name, not taken. */
static int check_new_entry(struct inode_tree *it, uint64_t dir, const char *name, size_t len)
{
	struct inode d;
	struct dentry e;
	int ret = check_new_name(name, len);

	if (ret < 0)
		return ret;
	ret = read_dir(it, dir, &d);
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
	struct inode in;
	uint64_t ino = 0;
	int ret = update_begin(it, ALLOC_NORMAL, 8);

	if (ret < 0)
		return ret;
	ret = check_new_entry(it, dir, name, len);
	if (ret == 0)
		ret = alloc_ino(it, &ino);
	if (ret == 0)
		ret = check_link_fits(it, ino, dir, name, len);
	if (ret < 0)
		goto out;

	new_inode(it, &in, mode, S_ISDIR(mode) ? 2 : 1, uid, gid, rdev);
	if (S_ISLNK(mode))
		in.size = in.nbytes = tlen;
	it->next_ino = ino + 1;
	ret = inode_insert(it, ino, &in);
	if (ret == 0 && S_ISLNK(mode)) {
		uint8_t buf[FILE_EXTENT_INLINE_HEADER + INODE_SYMLINK_MAX];
		struct file_extent_item *fe = (void *)buf;
		struct bt_key k = { ino, EXTENT_DATA_KEY, 0 };

		memset(buf, 0, FILE_EXTENT_INLINE_HEADER);
		put_le64(&fe->generation, it->fs->trans.transid);
		put_le64(&fe->ram_bytes, tlen);
		fe->type = FILE_EXTENT_INLINE;
		memcpy(buf + FILE_EXTENT_INLINE_HEADER, target, tlen);
		ret = bt_insert(&it->fs->trans, tree(it), &k, buf,
				(uint32_t)(FILE_EXTENT_INLINE_HEADER + tlen));
	}
	if (ret == 0)
		ret = link_add(it, dir, name, len, ino, mode_to_dtype(mode));
	if (ret == 0 && S_ISDIR(mode))
		ret = inode_adjust(it, dir, 1, 0);
	if (ret == 0)
		to_attr(ino, &in, attr);
out:
	update_end(it);
	return ret;
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
	    tlen + FILE_EXTENT_INLINE_HEADER > bt_max_item_size(it->fs->bfs.nodesize))
		return -ENAMETOOLONG;
	return make_node(it, dir, name, len, S_IFLNK | 0777, 0, uid, gid, target, tlen, attr);
}

static int readlink_locked(struct inode_tree *it, uint64_t ino, char *out, size_t bufsize,
			   size_t *tlen)
{
	struct bt_key k = { ino, EXTENT_DATA_KEY, 0 };
	struct inode in;
	uint8_t *buf;
	uint32_t len;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	if (!S_ISLNK(in.mode))
		return -EINVAL;
	ret = item_read(it, &k, &buf, &len);
	if (ret == -ENOENT)
		return corrupt(it, ino, "symlink without its target");
	if (ret < 0)
		return ret;
	if (len < FILE_EXTENT_INLINE_HEADER ||
	    ((struct file_extent_item *)buf)->type != FILE_EXTENT_INLINE ||
	    len - FILE_EXTENT_INLINE_HEADER != in.size) {
		free(buf);
		return corrupt(it, ino, "symlink target is not an inline extent of its size");
	}
	*tlen = len - FILE_EXTENT_INLINE_HEADER;
	memcpy(out, buf + FILE_EXTENT_INLINE_HEADER, *tlen < bufsize ? *tlen : bufsize);
	free(buf);
	return 0;
}

int inode_readlink(struct inode_tree *it, uint64_t ino, char *buf, size_t bufsize, size_t *len)
{
	int ret;

	lock_read(it);
	ret = readlink_locked(it, ino, buf, bufsize, len);
	unlock_read(it);
	return ret;
}

int inode_link(struct inode_tree *it, uint64_t ino, uint64_t newdir, const char *name,
	       size_t len, struct cowfs_attr *attr)
{
	struct inode in;
	int ret = update_begin(it, ALLOC_NORMAL, 8);

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
		ret = check_link_fits(it, ino, newdir, name, len);
	if (ret == 0)
		ret = link_add(it, newdir, name, len, ino, mode_to_dtype(in.mode));
	if (ret == 0)
		ret = inode_adjust(it, ino, 1, TOUCH_CTIME);
	if (ret == 0)
		ret = inode_read(it, ino, &in);
	if (ret == 0)
		to_attr(ino, &in, attr);
	update_end(it);
	return ret;
}

/* Find an existing entry to remove: `dir` a directory, `name` a real name in it. */
static int find_victim(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		       struct dentry *e, struct inode *child)
{
	struct inode d;
	int ret;

	if (len > INODE_NAME_MAX)
		return -ENAMETOOLONG;
	ret = read_dir(it, dir, &d);
	if (ret < 0)
		return ret;
	ret = check_new_name(name, len);
	if (ret < 0)
		return ret;
	ret = dir_find(it, dir, name, len, e);
	if (ret < 0)
		return ret;
	ret = inode_read(it, e->child, child);
	if (ret == -ENOENT)
		return corrupt(it, dir, "directory entry names a missing inode");
	return ret;
}

/* Unlink a checked entry: drop its link, and the inode with its last link. */
static int remove_entry(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
			uint64_t ino, const struct inode *child)
{
	bool isdir = S_ISDIR(child->mode);
	int ret = link_remove(it, dir, name, len, ino);

	if (ret < 0)
		return ret;
	if (isdir) {
		ret = inode_adjust(it, dir, -1, 0);   /* the child's ".." is gone */
		if (ret == 0)
			ret = inode_drop(it, ino);
		return ret;
	}
	if (child->nlink <= 1)
		return inode_drop(it, ino);
	return inode_adjust(it, ino, -1, TOUCH_CTIME);
}

/* Items an unlink of `ino` may change: its own (if it goes away) plus the link's. */
static int unlink_cost(struct inode_tree *it, uint64_t ino, const struct inode *child,
		       uint64_t *items)
{
	uint64_t n = 0;
	int ret = 0;

	if (S_ISDIR(child->mode) || child->nlink <= 1)
		ret = inode_count_items(it, ino, &n);
	*items = n + 8;
	return ret;
}

/* Shared by unlink and rmdir: `want_dir` says which kind the entry must be. */
static int remove_name(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		       bool want_dir)
{
	struct dentry e;
	struct inode child;
	uint64_t items;
	int ret;

	/* Check under the lock, then reserve (which may commit), then check again. */
	lock_read(it);
	ret = find_victim(it, dir, name, len, &e, &child);
	if (ret == 0)
		ret = unlink_cost(it, e.child, &child, &items);
	unlock_read(it);
	if (ret < 0)
		return ret;
	ret = update_begin(it, ALLOC_PRIVILEGED, items);
	if (ret < 0)
		return ret;
	ret = find_victim(it, dir, name, len, &e, &child);
	if (ret == 0 && want_dir && !S_ISDIR(child.mode))
		ret = -ENOTDIR;
	if (ret == 0 && !want_dir && S_ISDIR(child.mode))
		ret = -EISDIR;
	if (ret == 0 && want_dir)
		ret = dir_is_empty(it, e.child);
	if (ret == 0)
		ret = unlink_cost(it, e.child, &child, &items);
	if (ret == 0)
		ret = cowfs_reserve(it->fs, items * cowfs_update_nodes(tree(it)));
	if (ret == 0)
		ret = remove_entry(it, dir, name, len, e.child, &child);
	update_end(it);
	return ret;
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
		return read_dir(it, s->dir, &d);
	}
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
		ret = check_not_below(it, dst->dir, src->e.child);
		if (ret < 0)
			return ret;
	}
	if (exchange && S_ISDIR(dst->in.mode) && src->dir != dst->dir) {
		ret = check_not_below(it, src->dir, dst->e.child);
		if (ret < 0)
			return ret;
	}
	if (!dst->exists || !exchange)
		return check_link_fits(it, src->e.child, dst->dir, dst->name, dst->len);
	ret = check_link_fits(it, src->e.child, dst->dir, dst->name, dst->len);
	if (ret == 0)
		ret = check_link_fits(it, dst->e.child, src->dir, src->name, src->len);
	return ret;
}

/* Move the entry of `s` (a link of s->e.child) from s->dir to `to` as `name`. */
static int rename_move(struct inode_tree *it, const struct rename_side *s, uint64_t to,
		       const char *name, size_t len)
{
	int ret = link_remove(it, s->dir, s->name, s->len, s->e.child);

	if (ret == 0)
		ret = link_add(it, to, name, len, s->e.child, s->e.type);
	if (ret == 0)
		ret = inode_adjust(it, s->e.child, 0, TOUCH_CTIME);
	if (ret == 0 && S_ISDIR(s->in.mode) && s->dir != to) {
		/* The directory's ".." now counts in its new parent. */
		ret = inode_adjust(it, s->dir, -1, 0);
		if (ret == 0)
			ret = inode_adjust(it, to, 1, 0);
	}
	return ret;
}

static int rename_exchange(struct inode_tree *it, const struct rename_side *src,
			   const struct rename_side *dst)
{
	/* Remove both names first so that each can be added back with the other inode. */
	int ret = link_remove(it, src->dir, src->name, src->len, src->e.child);

	if (ret == 0)
		ret = link_remove(it, dst->dir, dst->name, dst->len, dst->e.child);
	if (ret == 0)
		ret = link_add(it, dst->dir, dst->name, dst->len, src->e.child, src->e.type);
	if (ret == 0)
		ret = link_add(it, src->dir, src->name, src->len, dst->e.child, dst->e.type);
	if (ret == 0)
		ret = inode_adjust(it, src->e.child, 0, TOUCH_CTIME);
	if (ret == 0)
		ret = inode_adjust(it, dst->e.child, 0, TOUCH_CTIME);
	if (ret == 0 && src->dir != dst->dir) {
		int moved = (S_ISDIR(src->in.mode) ? 1 : 0) - (S_ISDIR(dst->in.mode) ? 1 : 0);
		if (moved) {
			ret = inode_adjust(it, src->dir, -moved, 0);
			if (ret == 0)
				ret = inode_adjust(it, dst->dir, moved, 0);
		}
	}
	return ret;
}

static int rename_apply(struct inode_tree *it, struct rename_side *src, struct rename_side *dst,
			unsigned flags)
{
	int ret;

	if (flags & INODE_RENAME_EXCHANGE)
		return rename_exchange(it, src, dst);
	if (dst->exists) {
		ret = remove_entry(it, dst->dir, dst->name, dst->len, dst->e.child, &dst->in);
		if (ret < 0)
			return ret;
	}
	return rename_move(it, src, dst->dir, dst->name, dst->len);
}

int inode_rename(struct inode_tree *it, uint64_t olddir, const char *oldname, size_t oldlen,
		 uint64_t newdir, const char *newname, size_t newlen, unsigned flags)
{
	struct rename_side src = { olddir, oldname, oldlen };
	struct rename_side dst = { newdir, newname, newlen };
	uint64_t items = 0;
	bool noop;
	int ret;

	if (flags & ~(INODE_RENAME_NOREPLACE | INODE_RENAME_EXCHANGE) ||
	    flags == (INODE_RENAME_NOREPLACE | INODE_RENAME_EXCHANGE))
		return -EINVAL;
	/* Check under the lock to learn what a replaced target costs, then check again. */
	lock_read(it);
	ret = rename_check(it, &src, &dst, flags, &noop);
	if (ret == 0 && dst.exists && !(flags & INODE_RENAME_EXCHANGE))
		ret = unlink_cost(it, dst.e.child, &dst.in, &items);
	unlock_read(it);
	if (ret < 0 || noop)
		return ret;
	ret = update_begin(it, ALLOC_PRIVILEGED, items + 24);
	if (ret < 0)
		return ret;
	ret = rename_check(it, &src, &dst, flags, &noop);
	if (ret == 0 && !noop)
		ret = rename_apply(it, &src, &dst, flags);
	update_end(it);
	return ret;
}

/* ---- readdir ----------------------------------------------------------------------------------- */

static int readdir_locked(struct inode_tree *it, uint64_t dir, uint64_t cookie, dir_fill_fn fn,
			  void *arg)
{
	struct bt_cursor c;
	struct inode d;
	uint64_t parent;
	int ret = read_dir(it, dir, &d);

	if (ret < 0)
		return ret;
	if (cookie == 0 && fn(arg, ".", 1, dir, DT_DIR, 1))
		return 0;
	if (cookie <= 1) {
		ret = dir_parent(it, dir, &parent);
		if (ret < 0)
			return ret;
		if (fn(arg, "..", 2, parent, DT_DIR, 2))
			return 0;
	}
	struct bt_key k = { dir, DIR_INDEX_KEY, cookie < DIR_FIRST_INDEX ? DIR_FIRST_INDEX : cookie };
	bt_cursor_init(&c, tree(it));
	for (ret = bt_cursor_seek(&c, &k, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		struct bt_key ik;
		const void *data;
		uint32_t len, n;

		bt_cursor_item(&c, &ik, &data, &len);
		if (ik.objectid != dir || ik.type != DIR_INDEX_KEY)
			break;
		const struct dir_entry *e = data;
		if (len < sizeof(*e) || (n = get_le16(&e->name_len)) == 0 ||
		    len != sizeof(*e) + n || n > INODE_NAME_MAX) {
			ret = corrupt(it, dir, "malformed directory index item");
			break;
		}
		if (fn(arg, (const char *)data + sizeof(*e), n, get_le64(&e->child), e->type,
		       ik.offset + 1))
			break;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

int dir_readdir(struct inode_tree *it, uint64_t dir, uint64_t cookie, dir_fill_fn fn, void *arg)
{
	int ret;

	lock_read(it);
	ret = readdir_locked(it, dir, cookie, fn, arg);
	unlock_read(it);
	return ret;
}
