/*
 * B+tree persistence and corruption: trees written, reopened cold and read back across
 * generations; and images damaged on disk (flipped bytes in headers, bodies and checksums,
 * misdirected and lost writes, a seeded sweep of random flips). A damaged node must make every
 * read through it fail with -EIO, naming the block through the report hook, and leave the rest
 * of the tree readable: never wrong data, never a crash.
 *
 * Randomized parts are seeded: each prints its seed, and COWFS_TEST_SEED overrides it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/btree/node.h"
#include "fs/btree/view.h"
#include "fs/lib/csum.h"
#include "tests/support/fixture.h"

#define OWNER 5
#define IMG_SIZE (512ull << 20)

static uint8_t got[BT_MAX_NODESIZE];
static uint8_t want[BT_MAX_NODESIZE];

/* Item `id` has key (id >> 2, id & 3, id): keys sort in id order. */
static struct bt_key id_key(uint64_t id)
{
	return (struct bt_key){ id >> 2, (uint8_t)(id & 3), id };
}

/* Payload of item `id` in version `ver`. */
static void gen_data(uint8_t *d, uint64_t id, uint32_t ver, uint32_t len)
{
	uint64_t s = id * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)ver << 40) ^ len, x = 0;

	for (uint32_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = rng_next(&s);
		d[i] = (uint8_t)(x >> (i % 8 * 8));
	}
}

/* ---- the model: which ids are present, with what size and version ------------------------ */

struct pmodel {
	uint64_t cap;
	bool *present;
	uint32_t *len, *ver;
};

static void model_init(struct pmodel *m, uint64_t cap)
{
	m->cap = cap;
	m->present = calloc(cap, sizeof(*m->present));
	m->len = calloc(cap, sizeof(*m->len));
	m->ver = calloc(cap, sizeof(*m->ver));
	ck_assert(m->present && m->len && m->ver);
}

static void model_free(struct pmodel *m)
{
	free(m->present);
	free(m->len);
	free(m->ver);
}

static uint64_t model_count(const struct pmodel *m)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < m->cap; i++)
		n += m->present[i];
	return n;
}

static void model_insert(struct fixture *f, struct btree *t, struct pmodel *m, uint64_t id,
			 uint32_t len)
{
	struct bt_key k = id_key(id);

	ck_assert(!m->present[id]);
	gen_data(want, id, m->ver[id], len);
	int ret = bt_insert(&f->tx, t, &k, want, len);
	ck_assert_msg(ret == 0, "insert of id %" PRIu64 " (%u bytes) returned %d", id, len, ret);
	m->present[id] = true;
	m->len[id] = len;
}

static void assert_item(struct btree *t, const struct pmodel *m, uint64_t id)
{
	struct bt_key k = id_key(id);
	uint32_t len = UINT32_MAX;
	int ret = bt_lookup(t, &k, got, sizeof(got), &len);

	if (!m->present[id]) {
		ck_assert_msg(ret == -ENOENT, "lookup of absent id %" PRIu64 " returned %d", id, ret);
		return;
	}
	ck_assert_msg(ret == 0, "lookup of id %" PRIu64 " returned %d", id, ret);
	ck_assert_msg(len == m->len[id], "id %" PRIu64 ": %u bytes, want %u", id, len, m->len[id]);
	gen_data(want, id, m->ver[id], len);
	ck_assert_msg(memcmp(got, want, len) == 0, "id %" PRIu64 " has wrong content", id);
}

static void assert_cursor_item(struct bt_cursor *c, const struct pmodel *m, uint64_t id)
{
	struct bt_key k, e = id_key(id);
	const void *d;
	uint32_t len;

	bt_cursor_item(c, &k, &d, &len);
	ck_assert_msg(bt_key_cmp(&k, &e) == 0, "cursor at id %" PRIu64 ", want %" PRIu64, k.offset,
		      id);
	ck_assert_uint_eq(len, m->len[id]);
	gen_data(want, id, m->ver[id], len);
	ck_assert_msg(memcmp(d, want, len) == 0, "cursor: id %" PRIu64 " has wrong content", id);
}

