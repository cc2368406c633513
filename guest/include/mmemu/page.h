/*
 * mmemu/page.h - struct page, mem_map and the page allocator
 * (include/linux/mm_types.h, page-flags.h, mm.h, gfp.h; arch/x86 page.h).
 *
 * struct page mirrors mmemu/mm/mmzone.py, which defines it: 40 bytes (the
 * 686 kernel's: CONFIG_MEMCG's memcg_data, aligned to 2 * sizeof(long)), the
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
			union {
				struct {
					struct page *next;
					struct page *prev;
				} lru;
				/*
				 * On a per-cpu list: linked through these
				 * list_heads, circularly, from the list head in
				 * the zone's struct per_cpu_pages, as in 6.1.
				 */
				struct list_head pcp_list;
			};
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
	unsigned long memcg_data;	/* CONFIG_MEMCG; always 0 in mmemu */
} __attribute__((aligned(2 * sizeof(unsigned long))));	/* HAVE_ALIGNED_STRUCT_PAGE */

_Static_assert(sizeof(struct page) == 40, "struct page must be 40 bytes (mmzone.py)");
_Static_assert(offsetof(struct page, flags) == 0, "mmzone.OFF_FLAGS");
_Static_assert(offsetof(struct page, lru.next) == 4, "mmzone.OFF_LRU_NEXT");
_Static_assert(offsetof(struct page, lru.prev) == 8, "mmzone.OFF_LRU_PREV");
_Static_assert(offsetof(struct page, mapping) == 12, "mmzone.OFF_MAPPING");
_Static_assert(offsetof(struct page, index) == 16, "mmzone.OFF_INDEX");
_Static_assert(offsetof(struct page, private) == 20, "mmzone.OFF_PRIVATE");
_Static_assert(offsetof(struct page, _mapcount) == 24, "mmzone.OFF_MAPCOUNT");
_Static_assert(offsetof(struct page, _refcount) == 28, "mmzone.OFF_REFCOUNT");
_Static_assert(offsetof(struct page, memcg_data) == 32, "mmzone.OFF_MEMCG_DATA");
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

/* compound_head(): the head page of a compound page (the page itself otherwise). */
static __always_inline struct page *compound_head(const struct page *page)
{
	unsigned long head = READ_ONCE(page->compound_head);

	if (head & 1)
		return (struct page *)(head - 1);
	return (struct page *)page;
}

#define page_folio(page)	compound_head(page)

#define PageHead(page)		test_bit(PG_head, &(page)->flags)
#define PageTail(page)		((int)(READ_ONCE((page)->compound_head) & 1))
#define PageCompound(page)	(PageHead(page) || PageTail(page))

/* compound_order(): the order of a compound page, from its first tail; 0 otherwise. */
static __always_inline unsigned int compound_order(const struct page *page)
{
	if (!PageHead(page))
		return 0;
	return page[1].compound_order;
}

/*
 * Page flags as include/linux/page-flags.h tests them: PG_slab lives on the
 * head page (PF_NO_TAIL, so a tail page of a slab answers for its head);
 * PG_reserved on every page itself (PF_NO_COMPOUND).
 */
#define PageReserved(page)	test_bit(PG_reserved, &(page)->flags)
#define PageSlab(page)		test_bit(PG_slab, &compound_head(page)->flags)

/* page_count(): the references to the page's folio, held in its head's _refcount. */
static __always_inline int page_count(const struct page *page)
{
	return atomic_read(&compound_head(page)->_refcount);
}

