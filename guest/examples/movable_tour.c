/*
 * movable_tour.c - a tour of ZONE_MOVABLE, the zone kernelcore=/movablecore=
 * carve out of the top of the highest zone.
 *
 *   mmemu run guest/examples/movable_tour.c --config pc-1g-movable
 *
 * On pc-1g-movable (movablecore=64M) ZONE_MOVABLE is the top 64 MiB of
 * HighMem, from 0x3c000000.  Only an allocation that says its pages can be
 * moved, __GFP_MOVABLE together with __GFP_HIGHMEM (GFP_HIGHUSER_MOVABLE),
 * may use it; so that the zone can always be emptied again, kernel memory
 * never lands there.  The program:
 *
 *  1. allocates GFP_KERNEL pages (order 0 and 2), kmalloc() memory, a
 *     GFP_KERNEL|__GFP_MOVABLE page (__GFP_MOVABLE alone means Normal), a
 *     GFP_HIGHUSER page (HighMem but not movable) and a
 *     __get_free_page(GFP_HIGHUSER_MOVABLE) (which drops __GFP_HIGHMEM, so
 *     Normal), all while ZONE_MOVABLE has free pages, and checks that none
 *     of them comes from ZONE_MOVABLE;
 *  2. takes GFP_HIGHUSER_MOVABLE pages, counting them, until one comes
 *     from another zone: the zonelist falls back from Movable to the zone
 *     it was carved from (HighMem here), then, once that is down to its
 *     watermark too, to Normal;
 *  3. gives everything back.
 *
 * Returns 0 when every check holds, else the number of the first failed
 * check (1..8); 10 when the machine has no ZONE_MOVABLE.
 */
#include <mmemu.h>

static const char *const zone_names[MAX_NR_ZONES] = {
	"DMA", "Normal", "HighMem", "Movable",
};

#define NR_KERNEL_PAGES	64

/* A lowmem page full of struct page pointers, chained: holds any number. */
struct page_list {
	struct page_list *next;
	unsigned long nr;
	struct page *pages[(PAGE_SIZE / sizeof(void *)) - 2];
};

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

static void list_free_all(struct page_list *list, unsigned int order)
{
	while (list) {
		struct page_list *next = list->next;

		while (list->nr)
			__free_pages(list->pages[--list->nr], order);
		free_page((unsigned long)list);
		list = next;
	}
}

/* Kernel memory: whatever GFP_KERNEL-style call made it, never ZONE_MOVABLE. */
static int not_movable(const char *what, struct page *page)
{
	if (!page)
		return 0;
	if (page_zonenum(page) == ZONE_MOVABLE) {
		pr_err("movable_tour: %s got pfn %#lx from ZONE_MOVABLE\n",
		       what, page_to_pfn(page));
		return 0;
	}
	return 1;
}

/* Check a kernel allocation's zone and keep it on *list; 0 if either fails. */
static int keep(struct page_list **list, const char *what, struct page *page,
		unsigned int order)
{
	struct page_list *grown;

	if (!page || !not_movable(what, page)) {
		if (page)
			__free_pages(page, order);
		return 0;
	}
	grown = list_add_page(*list, page);
	if (!grown) {
		__free_pages(page, order);
		return 0;
	}
	*list = grown;
	return 1;
}

static int tour_kernel_pages(void)
{
	struct page_list *small = NULL, *big = NULL;
	int ok = 1;

	for (int i = 0; i < NR_KERNEL_PAGES && ok; i++)
		ok = keep(&small, "GFP_KERNEL", alloc_page(GFP_KERNEL), 0) &&
		     keep(&big, "GFP_KERNEL order 2", alloc_pages(GFP_KERNEL, 2), 2);
	if (ok)
		pr_info("GFP_KERNEL: %d order-0 and %d order-2 allocations, none from Movable "
			"(%lu Movable pages free)\n", NR_KERNEL_PAGES, NR_KERNEL_PAGES,
			zone_free_pages(ZONE_MOVABLE));
	list_free_all(small, 0);
	list_free_all(big, 2);
	return ok ? 0 : 1;
}

static int tour_kmalloc(void)
{
	void *small = kmalloc(64, GFP_KERNEL);
	void *large = kmalloc(5 * PAGE_SIZE, GFP_KERNEL);	/* straight from the page allocator */
	int ok = small && large &&
		 not_movable("kmalloc(64)", virt_to_page(small)) &&
		 not_movable("kmalloc(20480)", virt_to_page(large));

	pr_info("kmalloc: slab and large kmalloc memory from %s and %s\n",
		small ? zone_names[page_zonenum(virt_to_page(small))] : "-",
		large ? zone_names[page_zonenum(virt_to_page(large))] : "-");
	kfree(small);
	kfree(large);
	return ok ? 0 : 2;
}

