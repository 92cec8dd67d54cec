/*
 * posix_check: conformance checks of a mounted filesystem.
 *
 *   posix_check DIR [--nonroot-uid UID] [--nonroot-gid GID] [--skip-group G]... [--group G]...
 *               [--only-group G]... [--only NAME]... [--seed N] [--timeout SEC] [--keep] [--list]
 *
 * Each check runs in a fresh subdirectory of a new directory DIR/posix_check.XXXXXX, asserts exact
 * results and errno values and prints "ok N name", "skip N name: why" or
 * "FAIL N name: detail (file:line)". The run ends with a summary; the exit status is 0 only if
 * nothing failed (1 if a check failed, 2 on a usage error).
 *
 * The expectations are those of Linux-native filesystems (ext4): a check that fails on cowfs
 * and passes on ext4 is a cowfs bug. Groups:
 *   default  everything below that is not in another group
 *   perm     runs code as the non-root user (--nonroot-uid, default 65534): permission errors,
 *            sticky directories, S_ISUID/S_ISGID cleared by an unprivileged write or truncate.
 *            On a FUSE mount this needs -o allow_other (and default_permissions for the
 *            kernel's permission checks).
 *   acl      POSIX ACLs (system.posix_acl_access/default in the raw xattr format), checked as the
 *            non-root user: needs what perm needs, and ACL support.
 *   xattr    user.* and trusted.* extended attributes.
 *   big      slow ones: a 1 GiB file, a 100,000-entry directory. Off unless --group big.
 * Checks that need root (chown, device nodes, file handles, switching user) are skipped when
 * not run as root.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o posix_check posix_check.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <linux/falloc.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif
#ifndef MAX_HANDLE_SZ
#define MAX_HANDLE_SZ 128
#endif

#define KiB (1024LL)
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)
#define TiB (1024LL * 1024 * 1024 * 1024)

/* ---- failure recording ------------------------------------------------------------------- */

/*
 * The first failure of a check, in shared memory so that a forked child (a check run as the
 * non-root user, or concurrent writers) reports it the same way.
 */
struct shared {
	int failed;
	char msg[2048];
};
static struct shared *g_sh;
static char g_skip[256];

static const char *errname(int e)
{
	const char *n = e ? strerrorname_np(e) : "0";
	return n ? n : "E?";
}

