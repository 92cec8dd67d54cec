/*
 * Directory handlers: opendir, readdir, readdirplus, releasedir, fsyncdir.
 *
 * dir_readdir() calls back with the filesystem lock held, so the callback only copies
 * entries into a batch sized for the reply; the entries are turned into the reply (and, for
 * readdirplus, given their attributes and a lookup hold each) after the lock is dropped.
 * The kernel's offset is fs/inode's cookie: the directory index after the entry, which stays
 * valid while other entries come and go.
 *
 * An open directory's fi->fh points to its dir_handle: where its listing ends, taken at
 * opendir and again when it is read from offset 0 (rewinddir), so that entries renamed
 * within the directory while it is read are not given again and again at new indexes.
 */
#include "fuse/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/inode/file.h"

struct dir_handle {
	/* The kernel serializes reads of one open directory (f_pos_lock), but a plain
	 * atomic costs nothing and keeps a racing reader from tearing it. */
	_Atomic uint64_t end;
};

static struct dir_handle *dir_handle_of(const struct fuse_file_info *fi)
{
	return (struct dir_handle *)(uintptr_t)fi->fh;
}

/* Every reply entry takes at least this many bytes (a plain one with a 1-byte name). */
#define DIRENT_MIN_BYTES 32

struct batch_entry {
	uint64_t ino;
	uint64_t next;       /* the cookie after this entry */
	size_t name;         /* offset of the NUL-terminated name in batch.names */
	uint8_t type;        /* DT_* */
};

/* Entries collected under the lock, at most what one reply of `budget` bytes holds. */
struct dir_batch {
	fuse_req_t req;
	struct inode_tree *it;   /* the directory's */
	bool plus;
	size_t budget, bytes;
	struct batch_entry *ents;
	size_t n, cap;
	char *names;
	size_t names_used, names_cap;
};

static int batch_init(struct dir_batch *b, fuse_req_t req, struct inode_tree *it, size_t budget,
		      bool plus)
{
	memset(b, 0, sizeof(*b));
	b->req = req;
	b->it = it;
	b->plus = plus;
	b->budget = budget;
	b->cap = budget / DIRENT_MIN_BYTES + 1;
	/* An entry takes more reply bytes than its name has: the names fit in the budget,
	 * plus a terminator each. */
	b->names_cap = budget + b->cap;
	b->ents = malloc(b->cap * sizeof(*b->ents));
	b->names = malloc(b->names_cap);
	return b->ents && b->names ? 0 : -ENOMEM;
}

static void batch_free(struct dir_batch *b)
{
	free(b->ents);
	free(b->names);
}

static void batch_reset(struct dir_batch *b)
{
	b->n = 0;
	b->bytes = 0;
	b->names_used = 0;
}

/* Reply bytes one entry takes (libfuse only measures when given no buffer). */
static size_t entry_bytes(const struct dir_batch *b, const char *name)
{
	if (b->plus)
		return fuse_add_direntry_plus(b->req, NULL, 0, name, NULL, 0);
	return fuse_add_direntry(b->req, NULL, 0, name, NULL, 0);
}

