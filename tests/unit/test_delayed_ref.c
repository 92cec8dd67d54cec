/*
 * Delayed references (fs/extent/delayed_ref.c): backref keys of one head found again however
 * many there are (a linear scan below DREF_INDEX_MIN, an index past it), deltas summed per
 * key, heads found by extent start across table growth.
 */
#include <check.h>
#include <stdlib.h>

#include "fs/extent/delayed_ref.h"
#include "tests/support/fixture.h"

/* Keys of a data extent cut into `pieces` pieces of one file, as random writes leave it. */
#define PIECES 20000u

struct key_model {
	uint64_t offset;
	int64_t delta;
	bool seen;
};

START_TEST(many_backrefs_of_one_head)
{
	struct dref_table t;
	struct dref_head *h;
	struct key_model *m = calloc(PIECES, sizeof(*m));
	uint64_t seed = 42;
	uint32_t distinct = 0;

	ck_assert_int_eq(dref_table_init(&t), 0);
	h = dref_get(&t, 1ull << 30);
	ck_assert_ptr_nonnull(h);
	for (uint32_t i = 0; i < PIECES; i++)
		m[i].offset = (uint64_t)i * 4096 * 3;
	/* Adds and drops in random order, keys repeating, through every index size. */
	for (uint32_t n = 0; n < 5 * PIECES; n++) {
		uint32_t i = (uint32_t)(rng_next(&seed) % (n < PIECES ? n + 1 : PIECES));
		int64_t d = rng_next(&seed) & 1 ? 1 : -1;
		ck_assert_int_eq(dref_backref_add(h, 5, 257, m[i].offset, d), 0);
		m[i].delta += d;
		distinct += !m[i].seen;
		m[i].seen = true;
		ck_assert_uint_eq(h->nback, distinct);
	}
	/* Every key once, with the sum of its deltas; another inode's key is another key. */
	for (uint32_t i = 0; i < h->nback; i++) {
		const struct dref_backref *b = &h->back[i];
		ck_assert_uint_eq(b->owner, 5);
		ck_assert_uint_eq(b->inode, 257);
		ck_assert_uint_eq(b->offset % (4096 * 3), 0);
		ck_assert_int_eq(b->delta, m[b->offset / (4096 * 3)].delta);
	}
	ck_assert_int_eq(dref_backref_add(h, 5, 258, m[0].offset, 1), 0);
	ck_assert_uint_eq(h->nback, distinct + 1);
	ck_assert_int_eq(dref_backref_add(h, 5, 258, m[0].offset, -1), 0);
	ck_assert_uint_eq(h->nback, distinct + 1);
	ck_assert_int_eq(h->back[distinct].delta, 0);
	ck_assert_ptr_eq(dref_find(&t, 1ull << 30), h);
	dref_table_destroy(&t);
	free(m);
}
END_TEST

START_TEST(heads_found_across_growth)
{
	struct dref_table t;

	ck_assert_int_eq(dref_table_init(&t), 0);
	for (uint64_t i = 1; i <= 10000; i++) {
		struct dref_head *h = dref_get(&t, i * 16384);
		ck_assert_ptr_nonnull(h);
		ck_assert_int_eq(dref_backref_add(h, i, 0, 0, 1), 0);
	}
	ck_assert_uint_eq(t.count, 10000);
	for (uint64_t i = 1; i <= 10000; i++) {
		struct dref_head *h = dref_find(&t, i * 16384);
		ck_assert_ptr_nonnull(h);
		ck_assert_uint_eq(h->nback, 1);
		ck_assert_uint_eq(h->back[0].owner, i);
	}
	ck_assert_ptr_null(dref_find(&t, 16384 + 1));
	dref_table_destroy(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("delayed_ref");
	TCase *tc = tcase_create("delayed_ref");

	tcase_add_test(tc, many_backrefs_of_one_head);
	tcase_add_test(tc, heads_found_across_growth);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
