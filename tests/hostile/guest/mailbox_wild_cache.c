/*
 * mailbox_wild_cache.c - SLUB's slow path called with a struct kmem_cache *
 * that points at no cache (a word of the first page of kernel data).
 *
 * The hypercall's argument is guest memory like any other: mmemu looks the
 * pointer up among its live caches, reports "mmemu: kmem_cache_alloc: ...
 * is not a live struct kmem_cache" and returns NULL; the program goes on.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	void *p = (void *)hypercall2(HC_SLAB_ALLOC, PAGE_OFFSET + 0x7000, GFP_KERNEL);

	printk("__slab_alloc(wild cache) = %px\n", p);
	return p == NULL ? 0 : 1;
}
