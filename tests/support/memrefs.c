#include "tests/support/memrefs.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/lib/endian.h"

/* Open-addressing table u64 -> u64 with tombstones; key 0 is never a valid key here. */
struct u64map {
	uint64_t *keys, *vals;
	size_t cap, used, live;
};

#define MAP_EMPTY 0
#define MAP_TOMB UINT64_MAX

static size_t map_hash(uint64_t k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

static void map_put(struct u64map *m, uint64_t k, uint64_t v);

static void map_grow(struct u64map *m)
{
	struct u64map old = *m;

	m->cap = old.cap ? old.cap * 2 : 1024;
	m->keys = calloc(m->cap, sizeof(*m->keys));
	m->vals = calloc(m->cap, sizeof(*m->vals));
	assert(m->keys && m->vals);
	m->used = m->live = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.keys[i] != MAP_EMPTY && old.keys[i] != MAP_TOMB)
			map_put(m, old.keys[i], old.vals[i]);
	free(old.keys);
	free(old.vals);
}

static size_t map_find(const struct u64map *m, uint64_t k)
{
	if (!m->cap)
		return SIZE_MAX;
	for (size_t i = map_hash(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == k)
			return i;
		if (m->keys[i] == MAP_EMPTY)
			return SIZE_MAX;
	}
}

static void map_put(struct u64map *m, uint64_t k, uint64_t v)
{
	size_t i = map_find(m, k);

	if (i != SIZE_MAX) {
		m->vals[i] = v;
		return;
	}
	if ((m->used + 1) * 4 >= m->cap * 3)
		map_grow(m);
	for (i = map_hash(k, m->cap); m->keys[i] != MAP_EMPTY && m->keys[i] != MAP_TOMB;
	     i = (i + 1) & (m->cap - 1))
		;
	if (m->keys[i] == MAP_EMPTY)
		m->used++;
	m->keys[i] = k;
	m->vals[i] = v;
	m->live++;
}

static uint64_t map_get(const struct u64map *m, uint64_t k)
{
	size_t i = map_find(m, k);
	return i == SIZE_MAX ? 0 : m->vals[i];
}

static void map_del(struct u64map *m, uint64_t k)
{
	size_t i = map_find(m, k);
	if (i != SIZE_MAX) {
		m->keys[i] = MAP_TOMB;
		m->live--;
	}
}

/*
 * Backref counts are kept per (block, owner) and (extent id, owner) in one u64 key: block
 * addresses are node-aligned and test owners are small, so the low 12 bits hold the owner.
 */
#define OWNER_BITS 12

static uint64_t pair_key(uint64_t hi, uint64_t owner)
{
	assert(owner && owner < (1u << OWNER_BITS) && hi < (1ull << (64 - OWNER_BITS)));
	return hi << OWNER_BITS | owner;
}

struct memrefs {
	uint64_t start, end, next;
	uint32_t nodesize;
	struct u64map refs;        /* bytenr -> refcount */
	struct u64map backrefs;    /* (bytenr, owner) -> count */
	struct u64map ext;         /* extent id -> refcount */
	struct u64map ext_backrefs;/* (extent id, owner) -> count */
	uint64_t *free, *pinned;   /* stacks of reusable / pinned block addresses */
	size_t nfree, npinned, capfree, cappinned;
	uint64_t fail_after;
	int fail_err;
};

static void push(uint64_t **stack, size_t *n, size_t *cap, uint64_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*stack = realloc(*stack, *cap * sizeof(**stack));
		assert(*stack);
	}
	(*stack)[(*n)++] = v;
}

/* Add `delta` to a counter, deleting it at zero; -EUCLEAN if it would go negative. */
static int count_add(struct u64map *map, uint64_t key, int delta)
{
	uint64_t r = map_get(map, key);

	if (delta < 0 && r < (uint64_t)-delta)
		return -EUCLEAN;
	r += delta;
	if (r)
		map_put(map, key, r);
	else
		map_del(map, key);
	return 0;
}

static int mr_alloc(void *ctx, struct bt_trans *tx, uint8_t level, uint64_t ref_owner,
		    uint64_t hint, uint64_t *bytenr)
{
	struct memrefs *m = ctx;
	(void)tx;

	(void)level, (void)hint;
	if (m->fail_err) {
		if (m->fail_after == 0) {
			int err = m->fail_err;
			m->fail_err = 0;
			return err;
		}
		m->fail_after--;
	}
	if (m->nfree) {
		*bytenr = m->free[--m->nfree];
	} else {
		if (m->next + m->nodesize > m->end)
			return -ENOSPC;
		*bytenr = m->next;
		m->next += m->nodesize;
	}
	map_put(&m->refs, *bytenr, 1);
	return count_add(&m->backrefs, pair_key(*bytenr, ref_owner), +1);
}

