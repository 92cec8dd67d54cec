/*
 * Opening an image for the dump, read-only. Through cowfs_open() when the filesystem opens
 * cleanly; when it does not (a damaged tree it reads at open, such as the extent tree it
 * rebuilds the free-space index from), directly: the best superblock copy, a block cache and a
 * bt_fs that only reads, so a damaged image dumps as far as it can be read.
 */
#ifndef COWFS_TOOLS_DUMP_IMAGE_H
#define COWFS_TOOLS_DUMP_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/btree/btree.h"
#include "fs/super/fs.h"

/* Where the library's reports about blocks go (struct bt_fs's report). */
typedef void (*image_report_fn)(void *arg, uint64_t bytenr, const char *msg);

struct dump_image {
	const char *path;
	struct cowfs *fs;               /* when it opened cleanly, else NULL */
	bool degraded;                  /* cowfs_open() failed: read directly */
	int open_err;                   /* why, when degraded */
	bool snapshot;                  /* a writer has it: a snapshot read, without the lock */
	struct blockdev *bd;
	struct bcache *cache;
	struct bt_fs *bfs;              /* reads the trees: fs's own, or raw_bfs */
	const struct cowfs_super *sb;   /* the superblock in use: fs's own, or raw_sb */
	struct bt_fs raw_bfs;
	struct cowfs_super raw_sb;
};

/*
 * Open `path` read-only; with `snapshot`, without the lock, as a snapshot read of the last
 * committed generation (cowfs_opts.snapshot) of an image a writer has. 0, or a negative
 * errno: -EINVAL not a cowfs image, -EOPNOTSUPP a newer format, -EBUSY a writer has it (not
 * for a snapshot), -ESTALE the image changed while it was opened (only a snapshot), or the
 * device's. image_close() is due either way.
 */
int image_open(struct dump_image *im, const char *path, bool snapshot, image_report_fn report,
	       void *arg);
/* For a snapshot: whether an error met may be the writer's doing (a commit since the open). */
bool image_moved_on(struct dump_image *im);
void image_close(struct dump_image *im);

#endif
