/*
 * cowfs-run CMD [ARG...]: runs CMD with libcowfs-preload.so preloaded (docs/PRELOAD.md), so that
 * cp --reflink, xfs_io, filefrag, sync and other unmodified programs reach a cowfs mount's
 * clone, dedupe, FIEMAP and sync ioctls. The library is $COWFS_PRELOAD if set, else
 * ../lib/libcowfs-preload.so next to this program (the build tree's build/bin and build/lib, or
 * PREFIX/bin and PREFIX/lib once installed). Exit status: CMD's, or 126/127 as env(1) when CMD
 * cannot be run, 125 when the library is missing.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/version.h"

#define LIB_NAME "libcowfs-preload.so"

static void usage(FILE *out)
{
	fprintf(out, "usage: cowfs-run CMD [ARG...]   (or --help, --version)\n"
		     "  runs CMD with " LIB_NAME " in LD_PRELOAD ($COWFS_PRELOAD, else\n"
		     "  ../lib/" LIB_NAME " relative to this program)\n");
}

/* The library next to this program: <dir of /proc/self/exe>/../lib/libcowfs-preload.so. */
static int default_library(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(out, cap, "%s/../lib/%s", exe, LIB_NAME) >= cap)
		return -1;
	return 0;
}

/* out: PATH_MAX bytes (realpath). */
static int find_library(char *out)
{
	const char *given = getenv("COWFS_PRELOAD");
	char candidate[PATH_MAX];

	if (given && *given) {
		if ((size_t)snprintf(candidate, sizeof(candidate), "%s", given) >= sizeof(candidate))
			return -1;
	} else if (default_library(candidate, sizeof(candidate)) != 0) {
		return -1;
	}
	if (!realpath(candidate, out) || access(out, R_OK) != 0) {
		fprintf(stderr, "cowfs-run: %s: %s\n", candidate, strerror(errno));
		return -1;
	}
	/* LD_PRELOAD separates entries with spaces and colons. */
	if (strpbrk(out, " :")) {
		fprintf(stderr, "cowfs-run: %s: LD_PRELOAD cannot name a path with ' ' or ':'\n",
			out);
		return -1;
	}
	return 0;
}

/* Ours goes last: a sanitizer runtime already preloaded must stay first. */
static int set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *value;
	int ret;

	if (old && *old) {
		if (asprintf(&value, "%s %s", old, lib) < 0)
			return -1;
	} else {
		value = strdup(lib);
		if (!value)
			return -1;
	}
	ret = setenv("LD_PRELOAD", value, 1);
	free(value);
	return ret;
}

int main(int argc, char **argv)
{
	char lib[PATH_MAX];

	if (argc < 2) {
		usage(stderr);
		return 125;
	}
	if (strcmp(argv[1], "--version") == 0)
		return print_version("cowfs-run");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (find_library(lib) != 0)
		return 125;
	if (set_preload(lib) != 0) {
		perror("cowfs-run: LD_PRELOAD");
		return 125;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "cowfs-run: %s: %s\n", argv[1], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
