/*
 * The request handler table, and the handlers about the connection and about inodes as a
 * whole: init, destroy, lookup and the kernel's lookup counts (forget), getattr, setattr,
 * readlink, statfs, access. Names are in ops_namei.c, directories in ops_dir.c, file data in
 * ops_data.c, extended attributes in xattr.c.
 *
 * Lookup counts: every reply that gives the kernel an entry (lookup, the creating calls,
 * readdirplus) takes one hold with inode_hold(), and forget gives them back, so that an
 * inode unlinked while the kernel still knows it (an open file) lives until then. The root
 * is held by the mount itself and never counted.
 */
#include "fuse/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/inode/xattr.h"
#include "fs/lib/compiler.h"

/*
 * Capabilities taken when the kernel offers them. HANDLE_KILLPRIV: cowfs drops setuid/setgid
 * on write, truncate, open(O_TRUNC), chown, fallocate and copy_file_range itself, by the
 * kernel's rule (fs/inode/permission.c). Without it the kernel sends a chmod of its own
 * first, which knows only "setuid, and setgid if group-executable" (not the caller's
 * groups), and none for O_DIRECT writes; Linux 6.18 was seen to send that chmod even with
 * it, so the rule is also applied on top of such a mode (inode_setattr_as).
 */
#define CAPS_WANTED (FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_READDIRPLUS |                   \
		     FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_ATOMIC_O_TRUNC |                \
		     FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_HANDLE_KILLPRIV)

/*
 * Capabilities never taken. Write-back caching would keep dirty data in the kernel, out of
 * reach of cowfs commits. Splicing buys nothing: file data goes into and out of memory
 * buffers on this side either way, and the pipe in between only adds system calls.
 */
#define CAPS_REFUSED (FUSE_CAP_WRITEBACK_CACHE |                                           \
		      FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE)

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct server *s = userdata;

	conn->want |= CAPS_WANTED & conn->capable;
	conn->want &= ~CAPS_REFUSED;
	/* ACLs need the kernel's permission checks, so they come with default_permissions
	 * only. The umask is then ours to apply (ops_namei.c): a default ACL replaces it, so
	 * the kernel must not apply it first (DONT_MASK). */
	if (s->default_permissions && (conn->capable & FUSE_CAP_POSIX_ACL) &&
	    (conn->capable & FUSE_CAP_DONT_MASK)) {
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
		s->posix_acl = true;
	}
	conn->max_write = SERVER_MAX_WRITE;
	/* libfuse 3.14 refuses the connection unless init repeats the max_read= it was given
	 * ("init() and fuse_session_new() requested different maximum read size"). */
	conn->max_read = s->max_read;
	conn->time_gran = 1;
}

/* The connection is gone and no request will come: commit and close the image. */
static void op_destroy(void *userdata)
{
	server_close(userdata);
}

bool name_too_long(const char *name)
{
	return strnlen(name, INODE_NAME_MAX + 1) > INODE_NAME_MAX;
}

int node_resolve(struct server *s, fuse_ino_t node, struct inode_tree **it, uint64_t *ino)
{
	uint64_t subvol;
	int ret = ino_from_fuse(node, s->root_subvol, &subvol, ino);

	if (ret < 0)
		return ret;
	if (subvol == s->root_subvol) {
		*it = s->root_it;
		return 0;
	}
	ret = subvols_tree(s->sv, subvol, it);
	return ret == -ENOENT ? -ESTALE : ret;
}

fuse_ino_t node_of(const struct server *s, struct inode_tree *it, uint64_t ino)
{
	return ino_to_fuse(inode_tree_subvol(it), ino, s->root_subvol);
}

int entry_cross(struct server *s, struct inode_tree **it, struct cowfs_attr *a)
{
	struct inode_tree *sub;
	int ret;

	if (a->subvol == inode_tree_subvol(*it))
		return 0;
	ret = subvols_tree(s->sv, a->subvol, &sub);
	if (ret == 0)
		ret = inode_getattr(sub, INODE_ROOT_INO, a);
	if (ret == 0)
		*it = sub;
	return ret;
}

