/*
 * fsck.cowfs end to end: exit codes as fsck(8) on a clean image (0), after injected refcount,
 * backref and leak damage (4), after --repair (1, then 0 on the next run); damaged superblock
 * copies; an image in use; a foreign image. Runs the built binary from $COWFS_BIN.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/inode/inode.h"
#include "fs/inode/internal.h"   /* inode_read/inode_write: nbytes of hand-made items */
#include "fs/lib/endian.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"

static int run_fsck(const char *args, const char *image)
{
	const char *bin = getenv("COWFS_BIN");
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "%s/fsck.cowfs %s %s >/dev/null 2>&1", bin && *bin ? bin : "build/bin",
		 args, image);
	int st = system(cmd);
	ck_assert_msg(WIFEXITED(st), "fsck did not exit normally (%d): crashed?", st);
	return WEXITSTATUS(st);
}

/* A real namespace (fsck checks it too): many files, one of them with file extent items. */
static void populate(struct fsfix *x)
{
	struct cowfs_root *snap;
	struct inode_tree it;
	struct cowfs_attr a;
	uint64_t start, len, file = 0;
	char name[32];

	ck_assert_int_eq(inode_make_root(x->fs, &x->fs->fs_root), 0);
	inode_tree_init(&it, x->fs, &x->fs->fs_root);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "file-%04d", i);
		REQUIRE(inode_create(&it, INODE_ROOT_INO, name, strlen(name), S_IFREG | 0644, 0, 0, 0,
				     &a) == 0, "create %s", name);
		if (!file)
			file = a.ino;
	}
	struct cowfs_trans *tx = cowfs_trans_begin(x->fs, ALLOC_NORMAL);
	ck_assert_int_eq(extent_alloc_data(&x->fs->ext, &tx->bt, 1 << 20, 1 << 20, 0, &start, &len),
			 0);
	/* Ten preallocated items sharing one extent (as ten reflinks of it would). */
	for (uint64_t i = 0; i < 10; i++) {
		struct file_extent_item fe = { .type = FILE_EXTENT_PREALLOC };
		struct bt_key k = { file, EXTENT_DATA_KEY, i << 20 };
		put_le64(&fe.disk_bytenr, start);
		put_le64(&fe.disk_num_bytes, len);
		put_le64(&fe.num_bytes, len);
		put_le64(&fe.ram_bytes, len);
		ck_assert_int_eq(bt_insert(&tx->bt, &x->fs->fs_root.t, &k, &fe, sizeof(fe)), 0);
	}
	struct inode in;
	ck_assert_int_eq(inode_read(&it, file, &in), 0);
	in.nbytes = 10 * len;
	ck_assert_int_eq(inode_write(tx, &it, file, &in), 0);
	ck_assert_int_eq(cowfs_tree_clone(tx, &x->fs->fs_root, 256, &snap), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x->fs), 0);
}

/* First extent item of each kind, for damage. */
struct pick { uint64_t data_start, data_len, tree_block; };

static int pick_extent(void *arg, const struct extent_info *e)
{
	struct pick *p = arg;

	if ((e->flags & EXTENT_FLAG_DATA) && !p->data_start) {
		p->data_start = e->start;
		p->data_len = e->len;
	}
	if ((e->flags & EXTENT_FLAG_TREE_BLOCK) && !p->tree_block)
		p->tree_block = e->start;
	return 0;
}