/* Every id by lookup, a full scan both ways, the item count, bt_check. */
static void model_verify(struct fixture *f, struct btree *t, const struct pmodel *m)
{
	struct bt_cursor c;
	struct bt_stats st;
	uint64_t id, seen = 0;
	int ret;

	for (id = 0; id < m->cap; id++)
		assert_item(t, m, id);

	bt_cursor_init(&c, t);
	ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE);
	for (id = 0; id < m->cap; id++) {
		if (!m->present[id])
			continue;
		ck_assert_msg(ret == 0, "forward scan ended with %d before id %" PRIu64, ret, id);
		assert_cursor_item(&c, m, id);
		seen++;
		ret = bt_cursor_next(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	ret = bt_cursor_seek(&c, &BT_KEY_MAX, BT_SEEK_LE);
	for (id = m->cap; id-- > 0;) {
		if (!m->present[id])
			continue;
		ck_assert_msg(ret == 0, "backward scan ended with %d before id %" PRIu64, ret, id);
		assert_cursor_item(&c, m, id);
		ret = bt_cursor_prev(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	bt_cursor_release(&c);

	ck_assert_int_eq(bt_stats(t, &st), 0);
	ck_assert_uint_eq(st.items, seen);
	ret = bt_check(t);
	ck_assert_msg(ret == 0, "bt_check returned %d: %s", ret, f->last_report);
}

/* What the owner layer persists about a tree (a superblock's root pointer). */
struct rootptr {
	uint64_t root, gen;
	uint8_t level;
};

static struct rootptr rootptr_of(const struct btree *t)
{
	return (struct rootptr){ t->root, t->root_gen, t->level };
}

/* Commit, drop everything in memory, and open the tree again from its root pointer alone. */
static void commit_and_reopen(struct fixture *f, struct btree *t)
{
	fixture_commit(f);
	struct rootptr rp = rootptr_of(t);
	memset(t, 0, sizeof(*t));
	fixture_reopen(f);
	bt_open(t, &f->fs, OWNER, rp.root, rp.gen, rp.level);
}

static uint32_t random_len(uint64_t *rng, uint32_t max)
{
	uint64_t r = rng_next(rng) % 100;

	if (r < 70)
		return rng_next(rng) % 65;
	if (r < 95)
		return 64 + rng_next(rng) % 449;
	if (r < 99)
		return 512 + rng_next(rng) % 3500;
	return rng_next(rng) % (max + 1);
}

static void shuffle(uint64_t *v, size_t n, uint64_t *rng)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rng_next(rng) % (i + 1);
		uint64_t tmp = v[i];
		v[i] = v[j];
		v[j] = tmp;
	}
}

/* ---- persistence ---------------------------------------------------------------------------- */

START_TEST(persistence_two_generations)
{
	const uint64_t n0 = 50000, cap = 80000;
	struct fixture f;
	struct btree t;
	struct pmodel m;
	struct bcache_stats cs;
	uint64_t rng = test_seed("persistence_two_generations", 0x9e75157);
	uint64_t *order = malloc(cap * sizeof(*order));
	const uint32_t max = bt_max_item_size(BT_DEFAULT_NODESIZE);

	fixture_setup(&f, "bt-persist", BT_DEFAULT_NODESIZE, IMG_SIZE);
	model_init(&m, cap);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint64_t i = 0; i < n0; i++)
		order[i] = i;
	shuffle(order, n0, &rng);
	for (uint64_t j = 0; j < n0; j++)
		model_insert(&f, &t, &m, order[j], random_len(&rng, max));

	/* Generation 1. */
	const uint64_t gen1 = f.tx.transid;
	commit_and_reopen(&f, &t);
	ck_assert_uint_eq(t.root_gen, gen1);
	ck_assert_uint_ge(t.level, 1);
	model_verify(&f, &t, &m);
	bcache_get_stats(f.cache, &cs);
	ck_assert_uint_gt(cs.misses, 0);   /* it was read from the device */
	ck_assert_int_eq(f.reports, 0);
	struct btree *roots[] = { &t };
	assert_refcounts_conserved(&f, roots, 1);

	/* Generation 2: delete half, insert new ones, rewrite and resize some. */
	shuffle(order, n0, &rng);
	for (uint64_t j = 0; j < n0 / 2; j++) {
		struct bt_key k = id_key(order[j]);
		ck_assert_int_eq(bt_delete(&f.tx, &t, &k), 0);
		m.present[order[j]] = false;
	}
	for (uint64_t id = n0; id < cap; id++)
		if (rng_next(&rng) % 4 != 0)
			model_insert(&f, &t, &m, id, random_len(&rng, max));
	for (uint64_t j = n0 / 2; j < n0 / 2 + 3000; j++) {
		uint64_t id = order[j];
		struct bt_key k = id_key(id);
		if (j % 2) {
			m.len[id] = random_len(&rng, max);
			ck_assert_int_eq(bt_resize(&f.tx, &t, &k, m.len[id]), 0);
		}
		m.ver[id]++;
		gen_data(want, id, m.ver[id], m.len[id]);
		ck_assert_int_eq(bt_update(&f.tx, &t, &k, want, m.len[id]), 0);
	}
	const uint64_t gen2 = f.tx.transid;
	ck_assert_uint_gt(gen2, gen1);
	commit_and_reopen(&f, &t);
	ck_assert_uint_eq(t.root_gen, gen2);
	model_verify(&f, &t, &m);
	ck_assert_int_eq(f.reports, 0);
	assert_refcounts_conserved(&f, roots, 1);
	fprintf(stderr, "  persistence: %" PRIu64 " items after two generations, height %u\n",
		model_count(&m), t.level + 1u);

	model_free(&m);
	free(order);
	fixture_teardown(&f);
}
END_TEST

/* ---- corruption ----------------------------------------------------------------------------- */

struct nodeinfo {
	uint64_t addr, parent;
	uint8_t level;
	uint32_t nritems;
};

/* A committed 4 KiB-node tree of height 3, written in generation CTREE_GEN, and where each item
 * lives. */
#define CTREE_GEN 100
struct ctree {
	struct fixture f;
	struct btree t;
	struct rootptr rp;
	struct pmodel m;
	uint64_t n;
	struct nodeinfo *nodes;   /* every node, parents first, in key order */
	size_t nnodes, capnodes;
	uint64_t *leaf_of, *parent_of;   /* per id: its leaf, and that leaf's parent */
};

static int collect_node(void *arg, uint64_t bytenr, uint8_t level, uint32_t nritems,
			uint64_t parent)
{
	struct ctree *ct = arg;

	if (ct->nnodes == ct->capnodes) {
		ct->capnodes = ct->capnodes ? ct->capnodes * 2 : 256;
		ct->nodes = realloc(ct->nodes, ct->capnodes * sizeof(*ct->nodes));
		ck_assert_ptr_nonnull(ct->nodes);
	}
	ct->nodes[ct->nnodes++] = (struct nodeinfo){ bytenr, parent, level, nritems };
	return 0;
}

/* Walk the tree: every node, and for every item the leaf holding it. */
static void ctree_map(struct ctree *ct)
{
	struct fixture *f = &ct->f;

	ct->nnodes = 0;
	ck_assert_int_eq(bt_visit(&ct->t, collect_node, ct), 0);
	for (uint64_t id = 0; id < ct->n; id++)
		ct->leaf_of[id] = ct->parent_of[id] = 0;
	for (size_t i = 0; i < ct->nnodes; i++) {
		const struct nodeinfo *ni = &ct->nodes[i];
		struct cblock *b;
		if (ni->level)
			continue;
		ck_assert_int_eq(bcache_get(f->cache, ni->addr, f->fs.nodesize, &b), 0);
		for (uint32_t s = 0; s < node_nritems(b); s++) {
			struct bt_key k;
			leaf_item_key(b, s, &k);
			ck_assert_uint_lt(k.offset, ct->n);
			ct->leaf_of[k.offset] = ni->addr;
			ct->parent_of[k.offset] = ni->parent;
		}
		bcache_put(f->cache, b);
	}
	for (uint64_t id = 0; id < ct->n; id++)
		ck_assert(!ct->m.present[id] || ct->leaf_of[id]);
}

