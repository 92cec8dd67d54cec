/*
 * cowfs subvolume create DIR/NAME...: a new empty subvolume NAME in DIR for each operand
 * (COWFS_IOC_SUBVOL_CREATE on DIR), "Create subvolume 'DIR/NAME'" for each made, as btrfs
 * prints it. One that fails is reported and the others are still made (exit 1).
 */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"

static void create_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume create DIR/NAME...\n"
		"Make a new empty subvolume NAME in the directory DIR (default: the current one) of a\n"
		"cowfs mount, owned by you, mode 0755. Needs write and search permission on DIR.\n"
		"\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 all made, 1 some failed, 2 usage.\n");
}

static int create_one(const char *cmd, const char *path)
{
	char dir[PATH_MAX], name[COWFS_SUBVOL_NAME_MAX + 1];
	struct sv_path d;
	uint64_t id;
	int ret = sv_split(path, dir, sizeof(dir), name);

	if (ret < 0) {
		sv_perror(cmd, path, SV_OP_CREATE, ret);
		return EXIT_FAIL;
	}
	ret = sv_open(dir, true, &d);
	if (ret < 0) {
		sv_perror(cmd, dir, SV_OP_OPEN, ret);
		return EXIT_FAIL;
	}
	ret = sv_create_in(d.f.fd, COWFS_IOC_SUBVOL_CREATE, name, 0, 0, &id);
	sv_close(&d);
	if (ret < 0) {
		sv_perror(cmd, path, SV_OP_CREATE, ret);
		return EXIT_FAIL;
	}
	printf("Create subvolume '%s'\n", path);
	return EXIT_OK;
}

int sv_cmd_create(int argc, char **argv)
{
	const struct cli_flag flags[] = { { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, argc, create_usage), status = EXIT_OK;

	if (ret >= 0)
		return ret;
	for (int i = optind; i < argc; i++) {
		if (create_one(argv[0], argv[i]) != EXIT_OK)
			status = EXIT_FAIL;
	}
	ret = finish_output(stdout);
	return ret ? ret : status;
}
