/*
 * The sharing ioctls: CLONE_RANGE, DEDUPE_RANGE, FIEMAP and CHUNK_HASHES (cowfs_ioctl.h,
 * docs/IOCTL.md).
 *
 * The kernel checks nothing for them: it does not know what they do. So the checks it makes
 * for FICLONERANGE and FIDEDUPERANGE are made here, in its order and with its errnos, on the
 * open file the ioctl is issued on (its FH_* flags) and, for the file named by id, through
 * inode_permission with the caller's credentials. What concerns the data (alignment, ranges,
 * overlap, sizes) is fs/'s to check and report.
 *
 * The kernel's page cache and attributes of a clone's destination were right before it and
 * are stale after it, but the kernel cannot know: we tell it (clone_run).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "fuse/internal.h"

#include "fs/inode/file.h"

/* Offsets the kernel refuses as negative loff_t (remap_verify_area). */
static bool offset_valid(uint64_t off)
{
	return off <= (uint64_t)INT64_MAX;
}

/* An inode the kernel does not know is no error. */
void invalidate_cache(struct server *s, struct inode_tree *it, uint64_t ino, int64_t off,
		      int64_t len)
{
	if (s->se)
		(void)fuse_lowlevel_notify_inval_inode(s->se, node_of(s, it, ino), off, len);
}

/*
 * A clone runs as the kernel's own remap does: the kernel's pages of both ranges are written
 * back first (mmap'ed writes not yet sent, which the clone must see, and which written later
 * would land over it), then the clone, then the destination's pages and attributes are dropped,
 * and only then the reply, so that the caller's next read sees the clone. Dropping a page
 * writes it back if dirty, with a WRITE request, and waits for a read of it in flight: both
 * need a request thread to be served. So this runs on a thread of its own, never on a request
 * thread (with -s, the only one: it would wait for itself; it hung so with a concurrent cat),
 * and the request thread goes back to serving. The session must outlive such threads: serve()
 * waits for them (late_replies_wait) before it destroys it.
 */
struct clone_job {
	struct server *s;
	fuse_req_t req;
	struct inode_tree *it, *src_it;   /* the destination's tree, the source's */
	uint64_t ino;            /* the destination */
	struct cowfs_ioc_clone_range in;
};

void late_replies_init(struct server *s)
{
	pthread_mutex_init(&s->late_lock, NULL);
	pthread_cond_init(&s->late_cond, NULL);
	s->late_pending = 0;
}

void late_replies_wait(struct server *s)
{
	pthread_mutex_lock(&s->late_lock);
	while (s->late_pending)
		pthread_cond_wait(&s->late_cond, &s->late_lock);
	pthread_mutex_unlock(&s->late_lock);
}

static void late_pending_add(struct server *s, int n)
{
	pthread_mutex_lock(&s->late_lock);
	s->late_pending += (unsigned)n;
	if (s->late_pending == 0)
		pthread_cond_broadcast(&s->late_cond);
	pthread_mutex_unlock(&s->late_lock);
}

/* The pages of [off, off + len) as notify_inval_inode takes them: len 0 is to the end. */
static int64_t range_len(uint64_t off, uint64_t len)
{
	return len > (uint64_t)INT64_MAX - off ? 0 : (int64_t)len;
}

/* `flush`: write the kernel's dirty pages of both ranges back first (see above). */
static void clone_run(struct clone_job *j, bool flush)
{
	const struct cowfs_ioc_clone_range *in = &j->in;
	struct cowfs_ioc_clone_range out = *in;
	uint64_t cloned = 0;
	int ret;

	if (flush) {
		invalidate_cache(j->s, j->src_it, in->src.ino, (int64_t)in->src_offset,
				 range_len(in->src_offset, in->length));
		invalidate_cache(j->s, j->it, j->ino, (int64_t)in->dst_offset,
				 range_len(in->dst_offset, in->length));
	}
	ret = file_clone_range_between(j->src_it, in->src.ino, in->src_offset, j->it, j->ino,
				       in->dst_offset, in->length, &cloned);
	/* As the kernel's remap (generic_remap_file_range_prep's file_modified) once the
	 * clone's checks pass: the destination's setuid/setgid go. */
	if (ret == 0)
		ret = req_drop_privs(j->s, j->req, j->it, j->ino);
	if (ret < 0) {
		reply_err(j->req, ret);
		return;
	}
	if (cloned)
		invalidate_cache(j->s, j->it, j->ino, (int64_t)in->dst_offset, (int64_t)cloned);
	out.length = cloned;
	fuse_reply_ioctl(j->req, 0, &out, sizeof(out));
}

