/*
 * slab_double_free.c - kfree() of the same kmalloc(64) object twice.
 *
 * With slub_debug=FZPU SLUB reports "BUG kmalloc-64 (Not tainted): Object
 * already free" with the object's tracks and bytes, then "FIX kmalloc-64:
 * Object at 0x... not freed".  Without debugging, the object is still the
 * head of the cpu freelist and 6.1's naive check in set_freepointer()
 * ("kernel BUG at mm/slub.c:379!") catches it: the BUG kills the task, so
 * the run ends there with status 134.  With debugging the second free is
 * refused, the allocator stays consistent, and this returns 0.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	char *p = kmalloc(64, GFP_KERNEL), *q, *r;

	if (!p)
		return 1;
	kfree(p);
	kfree(p);			/* BUG: double free */
	q = kmalloc(64, GFP_KERNEL);
	r = kmalloc(64, GFP_KERNEL);
	if (q == r)
		return 2;		/* the freelist would be corrupt */
	kfree(q);
	kfree(r);
	return mmemu_check() ? 3 : 0;
}
