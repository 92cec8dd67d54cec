/*
 * bcache: block cache over a blockdev. See bcache.h for the contract.
 *
 * Every cached entry is in the hash table (keyed by address) until it is forgotten, evicted
 * or fails to load. Besides, an entry sits on at most one list:
 *   - the dirty list, while dirty (referenced or not), most recently used first: writeback
 *     enumerates it, early write-out takes from its tail;
 *   - the LRU list, while clean, unreferenced and loaded: eviction takes from its tail;
 *   - none, while clean and referenced, loading, or unhashed (forgotten, failed).
 * An unhashed entry lives on only until its last reference is put.
 *
 * One mutex guards all of it. A miss inserts a "loading" entry and reads outside the lock;
 * other getters of that address take a reference and wait on the condvar, then share the
 * result: the block, or the read's error.
 */
#include "fs/io/bcache.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fs/io/blockdev.h"
#include "fs/lib/compiler.h"

/* Free pooled blocks are poisoned under AddressSanitizer: a use after free still shows. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CB_CACHE_MASK    0xffffu
#define HASH_MIN_BUCKETS 1024u
/* Early write-out (bcache_dirty_excess): starts when dirty blocks pass HIGH of the bound and
 * brings them down to LOW, so that one batch is a quarter of the bound. */
#define DIRTY_HIGH_NUM 3
#define DIRTY_HIGH_DEN 4
#define DIRTY_LOW_DEN  2

enum centry_state { CE_LOADING, CE_READY, CE_FAILED };
enum centry_list { CL_NONE, CL_LRU, CL_DIRTY };

struct link {
	struct link *prev, *next;
};

struct centry {
	struct cblock b;          /* what callers see */
	struct centry *hnext;     /* hash chain */
	struct link link;         /* LRU or dirty list, per `list` */
	uint32_t refs;
	uint8_t state;            /* enum centry_state */
	uint8_t list;             /* enum centry_list */
	bool hashed;
	int err;                  /* the read's error, when CE_FAILED */
};

/*
 * Block memory. Blocks of one length (the first one asked for: tree nodes are all node-sized)
 * are carved from slabs mapped from the system and recycled through a free list; they never
 * go back to malloc. Copy-on-write frees about one block for every block it allocates, and
 * through malloc those frees, with the padding every aligned allocation leaves around itself,
 * scattered holes over the heaps of every thread that touched the cache: after 20 s of 4 KiB
 * random writes the daemon held as much free heap as cache. The pool holds the most blocks
 * ever cached at once, which the bound limits. Other lengths use posix_memalign.
 */
#define SLAB_BYTES (2u << 20)

struct slab {
	struct slab *next;
	void *mem;
};

struct pool {
	pthread_mutex_t lock;
	uint32_t len;        /* the pooled length; 0 until the first block */
	void *free;          /* free blocks, linked through their first bytes */
	struct slab *slabs;
	size_t bytes;        /* mapped */
};

struct bcache {
	struct blockdev *bd;
	struct pool pool;
	pthread_mutex_t lock;
	pthread_cond_t loaded;        /* some entry left CE_LOADING */
	pthread_mutex_t wb_lock;      /* one writeback at a time: two would write the same blocks */
	struct centry **buckets;
	size_t nbuckets;              /* power of two */
	size_t nhashed;
	struct link lru;              /* head = most recently used */
	struct link dirty;
	size_t ndirty;
	struct bcache_stats st;       /* bytes, dirty_bytes and blocks are live totals */
};

/* ---- lists ------------------------------------------------------------------------------ */

static void link_init(struct link *head)
{
	head->prev = head->next = head;
}

static void link_add(struct link *head, struct link *l)
{
	l->prev = head;
	l->next = head->next;
	head->next->prev = l;
	head->next = l;
}