__attribute__((format(printf, 4, 5)))
static void fail_at(const char *file, int line, int err, const char *fmt, ...)
{
	char buf[1600];
	va_list ap;

	if (g_sh->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (err)
		snprintf(g_sh->msg, sizeof g_sh->msg, "%s [errno %s: %s] (%s:%d)", buf, errname(err),
			 strerror(err), file, line);
	else
		snprintf(g_sh->msg, sizeof g_sh->msg, "%s (%s:%d)", buf, file, line);
	g_sh->failed = 1;
}

/* CHECK(cond): cond must hold; records file:line and errno. */
#define CHECK(cond)                                                                       \
	do {                                                                              \
		errno = 0;                                                                \
		if (!(cond)) {                                                            \
			fail_at(__FILE__, __LINE__, errno, "%s", #cond);                  \
			return -1;                                                        \
		}                                                                         \
	} while (0)

/* CHECKF(cond, fmt, ...): the same with a message. */
#define CHECKF(cond, ...)                                                                 \
	do {                                                                              \
		errno = 0;                                                                \
		if (!(cond)) {                                                            \
			fail_at(__FILE__, __LINE__, errno, __VA_ARGS__);                  \
			return -1;                                                        \
		}                                                                         \
	} while (0)

#define FAIL(...)                                                                         \
	do {                                                                              \
		fail_at(__FILE__, __LINE__, 0, __VA_ARGS__);                              \
		return -1;                                                                \
	} while (0)

/* SYS(expr): a call that must not return -1; its value. */
#define SYS(expr)                                                                         \
	({                                                                                \
		errno = 0;                                                                \
		long long r_ = (long long)(expr);                                         \
		if (r_ == -1) {                                                           \
			fail_at(__FILE__, __LINE__, errno, "%s failed", #expr);           \
			return -1;                                                        \
		}                                                                         \
		r_;                                                                       \
	})

/* ERR(expr, E): a call that must fail with errno E. */
#define ERR(expr, e)                                                                      \
	do {                                                                              \
		errno = 0;                                                                \
		long long r_ = (long long)(expr);                                         \
		int e_ = errno;                                                           \
		if (r_ != -1 || e_ != (e)) {                                              \
			fail_at(__FILE__, __LINE__, 0, "%s: expected -1 %s, got %lld %s", \
				#expr, errname(e), r_, r_ == -1 ? errname(e_) : "");      \
			return -1;                                                        \
		}                                                                         \
	} while (0)

/* ERR2(expr, E1, E2): fails with either. */
#define ERR2(expr, e1, e2)                                                                \
	do {                                                                              \
		errno = 0;                                                                \
		long long r_ = (long long)(expr);                                         \
		int e_ = errno;                                                           \
		if (r_ != -1 || (e_ != (e1) && e_ != (e2))) {                             \
			fail_at(__FILE__, __LINE__, 0,                                    \
				"%s: expected -1 %s or %s, got %lld %s", #expr, errname(e1), \
				errname(e2), r_, r_ == -1 ? errname(e_) : "");            \
			return -1;                                                        \
		}                                                                         \
	} while (0)

/* EQ(a, b): integers equal. */
#define EQ(a, b)                                                                          \
	do {                                                                              \
		long long a_ = (long long)(a), b_ = (long long)(b);                       \
		if (a_ != b_) {                                                           \
			fail_at(__FILE__, __LINE__, 0, "%s == %s: %lld != %lld (%#llo, %#llo)", \
				#a, #b, a_, b_, a_, b_);                                  \
			return -1;                                                        \
		}                                                                         \
	} while (0)

#define TRY(expr)                                                                         \
	do {                                                                              \
		if ((expr) != 0)                                                          \
			return -1;                                                        \
	} while (0)

#define SKIP(...)                                                                         \
	do {                                                                              \
		snprintf(g_skip, sizeof g_skip, __VA_ARGS__);                             \
		return 1;                                                                 \
	} while (0)

/* ---- globals and small helpers ----------------------------------------------------------- */

static uid_t g_uid = 65534;       /* the non-root user */
static gid_t g_gid = (gid_t)-1;
static uint64_t g_seed;
static bool g_root;
static volatile pid_t g_child;    /* a child to kill on timeout */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void fill(void *buf, size_t n, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t s = seed, w;

	while (n >= 8) {
		w = splitmix(&s);
		memcpy(p, &w, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		w = splitmix(&s);
		memcpy(p, &w, n);
	}
}

static uint64_t hash(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL ^ n, w;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static bool all_zero(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void tick(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

static int ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	if (a.tv_nsec != b.tv_nsec)
		return a.tv_nsec < b.tv_nsec ? -1 : 1;
	return 0;
}

static char *long_name(char *buf, size_t len, char c)
{
	memset(buf, c, len);
	buf[len] = 0;
	return buf;
}

static int rename2(const char *a, const char *b, unsigned int flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;
	while (n) {
		ssize_t w = SYS(pwrite(fd, p, n, off));
		CHECKF(w > 0, "pwrite returned 0");
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Exactly n bytes at off (a short read is a failure). */
static int pread_exact(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;
	while (n) {
		ssize_t r = SYS(pread(fd, p, n, off));
		CHECKF(r > 0, "pread at %lld: unexpected EOF, %zu bytes missing", (long long)off, n);
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

static int expect_zeros(int fd, off_t off, size_t n)
{
	static char buf[256 * 1024];
	while (n) {
		size_t k = n < sizeof buf ? n : sizeof buf;
		TRY(pread_exact(fd, buf, k, off));
		for (size_t i = 0; i < k; i++)
			if (buf[i])
				FAIL("byte at %lld is %#x, expected 0", (long long)off + (long long)i,
				     (unsigned char)buf[i]);
		off += (off_t)k;
		n -= k;
	}
	return 0;
}

/* Bytes [off, off+n) of fd equal buf; reports the first difference. */
static int expect_bytes(int fd, off_t off, const void *want, size_t n)
{
	char *got = malloc(n ? n : 1);
	CHECK(got);
	if (pread_exact(fd, got, n, off)) {
		free(got);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (got[i] != ((const char *)want)[i]) {
			unsigned g = (unsigned char)got[i], w = ((const unsigned char *)want)[i];
			free(got);
			FAIL("byte at %lld is %#x, expected %#x", (long long)off + (long long)i, g, w);
		}
	free(got);
	return 0;
}

static int put_n(const char *path, const void *buf, size_t n, mode_t mode)
{
	int fd = SYS(open(path, O_WRONLY | O_CREAT | O_TRUNC, mode));
	if (pwrite_all(fd, buf, n, 0)) {
		close(fd);
		return -1;
	}
	SYS(close(fd));
	return 0;
}

static int put(const char *path, const char *s)
{
	return put_n(path, s, strlen(s), 0644);
}

static int touch(const char *path)
{
	return put_n(path, "", 0, 0644);
}

/* The whole file equals s. */
static int expect_content(const char *path, const char *s)
{
	size_t n = strlen(s);
	char buf[8192];
	int fd = SYS(open(path, O_RDONLY));
	ssize_t r = SYS(read(fd, buf, sizeof buf));
	close(fd);
	CHECKF((size_t)r == n && memcmp(buf, s, n) == 0, "%s: content is \"%.*s\", expected \"%s\"",
	       path, (int)(r > 64 ? 64 : r), buf, s);
	return 0;
}

static int lstat_ok(const char *path, struct stat *st)
{
	CHECKF(lstat(path, st) == 0, "lstat %s", path);
	return 0;
}

static ino_t ino_of(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? st.st_ino : 0;
}

static long long nlink_of(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? (long long)st.st_nlink : -1;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Directory listing through getdents64, "." and ".." included. */
struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

struct dent {
	uint64_t ino;
	unsigned char type;
	char name[256];
};

static int list_dir(const char *path, struct dent **out, size_t *count)
{
	char buf[8192];
	size_t n = 0, cap = 64;
	struct dent *v = malloc(cap * sizeof *v);
	int fd = SYS(open(path, O_RDONLY | O_DIRECTORY));

	CHECK(v);
	for (;;) {
		long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (r == -1) {
			int e = errno;
			close(fd);
			free(v);
			fail_at(__FILE__, __LINE__, e, "getdents64(%s)", path);
			return -1;
		}
		if (r == 0)
			break;
		for (long off = 0; off < r;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			if (n == cap) {
				cap *= 2;
				v = realloc(v, cap * sizeof *v);
				CHECK(v);
			}
			v[n].ino = d->d_ino;
			v[n].type = d->d_type;
			snprintf(v[n].name, sizeof v[n].name, "%s", d->d_name);
			n++;
			off += d->d_reclen;
		}
	}
	close(fd);
	*out = v;
	*count = n;
	return 0;
}

static const struct dent *find_dent(const struct dent *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/* The inode number the directory's own ".." entry names (what the filesystem stored). */
static int dotdot_ino(const char *dir, uint64_t *ino)
{
	struct dent *v;
	size_t n;
	TRY(list_dir(dir, &v, &n));
	const struct dent *d = find_dent(v, n, "..");
	*ino = d ? d->ino : 0;
	free(v);
	CHECKF(d, "%s has no \"..\" entry", dir);
	return 0;
}

/* The ".." of dir, seen by the kernel path walk and by the directory's own entry, is parent. */
static int expect_parent(const char *dir, const char *parent)
{
	char p[PATH_MAX];
	struct stat a, b;
	uint64_t dd;

	snprintf(p, sizeof p, "%s/..", dir);
	SYS(stat(p, &a));
	SYS(stat(parent, &b));
	CHECKF(a.st_ino == b.st_ino, "stat(%s) is inode %llu, expected %s's %llu", p,
	       (unsigned long long)a.st_ino, parent, (unsigned long long)b.st_ino);
	TRY(dotdot_ino(dir, &dd));
	CHECKF(dd == b.st_ino, "%s's \"..\" entry names inode %llu, expected %s's %llu", dir,
	       (unsigned long long)dd, parent, (unsigned long long)b.st_ino);
	return 0;
}

/* Run fn(arg) in a child process as the non-root user; its failure becomes ours. */
static int as_user(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == -1) {
		fail_at(__FILE__, __LINE__, errno, "fork");
		return -1;
	}
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(g_gid, g_gid, g_gid) ||
		    setresuid(g_uid, g_uid, g_uid)) {
			fail_at(__FILE__, __LINE__, errno, "cannot become uid %u gid %u",
				(unsigned)g_uid, (unsigned)g_gid);
			_exit(1);
		}
		struct stat st;
		if (stat(".", &st) != 0) {
			fail_at(__FILE__, __LINE__, errno, "uid %u cannot reach its test directory "
				"(a FUSE mount without allow_other? ancestors not searchable?)",
				(unsigned)g_uid);
			_exit(1);
		}
		_exit(fn(arg) == 0 ? 0 : 1);
	}
	g_child = pid;
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	g_child = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!g_sh->failed)
			fail_at(__FILE__, __LINE__, 0, "child as uid %u ended with status %#x",
				(unsigned)g_uid, status);
		return -1;
	}
	return 0;
}

/* ---- create / open ------------------------------------------------------------------------ */

static int t_open_excl(void)
{
	struct stat st;
	int fd;

	TRY(touch("f"));
	ERR(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	SYS(mkdir("d", 0755));
	ERR(open("d", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	SYS(symlink("target", "dangling"));
	ERR(open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	CHECK(!exists("target"));
	/* Without O_EXCL, O_CREAT through a dangling symlink creates its target. */
	fd = SYS(open("dangling", O_CREAT | O_WRONLY, 0644));
	close(fd);
	TRY(lstat_ok("target", &st));
	CHECK(S_ISREG(st.st_mode));
	fd = SYS(open("new", O_CREAT | O_EXCL | O_RDWR, 0640));
	SYS(fstat(fd, &st));
	EQ(st.st_mode, S_IFREG | 0640);
	EQ(st.st_size, 0);
	EQ(st.st_nlink, 1);
	EQ(st.st_uid, geteuid());
	EQ(st.st_gid, getegid());
	close(fd);
	return 0;
}

static int t_open_trunc(void)
{
	struct stat a, b;
	int fd;

	TRY(put("f", "hello world"));
	SYS(stat("f", &a));
	tick();
	fd = SYS(open("f", O_WRONLY | O_TRUNC));
	SYS(fstat(fd, &b));
	EQ(b.st_size, 0);
	CHECKF(ts_cmp(b.st_mtim, a.st_mtim) > 0, "O_TRUNC did not change mtime");
	CHECKF(ts_cmp(b.st_ctim, a.st_ctim) > 0, "O_TRUNC did not change ctime");
	SYS(write(fd, "xy", 2));
	close(fd);
	TRY(expect_content("f", "xy"));
	/* O_TRUNC with O_CREAT on an existing file truncates it too. */
	fd = SYS(open("f", O_WRONLY | O_CREAT | O_TRUNC, 0600));
	SYS(fstat(fd, &b));
	EQ(b.st_size, 0);
	EQ(b.st_mode & 07777, 0644); /* an existing file keeps its mode */
	close(fd);
	return 0;
}

static int t_open_append(void)
{
	int fd, fd2;

	TRY(put("f", "abc"));
	fd = SYS(open("f", O_WRONLY | O_APPEND));
	SYS(lseek(fd, 0, SEEK_SET));
	EQ(SYS(write(fd, "de", 2)), 2);
	EQ(lseek(fd, 0, SEEK_CUR), 5);
	/* Linux: pwrite on an O_APPEND descriptor appends as well. */
	EQ(SYS(pwrite(fd, "f", 1, 0)), 1);
	/* Another descriptor extends the file: the next append goes after that. */
	fd2 = SYS(open("f", O_WRONLY));
	EQ(SYS(pwrite(fd2, "0123456789", 10, 6)), 10);
	close(fd2);
	SYS(lseek(fd, 2, SEEK_SET));
	EQ(SYS(write(fd, "Z", 1)), 1);
	close(fd);
	TRY(expect_content("f", "abcdef0123456789Z"));
	return 0;
}

static int t_open_enoent(void)
{
	ERR(open("missing", O_RDONLY), ENOENT);
	ERR(open("missing", O_WRONLY), ENOENT);
	ERR(open("nodir/f", O_WRONLY | O_CREAT, 0644), ENOENT);
	ERR(open("", O_RDONLY), ENOENT);
	struct stat st;
	ERR(stat("missing", &st), ENOENT);
	ERR(unlink("missing"), ENOENT);
	ERR(rmdir("missing"), ENOENT);
	ERR(rename("missing", "other"), ENOENT);
	ERR(link("missing", "other"), ENOENT);
	ERR(mkdir("nodir/d", 0755), ENOENT);
	CHECK(!exists("other"));
	return 0;
}

static int t_open_enotdir(void)
{
	struct stat st;

	TRY(touch("f"));
	ERR(open("f/x", O_RDONLY), ENOTDIR);
	ERR(open("f/x", O_WRONLY | O_CREAT, 0644), ENOTDIR);
	ERR(stat("f/", &st), ENOTDIR);
	ERR(stat("f/x", &st), ENOTDIR);
	ERR(mkdir("f/d", 0755), ENOTDIR);
	ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	SYS(symlink("f", "lf"));
	ERR(open("lf", O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(opendir("f") ? 0 : -1, ENOTDIR);
	return 0;
}

static int t_open_eisdir(void)
{
	char c;
	int fd;

	SYS(mkdir("d", 0755));
	ERR(open("d", O_WRONLY), EISDIR);
	ERR(open("d", O_RDWR), EISDIR);
	ERR(open("d", O_WRONLY | O_CREAT, 0644), EISDIR);
	ERR(open("d", O_RDONLY | O_TRUNC), EISDIR);
	ERR(truncate("d", 0), EISDIR);
	fd = SYS(open("d", O_RDONLY | O_DIRECTORY));
	ERR(read(fd, &c, 1), EISDIR);
	close(fd);
	return 0;
}

/* ---- names -------------------------------------------------------------------------------- */

static int t_name_255(void)
{
	char a[256], b[256], c[256], d[256], e[256], p[600];
	struct dent *v;
	size_t n;

	long_name(a, 255, 'a');
	long_name(b, 255, 'b');
	long_name(c, 255, 'c');
	long_name(d, 255, 'd');
	long_name(e, 255, 'e');
	TRY(put(a, "long"));
	SYS(mkdir(b, 0755));
	snprintf(p, sizeof p, "%s/%s", b, a);
	TRY(put(p, "inner"));
	SYS(rename(a, c));
	CHECK(!exists(a));
	TRY(expect_content(c, "long"));
	SYS(link(c, d));
	EQ(nlink_of(c), 2);
	SYS(symlink(c, e));
	char t[300];
	EQ(SYS(readlink(e, t, sizeof t)), 255);
	CHECK(memcmp(t, c, 255) == 0);
	TRY(expect_content(e, "long"));
	TRY(expect_content(p, "inner"));
	TRY(list_dir(".", &v, &n));
	EQ(n, 6);
	CHECK(find_dent(v, n, b) && find_dent(v, n, c) && find_dent(v, n, d) && find_dent(v, n, e));
	free(v);
	SYS(unlink(p));
	SYS(rmdir(b));
	SYS(unlink(c));
	SYS(unlink(d));
	SYS(unlink(e));
	return 0;
}

static int t_name_256(void)
{
	char x[300], p[600];
	struct stat st;
	struct dent *v;
	size_t n;

	long_name(x, 256, 'x');
	TRY(touch("f"));
	SYS(mkdir("d", 0755));
	ERR(open(x, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	ERR(open(x, O_RDONLY), ENAMETOOLONG);
	ERR(mkdir(x, 0755), ENAMETOOLONG);
	ERR(rename("f", x), ENAMETOOLONG);
	ERR(link("f", x), ENAMETOOLONG);
	ERR(symlink("f", x), ENAMETOOLONG);
	ERR(mknod(x, S_IFIFO | 0644, 0), ENAMETOOLONG);
	ERR(mknod(x, S_IFREG | 0644, 0), ENAMETOOLONG);
	ERR(stat(x, &st), ENAMETOOLONG);
	ERR(lstat(x, &st), ENAMETOOLONG);
	ERR(unlink(x), ENAMETOOLONG);
	ERR(rmdir(x), ENAMETOOLONG);
	snprintf(p, sizeof p, "d/%s", x);
	ERR(open(p, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	ERR(stat(p, &st), ENAMETOOLONG);
	ERR(rename("d", p), ENAMETOOLONG);
	/* Nothing was created. */
	TRY(list_dir(".", &v, &n));
	EQ(n, 4);
	free(v);
	TRY(list_dir("d", &v, &n));
	EQ(n, 2);
	free(v);
	return 0;
}

/* ---- mkdir / rmdir ------------------------------------------------------------------------ */

static int t_mkdir_rmdir(void)
{
	struct stat st;

	SYS(mkdir("d", 0750));
	TRY(lstat_ok("d", &st));
	EQ(st.st_mode, S_IFDIR | 0750);
	EQ(st.st_nlink, 2);
	EQ(st.st_uid, geteuid());
	ERR(mkdir("d", 0755), EEXIST);
	TRY(touch("f"));
	ERR(mkdir("f", 0755), EEXIST);
	SYS(symlink("d", "l"));
	ERR(mkdir("l", 0755), EEXIST);
	SYS(mkdir("d/sub", 0755));
	ERR(rmdir("d"), ENOTEMPTY);
	TRY(touch("d/sub/file"));
	ERR(rmdir("d/sub"), ENOTEMPTY);
	SYS(unlink("d/sub/file"));
	SYS(rmdir("d/sub"));
	ERR(rmdir("f"), ENOTDIR);
	ERR(rmdir("l"), ENOTDIR);
	ERR(unlink("d"), EISDIR);
	ERR(rmdir("."), EINVAL);
	ERR(rmdir("d/."), EINVAL);
	ERR(rmdir(".."), ENOTEMPTY);
	SYS(mkdir("t/", 0755));
	TRY(lstat_ok("t", &st));
	CHECK(S_ISDIR(st.st_mode));
	SYS(rmdir("t/"));
	SYS(rmdir("d"));
	CHECK(!exists("d"));
	CHECK(!exists("t"));
	return 0;
}

static int t_dir_nlink(void)
{
	EQ(nlink_of("."), 2);
	SYS(mkdir("a", 0755));
	EQ(nlink_of("a"), 2);
	EQ(nlink_of("."), 3);
	SYS(mkdir("a/x", 0755));
	SYS(mkdir("a/y", 0755));
	EQ(nlink_of("a"), 4);
	TRY(touch("a/f"));
	SYS(symlink("x", "a/l"));
	EQ(nlink_of("a"), 4);
	SYS(rmdir("a/y"));
	EQ(nlink_of("a"), 3);
	SYS(mkdir("b", 0755));
	EQ(nlink_of("."), 4);
	SYS(rename("a/x", "b/x")); /* a directory moves to another parent */
	EQ(nlink_of("a"), 2);
	EQ(nlink_of("b"), 3);
	TRY(expect_parent("b/x", "b"));
	SYS(mkdir("a/e", 0755));
	EQ(nlink_of("a"), 3);
	SYS(rename("b/x", "a/e")); /* over an empty directory in another parent */
	EQ(nlink_of("a"), 3);
	EQ(nlink_of("b"), 2);
	EQ(nlink_of("a/e"), 2);
	TRY(expect_parent("a/e", "a"));
	SYS(rename("a/e", "a/e2")); /* within its parent */
	EQ(nlink_of("a"), 3);
	SYS(rename("a/f", "b/f")); /* files do not count */
	EQ(nlink_of("a"), 3);
	EQ(nlink_of("b"), 2);
	EQ(nlink_of("."), 4);
	return 0;
}

/* ---- rename ------------------------------------------------------------------------------- */

static int t_rename_file(void)
{
	ino_t ia;
	struct stat st;
	char buf[8];
	int fd;

	TRY(put("a", "AAA"));
	TRY(put("b", "BBB"));
	SYS(link("b", "b2"));
	ia = ino_of("a");
	SYS(rename("a", "b"));
	CHECK(!exists("a"));
	EQ(ino_of("b"), ia);
	TRY(expect_content("b", "AAA"));
	EQ(nlink_of("b2"), 1);
	TRY(expect_content("b2", "BBB"));
	/* The replaced file stays readable through a descriptor opened before. */
	TRY(put("c", "CCC"));
	fd = SYS(open("c", O_RDWR));
	SYS(rename("b", "c"));
	SYS(fstat(fd, &st));
	EQ(st.st_nlink, 0);
	EQ(SYS(pread(fd, buf, sizeof buf, 0)), 3);
	CHECK(memcmp(buf, "CCC", 3) == 0);
	close(fd);
	TRY(expect_content("c", "AAA"));
	/* Across directories. */
	SYS(mkdir("d", 0755));
	SYS(rename("c", "d/c"));
	TRY(expect_content("d/c", "AAA"));
	CHECK(!exists("c"));
	return 0;
}

static int t_rename_dir(void)
{
	SYS(mkdir("a", 0755));
	TRY(touch("a/f"));
	SYS(mkdir("b", 0755));
	SYS(rename("a", "b"));
	CHECK(!exists("a"));
	CHECK(exists("b/f"));
	SYS(mkdir("c", 0755));
	TRY(touch("c/g"));
	ERR(rename("b", "c"), ENOTEMPTY);
	CHECK(exists("b/f") && exists("c/g"));
	TRY(touch("file"));
	ERR(rename("file", "b"), EISDIR);
	ERR(rename("b", "file"), ENOTDIR);
	CHECK(exists("file") && exists("b/f"));
	SYS(mkdir("b/sub", 0755));
	ERR(rename("b", "b/sub/x"), EINVAL);
	ERR(rename("b", "b/x"), EINVAL);
	CHECK(exists("b/sub"));
	return 0;
}

static int t_rename_noreplace(void)
{
	TRY(put("a", "A"));
	TRY(put("b", "B"));
	ERR(rename2("a", "b", RENAME_NOREPLACE), EEXIST);
	TRY(expect_content("a", "A"));
	TRY(expect_content("b", "B"));
	SYS(mkdir("d", 0755));
	ERR(rename2("d", "b", RENAME_NOREPLACE), EEXIST);
	ERR(rename2("a", "d", RENAME_NOREPLACE), EEXIST);
	SYS(rename2("a", "c", RENAME_NOREPLACE));
	CHECK(!exists("a"));
	TRY(expect_content("c", "A"));
	ERR(rename2("c", "b", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
	return 0;
}

static int t_rename_exchange_files(void)
{
	ino_t ia, ib;

	TRY(put("a", "AAA"));
	TRY(put("b", "BB"));
	ia = ino_of("a");
	ib = ino_of("b");
	SYS(rename2("a", "b", RENAME_EXCHANGE));
	EQ(ino_of("a"), ib);
	EQ(ino_of("b"), ia);
	TRY(expect_content("a", "BB"));
	TRY(expect_content("b", "AAA"));
	/* Across directories, with a symlink. */
	SYS(mkdir("d", 0755));
	SYS(symlink("somewhere", "d/l"));
	SYS(rename2("a", "d/l", RENAME_EXCHANGE));
	TRY(expect_content("d/l", "BB"));
	char t[64];
	EQ(SYS(readlink("a", t, sizeof t)), 9);
	CHECK(memcmp(t, "somewhere", 9) == 0);
	return 0;
}

static int t_rename_exchange_dirs(void)
{
	ino_t ix, iy;

	SYS(mkdir("p1", 0755));
	SYS(mkdir("p2", 0755));
	SYS(mkdir("p1/x", 0755));
	SYS(mkdir("p1/x/sub", 0755));
	TRY(touch("p1/x/in_x"));
	SYS(mkdir("p2/y", 0755));
	TRY(touch("p2/y/in_y"));
	ix = ino_of("p1/x");
	iy = ino_of("p2/y");
	SYS(rename2("p1/x", "p2/y", RENAME_EXCHANGE));
	EQ(ino_of("p1/x"), iy);
	EQ(ino_of("p2/y"), ix);
	CHECK(exists("p1/x/in_y") && exists("p2/y/in_x") && exists("p2/y/sub"));
	EQ(nlink_of("p1"), 3);
	EQ(nlink_of("p2"), 3);
	EQ(nlink_of("p2/y"), 3);
	EQ(nlink_of("p1/x"), 2);
	TRY(expect_parent("p1/x", "p1"));
	TRY(expect_parent("p2/y", "p2"));
	TRY(expect_parent("p2/y/sub", "p2/y"));
	return 0;
}

static int t_rename_exchange_file_dir(void)
{
	SYS(mkdir("p1", 0755));
	SYS(mkdir("p2", 0755));
	SYS(mkdir("p1/d", 0755));
	TRY(touch("p1/d/inside"));
	TRY(put("p2/f", "file"));
	EQ(nlink_of("p1"), 3);
	EQ(nlink_of("p2"), 2);
	SYS(rename2("p1/d", "p2/f", RENAME_EXCHANGE));
	TRY(expect_content("p1/d", "file"));
	CHECK(exists("p2/f/inside"));
	EQ(nlink_of("p1"), 2);
	EQ(nlink_of("p2"), 3);
	EQ(nlink_of("p2/f"), 2);
	TRY(expect_parent("p2/f", "p2"));
	/* And back, within one directory. */
	SYS(rename("p1/d", "p2/g"));
	SYS(rename2("p2/f", "p2/g", RENAME_EXCHANGE));
	TRY(expect_content("p2/f", "file"));
	CHECK(exists("p2/g/inside"));
	EQ(nlink_of("p2"), 3);
	TRY(expect_parent("p2/g", "p2"));
	return 0;
}

static int t_rename_exchange_missing(void)
{
	TRY(put("a", "A"));
	ERR(rename2("a", "nothere", RENAME_EXCHANGE), ENOENT);
	ERR(rename2("nothere", "a", RENAME_EXCHANGE), ENOENT);
	TRY(expect_content("a", "A"));
	CHECK(!exists("nothere"));
	return 0;
}

static int t_rename_self(void)
{
	ino_t i;

	TRY(put("a", "A"));
	i = ino_of("a");
	SYS(rename("a", "a"));
	EQ(ino_of("a"), i);
	TRY(expect_content("a", "A"));
	SYS(mkdir("d", 0755));
	SYS(rename("d", "d"));
	CHECK(exists("d"));
	/* Two hard links to one inode: rename is a no-op that leaves both names. */
	SYS(link("a", "b"));
	SYS(rename("a", "b"));
	CHECK(exists("a") && exists("b"));
	EQ(nlink_of("a"), 2);
	EQ(ino_of("b"), i);
	SYS(mkdir("d/sub", 0755));
	SYS(link("a", "d/sub/c"));
	SYS(rename("d/sub/c", "a"));
	CHECK(exists("d/sub/c") && exists("a"));
	EQ(nlink_of("a"), 3);
	return 0;
}

/* ---- links -------------------------------------------------------------------------------- */

static int t_link(void)
{
	struct stat a, b;

	TRY(put("a", "data"));
	TRY(lstat_ok("a", &a));
	EQ(a.st_nlink, 1);
	tick();
	SYS(link("a", "b"));
	TRY(lstat_ok("b", &b));
	EQ(b.st_nlink, 2);
	EQ(b.st_ino, a.st_ino);
	CHECKF(ts_cmp(b.st_ctim, a.st_ctim) > 0, "link did not change ctime");
	TRY(expect_content("b", "data"));
	ERR(link("a", "b"), EEXIST);
	ERR(link("missing", "c"), ENOENT);
	SYS(mkdir("d", 0755));
	ERR(link("d", "e"), EPERM);
	SYS(link("a", "d/c"));
	EQ(nlink_of("a"), 3);
	SYS(unlink("a"));
	EQ(nlink_of("b"), 2);
	SYS(unlink("b"));
	EQ(nlink_of("d/c"), 1);
	TRY(expect_content("d/c", "data"));
	/* A link to a symlink links the symlink itself. */
	SYS(symlink("d/c", "sym"));
	SYS(link("sym", "sym2"));
	TRY(lstat_ok("sym2", &b));
	CHECK(S_ISLNK(b.st_mode));
	EQ(b.st_nlink, 2);
	EQ(nlink_of("d/c"), 1);
	return 0;
}

static int statfs_free(long long *free_bytes)
{
	struct statfs s;
	SYS(statfs(".", &s));
	*free_bytes = (long long)s.f_bfree * (long long)s.f_bsize;
	return 0;
}

static int t_unlink_open(void)
{
	const size_t n = 8 * MiB;
	char *buf = malloc(n), *back = malloc(n);
	long long f0, f1, f2 = 0;
	struct stat st;
	int fd;

	CHECK(buf && back);
	fill(buf, n, 42);
	TRY(statfs_free(&f0));
	fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	TRY(pwrite_all(fd, buf, n, 0));
	SYS(fsync(fd));
	TRY(statfs_free(&f1));
	CHECKF(f0 - f1 >= (long long)n / 2, "writing 8 MiB took only %lld bytes of free space",
	       f0 - f1);
	SYS(unlink("f"));
	CHECK(!exists("f"));
	SYS(fstat(fd, &st));
	EQ(st.st_nlink, 0);
	EQ(st.st_size, (long long)n);
	TRY(pread_exact(fd, back, n, 0));
	CHECK(memcmp(buf, back, n) == 0);
	TRY(pwrite_all(fd, "tail", 4, (off_t)n));
	TRY(expect_bytes(fd, (off_t)n, "tail", 4));
	SYS(ftruncate(fd, (off_t)n + 2));
	SYS(fstat(fd, &st));
	EQ(st.st_size, (long long)n + 2);
	SYS(fsync(fd));
	SYS(close(fd));
	free(buf);
	free(back);
	/* The space comes back once the last descriptor is gone (give it ~10 s to commit). */
	for (int i = 0; i < 100; i++) {
		sync();
		TRY(statfs_free(&f2));
		if (f2 - f1 >= (long long)n / 2)
			return 0;
		usleep(100 * 1000);
	}
	FAIL("free space after close is %lld, was %lld with the file (%lld before it)", f2, f1, f0);
}

/* ---- symlinks ----------------------------------------------------------------------------- */

static int t_symlink(void)
{
	static const size_t lens[] = { 1, 59, 60, 61, 255, 256, 1000, 4000, 4094, 4095 };
	char target[4200], back[4200], name[32];
	struct stat st;

	SYS(symlink("target", "s"));
	TRY(lstat_ok("s", &st));
	CHECK(S_ISLNK(st.st_mode));
	EQ(st.st_size, 6);
	EQ(SYS(readlink("s", back, sizeof back)), 6);
	CHECK(memcmp(back, "target", 6) == 0);
	EQ(SYS(readlink("s", back, 3)), 3); /* truncated, no NUL */
	CHECK(memcmp(back, "tar", 3) == 0);
	ERR(stat("s", &st), ENOENT);
	TRY(put("target", "T"));
	TRY(expect_content("s", "T"));
	ERR(symlink("x", "s"), EEXIST);
	ERR(symlink("x", "target"), EEXIST);
	ERR(symlink("", "empty"), ENOENT);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		size_t n = lens[i];
		for (size_t j = 0; j < n; j++)
			target[j] = (j % 64 == 63) ? '/' : (char)('a' + (j * 7 + n) % 26);
		target[n] = 0;
		snprintf(name, sizeof name, "l%zu", n);
		SYS(symlink(target, name));
		TRY(lstat_ok(name, &st));
		EQ(st.st_size, (long long)n);
		EQ(SYS(readlink(name, back, sizeof back)), (long long)n);
		CHECKF(memcmp(back, target, n) == 0, "readlink of a %zu-byte target differs", n);
	}
	memset(target, 'z', 4096);
	target[4096] = 0;
	ERR(symlink(target, "toolong"), ENAMETOOLONG);
	CHECK(!exists("toolong"));
	ERR(readlink("target", back, sizeof back), EINVAL);
	SYS(mkdir("d", 0755));
	ERR(readlink("d", back, sizeof back), EINVAL);
	return 0;
}

static int t_symlink_loop(void)
{
	char name[16], prev[16];
	struct stat st;
	int fd;

	SYS(symlink("l2", "l1"));
	SYS(symlink("l1", "l2"));
	ERR(stat("l1", &st), ELOOP);
	ERR(open("l1", O_RDONLY), ELOOP);
	ERR(open("l1", O_WRONLY | O_CREAT, 0644), ELOOP);
	SYS(symlink("self", "self"));
	ERR(stat("self", &st), ELOOP);
	ERR(stat("self/x", &st), ELOOP);
	TRY(put("t", "T"));
	SYS(symlink("t", "s"));
	ERR(open("s", O_RDONLY | O_NOFOLLOW), ELOOP);
	ERR(open("s", O_WRONLY | O_NOFOLLOW), ELOOP);
	fd = SYS(open("s", O_PATH | O_NOFOLLOW));
	SYS(fstatat(fd, "", &st, AT_EMPTY_PATH));
	CHECK(S_ISLNK(st.st_mode));
	close(fd);
	/* A chain: c0 -> t, c1 -> c0, ...: 40 links are followed, the 41st is ELOOP. */
	strcpy(prev, "t");
	for (int i = 0; i <= 40; i++) {
		snprintf(name, sizeof name, "c%d", i);
		SYS(symlink(prev, name));
		strcpy(prev, name);
	}
	TRY(expect_content("c39", "T"));
	ERR(stat("c40", &st), ELOOP);
	return 0;
}

/* ---- special files ------------------------------------------------------------------------ */

static int t_mknod_fifo(void)
{
	struct stat st;
	char buf[4];
	int fd;

	SYS(mknod("p", S_IFIFO | 0640, 0));
	TRY(lstat_ok("p", &st));
	EQ(st.st_mode, S_IFIFO | 0640);
	EQ(st.st_size, 0);
	SYS(mkfifo("q", 0600));
	TRY(lstat_ok("q", &st));
	EQ(st.st_mode, S_IFIFO | 0600);
	fd = SYS(open("p", O_RDWR | O_NONBLOCK));
	EQ(SYS(write(fd, "hi", 2)), 2);
	EQ(SYS(read(fd, buf, sizeof buf)), 2);
	CHECK(memcmp(buf, "hi", 2) == 0);
	close(fd);
	ERR(mknod("p", S_IFIFO | 0644, 0), EEXIST);
	SYS(mknod("r", S_IFREG | 0600, 0));
	TRY(lstat_ok("r", &st));
	EQ(st.st_mode, S_IFREG | 0600);
	SYS(unlink("p"));
	CHECK(!exists("p"));
	return 0;
}

static int t_mknod_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	char buf[8];
	int s, c, a;

	SYS(mknod("s", S_IFSOCK | 0644, 0));
	TRY(lstat_ok("s", &st));
	EQ(st.st_mode, S_IFSOCK | 0644);
	/* A socket bound in the directory works (the file is only its name). */
	strcpy(sa.sun_path, "b");
	s = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(bind(s, (struct sockaddr *)&sa, sizeof sa));
	SYS(listen(s, 1));
	TRY(lstat_ok("b", &st));
	CHECK(S_ISSOCK(st.st_mode));
	c = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(connect(c, (struct sockaddr *)&sa, sizeof sa));
	a = SYS(accept(s, NULL, NULL));
	EQ(SYS(write(c, "ping", 4)), 4);
	EQ(SYS(read(a, buf, sizeof buf)), 4);
	CHECK(memcmp(buf, "ping", 4) == 0);
	close(a);
	close(c);
	close(s);
	SYS(unlink("b"));
	return 0;
}

static int t_mknod_dev(void)
{
	struct stat st;

	SYS(mknod("c", S_IFCHR | 0600, makedev(1, 3)));
	TRY(lstat_ok("c", &st));
	EQ(st.st_mode, S_IFCHR | 0600);
	EQ(st.st_rdev, makedev(1, 3));
	SYS(mknod("b", S_IFBLK | 0640, makedev(7, 200)));
	TRY(lstat_ok("b", &st));
	EQ(st.st_mode, S_IFBLK | 0640);
	EQ(st.st_rdev, makedev(7, 200));
	SYS(mknod("big", S_IFCHR | 0644, makedev(259, 65536 + 5)));
	TRY(lstat_ok("big", &st));
	EQ(major(st.st_rdev), 259);
	EQ(minor(st.st_rdev), 65536 + 5);
	ERR(mknod("c", S_IFCHR | 0600, makedev(1, 3)), EEXIST);
	return 0;
}

/* ---- file data ---------------------------------------------------------------------------- */

static int t_data_offsets(void)
{
	char buf[200];
	struct stat st;
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));

	TRY(pwrite_all(fd, "hello", 5, 0));
	TRY(pwrite_all(fd, "world", 5, 4093)); /* across a 4 KiB boundary */
	TRY(pwrite_all(fd, "!", 1, 65535));
	fill(buf, 100, 1);
	TRY(pwrite_all(fd, buf, 100, 1000000));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 1000100);
	TRY(expect_bytes(fd, 0, "hello", 5));
	TRY(expect_zeros(fd, 5, 4093 - 5));
	TRY(expect_bytes(fd, 4093, "world", 5));
	TRY(expect_zeros(fd, 4098, 65535 - 4098));
	TRY(expect_bytes(fd, 65535, "!", 1));
	TRY(expect_zeros(fd, 65536, 1000000 - 65536));
	TRY(expect_bytes(fd, 1000000, buf, 100));
	TRY(pwrite_all(fd, "XY", 2, 4095));
	TRY(expect_bytes(fd, 4093, "woXYd", 5));
	/* Reads across and at EOF. */
	EQ(SYS(pread(fd, buf, sizeof buf, 1000050)), 50);
	EQ(SYS(pread(fd, buf, sizeof buf, 1000100)), 0);
	EQ(SYS(pread(fd, buf, sizeof buf, 5000000)), 0);
	/* write() after lseek past EOF extends with a hole. */
	SYS(lseek(fd, 2000000, SEEK_SET));
	EQ(SYS(write(fd, "end", 3)), 3);
	SYS(fstat(fd, &st));
	EQ(st.st_size, 2000003);
	TRY(expect_zeros(fd, 1000100, 2000000 - 1000100));
	close(fd);
	/* Reopened: the same. */
	fd = SYS(open("f", O_RDONLY));
	TRY(expect_bytes(fd, 4093, "woXYd", 5));
	TRY(expect_bytes(fd, 2000000, "end", 3));
	close(fd);
	return 0;
}

/* Random writes, truncates and reads against an in-memory model of the file. */
static int t_data_model(void)
{
	const size_t max = 2 * MiB;
	unsigned char *model = calloc(max, 1), *tmp = malloc(max), *back = malloc(max);
	uint64_t s = g_seed ^ 0x6d6f64656cULL;
	size_t size = 0;
	struct stat st;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	CHECK(model && tmp && back);
	for (int i = 0; i < 600; i++) {
		unsigned r = (unsigned)(splitmix(&s) % 100);
		if (r < 70) {
			size_t off = splitmix(&s) % max;
			size_t len = 1 + splitmix(&s) % (r < 35 ? 512 : 128 * KiB);
			if (off + len > max)
				len = max - off;
			fill(tmp, len, splitmix(&s));
			TRY(pwrite_all(fd, tmp, len, (off_t)off));
			memcpy(model + off, tmp, len);
			if (off + len > size)
				size = off + len;
		} else if (r < 85) {
			size_t ns = splitmix(&s) % max;
			SYS(ftruncate(fd, (off_t)ns));
			if (ns < size)
				memset(model + ns, 0, size - ns);
			size = ns;
		} else if (r < 88) {
			SYS(r & 1 ? fsync(fd) : fdatasync(fd));
		} else {
			size_t off = splitmix(&s) % (size + 1);
			size_t len = 1 + splitmix(&s) % (256 * KiB);
			ssize_t got = SYS(pread(fd, back, len, (off_t)off));
			size_t want = off + len > size ? size - off : len;
			CHECKF((size_t)got == want, "step %d: pread %zu at %zu of a %zu-byte file: %zd",
			       i, len, off, size, got);
			for (size_t k = 0; k < want; k++)
				if (back[k] != model[off + k])
					FAIL("step %d (seed %" PRIu64 "): byte %zu is %#x, expected %#x",
					     i, g_seed, off + k, back[k], model[off + k]);
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		SYS(fstat(fd, &st));
		EQ(st.st_size, (long long)size);
		if (size)
			TRY(pread_exact(fd, back, size, 0));
		for (size_t k = 0; k < size; k++)
			if (back[k] != model[k])
				FAIL("pass %d (seed %" PRIu64 "): byte %zu is %#x, expected %#x", pass,
				     g_seed, k, back[k], model[k]);
		close(fd);
		fd = SYS(open("f", O_RDONLY));
	}
	close(fd);
	free(model);
	free(tmp);
	free(back);
	return 0;
}

static int t_holes(void)
{
	struct stat st;
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));

	TRY(pwrite_all(fd, "data", 4, 10 * MiB));
	SYS(fsync(fd));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 10 * MiB + 4);
	TRY(expect_zeros(fd, 0, 10 * MiB));
	TRY(expect_bytes(fd, 10 * MiB, "data", 4));
	CHECKF(st.st_blocks * 512 < 1 * MiB, "a 10 MiB file with 4 bytes of data has %lld blocks",
	       (long long)st.st_blocks);
	close(fd);
	return 0;
}

/* Truncate down then up (or write past EOF): what was beyond the short size reads as zeros. */
static int t_truncate_stale_tail(void)
{
	char a[8192];
	struct stat st;

	memset(a, 'A', sizeof a);
	for (int variant = 0; variant < 3; variant++) {
		int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));
		TRY(pwrite_all(fd, a, sizeof a, 0));
		if (variant) {
			SYS(fsync(fd));
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		}
		SYS(ftruncate(fd, 100));
		SYS(fstat(fd, &st));
		EQ(st.st_size, 100);
		if (variant) {
			SYS(fsync(fd));
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		}
		if (variant == 2) {
			close(fd);
			fd = SYS(open("f", O_RDWR));
		}
		SYS(ftruncate(fd, sizeof a));
		TRY(expect_bytes(fd, 0, a, 100));
		TRY(expect_zeros(fd, 100, sizeof a - 100));
		/* Down again, then a write past EOF. */
		SYS(ftruncate(fd, 50));
		if (variant)
			SYS(fsync(fd));
		TRY(pwrite_all(fd, "Z", 1, 12000));
		SYS(fstat(fd, &st));
		EQ(st.st_size, 12001);
		TRY(expect_bytes(fd, 0, a, 50));
		TRY(expect_zeros(fd, 50, 12000 - 50));
		/* Up with truncate(2) on the path. */
		SYS(truncate("f", 20000));
		TRY(expect_zeros(fd, 12001, 20000 - 12001));
		close(fd);
	}
	return 0;
}

static int t_truncate_huge(void)
{
	static const long long sizes[] = { 8 * TiB, 1LL << 50, 1 * TiB + 1, LLONG_MAX };
	struct stat st;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	TRY(pwrite_all(fd, "abc", 3, 0));
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		long long sz = sizes[i];
		errno = 0;
		int r = ftruncate(fd, sz);
		int e = errno;
		SYS(fstat(fd, &st));
		if (r == 0) {
			CHECKF(st.st_size == sz, "ftruncate(%lld) succeeded but st_size is %lld", sz,
			       (long long)st.st_size);
			TRY(expect_zeros(fd, sz - 10, 10));
			TRY(expect_bytes(fd, 0, "abc", 3));
		} else {
			CHECKF(e == EFBIG || e == EINVAL, "ftruncate(%lld): %s, expected EFBIG/EINVAL",
			       sz, errname(e));
			EQ(st.st_size, 3);
		}
		SYS(ftruncate(fd, 3));
		SYS(fstat(fd, &st));
		EQ(st.st_size, 3);
		TRY(expect_bytes(fd, 0, "abc", 3));
	}
	/* A write at 1 TiB: works with the right size or fails with EFBIG. */
	errno = 0;
	ssize_t w = pwrite(fd, "x", 1, 1 * TiB);
	SYS(fstat(fd, &st));
	if (w == 1) {
		EQ(st.st_size, 1 * TiB + 1);
		TRY(expect_bytes(fd, 1 * TiB, "x", 1));
	} else {
		CHECKF(w == -1 && errno == EFBIG, "pwrite at 1 TiB returned %zd", w);
		EQ(st.st_size, 3);
	}
	SYS(ftruncate(fd, 0));
	close(fd);
	return 0;
}

static int t_blocks(void)
{
	const size_t n = 1 * MiB;
	char *buf = malloc(n);
	struct stat a, b;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	CHECK(buf);
	SYS(fstat(fd, &a));
	CHECKF(a.st_blocks <= 8, "an empty file has %lld blocks", (long long)a.st_blocks);
	fill(buf, n, 7);
	TRY(pwrite_all(fd, buf, n, 0));
	SYS(fsync(fd));
	SYS(fstat(fd, &a));
	CHECKF(a.st_blocks >= (blkcnt_t)(n / 512), "1 MiB of data, %lld blocks of 512",
	       (long long)a.st_blocks);
	CHECKF(a.st_blocks <= (blkcnt_t)(2 * n / 512), "1 MiB of data, %lld blocks of 512",
	       (long long)a.st_blocks);
	SYS(ftruncate(fd, 100 * KiB));
	SYS(fsync(fd));
	SYS(fstat(fd, &b));
	CHECKF(b.st_blocks <= (blkcnt_t)((100 * KiB + 64 * KiB) / 512),
	       "truncated to 100 KiB: %lld blocks (was %lld)", (long long)b.st_blocks,
	       (long long)a.st_blocks);
	SYS(ftruncate(fd, 0));
	SYS(fsync(fd));
	SYS(fstat(fd, &b));
	CHECKF(b.st_blocks <= 8, "truncated to 0: %lld blocks", (long long)b.st_blocks);
	close(fd);
	free(buf);
	return 0;
}

static int t_fallocate(void)
{
	struct stat st;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	SYS(fallocate(fd, 0, 0, 1 * MiB));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 1 * MiB);
	CHECKF(st.st_blocks >= (blkcnt_t)(MiB / 512), "fallocated 1 MiB, %lld blocks",
	       (long long)st.st_blocks);
	TRY(expect_zeros(fd, 0, 1 * MiB));
	/* Beyond existing data: the data stays, the rest reads as zeros. */
	SYS(ftruncate(fd, 0));
	TRY(pwrite_all(fd, "abc", 3, 0));
	SYS(fallocate(fd, 0, 4096, 8192));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 12288);
	TRY(expect_bytes(fd, 0, "abc", 3));
	TRY(expect_zeros(fd, 3, 12288 - 3));
	/* Inside the file: nothing changes. */
	SYS(fallocate(fd, 0, 0, 100));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 12288);
	TRY(expect_bytes(fd, 0, "abc", 3));
	ERR(fallocate(fd, 0, 0, 0), EINVAL);
	ERR(fallocate(fd, 0, -1, 10), EINVAL);
	close(fd);
	return 0;
}

static int t_fallocate_keep_size(void)
{
	struct stat st;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	TRY(pwrite_all(fd, "abc", 3, 0));
	SYS(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 * MiB));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 3);
	TRY(expect_bytes(fd, 0, "abc", 3));
	char c;
	EQ(SYS(pread(fd, &c, 1, 3)), 0);
	/* A write into the preallocated range past EOF: the gap reads as zeros. */
	TRY(pwrite_all(fd, "z", 1, 100000));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 100001);
	TRY(expect_zeros(fd, 3, 100000 - 3));
	/* Truncating up over preallocated space reads zeros too. */
	SYS(ftruncate(fd, 900000));
	TRY(expect_zeros(fd, 100001, 900000 - 100001));
	close(fd);
	return 0;
}

static int t_punch_hole(void)
{
	const size_t n = 1 * MiB;
	char *buf = malloc(n);
	struct stat a, b;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	CHECK(buf);
	fill(buf, n, 3);
	TRY(pwrite_all(fd, buf, n, 0));
	SYS(fsync(fd));
	SYS(fstat(fd, &a));
	ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 256 * KiB, 512 * KiB), EOPNOTSUPP);
	SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 * KiB, 512 * KiB));
	SYS(fstat(fd, &b));
	EQ(b.st_size, (long long)n);
	TRY(expect_bytes(fd, 0, buf, 256 * KiB));
	TRY(expect_zeros(fd, 256 * KiB, 512 * KiB));
	TRY(expect_bytes(fd, 768 * KiB, buf + 768 * KiB, 256 * KiB));
	SYS(fsync(fd));
	SYS(fstat(fd, &b));
	CHECKF(b.st_blocks <= a.st_blocks - (blkcnt_t)(512 * KiB / 512) + 16,
	       "punched 512 KiB: %lld blocks, were %lld", (long long)b.st_blocks,
	       (long long)a.st_blocks);
	/* Unaligned: exactly the range, the bytes around it stay. */
	SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 3000));
	TRY(expect_bytes(fd, 0, buf, 1000));
	TRY(expect_zeros(fd, 1000, 3000));
	TRY(expect_bytes(fd, 4000, buf + 4000, 256 * KiB - 4000));
	/* Past EOF: the size stays. */
	SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, n - 10, 1 * MiB));
	SYS(fstat(fd, &b));
	EQ(b.st_size, (long long)n);
	TRY(expect_zeros(fd, n - 10, 10));
	TRY(expect_bytes(fd, n - 20, buf + n - 20, 10));
	close(fd);
	/* Reopened: the same. */
	fd = SYS(open("f", O_RDONLY));
	TRY(expect_zeros(fd, 256 * KiB, 512 * KiB));
	TRY(expect_bytes(fd, 768 * KiB, buf + 768 * KiB, 256 * KiB - 20));
	close(fd);
	free(buf);
	return 0;
}

