/*
 * sync(2) and syncfs(2) never reach a FUSE server: the kernel writes its dirty pages to the
 * server and stops there, so cowfs would commit only on its own schedule. The shim adds
 * COWFS_IOC_SYNC (commit and wait): on the file's mount for syncfs, on every cowfs mount of the
 * process's mount namespace (/proc/self/mountinfo, fstype fuse.cowfs) for sync.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tools/preload/shim.h"

#define COWFS_FSTYPE "fuse.cowfs"
#define MAX_MOUNTS 256

int shim_cowfs_sync(int fd)
{
	struct cowfs_ioc_status st;

	if (shim_real_ioctl(fd, COWFS_IOC_SYNC, NULL) == 0)
		return 0;
	if (errno != EROFS)
		return -errno;
	/* Read-only: nothing to commit, as syncfs on a read-only mount; after an abort the writes
	 * since the last commit are lost, which syncfs reports as EIO. */
	memset(&st, 0, sizeof(st));
	if (shim_real_ioctl(fd, COWFS_IOC_STATUS, &st) == 0 && (st.flags & COWFS_STATUS_ABORTED))
		return -EIO;
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* One mountinfo line: its device and mount point if its type is fuse.cowfs. */
static bool parse_cowfs_mount(char *line, dev_t *dev, char **mnt)
{
	unsigned maj, min;
	char *sep = strstr(line, " - "), *fields[5], *save = NULL, *p = line;
	int i;

	if (!sep)
		return false;
	*sep = '\0';
	for (i = 0; i < 5; i++, p = NULL) {
		fields[i] = strtok_r(p, " ", &save);
		if (!fields[i])
			return false;
	}
	if (sscanf(fields[2], "%u:%u", &maj, &min) != 2)
		return false;
	if (strncmp(sep + 3, COWFS_FSTYPE " ", strlen(COWFS_FSTYPE) + 1) != 0)
		return false;
	unescape(fields[4]);
	*dev = makedev(maj, min);
	*mnt = fields[4];
	return true;
}

/* Commits the mount at mnt if it is one (the server answers FILE_ID): fstype alone is a name. */
static int sync_mount_point(const char *mnt)
{
	struct shim_file f;
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK), ret = -ENOENT;

	if (fd < 0)
		return -errno;
	if (shim_describe(fd, false, &f) == 0 && shim_on_cowfs(&f))
		ret = shim_cowfs_sync(fd);
	close(fd);
	return ret;
}

/* COWFS_IOC_SYNC on each cowfs mount (once per device), or on the one of `only` if want_one. */
static int sync_mounts(bool want_one, dev_t only)
{
	dev_t done[MAX_MOUNTS], dev;
	unsigned ndone = 0, i;
	char *line = NULL, *mnt;
	size_t cap = 0;
	int ret = want_one ? -ENOENT : 0;
	FILE *mi = fopen("/proc/self/mountinfo", "re");

	if (!mi)
		return -errno;
	while (getline(&line, &cap, mi) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (!parse_cowfs_mount(line, &dev, &mnt) || (want_one && dev != only))
			continue;
		for (i = 0; i < ndone && done[i] != dev; i++)
			;
		if (i < ndone)
			continue;
		/* A mount this process cannot open (no allow_other) is not its to sync. */
		int r = sync_mount_point(mnt);
		if (r == 0 || want_one)
			ret = r;
		if (r == 0 && ndone < MAX_MOUNTS)
			done[ndone++] = dev;
		if (r == 0 && want_one)
			break;
	}
	free(line);
	fclose(mi);
	return ret;
}

void shim_sync_all_mounts(void)
{
	sync_mounts(false, 0);
}

int shim_sync_mount_of(dev_t dev)
{
	return sync_mounts(true, dev);
}
