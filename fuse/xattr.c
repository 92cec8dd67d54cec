/*
 * Extended attributes: setxattr, getxattr, listxattr, removexattr, on top of
 * fs/inode/xattr.h, which checks names, namespaces and sizes.
 *
 * POSIX ACLs are the system.posix_acl_access / system.posix_acl_default attributes. With
 * default_permissions the kernel enforces them (FUSE_CAP_POSIX_ACL, taken in ops.c) and
 * leaves the rest to the filesystem: fs/inode keeps the mode in step with the access ACL
 * when one is set, chmod rewrites it (inode_setattr), and a new inode inherits its
 * directory's default ACL (ops_namei.c).
 */
#include "fuse/internal.h"

#include <errno.h>
#include <stdlib.h>

#include "fs/inode/xattr.h"

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	struct server *s = server_of(req);
	struct req_changer rch;
	struct inode_tree *it;
	uint64_t i;
	int ret = node_resolve(s, ino, &it, &i);

	if (ret == 0) {
		req_changer_init(&rch, req);
		ret = inode_setxattr_as(it, i, name, value, size, flags, &rch.ch);
		req_changer_free(&rch);
	}
	reply_err(req, ret);
}

/* getxattr and listxattr: asked with size 0, the length the value needs; else the value
 * (-ERANGE from fs/ if it does not fit in `size`). */
static void reply_xattr(fuse_req_t req, size_t size, const char *buf, ssize_t n)
{
	if (n < 0)
		reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct server *s = server_of(req);
	struct inode_tree *it;
	char *buf = NULL;
	uint64_t i;
	ssize_t n = node_resolve(s, ino, &it, &i);

	if (n == 0 && size && !(buf = malloc(size)))
		n = -ENOMEM;
	if (n == 0)
		n = inode_getxattr(it, i, name, buf, size);
	reply_xattr(req, size, buf, n);
	free(buf);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct server *s = server_of(req);
	struct inode_tree *it;
	char *buf = NULL;
	uint64_t i;
	ssize_t n = node_resolve(s, ino, &it, &i);

	if (n == 0 && size && !(buf = malloc(size)))
		n = -ENOMEM;
	if (n == 0)
		n = inode_listxattr(it, i, buf, size);
	reply_xattr(req, size, buf, n);
	free(buf);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct inode_tree *it;
	uint64_t i;
	int ret = node_resolve(server_of(req), ino, &it, &i);

	reply_err(req, ret < 0 ? ret : inode_removexattr(it, i, name));
}
