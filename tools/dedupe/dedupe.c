/*
 * cowfs dedupe [-r] [--dry-run] [--json] [--chunk SIZE] [--memory SIZE] PATH...
 *
 * Finds the chunks that files on a cowfs mount hold twice and makes them share one copy through
 * COWFS_IOC_DEDUPE_RANGE (docs/DEDUPE.md). The driver: walk the PATHs (walk.c); per pass, record
 * the chunks whose fingerprints (COWFS_IOC_CHUNK_HASHES) fall in the pass (scan.c), turn the records into dedupes (plan.c) and
 * issue them (issue.c); measure the space before and after; report (report.c).
 *
 * Exit status: 0 done (destinations that changed since hashed are counted, not failures);
 * 1 a dedupe or the scan failed, or PATH is not on a cowfs mount; 2 usage error.
 */
#include "tools/dedupe/dedupe.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/dedupe/parts.h"
#include "tools/share/cli.h"
#include "tools/share/size.h"

static void dedupe_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " dedupe [-r] [--dry-run] [--json] [--chunk SIZE] [--memory SIZE] PATH...\n"
		"Find chunks that files on a cowfs mount hold more than once and make them share one\n"
		"copy. Candidates are chunk-aligned chunks with equal fingerprints, which the mount\n"
		"computes from the checksums it stores (no data is read); the filesystem compares the\n"
		"bytes before sharing anything, so a file written meanwhile keeps its new content.\n"
		"\n"
		"  -r, --recursive   scan directories recursively (else a directory is an error)\n"
		"  -n, --dry-run     find the duplicates and print the dedupes; change nothing\n"
		"      --json        the summary (and a dry run's dedupes) as one JSON object\n"
		"      --chunk SIZE  chunk size, a multiple of the mount's blocksize (default 128K)\n"
		"      --memory SIZE bound on the hash records (default 1G; suffixes K M G T)\n"
		"  -h, --help        show this help\n"
		"\n"
		"Only whole chunks are compared, and a file's last partial chunk with the last partial\n"
		"chunk of the same length of another file; files shorter than a chunk, holes and\n"
		"preallocated ranges are left out, and so are chunks already shared.\n"
		"\n"
		"Memory: 32 bytes per chunk fingerprinted, in one array: 256 MiB per TiB scanned at 128K\n"
		"chunks (2 GiB per TiB at 16K), plus 1/16 of --memory at most for a cache of the disk\n"
		"addresses of shared chunks, plus about 64 bytes and the path per file. When the chunks\n"
		"would not fit in --memory the scan runs in passes, each keeping the fingerprints of\n"
		"one range of their values: N passes ask for the fingerprints N times.\n"
		"\n"
		"Reported: bytes_deduped (now shared) and bytes_freed (the mount's free space after\n"
		"minus before, both after a commit): an extent is freed only when no file references\n"
		"any part of it any more. data_bytes_freed is the same for file data alone.\n"
		"\n"
		"Exit status: 0 done, 1 failure or not a cowfs mount, 2 usage.\n");
}

enum { OPT_JSON = 256, OPT_CHUNK, OPT_MEMORY };

