/*
 * pcp_list_add.c - a per-cpu list's first page gets a wild pcp_list.prev.
 *
 * Two pages are allocated and the first freed: it is first on the Normal
 * zone's unmovable per-cpu list, and gets a pcp_list.prev that does not
 * point back at the list head.  Freeing the second puts it in front: list_add() checks next->prev as 6.1's
 * CONFIG_DEBUG_LIST does ("list_add corruption. next->prev should be prev
 * (<head>), but was <wild>. (next=<first>)."), then "kernel BUG at
 * lib/list_debug.c:27!" kills the task (134).  The page is on no list
 * and is lost, as the kernel loses it.
 */
#include <mmemu.h>

int main(void)
{
	struct zone *zone = &NODE_DATA(0)->node_zones[ZONE_NORMAL];
	struct list_head *list = &zone->per_cpu_pageset->lists[MIGRATE_UNMOVABLE];
	struct page *a = alloc_page(GFP_KERNEL), *page = alloc_page(GFP_KERNEL);
	struct list_head *first;

	__free_page(a);
	first = list->next;
	printk("head %px first %px page %px\n", list, first, page);
	first->prev = first;			/* a stray store */
	__free_page(page);			/* list_add corruption: the task dies */
	printk("not reached\n");
	return 0;
}
