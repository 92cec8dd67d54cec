/*
 * The running transaction (trans.h): beginning and ending updates, the abort rule, space
 * reservation, the open trees' hooks, and what the layers above may ask of the filesystem.
 */
#include "fs/super/trans.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs/lib/endian.h"
#include "fs/super/internal.h"

/* ---- begin and end ------------------------------------------------------------------------ */

struct cowfs_trans *fs_running_trans(struct cowfs *fs)
{
	return &fs->trans;
}

void fs_trans_init(struct cowfs *fs, uint64_t transid, enum alloc_class cls)
{
	fs->trans = (struct cowfs_trans){ .fs = fs, .bt = { .fs = &fs->bfs, .transid = transid,
							   .alloc_class = cls } };
}

/*
 * The running update's own part of the handle. Updates are serialized by the lock, but one
 * that lets it go in the middle (a commit, a wait for one, a flush's data I/O) lets others
 * begin and end: it keeps its part across the wait and puts it back after.
 */
static struct cowfs_update_frame frame_save(const struct cowfs_trans *tx)
{
	return (struct cowfs_update_frame){ tx->bt.alloc_class, tx->outer_class,
					    tx->changes_at_begin };
}

static void frame_restore(struct cowfs_trans *tx, const struct cowfs_update_frame *f)
{
	tx->bt.alloc_class = f->cls;
	tx->outer_class = f->outer_class;
	tx->changes_at_begin = f->changes_at_begin;
}

static struct cowfs_trans *begin_locked(struct cowfs *fs, enum alloc_class cls)
{
	struct cowfs_trans *tx = &fs->trans;

	tx->outer_class = tx->bt.alloc_class;
	tx->bt.alloc_class = cls;
	tx->changes_at_begin = tx->bt.changes;
	return tx;
}

struct cowfs_trans *cowfs_trans_begin_beside_flush(struct cowfs *fs, enum alloc_class cls)
{
	pthread_mutex_lock(&fs->lock);
	return begin_locked(fs, cls);
}

struct cowfs_trans *cowfs_trans_begin(struct cowfs *fs, enum alloc_class cls)
{
	pthread_mutex_lock(&fs->lock);
	while (fs->flushing)
		pthread_cond_wait(&fs->commit_done, &fs->lock);
	return begin_locked(fs, cls);
}

