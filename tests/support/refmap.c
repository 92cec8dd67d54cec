#include "tests/support/refmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

size_t ref_lower(const struct refmap *m, const struct bt_key *k)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (bt_key_cmp(&m->v[mid].key, k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ref_item *ref_find(struct refmap *m, const struct bt_key *k)
{
	size_t i = ref_lower(m, k);
	return i < m->n && bt_key_cmp(&m->v[i].key, k) == 0 ? &m->v[i] : NULL;
}

void ref_insert(struct refmap *m, const struct bt_key *k, const void *d, uint32_t len)
{
	size_t i = ref_lower(m, k);

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		assert(m->v);
	}
	memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
	m->v[i].key = *k;
	m->v[i].len = len;
	m->v[i].data = malloc(len ? len : 1);
	assert(m->v[i].data);
	memcpy(m->v[i].data, d, len);
	m->n++;
}

void ref_delete(struct refmap *m, struct ref_item *it)
{
	size_t i = it - m->v;

	free(it->data);
	memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
	m->n--;
}

void ref_copy(struct refmap *dst, const struct refmap *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++)
		ref_insert(dst, &src->v[i].key, src->v[i].data, src->v[i].len);
}

void ref_free(struct refmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].data);
	free(m->v);
	memset(m, 0, sizeof(*m));
}
