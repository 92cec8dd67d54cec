/*
 * fs/inode: inode items, directories and the namespace operations on a real filesystem
 * (fsfix), each followed by the checker. Error cases also check that nothing changed.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs/extent/extent_format.h"
#include "fs/inode/namespace_check.h"
#include "fs/inode/inode.h"
#include "fs/inode/xattr.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define IMG (128ull << 20)
#define ROOT INODE_ROOT_INO

/* Inode number of `name` in `dir`, or the negative errno of the lookup. */
static int64_t lk(struct ifix *f, uint64_t dir, const char *name)
{
	struct cowfs_attr a;
	int ret = inode_lookup(&f->it, dir, name, strlen(name), &a);

	return ret < 0 ? ret : (int64_t)a.ino;
}

static uint32_t nlink_of(struct ifix *f, uint64_t ino)
{
	return ifix_attr(f, ino).nlink;
}

/* ---- readdir collection -------------------------------------------------------------------- */

struct seen {
	char (*names)[INODE_NAME_MAX + 1];
	uint64_t *inos;
	uint8_t *types;
	size_t n, cap;
	size_t limit;        /* stop after this many in one call (0: no limit) */
	size_t this_call;
	uint64_t cookie;     /* where the next call continues */
};

static int collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type,
		   uint64_t next_cookie)
{
	struct seen *s = arg;

	if (s->limit && s->this_call == s->limit)
		return 1;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->names = realloc(s->names, s->cap * sizeof(*s->names));
		s->inos = realloc(s->inos, s->cap * sizeof(*s->inos));
		s->types = realloc(s->types, s->cap);
	}
	memcpy(s->names[s->n], name, len);
	s->names[s->n][len] = 0;
	s->inos[s->n] = ino;
	s->types[s->n] = type;
	s->n++;
	s->this_call++;
	s->cookie = next_cookie;
	return 0;
}

static void seen_free(struct seen *s)
{
	free(s->names);
	free(s->inos);
	free(s->types);
}

static void read_all(struct ifix *f, uint64_t dir, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(dir_readdir(&f->it, dir, 0, collect, s), 0);
}

/* Index of `name` in what readdir returned, or -1; fails if it is there more than once. */
static long seen_find(const struct seen *s, const char *name)
{
	long at = -1;

	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->names[i], name) == 0) {
			REQUIRE(at < 0, "%s returned twice", name);
			at = (long)i;
		}
	}
	return at;
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(root_directory)
{
	struct ifix f;
	struct cowfs_attr a;

	ifix_setup(&f, "in-root", IMG, 16384);
	a = ifix_attr(&f, ROOT);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0755);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_uint_eq(a.size, 0);
	/* FUSE's root has generation 0, also when a lookup of ".." reaches it. */
	ck_assert_uint_eq(a.generation, 0);
	ck_assert_int_eq(inode_lookup(&f.it, ROOT, "..", 2, &a), 0);
	ck_assert_uint_eq(a.generation, 0);
	ck_assert_int_eq(lk(&f, ROOT, "."), ROOT);
	ck_assert_int_eq(lk(&f, ROOT, ".."), ROOT);
	ck_assert_int_eq(inode_make_root(f.x.fs, &f.x.fs->fs_root), -EEXIST);
	ck_assert_int_eq(inode_getattr(&f.it, 257, &a), -ENOENT);

	struct seen s;
	read_all(&f, ROOT, &s);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_str_eq(s.names[0], ".");
	ck_assert_str_eq(s.names[1], "..");
	ck_assert_uint_eq(s.inos[1], ROOT);
	seen_free(&s);
	ifix_reopen(&f);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 2);
	ifix_teardown(&f);
}
END_TEST

START_TEST(each_file_type)
{
	static const struct { const char *name; uint32_t mode; uint8_t dt; } types[] = {
		{ "reg", S_IFREG | 0644, DT_REG }, { "fifo", S_IFIFO | 0600, DT_FIFO },
		{ "sock", S_IFSOCK | 0755, DT_SOCK }, { "chr", S_IFCHR | 0620, DT_CHR },
		{ "blk", S_IFBLK | 0660, DT_BLK }, { "dir", S_IFDIR | 0700, DT_DIR },
	};
	struct ifix f;
	struct cowfs_attr a, b;
	uint64_t ino[7];
	struct timespec before;

	ifix_setup(&f, "in-types", IMG, 16384);
	clock_gettime(CLOCK_REALTIME, &before);
	for (int i = 0; i < 6; i++) {
		uint64_t rdev = S_ISCHR(types[i].mode) || S_ISBLK(types[i].mode) ? makedev(8, i) : 0;
		if (S_ISDIR(types[i].mode))
			ck_assert_int_eq(inode_mkdir(&f.it, ROOT, types[i].name, strlen(types[i].name),
						     types[i].mode, 1000, 100, &a), 0);
		else
			ck_assert_int_eq(inode_create(&f.it, ROOT, types[i].name, strlen(types[i].name),
						      types[i].mode, rdev, 1000, 100, &a), 0);
		ino[i] = a.ino;
		ck_assert_uint_eq(a.mode, types[i].mode);
		ck_assert_uint_eq(a.nlink, S_ISDIR(types[i].mode) ? 2 : 1);
		ck_assert_uint_eq(a.uid, 1000);
		ck_assert_uint_eq(a.gid, 100);
		ck_assert_uint_eq(a.rdev, rdev);
		ck_assert_uint_eq(a.size, 0);
		ck_assert_uint_eq(a.generation, f.x.fs->trans.bt.transid);
		ck_assert(a.btime.tv_sec == a.ctime.tv_sec && a.btime.tv_nsec == a.ctime.tv_nsec);
		ck_assert_int_ge(a.btime.tv_sec, before.tv_sec);
	}
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "link", 4, "reg", 3, 1000, 100, &a), 0);
	ino[6] = a.ino;
	ck_assert_uint_eq(a.mode, S_IFLNK | 0777);
	ck_assert_uint_eq(a.size, 3);
	for (int i = 0; i < 7; i++)
		for (int j = 0; j < i; j++)
			ck_assert_uint_ne(ino[i], ino[j]);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 3);

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 6; i++) {
			ck_assert_int_eq(inode_lookup(&f.it, ROOT, types[i].name, strlen(types[i].name),
						      &b), 0);
			ck_assert_uint_eq(b.ino, ino[i]);
			ck_assert_uint_eq(b.mode, types[i].mode);
		}
		ck_assert_int_eq(lk(&f, ROOT, "link"), ino[6]);
		ck_assert_int_eq(lk(&f, ino[5], ".."), ROOT);
		ck_assert_int_eq(lk(&f, ino[5], "."), ino[5]);

		struct seen s;
		read_all(&f, ROOT, &s);
		ck_assert_uint_eq(s.n, 9);
		for (int i = 0; i < 6; i++) {
			long at = seen_find(&s, types[i].name);
			ck_assert_int_ge(at, 0);
			ck_assert_uint_eq(s.inos[at], ino[i]);
			ck_assert_uint_eq(s.types[at], types[i].dt);
		}
		ck_assert_uint_eq(s.types[seen_find(&s, "link")], DT_LNK);
		seen_free(&s);
		fsfix_assert_clean(&f.x, NULL);
		ifix_reopen(&f);
	}
	/* Inode numbers continue after the highest one in the tree after a reopen. */
	ck_assert_uint_eq(ifix_mk(&f, ROOT, "after", S_IFREG | 0644), ino[6] + 1);
	ifix_teardown(&f);
}
END_TEST

