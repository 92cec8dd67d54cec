/*
 * The reference checker and its repair (cowfs_check, cowfs_check_repair), one kind of damage
 * at a time, written straight into the extent tree of a filesystem with shared nodes (a
 * snapshot) and a data extent with twenty references: each is found with its message and
 * counted; repair queues the corrections (st.queued), an ordinary commit applies them, and
 * the check is clean afterwards, also after a reopen. Damage that repair cannot fix leaves
 * st.unfixable set.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"

#define IMG (128ull << 20)
#define NODE 4096u
#define FILE_INO 300ull
#define NITEMS 10
/* The snapshot and the fs tree hold the items in two leaves (both owned by the fs tree, one
 * copied from the other when the deletes below shadowed it): two references each. */
#define NREFS (2 * NITEMS)

/* A filesystem, and every problem reported since the last reset. */
struct rcfix {
	struct fsfix x;
	struct cowfs_trans *tx;          /* the update damage is written in */
	uint64_t data_start, data_len;   /* the data extent with NITEMS references */
	char log[16384];
	size_t loglen;
};

static void log_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct rcfix *f = arg;
	int n = snprintf(f->log + f->loglen, sizeof(f->log) - f->loglen, "%" PRIu64 ": %s\n",
			 bytenr, msg);

	if (n > 0 && f->loglen + (size_t)n < sizeof(f->log))
		f->loglen += (size_t)n;
	f->x.reports++;
	snprintf(f->x.last_report, sizeof(f->x.last_report), "%s", msg);
	if (getenv("COWFS_TEST_VERBOSE"))
		fprintf(stderr, "report: %" PRIu64 ": %s\n", bytenr, msg);
}

static void open_logged(struct rcfix *f)
{
	struct cowfs_opts o = fsfix_opts(&f->x);

	o.report = log_report;
	o.report_arg = f;
	ck_assert_int_eq(cowfs_open(f->x.path, &o, &f->x.fs), 0);
	f->loglen = 0;
	f->log[0] = 0;
}

static void reopen_logged(struct rcfix *f)
{
	ck_assert_int_eq(cowfs_close(f->x.fs), 0);
	open_logged(f);
}

static void put_prealloc(struct rcfix *f, struct bt_trans *tx, uint64_t ino, uint64_t off)
{
	struct file_extent_item fe = { .type = FILE_EXTENT_PREALLOC };
	struct bt_key k = { ino, EXTENT_DATA_KEY, off };

	put_le64(&fe.disk_bytenr, f->data_start);
	put_le64(&fe.disk_num_bytes, f->data_len);
	put_le64(&fe.num_bytes, f->data_len);
	put_le64(&fe.ram_bytes, f->data_len);
	ck_assert_int_eq(bt_insert(tx, &f->x.fs->fs_root.t, &k, &fe, sizeof(fe)), 0);
}

/* Items over many leaves, a snapshot sharing them, then changes that unshare some paths. */
static void rcfix_setup(struct rcfix *f, const char *name)
{
	struct cowfs_root *snap;
	uint8_t buf[100];

	memset(f, 0, sizeof(*f));
	fsfix_setup(&f->x, name, IMG, NODE);
	reopen_logged(f);
	f->tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);
	struct bt_trans *tx = &f->tx->bt;
	ck_assert_int_eq(extent_alloc_data(&f->x.fs->ext, tx, 1 << 20, 1 << 20, 0, &f->data_start,
					   &f->data_len), 0);
	for (uint64_t i = 0; i < 3000; i++) {
		struct bt_key k = { 1000 + i, 1, 0 };
		memset(buf, (int)i, sizeof(buf));
		ck_assert_int_eq(bt_insert(tx, &f->x.fs->fs_root.t, &k, buf, sizeof(buf)), 0);
	}
	for (uint64_t i = 0; i < NITEMS; i++)
		put_prealloc(f, tx, FILE_INO, i << 20);
	ck_assert_int_eq(cowfs_tree_clone(f->tx, &f->x.fs->fs_root, 256, &snap), 0);
	cowfs_trans_end(f->tx, 0);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	f->tx = cowfs_trans_begin(f->x.fs, ALLOC_PRIVILEGED);
	tx = &f->tx->bt;
	for (uint64_t i = 0; i < 3000; i += 500) {
		struct bt_key k = { 1000 + i, 1, 0 };
		ck_assert_int_eq(bt_delete(tx, &f->x.fs->fs_root.t, &k), 0);
	}
	cowfs_trans_end(f->tx, 0);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	reopen_logged(f);
	fsfix_assert_clean(&f->x, NULL);
}

