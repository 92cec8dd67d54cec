/*
 * The subvolume commands (tools/subvol/) against the ioctl contract of fuse/cowfs_ioctl.h,
 * without a server: this program defines ioctl(2), fstatfs(2) and syncfs(2) itself, so the
 * commands' calls reach a small model of a mount with subvolumes instead of the kernel.
 * Directories of a scratch tree stand for the mount; the model says which are subvolume
 * roots. Each test runs a command as `cowfs` would and checks both what it asked of the
 * "server" (the structs it filled in: names, ids, flags, versions) and what it printed.
 *
 *   listing: INFO_NEXT from 0, then from id + 1, until ENOENT; filters; JSON; SPACE per line
 *   snapshot: SRC must be a subvolume root; DST a directory gets basename(SRC); -r; syncfs
 *   delete: the name in the parent, the real path printed, -c waits with SYNC per id
 *   show: the source's path and the snapshots of it; space: one set, each subvolume once
 *   sync: an id not being deleted is refused before any wait; property set: SET_FLAGS
 *   a server without subvolumes (ENOTTY): "does not support subvolumes", nothing issued
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "tests/support/fixture.h"
#include "tools/prog.h"
#include "tools/subvol/parts.h"
#include "tools/subvol/subvol.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

#define MAX_ROOTS 16
#define MAX_SUBVOLS 16
#define OUT_MAX 16384

/* ---- the model: which directories are subvolume roots, what the subvolumes are ----------- */

struct root_dir {
	ino_t st_ino;
	uint64_t subvol;
};

static struct model {
	bool old_server;                 /* answers no SUBVOL_* ioctl (ENOTTY) */
	struct root_dir roots[MAX_ROOTS];
	int nroots;
	struct cowfs_ioc_subvol_info sv[MAX_SUBVOLS];
	int nsv;
	/* What the commands asked. */
	int info_calls, space_calls, create_calls, snap_calls, delete_calls, sync_calls;
	int flags_calls, default_calls, syncfs_calls;
	uint64_t info_from[32];          /* INFO_NEXT requests' ids, in order */
	int next_calls;
	struct cowfs_ioc_subvol_create last_create;
	struct cowfs_ioc_subvol_delete last_delete;
	struct cowfs_ioc_subvol_space last_space;
	struct cowfs_ioc_subvol_flags last_flags;
	struct cowfs_ioc_subvol_default last_default;
	uint64_t sync_ids[8];
	uint64_t create_dir_subvol;      /* the subvolume of the directory CREATE was issued on */
} m;

static char root[1024];          /* the scratch tree: the "mount" */

static void add_subvol(uint64_t id, uint64_t source, uint32_t flags, const char *path)
{
	struct cowfs_ioc_subvol_info *i = &m.sv[m.nsv++];
	const char *slash = strrchr(path, '/');

	memset(i, 0, sizeof(*i));
	i->version = COWFS_SUBVOL_VERSION;
	i->id = id;
	i->parent = id == 5 ? 0 : 5;
	i->source = source;
	i->flags = flags;
	i->generation = 10 + id % 7;
	i->ctransid = 3;
	i->uuid[15] = (uint8_t)id;
	if (source)
		i->source_uuid[15] = (uint8_t)source;
	if (flags & COWFS_SUBVOL_DELETING) {
		i->drop_permille = 500;
		return;
	}
	snprintf(i->path, sizeof(i->path), "%s", path);
	snprintf(i->name, sizeof(i->name), "%s", slash ? slash + 1 : path);
}

static const struct cowfs_ioc_subvol_info *subvol(uint64_t id)
{
	for (int k = 0; k < m.nsv; k++)
		if (m.sv[k].id == id)
			return &m.sv[k];
	return NULL;
}

/* A directory of the scratch tree (made now), a subvolume's root when id != 0. */
static void make_dir(const char *rel, uint64_t id)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	ck_assert_int_eq(stat(p, &st), 0);
	if (id)
		m.roots[m.nroots++] = (struct root_dir){ st.st_ino, id };
}

