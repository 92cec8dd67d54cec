/*
 * Whole-tree walks: visiting every node, checking every structural invariant, counting.
 * These read every reachable node (verifying each as it is read) and never modify anything.
 */
#include <errno.h>

#include "fs/btree/internal.h"
#include "fs/btree/view.h"

struct visit_adapter {
	bt_visit_fn fn;
	void *arg;
};

static int visit_one(void *arg, const struct bt_node *n, uint64_t parent)
{
	struct visit_adapter *va = arg;

	return va->fn(va->arg, bt_node_bytenr(n), bt_node_level(n), bt_node_nritems(n), parent);
}

int bt_visit(struct btree *t, bt_visit_fn fn, void *arg)
{
	struct visit_adapter va = { fn, arg };

	if (t->level >= BT_MAX_LEVEL)
		return -EIO;
	return bt_walk(t, &(struct bt_walk){ .node = visit_one, .arg = &va });
}

struct check_ctx {
	struct bt_fs *fs;
	int problems;
};

static void check_problem(struct check_ctx *cx, uint64_t bytenr, const char *msg)
{
	bt_report(cx->fs, bytenr, msg);
	cx->problems++;
}

/*
 * Check the subtree at `b`: all its keys in [lo, hi) (hi NULL: unbounded), its first key equal
 * to `first` (the parent's pointer key; NULL for the root), non-root nodes non-empty.
 */
static int check_node(struct check_ctx *cx, struct cblock *b, const struct bt_key *lo,
		      const struct bt_key *hi, const struct bt_key *first)
{
	uint32_t n = node_nritems(b);
	struct bt_key k0, kn;
	int ret = 0;

	if (n == 0) {
		if (first)
			check_problem(cx, b->addr, "empty non-root node");
		return 0;
	}
	/* A node cached as verified is not re-verified on read: check its order here too. */
	for (uint32_t i = 1; i < n; i++) {
		struct bt_key a, c;
		bt_key_from_disk(&a, node_disk_key(b, i - 1));
		bt_key_from_disk(&c, node_disk_key(b, i));
		if (bt_key_cmp(&a, &c) >= 0) {
			check_problem(cx, b->addr, "keys out of order");
			break;
		}
	}
	node_first_key(b, &k0);
	bt_key_from_disk(&kn, node_disk_key(b, n - 1));
	if (first && bt_key_cmp(&k0, first) != 0)
		check_problem(cx, b->addr, "first key differs from the parent's pointer key");
	if (bt_key_cmp(&k0, lo) < 0 || (hi && bt_key_cmp(&kn, hi) >= 0))
		check_problem(cx, b->addr, "key outside the range its parent gives it");
	if (node_level(b) == 0)
		return 0;
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		struct bt_key klo, khi;
		struct cblock *c;
		node_ptr_key(b, i, &klo);
		if (i + 1 < n)
			node_ptr_key(b, i + 1, &khi);
		/* Not bt_read_child: a key mismatch is a problem to report, not a reason to stop. */
		ret = bt_read_node(cx->fs, node_blockptr(b, i), node_level(b) - 1,
				   node_ptr_gen(b, i), &c);
		if (ret < 0)
			break;
		ret = check_node(cx, c, &klo, i + 1 < n ? &khi : hi, &klo);
		bcache_put(cx->fs->cache, c);
	}
	return ret;
}

int bt_check(struct btree *t)
{
	struct check_ctx cx = { .fs = t->fs };
	struct cblock *root;
	struct bt_key lo = BT_KEY_MIN;
	int ret = bt_read_root(t, &root);

	if (ret < 0)
		return ret;
	ret = check_node(&cx, root, &lo, NULL, NULL);
	bcache_put(t->fs->cache, root);
	if (ret < 0)
		return ret;
	return cx.problems ? -EUCLEAN : 0;
}

static int count_node(void *arg, uint64_t bytenr, uint8_t level, uint32_t nritems,
		      uint64_t parent)
{
	struct bt_stats *st = arg;

	(void)bytenr, (void)parent;
	st->nodes++;
	if (level == 0) {
		st->leaves++;
		st->items += nritems;
	}
	return 0;
}

int bt_stats(struct btree *t, struct bt_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->height = t->level + 1;
	return bt_visit(t, count_node, st);
}
