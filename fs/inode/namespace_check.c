/*
 * The namespace checker (see namespace_check.h): one cursor pass over an fs tree in key order. An
 * inode's items come in type order (INODE_ITEM, INODE_REF, XATTR_ITEM, XATTR_VALUE, DIR_ITEM,
 * DIR_INDEX, EXTENT_DATA), so every item after the inode item can be checked against it at
 * once; each link is checked from all three of its items by point lookups of the other two;
 * link counts need the whole tree, so they are counted into a per-inode table and compared at
 * the end. A spilled xattr value's pieces are read from its entry; the pieces the entries of
 * an inode read are noted, so that its XATTR_VALUE items, which come after, can each be
 * matched to its owner.
 */
#include "fs/inode/namespace_check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <dirent.h>

#include "fs/extent/extent_format.h"
#include "fs/extent/file_extent.h"
#include "fs/inode/dir_entry.h"
#include "fs/inode/internal.h"
#include "fs/inode/subvol.h"
#include "fs/inode/xattr_internal.h"
#include "fs/lib/endian.h"

/* What the end of the pass needs of one inode. */
struct ns_inode {
	uint64_t ino;            /* 0: empty slot */
	uint32_t mode, nlink;
	uint32_t links;          /* INODE_REF entries naming it */
	uint32_t subdirs;        /* INODE_REF entries of directories naming it as the parent */
	bool exists;             /* its inode item decoded */
	bool has_target;         /* a symlink's inline extent was seen */
};

/* The XATTR_VALUE items a spilled entry owns: [key, key + pieces). */
struct ns_span {
	uint64_t key;
	uint32_t pieces;
};

/* The inode whose items the cursor is in. */
struct ns_current {
	uint64_t ino;
	bool exists, told;       /* told: "items of a missing inode" said once */
	struct inode in;
	uint64_t data_end;       /* regular files: end of the last file extent item */
	uint64_t data_bytes;     /* bytes its file extent items reference (nbytes must match) */
	struct ns_span *spans;   /* of its spilled xattr values, sorted at its first piece */
	size_t nspans, spans_cap, next_span;
	bool spans_sorted;
};

struct ns_checker {
	struct cowfs *fs;
	struct inode_tree it;
	struct inode_check_stats *st;
	uint64_t problems;       /* of this tree */
	struct ns_inode *slots;  /* open addressing by inode number */
	size_t cap, count;
	struct ns_current cur;
	uint64_t items;          /* items below the reserved range */
};

static void problem(struct ns_checker *c, uint64_t ino, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct ns_checker *c, uint64_t ino, const char *fmt, ...)
{
	char what[200], msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "fs tree %" PRIu64 " inode %" PRIu64 ": %s",
		 c->it.root->t.owner, ino, what);
	c->problems++;
	c->st->problems++;
	cowfs_report(c->fs, 0, "%s", msg);
}

/* Names go into messages as they are, cut short: they are for a human to find the entry. */
#define NAME_FMT "\"%.*s\""
#define NAME_ARG(n, len) (int)((len) > 64 ? 64 : (len)), (n)

/* ---- the per-inode table ------------------------------------------------------------------ */

static size_t slot_of(const struct ns_checker *c, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 17) & (c->cap - 1);
}

static int table_grow(struct ns_checker *c)
{
	struct ns_inode *old = c->slots;
	size_t oldcap = c->cap;

	c->cap = oldcap ? oldcap * 2 : 1024;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (!c->slots) {
		c->slots = old;
		c->cap = oldcap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].ino)
			continue;
		size_t j = slot_of(c, old[i].ino);
		while (c->slots[j].ino)
			j = (j + 1) & (c->cap - 1);
		c->slots[j] = old[i];
	}
	free(old);
	return 0;
}

/* The entry of `ino` (non-zero), made on first use. NULL only when out of memory. Pointers
 * stay valid until the next call. */
static struct ns_inode *table_get(struct ns_checker *c, uint64_t ino)
{
	size_t i;

	if ((c->count + 1) * 2 > c->cap && table_grow(c) < 0)
		return NULL;
	for (i = slot_of(c, ino); c->slots[i].ino; i = (i + 1) & (c->cap - 1))
		if (c->slots[i].ino == ino)
			return &c->slots[i];
	c->slots[i].ino = ino;
	c->count++;
	return &c->slots[i];
}

/* ---- entry arrays ----------------------------------------------------------------------------- */

/* One {dir_entry, name} of an array (dir_entry_next); *off moves past it. 1: got one, 0: end,
 * -1: malformed. */
static int next_dir_entry(const uint8_t *buf, uint32_t len, uint32_t *off, uint64_t *child,
			  uint8_t *type, const char **name, uint32_t *nlen)
{
	struct dir_entry_view e;
	const char *why;
	int got = dir_entry_next(buf, len, off, &e, &why);

	if (got != 1)
		return got < 0 ? -1 : 0;
	*child = e.child;
	*type = e.type;
	*name = e.name;
	*nlen = e.name_len;
	return 1;
}