/* The subvolume fd is in: the nearest root up the tree, else the top level (5). */
static uint64_t subvol_of_fd(int fd, bool *is_root)
{
	char link[64], p[PATH_MAX];
	ssize_t n;

	*is_root = false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, p, sizeof(p) - 1);
	if (n < 0)
		return 5;
	p[n] = '\0';
	for (bool first = true;; first = false) {
		struct stat st;
		char *slash;
		if (stat(p, &st) == 0) {
			if (!strcmp(p, root)) {
				*is_root = *is_root || first;
				return 5;
			}
			for (int k = 0; k < m.nroots; k++) {
				if (m.roots[k].st_ino == st.st_ino) {
					*is_root = first;
					return m.roots[k].subvol;
				}
			}
		}
		slash = strrchr(p, '/');
		if (!slash || slash == p)
			return 5;
		*slash = '\0';
	}
}

/* ---- the "server" ------------------------------------------------------------------------ */

static int refuse(int err)
{
	errno = err;
	return -1;
}

static int answer_info(int fd, struct cowfs_ioc_subvol_info *in)
{
	const struct cowfs_ioc_subvol_info *best = NULL;
	bool is_root;

	m.info_calls++;
	ck_assert_uint_eq(in->version, COWFS_SUBVOL_VERSION);
	if (in->in_flags & COWFS_SUBVOL_INFO_NEXT) {
		m.info_from[m.next_calls++ % 32] = in->id;
		for (int k = 0; k < m.nsv; k++)
			if (m.sv[k].id >= in->id && (!best || m.sv[k].id < best->id))
				best = &m.sv[k];
	} else {
		best = subvol(in->id ? in->id : subvol_of_fd(fd, &is_root));
	}
	if (!best)
		return refuse(ENOENT);
	*in = *best;
	return 0;
}

static int answer_subvol(int fd, unsigned long req, void *arg)
{
	bool is_root;

	switch (req) {
	case COWFS_IOC_SUBVOL_INFO:
		return answer_info(fd, arg);
	case COWFS_IOC_SUBVOL_SPACE: {
		struct cowfs_ioc_subvol_space *sp = arg;
		m.space_calls++;
		m.last_space = *sp;
		sp->exclusive_data = 4096ull * sp->count;
		sp->exclusive_meta = 16384;
		sp->exclusive = sp->exclusive_data + sp->exclusive_meta;
		return 0;
	}
	case COWFS_IOC_SUBVOL_CREATE:
	case COWFS_IOC_SNAP_CREATE: {
		struct cowfs_ioc_subvol_create *c = arg;
		if (req == COWFS_IOC_SNAP_CREATE)
			m.snap_calls++;
		else
			m.create_calls++;
		m.last_create = *c;
		m.create_dir_subvol = subvol_of_fd(fd, &is_root);
		c->id = 300;
		return 0;
	}
	case COWFS_IOC_SUBVOL_DELETE: {
		struct cowfs_ioc_subvol_delete *d = arg;
		m.delete_calls++;
		m.last_delete = *d;
		for (int k = 0; k < m.nsv; k++) {
			if (!strcmp(m.sv[k].name, d->name)) {
				d->id = m.sv[k].id;
				return 0;
			}
		}
		return refuse(ENOTDIR);
	}
	case COWFS_IOC_SUBVOL_SYNC: {
		struct cowfs_ioc_subvol_sync *s = arg;
		m.sync_ids[m.sync_calls++ % 8] = s->id;
		s->count = 1;
		return 0;
	}
	case COWFS_IOC_SUBVOL_SET_FLAGS:
		m.flags_calls++;
		m.last_flags = *(struct cowfs_ioc_subvol_flags *)arg;
		return 0;
	case COWFS_IOC_SUBVOL_DEFAULT: {
		struct cowfs_ioc_subvol_default *d = arg;
		m.default_calls++;
		m.last_default = *d;
		if (d->op == COWFS_SUBVOL_DEFAULT_GET)
			d->id = 5;
		return 0;
	}
	}
	return refuse(ENOTTY);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	bool is_root;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == COWFS_IOC_FILE_ID) {
		struct cowfs_ioc_file_id *id = arg;
		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		id->version = COWFS_FILE_ID_VERSION;
		id->blocksize = 4096;
		id->file.subvol = subvol_of_fd(fd, &is_root);
		id->file.ino = is_root ? 256 : 1000 + (st.st_ino & 0xffff);
		id->file.generation = 1;
		return 0;
	}
	if (_IOC_TYPE(req) == COWFS_IOC_MAGIC && !m.old_server)
		return answer_subvol(fd, req, arg);
	return refuse(ENOTTY);
}

