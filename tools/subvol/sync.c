/*
 * cowfs subvolume sync MNT [ID...]: wait until deleted subvolumes are dropped completely and
 * that is committed (COWFS_IOC_SUBVOL_SYNC): without IDs every one being deleted now, else
 * each ID. Says what it waits for first (the ids, from the listing) and what was waited for
 * after. An ID that is not being deleted is an error rather than a wait for ever; one already
 * gone is said to be gone.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"

static void sync_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume sync MNT [ID...]\n"
		"Wait until deleted subvolumes of the mount MNT is on have been dropped completely\n"
		"and that is committed: every subvolume being deleted now, or the IDs given.\n"
		"\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 all dropped, 1 failure (an ID that is not being deleted, ...), 2 usage.\n");
}

static int print_deleting(const struct cowfs_ioc_subvol_info *info, void *ctx)
{
	unsigned *count = ctx;

	if (info->flags & COWFS_SUBVOL_DELETING) {
		printf("%s %" PRIu64, *count ? "" : "Waiting for deleted subvolumes:", info->id);
		(*count)++;
	}
	return 0;
}

static int sync_all(const char *cmd, const char *mnt, int fd)
{
	unsigned listed = 0;
	uint32_t count;
	int ret = sv_each(fd, print_deleting, &listed);

	if (ret < 0) {
		sv_perror(cmd, mnt, SV_OP_INFO, ret);
		return EXIT_FAIL;
	}
	if (listed)
		putchar('\n');
	fflush(stdout);
	ret = sv_sync(fd, 0, &count);
	if (ret < 0) {
		sv_perror(cmd, mnt, SV_OP_SYNC, ret);
		return EXIT_FAIL;
	}
	printf("Dropped and committed: %" PRIu32 " subvolume%s\n", count, count == 1 ? "" : "s");
	return EXIT_OK;
}

static int sync_one(const char *cmd, const char *mnt, int fd, uint64_t id)
{
	struct cowfs_ioc_subvol_info info;
	char what[PATH_MAX + 48];   /* the mount's path, then the id */
	uint32_t count;
	int ret = sv_info(fd, id, false, &info);

	snprintf(what, sizeof(what), "%s: subvolume %" PRIu64, mnt, id);
	if (ret == -ENOENT) {
		printf("Subvolume %" PRIu64 " is gone\n", id);
		return EXIT_OK;
	}
	if (ret == 0 && !(info.flags & COWFS_SUBVOL_DELETING))
		ret = SV_ERR_NOT_DELETING;
	if (ret == 0) {
		printf("Waiting for subvolume %" PRIu64 "\n", id);
		fflush(stdout);
		ret = sv_sync(fd, id, &count);
	}
	if (ret == -ENOENT)
		ret = 0;
	if (ret < 0) {
		sv_perror(cmd, what, SV_OP_SYNC, ret);
		return EXIT_FAIL;
	}
	printf("Subvolume %" PRIu64 " is gone\n", id);
	return EXIT_OK;
}

/* The IDs, all checked before any wait: a typo is a usage error, not a wait first. */
static int parse_ids(const char *cmd, char **args, int n, uint64_t *ids)
{
	for (int i = 0; i < n; i++) {
		if (!sv_parse_id(args[i], &ids[i])) {
			fprintf(stderr, PROG " %s: '%s' is not a subvolume id\n", cmd, args[i]);
			return -1;
		}
	}
	return 0;
}

int sv_cmd_sync(int argc, char **argv)
{
	const struct cli_flag flags[] = { { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, argc, sync_usage), status = EXIT_OK;
	const char *mnt;
	struct sv_path m;
	uint64_t *ids;
	int n;

	if (ret >= 0)
		return ret;
	mnt = argv[optind];
	n = argc - optind - 1;
	ids = calloc((size_t)n + 1, sizeof(*ids));
	if (!ids) {
		fprintf(stderr, PROG " %s: %s\n", argv[0], strerror(ENOMEM));
		return EXIT_FAIL;
	}
	if (parse_ids(argv[0], argv + optind + 1, n, ids) < 0) {
		free(ids);
		sync_usage(stderr);
		return EXIT_USAGE;
	}
	ret = sv_open(mnt, false, &m);
	if (ret < 0) {
		sv_perror(argv[0], mnt, SV_OP_OPEN, ret);
		free(ids);
		return EXIT_FAIL;
	}
	if (n == 0)
		status = sync_all(argv[0], mnt, m.f.fd);
	for (int i = 0; i < n; i++) {
		if (sync_one(argv[0], mnt, m.f.fd, ids[i]) != EXIT_OK)
			status = EXIT_FAIL;
	}
	sv_close(&m);
	free(ids);
	ret = finish_output(stdout);
	return ret ? ret : status;
}
