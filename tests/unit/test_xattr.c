/*
 * fs/inode/xattr.c and acl.c: extended attributes and POSIX ACLs on a real filesystem (fsfix),
 * each test ending with the block checker and the namespace checker clean. Error cases check
 * that the tree did not change; the checker's xattr checks are shown damage written straight
 * into the fs tree.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/inode/namespace_check.h"
#include "fs/inode/inode.h"
#include "fs/inode/xattr.h"
#include "fs/inode/xattr_format.h"
#include "fs/inode/xattr_internal.h"
#include "fs/lib/endian.h"
#include "fs/super/super_format.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define IMG (128ull << 20)
#define ROOT INODE_ROOT_INO

/* Items of `ino` of `type` (0: of any type). */
static uint64_t items_of(struct ifix *f, uint64_t ino, uint8_t type)
{
	struct bt_cursor c;
	struct bt_key k = { ino, 0, 0 };
	uint64_t n = 0;
	int ret;

	bt_cursor_init(&c, &f->x.fs->fs_root.t);
	for (ret = bt_cursor_seek(&c, &k, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		if (c.key.objectid != ino)
			break;
		if (type == 0 || c.key.type == type)
			n++;
	}
	bt_cursor_release(&c);
	return n;
}

static void setx(struct ifix *f, uint64_t ino, const char *name, const char *value)
{
	int ret = inode_setxattr(&f->it, ino, name, value, strlen(value), 0);

	REQUIRE(ret == 0, "setxattr %s: %d", name, ret);
}

/* The value of `name` must be `want` (a string, compared without terminator). */
static void expect_value(struct ifix *f, uint64_t ino, const char *name, const char *want)
{
	char buf[20000];
	ssize_t n = inode_getxattr(&f->it, ino, name, buf, sizeof(buf));

	REQUIRE(n == (ssize_t)strlen(want), "getxattr %s: %zd, want %zu bytes", name, n,
		strlen(want));
	REQUIRE(memcmp(buf, want, (size_t)n) == 0, "getxattr %s: wrong value", name);
}

/* qsort's comparator for an array of char *. */
static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names listxattr returns, sorted, joined with ','. */
static char *list_names(struct ifix *f, uint64_t ino)
{
	ssize_t need = inode_listxattr(&f->it, ino, NULL, 0);
	char *buf, **names, *out;
	size_t n = 0, at = 0;

	REQUIRE(need >= 0, "listxattr: %zd", need);
	buf = malloc((size_t)need + 1);
	ck_assert_int_eq(inode_listxattr(&f->it, ino, buf, (size_t)need + 1), need);
	names = calloc((size_t)need + 1, sizeof(*names));
	for (ssize_t i = 0; i < need; i += (ssize_t)strlen(buf + i) + 1)
		names[n++] = buf + i;
	qsort(names, n, sizeof(*names), strp_cmp);
	out = calloc((size_t)need + 1, 1);
	for (size_t i = 0; i < n; i++)
		at += (size_t)sprintf(out + at, "%s%s", i ? "," : "", names[i]);
	free(names);
	free(buf);
	return out;
}

static void expect_names(struct ifix *f, uint64_t ino, const char *want)
{
	char *got = list_names(f, ino);

	ck_assert_str_eq(got, want);
	free(got);
}

/* ---- ACL values ------------------------------------------------------------------------------ */

/* An ACL value from getfacl-like text, entries in the order given:
 * "u::rwx,u:1000:r--,g::r-x,g:50:rw-,m::rw-,o::---". */
static size_t acl_text(uint8_t *buf, const char *text)
{
	struct acl_disk_header *h = (void *)buf;
	size_t size = sizeof(*h);
	const char *p = text;

	put_le32(&h->version, ACL_XATTR_VERSION);
	while (*p) {
		struct acl_disk_entry *e = (void *)(buf + size);
		char kind = *p++;
		uint32_t id = ACL_ID_UNDEFINED;
		uint16_t tag, perm = 0;
		char *end;

		REQUIRE(*p == ':', "ACL text: %s", text);
		p++;
		if (*p != ':') {
			id = (uint32_t)strtoul(p, &end, 10);
			p = end;
		}
		REQUIRE(*p == ':', "ACL text: %s", text);
		p++;
		for (int i = 0; i < 3; i++, p++) {
			REQUIRE(*p == '-' || *p == "rwx"[i], "ACL text: %s", text);
			if (*p != '-')
				perm |= (uint16_t)(4 >> i);
		}
		switch (kind) {
		case 'u': tag = id == ACL_ID_UNDEFINED ? ACL_TAG_USER_OBJ : ACL_TAG_USER; break;
		case 'g': tag = id == ACL_ID_UNDEFINED ? ACL_TAG_GROUP_OBJ : ACL_TAG_GROUP; break;
		case 'm': tag = ACL_TAG_MASK; break;
		default: tag = ACL_TAG_OTHER; break;
		}
		put_le16(&e->tag, tag);
		put_le16(&e->perm, perm);
		put_le32(&e->id, id);
		size += sizeof(*e);
		if (*p == ',')
			p++;
	}
	return size;
}

static int set_acl(struct ifix *f, uint64_t ino, const char *name, const char *text)
{
	uint8_t buf[512];
	size_t size = acl_text(buf, text);

	return inode_setxattr(&f->it, ino, name, buf, size, 0);
}

/* The stored ACL `name` of `ino` must be `text`, byte for byte. */
static void expect_acl(struct ifix *f, uint64_t ino, const char *name, const char *text)
{
	uint8_t want[512], got[512];
	size_t size = acl_text(want, text);
	ssize_t n = inode_getxattr(&f->it, ino, name, got, sizeof(got));

	ck_assert_msg(n == (ssize_t)size && memcmp(got, want, size) == 0,
		      "inode %" PRIu64 " %s is not %s (%zd bytes)", ino, name, text, n);
}

static void expect_acl_value(const void *value, size_t size, const char *text)
{
	uint8_t want[512];
	size_t wsize = acl_text(want, text);

	ck_assert_msg(value && size == wsize && memcmp(value, want, size) == 0,
		      "ACL value is not %s", text);
}

static uint32_t perms_of(struct ifix *f, uint64_t ino)
{
	return ifix_attr(f, ino).mode & 07777;
}

/* ---- plain xattrs ----------------------------------------------------------------------------- */

static void short_sleep(void)
{
	struct timespec ts = { 0, 2000000 };

	nanosleep(&ts, NULL);
}

static struct timespec now_ts(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static bool ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

START_TEST(set_get_list_remove)
{
	struct ifix f;
	char buf[64];
	uint64_t file, dir;
	struct timespec t0;

	ifix_setup(&f, "xa-basic", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	expect_names(&f, file, "");

	short_sleep();
	t0 = now_ts();
	setx(&f, file, "user.colour", "blue");
	ck_assert(ts_before(t0, ifix_attr(&f, file).ctime));
	setx(&f, file, "user.empty", "");
	setx(&f, file, "trusted.t", "tt");
	setx(&f, file, "security.selinux", "system_u:object_r:etc_t:s0");
	setx(&f, dir, "user.colour", "red");

	expect_value(&f, file, "user.colour", "blue");
	expect_value(&f, file, "user.empty", "");
	expect_value(&f, file, "trusted.t", "tt");
	expect_value(&f, file, "security.selinux", "system_u:object_r:etc_t:s0");
	expect_value(&f, dir, "user.colour", "red");
	expect_names(&f, file, "security.selinux,trusted.t,user.colour,user.empty");
	expect_names(&f, dir, "user.colour");

	/* Size queries and short buffers. */
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.colour", NULL, 0), 4);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.empty", NULL, 0), 0);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.colour", buf, 3), -ERANGE);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.colour", buf, 4), 4);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.nope", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.nope", NULL, 0), -ENODATA);
	ssize_t need = (ssize_t)(strlen("user.colour") + strlen("user.empty") + strlen("trusted.t") +
				 strlen("security.selinux") + 4);
	ck_assert_int_eq(inode_listxattr(&f.it, file, NULL, 0), need);
	ck_assert_int_eq(inode_listxattr(&f.it, file, buf, (size_t)need - 1), -ERANGE);
	ck_assert_int_eq(inode_listxattr(&f.it, file, buf, (size_t)need), need);

	/* Replace: longer, shorter, empty. */
	setx(&f, file, "user.colour", "a much longer shade of blue");
	expect_value(&f, file, "user.colour", "a much longer shade of blue");
	setx(&f, file, "user.colour", "b");
	expect_value(&f, file, "user.colour", "b");
	setx(&f, file, "user.colour", "");
	expect_value(&f, file, "user.colour", "");

	/* Remove. */
	short_sleep();
	t0 = now_ts();
	ck_assert_int_eq(inode_removexattr(&f.it, file, "user.colour"), 0);
	ck_assert(ts_before(t0, ifix_attr(&f, file).ctime));
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, file, "user.colour"), -ENODATA);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.colour", buf, sizeof(buf)), -ENODATA);
	expect_value(&f, dir, "user.colour", "red");
	ck_assert_int_eq(inode_removexattr(&f.it, file, "user.empty"), 0);
	ck_assert_int_eq(inode_removexattr(&f.it, file, "trusted.t"), 0);
	ck_assert_int_eq(inode_removexattr(&f.it, file, "security.selinux"), 0);
	expect_names(&f, file, "");
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), 0);

	/* No such inode. */
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, 9999, "user.a", "x", 1, 0), -ENOENT);
	ck_assert_int_eq(inode_getxattr(&f.it, 9999, "user.a", buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(inode_listxattr(&f.it, 9999, buf, sizeof(buf)), -ENOENT);
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, 9999, "user.a"), -ENOENT);
	ifix_teardown(&f);
}
END_TEST

