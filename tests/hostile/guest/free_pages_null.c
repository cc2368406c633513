/*
 * free_pages_null.c - __free_pages(NULL, 0).
 *
 * 6.1's __free_pages() reads PageHead(page) first: page->flags at address
 * 0, "BUG: kernel NULL pointer dereference, address: 00000000", an oops
 * that kills the task (139).  (free_pages(0, 0), by address, is a no-op.)
 */
#include <mmemu.h>

int main(void)
{
	free_pages(0, 0);			/* fine: addr 0 is ignored */
	printk("free_pages(0) is a no-op\n");
	__free_pages(NULL, 0);			/* oops */
	printk("not reached\n");
	return 0;
}
