/*
 * From chunk records to dedupes, in the records' own memory.
 *
 * 1. Sort the records by hash: equal hashes are a group of chunks with the same content (the
 *    server compares the bytes before sharing, so a collision costs a DIFFERS, never data).
 * 2. In each group, one chunk is the source and every other gets its extents. cowfs frees an
 *    extent only when nothing references any part of it, so the source should be the chunk
 *    whose extent stays alive anyway, and the destinations those whose extents can then lose
 *    every reference:
 *      a. the most referenced first (refs: chunks seen at the same disk address, so an extent
 *         already shared by reflinks or an earlier dedupe stays the one kept);
 *      b. then the one in the longest extent: a long extent usually holds data that is not
 *         duplicate (it stays referenced whatever is deduped onto it), while a short extent
 *         that is all duplicate is freed once its chunks point elsewhere;
 *      c. then the first by file and offset, so that consecutive chunks of two files choose
 *         the same side and their pairs merge in step 3.
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

/* Whether x is the better source (2a, 2b; 2c by the group's order). */
static bool better_source(const struct chunk_rec *x, const struct chunk_rec *y)
{
	if (x->refs != y->refs)
		return x->refs > y->refs;
	return x->extent_kib > y->extent_kib;
}

/*
 * One group [s, e) to pairs written from *w on. *w <= s + j when record s + j is read, and each
 * record is read before its slot can be written, so the pairs overwrite only records done with.
 */
static void group_to_pairs(union dd_slot *v, size_t s, size_t e, size_t *w)
{
	size_t best = s;

	for (size_t i = s + 1; i < e; i++) {
		if (better_source(&v[i].rec, &v[best].rec))
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

static size_t records_to_pairs(union dd_slot *v, size_t n)
{
	size_t w = 0;

	dd_sort(v, n, by_hash);
	for (size_t s = 0, e; s < n; s = e) {
		for (e = s + 1; e < n && same_hash(&v[s].rec, &v[e].rec); e++)
			;
		if (e - s > 1)
			group_to_pairs(v, s, e, &w);
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

size_t dd_plan(union dd_slot *v, size_t n, uint64_t chunk)
{
	uint64_t max = COWFS_DEDUPE_MAX_LEN / chunk;

	n = records_to_pairs(v, n);
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