START_TEST(create_replace_flags)
{
	struct ifix f;
	uint64_t file;

	ifix_setup(&f, "xa-flags", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.a", "1", 1, XATTR_REPLACE), -ENODATA);
	ck_assert_int_eq(inode_setxattr(&f.it, file, "user.a", "1", 1, XATTR_CREATE), 0);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.a", "2", 1, XATTR_CREATE), -EEXIST);
	expect_value(&f, file, "user.a", "1");
	ck_assert_int_eq(inode_setxattr(&f.it, file, "user.a", "22", 2, XATTR_REPLACE), 0);
	expect_value(&f, file, "user.a", "22");
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.a", "3", 1, 0x40), -EINVAL);
	ifix_teardown(&f);
}
END_TEST

START_TEST(names_values_and_types)
{
	struct ifix f;
	char name[300], buf[64];
	uint64_t file, fifo, dir;
	struct cowfs_attr a;
	size_t max;
	uint8_t *big;

	/* 4 KiB nodes: the largest value is 4,007 - 4 - the name's length (FORMAT.md 12). */
	ifix_setup(&f, "xa-limits", IMG, 4096);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	fifo = ifix_mk(&f, ROOT, "fifo", S_IFIFO | 0644);
	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "sl", 2, "file", 4, 0, 0, &a), 0);
	uint64_t lnk = a.ino;

	/* Names: 255 bytes fine, 256 and empty -ERANGE, a bare prefix -EINVAL. */
	memset(name, 'n', sizeof(name));
	memcpy(name, "user.", 5);
	name[255] = '\0';
	setx(&f, file, name, "v");
	expect_value(&f, file, name, "v");
	name[255] = 'n';
	name[256] = '\0';
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, name, "v", 1, 0), -ERANGE);
	ck_assert_int_eq(inode_getxattr(&f.it, file, name, buf, sizeof(buf)), -ERANGE);
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, file, name), -ERANGE);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "", "v", 1, 0), -ERANGE);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.", "v", 1, 0), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "trusted.", "v", 1, 0), -EINVAL);

	/* Namespaces. */
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "foo.bar", "v", 1, 0), -EOPNOTSUPP);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user", "v", 1, 0), -EOPNOTSUPP);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "system.foo", "v", 1, 0), -EOPNOTSUPP);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "system.posix_acl_accessx", "v", 1, 0),
			 -EOPNOTSUPP);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "system.posix_acl", "v", 1, 0),
			 -EOPNOTSUPP);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "foo.bar", buf, sizeof(buf)), -EOPNOTSUPP);
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, file, "os2.x"), -EOPNOTSUPP);

	/* Values: up to what one item holds in the entry (FORMAT.md 12), larger ones spilled
	 * into pieces, up to XATTR_SIZE_MAX. */
	max = xattr_inline_max(&f.it, strlen("user.big"));
	ck_assert_uint_eq(max, 4007 - 4 - strlen("user.big"));
	ck_assert_uint_eq(xattr_inline_max(&f.it, 255), 4007 - 4 - 255);
	big = malloc(XATTR_VALUE_MAX + 1);
	for (size_t i = 0; i <= XATTR_VALUE_MAX; i++)
		big[i] = (uint8_t)(i * 7);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.big", big, XATTR_VALUE_MAX + 1,
						 0), -E2BIG);
	ck_assert_int_eq(inode_setxattr(&f.it, file, "user.big", big, max, 0), 0);
	uint8_t *back = malloc(XATTR_VALUE_MAX);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.big", back, max), (ssize_t)max);
	ck_assert_int_eq(memcmp(back, big, max), 0);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), 0);
	ck_assert_int_eq(inode_setxattr(&f.it, file, "user.big", big, max + 1, XATTR_REPLACE), 0);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.big", back, max + 1), (ssize_t)max + 1);
	ck_assert_int_eq(memcmp(back, big, max + 1), 0);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), 1);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.big", big, XATTR_VALUE_MAX + 1,
						 XATTR_REPLACE), -E2BIG);
	free(back);
	free(big);

	/* user.* only on regular files and directories; other namespaces anywhere. */
	setx(&f, dir, "user.d", "1");
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, fifo, "user.x", "1", 1, 0), -EPERM);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, lnk, "user.x", "1", 1, 0), -EPERM);
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, lnk, "user.x"), -EPERM);
	ck_assert_int_eq(inode_getxattr(&f.it, lnk, "user.x", buf, sizeof(buf)), -ENODATA);
	setx(&f, lnk, "trusted.overlay.opaque", "y");
	setx(&f, fifo, "security.selinux", "ctx");
	expect_value(&f, lnk, "trusted.overlay.opaque", "y");
	expect_names(&f, lnk, "trusted.overlay.opaque");
	expect_names(&f, fifo, "security.selinux");
	ifix_teardown(&f);
}
END_TEST

/*
 * Names sharing one item. Two names never share an XXH3-64 hash in practice, so the test files
 * user.b under user.a's hash through the item functions, and then works on user.a through the
 * public calls: they meet user.b in the same item, as they would a real collision.
 */
