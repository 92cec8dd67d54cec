/*
 * Exclusive space of sets of subvolumes (fs/extent/exclusive.h, fs/super/subvol.h:
 * cowfs_subvol_space): the fast figure from reference counts against the brute-force recount
 * (cowfs_subvol_space_recount, which never looks at a count) after every step, and against what
 * dropping the set really frees (bytes_used of a copy of the image before and after dropping
 * it, the root, extent and checksum trees' own blocks left out: they are no subvolume's).
 * Trees: a subvolume alone, a fresh clone, clones diverging on both sides (overwrites,
 * deletes, new files, reflinks within a tree), and seeded random churn over four trees.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/extent/exclusive.h"
#include "fs/extent/extent_format.h"
#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/lib/endian.h"
#include "fs/super/fsck.h"
#include "fs/super/subvol.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"

#define ROOT INODE_ROOT_INO
#define NTREES 4
#define NODESIZE 4096u
#define IMAGE_SIZE (96ull << 20)

/* Subvolumes 256.. in slots; slot i is tree 256 + i while live. */
struct xfix {
	struct fsfix x;
	bool live[NTREES];
	struct cowfs_root *r[NTREES];
	struct inode_tree it[NTREES];
};

static uint64_t id_of(int slot)
{
	return 256 + (uint64_t)slot;
}

static void xfix_setup(struct xfix *f, const char *name)
{
	memset(f, 0, sizeof(*f));
	fsfix_setup(&f->x, name, IMAGE_SIZE, NODESIZE);
}

static void tree_attach(struct xfix *f, int slot)
{
	f->live[slot] = true;
	inode_tree_init(&f->it[slot], f->x.fs, f->r[slot]);
}

/* Let go of every inode layer (writing back), as before a close. */
static void trees_detach(struct xfix *f)
{
	for (int i = 0; i < NTREES; i++)
		if (f->live[i])
			ck_assert_int_eq(inode_tree_destroy(&f->it[i]), 0);
}

static void trees_reattach(struct xfix *f)
{
	for (int i = 0; i < NTREES; i++) {
		if (!f->live[i])
			continue;
		ck_assert_int_eq(cowfs_tree_open(f->x.fs, id_of(i), &f->r[i]), 0);
		inode_tree_init(&f->it[i], f->x.fs, f->r[i]);
	}
}

static void commit(struct xfix *f)
{
	ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
}

/* A new empty subvolume with its root directory. */
static void tree_new(struct xfix *f, int slot)
{
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);

	ck_assert_int_eq(cowfs_trans_end(tx, cowfs_tree_create(tx, id_of(slot), &f->r[slot])), 0);
	ck_assert_int_eq(inode_make_root(f->x.fs, f->r[slot]), 0);
	tree_attach(f, slot);
}

/* A snapshot of `src` into `dst`, its buffered data written back first (the commit does). */
static void tree_clone(struct xfix *f, int src, int dst)
{
	struct cowfs_trans *tx;

	commit(f);
	tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_trans_end(tx, cowfs_tree_clone(tx, f->r[src], id_of(dst),
							       &f->r[dst])), 0);
	tree_attach(f, dst);
}

static void tree_drop(struct xfix *f, int slot)
{
	struct cowfs_trans *tx;

	ck_assert_int_eq(inode_tree_destroy(&f->it[slot]), 0);
	f->live[slot] = false;
	tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_trans_end(tx, cowfs_tree_drop(tx, f->r[slot])), 0);
}

static uint64_t file_ino(struct xfix *f, int slot, const char *name, bool create)
{
	struct cowfs_attr a;
	int ret = inode_lookup(&f->it[slot], ROOT, name, strlen(name), &a);

	if (ret == -ENOENT && create)
		ret = inode_create(&f->it[slot], ROOT, name, strlen(name), S_IFREG | 0644, 0, 1000,
				   100, &a);
	ck_assert_msg(ret == 0, "%s in tree %d: %d", name, slot, ret);
	return a.ino;
}