static int t_zero_range(void)
{
	char buf[64 * 1024];
	struct stat st;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	fill(buf, sizeof buf, 5);
	TRY(pwrite_all(fd, buf, sizeof buf, 0));
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 1000, 5000));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 64 * KiB);
	TRY(expect_bytes(fd, 0, buf, 1000));
	TRY(expect_zeros(fd, 1000, 5000));
	TRY(expect_bytes(fd, 6000, buf + 6000, sizeof buf - 6000));
	/* Extending past EOF. */
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 60 * KiB, 10 * KiB));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 70 * KiB);
	TRY(expect_bytes(fd, 6000, buf + 6000, 60 * KiB - 6000));
	TRY(expect_zeros(fd, 60 * KiB, 10 * KiB));
	/* With KEEP_SIZE, inside and past EOF. */
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 10000, 100));
	TRY(expect_zeros(fd, 10000, 100));
	TRY(expect_bytes(fd, 10100, buf + 10100, 100));
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 100 * KiB, 10 * KiB));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 70 * KiB);
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 65 * KiB, 100 * KiB));
	SYS(fstat(fd, &st));
	EQ(st.st_size, 70 * KiB);
	close(fd);
	return 0;
}

static int seek_layout(int fd, long long size)
{
	EQ(SYS(lseek(fd, 0, SEEK_DATA)), 0);
	EQ(SYS(lseek(fd, 0, SEEK_HOLE)), 64 * KiB);
	EQ(SYS(lseek(fd, 100, SEEK_HOLE)), 64 * KiB);
	EQ(SYS(lseek(fd, 64 * KiB, SEEK_DATA)), 1 * MiB);
	EQ(SYS(lseek(fd, 100 * KiB, SEEK_DATA)), 1 * MiB);
	EQ(SYS(lseek(fd, 100 * KiB, SEEK_HOLE)), 100 * KiB);
	EQ(SYS(lseek(fd, 1 * MiB, SEEK_HOLE)), 1 * MiB + 64 * KiB);
	EQ(SYS(lseek(fd, 1 * MiB + 5, SEEK_DATA)), 1 * MiB + 5);
	if (size > 1 * MiB + 64 * KiB) { /* a trailing hole */
		ERR(lseek(fd, 1 * MiB + 64 * KiB, SEEK_DATA), ENXIO);
		EQ(SYS(lseek(fd, 1 * MiB + 64 * KiB, SEEK_HOLE)), 1 * MiB + 64 * KiB);
	}
	ERR(lseek(fd, size, SEEK_DATA), ENXIO);
	ERR(lseek(fd, size, SEEK_HOLE), ENXIO);
	/* A negative offset: ENXIO as on ext4 (issue 12 item 8), not EINVAL. */
	ERR(lseek(fd, -1, SEEK_DATA), ENXIO);
	ERR(lseek(fd, -1, SEEK_HOLE), ENXIO);
	ERR(lseek(fd, size + 1, SEEK_DATA), ENXIO);
	ERR(lseek(fd, size + 4 * MiB, SEEK_HOLE), ENXIO);
	return 0;
}