/* One {inode_ref_entry, name} of an INODE_REF (inode_ref_next); as next_dir_entry. */
static int next_ref_entry(const uint8_t *buf, uint32_t len, uint32_t *off, uint64_t *index,
			  const char **name, uint32_t *nlen)
{
	struct inode_ref_view r;
	const char *why;
	int got = inode_ref_next(buf, len, off, &r, &why);

	if (got != 1)
		return got < 0 ? -1 : 0;
	*index = r.index;
	*name = r.name;
	*nlen = r.name_len;
	return 1;
}

/*
 * Lookups of the other items of a link. 0: found; -ENOENT: absent (or malformed: the pass
 * reports a malformed item where it meets it, so here it just does not match); -EIO etc.
 */
static int find_dir_item(struct ns_checker *c, uint64_t dir, const char *name, uint32_t nlen,
			 uint64_t *child)
{
	struct bt_key k = { dir, DIR_ITEM_KEY, dir_name_hash(name, nlen) };
	const char *n;
	uint8_t *buf, type;
	uint32_t len, off = 0, l;
	int ret = inode_item_read(&c->it, &k, &buf, &len);

	if (ret < 0)
		return ret;
	ret = -ENOENT;
	while (next_dir_entry(buf, len, &off, child, &type, &n, &l) == 1) {
		if (l == nlen && memcmp(n, name, l) == 0) {
			ret = 0;
			break;
		}
	}
	free(buf);
	return ret;
}

static int find_ref_index(struct ns_checker *c, uint64_t ino, uint64_t dir, const char *name,
			  uint32_t nlen, uint64_t *index)
{
	struct bt_key k = { ino, INODE_REF_KEY, dir };
	const char *n;
	uint8_t *buf;
	uint32_t len, off = 0, l;
	int ret = inode_item_read(&c->it, &k, &buf, &len);

	if (ret < 0)
		return ret;
	ret = -ENOENT;
	while (next_ref_entry(buf, len, &off, index, &n, &l) == 1) {
		if (l == nlen && memcmp(n, name, l) == 0) {
			ret = 0;
			break;
		}
	}
	free(buf);
	return ret;
}

/* Whether (dir, DIR_INDEX, index) is one entry naming `child` as `name`: 0, -ENOENT, -EIO. */
static int match_dir_index(struct ns_checker *c, uint64_t dir, uint64_t index, uint64_t child,
			   const char *name, uint32_t nlen)
{
	struct bt_key k = { dir, DIR_INDEX_KEY, index };
	const char *n;
	uint8_t *buf, type;
	uint32_t len, off = 0, l;
	uint64_t ch;
	int ret = inode_item_read(&c->it, &k, &buf, &len);

	if (ret < 0)
		return ret;
	ret = next_dir_entry(buf, len, &off, &ch, &type, &n, &l) == 1 && off == len &&
	      ch == child && l == nlen && memcmp(n, name, l) == 0 ? 0 : -ENOENT;
	free(buf);
	return ret;
}

/* ---- the spans of spilled xattr values -------------------------------------------------------- */

static void spans_reset(struct ns_checker *c)
{
	c->cur.nspans = c->cur.next_span = 0;
	c->cur.spans_sorted = false;
}

static int span_add(struct ns_checker *c, uint64_t key, uint32_t pieces)
{
	if (c->cur.nspans == c->cur.spans_cap) {
		size_t cap = c->cur.spans_cap ? 2 * c->cur.spans_cap : 16;
		struct ns_span *sp = realloc(c->cur.spans, cap * sizeof(*sp));

		if (!sp)
			return -ENOMEM;
		c->cur.spans = sp;
		c->cur.spans_cap = cap;
	}
	c->cur.spans[c->cur.nspans++] = (struct ns_span){ key, pieces };
	return 0;
}

