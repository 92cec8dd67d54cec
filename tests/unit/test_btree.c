/*
 * Unit tests of the copy-on-write B+tree: the on-disk node layout and every operation with its
 * edge cases (empty tree, one item, duplicates, zero-length and maximum-size items, fill,
 * draining, cursors under modification, sticky transaction errors, shadowing, bt_check).
 *
 * Randomized parts are seeded: each prints its seed, and COWFS_TEST_SEED overrides it.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/btree/node.h"
#include "fs/lib/csum.h"
#include "tests/support/fixture.h"

#define OWNER 5
#define IMG_SIZE (512ull << 20)

#define KFMT "(%" PRIu64 ",%u,%" PRIu64 ")"
#define KARG(k) (k).objectid, (unsigned)(k).type, (k).offset

static uint8_t scratch[BT_MAX_NODESIZE];   /* item payloads being written */
static uint8_t got[BT_MAX_NODESIZE];       /* item payloads read back */

static struct bt_key key_of(uint64_t objectid)
{
	return (struct bt_key){ objectid, 1, 0 };
}

/* Pointer to the key of key_of(objectid), for calls that take a key by address. */
#define KP(o) (&(struct bt_key){ (o), 1, 0 })

/* Deterministic payload bytes for `seed`. */
static void gen_data(uint8_t *d, uint32_t len, uint64_t seed)
{
	uint64_t s = seed * 0x2545f4914f6cdd1dULL + len, x = 0;

	for (uint32_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = rng_next(&s);
		d[i] = (uint8_t)(x >> (i % 8 * 8));
	}
}

/* ---- reference set: what the tree must hold ------------------------------------------- */

struct ritem {
	struct bt_key key;
	uint32_t len;
	uint8_t *data;
};

struct refset {
	struct ritem *v;
	size_t n, cap;
	bool sorted;
};

static int ritem_cmp(const void *a, const void *b)
{
	return bt_key_cmp(&((const struct ritem *)a)->key, &((const struct ritem *)b)->key);
}

static void ref_add(struct refset *m, const struct bt_key *k, const void *d, uint32_t len)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		ck_assert_ptr_nonnull(m->v);
	}
	struct ritem *it = &m->v[m->n++];
	it->key = *k;
	it->len = len;
	it->data = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(it->data);
	memcpy(it->data, d, len);
	m->sorted = false;
}

static void ref_sort(struct refset *m)
{
	if (!m->sorted && m->n)
		qsort(m->v, m->n, sizeof(*m->v), ritem_cmp);
	m->sorted = true;
}

/* Index of the first item >= k. */
static size_t ref_lower(struct refset *m, const struct bt_key *k)
{
	size_t lo = 0, hi = m->n;

	ref_sort(m);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bt_key_cmp(&m->v[mid].key, k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct ritem *ref_find(struct refset *m, const struct bt_key *k)
{
	size_t i = ref_lower(m, k);
	return i < m->n && bt_key_cmp(&m->v[i].key, k) == 0 ? &m->v[i] : NULL;
}

static void ref_remove(struct refset *m, const struct bt_key *k)
{
	struct ritem *it = ref_find(m, k);
	size_t i;

	ck_assert_ptr_nonnull(it);
	i = (size_t)(it - m->v);
	free(it->data);
	memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
	m->n--;
}

/* The item now holds `newlen` bytes: its old prefix, then zeros (what bt_resize does). */
static void ref_resize(struct ritem *it, uint32_t newlen)
{
	it->data = realloc(it->data, newlen ? newlen : 1);
	ck_assert_ptr_nonnull(it->data);
	if (newlen > it->len)
		memset(it->data + it->len, 0, newlen - it->len);
	it->len = newlen;
}

static void ref_free(struct refset *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].data);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* Insert an item of `len` bytes generated from `seed` into the tree and the reference set. */
static void ins(struct fixture *f, struct btree *t, struct refset *m, struct bt_key k, uint32_t len,
		uint64_t seed)
{
	gen_data(scratch, len, seed);
	int ret = bt_insert(&f->tx, t, &k, scratch, len);
	ck_assert_msg(ret == 0, "insert of " KFMT " (%u bytes) returned %d", KARG(k), len, ret);
	ref_add(m, &k, scratch, len);
}

static void assert_lookup(struct btree *t, const struct ritem *it)
{
	uint32_t len = UINT32_MAX;
	int ret = bt_lookup(t, &it->key, got, sizeof(got), &len);

	ck_assert_msg(ret == 0, "lookup of " KFMT " returned %d", KARG(it->key), ret);
	ck_assert_msg(len == it->len, "item " KFMT " has %u bytes, want %u", KARG(it->key), len,
		      it->len);
	ck_assert_msg(memcmp(got, it->data, len) == 0, "item " KFMT " has wrong content",
		      KARG(it->key));
}

static void assert_cursor_at(struct bt_cursor *c, const struct ritem *it)
{
	struct bt_key k;
	const void *d;
	uint32_t len;

	bt_cursor_item(c, &k, &d, &len);
	ck_assert_msg(bt_key_cmp(&k, &it->key) == 0, "cursor at " KFMT ", want " KFMT, KARG(k),
		      KARG(it->key));
	ck_assert_uint_eq(len, it->len);
	ck_assert_msg(memcmp(d, it->data, len) == 0, "cursor item " KFMT " has wrong content",
		      KARG(k));
}

/* Every item by lookup, full scans both ways, item count and bt_check. */
static void ref_verify(struct fixture *f, struct btree *t, struct refset *m)
{
	struct bt_cursor c;
	struct bt_stats st;
	size_t i;
	int ret;

	ref_sort(m);
	for (i = 0; i < m->n; i++)
		assert_lookup(t, &m->v[i]);

	bt_cursor_init(&c, t);
	ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE);
	for (i = 0; ret == 0; i++) {
		ck_assert_msg(i < m->n, "forward scan returned more than %zu items", m->n);
		assert_cursor_at(&c, &m->v[i]);
		ret = bt_cursor_next(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_uint_eq(i, m->n);

	ret = bt_cursor_seek(&c, &BT_KEY_MAX, BT_SEEK_LE);
	for (i = m->n; ret == 0; i--) {
		ck_assert_msg(i > 0, "backward scan returned more than %zu items", m->n);
		assert_cursor_at(&c, &m->v[i - 1]);
		ret = bt_cursor_prev(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_uint_eq(i, 0);
	bt_cursor_release(&c);

	ck_assert_int_eq(bt_stats(t, &st), 0);
	ck_assert_uint_eq(st.items, m->n);
	ck_assert_uint_eq(st.height, t->level + 1u);
	ret = bt_check(t);
	ck_assert_msg(ret == 0, "bt_check returned %d: %s", ret, f->last_report);
}

/* ---- node lists through bt_visit --------------------------------------------------------- */

struct nodeinfo {
	uint64_t addr, parent;
	uint8_t level;
	uint32_t nritems;
};

struct nodelist {
	struct nodeinfo *v;
	size_t n, cap;
};

static int collect_node(void *arg, uint64_t bytenr, uint8_t level, uint32_t nritems,
			uint64_t parent)
{
	struct nodelist *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		ck_assert_ptr_nonnull(l->v);
	}
	l->v[l->n++] = (struct nodeinfo){ bytenr, parent, level, nritems };
	return 0;
}

/* Every node, parents before children, children in key order. */
static void collect_nodes(struct btree *t, struct nodelist *l)
{
	l->n = 0;
	ck_assert_int_eq(bt_visit(t, collect_node, l), 0);
}

/* The leaves only, in key order. */
static void collect_leaves(struct btree *t, struct nodelist *l)
{
	size_t j = 0;

	collect_nodes(t, l);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].level == 0)
			l->v[j++] = l->v[i];
	l->n = j;
}

static bool nodelist_has(const struct nodelist *l, uint64_t addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].addr == addr)
			return true;
	return false;
}

static struct cblock *get_node(struct fixture *f, uint64_t addr)
{
	struct cblock *b;

	ck_assert_int_eq(bcache_get(f->cache, addr, f->fs.nodesize, &b), 0);
	return b;
}

static void *alloc_block(uint32_t len)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, BDEV_ALIGN, len), 0);
	return p;
}

static void assert_report_names(struct fixture *f, uint64_t addr)
{
	char want[64];

	snprintf(want, sizeof(want), "block %" PRIu64 ":", addr);
	ck_assert_msg(strstr(f->last_report, want) != NULL, "last report \"%s\" does not name %s",
		      f->last_report, want);
}

/* ---- empty tree, one item, duplicates ----------------------------------------------------- */