START_TEST(colliding_names_share_an_item)
{
	struct ifix f;
	uint64_t file, ha = xattr_name_hash("user.a", 6);
	struct bt_key k = { 0, XATTR_ITEM_KEY, ha };
	uint8_t *value;
	uint32_t vlen, len;
	char buf[64];

	ifix_setup(&f, "xa-collide", IMG, 16384);
	ifix_collect_reports(&f);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	k.objectid = file;

	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(xattr_item_put(tx, &f.it, file, ha, "user.b", 6, "bee", 3, 0), 0);
	ck_assert_int_eq(xattr_item_put(tx, &f.it, file, ha, "user.b", 6, "bee", 3, XATTR_CREATE),
			 -EEXIST);
	cowfs_trans_end(tx, 0);

	/* user.a joins user.b's item. */
	setx(&f, file, "user.a", "ay");
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &k, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, (4 + 6 + 3) + (4 + 6 + 2));
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), 1);
	expect_value(&f, file, "user.a", "ay");
	expect_names(&f, file, "user.a,user.b");
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.a", "x", 1, XATTR_CREATE), -EEXIST);

	/* Replacing one keeps the other. */
	ck_assert_int_eq(inode_setxattr(&f.it, file, "user.a", "a longer value", 14, XATTR_REPLACE),
			 0);
	expect_value(&f, file, "user.a", "a longer value");
	inode_lock_read(&f.it);
	ck_assert_int_eq(xattr_item_get(&f.it, file, ha, "user.b", 6, &value, &vlen), 0);
	inode_unlock_read(&f.it);
	ck_assert_uint_eq(vlen, 3);
	ck_assert_int_eq(memcmp(value, "bee", 3), 0);
	free(value);
	/* ... also the first entry, with the other one after it. */
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(xattr_item_put(tx, &f.it, file, ha, "user.b", 6, "bumble", 6,
					XATTR_REPLACE), 0);
	ck_assert_int_eq(xattr_item_get(&f.it, file, ha, "user.b", 6, &value, &vlen), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_uint_eq(vlen, 6);
	ck_assert_int_eq(memcmp(value, "bumble", 6), 0);
	free(value);
	expect_value(&f, file, "user.a", "a longer value");
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &k, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, (4 + 6 + 6) + (4 + 6 + 14));

	/* The checker sees user.b filed under the wrong hash. */
	struct inode_check_stats st;
	char needle[64];
	ck_assert_int_eq(inode_check_all(f.x.fs, &st), -EUCLEAN);
	ck_assert_uint_eq(st.problems, 1);
	snprintf(needle, sizeof(needle), "inode %" PRIu64 ": xattr \"user.b\" filed under hash",
		 file);
	ck_assert_msg(strstr(f.seen, needle), "got: %s", f.seen);

	/* A value that fits alone but not beside user.b's spills into pieces; user.b stays. */
	size_t room = bt_max_item_size(16384) - (4 + 6 + 6) - (4 + 6);
	uint8_t *big = calloc(1, room + 1);
	ck_assert_int_eq(inode_setxattr(&f.it, file, "user.a", big, room + 1, 0), 0);
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &k, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, (4 + 6 + 6) + (4 + 6 + 12));
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), 1);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.a", NULL, 0), (ssize_t)room + 1);
	ck_assert_int_eq(inode_setxattr(&f.it, file, "user.a", big, room, 0), 0);
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &k, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, bt_max_item_size(16384));
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), 0);
	free(big);

	/* Removing one keeps the other; the last one takes the item with it. */
	ck_assert_int_eq(inode_removexattr(&f.it, file, "user.a"), 0);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.a", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &k, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, 4 + 6 + 6);
	expect_names(&f, file, "user.b");
	setx(&f, file, "user.a", "again");
	tx = cowfs_trans_begin(f.x.fs, ALLOC_PRIVILEGED);
	ck_assert_int_eq(xattr_item_del(tx, &f.it, file, ha, "user.b", 6), 0);
	ck_assert_int_eq(xattr_item_del(tx, &f.it, file, ha, "user.b", 6), -ENODATA);
	cowfs_trans_end(tx, 0);
	expect_value(&f, file, "user.a", "again");
	expect_names(&f, file, "user.a");
	ck_assert_int_eq(inode_removexattr(&f.it, file, "user.a"), 0);
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &k, NULL, 0, &len), -ENOENT);
	ifix_teardown(&f);
}
END_TEST

START_TEST(persist_across_reopen)
{
	struct ifix f;
	uint64_t file, dir;

	ifix_setup(&f, "xa-persist", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	setx(&f, file, "user.one", "1");
	setx(&f, file, "trusted.two", "22");
	setx(&f, dir, "user.three", "333");
	ck_assert_int_eq(set_acl(&f, dir, XATTR_ACL_DEFAULT, "u::rwx,g::r-x,g:7:rwx,m::rwx,o::---"),
			 0);
	ifix_reopen(&f);
	expect_value(&f, file, "user.one", "1");
	expect_value(&f, file, "trusted.two", "22");
	expect_value(&f, dir, "user.three", "333");
	expect_acl(&f, dir, XATTR_ACL_DEFAULT, "u::rwx,g::r-x,g:7:rwx,m::rwx,o::---");
	expect_names(&f, file, "trusted.two,user.one");
	expect_names(&f, dir, "system.posix_acl_default,user.three");
	ck_assert_int_eq(inode_removexattr(&f.it, file, "user.one"), 0);
	ifix_reopen(&f);
	expect_names(&f, file, "trusted.two");
	ifix_teardown(&f);
}
END_TEST

START_TEST(freed_with_the_inode)
{
	struct ifix f;
	uint64_t file, dir, linked;
	struct cowfs_attr a;
	uint8_t big[8000];

	ifix_setup(&f, "xa-free", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	linked = ifix_mk(&f, ROOT, "linked", S_IFREG | 0644);
	ck_assert_int_eq(inode_link(&f.it, linked, ROOT, "linked2", 7, &a), 0);
	memset(big, 'b', sizeof(big));
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof(name), "user.x%d", i);
		ck_assert_int_eq(inode_setxattr(&f.it, file, name, big, sizeof(big), 0), 0);
		ck_assert_int_eq(inode_setxattr(&f.it, dir, name, big, 100, 0), 0);
		ck_assert_int_eq(inode_setxattr(&f.it, linked, name, big, 10, 0), 0);
	}
	ck_assert_int_eq(set_acl(&f, dir, XATTR_ACL_DEFAULT, "u::rwx,g::r-x,o::r-x"), 0);
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), 20);
	ck_assert_uint_eq(items_of(&f, dir, XATTR_ITEM_KEY), 21);

	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "file", 4), 0);
	ck_assert_int_eq(inode_rmdir(&f.it, ROOT, "dir", 3), 0);
	ck_assert_uint_eq(items_of(&f, file, 0), 0);
	ck_assert_uint_eq(items_of(&f, dir, 0), 0);

	/* One of two links: the inode and its xattrs stay. */
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "linked", 6), 0);
	ck_assert_uint_eq(items_of(&f, linked, XATTR_ITEM_KEY), 20);
	expect_value(&f, linked, "user.x7", "bbbbbbbbbb");
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "linked2", 7), 0);
	ck_assert_uint_eq(items_of(&f, linked, 0), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_teardown(&f);
}
END_TEST

START_TEST(a_thousand_on_one_inode)
{
	enum { N = 1000 };
	struct ifix f;
	uint64_t file;
	char name[64], value[64], *buf, **names;
	ssize_t total;
	size_t n;

	ifix_setup(&f, "xa-many", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user.attribute-%04d", i);
		snprintf(value, sizeof(value), "value of %d", i);
		setx(&f, file, name, value);
	}
	for (int pass = 0; pass < 2; pass++) {
		/* Every name exactly once; after the reopen and removal, the odd ones. */
		total = inode_listxattr(&f.it, file, NULL, 0);
		buf = malloc((size_t)total);
		ck_assert_int_eq(inode_listxattr(&f.it, file, buf, (size_t)total), total);
		names = calloc(N, sizeof(*names));
		n = 0;
		for (ssize_t i = 0; i < total; i += (ssize_t)strlen(buf + i) + 1) {
			REQUIRE(n < N, "more names than set");
			names[n++] = buf + i;
		}
		qsort(names, n, sizeof(*names), strp_cmp);
		ck_assert_uint_eq(n, pass == 0 ? N : N / 2);
		for (size_t i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "user.attribute-%04zu", pass == 0 ? i : 2 * i + 1);
			REQUIRE(strcmp(names[i], name) == 0, "name %zu: %s, want %s", i, names[i], name);
			snprintf(value, sizeof(value), "value of %zu", pass == 0 ? i : 2 * i + 1);
			expect_value(&f, file, name, value);
		}
		free(names);
		free(buf);
		if (pass == 1)
			break;
		ifix_reopen(&f);
		for (int i = 0; i < N; i += 2) {
			snprintf(name, sizeof(name), "user.attribute-%04d", i);
			REQUIRE(inode_removexattr(&f.it, file, name) == 0, "remove %s", name);
		}
	}
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), N / 2);
	ifix_teardown(&f);
}
END_TEST

/* ---- POSIX ACLs ------------------------------------------------------------------------------- */

