/*
 * The helper of tests/integ/test_preload.sh: the standard calls libcowfs-preload.so maps, made
 * the way programs make them, with every result printed so that a run through the shim on a
 * cowfs mount can be compared line by line with a run on xfs (or without the shim).
 *
 *   preload_check errors DIR OTHERDIR   the clone/dedupe/FIEMAP corner cases, one line each;
 *                                       OTHERDIR is on another filesystem (for EXDEV)
 *   preload_check fileid FILE           exit 0 if the mount answers COWFS_IOC_FILE_ID
 *   preload_check generation FILE       the mount's committed generation (COWFS_IOC_STATUS)
 *   preload_check stats FILE            clone_calls clone_bytes dedupe_calls dedupe_bytes_same
 *   preload_check shared FILE           the bytes FIEMAP reports as FIEMAP_EXTENT_SHARED
 *   preload_check sync | syncfs FILE    sync(2) / syncfs(2), "ok" or the errno name
 *
 * Standalone (no libcowfs): it runs against a mounted directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/cowfs_ioctl.h"

#define BS 4096

static const char *dir, *other_dir;

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "ok";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EXDEV: return "EXDEV";
	case EISDIR: return "EISDIR";
	case EPERM: return "EPERM";
	case EFAULT: return "EFAULT";
	case EBADR: return "EBADR";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOTTY: return "ENOTTY";
	case EFBIG: return "EFBIG";
	case ETXTBSY: return "ETXTBSY";
	case EROFS: return "EROFS";
	case ENOMEM: return "ENOMEM";
	default: return strerror(e);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "preload_check: %s: %s\n", what, strerror(errno));
	exit(2);
}

static char *path_in(const char *d, const char *name)
{
	static char buf[4][4096];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", d, name);
	return p;
}

/* A file of `size` bytes whose content is a function of (seed, offset). */
static void make_file(const char *d, const char *name, size_t size, unsigned seed)
{
	char *buf = malloc(size ? size : 1);
	int fd = open(path_in(d, name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (!buf || fd < 0)
		die(name);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)((i / 512 + 1) * 131 + seed * 7 + i % 251);
	if (write(fd, buf, size) != (ssize_t)size)
		die("write");
	close(fd);
	free(buf);
}

static int open_in(const char *d, const char *name, int flags)
{
	int fd = open(path_in(d, name), flags, 0644);

	if (fd < 0)
		die(name);
	return fd;
}

static void report(const char *name, int ret)
{
	printf("%s: %s\n", name, errno_name(ret < 0 ? errno : 0));
}

/* Whether two files have the same bytes (the result line says "same" or "differ"). */
static const char *compare(const char *a, const char *b)
{
	char cmd[9000];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", path_in(dir, a), path_in(dir, b));
	return system(cmd) == 0 ? "same" : "differ";
}

static int clone_range(int dst, int src, uint64_t soff, uint64_t len, uint64_t doff)
{
	struct file_clone_range r = { .src_fd = src, .src_offset = soff, .src_length = len,
				      .dest_offset = doff };

	return ioctl(dst, FICLONERANGE, &r);
}

static void clone_case(const char *name, int src_flags, int dst_flags, uint64_t soff,
		       uint64_t len, uint64_t doff, size_t dst_size)
{
	make_file(dir, "cs", 5 * BS + 100, 1);
	make_file(dir, "cd", dst_size, 2);
	int s = open_in(dir, "cs", src_flags), d = open_in(dir, "cd", dst_flags);
	int ret = clone_range(d, s, soff, len, doff);

	printf("%s: %s size=%lld\n", name, errno_name(ret < 0 ? errno : 0),
	       (long long)lseek(d, 0, SEEK_END));
	close(s);
	close(d);
}

static void ficlone_cases(void)
{
	int s, d, ret;

	make_file(dir, "src", 3 * BS + 10, 1);
	make_file(dir, "empty", 0, 0);
	make_file(dir, "dst", 0, 0);
	s = open_in(dir, "src", O_RDONLY);
	d = open_in(dir, "dst", O_WRONLY);
	ret = ioctl(d, FICLONE, s);
	printf("ficlone: %s %s\n", errno_name(ret < 0 ? errno : 0), compare("src", "dst"));
	report("ficlone bad source fd", ioctl(d, FICLONE, -1));
	close(d);
	d = open_in(dir, "dst", O_RDONLY);
	report("ficlone destination read-only", ioctl(d, FICLONE, s));
	close(d);
	d = open_in(dir, "dst", O_WRONLY | O_APPEND);
	report("ficlone destination O_APPEND", ioctl(d, FICLONE, s));
	close(d);
	close(s);
	s = open_in(dir, "src", O_WRONLY);
	d = open_in(dir, "dst", O_RDWR);
	report("ficlone source write-only", ioctl(d, FICLONE, s));
	close(s);
	s = open(dir, O_RDONLY | O_DIRECTORY);
	report("ficlone source a directory", ioctl(d, FICLONE, s));
	report("ficlone destination a directory", ioctl(s, FICLONE, d));
	close(s);
	s = open_in(dir, "empty", O_RDONLY);
	ret = ioctl(d, FICLONE, s);
	printf("ficlone empty source: %s size=%lld\n", errno_name(ret < 0 ? errno : 0),
	       (long long)lseek(d, 0, SEEK_END));
	close(s);
	make_file(other_dir, "elsewhere", BS, 3);
	s = open_in(other_dir, "elsewhere", O_RDONLY);
	report("ficlone source on another filesystem", ioctl(d, FICLONE, s));
	close(s);
	report("ficlonerange NULL argument", ioctl(d, FICLONERANGE, NULL));
	close(d);
}

static void ficlonerange_cases(void)
{
	int fd, ret;

	clone_case("range aligned", O_RDONLY, O_RDWR, BS, 2 * BS, 0, 0);
	clone_case("range unaligned source offset", O_RDONLY, O_RDWR, 1, BS, 0, 0);
	clone_case("range unaligned destination offset", O_RDONLY, O_RDWR, 0, BS, 7, 0);
	clone_case("range unaligned length not at EOF", O_RDONLY, O_RDWR, 0, BS + 1, 0, 0);
	clone_case("range source offset at EOF", O_RDONLY, O_RDWR, 5 * BS + 100, BS, 0, 0);
	clone_case("range source offset past EOF", O_RDONLY, O_RDWR, 8 * BS, BS, 0, 0);
	clone_case("range past source EOF", O_RDONLY, O_RDWR, 4 * BS, 4 * BS, 0, 0);
	clone_case("range length 0 from 4096", O_RDONLY, O_RDWR, BS, 0, 0, 0);
	clone_case("range unaligned tail into the middle", O_RDONLY, O_RDWR, 4 * BS, BS + 100, 0,
		   8 * BS);
	clone_case("range unaligned tail past destination EOF", O_RDONLY, O_RDWR, 4 * BS,
		   BS + 100, 2 * BS, BS);
	clone_case("range grows destination", O_RDONLY, O_RDWR, 0, 2 * BS, 6 * BS, BS);
	clone_case("range negative offset", O_RDONLY, O_RDWR, (uint64_t)-4096, BS, 0, 0);
	clone_case("range offset overflow", O_RDONLY, O_RDWR, 0, (uint64_t)INT64_MAX, BS, 0);

	make_file(dir, "self", 8 * BS, 4);
	fd = open_in(dir, "self", O_RDWR);
	report("range same file overlapping", clone_range(fd, fd, 0, 2 * BS, BS));
	ret = clone_range(fd, fd, 0, 2 * BS, 4 * BS);
	printf("range same file apart: %s\n", errno_name(ret < 0 ? errno : 0));
	close(fd);
	{
		char a[2 * BS], b[2 * BS];
		fd = open_in(dir, "self", O_RDONLY);
		if (pread(fd, a, sizeof(a), 0) != (ssize_t)sizeof(a) ||
		    pread(fd, b, sizeof(b), 4 * BS) != (ssize_t)sizeof(b))
			die("pread self");
		printf("range same file apart content: %s\n", memcmp(a, b, sizeof(a)) ? "differ" : "same");
		close(fd);
	}
}

/* One FIDEDUPERANGE from src; results of each destination printed. */
static void dedupe(const char *name, int src, uint64_t off, uint64_t len, const int *dests,
		   const uint64_t *dest_offs, unsigned n, uint16_t reserved1)
{
	size_t size = sizeof(struct file_dedupe_range) + n * sizeof(struct file_dedupe_range_info);
	struct file_dedupe_range *r = calloc(1, size);
	int ret;

	r->src_offset = off;
	r->src_length = len;
	r->dest_count = (uint16_t)n;
	r->reserved1 = reserved1;
	for (unsigned i = 0; i < n; i++) {
		r->info[i].dest_fd = dests[i];
		r->info[i].dest_offset = dest_offs ? dest_offs[i] : off;
		r->info[i].status = 12345;
	}
	ret = ioctl(src, FIDEDUPERANGE, r);
	printf("%s: %s", name, errno_name(ret < 0 ? errno : 0));
	if (ret == 0) {
		/* Many destinations with one answer print once, with the count. */
		unsigned i = 0;
		while (i < n) {
			unsigned j = i;
			while (j < n && r->info[j].status == r->info[i].status &&
			       r->info[j].bytes_deduped == r->info[i].bytes_deduped)
				j++;
			printf(" [%u x status=%s bytes=%llu]", j - i,
			       r->info[i].status == FILE_DEDUPE_RANGE_SAME ? "same"
			       : r->info[i].status == FILE_DEDUPE_RANGE_DIFFERS ? "differs"
			       : r->info[i].status < 0 ? errno_name(-r->info[i].status) : "?",
			       (unsigned long long)r->info[i].bytes_deduped);
			i = j;
		}
	}
	printf("\n");
	free(r);
}

static void dedupe_cases(void)
{
	int s, d[70], other, dirfd, x;
	uint64_t offs[1];

	make_file(dir, "ds", 6 * BS + 100, 5);
	make_file(dir, "dsame", 6 * BS + 100, 5);
	make_file(dir, "ddiff", 6 * BS + 100, 6);
	make_file(dir, "dlong", 8 * BS, 5);
	s = open_in(dir, "ds", O_RDONLY);
	d[0] = open_in(dir, "dsame", O_RDWR);
	d[1] = open_in(dir, "ddiff", O_RDWR);
	d[2] = -1;
	dedupe("dedupe same", s, 0, 4 * BS, d, NULL, 1, 0);
	dedupe("dedupe differs", s, 0, 4 * BS, d + 1, NULL, 1, 0);
	dedupe("dedupe bad destination fd", s, 0, 4 * BS, d + 2, NULL, 1, 0);
	dedupe("dedupe three destinations", s, 0, 4 * BS, d, NULL, 3, 0);
	dedupe("dedupe to both EOFs", s, 4 * BS, 2 * BS + 100, d, NULL, 1, 0);
	dedupe("dedupe unaligned length not at EOF", s, 0, 2 * BS + 100, d, NULL, 1, 0);
	dedupe("dedupe less than a block, not at EOF", s, 0, 100, d, NULL, 1, 0);
	dedupe("dedupe length 0", s, 0, 0, d, NULL, 1, 0);
	dedupe("dedupe unaligned offset", s, 1, BS, d, NULL, 1, 0);
	dedupe("dedupe past source EOF", s, 4 * BS, 4 * BS, d, NULL, 1, 0);
	dedupe("dedupe reserved1 set", s, 0, BS, d, NULL, 1, 1);
	x = open_in(dir, "dlong", O_RDWR);
	offs[0] = 6 * BS;
	dedupe("dedupe destination range past its EOF", s, 0, 4 * BS, &x, offs, 1, 0);
	close(x);
	offs[0] = 0;
	x = open_in(dir, "ds", O_RDWR);
	dedupe("dedupe same file same range", s, 0, 2 * BS, &x, offs, 1, 0);
	close(x);
	make_file(other_dir, "dother", 6 * BS + 100, 5);
	other = open_in(other_dir, "dother", O_RDWR);
	dedupe("dedupe destination on another filesystem", s, 0, BS, &other, NULL, 1, 0);
	close(other);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	dedupe("dedupe destination a directory", s, 0, BS, &dirfd, NULL, 1, 0);
	close(dirfd);
	x = open_in(dir, "ds", O_WRONLY);
	dedupe("dedupe source write-only", x, 0, BS, d, NULL, 1, 0);
	close(x);
	for (int i = 0; i < 70; i++) {
		char name[32];
		snprintf(name, sizeof(name), "many%d", i);
		make_file(dir, name, 6 * BS + 100, 5);
		d[i] = open_in(dir, name, O_RDWR);
	}
	dedupe("dedupe 70 destinations", s, 0, 6 * BS + 100, d, NULL, 70, 0);
	for (int i = 0; i < 70; i++) {
		char name[32];
		close(d[i]);
		snprintf(name, sizeof(name), "many%d", i);
		unlink(path_in(dir, name));
	}
	close(s);
}

/* Over COWFS_DEDUPE_MAX_LEN: 20 MiB, the same; then with its last block different. */
static void dedupe_long_cases(void)
{
	size_t size = 20u << 20;
	int s, d;

	make_file(dir, "big1", size, 7);
	make_file(dir, "big2", size, 7);
	s = open_in(dir, "big1", O_RDONLY);
	d = open_in(dir, "big2", O_RDWR);
	dedupe("dedupe 20 MiB same", s, 0, size, &d, NULL, 1, 0);
	if (pwrite(d, "x", 1, size - 10) != 1)
		die("pwrite big2");
	dedupe("dedupe 20 MiB, last block differs", s, 0, size, &d, NULL, 1, 0);
	close(s);
	close(d);
	unlink(path_in(dir, "big1"));
	unlink(path_in(dir, "big2"));
}

static void fiemap_case(const char *name, int fd, uint64_t start, uint64_t len, uint32_t flags,
			uint32_t count)
{
	struct fiemap *fm = calloc(1, sizeof(*fm) + count * sizeof(struct fiemap_extent));
	int ret;

	fm->fm_start = start;
	fm->fm_length = len;
	fm->fm_flags = flags;
	fm->fm_extent_count = count;
	ret = ioctl(fd, FS_IOC_FIEMAP, fm);
	printf("%s: %s flags=0x%x mapped=%u\n", name, errno_name(ret < 0 ? errno : 0),
	       fm->fm_flags, fm->fm_mapped_extents);
	free(fm);
}

static void fiemap_cases(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char *mem;
	struct fiemap *fm;
	int fd, dfd, ret;

	make_file(dir, "fm", 4 * BS, 8);
	fd = open_in(dir, "fm", O_RDONLY);
	fsync(fd);
	fiemap_case("fiemap count only", fd, 0, ~0ull, 0, 0);
	fiemap_case("fiemap one slot", fd, 0, ~0ull, 0, 1);
	fiemap_case("fiemap sync", fd, 0, ~0ull, FIEMAP_FLAG_SYNC, 8);
	fiemap_case("fiemap length 0", fd, 0, 0, 0, 8);
	fiemap_case("fiemap unknown flag 0x8", fd, 0, ~0ull, 0x8, 8);
	fiemap_case("fiemap unknown flags 0x8|sync", fd, 0, ~0ull, 0x8 | FIEMAP_FLAG_SYNC, 8);
	fiemap_case("fiemap past EOF", fd, 100 * BS, BS, 0, 8);
	/* xfs maps its attribute fork; btrfs and cowfs have no extents for xattrs: EBADR. */
	fiemap_case("fiemap xattr flag", fd, 0, ~0ull, FIEMAP_FLAG_XATTR, 8);
	{
		/* Refused before the array is looked at: only the header is passed. */
		struct fiemap h = { .fm_length = ~0ull,
				    .fm_extent_count = UINT32_MAX / sizeof(struct fiemap_extent) + 1 };
		report("fiemap too many extents", ioctl(fd, FS_IOC_FIEMAP, &h));
	}
	/* The extents array runs into an unmapped page. */
	mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	munmap(mem + page, page);
	fm = (struct fiemap *)(mem + page - sizeof(*fm));
	memset(fm, 0, sizeof(*fm));
	fm->fm_length = ~0ull;
	fm->fm_extent_count = 4;
	ret = ioctl(fd, FS_IOC_FIEMAP, fm);
	report("fiemap extents not writable", ret);
	report("fiemap NULL argument", ioctl(fd, FS_IOC_FIEMAP, NULL));
	munmap(mem, page);
	close(fd);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	fiemap_case("fiemap directory", dfd, 0, ~0ull, 0, 8);
	close(dfd);
}

static int cmd_errors(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	ficlone_cases();
	ficlonerange_cases();
	dedupe_cases();
	dedupe_long_cases();
	fiemap_cases();
	report("syncfs bad fd", syncfs(-1));
	return 0;
}

static int open_arg(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die(path);
	return fd;
}

static int cmd_fileid(const char *path)
{
	struct cowfs_ioc_file_id id;
	int fd = open_arg(path);

	memset(&id, 0, sizeof(id));
	if (ioctl(fd, COWFS_IOC_FILE_ID, &id) != 0) {
		printf("%s\n", errno_name(errno));
		return 1;
	}
	printf("subvol=%llu ino=%llu generation=%llu blocksize=%u\n",
	       (unsigned long long)id.file.subvol, (unsigned long long)id.file.ino,
	       (unsigned long long)id.file.generation, id.blocksize);
	return 0;
}

static int cmd_generation(const char *path)
{
	struct cowfs_ioc_status st;
	int fd = open_arg(path);

	if (ioctl(fd, COWFS_IOC_STATUS, &st) != 0)
		die("COWFS_IOC_STATUS");
	printf("%llu\n", (unsigned long long)st.generation);
	return 0;
}

static int cmd_stats(const char *path)
{
	struct cowfs_ioc_stats st;
	int fd = open_arg(path);

	if (ioctl(fd, COWFS_IOC_STATS, &st) != 0)
		die("COWFS_IOC_STATS");
	printf("%llu %llu %llu %llu\n", (unsigned long long)st.clone_calls,
	       (unsigned long long)st.clone_bytes, (unsigned long long)st.dedupe_calls,
	       (unsigned long long)st.dedupe_bytes_same);
	return 0;
}

static int cmd_shared(const char *path)
{
	enum { N = 256 };
	struct fiemap *fm = calloc(1, sizeof(*fm) + N * sizeof(struct fiemap_extent));
	uint64_t shared = 0, start = 0;
	int fd = open_arg(path);

	for (;;) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = ~0ull - start;
		fm->fm_extent_count = N;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0)
			die("FS_IOC_FIEMAP");
		if (fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++)
			if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED)
				shared += fm->fm_extents[i].fe_length;
		struct fiemap_extent *last = &fm->fm_extents[fm->fm_mapped_extents - 1];
		if (last->fe_flags & FIEMAP_EXTENT_LAST)
			break;
		start = last->fe_logical + last->fe_length;
	}
	printf("%llu\n", (unsigned long long)shared);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "errors") == 0) {
		dir = argv[2];
		other_dir = argv[3];
		return cmd_errors();
	}
	if (argc == 3 && strcmp(argv[1], "fileid") == 0)
		return cmd_fileid(argv[2]);
	if (argc == 3 && strcmp(argv[1], "generation") == 0)
		return cmd_generation(argv[2]);
	if (argc == 3 && strcmp(argv[1], "stats") == 0)
		return cmd_stats(argv[2]);
	if (argc == 3 && strcmp(argv[1], "shared") == 0)
		return cmd_shared(argv[2]);
	if (argc == 2 && strcmp(argv[1], "sync") == 0) {
		sync();
		printf("ok\n");
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "syncfs") == 0) {
		int fd = open_arg(argv[2]), ret = syncfs(fd);
		printf("%s\n", errno_name(ret < 0 ? errno : 0));
		return ret < 0;
	}
	fprintf(stderr, "usage: preload_check errors DIR OTHERDIR | fileid|generation|stats|shared "
			"FILE | sync | syncfs FILE\n");
	return 2;
}
