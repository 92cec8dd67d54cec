/*
 * An in-place sort of the slots: qsort may allocate a copy of the array (glibc's merge sort
 * does, up to a share of the machine's memory), which would double the bound the tool states.
 * Quicksort with a three-way partition (runs of equal keys, such as many all-zero chunks, are
 * done at once), insertion sort for short ranges, and heapsort when the recursion goes too deep,
 * so O(n log n) always and O(log n) stack.
 */
#include "tools/dedupe/parts.h"

#define INSERTION_MAX 16

static void swap_slots(union dd_slot *a, union dd_slot *b)
{
	union dd_slot t = *a;

	*a = *b;
	*b = t;
}

static void insertion_sort(union dd_slot *v, size_t n, dd_slot_cmp cmp)
{
	for (size_t i = 1; i < n; i++) {
		union dd_slot x = v[i];
		size_t j = i;
		while (j > 0 && cmp(&x, &v[j - 1]) < 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

static void sift_down(union dd_slot *v, size_t root, size_t n, dd_slot_cmp cmp)
{
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && cmp(&v[child], &v[child + 1]) < 0)
			child++;
		if (cmp(&v[root], &v[child]) >= 0)
			return;
		swap_slots(&v[root], &v[child]);
		root = child;
	}
}

static void heap_sort(union dd_slot *v, size_t n, dd_slot_cmp cmp)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n, cmp);
	for (size_t end = n; end-- > 1;) {
		swap_slots(&v[0], &v[end]);
		sift_down(v, 0, end, cmp);
	}
}

static size_t median_of_three(union dd_slot *v, size_t n, dd_slot_cmp cmp)
{
	size_t a = 0, b = n / 2, c = n - 1;

	if (cmp(&v[a], &v[b]) > 0) {
		size_t t = a;
		a = b;
		b = t;
	}
	if (cmp(&v[b], &v[c]) > 0)
		b = cmp(&v[a], &v[c]) > 0 ? a : c;
	return b;
}

/* After it: [0, *lt) < pivot, [*lt, *gt) == pivot, [*gt, n) > pivot. */
static void partition3(union dd_slot *v, size_t n, dd_slot_cmp cmp, size_t *lt, size_t *gt)
{
	size_t l = 0, i = 0, g = n;
	union dd_slot pivot = v[median_of_three(v, n, cmp)];

	while (i < g) {
		int c = cmp(&v[i], &pivot);
		if (c < 0)
			swap_slots(&v[l++], &v[i++]);
		else if (c > 0)
			swap_slots(&v[i], &v[--g]);
		else
			i++;
	}
	*lt = l;
	*gt = g;
}

static void intro_sort(union dd_slot *v, size_t n, dd_slot_cmp cmp, unsigned depth)
{
	while (n > INSERTION_MAX) {
		size_t lt, gt;
		if (depth-- == 0) {
			heap_sort(v, n, cmp);
			return;
		}
		partition3(v, n, cmp, &lt, &gt);
		/* Recurse into the smaller side, loop on the larger: the stack stays O(log n). */
		if (lt < n - gt) {
			intro_sort(v, lt, cmp, depth);
			v += gt;
			n -= gt;
		} else {
			intro_sort(v + gt, n - gt, cmp, depth);
			n = lt;
		}
	}
	insertion_sort(v, n, cmp);
}

void dd_sort(union dd_slot *v, size_t n, dd_slot_cmp cmp)
{
	unsigned depth = 0;

	for (size_t m = n; m > 1; m >>= 1)
		depth += 2;
	intro_sort(v, n, cmp, depth);
}
