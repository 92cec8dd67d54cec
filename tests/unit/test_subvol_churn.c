/*
 * A seeded churn across subvolumes at the inode layer, against an in-memory model: writes,
 * truncates, creates and unlinks in every live subvolume, clones within a file, snapshots
 * (read-only and writable) of any live subvolume (snapshots of snapshots included), renames of
 * subvolumes, deletions of subvolumes in the middle of it. After every step every file of every
 * live subvolume reads back as the model says; every few steps a commit and both checkers;
 * now and then a close and reopen. COWFS_TEST_SEED overrides the seed.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/inode/subvol.h"
#include "fs/super/fsck.h"
#include "tests/support/fixture.h"
#include "tests/support/ifix.h"

#define IMG (256ull << 20)
#define ROOT INODE_ROOT_INO
#define FILES 6
#define FILE_MAX (96u << 10)
#define SUBVOLS_MAX 12
#define STEPS 3000
#define PAGE 4096u

struct mfile {
	bool exists;
	uint64_t ino;
	uint32_t size;
	uint8_t *data;           /* FILE_MAX bytes */
};

struct msub {
	bool live;
	bool rdonly;
	uint64_t id;
	char name[32];           /* its entry in the top level's root directory */
	struct inode_tree it;
	bool open;
	struct mfile f[FILES];
};

struct churn {
	struct ifix fx;
	uint64_t rng;
	struct msub s[SUBVOLS_MAX];
	unsigned made;           /* names handed out */
	unsigned snapshots, deletions, writes, clones, clones_across, drop_steps, dropped, space_checks;
};

static struct inode_tree *tree_of(struct churn *c, struct msub *m)
{
	if (m->id == FS_TREE_ID)
		return &c->fx.it;
	if (!m->open) {
		struct cowfs_root *r;
		cowfs_lock(c->fx.x.fs);
		ck_assert_int_eq(cowfs_tree_open(c->fx.x.fs, m->id, &r), 0);
		cowfs_unlock(c->fx.x.fs);
		inode_tree_init(&m->it, c->fx.x.fs, r);
		m->it.read_only = m->rdonly;
		m->open = true;
	}
	return &m->it;
}

static void close_trees(struct churn *c)
{
	for (int i = 1; i < SUBVOLS_MAX; i++)
		if (c->s[i].open) {
			ck_assert_int_eq(inode_tree_destroy(&c->s[i].it), 0);
			c->s[i].open = false;
		}
}

static unsigned pick(struct churn *c, unsigned n)
{
	return (unsigned)(rng_next(&c->rng) % n);
}

static struct msub *pick_live(struct churn *c)
{
	for (;;) {
		struct msub *m = &c->s[pick(c, SUBVOLS_MAX)];
		if (m->live)
			return m;
	}
}

static void verify_file(struct churn *c, struct msub *m, int i)
{
	struct mfile *f = &m->f[i];
	struct inode_tree *it = tree_of(c, m);
	char name[16];
	struct cowfs_attr a;
	int ret;

	snprintf(name, sizeof(name), "f%d", i);
	ret = inode_lookup(it, ROOT, name, strlen(name), &a);
	if (!f->exists) {
		ck_assert_msg(ret == -ENOENT, "subvol %" PRIu64 " %s: %d, expected ENOENT",
			      m->id, name, ret);
		return;
	}
	ck_assert_msg(ret == 0, "subvol %" PRIu64 " %s: lookup %d", m->id, name, ret);
	ck_assert_uint_eq(a.ino, f->ino);
	ck_assert_uint_eq(a.subvol, m->id);
	ck_assert_msg(a.size == f->size, "subvol %" PRIu64 " %s: size %" PRIu64 ", model %u",
		      m->id, name, a.size, f->size);
	uint8_t *buf = malloc(FILE_MAX);
	ck_assert_int_eq(file_read(it, f->ino, buf, f->size, 0), (ssize_t)f->size);
	ck_assert_msg(memcmp(buf, f->data, f->size) == 0, "subvol %" PRIu64 " %s differs",
		      m->id, name);
	free(buf);
}

static void verify_all(struct churn *c)
{
	for (int s = 0; s < SUBVOLS_MAX; s++)
		if (c->s[s].live)
			for (int i = 0; i < FILES; i++)
				verify_file(c, &c->s[s], i);
}

