/*
 * mmemu/highmem.h - kmap, kmap_atomic, kmap_local and the fixmap
 * (include/linux/highmem.h, highmem-internal.h, include/asm-generic/fixmap.h,
 * arch/x86/include/asm/fixmap.h, pgtable_32_areas.h) for Linux 6.1 i386.
 *
 * A HighMem page has no permanent kernel address.  To touch it, map it:
 *
 *	void *p = kmap(page);		// may sleep: a pkmap slot, same address
 *	...				// for every kmap() until kunmap()
 *	kunmap(page);
 *
 *	void *q = kmap_local_page(page);	// this CPU's next fixmap slot;
 *	...					// unmap in reverse order
 *	kunmap_local(q);
 *
 *	void *r = kmap_atomic(page);	// kmap_local + preempt_disable()
 *	...				// + pagefault_disable(): must not sleep
 *	kunmap_atomic(r);
 *
 * Lowmem pages are always mapped: each of these returns page_address().
 * The maps themselves live on the host (mmemu/mm/highmem.py), which writes
 * the page tables; the depth of the kmap_local stack is the per-cpu word
 * kmap_atomic_idx (mmemu/sched.h), shared with the host.
 *
 * 6.1 facts worth knowing: LAST_PKMAP is 1024 slots (512 on 686-pae); pkmap slots are
 * recycled in bulk, with one TLB flush, when the search for a free slot
 * wraps; kmap_local nests at most KM_MAX_IDX - 1 = 15 deep (the 16th push
 * is "kernel BUG at mm/highmem.c:467!"); kunmap of a page that is not
 * kmapped is "kernel BUG at mm/highmem.c:358!".
 */
#ifndef _MMEMU_HIGHMEM_H
#define _MMEMU_HIGHMEM_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/string.h>
#include <mmemu/page.h>
#include <mmemu/mmzone.h>
#include <mmemu/sched.h>
#include <mmemu/tlbflush.h>
#include <mmemu/pgtable.h>

/* Hypercalls (mmemu/runtime/hc_highmem.py; range HC_HIGHMEM_BASE..+15). */
#define HC_KMAP			(HC_HIGHMEM_BASE + 0)	/* (page) -> address */
#define HC_KUNMAP		(HC_HIGHMEM_BASE + 1)	/* (page) */
#define HC_KMAP_ATOMIC		(HC_HIGHMEM_BASE + 2)	/* (page) -> address */
#define HC_KUNMAP_ATOMIC	(HC_HIGHMEM_BASE + 3)	/* (address) */
#define HC_KMAP_LOCAL_PAGE	(HC_HIGHMEM_BASE + 4)	/* (page) -> address */
#define HC_KUNMAP_LOCAL		(HC_HIGHMEM_BASE + 5)	/* (address) */
#define HC_SET_FIXMAP		(HC_HIGHMEM_BASE + 6)	/* (idx, phys, flags) -> 0/-EINVAL */
#define HC_CLEAR_FIXMAP		(HC_HIGHMEM_BASE + 7)	/* (idx) -> 0/-EINVAL */
#define HC_KMAP_FLUSH_UNUSED	(HC_HIGHMEM_BASE + 8)	/* () */
#define HC_KMAP_LOCAL_PFN	(HC_HIGHMEM_BASE + 9)	/* (pfn) -> address */
#define HC_KMAP_ATOMIC_PFN	(HC_HIGHMEM_BASE + 10)	/* (pfn) -> address */

/*
 * The persistent kmap area (pgtable_32_areas.h, highmem.h; mmemu/arch/x86/
 * flavour.py): below the LDT remap, PMD aligned, so it moves with the flavour.
 */
#ifdef CONFIG_X86_PAE
#define LAST_PKMAP		512
#define PKMAP_BASE		0xff000000UL
#else
#define LAST_PKMAP		1024
#define PKMAP_BASE		0xfec00000UL
#endif
#define LAST_PKMAP_MASK		(LAST_PKMAP - 1)
#define PKMAP_ADDR(nr)		(PKMAP_BASE + ((unsigned long)(nr) << PAGE_SHIFT))
#define PKMAP_NR(virt)		(((unsigned long)(virt) - PKMAP_BASE) >> PAGE_SHIFT)

/* The fixmap (arch/x86/include/asm/fixmap.h for the 686 build). */
#define FIXADDR_TOP		0xfffff000UL
#define KM_MAX_IDX		16
#define MMEMU_NR_CPUS		32
#define MMEMU_MAX_IO_APICS	64

