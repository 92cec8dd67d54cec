/*
 * One file's extents (parts.h): for each file extent item of an inode, where its data is on
 * disk, how long, of which generation, and the data extent's refcount and every reference to
 * it. Through the filesystem (the extent tree's lookups), so only when it opened cleanly.
 */
#include "tools/dump/parts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fs/extent/extent.h"
#include "fs/extent/extent_format.h"
#include "fs/inode/inode.h"
#include "fs/lib/endian.h"
#include "tools/prog.h"

static int print_data_ref(void *arg, uint64_t start, const struct extent_data_ref *r)
{
	struct out *o = arg;

	(void)start;
	out_obj_begin(o, NULL, "ref", FRAME_LINE);
	out_u64(o, "owner", r->owner);
	out_u64(o, "inode", r->inode);
	out_u64(o, "offset", r->offset);
	out_u64(o, "count", r->count);
	out_obj_end(o);
	return 0;
}

/* The data extent an item points at: its count, generation and every reference to it. */
static void dump_extent_refs(struct dump *d, uint64_t start, uint64_t len)
{
	struct out *o = d->o;
	struct extent_info e;
	int ret = extent_lookup(&d->img.fs->ext, start, len, &e);

	if (ret < 0) {
		out_str(o, "extent", ret == -ENOENT ? "missing" : "unreadable");
		d->problems++;
		return;
	}
	out_u64(o, "extent_refs", e.refs);
	out_u64(o, "extent_generation", e.generation);
	out_arr_begin(o, "references", "references");
	ret = extent_walk_one(&d->img.fs->ext, start,
			      &(struct extent_walk){ .data_ref_fn = print_data_ref, .arg = o });
	out_arr_end(o);
	if (ret < 0)
		d->problems++;
}

static void dump_file_item(struct dump *d, const struct bt_key *k, const void *data,
			   uint32_t len)
{
	const struct file_extent_item *fe = data;
	struct out *o = d->o;
	uint64_t start, dlen;
	int ret = file_extent_target(k, data, len, &start, &dlen);

	out_obj_begin(o, NULL, "extent", FRAME_BLOCK);
	out_u64(o, "file_offset", k->offset);
	if (ret < 0) {
		out_str(o, "state", "malformed");
		d->problems++;
	} else if (fe->type == FILE_EXTENT_INLINE) {
		out_u64(o, "generation", get_le64(&fe->generation));
		out_str(o, "type", "inline");
		out_u64(o, "inline_bytes", len - FILE_EXTENT_INLINE_HEADER);
	} else {
		out_u64(o, "generation", get_le64(&fe->generation));
		out_str(o, "type", fe->type == FILE_EXTENT_PREALLOC ? "prealloc" : "regular");
		out_u64(o, "disk_bytenr", get_le64(&fe->disk_bytenr));
		out_u64(o, "disk_num_bytes", get_le64(&fe->disk_num_bytes));
		out_u64(o, "extent_offset", get_le64(&fe->offset));
		out_u64(o, "num_bytes", get_le64(&fe->num_bytes));
		if (ret == 1)
			dump_extent_refs(d, start, dlen);
		else
			out_str(o, "extent", "hole");
	}
	out_obj_end(o);
}

/* Resolve an absolute path from the root directory, one component at a time. */
static int resolve_path(struct inode_tree *it, const char *path, uint64_t *ino)
{
	struct cowfs_attr a;

	*ino = INODE_ROOT_INO;
	while (*path) {
		size_t n = strcspn(path, "/");
		if (n) {
			int ret = inode_lookup(it, *ino, path, n, &a);
			if (ret < 0)
				return ret;
			*ino = a.ino;
		}
		path += n + (path[n] == '/');
	}
	return 0;
}

/*
 * What was asked for is not there: said as such, and no problem of the image. Another error
 * on the way (an unreadable node) is one.
 */
static void lookup_failed(struct dump *d, uint64_t tree, bool tree_found, uint64_t ino,
			  const char *path, int err)
{
	if (err != -ENOENT) {
		fprintf(d->err, PROG ": tree %" PRIu64 " %s %s: %s\n", tree,
			path ? "path" : "inode", path ? path : "", strerror(-err));
		d->problems++;
		return;
	}
	d->not_found = true;
	if (!tree_found)
		fprintf(d->err, PROG ": no such tree: %" PRIu64 "\n", tree);
	else if (path)
		fprintf(d->err, PROG ": no such file: %s\n", path);
	else
		fprintf(d->err, PROG ": no such inode: %" PRIu64 "\n", ino);
}

int dump_file(struct dump *d, uint64_t tree, uint64_t ino, const char *path)
{
	struct out *o = d->o;
	struct cowfs_root *r;
	struct inode_tree it;
	struct cowfs_attr attr;
	struct bt_cursor c;
	struct bt_key k, from;
	const void *data;
	uint32_t len;
	int ret;

	if (!d->img.fs) {
		fprintf(d->err, PROG ": a file's extents need a filesystem that opens cleanly\n");
		d->problems++;
		return 0;
	}
	ret = cowfs_tree_open(d->img.fs, tree, &r);
	bool tree_found = ret == 0;
	if (tree_found) {
		inode_tree_init(&it, d->img.fs, r);
		if (path)
			ret = resolve_path(&it, path, &ino);
		if (ret == 0)
			ret = inode_getattr(&it, ino, &attr);
	}
	if (ret < 0) {
		lookup_failed(d, tree, tree_found, ino, path, ret);
		return 0;
	}
	out_obj_begin(o, "file", "file", FRAME_BLOCK);
	out_u64(o, "tree", tree);
	out_u64(o, "inode", ino);
	out_u64(o, "mode", attr.mode);
	out_u64(o, "nlink", attr.nlink);
	out_u64(o, "size", attr.size);
	out_arr_begin(o, "extents", "extents");
	from = (struct bt_key){ ino, EXTENT_DATA_KEY, 0 };
	bt_cursor_init(&c, &r->t);
	for (ret = bt_cursor_seek(&c, &from, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, &data, &len);
		if (k.objectid != ino || k.type != EXTENT_DATA_KEY)
			break;
		dump_file_item(d, &k, data, len);
	}
	bt_cursor_release(&c);
	if (ret < 0 && ret != -ENOENT)
		d->problems++;
	out_arr_end(o);
	out_obj_end(o);
	return 0;
}
