/*
 * cowfs: the command-line tool for cowfs images.
 *
 *   cowfs IMAGE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]   mount (fuse/server.h)
 *   cowfs dump IMAGE [--json] [--super] [--tree ID|root|extent|fs|csum] [--block BYTENR]
 *                    [--inode INO | --path /A/B]
 *
 * dump prints the superblock (and the state of every superblock copy) and every tree, node by
 * node in pre-order, decoding the items it knows. It only reads: the image is opened
 * read-only, every node is verified as it is read (bt_node_get), and a node that fails is
 * printed as an error and skipped, so a damaged image dumps as far as it can be read.
 * If the filesystem does not open cleanly (cowfs_open() also rebuilds the free-space index
 * from the extent tree, which a damaged extent tree stops), dump falls back to reading the
 * superblock and the trees directly.
 *
 * The text and JSON outputs come from the same calls through one small emitter (struct out):
 * objects, arrays and fields, rendered as indented lines or as one JSON document.
 *
 * Exit status: 0 all read and sound; 1 something could not be read or is corrupt, or the
 * image could not be opened; 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/btree/view.h"
#include "fs/extent/csum.h"
#include "fs/extent/extent_format.h"
#include "fs/inode/inode.h"
#include "fs/inode/inode_format.h"
#include "fs/inode/xattr_format.h"
#include "fs/io/bcache.h"
#include "fs/io/blockdev.h"
#include "fs/lib/endian.h"
#include "fs/super/fs.h"
#include "fs/super/super.h"
#include "fuse/server.h"

#define PROG "cowfs"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Bytes of an item of unknown type shown as hex. */
#define HEX_MAX 64

/* ---- output: text or JSON from the same calls ------------------------------------------ */

#define OUT_MAX_DEPTH 16

/* How a text object is laid out: fields on its title's line, or one field per line. */
enum frame_kind { FRAME_LINE, FRAME_BLOCK, FRAME_ARRAY };

struct frame {
	enum frame_kind kind;
	bool comma;      /* JSON: a value was already written at this level */
	bool indented;   /* text: the frame had a title and indented its children */
};

struct out {
	FILE *f;
	bool json;
	bool mute;       /* discard everything (walks that only collect) */
	int depth;
	struct frame fr[OUT_MAX_DEPTH];
	int indent;      /* text: tabs before a new line */
	bool line_open;  /* text: a line was started and not ended */
};

static void out_init(struct out *o, FILE *f, bool json)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->json = json;
}

static struct frame *out_top(struct out *o)
{
	return o->depth ? &o->fr[o->depth - 1] : NULL;
}

static void out_push(struct out *o, enum frame_kind kind, bool indented)
{
	/* Nesting is fixed by this file's code, never by the image. */
	if (o->depth == OUT_MAX_DEPTH)
		abort();
	o->fr[o->depth++] = (struct frame){ .kind = kind, .indented = indented };
	if (indented)
		o->indent++;
}

static void out_pop(struct out *o)
{
	if (o->fr[--o->depth].indented)
		o->indent--;
}

/* Valid UTF-8 sequence at s (at most n bytes): its length, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (s[0] >= 0xf8 || len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

/* A JSON string: valid UTF-8 passes, other bytes >= 0x80 become U+0080..U+00FF. */
static void json_string(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t u = p[i] >= 0x80 ? utf8_len(p + i, n - i) : 0;
		if (u) {
			fwrite(p + i, 1, u, f);
			i += u;
			continue;
		}
		if (p[i] == '"' || p[i] == '\\')
			fprintf(f, "\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			fprintf(f, "\\u%04x", p[i]);
		else
			fputc(p[i], f);
		i++;
	}
	fputc('"', f);
}

/* A quoted text string: control characters and '"' escaped, other bytes as they are. */
static void text_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void text_break(struct out *o)
{
	if (o->line_open)
		fputc('\n', o->f);
	o->line_open = false;
}

static void text_indent(struct out *o)
{
	for (int i = 0; i < o->indent; i++)
		fputc('\t', o->f);
}

/* JSON: the separator and key before a value. */
static void json_key(struct out *o, const char *key)
{
	struct frame *t = out_top(o);

	if (t && t->comma)
		fputc(',', o->f);
	if (t)
		t->comma = true;
	if (key && t && t->kind != FRAME_ARRAY) {
		json_string(o->f, key, strlen(key));
		fputc(':', o->f);
	}
}

/* Start an object: JSON `key: {`; text a line starting with `title` (none if NULL). */
static void out_obj_begin(struct out *o, const char *key, const char *title,
			  enum frame_kind kind)
{
	if (o->mute)
		return;
	if (o->json) {
		json_key(o, key);
		fputc('{', o->f);
		out_push(o, kind, false);
		return;
	}
	text_break(o);
	if (title) {
		text_indent(o);
		fputs(title, o->f);
		if (kind == FRAME_BLOCK)
			fputs(":\n", o->f);
		else
			o->line_open = true;
	}
	out_push(o, kind, title != NULL);
}

