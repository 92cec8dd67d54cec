/*
 * fsck.cowfs [-v] [-q] [--repair] IMAGE
 *
 * Checks a cowfs image: every superblock copy; every node reachable from the root tree and
 * every tree it names (checksum, UUID, address, generation, owner, level, structure); and
 * every extent's reference count and backrefs, recomputed exactly from all trees and compared
 * with the extent tree (see fs/super/fsck.h); then the namespace of every fs tree: inode items,
 * directory entries, inode refs, link counts (see fs/inode/namespace_check.h). Read-only
 * unless --repair, which fixes wrong counts, missing or extra backrefs, leaked extents and
 * referenced extents with no item, by committing the corrections as one transaction; namespace
 * problems it cannot fix yet, and with any of them it writes nothing. It refuses an image that
 * is in use (mounted: the image is locked while mounted).
 *
 * Exit status as fsck(8): 0 clean, 1 errors corrected, 4 errors left uncorrected,
 * 8 operational error (cannot open, not a cowfs image, usage), 16 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/inode/namespace_check.h"
#include "fs/lib/endian.h"
#include "fs/super/fsck.h"
#include "fs/super/fs.h"
#include "fs/super/super.h"

#define FSCK_OK 0
#define FSCK_CORRECTED 1
#define FSCK_UNCORRECTED 4
#define FSCK_OPERATIONAL 8
#define FSCK_USAGE 16

struct fsck {
	const char *image;
	bool verbose, quiet, repair;
	uint64_t reported;
	uint64_t inodes;        /* the namespace check's count, for the summary */
	double start, last_progress;
	uint64_t last_bytenr;   /* the previous message, to say a thing once */
	char last_msg[128];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_problem(void *arg, uint64_t bytenr, const char *msg)
{
	struct fsck *f = arg;

	/* Opening notes a bad superblock copy and the copy check finds it again: say it once. */
	if (bytenr == f->last_bytenr && strncmp(msg, f->last_msg, sizeof(f->last_msg) - 1) == 0)
		return;
	f->last_bytenr = bytenr;
	snprintf(f->last_msg, sizeof(f->last_msg), "%s", msg);
	f->reported++;
	if (f->verbose || f->reported <= 10)
		fprintf(stderr, "fsck.cowfs: %s: block %" PRIu64 ": %s\n", f->image, bytenr, msg);
	else if (f->reported == 11)
		fprintf(stderr, "fsck.cowfs: more problems follow (-v lists them all)\n");
}

/* A progress line on stderr once the check has run for two seconds, then every second. */
static void on_progress(void *arg, uint64_t nodes)
{
	struct fsck *f = arg;
	double t = now();

	if (f->quiet || t - f->start < 2 || t - f->last_progress < 1)
		return;
	f->last_progress = t;
	fprintf(stderr, "\rfsck.cowfs: %" PRIu64 " nodes checked (%.0f s)", nodes, t - f->start);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: fsck.cowfs [-v] [-q] [--repair] IMAGE\n"
		     "  -v, --verbose  list every problem\n"
		     "  -q, --quiet    print nothing but problems\n"
		     "  --repair       fix reference counts, backrefs and leaked space\n"
		     "  -n             check only (the default)\n");
}

static int open_image(struct fsck *f, struct cowfs **fs)
{
	struct cowfs_opts o = { .read_only = !f->repair, .report = on_problem, .report_arg = f,
				.lock_wait_ms = COWFS_LOCK_WAIT_MS };
	int ret = cowfs_open(f->image, &o, fs);

	if (ret == 0) {
		if ((*fs)->log.replay_pending && !f->quiet)
			printf("%s: fsync log: %" PRIu64 " entries (%" PRIu64 " bytes) written after the "
			       "last commit, applied at the next read-write mount\n", f->image,
			       (*fs)->log.pending_entries, (*fs)->log.pending_bytes);
		return 0;
	}
	if (ret == -EAGAIN)
		fprintf(stderr, "fsck.cowfs: %s has changes in its fsync log: mount it read-write "
			"once (that applies them), then repair\n", f->image);
	else if (ret == -EBUSY)
		fprintf(stderr, "fsck.cowfs: %s is in use (mounted?): refusing to %s it\n", f->image,
			f->repair ? "repair" : "check");
	else if (ret == -EINVAL)
		fprintf(stderr, "fsck.cowfs: %s: not a cowfs image\n", f->image);
	else if (ret == -EUCLEAN)
		fprintf(stderr, "fsck.cowfs: %s: damaged beyond opening (see above)\n", f->image);
	else
		fprintf(stderr, "fsck.cowfs: %s: %s\n", f->image, strerror(-ret));
	return ret == -EUCLEAN ? FSCK_UNCORRECTED : FSCK_OPERATIONAL;
}