/* Every file here is on "FUSE": the commands then ask FILE_ID, answered above. */
int fstatfs(int fd, struct statfs *buf)
{
	if (syscall(SYS_fstatfs, fd, buf) < 0)
		return -1;
	buf->f_type = FUSE_SUPER_MAGIC;
	return 0;
}

int syncfs(int fd)
{
	(void)fd;
	m.syncfs_calls++;
	return 0;
}

/* ---- running a command ------------------------------------------------------------------- */

static char out[OUT_MAX], err[OUT_MAX];

static void slurp(FILE *f, char *buf)
{
	ssize_t n;

	ck_assert_int_eq(lseek(fileno(f), 0, SEEK_SET), 0);
	n = read(fileno(f), buf, OUT_MAX - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	fclose(f);
}

/* Run `cowfs WORD...` (fn is the command's entry) with stdout and stderr captured. */
static int run(int (*fn)(int, char **), ...)
{
	char *argv[16], *owned[16];
	int argc = 0, ret, so, se;
	FILE *o = tmpfile(), *e = tmpfile();
	va_list ap;
	const char *a;

	ck_assert(o && e);
	va_start(ap, fn);
	while ((a = va_arg(ap, const char *)) && argc < 15)
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	/* A command may point argv entries elsewhere (the dispatch does): free the originals. */
	memcpy(owned, argv, sizeof(argv));
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(fileno(o), 1);
	dup2(fileno(e), 2);
	ret = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(o, out);
	slurp(e, err);
	for (int i = 0; i < argc; i++)
		free(owned[i]);
	return ret;
}

static const char *at(const char *rel)
{
	static char p[4][PATH_MAX];
	static int n;
	char *s = p[n++ % 4];

	snprintf(s, PATH_MAX, "%s%s%s", root, rel[0] ? "/" : "", rel);
	return s;
}

#define ck_out_has(s) ck_assert_msg(strstr(out, s), "stdout lacks '%s':\n%s", s, out)
#define ck_err_has(s) ck_assert_msg(strstr(err, s), "stderr lacks '%s':\n%s", s, err)

/* The mount: top level 5, a (256) with snapshots snaps/a-rw (257) and snaps/a-ro (258, ro),
 * and 259 being deleted. */
static void setup(void)
{
	const char *dir = getenv("COWFS_TEST_DIR");
	char *real;

	memset(&m, 0, sizeof(m));
	snprintf(root, sizeof(root), "%s/subvol_cmds.XXXXXX", dir ? dir : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(root));
	real = realpath(root, NULL);
	snprintf(root, sizeof(root), "%s", real);
	free(real);
	add_subvol(5, 0, COWFS_SUBVOL_DEFAULT, "");
	add_subvol(256, 0, 0, "a");
	add_subvol(257, 256, 0, "snaps/a-rw");
	add_subvol(258, 256, COWFS_SUBVOL_RDONLY, "snaps/a-ro");
	add_subvol(259, 256, COWFS_SUBVOL_DELETING, "");
	make_dir("a", 256);
	make_dir("a/inner", 0);
	make_dir("snaps", 0);
	make_dir("snaps/a-rw", 257);
	make_dir("snaps/a-ro", 258);
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(list_walks_every_id_once)
{
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "list", root, NULL), EXIT_OK);
	/* From 0, then from each answer + 1, until ENOENT. */
	ck_assert_int_eq(m.next_calls, 6);
	ck_assert_uint_eq(m.info_from[0], 0);
	ck_assert_uint_eq(m.info_from[1], 6);
	ck_assert_uint_eq(m.info_from[2], 257);
	ck_assert_uint_eq(m.info_from[5], 260);
	ck_assert_int_eq(m.space_calls, 5);
	ck_assert_uint_eq(m.last_space.count, 1);
	ck_assert_uint_eq(m.last_space.ids[0], 259);
	ck_assert_uint_eq(m.last_space.version, COWFS_SUBVOL_VERSION);
	ck_out_has("ID       Parent   Gen        Flags                 Exclusive  Path\n");
	ck_out_has("5        0        15         default                20.00KiB  <top level>\n");
	ck_out_has("258      5        16         ro                     20.00KiB  snaps/a-ro\n");
	ck_out_has("259      5        10         deleting, 50% done     20.00KiB  <deleted>\n");
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(list_filters_and_json)
{
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "list", "-s", "-r", root, NULL), EXIT_OK);
	ck_assert_ptr_null(strstr(out, "snaps/a-rw"));
	ck_out_has("snaps/a-ro");
	ck_assert_int_eq(m.space_calls, 1);
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "list", "--deleted", root, NULL), EXIT_OK);
	ck_out_has("<deleted>");
	ck_assert_ptr_null(strstr(out, "snaps/"));
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "li", "--json", "-d", "-r", root, NULL),
			 EXIT_OK);
	ck_assert_str_eq(strstr(out, "\"subvolumes\":"), "\"subvolumes\":[]}\n");
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "list", "--json", "-r", root, NULL),
			 EXIT_OK);
	ck_out_has("\"path\":\"snaps/a-ro\"");
	ck_out_has("\"flags\":[\"ro\"]");
	ck_out_has("\"exclusive\":20480,\"exclusive_data\":4096,\"exclusive_meta\":16384}]}\n");
}
END_TEST

