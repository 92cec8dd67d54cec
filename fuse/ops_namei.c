/*
 * Handlers that make, link and remove names: mknod, mkdir, symlink, create, link, unlink,
 * rmdir, rename. fs/inode checks names, types and emptiness itself; names longer than
 * INODE_NAME_MAX are refused here too, before anything is looked up.
 *
 * A new inode belongs to the caller, with the group of a setgid directory (BSD semantics,
 * which every Linux filesystem follows). With POSIX ACLs on, the kernel leaves the umask to
 * us: acl_new_inode() applies it, or instead derives the mode and ACLs from the directory's
 * default ACL; without them the kernel applied it already.
 */
#include "fuse/internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/inode/xattr.h"

/* What a new inode is. */
struct node_spec {
	const char *name;
	uint32_t mode;          /* file type and the permission bits asked for */
	uint64_t rdev;          /* device nodes */
	const char *target;     /* symlinks */
};

/* The owner of a new inode in `dir`; a directory made in a setgid one is setgid too. */
static int new_owner(struct inode_tree *it, fuse_req_t req, uint64_t dir, struct node_spec *n,
		     uint32_t *uid, uint32_t *gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct cowfs_attr d;
	int ret = inode_getattr(it, dir, &d);

	if (ret < 0)
		return ret;
	*uid = ctx->uid;
	*gid = ctx->gid;
	if (d.mode & S_ISGID) {
		*gid = d.gid;
		if (S_ISDIR(n->mode))
			n->mode |= S_ISGID;
	}
	return 0;
}

static int create_node(struct inode_tree *it, uint64_t dir, const struct node_spec *n,
		       uint32_t uid, uint32_t gid, struct cowfs_attr *a)
{
	size_t len = strlen(n->name);

	switch (n->mode & S_IFMT) {
	case S_IFDIR:
		return inode_mkdir(it, dir, n->name, len, n->mode, uid, gid, a);
	case S_IFLNK:
		return inode_symlink(it, dir, n->name, len, n->target, strlen(n->target),
				     uid, gid, a);
	default:
		return inode_create(it, dir, n->name, len, n->mode, n->rdev, uid, gid, a);
	}
}

/* Take back a node whose ACL could not be set: it must not stay with other access than
 * its directory's default ACL allows. Best effort: the error reported is the ACL's. */
static void remove_node(struct inode_tree *it, uint64_t dir, const struct node_spec *n)
{
	size_t len = strlen(n->name);

	if (S_ISDIR(n->mode))
		(void)inode_rmdir(it, dir, n->name, len);
	else
		(void)inode_unlink(it, dir, n->name, len);
}

/* Make the node `n` in `dir` with its owner and inherited ACL; its attributes in *a. */
static int make_node(fuse_req_t req, struct inode_tree *it, uint64_t dir, struct node_spec *n,
		     struct cowfs_attr *a)
{
	struct server *s = server_of(req);
	struct acl_new acl = { 0 };
	uint32_t uid, gid;
	int ret;

	if (name_too_long(n->name))
		return -ENAMETOOLONG;
	ret = new_owner(it, req, dir, n, &uid, &gid);
	if (ret == 0 && s->posix_acl)
		ret = acl_new_inode(it, dir, &n->mode, fuse_req_ctx(req)->umask, &acl);
	if (ret == 0)
		ret = create_node(it, dir, n, uid, gid, a);
	if (ret == 0) {
		ret = acl_apply_new(it, a->ino, &acl);
		if (ret < 0)
			remove_node(it, dir, n);
	}
	acl_new_free(&acl);
	return ret;
}

