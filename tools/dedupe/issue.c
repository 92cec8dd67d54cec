/*
 * The planned dedupes through COWFS_IOC_DEDUPE_RANGE, issued on the source file with every
 * destination of the same source range in one request. The server compares the bytes under
 * the lock that orders writes: a destination written since it was hashed answers DIFFERS and
 * keeps its new content; that is counted (bytes_differ), not an error. With --dry-run nothing
 * is issued: each dedupe is printed instead.
 *
 * Before each request the kernel's dirty pages of the source range and of every destination
 * range are written back to the server (cowfs_flush_range), as the VFS does before a dedupe on
 * a kernel filesystem: pages dirtied through mmap (or held by the writeback cache) reach the
 * server only then, and it would otherwise compare and share the bytes it had before them.
 */
#include "tools/dedupe/parts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


#define WARN_MAX 10

/* An open file of the plan, kept open while consecutive requests use it. */
struct open_file {
	uint32_t file;       /* index in struct dd_files; UINT32_MAX: none */
	int fd;              /* negative errno when it could not be opened as scanned */
};

struct issuer {
	const struct dd_options *opt;
	struct dd_files *files;
	struct dd_stats *st;
	struct out *o;
	struct open_file src, dst;
};

static void warn_dedupe(struct issuer *is, const struct chunk_pair *p, int err)
{
	if (is->st->errors > WARN_MAX)
		return;
	if (is->st->errors == WARN_MAX) {
		fprintf(stderr, DD_PROG ": more dedupe errors: not shown\n");
		return;
	}
	fprintf(stderr, DD_PROG ": %s@%llu -> %s@%llu: %s\n", is->files->v[p->src_file].path,
		(unsigned long long)p->src_chunk * is->opt->chunk, is->files->v[p->dst_file].path,
		(unsigned long long)p->dst_chunk * is->opt->chunk,
		err == -ESTALE ? "the file changed since it was scanned" : cowfs_strerror(err));
}

static void count_error(struct issuer *is, const struct chunk_pair *p, uint64_t len, int err)
{
	warn_dedupe(is, p, err);
	is->st->errors++;
	is->st->bytes_error += len;
}

/* File fi, opened once for consecutive requests; it must still be the file that was hashed. */
static int file_fd(struct issuer *is, struct open_file *of, uint32_t fi)
{
	const struct dd_file *f = &is->files->v[fi];
	struct cowfs_file cf;
	int ret;

	if (of->file == fi)
		return of->fd;
	if (of->fd >= 0)
		close(of->fd);
	of->file = fi;
	ret = cowfs_file_open(AT_FDCWD, f->path, O_RDONLY, 0, &cf);
	if (ret == 0 && memcmp(&cf.id.file, &f->id, sizeof(f->id))) {
		cowfs_file_close(&cf);
		ret = -ESTALE;
	}
	of->fd = ret < 0 ? ret : cf.fd;
	return of->fd;
}

static void file_fd_close(struct open_file *of)
{
	if (of->fd >= 0)
		close(of->fd);
	of->file = UINT32_MAX;
	of->fd = -EBADF;
}

/*
 * A destination's dirty pages to the server. One that cannot be opened as scanned (replaced,
 * no read permission) is left to the server, which names it by its identity and answers for it.
 */
static void flush_destination(struct issuer *is, const struct chunk_pair *p, uint64_t len)
{
	int fd = file_fd(is, &is->dst, p->dst_file);

	if (fd >= 0)
		cowfs_flush_range(fd, (uint64_t)p->dst_chunk * is->opt->chunk, len);
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
	int fd = file_fd(is, &is->src, first->src_file), ret;

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
	ret = cowfs_flush_range(fd, req.src_offset, len);
	for (size_t k = 0; ret == 0 && k < n; k++)
		flush_destination(is, &ops[k].pair, len);
	req.version = COWFS_DEDUPE_VERSION;
	if (ret == 0) {
		is->st->ioctls++;
		ret = cowfs_ioctl(fd, COWFS_IOC_DEDUPE_RANGE, &req);
	}
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
			     .src = { UINT32_MAX, -EBADF }, .dst = { UINT32_MAX, -EBADF } };
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
	file_fd_close(&is.src);
	file_fd_close(&is.dst);
	return 0;
}