START_TEST(snapshot_into_a_directory)
{
	ck_assert_int_eq(run(cmd_snapshot, "snapshot", "-r", at("a"), at("snaps"), NULL), EXIT_OK);
	ck_assert_int_eq(m.snap_calls, 1);
	ck_assert_int_eq(m.syncfs_calls, 1);
	ck_assert_uint_eq(m.last_create.version, COWFS_SUBVOL_VERSION);
	ck_assert_uint_eq(m.last_create.source, 256);
	ck_assert_uint_eq(m.last_create.flags, COWFS_SUBVOL_RDONLY);
	ck_assert_str_eq(m.last_create.name, "a");
	ck_out_has("Create a readonly snapshot of '");
	ck_out_has("/a' in '");
	ck_out_has("/snaps/a'\n");
	/* DST not there: its parent and its name; writable; the top level's root as SRC. */
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "snapshot", root, at("a/top"), NULL),
			 EXIT_OK);
	ck_assert_uint_eq(m.last_create.source, 5);
	ck_assert_uint_eq(m.last_create.flags, 0);
	ck_assert_str_eq(m.last_create.name, "top");
	ck_assert_uint_eq(m.create_dir_subvol, 256);
	ck_assert_int_eq(m.syncfs_calls, 2);
}
END_TEST

START_TEST(snapshot_needs_a_subvolume_root)
{
	ck_assert_int_eq(run(cmd_snapshot, "snapshot", at("a/inner"), at("snaps/x"), NULL),
			 EXIT_FAIL);
	ck_err_has("cowfs snapshot: ");
	ck_err_has("/a/inner: not a subvolume (its root directory is needed)");
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(m.snap_calls + m.syncfs_calls, 0);
	ck_assert_int_eq(run(cmd_snapshot, "snapshot", at("a"), at("nodir/x"), NULL), EXIT_FAIL);
	ck_err_has("nodir: No such file or directory");
	ck_assert_int_eq(m.snap_calls, 0);
}
END_TEST