enum fixed_addresses {
	FIX_HOLE,
	FIX_APIC_BASE,
	FIX_IO_APIC_BASE_0,
	FIX_IO_APIC_BASE_END = FIX_IO_APIC_BASE_0 + MMEMU_MAX_IO_APICS - 1,
	FIX_KMAP_BEGIN,
	FIX_KMAP_END = FIX_KMAP_BEGIN + (KM_MAX_IDX * MMEMU_NR_CPUS) - 1,
	FIX_PCIE_MCFG,
	FIX_TEXT_POKE1,
	FIX_TEXT_POKE0,
	__end_of_permanent_fixed_addresses,
	/* the boot-time slots, moved so that they do not cross a page table */
	FIX_BTMAP_END = 1024,
	FIX_BTMAP_BEGIN = FIX_BTMAP_END + 64 * 8 - 1,
	FIX_TBOOT_BASE,
	__end_of_fixed_addresses
};

#define FIXADDR_SIZE		((unsigned long)__end_of_permanent_fixed_addresses << PAGE_SHIFT)
#define FIXADDR_START		(FIXADDR_TOP - FIXADDR_SIZE)
#define FIXADDR_TOT_SIZE	((unsigned long)__end_of_fixed_addresses << PAGE_SHIFT)
#define FIXADDR_TOT_START	(FIXADDR_TOP - FIXADDR_TOT_SIZE)

#define __fix_to_virt(x)	(FIXADDR_TOP - ((unsigned long)(x) << PAGE_SHIFT))
#define __virt_to_fix(x)	((FIXADDR_TOP - ((unsigned long)(x) & PAGE_MASK)) >> PAGE_SHIFT)

static __always_inline unsigned long fix_to_virt(const unsigned int idx)
{
	return __fix_to_virt(idx);
}

static __always_inline unsigned long virt_to_fix(const unsigned long vaddr)
{
	return __virt_to_fix(vaddr);
}

/* PTE flags for __set_fixmap() (pgtable_types.h; NX on 686-pae). */
#define FIXMAP_PAGE_NORMAL	__PAGE_KERNEL			/* PAGE_KERNEL */
#define FIXMAP_PAGE_RO		__PAGE_KERNEL_RO		/* PAGE_KERNEL_RO */
#define FIXMAP_PAGE_NOCACHE	(__PAGE_KERNEL | _PAGE_PCD | _PAGE_PWT)	/* UC */
#define FIXMAP_PAGE_CLEAR	((pgprotval_t)0)

/*
 * __set_fixmap(): map fixmap slot idx to the page holding phys (flags 0
 * clears it).  An index past __end_of_fixed_addresses is 6.1's BUG() in
 * __native_set_fixmap(): reported, nothing mapped, -EINVAL returned.
 * On 686-pae phys and flags are 64 bits: their high words follow.
 */
static __always_inline int __set_fixmap(unsigned int idx, phys_addr_t phys,
					pgprotval_t flags)
{
#ifdef CONFIG_X86_PAE
	return (int)hypercall5(HC_SET_FIXMAP, idx, __mmemu_lo32(phys), __mmemu_lo32(flags),
			       __mmemu_hi32(phys), __mmemu_hi32(flags));
#else
	return (int)hypercall3(HC_SET_FIXMAP, idx, phys, flags);
#endif
}

#define set_fixmap(idx, phys)		__set_fixmap((idx), (phys), FIXMAP_PAGE_NORMAL)
#define set_fixmap_nocache(idx, phys)	__set_fixmap((idx), (phys), FIXMAP_PAGE_NOCACHE)
#define clear_fixmap(idx)		((int)hypercall1(HC_CLEAR_FIXMAP, (idx)))

/* set_fixmap_offset(): map, and return the address of phys itself. */
#define set_fixmap_offset(idx, phys)					\
({									\
	__set_fixmap((idx), (phys), FIXMAP_PAGE_NORMAL);		\
	fix_to_virt(idx) + ((phys) & (PAGE_SIZE - 1));			\
})

/* -- kmap / kunmap ------------------------------------------------------ */

/* kmap(): may sleep (for a free pkmap slot), so never in atomic context. */
static __always_inline void *kmap(struct page *page)
{
	__might_sleep("include/linux/highmem-internal.h", 44);
	if (!PageHighMem(page))
		return lowmem_page_address(page);
	return (void *)hypercall1(HC_KMAP, (unsigned long)page);
}

static __always_inline void kunmap(struct page *page)
{
	__might_sleep("include/linux/highmem-internal.h", 55);
	if (!PageHighMem(page))
		return;
	hypercall1(HC_KUNMAP, (unsigned long)page);
}

/* kmap_flush_unused(): recycle the pkmap slots nobody uses, now. */
static __always_inline void kmap_flush_unused(void)
{
	hypercall0(HC_KMAP_FLUSH_UNUSED);
}

static __always_inline bool is_kmap_addr(const void *x)
{
	unsigned long addr = (unsigned long)x;

	return addr >= PKMAP_ADDR(0) && addr < PKMAP_ADDR(LAST_PKMAP);
}

