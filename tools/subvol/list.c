/*
 * cowfs subvolume list [-s] [-r] [-d] [--raw] [--json] MNT: every subvolume of the mount MNT
 * is on, deleting ones included, in id order (COWFS_IOC_SUBVOL_INFO with INFO_NEXT from 0,
 * then from id + 1 until ENOENT), each with its exclusive bytes (COWFS_IOC_SUBVOL_SPACE of it
 * alone: what deleting it would free). -s keeps only snapshots, -r only read-only ones, -d
 * only those being deleted ("deleting, N% done"); together, those that are all of them.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"

struct list_run {
	const char *cmd, *mnt;
	bool snapshots, readonly, deleting, raw, json;
	int fd;
	struct out o;
	bool header_done;
	int errors;
};

static void list_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume list [-s] [-r] [-d] [--raw] [--json] MNT\n"
		"List the subvolumes of the cowfs mount MNT is on, in id order: id, parent (the\n"
		"subvolume whose directory holds it; 0 for the top level), generation (the last\n"
		"transaction that changed it), flags (ro, default, \"deleting, N%% done\"), exclusive\n"
		"bytes (what deleting it alone would free) and path from the top level.\n"
		"\n"
		"  -s, --snapshots   only snapshots\n"
		"  -r, --readonly    only read-only subvolumes\n"
		"  -d, --deleted     only subvolumes being deleted\n"
		"  --raw             sizes in bytes\n"
		"  --json            {\"path\": MNT, \"subvolumes\": [{\"id\", \"name\", \"path\", \"parent\",\n"
		"                    \"dir\", \"source\", \"generation\", \"ctransid\", \"otime\",\n"
		"                    \"otime_nsec\", \"flags\", \"read_only\", \"default\", \"deleting\",\n"
		"                    \"drop_permille\", \"uuid\", \"source_uuid\", \"exclusive\",\n"
		"                    \"exclusive_data\", \"exclusive_meta\"}]}; sizes in bytes\n"
		"  -h, --help        show this help\n"
		"\n"
		"Exit status: 0 success, 1 failure (not a cowfs mount with subvolumes, ...), 2 usage.\n");
}

static bool wanted(const struct list_run *r, const struct cowfs_ioc_subvol_info *info)
{
	return (!r->snapshots || info->source) &&
	       (!r->readonly || info->flags & COWFS_SUBVOL_RDONLY) &&
	       (!r->deleting || info->flags & COWFS_SUBVOL_DELETING);
}

/* Its exclusive bytes into *sp, or false: not known (a deleting one may be gone by now). */
static bool exclusive_of(struct list_run *r, const struct cowfs_ioc_subvol_info *info,
			 struct cowfs_ioc_subvol_space *sp)
{
	int ret = sv_space(r->fd, &info->id, 1, false, sp);

	if (ret == 0)
		return true;
	if (!(ret == -ENOENT && info->flags & COWFS_SUBVOL_DELETING)) {
		char what[PATH_MAX + 48];   /* the mount's path, then the id */
		snprintf(what, sizeof(what), "%s: subvolume %" PRIu64, r->mnt, info->id);
		sv_perror(r->cmd, what, SV_OP_SPACE, ret);
		r->errors++;
	}
	return false;
}

static int list_one(const struct cowfs_ioc_subvol_info *info, void *ctx)
{
	struct list_run *r = ctx;
	struct cowfs_ioc_subvol_space sp;
	bool known;

	if (!wanted(r, info))
		return 0;
	known = exclusive_of(r, info, &sp);
	if (r->json) {
		sv_json_subvol(&r->o, NULL, info, known ? &sp : NULL);
		return 0;
	}
	if (!r->header_done)
		sv_list_header(stdout);
	r->header_done = true;
	sv_list_line(stdout, info, known ? &sp : NULL, r->raw);
	return 0;
}

static int list(struct list_run *r)
{
	struct sv_path m;
	int ret = sv_open(r->mnt, false, &m);

	if (ret < 0) {
		sv_perror(r->cmd, r->mnt, SV_OP_OPEN, ret);
		return EXIT_FAIL;
	}
	r->fd = m.f.fd;
	out_init(&r->o, stdout, r->json);
	if (r->json) {
		out_obj_begin(&r->o, NULL, NULL, FRAME_BLOCK);
		out_qstr(&r->o, "path", r->mnt, strlen(r->mnt));
		out_arr_begin(&r->o, "subvolumes", NULL);
	}
	ret = sv_each(m.f.fd, list_one, r);
	if (ret < 0) {
		sv_perror(r->cmd, r->mnt, SV_OP_INFO, ret);
		r->errors++;
	}
	if (r->json) {
		out_arr_end(&r->o);
		out_obj_end(&r->o);
		fputc('\n', stdout);
	}
	sv_close(&m);
	return r->errors ? EXIT_FAIL : EXIT_OK;
}

int sv_cmd_list(int argc, char **argv)
{
	struct list_run r = { .cmd = argv[0] };
	const struct cli_flag flags[] = {
		{ "snapshots", &r.snapshots, 's' }, { "readonly", &r.readonly, 'r' },
		{ "deleted", &r.deleting, 'd' }, { "raw", &r.raw }, { "json", &r.json },
		{ NULL, NULL },
	};
	int ret = cli_parse_flags(argc, argv, flags, 1, 1, list_usage), status;

	if (ret >= 0)
		return ret;
	r.mnt = argv[optind];
	status = list(&r);
	ret = finish_output(stdout);
	return ret ? ret : status;
}