static void link_del(struct link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

static bool link_empty(const struct link *head)
{
	return head->next == head;
}

static struct centry *link_entry(struct link *l)
{
	return container_of(l, struct centry, link);
}

static struct centry *cb_entry(struct cblock *b)
{
	return container_of(b, struct centry, b);
}

static void list_put(struct bcache *c, struct centry *e, enum centry_list which)
{
	assert(e->list == CL_NONE);
	e->list = (uint8_t)which;
	if (which == CL_LRU) {
		link_add(&c->lru, &e->link);
		return;
	}
	link_add(&c->dirty, &e->link);
	c->ndirty++;
	c->st.dirty_bytes += e->b.len;
}

/* A clean entry no one uses any more, at the end eviction takes first. */
static void list_put_cold(struct bcache *c, struct centry *e)
{
	assert(e->list == CL_NONE);
	e->list = CL_LRU;
	link_add(c->lru.prev, &e->link);
}

/* A dirty entry just used: least recently used dirty entries are written out early first. */
static void dirty_touch(struct bcache *c, struct centry *e)
{
	link_del(&e->link);
	link_add(&c->dirty, &e->link);
}

static void list_take(struct bcache *c, struct centry *e)
{
	if (e->list == CL_NONE)
		return;
	link_del(&e->link);
	if (e->list == CL_DIRTY) {
		c->ndirty--;
		c->st.dirty_bytes -= e->b.len;
	}
	e->list = CL_NONE;
}

/* ---- hash table ------------------------------------------------------------------------- */

/* Addresses are block-aligned: their low bits are zero, so they must be mixed (splitmix64). */
static size_t hash_addr(const struct bcache *c, uint64_t addr)
{
	addr ^= addr >> 30;
	addr *= 0xbf58476d1ce4e5b9ull;
	addr ^= addr >> 27;
	addr *= 0x94d049bb133111ebull;
	addr ^= addr >> 31;
	return (size_t)addr & (c->nbuckets - 1);
}

static struct centry *hash_find(const struct bcache *c, uint64_t addr)
{
	struct centry *e = c->buckets[hash_addr(c, addr)];

	while (e && e->b.addr != addr)
		e = e->hnext;
	return e;
}

static void hash_link(struct bcache *c, struct centry *e)
{
	size_t i = hash_addr(c, e->b.addr);

	e->hnext = c->buckets[i];
	c->buckets[i] = e;
}

/* Doubling is best effort: without memory the chains just get longer. */
static void hash_grow(struct bcache *c)
{
	struct centry **old = c->buckets;
	size_t oldn = c->nbuckets;
	struct centry **nb = calloc(oldn * 2, sizeof(*nb));

	if (!nb)
		return;
	c->buckets = nb;
	c->nbuckets = oldn * 2;
	for (size_t i = 0; i < oldn; i++) {
		while (old[i]) {
			struct centry *e = old[i];

			old[i] = e->hnext;
			hash_link(c, e);
		}
	}
	free(old);
}

static void hash_insert(struct bcache *c, struct centry *e)
{
	assert(!e->hashed);
	if (c->nhashed >= c->nbuckets)
		hash_grow(c);
	hash_link(c, e);
	e->hashed = true;
	c->nhashed++;
}

static void hash_remove(struct bcache *c, struct centry *e)
{
	struct centry **pp = &c->buckets[hash_addr(c, e->b.addr)];

	assert(e->hashed);
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->hnext = NULL;
	e->hashed = false;
	c->nhashed--;
}

/* ---- block memory ----------------------------------------------------------------------- */

static bool poolable(uint32_t len)
{
	return len && len % BDEV_ALIGN == 0 && len <= SLAB_BYTES;
}

/* The free list, with the pool lock held. */
static void free_push(struct pool *p, void *b)
{
	memcpy(b, &p->free, sizeof(void *));
	p->free = b;
	POISON(b, p->len);
}

static void *free_pop(struct pool *p)
{
	void *b = p->free;

	UNPOISON(b, p->len);
	memcpy(&p->free, b, sizeof(void *));
	return b;
}

/* A new slab's blocks onto the free list. Called with the pool lock held. */
static int slab_add(struct pool *p)
{
	struct slab *s = malloc(sizeof(*s));
	void *mem = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (!s || mem == MAP_FAILED) {
		free(s);
		if (mem != MAP_FAILED)
			munmap(mem, SLAB_BYTES);
		return -ENOMEM;
	}
	s->mem = mem;
	s->next = p->slabs;
	p->slabs = s;
	p->bytes += SLAB_BYTES;
	/* Pushed last first: the slab is handed out in address order. */
	for (size_t off = SLAB_BYTES / p->len * p->len; off > 0; off -= p->len)
		free_push(p, (char *)mem + off - p->len);
	return 0;
}

static void *block_mem_get(struct bcache *c, uint32_t len)
{
	struct pool *p = &c->pool;
	void *b = NULL;

	pthread_mutex_lock(&p->lock);
	if (!p->len && poolable(len))
		p->len = len;
	bool pooled = p->len && len == p->len;
	if (pooled && (p->free || slab_add(p) == 0))
		b = free_pop(p);
	pthread_mutex_unlock(&p->lock);
	if (!pooled && posix_memalign(&b, BDEV_ALIGN, len ? len : 1))
		b = NULL;
	return b;
}

static void block_mem_put(struct bcache *c, void *b, uint32_t len)
{
	struct pool *p = &c->pool;

	pthread_mutex_lock(&p->lock);
	if (p->len && len == p->len) {
		free_push(p, b);
		b = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	free(b);
}

static void pool_destroy(struct pool *p)
{
	while (p->slabs) {
		struct slab *s = p->slabs;
		p->slabs = s->next;
		UNPOISON(s->mem, SLAB_BYTES);
		munmap(s->mem, SLAB_BYTES);
		free(s);
	}
	pthread_mutex_destroy(&p->lock);
}

/* ---- entries ---------------------------------------------------------------------------- */

static struct centry *entry_alloc(struct bcache *c, uint64_t addr, uint32_t len)
{
	struct centry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->b.data = block_mem_get(c, len);
	if (!e->b.data) {
		free(e);
		return NULL;
	}
	e->b.addr = addr;
	e->b.len = len;
	e->link.prev = e->link.next = &e->link;
	return e;
}

static void entry_free(struct bcache *c, struct centry *e)
{
	assert(e->refs == 0 && !e->hashed && e->list == CL_NONE);
	c->st.bytes -= e->b.len;
	c->st.blocks--;
	block_mem_put(c, e->b.data, e->b.len);
	free(e);
}

static void account_new(struct bcache *c, struct centry *e)
{
	c->st.bytes += e->b.len;
	c->st.blocks++;
}

/* Take an entry out of the cache; it is freed now, or by whoever holds the last reference. */
static void entry_detach(struct bcache *c, struct centry *e)
{
	if (e->hashed)
		hash_remove(c, e);
	list_take(c, e);
	if (e->refs == 0)
		entry_free(c, e);
}

/* Evict clean unreferenced blocks, coldest first, until the cache holds at most `bytes`. */
static void evict_down_to(struct bcache *c, size_t bytes)
{
	while (c->st.bytes > bytes && !link_empty(&c->lru)) {
		entry_detach(c, link_entry(c->lru.prev));
		c->st.evictions++;
	}
}

static void shrink(struct bcache *c)
{
	evict_down_to(c, c->st.max_bytes);
}

/* Drop a reference; a clean entry nobody holds goes on the LRU list, at its cold end if asked. */
static void entry_release(struct bcache *c, struct centry *e, bool cold)
{
	assert(e->refs > 0);
	if (--e->refs > 0)
		return;
	if (!e->hashed) {
		entry_free(c, e);
		return;
	}
	if (e->list == CL_NONE && !(e->b.flags & CB_DIRTY)) {
		if (cold)
			list_put_cold(c, e);
		else
			list_put(c, e, CL_LRU);
		shrink(c);
	}
}

static void entry_unref(struct bcache *c, struct centry *e)
{
	entry_release(c, e, false);
}

/* ---- create / destroy ------------------------------------------------------------------- */

int bcache_create(struct blockdev *bd, size_t max_bytes, struct bcache **out)
{
	struct bcache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->nbuckets = HASH_MIN_BUCKETS;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->bd = bd;
	c->st.max_bytes = max_bytes ? max_bytes : BCACHE_DEFAULT_BYTES;
	link_init(&c->lru);
	link_init(&c->dirty);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wb_lock, NULL);
	pthread_mutex_init(&c->pool.lock, NULL);
	pthread_cond_init(&c->loaded, NULL);
	*out = c;
	return 0;
}

void bcache_destroy(struct bcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nbuckets; i++)
		while (c->buckets[i])
			entry_detach(c, c->buckets[i]);
	/* A block still referenced (forgotten or not) would be leaked here: a caller bug. */
	assert(c->st.blocks == 0);
	free(c->buckets);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->wb_lock);
	pthread_mutex_destroy(&c->lock);
	pool_destroy(&c->pool);
	free(c);
}