static void op_write(struct churn *c, struct msub *m)
{
	struct mfile *f = &m->f[pick(c, FILES)];
	struct inode_tree *it = tree_of(c, m);
	uint32_t off = pick(c, FILE_MAX / PAGE) * PAGE + (pick(c, 2) ? pick(c, PAGE) : 0);
	uint32_t len = 1 + pick(c, 5 * PAGE);
	uint8_t *buf;

	if (!f->exists)
		return;
	if (off + len > FILE_MAX)
		len = FILE_MAX - off;
	buf = malloc(len);
	rng_fill(buf, len, rng_next(&c->rng));
	ssize_t ret = file_write(it, f->ino, buf, len, off, 0);
	if (m->rdonly) {
		ck_assert_int_eq(ret, -EROFS);
	} else {
		ck_assert_int_eq(ret, (ssize_t)len);
		memcpy(f->data + off, buf, len);
		if (off + len > f->size)
			f->size = off + len;
		c->writes++;
	}
	free(buf);
}

static void op_truncate(struct churn *c, struct msub *m)
{
	struct mfile *f = &m->f[pick(c, FILES)];
	struct cowfs_attr a = { .size = pick(c, FILE_MAX) };
	int ret;

	if (!f->exists)
		return;
	ret = inode_setattr(tree_of(c, m), f->ino, INODE_SET_SIZE, &a);
	if (m->rdonly) {
		ck_assert_int_eq(ret, -EROFS);
		return;
	}
	ck_assert_int_eq(ret, 0);
	/* The model keeps every byte past end of file zero. */
	if (a.size < f->size)
		memset(f->data + a.size, 0, f->size - a.size);
	f->size = (uint32_t)a.size;
}

static void op_create_unlink(struct churn *c, struct msub *m)
{
	int i = (int)pick(c, FILES);
	struct mfile *f = &m->f[i];
	struct inode_tree *it = tree_of(c, m);
	char name[16];
	struct cowfs_attr a;
	int ret;

	snprintf(name, sizeof(name), "f%d", i);
	if (f->exists) {
		ret = inode_unlink(it, ROOT, name, strlen(name));
		ck_assert_int_eq(ret, m->rdonly ? -EROFS : 0);
		if (!m->rdonly) {
			f->exists = false;
			memset(f->data, 0, FILE_MAX);
		}
		return;
	}
	ret = inode_create(it, ROOT, name, strlen(name), S_IFREG | 0644, 0, 0, 0, &a);
	ck_assert_int_eq(ret, m->rdonly ? -EROFS : 0);
	if (!m->rdonly) {
		f->exists = true;
		f->ino = a.ino;
		f->size = 0;
	}
}

/*
 * Preallocate a range, or punch one: writes into preallocated space go back in place only
 * where nothing else reaches it, so after a snapshot they must not show in the snapshot.
 */
static void op_fallocate(struct churn *c, struct msub *m)
{
	struct mfile *f = &m->f[pick(c, FILES)];
	uint32_t off = pick(c, FILE_MAX / PAGE) * PAGE, len = (1 + pick(c, 8)) * PAGE;
	bool punch = pick(c, 3) == 0;
	int ret;

	if (!f->exists)
		return;
	if (off + len > FILE_MAX)
		len = FILE_MAX - off;
	ret = file_fallocate(tree_of(c, m), f->ino, punch ? 0x3 /* PUNCH_HOLE | KEEP_SIZE */ : 0,
			     off, len);
	if (m->rdonly) {
		ck_assert_int_eq(ret, -EROFS);
		return;
	}
	ck_assert_msg(ret == 0, "fallocate: %d", ret);
	if (punch) {
		uint32_t end = off + len < f->size ? off + len : f->size;
		if (off < end)
			memset(f->data + off, 0, end - off);
	} else if (off + len > f->size) {
		f->size = off + len;
	}
}

/* A clone of one file's pages onto another's (or its own, elsewhere): in one subvolume, or
 * from any live subvolume into `m` (reflinks across subvolumes share extents too). */
