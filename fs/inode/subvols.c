/*
 * struct subvols (subvol.h): the inode_trees of one filesystem, one per subvolume reached,
 * opened when first asked for and kept until subvols_close (callers keep the pointers); the
 * permission rules of the subvolume ioctls (btrfs's); and the cleaner, the thread that drops
 * deleted subvolumes in bounded steps.
 *
 * Open trees sit in a two-level table indexed by the subvolume's index (0 for the top level,
 * id - 255 for the others: 16 bits, as fuse/ encodes node ids), so a lookup is two loads under
 * a read lock. Lock order: sv->lock, then the filesystem lock; nothing holding the filesystem
 * lock takes sv->lock.
 *
 * The cleaner drops a deleting subvolume only while nothing of it is in use: its inode_tree was
 * never opened, or no inode of it is held (the kernel forgot every one; fuse/ holds the root
 * directory of every subvolume it shows but the mount's own). Then the tree is marked dropped
 * (subvols_tree says -ENOENT from then on) and its in-memory state written back and freed; each
 * step is an update of its own in the privileged (deleting) class, the lock let go between
 * steps so other writers proceed, with a commit every DROP_COMMIT_STEPS steps and at the end so
 * that space returns as it goes. A crash resumes from the last committed step at the next
 * mount (the progress is on disk: fs/super/subvol.c).
 */
#include <errno.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/inode/file.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"
#include "fs/inode/subvol.h"

#define SV_PAGE_BITS 8
#define SV_PAGE_SIZE (1u << SV_PAGE_BITS)
#define SV_PAGES ((SUBVOL_LAST_ID - SUBVOL_FIRST_ID + 2 + SV_PAGE_SIZE - 1) / SV_PAGE_SIZE)

/* Tree blocks one drop step frees or lets go of at most, and steps between commits. */
#define DROP_BUDGET 128u
#define DROP_COMMIT_STEPS 32u
/* How long the cleaner sleeps when every deleting subvolume is still in use. */
#define CLEANER_RETRY_SEC 1

struct sv_tree {
	struct inode_tree it;
	bool dropped;        /* the cleaner took it: no new users */
	bool orphans_done;   /* orphans a crash left were freed (writable filesystems) */
};

struct subvols {
	struct cowfs *fs;
	struct subvols_config cfg;
	pthread_rwlock_t lock;               /* the table */
	struct sv_tree **page[SV_PAGES];
	/* The cleaner. */
	pthread_mutex_t clean_lock;
	pthread_cond_t wake;                 /* a delete happened, or stop */
	pthread_cond_t progress;             /* a drop finished (and committed), or stop */
	bool cleaner_running, stop, kicked;
	int cleaner_error;                   /* what stopped the cleaner for this mount, or 0 */
	pthread_t cleaner;
};

static size_t subvol_index(uint64_t id)
{
	return id == FS_TREE_ID ? 0 : (size_t)(id - (SUBVOL_FIRST_ID - 1));
}

static struct sv_tree **slot_of(struct subvols *sv, uint64_t id, bool create)
{
	size_t idx = subvol_index(id), p = idx >> SV_PAGE_BITS;

	if (!sv->page[p]) {
		if (!create)
			return NULL;
		sv->page[p] = calloc(SV_PAGE_SIZE, sizeof(*sv->page[p]));
		if (!sv->page[p])
			return NULL;
	}
	return &sv->page[p][idx & (SV_PAGE_SIZE - 1)];
}

/* ---- opening trees ------------------------------------------------------------------------- */

static void tree_configure(struct subvols *sv, struct inode_tree *it, uint32_t flags)
{
	if (sv->cfg.noreflink)
		file_set_reflink(it, false);
	inode_set_atime_mode(it, sv->cfg.atime_mode, sv->cfg.nodiratime);
	it->read_only = flags & SUBVOL_RDONLY;
}

