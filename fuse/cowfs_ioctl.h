/*
 * The ioctls a cowfs mount answers (docs/IOCTL.md): the interface between the FUSE server and
 * the cowfs tool. FUSE forwards only restricted ioctls to a server: fixed-size structs whose
 * size the command number encodes, no pointers inside. Fields are in host byte order; every
 * struct starts with a version its user sets (in) or the server fills in (out).
 */
#ifndef COWFS_FUSE_COWFS_IOCTL_H
#define COWFS_FUSE_COWFS_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

#define COWFS_IOC_MAGIC 0xCF

/* COWFS_IOC_STATUS: the state of the mounted filesystem, on any file or directory of it. */
#define COWFS_STATUS_VERSION 1
#define COWFS_STATUS_READ_ONLY 0x1u   /* mounted read-only, or read-only since an abort */
#define COWFS_STATUS_ABORTED   0x2u   /* a transaction was aborted: error and message say why */
#define COWFS_STATUS_MSG_MAX 256

struct cowfs_ioc_status {
	uint32_t version;        /* out: COWFS_STATUS_VERSION */
	uint32_t flags;          /* COWFS_STATUS_* */
	uint64_t generation;     /* of the last commit */
	uint64_t commits;        /* since mount */
	uint64_t flushes;        /* background write-backs since mount */
	uint64_t aborted_transid;
	int32_t error;           /* the aborted transaction's first error (negative errno) */
	uint32_t reserved;
	char message[COWFS_STATUS_MSG_MAX];   /* cause and location, as reported; NUL-terminated */
};

#define COWFS_IOC_STATUS _IOR(COWFS_IOC_MAGIC, 1, struct cowfs_ioc_status)

#endif
