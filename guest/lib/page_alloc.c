/*
 * page_alloc.c - the page allocator's entry points (mm/page_alloc.c); each
 * is one hypercall, and the buddy allocator itself runs on the host.
 * The host attributes the call to the first caller outside the SDK.
 */
#include <mmemu.h>

struct page * __sdk alloc_pages(gfp_t gfp, unsigned int order)
{
	return (struct page *)hypercall3(HC_ALLOC_PAGES, gfp, order,
					 (unsigned long)NUMA_NO_NODE);
}

struct page * __sdk alloc_pages_node(int nid, gfp_t gfp, unsigned int order)
{
	return (struct page *)hypercall3(HC_ALLOC_PAGES, gfp, order,
					 (unsigned long)nid);
}

void __sdk __free_pages(struct page *page, unsigned int order)
{
	hypercall2(HC_FREE_PAGES, (unsigned long)page, order);
}

unsigned long __sdk __get_free_pages(gfp_t gfp, unsigned int order)
{
	return hypercall2(HC_GET_FREE_PAGES, gfp, order);
}

unsigned long __sdk get_zeroed_page(gfp_t gfp)
{
	return __get_free_page(gfp | __GFP_ZERO);
}

void __sdk free_pages(unsigned long addr, unsigned int order)
{
	if (addr != 0)
		hypercall2(HC_FREE_PAGES_ADDR, addr, order);
}

/*
 * alloc_pages_exact(): the host splits the block (make_alloc_exact()) and
 * frees its tail; free_pages_exact() is free_page() over every page.
 */
void * __sdk alloc_pages_exact_nid(int nid, size_t size, gfp_t gfp)
{
	/* No compound page (it could not be split) and no HighMem (no address). */
	if (WARN_ON_ONCE(gfp & (__GFP_COMP | __GFP_HIGHMEM)))
		gfp &= ~(__GFP_COMP | __GFP_HIGHMEM);
	return (void *)hypercall3(HC_ALLOC_PAGES_EXACT, size, gfp, (unsigned long)nid);
}

void * __sdk alloc_pages_exact(size_t size, gfp_t gfp)
{
	return alloc_pages_exact_nid(NUMA_NO_NODE, size, gfp);
}

void __sdk free_pages_exact(void *virt, size_t size)
{
	unsigned long addr = (unsigned long)virt;
	unsigned long end = addr + PAGE_ALIGN(size);

	while (addr < end) {
		free_page(addr);
		addr += PAGE_SIZE;
	}
}
