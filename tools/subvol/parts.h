/*
 * The parts of `cowfs subvolume`, `cowfs snapshot` and `cowfs property` (docs/CLI.md says what
 * each does; fuse/cowfs_ioctl.h's COWFS_IOC_SUBVOL_* comments are the contract):
 *
 *   subvolume.c  `cowfs subvolume SUBCOMMAND`: the table of subcommands, prefixes, help
 *   query.c      opening a path on a mount that has subvolumes; the INFO, SPACE and SYNC calls
 *   errors.c     messages that name what to do for each ioctl's errors
 *   path.c       DIR/NAME split into the directory the ioctl goes to and the name; ids
 *   format.c     text and JSON of a subvolume, the list, show and space (no I/O but a FILE)
 *   create.c     subvolume create
 *   snapshot.c   snapshot and subvolume snapshot
 *   delete.c     subvolume delete
 *   list.c       subvolume list
 *   show.c       subvolume show
 *   default.c    subvolume set-default and get-default
 *   sync.c       subvolume sync
 *   space.c      subvolume space
 *   property.c   property get/set/list (the ro property)
 *
 * Every subcommand gets argv from its own name on, argv[0] being "subvolume NAME" (what its
 * messages start with after "cowfs "), and returns the program's exit status (tools/prog.h).
 */
#ifndef COWFS_TOOLS_SUBVOL_PARTS_H
#define COWFS_TOOLS_SUBVOL_PARTS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuse/cowfs_ioctl.h"
#include "tools/dump/out.h"
#include "tools/share/mount_ioctl.h"

#define SV_TOP_LEVEL_ID 5ull   /* the top level subvolume (fuse/cowfs_ioctl.h) */

/* ---- subcommands ----------------------------------------------------------------------- */

/* A subcommand of a command family (subvolume, property). */
struct sv_subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
};

/*
 * Run the subcommand argv[1] names (whole, or a prefix of one only) of `family` with argv from
 * it on, its argv[0] "FAMILY NAME"; -h/--help/help and mistakes answered with usage.
 */
int sv_dispatch(const char *family, const struct sv_subcommand *table, size_t count,
		void (*usage)(FILE *f), int argc, char **argv);

int sv_cmd_create(int argc, char **argv);
int sv_cmd_snapshot(int argc, char **argv);
int sv_cmd_delete(int argc, char **argv);
int sv_cmd_list(int argc, char **argv);
int sv_cmd_show(int argc, char **argv);
int sv_cmd_set_default(int argc, char **argv);
int sv_cmd_get_default(int argc, char **argv);
int sv_cmd_sync(int argc, char **argv);
int sv_cmd_space(int argc, char **argv);

/* ---- query.c ------------------------------------------------------------------------------ */

/* A path open on a cowfs mount with subvolumes, and the subvolume it is in. */
struct sv_path {
	struct cowfs_file f;
	struct cowfs_ioc_subvol_info info;   /* SUBVOL_INFO with id 0 on it */
};

/*
 * Open `path` (a directory if `dir`) and ask for its subvolume, which also tells whether the
 * mount has subvolumes at all: 0, or a negative errno with nothing left open (see errors.c:
 * COWFS_ERR_NOT_COWFS, SV_ERR_NO_SUPPORT).
 */
int sv_open(const char *path, bool dir, struct sv_path *p);
void sv_close(struct sv_path *p);

/* Whether the open path is its subvolume's root directory (what snapshots and ro apply to). */
bool sv_is_root(const struct sv_path *p);
/* sv_open, then SV_ERR_NOT_SUBVOL unless the path is a subvolume's root directory. */
int sv_open_root(const char *path, struct sv_path *p);
/* The same, with the message for a failure ("cowfs CMD: PATH: ...") said on stderr. */
int sv_open_root_said(const char *cmd, const char *path, struct sv_path *p);

/* SUBVOL_INFO of `id` (0: fd's own), or with `next` the first id >= `id`: 0 or -errno. */
int sv_info(int fd, uint64_t id, bool next, struct cowfs_ioc_subvol_info *out);
/*
 * Call fn on every subvolume of the mount, deleting ones included, in id order (INFO_NEXT from
 * 0, then from id + 1 until ENOENT). Returns 0, fn's first nonzero return, or -errno.
 */
int sv_each(int fd, int (*fn)(const struct cowfs_ioc_subvol_info *info, void *ctx), void *ctx);
/* SUBVOL_SPACE of `count` ids (1..COWFS_SUBVOL_SPACE_MAX) together. */
int sv_space(int fd, const uint64_t *ids, size_t count, bool referenced,
	     struct cowfs_ioc_subvol_space *out);
/*
 * SUBVOL_CREATE or SNAP_CREATE (request) of `name` in the directory open at dirfd; `source`
 * and `flags` for a snapshot. *id: the new subvolume's.
 */
int sv_create_in(int dirfd, unsigned long request, const char *name, uint64_t source,
		 uint32_t flags, uint64_t *id);
