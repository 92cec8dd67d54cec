/*
 * cowfs subvolume space [--referenced] [--raw] [--json] PATH...: the exact space figures of the
 * subvolumes the PATHs are in, taken together (one COWFS_IOC_SUBVOL_SPACE of the set): the
 * exclusive bytes are what deleting all of them together would free, which no figure of one
 * alone says (two snapshots sharing everything each free nothing alone). A PATH in a
 * subvolume already named counts once. --referenced also walks the whole trees for every
 * distinct byte they reach.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/subvol/parts.h"

struct space_set {
	struct sv_ref refs[COWFS_SUBVOL_SPACE_MAX];
	uint64_t ids[COWFS_SUBVOL_SPACE_MAX];
	size_t count;
	struct sv_path first;    /* the first PATH, open: the mount every other must be on */
};

static void space_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " subvolume space [--referenced] [--raw] [--json] PATH...\n"
		"Show the exact space of the subvolumes the PATHs are in, all together: exclusive\n"
		"bytes (data and metadata referenced only from them: what deleting all of them\n"
		"together would free), computed from reference counts, no rescan. At most %d\n"
		"subvolumes, all on one mount.\n"
		"\n"
		"  --referenced   also every distinct byte they reach (walks the whole trees)\n"
		"  --raw          sizes in bytes\n"
		"  --json         {\"subvolumes\": [{\"id\", \"path\"}], \"exclusive\", \"exclusive_data\",\n"
		"                 \"exclusive_meta\", \"referenced\" (null without --referenced),\n"
		"                 \"freed_if_all_deleted\"}; sizes in bytes\n"
		"  -h, --help     show this help\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage.\n", COWFS_SUBVOL_SPACE_MAX);
}

/* Add p's subvolume to the set unless it is in already; the first one's p is taken over. */
static int add_subvol(struct space_set *set, struct sv_path *p)
{
	char *path;

	if (set->count && !cowfs_same_mount(&set->first.f, &p->f))
		return COWFS_ERR_OTHER_MOUNT;
	for (size_t i = 0; i < set->count; i++) {
		if (set->ids[i] == p->info.id)
			return 0;
	}
	if (set->count == COWFS_SUBVOL_SPACE_MAX)
		return -E2BIG;
	path = strdup(sv_path_shown(&p->info));
	if (!path)
		return -ENOMEM;
	set->ids[set->count] = p->info.id;
	set->refs[set->count] = (struct sv_ref){ .id = p->info.id, .path = path };
	if (set->count++ == 0) {
		set->first = *p;
		p->f.fd = -1;
	}
	return 0;
}

static int add_path(const char *cmd, struct space_set *set, const char *path)
{
	struct sv_path p;
	int ret = sv_open(path, false, &p);

	if (ret < 0) {
		sv_perror(cmd, path, SV_OP_OPEN, ret);
		return -1;
	}
	ret = add_subvol(set, &p);
	if (ret < 0)
		sv_perror(cmd, path, SV_OP_SPACE, ret);
	sv_close(&p);
	return ret;
}

static void print_space(const struct space_set *set, const struct cowfs_ioc_subvol_space *sp,
			bool referenced, bool raw, bool json)
{
	struct sv_space_report r = {
		.subvols = set->refs, .count = set->count, .space = sp, .referenced = referenced,
	};
	struct out o;

	if (!json) {
		sv_space_text(stdout, &r, raw);
		return;
	}
	out_init(&o, stdout, true);
	sv_space_json(&o, &r);
	fputc('\n', stdout);
}

int sv_cmd_space(int argc, char **argv)
{
	bool referenced = false, raw = false, json = false;
	const struct cli_flag flags[] = {
		{ "referenced", &referenced }, { "raw", &raw }, { "json", &json }, { NULL, NULL },
	};
	int ret = cli_parse_flags(argc, argv, flags, 1, argc, space_usage), status = EXIT_OK;
	struct cowfs_ioc_subvol_space sp;
	struct space_set set = { .first = { .f = { .fd = -1 } } };

	if (ret >= 0)
		return ret;
	for (int i = optind; i < argc; i++) {
		if (add_path(argv[0], &set, argv[i]) < 0)
			status = EXIT_FAIL;
	}
	/* A figure for fewer subvolumes than asked would answer another question. */
	if (status == EXIT_OK) {
		ret = sv_space(set.first.f.fd, set.ids, set.count, referenced, &sp);
		if (ret < 0) {
			sv_perror(argv[0], argv[optind], SV_OP_SPACE, ret);
			status = EXIT_FAIL;
		} else {
			print_space(&set, &sp, referenced, raw, json);
		}
	}
	for (size_t i = 0; i < set.count; i++)
		free(set.refs[i].path);
	sv_close(&set.first);
	ret = finish_output(stdout);
	return ret ? ret : status;
}
