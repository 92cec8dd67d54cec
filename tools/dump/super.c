/* The superblock in use, and the state of every copy position on the device (parts.h). */
#include "tools/dump/parts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/io/blockdev.h"
#include "fs/lib/endian.h"
#include "fs/super/super.h"
#include "tools/dump/names.h"

/* One copy position: read it, say whether it is there, sound, and of which generation. */
static void dump_copy(struct dump *d, void *buf, int i)
{
	struct out *o = d->o;
	const struct cowfs_super *c = buf;
	uint64_t off = cowfs_super_offsets[i], size = bdev_size(d->img.bd);
	bool expected = super_copy_fits(i, get_le64(&d->img.sb->total_bytes));
	const char *msg;
	int ret;

	out_obj_begin(o, NULL, "copy", FRAME_LINE);
	out_anon_u64(o, "offset", off);
	if (off + COWFS_SUPER_SIZE > size) {
		out_str(o, "state", "beyond_end");
	} else if ((ret = bdev_read(d->img.bd, off, buf, COWFS_SUPER_SIZE)) < 0) {
		out_str(o, "state", "unreadable");
		out_qstr(o, "error", strerror(-ret), strlen(strerror(-ret)));
		d->problems++;
	} else if (memcmp(c->magic, COWFS_MAGIC, 8) != 0) {
		out_str(o, "state", expected ? "missing" : "unused");
		d->problems += expected;
	} else if ((msg = super_check(c, off, size)) != NULL) {
		out_str(o, "state", "invalid");
		out_u64(o, "generation", get_le64(&c->generation));
		out_qstr(o, "problem", msg, strlen(msg));
		d->problems++;
	} else {
		out_str(o, "state", "valid");
		out_u64(o, "generation", get_le64(&c->generation));
	}
	out_obj_end(o);
}

static int dump_copies(struct dump *d)
{
	void *buf = aligned_alloc(BDEV_ALIGN, COWFS_SUPER_SIZE);

	if (!buf)
		return -ENOMEM;
	out_arr_begin(d->o, "copies", "copies");
	for (int i = 0; i < COWFS_SUPER_MIRRORS; i++)
		dump_copy(d, buf, i);
	out_arr_end(d->o);
	free(buf);
	return 0;
}

/* Only an open filesystem has read its fsync log, so only it knows what is left to replay. */
static uint64_t log_entries_to_replay(const struct cowfs *fs)
{
	return fs->log.replay_pending ? fs->log.pending_entries : 0;
}

int dump_super(struct dump *d)
{
	const struct cowfs_super *sb = d->img.sb;
	struct out *o = d->o;
	char uuid[37];
	int ret;

	format_uuid(sb->fsid, uuid);
	out_obj_begin(o, "superblock", "superblock", FRAME_BLOCK);
	out_x64(o, "csum", get_le64(&sb->csum));
	out_qstr(o, "magic", sb->magic, sizeof(sb->magic));
	out_u64(o, "bytenr", get_le64(&sb->bytenr));
	out_str(o, "fsid", uuid);
	out_u64(o, "version", get_le32(&sb->version));
	out_u64(o, "sectorsize", get_le32(&sb->sectorsize));
	out_u64(o, "nodesize", get_le32(&sb->nodesize));
	out_x64(o, "compat_flags", get_le64(&sb->compat_flags));
	out_x64(o, "ro_compat_flags", get_le64(&sb->ro_compat_flags));
	out_x64(o, "incompat_flags", get_le64(&sb->incompat_flags));
	out_u64(o, "total_bytes", get_le64(&sb->total_bytes));
	out_u64(o, "bytes_used", get_le64(&sb->bytes_used));
	out_u64(o, "generation", get_le64(&sb->generation));
	out_u64(o, "root_tree_bytenr", get_le64(&sb->root_tree_bytenr));
	out_u64(o, "root_tree_gen", get_le64(&sb->root_tree_gen));
	out_u64(o, "root_tree_level", sb->root_tree_level);
	out_qstr(o, "label", sb->label, strnlen(sb->label, sizeof(sb->label)));
	out_u64(o, "log_start", get_le64(&sb->log_start));
	out_u64(o, "log_gen", get_le64(&sb->log_gen));
	out_x64(o, "log_nonce", get_le64(&sb->log_nonce));
	out_u64(o, "log_chunk_len", get_le32(&sb->log_chunk_len));
	if (d->img.fs && !d->img.snapshot)   /* a snapshot does not read the writer's log */
		out_u64(o, "log_entries_to_replay", log_entries_to_replay(d->img.fs));
	ret = dump_copies(d);
	out_obj_end(o);
	return ret;
}