/* Every copy that fits must be valid and at the committed generation. Returns the bad ones. */
static uint64_t check_super_copies(struct fsck *f, struct cowfs *fs)
{
	uint64_t total = get_le64(&fs->sb.total_bytes), bad = 0;
	struct cowfs_super *sb = aligned_alloc(4096, sizeof(*sb));

	for (int i = 0; sb && i < COWFS_SUPER_MIRRORS && super_copy_fits(i, total); i++) {
		const char *msg = NULL;
		if (bdev_read(fs->bd, cowfs_super_offsets[i], sb, sizeof(*sb)) < 0)
			msg = "superblock copy unreadable";
		else if (!(msg = super_check(sb, cowfs_super_offsets[i], bdev_size(fs->bd))) &&
			 get_le64(&sb->generation) != cowfs_generation(fs))
			msg = "superblock copy is stale (older generation)";
		if (msg) {
			on_problem(f, cowfs_super_offsets[i], msg);
			bad++;
		}
	}
	free(sb);
	return bad;
}

static void summary(struct fsck *f, const struct cowfs_check_stats *st, const char *verdict)
{
	if (f->quiet)
		return;
	if (f->start && now() - f->start >= 2)
		fputc('\n', stderr);
	printf("%s: %" PRIu64 " trees, %" PRIu64 " tree blocks, %" PRIu64 " data extents, "
	       "%" PRIu64 " extent items, %" PRIu64 " bytes used, %" PRIu64 " inodes: %s\n",
	       f->image, st->trees, st->tree_blocks, st->data_extents, st->extent_items,
	       st->bytes_used, f->inodes, verdict);
}

/*
 * After the block and reference check (its result `ret`): the namespace of every fs tree.
 * Its problems join st's, all unfixable for now, so --repair writes nothing when there are any.
 */
static int check_namespace(struct fsck *f, struct cowfs *fs, struct cowfs_check_stats *st,
			   int ret)
{
	struct inode_check_stats ns;
	int r;

	if (ret < 0 && ret != -EUCLEAN)
		return ret;
	r = inode_check_all(fs, &ns);
	f->inodes = ns.inodes;
	if (r < 0 && r != -EUCLEAN)
		return r;
	st->problems += ns.problems;
	st->unfixable += ns.problems;
	return r == -EUCLEAN ? r : ret;
}

static int repair(struct fsck *f, struct cowfs *fs, struct cowfs_check_stats *st,
		  uint64_t bad_copies)
{
	int ret = cowfs_check_repair(fs, st, on_progress, f);

	ret = check_namespace(f, fs, st, ret);
	if (ret == 0 && bad_copies)
		ret = -EUCLEAN;   /* the commit below rewrites every copy */
	st->problems += bad_copies;
	if (ret == 0) {
		summary(f, st, "clean");
		return FSCK_OK;
	}
	if (ret != -EUCLEAN) {
		fprintf(stderr, "fsck.cowfs: %s: check failed: %s\n", f->image, strerror(-ret));
		return FSCK_OPERATIONAL;
	}
	if (st->unfixable) {
		/* Corrections computed against damaged trees would make things worse: write nothing. */
		summary(f, st, "errors that --repair cannot fix; nothing written");
		return FSCK_UNCORRECTED;
	}
	ret = cowfs_commit(fs);
	if (ret < 0) {
		fprintf(stderr, "fsck.cowfs: %s: writing repairs failed: %s\n", f->image, strerror(-ret));
		return FSCK_UNCORRECTED;
	}
	uint64_t fixed = st->problems;
	ret = cowfs_check(fs, st, on_progress, f);
	if (ret != 0) {
		summary(f, st, "errors remain after repair");
		return FSCK_UNCORRECTED;
	}
	if (!f->quiet)
		printf("%s: %" PRIu64 " problems corrected\n", f->image, fixed);
	summary(f, st, "clean");
	return FSCK_CORRECTED;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "verbose", no_argument, NULL, 'v' }, { "quiet", no_argument, NULL, 'q' },
		{ "repair", no_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck f = { 0 };
	struct cowfs_check_stats st;
	struct cowfs *fs;
	int opt, status, ret;

	while ((opt = getopt_long(argc, argv, "vqnh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'v': f.verbose = true; break;
		case 'q': f.quiet = true; break;
		case 'n': f.repair = false; break;
		case 'r': f.repair = true; break;
		case 'h': usage(stdout); return FSCK_OK;
		default: usage(stderr); return FSCK_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return FSCK_USAGE;
	}
	f.image = argv[optind];
	status = open_image(&f, &fs);
	if (status)
		return status;
	f.start = now();
	uint64_t bad_copies = check_super_copies(&f, fs);
	if (f.repair) {
		status = repair(&f, fs, &st, bad_copies);
	} else {
		ret = cowfs_check(fs, &st, on_progress, &f);
		ret = check_namespace(&f, fs, &st, ret);
		st.problems += bad_copies;
		if (ret == 0 && bad_copies)
			ret = -EUCLEAN;
		if (ret == 0) {
			summary(&f, &st, "clean");
			status = FSCK_OK;
		} else if (ret == -EUCLEAN) {
			char verdict[64];
			snprintf(verdict, sizeof(verdict), "%" PRIu64 " problems", st.problems);
			summary(&f, &st, verdict);
			status = FSCK_UNCORRECTED;
		} else {
			fprintf(stderr, "fsck.cowfs: %s: check failed: %s\n", f.image, strerror(-ret));
			status = FSCK_OPERATIONAL;
		}
	}
	/* A read-only close writes nothing; after --repair everything is committed already. */
	fs->read_only = true;
	cowfs_close(fs);
	return status;
}
