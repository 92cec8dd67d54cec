/*
 * mkfs.cowfs [options] IMAGE: write a new, empty cowfs to an image file or block device.
 *
 * IMAGE is created when missing (then -s SIZE is required); an existing regular file is
 * resized to -s SIZE, and otherwise, like a block device, used at its current size. An image
 * that already holds a cowfs or another known filesystem (or swap, or LUKS) is refused unless
 * -f is given. The formatting itself is cowfs_format(); then the image is opened read-write
 * once to make the root directory (inode_make_root, one commit), and finally read-only to
 * print the summary from the superblock actually written.
 *
 * Exit status: 0 success, 1 bad target / refusal / formatting failed, 2 usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/inode/inode.h"
#include "fs/lib/endian.h"
#include "fs/super/fs.h"
#include "fs/super/super.h"
#include "tools/version.h"

#define PROG "mkfs.cowfs"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct mkfs_args {
	const char *image;
	uint64_t size;          /* -s: 0 when not given */
	uint32_t sectorsize;
	uint32_t nodesize;
	const char *label;
	uint8_t uuid[16];
	bool uuid_set;
	bool force;
	bool quiet;
};

/* The opened target and what we learned about it. */
struct target {
	int fd;
	bool created;           /* we created it: remove it if formatting does not happen */
	bool blockdev;
	uint64_t size;          /* bytes, as found (before any resize) */
};

/* A filesystem signature: `len` bytes of `magic` at byte `off`. */
struct signature {
	const char *name;
	uint64_t off;
	const char *magic;
	size_t len;
};

static const struct signature signatures[] = {
	{ "cowfs", (64ull << 10) + 8, COWFS_MAGIC, 8 },
	{ "cowfs", (64ull << 20) + 8, COWFS_MAGIC, 8 },
	{ "cowfs", (256ull << 30) + 8, COWFS_MAGIC, 8 },
	{ "btrfs", (64ull << 10) + 64, "_BHRfS_M", 8 },
	{ "ext2/ext3/ext4", 1080, "\x53\xef", 2 },
	{ "xfs", 0, "XFSB", 4 },
	{ "LUKS", 0, "LUKS\xba\xbe", 6 },
	{ "swap", 4096 - 10, "SWAPSPACE2", 10 },
	{ "swap", 8192 - 10, "SWAPSPACE2", 10 },
	{ "swap", 16384 - 10, "SWAPSPACE2", 10 },
	{ "swap", 32768 - 10, "SWAPSPACE2", 10 },
	{ "swap", 65536 - 10, "SWAPSPACE2", 10 },
	{ "vfat", 54, "FAT12", 5 },
	{ "vfat", 54, "FAT16", 5 },
	{ "vfat", 82, "FAT32", 5 },
	{ "iso9660", 32769, "CD001", 5 },
	{ "ntfs", 3, "NTFS    ", 8 },
	{ "squashfs", 0, "hsqs", 4 },
};

/* Bytes below the primary superblock that we zero, so old signatures there do not linger. */
#define WIPE_HEAD COWFS_SUPER_OFFSET

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [options] IMAGE\n"
		"Write a new, empty cowfs filesystem to IMAGE (an image file or a block device).\n"
		"\n"
		"  -s, --size SIZE         create IMAGE (or resize an existing file) to SIZE bytes;\n"
		"                          suffixes K, M, G, T are powers of 1024\n"
		"  -b, --sectorsize SIZE   sector size (default 4096)\n"
		"  -n, --nodesize SIZE     tree node size, a power of two from 4096 to 65536\n"
		"                          (default %u)\n"
		"  -L, --label LABEL       filesystem label, at most %d bytes\n"
		"  -U, --uuid UUID         filesystem UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)\n"
		"  -f, --force             overwrite an existing filesystem\n"
		"  -q, --quiet             print nothing on success\n"
		"  -V, --version           print the version\n"
		"  -h, --help              show this help\n"
		"\n"
		"The smallest filesystem is %llu MiB.\n",
		BT_DEFAULT_NODESIZE, COWFS_LABEL_SIZE - 1, COWFS_MIN_SIZE >> 20);
}

/* Print a usage error and return the usage exit status. */
static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	return EXIT_USAGE;
}

