/*
 * From chunk records to dedupes, in the records' own memory.
 *
 * 1. Sort the records by hash: equal hashes are a group of chunks with the same content (the
 *    server compares the bytes before sharing, so a collision costs a DIFFERS, never data).
 * 2. In each group, one chunk is the source and every other gets its extents. cowfs frees an
 *    extent only when nothing references any part of it, so what is kept must be chosen the
 *    same way for every chunk of two files: were a pair of identical files to keep one's copy
 *    of some chunks and the other's of the rest, both files' extents would stay partly
 *    referenced and little would be freed. So the choice is by file, one order over all the
 *    files of the run, and each group's source is the chunk of the first file in it:
 *      a. unless a chunk is more referenced than the others (refs: chunks seen at the same
 *         disk address, so an extent already shared by reflinks or an earlier dedupe stays
 *         the one kept: it stays allocated anyway);
 *      b. files with more unique chunks first: what holds data found nowhere else stays
 *         allocated whatever is deduped onto it, while a file that is all duplicate loses
 *         every reference to its extents when all its chunks go elsewhere;
 *      c. then the shorter file first: of files that are all duplicate, keeping the shorter
 *         frees the longer;
 *      d. then the first by inode (the walk's order); within one file, the first chunk.
 *    For identical files (b and c equal) one file's extents are so kept whole and the others
 *    lose every reference. The unique counts are those of the first pass: with N passes, a
 *    share of 1/N of the chunks chosen by hash, so that every pass ranks the files alike.
 * 3. Sort the pairs by (source file, destination file, offset difference, source offset) and
 *    merge consecutive chunks into one dedupe of up to COWFS_DEDUPE_MAX_LEN: a destination's
 *    extent is released by one request instead of one per chunk, and the tree changes once.
 * 4. Sort the dedupes by source range, so that one ioctl carries every destination of the same
 *    source range (up to COWFS_DEDUPE_MAX_DESTS) and each source file is opened once.
 *
 * A chunk is either a source or a destination, never both, so a merged dedupe within one file
 * never overlaps itself.
 */
#include "tools/dedupe/parts.h"

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int by_hash(const union dd_slot *a, const union dd_slot *b)
{
	const struct chunk_rec *x = &a->rec, *y = &b->rec;
	int c = cmp_u64(x->hash[1], y->hash[1]);

	if (!c)
		c = cmp_u64(x->hash[0], y->hash[0]);
	if (!c)
		c = cmp_u64(x->file, y->file);
	return c ? c : cmp_u64(x->chunk, y->chunk);
}

static bool same_hash(const struct chunk_rec *x, const struct chunk_rec *y)
{
	return x->hash[0] == y->hash[0] && x->hash[1] == y->hash[1];
}

/* Whether file a comes before file b as a source (2b to 2d). */
static bool file_before(const struct dd_files *files, uint32_t a, uint32_t b)
{
	const struct dd_file *x = &files->v[a], *y = &files->v[b];

	if (x->unique != y->unique)
		return x->unique > y->unique;
	if (x->size != y->size)
		return x->size < y->size;
	return a < b;
}

/* Whether chunk x is the better source (2a, then its file's rank, then the first chunk). */
static bool better_source(const struct dd_files *files, const struct chunk_rec *x,
			  const struct chunk_rec *y)
{
	if (x->refs != y->refs)
		return x->refs > y->refs;
	if (x->file != y->file)
		return file_before(files, x->file, y->file);
	return x->chunk < y->chunk;
}

/*
 * One group [s, e) to pairs written from *w on. *w <= s + j when record s + j is read, and each
 * record is read before its slot can be written, so the pairs overwrite only records done with.
 */
static void group_to_pairs(const struct dd_files *files, union dd_slot *v, size_t s, size_t e,
			   size_t *w)
{
	size_t best = s;

	for (size_t i = s + 1; i < e; i++) {
		if (better_source(files, &v[i].rec, &v[best].rec))
			best = i;
	}
	uint32_t src_file = v[best].rec.file, src_chunk = v[best].rec.chunk;
	for (size_t i = s; i < e; i++) {
		if (i == best)
			continue;
		struct chunk_pair p = { .src_file = src_file, .src_chunk = src_chunk,
					.dst_file = v[i].rec.file, .dst_chunk = v[i].rec.chunk,
					.nchunks = 1 };
		v[(*w)++].pair = p;
	}
}

