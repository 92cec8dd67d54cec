/*
 * ioctl_check: issue one cowfs ioctl (fuse/cowfs_ioctl.h) on a mounted cowfs, with good or
 * deliberately bad arguments, and print what came back; tests/integ/test_ioctl.sh drives it.
 *
 *   ioctl_check [-e ERRNO] CMD [OPTIONS] ARGS...
 *
 *   -e ERRNO   the call must fail with ERRNO (a name such as EINVAL): exit 0 if it did, 1 if it
 *              worked or failed otherwise. Without -e the call must work.
 *
 * A FILE argument is a path, or @SUBVOL:INO:GEN to name a file by id without opening it (what
 * a user who cannot open it still can do).
 *
 *   id PATH                              subvol= ino= gen= blocksize=
 *   clone [-o MODE] [-V N] [-F N] [-S D] [-I INO] [-G D] SRC DST [SRC_OFF LEN DST_OFF]
 *                                        cloned=N. MODE is how DST is opened: rw (default), ro,
 *                                        wo, append, dir. -S/-G add D to the source's subvol /
 *                                        generation, -I replaces its inode number.
 *   dedupe [-o MODE] [-V N] [-n COUNT] [-S D] [-I INO] [-G D] [-R N] SRC SRC_OFF LEN DST:OFF...
 *                                        status=S,... deduped=N,... (S: same, differs, or an
 *                                        errno name). MODE: how SRC is opened (ro default).
 *                                        -n overrides dest_count, -S/-I/-G apply to the first
 *                                        destination, -R sets its reserved field.
 *   fiemap [-V N] [-F N] PATH [START LEN]     count=N, then "LOGICAL PHYSICAL LENGTH FLAGS"
 *   chunks [-o MODE] [-V N] [-F N] [-R N] PATH CHUNK_BYTES [START]
 *                                        CHUNK_HASHES: count=N, then "OFFSET LENGTH PHYSICAL
 *                                        HASH FLAGS" (HASH: hi:lo in hex, - if not hashed).
 *                                        MODE: how PATH is opened (ro default); -R sets the
 *                                        request's reserved field.
 *   space PATH...                        each alone: files= extents= referenced= exclusive=
 *                                        shared= pinned=
 *   space-set PATH...                    one set of all of them (SET_ADD each, SET_RESULT)
 *   space-op [-V N] PATH OP SET          one raw SPACE request: set= and the figures
 *   sync PATH
 *   stats PATH                           NAME=VALUE, one a line
 *   raw PATH NR                          _IOR(0xCF, NR, 64 bytes): an unknown command
 *   subvol-create DIR NAME               SUBVOL_CREATE: id=N
 *   snapshot [-r] SRC DIR NAME           SNAP_CREATE of SRC's subvolume (-r read-only): id=N
 *   subvol-delete DIR NAME               SUBVOL_DELETE: id=N
 *   subvol-info [-n] PATH [ID]           SUBVOL_INFO (-n: INFO_NEXT): id= parent= dir= source=
 *                                        flags= drop= name= path=
 *   subvol-ro PATH 0|1                   SUBVOL_SET_FLAGS on a subvolume's root: flags=
 *   subvol-default PATH [ID]             SUBVOL_DEFAULT: GET, or SET to ID: id=
 *   subvol-sync PATH [ID]                SUBVOL_SYNC: count=
 *   subvol-space [-r] PATH ID...         SUBVOL_SPACE: exclusive= data= meta= referenced=
 *   handle-save PATH FILE                name_to_handle_at(PATH) written to FILE
 *   handle-open MOUNTDIR FILE            open_by_handle_at with FILE's handle: ino= size=
 *
 * Exit status: 0 as expected, 1 not as expected, 2 usage or setup error.
 * Build: cc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -o ioctl_check ioctl_check.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/cowfs_ioctl.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct errno_name {
	int err;
	const char *name;
} errno_names[] = {
	{ EINVAL, "EINVAL" }, { EBADF, "EBADF" }, { EISDIR, "EISDIR" }, { EXDEV, "EXDEV" },
	{ ENOENT, "ENOENT" }, { ESTALE, "ESTALE" }, { EACCES, "EACCES" }, { EPERM, "EPERM" },
	{ EROFS, "EROFS" }, { ENOTTY, "ENOTTY" }, { EOPNOTSUPP, "EOPNOTSUPP" }, { EIO, "EIO" },
	{ ENOSYS, "ENOSYS" }, { EFBIG, "EFBIG" }, { ENOSPC, "ENOSPC" }, { E2BIG, "E2BIG" },
	{ ENOMEM, "ENOMEM" }, { EAGAIN, "EAGAIN" }, { ENODATA, "ENODATA" }, { EBADR, "EBADR" },
};

static const char *errno_name(int err)
{
	static char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++)
		if (errno_names[i].err == err)
			return errno_names[i].name;
	snprintf(buf, sizeof(buf), "errno%d", err);
	return buf;
}

static int errno_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++)
		if (strcmp(errno_names[i].name, name) == 0)
			return errno_names[i].err;
	return atoi(name);
}

static void usage_fail(const char *why)
{
	fprintf(stderr, "ioctl_check: %s (see the comment at the top of ioctl_check.c)\n", why);
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		usage_fail("bad number");
	return v;
}

/* What the options of clone and dedupe change in a request. */
struct tweaks {
	const char *mode;
	uint32_t version;
	bool version_set;
	uint32_t flags;
	int64_t subvol_delta, gen_delta;
	uint64_t ino;            /* 0: leave it */
	long count;              /* -1: leave it */
	uint32_t reserved;
};

