/*
 * On-disk extended attribute items of an fs tree. docs/FORMAT.md section 12 describes the same
 * bytes. All integers little-endian, every structure packed.
 *
 *   (ino, XATTR_ITEM, name hash)  array of {struct xattr_entry, name, value}: more than one
 *                                 only when names collide (hash = XXH3-64 of the name bytes,
 *                                 prefix included, as a DIR_ITEM's)
 *   (ino, XATTR_VALUE, value key + i)  piece i of a value too large for its entry's item
 *                                 (a spilled entry: XATTR_ENTRY_SPILLED), its bytes only
 *
 * POSIX ACLs are the values of "system.posix_acl_access" and "system.posix_acl_default", kept
 * in the Linux xattr format (the bytes getxattr(2) hands out): struct acl_disk_header, then
 * one struct acl_disk_entry per entry.
 */
#ifndef COWFS_INODE_XATTR_FORMAT_H
#define COWFS_INODE_XATTR_FORMAT_H

#include <stdint.h>

#include "fs/lib/compiler.h"

/* Between INODE_REF (12) and DIR_ITEM (84): an inode's xattrs follow its refs. As btrfs. */
#define XATTR_ITEM_KEY  24
/* Right after XATTR_ITEM: an inode's value pieces follow the entries that own them. */
#define XATTR_VALUE_KEY 25

/* The largest value, as Linux's XATTR_SIZE_MAX. */
#define XATTR_VALUE_MAX 65536u

struct xattr_entry {
	uint16_t name_len;        /* 1..255: the whole name, namespace prefix included; with
				   * XATTR_ENTRY_SPILLED or'ed in for a spilled entry */
	uint16_t value_len;       /* 0 and up, limited by the item size (FORMAT.md 12); a
				   * spilled entry: sizeof(struct xattr_spill) */
	/* name bytes (no terminator), then value bytes (a spilled entry: struct xattr_spill) */
} __packed;
STATIC_ASSERT(sizeof(struct xattr_entry) == 4, "xattr entry header is 4 bytes");

#define XATTR_ENTRY_SPILLED  0x8000u

/*
 * What a spilled entry holds instead of its value: the value is in XATTR_VALUE items
 * (ino, XATTR_VALUE, value_key + i), i = 0, 1, ..., in order, each 1 byte or more, together
 * exactly value_len bytes. value_key is a multiple of XATTR_VALUE_KEY_SPAN, and the span
 * [value_key, value_key + XATTR_VALUE_KEY_SPAN) holds the pieces of that one value and no
 * other item: a new value takes the first free span from its name hash rounded down (names
 * whose hashes round to the same span take the next ones). Only with
 * COWFS_INCOMPAT_BIG_XATTR in the superblock.
 */
struct xattr_spill {
	uint32_t value_len;       /* more than the entry's item could hold, at most XATTR_VALUE_MAX */
	uint64_t value_key;       /* key offset of piece 0 */
} __packed;
STATIC_ASSERT(sizeof(struct xattr_spill) == 12, "xattr spill is 12 bytes");

#define XATTR_VALUE_KEY_SPAN 256u

/* The Linux posix_acl_xattr format (include/uapi/linux/posix_acl_xattr.h). */
#define ACL_XATTR_VERSION  2

struct acl_disk_header {
	uint32_t version;         /* ACL_XATTR_VERSION */
} __packed;
STATIC_ASSERT(sizeof(struct acl_disk_header) == 4, "ACL header is 4 bytes");

struct acl_disk_entry {
	uint16_t tag;             /* ACL_TAG_* */
	uint16_t perm;            /* ACL_PERM_* bits */
	uint32_t id;              /* uid (ACL_TAG_USER) or gid (ACL_TAG_GROUP); else unused */
} __packed;
STATIC_ASSERT(sizeof(struct acl_disk_entry) == 8, "ACL entry is 8 bytes");

/* Entry tags, the values of Linux's ACL_USER_OBJ .. ACL_OTHER. */
#define ACL_TAG_USER_OBJ   0x01
#define ACL_TAG_USER       0x02
#define ACL_TAG_GROUP_OBJ  0x04
#define ACL_TAG_GROUP      0x08
#define ACL_TAG_MASK       0x10
#define ACL_TAG_OTHER      0x20

#define ACL_PERM_READ      0x4
#define ACL_PERM_WRITE     0x2
#define ACL_PERM_EXECUTE   0x1

/* What Linux writes as the id of the entries that have none. */
#define ACL_ID_UNDEFINED   0xffffffffu

#endif