static void out_obj_end(struct out *o)
{
	if (o->mute)
		return;
	if (o->json)
		fputc('}', o->f);
	else
		text_break(o);
	out_pop(o);
}

static void out_arr_begin(struct out *o, const char *key, const char *title)
{
	if (o->mute)
		return;
	if (o->json) {
		json_key(o, key);
		fputc('[', o->f);
		out_push(o, FRAME_ARRAY, false);
		return;
	}
	text_break(o);
	if (title) {
		text_indent(o);
		fprintf(o->f, "%s:\n", title);
	}
	out_push(o, FRAME_ARRAY, title != NULL);
}

static void out_arr_end(struct out *o)
{
	if (o->mute)
		return;
	if (o->json)
		fputc(']', o->f);
	else
		text_break(o);
	out_pop(o);
}

/*
 * Start a field. Text: on a LINE object ` key value` (just ` value` when anon), on a BLOCK
 * object one `key  value` line. Returns false when muted (write nothing).
 */
static bool field_begin(struct out *o, const char *key, bool anon)
{
	struct frame *t = out_top(o);

	if (o->mute)
		return false;
	if (o->json) {
		json_key(o, key);
		return true;
	}
	if (t && t->kind == FRAME_LINE) {
		if (o->line_open) {
			fputc(' ', o->f);
		} else {
			text_indent(o);
			o->line_open = true;
		}
		if (!anon)
			fprintf(o->f, "%s ", key);
	} else {
		text_break(o);
		text_indent(o);
		if (!anon)
			fprintf(o->f, "%-18s", key);
	}
	return true;
}

static void field_end(struct out *o)
{
	struct frame *t = out_top(o);

	if (!o->json && !(t && t->kind == FRAME_LINE))
		fputc('\n', o->f);
}

static void out_u64(struct out *o, const char *key, uint64_t v)
{
	if (!field_begin(o, key, false))
		return;
	fprintf(o->f, "%" PRIu64, v);
	field_end(o);
}

/* The same, without the name in text (the object's title says what it is). */
static void out_anon_u64(struct out *o, const char *key, uint64_t v)
{
	if (!field_begin(o, key, true))
		return;
	fprintf(o->f, "%" PRIu64, v);
	field_end(o);
}

/* Text in hex; JSON an integer. */
static void out_x64(struct out *o, const char *key, uint64_t v)
{
	if (!field_begin(o, key, false))
		return;
	fprintf(o->f, o->json ? "%" PRIu64 : "0x%" PRIx64, v);
	field_end(o);
}

/* A token known to be printable (names, states): unquoted in text. */
static void out_str(struct out *o, const char *key, const char *s)
{
	if (!field_begin(o, key, false))
		return;
	if (o->json)
		json_string(o->f, s, strlen(s));
	else
		fputs(s, o->f);
	field_end(o);
}

/* A name: text `(s)` without the key, JSON "key": "s". */
static void out_tag(struct out *o, const char *key, const char *s)
{
	if (!field_begin(o, key, true))
		return;
	if (o->json)
		json_string(o->f, s, strlen(s));
	else
		fprintf(o->f, "(%s)", s);
	field_end(o);
}

static void out_bool(struct out *o, const char *key, bool v)
{
	if (!field_begin(o, key, false))
		return;
	fputs(o->json ? (v ? "true" : "false") : (v ? "yes" : "no"), o->f);
	field_end(o);
}

/* Bytes from the image or a message: quoted and escaped in both forms. */
static void out_qstr(struct out *o, const char *key, const char *s, size_t n)
{
	if (!field_begin(o, key, false))
		return;
	if (o->json)
		json_string(o->f, s, n);
	else
		text_string(o->f, s, n);
	field_end(o);
}

static void out_hex(struct out *o, const char *key, const void *p, size_t n)
{
	const unsigned char *b = p;

	if (!field_begin(o, key, false))
		return;
	if (o->json)
		fputc('"', o->f);
	for (size_t i = 0; i < n; i++)
		fprintf(o->f, "%02x", b[i]);
	if (o->json)
		fputc('"', o->f);
	field_end(o);
}

/* ---- names ----------------------------------------------------------------------------- */

static const char *key_type_name(uint8_t type)
{
	switch (type) {
	case INODE_ITEM_KEY:      return "INODE_ITEM";
	case INODE_REF_KEY:       return "INODE_REF";
	case XATTR_ITEM_KEY:      return "XATTR_ITEM";
	case ORPHAN_ITEM_KEY:     return "ORPHAN_ITEM";
	case DIR_ITEM_KEY:        return "DIR_ITEM";
	case DIR_INDEX_KEY:       return "DIR_INDEX";
	case ROOT_ITEM_KEY:       return "ROOT_ITEM";
	case EXTENT_ITEM_KEY:     return "EXTENT_ITEM";
	case TREE_BLOCK_REF_KEY:  return "TREE_BLOCK_REF";
	case EXTENT_DATA_REF_KEY: return "EXTENT_DATA_REF";
	case EXTENT_DATA_KEY:     return "EXTENT_DATA";
	case EXTENT_CSUM_KEY:     return "EXTENT_CSUM";
	default:                  return NULL;
	}
}