START_TEST(acl_values_checked)
{
	struct ifix f;
	uint8_t buf[512];
	size_t size;
	uint64_t file;

	ifix_setup(&f, "xa-aclcheck", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	struct {
		const char *text;
		int want;
	} cases[] = {
		{ "u::rwx,g::r-x,o::r-x", 0 },
		{ "u::rwx,u:5:r--,u:7:r--,g::r-x,g:1:r--,m::r-x,o::---", 0 },
		{ "u::rwx,g::r-x,m::rwx,o::---", 0 },                 /* a mask alone is fine */
		{ "", -EINVAL + 1000 },                               /* header only: see below */
		{ "g::r-x,u::rwx,o::r-x", -EINVAL },                  /* order */
		{ "u::rwx,g::r-x", -EINVAL },                         /* no OTHER */
		{ "u::rwx,o::r-x", -EINVAL },                         /* no GROUP_OBJ */
		{ "g::r-x,o::r-x", -EINVAL },                         /* no USER_OBJ */
		{ "u::rwx,u::rwx,g::r-x,o::r-x", -EINVAL },           /* USER_OBJ twice */
		{ "u::rwx,u:5:r--,g::r-x,o::r-x", -EINVAL },          /* named, no mask */
		{ "u::rwx,u:7:r--,u:5:r--,g::r-x,m::r--,o::---", -EINVAL },  /* ids descending */
		{ "u::rwx,u:5:r--,u:5:rw-,g::r-x,m::r--,o::---", -EINVAL },  /* id twice */
		{ "u::rwx,g::r-x,m::r--,m::r--,o::---", -EINVAL },    /* two masks */
		{ "u::rwx,g::r-x,o::r-x,o::r-x", -EINVAL },           /* OTHER twice */
		{ "u::rwx,g::r-x,o::r-x,m::r--", -EINVAL },           /* mask after OTHER */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (cases[i].want == -EINVAL + 1000)
			continue;
		size = acl_text(buf, cases[i].text);
		ck_assert_msg(acl_value_check(buf, size) == (cases[i].want ? cases[i].want :
			      (int)((size - 4) / 8)), "%s", cases[i].text);
		if (cases[i].want)
			IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, size, 0),
					 cases[i].want);
	}

	/* Bytes that are no ACL at all. */
	size = acl_text(buf, "u::rwx,g::r-x,o::r-x");
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, 3, 0), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, size - 1, 0),
			 -EINVAL);
	put_le32(buf, 1);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, size, 0),
			 -EOPNOTSUPP);
	size = acl_text(buf, "u::rwx,g::r-x,o::r-x");
	put_le16(buf + 4 + 2, 010);   /* USER_OBJ perm: a bit beyond rwx */
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, size, 0), -EINVAL);
	size = acl_text(buf, "u::rwx,g::r-x,o::r-x");
	put_le16(buf + 4 + 8, 0x40);  /* an unknown tag */
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, size, 0), -EINVAL);
	size = acl_text(buf, "u::rwx,u:1:r--,g::r-x,m::r-x,o::r-x");
	put_le32(buf + 4 + 8 + 4, ACL_ID_UNDEFINED);   /* a named user without an id */
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, size, 0), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_DEFAULT, buf, size, 0), -EACCES);
	ifix_teardown(&f);
}
END_TEST

START_TEST(access_acl_and_mode)
{
	struct ifix f;
	uint8_t buf[64];
	uint64_t file, fifo;
	struct timespec t0;

	ifix_setup(&f, "xa-access", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 04644);
	fifo = ifix_mk(&f, ROOT, "fifo", S_IFIFO | 0600);

	/* More than the mode says: stored; the mode takes user, mask and other. */
	short_sleep();
	t0 = now_ts();
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::rwx,u:1000:r--,g::r-x,m::rw-,o::---"),
			 0);
	expect_acl(&f, file, XATTR_ACL_ACCESS, "u::rwx,u:1000:r--,g::r-x,m::rw-,o::---");
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 04760);
	ck_assert(ts_before(t0, ifix_attr(&f, file).ctime));
	expect_names(&f, file, "system.posix_acl_access");

	/* No more than the mode says: the stored one goes, the mode takes the bits. */
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::rw-,g::r--,o::r--"), 0);
	ck_assert_int_eq(inode_getxattr(&f.it, file, XATTR_ACL_ACCESS, buf, sizeof(buf)), -ENODATA);
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 04644);
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), 0);
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::r--,g::---,o::---"), 0);
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 04400);
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), 0);

	/* Flags count what is stored. */
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf,
					    acl_text(buf, "u::rw-,g::r--,o::r--"), XATTR_REPLACE),
			 -ENODATA);
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::rw-,g::r--,m::r--,o::r--"), 0);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf,
					    acl_text(buf, "u::rw-,g::r--,o::r--"), XATTR_CREATE),
			 -EEXIST);

	/* Only the header: no ACL, the mode stays. Removing it: the same. */
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 04644);
	ck_assert_int_eq(inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, acl_text(buf, ""), 0),
			 0);
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), 0);
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 04644);
	ck_assert_int_eq(inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, buf, acl_text(buf, ""), 0),
			 0);
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::rw-,g:9:rwx,g::r--,m::r-x,o::r--"),
			 -EINVAL);
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::rw-,g::r--,g:9:rwx,m::r-x,o::r--"),
			 0);
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 04654);
	ck_assert_int_eq(inode_removexattr(&f.it, file, XATTR_ACL_ACCESS), 0);
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 04654);
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, file, XATTR_ACL_ACCESS), -ENODATA);

	/* Device nodes and FIFOs may have access ACLs, not default ones. */
	ck_assert_int_eq(set_acl(&f, fifo, XATTR_ACL_ACCESS, "u::rw-,u:3:rw-,g::---,m::rw-,o::---"),
			 0);
	ck_assert_uint_eq(ifix_attr(&f, fifo).mode, S_IFIFO | 0660);
	ifix_teardown(&f);
}
END_TEST

START_TEST(default_acl_rules)
{
	struct ifix f;
	uint8_t buf[64];
	size_t size;
	uint64_t file, dir, lnk;
	struct cowfs_attr a;

	ifix_setup(&f, "xa-default", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0750);
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "sl", 2, "file", 4, 0, 0, &a), 0);
	lnk = a.ino;

	size = acl_text(buf, "u::rwx,g::r-x,o::---");
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_DEFAULT, buf, size, 0), -EACCES);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, lnk, XATTR_ACL_DEFAULT, buf, size, 0),
			 -EOPNOTSUPP);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, lnk, XATTR_ACL_ACCESS, buf, size, 0),
			 -EOPNOTSUPP);
	ck_assert_int_eq(inode_getxattr(&f.it, file, XATTR_ACL_DEFAULT, buf, sizeof(buf)), -ENODATA);
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, file, XATTR_ACL_DEFAULT), -ENODATA);

	/* A default ACL is kept as given, even one the mode bits could say; the mode stays. */
	ck_assert_int_eq(inode_setxattr(&f.it, dir, XATTR_ACL_DEFAULT, buf, size, 0), 0);
	expect_acl(&f, dir, XATTR_ACL_DEFAULT, "u::rwx,g::r-x,o::---");
	ck_assert_uint_eq(ifix_attr(&f, dir).mode, S_IFDIR | 0750);
	ck_assert_int_eq(set_acl(&f, dir, XATTR_ACL_DEFAULT, "u::rwx,u:4:rwx,g::r-x,m::rwx,o::r-x"),
			 0);
	expect_acl(&f, dir, XATTR_ACL_DEFAULT, "u::rwx,u:4:rwx,g::r-x,m::rwx,o::r-x");
	ck_assert_uint_eq(ifix_attr(&f, dir).mode, S_IFDIR | 0750);
	ck_assert_int_eq(inode_removexattr(&f.it, dir, XATTR_ACL_DEFAULT), 0);
	ck_assert_int_eq(inode_getxattr(&f.it, dir, XATTR_ACL_DEFAULT, buf, sizeof(buf)), -ENODATA);
	ifix_teardown(&f);
}
END_TEST

START_TEST(chmod_rewrites_the_acl)
{
	struct ifix f;
	uint64_t file, plain;
	struct timespec t0;

	ifix_setup(&f, "xa-chmod", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	plain = ifix_mk(&f, ROOT, "plain", S_IFREG | 0644);
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::rwx,u:1000:r-x,g::r-x,m::rwx,o::r--"),
			 0);
	ck_assert_uint_eq(perms_of(&f, file), 0774);

	/* USER_OBJ, MASK and OTHER follow the mode; named entries and GROUP_OBJ keep theirs. */
	short_sleep();
	t0 = now_ts();
	ck_assert_int_eq(acl_chmod(&f.it, file, 02640), 0);
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 02640);
	ck_assert(ts_before(t0, ifix_attr(&f, file).ctime));
	expect_acl(&f, file, XATTR_ACL_ACCESS, "u::rw-,u:1000:r-x,g::r-x,m::r--,o::---");
	ck_assert_int_eq(acl_chmod(&f.it, file, 0777), 0);
	expect_acl(&f, file, XATTR_ACL_ACCESS, "u::rwx,u:1000:r-x,g::r-x,m::rwx,o::rwx");
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 0777);

	/* No ACL: a chmod. */
	ck_assert_int_eq(acl_chmod(&f.it, plain, 0100600 | 04000), 0);
	ck_assert_uint_eq(ifix_attr(&f, plain).mode, S_IFREG | 04600);
	ck_assert_uint_eq(items_of(&f, plain, XATTR_ITEM_KEY), 0);
	IFIX_EXPECT_UNCHANGED(&f, acl_chmod(&f.it, 9999, 0644), -ENOENT);
	ifix_teardown(&f);
}
END_TEST

