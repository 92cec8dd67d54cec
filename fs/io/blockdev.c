/*
 * blockdev: positional, synchronous-to-the-caller I/O on an image through one io_uring.
 *
 * A batch runs entirely under the device lock: requests are queued into free "slots" (one
 * per submission queue entry, so the rings can never overflow), submitted together, and
 * reaped; a slot whose request is not finished (short transfer, -EINTR, -EAGAIN) is queued
 * again for the remainder. Because no batch is ever left half-done when the lock is released,
 * a flush taken under the same lock orders after every write that completed before it.
 */
#include "fs/io/blockdev.h"

#include <assert.h>
#include <errno.h>
#include <sys/file.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs/io/fault.h"
#include "fs/lib/compiler.h"

#define BDEV_DEFAULT_QD 256u

/* Larger bdev_read()/bdev_write() calls are split so each request's length fits a bdev_io. */
#define BDEV_MAX_CHUNK (1u << 30)

/* One in-flight request: which bdev_io it serves and how much of it is done. */
struct bdev_slot {
	size_t idx;
	uint32_t done;
	bool busy;
};

struct blockdev {
	int fd;
	bool read_only;
	bool direct;
	bool regular;           /* a regular file grows when written past its end */
	int dead;               /* io_uring_enter failed fatally: every later call fails with it */
	uint64_t size;
	pthread_mutex_t lock;   /* everything below, and the ring */
	struct io_uring ring;
	unsigned nslots;
	unsigned nfree;
	struct bdev_slot *slots;
	unsigned *free_slots;   /* stack of free slot numbers */
	struct bdev_stats stats;
	struct bdev_fault fault;
	void (*before_write)(void *arg);   /* bdev_fault_before_write */
	void *before_write_arg;
};

/* What one bdev_read_batch()/bdev_write_batch() call is doing. */
struct batch {
	struct bdev_io *ios;
	size_t n;
	size_t next;            /* first request not yet started */
	unsigned inflight;
	bool write;
};

/* The lock guards mutable state behind const accessors; it is not part of what they read. */
static pthread_mutex_t *bd_lock(const struct blockdev *bd)
{
	return (pthread_mutex_t *)&bd->lock;
}

/* ---- opening ---------------------------------------------------------------------------- */

static int open_flags(const struct bdev_opts *opts)
{
	int flags = O_CLOEXEC | (opts->read_only ? O_RDONLY : O_RDWR);

	return opts->direct ? flags | O_DIRECT : flags;
}

static int probe_size(struct blockdev *bd)
{
	struct stat st;

	if (fstat(bd->fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		bd->regular = true;
		bd->size = (uint64_t)st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return -EINVAL;
	if (ioctl(bd->fd, BLKGETSIZE64, &bd->size) < 0)
		return -errno;
	return 0;
}

/* SUBMIT_ALL keeps submitting past a bad SQE (it gets its own CQE); older kernels lack it. */
static int ring_init(struct blockdev *bd, unsigned qd)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SUBMIT_ALL };
	int rc = io_uring_queue_init_params(qd, &bd->ring, &p);

	if (rc == -EINVAL) {
		struct io_uring_params plain = { 0 };

		rc = io_uring_queue_init_params(qd, &bd->ring, &plain);
	}
	return rc;
}

static int slots_init(struct blockdev *bd, unsigned n)
{
	bd->slots = calloc(n, sizeof(*bd->slots));
	bd->free_slots = calloc(n, sizeof(*bd->free_slots));
	if (!bd->slots || !bd->free_slots)
		return -ENOMEM;
	bd->nslots = n;
	for (unsigned i = 0; i < n; i++)
		bd->free_slots[i] = n - 1 - i;
	bd->nfree = n;
	return 0;
}

