/*
 * In-memory inode state: see icache.h.
 */
#include "fs/inode/icache.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/inode/fmap.h"
#include "fs/inode/internal.h"

#define ICACHE_BUCKETS 4096u

static void page_chunks_free(struct inode_cache *ic);
#define PAGE_TABLE_MIN 16u

/* Buffered file data gets a quarter of the memory bound (fs/super gives the block cache half
 * and leaves a quarter for the rest): together they stay within cache_size. */
static uint64_t dirty_limit_of(struct cowfs *fs)
{
	uint64_t limit = (uint64_t)cowfs_cache_bytes(fs) / 4;

	return limit < (4ull << 20) ? 4ull << 20 : limit;
}

struct inode_cache *icache_of(struct inode_tree *it)
{
	struct inode_cache *ic = it->icache;

	if (ic)
		return ic;
	ic = calloc(1, sizeof(*ic));
	if (!ic)
		return NULL;
	ic->buckets = calloc(ICACHE_BUCKETS, sizeof(*ic->buckets));
	if (!ic->buckets) {
		free(ic);
		return NULL;
	}
	ic->it = it;
	ic->nbuckets = ICACHE_BUCKETS;
	ic->page_size = cowfs_sectorsize(it->fs);
	ic->dirty_limit = dirty_limit_of(it->fs);
	it->icache = ic;
	if (!cowfs_read_only(it->fs)) {
		it->hooks = (struct cowfs_hooks){ .before_commit = inode_writeback_all,
						  .flush = inode_flush, .abort = inode_tree_abort,
						  .arg = it };
		cowfs_hooks_add(it->fs, &it->hooks);
	}
	return ic;
}

static size_t bucket_of(const struct inode_cache *ic, uint64_t ino)
{
	return (ino * 0x9E3779B97F4A7C15ull >> 20) & (ic->nbuckets - 1);
}

struct icache_entry *icache_find(struct inode_cache *ic, uint64_t ino, bool create)
{
	size_t b = bucket_of(ic, ino);
	struct icache_entry *e;

	for (e = ic->buckets[b]; e; e = e->next)
		if (e->ino == ino)
			return e;
	if (!create)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ino = ino;
	e->next = ic->buckets[b];
	ic->buckets[b] = e;
	ic->count++;
	return e;
}

void icache_release_if_idle(struct inode_cache *ic, struct icache_entry *e)
{
	struct icache_entry **p;

	if (e->holds || e->orphan || e->pages.count || e->log_dirty || e->log_unfit)
		return;
	for (p = &ic->buckets[bucket_of(ic, e->ino)]; *p != e; p = &(*p)->next)
		;
	*p = e->next;
	free(e->pages.slots);
	free(e->unlogged.idx);
	free(e->exclusive.v);
	free(e);
	ic->count--;
}

int icache_for_each(struct inode_cache *ic, int (*fn)(void *arg, struct icache_entry *e),
		    void *arg)
{
	for (size_t b = 0; b < ic->nbuckets; b++) {
		for (struct icache_entry *e = ic->buckets[b], *next; e; e = next) {
			next = e->next;
			int ret = fn(arg, e);
			if (ret)
				return ret;
		}
	}
	return 0;
}

void icache_abort(struct inode_cache *ic)
{
	for (size_t b = 0; b < ic->nbuckets; b++) {
		for (struct icache_entry *e = ic->buckets[b]; e; e = e->next) {
			pages_drop_range(ic, e, 0, UINT64_MAX);
			e->unlogged.n = 0;
			e->log_dirty = e->log_unfit = false;
		}
	}
	ic->log_dirty_count = 0;
}

void icache_destroy(struct inode_cache *ic)
{
	for (size_t b = 0; b < ic->nbuckets; b++) {
		for (struct icache_entry *e = ic->buckets[b], *next; e; e = next) {
			next = e->next;
			pages_drop_range(ic, e, 0, UINT64_MAX);
			free(e->pages.slots);
			free(e->unlogged.idx);
			free(e->exclusive.v);
			free(e);
		}
	}
	page_chunks_free(ic);
	free(ic->buckets);
	free(ic);
}

uint64_t inode_dirty_bytes(struct inode_tree *it, uint64_t ino)
{
	struct icache_entry *e = it->icache ? icache_find(it->icache, ino, false) : NULL;

	return e ? (uint64_t)(e->pages.count - e->inplace_pages) * it->icache->page_size : 0;
}

