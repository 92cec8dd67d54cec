/* Superblock copies: validation, choosing among them, writing them. */
#include "fs/super/super.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/btree/btree.h"
#include "fs/lib/csum.h"
#include "fs/lib/endian.h"

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

const char *super_check(const struct cowfs_super *sb, uint64_t bytenr, uint64_t device_size)
{
	uint32_t ss = get_le32(&sb->sectorsize), ns = get_le32(&sb->nodesize);

	if (memcmp(sb->magic, COWFS_MAGIC, 8))
		return "no cowfs magic";
	if (get_le64(&sb->csum) != cowfs_csum((const char *)sb + 8, COWFS_SUPER_SIZE - 8))
		return "checksum mismatch";
	if (get_le64(&sb->bytenr) != bytenr)
		return "copy belongs at another address";
	if (get_le32(&sb->version) != COWFS_FORMAT_VERSION)
		return "unsupported format version";
	if (!is_pow2(ss) || ss < 512 || ss > 65536 || !bt_nodesize_valid(ns) || ns < ss)
		return "invalid sector or node size";
	if (get_le64(&sb->total_bytes) > device_size || get_le64(&sb->total_bytes) < COWFS_DATA_START)
		return "filesystem size does not fit the image";
	if (get_le64(&sb->generation) == 0 || get_le64(&sb->root_tree_bytenr) == 0 ||
	    get_le64(&sb->root_tree_gen) > get_le64(&sb->generation) ||
	    sb->root_tree_level >= BT_MAX_LEVEL)
		return "invalid root tree pointer";
	return NULL;
}

int super_read_best(struct blockdev *bd, struct cowfs_super *out, super_note_fn note, void *arg)
{
	uint64_t size = bdev_size(bd), best_gen = 0;
	struct cowfs_super *sb = aligned_alloc(BDEV_ALIGN, COWFS_SUPER_SIZE);
	bool magic_seen = false;
	int best = -1, ret = 0;
	uint64_t gens[COWFS_SUPER_MIRRORS] = { 0 };

	if (!sb)
		return -ENOMEM;
	for (int i = 0; i < COWFS_SUPER_MIRRORS; i++) {
		uint64_t off = cowfs_super_offsets[i];
		if (off + COWFS_SUPER_SIZE > size)
			break;
		ret = bdev_read(bd, off, sb, COWFS_SUPER_SIZE);
		if (ret < 0)
			goto out;
		if (memcmp(sb->magic, COWFS_MAGIC, 8) == 0)
			magic_seen = true;
		else if (i > 0)
			continue;  /* a mirror position the filesystem never used (a smaller image) */
		const char *msg = super_check(sb, off, size);
		if (msg) {
			if (note && magic_seen)
				note(arg, off, msg);
			continue;
		}
		gens[i] = get_le64(&sb->generation);
		if (gens[i] > best_gen) {
			best_gen = gens[i];
			best = i;
			memcpy(out, sb, sizeof(*out));
		}
	}
	if (best < 0) {
		ret = magic_seen ? -EUCLEAN : -EINVAL;
		goto out;
	}
	for (int i = 0; i < COWFS_SUPER_MIRRORS && note; i++) {
		if (gens[i] && gens[i] != best_gen) {
			char msg[96];
			snprintf(msg, sizeof(msg), "copy has generation %llu, using generation %llu",
				 (unsigned long long)gens[i], (unsigned long long)best_gen);
			note(arg, cowfs_super_offsets[i], msg);
		}
	}
	if (get_le64(&out->incompat_flags) & ~COWFS_INCOMPAT_KNOWN)
		ret = -EOPNOTSUPP;
out:
	free(sb);
	return ret;
}

int super_write_all(struct blockdev *bd, const struct cowfs_super *sb)
{
	uint64_t total = get_le64(&sb->total_bytes);
	struct bdev_io io[COWFS_SUPER_MIRRORS];
	char *buf = aligned_alloc(BDEV_ALIGN, COWFS_SUPER_SIZE * COWFS_SUPER_MIRRORS);
	size_t n = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < COWFS_SUPER_MIRRORS; i++) {
		if (!super_copy_fits(i, total))
			break;
		struct cowfs_super *c = (struct cowfs_super *)(buf + n * COWFS_SUPER_SIZE);
		memcpy(c, sb, sizeof(*c));
		put_le64(&c->bytenr, cowfs_super_offsets[i]);
		put_le64(&c->csum, cowfs_csum((char *)c + 8, COWFS_SUPER_SIZE - 8));
		io[n] = (struct bdev_io){ .off = cowfs_super_offsets[i], .buf = c,
					  .len = COWFS_SUPER_SIZE };
		n++;
	}
	ret = bdev_write_batch(bd, io, n);
	free(buf);
	return ret;
}
