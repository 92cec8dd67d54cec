#include "tests/support/fsfix.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "tests/support/fixture.h"

static void fsfix_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct fsfix *x = arg;

	x->reports++;
	snprintf(x->last_report, sizeof(x->last_report), "block %" PRIu64 ": %s", bytenr, msg);
	if (getenv("COWFS_TEST_VERBOSE"))
		fprintf(stderr, "report: %s\n", x->last_report);
}

struct cowfs_opts fsfix_opts(struct fsfix *x)
{
	/* Commits happen exactly where the tests make them: no timer. */
	return (struct cowfs_opts){ .report = fsfix_report, .report_arg = x,
				    .commit_interval_ms = x->commit_interval_ms ? x->commit_interval_ms : -1,
				    .cache_bytes = x->cache_bytes, .dirty_limit = x->dirty_limit,
				    .replays_log = true };
}

static void fsfix_open(struct fsfix *x)
{
	struct cowfs_opts o = fsfix_opts(x);
	int ret = cowfs_open(x->path, &o, &x->fs);

	ck_assert_msg(ret == 0, "cowfs_open: %d (%s)", ret, x->last_report);
}

void fsfix_setup(struct fsfix *x, const char *name, uint64_t size, uint32_t nodesize)
{
	struct cowfs_mkfs_opts mo = { .nodesize = nodesize };
	int fd;

	memset(x, 0, sizeof(*x));
	x->size = size;
	x->nodesize = nodesize;
	snprintf(x->path, sizeof(x->path), "%s/%s-%d.img", test_dir(), name, (int)getpid());
	fd = open(x->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
	ck_assert_int_eq(cowfs_format(x->path, &mo, NULL), 0);
	fsfix_open(x);
}

void fsfix_reopen(struct fsfix *x)
{
	/* NULL: the test closed it itself, to run a program on the image. */
	if (x->fs)
		ck_assert_int_eq(cowfs_close(x->fs), 0);
	fsfix_open(x);
}

void fsfix_set_memory(struct fsfix *x, size_t cache_bytes, size_t dirty_limit)
{
	x->cache_bytes = cache_bytes;
	x->dirty_limit = dirty_limit;
	fsfix_reopen(x);
}

void fsfix_crash_reopen(struct fsfix *x)
{
	/* A read-only close commits nothing: what is pending is lost, as in a crash. */
	x->fs->read_only = true;
	cowfs_close(x->fs);
	fsfix_open(x);
}

void fsfix_teardown(struct fsfix *x)
{
	if (x->fs)
		cowfs_close(x->fs);
	unlink(x->path);
}

void fsfix_assert_clean(struct fsfix *x, struct cowfs_check_stats *st)
{
	struct cowfs_check_stats local;
	int ret = cowfs_check(x->fs, st ? st : &local, NULL, NULL);

	ck_assert_msg(ret == 0, "check found %" PRIu64 " problems (ret %d); last: %s",
		      (st ? st : &local)->problems, ret, x->last_report);
}

uint64_t fsfix_tree_digest(struct btree *t)
{
	XXH3_state_t *st = XXH3_createState();
	struct bt_cursor c;
	struct bt_key k;
	const void *d;
	uint32_t len;
	int ret;

	XXH3_64bits_reset(st);
	bt_cursor_init(&c, t);
	for (ret = bt_cursor_seek(&c, &BT_KEY_MIN, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, &d, &len);
		XXH3_64bits_update(st, &k.objectid, 8);
		XXH3_64bits_update(st, &k.type, 1);
		XXH3_64bits_update(st, &k.offset, 8);
		XXH3_64bits_update(st, &len, 4);
		XXH3_64bits_update(st, d, len);
	}
	bt_cursor_release(&c);
	REQUIRE(ret == -ENOENT, "digest scan failed: %d", ret);
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

struct bt_key fsfix_fill_key(uint64_t i)
{
	return (struct bt_key){ i * 7919 % 1000003, 1, i };
}

uint64_t fsfix_fill(struct fsfix *x, uint32_t len)
{
	uint8_t buf[400];
	uint64_t n;
	int ret;

	ck_assert_uint_le(len, sizeof(buf));
	memset(buf, 0xab, len);
	for (n = 0;; n++) {
		struct bt_key k = fsfix_fill_key(n);
		struct cowfs_trans *tx = cowfs_trans_begin(x->fs, ALLOC_NORMAL);
		ret = cowfs_reserve(tx, cowfs_update_nodes(&x->fs->fs_root.t));
		if (ret == 0)
			ret = bt_insert(&tx->bt, &x->fs->fs_root.t, &k, buf, len);
		cowfs_trans_end(tx, ret);
		if (ret < 0)
			break;
	}
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_int_eq(cowfs_trans_error(&x->fs->trans), 0);
	return n;
}
