/*
 * The filesystem check (fsck.h): which trees there are (the root tree and its root items),
 * where extents may lie, and the superblock's figures. Walking the trees, what their
 * references must be and the repair of the extent tree are the extent layer's reference
 * checker (fs/extent/ref_check.h).
 */
#include "fs/super/fsck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs/extent/ref_check.h"
#include "fs/lib/endian.h"
#include "fs/super/internal.h"
#include "fs/super/root_item.h"

struct fs_check {
	struct cowfs *fs;
	struct ref_check *refs;
	uint64_t problems;          /* this level's own */
};

static void problem(struct fs_check *c, uint64_t bytenr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct fs_check *c, uint64_t bytenr, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->problems++;
	if (c->fs->report)
		c->fs->report(c->fs->report_arg, bytenr, msg);
}

/* The root tree, then every tree a root item names. */
static int check_all_trees(struct fs_check *c)
{
	struct cowfs *fs = c->fs;
	struct bt_cursor cur;
	struct bt_key k;
	const void *d;
	uint32_t len;
	int ret = ref_check_tree(c->refs, &fs->root_tree);

	bt_cursor_init(&cur, &fs->root_tree);
	for (int r = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); r == 0 && ret == 0;
	     r = bt_cursor_next(&cur)) {
		struct tree_root tr;
		struct btree t;
		bt_cursor_item(&cur, &k, &d, &len);
		if (k.type != ROOT_ITEM_KEY)
			continue;
		if (root_item_decode(d, len, &tr) < 0) {
			problem(c, fs->root_tree.root, "malformed root item for tree %llu",
				(unsigned long long)k.objectid);
			continue;
		}
		bt_open(&t, &fs->bfs, k.objectid, tr.bytenr, tr.generation, tr.level);
		/* The walk below re-seeks the root tree's nodes: keep the cursor's key. */
		ret = ref_check_tree(c->refs, &t);
	}
	bt_cursor_release(&cur);
	return ret;
}

/* The trees check_all_trees() will give the checker: the root tree and one per root item. */
static uint64_t count_trees(struct cowfs *fs)
{
	struct bt_cursor cur;
	struct bt_key k;
	uint64_t n = 1;

	bt_cursor_init(&cur, &fs->root_tree);
	for (int r = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); r == 0; r = bt_cursor_next(&cur)) {
		bt_cursor_item(&cur, &k, NULL, NULL);
		n += k.type == ROOT_ITEM_KEY;
	}
	bt_cursor_release(&cur);
	return n;
}

/* Space no extent may touch: every superblock mirror in the filesystem and its guard. */
static size_t super_holes(const struct cowfs *fs, struct ref_check_hole *holes)
{
	uint64_t total = get_le64(&fs->sb.total_bytes);
	size_t n = 0;

	/* The primary copy lies below the data area. */
	for (int i = 1; i < COWFS_SUPER_MIRRORS; i++)
		if (cowfs_super_offsets[i] < total)
			holes[n++] = (struct ref_check_hole){ cowfs_super_offsets[i], COWFS_SUPER_GUARD };
	return n;
}

static void add_stats(struct cowfs_check_stats *st, const struct ref_check_stats *r)
{
	st->trees = r->trees;
	st->tree_blocks = r->tree_blocks;
	st->data_extents = r->data_extents;
	st->extent_items = r->extent_items;
	st->bytes_used = r->bytes_used;
	st->problems += r->problems;
	st->queued = r->queued;
	st->unfixable += r->unfixable;
}

static void subvol_problem(void *arg, uint64_t bytenr, const char *msg)
{
	problem(arg, bytenr, "%s", msg);
}

/* With `repair` (a transaction), corrections are queued in it. */
static int run_check(struct cowfs *fs, struct cowfs_check_stats *st, struct bt_trans *repair,
		     cowfs_check_progress_fn progress, void *progress_arg)
{
	struct ref_check_hole holes[COWFS_SUPER_MIRRORS];
	struct ref_check_opts o = { .data_start = COWFS_DATA_START,
				    .data_end = get_le64(&fs->sb.total_bytes), .holes = holes,
				    .nholes = super_holes(fs, holes), .repair = repair != NULL,
				    .tx = repair, .trees = count_trees(fs),
				    .progress = progress, .progress_arg = progress_arg };
	struct fs_check c = { .fs = fs };
	int ret;

	memset(st, 0, sizeof(*st));
	ret = ref_check_begin(&fs->ext, &o, &c.refs);
	if (ret < 0)
		return ret;
	ret = check_all_trees(&c);
	if (ret == 0)
		ret = ref_check_compare(c.refs);
	if (ret == 0) {
		uint64_t counted = 0;   /* subvol_problem counts them in c */
		ret = subvol_check_items(fs, subvol_problem, &c, &counted);
	}
	add_stats(st, ref_check_stats(c.refs));
	ref_check_end(c.refs);
	if (ret == 0 && get_le64(&fs->sb.bytes_used) != st->bytes_used)
		problem(&c, COWFS_SUPER_OFFSET,
			"superblock says %llu bytes used, extents add up to %llu", (unsigned long long)get_le64(&fs->sb.bytes_used), (unsigned long long)st->bytes_used);
	st->problems += c.problems;
	if (ret < 0)
		return ret;
	return st->problems ? -EUCLEAN : 0;
}

int cowfs_check(struct cowfs *fs, struct cowfs_check_stats *st,
		cowfs_check_progress_fn progress, void *progress_arg)
{
	return run_check(fs, st, NULL, progress, progress_arg);
}

int cowfs_check_repair(struct cowfs *fs, struct cowfs_check_stats *st,
		       cowfs_check_progress_fn progress, void *progress_arg)
{
	struct cowfs_trans *tx;
	int ret;

	if (cowfs_read_only(fs))
		return -EROFS;
	/* The corrections are one update; problems found are its result, not its failure. */
	tx = cowfs_trans_begin(fs, ALLOC_PRIVILEGED);
	ret = run_check(fs, st, &tx->bt, progress, progress_arg);
	cowfs_trans_end(tx, ret == -EUCLEAN ? 0 : ret);
	return ret;
}
