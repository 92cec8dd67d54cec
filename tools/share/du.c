/*
 * cowfs du [-s] [--raw|--human] [--json] PATH...: the space files and directory trees use, as
 * `btrfs filesystem du` shows it, from the mount's own accounting (COWFS_IOC_SPACE):
 *
 *   Total      bytes the files map (every reference counted, holes not)
 *   Exclusive  bytes on disk of extents referenced only from this file or tree: what
 *              deleting it frees
 *   Shared     bytes it maps of extents also referenced from elsewhere
 *   Pinned     bytes of its exclusive extents that nothing maps any more, kept on disk
 *              because a part of the same extent is still referenced (cowfs frees an extent
 *              only whole)
 *
 * Without -s: a line per regular file and directory below each PATH (a file reached again
 * through a hard link is not listed again), the tree walked here with openat/fstatat and one
 * SPACE per file; a directory's line is its whole subtree, from one SPACE on it (the server
 * walks it). With -s: one line per PATH, one SPACE on it. Symlinks are not followed, other
 * mounts below a PATH are not entered.
 *
 * With more than one PATH, a last line for all of them together (SET_ADD on each, then
 * SET_RESULT): its Exclusive is what deleting every PATH would free, which no single line
 * says: two reflinked files each free nothing alone, together they free the extent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/dump/out.h"
#include "tools/prog.h"
#include "tools/share/cli.h"
#include "tools/share/commands.h"
#include "tools/share/mount_ioctl.h"
#include "tools/share/size.h"

/* Inodes with more than one link already listed in this PATH's walk (open addressing). */
struct ino_set {
	uint64_t *slot;      /* 0: free (no inode has number 0) */
	size_t cap, used;
};

struct du_run {
	bool summarize, raw, json;
	struct out o;
	int errors;
	bool header_done;
	struct ino_set seen;
	/* The set of all PATHs (more than one given): its id, a descriptor on its mount. */
	bool want_set, set_broken;
	uint64_t set;
	struct cowfs_file set_file;
};

static void du_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " du [-s] [--raw|--human] [--json] PATH...\n"
		"Show the space files and directory trees on a cowfs mount use, counting shared\n"
		"(reflinked, deduplicated, snapshotted) data right.\n"
		"\n"
		"  Total      bytes the files map: every reference counted, holes not\n"
		"  Exclusive  bytes of extents referenced only from this file or tree: what\n"
		"             deleting it frees (for a directory, its whole subtree: a file and its\n"
		"             reflink in the same directory are exclusive to the directory)\n"
		"  Shared     bytes it maps of extents also referenced from elsewhere\n"
		"  Pinned     bytes of its exclusive extents that no file maps any more: an extent\n"
		"             is freed only whole, so a reference to part of it keeps all of it\n"
		"\n"
		"With more than one PATH a last line is for all of them together; its Exclusive\n"
		"column is \"Freed if all deleted\": what deleting every PATH would free. That is\n"
		"not btrfs's Set shared (data shared among the files of each PATH, whether or not\n"
		"something else also references it): two reflinks of one file each free nothing\n"
		"alone, and both together free the extent unless a third file still shares it.\n"
		"\n"
		"  -s, --summarize   one line per PATH (default: one per file and directory below it)\n"
		"  --raw             sizes in bytes\n"
		"  --human           sizes like 1.00MiB, base 1024 (default; also --human-readable)\n"
		"  --json            one JSON object: {\"paths\": [{\"path\", \"type\", \"referenced\",\n"
		"                    \"exclusive\", \"shared\", \"pinned\", \"files\", \"extents\"}], and with\n"
		"                    more than one PATH \"set\": {\"paths\", the same figures,\n"
		"                    \"freed_if_all_deleted\"}}; sizes in bytes\n"
		"  -h, --help        show this help\n"
		"\n"
		"Exit status: 0 success, 1 some PATH failed (not on a cowfs mount, ...), 2 usage.\n");
}

