/*
 * TEMPORARY (i13-fuse): weak stand-ins for cowfs_subvol_drop_step and cowfs_subvol_space, which
 * other branches of issue 13 write, so that this branch links until they land on main. Delete
 * this file once they are there (the real definitions take precedence anyway).
 */
#include <errno.h>

#include "fs/super/subvol.h"

#define WEAK __attribute__((weak))

WEAK int cowfs_subvol_drop_step(struct cowfs_trans *tx, uint64_t id, unsigned budget, bool *done)
{
	(void)tx; (void)id; (void)budget;
	*done = false;
	return -ENOSYS;
}

WEAK int cowfs_subvol_space(struct cowfs *fs, const uint64_t *ids, size_t n, bool referenced,
			    struct subvol_space *out)
{
	(void)fs; (void)ids; (void)n; (void)referenced; (void)out;
	return -ENOSYS;
}
