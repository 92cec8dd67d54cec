/*
 * `cowfs subvolume`, `cowfs snapshot` and `cowfs property`: subvolumes and snapshots on a cowfs
 * mount, through the COWFS_IOC_SUBVOL_* ioctls (tools/subvol/parts.h, docs/CLI.md).
 */
#ifndef COWFS_TOOLS_SUBVOL_H
#define COWFS_TOOLS_SUBVOL_H

int cmd_subvolume(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_property(int argc, char **argv);

#endif