/* The mount's root is held by the mount itself; every other inode, subvolume roots too (the
 * cleaner drops a deleted subvolume only once the kernel forgot all of it), by the kernel. */
static bool is_mount_root(const struct server *s, struct inode_tree *it, uint64_t ino)
{
	return it == s->root_it && ino == INODE_ROOT_INO;
}

int entry_hold(struct server *s, struct inode_tree *it, uint64_t ino)
{
	return is_mount_root(s, it, ino) ? 0 : inode_hold(it, ino);
}

void entry_release(struct server *s, fuse_ino_t node, uint64_t n)
{
	struct inode_tree *it;
	uint64_t ino;

	/* Nothing can be told of a failure here: the inode stays held, and an orphan the
	 * kernel no longer knows is freed at unmount or at the next mount. */
	if (node_resolve(s, node, &it, &ino) == 0 && !is_mount_root(s, it, ino))
		(void)inode_release(it, ino, n);
}

/* Reply with an entry the kernel will count a lookup of: hold it first. */
void reply_entry_held(fuse_req_t req, struct server *s, struct inode_tree *it,
		      const struct cowfs_attr *a)
{
	struct fuse_entry_param e;
	int ret = attr_to_entry(a, s->root_subvol, &e);

	if (ret == 0)
		ret = entry_hold(s, it, a->ino);
	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	/* A reply the kernel refused (the request was aborted) counted no lookup. */
	if (fuse_reply_entry(req, &e) < 0)
		entry_release(s, e.ino, 1);
}

