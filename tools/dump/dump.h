/*
 * cowfs dump: print the superblock (and the state of every superblock copy) and every tree of
 * an image, node by node in pre-order, decoding the items it knows; or only the part asked for
 * (--super, --tree, --block, one file's extents with --inode or --path), as text or --json.
 * It only reads; a damaged image dumps as far as it can be read (tools/dump/parts.h).
 *
 * Exit status: 0 all read and sound; 1 something could not be read or is corrupt, or the
 * image could not be opened; 2 usage error.
 */
#ifndef COWFS_TOOLS_DUMP_DUMP_H
#define COWFS_TOOLS_DUMP_DUMP_H

/* `cowfs dump [options] IMAGE`: argv[0] is "dump". Returns the exit status. */
int cmd_dump(int argc, char **argv);

#endif
