/*
 * fsx [options] DIR: a data-verifying random-operation exerciser, after the classic fsx.
 *
 * Keeps an in-memory model of N files in DIR (their bytes and size), each open through one or
 * two descriptors, and runs a seeded stream of random operations against both: writes (unaligned,
 * crossing 4 KiB boundaries, past EOF to leave holes, now and then 1-4 MiB), appends through an
 * O_APPEND descriptor, reads and mapped reads checked byte for byte, truncates up and down, every
 * fallocate mode, copy_file_range between and within files, SEEK_DATA/SEEK_HOLE checked against
 * the model, fsync/fdatasync, close and reopen, renames, stat. Every few thousand operations and
 * at the end every file is read whole and compared. It runs on any directory: tmpfs, ext4, the
 * cowfs FUSE mount.
 *
 * The run is deterministic given the seed (printed at start): a failure reproduces with -S.
 * On a mismatch it prints the operation number, seed, file, the last operations on that file,
 * the first differing offset and a hexdump of expected against read bytes, and exits 1; so does
 * any system call that should not fail. The files are left in DIR after a failure, removed after
 * a clean run (unless -k).
 *
 *   fsx [options] DIR
 *     -N OPS      operations to run (default 100000)
 *     -S SEED     PRNG seed (default: from the clock; printed)
 *     -n FILES    files in the model (default 4)
 *     -l MAXLEN   largest file size (default 8M; K, M, G suffixes)
 *     -o MAXOP    largest single operation length (default 4M)
 *     -x OPS      operations to leave out, comma separated: write, append, read, mmap, truncate,
 *                 falloc, fallockeep, punch, zero, zerokeep, copy, seek, fsync, reopen, rename,
 *                 stat; "fallocate" means all five fallocate modes
 *     -c K        read every file whole and compare every K operations (default 2000; 0: only
 *                 at the end)
 *     -R CMD      every K operations (-r) close every descriptor, run CMD through the shell
 *                 (e.g. unmount and mount again; FSX_DIR holds DIR, FSX_OP the operation
 *                 number), reopen and verify every file; a non-zero exit status is a failure
 *     -r K        interval for -R (default 10000); without -R just close, reopen and verify
 *     -p K        print progress every K operations
 *     -q          quiet: only errors and the final line
 *     -k          keep the files after a clean run
 *     --log FILE  write every operation to FILE as it runs
 *
 * Fallocate modes that fail with EOPNOTSUPP on their first use are left out from then on (and
 * listed at the end); EOPNOTSUPP after a success is a failure.
 *
 * Examples:
 *   fsx -N 100000 /dev/shm/fsx
 *   fsx -S 42 -N 20000 -x mmap,copy -p 5000 /mnt/cowfs/t
 *   fsx -N 50000 -r 5000 -R 'umount /mnt/cowfs && cowfs mount img /mnt/cowfs' /mnt/cowfs/t
 *
 * Build: cc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o fsx tests/integ/fsx.c
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define BLOCK 4096ull		/* the boundary that offsets and lengths like to sit on or cross */
#define LOG_RING 64		/* operations remembered per file for a failure report */
#define LOG_SHOWN 50		/* of which a failure report shows this many */

enum op_kind {
	OP_WRITE, OP_APPEND, OP_READ, OP_MMAP, OP_TRUNCATE,
	OP_FALLOC, OP_FALLOC_KEEP, OP_PUNCH, OP_ZERO, OP_ZERO_KEEP,
	OP_COPY, OP_SEEK, OP_FSYNC, OP_REOPEN, OP_RENAME, OP_STAT,
	OP_RANDOM_KINDS,		/* the kinds above are drawn at random; these two are not */
	OP_VERIFY = OP_RANDOM_KINDS, OP_REMOUNT,
	OP_KINDS
};

/* One operation as the log remembers it; off2 and result mean what the kind says (describe). */
struct logent {
	uint64_t opnum;
	enum op_kind op;
	int file, file2;	/* file2: the other file of a copy or swap, else -1 */
	int fdi;		/* which of the file's descriptors (0, 1), -1 for none */
	uint64_t off, len, off2;
	int64_t result;
	int flag;		/* kind-specific: zero-filled write, fdatasync, SEEK_HOLE, ... */
	uint64_t size;		/* the model's size of `file` after the operation */
};

struct mfile {
	unsigned char *data;	/* the model's bytes: maxlen of them, zero from size on */
	uint64_t size;
	uint64_t gen;		/* the file's name in DIR is fsx-<gen> */
	int fd[2];		/* fd[0] O_RDWR, fd[1] O_RDWR|O_APPEND or -1 */
	struct logent ring[LOG_RING];
	uint64_t logged;	/* operations ever logged on this file; ring[logged % LOG_RING] next */
};

struct opts {
	uint64_t nops, seed, check_every, remount_every, progress;
	bool seed_given, quiet, keep;
	unsigned nfiles;
	uint64_t maxlen, maxop;
	const char *dir, *remount_cmd, *log_path;
	bool off[OP_RANDOM_KINDS];	/* left out by -x */
};

struct stats {
	uint64_t count[OP_KINDS];
	uint64_t bytes_written, bytes_read;
	uint64_t short_copies;		/* copy_file_range calls that stopped short of source EOF */
	uint64_t seek_checks;
};

/* The run: options, PRNG, the model and the descriptors, passed to every function. */
struct fsx {
	struct opts opt;
	uint64_t rng;
	int dirfd;
	struct mfile *files;
	unsigned char *scratch;		/* maxlen bytes: what reads return */
	uint64_t opnum;
	uint64_t next_gen;
	struct logent *cur;		/* the operation under way, for a failure report */
	bool created;			/* files exist in DIR: a failure leaves them there */
	bool unsupported[OP_RANDOM_KINDS];
	bool succeeded[OP_RANDOM_KINDS];
	struct stats st;
	FILE *log;
	long pagesize;
	double start;
	int argc;
	char **argv;
};

struct op_desc {
	const char *name;
	unsigned weight;
	bool (*run)(struct fsx *f, struct logent *e);	/* false: not applicable now, draw again */
};

static const struct op_desc ops[OP_KINDS];

/* ---- PRNG: splitmix64, so a seed gives one stream on every machine ---- */

