/*
 * cowfs: the command-line tool for cowfs images.
 *
 *   cowfs IMAGE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]   mount (fuse/server.h)
 *   cowfs dump IMAGE [--json] [--super] [--tree ID|root|extent|fs|csum] [--block BYTENR]
 *                    [--inode INO | --path /A/B]        print an image (tools/dump/dump.h)
 *   cowfs status [--json] PATH                          a mount's state (tools/status/status.h)
 *   cowfs dedupe [-r] [--dry-run] [--json] PATH...      share duplicate chunks (tools/dedupe/)
 *   cowfs reflink|fiemap|du|sync|stats ...              sharing and space on a mount
 *                                                       (tools/share/commands.h, docs/CLI.md)
 *   cowfs subvolume|snapshot|property ...               subvolumes and snapshots on a mount
 *                                                       (tools/subvol/subvol.h, docs/CLI.md)
 *
 * This file only tells the two apart: a first word that names a command runs that command,
 * anything else is a mount. The mount is the usual use (mount.fuse3 runs `cowfs IMAGE MNT -o
 * OPTS`), so it needs no command word. `cowfs --version` (and `cowfs COMMAND --version`)
 * prints the version.
 *
 * Exit status: 0 success; 1 failure (for dump: something could not be read or is corrupt, or
 * the image could not be opened); 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "fs/lib/compiler.h"
#include "fuse/server.h"
#include "tools/dedupe/dedupe.h"
#include "tools/dump/dump.h"
#include "tools/prog.h"
#include "tools/share/commands.h"
#include "tools/status/status.h"
#include "tools/subvol/subvol.h"
#include "tools/version.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "dedupe", cmd_dedupe, "share the duplicate chunks of files on a mount" },
	{ "dump", cmd_dump, "print the superblock and trees of an image" },
	{ "status", cmd_status, "show a mount's state: generation, commits, an aborted transaction" },
	{ "reflink", cmd_reflink, "make a file share another's data (a clone, no space used)" },
	{ "fiemap", cmd_fiemap, "list a file's extents: where on disk, which are shared" },
	{ "du", cmd_du, "space used: total, exclusive, shared, pinned; freed if all deleted" },
	{ "sync", cmd_sync, "commit a mount and wait for it" },
	{ "stats", cmd_stats, "counters since mount: bytes shared vs copied, commits, fsyncs" },
	{ "subvolume", cmd_subvolume, "create, delete, list, show subvolumes; default, space" },
	{ "snapshot", cmd_snapshot, "take a snapshot of a subvolume (O(1); -r read-only)" },
	{ "property", cmd_property, "get or set a subvolume's ro property" },
};

static void usage(FILE *f)
{
	cowfs_mount_usage(f, PROG);
	fprintf(f, "\nOther uses: " PROG " COMMAND [options] ...\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun '" PROG " COMMAND --help' for a command's options, '" PROG
		" --version' for the version.\n");
}

/*
 * Run as mount.fuse.cowfs (make install links it to this program): mount(8)'s helper call,
 *   mount.fuse.cowfs SOURCE TARGET [-sfnvrw] [-N NS] [-o OPTIONS] [-t fuse.cowfs]
 * becomes the mount `cowfs SOURCE TARGET -o OPTIONS` (a remount among them: `remount` is in
 * OPTIONS). mount(8)'s -s (sloppy), -n and -v mean nothing here; -f (fake) does nothing.
 */
static int mount_helper_main(int argc, char **argv)
{
	char *args[] = { PROG, NULL, NULL, "-o", NULL, NULL };
	char opts[4096] = "";
	int n = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *add = NULL;

		if (a[0] != '-' || !a[1]) {
			if (n == 2) {
				fprintf(stderr, "mount.fuse.cowfs: unexpected argument '%s'\n", a);
				return 1;
			}
			args[1 + n++] = argv[i];
			continue;
		}
		if (!strcmp(a, "-o") || !strcmp(a, "-t") || !strcmp(a, "-N")) {
			if (++i == argc) {
				fprintf(stderr, "mount.fuse.cowfs: %s needs an argument\n", a);
				return 1;
			}
			if (a[1] == 'N') {
				fprintf(stderr, "mount.fuse.cowfs: -N (namespaces) is not supported\n");
				return 1;
			}
			add = a[1] == 'o' ? argv[i] : NULL;
		} else if (strspn(a + 1, "sfnvrw") == strlen(a + 1)) {
			if (strchr(a, 'f'))
				return 0;
			add = strchr(a, 'r') ? "ro" : strchr(a, 'w') ? "rw" : NULL;
		} else {
			fprintf(stderr, "mount.fuse.cowfs: unknown option '%s'\n", a);
			return 1;
		}
		if (add && snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), "%s%s",
				    opts[0] ? "," : "", add) >= (int)(sizeof(opts) - strlen(opts))) {
			fprintf(stderr, "mount.fuse.cowfs: options too long\n");
			return 1;
		}
	}
	if (n != 2) {
		fprintf(stderr, "usage: mount.fuse.cowfs IMAGE MOUNTPOINT [-o OPTIONS]\n");
		return 1;
	}
	args[4] = opts[0] ? opts : NULL;
	return cowfs_mount_main(opts[0] ? 5 : 3, args);
}

int main(int argc, char **argv)
{
	const char *self = strrchr(argv[0], '/');

	if (!strcmp(self ? self + 1 : argv[0], "mount.fuse.cowfs"))
		return mount_helper_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return finish_output(stdout);
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return print_version(PROG);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (argc == 3 && !strcmp(argv[2], "--version") && !strcmp(argv[1], commands[i].name))
			return print_version(PROG);
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	}
	/* A mount is IMAGE MOUNTPOINT [options]; one word alone is a mistyped command. */
	if (argc == 2 && argv[1][0] != '-') {
		fprintf(stderr, PROG ": unknown command '%s' (a mount needs IMAGE MOUNTPOINT)\n",
			argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return cowfs_mount_main(argc, argv);
}
