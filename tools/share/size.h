/*
 * Byte counts as the cowfs commands read and print them. Printed the way btrfs-progs does
 * (`btrfs filesystem du`): base 1024, two decimals, the unit glued on (0.00B, 4.00KiB,
 * 1.00MiB), so that the two tools' columns compare at a glance; or raw bytes.
 */
#ifndef COWFS_TOOLS_SHARE_SIZE_H
#define COWFS_TOOLS_SHARE_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/* Long enough for UINT64_MAX raw or in any unit. */
#define SIZE_STR_MAX 32

/* "123", "16K", "1m", "2GiB", "1T": bytes (decimal; suffixes powers of 1024). 0 or -EINVAL. */
int size_parse(const char *s, uint64_t *out);

/* `bytes` raw ("1048576") or in btrfs's human form ("1.00MiB"), into buf; returns buf. */
const char *size_format(uint64_t bytes, bool raw, char buf[SIZE_STR_MAX]);

#endif
