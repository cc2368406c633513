/*
 * slab_freepointer.c - the free pointer inside a free kmalloc-64 object
 * overwritten, then the cache used.
 *
 * x is freed: it heads the cpu freelist, and the word at x + s->offset
 * (the middle of the object, as 6.1 places it) holds the next free object.
 * That word is set to 0x00000123.  kmalloc() hands out x and makes 0x123 the next
 * free object; the kmalloc() after it reads 0x123's own free pointer, at
 * 0x123 + s->offset, on SLUB's lockless fast path and oopses: "BUG: kernel
 * NULL pointer dereference, address: 00000143", the task dies (139).
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	char *x = kmalloc(64, GFP_KERNEL);
	struct kmem_cache *s = kmalloc_caches_table()[KMALLOC_NORMAL][6];

	if (!x)
		return 1;
	kfree(x);
	*(void **)(x + s->offset) = (void *)0x123;	/* use after free: the free pointer */
	x = kmalloc(64, GFP_KERNEL);		/* x again; 0x123 is next */
	printk("got %px again\n", x);
	kmalloc(64, GFP_KERNEL);		/* oops in kmalloc() */
	printk("not reached\n");
	return 0;
}
