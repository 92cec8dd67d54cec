/*
 * Extended attributes: one XATTR_ITEM per (inode, name hash), holding an array of
 * {xattr_entry, name, value}, more than one entry only when names collide, as a directory's
 * DIR_ITEM arrays. An update reads the item, checks everything (flags, sizes, what collides
 * with it) and writes it back once. POSIX ACL names are handed to acl.c, which also keeps the
 * mode in step.
 */
#include "fs/inode/xattr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

/* ---- names --------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	bool whole;              /* the name itself, not a prefix */
	enum xattr_kind kind;
} xattr_names[] = {
	{ "user.", false, XATTR_KIND_USER },
	{ "trusted.", false, XATTR_KIND_TRUSTED },
	{ "security.", false, XATTR_KIND_SECURITY },
	{ XATTR_ACL_ACCESS, true, XATTR_KIND_ACL_ACCESS },
	{ XATTR_ACL_DEFAULT, true, XATTR_KIND_ACL_DEFAULT },
};

int xattr_name_kind(const char *name, size_t len)
{
	if (len == 0 || len > XATTR_NAME_LEN_MAX)
		return -ERANGE;
	for (size_t i = 0; i < ARRAY_SIZE(xattr_names); i++) {
		size_t plen = strlen(xattr_names[i].name);

		if (len < plen || memcmp(name, xattr_names[i].name, plen) != 0)
			continue;
		if (xattr_names[i].whole && len != plen)
			continue;
		/* As Linux: a bare prefix names nothing. */
		if (!xattr_names[i].whole && len == plen)
			return -EINVAL;
		return (int)xattr_names[i].kind;
	}
	return -EOPNOTSUPP;
}

uint64_t xattr_name_hash(const char *name, size_t len)
{
	return cowfs_csum(name, len);
}

size_t xattr_value_max(const struct inode_tree *it, size_t name_len)
{
	size_t room = bt_max_item_size(cowfs_nodesize(it->fs)) - sizeof(struct xattr_entry);

	if (name_len >= room)
		return 0;
	/* value_len is 16 bits; no node size makes an item that large, but say so. */
	return MIN(room - name_len, (size_t)UINT16_MAX);
}

/* The kind of a NUL-terminated name, and its length. */
static int name_kind(const char *name, size_t *len)
{
	*len = strnlen(name, XATTR_NAME_LEN_MAX + 1);
	return xattr_name_kind(name, *len);
}

/* ---- entry arrays ------------------------------------------------------------------------- */

int xattr_entry_next(const uint8_t *buf, uint32_t len, uint32_t *off, struct xattr_ref *e)
{
	const struct xattr_entry *d = (const void *)(buf + *off);
	uint32_t rest;

	if (*off == len)
		return 0;
	if (len - *off < sizeof(*d))
		return -1;
	rest = len - *off - (uint32_t)sizeof(*d);
	e->name_len = get_le16(&d->name_len);
	e->value_len = get_le16(&d->value_len);
	if (e->name_len == 0 || e->name_len > XATTR_NAME_LEN_MAX ||
	    rest < e->name_len + e->value_len)
		return -1;
	e->at = *off;
	e->size = (uint32_t)sizeof(*d) + e->name_len + e->value_len;
	e->name = (const char *)buf + *off + sizeof(*d);
	e->value = buf + *off + sizeof(*d) + e->name_len;
	*off += e->size;
	return 1;
}

/* Find `name` in an item of `ino`: 0 (*e), -ENODATA, or -EUCLEAN for a malformed item. */
static int entry_find(struct inode_tree *it, uint64_t ino, const uint8_t *buf, uint32_t len,
		      const char *name, size_t nlen, struct xattr_ref *e)
{
	uint32_t off = 0;
	int got;

	while ((got = xattr_entry_next(buf, len, &off, e)) == 1) {
		if (e->name_len == nlen && memcmp(e->name, name, nlen) == 0)
			return 0;
	}
	if (got < 0)
		return inode_corrupt(it, ino, "malformed xattr item");
	return -ENODATA;
}

