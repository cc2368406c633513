/*
 * freelist_bad_block.c - a free block's struct page made to look in use.
 *
 * An order-4 block is freed, then its head's _refcount set to 1 while it
 * sits on free_area[4].  6.1's rmqueue_buddy() runs check_new_pages() on
 * the block it takes: "BUG: Bad page state in process ... page dumped
 * because: nonzero _refcount", and the block is never handed out (it is
 * leaked); the allocator takes the next block instead.  The program goes
 * on and checks it got another block: exit 0.
 */
#include <mmemu.h>

int main(void)
{
	struct page *a = alloc_pages(GFP_KERNEL, 4);
	struct page *b = alloc_pages(GFP_KERNEL, 4);
	struct page *c;

	if (!a || !b)
		return 1;
	__free_pages(a, 4);
	a->_refcount.counter = 1;		/* looks allocated, but is on a free list */
	c = alloc_pages(GFP_KERNEL, 4);
	printk("freed %px, got %px\n", a, c);
	if (!c || c == a)
		return 2;			/* the bad block was handed out */
	__free_pages(c, 4);
	__free_pages(b, 4);
	return 0;
}