START_TEST(create_in_its_directory)
{
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "create", at("a/new/"), at("b"), NULL),
			 EXIT_OK);
	ck_assert_int_eq(m.create_calls, 2);
	ck_assert_str_eq(m.last_create.name, "b");
	ck_assert_uint_eq(m.create_dir_subvol, 5);
	ck_out_has("Create subvolume '");
	ck_out_has("/a/new/'\n");
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "create", at("a/.."), NULL), EXIT_FAIL);
	ck_err_has("Invalid argument: not a valid subvolume name");
	ck_assert_int_eq(m.create_calls, 2);
}
END_TEST

START_TEST(delete_by_name_in_the_parent)
{
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "delete", at("snaps/a-rw/"), NULL),
			 EXIT_OK);
	ck_assert_int_eq(m.delete_calls, 1);
	ck_assert_uint_eq(m.last_delete.version, COWFS_SUBVOL_VERSION);
	ck_assert_str_eq(m.last_delete.name, "a-rw");
	ck_assert_int_eq(m.sync_calls, 0);
	ck_out_has("Delete subvolume (no-commit): '");
	ck_out_has("/snaps/a-rw'\n");
	/* -c: SYNC with each deleted id, after all the deletions. */
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "delete", "-c", at("snaps/a-ro"), at("a"),
			     NULL), EXIT_OK);
	ck_assert_int_eq(m.sync_calls, 2);
	ck_assert_uint_eq(m.sync_ids[0], 258);
	ck_assert_uint_eq(m.sync_ids[1], 256);
	ck_out_has("Delete subvolume (commit): '");
	/* The server's ENOTDIR: not a subvolume. */
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "delete", at("a/inner"), NULL), EXIT_FAIL);
	ck_err_has("/a/inner: not a subvolume\n");
}
END_TEST

START_TEST(show_source_and_snapshots)
{
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "show", at("a/inner"), NULL), EXIT_OK);
	ck_assert_str_eq(strstr(out, "a\n") == out ? "a" : out, "a");
	ck_out_has("\tSubvolume ID:         256\n");
	ck_out_has("\tSource ID:            -\n");
	ck_out_has("\tSnapshot(s):\n\t\t257  snaps/a-rw\n\t\t258  snaps/a-ro\n\t\t259  <deleted>\n");
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "show", "--json", at("snaps/a-ro"), NULL),
			 EXIT_OK);
	ck_out_has("\"id\":258,");
	ck_out_has("\"source_path\":\"a\",\"snapshots\":[]}\n");
}
END_TEST

START_TEST(space_of_a_set)
{
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "space", "--json", at("a"), at("a/inner"),
			     at("snaps/a-ro"), NULL), EXIT_OK);
	ck_assert_int_eq(m.space_calls, 1);
	ck_assert_uint_eq(m.last_space.count, 2);
	ck_assert_uint_eq(m.last_space.ids[0], 256);
	ck_assert_uint_eq(m.last_space.ids[1], 258);
	ck_assert_uint_eq(m.last_space.flags, 0);
	ck_assert_str_eq(out, "{\"subvolumes\":[{\"id\":256,\"path\":\"a\"},{\"id\":258,\"path\":"
			      "\"snaps/a-ro\"}],\"exclusive\":24576,\"exclusive_data\":8192,"
			      "\"exclusive_meta\":16384,\"referenced\":null,"
			      "\"freed_if_all_deleted\":24576}\n");
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "space", "--referenced", at("a"), NULL),
			 EXIT_OK);
	ck_assert_uint_eq(m.last_space.flags, COWFS_SUBVOL_SPACE_REFERENCED);
	ck_out_has("Freed if deleted:     20.00KiB\n");
}
END_TEST