/* Write `len` bytes of pattern `seed` at `off` of file `name` of tree `slot` (made if new). */
static void put(struct xfix *f, int slot, const char *name, uint64_t off, size_t len,
		uint64_t seed)
{
	uint64_t ino = file_ino(f, slot, name, true);
	uint8_t *buf = malloc(len);

	rng_fill(buf, len, seed);
	ck_assert_int_eq(file_write(&f->it[slot], ino, buf, len, off, 0), (ssize_t)len);
	free(buf);
}

static bool exists(struct xfix *f, int slot, const char *name)
{
	struct cowfs_attr a;

	return inode_lookup(&f->it[slot], ROOT, name, strlen(name), &a) == 0;
}

static void del(struct xfix *f, int slot, const char *name)
{
	ck_assert_int_eq(inode_unlink(&f->it[slot], ROOT, name, strlen(name)), 0);
}

/* Reflink all of `from` onto `to` (made if new) in one tree. */
static void reflink(struct xfix *f, int slot, const char *from, const char *to)
{
	uint64_t in = file_ino(f, slot, from, false), out = file_ino(f, slot, to, true), cloned;

	ck_assert_int_eq(file_clone_range(&f->it[slot], in, 0, out, 0, 0, &cloned), 0);
}

/*
 * The file extent item at file offset 0 of `from` in tree `src`, inserted at `at` (past the
 * end) of file `to` in tree `dst`: a data extent referenced from two trees through leaves
 * neither shares (what a reflink across subvolumes makes). The B+tree's item hook adds the
 * reference; the namespace does not count it (not checked here: no ifix).
 */
static void reflink_across(struct xfix *f, int src, const char *from, int dst, const char *to,
			   uint64_t at)
{
	uint64_t in = file_ino(f, src, from, false), out = file_ino(f, dst, to, true);
	struct bt_key k = { in, EXTENT_DATA_KEY, 0 };
	uint8_t item[256];
	uint32_t len;

	commit(f);   /* the source's data in its tree */
	ck_assert_int_eq(bt_lookup(&f->r[src]->t, &k, item, sizeof(item), &len), 0);
	ck_assert_uint_le(len, sizeof(item));
	struct cowfs_trans *tx = cowfs_trans_begin(f->x.fs, ALLOC_NORMAL);
	k = (struct bt_key){ out, EXTENT_DATA_KEY, at };
	ck_assert_int_eq(cowfs_trans_end(tx, bt_insert(&tx->bt, &f->r[dst]->t, &k, item, len)), 0);
}

static struct subvol_space fast(struct xfix *f, const uint64_t *ids, size_t n)
{
	struct subvol_space s;

	cowfs_lock(f->x.fs);
	int ret = cowfs_subvol_space(f->x.fs, ids, n, true, &s);
	cowfs_unlock(f->x.fs);
	ck_assert_msg(ret == 0, "cowfs_subvol_space: %d (%s)", ret, f->x.last_report);
	return s;
}

static struct subvol_space recount(struct xfix *f, const uint64_t *ids, size_t n)
{
	struct subvol_space s;

	cowfs_lock(f->x.fs);
	int ret = cowfs_subvol_space_recount(f->x.fs, ids, n, &s);
	cowfs_unlock(f->x.fs);
	ck_assert_msg(ret == 0, "cowfs_subvol_space_recount: %d (%s)", ret, f->x.last_report);
	return s;
}

/* The fast figure of ids[0..n) equals the recount; returns it. */
static struct subvol_space agree(struct xfix *f, const uint64_t *ids, size_t n)
{
	struct subvol_space a = fast(f, ids, n), b = recount(f, ids, n);

	ck_assert_msg(a.exclusive_meta == b.exclusive_meta &&
		      a.exclusive_data == b.exclusive_data && a.referenced == b.referenced,
		      "set of %zu from %" PRIu64 ": fast meta %" PRIu64 " data %" PRIu64 " ref %"
		      PRIu64 ", recount meta %" PRIu64 " data %" PRIu64 " ref %" PRIu64, n, ids[0],
		      a.exclusive_meta, a.exclusive_data, a.referenced, b.exclusive_meta,
		      b.exclusive_data, b.referenced);
	ck_assert_uint_le(a.exclusive_meta + a.exclusive_data, a.referenced);
	return a;
}

