/*
 * Space accounting (space.h): a file alone, a clone pair alone and together, a directory tree
 * with hard links and overlapping adds, partial references (pinned bytes), the memory bound,
 * and a random workload whose figures are recomputed from a model: every file extent item of
 * every file, grouped by extent, with the refcount taken as the number of items (which also
 * checks extent_refcount, pending references included, against the items themselves).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/inode.h"
#include "fs/inode/space.h"
#include "tests/support/fixture.h"
#include "tests/support/ifix.h"

#define ROOT INODE_ROOT_INO
#define KiB (1ull << 10)
#define MiB (1ull << 20)

/* The figures of the set of `n` inodes. */
static struct space_figures measure(struct ifix *f, const uint64_t *inos, size_t n)
{
	struct space_set *s = space_set_new(&f->it);
	struct space_figures fig;

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(space_set_add(s, inos[i]), 0);
	ck_assert_int_eq(space_set_result(s, &fig), 0);
	space_set_free(s);
	return fig;
}

static struct space_figures measure1(struct ifix *f, uint64_t ino)
{
	return measure(f, &ino, 1);
}

static void expect_figures(struct space_figures got, uint64_t files, uint64_t extents,
			   uint64_t referenced, uint64_t exclusive, uint64_t shared, uint64_t pinned)
{
	ck_assert_uint_eq(got.files, files);
	ck_assert_uint_eq(got.extents, extents);
	ck_assert_uint_eq(got.referenced, referenced);
	ck_assert_uint_eq(got.exclusive, exclusive);
	ck_assert_uint_eq(got.shared, shared);
	ck_assert_uint_eq(got.pinned, pinned);
}

static struct fmap_seg seg_at(struct ifix *f, uint64_t ino, uint64_t off)
{
	struct fmap_seg seg;

	cowfs_lock(f->x.fs);
	ck_assert_int_eq(fmap_lookup(&f->it, ino, off, UINT64_MAX, &seg), 0);
	cowfs_unlock(f->x.fs);
	return seg;
}

/* ---- the model ------------------------------------------------------------------------------ */

struct model_ref {
	uint64_t start, len;      /* the extent */
	uint64_t off, mapped;     /* what the item maps of it */
	bool member;
};

struct model {
	struct model_ref *r;
	size_t n, cap;
};

static void model_add_file(struct ifix *f, struct model *m, uint64_t ino, bool member)
{
	uint64_t off = 0;

	cowfs_lock(f->x.fs);
	for (;;) {
		struct fmap_seg seg;
		ck_assert_int_eq(fmap_lookup(&f->it, ino, off, UINT64_MAX, &seg), 0);
		if (seg.kind != FMAP_HOLE) {
			if (m->n == m->cap) {
				m->cap = m->cap ? 2 * m->cap : 256;
				m->r = realloc(m->r, m->cap * sizeof(*m->r));
			}
			m->r[m->n++] = (struct model_ref){ seg.extent_start, seg.extent_len,
							   seg.disk - seg.extent_start, seg.len,
							   member };
		}
		if (seg.len >= UINT64_MAX - off)
			break;
		off += seg.len;
	}
	cowfs_unlock(f->x.fs);
}

/* The figures for the members among `n` files (all the tree has), from their items alone:
 * an extent's refcount is the number of items that reference it. */
