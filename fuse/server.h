/*
 * The FUSE server's entry point: what the cowfs program calls to mount an image.
 *
 *   cowfs IMAGE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]
 *
 * This header is all that tools/ sees of fuse/: no FUSE type appears in it.
 */
#ifndef COWFS_FUSE_SERVER_H
#define COWFS_FUSE_SERVER_H

#include <stdio.h>

/*
 * Mount IMAGE on MOUNTPOINT and serve it until it is unmounted or the process gets SIGTERM,
 * SIGINT or SIGHUP; then commit and close the image. argv[0] is the program name. By default
 * the server detaches from the terminal, once the mount has worked or has failed with its
 * reason printed. Returns the process exit status: 0 served and closed cleanly, 1 otherwise.
 */
int cowfs_mount_main(int argc, char **argv);

/* The mount command's synopsis and options, for the program's usage text. */
void cowfs_mount_usage(FILE *f, const char *prog);

#endif