/* Every live singleton, every live pair, and all live trees together agree. */
static void agree_all(struct xfix *f)
{
	uint64_t all[NTREES];
	size_t n = 0;

	for (int i = 0; i < NTREES; i++) {
		if (!f->live[i])
			continue;
		all[n++] = id_of(i);
		agree(f, &all[n - 1], 1);
		for (int j = i + 1; j < NTREES; j++) {
			uint64_t pair[2] = { id_of(i), id_of(j) };
			if (f->live[j])
				agree(f, pair, 2);
		}
	}
	if (n)
		agree(f, all, n);
}

static uint64_t tree_bytes(struct cowfs *fs, struct btree *t)
{
	struct bt_stats st;

	ck_assert_int_eq(bt_stats(t, &st), 0);
	return st.nodes * cowfs_nodesize(fs);
}

/* bytes_used less the blocks of the trees that are no subvolume's. */
static uint64_t subvol_bytes_used(struct cowfs *fs)
{
	return get_le64(&fs->sb.bytes_used) - tree_bytes(fs, &fs->root_tree) -
	       tree_bytes(fs, &fs->extent_root.t) - tree_bytes(fs, &fs->csum_root.t);
}

/* What dropping ids[0..n) together frees, measured on a copy of the image. */
static uint64_t freed_by_dropping(struct xfix *f, const uint64_t *ids, size_t n)
{
	char copy[600], cmd[1300];
	struct cowfs_opts o = fsfix_opts(&f->x);
	struct cowfs *fs;
	uint64_t before, after;

	trees_detach(f);
	ck_assert_int_eq(cowfs_close(f->x.fs), 0);
	snprintf(copy, sizeof(copy), "%s.drop", f->x.path);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", f->x.path, copy);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(cowfs_open(copy, &o, &fs), 0);
	before = subvol_bytes_used(fs);
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct cowfs_root *r;
		ret = cowfs_tree_open(fs, ids[i], &r);
		if (ret == 0)
			ret = cowfs_tree_drop(tx, r);
	}
	ck_assert_int_eq(cowfs_trans_end(tx, ret), 0);
	ck_assert_int_eq(cowfs_commit(fs), 0);
	after = subvol_bytes_used(fs);
	fsfix_assert_clean(&(struct fsfix){ .fs = fs }, NULL);
	ck_assert_int_eq(cowfs_close(fs), 0);
	unlink(copy);
	ck_assert_int_eq(cowfs_open(f->x.path, &o, &f->x.fs), 0);
	trees_reattach(f);
	ck_assert_uint_ge(before, after);
	return before - after;
}

/* The fast figure of ids[0..n), committed, is what dropping them frees. */
static void frees_exactly(struct xfix *f, const uint64_t *ids, size_t n)
{
	commit(f);
	struct subvol_space s = agree(f, ids, n);
	uint64_t freed = freed_by_dropping(f, ids, n);
	ck_assert_msg(s.exclusive_meta + s.exclusive_data == freed,
		      "exclusive %" PRIu64 " + %" PRIu64 ", dropping frees %" PRIu64,
		      s.exclusive_meta, s.exclusive_data, freed);
}

static void xfix_teardown(struct xfix *f)
{
	trees_detach(f);
	commit(f);
	fsfix_teardown(&f->x);
}

/* Files 0..n-1 of tree `slot`: sizes from one sector to 40 KiB, a few inline. */
static void fill(struct xfix *f, int slot, int n, uint64_t seed)
{
	char name[32];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		put(f, slot, name, 0, i % 7 == 0 ? 100 : 4096 * (1 + (size_t)(i % 10)), seed + i);
	}
}

