/*
 * slab_freepointer_debug.c - the same overwritten free pointer, on a cache
 * with slub_debug (run with debug.slub: FZPU).
 *
 * A debug cache takes every allocation through the slow path, whose checks
 * find the damage before anything follows it: SLUB's own report, "BUG
 * kmalloc-64 (...): Freepointer corrupt" (or the poison it overwrote), the
 * object's bytes, and the FIX line; the program goes on.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	char *x = kmalloc(64, GFP_KERNEL);
	struct kmem_cache *s = kmalloc_caches_table()[KMALLOC_NORMAL][6];
	void *y;

	if (!x)
		return 1;
	kfree(x);
	*(void **)(x + s->offset) = (void *)0x123;	/* use after free: the free pointer */
	y = kmalloc(64, GFP_KERNEL);
	printk("after: %px\n", y);
	return 0;
}