static const char *tree_name(uint64_t id)
{
	switch (id) {
	case ROOT_TREE_ID:   return "root";
	case EXTENT_TREE_ID: return "extent";
	case FS_TREE_ID:     return "fs";
	case CSUM_TREE_ID:   return "csum";
	default:             return NULL;
	}
}

static const char *file_extent_type_name(uint8_t type)
{
	switch (type) {
	case FILE_EXTENT_INLINE:   return "inline";
	case FILE_EXTENT_REG:      return "regular";
	case FILE_EXTENT_PREALLOC: return "prealloc";
	default:                   return NULL;
	}
}

static void format_uuid(const uint8_t u[16], char out[37])
{
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", u[i]);
	}
}

/* Text `(objectid TYPE offset)`; JSON {objectid, type, type_id, offset}. */
static void out_key(struct out *o, const char *key, const struct bt_key *k)
{
	const char *name = key_type_name(k->type);
	char num[4];

	if (!field_begin(o, key, false))
		return;
	snprintf(num, sizeof(num), "%u", k->type);
	if (o->json)
		fprintf(o->f, "{\"objectid\":%" PRIu64 ",\"type\":\"%s\",\"type_id\":%u,"
			"\"offset\":%" PRIu64 "}", k->objectid, name ? name : num, k->type, k->offset);
	else
		fprintf(o->f, "(%" PRIu64 " %s %" PRIu64 ")", k->objectid, name ? name : num,
			k->offset);
	field_end(o);
}

/* Text `DATA|TREE_BLOCK` (unknown bits in hex, `none` for 0); JSON an array of names. */
static void out_extent_flags(struct out *o, const char *key, uint64_t flags)
{
	static const struct { uint64_t bit; const char *name; } names[] = {
		{ EXTENT_FLAG_DATA, "DATA" }, { EXTENT_FLAG_TREE_BLOCK, "TREE_BLOCK" },
	};
	const char *sep = "";

	if (!field_begin(o, key, false))
		return;
	fputs(o->json ? "[" : "", o->f);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (flags & names[i].bit)
			fprintf(o->f, o->json ? "%s\"%s\"" : "%s%s", sep, names[i].name);
		if (flags & names[i].bit)
			sep = o->json ? "," : "|";
		flags &= ~names[i].bit;
	}
	if (flags)
		fprintf(o->f, o->json ? "%s\"0x%" PRIx64 "\"" : "%s0x%" PRIx64, sep, flags);
	else if (!o->json && !*sep)
		fputs("none", o->f);
	fputs(o->json ? "]" : "", o->f);
	field_end(o);
}

/* ---- the image ------------------------------------------------------------------------- */

/* A tree found in the root tree (or the root tree itself, from the superblock). */
struct tree_ref {
	uint64_t id, bytenr, generation;
	uint8_t level;
};

struct dump {
	struct out *o;
	const char *image;
	/* The image: through struct cowfs when it opened cleanly, else read directly. */
	struct cowfs *fs;
	struct blockdev *bd;
	struct bcache *cache;
	struct bt_fs *bfs;
	struct bt_fs raw_bfs;
	const struct cowfs_super *sb;
	struct cowfs_super raw_sb;
	/* What the walk found. */
	uint64_t problems;        /* unreadable nodes, corrupt items, bad copies */
	bool degraded;            /* cowfs_open() failed: read directly */
	bool collect_roots;       /* the walk is in the root tree: remember its root items */
	struct tree_ref *trees;
	size_t ntrees, trees_cap;
	char last_msg[160];       /* the library's last report, for the node's error line */
	int collect_err;          /* -ENOMEM while remembering a root item */
};

static void report(void *arg, uint64_t bytenr, const char *msg)
{
	struct dump *d = arg;

	fprintf(stderr, PROG ": block %" PRIu64 ": %s\n", bytenr, msg);
	snprintf(d->last_msg, sizeof(d->last_msg), "%s", msg);
}

static void note_super(void *arg, uint64_t bytenr, const char *msg)
{
	report(arg, bytenr, msg);
}

/* Open without struct cowfs: superblock, block cache, and a bt_fs that only reads. */
static int open_raw(struct dump *d)
{
	struct bdev_opts bo = { .read_only = true };
	int ret = bdev_open(d->image, &bo, &d->bd);

	if (ret < 0)
		return ret;
	ret = bdev_lock(d->bd, false, 0);  /* shared, as cowfs_open() takes it for a reader */
	if (ret == 0)
		ret = super_read_best(d->bd, &d->raw_sb, note_super, d);
	if (ret == 0)
		ret = bcache_create(d->bd, BCACHE_DEFAULT_BYTES, &d->cache);
	if (ret < 0)
		return ret;
	d->sb = &d->raw_sb;
	d->raw_bfs = (struct bt_fs){ .cache = d->cache, .nodesize = get_le32(&d->raw_sb.nodesize),
				     .report = report, .report_arg = d };
	memcpy(d->raw_bfs.fsid, d->raw_sb.fsid, sizeof(d->raw_bfs.fsid));
	d->bfs = &d->raw_bfs;
	return 0;
}