/* SUBVOL_SYNC: wait until `id` (0: every deleting one) is dropped; *count waited for. */
int sv_sync(int fd, uint64_t id, uint32_t *count);

/* ---- errors.c ----------------------------------------------------------------------------- */

/* What failed, for a message that says what to do about it. */
enum sv_op {
	SV_OP_OPEN,        /* opening the path, the support probe */
	SV_OP_CREATE,
	SV_OP_SNAPSHOT,
	SV_OP_DELETE,
	SV_OP_INFO,
	SV_OP_SET_FLAGS,
	SV_OP_DEFAULT,
	SV_OP_SYNC,
	SV_OP_SPACE,
};

/* The errors of this command's own checks: outside errno's range. */
#define SV_ERR_NO_SUPPORT   (-EOPNOTSUPP)  /* a cowfs mount whose server has no subvolumes */
#define SV_ERR_NOT_SUBVOL   (-100001)      /* not a subvolume's root directory */
#define SV_ERR_NOT_DELETING (-100002)      /* subvolume sync ID of one not being deleted */

#define SV_MSG_MAX 256

/* "strerror: what to do" for err from op, into buf. */
const char *sv_strerror(enum sv_op op, int err, char buf[SV_MSG_MAX]);
/* "cowfs CMD: PATH: message" on stderr (CMD is argv[0], "subvolume delete" and such). */
void sv_perror(const char *cmd, const char *path, enum sv_op op, int err);

/* ---- path.c ------------------------------------------------------------------------------- */

/*
 * Split `path` into the directory that holds its last component (dir, "." when there is none,
 * "/" for a name under the root) and that component (name), trailing slashes ignored. -EINVAL
 * for an empty name, "." or ".." (resolve those first: sv_resolve), -ENAMETOOLONG for a name
 * longer than COWFS_SUBVOL_NAME_MAX or a dir longer than dir_size - 1.
 */
int sv_split(const char *path, char *dir, size_t dir_size,
	     char name[COWFS_SUBVOL_NAME_MAX + 1]);
/* The same, for a path whose last component may be "." or "..": realpath's first. */
int sv_split_resolved(const char *path, char *dir, size_t dir_size,
		      char name[COWFS_SUBVOL_NAME_MAX + 1]);
/* "dir/name" into buf (dir "." gives just name): -ENAMETOOLONG if it does not fit. */
int sv_join(const char *dir, const char *name, char *buf, size_t size);

/* A subvolume id on the command line: decimal digits only, not 0. */
bool sv_parse_id(const char *s, uint64_t *id);

/* ---- format.c ----------------------------------------------------------------------------- */

#define SV_UUID_STR 37
#define SV_FLAGS_STR 48
#define SV_TIME_STR 40

/* "1b4e28ba-2fa1-11d2-883f-0016d3cca427", or "-" for all zeros (none). */
const char *sv_uuid_format(const uint8_t uuid[16], char buf[SV_UUID_STR]);
/* "ro, default", "deleting, 42% done", "-" for none. */
const char *sv_flags_format(const struct cowfs_ioc_subvol_info *info, char buf[SV_FLAGS_STR]);
/* The path as printed: "<top level>" for id 5, "<deleted>" for a deleting one, else path. */
const char *sv_path_shown(const struct cowfs_ioc_subvol_info *info);
/* Local time "2026-12-02 17:43:56 +0000". */
const char *sv_time_format(int64_t sec, char buf[SV_TIME_STR]);

/* A subvolume named by id and path (show's snapshots, space's set). */
struct sv_ref {
	uint64_t id;
	char *path;      /* as sv_path_shown gives it */
};

/* subvolume list: the header, then one line per subvolume (space NULL: not known, "-"). */
void sv_list_header(FILE *f);
void sv_list_line(FILE *f, const struct cowfs_ioc_subvol_info *info,
		  const struct cowfs_ioc_subvol_space *space, bool raw);
/* One subvolume as a JSON object (key: its name in the enclosing object, or NULL). */
void sv_json_subvol(struct out *o, const char *key, const struct cowfs_ioc_subvol_info *info,
		    const struct cowfs_ioc_subvol_space *space);

/* subvolume show: everything about one subvolume. */
struct sv_show {
	const struct cowfs_ioc_subvol_info *info;
	const char *source_path;                      /* NULL: none, or no longer there */
	const struct cowfs_ioc_subvol_space *space;   /* NULL: not known */
	const struct sv_ref *snapshots;               /* subvolumes whose source is this one */
	size_t snapshot_count;
};
void sv_show_text(FILE *f, const struct sv_show *s, bool raw);
void sv_show_json(struct out *o, const struct sv_show *s);

/* subvolume space: the figures of a set of subvolumes together. */
struct sv_space_report {
	const struct sv_ref *subvols;
	size_t count;
	const struct cowfs_ioc_subvol_space *space;
	bool referenced;      /* space->referenced was asked for */
};
void sv_space_text(FILE *f, const struct sv_space_report *r, bool raw);
void sv_space_json(struct out *o, const struct sv_space_report *r);

#endif
