/*
 * What fs/inode puts in the fsync log (fs/super/log.h), and its replay.
 *
 * An fsync normally commits: two flushes and every tree path the transaction touched. When all
 * the file has changed since the last commit is data written through file_write and
 * attributes (size grown, times), an entry in the log says the same with one write and one
 * flush: the file's pages not yet logged, and its inode's attributes.
 *
 * What the log can express, and why replay is exact:
 *   - Records hold absolute values: "these bytes at this offset", "this size, mode, owner and
 *     these times". Replay applies them in order on top of the last committed generation, so
 *     applying a prefix of the chain twice (a crash during replay) ends the same.
 *   - Only writes and attribute changes that need nothing else are logged. Any other update
 *     (create, link, unlink, rename, xattrs, a size that shrinks, fallocate, clones) bars the
 *     log until the next commit (inode_update_begin, data_update_begin, log_note_setattr), so
 *     a logged inode exists in the committed generation with the same identity (its inode
 *     generation is in the record and checked) and no logged change depends on an unlogged
 *     one: sizes only grow between commits while the log is open, and pages past the committed
 *     size that replay does not rewrite are zero there too, because they were in memory.
 *   - A page is logged whole; writing to it again clears its logged mark (page_get), so the
 *     next fsync logs it again. An inode whose attributes changed keeps its icache entry
 *     (log_dirty) until they are logged or committed.
 *
 * Payload: records one after another, each 8-byte aligned; docs/FORMAT.md §12.3.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/file.h"
#include "fs/inode/icache.h"
#include "fs/inode/inode_format.h"
#include "fs/inode/internal.h"
#include "fs/lib/endian.h"

#define LOG_REC_INODE 1
#define LOG_REC_WRITE 2

struct log_rec {
	uint16_t type;
	uint16_t reserved0;
	uint32_t len;              /* the whole record, a multiple of 8 */
	uint64_t tree;             /* the fs tree's id */
	uint64_t ino;
} __packed;
STATIC_ASSERT(sizeof(struct log_rec) == 24, "log record header is 24 bytes");

struct log_rec_inode {
	struct log_rec h;
	uint64_t generation;       /* the inode's: replay refuses another inode of that number */
	uint64_t size;
	uint32_t mode, uid, gid, reserved0;
	struct inode_timespec atime, mtime, ctime;
	uint8_t reserved1[4];
} __packed;
STATIC_ASSERT(sizeof(struct log_rec_inode) == 96, "inode record is 96 bytes");

struct log_rec_write {
	struct log_rec h;
	uint64_t offset;           /* page aligned; whole pages of data follow */
} __packed;
STATIC_ASSERT(sizeof(struct log_rec_write) == 32, "write record header is 32 bytes");

static uint64_t tree_id(struct inode_tree *it)
{
	return it->root->t.owner;
}

/* ---- noting what changed ------------------------------------------------------------------ */

static void mark_log_dirty(struct inode_cache *ic, struct icache_entry *e)
{
	if (!e->log_dirty) {
		e->log_dirty = true;
		ic->log_dirty_count++;
	}
}

void log_note_write(struct inode_tree *it, struct icache_entry *e)
{
	mark_log_dirty(it->icache, e);
}

void log_note_flushed(struct inode_tree *it, struct icache_entry *e)
{
	e->log_unfit = true;
	mark_log_dirty(it->icache, e);   /* kept until the commit (forget_entry) */
}

void log_note_page(struct inode_tree *it, struct icache_entry *e, uint64_t index)
{
	if (e->unlogged.n == e->unlogged.cap) {
		size_t cap = e->unlogged.cap ? 2 * e->unlogged.cap : 16;
		uint64_t *v = realloc(e->unlogged.idx, cap * sizeof(*v));
		if (!v) {
			cowfs_log_bar(it->fs);   /* it cannot be found again: a commit will do */
			return;
		}
		e->unlogged.idx = v;
		e->unlogged.cap = cap;
	}
	e->unlogged.idx[e->unlogged.n++] = index;
}

