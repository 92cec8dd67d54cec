/*
 * FIDEDUPERANGE on a cowfs source: the kernel's checks (fs/remap_range.c vfs_dedupe_file_range,
 * vfs_dedupe_file_range_one, generic_remap_checks), then COWFS_IOC_DEDUPE_RANGE on the source,
 * the destinations named by COWFS_IOC_FILE_ID, COWFS_DEDUPE_MAX_DESTS at a time.
 *
 * The kernel caps one request at 1 GiB; the server takes COWFS_DEDUPE_MAX_LEN at a time, so a
 * longer range is shared chunk by chunk, as btrfs does (btrfs_extent_same, 16 MiB chunks). The
 * results are the kernel's and btrfs's: a destination whose every chunk was the same gets
 * status SAME and bytes_deduped = the (capped) length asked, even where the kernel shortened the
 * range to whole blocks; one with a differing chunk gets DIFFERS, one with an error that errno,
 * and both bytes_deduped 0, although the chunks before it stay shared (btrfs keeps them too).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "tools/preload/shim.h"

#define KERNEL_DEDUPE_MAX (1ull << 30)   /* vfs_dedupe_file_range's "arbitrary 1G limit" */

/* What a checked destination will do. */
struct dest_plan {
	struct shim_file file;
	struct cowfs_ioc_file id;
	uint64_t count;          /* bytes to share: the length, shortened to whole blocks */
	bool pending;            /* checked, not yet sent to the server */
};

/* The source side of one request, checked. */
struct dedupe_source {
	struct shim_file file;
	uint32_t blocksize;
	uint64_t offset;
	uint64_t length;         /* capped at KERNEL_DEDUPE_MAX */
};

static uint64_t align_down(uint64_t v, uint64_t bs)
{
	return v - v % bs;
}

/* may_dedupe_file: CAP_SYS_ADMIN, a descriptor open for writing, the owner, or write access. */
static bool may_dedupe(const struct shim_file *dst)
{
	char path[64];

	if (geteuid() == 0 || shim_writable(dst) || dst->uid == geteuid())
		return true;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dst->fd);
	return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0;
}