/* "123", "16K", "1G": bytes, suffixes powers of 1024. Returns 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	char *end;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		const char *u = strchr(units, toupper((unsigned char)*end));
		if (!u || end[1])
			return -1;
		shift = 10 * (int)(u - units + 1);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The canonical 8-4-4-4-12 form. Returns 0 or -1. */
static int parse_uuid(const char *s, uint8_t out[16])
{
	int n = 0;

	if (strlen(s) != 36)
		return -1;
	for (int i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -1;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

static void format_uuid(const uint8_t u[16], char out[37])
{
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", u[i]);
	}
}

/* "1 GiB", "1.50 GiB", "512 B". */
static void human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int u = 0;

	while (u + 1 < (int)ARRAY_SIZE(units) && v >> (10 * (u + 1)))
		u++;
	if (u == 0 || (v & ((1ull << (10 * u)) - 1)) == 0)
		snprintf(buf, len, "%" PRIu64 " %s", v >> (10 * u), units[u]);
	else
		snprintf(buf, len, "%.2f %s", (double)v / (double)(1ull << (10 * u)), units[u]);
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Parse one option into `a`. Returns 0 or EXIT_USAGE (message printed). */
static int parse_option(int c, const char *arg, struct mkfs_args *a)
{
	uint64_t v;

	switch (c) {
	case 's':
		if (parse_size(arg, &v) < 0 || v == 0)
			return usage_error("invalid size '%s' (a number of bytes, optionally "
					   "followed by K, M, G or T)", arg);
		a->size = v;
		return 0;
	case 'b':
		if (parse_size(arg, &v) < 0 || !is_pow2(v) || v < 512 || v > BT_MAX_NODESIZE)
			return usage_error("invalid sector size '%s' (a power of two from 512 "
					   "to 65536)", arg);
		a->sectorsize = (uint32_t)v;
		return 0;
	case 'n':
		if (parse_size(arg, &v) < 0 || v > UINT32_MAX || !bt_nodesize_valid((uint32_t)v))
			return usage_error("invalid node size '%s' (a power of two from 4096 "
					   "to 65536)", arg);
		a->nodesize = (uint32_t)v;
		return 0;
	case 'L':
		if (strlen(arg) > COWFS_LABEL_SIZE - 1) {
			fprintf(stderr, PROG ": label is %zu bytes long; the limit is %d bytes\n",
				strlen(arg), COWFS_LABEL_SIZE - 1);
			return EXIT_USAGE;
		}
		a->label = arg;
		return 0;
	case 'U':
		if (parse_uuid(arg, a->uuid) < 0)
			return usage_error("invalid UUID '%s' (expected the form "
					   "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", arg);
		a->uuid_set = true;
		return 0;
	case 'f':
		a->force = true;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	default:
		fprintf(stderr, "Try '" PROG " --help' for more information.\n");
		return EXIT_USAGE;
	}
}

/* Fill `a` from the command line. Returns 0, EXIT_USAGE, or -1 for "help printed". */
static int parse_args(int argc, char **argv, struct mkfs_args *a)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "sectorsize", required_argument, NULL, 'b' },
		{ "nodesize", required_argument, NULL, 'n' },
		{ "label", required_argument, NULL, 'L' },
		{ "uuid", required_argument, NULL, 'U' },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	memset(a, 0, sizeof(*a));
	a->sectorsize = 4096;
	a->nodesize = BT_DEFAULT_NODESIZE;
	a->label = "";
	while ((c = getopt_long(argc, argv, "s:b:n:L:U:fqVh", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return -1;
		}
		if (c == 'V') {
			print_version(PROG);   /* a write error shows at main's flush */
			return -1;
		}
		if ((ret = parse_option(c, optarg, a)) != 0)
			return ret;
	}
	if (optind + 1 != argc)
		return usage_error("%s", optind >= argc ? "no IMAGE given" : "more than one IMAGE given");
	a->image = argv[optind];
	if (a->sectorsize > a->nodesize) {
		fprintf(stderr, PROG ": sector size %u is larger than node size %u\n",
			a->sectorsize, a->nodesize);
		return EXIT_USAGE;
	}
	return 0;
}

static int too_small(const char *image, uint64_t size)
{
	char h[32], m[32];

	human_size(size, h, sizeof(h));
	human_size(COWFS_MIN_SIZE, m, sizeof(m));
	fprintf(stderr, PROG ": %s: size %" PRIu64 " bytes (%s) is too small; the minimum is %llu "
		"bytes (%s)\n", image, size, h, COWFS_MIN_SIZE, m);
	return EXIT_FAIL;
}

