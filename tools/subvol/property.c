/*
 * cowfs property get PATH [ro] / set PATH ro true|false / list PATH: a subvolume's ro
 * property, as btrfs-progs spells it. PATH is a subvolume's root directory; get reads the
 * flag from COWFS_IOC_SUBVOL_INFO and prints "ro=true" or "ro=false", set changes it with
 * COWFS_IOC_SUBVOL_SET_FLAGS (by the subvolume's owner or root).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/lib/compiler.h"
#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"
#include "tools/subvol/subvol.h"

#define PROP_RO "ro"

static int property_get(int argc, char **argv);
static int property_set(int argc, char **argv);
static int property_list(int argc, char **argv);

static const struct sv_subcommand subcommands[] = {
	{ "get", property_get, "get PATH [ro]" },
	{ "set", property_set, "set PATH ro true|false" },
	{ "list", property_list, "list PATH" },
};

static void property_usage(FILE *f)
{
	fprintf(f, "Usage: " PROG " property get|set|list PATH ...\n"
		   "The properties of a subvolume (PATH: its root directory). There is one:\n"
		   "  ro   read-only: every change in the subvolume is EROFS (true or false)\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		fprintf(f, "  " PROG " property %s\n", subcommands[i].synopsis);
	fprintf(f, "\n"
		   "get prints \"ro=true\" or \"ro=false\"; set needs the subvolume's owner or root.\n"
		   "Exit status: 0 success, 1 failure, 2 usage (an unknown property or value).\n");
}

/* The property operand, when given, must be one this program knows. */
static bool known_property(const char *cmd, const char *name)
{
	if (!strcmp(name, PROP_RO))
		return true;
	fprintf(stderr, PROG " %s: unknown property '%s' (a subvolume has: " PROP_RO ")\n", cmd,
		name);
	return false;
}

static int property_get(int argc, char **argv)
{
	const struct cli_flag flags[] = { { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, 2, property_usage);
	struct sv_path p;

	if (ret >= 0)
		return ret;
	if (optind + 1 < argc && !known_property(argv[0], argv[optind + 1]))
		return EXIT_USAGE;
	if (sv_open_root_said(argv[0], argv[optind], &p) < 0)
		return EXIT_FAIL;
	printf(PROP_RO "=%s\n", p.info.flags & COWFS_SUBVOL_RDONLY ? "true" : "false");
	sv_close(&p);
	return finish_output(stdout);
}

static int property_set(int argc, char **argv)
{
	const struct cli_flag flags[] = { { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 3, 3, property_usage);
	struct cowfs_ioc_subvol_flags f = { .version = COWFS_SUBVOL_VERSION };
	const char *value;
	struct sv_path p;

	if (ret >= 0)
		return ret;
	if (!known_property(argv[0], argv[optind + 1]))
		return EXIT_USAGE;
	value = argv[optind + 2];
	if (strcmp(value, "true") && strcmp(value, "false")) {
		fprintf(stderr, PROG " %s: ro is true or false, not '%s'\n", argv[0], value);
		return EXIT_USAGE;
	}
	if (sv_open_root_said(argv[0], argv[optind], &p) < 0)
		return EXIT_FAIL;
	f.flags = !strcmp(value, "true") ? COWFS_SUBVOL_RDONLY : 0;
	ret = cowfs_ioctl(p.f.fd, COWFS_IOC_SUBVOL_SET_FLAGS, &f);
	if (ret < 0)
		sv_perror(argv[0], argv[optind], SV_OP_SET_FLAGS, ret);
	sv_close(&p);
	return ret < 0 ? EXIT_FAIL : EXIT_OK;
}

static int property_list(int argc, char **argv)
{
	const struct cli_flag flags[] = { { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, 1, property_usage);
	struct sv_path p;

	if (ret >= 0)
		return ret;
	if (sv_open_root_said(argv[0], argv[optind], &p) < 0)
		return EXIT_FAIL;
	sv_close(&p);
	printf("%-10s%s\n", PROP_RO, "read-only status of a subvolume");
	return finish_output(stdout);
}

int cmd_property(int argc, char **argv)
{
	return sv_dispatch("property", subcommands, ARRAY_SIZE(subcommands), property_usage,
			   argc, argv);
}
