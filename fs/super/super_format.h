/*
 * On-disk superblock and root items. docs/FORMAT.md sections 4 and 5 describe the same bytes.
 */
#ifndef COWFS_SUPER_FORMAT_H
#define COWFS_SUPER_FORMAT_H

#include <stdint.h>

#include "fs/lib/compiler.h"

#define COWFS_MAGIC "_COWFS_1"       /* 8 bytes, no terminator on disk */
#define COWFS_FORMAT_VERSION 1
#define COWFS_SUPER_SIZE 4096u
#define COWFS_SUPER_OFFSET (64ull << 10)
/* Copies: the primary and mirrors, each used only if it fits in the image. */
#define COWFS_SUPER_MIRRORS 3
static const uint64_t cowfs_super_offsets[COWFS_SUPER_MIRRORS] = {
	64ull << 10, 64ull << 20, 256ull << 30,
};
/* Bytes kept out of allocation around each copy (the largest node size, so node-aligned
 * allocations never straddle it), and below the primary. */
#define COWFS_SUPER_GUARD (64ull << 10)
#define COWFS_DATA_START (1ull << 20)
#define COWFS_LABEL_SIZE 256

/* Tree ids. */
#define ROOT_TREE_ID    1ull
#define EXTENT_TREE_ID  2ull
#define FS_TREE_ID      5ull    /* the default subvolume */
#define CSUM_TREE_ID    7ull    /* data checksums (fs/extent/csum_tree.h) */

/* incompat_flags bits. Unknown bits make an image unmountable. */
#define COWFS_INCOMPAT_FSYNC_LOG 0x1ull   /* the superblock may point at an fsync log */
#define COWFS_INCOMPAT_BIG_XATTR 0x2ull   /* fs trees may hold xattr value pieces (XATTR_VALUE) */
#define COWFS_INCOMPAT_SUBVOLS   0x4ull   /* subvolumes: fs trees >= 256, subvolume entries */
#define COWFS_INCOMPAT_KNOWN     (COWFS_INCOMPAT_FSYNC_LOG | COWFS_INCOMPAT_BIG_XATTR |        \
				  COWFS_INCOMPAT_SUBVOLS)

/*
 * An entry of the fsync log (fs/super/log.c): at a sector boundary, `len` bytes (a multiple of
 * the sector size), the header then `payload_len` bytes for the layer above (fs/inode), zero
 * padded. Entry 0 is at the superblock's log_start; entry n+1 at entry n's `next`.
 */
#define COWFS_LOG_MAGIC "COWFSLG1"
struct log_entry_header {
	uint64_t csum;              /* XXH3-64 of bytes [8, len) */
	char magic[8];              /* COWFS_LOG_MAGIC */
	uint8_t fsid[16];
	uint64_t log_gen;           /* the superblock's */
	uint64_t nonce;             /* the superblock's */
	uint64_t seq;               /* 0, 1, 2, ... */
	uint64_t next;              /* where entry seq + 1 goes */
	uint32_t len;
	uint32_t payload_len;       /* 0: a jump to `next`, nothing to replay */
	uint8_t reserved[8];
} __packed;
STATIC_ASSERT(sizeof(struct log_entry_header) == 80, "log entry header is 80 bytes");

/* Key type of a root item in the root tree: (tree id, ROOT_ITEM_KEY, 0). */
#define ROOT_ITEM_KEY 132

struct cowfs_super {
	uint64_t csum;              /* XXH3-64 of bytes [8, 4096) */
	char magic[8];              /* COWFS_MAGIC */
	uint64_t bytenr;            /* where this copy lives */
	uint8_t fsid[16];
	uint32_t version;           /* COWFS_FORMAT_VERSION */
	uint32_t sectorsize;
	uint32_t nodesize;
	uint32_t reserved0;
	uint64_t compat_flags;      /* unknown bits: ignore */
	uint64_t ro_compat_flags;   /* unknown bits: mount read-only only */
	uint64_t incompat_flags;    /* unknown bits: refuse */
	uint64_t total_bytes;
	uint64_t bytes_used;
	uint64_t generation;        /* last committed transaction */
	uint64_t root_tree_bytenr;
	uint64_t root_tree_gen;
	uint8_t root_tree_level;
	uint8_t reserved1[7];
	char label[COWFS_LABEL_SIZE]; /* NUL-padded */
	/* The fsync log (fs/super/log.c), with COWFS_INCOMPAT_FSYNC_LOG; 0 when there is none. */
	uint64_t log_start;         /* where entry 0 of the chain goes */
	uint64_t log_gen;           /* generation whose commit started the chain */
	uint64_t log_nonce;         /* random, new with every chain: entries carry it */
	uint32_t log_chunk_len;     /* bytes held for the chain at log_start */
	uint32_t reserved2;
	uint8_t reserved[4096 - 128 - COWFS_LABEL_SIZE - 32];
} __packed;
STATIC_ASSERT(sizeof(struct cowfs_super) == 4096, "superblock is 4096 bytes");

