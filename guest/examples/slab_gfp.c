/*
 * slab_gfp.c - how the GFP mask picks a kmalloc cache and its memory.
 *
 * Shows: GFP_KERNEL objects come from kmalloc-N in ZONE_Normal;
 * __GFP_DMA picks dma-kmalloc-N, whose slabs are ZONE_DMA pages;
 * __GFP_RECLAIMABLE picks kmalloc-rcl-N (counted as SReclaimable);
 * GFP_ATOMIC works from atomic context; the slab page of an object carries
 * PG_slab and points back at its cache.
 *
 * Returns 0 when every check holds, else the number of the failed check.
 */
#include <mmemu.h>
#include <mmemu/slab.h>

static struct page *head_page(const void *x)
{
	struct page *page = virt_to_page(x);

	return (page->compound_head & 1) ? (struct page *)(page->compound_head - 1) : page;
}

static const char *cache_name(const void *x)
{
	return ((struct kmem_cache *)head_page(x)->slab_cache)->name;
}

int main(void)
{
	void *n = kmalloc(300, GFP_KERNEL);
	void *d = kmalloc(300, GFP_KERNEL | __GFP_DMA);
	void *r = kmalloc(300, GFP_KERNEL | __GFP_RECLAIMABLE);
	void *a = kmalloc(300, GFP_ATOMIC);

	if (!n || !d || !r || !a)
		return 1;
	if (!test_bit(PG_slab, &head_page(n)->flags))
		return 2;
	pr_info("GFP_KERNEL -> %s, __GFP_DMA -> %s, __GFP_RECLAIMABLE -> %s\n",
		cache_name(n), cache_name(d), cache_name(r));
	if (strcmp(cache_name(n), "kmalloc-512") || strcmp(cache_name(d), "dma-kmalloc-512") ||
	    strcmp(cache_name(r), "kmalloc-rcl-512") || strcmp(cache_name(a), "kmalloc-512"))
		return 3;
	if (page_zonenum(virt_to_page(n)) != ZONE_NORMAL ||
	    page_zonenum(virt_to_page(d)) != ZONE_DMA)
		return 4;
	kfree(n);
	kfree(d);
	kfree(r);
	kfree(a);
	return mmemu_check() ? 5 : 0;
}
