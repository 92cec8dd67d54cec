/* A sorted-array reference map (key -> bytes): the model the B+tree tests compare against. */
#ifndef COWFS_TESTS_REFMAP_H
#define COWFS_TESTS_REFMAP_H

#include <stddef.h>
#include <stdint.h>

#include "fs/btree/key.h"

struct ref_item {
	struct bt_key key;
	uint32_t len;
	uint8_t *data;
};

struct refmap {
	struct ref_item *v;
	size_t n, cap;
};

size_t ref_lower(const struct refmap *m, const struct bt_key *k);   /* first item >= k */
struct ref_item *ref_find(struct refmap *m, const struct bt_key *k);
void ref_insert(struct refmap *m, const struct bt_key *k, const void *d, uint32_t len);
void ref_delete(struct refmap *m, struct ref_item *it);
void ref_copy(struct refmap *dst, const struct refmap *src);
void ref_free(struct refmap *m);

#endif
