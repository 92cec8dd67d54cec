/*
 * cowfs snapshot [-r] SRC DST[/NAME] (also `cowfs subvolume snapshot`): a snapshot of the
 * subvolume whose root directory SRC is, as btrfs takes one:
 *
 *   - SRC must be a subvolume's root directory (the top level's, the mount's root, included):
 *     a directory inside one is "not a subvolume", as btrfs says;
 *   - DST an existing directory: the snapshot is DST/basename(SRC); otherwise DST names it
 *     (its parent must exist);
 *   - syncfs(2) on SRC first: the kernel's dirty pages of SRC's files reach the server, which
 *     then writes back what it holds into the snapshot (COWFS_IOC_SNAP_CREATE's contract), so
 *     the snapshot holds every write that completed before the command;
 *   - COWFS_IOC_SNAP_CREATE on DST's directory with SRC's id, COWFS_SUBVOL_RDONLY with -r.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"
#include "tools/subvol/subvol.h"

static void snapshot_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " snapshot [-r|--readonly] SRC DST[/NAME]\n"
		"       " PROG " subvolume snapshot [-r|--readonly] SRC DST[/NAME]\n"
		"Take a snapshot of the subvolume SRC (its root directory; the mount's root is the top\n"
		"level's): an O(1) copy of it as it was when the command began. When DST is an\n"
		"existing directory the snapshot is DST/<name of SRC>, otherwise DST itself. Needs\n"
		"write and search permission on the destination directory and read permission on\n"
		"SRC. A writable snapshot and its source diverge independently from then on.\n"
		"\n"
		"  -r, --readonly   make the snapshot read-only (every change is EROFS; '" PROG "\n"
		"                   property set PATH ro false' makes it writable)\n"
		"  -h, --help       show this help\n"
		"\n"
		"Exit status: 0 made, 1 failure, 2 usage.\n");
}

/* Where the snapshot goes: DST itself, or DST/basename(SRC) when DST is a directory. */
static int destination(const char *src, const char *dst, char *dir, size_t dir_size,
		       char name[COWFS_SUBVOL_NAME_MAX + 1])
{
	char src_dir[PATH_MAX];
	struct stat st;

	if (stat(dst, &st) < 0 || !S_ISDIR(st.st_mode))
		return sv_split(dst, dir, dir_size, name);
	if (strlen(dst) >= dir_size)
		return -ENAMETOOLONG;
	strcpy(dir, dst);
	return sv_split_resolved(src, src_dir, sizeof(src_dir), name);
}

static int take_snapshot(const char *cmd, const char *src, const char *dst, bool rdonly)
{
	char dir[PATH_MAX], name[COWFS_SUBVOL_NAME_MAX + 1], shown[PATH_MAX];
	struct sv_path s, d;
	uint64_t id;
	int ret;

	if (sv_open_root_said(cmd, src, &s) < 0)
		return EXIT_FAIL;
	ret = destination(src, dst, dir, sizeof(dir), name);
	if (ret < 0) {
		sv_perror(cmd, dst, SV_OP_SNAPSHOT, ret);
		goto out_src;
	}
	ret = sv_open(dir, true, &d);
	if (ret == 0 && !cowfs_same_mount(&s.f, &d.f)) {
		sv_close(&d);
		ret = COWFS_ERR_OTHER_MOUNT;
	}
	if (ret < 0) {
		sv_perror(cmd, dir, SV_OP_OPEN, ret);
		goto out_src;
	}
	if (syncfs(s.f.fd) < 0) {
		ret = -errno;
		sv_perror(cmd, src, SV_OP_SNAPSHOT, ret);
		goto out_dst;
	}
	ret = sv_create_in(d.f.fd, COWFS_IOC_SNAP_CREATE, name, s.info.id,
			   rdonly ? COWFS_SUBVOL_RDONLY : 0, &id);
	if (sv_join(dir, name, shown, sizeof(shown)) < 0)
		snprintf(shown, sizeof(shown), "%s", name);
	if (ret < 0)
		sv_perror(cmd, shown, SV_OP_SNAPSHOT, ret);
	else
		printf("Create a %ssnapshot of '%s' in '%s'\n", rdonly ? "readonly " : "", src,
		       shown);
out_dst:
	sv_close(&d);
out_src:
	sv_close(&s);
	return ret < 0 ? EXIT_FAIL : EXIT_OK;
}

int sv_cmd_snapshot(int argc, char **argv)
{
	bool rdonly = false;
	const struct cli_flag flags[] = { { "readonly", &rdonly, 'r' }, { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 2, 2, snapshot_usage);

	if (ret >= 0)
		return ret;
	ret = take_snapshot(argv[0], argv[optind], argv[optind + 1], rdonly);
	return finish_output(stdout) ? EXIT_FAIL : ret;
}

int cmd_snapshot(int argc, char **argv)
{
	return sv_cmd_snapshot(argc, argv);
}