struct blockdev *bcache_device(struct bcache *c)
{
	return c->bd;
}

/* ---- get / put -------------------------------------------------------------------------- */

/* A hit: pin the entry, waiting out a concurrent load of it. Returns 0 or the load's error. */
static int take_cached(struct bcache *c, struct centry *e, uint32_t len)
{
	int err;

	assert(e->b.len == len);
	(void)len;
	c->st.hits++;
	if (e->list == CL_LRU)
		list_take(c, e);
	else if (e->list == CL_DIRTY)
		dirty_touch(c, e);
	e->refs++;
	while (e->state == CE_LOADING)
		pthread_cond_wait(&c->loaded, &c->lock);
	err = e->err;
	if (err)
		entry_unref(c, e);
	return err;
}

/* Called with the lock held; returns with it held. */
static int load(struct bcache *c, struct centry *e)
{
	int rc;

	pthread_mutex_unlock(&c->lock);
	rc = bdev_read(c->bd, e->b.addr, e->b.data, e->b.len);
	pthread_mutex_lock(&c->lock);
	e->state = rc ? CE_FAILED : CE_READY;
	e->err = rc;
	pthread_cond_broadcast(&c->loaded);
	if (rc) {
		/* Never cache a failed read: the next get tries the device again. */
		entry_detach(c, e);
		entry_unref(c, e);
	}
	return rc;
}