static void ctree_build(struct ctree *ct, const char *name, uint64_t seed)
{
	uint64_t rng = seed;

	memset(ct, 0, sizeof(*ct));
	ct->n = 4000;
	fixture_setup(&ct->f, name, 4096, IMG_SIZE);
	/* Start at a later generation, so that "one generation older" is a real generation. */
	ct->f.tx.transid = CTREE_GEN;
	model_init(&ct->m, ct->n);
	ct->leaf_of = calloc(ct->n, sizeof(uint64_t));
	ct->parent_of = calloc(ct->n, sizeof(uint64_t));
	uint64_t *order = malloc(ct->n * sizeof(*order));
	for (uint64_t i = 0; i < ct->n; i++)
		order[i] = i;
	shuffle(order, ct->n, &rng);
	ck_assert_int_eq(bt_create(&ct->f.tx, OWNER, &ct->t), 0);
	for (uint64_t j = 0; j < ct->n; j++)
		model_insert(&ct->f, &ct->t, &ct->m, order[j], 100 + rng_next(&rng) % 200);
	free(order);
	commit_and_reopen(&ct->f, &ct->t);
	ct->rp = rootptr_of(&ct->t);
	ck_assert_uint_eq(ct->t.level, 2);   /* height 3 */
	ctree_map(ct);
}

static void ctree_free(struct ctree *ct)
{
	free(ct->nodes);
	free(ct->leaf_of);
	free(ct->parent_of);
	model_free(&ct->m);
	fixture_teardown(&ct->f);
}

/* Cold reopen of the tree at its root pointer; the report counter starts over. */
static void ctree_reopen(struct ctree *ct)
{
	fixture_reopen(&ct->f);
	bt_open(&ct->t, &ct->f.fs, OWNER, ct->rp.root, ct->rp.gen, ct->rp.level);
	ct->f.reports = 0;
	ct->f.last_report[0] = 0;
}

/* The first node of `level` that is neither the first nor the last of its level. */
static const struct nodeinfo *ctree_pick(const struct ctree *ct, uint8_t level)
{
	size_t count = 0, k = 0;

	for (size_t i = 0; i < ct->nnodes; i++)
		count += ct->nodes[i].level == level;
	ck_assert_uint_ge(count, 3);
	for (size_t i = 0; i < ct->nnodes; i++)
		if (ct->nodes[i].level == level && k++ == count / 2)
			return &ct->nodes[i];
	return NULL;
}