/* The fs tree of `id` and its flags, under the filesystem lock. */
static int tree_find(struct subvols *sv, uint64_t id, struct cowfs_root **root, uint32_t *flags)
{
	struct subvol_info info;
	int ret;

	if (!subvol_id_valid(id))
		return -ENOENT;
	cowfs_lock(sv->fs);
	ret = cowfs_subvol_get(sv->fs, id, &info);
	/* An image from before subvolumes has no SUBVOL_ITEM for the top level. */
	if (ret == -ENOENT && id == FS_TREE_ID) {
		memset(&info, 0, sizeof(info));
		ret = 0;
	}
	if (ret == 0 && (info.flags & SUBVOL_DELETING))
		ret = -ENOENT;
	if (ret == 0)
		ret = cowfs_tree_open(sv->fs, id, root);
	cowfs_unlock(sv->fs);
	*flags = info.flags;
	return ret;
}

/* Open `id`'s inode_tree into *slot (write lock held). Orphans a crash left go first, as
 * mount does: nobody can hold them now. */
static int tree_open(struct subvols *sv, uint64_t id, struct sv_tree **slot)
{
	struct cowfs_root *root;
	struct sv_tree *t;
	uint32_t flags = 0;
	uint64_t freed;
	int ret = tree_find(sv, id, &root, &flags);

	if (ret < 0)
		return ret;
	/* Deleted and not open: nothing may reach it any more (a file handle of it is stale),
	 * since the cleaner may be taking it apart and frees its root at the end. */
	if (flags & SUBVOL_DELETING)
		return -ENOENT;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	inode_tree_init(&t->it, sv->fs, root);
	tree_configure(sv, &t->it, flags);
	/* With an fsync log to replay, orphans wait for the replay: it may write to them. */
	if (!cowfs_read_only(sv->fs) && !cowfs_log_replay_pending(sv->fs)) {
		ret = inode_orphans_cleanup(&t->it, &freed);
		if (ret < 0) {
			inode_tree_destroy(&t->it);
			free(t);
			return ret;
		}
		t->orphans_done = true;
	}
	*slot = t;
	return 0;
}

int subvols_tree(struct subvols *sv, uint64_t id, struct inode_tree **out)
{
	struct sv_tree **slot;
	int ret = 0;

	if (!subvol_id_valid(id))
		return -ENOENT;
	pthread_rwlock_rdlock(&sv->lock);
	slot = slot_of(sv, id, false);
	if (slot && *slot) {
		ret = (*slot)->dropped ? -ENOENT : 0;
		if (ret == 0)
			*out = &(*slot)->it;
		pthread_rwlock_unlock(&sv->lock);
		return ret;
	}
	pthread_rwlock_unlock(&sv->lock);
	pthread_rwlock_wrlock(&sv->lock);
	slot = slot_of(sv, id, true);
	if (!slot)
		ret = -ENOMEM;
	else if (!*slot)
		ret = tree_open(sv, id, slot);
	if (ret == 0)
		ret = (*slot)->dropped ? -ENOENT : 0;
	if (ret == 0)
		*out = &(*slot)->it;
	pthread_rwlock_unlock(&sv->lock);
	return ret;
}

/* ---- the cleaner --------------------------------------------------------------------------- */

static int any_held(void *arg, struct icache_entry *e)
{
	(void)arg;
	return e->holds > 0 || e->orphan;
}

/*
 * Whether deleting subvolume `id` may be dropped now; if so it is marked dropped and its
 * in-memory state (written back) freed. The inode_tree struct stays: pointers to it were
 * handed out.
 */
static bool tree_take_for_drop(struct subvols *sv, uint64_t id)
{
	struct sv_tree **slot, *t = NULL;
	bool busy = false;

	pthread_rwlock_wrlock(&sv->lock);
	slot = slot_of(sv, id, false);
	if (slot && *slot && !(*slot)->dropped) {
		t = *slot;
		cowfs_lock(sv->fs);
		busy = t->it.icache && icache_for_each(t->it.icache, any_held, NULL) != 0;
		cowfs_unlock(sv->fs);
		if (!busy)
			t->dropped = true;
	}
	pthread_rwlock_unlock(&sv->lock);
	if (t && !busy)
		(void)inode_tree_destroy(&t->it);
	return !busy;
}