START_TEST(error_codes)
{
	struct ifix f;
	struct cowfs_attr a;
	char name[300];
	uint64_t file, dir, sub, lnk;

	ifix_setup(&f, "in-errors", IMG, 16384);
	file = ifix_mk(&f, ROOT, "file", S_IFREG | 0644);
	dir = ifix_mk(&f, ROOT, "dir", S_IFDIR | 0755);
	sub = ifix_mk(&f, dir, "sub", S_IFDIR | 0755);
	ifix_mk(&f, sub, "deep", S_IFREG | 0644);
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "sl", 2, "x", 1, 0, 0, &a), 0);
	lnk = a.ino;
	struct inode_tree *it = &f.it;

	/* create / mkdir / symlink / mknod */
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, "file", 4, S_IFREG | 0644, 0, 0, 0, &a), -EEXIST);
	IFIX_EXPECT_UNCHANGED(&f, inode_mkdir(it, ROOT, "dir", 3, 0755, 0, 0, &a), -EEXIST);
	IFIX_EXPECT_UNCHANGED(&f, inode_symlink(it, ROOT, "sl", 2, "y", 1, 0, 0, &a), -EEXIST);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, file, "x", 1, S_IFREG | 0644, 0, 0, 0, &a), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_mkdir(it, file, "x", 1, 0755, 0, 0, &a), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, 9999, "x", 1, S_IFREG | 0644, 0, 0, 0, &a), -ENOENT);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, "a/b", 3, S_IFREG, 0, 0, 0, &a), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, "a\0b", 3, S_IFREG, 0, 0, 0, &a), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, ".", 1, S_IFREG, 0, 0, 0, &a), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_mkdir(it, ROOT, "..", 2, 0755, 0, 0, &a), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, "", 0, S_IFREG, 0, 0, 0, &a), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, "d", 1, S_IFDIR | 0755, 0, 0, 0, &a), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, "l", 1, S_IFLNK | 0777, 0, 0, 0, &a), -EINVAL);
	memset(name, 'n', sizeof(name));
	IFIX_EXPECT_UNCHANGED(&f, inode_create(it, ROOT, name, 256, S_IFREG, 0, 0, 0, &a), -ENAMETOOLONG);
	IFIX_EXPECT_UNCHANGED(&f, inode_mkdir(it, ROOT, name, 256, 0755, 0, 0, &a), -ENAMETOOLONG);
	IFIX_EXPECT_UNCHANGED(&f, inode_symlink(it, ROOT, name, 256, "x", 1, 0, 0, &a), -ENAMETOOLONG);
	IFIX_EXPECT_UNCHANGED(&f, inode_symlink(it, ROOT, "s2", 2, name, 0, 0, 0, &a), -ENOENT);

	/* lookup */
	ck_assert_int_eq(inode_lookup(it, ROOT, "nope", 4, &a), -ENOENT);
	ck_assert_int_eq(inode_lookup(it, file, "x", 1, &a), -ENOTDIR);
	ck_assert_int_eq(inode_lookup(it, 9999, "x", 1, &a), -ENOENT);
	ck_assert_int_eq(inode_lookup(it, ROOT, name, 256, &a), -ENAMETOOLONG);

	/* link */
	IFIX_EXPECT_UNCHANGED(&f, inode_link(it, dir, ROOT, "d2", 2, &a), -EPERM);
	IFIX_EXPECT_UNCHANGED(&f, inode_link(it, file, ROOT, "dir", 3, &a), -EEXIST);
	IFIX_EXPECT_UNCHANGED(&f, inode_link(it, file, file, "x", 1, &a), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_link(it, 9999, ROOT, "x", 1, &a), -ENOENT);
	IFIX_EXPECT_UNCHANGED(&f, inode_link(it, file, ROOT, name, 256, &a), -ENAMETOOLONG);

	/* unlink / rmdir */
	IFIX_EXPECT_UNCHANGED(&f, inode_unlink(it, ROOT, "nope", 4), -ENOENT);
	IFIX_EXPECT_UNCHANGED(&f, inode_unlink(it, ROOT, "dir", 3), -EISDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_unlink(it, file, "x", 1), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_unlink(it, ROOT, name, 256), -ENAMETOOLONG);
	IFIX_EXPECT_UNCHANGED(&f, inode_rmdir(it, ROOT, "file", 4), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_rmdir(it, ROOT, "sl", 2), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_rmdir(it, ROOT, "dir", 3), -ENOTEMPTY);
	IFIX_EXPECT_UNCHANGED(&f, inode_rmdir(it, dir, "sub", 3), -ENOTEMPTY);
	IFIX_EXPECT_UNCHANGED(&f, inode_rmdir(it, ROOT, "nope", 4), -ENOENT);
	IFIX_EXPECT_UNCHANGED(&f, inode_rmdir(it, dir, ".", 1), -EINVAL);

	/* setattr / readlink */
	a.size = 10;
	IFIX_EXPECT_UNCHANGED(&f, inode_setattr(it, dir, INODE_SET_SIZE, &a), -EISDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_setattr(it, 9999, INODE_SET_UID, &a), -ENOENT);
	size_t tl;
	ck_assert_int_eq(inode_readlink(it, file, name, sizeof(name), &tl), -EINVAL);
	ck_assert_int_eq(inode_readlink(it, 9999, name, sizeof(name), &tl), -ENOENT);
	ck_assert_int_eq(inode_readlink(it, lnk, name, sizeof(name), &tl), 0);

	/* rename */
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "nope", 4, ROOT, "x", 1, 0), -ENOENT);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "file", 4, ROOT, "dir", 3, 0), -EISDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, dir, "sub", 3, ROOT, "file", 4, 0), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "sl", 2, ROOT, "file", 4,
					  INODE_RENAME_NOREPLACE), -EEXIST);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "dir", 3, sub, "x", 1, 0), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "dir", 3, dir, "x", 1, 0), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "file", 4, ROOT, "x", 1,
					  INODE_RENAME_EXCHANGE), -ENOENT);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "file", 4, ROOT, "x", 1,
					  INODE_RENAME_EXCHANGE | INODE_RENAME_NOREPLACE), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "file", 4, ROOT, "x", 1, 0x80), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "file", 4, file, "x", 1, 0), -ENOTDIR);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "file", 4, ROOT, name, 256, 0), -ENAMETOOLONG);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "file", 4, ROOT, "a/b", 3, 0), -EINVAL);
	/* An empty directory over a non-empty one. */
	ifix_mk(&f, ROOT, "empty", S_IFDIR | 0755);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "empty", 5, ROOT, "dir", 3, 0), -ENOTEMPTY);
	/* Exchanging a directory with something inside it. */
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, ROOT, "dir", 3, dir, "sub", 3,
					  INODE_RENAME_EXCHANGE), -EINVAL);
	IFIX_EXPECT_UNCHANGED(&f, inode_rename(it, dir, "sub", 3, ROOT, "dir", 3,
					  INODE_RENAME_EXCHANGE), -EINVAL);

	/* 255 bytes is a valid name everywhere. */
	ck_assert_int_eq(inode_create(it, ROOT, name, 255, S_IFREG | 0644, 0, 0, 0, &a), 0);
	ck_assert_int_eq(inode_lookup(it, ROOT, name, 255, &a), 0);
	ck_assert_int_eq(inode_link(it, a.ino, dir, name, 255, &a), 0);
	ck_assert_int_eq(inode_unlink(it, ROOT, name, 255), 0);
	ck_assert_int_eq(inode_unlink(it, dir, name, 255), 0);
	ifix_teardown(&f);
}
END_TEST

