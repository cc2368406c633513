/*
 * 03_struct_page.c - struct page and mem_map.
 *
 * The kernel keeps one struct page for every page frame, in one array
 * (FLATMEM): mem_map[pfn].  page_to_pfn() and pfn_to_page() are pointer
 * arithmetic on it.  The flags word holds the PG_* bits and, in its top
 * bits, the page's zone and node; _refcount counts the users of the page.
 */
#include <mmemu.h>

static void show(const char *what, struct page *page)
{
	pr_info("%-19s pfn %#07lx struct page %p flags %#010lx zone %d node %d _refcount %d%s%s\n",
		what, page_to_pfn(page), page, page->flags,
		(int)((page->flags >> ZONES_PGSHIFT) & ZONES_MASK),
		(int)((page->flags >> NODES_PGSHIFT) & NODES_MASK),
		page_count(page), PageReserved(page) ? " reserved" : "",
		PageBuddy(page) ? " buddy" : "");
}

int main(void)
{
	struct page *page;

	pr_info("mem_map at %p: %lu struct pages of %u bytes = %lu KiB\n",
		mem_map, max_pfn, (unsigned int)sizeof(struct page),
		max_pfn * sizeof(struct page) >> 10);

	show("pfn 0 (the BIOS)", pfn_to_page(0));
	show("main() (kernel)", virt_to_page(main));
	show("mem_map itself", virt_to_page(mem_map));

	page = alloc_page(GFP_KERNEL);
	if (!page)
		return 1;
	show("alloc_page()", page);
	get_page(page);			/* a second user */
	show("after get_page()", page);
	if (page_count(page) != 2)
		return 2;
	put_page(page);
	put_page(page);			/* the last reference frees it */
	show("after put_page() x2", page);
	return page_count(page) == 0 && PageReserved(pfn_to_page(0)) ? 0 : 3;
}