static int mr_ref_add(void *ctx, struct bt_trans *tx, uint64_t bytenr, uint8_t level,
		      uint64_t ref_owner)
{
	struct memrefs *m = ctx;
	uint64_t r = map_get(&m->refs, bytenr);
	(void)tx;

	(void)level;
	if (!r)
		return -EUCLEAN;
	map_put(&m->refs, bytenr, r + 1);
	return count_add(&m->backrefs, pair_key(bytenr, ref_owner), +1);
}

static int mr_ref_drop(void *ctx, struct bt_trans *tx, uint64_t bytenr, uint8_t level,
		       uint64_t ref_owner, uint64_t *remaining)
{
	struct memrefs *m = ctx;
	uint64_t r = map_get(&m->refs, bytenr);
	(void)tx;

	(void)level;
	/* A drop under a key that holds no reference is a backref bug, even if the total is fine. */
	if (!r || count_add(&m->backrefs, pair_key(bytenr, ref_owner), -1) < 0)
		return -EUCLEAN;
	if (--r == 0) {
		map_del(&m->refs, bytenr);
		push(&m->pinned, &m->npinned, &m->cappinned, bytenr);
	} else {
		map_put(&m->refs, bytenr, r);
	}
	*remaining = r;
	return 0;
}

static int mr_refs(void *ctx, uint64_t bytenr, uint64_t *refs)
{
	struct memrefs *m = ctx;

	*refs = map_get(&m->refs, bytenr);
	return *refs ? 0 : -EUCLEAN;
}

static int mr_item_refs(void *ctx, struct bt_trans *tx, uint64_t leaf_owner, uint64_t leaf,
			const struct bt_key *key,
			const void *data, uint32_t len, int delta)
{
	struct memrefs *m = ctx;
	uint64_t id;
	(void)tx, (void)leaf;

	if (key->type != MEMREFS_EXT_TYPE || len < 8)
		return 0;
	id = get_le64(data);
	if (count_add(&m->ext_backrefs, pair_key(id, leaf_owner), delta) < 0)
		return -EUCLEAN;
	return count_add(&m->ext, id, delta);
}

const struct bt_ops memrefs_ops = {
	.block_alloc = mr_alloc,
	.block_ref_add = mr_ref_add,
	.block_ref_drop = mr_ref_drop,
	.block_refs = mr_refs,
	.item_refs = mr_item_refs,
};

struct memrefs *memrefs_create(uint64_t start, uint64_t end, uint32_t nodesize)
{
	struct memrefs *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->start = m->next = ALIGN_UP(start, nodesize);
	m->end = end;
	m->nodesize = nodesize;
	return m;
}

void memrefs_destroy(struct memrefs *m)
{
	if (!m)
		return;
	free(m->refs.keys);
	free(m->refs.vals);
	free(m->ext.keys);
	free(m->ext.vals);
	free(m->backrefs.keys);
	free(m->backrefs.vals);
	free(m->ext_backrefs.keys);
	free(m->ext_backrefs.vals);
	free(m->free);
	free(m->pinned);
	free(m);
}

uint64_t memrefs_refs(struct memrefs *m, uint64_t bytenr) { return map_get(&m->refs, bytenr); }
uint64_t memrefs_allocated(struct memrefs *m) { return m->refs.live; }

void memrefs_unpin(struct memrefs *m)
{
	while (m->npinned)
		push(&m->free, &m->nfree, &m->capfree, m->pinned[--m->npinned]);
}

static int map_for_each(struct u64map *map, int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	for (size_t i = 0; i < map->cap; i++) {
		if (map->keys[i] == MAP_EMPTY || map->keys[i] == MAP_TOMB)
			continue;
		int ret = fn(arg, map->keys[i], map->vals[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int memrefs_for_each(struct memrefs *m, int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	return map_for_each(&m->refs, fn, arg);
}

uint64_t memrefs_ext_refs(struct memrefs *m, uint64_t id) { return map_get(&m->ext, id); }

int memrefs_for_each_ext(struct memrefs *m, int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	return map_for_each(&m->ext, fn, arg);
}

uint64_t memrefs_backref(struct memrefs *m, uint64_t bytenr, uint64_t owner)
{
	return map_get(&m->backrefs, pair_key(bytenr, owner));
}

uint64_t memrefs_ext_backref(struct memrefs *m, uint64_t id, uint64_t owner)
{
	return map_get(&m->ext_backrefs, pair_key(id, owner));
}

uint64_t memrefs_backref_keys(struct memrefs *m) { return m->backrefs.live; }
uint64_t memrefs_ext_backref_keys(struct memrefs *m) { return m->ext_backrefs.live; }

void memrefs_fail_alloc_after(struct memrefs *m, uint64_t n, int err)
{
	m->fail_after = n;
	m->fail_err = err;
}
