/*
 * POSIX ACLs with Linux's semantics (fs/posix_acl.c): the value format and its rules, the mode
 * an access ACL implies, chmod, and inheritance from a directory's default ACL. Values are kept
 * as the kernel hands them over (the xattr format, xattr_format.h), so the work here is on
 * their bytes; xattr.c stores them.
 *
 * The kernel enforces ACLs (FUSE_POSIX_ACL implies default_permissions) but leaves their upkeep
 * to the filesystem: the mode must keep saying what the access ACL's base entries and mask say,
 * chmod must rewrite the ACL, and creation must apply the parent's default ACL instead of the
 * umask. Everything here keeps that invariant, and the namespace checker verifies it.
 */
#include "fs/inode/xattr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/lib/endian.h"

/* ---- the value format ------------------------------------------------------------------------ */

static struct acl_disk_entry *acl_entries(void *value)
{
	return (void *)((uint8_t *)value + sizeof(struct acl_disk_header));
}

static const struct acl_disk_entry *acl_entries_const(const void *value)
{
	return (const void *)((const uint8_t *)value + sizeof(struct acl_disk_header));
}

static size_t acl_count(size_t size)
{
	return (size - sizeof(struct acl_disk_header)) / sizeof(struct acl_disk_entry);
}

/* Where each tag stands: a valid ACL lists its entries in this order. */
enum acl_slot { SLOT_USER_OBJ, SLOT_USER, SLOT_GROUP_OBJ, SLOT_GROUP, SLOT_MASK, SLOT_OTHER,
		SLOT_COUNT };

static int acl_slot(uint16_t tag)
{
	switch (tag) {
	case ACL_TAG_USER_OBJ:  return SLOT_USER_OBJ;
	case ACL_TAG_USER:      return SLOT_USER;
	case ACL_TAG_GROUP_OBJ: return SLOT_GROUP_OBJ;
	case ACL_TAG_GROUP:     return SLOT_GROUP;
	case ACL_TAG_MASK:      return SLOT_MASK;
	case ACL_TAG_OTHER:     return SLOT_OTHER;
	}
	return -1;
}

/*
 * Linux's posix_acl_valid: entries in slot order; exactly one USER_OBJ, GROUP_OBJ and OTHER;
 * named users and groups by strictly ascending id (no id twice, none undefined); at most one
 * MASK, and one whenever there are named entries; permissions only rwx.
 */
static bool acl_entries_valid(const struct acl_disk_entry *e, size_t n)
{
	uint32_t seen[SLOT_COUNT] = { 0 }, last_id = 0;
	int last = SLOT_USER_OBJ;

	for (size_t i = 0; i < n; i++) {
		int slot = acl_slot(get_le16(&e[i].tag));
		uint32_t id = get_le32(&e[i].id);

		if (slot < last)
			return false;   /* also an unknown tag (-1) */
		if (get_le16(&e[i].perm) & ~(ACL_PERM_READ | ACL_PERM_WRITE | ACL_PERM_EXECUTE))
			return false;
		if (slot == SLOT_USER || slot == SLOT_GROUP) {
			if (id == ACL_ID_UNDEFINED || (seen[slot] && id <= last_id))
				return false;
			last_id = id;
		}
		seen[slot]++;
		last = slot;
	}
	if (seen[SLOT_USER_OBJ] != 1 || seen[SLOT_GROUP_OBJ] != 1 || seen[SLOT_OTHER] != 1)
		return false;
	if (seen[SLOT_MASK] > 1)
		return false;
	return seen[SLOT_MASK] == 1 || seen[SLOT_USER] + seen[SLOT_GROUP] == 0;
}

int acl_value_check(const void *value, size_t size)
{
	const struct acl_disk_header *h = value;
	size_t n;

	if (size < sizeof(*h))
		return -EINVAL;
	/* As posix_acl_from_xattr: another version is a format we do not know, not garbage. */
	if (get_le32(&h->version) != ACL_XATTR_VERSION)
		return -EOPNOTSUPP;
	if ((size - sizeof(*h)) % sizeof(struct acl_disk_entry) != 0 || size > INT32_MAX)
		return -EINVAL;
	n = acl_count(size);
	if (n > 0 && !acl_entries_valid(acl_entries_const(value), n))
		return -EINVAL;
	return (int)n;
}

bool acl_value_mode(const void *value, size_t size, uint32_t *bits)
{
	const struct acl_disk_entry *e = acl_entries_const(value);
	uint32_t user = 0, group = 0, other = 0;
	bool more = false, mask = false;

	for (size_t i = 0, n = acl_count(size); i < n; i++) {
		uint32_t perm = get_le16(&e[i].perm) & 07;

		switch (get_le16(&e[i].tag)) {
		case ACL_TAG_USER_OBJ:
			user = perm;
			break;
		case ACL_TAG_GROUP_OBJ:
			if (!mask)
				group = perm;
			break;
		case ACL_TAG_MASK:
			/* With a mask, the group bits of the mode are the mask. */
			group = perm;
			mask = more = true;
			break;
		case ACL_TAG_OTHER:
			other = perm;
			break;
		default:
			more = true;
		}
	}
	*bits = user << 6 | group << 3 | other;
	return more;
}

