/*
 * bad_free.c - freeing pages wrongly: with the wrong order (__free_pages),
 * then twice (free_page).
 *
 * The wrong order is "BUG: Bad page state in process ..." (a taint 'B');
 * Linux carries on after it, and so does mmemu, its allocator consistent.
 * The second free_page() of one page is CONFIG_DEBUG_VM's
 * VM_BUG_ON_PAGE(page_ref_count(page) == 0): "kernel BUG at
 * include/linux/mm.h:769!", which kills the task: the run ends there with
 * status 134 (mmemu refused the free first, so nothing is lost).
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
	pr_info("bad_free: freeing the order-1 block at pfn %#lx as order 2\n",
		page_to_pfn(pair));
	__free_pages(pair, 2);		/* wrong order: Bad page state */
	pr_info("bad_free: still running; the allocator is %s\n",
		mmemu_check() == 0 ? "consistent" : "DAMAGED");

	pr_info("bad_free: freeing the page at %p twice\n", (void *)addr);
	free_page(addr);
	free_page(addr);		/* double free: VM_BUG_ON_PAGE, the task dies */
	pr_info("bad_free: not reached\n");
	return 0;
}