/* The end of the group of equal hashes that starts at s. */
static size_t group_end(const union dd_slot *v, size_t n, size_t s)
{
	size_t e = s + 1;

	while (e < n && same_hash(&v[s].rec, &v[e].rec))
		e++;
	return e;
}

/* Each file's chunks that are alone in their group (2b), from the sorted records. */
static void count_unique(struct dd_files *files, const union dd_slot *v, size_t n)
{
	for (size_t i = 0; i < files->n; i++)
		files->v[i].unique = 0;
	for (size_t s = 0, e; s < n; s = e) {
		e = group_end(v, n, s);
		if (e - s == 1)
			files->v[v[s].rec.file].unique++;
	}
}

static size_t records_to_pairs(union dd_slot *v, size_t n, struct dd_files *files, bool rank)
{
	size_t w = 0;

	dd_sort(v, n, by_hash);
	if (rank)
		count_unique(files, v, n);
	for (size_t s = 0, e; s < n; s = e) {
		e = group_end(v, n, s);
		if (e - s > 1)
			group_to_pairs(files, v, s, e, &w);
	}
	return w;
}

static int64_t pair_delta(const struct chunk_pair *p)
{
	return (int64_t)p->dst_chunk - (int64_t)p->src_chunk;
}

static int by_run(const union dd_slot *a, const union dd_slot *b)
{
	const struct chunk_pair *x = &a->pair, *y = &b->pair;
	int c = cmp_u64(x->src_file, y->src_file);

	if (!c)
		c = cmp_u64(x->dst_file, y->dst_file);
	if (!c)
		c = pair_delta(x) < pair_delta(y) ? -1 : pair_delta(x) > pair_delta(y);
	return c ? c : cmp_u64(x->src_chunk, y->src_chunk);
}

static size_t merge_runs(union dd_slot *v, size_t n, uint32_t max_chunks)
{
	size_t w = 0;

	dd_sort(v, n, by_run);
	for (size_t r = 0; r < n; r++) {
		const struct chunk_pair *p = &v[r].pair;
		struct chunk_pair *cur = w ? &v[w - 1].pair : NULL;
		if (cur && cur->src_file == p->src_file && cur->dst_file == p->dst_file &&
		    pair_delta(cur) == pair_delta(p) && cur->src_chunk + cur->nchunks == p->src_chunk &&
		    cur->nchunks < max_chunks) {
			cur->nchunks++;
			continue;
		}
		v[w++] = v[r];
	}
	return w;
}

static int by_source(const union dd_slot *a, const union dd_slot *b)
{
	const struct chunk_pair *x = &a->pair, *y = &b->pair;
	int c = cmp_u64(x->src_file, y->src_file);

	if (!c)
		c = cmp_u64(x->src_chunk, y->src_chunk);
	if (!c)
		c = cmp_u64(x->nchunks, y->nchunks);
	if (!c)
		c = cmp_u64(x->dst_file, y->dst_file);
	return c ? c : cmp_u64(x->dst_chunk, y->dst_chunk);
}

size_t dd_plan(union dd_slot *v, size_t n, uint64_t chunk, struct dd_files *files, bool rank)
{
	uint64_t max = COWFS_DEDUPE_MAX_LEN / chunk;

	n = records_to_pairs(v, n, files, rank);
	n = merge_runs(v, n, max > UINT32_MAX ? UINT32_MAX : (uint32_t)max);
	dd_sort(v, n, by_source);
	return n;
}

/* Bytes a dedupe covers: whole chunks, but a file's tail chunk runs only to its end. */
uint64_t dd_pair_length(const struct chunk_pair *p, const struct dd_files *files, uint64_t chunk)
{
	uint64_t len = (uint64_t)p->nchunks * chunk;
	uint64_t src_off = (uint64_t)p->src_chunk * chunk, dst_off = (uint64_t)p->dst_chunk * chunk;
	uint64_t src_size = files->v[p->src_file].size, dst_size = files->v[p->dst_file].size;

	if (src_off + len > src_size)
		len = src_size > src_off ? src_size - src_off : 0;
	if (dst_off + len > dst_size)
		len = dst_size > dst_off ? dst_size - dst_off : 0;
	return len;
}