/*
 * posix_acl_create_masq: the new inode's access ACL is the default ACL with USER_OBJ, the mask
 * (GROUP_OBJ without one) and OTHER cut down to the requested mode, and the mode keeps only
 * what those entries grant. True if the ACL says more than the mode.
 */
static bool acl_create_masq(struct acl_disk_entry *e, size_t n, uint32_t *mode)
{
	struct acl_disk_entry *group_obj = NULL, *mask = NULL, *g;
	uint32_t m = *mode, perm;
	bool more = false;

	for (size_t i = 0; i < n; i++) {
		perm = get_le16(&e[i].perm);
		switch (get_le16(&e[i].tag)) {
		case ACL_TAG_USER_OBJ:
			perm &= (m >> 6) & 07;
			m &= ~(uint32_t)S_IRWXU | perm << 6;
			put_le16(&e[i].perm, (uint16_t)perm);
			break;
		case ACL_TAG_GROUP_OBJ:
			group_obj = &e[i];
			break;
		case ACL_TAG_MASK:
			mask = &e[i];
			more = true;
			break;
		case ACL_TAG_OTHER:
			perm &= m & 07;
			m &= ~(uint32_t)S_IRWXO | perm;
			put_le16(&e[i].perm, (uint16_t)perm);
			break;
		default:
			more = true;
		}
	}
	g = mask ? mask : group_obj;   /* a valid ACL has a GROUP_OBJ */
	perm = get_le16(&g->perm) & ((m >> 3) & 07);
	m &= ~(uint32_t)S_IRWXG | perm << 3;
	put_le16(&g->perm, (uint16_t)perm);
	*mode = m;
	return more;
}

/* posix_acl_chmod: USER_OBJ, the mask (GROUP_OBJ without one) and OTHER take the mode's bits;
 * named entries keep theirs (the mask limits them). */
static void acl_chmod_masq(struct acl_disk_entry *e, size_t n, uint32_t mode)
{
	struct acl_disk_entry *group_obj = NULL, *mask = NULL;

	for (size_t i = 0; i < n; i++) {
		switch (get_le16(&e[i].tag)) {
		case ACL_TAG_USER_OBJ:
			put_le16(&e[i].perm, (uint16_t)((mode >> 6) & 07));
			break;
		case ACL_TAG_GROUP_OBJ:
			group_obj = &e[i];
			break;
		case ACL_TAG_MASK:
			mask = &e[i];
			break;
		case ACL_TAG_OTHER:
			put_le16(&e[i].perm, (uint16_t)(mode & 07));
			break;
		}
	}
	put_le16(mask ? &mask->perm : &group_obj->perm, (uint16_t)((mode >> 3) & 07));
}

/* ---- stored ACLs --------------------------------------------------------------------------------- */

static uint64_t acl_name_hash(const char *name)
{
	return xattr_name_hash(name, strlen(name));
}

/* The stored ACL `name` of `ino`, malloc'ed and checked: 0, -ENODATA, -EUCLEAN, -EIO. */
static int acl_read(struct inode_tree *it, uint64_t ino, const char *name, uint8_t **value,
		    uint32_t *vlen)
{
	int ret = xattr_item_get(it, ino, acl_name_hash(name), name, strlen(name), value, vlen);

	if (ret < 0)
		return ret;
	/* Only a well-formed ACL of at least the base entries is ever stored. */
	if (acl_value_check(*value, *vlen) <= 0) {
		free(*value);
		*value = NULL;
		return inode_corrupt(it, ino, "malformed POSIX ACL");
	}
	return 0;
}

/* ---- permission checks ------------------------------------------------------------------------ */

/* The entry's permissions as the mask (if the ACL has one) lets them apply: posix_acl_permission's
 * `mask:` path, for named entries and the owning group. */
static bool acl_grants_masked(const struct acl_disk_entry *e, size_t i, size_t n, unsigned want)
{
	unsigned perm = get_le16(&e[i].perm);

	for (size_t j = i + 1; j < n; j++)
		if (get_le16(&e[j].tag) == ACL_TAG_MASK)
			perm &= get_le16(&e[j].perm);
	return (perm & want) == want;
}

/*
 * Linux's posix_acl_permission on a well-formed ACL: the owner by USER_OBJ, a named user by its
 * entry (under the mask), then every group entry the caller matches (under the mask: any one
 * granting all of `want` is enough; matching some but none granting is a refusal), else OTHER.
 */
