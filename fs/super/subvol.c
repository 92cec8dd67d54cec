/*
 * Subvolumes in the root tree (subvol.h): their items' one decoder and encoder, lookups, and
 * the updates that make, move, flag and unlink them. The drop of a deleted one is
 * subvol_drop.c's; its space, subvol_space.c's.
 */
#include "fs/super/subvol.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fs/lib/endian.h"
#include "fs/super/internal.h"
#include "fs/super/root_item.h"

static bool bytes_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

bool subvol_id_valid(uint64_t id)
{
	return id == FS_TREE_ID || (id >= SUBVOL_FIRST_ID && id <= SUBVOL_LAST_ID);
}

/* ---- the one decoder and encoder ---------------------------------------------------------- */

int subvol_item_decode(const void *data, uint32_t len, struct subvol_info *out, const char **why)
{
	const struct subvol_item *si = data;

	if (len != sizeof(*si)) {
		*why = "subvolume item has the wrong size";
		return -EUCLEAN;
	}
	if (si->version != SUBVOL_ITEM_VERSION) {
		*why = "subvolume item of an unknown version";
		return -EUCLEAN;
	}
	out->flags = get_le32(&si->flags);
	if (out->flags & ~SUBVOL_FLAGS_KNOWN) {
		*why = "subvolume item with unknown flags";
		return -EUCLEAN;
	}
	if (!bytes_zero(si->reserved0, sizeof(si->reserved0)) || si->reserved1 ||
	    !bytes_zero(si->reserved, sizeof(si->reserved))) {
		*why = "subvolume item with non-zero reserved bytes";
		return -EUCLEAN;
	}
	out->source = get_le64(&si->source);
	if (out->source && !subvol_id_valid(out->source)) {
		*why = "subvolume item names an impossible source";
		return -EUCLEAN;
	}
	out->ctransid = get_le64(&si->ctransid);
	out->otime.tv_sec = (time_t)get_le64(&si->otime_sec);
	out->otime.tv_nsec = get_le32(&si->otime_nsec);
	if (out->otime.tv_nsec >= 1000000000L) {
		*why = "subvolume item with an impossible time";
		return -EUCLEAN;
	}
	memcpy(out->uuid, si->uuid, 16);
	memcpy(out->source_uuid, si->source_uuid, 16);
	out->drop_total = get_le64(&si->drop_total);
	out->drop_done = get_le64(&si->drop_done);
	if (out->drop_done > out->drop_total) {
		*why = "subvolume item's drop progress is past its total";
		return -EUCLEAN;
	}
	return 0;
}

static void subvol_item_encode(const struct subvol_info *in, struct subvol_item *si)
{
	memset(si, 0, sizeof(*si));
	si->version = SUBVOL_ITEM_VERSION;
	put_le32(&si->flags, in->flags);
	put_le64(&si->source, in->source);
	put_le64(&si->ctransid, in->ctransid);
	put_le64(&si->otime_sec, (uint64_t)in->otime.tv_sec);
	put_le32(&si->otime_nsec, (uint32_t)in->otime.tv_nsec);
	memcpy(si->uuid, in->uuid, 16);
	memcpy(si->source_uuid, in->source_uuid, 16);
	put_le64(&si->drop_total, in->drop_total);
	put_le64(&si->drop_done, in->drop_done);
}

int root_ref_decode(const void *data, uint32_t len, struct subvol_info *out, const char **why)
{
	const struct root_ref *rr = data;
	const char *name = (const char *)(rr + 1);
	uint16_t nlen;

	if (len < sizeof(*rr)) {
		*why = "root ref cut short";
		return -EUCLEAN;
	}
	nlen = get_le16(&rr->name_len);
	if (nlen == 0 || nlen > 255 || len != sizeof(*rr) + nlen) {
		*why = "root ref name length does not match the item";
		return -EUCLEAN;
	}
	if (memchr(name, '/', nlen) || memchr(name, 0, nlen) ||
	    (nlen == 1 && name[0] == '.') || (nlen == 2 && name[0] == '.' && name[1] == '.')) {
		*why = "root ref name is not a file name";
		return -EUCLEAN;
	}
	out->dir = get_le64(&rr->dir);
	out->index = get_le64(&rr->index);
	if (out->dir < 256 || out->index < 2) {
		*why = "root ref names an impossible directory or index";
		return -EUCLEAN;
	}
	memcpy(out->name, name, nlen);
	out->name[nlen] = 0;
	out->name_len = nlen;
	return 0;
}