START_TEST(many_files_one_dir)
{
	enum { N = 10000 };
	struct ifix f;
	char name[32];
	uint64_t *ino = malloc(N * sizeof(*ino));
	struct seen s;

	ifix_setup(&f, "in-many", IMG, 16384);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		ino[i] = ifix_mk(&f, ROOT, name, S_IFREG | 0644);
	}
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		REQUIRE(lk(&f, ROOT, name) == (int64_t)ino[i], "lookup %s", name);
	}
	read_all(&f, ROOT, &s);
	ck_assert_uint_eq(s.n, N + 2);
	ck_assert_str_eq(s.names[0], ".");
	ck_assert_str_eq(s.names[1], "..");
	/* Creation order is index order: entry i is file i. */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		REQUIRE(strcmp(s.names[i + 2], name) == 0 && s.inos[i + 2] == ino[i] &&
			s.types[i + 2] == DT_REG, "entry %d is %s", i, s.names[i + 2]);
	}
	seen_free(&s);
	ck_assert_uint_eq(ifix_attr(&f, ROOT).size, 2ull * N * 10);
	ifix_reopen(&f);
	ck_assert_int_eq(lk(&f, ROOT, "file-09999"), ino[N - 1]);
	fsfix_assert_clean(&f.x, NULL);

	/* Delete them all: only the root directory's item is left. */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		REQUIRE(inode_unlink(&f.it, ROOT, name, strlen(name)) == 0, "unlink %s", name);
	}
	uint64_t count, hash;
	ifix_fingerprint(&f, &count, &hash);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(ifix_attr(&f, ROOT).size, 0);
	free(ino);
	ifix_teardown(&f);
}
END_TEST

/*
 * readdir in small batches while entries are deleted and created between the calls: every
 * entry present throughout is returned exactly once, nothing is returned twice.
 */
START_TEST(readdir_cookies_survive_changes)
{
	enum { N = 3000, BATCH = 37 };
	struct ifix f;
	char name[32];
	static bool deleted[N];
	uint64_t rng = test_seed("readdir_cookies", 42);
	struct seen s;
	int created = 0, batches = 0;

	memset(deleted, 0, sizeof(deleted));
	ifix_setup(&f, "in-cookies", IMG, 4096);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ifix_mk(&f, ROOT, name, S_IFREG | 0644);
	}
	memset(&s, 0, sizeof(s));
	s.limit = BATCH;
	for (;;) {
		size_t before = s.n;
		s.this_call = 0;
		ck_assert_int_eq(dir_readdir(&f.it, ROOT, s.cookie, collect, &s), 0);
		if (s.n == before)
			break;
		batches++;
		/* Between calls: delete a few random old entries, make a few new ones. */
		for (int j = 0; j < 5; j++) {
			int v = (int)(rng_next(&rng) % N);
			snprintf(name, sizeof(name), "f%d", v);
			if (!deleted[v]) {
				ck_assert_int_eq(inode_unlink(&f.it, ROOT, name, strlen(name)), 0);
				deleted[v] = true;
			}
		}
		/* (Only for a while: a reader that keeps up would otherwise never finish.) */
		for (int j = 0; j < 3 && batches < N / BATCH / 2; j++) {
			snprintf(name, sizeof(name), "new%d", created++);
			ifix_mk(&f, ROOT, name, S_IFREG | 0644);
		}
	}
	ck_assert_int_gt(batches, N / BATCH / 2);
	ck_assert_int_gt(created, 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		long at = seen_find(&s, name);     /* fails on duplicates */
		if (!deleted[i])
			REQUIRE(at >= 0, "%s never returned", name);
	}
	for (int i = 0; i < created; i++) {
		snprintf(name, sizeof(name), "new%d", i);
		seen_find(&s, name);
	}
	ck_assert_int_eq(seen_find(&s, "."), 0);
	ck_assert_int_eq(seen_find(&s, ".."), 1);
	seen_free(&s);
	ifix_teardown(&f);
}
END_TEST

