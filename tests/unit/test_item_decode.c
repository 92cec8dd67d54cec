/*
 * The decoders of on-disk items shared by the runtime, fsck and dump: file extent items
 * (fs/extent/file_extent.h), root items (fs/super/root_item.h), the name arrays
 * (fs/inode/dir_entry.h) and xattr entries, inline and spilled (fs/inode/xattr_entry.h). Each accepts the items
 * cowfs writes and refuses every kind of malformed one; then the same through the layers that
 * use them: fs/inode's file extent map reporting its two messages, the B+tree's item hook
 * refusing an item whose reference cannot be read, and a malformed root item refused by
 * cowfs_tree_open and reported by the checker.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/extent/file_extent.h"
#include "fs/inode/dir_entry.h"
#include "fs/inode/fmap.h"
#include "fs/inode/xattr_entry.h"
#include "fs/lib/endian.h"
#include "fs/super/root_item.h"
#include "tests/support/fixture.h"
#include "tests/support/fsfix.h"
#include "tests/support/ifix.h"

#define SS 4096u

/* ---- file extent items ---------------------------------------------------------------- */

static struct file_extent_item regular(uint64_t disk, uint64_t disk_len, uint64_t offset,
				       uint64_t num)
{
	struct file_extent_item fi = { .type = FILE_EXTENT_REG };

	put_le64(&fi.generation, 7);
	put_le64(&fi.ram_bytes, disk_len);
	put_le64(&fi.disk_bytenr, disk);
	put_le64(&fi.disk_num_bytes, disk_len);
	put_le64(&fi.offset, offset);
	put_le64(&fi.num_bytes, num);
	return fi;
}

START_TEST(file_extent_good_items)
{
	struct file_extent_item fi = regular(1 << 20, 65536, 8192, 16384);
	struct file_extent fe;

	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), 0);
	ck_assert_uint_eq(fe.generation, 7);
	ck_assert_uint_eq(fe.ram_bytes, 65536);
	ck_assert_uint_eq(fe.type, FILE_EXTENT_REG);
	ck_assert_uint_eq(fe.disk_bytenr, 1 << 20);
	ck_assert_uint_eq(fe.disk_num_bytes, 65536);
	ck_assert_uint_eq(fe.offset, 8192);
	ck_assert_uint_eq(fe.num_bytes, 16384);
	ck_assert(file_extent_refers(&fe));
	ck_assert_int_eq(file_extent_check_range(&fe, 40960, SS), 0);
	/* The last sectors of the extent exactly. */
	fi = regular(1 << 20, 65536, 49152, 16384);
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), 0);
	ck_assert_int_eq(file_extent_check_range(&fe, 0, SS), 0);

	/* Preallocated, and a hole: a hole references nothing and lies in no extent. */
	fi = regular(1 << 20, 65536, 0, 65536);
	fi.type = FILE_EXTENT_PREALLOC;
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), 0);
	ck_assert_uint_eq(fe.type, FILE_EXTENT_PREALLOC);
	ck_assert(file_extent_refers(&fe));
	fi = regular(0, 0, 0, 1 << 20);
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), 0);
	ck_assert(!file_extent_refers(&fe));
	ck_assert_int_eq(file_extent_check_range(&fe, 0, SS), 0);

	/* Inline: the header, then the data. */
	uint8_t buf[FILE_EXTENT_INLINE_HEADER + 5] = { 0 };
	put_le64(buf + 8, 5);
	memcpy(buf + FILE_EXTENT_INLINE_HEADER, "hello", 5);
	ck_assert_int_eq(file_extent_decode(buf, sizeof(buf), &fe), 0);
	ck_assert_uint_eq(fe.type, FILE_EXTENT_INLINE);
	ck_assert_uint_eq(fe.inline_len, 5);
	ck_assert_ptr_eq(fe.inline_data, buf + FILE_EXTENT_INLINE_HEADER);
	ck_assert_uint_eq(fe.ram_bytes, 5);
	ck_assert(!file_extent_refers(&fe));
	ck_assert_int_eq(file_extent_decode(buf, FILE_EXTENT_INLINE_HEADER, &fe), 0);
	ck_assert_uint_eq(fe.inline_len, 0);
	/* An inline item maps no range of a regular file. */
	ck_assert_int_eq(file_extent_check_range(&fe, 0, SS), -EUCLEAN);
}
END_TEST

