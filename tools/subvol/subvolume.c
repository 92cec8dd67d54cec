/*
 * cowfs subvolume SUBCOMMAND ...: the subcommand table, and the dispatch it shares with
 * `cowfs property` (parts.h). As in btrfs-progs a unique prefix names a subcommand
 * (`cowfs subvolume del`). The subcommand sees argv[0] = "subvolume NAME", so that its
 * messages say which one they come from.
 */
#include <stdio.h>
#include <string.h>

#include "fs/lib/compiler.h"
#include "tools/prog.h"
#include "tools/subvol/parts.h"
#include "tools/subvol/subvol.h"

#define SV_NAME_MAX 64

static const struct sv_subcommand subcommands[] = {
	{ "create", sv_cmd_create, "create DIR/NAME..." },
	{ "snapshot", sv_cmd_snapshot, "snapshot [-r|--readonly] SRC DST[/NAME]" },
	{ "delete", sv_cmd_delete, "delete [-c|--commit-after] PATH..." },
	{ "list", sv_cmd_list, "list [-s|--snapshots] [-r|--readonly] [-d|--deleted] [--raw] "
	  "[--json] MNT" },
	{ "show", sv_cmd_show, "show [--raw] [--json] PATH" },
	{ "set-default", sv_cmd_set_default, "set-default ID|PATH [MNT]" },
	{ "get-default", sv_cmd_get_default, "get-default [--json] MNT" },
	{ "sync", sv_cmd_sync, "sync MNT [ID...]" },
	{ "space", sv_cmd_space, "space [--referenced] [--raw] [--json] PATH..." },
};

static void subvolume_usage(FILE *f)
{
	fprintf(f, "Usage: " PROG " subvolume SUBCOMMAND [options] ...\n"
		   "Subvolumes and snapshots on a cowfs mount.\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		fprintf(f, "  " PROG " subvolume %s\n", subcommands[i].synopsis);
	fprintf(f, "\n"
		   "  " PROG " snapshot [-r] SRC DST[/NAME]   the same as subvolume snapshot\n"
		   "  " PROG " property get|set|list PATH ...  a subvolume's ro property\n"
		   "\n"
		   "A unique prefix names a subcommand. Run '" PROG " subvolume SUBCOMMAND --help'\n"
		   "for one's options and output.\n"
		   "Exit status: 0 success, 1 failure, 2 usage.\n");
}

/* The entry `word` names, whole or as a prefix of one only; NULL if none or ambiguous. */
static const struct sv_subcommand *find_subcommand(const struct sv_subcommand *table,
						   size_t count, const char *word, int *matches)
{
	const struct sv_subcommand *found = NULL;
	size_t n = strlen(word);

	*matches = 0;
	for (size_t i = 0; i < count; i++) {
		if (!strcmp(word, table[i].name)) {
			*matches = 1;
			return &table[i];
		}
		if (n && !strncmp(word, table[i].name, n)) {
			found = &table[i];
			(*matches)++;
		}
	}
	return *matches == 1 ? found : NULL;
}

int sv_dispatch(const char *family, const struct sv_subcommand *table, size_t count,
		void (*usage)(FILE *f), int argc, char **argv)
{
	const struct sv_subcommand *sub;
	char name[SV_NAME_MAX];
	int matches;

	if (argc < 2) {
		fprintf(stderr, PROG " %s: no subcommand given\n", family);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return finish_output(stdout);
	}
	sub = find_subcommand(table, count, argv[1], &matches);
	if (!sub) {
		fprintf(stderr, PROG " %s: %s subcommand '%s'\n", family,
			matches > 1 ? "ambiguous" : "unknown", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	snprintf(name, sizeof(name), "%s %s", family, sub->name);
	argv[1] = name;
	return sub->run(argc - 1, argv + 1);
}

int cmd_subvolume(int argc, char **argv)
{
	return sv_dispatch("subvolume", subcommands, ARRAY_SIZE(subcommands), subvolume_usage,
			   argc, argv);
}
