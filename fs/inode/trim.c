/*
 * Freeing many file extent items in transactions of bounded size: for an inode that goes away
 * (orphan.c) and for a truncate that cuts a lot (inode_setattr).
 *
 * One transaction that frees N items must reserve for N, and a file of 4 KiB random writes has
 * an extent item per block: hundreds of thousands. So the items go a batch at a time, from the
 * front of the range, each batch its own transaction with its own reservation (halved while
 * the space for it is not there, down to INODE_DROP_INLINE items). The range freed so far is a
 * hole, nbytes stays exact: every state between batches is a consistent file, which is what a
 * commit between them (or a crash) sees. The caller finishes with its own last transaction.
 */
#include <errno.h>

#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/fmap.h"
#include "fs/inode/inode_format.h"
#include "fs/inode/internal.h"

uint64_t inode_drop_nodes(struct inode_tree *it, uint64_t items)
{
	return cowfs_neighbour_update_nodes(inode_btree(it), items);
}

/* The file offset of ino's n-th file extent item (from 0) at or after `from`: UINT64_MAX if
 * it has fewer. */
static int nth_extent_offset(struct inode_tree *it, uint64_t ino, uint64_t from, uint64_t n,
			     uint64_t *off)
{
	struct bt_key key = { ino, EXTENT_DATA_KEY, from }, k;
	struct bt_cursor c;
	uint64_t i = 0;
	int ret;

	*off = UINT64_MAX;
	bt_cursor_init(&c, inode_btree(it));
	for (ret = bt_cursor_seek(&c, &key, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, NULL, NULL);
		if (k.objectid != ino || k.type != EXTENT_DATA_KEY)
			break;
		if (i++ == n) {
			*off = k.offset;
			break;
		}
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

/* Begin a transaction that frees up to *batch items: fewer while there is no space for them. */
static int trim_begin(struct inode_tree *it, uint64_t *batch, struct cowfs_trans **tx)
{
	for (;;) {
		int ret = inode_update_begin_nodes(it, ALLOC_PRIVILEGED, inode_drop_nodes(it,
											  *batch), tx);
		if (ret != -ENOSPC || *batch <= INODE_DROP_INLINE)
			return ret;
		*batch /= 2;
	}
}

int file_trim_batch(struct inode_tree *it, uint64_t ino, uint64_t from,
		    bool (*still)(struct inode_tree *it, uint64_t ino, void *arg), void *arg,
		    bool *more)
{
	struct cowfs_trans *tx;
	uint64_t to, batch = INODE_DROP_BATCH;
	int64_t delta = 0;
	struct inode in;
	int ret = trim_begin(it, &batch, &tx);

	*more = false;
	if (ret < 0)
		return ret;
	if (!still(it, ino, arg))
		goto out;
	ret = nth_extent_offset(it, ino, from, batch, &to);
	if (ret < 0 || to == UINT64_MAX)
		goto out;   /* no more than a batch left: the caller's last transaction takes it */
	ret = inode_read(it, ino, &in);
	if (ret == 0)
		ret = fmap_replace(tx, it, ino, from, to - from, NULL, &delta);
	if (ret == 0) {
		in.nbytes += delta;
		ret = inode_write(tx, it, ino, &in);
	}
	*more = ret == 0;
out:
	return inode_update_end(tx, ret);
}

static bool still_longer(struct inode_tree *it, uint64_t ino, void *arg)
{
	struct inode in;

	return inode_read(it, ino, &in) == 0 && S_ISREG(in.mode) && in.size > *(uint64_t *)arg;
}

/* Whether the regular file ino is longer than `size` and has more than a few file extent
 * items from `from` on. */
static int many_to_cut(struct inode_tree *it, uint64_t ino, uint64_t size, uint64_t from,
		       bool *many)
{
	uint64_t off = UINT64_MAX;
	int ret = 0;

	inode_lock_read(it);
	if (still_longer(it, ino, &size))
		ret = nth_extent_offset(it, ino, from, INODE_DROP_INLINE, &off);
	inode_unlock_read(it);
	*many = off != UINT64_MAX;
	return ret;
}

int file_shrink_in_batches(struct inode_tree *it, uint64_t ino, uint64_t size)
{
	uint32_t ps = cowfs_sectorsize(it->fs);
	uint64_t from = size > FILE_SIZE_MAX ? FILE_SIZE_MAX : (size + ps - 1) / ps * ps;
	bool more = true;
	int ret = 0;

	while (more && ret == 0) {
		ret = many_to_cut(it, ino, size, from, &more);
		if (ret == 0 && more)
			ret = file_trim_batch(it, ino, from, still_longer, &size, &more);
	}
	return ret;
}
