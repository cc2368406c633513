/*
 * page_tour.c - a tour of the buddy page allocator and its zones.
 *
 * Shows: which zone a GFP mask gets its pages from (GFP_KERNEL -> Normal,
 * GFP_DMA -> DMA below 16 MiB, GFP_HIGHUSER -> HighMem, GFP_ATOMIC ->
 * Normal from the reserves), that get_zeroed_page() is zeroed, that a lowmem
 * page's address is simply __va(pfn << PAGE_SHIFT) while a HighMem page has
 * none until kmapped, and zone fallback: once HighMem is used up,
 * GFP_HIGHUSER allocations come from Normal.
 *
 * Returns 0 when every check holds, else the number of the first failed
 * check (1..9).
 */
#include <mmemu.h>

static const char *const zone_names[MAX_NR_ZONES] = {
	"DMA", "Normal", "HighMem", "Movable",
};

/* A lowmem page full of struct page pointers, chained: holds any number. */
struct page_list {
	struct page_list *next;
	unsigned long nr;
	struct page *pages[(PAGE_SIZE / sizeof(void *)) - 2];
};

static void show(const char *what, struct page *page, unsigned int order)
{
	pr_info("%-14s order %u: pfn %#07lx zone %-7s node %d count %d%s\n",
		what, order, page_to_pfn(page), zone_names[page_zonenum(page)],
		page_to_nid(page), page_count(page),
		PageHighMem(page) ? " (HighMem)" : "");
}

static int tour_gfp_kernel(void)
{
	struct page *page = alloc_pages(GFP_KERNEL, 2);

	if (!page)
		return 1;
	show("GFP_KERNEL", page, 2);
	if (PageHighMem(page))		/* never: GFP_KERNEL has no __GFP_HIGHMEM */
		return 1;
	/* Lowmem: the address is in the direct map, no hypercall needed. */
	if (page_address(page) != __va(page_to_pfn(page) << PAGE_SHIFT))
		return 2;
	if (virt_to_page(page_address(page)) != page)
		return 2;
	__free_pages(page, 2);
	return 0;
}

static int tour_gfp_dma(void)
{
	unsigned long addr = __get_dma_pages(GFP_KERNEL, 0);
	struct page *page;

	if (!addr)
		return 3;
	page = virt_to_page(addr);
	show("GFP_DMA", page, 0);
	if (page_zonenum(page) != ZONE_DMA || __pa(addr) >= 16UL << 20)
		return 3;
	free_page(addr);
	return 0;
}

static int tour_gfp_highuser(void)
{
	struct page *page = alloc_page(GFP_HIGHUSER);

	if (!page)
		return 4;
	show("GFP_HIGHUSER", page, 0);
	if (PageHighMem(page)) {
		/* Not in the direct map: no address until kmap(). */
		if (page_address(page) != NULL)
			return 4;
		pr_info("  a HighMem page has no page_address() (NULL) until kmapped\n");
	} else {
		pr_info("  no HighMem on this machine: the page came from %s\n",
			zone_names[page_zonenum(page)]);
	}
	__free_page(page);
	return 0;
}

static int tour_gfp_atomic(void)
{
	struct page *page = alloc_page(GFP_ATOMIC);

	if (!page)
		return 5;
	show("GFP_ATOMIC", page, 0);
	if (PageHighMem(page))
		return 5;
	__free_page(page);
	return 0;
}

static int tour_zeroed_page(void)
{
	unsigned long addr = get_zeroed_page(GFP_KERNEL);
	const unsigned long *p = (const unsigned long *)addr;
	size_t i;

	if (!addr)
		return 6;
	for (i = 0; i < PAGE_SIZE / sizeof(*p); i++) {
		if (p[i] != 0) {
			pr_err("get_zeroed_page: word %zu is %#lx\n", i, p[i]);
			return 6;
		}
	}
	pr_info("get_zeroed_page: %d bytes at %p, all zero\n", (int)PAGE_SIZE, (void *)addr);
	free_page(addr);
	return 0;
}

static struct page_list *list_add_page(struct page_list *list, struct page *page)
{
	if (!list || list->nr == ARRAY_SIZE(list->pages)) {
		struct page_list *fresh = (void *)__get_free_page(GFP_KERNEL);

		if (!fresh)
			return NULL;
		fresh->next = list;
		fresh->nr = 0;
		list = fresh;
	}
	list->pages[list->nr++] = page;
	return list;
}

static void list_free_all(struct page_list *list)
{
	while (list) {
		struct page_list *next = list->next;

		while (list->nr)
			__free_page(list->pages[--list->nr]);
		free_page((unsigned long)list);
		list = next;
	}
}

/* Take HighMem pages until the allocator falls back to Normal. */
static int tour_fallback(void)
{
	struct page_list *list = NULL, *grown;
	unsigned long highmem = 0;
	struct page *page;

	while ((page = alloc_page(GFP_HIGHUSER | __GFP_NOWARN)) != NULL) {
		grown = list_add_page(list, page);
		if (!grown) {
			__free_page(page);
			list_free_all(list);
			return 7;
		}
		list = grown;
		if (!PageHighMem(page))
			break;
		highmem++;
	}
	if (!page) {
		list_free_all(list);
		return 8;	/* ran dry without ever falling back to Normal */
	}
	pr_info("fallback: %lu HighMem pages, then GFP_HIGHUSER got pfn %#lx from %s\n",
		highmem, page_to_pfn(page), zone_names[page_zonenum(page)]);
	if (page_zonenum(page) != ZONE_NORMAL && page_zonenum(page) != ZONE_DMA) {
		list_free_all(list);
		return 9;
	}
	list_free_all(list);
	return 0;
}

int main(void)
{
	int (*const steps[])(void) = {
		tour_gfp_kernel, tour_gfp_dma, tour_gfp_highuser, tour_gfp_atomic,
		tour_zeroed_page, tour_fallback,
	};
	unsigned long before = nr_free_pages();
	size_t i;
	int err;

	pr_info("page_tour: %lu pages free, mem_map at %p, max_pfn %#lx\n",
		before, (void *)mem_map, max_pfn);
	for (i = 0; i < ARRAY_SIZE(steps); i++) {
		err = steps[i]();
		if (err) {
			pr_err("page_tour: check %d failed\n", err);
			return err;
		}
	}
	/* Everything was given back (equal unless the allocator caches pages). */
	pr_info("page_tour: every check held; %lu pages free at the end, %lu at the start\n",
		nr_free_pages(), before);
	return 0;
}
