/*
 * cowfs_mount_main: mount an image and serve it. The order of things matters:
 *
 *  1. The command line is checked (options.c) while the user is still there to be told.
 *  2. Unless in the foreground, fork: cowfs_open() starts threads and an io_uring, which a
 *     fork made later would not carry over. The parent waits on a pipe for the child's word
 *     and exits 0 once the mount works, 1 if it failed; the child prints why on the stderr
 *     they share before it detaches, so errors reach the user either way.
 *  3. The child opens the image, frees orphans left by a crash, makes the FUSE session and
 *     mounts; then it detaches (setsid, chdir /, stdio to /dev/null, messages to syslog).
 *  4. It serves until unmounted, or until SIGTERM, SIGINT or SIGHUP end the loop; then it
 *     unmounts if still mounted, and only once the kernel is gone closes the image, which
 *     commits everything. The exit status says whether that commit worked.
 */
#include "fuse/internal.h"
#include "fuse/server.h"

#include "fs/inode/file.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <syslog.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "cowfs"

/* What the child writes to the pipe once mounted. Anything else, or nothing, is failure. */
#define READY_BYTE 'o'

/* A message for the user: on the terminal until the daemon detaches, then in syslog. */
void server_say(struct server *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (atomic_load(&s->to_syslog)) {
		vsyslog(LOG_ERR, fmt, ap);
	} else {
		fputs(PROG ": ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* fs/'s reports: corruption found, stale superblock copies. */
static void on_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct server *s = arg;

	server_say(s, "%s: block %" PRIu64 ": %s", s->image, bytenr, msg);
}

/* libfuse's own messages, once stderr is gone. Its levels are syslog's. */
static void fuse_log_to_syslog(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

/* Another process has the image (an earlier mount still committing, or a second mount). */
static void on_lock_wait(void *arg, long holder_pid, unsigned wait_ms)
{
	struct server *s = arg;

	if (holder_pid > 0)
		server_say(s, "%s: in use by process %ld: waiting up to %u s for it to let go",
			   s->image, holder_pid, wait_ms / 1000);
	else
		server_say(s, "%s: in use by another process: waiting up to %u s for it to let go",
			   s->image, wait_ms / 1000);
}

static const char *open_error(int err)
{
	switch (err) {
	case -EINVAL:
		return "not a cowfs image";
	case -EOPNOTSUPP:
		return "made by a newer version of cowfs";
	case -EUCLEAN:
	case -EIO:
		return "damaged beyond mounting (problems above): run fsck.cowfs";
	case -EBUSY:
		return "in use by another cowfs process (mounted already?)";
	default:
		return strerror(-err);
	}
}

/* subvol=PATH: walk its names from the top level's root, into subvolumes where an entry is
 * one; the path must end at a subvolume's root. *id: that subvolume. */
static int subvol_by_path(struct server *s, const char *path, uint64_t *id)
{
	struct inode_tree *it;
	uint64_t dir = INODE_ROOT_INO;
	const char *p = path;
	int ret = subvols_tree(s->sv, FS_TREE_ID, &it);

	*id = FS_TREE_ID;
	while (ret == 0 && *p) {
		size_t len = strcspn(p, "/");
		struct cowfs_attr a;

		if (len == 0 || (len == 1 && p[0] == '.')) {
			p += len + (p[len] == '/');
			continue;
		}
		if (len > INODE_NAME_MAX)
			return -ENAMETOOLONG;
		ret = inode_lookup(it, dir, p, len, &a);
		if (ret == 0 && a.subvol != inode_tree_subvol(it)) {
			*id = a.subvol;
			dir = INODE_ROOT_INO;
			ret = subvols_tree(s->sv, a.subvol, &it);
		} else if (ret == 0) {
			dir = a.ino;
			if (!S_ISDIR(a.mode))
				ret = -ENOTDIR;
		}
		p += len + (p[len] == '/');
	}
	if (ret == 0 && dir != INODE_ROOT_INO)
		return -EINVAL;   /* a directory, not a subvolume */
	return ret;
}

/* The mount's root subvolume: subvolid=, subvol=, or the default one. */
static int mount_root_find(struct server *s, const struct mount_config *c)
{
	int ret;

	if (c->subvol_path) {
		uint64_t id;
		ret = subvol_by_path(s, c->subvol_path, &id);
		if (ret < 0) {
			server_say(s, "%s: subvol=%s: %s", c->image, c->subvol_path,
				   ret == -EINVAL ? "not a subvolume" : strerror(-ret));
			return ret;
		}
		if (c->subvol_id && c->subvol_id != id) {
			server_say(s, "%s: subvol=%s is subvolume %" PRIu64
				   ", not subvolid=%" PRIu64, c->image, c->subvol_path, id,
				   c->subvol_id);
			return -EINVAL;
		}
		s->root_subvol = id;
	} else if (c->subvol_id) {
		s->root_subvol = c->subvol_id;
	} else {
		cowfs_lock(s->fs);
		ret = cowfs_subvol_get_default(s->fs, &s->root_subvol);
		cowfs_unlock(s->fs);
		if (ret < 0) {
			server_say(s, "%s: the default subvolume: %s", c->image, strerror(-ret));
			return ret;
		}
	}
	ret = subvols_tree(s->sv, s->root_subvol, &s->root_it);
	if (ret < 0)
		server_say(s, "%s: subvolume %" PRIu64 ": %s", c->image, s->root_subvol,
			   ret == -ENOENT ? "no such subvolume" : strerror(-ret));
	return ret;
}

/* COWFS_CLEANER_PAUSE_MS=N (tests): the cleaner sleeps N ms after each drop step. */
static unsigned cleaner_pause_ms(void)
{
	const char *v = getenv("COWFS_CLEANER_PAUSE_MS");
	unsigned ms;

	return v && sscanf(v, "%u", &ms) == 1 && ms <= 10000 ? ms : 0;
}

static int open_image(struct server *s, const struct mount_config *c)
{
	struct cowfs_opts o = {
		.read_only = c->read_only,
		.cache_bytes = c->cache_bytes,
		.lock_wait_ms = COWFS_LOCK_WAIT_MS,
		.lock_waiting = on_lock_wait,
		.commit_interval_ms = c->commit_interval_ms,
		.replays_log = true,
		.report = on_report,
		.report_arg = s,
	};
	struct subvols_config sc = {
		.noreflink = c->noreflink,
		.atime_mode = c->atime_mode,
		.nodiratime = c->nodiratime,
		.user_subvol_rm_allowed = c->user_subvol_rm_allowed,
		.cleaner_pause_ms = cleaner_pause_ms(),
	};
	uint64_t records;
	int ret = cowfs_open(c->image, &o, &s->fs);

	if (ret < 0) {
		server_say(s, "%s: %s", c->image, open_error(ret));
		s->fs = NULL;
		return ret;
	}
	space_sets_init(&s->space_sets);
	ret = subvols_open(s->fs, &sc, &s->sv);
	if (ret < 0) {
		server_say(s, "%s: %s", c->image, strerror(-ret));
		s->sv = NULL;
		server_close(s);
		return ret;
	}
	if (c->read_only) {
		if (cowfs_log_replay_pending(s->fs))
			server_say(s, "%s: changes fsync'd after the last commit are in its fsync log, "
				   "applied at the next read-write mount; not shown read-only", c->image);
	} else {
		/* fsync'd changes first, as the crash left them; then inodes unlinked while
		 * open when the last session ended: nobody holds them now. */
		ret = subvols_replay_log(s->sv, &records);
		if (ret < 0)
			server_say(s, "%s: replaying the fsync log, freeing orphaned inodes: %s",
				   c->image, strerror(-ret));
	}
	if (ret == 0)
		ret = mount_root_find(s, c);
	if (ret < 0)
		server_close(s);
	return ret;
}

/* Commit and close the image; once only (after the loop, or at FUSE's destroy). */
int server_close(struct server *s)
{
	int ret, closed;

	if (!s->fs)
		return s->close_result;
	space_sets_destroy(&s->space_sets);
	ret = subvols_close(s->sv);
	s->sv = NULL;
	s->root_it = NULL;
	closed = cowfs_close(s->fs);
	s->fs = NULL;
	s->close_result = ret < 0 ? ret : closed;
	if (s->close_result < 0)
		server_say(s, "%s: closing the image: %s", s->image, strerror(-s->close_result));
	return s->close_result;
}

static struct fuse_session *session_new(struct server *s, const struct mount_config *c)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;

	if (fuse_opt_add_arg(&args, PROG) == 0 && fuse_opt_add_arg(&args, "-o") == 0 &&
	    fuse_opt_add_arg(&args, c->fuse_opts) == 0 &&
	    (!c->debug || fuse_opt_add_arg(&args, "-d") == 0))
		se = fuse_session_new(&args, &server_ops, sizeof(server_ops), s);
	fuse_opt_free_args(&args);
	if (!se)
		server_say(s, "cannot start the FUSE session (options: %s)", c->fuse_opts);
	return se;
}

/*
 * Fork the daemon. In the parent, returns true with the exit status in *status: 0 once the
 * child said it is mounted, 1 if it failed (it printed why) or died. In the child, returns
 * false with the pipe's write end in *ready_fd.
 */
static bool fork_daemon(int *ready_fd, int *status)
{
	int p[2];
	pid_t pid;
	ssize_t n;
	char c = 0;

	if (pipe(p) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, PROG ": cannot start the daemon: %s\n", strerror(errno));
		*status = 1;
		return true;
	}
	if (pid == 0) {
		close(p[0]);
		*ready_fd = p[1];
		return false;
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	*status = n == 1 && c == READY_BYTE ? 0 : 1;
	/* A child that failed is exiting: reap it rather than leave it to init. */
	if (*status)
		waitpid(pid, NULL, 0);
	return true;
}

/* Leave the terminal and the caller's directory, then let the parent exit. */
static void detach(struct server *s, int ready_fd)
{
	int null = open("/dev/null", O_RDWR);
	char ready = READY_BYTE;

	openlog(PROG, LOG_PID, LOG_DAEMON);
	atomic_store(&s->to_syslog, true);
	fuse_set_log_func(fuse_log_to_syslog);
	setsid();
	if (chdir("/") < 0)
		server_say(s, "chdir /: %s", strerror(errno));
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (write(ready_fd, &ready, 1) != 1)
		server_say(s, "telling the parent the mount is ready: %s", strerror(errno));
	close(ready_fd);
}

/*
 * Request threads. Tree work is serialized by the filesystem lock, so threads beyond a few only
 * add wake-ups and hand-offs (on 2 cores, fio 4 KiB random writes: 14.5k/s single-threaded,
 * 10.6k-13.6k/s with libfuse's default pool); a few still let reads wait on the disk while
 * others are served (direct random reads: 71k-85k/s).
 */
#define COWFS_IDLE_THREADS 4
#define COWFS_MAX_THREADS 8

static int run_loop(struct fuse_session *se, bool single_thread)
{
	struct fuse_loop_config *cfg;
	int ret;

	if (single_thread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_idle_threads(cfg, COWFS_IDLE_THREADS);
	fuse_loop_cfg_set_max_threads(cfg, COWFS_MAX_THREADS);
	ret = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return ret;
}

/* Serve until unmounted or signalled, then make sure the mount is gone. */
static bool serve_until_unmounted(struct server *s, struct fuse_session *se,
				  const struct mount_config *c)
{
	int ret = run_loop(se, c->single_thread);

	if (ret < 0)
		server_say(s, "serving %s: %s", c->mountpoint, strerror(-ret));
	fuse_session_unmount(se);
	return ret >= 0;
}

/*
 * The signals that end the loop. They are blocked while the image opens, so that the
 * threads fs/ starts inherit the block: the main thread must be the one they interrupt.
 */
static void block_exit_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

/*
 * glibc's heap, bounded. Few arenas: glibc gives each request thread its own by default, and
 * each keeps what its thread freed (3 fsx and a metadata stress at cache_size=16M: 144 MiB
 * resident after 3 rounds and growing 21 MiB a round with the default, 65 MiB with 2 arenas).
 * Allocations of 256 KiB and more are mapped, so that freeing one gives its memory back at
 * once: from the heap, freed request-sized buffers were split for small allocations and the
 * next ones extended the heap (the 65 MiB above; 25 MiB with this, bench/README.md, "Memory").
 * The buffers that come and go with every request are pooled instead (file reads: bufpool.h;
 * file data pages: the inode cache's chunks; tree blocks: the block cache's slabs), so they
 * cost no page faults. The heap's free top goes back above glibc's default 128 KiB (a larger
 * threshold kept up to that much per arena for good).
 */
static void tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	mallopt(M_TRIM_THRESHOLD, 128 << 10);
	mallopt(M_ARENA_MAX, 2);
}

/* The tree steps of the mount itself (replay, orphans) are not counted: only what follows. */
static int inject_fault(void *arg, const char *site)
{
	struct server *s = arg;

	(void)site;
	return s->inject_countdown > 0 && --s->inject_countdown == 0 ? -s->inject_errno : 0;
}

/*
 * COWFS_FAULT_INJECT=N:ERRNO: what tests use to see a transaction abort on a real mount (an
 * injected failure, where a real one would be an I/O error or memory running out).
 */
static void arm_fault_injection(struct server *s)
{
	const char *v = getenv("COWFS_FAULT_INJECT");
	long n;
	int err;

	if (!v || sscanf(v, "%ld:%d", &n, &err) != 2 || n <= 0 || err <= 0)
		return;
	s->inject_countdown = n;
	s->inject_errno = err;
	cowfs_inject_faults(s->fs, inject_fault, s);
	server_say(s, "%s: fault injection armed: step %ld fails with errno %d", s->image, n, err);
}

/* Mount and serve (in the daemon, or in the foreground). Returns the exit status. */
static int serve(const struct mount_config *c, int ready_fd)
{
	struct server s = {
		.image = c->image,
		.read_only = c->read_only,
		.default_permissions = c->default_permissions,
		.mountpoint = c->mountpoint,
		.readahead_bytes = c->readahead_bytes,
		.max_read = c->max_read,
		.remount_lock = PTHREAD_MUTEX_INITIALIZER,
	};
	struct fuse_session *se;
	bool served = false;
	sigset_t old;

	tune_malloc();
	late_replies_init(&s);
	block_exit_signals(&old);
	if (open_image(&s, c) < 0)
		return 1;
	arm_fault_injection(&s);
	se = session_new(&s, c);
	s.se = se;
	if (se && fuse_set_signal_handlers(se) == 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (fuse_session_mount(se, c->mountpoint) == 0) {
			if (ready_fd >= 0)
				detach(&s, ready_fd);
			served = serve_until_unmounted(&s, se, c);
		} else {
			server_say(&s, "cannot mount %s on %s", c->image, c->mountpoint);
		}
		fuse_remove_signal_handlers(se);
	}
	/* The kernel is gone now: destroy closes the image, committing everything (or
	 * server_close does, if the kernel never connected). */
	if (s.sv)
		subvols_stop(s.sv);   /* SUBVOL_SYNC waiters answer now */
	late_replies_wait(&s);
	if (se)
		fuse_session_destroy(se);
	return server_close(&s) == 0 && served ? 0 : 1;
}

int cowfs_mount_main(int argc, char **argv)
{
	struct mount_config c;
	int ready_fd = -1, status;

	status = config_parse(&c, argc, argv);
	if (status != 0)
		return status < 0 ? 1 : 0;
	if (c.remount) {
		status = remount_main(&c);
		config_free(&c);
		return status;
	}
	if (c.foreground || !fork_daemon(&ready_fd, &status))
		status = serve(&c, ready_fd);
	config_free(&c);
	return status;
}