static int open_image(struct dump *d)
{
	struct cowfs_opts o = { .read_only = true, .report = report, .report_arg = d };
	int ret = cowfs_open(d->image, &o, &d->fs);

	if (ret == 0) {
		d->bd = d->fs->bd;
		d->cache = d->fs->cache;
		d->bfs = &d->fs->bfs;
		d->sb = &d->fs->sb;
		return 0;
	}
	d->fs = NULL;
	if (ret != -EIO && ret != -EUCLEAN)
		return ret;
	fprintf(stderr, PROG ": %s: filesystem does not open cleanly (%s); dumping what can be "
		"read\n", d->image, strerror(-ret));
	d->degraded = true;
	return open_raw(d);
}

static void close_image(struct dump *d)
{
	if (d->fs) {
		cowfs_close(d->fs);  /* read-only: nothing to commit, cannot fail */
		return;
	}
	if (d->cache)
		bcache_destroy(d->cache);
	if (d->bd)
		bdev_close(d->bd);
}

/* ---- superblock ------------------------------------------------------------------------ */

/* One copy position: read it, say whether it is there, sound, and of which generation. */
static void dump_copy(struct dump *d, void *buf, int i)
{
	struct out *o = d->o;
	const struct cowfs_super *c = buf;
	uint64_t off = cowfs_super_offsets[i], size = bdev_size(d->bd);
	bool expected = super_copy_fits(i, get_le64(&d->sb->total_bytes));
	const char *msg;
	int ret;

	out_obj_begin(o, NULL, "copy", FRAME_LINE);
	out_anon_u64(o, "offset", off);
	if (off + COWFS_SUPER_SIZE > size) {
		out_str(o, "state", "beyond_end");
	} else if ((ret = bdev_read(d->bd, off, buf, COWFS_SUPER_SIZE)) < 0) {
		out_str(o, "state", "unreadable");
		out_qstr(o, "error", strerror(-ret), strlen(strerror(-ret)));
		d->problems++;
	} else if (memcmp(c->magic, COWFS_MAGIC, 8) != 0) {
		out_str(o, "state", expected ? "missing" : "unused");
		d->problems += expected;
	} else if ((msg = super_check(c, off, size)) != NULL) {
		out_str(o, "state", "invalid");
		out_u64(o, "generation", get_le64(&c->generation));
		out_qstr(o, "problem", msg, strlen(msg));
		d->problems++;
	} else {
		out_str(o, "state", "valid");
		out_u64(o, "generation", get_le64(&c->generation));
	}
	out_obj_end(o);
}

static int dump_copies(struct dump *d)
{
	void *buf = aligned_alloc(BDEV_ALIGN, COWFS_SUPER_SIZE);

	if (!buf)
		return -ENOMEM;
	out_arr_begin(d->o, "copies", "copies");
	for (int i = 0; i < COWFS_SUPER_MIRRORS; i++)
		dump_copy(d, buf, i);
	out_arr_end(d->o);
	free(buf);
	return 0;
}

static int dump_super(struct dump *d)
{
	const struct cowfs_super *sb = d->sb;
	struct out *o = d->o;
	char uuid[37];
	int ret;

	format_uuid(sb->fsid, uuid);
	out_obj_begin(o, "superblock", "superblock", FRAME_BLOCK);
	out_x64(o, "csum", get_le64(&sb->csum));
	out_qstr(o, "magic", sb->magic, sizeof(sb->magic));
	out_u64(o, "bytenr", get_le64(&sb->bytenr));
	out_str(o, "fsid", uuid);
	out_u64(o, "version", get_le32(&sb->version));
	out_u64(o, "sectorsize", get_le32(&sb->sectorsize));
	out_u64(o, "nodesize", get_le32(&sb->nodesize));
	out_x64(o, "compat_flags", get_le64(&sb->compat_flags));
	out_x64(o, "ro_compat_flags", get_le64(&sb->ro_compat_flags));
	out_x64(o, "incompat_flags", get_le64(&sb->incompat_flags));
	out_u64(o, "total_bytes", get_le64(&sb->total_bytes));
	out_u64(o, "bytes_used", get_le64(&sb->bytes_used));
	out_u64(o, "generation", get_le64(&sb->generation));
	out_u64(o, "root_tree_bytenr", get_le64(&sb->root_tree_bytenr));
	out_u64(o, "root_tree_gen", get_le64(&sb->root_tree_gen));
	out_u64(o, "root_tree_level", sb->root_tree_level);
	out_qstr(o, "label", sb->label, strnlen(sb->label, sizeof(sb->label)));
	out_u64(o, "log_start", get_le64(&sb->log_start));
	out_u64(o, "log_gen", get_le64(&sb->log_gen));
	out_x64(o, "log_nonce", get_le64(&sb->log_nonce));
	out_u64(o, "log_chunk_len", get_le32(&sb->log_chunk_len));
	if (d->fs)
		out_u64(o, "log_entries_to_replay", d->fs->log.replay_pending ? d->fs->log.pending_entries : 0);
	ret = dump_copies(d);
	out_obj_end(o);
	return ret;
}

