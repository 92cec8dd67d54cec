/* The read-only node view and the whole-tree walk (view.h). */
#include "fs/btree/view.h"

#include <errno.h>
#include <stdlib.h>

#include "fs/btree/internal.h"

int bt_node_get(struct bt_fs *fs, uint64_t bytenr, uint8_t level, uint64_t gen,
		struct bt_node *out)
{
	out->fs = fs;
	out->b = NULL;
	if (level >= BT_MAX_LEVEL) {
		bt_report(fs, bytenr, "tree level out of range");
		return -EIO;
	}
	return bt_read_node(fs, bytenr, level, gen, &out->b);
}

void bt_node_put(struct bt_node *n)
{
	if (n->b)
		bcache_put(n->fs->cache, n->b);
	n->b = NULL;
}

uint64_t bt_node_bytenr(const struct bt_node *n) { return n->b->addr; }
uint8_t bt_node_level(const struct bt_node *n) { return node_level(n->b); }
uint32_t bt_node_nritems(const struct bt_node *n) { return node_nritems(n->b); }
uint64_t bt_node_generation(const struct bt_node *n) { return node_gen(n->b); }
uint64_t bt_node_owner(const struct bt_node *n) { return node_owner(n->b); }

void bt_node_key(const struct bt_node *n, uint32_t i, struct bt_key *k)
{
	bt_key_from_disk(k, node_disk_key(n->b, i));
}

uint64_t bt_node_child(const struct bt_node *n, uint32_t i, uint64_t *gen)
{
	if (gen)
		*gen = node_ptr_gen(n->b, i);
	return node_blockptr(n->b, i);
}

void bt_node_item(const struct bt_node *n, uint32_t i, const void **data, uint32_t *len)
{
	*data = leaf_item_data(n->b, i);
	*len = leaf_item_size(n->b, i);
}

uint32_t bt_node_item_offset(const struct bt_node *n, uint32_t i)
{
	return leaf_item_offset(n->b, i);
}

/* One call of the cache's, so that its bound on one read-ahead holds for the whole of it. */
size_t bt_prefetch(struct bt_fs *fs, const uint64_t *bytenrs, size_t n)
{
	uint64_t *valid = malloc(n * sizeof(*valid));
	size_t k = 0;
	int ret;

	if (!valid)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (bt_node_addr_valid(fs, bytenrs[i]))
			valid[k++] = bytenrs[i];
	ret = k ? bcache_prefetch(fs->cache, valid, k, fs->nodesize) : 0;
	free(valid);
	return ret > 0 ? (size_t)ret : 0;
}

void bt_readahead(struct bt_fs *fs, const uint64_t *bytenrs, size_t n)
{
	uint64_t *valid = n ? malloc(n * sizeof(*valid)) : NULL;
	size_t k = 0;

	if (!valid)
		return;
	for (size_t i = 0; i < n; i++)
		if (bt_node_addr_valid(fs, bytenrs[i]))
			valid[k++] = bytenrs[i];
	bcache_readahead(fs->cache, valid, k, fs->nodesize);
	free(valid);
}

int bt_node_peek_level(struct bt_fs *fs, uint64_t bytenr, uint8_t *level)
{
	struct cblock *b;
	int ret = bcache_get(fs->cache, bytenr, fs->nodesize, &b);

	if (ret < 0)
		return ret;
	*level = node_level(b);
	bcache_put(fs->cache, b);
	return 0;
}

static int walk_node(struct bt_fs *fs, const struct bt_walk *w, uint64_t bytenr, uint8_t level,
		     uint64_t gen, const struct bt_node *parent, bool entered);

/* The children of `n` one after the other, each asked of `enter` just before it is walked. */
static int walk_children(struct bt_fs *fs, const struct bt_walk *w, const struct bt_node *n)
{
	int ret = 0;

	for (uint32_t i = 0; i < node_nritems(n->b) && ret == 0; i++)
		ret = walk_node(fs, w, node_blockptr(n->b, i), node_level(n->b) - 1,
				node_ptr_gen(n->b, i), n, false);
	return ret;
}

/*
 * The same, read ahead (w->prefetch): enter is asked about every child first; the device is
 * asked to start reading all those it accepts (bt_readahead), and they are then read into the
 * cache a window at a time (bt_prefetch) and walked. A window of 32 nodes (512 KiB of 16 KiB
 * nodes) is still in the CPU's cache when they are verified right after; the reads of the
 * windows after it are in flight meanwhile.
 */
#define WALK_WINDOW 32

static int walk_children_prefetched(struct bt_fs *fs, const struct bt_walk *w,
				    const struct bt_node *n)
{
	uint32_t nr = node_nritems(n->b), k = 0;
	uint32_t *slots = malloc(nr * sizeof(*slots) + 1);
	uint64_t *addrs = malloc(nr * sizeof(*addrs) + 1);
	uint8_t level = node_level(n->b) - 1;
	int ret = slots && addrs ? 0 : -ENOMEM;

	for (uint32_t i = 0; i < nr && ret == 0; i++) {
		ret = w->enter ? w->enter(w->arg, node_blockptr(n->b, i), level, n) : 0;
		if (ret == 0) {
			addrs[k] = node_blockptr(n->b, i);
			slots[k++] = i;
		}
		ret = ret < 0 ? ret : 0;
	}
	if (ret == 0 && k > 1)
		bt_readahead(fs, addrs, k);
	for (uint32_t from = 0; from < k && ret == 0; from += WALK_WINDOW) {
		uint32_t m = k - from < WALK_WINDOW ? k - from : WALK_WINDOW;
		if (m > 1)
			(void)bt_prefetch(fs, addrs + from, m);
		for (uint32_t j = from; j < from + m && ret == 0; j++)
			ret = walk_node(fs, w, addrs[j], level, node_ptr_gen(n->b, slots[j]), n,
					true);
	}
	free(slots);
	free(addrs);
	return ret;
}

/* `entered`: enter was asked about this node already and accepted it. */
static int walk_node(struct bt_fs *fs, const struct bt_walk *w, uint64_t bytenr, uint8_t level,
		     uint64_t gen, const struct bt_node *parent, bool entered)
{
	uint64_t parent_addr = parent ? bt_node_bytenr(parent) : 0;
	struct bt_node n;
	int ret = w->enter && !entered ? w->enter(w->arg, bytenr, level, parent) : 0;

	if (ret != 0)
		return ret < 0 ? ret : 0;
	ret = bt_node_get(fs, bytenr, level, gen, &n);
	if (ret < 0) {
		if (ret == -ENOMEM || !w->unreadable)
			return ret;
		return w->unreadable(w->arg, bytenr, level, parent_addr, ret);
	}
	ret = w->node(w->arg, &n, parent_addr);
	if (ret == 0 && level > 0)
		ret = w->prefetch ? walk_children_prefetched(fs, w, &n) : walk_children(fs, w, &n);
	bt_node_put(&n);
	return ret < 0 ? ret : 0;
}

int bt_walk(struct btree *t, const struct bt_walk *w)
{
	if (t->root == 0)
		return -EIO;
	return walk_node(t->fs, w, t->root, t->level, t->root_gen, NULL, false);
}