static int open_mode(const char *path, const char *mode)
{
	int flags;

	if (strcmp(mode, "rw") == 0)
		flags = O_RDWR;
	else if (strcmp(mode, "ro") == 0)
		flags = O_RDONLY;
	else if (strcmp(mode, "wo") == 0)
		flags = O_WRONLY;
	else if (strcmp(mode, "append") == 0)
		flags = O_WRONLY | O_APPEND;
	else if (strcmp(mode, "dir") == 0)
		flags = O_RDONLY | O_DIRECTORY;
	else
		usage_fail("bad open mode");
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ioctl_check: open %s (%s): %s\n", path, mode, strerror(errno));
		exit(2);
	}
	return fd;
}

/* The id of FILE: @SUBVOL:INO:GEN, or what FILE_ID says of the path. */
static void file_id(const char *file, struct cowfs_ioc_file *out, uint32_t *blocksize)
{
	struct cowfs_ioc_file_id id;
	int fd;

	if (file[0] == '@') {
		if (sscanf(file + 1, "%" SCNu64 ":%" SCNu64 ":%" SCNu64, &out->subvol, &out->ino,
			   &out->generation) != 3)
			usage_fail("bad @SUBVOL:INO:GEN");
		return;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, COWFS_IOC_FILE_ID, &id) < 0) {
		fprintf(stderr, "ioctl_check: FILE_ID of %s: %s\n", file, strerror(errno));
		exit(2);
	}
	close(fd);
	*out = id.file;
	if (blocksize)
		*blocksize = id.blocksize;
}

static void apply_id_tweaks(struct cowfs_ioc_file *f, const struct tweaks *t)
{
	f->subvol += (uint64_t)t->subvol_delta;
	f->generation += (uint64_t)t->gen_delta;
	if (t->ino)
		f->ino = t->ino;
}

/* Options shared by clone and dedupe; returns the index of the first argument. */
static int parse_tweaks(int argc, char **argv, struct tweaks *t, const char *dflt_mode)
{
	int c;

	memset(t, 0, sizeof(*t));
	t->mode = dflt_mode;
	t->count = -1;
	optind = 1;
	while ((c = getopt(argc, argv, "+o:V:F:S:I:G:n:R:")) != -1) {
		switch (c) {
		case 'o': t->mode = optarg; break;
		case 'V': t->version = (uint32_t)num(optarg); t->version_set = true; break;
		case 'F': t->flags = (uint32_t)num(optarg); break;
		case 'S': t->subvol_delta = strtoll(optarg, NULL, 0); break;
		case 'I': t->ino = num(optarg); break;
		case 'G': t->gen_delta = strtoll(optarg, NULL, 0); break;
		case 'n': t->count = (long)num(optarg); break;
		case 'R': t->reserved = (uint32_t)num(optarg); break;
		default: usage_fail("bad option");
		}
	}
	return optind;
}