static void reply_new_node(fuse_req_t req, fuse_ino_t parent, struct node_spec *n)
{
	struct inode_tree *it;
	struct cowfs_attr a;
	uint64_t dir;
	int ret = node_resolve(server_of(req), parent, &it, &dir);

	if (ret == 0)
		ret = make_node(req, it, dir, n, &a);
	if (ret < 0)
		reply_err(req, ret);
	else
		reply_entry_held(req, server_of(req), it, &a);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct node_spec n = { .name = name, .mode = mode, .rdev = rdev };

	/* The kernel never asks for these through mknod; make sure they stay mkdir's and
	 * symlink's, which need what mknod does not give. */
	if (S_ISDIR(mode) || S_ISLNK(mode)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	reply_new_node(req, parent, &n);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct node_spec n = { .name = name, .mode = S_IFDIR | (mode & 07777) };

	reply_new_node(req, parent, &n);
}

void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct node_spec n = { .name = name, .mode = S_IFLNK | 0777, .target = target };

	reply_new_node(req, parent, &n);
}

/* open(O_CREAT) of a name that did not exist: the kernel handles O_EXCL, but a name made
 * meanwhile is still -EEXIST from inode_create. */
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct server *s = server_of(req);
	struct node_spec n = { .name = name, .mode = S_IFREG | (mode & 07777) };
	struct fuse_entry_param e;
	struct inode_tree *it;
	struct cowfs_attr a;
	uint64_t dir;
	int ret = node_resolve(s, parent, &it, &dir);

	if (ret == 0)
		ret = make_node(req, it, dir, &n, &a);
	if (ret == 0)
		ret = attr_to_entry(&a, s->root_subvol, &e);
	if (ret == 0)
		ret = entry_hold(s, it, a.ino);
	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	file_handle_init(fi);
	if (fuse_reply_create(req, &e, fi) < 0)
		entry_release(s, e.ino, 1);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct server *s = server_of(req);
	struct inode_tree *it, *dit;
	struct cowfs_attr a;
	uint64_t i, dir;
	int ret = name_too_long(newname) ? -ENAMETOOLONG : node_resolve(s, ino, &it, &i);

	if (ret == 0)
		ret = node_resolve(s, newparent, &dit, &dir);
	/* A hard link names an inode of its own tree only. */
	if (ret == 0 && dit != it)
		ret = -EXDEV;
	if (ret == 0)
		ret = inode_link(it, i, dir, newname, strlen(newname), &a);
	if (ret < 0)
		reply_err(req, ret);
	else
		reply_entry_held(req, s, it, &a);
}

/* unlink and rmdir: `remove` of `name` in the parent's tree. */
static void reply_removed(fuse_req_t req, fuse_ino_t parent, const char *name,
			  int (*remove)(struct inode_tree *it, uint64_t dir, const char *name,
					size_t len))
{
	struct inode_tree *it;
	uint64_t dir;
	int ret = name_too_long(name) ? -ENAMETOOLONG : node_resolve(server_of(req), parent, &it,
								       &dir);

	if (ret == 0)
		ret = remove(it, dir, name, strlen(name));
	reply_err(req, ret);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_removed(req, parent, name, inode_unlink);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_removed(req, parent, name, inode_rmdir);
}

/* rename(2) and renameat2(2): the flags are RENAME_NOREPLACE / RENAME_EXCHANGE /
 * RENAME_WHITEOUT, which fs/inode takes as they are and refuses any other with -EINVAL. The
 * kernel has checked CAP_MKNOD for a whiteout; the caller owns it. */
void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	struct server *s = server_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct inode_tree *it, *nit;
	uint64_t dir, newdir;
	int ret = name_too_long(name) || name_too_long(newname) ? -ENAMETOOLONG :
		  node_resolve(s, parent, &it, &dir);

	if (ret == 0)
		ret = node_resolve(s, newparent, &nit, &newdir);
	/* Names move within one subvolume's tree only (as between two filesystems). */
	if (ret == 0 && nit != it)
		ret = -EXDEV;
	if (ret == 0)
		ret = inode_rename_as(it, dir, name, strlen(name), newdir, newname, strlen(newname),
				      flags, ctx->uid, ctx->gid);
	reply_err(req, ret);
}