int log_note_setattr(struct inode_tree *it, uint64_t ino, const struct inode *in, unsigned mask,
		     const struct cowfs_attr *attr)
{
	struct icache_entry *e;

	/* Times and a growing size replay as they are; a new mode rewrites the access ACL, a
	 * shrinking size frees extents, and owners come with mode rules: commit for those. */
	if ((mask & (INODE_SET_MODE | INODE_SET_UID | INODE_SET_GID)) || !S_ISREG(in->mode) ||
	    ((mask & INODE_SET_SIZE) && attr->size < in->size)) {
		cowfs_log_bar(it->fs);
		return 0;
	}
	e = icache_of(it) ? icache_find(it->icache, ino, true) : NULL;
	if (!e) {
		cowfs_log_bar(it->fs);   /* no memory to remember it: a commit will do */
		return 0;
	}
	mark_log_dirty(it->icache, e);
	return 0;
}

static int forget_entry(void *arg, struct icache_entry *e)
{
	struct inode_cache *ic = arg;

	e->log_dirty = false;
	e->log_unfit = false;
	e->unlogged.n = 0;
	icache_release_if_idle(ic, e);
	return 0;
}

void log_forget_all(struct inode_tree *it)
{
	struct inode_cache *ic = it->icache;

	if (ic && ic->log_dirty_count) {
		icache_for_each(ic, forget_entry, ic);
		ic->log_dirty_count = 0;
	}
}

/* ---- building an entry -------------------------------------------------------------------- */

/* Pages not yet logged, sorted, as a malloc'd array: from the entry's list, not from all its
 * pages (an append+fsync loop would otherwise sort every page of the chain at every fsync). */
static int unlogged_pages(struct icache_entry *e, struct dirty_page ***out, size_t *n)
{
	struct dirty_page **v = malloc((e->unlogged.n ? e->unlogged.n : 1) * sizeof(*v));
	size_t k = 0, kept = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < e->unlogged.n; i++) {
		struct dirty_page *p = page_find(e, e->unlogged.idx[i]);
		if (p && !p->logged)
			v[k++] = p;
	}
	pages_sort(v, k);
	for (size_t i = 0; i < k; i++)   /* a page dropped and made again is listed twice */
		if (i == 0 || v[i] != v[kept - 1])
			v[kept++] = v[i];
	*out = v;
	*n = kept;
	return 0;
}

/* Bytes of payload for these pages (a write record per run of consecutive pages). */
static size_t payload_size(struct dirty_page **v, size_t n, uint32_t ps)
{
	size_t bytes = sizeof(struct log_rec_inode);

	for (size_t i = 0; i < n; i++) {
		if (i == 0 || v[i]->index != v[i - 1]->index + 1)
			bytes += sizeof(struct log_rec_write);
		bytes += ps;
	}
	return bytes;
}

static void rec_header(struct log_rec *h, struct inode_tree *it, uint16_t type, uint32_t len,
		       uint64_t ino)
{
	memset(h, 0, sizeof(*h));
	put_le16(&h->type, type);
	put_le32(&h->len, len);
	put_le64(&h->tree, tree_id(it));
	put_le64(&h->ino, ino);
}

static size_t put_inode_rec(struct inode_tree *it, uint8_t *p, uint64_t ino, const struct inode *in)
{
	struct log_rec_inode r;

	memset(&r, 0, sizeof(r));
	rec_header(&r.h, it, LOG_REC_INODE, sizeof(r), ino);
	put_le64(&r.generation, in->generation);
	put_le64(&r.size, in->size);
	put_le32(&r.mode, in->mode);
	put_le32(&r.uid, in->uid);
	put_le32(&r.gid, in->gid);
	inode_ts_put(&r.atime, &in->atime);
	inode_ts_put(&r.mtime, &in->mtime);
	inode_ts_put(&r.ctime, &in->ctime);
	memcpy(p, &r, sizeof(r));
	return sizeof(r);
}

