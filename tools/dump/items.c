/*
 * What a leaf item holds, decoded by its key's type (parts.h). An item of the wrong size for its
 * type is shown as malformed, with its first bytes, and counted; an item of a type the dump
 * does not know is shown as hex. A root item read in the root tree is also remembered, so the
 * trees it names can be walked after it.
 */
#include "tools/dump/parts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/extent/extent_format.h"
#include "fs/extent/file_extent.h"
#include "fs/inode/xattr_entry.h"
#include "fs/lib/compiler.h"
#include "fs/lib/endian.h"
#include "fs/super/root_item.h"
#include "fs/super/subvol.h"
#include "fs/super/super_format.h"
#include "tools/dump/names.h"

/* Bytes of an item of unknown type shown as hex. */
#define HEX_MAX 64

static void malformed(struct dump *d, const char *what, const void *p, uint32_t len)
{
	struct out *o = d->o;
	char msg[64];

	snprintf(msg, sizeof(msg), "malformed %s (%u bytes)", what, len);
	out_obj_begin(o, "malformed", "malformed", FRAME_LINE);
	out_qstr(o, "problem", msg, strlen(msg));
	out_hex(o, "hex", p, MIN(len, HEX_MAX));
	out_obj_end(o);
	d->problems++;
}

static void remember_tree(struct dump *d, uint64_t id, const struct tree_root *tr)
{
	if (d->ntrees == d->trees_cap) {
		size_t cap = d->trees_cap ? 2 * d->trees_cap : 8;
		struct tree_ref *t = realloc(d->trees, cap * sizeof(*t));
		if (!t) {
			d->collect_err = -ENOMEM;
			return;
		}
		d->trees = t;
		d->trees_cap = cap;
	}
	d->trees[d->ntrees++] = (struct tree_ref){
		.id = id, .bytenr = tr->bytenr, .generation = tr->generation, .level = tr->level,
	};
}

static void dump_root_item(struct dump *d, const struct bt_key *k, const void *p, uint32_t len)
{
	struct tree_root tr;
	struct out *o = d->o;

	if (root_item_decode(p, len, &tr) < 0) {
		malformed(d, "root item", p, len);
		return;
	}
	out_obj_begin(o, "root_item", "root item", FRAME_LINE);
	out_u64(o, "bytenr", tr.bytenr);
	out_u64(o, "generation", tr.generation);
	out_u64(o, "level", tr.level);
	out_obj_end(o);
	if (d->collect_roots && k->objectid != ROOT_TREE_ID)
		remember_tree(d, k->objectid, &tr);
}

static void dump_subvol_item(struct dump *d, const void *p, uint32_t len)
{
	struct subvol_info si;
	struct out *o = d->o;
	const char *why;

	if (subvol_item_decode(p, len, &si, &why) < 0) {
		malformed(d, "subvolume item", p, len);
		return;
	}
	out_obj_begin(o, "subvol_item", "subvolume", FRAME_LINE);
	out_x64(o, "flags", si.flags);
	out_u64(o, "source", si.source);
	out_u64(o, "ctransid", si.ctransid);
	out_u64(o, "otime", (uint64_t)si.otime.tv_sec);
	out_hex(o, "uuid", si.uuid, sizeof(si.uuid));
	if (si.flags & SUBVOL_DELETING) {
		out_u64(o, "drop_done", si.drop_done);
		out_u64(o, "drop_total", si.drop_total);
	}
	out_obj_end(o);
}

static void dump_root_ref(struct dump *d, const void *p, uint32_t len)
{
	struct subvol_info ref;
	struct out *o = d->o;
	const char *why;

	if (root_ref_decode(p, len, &ref, &why) < 0) {
		malformed(d, "root ref", p, len);
		return;
	}
	out_obj_begin(o, "root_ref", "root ref", FRAME_LINE);
	out_u64(o, "dir", ref.dir);
	out_u64(o, "index", ref.index);
	out_qstr(o, "name", ref.name, ref.name_len);
	out_obj_end(o);
}

static void dump_subvol_registry(struct dump *d, const void *p, uint32_t len)
{
	uint64_t def, last;
	struct out *o = d->o;
	const char *why;

	if (subvol_registry_decode(p, len, &def, &last, &why) < 0) {
		malformed(d, "subvolume registry", p, len);
		return;
	}
	out_obj_begin(o, "subvol_registry", "subvolume registry", FRAME_LINE);
	out_u64(o, "default", def);
	out_u64(o, "last_id", last);
	out_obj_end(o);
}

static void dump_extent_item(struct dump *d, const void *p, uint32_t len)
{
	const struct extent_item *ei = p;
	struct out *o = d->o;

	if (len != sizeof(*ei)) {
		malformed(d, "extent item", p, len);
		return;
	}
	out_obj_begin(o, "extent_item", "extent item", FRAME_LINE);
	out_u64(o, "refs", get_le64(&ei->refs));
	out_u64(o, "generation", get_le64(&ei->generation));
	out_extent_flags(o, "flags", get_le64(&ei->flags));
	out_u64(o, "level", ei->level);
	out_obj_end(o);
}

static void dump_tree_block_ref(struct dump *d, const struct bt_key *k, const void *p,
				uint32_t len)
{
	struct out *o = d->o;

	if (len != sizeof(uint64_t)) {
		malformed(d, "tree block backref", p, len);
		return;
	}
	out_obj_begin(o, "tree_block_ref", "tree block backref", FRAME_LINE);
	out_u64(o, "owner", k->offset);
	out_u64(o, "count", get_le64(p));
	out_obj_end(o);
}

