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

unsigned long __sdk nr_free_pages(void)
{
	return hypercall1(HC_NR_FREE_PAGES, (unsigned long)-1);
}

unsigned long __sdk zone_free_pages(int zid)
{
	return hypercall1(HC_NR_FREE_PAGES, (unsigned long)zid);
}