static void bd_free(struct blockdev *bd, bool ring_up)
{
	if (ring_up)
		io_uring_queue_exit(&bd->ring);
	/* A clean shutdown lets the volatile cache drain; after a cut it was resolved already. */
	if (bd->fd >= 0 && !fault_power_is_cut(&bd->fault))
		fault_release_held(&bd->fault, bd->fd, true);
	fault_free_held(&bd->fault);
	/* Let go of the lock now: the ring's teardown runs on in the kernel after
	 * io_uring_queue_exit returns and may hold the file a moment longer, and with it a lock
	 * that close() alone would only drop with the last reference (a reopen right after the
	 * close then found the image busy). */
	if (bd->fd >= 0) {
		flock(bd->fd, LOCK_UN);
		close(bd->fd);
	}
	pthread_mutex_destroy(&bd->lock);
	free(bd->slots);
	free(bd->free_slots);
	free(bd);
}

/*
 * The process holding a flock on the same file as `fd`, from /proc/locks (flock locks are
 * invisible to F_GETLK). Lines for waiters ("->") are skipped; 0 if none is found.
 */
static long flock_holder(int fd)
{
	struct stat st;
	char line[256], type[16];
	unsigned maj, min;
	unsigned long ino;
	long pid, found = 0;
	FILE *f;

	if (fstat(fd, &st) < 0 || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strstr(line, "->") ||
		    sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%lu", type, &pid, &maj, &min, &ino) != 5)
			continue;
		if (!strcmp(type, "FLOCK") && ino == st.st_ino && maj == major(st.st_dev) &&
		    min == minor(st.st_dev) && pid != getpid())
			found = pid;
	}
	fclose(f);
	return found;
}

long bdev_lock_holder(const struct blockdev *bd)
{
	return flock_holder(bd->fd);
}

int bdev_lock_wait(struct blockdev *bd, bool exclusive, unsigned wait_ms,
		   void (*waiting)(void *arg, long holder_pid), void *arg)
{
	int op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;

	for (unsigned waited = 0;; waited += 10) {
		if (flock(bd->fd, op) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (waited >= wait_ms)
			return -EBUSY;
		/* Said once, before the first wait: a silent pause of seconds looks like a hang. */
		if (waited == 0 && waiting)
			waiting(arg, flock_holder(bd->fd));
		usleep(10 * 1000);
	}
}

int bdev_lock(struct blockdev *bd, bool exclusive, unsigned wait_ms)
{
	return bdev_lock_wait(bd, exclusive, wait_ms, NULL, NULL);
}

int bdev_open(const char *path, const struct bdev_opts *opts, struct blockdev **out)
{
	static const struct bdev_opts defaults;
	struct blockdev *bd;
	unsigned qd;
	int rc;

	if (!opts)
		opts = &defaults;
	qd = opts->queue_depth ? opts->queue_depth : BDEV_DEFAULT_QD;
	bd = calloc(1, sizeof(*bd));
	if (!bd)
		return -ENOMEM;
	pthread_mutex_init(&bd->lock, NULL);
	bd->read_only = opts->read_only;
	bd->direct = opts->direct;
	bd->fd = open(path, open_flags(opts));
	if (bd->fd < 0) {
		rc = -errno;
		bd_free(bd, false);
		return rc;
	}
	rc = probe_size(bd);
	if (!rc)
		rc = slots_init(bd, qd);
	if (rc) {
		bd_free(bd, false);
		return rc;
	}
	rc = ring_init(bd, qd);
	if (rc) {
		bd_free(bd, false);
		return rc;
	}
	*out = bd;
	return 0;
}

void bdev_close(struct blockdev *bd)
{
	if (bd)
		bd_free(bd, true);
}

uint64_t bdev_size(const struct blockdev *bd)
{
	uint64_t size;

	pthread_mutex_lock(bd_lock(bd));
	size = bd->size;
	pthread_mutex_unlock(bd_lock(bd));
	return size;
}

bool bdev_is_read_only(const struct blockdev *bd)
{
	return bd->read_only;
}

/* ---- running a batch -------------------------------------------------------------------- */

static bool misaligned(const struct bdev_io *io)
{
	return ((io->off | io->len | (uintptr_t)io->buf) & (BDEV_ALIGN - 1)) != 0;
}

/* A request refused before it reaches the ring gets its result here; 0 means "queue it". */
static int precheck(struct blockdev *bd, const struct bdev_io *io, bool write)
{
	if (write && bd->read_only)
		return -EROFS;
	if (bd->direct && misaligned(io))
		return -EINVAL;
	return 0;
}

static void queue_slot(struct blockdev *bd, const struct batch *b, unsigned slot)
{
	const struct bdev_slot *s = &bd->slots[slot];
	const struct bdev_io *io = &b->ios[s->idx];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bd->ring);
	char *buf = (char *)io->buf + s->done;

	/* At most nslots requests are unsubmitted or in flight, and the SQ holds nslots. */
	assert(sqe);
	if (b->write)
		io_uring_prep_write(sqe, bd->fd, buf, io->len - s->done, io->off + s->done);
	else
		io_uring_prep_read(sqe, bd->fd, buf, io->len - s->done, io->off + s->done);
	io_uring_sqe_set_data64(sqe, slot);
}

