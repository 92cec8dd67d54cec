/*
 * Opening, creating and closing a filesystem: the image, its superblock, the tree of trees and
 * the free-space index.
 */
#include "fs/super/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fs/lib/endian.h"
#include "fs/super/internal.h"
#include "fs/super/root_item.h"
#include "fs/super/super.h"

void fs_report(struct cowfs *fs, uint64_t bytenr, const char *msg)
{
	if (fs->report)
		fs->report(fs->report_arg, bytenr, msg);
}

static void note_super(void *arg, uint64_t bytenr, const char *msg)
{
	fs_report(arg, bytenr, msg);
}

/* Reserve: enough for deletes and commits to shadow their paths on a full filesystem. */
static uint64_t reserve_bytes(uint64_t total, uint32_t nodesize)
{
	uint64_t r = total / 100;

	if (r < 256ull * nodesize)
		r = 256ull * nodesize;
	if (r > (512ull << 20))
		r = 512ull << 20;
	return r < total / 4 ? r : total / 4;
}

/* The allocator over the data area, minus the superblock copies' areas. */
static int make_allocator(struct cowfs *fs, uint64_t total, uint32_t sectorsize,
			  uint32_t nodesize)
{
	int ret = alloc_create(COWFS_DATA_START, total, sectorsize, &fs->alloc);

	if (ret < 0)
		return ret;
	for (int i = 1; i < COWFS_SUPER_MIRRORS; i++) {
		uint64_t off = cowfs_super_offsets[i];
		if (off >= total)
			break;
		uint64_t len = off + COWFS_SUPER_GUARD > total ? total - off : COWFS_SUPER_GUARD;
		ret = alloc_mark_used(fs->alloc, off, len);
		if (ret < 0)
			return ret;
		fs->guard_bytes += len;
	}
	alloc_set_reserve(fs->alloc, reserve_bytes(total - COWFS_DATA_START, nodesize));
	return 0;
}

/*
 * The block cache's share of the memory bound (cowfs_opts.cache_bytes): half. A quarter is for
 * buffered file data (fs/inode), the last quarter for what else the daemon holds: the free-space
 * index and the delayed references, which grow with fragmentation, and request buffers. (The
 * daemon once measured 264-355 MiB resident for a 256 MiB bound after 20 s of 4 KiB random
 * writes: that was malloc holding the blocks the cache had freed, which its pool now keeps.)
 */
size_t fs_tree_cache_bytes(size_t cache_bytes)
{
	size_t total = cache_bytes ? cache_bytes : BCACHE_DEFAULT_BYTES;

	return total / 2;
}

static int setup_common(struct cowfs *fs, const char *path, bool read_only, size_t cache_bytes)
{
	struct bdev_opts bo = { .read_only = read_only };
	int ret;

	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->wake, NULL);
	pthread_cond_init(&fs->commit_done, NULL);
	pthread_rwlock_init(&fs->data_readers, NULL);
	fs->read_only = read_only;
	ret = bdev_open(path, &bo, &fs->bd);
	if (ret < 0)
		return ret;
	ret = bcache_create(fs->bd, fs_tree_cache_bytes(cache_bytes), &fs->cache);
	if (ret < 0)
		return ret;
	fs->bfs.cache = fs->cache;
	fs->bfs.ops = &extent_bt_ops;
	fs->bfs.ops_ctx = &fs->ext;
	fs->bfs.report = fs->report;
	fs->bfs.report_arg = fs->report_arg;
	return 0;
}

static void teardown(struct cowfs *fs)
{
	fs_stop_committer(fs);
	for (size_t i = 0; i < fs->nmore; i++)
		free(fs->more[i]);
	free(fs->more);
	extents_destroy(&fs->ext);
	log_destroy(fs);
	if (fs->alloc)
		alloc_destroy(fs->alloc);
	if (fs->cache)
		bcache_destroy(fs->cache);
	if (fs->bd)
		bdev_close(fs->bd);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->wake);
	pthread_cond_destroy(&fs->commit_done);
	pthread_rwlock_destroy(&fs->data_readers);
	free(fs);
}

static void root_init(struct cowfs_root *r)
{
	r->saved_root = r->t.root;
	r->saved_gen = r->t.root_gen;
	r->saved_level = r->t.level;
}

int fs_load_root(struct cowfs *fs, uint64_t id, struct cowfs_root *r)
{
	struct tree_root tr;
	int ret = root_item_lookup(&fs->root_tree, id, &tr);

	if (ret == -ENOENT || ret == -EUCLEAN) {
		fs_report(fs, fs->root_tree.root,
			  ret == -ENOENT ? "root item missing" : "malformed root item");
		return -EUCLEAN;
	}
	if (ret < 0)
		return ret;
	bt_open(&r->t, &fs->bfs, id, tr.bytenr, tr.generation, tr.level);
	root_init(r);
	return 0;
}

