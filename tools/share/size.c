/* Byte counts read with K/M/G/T suffixes and printed as btrfs-progs prints them (size.h). */
#include "tools/share/size.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int size_parse(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;
	int shift = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u || (end[1] && strcasecmp(end + 1, "iB")))
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/*
 * btrfs-progs' pretty_size: divide by 1024 while the value is at least 1024, then print the
 * last value before the final division over the unit, in float as it does, so that rounding
 * (2.01MiB, not 2.00MiB or 2.02MiB) agrees digit for digit.
 */
const char *size_format(uint64_t bytes, bool raw, char buf[SIZE_STR_MAX])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	uint64_t v = bytes, last = bytes, base = 1;
	int divs = 0;

	if (raw) {
		snprintf(buf, SIZE_STR_MAX, "%" PRIu64, bytes);
		return buf;
	}
	while (v >= 1024) {
		last = v;
		v /= 1024;
		divs++;
	}
	if (divs)
		base = 1024;
	snprintf(buf, SIZE_STR_MAX, "%.2f%s", (double)((float)last / (float)base), units[divs]);
	return buf;
}