START_TEST(alone_everything_exclusive)
{
	struct xfix f;
	uint64_t id = id_of(0);

	xfix_setup(&f, "excl-alone");
	tree_new(&f, 0);
	fill(&f, 0, 300, 1);
	commit(&f);
	struct subvol_space s = agree(&f, &id, 1);
	/* Alone, everything it reaches is its own. */
	ck_assert_uint_eq(s.exclusive_meta + s.exclusive_data, s.referenced);
	ck_assert_uint_gt(s.exclusive_data, 300 * 4096);
	ck_assert_uint_gt(s.exclusive_meta, NODESIZE);
	frees_exactly(&f, &id, 1);
	/* The top level: the same, and it is not in any other set. */
	uint64_t top = FS_TREE_ID;
	agree(&f, &top, 1);
	xfix_teardown(&f);
}
END_TEST

START_TEST(fresh_clone_one_root_each)
{
	struct xfix f;
	uint64_t a = id_of(0), b = id_of(1), both[2] = { a, b };

	xfix_setup(&f, "excl-clone");
	tree_new(&f, 0);
	fill(&f, 0, 400, 2);
	commit(&f);
	struct subvol_space whole = agree(&f, &a, 1);
	tree_clone(&f, 0, 1);
	commit(&f);
	struct subvol_space sa = agree(&f, &a, 1), sb = agree(&f, &b, 1);
	/* The tree must be more than a leaf for the test to mean something. */
	ck_assert_uint_gt(whole.exclusive_meta, NODESIZE);
	ck_assert_uint_eq(sa.exclusive_meta, NODESIZE);
	ck_assert_uint_eq(sa.exclusive_data, 0);
	ck_assert_uint_eq(sb.exclusive_meta, NODESIZE);
	ck_assert_uint_eq(sb.exclusive_data, 0);
	/* One root node read each: the shared children are not. */
	struct subvol_space s;
	cowfs_lock(f.x.fs);
	ck_assert_int_eq(cowfs_subvol_space(f.x.fs, &a, 1, false, &s), 0);
	cowfs_unlock(f.x.fs);
	ck_assert_uint_eq(s.nodes_read, 1);
	struct subvol_space pair = agree(&f, both, 2);
	ck_assert_uint_eq(pair.exclusive_meta, whole.exclusive_meta + NODESIZE);
	ck_assert_uint_eq(pair.exclusive_data, whole.exclusive_data);
	frees_exactly(&f, &a, 1);
	frees_exactly(&f, both, 2);
	xfix_teardown(&f);
}
END_TEST

START_TEST(clones_diverge)
{
	struct xfix f;
	uint64_t a = id_of(0), b = id_of(1), both[2] = { a, b };

	xfix_setup(&f, "excl-diverge");
	tree_new(&f, 0);
	fill(&f, 0, 300, 3);
	tree_clone(&f, 0, 1);
	agree_all(&f);
	/* Overwrites on both sides, without a commit first: pending references count. */
	put(&f, 0, "f5", 0, 8192, 100);
	put(&f, 1, "f6", 4096, 4096, 101);
	agree_all(&f);
	commit(&f);
	agree_all(&f);
	frees_exactly(&f, &a, 1);
	/* Deletes: a file gone from one side stays the other's alone. */
	del(&f, 0, "f10");
	del(&f, 1, "f11");
	del(&f, 0, "f12");
	del(&f, 1, "f12");
	commit(&f);
	agree_all(&f);
	frees_exactly(&f, &b, 1);
	/* New files. */
	put(&f, 0, "new-a", 0, 3 * 4096, 102);
	put(&f, 1, "new-b", 0, 5 * 4096, 103);
	commit(&f);
	agree_all(&f);
	/* Reflinks within a tree: an extent both sides had, now twice in one of them. */
	reflink(&f, 0, "f20", "copy-a");
	reflink(&f, 1, "new-b", "copy-b");
	agree_all(&f);
	commit(&f);
	agree_all(&f);
	frees_exactly(&f, &a, 1);
	frees_exactly(&f, &b, 1);
	frees_exactly(&f, both, 2);
	/* Across trees: an extent of a's new file referenced by b too; then b's only copy of
	 * another goes. */
	reflink_across(&f, 0, "new-a", 1, "from-a", 1ull << 30);
	agree_all(&f);
	commit(&f);
	agree_all(&f);
	frees_exactly(&f, &a, 1);
	frees_exactly(&f, both, 2);
	/* A clone of the clone; then the middle one is dropped. */
	tree_clone(&f, 1, 2);
	put(&f, 2, "f30", 0, 4096, 104);
	commit(&f);
	agree_all(&f);
	tree_drop(&f, 1);
	commit(&f);
	agree_all(&f);
	uint64_t ac[2] = { a, id_of(2) };
	frees_exactly(&f, ac, 2);
	xfix_teardown(&f);
}
END_TEST

