/*
 * migrate_tour.c - grouping pages by mobility: migratetypes and pageblocks.
 *
 *   mmemu run guest/examples/migrate_tour.c
 *   mmemu pagetypeinfo --after guest/examples/migrate_tour.c
 *
 * Linux 6.1 keeps a free list per migratetype and order.  Every pageblock
 * (2^pageblock_order pages, 4 MiB here) has a migratetype in its zone's
 * bitmap, which this program reads as get_pageblock_migratetype() does;
 * the boot marked them all movable.  A request takes pages of its own
 * gfp_migratetype() and, when those lists are empty, steals a pageblock
 * of another type (__rmqueue_fallback(): the largest free block, and with
 * it the whole pageblock for an unmovable or reclaimable request), so
 * that unmovable pages stay together instead of scattering over memory.
 * The program:
 *
 *  1. takes a GFP_KERNEL page (unmovable), a GFP_HIGHUSER_MOVABLE page
 *     (movable) and a GFP_KERNEL | __GFP_RECLAIMABLE page (reclaimable;
 *     nothing reclaimable was allocated before, so its first page steals a
 *     whole pageblock) and checks that each lies in a pageblock of its own
 *     migratetype, which page->index also caches (set_pcppage_migratetype());
 *  2. takes unmovable pages until Normal has one more unmovable pageblock:
 *     the pageblock the boot's unmovable pages stole is full, and the next
 *     page came from a movable pageblock, stolen whole;
 *  3. gives everything back: the stolen pageblocks keep their new type.
 *
 * Returns 0 when every check holds, else the number of the first failed
 * check (1..7).
 */
#include <mmemu.h>

#define MAX_PAGES	4096
#define MAX_BLOCKS	64

/* A lowmem page full of struct page pointers, chained: holds any number. */
struct page_list {
	struct page_list *next;
	unsigned long nr;
	struct page *pages[(PAGE_SIZE / sizeof(void *)) - 2];
};

static struct page_list *list_add_page(struct page_list *list, struct page *page)
{
	if (!list || list->nr == ARRAY_SIZE(list->pages)) {
		struct page_list *fresh = (void *)__get_free_page(GFP_KERNEL);

		if (!fresh)
			return NULL;
		fresh->next = list;
		fresh->nr = 0;
		list = fresh;
	}
	list->pages[list->nr++] = page;
	return list;
}

static void list_free_all(struct page_list *list)
{
	while (list) {
		struct page_list *next = list->next;

		while (list->nr)
			__free_page(list->pages[--list->nr]);
		free_page((unsigned long)list);
		list = next;
	}
}

/* The zone's pageblocks of one migratetype, as /proc/pagetypeinfo counts them. */
static unsigned long count_pageblocks(struct zone *zone, int migratetype)
{
	unsigned long pfn, n = 0;

	for (pfn = zone->zone_start_pfn; pfn < zone_end_pfn(zone); pfn += pageblock_nr_pages)
		if (get_pfnblock_migratetype(pfn_to_page(pfn), pfn) == migratetype)
			n++;
	return n;
}

/* The pfns of the zone's pageblocks of one migratetype (at most max of them). */
static unsigned long list_pageblocks(struct zone *zone, int migratetype, unsigned long *pfns,
				     unsigned long max)
{
	unsigned long pfn, n = 0;

	for (pfn = zone->zone_start_pfn; pfn < zone_end_pfn(zone); pfn += pageblock_nr_pages)
		if (get_pfnblock_migratetype(pfn_to_page(pfn), pfn) == migratetype && n < max)
			pfns[n++] = pfn & ~(pageblock_nr_pages - 1);
	return n;
}

static int check_page(const char *what, gfp_t gfp, int migratetype, struct page **out)
{
	struct page *page = alloc_page(gfp);
	int mt;

	if (!page)
		return 0;
	mt = get_pageblock_migratetype(page);
	pr_info("%-32s pfn %#07lx: pageblock %s, page->index %lu\n", what, page_to_pfn(page),
		migratetype_names[mt], page->index);
	*out = page;
	return gfp_migratetype(gfp) == migratetype && mt == migratetype &&
	       page->index == (unsigned long)migratetype;
}

int main(void)
{
	struct zone *normal = &NODE_DATA(numa_node_id())->node_zones[ZONE_NORMAL];
	struct page *kernel, *movable, *reclaimable, *page = NULL;
	struct page_list *held = NULL;
	unsigned long before[MAX_BLOCKS], after[MAX_BLOCKS];
	unsigned long unmovable, stolen = 0, n, i, j;

	pr_info("pageblock_order %d: %lu pages, %lu KiB a pageblock\n", pageblock_order,
		pageblock_nr_pages, pageblock_nr_pages * PAGE_SIZE / 1024);

	if (!check_page("GFP_KERNEL", GFP_KERNEL, MIGRATE_UNMOVABLE, &kernel))
		return 1;
	if (!check_page("GFP_HIGHUSER_MOVABLE", GFP_HIGHUSER_MOVABLE, MIGRATE_MOVABLE, &movable))
		return 2;
	if (!check_page("GFP_KERNEL | __GFP_RECLAIMABLE", GFP_KERNEL | __GFP_RECLAIMABLE,
			MIGRATE_RECLAIMABLE, &reclaimable))
		return 3;
	if (count_pageblocks(normal, MIGRATE_RECLAIMABLE) != 1)
		return 3;

	unmovable = list_pageblocks(normal, MIGRATE_UNMOVABLE, before, MAX_BLOCKS);
	pr_info("Normal: %lu Unmovable, %lu Movable, %lu Reclaimable pageblocks\n", unmovable,
		count_pageblocks(normal, MIGRATE_MOVABLE), count_pageblocks(normal, MIGRATE_RECLAIMABLE));
	for (n = 0; n < MAX_PAGES; n++) {
		page = alloc_page(GFP_KERNEL);
		if (!page || page_zonenum(page) != ZONE_NORMAL)
			return 4;
		held = list_add_page(held, page);
		if (!held)
			return 4;
		if (count_pageblocks(normal, MIGRATE_UNMOVABLE) > unmovable)
			break;
	}
	if (n == MAX_PAGES)
		return 5;
	/* The new one: the pageblock of the list's largest free block, stolen whole. */
	n++;
	for (i = 0; i < list_pageblocks(normal, MIGRATE_UNMOVABLE, after, MAX_BLOCKS); i++) {
		for (j = 0; j < unmovable && before[j] != after[i]; j++)
			;
		if (j == unmovable)
			stolen = after[i];
	}
	if (!stolen)
		return 6;
	pr_info("steal: after %lu more unmovable pages, the Movable pageblock at pfn %#07lx "
		"became Unmovable\n", n, stolen);

	list_free_all(held);
	__free_page(kernel);
	__free_page(movable);
	__free_page(reclaimable);
	pr_info("after freeing: %lu Unmovable, %lu Reclaimable pageblocks\n",
		count_pageblocks(normal, MIGRATE_UNMOVABLE),
		count_pageblocks(normal, MIGRATE_RECLAIMABLE));
	if (count_pageblocks(normal, MIGRATE_UNMOVABLE) != unmovable + 1)
		return 7;
	return 0;
}