static void rcfix_teardown(struct rcfix *f)
{
	fsfix_teardown(&f->x);
}

/* ---- damage, written into the extent tree and committed ------------------------------ */

static struct bt_trans *damage_begin(struct rcfix *f)
{
	f->tx = cowfs_trans_begin(f->x.fs, ALLOC_PRIVILEGED);
	return &f->tx->bt;
}

static void damage_end(struct rcfix *f)
{
	cowfs_trans_end(f->tx, 0);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	reopen_logged(f);
}

static void set_refs(struct rcfix *f, struct bt_trans *tx, uint64_t start, uint64_t len,
		     uint64_t refs)
{
	struct bt_key k = { start, EXTENT_ITEM_KEY, len };
	struct extent_item ei;
	uint32_t size;

	ck_assert_int_eq(bt_lookup(f->x.fs->ext.tree, &k, &ei, sizeof(ei), &size), 0);
	put_le64(&ei.refs, refs);
	ck_assert_int_eq(bt_update(tx, f->x.fs->ext.tree, &k, &ei, sizeof(ei)), 0);
}

static void put_tree_backref(struct rcfix *f, struct bt_trans *tx, uint64_t block,
			     uint64_t owner, uint64_t count)
{
	struct bt_key k = { block, TREE_BLOCK_REF_KEY, owner };
	uint8_t v[8];

	put_le64(v, count);
	if (bt_update(tx, f->x.fs->ext.tree, &k, v, 8) == -ENOENT)
		ck_assert_int_eq(bt_insert(tx, f->x.fs->ext.tree, &k, v, 8), 0);
}

static void put_data_backref(struct rcfix *f, struct bt_trans *tx, uint64_t start,
			     uint64_t owner, uint64_t inode, uint64_t offset, uint64_t count)
{
	struct bt_key k = { start, EXTENT_DATA_REF_KEY,
			    extent_data_ref_hash(owner, inode, offset) };
	struct extent_data_ref r;

	put_le64(&r.owner, owner);
	put_le64(&r.inode, inode);
	put_le64(&r.offset, offset);
	put_le64(&r.count, count);
	if (bt_update(tx, f->x.fs->ext.tree, &k, &r, sizeof(r)) == -ENOENT)
		ck_assert_int_eq(bt_insert(tx, f->x.fs->ext.tree, &k, &r, sizeof(r)), 0);
}

/* Every item of the extent tree about `start` (its extent item and backrefs). */
static void delete_extent_items(struct rcfix *f, struct bt_trans *tx, uint64_t start,
				bool keep_backrefs)
{
	for (;;) {
		struct bt_key from = { start, keep_backrefs ? EXTENT_ITEM_KEY : 0, 0 }, k;
		struct bt_cursor c;
		bt_cursor_init(&c, f->x.fs->ext.tree);
		int ret = bt_cursor_seek(&c, &from, BT_SEEK_GE);
		if (ret == 0)
			bt_cursor_item(&c, &k, NULL, NULL);
		bt_cursor_release(&c);
		if (ret != 0 || k.objectid != start || (keep_backrefs && k.type != EXTENT_ITEM_KEY))
			return;
		ck_assert_int_eq(bt_delete(tx, f->x.fs->ext.tree, &k), 0);
	}
}

/* A tree block with one reference, not the root of any tree (so it has a parent). */
struct pick_block { uint64_t skip[8]; int nskip; uint64_t found; uint8_t level; };