/* ---- items ----------------------------------------------------------------------------- */

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

static void remember_tree(struct dump *d, uint64_t id, const struct root_item *ri)
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
		.id = id, .bytenr = get_le64(&ri->bytenr), .generation = get_le64(&ri->generation),
		.level = ri->level,
	};
}

static void dump_root_item(struct dump *d, const struct bt_key *k, const void *p, uint32_t len)
{
	const struct root_item *ri = p;
	struct out *o = d->o;

	if (len != sizeof(*ri)) {
		malformed(d, "root item", p, len);
		return;
	}
	out_obj_begin(o, "root_item", "root item", FRAME_LINE);
	out_u64(o, "bytenr", get_le64(&ri->bytenr));
	out_u64(o, "generation", get_le64(&ri->generation));
	out_u64(o, "level", ri->level);
	out_x64(o, "flags", get_le64(&ri->flags));
	out_obj_end(o);
	if (d->collect_roots && k->objectid != ROOT_TREE_ID)
		remember_tree(d, k->objectid, ri);
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
	const struct file_extent_item *fe = p;
	struct out *o = d->o;
	const char *type;

	if (len < FILE_EXTENT_INLINE_HEADER ||
	    (fe->type != FILE_EXTENT_INLINE && len != sizeof(*fe))) {
		malformed(d, "file extent item", p, len);
		return;
	}
	type = file_extent_type_name(fe->type);
	out_obj_begin(o, "file_extent", "file extent", FRAME_LINE);
	if (type)
		out_str(o, "type", type);
	else
		out_u64(o, "type", fe->type);
	out_u64(o, "generation", get_le64(&fe->generation));
	out_u64(o, "ram_bytes", get_le64(&fe->ram_bytes));
	out_u64(o, "compression", fe->compression);
	if (fe->type == FILE_EXTENT_INLINE) {
		out_u64(o, "inline_len", len - FILE_EXTENT_INLINE_HEADER);
	} else {
		out_u64(o, "disk_bytenr", get_le64(&fe->disk_bytenr));
		out_u64(o, "disk_num_bytes", get_le64(&fe->disk_num_bytes));
		out_u64(o, "offset", get_le64(&fe->offset));
		out_u64(o, "num_bytes", get_le64(&fe->num_bytes));
	}
	out_obj_end(o);
}

static void dump_unknown_item(struct dump *d, const void *p, uint32_t len)
{
	struct out *o = d->o;

	out_obj_begin(o, "data", "data", FRAME_LINE);
	out_hex(o, "hex", p, MIN(len, HEX_MAX));
	if (len > HEX_MAX)
		out_u64(o, "shown", HEX_MAX);  /* of itemsize bytes */
	out_obj_end(o);
}

static void dump_item(struct dump *d, const struct bt_node *n, uint32_t slot)
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
	case EXTENT_ITEM_KEY:     dump_extent_item(d, p, len); break;
	case TREE_BLOCK_REF_KEY:  dump_tree_block_ref(d, &k, p, len); break;
	case EXTENT_DATA_REF_KEY: dump_data_refs(d, p, len); break;
	case EXTENT_DATA_KEY:     dump_file_extent(d, p, len); break;
	default:                  dump_unknown_item(d, p, len); break;
	}
	out_obj_end(o);
}

/* ---- nodes and trees ------------------------------------------------------------------- */

static void dump_ptrs(struct dump *d, const struct bt_node *n)
{
	struct out *o = d->o;
	struct bt_key k;
	uint64_t child, gen;

	out_arr_begin(o, "ptrs", NULL);
	for (uint32_t i = 0; i < bt_node_nritems(n); i++) {
		bt_node_key(n, i, &k);
		child = bt_node_child(n, i, &gen);
		out_obj_begin(o, NULL, "ptr", FRAME_LINE);
		out_anon_u64(o, "slot", i);
		out_key(o, "key", &k);
		out_u64(o, "blockptr", child);
		out_u64(o, "generation", gen);
		out_obj_end(o);
	}
	out_arr_end(o);
}

static void dump_items(struct dump *d, const struct bt_node *n)
{
	out_arr_begin(d->o, "items", NULL);
	for (uint32_t i = 0; i < bt_node_nritems(n); i++)
		dump_item(d, n, i);
	out_arr_end(d->o);
}

/*
 * What a descent through the tree checks beyond bt_node_get(): a child is non-empty and starts
 * with its parent's pointer key. NULL if sound (or `pkey` is NULL: a root or a lone block).
 */
