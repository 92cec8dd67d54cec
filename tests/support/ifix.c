/* Test fixture for the inode layer: see ifix.h. */
#include "tests/support/ifix.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>

#include "fs/inode/namespace_check.h"
#include "fs/inode/file.h"
#include "tests/support/fixture.h"
#include "fs/inode/icache.h"
#include "fs/inode/fmap.h"

void ifix_setup(struct ifix *f, const char *name, uint64_t size, uint32_t nodesize)
{
	fsfix_setup(&f->x, name, size, nodesize);
	f->seen[0] = '\0';
	ck_assert_int_eq(inode_make_root(f->x.fs, &f->x.fs->fs_root), 0);
	inode_tree_init(&f->it, f->x.fs, &f->x.fs->fs_root);
}

void ifix_reopen(struct ifix *f)
{
	ck_assert_int_eq(inode_tree_destroy(&f->it), 0);
	fsfix_reopen(&f->x);
	inode_tree_init(&f->it, f->x.fs, &f->x.fs->fs_root);
}

void ifix_crash_reopen(struct ifix *f)
{
	struct cowfs_trans *tx;

	/* From here on nothing is committed (a timed commit could otherwise be writing back
	 * the memory this frees); one already in flight may still land, as before a crash. */
	tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);   /* waits for a flush in flight */
	f->x.fs->read_only = true;
	cowfs_hooks_remove(f->x.fs, &f->it.hooks);
	cowfs_trans_end(tx, 0);
	if (f->it.icache)
		icache_destroy(f->it.icache);
	f->it.icache = NULL;
	fsfix_crash_reopen(&f->x);
	inode_tree_init(&f->it, f->x.fs, &f->x.fs->fs_root);
}

void ifix_check(struct ifix *f)
{
	struct inode_check_stats ns;

	fsfix_assert_clean(&f->x, NULL);
	/* The namespace checker as an oracle too (fsfix cannot: other tests fill fs trees with
	 * items that are no namespace). */
	ck_assert_msg(inode_check_all(f->x.fs, &ns) == 0, "namespace check: %" PRIu64
		      " problems; last: %s", ns.problems, f->x.last_report);
}

void ifix_teardown(struct ifix *f)
{
	ck_assert_int_eq(inode_tree_destroy(&f->it), 0);
	ifix_check(f);
	fsfix_teardown(&f->x);
}

static void collect_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct ifix *f = arg;
	size_t n = strlen(f->seen);

	(void)bytenr;
	f->x.reports++;
	snprintf(f->x.last_report, sizeof(f->x.last_report), "%s", msg);
	if (n + strlen(msg) + 2 < sizeof(f->seen))
		snprintf(f->seen + n, sizeof(f->seen) - n, "%s\n", msg);
	if (getenv("COWFS_TEST_VERBOSE"))
		fprintf(stderr, "report: %s\n", msg);
}

void ifix_collect_reports(struct ifix *f)
{
	f->x.fs->report = collect_report;
	f->x.fs->report_arg = f;
	f->seen[0] = '\0';
}

uint64_t ifix_mk(struct ifix *f, uint64_t dir, const char *name, uint32_t mode)
{
	struct cowfs_attr a;
	int ret;

	if (S_ISDIR(mode))
		ret = inode_mkdir(&f->it, dir, name, strlen(name), mode, 1000, 100, &a);
	else
		ret = inode_create(&f->it, dir, name, strlen(name), mode, 0, 1000, 100, &a);
	ck_assert_msg(ret == 0, "create %s: %d", name, ret);
	return a.ino;
}

struct cowfs_attr ifix_attr(struct ifix *f, uint64_t ino)
{
	struct cowfs_attr a;

	ck_assert_int_eq(inode_getattr(&f->it, ino, &a), 0);
	return a;
}

struct fmap_seg ifix_seg_at(struct ifix *f, uint64_t ino, uint64_t off)
{
	struct fmap_seg seg;

	cowfs_lock(f->x.fs);
	ck_assert_int_eq(fmap_lookup(&f->it, ino, off, UINT64_MAX, &seg), 0);
	cowfs_unlock(f->x.fs);
	return seg;
}

void ifix_fingerprint(struct ifix *f, uint64_t *count, uint64_t *hash)
{
	struct bt_cursor c;
	int ret;

	*count = 0;
	*hash = 0;
	bt_cursor_init(&c, &f->x.fs->fs_root.t);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		struct bt_key k;
		const void *d;
		uint32_t len;

		bt_cursor_item(&c, &k, &d, &len);
		(*count)++;
		*hash = *hash * 1000003 ^ k.objectid ^ ((uint64_t)k.type << 56) ^ k.offset * 31;
		for (uint32_t i = 0; i < len; i++)
			*hash = *hash * 131 + ((const uint8_t *)d)[i];
	}
	bt_cursor_release(&c);
	ck_assert_int_eq(ret, -ENOENT);
}

void ifix_write_pattern(struct ifix *f, uint64_t ino, size_t len, uint64_t off, uint64_t seed)
{
	uint8_t *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	rng_fill(buf, len, seed);
	ck_assert_int_eq(file_write(&f->it, ino, buf, len, off, 0), (ssize_t)len);
	free(buf);
}