static int pick_block(void *arg, const struct extent_info *e)
{
	struct pick_block *p = arg;

	if (p->found || !(e->flags & EXTENT_FLAG_TREE_BLOCK) || e->refs != 1)
		return 0;
	for (int i = 0; i < p->nskip; i++)
		if (p->skip[i] == e->start)
			return 0;
	p->found = e->start;
	p->level = e->level;
	return 0;
}

static uint64_t unshared_block(struct rcfix *f, uint8_t *level)
{
	struct cowfs *fs = f->x.fs;
	struct pick_block p = { .skip = { fs->root_tree.root, fs->extent_root.t.root,
					  fs->fs_root.t.root, fs->csum_root.t.root }, .nskip = 4 };
	struct cowfs_root *snap;

	ck_assert_int_eq(cowfs_tree_open(fs, 256, &snap), 0);
	p.skip[p.nskip++] = snap->t.root;
	ck_assert_int_eq(extent_walk(&fs->ext, &(struct extent_walk){ .extent_fn = pick_block,
								       .arg = &p }), 0);
	ck_assert_uint_ne(p.found, 0);
	if (level)
		*level = p.level;
	return p.found;
}

static uint64_t block_owner(struct rcfix *f, uint64_t block)
{
	struct bt_key from = { block, TREE_BLOCK_REF_KEY, 0 }, k;
	struct bt_cursor c;

	bt_cursor_init(&c, f->x.fs->ext.tree);
	ck_assert_int_eq(bt_cursor_seek(&c, &from, BT_SEEK_GE), 0);
	bt_cursor_item(&c, &k, NULL, NULL);
	bt_cursor_release(&c);
	ck_assert_uint_eq(k.objectid, block);
	ck_assert_uint_eq(k.type, TREE_BLOCK_REF_KEY);
	return k.offset;
}

/* ---- what the checker says, and what repair makes of it ------------------------------ */