static struct space_figures model_figures(struct ifix *f, const uint64_t *inos,
					  const bool *member, size_t n)
{
	struct model m = { 0 };
	struct space_figures fig = { 0 };
	bool *done;

	for (size_t i = 0; i < n; i++) {
		model_add_file(f, &m, inos[i], member[i]);
		fig.files += member[i];
	}
	done = calloc(m.n + 1, sizeof(*done));
	for (size_t i = 0; i < m.n; i++) {
		uint64_t refs = 0, mine = 0, mapped = 0, covered = 0;
		uint64_t sectors = m.r[i].len / 4096;
		uint8_t *map = calloc(sectors, 1);
		if (done[i])
			goto next;
		for (size_t j = i; j < m.n; j++) {
			if (m.r[j].start != m.r[i].start)
				continue;
			ck_assert_uint_eq(m.r[j].len, m.r[i].len);
			done[j] = true;
			refs++;
			if (!m.r[j].member)
				continue;
			mine++;
			mapped += m.r[j].mapped;
			for (uint64_t s = m.r[j].off / 4096; s < (m.r[j].off + m.r[j].mapped) / 4096; s++) {
				covered += !map[s];
				map[s] = 1;
			}
		}
		if (!mine)
			goto next;
		fig.extents++;
		fig.referenced += mapped;
		if (mine == refs) {
			fig.exclusive += m.r[i].len;
			fig.pinned += m.r[i].len - covered * 4096;
		} else {
			fig.shared += mapped;
		}
next:
		free(map);
	}
	free(done);
	free(m.r);
	return fig;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* Dirty data is written back first: the figures are of what is on disk. */
START_TEST(file_alone)
{
	struct ifix f;

	ifix_setup(&f, "space-alone", 64 * MiB, 16384);
	uint64_t a = ifix_mk(&f, ROOT, "a", S_IFREG | 0644), e = ifix_mk(&f, ROOT, "e", S_IFREG | 0644);
	uint64_t l = ifix_mk(&f, ROOT, "fifo", S_IFIFO | 0644);
	ifix_write_pattern(&f, a, 1 * MiB, 0, 1);
	expect_figures(measure1(&f, a), 1, 1, 1 * MiB, 1 * MiB, 0, 0);
	ck_assert_uint_eq(inode_dirty_bytes(&f.it, a), 0);
	/* Preallocated space counts like data; an empty file and a FIFO hold nothing. */
	ck_assert_int_eq(file_fallocate(&f.it, a, FALLOC_FL_KEEP_SIZE, 4 * MiB, 256 * KiB), 0);
	expect_figures(measure1(&f, a), 1, 2, 1 * MiB + 256 * KiB, 1 * MiB + 256 * KiB, 0, 0);
	expect_figures(measure1(&f, e), 1, 0, 0, 0, 0, 0);
	expect_figures(measure1(&f, l), 1, 0, 0, 0, 0, 0);
	/* The same file twice is counted once. */
	uint64_t twice[] = { a, a };
	expect_figures(measure(&f, twice, 2), 1, 2, 1 * MiB + 256 * KiB, 1 * MiB + 256 * KiB, 0, 0);
	struct space_set *s = space_set_new(&f.it);
	ck_assert_int_eq(space_set_add(s, 9999), -ENOENT);
	space_set_free(s);
	ifix_teardown(&f);
}
END_TEST

/* A clone pair: each alone shares all it maps; together they own the extent. */
START_TEST(clone_pair)
{
	struct ifix f;

	ifix_setup(&f, "space-clone", 64 * MiB, 16384);
	uint64_t a = ifix_mk(&f, ROOT, "a", S_IFREG | 0644), b = ifix_mk(&f, ROOT, "b", S_IFREG | 0644);
	ifix_write_pattern(&f, a, 1 * MiB, 0, 2);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, b, 0, 1 * MiB), (ssize_t)MiB);
	for (int pass = 0; pass < 2; pass++) {     /* pending, then committed */
		expect_figures(measure1(&f, a), 1, 1, 1 * MiB, 0, 1 * MiB, 0);
		expect_figures(measure1(&f, b), 1, 1, 1 * MiB, 0, 1 * MiB, 0);
		uint64_t both[] = { a, b };
		expect_figures(measure(&f, both, 2), 2, 1, 2 * MiB, 1 * MiB, 0, 0);
		ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	}
	/* The root directory holds both. */
	expect_figures(measure1(&f, ROOT), 3, 1, 2 * MiB, 1 * MiB, 0, 0);
	ifix_teardown(&f);
}
END_TEST

/* A tree with hard links (inside it and across trees) and a directory of more entries than
 * one batch: every inode once. */
