/*
 * The parts of `cowfs dedupe` (docs/DEDUPE.md says what it does and why):
 *
 *   walk.c    the PATHs to a table of regular files, each inode once, all on the first's mount
 *   space.c   the space figures around the run (statvfs and COWFS_IOC_SPACE after a SYNC)
 *   scan.c    each file's chunks' fingerprints (COWFS_IOC_CHUNK_HASHES), holes and
 *             preallocated ranges and chunks already sharing one seen before left out
 *   sort.c    an in-place sort of the 32-byte slots (no second copy of the records)
 *   plan.c    duplicate groups, the source of each, runs merged into long dedupes
 *   issue.c   the dedupes through COWFS_IOC_DEDUPE_RANGE, statuses counted
 *   report.c  progress on a terminal, the summary as text or JSON
 *   dedupe.c  options and the driver: walk, then per pass scan, plan and issue, then report
 *
 * The cowfs ioctls go through tools/share/mount_ioctl.h (cowfs_file_open, cowfs_ioctl).
 *
 * Memory is one array of 32-byte slots, one per chunk recorded: first the chunk records, then in
 * the same place the dedupe pairs and the merged dedupes the plan makes of them.
 */
#ifndef COWFS_TOOLS_DEDUPE_PARTS_H
#define COWFS_TOOLS_DEDUPE_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuse/cowfs_ioctl.h"
#include "tools/dump/out.h"
#include "tools/prog.h"
#include "tools/share/mount_ioctl.h"

/* How the messages of this command start: "cowfs dedupe: ...". */
#define DD_PROG PROG " dedupe"

#define DD_DEFAULT_CHUNK  (128u << 10)
#define DD_DEFAULT_MEMORY (1ull << 30)
#define DD_MIN_MEMORY     (16u << 10)

struct dd_options {
	bool recursive, dry_run, json;
	uint64_t chunk;          /* bytes; a multiple of the mount's blocksize */
	uint64_t memory;         /* the bound on the chunk records and the address cache */
	const char *pause_fifo;  /* COWFS_DEDUPE_TEST_PAUSE: wait on it after hashing */
};

/*
 * A file to scan; `id` and `scanned` are filled in by the scan (COWFS_IOC_FILE_ID), `unique`
 * by the plan of the first pass (its rank as a source: plan.c).
 */
struct dd_file {
	char *path;
	uint64_t ino;            /* st_ino: each inode once */
	uint64_t size;           /* at the scan */
	struct cowfs_ioc_file id;
	bool scanned;
	uint64_t unique;         /* chunks hashed that matched no other chunk */
};

struct dd_files {
	struct dd_file *v;
	size_t n, cap;
	uint64_t dev;            /* st_dev of the first PATH: the mount */
	uint64_t skipped_other_mount, skipped_small, skipped_special;
};

/*
 * One hashed chunk. CHUNK_SHARED: its disk extent was already shared when it was scanned.
 * CHUNK_DROPPED: its file changed under the scan; taken out when the pass's scan ends.
 */
#define CHUNK_SHARED  0x1u
#define CHUNK_DROPPED 0x2u
struct chunk_rec {
	uint64_t hash[2];        /* the server's fingerprint: hash_lo, hash_hi */
	uint32_t file;           /* index in struct dd_files */
	uint32_t chunk;          /* offset / chunk size */
	uint32_t unused;
	uint16_t refs;           /* chunks seen at this disk address, itself included */
	uint16_t flags;
};

/* A planned dedupe: nchunks chunks of dst_file from dst_chunk on get src_file's from src_chunk. */
struct chunk_pair {
	uint32_t src_file, src_chunk;
	uint32_t dst_file, dst_chunk;
	uint32_t nchunks;
	uint32_t unused[3];
};

union dd_slot {
	struct chunk_rec rec;
	struct chunk_pair pair;
};
_Static_assert(sizeof(union dd_slot) == 32, "the memory figure in --help says 32 bytes a chunk");
#define DD_SLOT_BYTES 32u

