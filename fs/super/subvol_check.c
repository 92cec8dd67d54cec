/*
 * The checker's look at the root tree's subvolume items (subvol.h, FORMAT.md 5.2): each decodes;
 * every ROOT_REF has its ROOT_BACKREF with the same payload and the other way round; a
 * subvolume hangs in at most one place, and a live one (not the top level) in exactly one; the
 * deleting list and the DELETING flag agree; every fs tree beyond the top level has its
 * SUBVOL_ITEM and every SUBVOL_ITEM its tree; the registry decodes and names a live default and
 * an id no lower than any in use. Where entries in fs trees point is the namespace checker's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs/super/internal.h"
#include "fs/super/root_item.h"
#include "fs/super/subvol.h"

struct sv_check {
	struct cowfs *fs;
	void (*problem)(void *arg, uint64_t bytenr, const char *msg);
	void *arg;
	uint64_t problems;
	uint64_t highest;       /* the highest subvolume id met */
	/* COWFS_INCOMPAT_SUBVOLS: trees beyond the top level are subvolumes. Before it, they are
	 * plain trees (tests and tools make those) and owe no subvolume items. */
	bool subvols;
};

static void sv_problem(struct sv_check *c, uint64_t id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void sv_problem(struct sv_check *c, uint64_t id, const char *fmt, ...)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "subvolume %" PRIu64 ": ", id);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	c->problems++;
	c->problem(c->arg, c->fs->root_tree.root, msg);
}

/* The payload of root-tree item `k` into buf (at most size bytes): 0, -ENOENT, -EIO. */
static int item_of(struct cowfs *fs, const struct bt_key *k, void *buf, uint32_t size,
		   uint32_t *len)
{
	return bt_lookup(&fs->root_tree, k, buf, size, len);
}

static void check_subvol_item(struct sv_check *c, uint64_t id, const void *d, uint32_t len)
{
	struct bt_key del = { SUBVOL_DELETING_OBJECTID, SUBVOL_DELETING_KEY, id };
	struct subvol_info si;
	struct tree_root tr;
	const char *why;
	bool listed;

	if (!subvol_id_valid(id)) {
		sv_problem(c, id, "subvolume item of an impossible id");
		return;
	}
	if (id > c->highest && id != FS_TREE_ID)
		c->highest = id;
	if (subvol_item_decode(d, len, &si, &why) < 0) {
		sv_problem(c, id, "%s", why);
		return;
	}
	if (root_item_lookup(&c->fs->root_tree, id, &tr) == -ENOENT)
		sv_problem(c, id, "subvolume item but no tree (root item)");
	listed = item_of(c->fs, &del, NULL, 0, NULL) == 0;
	if (listed != !!(si.flags & SUBVOL_DELETING))
		sv_problem(c, id, listed ? "on the deleting list but not flagged deleting"
				    : "flagged deleting but not on the deleting list");
	if (id == FS_TREE_ID && (si.flags & SUBVOL_DELETING))
		sv_problem(c, id, "the top level cannot be deleted");
}

/* A ROOT_REF (or ROOT_BACKREF, `back`) and its twin under the other key. */
static void check_ref(struct sv_check *c, const struct bt_key *k, const void *d, uint32_t len,
		      bool back)
{
	uint64_t id = back ? k->objectid : k->offset, parent = back ? k->offset : k->objectid;
	struct bt_key twin = { back ? parent : id, back ? ROOT_REF_KEY : ROOT_BACKREF_KEY,
			       back ? id : parent };
	struct bt_key item = { id, SUBVOL_ITEM_KEY, 0 };
	uint8_t buf[sizeof(struct root_ref) + 256];
	struct subvol_info ref, si;
	const char *why;
	uint32_t tlen = 0;

	if (root_ref_decode(d, len, &ref, &why) < 0) {
		sv_problem(c, id, "%s", why);
		return;
	}
	if (!subvol_id_valid(parent) || parent == id || id == FS_TREE_ID) {
		sv_problem(c, id, "linked in impossible subvolume %" PRIu64, parent);
		return;
	}
	if (item_of(c->fs, &twin, buf, sizeof(buf), &tlen) < 0 || tlen != len ||
	    memcmp(buf, d, len) != 0)
		sv_problem(c, id, "root %s in subvolume %" PRIu64 " without its twin",
			   back ? "backref" : "ref", parent);
	if (back && item_of(c->fs, &item, buf, sizeof(buf), &tlen) == 0 &&
	    subvol_item_decode(buf, tlen, &si, &why) == 0 && (si.flags & SUBVOL_DELETING))
		sv_problem(c, id, "deleting, but still linked in subvolume %" PRIu64, parent);
}