/* 0 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct dd_options *opt)
{
	static const struct option longopts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(opt, 0, sizeof(*opt));
	opt->chunk = DD_DEFAULT_CHUNK;
	opt->memory = DD_DEFAULT_MEMORY;
	opt->pause_fifo = getenv("COWFS_DEDUPE_TEST_PAUSE");
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":rnh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': opt->recursive = true; break;
		case 'n': opt->dry_run = true; break;
		case OPT_JSON: opt->json = true; break;
		case OPT_CHUNK:
			if (size_parse(optarg, &opt->chunk) < 0 || opt->chunk == 0 ||
			    opt->chunk > COWFS_DEDUPE_MAX_LEN) {
				fprintf(stderr, DD_PROG ": --chunk %s: a size from one block to 16M\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_MEMORY:
			if (size_parse(optarg, &opt->memory) < 0 || opt->memory < DD_MIN_MEMORY) {
				fprintf(stderr, DD_PROG ": --memory %s: a size of at least 16K\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			dedupe_usage(stdout);
			return finish_output(stdout) == EXIT_OK ? -1 : EXIT_FAIL;
		default:
			return cli_option_error(argv, c, dedupe_usage);
		}
	}
	if (optind >= argc) {
		dedupe_usage(stderr);
		return EXIT_USAGE;
	}
	return 0;
}

/* The blocksize the first file reports bounds the chunk size (the ioctl's alignment). */
static int check_chunk(const struct dd_options *opt, const struct dd_files *files)
{
	struct cowfs_file f;
	int ret;

	if (files->n == 0)
		return EXIT_OK;
	ret = cowfs_file_open(AT_FDCWD, files->v[0].path, O_RDONLY, 0, &f);
	if (ret < 0) {
		cowfs_perror("dedupe", files->v[0].path, ret);
		return EXIT_FAIL;
	}
	cowfs_file_close(&f);
	if (opt->chunk % f.id.blocksize) {
		fprintf(stderr, DD_PROG ": --chunk %" PRIu64 ": not a multiple of the blocksize %u\n",
			opt->chunk, f.id.blocksize);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* COWFS_DEDUPE_TEST_PAUSE=FIFO: after hashing, wait until a writer opened FIFO and closed it. */
static void test_pause(const char *fifo)
{
	char buf[64];
	int fd;

	if (!fifo || !*fifo)
		return;
	fd = open(fifo, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, DD_PROG ": COWFS_DEDUPE_TEST_PAUSE %s: %s\n", fifo, strerror(errno));
		return;
	}
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

struct run {
	const struct dd_options *opt;
	struct dd_files *files;
	struct dd_stats *st;
	struct dd_progress *pg;
	struct out *o;
	union dd_slot *slots;
	size_t cap;
	struct dd_addr_cache *cache;
	struct dd_scanner *sc;
};

static int run_pass(struct run *r, uint32_t index, uint32_t count)
{
	struct dd_pass pass = { .index = index, .count = count, .slots = r->slots, .cap = r->cap,
				.cache = r->cache };
	size_t ops;
	int ret;

	ret = dd_scan_pass(r->sc, &pass);
	if (ret == -E2BIG) {
		fprintf(stderr, DD_PROG ": pass %u of %u holds more than the %zu chunk records "
			"--memory allows (many identical chunks?): raise --memory\n",
			index + 1, count, r->cap);
		return ret;
	}
	if (ret < 0)
		return ret;
	if (pass.n > r->st->records_peak)
		r->st->records_peak = pass.n;
	ops = dd_plan(pass.slots, pass.n, r->opt->chunk, r->files, index == 0);
	test_pause(r->opt->pause_fifo);
	return dd_issue(r->opt, r->files, pass.slots, ops, r->st, r->pg, r->o);
}

/* Chunk records and address cache within --memory; passes when the records would not fit. */
static int run_passes(struct run *r)
{
	uint64_t cache_bytes = r->opt->memory / 16;
	uint64_t cap = (r->opt->memory - cache_bytes) / DD_SLOT_BYTES;
	uint64_t chunks = dd_chunks_upper_bound(r->files, r->opt->chunk);
	uint64_t passes = chunks ? (chunks + cap - 1) / cap : 1;
	int ret = 0;

	if (passes > UINT32_MAX)
		return -E2BIG;
	r->cap = chunks < cap ? chunks : cap;
	r->slots = malloc((r->cap ? r->cap : 1) * DD_SLOT_BYTES);
	r->cache = dd_addr_cache_new(cache_bytes, chunks);
	r->sc = dd_scanner_new(r->opt, r->files, r->st, r->pg);
	if (!r->slots || !r->cache || !r->sc)
		ret = -ENOMEM;
	r->st->passes = passes;
	for (uint32_t p = 0; ret == 0 && p < passes; p++)
		ret = run_pass(r, p, (uint32_t)passes);
	free(r->slots);
	dd_addr_cache_free(r->cache);
	dd_scanner_free(r->sc);
	return ret;
}

/* The run on the files found, between the two measurements; the exit status. */
static int dedupe_files(const struct dd_options *opt, struct dd_files *files,
			const struct dd_space_probe *probe, struct dd_stats *st)
{
	struct out o;
	struct run r = { .opt = opt, .files = files, .st = st, .o = &o,
			 .pg = dd_progress_new(isatty(STDERR_FILENO)) };
	int ret, rc;

	st->skipped_other_mount = files->skipped_other_mount;
	st->skipped_small = files->skipped_small;
	st->skipped_special = files->skipped_special;
	dd_measure(probe, &st->before);
	out_init(&o, stdout, opt->json);
	out_obj_begin(&o, NULL, NULL, FRAME_BLOCK);
	if (opt->dry_run)
		out_arr_begin(&o, "plan", NULL);
	ret = run_passes(&r);
	if (opt->dry_run)
		out_arr_end(&o);
	dd_progress_end(r.pg);
	if (ret < 0 && ret != -E2BIG)
		fprintf(stderr, DD_PROG ": %s\n", cowfs_strerror(ret));
	dd_measure(probe, &st->after);
	dd_report(&o, opt, st);
	out_obj_end(&o);
	if (opt->json)
		fputc('\n', stdout);
	rc = finish_output(stdout);
	if (rc == EXIT_OK && (ret < 0 || st->errors))
		rc = EXIT_FAIL;
	return rc;
}

static int dedupe_paths(const struct dd_options *opt, char **paths, int npaths)
{
	struct dd_space_probe probe;
	struct dd_files files;
	struct dd_stats st;
	int ret, rc;

	memset(&st, 0, sizeof(st));
	ret = dd_probe_open(&probe, paths, npaths);
	if (ret < 0) {
		cowfs_perror("dedupe", paths[0], ret);
		dd_probe_close(&probe);
		return EXIT_FAIL;
	}
	ret = dd_walk(&files, paths, npaths, opt->recursive, opt->chunk);
	rc = ret == -EISDIR ? EXIT_USAGE : ret < 0 ? EXIT_FAIL : check_chunk(opt, &files);
	if (rc == EXIT_OK) {
		dd_probe_paths(&probe, paths, npaths, files.dev);
		rc = dedupe_files(opt, &files, &probe, &st);
	}
	dd_files_free(&files);
	dd_probe_close(&probe);
	return rc;
}

int cmd_dedupe(int argc, char **argv)
{
	struct dd_options opt;
	int rc = parse_options(argc, argv, &opt);

	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	return dedupe_paths(&opt, argv + optind, argc - optind);
}