static int t_seek_data_hole(void)
{
	char buf[64 * 1024];
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	ERR(lseek(fd, 0, SEEK_DATA), ENXIO);
	ERR(lseek(fd, 0, SEEK_HOLE), ENXIO);
	fill(buf, sizeof buf, 9);
	TRY(pwrite_all(fd, buf, sizeof buf, 0));
	TRY(pwrite_all(fd, buf, sizeof buf, 1 * MiB));
	TRY(seek_layout(fd, 1 * MiB + 64 * KiB));  /* before fsync */
	SYS(fsync(fd));
	TRY(seek_layout(fd, 1 * MiB + 64 * KiB));
	SYS(ftruncate(fd, 2 * MiB));
	TRY(seek_layout(fd, 2 * MiB));
	close(fd);
	fd = SYS(open("f", O_RDONLY));
	TRY(seek_layout(fd, 2 * MiB));
	close(fd);
	/* A punched hole is a hole. */
	fd = SYS(open("g", O_RDWR | O_CREAT | O_TRUNC, 0644));
	for (int i = 0; i < 4; i++)
		TRY(pwrite_all(fd, buf, sizeof buf, i * 64 * KiB));
	SYS(fsync(fd));
	SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * KiB, 128 * KiB));
	EQ(SYS(lseek(fd, 0, SEEK_HOLE)), 64 * KiB);
	EQ(SYS(lseek(fd, 64 * KiB, SEEK_DATA)), 192 * KiB);
	close(fd);
	return 0;
}

static int cfr_all(int in, loff_t *oin, int out, loff_t *oout, size_t len, size_t *done)
{
	*done = 0;
	while (len) {
		ssize_t r = SYS(copy_file_range(in, oin, out, oout, len, 0));
		if (r == 0)
			break;
		*done += (size_t)r;
		len -= (size_t)r;
	}
	return 0;
}

static int t_copy_file_range(void)
{
	const size_t n = 1 * MiB + 123;
	char *buf = malloc(n), *pre = malloc(20000);
	loff_t oin, oout;
	size_t done;
	struct stat st;
	int src, dst;

	CHECK(buf && pre);
	fill(buf, n, 11);
	src = SYS(open("src", O_RDWR | O_CREAT | O_TRUNC, 0644));
	TRY(pwrite_all(src, buf, n, 0));
	dst = SYS(open("dst", O_RDWR | O_CREAT | O_TRUNC, 0644));
	/* Between files, the whole of it. */
	oin = 0;
	oout = 0;
	TRY(cfr_all(src, &oin, dst, &oout, n, &done));
	EQ(done, n);
	EQ(oin, (long long)n);
	EQ(oout, (long long)n);
	SYS(fstat(dst, &st));
	EQ(st.st_size, (long long)n);
	TRY(expect_bytes(dst, 0, buf, n));
	/* Unaligned into the middle of existing data: the bytes around stay. */
	fill(pre, 20000, 12);
	TRY(pwrite_all(dst, pre, 20000, 0));
	oin = 7;
	oout = 4099;
	TRY(cfr_all(src, &oin, dst, &oout, 10000, &done));
	EQ(done, 10000);
	TRY(expect_bytes(dst, 0, pre, 4099));
	TRY(expect_bytes(dst, 4099, buf + 7, 10000));
	TRY(expect_bytes(dst, 14099, pre + 14099, 20000 - 14099));
	/* Short copy at the source's EOF, then 0 at EOF. */
	oin = (loff_t)n - 100;
	oout = 0;
	TRY(cfr_all(src, &oin, dst, &oout, 1 * MiB, &done));
	EQ(done, 100);
	TRY(expect_bytes(dst, 0, buf + n - 100, 100));
	oin = (loff_t)n;
	EQ(SYS(copy_file_range(src, &oin, dst, &oout, 4096, 0)), 0);
	oin = (loff_t)n + 5000;
	EQ(SYS(copy_file_range(src, &oin, dst, &oout, 4096, 0)), 0);
	/* Within one file, past its end: the size grows. */
	oin = 0;
	oout = 2 * MiB;
	TRY(cfr_all(src, &oin, src, &oout, 100 * KiB, &done));
	EQ(done, 100 * KiB);
	SYS(fstat(src, &st));
	EQ(st.st_size, 2 * MiB + 100 * KiB);
	TRY(expect_bytes(src, 2 * MiB, buf, 100 * KiB));
	TRY(expect_zeros(src, (off_t)n, 2 * MiB - n));
	/* Within one file, overlapping ranges: EINVAL. */
	oin = 0;
	oout = 1000;
	ERR(copy_file_range(src, &oin, src, &oout, 4096, 0), EINVAL);
	close(src);
	close(dst);
	/* Persisted. */
	dst = SYS(open("dst", O_RDONLY));
	TRY(expect_bytes(dst, 4099, buf + 7, 10000));
	close(dst);
	free(buf);
	free(pre);
	return 0;
}

