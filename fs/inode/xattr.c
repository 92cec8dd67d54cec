/*
 * Extended attributes: one XATTR_ITEM per (inode, name hash), holding an array of
 * {xattr_entry, name, value}, more than one entry only when names collide, as a directory's
 * DIR_ITEM arrays. A value too large for the item goes into XATTR_VALUE pieces, the entry
 * keeping its length and where they are (a spilled entry; xattr_format.h). An update reads the
 * item, checks everything (flags, sizes, what collides with it, the old value's pieces) and
 * only then changes anything: the old pieces go, the new ones come, the item is written back
 * once, all in the one transaction. POSIX ACL names are handed to acl.c, which also keeps the
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

size_t xattr_inline_max(const struct inode_tree *it, size_t name_len)
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

/* ---- value pieces ---------------------------------------------------------------------------- */

static struct bt_key piece_key(uint64_t ino, uint64_t value_key, uint32_t i)
{
	return (struct bt_key){ ino, XATTR_VALUE_KEY, value_key + i };
}

static uint32_t piece_max(const struct inode_tree *it)
{
	return bt_max_item_size(cowfs_nodesize(it->fs));
}

/* Pieces a spilled value of `vlen` bytes takes: all full but the last. */
static uint32_t pieces_for(const struct inode_tree *it, size_t vlen)
{
	return (uint32_t)((vlen + piece_max(it) - 1) / piece_max(it));
}

int xattr_pieces_read(struct inode_tree *it, uint64_t ino, const struct xattr_ref *e, uint8_t *dst,
		      uint32_t *pieces, const char **why)
{
	uint32_t got = 0, i, len;

	for (i = 0; got < e->value_len; i++) {
		struct bt_key k = piece_key(ino, e->value_key, i);
		uint32_t room = dst ? e->value_len - got : 0;
		int ret;

		if (i == XATTR_VALUE_KEY_SPAN) {
			*why = "value pieces run past their key span";
			return -EUCLEAN;
		}
		ret = bt_lookup(inode_btree(it), &k, dst ? dst + got : NULL, room, &len);
		if (ret == -ENOENT)
			*why = "value piece missing";
		else if (ret == 0 && len == 0)
			*why = "empty value piece";
		else if (ret == 0 && len > e->value_len - got)
			*why = "value pieces longer than the value";
		else if (ret < 0)
			return ret;
		else {
			got += len;
			continue;
		}
		return -EUCLEAN;
	}
	*pieces = i;
	return 0;
}

/* xattr_pieces_read, a malformed value reported naming the inode. */
static int pieces_read(struct inode_tree *it, uint64_t ino, const struct xattr_ref *e,
		       uint8_t *dst, uint32_t *pieces)
{
	const char *why = NULL;
	int ret = xattr_pieces_read(it, ino, e, dst, pieces, &why);

	return ret == -EUCLEAN ? inode_corrupt(it, ino, why) : ret;
}

/* Where a new value of `ino` filed under `hash` goes: the first span from the hash's own on
 * that no piece occupies (another name's hash may round to the same span). */
static int span_find(struct inode_tree *it, uint64_t ino, uint64_t hash, uint64_t *value_key)
{
	uint64_t at = hash - hash % XATTR_VALUE_KEY_SPAN;
	struct bt_cursor c;
	int ret = -ENOSPC;

	bt_cursor_init(&c, inode_btree(it));
	for (unsigned tries = 0; tries < 1024; tries++, at += XATTR_VALUE_KEY_SPAN) {
		struct bt_key k = piece_key(ino, at, 0);

		ret = bt_cursor_seek(&c, &k, BT_SEEK_GE);
		if (ret == -ENOENT || (ret == 0 && (c.key.objectid != ino ||
						    c.key.type != XATTR_VALUE_KEY ||
						    c.key.offset - at >= XATTR_VALUE_KEY_SPAN))) {
			*value_key = at;
			ret = 0;
			break;
		}
		if (ret < 0)
			break;
		ret = -ENOSPC;   /* a thousand names in a row on one span: never in practice */
	}
	bt_cursor_release(&c);
	return ret;
}

static int pieces_write(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			uint64_t value_key, const uint8_t *value, uint32_t vlen)
{
	uint32_t max = piece_max(it), off = 0;
	int ret = 0;

	for (uint32_t i = 0; ret == 0 && off < vlen; i++) {
		struct bt_key k = piece_key(ino, value_key, i);
		uint32_t n = MIN(max, vlen - off);

		ret = bt_insert(&tx->bt, inode_btree(it), &k, value + off, n);
		off += n;
	}
	/* An older cowfs would take the pieces for items of an unknown inode's: it must refuse
	 * the image instead. */
	if (ret == 0)
		cowfs_trans_use_feature(tx, COWFS_INCOMPAT_BIG_XATTR);
	return ret;
}