START_TEST(empty_tree)
{
	struct fixture f;
	struct btree t;
	struct bt_stats st;
	struct bt_cursor c;
	struct bt_key k = key_of(42);
	const struct bt_key probes[] = { BT_KEY_MIN, key_of(42), BT_KEY_MAX };
	uint32_t len = 0;

	fixture_setup(&f, "bt-empty", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	ck_assert_uint_ne(t.root, 0);
	ck_assert_uint_eq(t.level, 0);
	ck_assert_uint_eq(t.owner, OWNER);
	ck_assert_uint_eq(t.root_gen, f.tx.transid);
	ck_assert_uint_eq(memrefs_refs(f.mr, t.root), 1);

	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), -ENOENT);
		ck_assert_int_eq(bt_lookup(&t, &BT_KEY_MIN, NULL, 0, &len), -ENOENT);
		ck_assert_int_eq(bt_delete(&f.tx, &t, &k), -ENOENT);
		ck_assert_int_eq(bt_update(&f.tx, &t, &k, "x", 1), -ENOENT);
		ck_assert_int_eq(bt_resize(&f.tx, &t, &k, 3), -ENOENT);
		ck_assert_int_eq(f.tx.error, 0);

		bt_cursor_init(&c, &t);
		for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
			ck_assert_int_eq(bt_cursor_seek(&c, &probes[i], BT_SEEK_GE), -ENOENT);
			ck_assert_int_eq(bt_cursor_seek(&c, &probes[i], BT_SEEK_LE), -ENOENT);
		}
		ck_assert_int_eq(bt_cursor_next(&c), -ENOENT);
		ck_assert_int_eq(bt_cursor_prev(&c), -ENOENT);
		bt_cursor_release(&c);

		ck_assert_int_eq(bt_stats(&t, &st), 0);
		ck_assert_uint_eq(st.nodes, 1);
		ck_assert_uint_eq(st.leaves, 1);
		ck_assert_uint_eq(st.items, 0);
		ck_assert_uint_eq(st.height, 1);
		ck_assert_int_eq(bt_check(&t), 0);
		ck_assert_int_eq(f.reports, 0);

		/* The empty tree survives a commit and a cold reopen. */
		fixture_commit(&f);
		fixture_reopen(&f);
		bt_open(&t, &f.fs, OWNER, t.root, t.root_gen, t.level);
	}
	ck_assert_uint_eq(memrefs_allocated(f.mr), 1);
	fixture_teardown(&f);
}
END_TEST

START_TEST(create_rejects_invalid_nodesize)
{
	struct fixture f;
	struct btree t;
	const uint32_t bad[] = { 0, 512, 2048, 4095, 4097, 12288, 65535, 131072 };

	fixture_setup(&f, "bt-nodesize", 4096, IMG_SIZE);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		f.fs.nodesize = bad[i];
		ck_assert_msg(bt_create(&f.tx, OWNER, &t) == -EINVAL, "node size %u accepted", bad[i]);
		ck_assert(!bt_nodesize_valid(bad[i]));
	}
	ck_assert_int_eq(f.tx.error, 0);
	ck_assert_uint_eq(memrefs_allocated(f.mr), 0);
	f.fs.nodesize = 4096;
	for (uint32_t ns = BT_MIN_NODESIZE; ns <= BT_MAX_NODESIZE; ns *= 2)
		ck_assert(bt_nodesize_valid(ns));
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	ck_assert_uint_eq(memrefs_allocated(f.mr), 1);
	fixture_teardown(&f);
}
END_TEST

START_TEST(one_item_lifecycle)
{
	struct fixture f;
	struct btree t;
	struct bt_stats st;
	const struct bt_key k = { 7, 3, 100 };
	const struct bt_key near[] = { { 7, 3, 99 }, { 7, 3, 101 }, { 7, 2, 100 }, { 7, 4, 100 },
				       { 6, 3, 100 }, { 8, 3, 100 } };
	uint8_t d1[100], d2[100], buf[32];
	uint32_t len;

	fixture_setup(&f, "bt-one", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	gen_data(d1, sizeof(d1), 1);
	gen_data(d2, sizeof(d2), 2);

	ck_assert_int_eq(bt_insert(&f.tx, &t, &k, d1, sizeof(d1)), 0);
	len = 0;
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 100);
	ck_assert_mem_eq(got, d1, 100);

	/* A smaller buffer gets exactly bufsize bytes; *len is still the full size. */
	memset(buf, 0xa5, sizeof(buf));
	len = 0;
	ck_assert_int_eq(bt_lookup(&t, &k, buf, 10, &len), 0);
	ck_assert_uint_eq(len, 100);
	ck_assert_mem_eq(buf, d1, 10);
	for (size_t i = 10; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xa5);
	memset(buf, 0xa5, sizeof(buf));
	ck_assert_int_eq(bt_lookup(&t, &k, buf, 0, &len), 0);
	ck_assert_uint_eq(buf[0], 0xa5);
	len = 0;
	ck_assert_int_eq(bt_lookup(&t, &k, NULL, 0, &len), 0);
	ck_assert_uint_eq(len, 100);
	ck_assert_int_eq(bt_lookup(&t, &k, NULL, 1000, &len), 0);
	ck_assert_uint_eq(len, 100);
	for (size_t i = 0; i < ARRAY_SIZE(near); i++)
		ck_assert_int_eq(bt_lookup(&t, &near[i], got, sizeof(got), &len), -ENOENT);

	/* Update: same size only. */
	ck_assert_int_eq(bt_update(&f.tx, &t, &k, d2, 100), 0);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 100);
	ck_assert_mem_eq(got, d2, 100);
	ck_assert_int_eq(bt_update(&f.tx, &t, &k, d1, 99), -EINVAL);
	ck_assert_int_eq(bt_update(&f.tx, &t, &k, d1, 101), -EINVAL);
	ck_assert_int_eq(bt_update(&f.tx, &t, &k, d1, 0), -EINVAL);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 100);
	ck_assert_mem_eq(got, d2, 100);
	ck_assert_int_eq(f.tx.error, 0);

	/* Grow: the prefix stays, the new tail is zero. */
	ck_assert_int_eq(bt_resize(&f.tx, &t, &k, 300), 0);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 300);
	ck_assert_mem_eq(got, d2, 100);
	for (uint32_t i = 100; i < 300; i++)
		ck_assert_msg(got[i] == 0, "grown tail byte %u is %u", i, got[i]);
	/* Shrink: the prefix stays. */
	ck_assert_int_eq(bt_resize(&f.tx, &t, &k, 40), 0);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 40);
	ck_assert_mem_eq(got, d2, 40);
	ck_assert_int_eq(bt_resize(&f.tx, &t, &k, 40), 0);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 40);
	ck_assert_mem_eq(got, d2, 40);
	/* Down to nothing and back: all zero. */
	ck_assert_int_eq(bt_resize(&f.tx, &t, &k, 0), 0);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(bt_resize(&f.tx, &t, &k, 50), 0);
	memset(got, 0xff, 50);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 50);
	for (uint32_t i = 0; i < 50; i++)
		ck_assert_uint_eq(got[i], 0);
	ck_assert_int_eq(bt_check(&t), 0);

	/* Delete: empty again. */
	ck_assert_int_eq(bt_delete(&f.tx, &t, &k), 0);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), -ENOENT);
	ck_assert_int_eq(bt_delete(&f.tx, &t, &k), -ENOENT);
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	ck_assert_uint_eq(st.nodes, 1);
	ck_assert_uint_eq(st.items, 0);
	ck_assert_uint_eq(st.height, 1);
	ck_assert_int_eq(bt_check(&t), 0);
	ck_assert_int_eq(f.tx.error, 0);

	/* And usable again. */
	ck_assert_int_eq(bt_insert(&f.tx, &t, &k, d1, 10), 0);
	ck_assert_int_eq(bt_lookup(&t, &k, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(got, d1, 10);
	fixture_teardown(&f);
}
END_TEST

START_TEST(duplicates_and_missing_keys)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	const uint32_t n = 2000;
	uint32_t len;

	fixture_setup(&f, "bt-dup", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint32_t i = 1; i <= n; i++)
		ins(&f, &t, &m, key_of(2 * (uint64_t)i), 20 + i % 50, i);
	ck_assert_uint_gt(t.level, 0);
	fixture_commit(&f);

	for (uint32_t i = 1; i <= n; i += 7) {
		struct bt_key k = key_of(2 * (uint64_t)i), odd = key_of(2 * (uint64_t)i + 1);
		/* Duplicate insert, with another size and content: refused, nothing changes. */
		gen_data(scratch, 33, 1000000 + i);
		ck_assert_int_eq(bt_insert(&f.tx, &t, &k, scratch, 33), -EEXIST);
		ck_assert_int_eq(bt_insert(&f.tx, &t, &k, scratch, 0), -EEXIST);
		/* Absent keys between present ones. */
		ck_assert_int_eq(bt_lookup(&t, &odd, got, sizeof(got), &len), -ENOENT);
		ck_assert_int_eq(bt_delete(&f.tx, &t, &odd), -ENOENT);
		ck_assert_int_eq(bt_update(&f.tx, &t, &odd, scratch, 33), -ENOENT);
		ck_assert_int_eq(bt_resize(&f.tx, &t, &odd, 10), -ENOENT);
	}
	/* Below and above every key. */
	const struct bt_key outside[] = { BT_KEY_MIN, key_of(1), { 2, 0, 0 }, { 2, 1, 1 },
					  key_of(2 * (uint64_t)n + 1), BT_KEY_MAX };
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		ck_assert_int_eq(bt_lookup(&t, &outside[i], got, sizeof(got), &len), -ENOENT);
		ck_assert_int_eq(bt_delete(&f.tx, &t, &outside[i]), -ENOENT);
		ck_assert_int_eq(bt_update(&f.tx, &t, &outside[i], scratch, 1), -ENOENT);
		ck_assert_int_eq(bt_resize(&f.tx, &t, &outside[i], 1), -ENOENT);
	}
	/* None of these is a transaction error. */
	ck_assert_int_eq(f.tx.error, 0);
	ref_verify(&f, &t, &m);
	struct btree *roots[] = { &t };
	assert_refcounts_conserved(&f, roots, 1);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