START_TEST(hard_links)
{
	struct ifix f;
	struct cowfs_attr a;
	uint64_t file, dir;

	ifix_setup(&f, "in-links", IMG, 4096);
	file = ifix_mk(&f, ROOT, "a", S_IFREG | 0644);
	dir = ifix_mk(&f, ROOT, "d", S_IFDIR | 0755);
	ck_assert_int_eq(inode_link(&f.it, file, ROOT, "b", 1, &a), 0);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_int_eq(inode_link(&f.it, file, dir, "c", 1, &a), 0);
	ck_assert_uint_eq(a.nlink, 3);
	ck_assert_int_eq(lk(&f, ROOT, "a"), file);
	ck_assert_int_eq(lk(&f, ROOT, "b"), file);
	ck_assert_int_eq(lk(&f, dir, "c"), file);
	ifix_reopen(&f);
	ck_assert_uint_eq(nlink_of(&f, file), 3);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "a", 1), 0);
	ck_assert_uint_eq(nlink_of(&f, file), 2);
	ck_assert_int_eq(lk(&f, ROOT, "a"), -ENOENT);
	ck_assert_int_eq(lk(&f, ROOT, "b"), file);
	ck_assert_int_eq(inode_unlink(&f.it, dir, "c", 1), 0);
	ck_assert_uint_eq(nlink_of(&f, file), 1);
	fsfix_assert_clean(&f.x, NULL);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "b", 1), 0);
	ck_assert_int_eq(inode_getattr(&f.it, file, &a), -ENOENT);

	/* Links to one inode in one directory share an INODE_REF item: when it is full, -EMLINK. */
	char name[201];
	int n = 0, ret;
	memset(name, 'x', 200);
	name[200] = 0;
	file = ifix_mk(&f, dir, "target", S_IFREG | 0644);
	for (;;) {
		snprintf(name, sizeof(name), "%04d", n);
		name[4] = 'x';
		ret = inode_link(&f.it, file, dir, name, 200, &a);
		if (ret < 0)
			break;
		n++;
	}
	ck_assert_int_eq(ret, -EMLINK);
	ck_assert_int_gt(n, 10);
	ck_assert_uint_eq(nlink_of(&f, file), n + 1);
	/* Another directory still takes links. */
	ck_assert_int_eq(inode_link(&f.it, file, ROOT, name, 200, &a), 0);

	/* The link count itself stops at INODE_LINK_MAX (set it there by hand). */
	struct inode_item raw;
	struct bt_key k = { file, INODE_ITEM_KEY, 0 };
	uint32_t rlen;
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &k, &raw, sizeof(raw), &rlen), 0);
	uint32_t real = get_le32(&raw.nlink);
	put_le32(&raw.nlink, INODE_LINK_MAX);
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_update(&tx->bt, &f.x.fs->fs_root.t, &k, &raw, sizeof(raw)), 0);
	cowfs_trans_end(tx, 0);
	IFIX_EXPECT_UNCHANGED(&f, inode_link(&f.it, file, ROOT, "one-more", 8, &a), -EMLINK);
	put_le32(&raw.nlink, real);
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_update(&tx->bt, &f.x.fs->fs_root.t, &k, &raw, sizeof(raw)), 0);
	cowfs_trans_end(tx, 0);
	fsfix_assert_clean(&f.x, NULL);
	ifix_teardown(&f);
}
END_TEST

START_TEST(mkdir_rmdir_nlink)
{
	struct ifix f;
	uint64_t a, b;

	ifix_setup(&f, "in-dirs", IMG, 16384);
	a = ifix_mk(&f, ROOT, "a", S_IFDIR | 0755);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 3);
	b = ifix_mk(&f, a, "b", S_IFDIR | 0755);
	ifix_mk(&f, a, "c", S_IFDIR | 0755);
	ifix_mk(&f, a, "f", S_IFREG | 0644);
	ck_assert_uint_eq(nlink_of(&f, a), 4);
	ck_assert_uint_eq(nlink_of(&f, b), 2);
	ck_assert_int_eq(lk(&f, b, ".."), a);
	ck_assert_int_eq(inode_rmdir(&f.it, ROOT, "a", 1), -ENOTEMPTY);
	ck_assert_int_eq(inode_rmdir(&f.it, a, "b", 1), 0);
	ck_assert_uint_eq(nlink_of(&f, a), 3);
	ck_assert_int_eq(lk(&f, a, "b"), -ENOENT);
	ck_assert_int_eq(inode_rmdir(&f.it, a, "c", 1), 0);
	ck_assert_int_eq(inode_unlink(&f.it, a, "f", 1), 0);
	ck_assert_uint_eq(nlink_of(&f, a), 2);
	ck_assert_int_eq(inode_rmdir(&f.it, ROOT, "a", 1), 0);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 2);
	uint64_t count, hash;
	ifix_fingerprint(&f, &count, &hash);
	ck_assert_uint_eq(count, 1);
	ifix_teardown(&f);
}
END_TEST

