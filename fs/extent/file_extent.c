/* Decoding and validating file extent items (file_extent.h). */
#include "fs/extent/file_extent.h"

#include <errno.h>
#include <string.h>

#include "fs/lib/endian.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* The 24-byte header every item starts with. */
static int decode_header(const struct file_extent_item *fi, struct file_extent *out)
{
	if (fi->type > FILE_EXTENT_PREALLOC || fi->compression != 0 ||
	    !all_zero(fi->reserved, sizeof(fi->reserved)))
		return -EUCLEAN;
	out->generation = get_le64(&fi->generation);
	out->ram_bytes = get_le64(&fi->ram_bytes);
	out->type = fi->type;
	return 0;
}

int file_extent_decode(const void *data, uint32_t len, struct file_extent *out)
{
	const struct file_extent_item *fi = data;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len < FILE_EXTENT_INLINE_HEADER)
		return -EUCLEAN;
	ret = decode_header(fi, out);
	if (ret < 0)
		return ret;
	if (out->type == FILE_EXTENT_INLINE) {
		out->inline_data = (const uint8_t *)data + FILE_EXTENT_INLINE_HEADER;
		out->inline_len = len - FILE_EXTENT_INLINE_HEADER;
		return 0;
	}
	if (len != sizeof(*fi))
		return -EUCLEAN;
	out->disk_bytenr = get_le64(&fi->disk_bytenr);
	out->disk_num_bytes = get_le64(&fi->disk_num_bytes);
	out->offset = get_le64(&fi->offset);
	out->num_bytes = get_le64(&fi->num_bytes);
	/* A reference names a whole extent: it must have a length and fit the address space. */
	if (out->disk_bytenr &&
	    (out->disk_num_bytes == 0 || out->disk_bytenr + out->disk_num_bytes < out->disk_bytenr))
		return -EUCLEAN;
	return 0;
}

int file_extent_check_range(const struct file_extent *fe, uint64_t file_offset,
			    uint32_t sectorsize)
{
	uint64_t n = fe->num_bytes;

	if (fe->type == FILE_EXTENT_INLINE)
		return -EUCLEAN;
	if (n == 0 || n % sectorsize || file_offset % sectorsize || fe->offset % sectorsize ||
	    file_offset + n < file_offset)
		return -EUCLEAN;
	if (fe->disk_bytenr &&
	    (fe->offset > fe->disk_num_bytes || n > fe->disk_num_bytes - fe->offset))
		return -EUCLEAN;
	return 0;
}

int file_extent_target(const struct bt_key *key, const void *data, uint32_t len,
		       uint64_t *start, uint64_t *disk_len)
{
	struct file_extent fe;
	int ret;

	if (key->type != EXTENT_DATA_KEY)
		return 0;
	ret = file_extent_decode(data, len, &fe);
	if (ret < 0 || !file_extent_refers(&fe))
		return ret;
	*start = fe.disk_bytenr;
	*disk_len = fe.disk_num_bytes;
	return 1;
}
