/*
 * mmemu/mmzone.h - nodes and zones: pg_data_t, struct zone and the counters
 * (include/linux/mmzone.h, nodemask.h, vmstat.h, mm.h, highmem.h; 6.1).
 *
 * The structures live in guest memory and the host keeps them current:
 * every page the buddy allocator takes or gives back changes the zone's
 * vm_stat[NR_FREE_PAGES] and vm_zone_stat[NR_FREE_PAGES] at once, and the
 * watermarks and managed pages are rewritten whenever they change.  Read
 * them as kernel code does:
 *
 *	int nid;
 *	struct zone *zone;
 *
 *	for_each_online_node(nid)
 *		pr_info("node %d: %lu pages\n", nid, NODE_DATA(nid)->node_present_pages);
 *	for_each_populated_zone(zone)
 *		pr_info("%s: %lu free, min %lu\n", zone->name,
 *			zone_page_state(zone, NR_FREE_PAGES), min_wmark_pages(zone));
 *
 * The layout is mmemu's (mmemu/mm/node_data.py defines it; the build tests
 * check this header against it): the kernel's field names in the kernel's
 * order, without what mmemu does not model (free_area lists, zonelists,
 * lruvecs, locks).  vm_stat counts NR_FREE_PAGES only.
 * Pages on the per-cpu lists are not free pages here, as in Linux.
 *
 * Grouping by mobility (include/linux/mmzone.h, pageblock-flags.h): every
 * pageblock (2^pageblock_order pages: 4 MiB, 2 MiB with PAE) has a
 * migratetype in its zone's pageblock_flags; an allocation takes pages of
 * its gfp_migratetype() first and steals another type's pageblock only when
 * its own lists are empty:
 *
 *	struct page *page = alloc_page(GFP_KERNEL);
 *
 *	pr_info("%s\n", migratetype_names[get_pageblock_migratetype(page)]);
 */
#ifndef _MMEMU_MMZONE_H
#define _MMEMU_MMZONE_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/gfp.h>
#include <mmemu/page.h>
#include <mmemu/sched.h>	/* spinlock_t */

#define NODES_SHIFT		4
#define MAX_NUMNODES		(1 << NODES_SHIFT)

enum zone_watermarks {
	WMARK_MIN,
	WMARK_LOW,
	WMARK_HIGH,
	WMARK_PROMO,
	NR_WMARK
};

/* enum zone_stat_item: mmemu counts the first one only. */
enum zone_stat_item {
	NR_FREE_PAGES,
	NR_VM_ZONE_STAT_ITEMS
};

struct pglist_data;

/*
 * The per-cpu page lists (mm/page_alloc.c): order-0..3 and THP blocks kept
 * off the buddy lists for this CPU, one list per order and migratetype
 * (order_to_pindex()), newest first.  alloc_pages() and __free_pages() of
 * an order-0 page take and give them here without the host; the host
 * refills a list from the buddy lists (rmqueue_bulk()) when it is empty and
 * drains them (free_pcppages_bulk()) when count reaches high.
 */
#define PAGE_ALLOC_COSTLY_ORDER	3
#define NR_PCP_THP		2
#define NR_LOWORDER_PCP_LISTS	(3 * (PAGE_ALLOC_COSTLY_ORDER + 1))	/* MIGRATE_PCPTYPES lists per order */
#define NR_PCP_LISTS		(NR_LOWORDER_PCP_LISTS + NR_PCP_THP)

struct per_cpu_pages {
	spinlock_t lock;	/* taken while the host holds the lists */
	int count;		/* pages on all the lists */
	int high;		/* a free that brings count to high drains */
	int batch;		/* pages a refill or a drain moves */
	short free_factor;	/* batch scaling factor during free */
	short expire;		/* CONFIG_NUMA: remote pagesets (always 0 here) */
	struct list_head lists[NR_PCP_LISTS];
} __attribute__((aligned(64)));		/* ____cacheline_aligned_in_smp */

/* enum zone_flags */
#define ZONE_BOOSTED_WATERMARK	0	/* a fallback boosted the watermark: wake kswapd */

struct zone {
	unsigned long _watermark[NR_WMARK];
	unsigned long watermark_boost;
	unsigned long nr_reserved_highatomic;
	long lowmem_reserve[MAX_NR_ZONES];
	int node;
	struct pglist_data *zone_pgdat;
	struct per_cpu_pages *per_cpu_pageset;	/* the one CPU's */
	unsigned long *pageblock_flags;	/* 4 bits per pageblock (FLATMEM) */
	unsigned long zone_start_pfn;
	atomic_long_t managed_pages;
	unsigned long spanned_pages;
	unsigned long present_pages;
	const char *name;
	unsigned long flags;		/* enum zone_flags bits */
	atomic_long_t vm_stat[NR_VM_ZONE_STAT_ITEMS];
};

