/*
 * meta-stress: a seeded stream of random metadata operations in one directory tree, for the
 * memory benchmark (bench/memory/run.sh), where fsstress would be used if it were installed.
 *
 *   meta-stress [-N ops] [-S seed] [-n names] [-d dirs] DIR
 *
 * DIR gets `dirs` subdirectories d00..; each operation picks a random name among `names` per
 * subdirectory and does one of: create + small write (0-16 KiB), unlink, rename (within or
 * across subdirectories, over an existing name or not), mkdir, rmdir, hard link, symlink,
 * setxattr (up to 4 KiB) / removexattr, truncate, chmod, stat, and a whole readdir of a
 * subdirectory. Errors that random names make expected (ENOENT, EEXIST, ENOTEMPTY, EISDIR,
 * ENOTDIR, ENODATA, ELOOP, EPERM on a hard link to a directory or an xattr on a symlink; ENOSPC
 * from setxattr, as ext4 gives once an inode's xattr block is full) are counted, not fatal; any other is
 * a failure (exit 1). At the end everything under DIR is removed. Prints one summary line.
 *
 * Built by bench/memory/run.sh (plain cc, no project headers).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

enum { OP_CREATE, OP_UNLINK, OP_RENAME, OP_MKDIR, OP_RMDIR, OP_LINK, OP_SYMLINK, OP_SETXATTR,
       OP_RMXATTR, OP_TRUNCATE, OP_CHMOD, OP_STAT, OP_READDIR, OP_KINDS };
static const char *const op_names[OP_KINDS] = {
	"create", "unlink", "rename", "mkdir", "rmdir", "link", "symlink", "setxattr",
	"removexattr", "truncate", "chmod", "stat", "readdir",
};
/* Relative weights: namespace churn first, then attributes. */
static const unsigned op_weight[OP_KINDS] = { 8, 6, 6, 2, 2, 2, 2, 4, 2, 2, 1, 2, 1 };

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned pick_op(void)
{
	unsigned total = 0, r, i;

	for (i = 0; i < OP_KINDS; i++)
		total += op_weight[i];
	r = (unsigned)(rnd() % total);
	for (i = 0; r >= op_weight[i]; i++)
		r -= op_weight[i];
	return i;
}

static unsigned ndirs = 8, nnames = 200;
static char buf[16384];

static void random_path(const char *root, char *out, size_t len)
{
	snprintf(out, len, "%s/d%02u/n%04u", root, (unsigned)(rnd() % ndirs),
		 (unsigned)(rnd() % nnames));
}

static int create_file(const char *path)
{
	size_t n = (size_t)(rnd() % sizeof(buf));
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	if (write(fd, buf, n) != (ssize_t)n) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return close(fd);
}

static int read_dir(const char *root)
{
	char path[4096];
	DIR *d;

	snprintf(path, sizeof(path), "%s/d%02u", root, (unsigned)(rnd() % ndirs));
	d = opendir(path);
	if (!d)
		return -1;
	while (readdir(d))
		;
	return closedir(d);
}

static int do_op(unsigned op, const char *root)
{
	char a[4096], b[4096], name[32];
	struct stat st;

	random_path(root, a, sizeof(a));
	random_path(root, b, sizeof(b));
	snprintf(name, sizeof(name), "user.x%u", (unsigned)(rnd() % 8));
	switch (op) {
	case OP_CREATE: return create_file(a);
	case OP_UNLINK: return unlink(a);
	case OP_RENAME: return rename(a, b);
	case OP_MKDIR: return mkdir(a, 0755);
	case OP_RMDIR: return rmdir(a);
	case OP_LINK: return link(a, b);
	case OP_SYMLINK: return symlink(a, b);
	case OP_SETXATTR: return lsetxattr(a, name, buf, (size_t)(rnd() % 4096), 0);
	case OP_RMXATTR: return lremovexattr(a, name);
	case OP_TRUNCATE: return truncate(a, (off_t)(rnd() % (64 << 10)));
	case OP_CHMOD: return chmod(a, 0600 | (mode_t)(rnd() % 0100));
	case OP_STAT: return lstat(a, &st);
	default: return read_dir(root);
	}
}

/* What random names make happen on any filesystem (and ext4's one block of xattrs per inode). */
static int expected(unsigned op, int err)
{
	if (op == OP_SETXATTR && err == ENOSPC)
		return 1;
	switch (err) {
	case ENOENT: case EEXIST: case ENOTEMPTY: case EISDIR: case ENOTDIR: case ENODATA:
	case EPERM: case ELOOP:
		return 1;
	default:
		return 0;
	}
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void usage(void)
{
	fprintf(stderr, "usage: meta-stress [-N ops] [-S seed] [-n names] [-d dirs] DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long ops = 100000, i, done[OP_KINDS] = { 0 }, expected_errs = 0;
	char path[4096];
	int c;

	rng_state = 1;
	while ((c = getopt(argc, argv, "N:S:n:d:")) != -1) {
		switch (c) {
		case 'N': ops = strtoul(optarg, NULL, 0); break;
		case 'S': rng_state = strtoull(optarg, NULL, 0); break;
		case 'n': nnames = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'd': ndirs = (unsigned)strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || !nnames || !ndirs || ndirs > 100 || nnames > 10000)
		usage();
	memset(buf, 'm', sizeof(buf));
	for (i = 0; i < ndirs; i++) {
		snprintf(path, sizeof(path), "%s/d%02lu", argv[optind], i);
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "meta-stress: mkdir %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < ops; i++) {
		unsigned op = pick_op();

		done[op]++;
		if (do_op(op, argv[optind]) == 0)
			continue;
		if (!expected(op, errno)) {
			fprintf(stderr, "meta-stress: operation %lu (%s): %s\n", i, op_names[op],
				strerror(errno));
			return 1;
		}
		expected_errs++;
	}
	for (i = 0; i < ndirs; i++) {
		snprintf(path, sizeof(path), "%s/d%02lu", argv[optind], i);
		if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0) {
			fprintf(stderr, "meta-stress: removing %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	printf("meta-stress: %lu operations (%lu create, %lu rename, %lu setxattr), %lu expected errors\n",
	       ops, done[OP_CREATE], done[OP_RENAME], done[OP_SETXATTR], expected_errs);
	return 0;
}