struct root_item {
	uint64_t bytenr;            /* the tree's root node */
	uint64_t generation;        /* its header generation */
	uint8_t level;
	uint8_t reserved0[7];
	uint64_t flags;             /* none defined yet */
	uint64_t reserved[4];
} __packed;
STATIC_ASSERT(sizeof(struct root_item) == 64, "root item is 64 bytes");

/*
 * Subvolumes (docs/FORMAT.md 5.2; fs/super/subvol.c is their one decoder). Every subvolume
 * but the top level (FS_TREE_ID) is a fs tree with an id in [SUBVOL_FIRST_ID, SUBVOL_LAST_ID];
 * ids are never reused (the registry remembers the last one handed out). Root-tree items:
 *   (id, SUBVOL_ITEM_KEY, 0)            struct subvol_item: flags, origin, drop progress. The
 *                                       top level has one only once a flag was set on it.
 *   (parent, ROOT_REF_KEY, id)          struct root_ref + name: subvolume `id` is entry `name`
 *   (id, ROOT_BACKREF_KEY, parent)      (DIR_INDEX `index`) of directory `dir` in `parent`;
 *                                       the same payload under both keys. None while deleting.
 *   (SUBVOL_REGISTRY_OBJECTID, SUBVOL_REGISTRY_KEY, 0)   struct subvol_registry
 *   (SUBVOL_DELETING_OBJECTID, SUBVOL_DELETING_KEY, id)  no payload: `id` is being dropped
 * In the parent's fs tree the subvolume's DIR_ITEM and DIR_INDEX entries have child = id and
 * type DT_DIR | DIR_ENTRY_SUBVOL (fs/inode/inode_format.h); there is no INODE_REF for them.
 */
#define SUBVOL_ITEM_KEY          133
#define SUBVOL_REGISTRY_KEY      134
#define ROOT_BACKREF_KEY         144
#define ROOT_REF_KEY             156
#define SUBVOL_DELETING_KEY      48
#define SUBVOL_REGISTRY_OBJECTID 6ull
#define SUBVOL_DELETING_OBJECTID 0xfffffffffffffffbull   /* (u64)-5 */
#define SUBVOL_FIRST_ID          256ull
#define SUBVOL_LAST_ID           (255ull + 65535ull)   /* fuse/ puts (id - 255) in 16 bits */

#define SUBVOL_ITEM_VERSION 1
#define SUBVOL_RDONLY   0x1u    /* every change is refused (EROFS) */
#define SUBVOL_DELETING 0x2u    /* unlinked; its tree is being dropped */
#define SUBVOL_FLAGS_KNOWN (SUBVOL_RDONLY | SUBVOL_DELETING)

struct subvol_item {
	uint8_t version;            /* SUBVOL_ITEM_VERSION */
	uint8_t reserved0[3];
	uint32_t flags;             /* SUBVOL_* */
	uint64_t source;            /* the subvolume it is a snapshot of; 0: made empty */
	uint64_t ctransid;          /* the transaction that made it */
	uint64_t otime_sec;         /* when */
	uint32_t otime_nsec;
	uint32_t reserved1;
	uint8_t uuid[16];
	uint8_t source_uuid[16];    /* zeros when source is 0 */
	uint64_t drop_total;        /* deleting: progress units of the whole drop (bt_drop_step) */
	uint64_t drop_done;         /* deleting: units done */
	uint8_t reserved[40];
} __packed;
STATIC_ASSERT(sizeof(struct subvol_item) == 128, "subvolume item is 128 bytes");

struct root_ref {
	uint64_t dir;               /* the directory (inode number in the parent's tree) */
	uint64_t index;             /* its DIR_INDEX offset there */
	uint16_t name_len;          /* 1..255; the name bytes follow */
} __packed;
STATIC_ASSERT(sizeof(struct root_ref) == 18, "root ref header is 18 bytes");

#define SUBVOL_REGISTRY_VERSION 1
struct subvol_registry {
	uint8_t version;            /* SUBVOL_REGISTRY_VERSION */
	uint8_t reserved0[7];
	uint64_t default_id;        /* what a mount without subvol= shows */
	uint64_t last_id;           /* the highest id ever handed out */
	uint8_t reserved[40];
} __packed;
STATIC_ASSERT(sizeof(struct subvol_registry) == 64, "subvolume registry is 64 bytes");

#endif