START_TEST(rename_cases)
{
	struct ifix f;
	struct cowfs_attr at;
	uint64_t d1, d2, x, y, e1, e2, sub;

	ifix_setup(&f, "in-rename", IMG, 16384);
	d1 = ifix_mk(&f, ROOT, "d1", S_IFDIR | 0755);
	d2 = ifix_mk(&f, ROOT, "d2", S_IFDIR | 0755);
	x = ifix_mk(&f, d1, "x", S_IFREG | 0644);
	y = ifix_mk(&f, d2, "y", S_IFREG | 0644);

	/* Same directory, new name. */
	ck_assert_int_eq(inode_rename(&f.it, d1, "x", 1, d1, "x2", 2, 0), 0);
	ck_assert_int_eq(lk(&f, d1, "x"), -ENOENT);
	ck_assert_int_eq(lk(&f, d1, "x2"), x);
	/* To itself: nothing happens. */
	ck_assert_int_eq(inode_rename(&f.it, d1, "x2", 2, d1, "x2", 2, 0), 0);
	ck_assert_int_eq(lk(&f, d1, "x2"), x);
	/* Across directories, replacing a file: the replaced inode is gone. */
	ck_assert_int_eq(inode_rename(&f.it, d1, "x2", 2, d2, "y", 1, 0), 0);
	ck_assert_int_eq(lk(&f, d2, "y"), x);
	ck_assert_int_eq(lk(&f, d1, "x2"), -ENOENT);
	ck_assert_int_eq(inode_getattr(&f.it, y, &at), -ENOENT);
	ck_assert_uint_eq(nlink_of(&f, x), 1);
	/* Two names of one inode: rename does nothing. */
	ck_assert_int_eq(inode_link(&f.it, x, d1, "x3", 2, &at), 0);
	ck_assert_int_eq(inode_rename(&f.it, d1, "x3", 2, d2, "y", 1, 0), 0);
	ck_assert_int_eq(lk(&f, d1, "x3"), x);
	ck_assert_uint_eq(nlink_of(&f, x), 2);
	ck_assert_int_eq(inode_unlink(&f.it, d1, "x3", 2), 0);

	/* A directory moves: parent link counts and ".." follow. */
	sub = ifix_mk(&f, d1, "sub", S_IFDIR | 0755);
	ifix_mk(&f, sub, "inner", S_IFREG | 0644);
	ck_assert_uint_eq(nlink_of(&f, d1), 3);
	ck_assert_int_eq(inode_rename(&f.it, d1, "sub", 3, d2, "sub", 3, 0), 0);
	ck_assert_uint_eq(nlink_of(&f, d1), 2);
	ck_assert_uint_eq(nlink_of(&f, d2), 3);
	ck_assert_int_eq(lk(&f, sub, ".."), d2);
	ck_assert_int_gt(lk(&f, sub, "inner"), 0);
	/* Into its own subtree: refused. */
	ck_assert_int_eq(inode_rename(&f.it, ROOT, "d2", 2, sub, "d2", 2, 0), -EINVAL);
	/* An empty directory replaced by a directory. */
	e1 = ifix_mk(&f, d1, "e1", S_IFDIR | 0755);
	e2 = ifix_mk(&f, ROOT, "e2", S_IFDIR | 0755);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 5);
	ck_assert_int_eq(inode_rename(&f.it, d2, "sub", 3, ROOT, "e2", 2, 0), 0);
	ck_assert_int_eq(inode_getattr(&f.it, e2, &at), -ENOENT);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 5);     /* lost e2, gained sub */
	ck_assert_uint_eq(nlink_of(&f, d2), 2);
	ck_assert_int_eq(lk(&f, ROOT, "e2"), sub);
	ck_assert_int_eq(lk(&f, sub, ".."), ROOT);

	/* NOREPLACE to a free name works. */
	ck_assert_int_eq(inode_rename(&f.it, d1, "e1", 2, d2, "e1", 2, INODE_RENAME_NOREPLACE), 0);
	ck_assert_int_eq(lk(&f, d2, "e1"), e1);
	ck_assert_uint_eq(nlink_of(&f, d1), 2);
	ck_assert_uint_eq(nlink_of(&f, d2), 3);

	/* EXCHANGE a directory (d2/e1) and a file (d2/y is x) across directories. */
	ck_assert_int_eq(inode_rename(&f.it, d2, "y", 1, ROOT, "e2", 2, INODE_RENAME_EXCHANGE), 0);
	ck_assert_int_eq(lk(&f, ROOT, "e2"), x);
	ck_assert_int_eq(lk(&f, d2, "y"), sub);
	ck_assert_int_eq(lk(&f, sub, ".."), d2);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 4);
	ck_assert_uint_eq(nlink_of(&f, d2), 4);
	/* EXCHANGE within one directory. */
	ck_assert_int_eq(inode_rename(&f.it, d2, "y", 1, d2, "e1", 2, INODE_RENAME_EXCHANGE), 0);
	ck_assert_int_eq(lk(&f, d2, "y"), e1);
	ck_assert_int_eq(lk(&f, d2, "e1"), sub);
	ck_assert_uint_eq(nlink_of(&f, d2), 4);

	fsfix_assert_clean(&f.x, NULL);
	ifix_reopen(&f);
	ck_assert_int_eq(lk(&f, d2, "e1"), sub);
	ck_assert_int_eq(lk(&f, sub, ".."), d2);
	struct seen s;
	read_all(&f, d2, &s);
	ck_assert_uint_eq(s.n, 4);
	ck_assert_int_ge(seen_find(&s, "y"), 0);
	ck_assert_int_ge(seen_find(&s, "e1"), 0);
	seen_free(&s);
	ifix_teardown(&f);
}
END_TEST

START_TEST(symlinks)
{
	struct ifix f;
	struct cowfs_attr a;
	char target[4096], buf[4096];
	size_t len;

	ifix_setup(&f, "in-symlink", IMG, 16384);
	for (size_t i = 0; i < sizeof(target); i++)
		target[i] = (char)('a' + i % 26);
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "s1", 2, "/etc/passwd", 11, 5, 6, &a), 0);
	ck_assert_uint_eq(a.size, 11);
	ck_assert_uint_eq(a.uid, 5);
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "long", 4, target, 4095, 0, 0, &a), 0);
	ck_assert_int_eq(inode_symlink(&f.it, ROOT, "too", 3, target, 4096, 0, 0, &a),
			 -ENAMETOOLONG);
	ifix_reopen(&f);
	ck_assert_int_eq(inode_lookup(&f.it, ROOT, "s1", 2, &a), 0);
	ck_assert_int_eq(inode_readlink(&f.it, a.ino, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(len, 11);
	ck_assert(memcmp(buf, "/etc/passwd", 11) == 0);
	/* A short buffer gets the start, and the full length. */
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(inode_readlink(&f.it, a.ino, buf, 4, &len), 0);
	ck_assert_uint_eq(len, 11);
	ck_assert_str_eq(buf, "/etc");
	ck_assert_int_eq(inode_lookup(&f.it, ROOT, "long", 4, &a), 0);
	ck_assert_int_eq(inode_readlink(&f.it, a.ino, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(len, 4095);
	ck_assert(memcmp(buf, target, 4095) == 0);
	fsfix_assert_clean(&f.x, NULL);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "s1", 2), 0);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "long", 4), 0);
	uint64_t count, hash;
	ifix_fingerprint(&f, &count, &hash);
	ck_assert_uint_eq(count, 1);
	ifix_teardown(&f);
}
END_TEST

START_TEST(setattr_fields)
{
	struct ifix f;
	struct cowfs_attr a, b;
	uint64_t file;

	ifix_setup(&f, "in-setattr", IMG, 16384);
	file = ifix_mk(&f, ROOT, "f", S_IFREG | 0644);
	a = ifix_attr(&f, file);
	b = a;
	b.mode = 04711 | S_IFDIR;     /* the type bits are ignored */
	b.uid = 77;
	b.gid = 88;
	b.atime = (struct timespec){ 1000000000, 123456789 };
	b.mtime = (struct timespec){ 1500000000, 987654321 };
	ck_assert_int_eq(inode_setattr(&f.it, file, INODE_SET_MODE | INODE_SET_UID | INODE_SET_GID |
				       INODE_SET_ATIME | INODE_SET_MTIME, &b), 0);
	ifix_reopen(&f);
	b = ifix_attr(&f, file);
	ck_assert_uint_eq(b.mode, S_IFREG | 04711);
	ck_assert_uint_eq(b.uid, 77);
	ck_assert_uint_eq(b.gid, 88);
	ck_assert_int_eq(b.atime.tv_sec, 1000000000);
	ck_assert_int_eq(b.atime.tv_nsec, 123456789);
	ck_assert_int_eq(b.mtime.tv_sec, 1500000000);
	ck_assert_int_eq(b.mtime.tv_nsec, 987654321);
	ck_assert(b.ctime.tv_sec > a.ctime.tv_sec ||
		  (b.ctime.tv_sec == a.ctime.tv_sec && b.ctime.tv_nsec >= a.ctime.tv_nsec));
	ck_assert(b.btime.tv_sec == a.btime.tv_sec && b.btime.tv_nsec == a.btime.tv_nsec);
	/* Only what the mask names changes. */
	b.uid = 1;
	ck_assert_int_eq(inode_setattr(&f.it, file, INODE_SET_GID, &b), 0);
	ck_assert_uint_eq(ifix_attr(&f, file).uid, 77);
	/* Directory entry changes move the directory's mtime and ctime. */
	a = ifix_attr(&f, ROOT);
	ifix_mk(&f, ROOT, "g", S_IFREG | 0644);
	b = ifix_attr(&f, ROOT);
	ck_assert(b.mtime.tv_sec > a.mtime.tv_sec ||
		  (b.mtime.tv_sec == a.mtime.tv_sec && b.mtime.tv_nsec > a.mtime.tv_nsec));
	ifix_teardown(&f);
}
END_TEST