/* Every fs tree beyond the top level is a subvolume: it has an item, and unless it is being
 * deleted exactly one backref. */
static void check_tree(struct sv_check *c, uint64_t id)
{
	struct bt_key item = { id, SUBVOL_ITEM_KEY, 0 };
	struct subvol_info si;

	if (!c->subvols || id < SUBVOL_FIRST_ID || id > SUBVOL_LAST_ID)
		return;
	if (id > c->highest)
		c->highest = id;
	if (item_of(c->fs, &item, NULL, 0, NULL) == -ENOENT) {
		sv_problem(c, id, "fs tree without a subvolume item");
		return;
	}
	if (cowfs_subvol_get(c->fs, id, &si) == 0 && !(si.flags & SUBVOL_DELETING) && !si.parent)
		sv_problem(c, id, "live subvolume linked nowhere");
}

static void check_deleting(struct sv_check *c, uint64_t id)
{
	struct bt_key item = { id, SUBVOL_ITEM_KEY, 0 };

	if (item_of(c->fs, &item, NULL, 0, NULL) == -ENOENT)
		sv_problem(c, id, "on the deleting list without a subvolume item");
}

static void check_registry(struct sv_check *c, const void *d, uint32_t len)
{
	uint64_t def, last;
	struct subvol_info si;
	const char *why;

	if (subvol_registry_decode(d, len, &def, &last, &why) < 0) {
		sv_problem(c, SUBVOL_REGISTRY_OBJECTID, "%s", why);
		return;
	}
	if (cowfs_subvol_get(c->fs, def, &si) < 0 || (si.flags & SUBVOL_DELETING))
		sv_problem(c, def, "the default subvolume does not exist or is being deleted");
	if (last < c->highest)
		sv_problem(c, SUBVOL_REGISTRY_OBJECTID, "registry's last id %" PRIu64
			   " is below subvolume %" PRIu64 ", which is in use", last, c->highest);
}

int subvol_check_items(struct cowfs *fs, void (*problem)(void *, uint64_t, const char *),
		       void *arg, uint64_t *problems)
{
	struct sv_check c = { fs, problem, arg, 0, 0,
			      (cowfs_incompat_features(fs) & COWFS_INCOMPAT_SUBVOLS) != 0 };
	struct bt_key reg = { SUBVOL_REGISTRY_OBJECTID, SUBVOL_REGISTRY_KEY, 0 };
	uint8_t regbuf[sizeof(struct subvol_registry)];
	struct bt_cursor cur;
	struct bt_key k;
	const void *d;
	uint32_t len;
	int ret;

	bt_cursor_init(&cur, &fs->root_tree);
	for (ret = bt_cursor_seek(&cur, &BT_KEY_MIN, BT_SEEK_GE); ret == 0;
	     ret = bt_cursor_next(&cur)) {
		bt_cursor_item(&cur, &k, &d, &len);
		if (k.type == SUBVOL_ITEM_KEY)
			check_subvol_item(&c, k.objectid, d, len);
		else if (k.type == ROOT_REF_KEY || k.type == ROOT_BACKREF_KEY)
			check_ref(&c, &k, d, len, k.type == ROOT_BACKREF_KEY);
		else if (k.type == ROOT_ITEM_KEY)
			check_tree(&c, k.objectid);
		else if (k.objectid == SUBVOL_DELETING_OBJECTID && k.type == SUBVOL_DELETING_KEY)
			check_deleting(&c, k.offset);
	}
	bt_cursor_release(&cur);
	if (ret == -ENOENT)
		ret = 0;
	if (ret == 0) {
		ret = item_of(fs, &reg, regbuf, sizeof(regbuf), &len);
		if (ret == 0)
			check_registry(&c, regbuf, len);
		else if (ret == -ENOENT && c.highest && c.subvols)
			sv_problem(&c, SUBVOL_REGISTRY_OBJECTID, "subvolumes but no registry");
		if (ret == -ENOENT)
			ret = 0;
	}
	*problems += c.problems;
	return ret;
}