/* The outcome of one ioctl against what was expected (-e): 0 as expected, else 1. */
static int outcome(int ret, int saved_errno, int expect)
{
	if (ret < 0 && expect == saved_errno) {
		printf("error=%s\n", errno_name(saved_errno));
		return 0;
	}
	if (ret < 0) {
		printf("error=%s\n", errno_name(saved_errno));
		fprintf(stderr, "ioctl_check: failed with %s, expected %s\n", errno_name(saved_errno),
			expect ? errno_name(expect) : "success");
		return 1;
	}
	if (expect) {
		fprintf(stderr, "ioctl_check: worked, expected %s\n", errno_name(expect));
		return 1;
	}
	return -1;   /* worked as expected: the caller prints what came back */
}

static int cmd_id(int argc, char **argv, int expect)
{
	struct cowfs_ioc_file_id id;
	int fd, ret, r;

	if (argc != 2)
		usage_fail("id PATH");
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		usage_fail("cannot open PATH");
	ret = ioctl(fd, COWFS_IOC_FILE_ID, &id);
	r = outcome(ret, errno, expect);
	if (r >= 0)
		return r;
	printf("subvol=%" PRIu64 " ino=%" PRIu64 " gen=%" PRIu64 " blocksize=%u version=%u\n",
	       id.file.subvol, id.file.ino, id.file.generation, id.blocksize, id.version);
	return 0;
}

static int cmd_clone(int argc, char **argv, int expect)
{
	struct cowfs_ioc_clone_range cr;
	struct tweaks t;
	int i = parse_tweaks(argc, argv, &t, "rw"), fd, ret, r;

	if (argc - i != 2 && argc - i != 5)
		usage_fail("clone [OPTIONS] SRC DST [SRC_OFF LEN DST_OFF]");
	memset(&cr, 0, sizeof(cr));
	file_id(argv[i], &cr.src, NULL);
	apply_id_tweaks(&cr.src, &t);
	cr.version = t.version_set ? t.version : COWFS_CLONE_VERSION;
	cr.flags = t.flags;
	if (argc - i == 5) {
		cr.src_offset = num(argv[i + 2]);
		cr.length = num(argv[i + 3]);
		cr.dst_offset = num(argv[i + 4]);
	}
	fd = open_mode(argv[i + 1], t.mode);
	ret = ioctl(fd, COWFS_IOC_CLONE_RANGE, &cr);
	r = outcome(ret, errno, expect);
	close(fd);
	if (r >= 0)
		return r;
	printf("cloned=%" PRIu64 "\n", cr.length);
	return 0;
}

static const char *dedupe_status(int32_t st)
{
	if (st == COWFS_DEDUPE_SAME)
		return "same";
	if (st == COWFS_DEDUPE_DIFFERS)
		return "differs";
	return st < 0 ? errno_name(-st) : "unknown";
}

/* DST:OFF, the file as FILE takes it. */
static void dedupe_dest(const char *arg, struct cowfs_ioc_dedupe_dest *d)
{
	char *copy = strdup(arg), *colon = copy ? strrchr(copy, ':') : NULL;

	if (!colon)
		usage_fail("a destination is DST:OFF");
	*colon = '\0';
	file_id(copy, &d->dst, NULL);
	d->dst_offset = num(colon + 1);
	free(copy);
}

static int cmd_dedupe(int argc, char **argv, int expect)
{
	static struct cowfs_ioc_dedupe_range dr;
	struct tweaks t;
	int i = parse_tweaks(argc, argv, &t, "ro"), fd, ret, r;
	int ndest = argc - i - 3;

	if (ndest < 0 || ndest > COWFS_DEDUPE_MAX_DESTS)
		usage_fail("dedupe [OPTIONS] SRC SRC_OFF LEN DST:OFF...");
	memset(&dr, 0, sizeof(dr));
	dr.version = t.version_set ? t.version : COWFS_DEDUPE_VERSION;
	dr.src_offset = num(argv[i + 1]);
	dr.src_length = num(argv[i + 2]);
	for (int k = 0; k < ndest; k++)
		dedupe_dest(argv[i + 3 + k], &dr.dests[k]);
	if (ndest > 0) {
		apply_id_tweaks(&dr.dests[0].dst, &t);
		dr.dests[0].reserved = t.reserved;
	}
	dr.dest_count = (uint16_t)(t.count >= 0 ? t.count : ndest);
	/* Status left as a value no answer has, to see that every one was filled in. */
	for (int k = 0; k < COWFS_DEDUPE_MAX_DESTS; k++)
		dr.dests[k].status = 12345;
	fd = open_mode(argv[i], t.mode);
	ret = ioctl(fd, COWFS_IOC_DEDUPE_RANGE, &dr);
	r = outcome(ret, errno, expect);
	close(fd);
	if (r >= 0)
		return r;
	printf("status=");
	for (int k = 0; k < dr.dest_count; k++)
		printf("%s%s", k ? "," : "", dedupe_status(dr.dests[k].status));
	printf(" deduped=");
	for (int k = 0; k < dr.dest_count; k++)
		printf("%s%" PRIu64, k ? "," : "", dr.dests[k].bytes_deduped);
	printf("\n");
	return 0;
}

