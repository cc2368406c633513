/*
 * hypercall_loop.c - a guest that does nothing but hypercalls, for the
 * debugger's Ctrl-C: each page it takes it gives back, so a call the host
 * served twice (a stop landing inside it, the call made again on resume)
 * shows as pages missing at the end or a page freed twice.
 */
#include <mmemu.h>

#define ROUNDS	200000

int main(void)
{
	unsigned long before = nr_free_pages();
	int i;

	for (i = 0; i < ROUNDS; i++) {
		unsigned long page = __get_free_page(GFP_KERNEL);

		if (!page)
			return 2;
		free_page(page);
	}
	if (nr_free_pages() != before) {
		printk(KERN_ERR "hypercall_loop: %lu pages free, %lu at the start\n",
		       nr_free_pages(), before);
		return 1;
	}
	printk(KERN_INFO "hypercall_loop: %d rounds, every page back\n", ROUNDS);
	return 0;
}