/* Create `name` in `dir` as the FUSE layer does: acl_new_inode, create, acl_apply_new. */
static uint64_t mk_acl(struct ifix *f, uint64_t dir, const char *name, uint32_t mode,
		       uint32_t umask)
{
	struct acl_new an;
	uint64_t ino;

	ck_assert_int_eq(acl_new_inode(&f->it, dir, &mode, umask, &an), 0);
	ino = ifix_mk(f, dir, name, mode);
	ck_assert_int_eq(acl_apply_new(&f->it, ino, &an), 0);
	acl_new_free(&an);
	return ino;
}

START_TEST(inherit_on_create)
{
	struct ifix f;
	struct acl_new an;
	uint32_t mode;
	uint64_t plain, dir, file, sub, deep, eq, efile;
	uint8_t buf[64];
	const char *dflt = "u::rwx,u:1000:rw-,g::r-x,m::rwx,o::r-x";

	ifix_setup(&f, "xa-inherit", IMG, 16384);
	/* No default ACL: the umask applies, no ACLs. */
	mode = S_IFREG | 0666;
	ck_assert_int_eq(acl_new_inode(&f.it, ROOT, &mode, 022, &an), 0);
	ck_assert_uint_eq(mode, S_IFREG | 0644);
	ck_assert_ptr_null(an.access);
	ck_assert_ptr_null(an.dflt);
	plain = ifix_mk(&f, ROOT, "plain", mode);
	ck_assert_int_eq(acl_apply_new(&f.it, plain, &an), 0);
	acl_new_free(&an);
	ck_assert_uint_eq(items_of(&f, plain, XATTR_ITEM_KEY), 0);

	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	ck_assert_int_eq(set_acl(&f, dir, XATTR_ACL_DEFAULT, dflt), 0);

	/* A file: the default ACL masked by the requested mode, the umask ignored. */
	mode = S_IFREG | 0666;
	ck_assert_int_eq(acl_new_inode(&f.it, dir, &mode, 077, &an), 0);
	ck_assert_uint_eq(mode, S_IFREG | 0664);
	expect_acl_value(an.access, an.access_size, "u::rw-,u:1000:rw-,g::r-x,m::rw-,o::r--");
	ck_assert_ptr_null(an.dflt);
	file = ifix_mk(&f, dir, "file", mode);
	ck_assert_int_eq(acl_apply_new(&f.it, file, &an), 0);
	IFIX_EXPECT_UNCHANGED(&f, acl_apply_new(&f.it, file, &an), -EEXIST);
	acl_new_free(&an);
	expect_acl(&f, file, XATTR_ACL_ACCESS, "u::rw-,u:1000:rw-,g::r-x,m::rw-,o::r--");
	ck_assert_int_eq(inode_getxattr(&f.it, file, XATTR_ACL_DEFAULT, buf, sizeof(buf)), -ENODATA);
	ck_assert_uint_eq(ifix_attr(&f, file).mode, S_IFREG | 0664);

	/* A directory also inherits the default ACL; and again one level down. */
	sub = mk_acl(&f, dir, "sub", S_IFDIR | 0777, 022);
	ck_assert_uint_eq(ifix_attr(&f, sub).mode, S_IFDIR | 0775);
	expect_acl(&f, sub, XATTR_ACL_ACCESS, "u::rwx,u:1000:rw-,g::r-x,m::rwx,o::r-x");
	expect_acl(&f, sub, XATTR_ACL_DEFAULT, dflt);
	deep = mk_acl(&f, sub, "deep", S_IFREG | 0640, 022);
	ck_assert_uint_eq(ifix_attr(&f, deep).mode, S_IFREG | 0640);
	expect_acl(&f, deep, XATTR_ACL_ACCESS, "u::rw-,u:1000:rw-,g::r-x,m::r--,o::---");

	/* A default ACL of base entries only: the result is the mode, so no access ACL. */
	eq = ifix_mk(&f, ROOT, "eq", S_IFDIR | 0755);
	ck_assert_int_eq(set_acl(&f, eq, XATTR_ACL_DEFAULT, "u::rwx,g::r-x,o::---"), 0);
	mode = S_IFREG | 0666;
	ck_assert_int_eq(acl_new_inode(&f.it, eq, &mode, 022, &an), 0);
	ck_assert_uint_eq(mode, S_IFREG | 0640);
	ck_assert_ptr_null(an.access);
	ck_assert_ptr_null(an.dflt);
	acl_new_free(&an);
	efile = mk_acl(&f, eq, "efile", S_IFREG | 0666, 022);
	ck_assert_uint_eq(items_of(&f, efile, XATTR_ITEM_KEY), 0);
	uint64_t edir = mk_acl(&f, eq, "edir", S_IFDIR | 0777, 022);
	ck_assert_uint_eq(ifix_attr(&f, edir).mode, S_IFDIR | 0750);
	expect_names(&f, edir, "system.posix_acl_default");

	/* Symlinks: neither umask nor ACLs. */
	mode = S_IFLNK | 0777;
	ck_assert_int_eq(acl_new_inode(&f.it, dir, &mode, 022, &an), 0);
	ck_assert_uint_eq(mode, S_IFLNK | 0777);
	ck_assert_ptr_null(an.access);

	/* Errors: not a directory, no such directory, a default ACL for a file. */
	mode = S_IFREG | 0666;
	ck_assert_int_eq(acl_new_inode(&f.it, file, &mode, 022, &an), -ENOTDIR);
	ck_assert_int_eq(acl_new_inode(&f.it, 9999, &mode, 022, &an), -ENOENT);
	mode = S_IFDIR | 0777;
	ck_assert_int_eq(acl_new_inode(&f.it, dir, &mode, 022, &an), 0);
	ck_assert_ptr_nonnull(an.dflt);
	IFIX_EXPECT_UNCHANGED(&f, acl_apply_new(&f.it, plain, &an), -EACCES);
	acl_new_free(&an);
	ifix_teardown(&f);
}
END_TEST

/* ---- the checker ------------------------------------------------------------------------------ */

static void raw_insert(struct ifix *f, uint64_t ino, uint64_t hash, const void *data, uint32_t len)
{
	struct bt_key k = { ino, XATTR_ITEM_KEY, hash };
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);

	ck_assert_int_eq(bt_insert(&tx->bt, &f->x.fs->fs_root.t, &k, data, len), 0);
	cowfs_trans_end(tx, 0);
}

static void raw_delete(struct ifix *f, uint64_t ino, uint64_t hash)
{
	struct bt_key k = { ino, XATTR_ITEM_KEY, hash };
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_PRIVILEGED);

	ck_assert_int_eq(bt_delete(&tx->bt, &f->x.fs->fs_root.t, &k), 0);
	cowfs_trans_end(tx, 0);
}

/* One entry's bytes. */
static uint32_t raw_entry(uint8_t *p, const char *name, const void *value, uint16_t vlen)
{
	uint16_t nlen = (uint16_t)strlen(name);

	put_le16(p, nlen);
	put_le16(p + 2, vlen);
	memcpy(p + 4, name, nlen);
	memcpy(p + 4 + nlen, value, vlen);
	return 4u + nlen + vlen;
}

/* The checker must report the damage, naming `ino` and saying `what`; then, once the damage is
 * gone, nothing. */
static void expect_reported(struct ifix *f, uint64_t ino, const char *what)
{
	struct inode_check_stats st;
	char needle[64];

	f->seen[0] = '\0';
	ck_assert_int_eq(inode_check_all(f->x.fs, &st), -EUCLEAN);
	snprintf(needle, sizeof(needle), "inode %" PRIu64 ": ", ino);
	ck_assert_msg(strstr(f->seen, needle) && strstr(f->seen, what),
		      "no report of \"%s\" for inode %" PRIu64 "; got:\n%s", what, ino, f->seen);
}

static void expect_clean(struct ifix *f)
{
	struct inode_check_stats st;

	f->seen[0] = '\0';
	ck_assert_msg(inode_check_all(f->x.fs, &st) == 0, "got:\n%s", f->seen);
}

