/*
 * cowfs stats [--json] PATH: the counters of the cowfs mount PATH is on, since it was mounted
 * (COWFS_IOC_STATS), under a one-line verdict that answers "was my copy cloned or copied?":
 *
 *   copy_file_range: 1.00GiB shared, 0.00B copied; clone: 0.00B; dedupe: 0.00B shared
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/lib/compiler.h"

#include "tools/dump/out.h"
#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/share/commands.h"
#include "tools/share/mount_ioctl.h"
#include "tools/share/size.h"

#define VERDICT_MAX 256

static void stats_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " stats [--json] PATH\n"
		"Show the counters of the cowfs mount PATH is on, since it was mounted: how many bytes\n"
		"copy_file_range (cp) shared and copied, what clones and dedupes shared, commits and\n"
		"fsyncs; first a one-line verdict.\n"
		"\n"
		"  --json       one JSON object: every counter by name, and \"verdict\"\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 success, 1 error or not a cowfs mount, 2 usage.\n");
}

static int query(const char *path, struct cowfs_ioc_stats *st)
{
	struct cowfs_file f;
	int ret = cowfs_file_open(AT_FDCWD, path, O_RDONLY, 0, &f);

	if (ret < 0)
		return ret;
	memset(st, 0, sizeof(*st));
	ret = cowfs_ioctl(f.fd, COWFS_IOC_STATS, st);
	cowfs_file_close(&f);
	if (ret == 0 && st->version != COWFS_STATS_VERSION)
		ret = -EPROTO;
	return ret;
}

static void verdict(const struct cowfs_ioc_stats *st, char *buf, size_t n)
{
	char shared[SIZE_STR_MAX], copied[SIZE_STR_MAX], cloned[SIZE_STR_MAX];
	char deduped[SIZE_STR_MAX];

	snprintf(buf, n, "copy_file_range: %s shared, %s copied; clone: %s; dedupe: %s shared",
		 size_format(st->copy_bytes_shared, false, shared),
		 size_format(st->copy_bytes_copied, false, copied),
		 size_format(st->clone_bytes, false, cloned),
		 size_format(st->dedupe_bytes_same, false, deduped));
}

/* The counters in the ioctl's order, named as its fields (the JSON keys). */
static const struct counter {
	const char *name;
	size_t offset;
} counters[] = {
#define COUNTER(field) { #field, offsetof(struct cowfs_ioc_stats, field) }
	COUNTER(copy_calls), COUNTER(copy_bytes_shared), COUNTER(copy_bytes_copied),
	COUNTER(clone_calls), COUNTER(clone_bytes),
	COUNTER(dedupe_calls), COUNTER(dedupe_bytes_same), COUNTER(dedupe_bytes_differ),
	COUNTER(commits), COUNTER(fsyncs), COUNTER(fsync_log_hits), COUNTER(fsync_commits),
#undef COUNTER
};

static uint64_t counter_value(const struct cowfs_ioc_stats *st, const struct counter *c)
{
	uint64_t v;

	memcpy(&v, (const char *)st + c->offset, sizeof(v));
	return v;
}

static void print_text(const struct cowfs_ioc_stats *st, const char *line)
{
	printf("%s\n", line);
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
		printf("%-20s %" PRIu64 "\n", counters[i].name, counter_value(st, &counters[i]));
}

static void print_json(const char *path, const struct cowfs_ioc_stats *st, const char *line)
{
	struct out o;

	out_init(&o, stdout, true);
	out_obj_begin(&o, NULL, NULL, FRAME_BLOCK);
	out_qstr(&o, "path", path, strlen(path));
	out_qstr(&o, "verdict", line, strlen(line));
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
		out_u64(&o, counters[i].name, counter_value(st, &counters[i]));
	out_obj_end(&o);
	fputc('\n', stdout);
}

int cmd_stats(int argc, char **argv)
{
	struct cowfs_ioc_stats st;
	char line[VERDICT_MAX];
	bool json = false;
	const struct cli_flag flags[] = { { "json", &json }, { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, 1, stats_usage);

	if (ret >= 0)
		return ret;
	ret = query(argv[optind], &st);
	if (ret < 0) {
		cowfs_perror("stats", argv[optind], ret);
		return EXIT_FAIL;
	}
	verdict(&st, line, sizeof(line));
	if (json)
		print_json(argv[optind], &st, line);
	else
		print_text(&st, line);
	return finish_output(stdout);
}
