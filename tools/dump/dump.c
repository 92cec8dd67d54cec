/* The dump command: its options, and the parts asked for in order (dump.h). */
#include "tools/dump/dump.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/lib/compiler.h"
#include "fs/super/super_format.h"
#include "tools/dump/parts.h"
#include "tools/prog.h"

struct dump_args {
	const char *image;
	bool json, super;
	bool tree_set, block_set, inode_set;
	uint64_t tree, block, inode;
	const char *path;        /* --path: resolved to an inode from the root directory */
};

static void dump_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " dump [options] IMAGE\n"
		"Print the superblock and every tree of a cowfs image (read-only).\n"
		"\n"
		"  --super             only the superblock and its copies\n"
		"  --tree ID           only one tree: a number, or root, extent, fs\n"
		"  --block BYTENR      only the node at BYTENR\n"
		"  --inode INO         one file's extents: disk location, length, generation,\n"
		"                      refcount and every reference to them (tree: --tree, or fs)\n"
		"  --path /A/B         the same for the file at that path\n"
		"  --json              one JSON document instead of text\n"
		"  -h, --help          show this help\n"
		"\n"
		"Exit status: 0 all read and sound, 1 something unreadable or corrupt, 2 usage.\n");
}

static int dump_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG " dump: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '" PROG " dump --help' for more information.\n");
	return EXIT_USAGE;
}

/* A whole-string unsigned number (decimal, or 0x hex). */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || *end ? -1 : 0;
}

static int parse_tree(const char *s, uint64_t *id)
{
	static const struct { const char *name; uint64_t id; } names[] = {
		{ "root", ROOT_TREE_ID }, { "extent", EXTENT_TREE_ID }, { "fs", FS_TREE_ID },
		{ "csum", CSUM_TREE_ID },
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*id = names[i].id;
			return 0;
		}
	}
	return parse_u64(s, id);
}

/* Returns 0, EXIT_USAGE, or -1 when help was printed. */
static int parse_dump_args(int argc, char **argv, struct dump_args *a)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "super", no_argument, NULL, 's' },
		{ "tree", required_argument, NULL, 't' },
		{ "block", required_argument, NULL, 'b' },
		{ "inode", required_argument, NULL, 'i' },
		{ "path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "jst:b:i:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 's':
			a->super = true;
			break;
		case 't':
			if (parse_tree(optarg, &a->tree) < 0)
				return dump_usage_error("invalid tree '%s' (a number, or root, "
							"extent, fs)", optarg);
			a->tree_set = true;
			break;
		case 'b':
			if (parse_u64(optarg, &a->block) < 0)
				return dump_usage_error("invalid block address '%s'", optarg);
			a->block_set = true;
			break;
		case 'i':
			if (parse_u64(optarg, &a->inode) < 0)
				return dump_usage_error("invalid inode number '%s'", optarg);
			a->inode_set = true;
			break;
		case 'p':
			if (optarg[0] != '/')
				return dump_usage_error("path '%s' must start at the root: /...",
							optarg);
			a->path = optarg;
			a->inode_set = true;
			break;
		case 'h':
			dump_usage(stdout);
			return -1;
		default:
			fprintf(stderr, "Try '" PROG " dump --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc)
		return dump_usage_error("%s", optind >= argc ? "no IMAGE given"
							     : "more than one IMAGE given");
	a->image = argv[optind];
	return 0;
}

/* The parts asked for, in order; a negative errno only for a failure of the tool itself. */
static int dump_parts(struct dump *d, const struct dump_args *a)
{
	bool all = !a->super && !a->tree_set && !a->block_set && !a->inode_set;
	int ret = 0;

	if (all || a->super)
		ret = dump_super(d);
	if (ret == 0 && all)
		ret = dump_all_trees(d);
	if (ret == 0 && a->tree_set && !a->inode_set)
		ret = dump_one_tree(d, a->tree);
	if (ret == 0 && a->inode_set)
		ret = dump_file(d, a->tree_set ? a->tree : FS_TREE_ID, a->inode, a->path);
	if (ret == 0 && a->block_set)
		ret = dump_block(d, a->block);
	return ret;
}

/* Why image_open() failed, in the words a user can act on. */
static const char *open_error(int err)
{
	switch (err) {
	case -EINVAL:     return "not a cowfs image";
	case -EOPNOTSUPP: return "made by a newer cowfs (unsupported format or feature)";
	case -EBUSY:      return "in use by a writer (a mounted filesystem or fsck --repair?)";
	default:          return strerror(-err);
	}
}

/* The whole document: one object around the parts; JSON adds the image and the verdict. */
static int dump_document(struct dump *d, const struct dump_args *a)
{
	struct out *o = d->o;
	int ret;

	out_obj_begin(o, NULL, NULL, FRAME_BLOCK);
	if (a->json)
		out_qstr(o, "image", a->image, strlen(a->image));
	ret = dump_parts(d, a);
	if (a->json) {
		out_u64(o, "problems", d->problems);
		out_bool(o, "opened_cleanly", !d->img.degraded);
	}
	out_obj_end(o);
	if (a->json && !o->mute)
		fputc('\n', o->f);
	return ret;
}

/* Exit 1 for anything found wrong, even when all of it could be printed. */
static int exit_status(const struct dump *d, const char *image, int ret)
{
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: %s\n", image, strerror(-ret));
		return EXIT_FAIL;
	}
	if (finish_output(stdout) != EXIT_OK)
		return EXIT_FAIL;
	if (d->problems || d->img.degraded) {
		fprintf(stderr, PROG ": %s: %" PRIu64 " problem%s found%s\n", image, d->problems,
			d->problems == 1 ? "" : "s",
			d->img.degraded ? "; the filesystem did not open cleanly" : "");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
	struct dump_args a;
	struct out o;
	struct dump d;
	int ret = parse_dump_args(argc, argv, &a);

	if (ret < 0)
		return finish_output(stdout);
	if (ret)
		return ret;
	memset(&d, 0, sizeof(d));
	out_init(&o, stdout, a.json);
	d.o = &o;
	ret = image_open(&d.img, a.image, dump_report, &d);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: cannot open: %s\n", a.image, open_error(ret));
		image_close(&d.img);
		return EXIT_FAIL;
	}
	ret = dump_document(&d, &a);
	image_close(&d.img);
	free(d.trees);
	return exit_status(&d, a.image, ret);
}