static uint32_t root_ref_encode(uint64_t dir, uint64_t index, const char *name, size_t len,
				uint8_t *buf)
{
	struct root_ref *rr = (struct root_ref *)buf;

	put_le64(&rr->dir, dir);
	put_le64(&rr->index, index);
	put_le16(&rr->name_len, (uint16_t)len);
	memcpy(rr + 1, name, len);
	return (uint32_t)(sizeof(*rr) + len);
}

int subvol_registry_decode(const void *data, uint32_t len, uint64_t *default_id,
			   uint64_t *last_id, const char **why)
{
	const struct subvol_registry *r = data;

	if (len != sizeof(*r) || r->version != SUBVOL_REGISTRY_VERSION) {
		*why = "subvolume registry has the wrong size or version";
		return -EUCLEAN;
	}
	if (!bytes_zero(r->reserved0, sizeof(r->reserved0)) ||
	    !bytes_zero(r->reserved, sizeof(r->reserved))) {
		*why = "subvolume registry with non-zero reserved bytes";
		return -EUCLEAN;
	}
	*default_id = get_le64(&r->default_id);
	*last_id = get_le64(&r->last_id);
	if (!subvol_id_valid(*default_id) || (*last_id && *last_id < SUBVOL_FIRST_ID - 1) ||
	    *last_id > SUBVOL_LAST_ID) {
		*why = "subvolume registry names impossible ids";
		return -EUCLEAN;
	}
	return 0;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int corrupt(struct cowfs *fs, uint64_t id, const char *why)
{
	cowfs_report(fs, bt_item_leaf(&fs->root_tree), "subvolume %llu: %s",
		     (unsigned long long)id, why);
	return -EUCLEAN;
}

/* The subvolume item of `id` into *out (-ENOENT if it has none). */
static int read_subvol_item(struct cowfs *fs, uint64_t id, struct subvol_info *out)
{
	struct bt_key k = { id, SUBVOL_ITEM_KEY, 0 };
	struct subvol_item si;
	const char *why;
	uint32_t len;
	int ret = bt_lookup(&fs->root_tree, &k, &si, sizeof(si), &len);

	if (ret < 0)
		return ret;
	if (subvol_item_decode(&si, len, out, &why) < 0)
		return corrupt(fs, id, why);
	return 0;
}

/* The first item of type `type` with objectid `id` (any offset): its offset and payload. */
static int first_of_type(struct cowfs *fs, uint64_t id, uint8_t type, uint64_t *offset,
			 void *buf, uint32_t bufsize, uint32_t *len)
{
	struct bt_cursor cur;
	struct bt_key k = { id, type, 0 };
	const void *d;
	int ret;

	bt_cursor_init(&cur, &fs->root_tree);
	ret = bt_cursor_seek(&cur, &k, BT_SEEK_GE);
	if (ret == 0) {
		bt_cursor_item(&cur, &k, &d, len);
		if (k.objectid != id || k.type != type) {
			ret = -ENOENT;
		} else {
			*offset = k.offset;
			memcpy(buf, d, *len < bufsize ? *len : bufsize);
		}
	}
	bt_cursor_release(&cur);
	return ret;
}

/* Where `id` hangs (its ROOT_BACKREF), into out->parent/dir/index/name; none: parent 0. */
static int read_backref(struct cowfs *fs, uint64_t id, struct subvol_info *out)
{
	uint8_t buf[sizeof(struct root_ref) + 256];
	const char *why;
	uint64_t parent = 0;
	uint32_t len = 0;
	int ret = first_of_type(fs, id, ROOT_BACKREF_KEY, &parent, buf, sizeof(buf), &len);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (len > sizeof(buf) || root_ref_decode(buf, len, out, &why) < 0)
		return corrupt(fs, id, len > sizeof(buf) ? "root backref too long" : why);
	if (!subvol_id_valid(parent) || parent == id)
		return corrupt(fs, id, "root backref names an impossible parent");
	out->parent = parent;
	return 0;
}

/* The generation of `id`'s tree as it stands now (uncommitted changes included). */
static int tree_generation(struct cowfs *fs, uint64_t id, uint64_t *gen)
{
	struct cowfs_root *r = fs_find_open_tree(fs, id);
	struct tree_root tr;
	int ret;

	if (r) {
		*gen = r->t.root_gen;
		return 0;
	}
	ret = root_item_lookup(&fs->root_tree, id, &tr);
	if (ret == -EUCLEAN)
		return corrupt(fs, id, "malformed root item");
	if (ret == 0)
		*gen = tr.generation;
	return ret;
}

int cowfs_subvol_get(struct cowfs *fs, uint64_t id, struct subvol_info *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->id = id;
	if (!subvol_id_valid(id))
		return -ENOENT;
	ret = read_subvol_item(fs, id, out);
	if (ret == -ENOENT && id == FS_TREE_ID)
		ret = 0;   /* the top level has an item only once a flag was set on it */
	if (ret < 0)
		return ret;
	out->id = id;
	ret = read_backref(fs, id, out);
	if (ret == 0)
		ret = tree_generation(fs, id, &out->generation);
	if (ret == -ENOENT)
		return corrupt(fs, id, "subvolume item of a tree that does not exist");
	return ret;
}

int cowfs_subvol_next(struct cowfs *fs, uint64_t from, struct subvol_info *out)
{
	struct bt_cursor cur;
	struct bt_key k = { from < SUBVOL_FIRST_ID ? SUBVOL_FIRST_ID : from, SUBVOL_ITEM_KEY, 0 };
	uint64_t found = 0;
	int ret;

	if (from <= FS_TREE_ID)
		return cowfs_subvol_get(fs, FS_TREE_ID, out);
	bt_cursor_init(&cur, &fs->root_tree);
	for (ret = bt_cursor_seek(&cur, &k, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&cur)) {
		bt_cursor_item(&cur, &k, NULL, NULL);
		if (k.objectid > SUBVOL_LAST_ID) {
			ret = -ENOENT;
			break;
		}
		if (k.type == SUBVOL_ITEM_KEY) {
			found = k.objectid;
			break;
		}
	}
	bt_cursor_release(&cur);
	return ret < 0 ? ret : cowfs_subvol_get(fs, found, out);
}

int cowfs_subvol_next_child(struct cowfs *fs, uint64_t parent, uint64_t from,
			    struct subvol_info *out)
{
	struct bt_cursor cur;
	struct bt_key k = { parent, ROOT_REF_KEY, from };
	uint64_t child = 0;
	int ret;

	bt_cursor_init(&cur, &fs->root_tree);
	ret = bt_cursor_seek(&cur, &k, BT_SEEK_GE);
	if (ret == 0) {
		bt_cursor_item(&cur, &k, NULL, NULL);
		if (k.objectid != parent || k.type != ROOT_REF_KEY)
			ret = -ENOENT;
		else
			child = k.offset;
	}
	bt_cursor_release(&cur);
	return ret < 0 ? ret : cowfs_subvol_get(fs, child, out);
}

int cowfs_subvol_child(struct cowfs *fs, uint64_t parent, uint64_t dir, const char *name,
		       size_t len, uint64_t *id)
{
	struct bt_cursor cur;
	struct bt_key k = { parent, ROOT_REF_KEY, 0 };
	const void *d;
	uint32_t dlen;
	int ret;

	bt_cursor_init(&cur, &fs->root_tree);
	for (ret = bt_cursor_seek(&cur, &k, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&cur)) {
		struct subvol_info ref;
		const char *why;
		bt_cursor_item(&cur, &k, &d, &dlen);
		if (k.objectid != parent || k.type != ROOT_REF_KEY) {
			ret = -ENOENT;
			break;
		}
		if (root_ref_decode(d, dlen, &ref, &why) < 0) {
			ret = corrupt(fs, k.offset, why);
			break;
		}
		if (ref.dir == dir && ref.name_len == len && memcmp(ref.name, name, len) == 0) {
			*id = k.offset;
			break;
		}
	}
	bt_cursor_release(&cur);
	return ret;
}

static int read_registry(struct cowfs *fs, uint64_t *default_id, uint64_t *last_id)
{
	struct bt_key k = { SUBVOL_REGISTRY_OBJECTID, SUBVOL_REGISTRY_KEY, 0 };
	struct subvol_registry r;
	const char *why;
	uint32_t len;
	int ret = bt_lookup(&fs->root_tree, &k, &r, sizeof(r), &len);

	if (ret == -ENOENT) {
		*default_id = FS_TREE_ID;
		*last_id = 0;
		return -ENOENT;
	}
	if (ret < 0)
		return ret;
	if (subvol_registry_decode(&r, len, default_id, last_id, &why) < 0)
		return corrupt(fs, SUBVOL_REGISTRY_OBJECTID, why);
	return 0;
}

int cowfs_subvol_get_default(struct cowfs *fs, uint64_t *id)
{
	uint64_t last;
	int ret = read_registry(fs, id, &last);

	return ret == -ENOENT ? 0 : ret;
}

int cowfs_subvol_next_deleting(struct cowfs *fs, uint64_t from, uint64_t *id)
{
	struct bt_cursor cur;
	struct bt_key k = { SUBVOL_DELETING_OBJECTID, SUBVOL_DELETING_KEY, from };
	int ret;

	bt_cursor_init(&cur, &fs->root_tree);
	ret = bt_cursor_seek(&cur, &k, BT_SEEK_GE);
	if (ret == 0) {
		bt_cursor_item(&cur, &k, NULL, NULL);
		if (k.objectid != SUBVOL_DELETING_OBJECTID || k.type != SUBVOL_DELETING_KEY)
			ret = -ENOENT;
		else
			*id = k.offset;
	}
	bt_cursor_release(&cur);
	return ret;
}

/* ---- updates ------------------------------------------------------------------------------------ */

static int write_registry(struct cowfs_trans *tx, uint64_t default_id, uint64_t last_id,
			  bool exists)
{
	struct bt_key k = { SUBVOL_REGISTRY_OBJECTID, SUBVOL_REGISTRY_KEY, 0 };
	struct subvol_registry r;

	memset(&r, 0, sizeof(r));
	r.version = SUBVOL_REGISTRY_VERSION;
	put_le64(&r.default_id, default_id);
	put_le64(&r.last_id, last_id);
	if (exists)
		return bt_update(&tx->bt, &tx->fs->root_tree, &k, &r, sizeof(r));
	return bt_insert(&tx->bt, &tx->fs->root_tree, &k, &r, sizeof(r));
}

int cowfs_subvol_set_default(struct cowfs_trans *tx, uint64_t id)
{
	struct subvol_info si;
	uint64_t old, last;
	int ret = cowfs_subvol_get(tx->fs, id, &si);

	if (ret < 0)
		return ret;
	if (si.flags & SUBVOL_DELETING)
		return -ENOENT;
	ret = read_registry(tx->fs, &old, &last);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && old == id)
		return 0;
	cowfs_trans_use_feature(tx, COWFS_INCOMPAT_SUBVOLS);
	return write_registry(tx, id, last, ret == 0);
}