/* What a page counts in fs->delalloc_bytes. */
static uint64_t page_space(const struct inode_cache *ic, const struct dirty_page *p)
{
	return p->inplace ? INPLACE_MAP_BYTES : ic->page_size;
}

/* ---- page memory: aligned chunks carved into pages, recycled through a free list ----------------- */

/*
 * Pages come in chunks of PAGE_CHUNK: one aligned allocation per page would cost a malloc call
 * and, for alignment, nearly a second page of padding each. Free pages are kept on a list
 * (the first bytes of a free page link to the next); chunks go back to the system only when
 * the cache is destroyed. What is kept is bounded by the most dirty data ever held at once,
 * itself bounded by dirty_limit.
 */
#define PAGE_CHUNK 256u

struct page_chunk {
	struct page_chunk *next;
	uint8_t *mem;
};

static size_t page_bytes(const struct inode_cache *ic)
{
	return ic->page_size < BDEV_ALIGN ? BDEV_ALIGN : ic->page_size;
}

static int page_chunk_add(struct inode_cache *ic)
{
	struct page_chunk *c = malloc(sizeof(*c));
	size_t pb = page_bytes(ic);

	if (!c)
		return -ENOMEM;
	c->mem = aligned_alloc(BDEV_ALIGN, PAGE_CHUNK * pb);
	if (!c->mem) {
		free(c);
		return -ENOMEM;
	}
	c->next = ic->chunks;
	ic->chunks = c;
	/* Pushed last first: the list hands the chunk out in address order. */
	for (size_t i = PAGE_CHUNK; i-- > 0;)
		page_mem_put(ic, c->mem + i * pb);
	return 0;
}

uint8_t *page_mem_get(struct inode_cache *ic)
{
	uint8_t *p;

	if (!ic->free_pages && page_chunk_add(ic) < 0)
		return NULL;
	p = ic->free_pages;
	memcpy(&ic->free_pages, p, sizeof(p));
	return p;
}

void page_mem_put(struct inode_cache *ic, uint8_t *p)
{
	memcpy(p, &ic->free_pages, sizeof(p));
	ic->free_pages = p;
}

static void page_chunks_free(struct inode_cache *ic)
{
	for (struct page_chunk *c = ic->chunks, *next; c; c = next) {
		next = c->next;
		free(c->mem);
		free(c);
	}
	ic->chunks = NULL;
	ic->free_pages = NULL;
}

/* ---- dirty pages: linear probing, deletion by backward shift ------------------------------- */

static size_t slot_of(const struct page_table *t, uint64_t index)
{
	return (index * 0x9E3779B97F4A7C15ull >> 17) & (t->cap - 1);
}

struct dirty_page *page_find(struct icache_entry *e, uint64_t index)
{
	struct page_table *t = &e->pages;

	if (!t->count)
		return NULL;
	for (size_t i = slot_of(t, index);; i = (i + 1) & (t->cap - 1)) {
		if (!t->slots[i].data)
			return NULL;
		if (t->slots[i].index == index)
			return &t->slots[i];
	}
}

static struct dirty_page *slot_for_insert(struct page_table *t, uint64_t index)
{
	size_t i = slot_of(t, index);

	while (t->slots[i].data)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static int table_grow(struct page_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : PAGE_TABLE_MIN;
	struct dirty_page *old = t->slots;
	size_t oldcap = t->cap;

	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].data)
			*slot_for_insert(t, old[i].index) = old[i];
	free(old);
	return 0;
}

struct dirty_page *page_add(struct inode_cache *ic, struct icache_entry *e, uint64_t index,
			    bool zero, uint64_t inplace)
{
	struct page_table *t = &e->pages;
	struct dirty_page *p;
	uint8_t *data;

	if ((t->count + 1) * 4 > t->cap * 3 && table_grow(t) < 0)
		return NULL;
	data = page_mem_get(ic);
	if (!data)
		return NULL;
	if (zero)
		memset(data, 0, ic->page_size);
	p = slot_for_insert(t, index);
	p->index = index;
	p->data = data;
	p->logged = false;
	p->writeback = false;
	p->inplace = inplace;
	t->count++;
	e->inplace_pages += inplace != 0;
	ic->dirty_bytes += ic->page_size;
	cowfs_delalloc_add(ic->it->fs, (int64_t)page_space(ic, p));
	return p;
}