static int acl_entries_permission(const struct acl_disk_entry *e, size_t n, uid_t owner,
				  gid_t group, const struct inode_caller *c, unsigned want)
{
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		uint32_t id = get_le32(&e[i].id);

		switch (get_le16(&e[i].tag)) {
		case ACL_TAG_USER_OBJ:
			if (c->uid == owner)
				return (get_le16(&e[i].perm) & want) == want ? 0 : -EACCES;
			break;
		case ACL_TAG_USER:
			if (c->uid == id)
				return acl_grants_masked(e, i, n, want) ? 0 : -EACCES;
			break;
		case ACL_TAG_GROUP_OBJ:
		case ACL_TAG_GROUP:
			if (inode_caller_in_group(c, get_le16(&e[i].tag) == ACL_TAG_GROUP ? id : group)) {
				found = true;
				if ((get_le16(&e[i].perm) & want) == want)
					return acl_grants_masked(e, i, n, want) ? 0 : -EACCES;
			}
			break;
		case ACL_TAG_OTHER:
			if (found)
				return -EACCES;
			return (get_le16(&e[i].perm) & want) == want ? 0 : -EACCES;
		}
	}
	return -EACCES;   /* unreachable for a valid ACL, which ends with OTHER */
}

int acl_access_permission(struct inode_tree *it, uint64_t ino, uid_t owner, gid_t group,
			  const struct inode_caller *c, unsigned want)
{
	uint8_t *value;
	uint32_t vlen;
	int ret = acl_read(it, ino, XATTR_ACL_ACCESS, &value, &vlen);

	if (ret < 0)
		return ret;
	ret = acl_entries_permission(acl_entries_const(value), acl_count(vlen), owner, group, c,
				     want);
	free(value);
	return ret;
}

/* The ACL `name` is to be absent: remove it if stored, after checking the flags against what
 * is there. Absent already is fine (as Linux's set_acl with no ACL). */
static int acl_store_none(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			  const char *name, int flags)
{
	size_t nlen = strlen(name);
	int has = xattr_item_has(it, ino, acl_name_hash(name), name, nlen);

	if (has < 0)
		return has;
	if ((flags & XATTR_CREATE) && has)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !has)
		return -ENODATA;
	return has ? xattr_item_del(tx, it, ino, acl_name_hash(name), name, nlen) : 0;
}

int acl_set_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, struct inode *in,
		   bool access, const void *value, size_t size, int flags)
{
	const char *name = access ? XATTR_ACL_ACCESS : XATTR_ACL_DEFAULT;
	uint32_t bits = in->mode & 0777;
	int n = acl_value_check(value, size), ret;

	if (n < 0)
		return n;
	if (n == 0) {
		/* Only the header: no ACL. Removing the access ACL leaves the mode as it is. */
		ret = acl_store_none(tx, it, ino, name, flags);
	} else if (access && !acl_value_mode(value, size, &bits)) {
		/* posix_acl_update_mode: the mode bits say all of it, so they are all of it. */
		ret = acl_store_none(tx, it, ino, name, flags);
	} else {
		ret = xattr_item_put(tx, it, ino, acl_name_hash(name), name, strlen(name), value,
				     size, flags);
	}
	if (ret < 0)
		return ret;
	in->mode = (in->mode & ~0777u) | bits;
	in->ctime = inode_now();
	return inode_write(tx, it, ino, in);
}

int acl_chmod_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint32_t mode)
{
	const char *name = XATTR_ACL_ACCESS;
	uint8_t *value;
	uint32_t vlen;
	int ret = acl_read(it, ino, name, &value, &vlen);

	if (ret == -ENODATA)
		return 0;
	if (ret < 0)
		return ret;
	acl_chmod_masq(acl_entries(value), acl_count(vlen), mode);
	ret = xattr_item_put(tx, it, ino, acl_name_hash(name), name, strlen(name), value, vlen,
			     XATTR_REPLACE);
	free(value);
	return ret;
}

static int chmod_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint32_t mode)
{
	struct inode in;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	in.mode = (in.mode & S_IFMT) | (mode & 07777);
	ret = acl_chmod_locked(tx, it, ino, in.mode);
	if (ret < 0)
		return ret;
	in.ctime = inode_now();
	return inode_write(tx, it, ino, &in);
}

int acl_chmod(struct inode_tree *it, uint64_t ino, uint32_t mode)
{
	struct cowfs_trans *tx;
	/* The ACL item (rewritten in place, same size) and the inode item, with room to spare. */
	int ret = inode_update_begin(it, ALLOC_NORMAL, 3, &tx);

	if (ret < 0)
		return ret;
	ret = chmod_locked(tx, it, ino, mode);
	return inode_update_end(tx, ret);
}

/* ---- inheritance ---------------------------------------------------------------------------------- */