static int write_subvol_item(struct cowfs_trans *tx, const struct subvol_info *si, bool exists)
{
	struct bt_key k = { si->id, SUBVOL_ITEM_KEY, 0 };
	struct subvol_item item;

	subvol_item_encode(si, &item);
	if (exists)
		return bt_update(&tx->bt, &tx->fs->root_tree, &k, &item, sizeof(item));
	return bt_insert(&tx->bt, &tx->fs->root_tree, &k, &item, sizeof(item));
}

int subvol_item_update_progress(struct cowfs_trans *tx, uint64_t id, uint64_t total,
				uint64_t done)
{
	struct subvol_info si;
	int ret = read_subvol_item(tx->fs, id, &si);

	if (ret < 0)
		return ret;
	si.id = id;
	si.drop_total = total;
	si.drop_done = done > total ? total : done;
	return write_subvol_item(tx, &si, true);
}

static int link_refs(struct cowfs_trans *tx, uint64_t id, uint64_t parent, uint64_t dir,
		     uint64_t index, const char *name, size_t len)
{
	uint8_t buf[sizeof(struct root_ref) + 256];
	uint32_t n = root_ref_encode(dir, index, name, len, buf);
	struct bt_key ref = { parent, ROOT_REF_KEY, id };
	struct bt_key back = { id, ROOT_BACKREF_KEY, parent };
	int ret = bt_insert(&tx->bt, &tx->fs->root_tree, &ref, buf, n);

	return ret < 0 ? ret : bt_insert(&tx->bt, &tx->fs->root_tree, &back, buf, n);
}

