/*
 * cowfs subvolume show [--raw] [--json] PATH: everything about the subvolume PATH is in
 * (COWFS_IOC_SUBVOL_INFO with id 0 on PATH): name, path, ids, uuids, generations, creation
 * time, flags, its source (a snapshot's; by path too when it still exists), its exclusive
 * bytes (COWFS_IOC_SUBVOL_SPACE of it alone) and the snapshots taken of it (every subvolume
 * whose source it is).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"

/* The snapshots of one subvolume, gathered from the listing. */
struct snapshots {
	uint64_t of;
	struct sv_ref *refs;
	size_t count, cap;
};

static void show_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume show [--raw] [--json] PATH\n"
		"Show the subvolume PATH is in: name, path from the top level, id, parent, the\n"
		"directory holding it, source (what it is a snapshot of), uuids, generation, the\n"
		"generation it was made in, creation time, flags, exclusive bytes (what deleting it\n"
		"would free: data and metadata) and the snapshots taken of it.\n"
		"\n"
		"  --raw        sizes in bytes\n"
		"  --json       one object: the fields of 'subvolume list --json', \"source_path\"\n"
		"               (null when none) and \"snapshots\": [{\"id\", \"path\"}]\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage.\n");
}

static int add_snapshot(const struct cowfs_ioc_subvol_info *info, void *ctx)
{
	struct snapshots *s = ctx;
	struct sv_ref *refs;

	if (info->source != s->of)
		return 0;
	if (s->count == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		refs = realloc(s->refs, s->cap * sizeof(*refs));
		if (!refs)
			return -ENOMEM;
		s->refs = refs;
	}
	s->refs[s->count].id = info->id;
	s->refs[s->count].path = strdup(sv_path_shown(info));
	if (!s->refs[s->count].path)
		return -ENOMEM;
	s->count++;
	return 0;
}

static void free_snapshots(struct snapshots *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->refs[i].path);
	free(s->refs);
}

/* The source's path, or NULL (none, or deleted since); *err for another failure. */
static char *source_path(int fd, uint64_t source, int *err)
{
	struct cowfs_ioc_subvol_info src;
	int ret;

	*err = 0;
	if (!source)
		return NULL;
	ret = sv_info(fd, source, false, &src);
	if (ret < 0) {
		if (ret != -ENOENT)
			*err = ret;
		return NULL;
	}
	if (src.flags & COWFS_SUBVOL_DELETING)
		return NULL;
	return strdup(sv_path_shown(&src));
}

static int show(const char *cmd, const char *path, bool raw, bool json)
{
	struct snapshots snaps = { 0 };
	struct cowfs_ioc_subvol_space space;
	struct sv_show s = { 0 };
	struct sv_path p;
	struct out o;
	int ret = sv_open(path, false, &p), err, space_err;

	if (ret < 0) {
		sv_perror(cmd, path, SV_OP_OPEN, ret);
		return EXIT_FAIL;
	}
	s.info = &p.info;
	s.source_path = source_path(p.f.fd, p.info.source, &err);
	if (err == 0) {
		snaps.of = p.info.id;
		err = sv_each(p.f.fd, add_snapshot, &snaps);
	}
	/* The space figure is one field among many: without it the rest is still shown. */
	space_err = sv_space(p.f.fd, &p.info.id, 1, false, &space);
	if (space_err < 0)
		sv_perror(cmd, path, SV_OP_SPACE, space_err);
	else
		s.space = &space;
	if (err < 0) {
		sv_perror(cmd, path, SV_OP_INFO, err);
	} else {
		s.snapshots = snaps.refs;
		s.snapshot_count = snaps.count;
		out_init(&o, stdout, json);
		if (json) {
			sv_show_json(&o, &s);
			fputc('\n', stdout);
		} else {
			sv_show_text(stdout, &s, raw);
		}
	}
	free((char *)s.source_path);
	free_snapshots(&snaps);
	sv_close(&p);
	return err < 0 || space_err < 0 ? EXIT_FAIL : EXIT_OK;
}

int sv_cmd_show(int argc, char **argv)
{
	bool raw = false, json = false;
	const struct cli_flag flags[] = { { "raw", &raw }, { "json", &json }, { NULL, NULL } };
	int ret = cli_parse_flags(argc, argv, flags, 1, 1, show_usage), status;

	if (ret >= 0)
		return ret;
	status = show(argv[0], argv[optind], raw, json);
	ret = finish_output(stdout);
	return ret ? ret : status;
}