/* ---- inodes seen ------------------------------------------------------------------------ */

static size_t ino_hash(uint64_t ino, size_t cap)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 7) & (cap - 1);
}

static int ino_set_grow(struct ino_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 256;
	uint64_t *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		size_t h = ino_hash(s->slot[i], cap);
		if (!s->slot[i])
			continue;
		while (slot[h])
			h = (h + 1) & (cap - 1);
		slot[h] = s->slot[i];
	}
	free(s->slot);
	s->slot = slot;
	s->cap = cap;
	return 0;
}

/* Returns 1 if ino was already in the set, 0 if it is added now, or -ENOMEM. */
static int ino_set_add(struct ino_set *s, uint64_t ino)
{
	size_t h;

	if ((s->used + 1) * 2 > s->cap && ino_set_grow(s) < 0)
		return -ENOMEM;
	for (h = ino_hash(ino, s->cap); s->slot[h]; h = (h + 1) & (s->cap - 1)) {
		if (s->slot[h] == ino)
			return 1;
	}
	s->slot[h] = ino;
	s->used++;
	return 0;
}

static void ino_set_clear(struct ino_set *s)
{
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* ---- figures and lines ------------------------------------------------------------------ */

static int space_query(int fd, uint32_t op, uint64_t set, struct cowfs_ioc_space *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->version = COWFS_SPACE_VERSION;
	sp->op = op;
	sp->set = set;
	return cowfs_ioctl(fd, COWFS_IOC_SPACE, sp);
}


static void print_figures(struct du_run *r, const struct cowfs_ioc_space *sp)
{
	out_u64(&r->o, "referenced", sp->referenced);
	out_u64(&r->o, "exclusive", sp->exclusive);
	out_u64(&r->o, "shared", sp->shared);
	out_u64(&r->o, "pinned", sp->pinned);
	out_u64(&r->o, "files", sp->files);
	out_u64(&r->o, "extents", sp->extents);
}

/* A line of the table, under its header the first time: no header when nothing follows. */
static void print_columns(struct du_run *r, const struct cowfs_ioc_space *sp, const char *name)
{
	char t[SIZE_STR_MAX], e[SIZE_STR_MAX], s[SIZE_STR_MAX], p[SIZE_STR_MAX];

	if (!r->header_done)
		printf("%10s  %10s  %10s  %10s  %s\n", "Total", "Exclusive", "Shared", "Pinned",
		       "Filename");
	r->header_done = true;
	printf("%10s  %10s  %10s  %10s  %s\n", size_format(sp->referenced, r->raw, t),
	       size_format(sp->exclusive, r->raw, e), size_format(sp->shared, r->raw, s),
	       size_format(sp->pinned, r->raw, p), name);
}

static void print_entry(struct du_run *r, const char *path, bool dir,
			const struct cowfs_ioc_space *sp)
{
	if (!r->json) {
		print_columns(r, sp, path);
		return;
	}
	out_obj_begin(&r->o, NULL, NULL, FRAME_LINE);
	out_qstr(&r->o, "path", path, strlen(path));
	out_str(&r->o, "type", dir ? "dir" : "file");
	print_figures(r, sp);
	out_obj_end(&r->o);
}

static void print_set(struct du_run *r, int paths, const struct cowfs_ioc_space *sp)
{
	char name[64], freed[SIZE_STR_MAX];

	if (!r->json) {
		snprintf(name, sizeof(name), "(all %d paths together)", paths);
		print_columns(r, sp, name);
		printf("Freed if all deleted: %s\n", size_format(sp->exclusive, r->raw, freed));
		return;
	}
	out_obj_begin(&r->o, "set", NULL, FRAME_LINE);
	out_u64(&r->o, "paths", (uint64_t)paths);
	print_figures(r, sp);
	out_u64(&r->o, "freed_if_all_deleted", sp->exclusive);
	out_obj_end(&r->o);
}

static void du_error(struct du_run *r, const char *path, int err)
{
	cowfs_perror("du", path, err);
	r->errors++;
}

/* ---- the walk --------------------------------------------------------------------------- */

static char *join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	char *p = malloc(n + strlen(name) + 2);

	if (p)
		sprintf(p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
	return p;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir but . and .., sorted so that the output is the same from run to run. */
static int read_names(DIR *dir, char ***names, size_t *count)
{
	size_t cap = 0, n = 0;
	char **v = NULL, **nv;
	struct dirent *de;

	errno = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
		}
		if (!(v[n] = strdup(de->d_name)))
			goto nomem;
		n++;
		errno = 0;
	}
	if (errno) {
		int ret = -errno;
		*names = v;
		*count = n;
		return ret;
	}
	qsort(v, n, sizeof(*v), by_name);
	*names = v;
	*count = n;
	return 0;
nomem:
	*names = v;
	*count = n;
	return -ENOMEM;
}

