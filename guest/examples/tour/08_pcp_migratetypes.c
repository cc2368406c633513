/*
 * 08_pcp_migratetypes.c - per-cpu page lists and migratetypes.
 *
 * Two things sit between an order-0 allocation and the buddy lists.
 * Each CPU keeps lists of free pages per zone (the per-cpu pageset): an
 * allocation takes from it and refills it a "batch" at a time from the
 * buddy lists, a free puts the page back on it, so most calls never touch
 * the zone's lock.  Pages on these lists are not counted as free.  The
 * lists are kernel memory like the rest: zone->per_cpu_pageset is this
 * CPU's struct per_cpu_pages, and pcp->count the pages on its lists.
 *
 * And free memory is grouped by mobility: every pageblock (4 MiB here)
 * has a migratetype, and the gfp mask says which one an allocation wants
 * (GFP_KERNEL: unmovable, __GFP_MOVABLE: movable, __GFP_RECLAIMABLE:
 * reclaimable), so that pages the kernel cannot move do not end up
 * scattered through memory that could be compacted or unplugged.
 */
#include <mmemu.h>

static unsigned long free;		/* nr_free_pages() before the call */
static int pcp_count;			/* the Normal zone's pcp->count before it */

static struct per_cpu_pages *normal_pcp(void)
{
	return NODE_DATA(0)->node_zones[ZONE_NORMAL].per_cpu_pageset;
}

static void before(void)
{
	free = nr_free_pages();
	pcp_count = normal_pcp()->count;
}

static void show(const char *mask, struct page *page)
{
	pr_info("%-30s pfn %#07lx, pageblock %-11s nr_free_pages() %+ld, pcp->count %+d\n",
		mask, page_to_pfn(page), migratetype_names[get_pageblock_migratetype(page)],
		(long)(nr_free_pages() - free), normal_pcp()->count - pcp_count);
}

int main(void)
{
	struct page *page, *movable, *reclaimable;

	before();
	page = alloc_page(GFP_KERNEL);		/* from the CPU's unmovable list */
	if (!page)
		return 1;
	show("alloc_page(GFP_KERNEL)", page);
	before();
	__free_page(page);			/* back on it, first */
	show("__free_page()", page);

	before();
	movable = alloc_page(GFP_KERNEL | __GFP_MOVABLE);
	if (!movable)
		return 1;
	show("GFP_KERNEL | __GFP_MOVABLE", movable);

	/* No reclaimable pageblock yet: this one steals a whole movable block. */
	before();
	reclaimable = alloc_page(GFP_KERNEL | __GFP_RECLAIMABLE);
	if (!reclaimable)
		return 1;
	show("GFP_KERNEL | __GFP_RECLAIMABLE", reclaimable);
	if (get_pageblock_migratetype(page) != MIGRATE_UNMOVABLE ||
	    get_pageblock_migratetype(movable) != MIGRATE_MOVABLE ||
	    get_pageblock_migratetype(reclaimable) != MIGRATE_RECLAIMABLE)
		return 2;
	return 0;			/* keeps the two pages: see pagetypeinfo */
}