static void count_request(struct blockdev *bd, bool write)
{
	if (write)
		bd->stats.writes++;
	else
		bd->stats.reads++;
}

/*
 * Decided per write before it is queued, so a fault can fall inside a batch. Returns true if
 * the fault has settled the request (its res is set) and nothing must be queued.
 */
static bool apply_fault(struct blockdev *bd, struct bdev_io *io)
{
	struct bdev_fault *f = &bd->fault;

	switch (fault_write_verdict(f)) {
	case FAULT_FAIL:
		io->res = -EIO;
		return true;
	case FAULT_DROP:
		io->res = 0;
		return true;
	case FAULT_WRITE:
		break;
	}
	if (!f->volatile_cache)
		return false;
	io->res = fault_hold_write(f, io->off, io->buf, io->len);
	/* The power went right after this write: the cache loses what it pleases. */
	if (fault_power_is_cut(f))
		fault_release_held(f, bd->fd, false);
	return true;
}

static void start_request(struct blockdev *bd, struct batch *b)
{
	struct bdev_io *io = &b->ios[b->next];
	unsigned slot;

	io->res = precheck(bd, io, b->write);
	if (io->res)
		return;
	count_request(bd, b->write);
	if (b->write && apply_fault(bd, io))
		return;
	if (io->len == 0)
		return;
	slot = bd->free_slots[--bd->nfree];
	bd->slots[slot] = (struct bdev_slot){ .idx = b->next, .busy = true };
	queue_slot(bd, b, slot);
	b->inflight++;
}

static void fill(struct blockdev *bd, struct batch *b)
{
	for (; b->next < b->n && bd->nfree > 0; b->next++)
		start_request(bd, b);
}

static void release_slot(struct blockdev *bd, struct batch *b, unsigned slot)
{
	bd->slots[slot].busy = false;
	bd->free_slots[bd->nfree++] = slot;
	b->inflight--;
}

static void account_done(struct blockdev *bd, const struct batch *b, const struct bdev_io *io)
{
	if (!b->write) {
		bd->stats.bytes_read += io->len;
		return;
	}
	bd->stats.bytes_written += io->len;
	if (bd->regular && io->off + io->len > bd->size)
		bd->size = io->off + io->len;
}

/* A transfer of 0 bytes is end of file for a read, and no progress for a write: both -EIO. */
static void complete(struct blockdev *bd, struct batch *b, unsigned slot, int res)
{
	struct bdev_slot *s = &bd->slots[slot];
	struct bdev_io *io = &b->ios[s->idx];

	if (res == -EINTR || res == -EAGAIN) {
		queue_slot(bd, b, slot);
		return;
	}
	if (res <= 0) {
		io->res = res ? res : -EIO;
		release_slot(bd, b, slot);
		return;
	}
	s->done += (uint32_t)res;
	if (s->done < io->len) {
		queue_slot(bd, b, slot);
		return;
	}
	account_done(bd, b, io);
	io->res = 0;
	release_slot(bd, b, slot);
}

static void reap(struct blockdev *bd, struct batch *b)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_for_each_cqe(&bd->ring, head, cqe) {
		complete(bd, b, (unsigned)io_uring_cqe_get_data64(cqe), cqe->res);
		seen++;
	}
	io_uring_cq_advance(&bd->ring, seen);
}

/*
 * Submit what is queued and wait for `wait_nr` completions. Transient failures are retried;
 * -EAGAIN/-EBUSY with completions pending return so the caller reaps before trying again.
 * Any other failure leaves requests in the kernel or the SQ that no later call could account
 * for, so the device is dead from then on.
 */
