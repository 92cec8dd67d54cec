/*
 * cowfs sync [--json] [PATH]: commit the cowfs mount PATH (default ".") is on and wait for the
 * commit, through COWFS_IOC_SYNC: what sync(2) and syncfs(2) would do on a kernel mount, which
 * on a FUSE mount never reach the server. Prints nothing unless --json, which gives the
 * generation committed (COWFS_IOC_STATUS after the sync).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "tools/dump/out.h"
#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/share/commands.h"
#include "tools/share/mount_ioctl.h"

static void sync_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " sync [--json] [PATH]\n"
		"Commit the cowfs mount PATH is on (default: the current directory) and wait until\n"
		"the commit is on disk: sync(2) and syncfs(2) do not reach a FUSE filesystem.\n"
		"\n"
		"  --json       print {\"path\": PATH, \"generation\": N}: the generation now committed\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 committed, 1 error or not a cowfs mount, 2 usage.\n");
}

static int sync_mount(const char *path, uint64_t *generation)
{
	struct cowfs_ioc_status st;
	struct cowfs_file f;
	int ret = cowfs_file_open(AT_FDCWD, path, O_RDONLY, 0, &f);

	if (ret < 0)
		return ret;
	ret = cowfs_ioctl(f.fd, COWFS_IOC_SYNC, NULL);
	if (ret == 0) {
		memset(&st, 0, sizeof(st));
		ret = cowfs_ioctl(f.fd, COWFS_IOC_STATUS, &st);
		if (ret == 0 && st.version != COWFS_STATUS_VERSION)
			ret = -EPROTO;
		*generation = st.generation;
	}
	cowfs_file_close(&f);
	return ret;
}

int cmd_sync(int argc, char **argv)
{
	uint64_t generation = 0;
	bool json = false;
	const struct cli_flag flags[] = { { "json", &json }, { NULL, NULL } };
	const char *path;
	struct out o;
	int ret = cli_parse_flags(argc, argv, flags, 0, 1, sync_usage);

	if (ret >= 0)
		return ret;
	path = optind < argc ? argv[optind] : ".";
	ret = sync_mount(path, &generation);
	if (ret < 0) {
		cowfs_perror("sync", path, ret);
		return EXIT_FAIL;
	}
	if (json) {
		out_init(&o, stdout, true);
		out_obj_begin(&o, NULL, NULL, FRAME_BLOCK);
		out_qstr(&o, "path", path, strlen(path));
		out_u64(&o, "generation", generation);
		out_obj_end(&o);
		fputc('\n', stdout);
	}
	return finish_output(stdout);
}