START_TEST(missing_and_duplicate_ids)
{
	struct xfix f;
	struct subvol_space s;
	uint64_t nope = 300, twice[2] = { id_of(0), id_of(0) }, bad = 6;

	xfix_setup(&f, "excl-ids");
	tree_new(&f, 0);
	fill(&f, 0, 20, 4);
	commit(&f);
	cowfs_lock(f.x.fs);
	ck_assert_int_eq(cowfs_subvol_space(f.x.fs, &nope, 1, false, &s), -ENOENT);
	ck_assert_int_eq(cowfs_subvol_space(f.x.fs, &bad, 1, false, &s), -ENOENT);
	ck_assert_int_eq(cowfs_subvol_space_recount(f.x.fs, &nope, 1, &s), -ENOENT);
	cowfs_unlock(f.x.fs);
	struct subvol_space one = agree(&f, twice, 1), dup = fast(&f, twice, 2);
	ck_assert_uint_eq(one.exclusive_data, dup.exclusive_data);
	ck_assert_uint_eq(one.exclusive_meta, dup.exclusive_meta);
	/* An empty set holds nothing alone. */
	ck_assert_uint_eq(fast(&f, NULL, 0).exclusive_meta, 0);
	xfix_teardown(&f);
}
END_TEST

START_TEST(memory_bound)
{
	struct xfix f;
	struct extent_exclusive e;
	struct btree *t;

	xfix_setup(&f, "excl-mem");
	tree_new(&f, 0);
	fill(&f, 0, 400, 6);
	commit(&f);
	t = &f.r[0]->t;
	cowfs_lock(f.x.fs);
	/* Its 400 data records alone take more than 4 KiB. */
	ck_assert_int_eq(extent_exclusive_of(cowfs_extents(f.x.fs), &t, 1, false, 4096, &e),
			 -ENOMEM);
	ck_assert_int_eq(extent_exclusive_of(cowfs_extents(f.x.fs), &t, 1, false, 1 << 20, &e), 0);
	ck_assert_uint_gt(e.exclusive_data, 300 * 4096);
	ck_assert_int_eq(extent_exclusive_of(cowfs_extents(f.x.fs), &t, 1, true, 4096, &e),
			 -ENOMEM);
	cowfs_unlock(f.x.fs);
	xfix_teardown(&f);
}
END_TEST

/* Every extent item of the extent tree (committed state), as extent_walk gives them. */
struct extent_list {
	struct extent_info v[4096];
	size_t n;
};

static int collect_extent(void *arg, const struct extent_info *e)
{
	struct extent_list *l = arg;

	if (l->n < sizeof(l->v) / sizeof(l->v[0]))
		l->v[l->n++] = *e;
	return 0;
}

/* extent_counter: in ascending order, descending (each a fresh search), and shuffled, the
 * counts extent_refcount gives, pending changes included; -ENOENT for what is no extent. */
