/*
 * cowfs status [--json] PATH: the state of the cowfs mount PATH is on (any file or directory
 * of it), through COWFS_IOC_STATUS: the committed generation, commits and flushes since mount,
 * whether it is read-only, and, once a transaction was aborted, its first error with cause and
 * location (also in syslog).
 *
 * Exit status: 0 the filesystem is sound; 1 a transaction was aborted, or PATH is not on a
 * cowfs mount; 2 usage error.
 */
#include "tools/status/status.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fuse/cowfs_ioctl.h"
#include "tools/dump/out.h"
#include "tools/prog.h"

static void status_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " status [--json] PATH\n"
		"Show the state of the cowfs mount PATH is on: generation, commits, read-only, and\n"
		"the first error of an aborted transaction.\n"
		"\n"
		"  --json       one JSON object instead of text\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 sound, 1 aborted or not a cowfs mount, 2 usage.\n");
}

static int query(const char *path, struct cowfs_ioc_status *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	if (ioctl(fd, COWFS_IOC_STATUS, st) < 0)
		ret = -errno;
	close(fd);
	if (ret == 0 && st->version != COWFS_STATUS_VERSION)
		ret = -EPROTO;
	return ret;
}

static const char *state_of(const struct cowfs_ioc_status *st)
{
	if (st->flags & COWFS_STATUS_ABORTED)
		return "aborted";
	return st->flags & COWFS_STATUS_READ_ONLY ? "read-only" : "ok";
}

static void print_status(struct out *o, const char *path, const struct cowfs_ioc_status *st)
{
	out_obj_begin(o, NULL, "status", FRAME_BLOCK);
	out_str(o, "path", path);
	out_str(o, "state", state_of(st));
	out_bool(o, "read_only", st->flags & COWFS_STATUS_READ_ONLY);
	out_u64(o, "generation", st->generation);
	out_u64(o, "commits", st->commits);
	out_u64(o, "flushes", st->flushes);
	if (st->flags & COWFS_STATUS_ABORTED) {
		out_u64(o, "transaction", st->aborted_transid);
		out_u64(o, "errno", (uint64_t)-st->error);
		out_str(o, "error", strerror(-st->error));
		out_qstr(o, "message", st->message, strnlen(st->message, sizeof(st->message)));
	}
	out_obj_end(o);
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cowfs_ioc_status st;
	struct out o;
	bool json = false;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'h') {
			status_usage(stdout);
			return finish_output(stdout);
		} else {
			status_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		status_usage(stderr);
		return EXIT_USAGE;
	}
	ret = query(argv[optind], &st);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: %s\n", argv[optind],
			ret == -ENOTTY || ret == -EOPNOTSUPP || ret == -EINVAL ?
			"not on a cowfs mount" : strerror(-ret));
		return EXIT_FAIL;
	}
	out_init(&o, stdout, json);
	print_status(&o, argv[optind], &st);
	if (json)
		fputc('\n', stdout);
	ret = finish_output(stdout);
	return ret ? ret : (st.flags & COWFS_STATUS_ABORTED ? EXIT_FAIL : EXIT_OK);
}