static int read_default_acl(struct inode_tree *it, uint64_t dir, uint8_t **value, uint32_t *vlen)
{
	struct inode d;
	int ret = inode_read_dir(it, dir, &d);

	if (ret < 0)
		return ret;
	return acl_read(it, dir, XATTR_ACL_DEFAULT, value, vlen);
}

/* The new inode's ACLs from the default ACL `dflt` (whose buffer this takes over). */
static int acl_inherit(uint8_t *dflt, uint32_t dlen, uint32_t *mode, struct acl_new *out)
{
	uint8_t *access = malloc(dlen);

	if (!access) {
		free(dflt);
		return -ENOMEM;
	}
	memcpy(access, dflt, dlen);
	if (acl_create_masq(acl_entries(access), acl_count(dlen), mode)) {
		out->access = access;
		out->access_size = dlen;
	} else {
		free(access);
	}
	if (S_ISDIR(*mode)) {
		out->dflt = dflt;
		out->dflt_size = dlen;
	} else {
		free(dflt);
	}
	return 0;
}

int acl_new_inode(struct inode_tree *it, uint64_t dir, uint32_t *mode, uint32_t umask,
		  struct acl_new *out)
{
	uint8_t *dflt = NULL;
	uint32_t dlen = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	/* A symlink's mode is always 0777 and it has no ACLs. */
	if (S_ISLNK(*mode))
		return 0;
	inode_lock_read(it);
	ret = read_default_acl(it, dir, &dflt, &dlen);
	inode_unlock_read(it);
	if (ret == -ENODATA) {
		*mode &= ~(umask & 0777);
		return 0;
	}
	if (ret < 0)
		return ret;
	return acl_inherit(dflt, dlen, mode, out);
}

/* -EEXIST unless `name` has no item at all: storing it is then one insert of one entry, which
 * nothing but an I/O error refuses (a name colliding with it would count as present). */
static int acl_check_fresh(struct inode_tree *it, uint64_t ino, const char *name)
{
	struct bt_key k = { ino, XATTR_ITEM_KEY, acl_name_hash(name) };
	int ret = bt_lookup(inode_btree(it), &k, NULL, 0, NULL);

	if (ret == 0)
		return -EEXIST;
	return ret == -ENOENT ? 0 : ret;
}

/* Whether a value of acl_new may be stored as `name`: a real ACL that fits. */
static int acl_check_new(struct inode_tree *it, const char *name, const void *value, size_t size)
{
	int n;

	if (!value)
		return 0;
	n = acl_value_check(value, size);
	if (n < 0)
		return n;
	if (n == 0)
		return -EINVAL;
	return size > xattr_inline_max(it, strlen(name)) ? -E2BIG : 0;
}

static int apply_new_locked(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			    const struct acl_new *a)
{
	struct inode in;
	int ret = inode_read(it, ino, &in);

	if (ret < 0)
		return ret;
	if (S_ISLNK(in.mode))
		return -EOPNOTSUPP;
	if (a->dflt && !S_ISDIR(in.mode))
		return -EACCES;
	if (a->access && (ret = acl_check_fresh(it, ino, XATTR_ACL_ACCESS)) < 0)
		return ret;
	if (a->dflt && (ret = acl_check_fresh(it, ino, XATTR_ACL_DEFAULT)) < 0)
		return ret;
	if (a->access)
		ret = xattr_item_put(tx, it, ino, acl_name_hash(XATTR_ACL_ACCESS), XATTR_ACL_ACCESS,
				     strlen(XATTR_ACL_ACCESS), a->access, a->access_size,
				     XATTR_CREATE);
	if (ret == 0 && a->dflt)
		ret = xattr_item_put(tx, it, ino, acl_name_hash(XATTR_ACL_DEFAULT),
				     XATTR_ACL_DEFAULT, strlen(XATTR_ACL_DEFAULT), a->dflt, a->dflt_size, XATTR_CREATE);
	return ret;
}

int acl_apply_new(struct inode_tree *it, uint64_t ino, const struct acl_new *a)
{
	struct cowfs_trans *tx;
	int ret;

	if (!a->access && !a->dflt)
		return 0;
	ret = acl_check_new(it, XATTR_ACL_ACCESS, a->access, a->access_size);
	if (ret == 0)
		ret = acl_check_new(it, XATTR_ACL_DEFAULT, a->dflt, a->dflt_size);
	if (ret < 0)
		return ret;
	/* Two new items, with room to spare. */
	ret = inode_update_begin(it, ALLOC_NORMAL, 3, &tx);
	if (ret < 0)
		return ret;
	ret = apply_new_locked(tx, it, ino, a);
	return inode_update_end(tx, ret);
}

void acl_new_free(struct acl_new *a)
{
	free(a->access);
	free(a->dflt);
	memset(a, 0, sizeof(*a));
}
