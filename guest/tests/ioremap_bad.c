/*
 * ioremap_bad.c - what ioremap() and iounmap() refuse.
 *
 * ioremap() of a page the page allocator handed out is RAM in use: NULL,
 * with "ioremap on RAM at ..." (once).  ioremap() of size 0: NULL.
 * iounmap() of a vmalloc address is "iounmap: bad address" and changes
 * nothing; iounmap() of a lowmem address is ignored, as in Linux.
 * Returns 0 when every answer is Linux's.
 */
#include <mmemu.h>

int main(void)
{
	struct page *page = alloc_page(GFP_KERNEL);
	unsigned long phys = page_to_pfn(page) << PAGE_SHIFT;
	char *buf = vmalloc(PAGE_SIZE);

	if (!page || !buf)
		return 1;
	if (ioremap(phys, PAGE_SIZE))
		return 2;
	if (ioremap(phys, PAGE_SIZE))		/* refused again, silently */
		return 3;
	if (ioremap(0xfe000000UL, 0))
		return 4;
	iounmap(buf);				/* "iounmap: bad address" */
	buf[0] = 1;				/* still mapped */
	iounmap(page_address(page));		/* below high_memory: ignored */
	vfree(buf);
	__free_page(page);
	return mmemu_check() ? 5 : 0;
}
