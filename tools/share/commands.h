/*
 * The cowfs commands on a mount's sharing ioctls (fuse/cowfs_ioctl.h, docs/CLI.md): each takes
 * argc/argv from its own name on and returns the program's exit status (tools/prog.h).
 */
#ifndef COWFS_TOOLS_SHARE_COMMANDS_H
#define COWFS_TOOLS_SHARE_COMMANDS_H

int cmd_reflink(int argc, char **argv);
int cmd_fiemap(int argc, char **argv);
int cmd_du(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