int bcache_get(struct bcache *c, uint64_t addr, uint32_t len, struct cblock **out)
{
	struct centry *e;
	int rc;

	pthread_mutex_lock(&c->lock);
	e = hash_find(c, addr);
	if (likely(e != NULL)) {
		rc = take_cached(c, e, len);
		pthread_mutex_unlock(&c->lock);
		if (rc == 0)
			*out = &e->b;
		return rc;
	}
	c->st.misses++;
	e = entry_alloc(c, addr, len);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	e->refs = 1;
	e->state = CE_LOADING;
	account_new(c, e);
	hash_insert(c, e);
	shrink(c);
	rc = load(c, e);
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		*out = &e->b;
	return rc;
}

int bcache_get_new(struct bcache *c, uint64_t addr, uint32_t len, struct cblock **out)
{
	struct centry *e = entry_alloc(c, addr, len);
	struct centry *old;

	if (!e)
		return -ENOMEM;
	memset(e->b.data, 0, len);
	e->refs = 1;
	e->state = CE_READY;
	e->b.flags = CB_DIRTY;
	pthread_mutex_lock(&c->lock);
	old = hash_find(c, addr);
	if (old) {
		assert(old->refs == 0);
		entry_detach(c, old);
	}
	account_new(c, e);
	hash_insert(c, e);
	list_put(c, e, CL_DIRTY);
	shrink(c);
	pthread_mutex_unlock(&c->lock);
	*out = &e->b;
	return 0;
}

