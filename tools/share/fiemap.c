/*
 * cowfs fiemap [--sync] [--json] FILE: FILE's extents (COWFS_IOC_FIEMAP), in bytes: file offset,
 * disk offset in the image, length and flags, one a line, as `filefrag -v` and `xfs_io -c
 * fiemap` show them on a kernel filesystem. `shared` is the answer to "is this a reflink?":
 * the extent on disk is referenced more than once. Holes are not listed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/lib/compiler.h"
#include "tools/dump/out.h"
#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/share/commands.h"
#include "tools/share/mount_ioctl.h"
#include "tools/share/size.h"

static const struct extent_flag {
	uint32_t bit;
	const char *name;
} extent_flags[] = {
	{ COWFS_EXTENT_SHARED, "shared" },
	{ COWFS_EXTENT_UNWRITTEN, "unwritten" },
	{ COWFS_EXTENT_DELALLOC, "delalloc" },
	{ COWFS_EXTENT_LAST, "last" },
};

struct fiemap_totals {
	uint64_t extents;
	uint64_t bytes;
	uint64_t shared;
};

static void fiemap_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " fiemap [--sync] [--json] FILE\n"
		"List FILE's extents: file offset (logical), offset in the image (physical), length,\n"
		"in bytes, and flags:\n"
		"  shared     the extent is referenced more than once (a reflink, a dedupe, a snapshot)\n"
		"  unwritten  preallocated (fallocate): reads as zeros\n"
		"  delalloc   written but not yet given a place on disk (physical 0): see --sync\n"
		"  last       the file's last extent\n"
		"Holes are not listed.\n"
		"\n"
		"  --sync       write the file's dirty data back first, so that it has its place\n"
		"  --json       one JSON object: {\"file\", \"extents\": [{\"logical\", \"physical\",\n"
		"               \"length\", \"flags\": [names]}], \"count\", \"bytes\", \"shared_bytes\"}\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 success, 1 error or not on a cowfs mount, 2 usage.\n");
}

static void flags_text(uint32_t flags, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(extent_flags); i++) {
		if (!(flags & extent_flags[i].bit))
			continue;
		len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "",
					extent_flags[i].name);
		flags &= ~extent_flags[i].bit;
	}
	if (flags)
		snprintf(buf + len, n - len, "%s0x%" PRIx32, len ? "," : "", flags);
}

static void print_extent(struct out *o, uint64_t index, const struct cowfs_ioc_extent *e)
{
	char flags[96];

	if (!o->json) {
		flags_text(e->flags, flags, sizeof(flags));
		printf("%6" PRIu64 "  %16" PRIu64 "  %16" PRIu64 "  %14" PRIu64 "  %s\n", index,
		       e->logical, e->physical, e->length, flags);
		return;
	}
	out_obj_begin(o, NULL, NULL, FRAME_LINE);
	out_u64(o, "logical", e->logical);
	out_u64(o, "physical", e->physical);
	out_u64(o, "length", e->length);
	out_arr_begin(o, "flags", NULL);
	for (size_t i = 0; i < ARRAY_SIZE(extent_flags); i++) {
		if (e->flags & extent_flags[i].bit)
			out_str(o, NULL, extent_flags[i].name);
	}
	out_arr_end(o);
	out_obj_end(o);
}

static int fiemap_batch(int fd, uint64_t start, uint32_t flags, struct cowfs_ioc_fiemap *fm)
{
	memset(fm, 0, sizeof(*fm));
	fm->version = COWFS_FIEMAP_VERSION;
	fm->flags = flags;
	fm->start = start;
	fm->length = UINT64_MAX;
	return cowfs_ioctl(fd, COWFS_IOC_FIEMAP, fm);
}

/* Page through the extents from offset 0 on, printing each; the totals as they go. */
static int list_extents(int fd, bool sync, struct out *o, struct fiemap_totals *t)
{
	struct cowfs_ioc_fiemap fm;
	uint64_t start = 0, next;
	uint32_t flags = sync ? COWFS_FIEMAP_SYNC : 0;

	for (;;) {
		int ret = fiemap_batch(fd, start, flags, &fm);
		if (ret < 0)
			return ret;
		if (fm.count > COWFS_FIEMAP_BATCH)
			return -EPROTO;
		for (uint32_t i = 0; i < fm.count; i++) {
			print_extent(o, t->extents++, &fm.extents[i]);
			t->bytes += fm.extents[i].length;
			if (fm.extents[i].flags & COWFS_EXTENT_SHARED)
				t->shared += fm.extents[i].length;
		}
		if (fm.count == 0 || (fm.extents[fm.count - 1].flags & COWFS_EXTENT_LAST))
			return 0;
		next = fm.extents[fm.count - 1].logical + fm.extents[fm.count - 1].length;
		/* A server that answers the same batch again would keep us here forever. */
		if (next <= start)
			return -EPROTO;
		start = next;
		flags = 0;
	}
}

static int open_file(const char *path, struct cowfs_file *f)
{
	int ret = cowfs_file_open(AT_FDCWD, path, O_RDONLY, 0, f);

	if (ret == 0 && !S_ISREG(f->mode)) {
		ret = S_ISDIR(f->mode) ? -EISDIR : -EINVAL;
		cowfs_file_close(f);
	}
	return ret;
}

static int fiemap_file(const char *path, bool sync, bool json)
{
	struct fiemap_totals t = { 0 };
	char human[SIZE_STR_MAX];
	struct cowfs_file f;
	struct out o;
	int ret = open_file(path, &f);

	if (ret < 0) {
		cowfs_perror("fiemap", path, ret);
		return ret;
	}
	out_init(&o, stdout, json);
	if (json) {
		out_obj_begin(&o, NULL, NULL, FRAME_BLOCK);
		out_qstr(&o, "file", path, strlen(path));
		out_arr_begin(&o, "extents", NULL);
	} else {
		printf("%6s  %16s  %16s  %14s  %s\n", "ext", "logical", "physical", "length",
		       "flags");
	}
	ret = list_extents(f.fd, sync, &o, &t);
	if (json) {
		out_arr_end(&o);
		out_u64(&o, "count", t.extents);
		out_u64(&o, "bytes", t.bytes);
		out_u64(&o, "shared_bytes", t.shared);
		out_obj_end(&o);
		fputc('\n', stdout);
	} else if (ret == 0) {
		printf("%s: %" PRIu64 " extent%s, %s", path, t.extents, t.extents == 1 ? "" : "s",
		       size_format(t.bytes, false, human));
		printf(", %s shared\n", size_format(t.shared, false, human));
	}
	if (ret < 0)
		cowfs_perror("fiemap", path, ret);
	cowfs_file_close(&f);
	return ret;
}

int cmd_fiemap(int argc, char **argv)
{
	bool json = false, sync = false;
	const struct cli_flag flags[] = { { "json", &json }, { "sync", &sync }, { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, 1, fiemap_usage);

	if (ret >= 0)
		return ret;
	ret = fiemap_file(argv[optind], sync, json);
	if (finish_output(stdout) != EXIT_OK)
		return EXIT_FAIL;
	return ret < 0 ? EXIT_FAIL : EXIT_OK;
}
