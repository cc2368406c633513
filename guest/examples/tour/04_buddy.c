/*
 * 04_buddy.c - the buddy allocator: orders, splitting, buddies.
 *
 * Free memory is kept in blocks of 2^order pages (order 0..MAX_ORDER-1,
 * 4 KiB..4 MiB), each aligned to its size.  An allocation takes the
 * smallest free block big enough and splits it, putting the halves it does
 * not need back on the lower orders' lists.  A block's "buddy" is the other
 * half of the block it was split from: pfn ^ (1 << order).  When both are
 * free again they merge.  /proc/buddyinfo counts the free blocks per order.
 *
 * The program keeps what it allocates, so `buddyinfo --after` shows it.
 */
#include <mmemu.h>

static struct page *take(gfp_t gfp, unsigned int order)
{
	struct page *page = alloc_pages(gfp, order);
	unsigned long pfn;

	if (!page)
		return NULL;
	pfn = page_to_pfn(page);
	if (pfn % (1UL << order))		/* never: blocks are aligned */
		return NULL;
	pr_info("order %u (%4lu KiB): pfn %#07lx-%#07lx, aligned %s, buddy pfn %#07lx %s\n",
		order, (PAGE_SIZE << order) >> 10, pfn, pfn + (1UL << order) - 1,
		pfn % (1UL << order) ? "no" : "yes", pfn ^ (1UL << order),
		PageBuddy(pfn_to_page(pfn ^ (1UL << order))) ? "(free)" : "(not free)");
	return page;
}

int main(void)
{
	struct page *first, *second;

	/* From ZONE_DMA, whose free memory is a few large blocks at boot. */
	first = take(GFP_DMA, 0);
	second = take(GFP_DMA, 0);	/* the buddy of the first */
	if (!first || !second || page_to_pfn(second) != (page_to_pfn(first) ^ 1))
		return 1;
	if (!take(GFP_DMA, 3))
		return 1;
	if (!take(GFP_DMA, 5))
		return 1;
	return 0;
}