void bcache_ref(struct bcache *c, struct cblock *b)
{
	struct centry *e = cb_entry(b);

	pthread_mutex_lock(&c->lock);
	assert(e->refs > 0);
	e->refs++;
	pthread_mutex_unlock(&c->lock);
}

void bcache_put(struct bcache *c, struct cblock *b)
{
	pthread_mutex_lock(&c->lock);
	entry_unref(c, cb_entry(b));
	pthread_mutex_unlock(&c->lock);
}

/* ---- flags ------------------------------------------------------------------------------ */

/* A forgotten block may still be dirtied by its holder, but it is never written back. */
void bcache_mark_dirty(struct bcache *c, struct cblock *b)
{
	struct centry *e = cb_entry(b);

	pthread_mutex_lock(&c->lock);
	assert(e->refs > 0);
	if (!(b->flags & CB_DIRTY)) {
		b->flags |= CB_DIRTY;
		if (e->hashed)
			list_put(c, e, CL_DIRTY);
	}
	pthread_mutex_unlock(&c->lock);
}

void bcache_set_flags(struct bcache *c, struct cblock *b, uint32_t flags)
{
	assert(!(flags & CB_CACHE_MASK));
	pthread_mutex_lock(&c->lock);
	b->flags |= flags;
	pthread_mutex_unlock(&c->lock);
}

void bcache_clear_flags(struct bcache *c, struct cblock *b, uint32_t flags)
{
	assert(!(flags & CB_CACHE_MASK));
	pthread_mutex_lock(&c->lock);
	b->flags &= ~flags;
	pthread_mutex_unlock(&c->lock);
}

void bcache_clear_flags_dirty(struct bcache *c, uint32_t flags)
{
	assert(!(flags & CB_CACHE_MASK));
	pthread_mutex_lock(&c->lock);
	for (struct link *l = c->dirty.next; l != &c->dirty; l = l->next)
		link_entry(l)->b.flags &= ~flags;
	pthread_mutex_unlock(&c->lock);
}

/* ---- forget / drop ---------------------------------------------------------------------- */

void bcache_forget(struct bcache *c, uint64_t addr)
{
	struct centry *e;

	pthread_mutex_lock(&c->lock);
	e = hash_find(c, addr);
	if (e)
		entry_detach(c, e);
	pthread_mutex_unlock(&c->lock);
}

void bcache_forget_dirty(struct bcache *c)
{
	pthread_mutex_lock(&c->lock);
	while (!link_empty(&c->dirty))
		entry_detach(c, link_entry(c->dirty.next));
	pthread_mutex_unlock(&c->lock);
}

void bcache_drop_clean(struct bcache *c)
{
	pthread_mutex_lock(&c->lock);
	while (!link_empty(&c->lru))
		entry_detach(c, link_entry(c->lru.next));
	pthread_mutex_unlock(&c->lock);
}

/* ---- writeback -------------------------------------------------------------------------- */

/*
 * Dirty blocks to write, least recently used first, until they add up to `bytes`; with
 * `unheld`, only those nobody holds. Pinned, so that a concurrent forget cannot free a block
 * being written.
 */
static int collect_dirty(struct bcache *c, size_t bytes, bool unheld, struct centry ***out,
			 size_t *n)
{
	struct centry **v;
	size_t i = 0, got = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&c->lock);
	if (c->ndirty == 0) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	v = malloc(c->ndirty * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	for (struct link *l = c->dirty.prev; l != &c->dirty && got < bytes; l = l->prev) {
		struct centry *e = link_entry(l);
		if (unheld && e->refs)
			continue;
		e->refs++;
		v[i++] = e;
		got += e->b.len;
	}
	pthread_mutex_unlock(&c->lock);
	*out = v;
	*n = i;
	return 0;
}