static void *clone_thread(void *arg)
{
	struct clone_job *j = arg;
	struct server *s = j->s;

	clone_run(j, true);
	free(j);
	late_thread_done(s);
	return NULL;
}

void late_thread_done(struct server *s)
{
	late_pending_add(s, -1);
}

/* Start the thread with every signal blocked: they are the main thread's to take. */
bool late_thread_start(struct server *s, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int ret;

	late_pending_add(s, 1);
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret != 0)
		late_pending_add(s, -1);
	return ret == 0;
}

/* Clone (checked already) and reply, on a thread of its own if one can be had. */
static void clone_and_reply(const struct ioctl_req *r, const struct cowfs_ioc_clone_range *in,
			    struct inode_tree *src_it)
{
	struct clone_job *j = malloc(sizeof(*j));
	struct clone_job local = { .s = r->s, .req = r->req, .it = r->it, .src_it = src_it,
				   .ino = r->ino, .in = *in };

	if (j) {
		*j = local;
		if (late_thread_start(r->s, clone_thread, j))
			return;
		free(j);
	}
	/* Here, without the flush first: writing back would wait for this very thread. */
	clone_run(&local, false);
}

/* ---- CLONE_RANGE ------------------------------------------------------------------------- */

/* The source: a regular file of this mount, still the one named, that the caller may read. */
static int clone_source_check(const struct ioctl_req *r, const struct cowfs_ioc_file *src,
			      struct inode_tree **src_it)
{
	struct req_caller rc;
	struct cowfs_attr a;
	int ret = ioctl_file_resolve(r->s, src, src_it, &a);

	if (ret < 0)
		return ret;
	if (S_ISDIR(a.mode))
		return -EISDIR;
	if (!S_ISREG(a.mode))
		return -EINVAL;
	req_caller_init(&rc, r->req);
	ret = inode_permission(*src_it, src->ino, &rc.c, INODE_MAY_READ);
	req_caller_free(&rc);
	return ret;
}

/* FICLONERANGE's checks, in its order: the arguments, then the destination (this file: a
 * regular file open for writing, not for appending), then the source. */
static int clone_check(const struct ioctl_req *r, const struct cowfs_ioc_clone_range *in,
		       struct inode_tree **src_it)
{
	if (in->version != COWFS_CLONE_VERSION || in->flags != 0)
		return -EINVAL;
	if (!offset_valid(in->src_offset) || !offset_valid(in->dst_offset))
		return -EINVAL;
	if (ioctl_writable(r->s) < 0)
		return -EROFS;
	if (r->dir)
		return -EISDIR;
	if (!(r->fh & FH_WRITE) || (r->fh & FH_APPEND))
		return -EBADF;
	return clone_source_check(r, &in->src, src_it);
}

void ioctl_clone_range(const struct ioctl_req *r)
{
	const struct cowfs_ioc_clone_range *in = r->in;
	struct inode_tree *src_it;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(*in)))
		return;
	ret = clone_check(r, in, &src_it);
	if (ret < 0)
		reply_err(r->req, ret);
	else
		clone_and_reply(r, in, src_it);
}

/* ---- DEDUPE_RANGE ------------------------------------------------------------------------ */

/*
 * One destination, before anything is compared: a file of this mount, still the one named,
 * not a directory, that the caller may change (the kernel's allow_file_dedupe: root, the
 * owner, or write permission; a refusal is -EPERM, not -EACCES).
 */
static int dedupe_dest_check(struct server *s, struct inode_tree *src_it,
			     const struct cowfs_ioc_dedupe_dest *d, const struct inode_caller *c)
{
	struct inode_tree *it;
	struct cowfs_attr a;
	int ret;

	if (d->reserved || !offset_valid(d->dst_offset))
		return -EINVAL;
	ret = ioctl_file_resolve(s, &d->dst, &it, &a);
	if (ret < 0)
		return ret;
	/* fs/'s dedupe works within one tree. */
	if (it != src_it)
		return -EXDEV;
	if (S_ISDIR(a.mode))
		return -EISDIR;
	if (c->uid == 0 || c->uid == a.uid)
		return 0;
	ret = inode_permission(it, d->dst.ino, c, INODE_MAY_WRITE);
	return ret == -EACCES ? -EPERM : ret;
}

