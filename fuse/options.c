/*
 * The mount command line: IMAGE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s], and the -o options.
 *
 * Options are cowfs's own (ro, commit=, cache_size=, readahead=, noreflink, the atime ones), libfuse's
 * (handed to it as they are), or what mount(8), mount.fuse3 and fstab pass along that means
 * nothing here (ignored). Anything else is refused by name, before anything is opened. fsname and subtype are not
 * the user's to choose: fsname is always the image's absolute path, so that /proc/mounts
 * and df name the image, and subtype is cowfs (the type shows as fuse.cowfs).
 */
#include "fuse/internal.h"
#include "fuse/server.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/lib/compiler.h"

#define PROG "cowfs"

/* The smallest block cache worth running with: a few paths of the largest nodes. */
#define CACHE_MIN_BYTES (1u << 20)

enum opt_kind {
	OPT_IGNORED,        /* for mount(8) or the helper; nothing to do */
	OPT_FUSE,           /* libfuse's: passed on as it is */
	OPT_RO,
	OPT_RW,
	OPT_COMMIT,
	OPT_CACHE_SIZE,
	OPT_READAHEAD,
	OPT_NOREFLINK,
	OPT_DEFAULT_PERMISSIONS,
	OPT_ALLOW_OTHERS,   /* allow_other, allow_root */
	OPT_FSNAME,
	OPT_SUBTYPE,
	/* Under FUSE the kernel updates no atime: the server does, by these. */
	OPT_ATIME,          /* clears noatime */
	OPT_NOATIME,
	OPT_RELATIME,       /* relatime, nostrictatime */
	OPT_STRICTATIME,    /* strictatime, norelatime */
	OPT_DIRATIME,
	OPT_NODIRATIME,
	OPT_REMOUNT,
	OPT_MAX_READ,       /* libfuse's too, but the server must repeat it (op_init) */
	OPT_SUBVOL,         /* subvol=PATH: the mount's root subvolume */
	OPT_SUBVOLID,       /* subvolid=ID */
	OPT_USER_SUBVOL_RM, /* user_subvol_rm_allowed */
};

/* A name ending in '=' takes a value. */
static const struct mount_opt {
	const char *name;
	enum opt_kind kind;
} mount_opts[] = {
	{ "ro", OPT_RO },
	{ "rw", OPT_RW },
	{ "commit=", OPT_COMMIT },
	{ "cache_size=", OPT_CACHE_SIZE },
	{ "readahead=", OPT_READAHEAD },
	{ "noreflink", OPT_NOREFLINK },
	{ "default_permissions", OPT_DEFAULT_PERMISSIONS },
	{ "fsname=", OPT_FSNAME },
	{ "subtype=", OPT_SUBTYPE },
	{ "remount", OPT_REMOUNT },
	{ "allow_other", OPT_ALLOW_OTHERS },
	{ "allow_root", OPT_ALLOW_OTHERS },
	{ "auto_unmount", OPT_FUSE },
	{ "max_read=", OPT_MAX_READ },
	{ "subvol=", OPT_SUBVOL },
	{ "subvolid=", OPT_SUBVOLID },
	{ "user_subvol_rm_allowed", OPT_USER_SUBVOL_RM },
	{ "dev", OPT_FUSE },
	{ "nodev", OPT_FUSE },
	{ "suid", OPT_FUSE },
	{ "nosuid", OPT_FUSE },
	{ "exec", OPT_FUSE },
	{ "noexec", OPT_FUSE },
	{ "sync", OPT_FUSE },
	{ "async", OPT_FUSE },
	{ "dirsync", OPT_FUSE },
	{ "context=", OPT_FUSE },
	{ "fscontext=", OPT_FUSE },
	{ "defcontext=", OPT_FUSE },
	{ "rootcontext=", OPT_FUSE },
	{ "atime", OPT_ATIME },
	{ "noatime", OPT_NOATIME },
	{ "relatime", OPT_RELATIME },
	{ "nostrictatime", OPT_RELATIME },
	{ "strictatime", OPT_STRICTATIME },
	{ "norelatime", OPT_STRICTATIME },
	{ "diratime", OPT_DIRATIME },
	{ "nodiratime", OPT_NODIRATIME },
	/* fstab and mount(8). nonempty was libfuse 2's: mounting over files is always allowed. */
	{ "defaults", OPT_IGNORED },
	{ "auto", OPT_IGNORED },
	{ "noauto", OPT_IGNORED },
	{ "user", OPT_IGNORED },
	{ "nouser", OPT_IGNORED },
	{ "users", OPT_IGNORED },
	{ "owner", OPT_IGNORED },
	{ "group", OPT_IGNORED },
	{ "_netdev", OPT_IGNORED },
	{ "nofail", OPT_IGNORED },
	{ "nonempty", OPT_IGNORED },
	{ "comment=", OPT_IGNORED },
};

