/*
 * What the parts of the cowfs program share: the name its messages start with, its exit
 * statuses, and the last check that what it printed reached its file.
 */
#ifndef COWFS_TOOLS_PROG_H
#define COWFS_TOOLS_PROG_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PROG "cowfs"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* A full disk or a closed pipe shows only at the flush: a dump cut short must not exit 0. */
static inline int finish_output(FILE *f)
{
	if (fflush(f) != 0 || ferror(f)) {
		fprintf(stderr, PROG ": writing output: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

#endif
