/*
 * The space figures `cowfs dedupe` reports, taken before and after the run: the mount's free
 * space (statvfs) and COWFS_IOC_SPACE over the PATHs as one set, both after a COWFS_IOC_SYNC,
 * since what the running transaction frees is counted once it commits.
 */
#include "tools/dedupe/parts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int dd_probe_open(struct dd_space_probe *p, char **paths, int n)
{
	memset(p, 0, sizeof(*p));
	p->paths = calloc((size_t)n, sizeof(*p->paths));
	if (!p->paths)
		return -ENOMEM;
	p->mnt.fd = -1;
	return cowfs_file_open(AT_FDCWD, paths[0], O_RDONLY, 0, &p->mnt);
}

/* The PATHs on the mount (st_dev `dev`): the set COWFS_IOC_SPACE measures. */
void dd_probe_paths(struct dd_space_probe *p, char **paths, int n, uint64_t dev)
{
	struct stat st;

	p->npaths = 0;
	for (int i = 0; i < n; i++) {
		if (stat(paths[i], &st) == 0 && (uint64_t)st.st_dev == dev)
			p->paths[p->npaths++] = paths[i];
	}
}

void dd_probe_close(struct dd_space_probe *p)
{
	cowfs_file_close(&p->mnt);
	free(p->paths);
	p->paths = NULL;
}

static int space_query(const char *path, uint32_t op, uint64_t set, struct cowfs_ioc_space *sp)
{
	struct cowfs_file f;
	int ret = cowfs_file_open(AT_FDCWD, path, O_RDONLY, 0, &f);

	if (ret < 0)
		return ret;
	memset(sp, 0, sizeof(*sp));
	sp->version = COWFS_SPACE_VERSION;
	sp->op = op;
	sp->set = set;
	ret = cowfs_ioctl(f.fd, COWFS_IOC_SPACE, sp);
	cowfs_file_close(&f);
	return ret;
}

/* The figures of all the PATHs together (one set: what they share among them counts once). */
static int space_of_paths(char **paths, int n, struct cowfs_ioc_space *out)
{
	uint64_t set = 0;
	int ret;

	for (int i = 0; i < n; i++) {
		ret = space_query(paths[i], COWFS_SPACE_SET_ADD, set, out);
		if (ret < 0)
			return ret;
		set = out->set;
	}
	ret = space_query(paths[0], COWFS_SPACE_SET_RESULT, set, out);
	if (ret == 0 && out->version != COWFS_SPACE_VERSION)
		ret = -EPROTO;
	return ret;
}

static int free_bytes(int fd, uint64_t *out)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return -errno;
	*out = (uint64_t)sv.f_bfree * sv.f_frsize;
	return 0;
}

void dd_measure(const struct dd_space_probe *p, struct dd_space *out)
{
	memset(out, 0, sizeof(*out));
	out->free_known = cowfs_ioctl(p->mnt.fd, COWFS_IOC_SYNC, NULL) == 0 &&
			  free_bytes(p->mnt.fd, &out->free_bytes) == 0;
	out->space_known = p->npaths > 0 && space_of_paths(p->paths, p->npaths, &out->space) == 0;
}
