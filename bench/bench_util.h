/* Helpers shared by the benchmark programs: time, whole-buffer pipe I/O, sorting, dirs. */
#ifndef COWFS_BENCH_UTIL_H
#define COWFS_BENCH_UTIL_H

#include <stddef.h>
#include <sys/types.h>

double now(void);
int write_all(int fd, const void *buf, size_t len);
ssize_t read_all(int fd, void *buf, size_t len);
int cmp_double(const void *a, const void *b);
/* mkdir -p; says what failed on stderr and returns -1. */
int mkdir_p(const char *dir);

#endif
