/*
 * Nodes and trees (parts.h): a tree node by node, parents before children, every tree the root
 * tree names, or one block by address. A node that cannot be read is one error line and the
 * walk goes on without its subtree, so a damaged tree dumps as far as it can be read.
 */
#include "tools/dump/parts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fs/lib/endian.h"
#include "fs/super/super_format.h"
#include "tools/dump/names.h"
#include "tools/prog.h"

void dump_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct dump *d = arg;

	d->reports++;
	fprintf(d->err, PROG ": block %" PRIu64 ": %s\n", bytenr, msg);
	snprintf(d->last_msg, sizeof(d->last_msg), "%s", msg);
}

static void dump_ptrs(struct dump *d, const struct bt_node *n)
{
	struct out *o = d->o;
	struct bt_key k;
	uint64_t child, gen;

	out_arr_begin(o, "ptrs", NULL);
	for (uint32_t i = 0; i < bt_node_nritems(n); i++) {
		bt_node_key(n, i, &k);
		child = bt_node_child(n, i, &gen);
		out_obj_begin(o, NULL, "ptr", FRAME_LINE);
		out_anon_u64(o, "slot", i);
		out_key(o, "key", &k);
		out_u64(o, "blockptr", child);
		out_u64(o, "generation", gen);
		out_obj_end(o);
	}
	out_arr_end(o);
}

static void dump_items(struct dump *d, const struct bt_node *n)
{
	out_arr_begin(d->o, "items", NULL);
	for (uint32_t i = 0; i < bt_node_nritems(n); i++)
		dump_item(d, n, i);
	out_arr_end(d->o);
}

/*
 * What a descent through the tree checks beyond bt_node_get(): a child is non-empty and starts
 * with its parent's pointer key. NULL if sound (or `pkey` is NULL: a root or a lone block).
 */
static const char *child_problem(const struct bt_node *n, const struct bt_key *pkey)
{
	struct bt_key first;

	if (!pkey)
		return NULL;
	if (bt_node_nritems(n) == 0)
		return "empty non-root node";
	bt_node_key(n, 0, &first);
	if (bt_key_cmp(pkey, &first) != 0)
		return "first key differs from the parent's pointer key";
	return NULL;
}

static void dump_node(struct dump *d, const struct bt_node *n, const struct bt_key *pkey)
{
	struct out *o = d->o;
	const char *problem = child_problem(n, pkey);

	out_obj_begin(o, NULL, "node", FRAME_LINE);
	out_anon_u64(o, "bytenr", bt_node_bytenr(n));
	out_u64(o, "level", bt_node_level(n));
	out_u64(o, "nritems", bt_node_nritems(n));
	out_u64(o, "generation", bt_node_generation(n));
	out_u64(o, "owner", bt_node_owner(n));
	if (problem) {
		dump_report(d, bt_node_bytenr(n), problem);
		out_qstr(o, "problem", problem, strlen(problem));
		d->problems++;
	}
	if (bt_node_level(n))
		dump_ptrs(d, n);
	else
		dump_items(d, n);
	out_obj_end(o);
}

/* A node that could not be read: one error line, and the walk goes on. */
static void dump_node_error(struct dump *d, uint64_t bytenr, uint8_t level, int err)
{
	struct out *o = d->o;
	const char *e = strerror(-err);

	out_obj_begin(o, NULL, "node", FRAME_LINE);
	out_anon_u64(o, "bytenr", bytenr);
	out_u64(o, "level", level);
	out_qstr(o, "error", e, strlen(e));
	out_u64(o, "errno", (uint64_t)-err);
	if (d->last_msg[0])
		out_qstr(o, "problem", d->last_msg, strlen(d->last_msg));
	out_obj_end(o);
	d->problems++;
}

/*
 * Read and print one node. Returns 0 with *n held, or -1 when it could not be read (printed as
 * an error). The level is checked here, not left to bt_node_get(), so that an impossible level
 * reads as a corrupt pointer (EUCLEAN) rather than as an I/O error.
 */
static int read_and_dump(struct dump *d, uint64_t bytenr, uint8_t level, uint64_t gen,
			 const struct bt_key *pkey, struct bt_node *n)
{
	int ret;

	d->last_msg[0] = 0;
	if (level >= BT_MAX_LEVEL) {
		dump_report(d, bytenr, "tree level out of range");
		dump_node_error(d, bytenr, level, -EUCLEAN);
		return -1;
	}
	ret = bt_node_get(d->img.bfs, bytenr, level, gen, n);
	if (ret < 0) {
		dump_node_error(d, bytenr, level, ret);
		return -1;
	}
	dump_node(d, n, pkey);
	return 0;
}

