/*
 * Holds and orphans: an inode whose last name goes away while the kernel still holds it (an
 * open file that was unlinked) keeps its items, with nlink 0, plus an orphan item naming it.
 * It is freed when the last hold is released; if the daemon dies first, the orphan item
 * survives in the committed tree and the next mount frees it (inode_orphans_cleanup).
 *
 * Freeing deletes every item of the inode (its data extents lose their references through
 * the item hook) and the orphan item, in transactions that may use the reserve: deleting must
 * work on a full filesystem. One transaction frees at most INODE_DROP_BATCH items (fewer when
 * space is short), so what it must reserve is bounded whatever the file's size (a file of 4 KiB random writes has an
 * extent item per block): a bigger inode first loses its file extent items from the front, a
 * batch per transaction (a hole growing over the file, nbytes kept exact), and the rest goes
 * with the inode item. An inode that has too many items for the unlink's own transaction
 * becomes an orphan in it even when nothing holds it (inode_orphan_reap frees it right after),
 * so a crash halfway leaves an orphan that the next mount finishes freeing.
 */
#include <errno.h>
#include <stdlib.h>

#include "fs/inode/icache.h"
#include "fs/inode/internal.h"

static struct bt_key orphan_key(uint64_t ino)
{
	return (struct bt_key){ ORPHAN_OBJECTID, ORPHAN_ITEM_KEY, ino };
}

static void forget_pages(struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;

	if (!e)
		return;
	pages_drop_range(it->icache, e, 0, UINT64_MAX);
	e->orphan = false;
	icache_release_if_idle(it->icache, e);
}

int inode_last_link_gone(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;
	struct bt_key k = orphan_key(ino);
	struct inode in;
	uint64_t items;
	int ret;

	if (!e || !e->holds) {
		forget_pages(it, ino);
		ret = inode_count_items(it, ino, INODE_DROP_INLINE + 1, &items);
		if (ret < 0 || items <= INODE_DROP_INLINE)
			return ret < 0 ? ret : inode_drop(tx, it, ino);
		/* Too big for this transaction: an orphan, freed in batches by inode_orphan_reap. */
		e = icache_of(it) ? icache_find(it->icache, ino, true) : NULL;
		if (!e)
			return -ENOMEM;
	}
	ret = inode_read(it, ino, &in);
	if (ret < 0)
		return ret;
	in.nlink = 0;
	in.ctime = inode_now();
	ret = inode_write(tx, it, ino, &in);
	if (ret == 0)
		ret = bt_insert(&tx->bt, inode_btree(it), &k, "", 0);
	if (ret == 0)
		e->orphan = true;
	return ret;
}

/* Whether ino is still an orphan nobody holds (inside a transaction). */
static bool orphan_unheld(struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;
	struct bt_key k = orphan_key(ino);

	return !(e && e->holds) && bt_lookup(inode_btree(it), &k, NULL, 0, NULL) == 0;
}

static bool still_unheld_orphan(struct inode_tree *it, uint64_t ino, void *arg)
{
	(void)arg;
	return orphan_unheld(it, ino);
}

/* Free what is left of orphan ino (a few items) and its orphan item. */
static int orphan_drop(struct inode_tree *it, uint64_t ino, uint64_t items)
{
	struct cowfs_trans *tx;
	struct bt_key k = orphan_key(ino);
	int ret = inode_update_begin_nodes(it, ALLOC_PRIVILEGED, inode_drop_nodes(it, items + 4),
					   &tx);

	if (ret < 0)
		return ret;
	if (orphan_unheld(it, ino)) {
		forget_pages(it, ino);
		ret = inode_drop(tx, it, ino);
		if (ret == 0)
			ret = bt_delete(&tx->bt, inode_btree(it), &k);
	}
	return inode_update_end(tx, ret);
}

/* Free orphan `ino` unless something holds it again; no-op if it is no orphan. */
static int orphan_free(struct inode_tree *it, uint64_t ino)
{
	for (;;) {
		uint64_t items = 0;
		bool more = false;
		int ret;

		inode_lock_read(it);
		ret = inode_count_items(it, ino, INODE_DROP_INLINE + 1, &items);
		inode_unlock_read(it);
		if (ret == 0 && items > INODE_DROP_INLINE)
			ret = file_trim_batch(it, ino, 0, still_unheld_orphan, NULL, &more);
		if (ret < 0)
			return ret;
		if (!more)
			return orphan_drop(it, ino, items);
	}
}

