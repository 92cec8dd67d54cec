/*
 * What the dump calls cowfs's numbers: key types, trees, file extent types and extent flags by
 * name, fsids as UUIDs, and keys written with their type's name. A number without a name
 * stays a number, so an image from a newer cowfs still dumps.
 */
#ifndef COWFS_TOOLS_DUMP_NAMES_H
#define COWFS_TOOLS_DUMP_NAMES_H

#include <stdint.h>

#include "fs/btree/key.h"
#include "tools/dump/out.h"

/* NULL when the number has no name. */
const char *key_type_name(uint8_t type);
const char *tree_name(uint64_t id);
const char *file_extent_type_name(uint8_t type);

/* 8-4-4-4-12 lowercase hex and a NUL. */
void format_uuid(const uint8_t u[16], char out[37]);

/* Text `(objectid TYPE offset)`; JSON {objectid, type, type_id, offset}. */
void out_key(struct out *o, const char *key, const struct bt_key *k);
/* Text `DATA|TREE_BLOCK` (unknown bits in hex, `none` for 0); JSON an array of names. */
void out_extent_flags(struct out *o, const char *key, uint64_t flags);

#endif
