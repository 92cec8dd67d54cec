/* Opening an image for the dump, with a direct read when the filesystem does not open (image.h). */
#include "tools/dump/image.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "fs/lib/endian.h"
#include "fs/super/super.h"
#include "tools/prog.h"

/* Open without struct cowfs: superblock, block cache, and a bt_fs that only reads. */
static int open_raw(struct dump_image *im, image_report_fn report, void *arg)
{
	struct bdev_opts bo = { .read_only = true };
	int ret = bdev_open(im->path, &bo, &im->bd);

	if (ret < 0)
		return ret;
	if (!im->snapshot)
		ret = bdev_lock(im->bd, false, 0);  /* shared, as cowfs_open() takes it for a reader */
	if (ret == 0)
		ret = super_read_best(im->bd, &im->raw_sb, report, arg);
	if (ret == 0)
		ret = bcache_create(im->bd, BCACHE_DEFAULT_BYTES, &im->cache);
	if (ret < 0)
		return ret;
	im->sb = &im->raw_sb;
	im->raw_bfs = (struct bt_fs){ .cache = im->cache,
				      .nodesize = get_le32(&im->raw_sb.nodesize),
				      .report = report, .report_arg = arg };
	memcpy(im->raw_bfs.fsid, im->raw_sb.fsid, sizeof(im->raw_bfs.fsid));
	im->bfs = &im->raw_bfs;
	return 0;
}

int image_open(struct dump_image *im, const char *path, bool snapshot, image_report_fn report,
	       void *arg)
{
	struct cowfs_opts o = { .read_only = true, .snapshot = snapshot, .report = report,
				.report_arg = arg };
	int ret;

	memset(im, 0, sizeof(*im));
	im->path = path;
	im->snapshot = snapshot;
	ret = cowfs_open(path, &o, &im->fs);
	if (ret == 0) {
		im->bd = im->fs->bd;
		im->cache = im->fs->cache;
		im->bfs = &im->fs->bfs;
		im->sb = &im->fs->sb;
		return 0;
	}
	im->fs = NULL;
	if (ret != -EIO && ret != -EUCLEAN)
		return ret;
	im->degraded = true;
	im->open_err = ret;
	return open_raw(im, report, arg);
}

bool image_moved_on(struct dump_image *im)
{
	struct cowfs_super now;

	if (!im->snapshot)
		return false;
	if (im->fs)
		return cowfs_snapshot_current(im->fs) == -ESTALE;
	/* Read directly: compare with the superblock read then. */
	return super_read_best(im->bd, &now, NULL, NULL) == 0 &&
	       get_le64(&now.generation) != get_le64(&im->raw_sb.generation);
}

void image_close(struct dump_image *im)
{
	if (im->fs) {
		cowfs_close(im->fs);  /* read-only: nothing to commit, cannot fail */
		return;
	}
	if (im->cache)
		bcache_destroy(im->cache);
	if (im->bd)
		bdev_close(im->bd);
}