START_TEST(zero_length_items)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	uint8_t canary[8];
	uint32_t len = 99;
	const struct bt_key k0 = key_of(1000000);

	fixture_setup(&f, "bt-zero", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	ck_assert_int_eq(bt_insert(&f.tx, &t, &k0, scratch, 0), 0);
	memset(canary, 0x5c, sizeof(canary));
	ck_assert_int_eq(bt_lookup(&t, &k0, canary, sizeof(canary), &len), 0);
	ck_assert_uint_eq(len, 0);
	for (size_t i = 0; i < sizeof(canary); i++)
		ck_assert_uint_eq(canary[i], 0x5c);
	ck_assert_int_eq(bt_update(&f.tx, &t, &k0, scratch, 0), 0);
	ck_assert_int_eq(bt_update(&f.tx, &t, &k0, scratch, 1), -EINVAL);
	ck_assert_int_eq(bt_delete(&f.tx, &t, &k0), 0);

	/* Thousands of them (several leaves of nothing but item headers), some real ones between. */
	for (uint64_t i = 0; i < 3000; i++)
		ins(&f, &t, &m, key_of(i), i % 10 == 9 ? 12 : 0, i);
	ck_assert_uint_gt(t.level, 0);
	ref_verify(&f, &t, &m);

	/* Grow one from nothing (zeros) and shrink it back. */
	struct ritem *it = ref_find(&m, KP(1500));
	ck_assert_int_eq(bt_resize(&f.tx, &t, &it->key, 8), 0);
	ref_resize(it, 8);
	assert_lookup(&t, it);
	ck_assert_int_eq(bt_resize(&f.tx, &t, &it->key, 0), 0);
	ref_resize(it, 0);
	assert_lookup(&t, it);

	/* They survive the trip to disk: node verification accepts empty payloads. */
	fixture_commit(&f);
	fixture_reopen(&f);
	bt_open(&t, &f.fs, OWNER, t.root, t.root_gen, t.level);
	ref_verify(&f, &t, &m);
	ck_assert_int_eq(f.reports, 0);

	/* And go away. */
	for (uint64_t i = 0; i < 3000; i++) {
		ck_assert_int_eq(bt_delete(&f.tx, &t, &m.v[i].key), 0);
	}
	struct bt_stats st;
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	ck_assert_uint_eq(st.items, 0);
	ck_assert_uint_eq(st.nodes, 1);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/* Keys are ordered by objectid, then type, then offset; extreme values work. */
START_TEST(key_order_and_extremes)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	uint64_t rng = test_seed("key_order_and_extremes", 0x4b455953);
	const uint64_t vals[] = { 0, 1, 2, 255, 256, 1ull << 32, (1ull << 63) - 1, 1ull << 63,
				  UINT64_MAX - 1, UINT64_MAX };
	const uint8_t types[] = { 0, 1, 127, 128, 254, 255 };
	struct bt_key keys[ARRAY_SIZE(vals) * ARRAY_SIZE(types) * 3];
	size_t nk = 0;

	fixture_setup(&f, "bt-keys", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (size_t i = 0; i < ARRAY_SIZE(vals); i++)
		for (size_t j = 0; j < ARRAY_SIZE(types); j++)
			for (size_t o = 0; o < 3; o++)
				keys[nk++] = (struct bt_key){ vals[i], types[j], vals[(i + 3 * o) % ARRAY_SIZE(vals)] };
	/* Random insertion order. */
	for (size_t i = nk - 1; i > 0; i--) {
		size_t j = rng_next(&rng) % (i + 1);
		struct bt_key tmp = keys[i];
		keys[i] = keys[j];
		keys[j] = tmp;
	}
	for (size_t i = 0; i < nk; i++)
		ins(&f, &t, &m, keys[i], 60, i);
	ref_verify(&f, &t, &m);   /* scans come back sorted by (objectid, type, offset) */
	assert_lookup(&t, ref_find(&m, &BT_KEY_MIN));
	assert_lookup(&t, ref_find(&m, &BT_KEY_MAX));
	ck_assert_int_eq(bt_delete(&f.tx, &t, &BT_KEY_MIN), 0);
	ck_assert_int_eq(bt_delete(&f.tx, &t, &BT_KEY_MAX), 0);
	ref_remove(&m, &BT_KEY_MIN);
	ref_remove(&m, &BT_KEY_MAX);
	ref_verify(&f, &t, &m);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/* ---- the largest items ---------------------------------------------------------------------- */

/* Keys of a leaf, in order. */
static void leaf_keys(struct fixture *f, uint64_t addr, struct bt_key *keys, uint32_t *n)
{
	struct cblock *b = get_node(f, addr);

	ck_assert_uint_eq(node_level(b), 0);
	*n = node_nritems(b);
	for (uint32_t i = 0; i < *n; i++)
		leaf_item_key(b, i, &keys[i]);
	bcache_put(f->cache, b);
}

static uint32_t leaf_free(struct fixture *f, uint64_t addr)
{
	struct cblock *b = get_node(f, addr);
	uint32_t fr = leaf_free_space(b, f->fs.nodesize);

	bcache_put(f->cache, b);
	return fr;
}

/* A leaf (not the first or last) holding at least `min` items that is at least 99% full. */
static size_t pick_full_leaf(struct fixture *f, const struct nodelist *leaves, uint32_t min,
			     size_t skip)
{
	for (size_t i = 1; i + 1 < leaves->n; i++) {
		if (leaves->v[i].nritems < min ||
		    leaf_free(f, leaves->v[i].addr) > (f->fs.nodesize - BT_HDR) / 100)
			continue;
		if (skip-- == 0)
			return i;
	}
	ck_abort_msg("no full leaf with %u items", min);
	return 0;
}

static void max_item_case(uint32_t ns)
{
	struct fixture f;
	struct btree a, b;
	struct refset ma = { 0 }, mb = { 0 };
	struct nodelist leaves = { 0 };
	const uint32_t max = bt_max_item_size(ns);
	struct bt_key *keys = calloc(ns / BT_ITEM, sizeof(*keys));
	uint32_t nk;
	uint64_t seed = 0;

	ck_assert_uint_eq(max, ns - 64 - 25);
	fixture_setup(&f, "bt-max", ns, IMG_SIZE);

	/* A: one maximal item fills an empty root leaf exactly. */
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &a), 0);
	ck_assert_int_eq(bt_insert(&f.tx, &a, KP(500), scratch, max + 1), -EOVERFLOW);
	ck_assert_int_eq(bt_insert(&f.tx, &a, KP(500), scratch, UINT32_MAX), -EOVERFLOW);
	ck_assert_int_eq(f.tx.error, 0);
	ins(&f, &a, &ma, key_of(500), max, ++seed);
	ck_assert_uint_eq(a.level, 0);
	ck_assert_uint_eq(leaf_free(&f, a.root), 0);
	ref_verify(&f, &a, &ma);
	/* Anything more needs a second leaf, on either side. */
	ins(&f, &a, &ma, key_of(400), 1, ++seed);
	ins(&f, &a, &ma, key_of(600), 0, ++seed);
	ins(&f, &a, &ma, key_of(700), max, ++seed);
	ins(&f, &a, &ma, key_of(300), max, ++seed);
	ref_verify(&f, &a, &ma);

	/* B: full leaves of small items (sequential inserts), then maximal items among them. */
	const uint32_t per = (ns - BT_HDR) / (BT_ITEM + 16), n = per * 6;
	ck_assert_int_eq(bt_create(&f.tx, OWNER + 1, &b), 0);
	for (uint32_t i = 1; i <= n; i++)
		ins(&f, &b, &mb, key_of(10 * (uint64_t)i), 16, ++seed);
	collect_leaves(&b, &leaves);
	ck_assert_uint_ge(leaves.n, 6);

	/* In the middle of a full leaf: no split point leaves room, so the leaf is split around it. */
	size_t li = pick_full_leaf(&f, &leaves, 3, 0);
	leaf_keys(&f, leaves.v[li].addr, keys, &nk);
	const struct bt_key mid = key_of(keys[nk / 2].objectid + 5);
	ins(&f, &b, &mb, mid, max, ++seed);
	ref_verify(&f, &b, &mb);
	/* It got a leaf of its own, between the two halves of the old one. */
	collect_leaves(&b, &leaves);
	size_t alone = 0;
	for (size_t i = 0; i < leaves.n; i++) {
		if (leaves.v[i].nritems != 1)
			continue;
		leaf_keys(&f, leaves.v[i].addr, keys, &nk);
		alone += bt_key_cmp(&keys[0], &mid) == 0;
	}
	ck_assert_uint_eq(alone, 1);
	/* Before every key, and after every key. */
	ins(&f, &b, &mb, key_of(0), max, ++seed);
	ins(&f, &b, &mb, key_of(10 * (uint64_t)n + 5), max, ++seed);
	ref_verify(&f, &b, &mb);
	/* Right after the last key of a full leaf that is not the rightmost. */
	collect_leaves(&b, &leaves);
	li = pick_full_leaf(&f, &leaves, 3, 1);
	leaf_keys(&f, leaves.v[li].addr, keys, &nk);
	ins(&f, &b, &mb, key_of(keys[nk - 1].objectid + 5), max, ++seed);
	/* Right before the first key of another full leaf. */
	collect_leaves(&b, &leaves);
	li = pick_full_leaf(&f, &leaves, 3, 2);
	leaf_keys(&f, leaves.v[li].addr, keys, &nk);
	ins(&f, &b, &mb, key_of(keys[0].objectid - 3), max, ++seed);
	ref_verify(&f, &b, &mb);

	/* Too large stays too large, and changes nothing. */
	ck_assert_int_eq(bt_insert(&f.tx, &b, KP(3), scratch, max + 1), -EOVERFLOW);
	ck_assert_int_eq(bt_resize(&f.tx, &b, KP(10), max + 1), -EOVERFLOW);
	ck_assert_int_eq(bt_resize(&f.tx, &b, KP(0), max + 1), -EOVERFLOW);
	ck_assert_int_eq(f.tx.error, 0);
	ref_verify(&f, &b, &mb);

	/* Grow an item of a full leaf to the maximum: it no longer fits there, so it moves. */
	collect_leaves(&b, &leaves);
	li = pick_full_leaf(&f, &leaves, 3, 0);
	leaf_keys(&f, leaves.v[li].addr, keys, &nk);
	struct ritem *it = ref_find(&mb, &keys[nk / 2]);
	ck_assert_int_eq(bt_resize(&f.tx, &b, &it->key, max), 0);
	ref_resize(it, max);
	assert_lookup(&b, it);
	ref_verify(&f, &b, &mb);

	/* Grow an item of another full leaf by more than the leaf's free space (not to the max). */
	collect_leaves(&b, &leaves);
	li = pick_full_leaf(&f, &leaves, 3, 1);
	leaf_keys(&f, leaves.v[li].addr, keys, &nk);
	ck_assert_uint_lt(leaf_free(&f, leaves.v[li].addr), 484);
	it = ref_find(&mb, &keys[1]);
	ck_assert_uint_eq(it->len, 16);
	ck_assert_int_eq(bt_resize(&f.tx, &b, &it->key, 500), 0);
	ref_resize(it, 500);
	assert_lookup(&b, it);

	/* Shrink a maximal item. */
	it = ref_find(&mb, KP(0));
	ck_assert_int_eq(bt_resize(&f.tx, &b, &it->key, 10), 0);
	ref_resize(it, 10);
	assert_lookup(&b, it);
	ref_verify(&f, &b, &mb);
	ref_verify(&f, &a, &ma);

	/* All of it on disk and back. */
	fixture_commit(&f);
	fixture_reopen(&f);
	bt_open(&a, &f.fs, OWNER, a.root, a.root_gen, a.level);
	bt_open(&b, &f.fs, OWNER + 1, b.root, b.root_gen, b.level);
	ref_verify(&f, &a, &ma);
	ref_verify(&f, &b, &mb);
	struct btree *roots[] = { &a, &b };
	assert_refcounts_conserved(&f, roots, 2);
	ck_assert_int_eq(f.reports, 0);

	free(keys);
	free(leaves.v);
	ref_free(&ma);
	ref_free(&mb);
	fixture_teardown(&f);
}

