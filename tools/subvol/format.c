/*
 * Subvolumes as text and JSON (parts.h): list lines, show's fields, space's figures. No
 * ioctls here, only a FILE or an out emitter, so that tests/unit/test_subvol_format.c can hold
 * every form against the exact text it must be.
 *
 * Sizes in text as the other commands print them (tools/share/size.h: 1.00MiB, or bytes with
 * --raw); in JSON always bytes. The top level's path is "" in the ioctl and JSON, "<top level>"
 * in text (btrfs says <FS_TREE>); a deleting subvolume has no path any more: "<deleted>".
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "tools/share/size.h"
#include "tools/subvol/parts.h"

#define SHOW_KEY "\t%-22s"

const char *sv_uuid_format(const uint8_t uuid[16], char buf[SV_UUID_STR])
{
	static const uint8_t zero[16];
	char *p = buf;

	if (!memcmp(uuid, zero, sizeof(zero)))
		return strcpy(buf, "-");
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", uuid[i]);
	}
	return buf;
}

const char *sv_flags_format(const struct cowfs_ioc_subvol_info *info, char buf[SV_FLAGS_STR])
{
	size_t n = 0;

	buf[0] = '\0';
	if (info->flags & COWFS_SUBVOL_RDONLY)
		n += (size_t)snprintf(buf + n, SV_FLAGS_STR - n, "%sro", n ? ", " : "");
	if (info->flags & COWFS_SUBVOL_DEFAULT)
		n += (size_t)snprintf(buf + n, SV_FLAGS_STR - n, "%sdefault", n ? ", " : "");
	if (info->flags & COWFS_SUBVOL_DELETING)
		snprintf(buf + n, SV_FLAGS_STR - n, "%sdeleting, %u%% done", n ? ", " : "",
			 (info->drop_permille > 1000 ? 1000 : info->drop_permille) / 10);
	if (!buf[0])
		strcpy(buf, "-");
	return buf;
}

const char *sv_path_shown(const struct cowfs_ioc_subvol_info *info)
{
	if (info->flags & COWFS_SUBVOL_DELETING && !info->path[0])
		return "<deleted>";
	if (info->id == SV_TOP_LEVEL_ID && !info->path[0])
		return "<top level>";
	return info->path;
}

const char *sv_time_format(int64_t sec, char buf[SV_TIME_STR])
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, SV_TIME_STR, "%Y-%m-%d %H:%M:%S %z", &tm))
		return strcpy(buf, "-");
	return buf;
}

/* ---- list ------------------------------------------------------------------------------- */

#define LIST_COLUMNS "%-8s %-8s %-10s %-20s %10s  %s\n"

void sv_list_header(FILE *f)
{
	fprintf(f, LIST_COLUMNS, "ID", "Parent", "Gen", "Flags", "Exclusive", "Path");
}

void sv_list_line(FILE *f, const struct cowfs_ioc_subvol_info *info,
		  const struct cowfs_ioc_subvol_space *space, bool raw)
{
	char id[SIZE_STR_MAX], parent[SIZE_STR_MAX], gen[SIZE_STR_MAX], excl[SIZE_STR_MAX];
	char flags[SV_FLAGS_STR];

	snprintf(id, sizeof(id), "%" PRIu64, info->id);
	snprintf(parent, sizeof(parent), "%" PRIu64, info->parent);
	snprintf(gen, sizeof(gen), "%" PRIu64, info->generation);
	if (space)
		size_format(space->exclusive, raw, excl);
	else
		strcpy(excl, "-");
	fprintf(f, LIST_COLUMNS, id, parent, gen, sv_flags_format(info, flags), excl,
		sv_path_shown(info));
}

/* ---- JSON pieces ------------------------------------------------------------------------ */

static void json_null(struct out *o, const char *key)
{
	if (out_field_begin(o, key, false)) {
		fputs("null", o->f);
		out_field_end(o);
	}
}

static void json_i64(struct out *o, const char *key, int64_t v)
{
	if (out_field_begin(o, key, false)) {
		fprintf(o->f, "%" PRId64, v);
		out_field_end(o);
	}
}