static void image_rw(const struct fixture *f, uint64_t off, void *buf, size_t len, bool write)
{
	int fd = open(f->path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ssize_t r = write ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
	ck_assert_int_eq(r, (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* XOR one byte of the image; returns the old value. */
static uint8_t image_flip(const struct fixture *f, uint64_t off, uint8_t x)
{
	uint8_t old, nb;

	image_rw(f, off, &old, 1, false);
	nb = old ^ x;
	image_rw(f, off, &nb, 1, true);
	return old;
}

static void assert_report_names(const struct fixture *f, uint64_t addr)
{
	char name[64];

	snprintf(name, sizeof(name), "block %" PRIu64 ":", addr);
	ck_assert_msg(strstr(f->last_report, name) != NULL, "last report \"%s\" does not name %s",
		      f->last_report, name);
}

/* Does a read of item `id` go through node `addr`? */
static bool ctree_crosses(const struct ctree *ct, uint64_t id, uint64_t addr)
{
	return addr == ct->rp.root || ct->leaf_of[id] == addr || ct->parent_of[id] == addr;
}

static int count_visit(void *arg, uint64_t bytenr, uint8_t level, uint32_t nritems, uint64_t parent)
{
	(void)bytenr, (void)level, (void)nritems, (void)parent;
	(*(uint64_t *)arg)++;
	return 0;
}

/*
 * The image has node `bad` damaged and the tree was reopened cold: every read through `bad`
 * fails with -EIO naming it, every other read returns the right data, a scan stops with -EIO
 * where it reaches `bad`, and the whole-tree walks fail with -EIO.
 */
static void ctree_assert_damage(struct ctree *ct, uint64_t bad)
{
	struct fixture *f = &ct->f;
	struct btree *t = &ct->t;
	struct bt_cursor c;
	struct bt_stats st;
	uint64_t id, first_bad = UINT64_MAX, crossing = 0, visited = 0;
	int ret;

	for (id = 0; id < ct->n; id++) {
		struct bt_key k = id_key(id);
		uint32_t len;
		int reports = f->reports;
		if (!ctree_crosses(ct, id, bad)) {
			assert_item(t, &ct->m, id);
			ck_assert_int_eq(f->reports, reports);
			continue;
		}
		ret = bt_lookup(t, &k, got, sizeof(got), &len);
		ck_assert_msg(ret == -EIO, "lookup of id %" PRIu64 " through damaged node %" PRIu64
			      " returned %d", id, bad, ret);
		ck_assert_int_eq(f->reports, reports + 1);
		assert_report_names(f, bad);
		crossing++;
		if (first_bad == UINT64_MAX)
			first_bad = id;
	}
	ck_assert_uint_gt(crossing, 0);

	/* A full scan returns the items before the damaged node, then -EIO. */
	bt_cursor_init(&c, t);
	ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE);
	for (id = 0; ret == 0; id++) {
		ck_assert_msg(id < first_bad, "scan returned id %" PRIu64 " past damaged node", id);
		assert_cursor_item(&c, &ct->m, id);
		ret = bt_cursor_next(&c);
	}
	ck_assert_int_eq(ret, -EIO);
	ck_assert_uint_eq(id, first_bad);
	assert_report_names(f, bad);
	/* Backwards, the items after it. */
	ret = bt_cursor_seek(&c, &BT_KEY_MAX, BT_SEEK_LE);
	for (id = ct->n; ret == 0; id--) {
		ck_assert(id > 0 && !ctree_crosses(ct, id - 1, bad));
		assert_cursor_item(&c, &ct->m, id - 1);
		ret = bt_cursor_prev(&c);
	}
	ck_assert_int_eq(ret, -EIO);
	ck_assert(ctree_crosses(ct, id - 1, bad));
	bt_cursor_release(&c);

	f->last_report[0] = 0;
	ck_assert_int_eq(bt_check(t), -EIO);
	assert_report_names(f, bad);
	ck_assert_int_eq(bt_stats(t, &st), -EIO);
	ck_assert_int_eq(bt_visit(t, count_visit, &visited), -EIO);
}

/* Everything readable and clean again. */
static void ctree_assert_clean(struct ctree *ct)
{
	ctree_reopen(ct);
	model_verify(&ct->f, &ct->t, &ct->m);
	ck_assert_int_eq(ct->f.reports, 0);
}

enum target { LEAF, INTERNAL, ROOT };

/* Where in a node to flip, besides a fixed offset. */
#define OFF_PAYLOAD (-1)   /* the middle item's payload (leaf) or pointer's address (internal) */
#define OFF_FREE (-2)      /* a leaf's free space, between item headers and payloads */

/* Flip one byte of a node at `off` (from the node's start, or OFF_*). */
static void flip_case(enum target tg, int64_t off, uint8_t x)
{
	struct ctree ct;
	const struct nodeinfo *ni;
	struct cblock *b;

	ctree_build(&ct, "bt-corrupt", 0xc0ffee);
	ni = tg == ROOT ? &ct.nodes[0] : ctree_pick(&ct, tg == LEAF ? 0 : 1);
	ck_assert_uint_eq(ni->level, tg == LEAF ? 0 : tg == INTERNAL ? 1 : 2);
	if (off < 0) {
		ck_assert_int_eq(bcache_get(ct.f.cache, ni->addr, ct.f.fs.nodesize, &b), 0);
		uint32_t n = node_nritems(b), mid = n / 2;
		if (off == OFF_FREE) {
			ck_assert_uint_eq(ni->level, 0);
			ck_assert_uint_gt(leaf_free_space(b, ct.f.fs.nodesize), 2);
			off = BT_HDR + n * BT_ITEM + 1;
		} else {
			off = ni->level ? BT_HDR + mid * BT_PTR + 17 + 1 : leaf_item_offset(b, mid) + 3;
		}
		bcache_put(ct.f.cache, b);
	}
	uint8_t old = image_flip(&ct.f, ni->addr + (uint64_t)off, x);
	ctree_reopen(&ct);
	ctree_assert_damage(&ct, ni->addr);
	image_rw(&ct.f, ni->addr + (uint64_t)off, &old, 1, true);
	ctree_assert_clean(&ct);
	ctree_free(&ct);
}

START_TEST(corrupt_leaf_header)
{
	flip_case(LEAF, 48, 0x01);   /* nritems */
}
END_TEST

START_TEST(corrupt_leaf_body)
{
	flip_case(LEAF, OFF_PAYLOAD, 0x80);
}
END_TEST

START_TEST(corrupt_leaf_free_space)
{
	flip_case(LEAF, OFF_FREE, 0x04);   /* unused, but checksummed */
}
END_TEST

START_TEST(corrupt_leaf_checksum)
{
	flip_case(LEAF, 5, 0x10);
}
END_TEST

START_TEST(corrupt_leaf_item_header)
{
	flip_case(LEAF, BT_HDR + BT_ITEM + 4, 0x20);   /* the second item's key */
}
END_TEST

START_TEST(corrupt_internal_header)
{
	flip_case(INTERNAL, 32, 0x02);   /* generation */
}
END_TEST

START_TEST(corrupt_internal_body)
{
	flip_case(INTERNAL, OFF_PAYLOAD, 0x01);   /* a child's address */
}
END_TEST

START_TEST(corrupt_internal_unused_tail)
{
	flip_case(INTERNAL, 4096 - 1, 0xff);   /* past the last pointer: still checksummed */
}
END_TEST

START_TEST(corrupt_root_header)
{
	flip_case(ROOT, 52, 0x01);   /* level */
}
END_TEST

START_TEST(corrupt_root_body)
{
	flip_case(ROOT, OFF_PAYLOAD, 0x40);
}
END_TEST

/* One leaf's bytes written at another leaf's address. */
START_TEST(misdirected_write)
{
	struct ctree ct;
	const uint32_t ns = 4096;
	uint8_t *a = malloc(ns), *saved = malloc(ns);

	ctree_build(&ct, "bt-misdirect", 0xd1ec7);
	const struct nodeinfo *src = ctree_pick(&ct, 0), *dst = NULL;
	for (size_t i = 0; i < ct.nnodes; i++)
		if (ct.nodes[i].level == 0 && ct.nodes[i].addr != src->addr)
			dst = &ct.nodes[i];   /* the last leaf */
	ck_assert_ptr_nonnull(dst);
	image_rw(&ct.f, src->addr, a, ns, false);
	image_rw(&ct.f, dst->addr, saved, ns, false);
	image_rw(&ct.f, dst->addr, a, ns, true);
	ctree_reopen(&ct);
	ctree_assert_damage(&ct, dst->addr);
	ck_assert_ptr_nonnull(strstr(ct.f.last_report, "address"));
	/* The same with an internal node's bytes at a leaf's address. */
	image_rw(&ct.f, ctree_pick(&ct, 1)->addr, a, ns, false);
	image_rw(&ct.f, dst->addr, a, ns, true);
	ctree_reopen(&ct);
	ctree_assert_damage(&ct, dst->addr);
	image_rw(&ct.f, dst->addr, saved, ns, true);
	ctree_assert_clean(&ct);
	free(a);
	free(saved);
	ctree_free(&ct);
}
END_TEST

/* The root pointer promises another generation or level than the root has. */
START_TEST(root_pointer_mismatch)
{
	struct ctree ct;

	ctree_build(&ct, "bt-rootptr", 0x1057);
	const struct rootptr rp = ct.rp;
	const struct rootptr bad[] = {
		{ rp.root, rp.gen - 1, rp.level },   /* a lost write of the root */
		{ rp.root, rp.gen + 1, rp.level },
		{ rp.root, rp.gen, (uint8_t)(rp.level - 1) },
		{ rp.root, rp.gen, (uint8_t)(rp.level + 1) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ct.rp = bad[i];
		ctree_reopen(&ct);
		for (uint64_t id = 0; id < ct.n; id += 97) {
			struct bt_key k = id_key(id);
			uint32_t len;
			ck_assert_int_eq(bt_lookup(&ct.t, &k, got, sizeof(got), &len), -EIO);
			assert_report_names(&ct.f, rp.root);
		}
		struct bt_cursor c;
		bt_cursor_init(&c, &ct.t);
		ck_assert_int_eq(bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE), -EIO);
		ck_assert_int_eq(bt_cursor_seek(&c, &BT_KEY_MAX, BT_SEEK_LE), -EIO);
		bt_cursor_release(&c);
		ct.f.last_report[0] = 0;
		ck_assert_int_eq(bt_check(&ct.t), -EIO);
		assert_report_names(&ct.f, rp.root);
		if (i < 2)
			ck_assert_ptr_nonnull(strstr(ct.f.last_report, "generation"));
		else
			ck_assert_ptr_nonnull(strstr(ct.f.last_report, "level"));
	}
	ct.rp = rp;
	ctree_assert_clean(&ct);
	ctree_free(&ct);
}
END_TEST

/*
 * A lost write below the root: the parent was written in generation 2 and points at the leaf's
 * new copy, but the leaf's own write was lost and its address holds an older, self-consistent
 * node (right checksum, right address, the previous generation).
 */
START_TEST(lost_write_of_a_leaf)
{
	struct ctree ct;
	const uint32_t ns = 4096;
	uint8_t *old = malloc(ns);

	ctree_build(&ct, "bt-lostwrite", 0x105e);
	const uint64_t leaf1 = ctree_pick(&ct, 0)->addr;
	image_rw(&ct.f, leaf1, old, ns, false);
	ck_assert_uint_eq(get_le64(old + 32), CTREE_GEN);

	/* Generation 2 rewrites one item of that leaf: the leaf moves. */
	uint64_t id = 0;
	while (ct.leaf_of[id] != leaf1)
		id++;
	struct bt_key k = id_key(id);
	ct.m.ver[id]++;
	gen_data(want, id, ct.m.ver[id], ct.m.len[id]);
	ck_assert_int_eq(bt_update(&ct.f.tx, &ct.t, &k, want, ct.m.len[id]), 0);
	commit_and_reopen(&ct.f, &ct.t);
	ct.rp = rootptr_of(&ct.t);
	ctree_map(&ct);
	const uint64_t leaf2 = ct.leaf_of[id];
	ck_assert_uint_ne(leaf2, leaf1);
	ctree_assert_clean(&ct);

	/* The stale node, as if it had been written at the new address in the old generation. */
	put_le64(old + 24, leaf2);
	put_le64(old, cowfs_csum(old + 8, ns - 8));
	uint8_t *cur = malloc(ns);
	image_rw(&ct.f, leaf2, cur, ns, false);
	image_rw(&ct.f, leaf2, old, ns, true);
	ctree_reopen(&ct);
	ctree_assert_damage(&ct, leaf2);
	ck_assert_ptr_nonnull(strstr(ct.f.last_report, "generation"));
	image_rw(&ct.f, leaf2, cur, ns, true);
	ctree_assert_clean(&ct);
	free(cur);
	free(old);
	ctree_free(&ct);
}
END_TEST

/* Read ahead every node of the tree; returns the device's read count after it. */
static uint64_t ctree_prefetch_all(struct ctree *ct)
{
	uint64_t *addrs = malloc(ct->nnodes * sizeof(*addrs));
	struct bdev_stats before, after;

	for (size_t i = 0; i < ct->nnodes; i++)
		addrs[i] = ct->nodes[i].addr;
	bdev_get_stats(ct->f.bd, &before);
	ck_assert_uint_eq(bt_prefetch(&ct->f.fs, addrs, ct->nnodes), ct->nnodes);
	bdev_get_stats(ct->f.bd, &after);
	ck_assert_uint_eq(after.reads - before.reads, ct->nnodes);
	ck_assert_int_eq(ct->f.reports, 0);   /* nothing is verified yet */
	free(addrs);
	return after.reads;
}

/* The first read through `bad`, served from what was read ahead, fails as a read would. */
static void assert_prefetched_damage(struct ctree *ct, uint64_t bad, uint64_t reads,
				     const char *what)
{
	struct bdev_stats st;
	uint64_t id = 0;
	uint32_t len;

	while (!ctree_crosses(ct, id, bad))
		id++;
	struct bt_key k = id_key(id);
	ck_assert_int_eq(bt_lookup(&ct->t, &k, got, sizeof(got), &len), -EIO);
	bdev_get_stats(ct->f.bd, &st);
	ck_assert_uint_eq(st.reads, reads);
	assert_report_names(&ct->f, bad);
	ck_assert_ptr_nonnull(strstr(ct->f.last_report, what));
}

/*
 * Nodes read ahead (bt_prefetch) are verified at their first use, against the pointer they are
 * reached through, exactly as nodes read then: a checksum flip, a misdirected write and a lost
 * write of the root are each -EIO naming the block, and the rest reads right, without reading
 * the device again.
 */
START_TEST(prefetched_nodes_verified_at_first_use)
{
	struct ctree ct;
	const uint32_t ns = 4096;
	uint8_t *a = malloc(ns), *saved = malloc(ns);
	uint64_t reads;

	ctree_build(&ct, "bt-prefetch", 0x9e7c4);
	const struct nodeinfo *leaf = ctree_pick(&ct, 0), *other = ctree_pick(&ct, 1);
	uint8_t old = image_flip(&ct.f, leaf->addr + 5, 0x10);
	ctree_reopen(&ct);
	reads = ctree_prefetch_all(&ct);
	assert_prefetched_damage(&ct, leaf->addr, reads, "checksum");
	ctree_assert_damage(&ct, leaf->addr);
	image_rw(&ct.f, leaf->addr + 5, &old, 1, true);

	/* An internal node's bytes at the leaf's address. */
	image_rw(&ct.f, other->addr, a, ns, false);
	image_rw(&ct.f, leaf->addr, saved, ns, false);
	image_rw(&ct.f, leaf->addr, a, ns, true);
	ctree_reopen(&ct);
	reads = ctree_prefetch_all(&ct);
	assert_prefetched_damage(&ct, leaf->addr, reads, "address");
	image_rw(&ct.f, leaf->addr, saved, ns, true);

	/* The root pointer promises an older generation than the root has. */
	const struct rootptr rp = ct.rp;
	ct.rp.gen = rp.gen - 1;
	ctree_reopen(&ct);
	reads = ctree_prefetch_all(&ct);
	assert_prefetched_damage(&ct, rp.root, reads, "generation");
	ct.rp = rp;

	/* Undamaged, everything read ahead reads right with no read of the device. */
	ctree_reopen(&ct);
	reads = ctree_prefetch_all(&ct);
	model_verify(&ct.f, &ct.t, &ct.m);
	struct bdev_stats st;
	bdev_get_stats(ct.f.bd, &st);
	ck_assert_uint_eq(st.reads, reads);
	ck_assert_int_eq(ct.f.reports, 0);
	free(a);
	free(saved);
	ctree_free(&ct);
}
END_TEST

/* 300 random single-byte flips anywhere in the reachable nodes, one at a time. */
START_TEST(random_flip_sweep)
{
	struct ctree ct;
	uint64_t rng = test_seed("random_flip_sweep", 0xf11b5);
	uint64_t per_level[3] = { 0 };

	ctree_build(&ct, "bt-sweep", rng);
	const size_t nnodes = ct.nnodes;
	struct nodeinfo *nodes = malloc(nnodes * sizeof(*nodes));
	memcpy(nodes, ct.nodes, nnodes * sizeof(*nodes));
	for (int i = 0; i < 300; i++) {
		/* Interior nodes are few: pick the level first (half leaves, a third level 1). */
		uint64_t r = rng_next(&rng) % 6;
		uint8_t level = r < 3 ? 0 : r < 5 ? 1 : 2;
		size_t ni;
		do
			ni = rng_next(&rng) % nnodes;
		while (nodes[ni].level != level);
		uint32_t off = (uint32_t)(rng_next(&rng) % ct.f.fs.nodesize);
		uint8_t x = (uint8_t)(1 + rng_next(&rng) % 255);
		uint8_t old = image_flip(&ct.f, nodes[ni].addr + off, x);
		ctree_reopen(&ct);
		per_level[nodes[ni].level]++;
		if (i % 50 == 0)
			fprintf(stderr, "  flip %d: node %" PRIu64 " (level %u) byte %u ^ 0x%02x\n", i,
				nodes[ni].addr, nodes[ni].level, off, x);
		ctree_assert_damage(&ct, nodes[ni].addr);
		image_rw(&ct.f, nodes[ni].addr + off, &old, 1, true);
	}
	fprintf(stderr, "  flips per level: leaf %" PRIu64 ", internal %" PRIu64 ", root %" PRIu64
		"\n", per_level[0], per_level[1], per_level[2]);
	ctree_assert_clean(&ct);
	free(nodes);
	ctree_free(&ct);
}
END_TEST

/* ---- checksum-valid corruption (a node a buggy writer sealed) --------------------------------- */

/* Read node `addr` from the image, let `edit` change it, reseal its checksum, write it back. */
static void image_reseal(struct ctree *ct, uint64_t addr, uint8_t *buf)
{
	const uint32_t ns = ct->f.fs.nodesize;

	put_le64(buf, cowfs_csum(buf + 8, ns - 8));
	image_rw(&ct->f, addr, buf, ns, true);
}

/*
 * An internal node whose pointer key no longer equals its child's first key (checksum valid).
 * btree.c promises "Every internal pointer's key equals the first key of its child (checked on
 * every read)", and btree.h that a structural mismatch found while reading is -EIO. Here the
 * pointer key is raised just above the child's first key: a search for that first key is routed
 * to the left sibling and would come back -ENOENT for an item that is in the tree.
 */
START_TEST(resealed_pointer_key_mismatch)
{
	struct ctree ct;
	const uint32_t ns = 4096;
	uint8_t *buf = malloc(ns), *orig = malloc(ns);

	ctree_build(&ct, "bt-ptrkey", 0x9a7e);
	const uint64_t addr = ctree_pick(&ct, 1)->addr;
	image_rw(&ct.f, addr, orig, ns, false);
	memcpy(buf, orig, ns);
	struct cblock cb = { .addr = addr, .len = ns, .data = buf };
	const uint32_t slot = node_nritems(&cb) / 2;
	struct bt_key first, raised;
	node_ptr_key(&cb, slot, &first);
	raised = first;
	raised.offset++;   /* still below the next pointer's key: the node stays sorted */
	node_set_key(&cb, slot, &raised);
	image_reseal(&ct, addr, buf);
	ck_assert_ptr_null(node_verify(&ct.f.fs, &cb, addr, 1, CTREE_GEN));

	ctree_reopen(&ct);
	/* bt_check sees it... */
	ck_assert_int_eq(bt_check(&ct.t), -EUCLEAN);
	assert_report_names(&ct.f, node_blockptr(&cb, slot));
	/*
	 * ...and every read routed through that pointer reads the child and must fail with -EIO:
	 * the child's second key is at or above the raised pointer key, so its lookup goes there.
	 * The child's first key itself is now routed to the left sibling, which is consistent
	 * with the range its own pointers give it: no lookup can see this damage on that path
	 * (btrfs has the same limit); bt_check above and fsck do. It must still never return
	 * wrong data.
	 */
	ctree_reopen(&ct);
	uint8_t *child = malloc(ns);
	image_rw(&ct.f, node_blockptr(&cb, slot), child, ns, false);
	struct cblock ccb = { .addr = node_blockptr(&cb, slot), .len = ns, .data = child };
	ck_assert_uint_ge(node_nritems(&ccb), 2);
	struct bt_key second;
	bt_key_from_disk(&second, node_disk_key(&ccb, 1));
	free(child);
	uint32_t len;
	int ret = bt_lookup(&ct.t, &second, got, sizeof(got), &len);
	ck_assert_msg(ret == -EIO, "lookup of " "(%" PRIu64 ",%u,%" PRIu64 ") through a pointer "
		      "whose key is not its child's first key returned %d",
		      second.objectid, (unsigned)second.type, second.offset, ret);
	ret = bt_lookup(&ct.t, &first, got, sizeof(got), &len);
	ck_assert_msg(ret == -ENOENT || ret == -EIO, "lookup of the child's first key returned %d", ret);
	image_rw(&ct.f, addr, orig, ns, true);
	ctree_assert_clean(&ct);
	free(buf);
	free(orig);
	ctree_free(&ct);
}
END_TEST

/*
 * A child pointer (checksum valid) to an address that cannot be a node of this image: past its
 * end, misaligned, or beyond what a file offset can express. Every read through it is an
 * on-disk inconsistency: -EIO naming the block, like any other bad pointer.
 */
START_TEST(resealed_child_pointer_out_of_range)
{
	struct ctree ct;
	const uint32_t ns = 4096;
	uint8_t *buf = malloc(ns), *orig = malloc(ns);

	ctree_build(&ct, "bt-ptrrange", 0xadd7);
	const uint64_t addr = ctree_pick(&ct, 1)->addr;
	image_rw(&ct.f, addr, orig, ns, false);
	struct cblock cb = { .addr = addr, .len = ns, .data = buf };
	const uint32_t slot = get_le32(orig + 48) / 2;
	const uint64_t child = get_le64(orig + BT_HDR + slot * BT_PTR + 17);
	const uint64_t targets[] = { ct.f.size, ct.f.size + 1024 * ns, child + 1, child + 512,
				     1ull << 62, 1ull << 63, UINT64_MAX - ns + 1 };
	struct bt_key first;

	for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
		memcpy(buf, orig, ns);
		node_ptr_key(&cb, slot, &first);
		node_set_ptr(&cb, slot, targets[i], node_ptr_gen(&cb, slot));
		image_reseal(&ct, addr, buf);
		ctree_reopen(&ct);
		uint32_t len;
		int ret = bt_lookup(&ct.t, &first, got, sizeof(got), &len);
		ck_assert_msg(ret == -EIO, "lookup through a child pointer to %" PRIu64 " returned %d",
			      targets[i], ret);
		assert_report_names(&ct.f, targets[i]);
		ret = bt_check(&ct.t);
		ck_assert_msg(ret == -EIO, "bt_check with a child pointer to %" PRIu64 " returned %d",
			      targets[i], ret);
	}
	image_rw(&ct.f, addr, orig, ns, true);
	ctree_assert_clean(&ct);
	free(buf);
	free(orig);
	ctree_free(&ct);
}
END_TEST

/* A broken promise found by the resealed sweep: counted, and the first one described. */
struct violations {
	uint64_t count;
	char first[256];
};

#define VIOLATION(v, ...)                                                       \
	do {                                                                    \
		if ((v)->count++ == 0)                                          \
			snprintf((v)->first, sizeof((v)->first), __VA_ARGS__);  \
	} while (0)

/*
 * 200 random single-byte flips in node headers, item headers and pointers, each resealed with a
 * valid checksum, so that only the structural checks stand between the flip and the reader.
 * Reads that do not cross the node are exact; reads through it return the right item, -ENOENT
 * or -EIO (the documented results of bt_lookup), never wrong data; scans return right items
 * and end with -ENOENT or -EIO; bt_check terminates; nothing crashes (run it under SAN=1).
 * Broken promises are collected over the whole sweep and reported at the end.
 */
START_TEST(resealed_flip_sweep)
{
	struct ctree ct;
	const uint32_t ns = 4096;
	uint64_t rng = test_seed("resealed_flip_sweep", 0x5ea1ed);
	uint8_t *buf = malloc(ns), *orig = malloc(ns);
	uint64_t outcome[3] = { 0 };   /* crossing reads: right item, -ENOENT, -EIO */
	struct violations bad_errno = { 0 }, wrong_data = { 0 }, bad_scan = { 0 };

	ctree_build(&ct, "bt-reseal", rng);
	const size_t nnodes = ct.nnodes;
	struct nodeinfo *nodes = malloc(nnodes * sizeof(*nodes));
	memcpy(nodes, ct.nodes, nnodes * sizeof(*nodes));
	for (int i = 0; i < 200; i++) {
		uint64_t r = rng_next(&rng) % 6;
		uint8_t level = r < 3 ? 0 : r < 5 ? 1 : 2;
		size_t ni;
		do
			ni = rng_next(&rng) % nnodes;
		while (nodes[ni].level != level);
		const uint64_t addr = nodes[ni].addr;
		image_rw(&ct.f, addr, orig, ns, false);
		memcpy(buf, orig, ns);
		uint32_t n = get_le32(orig + 48);
		uint32_t end = BT_HDR + n * (level ? BT_PTR : BT_ITEM);
		uint32_t off = 8 + (uint32_t)(rng_next(&rng) % (end - 8));
		uint8_t x = (uint8_t)(1 + rng_next(&rng) % 255);
		buf[off] ^= x;
		image_reseal(&ct, addr, buf);
		ctree_reopen(&ct);

		for (uint64_t id = 0; id < ct.n; id++) {
			struct bt_key k = id_key(id);
			uint32_t len;
			if (!ctree_crosses(&ct, id, addr)) {
				assert_item(&ct.t, &ct.m, id);
				continue;
			}
			int ret = bt_lookup(&ct.t, &k, got, sizeof(got), &len);
			if (ret != 0 && ret != -ENOENT && ret != -EIO) {
				VIOLATION(&bad_errno, "flip %d: node %" PRIu64 " (level %u) byte %u ^ 0x%02x: "
					  "lookup of id %" PRIu64 " returned %d", i, addr, level, off, x,
					  id, ret);
				continue;
			}
			if (ret == 0) {
				gen_data(want, id, ct.m.ver[id], ct.m.len[id]);
				if (len != ct.m.len[id] || memcmp(got, want, len))
					VIOLATION(&wrong_data, "flip %d: node %" PRIu64 " (level %u) byte %u "
						  "^ 0x%02x: id %" PRIu64 " read back wrong", i, addr,
						  level, off, x, id);
			}
			outcome[ret == 0 ? 0 : ret == -ENOENT ? 1 : 2]++;
		}
		struct bt_cursor c;
		uint64_t steps = 0;
		int ret;
		bt_cursor_init(&c, &ct.t);
		for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0;
		     ret = bt_cursor_next(&c)) {
			struct bt_key k;
			const void *d;
			uint32_t len;
			ck_assert_uint_lt(++steps, 4 * ct.n);   /* it ends */
			bt_cursor_item(&c, &k, &d, &len);
			struct bt_key mk = id_key(k.offset);
			if (k.offset >= ct.n || bt_key_cmp(&k, &mk) != 0)
				continue;   /* a key the flip made up: no content to compare */
			gen_data(want, k.offset, ct.m.ver[k.offset], ct.m.len[k.offset]);
			if (len != ct.m.len[k.offset] || memcmp(d, want, len))
				VIOLATION(&wrong_data, "flip %d: node %" PRIu64 " (level %u) byte %u ^ "
					  "0x%02x: scan returned id %" PRIu64 " wrong", i, addr, level,
					  off, x, k.offset);
		}
		if (ret != -ENOENT && ret != -EIO)
			VIOLATION(&bad_scan, "flip %d: node %" PRIu64 " (level %u) byte %u ^ 0x%02x: scan "
				  "ended with %d", i, addr, level, off, x, ret);
		bt_cursor_release(&c);
		ret = bt_check(&ct.t);
		if (ret != 0 && ret != -EUCLEAN && ret != -EIO)
			VIOLATION(&bad_errno, "flip %d: node %" PRIu64 " (level %u) byte %u ^ 0x%02x: "
				  "bt_check returned %d", i, addr, level, off, x, ret);
		image_rw(&ct.f, addr, orig, ns, true);
	}
	fprintf(stderr, "  reads through a resealed flipped node: %" PRIu64 " right, %" PRIu64
		" -ENOENT, %" PRIu64 " -EIO\n", outcome[0], outcome[1], outcome[2]);
	ctree_assert_clean(&ct);
	ck_assert_msg(wrong_data.count == 0, "%" PRIu64 " reads returned wrong data; first: %s",
		      wrong_data.count, wrong_data.first);
	ck_assert_msg(bad_errno.count == 0, "%" PRIu64 " reads returned an undocumented error; "
		      "first: %s", bad_errno.count, bad_errno.first);
	ck_assert_msg(bad_scan.count == 0, "%" PRIu64 " scans ended with an undocumented error; "
		      "first: %s", bad_scan.count, bad_scan.first);
	free(nodes);
	free(buf);
	free(orig);
	ctree_free(&ct);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree_persist");
	TCase *tc;

	tc = tcase_create("persistence");
	tcase_add_test(tc, persistence_two_generations);
	suite_add_tcase(s, tc);

	tc = tcase_create("corruption");
	tcase_add_test(tc, corrupt_leaf_header);
	tcase_add_test(tc, corrupt_leaf_body);
	tcase_add_test(tc, corrupt_leaf_checksum);
	tcase_add_test(tc, corrupt_leaf_free_space);
	tcase_add_test(tc, corrupt_leaf_item_header);
	tcase_add_test(tc, corrupt_internal_header);
	tcase_add_test(tc, corrupt_internal_body);
	tcase_add_test(tc, corrupt_internal_unused_tail);
	tcase_add_test(tc, corrupt_root_header);
	tcase_add_test(tc, corrupt_root_body);
	tcase_add_test(tc, misdirected_write);
	tcase_add_test(tc, root_pointer_mismatch);
	tcase_add_test(tc, lost_write_of_a_leaf);
	tcase_add_test(tc, prefetched_nodes_verified_at_first_use);
	tcase_add_test(tc, random_flip_sweep);
	tcase_add_test(tc, resealed_pointer_key_mismatch);
	tcase_add_test(tc, resealed_child_pointer_out_of_range);
	tcase_add_test(tc, resealed_flip_sweep);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
