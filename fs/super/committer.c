/*
 * The commit timer thread: a commit every commit_interval_ms when there are changes, and
 * background flushes of file data between commits when a writer asks for one.
 */
#include <errno.h>
#include <time.h>

#include "fs/extent/extent.h"
#include "fs/io/bcache.h"
#include "fs/super/internal.h"

static struct timespec commit_due(const struct cowfs *fs)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += fs->commit_interval_ms / 1000;
	t.tv_nsec += (long)(fs->commit_interval_ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

static bool is_past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* A background flush of every tree's dirty file data. A failure poisons the transaction
 * (the flush hooks say when) and aborts it here. */
static void run_flush(struct cowfs *fs)
{
	if (fs->aborted || !fs->hooks)
		return;
	if (fs_hooks_flush(fs_running_trans(fs)) == 0)
		fs->flushes++;
	fs_abort_if_poisoned(fs);
}

/* The timer thread: a commit every commit_interval_ms when there are changes, and background
 * flushes when asked. A failed commit or flush aborts the transaction: it reports once, and
 * the filesystem is read-only from then on. */
static void *committer_main(void *arg)
{
	struct cowfs *fs = arg;
	struct timespec due = commit_due(fs);

	pthread_mutex_lock(&fs->lock);
	while (!fs->stopping) {
		if (!fs->flush_requested)
			pthread_cond_timedwait(&fs->wake, &fs->lock, &due);
		if (fs->stopping)
			break;
		if (fs->flush_requested) {
			fs->flush_requested = false;
			run_flush(fs);
		}
		if (is_past(&due)) {
			/* Data first, with the lock let go for its I/O: the commit then writes
			 * back under the lock only what came meanwhile. */
			if (fs->delalloc_bytes)
				run_flush(fs);
			if (!fs->aborted && cowfs_has_changes(fs))
				fs_commit_locked(fs_running_trans(fs));
			fs_abort_if_poisoned(fs);
			due = commit_due(fs);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

bool cowfs_flush_soon(struct cowfs *fs)
{
	if (!fs->committer_running || fs->stopping || !fs->hooks || fs->aborted)
		return false;
	if (!fs->flush_requested) {
		fs->flush_requested = true;
		pthread_cond_signal(&fs->wake);
	}
	return true;
}

int fs_start_committer(struct cowfs *fs, int interval_ms)
{
	if (fs->read_only || interval_ms < 0)
		return 0;
	fs->commit_interval_ms = interval_ms ? interval_ms : COWFS_COMMIT_INTERVAL_MS;
	int ret = -pthread_create(&fs->committer, NULL, committer_main, fs);
	fs->committer_running = ret == 0;
	return ret;
}

void fs_stop_committer(struct cowfs *fs)
{
	if (!fs->committer_running)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->stopping = true;
	pthread_cond_signal(&fs->wake);
	pthread_mutex_unlock(&fs->lock);
	pthread_join(fs->committer, NULL);
	pthread_mutex_lock(&fs->lock);
	fs->committer_running = false;
	/* Writers waiting for a flush that will not come now commit themselves. */
	pthread_cond_broadcast(&fs->commit_done);
	pthread_mutex_unlock(&fs->lock);
}


/* Commit until nothing is left (a commit lets the lock go while it writes the superblock, and
 * an update may come meanwhile), then take no more updates. */
static int go_read_only(struct cowfs *fs)
{
	int ret = 0;

	pthread_mutex_lock(&fs->lock);
	while (ret == 0 && !fs->aborted && cowfs_has_changes(fs))
		ret = fs_commit_locked(fs_running_trans(fs));
	fs_abort_if_poisoned(fs);
	if (ret == 0)
		fs->read_only = true;
	pthread_mutex_unlock(&fs->lock);
	if (ret < 0)
		return ret;
	fs_stop_committer(fs);
	pthread_mutex_lock(&fs->lock);
	fs->stopping = false;
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

int cowfs_set_read_only(struct cowfs *fs, bool read_only)
{
	if (read_only)
		return fs->read_only ? 0 : go_read_only(fs);
	if (fs->aborted)
		return -EROFS;
	/* Opened read-only: the image is open O_RDONLY under a shared lock, and the layers above
	 * set up no write-back; only a new mount makes it writable. */
	if (bdev_is_read_only(fs->bd))
		return -EOPNOTSUPP;
	if (!fs->read_only)
		return 0;
	pthread_mutex_lock(&fs->lock);
	fs->read_only = false;
	pthread_mutex_unlock(&fs->lock);
	return fs_start_committer(fs, fs->commit_interval_ms);
}

int cowfs_set_commit_interval(struct cowfs *fs, int interval_ms)
{
	if (interval_ms < 0)
		return -EINVAL;
	pthread_mutex_lock(&fs->lock);
	fs->commit_interval_ms = interval_ms ? interval_ms : COWFS_COMMIT_INTERVAL_MS;
	pthread_mutex_unlock(&fs->lock);
	return 0;
}