static int cmp_addr(const void *a, const void *b)
{
	uint64_t x = (*(struct centry *const *)a)->b.addr;
	uint64_t y = (*(struct centry *const *)b)->b.addr;

	return (x > y) - (x < y);
}

static void fill_ios(struct centry **v, size_t n, struct bdev_io *ios)
{
	for (size_t i = 0; i < n; i++)
		ios[i] = (struct bdev_io){ .off = v[i]->b.addr, .buf = v[i]->b.data,
					   .len = v[i]->b.len };
}

/* A block forgotten while it was being written stays out: its state no longer matters. */
static void mark_written(struct bcache *c, struct centry *e, uint32_t clear_flags)
{
	if (!e->hashed || e->list != CL_DIRTY)
		return;
	list_take(c, e);
	e->b.flags &= ~(CB_DIRTY | clear_flags);
}

/* Blocks written early (`cold`) go to the end of the LRU list that eviction takes first. */
static void finish_writeback(struct bcache *c, struct centry **v, const struct bdev_io *ios,
			     size_t n, uint32_t clear_flags, bool cold)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (ios[i].res == 0) {
			mark_written(c, v[i], clear_flags);
			c->st.early_writes += cold;
		}
		entry_release(c, v[i], cold);
	}
	shrink(c);
	pthread_mutex_unlock(&c->lock);
}

static void unpin_all(struct bcache *c, struct centry **v, size_t n)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++)
		entry_unref(c, v[i]);
	pthread_mutex_unlock(&c->lock);
}

static int write_sorted(struct bcache *c, struct centry **v, size_t n,
			void (*seal)(void *arg, struct cblock *b), void *arg, uint32_t clear_flags,
			bool cold)
{
	struct bdev_io *ios = malloc(n * sizeof(*ios));
	int rc;

	if (!ios) {
		unpin_all(c, v, n);
		return -ENOMEM;
	}
	qsort(v, n, sizeof(*v), cmp_addr);
	if (seal)
		for (size_t i = 0; i < n; i++)
			seal(arg, &v[i]->b);
	fill_ios(v, n, ios);
	rc = bdev_write_batch(c->bd, ios, n);
	finish_writeback(c, v, ios, n, clear_flags, cold);
	free(ios);
	return rc;
}

/* Write `bytes` of dirty blocks (see collect_dirty) in one batch. */
static int write_dirty(struct bcache *c, size_t bytes, bool early,
		       void (*seal)(void *arg, struct cblock *b), void *arg, uint32_t clear_flags)
{
	struct centry **v;
	size_t n;
	int rc;

	assert(!(clear_flags & CB_CACHE_MASK));
	pthread_mutex_lock(&c->wb_lock);
	rc = collect_dirty(c, bytes, early, &v, &n);
	if (rc == 0 && n > 0)
		rc = write_sorted(c, v, n, seal, arg, clear_flags, early);
	free(v);
	pthread_mutex_unlock(&c->wb_lock);
	return rc;
}

int bcache_writeback(struct bcache *c, void (*seal)(void *arg, struct cblock *b), void *arg,
		     uint32_t clear_flags)
{
	return write_dirty(c, SIZE_MAX, false, seal, arg, clear_flags);
}

int bcache_write_cold(struct bcache *c, size_t bytes, void (*seal)(void *arg, struct cblock *b),
		      void *arg, uint32_t clear_flags)
{
	return write_dirty(c, bytes, true, seal, arg, clear_flags);
}

size_t bcache_dirty_excess(struct bcache *c)
{
	size_t dirty, max, excess = 0;

	pthread_mutex_lock(&c->lock);
	dirty = c->st.dirty_bytes;
	max = c->st.max_bytes;
	pthread_mutex_unlock(&c->lock);
	if (dirty > max / DIRTY_HIGH_DEN * DIRTY_HIGH_NUM)
		excess = dirty - max / DIRTY_LOW_DEN;
	return excess;
}