/* An unlinked file's data extents lose their reference with the file extent items. */
START_TEST(unlink_drops_data_extents)
{
	struct ifix f;
	uint64_t file, start, len;
	struct file_extent_item fe = { 0 };
	struct extent_info e;

	ifix_setup(&f, "in-data", IMG, 16384);
	file = ifix_mk(&f, ROOT, "data", S_IFREG | 0644);
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&f.x.fs->ext, &tx->bt, 65536, 65536, 0, &start, &len),
			 0);
	fe.type = FILE_EXTENT_PREALLOC;
	put_le64(&fe.disk_bytenr, start);
	put_le64(&fe.disk_num_bytes, len);
	put_le64(&fe.num_bytes, len);
	put_le64(&fe.ram_bytes, len);
	for (uint64_t off = 0; off < 4; off++) {
		struct bt_key k = { file, EXTENT_DATA_KEY, off * len };
		ck_assert_int_eq(bt_insert(&tx->bt, &f.x.fs->fs_root.t, &k, &fe, sizeof(fe)), 0);
	}
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(extent_lookup(&f.x.fs->ext, start, len, &e), 0);
	ck_assert_uint_eq(e.refs, 4);
	fsfix_assert_clean(&f.x, NULL);
	ck_assert_int_eq(inode_unlink(&f.it, ROOT, "data", 4), 0);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(extent_lookup(&f.x.fs->ext, start, len, &e), -ENOENT);
	uint64_t count, hash;
	ifix_fingerprint(&f, &count, &hash);
	ck_assert_uint_eq(count, 1);
	ifix_teardown(&f);
}
END_TEST

/* Everything made and removed again: only the root directory's item is left, and clean. */
START_TEST(mixed_then_empty)
{
	struct ifix f;
	struct cowfs_attr a;
	char name[32];
	uint64_t dirs[8];

	ifix_setup(&f, "in-mixed", IMG, 4096);
	dirs[0] = ROOT;
	for (int i = 1; i < 8; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		dirs[i] = ifix_mk(&f, dirs[(i - 1) / 2], name, S_IFDIR | 0755);
	}
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		uint64_t d = dirs[i % 8];
		if (i % 5 == 4)
			ck_assert_int_eq(inode_symlink(&f.it, d, name, strlen(name), name, strlen(name),
						       0, 0, &a), 0);
		else
			ifix_mk(&f, d, name, (i % 5 == 3 ? S_IFIFO : S_IFREG) | 0644);
		if (i % 7 == 0) {
			ck_assert_int_eq(inode_lookup(&f.it, d, name, strlen(name), &a), 0);
			char l[40];
			snprintf(l, sizeof(l), "L%d", i);
			ck_assert_int_eq(inode_link(&f.it, a.ino, dirs[(i + 3) % 8], l, strlen(l), &a),
					 0);
		}
		if (i % 11 == 0) {
			char r[40];
			snprintf(r, sizeof(r), "r%d", i);
			ck_assert_int_eq(inode_rename(&f.it, d, name, strlen(name), dirs[(i + 1) % 8],
						      r, strlen(r), 0), 0);
		}
	}
	ifix_reopen(&f);
	fsfix_assert_clean(&f.x, NULL);

	/* Remove everything, deepest directories first. */
	for (int i = 7; i >= 0; i--) {
		struct seen s;
		read_all(&f, dirs[i], &s);
		for (size_t j = 2; j < s.n; j++) {
			if (s.types[j] == DT_DIR)
				continue;
			REQUIRE(inode_unlink(&f.it, dirs[i], s.names[j], strlen(s.names[j])) == 0,
				"unlink %s", s.names[j]);
		}
		seen_free(&s);
		if (i > 0) {
			snprintf(name, sizeof(name), "d%d", i);
			ck_assert_int_eq(inode_rmdir(&f.it, dirs[(i - 1) / 2], name, strlen(name)), 0);
		}
	}
	uint64_t count, hash;
	ifix_fingerprint(&f, &count, &hash);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(nlink_of(&f, ROOT), 2);
	ifix_reopen(&f);
	ifix_teardown(&f);
}
END_TEST

/* Malformed items are -EUCLEAN, reported with the inode, never a crash. */
START_TEST(malformed_items)
{
	struct ifix f;
	struct cowfs_attr a;
	struct inode_item raw;
	uint64_t file;
	uint32_t len;

	ifix_setup(&f, "in-corrupt", IMG, 16384);
	file = ifix_mk(&f, ROOT, "victim", S_IFREG | 0644);
	struct bt_key ik = { file, INODE_ITEM_KEY, 0 };
	ck_assert_int_eq(bt_lookup(&f.x.fs->fs_root.t, &ik, &raw, sizeof(raw), &len), 0);
	raw.version = 9;
	struct cowfs_trans *tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_update(&tx->bt, &f.x.fs->fs_root.t, &ik, &raw, sizeof(raw)), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(inode_getattr(&f.it, file, &a), -EUCLEAN);
	ck_assert_int_eq(inode_lookup(&f.it, ROOT, "victim", 6, &a), -EUCLEAN);
	ck_assert_int_gt(f.x.reports, 0);
	ck_assert_ptr_nonnull(strstr(f.x.last_report, "inode"));

	/* A directory entry cut short. */
	struct bt_key dk = { ROOT, DIR_ITEM_KEY, cowfs_csum("victim", 6) };
	tx = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_resize(&tx->bt, &f.x.fs->fs_root.t, &dk, 20), 0);
	cowfs_trans_end(tx, 0);
	f.x.reports = 0;
	ck_assert_int_eq(inode_lookup(&f.it, ROOT, "victim", 6, &a), -EUCLEAN);
	ck_assert_int_eq(f.x.reports, 1);
	fsfix_teardown(&f.x);
}
END_TEST

