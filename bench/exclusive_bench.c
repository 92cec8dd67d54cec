/*
 * exclusive_bench: the exclusive space of subvolumes (cowfs_subvol_space, from reference
 * counts) against the brute-force recount over every fs tree (cowfs_subvol_space_recount),
 * timed, with the nodes each reads, on a subvolume of --files small files (one 4 KiB data
 * extent each) written through the inode layer:
 *
 *   alone     subvolume 256 by itself: everything is its own, both read everything
 *   snapshot  right after a snapshot 257 of it: {256}, {257} and {256, 257}
 *   diverged  after --change files of 257 were overwritten and as many deleted: the same sets
 *
 * Each figure is the median of --runs calls under the filesystem lock, with a warm cache (the
 * trees were just written or read), or with --cold, each call after dropping the block cache's
 * clean blocks and the kernel's pages of the image (cowfs_drop_caches): every node read comes
 * from the device, as in the first query after a mount on a rebooted machine. The two answers
 * must agree, or the bench fails (exit 1).
 *
 *   build/bench/exclusive_bench --dir DIR [--files N] [--change K] [--nodesize B] [--runs R]
 *                               [--cache BYTES] [--cold]
 *
 * --cache is the memory bound (cowfs_opts.cache_bytes; half of it caches tree blocks): with
 * the default 256 MiB, the metadata of 1,000,000 files (~650 MB) does not fit, and a count
 * that reads all of it reads most nodes from the device (the page cache, here).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "fs/inode/file.h"
#include "fs/inode/inode.h"
#include "fs/super/fsck.h"
#include "fs/super/subvol.h"

struct bench_opts {
	const char *dir;
	uint64_t files, change;
	uint32_t nodesize;
	int runs;
	size_t cache_bytes;   /* cowfs_opts.cache_bytes (0: the default) */
	bool cold;            /* every call from the device */
};

static void die(const char *what, int err)
{
	fprintf(stderr, "exclusive_bench: %s: %s\n", what, strerror(-err));
	exit(1);
}

static void check(const char *what, int ret)
{
	if (ret < 0)
		die(what, ret);
}

static uint64_t create_file(struct inode_tree *it, uint64_t i)
{
	char name[32];
	struct cowfs_attr a;
	int n = snprintf(name, sizeof(name), "file%07" PRIu64, i);

	check("create", inode_create(it, INODE_ROOT_INO, name, (size_t)n, S_IFREG | 0644, 0, 0, 0,
				     &a));
	return a.ino;
}

static void write_block(struct inode_tree *it, uint64_t ino, uint64_t seed)
{
	uint8_t buf[4096];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(seed * 131 + i);
	if (file_write(it, ino, buf, sizeof(buf), 0, 0) != (ssize_t)sizeof(buf))
		die("write", -EIO);
}

/* Subvolume 256 with `files` files of one 4 KiB extent each, committed. */
static void fill(struct cowfs *fs, struct cowfs_root **r, uint64_t files)
{
	struct inode_tree it;
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);

	check("tree create", cowfs_trans_end(tx, cowfs_tree_create(tx, 256, r)));
	check("root dir", inode_make_root(fs, *r));
	inode_tree_init(&it, fs, *r);
	for (uint64_t i = 0; i < files; i++) {
		write_block(&it, create_file(&it, i), i);
		if (i % 10000 == 9999)
			check("commit", cowfs_commit(fs));
	}
	check("inode tree", inode_tree_destroy(&it));
	check("commit", cowfs_commit(fs));
}

/* Overwrite files 0..k-1 of the snapshot and delete k more from the end. */
static void diverge(struct cowfs *fs, struct cowfs_root *snap, uint64_t files, uint64_t k)
{
	struct inode_tree it;
	char name[32];

	inode_tree_init(&it, fs, snap);
	for (uint64_t i = 0; i < k && i < files; i++) {
		struct cowfs_attr a;
		int n = snprintf(name, sizeof(name), "file%07" PRIu64, i);
		check("lookup", inode_lookup(&it, INODE_ROOT_INO, name, (size_t)n, &a));
		write_block(&it, a.ino, i + 7777);
	}
	for (uint64_t i = files > k ? files - k : 0; i < files; i++) {
		int n = snprintf(name, sizeof(name), "file%07" PRIu64, i);
		check("unlink", inode_unlink(&it, INODE_ROOT_INO, name, (size_t)n));
	}
	check("inode tree", inode_tree_destroy(&it));
	check("commit", cowfs_commit(fs));
}

struct timed {
	double secs;
	struct subvol_space s;
};

static int cmp_timed(const void *a, const void *b)
{
	return cmp_double(&((const struct timed *)a)->secs, &((const struct timed *)b)->secs);
}

