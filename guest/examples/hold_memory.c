/*
 * hold_memory.c - takes memory from every allocator and keeps it.
 *
 * Shows: where each allocator's memory comes from in physical memory.  The
 * program frees nothing, so the machine after it still holds every page it
 * took, and `mmemu memmap --after guest/examples/hold_memory.c -o m.png`
 * outlines them: an order-4 block of GFP_KERNEL pages in Normal, two DMA
 * pages below 16 MiB, HighMem pages (one kmapped), on a NUMA machine eight
 * pages of the last node (alloc_pages_node), the scattered pages
 * behind a vmalloc area, a large kmalloc (a compound page from the page
 * allocator), and the slabs of kmalloc-512 and of a kmem_cache of its own.
 * Every line names the pfns it holds.
 *
 * Returns 0 when every allocation succeeds, else the number of the failed one.
 */
#include <mmemu.h>
#include <mmemu/slab.h>
#include <mmemu/vmalloc.h>

static const char *const zone_names[MAX_NR_ZONES] = {
	"DMA", "Normal", "HighMem", "Movable",
};

static void held(const char *what, struct page *page, unsigned int order)
{
	unsigned long pfn = page_to_pfn(page);

	pr_info("hold_memory: %-24s pfn %#07lx-%#07lx (%s, node %d)\n", what, pfn,
		pfn + (1UL << order) - 1, zone_names[page_zonenum(page)], page_to_nid(page));
}

struct item {
	unsigned long id;
	char payload[196];
};

int main(void)
{
	struct kmem_cache *cache;
	struct page *page;
	unsigned long addr;
	char *area, *big;
	void *mapped;
	int i;

	page = alloc_pages(GFP_KERNEL, 4);
	if (!page)
		return 1;
	held("GFP_KERNEL order 4", page, 4);

	addr = __get_dma_pages(GFP_KERNEL, 1);
	if (!addr)
		return 2;
	held("GFP_DMA order 1", virt_to_page(addr), 1);

	page = alloc_pages(GFP_HIGHUSER, 2);
	if (!page)
		return 3;
	held("GFP_HIGHUSER order 2", page, 2);
	mapped = kmap(page);		/* kept mapped: a pkmap slot holds it */
	if (!mapped)
		return 3;
	pr_info("hold_memory: %-24s pfn %#07lx at %p\n", "kmap", page_to_pfn(page), mapped);

	if (MMEMU_BOOTINFO->nr_nodes > 1) {	/* each node has its own zones */
		int nid = MMEMU_BOOTINFO->nr_nodes - 1;

		page = alloc_pages_node(nid, GFP_KERNEL, 3);
		if (!page || page_to_nid(page) != nid)
			return 8;
		held("alloc_pages_node order 3", page, 3);
	}

	area = vmalloc(256 << 10);	/* 64 pages, wherever the allocator finds them */
	if (!area)
		return 4;
	for (i = 0; i < 64; i++)
		area[i << PAGE_SHIFT] = (char)i;
	pr_info("hold_memory: %-24s pfn %#07lx-%#07lx (first and last of 64 pages at %p)\n",
		"vmalloc(256 KiB)", page_to_pfn(vmalloc_to_page(area)),
		page_to_pfn(vmalloc_to_page(area + (63 << PAGE_SHIFT))), area);

	big = kmalloc(64 << 10, GFP_KERNEL);	/* above kmalloc-8k: an order-4 page */
	if (!big)
		return 5;
	held("kmalloc(64 KiB)", virt_to_page(big), 4);

	for (i = 0; i < 100; i++) {
		char *p = kmalloc(512, GFP_KERNEL);

		if (!p)
			return 6;
		if (i == 0 || i == 99)
			held(i ? "kmalloc(512), last" : "kmalloc(512), first",
			     virt_to_page(p), 0);
	}

	cache = kmem_cache_create("hold_cache", sizeof(struct item), 0, 0, NULL);
	if (!cache)
		return 7;
	for (i = 0; i < 300; i++) {
		struct item *it = kmem_cache_alloc(cache, GFP_KERNEL);

		if (!it)
			return 7;
		it->id = i;
		if (i == 0 || i == 299)
			held(i ? "hold_cache, last" : "hold_cache, first", virt_to_page(it), 0);
	}
	pr_info("hold_memory: holding it all at exit\n");
	return 0;
}
