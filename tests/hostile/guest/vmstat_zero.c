/*
 * vmstat_zero.c - every zone's vm_stat[NR_FREE_PAGES] (guest memory, the
 * counter the allocator's watermark checks read) overwritten with 0.
 *
 * 6.1 believes the zones are empty: zone_watermark_fast() fails, and the
 * allocation fails after the slow path and reclaim ("page allocation
 * failure: order:0" from warn_alloc(), NULL).  Nothing oopses; exit 0.
 */
#include <mmemu.h>

int main(void)
{
	struct zone *zone;
	struct page *page;

	for_each_populated_zone(zone)
		zone->vm_stat[NR_FREE_PAGES].counter = 0;
	page = alloc_pages(GFP_KERNEL | __GFP_NORETRY, 4);
	printk("alloc_pages: %px\n", page);
	return 0;
}
