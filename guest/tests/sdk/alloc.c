/*
 * alloc.c - SDK self-test: the page allocator calls and the mem_map helpers.
 *
 * Run by tests/test_build.py on a bare CPU whose fake host returns the
 * struct page of pfn 0x123 from every allocation; it checks the hypercall
 * numbers and arguments.  Exits with page_count + 10 * PageHighMem.
 */
#include <mmemu.h>

int main(void)
{
	struct page *page = alloc_pages(GFP_KERNEL, 3);
	unsigned long addr;

	if (page != pfn_to_page(0x123) || page_to_pfn(page) != 0x123)
		return 100;
	if (page_address(page) != (void *)0xc0123000 || virt_to_page(0xc0123000) != page)
		return 101;
	__free_pages(page, 3);
	addr = get_zeroed_page(GFP_ATOMIC);
	free_pages(addr, 0);
	free_page(0);				/* NULL: no hypercall, as in Linux */
	alloc_pages_node(1, GFP_HIGHUSER, 0);
	__get_dma_pages(GFP_KERNEL, 2);
	return page_count(page) + 10 * PageHighMem(page);
}
