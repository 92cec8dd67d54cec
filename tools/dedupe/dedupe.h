/* `cowfs dedupe`: share the duplicate chunks of files on a cowfs mount (tools/dedupe/parts.h). */
#ifndef COWFS_TOOLS_DEDUPE_H
#define COWFS_TOOLS_DEDUPE_H

int cmd_dedupe(int argc, char **argv);

#endif