static int mark_extent_used(void *arg, const struct extent_info *e)
{
	struct cowfs *fs = arg;
	int ret = alloc_mark_used(fs->alloc, e->start, e->len);

	if (ret == -EEXIST || ret == -ERANGE || ret == -EINVAL) {
		fs_report(fs, e->start, ret == -EEXIST ? "extent overlaps another extent"
						    : "extent outside the filesystem");
		return -EUCLEAN;
	}
	return ret;
}

/* bdev_lock_wait's note that it waits, passed on to the opener with the wait's length. */
static void note_lock_wait(void *arg, long holder_pid)
{
	const struct cowfs_opts *o = arg;

	o->lock_waiting(o->report_arg, holder_pid, o->lock_wait_ms);
}

/* Whether the newest superblock on the device is of another generation than `gen`. */
static int super_moved_from(struct blockdev *bd, uint64_t gen)
{
	struct cowfs_super now;
	int ret = super_read_best(bd, &now, NULL, NULL);

	if (ret < 0)
		return ret;
	return get_le64(&now.generation) == gen ? 0 : -ESTALE;
}

int cowfs_snapshot_current(struct cowfs *fs)
{
	return super_moved_from(fs->bd, get_le64(&fs->sb.generation));
}

/* A snapshot read's open failed on what it read: the writer's doing if the image moved on. */
static int snapshot_open_error(struct cowfs *fs, int err)
{
	if (err != -EIO && err != -EUCLEAN)
		return err;
	return super_moved_from(fs->bd, get_le64(&fs->sb.generation)) == -ESTALE ? -ESTALE : err;
}

/* The lock an open takes: none for a snapshot read, which must not wait for the writer. */
static int open_lock(struct cowfs *fs, const struct cowfs_opts *o)
{
	if (o->snapshot)
		return 0;
	return bdev_lock_wait(fs->bd, !o->read_only, o->lock_wait_ms,
			      o->lock_waiting ? note_lock_wait : NULL, (void *)o);
}

int cowfs_open(const char *path, const struct cowfs_opts *o, struct cowfs **out)
{
	struct cowfs *fs = calloc(1, sizeof(*fs));
	bool read_only = o->read_only || o->snapshot;
	int ret;

	if (!fs)
		return -ENOMEM;
	fs->report = o->report;
	fs->report_arg = o->report_arg;
	fs->snapshot = o->snapshot;
	ret = setup_common(fs, path, read_only, o->cache_bytes);
	if (ret == 0)
		ret = open_lock(fs, o);
	if (ret == 0)
		ret = super_read_best(fs->bd, &fs->sb, note_super, fs);
	if (ret < 0)
		goto fail;
	uint32_t ss = get_le32(&fs->sb.sectorsize), ns = get_le32(&fs->sb.nodesize);
	uint64_t total = get_le64(&fs->sb.total_bytes);
	fs->bfs.nodesize = ns;
	fs->bfs.node_start = COWFS_DATA_START;
	fs->bfs.node_end = get_le64(&fs->sb.total_bytes);
	fs->bfs.node_align = ss;
	memcpy(fs->bfs.fsid, fs->sb.fsid, 16);
	bt_open(&fs->root_tree, &fs->bfs, ROOT_TREE_ID, get_le64(&fs->sb.root_tree_bytenr),
		get_le64(&fs->sb.root_tree_gen), fs->sb.root_tree_level);
	ret = make_allocator(fs, total, ss, ns);
	if (ret == 0)
		ret = extents_init(&fs->ext, &fs->bfs, fs->alloc, ss);
	if (ret == 0)
		ret = fs_load_root(fs, EXTENT_TREE_ID, &fs->extent_root);
	if (ret == 0)
		ret = fs_load_root(fs, FS_TREE_ID, &fs->fs_root);
	if (ret == 0)
		ret = fs_load_root(fs, CSUM_TREE_ID, &fs->csum_root);
	if (ret < 0)
		goto fail;
	fs->ext.tree = &fs->extent_root.t;
	fs->ext.csum_tree = &fs->csum_root.t;
	ret = extent_walk(&fs->ext, &(struct extent_walk){ .extent_fn = mark_extent_used,
			  .arg = fs });
	/* A snapshot shows the committed generation: the log is the writer's, live. */
	if (ret == 0 && !o->snapshot)
		ret = log_open(fs);
	if (ret == 0 && fs->log.replay_pending && !read_only && !o->replays_log) {
		fs_report(fs, get_le64(&fs->sb.log_start),
		       "fsync log has entries to replay: mount the image read-write first");
		ret = -EAGAIN;
	}
	if (ret < 0)
		goto fail;
	fs_trans_init(fs, get_le64(&fs->sb.generation) + 1, ALLOC_NORMAL);
	fs_note_committed(fs);
	size_t cache = o->cache_bytes ? o->cache_bytes : BCACHE_DEFAULT_BYTES;
	fs->cache_bytes = cache;
	fs->dirty_limit = o->dirty_limit ? o->dirty_limit : fs_tree_cache_bytes(cache) / 2;
	ret = fs_start_committer(fs, o->commit_interval_ms);
	if (ret < 0)
		goto fail;
	*out = fs;
	return 0;
fail:
	if (o->snapshot && fs->bd)
		ret = snapshot_open_error(fs, ret);
	teardown(fs);
	return ret;
}

