/*
 * 02_zones.c - zones: DMA, Normal, HighMem and Movable.
 *
 * A node's page frames are split into zones by what can use them:
 * ZONE_DMA below 16 MiB for ISA devices that drive 24 address lines,
 * ZONE_NORMAL up to the end of the kernel's direct map (max_low_pfn),
 * ZONE_HIGHMEM above it (no permanent kernel address), and ZONE_MOVABLE
 * (movablecore=, kernelcore=) for pages the kernel could move or unplug.
 */
#include <mmemu.h>

int main(void)
{
	struct zone *zone;
	unsigned long managed = 0;

	pr_info("lowmem ends at pfn %#lx (high_memory %p); max_pfn %#lx\n",
		max_low_pfn, high_memory, max_pfn);

	for_each_populated_zone(zone) {
		pr_info("node %d %-7s pfn %#07lx-%#07lx spanned %6lu present %6lu managed %6lu%s\n",
			zone->node, zone->name, zone->zone_start_pfn, zone_end_pfn(zone),
			zone->spanned_pages, zone->present_pages,
			zone_managed_pages(zone), is_highmem(zone) ? " highmem" : "");
		managed += zone_managed_pages(zone);
	}
	pr_info("totalram_pages() %lu, totalhigh_pages() %lu\n",
		totalram_pages(), totalhigh_pages());
	return managed == totalram_pages() ? 0 : 1;	/* the sum of the zones' */
}
