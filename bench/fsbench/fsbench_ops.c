/*
 * fsbench-ops: the timed operations of the filesystem peer benchmark that fio does not cover.
 * Every subcommand prints one JSON object on stdout and exits 0 when the operation succeeded,
 * 1 when it failed (the JSON then has "ok": false and "error"), 2 on a usage error.
 *
 *   fsbench-ops probe  DIR            create, write 4 KiB, fsync, read back, stat, unlink a file
 *   fsbench-ops create DIR N          N empty files DIR/f000000.. (open O_CREAT|O_EXCL + close);
 *                                     then syncfs, timed separately ("sync_s")
 *   fsbench-ops stat   DIR N          fstatat every file, by name, creation order
 *   fsbench-ops unlink DIR N          unlinkat every file, creation order
 *   fsbench-ops fsync  FILE N BS      new FILE; N x (append BS bytes + fsync), each pair timed:
 *                                     p50/p99/mean/max in microseconds
 *   fsbench-ops cp     SRC DST [--reflink]
 *                                     fork+exec `cp [--reflink=always] SRC DST`, then open DST
 *                                     and fsync it: wall time of both together
 *
 * Times are CLOCK_MONOTONIC. Built by bench/fsbench/run.sh itself (plain cc, no project headers).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Print a JSON string (quotes included), escaping what JSON needs. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int fail(const char *op, const char *what, long index, int err)
{
	char msg[512];

	if (index >= 0)
		snprintf(msg, sizeof(msg), "%s %s (item %ld): %s", op, what, index, strerror(err));
	else
		snprintf(msg, sizeof(msg), "%s %s: %s", op, what, strerror(err));
	printf("{\"op\": ");
	json_str(op);
	printf(", \"ok\": false, \"errno\": %d, \"error\": ", err);
	json_str(msg);
	printf("}\n");
	return 1;
}

static long parse_count(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v <= 0) {
		fprintf(stderr, "fsbench-ops: bad count '%s'\n", s);
		exit(2);
	}
	return v;
}

static void name_of(char *buf, size_t len, long i)
{
	snprintf(buf, len, "f%06ld", i);
}

static int open_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0) {
		fail("open", dir, -1, errno);
		exit(1);
	}
	return fd;
}

static void print_ops(const char *op, long n, double secs)
{
	printf("{\"op\": \"%s\", \"ok\": true, \"n\": %ld, \"secs\": %.6f, \"ops_per_s\": %.1f",
	       op, n, secs, secs > 0 ? (double)n / secs : 0.0);
}

static int cmd_create(const char *dir, long n)
{
	int dfd = open_dir(dir);
	char name[32];
	double t0, t1, t2;

	t0 = now();
	for (long i = 0; i < n; i++) {
		name_of(name, sizeof(name), i);
		int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail("create", name, i, errno);
		if (close(fd) < 0)
			return fail("create", "close", i, errno);
	}
	t1 = now();
	if (syncfs(dfd) < 0)
		return fail("create", "syncfs", n, errno);
	t2 = now();
	print_ops("create", n, t1 - t0);
	printf(", \"sync_s\": %.6f}\n", t2 - t1);
	close(dfd);
	return 0;
}

static int cmd_stat(const char *dir, long n)
{
	int dfd = open_dir(dir);
	char name[32];
	struct stat st;
	double t0, t1;

	t0 = now();
	for (long i = 0; i < n; i++) {
		name_of(name, sizeof(name), i);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return fail("stat", name, i, errno);
		if (!S_ISREG(st.st_mode) || st.st_size != 0)
			return fail("stat", "not an empty regular file", i, EIO);
	}
	t1 = now();
	print_ops("stat", n, t1 - t0);
	printf("}\n");
	close(dfd);
	return 0;
}

static int cmd_unlink(const char *dir, long n)
{
	int dfd = open_dir(dir);
	char name[32];
	double t0, t1;

	t0 = now();
	for (long i = 0; i < n; i++) {
		name_of(name, sizeof(name), i);
		if (unlinkat(dfd, name, 0) < 0)
			return fail("unlink", name, i, errno);
	}
	t1 = now();
	print_ops("unlink", n, t1 - t0);
	printf("}\n");
	close(dfd);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, long n, double p)
{
	long rank = (long)(p / 100.0 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static int cmd_fsync(const char *path, long n, long bs)
{
	double *lat = calloc((size_t)n, sizeof(*lat));
	char *buf = malloc((size_t)bs);
	double sum = 0, t_all;
	int fd;

	if (!lat || !buf)
		return fail("fsync", "malloc", -1, ENOMEM);
	memset(buf, 0xa5, (size_t)bs);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("fsync", path, -1, errno);
	if (fsync(fd) < 0)   /* the creation itself is not part of the first pair */
		return fail("fsync", "initial fsync", -1, errno);
	t_all = now();
	for (long i = 0; i < n; i++) {
		double t0 = now();
		for (long done = 0; done < bs;) {
			ssize_t w = write(fd, buf + done, (size_t)(bs - done));
			if (w < 0)
				return fail("fsync", "write", i, errno);
			done += w;
		}
		if (fsync(fd) < 0)
			return fail("fsync", "fsync", i, errno);
		lat[i] = (now() - t0) * 1e6;
		sum += lat[i];
	}
	t_all = now() - t_all;
	if (close(fd) < 0)
		return fail("fsync", "close", n, errno);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	printf("{\"op\": \"fsync\", \"ok\": true, \"n\": %ld, \"bs\": %ld, \"secs\": %.6f, "
	       "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"mean_us\": %.1f, "
	       "\"min_us\": %.1f, \"max_us\": %.1f}\n",
	       n, bs, t_all, pct(lat, n, 50), pct(lat, n, 90), pct(lat, n, 99), sum / (double)n,
	       lat[0], lat[n - 1]);
	free(lat);
	free(buf);
	return 0;
}

