/*
 * The mount's own ioctls (cowfs_ioctl.h): the kernel forwards restricted ioctls with their
 * output area sized from the command number; each is answered from an fs/ call.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fuse/cowfs_ioctl.h"
#include "fuse/internal.h"

static void reply_status(fuse_req_t req, struct server *s, size_t out_bufsz)
{
	struct cowfs_ioc_status out = { .version = COWFS_STATUS_VERSION };
	struct cowfs_status st;

	if (out_bufsz < sizeof(out)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	cowfs_get_status(s->fs, &st);
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
	fuse_reply_ioctl(req, 0, &out, sizeof(out));
}

void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
	      struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct server *s = server_of(req);

	(void)ino, (void)arg, (void)fi, (void)in_buf, (void)in_bufsz;
	/* A 32-bit caller on a 64-bit kernel: the structs have no pointers, but say no rather
	 * than guess at its padding. */
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	switch (cmd) {
	case COWFS_IOC_STATUS:
		reply_status(req, s, out_bufsz);
		return;
	default:
		fuse_reply_err(req, ENOTTY);
	}
}