static const char *child_problem(const struct bt_node *n, const struct bt_key *pkey)
{
	struct bt_key first;

	if (!pkey)
		return NULL;
	if (bt_node_nritems(n) == 0)
		return "empty non-root node";
	bt_node_key(n, 0, &first);
	if (bt_key_cmp(pkey, &first) != 0)
		return "first key differs from the parent's pointer key";
	return NULL;
}

static void dump_node(struct dump *d, const struct bt_node *n, const struct bt_key *pkey)
{
	struct out *o = d->o;
	const char *problem = child_problem(n, pkey);

	out_obj_begin(o, NULL, "node", FRAME_LINE);
	out_anon_u64(o, "bytenr", bt_node_bytenr(n));
	out_u64(o, "level", bt_node_level(n));
	out_u64(o, "nritems", bt_node_nritems(n));
	out_u64(o, "generation", bt_node_generation(n));
	out_u64(o, "owner", bt_node_owner(n));
	if (problem) {
		report(d, bt_node_bytenr(n), problem);
		out_qstr(o, "problem", problem, strlen(problem));
		d->problems++;
	}
	if (bt_node_level(n))
		dump_ptrs(d, n);
	else
		dump_items(d, n);
	out_obj_end(o);
}

/* A node that could not be read: one error line, and the walk goes on. */
static void dump_node_error(struct dump *d, uint64_t bytenr, uint8_t level, int err)
{
	struct out *o = d->o;
	const char *e = strerror(-err);

	out_obj_begin(o, NULL, "node", FRAME_LINE);
	out_anon_u64(o, "bytenr", bytenr);
	out_u64(o, "level", level);
	out_qstr(o, "error", e, strlen(e));
	out_u64(o, "errno", (uint64_t)-err);
	if (d->last_msg[0])
		out_qstr(o, "problem", d->last_msg, strlen(d->last_msg));
	out_obj_end(o);
	d->problems++;
}

/*
 * Read and print one node. Returns 0 with *n held, or -1 when it could not be read (printed as
 * an error). The level is checked here, not left to bt_node_get(), so that an impossible level
 * reads as a corrupt pointer (EUCLEAN) rather than as an I/O error.
 */
static int read_and_dump(struct dump *d, uint64_t bytenr, uint8_t level, uint64_t gen,
			 const struct bt_key *pkey, struct bt_node *n)
{
	int ret;

	d->last_msg[0] = 0;
	if (level >= BT_MAX_LEVEL) {
		report(d, bytenr, "tree level out of range");
		dump_node_error(d, bytenr, level, -EUCLEAN);
		return -1;
	}
	ret = bt_node_get(d->bfs, bytenr, level, gen, n);
	if (ret < 0) {
		dump_node_error(d, bytenr, level, ret);
		return -1;
	}
	dump_node(d, n, pkey);
	return 0;
}

/*
 * The subtree at `bytenr`, parents before children. Depth is bounded: levels decrease.
 * Not bt_walk(): each child is checked against the key of the pointer that led to it.
 */
static void walk_node(struct dump *d, uint64_t bytenr, uint8_t level, uint64_t gen,
		      const struct bt_key *pkey)
{
	struct bt_node n;
	struct bt_key k;
	uint64_t child, child_gen;

	if (read_and_dump(d, bytenr, level, gen, pkey, &n) < 0)
		return;
	for (uint32_t i = 0; level > 0 && i < bt_node_nritems(&n); i++) {
		bt_node_key(&n, i, &k);
		child = bt_node_child(&n, i, &child_gen);
		walk_node(d, child, level - 1, child_gen, &k);
	}
	bt_node_put(&n);
}

static void dump_tree(struct dump *d, const struct tree_ref *t)
{
	struct out *o = d->o;
	const char *name = tree_name(t->id);

	out_obj_begin(o, NULL, "tree", FRAME_LINE);
	out_anon_u64(o, "id", t->id);
	if (name)
		out_tag(o, "name", name);
	out_u64(o, "root", t->bytenr);
	out_u64(o, "level", t->level);
	out_u64(o, "generation", t->generation);
	out_arr_begin(o, "nodes", NULL);
	d->collect_roots = t->id == ROOT_TREE_ID;
	walk_node(d, t->bytenr, t->level, t->generation, NULL);
	d->collect_roots = false;
	out_arr_end(o);
	out_obj_end(o);
}

static struct tree_ref root_tree_ref(const struct dump *d)
{
	return (struct tree_ref){
		.id = ROOT_TREE_ID, .bytenr = get_le64(&d->sb->root_tree_bytenr),
		.generation = get_le64(&d->sb->root_tree_gen), .level = d->sb->root_tree_level,
	};
}

/* Every tree: the root tree, then each tree it has a root item for. */
static int dump_all_trees(struct dump *d)
{
	struct tree_ref root = root_tree_ref(d);

	out_arr_begin(d->o, "trees", NULL);
	dump_tree(d, &root);
	for (size_t i = 0; i < d->ntrees; i++)
		dump_tree(d, &d->trees[i]);
	out_arr_end(d->o);
	return d->collect_err;
}

