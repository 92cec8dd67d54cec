/* The dump command: its options, and the parts asked for in order (dump.h). */
#include "tools/dump/dump.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/io/blockdev.h"
#include "fs/lib/compiler.h"
#include "fs/lib/endian.h"
#include "fs/super/super_format.h"
#include "tools/dump/parts.h"
#include "tools/prog.h"

struct dump_args {
	const char *image;
	bool json, super;
	bool tree_set, block_set, inode_set;
	uint64_t tree, block, inode;
	const char *path;        /* --path: resolved to an inode from the root directory */
	uint64_t *space_ids;     /* --subvol-space: the set, malloc'd */
	size_t nspace;
};

static void dump_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " dump [options] IMAGE\n"
		"Print the superblock and every tree of a cowfs image (read-only). A mounted image\n"
		"shows as of its last commit.\n"
		"\n"
		"  --super             only the superblock and its copies\n"
		"  --tree ID           only one tree: a number, or root, extent, fs\n"
		"  --block BYTENR      only the node at BYTENR\n"
		"  --inode INO         one file's extents: disk location, length, generation,\n"
		"                      refcount and every reference to them (tree: --tree, or fs)\n"
		"  --path /A/B         the same for the file at that path\n"
		"  --subvol-space ID[,ID...]\n"
		"                      the exclusive space of these subvolumes together, from\n"
		"                      reference counts (fast) and recounted by walking every fs\n"
		"                      tree (recount): exclusive_data, exclusive_meta, referenced\n"
		"  --json              one JSON document instead of text\n"
		"  -h, --help          show this help\n"
		"\n"
		"Exit status: 0 all read and sound, 1 something unreadable or corrupt (or a mounted\n"
		"image changed while it was read: run again), 2 usage, or no such --path/--inode.\n");
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

/* A comma-separated list of subvolume ids into a->space_ids. */
static int parse_ids(const char *s, struct dump_args *a)
{
	size_t n = 1;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	a->space_ids = calloc(n, sizeof(*a->space_ids));
	if (!a->space_ids)
		return -1;
	a->nspace = 0;
	while (a->nspace < n) {
		char num[32];
		size_t len = strcspn(s, ",");
		if (len == 0 || len >= sizeof(num))
			return -1;
		memcpy(num, s, len);
		num[len] = '\0';
		if (parse_u64(num, &a->space_ids[a->nspace++]) < 0)
			return -1;
		s += len + (s[len] == ',');
	}
	return 0;
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
		{ "subvol-space", required_argument, NULL, 'S' },
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
		case 'S':
			free(a->space_ids);
			if (parse_ids(optarg, a) < 0)
				return dump_usage_error("invalid subvolume ids '%s' (ID[,ID...])",
							optarg);
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
	bool all = !a->super && !a->tree_set && !a->block_set && !a->inode_set && !a->space_ids;
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
	if (ret == 0 && a->space_ids)
		ret = dump_subvol_space(d, a->space_ids, a->nspace);
	return ret;
}

