/*
 * cowfs subvolume set-default ID|PATH [MNT] and get-default [--json] MNT: the subvolume a
 * mount without subvol=/subvolid= shows (COWFS_IOC_SUBVOL_DEFAULT). Rolling back to a
 * snapshot is set-default to it, then a remount. set-default with one operand takes PATH, a
 * subvolume's root directory, and its mount; with two, the first is an id when all digits.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"

static void set_default_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume set-default ID|PATH [MNT]\n"
		"Make a subvolume the default of the mount MNT is on: what a mount without subvol=\n"
		"or subvolid= shows from then on (remount to roll back to it). The subvolume is given\n"
		"by id (5: the top level) or as PATH, its root directory; MNT defaults to PATH.\n"
		"Needs root. A subvolume being deleted cannot become the default.\n"
		"\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 set, 1 failure, 2 usage.\n");
}

static void get_default_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume get-default [--json] MNT\n"
		"Show the default subvolume of the mount MNT is on: what a mount without subvol= or\n"
		"subvolid= shows. Text: \"ID N gen N parent N path PATH\".\n"
		"\n"
		"  --json       the subvolume as one object (the fields of 'subvolume list --json')\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage.\n");
}

static int default_op(int fd, uint32_t op, uint64_t *id)
{
	struct cowfs_ioc_subvol_default d = { .version = COWFS_SUBVOL_VERSION, .op = op,
					      .id = *id };
	int ret = cowfs_ioctl(fd, COWFS_IOC_SUBVOL_DEFAULT, &d);

	*id = d.id;
	return ret;
}

int sv_cmd_set_default(int argc, char **argv)
{
	const struct cli_flag flags[] = { { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, 2, set_default_usage);
	const char *what, *mnt;
	struct sv_path sub = { .f = { .fd = -1 } }, m;
	uint64_t id;

	if (ret >= 0)
		return ret;
	what = argv[optind];
	mnt = optind + 1 < argc ? argv[optind + 1] : what;
	if (!sv_parse_id(what, &id) || mnt == what) {
		if (sv_open_root_said(argv[0], what, &sub) < 0)
			return EXIT_FAIL;
		id = sub.info.id;
	}
	ret = sv_open(mnt, false, &m);
	if (ret == 0 && sub.f.fd >= 0 && !cowfs_same_mount(&sub.f, &m.f)) {
		sv_close(&m);
		ret = COWFS_ERR_OTHER_MOUNT;
	}
	if (ret < 0) {
		sv_perror(argv[0], mnt, SV_OP_OPEN, ret);
	} else {
		ret = default_op(m.f.fd, COWFS_SUBVOL_DEFAULT_SET, &id);
		if (ret < 0)
			sv_perror(argv[0], what, SV_OP_DEFAULT, ret);
		sv_close(&m);
	}
	if (sub.f.fd >= 0)
		sv_close(&sub);
	return ret < 0 ? EXIT_FAIL : EXIT_OK;
}

static void print_default(const struct cowfs_ioc_subvol_info *info, bool json)
{
	struct out o;

	if (json) {
		out_init(&o, stdout, true);
		sv_json_subvol(&o, NULL, info, NULL);
		fputc('\n', stdout);
		return;
	}
	printf("ID %" PRIu64 " gen %" PRIu64 " parent %" PRIu64 " path %s\n", info->id,
	       info->generation, info->parent, sv_path_shown(info));
}

int sv_cmd_get_default(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = { { "json", &json }, { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, 1, get_default_usage);
	struct cowfs_ioc_subvol_info info;
	struct sv_path m;
	uint64_t id = 0;

	if (ret >= 0)
		return ret;
	ret = sv_open(argv[optind], false, &m);
	if (ret < 0) {
		sv_perror(argv[0], argv[optind], SV_OP_OPEN, ret);
		return EXIT_FAIL;
	}
	ret = default_op(m.f.fd, COWFS_SUBVOL_DEFAULT_GET, &id);
	if (ret == 0)
		ret = sv_info(m.f.fd, id, false, &info);
	sv_close(&m);
	if (ret < 0) {
		sv_perror(argv[0], argv[optind], SV_OP_DEFAULT, ret);
		return EXIT_FAIL;
	}
	print_default(&info, json);
	return finish_output(stdout);
}
