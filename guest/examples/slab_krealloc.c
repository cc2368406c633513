/*
 * slab_krealloc.c - a tour of krealloc().
 *
 * Shows: growing within ksize() keeps the same object (kmalloc(100) is a
 * kmalloc-128 object, so krealloc to 120 is in place); growing beyond moves
 * the contents to a new object and frees the old one; shrinking never
 * moves; krealloc(NULL, n) is kmalloc(n); krealloc(p, 0) frees p and
 * returns ZERO_SIZE_PTR.
 *
 * Returns 0 when every check holds, else the number of the failed check.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	char *p = krealloc(NULL, 100, GFP_KERNEL), *q;
	int i;

	if (!p || ksize(p) != 128)
		return 1;
	for (i = 0; i < 100; i++)
		p[i] = (char)i;
	if (krealloc(p, 120, GFP_KERNEL) != p)
		return 2;			/* fits in ksize(): in place */
	q = krealloc(p, 1000, GFP_KERNEL);
	if (!q || q == p || ksize(q) != 1024)
		return 3;
	for (i = 0; i < 100; i++)
		if (q[i] != (char)i)
			return 4;		/* contents moved along */
	if (krealloc(q, 10, GFP_KERNEL) != q)
		return 5;			/* shrinking stays in place */
	if (krealloc(q, 0, GFP_KERNEL) != ZERO_SIZE_PTR)
		return 6;
	pr_info("krealloc: in place while it fits, moved (contents kept) when not\n");
	return mmemu_check() ? 7 : 0;
}
