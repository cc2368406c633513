/*
 * 14_kmap.c - kmap: reaching a HighMem page.
 *
 * A HighMem page has no kernel address: the direct map ends at
 * high_memory, so page_address() is NULL.  To touch it the kernel maps it
 * for a while: kmap() into the pkmap area (may sleep; the mapping is
 * global, and page_address() finds it), kmap_local_page() into this CPU's
 * fixmap slots (for this task only, which stays on this CPU until
 * kunmap_local(); unmapped in reverse order).
 * A lowmem page needs neither: kmap() just returns its direct-map address.
 */
#include <mmemu.h>

int main(void)
{
	struct page *page = alloc_page(GFP_HIGHUSER);
	struct page *low = alloc_page(GFP_KERNEL);
	char *p, *q;

	if (!page || !low || !PageHighMem(page) || page_address(page))
		return 1;
	pr_info("HighMem page pfn %#07lx: page_address() %p\n",
		page_to_pfn(page), page_address(page));

	p = kmap(page);
	strcpy(p, "written through the pkmap area");
	pr_info("kmap()            = %p (pkmap slot %lu), page_address() %p\n",
		p, PKMAP_NR(p), page_address(page));

	q = kmap_local_page(page);	/* a second, short-lived mapping */
	pr_info("kmap_local_page() = %p (fixmap), reads \"%s\"\n", q, q);
	if (page_address(page) != p || strcmp(q, p))
		return 2;
	kunmap_local(q);

	pr_info("kmap(lowmem page) = %p, its page_address()\n", kmap(low));
	kunmap(low);
	return 0;			/* keeps the kmap(): see ptdump --region pkmap */
}
