/* Write fault injection: see fault.h. */
#include "fs/io/fault.h"

void fault_arm_fail(struct bdev_fault *f, uint64_t n)
{
	f->fail_left = n;
}

void fault_arm_cut(struct bdev_fault *f, uint64_t n)
{
	f->cut_left = n;
	f->cut_armed = n != 0;
	if (n == 0)
		f->power_cut = true;
}

void fault_disarm(struct bdev_fault *f)
{
	f->fail_left = 0;
	f->cut_left = 0;
	f->cut_armed = false;
}

/* The power goes right after the n-th write is queued, so a flush that follows it is lost. */
static void count_toward_cut(struct bdev_fault *f)
{
	if (!f->cut_armed || --f->cut_left != 0)
		return;
	f->cut_armed = false;
	f->power_cut = true;
}

enum fault_verdict fault_write_verdict(struct bdev_fault *f)
{
	enum fault_verdict v = FAULT_WRITE;

	if (f->power_cut)
		return FAULT_DROP;
	if (f->fail_left != 0 && --f->fail_left == 0)
		v = FAULT_FAIL;
	count_toward_cut(f);
	return v;
}

bool fault_power_is_cut(const struct bdev_fault *f)
{
	return f->power_cut;
}