int inode_orphan_reap(struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e;
	bool reap;

	inode_lock_read(it);
	e = it->icache ? icache_find(it->icache, ino, false) : NULL;
	reap = e && e->orphan && !e->holds;
	inode_unlock_read(it);
	return reap ? orphan_free(it, ino) : 0;
}

int inode_hold(struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e = NULL;
	struct inode_cache *ic;

	inode_lock_read(it);
	ic = icache_of(it);
	if (ic)
		e = icache_find(ic, ino, true);
	if (e)
		e->holds++;
	inode_unlock_read(it);
	return e ? 0 : -ENOMEM;
}

int inode_release(struct inode_tree *it, uint64_t ino, uint64_t n)
{
	struct icache_entry *e;
	bool free_now = false;

	inode_lock_read(it);
	e = it->icache ? icache_find(it->icache, ino, false) : NULL;
	if (e) {
		e->holds -= n < e->holds ? n : e->holds;
		free_now = !e->holds && e->orphan;
		icache_release_if_idle(it->icache, e);
	}
	inode_unlock_read(it);
	return free_now ? orphan_free(it, ino) : 0;
}

/* The orphan items' inode numbers, in a malloc'd array. */
static int list_orphans(struct inode_tree *it, uint64_t **out, size_t *n)
{
	struct bt_key from = orphan_key(0), k;
	struct bt_cursor c;
	uint64_t *v = NULL;
	size_t cap = 0;
	int ret;

	*n = 0;
	bt_cursor_init(&c, inode_btree(it));
	for (ret = bt_cursor_seek(&c, &from, BT_SEEK_GE); ret == 0; ret = bt_cursor_next(&c)) {
		bt_cursor_item(&c, &k, NULL, NULL);
		if (k.objectid != ORPHAN_OBJECTID || k.type != ORPHAN_ITEM_KEY)
			break;
		if (*n == cap) {
			uint64_t *w = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (!w) {
				ret = -ENOMEM;
				break;
			}
			v = w;
		}
		v[(*n)++] = k.offset;
	}
	bt_cursor_release(&c);
	*out = v;
	return ret == -ENOENT ? 0 : ret;
}

int inode_orphans_cleanup(struct inode_tree *it, uint64_t *freed)
{
	uint64_t *v;
	size_t n;
	int ret;

	*freed = 0;
	if (inode_tree_read_only(it))
		return 0;
	inode_lock_read(it);
	ret = list_orphans(it, &v, &n);
	inode_unlock_read(it);
	for (size_t i = 0; i < n && ret == 0; i++) {
		ret = orphan_free(it, v[i]);
		if (ret == 0)
			(*freed)++;
	}
	free(v);
	return ret;
}

/* Drop every hold: nothing holds an inode once its user (the kernel) is gone. */
static int drop_hold(void *arg, struct icache_entry *e)
{
	(void)arg;
	e->holds = 0;
	return 0;
}

int inode_tree_destroy(struct inode_tree *it)
{
	struct cowfs_trans *tx;
	uint64_t freed;
	int ret = 0;

	if (!it->icache) {
		bufpool_empty(&it->read_bufs);
		return 0;
	}
	inode_lock_read(it);
	icache_for_each(it->icache, drop_hold, NULL);
	inode_unlock_read(it);
	ret = inode_orphans_cleanup(it, &freed);
	if (!cowfs_read_only(it->fs)) {
		int r = cowfs_commit(it->fs);   /* writes back the dirty pages */
		if (ret == 0)
			ret = r;
	}
	/* Not beside a flush: it may be writing the pages about to be freed. */
	tx = cowfs_trans_begin(it->fs, ALLOC_NORMAL);
	cowfs_hooks_remove(it->fs, &it->hooks);
	icache_destroy(it->icache);
	it->icache = NULL;
	cowfs_trans_end(tx, 0);
	bufpool_empty(&it->read_bufs);   /* last: orphan cleanup and write-back may read */
	return ret;
}

void inode_tree_abort(void *arg)
{
	struct inode_tree *it = arg;

	if (it->icache)
		icache_abort(it->icache);
	it->next_ino = 0;
}