int cowfs_trans_end_at(struct cowfs_trans *tx, int ret, const char *where)
{
	struct cowfs *fs = tx->fs;
	struct cowfs_update_frame f;

	/* What the update changed before it failed cannot be taken back one item at a time. */
	if (ret < 0 && tx->bt.changes != tx->changes_at_begin)
		bt_trans_fail_at(&tx->bt, ret, where);
	f = frame_save(tx);
	fs_abort_if_poisoned(fs);   /* may wait for a commit in flight */
	frame_restore(tx, &f);
	tx->bt.alloc_class = tx->outer_class;
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

unsigned cowfs_trans_set_class(struct cowfs_trans *tx, enum alloc_class cls)
{
	unsigned prev = tx->bt.alloc_class;

	tx->bt.alloc_class = cls;
	return prev;
}

/* ---- abort -------------------------------------------------------------------------------- */

/* From the superblock just written (or read): the next transaction may already have changed
 * the root tree in memory while the commit wrote it. */
void fs_note_committed(struct cowfs *fs)
{
	fs->committed_gen = get_le64(&fs->sb.generation);
	fs->committed_root = get_le64(&fs->sb.root_tree_bytenr);
	fs->committed_root_gen = get_le64(&fs->sb.root_tree_gen);
	fs->committed_root_level = fs->sb.root_tree_level;
}

/* Every tree as the last commit left it. A tree created since has no root item there: it is
 * left without a root, and reads of it fail (-EIO). */
static void reopen_committed_trees(struct cowfs *fs)
{
	struct cowfs_root *fixed[] = { &fs->extent_root, &fs->fs_root, &fs->csum_root };

	bt_open(&fs->root_tree, &fs->bfs, ROOT_TREE_ID, fs->committed_root,
		fs->committed_root_gen, fs->committed_root_level);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (fs_load_root(fs, fixed[i]->t.owner, fixed[i]) < 0)
			fixed[i]->t.root = 0;
	for (size_t i = 0; i < fs->nmore; i++) {
		struct cowfs_root *r = fs->more[i];
		if (r->saved_root == 0 || fs_load_root(fs, r->t.owner, r) < 0)
			r->t.root = 0;
	}
}

static void record_failure(struct cowfs *fs)
{
	struct cowfs_failure *f = &fs->failure;
	const struct bt_trans *bt = &fs->trans.bt;

	f->err = bt->error;
	f->transid = bt->transid;
	f->generation = fs->committed_gen;
	snprintf(f->msg, sizeof(f->msg),
		 "transaction %" PRIu64 " aborted: %s (errno %d) in %s; nothing of it is committed, "
		 "the filesystem is read-only at generation %" PRIu64,
		 bt->transid, strerror(-bt->error), -bt->error,
		 bt->error_where ? bt->error_where : "?", fs->committed_gen);
}

/*
 * Forget everything the poisoned transaction changed in memory: what it wrote is in free
 * space (nothing committed is overwritten, and what it freed stays pinned), so the trees as
 * last committed are intact on disk and in the cache's clean blocks.
 */
static void abort_transaction(struct cowfs *fs)
{
	fs->aborted = true;
	record_failure(fs);
	fs_report(fs, 0, fs->failure.msg);
	extent_forget_pending(&fs->ext);
	bcache_forget_dirty(fs->cache);
	reopen_committed_trees(fs);
	for (struct cowfs_hooks *h = fs->hooks; h; h = h->next)
		if (h->abort)
			h->abort(h->arg);
	fs->delalloc_bytes = 0;
	fs->incompat_new = 0;
	/* Writers waiting for a flush or commit that will never come give up now. */
	pthread_cond_broadcast(&fs->commit_done);
}

void fs_abort_if_poisoned(struct cowfs *fs)
{
	if (!fs->trans.bt.error || fs->aborted)
		return;
	/* A commit writing its superblock decides which generation the abort goes back to, and
	 * a flush writing file data is writing from the pages the abort drops. */
	while (fs->committing || fs->flushing)
		pthread_cond_wait(&fs->commit_done, &fs->lock);
	if (!fs->aborted)
		abort_transaction(fs);
}

void cowfs_get_status(struct cowfs *fs, struct cowfs_status *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&fs->lock);
	st->generation = fs->committed_gen;
	st->commits = fs->commits;
	st->flushes = fs->flushes;
	st->read_only = fs->read_only || fs->aborted;
	st->aborted = fs->aborted;
	if (fs->aborted)
		st->failure = fs->failure;
	pthread_mutex_unlock(&fs->lock);
}

void cowfs_inject_faults(struct cowfs *fs, int (*fn)(void *arg, const char *site), void *arg)
{
	pthread_mutex_lock(&fs->lock);
	fs->bfs.inject = fn;
	fs->bfs.inject_arg = arg;
	pthread_mutex_unlock(&fs->lock);
}

bool cowfs_failure(struct cowfs *fs, struct cowfs_failure *out)
{
	bool aborted;

	pthread_mutex_lock(&fs->lock);
	aborted = fs->aborted;
	if (aborted && out)
		*out = fs->failure;
	pthread_mutex_unlock(&fs->lock);
	return aborted;
}

/* ---- space -------------------------------------------------------------------------------- */

uint64_t cowfs_update_nodes(const struct btree *t)
{
	/* Shadow the path, split every level, grow a new root: 2 per level + 1. */
	return 2ull * (t->level + 1) + 1;
}

uint64_t cowfs_neighbour_update_nodes(const struct btree *t, uint64_t items)
{
	/* A node below a quarter full merges with a sibling (fs/btree), so a leaf holds at
	 * least nodesize / 4 / (128 + header) of these items; never count fewer than 8. Each
	 * leaf is shadowed once, and split or merged once more at most; the nodes above them
	 * are within both end paths plus one per 8 leaves (internal nodes hold far more). */
	uint64_t per_leaf = t->fs->nodesize / 512 > 8 ? t->fs->nodesize / 512 : 8;
	uint64_t leaves = items / per_leaf + 1;

	return 2 * leaves + leaves / 8 + 2 * cowfs_update_nodes(t);
}

/*
 * What the next commit may allocate to apply the pending references. Applying one head
 * changes an extent item and a backref, which can shadow an extent-tree leaf of its own when
 * the pending extents are scattered (frees after random deletes are), and the shadowed old
 * leaves stay pinned until the commit is on disk: so one node per head, plus the paths in
 * the extent tree and the root tree. Generous for sequential work; near a full filesystem it
 * just makes commits more frequent, which is what lets them keep fitting.
 */
static uint64_t commit_estimate(struct cowfs *fs)
{
	return (extent_pending(&fs->ext) + 4ull * BT_MAX_LEVEL) * fs->bfs.nodesize;
}

