/* Helpers shared by the benchmark programs: time, whole-buffer pipe I/O, sorting, dirs. */
#ifndef COWFS_BENCH_UTIL_H
#define COWFS_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

double now(void);
int write_all(int fd, const void *buf, size_t len);
ssize_t read_all(int fd, void *buf, size_t len);
int cmp_double(const void *a, const void *b);
/* mkdir -p; says what failed on stderr and returns -1. */
int mkdir_p(const char *dir);

/* A sparse image file of `bytes` (created or truncated); says what failed and returns -1. */
int make_image(const char *path, uint64_t bytes);
/* Disk space a file really takes (allocated blocks), 0 if it cannot be stat'ed. */
uint64_t disk_bytes(const char *path);

/*
 * Run fn(arg, res) in a forked child, so that its peak RSS is its own: the child sends `size`
 * bytes of result back through a pipe. Returns 0 with *maxrss_kb (may be NULL) set, or -1
 * (said on stderr) if the child failed, was killed or sent less.
 */
int run_child(const char *what, int (*fn)(const void *arg, void *res), const void *arg,
	      void *res, size_t size, long *maxrss_kb);

#endif
