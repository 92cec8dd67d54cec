/*
 * Directory entries: the DIR_ITEM (by name hash) and DIR_INDEX (by sequence) items of a
 * directory, the INODE_REF back to it, emptiness and ancestry, and readdir in DIR_INDEX order
 * (its cookies stay valid across creates and deletes).
 */
#include "fs/inode/internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/extent/extent_format.h"
#include "fs/inode/dir_entry.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

/* ---- directory entries ---------------------------------------------------------------------- */

/* A malformed entry of `what` kind: dir_entry_next said `why`. */
static int dir_corrupt(struct inode_tree *it, uint64_t ino, const char *what, const char *why)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "%s: %s", what, why);
	return inode_corrupt(it, ino, msg);
}

/* Walk the {dir_entry, name} array of a DIR_ITEM; *at gets the matching entry's offset. */
static int dir_item_find(struct inode_tree *it, uint64_t dir, const uint8_t *buf, uint32_t len,
			 const char *name, size_t nlen, uint32_t *at, uint32_t *esize)
{
	struct dir_entry_view e;
	uint32_t off = 0;
	const char *why;
	int got;

	while ((got = dir_entry_next(buf, len, &off, &e, &why)) == 1) {
		if (e.name_len == nlen && memcmp(e.name, name, nlen) == 0) {
			*at = e.off;
			*esize = e.size;
			return 0;
		}
	}
	return got < 0 ? dir_corrupt(it, dir, "directory entry", why) : -ENOENT;
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
int dir_find(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
		    struct dentry *out)
{
	struct bt_key k = { dir, DIR_ITEM_KEY, dir_name_hash(name, len) };
	uint8_t *buf;
	uint32_t blen, at, esize;
	int ret = inode_item_read(it, &k, &buf, &blen);

	if (ret < 0)
		return ret;
	ret = dir_item_find(it, dir, buf, blen, name, len, &at, &esize);
	if (ret == 0) {
		struct dir_entry_view e;
		const char *why;
		dir_entry_next(buf, blen, &at, &e, &why);   /* found valid just now */
		out->child = e.child;
		out->type = e.type;
	}
	free(buf);
	return ret;
}

/* Bytes a DIR_ITEM of `dir` would have after adding `name` (0 if the item does not exist). */
static int dir_item_size(struct inode_tree *it, uint64_t dir, const char *name, size_t len,
			 uint32_t *size)
{
	struct bt_key k = { dir, DIR_ITEM_KEY, dir_name_hash(name, len) };
	uint32_t n;
	int ret = bt_lookup(inode_btree(it), &k, NULL, 0, &n);

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
	int ret = bt_lookup(inode_btree(it), &k, NULL, 0, &n);

	if (ret == -ENOENT) {
		*size = 0;
		return 0;
	}
	*size = n;
	return ret;
}

/* Whether a new link `name` of `ino` in `dir` fits in the items it extends. */
int dir_check_link_fits(struct inode_tree *it, uint64_t ino, uint64_t dir, const char *name,
			   size_t len)
{
	uint32_t max = bt_max_item_size(cowfs_nodesize(it->fs)), di = 0, ir = 0;
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
static int array_append(struct cowfs_trans *tx, struct inode_tree *it, const struct bt_key *k,
			const uint8_t *entry, uint32_t esize)
{
	uint8_t *buf;
	uint32_t len;
	int ret = inode_item_read(it, k, &buf, &len);

	if (ret == -ENOENT)
		return bt_insert(&tx->bt, inode_btree(it), k, entry, esize);
	if (ret < 0)
		return ret;
	uint8_t *nbuf = realloc(buf, len + esize);
	if (!nbuf) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(nbuf + len, entry, esize);
	ret = bt_resize(&tx->bt, inode_btree(it), k, len + esize);
	if (ret == 0)
		ret = bt_update(&tx->bt, inode_btree(it), k, nbuf, len + esize);
	free(nbuf);
	return ret;
}

/* Cut bytes [at, at + esize) out of the array item `k` whose content is `buf` (len bytes). */
static int array_cut(struct cowfs_trans *tx, struct inode_tree *it, const struct bt_key *k,
		     uint8_t *buf, uint32_t len, uint32_t at, uint32_t esize)
{
	int ret;

	if (esize == len)
		return bt_delete(&tx->bt, inode_btree(it), k);
	memmove(buf + at, buf + at + esize, len - at - esize);
	ret = bt_resize(&tx->bt, inode_btree(it), k, len - esize);
	if (ret == 0)
		ret = bt_update(&tx->bt, inode_btree(it), k, buf, len - esize);
	return ret;
}

/* Walk an INODE_REF array for `name`; *index gets the link's DIR_INDEX offset. */
static int inode_ref_find(struct inode_tree *it, uint64_t ino, const uint8_t *buf, uint32_t len,
			  const char *name, size_t nlen, uint32_t *at, uint32_t *esize,
			  uint64_t *index)
{
	struct inode_ref_view r;
	uint32_t off = 0;
	const char *why;
	int got;

	while ((got = inode_ref_next(buf, len, &off, &r, &why)) == 1) {
		if (r.name_len == nlen && memcmp(r.name, name, nlen) == 0) {
			*at = r.off;
			*esize = r.size;
			*index = r.index;
			return 0;
		}
	}
	if (got < 0)
		return dir_corrupt(it, ino, "inode ref", why);
	return inode_corrupt(it, ino, "directory entry without a matching inode ref");
}

/* Take the next DIR_INDEX offset of `dir` and touch its times. */
static int dir_take_index(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir,
			  size_t name_len, int sign, uint64_t *index)
{
	struct inode in;
	int ret = inode_read(it, dir, &in);

	if (ret < 0)
		return ret;
	if (index)
		*index = in.next_index++;
	/* Directory size as btrfs counts it: each name twice (DIR_ITEM and DIR_INDEX). */
	in.size = (uint64_t)((int64_t)in.size + sign * 2 * (int64_t)name_len);
	in.mtime = in.ctime = inode_now();
	return inode_write(tx, it, dir, &in);
}

/* Add the link `name` -> ino (of type `type`) in `dir`. Does not change ino's nlink. */
int dir_link_add(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir, const char *name,
		 size_t len, uint64_t ino, uint8_t type)
{
	uint64_t transid = cowfs_trans_id(tx), index;
	uint8_t ebuf[sizeof(struct dir_entry) + INODE_NAME_MAX];
	uint8_t rbuf[sizeof(struct inode_ref_entry) + INODE_NAME_MAX];
	struct inode_ref_entry *r = (void *)rbuf;
	uint32_t esize = (uint32_t)(sizeof(struct dir_entry) + len);
	int ret = dir_take_index(tx, it, dir, len, 1, &index);

	if (ret < 0)
		return ret;
	dir_entry_encode(ebuf, ino, type, transid, name, len);
	struct bt_key dk = { dir, DIR_ITEM_KEY, dir_name_hash(name, len) };
	ret = array_append(tx, it, &dk, ebuf, esize);
	if (ret < 0)
		return ret;
	struct bt_key xk = { dir, DIR_INDEX_KEY, index };
	ret = bt_insert(&tx->bt, inode_btree(it), &xk, ebuf, esize);
	if (ret < 0)
		return ret;
	put_le64(&r->index, index);
	put_le16(&r->name_len, (uint16_t)len);
	memcpy(rbuf + sizeof(*r), name, len);
	struct bt_key rk = { ino, INODE_REF_KEY, dir };
	return array_append(tx, it, &rk, rbuf, (uint32_t)(sizeof(*r) + len));
}

/* Remove the link `name` -> ino from `dir`. Does not change ino's nlink. */
int dir_link_remove(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir, const char *name,
		    size_t len, uint64_t ino)
{
	struct bt_key dk = { dir, DIR_ITEM_KEY, dir_name_hash(name, len) };
	struct bt_key rk = { ino, INODE_REF_KEY, dir };
	uint8_t *buf;
	uint32_t blen, at = 0, esize = 0;
	uint64_t index = 0;
	int ret = inode_item_read(it, &rk, &buf, &blen);

	if (ret == -ENOENT)
		return inode_corrupt(it, ino, "linked from a directory without an inode ref");
	if (ret < 0)
		return ret;
	ret = inode_ref_find(it, ino, buf, blen, name, len, &at, &esize, &index);
	if (ret == 0)
		ret = array_cut(tx, it, &rk, buf, blen, at, esize);
	free(buf);
	if (ret < 0)
		return ret;

	struct bt_key xk = { dir, DIR_INDEX_KEY, index };
	ret = bt_delete(&tx->bt, inode_btree(it), &xk);
	if (ret == -ENOENT)
		return inode_corrupt(it, dir, "directory entry without its index item");
	if (ret < 0)
		return ret;

	ret = inode_item_read(it, &dk, &buf, &blen);
	if (ret == -ENOENT)
		return inode_corrupt(it, dir, "inode ref without its directory item");
	if (ret < 0)
		return ret;
	ret = dir_item_find(it, dir, buf, blen, name, len, &at, &esize);
	if (ret == -ENOENT)
		ret = inode_corrupt(it, dir, "inode ref without its directory entry");
	if (ret == 0)
		ret = array_cut(tx, it, &dk, buf, blen, at, esize);
	free(buf);
	if (ret < 0)
		return ret;
	return dir_take_index(tx, it, dir, len, -1, NULL);
}

/* ---- subvolume entries: a DIR_ITEM entry and a DIR_INDEX item, no INODE_REF ------------------ */

int dir_peek_index(struct inode_tree *it, uint64_t dir, uint64_t *index)
{
	struct inode in;
	int ret = inode_read_dir(it, dir, &in);

	if (ret == 0)
		*index = in.next_index;
	return ret;
}

int dir_subvol_link(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir,
		    const char *name, size_t len, uint64_t id, uint64_t *index)
{
	uint8_t ebuf[sizeof(struct dir_entry) + INODE_NAME_MAX];
	uint32_t esize = (uint32_t)(sizeof(struct dir_entry) + len);
	int ret = dir_take_index(tx, it, dir, len, 1, index);

	if (ret < 0)
		return ret;
	dir_entry_encode(ebuf, id, DT_DIR | DIR_ENTRY_SUBVOL, cowfs_trans_id(tx), name, len);
	struct bt_key dk = { dir, DIR_ITEM_KEY, dir_name_hash(name, len) };
	ret = array_append(tx, it, &dk, ebuf, esize);
	if (ret < 0)
		return ret;
	struct bt_key xk = { dir, DIR_INDEX_KEY, *index };
	ret = bt_insert(&tx->bt, inode_btree(it), &xk, ebuf, esize);
	/* A subvolume counts among its parent's subdirectories (nlink 2 + subdirectories). */
	return ret < 0 ? ret : inode_adjust(tx, it, dir, 1, 0);
}

int dir_subvol_unlink(struct cowfs_trans *tx, struct inode_tree *it, uint64_t dir,
		      const char *name, size_t len, uint64_t index)
{
	struct bt_key dk = { dir, DIR_ITEM_KEY, dir_name_hash(name, len) };
	struct bt_key xk = { dir, DIR_INDEX_KEY, index };
	uint8_t *buf;
	uint32_t blen, at = 0, esize = 0;
	int ret = bt_delete(&tx->bt, inode_btree(it), &xk);

	if (ret == -ENOENT)
		return inode_corrupt(it, dir, "subvolume entry without its index item");
	if (ret < 0)
		return ret;
	ret = inode_item_read(it, &dk, &buf, &blen);
	if (ret == -ENOENT)
		return inode_corrupt(it, dir, "subvolume index item without its directory item");
	if (ret < 0)
		return ret;
	ret = dir_item_find(it, dir, buf, blen, name, len, &at, &esize);
	if (ret == 0)
		ret = array_cut(tx, it, &dk, buf, blen, at, esize);
	free(buf);
	if (ret == 0)
		ret = dir_take_index(tx, it, dir, len, -1, NULL);
	return ret < 0 ? ret : inode_adjust(tx, it, dir, -1, 0);
}

/* Count the items of `ino` (all of them belong to it: objectid == ino), up to `limit`. */
int inode_count_items(struct inode_tree *it, uint64_t ino, uint64_t limit, uint64_t *count)
{
	struct bt_cursor c;
	struct bt_key k = { ino, 0, 0 };
	int ret;

	*count = 0;
	bt_cursor_init(&c, inode_btree(it));
	for (ret = bt_cursor_seek(&c, &k, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		if (c.key.objectid != ino || *count >= limit)
			break;
		(*count)++;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

/* Delete every item of `ino`: inode item, refs, file extents (dropping their references). */
int inode_drop(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino)
{
	struct bt_key first = { ino, 0, 0 };
	struct bt_cursor c;
	int ret;

	bt_cursor_init(&c, inode_btree(it));
	for (;;) {
		struct bt_key k;
		ret = bt_cursor_seek(&c, &first, BT_SEEK_GE);
		if (ret < 0)
			break;
		k = c.key;
		bt_cursor_release(&c);
		if (k.objectid != ino)
			break;
		ret = bt_delete(&tx->bt, inode_btree(it), &k);
		if (ret < 0)
			break;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

/* Whether directory `dir` has no entries. */
int dir_is_empty(struct inode_tree *it, uint64_t dir)
{
	struct bt_cursor c;
	struct bt_key k = { dir, DIR_INDEX_KEY, 0 };
	int ret;

	bt_cursor_init(&c, inode_btree(it));
	ret = bt_cursor_seek(&c, &k, BT_SEEK_GE);
	if (ret == 0)
		ret = c.key.objectid == dir && c.key.type == DIR_INDEX_KEY ? -ENOTEMPTY : 0;
	else if (ret == -ENOENT)
		ret = 0;
	bt_cursor_release(&c);
	return ret;
}

/* The parent of directory `dir` (a directory has exactly one link); the root is its own. */
int dir_parent(struct inode_tree *it, uint64_t dir, uint64_t *parent)
{
	struct bt_cursor c;
	struct bt_key k = { dir, INODE_REF_KEY, 0 };
	int ret;

	if (dir == INODE_ROOT_INO) {
		*parent = dir;
		return 0;
	}
	bt_cursor_init(&c, inode_btree(it));
	ret = bt_cursor_seek(&c, &k, BT_SEEK_GE);
	if (ret == 0 && c.key.objectid == dir && c.key.type == INODE_REF_KEY)
		*parent = c.key.offset;
	else if (ret == 0 || ret == -ENOENT)
		ret = inode_corrupt(it, dir, "directory without an inode ref");
	bt_cursor_release(&c);
	return ret;
}

/* -EINVAL if `dir` is `ancestor` or lies below it. */
int dir_check_not_below(struct inode_tree *it, uint64_t dir, uint64_t ancestor)
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
	return inode_corrupt(it, dir, "directory parents form a loop");
}

/* ---- readdir ----------------------------------------------------------------------------------- */

static int readdir_locked(struct inode_tree *it, uint64_t dir, uint64_t cookie, uint64_t end,
			  dir_fill_fn fn, void *arg)
{
	struct bt_cursor c;
	struct inode d;
	uint64_t parent;
	int ret = inode_read_dir(it, dir, &d);

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
	bt_cursor_init(&c, inode_btree(it));
	for (ret = bt_cursor_seek(&c, &k, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		struct bt_key ik;
		const void *data;
		uint32_t len;

		bt_cursor_item(&c, &ik, &data, &len);
		if (ik.objectid != dir || ik.type != DIR_INDEX_KEY || ik.offset >= end)
			break;
		struct dir_entry_view e;
		const char *why = "more than one entry";
		uint32_t off = 0;
		if (dir_entry_next(data, len, &off, &e, &why) != 1 || off != len) {
			ret = dir_corrupt(it, dir, "directory index item", why);
			break;
		}
		if (fn(arg, e.name, e.name_len, e.child, e.type, ik.offset + 1))
			break;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

int dir_readdir(struct inode_tree *it, uint64_t dir, uint64_t cookie, dir_fill_fn fn, void *arg)
{
	return dir_readdir_upto(it, dir, cookie, UINT64_MAX, fn, arg);
}

int dir_readdir_upto(struct inode_tree *it, uint64_t dir, uint64_t cookie, uint64_t end,
		     dir_fill_fn fn, void *arg)
{
	int ret;

	inode_lock_read(it);
	ret = readdir_locked(it, dir, cookie, end, fn, arg);
	inode_unlock_read(it);
	return ret;
}

/* Indexes only grow (next_index is never reused), so every entry that exists now lies below
 * it, and every entry added or renamed in later lies at or above it. */
int dir_readdir_end(struct inode_tree *it, uint64_t dir, uint64_t *end)
{
	struct inode d;
	int ret;

	inode_lock_read(it);
	ret = inode_read_dir(it, dir, &d);
	inode_unlock_read(it);
	if (ret == 0)
		*end = d.next_index;
	return ret;
}