static int t_mmap(void)
{
	const size_t n = 64 * KiB + 100;
	char *buf = malloc(n), *m;
	int fd = SYS(open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));

	CHECK(buf);
	fill(buf, n, 21);
	TRY(pwrite_all(fd, buf, n, 0));
	m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK(memcmp(m, buf, n) == 0);
	/* The rest of the last page past EOF reads as zeros. */
	CHECK(all_zero(m + n, 4096 - (n % 4096)));
	memcpy(m + 5000, "mapped", 6);
	memcpy(buf + 5000, "mapped", 6);
	SYS(msync(m, n, MS_SYNC));
	TRY(expect_bytes(fd, 0, buf, n));
	TRY(pwrite_all(fd, "written", 7, 70));
	CHECK(memcmp(m + 70, "written", 7) == 0);
	munmap(m, n);
	close(fd);
	fd = SYS(open("f", O_RDONLY));
	TRY(expect_bytes(fd, 5000, "mapped", 6));
	close(fd);
	free(buf);
	return 0;
}

static int t_locks(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	int status;
	pid_t pid;

	SYS(fcntl(fd, F_SETLK, &fl));
	SYS(flock(fd, LOCK_EX));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct flock g = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10 };
		int cfd = open("f", O_RDWR);
		int ok = cfd >= 0;
		ok = ok && fcntl(cfd, F_SETLK, &g) == -1 && (errno == EAGAIN || errno == EACCES);
		ok = ok && fcntl(cfd, F_GETLK, &g) == 0 && g.l_type == F_WRLCK && g.l_pid == getppid();
		g.l_type = F_WRLCK;
		g.l_start = 200;
		ok = ok && fcntl(cfd, F_SETLK, &g) == 0;
		ok = ok && flock(cfd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0);
	SYS(waitpid(pid, &status, 0));
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "another process got a conflicting fcntl or flock lock (status %#x)", status);
	close(fd);
	return 0;
}

/* ---- attributes --------------------------------------------------------------------------- */

static int t_chmod(void)
{
	struct stat a, b;

	TRY(touch("f"));
	TRY(lstat_ok("f", &a));
	tick();
	SYS(chmod("f", 0640));
	TRY(lstat_ok("f", &b));
	EQ(b.st_mode, S_IFREG | 0640);
	CHECKF(ts_cmp(b.st_ctim, a.st_ctim) > 0, "chmod did not change ctime");
	CHECKF(ts_cmp(b.st_mtim, a.st_mtim) == 0, "chmod changed mtime");
	SYS(chmod("f", 01777));
	TRY(lstat_ok("f", &b));
	EQ(b.st_mode, S_IFREG | 01777);
	int fd = SYS(open("f", O_RDONLY));
	SYS(fchmod(fd, 0));
	SYS(fstat(fd, &b));
	EQ(b.st_mode, S_IFREG);
	close(fd);
	SYS(mkdir("d", 0755));
	SYS(chmod("d", 01777));
	TRY(lstat_ok("d", &b));
	EQ(b.st_mode, S_IFDIR | 01777);
	SYS(symlink("d", "l"));
	SYS(chmod("l", 0700)); /* follows */
	TRY(lstat_ok("d", &b));
	EQ(b.st_mode, S_IFDIR | 0700);
	TRY(lstat_ok("l", &b));
	CHECK(S_ISLNK(b.st_mode));
	return 0;
}

static int t_chown(void)
{
	struct stat a, b;

	TRY(touch("f"));
	TRY(lstat_ok("f", &a));
	tick();
	SYS(chown("f", 1234, 5678));
	TRY(lstat_ok("f", &b));
	EQ(b.st_uid, 1234);
	EQ(b.st_gid, 5678);
	CHECKF(ts_cmp(b.st_ctim, a.st_ctim) > 0, "chown did not change ctime");
	SYS(chown("f", (uid_t)-1, (gid_t)-1));
	SYS(chown("f", (uid_t)-1, 42));
	TRY(lstat_ok("f", &b));
	EQ(b.st_uid, 1234);
	EQ(b.st_gid, 42);
	/* lchown changes the symlink, not its target. */
	SYS(symlink("f", "l"));
	SYS(lchown("l", 77, 88));
	TRY(lstat_ok("l", &b));
	EQ(b.st_uid, 77);
	EQ(b.st_gid, 88);
	TRY(lstat_ok("f", &b));
	EQ(b.st_uid, 1234);
	int fd = SYS(open("f", O_RDONLY));
	SYS(fchown(fd, 0, 0));
	SYS(fstat(fd, &b));
	EQ(b.st_uid, 0);
	close(fd);
	/* chown of a regular file clears S_ISUID, and S_ISGID with group execute (Linux). */
	SYS(chmod("f", 06755));
	SYS(chown("f", 1, 1));
	TRY(lstat_ok("f", &b));
	EQ(b.st_mode, S_IFREG | 0755);
	/* ... not of a directory. */
	SYS(mkdir("d", 0755));
	SYS(chmod("d", 02755));
	SYS(chown("d", 1, 1));
	TRY(lstat_ok("d", &b));
	EQ(b.st_mode, S_IFDIR | 02755);
	return 0;
}

static int t_utimens(void)
{
	struct timespec ts[2] = { { 1234567890, 123456789 }, { 987654321, 999999999 } };
	struct timespec now;
	struct stat st;

	TRY(touch("f"));
	clock_gettime(CLOCK_REALTIME, &now);
	SYS(utimensat(AT_FDCWD, "f", ts, 0));
	TRY(lstat_ok("f", &st));
	EQ(st.st_atim.tv_sec, ts[0].tv_sec);
	EQ(st.st_atim.tv_nsec, ts[0].tv_nsec);
	EQ(st.st_mtim.tv_sec, ts[1].tv_sec);
	EQ(st.st_mtim.tv_nsec, ts[1].tv_nsec);
	CHECKF(st.st_ctim.tv_sec >= now.tv_sec - 1, "ctime %lld is before the call (%lld)",
	       (long long)st.st_ctim.tv_sec, (long long)now.tv_sec);
	/* Before 1970 and after 2038. */
	struct timespec far[2] = { { -1000000, 5 }, { 4102444800LL, 1 } };
	int fd = SYS(open("f", O_RDONLY));
	SYS(futimens(fd, far));
	SYS(fstat(fd, &st));
	close(fd);
	EQ(st.st_atim.tv_sec, -1000000);
	EQ(st.st_atim.tv_nsec, 5);
	EQ(st.st_mtim.tv_sec, 4102444800LL);
	EQ(st.st_mtim.tv_nsec, 1);
	/* On a symlink with AT_SYMLINK_NOFOLLOW: the link's times, not the target's. */
	SYS(symlink("f", "l"));
	struct timespec lt[2] = { { 1111, 1 }, { 2222, 2 } };
	SYS(utimensat(AT_FDCWD, "l", lt, AT_SYMLINK_NOFOLLOW));
	TRY(lstat_ok("l", &st));
	EQ(st.st_mtim.tv_sec, 2222);
	EQ(st.st_mtim.tv_nsec, 2);
	TRY(lstat_ok("f", &st));
	EQ(st.st_mtim.tv_sec, 4102444800LL);
	/* Directories too. */
	SYS(mkdir("d", 0755));
	SYS(utimensat(AT_FDCWD, "d", ts, 0));
	TRY(lstat_ok("d", &st));
	EQ(st.st_mtim.tv_sec, ts[1].tv_sec);
	EQ(st.st_mtim.tv_nsec, ts[1].tv_nsec);
	return 0;
}

static int t_utime_now_omit(void)
{
	struct timespec set[2] = { { 1000000000, 111 }, { 1000000001, 222 } };
	struct timespec t0, t1;
	struct stat a, b;

	TRY(touch("f"));
	SYS(utimensat(AT_FDCWD, "f", set, 0));
	TRY(lstat_ok("f", &a));
	struct timespec now_omit[2] = { { 0, UTIME_OMIT }, { 0, UTIME_NOW } };
	clock_gettime(CLOCK_REALTIME, &t0);
	SYS(utimensat(AT_FDCWD, "f", now_omit, 0));
	clock_gettime(CLOCK_REALTIME, &t1);
	TRY(lstat_ok("f", &b));
	EQ(b.st_atim.tv_sec, 1000000000);
	EQ(b.st_atim.tv_nsec, 111);
	CHECKF(b.st_mtim.tv_sec >= t0.tv_sec - 1 && b.st_mtim.tv_sec <= t1.tv_sec + 1,
	       "UTIME_NOW gave mtime %lld, now is %lld", (long long)b.st_mtim.tv_sec,
	       (long long)t1.tv_sec);
	struct timespec omit_now[2] = { { 0, UTIME_NOW }, { 0, UTIME_OMIT } };
	SYS(utimensat(AT_FDCWD, "f", omit_now, 0));
	TRY(lstat_ok("f", &a));
	CHECKF(a.st_atim.tv_sec >= t0.tv_sec - 1, "UTIME_NOW gave atime %lld",
	       (long long)a.st_atim.tv_sec);
	CHECKF(ts_cmp(a.st_mtim, b.st_mtim) == 0, "UTIME_OMIT changed mtime");
	struct timespec omit[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	SYS(utimensat(AT_FDCWD, "f", omit, 0));
	TRY(lstat_ok("f", &b));
	CHECK(ts_cmp(a.st_atim, b.st_atim) == 0 && ts_cmp(a.st_mtim, b.st_mtim) == 0);
	/* NULL: both now. */
	SYS(utimensat(AT_FDCWD, "f", set, 0));
	SYS(utimensat(AT_FDCWD, "f", NULL, 0));
	TRY(lstat_ok("f", &b));
	CHECK(b.st_atim.tv_sec >= t0.tv_sec - 1 && b.st_mtim.tv_sec >= t0.tv_sec - 1);
	return 0;
}

/* ctime (and for some, mtime) move forward on each change; mtime stays on metadata changes. */
static int t_ctime_mtime(void)
{
	struct stat a, b, pa, pb;
	int fd;

	TRY(put("f", "x"));
#define BEFORE()                                                                          \
	do {                                                                              \
		TRY(lstat_ok("f", &a));                                                   \
		TRY(lstat_ok(".", &pa));                                                  \
		tick();                                                                   \
	} while (0)
#define AFTER(what, mtime_changes, dir_changes)                                           \
	do {                                                                              \
		TRY(lstat_ok("f", &b));                                                   \
		TRY(lstat_ok(".", &pb));                                                  \
		CHECKF(ts_cmp(b.st_ctim, a.st_ctim) > 0, what ": ctime did not change");  \
		if (mtime_changes)                                                        \
			CHECKF(ts_cmp(b.st_mtim, a.st_mtim) > 0, what ": mtime did not change"); \
		else                                                                      \
			CHECKF(ts_cmp(b.st_mtim, a.st_mtim) == 0, what ": mtime changed"); \
		if (dir_changes)                                                          \
			CHECKF(ts_cmp(pb.st_mtim, pa.st_mtim) > 0 &&                      \
			       ts_cmp(pb.st_ctim, pa.st_ctim) > 0,                        \
			       what ": the directory's mtime/ctime did not change");      \
		else                                                                      \
			CHECKF(ts_cmp(pb.st_mtim, pa.st_mtim) == 0,                       \
			       what ": the directory's mtime changed");                   \
	} while (0)

	BEFORE();
	fd = SYS(open("f", O_WRONLY));
	SYS(write(fd, "yy", 2));
	close(fd);
	AFTER("write", 1, 0);
	BEFORE();
	SYS(truncate("f", 1));
	AFTER("truncate down", 1, 0);
	BEFORE();
	SYS(truncate("f", 5000));
	AFTER("truncate up", 1, 0);
	BEFORE();
	fd = SYS(open("f", O_WRONLY));
	SYS(ftruncate(fd, 10));
	close(fd);
	AFTER("ftruncate", 1, 0);
	BEFORE();
	SYS(chmod("f", 0600));
	AFTER("chmod", 0, 0);
	BEFORE();
	SYS(link("f", "g"));
	AFTER("link", 0, 1);
	BEFORE();
	SYS(unlink("g"));
	AFTER("unlink of another link", 0, 1);
	BEFORE();
	SYS(rename("f", "h"));
	SYS(rename("h", "f"));
	AFTER("rename", 0, 1);
	BEFORE();
	fd = SYS(open("f", O_WRONLY));
	SYS(fallocate(fd, 0, 0, 1 * MiB));
	close(fd);
	AFTER("fallocate (extending)", 1, 0);
#undef BEFORE
#undef AFTER
	/* Directory changes. */
	static const char *ops[] = { "create", "mkdir", "symlink", "mknod", "rmdir", "unlink" };
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		TRY(lstat_ok(".", &pa));
		tick();
		switch (i) {
		case 0: TRY(touch("n")); break;
		case 1: SYS(mkdir("m", 0755)); break;
		case 2: SYS(symlink("n", "s")); break;
		case 3: SYS(mknod("p", S_IFIFO | 0644, 0)); break;
		case 4: SYS(rmdir("m")); break;
		case 5: SYS(unlink("n")); break;
		}
		TRY(lstat_ok(".", &pb));
		CHECKF(ts_cmp(pb.st_mtim, pa.st_mtim) > 0 && ts_cmp(pb.st_ctim, pa.st_ctim) > 0,
		       "%s: the directory's mtime/ctime did not change", ops[i]);
	}
	/* A rename between directories changes both. */
	SYS(mkdir("d1", 0755));
	SYS(mkdir("d2", 0755));
	TRY(touch("d1/x"));
	TRY(lstat_ok("d1", &pa));
	TRY(lstat_ok("d2", &a));
	tick();
	SYS(rename("d1/x", "d2/x"));
	TRY(lstat_ok("d1", &pb));
	TRY(lstat_ok("d2", &b));
	CHECKF(ts_cmp(pb.st_mtim, pa.st_mtim) > 0, "rename: the source directory's mtime");
	CHECKF(ts_cmp(b.st_mtim, a.st_mtim) > 0, "rename: the target directory's mtime");
	return 0;
}