static void print_extent_flags(uint32_t f)
{
	static const struct { uint32_t bit; const char *name; } names[] = {
		{ COWFS_EXTENT_LAST, "last" }, { COWFS_EXTENT_DELALLOC, "delalloc" },
		{ COWFS_EXTENT_UNWRITTEN, "unwritten" }, { COWFS_EXTENT_SHARED, "shared" },
	};
	bool any = false;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (f & names[i].bit) {
			printf("%s%s", any ? "," : "", names[i].name);
			any = true;
		}
	}
	if (f & ~(COWFS_EXTENT_LAST | COWFS_EXTENT_DELALLOC | COWFS_EXTENT_UNWRITTEN |
		  COWFS_EXTENT_SHARED))
		printf("%sunknown:%#x", any ? "," : "", f);
	else if (!any)
		printf("-");
}

static int cmd_fiemap(int argc, char **argv, int expect)
{
	static struct cowfs_ioc_fiemap fm;
	struct tweaks t;
	int i = parse_tweaks(argc, argv, &t, "ro"), fd, ret, r;

	if (argc - i != 1 && argc - i != 3)
		usage_fail("fiemap [OPTIONS] PATH [START LEN]");
	memset(&fm, 0, sizeof(fm));
	fm.version = t.version_set ? t.version : COWFS_FIEMAP_VERSION;
	fm.flags = t.flags;
	fm.length = UINT64_MAX;
	if (argc - i == 3) {
		fm.start = num(argv[i + 1]);
		fm.length = num(argv[i + 2]);
	}
	fd = open(argv[i], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		usage_fail("cannot open PATH");
	ret = ioctl(fd, COWFS_IOC_FIEMAP, &fm);
	r = outcome(ret, errno, expect);
	close(fd);
	if (r >= 0)
		return r;
	printf("count=%u\n", fm.count);
	for (uint32_t k = 0; k < fm.count && k < COWFS_FIEMAP_BATCH; k++) {
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " ", fm.extents[k].logical,
		       fm.extents[k].physical, fm.extents[k].length);
		print_extent_flags(fm.extents[k].flags);
		printf("\n");
	}
	return 0;
}

static void print_chunk_flags(uint32_t f)
{
	static const struct { uint32_t bit; const char *name; } names[] = {
		{ COWFS_CHUNK_HASHED, "hashed" }, { COWFS_CHUNK_HOLE, "hole" },
		{ COWFS_CHUNK_UNWRITTEN, "unwritten" }, { COWFS_CHUNK_DELALLOC, "delalloc" },
		{ COWFS_CHUNK_CONTIGUOUS, "contiguous" }, { COWFS_CHUNK_SHARED, "shared" },
	};
	uint32_t known = 0;
	bool any = false;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		known |= names[i].bit;
		if (f & names[i].bit) {
			printf("%s%s", any ? "," : "", names[i].name);
			any = true;
		}
	}
	if (f & ~known)
		printf("%sunknown:%#x", any ? "," : "", f & ~known);
	else if (!any)
		printf("-");
}

