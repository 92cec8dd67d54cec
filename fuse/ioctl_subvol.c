/*
 * The subvolume ioctls (cowfs_ioctl.h, docs/IOCTL.md): SUBVOL_CREATE, SNAP_CREATE,
 * SUBVOL_DELETE, SUBVOL_INFO, SUBVOL_SET_FLAGS, SUBVOL_DEFAULT, SUBVOL_SYNC, SUBVOL_SPACE.
 * Each checks its arguments, takes the caller's credentials and makes one fs/ call
 * (fs/inode/subvol.h: the permission rules are there); the kernel is then told what changed
 * in the directory the ioctl was issued on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/internal.h"

#include "fs/super/subvol.h"

/* A name as the structs carry it: NUL-terminated within the array, one path component. */
static int name_check(const char *name, size_t *len)
{
	*len = strnlen(name, COWFS_SUBVOL_NAME_MAX + 1);
	if (*len == 0 || *len > COWFS_SUBVOL_NAME_MAX || memchr(name, '/', *len))
		return -EINVAL;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	return 0;
}

/* What the kernel cached of directory `dir` is stale: its attributes, and `name` in it. */
static void dir_changed(const struct ioctl_req *r, const char *name, size_t len)
{
	fuse_ino_t node = node_of(r->s, r->it, r->ino);

	if (!r->s->se)
		return;
	(void)fuse_lowlevel_notify_inval_entry(r->s->se, node, name, len);
	(void)fuse_lowlevel_notify_inval_inode(r->s->se, node, -1, 0);
}

/* ---- CREATE, SNAP_CREATE ----------------------------------------------------------------- */

static int create_check(const struct ioctl_req *r, const struct cowfs_ioc_subvol_create *in,
			bool snapshot, size_t *len)
{
	if (in->version != COWFS_SUBVOL_VERSION)
		return -EINVAL;
	if (in->flags & ~(snapshot ? COWFS_SUBVOL_RDONLY : 0u))
		return -EINVAL;
	if (snapshot && !subvol_id_valid(in->source))
		return -EINVAL;
	if (name_check(in->name, len) < 0)
		return -EINVAL;
	return r->dir ? 0 : -ENOTDIR;
}