START_TEST(file_extent_malformed_items)
{
	struct file_extent_item fi = regular(1 << 20, 65536, 0, 65536);
	struct file_extent fe;
	uint8_t big[sizeof(fi) + 1] = { 0 };

	/* Too short for the header; a regular item of any size but 56. */
	ck_assert_int_eq(file_extent_decode(&fi, 0, &fe), -EUCLEAN);
	ck_assert_int_eq(file_extent_decode(&fi, FILE_EXTENT_INLINE_HEADER - 1, &fe), -EUCLEAN);
	ck_assert_int_eq(file_extent_decode(&fi, FILE_EXTENT_INLINE_HEADER, &fe), -EUCLEAN);
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi) - 1, &fe), -EUCLEAN);
	memcpy(big, &fi, sizeof(fi));
	ck_assert_int_eq(file_extent_decode(big, sizeof(big), &fe), -EUCLEAN);
	/* Unknown type, any compression, a reserved byte. */
	fi.type = FILE_EXTENT_PREALLOC + 1;
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), -EUCLEAN);
	fi = regular(1 << 20, 65536, 0, 65536);
	fi.compression = 1;
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), -EUCLEAN);
	fi = regular(1 << 20, 65536, 0, 65536);
	fi.reserved[5] = 1;
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), -EUCLEAN);
	/* The same header rules for an inline item. */
	uint8_t in[FILE_EXTENT_INLINE_HEADER + 3] = { 0 };
	in[17] = 1;
	ck_assert_int_eq(file_extent_decode(in, sizeof(in), &fe), -EUCLEAN);
	in[17] = 0;
	in[18] = 1;
	ck_assert_int_eq(file_extent_decode(in, sizeof(in), &fe), -EUCLEAN);
	/* A reference to an extent of no length, or one past the end of the address space. */
	fi = regular(1 << 20, 0, 0, 4096);
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), -EUCLEAN);
	fi = regular(UINT64_MAX - 4095, 8192, 0, 4096);
	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), -EUCLEAN);
}
END_TEST

static int range_of(uint64_t disk, uint64_t disk_len, uint64_t offset, uint64_t num,
		    uint64_t file_offset)
{
	struct file_extent_item fi = regular(disk, disk_len, offset, num);
	struct file_extent fe;

	ck_assert_int_eq(file_extent_decode(&fi, sizeof(fi), &fe), 0);
	return file_extent_check_range(&fe, file_offset, SS);
}

/* Well-formed items (their references count) that map no valid range of a file. */
START_TEST(file_extent_ranges_out_of_bounds)
{
	ck_assert_int_eq(range_of(1 << 20, 65536, 0, 0, 0), -EUCLEAN);          /* empty */
	ck_assert_int_eq(range_of(1 << 20, 65536, 0, 4095, 0), -EUCLEAN);       /* part sector */
	ck_assert_int_eq(range_of(1 << 20, 65536, 0, 4096, 512), -EUCLEAN);     /* file offset */
	ck_assert_int_eq(range_of(1 << 20, 65536, 512, 4096, 0), -EUCLEAN);     /* extent offset */
	ck_assert_int_eq(range_of(0, 0, 512, 4096, 0), -EUCLEAN);               /* ... of a hole */
	ck_assert_int_eq(range_of(1 << 20, 65536, 0, 8192, UINT64_MAX - 4095), -EUCLEAN);
	ck_assert_int_eq(range_of(1 << 20, 65536, 69632, 4096, 0), -EUCLEAN);   /* past the end */
	ck_assert_int_eq(range_of(1 << 20, 65536, 61440, 8192, 0), -EUCLEAN);   /* runs past it */
	ck_assert_int_eq(range_of(1 << 20, 65536, 4096, UINT64_MAX - 4095, 0), -EUCLEAN);
	ck_assert_int_eq(range_of(1 << 20, 65536, 61440, 4096, 0), 0);
}
END_TEST