static int span_cmp(const void *a, const void *b)
{
	const struct ns_span *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* At an inode's first XATTR_VALUE item: its entries are all seen, so their spans are all
 * known; two values in one span is a problem of their entries. */
static void spans_sort(struct ns_checker *c, uint64_t ino)
{
	qsort(c->cur.spans, c->cur.nspans, sizeof(*c->cur.spans), span_cmp);
	for (size_t i = 1; i < c->cur.nspans; i++)
		if (c->cur.spans[i].key == c->cur.spans[i - 1].key)
			problem(c, ino, "two spilled xattr values at value key %" PRIu64,
				c->cur.spans[i].key);
	c->cur.spans_sorted = true;
}

/* Whether a spilled entry of the current inode owns the piece at `offset` (offsets come in
 * increasing order). */
static bool span_owns(struct ns_checker *c, uint64_t offset)
{
	const struct ns_span *sp = c->cur.spans;
	size_t *i = &c->cur.next_span;

	while (*i < c->cur.nspans && offset >= sp[*i].key && offset - sp[*i].key >= sp[*i].pieces)
		(*i)++;
	return *i < c->cur.nspans && offset >= sp[*i].key;
}

/* ---- the items ---------------------------------------------------------------------------- */

/* The inode the cursor leaves: what needs all of its items. */
static void finish_inode(struct ns_checker *c)
{
	if (!c->cur.exists || !S_ISREG(c->cur.in.mode) || c->cur.data_bytes == c->cur.in.nbytes)
		return;
	problem(c, c->cur.ino, "nbytes %" PRIu64 ", but its file extent items reference %" PRIu64
		" bytes", c->cur.in.nbytes, c->cur.data_bytes);
}

static int check_inode_item(struct ns_checker *c, const struct bt_key *k, const void *data,
			    uint32_t len)
{
	struct ns_inode *ni;

	finish_inode(c);
	c->cur.data_end = c->cur.data_bytes = 0;
	spans_reset(c);
	c->cur.ino = k->objectid;
	c->cur.told = false;
	c->cur.exists = false;
	if (k->offset != 0) {
		problem(c, k->objectid, "inode item with offset %" PRIu64, k->offset);
		return 0;
	}
	if (inode_decode(&c->it, k->objectid, data, len, &c->cur.in) < 0) {
		/* inode_decode said what is wrong; count it here. */
		c->problems++;
		c->st->problems++;
		return 0;
	}
	ni = table_get(c, k->objectid);
	if (!ni)
		return -ENOMEM;
	c->cur.exists = ni->exists = true;
	ni->mode = c->cur.in.mode;
	ni->nlink = c->cur.in.nlink;
	c->st->inodes++;
	if (S_ISDIR(ni->mode))
		c->st->dirs++;
	return 0;
}

/* Each link in an INODE_REF must have its DIR_ITEM entry and its DIR_INDEX item. */
static int check_ref_entry(struct ns_checker *c, uint64_t ino, uint64_t dir, uint64_t index,
			   const char *name, uint32_t nlen)
{
	uint64_t child = 0;
	int ret = find_dir_item(c, dir, name, nlen, &child);

	if (ret == -ENOENT)
		problem(c, ino, "inode ref " NAME_FMT " in directory %" PRIu64
			" has no directory item", NAME_ARG(name, nlen), dir);
	else if (ret == 0 && child != ino)
		problem(c, ino, "inode ref " NAME_FMT " in directory %" PRIu64
			", whose entry names inode %" PRIu64, NAME_ARG(name, nlen), dir, child);
	else if (ret < 0)
		return ret;
	ret = match_dir_index(c, dir, index, ino, name, nlen);
	if (ret == -ENOENT)
		problem(c, ino, "inode ref " NAME_FMT " in directory %" PRIu64 " has no matching"
			" directory index %" PRIu64, NAME_ARG(name, nlen), dir, index);
	return ret == -ENOENT ? 0 : ret;
}

static int check_inode_ref(struct ns_checker *c, const struct bt_key *k, const uint8_t *data,
			   uint32_t len)
{
	uint64_t ino = k->objectid, dir = k->offset, index;
	const char *name;
	uint32_t off = 0, nlen;
	int got, ret = 0;

	while (ret == 0 && (got = next_ref_entry(data, len, &off, &index, &name, &nlen)) == 1) {
		struct ns_inode *ni = table_get(c, ino);
		if (!ni)
			return -ENOMEM;
		ni->links++;
		c->st->links++;
		if (c->cur.exists && S_ISDIR(c->cur.in.mode) && dir != 0) {
			struct ns_inode *parent = table_get(c, dir);
			if (!parent)
				return -ENOMEM;
			parent->subdirs++;
		}
		ret = check_ref_entry(c, ino, dir, index, name, nlen);
	}
	if (ret == 0 && got < 0)
		problem(c, ino, "malformed inode ref item for directory %" PRIu64, dir);
	return ret;
}

/*
 * A subvolume entry (DIR_ENTRY_SUBVOL) names a live subvolume whose ROOT_BACKREF says it is
 * this entry: this tree, this directory, this name, and (given) this DIR_INDEX offset. It
 * counts among the directory's subdirectories. *index_out: the backref's index.
 */
static int check_subvol_entry(struct ns_checker *c, uint64_t dir, uint64_t id, uint8_t type,
			      const char *name, uint32_t nlen, uint64_t *index_out)
{
	struct subvol_info si;
	int ret;

	if (type != (DT_DIR | DIR_ENTRY_SUBVOL)) {
		problem(c, dir, "subvolume entry " NAME_FMT " has type %u", NAME_ARG(name, nlen), type);
		return 0;
	}
	cowfs_lock(c->fs);
	ret = cowfs_subvol_get(c->fs, id, &si);
	cowfs_unlock(c->fs);
	if (ret == -ENOENT || ret == -EUCLEAN) {
		problem(c, dir, "entry " NAME_FMT " names subvolume %" PRIu64 ", which %s",
			NAME_ARG(name, nlen), id, ret == -ENOENT ? "does not exist" : "is malformed");
		return 0;
	}
	if (ret < 0)
		return ret;
	if (si.parent != inode_tree_subvol(&c->it) || si.dir != dir || si.name_len != nlen ||
	    memcmp(si.name, name, nlen) != 0)
		problem(c, dir, "entry " NAME_FMT " names subvolume %" PRIu64
			", whose root backref names another place", NAME_ARG(name, nlen), id);
	*index_out = si.index;
	return 0;
}

/* Each DIR_ITEM entry must name an existing inode of its type that has the inode ref. */
static int check_dir_entry(struct ns_checker *c, uint64_t dir, uint64_t child, uint8_t type,
			   const char *name, uint32_t nlen)
{
	struct inode in;
	uint64_t index;
	int ret;

	if (type & DIR_ENTRY_SUBVOL) {
		struct ns_inode *parent = table_get(c, dir);
		if (!parent)
			return -ENOMEM;
		parent->subdirs++;
		return check_subvol_entry(c, dir, child, type, name, nlen, &index);
	}
	ret = inode_read(&c->it, child, &in);

	if (ret == -ENOENT) {
		problem(c, dir, "entry " NAME_FMT " names inode %" PRIu64 ", which does not exist",
			NAME_ARG(name, nlen), child);
		return 0;
	}
	if (ret == -EUCLEAN)
		return 0;   /* the child's inode item is reported where the pass meets it */
	if (ret < 0)
		return ret;
	if (inode_mode_to_dtype(in.mode) != type)
		problem(c, dir, "entry " NAME_FMT " says type %u, inode %" PRIu64 " has type %u",
			NAME_ARG(name, nlen), type, child, inode_mode_to_dtype(in.mode));
	ret = find_ref_index(c, child, dir, name, nlen, &index);
	if (ret == -ENOENT)
		problem(c, child, "linked as " NAME_FMT " in directory %" PRIu64
			" without an inode ref", NAME_ARG(name, nlen), dir);
	return ret == -ENOENT ? 0 : ret;
}

static bool check_in_dir(struct ns_checker *c, const struct bt_key *k, const char *what)
{
	if (!c->cur.exists)
		return false;   /* reported as an item of a missing inode */
	if (!S_ISDIR(c->cur.in.mode)) {
		problem(c, k->objectid, "%s item in an inode that is not a directory", what);
		return false;
	}
	return true;
}

static int check_dir_item(struct ns_checker *c, const struct bt_key *k, const uint8_t *data,
			  uint32_t len)
{
	const char *name;
	uint64_t child;
	uint8_t type;
	uint32_t off = 0, nlen;
	int got, ret = 0;

	if (!check_in_dir(c, k, "directory"))
		return 0;
	while (ret == 0 && (got = next_dir_entry(data, len, &off, &child, &type, &name,
						 &nlen)) == 1) {
		if (dir_name_hash(name, nlen) != k->offset) {
			problem(c, k->objectid, "entry " NAME_FMT " filed under hash %" PRIu64
				", its name hashes to %" PRIu64, NAME_ARG(name, nlen), k->offset,
				dir_name_hash(name, nlen));
			continue;
		}
		ret = check_dir_entry(c, k->objectid, child, type, name, nlen);
	}
	if (ret == 0 && got < 0)
		problem(c, k->objectid, "malformed directory item (hash %" PRIu64 ")", k->offset);
	return ret;
}

/* A DIR_INDEX item must have its DIR_ITEM entry and be the index the inode ref gives. */
static int check_dir_index(struct ns_checker *c, const struct bt_key *k, const uint8_t *data,
			   uint32_t len)
{
	uint64_t dir = k->objectid, child, other = 0, index = 0;
	const char *name;
	uint8_t type;
	uint32_t off = 0, nlen;
	int ret;

	if (!check_in_dir(c, k, "directory index"))
		return 0;
	if (k->offset < DIR_FIRST_INDEX || k->offset >= c->cur.in.next_index)
		problem(c, dir, "directory index %" PRIu64 " outside [2, next index %" PRIu64 ")",
			k->offset, c->cur.in.next_index);
	if (next_dir_entry(data, len, &off, &child, &type, &name, &nlen) != 1 || off != len) {
		problem(c, dir, "malformed directory index item %" PRIu64, k->offset);
		return 0;
	}
	ret = find_dir_item(c, dir, name, nlen, &other);
	if (ret == -ENOENT || (ret == 0 && other != child))
		problem(c, dir, "directory index %" PRIu64 " " NAME_FMT " (inode %" PRIu64
			") has no matching directory item", k->offset, NAME_ARG(name, nlen), child);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (type & DIR_ENTRY_SUBVOL) {
		ret = check_subvol_entry(c, dir, child, type, name, nlen, &index);
		if (ret == 0 && index != k->offset)
			problem(c, dir, "directory index %" PRIu64 " names subvolume %" PRIu64
				", whose root backref gives index %" PRIu64, k->offset, child, index);
		return ret;
	}
	ret = find_ref_index(c, child, dir, name, nlen, &index);
	if (ret == 0 && index != k->offset)
		problem(c, child, "inode ref " NAME_FMT " in directory %" PRIu64 " gives index %"
			PRIu64 ", but directory index %" PRIu64 " names it", NAME_ARG(name, nlen),
			dir, index, k->offset);
	/* No inode ref at all is reported from the directory item. */
	return ret == -ENOENT ? 0 : ret;
}

/*
 * A regular file's file extent items (FORMAT.md 7.1): well formed, sector aligned, inside their
 * extent, in order without overlap, regular ones within end of file (rounded up to a sector).
 */
static void check_file_extent(struct ns_checker *c, const struct bt_key *k, const uint8_t *data,
			      uint32_t len)
{
	uint32_t ss = cowfs_sectorsize(c->fs);
	uint64_t n, eof = (c->cur.in.size + ss - 1) / ss * ss;
	struct file_extent fe;

	if (file_extent_decode(data, len, &fe) < 0 || fe.type == FILE_EXTENT_INLINE) {
		problem(c, k->objectid,
			"file extent at %" PRIu64 " is not a regular or preallocated"
			" item", k->offset);
		return;
	}
	n = fe.num_bytes;
	if (file_extent_check_range(&fe, k->offset, ss) < 0) {
		problem(c, k->objectid, "file extent at %" PRIu64 " out of bounds (%" PRIu64
			" bytes from %" PRIu64 " of a %" PRIu64 "-byte extent)", k->offset, n,
			fe.offset, fe.disk_num_bytes);
		return;
	}
	if (k->offset < c->cur.data_end)
		problem(c, k->objectid, "file extent at %" PRIu64 " overlaps the one before (ends"
			" at %" PRIu64 ")", k->offset, c->cur.data_end);
	if (fe.type == FILE_EXTENT_REG && k->offset + n > eof)
		problem(c, k->objectid,
			"data at %" PRIu64 "..%" PRIu64 " past end of file %" PRIu64, k->offset, k->offset + n, c->cur.in.size);
	c->cur.data_end = k->offset + n;
	if (fe.disk_bytenr)
		c->cur.data_bytes += n;
}

/* File data: a regular file's extents, or a symlink's target, which is one inline extent at
 * offset 0 as long as the symlink's size; nothing else has any. */
static int check_extent_data(struct ns_checker *c, const struct bt_key *k, const uint8_t *data,
			     uint32_t len)
{
	struct file_extent fe;
	struct ns_inode *ni;

	if (!c->cur.exists)
		return 0;
	if (S_ISREG(c->cur.in.mode)) {
		check_file_extent(c, k, data, len);
		return 0;
	}
	if (!S_ISLNK(c->cur.in.mode)) {
		problem(c, k->objectid, "file extent item in an inode that is no file or symlink");
		return 0;
	}
	if (k->offset != 0 || file_extent_decode(data, len, &fe) < 0 ||
	    fe.type != FILE_EXTENT_INLINE || fe.inline_len != c->cur.in.size) {
		problem(c, k->objectid, "symlink extent at %" PRIu64 " is not an inline extent of"
			" its size %" PRIu64, k->offset, c->cur.in.size);
		return 0;
	}
	ni = table_get(c, k->objectid);
	if (!ni)
		return -ENOMEM;
	ni->has_target = true;
	return 0;
}

/* ---- xattrs (fs/inode/xattr.c, acl.c) ------------------------------------------------------------ */

/* Whether an entry before `e` in its item has the same name. */
static bool xattr_name_earlier(const uint8_t *data, const struct xattr_ref *e)
{
	struct xattr_ref o;
	uint32_t off = 0;

	/* The entries before `e` parsed already, so they tile [0, e->at) exactly. */
	while (xattr_entry_next(data, e->at, &off, &o) == 1) {
		if (o.name_len == e->name_len && memcmp(o.name, e->name, e->name_len) == 0)
			return true;
	}
	return false;
}

/* A POSIX ACL must parse, sit on an inode that may have it, and (the access ACL) say what the
 * mode's permission bits say: the filesystem keeps the two in step. */
static void check_acl(struct ns_checker *c, uint64_t ino, int kind, const struct xattr_ref *e,
		      const uint8_t *value)
{
	uint32_t mode = c->cur.in.mode, bits = 0;

	if (S_ISLNK(mode) || (kind == XATTR_KIND_ACL_DEFAULT && !S_ISDIR(mode)))
		problem(c, ino,
			"POSIX ACL " NAME_FMT " on an inode of type %o, which cannot have it", NAME_ARG(e->name, e->name_len), mode & S_IFMT);
	if (acl_value_check(value, e->value_len) <= 0) {
		problem(c, ino, "malformed POSIX ACL " NAME_FMT, NAME_ARG(e->name, e->name_len));
		return;
	}
	if (kind != XATTR_KIND_ACL_ACCESS)
		return;
	acl_value_mode(value, e->value_len, &bits);
	if (bits != (mode & 0777))
		problem(c, ino, "access ACL grants %03o, but the mode's permission bits are %03o",
			bits, mode & 0777);
}

/* `value`: the entry's value, read from its pieces if it spilled. */
static void check_xattr_entry(struct ns_checker *c, uint64_t ino, const struct xattr_ref *e,
			      const uint8_t *value)
{
	uint32_t mode = c->cur.in.mode;
	int kind = xattr_name_kind(e->name, e->name_len);

	if (kind < 0)
		problem(c, ino, "xattr " NAME_FMT " is in no namespace cowfs keeps",
			NAME_ARG(e->name, e->name_len));
	else if (kind == XATTR_KIND_USER && !S_ISREG(mode) && !S_ISDIR(mode))
		problem(c, ino, "user xattr " NAME_FMT " on an inode that is no file or directory",
			NAME_ARG(e->name, e->name_len));
	else if (kind == XATTR_KIND_ACL_ACCESS || kind == XATTR_KIND_ACL_DEFAULT)
		check_acl(c, ino, kind, e, value);
}

/* A spilled entry: allowed by the superblock, its pieces all there and exactly its length.
 * Its span is noted for the pieces' own check, whole when the pieces are wrong (they are
 * reported here, not once more each as belonging to nothing). */
static int check_spilled(struct ns_checker *c, uint64_t ino, const struct xattr_ref *e)
{
	uint32_t pieces = XATTR_VALUE_KEY_SPAN;
	const char *why = NULL;
	uint8_t *value = malloc(e->value_len);
	int ret = value ? xattr_pieces_read(&c->it, ino, e, value, &pieces, &why) : -ENOMEM;

	if (!(cowfs_incompat_features(c->fs) & COWFS_INCOMPAT_BIG_XATTR))
		problem(c, ino, "xattr " NAME_FMT " spilled, but the superblock lacks the"
			" BIG_XATTR feature", NAME_ARG(e->name, e->name_len));
	if (ret == -EUCLEAN)
		problem(c, ino, "xattr " NAME_FMT " (%" PRIu32 " bytes at value key %" PRIu64 "): %s",
			NAME_ARG(e->name, e->name_len), e->value_len, e->value_key, why);
	else if (ret == 0)
		check_xattr_entry(c, ino, e, value);
	free(value);
	if (ret < 0 && ret != -EUCLEAN)
		return ret;
	return span_add(c, e->value_key, pieces);
}

/* Each entry: well-formed, filed under its name's hash, once per item, a name and value
 * xattr.c would have stored. */
static int check_xattr_item(struct ns_checker *c, const struct bt_key *k, const uint8_t *data,
			    uint32_t len)
{
	struct xattr_ref e;
	uint32_t off = 0;
	int got, ret = 0;

	if (!c->cur.exists)
		return 0;   /* reported as an item of a missing inode */
	while (ret == 0 && (got = xattr_entry_next(data, len, &off, &e)) == 1) {
		uint64_t hash = xattr_name_hash(e.name, e.name_len);

		if (hash != k->offset)
			problem(c, k->objectid, "xattr " NAME_FMT " filed under hash %" PRIu64
				", its name hashes to %" PRIu64, NAME_ARG(e.name, e.name_len),
				k->offset, hash);
		else if (xattr_name_earlier(data, &e))
			problem(c, k->objectid, "xattr " NAME_FMT " twice in one item",
				NAME_ARG(e.name, e.name_len));
		else if (e.spilled)
			ret = check_spilled(c, k->objectid, &e);
		else
			check_xattr_entry(c, k->objectid, &e, e.value);
	}
	if (ret == 0 && got < 0)
		problem(c, k->objectid, "malformed xattr item (hash %" PRIu64 ")", k->offset);
	return ret;
}

/* Each piece of a spilled value must belong to a spilled entry of its inode. */
static int check_xattr_value(struct ns_checker *c, const struct bt_key *k)
{
	if (!c->cur.exists)
		return 0;
	if (!c->cur.spans_sorted)
		spans_sort(c, k->objectid);
	if (!span_owns(c, k->offset))
		problem(c, k->objectid, "xattr value piece at %" PRIu64 " belongs to no xattr",
			k->offset);
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

static int check_item(struct ns_checker *c, const struct bt_key *k, const void *data,
		      uint32_t len)
{
	if (k->objectid < INODE_ROOT_INO) {
		problem(c, k->objectid, "item (type %u, offset %" PRIu64 ") below the root inode"
			" number", k->type, k->offset);
		return 0;
	}
	if (k->type == INODE_ITEM_KEY)
		return check_inode_item(c, k, data, len);
	if (k->objectid != c->cur.ino) {
		c->cur.ino = k->objectid;
		c->cur.exists = c->cur.told = false;
		spans_reset(c);
	}
	if (!c->cur.exists && !c->cur.told) {
		/* An inode item that does not decode was reported already. */
		struct bt_key ik = { k->objectid, INODE_ITEM_KEY, 0 };
		if (bt_lookup(&c->it.root->t, &ik, NULL, 0, NULL) == -ENOENT)
			problem(c, k->objectid,
				"items (type %u first) of an inode that does not exist", k->type);
		c->cur.told = true;
	}
	switch (k->type) {
	case INODE_REF_KEY:
		return check_inode_ref(c, k, data, len);
	case XATTR_ITEM_KEY:
		return check_xattr_item(c, k, data, len);
	case XATTR_VALUE_KEY:
		return check_xattr_value(c, k);
	case DIR_ITEM_KEY:
		return check_dir_item(c, k, data, len);
	case DIR_INDEX_KEY:
		return check_dir_index(c, k, data, len);
	case EXTENT_DATA_KEY:
		return check_extent_data(c, k, data, len);
	}
	return 0;
}

/* ---- link counts ------------------------------------------------------------------------------- */

static bool is_orphan(struct ns_checker *c, uint64_t ino)
{
	struct bt_key k = { ORPHAN_OBJECTID, ORPHAN_ITEM_KEY, ino };

	return bt_lookup(&c->it.root->t, &k, NULL, 0, NULL) == 0;
}

static void check_counts(struct ns_checker *c, const struct ns_inode *ni)
{
	if (!ni->exists)
		return;   /* its items were reported as belonging to a missing inode */
	/* An orphan (unlinked while in use) has no names and nlink 0, and is freed later. */
	if (ni->nlink == 0 && ni->links == 0 && is_orphan(c, ni->ino))
		return;
	if (S_ISDIR(ni->mode)) {
		uint32_t want_links = ni->ino == INODE_ROOT_INO ? 0 : 1;
		if (ni->links > want_links)
			problem(c, ni->ino, "directory has %u links (inode refs), not %u",
				ni->links, want_links);
		if (ni->nlink != 2 + ni->subdirs)
			problem(c, ni->ino, "directory nlink %u, but it has %u subdirectories",
				ni->nlink, ni->subdirs);
	} else if (ni->nlink != ni->links) {
		problem(c, ni->ino, "nlink %u, but %u links (inode refs)", ni->nlink, ni->links);
	}
	if (ni->links == 0 && ni->ino != INODE_ROOT_INO)
		problem(c, ni->ino, "unreachable inode: no directory links to it");
	if (S_ISLNK(ni->mode) && !ni->has_target)
		problem(c, ni->ino, "symlink without its target");
}

static void check_all_counts(struct ns_checker *c)
{
	bool has_root = false;

	for (size_t i = 0; i < c->cap; i++) {
		if (!c->slots[i].ino)
			continue;
		check_counts(c, &c->slots[i]);
		if (c->slots[i].ino == INODE_ROOT_INO && c->slots[i].exists &&
		    S_ISDIR(c->slots[i].mode))
			has_root = true;
	}
	/* An empty tree (a fresh library-made filesystem) has no namespace yet. */
	if (c->items && !has_root)
		problem(c, INODE_ROOT_INO, "no root directory");
}

/* Every orphan item names an inode that exists with no links left. */
static int check_orphans(struct ns_checker *c)
{
	struct bt_key from = { ORPHAN_OBJECTID, ORPHAN_ITEM_KEY, 0 }, k;
	struct bt_cursor cur;
	int ret;

	bt_cursor_init(&cur, &c->it.root->t);
	for (ret = bt_cursor_seek(&cur, &from, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&cur)) {
		bt_cursor_item(&cur, &k, NULL, NULL);
		if (k.objectid != ORPHAN_OBJECTID || k.type != ORPHAN_ITEM_KEY)
			break;
		struct ns_inode *ni = table_get(c, k.offset);
		if (!ni) {
			ret = -ENOMEM;
			break;
		}
		if (!ni->exists || ni->nlink != 0)
			problem(c, k.offset, "orphan item for an inode that %s",
				ni->exists ? "still has links" : "does not exist");
	}
	bt_cursor_release(&cur);
	return ret == -ENOENT ? 0 : ret;
}

/* ---- the pass ------------------------------------------------------------------------------------- */

static int walk_items(struct ns_checker *c)
{
	struct bt_cursor cur;
	int ret;

	bt_cursor_init(&cur, &c->it.root->t);
	for (ret = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); ret == 0;
	     ret = bt_cursor_next(&cur)) {
		struct bt_key k;
		const void *data;
		uint32_t len;

		bt_cursor_item(&cur, &k, &data, &len);
		if (k.objectid > INODE_LAST_INO)
			break;   /* reserved for orphans and the like: not inodes */
		c->items++;
		ret = check_item(c, &k, data, len);
		if (ret < 0)
			break;
	}
	if (ret == -ENOENT || ret == 0)
		finish_inode(c);
	bt_cursor_release(&cur);
	return ret == -ENOENT ? 0 : ret;
}

/* Every subvolume whose ROOT_REF says it lives in this tree has its entry here. */
static int check_child_subvols(struct ns_checker *c)
{
	struct subvol_info si;
	uint64_t from = SUBVOL_FIRST_ID, parent = inode_tree_subvol(&c->it);
	int ret;

	for (;;) {
		uint64_t child = 0;
		cowfs_lock(c->fs);
		ret = cowfs_subvol_next_child(c->fs, parent, from, &si);
		cowfs_unlock(c->fs);
		if (ret < 0)
			break;
		from = si.id + 1;
		if (si.parent != parent)
			continue;
		ret = find_dir_item(c, si.dir, si.name, (uint32_t)si.name_len, &child);
		if (ret == -ENOENT || (ret == 0 && child != si.id))
			problem(c, si.dir, "subvolume %" PRIu64 " is linked as " NAME_FMT
				" here, but the directory has no such entry", si.id,
				NAME_ARG(si.name, (uint32_t)si.name_len));
		else if (ret < 0)
			break;
		ret = match_dir_index(c, si.dir, si.index, si.id, si.name, (uint32_t)si.name_len);
		if (ret == -ENOENT)
			problem(c, si.dir, "subvolume %" PRIu64 " has no directory index %" PRIu64,
				si.id, si.index);
		else if (ret < 0)
			break;
	}
	return ret == -ENOENT || ret == -EUCLEAN ? 0 : ret;
}

int inode_check_tree(struct cowfs *fs, struct cowfs_root *root, struct inode_check_stats *st)
{
	struct ns_checker c = { .fs = fs, .st = st };
	int ret;

	inode_tree_init(&c.it, fs, root);
	st->trees++;
	ret = table_grow(&c);
	if (ret == 0)
		ret = walk_items(&c);
	if (ret == -EIO || ret == -EUCLEAN) {
		/* The block checker names the bad node; here it only ends this tree's check. */
		problem(&c, 0, "tree unreadable, namespace check stopped (%s)", strerror(-ret));
		ret = 0;
	} else if (ret == 0) {
		check_all_counts(&c);
		ret = check_orphans(&c);
		if (ret == 0)
			ret = check_child_subvols(&c);
	}
	free(c.slots);
	free(c.cur.spans);
	if (ret < 0)
		return ret;
	return c.problems ? -EUCLEAN : 0;
}

static bool subvol_deleting(struct cowfs *fs, uint64_t id)
{
	struct subvol_info si;
	int ret;

	cowfs_lock(fs);
	ret = cowfs_subvol_get(fs, id, &si);
	cowfs_unlock(fs);
	return ret == 0 && (si.flags & SUBVOL_DELETING);
}

int inode_check_all(struct cowfs *fs, struct inode_check_stats *st)
{
	struct bt_cursor cur;
	int r, ret = 0;
	bool dirty = false;

	memset(st, 0, sizeof(*st));
	bt_cursor_init(&cur, cowfs_root_tree(fs));
	for (r = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); r == 0 && ret == 0;
	     r = bt_cursor_next(&cur)) {
		struct cowfs_root *root;
		struct bt_key k;

		bt_cursor_item(&cur, &k, NULL, NULL);
		if (k.type != ROOT_ITEM_KEY || (k.objectid != FS_TREE_ID && k.objectid < 256))
			continue;
		/* Opening registers the tree with fs: under the lock, as every tree change. */
		cowfs_lock(fs);
		ret = cowfs_tree_open(fs, k.objectid, &root);
		cowfs_unlock(fs);
		if (ret == -EUCLEAN || ret == -EIO) {
			/* A malformed root item: the block checker reports it. */
			ret = 0;
			continue;
		}
		if (ret == 0 && subvol_deleting(fs, k.objectid))
			continue;   /* half dropped: its namespace is gone in part, by design */
		if (ret == 0)
			ret = inode_check_tree(fs, root, st);
		if (ret == -EUCLEAN) {
			dirty = true;
			ret = 0;
		}
	}
	bt_cursor_release(&cur);
	if (ret == 0 && r < 0 && r != -ENOENT)
		ret = r;
	if (ret < 0)
		return ret;
	return dirty ? -EUCLEAN : 0;
}