START_TEST(counter_matches_refcount)
{
	static struct extent_list l;
	struct xfix f;
	struct extents *x;
	uint64_t rng = 42;

	xfix_setup(&f, "excl-counter");
	tree_new(&f, 0);
	fill(&f, 0, 200, 7);
	tree_clone(&f, 0, 1);
	commit(&f);
	x = cowfs_extents(f.x.fs);
	l.n = 0;
	cowfs_lock(f.x.fs);
	ck_assert_int_eq(extent_walk(x, &(struct extent_walk){ .extent_fn = collect_extent,
							       .arg = &l }), 0);
	cowfs_unlock(f.x.fs);
	ck_assert_uint_gt(l.n, 200);
	/* Pending changes on some of them: overwrites and deletes in one tree, not committed. */
	put(&f, 1, "f3", 0, 4096, 900);
	del(&f, 1, "f4");
	ck_assert_int_eq(file_sync_all(&f.it[1]), 0);
	for (int order = 0; order < 3; order++) {
		struct extent_counter ec;
		cowfs_lock(f.x.fs);
		extent_counter_init(&ec, x);
		for (size_t k = 0; k < l.n; k++) {
			size_t i = order == 0 ? k : order == 1 ? l.n - 1 - k : rng_next(&rng) % l.n;
			uint64_t want, got;
			int rw = extent_refcount(x, l.v[i].start, l.v[i].len, &want);
			int rg = extent_counter_get(&ec, l.v[i].start, l.v[i].len, &got);
			REQUIRE(rw == rg && (rw < 0 || want == got), "extent %" PRIu64 " order %d: %d %"
				PRIu64 " vs %d %" PRIu64, l.v[i].start, order, rw, want, rg, got);
			REQUIRE(extent_counter_get(&ec, l.v[i].start + 1, l.v[i].len, &got) == -ENOENT,
				"no extent at %" PRIu64, l.v[i].start + 1);
		}
		extent_counter_release(&ec);
		cowfs_unlock(f.x.fs);
	}
	xfix_teardown(&f);
}
END_TEST

/* A step of churn: clone, write, delete, reflink or drop, chosen by the seed. */
static void churn_step(struct xfix *f, uint64_t *rng)
{
	uint64_t r = rng_next(rng);
	int slot = (int)(r % NTREES), other = (int)((r >> 8) % NTREES);
	char name[32], name2[32];
	unsigned op = (unsigned)((r >> 16) % 100);

	snprintf(name, sizeof(name), "f%u", (unsigned)((r >> 24) % 60));
	snprintf(name2, sizeof(name2), "f%u", (unsigned)((r >> 32) % 60));
	if (!f->live[slot]) {
		if (f->live[other])
			tree_clone(f, other, slot);
		return;
	}
	if (op < 45) {
		put(f, slot, name, 4096 * ((r >> 40) % 8), 4096 * (1 + (r >> 48) % 6), r);
	} else if (op < 65) {
		if (exists(f, slot, name))
			del(f, slot, name);
	} else if (op < 75) {
		if (exists(f, slot, name) && strcmp(name, name2) != 0) {
			/* Onto a new file: a source of unaligned size cannot cover a longer one. */
			if (exists(f, slot, name2))
				del(f, slot, name2);
			reflink(f, slot, name, name2);
		}
	} else if (op < 85) {
		if (!f->live[other])
			tree_clone(f, slot, other);
	} else if (op < 92) {
		commit(f);
	} else {
		int live = 0;
		for (int i = 0; i < NTREES; i++)
			live += f->live[i];
		if (live > 1)
			tree_drop(f, slot);
	}
}

START_TEST(random_churn)
{
	struct xfix f;
	uint64_t rng = test_seed("random_churn", 0x5eed0000u) + (uint64_t)_i;

	xfix_setup(&f, "excl-churn");
	tree_new(&f, 0);
	fill(&f, 0, 120, 5);
	for (int step = 0; step < 150; step++) {
		churn_step(&f, &rng);
		agree_all(&f);
		if (step % 50 == 49) {
			uint64_t all[NTREES];
			size_t n = 0;
			for (int i = 0; i < NTREES; i++)
				if (f.live[i])
					all[n++] = id_of(i);
			frees_exactly(&f, all, 1);
			frees_exactly(&f, all, n);
		}
	}
	xfix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("exclusive");
	TCase *tc = tcase_create("exclusive");

	tcase_add_test(tc, alone_everything_exclusive);
	tcase_add_test(tc, fresh_clone_one_root_each);
	tcase_add_test(tc, clones_diverge);
	tcase_add_test(tc, missing_and_duplicate_ids);
	tcase_add_test(tc, memory_bound);
	tcase_add_test(tc, counter_matches_refcount);
	tcase_add_loop_test(tc, random_churn, 0, 3);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
