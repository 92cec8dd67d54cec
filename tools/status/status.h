/* `cowfs status`: what a mounted cowfs says about itself (fuse/cowfs_ioctl.h). */
#ifndef COWFS_TOOLS_STATUS_H
#define COWFS_TOOLS_STATUS_H

int cmd_status(int argc, char **argv);

#endif
