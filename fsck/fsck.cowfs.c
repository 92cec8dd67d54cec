/*
 * fsck.cowfs [-n | -a | -p | -y | --repair] [-f] [-C FD] [-v] [-q] [-V] IMAGE
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
 * The options are fsck(8)'s, so `fsck -t cowfs` and boot-time checks (fsck -a, fsck -p) run it:
 * -n checks only; -a, -p and -y repair what is safe to repair (what --repair fixes; there is
 * nothing to ask about); -f is accepted (every check is a full one); -C FD writes progress
 * lines "PASS DONE TOTAL IMAGE" to descriptor FD (0: standard output), as e2fsck does.
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
#include <unistd.h>

#include "fs/inode/namespace_check.h"
#include "fs/lib/endian.h"
#include "fs/super/fsck.h"
#include "fs/super/fs.h"
#include "fs/super/super.h"
#include "tools/version.h"

#define FSCK_OK 0
#define FSCK_CORRECTED 1
#define FSCK_UNCORRECTED 4
#define FSCK_OPERATIONAL 8
#define FSCK_USAGE 16

struct fsck {
	const char *image;
	bool verbose, quiet, repair;
	char mode;              /* the -n/-a/-p/-y/--repair given, to refuse two that disagree */
	FILE *progress_out;     /* -C FD: e2fsck's machine-readable progress lines, or NULL */
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

/* Pass 4, after the reference checker's three: the namespace of every fs tree. */
#define PASS_NAMESPACE (REF_CHECK_PASS_CSUMS + 1)

/* e2fsck -C's line, which fsck(8) reads: "pass done total device". */
static void progress_line(struct fsck *f, unsigned pass, uint64_t done, uint64_t total)
{
	if (!f->progress_out)
		return;
	fprintf(f->progress_out, "%u %" PRIu64 " %" PRIu64 " %s\n", pass, done, total, f->image);
	fflush(f->progress_out);
}

/*
 * Every report to -C's descriptor; and for a person, a line on stderr once the check has run
 * for two seconds, then every second.
 */
static void on_progress(void *arg, const struct ref_check_progress *p)
{
	struct fsck *f = arg;
	double t = now();

	progress_line(f, p->pass, p->done, p->total);
	if (f->quiet || t - f->start < 2 || t - f->last_progress < 1)
		return;
	f->last_progress = t;
	fprintf(stderr, "\rfsck.cowfs: %" PRIu64 " nodes checked (%.0f s)", p->nodes,
		t - f->start);
}

/* "1 problem", "2 problems" */
static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: fsck.cowfs [-n | -a | -p | -y | --repair] [-f] [-C FD] [-v] [-q] IMAGE\n"
		     "  -n             check only, change nothing (the default)\n"
		     "  -a, -p, -y, --repair\n"
		     "                 fix what is safe to fix: reference counts, backrefs and\n"
		     "                 leaked space\n"
		     "  -f             force a full check (accepted: every check is a full one)\n"
		     "  -C FD          progress lines \"PASS DONE TOTAL IMAGE\" to descriptor FD\n"
		     "                 (0: standard output)\n"
		     "  -v, --verbose  list every problem\n"
		     "  -q, --quiet    print nothing but problems\n"
		     "  -V, --version  print the version\n"
		     "Exit status: 0 clean, 1 corrected, 4 left uncorrected, 8 operational error,\n"
		     "16 usage error.\n");
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
	progress_line(f, PASS_NAMESPACE, 0, 1);
	r = inode_check_all(fs, &ns);
	progress_line(f, PASS_NAMESPACE, 1, 1);
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
		printf("%s: %" PRIu64 " %s corrected\n", f->image, fixed,
		       plural(fixed, "problem", "problems"));
	summary(f, st, "clean");
	return FSCK_CORRECTED;
}

/* -C FD: 0 means standard output, as for e2fsck; any other descriptor must be open. */
static int open_progress(struct fsck *f, const char *arg)
{
	char *end;
	long fd = strtol(arg, &end, 10);

	if (!*arg || *end || fd < 0 || fd > INT32_MAX) {
		fprintf(stderr, "fsck.cowfs: -C wants a file descriptor, not '%s'\n", arg);
		return FSCK_USAGE;
	}
	if (fd == 0 || fd == STDOUT_FILENO) {
		f->progress_out = stdout;
		return 0;
	}
	f->progress_out = fdopen((int)fd, "w");
	if (!f->progress_out) {
		fprintf(stderr, "fsck.cowfs: -C %ld: %s\n", fd, strerror(errno));
		return FSCK_USAGE;
	}
	return 0;
}

/* -n against -a/-p/-y/--repair: e2fsck refuses both at once rather than pick one. */
static int set_mode(struct fsck *f, int opt)
{
	bool repair = opt != 'n';

	if (f->mode && f->repair != repair) {
		fprintf(stderr, "fsck.cowfs: -%c and -%c: only one of -n or -a/-p/-y/--repair\n",
			f->mode, opt == 'r' ? 'a' : opt);
		return FSCK_USAGE;
	}
	f->mode = (char)(opt == 'r' ? 'a' : opt);
	f->repair = repair;
	return 0;
}

/* Fill f from the command line: 0, FSCK_USAGE, or -1 when --help or --version printed. */
static int parse_args(struct fsck *f, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "verbose", no_argument, NULL, 'v' }, { "quiet", no_argument, NULL, 'q' },
		{ "repair", no_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	int opt, ret = 0;

	while (ret == 0 && (opt = getopt_long(argc, argv, "vqnaypfC:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'v': f->verbose = true; break;
		case 'q': f->quiet = true; break;
		case 'n': case 'a': case 'y': case 'p': case 'r': ret = set_mode(f, opt); break;
		case 'f': break;
		case 'C': ret = open_progress(f, optarg); break;
		case 'V': return print_version("fsck.cowfs") ? FSCK_OPERATIONAL : -1;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return FSCK_USAGE;
		}
	}
	if (ret == 0 && optind != argc - 1) {
		usage(stderr);
		ret = FSCK_USAGE;
	}
	return ret;
}

int main(int argc, char **argv)
{
	struct fsck f = { 0 };
	struct cowfs_check_stats st;
	struct cowfs *fs;
	int status, ret;

	status = parse_args(&f, argc, argv);
	if (status)
		return status < 0 ? FSCK_OK : status;
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
			snprintf(verdict, sizeof(verdict), "%" PRIu64 " %s", st.problems,
				 plural(st.problems, "problem", "problems"));
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