static uint64_t rand64(struct fsx *f)
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static uint64_t rand_below(struct fsx *f, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rand64(f) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static uint64_t rand_range(struct fsx *f, uint64_t lo, uint64_t hi)
{
	return lo + rand_below(f, hi - lo + 1);
}

static bool one_in(struct fsx *f, unsigned n)
{
	return rand_below(f, n) == 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the data pattern ---- */

/*
 * What the write of operation `opnum` puts at file offset `off`: never zero (so it cannot pass
 * for a hole), different at neighbouring offsets (so shifted data shows) and between operations
 * (so stale data shows). stamp = opnum % 255 can be recovered from a byte and its offset.
 */
static unsigned char pattern_byte(uint64_t off, unsigned stamp)
{
	return 1 + (off + (off >> 8) * 13 + stamp * 37) % 255;
}

/* 193 is 37's inverse mod 255. */
_Static_assert(37 * 193 % 255 == 1, "pattern stamp inverse");

static unsigned pattern_stamp(uint64_t off, unsigned char byte)
{
	uint64_t v = (byte + 255 * 256 - 1 - (off + (off >> 8) * 13) % 255) % 255;
	return v * 193 % 255;
}

/* pattern_byte over a range, a 256-byte run at a time: within a run the pattern steps by one
 * (mod 255), so each run is a slice of 1, 2, ..., 255, 1, 2, ... */
static void fill_pattern(unsigned char *dst, uint64_t off, uint64_t len, unsigned stamp)
{
	unsigned char steps[255 + 256];
	for (unsigned i = 0; i < sizeof(steps); i++)
		steps[i] = 1 + i % 255;
	for (uint64_t end = off + len; off < end;) {
		uint64_t run = min_u64((off | 255) + 1, end) - off;
		memcpy(dst, steps + pattern_byte(off, stamp) - 1, run);
		dst += run;
		off += run;
	}
}

/* ---- the operation log ---- */

static const char *file_name(const struct mfile *m, char *buf, size_t n)
{
	snprintf(buf, n, "fsx-%" PRIu64, m->gen);
	return buf;
}

static const char *falloc_mode_name(enum op_kind op)
{
	switch (op) {
	case OP_FALLOC: return "0";
	case OP_FALLOC_KEEP: return "KEEP_SIZE";
	case OP_PUNCH: return "PUNCH_HOLE|KEEP_SIZE";
	case OP_ZERO: return "ZERO_RANGE";
	case OP_ZERO_KEEP: return "ZERO_RANGE|KEEP_SIZE";
	default: return "?";
	}
}

static void describe_seek(const struct logent *e, char *buf, size_t n)
{
	const char *whence = e->flag ? "SEEK_HOLE" : "SEEK_DATA";
	if (e->result < 0)
		snprintf(buf, n, "%s f%d fd%d from 0x%" PRIx64 " -> ENXIO", whence, e->file, e->fdi,
			 e->off);
	else
		snprintf(buf, n, "%s f%d fd%d from 0x%" PRIx64 " -> 0x%" PRIx64, whence, e->file,
			 e->fdi, e->off, (uint64_t)e->result);
}

static void describe_rename(const struct logent *e, char *buf, size_t n)
{
	if (e->file2 >= 0)
		snprintf(buf, n, "rename  swap names of f%d and f%d (fsx-%" PRIu64 " <-> fsx-%" PRIu64
			 ")", e->file, e->file2, e->off, e->off2);
	else
		snprintf(buf, n, "rename  f%d fsx-%" PRIu64 " -> fsx-%" PRIu64, e->file, e->off,
			 e->off2);
}

/* One line for an operation, without its number and resulting size. */
static void describe_op(const struct logent *e, char *buf, size_t n)
{
	switch (e->op) {
	case OP_WRITE:
		snprintf(buf, n, "write   f%d fd%d off 0x%" PRIx64 " len 0x%" PRIx64 "%s", e->file,
			 e->fdi, e->off, e->len, e->flag ? " (zeros)" : "");
		break;
	case OP_APPEND:
		snprintf(buf, n, "append  f%d fd%d len 0x%" PRIx64 " at 0x%" PRIx64
			 " (pwrite offset 0x%" PRIx64 " ignored)%s", e->file, e->fdi, e->len, e->off,
			 e->off2, e->flag ? " via F_SETFL O_APPEND" : "");
		break;
	case OP_READ:
	case OP_MMAP:
		snprintf(buf, n, "%s f%d fd%d off 0x%" PRIx64 " len 0x%" PRIx64 " -> 0x%" PRIx64,
			 e->op == OP_READ ? "read   " : "mapread", e->file, e->fdi, e->off, e->len,
			 (uint64_t)e->result);
		break;
	case OP_TRUNCATE:
		snprintf(buf, n, "truncate f%d fd%d 0x%" PRIx64 " -> 0x%" PRIx64, e->file, e->fdi,
			 e->off2, e->off);
		break;
	case OP_FALLOC: case OP_FALLOC_KEEP: case OP_PUNCH: case OP_ZERO: case OP_ZERO_KEEP:
		snprintf(buf, n, "fallocate(%s) f%d fd%d off 0x%" PRIx64 " len 0x%" PRIx64 "%s",
			 falloc_mode_name(e->op), e->file, e->fdi, e->off, e->len,
			 e->result < 0 ? " -> EOPNOTSUPP" : "");
		break;
	case OP_COPY:
		snprintf(buf, n, "copy    f%d off 0x%" PRIx64 " -> f%d off 0x%" PRIx64 " len 0x%" PRIx64
			 " -> copied 0x%" PRIx64 " in %d calls", e->file, e->off, e->file2, e->off2,
			 e->len, (uint64_t)e->result, e->flag);
		break;
	case OP_SEEK:
		describe_seek(e, buf, n);
		break;
	case OP_FSYNC:
		snprintf(buf, n, "%s f%d fd%d", e->flag ? "fdatasync" : "fsync", e->file, e->fdi);
		break;
	case OP_REOPEN:
		snprintf(buf, n, "reopen  f%d with %d descriptor%s", e->file, e->flag,
			 e->flag == 1 ? "" : "s");
		break;
	case OP_RENAME:
		describe_rename(e, buf, n);
		break;
	case OP_STAT:
		snprintf(buf, n, "stat    f%d fd%d", e->file, e->fdi);
		break;
	case OP_VERIFY:
		snprintf(buf, n, "verify  f%d whole file", e->file);
		break;
	case OP_REMOUNT:
		snprintf(buf, n, "remount (close all, run -R command, reopen)");
		break;
	default:
		snprintf(buf, n, "?");
	}
}

static void print_logent(FILE *out, const struct logent *e, const char *mark)
{
	char what[256];
	describe_op(e, what, sizeof(what));
	fprintf(out, "  %8" PRIu64 "  %-90s size 0x%" PRIx64 "%s\n", e->opnum, what, e->size, mark);
}

static void ring_push(struct mfile *m, const struct logent *e)
{
	m->ring[m->logged % LOG_RING] = *e;
	m->logged++;
}

/* Start an operation's log entry; it is committed to the file rings when the operation is done. */
static void log_begin(struct fsx *f, struct logent *e, enum op_kind op, int file)
{
	*e = (struct logent){ .opnum = f->opnum, .op = op, .file = file, .file2 = -1, .fdi = -1,
			      .result = 0 };
	f->cur = e;
}

static void log_commit(struct fsx *f, struct logent *e)
{
	if (e->file >= 0) {
		e->size = f->files[e->file].size;
		ring_push(&f->files[e->file], e);
	}
	if (e->file2 >= 0 && e->file2 != e->file)
		ring_push(&f->files[e->file2], e);
	if (f->log)
		print_logent(f->log, e, "");
	f->st.count[e->op]++;
	f->cur = NULL;
}

/* ---- failure reports ---- */

/* An argument as the shell needs it: single-quoted unless plain. */
static void print_shell_word(FILE *out, const char *w)
{
	if (*w && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			 "-_./=:,+%@") == strlen(w)) {
		fputs(w, out);
		return;
	}
	fputc('\'', out);
	for (; *w; w++)
		fputs(*w == '\'' ? "'\\''" : (char[]){ *w, 0 }, out);
	fputc('\'', out);
}

static void print_rerun(const struct fsx *f)
{
	fprintf(stderr, "fsx: rerun:");
	for (int i = 0; i < f->argc; i++) {
		fputc(' ', stderr);
		print_shell_word(stderr, f->argv[i]);
	}
	if (!f->opt.seed_given)
		fprintf(stderr, " (with -S %" PRIu64 ")", f->opt.seed);
	fprintf(stderr, "\n");
}

/* The last operations on `file`, the one under way marked, then how to rerun; exits 1. */
static void __attribute__((noreturn)) report_end(struct fsx *f, int file)
{
	if (file >= 0) {
		const struct mfile *m = &f->files[file];
		uint64_t shown = min_u64(m->logged, LOG_SHOWN);
		char name[32];
		fprintf(stderr, "fsx: the last %" PRIu64 " operations on f%d (now %s):\n", shown,
			file, file_name(m, name, sizeof(name)));
		for (uint64_t i = m->logged - shown; i < m->logged; i++)
			print_logent(stderr, &m->ring[i % LOG_RING], "");
	}
	if (f->cur) {
		if (f->cur->file >= 0)
			f->cur->size = f->files[f->cur->file].size;
		print_logent(stderr, f->cur, "   <-- failed here");
	}
	print_rerun(f);
	if (f->created)
		fprintf(stderr, "fsx: files left in %s for inspection\n", f->opt.dir);
	if (f->log)
		fflush(f->log);
	exit(1);
}

static void __attribute__((format(printf, 3, 4)))
report_begin(struct fsx *f, int file, const char *fmt, ...)
{
	va_list ap;
	char name[32];
	fflush(stdout);
	fprintf(stderr, "\nfsx: FAILED at op %" PRIu64 " (seed %" PRIu64 "), ", f->opnum,
		f->opt.seed);
	if (file >= 0)
		fprintf(stderr, "f%d %s, ", file, file_name(&f->files[file], name, sizeof(name)));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* A system call that should not fail did: what, errno, the log; exits 1. */
static void __attribute__((noreturn, format(printf, 4, 5)))
fail_errno(struct fsx *f, int file, int err, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	report_begin(f, file, "%s: %s (errno %d)", what, strerror(err), err);
	report_end(f, file);
}

/* ---- comparing and the mismatch report ---- */

static uint64_t first_diff(const unsigned char *a, const unsigned char *b, uint64_t len)
{
	if (memcmp(a, b, len) == 0)
		return len;
	uint64_t i = 0;
	while (a[i] == b[i])
		i++;
	return i;
}

static uint64_t last_diff(const unsigned char *a, const unsigned char *b, uint64_t len)
{
	uint64_t i = len;
	while (i > 0 && a[i - 1] == b[i - 1])
		i--;
	return i - 1;
}

static uint64_t count_diff(const unsigned char *a, const unsigned char *b, uint64_t len)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < len; i++)
		n += a[i] != b[i];
	return n;
}