static bool cleaner_stopping(struct subvols *sv)
{
	bool stop;

	pthread_mutex_lock(&sv->clean_lock);
	stop = sv->stop;
	pthread_mutex_unlock(&sv->clean_lock);
	return stop;
}

static void cleaner_progress(struct subvols *sv)
{
	pthread_mutex_lock(&sv->clean_lock);
	pthread_cond_broadcast(&sv->progress);
	pthread_mutex_unlock(&sv->clean_lock);
}

/* One bounded step of dropping `id`, an update of its own (the step reserves its space). */
static int drop_one_step(struct subvols *sv, uint64_t id, bool *done)
{
	struct cowfs_trans *tx = cowfs_trans_begin(sv->fs, ALLOC_PRIVILEGED);

	*done = false;
	return cowfs_trans_end(tx, cowfs_subvol_drop_step(tx, id, DROP_BUDGET, done));
}

/* Drop `id` whole (or until stopped): 0, or the error that ended it. */
static int drop_subvol(struct subvols *sv, uint64_t id)
{
	bool done = false;
	unsigned steps = 0;
	int ret = 0;

	while (!done && ret == 0 && !cleaner_stopping(sv)) {
		ret = drop_one_step(sv, id, &done);
		if (ret == 0 && !done && sv->cfg.cleaner_pause_ms)
			usleep(sv->cfg.cleaner_pause_ms * 1000u);
		if (ret == 0 && (done || ++steps % DROP_COMMIT_STEPS == 0))
			ret = cowfs_commit(sv->fs);
		if (ret == 0 && steps % DROP_COMMIT_STEPS == 0)
			cleaner_progress(sv);
	}
	if (done)
		cleaner_progress(sv);
	return ret;
}

static int next_deleting(struct subvols *sv, uint64_t from, uint64_t *id)
{
	int ret;

	cowfs_lock(sv->fs);
	ret = cowfs_subvol_next_deleting(sv->fs, from, id);
	cowfs_unlock(sv->fs);
	return ret;
}

/* One pass over the deleting list: whether anything was dropped (or failed for good). */
static bool cleaner_pass(struct subvols *sv, bool *failed)
{
	uint64_t from = 0, id;
	bool worked = false;
	int ret;

	while (!cleaner_stopping(sv) && next_deleting(sv, from, &id) == 0) {
		from = id + 1;
		if (!tree_take_for_drop(sv, id))
			continue;
		ret = drop_subvol(sv, id);
		/* Remounted read-only: resumed once read-write again (an abort is for good). */
		if (ret == -EROFS && !cowfs_failure(sv->fs, NULL))
			return false;
		if (ret < 0) {
			/* The transaction failed (the filesystem is read-only now) or the tree is
			 * damaged (reported): nothing more to do this mount. */
			pthread_mutex_lock(&sv->clean_lock);
			sv->cleaner_error = ret;
			pthread_mutex_unlock(&sv->clean_lock);
			*failed = true;
			return true;
		}
		worked = true;
	}
	return worked;
}

static void cleaner_wait(struct subvols *sv, bool forever)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CLEANER_RETRY_SEC;
	pthread_mutex_lock(&sv->clean_lock);
	while (!sv->stop && !sv->kicked) {
		if (forever)
			pthread_cond_wait(&sv->wake, &sv->clean_lock);
		else if (pthread_cond_timedwait(&sv->wake, &sv->clean_lock, &until) == ETIMEDOUT)
			break;
	}
	sv->kicked = false;
	pthread_mutex_unlock(&sv->clean_lock);
}

static bool deleting_left(struct subvols *sv)
{
	uint64_t id;

	return next_deleting(sv, 0, &id) == 0;
}