/* Three kinds of reference damage written straight into the extent tree. */
static void inject_damage(struct fsfix *x)
{
	struct pick p = { 0 };
	struct extent_item ei;
	uint32_t size;

	ck_assert_int_eq(extent_walk(&x->fs->ext, &(struct extent_walk){ .extent_fn = pick_extent, .arg = &p }), 0);
	ck_assert_uint_ne(p.data_start, 0);
	struct cowfs_trans *tx = cowfs_trans_begin(x->fs, ALLOC_PRIVILEGED);
	/* A wrong count. */
	struct bt_key k = { p.data_start, EXTENT_ITEM_KEY, p.data_len };
	ck_assert_int_eq(bt_lookup(x->fs->ext.tree, &k, &ei, sizeof(ei), &size), 0);
	put_le64(&ei.refs, get_le64(&ei.refs) + 3);
	ck_assert_int_eq(bt_update(&tx->bt, x->fs->ext.tree, &k, &ei, sizeof(ei)), 0);
	/* A missing backref. */
	struct bt_cursor c;
	struct bt_key from = { p.tree_block, TREE_BLOCK_REF_KEY, 0 }, rk;
	bt_cursor_init(&c, x->fs->ext.tree);
	ck_assert_int_eq(bt_cursor_seek(&c, &from, BT_SEEK_GE), 0);
	bt_cursor_item(&c, &rk, NULL, NULL);
	bt_cursor_release(&c);
	ck_assert_uint_eq(rk.objectid, p.tree_block);
	ck_assert_int_eq(bt_delete(&tx->bt, x->fs->ext.tree, &rk), 0);
	/* A leaked extent: an item for space nothing references. */
	struct bt_key leak = { 200ull << 20, EXTENT_ITEM_KEY, 65536 };
	memset(&ei, 0, sizeof(ei));
	put_le64(&ei.refs, 1);
	put_le64(&ei.flags, EXTENT_FLAG_DATA);
	ck_assert_int_eq(bt_insert(&tx->bt, x->fs->ext.tree, &leak, &ei, sizeof(ei)), 0);
	cowfs_trans_end(tx, 0);
	ck_assert_int_eq(cowfs_commit(x->fs), 0);
}

START_TEST(exit_codes_and_repair)
{
	struct fsfix x;

	fsfix_setup(&x, "fsck", 256ull << 20, 4096);
	populate(&x);
	fsfix_reopen(&x);
	inject_damage(&x);
	/* The library's checker sees it too. */
	struct cowfs_check_stats st;
	ck_assert_int_eq(cowfs_check(x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_uint_ge(st.problems, 3);
	cowfs_close(x.fs);
	x.fs = NULL;

	ck_assert_int_eq(run_fsck("", x.path), 4);
	ck_assert_int_eq(run_fsck("-v", x.path), 4);
	ck_assert_int_eq(run_fsck("--repair", x.path), 1);
	ck_assert_int_eq(run_fsck("", x.path), 0);
	ck_assert_int_eq(run_fsck("--repair", x.path), 0);
	fsfix_teardown(&x);
}
END_TEST

/*
 * fsck(8)'s options, as `fsck -a` and boot-time checks pass them: -a, -p and -y repair what
 * --repair does (1, then clean: 0), -n only checks (4), -f is accepted; -n with -a is refused.
 */
START_TEST(fsck8_repair_options)
{
	static const char *const repairs[] = { "-a", "-p", "-y", "-f -a" };
	struct fsfix x;

	fsfix_setup(&x, "fsck-opts", 256ull << 20, 4096);
	populate(&x);
	for (size_t i = 0; i < sizeof(repairs) / sizeof(repairs[0]); i++) {
		fsfix_reopen(&x);   /* after populate; later, after the last round's fsck */
		inject_damage(&x);
		cowfs_close(x.fs);
		x.fs = NULL;
		ck_assert_int_eq(run_fsck("-n", x.path), 4);
		ck_assert_int_eq(run_fsck("-f -n", x.path), 4);
		ck_assert_int_eq(run_fsck("-n -a", x.path), 16);
		ck_assert_msg(run_fsck(repairs[i], x.path) == 1, "fsck.cowfs %s: not 1", repairs[i]);
		ck_assert_int_eq(run_fsck("-n", x.path), 0);
		ck_assert_msg(run_fsck(repairs[i], x.path) == 0, "fsck.cowfs %s: not 0", repairs[i]);
	}
	fsfix_teardown(&x);
}
END_TEST

START_TEST(clean_image_and_superblock_copies)
{
	struct fsfix x;
	uint8_t junk[64];

	fsfix_setup(&x, "fsck-sb", 256ull << 20, 16384);
	populate(&x);
	cowfs_close(x.fs);
	x.fs = NULL;
	ck_assert_int_eq(run_fsck("", x.path), 0);
	/* Damage the mirror at 64 MiB: found, and --repair rewrites it. */
	int fd = open(x.path, O_RDWR);
	memset(junk, 0x5a, sizeof(junk));
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), (64ll << 20) + 200), (ssize_t)sizeof(junk));
	close(fd);
	ck_assert_int_eq(run_fsck("", x.path), 4);
	ck_assert_int_eq(run_fsck("--repair", x.path), 1);
	ck_assert_int_eq(run_fsck("", x.path), 0);
	fsfix_teardown(&x);
}
END_TEST