static void free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

static void du_tree(struct du_run *r, int dfd, const char *path, dev_t dev);

/* Whether the entry is one to list: a file or directory of this mount, a file not yet met. */
static int du_wanted(struct du_run *r, const struct stat *st, dev_t dev)
{
	if (st->st_dev != dev || !(S_ISDIR(st->st_mode) || S_ISREG(st->st_mode)))
		return 0;
	if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
		int seen = ino_set_add(&r->seen, (uint64_t)st->st_ino);
		return seen < 0 ? seen : !seen;
	}
	return 1;
}

/* One entry of a directory: a file's line, or a subdirectory's walk. */
static void du_entry(struct du_run *r, int dfd, const char *name, const char *path, dev_t dev)
{
	struct cowfs_ioc_space sp;
	struct stat st;
	int fd, ret;

	ret = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : du_wanted(r, &st, dev);
	if (ret <= 0) {
		if (ret < 0)
			du_error(r, path, ret);
		return;
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
		    (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
	if (fd < 0) {
		du_error(r, path, -errno);
	} else if (S_ISDIR(st.st_mode)) {
		du_tree(r, fd, path, dev);
	} else {
		ret = space_query(fd, COWFS_SPACE_ALONE, 0, &sp);
		close(fd);
		if (ret < 0)
			du_error(r, path, ret);
		else
			print_entry(r, path, false, &sp);
	}
}

/* The lines of everything below the directory open at dfd, then its own; closes dfd. */
static void du_tree(struct du_run *r, int dfd, const char *path, dev_t dev)
{
	struct cowfs_ioc_space sp;
	size_t count = 0;
	char **names;
	DIR *dir = fdopendir(dfd);
	int ret;

	if (!dir) {
		du_error(r, path, -errno);
		close(dfd);
		return;
	}
	ret = read_names(dir, &names, &count);
	if (ret < 0)
		du_error(r, path, ret);
	for (size_t i = 0; i < count; i++) {
		char *child = join_path(path, names[i]);
		if (!child) {
			du_error(r, path, -ENOMEM);
			break;
		}
		du_entry(r, dirfd(dir), names[i], child, dev);
		free(child);
	}
	free_names(names, count);
	ret = space_query(dirfd(dir), COWFS_SPACE_ALONE, 0, &sp);
	if (ret < 0)
		du_error(r, path, ret);
	else
		print_entry(r, path, true, &sp);
	closedir(dir);
}

/* ---- PATHs and their set ---------------------------------------------------------------- */

/* Add PATH (open as f) to the set of all PATHs; a failure leaves the set without a result. */
static void set_add(struct du_run *r, const char *path, struct cowfs_file *f)
{
	struct cowfs_ioc_space sp;
	int ret;

	if (r->set_broken)
		return;
	if (r->set_file.fd >= 0 && !cowfs_same_mount(&r->set_file, f)) {
		du_error(r, path, COWFS_ERR_OTHER_MOUNT);
		r->set_broken = true;
		return;
	}
	ret = space_query(f->fd, COWFS_SPACE_SET_ADD, r->set, &sp);
	if (ret < 0) {
		du_error(r, path, ret);
		r->set_broken = true;
		return;
	}
	r->set = sp.set;
	if (r->set_file.fd < 0) {
		r->set_file = *f;
		r->set_file.fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
		if (r->set_file.fd < 0) {
			/* The set stays in the server until the daemon ends: nothing to end it on. */
			du_error(r, path, -errno);
			r->set_broken = true;
		}
	}
}

static void du_path(struct du_run *r, const char *path)
{
	struct cowfs_ioc_space sp;
	struct cowfs_file f;
	int ret = cowfs_file_open(AT_FDCWD, path, O_RDONLY | O_NONBLOCK, 0, &f);

	if (ret == 0 && !S_ISREG(f.mode) && !S_ISDIR(f.mode)) {
		cowfs_file_close(&f);
		ret = -EINVAL;
	}
	if (ret < 0) {
		du_error(r, path, ret);
		r->set_broken = true;
		return;
	}
	if (r->want_set)
		set_add(r, path, &f);
	if (S_ISDIR(f.mode) && !r->summarize) {
		du_tree(r, f.fd, path, f.dev);
		ino_set_clear(&r->seen);
		return;
	}
	ret = space_query(f.fd, COWFS_SPACE_ALONE, 0, &sp);
	if (ret < 0)
		du_error(r, path, ret);
	else
		print_entry(r, path, S_ISDIR(f.mode), &sp);
	cowfs_file_close(&f);
}

/* The set's figures; a set left broken is still ended (SET_RESULT frees it in the server). */
static void du_set(struct du_run *r, int paths)
{
	struct cowfs_ioc_space sp;
	int ret;

	if (r->set_file.fd < 0)
		return;
	ret = space_query(r->set_file.fd, COWFS_SPACE_SET_RESULT, r->set, &sp);
	if (ret < 0 && !r->set_broken) {
		fprintf(stderr, PROG " du: the set of all paths: %s\n", cowfs_strerror(ret));
		r->errors++;
	} else if (ret == 0 && !r->set_broken) {
		print_set(r, paths, &sp);
	}
	cowfs_file_close(&r->set_file);
}

static int parse_args(int argc, char **argv, struct du_run *r)
{
	static const struct option longopts[] = {
		{ "summarize", no_argument, NULL, 's' },
		{ "raw", no_argument, NULL, 'r' },
		{ "human", no_argument, NULL, 'H' },
		{ "human-readable", no_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":sh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			r->summarize = true;
			break;
		case 'r':
		case 'H':
			r->raw = c == 'r';
			break;
		case 'j':
			r->json = true;
			break;
		case 'h':
			du_usage(stdout);
			return finish_output(stdout);
		default:
			return cli_option_error(argv, c, du_usage);
		}
	}
	if (optind == argc) {
		fprintf(stderr, PROG " du: no PATH given\n");
		du_usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}

int cmd_du(int argc, char **argv)
{
	struct du_run r = { .set_file = { .fd = -1 } };
	int paths, ret = parse_args(argc, argv, &r);

	if (ret >= 0)
		return ret;
	paths = argc - optind;
	r.want_set = paths > 1;
	out_init(&r.o, stdout, r.json);
	if (r.json) {
		out_obj_begin(&r.o, NULL, NULL, FRAME_BLOCK);
		out_arr_begin(&r.o, "paths", NULL);
	}
	for (int i = optind; i < argc; i++)
		du_path(&r, argv[i]);
	if (r.json)
		out_arr_end(&r.o);
	du_set(&r, paths);
	if (r.json) {
		out_obj_end(&r.o);
		fputc('\n', stdout);
	}
	ret = finish_output(stdout);
	return ret ? ret : (r.errors ? EXIT_FAIL : EXIT_OK);
}