static int cmd_cp(const char *src, const char *dst, int reflink)
{
	int pfd[2];
	char errbuf[1024];
	size_t errlen = 0;
	double t0, t1;
	pid_t pid;
	int status, fd;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return fail("cp", "pipe", -1, errno);
	t0 = now();
	pid = fork();
	if (pid < 0)
		return fail("cp", "fork", -1, errno);
	if (pid == 0) {
		dup2(pfd[1], 2);
		if (reflink)
			execlp("cp", "cp", "--reflink=always", "--", src, dst, (char *)NULL);
		else
			execlp("cp", "cp", "--", src, dst, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t r = read(pfd[0], errbuf + errlen, sizeof(errbuf) - 1 - errlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		errlen += (size_t)r;
		if (errlen == sizeof(errbuf) - 1)
			break;
	}
	close(pfd[0]);
	errbuf[errlen] = '\0';
	while (errlen && (errbuf[errlen - 1] == '\n' || errbuf[errlen - 1] == ' '))
		errbuf[--errlen] = '\0';
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return fail("cp", "waitpid", -1, errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("{\"op\": \"%s\", \"ok\": false, \"status\": %d, \"error\": ",
		       reflink ? "reflink" : "cp", status);
		json_str(errlen ? errbuf : "cp failed");
		printf("}\n");
		return 1;
	}
	fd = open(dst, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("cp", "open copy", -1, errno);
	if (fsync(fd) < 0)
		return fail("cp", "fsync copy", -1, errno);
	t1 = now();
	close(fd);
	printf("{\"op\": \"%s\", \"ok\": true, \"secs\": %.6f}\n", reflink ? "reflink" : "cp",
	       t1 - t0);
	return 0;
}

/* A short end-to-end check of the data path, so a peer that mounts but cannot store data is
 * reported once ("n/a: ...") rather than as a failure in every cell. */
static int cmd_probe(const char *dir)
{
	char path[4096], buf[4096], back[4096];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/.fsbench-probe", dir);
	unlink(path);
	memset(buf, 0x5a, sizeof(buf));
	fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("probe", "create", -1, errno);
	if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return fail("probe", "write 4 KiB", -1, errno ? errno : EIO);
	if (fsync(fd) < 0)
		return fail("probe", "fsync", -1, errno);
	if (pread(fd, back, sizeof(back), 0) != (ssize_t)sizeof(back))
		return fail("probe", "read back", -1, errno ? errno : EIO);
	if (memcmp(buf, back, sizeof(buf)) != 0)
		return fail("probe", "read back: wrong data", -1, EIO);
	if (fstat(fd, &st) < 0 || st.st_size != (off_t)sizeof(buf))
		return fail("probe", "fstat size", -1, errno ? errno : EIO);
	close(fd);
	if (unlink(path) < 0)
		return fail("probe", "unlink", -1, errno);
	printf("{\"op\": \"probe\", \"ok\": true}\n");
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fsbench-ops probe DIR | create DIR N | stat DIR N | unlink DIR N |\n"
		"                   fsync FILE N BS | cp SRC DST [--reflink]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		usage();
	const char *cmd = argv[1];

	if (!strcmp(cmd, "probe") && argc == 3)
		return cmd_probe(argv[2]);
	if (!strcmp(cmd, "create") && argc == 4)
		return cmd_create(argv[2], parse_count(argv[3]));
	if (!strcmp(cmd, "stat") && argc == 4)
		return cmd_stat(argv[2], parse_count(argv[3]));
	if (!strcmp(cmd, "unlink") && argc == 4)
		return cmd_unlink(argv[2], parse_count(argv[3]));
	if (!strcmp(cmd, "fsync") && argc == 5)
		return cmd_fsync(argv[2], parse_count(argv[3]), parse_count(argv[4]));
	if (!strcmp(cmd, "cp") && (argc == 4 || (argc == 5 && !strcmp(argv[4], "--reflink"))))
		return cmd_cp(argv[2], argv[3], argc == 5);
	usage();
	return 2;
}
