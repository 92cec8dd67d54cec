/*
 * A regular file's extent map: see fmap.h.
 */
#include "fs/inode/fmap.h"

#include <errno.h>
#include <string.h>

#include "fs/extent/file_extent.h"
#include "fs/inode/internal.h"
#include "fs/lib/endian.h"

/* A file extent item in host byte order. */
struct fitem {
	uint64_t off, len;       /* file range */
	uint8_t type;
	uint64_t disk, disk_len; /* the extent (disk 0: an explicit hole) */
	uint64_t eoff;           /* where in the extent the range starts */
};

static bool is_file_extent(const struct bt_key *k, uint64_t ino)
{
	return k->objectid == ino && k->type == EXTENT_DATA_KEY;
}

static int decode_item(struct inode_tree *it, const struct bt_key *k, const void *data,
		       uint32_t len, struct fitem *f)
{
	struct file_extent fe;

	if (file_extent_decode(data, len, &fe) < 0 || fe.type == FILE_EXTENT_INLINE)
		return inode_corrupt(it, k->objectid, "file extent item of unknown form");
	if (file_extent_check_range(&fe, k->offset, cowfs_sectorsize(it->fs)) < 0)
		return inode_corrupt(it, k->objectid, "file extent item out of bounds");
	*f = (struct fitem){ .off = k->offset, .len = fe.num_bytes, .type = fe.type,
			     .disk = fe.disk_bytenr, .disk_len = fe.disk_num_bytes,
			     .eoff = fe.offset };
	return 0;
}

static void encode_item(struct file_extent_item *fe, const struct fitem *f, uint64_t transid)
{
	memset(fe, 0, sizeof(*fe));
	put_le64(&fe->generation, transid);
	put_le64(&fe->ram_bytes, f->disk_len);
	fe->type = f->type;
	put_le64(&fe->disk_bytenr, f->disk);
	put_le64(&fe->disk_num_bytes, f->disk_len);
	put_le64(&fe->offset, f->eoff);
	put_le64(&fe->num_bytes, f->len);
}

void fmap_new_item(struct file_extent_item *fe, uint8_t type, uint64_t transid, uint64_t disk,
		   uint64_t len)
{
	struct fitem f = { .len = len, .type = type, .disk = disk, .disk_len = len };

	encode_item(fe, &f, transid);
}

void fmap_extent_item(struct file_extent_item *fe, uint8_t type, uint64_t transid,
		      uint64_t extent_start, uint64_t extent_len, uint64_t disk, uint64_t len)
{
	struct fitem f = { .len = len, .type = type, .disk = extent_start,
			   .disk_len = extent_len, .eoff = disk - extent_start };

	encode_item(fe, &f, transid);
}

static void seg_from_item(const struct fitem *f, uint64_t off, uint64_t end,
			  struct fmap_seg *seg)
{
	uint64_t item_end = f->off + f->len;

	seg->off = off;
	seg->len = (item_end < end ? item_end : end) - off;
	if (!f->disk) {
		seg->kind = FMAP_HOLE;
		return;
	}
	seg->kind = f->type == FILE_EXTENT_REG ? FMAP_DATA : FMAP_PREALLOC;
	seg->extent_start = f->disk;
	seg->extent_len = f->disk_len;
	seg->disk = f->disk + f->eoff + (off - f->off);
}

/*
 * The item covering `off` (1, *f set), or none (0, *next the start of the first item after
 * off, UINT64_MAX if there is none).
 */
static int find_item(struct inode_tree *it, uint64_t ino, uint64_t off, struct fitem *f,
		     uint64_t *next)
{
	struct bt_key key = { ino, EXTENT_DATA_KEY, off }, k;
	struct bt_cursor c;
	const void *data;
	uint32_t len;
	int ret;

	*next = UINT64_MAX;
	bt_cursor_init(&c, inode_btree(it));
	ret = bt_cursor_seek(&c, &key, BT_SEEK_LE);
	if (ret == 0) {
		bt_cursor_item(&c, &k, &data, &len);
		if (is_file_extent(&k, ino)) {
			ret = decode_item(it, &k, data, len, f);
			if (ret == 0 && f->off + f->len > off) {
				bt_cursor_release(&c);
				return 1;
			}
		}
		if (ret == 0)
			ret = bt_cursor_next(&c);
	} else if (ret == -ENOENT) {
		ret = bt_cursor_seek(&c, &key, BT_SEEK_GE);
	}
	if (ret == 0) {
		bt_cursor_item(&c, &k, NULL, NULL);
		if (is_file_extent(&k, ino))
			*next = k.offset;
	}
	bt_cursor_release(&c);
	return ret == -ENOENT ? 0 : ret;
}

int fmap_lookup(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t end,
		struct fmap_seg *seg)
{
	struct fitem f;
	uint64_t next;
	int ret = find_item(it, ino, off, &f, &next);

	if (ret < 0)
		return ret;
	if (ret == 1) {
		seg_from_item(&f, off, end, seg);
		return 0;
	}
	memset(seg, 0, sizeof(*seg));
	seg->off = off;
	seg->len = (next < end ? next : end) - off;
	seg->kind = FMAP_HOLE;
	return 0;
}

static uint64_t referenced_bytes(const struct fitem *f, uint64_t len)
{
	return f->disk ? len : 0;
}

