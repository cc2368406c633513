/*
 * mmemu/page.h - struct page, mem_map and the page allocator
 * (include/linux/mm_types.h, page-flags.h, mm.h, gfp.h; arch/x86 page.h).
 *
 * struct page mirrors mmemu/mm/mmzone.py, which defines it: 32 bytes, the
 * zone in flags bits 30-31 and the node in bits 26-29 (FLATMEM, 686).
 * `struct page *` values point into mem_map in guest memory, as in Linux;
 * reading a page's fields is an ordinary memory read.
 */
#ifndef _MMEMU_PAGE_H
#define _MMEMU_PAGE_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/gfp.h>

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PAGE_MASK	(~(PAGE_SIZE - 1))
#define PAGE_OFFSET	0xC0000000UL
#define PAGE_ALIGN(addr)	ALIGN((unsigned long)(addr), PAGE_SIZE)

/* 6.1 counts orders 0..MAX_ORDER-1; newer kernels call the top one MAX_PAGE_ORDER. */
#define MAX_ORDER	11
#define NR_PAGE_ORDERS	MAX_ORDER
#define MAX_PAGE_ORDER	(MAX_ORDER - 1)

/* enum pageflags (6.1) */
#define PG_locked	0
#define PG_referenced	1
#define PG_uptodate	2
#define PG_dirty	3
#define PG_lru		4
#define PG_active	5
#define PG_workingset	6
#define PG_waiters	7
#define PG_error	8
#define PG_slab		9
#define PG_owner_priv_1	10
#define PG_arch_1	11
#define PG_reserved	12
#define PG_private	13
#define PG_private_2	14
#define PG_writeback	15
#define PG_head		16
#define PG_mappedtodisk	17
#define PG_reclaim	18
#define PG_swapbacked	19
#define PG_unevictable	20
#define PG_mlocked	21
#define NR_PAGEFLAGS	22

#define ZONES_PGSHIFT	30
#define ZONES_MASK	0x3UL
#define NODES_PGSHIFT	26
#define NODES_MASK	0xFUL

/* page_type lives in _mapcount: the type's bit is *clear* under PAGE_TYPE_BASE. */
#define PAGE_TYPE_BASE	0xf0000000u
#define PG_buddy	0x00000080u
#define PG_offline	0x00000100u
#define PG_table	0x00000200u
#define PG_guard	0x00000400u

struct kmem_cache;

struct page {
	unsigned long flags;		/* PG_* bits, zone, node */
	union {
		struct {	/* buddy and ordinary allocated pages */
			/*
			 * Free blocks: the struct page of the next/previous
			 * free block of the same order, NULL at the ends.
			 * Differs: Linux links list_heads circularly through
			 * the zone; mmemu keeps the heads on the host.
			 */
			struct {
				struct page *next;
				struct page *prev;
			} lru;
			void *mapping;
			pgoff_t index;
			unsigned long private;	/* buddy order when free */
		};
		struct {	/* tail pages of a compound page */
			unsigned long compound_head;	/* head page | 1 */
			unsigned char compound_dtor;	/* first tail only */
			unsigned char compound_order;	/* first tail only */
		};
		struct {	/* slab pages: the struct slab overlay */
			struct {
				struct page *next;
				struct page *prev;
			} slab_list;
			struct kmem_cache *slab_cache;
			void *freelist;
			unsigned long counters;
		};
	};
	union {
		atomic_t _mapcount;	/* -1: not mapped */
		unsigned int page_type;
	};
	atomic_t _refcount;		/* 0 when free */
};

_Static_assert(sizeof(struct page) == 32, "struct page must be 32 bytes (mmzone.py)");
_Static_assert(offsetof(struct page, flags) == 0, "mmzone.OFF_FLAGS");
_Static_assert(offsetof(struct page, lru.next) == 4, "mmzone.OFF_LRU_NEXT");
_Static_assert(offsetof(struct page, lru.prev) == 8, "mmzone.OFF_LRU_PREV");
_Static_assert(offsetof(struct page, mapping) == 12, "mmzone.OFF_MAPPING");
_Static_assert(offsetof(struct page, index) == 16, "mmzone.OFF_INDEX");
_Static_assert(offsetof(struct page, private) == 20, "mmzone.OFF_PRIVATE");
_Static_assert(offsetof(struct page, _mapcount) == 24, "mmzone.OFF_MAPCOUNT");
_Static_assert(offsetof(struct page, _refcount) == 28, "mmzone.OFF_REFCOUNT");
_Static_assert(offsetof(struct page, compound_dtor) == 8, "tail: compound_dtor");
_Static_assert(offsetof(struct page, compound_order) == 9, "tail: compound_order");