static int cmd_chunks(int argc, char **argv, int expect)
{
	static struct cowfs_ioc_chunk_hashes ch;
	struct tweaks t;
	int i = parse_tweaks(argc, argv, &t, "ro"), fd, ret, r;

	if (argc - i != 2 && argc - i != 3)
		usage_fail("chunks [OPTIONS] PATH CHUNK_BYTES [START]");
	memset(&ch, 0, sizeof(ch));
	ch.version = t.version_set ? t.version : COWFS_CHUNK_HASHES_VERSION;
	ch.flags = t.flags;
	ch.reserved = t.reserved;
	ch.chunk_bytes = num(argv[i + 1]);
	ch.start = argc - i == 3 ? num(argv[i + 2]) : 0;
	fd = open_mode(argv[i], t.mode);
	ret = ioctl(fd, COWFS_IOC_CHUNK_HASHES, &ch);
	r = outcome(ret, errno, expect);
	close(fd);
	if (r >= 0)
		return r;
	printf("count=%u\n", ch.count);
	for (uint32_t k = 0; k < ch.count && k < COWFS_CHUNK_BATCH; k++) {
		const struct cowfs_ioc_chunk *c = &ch.chunks[k];
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " ", c->offset, c->length, c->physical);
		if (c->flags & COWFS_CHUNK_HASHED)
			printf("%016" PRIx64 ":%016" PRIx64 " ", c->hash_hi, c->hash_lo);
		else
			printf("- ");
		print_chunk_flags(c->flags);
		printf("\n");
	}
	return 0;
}

static void print_space(const char *what, const struct cowfs_ioc_space *sp)
{
	printf("%s files=%" PRIu64 " extents=%" PRIu64 " referenced=%" PRIu64
	       " exclusive=%" PRIu64 " shared=%" PRIu64 " pinned=%" PRIu64 "\n", what, sp->files,
	       sp->extents, sp->referenced, sp->exclusive, sp->shared, sp->pinned);
}

