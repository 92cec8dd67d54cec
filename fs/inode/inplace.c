/*
 * The fallocate promise: after a successful fallocate, writes into its range do not fail for
 * want of space (POSIX; databases and package managers rely on it).
 *
 * Copy-on-write alone cannot keep it: a write would allocate new extents and free the
 * preallocated ones only at commit, so on a full filesystem it fails, and until write-back the
 * file holds its space twice. So a page written where the file maps a preallocated extent
 * that nothing else references and that was never written is written back *in place*, into
 * that extent (btrfs does the same): those disk bytes hold no data anyone can read (the
 * preallocated item reads as zeros), so overwriting them loses nothing in a crash: until the
 * commit that maps them as written data, the committed state still reads zeros there. The
 * page needs no data space, only room for its piece of the map (INPLACE_MAP_BYTES, icache.h),
 * and a write whose pages all go in place passes the space check with no data space left:
 * it may use a quarter of the reserve (ALLOC_PROMISED) for the map. The promise is thus as
 * good as that room: a file preallocated and written sequentially adds next to nothing to
 * the map (write-back joins the written pieces), scattered single pages about 200 bytes each
 * until their neighbours are written; once the room is gone, a write is -ENOSPC (never a
 * failed commit), as on ext4 and xfs, whose unwritten-extent conversions draw on a reserve
 * pool too.
 *
 * Which pages: those of the write's range where the map has an unshared preallocated piece
 * (file_seg_shared; clones never share preallocated extents, clone.c), looked up once per
 * write under the lock, after the space check (a commit inside it writes pages back, which
 * turns preallocated pieces into written ones).
 *
 * A page once marked stays in place until written back: nothing changes the map under a
 * dirty page without dropping it (punch, truncate, clone and dedupe into the file drop the
 * pages of their range; a clone or dedupe from the file writes its pages back first;
 * fallocate only fills holes), except write-back itself, which gives a page being written a
 * new copy for later writes, and that copy goes to new space (page_copy_for_write).
 */
#include <errno.h>
#include <stdlib.h>

#include "fs/inode/fmap.h"
#include "fs/inode/icache.h"
#include "fs/inode/internal.h"

static int plan_add(struct inplace_plan *ip, uint64_t first, uint64_t n, uint64_t disk)
{
	if (ip->n == ip->cap) {
		size_t cap = ip->cap ? 2 * ip->cap : 4;
		struct inplace_run *v = realloc(ip->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ip->v = v;
		ip->cap = cap;
	}
	ip->v[ip->n++] = (struct inplace_run){ first, n, disk };
	return 0;
}

static bool known_exclusive(const struct icache_entry *e, uint64_t extent)
{
	for (uint32_t i = 0; i < e->exclusive.n; i++)
		if (e->exclusive.v[i] == extent)
			return true;
	return false;
}

/* Remembered if there is memory for it (forgetting costs only time). */
static void note_exclusive(struct icache_entry *e, uint64_t extent)
{
	if (!e->exclusive.v &&
	    !(e->exclusive.v = malloc(ICACHE_EXCLUSIVE_MAX * sizeof(*e->exclusive.v))))
		return;
	if (e->exclusive.n < ICACHE_EXCLUSIVE_MAX)
		e->exclusive.v[e->exclusive.n++] = extent;
	else
		e->exclusive.v[e->exclusive.next++ % ICACHE_EXCLUSIVE_MAX] = extent;
}

/*
 * Whether seg (preallocated) is this file's alone. Asking the backrefs costs a sort of all of
 * them, and a file written at random into its preallocated space has thousands (a piece each):
 * so e remembers the answer (fio, 4 KiB random writes into a preallocated 512 MiB file, five
 * extents: 13,000 writes/s; 1,200 when only four were remembered). It cannot go stale: nothing makes a
 * preallocated extent shared once it is not (clones give preallocated space of their own,
 * clone.c). Snapshots will (issue 13): taking one must forget these.
 */
static int seg_exclusive(struct inode_tree *it, struct icache_entry *e, uint64_t ino,
			 const struct fmap_seg *seg, struct share_memos *memos, bool *exclusive)
{
	bool shared;
	int ret;

	if (known_exclusive(e, seg->extent_start)) {
		*exclusive = true;
		return 0;
	}
	ret = file_seg_shared(it, ino, seg, seg->len, memos, &shared);
	*exclusive = ret == 0 && !shared;
	if (*exclusive)
		note_exclusive(e, seg->extent_start);
	return ret;
}

int inplace_plan_write(struct inode_tree *it, struct icache_entry *e, uint64_t ino,
		       uint64_t off, uint64_t len, struct inplace_plan *ip)
{
	uint32_t ps = cowfs_sectorsize(it->fs);
	uint64_t from = off / ps * ps, end = (off + len + ps - 1) / ps * ps;
	struct share_memos memos = { 0 };
	int ret = 0;

	ip->n = ip->at = 0;
	while (from < end && ret == 0) {
		struct fmap_seg seg;
		bool exclusive = false;
		ret = fmap_lookup(it, ino, from, end, &seg);
		if (ret == 0 && seg.kind == FMAP_PREALLOC)
			ret = seg_exclusive(it, e, ino, &seg, &memos, &exclusive);
		if (ret == 0 && exclusive)
			ret = plan_add(ip, seg.off / ps, seg.len / ps, seg.disk);
		from += seg.len;
	}
	share_memos_release(&memos);
	return ret;
}

uint64_t inplace_disk_of(struct inplace_plan *ip, uint64_t index, uint32_t ps)
{
	/* Pages are asked for in order: the run last found, or one after it. */
	for (; ip->at < ip->n; ip->at++) {
		const struct inplace_run *r = &ip->v[ip->at];
		if (index < r->first)
			return 0;
		if (index < r->first + r->n)
			return r->disk + (index - r->first) * ps;
	}
	return 0;
}

void inplace_space_needed(struct inode_tree *it, uint64_t ino, struct inplace_plan *ip,
			  uint64_t off, uint64_t len, uint64_t *data, uint64_t *map)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;
	uint32_t ps = cowfs_sectorsize(it->fs);

	*data = *map = 0;
	ip->at = 0;
	for (uint64_t i = off / ps; len && i <= (off + len - 1) / ps; i++) {
		struct dirty_page *p = e ? page_find(e, i) : NULL;
		/* A page under write-back gets a copy, written to new space. */
		if (p ? p->writeback : !inplace_disk_of(ip, i, ps))
			*data += ps;
		else if (!p)
			*map += INPLACE_MAP_BYTES;
	}
	ip->at = 0;
}

void inplace_plan_free(struct inplace_plan *ip)
{
	free(ip->v);
	*ip = (struct inplace_plan){ 0 };
}