/*
 * mem_map: one struct page per pfn from pfn 0 (FLATMEM).  These globals are
 * copied from the boot information before main() runs (lib/init.c).
 */
extern struct page *mem_map;
extern unsigned long max_pfn;		/* highest pfn + 1 */
extern unsigned long max_low_pfn;	/* end of lowmem (pfn) */
extern void *high_memory;		/* end of the direct map */

#define __pa(x)		((unsigned long)(x) - PAGE_OFFSET)
#define __va(x)		((void *)((unsigned long)(x) + PAGE_OFFSET))

#define page_to_pfn(page)	((unsigned long)((page) - mem_map))
#define pfn_to_page(pfn)	(mem_map + (pfn))
#define virt_to_page(kaddr)	pfn_to_page(__pa(kaddr) >> PAGE_SHIFT)
#define pfn_valid(pfn)		((unsigned long)(pfn) < max_pfn)

static __always_inline int test_bit(int nr, const volatile unsigned long *addr)
{
	return (addr[nr / 32] >> (nr % 32)) & 1;
}

static __always_inline int page_zonenum(const struct page *page)
{
	return (READ_ONCE(page->flags) >> ZONES_PGSHIFT) & ZONES_MASK;
}

static __always_inline int page_to_nid(const struct page *page)
{
	return (READ_ONCE(page->flags) >> NODES_PGSHIFT) & NODES_MASK;
}

/* is_highmem_idx(): HighMem, or Movable when it was carved out of HighMem. */
static __always_inline bool is_highmem_idx(int zid)
{
	return zid == ZONE_HIGHMEM ||
	       (zid == ZONE_MOVABLE && MMEMU_BOOTINFO->movable_is_highmem);
}

static __always_inline bool PageHighMem(const struct page *page)
{
	return is_highmem_idx(page_zonenum(page));
}

static __always_inline int page_count(const struct page *page)
{
	return atomic_read(&page->_refcount);
}

static __always_inline int page_mapcount_raw(const struct page *page)
{
	return atomic_read(&page->_mapcount);
}

#define PageReserved(page)	test_bit(PG_reserved, &(page)->flags)
#define PageSlab(page)		test_bit(PG_slab, &(page)->flags)
#define PageHead(page)		test_bit(PG_head, &(page)->flags)
#define PageTail(page)		((int)(READ_ONCE((page)->compound_head) & 1))
#define PageCompound(page)	(PageHead(page) || PageTail(page))

/* PageType(): the type bit is clear and the base bits are set. */
#define PageType(page, flag)	\
	((READ_ONCE((page)->page_type) & (PAGE_TYPE_BASE | (flag))) == PAGE_TYPE_BASE)
#define PageBuddy(page)		PageType((page), PG_buddy)
#define PageTable(page)		PageType((page), PG_table)

/* The order of a free block's first page (valid only while PageBuddy). */
#define buddy_order(page)	((unsigned int)READ_ONCE((page)->private))

static __always_inline void *lowmem_page_address(const struct page *page)
{
	return __va((unsigned long)page_to_pfn(page) << PAGE_SHIFT);
}

/*
 * page_address(): the kernel virtual address of a page.  Lowmem is always
 * in the direct map; a HighMem page has an address only while kmapped
 * (the host knows: HC_PAGE_ADDRESS), NULL otherwise.
 */
static __always_inline void *page_address(const struct page *page)
{
	if (!PageHighMem(page))
		return lowmem_page_address(page);
	return (void *)hypercall1(HC_PAGE_ADDRESS, (unsigned long)page);
}

/* The page allocator (mm/page_alloc.c), served by the host; lib/page_alloc.c. */
struct page *alloc_pages(gfp_t gfp, unsigned int order);
struct page *alloc_pages_node(int nid, gfp_t gfp, unsigned int order);
void __free_pages(struct page *page, unsigned int order);
unsigned long __get_free_pages(gfp_t gfp, unsigned int order);
unsigned long get_zeroed_page(gfp_t gfp);
void free_pages(unsigned long addr, unsigned int order);
unsigned long nr_free_pages(void);
unsigned long zone_free_pages(int zid);	/* mmemu: free pages in one zone type */

#define alloc_page(gfp_mask)		alloc_pages(gfp_mask, 0)
#define __get_free_page(gfp_mask)	__get_free_pages((gfp_mask), 0)
#define __get_dma_pages(gfp_mask, order) \
	__get_free_pages((gfp_mask) | GFP_DMA, (order))
#define __free_page(page)		__free_pages((page), 0)
#define free_page(addr)			free_pages((addr), 0)

#endif /* _MMEMU_PAGE_H */