static void dump_data_refs(struct dump *d, const void *p, uint32_t len)
{
	const struct extent_data_ref *r = p;
	struct out *o = d->o;

	if (len == 0 || len % sizeof(*r)) {
		malformed(d, "data backref", p, len);
		return;
	}
	out_arr_begin(o, "extent_data_refs", NULL);
	for (uint32_t i = 0; i < len / sizeof(*r); i++) {
		out_obj_begin(o, NULL, "data backref", FRAME_LINE);
		out_u64(o, "owner", get_le64(&r[i].owner));
		out_u64(o, "inode", get_le64(&r[i].inode));
		out_u64(o, "offset", get_le64(&r[i].offset));
		out_u64(o, "count", get_le64(&r[i].count));
		out_obj_end(o);
	}
	out_arr_end(o);
}

static void dump_file_extent(struct dump *d, const void *p, uint32_t len)
{
	struct file_extent fe;
	struct out *o = d->o;

	if (file_extent_decode(p, len, &fe) < 0) {
		malformed(d, "file extent item", p, len);
		return;
	}
	out_obj_begin(o, "file_extent", "file extent", FRAME_LINE);
	out_str(o, "type", file_extent_type_name(fe.type));
	out_u64(o, "generation", fe.generation);
	out_u64(o, "ram_bytes", fe.ram_bytes);
	if (fe.type == FILE_EXTENT_INLINE) {
		out_u64(o, "inline_len", fe.inline_len);
	} else {
		out_u64(o, "disk_bytenr", fe.disk_bytenr);
		out_u64(o, "disk_num_bytes", fe.disk_num_bytes);
		out_u64(o, "offset", fe.offset);
		out_u64(o, "num_bytes", fe.num_bytes);
	}
	out_obj_end(o);
}

/* Bytes shown as hex, HEX_MAX of them at most, and how many were shown when not all. */
static void out_some_hex(struct out *o, const void *p, uint32_t len)
{
	out_hex(o, "hex", p, MIN(len, HEX_MAX));
	if (len > HEX_MAX)
		out_u64(o, "shown", HEX_MAX);  /* of itemsize bytes */
}

static void dump_unknown_item(struct dump *d, const void *p, uint32_t len)
{
	struct out *o = d->o;

	out_obj_begin(o, "data", "data", FRAME_LINE);
	out_some_hex(o, p, len);
	out_obj_end(o);
}

/* The entries of an xattr item (xattr_entry_next, the runtime's decoder): each name, the
 * value's length, and its first bytes or, spilled, where its pieces are. */
static void dump_xattr_item(struct dump *d, const void *p, uint32_t len)
{
	struct out *o = d->o;
	struct xattr_ref e;
	uint32_t off = 0;
	int got;

	while ((got = xattr_entry_next(p, len, &off, &e)) == 1)
		;
	if (got < 0) {
		malformed(d, "xattr item", p, len);
		return;
	}
	out_arr_begin(o, "xattr_entries", NULL);
	for (off = 0; xattr_entry_next(p, len, &off, &e) == 1;) {
		out_obj_begin(o, NULL, "xattr", FRAME_LINE);
		out_qstr(o, "name", e.name, e.name_len);
		out_u64(o, "value_len", e.value_len);
		if (e.spilled) {
			out_u64(o, "value_key", e.value_key);
		} else {
			out_some_hex(o, e.value, e.value_len);
		}
		out_obj_end(o);
	}
	out_arr_end(o);
}

/* A piece of a spilled xattr value: bytes only (its entry says whose). */
static void dump_xattr_value(struct dump *d, const void *p, uint32_t len)
{
	struct out *o = d->o;

	if (len == 0) {
		malformed(d, "xattr value piece", p, len);
		return;
	}
	out_obj_begin(o, "xattr_value", "xattr value piece", FRAME_LINE);
	out_some_hex(o, p, len);
	out_obj_end(o);
}

void dump_item(struct dump *d, const struct bt_node *n, uint32_t slot)
{
	struct out *o = d->o;
	const void *p;
	uint32_t len;
	struct bt_key k;

	bt_node_key(n, slot, &k);
	bt_node_item(n, slot, &p, &len);
	out_obj_begin(o, NULL, "item", FRAME_LINE);
	out_anon_u64(o, "slot", slot);
	out_key(o, "key", &k);
	out_u64(o, "itemoff", bt_node_item_offset(n, slot));
	out_u64(o, "itemsize", len);
	switch (k.type) {
	case ROOT_ITEM_KEY:       dump_root_item(d, &k, p, len); break;
	case SUBVOL_ITEM_KEY:     dump_subvol_item(d, p, len); break;
	case ROOT_REF_KEY:
	case ROOT_BACKREF_KEY:    dump_root_ref(d, p, len); break;
	case SUBVOL_REGISTRY_KEY: dump_subvol_registry(d, p, len); break;
	case EXTENT_ITEM_KEY:     dump_extent_item(d, p, len); break;
	case TREE_BLOCK_REF_KEY:  dump_tree_block_ref(d, &k, p, len); break;
	case EXTENT_DATA_REF_KEY: dump_data_refs(d, p, len); break;
	case EXTENT_DATA_KEY:     dump_file_extent(d, p, len); break;
	case XATTR_ITEM_KEY:      dump_xattr_item(d, p, len); break;
	case XATTR_VALUE_KEY:     dump_xattr_value(d, p, len); break;
	default:                  dump_unknown_item(d, p, len); break;
	}
	out_obj_end(o);
}
