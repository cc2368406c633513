/*
 * page_alloc.c - the page allocator's entry points (mm/page_alloc.c).
 *
 * Order-0 pages come and go through the zone's per-cpu lists in guest
 * memory, as 6.1's rmqueue_pcplist() and free_unref_page() take them,
 * without the host: an allocation pops the first page of its migratetype's
 * list when the preferred zone is above its low watermark, and a free puts
 * a page whose last reference it drops on that list while the list stays
 * below pcp->high.  Everything else is one hypercall, and the buddy
 * allocator runs on the host, over the same lists: it refills an empty
 * list (rmqueue_bulk()), drains them when a free reaches pcp->high
 * (free_pcppages_bulk()), serves every other order, mask and zone, and
 * reports what CONFIG_DEBUG_LIST would find in a list guest code broke.
 * While the host holds the lists (between mmemu's runs, for its own fast
 * path) it holds pcp->lock: as when 6.1's pcp_spin_trylock() fails, the
 * call then goes past the lists, to the host.  The host attributes a call
 * to the first caller outside the SDK.
 *
 * Differs: which order-0 frees may skip the host is mmemu's own bitmap
 * (bootinfo->fast_free_bits: not slab or page-table pages, not the head of
 * a larger block, not reserved), so that the frees mmemu checks at once
 * are still checked; 6.1 without CONFIG_DEBUG_VM checks them at the drain.
 */
#include <mmemu.h>

/* gfp_zone() of the masks the fast path serves; -1 leaves the mask to the host. */
static __always_inline int pcp_gfp_zone(gfp_t gfp)
{
	switch (gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE)) {
	case 0:
	case __GFP_MOVABLE:
		return ZONE_NORMAL;
	case __GFP_HIGHMEM:
		return ZONE_HIGHMEM;
	case __GFP_HIGHMEM | __GFP_MOVABLE:
		return ZONE_MOVABLE;
	case __GFP_DMA:
	case __GFP_DMA | __GFP_MOVABLE:
		return ZONE_DMA;
	default:
		return -1;
	}
}

/* The first zone of this node's zonelist for highest_zoneidx: its highest populated one. */
static __always_inline struct zone *pcp_preferred_zone(int highest_zoneidx)
{
	pg_data_t *pgdat = NODE_DATA(numa_node_id());
	int z;

	if (!pgdat)
		return NULL;
	for (z = highest_zoneidx; z >= 0; z--)
		if (populated_zone(&pgdat->node_zones[z]))
			return &pgdat->node_zones[z];
	return NULL;
}

/*
 * zone_watermark_fast() for order 0 at the low watermark, as the first
 * attempt of __alloc_pages() checks it: free pages beyond the high-atomic
 * reserve above the watermark plus the lowmem reserve.  When it fails the
 * host makes the whole check.
 */
static __always_inline bool pcp_watermark_ok(const struct zone *zone, int highest_zoneidx)
{
	long free_pages = atomic_long_read(&zone->vm_stat[NR_FREE_PAGES]);
	long reserved = (long)zone->nr_reserved_highatomic;
	long mark = (long)wmark_pages(zone, WMARK_LOW);

	free_pages -= free_pages < reserved ? free_pages : reserved;
	return free_pages > mark + zone->lowmem_reserve[highest_zoneidx];
}

/* The struct page whose pcp_list is at entry, or NULL: not a page of mem_map. */
static __always_inline struct page *pcp_entry_page(const struct list_head *entry)
{
	unsigned long off = (unsigned long)entry - offsetof(struct page, pcp_list)
			    - (unsigned long)mem_map;

	if (off >= max_pfn * sizeof(struct page) || off % sizeof(struct page))
		return NULL;
	return (struct page *)((unsigned long)mem_map + off);
}

/*
 * __list_del_entry_valid() for the first entry of list, without reading
 * through a link that is not the list's own: false leaves the list to the
 * host, which reports what CONFIG_DEBUG_LIST reports.
 */
static __always_inline bool pcp_first_entry_valid(struct list_head *list, struct list_head *entry)
{
	struct list_head *next = entry->next;

	if (entry->prev != list)
		return false;
	if (next != list && !pcp_entry_page(next))
		return false;
	return next->prev == entry;
}

/* rmqueue_pcplist() of an order-0 page, or NULL for the host's whole path. */
static __always_inline struct page *rmqueue_pcplist_fast(gfp_t gfp)
{
	int highest_zoneidx = pcp_gfp_zone(gfp);
	int migratetype;
	struct zone *zone;
	struct per_cpu_pages *pcp;
	struct list_head *list, *entry;
	struct page *page;

	if (highest_zoneidx < 0 || (gfp & __GFP_ZERO))
		return NULL;
	migratetype = mmemu_mm_globals()->page_group_by_mobility_disabled ?
		      MIGRATE_UNMOVABLE : gfp_migratetype(gfp);
	if (migratetype >= MIGRATE_PCPTYPES)
		return NULL;
	zone = pcp_preferred_zone(highest_zoneidx);
	if (!zone || zone->flags || !pcp_watermark_ok(zone, highest_zoneidx))
		return NULL;
	pcp = zone->per_cpu_pageset;
	if (!pcp || pcp->lock.locked)		/* pcp_spin_trylock() */
		return NULL;
	list = &pcp->lists[migratetype];	/* order_to_pindex(migratetype, 0) */
	entry = list->next;
	page = pcp_entry_page(entry);
	if (!page || !pcp_first_entry_valid(list, entry))
		return NULL;			/* empty (the host refills it), or broken */
	if (pcp->free_factor)
		pcp->free_factor >>= 1;		/* the next drain frees less */
	entry->next->prev = list;		/* list_del() */
	list->next = entry->next;
	entry->prev = (struct list_head *)LIST_POISON2;
	pcp->count--;
	/*
	 * prep_new_page(): post_alloc_hook(), and clear_page_pfmemalloc() over
	 * list_del()'s LIST_POISON1 in lru.next (one store for the two; a store
	 * that would change nothing is left out: stores are what cost here).
	 */
	page->lru.next = NULL;
	if (page->private)
		page->private = 0;
	page->_refcount.counter = 1;
	return page;
}