/* "No such name", cached by the kernel like an entry (inode 0). */
static void reply_negative_entry(fuse_req_t req)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.entry_timeout = SERVER_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct server *s = server_of(req);
	struct inode_tree *it;
	struct cowfs_attr a;
	uint64_t dir;
	int ret;

	if (name_too_long(name)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	ret = node_resolve(s, parent, &it, &dir);
	/* "." is how the kernel finds an inode by number alone, for open_by_handle_at(2):
	 * then the "parent" may be any inode, not only a directory. */
	if (ret == 0 && strcmp(name, ".") == 0)
		ret = inode_getattr(it, dir, &a);
	else if (ret == 0)
		ret = inode_lookup(it, dir, name, strlen(name), &a);
	if (ret == 0)
		ret = entry_cross(s, &it, &a);
	if (ret == -ENOENT)
		reply_negative_entry(req);
	else if (ret < 0)
		reply_err(req, ret);
	else
		reply_entry_held(req, s, it, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	entry_release(server_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct server *s = server_of(req);

	for (size_t i = 0; i < count; i++)
		entry_release(s, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void reply_attr_of(fuse_req_t req, struct inode_tree *it, uint64_t ino)
{
	struct cowfs_attr a;
	struct stat st;
	int ret = inode_getattr(it, ino, &a);

	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	attr_to_stat(&a, &st);
	fuse_reply_attr(req, &st, SERVER_TIMEOUT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct inode_tree *it;
	uint64_t i;
	int ret = node_resolve(server_of(req), ino, &it, &i);

	(void)fi;
	if (ret < 0)
		reply_err(req, ret);
	else
		reply_attr_of(req, it, i);
}

/* chmod, chown, truncate, utimens, on a name or an open file alike: fs/ works by inode. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct server *s = server_of(req);
	struct cowfs_attr a;
	unsigned mask = attr_from_setattr(attr, to_set, &a);
	struct req_changer rch;
	struct inode_tree *it;
	uint64_t i;
	int ret = node_resolve(s, ino, &it, &i);

	(void)fi;
	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	/* One transaction: a mode change rewrites the access ACL with it; a truncate or chown
	 * drops setuid/setgid with it (HANDLE_KILLPRIV: the kernel leaves that to us). */
	req_changer_init(&rch, req);
	ret = inode_setattr_as(it, i, mask, &a, &rch.ch);
	req_changer_free(&rch);
	if (ret < 0)
		reply_err(req, ret);
	else
		reply_attr_of(req, it, i);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[INODE_SYMLINK_MAX + 1];
	struct inode_tree *it;
	size_t len;
	uint64_t i;
	int ret = node_resolve(server_of(req), ino, &it, &i);

	if (ret == 0)
		ret = inode_readlink(it, i, target, INODE_SYMLINK_MAX, &len);

	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	target[len < INODE_SYMLINK_MAX ? len : INODE_SYMLINK_MAX] = '\0';
	fuse_reply_readlink(req, target);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct server *s = server_of(req);
	struct cowfs_statfs fst;
	struct statvfs st;

	(void)ino;
	cowfs_statfs(s->fs, &fst);
	statfs_to_statvfs(&fst, &st);
	fuse_reply_statfs(req, &st);
}

void req_caller_init(struct req_caller *rc, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int n = fuse_req_getgroups(req, (int)ARRAY_SIZE(rc->small), rc->small);

	rc->heap = NULL;
	rc->c.uid = ctx->uid;
	rc->c.gid = ctx->gid;
	rc->c.groups = rc->small;
	if (n > (int)ARRAY_SIZE(rc->small)) {
		rc->heap = malloc((size_t)n * sizeof(*rc->heap));
		n = rc->heap ? fuse_req_getgroups(req, n, rc->heap) : -ENOMEM;
		rc->c.groups = rc->heap;
	}
	/* Groups that cannot be known (no /proc, or no memory) grant nothing: the check then
	 * errs on the side of refusing. */
	rc->c.ngroups = n > 0 ? (size_t)n : 0;
}

void req_caller_free(struct req_caller *rc)
{
	free(rc->heap);
	rc->heap = NULL;
}

static bool changer_in_groups(void *arg, gid_t gid)
{
	struct req_changer *rch = arg;

	if (!rch->have_groups) {
		req_caller_init(&rch->rc, rch->req);
		rch->have_groups = true;
	}
	return inode_caller_in_group(&rch->rc.c, gid);
}

void req_changer_init(struct req_changer *rch, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	rch->ch = (struct inode_changer){
		.uid = ctx->uid,
		.gid = ctx->gid,
		.fsetid = ctx->uid == 0,
		.in_groups = changer_in_groups,
		.arg = rch,
	};
	rch->req = req;
	rch->have_groups = false;
}

void req_changer_free(struct req_changer *rch)
{
	if (rch->have_groups)
		req_caller_free(&rch->rc);
}

/*
 * A change to the data of `ino` by the caller of `req` (write, fallocate, copy_file_range,
 * a clone): first setuid/setgid go as the kernel's file_modified drops them. The kernel
 * refreshes only size and times after a write, so the mode it has cached is dropped too:
 * stat must show the bits gone at once, as on ext4.
 */
int req_drop_privs(struct server *s, fuse_req_t req, struct inode_tree *it, uint64_t ino)
{
	struct req_changer rch;
	int ret;

	req_changer_init(&rch, req);
	ret = inode_drop_privs(it, ino, INODE_CHANGE_DATA, &rch.ch);
	req_changer_free(&rch);
	if (ret > 0)
		invalidate_cache(s, it, ino, -1, 0);
	return ret < 0 ? ret : 0;
}

/* access(2) without default_permissions (with it, the kernel checks and never asks). */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct server *s = server_of(req);
	struct inode_tree *it;
	struct req_caller rc;
	uint64_t i;
	int ret = node_resolve(s, ino, &it, &i);

	if (ret == 0) {
		req_caller_init(&rc, req);
		ret = inode_permission(it, i, &rc.c, mask);
		req_caller_free(&rc);
	}
	reply_err(req, ret);
}

const struct fuse_lowlevel_ops server_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.access = op_access,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.ioctl = op_ioctl,
};