/* mkfs.cowfs makes the root directory. */
START_TEST(mkfs_makes_root)
{
	const char *bin = getenv("COWFS_BIN");
	char img[600], cmd[1400];
	struct cowfs *fs;
	struct cowfs_opts o = { .commit_interval_ms = -1 };
	struct inode_tree it;
	struct cowfs_attr a;

	if (!bin)
		return;
	snprintf(img, sizeof(img), "%s/in-mkfs-%d.img", test_dir(), (int)getpid());
	snprintf(cmd, sizeof(cmd), "%s/mkfs.cowfs -q -s 32M '%s'", bin, img);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(cowfs_open(img, &o, &fs), 0);
	inode_tree_init(&it, fs, &fs->fs_root);
	ck_assert_int_eq(inode_getattr(&it, ROOT, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0755);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_int_eq(cowfs_close(fs), 0);
	unlink(img);
}
END_TEST

/* The kernel's atime rule (atime_needs_update / relatime_need_update), case by case. */
START_TEST(atime_rule)
{
	const struct timespec now = { 2000000, 5 }, past = { 1000, 0 };
	const struct timespec recent = { now.tv_sec - 3600, 0 }, old = { now.tv_sec - 86400, 0 };
	const uint32_t reg = S_IFREG | 0644, dir = S_IFDIR | 0755;

	/* relatime: not after mtime or ctime; else only once 24 hours old. */
	ck_assert(inode_atime_needs_update(INODE_ATIME_RELATIME, false, reg, &past, &past, &past, &now));
	ck_assert(inode_atime_needs_update(INODE_ATIME_RELATIME, false, reg, &recent, &recent, &past, &now));
	ck_assert(inode_atime_needs_update(INODE_ATIME_RELATIME, false, reg, &recent, &past, &recent, &now));
	ck_assert(!inode_atime_needs_update(INODE_ATIME_RELATIME, false, reg, &recent, &past, &past, &now));
	ck_assert(inode_atime_needs_update(INODE_ATIME_RELATIME, false, reg, &old, &past, &past, &now));
	/* strictatime: whenever it changes. */
	ck_assert(inode_atime_needs_update(INODE_ATIME_STRICT, false, reg, &recent, &past, &past, &now));
	ck_assert(!inode_atime_needs_update(INODE_ATIME_STRICT, false, reg, &now, &past, &past, &now));
	/* noatime, nodiratime. */
	ck_assert(!inode_atime_needs_update(INODE_ATIME_NOATIME, false, reg, &past, &past, &past, &now));
	ck_assert(!inode_atime_needs_update(INODE_ATIME_STRICT, true, dir, &past, &past, &past, &now));
	ck_assert(inode_atime_needs_update(INODE_ATIME_STRICT, true, reg, &past, &past, &past, &now));
	ck_assert(inode_atime_needs_update(INODE_ATIME_RELATIME, false, dir, &past, &past, &past, &now));
}
END_TEST

/* ---- setuid/setgid on change (the kernel's rule) ------------------------------------------ */

#define FILE_GID 4242
#define OWN_GID  4243

/* Supplementary groups of the test callers: FILE_GID for those "in" the group. */
static bool in_file_group(void *arg, gid_t gid)
{
	(void)arg;
	return gid == FILE_GID;
}

static const struct inode_changer in_group = { 1000, OWN_GID, false, in_file_group, NULL };
static const struct inode_changer outside = { 1000, OWN_GID, false, NULL, NULL };
static const struct inode_changer primary = { 1000, FILE_GID, false, NULL, NULL };
static const struct inode_changer fsetid = { 0, 0, true, NULL, NULL };

/* setattr_should_drop_suidgid, chown_common and posix_acl_update_mode, case by case. */
START_TEST(privs_rule)
{
	enum { DATA = INODE_CHANGE_DATA, OWNER = INODE_CHANGE_OWNER, ACL = INODE_CHANGE_ACL,
	       MODE = INODE_CHANGE_MODE };
	const uint32_t both = S_ISUID | S_ISGID;
	static const struct {
		uint32_t mode;
		int change;
		const struct inode_changer *c;
		uint32_t dropped;
	} cases[] = {
		/* Data: setuid always; setgid if group-executable, or if the caller is outside
		 * the group (primary or supplementary). */
		{ S_IFREG | 06755, DATA, &in_group, S_ISUID | S_ISGID },
		{ S_IFREG | 06745, DATA, &in_group, S_ISUID },
		{ S_IFREG | 06745, DATA, &primary, S_ISUID },
		{ S_IFREG | 06745, DATA, &outside, S_ISUID | S_ISGID },
		{ S_IFREG | 02745, DATA, &in_group, 0 },
		{ S_IFREG | 02745, DATA, &outside, S_ISGID },
		{ S_IFREG | 04755, DATA, &in_group, S_ISUID },
		{ S_IFREG | 00755, DATA, &outside, 0 },
		/* ... never for CAP_FSETID, nor for anything but a regular file. */
		{ S_IFREG | 06755, DATA, &fsetid, 0 },
		{ S_IFDIR | 06755, DATA, &outside, 0 },
		/* Owner: the same, but setuid even for CAP_FSETID; directories keep both. */
		{ S_IFREG | 06745, OWNER, &in_group, S_ISUID },
		{ S_IFREG | 06745, OWNER, &outside, S_ISUID | S_ISGID },
		{ S_IFREG | 06755, OWNER, &fsetid, S_ISUID | S_ISGID },
		{ S_IFREG | 06745, OWNER, &fsetid, S_ISUID },
		{ S_IFLNK | 06745, OWNER, &outside, S_ISUID | S_ISGID },
		{ S_IFDIR | 06755, OWNER, &outside, 0 },
		/* ACL: setgid, for a caller outside the group without CAP_FSETID, whatever the
		 * type or the group-execute bit. */
		{ S_IFREG | 06755, ACL, &outside, S_ISGID },
		{ S_IFDIR | 02745, ACL, &outside, S_ISGID },
		{ S_IFREG | 06755, ACL, &in_group, 0 },
		{ S_IFREG | 06755, ACL, &fsetid, 0 },
		{ S_IFREG | 04755, ACL, &outside, 0 },
		/* chmod: the same as an ACL (setattr_prepare). */
		{ S_IFREG | 02745, MODE, &outside, S_ISGID },
		{ S_IFREG | 06755, MODE, &in_group, 0 },
		{ S_IFREG | 06755, MODE, &fsetid, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t got = inode_privs_dropped(cases[i].mode, FILE_GID, cases[i].change,
						   cases[i].c);
		ck_assert_msg(got == cases[i].dropped, "case %zu: mode %o: dropped %o, not %o", i,
			      cases[i].mode, got, cases[i].dropped);
		ck_assert_uint_eq(got & ~both, 0);
	}
}
END_TEST

/* A file of FILE_GID with `mode`. */
static uint64_t priv_file(struct ifix *f, const char *name, uint32_t mode)
{
	uint64_t ino = ifix_mk(f, ROOT, name, S_IFREG | 0644);
	struct cowfs_attr a = { .mode = mode, .gid = FILE_GID };

	ck_assert_int_eq(inode_setattr(&f->it, ino, INODE_SET_MODE | INODE_SET_GID, &a), 0);
	return ino;
}

static uint32_t perm_of(struct ifix *f, uint64_t ino)
{
	return ifix_attr(f, ino).mode & 07777;
}

/* The operations apply the rule: inode_drop_privs (write, fallocate), a truncate or chown
 * through inode_setattr_as (also on top of a mode the FUSE kernel sends with them), and an
 * access ACL through inode_setxattr_as. The bits stay dropped across a remount. */
START_TEST(privs_dropped_by_changes)
{
	static const uint8_t acl_value[] = {
		2, 0, 0, 0,                              /* version 2 */
		1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,      /* USER_OBJ rwx */
		2, 0, 4, 0, 0xd2, 0x04, 0, 0,            /* USER 1234 r */
		4, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,      /* GROUP_OBJ r-x */
		0x10, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,   /* MASK r-x */
		0x20, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,   /* OTHER r-x */
	};
	struct cowfs_attr a = { 0 };
	struct ifix f;
	uint64_t w, t, c, k, acl, acl_in, plain;

	ifix_setup(&f, "in-privs", IMG, 16384);
	w = priv_file(&f, "write", 06745);
	t = priv_file(&f, "trunc", 06745);
	c = priv_file(&f, "chown", 02745);
	k = priv_file(&f, "kernel-mode", 06745);
	acl = priv_file(&f, "acl", 02745);
	acl_in = priv_file(&f, "acl-in", 02745);
	plain = priv_file(&f, "plain", 02745);

	ck_assert_int_eq(inode_drop_privs(&f.it, w, INODE_CHANGE_DATA, &in_group), 1);
	ck_assert_uint_eq(perm_of(&f, w), 02745);
	ck_assert_int_eq(inode_drop_privs(&f.it, w, INODE_CHANGE_DATA, &in_group), 0);
	ck_assert_int_eq(inode_drop_privs(&f.it, plain, INODE_CHANGE_DATA, &fsetid), 0);
	ck_assert_uint_eq(perm_of(&f, plain), 02745);

	a.size = 100;
	ck_assert_int_eq(inode_setattr_as(&f.it, t, INODE_SET_SIZE, &a, &outside), 0);
	ck_assert_uint_eq(perm_of(&f, t), 0745);
	a.gid = OWN_GID;
	ck_assert_int_eq(inode_setattr_as(&f.it, c, INODE_SET_GID, &a, &outside), 0);
	ck_assert_uint_eq(perm_of(&f, c), 0745);
	ck_assert_uint_eq(ifix_attr(&f, c).gid, OWN_GID);
	/* The FUSE kernel's own guess (setuid only) comes as a mode with the size. */
	a.mode = 02745;
	ck_assert_int_eq(inode_setattr_as(&f.it, k, INODE_SET_SIZE | INODE_SET_MODE, &a, &outside),
			 0);
	ck_assert_uint_eq(perm_of(&f, k), 0745);
	/* A chmod to setgid by a caller outside the group (the kernel checks that only with
	 * default_permissions), or into a group it is not in, leaves setgid out. */
	a.mode = 02755;
	ck_assert_int_eq(inode_setattr_as(&f.it, t, INODE_SET_MODE, &a, &outside), 0);
	ck_assert_uint_eq(perm_of(&f, t), 0755);
	ck_assert_int_eq(inode_setattr_as(&f.it, t, INODE_SET_MODE, &a, &in_group), 0);
	ck_assert_uint_eq(perm_of(&f, t), 02755);
	a.gid = OWN_GID + 1;
	ck_assert_int_eq(inode_setattr_as(&f.it, t, INODE_SET_MODE | INODE_SET_GID, &a, &in_group),
			 0);
	ck_assert_uint_eq(perm_of(&f, t), 0755);
	a.gid = FILE_GID;
	ck_assert_int_eq(inode_setattr(&f.it, t, INODE_SET_MODE | INODE_SET_GID, &a), 0);
	/* Without a caller, inode_setattr drops nothing. */
	ck_assert_int_eq(inode_setattr(&f.it, plain, INODE_SET_SIZE, &a), 0);
	ck_assert_uint_eq(perm_of(&f, plain), 02745);

	ck_assert_int_eq(inode_setxattr_as(&f.it, acl, XATTR_ACL_ACCESS, acl_value,
					   sizeof(acl_value), 0, &outside), 0);
	ck_assert_uint_eq(perm_of(&f, acl), 0755);
	ck_assert_int_eq(inode_setxattr_as(&f.it, acl_in, XATTR_ACL_ACCESS, acl_value,
					   sizeof(acl_value), 0, &in_group), 0);
	ck_assert_uint_eq(perm_of(&f, acl_in), 02755);

	ifix_reopen(&f);
	ck_assert_uint_eq(perm_of(&f, w), 02745);
	ck_assert_uint_eq(perm_of(&f, t), 02755);
	ck_assert_uint_eq(perm_of(&f, acl), 0755);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inode");
	TCase *tc = tcase_create("inode");

	tcase_add_test(tc, root_directory);
	tcase_add_test(tc, each_file_type);
	tcase_add_test(tc, error_codes);
	tcase_add_test(tc, many_files_one_dir);
	tcase_add_test(tc, readdir_cookies_survive_changes);
	tcase_add_test(tc, hard_links);
	tcase_add_test(tc, mkdir_rmdir_nlink);
	tcase_add_test(tc, rename_cases);
	tcase_add_test(tc, symlinks);
	tcase_add_test(tc, setattr_fields);
	tcase_add_test(tc, unlink_drops_data_extents);
	tcase_add_test(tc, mixed_then_empty);
	tcase_add_test(tc, malformed_items);
	tcase_add_test(tc, mkfs_makes_root);
	tcase_add_test(tc, atime_rule);
	tcase_add_test(tc, privs_rule);
	tcase_add_test(tc, privs_dropped_by_changes);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
