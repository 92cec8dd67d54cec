/*
 * Counters of what sharing did (file.h: file_get_share_stats), kept in struct inode_tree.
 * copy_file_range counts outside the filesystem lock, so every counter is an atomic add; a
 * reader gets each counter exact, not a snapshot of all of them at one instant.
 */
#include <stddef.h>

#include "fs/inode/file.h"
#include "fs/inode/remap.h"

void share_stat_add(uint64_t *counter, uint64_t n)
{
	if (n)
		__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static uint64_t stat_load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void file_get_share_stats(struct inode_tree *it, struct file_share_stats *out)
{
	const struct file_share_stats *s = &it->share_stats;

	*out = (struct file_share_stats){
		.copy_calls = stat_load(&s->copy_calls),
		.copy_bytes_shared = stat_load(&s->copy_bytes_shared),
		.copy_bytes_copied = stat_load(&s->copy_bytes_copied),
		.clone_calls = stat_load(&s->clone_calls),
		.clone_bytes = stat_load(&s->clone_bytes),
		.dedupe_calls = stat_load(&s->dedupe_calls),
		.dedupe_bytes_same = stat_load(&s->dedupe_bytes_same),
		.dedupe_bytes_differ = stat_load(&s->dedupe_bytes_differ),
		.fsyncs = stat_load(&s->fsyncs),
		.fsync_log_hits = stat_load(&s->fsync_log_hits),
		.fsync_commits = stat_load(&s->fsync_commits),
	};
}

void file_set_reflink(struct inode_tree *it, bool on)
{
	__atomic_store_n(&it->noreflink, !on, __ATOMIC_RELAXED);
}

bool file_reflink_on(struct inode_tree *it)
{
	return !__atomic_load_n(&it->noreflink, __ATOMIC_RELAXED);
}