/* The median of `runs` calls of one way of answering. */
static struct timed measure(struct cowfs *fs, const uint64_t *ids, size_t n, bool recount,
			    int runs, bool cold)
{
	struct timed t[16];

	for (int i = 0; i < runs; i++) {
		cowfs_lock(fs);
		if (cold)
			check("drop caches", cowfs_drop_caches(fs));
		double t0 = now();
		int ret = recount ? cowfs_subvol_space_recount(fs, ids, n, &t[i].s)
				  : cowfs_subvol_space(fs, ids, n, false, &t[i].s);
		t[i].secs = now() - t0;
		cowfs_unlock(fs);
		check(recount ? "recount" : "subvol space", ret);
	}
	qsort(t, (size_t)runs, sizeof(*t), cmp_timed);
	return t[runs / 2];
}

static void row(struct cowfs *fs, const char *phase, const uint64_t *ids, size_t n,
		const struct bench_opts *o)
{
	struct timed f = measure(fs, ids, n, false, o->runs, o->cold);
	struct timed r = measure(fs, ids, n, true, o->runs, o->cold);
	char set[64];

	if (f.s.exclusive_data != r.s.exclusive_data || f.s.exclusive_meta != r.s.exclusive_meta) {
		fprintf(stderr, "exclusive_bench: %s: fast %" PRIu64 "+%" PRIu64 " != recount %"
			PRIu64 "+%" PRIu64 "\n", phase, f.s.exclusive_data, f.s.exclusive_meta,
			r.s.exclusive_data, r.s.exclusive_meta);
		exit(1);
	}
	snprintf(set, sizeof(set), n == 1 ? "{%" PRIu64 "}" : "{%" PRIu64 ",%" PRIu64 "}", ids[0],
		 n > 1 ? ids[1] : 0);
	printf("| %-9s | %-9s | %14" PRIu64 " | %12" PRIu64 " | %10.3f | %10" PRIu64
	       " | %10.3f | %10" PRIu64 " | %8.1fx |\n", phase, set, f.s.exclusive_data,
	       f.s.exclusive_meta, f.secs * 1e3, f.s.nodes_read, r.secs * 1e3, r.s.nodes_read,
	       f.secs > 0 ? r.secs / f.secs : 0);
}

static void header(void)
{
	printf("| phase     | set       | exclusive data | excl. meta   |  fast (ms) | fast nodes |"
	       " recount ms | rec. nodes |  speedup  |\n");
	printf("|-----------|-----------|----------------|--------------|------------|------------|"
	       "------------|------------|-----------|\n");
}

static void parse(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' }, { "files", required_argument, NULL, 'f' },
		{ "change", required_argument, NULL, 'c' },
		{ "nodesize", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "cache", required_argument, NULL, 'm' },
		{ "cold", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct bench_opts){ .dir = ".", .files = 100000, .change = 100, .nodesize = 16384,
				  .runs = 5 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 'f': o->files = strtoull(optarg, NULL, 0); break;
		case 'c': o->change = strtoull(optarg, NULL, 0); break;
		case 'n': o->nodesize = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': o->runs = atoi(optarg); break;
		case 'm': o->cache_bytes = strtoull(optarg, NULL, 0); break;
		case 'C': o->cold = true; break;
		default:
			fprintf(stderr, "usage: exclusive_bench --dir DIR [--files N] [--change K] "
				"[--nodesize B] [--runs R] [--cache BYTES] [--cold]\n");
			exit(2);
		}
	}
	if (o->runs < 1 || o->runs > 16)
		o->runs = 5;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct cowfs_mkfs_opts mo = { 0 };
	struct cowfs_opts opts = { .commit_interval_ms = -1 };
	struct cowfs_root *r, *snap;
	struct cowfs *fs;
	char path[4096];
	uint64_t a = 256, b = 257, both[2] = { 256, 257 };

	parse(argc, argv, &o);
	mo.nodesize = o.nodesize;
	opts.cache_bytes = o.cache_bytes;
	if (mkdir_p(o.dir) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/exclusive_bench.img", o.dir);
	if (make_image(path, (o.files * 4096 * 3 / 2) + (1ull << 30)) < 0)
		return 1;
	check("format", cowfs_format(path, &mo, NULL));
	check("open", cowfs_open(path, &opts, &fs));
	double t0 = now();
	fill(fs, &r, o.files);
	printf("exclusive_bench: %" PRIu64 " files of 4 KiB, nodesize %u, cache_bytes %zu MiB, "
	       "built in %.1f s; median of %d runs, %s\n\n", o.files, o.nodesize,
	       cowfs_cache_bytes(fs) >> 20, now() - t0, o.runs,
	       o.cold ? "cold (caches dropped before each call)" : "warm cache");
	header();
	row(fs, "alone", &a, 1, &o);
	struct cowfs_trans *tx = cowfs_trans_begin(fs, ALLOC_NORMAL);
	check("snapshot", cowfs_trans_end(tx, cowfs_tree_clone(tx, r, 257, &snap)));
	check("commit", cowfs_commit(fs));
	row(fs, "snapshot", &a, 1, &o);
	row(fs, "snapshot", &b, 1, &o);
	row(fs, "snapshot", both, 2, &o);
	diverge(fs, snap, o.files, o.change);
	row(fs, "diverged", &a, 1, &o);
	row(fs, "diverged", &b, 1, &o);
	row(fs, "diverged", both, 2, &o);
	check("close", cowfs_close(fs));
	unlink(path);
	return 0;
}