START_TEST(max_item_4k)
{
	max_item_case(4096);
}
END_TEST

START_TEST(max_item_16k)
{
	max_item_case(16384);
}
END_TEST

START_TEST(max_item_64k)
{
	max_item_case(BT_MAX_NODESIZE);
}
END_TEST

/* ---- node layout ------------------------------------------------------------------------------ */

START_TEST(node_layout_leaf)
{
	const uint32_t ns = 4096;
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	const uint32_t lens[] = { 0, 1, 17, 100, 5, 300, 0, 64, 2, 999 };
	const uint64_t ids[] = { 50, 10, 90, 30, 70, 20, 80, 40, 60, 0 };
	const uint32_t n = ARRAY_SIZE(lens);
	struct cblock *b;
	const uint8_t *r;

	fixture_setup(&f, "bt-layout", ns, IMG_SIZE);
	f.tx.transid = 7;
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint32_t i = 0; i < n; i++)
		ins(&f, &t, &m, (struct bt_key){ ids[i], (uint8_t)(i * 37), ids[i] * 3 + 1 }, lens[i], i);
	ref_sort(&m);
	ck_assert_uint_eq(t.level, 0);

	b = get_node(&f, t.root);
	r = b->data;
	/* Header, byte by byte (docs/FORMAT.md). */
	ck_assert_mem_eq(r + 8, f.fs.fsid, 16);
	ck_assert_uint_eq(get_le64(r + 24), t.root);
	ck_assert_uint_eq(get_le64(r + 32), 7);
	ck_assert_uint_eq(get_le64(r + 40), OWNER);
	ck_assert_uint_eq(get_le32(r + 48), n);
	ck_assert_uint_eq(r[52], 0);
	ck_assert_uint_eq(r[53], 1);
	ck_assert_uint_eq(get_le16(r + 54), 0);
	for (int i = 56; i < 64; i++)
		ck_assert_uint_eq(r[i], 0);
	/* The same through the accessors. */
	ck_assert_uint_eq(node_level(b), 0);
	ck_assert_uint_eq(node_nritems(b), n);
	ck_assert_uint_eq(node_owner(b), OWNER);
	ck_assert_uint_eq(node_gen(b), f.tx.transid);
	ck_assert_uint_eq(node_hdr(b)->version, BT_NODE_VERSION);
	ck_assert_mem_eq(node_hdr(b)->fsid, f.fs.fsid, 16);

	/* Items: 25-byte headers after the node header, payloads packed from the end, no gaps. */
	uint32_t end = ns;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *it = r + 64 + 25 * i;
		struct bt_key k = { get_le64(it), it[8], get_le64(it + 9) };
		uint32_t off = get_le32(it + 17), size = get_le32(it + 21);
		ck_assert_msg(bt_key_cmp(&k, &m.v[i].key) == 0, "item %u is " KFMT ", want " KFMT, i,
			      KARG(k), KARG(m.v[i].key));
		ck_assert_uint_eq(size, m.v[i].len);
		ck_assert_uint_eq(off + size, end);
		ck_assert_uint_eq(off, leaf_item_offset(b, i));
		ck_assert_mem_eq(r + off, m.v[i].data, size);
		end = off;
	}
	ck_assert_uint_ge(end, 64 + 25 * n);
	ck_assert_uint_eq(leaf_free_space(b, ns), end - 64 - 25 * n);
	bcache_put(f.cache, b);

	/* Writeback seals the checksum over [8, nodesize) and writes exactly the cached bytes. */
	ck_assert_int_eq(bt_writeback(&f.fs), 0);
	b = get_node(&f, t.root);
	r = b->data;
	ck_assert_uint_eq(get_le64(r), cowfs_csum(r + 8, ns - 8));
	uint8_t *disk = alloc_block(ns);
	ck_assert_int_eq(bdev_read(f.bd, t.root, disk, ns), 0);
	ck_assert_mem_eq(disk, r, ns);
	struct cblock cb = { .addr = t.root, .len = ns, .data = disk };
	ck_assert_ptr_null(node_verify(&f.fs, &cb, t.root, 0, 7));
	ck_assert_ptr_null(node_verify(&f.fs, &cb, t.root, 0, 0));
	ck_assert_ptr_nonnull(node_verify(&f.fs, &cb, t.root, 1, 7));
	ck_assert_ptr_nonnull(node_verify(&f.fs, &cb, t.root, 0, 6));
	ck_assert_ptr_nonnull(node_verify(&f.fs, &cb, t.root + ns, 0, 7));
	disk[ns - 1] ^= 1;
	ck_assert_ptr_nonnull(node_verify(&f.fs, &cb, t.root, 0, 7));
	bcache_put(f.cache, b);
	free(disk);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