static int unlink_refs(struct cowfs_trans *tx, uint64_t id, uint64_t parent)
{
	struct bt_key ref = { parent, ROOT_REF_KEY, id };
	struct bt_key back = { id, ROOT_BACKREF_KEY, parent };
	int ret = bt_delete(&tx->bt, &tx->fs->root_tree, &ref);

	return ret < 0 ? ret : bt_delete(&tx->bt, &tx->fs->root_tree, &back);
}

/* The next id to hand out: past the registry's last one and every tree that exists. */
static int next_subvol_id(struct cowfs *fs, uint64_t *id)
{
	struct bt_cursor cur;
	struct bt_key k = { SUBVOL_LAST_ID, UINT8_MAX, UINT64_MAX };
	uint64_t def, last, highest = SUBVOL_FIRST_ID - 1;
	int ret = read_registry(fs, &def, &last);

	if (ret < 0 && ret != -ENOENT)
		return ret;
	bt_cursor_init(&cur, &fs->root_tree);
	ret = bt_cursor_seek(&cur, &k, BT_SEEK_LE);
	if (ret == 0) {
		bt_cursor_item(&cur, &k, NULL, NULL);
		if (k.objectid >= SUBVOL_FIRST_ID)
			highest = k.objectid;
	}
	bt_cursor_release(&cur);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	highest = last > highest ? last : highest;
	for (size_t i = 0; i < fs->nmore; i++)
		if (fs->more[i]->t.owner > highest && fs->more[i]->t.owner <= SUBVOL_LAST_ID)
			highest = fs->more[i]->t.owner;
	if (highest >= SUBVOL_LAST_ID)
		return -ENOSPC;
	*id = highest + 1;
	return 0;
}

