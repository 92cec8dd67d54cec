/*
 * The version every cowfs program reports (--version): one definition, so that mkfs.cowfs,
 * fsck.cowfs, cowfs and cowfs-run always agree.
 */
#ifndef COWFS_TOOLS_VERSION_H
#define COWFS_TOOLS_VERSION_H

#include <stdio.h>

#define COWFS_VERSION "0.12"

/* "mkfs.cowfs (cowfs) 0.12", as util-linux and e2fsprogs print theirs. 0, or 1 if unwritten. */
static inline int print_version(const char *prog)
{
	printf("%s (cowfs) %s\n", prog, COWFS_VERSION);
	return fflush(stdout) != 0 || ferror(stdout);
}

#endif
