/*
 * freelist_list_del.c - a free block's lru.next overwritten, then allocated.
 *
 * Two order-4 blocks are taken and the first given back: it is the head of
 * free_area[4].  Its lru.next is pointed at the second block, which is not
 * on any list (its lru.prev still holds the LIST_POISON2 its own list_del()
 * left).  The next order-4 allocation unlinks the first block, and 6.1's
 * CONFIG_DEBUG_LIST check sees next->prev is not the entry: "list_del
 * corruption. next->prev should be <first>, but was 00000122.
 * (next=<second>)", then CONFIG_BUG_ON_DATA_CORRUPTION's "kernel BUG at
 * lib/list_debug.c:62!", which kills the task inside alloc_pages() (134):
 * no other block or migratetype is tried, nothing moves.
 */
#include <mmemu.h>

int main(void)
{
	struct page *a = alloc_pages(GFP_KERNEL, 4);
	struct page *b = alloc_pages(GFP_KERNEL, 4);

	if (!a || !b)
		return 1;
	__free_pages(a, 4);
	printk("first %px second %px free %lu\n", a, b,
	       zone_page_state(page_zone(a), NR_FREE_PAGES));
	a->lru.next = b;			/* a wild link, as a stray store leaves it */
	alloc_pages(GFP_KERNEL, 4);		/* list_del corruption: the task dies */
	printk("not reached\n");
	return 0;
}
