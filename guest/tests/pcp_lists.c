/*
 * pcp_lists.c - the zone's per-cpu page lists, read and used from guest code.
 *
 * Walks pcp->lists[] of the Normal zone and checks pcp->count against them,
 * then watches an order-0 allocation take the first page of its list and a
 * free put it back first, empties the list to see the host refill batch
 * pages, and frees pages until a free reaches pcp->high and the lists drain.
 * Prints what it saw; the test compares it with the host's view.
 */
#include <mmemu.h>

#define MAX_HELD 8192

static struct page *held[MAX_HELD];

static int list_len(struct list_head *list)
{
	struct list_head *pos;
	int n = 0;

	for (pos = list->next; pos != list; pos = pos->next)
		n++;
	return n;
}

static int walk_count(struct per_cpu_pages *pcp)
{
	int pindex, pages = 0;

	for (pindex = 0; pindex < NR_PCP_LISTS; pindex++) {
		int order = pindex < NR_LOWORDER_PCP_LISTS ? pindex / MIGRATE_PCPTYPES :
			    pageblock_order;

		pages += list_len(&pcp->lists[pindex]) << order;
	}
	return pages;
}

int main(void)
{
	struct zone *zone = &NODE_DATA(0)->node_zones[ZONE_NORMAL];
	struct per_cpu_pages *pcp = zone->per_cpu_pageset;
	struct list_head *list = &pcp->lists[MIGRATE_UNMOVABLE];
	struct page *first, *page;
	int n, i, before;

	pr_info("pcp: count %d walked %d high %d batch %d\n", pcp->count, walk_count(pcp),
		pcp->high, pcp->batch);

	first = container_of(list->next, struct page, pcp_list);
	before = pcp->count;
	page = alloc_page(GFP_KERNEL);
	pr_info("alloc: first %d count %d ref %d lru %p %p\n", page == first,
		before - pcp->count, page_count(page), (void *)page->lru.next,
		(void *)page->lru.prev);
	__free_page(page);
	pr_info("free: first %d count %d ref %d index %lu\n",
		container_of(list->next, struct page, pcp_list) == page, pcp->count - before,
		page_count(page), page->index);

	/* Empty the list, then one more: the host refills batch pages. */
	n = list_len(list);
	for (i = 0; i <= n && i < MAX_HELD; i++)
		held[i] = alloc_page(GFP_KERNEL);
	pr_info("refill: took %d, list %d\n", i, list_len(list));

	/* Free until a free reaches high: the drain gives batch pages back. */
	for (; i < MAX_HELD; i++)
		held[i] = alloc_page(GFP_KERNEL);
	for (i = 0; i < MAX_HELD; i++) {
		before = pcp->count;
		__free_page(held[i]);
		if (pcp->count < before) {
			pr_info("drain: at %d to %d, walked %d\n", before + 1, pcp->count,
				walk_count(pcp));
			break;
		}
	}
	for (i++; i < MAX_HELD; i++)
		__free_page(held[i]);
	pr_info("done: count %d walked %d\n", pcp->count, walk_count(pcp));
	return 0;
}