/* The write records for pages v[0..n), into p; returns the bytes used. */
static size_t put_write_recs(struct inode_tree *it, uint8_t *p, uint64_t ino,
			     struct dirty_page **v, size_t n, uint32_t ps)
{
	uint8_t *start = p;

	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		struct log_rec_write r;
		while (j < n && v[j]->index == v[j - 1]->index + 1)
			j++;
		rec_header(&r.h, it, LOG_REC_WRITE, (uint32_t)(sizeof(r) + (j - i) * ps), ino);
		put_le64(&r.offset, v[i]->index * ps);
		memcpy(p, &r, sizeof(r));
		p += sizeof(r);
		for (; i < j; i++, p += ps)
			memcpy(p, v[i]->data, ps);
	}
	return (size_t)(p - start);
}

int log_fsync(struct cowfs_trans *tx, struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e;
	uint32_t ps = cowfs_sectorsize(it->fs);
	struct dirty_page **v = NULL;
	struct inode in;
	uint8_t *buf = NULL;
	size_t n = 0, len;
	int done = 0;

	/* A commit in flight is writing the superblock that points at the chain. */
	cowfs_trans_commit_wait(tx);
	if (cowfs_log_barred(it->fs))
		return 0;
	/* Nothing of ino is waiting: it is as committed, or as logged before. */
	e = it->icache ? icache_find(it->icache, ino, false) : NULL;
	if (!e)
		return 1;
	if (e->log_unfit)
		return 0;
	if (inode_read(it, ino, &in) < 0 || !S_ISREG(in.mode) || unlogged_pages(e, &v, &n) < 0)
		goto out;
	if (!e->log_dirty && n == 0) {
		done = 1;
		goto out;
	}
	len = payload_size(v, n, ps);
	if (!cowfs_log_can_append(it->fs, len))
		goto out;
	buf = malloc(len);
	if (!buf)
		goto out;
	put_inode_rec(it, buf, ino, &in);
	put_write_recs(it, buf + sizeof(struct log_rec_inode), ino, v, n, ps);
	if (cowfs_log_append(it->fs, buf, len) < 0)
		goto out;   /* the log is barred now; the commit decides */
	for (size_t i = 0; i < n; i++)
		v[i]->logged = true;
	e->unlogged.n = 0;
	if (e->log_dirty) {
		e->log_dirty = false;
		it->icache->log_dirty_count--;
		icache_release_if_idle(it->icache, e);
	}
	done = 1;
out:
	free(buf);
	free(v);
	return done;
}

/* ---- replay ------------------------------------------------------------------------------- */

struct replay {
	struct cowfs *fs;
	/* The tree a record names: 0, or -ENOENT when there is no such tree. */
	int (*tree_of)(void *arg, uint64_t id, struct inode_tree **it);
	void *tree_arg;
	struct inode_tree *it;     /* the tree of the record being replayed */
	uint64_t bytenr;           /* the entry being replayed, for reports */
	uint64_t records;
};

static int replay_corrupt(struct replay *r, const char *what)
{
	cowfs_report(r->fs, r->bytenr, "%s", what);
	return -EUCLEAN;
}

static int replay_write(struct replay *r, uint64_t ino, const uint8_t *rec, uint32_t len)
{
	uint32_t ps = cowfs_sectorsize(r->it->fs);
	uint64_t off = get_le64(&((const struct log_rec_write *)rec)->offset);
	uint64_t bytes = len - sizeof(struct log_rec_write);
	ssize_t n;

	if (off % ps || bytes == 0 || bytes % ps || off > FILE_SIZE_MAX - bytes)
		return replay_corrupt(r, "fsync log: bad write record");
	n = file_write(r->it, ino, rec + sizeof(struct log_rec_write), bytes, off, 0);
	if (n == -EISDIR || n == -EINVAL)
		return replay_corrupt(r, "fsync log: write record for a file that is not regular");
	return n < 0 ? (int)n : 0;
}