/* inode_permission for a caller of uid:gid and groups, as a string of the granted rwx. */
static void expect_granted(struct ifix *f, uint64_t ino, uid_t uid, gid_t gid, const gid_t *groups,
			   size_t ngroups, const char *want)
{
	struct inode_caller c = { .uid = uid, .gid = gid, .groups = groups, .ngroups = ngroups };
	char got[4] = "---";

	for (int i = 0; i < 3; i++) {
		int ret = inode_permission(&f->it, ino, &c, 4 >> i);

		ck_assert_msg(ret == 0 || ret == -EACCES, "inode_permission: %d", ret);
		if (ret == 0)
			got[i] = "rwx"[i];
	}
	ck_assert_msg(strcmp(got, want) == 0, "uid %u gid %u: granted %s, expected %s",
		      (unsigned)uid, (unsigned)gid, got, want);
}

/* generic_permission's rules: owner bits, the access ACL (named users and groups under the
 * mask, any matching group granting), group and other bits, root's override. */
START_TEST(permission_rules)
{
	struct ifix f;
	struct inode_caller nobody = { .uid = 2000, .gid = 2000 };
	const gid_t g50[] = { 50 }, g50_100[] = { 50, 100 };
	uint64_t file, dir, noexec;

	ifix_setup(&f, "xa-perm", IMG, 16384);
	/* ifix_mk owns everything by 1000:100. */
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0640);
	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0700);
	noexec = ifix_mk(&f, ROOT, "noexec", S_IFREG | 0600);
	expect_granted(&f, file, 1000, 1000, NULL, 0, "rw-");     /* owner */
	expect_granted(&f, file, 2000, 100, NULL, 0, "r--");      /* group */
	expect_granted(&f, file, 2000, 2000, g50_100, 2, "r--");  /* supplementary group */
	expect_granted(&f, file, 2000, 2000, NULL, 0, "---");     /* other */
	ck_assert_int_eq(inode_permission(&f.it, file, &nobody, 0), 0);
	ck_assert_int_eq(inode_permission(&f.it, 999999, &nobody, 4), -ENOENT);
	/* Root: reads and writes anything, searches any directory, executes only with an x bit. */
	expect_granted(&f, noexec, 0, 0, NULL, 0, "rw-");
	expect_granted(&f, dir, 0, 0, NULL, 0, "rwx");
	ck_assert_int_eq(acl_chmod(&f.it, noexec, 0601), 0);
	expect_granted(&f, noexec, 0, 0, NULL, 0, "rwx");

	/* An access ACL: a named user under the mask, the owner not under it. */
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS,
				 "u::rw-,u:2000:rwx,g::r--,g:50:rw-,m::rw-,o::---"), 0);
	expect_granted(&f, file, 1000, 1000, NULL, 0, "rw-");
	expect_granted(&f, file, 2000, 2000, NULL, 0, "rw-");     /* rwx & mask rw- */
	expect_granted(&f, file, 3000, 3000, g50, 1, "rw-");      /* named group */
	expect_granted(&f, file, 3000, 100, NULL, 0, "r--");      /* owning group */
	/* Several groups match: each asked on its own, any one granting all of it is enough. */
	expect_granted(&f, file, 3000, 100, g50, 1, "rw-");
	expect_granted(&f, file, 3000, 3000, NULL, 0, "---");     /* other */
	/* A group entry granting more than the mask: the mask decides. */
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS,
				 "u::rw-,g::r--,g:50:rw-,m::r--,o::r--"), 0);
	expect_granted(&f, file, 3000, 3000, g50, 1, "r--");
	/* Matching a group that grants nothing wanted refuses, though other would grant. */
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS,
				 "u::rw-,g::---,g:50:---,m::rw-,o::r--"), 0);
	expect_granted(&f, file, 3000, 3000, g50, 1, "---");
	expect_granted(&f, file, 3000, 3000, NULL, 0, "r--");
	ifix_teardown(&f);
}
END_TEST

START_TEST(checker_reports_damage)
{
	struct ifix f;
	uint8_t item[600], acl[64];
	char buf[64];
	uint32_t n;
	uint64_t file, fifo, h;

	ifix_setup(&f, "xa-damage", IMG, 16384);
	ifix_collect_reports(&f);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	fifo = ifix_mk(&f, ROOT, "fifo", S_IFIFO | 0644);
	setx(&f, file, "user.fine", "ok");
	expect_clean(&f);

	/* A name filed under another name's hash. */
	h = xattr_name_hash("user.other", 10);
	raw_insert(&f, file, h, item, raw_entry(item, "user.x", "1", 1));
	expect_reported(&f, file, "xattr \"user.x\" filed under hash");
	raw_delete(&f, file, h);
	expect_clean(&f);

	/* An entry cut short: the name runs past the item's end. */
	h = xattr_name_hash("user.cut", 8);
	n = raw_entry(item, "user.cut", "value", 5);
	raw_insert(&f, file, h, item, n - 7);
	expect_reported(&f, file, "malformed xattr item");
	f.x.reports = 0;
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.cut", buf, sizeof(buf)), -EUCLEAN);
	ck_assert_int_eq(inode_listxattr(&f.it, file, buf, sizeof(buf)), -EUCLEAN);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.cut", "v", 1, 0), -EUCLEAN);
	ck_assert_int_eq(f.x.reports, 3);
	raw_delete(&f, file, h);
	/* A header cut short, and an empty name. */
	raw_insert(&f, file, h, item, 3);
	expect_reported(&f, file, "malformed xattr item");
	raw_delete(&f, file, h);
	put_le16(item, 0);
	put_le16(item + 2, 0);
	raw_insert(&f, file, h, item, 4);
	expect_reported(&f, file, "malformed xattr item");
	raw_delete(&f, file, h);
	expect_clean(&f);

	/* The same name twice in one item. */
	h = xattr_name_hash("user.twice", 10);
	n = raw_entry(item, "user.twice", "1", 1);
	n += raw_entry(item + n, "user.twice", "2", 1);
	raw_insert(&f, file, h, item, n);
	expect_reported(&f, file, "xattr \"user.twice\" twice in one item");
	raw_delete(&f, file, h);

	/* Xattrs of an inode that does not exist. */
	h = xattr_name_hash("user.lost", 9);
	raw_insert(&f, 5000, h, item, raw_entry(item, "user.lost", "1", 1));
	expect_reported(&f, 5000, "of an inode that does not exist");
	raw_delete(&f, 5000, h);

	/* Names and ACLs the calls would have refused. */
	h = xattr_name_hash("user.dev", 8);
	raw_insert(&f, fifo, h, item, raw_entry(item, "user.dev", "1", 1));
	expect_reported(&f, fifo, "user xattr \"user.dev\" on an inode that is no file");
	raw_delete(&f, fifo, h);
	h = xattr_name_hash("os2.name", 8);
	raw_insert(&f, file, h, item, raw_entry(item, "os2.name", "1", 1));
	expect_reported(&f, file, "xattr \"os2.name\" is in no namespace");
	raw_delete(&f, file, h);
	h = xattr_name_hash(XATTR_ACL_ACCESS, strlen(XATTR_ACL_ACCESS));
	n = (uint32_t)acl_text(acl, "u::rwx,g::r-x,o::r-x,o::r-x");
	raw_insert(&f, file, h, item, raw_entry(item, XATTR_ACL_ACCESS, acl, (uint16_t)n));
	expect_reported(&f, file, "malformed POSIX ACL");
	raw_delete(&f, file, h);
	/* An access ACL out of step with the mode: the inode item rewritten behind the ACL's
	 * back (inode_setattr keeps the two in step). */
	ck_assert_int_eq(set_acl(&f, file, XATTR_ACL_ACCESS, "u::rw-,u:3:rw-,g::r--,m::rw-,o::r--"),
			 0);
	expect_clean(&f);
	struct inode in;
	struct cowfs_trans *tx;
	ck_assert_int_eq(inode_update_begin(&f.it, ALLOC_NORMAL, 1, &tx), 0);
	ck_assert_int_eq(inode_read(&f.it, file, &in), 0);
	in.mode = (in.mode & S_IFMT) | 0600;
	ck_assert_int_eq(inode_write(tx, &f.it, file, &in), 0);
	inode_update_end(tx, 0);
	expect_reported(&f, file, "access ACL grants 664, but the mode's permission bits are 600");
	ck_assert_int_eq(acl_chmod(&f.it, file, 0600), 0);
	expect_clean(&f);
	/* chmod through inode_setattr rewrites the ACL with the mode. */
	struct cowfs_attr a = { .mode = 0640 };
	ck_assert_int_eq(inode_setattr(&f.it, file, INODE_SET_MODE, &a), 0);
	expect_clean(&f);
	h = xattr_name_hash(XATTR_ACL_DEFAULT, strlen(XATTR_ACL_DEFAULT));
	n = (uint32_t)acl_text(acl, "u::rwx,g::r-x,o::r-x");
	raw_insert(&f, file, h, item, raw_entry(item, XATTR_ACL_DEFAULT, acl, (uint16_t)n));
	expect_reported(&f, file, "which cannot have it");
	raw_delete(&f, file, h);
	ifix_teardown(&f);
}
END_TEST