void cowfs_mount_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s IMAGE MOUNTPOINT [-o OPTION[,OPTION...]] [-f] [-d] [-s]\n"
		"   or: mount -t fuse.cowfs IMAGE MOUNTPOINT [-o OPTION[,OPTION...]]\n"
		"\n"
		"Mount the cowfs image IMAGE on MOUNTPOINT; unmount with umount or fusermount3 -u.\n"
		"The server runs in the background once the mount works.\n"
		"\n"
		"  -f   stay in the foreground\n"
		"  -d   print every FUSE request (implies -f)\n"
		"  -s   serve requests with one thread\n"
		"  -o   options:\n"
		"       ro                    read-only\n"
		"       remount               change a live mount (with ro, rw, commit=):\n"
		"                             what mount -o remount runs\n"
		"       commit=SECONDS        commit changes this often (default 5; 0: default)\n"
		"       cache_size=SIZE       memory bound, K/M/G suffixes (default 256M): the\n"
		"                             daemon stays under it plus 40M (README)\n"
		"       readahead=SIZE        the kernel's read-ahead on this mount (default 1M;\n"
		"                             0 leaves the kernel's own; needs root)\n"
		"       noreflink             copy_file_range (cp) copies the data instead of\n"
		"                             sharing it; explicit clones still share\n"
		"       subvol=PATH           mount the subvolume at PATH (from the top level)\n"
		"       subvolid=ID           mount subvolume ID (5: the top level); without\n"
		"                             either, the default subvolume (set-default)\n"
		"       user_subvol_rm_allowed  owners may delete their subvolumes\n"
		"       relatime              update atime at a read if it is not after mtime or\n"
		"                             ctime, or is 24 hours old (the default)\n"
		"       strictatime           update atime at every read that reaches cowfs\n"
		"       noatime               never update atime (nodiratime: not of directories)\n"
		"       default_permissions   the kernel checks permissions (and POSIX ACLs)\n"
		"       allow_other           let other users than the mounter in (implies\n"
		"                             default_permissions; so does allow_root)\n"
		"       also passed to the kernel: auto_unmount max_read=N dev nodev\n"
		"       suid nosuid exec noexec sync async dirsync context=...\n",
		prog);
}

static const struct mount_opt *find_opt(const char *opt)
{
	for (size_t i = 0; i < ARRAY_SIZE(mount_opts); i++) {
		const char *name = mount_opts[i].name;
		size_t len = strlen(name);

		if (name[len - 1] == '=' ? strncmp(opt, name, len) == 0 : strcmp(opt, name) == 0)
			return &mount_opts[i];
	}
	return NULL;
}

/* A decimal number of seconds, as milliseconds that fit in an int. */
static int parse_commit(const char *val, int *ms)
{
	char *end;
	unsigned long sec;

	errno = 0;
	sec = strtoul(val, &end, 10);
	if (errno || end == val || *end || val[0] == '-' || sec > INT_MAX / 1000)
		return -1;
	*ms = (int)sec * 1000;
	return 0;
}

/* A byte count with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size(const char *val, size_t *bytes)
{
	char *end;
	unsigned long long n;
	unsigned shift = 0;

	errno = 0;
	n = strtoull(val, &end, 10);
	if (errno || end == val || val[0] == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end || n > (SIZE_MAX >> shift))
		return -1;
	*bytes = (size_t)n << shift;
	return 0;
}

static int bad_value(const char *opt, const char *why)
{
	fprintf(stderr, PROG ": bad mount option '%s': %s\n", opt, why);
	return -1;
}

static int out_of_memory(void)
{
	fprintf(stderr, PROG ": out of memory\n");
	return -1;
}

static int pass_to_fuse(struct mount_config *c, const char *opt)
{
	return fuse_opt_add_opt(&c->fuse_opts, opt) < 0 ? out_of_memory() : 0;
}

/* max_read=N: the kernel clamps it to at least a page; above the largest request it means
 * nothing. A plain number, as the kernel takes it. */