static int space_call(const char *path, uint32_t version, uint32_t op, uint64_t set,
		      struct cowfs_ioc_space *sp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret, e;

	if (fd < 0) {
		fprintf(stderr, "ioctl_check: open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	memset(sp, 0, sizeof(*sp));
	sp->version = version;
	sp->op = op;
	sp->set = set;
	ret = ioctl(fd, COWFS_IOC_SPACE, sp);
	e = errno;
	close(fd);
	errno = e;
	return ret;
}

static int cmd_space(int argc, char **argv, int expect, bool as_set)
{
	struct cowfs_ioc_space sp;
	uint64_t set = 0;
	int ret, r;

	if (argc < 2)
		usage_fail("space PATH...");
	for (int i = 1; i < argc; i++) {
		ret = space_call(argv[i], COWFS_SPACE_VERSION,
				     as_set ? COWFS_SPACE_SET_ADD : COWFS_SPACE_ALONE, set, &sp);

		r = outcome(ret, errno, expect);
		if (r >= 0)
			return r;
		if (as_set) {
			if (sp.set == 0 || (set && sp.set != set)) {
				fprintf(stderr, "ioctl_check: SET_ADD gave set %" PRIu64 "\n", sp.set);
				return 1;
			}
			set = sp.set;
		} else {
			print_space(argv[i], &sp);
		}
	}
	if (!as_set)
		return 0;
	ret = space_call(argv[1], COWFS_SPACE_VERSION, COWFS_SPACE_SET_RESULT, set, &sp);
	r = outcome(ret, errno, expect);
	if (r >= 0)
		return r;
	print_space("set", &sp);
	return 0;
}

static int cmd_space_op(int argc, char **argv, int expect)
{
	struct cowfs_ioc_space sp;
	struct tweaks t;
	int i = parse_tweaks(argc, argv, &t, "ro"), ret, r;

	if (argc - i != 3)
		usage_fail("space-op [-V N] PATH OP SET");
	ret = space_call(argv[i], t.version_set ? t.version : COWFS_SPACE_VERSION,
			 (uint32_t)num(argv[i + 1]), num(argv[i + 2]), &sp);
	r = outcome(ret, errno, expect);
	if (r >= 0)
		return r;
	printf("set=%" PRIu64 "\n", sp.set);
	print_space("figures", &sp);
	return 0;
}

static int open_any(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "ioctl_check: open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

static int cmd_sync(int argc, char **argv, int expect)
{
	int fd, ret, r;

	if (argc != 2)
		usage_fail("sync PATH");
	fd = open_any(argv[1]);
	ret = ioctl(fd, COWFS_IOC_SYNC);
	r = outcome(ret, errno, expect);
	close(fd);
	if (r >= 0)
		return r;
	printf("synced\n");
	return 0;
}

static int cmd_stats(int argc, char **argv, int expect)
{
	struct cowfs_ioc_stats st;
	int fd, ret, r;

	if (argc != 2)
		usage_fail("stats PATH");
	fd = open_any(argv[1]);
	ret = ioctl(fd, COWFS_IOC_STATS, &st);
	r = outcome(ret, errno, expect);
	close(fd);
	if (r >= 0)
		return r;
	printf("version=%u\ncopy_calls=%" PRIu64 "\ncopy_bytes_shared=%" PRIu64
	       "\ncopy_bytes_copied=%" PRIu64 "\nclone_calls=%" PRIu64 "\nclone_bytes=%" PRIu64
	       "\ndedupe_calls=%" PRIu64 "\ndedupe_bytes_same=%" PRIu64
	       "\ndedupe_bytes_differ=%" PRIu64 "\ncommits=%" PRIu64 "\nfsyncs=%" PRIu64
	       "\nfsync_log_hits=%" PRIu64 "\nfsync_commits=%" PRIu64 "\n", st.version,
	       st.copy_calls, st.copy_bytes_shared, st.copy_bytes_copied, st.clone_calls,
	       st.clone_bytes, st.dedupe_calls, st.dedupe_bytes_same, st.dedupe_bytes_differ,
	       st.commits, st.fsyncs, st.fsync_log_hits, st.fsync_commits);
	return 0;
}

static int cmd_raw(int argc, char **argv, int expect)
{
	char buf[64] = { 0 };
	int fd, ret, r;

	if (argc != 3)
		usage_fail("raw PATH NR");
	fd = open_any(argv[1]);
	ret = ioctl(fd, _IOR(COWFS_IOC_MAGIC, num(argv[2]), char[64]), buf);
	r = outcome(ret, errno, expect);
	close(fd);
	if (r >= 0)
		return r;
	printf("ok\n");
	return 0;
}

/* ---- subvolumes ---------------------------------------------------------------------- */

/* One ioctl on PATH: outcome()'s answer (-1: worked as expected, print what came back). */
static int issue(const char *path, unsigned long cmd, void *arg, int expect)
{
	int fd = open_any(path), ret = ioctl(fd, cmd, arg), r = outcome(ret, errno, expect);

	close(fd);
	return r;
}

static void set_name(char *dst, const char *name)
{
	if (strlen(name) > COWFS_SUBVOL_NAME_MAX)
		usage_fail("name too long");
	strcpy(dst, name);
}

static uint64_t subvol_of(const char *path)
{
	struct cowfs_ioc_file_id id;
	int fd = open_any(path);

	if (ioctl(fd, COWFS_IOC_FILE_ID, &id) < 0) {
		fprintf(stderr, "ioctl_check: FILE_ID %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
	return id.file.subvol;
}

static int cmd_subvol_create(int argc, char **argv, int expect)
{
	struct cowfs_ioc_subvol_create c = { .version = COWFS_SUBVOL_VERSION };
	bool snap = strcmp(argv[0], "snapshot") == 0;
	int r, i = 1;

	if (snap && argc > 1 && strcmp(argv[1], "-r") == 0) {
		c.flags = COWFS_SUBVOL_RDONLY;
		i++;
	}
	if (argc - i != (snap ? 3 : 2))
		usage_fail(snap ? "snapshot [-r] SRC DIR NAME" : "subvol-create DIR NAME");
	if (snap)
		c.source = subvol_of(argv[i++]);
	set_name(c.name, argv[i + 1]);
	r = issue(argv[i], snap ? COWFS_IOC_SNAP_CREATE : COWFS_IOC_SUBVOL_CREATE, &c, expect);
	if (r >= 0)
		return r;
	printf("id=%" PRIu64 "\n", c.id);
	return 0;
}

static int cmd_subvol_delete(int argc, char **argv, int expect)
{
	struct cowfs_ioc_subvol_delete d = { .version = COWFS_SUBVOL_VERSION };
	int r;

	if (argc != 3)
		usage_fail("subvol-delete DIR NAME");
	set_name(d.name, argv[2]);
	r = issue(argv[1], COWFS_IOC_SUBVOL_DELETE, &d, expect);
	if (r >= 0)
		return r;
	printf("id=%" PRIu64 "\n", d.id);
	return 0;
}

static int cmd_subvol_info(int argc, char **argv, int expect)
{
	static struct cowfs_ioc_subvol_info in;
	int r, i = 1;

	in.version = COWFS_SUBVOL_VERSION;
	if (argc > 1 && strcmp(argv[1], "-n") == 0) {
		in.in_flags = COWFS_SUBVOL_INFO_NEXT;
		i++;
	}
	if (argc - i < 1 || argc - i > 2)
		usage_fail("subvol-info [-n] PATH [ID]");
	in.id = argc - i == 2 ? num(argv[i + 1]) : 0;
	r = issue(argv[i], COWFS_IOC_SUBVOL_INFO, &in, expect);
	if (r >= 0)
		return r;
	printf("id=%" PRIu64 " parent=%" PRIu64 " dir=%" PRIu64 " source=%" PRIu64
	       " flags=%s%s%s drop=%u name=%s path=%s\n", in.id, in.parent, in.dir, in.source,
	       in.flags & COWFS_SUBVOL_RDONLY ? "ro" : "rw",
	       in.flags & COWFS_SUBVOL_DELETING ? ",deleting" : "",
	       in.flags & COWFS_SUBVOL_DEFAULT ? ",default" : "", in.drop_permille, in.name,
	       in.path);
	return 0;
}

static int cmd_subvol_ro(int argc, char **argv, int expect)
{
	struct cowfs_ioc_subvol_flags f = { .version = COWFS_SUBVOL_VERSION };
	int r;

	if (argc != 3)
		usage_fail("subvol-ro PATH 0|1");
	f.flags = num(argv[2]) ? COWFS_SUBVOL_RDONLY : 0;
	r = issue(argv[1], COWFS_IOC_SUBVOL_SET_FLAGS, &f, expect);
	if (r >= 0)
		return r;
	printf("flags=%u\n", f.flags);
	return 0;
}

static int cmd_subvol_default(int argc, char **argv, int expect)
{
	struct cowfs_ioc_subvol_default d = { .version = COWFS_SUBVOL_VERSION };
	int r;

	if (argc != 2 && argc != 3)
		usage_fail("subvol-default PATH [ID]");
	if (argc == 3) {
		d.op = COWFS_SUBVOL_DEFAULT_SET;
		d.id = num(argv[2]);
	}
	r = issue(argv[1], COWFS_IOC_SUBVOL_DEFAULT, &d, expect);
	if (r >= 0)
		return r;
	printf("id=%" PRIu64 "\n", d.id);
	return 0;
}

static int cmd_subvol_sync(int argc, char **argv, int expect)
{
	struct cowfs_ioc_subvol_sync y = { .version = COWFS_SUBVOL_VERSION };
	int r;

	if (argc != 2 && argc != 3)
		usage_fail("subvol-sync PATH [ID]");
	y.id = argc == 3 ? num(argv[2]) : 0;
	r = issue(argv[1], COWFS_IOC_SUBVOL_SYNC, &y, expect);
	if (r >= 0)
		return r;
	printf("count=%u\n", y.count);
	return 0;
}

static int cmd_subvol_space(int argc, char **argv, int expect)
{
	struct cowfs_ioc_subvol_space sp = { .version = COWFS_SUBVOL_VERSION };
	int r, i = 1;

	if (argc > 1 && strcmp(argv[1], "-r") == 0) {
		sp.flags = COWFS_SUBVOL_SPACE_REFERENCED;
		i++;
	}
	if (argc - i < 2 || argc - i - 1 > COWFS_SUBVOL_SPACE_MAX)
		usage_fail("subvol-space [-r] PATH ID...");
	for (int k = i + 1; k < argc; k++)
		sp.ids[sp.count++] = num(argv[k]);
	r = issue(argv[i], COWFS_IOC_SUBVOL_SPACE, &sp, expect);
	if (r >= 0)
		return r;
	printf("exclusive=%" PRIu64 " data=%" PRIu64 " meta=%" PRIu64 " referenced=%" PRIu64 "\n",
	       sp.exclusive, sp.exclusive_data, sp.exclusive_meta, sp.referenced);
	return 0;
}

#define HANDLE_MAX 128

static int cmd_handle_save(int argc, char **argv, int expect)
{
	union { struct file_handle fh; char buf[sizeof(struct file_handle) + HANDLE_MAX]; } h;
	int mount_id, ret, r;
	FILE *f;

	if (argc != 3)
		usage_fail("handle-save PATH FILE");
	h.fh.handle_bytes = HANDLE_MAX;
	ret = name_to_handle_at(AT_FDCWD, argv[1], &h.fh, &mount_id, 0);
	r = outcome(ret, errno, expect);
	if (r >= 0)
		return r;
	f = fopen(argv[2], "wb");
	if (!f || fwrite(&h, sizeof(h.fh) + h.fh.handle_bytes, 1, f) != 1 || fclose(f) != 0)
		usage_fail("cannot write FILE");
	printf("bytes=%u type=%d\n", h.fh.handle_bytes, h.fh.handle_type);
	return 0;
}

static int cmd_handle_open(int argc, char **argv, int expect)
{
	union { struct file_handle fh; char buf[sizeof(struct file_handle) + HANDLE_MAX]; } h;
	int mfd, fd, r;
	struct stat st;
	FILE *f;

	if (argc != 3)
		usage_fail("handle-open MOUNTDIR FILE");
	f = fopen(argv[2], "rb");
	if (!f || fread(&h, 1, sizeof(h), f) < sizeof(h.fh))
		usage_fail("cannot read FILE");
	fclose(f);
	mfd = open_any(argv[1]);
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY);
	r = outcome(fd, errno, expect);
	close(mfd);
	if (r >= 0)
		return r;
	if (fstat(fd, &st) < 0)
		usage_fail("fstat");
	printf("ino=%llu size=%lld\n", (unsigned long long)st.st_ino, (long long)st.st_size);
	close(fd);
	return 0;
}

static const struct subcmd {
	const char *name;
	int (*fn)(int argc, char **argv, int expect);
} subvol_cmds[] = {
	{ "subvol-create", cmd_subvol_create },
	{ "snapshot", cmd_subvol_create },
	{ "subvol-delete", cmd_subvol_delete },
	{ "subvol-info", cmd_subvol_info },
	{ "subvol-ro", cmd_subvol_ro },
	{ "subvol-default", cmd_subvol_default },
	{ "subvol-sync", cmd_subvol_sync },
	{ "subvol-space", cmd_subvol_space },
	{ "handle-save", cmd_handle_save },
	{ "handle-open", cmd_handle_open },
};

int main(int argc, char **argv)
{
	int expect = 0;

	if (argc >= 3 && strcmp(argv[1], "-e") == 0) {
		expect = errno_from_name(argv[2]);
		if (expect <= 0)
			usage_fail("bad errno after -e");
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		usage_fail("no command");
	argc--;
	argv++;
	if (strcmp(argv[0], "id") == 0)
		return cmd_id(argc, argv, expect);
	if (strcmp(argv[0], "clone") == 0)
		return cmd_clone(argc, argv, expect);
	if (strcmp(argv[0], "dedupe") == 0)
		return cmd_dedupe(argc, argv, expect);
	if (strcmp(argv[0], "fiemap") == 0)
		return cmd_fiemap(argc, argv, expect);
	if (strcmp(argv[0], "chunks") == 0)
		return cmd_chunks(argc, argv, expect);
	if (strcmp(argv[0], "space") == 0)
		return cmd_space(argc, argv, expect, false);
	if (strcmp(argv[0], "space-set") == 0)
		return cmd_space(argc, argv, expect, true);
	if (strcmp(argv[0], "space-op") == 0)
		return cmd_space_op(argc, argv, expect);
	if (strcmp(argv[0], "sync") == 0)
		return cmd_sync(argc, argv, expect);
	if (strcmp(argv[0], "stats") == 0)
		return cmd_stats(argc, argv, expect);
	if (strcmp(argv[0], "raw") == 0)
		return cmd_raw(argc, argv, expect);
	for (size_t i = 0; i < ARRAY_SIZE(subvol_cmds); i++)
		if (strcmp(argv[0], subvol_cmds[i].name) == 0)
			return subvol_cmds[i].fn(argc, argv, expect);
	usage_fail("unknown command");
	return 2;
}
