/*
 * Exact space of a set of subvolumes (subvol.h: cowfs_subvol_space) and its brute-force
 * recount over every fs tree of the image (fsck.h: cowfs_subvol_space_recount). This level
 * knows which trees are subvolumes; the counting is the extent layer's (fs/extent/exclusive.h).
 * Both are called with fs->lock held.
 */
#include <errno.h>
#include <stdlib.h>

#include "fs/extent/exclusive.h"
#include "fs/super/fsck.h"
#include "fs/super/root_item.h"
#include "fs/super/subvol.h"

/* What the count may take: the quarter of the memory bound that is not caches (fs.h). */
static size_t space_mem_limit(const struct cowfs *fs)
{
	return cowfs_cache_bytes(fs) / 4;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ids sorted, each once, into a new array. */
static int unique_ids(const uint64_t *ids, size_t n, uint64_t **out, size_t *nout)
{
	uint64_t *v = malloc((n ? n : 1) * sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = ids[i];
	qsort(v, n, sizeof(*v), cmp_id);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	*out = v;
	*nout = k;
	return 0;
}

/* Subvolume `id`'s tree: -ENOENT if there is none. */
static int open_fs_tree(struct cowfs *fs, uint64_t id, struct btree **out)
{
	struct cowfs_root *r;
	int ret = subvol_id_valid(id) ? cowfs_tree_open(fs, id, &r) : -ENOENT;

	if (ret == 0)
		*out = &r->t;
	return ret;
}

static void space_of(const struct extent_exclusive *e, struct subvol_space *out)
{
	*out = (struct subvol_space){ .exclusive_data = e->exclusive_data,
				      .exclusive_meta = e->exclusive_meta,
				      .referenced = e->referenced, .nodes_read = e->nodes_read };
}

int cowfs_subvol_space(struct cowfs *fs, const uint64_t *ids, size_t n, bool referenced,
		       struct subvol_space *out)
{
	struct extent_exclusive e;
	struct btree **set = NULL;
	uint64_t *v;
	size_t k;
	int ret = unique_ids(ids, n, &v, &k);

	if (ret < 0)
		return ret;
	set = malloc((k ? k : 1) * sizeof(*set));
	ret = set ? 0 : -ENOMEM;
	for (size_t i = 0; i < k && ret == 0; i++)
		ret = open_fs_tree(fs, v[i], &set[i]);
	if (ret == 0)
		ret = extent_exclusive_of(&fs->ext, set, k, referenced, space_mem_limit(fs), &e);
	if (ret == 0)
		space_of(&e, out);
	free(set);
	free(v);
	return ret;
}

/* ---- the recount: every fs tree, root items and trees made in this transaction -------- */

struct id_list {
	uint64_t *v;
	size_t n, cap;
};

static int id_push(struct id_list *l, uint64_t id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = id;
	return 0;
}

/* Every fs tree: those the root tree has root items for, and those open (new ones have no
 * root item before their first commit), each once. */
static int all_fs_trees(struct cowfs *fs, struct id_list *l)
{
	struct bt_cursor cur;
	struct bt_key k;
	int ret = id_push(l, FS_TREE_ID);

	bt_cursor_init(&cur, &fs->root_tree);
	for (int r = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); r == 0 && ret == 0;
	     r = bt_cursor_next(&cur)) {
		bt_cursor_item(&cur, &k, NULL, NULL);
		if (k.type == ROOT_ITEM_KEY && subvol_id_valid(k.objectid))
			ret = id_push(l, k.objectid);
	}
	bt_cursor_release(&cur);
	for (size_t i = 0; i < fs->nmore && ret == 0; i++)
		if (subvol_id_valid(fs->more[i]->t.owner))
			ret = id_push(l, fs->more[i]->t.owner);
	if (ret == 0) {
		uint64_t *v;
		ret = unique_ids(l->v, l->n, &v, &l->n);
		free(l->v);
		l->v = ret == 0 ? v : NULL;
		l->cap = l->n;
	}
	return ret;
}

static bool id_in(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Whether every id asked for is a tree of the image. */
static int ids_exist(const struct id_list *all, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!id_in(all->v, all->n, ids[i]))
			return -ENOENT;
	return 0;
}

int cowfs_subvol_space_recount(struct cowfs *fs, const uint64_t *ids, size_t n,
			       struct subvol_space *out)
{
	struct id_list all = { 0 };
	struct extent_exclusive e;
	struct btree **trees = NULL;
	bool *in_set = NULL;
	int ret = all_fs_trees(fs, &all);

	if (ret == 0)
		ret = ids_exist(&all, ids, n);
	if (ret == 0) {
		trees = malloc((all.n ? all.n : 1) * sizeof(*trees));
		in_set = malloc(all.n ? all.n : 1);
		ret = trees && in_set ? 0 : -ENOMEM;
	}
	for (size_t i = 0; i < all.n && ret == 0; i++) {
		in_set[i] = id_in(ids, n, all.v[i]);
		ret = open_fs_tree(fs, all.v[i], &trees[i]);
	}
	if (ret == 0)
		ret = extent_exclusive_recount(&fs->ext, trees, in_set, all.n, 0, &e);
	if (ret == 0)
		space_of(&e, out);
	free(trees);
	free(in_set);
	free(all.v);
	return ret;
}