/* dir_fill_fn, under the filesystem lock: copy the entry, or stop when the reply is full. */
static int batch_collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type,
			 uint64_t next_cookie)
{
	struct dir_batch *b = arg;
	char *copy = b->names + b->names_used;
	size_t bytes;

	if (b->n == b->cap || b->names_used + len + 1 > b->names_cap)
		return 1;
	memcpy(copy, name, len);
	copy[len] = '\0';
	bytes = entry_bytes(b, copy);
	if (b->bytes + bytes > b->budget)
		return 1;
	b->ents[b->n++] = (struct batch_entry){
		.ino = ino, .next = next_cookie, .name = b->names_used, .type = type,
	};
	b->names_used += len + 1;
	b->bytes += bytes;
	return 0;
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* A subvolume's entry shows its root directory, inode 256 of its own tree. */
static bool is_subvol_entry(const struct batch_entry *d)
{
	return d->type & INODE_DT_SUBVOL;
}

static uint64_t entry_st_ino(const struct dir_batch *b, const struct batch_entry *d)
{
	if (is_subvol_entry(d))
		return node_encode(d->ino, INODE_ROOT_INO);
	return node_encode(inode_tree_subvol(b->it), d->ino);
}

static mode_t entry_mode(const struct batch_entry *d)
{
	return DTTOIF(d->type & ~INODE_DT_SUBVOL);
}

/* Plain readdir entries into buf: the number of bytes used. */
static size_t fill_plain(struct dir_batch *b, char *buf)
{
	size_t used = 0;

	for (size_t i = 0; i < b->n; i++) {
		const struct batch_entry *d = &b->ents[i];
		struct stat st = { .st_ino = entry_st_ino(b, d), .st_mode = entry_mode(d) };
		size_t bytes = fuse_add_direntry(b->req, buf + used, b->budget - used,
						 b->names + d->name, &st, (off_t)d->next);
		if (bytes > b->budget - used)
			break;
		used += bytes;
	}
	return used;
}

/* What readdirplus tells of one entry. "." and ".." go without a node id, which the kernel
 * expects (it makes no dentry for them and counts no lookup). */
static int plus_entry(struct server *s, const struct dir_batch *b, const struct batch_entry *d,
		      const char *name, struct fuse_entry_param *e, struct inode_tree **it)
{
	struct cowfs_attr a;
	int ret;

	*it = b->it;
	if (is_dot_or_dotdot(name)) {
		memset(e, 0, sizeof(*e));
		e->attr.st_ino = entry_st_ino(b, d);
		e->attr.st_mode = entry_mode(d);
		return 0;
	}
	if (is_subvol_entry(d)) {
		ret = subvols_tree(s->sv, d->ino, it);
		if (ret == 0)
			ret = inode_getattr(*it, INODE_ROOT_INO, &a);
	} else {
		ret = inode_getattr(b->it, d->ino, &a);
	}
	if (ret == 0)
		ret = attr_to_entry(&a, s->root_subvol, e);
	return ret;
}

/*
 * readdirplus entries into buf, each holding its inode; the held inodes in held[], their
 * number in *nheld. Returns the bytes used or a negative errno if not even one could be
 * given. Entries removed since they were collected are left out.
 */
static ssize_t fill_plus(struct server *s, struct dir_batch *b, char *buf, fuse_ino_t *held,
			 size_t *nheld)
{
	size_t used = 0;
	int ret = 0;

	*nheld = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct batch_entry *d = &b->ents[i];
		const char *name = b->names + d->name;
		struct fuse_entry_param e;
		struct inode_tree *it;

		ret = plus_entry(s, b, d, name, &e, &it);
		if (ret == -ENOENT)
			continue;
		if (ret < 0 || entry_bytes(b, name) > b->budget - used)
			break;
		if (e.ino) {
			ret = entry_hold(s, it, is_subvol_entry(d) ? INODE_ROOT_INO : d->ino);
			if (ret < 0)
				break;
			held[(*nheld)++] = e.ino;
		}
		used += fuse_add_direntry_plus(b->req, buf + used, b->budget - used, name, &e,
					       (off_t)d->next);
	}
	return used == 0 && ret < 0 ? ret : (ssize_t)used;
}

static void release_all(struct server *s, const fuse_ino_t *held, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_release(s, held[i], 1);
}

/*
 * One reply of entries from cookie `off`. An empty reply means the end of the directory,
 * so a batch whose entries all vanished before they could be given is followed by the next.
 */
static void reply_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus,
		      struct dir_handle *h)
{
	struct server *s = server_of(req);
	struct dir_batch b;
	struct inode_tree *it = NULL;
	uint64_t cookie = (uint64_t)off, dir = 0;
	fuse_ino_t *held = NULL;
	size_t nheld = 0;
	ssize_t used = 0;
	char *buf = NULL;
	int ret = node_resolve(s, ino, &it, &dir);

	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	ret = batch_init(&b, req, it, size, plus);

	if (ret == 0 && !(buf = malloc(size ? size : 1)))
		ret = -ENOMEM;
	if (ret == 0 && plus && !(held = malloc(b.cap * sizeof(*held))))
		ret = -ENOMEM;
	if (ret == 0 && off == 0) {
		/* A rewind: what exists now is listed, as after opendir. */
		uint64_t end;
		ret = dir_readdir_end(it, dir, &end);
		if (ret == 0)
			h->end = end;
	}
	while (ret == 0) {
		batch_reset(&b);
		ret = dir_readdir_upto(it, dir, cookie, h->end, batch_collect, &b);
		if (ret < 0 || b.n == 0)
			break;
		used = plus ? fill_plus(s, &b, buf, held, &nheld) : (ssize_t)fill_plain(&b, buf);
		if (used != 0)
			break;
		cookie = b.ents[b.n - 1].next;
	}
	if (ret == 0 && used < 0)
		ret = (int)used;
	if (ret == 0)
		(void)inode_touch_atime(it, dir);   /* as file_accessed() */
	if (ret < 0)
		reply_err(req, ret);
	else if (fuse_reply_buf(req, buf, (size_t)used) < 0)
		release_all(s, held, nheld);   /* the kernel never saw these entries */
	free(held);
	free(buf);
	batch_free(&b);
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *h = malloc(sizeof(*h));
	struct inode_tree *it;
	uint64_t end = 0, dir;
	int ret = h ? node_resolve(server_of(req), ino, &it, &dir) : -ENOMEM;

	if (ret == 0)
		ret = dir_readdir_end(it, dir, &end);

	if (ret < 0) {
		free(h);
		reply_err(req, ret);
		return;
	}
	h->end = end;
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) < 0)
		free(h);   /* interrupted: no releasedir will come for it */
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	reply_dir(req, ino, size, off, false, dir_handle_of(fi));
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	reply_dir(req, ino, size, off, true, dir_handle_of(fi));
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	free(dir_handle_of(fi));
	fuse_reply_err(req, 0);
}

/* A directory's changes are durable once committed, with everything else's. */
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	reply_err(req, file_sync_all(server_of(req)->root_it));
}