/* Only tree `id`; for any but the root tree, its root item is found by a silent walk. */
static int dump_one_tree(struct dump *d, uint64_t id)
{
	struct tree_ref root = root_tree_ref(d);
	const struct tree_ref *t = id == ROOT_TREE_ID ? &root : NULL;

	if (!t) {
		d->o->mute = true;
		dump_tree(d, &root);
		d->o->mute = false;
		for (size_t i = 0; i < d->ntrees && !t; i++)
			t = d->trees[i].id == id ? &d->trees[i] : NULL;
	}
	out_arr_begin(d->o, "trees", NULL);
	if (t) {
		dump_tree(d, t);
	} else {
		fprintf(stderr, PROG ": %s: no tree %" PRIu64 " (no root item for it was read)\n",
			d->image, id);
		d->problems++;
	}
	out_arr_end(d->o);
	return d->collect_err;
}

/* One node by address; its level comes from its own header (no parent to promise it). */
static int dump_block(struct dump *d, uint64_t bytenr)
{
	uint32_t ss = get_le32(&d->sb->sectorsize), ns = d->bfs->nodesize;
	uint64_t total = get_le64(&d->sb->total_bytes);
	struct bt_node n;
	uint8_t level = 0;
	int ret;

	if (bytenr % ss || bytenr < COWFS_DATA_START || bytenr > total || total - bytenr < ns) {
		fprintf(stderr, PROG ": %s: block %" PRIu64 " is not a node address (sector-aligned, "
			"between %llu and %" PRIu64 ")\n", d->image, bytenr, COWFS_DATA_START,
			total - ns);
		d->problems++;
		return 0;
	}
	out_arr_begin(d->o, "nodes", NULL);
	d->last_msg[0] = 0;
	ret = bt_node_peek_level(d->bfs, bytenr, &level);
	if (ret < 0)
		dump_node_error(d, bytenr, 0, ret);
	else if (read_and_dump(d, bytenr, level, 0, NULL, &n) == 0)
		bt_node_put(&n);
	out_arr_end(d->o);
	return 0;
}

/* ---- dump command line ----------------------------------------------------------------- */

struct dump_args {
	const char *image;
	bool json, super;
	bool tree_set, block_set, inode_set;
	uint64_t tree, block, inode;
	const char *path;        /* --path: resolved to an inode from the root directory */
};

/* ---- one file's extents ------------------------------------------------------------------ */

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
	int ret = extent_lookup(&d->fs->ext, start, len, &e);

	if (ret < 0) {
		out_str(o, "extent", ret == -ENOENT ? "missing" : "unreadable");
		d->problems++;
		return;
	}
	out_u64(o, "extent_refs", e.refs);
	out_u64(o, "extent_generation", e.generation);
	out_arr_begin(o, "references", "references");
	ret = extent_walk_one(&d->fs->ext, start,
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

static int dump_file(struct dump *d, const struct dump_args *a)
{
	uint64_t tree = a->tree_set ? a->tree : FS_TREE_ID, ino = a->inode;
	struct out *o = d->o;
	struct cowfs_root *r;
	struct inode_tree it;
	struct cowfs_attr attr;
	struct bt_cursor c;
	struct bt_key k, from;
	const void *data;
	uint32_t len;
	int ret;

	if (!d->fs) {
		fprintf(stderr, PROG ": a file's extents need a filesystem that opens cleanly\n");
		d->problems++;
		return 0;
	}
	ret = cowfs_tree_open(d->fs, tree, &r);
	inode_tree_init(&it, d->fs, r);
	if (ret == 0 && a->path)
		ret = resolve_path(&it, a->path, &ino);
	if (ret == 0)
		ret = inode_getattr(&it, ino, &attr);
	if (ret < 0) {
		fprintf(stderr, PROG ": tree %" PRIu64 " %s %s: %s\n", tree, a->path ? "path" : "inode",
			a->path ? a->path : "", strerror(-ret));
		d->problems++;
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

static void dump_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " dump [options] IMAGE\n"
		"Print the superblock and every tree of a cowfs image (read-only).\n"
		"\n"
		"  --super             only the superblock and its copies\n"
		"  --tree ID           only one tree: a number, or root, extent, fs\n"
		"  --block BYTENR      only the node at BYTENR\n"
		"  --inode INO         one file's extents: disk location, length, generation,\n"
		"                      refcount and every reference to them (tree: --tree, or fs)\n"
		"  --path /A/B         the same for the file at that path\n"
		"  --json              one JSON document instead of text\n"
		"  -h, --help          show this help\n"
		"\n"
		"Exit status: 0 all read and sound, 1 something unreadable or corrupt, 2 usage.\n");
}

static int dump_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG " dump: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '" PROG " dump --help' for more information.\n");
	return EXIT_USAGE;
}

/* A whole-string unsigned number (decimal, or 0x hex). */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || *end ? -1 : 0;
}