/* The zone modifiers one at a time: only MOVABLE|HIGHMEM selects ZONE_MOVABLE. */
static int tour_zone_modifiers(void)
{
	struct page *movable_only = alloc_page(GFP_KERNEL | __GFP_MOVABLE);
	struct page *highuser = alloc_page(GFP_HIGHUSER);
	unsigned long addr = __get_free_page(GFP_HIGHUSER_MOVABLE);
	struct page *both = alloc_page(GFP_HIGHUSER_MOVABLE);
	int err = 0;

	if (!movable_only || page_zonenum(movable_only) != ZONE_NORMAL)
		err = 3;	/* gfp_zone(__GFP_MOVABLE) is ZONE_NORMAL */
	else if (!highuser || page_zonenum(highuser) == ZONE_MOVABLE)
		err = 3;
	else if (!addr || !not_movable("__get_free_page(GFP_HIGHUSER_MOVABLE)", virt_to_page(addr)))
		err = 3;
	else if (!both || page_zonenum(both) != ZONE_MOVABLE)
		err = 4;	/* Movable has free pages: GFP_HIGHUSER_MOVABLE gets one */
	if (!err)
		pr_info("zones: GFP_KERNEL|__GFP_MOVABLE -> %s, GFP_HIGHUSER -> %s, "
			"__get_free_page(GFP_HIGHUSER_MOVABLE) -> %s, GFP_HIGHUSER_MOVABLE -> %s\n",
			zone_names[page_zonenum(movable_only)], zone_names[page_zonenum(highuser)],
			zone_names[page_zonenum(virt_to_page(addr))], zone_names[page_zonenum(both)]);
	if (movable_only)
		__free_page(movable_only);
	if (highuser)
		__free_page(highuser);
	free_page(addr);
	if (both)
		__free_page(both);
	return err;
}

/*
 * Take GFP_HIGHUSER_MOVABLE pages until one comes from Normal (or DMA),
 * noting each zone change: the zone index may only go down.
 */
static int tour_fill_and_fall_back(void)
{
	unsigned long count[MAX_NR_ZONES] = { 0 };
	struct page_list *list = NULL, *grown;
	int zone = ZONE_MOVABLE, seen_highmem = 0;
	struct page *page;

	while ((page = alloc_page(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN)) != NULL) {
		int zid = page_zonenum(page);

		grown = list_add_page(list, page);
		if (!grown) {
			__free_page(page);
			list_free_all(list, 0);
			return 5;
		}
		list = grown;
		if (zid != zone) {
			pr_info("fallback: after %lu %s pages, pfn %#lx came from %s\n",
				count[zone], zone_names[zone], page_to_pfn(page), zone_names[zid]);
			if (zid > zone) {	/* back up the zonelist: never */
				list_free_all(list, 0);
				return 6;
			}
			zone = zid;
		}
		count[zid]++;
		seen_highmem |= zid == ZONE_HIGHMEM;
		if (zid <= ZONE_NORMAL)
			break;
	}
	list_free_all(list, 0);
	if (!page)
		return 7;	/* ran dry before reaching Normal */
	/* ZONE_MOVABLE came out of HighMem: HighMem is the first fallback. */
	if (MMEMU_BOOTINFO->movable_is_highmem && !seen_highmem)
		return 8;
	pr_info("fill: %lu Movable, %lu HighMem pages taken before GFP_HIGHUSER_MOVABLE "
		"reached %s\n", count[ZONE_MOVABLE], count[ZONE_HIGHMEM], zone_names[zone]);
	return count[ZONE_MOVABLE] ? 0 : 7;
}

int main(void)
{
	int (*const steps[])(void) = {
		tour_kernel_pages, tour_kmalloc, tour_zone_modifiers, tour_fill_and_fall_back,
	};
	unsigned long movable = zone_free_pages(ZONE_MOVABLE);
	int err;

	if (!movable) {
		pr_err("movable_tour: this machine has no ZONE_MOVABLE "
		       "(boot it with kernelcore= or movablecore=)\n");
		return 10;
	}
	pr_info("movable_tour: %lu pages free in ZONE_MOVABLE (%s)\n", movable,
		MMEMU_BOOTINFO->movable_is_highmem ? "carved out of HighMem" : "carved out of Normal");
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		err = steps[i]();
		if (err) {
			pr_err("movable_tour: check %d failed\n", err);
			return err;
		}
	}
	pr_info("movable_tour: every check held; %lu Movable pages free at the end "
		"(not counting the per-cpu lists)\n",
		zone_free_pages(ZONE_MOVABLE));
	return 0;
}