static void hexdump_row(const char *label, uint64_t start, const unsigned char *p, uint64_t n)
{
	fprintf(stderr, "    %-9s 0x%08" PRIx64 ":", label, start);
	for (uint64_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

/* 32 bytes around file offset `at`, expected above read, differences marked. */
static void hexdump_around(const unsigned char *exp, const unsigned char *got, uint64_t off,
			   uint64_t len, uint64_t at)
{
	uint64_t start = (at & ~15ull) >= off + 16 ? (at & ~15ull) - 16 : off;
	uint64_t end = min_u64(start + 32, off + len);
	for (uint64_t row = start; row < end; row += 16) {
		uint64_t n = min_u64(16, end - row);
		hexdump_row("expected", row, exp + (row - off), n);
		hexdump_row("read", row, got + (row - off), n);
		if (first_diff(exp + (row - off), got + (row - off), n) == n)
			continue;
		fprintf(stderr, "    %-9s %10s ", "", "");
		for (uint64_t i = 0; i < n; i++)
			fprintf(stderr, "%s", exp[row - off + i] != got[row - off + i] ? " ^^" : "   ");
		fprintf(stderr, "\n");
	}
}

/* Which logged write or append of `file` the byte at `at` looks like it came from, if any. */
static void explain_byte(const struct fsx *f, int file, const char *which, uint64_t at,
			 unsigned char byte)
{
	const struct mfile *m = &f->files[file];
	if (byte == 0) {
		fprintf(stderr, "fsx:   %s byte 0x00: hole, punched, zeroed or never written\n",
			which);
		return;
	}
	unsigned stamp = pattern_stamp(at, byte);
	fprintf(stderr, "fsx:   %s byte 0x%02x: if fsx wrote it at this offset, an op numbered %u "
		"mod 255 did", which, byte, stamp);
	uint64_t first = m->logged > LOG_RING ? m->logged - LOG_RING : 0;
	for (uint64_t i = m->logged; i-- > first;) {
		const struct logent *e = &m->ring[i % LOG_RING];
		bool wrote_pattern = e->op == OP_APPEND || (e->op == OP_WRITE && !e->flag);
		if (wrote_pattern && e->opnum % 255 == stamp) {
			fprintf(stderr, ": op %" PRIu64 " (%s 0x%" PRIx64 "+0x%" PRIx64 ")\n", e->opnum,
				ops[e->op].name, e->off, e->len);
			return;
		}
	}
	fprintf(stderr, " (no such write of this file in its log)\n");
}

/*
 * Check `got`, what the file returned for [off, off + len), against the model. On a
 * mismatch report where, how much, the bytes, and the log; exit 1.
 */
static void check_bytes(struct fsx *f, int file, const char *how, uint64_t off,
			const unsigned char *got, uint64_t len)
{
	const unsigned char *exp = f->files[file].data + off;
	uint64_t first = first_diff(exp, got, len);
	if (first == len)
		return;
	uint64_t last = last_diff(exp, got, len);
	report_begin(f, file, "%s returned wrong data", how);
	fprintf(stderr, "fsx:   range 0x%" PRIx64 "..0x%" PRIx64 " (len 0x%" PRIx64
		"), model size 0x%" PRIx64 "\n", off, off + len, len, f->files[file].size);
	fprintf(stderr, "fsx:   first difference at 0x%" PRIx64 ", last at 0x%" PRIx64 ", %" PRIu64
		" bytes differ\n", off + first, off + last, count_diff(exp, got, len));
	hexdump_around(exp, got, off, len, off + first);
	explain_byte(f, file, "expected", off + first, exp[first]);
	explain_byte(f, file, "read", off + first, got[first]);
	report_end(f, file);
}

static bool all_zero(const unsigned char *p, uint64_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* ---- descriptors ---- */

static int pick_fdi(struct fsx *f, const struct mfile *m)
{
	return m->fd[1] >= 0 && one_in(f, 2) ? 1 : 0;
}

static void open_file(struct fsx *f, int file, int extra_flags)
{
	struct mfile *m = &f->files[file];
	char name[32];
	file_name(m, name, sizeof(name));
	m->fd[0] = openat(f->dirfd, name, O_RDWR | extra_flags, 0644);
	if (m->fd[0] < 0)
		fail_errno(f, file, errno, "open %s", name);
	m->fd[1] = -1;
	if (one_in(f, 2)) {
		m->fd[1] = openat(f->dirfd, name, O_RDWR | O_APPEND);
		if (m->fd[1] < 0)
			fail_errno(f, file, errno, "open %s O_APPEND", name);
	}
}

static void close_file(struct fsx *f, int file)
{
	struct mfile *m = &f->files[file];
	for (int i = 0; i < 2; i++) {
		if (m->fd[i] >= 0 && close(m->fd[i]) < 0)
			fail_errno(f, file, errno, "close fd%d", i);
		m->fd[i] = -1;
	}
}

static void open_dir(struct fsx *f)
{
	f->dirfd = open(f->opt.dir, O_RDONLY | O_DIRECTORY);
	if (f->dirfd < 0)
		fail_errno(f, -1, errno, "open directory %s", f->opt.dir);
}

/* ---- choosing offsets and lengths ---- */

/*
 * A length for an operation: mostly small, often up to 64 KiB, sometimes up to 256 KiB, 1.5%
 * huge (1-4 MiB); a fifth of them whole blocks. At most `room` (> 0) and -o.
 */
static uint64_t pick_len(struct fsx *f, uint64_t room)
{
	unsigned cls = rand_below(f, 200);
	uint64_t len;
	if (cls < 90)
		len = rand_range(f, 1, 2 * BLOCK);
	else if (cls < 160)
		len = rand_range(f, 1, 64 * KiB);
	else if (cls < 197)
		len = rand_range(f, 1, 256 * KiB);
	else
		len = rand_range(f, 1 * MiB, 4 * MiB);
	if (len >= BLOCK && one_in(f, 5))
		len &= ~(BLOCK - 1);
	return min_u64(len, min_u64(room, f->opt.maxop));
}

/* Nudge an offset onto a block boundary, or just before one so the operation crosses it. */
static uint64_t align_off(struct fsx *f, uint64_t off)
{
	unsigned how = rand_below(f, 100);
	if (how < 25)
		return off & ~(BLOCK - 1);
	if (how < 45 && off >= BLOCK)
		return (off & ~(BLOCK - 1)) - rand_range(f, 1, 64);
	return off;
}

/* An offset in [0, maxlen): mostly inside the file, sometimes at EOF, sometimes past it. */
static uint64_t pick_off(struct fsx *f, uint64_t size)
{
	uint64_t maxlen = f->opt.maxlen, off;
	unsigned where = rand_below(f, 100);
	if (where < 70 && size > 0)
		off = rand_below(f, size);
	else if (where < 80)
		off = size;
	else
		off = rand_range(f, min_u64(size, maxlen - 1), maxlen - 1);
	return min_u64(align_off(f, off), maxlen - 1);
}

/* ---- system calls that must move every byte ---- */

static void pwrite_all(struct fsx *f, int file, int fd, const void *buf, uint64_t len, uint64_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);
	if (n < 0)
		fail_errno(f, file, errno, "pwrite(off 0x%" PRIx64 ", len 0x%" PRIx64 ")", off, len);
	if ((uint64_t)n != len) {
		report_begin(f, file, "pwrite(off 0x%" PRIx64 ", len 0x%" PRIx64 ") wrote 0x%zx", off,
			     len, (size_t)n);
		report_end(f, file);
	}
	f->st.bytes_written += len;
}

/* Read [off, off + len) into scratch; the file must return exactly `want` bytes. */
static void pread_exact(struct fsx *f, int file, int fd, uint64_t off, uint64_t len, uint64_t want)
{
	ssize_t n = pread(fd, f->scratch, len, off);
	if (n < 0)
		fail_errno(f, file, errno, "pread(off 0x%" PRIx64 ", len 0x%" PRIx64 ")", off, len);
	if ((uint64_t)n != want) {
		report_begin(f, file, "pread(off 0x%" PRIx64 ", len 0x%" PRIx64 ") returned 0x%zx, "
			     "model says 0x%" PRIx64 " (size 0x%" PRIx64 ")", off, len, (size_t)n,
			     want, f->files[file].size);
		report_end(f, file);
	}
	f->st.bytes_read += want;
}

static void check_size(struct fsx *f, int file, int fd, const char *how)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail_errno(f, file, errno, "fstat");
	if ((uint64_t)st.st_size != f->files[file].size) {
		report_begin(f, file, "%s: st_size 0x%" PRIx64 ", model size 0x%" PRIx64, how,
			     (uint64_t)st.st_size, f->files[file].size);
		report_end(f, file);
	}
}

/* ---- the operations ---- */

static bool op_write(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	e->fdi = 0;
	e->off = pick_off(f, m->size);
	e->len = pick_len(f, f->opt.maxlen - e->off);
	e->flag = one_in(f, 32);
	if (e->flag)
		memset(m->data + e->off, 0, e->len);
	else
		fill_pattern(m->data + e->off, e->off, e->len, f->opnum % 255);
	pwrite_all(f, e->file, m->fd[0], m->data + e->off, e->len, e->off);
	m->size = max_u64(m->size, e->off + e->len);
	return true;
}

static void set_append(struct fsx *f, int file, int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_APPEND : fl & ~O_APPEND) < 0)
		fail_errno(f, file, errno, "fcntl O_APPEND %s", on ? "on" : "off");
}

