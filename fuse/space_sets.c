/*
 * COWFS_IOC_SPACE (cowfs_ioctl.h): the space a file or directory tree uses, alone or as one
 * member of a set of trees measured together (fs/inode/space.h). A set lives here between
 * the requests that build it: ioctls are stateless, and a set must outlive the open file it
 * was started on, since each member is another file. The table is small and bounded
 * (SPACE_SETS_MAX): a tool that never asks for its result leaks nothing past the next sets.
 */
#include <errno.h>
#include <string.h>

#include "fuse/internal.h"

void space_sets_init(struct space_sets *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
}

static void slot_clear(struct space_slot *sl)
{
	space_set_free(sl->set);
	memset(sl, 0, sizeof(*sl));
}

/* Before the inode tree goes: sets hold its state. */
void space_sets_destroy(struct space_sets *t)
{
	for (size_t i = 0; i < SPACE_SETS_MAX; i++)
		if (t->slot[i].id)
			slot_clear(&t->slot[i]);
	pthread_mutex_destroy(&t->lock);
}

/* A free slot, or else the oldest set's (its id is the lowest: ids only grow). */
static struct space_slot *slot_for_new(struct space_sets *t)
{
	struct space_slot *oldest = &t->slot[0];

	for (size_t i = 0; i < SPACE_SETS_MAX; i++) {
		if (!t->slot[i].id)
			return &t->slot[i];
		if (t->slot[i].id < oldest->id)
			oldest = &t->slot[i];
	}
	slot_clear(oldest);
	return oldest;
}

/* The set `id` as `uid` may use it: another user's set is as good as absent. */
static struct space_slot *slot_find(struct space_sets *t, uint64_t id, uid_t uid)
{
	for (size_t i = 0; i < SPACE_SETS_MAX; i++)
		if (id && t->slot[i].id == id && (uid == 0 || t->slot[i].owner == uid))
			return &t->slot[i];
	return NULL;
}

static void figures_to_ioc(const struct space_figures *f, struct cowfs_ioc_space *out)
{
	out->files = f->files;
	out->extents = f->extents;
	out->referenced = f->referenced;
	out->exclusive = f->exclusive;
	out->shared = f->shared;
	out->pinned = f->pinned;
}

/* COWFS_SPACE_ALONE: a set of one tree, measured and gone. */
static int space_alone(struct inode_tree *it, uint64_t ino, struct cowfs_ioc_space *out)
{
	struct space_figures f;
	struct space_set *set = space_set_new(it);
	int ret = set ? space_set_add(set, ino) : -ENOMEM;

	if (ret == 0)
		ret = space_set_result(set, &f);
	if (ret == 0)
		figures_to_ioc(&f, out);
	if (set)
		space_set_free(set);
	return ret;
}

/* SET_ADD: to the set out->set, or to a new one (0) whose id goes back in out->set. A set that
 * failed to take a tree is dropped: its figures would leave the tree out. */
static int space_set_add_locked(struct server *s, uid_t uid, struct inode_tree *it,
				uint64_t ino, struct cowfs_ioc_space *out)
{
	struct space_sets *t = &s->space_sets;
	struct space_slot *sl;
	int ret;

	if (out->set == 0) {
		struct space_set *set = space_set_new(it);

		if (!set)
			return -ENOMEM;
		sl = slot_for_new(t);
		*sl = (struct space_slot){ .id = ++t->last_id, .owner = uid, .set = set, .it = it };
		out->set = sl->id;
	} else if (!(sl = slot_find(t, out->set, uid))) {
		return -ENOENT;
	}
	/* A set measures one subvolume's tree (COWFS_IOC_SUBVOL_SPACE measures subvolumes). */
	if (sl->it != it)
		return -EXDEV;
	ret = space_set_add(sl->set, ino);
	if (ret < 0)
		slot_clear(sl);
	return ret;
}

/* SET_RESULT: the figures of the set out->set, which ends it. */
static int space_result_locked(struct server *s, uid_t uid, struct cowfs_ioc_space *out)
{
	struct space_slot *sl = slot_find(&s->space_sets, out->set, uid);
	struct space_figures f;
	int ret;

	if (!sl)
		return -ENOENT;
	ret = space_set_result(sl->set, &f);
	if (ret == 0)
		figures_to_ioc(&f, out);
	slot_clear(sl);
	return ret;
}

static int space_op(const struct ioctl_req *r, struct cowfs_ioc_space *out)
{
	struct space_sets *t = &r->s->space_sets;
	uid_t uid = fuse_req_ctx(r->req)->uid;
	int ret;

	if (out->op == COWFS_SPACE_ALONE)
		return space_alone(r->it, r->ino, out);
	if (out->op != COWFS_SPACE_SET_ADD && out->op != COWFS_SPACE_SET_RESULT)
		return -EINVAL;
	/* Held across the walk: a set must not be measured or freed while a tree goes in. */
	pthread_mutex_lock(&t->lock);
	if (out->op == COWFS_SPACE_SET_ADD)
		ret = space_set_add_locked(r->s, uid, r->it, r->ino, out);
	else
		ret = space_result_locked(r->s, uid, out);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void ioctl_space(const struct ioctl_req *r)
{
	const struct cowfs_ioc_space *in = r->in;
	struct cowfs_ioc_space out;
	int ret;

	if (!ioctl_sizes_ok(r, sizeof(*in), sizeof(out)))
		return;
	if (in->version != COWFS_SPACE_VERSION) {
		fuse_reply_err(r->req, EINVAL);
		return;
	}
	memset(&out, 0, sizeof(out));
	out.version = COWFS_SPACE_VERSION;
	out.op = in->op;
	out.set = in->set;
	ret = space_op(r, &out);
	if (ret < 0)
		reply_err(r->req, ret);
	else
		fuse_reply_ioctl(r->req, 0, &out, sizeof(out));
}