/* Size, mode, owner and times as logged; the size may shrink back from page-rounded writes. */
static int replay_inode(struct replay *r, uint64_t ino, const struct log_rec_inode *rec)
{
	struct cowfs_trans *tx;
	struct inode_tree *it = r->it;
	uint64_t size = get_le64(&rec->size);
	struct inode in;
	int ret = file_size_update_begin(it, ino, size, &tx);

	if (ret < 0)
		return ret;
	ret = inode_read(it, ino, &in);
	if (ret == -ENOENT || (ret == 0 && (in.generation != get_le64(&rec->generation) ||
					    !S_ISREG(in.mode))))
		ret = replay_corrupt(r, "fsync log: inode record for another inode");
	if (ret == 0)
		ret = file_set_size_locked(tx, it, ino, &in, size);
	if (ret == 0) {
		in.mode = (in.mode & S_IFMT) | (get_le32(&rec->mode) & 07777);
		in.uid = get_le32(&rec->uid);
		in.gid = get_le32(&rec->gid);
		inode_ts_get(&in.atime, &rec->atime);
		inode_ts_get(&in.mtime, &rec->mtime);
		inode_ts_get(&in.ctime, &rec->ctime);
		ret = inode_write(tx, it, ino, &in);
	}
	return inode_update_end(tx, ret);
}

static int replay_record(struct replay *r, const uint8_t *rec, uint32_t len)
{
	const struct log_rec *h = (const struct log_rec *)rec;
	uint64_t ino = get_le64(&h->ino);

	int ret = r->tree_of(r->tree_arg, get_le64(&h->tree), &r->it);

	if (ret == -ENOENT)
		return replay_corrupt(r, "fsync log: record for an unknown tree");
	if (ret < 0)
		return ret;
	r->records++;
	switch (get_le16(&h->type)) {
	case LOG_REC_INODE:
		if (len != sizeof(struct log_rec_inode))
			break;
		return replay_inode(r, ino, (const struct log_rec_inode *)rec);
	case LOG_REC_WRITE:
		if (len < sizeof(struct log_rec_write))
			break;
		return replay_write(r, ino, rec, len);
	}
	return replay_corrupt(r, "fsync log: unknown or malformed record");
}

/*
 * One entry: its write records first (page-rounded data, which may grow the size past what
 * was logged), then the inode record, which sets the size and times as they were.
 */
static int replay_entry(void *arg, uint64_t bytenr, const uint8_t *payload, size_t len)
{
	struct replay *r = arg;
	const uint8_t *inode_rec = NULL;
	int ret = 0;

	r->bytenr = bytenr;
	for (size_t at = 0; at < len && ret == 0;) {
		const struct log_rec *h = (const struct log_rec *)(payload + at);
		uint32_t rlen;
		if (len - at < sizeof(*h))
			return replay_corrupt(r, "fsync log: truncated record");
		rlen = get_le32(&h->len);
		if (rlen < sizeof(*h) || rlen % 8 || rlen > len - at)
			return replay_corrupt(r, "fsync log: record length out of bounds");
		if (get_le16(&h->type) == LOG_REC_INODE && !inode_rec)
			inode_rec = payload + at;
		else
			ret = replay_record(r, payload + at, rlen);
		at += rlen;
	}
	if (ret == 0 && inode_rec)
		ret = replay_record(r, inode_rec, get_le32(&((const struct log_rec *)inode_rec)->len));
	return ret;
}

int fsync_log_replay_resolve(struct cowfs *fs,
			     int (*tree_of)(void *arg, uint64_t id, struct inode_tree **it),
			     void *arg, uint64_t *records)
{
	struct replay r = { .fs = fs, .tree_of = tree_of, .tree_arg = arg };
	int ret;

	*records = 0;
	if (!cowfs_log_replay_pending(fs))
		return 0;
	ret = cowfs_log_replay(fs, replay_entry, &r);
	if (ret == 0)
		ret = cowfs_commit(fs);
	*records = r.records;
	return ret;
}

struct tree_list {
	struct inode_tree *const *trees;
	size_t n;
};

static int tree_in_list(void *arg, uint64_t id, struct inode_tree **it)
{
	const struct tree_list *l = arg;

	for (size_t i = 0; i < l->n; i++)
		if (tree_id(l->trees[i]) == id) {
			*it = l->trees[i];
			return 0;
		}
	return -ENOENT;
}

int fsync_log_replay_trees(struct inode_tree *const *trees, size_t n, uint64_t *records)
{
	struct tree_list l = { trees, n };

	return fsync_log_replay_resolve(trees[0]->fs, tree_in_list, &l, records);
}

int fsync_log_replay(struct inode_tree *it, uint64_t *records)
{
	return fsync_log_replay_trees(&it, 1, records);
}