START_TEST(node_layout_internal)
{
	const uint32_t ns = 4096;
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct nodelist leaves = { 0 };
	const uint32_t n = 5 * ((ns - BT_HDR) / (BT_ITEM + 16));
	struct cblock *b;

	fixture_setup(&f, "bt-layout-int", ns, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint32_t i = 0; i < n; i++)
		ins(&f, &t, &m, key_of(i), 16, i);
	ck_assert_uint_eq(t.level, 1);
	ck_assert_uint_eq(node_max_ptrs(ns), (ns - 64) / 33);
	fixture_commit(&f);
	fixture_reopen(&f);
	bt_open(&t, &f.fs, OWNER, t.root, t.root_gen, t.level);
	collect_leaves(&t, &leaves);

	for (int round = 0; round < 2; round++) {
		b = get_node(&f, t.root);
		const uint8_t *r = b->data;
		ck_assert_uint_eq(get_le64(r), cowfs_csum(r + 8, ns - 8));
		ck_assert_uint_eq(get_le64(r + 24), t.root);
		ck_assert_uint_eq(get_le64(r + 32), t.root_gen);
		ck_assert_uint_eq(get_le64(r + 40), OWNER);
		ck_assert_uint_eq(get_le32(r + 48), leaves.n);
		ck_assert_uint_eq(r[52], 1);
		ck_assert_uint_eq(r[53], 1);
		/* Pointers: 33 bytes each, key = the child's first key, address, child's generation. */
		for (uint32_t i = 0; i < leaves.n; i++) {
			const uint8_t *p = r + 64 + 33 * i;
			struct bt_key k = { get_le64(p), p[8], get_le64(p + 9) }, first;
			struct cblock *c = get_node(&f, get_le64(p + 17));
			ck_assert_uint_eq(get_le64(p + 17), leaves.v[i].addr);
			leaf_item_key(c, 0, &first);
			ck_assert_int_eq(bt_key_cmp(&k, &first), 0);
			ck_assert_uint_eq(get_le64(p + 25), node_gen(c));
			ck_assert_uint_eq(node_gen(c), round == 0 || i != 2 ? 1 : 2);
			ck_assert_uint_eq(node_ptr_gen(b, i), node_gen(c));
			bcache_put(f.cache, c);
		}
		bcache_put(f.cache, b);
		if (round == 1)
			break;
		/* Change one item of the third leaf in transaction 2: that leaf and the root move. */
		{
			struct bt_key lk[512];
			uint32_t nk;
			leaf_keys(&f, leaves.v[2].addr, lk, &nk);
			struct ritem *it = ref_find(&m, &lk[3]);
			gen_data(it->data, it->len, 99);
			ck_assert_int_eq(bt_update(&f.tx, &t, &it->key, it->data, it->len), 0);
		}
		ck_assert_uint_eq(t.root_gen, 2);
		fixture_commit(&f);
		fixture_reopen(&f);
		bt_open(&t, &f.fs, OWNER, t.root, t.root_gen, t.level);
		collect_leaves(&t, &leaves);
	}
	ref_verify(&f, &t, &m);
	free(leaves.v);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/* ---- fill, growth and draining ---------------------------------------------------------------- */

static void fill_case(uint32_t ns, bool reverse)
{
	const uint64_t n = 100000;
	const uint32_t vlen = 16;
	struct fixture f;
	struct btree t;
	struct bt_stats st;
	struct bt_cursor c;
	uint8_t want[16];
	uint32_t len;
	int ret;

	fixture_setup(&f, reverse ? "bt-fill-rev" : "bt-fill", ns, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint64_t j = 0; j < n; j++) {
		uint64_t i = reverse ? n - 1 - j : j;
		gen_data(scratch, vlen, i);
		ret = bt_insert(&f.tx, &t, KP(3 * i + 1), scratch, vlen);
		ck_assert_msg(ret == 0, "insert %" PRIu64 " returned %d", j, ret);
		if (j % 30000 == 29999)
			fixture_commit(&f);
	}
	const uint64_t per = (ns - BT_HDR) / (BT_ITEM + vlen), minleaves = (n + per - 1) / per;
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	fprintf(stderr, "  %s %u-byte nodes: %" PRIu64 " leaves (minimum %" PRIu64 ", %.3fx), %" PRIu64
		" nodes, height %" PRIu64 "\n", reverse ? "reverse" : "sequential", ns, st.leaves,
		minleaves, (double)st.leaves / (double)minleaves, st.nodes, st.height);
	ck_assert_uint_eq(st.items, n);
	if (!reverse)
		ck_assert_msg(st.leaves * 100 <= minleaves * 115,
			      "sequential inserts: %" PRIu64 " leaves, minimum %" PRIu64, st.leaves,
			      minleaves);
	else   /* Splits keep at least half of a leaf. */
		ck_assert_msg(st.leaves * 100 <= minleaves * 210,
			      "reverse inserts: %" PRIu64 " leaves, minimum %" PRIu64, st.leaves,
			      minleaves);
	ck_assert_int_eq(bt_check(&t), 0);

	for (uint64_t i = 0; i < n; i++) {
		ret = bt_lookup(&t, KP(3 * i + 1), got, sizeof(got), &len);
		ck_assert_msg(ret == 0, "lookup %" PRIu64 " returned %d", i, ret);
		ck_assert_uint_eq(len, vlen);
		gen_data(want, vlen, i);
		ck_assert_mem_eq(got, want, vlen);
		ck_assert_int_eq(bt_lookup(&t, KP(3 * i + 2), NULL, 0, &len), -ENOENT);
	}
	bt_cursor_init(&c, &t);
	ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE);
	for (uint64_t i = 0; i < n; i++) {
		struct bt_key k;
		ck_assert_int_eq(ret, 0);
		bt_cursor_item(&c, &k, NULL, NULL);
		ck_assert_uint_eq(k.objectid, 3 * i + 1);
		ret = bt_cursor_next(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	bt_cursor_release(&c);
	fixture_commit(&f);
	struct btree *roots[] = { &t };
	assert_refcounts_conserved(&f, roots, 1);
	fixture_teardown(&f);
}

START_TEST(sequential_fill_16k)
{
	fill_case(16384, false);
}
END_TEST

START_TEST(sequential_fill_4k)
{
	fill_case(4096, false);
}
END_TEST

START_TEST(reverse_fill_16k)
{
	fill_case(16384, true);
}
END_TEST

START_TEST(reverse_fill_4k)
{
	fill_case(4096, true);
}
END_TEST

static void shuffle(uint64_t *v, size_t n, uint64_t *rng)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rng_next(rng) % (i + 1);
		uint64_t tmp = v[i];
		v[i] = v[j];
		v[j] = tmp;
	}
}