static int t_nsec(void)
{
	char name[16];
	int nonzero = 0;

	for (int i = 0; i < 10; i++) {
		struct stat st;
		snprintf(name, sizeof name, "f%d", i);
		TRY(put(name, "x"));
		int fd = SYS(open(name, O_WRONLY));
		SYS(write(fd, "y", 1));
		close(fd);
		TRY(lstat_ok(name, &st));
		if (st.st_mtim.tv_nsec != 0)
			nonzero++;
		CHECKF(st.st_mtim.tv_nsec >= 0 && st.st_mtim.tv_nsec < 1000000000, "tv_nsec %ld",
		       (long)st.st_mtim.tv_nsec);
		usleep(1000 + i * 137);
	}
	CHECKF(nonzero > 0, "10 files written: every mtime has tv_nsec 0 (no sub-second times)");
	return 0;
}

/* ---- set-user-ID / set-group-ID ----------------------------------------------------------- */

static int t_suid_root_write(void)
{
	struct stat st;
	int fd;

	TRY(put("f", "data"));
	SYS(chmod("f", 06777));
	fd = SYS(open("f", O_WRONLY));
	SYS(write(fd, "more", 4));
	SYS(ftruncate(fd, 2));
	close(fd);
	SYS(truncate("f", 1));
	TRY(lstat_ok("f", &st));
	EQ(st.st_mode, S_IFREG | 06777); /* CAP_FSETID: kept */
	return 0;
}

struct modes_arg {
	const char *names[4];
	bool truncate;
};

static int u_write_files(void *p)
{
	struct modes_arg *m = p;
	for (int i = 0; i < 4 && m->names[i]; i++) {
		if (m->truncate) {
			if (i & 1) {
				SYS(truncate(m->names[i], 2));
			} else {
				int fd = SYS(open(m->names[i], O_WRONLY));
				SYS(ftruncate(fd, 3));
				close(fd);
			}
		} else {
			int fd = SYS(open(m->names[i], O_WRONLY));
			SYS(pwrite(fd, "zz", 2, 1));
			close(fd);
		}
	}
	return 0;
}

static int suid_cleared(bool truncate)
{
	static const char *names[] = { "ug", "u", "gx", NULL };
	static const mode_t modes[] = { 06777, 04777, 02777 };
	struct modes_arg m = { { names[0], names[1], names[2], NULL }, truncate };
	struct stat st;

	for (int i = 0; i < 3; i++) {
		TRY(put(names[i], "data"));
		SYS(chmod(names[i], modes[i]));
	}
	TRY(as_user(u_write_files, &m));
	for (int i = 0; i < 3; i++) {
		TRY(lstat_ok(names[i], &st));
		CHECKF(st.st_mode == (S_IFREG | 0777), "%s (mode %#o) after a %s by uid %u: mode %#o",
		       names[i], (unsigned)modes[i], truncate ? "truncate" : "write",
		       (unsigned)g_uid, (unsigned)(st.st_mode & 07777));
		EQ(st.st_size, truncate ? (i & 1 ? 2 : 3) : 4);
	}
	return 0;
}

static int t_suid_write_nonroot(void) { return suid_cleared(false); }
static int t_suid_truncate_nonroot(void) { return suid_cleared(true); }

static int t_setgid_dir(void)
{
	struct stat st;

	SYS(mkdir("sg", 0755));
	SYS(chown("sg", 0, 4321));
	SYS(chmod("sg", 02775));
	TRY(touch("sg/f"));
	TRY(lstat_ok("sg/f", &st));
	EQ(st.st_gid, 4321);
	EQ(st.st_mode, S_IFREG | 0644);
	SYS(mkdir("sg/d", 0755));
	TRY(lstat_ok("sg/d", &st));
	EQ(st.st_gid, 4321);
	EQ(st.st_mode, S_IFDIR | 02755);
	TRY(touch("sg/d/f2"));
	TRY(lstat_ok("sg/d/f2", &st));
	EQ(st.st_gid, 4321);
	SYS(symlink("f", "sg/l"));
	TRY(lstat_ok("sg/l", &st));
	EQ(st.st_gid, 4321);
	SYS(mknod("sg/p", S_IFIFO | 0644, 0));
	TRY(lstat_ok("sg/p", &st));
	EQ(st.st_gid, 4321);
	/* Without the bit: the creator's group. */
	SYS(mkdir("plain", 0755));
	SYS(chown("plain", 0, 4321));
	TRY(touch("plain/f"));
	TRY(lstat_ok("plain/f", &st));
	EQ(st.st_gid, getegid());
	SYS(mkdir("plain/d", 0755));
	TRY(lstat_ok("plain/d", &st));
	EQ(st.st_gid, getegid());
	EQ(st.st_mode, S_IFDIR | 0755);
	return 0;
}

/* ---- permissions (as the non-root user) --------------------------------------------------- */

static int u_perm(void *arg)
{
	struct timespec ts[2] = { { 1, 0 }, { 2, 0 } };
	struct stat st;
	int fd;

	(void)arg;
	ERR(open("secret", O_RDONLY), EACCES);
	ERR(access("secret", R_OK), EACCES);
	fd = SYS(open("public", O_RDONLY));
	close(fd);
	ERR(open("public", O_WRONLY), EACCES);
	ERR(open("public", O_RDONLY | O_TRUNC), EACCES);
	ERR(truncate("public", 0), EACCES);
	ERR(open("rootdir/x", O_WRONLY | O_CREAT, 0644), EACCES);
	ERR(mkdir("rootdir/y", 0755), EACCES);
	ERR(symlink("x", "rootdir/z"), EACCES);
	ERR(unlink("public"), EACCES);
	ERR(rename("public", "rootdir/p"), EACCES);
	ERR(stat("priv/f", &st), EACCES);
	ERR(open("priv", O_RDONLY | O_DIRECTORY), EACCES);
	ERR(chmod("public", 0777), EPERM);
	ERR(chown("public", g_uid, g_gid), EPERM);
	ERR(utimensat(AT_FDCWD, "public", ts, 0), EPERM);
	ERR(utimensat(AT_FDCWD, "public", NULL, 0), EACCES);
	/* World-writable: "now" is allowed, explicit times are not. */
	SYS(utimensat(AT_FDCWD, "shared", NULL, 0));
	ERR(utimensat(AT_FDCWD, "shared", ts, 0), EPERM);
	ERR(execl("./noexec", "noexec", (char *)NULL), EACCES);
	/* The user's own directory: its files are the user's. */
	fd = SYS(open("mine/f", O_WRONLY | O_CREAT, 0600));
	SYS(fstat(fd, &st));
	EQ(st.st_uid, g_uid);
	EQ(st.st_gid, g_gid);
	close(fd);
	SYS(mkdir("mine/d", 0700));
	TRY(lstat_ok("mine/d", &st));
	EQ(st.st_uid, g_uid);
	SYS(chmod("mine/f", 0640));
	SYS(utimensat(AT_FDCWD, "mine/f", ts, 0));
	SYS(rename("mine/f", "mine/d/f"));
	SYS(unlink("mine/d/f"));
	SYS(rmdir("mine/d"));
	return 0;
}

static int t_perm_basic(void)
{
	TRY(put("secret", "s"));
	SYS(chmod("secret", 0600));
	TRY(put("public", "p"));
	TRY(put("shared", "w"));
	SYS(chmod("shared", 0666));
	TRY(put("noexec", "#!/bin/sh\n"));
	SYS(chmod("noexec", 0644));
	SYS(mkdir("rootdir", 0755));
	SYS(mkdir("priv", 0700));
	TRY(touch("priv/f"));
	SYS(mkdir("mine", 0755));
	SYS(chown("mine", g_uid, g_gid));
	TRY(as_user(u_perm, NULL));
	return 0;
}

static int u_sticky(void *arg)
{
	(void)arg;
	ERR2(unlink("tmp/other"), EPERM, EACCES);
	ERR2(unlink("tmp/rootfile"), EPERM, EACCES);
	ERR2(rename("tmp/other", "tmp/taken"), EPERM, EACCES);
	int fd = SYS(open("tmp/other", O_WRONLY)); /* writable, just not removable */
	close(fd);
	TRY(put("tmp/mine", "m"));
	SYS(rename("tmp/mine", "tmp/mine2"));
	SYS(unlink("tmp/mine2"));
	return 0;
}

static int t_perm_sticky(void)
{
	SYS(mkdir("tmp", 0755));
	SYS(chmod("tmp", 01777));
	TRY(touch("tmp/other"));
	SYS(chmod("tmp/other", 0666));
	SYS(chown("tmp/other", g_uid + 1, g_gid));
	TRY(touch("tmp/rootfile"));
	TRY(as_user(u_sticky, NULL));
	CHECK(exists("tmp/other") && exists("tmp/rootfile") && !exists("tmp/mine2"));
	return 0;
}

/* ---- xattrs ------------------------------------------------------------------------------- */

static int t_xattr_user(void)
{
	char buf[4096], big[3000];
	ssize_t n;

	TRY(touch("f"));
	ERR(getxattr("f", "user.missing", buf, sizeof buf), ENODATA);
	ERR(removexattr("f", "user.missing"), ENODATA);
	EQ(SYS(listxattr("f", buf, sizeof buf)) >= 0, 1);
	SYS(setxattr("f", "user.a", "alpha", 5, 0));
	EQ(SYS(getxattr("f", "user.a", buf, sizeof buf)), 5);
	CHECK(memcmp(buf, "alpha", 5) == 0);
	EQ(SYS(getxattr("f", "user.a", NULL, 0)), 5);
	ERR(getxattr("f", "user.a", buf, 4), ERANGE);
	ERR(setxattr("f", "user.a", "x", 1, XATTR_CREATE), EEXIST);
	ERR(setxattr("f", "user.b", "x", 1, XATTR_REPLACE), ENODATA);
	SYS(setxattr("f", "user.a", "beta!!", 6, XATTR_REPLACE));
	EQ(SYS(getxattr("f", "user.a", buf, sizeof buf)), 6);
	CHECK(memcmp(buf, "beta!!", 6) == 0);
	SYS(setxattr("f", "user.b", "", 0, XATTR_CREATE)); /* an empty value */
	EQ(SYS(getxattr("f", "user.b", buf, sizeof buf)), 0);
	fill(big, sizeof big, 8);
	SYS(setxattr("f", "user.big", big, sizeof big, 0));
	EQ(SYS(getxattr("f", "user.big", buf, sizeof buf)), (long long)sizeof big);
	CHECK(memcmp(buf, big, sizeof big) == 0);
	/* The list: every name once, NUL-terminated. */
	n = SYS(listxattr("f", buf, sizeof buf));
	const char *want = "user.a\0user.b\0user.big\0";
	EQ(n, 23);
	int found = 0;
	for (const char *p = buf; p < buf + n; p += strlen(p) + 1)
		for (const char *w = want; *w; w += strlen(w) + 1)
			if (strcmp(p, w) == 0)
				found++;
	EQ(found, 3);
	EQ(SYS(listxattr("f", NULL, 0)), 23);
	ERR(listxattr("f", buf, 5), ERANGE);
	SYS(removexattr("f", "user.a"));
	ERR(getxattr("f", "user.a", buf, sizeof buf), ENODATA);
	EQ(SYS(listxattr("f", buf, sizeof buf)), 16);
	/* By descriptor, on a directory. */
	SYS(mkdir("d", 0755));
	int fd = SYS(open("d", O_RDONLY | O_DIRECTORY));
	SYS(fsetxattr(fd, "user.dir", "D", 1, 0));
	EQ(SYS(fgetxattr(fd, "user.dir", buf, sizeof buf)), 1);
	close(fd);
	EQ(SYS(getxattr("d", "user.dir", buf, sizeof buf)), 1);
	/* user.* is not allowed on symlinks or FIFOs. */
	SYS(symlink("f", "l"));
	ERR(lsetxattr("l", "user.x", "1", 1, 0), EPERM);
	/* Limits (Linux): a name of 256 bytes is ERANGE, a value over 64 KiB is E2BIG. */
	char name[300];
	memcpy(name, "user.", 5);
	long_name(name + 5, 250, 'n');
	SYS(setxattr("f", name, "1", 1, 0));
	EQ(SYS(getxattr("f", name, buf, sizeof buf)), 1);
	SYS(removexattr("f", name));
	long_name(name + 5, 251, 'n');
	ERR(setxattr("f", name, "1", 1, 0), ERANGE);
	char *huge = calloc(1, 65537);
	CHECK(huge);
	ERR(setxattr("f", "user.huge", huge, 65537, 0), E2BIG);
	free(huge);
	/* Survives reopen; goes with the inode on rename and link. */
	SYS(rename("f", "g"));
	SYS(link("g", "h"));
	EQ(SYS(getxattr("h", "user.big", buf, sizeof buf)), (long long)sizeof big);
	CHECK(memcmp(buf, big, sizeof big) == 0);
	return 0;
}

static int t_xattr_many(void)
{
	char name[64], val[64], buf[8192];

	TRY(touch("f"));
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "user.attr%02d", i);
		snprintf(val, sizeof val, "value %d", i * 31);
		SYS(setxattr("f", name, val, strlen(val), XATTR_CREATE));
	}
	EQ(SYS(listxattr("f", buf, sizeof buf)), 40 * 12);
	for (int i = 0; i < 40; i += 3) {
		snprintf(name, sizeof name, "user.attr%02d", i);
		SYS(removexattr("f", name));
	}
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "user.attr%02d", i);
		snprintf(val, sizeof val, "value %d", i * 31);
		if (i % 3 == 0) {
			ERR(getxattr("f", name, buf, sizeof buf), ENODATA);
		} else {
			EQ(SYS(getxattr("f", name, buf, sizeof buf)), (long long)strlen(val));
			CHECK(memcmp(buf, val, strlen(val)) == 0);
		}
	}
	EQ(SYS(listxattr("f", buf, sizeof buf)), 26 * 12);
	return 0;
}

static int t_xattr_trusted(void)
{
	char buf[64];

	TRY(touch("f"));
	SYS(setxattr("f", "trusted.t", "tv", 2, 0));
	EQ(SYS(getxattr("f", "trusted.t", buf, sizeof buf)), 2);
	CHECK(memcmp(buf, "tv", 2) == 0);
	SYS(removexattr("f", "trusted.t"));
	ERR(getxattr("f", "trusted.t", buf, sizeof buf), ENODATA);
	ERR(setxattr("f", "bogus.x", "1", 1, 0), EOPNOTSUPP);
	return 0;
}

/* ---- POSIX ACLs (raw xattr format) -------------------------------------------------------- */

enum { ACL_USER_OBJ = 1, ACL_USER = 2, ACL_GROUP_OBJ = 4, ACL_GROUP = 8, ACL_MASK = 0x10,
       ACL_OTHER = 0x20 };
#define ACL_UNDEFINED_ID ((uint32_t)-1)

struct acl_ent {
	uint16_t tag, perm;
	uint32_t id;
};

/* 5 entries: user::u, user:UID:x, group::g, mask::m, other::o (little-endian on disk). */
static size_t acl_make(char *buf, int u, int x, int g, int m, int o)
{
	uint32_t ver = 2;
	struct acl_ent e[5] = {
		{ ACL_USER_OBJ, (uint16_t)u, ACL_UNDEFINED_ID },
		{ ACL_USER, (uint16_t)x, g_uid },
		{ ACL_GROUP_OBJ, (uint16_t)g, ACL_UNDEFINED_ID },
		{ ACL_MASK, (uint16_t)m, ACL_UNDEFINED_ID },
		{ ACL_OTHER, (uint16_t)o, ACL_UNDEFINED_ID },
	};
	memcpy(buf, &ver, 4);
	memcpy(buf + 4, e, sizeof e);
	return 4 + sizeof e;
}

