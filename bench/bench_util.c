#include "bench/bench_util.h"

#include <stdarg.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(buf))
	{
		fprintf(stderr, "bench: bad directory name '%s'\n", dir);
		return -1;
	}
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		{
			fprintf(stderr, "bench: mkdir %s: %s\n", buf, strerror(errno));
			return -1;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

int make_image(const char *path, uint64_t bytes)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "bench: create %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (ftruncate(fd, (off_t)bytes) != 0) {
		fprintf(stderr, "bench: ftruncate %s to %llu bytes: %s\n", path,
			(unsigned long long)bytes, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) != 0) {
		fprintf(stderr, "bench: close %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

uint64_t disk_bytes(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}


/* Print a bench error on stderr; returns -1. */
static int say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int say(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Run fn in a forked child that writes `size` bytes of result to a pipe; wait4 gives RSS. */
int run_child(const char *what, int (*fn)(const void *arg, void *res), const void *arg,
		     void *res, size_t size, long *maxrss_kb)
{
	struct rusage ru;
	int fds[2], status;
	ssize_t got;
	pid_t pid;

	if (pipe(fds) != 0)
		return say("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return say("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		memset(res, 0, size);
		int ret = fn(arg, res);
		if (ret == 0 && write_all(fds[1], res, size) != 0)
			ret = say("write result to parent: %s", strerror(errno));
		fflush(NULL);
		_exit(ret == 0 ? 0 : 1);
	}
	close(fds[1]);
	got = read_all(fds[0], res, size);
	close(fds[0]);
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return say("wait4: %s", strerror(errno));
	if (WIFSIGNALED(status))
		return say("%s: child killed by signal %d (%s)", what, WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)size)
		return say("%s: child failed (exit status %d)", what,
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	if (maxrss_kb)
		*maxrss_kb = ru.ru_maxrss;
	return 0;
}