/* ---- values up to 64 KiB -------------------------------------------------------------------- */

/* A value of `n` bytes that differs from every other (name, length) one. */
static uint8_t *pattern(const char *name, size_t n)
{
	uint8_t *v = malloc(n + 1);
	uint64_t x = xattr_name_hash(name, strlen(name)) ^ n;

	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = (uint8_t)(x >> 56);
	}
	return v;
}

static void set_pattern(struct ifix *f, uint64_t ino, const char *name, size_t n, int flags)
{
	uint8_t *v = pattern(name, n);
	int ret = inode_setxattr(&f->it, ino, name, v, n, flags);

	free(v);
	REQUIRE(ret == 0, "setxattr %s (%zu bytes): %d", name, n, ret);
}

/* The value of `name` is the pattern of `n` bytes: its length asked for, a buffer a byte
 * short refused, the bytes read back. */
static void expect_pattern(struct ifix *f, uint64_t ino, const char *name, size_t n)
{
	uint8_t *want = pattern(name, n), *buf = malloc(n + 1);

	REQUIRE(inode_getxattr(&f->it, ino, name, NULL, 0) == (ssize_t)n, "%s: size query", name);
	if (n > 1)
		REQUIRE(inode_getxattr(&f->it, ino, name, buf, n - 1) == -ERANGE, "%s: short", name);
	REQUIRE(inode_getxattr(&f->it, ino, name, buf, n + 1) == (ssize_t)n, "%s: read", name);
	REQUIRE(memcmp(buf, want, n) == 0, "%s: %zu bytes read back wrong", name, n);
	free(buf);
	free(want);
}

/* Pieces a value of `n` bytes under `name` takes: none when it fits in its entry's item. */
static uint64_t pieces_of(struct ifix *f, const char *name, size_t n)
{
	uint32_t piece = bt_max_item_size(cowfs_nodesize(f->x.fs));

	return n <= xattr_inline_max(&f->it, strlen(name)) ? 0 : (n + piece - 1) / piece;
}

static bool big_xattr_flag(struct ifix *f)
{
	return get_le64(&f->x.fs->sb.incompat_flags) & COWFS_INCOMPAT_BIG_XATTR;
}

static const size_t big_sizes[] = { 0, 1, 15999, 16000, 16001, 32768, 65536 };

/* Values of 0 .. 65536 bytes with 16 KiB and 4 KiB nodes: set, read, kept across a reopen,
 * replaced large by small and small by large, removed; the pieces come and go with them, the
 * superblock gets its BIG_XATTR flag with the first value in pieces, and the checkers are
 * clean throughout. */
START_TEST(values_up_to_64k)
{
	const uint32_t nodesize = _i ? 4096 : 16384;
	struct ifix f;
	char name[32];
	uint64_t file, other, base, pieces = 0;
	uint8_t *acl;

	ifix_setup(&f, "xa-64k", IMG, nodesize);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	base = items_of(&f, file, 0);
	for (size_t i = 0; i < ARRAY_SIZE(big_sizes); i++) {
		snprintf(name, sizeof(name), "%s.s%zu", i % 2 ? "trusted" : "user", big_sizes[i]);
		set_pattern(&f, file, name, big_sizes[i], XATTR_CREATE);
		expect_pattern(&f, file, name, big_sizes[i]);
		pieces += pieces_of(&f, name, big_sizes[i]);
		ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), pieces);
		/* Small values are stored as they always were: no flag for an older cowfs to trip
		 * over until a value is in pieces. */
		ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
		ck_assert_int_eq(big_xattr_flag(&f), pieces > 0);
	}
	ck_assert_uint_gt(pieces, 0);
	ck_assert_uint_eq(items_of(&f, file, XATTR_ITEM_KEY), ARRAY_SIZE(big_sizes));
	ifix_check(&f);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.s0", "x", 1, XATTR_CREATE),
			      -EEXIST);
	acl = pattern("user.s65536", XATTR_VALUE_MAX + 1);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.s65536", acl,
						 XATTR_VALUE_MAX + 1, XATTR_REPLACE), -E2BIG);
	/* POSIX ACLs stay within one item (ext4 keeps them within one block). */
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, XATTR_ACL_ACCESS, acl,
						 xattr_inline_max(&f.it, strlen(XATTR_ACL_ACCESS)) + 1,
						 0), -E2BIG);
	free(acl);

	ifix_reopen(&f);
	ck_assert(big_xattr_flag(&f));
	for (size_t i = 0; i < ARRAY_SIZE(big_sizes); i++) {
		snprintf(name, sizeof(name), "%s.s%zu", i % 2 ? "trusted" : "user", big_sizes[i]);
		expect_pattern(&f, file, name, big_sizes[i]);
	}

	/* Large by small, small by large, large by larger and by smaller. */
	set_pattern(&f, file, "user.s65536", 10, XATTR_REPLACE);
	expect_pattern(&f, file, "user.s65536", 10);
	pieces -= pieces_of(&f, "user.s65536", 65536);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), pieces);
	set_pattern(&f, file, "trusted.s1", 65536, XATTR_REPLACE);
	expect_pattern(&f, file, "trusted.s1", 65536);
	pieces += pieces_of(&f, "trusted.s1", 65536);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), pieces);
	set_pattern(&f, file, "trusted.s32768", 65536, 0);
	expect_pattern(&f, file, "trusted.s32768", 65536);
	pieces += pieces_of(&f, "x.s32768", 65536) - pieces_of(&f, "x.s32768", 32768);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), pieces);
	set_pattern(&f, file, "trusted.s32768", 20000, 0);
	expect_pattern(&f, file, "trusted.s32768", 20000);
	pieces -= pieces_of(&f, "x.s32768", 65536) - pieces_of(&f, "x.s32768", 20000);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), pieces);
	ifix_check(&f);

	/* Removing every value takes every piece with it. */
	for (size_t i = 0; i < ARRAY_SIZE(big_sizes); i++) {
		snprintf(name, sizeof(name), "%s.s%zu", i % 2 ? "trusted" : "user", big_sizes[i]);
		ck_assert_int_eq(inode_removexattr(&f.it, file, name), 0);
		ck_assert_int_eq(inode_getxattr(&f.it, file, name, NULL, 0), -ENODATA);
	}
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), 0);
	ck_assert_uint_eq(items_of(&f, file, 0), base);
	expect_names(&f, file, "");
	ifix_check(&f);

	/* So does the inode's last unlink. */
	other = ifix_mk(&f, ROOT, "other", S_IFDIR | 0755);
	set_pattern(&f, other, "user.a", 65536, 0);
	set_pattern(&f, other, "trusted.b", 40000, 0);
	ck_assert_uint_gt(items_of(&f, other, XATTR_VALUE_KEY), 2);
	ck_assert_int_eq(inode_rmdir(&f.it, ROOT, "other", 5), 0);
	ck_assert_uint_eq(items_of(&f, other, 0), 0);
	ifix_teardown(&f);
}
END_TEST

/* The value keys of the spilled entries of `ino`'s item of `hash`, in entry order. */
static size_t value_keys(struct ifix *f, uint64_t ino, uint64_t hash, uint64_t *keys, size_t max)
{
	struct bt_key k = { ino, XATTR_ITEM_KEY, hash };
	struct xattr_ref e;
	uint8_t buf[512];
	uint32_t len, off = 0;
	size_t n = 0;

	ck_assert_int_eq(bt_lookup(&f->x.fs->fs_root.t, &k, buf, sizeof(buf), &len), 0);
	ck_assert_uint_le(len, sizeof(buf));
	while (n < max && xattr_entry_next(buf, len, &off, &e) == 1)
		if (e.spilled)
			keys[n++] = e.value_key;
	return n;
}

/* Names on one hash each get their value pieces a span of their own (as colliding names
 * share an item, filed as in colliding_names_share_an_item). */
