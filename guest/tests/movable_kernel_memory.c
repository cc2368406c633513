/*
 * movable_kernel_memory.c - kernel memory stays out of ZONE_MOVABLE; only
 * what asks for __GFP_MOVABLE|__GFP_HIGHMEM goes there.
 *
 * Run on a machine with a ZONE_MOVABLE (pc-1g-movable).  While ZONE_MOVABLE
 * has free pages, the program makes kernel memory of every kind: a slab
 * cache and 2000 of its objects, kmalloc() of every size class, vmalloc()
 * and vzalloc() areas (their page tables come from the page allocator too,
 * as GFP_KERNEL pages) and a vmap() of a GFP_KERNEL page; none of it may come
 * from ZONE_MOVABLE.  A __vmalloc(GFP_HIGHUSER_MOVABLE) and a vmap() of a
 * GFP_HIGHUSER_MOVABLE page, which ask for movable pages, do get them.
 *
 * Everything is left allocated on purpose: the program runs the consistency
 * checkers over it (mmemu_check(): no PG_slab or PageTable page in
 * ZONE_MOVABLE, no vmalloc page there without __GFP_MOVABLE), and so can
 * the test after it.
 * Returns 0 when every check holds, else the number of the failed check.
 */
#include <mmemu.h>

#define NR_OBJECTS	2000
#define VMALLOC_SIZE	(4UL << 20)

struct item {
	u32 id;
	u8 payload[120];
};

static void *objects[NR_OBJECTS];

static int in_movable(const void *lowmem_addr)
{
	return page_zonenum(virt_to_page(lowmem_addr)) == ZONE_MOVABLE;
}

/* Every page of a vmalloc area: 1 if any of them is (want) / is not (!want) in Movable. */
static int vmalloc_pages_in_movable(const char *area, unsigned long size, int want)
{
	for (unsigned long off = 0; off < size; off += PAGE_SIZE) {
		struct page *page = vmalloc_to_page(area + off);

		if (!page || (page_zonenum(page) == ZONE_MOVABLE) != want)
			return 0;
	}
	return 1;
}

int main(void)
{
	struct kmem_cache *cache = kmem_cache_create("movable_items", sizeof(struct item), 0,
						     0, NULL);
	unsigned long movable = zone_free_pages(ZONE_MOVABLE);
	struct page *kernel_page, *user_page, *pages[2];
	char *area, *zarea, *user_area, *map;

	if (!movable)
		return 10;		/* no ZONE_MOVABLE on this machine */
	if (!cache)
		return 1;
	for (int i = 0; i < NR_OBJECTS; i++) {
		objects[i] = kmem_cache_alloc(cache, GFP_KERNEL);
		if (!objects[i] || in_movable(objects[i]))
			return 1;
	}
	for (unsigned int size = 8; size <= 8192; size *= 2) {
		void *p = kmalloc(size, GFP_KERNEL);

		if (!p || in_movable(p))
			return 2;
	}
	area = vmalloc(VMALLOC_SIZE);
	zarea = vzalloc(VMALLOC_SIZE);
	if (!area || !zarea)
		return 3;
	if (!vmalloc_pages_in_movable(area, VMALLOC_SIZE, 0) ||
	    !vmalloc_pages_in_movable(zarea, VMALLOC_SIZE, 0))
		return 3;
	kernel_page = alloc_page(GFP_KERNEL);
	user_page = alloc_page(GFP_HIGHUSER_MOVABLE);
	if (!kernel_page || !user_page || page_zonenum(kernel_page) == ZONE_MOVABLE)
		return 4;
	if (page_zonenum(user_page) != ZONE_MOVABLE)
		return 5;		/* Movable has free pages: a movable request gets one */
	pages[0] = kernel_page;
	pages[1] = user_page;
	map = vmap(pages, 2, VM_MAP, PAGE_KERNEL);
	if (!map)
		return 6;
	user_area = __vmalloc(16 * PAGE_SIZE, GFP_HIGHUSER_MOVABLE);
	if (!user_area || !vmalloc_pages_in_movable(user_area, 16 * PAGE_SIZE, 1))
		return 7;
	if (mmemu_check() != 0)
		return 8;		/* the checkers, with all of it allocated */
	pr_info("movable_kernel_memory: %d slab objects, kmalloc 8..8192, 2 x %lu KiB vmalloc "
		"outside ZONE_MOVABLE; __vmalloc(GFP_HIGHUSER_MOVABLE) inside it; "
		"%lu Movable pages free at the start, %lu now\n", NR_OBJECTS, VMALLOC_SIZE >> 10,
		movable, zone_free_pages(ZONE_MOVABLE));
	return 0;
}