/* FIDEDUPERANGE's checks of the request and of its source (this file, open for reading). */
static int dedupe_check(const struct ioctl_req *r, const struct cowfs_ioc_dedupe_range *in)
{
	if (in->version != COWFS_DEDUPE_VERSION || in->reserved != 0)
		return -EINVAL;
	if (in->dest_count < 1 || in->dest_count > COWFS_DEDUPE_MAX_DESTS)
		return -EINVAL;
	if (!offset_valid(in->src_offset))
		return -EINVAL;
	if (ioctl_writable(r->s) < 0)
		return -EROFS;
	if (r->dir)
		return -EISDIR;
	return r->fh & FH_READ ? 0 : -EINVAL;
}

/* The destinations that passed their checks, and where each came from in the request. */
struct dedupe_batch {
	struct file_dedupe_dest dests[COWFS_DEDUPE_MAX_DESTS];
	size_t from[COWFS_DEDUPE_MAX_DESTS];
	size_t n;
};

/* Check every destination: the refused get their status in `out`, the rest go in `b`. */
static void dedupe_collect(const struct ioctl_req *r, const struct cowfs_ioc_dedupe_range *in,
			   struct cowfs_ioc_dedupe_range *out, struct dedupe_batch *b)
{
	struct req_caller rc;

	req_caller_init(&rc, r->req);
	b->n = 0;
	for (size_t i = 0; i < in->dest_count; i++) {
		const struct cowfs_ioc_dedupe_dest *d = &in->dests[i];
		int ret = dedupe_dest_check(r->s, r->it, d, &rc.c);

		out->dests[i].bytes_deduped = 0;
		out->dests[i].status = ret;
		if (ret < 0)
			continue;
		b->dests[b->n] = (struct file_dedupe_dest){ .ino = d->dst.ino, .off = d->dst_offset };
		b->from[b->n++] = i;
	}
	req_caller_free(&rc);
}

