/*
 * freelist_merge.c - a free block's lru.prev overwritten, then its buddy freed.
 *
 * Order-4 blocks are taken until two in a row are buddies, and the first of
 * those is given back: it is on free_area[4].  Its lru.prev is pointed at
 * the second, still allocated.  Freeing the second makes __free_one_page()
 * merge it with its free buddy: list_del() of the first finds prev->next
 * is not the entry, "list_del corruption. prev->next should be <first>, but
 * was ... (prev=<second>)", and CONFIG_BUG_ON_DATA_CORRUPTION's "kernel BUG
 * at lib/list_debug.c:59!" kills the task inside __free_pages() (134).  The
 * block being freed dies with the task: NR_FREE_PAGES never counts it, the
 * first block stays on its list, nothing else moves.
 */
#include <mmemu.h>

int main(void)
{
	struct page *a = NULL, *b = NULL;
	struct zone *zone;
	int i;

	for (i = 0; i < 8; i++) {		/* the rest stay allocated */
		a = b;
		b = alloc_pages(GFP_KERNEL, 4);
		if (!b)
			return 1;
		if (a && (page_to_pfn(a) ^ page_to_pfn(b)) == 16)
			break;
	}
	if (i == 8)
		return 2;
	__free_pages(a, 4);
	zone = page_zone(b);
	printk("first %px second %px free %lu\n", a, b, zone_page_state(zone, NR_FREE_PAGES));
	a->lru.prev = b;			/* a wild link, as a stray store leaves it */
	__free_pages(b, 4);			/* list_del corruption: the task dies */
	printk("not reached\n");
	return 0;
}
