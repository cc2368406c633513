/*
 * slab_page_free.c - handing a slab page back to the page allocator:
 * kmalloc() an object, then free_page() the page it sits in.
 *
 * The page belongs to kmalloc-64, which keeps using it.  A 6.1 kernel with
 * CONFIG_DEBUG_VM stops this with "BUG: Bad page state" (PG_slab is one of
 * PAGE_FLAGS_CHECK_AT_FREE); one without it takes the page onto its per-cpu
 * list unchecked and the slab corrupts whoever gets the page next.  mmemu
 * always checks such a page: expect the report, the object still usable,
 * kfree() working, and exit 0.
 */
#include <mmemu.h>

int main(void)
{
	char *obj = kmalloc(64, GFP_KERNEL);
	unsigned long page;

	if (!obj) {
		pr_err("slab_page_free: kmalloc failed\n");
		return 1;
	}
	obj[0] = 'k';
	page = (unsigned long)obj & PAGE_MASK;
	pr_info("slab_page_free: free_page() of the slab page %p\n", (void *)page);
	free_page(page);		/* a slab page: Bad page state */

	obj[1] = 'm';
	pr_info("slab_page_free: object still reads %c%c\n", obj[0], obj[1]);
	kfree(obj);
	pr_info("slab_page_free: still running; the allocator is %s\n",
		mmemu_check() == 0 ? "consistent" : "DAMAGED");
	return 0;
}
