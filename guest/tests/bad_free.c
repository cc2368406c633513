/*
 * bad_free.c - freeing pages wrongly: twice (free_page), and with the wrong
 * order (__free_pages).
 *
 * Linux reports each with "BUG: Bad page state in process ..." (and taints
 * the kernel with 'B'), then carries on; so does mmemu, and its allocator
 * stays consistent.  Expect two such reports on the console and exit 0.
 */
#include <mmemu.h>

int main(void)
{
	unsigned long addr = __get_free_page(GFP_KERNEL);
	struct page *pair = alloc_pages(GFP_KERNEL, 1);

	if (!addr || !pair) {
		pr_err("bad_free: could not allocate\n");
		return 1;
	}
	pr_info("bad_free: freeing the page at %p twice\n", (void *)addr);
	free_page(addr);
	free_page(addr);		/* double free: Bad page state */

	pr_info("bad_free: freeing the order-1 block at pfn %#lx as order 2\n",
		page_to_pfn(pair));
	__free_pages(pair, 2);		/* wrong order: Bad page state */

	pr_info("bad_free: still running; the allocator is %s\n",
		mmemu_check() == 0 ? "consistent" : "DAMAGED");
	return 0;
}