START_TEST(tree_with_hard_links)
{
	struct ifix f;
	struct cowfs_attr at;

	ifix_setup(&f, "space-tree", 128 * MiB, 16384);
	uint64_t d1 = ifix_mk(&f, ROOT, "d1", S_IFDIR | 0755), d2 = ifix_mk(&f, ROOT, "d2", S_IFDIR | 0755);
	uint64_t sub = ifix_mk(&f, d1, "sub", S_IFDIR | 0755);
	uint64_t f1 = ifix_mk(&f, d1, "f1", S_IFREG | 0644), f2 = ifix_mk(&f, d1, "f2", S_IFREG | 0644);
	uint64_t f3 = ifix_mk(&f, sub, "f3", S_IFREG | 0644);
	ck_assert_int_eq(inode_link(&f.it, f1, d1, "f1-again", 8, &at), 0);
	ck_assert_int_eq(inode_link(&f.it, f1, d2, "f1-there", 8, &at), 0);
	ck_assert_int_eq(inode_link(&f.it, f3, d2, "f3-there", 8, &at), 0);
	ifix_write_pattern(&f, f1, 100 * KiB, 0, 3);
	ifix_write_pattern(&f, f2, 200 * KiB, 0, 4);
	ifix_write_pattern(&f, f3, 300 * KiB, 0, 5);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	expect_figures(measure1(&f, d1), 5, 3, 600 * KiB, 600 * KiB, 0, 0);
	expect_figures(measure1(&f, d2), 3, 2, 400 * KiB, 400 * KiB, 0, 0);
	uint64_t trees[] = { d1, d2, sub, f1 };
	expect_figures(measure(&f, trees, 4), 6, 3, 600 * KiB, 600 * KiB, 0, 0);

	/* Many entries: read in batches. */
	uint64_t big = ifix_mk(&f, ROOT, "big", S_IFDIR | 0755);
	for (int i = 0; i < 600; i++) {
		char name[32];
		snprintf(name, sizeof(name), "file-%d", i);
		uint64_t ino = ifix_mk(&f, big, name, S_IFREG | 0644);
		ifix_write_pattern(&f, ino, 4 * KiB, 0, 100 + (uint64_t)i);
		if (i % 3 != 0)
			continue;
		snprintf(name, sizeof(name), "link-%d", i);     /* a link in the same directory */
		ck_assert_int_eq(inode_link(&f.it, ino, big, name, strlen(name), &at), 0);
	}
	expect_figures(measure1(&f, big), 601, 600, 600 * 4 * KiB, 600 * 4 * KiB, 0, 0);
	expect_figures(measure1(&f, ROOT), 1 + 6 + 601, 603, 600 * KiB + 600 * 4 * KiB,
		       600 * KiB + 600 * 4 * KiB, 0, 0);
	ifix_teardown(&f);
}
END_TEST

/*
 * Partial references: 1 MiB written to a, its first half cloned to b, a's second half
 * overwritten: the old extent's second half is mapped by nobody but stays allocated (pinned)
 * for as long as a or b maps its first half.
 */
START_TEST(partial_references)
{
	struct ifix f;

	ifix_setup(&f, "space-partial", 64 * MiB, 16384);
	uint64_t a = ifix_mk(&f, ROOT, "a", S_IFREG | 0644), b = ifix_mk(&f, ROOT, "b", S_IFREG | 0644);
	ifix_write_pattern(&f, a, 1 * MiB, 0, 6);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	ck_assert_uint_eq(seg_at(&f, a, 0).extent_len, 1 * MiB);
	ck_assert_int_eq(file_copy_range(&f.it, a, 0, b, 0, 512 * KiB), (ssize_t)(512 * KiB));
	uint64_t both[] = { a, b };
	/* Before the overwrite: a maps all of it, so nothing is pinned. */
	expect_figures(measure(&f, both, 2), 2, 1, 1 * MiB + 512 * KiB, 1 * MiB, 0, 0);
	ifix_write_pattern(&f, a, 512 * KiB, 512 * KiB, 7);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);
	/* a: the old extent (shared with b) for its first half, a new one of its own. */
	expect_figures(measure1(&f, a), 1, 2, 1 * MiB, 512 * KiB, 512 * KiB, 0);
	expect_figures(measure1(&f, b), 1, 1, 512 * KiB, 0, 512 * KiB, 0);
	expect_figures(measure(&f, both, 2), 2, 2, 1 * MiB + 512 * KiB, 1 * MiB + 512 * KiB, 0,
		       512 * KiB);
	/* a's first half overwritten too: b alone holds the old extent, half of it pinned. */
	ifix_write_pattern(&f, a, 512 * KiB, 0, 8);
	ck_assert_int_eq(cowfs_commit(f.x.fs), 0);    /* a's dirty pages still hold the extent */
	expect_figures(measure1(&f, b), 1, 1, 512 * KiB, 1 * MiB, 0, 512 * KiB);
	ifix_teardown(&f);
}
END_TEST

/* A set that needs more memory than the mount's bound: -ENOMEM. */
START_TEST(memory_bound)
{
	struct ifix f;
	struct space_figures fig;

	ifix_setup(&f, "space-enomem", 64 * MiB, 16384);
	uint64_t a = ifix_mk(&f, ROOT, "a", S_IFREG | 0644);
	for (uint64_t i = 0; i < 200; i++)
		ifix_write_pattern(&f, a, 4 * KiB, i * 8 * KiB, 9 + i);     /* 200 extents */
	size_t bound = f.x.fs->cache_bytes;
	/* Room for the inode set (64 slots) and 100 records. */
	f.x.fs->cache_bytes = 64 * 8 + 100 * SPACE_RECORD_BYTES;
	struct space_set *s = space_set_new(&f.it);
	f.x.fs->cache_bytes = bound;
	ck_assert_int_eq(space_set_add(s, a), -ENOMEM);
	space_set_free(s);
	/* Exactly enough: 200 records. */
	f.x.fs->cache_bytes = 64 * 8 + 200 * SPACE_RECORD_BYTES;
	s = space_set_new(&f.it);
	f.x.fs->cache_bytes = bound;
	ck_assert_int_eq(space_set_add(s, a), 0);
	ck_assert_int_eq(space_set_result(s, &fig), 0);
	space_set_free(s);
	expect_figures(fig, 1, 200, 200 * 4 * KiB, 200 * 4 * KiB, 0, 0);
	ifix_teardown(&f);
}
END_TEST