/* Cut item `f` out of [off, end): delete it, put back the parts outside the range. */
static int cut_item(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		    const struct fitem *f, uint64_t off, uint64_t end, int64_t *delta)
{
	struct btree *t = inode_btree(it);
	struct bt_key k = { ino, EXTENT_DATA_KEY, f->off };
	struct file_extent_item fe;
	uint64_t item_end = f->off + f->len;
	uint64_t cut_from = f->off > off ? f->off : off;
	uint64_t cut_to = item_end < end ? item_end : end;
	int ret = bt_delete(&tx->bt, t, &k);

	if (ret < 0)
		return ret;
	*delta -= (int64_t)referenced_bytes(f, cut_to - cut_from);
	if (f->off < off) {
		struct fitem head = *f;
		head.len = off - f->off;
		encode_item(&fe, &head, cowfs_trans_id(tx));
		ret = bt_insert(&tx->bt, t, &k, &fe, sizeof(fe));
	}
	if (ret == 0 && item_end > end) {
		struct fitem tail = *f;
		tail.off = end;
		tail.len = item_end - end;
		if (tail.disk)
			tail.eoff += end - f->off;
		encode_item(&fe, &tail, cowfs_trans_id(tx));
		k.offset = end;
		ret = bt_insert(&tx->bt, t, &k, &fe, sizeof(fe));
	}
	return ret;
}

/* Whether item b may be joined to the end of item a: the next bytes of the same extent, in the
 * next bytes of the file, of the same type. */
static bool items_continue(const struct fitem *a, const struct fitem *b)
{
	return a->disk && a->disk == b->disk && a->type == b->type && a->disk_len == b->disk_len &&
	       a->off + a->len == b->off && a->eoff + a->len == b->eoff;
}

/* The item covering the sector before `off`, if it ends at off and `f` continues it (removed,
 * and f made to start where it did). */
static int merge_left(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		      struct fitem *f, int64_t *delta)
{
	struct fitem left;
	uint64_t next;
	int ret = f->off ? find_item(it, ino, f->off - 1, &left, &next) : 0;

	if (ret <= 0 || !items_continue(&left, f))
		return ret < 0 ? ret : 0;
	ret = cut_item(tx, it, ino, &left, left.off, f->off, delta);
	f->off = left.off;
	f->eoff = left.eoff;
	f->len += left.len;
	return ret;
}

/* The item starting where `f` ends, if it continues f (removed, and f made to cover it). */
static int merge_right(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
		       struct fitem *f, int64_t *delta)
{
	struct fitem right;
	uint64_t next;
	int ret = find_item(it, ino, f->off + f->len, &right, &next);

	if (ret <= 0 || right.off != f->off + f->len || !items_continue(f, &right))
		return ret < 0 ? ret : 0;
	ret = cut_item(tx, it, ino, &right, right.off, right.off + right.len, delta);
	f->len += right.len;
	return ret;
}

/*
 * Insert item fe at `off` (its range is a hole now), joined with neighbours it
 * continues: write-back in place turns preallocated space into written data a piece at a
 * time, and without joining, a file preallocated and then written in small pieces would keep
 * an item per piece (btrfs joins them the same way).
 */
static int insert_merged(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino,
			 uint64_t off, const struct file_extent_item *fe, int64_t *delta)
{
	struct file_extent_item merged;
	struct fitem f;
	struct bt_key k = { ino, EXTENT_DATA_KEY, off };
	int ret = decode_item(it, &k, fe, sizeof(*fe), &f);

	f.off = off;
	if (ret == 0)
		ret = merge_left(tx, it, ino, &f, delta);
	if (ret == 0)
		ret = merge_right(tx, it, ino, &f, delta);
	if (ret < 0)
		return ret;
	k.offset = f.off;
	encode_item(&merged, &f, get_le64(&fe->generation));
	ret = bt_insert(&tx->bt, inode_btree(it), &k, &merged, sizeof(merged));
	if (ret == 0)
		*delta += (int64_t)referenced_bytes(&f, f.len);
	return ret;
}

int fmap_replace(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino, uint64_t off,
		 uint64_t len, const struct file_extent_item *fe, int64_t *nbytes_delta)
{
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	int ret;

	*nbytes_delta = 0;
	for (;;) {
		struct fitem f;
		uint64_t next;
		ret = find_item(it, ino, off, &f, &next);
		if (ret == 0 && next < end) {
			/* The first item starting inside the range. */
			ret = find_item(it, ino, next, &f, &next);
			if (ret == 0)
				ret = inode_corrupt(it, ino, "file extent item vanished");
		}
		if (ret <= 0)
			break;
		ret = cut_item(tx, it, ino, &f, off, end, nbytes_delta);
		if (ret < 0)
			break;
	}
	if (ret < 0 || !fe)
		return ret;
	return insert_merged(tx, it, ino, off, fe, nbytes_delta);
}

int fmap_prealloc_bytes(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t len,
			uint64_t *bytes)
{
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	int ret = 0;

	*bytes = 0;
	while (off < end && ret == 0) {
		struct fmap_seg seg;
		ret = fmap_lookup(it, ino, off, end, &seg);
		if (ret == 0 && seg.kind == FMAP_PREALLOC)
			*bytes += seg.len;
		/* A hole with no item after it runs to `end`. */
		off += seg.len;
	}
	return ret;
}

int fmap_cost(struct inode_tree *it, uint64_t ino, uint64_t off, uint64_t len, uint64_t *nodes)
{
	struct bt_key key = { ino, EXTENT_DATA_KEY, off }, k;
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len, items = 0;
	struct bt_cursor c;
	int ret;

	bt_cursor_init(&c, inode_btree(it));
	for (ret = bt_cursor_seek(&c, &key, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, NULL, NULL);
		if (!is_file_extent(&k, ino) || k.offset >= end)
			break;
		items++;
	}
	bt_cursor_release(&c);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	/* Deletes of neighbouring items share leaves; cutting the two end items and inserting
	 * one more each shadow a path of their own. */
	*nodes = cowfs_neighbour_update_nodes(inode_btree(it), items) +
		 4 * cowfs_update_nodes(inode_btree(it));
	return 0;
}