/*
 * The subtree at `bytenr`, parents before children. Depth is bounded: levels decrease.
 * Not bt_walk(): each child is checked against the key of the pointer that led to it.
 */
static void walk_node(struct dump *d, uint64_t bytenr, uint8_t level, uint64_t gen,
		      const struct bt_key *pkey)
{
	struct bt_node n;
	struct bt_key k;
	uint64_t child, child_gen;

	if (read_and_dump(d, bytenr, level, gen, pkey, &n) < 0)
		return;
	for (uint32_t i = 0; level > 0 && i < bt_node_nritems(&n); i++) {
		bt_node_key(&n, i, &k);
		child = bt_node_child(&n, i, &child_gen);
		walk_node(d, child, level - 1, child_gen, &k);
	}
	bt_node_put(&n);
}

static void dump_tree(struct dump *d, const struct tree_ref *t)
{
	struct out *o = d->o;
	const char *name = tree_name(t->id);

	out_obj_begin(o, NULL, "tree", FRAME_LINE);
	out_anon_u64(o, "id", t->id);
	if (name)
		out_tag(o, "name", name);
	out_u64(o, "root", t->bytenr);
	out_u64(o, "level", t->level);
	out_u64(o, "generation", t->generation);
	out_arr_begin(o, "nodes", NULL);
	d->collect_roots = t->id == ROOT_TREE_ID;
	walk_node(d, t->bytenr, t->level, t->generation, NULL);
	d->collect_roots = false;
	out_arr_end(o);
	out_obj_end(o);
}

static struct tree_ref root_tree_ref(const struct dump *d)
{
	const struct cowfs_super *sb = d->img.sb;

	return (struct tree_ref){
		.id = ROOT_TREE_ID, .bytenr = get_le64(&sb->root_tree_bytenr),
		.generation = get_le64(&sb->root_tree_gen), .level = sb->root_tree_level,
	};
}

/* Every tree: the root tree, then each tree it has a root item for. */
int dump_all_trees(struct dump *d)
{
	struct tree_ref root = root_tree_ref(d);

	out_arr_begin(d->o, "trees", NULL);
	dump_tree(d, &root);
	for (size_t i = 0; i < d->ntrees; i++)
		dump_tree(d, &d->trees[i]);
	out_arr_end(d->o);
	return d->collect_err;
}

/* Only tree `id`; for any but the root tree, its root item is found by a silent walk. */
int dump_one_tree(struct dump *d, uint64_t id)
{
	struct tree_ref root = root_tree_ref(d);
	const struct tree_ref *t = id == ROOT_TREE_ID ? &root : NULL;

	if (!t) {
		d->o->mute = true;
		dump_tree(d, &root);
		d->o->mute = false;
		for (size_t i = 0; i < d->ntrees && !t; i++)
			t = d->trees[i].id == id ? &d->trees[i] : NULL;
	}
	out_arr_begin(d->o, "trees", NULL);
	if (t) {
		dump_tree(d, t);
	} else {
		fprintf(d->err, PROG ": %s: no tree %" PRIu64 " (no root item for it was read)\n",
			d->img.path, id);
		d->problems++;
	}
	out_arr_end(d->o);
	return d->collect_err;
}

/* One node by address; its level comes from its own header (no parent to promise it). */
int dump_block(struct dump *d, uint64_t bytenr)
{
	uint32_t ss = get_le32(&d->img.sb->sectorsize), ns = d->img.bfs->nodesize;
	uint64_t total = get_le64(&d->img.sb->total_bytes);
	struct bt_node n;
	uint8_t level = 0;
	int ret;

	if (bytenr % ss || bytenr < COWFS_DATA_START || bytenr > total || total - bytenr < ns) {
		fprintf(d->err,
			PROG ": %s: block %" PRIu64 " is not a node address (sector-aligned, "
			"between %llu and %" PRIu64 ")\n", d->img.path, bytenr, COWFS_DATA_START,
			total - ns);
		d->problems++;
		return 0;
	}
	out_arr_begin(d->o, "nodes", NULL);
	d->last_msg[0] = 0;
	ret = bt_node_peek_level(d->img.bfs, bytenr, &level);
	if (ret < 0)
		dump_node_error(d, bytenr, 0, ret);
	else if (read_and_dump(d, bytenr, level, 0, NULL, &n) == 0)
		bt_node_put(&n);
	out_arr_end(d->o);
	return 0;
}
