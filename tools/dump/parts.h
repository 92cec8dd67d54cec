/*
 * The parts of a dump, and struct dump: what one run carries from part to part. The image is
 * opened read-only (image.h), every node is verified as it is read, and a node that fails is
 * printed as an error and skipped; what is wrong is counted in `problems`.
 *
 *   super.c   the superblock and its copies
 *   walk.c    nodes and trees: a whole tree, every tree, one block by address
 *   items.c   what a leaf item holds, by key type
 *   file.c    one file's extents, through the filesystem
 *   space.c   the exclusive space of a set of subvolumes, fast and recounted
 *   dump.c    the command line, and the parts asked for in order (dump.h)
 */
#ifndef COWFS_TOOLS_DUMP_PARTS_H
#define COWFS_TOOLS_DUMP_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fs/btree/view.h"
#include "tools/dump/image.h"
#include "tools/dump/out.h"

/* A tree found in the root tree (or the root tree itself, from the superblock). */
struct tree_ref {
	uint64_t id, bytenr, generation;
	uint8_t level;
};

struct dump {
	struct out *o;
	FILE *err;                /* messages: stderr, or a buffer while a snapshot is read */
	struct dump_image img;
	/* What the walk found. */
	uint64_t problems;        /* unreadable nodes, corrupt items, bad copies */
	uint64_t reports;         /* the library's reports (dump_report) */
	bool opened;              /* the image opened (the document was written) */
	bool not_found;           /* the inode or path asked for is not there: not a problem */
	bool collect_roots;       /* the walk is in the root tree: remember its root items */
	struct tree_ref *trees;
	size_t ntrees, trees_cap;
	char last_msg[160];       /* the library's last report, for the node's error line */
	int collect_err;          /* -ENOMEM while remembering a root item */
};

/*
 * The parts. Each returns 0, or a negative errno only for a failure of the tool itself
 * (-ENOMEM); what is wrong with the image is printed and counted in d->problems instead.
 */
int dump_super(struct dump *d);                          /* super.c */
int dump_all_trees(struct dump *d);                      /* walk.c */
int dump_one_tree(struct dump *d, uint64_t id);
int dump_block(struct dump *d, uint64_t bytenr);
/* file.c: the extents of inode `ino`, or of the file at `path` if not NULL, in tree `tree`. */
int dump_file(struct dump *d, uint64_t tree, uint64_t ino, const char *path);

/* space.c: the exclusive space of subvolumes ids[0..n) together, both ways. */
int dump_subvol_space(struct dump *d, const uint64_t *ids, size_t n);

/* items.c: leaf item `slot` of `n`, decoded by its key's type. */
void dump_item(struct dump *d, const struct bt_node *n, uint32_t slot);

/* walk.c: the library's report about a block: to stderr, and kept for the node's error line. */
void dump_report(void *arg, uint64_t bytenr, const char *msg);

#endif