static void op_clone(struct churn *c, struct msub *m)
{
	struct msub *from = pick(c, 2) ? m : pick_live(c);
	struct mfile *src = &from->f[pick(c, FILES)], *dst = &m->f[pick(c, FILES)];
	uint32_t pages = src->size / PAGE;
	uint32_t off_in = pages ? pick(c, pages) * PAGE : 0, off_out = pick(c, FILE_MAX / PAGE) * PAGE;
	uint32_t len = (1 + pick(c, 4)) * PAGE;
	uint64_t cloned = 0;
	int ret;

	if (!src->exists || !dst->exists || m->rdonly || off_in + len > src->size ||
	    off_out + len > FILE_MAX || (src == dst && off_in < off_out + len && off_out < off_in + len))
		return;
	ret = file_clone_range_between(tree_of(c, from), src->ino, off_in, tree_of(c, m), dst->ino,
				       off_out, len, &cloned);
	ck_assert_msg(ret == 0, "clone: %d", ret);
	ck_assert_uint_eq(cloned, len);
	memmove(dst->data + off_out, src->data + off_in, len);
	c->clones_across += from != m;
	if (off_out + len > dst->size) {
		if (off_out > dst->size)
			memset(dst->data + dst->size, 0, off_out - dst->size);
		dst->size = off_out + len;
	}
	c->clones++;
}

static struct msub *free_slot(struct churn *c)
{
	for (int i = 1; i < SUBVOLS_MAX; i++)
		if (!c->s[i].live && !c->s[i].open)
			return &c->s[i];
	return NULL;
}

static void op_snapshot(struct churn *c, struct msub *src)
{
	struct msub *n = free_slot(c);
	bool ro = pick(c, 3) == 0;
	uint64_t id;

	if (!n)
		return;
	snprintf(n->name, sizeof(n->name), "s%u", c->made++);
	ck_assert_int_eq(subvol_snapshot(tree_of(c, src), &c->fx.it, ROOT, n->name,
					 strlen(n->name), ro, &id), 0);
	n->live = true;
	n->rdonly = ro;
	n->id = id;
	for (int i = 0; i < FILES; i++) {
		uint8_t *keep = n->f[i].data;
		n->f[i] = src->f[i];
		n->f[i].data = keep;
		memcpy(keep, src->f[i].data, FILE_MAX);
	}
	c->snapshots++;
}

static void op_delete(struct churn *c)
{
	struct msub *m = pick_live(c);
	uint64_t id;

	if (m->id == FS_TREE_ID)
		return;
	ck_assert_int_eq(subvol_unlink(&c->fx.it, ROOT, m->name, strlen(m->name), 0, &id), 0);
	ck_assert_uint_eq(id, m->id);
	m->live = false;   /* its inode_tree stays open until the next reopen */
	c->deletions++;
}

static void op_rename(struct churn *c)
{
	struct msub *m = pick_live(c);
	char name[32];

	if (m->id == FS_TREE_ID)
		return;
	snprintf(name, sizeof(name), "r%u", c->made++);
	ck_assert_int_eq(inode_rename(&c->fx.it, ROOT, m->name, strlen(m->name), ROOT, name,
				      strlen(name), 0), 0);
	memcpy(m->name, name, sizeof(name));
}

/* A bounded step of dropping some deleted subvolume, as the cleaner runs them. */
static void op_drop_step(struct churn *c)
{
	struct cowfs_trans *tx;
	uint64_t id;
	bool done = false;

	cowfs_lock(c->fx.x.fs);
	int ret = cowfs_subvol_next_deleting(c->fx.x.fs, pick(c, 2) ? 0 : SUBVOL_FIRST_ID + pick(c, 64), &id);
	cowfs_unlock(c->fx.x.fs);
	if (ret == -ENOENT)
		return;
	ck_assert_int_eq(ret, 0);
	for (int i = 1; i < SUBVOLS_MAX; i++)
		if (c->s[i].open && !c->s[i].live && c->s[i].id == id)
			return;   /* its inode_tree is still open: the cleaner waits for that too */
	tx = cowfs_trans_begin(c->fx.x.fs, ALLOC_PRIVILEGED);
	ret = cowfs_subvol_drop_step(tx, id, 1 + pick(c, 40), &done);
	ck_assert_int_eq(cowfs_trans_end(tx, ret), 0);
	c->drop_steps++;
	c->dropped += done;
}

/* Exclusive space of each live subvolume, of a random pair, of them all: the fast figure is
 * the brute-force recount's. */