START_TEST(file_extent_target_reads_the_reference)
{
	struct file_extent_item fi = regular(1 << 20, 65536, 4096, 4096);
	struct bt_key k = { 300, EXTENT_DATA_KEY, 0 }, other = { 300, 1, 0 };
	uint64_t start = 0, len = 0;

	ck_assert_int_eq(file_extent_target(&k, &fi, sizeof(fi), &start, &len), 1);
	ck_assert_uint_eq(start, 1 << 20);
	ck_assert_uint_eq(len, 65536);
	/* Not a file extent item: whatever its bytes. */
	ck_assert_int_eq(file_extent_target(&other, &fi, 3, &start, &len), 0);
	/* A hole and an inline item reference nothing. */
	fi = regular(0, 0, 0, 4096);
	ck_assert_int_eq(file_extent_target(&k, &fi, sizeof(fi), &start, &len), 0);
	fi.type = FILE_EXTENT_INLINE;
	ck_assert_int_eq(file_extent_target(&k, &fi, 30, &start, &len), 0);
	/* Out of bounds still references its extent; malformed does not decode. */
	fi = regular(1 << 20, 65536, 0, 1);
	ck_assert_int_eq(file_extent_target(&k, &fi, sizeof(fi), &start, &len), 1);
	fi.compression = 2;
	ck_assert_int_eq(file_extent_target(&k, &fi, sizeof(fi), &start, &len), -EUCLEAN);
}
END_TEST

/* fs/inode's map of a file says what is wrong with its items, in its own words. */
START_TEST(file_extent_items_through_fmap)
{
	struct ifix f;
	struct fmap_seg seg;
	uint64_t start, len, ino;

	ifix_setup(&f, "decode-fmap", 64ull << 20, 4096);
	ino = ifix_mk(&f, INODE_ROOT_INO, "victim", S_IFREG | 0644);
	struct cowfs_trans *ct = cowfs_trans_begin(f.x.fs, ALLOC_NORMAL);
	struct bt_trans *tx = &ct->bt;
	ck_assert_int_eq(extent_alloc_data(&f.x.fs->ext, tx, 65536, 65536, 0, &start, &len), 0);
	/* Well-formed (the hook counts its reference) but running past its extent. */
	struct file_extent_item fi = regular(start, len, 4096, len);
	fi.type = FILE_EXTENT_PREALLOC;
	struct bt_key k = { ino, EXTENT_DATA_KEY, 0 };
	ck_assert_int_eq(bt_insert(tx, &f.x.fs->fs_root.t, &k, &fi, sizeof(fi)), 0);
	/* An inline item in a regular file. */
	uint8_t in[FILE_EXTENT_INLINE_HEADER + 4] = { 0 };
	struct bt_key ik = { ino, EXTENT_DATA_KEY, 1 << 20 };
	ck_assert_int_eq(bt_insert(tx, &f.x.fs->fs_root.t, &ik, in, sizeof(in)), 0);
	ck_assert_int_eq(fmap_lookup(&f.it, ino, 0, 4096, &seg), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(f.x.last_report, "file extent item out of bounds"));
	/* The report names the block: the fs tree's leaf the item lives in. */
	char where[64];
	snprintf(where, sizeof(where), "fs tree 5 leaf %llu (level 0) inode",
		 (unsigned long long)f.x.fs->fs_root.t.root);
	ck_assert_msg(strstr(f.x.last_report, where), "%s", f.x.last_report);
	ck_assert_int_eq(fmap_lookup(&f.it, ino, 1 << 20, (1 << 20) + 4096, &seg), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(f.x.last_report, "file extent item of unknown form"));
	/* The hook refuses an item whose reference it cannot read, which fails the transaction:
	 * every later update returns the error. */
	fi.compression = 1;
	struct bt_key bk = { ino, EXTENT_DATA_KEY, 2 << 20 };
	ck_assert_int_eq(bt_insert(tx, &f.x.fs->fs_root.t, &bk, &fi, sizeof(fi)), -EUCLEAN);
	ck_assert_msg(strstr(f.x.last_report, "(level 0) item (") &&
		      strstr(f.x.last_report, "malformed file extent item"), "%s", f.x.last_report);
	bk.offset = 3 << 20;
	ck_assert_int_eq(bt_insert(tx, &f.x.fs->fs_root.t, &bk, in, sizeof(in)), -EUCLEAN);
	cowfs_trans_end(ct, -EUCLEAN);   /* poisoned: aborted */
	/* None of this reaches the disk. */
	ifix_crash_reopen(&f);
	ifix_teardown(&f);
}
END_TEST

/* ---- root items --------------------------------------------------------------------- */

/* Every report, one a line, for tests that look for one among several. */
struct report_log {
	char text[8192];
	size_t len;
};