static uint32_t entry_encode(uint8_t *p, const char *name, size_t nlen, const void *value,
			     size_t vlen)
{
	struct xattr_entry *d = (void *)p;

	put_le16(&d->name_len, (uint16_t)nlen);
	put_le16(&d->value_len, (uint16_t)vlen);
	memcpy(p + sizeof(*d), name, nlen);
	if (vlen)
		memcpy(p + sizeof(*d) + nlen, value, vlen);
	return (uint32_t)(sizeof(*d) + nlen + vlen);
}

/* ---- items -------------------------------------------------------------------------------- */

/* The item of (ino, hash) and, if `name` is in it, its entry. */
struct xattr_item {
	struct bt_key key;
	uint8_t *buf;            /* NULL: no such item */
	uint32_t len;
	bool found;
	struct xattr_ref e;
};

static void item_release(struct xattr_item *x)
{
	free(x->buf);
	x->buf = NULL;
}

static int item_load(struct inode_tree *it, uint64_t ino, uint64_t hash, const char *name,
		     size_t nlen, struct xattr_item *x)
{
	int ret;

	memset(x, 0, sizeof(*x));
	x->key = (struct bt_key){ ino, XATTR_ITEM_KEY, hash };
	ret = inode_item_read(it, &x->key, &x->buf, &x->len);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = entry_find(it, ino, x->buf, x->len, name, nlen, &x->e);
	x->found = ret == 0;
	if (ret == -ENODATA)
		ret = 0;
	if (ret < 0)
		item_release(x);
	return ret;
}

/* Make the item hold `len` bytes of `buf`: insert it, resize and rewrite it, or delete it. */
static int item_store(struct cowfs_trans *tx, struct inode_tree *it, const struct xattr_item *x,
		      const uint8_t *buf, uint32_t len)
{
	struct btree *t = inode_btree(it);
	int ret;

	if (!x->buf)
		return bt_insert(&tx->bt, t, &x->key, buf, len);
	if (len == 0)
		return bt_delete(&tx->bt, t, &x->key);
	ret = 0;
	if (len != x->len)
		ret = bt_resize(&tx->bt, t, &x->key, len);
	if (ret == 0)
		ret = bt_update(&tx->bt, t, &x->key, buf, len);
	return ret;
}

int xattr_item_get(struct inode_tree *it, uint64_t ino, uint64_t hash, const char *name,
		   size_t nlen, uint8_t **value, uint32_t *vlen)
{
	struct xattr_item x;
	int ret = item_load(it, ino, hash, name, nlen, &x);

	if (ret < 0)
		return ret;
	if (!x.found) {
		item_release(&x);
		return -ENODATA;
	}
	/* The value moves to the front of the item's buffer, which the caller then owns. */
	*vlen = x.e.value_len;
	memmove(x.buf, x.e.value, x.e.value_len);
	*value = x.buf;
	return 0;
}

int xattr_item_has(struct inode_tree *it, uint64_t ino, uint64_t hash, const char *name,
		   size_t nlen)
{
	struct xattr_item x;
	int ret = item_load(it, ino, hash, name, nlen, &x);

	if (ret == 0)
		ret = x.found;
	item_release(&x);
	return ret;
}

/* Whether the put may go ahead, and the item's size after it. */
static int put_check(const struct inode_tree *it, const struct xattr_item *x, size_t nlen,
		     size_t vlen, int flags, uint32_t *newlen)
{
	uint32_t max = bt_max_item_size(cowfs_nodesize(it->fs));
	size_t esize = sizeof(struct xattr_entry) + nlen + vlen;
	size_t rest = x->len - (x->found ? x->e.size : 0);

	if ((flags & XATTR_CREATE) && x->found)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !x->found)
		return -ENODATA;
	if (vlen > UINT16_MAX || esize > max)
		return -E2BIG;
	if (rest + esize > max)
		return -ENOSPC;   /* names colliding on one hash fill the item: not in practice */
	*newlen = (uint32_t)(rest + esize);
	return 0;
}

