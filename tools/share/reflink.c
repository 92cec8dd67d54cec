/*
 * cowfs reflink [--src-offset N] [--dst-offset N] [--length N] [--json] SRC DST: make DST share
 * SRC's data extents (COWFS_IOC_CLONE_RANGE), as cp --reflink=always and FICLONERANGE do.
 *
 * Without a range option the whole of SRC is cloned and DST ends up SRC's copy (its old bytes
 * past SRC's size are cut off after the clone, so a failed clone leaves an existing DST as it
 * was). With one, the range is cloned into DST at --dst-offset and the rest of DST stays.
 * DST is created when missing (with SRC's permission bits, less the umask) and removed again
 * if the clone fails: no empty DST is left behind, unlike cp --reflink=always without the shim.
 *
 * SRC is named to the mount by its identity (COWFS_IOC_FILE_ID), which only means the same
 * file on the same mount: two files on different mounts are refused here, before the server
 * could take the identity for a file of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/dump/out.h"
#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/share/commands.h"
#include "tools/share/mount_ioctl.h"
#include "tools/share/size.h"

struct reflink_args {
	const char *src, *dst;
	uint64_t src_offset, dst_offset, length;
	bool whole;          /* no range option: DST becomes a copy of SRC */
	bool json;
};

static void reflink_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " reflink [--src-offset N] [--dst-offset N] [--length N] [--json] SRC DST\n"
		"Make DST share SRC's data on disk (a reflink: a copy that takes no space until one\n"
		"of them is written). Both must be on the same cowfs mount. DST is created if missing,\n"
		"and removed again if the clone fails.\n"
		"\n"
		"Without a range option DST becomes a copy of the whole of SRC. With one, the range\n"
		"is cloned into DST at --dst-offset; the rest of DST is left as it is, and DST grows\n"
		"if the range ends past its end.\n"
		"\n"
		"  --src-offset N  where the range starts in SRC (default 0)\n"
		"  --dst-offset N  where it goes in DST (default 0)\n"
		"  --length N      its length (default 0: up to SRC's end of file)\n"
		"  --json          print {\"src\", \"dst\", \"src_offset\", \"dst_offset\", \"bytes\"}\n"
		"  -h, --help      show this help\n"
		"\n"
		"N is in bytes, or with a K, M, G or T suffix (powers of 1024). Offsets must be\n"
		"multiples of the filesystem's block size, the length too unless the range ends at\n"
		"SRC's end of file.\n"
		"\n"
		"Exit status: 0 cloned, 1 error (not on the same cowfs mount, ...), 2 usage.\n");
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, PROG " reflink: %s '%s'\n", msg, arg);
	reflink_usage(stderr);
	return EXIT_USAGE;
}

/* Returns -1 when the options were fine, else the exit status (help or a usage error). */
static int parse_args(int argc, char **argv, struct reflink_args *a)
{
	static const struct option longopts[] = {
		{ "src-offset", required_argument, NULL, 's' },
		{ "dst-offset", required_argument, NULL, 'd' },
		{ "length", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t *field;
	int c;

	memset(a, 0, sizeof(*a));
	a->whole = true;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'd':
		case 'l':
			field = c == 's' ? &a->src_offset : c == 'd' ? &a->dst_offset : &a->length;
			if (size_parse(optarg, field) < 0)
				return usage_error("invalid size", optarg);
			a->whole = false;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			reflink_usage(stdout);
			return finish_output(stdout);
		default:
			return cli_option_error(argv, c, reflink_usage);
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, PROG " reflink: expected SRC and DST\n");
		reflink_usage(stderr);
		return EXIT_USAGE;
	}
	a->src = argv[optind];
	a->dst = argv[optind + 1];
	return -1;
}

static int open_src(const struct reflink_args *a, struct cowfs_file *src)
{
	int ret = cowfs_file_open(AT_FDCWD, a->src, O_RDONLY, 0, src);

	if (ret == 0 && !S_ISREG(src->mode)) {
		cowfs_file_close(src);
		ret = S_ISDIR(src->mode) ? -EISDIR : -EINVAL;
	}
	if (ret < 0)
		cowfs_perror("reflink", a->src, ret);
	return ret;
}

/* DST, created if missing (*created says so); on failure nothing is left open or created. */
static int open_dst(const struct reflink_args *a, const struct cowfs_file *src,
		    struct cowfs_file *dst, bool *created)
{
	int fd = open(a->dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, src->mode & 0777);
	int ret;

