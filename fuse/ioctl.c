/*
 * The mount's own ioctls (cowfs_ioctl.h, docs/IOCTL.md): the kernel forwards restricted ioctls
 * with their output area sized from the command number; each is answered from an fs/ call.
 * This file dispatches them and answers those about the mount or one inode as a whole
 * (STATUS, FILE_ID, SYNC, STATS); ioctl_share.c has clone, dedupe, the extent map and the
 * chunk fingerprints, space_sets.c the SPACE figures.
 *
 * Directories get ioctls too (FUSE_IOCTL_DIR, which libfuse takes by default): then fh is the
 * directory handle's, which says nothing of how it was opened.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuse/internal.h"

#include "fs/inode/file.h"

bool ioctl_sizes_ok(const struct ioctl_req *r, size_t in_size, size_t out_size)
{
	/* ioctl(2) always hands over the whole struct the command number sizes; anything short
	 * is a caller speaking another version of this interface. */
	if ((in_size && (!r->in || r->in_size < in_size)) || r->out_size < out_size) {
		fuse_reply_err(r->req, EINVAL);
		return false;
	}
	return true;
}

int ioctl_file_resolve(struct server *s, const struct cowfs_ioc_file *f, struct inode_tree **it,
		       struct cowfs_attr *a)
{
	int ret;

	/* Numbers below the root's are the tree's own items, never a file. */
	if (f->ino < INODE_ROOT_INO || f->ino > INODE_MAX_INO)
		return -ENOENT;
	ret = subvols_tree(s->sv, f->subvol, it);
	if (ret == 0)
		ret = inode_getattr(*it, f->ino, a);
	if (ret < 0)
		return ret;
	return a->generation == f->generation ? 0 : -ESTALE;
}

int ioctl_writable(struct server *s)
{
	return s->read_only || cowfs_read_only(s->fs) ? -EROFS : 0;
}