static void *cleaner_main(void *arg)
{
	struct subvols *sv = arg;
	bool failed = false;

	while (!cleaner_stopping(sv)) {
		if (cleaner_pass(sv, &failed))
			continue;
		if (failed) {
			cleaner_progress(sv);
			cleaner_wait(sv, true);
			continue;
		}
		/* Subvolumes still in use are retried now and then; with none, a delete wakes
		 * it. */
		cleaner_wait(sv, !deleting_left(sv));
	}
	return NULL;
}

static void cleaner_kick(struct subvols *sv)
{
	pthread_mutex_lock(&sv->clean_lock);
	sv->kicked = true;
	pthread_cond_broadcast(&sv->wake);
	pthread_mutex_unlock(&sv->clean_lock);
}

static int cleaner_start(struct subvols *sv)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&sv->cleaner, NULL, cleaner_main, sv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sv->cleaner_running = ret == 0;
	return -ret;
}

void subvols_stop(struct subvols *sv)
{
	pthread_mutex_lock(&sv->clean_lock);
	sv->stop = true;
	pthread_cond_broadcast(&sv->wake);
	pthread_cond_broadcast(&sv->progress);
	pthread_mutex_unlock(&sv->clean_lock);
}

/* Whether `id` is gone (dropped, and that committed: the cleaner commits at the end). */
static int subvol_gone(struct subvols *sv, uint64_t id, bool *gone)
{
	struct subvol_info info;
	int ret;

	cowfs_lock(sv->fs);
	ret = cowfs_subvol_get(sv->fs, id, &info);
	cowfs_unlock(sv->fs);
	*gone = ret == -ENOENT;
	if (ret == 0 && !(info.flags & SUBVOL_DELETING))
		return -EINVAL;   /* not being deleted: nothing to wait for */
	return ret == -ENOENT ? 0 : ret;
}