static int parse_max_read(const char *val, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 10);
	if (errno || end == val || *end || v < 4096 || v > SERVER_MAX_WRITE)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* subvolid=: 5 (the top level) or a subvolume id, in decimal. */
static int parse_subvolid(const char *val, uint64_t *id)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno || end == val || *end || val[0] == '-' ||
	    (v != FS_TREE_ID && (v < SUBVOL_FIRST_ID || v > SUBVOL_LAST_ID)))
		return -EINVAL;
	*id = v;
	return 0;
}

/* One option of -o. */
static int apply_opt(struct mount_config *c, const char *opt)
{
	const struct mount_opt *o = find_opt(opt);
	const char *eq = strchr(opt, '=');
	const char *val = eq ? eq + 1 : NULL;

	if (!o && strncmp(opt, "x-", 2) == 0)
		return 0;   /* fstab's x-* options belong to other programs */
	if (!o) {
		/* Judged once all are read: a remount ignores what it cannot change (mount(8)
		 * may pass on the options the mount shows, the kernel's own among them). */
		if (!c->unknown_opt && !(c->unknown_opt = strdup(opt)))
			return out_of_memory();
		return 0;
	}
	switch (o->kind) {
	case OPT_IGNORED:
		return 0;
	case OPT_FUSE:
		return pass_to_fuse(c, opt);
	case OPT_RO:
		c->read_only = c->mode_set = true;
		return 0;
	case OPT_RW:
		c->read_only = false;
		c->mode_set = true;
		return 0;
	case OPT_COMMIT:
		if (parse_commit(val, &c->commit_interval_ms) < 0)
			return bad_value(opt, "expected a whole number of seconds");
		c->commit_set = true;
		return 0;
	case OPT_REMOUNT:
		c->remount = true;
		return 0;
	case OPT_CACHE_SIZE:
		if (parse_size(val, &c->cache_bytes) < 0)
			return bad_value(opt, "expected a size such as 64M or 1G");
		if (c->cache_bytes < CACHE_MIN_BYTES)
			return bad_value(opt, "the cache must hold at least 1M");
		return 0;
	case OPT_READAHEAD:
		if (parse_size(val, &c->readahead_bytes) < 0 || c->readahead_bytes > READAHEAD_MAX)
			return bad_value(opt, "expected a size from 0 to 64M");
		return 0;
	case OPT_MAX_READ:
		if (parse_max_read(val, &c->max_read) < 0)
			return bad_value(opt, "expected a number of bytes from 4096 to 1M");
		return pass_to_fuse(c, opt);
	case OPT_NOREFLINK:
		c->noreflink = true;
		return 0;
	case OPT_SUBVOL:
		if (!*val || strlen(val) >= PATH_MAX)
			return bad_value(opt, "expected a path from the top level's root");
		free(c->subvol_path);
		if (!(c->subvol_path = strdup(val)))
			return out_of_memory();
		return 0;
	case OPT_SUBVOLID:
		if (parse_subvolid(val, &c->subvol_id) < 0)
			return bad_value(opt, "expected 5 or a subvolume id from 256 to 65790");
		return 0;
	case OPT_USER_SUBVOL_RM:
		c->user_subvol_rm_allowed = true;
		return 0;
	case OPT_DEFAULT_PERMISSIONS:
		if (c->default_permissions)
			return 0;
		c->default_permissions = true;
		return pass_to_fuse(c, opt);
	case OPT_ALLOW_OTHERS:
		/* The daemon checks no permissions of its own: letting other users in without
		 * the kernel's checks would let every one of them read and write every file. */
		if (pass_to_fuse(c, opt) < 0)
			return -1;
		return apply_opt(c, "default_permissions");
	case OPT_FSNAME:
		return bad_value(opt, "the source is always the image's path");
	case OPT_SUBTYPE:
		return strcmp(val, "cowfs") == 0 ? 0 : bad_value(opt, "the subtype is cowfs");
	case OPT_ATIME:
		if (c->atime_mode == INODE_ATIME_NOATIME)
			c->atime_mode = INODE_ATIME_RELATIME;
		return 0;
	case OPT_NOATIME:
		c->atime_mode = INODE_ATIME_NOATIME;
		return 0;
	case OPT_RELATIME:
		c->atime_mode = INODE_ATIME_RELATIME;
		return 0;
	case OPT_STRICTATIME:
		c->atime_mode = INODE_ATIME_STRICT;
		return 0;
	case OPT_DIRATIME:
	case OPT_NODIRATIME:
		c->nodiratime = o->kind == OPT_NODIRATIME;
		return 0;
	}
	return -1;
}