void ioctl_dedupe_range(const struct ioctl_req *r)
{
	const struct cowfs_ioc_dedupe_range *in = r->in;
	struct cowfs_ioc_dedupe_range out;
	struct dedupe_batch b;
	uint64_t len;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	ret = dedupe_check(r, in);
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	out = *in;
	dedupe_collect(r, in, &out, &b);
	len = in->src_length < COWFS_DEDUPE_MAX_LEN ? in->src_length : COWFS_DEDUPE_MAX_LEN;
	/* Called with no destination left too: what is wrong with the source is still the
	 * answer to the whole request. */
	ret = file_dedupe_range(r->it, r->ino, in->src_offset, len, b.dests, b.n);
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	for (size_t k = 0; k < b.n; k++) {
		struct cowfs_ioc_dedupe_dest *d = &out.dests[b.from[k]];

		d->status = b.dests[k].status;
		d->bytes_deduped = b.dests[k].status == FILE_DEDUPE_SAME ? b.dests[k].deduped : 0;
		/* The bytes are the ones the kernel has cached, so its pages stay right; only
		 * the attributes (blocks, times) may have changed. */
		if (d->bytes_deduped)
			invalidate_cache(r->s, r->it, b.dests[k].ino, -1, 0);
	}
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

/* ---- FIEMAP ------------------------------------------------------------------------------ */

static uint32_t extent_flags_to_ioc(unsigned f)
{
	return (f & FILE_MAP_LAST ? COWFS_EXTENT_LAST : 0) |
	       (f & FILE_MAP_DELALLOC ? COWFS_EXTENT_DELALLOC : 0) |
	       (f & FILE_MAP_UNWRITTEN ? COWFS_EXTENT_UNWRITTEN : 0) |
	       (f & FILE_MAP_SHARED ? COWFS_EXTENT_SHARED : 0);
}

/* FS_IOC_FIEMAP's checks: known flags, a length; a directory has no extents to map (as on
 * xfs, whose directories have no fiemap: EOPNOTSUPP). */
static int fiemap_check(const struct ioctl_req *r, const struct cowfs_ioc_fiemap *in)
{
	if (in->version != COWFS_FIEMAP_VERSION || (in->flags & ~COWFS_FIEMAP_SYNC))
		return -EINVAL;
	if (in->length == 0)
		return -EINVAL;
	return r->dir ? -EOPNOTSUPP : 0;
}

void ioctl_fiemap(const struct ioctl_req *r)
{
	const struct cowfs_ioc_fiemap *in = r->in;
	struct cowfs_ioc_fiemap out;
	struct file_map_extent ext[COWFS_FIEMAP_BATCH];
	uint64_t end;
	size_t n = 0;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	ret = fiemap_check(r, in);
	end = in->length > UINT64_MAX - in->start ? UINT64_MAX : in->start + in->length;
	if (ret == 0)
		ret = file_map_extents(r->it, r->ino, in->start, end,
				       in->flags & COWFS_FIEMAP_SYNC, ext, COWFS_FIEMAP_BATCH, &n);
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	memset(&out, 0, sizeof(out));
	out.version = COWFS_FIEMAP_VERSION;
	out.flags = in->flags;
	out.start = in->start;
	out.length = in->length;
	out.count = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		out.extents[i].logical = ext[i].logical;
		out.extents[i].physical = ext[i].physical;
		out.extents[i].length = ext[i].length;
		out.extents[i].flags = extent_flags_to_ioc(ext[i].flags);
	}
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

/* ---- CHUNK_HASHES ------------------------------------------------------------------------ */

_Static_assert(FILE_CHUNK_MAX == COWFS_DEDUPE_MAX_LEN, "a chunk is at most what one dedupe takes");
_Static_assert(FILE_CHUNK_HASHED == COWFS_CHUNK_HASHED && FILE_CHUNK_HOLE == COWFS_CHUNK_HOLE &&
	       FILE_CHUNK_UNWRITTEN == COWFS_CHUNK_UNWRITTEN &&
	       FILE_CHUNK_DELALLOC == COWFS_CHUNK_DELALLOC &&
	       FILE_CHUNK_CONTIGUOUS == COWFS_CHUNK_CONTIGUOUS &&
	       FILE_CHUNK_SHARED == COWFS_CHUNK_SHARED, "chunk flags are fs/'s, passed through");

/* The request's own checks; the chunk size and alignment are fs/'s. Reading the fingerprints
 * is reading the file: it must be open for reading. */
static int chunk_hashes_check(const struct ioctl_req *r, const struct cowfs_ioc_chunk_hashes *in)
{
	if (in->version != COWFS_CHUNK_HASHES_VERSION || (in->flags & ~COWFS_CHUNK_SYNC) ||
	    in->reserved)
		return -EINVAL;
	if (r->dir)
		return -EISDIR;
	return r->fh & FH_READ ? 0 : -EBADF;
}

static void chunk_hashes_reply(const struct ioctl_req *r, const struct cowfs_ioc_chunk_hashes *in,
			       struct cowfs_ioc_chunk_hashes *out, const struct file_chunk *c,
			       size_t n)
{
	memset(out, 0, sizeof(*out));
	out->version = COWFS_CHUNK_HASHES_VERSION;
	out->flags = in->flags;
	out->chunk_bytes = in->chunk_bytes;
	out->start = in->start;
	out->count = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		out->chunks[i] = (struct cowfs_ioc_chunk){
			.offset = c[i].offset, .length = c[i].length, .physical = c[i].physical,
			.hash_lo = c[i].hash_lo, .hash_hi = c[i].hash_hi, .flags = c[i].flags };
	fuse_reply_ioctl(r->req, 0, out, sizeof(*out));
}

void ioctl_chunk_hashes(const struct ioctl_req *r)
{
	const struct cowfs_ioc_chunk_hashes *in = r->in;
	struct cowfs_ioc_chunk_hashes *out = NULL;
	struct file_chunk *c = NULL;
	size_t n = 0;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(*out)))
		return;
	ret = chunk_hashes_check(r, in);
	if (ret == 0) {
		out = malloc(sizeof(*out));
		c = malloc(COWFS_CHUNK_BATCH * sizeof(*c));
		ret = out && c ? 0 : -ENOMEM;
	}
	if (ret == 0)
		ret = file_chunk_hashes(r->it, r->ino, in->start, in->chunk_bytes,
					in->flags & COWFS_CHUNK_SYNC, c, COWFS_CHUNK_BATCH, &n);
	if (ret < 0)
		reply_err(r->req, ret);
	else
		chunk_hashes_reply(r, in, out, c, n);
	free(out);
	free(c);
}
