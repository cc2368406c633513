/*
 * slab_bad_pointer.c - kfree() of a pointer into the middle of an object.
 *
 * SLUB reports "BUG kmalloc-64 (Not tainted): Invalid object pointer
 * 0x..." and "FIX kmalloc-64: Object at 0x... not freed"; the object itself
 * can still be freed properly.  Returns 0.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return 1;
	kfree(p + 8);			/* BUG: not the object's start */
	kfree(p);
	return mmemu_check() ? 2 : 0;
}
