/*
 * freelist_poison.c - a free block's lru.prev set to LIST_POISON2, the
 * value list_del() leaves in an entry it took off a list.
 *
 * The next allocation of that order unlinks the block: 6.1's
 * __list_del_entry_valid() reports "list_del corruption, <page>->prev is
 * LIST_POISON2 (00000122)" and BUGs at lib/list_debug.c:56 (134).
 */
#include <mmemu.h>

int main(void)
{
	struct page *a = alloc_pages(GFP_KERNEL, 4);
	struct page *b = alloc_pages(GFP_KERNEL, 4);

	if (!a || !b)
		return 1;
	__free_pages(a, 4);
	printk("block %px\n", a);
	a->lru.prev = (struct page *)0x122;	/* LIST_POISON2 */
	alloc_pages(GFP_KERNEL, 4);
	printk("not reached\n");
	return 0;
}