/*
 * pwrite on an O_APPEND descriptor: Linux writes at EOF whatever the offset, so the offset
 * passed is random and the model appends. A file with no O_APPEND descriptor gets O_APPEND set
 * on its first one for the call.
 */
static bool op_append(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	if (m->size >= f->opt.maxlen)
		return false;
	e->fdi = m->fd[1] >= 0 ? 1 : 0;
	e->flag = e->fdi == 0;
	e->off = m->size;
	e->len = pick_len(f, f->opt.maxlen - m->size);
	e->off2 = rand_below(f, f->opt.maxlen);
	fill_pattern(m->data + e->off, e->off, e->len, f->opnum % 255);
	if (e->flag)
		set_append(f, e->file, m->fd[0], true);
	pwrite_all(f, e->file, m->fd[e->fdi], m->data + e->off, e->len, e->off2);
	if (e->flag)
		set_append(f, e->file, m->fd[0], false);
	m->size += e->len;
	return true;
}

static bool op_read(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	e->fdi = pick_fdi(f, m);
	e->off = pick_off(f, m->size);
	e->len = pick_len(f, f->opt.maxlen - e->off);
	uint64_t want = e->off < m->size ? min_u64(e->len, m->size - e->off) : 0;
	pread_exact(f, e->file, m->fd[e->fdi], e->off, e->len, want);
	e->result = want;
	check_bytes(f, e->file, "pread", e->off, f->scratch, want);
	return true;
}