int xattr_item_put(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t hash,
		   const char *name, size_t nlen, const void *value, size_t vlen, int flags)
{
	struct xattr_item x;
	uint8_t *nbuf = NULL;
	uint32_t newlen = 0, keep;
	int ret = item_load(it, ino, hash, name, nlen, &x);

	if (ret == 0)
		ret = put_check(it, &x, nlen, vlen, flags, &newlen);
	if (ret == 0 && !(nbuf = malloc(newlen)))
		ret = -ENOMEM;
	if (ret < 0)
		goto out;
	/* The other entries as they are, the old entry cut out, the new one at the end. */
	keep = 0;
	if (x.buf) {
		uint32_t cut = x.found ? x.e.at : x.len, cut_size = x.found ? x.e.size : 0;

		memcpy(nbuf, x.buf, cut);
		memcpy(nbuf + cut, x.buf + cut + cut_size, x.len - cut - cut_size);
		keep = x.len - cut_size;
	}
	entry_encode(nbuf + keep, name, nlen, value, vlen);
	ret = item_store(tx, it, &x, nbuf, newlen);
out:
	free(nbuf);
	item_release(&x);
	return ret;
}

int xattr_item_del(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t hash,
		   const char *name, size_t nlen)
{
	struct xattr_item x;
	int ret = item_load(it, ino, hash, name, nlen, &x);

	if (ret == 0 && !x.found)
		ret = -ENODATA;
	if (ret == 0) {
		memmove(x.buf + x.e.at, x.buf + x.e.at + x.e.size, x.len - x.e.at - x.e.size);
		ret = item_store(tx, it, &x, x.buf, x.len - x.e.size);
	}
	item_release(&x);
	return ret;
}

/* ---- rules by kind --------------------------------------------------------------------------- */

/* Whether `name` of `kind` may be set or removed on inode `in` (Linux's answers). */
static int may_change(const struct inode *in, int kind)
{
	switch (kind) {
	case XATTR_KIND_USER:
		/* User xattrs on special files would let anyone attach data to /dev nodes. */
		return S_ISREG(in->mode) || S_ISDIR(in->mode) ? 0 : -EPERM;
	case XATTR_KIND_ACL_ACCESS:
		return S_ISLNK(in->mode) ? -EOPNOTSUPP : 0;
	case XATTR_KIND_ACL_DEFAULT:
		if (S_ISLNK(in->mode))
			return -EOPNOTSUPP;
		return S_ISDIR(in->mode) ? 0 : -EACCES;
	}
	return 0;
}

/* Whether `name` of `kind` can be set on `in` at all, for reads: user.* on a special file
 * reads as absent, as Linux. */
static bool may_have(const struct inode *in, int kind)
{
	return kind != XATTR_KIND_USER || S_ISREG(in->mode) || S_ISDIR(in->mode);
}

static int touch_ctime(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		       struct inode *in)
{
	in->ctime = inode_now();
	return inode_write(tx, it, ino, in);
}

/* ---- operations ------------------------------------------------------------------------------- */

static int setxattr_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, int kind,
			   const char *name, size_t nlen, const void *value, size_t size, int flags,
			   const struct inode_changer *c)
{
	struct inode in;
	int ret = inode_read(it, ino, &in);

	if (ret == 0)
		ret = may_change(&in, kind);
	if (ret < 0)
		return ret;
	if (kind == XATTR_KIND_ACL_ACCESS || kind == XATTR_KIND_ACL_DEFAULT)
		return acl_set_locked(tx, it, ino, &in, kind == XATTR_KIND_ACL_ACCESS, value, size,
				      flags, c);
	ret = xattr_item_put(tx, it, ino, xattr_name_hash(name, nlen), name, nlen, value, size,
			     flags);
	if (ret == 0)
		ret = touch_ctime(tx, it, ino, &in);
	return ret;
}

int inode_setxattr(struct inode_tree *it, uint64_t ino, const char *name, const void *value,
		   size_t size, int flags)
{
	return inode_setxattr_as(it, ino, name, value, size, flags, NULL);
}

int inode_setxattr_as(struct inode_tree *it, uint64_t ino, const char *name, const void *value,
		      size_t size, int flags, const struct inode_changer *c)
{
	struct cowfs_trans *tx;
	size_t nlen;
	int kind = name_kind(name, &nlen), ret;

	if (kind < 0)
		return kind;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (size > xattr_value_max(it, nlen))
		return -E2BIG;
	/* The xattr item (a resize may move it: a delete and an insert) and the inode item. */
	ret = inode_update_begin(it, ALLOC_NORMAL, 3, &tx);
	if (ret < 0)
		return ret;
	ret = setxattr_locked(tx, it, ino, kind, name, nlen, value, size, flags, c);
	return inode_update_end(tx, ret);
}