static bool on_read_only_mount(int fd)
{
	struct statvfs sv;

	return fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

/* generic_remap_checks for a dedupe: the bytes to share, or a negative errno. */
static int64_t dedupe_count(const struct dedupe_source *s, const struct shim_file *dst,
			    uint64_t pos_out)
{
	uint64_t bs = s->blocksize, pos_in = s->offset, count = s->length, bcount;
	uint64_t size_in = s->file.size, size_out = dst->size;

	if (pos_in % bs || pos_out % bs)
		return -EINVAL;
	if (pos_in >= size_in || pos_in + count > size_in || pos_out >= size_out ||
	    pos_out + count > size_out)
		return -EINVAL;
	if (pos_in + count == size_in && pos_out + count == size_out) {
		bcount = align_down(size_in + bs - 1, bs) - pos_in;
	} else {
		count = align_down(count, bs);
		bcount = count;
	}
	if (s->file.ino == dst->ino && pos_out + bcount > pos_in && pos_out < pos_in + bcount)
		return -EINVAL;
	return (int64_t)count;
}

/* vfs_dedupe_file_range_one's checks for one destination: 0 (plan->pending if work is left),
 * or a negative errno for its status. */
static int plan_dest(const struct dedupe_source *s, const struct file_dedupe_range_info *info,
		     struct dest_plan *plan)
{
	int fd = (int)(unsigned)info->dest_fd, ret;
	struct cowfs_ioc_file_id id;
	int64_t count;

	if (fd < 0 || shim_describe(fd, true, &plan->file) != 0 || (plan->file.open_flags & O_PATH))
		return -EBADF;
	if (info->reserved || !shim_range_valid(info->dest_offset, s->length))
		return -EINVAL;
	if (on_read_only_mount(fd))
		return -EROFS;
	if (!may_dedupe(&plan->file))
		return -EPERM;
	if (plan->file.dev != s->file.dev)
		return -EXDEV;
	if (S_ISDIR(plan->file.mode))
		return -EISDIR;
	if (!S_ISREG(plan->file.mode))
		return -EINVAL;
	if (s->length == 0)
		return 0;
	count = dedupe_count(s, &plan->file, info->dest_offset);
	if (count <= 0)
		return (int)count;
	ret = shim_file_id(fd, &id);
	if (ret < 0)
		return ret;
	plan->id = id.file;
	plan->count = (uint64_t)count;
	plan->pending = true;
	return 0;
}

/* The server's per-destination answer as FIDEDUPERANGE reports it. */
static int32_t status_of(int32_t status)
{
	if (status == COWFS_DEDUPE_SAME || status == COWFS_DEDUPE_DIFFERS)
		return status;
	if (status == -EACCES)
		return -EPERM;   /* the kernel's answer for "may not dedupe into this file" */
	return status < 0 ? status : -EPROTO;
}

/*
 * One batch (destinations with the same count), chunk by chunk. batch[] indexes plans and infos;
 * a destination leaves the batch at its first chunk that is not shared in full.
 */
static void run_batch(const struct dedupe_source *s, struct dest_plan *plans,
		      struct file_dedupe_range_info *infos, const unsigned *batch, unsigned n)
{
	static __thread struct cowfs_ioc_dedupe_range req;
	uint64_t count = plans[batch[0]].count, done, piece;
	bool alive[COWFS_DEDUPE_MAX_DESTS];
	unsigned live = n, m, k;

	for (k = 0; k < n; k++)
		alive[k] = true;
	for (done = 0; done < count && live > 0; done += piece) {
		piece = count - done < COWFS_DEDUPE_MAX_LEN ? count - done : COWFS_DEDUPE_MAX_LEN;
		memset(&req, 0, sizeof(req));
		req.version = COWFS_DEDUPE_VERSION;
		req.src_offset = s->offset + done;
		req.src_length = piece;
		shim_flush_range(s->file.fd, req.src_offset, piece);
		for (k = 0, m = 0; k < n; k++) {
			if (!alive[k])
				continue;
			req.dests[m].dst = plans[batch[k]].id;
			req.dests[m].dst_offset = infos[batch[k]].dest_offset + done;
			shim_flush_range(plans[batch[k]].file.fd, req.dests[m].dst_offset, piece);
			m++;
		}
		req.dest_count = (uint16_t)m;
		int err = shim_real_ioctl(s->file.fd, COWFS_IOC_DEDUPE_RANGE, &req) ? -errno : 0;
		for (k = 0, m = 0; k < n; k++) {
			if (!alive[k])
				continue;
			const struct cowfs_ioc_dedupe_dest *d = &req.dests[m++];
			int32_t status = err ? err : status_of(d->status);

			if (status == COWFS_DEDUPE_SAME && d->bytes_deduped == piece)
				continue;
			alive[k] = false;
			live--;
			/* Short but the same: the server cut it; what it shared stays, reported whole. */
			if (status != COWFS_DEDUPE_SAME)
				infos[batch[k]].status = status;
		}
	}
	for (k = 0; k < n; k++)
		if (infos[batch[k]].status == FILE_DEDUPE_RANGE_SAME)
			infos[batch[k]].bytes_deduped = s->length;
}

/* Destinations with the same count go together, up to COWFS_DEDUPE_MAX_DESTS a batch. */
static void run_plans(const struct dedupe_source *s, struct dest_plan *plans,
		      struct file_dedupe_range_info *infos, unsigned count)
{
	unsigned batch[COWFS_DEDUPE_MAX_DESTS], n;

	for (unsigned i = 0; i < count; i++) {
		if (!plans[i].pending)
			continue;
		n = 0;
		for (unsigned j = i; j < count && n < COWFS_DEDUPE_MAX_DESTS; j++) {
			if (plans[j].pending && plans[j].count == plans[i].count) {
				plans[j].pending = false;
				batch[n++] = j;
			}
		}
		run_batch(s, plans, infos, batch, n);
	}
}

/* vfs_dedupe_file_range's checks of the source and the request. */
static int check_source(const struct shim_file *src, const struct file_dedupe_range *same,
			struct dedupe_source *s)
{
	struct cowfs_ioc_file_id id;
	int ret;

	if (shim_describe(src->fd, true, &s->file) != 0)
		return -EBADF;
	if (!shim_readable(&s->file))
		return -EINVAL;
	if (same->reserved1 || same->reserved2)
		return -EINVAL;
	if (S_ISDIR(s->file.mode))
		return -EISDIR;
	if (!S_ISREG(s->file.mode))
		return -EINVAL;
	if (!shim_range_valid(same->src_offset, same->src_length))
		return -EINVAL;
	if (same->src_offset + same->src_length > s->file.size)
		return -EINVAL;
	ret = shim_file_id(src->fd, &id);
	if (ret < 0)
		return ret;
	s->blocksize = id.blocksize;
	s->offset = same->src_offset;
	s->length = same->src_length < KERNEL_DEDUPE_MAX ? same->src_length : KERNEL_DEDUPE_MAX;
	return 0;
}

static int dedupe(const struct shim_file *src, struct file_dedupe_range *same)
{
	struct dedupe_source s;
	struct dest_plan *plans;
	unsigned count = same->dest_count;
	int ret = check_source(src, same, &s);

	if (ret < 0)
		return ret;
	plans = calloc(count ? count : 1, sizeof(*plans));
	if (!plans)
		return -ENOMEM;
	for (unsigned i = 0; i < count; i++) {
		same->info[i].bytes_deduped = 0;
		same->info[i].status = FILE_DEDUPE_RANGE_SAME;
	}
	for (unsigned i = 0; i < count; i++) {
		ret = plan_dest(&s, &same->info[i], &plans[i]);
		if (ret < 0)
			same->info[i].status = ret;
		else if (!plans[i].pending)
			same->info[i].bytes_deduped = s.length;
	}
	run_plans(&s, plans, same->info, count);
	free(plans);
	return 0;
}

int shim_fideduperange(const struct shim_file *src, void *arg)
{
	struct file_dedupe_range head, *same;
	size_t size;
	int ret = shim_copy_in(&head, arg, sizeof(head));

	if (ret < 0)
		return ret;
	size = sizeof(head) + (size_t)head.dest_count * sizeof(struct file_dedupe_range_info);
	same = malloc(size);
	if (!same)
		return -ENOMEM;
	ret = shim_copy_in(same, arg, size);
	if (ret == 0) {
		same->dest_count = head.dest_count;
		ret = dedupe(src, same);
	}
	if (ret == 0)
		ret = shim_copy_out(arg, same, size);
	free(same);
	return ret;
}