/* A -o argument: options separated by commas. */
static int apply_opts(struct mount_config *c, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	int ret = 0;

	if (!copy)
		return out_of_memory();
	for (char *opt = strtok_r(copy, ",", &save); opt && ret == 0;
	     opt = strtok_r(NULL, ",", &save))
		ret = apply_opt(c, opt);
	free(copy);
	return ret;
}

/* The absolute path of an existing file; the mount point must be a directory. */
static char *resolve(const char *path, const char *what, bool dir)
{
	struct stat st;
	char *abs = realpath(path, NULL);

	if (!abs || stat(abs, &st) < 0) {
		fprintf(stderr, PROG ": %s %s: %s\n", what, path, strerror(errno));
		free(abs);
		return NULL;
	}
	if (dir && !S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": %s %s: not a directory\n", what, path);
		free(abs);
		return NULL;
	}
	return abs;
}

/* What libfuse gets: the forced fsname and subtype, ro, then the options passed on. */
static int finish_fuse_opts(struct mount_config *c)
{
	char *passed = c->fuse_opts, *fsname = NULL;
	/* Escaped: a comma in the image's path must not end the option. */
	int ret = fuse_opt_add_opt_escaped(&fsname, c->image);

	c->fuse_opts = NULL;
	/* noatime also goes to the kernel, for /proc/mounts (libfuse knows no other atime
	 * flag; the kernel would do nothing with them under FUSE anyway). */
	if (ret == 0 && asprintf(&c->fuse_opts, "fsname=%s,subtype=cowfs%s%s%s%s", fsname,
				 c->read_only ? ",ro" : "",
				 c->atime_mode == INODE_ATIME_NOATIME ? ",noatime" : "",
				 passed ? "," : "", passed ? passed : "") < 0) {
		c->fuse_opts = NULL;
		ret = -1;
	}
	free(fsname);
	free(passed);
	return ret < 0 ? out_of_memory() : 0;
}

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Returns 0, 1 if help was asked for (and printed), or -1 after printing what is wrong. */
int config_parse(struct mount_config *c, int argc, char **argv)
{
	int opt;

	memset(c, 0, sizeof(*c));
	c->readahead_bytes = SERVER_READAHEAD;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:fdsh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			if (apply_opts(c, optarg) < 0)
				goto fail;
			break;
		case 'f':
			c->foreground = true;
			break;
		case 'd':
			c->debug = c->foreground = true;
			break;
		case 's':
			c->single_thread = true;
			break;
		case 'h':
			cowfs_mount_usage(stdout, PROG);
			config_free(c);
			return 1;
		default:
			if (optopt)
				fprintf(stderr, PROG ": option '-%c' %s\n", optopt,
					optopt == 'o' ? "needs an argument" : "is unknown");
			else
				fprintf(stderr, PROG ": unknown option '%s'\n", argv[optind - 1]);
			fprintf(stderr, "Run '" PROG " --help' for the mount options.\n");
			goto fail;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, PROG ": %s\n", argc - optind < 2 ?
			"expected IMAGE MOUNTPOINT (or a command: see " PROG " help)" :
			"too many arguments: expected IMAGE MOUNTPOINT");
		goto fail;
	}
	if (c->unknown_opt && !c->remount) {
		fprintf(stderr, PROG ": unknown mount option '%s' (see " PROG " --help)\n",
			c->unknown_opt);
		goto fail;
	}
	c->image = resolve(argv[optind], "image", false);
	c->mountpoint = c->image ? resolve(argv[optind + 1], "mount point", true) : NULL;
	if (!c->mountpoint || finish_fuse_opts(c) < 0)
		goto fail;
	return 0;
fail:
	config_free(c);
	return -1;
}

void config_free(struct mount_config *c)
{
	free(c->image);
	free(c->mountpoint);
	free(c->fuse_opts);
	free(c->unknown_opt);
	free(c->subvol_path);
	memset(c, 0, sizeof(*c));
}