static void log_report(void *arg, uint64_t bytenr, const char *msg)
{
	struct report_log *l = arg;
	int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%llu: %s\n",
			 (unsigned long long)bytenr, msg);

	if (n > 0 && l->len + (size_t)n < sizeof(l->text))
		l->len += (size_t)n;
}

static struct root_item root_item_of(uint64_t bytenr, uint64_t gen, uint8_t level)
{
	struct root_item ri = { 0 };

	put_le64(&ri.bytenr, bytenr);
	put_le64(&ri.generation, gen);
	ri.level = level;
	return ri;
}

/* An array of {dir_entry, name}: two good entries, then whatever `tail` adds. */
static uint32_t dir_array(uint8_t *buf, const char *n1, const char *n2)
{
	uint32_t off = 0;
	const char *names[2] = { n1, n2 };

	for (int i = 0; i < 2; i++) {
		struct dir_entry *d = (void *)(buf + off);
		size_t n = strlen(names[i]);
		put_le64(&d->child, 257 + i);
		d->type = 8;
		put_le64(&d->transid, 7);
		put_le16(&d->name_len, (uint16_t)n);
		memcpy(buf + off + sizeof(*d), names[i], n);
		off += (uint32_t)(sizeof(*d) + n);
	}
	return off;
}

START_TEST(dir_entries_good_and_malformed)
{
	uint8_t buf[1024];
	struct dir_entry_view e;
	const char *why = NULL;
	uint32_t len = dir_array(buf, "a", "bcd"), off = 0;

	ck_assert_int_eq(dir_entry_next(buf, len, &off, &e, &why), 1);
	ck_assert_uint_eq(e.child, 257);
	ck_assert_uint_eq(e.type, 8);
	ck_assert_uint_eq(e.transid, 7);
	ck_assert_uint_eq(e.name_len, 1);
	ck_assert_int_eq(memcmp(e.name, "a", 1), 0);
	ck_assert_uint_eq(e.off, 0);
	ck_assert_uint_eq(e.size, sizeof(struct dir_entry) + 1);
	ck_assert_int_eq(dir_entry_next(buf, len, &off, &e, &why), 1);
	ck_assert_uint_eq(e.child, 258);
	ck_assert_int_eq(memcmp(e.name, "bcd", 3), 0);
	ck_assert_int_eq(dir_entry_next(buf, len, &off, &e, &why), 0);
	/* A header cut short. */
	off = sizeof(struct dir_entry) + 1;
	ck_assert_int_eq(dir_entry_next(buf, off + 5, &off, &e, &why), -EUCLEAN);
	ck_assert_str_eq(why, "truncated");
	/* A name past the item, an empty one, one longer than a name may be. */
	off = 0;
	ck_assert_int_eq(dir_entry_next(buf, sizeof(struct dir_entry), &off, &e, &why), -EUCLEAN);
	ck_assert_str_eq(why, "bad name length");
	struct dir_entry *d = (void *)buf;
	put_le16(&d->name_len, 0);
	ck_assert_int_eq(dir_entry_next(buf, len, &off, &e, &why), -EUCLEAN);
	put_le16(&d->name_len, INODE_NAME_MAX + 1);
	ck_assert_int_eq(dir_entry_next(buf, sizeof(buf), &off, &e, &why), -EUCLEAN);
	ck_assert_uint_eq(off, 0);   /* a failure does not move */
}
END_TEST

START_TEST(inode_refs_good_and_malformed)
{
	uint8_t buf[64];
	struct inode_ref_entry *r = (void *)buf;
	struct inode_ref_view v;
	const char *why = NULL;
	uint32_t off = 0, len = (uint32_t)sizeof(*r) + 4;

	put_le64(&r->index, 9);
	put_le16(&r->name_len, 4);
	memcpy(buf + sizeof(*r), "name", 4);
	ck_assert_int_eq(inode_ref_next(buf, len, &off, &v, &why), 1);
	ck_assert_uint_eq(v.index, 9);
	ck_assert_uint_eq(v.name_len, 4);
	ck_assert_int_eq(memcmp(v.name, "name", 4), 0);
	ck_assert_uint_eq(off, len);
	ck_assert_int_eq(inode_ref_next(buf, len, &off, &v, &why), 0);
	off = 0;
	ck_assert_int_eq(inode_ref_next(buf, len - 1, &off, &v, &why), -EUCLEAN);
	ck_assert_str_eq(why, "bad name length");
	ck_assert_int_eq(inode_ref_next(buf, 5, &off, &v, &why), -EUCLEAN);
	ck_assert_str_eq(why, "truncated");
}
END_TEST