static void json_uuid(struct out *o, const char *key, const uint8_t uuid[16])
{
	char s[SV_UUID_STR];

	if (!strcmp(sv_uuid_format(uuid, s), "-"))
		json_null(o, key);
	else
		out_str(o, key, s);
}

static void json_flags(struct out *o, const struct cowfs_ioc_subvol_info *info)
{
	out_arr_begin(o, "flags", NULL);
	if (info->flags & COWFS_SUBVOL_RDONLY)
		out_str(o, NULL, "ro");
	if (info->flags & COWFS_SUBVOL_DEFAULT)
		out_str(o, NULL, "default");
	if (info->flags & COWFS_SUBVOL_DELETING)
		out_str(o, NULL, "deleting");
	out_arr_end(o);
}

static void json_exclusive(struct out *o, const struct cowfs_ioc_subvol_space *space)
{
	if (!space) {
		json_null(o, "exclusive");
		json_null(o, "exclusive_data");
		json_null(o, "exclusive_meta");
		return;
	}
	out_u64(o, "exclusive", space->exclusive);
	out_u64(o, "exclusive_data", space->exclusive_data);
	out_u64(o, "exclusive_meta", space->exclusive_meta);
}

static void json_subvol_fields(struct out *o, const struct cowfs_ioc_subvol_info *info,
			       const struct cowfs_ioc_subvol_space *space)
{
	out_u64(o, "id", info->id);
	out_qstr(o, "name", info->name, strlen(info->name));
	out_qstr(o, "path", info->path, strlen(info->path));
	out_u64(o, "parent", info->parent);
	out_u64(o, "dir", info->dir);
	out_u64(o, "source", info->source);
	out_u64(o, "generation", info->generation);
	out_u64(o, "ctransid", info->ctransid);
	json_i64(o, "otime", info->otime_sec);
	out_u64(o, "otime_nsec", info->otime_nsec);
	json_flags(o, info);
	out_bool(o, "read_only", info->flags & COWFS_SUBVOL_RDONLY);
	out_bool(o, "default", info->flags & COWFS_SUBVOL_DEFAULT);
	out_bool(o, "deleting", info->flags & COWFS_SUBVOL_DELETING);
	out_u64(o, "drop_permille", info->drop_permille);
	json_uuid(o, "uuid", info->uuid);
	json_uuid(o, "source_uuid", info->source_uuid);
	json_exclusive(o, space);
}

void sv_json_subvol(struct out *o, const char *key, const struct cowfs_ioc_subvol_info *info,
		    const struct cowfs_ioc_subvol_space *space)
{
	out_obj_begin(o, key, NULL, FRAME_BLOCK);
	json_subvol_fields(o, info, space);
	out_obj_end(o);
}

static void json_refs(struct out *o, const char *key, const struct sv_ref *refs, size_t count)
{
	out_arr_begin(o, key, NULL);
	for (size_t i = 0; i < count; i++) {
		out_obj_begin(o, NULL, NULL, FRAME_LINE);
		out_u64(o, "id", refs[i].id);
		out_qstr(o, "path", refs[i].path, strlen(refs[i].path));
		out_obj_end(o);
	}
	out_arr_end(o);
}

/* ---- show ------------------------------------------------------------------------------- */

static void show_u64(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, SHOW_KEY "%" PRIu64 "\n", key, v);
}

static void show_str(FILE *f, const char *key, const char *s)
{
	fprintf(f, SHOW_KEY "%s\n", key, s);
}

static void show_source(FILE *f, const struct sv_show *s)
{
	if (!s->info->source)
		show_str(f, "Source ID:", "-");
	else
		fprintf(f, SHOW_KEY "%" PRIu64 " (%s)\n", "Source ID:", s->info->source,
			s->source_path ? s->source_path : "no longer there");
}