/*
 * free_unref_page() of an order-0 page whose last reference this drops,
 * when the host need not see it: false (nothing changed) for the host's path.
 */
static __always_inline bool free_unref_page_fast(struct page *page)
{
	const volatile struct mmemu_bootinfo *bi = MMEMU_BOOTINFO;
	const u8 *bits = (const u8 *)bi->fast_free_bits;
	unsigned long off = (unsigned long)page - (unsigned long)mem_map;
	unsigned long pfn = off / sizeof(struct page);
	struct per_cpu_pages *pcp;
	struct list_head *list, *first, *new;
	pg_data_t *pgdat;
	struct zone *zone;
	int migratetype;

	if (off % sizeof(struct page) || pfn >= bi->fast_free_pfns ||
	    !((bits[pfn >> 3] >> (pfn & 7)) & 1))
		return false;
	if (atomic_read(&page->_refcount) != 1)	/* put_page_testzero() */
		return false;
	pgdat = NODE_DATA(page_to_nid(page));
	if (!pgdat)
		return false;
	zone = &pgdat->node_zones[page_zonenum(page)];
	if (!zone_spans_pfn(zone, pfn))
		return false;
	migratetype = get_pfnblock_migratetype(page, pfn);
	pcp = zone->per_cpu_pageset;
	if (migratetype >= MIGRATE_PCPTYPES || !pcp || pcp->lock.locked ||
	    pcp->count + 1 >= pcp->high)
		return false;			/* another list, the lock taken, or a drain: the host */
	list = &pcp->lists[migratetype];
	first = list->next;
	new = &page->pcp_list;
	/* __list_add_valid(new, list, first) */
	if ((first != list && !pcp_entry_page(first)) || first->prev != list ||
	    new == list || new == first)
		return false;
	page->_refcount.counter = 0;
	page->index = migratetype;		/* set_pcppage_migratetype() */
	first->prev = new;			/* list_add() */
	new->next = first;
	new->prev = list;
	list->next = new;
	pcp->count++;
	return true;
}

struct page * __sdk alloc_pages(gfp_t gfp, unsigned int order)
{
	if (order == 0) {
		struct page *page;

		might_alloc(gfp);		/* prepare_alloc_pages() */
		page = rmqueue_pcplist_fast(gfp & __GFP_BITS_MASK);
		if (page)
			return page;
	}
	return (struct page *)hypercall3(HC_ALLOC_PAGES, gfp, order,
					 (unsigned long)NUMA_NO_NODE);
}

struct page * __sdk alloc_pages_node(int nid, gfp_t gfp, unsigned int order)
{
	return (struct page *)hypercall3(HC_ALLOC_PAGES, gfp, order,
					 (unsigned long)nid);
}

void __sdk __free_pages(struct page *page, unsigned int order)
{
	if (order == 0 && free_unref_page_fast(page))
		return;
	hypercall2(HC_FREE_PAGES, (unsigned long)page, order);
}

unsigned long __sdk __get_free_pages(gfp_t gfp, unsigned int order)
{
	return hypercall2(HC_GET_FREE_PAGES, gfp, order);
}

unsigned long __sdk get_zeroed_page(gfp_t gfp)
{
	return __get_free_page(gfp | __GFP_ZERO);
}

void __sdk free_pages(unsigned long addr, unsigned int order)
{
	if (addr != 0)
		hypercall2(HC_FREE_PAGES_ADDR, addr, order);
}

/*
 * alloc_pages_exact(): the host splits the block (make_alloc_exact()) and
 * frees its tail; free_pages_exact() is free_page() over every page.
 */
void * __sdk alloc_pages_exact_nid(int nid, size_t size, gfp_t gfp)
{
	/* No compound page (it could not be split) and no HighMem (no address). */
	if (WARN_ON_ONCE(gfp & (__GFP_COMP | __GFP_HIGHMEM)))
		gfp &= ~(__GFP_COMP | __GFP_HIGHMEM);
	return (void *)hypercall3(HC_ALLOC_PAGES_EXACT, size, gfp, (unsigned long)nid);
}

void * __sdk alloc_pages_exact(size_t size, gfp_t gfp)
{
	return alloc_pages_exact_nid(NUMA_NO_NODE, size, gfp);
}

void __sdk free_pages_exact(void *virt, size_t size)
{
	unsigned long addr = (unsigned long)virt;
	unsigned long end = addr + PAGE_ALIGN(size);

	while (addr < end) {
		free_page(addr);
		addr += PAGE_SIZE;
	}
}