/*
 * The one piece of global state. A mapped read of a file shorter than the kernel thinks, or
 * failing I/O, raises SIGBUS rather than returning an error, and a signal handler cannot be
 * handed the run's state: it jumps back into copy_from_mapping, which reports the failure.
 */
static sigjmp_buf sigbus_jump;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jump, sig);
}

/* memcpy from a mapping; false if touching it raised SIGBUS. */
static bool copy_from_mapping(void *dst, const void *src, uint64_t len)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	bool ok = true;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(sigbus_jump, 1) == 0)
		memcpy(dst, src, len);
	else
		ok = false;
	sigaction(SIGBUS, &old, NULL);
	return ok;
}

/*
 * A mapped read of [off, off + len) inside the file, checked to the end of the page holding
 * the range's end: if that is the file's last page, the bytes past EOF in it must read zero
 * (the model holds zeros there).
 */
static bool op_mmap(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	if (m->size == 0)
		return false;
	uint64_t pg = f->pagesize;
	e->fdi = pick_fdi(f, m);
	e->off = align_off(f, rand_below(f, m->size));
	e->len = pick_len(f, m->size - e->off);
	uint64_t map_off = e->off & ~(pg - 1);
	uint64_t map_end = (e->off + e->len + pg - 1) & ~(pg - 1);
	uint64_t check_end = min_u64(map_end, f->opt.maxlen);
	check_size(f, e->file, m->fd[e->fdi], "before mmap");
	void *p = mmap(NULL, map_end - map_off, PROT_READ, MAP_SHARED, m->fd[e->fdi], map_off);
	if (p == MAP_FAILED)
		fail_errno(f, e->file, errno, "mmap(off 0x%" PRIx64 ", len 0x%" PRIx64 ")", map_off,
			   map_end - map_off);
	bool ok = copy_from_mapping(f->scratch, (char *)p + (e->off - map_off), check_end - e->off);
	munmap(p, map_end - map_off);
	if (!ok) {
		report_begin(f, e->file, "SIGBUS reading the mapping");
		report_end(f, e->file);
	}
	e->result = check_end - e->off;
	f->st.bytes_read += e->len;
	check_bytes(f, e->file, "mapped read (bytes past EOF in the last page must be zero)", e->off,
		    f->scratch, check_end - e->off);
	return true;
}

static bool op_truncate(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	uint64_t to;
	if (one_in(f, 2))
		to = rand_below(f, m->size + 1);
	else
		to = rand_range(f, m->size, f->opt.maxlen);
	if (one_in(f, 4))
		to &= ~(BLOCK - 1);
	e->fdi = pick_fdi(f, m);
	e->off = to;
	e->off2 = m->size;
	if (ftruncate(m->fd[e->fdi], to) < 0)
		fail_errno(f, e->file, errno, "ftruncate(0x%" PRIx64 ")", to);
	if (to < m->size)
		memset(m->data + to, 0, m->size - to);
	m->size = to;
	return true;
}

static int falloc_mode(enum op_kind op)
{
	switch (op) {
	case OP_FALLOC_KEEP: return FALLOC_FL_KEEP_SIZE;
	case OP_PUNCH: return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	case OP_ZERO: return FALLOC_FL_ZERO_RANGE;
	case OP_ZERO_KEEP: return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	default: return 0;
	}
}

/* EOPNOTSUPP on a mode's first use leaves that mode out; after it has worked it is a failure. */
static void falloc_unsupported(struct fsx *f, struct logent *e)
{
	if (f->succeeded[e->op])
		fail_errno(f, e->file, EOPNOTSUPP, "fallocate(%s) worked before, now",
			   falloc_mode_name(e->op));
	f->unsupported[e->op] = true;
	e->result = -1;
	if (!f->opt.quiet)
		printf("fsx: fallocate(%s) is not supported here (EOPNOTSUPP): %s left out\n",
		       falloc_mode_name(e->op), ops[e->op].name);
}

/* The model after a fallocate that worked: the size grows unless KEEP_SIZE; punch and zero
 * clear the bytes inside the (new) size. */
static void falloc_model(struct mfile *m, int mode, uint64_t off, uint64_t len)
{
	if (!(mode & FALLOC_FL_KEEP_SIZE))
		m->size = max_u64(m->size, off + len);
	if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) && off < m->size)
		memset(m->data + off, 0, min_u64(off + len, m->size) - off);
}

static bool op_fallocate(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	int mode = falloc_mode(e->op);
	e->fdi = pick_fdi(f, m);
	e->off = pick_off(f, m->size);
	e->len = pick_len(f, f->opt.maxlen - e->off);
	if (fallocate(m->fd[e->fdi], mode, e->off, e->len) < 0) {
		if (errno != EOPNOTSUPP)
			fail_errno(f, e->file, errno, "fallocate(%s, off 0x%" PRIx64 ", len 0x%"
				   PRIx64 ")", falloc_mode_name(e->op), e->off, e->len);
		falloc_unsupported(f, e);
		return true;
	}
	f->succeeded[e->op] = true;
	falloc_model(m, mode, e->off, e->len);
	return true;
}

/* A destination for a copy of len bytes from src in the same file, not overlapping it. */
static bool pick_disjoint(struct fsx *f, uint64_t src, uint64_t len, uint64_t *dst)
{
	uint64_t maxlen = f->opt.maxlen;
	uint64_t below = src >= len ? src - len + 1 : 0;			/* [0, src - len] */
	uint64_t above = src + len + len <= maxlen ? maxlen - len - (src + len) + 1 : 0;
	if (below + above == 0)
		return false;
	uint64_t i = rand_below(f, below + above);
	*dst = i < below ? i : src + len + (i - below);
	return true;
}

/*
 * copy_file_range of [off, off + len) of one file to off2 of another (or of the same, not
 * overlapping). The file must copy exactly what lies before the source's EOF; a short return is
 * allowed and continued, as callers do, a return of 0 before then is a failure.
 */
static int64_t copy_range(struct fsx *f, struct logent *e, uint64_t want)
{
	const struct mfile *src = &f->files[e->file], *dst = &f->files[e->file2];
	uint64_t done = 0;
	do {
		loff_t in = e->off + done, out = e->off2 + done;
		uint64_t ask = done == 0 ? e->len : want - done;
		ssize_t n = copy_file_range(src->fd[e->fdi], &in, dst->fd[0], &out, ask, 0);
		e->flag++;
		if (n < 0)
			fail_errno(f, e->file2, errno, "copy_file_range(f%d 0x%" PRIx64 " -> f%d 0x%"
				   PRIx64 ", len 0x%" PRIx64 ")", e->file, e->off + done, e->file2,
				   e->off2 + done, ask);
		if (done + n > want || (n == 0 && done < want)) {
			report_begin(f, e->file2, "copy_file_range(f%d 0x%" PRIx64 " -> f%d 0x%" PRIx64
				     ", len 0x%" PRIx64 ") returned 0x%zx; expected 0x%" PRIx64 " in all "
				     "(source size 0x%" PRIx64 "), 0x%" PRIx64 " copied so far", e->file,
				     e->off + done, e->file2, e->off2 + done, ask, (size_t)n, want,
				     src->size, done);
			report_end(f, e->file2);
		}
		if (n > 0 && done + n < want)
			f->st.short_copies++;
		done += n;
	} while (done < want);
	return done;
}