static int submit_and_wait(struct blockdev *bd, unsigned wait_nr)
{
	for (;;) {
		int rc = io_uring_submit_and_wait(&bd->ring, wait_nr);

		if (rc > 0)
			bd->stats.submits++;
		if (rc >= 0)
			return 0;
		if (rc == -EINTR)
			continue;
		if (rc != -EAGAIN && rc != -EBUSY) {
			bd->dead = rc;
			return rc;
		}
		if (io_uring_cq_ready(&bd->ring))
			return 0;
	}
}

/* While requests remain the slots are all busy: refill once half of them are free again. */
static unsigned wait_target(const struct blockdev *bd, const struct batch *b)
{
	unsigned half = bd->nslots / 2;

	if (b->next >= b->n)
		return b->inflight;
	return b->inflight > half ? b->inflight - half : 1;
}

/* The ring failed (the device is now dead): every unfinished request gets the error. */
static void abort_batch(struct blockdev *bd, struct batch *b, int err)
{
	for (unsigned slot = 0; slot < bd->nslots; slot++)
		if (bd->slots[slot].busy)
			b->ios[bd->slots[slot].idx].res = err;
	for (; b->next < b->n; b->next++)
		b->ios[b->next].res = err;
	b->inflight = 0;
}

static int first_error(const struct bdev_io *ios, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ios[i].res)
			return ios[i].res;
	return 0;
}

static void fail_all(struct bdev_io *ios, size_t n, int err)
{
	for (size_t i = 0; i < n; i++)
		ios[i].res = err;
}

static int run_batch(struct blockdev *bd, struct bdev_io *ios, size_t n, bool write)
{
	struct batch b = { .ios = ios, .n = n, .write = write };

	if (bd->dead) {
		fail_all(ios, n, bd->dead);
		return bd->dead;
	}
	for (;;) {
		int rc;

		fill(bd, &b);
		if (b.inflight == 0)
			break;
		rc = submit_and_wait(bd, wait_target(bd, &b));
		if (rc) {
			abort_batch(bd, &b, rc);
			break;
		}
		reap(bd, &b);
	}
	return first_error(ios, n);
}

static int locked_batch(struct blockdev *bd, struct bdev_io *ios, size_t n, bool write)
{
	int rc;

	pthread_mutex_lock(&bd->lock);
	rc = run_batch(bd, ios, n, write);
	pthread_mutex_unlock(&bd->lock);
	return rc;
}

/* With a volatile cache, reads see what it holds. */
static void overlay_held(struct blockdev *bd, struct bdev_io *ios, size_t n)
{
	if (!bd->fault.nheld)
		return;
	pthread_mutex_lock(&bd->lock);
	for (size_t i = 0; i < n; i++)
		if (ios[i].res == 0)
			fault_overlay_reads(&bd->fault, ios[i].off, ios[i].buf, ios[i].len);
	pthread_mutex_unlock(&bd->lock);
}

void bdev_readahead(struct blockdev *bd, const uint64_t *offs, size_t n, uint32_t len)
{
	size_t i = 0;

	if (bd->direct || bd->dead)
		return;
	while (i < n) {
		uint64_t start = offs[i], end = offs[i] + len;
		while (++i < n && offs[i] == end)
			end += len;
		if (end <= bd->size)
			(void)readahead(bd->fd, (off64_t)start, (size_t)(end - start));
	}
}

int bdev_drop_page_cache(struct blockdev *bd)
{
	int err;

	if (bd->direct)
		return 0;
	if (fdatasync(bd->fd) < 0)
		return -errno;
	err = posix_fadvise(bd->fd, 0, 0, POSIX_FADV_DONTNEED);
	return -err;
}

int bdev_read_batch(struct blockdev *bd, struct bdev_io *ios, size_t n)
{
	int rc = locked_batch(bd, ios, n, false);

	overlay_held(bd, ios, n);
	return rc;
}

