/*
 * struct subvols (fs/inode/subvols.c): trees opened when first asked for, the read-only flag
 * from SUBVOL_ITEM and SET_FLAGS, btrfs's permission rules for create, snapshot, delete and
 * set-readonly, and copy_file_range / clone between two subvolumes' trees sharing extents.
 * (Dropping deleted subvolumes is tests/integ/test_subvol.sh's, on a real mount.)
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/inode/subvol.h"
#include "tests/support/fixture.h"
#include "tests/support/ifix.h"

#define IMG (128ull << 20)
#define ROOT INODE_ROOT_INO

static const struct inode_caller root_caller = { .uid = 0, .gid = 0 };
static const struct inode_caller user = { .uid = 1000, .gid = 100 };

static uint64_t mkfile(struct inode_tree *it, uint64_t dir, const char *name)
{
	struct cowfs_attr a;

	ck_assert_int_eq(inode_create(it, dir, name, strlen(name), S_IFREG | 0644, 0, 1000, 100,
				      &a), 0);
	return a.ino;
}

static void fill(struct inode_tree *it, uint64_t ino, char c, size_t len)
{
	char *buf = malloc(len);

	memset(buf, c, len);
	ck_assert_int_eq(file_write(it, ino, buf, len, 0, 0), (ssize_t)len);
	free(buf);
}

static void open_set(struct ifix *f, struct subvols **sv, struct inode_tree **top)
{
	struct subvols_config cfg = { .atime_mode = INODE_ATIME_RELATIME };

	ck_assert_int_eq(subvols_open(f->x.fs, &cfg, sv), 0);
	ck_assert_int_eq(subvols_replay_log(*sv, &(uint64_t){ 0 }), 0);
	ck_assert_int_eq(subvols_tree(*sv, FS_TREE_ID, top), 0);
}

START_TEST(permissions)
{
	struct ifix f;
	struct subvols *sv;
	struct inode_tree *top, *s, *again;
	struct cowfs_attr a;
	uint64_t id, snap, d;

	ifix_setup(&f, "subvols_perm", IMG, 0);
	open_set(&f, &sv, &top);
	ck_assert_int_eq(subvols_tree(sv, SUBVOL_FIRST_ID, &s), -ENOENT);
	/* The top level's root is root's, 0755: others may not make subvolumes in it. */
	ck_assert_int_eq(subvols_create(sv, top, ROOT, "sv", 2, &user, &id), -EACCES);
	ck_assert_int_eq(subvols_create(sv, top, ROOT, "sv", 2, &root_caller, &id), 0);
	ck_assert_int_eq(subvols_tree(sv, id, &s), 0);
	ck_assert_int_eq(subvols_tree(sv, id, &again), 0);
	ck_assert_ptr_eq(s, again);   /* one inode_tree per subvolume */
	ck_assert_int_eq(inode_getattr(s, ROOT, &a), 0);
	ck_assert_uint_eq(a.uid, 0);
	ck_assert_uint_eq(a.subvol, id);

	/* A directory of the user's: a snapshot there is allowed (the source root is readable). */
	ck_assert_int_eq(inode_mkdir(top, ROOT, "u", 1, S_IFDIR | 0755, 1000, 100, &a), 0);
	d = a.ino;
	ck_assert_int_eq(subvols_snapshot(sv, id, top, d, "snap", 4, true, &user, &snap), 0);
	ck_assert_int_eq(subvols_snapshot(sv, id, top, ROOT, "no", 2, false, &user, &snap),
			 -EACCES);
	ck_assert_int_eq(subvols_tree(sv, snap, &again), 0);
	ck_assert(again->read_only);
	/* Deleting: root only without user_subvol_rm_allowed; a plain directory is no subvolume. */
	ck_assert_int_eq(subvols_delete(sv, top, d, "snap", 4, 0, &user, &snap), -EPERM);
	ck_assert_int_eq(subvols_delete(sv, top, ROOT, "u", 1, 0, &root_caller, &snap), -EINVAL);
	/* Read-only by the owner of the subvolume's root (root here) only. */
	ck_assert_int_eq(subvols_set_readonly(sv, id, true, &user), -EPERM);
	ck_assert_int_eq(subvols_set_readonly(sv, id, true, &root_caller), 0);
	ck_assert_int_eq(inode_create(s, ROOT, "f", 1, S_IFREG | 0644, 0, 0, 0, &a), -EROFS);
	ck_assert_int_eq(subvols_set_readonly(sv, id, false, &root_caller), 0);
	ck_assert_int_eq(inode_create(s, ROOT, "f", 1, S_IFREG | 0644, 0, 0, 0, &a), 0);
	ck_assert_int_eq(subvols_set_default(sv, id, &user), -EPERM);
	ck_assert_int_eq(subvols_close(sv), 0);

	/* The flags are on disk: a new set sees them. */
	open_set(&f, &sv, &top);
	ck_assert_int_eq(subvols_tree(sv, snap, &again), 0);
	ck_assert(again->read_only);
	ck_assert_int_eq(subvols_tree(sv, id, &s), 0);
	ck_assert(!s->read_only);
	ck_assert_int_eq(subvols_close(sv), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_teardown(&f);
}
END_TEST

START_TEST(copy_between_subvolumes_shares)
{
	struct ifix f;
	struct subvols *sv;
	struct inode_tree *top, *s;
	struct file_share_stats st;
	uint64_t id, src, dst, cl, cloned = 0;
	char buf[4096];

	ifix_setup(&f, "subvols_share", IMG, 0);
	open_set(&f, &sv, &top);
	ck_assert_int_eq(subvols_create(sv, top, ROOT, "sv", 2, &root_caller, &id), 0);
	ck_assert_int_eq(subvols_tree(sv, id, &s), 0);
	src = mkfile(s, ROOT, "src");
	fill(s, src, 'q', 256 * 1024);
	dst = mkfile(top, ROOT, "dst");
	cl = mkfile(top, ROOT, "cl");
	ck_assert_int_eq(file_copy_range_between(s, src, 0, top, dst, 0, 256 * 1024), 256 * 1024);
	ck_assert_int_eq(file_clone_range_between(s, src, 0, top, cl, 0, 0, &cloned), 0);
	ck_assert_uint_eq(cloned, 256 * 1024);
	file_get_share_stats(top, &st);
	ck_assert_uint_eq(st.copy_bytes_shared, 256 * 1024);
	ck_assert_uint_eq(st.copy_bytes_copied, 0);
	ck_assert_uint_eq(st.clone_bytes, 256 * 1024);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);

	/* Diverge: a write to the source leaves both copies as they were. */
	fill(s, src, 'z', 4096);
	ck_assert_int_eq(file_read(top, dst, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert_int_eq(buf[0], 'q');
	ck_assert_int_eq(file_read(top, cl, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert_int_eq(buf[4095], 'q');
	/* Into a read-only subvolume: refused. */
	ck_assert_int_eq(subvols_set_readonly(sv, id, true, &root_caller), 0);
	ck_assert_int_eq(file_copy_range_between(top, dst, 0, s, src, 0, 4096), -EROFS);
	ck_assert_int_eq(file_clone_range_between(top, dst, 0, s, src, 0, 4096, &cloned), -EROFS);
	ck_assert_int_eq(subvols_close(sv), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("subvols");
	TCase *tc = tcase_create("subvols");

	tcase_add_test(tc, permissions);
	tcase_add_test(tc, copy_between_subvolumes_shares);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