static int note_last_id(struct cowfs_trans *tx, uint64_t id)
{
	uint64_t def, last;
	int ret = read_registry(tx->fs, &def, &last);

	if (ret < 0 && ret != -ENOENT)
		return ret;
	return write_registry(tx, def, id, ret == 0);
}

static void fill_new_info(struct cowfs_trans *tx, uint64_t id, struct cowfs_root *source,
			  uint32_t flags, struct subvol_info *si)
{
	memset(si, 0, sizeof(*si));
	si->id = id;
	si->flags = flags & SUBVOL_RDONLY;
	si->ctransid = tx->bt.transid;
	clock_gettime(CLOCK_REALTIME, &si->otime);
	if (getrandom(si->uuid, sizeof(si->uuid), 0) != (ssize_t)sizeof(si->uuid))
		for (size_t i = 0; i < sizeof(si->uuid); i++)   /* unique enough: id + time */
			si->uuid[i] = (uint8_t)((id >> (i % 8 * 8)) ^ ((uint64_t)si->otime.tv_nsec >> (i % 4 * 8)));
	if (source) {
		struct subvol_info src;
		si->source = source->t.owner;
		if (cowfs_subvol_get(tx->fs, source->t.owner, &src) == 0)
			memcpy(si->source_uuid, src.uuid, 16);
	}
}