/* -- kmap_local / kmap_atomic --------------------------------------------- */

static __always_inline void *kmap_local_page(struct page *page)
{
	if (!PageHighMem(page))
		return lowmem_page_address(page);
	return (void *)hypercall1(HC_KMAP_LOCAL_PAGE, (unsigned long)page);
}

static __always_inline void *kmap_local_pfn(unsigned long pfn)
{
	return (void *)hypercall1(HC_KMAP_LOCAL_PFN, pfn);
}

/*
 * The host clears a kmap_local slot's PTE but leaves this CPU's TLB alone;
 * the unmap then flushes the one entry itself, as 6.1's
 * kunmap_local_indexed() does with arch_kmap_local_post_unmap(addr), which
 * is flush_tlb_one_kernel(addr): the address passed, and only when it is
 * in the kmap_local slots.
 */
static __always_inline void arch_kmap_local_post_unmap(unsigned long addr)
{
	unsigned long page = addr & PAGE_MASK;

	if (page >= __fix_to_virt(FIX_KMAP_END) && page <= __fix_to_virt(FIX_KMAP_BEGIN))
		flush_tlb_one_kernel(addr);
}

static __always_inline void __kunmap_local(const void *vaddr)
{
	unsigned long addr = (unsigned long)vaddr;

	/* A lowmem page's address was never a slot: nothing to undo. */
	if (addr >= PAGE_OFFSET && addr < (unsigned long)high_memory)
		return;
	hypercall1(HC_KUNMAP_LOCAL, addr);
	arch_kmap_local_post_unmap(addr);
}

static __always_inline void *kmap_atomic(struct page *page)
{
	return (void *)hypercall1(HC_KMAP_ATOMIC, (unsigned long)page);
}

static __always_inline void *kmap_atomic_pfn(unsigned long pfn)
{
	return (void *)hypercall1(HC_KMAP_ATOMIC_PFN, pfn);
}

static __always_inline void __kunmap_atomic(const void *addr)
{
	hypercall1(HC_KUNMAP_ATOMIC, (unsigned long)addr);
	arch_kmap_local_post_unmap((unsigned long)addr);
}

/* Unmap with the address the map returned, not the page (a BUILD_BUG_ON in Linux). */
#define __mmemu_not_a_page(addr, what)					\
	_Static_assert(!__builtin_types_compatible_p(__typeof__(addr),	\
						      struct page *),	\
		       what "() takes the address the map returned, not the struct page *")

#define kunmap_atomic(__addr)						\
	do {								\
		__mmemu_not_a_page(__addr, "kunmap_atomic");		\
		__kunmap_atomic(__addr);				\
	} while (0)

#define kunmap_local(__addr)						\
	do {								\
		__mmemu_not_a_page(__addr, "kunmap_local");		\
		__kunmap_local(__addr);					\
	} while (0)

/* -- helpers built on kmap_local (include/linux/highmem.h) ----------------- */

static inline void clear_highpage(struct page *page)
{
	void *kaddr = kmap_local_page(page);

	memset(kaddr, 0, PAGE_SIZE);
	kunmap_local(kaddr);
}

static inline void copy_highpage(struct page *to, struct page *from)
{
	char *vfrom = kmap_local_page(from);
	char *vto = kmap_local_page(to);

	memcpy(vto, vfrom, PAGE_SIZE);
	kunmap_local(vto);
	kunmap_local(vfrom);
}

static inline void memcpy_page(struct page *dst_page, size_t dst_off,
			       struct page *src_page, size_t src_off, size_t len)
{
	char *dst = kmap_local_page(dst_page);
	char *src = kmap_local_page(src_page);

	memcpy(dst + dst_off, src + src_off, len);
	kunmap_local(src);
	kunmap_local(dst);
}

static inline void memset_page(struct page *page, size_t offset, int val, size_t len)
{
	char *addr = kmap_local_page(page);

	memset(addr + offset, val, len);
	kunmap_local(addr);
}

static inline void memcpy_from_page(char *to, struct page *page, size_t offset, size_t len)
{
	char *from = kmap_local_page(page);

	memcpy(to, from + offset, len);
	kunmap_local(from);
}

static inline void memcpy_to_page(struct page *page, size_t offset, const char *from,
				  size_t len)
{
	char *to = kmap_local_page(page);

	memcpy(to + offset, from, len);
	kunmap_local(to);
}

static inline void memzero_page(struct page *page, size_t offset, size_t len)
{
	memset_page(page, offset, 0, len);
}

/* nr_free_highpages() and totalhigh_pages() are in mmemu/mmzone.h. */

#endif /* _MMEMU_HIGHMEM_H */