int cowfs_close(struct cowfs *fs)
{
	int ret = 0;

	fs_stop_committer(fs);
	if (fs->aborted)
		ret = fs->failure.err;
	else if (!fs->read_only)
		ret = cowfs_commit(fs);
	teardown(fs);
	return ret;
}

/* ---- mkfs ------------------------------------------------------------------------------ */

static int create_tree(struct cowfs *fs, uint64_t id, struct btree *t)
{
	return bt_create(&fs_running_trans(fs)->bt, id, t);
}

static void fill_new_super(struct cowfs *fs, const struct cowfs_mkfs_opts *o, uint64_t total,
			   uint32_t ss, uint32_t ns)
{
	struct cowfs_super *sb = &fs->sb;

	memset(sb, 0, sizeof(*sb));
	memcpy(sb->magic, COWFS_MAGIC, 8);
	memcpy(sb->fsid, fs->bfs.fsid, 16);
	put_le32(&sb->version, COWFS_FORMAT_VERSION);
	put_le32(&sb->sectorsize, ss);
	put_le32(&sb->nodesize, ns);
	put_le64(&sb->total_bytes, total);
	memcpy(sb->label, o->label, sizeof(sb->label));
	sb->label[sizeof(sb->label) - 1] = 0;
}

int cowfs_format(const char *path, const struct cowfs_mkfs_opts *o, uint8_t fsid_out[16])
{
	struct cowfs *fs = calloc(1, sizeof(*fs));
	uint32_t ns = o->nodesize ? o->nodesize : BT_DEFAULT_NODESIZE;
	uint32_t ss = o->sectorsize ? o->sectorsize : 4096;
	int ret;

	if (!fs)
		return -ENOMEM;
	ret = setup_common(fs, path, false, 0);
	if (ret == 0)
		ret = bdev_lock(fs->bd, true, 0);
	if (ret < 0)
		goto out;
	uint64_t total = bdev_size(fs->bd) / ns * ns;
	if (!bt_nodesize_valid(ns) || ss < 512 || ss > ns || (ss & (ss - 1))) {
		ret = -EINVAL;
		goto out;
	}
	if (total < COWFS_MIN_SIZE) {
		ret = -ENOSPC;
		goto out;
	}
	fs->bfs.nodesize = ns;
	fs->bfs.node_start = COWFS_DATA_START;
	fs->bfs.node_end = total;
	fs->bfs.node_align = ss;
	if (o->fsid_set)
		memcpy(fs->bfs.fsid, o->fsid, 16);
	else if (getrandom(fs->bfs.fsid, 16, 0) != 16) {
		ret = -EIO;
		goto out;
	}
	ret = make_allocator(fs, total, ss, ns);
	if (ret == 0)
		ret = extents_init(&fs->ext, &fs->bfs, fs->alloc, ss);
	if (ret < 0)
		goto out;
	fill_new_super(fs, o, total, ss, ns);
	fs_trans_init(fs, 1, ALLOC_PRIVILEGED);   /* mkfs may use all the space */
	ret = create_tree(fs, ROOT_TREE_ID, &fs->root_tree);
	if (ret == 0)
		ret = create_tree(fs, EXTENT_TREE_ID, &fs->extent_root.t);
	if (ret == 0)
		ret = create_tree(fs, FS_TREE_ID, &fs->fs_root.t);
	if (ret == 0)
		ret = create_tree(fs, CSUM_TREE_ID, &fs->csum_root.t);
	if (ret < 0)
		goto out;
	fs->ext.tree = &fs->extent_root.t;
	fs->ext.csum_tree = &fs->csum_root.t;
	/* saved_* stay zero: the commit inserts every root item. */
	ret = cowfs_commit(fs);
	if (ret == 0 && fsid_out)
		memcpy(fsid_out, fs->bfs.fsid, 16);
out:
	teardown(fs);
	return ret;
}