int bdev_write_batch(struct blockdev *bd, struct bdev_io *ios, size_t n)
{
	void (*fn)(void *arg);
	void *arg;

	pthread_mutex_lock(&bd->lock);
	fn = bd->before_write;
	arg = bd->before_write_arg;
	bd->before_write = NULL;
	pthread_mutex_unlock(&bd->lock);
	if (fn)
		fn(arg);
	return locked_batch(bd, ios, n, true);
}

/* One request per chunk: each chunk is its own write as far as fault numbering goes. */
static int single(struct blockdev *bd, uint64_t off, void *buf, size_t len, bool write)
{
	do {
		struct bdev_io io = { .off = off, .buf = buf, .len = (uint32_t)MIN(len, BDEV_MAX_CHUNK) };
		int rc = locked_batch(bd, &io, 1, write);

		if (!write)
			overlay_held(bd, &io, 1);
		if (rc)
			return rc;
		off += io.len;
		buf = (char *)buf + io.len;
		len -= io.len;
	} while (len > 0);
	return 0;
}

int bdev_read(struct blockdev *bd, uint64_t off, void *buf, size_t len)
{
	return single(bd, off, buf, len, false);
}

int bdev_write(struct blockdev *bd, uint64_t off, const void *buf, size_t len)
{
	return single(bd, off, (void *)buf, len, true);
}

/* ---- flush ------------------------------------------------------------------------------ */

static int fsync_once(struct blockdev *bd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bd->ring);
	struct io_uring_cqe *cqe;
	int rc;

	/* No batch is in flight outside the lock, so the SQ is empty and ours is the only CQE. */
	assert(sqe);
	io_uring_prep_fsync(sqe, bd->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, 0);
	rc = submit_and_wait(bd, 1);
	if (rc)
		return rc;
	rc = io_uring_peek_cqe(&bd->ring, &cqe);
	if (rc)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(&bd->ring, cqe);
	return rc;
}

static int run_fsync(struct blockdev *bd)
{
	int rc;

	if (bd->dead)
		return bd->dead;
	do
		rc = fsync_once(bd);
	while (rc == -EINTR || rc == -EAGAIN);
	return rc;
}

int bdev_flush(struct blockdev *bd)
{
	int rc = 0;

	pthread_mutex_lock(&bd->lock);
	bd->stats.flushes++;
	if (!fault_power_is_cut(&bd->fault)) {
		rc = fault_release_held(&bd->fault, bd->fd, true);
		if (rc == 0)
			rc = run_fsync(bd);
	}
	pthread_mutex_unlock(&bd->lock);
	return rc;
}

/* ---- stats and fault injection ---------------------------------------------------------- */

void bdev_get_stats(const struct blockdev *bd, struct bdev_stats *st)
{
	pthread_mutex_lock(bd_lock(bd));
	*st = bd->stats;
	pthread_mutex_unlock(bd_lock(bd));
}

void bdev_fault_fail_write(struct blockdev *bd, uint64_t n)
{
	pthread_mutex_lock(&bd->lock);
	fault_arm_fail(&bd->fault, n);
	pthread_mutex_unlock(&bd->lock);
}

void bdev_fault_cut_power(struct blockdev *bd, uint64_t n)
{
	pthread_mutex_lock(&bd->lock);
	fault_arm_cut(&bd->fault, n);
	pthread_mutex_unlock(&bd->lock);
}

void bdev_fault_volatile_cache(struct blockdev *bd, uint64_t seed)
{
	pthread_mutex_lock(&bd->lock);
	bd->fault.volatile_cache = true;
	bd->fault.rng = seed;
	pthread_mutex_unlock(&bd->lock);
}

void bdev_fault_clear(struct blockdev *bd)
{
	pthread_mutex_lock(&bd->lock);
	fault_disarm(&bd->fault);
	pthread_mutex_unlock(&bd->lock);
}

void bdev_fault_before_write(struct blockdev *bd, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&bd->lock);
	bd->before_write = fn;
	bd->before_write_arg = arg;
	pthread_mutex_unlock(&bd->lock);
}

bool bdev_power_is_cut(const struct blockdev *bd)
{
	bool cut;

	pthread_mutex_lock(bd_lock(bd));
	cut = fault_power_is_cut(&bd->fault);
	pthread_mutex_unlock(bd_lock(bd));
	return cut;
}