static int u_acl(void *arg)
{
	(void)arg;
	int fd = SYS(open("f", O_RDONLY));
	close(fd);
	ERR(open("f", O_WRONLY), EACCES);
	ERR(open("nacl", O_RDONLY), EACCES);
	fd = SYS(open("d/f", O_RDONLY));
	close(fd);
	ERR(open("d/f", O_WRONLY), EACCES);
	return 0;
}

static int t_acl(void)
{
	char acl[64], back[64];
	size_t n;
	struct stat st;
	int fd;

	TRY(put("f", "secret"));
	SYS(chmod("f", 0600));
	TRY(put("nacl", "secret"));
	SYS(chmod("nacl", 0600));
	/* user::rw- user:UID:r-- group::--- mask::r-- other::--- */
	n = acl_make(acl, 6, 4, 0, 4, 0);
	SYS(setxattr("f", "system.posix_acl_access", acl, n, 0));
	TRY(lstat_ok("f", &st));
	EQ(st.st_mode, S_IFREG | 0640); /* the group bits show the mask */
	EQ(SYS(getxattr("f", "system.posix_acl_access", back, sizeof back)), (long long)n);
	CHECK(memcmp(acl, back, n) == 0);
	/* A default ACL on a directory is inherited by a new file, masked by its mode. */
	SYS(mkdir("d", 0755));
	n = acl_make(acl, 7, 7, 5, 7, 0);
	SYS(setxattr("d", "system.posix_acl_default", acl, n, 0));
	EQ(SYS(getxattr("d", "system.posix_acl_default", back, sizeof back)), (long long)n);
	fd = SYS(open("d/f", O_WRONLY | O_CREAT, 0640));
	SYS(write(fd, "in", 2));
	close(fd);
	TRY(lstat_ok("d/f", &st));
	EQ(st.st_mode, S_IFREG | 0640);
	EQ(SYS(getxattr("d/f", "system.posix_acl_access", back, sizeof back)), (long long)n);
	SYS(mkdir("d/sub", 0750));
	EQ(SYS(getxattr("d/sub", "system.posix_acl_default", back, sizeof back)), (long long)n);
	TRY(as_user(u_acl, NULL));
	/* Removing the ACL takes the access away again. */
	SYS(removexattr("f", "system.posix_acl_access"));
	ERR(getxattr("f", "system.posix_acl_access", back, sizeof back), ENODATA);
	return 0;
}

/* ---- directories -------------------------------------------------------------------------- */

static int t_readdir_types(void)
{
	struct dent *v;
	size_t n;
	struct stat st;
	static const struct { const char *name; unsigned char type; } want[] = {
		{ ".", DT_DIR }, { "..", DT_DIR }, { "f", DT_REG }, { "d", DT_DIR },
		{ "l", DT_LNK }, { "p", DT_FIFO }, { "s", DT_SOCK },
	};

	TRY(touch("f"));
	SYS(mkdir("d", 0755));
	SYS(symlink("f", "l"));
	SYS(mkfifo("p", 0644));
	SYS(mknod("s", S_IFSOCK | 0644, 0));
	TRY(list_dir(".", &v, &n));
	EQ(n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < n; i++) {
		const struct dent *d = find_dent(v, n, want[i].name);
		CHECKF(d, "no entry %s", want[i].name);
		CHECKF(d->type == want[i].type, "%s: d_type %d, expected %d", want[i].name, d->type,
		       want[i].type);
		SYS(lstat(want[i].name, &st));
		CHECKF(d->ino == st.st_ino, "%s: d_ino %llu, st_ino %llu", want[i].name,
		       (unsigned long long)d->ino, (unsigned long long)st.st_ino);
	}
	free(v);
	return 0;
}

static int make_files(int n, const char *fmt)
{
	char name[64];
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof name, fmt, i);
		int fd = SYS(open(name, O_WRONLY | O_CREAT | O_EXCL, 0644));
		close(fd);
	}
	return 0;
}

/*
 * A directory of n files read with getdents64 in small batches while files are deleted between
 * the calls (some already returned, some not yet): each file that is never deleted is returned
 * exactly once, a deleted one at most once, "." and ".." once, nothing else.
 */
static int readdir_while_deleting(int n)
{
	unsigned char *seen = calloc((size_t)n, 1), *gone = calloc((size_t)n, 1);
	uint64_t s = g_seed ^ (uint64_t)n;
	int dots = 0, dotdots = 0, deleted = 0;
	char buf[4096], name[64];
	int fd;

	CHECK(seen && gone);
	TRY(make_files(n, "f%06d"));
	fd = SYS(open(".", O_RDONLY | O_DIRECTORY));
	for (;;) {
		long r = SYS(syscall(SYS_getdents64, fd, buf, sizeof buf));
		if (r == 0)
			break;
		for (long off = 0; off < r;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0) {
				dots++;
				continue;
			}
			if (strcmp(d->d_name, "..") == 0) {
				dotdots++;
				continue;
			}
			char *end;
			long i = d->d_name[0] == 'f' ? strtol(d->d_name + 1, &end, 10) : -1;
			CHECKF(i >= 0 && i < n && *end == 0, "unexpected entry \"%s\"", d->d_name);
			CHECKF(seen[i] == 0, "\"%s\" returned twice", d->d_name);
			seen[i] = 1;
		}
		for (int k = 0; k < 20; k++) {
			int i = (int)(splitmix(&s) % (uint64_t)n);
			if (gone[i])
				continue;
			snprintf(name, sizeof name, "f%06d", i);
			SYS(unlink(name));
			gone[i] = 1;
			deleted++;
		}
	}
	close(fd);
	EQ(dots, 1);
	EQ(dotdots, 1);
	for (int i = 0; i < n; i++)
		CHECKF(gone[i] || seen[i], "f%06d was never returned (%d deleted meanwhile)", i,
		       deleted);
	/* A second pass: exactly the survivors. */
	struct dent *v;
	size_t cnt;
	TRY(list_dir(".", &v, &cnt));
	EQ(cnt, (size_t)(n - deleted + 2));
	free(v);
	free(seen);
	free(gone);
	return 0;
}

static int t_readdir_10k_delete(void) { return readdir_while_deleting(10000); }

/* telldir/seekdir positions stay valid while other entries are deleted. */
static int t_telldir_seekdir(void)
{
	enum { N = 2000 };
	static char names[N + 2][16];
	static long pos[N + 2];
	static unsigned char gone[N + 2];
	uint64_t s = g_seed ^ 0x7e11;
	struct dirent *de;
	int count = 0;
	DIR *dir;

	memset(gone, 0, sizeof gone);
	TRY(make_files(N, "t%05d"));
	dir = opendir(".");
	CHECK(dir);
	for (;;) {
		long p = telldir(dir);
		errno = 0;
		de = readdir(dir);
		if (!de)
			break;
		CHECK(count < N + 2);
		pos[count] = p;
		snprintf(names[count], sizeof names[count], "%.15s", de->d_name);
		count++;
	}
	CHECKF(errno == 0, "readdir");
	EQ(count, N + 2);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < count; i += 37) {
			int j = i;
			while (j < count && gone[j])
				j++;
			seekdir(dir, pos[i]);
			errno = 0;
			de = readdir(dir);
			if (j == count) {
				CHECKF(!de, "after seekdir to the position of deleted trailing entries, "
				       "readdir returned %s", de->d_name);
				continue;
			}
			CHECKF(de, "seekdir to the position of %s (round %d): readdir returned nothing",
			       names[i], round);
			CHECKF(strcmp(de->d_name, names[j]) == 0,
			       "seekdir to the position of %s (round %d): got %s, expected %s",
			       names[i], round, de->d_name, names[j]);
			if (i % (37 * 9) == 0) {
				/* From there on, exactly the remaining survivors in order. */
				for (int k = j + 1; k < count; k++) {
					if (gone[k])
						continue;
					de = readdir(dir);
					CHECKF(de && strcmp(de->d_name, names[k]) == 0,
					       "reading on from %s: got %s, expected %s", names[i],
					       de ? de->d_name : "(end)", names[k]);
				}
				CHECKF(!readdir(dir), "entries after the end");
			}
		}
		/* Delete a random 15% (never . or ..) and check again. */
		for (int k = 0; k < count; k++) {
			if (gone[k] || names[k][0] == '.' || splitmix(&s) % 100 >= 15)
				continue;
			SYS(unlink(names[k]));
			gone[k] = 1;
		}
	}
	closedir(dir);
	return 0;
}

static int t_readdir_100k(void)
{
	enum { N = 100000 };
	unsigned char *seen = calloc(N, 1);
	char name[32];
	struct stat st;
	struct dent *v;
	size_t n;

	CHECK(seen);
	TRY(make_files(N, "file_%06d"));
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "file_%06d", i);
		SYS(lstat(name, &st));
		CHECK(S_ISREG(st.st_mode));
	}
	TRY(list_dir(".", &v, &n));
	EQ(n, N + 2);
	for (size_t k = 0; k < n; k++) {
		if (strcmp(v[k].name, ".") == 0 || strcmp(v[k].name, "..") == 0)
			continue;
		int i = atoi(v[k].name + 5);
		CHECKF(strncmp(v[k].name, "file_", 5) == 0 && i >= 0 && i < N && !seen[i],
		       "unexpected or repeated entry %s", v[k].name);
		seen[i] = 1;
	}
	free(v);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "file_%06d", i);
		SYS(unlink(name));
	}
	TRY(list_dir(".", &v, &n));
	EQ(n, 2);
	free(v);
	EQ(nlink_of("."), 2);
	free(seen);
	return 0;
}

/* ---- file handles ------------------------------------------------------------------------- */

static int t_file_handle(void)
{
	struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
	struct stat st, hst;
	int mnt_id, mfd, fd;
	char buf[16];

	CHECK(fh);
	TRY(put("f", "handle"));
	SYS(mkdir("d", 0755));
	SYS(lstat("f", &st));
	fh->handle_bytes = 0;
	ERR(name_to_handle_at(AT_FDCWD, "f", fh, &mnt_id, 0), EOVERFLOW);
	CHECK(fh->handle_bytes > 0 && fh->handle_bytes <= MAX_HANDLE_SZ);
	fh->handle_bytes = MAX_HANDLE_SZ;
	SYS(name_to_handle_at(AT_FDCWD, "f", fh, &mnt_id, 0));
	mfd = SYS(open(".", O_RDONLY | O_DIRECTORY));
	fd = SYS(open_by_handle_at(mfd, fh, O_RDONLY));
	SYS(fstat(fd, &hst));
	EQ(hst.st_ino, st.st_ino);
	EQ(SYS(pread(fd, buf, sizeof buf, 0)), 6);
	CHECK(memcmp(buf, "handle", 6) == 0);
	close(fd);
	/* A directory's handle opens the directory. */
	struct file_handle *dh = malloc(sizeof *dh + MAX_HANDLE_SZ);
	CHECK(dh);
	dh->handle_bytes = MAX_HANDLE_SZ;
	SYS(name_to_handle_at(AT_FDCWD, "d", dh, &mnt_id, 0));
	fd = SYS(open_by_handle_at(mfd, dh, O_RDONLY | O_DIRECTORY));
	SYS(fstat(fd, &hst));
	EQ(hst.st_ino, ino_of("d"));
	close(fd);
	/* After the file is gone: ESTALE. */
	SYS(unlink("f"));
	sync();
	ERR(open_by_handle_at(mfd, fh, O_RDONLY), ESTALE);
	SYS(rmdir("d"));
	ERR(open_by_handle_at(mfd, dh, O_RDONLY | O_DIRECTORY), ESTALE);
	close(mfd);
	free(fh);
	free(dh);
	return 0;
}

/* ---- sync, statfs ------------------------------------------------------------------------- */

static int t_fsync(void)
{
	int fd = SYS(open("f", O_RDWR | O_CREAT, 0644));
	SYS(write(fd, "x", 1));
	EQ(SYS(fsync(fd)), 0);
	SYS(write(fd, "y", 1));
	EQ(SYS(fdatasync(fd)), 0);
	EQ(SYS(syncfs(fd)), 0);
	close(fd);
	fd = SYS(open(".", O_RDONLY | O_DIRECTORY));
	EQ(SYS(fsync(fd)), 0);
	EQ(SYS(fdatasync(fd)), 0);
	close(fd);
	sync();
	fd = SYS(open("g", O_RDWR | O_CREAT | O_SYNC, 0644));
	EQ(SYS(write(fd, "sync", 4)), 4);
	close(fd);
	fd = SYS(open("h", O_RDWR | O_CREAT | O_DSYNC, 0644));
	EQ(SYS(write(fd, "dsync", 5)), 5);
	close(fd);
	fd = SYS(open("f", O_RDONLY));
	EQ(SYS(fsync(fd)), 0); /* on a read-only descriptor too */
	close(fd);
	TRY(expect_content("f", "xy"));
	TRY(expect_content("g", "sync"));
	return 0;
}

static int t_statfs(void)
{
	struct statfs s, fs;
	struct statvfs v;

	SYS(statfs(".", &s));
	CHECK(s.f_bsize > 0);
	CHECK(s.f_blocks > 0);
	CHECKF(s.f_blocks >= s.f_bfree && s.f_bfree >= s.f_bavail,
	       "f_blocks %llu f_bfree %llu f_bavail %llu", (unsigned long long)s.f_blocks,
	       (unsigned long long)s.f_bfree, (unsigned long long)s.f_bavail);
	EQ(s.f_namelen, 255);
	if (s.f_files)
		CHECKF(s.f_files >= s.f_ffree, "f_files %llu < f_ffree %llu",
		       (unsigned long long)s.f_files, (unsigned long long)s.f_ffree);
	TRY(touch("f"));
	int fd = SYS(open("f", O_RDONLY));
	SYS(fstatfs(fd, &fs));
	close(fd);
	EQ(fs.f_type, s.f_type);
	EQ(fs.f_blocks, s.f_blocks);
	SYS(statvfs(".", &v));
	CHECK(v.f_frsize > 0 && v.f_bsize > 0);
	EQ(v.f_namemax, 255);
	return 0;
}

/* ---- big files ---------------------------------------------------------------------------- */

struct chunk {
	long long off;
	size_t len;
	uint64_t seed, sum;
};

/*
 * total bytes in chunks of random size (1 byte .. 4 MiB, log-uniform) written in order, then a
 * tenth of them rewritten in place with new data, fsync, and everything read back in a random
 * chunk order and compared by checksum.
 */