void ioctl_subvol_create(const struct ioctl_req *r, bool snapshot)
{
	const struct cowfs_ioc_subvol_create *in = r->in;
	struct cowfs_ioc_subvol_create out;
	struct subvol_info info;
	struct req_caller rc;
	uint64_t id = 0;
	size_t len;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	ret = create_check(r, in, snapshot, &len);
	if (ret == 0) {
		req_caller_init(&rc, r->req);
		if (snapshot)
			ret = subvols_snapshot(r->s->sv, in->source, r->it, r->ino, in->name, len,
					       in->flags & COWFS_SUBVOL_RDONLY, &rc.c, &id);
		else
			ret = subvols_create(r->s->sv, r->it, r->ino, in->name, len, &rc.c, &id);
		req_caller_free(&rc);
	}
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	dir_changed(r, in->name, len);
	out = *in;
	out.id = id;
	cowfs_lock(r->s->fs);
	out.generation = cowfs_subvol_get(r->s->fs, id, &info) == 0 ? info.ctransid : 0;
	cowfs_unlock(r->s->fs);
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

/* ---- DELETE ------------------------------------------------------------------------------ */

/* The entry went: the kernel drops its dentry (and the subvolume's cached root with it). */
static void subvol_entry_gone(const struct ioctl_req *r, uint64_t id, const char *name,
			      size_t len)
{
	fuse_ino_t parent = node_of(r->s, r->it, r->ino);
	fuse_ino_t child = (fuse_ino_t)node_encode(id, INODE_ROOT_INO);

	if (!r->s->se)
		return;
	if (fuse_lowlevel_notify_delete(r->s->se, parent, child, name, len) < 0)
		(void)fuse_lowlevel_notify_inval_entry(r->s->se, parent, name, len);
	(void)fuse_lowlevel_notify_inval_inode(r->s->se, parent, -1, 0);
}

void ioctl_subvol_delete(const struct ioctl_req *r)
{
	const struct cowfs_ioc_subvol_delete *in = r->in;
	struct cowfs_ioc_subvol_delete out;
	struct req_caller rc;
	uint64_t id = 0;
	size_t len = 0;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	ret = in->version != COWFS_SUBVOL_VERSION || in->flags ? -EINVAL :
	      name_check(in->name, &len);
	if (ret == 0 && !r->dir)
		ret = -ENOTDIR;
	if (ret == 0) {
		req_caller_init(&rc, r->req);
		ret = subvols_delete(r->s->sv, r->it, r->ino, in->name, len, r->s->root_subvol,
				     &rc.c, &id);
		req_caller_free(&rc);
	}
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	subvol_entry_gone(r, id, in->name, len);
	out = *in;
	out.id = id;
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

/* ---- INFO -------------------------------------------------------------------------------- */

/* Put `s` (len bytes) and a '/' (unless first) in front of what buf[*pos..] holds. */
static int path_prepend(char *buf, size_t *pos, const char *s, size_t len, bool slash)
{
	size_t need = len + (slash ? 1 : 0);

	if (len == 0)
		return 0;
	if (need > *pos)
		return -ENAMETOOLONG;
	*pos -= need;
	memcpy(buf + *pos, s, len);
	if (slash)
		buf[*pos + len] = '/';
	return 0;
}

/* The path of subvolume `v` from the top level's root: its name, the path of the directory
 * holding it within its parent, and so on up (ROOT_BACKREF's parent, dir, name). */
static int subvol_path(struct server *s, const struct subvol_info *v, char *out, size_t size)
{
	char *buf = malloc(size), *dir = malloc(size);
	struct subvol_info cur = *v;
	size_t pos = size - 1;
	int ret = buf && dir ? 0 : -ENOMEM;

	if (ret == 0) {
		buf[pos] = '\0';
		ret = path_prepend(buf, &pos, cur.name, cur.name_len, false);
	}
	while (ret == 0 && cur.parent) {
		struct inode_tree *pt;
		uint64_t parent = cur.parent;
		ret = subvols_tree(s->sv, parent, &pt);
		if (ret == 0)
			ret = inode_dir_path(pt, cur.dir, dir, size);
		if (ret == 0)
			ret = path_prepend(buf, &pos, dir, strlen(dir), pos < size - 1);
		if (ret < 0 || parent == FS_TREE_ID)
			break;
		cowfs_lock(s->fs);
		ret = cowfs_subvol_get(s->fs, parent, &cur);
		cowfs_unlock(s->fs);
		if (ret == 0)
			ret = path_prepend(buf, &pos, cur.name, cur.name_len, pos < size - 1);
	}
	if (ret == 0)
		memcpy(out, buf + pos, size - pos);
	free(buf);
	free(dir);
	return ret;
}

static void info_to_ioc(const struct subvol_info *v, uint64_t default_id,
			struct cowfs_ioc_subvol_info *out)
{
	out->id = v->id;
	out->parent = v->parent;
	out->dir = v->dir;
	out->source = v->source;
	out->generation = v->generation;
	out->ctransid = v->ctransid;
	out->otime_sec = v->otime.tv_sec;
	out->otime_nsec = (uint32_t)v->otime.tv_nsec;
	out->flags = (v->flags & SUBVOL_RDONLY ? COWFS_SUBVOL_RDONLY : 0) |
		     (v->flags & SUBVOL_DELETING ? COWFS_SUBVOL_DELETING : 0) |
		     (v->id == default_id ? COWFS_SUBVOL_DEFAULT : 0);
	out->drop_permille = v->drop_total ?
		(uint32_t)(v->drop_done >= v->drop_total ? 1000 :
			   v->drop_done * 1000 / v->drop_total) : 0;
	memcpy(out->uuid, v->uuid, sizeof(out->uuid));
	memcpy(out->source_uuid, v->source_uuid, sizeof(out->source_uuid));
	memcpy(out->name, v->name, v->name_len < COWFS_SUBVOL_NAME_MAX ? v->name_len :
	       COWFS_SUBVOL_NAME_MAX);
}

static int info_find(struct server *s, const struct cowfs_ioc_subvol_info *in, uint64_t self,
		     struct subvol_info *v, uint64_t *default_id)
{
	int ret;

	cowfs_lock(s->fs);
	if (in->in_flags & COWFS_SUBVOL_INFO_NEXT)
		ret = cowfs_subvol_next(s->fs, in->id, v);
	else
		ret = cowfs_subvol_get(s->fs, in->id ? in->id : self, v);
	if (ret == 0)
		ret = cowfs_subvol_get_default(s->fs, default_id);
	cowfs_unlock(s->fs);
	return ret;
}

void ioctl_subvol_info(const struct ioctl_req *r)
{
	const struct cowfs_ioc_subvol_info *in = r->in;
	struct cowfs_ioc_subvol_info *out;
	struct subvol_info v;
	uint64_t default_id = FS_TREE_ID;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(*out)))
		return;
	if (in->version != COWFS_SUBVOL_VERSION || (in->in_flags & ~COWFS_SUBVOL_INFO_NEXT)) {
		fuse_reply_err(r->req, EINVAL);
		return;
	}
	out = calloc(1, sizeof(*out));
	ret = out ? info_find(r->s, in, inode_tree_subvol(r->it), &v, &default_id) : -ENOMEM;
	if (ret == 0) {
		out->version = COWFS_SUBVOL_VERSION;
		out->in_flags = in->in_flags;
		info_to_ioc(&v, default_id, out);
		if (v.id != FS_TREE_ID && !(v.flags & SUBVOL_DELETING))
			ret = subvol_path(r->s, &v, out->path, sizeof(out->path));
	}
	if (ret < 0)
		reply_err(r->req, ret);
	else
		fuse_reply_ioctl(r->req, 0, out, sizeof(*out));
	free(out);
}

/* ---- SET_FLAGS, DEFAULT ------------------------------------------------------------------ */