static void show_space(FILE *f, const struct cowfs_ioc_subvol_space *space, bool raw)
{
	char all[SIZE_STR_MAX], data[SIZE_STR_MAX], meta[SIZE_STR_MAX];

	if (!space) {
		show_str(f, "Exclusive:", "-");
		return;
	}
	fprintf(f, SHOW_KEY "%s (data %s, metadata %s)\n", "Exclusive:",
		size_format(space->exclusive, raw, all), size_format(space->exclusive_data, raw, data),
		size_format(space->exclusive_meta, raw, meta));
}

static void show_snapshots(FILE *f, const struct sv_show *s)
{
	if (!s->snapshot_count) {
		show_str(f, "Snapshot(s):", "-");
		return;
	}
	fprintf(f, "\t%s\n", "Snapshot(s):");
	for (size_t i = 0; i < s->snapshot_count; i++)
		fprintf(f, "\t\t%" PRIu64 "  %s\n", s->snapshots[i].id, s->snapshots[i].path);
}

void sv_show_text(FILE *f, const struct sv_show *s, bool raw)
{
	const struct cowfs_ioc_subvol_info *info = s->info;
	char uuid[SV_UUID_STR], flags[SV_FLAGS_STR], when[SV_TIME_STR];

	fprintf(f, "%s\n", sv_path_shown(info));
	show_str(f, "Name:", info->name[0] ? info->name : "-");
	show_u64(f, "Subvolume ID:", info->id);
	show_u64(f, "Parent ID:", info->parent);
	show_u64(f, "Directory inode:", info->dir);
	show_source(f, s);
	show_str(f, "UUID:", sv_uuid_format(info->uuid, uuid));
	show_str(f, "Source UUID:", sv_uuid_format(info->source_uuid, uuid));
	show_u64(f, "Generation:", info->generation);
	show_u64(f, "Gen at creation:", info->ctransid);
	show_str(f, "Creation time:", sv_time_format(info->otime_sec, when));
	show_str(f, "Flags:", sv_flags_format(info, flags));
	show_space(f, s->space, raw);
	show_snapshots(f, s);
}

void sv_show_json(struct out *o, const struct sv_show *s)
{
	out_obj_begin(o, NULL, NULL, FRAME_BLOCK);
	json_subvol_fields(o, s->info, s->space);
	if (s->source_path)
		out_qstr(o, "source_path", s->source_path, strlen(s->source_path));
	else
		json_null(o, "source_path");
	json_refs(o, "snapshots", s->snapshots, s->snapshot_count);
	out_obj_end(o);
}

/* ---- space ------------------------------------------------------------------------------ */

void sv_space_text(FILE *f, const struct sv_space_report *r, bool raw)
{
	const struct cowfs_ioc_subvol_space *sp = r->space;
	char b[SIZE_STR_MAX];

	for (size_t i = 0; i < r->count; i++)
		fprintf(f, "%-22s%" PRIu64 "  %s\n", i ? "" : "Subvolume(s):", r->subvols[i].id,
			r->subvols[i].path);
	fprintf(f, "%-22s%s\n", "Exclusive:", size_format(sp->exclusive, raw, b));
	fprintf(f, "%-22s%s\n", "  data:", size_format(sp->exclusive_data, raw, b));
	fprintf(f, "%-22s%s\n", "  metadata:", size_format(sp->exclusive_meta, raw, b));
	if (r->referenced)
		fprintf(f, "%-22s%s\n", "Referenced:", size_format(sp->referenced, raw, b));
	fprintf(f, "%-22s%s\n", r->count > 1 ? "Freed if all deleted:" : "Freed if deleted:",
		size_format(sp->exclusive, raw, b));
}

void sv_space_json(struct out *o, const struct sv_space_report *r)
{
	out_obj_begin(o, NULL, NULL, FRAME_BLOCK);
	json_refs(o, "subvolumes", r->subvols, r->count);
	json_exclusive(o, r->space);
	if (r->referenced)
		out_u64(o, "referenced", r->space->referenced);
	else
		json_null(o, "referenced");
	out_u64(o, "freed_if_all_deleted", r->space->exclusive);
	out_obj_end(o);
}