static int sync_one(struct subvols *sv, uint64_t id)
{
	bool gone = false;
	int ret;

	for (;;) {
		ret = subvol_gone(sv, id, &gone);
		if (ret < 0 || gone)
			break;
		pthread_mutex_lock(&sv->clean_lock);
		if (sv->stop || !sv->cleaner_running || sv->cleaner_error) {
			ret = sv->cleaner_error;
			pthread_mutex_unlock(&sv->clean_lock);
			return ret ? ret : cowfs_read_only(sv->fs) ? -EROFS : -EINTR;
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += CLEANER_RETRY_SEC;
		pthread_cond_timedwait(&sv->progress, &sv->clean_lock, &until);
		pthread_mutex_unlock(&sv->clean_lock);
	}
	/* The cleaner's last commit may still be on its way: this one waits for it. */
	return ret < 0 ? ret : cowfs_read_only(sv->fs) ? 0 : cowfs_commit(sv->fs);
}

int subvols_sync(struct subvols *sv, uint64_t id, unsigned *count)
{
	uint64_t from = 0, next, *ids = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	*count = 0;
	if (id)
		return (ret = sync_one(sv, id)) < 0 ? ret : (*count = 1, 0);
	/* Every subvolume deleting at the call: later deletes are not waited for. */
	while (next_deleting(sv, from, &next) == 0) {
		if (n == cap) {
			uint64_t *m = realloc(ids, (cap = cap ? 2 * cap : 16) * sizeof(*ids));
			if (!m) {
				free(ids);
				return -ENOMEM;
			}
			ids = m;
		}
		ids[n++] = next;
		from = next + 1;
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = sync_one(sv, ids[i]);
	free(ids);
	if (ret == 0)
		*count = (unsigned)n;
	return ret;
}

/* ---- the fsync log ------------------------------------------------------------------------- */

/* fsync_log_replay_resolve's resolver: a record names its subvolume by id. */
static int replay_tree_of(void *arg, uint64_t id, struct inode_tree **it)
{
	return subvols_tree(arg, id, it);
}

static int orphans_after_replay(struct subvols *sv)
{
	uint64_t freed;
	int ret = 0;

	pthread_rwlock_wrlock(&sv->lock);
	for (size_t p = 0; p < SV_PAGES && ret == 0; p++)
		for (size_t i = 0; sv->page[p] && i < SV_PAGE_SIZE && ret == 0; i++) {
			struct sv_tree *t = sv->page[p][i];
			if (!t || t->orphans_done || t->dropped)
				continue;
			ret = inode_orphans_cleanup(&t->it, &freed);
			t->orphans_done = ret == 0;
		}
	pthread_rwlock_unlock(&sv->lock);
	return ret;
}

int subvols_replay_log(struct subvols *sv, uint64_t *records)
{
	int ret = 0;

	*records = 0;
	if (cowfs_read_only(sv->fs))
		return 0;
	if (cowfs_log_replay_pending(sv->fs))
		ret = fsync_log_replay_resolve(sv->fs, replay_tree_of, sv, records);
	if (ret == 0)
		ret = orphans_after_replay(sv);
	if (ret == 0 && !sv->cleaner_running)
		ret = cleaner_start(sv);
	return ret;
}

/* ---- open and close ------------------------------------------------------------------------ */

int subvols_open(struct cowfs *fs, const struct subvols_config *cfg, struct subvols **out)
{
	struct subvols *sv = calloc(1, sizeof(*sv));
	int ret = 0;

	if (!sv)
		return -ENOMEM;
	sv->fs = fs;
	sv->cfg = *cfg;
	pthread_rwlock_init(&sv->lock, NULL);
	pthread_mutex_init(&sv->clean_lock, NULL);
	pthread_cond_init(&sv->wake, NULL);
	pthread_cond_init(&sv->progress, NULL);
	/* Dropping is an update: it waits for the fsync log's replay (subvols_replay_log). */
	if (!cowfs_read_only(fs) && !cowfs_log_replay_pending(fs))
		ret = cleaner_start(sv);
	if (ret < 0) {
		subvols_close(sv);
		return ret;
	}
	*out = sv;
	return 0;
}

int subvols_close(struct subvols *sv)
{
	int ret = 0;

	if (!sv)
		return 0;
	subvols_stop(sv);
	if (sv->cleaner_running)
		pthread_join(sv->cleaner, NULL);
	for (size_t p = 0; p < SV_PAGES; p++) {
		if (!sv->page[p])
			continue;
		for (size_t i = 0; i < SV_PAGE_SIZE; i++) {
			struct sv_tree *t = sv->page[p][i];
			int r;
			if (!t)
				continue;
			r = t->dropped ? 0 : inode_tree_destroy(&t->it);
			if (ret == 0)
				ret = r;
			free(t);
		}
		free(sv->page[p]);
	}
	pthread_cond_destroy(&sv->wake);
	pthread_cond_destroy(&sv->progress);
	pthread_mutex_destroy(&sv->clean_lock);
	pthread_rwlock_destroy(&sv->lock);
	free(sv);
	return ret;
}

/* ---- permission-checked operations ---------------------------------------------------------- */

static int root_owner(struct subvols *sv, uint64_t id, uid_t *uid)
{
	struct inode_tree *it;
	struct cowfs_attr a;
	int ret = subvols_tree(sv, id, &it);

	if (ret == 0)
		ret = inode_getattr(it, INODE_ROOT_INO, &a);
	if (ret == 0)
		*uid = a.uid;
	return ret;
}

int subvols_create(struct subvols *sv, struct inode_tree *parent, uint64_t dir,
		   const char *name, size_t len, const struct inode_caller *c, uint64_t *id)
{
	int ret = inode_permission(parent, dir, c, INODE_MAY_WRITE | INODE_MAY_EXEC);

	(void)sv;
	if (ret < 0)
		return ret;
	return subvol_make(parent, dir, name, len, S_IFDIR | 0755, c->uid, c->gid, id);
}

int subvols_snapshot(struct subvols *sv, uint64_t source, struct inode_tree *parent,
		     uint64_t dir, const char *name, size_t len, bool rdonly,
		     const struct inode_caller *c, uint64_t *id)
{
	struct inode_tree *src;
	int ret = subvols_tree(sv, source, &src);

	if (ret == 0)
		ret = inode_permission(parent, dir, c, INODE_MAY_WRITE | INODE_MAY_EXEC);
	if (ret == 0)
		ret = inode_permission(src, INODE_ROOT_INO, c, INODE_MAY_READ);
	if (ret < 0)
		return ret;
	return subvol_snapshot(src, parent, dir, name, len, rdonly, id);
}

/* Root may delete any subvolume; with user_subvol_rm_allowed, the owner of its root too. */
static int may_delete(struct subvols *sv, uint64_t id, const struct inode_caller *c)
{
	uid_t owner = (uid_t)-1;
	int ret;

	if (c->uid == 0)
		return 0;
	if (!sv->cfg.user_subvol_rm_allowed)
		return -EPERM;
	ret = root_owner(sv, id, &owner);
	if (ret < 0)
		return ret;
	return owner == c->uid ? 0 : -EPERM;
}

int subvols_delete(struct subvols *sv, struct inode_tree *parent, uint64_t dir,
		   const char *name, size_t len, uint64_t busy_id, const struct inode_caller *c,
		   uint64_t *id)
{
	struct cowfs_attr a;
	int ret = inode_permission(parent, dir, c, INODE_MAY_WRITE | INODE_MAY_EXEC);

	if (ret == 0)
		ret = inode_lookup(parent, dir, name, len, &a);
	if (ret < 0)
		return ret;
	if (a.subvol == inode_tree_subvol(parent))
		return S_ISDIR(a.mode) ? -EINVAL : -ENOTDIR;
	ret = may_delete(sv, a.subvol, c);
	/* (A subvolume renamed over this name between the check and the unlink would be
	 * deleted on the first one's check: renames onto a subvolume entry are -EBUSY, so only
	 * a rename away and a new one made in its place can do it.) */
	if (ret == 0)
		ret = subvol_unlink(parent, dir, name, len, busy_id, id);
	if (ret == 0)
		cleaner_kick(sv);
	return ret;
}

int subvols_set_readonly(struct subvols *sv, uint64_t id, bool rdonly,
			 const struct inode_caller *c)
{
	struct inode_tree *it;
	struct cowfs_trans *tx;
	struct cowfs_attr a;
	int ret = subvols_tree(sv, id, &it);

	if (ret == 0)
		ret = inode_getattr(it, INODE_ROOT_INO, &a);
	if (ret < 0)
		return ret;
	if (c->uid != 0 && c->uid != a.uid)
		return -EPERM;
	if (cowfs_read_only(sv->fs))
		return -EROFS;
	tx = cowfs_trans_begin(sv->fs, ALLOC_NORMAL);
	ret = cowfs_reserve(tx, cowfs_update_nodes(cowfs_root_tree(sv->fs)));
	if (ret == 0)
		ret = cowfs_subvol_set_flags(tx, id, rdonly ? SUBVOL_RDONLY : 0);
	/* Under the lock of the change: no update of the tree runs between the two. */
	if (ret == 0)
		it->read_only = rdonly;
	return cowfs_trans_end(tx, ret);
}

int subvols_set_default(struct subvols *sv, uint64_t id, const struct inode_caller *c)
{
	struct inode_tree *it;
	struct cowfs_trans *tx;
	int ret;

	if (c->uid != 0)
		return -EPERM;
	/* Only a subvolume that exists and is not being deleted. */
	ret = subvols_tree(sv, id, &it);
	if (ret < 0)
		return ret;
	if (cowfs_read_only(sv->fs))
		return -EROFS;
	tx = cowfs_trans_begin(sv->fs, ALLOC_NORMAL);
	ret = cowfs_reserve(tx, cowfs_update_nodes(cowfs_root_tree(sv->fs)));
	if (ret == 0)
		ret = cowfs_subvol_set_default(tx, id);
	return cowfs_trans_end(tx, ret);
}