typedef struct pglist_data {
	struct zone node_zones[MAX_NR_ZONES];
	int nr_zones;			/* highest spanned zone + 1 */
	unsigned long node_start_pfn;
	unsigned long node_present_pages;
	unsigned long node_spanned_pages;
	int node_id;
	unsigned long totalreserve_pages;
} pg_data_t;

/* mmemu: the globals, together where bootinfo->mm_globals points. */
struct mmemu_mm_globals {
	atomic_long_t _totalram_pages;
	atomic_long_t _totalhigh_pages;
	atomic_long_t vm_zone_stat[NR_VM_ZONE_STAT_ITEMS];
	unsigned long node_online_map;	/* node_states[N_ONLINE] */
	unsigned long nr_online_nodes;
	int page_group_by_mobility_disabled;	/* too little memory to group by mobility */
	struct pglist_data *node_data[MAX_NUMNODES];
};

_Static_assert(sizeof(struct zone) == 84, "node_data.SIZEOF_ZONE");
_Static_assert(offsetof(struct zone, vm_stat) == 80, "node_data.STRUCT_ZONE");
_Static_assert(sizeof(struct pglist_data) == 360, "node_data.SIZEOF_PGLIST_DATA");
_Static_assert(offsetof(struct mmemu_mm_globals, node_data) == 24, "node_data.MM_GLOBALS");
_Static_assert(sizeof(struct per_cpu_pages) == 192, "mmzone.PCP_STRIDE");

#define mmemu_mm_globals() \
	((struct mmemu_mm_globals *)MMEMU_BOOTINFO->mm_globals)

/* The nodes (include/linux/nodemask.h, arch/x86/include/asm/mmzone_32.h). */
#define NODE_DATA(nid)		(mmemu_mm_globals()->node_data[(nid)])
#define node_online(nid)	\
	((unsigned int)(nid) < MAX_NUMNODES && ((mmemu_mm_globals()->node_online_map >> (nid)) & 1))
#define num_online_nodes()	((int)mmemu_mm_globals()->nr_online_nodes)

/* next_online_node(): the next online node after nid, MAX_NUMNODES when none. */
static __always_inline int next_online_node(int nid)
{
	unsigned long map = mmemu_mm_globals()->node_online_map;

	for (nid++; nid < MAX_NUMNODES; nid++)
		if ((map >> nid) & 1)
			break;
	return nid;
}

#define first_online_node	next_online_node(-1)
#define for_each_online_node(nid) \
	for ((nid) = first_online_node; (nid) < MAX_NUMNODES; (nid) = next_online_node(nid))

/* numa_node_id(): the node of this CPU (its per-cpu numa_node). */
static __always_inline int numa_node_id(void)
{
	return (int)MMEMU_PERCPU->numa_node;
}

/* The zones of every online node, in node order (mm/mmzone.c; lib/mmzone.c). */
struct pglist_data *first_online_pgdat(void);
struct pglist_data *next_online_pgdat(struct pglist_data *pgdat);
struct zone *next_zone(struct zone *zone);

#define for_each_online_pgdat(pgdat) \
	for (pgdat = first_online_pgdat(); pgdat; pgdat = next_online_pgdat(pgdat))

#define for_each_zone(zone)				\
	for (zone = (first_online_pgdat())->node_zones;	\
	     zone;					\
	     zone = next_zone(zone))

#define for_each_populated_zone(zone)			\
	for (zone = (first_online_pgdat())->node_zones;	\
	     zone;					\
	     zone = next_zone(zone))			\
		if (!populated_zone(zone))		\
			; /* do nothing */		\
		else

#define zone_idx(zone)		((int)((zone) - (zone)->zone_pgdat->node_zones))

static __always_inline unsigned long zone_managed_pages(const struct zone *zone)
{
	return (unsigned long)atomic_long_read(&zone->managed_pages);
}

/* populated_zone(): the zone has present pages; managed_zone(): the allocator has some. */
static __always_inline bool populated_zone(const struct zone *zone)
{
	return zone->present_pages != 0;
}

static __always_inline bool managed_zone(const struct zone *zone)
{
	return zone_managed_pages(zone) != 0;
}

static __always_inline unsigned long zone_end_pfn(const struct zone *zone)
{
	return zone->zone_start_pfn + zone->spanned_pages;
}

static __always_inline bool zone_spans_pfn(const struct zone *zone, unsigned long pfn)
{
	return zone->zone_start_pfn <= pfn && pfn < zone_end_pfn(zone);
}

static __always_inline bool is_highmem(const struct zone *zone)
{
	return is_highmem_idx(zone_idx(zone));
}

#define wmark_pages(z, i)	((z)->_watermark[i] + (z)->watermark_boost)
#define min_wmark_pages(z)	wmark_pages(z, WMARK_MIN)
#define low_wmark_pages(z)	wmark_pages(z, WMARK_LOW)
#define high_wmark_pages(z)	wmark_pages(z, WMARK_HIGH)

