/*
 * Dedupe (file.h: file_dedupe_range; Linux's vfs_dedupe_file_range): for each destination,
 * one update that holds the filesystem lock from the compare to the share, so that no write
 * can slip in between. Buffered data of both files is written back first (in the running
 * transaction: the update then starts over, as a clone does), so the bytes compared are the
 * ones on disk, read with their checksums verified. Only identical ranges are shared; a
 * range that differs is left exactly as it was. Ranges that already map the same disk bytes
 * are identical without reading them.
 *
 * Where this differs from the kernel: `deduped` is what is now shared (the length after the
 * cut to whole sectors), where the kernel reports the length asked for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/internal.h"
#include "fs/inode/remap.h"

/* The kernel's bound on one request: also bounds how long the lock is held comparing. */
#define DEDUPE_LEN_MAX (1ull << 30)
/* Bytes of each range read at once while comparing. */
#define DEDUPE_CHUNK (1u << 20)
/* Tries of one destination: each -EAGAIN wrote back one file's buffered data, or saw a size
 * change between the unlocked and the locked checks. */
#define DEDUPE_TRIES 16

/* What concerns the source, for the whole call. */
static int dedupe_source_check(struct inode_tree *it, uint64_t src, uint64_t off, uint64_t len)
{
	struct inode in;
	int ret;

	inode_lock_read(it);
	ret = inode_read(it, src, &in);
	inode_unlock_read(it);
	if (ret < 0)
		return ret;
	if (S_ISDIR(in.mode))
		return -EISDIR;
	if (!S_ISREG(in.mode))
		return -EINVAL;
	if (off + len < off || off + len > in.size)
		return -EINVAL;
	return 0;
}

/* Whether the two ranges map the same disk bytes (or holes) all along. */
static int maps_same(struct inode_tree *it, uint64_t a, uint64_t off_a, uint64_t b,
		     uint64_t off_b, uint64_t len, bool *same)
{
	*same = false;
	for (uint64_t done = 0; done < len;) {
		struct fmap_seg sa, sb;
		int ret = fmap_lookup(it, a, off_a + done, off_a + len, &sa);
		if (ret == 0)
			ret = fmap_lookup(it, b, off_b + done, off_b + len, &sb);
		if (ret < 0)
			return ret;
		if (sa.kind != sb.kind || (sa.kind != FMAP_HOLE && sa.disk != sb.disk))
			return 0;
		done += MIN(sa.len, sb.len);
	}
	*same = true;
	return 0;
}

/* Whether the bytes of the two ranges are equal, read with the lock held (it is). */
static int bytes_equal(struct inode_tree *it, uint64_t a, uint64_t off_a, uint64_t b,
		       uint64_t off_b, uint64_t len, bool *equal)
{
	size_t chunk = len < DEDUPE_CHUNK ? (size_t)len : DEDUPE_CHUNK;
	uint8_t *x = malloc(chunk), *y = malloc(chunk);
	int ret = x && y ? 0 : -ENOMEM;

	*equal = ret == 0;
	for (uint64_t done = 0; done < len && *equal && ret == 0;) {
		size_t n = len - done < chunk ? (size_t)(len - done) : chunk;
		ssize_t ga = file_read_locked(it, a, x, n, off_a + done);
		ssize_t gb = ga < 0 ? 0 : file_read_locked(it, b, y, n, off_b + done);
		if (ga < 0 || gb < 0)
			ret = ga < 0 ? (int)ga : (int)gb;
		/* Short reads cannot happen (the sizes were checked under this lock); if they
		 * did, nothing would be shared. */
		else if ((size_t)ga != n || (size_t)gb != n || memcmp(x, y, n) != 0)
			*equal = false;
		done += n;
	}
	free(x);
	free(y);
	return ret;
}

/*
 * One try for destination d: FILE_DEDUPE_SAME (d->deduped set), FILE_DEDUPE_DIFFERS
 * (*compared: the bytes compared), or a negative errno (-EAGAIN: try again).
 */
static int dedupe_once(struct inode_tree *it, uint64_t src, uint64_t off, uint64_t len,
		       struct file_dedupe_dest *d, uint64_t *compared)
{
	struct remap_plan p;
	struct cowfs_trans *tx;
	bool same = false, equal = false;
	int ret = remap_plan(it, src, off, it, d->ino, d->off, len, true, &p);

	if (ret < 0 || p.len == 0)
		return ret < 0 ? ret : FILE_DEDUPE_SAME;
	ret = remap_begin(it, src, off, it, d->ino, d->off, p.span, &tx);
	if (ret < 0)
		return ret;
	ret = remap_plan_still(it, src, off, it, d->ino, d->off, len, true, &p);
	if (ret == 0)
		ret = remap_write_back(tx, it, src);
	if (ret == 0)
		ret = remap_write_back(tx, it, d->ino);
	if (ret == 0)
		ret = maps_same(it, src, off, d->ino, d->off, p.span, &same);
	if (ret == 0 && !same)
		ret = bytes_equal(it, src, off, d->ino, d->off, p.len, &equal);
	if (ret == 0 && equal)
		ret = remap_locked(tx, it, src, off, it, d->ino, d->off, p.span, 0, false);
	ret = inode_update_end(tx, ret);
	if (ret < 0)
		return ret;
	*compared = p.len;
	if (!same && !equal)
		return FILE_DEDUPE_DIFFERS;
	d->deduped = p.len;
	return FILE_DEDUPE_SAME;
}

static void dedupe_dest(struct inode_tree *it, uint64_t src, uint64_t off, uint64_t len,
			struct file_dedupe_dest *d)
{
	struct file_share_stats *st = &it->share_stats;
	uint64_t compared = 0;
	int ret = -EAGAIN;

	d->deduped = 0;
	for (int i = 0; i < DEDUPE_TRIES && ret == -EAGAIN; i++)
		ret = dedupe_once(it, src, off, len, d, &compared);
	d->status = ret;
	if (ret == FILE_DEDUPE_SAME)
		share_stat_add(&st->dedupe_bytes_same, d->deduped);
	else if (ret == FILE_DEDUPE_DIFFERS)
		share_stat_add(&st->dedupe_bytes_differ, compared);
}

int file_dedupe_range(struct inode_tree *it, uint64_t src, uint64_t off, uint64_t len,
		      struct file_dedupe_dest *dests, size_t n)
{
	int ret;

	share_stat_add(&it->share_stats.dedupe_calls, n);
	ret = dedupe_source_check(it, src, off, len);
	if (ret == 0 && inode_tree_read_only(it))
		ret = -EROFS;
	if (ret < 0)
		return ret;
	len = MIN(len, DEDUPE_LEN_MAX);
	for (size_t i = 0; i < n; i++)
		dedupe_dest(it, src, off, len, &dests[i]);
	return 0;
}
