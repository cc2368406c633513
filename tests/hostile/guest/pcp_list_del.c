/*
 * pcp_list_del.c - a page on a per-cpu list gets a wild pcp_list.next.
 *
 * A page allocated and freed is first on the Normal zone's unmovable
 * per-cpu list: the next alloc_page(GFP_KERNEL) takes it.  Its pcp_list.next is pointed at a
 * kmalloc'd word, readable but no list entry.  The allocation's list_del()
 * checks the neighbours as 6.1's CONFIG_DEBUG_LIST does: "list_del
 * corruption. next->prev should be <entry>, but was <word>. (next=<word>)",
 * then CONFIG_BUG_ON_DATA_CORRUPTION's "kernel BUG at
 * lib/list_debug.c:62!", which kills the task (134).
 */
#include <mmemu.h>

int main(void)
{
	struct zone *zone = &NODE_DATA(0)->node_zones[ZONE_NORMAL];
	struct list_head *list = &zone->per_cpu_pageset->lists[MIGRATE_UNMOVABLE];
	unsigned long *wild = kmalloc(16, GFP_KERNEL);
	struct list_head *entry;

	__free_page(alloc_page(GFP_KERNEL));
	entry = list->next;

	wild[0] = wild[1] = 0x5a5a5a5a;
	printk("entry %px wild %px\n", entry, wild);
	entry->next = (struct list_head *)wild;	/* a stray store */
	alloc_page(GFP_KERNEL);			/* list_del corruption: the task dies */
	printk("not reached\n");
	return 0;
}