/*
 * Space kept for the tree blocks of updates that also take data: new data (a write, a
 * fallocate) may not use it, their tree blocks may. Without it, statfs could not say how much
 * data fits: an update needing d bytes of data and n tree blocks fits when both d <= avail
 * (statfs's figure, which leaves this out) and n blocks fit beside d, and a fixed headroom
 * larger than any ordinary update's n makes the first condition the one that decides.
 * (fmap_cost of a fallocate into an empty file is 2 + 8 * (2 * levels + 1) nodes.)
 */
#define COWFS_DATA_HEADROOM_NODES 128u

static uint64_t data_headroom(const struct cowfs *fs)
{
	return (uint64_t)COWFS_DATA_HEADROOM_NODES * fs->bfs.nodesize;
}

static bool space_for(struct cowfs_trans *tx, uint64_t nodes_bytes, uint64_t data_bytes)
{
	struct cowfs *fs = tx->fs;
	struct alloc_stats st;
	uint64_t floor, base;

	alloc_get_stats(fs->alloc, &st);
	/* Privileged updates leave half the reserve to the commit. */
	floor = tx->bt.alloc_class == ALLOC_PRIVILEGED ? st.reserve / 2 :
		alloc_class_floor(st.reserve, tx->bt.alloc_class);
	base = floor + fs->delalloc_bytes + commit_estimate(fs);
	if (st.free < base + nodes_bytes + data_bytes)
		return false;
	/* Normal data stays out of the headroom (statfs's avail says exactly how much fits). */
	return tx->bt.alloc_class != ALLOC_NORMAL || !data_bytes ||
	       st.free >= base + data_headroom(fs) + data_bytes;
}

int cowfs_reserve(struct cowfs_trans *tx, uint64_t nodes)
{
	return cowfs_reserve_data(tx, nodes, 0);
}

int cowfs_reserve_data(struct cowfs_trans *tx, uint64_t nodes, uint64_t data_bytes)
{
	struct cowfs *fs = tx->fs;
	uint64_t need = nodes * fs->bfs.nodesize;
	int ret;

	if (fs->read_only || fs->aborted)
		return -EROFS;
	if (tx->bt.error)
		return tx->bt.error;
	/* Bound what one transaction holds, writes at commit and loses in a crash: its dirty nodes
	 * and its delayed refs (in memory). Memory does not need the first: dirty nodes past 3/4
	 * of the block cache are written out early (bt_relieve_cache). */
	if (bcache_dirty_bytes(fs->cache) > fs->dirty_limit ||
	    extent_pending(&fs->ext) > COWFS_PENDING_REFS_LIMIT) {
		ret = cowfs_trans_commit(tx);
		if (ret < 0)
			return ret;
	}
	if (space_for(tx, need, data_bytes))
		return 0;
	ret = cowfs_trans_commit(tx);
	if (ret < 0)
		return ret;
	return space_for(tx, need, data_bytes) ? 0 : -ENOSPC;
}

void cowfs_delalloc_add(struct cowfs *fs, int64_t bytes)
{
	fs->delalloc_bytes += (uint64_t)bytes;
}

int cowfs_trans_commit(struct cowfs_trans *tx)
{
	struct cowfs_update_frame f = frame_save(tx);
	int ret = fs_commit_locked(tx);

	frame_restore(tx, &f);
	/* What the update changed so far is committed: only what it changes next is at stake. */
	if (ret == 0)
		tx->changes_at_begin = tx->bt.changes;
	return ret;
}

void cowfs_trans_commit_wait(struct cowfs_trans *tx)
{
	struct cowfs *fs = tx->fs;
	struct cowfs_update_frame f = frame_save(tx);

	while (fs->committing || fs->flushing)
		pthread_cond_wait(&fs->commit_done, &fs->lock);
	frame_restore(tx, &f);
}

void cowfs_flush_unlock(struct cowfs_trans *tx)
{
	tx->flush_frame = frame_save(tx);
	tx->fs->flushing = true;
	pthread_mutex_unlock(&tx->fs->lock);
}

void cowfs_flush_relock(struct cowfs_trans *tx)
{
	pthread_mutex_lock(&tx->fs->lock);
	frame_restore(tx, &tx->flush_frame);
	tx->fs->flushing = false;
	pthread_cond_broadcast(&tx->fs->commit_done);
}

void cowfs_trans_wait_progress(struct cowfs_trans *tx)
{
	struct cowfs_update_frame f = frame_save(tx);

	pthread_cond_wait(&tx->fs->commit_done, &tx->fs->lock);
	frame_restore(tx, &f);
}

