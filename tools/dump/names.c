/* Names of cowfs's numbers, and keys and extent flags written with them (names.h). */
#include "tools/dump/names.h"

#include <inttypes.h>
#include <stdio.h>

#include "fs/extent/csum_tree.h"
#include "fs/extent/extent_format.h"
#include "fs/inode/inode_format.h"
#include "fs/inode/xattr_format.h"
#include "fs/lib/compiler.h"
#include "fs/super/super_format.h"

const char *key_type_name(uint8_t type)
{
	switch (type) {
	case INODE_ITEM_KEY:      return "INODE_ITEM";
	case INODE_REF_KEY:       return "INODE_REF";
	case XATTR_ITEM_KEY:      return "XATTR_ITEM";
	case XATTR_VALUE_KEY:     return "XATTR_VALUE";
	case ORPHAN_ITEM_KEY:     return "ORPHAN_ITEM";
	case DIR_ITEM_KEY:        return "DIR_ITEM";
	case DIR_INDEX_KEY:       return "DIR_INDEX";
	case ROOT_ITEM_KEY:       return "ROOT_ITEM";
	case SUBVOL_ITEM_KEY:     return "SUBVOL_ITEM";
	case SUBVOL_REGISTRY_KEY: return "SUBVOL_REGISTRY";
	case ROOT_BACKREF_KEY:    return "ROOT_BACKREF";
	case ROOT_REF_KEY:        return "ROOT_REF";
	case EXTENT_ITEM_KEY:     return "EXTENT_ITEM";
	case TREE_BLOCK_REF_KEY:  return "TREE_BLOCK_REF";
	case EXTENT_DATA_REF_KEY: return "EXTENT_DATA_REF";
	case EXTENT_DATA_KEY:     return "EXTENT_DATA";
	case EXTENT_CSUM_KEY:     return "EXTENT_CSUM";
	default:                  return NULL;
	}
}

const char *tree_name(uint64_t id)
{
	switch (id) {
	case ROOT_TREE_ID:   return "root";
	case EXTENT_TREE_ID: return "extent";
	case FS_TREE_ID:     return "fs";
	case CSUM_TREE_ID:   return "csum";
	default:             return NULL;
	}
}

const char *file_extent_type_name(uint8_t type)
{
	switch (type) {
	case FILE_EXTENT_INLINE:   return "inline";
	case FILE_EXTENT_REG:      return "regular";
	case FILE_EXTENT_PREALLOC: return "prealloc";
	default:                   return NULL;
	}
}

void format_uuid(const uint8_t u[16], char out[37])
{
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", u[i]);
	}
}

void out_key(struct out *o, const char *key, const struct bt_key *k)
{
	const char *name = key_type_name(k->type);
	char num[4];

	if (!out_field_begin(o, key, false))
		return;
	snprintf(num, sizeof(num), "%u", k->type);
	if (o->json)
		fprintf(o->f, "{\"objectid\":%" PRIu64 ",\"type\":\"%s\",\"type_id\":%u,"
			"\"offset\":%" PRIu64 "}", k->objectid, name ? name : num, k->type, k->offset);
	else
		fprintf(o->f, "(%" PRIu64 " %s %" PRIu64 ")", k->objectid, name ? name : num,
			k->offset);
	out_field_end(o);
}

void out_extent_flags(struct out *o, const char *key, uint64_t flags)
{
	static const struct { uint64_t bit; const char *name; } names[] = {
		{ EXTENT_FLAG_DATA, "DATA" }, { EXTENT_FLAG_TREE_BLOCK, "TREE_BLOCK" },
	};
	const char *sep = "";

	if (!out_field_begin(o, key, false))
		return;
	fputs(o->json ? "[" : "", o->f);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (flags & names[i].bit)
			fprintf(o->f, o->json ? "%s\"%s\"" : "%s%s", sep, names[i].name);
		if (flags & names[i].bit)
			sep = o->json ? "," : "|";
		flags &= ~names[i].bit;
	}
	if (flags)
		fprintf(o->f, o->json ? "%s\"0x%" PRIx64 "\"" : "%s0x%" PRIx64, sep, flags);
	else if (!o->json && !*sep)
		fputs("none", o->f);
	fputs(o->json ? "]" : "", o->f);
	out_field_end(o);
}
