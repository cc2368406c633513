/*
 * 08_pcp_migratetypes.c - per-cpu page lists and migratetypes.
 *
 * Two things sit between an order-0 allocation and the buddy lists.
 * Each CPU keeps lists of free pages per zone (the per-cpu pageset): an
 * allocation takes from it and refills it a "batch" at a time from the
 * buddy lists, a free puts the page back on it, so most calls never touch
 * the zone's lock.  Pages on these lists are not counted as free.
 *
 * And free memory is grouped by mobility: every pageblock (4 MiB here)
 * has a migratetype, and the gfp mask says which one an allocation wants
 * (GFP_KERNEL: unmovable, __GFP_MOVABLE: movable, __GFP_RECLAIMABLE:
 * reclaimable), so that pages the kernel cannot move do not end up
 * scattered through memory that could be compacted or unplugged.
 */
#include <mmemu.h>

static void show(const char *mask, struct page *page, unsigned long free_before)
{
	pr_info("%-30s pfn %#07lx, pageblock %-11s nr_free_pages() %+ld\n",
		mask, page_to_pfn(page), migratetype_names[get_pageblock_migratetype(page)],
		(long)(nr_free_pages() - free_before));
}

int main(void)
{
	unsigned long free = nr_free_pages();
	struct page *page, *movable, *reclaimable;

	page = alloc_page(GFP_KERNEL);		/* the CPU's list is empty: refilled */
	if (!page)
		return 1;
	show("alloc_page(GFP_KERNEL)", page, free);
	free = nr_free_pages();
	__free_page(page);
	show("__free_page()", page, free);

	free = nr_free_pages();
	movable = alloc_page(GFP_KERNEL | __GFP_MOVABLE);
	if (!movable)
		return 1;
	show("GFP_KERNEL | __GFP_MOVABLE", movable, free);

	/* No reclaimable pageblock yet: this one steals a whole movable block. */
	free = nr_free_pages();
	reclaimable = alloc_page(GFP_KERNEL | __GFP_RECLAIMABLE);
	if (!reclaimable)
		return 1;
	show("GFP_KERNEL | __GFP_RECLAIMABLE", reclaimable, free);
	if (get_pageblock_migratetype(page) != MIGRATE_UNMOVABLE ||
	    get_pageblock_migratetype(movable) != MIGRATE_MOVABLE ||
	    get_pageblock_migratetype(reclaimable) != MIGRATE_RECLAIMABLE)
		return 2;
	return 0;			/* keeps the two pages: see pagetypeinfo */
}