bool cowfs_has_changes(struct cowfs *fs)
{
	return extent_pending(&fs->ext) || bcache_dirty_bytes(fs->cache) || fs->delalloc_bytes;
}

/* ---- hooks -------------------------------------------------------------------------------- */

void cowfs_hooks_add(struct cowfs *fs, struct cowfs_hooks *h)
{
	h->next = fs->hooks;
	fs->hooks = h;
}

void cowfs_hooks_remove(struct cowfs *fs, struct cowfs_hooks *h)
{
	for (struct cowfs_hooks **p = &fs->hooks; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			h->next = NULL;
			return;
		}
	}
}

int fs_hooks_before_commit(struct cowfs_trans *tx)
{
	int ret = 0;

	for (struct cowfs_hooks *h = tx->fs->hooks; h && ret == 0; h = h->next)
		if (h->before_commit)
			ret = h->before_commit(h->arg, tx);
	return ret;
}

int fs_hooks_flush(struct cowfs_trans *tx)
{
	int ret = 0;

	for (struct cowfs_hooks *h = tx->fs->hooks; h && ret == 0 && !cowfs_trans_error(tx);
	     h = h->next)
		if (h->flush)
			ret = h->flush(h->arg, tx);
	return ret;
}

/* ---- what the layers above may ask -------------------------------------------------------- */

void cowfs_lock(struct cowfs *fs) { pthread_mutex_lock(&fs->lock); }
void cowfs_unlock(struct cowfs *fs) { pthread_mutex_unlock(&fs->lock); }
bool cowfs_read_only(const struct cowfs *fs) { return fs->read_only || fs->aborted; }
void cowfs_data_read_begin(struct cowfs *fs) { pthread_rwlock_rdlock(&fs->data_readers); }
void cowfs_data_read_end(struct cowfs *fs) { pthread_rwlock_unlock(&fs->data_readers); }
struct extents *cowfs_extents(struct cowfs *fs) { return &fs->ext; }
struct blockdev *cowfs_bdev(struct cowfs *fs) { return fs->bd; }
uint32_t cowfs_sectorsize(const struct cowfs *fs) { return fs->ext.sectorsize; }
uint32_t cowfs_nodesize(const struct cowfs *fs) { return fs->bfs.nodesize; }
size_t cowfs_cache_bytes(const struct cowfs *fs) { return fs->cache_bytes; }

int cowfs_drop_caches(struct cowfs *fs)
{
	bcache_drop_clean(fs->cache);
	return bdev_drop_page_cache(fs->bd);
}
struct cowfs_root *cowfs_default_root(struct cowfs *fs) { return &fs->fs_root; }
struct btree *cowfs_root_tree(struct cowfs *fs) { return &fs->root_tree; }

void cowfs_report(struct cowfs *fs, uint64_t bytenr, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fs_report(fs, bytenr, msg);
}

void cowfs_statfs(struct cowfs *fs, struct cowfs_statfs *st)
{
	struct alloc_stats a;
	uint64_t used, log_held, held_back;

	pthread_mutex_lock(&fs->lock);
	alloc_get_stats(fs->alloc, &a);
	used = fs->delalloc_bytes;
	log_held = log_held_bytes(fs);
	/* Exactly what space_for keeps from a normal update's data: the reserve, the next
	 * commit's estimate and the tree blocks' headroom (a fallocate of avail succeeds, one
	 * sector more fails). */
	held_back = a.reserve + commit_estimate(fs) + data_headroom(fs) + used;
	pthread_mutex_unlock(&fs->lock);
	st->blocksize = get_le32(&fs->sb.sectorsize);
	st->total = a.total - fs->guard_bytes;
	/* The fsync log's chain holds its space in memory only: free as the superblock (and
	 * fsck) count it, though not available to other updates until a commit gives it back. */
	st->free = a.free + a.pinned + log_held > used ? a.free + a.pinned + log_held - used : 0;
	st->avail = a.free > held_back ? a.free - held_back : 0;
}

void cowfs_trans_use_feature(struct cowfs_trans *tx, uint64_t bit)
{
	tx->fs->incompat_new |= bit;
}

uint64_t cowfs_incompat_features(const struct cowfs *fs)
{
	return get_le64(&fs->sb.incompat_flags) | fs->incompat_new;
}

uint64_t cowfs_generation(const struct cowfs *fs)
{
	return fs->aborted ? fs->committed_gen : get_le64(&fs->sb.generation);
}