/* enum migratetype (6.1, CONFIG_MEMORY_ISOLATION, no CONFIG_CMA). */
enum migratetype {
	MIGRATE_UNMOVABLE,
	MIGRATE_MOVABLE,
	MIGRATE_RECLAIMABLE,
	MIGRATE_PCPTYPES,	/* the number of types on the pcp lists */
	MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES,
	MIGRATE_ISOLATE,	/* can't allocate from here */
	MIGRATE_TYPES
};

extern const char *const migratetype_names[MIGRATE_TYPES];

/* include/linux/pageblock-flags.h: pageblock_order = HUGETLB_PAGE_ORDER here. */
#ifdef CONFIG_X86_PAE
#define pageblock_order		9
#else
#define pageblock_order		10
#endif
#define pageblock_nr_pages	(1UL << pageblock_order)
#define NR_PAGEBLOCK_BITS	4
#define PB_migratetype_bits	3
#define MIGRATETYPE_MASK	((1UL << PB_migratetype_bits) - 1)
#define GFP_MOVABLE_MASK	(__GFP_RECLAIMABLE | __GFP_MOVABLE)
#define GFP_MOVABLE_SHIFT	3

/* gfp_migratetype(): the free lists a mask allocates from. */
static __always_inline int gfp_migratetype(const gfp_t gfp_flags)
{
	return (int)((gfp_flags & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT);
}

/* page_zone(), page_pgdat(): where a page's flags say it belongs. */
static __always_inline struct zone *page_zone(const struct page *page)
{
	return &NODE_DATA(page_to_nid(page))->node_zones[page_zonenum(page)];
}

static __always_inline pg_data_t *page_pgdat(const struct page *page)
{
	return NODE_DATA(page_to_nid(page));
}

/* get_pfnblock_migratetype(): the migratetype bits of pfn's pageblock in its
 * zone's bitmap (counted from the zone's first pageblock, FLATMEM). */
static __always_inline int get_pfnblock_migratetype(const struct page *page, unsigned long pfn)
{
	const struct zone *zone = page_zone(page);
	unsigned long bitidx = ((pfn - (zone->zone_start_pfn & ~(pageblock_nr_pages - 1)))
				>> pageblock_order) * NR_PAGEBLOCK_BITS;

	return (int)((READ_ONCE(zone->pageblock_flags[bitidx / BITS_PER_LONG])
		      >> (bitidx % BITS_PER_LONG)) & MIGRATETYPE_MASK);
}

#define get_pageblock_migratetype(page)	get_pfnblock_migratetype(page, page_to_pfn(page))

/* Counters (include/linux/vmstat.h); a negative drift reads as 0, as on SMP. */
static __always_inline unsigned long zone_page_state(const struct zone *zone,
						     enum zone_stat_item item)
{
	long x = atomic_long_read(&zone->vm_stat[item]);

	return x < 0 ? 0 : (unsigned long)x;
}

static __always_inline unsigned long global_zone_page_state(enum zone_stat_item item)
{
	long x = atomic_long_read(&mmemu_mm_globals()->vm_zone_stat[item]);

	return x < 0 ? 0 : (unsigned long)x;
}

#define nr_free_pages()		global_zone_page_state(NR_FREE_PAGES)

/* mmemu: free pages in zone type zid, over every node. */
unsigned long zone_free_pages(int zid);

/* totalram_pages(): every zone's managed pages; totalhigh_pages() the HighMem ones. */
static __always_inline unsigned long totalram_pages(void)
{
	return (unsigned long)atomic_long_read(&mmemu_mm_globals()->_totalram_pages);
}

static __always_inline unsigned long totalhigh_pages(void)
{
	return (unsigned long)atomic_long_read(&mmemu_mm_globals()->_totalhigh_pages);
}

/* nr_free_highpages(): free pages of the populated HighMem zones (mm/highmem.c). */
unsigned long nr_free_highpages(void);

/* struct sysinfo (include/uapi/linux/sysinfo.h) and si_meminfo() (mm/page_alloc.c). */
struct sysinfo {
	long uptime;
	unsigned long loads[3];
	unsigned long totalram;
	unsigned long freeram;
	unsigned long sharedram;
	unsigned long bufferram;
	unsigned long totalswap;
	unsigned long freeswap;
	u16 procs;
	u16 pad;
	unsigned long totalhigh;
	unsigned long freehigh;
	u32 mem_unit;
	char _f[20 - 2 * sizeof(unsigned long) - sizeof(u32)];
};

_Static_assert(sizeof(struct sysinfo) == 64, "struct sysinfo, i386");

/*
 * si_meminfo(): totalram, freeram (nr_free_pages()), totalhigh and freehigh
 * in pages, mem_unit PAGE_SIZE; sharedram and bufferram are 0 (mmemu has
 * no shmem or block devices).
 */
void si_meminfo(struct sysinfo *val);

#endif /* _MMEMU_MMZONE_H */