static void expect_found(struct rcfix *f, uint64_t problems, const char *const *needles)
{
	struct cowfs_check_stats st;

	f->loglen = 0;
	f->log[0] = 0;
	ck_assert_int_eq(cowfs_check(f->x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_msg(st.problems == problems, "%" PRIu64 " problems, want %" PRIu64 ":\n%s",
		      st.problems, problems, f->log);
	ck_assert_uint_eq(st.queued, 0);
	for (; *needles; needles++)
		ck_assert_msg(strstr(f->log, *needles), "no \"%s\" in:\n%s", *needles, f->log);
}

static void expect_repaired(struct rcfix *f, uint64_t queued)
{
	struct cowfs_check_stats st;

	ck_assert_int_eq(cowfs_check_repair(f->x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_uint_eq(st.unfixable, 0);
	ck_assert_msg(st.queued == queued, "%" PRIu64 " repairs queued, want %" PRIu64 ":\n%s",
		      st.queued, queued, f->log);
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
	fsfix_assert_clean(&f->x, &st);
	reopen_logged(f);
	fsfix_assert_clean(&f->x, NULL);
	ck_assert_uint_eq(st.data_extents, 1);
}

static void expect_unfixable(struct rcfix *f)
{
	struct cowfs_check_stats st;
	uint64_t gen = cowfs_generation(f->x.fs);

	ck_assert_int_eq(cowfs_check_repair(f->x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_uint_gt(st.unfixable, 0);
	ck_assert_uint_eq(cowfs_generation(f->x.fs), gen);
}

static char *fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static char *fmt(char *buf, size_t n, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, n, f, ap);
	va_end(ap);
	return buf;
}

START_TEST(count_too_high)
{
	struct rcfix f;
	char m[200];

	rcfix_setup(&f, "rc-high");
	set_refs(&f, damage_begin(&f), f.data_start, f.data_len, NREFS + 3);
	damage_end(&f);
	expect_found(&f, 1, (const char *[]){ fmt(m, sizeof(m), "%" PRIu64 ": refcount 23, but 20 "
						  "references exist", f.data_start), NULL });
	expect_repaired(&f, 1);
	rcfix_teardown(&f);
}
END_TEST

/* A tree block's count too high, a data extent's too low (an item's count is never 0). */
START_TEST(counts_wrong_both_ways)
{
	struct rcfix f;
	uint64_t block;
	char m[200];

	rcfix_setup(&f, "rc-low");
	block = unshared_block(&f, NULL);
	struct bt_trans *tx = damage_begin(&f);
	set_refs(&f, tx, block, NODE, 3);
	set_refs(&f, tx, f.data_start, f.data_len, 4);
	damage_end(&f);
	expect_found(&f, 2, (const char *[]){
		fmt(m, sizeof(m), "%" PRIu64 ": refcount 3, but 1 references exist", block),
		"refcount 4, but 20 references exist", NULL });
	expect_repaired(&f, 2);
	rcfix_teardown(&f);
}
END_TEST

START_TEST(missing_tree_backref)
{
	struct rcfix f;
	uint64_t block, owner;
	char m[200];

	rcfix_setup(&f, "rc-mtb");
	block = unshared_block(&f, NULL);
	owner = block_owner(&f, block);
	struct bt_trans *tx = damage_begin(&f);
	struct bt_key k = { block, TREE_BLOCK_REF_KEY, owner };
	ck_assert_int_eq(bt_delete(tx, f.x.fs->ext.tree, &k), 0);
	damage_end(&f);
	expect_found(&f, 1, (const char *[]){ fmt(m, sizeof(m),
						  "%" PRIu64 ": missing backref (owner "
						  "%" PRIu64 ", inode 0, offset 0) x1", block, owner), NULL });
	expect_repaired(&f, 1);
	rcfix_teardown(&f);
}
END_TEST

START_TEST(missing_data_backrefs)
{
	struct rcfix f;
	char m[200];

	rcfix_setup(&f, "rc-mdb");
	struct bt_trans *tx = damage_begin(&f);
	for (uint64_t i = 3; i < 5; i++) {
		struct bt_key k = { f.data_start, EXTENT_DATA_REF_KEY,
				    extent_data_ref_hash(FS_TREE_ID, FILE_INO, i << 20) };
		ck_assert_int_eq(bt_delete(tx, f.x.fs->ext.tree, &k), 0);
	}
	damage_end(&f);
	expect_found(&f, 2, (const char *[]){
		fmt(m, sizeof(m), "missing backref (owner 5, inode 300, offset %llu) x2",
		    3ull << 20), "missing backref (owner 5, inode 300, offset 4194304) x2", NULL });
	expect_repaired(&f, 2);
	rcfix_teardown(&f);
}
END_TEST

START_TEST(extra_backrefs)
{
	struct rcfix f;
	uint64_t block;
	char m[200];

	rcfix_setup(&f, "rc-extra");
	block = unshared_block(&f, NULL);
	struct bt_trans *tx = damage_begin(&f);
	put_tree_backref(&f, tx, block, 999, 2);
	put_data_backref(&f, tx, f.data_start, FS_TREE_ID, 4242, 0, 5);
	damage_end(&f);
	expect_found(&f, 2, (const char *[]){
		fmt(m, sizeof(m),
		    "%" PRIu64 ": backref (owner 999, inode 0, offset 0) x2 matches no "
		    "reference", block),
		"backref (owner 5, inode 4242, offset 0) x5 matches no reference", NULL });
	expect_repaired(&f, 2);
	rcfix_teardown(&f);
}
END_TEST

START_TEST(wrong_backref_counts)
{
	struct rcfix f;
	uint64_t block, owner;
	char m[200];

	rcfix_setup(&f, "rc-wbc");
	block = unshared_block(&f, NULL);
	owner = block_owner(&f, block);
	struct bt_trans *tx = damage_begin(&f);
	put_tree_backref(&f, tx, block, owner, 4);
	put_data_backref(&f, tx, f.data_start, FS_TREE_ID, FILE_INO, 2 << 20, 3);
	/* And the counts agree with the wrong backrefs: only the backrefs say what is wrong. */
	set_refs(&f, tx, block, NODE, 4);
	set_refs(&f, tx, f.data_start, f.data_len, NREFS + 1);
	damage_end(&f);
	expect_found(&f, 4, (const char *[]){
		fmt(m, sizeof(m),
		    "%" PRIu64 ": backref (owner %" PRIu64 ", inode 0, offset 0) says 4, "
		    "1 references exist", block, owner),
		"backref (owner 5, inode 300, offset 2097152) says 3, 2 references exist",
		"refcount 4, but 1 references exist", "refcount 21, but 20 references exist", NULL });
	expect_repaired(&f, 4);
	rcfix_teardown(&f);
}
END_TEST

START_TEST(leaks)
{
	struct rcfix f;
	char m[200];
	uint64_t leak_data = 100ull << 20, leak_block = 101ull << 20, leak_bare = 102ull << 20;

	rcfix_setup(&f, "rc-leak");
	struct bt_trans *tx = damage_begin(&f);
	struct extent_item ei = { 0 };
	/* A data extent and a tree block nothing references, each with backrefs that disagree
	 * with its count; and one with no backref at all. */
	struct bt_key k = { leak_data, EXTENT_ITEM_KEY, 65536 };
	put_le64(&ei.refs, 1);
	put_le64(&ei.flags, EXTENT_FLAG_DATA);
	ck_assert_int_eq(bt_insert(tx, f.x.fs->ext.tree, &k, &ei, sizeof(ei)), 0);
	put_data_backref(&f, tx, leak_data, FS_TREE_ID, 777, 0, 2);
	k = (struct bt_key){ leak_bare, EXTENT_ITEM_KEY, 8192 };
	ck_assert_int_eq(bt_insert(tx, f.x.fs->ext.tree, &k, &ei, sizeof(ei)), 0);
	k = (struct bt_key){ leak_block, EXTENT_ITEM_KEY, NODE };
	put_le64(&ei.refs, 3);
	put_le64(&ei.flags, EXTENT_FLAG_TREE_BLOCK);
	ck_assert_int_eq(bt_insert(tx, f.x.fs->ext.tree, &k, &ei, sizeof(ei)), 0);
	put_tree_backref(&f, tx, leak_block, FS_TREE_ID, 1);
	put_tree_backref(&f, tx, leak_block, 256, 1);
	damage_end(&f);
	/* The superblock's used bytes agree: they follow the allocator, which never saw the leaked
	 * items, and the checker adds up only extents something references. */
	expect_found(&f, 6, (const char *[]){
		fmt(m, sizeof(m),
		    "%" PRIu64 ": extent has 1 references recorded but none exist (leak)", leak_bare), "backref (owner 5, inode 777, offset 0) x2 matches no reference", "extent has 3 references recorded but none exist (leak)", "backref (owner 256, inode 0, offset 0) x1 matches no reference", NULL });
	expect_repaired(&f, 6);
	rcfix_teardown(&f);
}
END_TEST

START_TEST(referenced_extents_without_items)
{
	struct rcfix f;
	uint64_t block;
	uint8_t level;
	char m[200], m2[200];

	rcfix_setup(&f, "rc-noitem");
	block = unshared_block(&f, &level);
	struct bt_trans *tx = damage_begin(&f);
	delete_extent_items(&f, tx, f.data_start, false);
	delete_extent_items(&f, tx, block, false);
	damage_end(&f);
	/* The superblock still counts the two extents, the reopened allocator no longer does. */
	expect_found(&f, 3, (const char *[]){
		fmt(m, sizeof(m), "%" PRIu64 ": data extent referenced 20 times has no extent item",
		    f.data_start),
		fmt(m2, sizeof(m2), "%" PRIu64 ": tree block referenced 1 times has no extent item",
		    block), "superblock says", NULL });
	expect_repaired(&f, 2);
	struct extent_info e;
	ck_assert_int_eq(extent_lookup(&f.x.fs->ext, block, NODE, &e), 0);
	ck_assert_uint_eq(e.level, level);
	ck_assert_uint_eq(e.refs, 1);
	rcfix_teardown(&f);
}
END_TEST

START_TEST(backref_without_item_is_unfixable)
{
	struct rcfix f;

	rcfix_setup(&f, "rc-orphan");
	struct bt_trans *tx = damage_begin(&f);
	delete_extent_items(&f, tx, f.data_start, true);
	damage_end(&f);
	expect_found(&f, 2 + NITEMS, (const char *[]){ "backref for an extent with no extent item",
						      "data extent referenced 20 times has no extent item", NULL });
	expect_unfixable(&f);
	rcfix_teardown(&f);
}
END_TEST

/*
 * Counts no real extent has: a leak goes whole whatever its counts say, but a backref of a
 * referenced extent is corrected a reference at a time, which a count like 2^40 cannot be.
 */
START_TEST(absurd_counts)
{
	struct rcfix f;
	uint64_t block, leak = 100ull << 20;

	rcfix_setup(&f, "rc-absurd");
	struct bt_trans *tx = damage_begin(&f);
	struct extent_item ei = { 0 };
	struct bt_key k = { leak, EXTENT_ITEM_KEY, 65536 };
	put_le64(&ei.refs, 1ull << 40);
	put_le64(&ei.flags, EXTENT_FLAG_DATA);
	ck_assert_int_eq(bt_insert(tx, f.x.fs->ext.tree, &k, &ei, sizeof(ei)), 0);
	put_data_backref(&f, tx, leak, FS_TREE_ID, 777, 0, 1ull << 41);
	damage_end(&f);
	expect_found(&f, 2,
		     (const char *[]){ "extent has 1099511627776 references recorded but none "
					      "exist (leak)", NULL });
	expect_repaired(&f, 2);

	block = unshared_block(&f, NULL);
	tx = damage_begin(&f);
	put_tree_backref(&f, tx, block, 999, 1ull << 40);
	damage_end(&f);
	expect_found(&f, 1,
		     (const char *[]){ "(owner 999, inode 0, offset 0) x1099511627776 matches "
					      "no reference", NULL });
	expect_unfixable(&f);
	rcfix_teardown(&f);
}
END_TEST

/* The extent layer's repair calls refuse what is not theirs to fix. */
START_TEST(repair_calls_refuse)
{
	struct rcfix f;
	uint64_t block;

	rcfix_setup(&f, "rc-refuse");
	block = unshared_block(&f, NULL);
	struct bt_trans *tx = &cowfs_trans_begin(f.x.fs, ALLOC_PRIVILEGED)->bt;
	struct extents *x = &f.x.fs->ext;
	/* No extent item there. */
	ck_assert_int_eq(extent_recount(x, tx, 100ull << 20), -ENOENT);
	ck_assert_int_eq(extent_forget_leak(x, tx, 100ull << 20), -ENOENT);
	/* A counted extent's space is not free; space outside the filesystem is no extent's. */
	ck_assert_int_eq(extent_adopt(x, tx, block, NODE, false, 0), -EEXIST);
	ck_assert_int_eq(extent_adopt(x, tx, IMG, NODE, false, 0), -ERANGE);
	/* Counts that agree need nothing. */
	ck_assert_int_eq(extent_recount(x, tx, f.data_start), 0);
	ck_assert_uint_eq(extent_pending(x), 0);
	cowfs_trans_end(&f.x.fs->trans, 0);
	fsfix_assert_clean(&f.x, NULL);
	rcfix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ref_check");
	TCase *tc = tcase_create("ref_check");

	tcase_add_test(tc, count_too_high);
	tcase_add_test(tc, counts_wrong_both_ways);
	tcase_add_test(tc, missing_tree_backref);
	tcase_add_test(tc, missing_data_backrefs);
	tcase_add_test(tc, extra_backrefs);
	tcase_add_test(tc, wrong_backref_counts);
	tcase_add_test(tc, leaks);
	tcase_add_test(tc, referenced_extents_without_items);
	tcase_add_test(tc, backref_without_item_is_unfixable);
	tcase_add_test(tc, absurd_counts);
	tcase_add_test(tc, repair_calls_refuse);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
