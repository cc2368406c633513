/*
 * 06_page_api.c - the page allocator's calls.
 *
 * alloc_pages() returns the struct page of the first page of a block;
 * __get_free_pages() and its shorthands return the block's kernel virtual
 * address instead, so they cannot take __GFP_HIGHMEM (a HighMem page has
 * no address).  Both give 2^order pages back with the order they were
 * taken with: __free_pages() / free_pages().  alloc_pages_exact() takes a
 * size and frees the pages beyond it at once.
 */
#include <mmemu.h>

int main(void)
{
	unsigned long before = nr_free_pages();
	struct page *page = alloc_pages(GFP_KERNEL, 2);
	unsigned long addr = __get_free_pages(GFP_KERNEL, 3);
	unsigned long zeroed = get_zeroed_page(GFP_KERNEL);
	unsigned long dma = __get_dma_pages(GFP_KERNEL, 1);
	void *exact = alloc_pages_exact(5 * PAGE_SIZE, GFP_KERNEL);

	if (!page || !addr || !zeroed || !dma || !exact)
		return 1;
	pr_info("alloc_pages(GFP_KERNEL, 2)        page %p = address %p\n",
		page, page_address(page));
	pr_info("__get_free_pages(GFP_KERNEL, 3)   address %#lx = page %p\n",
		addr, virt_to_page(addr));
	pr_info("get_zeroed_page(GFP_KERNEL)       address %#lx, first word %#lx\n",
		zeroed, *(unsigned long *)zeroed);
	pr_info("__get_dma_pages(GFP_KERNEL, 1)    address %#lx, physical %#lx\n",
		dma, (unsigned long)virt_to_phys((void *)dma));
	pr_info("alloc_pages_exact(5 pages)        address %p, pfn %#lx, get_order() %d\n",
		exact, virt_to_pfn(exact), get_order(5 * PAGE_SIZE));

	if (*(unsigned long *)zeroed || virt_to_phys((void *)dma) >= (16UL << 20))
		return 2;
	free_pages_exact(exact, 5 * PAGE_SIZE);
	free_pages(dma, 1);
	free_page(zeroed);
	free_pages(addr, 3);
	__free_pages(page, 2);
	pr_info("nr_free_pages(): %lu before, %lu after giving everything back\n",
		before, nr_free_pages());
	return 0;
}