static int pieces_delete(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			 uint64_t value_key, uint32_t pieces)
{
	int ret = 0;

	for (uint32_t i = 0; ret == 0 && i < pieces; i++) {
		struct bt_key k = piece_key(ino, value_key, i);

		ret = bt_delete(&tx->bt, inode_btree(it), &k);
	}
	return ret;
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

/* The value of the entry found in `x`, malloc'ed; `x` is released. */
static int value_take(struct inode_tree *it, uint64_t ino, struct xattr_item *x, uint8_t **value,
		      uint32_t *vlen)
{
	uint32_t pieces;
	uint8_t *v;
	int ret;

	*vlen = x->e.value_len;
	if (!x->e.spilled) {
		/* The value moves to the front of the item's buffer, which the caller then owns. */
		memmove(x->buf, x->e.value, x->e.value_len);
		*value = x->buf;
		return 0;
	}
	v = malloc(x->e.value_len);
	ret = v ? pieces_read(it, ino, &x->e, v, &pieces) : -ENOMEM;
	item_release(x);
	if (ret < 0)
		free(v);
	else
		*value = v;
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
	return value_take(it, ino, &x, value, vlen);
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

/* What a put does, as put_check decided it. */
struct put_plan {
	uint32_t newlen;         /* the item's size after it */
	bool spill;              /* the new value goes into pieces */
	uint32_t old_pieces;     /* pieces of the value it replaces */
};

/* Whether the put may go ahead, and how. */
static int put_check(struct inode_tree *it, uint64_t ino, const struct xattr_item *x,
		     size_t nlen, size_t vlen, int flags, struct put_plan *p)
{
	uint32_t max = bt_max_item_size(cowfs_nodesize(it->fs));
	size_t esize = xattr_entry_size(nlen, vlen);
	size_t rest = x->len - (x->found ? x->e.size : 0);

	memset(p, 0, sizeof(*p));
	if ((flags & XATTR_CREATE) && x->found)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !x->found)
		return -ENODATA;
	if (vlen > XATTR_VALUE_MAX)
		return -E2BIG;
	/* A value that fits stays in its entry, as it always did: only the larger ones spill. */
	if (vlen > UINT16_MAX || rest + esize > max) {
		p->spill = true;
		esize = XATTR_SPILLED_ENTRY_SIZE(nlen);
	}
	if (rest + esize > max)
		return -ENOSPC;   /* names colliding on one hash fill the item: not in practice */
	p->newlen = (uint32_t)(rest + esize);
	return x->found && x->e.spilled ? pieces_read(it, ino, &x->e, NULL, &p->old_pieces) : 0;
}

/* The value's pieces, if it spills: in the first free span (the old value's pieces are gone
 * by now, so usually its own). */
static int put_pieces(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t hash,
		      const void *value, size_t vlen, uint64_t *value_key)
{
	int ret = span_find(it, ino, hash, value_key);

	return ret < 0 ? ret : pieces_write(tx, it, ino, *value_key, value, (uint32_t)vlen);
}

int xattr_item_put(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t hash,
		   const char *name, size_t nlen, const void *value, size_t vlen, int flags)
{
	struct xattr_item x;
	struct put_plan p;
	uint8_t *nbuf = NULL;
	uint64_t value_key = 0;
	uint32_t keep;
	int ret = item_load(it, ino, hash, name, nlen, &x);

	if (ret == 0)
		ret = put_check(it, ino, &x, nlen, vlen, flags, &p);
	if (ret == 0 && !(nbuf = malloc(p.newlen)))
		ret = -ENOMEM;
	if (ret == 0 && p.old_pieces)
		ret = pieces_delete(tx, it, ino, x.e.value_key, p.old_pieces);
	if (ret == 0 && p.spill)
		ret = put_pieces(tx, it, ino, hash, value, vlen, &value_key);
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
	if (p.spill)
		xattr_spilled_encode(nbuf + keep, name, nlen, (uint32_t)vlen, value_key);
	else
		xattr_entry_encode(nbuf + keep, name, nlen, value, vlen);
	ret = item_store(tx, it, &x, nbuf, p.newlen);
out:
	free(nbuf);
	item_release(&x);
	return ret;
}

int xattr_item_del(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t hash,
		   const char *name, size_t nlen)
{
	struct xattr_item x;
	uint32_t pieces = 0;
	int ret = item_load(it, ino, hash, name, nlen, &x);

	if (ret == 0 && !x.found)
		ret = -ENODATA;
	if (ret == 0 && x.e.spilled)
		ret = pieces_read(it, ino, &x.e, NULL, &pieces);
	if (ret == 0 && pieces)
		ret = pieces_delete(tx, it, ino, x.e.value_key, pieces);
	if (ret == 0) {
		memmove(x.buf + x.e.at, x.buf + x.e.at + x.e.size, x.len - x.e.at - x.e.size);
		ret = item_store(tx, it, &x, x.buf, x.len - x.e.size);
	}
	item_release(&x);
	return ret;
}

/* Pieces of the value of `name`, if it has one and spilled, judged by its length (the update
 * itself checks them, and reports a malformed item). */
static int old_pieces(struct inode_tree *it, uint64_t ino, const char *name, size_t nlen,
		      uint32_t *pieces)
{
	struct bt_key k = { ino, XATTR_ITEM_KEY, xattr_name_hash(name, nlen) };
	struct xattr_ref e;
	uint32_t len, off = 0;
	uint8_t *buf;
	int ret = inode_item_read(it, &k, &buf, &len);

	*pieces = 0;
	if (ret < 0)
		return ret == -ENOENT ? 0 : ret;
	while (xattr_entry_next(buf, len, &off, &e) == 1) {
		if (e.name_len == nlen && memcmp(e.name, name, nlen) == 0) {
			*pieces = e.spilled ? pieces_for(it, e.value_len) : 0;
			break;
		}
	}
	free(buf);
	return 0;
}

/* An update of `name` taking `items` item changes of its own, in a transaction begun with
 * room for them: room also for deleting the pieces of the value it replaces or removes. First
 * thing in the update: cowfs_reserve may commit and let the lock go. */
static int reserve_old_pieces(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			      const char *name, size_t nlen, uint64_t items)
{
	uint32_t old;
	int ret = old_pieces(it, ino, name, nlen, &old);

	if (ret < 0 || old == 0)
		return ret;
	return cowfs_reserve(tx, (items + old) * cowfs_update_nodes(inode_btree(it)));
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

static bool is_acl(int kind)
{
	return kind == XATTR_KIND_ACL_ACCESS || kind == XATTR_KIND_ACL_DEFAULT;
}

/* The largest value of a name of `kind` and `nlen` bytes. POSIX ACLs stay within one item, as
 * ext4 keeps them within one block: a new inode's inheritance stores them with one insert each
 * (acl_apply_new). */
static size_t value_max(const struct inode_tree *it, int kind, size_t nlen)
{
	return is_acl(kind) ? xattr_inline_max(it, nlen) : XATTR_VALUE_MAX;
}

/* The xattr item (a resize may move it: a delete and an insert) and the inode item. */
#define XATTR_UPDATE_ITEMS 3

static int setxattr_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, int kind,
			   const char *name, size_t nlen, const void *value, size_t size, int flags,
			   uint64_t items)
{
	struct inode in;
	int ret = reserve_old_pieces(tx, it, ino, name, nlen, items);

	if (ret == 0)
		ret = inode_read(it, ino, &in);
	if (ret == 0)
		ret = may_change(&in, kind);
	if (ret < 0)
		return ret;
	if (is_acl(kind))
		return acl_set_locked(tx, it, ino, &in, kind == XATTR_KIND_ACL_ACCESS, value, size,
				      flags);
	ret = xattr_item_put(tx, it, ino, xattr_name_hash(name, nlen), name, nlen, value, size,
			     flags);
	if (ret == 0)
		ret = touch_ctime(tx, it, ino, &in);
	return ret;
}

int inode_setxattr(struct inode_tree *it, uint64_t ino, const char *name, const void *value,
		   size_t size, int flags)
{
	struct cowfs_trans *tx;
	size_t nlen;
	uint64_t items;
	int kind = name_kind(name, &nlen), ret;

	if (kind < 0)
		return kind;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (size > value_max(it, kind, nlen))
		return -E2BIG;
	items = XATTR_UPDATE_ITEMS + (size > xattr_inline_max(it, nlen) ? pieces_for(it, size) : 0);
	ret = inode_update_begin(it, ALLOC_NORMAL, items, &tx);
	if (ret < 0)
		return ret;
	ret = setxattr_locked(tx, it, ino, kind, name, nlen, value, size, flags, items);
	return inode_update_end(tx, ret);
}

static ssize_t getxattr_locked(struct inode_tree *it, uint64_t ino, int kind, const char *name,
			       size_t nlen, void *buf, size_t size)
{
	struct xattr_item x;
	struct inode in;
	uint8_t *value;
	uint32_t vlen;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	if (!may_have(&in, kind))
		return -ENODATA;
	ret = item_load(it, ino, xattr_name_hash(name, nlen), name, nlen, &x);
	if (ret == 0 && !x.found)
		ret = -ENODATA;
	if (ret == 0 && size && x.e.value_len > size)
		ret = -ERANGE;
	/* The length alone, or too long for `buf`: the entry says so, the pieces stay unread. */
	if (ret < 0 || size == 0) {
		vlen = ret == 0 ? x.e.value_len : 0;
		item_release(&x);
		return ret < 0 ? ret : (ssize_t)vlen;
	}
	ret = value_take(it, ino, &x, &value, &vlen);
	if (ret < 0)
		return ret;
	if (vlen)
		memcpy(buf, value, vlen);
	free(value);
	return (ssize_t)vlen;
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
	int ret = reserve_old_pieces(tx, it, ino, name, nlen, XATTR_UPDATE_ITEMS);

	if (ret == 0)
		ret = inode_read(it, ino, &in);
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
	ret = inode_update_begin(it, ALLOC_PRIVILEGED, XATTR_UPDATE_ITEMS, &tx);
	if (ret < 0)
		return ret;
	ret = removexattr_locked(tx, it, ino, kind, name, nlen);
	return inode_update_end(tx, ret);
}