START_TEST(xattr_entries_good_and_malformed)
{
	uint8_t buf[128];
	struct xattr_ref e;
	uint32_t off = 0, len, first;

	/* An inline entry, then a spilled one: the encoders' bytes, decoded back. */
	first = xattr_entry_encode(buf, "user.a", 6, "xyz", 3);
	ck_assert_uint_eq(first, 4 + 6 + 3);
	len = first + xattr_spilled_encode(buf + first, "user.big", 8, 65536, 7 * 256);
	ck_assert_uint_eq(len, first + 4 + 8 + 12);
	ck_assert_uint_eq(get_le16(buf + first), 8 | XATTR_ENTRY_SPILLED);
	ck_assert_uint_eq(get_le16(buf + first + 2), 12);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), 1);
	ck_assert(!e.spilled);
	ck_assert_uint_eq(e.name_len, 6);
	ck_assert_uint_eq(e.value_len, 3);
	ck_assert_int_eq(memcmp(e.value, "xyz", 3), 0);
	ck_assert_uint_eq(e.at, 0);
	ck_assert_uint_eq(e.size, first);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), 1);
	ck_assert(e.spilled);
	ck_assert_int_eq(memcmp(e.name, "user.big", 8), 0);
	ck_assert_uint_eq(e.value_len, 65536);
	ck_assert_uint_eq(e.value_key, 7 * 256);
	ck_assert_ptr_null(e.value);
	ck_assert_uint_eq(e.at, first);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), 0);

	/* Cut short: the header, the name, the spill record. */
	off = 0;
	ck_assert_int_eq(xattr_entry_next(buf, 3, &off, &e), -1);
	ck_assert_int_eq(xattr_entry_next(buf, 4 + 5, &off, &e), -1);
	off = first;
	ck_assert_int_eq(xattr_entry_next(buf, len - 1, &off, &e), -1);
	/* A spill record of the wrong size; a length of 0 or over 64 KiB; a key off its span. */
	uint8_t *p = buf + first;
	put_le16(p + 2, 11);
	ck_assert_int_eq(xattr_entry_next(buf, len - 1, &off, &e), -1);
	xattr_spilled_encode(p, "user.big", 8, 0, 256);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), -1);
	xattr_spilled_encode(p, "user.big", 8, 65537, 256);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), -1);
	xattr_spilled_encode(p, "user.big", 8, 20000, 257);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), -1);
	/* Name lengths: none, 256, unknown flag bits. */
	xattr_spilled_encode(p, "user.big", 8, 20000, 256);
	put_le16(p, XATTR_ENTRY_SPILLED);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), -1);
	put_le16(p, 256);
	ck_assert_int_eq(xattr_entry_next(buf, sizeof(buf), &off, &e), -1);
	put_le16(p, 8 | 0x100);
	ck_assert_int_eq(xattr_entry_next(buf, sizeof(buf), &off, &e), -1);
	ck_assert_uint_eq(off, first);   /* a failure does not move */
	put_le16(p, 8 | XATTR_ENTRY_SPILLED);
	ck_assert_int_eq(xattr_entry_next(buf, len, &off, &e), 1);
	ck_assert_uint_eq(e.value_len, 20000);
}
END_TEST

START_TEST(root_item_good_and_malformed)
{
	struct root_item ri = root_item_of(3 << 20, 42, BT_MAX_LEVEL - 1);
	uint8_t big[sizeof(ri) + 1] = { 0 };
	struct tree_root tr;

	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri), &tr), 0);
	ck_assert_uint_eq(tr.bytenr, 3 << 20);
	ck_assert_uint_eq(tr.generation, 42);
	ck_assert_uint_eq(tr.level, BT_MAX_LEVEL - 1);

	ck_assert_int_eq(root_item_decode(&ri, 0, &tr), -EUCLEAN);
	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri) - 1, &tr), -EUCLEAN);
	memcpy(big, &ri, sizeof(ri));
	ck_assert_int_eq(root_item_decode(big, sizeof(big), &tr), -EUCLEAN);
	ri = root_item_of(0, 42, 0);
	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri), &tr), -EUCLEAN);
	ri = root_item_of(3 << 20, 0, 0);
	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri), &tr), -EUCLEAN);
	ri = root_item_of(3 << 20, 42, BT_MAX_LEVEL);
	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri), &tr), -EUCLEAN);
	ri = root_item_of(3 << 20, 42, 0);
	put_le64(&ri.flags, 1);
	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri), &tr), -EUCLEAN);
	ri = root_item_of(3 << 20, 42, 0);
	ri.reserved0[6] = 1;
	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri), &tr), -EUCLEAN);
	ri = root_item_of(3 << 20, 42, 0);
	((uint8_t *)ri.reserved)[31] = 1;
	ck_assert_int_eq(root_item_decode(&ri, sizeof(ri), &tr), -EUCLEAN);
}
END_TEST