static bool op_copy(struct fsx *f, struct logent *e)
{
	struct mfile *src = &f->files[e->file];
	bool same = f->opt.nfiles == 1 || one_in(f, 3);
	e->file2 = same ? e->file : (int)((e->file + rand_range(f, 1, f->opt.nfiles - 1)) %
					  f->opt.nfiles);
	struct mfile *dst = &f->files[e->file2];
	e->fdi = pick_fdi(f, src);
	e->off = pick_off(f, src->size);
	e->len = pick_len(f, f->opt.maxlen - e->off);
	if (same) {
		while (!pick_disjoint(f, e->off, e->len, &e->off2))
			if ((e->len /= 2) == 0)
				return false;
	} else {
		e->off2 = pick_off(f, dst->size);
		e->len = min_u64(e->len, f->opt.maxlen - e->off2);
	}
	uint64_t want = e->off < src->size ? min_u64(e->len, src->size - e->off) : 0;
	e->result = copy_range(f, e, want);
	memcpy(dst->data + e->off2, src->data + e->off, want);
	if (want)
		dst->size = max_u64(dst->size, e->off2 + want);
	f->st.bytes_written += want;
	return true;
}

/* A hole from `at` on: the file must have nothing but zeros in the model up to `end`. */
static void check_hole(struct fsx *f, struct logent *e, const char *what, uint64_t at,
		       uint64_t end)
{
	const unsigned char *d = f->files[e->file].data;
	if (all_zero(d + at, end - at))
		return;
	uint64_t bad = at;
	while (d[bad] == 0)
		bad++;
	report_begin(f, e->file, "%s reports a hole over 0x%" PRIx64 "..0x%" PRIx64 ", but the model"
		     " has data there: first non-zero byte 0x%02x at 0x%" PRIx64, what, at, end,
		     d[bad], bad);
	report_end(f, e->file);
}

/* lseek SEEK_DATA/SEEK_HOLE; the offset, or -1 for ENXIO (anything else fails). */
static int64_t seek(struct fsx *f, struct logent *e, int fd, uint64_t off, int whence)
{
	off_t r = lseek(fd, off, whence);
	if (r < 0 && errno != ENXIO)
		fail_errno(f, e->file, errno, "lseek(0x%" PRIx64 ", %s)", off,
			   whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE");
	f->st.seek_checks++;
	return r;
}

static void __attribute__((noreturn)) seek_wrong(struct fsx *f, struct logent *e, const char *what)
{
	report_begin(f, e->file, "%s from 0x%" PRIx64 " returned %s0x%" PRIx64 " (ENXIO if "
		     "negative); model size 0x%" PRIx64, e->flag ? "SEEK_HOLE" : "SEEK_DATA",
		     e->off, what, (uint64_t)e->result, f->files[e->file].size);
	report_end(f, e->file);
}

/*
 * Data may be reported over zeros, a hole never over the model's non-zero bytes, and nothing
 * from EOF on (ENXIO). SEEK_DATA from off: [off, result) is a hole. SEEK_HOLE from off: the hole
 * starting at result runs to the next SEEK_DATA.
 */
static void check_seek_data(struct fsx *f, struct logent *e, int fd, uint64_t size)
{
	e->result = seek(f, e, fd, e->off, SEEK_DATA);
	if (e->off >= size) {
		if (e->result >= 0)
			seek_wrong(f, e, "past EOF: ");
		return;
	}
	if (e->result >= 0 && ((uint64_t)e->result < e->off || (uint64_t)e->result >= size))
		seek_wrong(f, e, "out of [off, size): ");
	check_hole(f, e, "SEEK_DATA", e->off, e->result < 0 ? size : (uint64_t)e->result);
}

static void check_seek_hole(struct fsx *f, struct logent *e, int fd, uint64_t size)
{
	e->result = seek(f, e, fd, e->off, SEEK_HOLE);
	if (e->off >= size) {
		if (e->result >= 0)
			seek_wrong(f, e, "past EOF: ");
		return;
	}
	if (e->result < 0 || (uint64_t)e->result < e->off || (uint64_t)e->result > size)
		seek_wrong(f, e, "out of [off, size]: ");
	uint64_t hole = e->result;
	if (hole == size)
		return;
	int64_t data = seek(f, e, fd, hole, SEEK_DATA);
	if (data >= 0 && (uint64_t)data <= hole)
		seek_wrong(f, e, "a hole at which SEEK_DATA finds data: ");
	check_hole(f, e, "SEEK_HOLE then SEEK_DATA", hole, data < 0 ? size : (uint64_t)data);
}

static bool op_seek(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	unsigned where = rand_below(f, 10);
	e->fdi = pick_fdi(f, m);
	e->flag = one_in(f, 2);
	if (where == 0)
		e->off = m->size;
	else if (where == 1)
		e->off = m->size ? m->size - 1 : 0;
	else
		e->off = rand_below(f, m->size + BLOCK);
	if (e->flag)
		check_seek_hole(f, e, m->fd[e->fdi], m->size);
	else
		check_seek_data(f, e, m->fd[e->fdi], m->size);
	return true;
}

static bool op_fsync(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	e->fdi = pick_fdi(f, m);
	e->flag = one_in(f, 2);
	if ((e->flag ? fdatasync(m->fd[e->fdi]) : fsync(m->fd[e->fdi])) < 0)
		fail_errno(f, e->file, errno, "%s", e->flag ? "fdatasync" : "fsync");
	return true;
}

static bool op_reopen(struct fsx *f, struct logent *e)
{
	close_file(f, e->file);
	open_file(f, e->file, 0);
	e->flag = f->files[e->file].fd[1] >= 0 ? 2 : 1;
	return true;
}

static void rename_file(struct fsx *f, int file, uint64_t from, uint64_t to)
{
	char a[32], b[32];
	snprintf(a, sizeof(a), "fsx-%" PRIu64, from);
	snprintf(b, sizeof(b), "fsx-%" PRIu64, to);
	if (renameat(f->dirfd, a, f->dirfd, b) < 0)
		fail_errno(f, file, errno, "rename %s -> %s", a, b);
}

/* Either a file takes a new name, or two files swap theirs through a third. */
static bool op_rename(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	e->off = m->gen;
	if (f->opt.nfiles == 1 || one_in(f, 2)) {
		e->off2 = f->next_gen++;
		rename_file(f, e->file, m->gen, e->off2);
		m->gen = e->off2;
		return true;
	}
	e->file2 = (e->file + rand_range(f, 1, f->opt.nfiles - 1)) % f->opt.nfiles;
	struct mfile *o = &f->files[e->file2];
	uint64_t tmp = f->next_gen++;
	e->off2 = o->gen;
	rename_file(f, e->file, m->gen, tmp);
	rename_file(f, e->file2, o->gen, m->gen);
	rename_file(f, e->file, tmp, o->gen);
	m->gen = e->off2;
	o->gen = e->off;
	return true;
}

/* fstat's size is the model's, and the file's name leads to the same inode. */
static bool op_stat(struct fsx *f, struct logent *e)
{
	struct mfile *m = &f->files[e->file];
	struct stat by_fd, by_name;
	char name[32];
	e->fdi = pick_fdi(f, m);
	check_size(f, e->file, m->fd[e->fdi], "fstat");
	if (fstat(m->fd[e->fdi], &by_fd) < 0)
		fail_errno(f, e->file, errno, "fstat");
	if (fstatat(f->dirfd, file_name(m, name, sizeof(name)), &by_name, 0) < 0)
		fail_errno(f, e->file, errno, "stat %s", name);
	if (by_name.st_ino != by_fd.st_ino || by_name.st_size != by_fd.st_size) {
		report_begin(f, e->file, "stat %s: inode %" PRIu64 " size 0x%" PRIx64 ", its open "
			     "descriptor: inode %" PRIu64 " size 0x%" PRIx64, name,
			     (uint64_t)by_name.st_ino, (uint64_t)by_name.st_size,
			     (uint64_t)by_fd.st_ino, (uint64_t)by_fd.st_size);
		report_end(f, e->file);
	}
	return true;
}

static const struct op_desc ops[OP_KINDS] = {
	[OP_WRITE]      = { "write",      20, op_write },
	[OP_APPEND]     = { "append",      6, op_append },
	[OP_READ]       = { "read",       18, op_read },
	[OP_MMAP]       = { "mmap",        6, op_mmap },
	[OP_TRUNCATE]   = { "truncate",    5, op_truncate },
	[OP_FALLOC]     = { "falloc",      2, op_fallocate },
	[OP_FALLOC_KEEP] = { "fallockeep", 2, op_fallocate },
	[OP_PUNCH]      = { "punch",       4, op_fallocate },
	[OP_ZERO]       = { "zero",        2, op_fallocate },
	[OP_ZERO_KEEP]  = { "zerokeep",    2, op_fallocate },
	[OP_COPY]       = { "copy",        6, op_copy },
	[OP_SEEK]       = { "seek",        6, op_seek },
	[OP_FSYNC]      = { "fsync",       2, op_fsync },
	[OP_REOPEN]     = { "reopen",      1, op_reopen },
	[OP_RENAME]     = { "rename",      1, op_rename },
	[OP_STAT]       = { "stat",        3, op_stat },
	[OP_VERIFY]     = { "verify",      0, NULL },
	[OP_REMOUNT]    = { "remount",     0, NULL },
};

/* ---- whole-file checks, the remount hook ---- */

/* fstat, then the whole file read and compared, then nothing past EOF. */
static void verify_file(struct fsx *f, int file)
{
	struct mfile *m = &f->files[file];
	struct logent e;
	log_begin(f, &e, OP_VERIFY, file);
	e.fdi = pick_fdi(f, m);
	check_size(f, file, m->fd[e.fdi], "whole-file verify");
	pread_exact(f, file, m->fd[e.fdi], 0, m->size, m->size);
	check_bytes(f, file, "whole-file verify read", 0, f->scratch, m->size);
	pread_exact(f, file, m->fd[e.fdi], m->size, 1, 0);
	log_commit(f, &e);
}

static void verify_all(struct fsx *f)
{
	for (unsigned i = 0; i < f->opt.nfiles; i++)
		verify_file(f, i);
}

/* The -R command, with FSX_DIR (the directory) and FSX_OP (the operation number) set. */
static void run_remount_cmd(struct fsx *f)
{
	char opnum[24];
	snprintf(opnum, sizeof(opnum), "%" PRIu64, f->opnum);
	if (setenv("FSX_DIR", f->opt.dir, 1) < 0 || setenv("FSX_OP", opnum, 1) < 0)
		fail_errno(f, -1, errno, "setenv");
	int status = system(f->opt.remount_cmd);
	if (status == -1)
		fail_errno(f, -1, errno, "system(%s)", f->opt.remount_cmd);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		report_begin(f, -1, "-R command `%s` failed (status 0x%x)", f->opt.remount_cmd,
			     status);
		report_end(f, -1);
	}
}

