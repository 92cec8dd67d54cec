/*
 * Little-endian accessors for on-disk fields.
 *
 * On-disk structures are packed and little-endian; fields may sit at any byte offset, so every
 * access goes through memcpy (one unaligned load or store on x86-64 and arm64) and a byte-order
 * conversion (a no-op on little-endian hosts).
 */
#ifndef COWFS_LIB_ENDIAN_H
#define COWFS_LIB_ENDIAN_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t get_le16(const void *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint32_t get_le32(const void *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t get_le64(const void *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline void put_le16(void *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void put_le32(void *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void put_le64(void *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

#endif