/* The root items the commit writes decode to the trees' roots; a malformed one is refused
 * by cowfs_tree_open and reported by the checker. */
START_TEST(root_items_in_a_filesystem)
{
	struct fsfix x;
	struct tree_root tr;
	struct cowfs_root *snap;

	fsfix_setup(&x, "decode-root", 64ull << 20, 4096);
	struct cowfs_trans *ct = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(cowfs_tree_create(ct, 256, &snap), 0);
	cowfs_trans_end(ct, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(root_item_lookup(&x.fs->root_tree, FS_TREE_ID, &tr), 0);
	ck_assert_uint_eq(tr.bytenr, x.fs->fs_root.t.root);
	ck_assert_uint_eq(tr.generation, x.fs->fs_root.t.root_gen);
	ck_assert_uint_eq(tr.level, x.fs->fs_root.t.level);
	ck_assert_int_eq(root_item_lookup(&x.fs->root_tree, 999, &tr), -ENOENT);

	struct bt_key k = { 256, ROOT_ITEM_KEY, 0 };
	struct root_item ri;
	uint32_t len;
	ck_assert_int_eq(bt_lookup(&x.fs->root_tree, &k, &ri, sizeof(ri), &len), 0);
	ri.reserved0[0] = 0xff;
	ct = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_update(&ct->bt, &x.fs->root_tree, &k, &ri, sizeof(ri)), 0);
	cowfs_trans_end(ct, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	ck_assert_int_eq(cowfs_close(x.fs), 0);
	struct report_log log = { .len = 0 };
	struct cowfs_opts o = fsfix_opts(&x);
	o.report = log_report;
	o.report_arg = &log;
	ck_assert_int_eq(cowfs_open(x.path, &o, &x.fs), 0);
	ck_assert_int_eq(root_item_lookup(&x.fs->root_tree, 256, &tr), -EUCLEAN);
	ck_assert_int_eq(cowfs_tree_open(x.fs, 256, &snap), -EUCLEAN);
	/* The checker says so, and cannot walk the tree: its root block looks leaked. */
	struct cowfs_check_stats st;
	ck_assert_int_eq(cowfs_check(x.fs, &st, NULL, NULL), -EUCLEAN);
	ck_assert_msg(strstr(log.text, "malformed root item for tree 256"), "%s", log.text);
	ck_assert_msg(strstr(log.text, "(leak)"), "%s", log.text);
	ck_assert_uint_eq(st.trees, 4);
	/* Put it back: clean again. */
	ri.reserved0[0] = 0;
	ct = cowfs_trans_begin(x.fs, ALLOC_NORMAL);
	ck_assert_int_eq(bt_update(&ct->bt, &x.fs->root_tree, &k, &ri, sizeof(ri)), 0);
	cowfs_trans_end(ct, 0);
	ck_assert_int_eq(cowfs_commit(x.fs), 0);
	fsfix_assert_clean(&x, NULL);
	fsfix_teardown(&x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("item_decode");
	TCase *tc = tcase_create("item_decode");

	tcase_add_test(tc, file_extent_good_items);
	tcase_add_test(tc, file_extent_malformed_items);
	tcase_add_test(tc, file_extent_ranges_out_of_bounds);
	tcase_add_test(tc, file_extent_target_reads_the_reference);
	tcase_add_test(tc, file_extent_items_through_fmap);
	tcase_add_test(tc, dir_entries_good_and_malformed);
	tcase_add_test(tc, inode_refs_good_and_malformed);
	tcase_add_test(tc, xattr_entries_good_and_malformed);
	tcase_add_test(tc, root_item_good_and_malformed);
	tcase_add_test(tc, root_items_in_a_filesystem);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