/* Close every descriptor, run the -R command, reopen everything and verify every file. */
static void remount(struct fsx *f)
{
	struct logent e;
	log_begin(f, &e, OP_REMOUNT, -1);
	for (unsigned i = 0; i < f->opt.nfiles; i++)
		close_file(f, i);
	close(f->dirfd);
	fflush(NULL);
	if (f->opt.remount_cmd)
		run_remount_cmd(f);
	open_dir(f);
	for (unsigned i = 0; i < f->opt.nfiles; i++) {
		e.size = f->files[i].size;
		ring_push(&f->files[i], &e);
		open_file(f, i, 0);
	}
	log_commit(f, &e);
	verify_all(f);
}

/* ---- the run ---- */

static enum op_kind pick_op(struct fsx *f)
{
	unsigned total = 0;
	for (int k = 0; k < OP_RANDOM_KINDS; k++)
		if (!f->opt.off[k] && !f->unsupported[k])
			total += ops[k].weight;
	unsigned r = rand_below(f, total);
	for (int k = 0; k < OP_RANDOM_KINDS; k++) {
		if (f->opt.off[k] || f->unsupported[k])
			continue;
		if (r < ops[k].weight)
			return k;
		r -= ops[k].weight;
	}
	abort();
}

static void run_one_op(struct fsx *f)
{
	struct logent e;
	for (int tries = 0;; tries++) {
		enum op_kind op = pick_op(f);
		log_begin(f, &e, op, rand_below(f, f->opt.nfiles));
		if (ops[op].run(f, &e))
			break;
		if (tries == 1000) {
			report_begin(f, -1, "no operation left that can run (-x leaves too few?)");
			report_end(f, -1);
		}
	}
	log_commit(f, &e);
}

static void print_progress(const struct fsx *f)
{
	double t = now() - f->start;
	printf("fsx: op %" PRIu64 "/%" PRIu64 ", %.1f s, %.0f ops/s\n", f->opnum, f->opt.nops, t,
	       f->opnum / t);
	fflush(stdout);
}

static void create_files(struct fsx *f)
{
	f->created = true;
	for (unsigned i = 0; i < f->opt.nfiles; i++) {
		struct mfile *m = &f->files[i];
		m->data = calloc(1, f->opt.maxlen);
		if (!m->data) {
			fprintf(stderr, "fsx: out of memory for %u files of %" PRIu64 " bytes\n",
				f->opt.nfiles, f->opt.maxlen);
			exit(1);
		}
		m->gen = f->next_gen++;
		open_file(f, i, O_CREAT | O_TRUNC);
	}
}

