/*
 * The fsync log: what makes fsync durable with one write and one flush instead of a commit.
 *
 * A commit costs two flushes (trees, then superblock) and rewrites every tree path it touched.
 * Between commits, fsync may instead append an entry to a chain of log entries that the
 * superblock points at; the entry carries what the layer above needs to redo the fsync'd
 * changes on top of the last committed generation (fs/inode/fsync_log.c: file data and inode
 * attributes). The next commit makes the chain obsolete and starts a new one. A mount that
 * finds entries replays them first. Design and invariants: log.c; format: docs/FORMAT.md §4.1.
 *
 * Everything here runs with fs->lock held, except cowfs_log_replay.
 */
#ifndef COWFS_SUPER_LOG_H
#define COWFS_SUPER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cowfs;

/* Space the chain holds: given back by the commit that replaces the chain. */
struct log_range {
	uint64_t start, len;
};

struct cowfs_log {
	uint64_t gen, nonce;      /* the chain's identity (the superblock's log_gen, log_nonce) */
	uint64_t pos;             /* where the next entry goes (0: no chain, fsync must commit) */
	uint64_t chunk_end;       /* end of the space held at pos */
	uint64_t seq;             /* the next entry's number */
	uint64_t bytes;           /* written to this chain */
	struct log_range *ranges;
	size_t nranges, cap;
	/* An update the log cannot express happened since the last commit (a create, unlink,
	 * rename, truncate down, ...): until the next commit, fsync commits. */
	bool barred;
	/* The chain found at open still has entries to replay: a commit keeps it. */
	bool replay_pending;
	uint64_t pending_entries, pending_bytes;
};

/* Entries a chain may hold in all before fsync prefers a commit (which starts a new one). */
#define COWFS_LOG_MAX_BYTES (32ull << 20)
/* Space held for a chain at a time (at most 1/64 of the filesystem). */
#define COWFS_LOG_CHUNK_BYTES (1u << 20)
/* The largest entry (payload and header). */
#define COWFS_LOG_ENTRY_MAX (4u << 20)

/* Mark the running transaction as not expressible in the log: fsync commits until the next
 * commit. */
void cowfs_log_bar(struct cowfs *fs);
/* Whether the running transaction is barred from the log. */
bool cowfs_log_barred(const struct cowfs *fs);
/* Whether the chain found at open still has entries to replay. */
bool cowfs_log_replay_pending(const struct cowfs *fs);

/*
 * Whether an entry with `payload_len` bytes may be appended now: there is a chain, nothing
 * barred it, no replay is pending, and it and the chain stay within their bounds.
 */
bool cowfs_log_can_append(struct cowfs *fs, size_t payload_len);

/*
 * Append an entry and flush: on return 0 it is durable, and a crash from now on replays it.
 * On failure the log is barred (fsync falls back to a commit) and the error returned.
 */
int cowfs_log_append(struct cowfs *fs, const void *payload, size_t payload_len);

/*
 * Replay the chain found at open: fn gets each entry's payload in order (its disk address for
 * reports); a non-zero return stops and is returned. Afterwards the chain is no longer
 * pending and the next commit retires it: the caller commits once its updates are made.
 * Entries are re-read and re-verified here (open checked them once).
 */
int cowfs_log_replay(struct cowfs *fs,
		     int (*fn)(void *arg, uint64_t bytenr, const uint8_t *payload, size_t len),
		     void *arg);

/* For fs/super only. */
int log_open(struct cowfs *fs);
int log_commit_prepare(struct cowfs *fs, uint64_t *log_held);
/* Space the chain holds in memory only: the committed superblock counts it as free. */
uint64_t log_held_bytes(const struct cowfs *fs);
void log_destroy(struct cowfs *fs);

#endif
