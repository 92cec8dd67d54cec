/*
 * The files `cowfs dedupe` scans: regular files named or (with -r) found below the directories
 * named, without following symbolic links below them, each inode once (hard links are one file),
 * only on the mount of the first PATH (dedupe cannot cross filesystems), none shorter than a chunk.
 */
#include "tools/dedupe/parts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


static int files_add(struct dd_files *files, const char *path, const struct stat *st)
{
	struct dd_file *f;

	if (files->n == files->cap) {
		size_t cap = files->cap ? files->cap * 2 : 256;
		struct dd_file *v = realloc(files->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		files->v = v;
		files->cap = cap;
	}
	f = &files->v[files->n];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if (!f->path)
		return -ENOMEM;
	f->ino = st->st_ino;
	f->size = (uint64_t)st->st_size;
	files->n++;
	return 0;
}

static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);
	size_t sep = a && dir[a - 1] == '/' ? 0 : 1;

	if (!p)
		return NULL;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + sep, name, b + 1);
	return p;
}

static int walk_entry(struct dd_files *files, const char *path, const struct stat *st, bool top,
		      bool recursive, uint64_t min_size);

static int walk_dir(struct dd_files *files, const char *path, bool recursive, uint64_t min_size)
{
	DIR *d = opendir(path);
	struct dirent *de;
	struct stat st;
	int ret = 0;

	if (!d) {
		fprintf(stderr, DD_PROG ": %s: %s (skipped)\n", path, strerror(errno));
		return 0;
	}
	/* One directory open at a time per level: depth is bounded by the open-file limit. */
	while (ret == 0 && (errno = 0, de = readdir(d))) {
		char *child;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		child = path_join(path, de->d_name);
		if (!child) {
			ret = -ENOMEM;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			fprintf(stderr, DD_PROG ": %s: %s (skipped)\n", child, strerror(errno));
		else
			ret = walk_entry(files, child, &st, false, recursive, min_size);
		free(child);
	}
	closedir(d);
	return ret;
}

static int walk_entry(struct dd_files *files, const char *path, const struct stat *st, bool top,
		      bool recursive, uint64_t min_size)
{
	if ((uint64_t)st->st_dev != files->dev) {
		if (top)
			fprintf(stderr, DD_PROG ": %s: not on the mount of the first PATH (skipped)\n",
				path);
		files->skipped_other_mount++;
		return 0;
	}
	if (S_ISDIR(st->st_mode)) {
		if (!recursive) {
			fprintf(stderr, DD_PROG ": %s: is a directory (use -r)\n", path);
			return -EISDIR;
		}
		return walk_dir(files, path, recursive, min_size);
	}
	if (!S_ISREG(st->st_mode)) {
		files->skipped_special++;
		return 0;
	}
	if ((uint64_t)st->st_size < min_size) {
		files->skipped_small++;
		return 0;
	}
	return files_add(files, path, st);
}

static int by_ino(const void *a, const void *b)
{
	const struct dd_file *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Hard links and a file named twice: keep the first of each inode. */
static void files_unique(struct dd_files *files)
{
	size_t w = 0;

	qsort(files->v, files->n, sizeof(files->v[0]), by_ino);
	for (size_t r = 0; r < files->n; r++) {
		if (w && files->v[w - 1].ino == files->v[r].ino) {
			free(files->v[r].path);
			continue;
		}
		files->v[w++] = files->v[r];
	}
	files->n = w;
}

/*
 * Files shorter than min_size (one chunk) have no chunk to share. -EISDIR: a directory without
 * -r (said on stderr); else 0 or a negative errno.
 */
int dd_walk(struct dd_files *files, char **paths, int n, bool recursive, uint64_t min_size)
{
	struct stat st;
	int ret = 0;

	memset(files, 0, sizeof(*files));
	for (int i = 0; i < n && ret == 0; i++) {
		if (stat(paths[i], &st) < 0) {
			fprintf(stderr, DD_PROG ": %s: %s\n", paths[i], strerror(errno));
			ret = -errno;
			break;
		}
		if (i == 0)
			files->dev = (uint64_t)st.st_dev;
		ret = walk_entry(files, paths[i], &st, true, recursive, min_size);
	}
	if (ret == 0)
		files_unique(files);
	return ret;
}

void dd_files_free(struct dd_files *files)
{
	for (size_t i = 0; i < files->n; i++)
		free(files->v[i].path);
	free(files->v);
	memset(files, 0, sizeof(*files));
}