static void remove_files(struct fsx *f)
{
	char name[32];
	for (unsigned i = 0; i < f->opt.nfiles; i++) {
		close_file(f, i);
		if (!f->opt.keep && unlinkat(f->dirfd, file_name(&f->files[i], name, sizeof(name)),
					      0) < 0)
			fail_errno(f, i, errno, "unlink %s", name);
		free(f->files[i].data);
	}
	close(f->dirfd);
}

static void print_summary(const struct fsx *f, double elapsed)
{
	printf("fsx: operations:");
	for (int k = 0; k < OP_KINDS; k++)
		printf("%s %s %" PRIu64, k % 6 ? "," : "\n ", ops[k].name, f->st.count[k]);
	printf("\nfsx: %.1f MiB written, %.1f MiB read, %" PRIu64 " seek checks, %" PRIu64
	       " short copies, %.2f s, %.0f ops/s\n", f->st.bytes_written / (double)MiB,
	       f->st.bytes_read / (double)MiB, f->st.seek_checks, f->st.short_copies, elapsed,
	       f->opt.nops / elapsed);
	for (int k = 0; k < OP_RANDOM_KINDS; k++)
		if (f->unsupported[k])
			printf("fsx: not supported here: %s (fallocate %s)\n", ops[k].name,
			       falloc_mode_name(k));
}

static void run(struct fsx *f)
{
	open_dir(f);
	create_files(f);
	f->start = now();
	for (f->opnum = 1; f->opnum <= f->opt.nops; f->opnum++) {
		run_one_op(f);
		if (f->opt.check_every && f->opnum % f->opt.check_every == 0)
			verify_all(f);
		if (f->opt.remount_every && f->opnum % f->opt.remount_every == 0)
			remount(f);
		if (f->opt.progress && f->opnum % f->opt.progress == 0 && !f->opt.quiet)
			print_progress(f);
	}
	f->opnum = f->opt.nops;
	verify_all(f);
	double elapsed = now() - f->start;
	remove_files(f);
	if (!f->opt.quiet)
		print_summary(f, elapsed);
	printf("fsx: %" PRIu64 " ops OK seed %" PRIu64 "\n", f->opt.nops, f->opt.seed);
}

/* ---- options ---- */

static void __attribute__((noreturn)) usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "fsx: %s\n", msg);
	fprintf(stderr, "usage: fsx [-N ops] [-S seed] [-n files] [-l maxlen] [-o maxop] [-x ops]\n"
		"           [-c check-every] [-R cmd] [-r every] [-p every] [-q] [-k] [--log file] DIR\n"
		"(the top of tests/integ/fsx.c says what each does)\n");
	exit(2);
}

/* A count or size: digits with an optional K, M or G (powers of 1024). */
static uint64_t parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		usage(what);
	switch (*end) {
	case 'k': case 'K': v *= KiB; end++; break;
	case 'm': case 'M': v *= MiB; end++; break;
	case 'g': case 'G': v *= 1024 * MiB; end++; break;
	}
	if (*end)
		usage(what);
	return v;
}

static void leave_out(struct opts *o, const char *name)
{
	if (strcmp(name, "fallocate") == 0) {
		for (int k = OP_FALLOC; k <= OP_ZERO_KEEP; k++)
			o->off[k] = true;
		return;
	}
	for (int k = 0; k < OP_RANDOM_KINDS; k++) {
		if (strcmp(name, ops[k].name) == 0) {
			o->off[k] = true;
			return;
		}
	}
	fprintf(stderr, "fsx: -x: no operation '%s'; there are:", name);
	for (int k = 0; k < OP_RANDOM_KINDS; k++)
		fprintf(stderr, " %s", ops[k].name);
	fprintf(stderr, " fallocate\n");
	exit(2);
}

static void leave_out_list(struct opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save))
		leave_out(o, name);
	free(copy);
}

static void check_opts(struct opts *o)
{
	bool any = false;
	if (o->nfiles == 0)
		usage("-n: at least one file");
	if (o->maxlen < 2 * BLOCK)
		usage("-l: at least 8K");
	if (o->maxop == 0)
		usage("-o: at least 1");
	for (int k = 0; k < OP_RANDOM_KINDS; k++)
		any |= !o->off[k];
	if (!any)
		usage("-x leaves no operation");
	if (o->remount_cmd && !o->remount_every)
		o->remount_every = 10000;
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "log", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct opts){ .nops = 100000, .nfiles = 4, .maxlen = 8 * MiB, .maxop = 4 * MiB,
			    .check_every = 2000 };
	int c;
	while ((c = getopt_long(argc, argv, "N:S:n:l:o:x:c:R:r:p:qkh", longopts, NULL)) != -1) {
		switch (c) {
		case 'N': o->nops = parse_num(optarg, "-N: a number of operations"); break;
		case 'S': o->seed = parse_num(optarg, "-S: a number"); o->seed_given = true; break;
		case 'n': o->nfiles = parse_num(optarg, "-n: a number of files"); break;
		case 'l': o->maxlen = parse_num(optarg, "-l: a size"); break;
		case 'o': o->maxop = parse_num(optarg, "-o: a size"); break;
		case 'x': leave_out_list(o, optarg); break;
		case 'c': o->check_every = parse_num(optarg, "-c: a number of operations"); break;
		case 'R': o->remount_cmd = optarg; break;
		case 'r': o->remount_every = parse_num(optarg, "-r: a number of operations"); break;
		case 'p': o->progress = parse_num(optarg, "-p: a number of operations"); break;
		case 'q': o->quiet = true; break;
		case 'k': o->keep = true; break;
		case 'L': o->log_path = optarg; break;
		default: usage(NULL);
		}
	}
	if (optind != argc - 1)
		usage("one directory");
	o->dir = argv[optind];
	check_opts(o);
}

static uint64_t clock_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000003u ^ ts.tv_nsec ^ (uint64_t)getpid() << 20) % 1000000000;
}

int main(int argc, char **argv)
{
	struct fsx f = { 0 };
	parse_opts(&f.opt, argc, argv);
	f.argc = argc;
	f.argv = argv;
	if (!f.opt.seed_given)
		f.opt.seed = clock_seed();
	f.rng = f.opt.seed;
	f.pagesize = sysconf(_SC_PAGESIZE);
	f.files = calloc(f.opt.nfiles, sizeof(*f.files));
	f.scratch = malloc(f.opt.maxlen);
	if (!f.files || !f.scratch) {
		fprintf(stderr, "fsx: out of memory\n");
		return 1;
	}
	if (f.opt.log_path && !(f.log = fopen(f.opt.log_path, "w"))) {
		fprintf(stderr, "fsx: %s: %s\n", f.opt.log_path, strerror(errno));
		return 1;
	}
	if (!f.opt.quiet)
		printf("fsx: seed %" PRIu64 ", %" PRIu64 " ops, %u files of up to %" PRIu64
		       " bytes, ops up to %" PRIu64 " bytes, in %s\n", f.opt.seed, f.opt.nops,
		       f.opt.nfiles, f.opt.maxlen, f.opt.maxop, f.opt.dir);
	fflush(stdout);
	run(&f);
	free(f.files);
	free(f.scratch);
	if (f.log)
		fclose(f.log);
	return 0;
}