START_TEST(delete_all_random_order)
{
	const size_t n = 20000;
	struct fixture f;
	struct btree t;
	struct bt_stats st;
	uint64_t rng = test_seed("delete_all_random_order", 0xde1e7e);
	uint64_t *order = malloc(n * sizeof(*order));
	uint32_t *lens = malloc(n * sizeof(*lens));
	bool *present = calloc(n, sizeof(*present));
	uint32_t len;

	fixture_setup(&f, "bt-drain", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (size_t i = 0; i < n; i++) {
		order[i] = i;
		lens[i] = rng_next(&rng) % 121;
	}
	shuffle(order, n, &rng);
	for (size_t j = 0; j < n; j++) {
		uint64_t i = order[j];
		gen_data(scratch, lens[i], i);
		ck_assert_int_eq(bt_insert(&f.tx, &t, KP(i), scratch, lens[i]), 0);
		present[i] = true;
	}
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	ck_assert_uint_eq(st.items, n);
	ck_assert_uint_ge(st.height, 3);
	fixture_commit(&f);

	shuffle(order, n, &rng);
	for (size_t j = 0; j < n; j++) {
		uint64_t i = order[j];
		int ret = bt_delete(&f.tx, &t, KP(i));
		ck_assert_msg(ret == 0, "delete #%zu (key %" PRIu64 ") returned %d", j, i, ret);
		present[i] = false;
		if (j % 4000 == 3999) {
			fixture_commit(&f);
			ck_assert_int_eq(bt_check(&t), 0);
			ck_assert_int_eq(bt_stats(&t, &st), 0);
			ck_assert_uint_eq(st.items, n - j - 1);
			for (size_t k = 0; k < n; k++) {
				int r = bt_lookup(&t, KP(k), got, sizeof(got), &len);
				ck_assert_int_eq(r, present[k] ? 0 : -ENOENT);
				if (present[k]) {
					gen_data(scratch, lens[k], k);
					ck_assert_uint_eq(len, lens[k]);
					ck_assert_mem_eq(got, scratch, len);
				}
			}
			struct btree *roots[] = { &t };
			assert_refcounts_conserved(&f, roots, 1);
		}
	}
	/* One empty leaf, and nothing else allocated. */
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	ck_assert_uint_eq(st.nodes, 1);
	ck_assert_uint_eq(st.leaves, 1);
	ck_assert_uint_eq(st.items, 0);
	ck_assert_uint_eq(st.height, 1);
	ck_assert_uint_eq(t.level, 0);
	ck_assert_int_eq(bt_check(&t), 0);
	fixture_commit(&f);
	ck_assert_uint_eq(memrefs_allocated(f.mr), 1);
	ck_assert_int_eq(bt_drop(&f.tx, &t), 0);
	ck_assert_uint_eq(memrefs_allocated(f.mr), 0);
	free(order);
	free(lens);
	free(present);
	fixture_teardown(&f);
}
END_TEST

/* ---- cursors --------------------------------------------------------------------------------- */

/* Seek `q` with `mode` and check the position against the reference, then step around it. */
static void check_seek(struct bt_cursor *c, struct refset *m, const struct bt_key *q, int mode)
{
	size_t lb = ref_lower(m, q), want;
	bool eq = lb < m->n && bt_key_cmp(&m->v[lb].key, q) == 0;
	int ret = bt_cursor_seek(c, q, mode);

	if (mode == BT_SEEK_GE)
		want = lb;
	else
		want = eq ? lb : lb - 1;   /* SIZE_MAX when there is none */
	if (want >= m->n) {
		ck_assert_msg(ret == -ENOENT, "seek %s " KFMT " returned %d, want -ENOENT",
			      mode == BT_SEEK_GE ? "GE" : "LE", KARG(*q), ret);
		return;
	}
	ck_assert_msg(ret == 0, "seek %s " KFMT " returned %d", mode == BT_SEEK_GE ? "GE" : "LE",
		      KARG(*q), ret);
	assert_cursor_at(c, &m->v[want]);
	/* next, prev, prev: across leaf edges too. */
	ret = bt_cursor_next(c);
	if (want + 1 == m->n) {
		ck_assert_int_eq(ret, -ENOENT);
		ck_assert_int_eq(bt_cursor_next(c), -ENOENT);
		return;
	}
	ck_assert_int_eq(ret, 0);
	assert_cursor_at(c, &m->v[want + 1]);
	ck_assert_int_eq(bt_cursor_prev(c), 0);
	assert_cursor_at(c, &m->v[want]);
	ret = bt_cursor_prev(c);
	if (want == 0) {
		ck_assert_int_eq(ret, -ENOENT);
		return;
	}
	ck_assert_int_eq(ret, 0);
	assert_cursor_at(c, &m->v[want - 1]);
}

static void check_seek_both(struct bt_cursor *c, struct refset *m, struct bt_key q)
{
	check_seek(c, m, &q, BT_SEEK_GE);
	check_seek(c, m, &q, BT_SEEK_LE);
}

/* The key just below `k` (k must not be the minimum). */
static struct bt_key key_pred(struct bt_key k)
{
	if (k.offset)
		k.offset--;
	else if (k.type) {
		k.type--;
		k.offset = UINT64_MAX;
	} else {
		k.objectid--;
		k.type = UINT8_MAX;
		k.offset = UINT64_MAX;
	}
	return k;
}

static struct bt_key key_succ(struct bt_key k)
{
	if (k.offset != UINT64_MAX)
		k.offset++;
	else if (k.type != UINT8_MAX) {
		k.type++;
		k.offset = 0;
	} else {
		k.objectid++;
		k.type = 0;
		k.offset = 0;
	}
	return k;
}

START_TEST(cursor_scans_and_seeks)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct nodelist leaves = { 0 };
	struct bt_cursor c;
	uint64_t rng = test_seed("cursor_scans_and_seeks", 0xc0de5);
	const uint64_t n = 6000;
	uint64_t *order = malloc(n * sizeof(*order));

	fixture_setup(&f, "bt-cursor", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	shuffle(order, n, &rng);
	for (uint64_t j = 0; j < n; j++) {
		uint64_t i = order[j], id = 10 * i + 10;
		ins(&f, &t, &m, key_of(id), 20 + rng_next(&rng) % 40, id);
		if (i % 25 == 0) {   /* neighbours that differ only in type or offset */
			ins(&f, &t, &m, (struct bt_key){ id, 0, 7 }, 5, id + 1);
			ins(&f, &t, &m, (struct bt_key){ id, 1, 5 }, 6, id + 2);
			ins(&f, &t, &m, (struct bt_key){ id, 2, 0 }, 7, id + 3);
			ins(&f, &t, &m, (struct bt_key){ id, 1, UINT64_MAX }, 8, id + 4);
		}
	}
	ck_assert_uint_ge(t.level, 2);
	ref_verify(&f, &t, &m);   /* full scans forward and backward equal the set, in order */
	bt_cursor_init(&c, &t);

	/* Before the first, after the last. */
	check_seek_both(&c, &m, BT_KEY_MIN);
	check_seek_both(&c, &m, key_of(5));
	check_seek_both(&c, &m, key_pred(m.v[0].key));
	check_seek_both(&c, &m, BT_KEY_MAX);
	check_seek_both(&c, &m, key_succ(m.v[m.n - 1].key));
	check_seek_both(&c, &m, key_of(UINT64_MAX));

	/* Exactly at, just below and just above every key at a leaf edge. */
	collect_leaves(&t, &leaves);
	ck_assert_uint_gt(leaves.n, 20);
	for (size_t i = 0; i < leaves.n; i++) {
		struct bt_key lk[512];
		uint32_t nk;
		leaf_keys(&f, leaves.v[i].addr, lk, &nk);
		const struct bt_key edges[] = { lk[0], lk[nk - 1] };
		for (size_t e = 0; e < 2; e++) {
			check_seek_both(&c, &m, edges[e]);
			check_seek_both(&c, &m, key_pred(edges[e]));
			check_seek_both(&c, &m, key_succ(edges[e]));
		}
	}
	/* Between items (objectid gaps, type and offset gaps), and random keys. */
	for (size_t i = 0; i < m.n; i += 3) {
		struct bt_key k = m.v[i].key;
		check_seek_both(&c, &m, k);
		check_seek_both(&c, &m, (struct bt_key){ k.objectid + 5, 1, 0 });
		check_seek_both(&c, &m, (struct bt_key){ k.objectid, 1, 1 });
		check_seek_both(&c, &m, (struct bt_key){ k.objectid, 1, 6 });
		check_seek_both(&c, &m, (struct bt_key){ k.objectid, 0, 0 });
		check_seek_both(&c, &m, (struct bt_key){ k.objectid, 3, 0 });
	}
	for (int i = 0; i < 2000; i++) {
		uint64_t r = rng_next(&rng);
		check_seek_both(&c, &m, (struct bt_key){ r % (10 * n + 100), (uint8_t)(r >> 32) % 4,
							 (r >> 40) % 9 });
	}
	bt_cursor_release(&c);
	free(order);
	free(leaves.v);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/* Items id*10 (id 1..n) of 20..59 bytes, committed. */
static void build_cursor_tree(struct fixture *f, struct btree *t, struct refset *m, uint64_t n,
			      const char *name)
{
	fixture_setup(f, name, 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f->tx, OWNER, t), 0);
	for (uint64_t i = 1; i <= n; i++)
		ins(f, t, m, key_of(10 * i), 20 + i % 40, i);
	ck_assert_uint_ge(t->level, 1);
	fixture_commit(f);
	ref_sort(m);
}

/*
 * Rewrite every item in the current transaction: every node is then this transaction's own and
 * changes in place, under the cursor's feet (rather than being shadowed away from it).
 */
static void make_all_writable(struct fixture *f, struct btree *t, struct refset *m)
{
	for (size_t i = 0; i < m->n; i++)
		ck_assert_int_eq(bt_update(&f->tx, t, &m->v[i].key, m->v[i].data, m->v[i].len), 0);
}

START_TEST(cursor_delete_current_forward)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct bt_cursor c;
	struct bt_stats st;
	const uint64_t n = 3000;
	int ret;

	build_cursor_tree(&f, &t, &m, n, "bt-cur-delf");
	make_all_writable(&f, &t, &m);
	bt_cursor_init(&c, &t);
	ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(ret == 0, "step %zu returned %d", i, ret);
		assert_cursor_at(&c, &m.v[i]);
		ck_assert_int_eq(bt_delete(&f.tx, &t, &m.v[i].key), 0);
		if (i == n / 2)   /* a commit while the cursor holds its path */
			fixture_commit(&f);
		ret = bt_cursor_next(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_int_eq(bt_cursor_next(&c), -ENOENT);
	bt_cursor_release(&c);
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	ck_assert_uint_eq(st.items, 0);
	ck_assert_uint_eq(st.nodes, 1);
	ck_assert_int_eq(bt_check(&t), 0);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

START_TEST(cursor_delete_current_backward)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct bt_cursor c;
	struct bt_stats st;
	const uint64_t n = 3000;
	int ret;

	build_cursor_tree(&f, &t, &m, n, "bt-cur-delb");
	make_all_writable(&f, &t, &m);
	bt_cursor_init(&c, &t);
	ret = bt_cursor_seek(&c, &BT_KEY_MAX, BT_SEEK_LE);
	for (size_t i = n; i-- > 0;) {
		ck_assert_msg(ret == 0, "step %zu returned %d", i, ret);
		assert_cursor_at(&c, &m.v[i]);
		ck_assert_int_eq(bt_delete(&f.tx, &t, &m.v[i].key), 0);
		ret = bt_cursor_prev(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	bt_cursor_release(&c);
	ck_assert_int_eq(bt_stats(&t, &st), 0);
	ck_assert_uint_eq(st.items, 0);
	ck_assert_uint_eq(st.nodes, 1);
	ck_assert_int_eq(bt_check(&t), 0);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/* Items deleted ahead of the cursor are not returned; the ones after them are. */
START_TEST(cursor_skips_items_deleted_ahead)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct bt_cursor c;
	const uint64_t n = 3000;
	size_t i = 0;
	int ret;

	build_cursor_tree(&f, &t, &m, n, "bt-cur-ahead");
	bool *gone = calloc(n, sizeof(*gone));
	bt_cursor_init(&c, &t);
	ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE);
	for (;;) {
		while (i < n && gone[i])
			i++;
		if (i == n)
			break;
		ck_assert_int_eq(ret, 0);
		assert_cursor_at(&c, &m.v[i]);
		/* Delete the next one or two (sometimes across a leaf edge). */
		for (size_t d = 1; d <= 1 + i % 2 && i + d < n; d++) {
			ck_assert_int_eq(bt_delete(&f.tx, &t, &m.v[i + d].key), 0);
			gone[i + d] = true;
		}
		i++;
		ret = bt_cursor_next(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	bt_cursor_release(&c);
	ck_assert_int_eq(bt_check(&t), 0);
	free(gone);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

START_TEST(cursor_insert_while_iterating_forward)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct bt_cursor c;
	struct bt_key k;
	const uint64_t n = 1500;
	uint64_t want = 100, visited = 0, seed = 1u << 20;
	int ret;

	fixture_setup(&f, "bt-cur-insf", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint64_t i = 1; i <= n; i++)
		ins(&f, &t, &m, key_of(100 * i), 40, i);
	fixture_commit(&f);

	bt_cursor_init(&c, &t);
	ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE);
	while (ret == 0) {
		bt_cursor_item(&c, &k, NULL, NULL);
		ck_assert_msg(k.objectid == want, "cursor at %" PRIu64 ", want %" PRIu64,
			      k.objectid, want);
		assert_cursor_at(&c, ref_find(&m, &k));
		visited++;
		switch (k.objectid % 100) {
		case 0:
			/* Two keys ahead (one of them large, forcing splits now and then) and one behind. */
			ins(&f, &t, &m, key_of(k.objectid + 50), 40, ++seed);
			ins(&f, &t, &m, key_of(k.objectid + 70), k.objectid % 500 ? 40 : 1500, ++seed);
			ins(&f, &t, &m, key_of(k.objectid - 10), 40, ++seed);
			want = k.objectid + 50;
			break;
		case 50:
			want = k.objectid + 20;
			break;
		case 70:
			want = k.objectid + 30;
			break;
		default:
			ck_abort_msg("cursor returned %" PRIu64 ", inserted behind it", k.objectid);
		}
		if (visited % 1000 == 0)
			fixture_commit(&f);
		ret = bt_cursor_next(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_uint_eq(visited, 3 * n);
	bt_cursor_release(&c);
	ck_assert_uint_eq(m.n, 4 * n);
	ref_verify(&f, &t, &m);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

START_TEST(cursor_insert_while_iterating_backward)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct bt_cursor c;
	struct bt_key k;
	const uint64_t n = 1500;
	uint64_t want = 100 * n, visited = 0, seed = 1u << 20;
	int ret;

	fixture_setup(&f, "bt-cur-insb", 4096, IMG_SIZE);
	ck_assert_int_eq(bt_create(&f.tx, OWNER, &t), 0);
	for (uint64_t i = 1; i <= n; i++)
		ins(&f, &t, &m, key_of(100 * i), 40, i);
	fixture_commit(&f);

	bt_cursor_init(&c, &t);
	ret = bt_cursor_seek(&c, &BT_KEY_MAX, BT_SEEK_LE);
	while (ret == 0) {
		bt_cursor_item(&c, &k, NULL, NULL);
		ck_assert_msg(k.objectid == want, "cursor at %" PRIu64 ", want %" PRIu64,
			      k.objectid, want);
		assert_cursor_at(&c, ref_find(&m, &k));
		visited++;
		switch (k.objectid % 100) {
		case 0:
			/* Ahead (smaller keys) must be seen, behind (larger) must not. */
			ins(&f, &t, &m, key_of(k.objectid - 50), k.objectid % 700 ? 40 : 1500, ++seed);
			ins(&f, &t, &m, key_of(k.objectid + 10), 40, ++seed);
			want = k.objectid - 50;
			break;
		case 50:
			want = k.objectid - 50;
			break;
		default:
			ck_abort_msg("cursor returned %" PRIu64 ", inserted behind it", k.objectid);
		}
		ret = bt_cursor_prev(&c);
	}
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_uint_eq(visited, 2 * n);
	bt_cursor_release(&c);
	ck_assert_uint_eq(m.n, 3 * n);
	ref_verify(&f, &t, &m);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/* ---- transaction errors ------------------------------------------------------------------- */

START_TEST(tx_error_is_sticky)
{
	struct fixture f;
	struct btree t, other;
	struct refset m = { 0 };
	const struct bt_key fresh = key_of(5), fresh2 = key_of(7);

	build_cursor_tree(&f, &t, &m, 500, "bt-sticky");
	const struct btree committed = t;
	struct ritem *it = &m.v[100];

	/* After the commit every update shadows the root first: the first allocation fails. */
	memrefs_fail_alloc_after(f.mr, 0, -ENOSPC);
	ck_assert_int_eq(bt_insert(&f.tx, &t, &fresh, scratch, 10), -ENOSPC);
	ck_assert_int_eq(f.tx.error, -ENOSPC);
	/* The allocator works again, but the transaction stays failed. */
	ck_assert_int_eq(bt_insert(&f.tx, &t, &fresh2, scratch, 10), -ENOSPC);
	ck_assert_int_eq(bt_insert(&f.tx, &t, &fresh, scratch, 10), -ENOSPC);
	ck_assert_int_eq(bt_delete(&f.tx, &t, &it->key), -ENOSPC);
	ck_assert_int_eq(bt_update(&f.tx, &t, &it->key, it->data, it->len), -ENOSPC);
	ck_assert_int_eq(bt_resize(&f.tx, &t, &it->key, it->len + 1), -ENOSPC);
	ck_assert_int_eq(bt_resize(&f.tx, &t, &it->key, 1), -ENOSPC);
	ck_assert_int_eq(bt_create(&f.tx, OWNER + 1, &other), -ENOSPC);
	ck_assert_int_eq(bt_clone(&f.tx, &t, OWNER + 1, &other), -ENOSPC);
	ck_assert_int_eq(bt_drop(&f.tx, &t), -ENOSPC);
	ck_assert_int_eq(f.tx.error, -ENOSPC);

	/* Nothing changed: the failed shadow left the committed tree as it was. */
	ck_assert_uint_eq(t.root, committed.root);
	ck_assert_uint_eq(t.root_gen, committed.root_gen);
	uint32_t len;
	ck_assert_int_eq(bt_lookup(&t, &fresh, NULL, 0, &len), -ENOENT);
	ref_verify(&f, &t, &m);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/*
 * Allocation failures at every point of a transaction that splits and merges: the first error
 * is returned, sticks, leaks no cache reference, and the committed tree stays intact on disk.
 */
START_TEST(tx_error_at_every_allocation)
{
	uint64_t seed = test_seed("tx_error_at_every_allocation", 0xe7707);

	for (uint64_t n = 0; n < 40; n++) {
		struct fixture f;
		struct btree t;
		struct refset m = { 0 };
		uint64_t rng = seed + n;
		int ret = 0;

		build_cursor_tree(&f, &t, &m, 800, "bt-allocfail");
		const struct btree committed = t;
		memrefs_fail_alloc_after(f.mr, n, -ENOSPC);
		uint64_t ops, nextid = 1;
		for (ops = 0; ops < 20000; ops++) {
			uint64_t r = rng_next(&rng) % 3;
			if (r == 0) {
				struct bt_key k = key_of(10 * (rng_next(&rng) % 800) + 1 + nextid++ % 9);
				uint32_t len = rng_next(&rng) % 1500;
				ret = bt_insert(&f.tx, &t, &k, scratch, len);
				if (ret == -EEXIST)
					ret = 0;
			} else if (r == 1) {
				struct bt_key k = key_of(10 * (1 + rng_next(&rng) % 800));
				ret = bt_delete(&f.tx, &t, &k);
				if (ret == -ENOENT)
					ret = 0;
			} else {
				struct bt_key k = key_of(10 * (1 + rng_next(&rng) % 800));
				ret = bt_resize(&f.tx, &t, &k, rng_next(&rng) % 1200);
				if (ret == -ENOENT)
					ret = 0;
			}
			if (ret)
				break;
		}
		ck_assert_msg(ret == -ENOSPC, "fail after %" PRIu64 ": op %" PRIu64 " returned %d",
			      n, ops, ret);
		ck_assert_int_eq(f.tx.error, -ENOSPC);
		ck_assert_int_eq(bt_insert(&f.tx, &t, KP(3), scratch, 1), -ENOSPC);
		ck_assert_int_eq(bt_delete(&f.tx, &t, &m.v[0].key), -ENOSPC);
		ck_assert_int_eq(bt_update(&f.tx, &t, &m.v[0].key, m.v[0].data, m.v[0].len),
				 -ENOSPC);
		ck_assert_int_eq(bt_resize(&f.tx, &t, &m.v[0].key, 2), -ENOSPC);

		/* Abandon the transaction: the committed tree is still all there. */
		fixture_reopen(&f);
		bt_open(&t, &f.fs, OWNER, committed.root, committed.root_gen, committed.level);
		ref_verify(&f, &t, &m);
		ck_assert_int_eq(f.reports, 0);
		ref_free(&m);
		fixture_teardown(&f);
	}
}
END_TEST

/* ---- shadowing ------------------------------------------------------------------------------ */

START_TEST(shadowing_moves_the_path_once)
{
	const uint32_t ns = 4096;
	struct fixture f;
	struct btree t, old;
	struct refset m = { 0 };
	struct nodelist before = { 0 }, after = { 0 }, after2 = { 0 };
	uint8_t olddata[64];
	uint32_t len;

	build_cursor_tree(&f, &t, &m, 6000, "bt-shadow");
	ck_assert_uint_ge(t.level, 1);
	ck_assert_uint_eq(f.tx.transid, 2);
	old = t;
	collect_nodes(&t, &before);
	uint64_t allocated = memrefs_allocated(f.mr);

	/* Update one item: every node on its path is shadowed, nothing else moves. */
	struct ritem *it = &m.v[1234];
	memcpy(olddata, it->data, it->len);
	gen_data(it->data, it->len, 777);
	ck_assert_int_eq(bt_update(&f.tx, &t, &it->key, it->data, it->len), 0);
	ck_assert_uint_ne(t.root, old.root);
	ck_assert_uint_eq(t.root_gen, f.tx.transid);
	ck_assert_uint_eq(t.level, old.level);
	collect_nodes(&t, &after);
	ck_assert_uint_eq(after.n, before.n);
	size_t moved = 0;
	for (size_t i = 0; i < after.n; i++)
		moved += !nodelist_has(&before, after.v[i].addr);
	ck_assert_uint_eq(moved, t.level + 1u);
	ck_assert_uint_eq(memrefs_allocated(f.mr), allocated);
	ck_assert_uint_eq(memrefs_refs(f.mr, old.root), 0);

	/* The old root is still on disk as committed, and so is the old version of the item. */
	uint8_t *disk = alloc_block(ns);
	ck_assert_int_eq(bdev_read(f.bd, old.root, disk, ns), 0);
	struct cblock cb = { .addr = old.root, .len = ns, .data = disk };
	ck_assert_ptr_null(node_verify(&f.fs, &cb, old.root, old.level, old.root_gen));
	ck_assert_uint_eq(get_le64(disk + 32), 1);
	bt_open(&old, &f.fs, OWNER, old.root, old.root_gen, old.level);
	ck_assert_int_eq(bt_lookup(&old, &it->key, got, sizeof(got), &len), 0);
	ck_assert_uint_eq(len, it->len);
	ck_assert_mem_eq(got, olddata, len);
	assert_lookup(&t, it);

	/* A second update of the same item in the same transaction moves nothing at all. */
	const uint64_t root2 = t.root;
	collect_nodes(&t, &after2);
	gen_data(it->data, it->len, 779);
	ck_assert_int_eq(bt_update(&f.tx, &t, &it->key, it->data, it->len), 0);
	ck_assert_uint_eq(t.root, root2);
	collect_nodes(&t, &after);
	ck_assert_uint_eq(after.n, after2.n);
	for (size_t i = 0; i < after.n; i++)
		ck_assert_uint_eq(after.v[i].addr, after2.v[i].addr);
	assert_lookup(&t, it);
	/* An update elsewhere in the same transaction: the root stays, only that leaf moves. */
	struct ritem *far = &m.v[5000];
	gen_data(far->data, far->len, 778);
	ck_assert_int_eq(bt_update(&f.tx, &t, &far->key, far->data, far->len), 0);
	ck_assert_uint_eq(t.root, root2);
	ck_assert_uint_eq(t.root_gen, f.tx.transid);
	collect_nodes(&t, &after);
	ck_assert_uint_eq(after.n, after2.n);
	moved = 0;
	for (size_t i = 0; i < after.n; i++)
		moved += after.v[i].addr != after2.v[i].addr;
	ck_assert_uint_eq(moved, t.level);   /* the leaf and its non-root ancestors */
	ck_assert_uint_eq(memrefs_allocated(f.mr), allocated);

	/* Committed: the new generation is what a cold reader sees. */
	fixture_commit(&f);
	fixture_reopen(&f);
	bt_open(&t, &f.fs, OWNER, t.root, t.root_gen, t.level);
	ref_verify(&f, &t, &m);
	ck_assert_int_eq(bdev_read(f.bd, t.root, disk, ns), 0);
	ck_assert_uint_eq(get_le64(disk + 32), 2);
	struct btree *roots[] = { &t };
	assert_refcounts_conserved(&f, roots, 1);
	free(disk);
	free(before.v);
	free(after.v);
	free(after2.v);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

/* ---- bt_check on a node broken in memory -------------------------------------------------- */

static void swap_keys(struct cblock *b, uint32_t i, uint32_t j)
{
	struct bt_disk_key *a = (struct bt_disk_key *)node_disk_key(b, i);
	struct bt_disk_key *c = (struct bt_disk_key *)node_disk_key(b, j);
	struct bt_disk_key tmp;

	memcpy(&tmp, a, sizeof(tmp));
	memcpy(a, c, sizeof(tmp));
	memcpy(c, &tmp, sizeof(tmp));
}

/*
 * Swap keys i and j of a node (a leaf in the middle of a 2-level tree, or the root) in the
 * cache, where it stays marked verified: bt_check must report it, naming the block; swapping
 * back makes the tree clean again.
 */
static void broken_node_case(bool leaf, int i, int j)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct nodelist leaves = { 0 };

	build_cursor_tree(&f, &t, &m, 1000, "bt-check");
	ck_assert_uint_eq(t.level, 1);
	ck_assert_int_eq(bt_check(&t), 0);
	collect_leaves(&t, &leaves);
	uint64_t addr = leaf ? leaves.v[leaves.n / 2].addr : t.root;
	struct cblock *b = get_node(&f, addr);
	int n = (int)node_nritems(b);
	/* Negative indexes count from the end. */
	uint32_t si = (uint32_t)(i < 0 ? n + i : i), sj = (uint32_t)(j < 0 ? n + j : j);
	ck_assert_int_gt(n, 6);
	ck_assert(b->flags & BT_CB_VERIFIED);
	swap_keys(b, si, sj);
	bcache_put(f.cache, b);

	int reports = f.reports;
	int ret = bt_check(&t);
	ck_assert_msg(ret == -EUCLEAN, "bt_check returned %d with keys %u and %u (of %d) of %s %"
		      PRIu64 " swapped", ret, si, sj, n, leaf ? "leaf" : "root", addr);
	ck_assert_int_gt(f.reports, reports);
	if (leaf)
		assert_report_names(&f, addr);

	b = get_node(&f, addr);
	swap_keys(b, si, sj);
	bcache_put(f.cache, b);
	ck_assert_int_eq(bt_check(&t), 0);
	free(leaves.v);
	ref_free(&m);
	fixture_teardown(&f);
}

START_TEST(check_finds_swapped_first_keys_of_leaf)
{
	broken_node_case(true, 0, 1);
}
END_TEST

START_TEST(check_finds_swapped_middle_keys_of_leaf)
{
	broken_node_case(true, 3, 4);
}
END_TEST

START_TEST(check_finds_swapped_last_keys_of_leaf)
{
	broken_node_case(true, -2, -1);
}
END_TEST

START_TEST(check_finds_swapped_keys_of_root)
{
	broken_node_case(false, 2, 3);
}
END_TEST

/* A leaf's last key moved past its right neighbour's first key. */
START_TEST(check_finds_key_beyond_parent_range)
{
	struct fixture f;
	struct btree t;
	struct refset m = { 0 };
	struct nodelist leaves = { 0 };

	build_cursor_tree(&f, &t, &m, 1000, "bt-check-range");
	collect_leaves(&t, &leaves);
	uint64_t addr = leaves.v[1].addr;
	struct cblock *b = get_node(&f, addr);
	struct bt_key k;
	uint32_t last = node_nritems(b) - 1;
	leaf_item_key(b, last, &k);
	struct bt_key beyond = key_of(k.objectid + 1000000);
	bt_key_to_disk(&leaf_item(b, last)->key, &beyond);
	bcache_put(f.cache, b);
	int reports = f.reports;
	ck_assert_int_eq(bt_check(&t), -EUCLEAN);
	ck_assert_int_gt(f.reports, reports);
	assert_report_names(&f, addr);
	free(leaves.v);
	ref_free(&m);
	fixture_teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree");
	TCase *tc;

	tc = tcase_create("basic");
	tcase_add_test(tc, empty_tree);
	tcase_add_test(tc, create_rejects_invalid_nodesize);
	tcase_add_test(tc, one_item_lifecycle);
	tcase_add_test(tc, duplicates_and_missing_keys);
	tcase_add_test(tc, zero_length_items);
	tcase_add_test(tc, key_order_and_extremes);
	suite_add_tcase(s, tc);

	tc = tcase_create("large_items");
	tcase_add_test(tc, max_item_4k);
	tcase_add_test(tc, max_item_16k);
	tcase_add_test(tc, max_item_64k);
	suite_add_tcase(s, tc);

	tc = tcase_create("layout");
	tcase_add_test(tc, node_layout_leaf);
	tcase_add_test(tc, node_layout_internal);
	suite_add_tcase(s, tc);

	tc = tcase_create("fill");
	tcase_add_test(tc, sequential_fill_16k);
	tcase_add_test(tc, sequential_fill_4k);
	tcase_add_test(tc, reverse_fill_16k);
	tcase_add_test(tc, reverse_fill_4k);
	tcase_add_test(tc, delete_all_random_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("cursor");
	tcase_add_test(tc, cursor_scans_and_seeks);
	tcase_add_test(tc, cursor_delete_current_forward);
	tcase_add_test(tc, cursor_delete_current_backward);
	tcase_add_test(tc, cursor_skips_items_deleted_ahead);
	tcase_add_test(tc, cursor_insert_while_iterating_forward);
	tcase_add_test(tc, cursor_insert_while_iterating_backward);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, tx_error_is_sticky);
	tcase_add_test(tc, tx_error_at_every_allocation);
	suite_add_tcase(s, tc);

	tc = tcase_create("shadowing");
	tcase_add_test(tc, shadowing_moves_the_path_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("check");
	tcase_add_test(tc, check_finds_swapped_first_keys_of_leaf);
	tcase_add_test(tc, check_finds_swapped_middle_keys_of_leaf);
	tcase_add_test(tc, check_finds_swapped_last_keys_of_leaf);
	tcase_add_test(tc, check_finds_swapped_keys_of_root);
	tcase_add_test(tc, check_finds_key_beyond_parent_range);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
