/*
 * Declarations shared by xattr.c, acl.c and the namespace checker (and the unit tests, which
 * use the item functions to put colliding names into one item); not part of the interface.
 *
 * The item functions work on the item of an explicit name hash, inside an open transaction
 * (writes) or with the filesystem lock held (reads). They check the item and the flags first
 * and change it with one write, so a refusal changes nothing.
 */
#ifndef COWFS_INODE_XATTR_INTERNAL_H
#define COWFS_INODE_XATTR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/inode/internal.h"
#include "fs/inode/xattr.h"
#include "fs/inode/xattr_entry.h"
#include "fs/inode/xattr_format.h"

/* What a name is: which namespace, so which rules apply to it. */
enum xattr_kind {
	XATTR_KIND_USER,
	XATTR_KIND_TRUSTED,
	XATTR_KIND_SECURITY,
	XATTR_KIND_ACL_ACCESS,
	XATTR_KIND_ACL_DEFAULT,
};

/* The kind of `name` (`len` bytes), or -ERANGE (length), -EOPNOTSUPP (namespace), -EINVAL
 * (nothing after the prefix). */
int xattr_name_kind(const char *name, size_t len);
uint64_t xattr_name_hash(const char *name, size_t len);

/*
 * The value of the spilled entry `e` of `ino`, read from its pieces into `dst` (e->value_len
 * bytes; NULL: only check them), and the number of pieces. 0; -EUCLEAN with *why saying what
 * is wrong (a piece missing or empty, the pieces longer than the value); -EIO.
 */
int xattr_pieces_read(struct inode_tree *it, uint64_t ino, const struct xattr_ref *e, uint8_t *dst,
		      uint32_t *pieces, const char **why);

/* The value of `name` in the item of `hash`, malloc'ed: 0, -ENODATA, -EUCLEAN, -EIO. */
int xattr_item_get(struct inode_tree *it, uint64_t ino, uint64_t hash, const char *name,
		   size_t nlen, uint8_t **value, uint32_t *vlen);
/* Whether `name` is set in the item of `hash`: 1, 0, or a negative errno. */
int xattr_item_has(struct inode_tree *it, uint64_t ino, uint64_t hash, const char *name,
		   size_t nlen);
/* Set `name` in the item of `hash` (flags as inode_setxattr): in the entry, or spilled into
 * pieces when the entry would not fit in the item (alone or beside the names that collide with
 * it). -E2BIG: more than XATTR_VALUE_MAX bytes; -ENOSPC: not even a spilled entry fits beside
 * the names that collide with it. */
int xattr_item_put(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t hash,
		   const char *name, size_t nlen, const void *value, size_t vlen, int flags);
/* Remove `name` from the item of `hash` (deleting the item with its last entry, and the
 * value's pieces): -ENODATA. */
int xattr_item_del(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t hash,
		   const char *name, size_t nlen);

/* Number of entries of a well-formed ACL value (0: only the header), or -EINVAL, or
 * -EOPNOTSUPP for a header version other than 2. */
int acl_value_check(const void *value, size_t size);
/* The permission bits (0777) a well-formed ACL value gives the mode; true if the ACL says
 * more than they can (named entries or a mask), as Linux posix_acl_equiv_mode. */
bool acl_value_mode(const void *value, size_t size, uint32_t *bits);

/*
 * The access ACL's answer to `c` asking for `want` (INODE_MAY_* bits) on `ino`, owned by
 * `owner` and `group`, as Linux's posix_acl_permission: 0 or -EACCES; -ENODATA when `ino`
 * has no access ACL (the mode bits decide), -EUCLEAN, -EIO. With the filesystem lock held.
 */
int acl_access_permission(struct inode_tree *it, uint64_t ino, uid_t owner, gid_t group,
			  const struct inode_caller *c, unsigned want);

/* inode_setxattr's work on a POSIX ACL name, inside its transaction: `in` is the inode's
 * item, which this changes (mode, ctime) and writes. */
int acl_set_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, struct inode *in,
		   bool access, const void *value, size_t size, int flags);
/* Rewrite the access ACL of `ino`, if it has one, for the permission bits of `mode`, inside
 * an open transaction. Does not change the inode item: inode_setattr could call this in its
 * own transaction instead of the caller using acl_chmod. */
int acl_chmod_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint32_t mode);

#endif
