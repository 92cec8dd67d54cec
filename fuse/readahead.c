/*
 * The kernel's read-ahead on this mount (the readahead= option).
 *
 * FUSE offers no way to ask for more read-ahead than the kernel's default: at INIT the kernel
 * sends its current window (128 KiB) and takes the smaller of that and the reply. The window
 * lives in the mount's backing device info, /sys/class/bdi/MAJ:MIN/read_ahead_kb, which root
 * may set like for any block device (blockdev --setra). It has to be set after the INIT reply
 * has been processed, or the reply would shrink it again; the first open is after that for
 * certain, since the kernel holds every request back until INIT is done.
 *
 * MAJ:MIN is the mount's anonymous device number, read from /proc/self/mountinfo: stat() of
 * the mount point would be a request to this very server, which may have no thread free.
 */
#include "fuse/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void mountinfo_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/*
 * The "MAJ:MIN" of the topmost fuse.cowfs mount on MOUNTPOINT, into dev (size n).
 * Returns 0 or -ENOENT.
 */
static int mount_devno(const char *mountpoint, char *dev, size_t n)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *fields[5], *sep, *type;
		int i;

		for (i = 0; i < 5; i++) {
			fields[i] = strtok_r(i ? NULL : line, " ", &save);
			if (!fields[i])
				break;
		}
		if (i < 5)
			continue;
		/* Optional fields end at " - ", then the filesystem type. */
		sep = strstr(save ? save : "", " - ");
		type = sep ? strtok_r(sep + 3, " ", &save) : NULL;
		if (!type || strcmp(type, "fuse.cowfs") != 0)
			continue;
		mountinfo_unescape(fields[4]);
		if (strcmp(fields[4], mountpoint) == 0 && strlen(fields[2]) < n) {
			strcpy(dev, fields[2]);   /* a later line is a mount on top: keep going */
			ret = 0;
		}
	}
	fclose(f);
	return ret;
}

static int readahead_set(const char *dev, size_t bytes)
{
	char path[64], val[32];
	int fd, len, ret = 0;

	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	len = snprintf(val, sizeof(val), "%zu\n", bytes >> 10);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, (size_t)len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

void readahead_raise_once(struct server *s)
{
	char dev[32];
	int ret;

	if (s->readahead_bytes == 0 || atomic_exchange(&s->readahead_done, true))
		return;
	ret = mount_devno(s->mountpoint, dev, sizeof(dev));
	if (ret == 0)
		ret = readahead_set(dev, s->readahead_bytes);
	/* Not root, or sysfs not mounted: reads still work, in smaller requests. */
	if (ret < 0 && ret != -EACCES && ret != -EPERM)
		server_say(s, "setting read-ahead on %s: %s", s->mountpoint, strerror(-ret));
}