static __always_inline int page_mapcount_raw(const struct page *page)
{
	return atomic_read(&page->_mapcount);
}

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
 * in the direct map; a HighMem page has an address only while kmap()ed
 * (Linux's page_address_htable, which the host keeps: HC_PAGE_ADDRESS),
 * NULL otherwise.
 */
static __always_inline void *page_address(const struct page *page)
{
	if (!PageHighMem(page))
		return lowmem_page_address(page);
	return (void *)hypercall1(HC_PAGE_ADDRESS, (unsigned long)page);
}

/*
 * Addresses (arch/x86/include/asm/io.h, page.h; include/linux/mm.h).
 * virt_to_phys() and virt_to_page() are for direct-map (lowmem) addresses
 * only: for a vmalloc, kmap or ioremap address they give nonsense, as in
 * Linux (use vmalloc_to_page(), or lookup_address()).  page_to_virt() is
 * __va() of the page's physical address, also for a HighMem page, whose
 * result is then not a mapping of it (page_address() is).
 */
static __always_inline phys_addr_t virt_to_phys(volatile void *address)
{
	return __pa(address);
}

static __always_inline void *phys_to_virt(phys_addr_t address)
{
	return __va(address);
}

#define PFN_PHYS(pfn)		((phys_addr_t)(pfn) << PAGE_SHIFT)
#define PHYS_PFN(x)		((unsigned long)((x) >> PAGE_SHIFT))
#define page_to_phys(page)	PFN_PHYS(page_to_pfn(page))
#define page_to_virt(page)	__va(PFN_PHYS(page_to_pfn(page)))
#define virt_to_pfn(kaddr)	(__pa(kaddr) >> PAGE_SHIFT)

/* virt_addr_valid(): a direct-map address with a struct page (__virt_addr_valid()). */
static __always_inline bool virt_addr_valid(const volatile void *kaddr)
{
	unsigned long x = (unsigned long)kaddr;

	return x >= PAGE_OFFSET && x < (unsigned long)high_memory &&
	       pfn_valid(__pa(x) >> PAGE_SHIFT);
}

/* fls(): the last (most significant) set bit, 1-based; fls(0) is 0. */
static __always_inline int fls(unsigned int x)
{
	return x ? 32 - __builtin_clz(x) : 0;
}

/*
 * get_order(size): the order of the smallest block of 2^order pages that
 * holds size bytes (include/asm-generic/getorder.h); get_order(0) is
 * undefined in Linux and 20 here.
 */
static __always_inline int get_order(unsigned long size)
{
	size--;
	size >>= PAGE_SHIFT;
	return fls(size);
}

/*
 * get_page() / put_page(): take and drop a reference to a page's folio
 * (include/linux/mm.h).  Dropping the last one frees the page, through the
 * page allocator: a compound page whole, anything else as order 0 (as
 * 6.1's __folio_put_small(); the other pages of a non-compound block are
 * not freed with it: mmemu reports that free as Bad page state).  A
 * put_page() on a page that has no reference left is reported as
 * CONFIG_DEBUG_VM's VM_BUG_ON_PAGE(page_ref_count(page) == 0).
 */
void __free_pages(struct page *page, unsigned int order);

static __always_inline void get_page(struct page *page)
{
	__atomic_fetch_add(&compound_head(page)->_refcount.counter, 1, __ATOMIC_SEQ_CST);
}

static __always_inline void put_page(struct page *page)
{
	struct page *head = compound_head(page);

	if (atomic_read(&head->_refcount) <= 1)	/* the last: the allocator frees */
		__free_pages(head, compound_order(head));
	else
		__atomic_fetch_sub(&head->_refcount.counter, 1, __ATOMIC_SEQ_CST);
}

/* The page allocator (mm/page_alloc.c), served by the host; lib/page_alloc.c. */
struct page *alloc_pages(gfp_t gfp, unsigned int order);
struct page *alloc_pages_node(int nid, gfp_t gfp, unsigned int order);
unsigned long __get_free_pages(gfp_t gfp, unsigned int order);
unsigned long get_zeroed_page(gfp_t gfp);
void free_pages(unsigned long addr, unsigned int order);

/*
 * alloc_pages_exact(size, gfp): PAGE_ALIGN(size) bytes of lowmem, as
 * order-0 pages of their own: the pages of the 2^get_order(size) block
 * beyond size go back to the allocator at once.  Free with
 * free_pages_exact(addr, size).  NULL on failure.  __GFP_COMP and
 * __GFP_HIGHMEM are refused with a warning and dropped, as in 6.1.
 */
void *alloc_pages_exact(size_t size, gfp_t gfp);
void *alloc_pages_exact_nid(int nid, size_t size, gfp_t gfp);
void free_pages_exact(void *virt, size_t size);

#define alloc_page(gfp_mask)		alloc_pages(gfp_mask, 0)
#define __get_free_page(gfp_mask)	__get_free_pages((gfp_mask), 0)
#define __get_dma_pages(gfp_mask, order) \
	__get_free_pages((gfp_mask) | GFP_DMA, (order))
#define __free_page(page)		__free_pages((page), 0)
#define free_page(addr)			free_pages((addr), 0)

#endif /* _MMEMU_PAGE_H */