/* Why image_open() failed, in the words a user can act on. */
static const char *open_error(int err)
{
	switch (err) {
	case -EINVAL:     return "not a cowfs image";
	case -EOPNOTSUPP: return "made by a newer cowfs (unsupported format or feature)";
	case -EBUSY:      return "in use by a writer (a mounted filesystem or fsck --repair?)";
	case -ESTALE:     return "image changed while reading; run again";
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

/*
 * Exit 1 for anything found wrong, even when all of it could be printed; 2 (as for usage) when
 * only what was asked for is not there: that says nothing against the image.
 */
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
	return d->not_found ? EXIT_USAGE : EXIT_OK;
}

/* Where one reading of the image writes: the real streams, or buffers (a snapshot's). */
struct sink {
	FILE *out, *err;
	char *out_buf, *err_buf;
	size_t out_len, err_len;
};

static int sink_open_buffers(struct sink *s)
{
	memset(s, 0, sizeof(*s));
	s->out = open_memstream(&s->out_buf, &s->out_len);
	s->err = open_memstream(&s->err_buf, &s->err_len);
	return s->out && s->err ? 0 : -ENOMEM;
}

/* Close the buffers; with `emit`, what they hold goes to stdout and stderr first. */
static void sink_close_buffers(struct sink *s, bool emit)
{
	if (s->out)
		fclose(s->out);
	if (s->err)
		fclose(s->err);
	if (emit) {
		fwrite(s->err_buf, 1, s->err_len, stderr);
		fwrite(s->out_buf, 1, s->out_len, stdout);
	}
	free(s->out_buf);
	free(s->err_buf);
}

/* One reading of the image into `d`: 0 and the document, or image_open()'s error. */
static int dump_reading(struct dump *d, struct out *o, const struct dump_args *a,
			const struct sink *s, bool snapshot)
{
	int ret;

	memset(d, 0, sizeof(*d));
	out_init(o, s->out, a->json);
	d->o = o;
	d->err = s->err;
	ret = image_open(&d->img, a->image, snapshot, dump_report, d);
	if (ret < 0)
		return ret;
	if (d->img.degraded)
		fprintf(d->err, PROG ": %s: filesystem does not open cleanly (%s); dumping what "
			"can be read\n", a->image, strerror(-d->img.open_err));
	d->opened = true;
	return dump_document(d, a);
}

static void dump_release(struct dump *d)
{
	image_close(&d->img);
	free(d->trees);
}

static void note_snapshot(const struct dump *d, const char *image)
{
	long pid = bdev_lock_holder(d->img.bd);
	uint64_t gen = get_le64(&d->img.sb->generation);

	if (pid > 0)
		fprintf(stderr, PROG ": %s is mounted (pid %ld): showing the last committed "
			"generation %" PRIu64 "; newer changes are not shown\n", image, pid, gen);
	else
		fprintf(stderr, PROG ": %s is mounted: showing the last committed generation %"
			PRIu64 "; newer changes are not shown\n", image, gen);
}

/*
 * A mounted image (a writer holds its lock): read as a snapshot of its last committed
 * generation, into buffers. A reading that met nothing wrong is shown whatever the writer did
 * meanwhile (every block was checked against the generation read). One that met errors while
 * the image moved on may have met the writer's reuse of blocks, not damage: read again, once;
 * then give up with an error that says so, never with output that may be wrong.
 */
static int dump_mounted(const struct dump_args *a)
{
	struct dump d;
	struct out o;
	struct sink s;

	for (int attempt = 0; attempt < 2; attempt++) {
		memset(&d, 0, sizeof(d));
		int ret = sink_open_buffers(&s);
		if (ret == 0)
			ret = dump_reading(&d, &o, a, &s, true);
		bool moved = ret == -ESTALE ||
			     (ret == 0 && (d.problems || d.reports || d.img.degraded) &&
			      image_moved_on(&d.img));
		if (ret == -ENOMEM || !moved) {
			fflush(s.out);
			if (d.opened)
				note_snapshot(&d, a->image);
			sink_close_buffers(&s, true);
			if (ret < 0 && !d.opened)
				fprintf(stderr, PROG ": %s: cannot open: %s\n", a->image,
					open_error(ret));
			dump_release(&d);
			return !d.opened ? EXIT_FAIL : exit_status(&d, a->image, ret);
		}
		sink_close_buffers(&s, false);
		dump_release(&d);
	}
	fprintf(stderr, PROG ": %s: image changed while reading; run again\n", a->image);
	return EXIT_FAIL;
}

/* The dump of the image the arguments name: the exit status. */
static int dump_image_of(const struct dump_args *a)
{
	struct sink s = { .out = stdout, .err = stderr };
	struct out o;
	struct dump d;
	int ret = dump_reading(&d, &o, a, &s, false);

	if (ret == -EBUSY) {
		dump_release(&d);
		return dump_mounted(a);
	}
	if (ret < 0 && !d.opened) {
		fprintf(stderr, PROG ": %s: cannot open: %s\n", a->image, open_error(ret));
		dump_release(&d);
		return EXIT_FAIL;
	}
	dump_release(&d);
	return exit_status(&d, a->image, ret);
}

int cmd_dump(int argc, char **argv)
{
	struct dump_args a;
	int ret = parse_dump_args(argc, argv, &a);

	if (ret == 0)
		ret = dump_image_of(&a);
	else if (ret < 0)
		ret = finish_output(stdout);
	free(a.space_ids);
	return ret;
}
