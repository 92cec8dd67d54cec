/*
 * DIR/NAME as the subvolume ioctls want it (parts.h): they are issued on the directory and
 * name one entry of it, so a path is cut at its last component, the way rmdir(2) and mkdir(2)
 * see it (trailing slashes ignored).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/subvol/parts.h"

/* Copy n bytes of s into buf as a string: -ENAMETOOLONG when they do not fit. */
static int copy_part(const char *s, size_t n, char *buf, size_t size)
{
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

int sv_split(const char *path, char *dir, size_t dir_size,
	     char name[COWFS_SUBVOL_NAME_MAX + 1])
{
	size_t end = strlen(path), start, dir_end;
	int ret;

	while (end > 0 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (end == start)
		return -EINVAL;
	ret = copy_part(path + start, end - start, name, COWFS_SUBVOL_NAME_MAX + 1);
	if (ret < 0)
		return ret;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	dir_end = start;
	while (dir_end > 1 && path[dir_end - 1] == '/')
		dir_end--;
	if (dir_end == 0)
		return copy_part(".", 1, dir, dir_size);
	return copy_part(path, dir_end, dir, dir_size);
}

int sv_split_resolved(const char *path, char *dir, size_t dir_size,
		      char name[COWFS_SUBVOL_NAME_MAX + 1])
{
	char *real;
	int ret = sv_split(path, dir, dir_size, name);

	if (ret != -EINVAL)
		return ret;
	/* ".", ".." or "a/..": the directory it names, by its own name in its parent. */
	real = realpath(path, NULL);
	if (!real)
		return -errno;
	ret = sv_split(real, dir, dir_size, name);
	free(real);
	return ret;
}

int sv_join(const char *dir, const char *name, char *buf, size_t size)
{
	size_t n = strlen(dir);
	int len;

	if (!strcmp(dir, "."))
		len = snprintf(buf, size, "%s", name);
	else
		len = snprintf(buf, size, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

bool sv_parse_id(const char *s, uint64_t *id)
{
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return false;
	errno = 0;
	*id = strtoull(s, &end, 10);
	return errno == 0 && *id != 0;
}
