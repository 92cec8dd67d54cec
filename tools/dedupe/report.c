/*
 * What `cowfs dedupe` shows: a status line on a terminal while it runs (stderr, redrawn with
 * \r at most every PROGRESS_NS; nothing when stderr is not a terminal), and at the end the
 * summary, as `key value` lines or one JSON object (tools/dump/out.h).
 */
#include "tools/dedupe/parts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PROGRESS_NS 200000000ll

struct dd_progress {
	bool on, drawn;
	int64_t last_ns;
};

struct dd_progress *dd_progress_new(bool on)
{
	struct dd_progress *pg = calloc(1, sizeof(*pg));

	if (pg)
		pg->on = on;
	return pg;
}

static bool progress_due(struct dd_progress *pg)
{
	struct timespec ts;
	int64_t now;

	if (!pg || !pg->on)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
	if (pg->drawn && now - pg->last_ns < PROGRESS_NS)
		return false;
	pg->last_ns = now;
	pg->drawn = true;
	return true;
}

void dd_progress_scan(struct dd_progress *pg, const struct dd_pass *pass, uint64_t files_done,
		      uint64_t files, uint64_t bytes)
{
	if (!progress_due(pg))
		return;
	fprintf(stderr, "\r\033[Kpass %u/%u: hashing, %" PRIu64 "/%" PRIu64 " files, %.1f MiB",
		pass->index + 1, pass->count, files_done, files, bytes / 1048576.0);
	fflush(stderr);
}

void dd_progress_issue(struct dd_progress *pg, uint64_t done, uint64_t total)
{
	if (!progress_due(pg))
		return;
	fprintf(stderr, "\r\033[Kdeduping: %" PRIu64 "/%" PRIu64 " ranges", done, total);
	fflush(stderr);
}

void dd_progress_end(struct dd_progress *pg)
{
	if (pg && pg->drawn) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	free(pg);
}

/* A signed figure, or null (JSON) / unknown (text) when it could not be measured. */
static void out_s64_or_unknown(struct out *o, const char *key, bool known, int64_t v)
{
	if (!out_field_begin(o, key, false))
		return;
	if (known)
		fprintf(o->f, "%" PRId64, v);
	else
		fputs(o->json ? "null" : "unknown", o->f);
	out_field_end(o);
}

static void report_space(struct out *o, const char *key, const struct cowfs_ioc_space *sp)
{
	out_obj_begin(o, key, key, FRAME_LINE);
	out_u64(o, "referenced", sp->referenced);
	out_u64(o, "exclusive", sp->exclusive);
	out_u64(o, "shared", sp->shared);
	out_u64(o, "pinned", sp->pinned);
	out_obj_end(o);
}

/* Fields of the object the caller opened (dedupe.c: it may hold the dry run's dedupes). */
void dd_report(struct out *o, const struct dd_options *opt, const struct dd_stats *st)
{
	out_bool(o, "dry_run", opt->dry_run);
	out_u64(o, "chunk_size", opt->chunk);
	out_u64(o, "memory_limit", opt->memory);
	out_u64(o, "passes", st->passes);
	out_u64(o, "record_bytes_peak", st->records_peak * DD_SLOT_BYTES);
	out_u64(o, "files_scanned", st->files_scanned);
	out_u64(o, "files_changed", st->files_changed);
	out_u64(o, "skipped_small", st->skipped_small);
	out_u64(o, "skipped_mount", st->skipped_other_mount);
	out_u64(o, "skipped_special", st->skipped_special);
	out_u64(o, "bytes_scanned", st->bytes_scanned);
	out_u64(o, "bytes_hashed", st->bytes_hashed);
	out_u64(o, "bytes_holes", st->bytes_holes);
	out_u64(o, "already_shared", st->bytes_already_shared);
	out_u64(o, "bytes_duplicate", st->bytes_duplicate);
	out_u64(o, "dedupes", st->dedupes_planned);
	out_u64(o, "ioctls", st->ioctls);
	out_u64(o, "bytes_deduped", st->bytes_deduped);
	out_u64(o, "bytes_differ", st->bytes_differ);
	out_u64(o, "bytes_error", st->bytes_error);
	out_u64(o, "errors", st->errors);
	bool free_known = st->before.free_known && st->after.free_known;
	bool space_known = st->before.space_known && st->after.space_known;
	out_s64_or_unknown(o, "bytes_freed", free_known,
			   (int64_t)(st->after.free_bytes - st->before.free_bytes));
	out_s64_or_unknown(o, "data_bytes_freed", space_known,
			   (int64_t)(st->before.space.exclusive - st->after.space.exclusive));
	if (space_known) {
		report_space(o, "space_before", &st->before.space);
		report_space(o, "space_after", &st->after.space);
	}
}