void ioctl_subvol_set_flags(const struct ioctl_req *r)
{
	const struct cowfs_ioc_subvol_flags *in = r->in;
	struct cowfs_ioc_subvol_flags out = { .version = COWFS_SUBVOL_VERSION };
	struct req_caller rc;
	int ret = 0;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	if (in->version != COWFS_SUBVOL_VERSION || (in->flags & ~COWFS_SUBVOL_RDONLY))
		ret = -EINVAL;
	else if (r->ino != INODE_ROOT_INO)
		ret = -EINVAL;   /* only a subvolume's root directory names the subvolume */
	if (ret == 0) {
		req_caller_init(&rc, r->req);
		ret = subvols_set_readonly(r->s->sv, inode_tree_subvol(r->it),
					   in->flags & COWFS_SUBVOL_RDONLY, &rc.c);
		req_caller_free(&rc);
	}
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	out.flags = in->flags & COWFS_SUBVOL_RDONLY;
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

void ioctl_subvol_default(const struct ioctl_req *r)
{
	const struct cowfs_ioc_subvol_default *in = r->in;
	struct cowfs_ioc_subvol_default out = { .version = COWFS_SUBVOL_VERSION };
	struct req_caller rc;
	int ret = 0;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	if (in->version != COWFS_SUBVOL_VERSION ||
	    (in->op != COWFS_SUBVOL_DEFAULT_GET && in->op != COWFS_SUBVOL_DEFAULT_SET))
		ret = -EINVAL;
	else if (in->op == COWFS_SUBVOL_DEFAULT_SET && !subvol_id_valid(in->id))
		ret = -EINVAL;
	if (ret == 0 && in->op == COWFS_SUBVOL_DEFAULT_SET) {
		req_caller_init(&rc, r->req);
		ret = subvols_set_default(r->s->sv, in->id, &rc.c);
		req_caller_free(&rc);
	}
	if (ret == 0) {
		cowfs_lock(r->s->fs);
		ret = cowfs_subvol_get_default(r->s->fs, &out.id);
		cowfs_unlock(r->s->fs);
	}
	out.op = in->op;
	if (ret < 0)
		reply_err(r->req, ret);
	else
		fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}

/* ---- SYNC -------------------------------------------------------------------------------- */

/* It may wait for as long as a big tree takes to drop: on a thread of its own, so that it
 * holds no request thread meanwhile. */
struct sync_job {
	struct server *s;
	fuse_req_t req;
	uint64_t id;
};

static void sync_run(struct sync_job *j)
{
	struct cowfs_ioc_subvol_sync out = { .version = COWFS_SUBVOL_VERSION, .id = j->id };
	int ret = subvols_sync(j->s->sv, j->id, &out.count);

	if (ret < 0)
		reply_err(j->req, ret);
	else
		fuse_reply_ioctl(j->req, 0, &out, sizeof(out));
}

static void *sync_thread(void *arg)
{
	struct sync_job *j = arg;
	struct server *s = j->s;

	sync_run(j);
	free(j);
	late_thread_done(s);
	return NULL;
}

void ioctl_subvol_sync(const struct ioctl_req *r)
{
	const struct cowfs_ioc_subvol_sync *in = r->in;
	struct sync_job *j;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(*in)))
		return;
	if (in->version != COWFS_SUBVOL_VERSION || (in->id && !subvol_id_valid(in->id))) {
		fuse_reply_err(r->req, EINVAL);
		return;
	}
	j = malloc(sizeof(*j));
	if (!j) {
		fuse_reply_err(r->req, ENOMEM);
		return;
	}
	*j = (struct sync_job){ .s = r->s, .req = r->req, .id = in->id };
	if (late_thread_start(r->s, sync_thread, j))
		return;
	free(j);
	fuse_reply_err(r->req, EAGAIN);
}

/* ---- SPACE ------------------------------------------------------------------------------- */

static int space_check(const struct cowfs_ioc_subvol_space *in)
{
	if (in->version != COWFS_SUBVOL_VERSION || (in->flags & ~COWFS_SUBVOL_SPACE_REFERENCED))
		return -EINVAL;
	if (in->count < 1 || in->count > COWFS_SUBVOL_SPACE_MAX)
		return -EINVAL;
	for (size_t i = 0; i < in->count; i++)
		if (!subvol_id_valid(in->ids[i]))
			return -EINVAL;
	return 0;
}

void ioctl_subvol_space(const struct ioctl_req *r)
{
	const struct cowfs_ioc_subvol_space *in = r->in;
	struct cowfs_ioc_subvol_space out;
	struct subvol_space sp;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	ret = space_check(in);
	if (ret == 0) {
		cowfs_lock(r->s->fs);
		ret = cowfs_subvol_space(r->s->fs, in->ids, in->count,
					 in->flags & COWFS_SUBVOL_SPACE_REFERENCED, &sp);
		cowfs_unlock(r->s->fs);
	}
	if (ret < 0) {
		reply_err(r->req, ret);
		return;
	}
	out = *in;
	out.exclusive_data = sp.exclusive_data;
	out.exclusive_meta = sp.exclusive_meta;
	out.exclusive = sp.exclusive_data + sp.exclusive_meta;
	out.referenced = in->flags & COWFS_SUBVOL_SPACE_REFERENCED ? sp.referenced : 0;
	fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}
