/*
 * slab_cpu_slab.c - kmalloc-64's kmem_cache_cpu overwritten: c->freelist
 * emptied and c->slab pointed at a struct page that is no slab.
 *
 * The next kmalloc(64) takes SLUB's slow path (___slab_alloc()), which
 * reads c->slab.  6.1 would take that page for a slab and corrupt memory;
 * mmemu stops there with a BUG in ___slab_alloc() and a note saying what
 * was overwritten ("c->slab ... is not a slab of this cache"), and the
 * task dies (134).
 */
#include <mmemu.h>
#include <mmemu/slab.h>

int main(void)
{
	struct kmem_cache *s = kmalloc_caches_table()[KMALLOC_NORMAL][6];
	void *x = kmalloc(64, GFP_KERNEL);	/* the cache has a cpu slab now */

	if (!x)
		return 1;
	s->cpu_slab->freelist = NULL;
	s->cpu_slab->slab = pfn_to_page(5);	/* a reserved page of the first MiB */
	kmalloc(64, GFP_KERNEL);
	printk("not reached\n");
	return 0;
}