static ssize_t getxattr_locked(struct inode_tree *it, uint64_t ino, int kind, const char *name,
			       size_t nlen, void *buf, size_t size)
{
	struct inode in;
	uint8_t *value;
	uint32_t vlen;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	if (!may_have(&in, kind))
		return -ENODATA;
	ret = xattr_item_get(it, ino, xattr_name_hash(name, nlen), name, nlen, &value, &vlen);
	if (ret < 0)
		return ret;
	if (size && vlen > size)
		ret = -ERANGE;
	else if (size && vlen)
		memcpy(buf, value, vlen);
	free(value);
	return ret < 0 ? ret : (ssize_t)vlen;
}

ssize_t inode_getxattr(struct inode_tree *it, uint64_t ino, const char *name, void *buf,
		       size_t size)
{
	size_t nlen;
	int kind = name_kind(name, &nlen);
	ssize_t ret;

	if (kind < 0)
		return kind;
	inode_lock_read(it);
	ret = getxattr_locked(it, ino, kind, name, nlen, buf, size);
	inode_unlock_read(it);
	return ret;
}

/* Append the names of one item to the list; *total counts every byte, stored or not. */
static int list_item(struct inode_tree *it, uint64_t ino, const uint8_t *data, uint32_t len,
		     char *buf, size_t size, size_t *total)
{
	struct xattr_ref e;
	uint32_t off = 0;
	int got;

	while ((got = xattr_entry_next(data, len, &off, &e)) == 1) {
		if (size && *total + e.name_len + 1 > size)
			return -ERANGE;
		if (size) {
			memcpy(buf + *total, e.name, e.name_len);
			buf[*total + e.name_len] = '\0';
		}
		*total += e.name_len + 1;
	}
	return got < 0 ? inode_corrupt(it, ino, "malformed xattr item") : 0;
}

static ssize_t listxattr_locked(struct inode_tree *it, uint64_t ino, char *buf, size_t size)
{
	struct bt_key first = { ino, XATTR_ITEM_KEY, 0 };
	struct bt_cursor c;
	struct inode in;
	size_t total = 0;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	bt_cursor_init(&c, inode_btree(it));
	for (ret = bt_cursor_seek(&c, &first, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		struct bt_key k;
		const void *data;
		uint32_t len;

		bt_cursor_item(&c, &k, &data, &len);
		if (k.objectid != ino || k.type != XATTR_ITEM_KEY)
			break;
		ret = list_item(it, ino, data, len, buf, size, &total);
		if (ret < 0)
			break;
	}
	bt_cursor_release(&c);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	return (ssize_t)total;
}

ssize_t inode_listxattr(struct inode_tree *it, uint64_t ino, char *buf, size_t size)
{
	ssize_t ret;

	inode_lock_read(it);
	ret = listxattr_locked(it, ino, buf, size);
	inode_unlock_read(it);
	return ret;
}

static int removexattr_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, int kind,
			      const char *name, size_t nlen)
{
	struct inode in;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	/* A default ACL on a non-directory is not there to remove: -ENODATA below. */
	if (kind != XATTR_KIND_ACL_DEFAULT && (ret = may_change(&in, kind)) < 0)
		return ret;
	/* Removing the access ACL leaves the mode as it is (as Linux): it already says what
	 * the ACL's base entries and mask said. */
	ret = xattr_item_del(tx, it, ino, xattr_name_hash(name, nlen), name, nlen);
	if (ret == 0)
		ret = touch_ctime(tx, it, ino, &in);
	return ret;
}

int inode_removexattr(struct inode_tree *it, uint64_t ino, const char *name)
{
	struct cowfs_trans *tx;
	size_t nlen;
	int kind = name_kind(name, &nlen), ret;

	if (kind < 0)
		return kind;
	/* A delete: it may use the space reserve, so it works on a full filesystem. */
	ret = inode_update_begin(it, ALLOC_PRIVILEGED, 3, &tx);
	if (ret < 0)
		return ret;
	ret = removexattr_locked(tx, it, ino, kind, name, nlen);
	return inode_update_end(tx, ret);
}