START_TEST(in_use_and_foreign_images)
{
	struct fsfix x;
	char path[600];

	fsfix_setup(&x, "fsck-busy", 64ull << 20, 16384);
	/* x.fs holds the image open for writing, as a mount does. */
	ck_assert_int_eq(run_fsck("--repair", x.path), 8);
	fsfix_teardown(&x);

	snprintf(path, sizeof(path), "%s/fsck-foreign-%d.img", test_dir(), (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_eq(ftruncate(fd, 32 << 20), 0);
	close(fd);
	ck_assert_int_eq(run_fsck("", path), 8);
	ck_assert_int_eq(run_fsck("", "/nonexistent/image"), 8);
	ck_assert_int_eq(run_fsck("--bogus", path), 16);
	unlink(path);
}
END_TEST

/* Run `cowfs dump ARGS IMAGE` and return its standard output (caller frees) and exit status. */
static char *run_dump(const char *args, const char *image, int *status)
{
	const char *bin = getenv("COWFS_BIN");
	char cmd[1200];
	size_t cap = 1 << 20, n = 0;
	char *out = malloc(cap);

	snprintf(cmd, sizeof(cmd), "%s/cowfs dump %s %s 2>/dev/null", bin && *bin ? bin : "build/bin",
		 args, image);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	for (size_t got; (got = fread(out + n, 1, cap - 1 - n, p)) > 0;)
		n += got;
	out[n] = 0;
	int st = pclose(p);
	ck_assert_msg(WIFEXITED(st), "cowfs dump did not exit normally");
	*status = WEXITSTATUS(st);
	return out;
}

/* One file's extents with their refcount and every reference (issue 3's dump of a file). */
START_TEST(dump_file_extents)
{
	struct fsfix x;
	int status;

	fsfix_setup(&x, "dump-file", 256ull << 20, 4096);
	populate(&x);
	cowfs_close(x.fs);
	x.fs = NULL;
	char *out = run_dump("--json --path /file-0000", x.path, &status);
	ck_assert_int_eq(status, 0);
	/* Ten items of the file share one extent: ten references, each listed. */
	ck_assert_ptr_nonnull(strstr(out, "\"extent_refs\":10,"));
	int refs = 0;
	for (const char *q = out; (q = strstr(q, "\"owner\":5,\"inode\":")); q++)
		refs++;
	ck_assert_int_eq(refs, 10 * 10);   /* each of the 10 items lists all 10 references */
	free(out);
	/* The snapshot's copy of the file is reachable by tree id too. */
	out = run_dump("--json --tree 256 --path /file-0000", x.path, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(strstr(out, "\"tree\":256"));
	free(out);
	/* A path that is not there is no problem of the image: exit 2, as for usage. */
	out = run_dump("--path /no-such-file", x.path, &status);
	ck_assert_int_eq(status, 2);
	free(out);
	fsfix_teardown(&x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fsck");
	TCase *tc = tcase_create("fsck");

	tcase_add_test(tc, exit_codes_and_repair);
	tcase_add_test(tc, fsck8_repair_options);
	tcase_add_test(tc, clean_image_and_superblock_copies);
	tcase_add_test(tc, in_use_and_foreign_images);
	tcase_add_test(tc, dump_file_extents);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