START_TEST(colliding_names_spill_apart)
{
	struct ifix f;
	uint64_t file, ha = xattr_name_hash("user.a", 6), keys[2];
	uint8_t *vb = pattern("user.b", 30000), *value;
	uint32_t vlen;

	ifix_setup(&f, "xa-collide-big", IMG, 16384);
	ifix_collect_reports(&f);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(xattr_item_put(tx, &f.it, file, ha, "user.b", 6, vb, 30000, 0), 0);
	cowfs_trans_end(tx, 0);
	set_pattern(&f, file, "user.a", 65536, 0);
	ck_assert_uint_eq(value_keys(&f, file, ha, keys, 2), 2);
	ck_assert_uint_ne(keys[0], keys[1]);
	ck_assert_uint_eq(keys[0], ha - ha % XATTR_VALUE_KEY_SPAN);
	ck_assert_uint_eq(keys[1], keys[0] + XATTR_VALUE_KEY_SPAN);
	expect_pattern(&f, file, "user.a", 65536);
	inode_lock_read(&f.it);
	ck_assert_int_eq(xattr_item_get(&f.it, file, ha, "user.b", 6, &value, &vlen), 0);
	inode_unlock_read(&f.it);
	ck_assert_uint_eq(vlen, 30000);
	ck_assert_int_eq(memcmp(value, vb, vlen), 0);
	free(value);

	/* user.b goes, its span comes free: user.a's new value takes it. */
	tx = cowfs_trans_begin(f.x.fs, ALLOC_PRIVILEGED);
	ck_assert_int_eq(xattr_item_del(tx, &f.it, file, ha, "user.b", 6), 0);
	cowfs_trans_end(tx, 0);
	set_pattern(&f, file, "user.a", 50000, 0);
	ck_assert_uint_eq(value_keys(&f, file, ha, keys, 2), 1);
	ck_assert_uint_eq(keys[0], ha - ha % XATTR_VALUE_KEY_SPAN);
	expect_pattern(&f, file, "user.a", 50000);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), pieces_of(&f, "user.a", 50000));
	expect_clean(&f);
	free(vb);
	ifix_teardown(&f);
}
END_TEST

static void raw_put(struct ifix *f, const struct bt_key *k, const void *data, uint32_t len)
{
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);

	ck_assert_int_eq(bt_insert(&tx->bt, &f->x.fs->fs_root.t, k, data, len), 0);
	cowfs_trans_end(tx, 0);
}

static void raw_del(struct ifix *f, const struct bt_key *k)
{
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_PRIVILEGED);

	ck_assert_int_eq(bt_delete(&tx->bt, &f->x.fs->fs_root.t, k), 0);
	cowfs_trans_end(tx, 0);
}

/* What the checker says of a value in pieces whose pieces or entry were damaged. */
START_TEST(checker_reports_spill_damage)
{
	struct ifix f;
	uint64_t file, h = xattr_name_hash("user.big", 8), key;
	uint8_t piece[16384], item[64];
	uint32_t len, n;
	char buf[64];

	ifix_setup(&f, "xa-spill-damage", IMG, 16384);
	ifix_collect_reports(&f);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	set_pattern(&f, file, "user.big", 40000, 0);
	ck_assert_uint_eq(value_keys(&f, file, h, &key, 1), 1);
	ck_assert_uint_eq(items_of(&f, file, XATTR_VALUE_KEY), 3);
	expect_clean(&f);

	/* A piece missing: reads of the value refuse it (its length, from the entry, is still
	 * told), updates of it too. */
	struct bt_key pk = { file, XATTR_VALUE_KEY, key + 1 };
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &pk, piece, sizeof(piece), &len), 0);
	raw_del(&f, &pk);
	expect_reported(&f, file, "xattr \"user.big\" (40000 bytes at value key");
	expect_reported(&f, file, "value piece missing");
	f.x.reports = 0;
	uint8_t *whole = malloc(40000);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.big", whole, 40000), -EUCLEAN);
	free(whole);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.big", NULL, 0), 40000);
	ck_assert_int_eq(inode_getxattr(&f.it, file, "user.big", buf, sizeof(buf)), -ERANGE);
	IFIX_EXPECT_UNCHANGED(&f, inode_removexattr(&f.it, file, "user.big"), -EUCLEAN);
	IFIX_EXPECT_UNCHANGED(&f, inode_setxattr(&f.it, file, "user.big", "v", 1, 0), -EUCLEAN);
	ck_assert_int_eq(f.x.reports, 3);
	expect_names(&f, file, "user.big");
	raw_put(&f, &pk, piece, len);
	expect_clean(&f);

	/* The last piece longer than the rest of the value; empty. */
	pk.offset = key + 2;
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &pk, piece, sizeof(piece), &len), 0);
	ck_assert_uint_lt(len, 16000);
	raw_del(&f, &pk);
	raw_put(&f, &pk, piece, len + 1);
	expect_reported(&f, file, "value pieces longer than the value");
	raw_del(&f, &pk);
	raw_put(&f, &pk, piece, 0);
	expect_reported(&f, file, "empty value piece");
	raw_del(&f, &pk);
	raw_put(&f, &pk, piece, len);
	expect_clean(&f);

	/* A piece past the last one, and one far from any value: they belong to nothing. */
	struct bt_key extra = { file, XATTR_VALUE_KEY, key + 3 };
	raw_put(&f, &extra, piece, 100);
	expect_reported(&f, file, "xattr value piece at");
	raw_del(&f, &extra);
	extra.offset = key + 7 * XATTR_VALUE_KEY_SPAN;
	raw_put(&f, &extra, piece, 100);
	expect_reported(&f, file, "belongs to no xattr");
	raw_del(&f, &extra);
	expect_clean(&f);

	/* Another entry naming the same pieces. */
	uint64_t ht = xattr_name_hash("user.twin", 9);
	struct bt_key tk = { file, XATTR_ITEM_KEY, ht };
	n = xattr_spilled_encode(item, "user.twin", 9, 40000, key);
	raw_put(&f, &tk, item, n);
	expect_reported(&f, file, "two spilled xattr values at value key");
	raw_del(&f, &tk);
	/* A spill record of the wrong size, or off its span's start. */
	n = xattr_spilled_encode(item, "user.twin", 9, 40000, key + 1);
	raw_put(&f, &tk, item, n);
	expect_reported(&f, file, "malformed xattr item");
	raw_del(&f, &tk);
	n = xattr_spilled_encode(item, "user.twin", 9, 40000, key + XATTR_VALUE_KEY_SPAN);
	put_le16(item + 2, 11);
	raw_put(&f, &tk, item, n - 1);
	expect_reported(&f, file, "malformed xattr item");
	raw_del(&f, &tk);
	expect_clean(&f);

	/* A value in pieces in an image whose superblock does not say so (committed: the
	 * running transaction's flags are the superblock's now). */
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	put_le64(&f.x.fs->sb.incompat_flags, get_le64(&f.x.fs->sb.incompat_flags) &
		 ~COWFS_INCOMPAT_BIG_XATTR);
	expect_reported(&f, file, "spilled, but the superblock lacks the BIG_XATTR feature");
	put_le64(&f.x.fs->sb.incompat_flags, get_le64(&f.x.fs->sb.incompat_flags) |
		 COWFS_INCOMPAT_BIG_XATTR);
	expect_clean(&f);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xattr");
	TCase *tc = tcase_create("xattr");

	tcase_add_test(tc, set_get_list_remove);
	tcase_add_test(tc, create_replace_flags);
	tcase_add_test(tc, names_values_and_types);
	tcase_add_test(tc, colliding_names_share_an_item);
	tcase_add_test(tc, persist_across_reopen);
	tcase_add_test(tc, freed_with_the_inode);
	tcase_add_test(tc, a_thousand_on_one_inode);
	tcase_add_test(tc, acl_values_checked);
	tcase_add_test(tc, access_acl_and_mode);
	tcase_add_test(tc, default_acl_rules);
	tcase_add_test(tc, chmod_rewrites_the_acl);
	tcase_add_test(tc, inherit_on_create);
	tcase_add_test(tc, permission_rules);
	tcase_add_test(tc, checker_reports_damage);
	tcase_add_loop_test(tc, values_up_to_64k, 0, 2);
	tcase_add_test(tc, colliding_names_spill_apart);
	tcase_add_test(tc, checker_reports_spill_damage);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