/* A pass keeps the chunks whose hash falls in its share of the hash space. */
struct dd_pass {
	uint32_t index, count;
	union dd_slot *slots;
	size_t n, cap;
	struct dd_addr_cache *cache;
};

/* The space measured before or after the run (space.c), each part when it could be. */
struct dd_space {
	bool free_known, space_known;
	uint64_t free_bytes;             /* the mount's, statvfs */
	struct cowfs_ioc_space space;    /* the PATHs' as one set */
};

/* What the run found and did (all bytes). */
struct dd_stats {
	uint64_t files_scanned, files_changed;
	uint64_t skipped_other_mount, skipped_small, skipped_special;   /* by the walk */
	uint64_t bytes_scanned;      /* sizes of the files scanned (each pass counts once) */
	uint64_t bytes_hashed;       /* chunks recorded (fingerprinted, not already shared) */
	uint64_t bytes_holes;        /* chunks left out: holes or preallocated */
	uint64_t bytes_already_shared;
	uint64_t bytes_duplicate;    /* destinations planned */
	uint64_t dedupes_planned, ioctls;
	uint64_t bytes_deduped;      /* status SAME */
	uint64_t bytes_differ;       /* status DIFFERS: changed since hashed */
	uint64_t bytes_error, errors;
	uint64_t passes, records_peak;
	struct dd_space before, after;
};

struct dd_progress;

/* walk.c */
int dd_walk(struct dd_files *files, char **paths, int n, bool recursive, uint64_t min_size);
void dd_files_free(struct dd_files *files);

/* space.c: the mount is paths[0]'s (opened with cowfs_file_open: it must be a cowfs mount). */
struct dd_space_probe {
	struct cowfs_file mnt;
	char **paths;                /* the PATHs on that mount */
	int npaths;
};
int dd_probe_open(struct dd_space_probe *p, char **paths, int n);
void dd_probe_paths(struct dd_space_probe *p, char **paths, int n, uint64_t dev);
void dd_probe_close(struct dd_space_probe *p);
void dd_measure(const struct dd_space_probe *p, struct dd_space *out);

/* scan.c */
struct dd_addr_cache *dd_addr_cache_new(uint64_t bytes, uint64_t chunks);
void dd_addr_cache_free(struct dd_addr_cache *c);
struct dd_scanner;
struct dd_scanner *dd_scanner_new(const struct dd_options *opt, struct dd_files *files,
				  struct dd_stats *st, struct dd_progress *pg);
void dd_scanner_free(struct dd_scanner *sc);
/*
 * Record every file's chunks whose fingerprints fall in the pass (files that change under the scan
 * are skipped and counted). -E2BIG: the pass is full (the --memory bound).
 */
int dd_scan_pass(struct dd_scanner *sc, struct dd_pass *pass);
uint64_t dd_chunks_upper_bound(const struct dd_files *files, uint64_t chunk);

/* sort.c */
typedef int (*dd_slot_cmp)(const union dd_slot *a, const union dd_slot *b);
void dd_sort(union dd_slot *v, size_t n, dd_slot_cmp cmp);

/*
 * plan.c: records to merged dedupes, in place; returns how many slots now hold dedupes. With
 * `rank` (the first pass) the files' `unique` counts are taken from these records first.
 */
size_t dd_plan(union dd_slot *v, size_t n, uint64_t chunk, struct dd_files *files, bool rank);
uint64_t dd_pair_length(const struct chunk_pair *p, const struct dd_files *files, uint64_t chunk);

/* issue.c */
int dd_issue(const struct dd_options *opt, struct dd_files *files, union dd_slot *ops, size_t n,
	     struct dd_stats *st, struct dd_progress *pg, struct out *o);

/* report.c */
struct dd_progress *dd_progress_new(bool on);
void dd_progress_scan(struct dd_progress *pg, const struct dd_pass *pass, uint64_t files_done,
		      uint64_t files, uint64_t bytes);
void dd_progress_issue(struct dd_progress *pg, uint64_t done, uint64_t total);
void dd_progress_end(struct dd_progress *pg);
void dd_report(struct out *o, const struct dd_options *opt, const struct dd_stats *st);

#endif