#define NFILES 6

static void random_step(struct ifix *f, const uint64_t *inos, uint64_t *rng)
{
	uint64_t r = rng_next(rng);
	uint64_t x = inos[r % NFILES], y = inos[(r >> 8) % NFILES];
	uint64_t off = (rng_next(rng) % 128) * 4 * KiB, len = (1 + rng_next(rng) % 32) * 4 * KiB;
	struct cowfs_attr at = { .size = rng_next(rng) % (512 * KiB) };

	switch ((r >> 16) % 8) {
	case 0: case 1:
		ifix_write_pattern(f, x, len - (r >> 24) % 3000, off + (r >> 32) % 2, r);
		break;
	case 2: case 3:
		if (x != y)
			ck_assert_int_ge(file_copy_range(&f->it, x, off, y,
							 (rng_next(rng) % 128) * 4 * KiB, len), 0);
		break;
	case 4:
		ck_assert_int_eq(file_fallocate(&f->it, x, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						off, len), 0);
		break;
	case 5:
		ck_assert_int_eq(inode_setattr(&f->it, x, INODE_SET_SIZE, &at), 0);
		break;
	case 6:
		ck_assert_int_eq(file_fallocate(&f->it, x, FALLOC_FL_KEEP_SIZE, off, len), 0);
		break;
	default:
		ck_assert_int_eq(cowfs_commit(f->x.fs), 0);
		break;
	}
}

/* Random writes, clones, punches, truncates and commits; after every few, the figures of a
 * random subset of the files equal the model's. */
START_TEST(random_against_model)
{
	struct ifix f;
	uint64_t rng = test_seed("space_random", 1111), inos[NFILES];

	ifix_setup(&f, "space-random", 256 * MiB, 16384);
	for (int i = 0; i < NFILES; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		inos[i] = ifix_mk(&f, ROOT, name, S_IFREG | 0644);
	}
	uint64_t seen_shared = 0, seen_pinned = 0, seen_exclusive = 0;
	for (int step = 0; step < 400; step++) {
		random_step(&f, inos, &rng);
		if (step % 10 != 9)
			continue;
		bool member[NFILES];
		uint64_t set[NFILES];
		size_t n = 0;
		uint64_t pick = rng_next(&rng);
		for (int i = 0; i < NFILES; i++) {
			member[i] = (pick >> i) & 1;
			if (member[i])
				set[n++] = inos[i];
		}
		struct space_figures got = measure(&f, set, n);    /* writes the members back */
		struct space_figures want = model_figures(&f, inos, member, NFILES);
		ck_assert_msg(!memcmp(&got, &want, sizeof(got)),
			      "step %d: files %" PRIu64 "/%" PRIu64 " extents %" PRIu64 "/%" PRIu64
			      " referenced %" PRIu64 "/%" PRIu64 " exclusive %" PRIu64 "/%" PRIu64
			      " shared %" PRIu64 "/%" PRIu64 " pinned %" PRIu64 "/%" PRIu64, step,
			      got.files, want.files, got.extents, want.extents, got.referenced,
			      want.referenced, got.exclusive, want.exclusive, got.shared, want.shared,
			      got.pinned, want.pinned);
		seen_shared += got.shared != 0;
		seen_pinned += got.pinned != 0;
		seen_exclusive += got.exclusive != 0;
	}
	/* The workload is only a test if it made every kind of figure. */
	ck_assert_msg(seen_shared && seen_pinned && seen_exclusive, "shared %" PRIu64 " pinned %"
		      PRIu64 " exclusive %" PRIu64, seen_shared, seen_pinned, seen_exclusive);
	ifix_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("space");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, file_alone);
	tcase_add_test(tc, clone_pair);
	tcase_add_test(tc, tree_with_hard_links);
	tcase_add_test(tc, partial_references);
	tcase_add_test(tc, memory_bound);
	tcase_add_test(tc, random_against_model);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