/* Remove the page in slot i of e's table, shifting later members of its probe run back. */
static void table_remove_slot(struct icache_entry *e, size_t i)
{
	struct page_table *t = &e->pages;
	size_t j = i;

	e->inplace_pages -= t->slots[i].inplace != 0;
	t->slots[i].data = NULL;
	for (;;) {
		j = (j + 1) & (t->cap - 1);
		if (!t->slots[j].data)
			break;
		size_t home = slot_of(t, t->slots[j].index);
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j].data = NULL;
		i = j;
	}
	t->count--;
}

void pages_drop_range(struct inode_cache *ic, struct icache_entry *e, uint64_t first,
		      uint64_t last)
{
	struct page_table *t = &e->pages;

	for (size_t i = 0; i < t->cap && t->count;) {
		struct dirty_page *p = &t->slots[i];
		if (p->data && p->index >= first && p->index <= last) {
			page_mem_put(ic, p->data);
			ic->dirty_bytes -= ic->page_size;
			cowfs_delalloc_add(ic->it->fs, -(int64_t)page_space(ic, p));
			table_remove_slot(e, i);
			continue;   /* the slot may hold a shifted page now */
		}
		i++;
	}
}

static int cmp_page(const void *a, const void *b)
{
	const struct dirty_page *x = *(const struct dirty_page *const *)a;
	const struct dirty_page *y = *(const struct dirty_page *const *)b;

	return x->index < y->index ? -1 : x->index > y->index;
}

void pages_sort(struct dirty_page **v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_page);
}

static int cmp_page_value(const void *a, const void *b)
{
	const struct dirty_page *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

int pages_take(struct inode_cache *ic, struct icache_entry *e, struct dirty_page **out,
	       size_t *n)
{
	struct page_table *t = &e->pages;
	struct dirty_page *v;
	uint64_t space = 0;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (!t->count)
		return 0;
	v = malloc(t->count * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct dirty_page *p = &t->slots[i];
		if (p->data) {
			assert(!p->writeback);
			p->writeback = true;
			space += page_space(ic, p);
			v[k++] = *p;
		}
	}
	qsort(v, k, sizeof(*v), cmp_page_value);
	cowfs_delalloc_add(ic->it->fs, -(int64_t)space);
	*out = v;
	*n = k;
	return 0;
}

/* The slot of v's page if it still holds v's memory (no write replaced it), else NULL. */
static struct dirty_page *page_unchanged(struct icache_entry *e, const struct dirty_page *v)
{
	struct dirty_page *p = page_find(e, v->index);

	return p && p->data == v->data ? p : NULL;
}

/* Memory of pages v[0, n) back, last first: the free list then hands it out in file order. */
static void pages_mem_put(struct inode_cache *ic, const struct dirty_page *v, size_t n)
{
	for (size_t i = n; i-- > 0;)
		page_mem_put(ic, v[i].data);
	ic->dirty_bytes -= (uint64_t)n * ic->page_size;
}

void pages_written(struct inode_cache *ic, struct icache_entry *e, const struct dirty_page *v,
		   size_t n)
{
	struct page_table *t = &e->pages;
	size_t unchanged = 0;

	for (size_t i = 0; i < n; i++)
		unchanged += page_unchanged(e, &v[i]) != NULL;
	if (unchanged == t->count) {   /* the usual case: nothing was written meanwhile */
		memset(t->slots, 0, t->cap * sizeof(*t->slots));
		t->count = 0;
		e->inplace_pages = 0;
	} else {
		for (size_t i = 0; i < n; i++) {
			struct dirty_page *p = page_unchanged(e, &v[i]);
			if (p)
				table_remove_slot(e, (size_t)(p - t->slots));
		}
	}
	pages_mem_put(ic, v, n);
}

void pages_untake(struct inode_cache *ic, struct icache_entry *e, const struct dirty_page *v,
		  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct dirty_page *p = page_unchanged(e, &v[i]);
		if (p) {
			p->writeback = false;
			cowfs_delalloc_add(ic->it->fs, (int64_t)page_space(ic, p));
		} else {
			page_mem_put(ic, v[i].data);
			ic->dirty_bytes -= ic->page_size;
		}
	}
}

int page_copy_for_write(struct inode_cache *ic, struct icache_entry *e, struct dirty_page *p)
{
	uint8_t *data = page_mem_get(ic);

	if (!data)
		return -ENOMEM;
	memcpy(data, p->data, ic->page_size);
	p->data = data;
	p->writeback = false;
	e->inplace_pages -= p->inplace != 0;
	p->inplace = 0;
	ic->dirty_bytes += ic->page_size;
	cowfs_delalloc_add(ic->it->fs, ic->page_size);
	return 0;
}