/* ---- prefetch --------------------------------------------------------------------------- */

/* One call reads ahead at most this fraction of the bound. */
#define PREFETCH_DEN 8

/* Room for `len` more bytes within the bound, by evicting only what eviction may take. */
static bool make_room(struct bcache *c, uint32_t len)
{
	if (len > c->st.max_bytes)
		return false;
	evict_down_to(c, c->st.max_bytes - len);
	return c->st.bytes + len <= c->st.max_bytes;
}

/*
 * Loading entries, pinned, for up to `max` of the addresses not cached, while they fit: the
 * first getter of one waits for the batch as it would for a miss's read. Returns how many.
 */
static size_t prefetch_claim(struct bcache *c, const uint64_t *addrs, size_t n, uint32_t len,
			     size_t max, struct centry **v)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < max; i++) {
		struct centry *e;
		if (hash_find(c, addrs[i]))
			continue;
		if (!make_room(c, len))
			break;
		e = entry_alloc(c, addrs[i], len);
		if (!e)
			break;
		e->refs = 1;
		e->state = CE_LOADING;
		account_new(c, e);
		hash_insert(c, e);
		v[k++] = e;
	}
	return k;
}

/* The batch's outcome, as load() gives a miss's: failed reads are not cached. */
static size_t prefetch_finish(struct bcache *c, struct centry **v, const struct bdev_io *ios,
			      size_t k)
{
	size_t ok = 0;

	for (size_t i = 0; i < k; i++) {
		struct centry *e = v[i];
		e->state = ios[i].res ? CE_FAILED : CE_READY;
		e->err = ios[i].res;
		if (ios[i].res)
			entry_detach(c, e);
		else
			ok++;
		entry_unref(c, e);
	}
	c->st.prefetched += ok;
	pthread_cond_broadcast(&c->loaded);
	return ok;
}

int bcache_prefetch(struct bcache *c, const uint64_t *addrs, size_t n, uint32_t len)
{
	/* max_bytes is set once, at create. */
	size_t max = len ? c->st.max_bytes / PREFETCH_DEN / len : 0;
	struct centry **v;
	struct bdev_io *ios;
	size_t k, ok;

	if (max > n)
		max = n;
	if (max == 0)
		return 0;
	v = malloc(max * sizeof(*v));
	ios = malloc(max * sizeof(*ios));
	if (!v || !ios) {
		free(v);
		free(ios);
		return -ENOMEM;
	}
	pthread_mutex_lock(&c->lock);
	k = prefetch_claim(c, addrs, n, len, max, v);
	pthread_mutex_unlock(&c->lock);
	fill_ios(v, k, ios);
	if (k > 0)
		(void)bdev_read_batch(c->bd, ios, k);  /* each request's own res is what counts */
	pthread_mutex_lock(&c->lock);
	ok = prefetch_finish(c, v, ios, k);
	pthread_mutex_unlock(&c->lock);
	free(v);
	free(ios);
	return (int)ok;
}

void bcache_readahead(struct bcache *c, const uint64_t *addrs, size_t n, uint32_t len)
{
	uint64_t *missing = n ? malloc(n * sizeof(*missing)) : NULL;
	size_t k = 0;

	if (!missing)
		return;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++)
		if (!hash_find(c, addrs[i]))
			missing[k++] = addrs[i];
	pthread_mutex_unlock(&c->lock);
	bdev_readahead(c->bd, missing, k, len);
	free(missing);
}

/* ---- stats ------------------------------------------------------------------------------ */

void bcache_get_stats(struct bcache *c, struct bcache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&c->pool.lock);
	st->pool_bytes = c->pool.bytes;
	pthread_mutex_unlock(&c->pool.lock);
}

size_t bcache_dirty_bytes(struct bcache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->st.dirty_bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
}
