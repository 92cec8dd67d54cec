/*
 * cowfs subvolume delete [-c] PATH...: delete each subvolume (COWFS_IOC_SUBVOL_DELETE on the
 * directory holding it, with its name). Its directory goes at once; its tree is dropped in the
 * background, the space coming back as that goes. Prints "Delete subvolume (no-commit):
 * '/abs/PATH'" for each, as btrfs does; with -c, "(commit)", and then waits until each is
 * dropped and that is committed (COWFS_IOC_SUBVOL_SYNC with its id).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"

/* A deleted subvolume to wait for with -c: its id and the directory it was in. */
struct deleted {
	uint64_t id;
	struct sv_path dir;
	const char *path;
};

static void delete_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume delete [-c|--commit-after] PATH...\n"
		"Delete subvolumes and snapshots: each directory goes at once, the tree behind it is\n"
		"dropped in the background (resumed at the next mount after a crash) and the space\n"
		"nothing else references comes back as that goes ('" PROG " subvolume list -d'\n"
		"shows the progress). Needs write and search permission on the directory holding\n"
		"PATH, and root or the mount option user_subvol_rm_allowed (then owning the\n"
		"subvolume). The mount's root and the default subvolume cannot be deleted.\n"
		"\n"
		"  -c, --commit-after   wait until every one is dropped completely and committed\n"
		"  -h, --help           show this help\n"
		"\n"
		"Exit status: 0 all deleted, 1 some failed, 2 usage.\n");
}

/* PATH as btrfs prints it: the real path of its directory, then its name. */
static void shown_path(const char *dir, const char *name, const char *path, char *buf,
		       size_t size)
{
	char *real = realpath(dir, NULL);

	if (!real || sv_join(real, name, buf, size) < 0)
		snprintf(buf, size, "%s", path);
	free(real);
}

/*
 * PATH's directory is not on a cowfs mount: PATH may be a mount's root, which has no directory
 * to issue the ioctl on and could not be deleted anyway (-EBUSY, as the server would say), or
 * on a mount without subvolumes (that error). 0: PATH is no cowfs either.
 */
static int mount_root_error(const char *path)
{
	struct sv_path p;
	int ret = sv_open(path, true, &p);

	if (ret == 0) {
		sv_close(&p);
		return -EBUSY;
	}
	return ret == COWFS_ERR_NOT_COWFS ? 0 : ret;
}

/* Delete one PATH: 0 and *d filled (its directory left open) or -1 after a message. */
static int delete_one(const char *cmd, const char *path, bool commit, struct deleted *d)
{
	char dir[PATH_MAX], shown[PATH_MAX];
	struct cowfs_ioc_subvol_delete del = { .version = COWFS_SUBVOL_VERSION };
	int ret = sv_split_resolved(path, dir, sizeof(dir), del.name), own;

	if (ret < 0) {
		sv_perror(cmd, path, SV_OP_DELETE, ret);
		return -1;
	}
	ret = sv_open(dir, true, &d->dir);
	if (ret == COWFS_ERR_NOT_COWFS && (own = mount_root_error(path)) < 0) {
		sv_perror(cmd, path, own == -EBUSY ? SV_OP_DELETE : SV_OP_OPEN, own);
		return -1;
	}
	if (ret < 0) {
		sv_perror(cmd, dir, SV_OP_OPEN, ret);
		return -1;
	}
	ret = cowfs_ioctl(d->dir.f.fd, COWFS_IOC_SUBVOL_DELETE, &del);
	if (ret < 0) {
		sv_perror(cmd, path, SV_OP_DELETE, ret);
		sv_close(&d->dir);
		return -1;
	}
	d->id = del.id;
	d->path = path;
	shown_path(dir, del.name, path, shown, sizeof(shown));
	printf("Delete subvolume (%s): '%s'\n", commit ? "commit" : "no-commit", shown);
	return 0;
}

/* -c: wait for each deleted one; 0 or -1 if some wait failed. */
static int wait_dropped(const char *cmd, const struct deleted *d, size_t count)
{
	uint32_t waited;
	int status = 0;

	for (size_t i = 0; i < count; i++) {
		int ret = sv_sync(d[i].dir.f.fd, d[i].id, &waited);
		if (ret < 0 && ret != -ENOENT) {
			sv_perror(cmd, d[i].path, SV_OP_SYNC, ret);
			status = -1;
		}
	}
	return status;
}

int sv_cmd_delete(int argc, char **argv)
{
	bool commit = false;
	const struct cli_flag flags[] = { { "commit-after", &commit, 'c' }, { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, argc, delete_usage), status = EXIT_OK;
	struct deleted *done;
	size_t count = 0;

	if (ret >= 0)
		return ret;
	done = calloc((size_t)(argc - optind), sizeof(*done));
	if (!done) {
		fprintf(stderr, PROG " %s: %s\n", argv[0], strerror(ENOMEM));
		return EXIT_FAIL;
	}
	for (int i = optind; i < argc; i++) {
		if (delete_one(argv[0], argv[i], commit, &done[count]) < 0)
			status = EXIT_FAIL;
		else
			count++;
	}
	/* What was printed is out before a wait that may be long. */
	fflush(stdout);
	if (commit && wait_dropped(argv[0], done, count) < 0)
		status = EXIT_FAIL;
	for (size_t i = 0; i < count; i++)
		sv_close(&done[i].dir);
	free(done);
	ret = finish_output(stdout);
	return ret ? ret : status;
}
