/* The in-memory table of delayed reference changes: a hash of heads keyed by extent start. */
#include "fs/extent/delayed_ref.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DREF_MIN_BUCKETS 1024u

static size_t bucket_of(const struct dref_table *t, uint64_t bytenr)
{
	uint64_t h = bytenr * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 17) & (t->nbuckets - 1);
}

int dref_table_init(struct dref_table *t)
{
	t->nbuckets = DREF_MIN_BUCKETS;
	t->count = 0;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -ENOMEM;
}

static void head_free(struct dref_head *h)
{
	free(h->back);
	free(h->slots);
	free(h);
}

static void table_free_heads(struct dref_table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct dref_head *h = t->buckets[i];
			t->buckets[i] = h->next;
			head_free(h);
		}
	}
	t->count = 0;
}

void dref_table_clear(struct dref_table *t)
{
	table_free_heads(t);
}

void dref_table_destroy(struct dref_table *t)
{
	table_free_heads(t);
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

struct dref_head *dref_find(struct dref_table *t, uint64_t bytenr)
{
	struct dref_head *h = t->buckets[bucket_of(t, bytenr)];

	while (h && h->bytenr != bytenr)
		h = h->next;
	return h;
}

/* Rehash into `nbuckets` buckets (a power of two). */
static void table_resize(struct dref_table *t, size_t nbuckets)
{
	struct dref_table bigger = { .nbuckets = nbuckets, .count = t->count };

	bigger.buckets = calloc(bigger.nbuckets, sizeof(*bigger.buckets));
	if (!bigger.buckets)
		return;   /* chains of another length, still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct dref_head *h = t->buckets[i];
			size_t b = bucket_of(&bigger, h->bytenr);
			t->buckets[i] = h->next;
			h->next = bigger.buckets[b];
			bigger.buckets[b] = h;
		}
	}
	free(t->buckets);
	*t = bigger;
}

struct dref_head *dref_get(struct dref_table *t, uint64_t bytenr)
{
	struct dref_head *h = dref_find(t, bytenr);

	if (h)
		return h;
	/* Keep chains short: double the buckets when there are more heads than buckets. */
	if (t->count >= t->nbuckets)
		table_resize(t, t->nbuckets * 2);
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->bytenr = bytenr;
	size_t b = bucket_of(t, bytenr);
	h->next = t->buckets[b];
	t->buckets[b] = h;
	t->count++;
	return h;
}

#define DREF_INDEX_MIN 16u

static uint32_t backref_hash(uint64_t owner, uint64_t inode, uint64_t offset)
{
	uint64_t h = (owner * 0x9e3779b97f4a7c15ULL) ^ (inode * 0xc2b2ae3d27d4eb4fULL) ^
		     (offset * 0x165667b19e3779f9ULL);

	return (uint32_t)(h >> 32);
}

static bool backref_is(const struct dref_backref *b, uint64_t owner, uint64_t inode,
		       uint64_t offset)
{
	return b->owner == owner && b->inode == inode && b->offset == offset;
}

/* The index slot for the key: the one holding it, or the empty one where it would go. */
static uint32_t *index_slot(const struct dref_head *h, uint64_t owner, uint64_t inode,
			    uint64_t offset)
{
	uint32_t mask = h->nslots - 1;

	for (uint32_t i = backref_hash(owner, inode, offset) & mask;; i = (i + 1) & mask) {
		uint32_t *s = &h->slots[i];
		if (*s == 0 || backref_is(&h->back[*s - 1], owner, inode, offset))
			return s;
	}
}

/* Index every backref in `nslots` slots. On -ENOMEM the old index (or none) stays. */
static int index_build(struct dref_head *h, uint32_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	free(h->slots);
	h->slots = slots;
	h->nslots = nslots;
	for (uint32_t i = 0; i < h->nback; i++) {
		const struct dref_backref *b = &h->back[i];
		*index_slot(h, b->owner, b->inode, b->offset) = i + 1;
	}
	return 0;
}

static struct dref_backref *backref_find(const struct dref_head *h, uint64_t owner,
					 uint64_t inode, uint64_t offset)
{
	uint32_t s;

	if (h->slots) {
		s = *index_slot(h, owner, inode, offset);
		return s ? &h->back[s - 1] : NULL;
	}
	for (uint32_t i = 0; i < h->nback; i++)
		if (backref_is(&h->back[i], owner, inode, offset))
			return &h->back[i];
	return NULL;
}

int dref_backref_add(struct dref_head *h, uint64_t owner, uint64_t inode, uint64_t offset,
		     int64_t delta)
{
	struct dref_backref *b = backref_find(h, owner, inode, offset);

	if (b) {
		b->delta += delta;
		return 0;
	}
	if (h->nback == h->capback) {
		uint32_t cap = h->capback ? h->capback * 2 : 2;
		struct dref_backref *nb = realloc(h->back, cap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		h->back = nb;
		h->capback = cap;
	}
	/* Grow the index before adding, so that a failure leaves everything as it was. */
	if (h->nback + 1 >= DREF_INDEX_MIN && 2 * (h->nback + 1) > h->nslots &&
	    index_build(h, h->nslots ? 2 * h->nslots : 4 * DREF_INDEX_MIN) < 0)
		return -ENOMEM;
	h->back[h->nback++] = (struct dref_backref){ owner, inode, offset, delta };
	if (h->slots)
		*index_slot(h, owner, inode, offset) = h->nback;
	return 0;
}

bool dref_head_settled(const struct dref_head *h)
{
	if (h->delta || h->is_new)
		return false;
	for (uint32_t i = 0; i < h->nback; i++)
		if (h->back[i].delta)
			return false;
	return true;
}

void dref_remove(struct dref_table *t, struct dref_head *h)
{
	struct dref_head **pp = &t->buckets[bucket_of(t, h->bytenr)];

	while (*pp != h)
		pp = &(*pp)->next;
	*pp = h->next;
	t->count--;
	head_free(h);
}

void dref_table_shrink(struct dref_table *t)
{
	size_t n = t->nbuckets;

	while (n > DREF_MIN_BUCKETS && t->count * 4 < n)
		n /= 2;
	if (n != t->nbuckets)
		table_resize(t, n);
}

static int cmp_head(const void *a, const void *b)
{
	const struct dref_head *x = *(struct dref_head *const *)a;
	const struct dref_head *y = *(struct dref_head *const *)b;
	return x->bytenr < y->bytenr ? -1 : x->bytenr > y->bytenr;
}

int dref_snapshot(struct dref_table *t, struct dref_head ***out, size_t *n)
{
	struct dref_head **v = malloc((t->count ? t->count : 1) * sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct dref_head *h = t->buckets[i]; h; h = h->next)
			v[k++] = h;
	qsort(v, k, sizeof(*v), cmp_head);
	*out = v;
	*n = k;
	return 0;
}