/* Report a failed open/create of the target. */
static int open_error(const char *image, const char *what, int err)
{
	if (err == EACCES || err == EPERM || err == EROFS)
		fprintf(stderr, PROG ": %s: cannot %s: the target is read-only (%s)\n", image, what,
			strerror(err));
	else if (err == EBUSY)
		fprintf(stderr, PROG ": %s: cannot %s: device is in use (mounted?)\n", image, what);
	else
		fprintf(stderr, PROG ": %s: cannot %s: %s\n", image, what, strerror(err));
	return EXIT_FAIL;
}

/* Create a missing image of `size` bytes. */
static int create_target(const struct mkfs_args *a, struct target *t)
{
	t->fd = open(a->image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (t->fd < 0)
		return open_error(a->image, "create it", errno);
	t->created = true;
	if (ftruncate(t->fd, (off_t)a->size) < 0) {
		fprintf(stderr, PROG ": %s: cannot set size to %" PRIu64 " bytes: %s\n", a->image,
			a->size, strerror(errno));
		return EXIT_FAIL;
	}
	t->size = a->size;
	return EXIT_OK;
}

/* Open an existing image (regular file or block device) and learn its size. */
static int open_existing(const struct mkfs_args *a, const struct stat *st, struct target *t)
{
	int flags = O_RDWR | O_CLOEXEC;
	struct stat now;

	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		fprintf(stderr, PROG ": %s: not a regular file or block device\n", a->image);
		return EXIT_FAIL;
	}
	t->blockdev = S_ISBLK(st->st_mode);
	if (t->blockdev)
		flags |= O_EXCL;  /* fails with EBUSY while the device is mounted */
	t->fd = open(a->image, flags);
	if (t->fd < 0)
		return open_error(a->image, "open it for writing", errno);
	if (fstat(t->fd, &now) < 0 || now.st_ino != st->st_ino || now.st_dev != st->st_dev) {
		fprintf(stderr, PROG ": %s: changed while being opened\n", a->image);
		return EXIT_FAIL;
	}
	if (!t->blockdev) {
		t->size = (uint64_t)now.st_size;
		return EXIT_OK;
	}
	if (ioctl(t->fd, BLKGETSIZE64, &t->size) < 0) {
		fprintf(stderr, PROG ": %s: cannot get device size: %s\n", a->image, strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int open_target(const struct mkfs_args *a, struct target *t)
{
	struct stat st;

	t->fd = -1;
	if (stat(a->image, &st) == 0)
		return open_existing(a, &st, t);
	if (errno != ENOENT) {
		fprintf(stderr, PROG ": %s: %s\n", a->image, strerror(errno));
		return EXIT_FAIL;
	}
	if (!a->size) {
		fprintf(stderr, PROG ": %s does not exist; give -s SIZE to create it\n", a->image);
		return EXIT_USAGE;
	}
	return create_target(a, t);
}

/* Whether `s` is at its place in the first `size` bytes of fd: 1, 0, or -errno. */
static int probe_signature(int fd, uint64_t size, const struct signature *s)
{
	char buf[16];
	ssize_t n;

	if (s->off + s->len > size)
		return 0;
	n = pread(fd, buf, s->len, (off_t)s->off);
	if (n < 0)
		return -errno;
	return (size_t)n == s->len && memcmp(buf, s->magic, s->len) == 0;
}

/*
 * Look for a known signature. Returns 0 with *found NULL (none) or pointing at what was
 * found, or EXIT_FAIL after printing a read error.
 */
static int find_signature(const char *image, const struct target *t,
			  const struct signature **found)
{
	*found = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(signatures); i++) {
		int ret = probe_signature(t->fd, t->size, &signatures[i]);
		if (ret < 0) {
			fprintf(stderr, PROG ": %s: cannot read: %s\n", image, strerror(-ret));
			return EXIT_FAIL;
		}
		if (ret) {
			*found = &signatures[i];
			return EXIT_OK;
		}
	}
	return EXIT_OK;
}

/* Refuse to overwrite an existing filesystem without -f. */
static int check_signature(const struct mkfs_args *a, const struct target *t)
{
	const struct signature *s;
	int ret = find_signature(a->image, t, &s);

	if (ret != EXIT_OK || !s)
		return ret;
	if (!a->force) {
		fprintf(stderr, PROG ": %s already contains a%s %s %s (signature at byte %" PRIu64
			"); use -f to overwrite it\n", a->image,
			strchr("aeiouAEIOU", s->name[0]) ? "n" : "", s->name,
			strcmp(s->name, "swap") == 0 ? "area" : "filesystem", s->off);
		return EXIT_FAIL;
	}
	if (!a->quiet)
		printf("%s: overwriting the %s signature found at byte %" PRIu64 "\n", a->image,
		       s->name, s->off);
	return EXIT_OK;
}

/* Bring an existing regular file to the requested size (-s). */
static int resize_target(const struct mkfs_args *a, struct target *t)
{
	if (t->blockdev) {
		fprintf(stderr, PROG ": %s: -s cannot resize a block device (%" PRIu64 " bytes)\n",
			a->image, t->size);
		return EXIT_FAIL;
	}
	if (ftruncate(t->fd, (off_t)a->size) < 0) {
		fprintf(stderr, PROG ": %s: cannot resize to %" PRIu64 " bytes: %s\n", a->image,
			a->size, strerror(errno));
		return EXIT_FAIL;
	}
	t->size = a->size;
	return EXIT_OK;
}

static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const char zeros[4096];

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/*
 * Zero what an old filesystem may have left where readers look for signatures: the bytes
 * below the primary superblock (ext4, xfs, swap, FAT, iso9660, ...), and every cowfs
 * superblock position in the image (the new filesystem may not reach a mirror the old used).
 */
static int wipe_old_signatures(const char *image, const struct target *t)
{
	int ret = zero_range(t->fd, 0, MIN(t->size, WIPE_HEAD));

	for (int i = 0; ret == 0 && i < COWFS_SUPER_MIRRORS; i++) {
		if (cowfs_super_offsets[i] + COWFS_SUPER_SIZE <= t->size)
			ret = zero_range(t->fd, cowfs_super_offsets[i], COWFS_SUPER_SIZE);
	}
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: cannot clear old signatures: %s\n", image, strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/*
 * Keep other cowfs programs out while we look and wipe: they hold a flock on the image (a
 * mount or fsck --repair exclusively, a reader shared). cowfs_format() takes the lock itself
 * on its own open file, so ours is released just before it is called.
 */
static int lock_target(const char *image, const struct target *t)
{
	if (flock(t->fd, LOCK_EX | LOCK_NB) == 0)
		return EXIT_OK;
	if (errno == EWOULDBLOCK)
		fprintf(stderr, PROG ": %s is in use by another program (a mounted filesystem, "
			"fsck or dump?)\n", image);
	else
		fprintf(stderr, PROG ": %s: cannot lock: %s\n", image, strerror(errno));
	return EXIT_FAIL;
}

static int unlock_target(const char *image, const struct target *t)
{
	if (flock(t->fd, LOCK_UN) == 0)
		return EXIT_OK;
	fprintf(stderr, PROG ": %s: cannot unlock: %s\n", image, strerror(errno));
	return EXIT_FAIL;
}

/* Everything between opening the target and calling cowfs_format(). */
static int prepare_target(const struct mkfs_args *a, struct target *t)
{
	int ret = lock_target(a->image, t);

	if (ret != EXIT_OK || t->created)
		return ret;
	if ((ret = check_signature(a, t)) != EXIT_OK)
		return ret;
	if (a->size && a->size != t->size && (ret = resize_target(a, t)) != EXIT_OK)
		return ret;
	if (t->size < COWFS_MIN_SIZE)
		return too_small(a->image, t->size);
	return wipe_old_signatures(a->image, t);
}

static int format_image(const struct mkfs_args *a, uint8_t fsid[16])
{
	struct cowfs_mkfs_opts o;
	int ret;

	memset(&o, 0, sizeof(o));
	o.nodesize = a->nodesize;
	o.sectorsize = a->sectorsize;
	o.fsid_set = a->uuid_set;
	memcpy(o.fsid, a->uuid, sizeof(o.fsid));
	snprintf(o.label, sizeof(o.label), "%s", a->label);
	ret = cowfs_format(a->image, &o, fsid);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: formatting failed: %s\n", a->image, strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static void report_stderr(void *arg, uint64_t bytenr, const char *msg)
{
	fprintf(stderr, PROG ": %s: block %" PRIu64 ": %s\n", (const char *)arg, bytenr, msg);
}

/* Give the new default fs tree its root directory, committed before we report success. */
static int make_root_dir(const struct mkfs_args *a)
{
	struct cowfs_opts o = { .report = report_stderr, .report_arg = (void *)a->image,
				.commit_interval_ms = -1 };
	struct cowfs *fs;
	int ret = cowfs_open(a->image, &o, &fs);

	if (ret < 0) {
		fprintf(stderr, PROG ": %s: the new filesystem does not open: %s\n", a->image,
			strerror(-ret));
		return EXIT_FAIL;
	}
	ret = inode_make_root(fs, &fs->fs_root);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: making the root directory failed: %s\n", a->image,
			strerror(-ret));
		cowfs_close(fs);
		return EXIT_FAIL;
	}
	ret = cowfs_close(fs);     /* commits the root directory: generation 2 */
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: close failed: %s\n", a->image, strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static void print_summary(const char *image, const struct cowfs_super *sb)
{
	uint64_t total = get_le64(&sb->total_bytes);
	char h[32], uuid[37];
	const char *sep = "";

	human_size(total, h, sizeof(h));
	format_uuid(sb->fsid, uuid);
	printf("Created a cowfs filesystem\n");
	printf("  image:        %s\n", image);
	printf("  size:         %" PRIu64 " bytes (%s)\n", total, h);
	printf("  sector size:  %u\n", get_le32(&sb->sectorsize));
	printf("  node size:    %u\n", get_le32(&sb->nodesize));
	if (sb->label[0])
		printf("  label:        %.*s\n", COWFS_LABEL_SIZE, sb->label);
	else
		printf("  label:        (none)\n");
	printf("  UUID:         %s\n", uuid);
	printf("  generation:   %" PRIu64 "\n", get_le64(&sb->generation));
	printf("  superblocks:  ");
	for (int i = 0; i < COWFS_SUPER_MIRRORS; i++) {
		if (super_copy_fits(i, total)) {
			printf("%s%" PRIu64, sep, cowfs_super_offsets[i]);
			sep = ", ";
		}
	}
	printf("\n");
}

/* Open what we wrote, read-only, to check it and to print what is on disk. */
static int verify_and_summarize(const struct mkfs_args *a, const uint8_t fsid[16])
{
	struct cowfs_opts o = { .read_only = true, .report = report_stderr,
				.report_arg = (void *)a->image };
	struct cowfs *fs;
	int ret = cowfs_open(a->image, &o, &fs);

	if (ret < 0) {
		fprintf(stderr, PROG ": %s: the new filesystem does not open: %s\n", a->image,
			strerror(-ret));
		return EXIT_FAIL;
	}
	if (memcmp(fs->sb.fsid, fsid, 16) != 0) {
		fprintf(stderr, PROG ": %s: the superblock read back has another UUID\n", a->image);
		cowfs_close(fs);
		return EXIT_FAIL;
	}
	if (!a->quiet)
		print_summary(a->image, &fs->sb);
	ret = cowfs_close(fs);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: close failed: %s\n", a->image, strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing output: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct mkfs_args a;
	struct target t = { .fd = -1 };
	uint8_t fsid[16];
	int ret = parse_args(argc, argv, &a);

	if (ret < 0)
		return flush_stdout();
	if (ret != 0)
		return ret;
	if (a.size && a.size < COWFS_MIN_SIZE)
		return too_small(a.image, a.size);
	ret = open_target(&a, &t);
	if (ret == EXIT_OK)
		ret = prepare_target(&a, &t);
	if (ret == EXIT_OK)
		ret = unlock_target(a.image, &t);
	if (ret == EXIT_OK)
		ret = format_image(&a, fsid);
	if (ret != EXIT_OK && t.created && unlink(a.image) < 0)
		fprintf(stderr, PROG ": %s: cannot remove: %s\n", a.image, strerror(errno));
	/* Held open (exclusively, for a block device) until formatting is done. */
	if (t.fd >= 0 && close(t.fd) < 0 && ret == EXIT_OK) {
		fprintf(stderr, PROG ": %s: %s\n", a.image, strerror(errno));
		ret = EXIT_FAIL;
	}
	if (ret == EXIT_OK)
		ret = make_root_dir(&a);
	if (ret == EXIT_OK)
		ret = verify_and_summarize(&a, fsid);
	if (ret == EXIT_OK)
		ret = flush_stdout();
	return ret;
}
