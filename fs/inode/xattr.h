/*
 * Extended attributes and POSIX ACLs of the inodes of one fs tree (items:
 * fs/inode/xattr_format.h, docs/FORMAT.md 12).
 *
 * Names are whole names with their namespace prefix, NUL-terminated. Kept: "user.*" (regular
 * files and directories only, as Linux), "trusted.*", "security.*", and the two POSIX ACLs
 * "system.posix_acl_access" and "system.posix_acl_default"; any other name is -EOPNOTSUPP.
 * A name is 1..255 bytes (-ERANGE otherwise, as Linux) with something after its prefix
 * (-EINVAL). A value is at most XATTR_VALUE_MAX (65,536) bytes (-E2BIG), as Linux's
 * XATTR_SIZE_MAX; a POSIX ACL at most xattr_inline_max() bytes. A value up to
 * xattr_inline_max() is kept in its entry's item (16,291 bytes minus the name's length with
 * 16 KiB nodes, 4,003 minus it with 4 KiB nodes); a larger one in pieces of its own, in the
 * same transaction (FORMAT.md 12, "Value pieces").
 *
 * Permission checks are not done here: the kernel does them (FUSE default_permissions).
 *
 * POSIX ACLs. With FUSE_POSIX_ACL the kernel enforces ACLs but leaves keeping them to the
 * filesystem: the mode in step with the access ACL, chmod, inheritance on create and the umask.
 * So, as Linux filesystems do:
 *   - an ACL value is checked as Linux's posix_acl_valid (-EINVAL; a header version other than
 *     2 is -EOPNOTSUPP, as posix_acl_from_xattr); a value that is only the header removes
 *     the ACL;
 *   - setting the access ACL sets the mode's permission bits from it (posix_acl_update_mode:
 *     user from USER_OBJ, group from MASK or else GROUP_OBJ, other from OTHER); an access ACL
 *     the mode bits say in full (only the three base entries) is not stored;
 *   - a default ACL is for directories only (-EACCES otherwise); on symlinks neither (-EOPNOTSUPP);
 *   - chmod goes through acl_chmod(), which rewrites the access ACL to the new mode;
 *   - a new inode's mode and ACLs come from acl_new_inode() and acl_apply_new().
 * The setgid clearing of posix_acl_update_mode is left to the kernel.
 *
 * Updates change ctime, take one transaction each and check everything first: an error they
 * return leaves the tree as it was. Reads take the filesystem lock. Errors are negative
 * errnos; a malformed item is -EUCLEAN, reported naming the inode.
 */
#ifndef COWFS_INODE_XATTR_H
#define COWFS_INODE_XATTR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/xattr.h>     /* XATTR_CREATE, XATTR_REPLACE */

#include "fs/inode/inode.h"

#define XATTR_NAME_LEN_MAX  255

#define XATTR_ACL_ACCESS    "system.posix_acl_access"
#define XATTR_ACL_DEFAULT   "system.posix_acl_default"

/* The largest value of a name of `name_len` bytes kept in its entry's item. */
size_t xattr_inline_max(const struct inode_tree *it, size_t name_len);

/*
 * Set `name` to the `size` bytes at `value`. flags: XATTR_CREATE (-EEXIST if it is set),
 * XATTR_REPLACE (-ENODATA if it is not), or 0.
 */
int inode_setxattr(struct inode_tree *it, uint64_t ino, const char *name, const void *value,
		   size_t size, int flags);

/*
 * Copy the value of `name` into `buf`; returns its length. `size` 0: only the length.
 * -ERANGE if `size` is too small, -ENODATA if `name` is not set.
 */
ssize_t inode_getxattr(struct inode_tree *it, uint64_t ino, const char *name, void *buf,
		       size_t size);

/*
 * The names set on `ino`, each NUL-terminated, one after another (in no particular order);
 * returns their total length. `size` 0: only the length; -ERANGE if `size` is too small.
 */
ssize_t inode_listxattr(struct inode_tree *it, uint64_t ino, char *buf, size_t size);

/* Remove `name`: -ENODATA if it is not set. */
int inode_removexattr(struct inode_tree *it, uint64_t ino, const char *name);

/*
 * chmod: set the permission bits (07777) of `mode` and rewrite the access ACL, if any, to
 * match them (Linux posix_acl_chmod: USER_OBJ, MASK or else GROUP_OBJ, and OTHER take the
 * mode's bits). One transaction; updates ctime. The FUSE layer calls this for a setattr that
 * changes the mode, instead of inode_setattr's INODE_SET_MODE (the kernel's fuse_setattr
 * leaves the ACL to the filesystem).
 */
int acl_chmod(struct inode_tree *it, uint64_t ino, uint32_t mode);

/* What a new inode gets from its directory's default ACL (acl_new_inode). */
struct acl_new {
	void *access;            /* value of its system.posix_acl_access, or NULL: none */
	size_t access_size;
	void *dflt;              /* value of its system.posix_acl_default, or NULL: none */
	size_t dflt_size;
};

/*
 * Before creating an inode of `*mode` (type and permission bits, as requested) in `dir`, as
 * Linux posix_acl_create: if `dir` has a default ACL, the new inode's access ACL is that ACL
 * masked by the requested mode, and the mode keeps only what the ACL grants (USER_OBJ, MASK or
 * else GROUP_OBJ, OTHER); no access ACL when the result says no more than the mode; a new
 * directory also inherits the default ACL. The umask is not applied then. Without a default
 * ACL, *mode loses the `umask` bits and no ACL is made. Symlinks get neither (mode as asked).
 * The caller creates the inode with the new *mode, then calls acl_apply_new() and
 * acl_new_free() (also on error).
 */
int acl_new_inode(struct inode_tree *it, uint64_t dir, uint32_t *mode, uint32_t umask,
		  struct acl_new *out);

/* Store the ACLs of `a` on the new inode `ino` (the mode is left alone). -EEXIST if it has
 * either ACL already. */
int acl_apply_new(struct inode_tree *it, uint64_t ino, const struct acl_new *a);

void acl_new_free(struct acl_new *a);

#endif
