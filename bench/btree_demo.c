/*
 * btree_demo IMAGE [-n ITEMS]: the bare B+tree end to end (`make demo`). It dates from before
 * the mount existed; it stays as a quick look at the tree alone, not as a tool: it is not
 * installed, since it keeps block references with the test support code.
 *
 * Creates (or reuses) IMAGE, builds a copy-on-write B+tree of ITEMS items in it through the
 * io_uring block device and the block cache, commits (one write batch, one flush), takes an
 * O(1) clone and changes it, commits again, then reopens the image with a cold cache and
 * verifies every item of both trees, checks their structure and prints what it measured.
 * Block references are kept in memory (tests/support/memrefs.c, not the extent tree), so each
 * run starts a fresh image.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/btree/btree.h"
#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "tests/support/memrefs.h"

#define IMAGE_SIZE (1ull << 30)
#define NODESIZE BT_DEFAULT_NODESIZE

struct demo {
	const char *path;
	struct blockdev *bd;
	struct bcache *cache;
	struct memrefs *mr;
	struct bt_fs fs;
	struct bt_trans tx;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(void *arg, uint64_t bytenr, const char *msg)
{
	(void)arg;
	fprintf(stderr, "btree_demo: block %" PRIu64 ": %s\n", bytenr, msg);
}

static int die(const char *what, int err)
{
	fprintf(stderr, "btree_demo: %s: %s\n", what, strerror(-err));
	exit(1);
}

static void open_image(struct demo *d)
{
	struct bdev_opts o = { 0 };
	int ret = bdev_open(d->path, &o, &d->bd);

	if (ret < 0)
		die(d->path, ret);
	if ((ret = bcache_create(d->bd, BCACHE_DEFAULT_BYTES, &d->cache)) < 0)
		die("block cache", ret);
	d->fs.cache = d->cache;
}

static void close_image(struct demo *d)
{
	bcache_destroy(d->cache);
	bdev_close(d->bd);
}

static void commit(struct demo *d)
{
	int ret = bt_writeback(&d->fs);

	if (ret == 0)
		ret = bdev_flush(d->bd);
	if (ret < 0)
		die("commit", ret);
	memrefs_unpin(d->mr);
	d->tx.transid++;
}

static void value_for(uint64_t id, uint64_t gen, uint8_t v[16])
{
	for (int i = 0; i < 16; i++)
		v[i] = (uint8_t)(id * 31 + gen * 7 + i);
}

/* Every key in [0, n) is present with the value of generation `gen`, except `skip_odd`'s. */
static uint64_t verify(struct btree *t, uint64_t n, uint64_t gen, int odd_gen)
{
	uint8_t want[16], got[16];
	uint32_t len;

	for (uint64_t id = 0; id < n; id++) {
		struct bt_key k = { id, 1, 0 };
		int ret = bt_lookup(t, &k, got, sizeof(got), &len);
		if (ret < 0)
			die("lookup", ret);
		value_for(id, (id & 1) && odd_gen ? (uint64_t)odd_gen : gen, want);
		if (len != 16 || memcmp(got, want, 16)) {
			fprintf(stderr, "btree_demo: item %" PRIu64 " has wrong content\n", id);
			exit(1);
		}
	}
	int ret = bt_check(t);
	if (ret < 0)
		die("structure check", ret);
	return n;
}

static void create_image(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || ftruncate(fd, IMAGE_SIZE) < 0) {
		perror(path);
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct demo d = { 0 };
	uint64_t n = 200000;
	struct btree a, b;
	struct bt_stats st;
	uint8_t v[16];
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n' || (n = strtoull(optarg, NULL, 0)) == 0) {
			fprintf(stderr, "usage: %s IMAGE [-n ITEMS]\n", argv[0]);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: %s IMAGE [-n ITEMS]\n", argv[0]);
		return 2;
	}
	d.path = argv[optind];
	create_image(d.path);
	d.mr = memrefs_create(1 << 20, IMAGE_SIZE, NODESIZE);
	d.fs = (struct bt_fs){ .nodesize = NODESIZE, .ops = &memrefs_ops, .ops_ctx = d.mr,
			       .report = report };
	memcpy(d.fs.fsid, "cowfs-demo-fsid!", 16);
	d.tx = (struct bt_trans){ .fs = &d.fs, .transid = 1 };
	open_image(&d);

	double t0 = now();
	if ((ret = bt_create(&d.tx, 5, &a)) < 0)
		die("create", ret);
	for (uint64_t id = 0; id < n; id++) {
		struct bt_key k = { id, 1, 0 };
		value_for(id, 1, v);
		if ((ret = bt_insert(&d.tx, &a, &k, v, sizeof(v))) < 0)
			die("insert", ret);
	}
	commit(&d);
	double t1 = now();

	/* Clone, then rewrite the odd items of the clone only. */
	if ((ret = bt_clone(&d.tx, &a, 6, &b)) < 0)
		die("clone", ret);
	uint64_t shared = memrefs_allocated(d.mr);
	for (uint64_t id = 1; id < n; id += 2) {
		struct bt_key k = { id, 1, 0 };
		value_for(id, 2, v);
		if ((ret = bt_update(&d.tx, &b, &k, v, sizeof(v))) < 0)
			die("update", ret);
	}
	commit(&d);

	close_image(&d);   /* cold: everything below is read back from the image */
	open_image(&d);
	double t2 = now();
	verify(&a, n, 1, 0);
	verify(&b, n, 1, 2);
	double t3 = now();

	bt_stats(&a, &st);
	printf("image %s: %" PRIu64 " items, %" PRIu64 " nodes, height %" PRIu64 "\n", d.path,
	       st.items, st.nodes, st.height);
	printf("insert + commit: %.0f items/s; clone: 1 node copied (%" PRIu64 " blocks allocated)\n",
	       n / (t1 - t0), shared);
	printf("after rewriting half the clone: %" PRIu64 " blocks allocated in all\n",
	       memrefs_allocated(d.mr));
	printf("cold reopen, verified both trees (%" PRIu64 " lookups): %.0f lookups/s\n", 2 * n,
	       2 * n / (t3 - t2));
	printf("ok\n");
	close_image(&d);
	memrefs_destroy(d.mr);
	return 0;
}
