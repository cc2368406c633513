/*
 * 07_watermarks.c - zone watermarks and the reserves.
 *
 * Each zone keeps three watermarks, derived from min_free_kbytes: below
 * "low" kswapd is woken to reclaim until "high"; an ordinary allocation
 * fails rather than take a zone below "min".  GFP_ATOMIC callers, which
 * cannot wait for reclaim, may go further: __GFP_HIGH lowers the bar by
 * half of min, and not being able to sleep as well by a quarter more.
 *
 * This program drains ZONE_DMA with GFP_DMA pages until the allocator
 * says no, then again with GFP_ATOMIC, and gives every page back.  The
 * pages are chained through their own first word.
 */
#include <mmemu.h>

static unsigned long chain;

static unsigned long drain(gfp_t gfp)
{
	unsigned long addr, n = 0;

	while ((addr = __get_free_page(gfp | __GFP_NOWARN)) != 0) {
		*(unsigned long *)addr = chain;
		chain = addr;
		n++;
	}
	return n;
}

int main(void)
{
	struct zone *dma = &NODE_DATA(0)->node_zones[ZONE_DMA];
	unsigned long n, min = min_wmark_pages(dma), left;

	pr_info("ZONE_DMA: %lu pages free; watermarks min %lu low %lu high %lu\n",
		zone_page_state(dma, NR_FREE_PAGES), min_wmark_pages(dma),
		low_wmark_pages(dma), high_wmark_pages(dma));

	n = drain(GFP_DMA);
	pr_info("GFP_DMA:            %4lu pages, then NULL with %lu free\n",
		n, zone_page_state(dma, NR_FREE_PAGES));
	if (zone_page_state(dma, NR_FREE_PAGES) != min)
		return 1;
	n = drain(GFP_ATOMIC | GFP_DMA);
	left = zone_page_state(dma, NR_FREE_PAGES);
	pr_info("GFP_ATOMIC|GFP_DMA: %4lu more, then NULL with %lu free\n", n, left);
	if (left != min - min / 2 - (min - min / 2) / 4)
		return 2;

	while (chain) {
		unsigned long next = *(unsigned long *)chain;

		free_page(chain);
		chain = next;
	}
	return 0;
}