	*created = fd >= 0;
	if (fd < 0 && errno == EEXIST)
		fd = open(a->dst, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		cowfs_perror("reflink", a->dst, ret);
		return ret;
	}
	ret = cowfs_file_adopt(fd, dst);
	if (ret == 0 && !S_ISREG(dst->mode))
		ret = -EINVAL;
	if (ret == 0 && !cowfs_same_mount(src, dst))
		ret = COWFS_ERR_OTHER_MOUNT;
	if (ret == COWFS_ERR_NOT_COWFS)
		ret = COWFS_ERR_OTHER_MOUNT;
	if (ret == COWFS_ERR_OTHER_MOUNT)
		fprintf(stderr, PROG " reflink: %s: not on the same cowfs mount as %s\n", a->dst,
			a->src);
	else if (ret < 0)
		cowfs_perror("reflink", a->dst, ret);
	if (ret < 0) {
		close(fd);
		if (*created)
			unlink(a->dst);
	}
	return ret;
}

/* The whole of SRC was cloned: DST's bytes past it are not SRC's. */
static int cut_to(const struct cowfs_file *dst, uint64_t size)
{
	struct stat st;

	if (fstat(dst->fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > size && ftruncate(dst->fd, (off_t)size) < 0)
		return -errno;
	return 0;
}

static int clone_range(const struct reflink_args *a, const struct cowfs_file *src,
		       const struct cowfs_file *dst, uint64_t *bytes)
{
	struct cowfs_ioc_clone_range cr = {
		.version = COWFS_CLONE_VERSION,
		.src = src->id.file,
		.src_offset = a->src_offset,
		.length = a->length,
		.dst_offset = a->dst_offset,
	};
	uint32_t bs = dst->id.blocksize;
	int ret = cowfs_flush_range(src->fd, a->src_offset, a->length);

	if (ret == 0)
		ret = cowfs_flush_range(dst->fd, a->dst_offset, a->length);
	if (ret == 0)
		ret = cowfs_ioctl(dst->fd, COWFS_IOC_CLONE_RANGE, &cr);

	if (ret == 0 && a->whole)
		ret = cut_to(dst, cr.length);
	if (ret == -EINVAL && bs && (a->src_offset % bs || a->dst_offset % bs || a->length % bs))
		fprintf(stderr, PROG " reflink: %s -> %s: offsets and length must be multiples of "
			"the block size (%" PRIu32 "), the length unless the range ends at %s's "
			"end of file\n", a->src, a->dst, bs, a->src);
	else if (ret < 0)
		fprintf(stderr, PROG " reflink: %s -> %s: %s\n", a->src, a->dst,
			cowfs_strerror(ret));
	*bytes = cr.length;
	return ret;
}

static void print_result(const struct reflink_args *a, uint64_t bytes)
{
	char human[SIZE_STR_MAX];
	struct out o;

	if (!a->json) {
		printf("%s -> %s: %" PRIu64 " bytes (%s) cloned\n", a->src, a->dst, bytes,
		       size_format(bytes, false, human));
		return;
	}
	out_init(&o, stdout, true);
	out_obj_begin(&o, NULL, NULL, FRAME_BLOCK);
	out_qstr(&o, "src", a->src, strlen(a->src));
	out_qstr(&o, "dst", a->dst, strlen(a->dst));
	out_u64(&o, "src_offset", a->src_offset);
	out_u64(&o, "dst_offset", a->dst_offset);
	out_u64(&o, "bytes", bytes);
	out_obj_end(&o);
	fputc('\n', stdout);
}

int cmd_reflink(int argc, char **argv)
{
	struct cowfs_file src, dst;
	struct reflink_args a;
	uint64_t bytes = 0;
	bool created;
	int ret = parse_args(argc, argv, &a);

	if (ret >= 0)
		return ret;
	if (open_src(&a, &src) < 0)
		return EXIT_FAIL;
	if (open_dst(&a, &src, &dst, &created) < 0) {
		cowfs_file_close(&src);
		return EXIT_FAIL;
	}
	ret = clone_range(&a, &src, &dst, &bytes);
	cowfs_file_close(&dst);
	cowfs_file_close(&src);
	if (ret < 0) {
		if (created)
			unlink(a.dst);
		return EXIT_FAIL;
	}
	print_result(&a, bytes);
	return finish_output(stdout);
}