START_TEST(sync_waits_only_for_deletions)
{
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "sync", root, NULL), EXIT_OK);
	ck_assert_int_eq(m.sync_calls, 1);
	ck_assert_uint_eq(m.sync_ids[0], 0);
	ck_assert_str_eq(out, "Waiting for deleted subvolumes: 259\n"
			      "Dropped and committed: 1 subvolume\n");
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "sync", root, "259", "256", "999", NULL),
			 EXIT_FAIL);
	ck_assert_int_eq(m.sync_calls, 2);
	ck_assert_uint_eq(m.sync_ids[1], 259);
	ck_assert_str_eq(out, "Waiting for subvolume 259\nSubvolume 259 is gone\n"
			      "Subvolume 999 is gone\n");
	ck_err_has(": subvolume 256: not being deleted: nothing to wait for\n");
}
END_TEST

START_TEST(property_and_default)
{
	ck_assert_int_eq(run(cmd_property, "property", "get", at("snaps/a-ro"), NULL), EXIT_OK);
	ck_assert_str_eq(out, "ro=true\n");
	ck_assert_int_eq(run(cmd_property, "property", "set", at("snaps/a-ro"), "ro", "false",
			     NULL), EXIT_OK);
	ck_assert_int_eq(m.flags_calls, 1);
	ck_assert_uint_eq(m.last_flags.flags, 0);
	ck_assert_uint_eq(m.last_flags.version, COWFS_SUBVOL_VERSION);
	ck_assert_int_eq(run(cmd_property, "property", "set", at("a"), "ro", "true", NULL), EXIT_OK);
	ck_assert_uint_eq(m.last_flags.flags, COWFS_SUBVOL_RDONLY);
	ck_assert_int_eq(run(cmd_property, "property", "set", at("a/inner"), "ro", "true", NULL),
			 EXIT_FAIL);
	ck_err_has("not a subvolume");
	ck_assert_int_eq(m.flags_calls, 2);

	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "get-default", root, NULL), EXIT_OK);
	ck_assert_str_eq(out, "ID 5 gen 15 parent 0 path <top level>\n");
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "set-default", at("snaps/a-rw"), NULL),
			 EXIT_OK);
	ck_assert_uint_eq(m.last_default.op, COWFS_SUBVOL_DEFAULT_SET);
	ck_assert_uint_eq(m.last_default.id, 257);
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "set-default", "258", root, NULL), EXIT_OK);
	ck_assert_uint_eq(m.last_default.id, 258);
}
END_TEST

START_TEST(a_server_without_subvolumes)
{
	m.old_server = true;
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "list", root, NULL), EXIT_FAIL);
	ck_err_has("this cowfs mount does not support subvolumes");
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(run(cmd_snapshot, "snapshot", at("a"), at("snaps"), NULL), EXIT_FAIL);
	ck_err_has("does not support subvolumes");
	ck_assert_int_eq(m.syncfs_calls, 0);
	ck_assert_int_eq(run(cmd_subvolume, "subvolume", "delete", at("a"), NULL), EXIT_FAIL);
	ck_err_has("does not support subvolumes");
	ck_assert_str_eq(out, "");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("subvol_cmds");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, list_walks_every_id_once);
	tcase_add_test(tc, list_filters_and_json);
	tcase_add_test(tc, snapshot_into_a_directory);
	tcase_add_test(tc, snapshot_needs_a_subvolume_root);
	tcase_add_test(tc, create_in_its_directory);
	tcase_add_test(tc, delete_by_name_in_the_parent);
	tcase_add_test(tc, show_source_and_snapshots);
	tcase_add_test(tc, space_of_a_set);
	tcase_add_test(tc, sync_waits_only_for_deletions);
	tcase_add_test(tc, property_and_default);
	tcase_add_test(tc, a_server_without_subvolumes);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