int cowfs_subvol_create(struct cowfs_trans *tx, uint64_t parent, uint64_t dir, uint64_t index,
			const char *name, size_t len, struct cowfs_root *source, uint32_t flags,
			struct cowfs_root **out)
{
	struct subvol_info si;
	uint64_t id;
	int ret;

	if (tx->bt.error)
		return tx->bt.error;
	if (len == 0 || len > 255 || (flags & ~SUBVOL_RDONLY) || !subvol_id_valid(parent))
		return -EINVAL;
	ret = next_subvol_id(tx->fs, &id);
	if (ret < 0)
		return ret;
	fill_new_info(tx, id, source, flags, &si);
	cowfs_trans_use_feature(tx, COWFS_INCOMPAT_SUBVOLS);
	ret = source ? cowfs_tree_clone(tx, source, id, out) : cowfs_tree_create(tx, id, out);
	if (ret == 0)
		ret = write_subvol_item(tx, &si, false);
	if (ret == 0)
		ret = link_refs(tx, id, parent, dir, index, name, len);
	if (ret == 0)
		ret = note_last_id(tx, id);
	return ret;
}

int cowfs_subvol_set_flags(struct cowfs_trans *tx, uint64_t id, uint32_t flags)
{
	struct subvol_info si;
	bool exists = true;
	int ret;

	if (flags & ~SUBVOL_RDONLY)
		return -EINVAL;
	ret = read_subvol_item(tx->fs, id, &si);
	if (ret == -ENOENT && id == FS_TREE_ID) {
		memset(&si, 0, sizeof(si));
		exists = false;
		ret = 0;
	}
	if (ret < 0)
		return ret;
	if (si.flags & SUBVOL_DELETING)
		return -ENOENT;
	if ((si.flags & SUBVOL_RDONLY) == flags)
		return 0;
	si.id = id;
	si.flags = (si.flags & ~SUBVOL_RDONLY) | flags;
	cowfs_trans_use_feature(tx, COWFS_INCOMPAT_SUBVOLS);
	return write_subvol_item(tx, &si, exists);
}

int cowfs_subvol_move(struct cowfs_trans *tx, uint64_t id, uint64_t parent, uint64_t dir,
		      uint64_t index, const char *name, size_t len)
{
	struct subvol_info si;
	int ret = cowfs_subvol_get(tx->fs, id, &si);

	if (ret < 0)
		return ret;
	if (si.parent == 0 || len == 0 || len > 255)
		return -EINVAL;
	ret = unlink_refs(tx, id, si.parent);
	return ret < 0 ? ret : link_refs(tx, id, parent, dir, index, name, len);
}

int cowfs_subvol_unlink(struct cowfs_trans *tx, uint64_t id)
{
	struct bt_key del = { SUBVOL_DELETING_OBJECTID, SUBVOL_DELETING_KEY, id };
	struct subvol_info si;
	uint64_t def;
	int ret;

	if (id == FS_TREE_ID)
		return -EBUSY;
	ret = cowfs_subvol_get_default(tx->fs, &def);
	if (ret == 0 && def == id)
		ret = -EBUSY;
	if (ret == 0)
		ret = cowfs_subvol_get(tx->fs, id, &si);
	if (ret < 0)
		return ret;
	if (si.flags & SUBVOL_DELETING)
		return -ENOENT;
	if (si.parent) {
		ret = unlink_refs(tx, id, si.parent);
		if (ret < 0)
			return ret;
	}
	si.flags |= SUBVOL_DELETING;
	si.drop_total = si.drop_done = 0;   /* the first drop step sizes it */
	ret = write_subvol_item(tx, &si, true);
	return ret < 0 ? ret : bt_insert(&tx->bt, &tx->fs->root_tree, &del, NULL, 0);
}
