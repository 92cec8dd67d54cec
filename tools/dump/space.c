/*
 * The exclusive space of a set of subvolumes (parts.h), both ways: the fast figure the mount
 * answers with (cowfs_subvol_space, from reference counts) and the brute-force recount over
 * every fs tree (cowfs_subvol_space_recount, no reference count looked at), so that a test can
 * compare a mount's answer with an independent one. Through the filesystem, so only when it
 * opened cleanly. Figures that disagree are a problem (exit status 1).
 */
#include "tools/dump/parts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fs/super/fsck.h"
#include "fs/super/subvol.h"
#include "tools/prog.h"

/* Text: key=value, for grep and shell tests; JSON: an ordinary field. */
static void space_field(struct out *o, const char *key, uint64_t v)
{
	if (o->json) {
		out_u64(o, key, v);
	} else if (out_field_begin(o, key, true)) {
		fprintf(o->f, "%s=%" PRIu64, key, v);
		out_field_end(o);
	}
}

/* Text: ids=5,256; JSON: an array. */
static void print_ids(struct out *o, const uint64_t *ids, size_t n)
{
	if (o->json) {
		out_arr_begin(o, "ids", NULL);
		for (size_t i = 0; i < n; i++)
			out_anon_u64(o, NULL, ids[i]);
		out_arr_end(o);
	} else if (out_field_begin(o, "ids", true)) {
		fputs("ids=", o->f);
		for (size_t i = 0; i < n; i++)
			fprintf(o->f, "%s%" PRIu64, i ? "," : "", ids[i]);
		out_field_end(o);
	}
}

static void print_space(struct out *o, const char *which, const struct subvol_space *s)
{
	out_obj_begin(o, which, which, FRAME_LINE);
	space_field(o, "exclusive_data", s->exclusive_data);
	space_field(o, "exclusive_meta", s->exclusive_meta);
	space_field(o, "referenced", s->referenced);
	space_field(o, "nodes_read", s->nodes_read);
	out_obj_end(o);
}

static bool same_space(const struct subvol_space *a, const struct subvol_space *b)
{
	return a->exclusive_data == b->exclusive_data && a->exclusive_meta == b->exclusive_meta &&
	       a->referenced == b->referenced;
}

int dump_subvol_space(struct dump *d, const uint64_t *ids, size_t n)
{
	struct subvol_space fast, slow;
	struct out *o = d->o;
	int ret;

	if (!d->img.fs) {
		fprintf(d->err, PROG ": subvolume space needs a filesystem that opens cleanly\n");
		d->problems++;
		return 0;
	}
	cowfs_lock(d->img.fs);
	ret = cowfs_subvol_space(d->img.fs, ids, n, true, &fast);
	if (ret == 0)
		ret = cowfs_subvol_space_recount(d->img.fs, ids, n, &slow);
	cowfs_unlock(d->img.fs);
	if (ret == -ENOENT) {
		fprintf(d->err, PROG ": no such subvolume among the ids given\n");
		d->not_found = true;
		return 0;
	}
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		fprintf(d->err, PROG ": subvolume space: %s\n", strerror(-ret));
		d->problems++;
		return 0;
	}
	out_obj_begin(o, "subvol_space", "subvol-space", FRAME_BLOCK);
	print_ids(o, ids, n);
	print_space(o, "fast", &fast);
	print_space(o, "recount", &slow);
	out_bool(o, "agree", same_space(&fast, &slow));
	out_obj_end(o);
	if (!same_space(&fast, &slow)) {
		fprintf(d->err, PROG ": exclusive space from reference counts differs from the "
			"recount\n");
		d->problems++;
	}
	return 0;
}