static int bigfile(long long total)
{
	const size_t maxc = 4 * MiB;
	uint64_t s = g_seed ^ (uint64_t)total;
	size_t cap = 1024, nc = 0;
	struct chunk *c = malloc(cap * sizeof *c);
	char *buf = malloc(maxc);
	struct stat st;
	int fd;

	CHECK(c && buf);
	for (long long off = 0; off < total;) {
		unsigned bits = (unsigned)(splitmix(&s) % 23); /* 2^0 .. 2^22 */
		size_t len = 1 + (size_t)(splitmix(&s) % ((1ULL << bits)));
		if (len > maxc)
			len = maxc;
		if (off + (long long)len > total)
			len = (size_t)(total - off);
		if (nc == cap) {
			cap *= 2;
			c = realloc(c, cap * sizeof *c);
			CHECK(c);
		}
		c[nc] = (struct chunk){ off, len, splitmix(&s), 0 };
		off += (long long)len;
		nc++;
	}
	fd = SYS(open("big", O_RDWR | O_CREAT | O_TRUNC, 0644));
	for (size_t i = 0; i < nc; i++) {
		fill(buf, c[i].len, c[i].seed);
		c[i].sum = hash(buf, c[i].len);
		size_t left = c[i].len;
		char *p = buf;
		while (left) {
			ssize_t w = SYS(write(fd, p, left));
			p += w;
			left -= (size_t)w;
		}
	}
	for (size_t k = 0; k < nc / 10 + 1; k++) {
		size_t i = splitmix(&s) % nc;
		c[i].seed = splitmix(&s);
		fill(buf, c[i].len, c[i].seed);
		c[i].sum = hash(buf, c[i].len);
		TRY(pwrite_all(fd, buf, c[i].len, c[i].off));
	}
	SYS(fsync(fd));
	SYS(fstat(fd, &st));
	EQ(st.st_size, total);
	close(fd);
	fd = SYS(open("big", O_RDONLY));
	for (size_t i = nc; i > 1; i--) { /* shuffle */
		size_t j = splitmix(&s) % i;
		struct chunk t = c[i - 1];
		c[i - 1] = c[j];
		c[j] = t;
	}
	for (size_t i = 0; i < nc; i++) {
		TRY(pread_exact(fd, buf, c[i].len, c[i].off));
		if (hash(buf, c[i].len) != c[i].sum) {
			char *want = malloc(c[i].len);
			size_t k = 0;
			CHECK(want);
			fill(want, c[i].len, c[i].seed);
			while (k < c[i].len && want[k] == buf[k])
				k++;
			free(want);
			FAIL("chunk at %lld (%zu bytes, seed %" PRIu64 "): first wrong byte at %lld",
			     c[i].off, c[i].len, g_seed, c[i].off + (long long)k);
		}
	}
	close(fd);
	SYS(unlink("big"));
	free(c);
	free(buf);
	return 0;
}

static int t_bigfile_10m(void) { return bigfile(10 * MiB); }
static int t_bigfile_1g(void) { return bigfile(1 * GiB); }

/* ---- concurrency -------------------------------------------------------------------------- */

static int child_work(int k)
{
	char name[32], name2[32], want[32], blk[512];
	int fd = SYS(open("shared", O_RDWR));

	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "c%d_%03d", k, i);
		snprintf(want, sizeof want, "%d:%d", k, i);
		TRY(put(name, want));
		fill(blk, sizeof blk, (uint64_t)(k * 1000 + i));
		TRY(pwrite_all(fd, blk, sizeof blk, (off_t)(i * 4 + k) * 512));
		if (i % 2 == 0) {
			snprintf(name2, sizeof name2, "r%d_%03d", k, i);
			SYS(rename(name, name2));
		} else if (i % 3 == 0) {
			SYS(unlink(name));
		}
	}
	close(fd);
	return 0;
}

static int t_concurrent(void)
{
	char name[32], want[32], blk[512];
	pid_t pids[4];
	int status, fd;

	TRY(touch("shared"));
	fflush(stdout);
	for (int k = 0; k < 4; k++) {
		pids[k] = fork();
		CHECK(pids[k] >= 0);
		if (pids[k] == 0)
			_exit(child_work(k) == 0 ? 0 : 1);
	}
	for (int k = 0; k < 4; k++) {
		SYS(waitpid(pids[k], &status, 0));
		CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", k);
	}
	fd = SYS(open("shared", O_RDONLY));
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < 200; i++) {
			snprintf(want, sizeof want, "%d:%d", k, i);
			if (i % 2 == 0)
				snprintf(name, sizeof name, "r%d_%03d", k, i);
			else
				snprintf(name, sizeof name, "c%d_%03d", k, i);
			if (i % 2 && i % 3 == 0) {
				CHECKF(!exists(name), "%s should be gone", name);
				continue;
			}
			TRY(expect_content(name, want));
			fill(blk, sizeof blk, (uint64_t)(k * 1000 + i));
			TRY(expect_bytes(fd, (off_t)(i * 4 + k) * 512, blk, sizeof blk));
		}
	close(fd);
	return 0;
}

/* ---- the table ---------------------------------------------------------------------------- */

enum { ROOT = 1 };

struct check {
	const char *name;
	const char *group;
	unsigned flags;
	int (*fn)(void);
};

static const struct check checks[] = {
	{ "open_creat_excl", "default", 0, t_open_excl },
	{ "open_trunc", "default", 0, t_open_trunc },
	{ "open_append", "default", 0, t_open_append },
	{ "open_enoent", "default", 0, t_open_enoent },
	{ "open_enotdir", "default", 0, t_open_enotdir },
	{ "open_eisdir", "default", 0, t_open_eisdir },
	{ "name_255", "default", 0, t_name_255 },
	{ "name_256_enametoolong", "default", 0, t_name_256 },
	{ "mkdir_rmdir", "default", 0, t_mkdir_rmdir },
	{ "dir_nlink", "default", 0, t_dir_nlink },
	{ "rename_file", "default", 0, t_rename_file },
	{ "rename_dir", "default", 0, t_rename_dir },
	{ "rename_noreplace", "default", 0, t_rename_noreplace },
	{ "rename_exchange_files", "default", 0, t_rename_exchange_files },
	{ "rename_exchange_dirs", "default", 0, t_rename_exchange_dirs },
	{ "rename_exchange_file_dir", "default", 0, t_rename_exchange_file_dir },
	{ "rename_exchange_missing", "default", 0, t_rename_exchange_missing },
	{ "rename_self_and_aliases", "default", 0, t_rename_self },
	{ "link", "default", 0, t_link },
	{ "unlink_open", "default", 0, t_unlink_open },
	{ "symlink", "default", 0, t_symlink },
	{ "symlink_loop_nofollow", "default", 0, t_symlink_loop },
	{ "mknod_fifo", "default", 0, t_mknod_fifo },
	{ "mknod_socket", "default", 0, t_mknod_socket },
	{ "mknod_dev", "default", ROOT, t_mknod_dev },
	{ "data_offsets", "default", 0, t_data_offsets },
	{ "data_model", "default", 0, t_data_model },
	{ "holes", "default", 0, t_holes },
	{ "truncate_stale_tail", "default", 0, t_truncate_stale_tail },
	{ "truncate_huge", "default", 0, t_truncate_huge },
	{ "blocks", "default", 0, t_blocks },
	{ "fallocate", "default", 0, t_fallocate },
	{ "fallocate_keep_size", "default", 0, t_fallocate_keep_size },
	{ "punch_hole", "default", 0, t_punch_hole },
	{ "zero_range", "default", 0, t_zero_range },
	{ "seek_data_hole", "default", 0, t_seek_data_hole },
	{ "copy_file_range", "default", 0, t_copy_file_range },
	{ "mmap_shared", "default", 0, t_mmap },
	{ "locks", "default", 0, t_locks },
	{ "chmod", "default", 0, t_chmod },
	{ "chown", "default", ROOT, t_chown },
	{ "utimens", "default", 0, t_utimens },
	{ "utime_now_omit", "default", 0, t_utime_now_omit },
	{ "ctime_mtime", "default", 0, t_ctime_mtime },
	{ "nsec_timestamps", "default", 0, t_nsec },
	{ "suid_root_write_keeps", "default", ROOT, t_suid_root_write },
	{ "setgid_dir", "default", ROOT, t_setgid_dir },
	{ "readdir_types", "default", 0, t_readdir_types },
	{ "readdir_10k_delete", "default", 0, t_readdir_10k_delete },
	{ "telldir_seekdir", "default", 0, t_telldir_seekdir },
	{ "file_handle", "default", ROOT, t_file_handle },
	{ "fsync", "default", 0, t_fsync },
	{ "statfs", "default", 0, t_statfs },
	{ "concurrent", "default", 0, t_concurrent },
	{ "bigfile_10m", "default", 0, t_bigfile_10m },
	{ "suid_write_nonroot", "perm", ROOT, t_suid_write_nonroot },
	{ "suid_truncate_nonroot", "perm", ROOT, t_suid_truncate_nonroot },
	{ "perm_basic", "perm", ROOT, t_perm_basic },
	{ "perm_sticky", "perm", ROOT, t_perm_sticky },
	{ "xattr_user", "xattr", 0, t_xattr_user },
	{ "xattr_many", "xattr", 0, t_xattr_many },
	{ "xattr_trusted", "xattr", ROOT, t_xattr_trusted },
	{ "acl", "acl", ROOT, t_acl },
	{ "readdir_100k", "big", 0, t_readdir_100k },
	{ "bigfile_1g", "big", 0, t_bigfile_1g },
};
#define NCHECKS (sizeof checks / sizeof checks[0])

/* ---- main --------------------------------------------------------------------------------- */

#define MAXLIST 32
static const char *skip_groups[MAXLIST], *add_groups[MAXLIST], *only_groups[MAXLIST],
	*only_names[MAXLIST];
static int nskip, nadd, nonly_groups, nonly_names;
static const char *g_cur_name;
static int g_cur_num;

static bool in_list(const char **list, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool selected(const struct check *c)
{
	if (nonly_names)
		return in_list(only_names, nonly_names, c->name);
	if (nonly_groups)
		return in_list(only_groups, nonly_groups, c->group);
	if (in_list(skip_groups, nskip, c->group))
		return false;
	if (strcmp(c->group, "big") == 0)
		return in_list(add_groups, nadd, "big");
	return true;
}

static void on_alarm(int sig)
{
	char msg[256];
	int n;

	(void)sig;
	if (g_child > 0)
		kill(g_child, SIGKILL);
	n = snprintf(msg, sizeof msg, "FAIL %d %s: timed out\n", g_cur_num, g_cur_name);
	if (write(1, msg, (size_t)n) < 0)
		_exit(1);
	_exit(1);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: posix_check DIR [--nonroot-uid UID] [--nonroot-gid GID] [--skip-group G]...\n"
		"                       [--group G]... [--only-group G]... [--only NAME]...\n"
		"                       [--seed N] [--timeout SEC] [--keep] [--list]\n"
		"Groups: default, perm, acl, xattr (run unless skipped), big (only with --group big).\n");
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	bool keep = false, list = false;
	unsigned timeout = 600;
	int npass = 0, nfail = 0, nskipped = 0, num = 0;
	char run[PATH_MAX], path[PATH_MAX + 64];

	g_seed = (uint64_t)time(NULL);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(s) (strcmp(a, s) == 0 && v && ++i)
		if (OPT("--nonroot-uid"))
			g_uid = (uid_t)strtoul(v, NULL, 10);
		else if (OPT("--nonroot-gid"))
			g_gid = (gid_t)strtoul(v, NULL, 10);
		else if (OPT("--skip-group") && nskip < MAXLIST)
			skip_groups[nskip++] = v;
		else if (OPT("--group") && nadd < MAXLIST)
			add_groups[nadd++] = v;
		else if (OPT("--only-group") && nonly_groups < MAXLIST)
			only_groups[nonly_groups++] = v;
		else if (OPT("--only") && nonly_names < MAXLIST)
			only_names[nonly_names++] = v;
		else if (OPT("--seed"))
			g_seed = strtoull(v, NULL, 0);
		else if (OPT("--timeout"))
			timeout = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--keep") == 0)
			keep = true;
		else if (strcmp(a, "--list") == 0)
			list = true;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (a[0] != '-' && !dir)
			dir = a;
		else {
			fprintf(stderr, "posix_check: bad argument %s\n", a);
			usage(stderr);
			return 2;
		}
#undef OPT
	}
	if (list) {
		for (size_t i = 0; i < NCHECKS; i++)
			printf("%-28s %-8s%s%s\n", checks[i].name, checks[i].group,
			       checks[i].flags & ROOT ? " root" : "", selected(&checks[i]) ? "" : " (off)");
		return 0;
	}
	if (!dir) {
		usage(stderr);
		return 2;
	}
	if (g_gid == (gid_t)-1) {
		struct passwd *pw = getpwuid(g_uid);
		g_gid = pw ? pw->pw_gid : (gid_t)g_uid;
	}
	g_root = geteuid() == 0;
	g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	umask(022);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);

	snprintf(run, sizeof run, "%s/posix_check.XXXXXX", dir);
	if (!mkdtemp(run)) {
		fprintf(stderr, "posix_check: cannot make a directory in %s: %s\n", dir,
			strerror(errno));
		return 2;
	}
	/* The non-root user must be able to enter it. */
	if (chmod(run, 0755)) {
		fprintf(stderr, "posix_check: chmod %s: %s\n", run, strerror(errno));
		return 2;
	}
	printf("posix_check: %s, seed %" PRIu64 ", uid %u, non-root uid %u gid %u\n", run, g_seed,
	       (unsigned)geteuid(), (unsigned)g_uid, (unsigned)g_gid);

	/* Descriptors a check leaves open are closed after it: those from here on. */
	int basefd = open("/dev/null", O_RDONLY);
	if (basefd < 0) {
		perror("/dev/null");
		return 2;
	}
	close(basefd);

	for (size_t i = 0; i < NCHECKS; i++) {
		const struct check *c = &checks[i];
		struct timespec t0, t1;
		int r;

		if (!selected(c))
			continue;
		num++;
		g_cur_name = c->name;
		g_cur_num = num;
		if ((c->flags & ROOT) && !g_root) {
			printf("skip %d %s: needs root\n", num, c->name);
			nskipped++;
			continue;
		}
		snprintf(path, sizeof path, "%s/%s", run, c->name);
		memset(g_sh, 0, sizeof *g_sh);
		g_skip[0] = 0;
		if (mkdir(path, 0755) || chmod(path, 0755) || chdir(path)) {
			printf("FAIL %d %s: cannot make and enter %s: %s\n", num, c->name, path,
			       strerror(errno));
			nfail++;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		alarm(timeout);
		r = c->fn();
		alarm(0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		close_range((unsigned)basefd, ~0U, 0);
		if (chdir(run)) {
			printf("FAIL %d %s: cannot return to %s: %s\n", num, c->name, run,
			       strerror(errno));
			return 1;
		}
		double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (r == 0 && !g_sh->failed) {
			printf("ok %d %s\n", num, c->name);
			if (secs >= 2)
				printf("#   %s took %.1f s\n", c->name, secs);
			npass++;
			if (!keep)
				nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
		} else if (r > 0 && !g_sh->failed) {
			printf("skip %d %s: %s\n", num, c->name, g_skip);
			nskipped++;
			nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
		} else {
			printf("FAIL %d %s: %s\n", num, c->name,
			       g_sh->failed ? g_sh->msg : "failed without a message");
			nfail++;
		}
	}
	if (nfail == 0 && !keep)
		rmdir(run);
	else if (nfail)
		printf("posix_check: the failed checks' directories are kept under %s\n", run);
	printf("posix_check: %d passed, %d failed, %d skipped\n", npass, nfail, nskipped);
	return nfail ? 1 : 0;
}