static void check_space(struct churn *c)
{
	uint64_t ids[SUBVOLS_MAX];
	size_t n = 0;

	for (int s = 0; s < SUBVOLS_MAX; s++)
		if (c->s[s].live)
			ids[n++] = c->s[s].id;
	for (size_t i = 0; i <= n + 1; i++) {
		const uint64_t *set = i < n ? &ids[i] : ids;
		size_t k = i < n ? 1 : (i == n ? n : (n > 1 ? 2 : 1));
		struct subvol_space fast, slow;
		cowfs_lock(c->fx.x.fs);
		ck_assert_int_eq(cowfs_subvol_space(c->fx.x.fs, set, k, true, &fast), 0);
		ck_assert_int_eq(cowfs_subvol_space_recount(c->fx.x.fs, set, k, &slow), 0);
		cowfs_unlock(c->fx.x.fs);
		ck_assert_msg(fast.exclusive_data == slow.exclusive_data &&
			      fast.exclusive_meta == slow.exclusive_meta &&
			      fast.referenced == slow.referenced,
			      "set of %zu from %" PRIu64 ": fast %" PRIu64 "+%" PRIu64 " ref %" PRIu64
			      ", recount %" PRIu64 "+%" PRIu64 " ref %" PRIu64, k, set[0],
			      fast.exclusive_data, fast.exclusive_meta, fast.referenced,
			      slow.exclusive_data, slow.exclusive_meta, slow.referenced);
		c->space_checks++;
	}
}

static void commit_and_check(struct churn *c)
{
	check_space(c);
	ck_assert_int_eq(cowfs_commit(c->fx.x.fs), 0);
	ifix_check(&c->fx);
	check_space(c);
}

START_TEST(churn_across_subvolumes)
{
	struct churn *c = calloc(1, sizeof(*c));

	c->rng = test_seed("subvol_churn", 4242);
	ifix_setup(&c->fx, "subvol_churn", IMG, 0);
	for (int s = 0; s < SUBVOLS_MAX; s++)
		for (int i = 0; i < FILES; i++)
			c->s[s].f[i].data = calloc(1, FILE_MAX);
	c->s[0].live = true;
	c->s[0].id = FS_TREE_ID;
	for (int step = 0; step < STEPS; step++) {
		struct msub *m = pick_live(c);
		unsigned what = pick(c, 100);
		if (what < 40)
			op_write(c, m);
		else if (what < 50)
			op_truncate(c, m);
		else if (what < 62)
			op_create_unlink(c, m);
		else if (what < 74)
			op_clone(c, m);
		else if (what < 78)
			op_fallocate(c, m);
		else if (what < 85)
			op_snapshot(c, m);
		else if (what < 88)
			op_delete(c);
		else if (what < 90)
			op_drop_step(c);
		else if (what < 95)
			op_rename(c);
		else if (what < 97 && !m->rdonly) {
			/* A read-only snapshot made writable, or the other way round. */
			struct msub *t = pick_live(c);
			if (t->id == FS_TREE_ID)
				continue;   /* the top level holds every entry: keep it writable */
			struct cowfs_trans *tx = cowfs_trans_begin(c->fx.x.fs, ALLOC_NORMAL);
			ck_assert_int_eq(cowfs_subvol_set_flags(tx, t->id, t->rdonly ? 0 : SUBVOL_RDONLY), 0);
			ck_assert_int_eq(cowfs_trans_end(tx, 0), 0);
			t->rdonly = !t->rdonly;
			tree_of(c, t)->read_only = t->rdonly;
		} else {
			close_trees(c);
			ifix_reopen(&c->fx);
		}
		verify_all(c);
		if (step % 50 == 49)
			commit_and_check(c);
	}
	fprintf(stderr, "subvol churn: %d steps, %u writes, %u clones (%u across subvolumes), "
		"%u snapshots, %u deletions, %u drop steps (%u trees gone), %u space checks\n",
		STEPS, c->writes, c->clones, c->clones_across,
		c->snapshots, c->deletions, c->drop_steps, c->dropped, c->space_checks);
	close_trees(c);
	commit_and_check(c);
	ifix_reopen(&c->fx);
	verify_all(c);
	close_trees(c);
	for (int s = 0; s < SUBVOLS_MAX; s++)
		for (int i = 0; i < FILES; i++)
			free(c->s[s].f[i].data);
	ifix_teardown(&c->fx);
	free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("subvol_churn");
	TCase *tc = tcase_create("subvol_churn");

	tcase_add_test(tc, churn_across_subvolumes);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