static int parse_tree(const char *s, uint64_t *id)
{
	static const struct { const char *name; uint64_t id; } names[] = {
		{ "root", ROOT_TREE_ID }, { "extent", EXTENT_TREE_ID }, { "fs", FS_TREE_ID },
		{ "csum", CSUM_TREE_ID },
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*id = names[i].id;
			return 0;
		}
	}
	return parse_u64(s, id);
}

/* Returns 0, EXIT_USAGE, or -1 when help was printed. */
static int parse_dump_args(int argc, char **argv, struct dump_args *a)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "super", no_argument, NULL, 's' },
		{ "tree", required_argument, NULL, 't' },
		{ "block", required_argument, NULL, 'b' },
		{ "inode", required_argument, NULL, 'i' },
		{ "path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "jst:b:i:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 's':
			a->super = true;
			break;
		case 't':
			if (parse_tree(optarg, &a->tree) < 0)
				return dump_usage_error("invalid tree '%s' (a number, or root, "
							"extent, fs)", optarg);
			a->tree_set = true;
			break;
		case 'b':
			if (parse_u64(optarg, &a->block) < 0)
				return dump_usage_error("invalid block address '%s'", optarg);
			a->block_set = true;
			break;
		case 'i':
			if (parse_u64(optarg, &a->inode) < 0)
				return dump_usage_error("invalid inode number '%s'", optarg);
			a->inode_set = true;
			break;
		case 'p':
			if (optarg[0] != '/')
				return dump_usage_error("path '%s' must start at the root: /...", optarg);
			a->path = optarg;
			a->inode_set = true;
			break;
		case 'h':
			dump_usage(stdout);
			return -1;
		default:
			fprintf(stderr, "Try '" PROG " dump --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc)
		return dump_usage_error("%s", optind >= argc ? "no IMAGE given"
							     : "more than one IMAGE given");
	a->image = argv[optind];
	return 0;
}

/* The parts asked for, in order; a negative errno only for a failure of the tool itself. */
static int dump_parts(struct dump *d, const struct dump_args *a)
{
	bool all = !a->super && !a->tree_set && !a->block_set && !a->inode_set;
	int ret = 0;

	if (all || a->super)
		ret = dump_super(d);
	if (ret == 0 && all)
		ret = dump_all_trees(d);
	if (ret == 0 && a->tree_set && !a->inode_set)
		ret = dump_one_tree(d, a->tree);
	if (ret == 0 && a->inode_set)
		ret = dump_file(d, a);
	if (ret == 0 && a->block_set)
		ret = dump_block(d, a->block);
	return ret;
}

static int finish_output(FILE *f)
{
	if (fflush(f) != 0 || ferror(f)) {
		fprintf(stderr, PROG ": writing output: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int cmd_dump(int argc, char **argv)
{
	struct dump_args a;
	struct out o;
	struct dump d;
	int ret = parse_dump_args(argc, argv, &a);

	if (ret < 0)
		return finish_output(stdout);
	if (ret)
		return ret;
	memset(&d, 0, sizeof(d));
	out_init(&o, stdout, a.json);
	d.o = &o;
	d.image = a.image;
	ret = open_image(&d);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: cannot open: %s\n", a.image,
			ret == -EINVAL ? "not a cowfs image" :
			ret == -EOPNOTSUPP ? "made by a newer cowfs (unsupported format or feature)" :
			ret == -EBUSY ? "in use by a writer (a mounted filesystem or fsck --repair?)" :
			strerror(-ret));
		close_image(&d);
		return EXIT_FAIL;
	}
	out_obj_begin(&o, NULL, NULL, FRAME_BLOCK);
	if (a.json)
		out_qstr(&o, "image", a.image, strlen(a.image));
	ret = dump_parts(&d, &a);
	if (a.json) {
		out_u64(&o, "problems", d.problems);
		out_bool(&o, "opened_cleanly", !d.degraded);
	}
	out_obj_end(&o);
	if (a.json && !o.mute)
		fputc('\n', o.f);
	close_image(&d);
	free(d.trees);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: %s\n", a.image, strerror(-ret));
		return EXIT_FAIL;
	}
	if (finish_output(stdout) != EXIT_OK)
		return EXIT_FAIL;
	if (d.problems || d.degraded) {
		fprintf(stderr, PROG ": %s: %" PRIu64 " problem%s found%s\n", a.image, d.problems,
			d.problems == 1 ? "" : "s",
			d.degraded ? "; the filesystem did not open cleanly" : "");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- main ------------------------------------------------------------------------------ */

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "dump", cmd_dump, "print the superblock and trees of an image" },
};

static void usage(FILE *f)
{
	cowfs_mount_usage(f, PROG);
	fprintf(f, "\nOther uses: " PROG " COMMAND [options] ...\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun '" PROG " COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return finish_output(stdout);
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	}
	/* A mount is IMAGE MOUNTPOINT [options]; one word alone is a mistyped command. */
	if (argc == 2 && argv[1][0] != '-') {
		fprintf(stderr, PROG ": unknown command '%s' (a mount needs IMAGE MOUNTPOINT)\n",
			argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return cowfs_mount_main(argc, argv);
}
