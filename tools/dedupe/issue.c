/*
 * The planned dedupes through COWFS_IOC_DEDUPE_RANGE, issued on the source file with every
 * destination of the same source range in one request. The server compares the bytes under
 * the lock that orders writes: a destination written since it was hashed answers DIFFERS and
 * keeps its new content; that is counted (bytes_differ), not an error. With --dry-run nothing
 * is issued: each dedupe is printed instead.
 */
#include "tools/dedupe/parts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools/prog.h"

#define WARN_MAX 10

struct issuer {
	const struct dd_options *opt;
	struct dd_files *files;
	struct dd_stats *st;
	struct out *o;
	uint32_t src_file;
	int src_fd;          /* negative errno when the source could not be opened as scanned */
};

static void warn_dedupe(struct issuer *is, const struct chunk_pair *p, int err)
{
	if (is->st->errors > WARN_MAX)
		return;
	if (is->st->errors == WARN_MAX) {
		fprintf(stderr, PROG ": more dedupe errors: not shown\n");
		return;
	}
	fprintf(stderr, PROG ": dedupe %s@%llu -> %s@%llu: %s\n", is->files->v[p->src_file].path,
		(unsigned long long)p->src_chunk * is->opt->chunk, is->files->v[p->dst_file].path,
		(unsigned long long)p->dst_chunk * is->opt->chunk,
		err == -ESTALE ? "the file changed since it was scanned" : strerror(-err));
}

static void count_error(struct issuer *is, const struct chunk_pair *p, uint64_t len, int err)
{
	warn_dedupe(is, p, err);
	is->st->errors++;
	is->st->bytes_error += len;
}

/* The source, opened once for all its dedupes; it must still be the file that was hashed. */
static int source_fd(struct issuer *is, uint32_t src_file)
{
	const struct dd_file *f = &is->files->v[src_file];
	struct cowfs_ioc_file_id id;
	int fd, ret;

	if (is->src_file == src_file)
		return is->src_fd;
	if (is->src_fd >= 0)
		close(is->src_fd);
	is->src_file = src_file;
	fd = mnt_open(f->path, O_RDONLY);
	ret = fd < 0 ? fd : mnt_file_id(fd, &id);
	if (ret == 0 && memcmp(&id.file, &f->id, sizeof(id.file)))
		ret = -ESTALE;
	if (ret < 0 && fd >= 0)
		close(fd);
	is->src_fd = ret < 0 ? ret : fd;
	return is->src_fd;
}

static void print_planned(struct issuer *is, const struct chunk_pair *p, uint64_t len)
{
	const char *src = is->files->v[p->src_file].path, *dst = is->files->v[p->dst_file].path;

	out_obj_begin(is->o, NULL, "dedupe", FRAME_LINE);
	out_qstr(is->o, "src", src, strlen(src));
	out_u64(is->o, "src_offset", (uint64_t)p->src_chunk * is->opt->chunk);
	out_qstr(is->o, "dst", dst, strlen(dst));
	out_u64(is->o, "dst_offset", (uint64_t)p->dst_chunk * is->opt->chunk);
	out_u64(is->o, "length", len);
	out_obj_end(is->o);
}

/* One request: ops[0..n) share the source range and its length. */
static void issue_batch(struct issuer *is, const union dd_slot *ops, size_t n, uint64_t len)
{
	const struct chunk_pair *first = &ops[0].pair;
	struct cowfs_ioc_dedupe_range req;
	int fd = source_fd(is, first->src_file), ret;

	if (fd < 0) {
		for (size_t k = 0; k < n; k++)
			count_error(is, &ops[k].pair, len, fd);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.dest_count = (uint16_t)n;
	req.src_offset = (uint64_t)first->src_chunk * is->opt->chunk;
	req.src_length = len;
	for (size_t k = 0; k < n; k++) {
		const struct chunk_pair *p = &ops[k].pair;
		req.dests[k].dst = is->files->v[p->dst_file].id;
		req.dests[k].dst_offset = (uint64_t)p->dst_chunk * is->opt->chunk;
	}
	is->st->ioctls++;
	ret = mnt_dedupe(fd, &req);
	for (size_t k = 0; k < n; k++) {
		const struct cowfs_ioc_dedupe_dest *d = &req.dests[k];
		if (ret < 0)
			count_error(is, &ops[k].pair, len, ret);
		else if (d->status == COWFS_DEDUPE_SAME)
			is->st->bytes_deduped += d->bytes_deduped;
		else if (d->status == COWFS_DEDUPE_DIFFERS)
			is->st->bytes_differ += len;
		else
			count_error(is, &ops[k].pair, len, d->status < 0 ? d->status : -EPROTO);
	}
}

static bool same_source(const struct chunk_pair *a, const struct chunk_pair *b)
{
	return a->src_file == b->src_file && a->src_chunk == b->src_chunk &&
	       a->nchunks == b->nchunks;
}

int dd_issue(const struct dd_options *opt, struct dd_files *files, union dd_slot *ops, size_t n,
	     struct dd_stats *st, struct dd_progress *pg, struct out *o)
{
	struct issuer is = { .opt = opt, .files = files, .st = st, .o = o,
			     .src_file = UINT32_MAX, .src_fd = -EBADF };
	size_t i = 0, j;

	while (i < n) {
		uint64_t len = dd_pair_length(&ops[i].pair, files, opt->chunk);
		for (j = i; j < n && j - i < COWFS_DEDUPE_MAX_DESTS; j++) {
			if (!same_source(&ops[i].pair, &ops[j].pair) ||
			    dd_pair_length(&ops[j].pair, files, opt->chunk) != len)
				break;
			st->dedupes_planned++;
			st->bytes_duplicate += len;
			if (opt->dry_run)
				print_planned(&is, &ops[j].pair, len);
		}
		if (!opt->dry_run)
			issue_batch(&is, ops + i, j - i, len);
		i = j;
		dd_progress_issue(pg, i, n);
	}
	if (is.src_fd >= 0)
		close(is.src_fd);
	return 0;
}