static void reply_status(const struct ioctl_req *r)
{
	struct cowfs_ioc_status out = { .version = COWFS_STATUS_VERSION };
	struct cowfs_status st;

	if (!ioctl_sizes_ok(r, 0, sizeof(out)))
		return;
	cowfs_get_status(r->s->fs, &st);
	out.generation = st.generation;
	out.commits = st.commits;
	out.flushes = st.flushes;
	out.flags = (st.read_only ? COWFS_STATUS_READ_ONLY : 0) |
		    (st.aborted ? COWFS_STATUS_ABORTED : 0);
	if (st.aborted) {
		out.aborted_transid = st.failure.transid;
		out.error = st.failure.err;
		snprintf(out.message, sizeof(out.message), "%s", st.failure.msg);
	}
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

static void reply_file_id(const struct ioctl_req *r)
{
	struct cowfs_ioc_file_id out = { .version = COWFS_FILE_ID_VERSION };
	struct cowfs_attr a;
	int ret;

	if (!ioctl_sizes_ok(r, 0, sizeof(out)))
		return;
	ret = inode_getattr(r->it, r->ino, &a);
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	out.blocksize = cowfs_sectorsize(r->s->fs);
	out.file.subvol = inode_tree_subvol(r->it);
	out.file.ino = a.ino;
	out.file.generation = a.generation;
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

/* sync(2)'s promise: back once everything written before is durable. -EIO after an abort
 * (what was written since the last commit is gone); nothing to do read-only. */
static void reply_sync(const struct ioctl_req *r)
{
	int ret = file_sync_all(r->it);

	if (ret < 0)
		reply_err(r->req, ret);
	else
		fuse_reply_ioctl(r->req, 0, NULL, 0);
}

static void reply_stats(const struct ioctl_req *r)
{
	struct cowfs_ioc_stats out = { .version = COWFS_STATS_VERSION };
	struct file_share_stats fs;
	struct cowfs_status st;

	if (!ioctl_sizes_ok(r, 0, sizeof(out)))
		return;
	/* The figures of the subvolume the ioctl is issued on (a copy counts in its
	 * destination's). */
	file_get_share_stats(r->it, &fs);
	cowfs_get_status(r->s->fs, &st);
	out.copy_calls = fs.copy_calls;
	out.copy_bytes_shared = fs.copy_bytes_shared;
	out.copy_bytes_copied = fs.copy_bytes_copied;
	out.clone_calls = fs.clone_calls;
	out.clone_bytes = fs.clone_bytes;
	out.dedupe_calls = fs.dedupe_calls;
	out.dedupe_bytes_same = fs.dedupe_bytes_same;
	out.dedupe_bytes_differ = fs.dedupe_bytes_differ;
	out.commits = st.commits;
	out.fsyncs = fs.fsyncs;
	out.fsync_log_hits = fs.fsync_log_hits;
	out.fsync_commits = fs.fsync_commits;
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

/* Only the superuser or the mounter may change how the mount runs. */
static bool may_remount(fuse_req_t req)
{
	uid_t uid = fuse_req_ctx(req)->uid;

	return uid == 0 || uid == getuid();
}

static int remount_switch(struct server *s, const struct cowfs_ioc_remount *in)
{
	bool ro = in->flags & COWFS_REMOUNT_READ_ONLY;
	int ret = 0;

	pthread_mutex_lock(&s->remount_lock);
	if (in->flags & COWFS_REMOUNT_COMMIT)
		ret = cowfs_set_commit_interval(s->fs, (int)in->commit_seconds * 1000);
	if (ret == 0 && (in->flags & (COWFS_REMOUNT_READ_ONLY | COWFS_REMOUNT_READ_WRITE)))
		ret = cowfs_set_read_only(s->fs, ro);
	pthread_mutex_unlock(&s->remount_lock);
	if (ret == 0)
		server_say(s, "%s: remounted %s", s->image, cowfs_read_only(s->fs) ? "read-only" :
			   "read-write");
	else
		server_say(s, "%s: remount: %s", s->image, strerror(-ret));
	return ret;
}

static void reply_remount(const struct ioctl_req *r)
{
	const struct cowfs_ioc_remount *in = r->in;
	struct cowfs_ioc_remount out = { .version = COWFS_REMOUNT_VERSION };
	struct cowfs_status st;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	if (in->version != COWFS_REMOUNT_VERSION || in->reserved ||
	    (in->flags & ~(COWFS_REMOUNT_READ_ONLY | COWFS_REMOUNT_READ_WRITE |
			   COWFS_REMOUNT_COMMIT)) ||
	    (in->flags & COWFS_REMOUNT_READ_ONLY && in->flags & COWFS_REMOUNT_READ_WRITE) ||
	    in->commit_seconds > INT_MAX / 1000) {
		fuse_reply_err(r->req, EINVAL);
		return;
	}
	if (!r->dir || r->it != r->s->root_it || r->ino != INODE_ROOT_INO) {
		fuse_reply_err(r->req, ENOTTY);
		return;
	}
	if (!may_remount(r->req)) {
		fuse_reply_err(r->req, EPERM);
		return;
	}
	ret = remount_switch(r->s, in);
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	cowfs_get_status(r->s->fs, &st);
	out.flags = (st.read_only ? COWFS_STATUS_READ_ONLY : 0) |
		    (st.aborted ? COWFS_STATUS_ABORTED : 0);
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
	      struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
	      size_t out_bufsz)
{
	struct ioctl_req r = {
		.req = req,
		.s = server_of(req),
		.dir = flags & FUSE_IOCTL_DIR,
		.fh = fi && !(flags & FUSE_IOCTL_DIR) ? fi->fh : 0,
		.in = in_buf,
		.in_size = in_bufsz,
		.out_size = out_bufsz,
	};

	int ret;

	(void)arg;
	/* A 32-bit caller on a 64-bit kernel: the structs have no pointers, but say no rather
	 * than guess at its padding. */
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ret = node_resolve(r.s, ino, &r.it, &r.ino);
	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	switch (cmd) {
	case COWFS_IOC_STATUS:
		reply_status(&r);
		return;
	case COWFS_IOC_FILE_ID:
		reply_file_id(&r);
		return;
	case COWFS_IOC_CLONE_RANGE:
		ioctl_clone_range(&r);
		return;
	case COWFS_IOC_DEDUPE_RANGE:
		ioctl_dedupe_range(&r);
		return;
	case COWFS_IOC_FIEMAP:
		ioctl_fiemap(&r);
		return;
	case COWFS_IOC_SPACE:
		ioctl_space(&r);
		return;
	case COWFS_IOC_CHUNK_HASHES:
		ioctl_chunk_hashes(&r);
		return;
	case COWFS_IOC_SYNC:
		reply_sync(&r);
		return;
	case COWFS_IOC_STATS:
		reply_stats(&r);
		return;
	case COWFS_IOC_REMOUNT:
		reply_remount(&r);
		return;
	case COWFS_IOC_SUBVOL_CREATE:
		ioctl_subvol_create(&r, false);
		return;
	case COWFS_IOC_SNAP_CREATE:
		ioctl_subvol_create(&r, true);
		return;
	case COWFS_IOC_SUBVOL_DELETE:
		ioctl_subvol_delete(&r);
		return;
	case COWFS_IOC_SUBVOL_INFO:
		ioctl_subvol_info(&r);
		return;
	case COWFS_IOC_SUBVOL_SET_FLAGS:
		ioctl_subvol_set_flags(&r);
		return;
	case COWFS_IOC_SUBVOL_DEFAULT:
		ioctl_subvol_default(&r);
		return;
	case COWFS_IOC_SUBVOL_SYNC:
		ioctl_subvol_sync(&r);
		return;
	case COWFS_IOC_SUBVOL_SPACE:
		ioctl_subvol_space(&r);
		return;
	default:
		fuse_reply_err(req, ENOTTY);
	}
}
