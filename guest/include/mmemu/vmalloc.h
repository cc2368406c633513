/*
 * mmemu/vmalloc.h - vmalloc, vfree, vmap and friends (include/linux/vmalloc.h).
 *
 * Virtually contiguous memory in [VMALLOC_START, VMALLOC_END): each call is
 * one hypercall to mmemu/mm/vmalloc.py, which takes order-0 pages from the
 * buddy allocator (GFP_KERNEL | __GFP_HIGHMEM: HighMem pages when there are
 * any, scattered physically) and maps them through the kernel page tables.
 * A guard page follows every area and is never mapped, so running off the
 * end of a vmalloc'd buffer oopses.  The host records the caller of each
 * area (the code that made the call) for /proc/vmallocinfo.
 *
 * Hypercall numbers mirror mmemu/runtime/hc_vmalloc.py.
 */
#ifndef _MMEMU_VMALLOC_H
#define _MMEMU_VMALLOC_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/hypercall.h>
#include <mmemu/gfp.h>
#include <mmemu/page.h>

#define HC_VMALLOC		(HC_VMALLOC_BASE + 0)	/* (size) -> address */
#define HC_VZALLOC		(HC_VMALLOC_BASE + 1)	/* (size) -> address */
#define HC___VMALLOC		(HC_VMALLOC_BASE + 2)	/* (size, gfp) -> address */
#define HC_VFREE		(HC_VMALLOC_BASE + 3)	/* (addr) */
#define HC_VMAP			(HC_VMALLOC_BASE + 4)	/* (pages, count, flags, prot) */
#define HC_VUNMAP		(HC_VMALLOC_BASE + 5)	/* (addr) */
#define HC_VMALLOC_TO_PAGE	(HC_VMALLOC_BASE + 6)	/* (addr) -> struct page * */
#define HC_VMALLOC_NODE		(HC_VMALLOC_BASE + 7)	/* (size, nid) -> address */
#define HC_VMALLOC_NR_PAGES	(HC_VMALLOC_BASE + 8)	/* () -> pages vmalloc holds */

/* bits in flags of vmalloc's vm_struct (include/linux/vmalloc.h, 6.1) */
#define VM_IOREMAP		0x00000001	/* ioremap() and friends */
#define VM_ALLOC		0x00000002	/* vmalloc() */
#define VM_MAP			0x00000004	/* vmap()ed pages */
#define VM_USERMAP		0x00000008
#define VM_NO_GUARD		0x00000040	/* refused by vmap(), as in 6.1 */
#define VM_MAP_PUT_PAGES	0x00000200	/* vfree() frees the vmap()ed pages */

#define VMALLOC_START	((unsigned long)MMEMU_BOOTINFO->vmalloc_start)
#define VMALLOC_END	((unsigned long)MMEMU_BOOTINFO->vmalloc_end)

/*
 * Page protections (arch/x86/include/asm/pgtable_types.h, non-PAE): the low
 * bits of a PTE.  PAGE_KERNEL is P|RW|A|D|G = 0x163.
 */
#ifndef _MMEMU_PGPROT_T
#define _MMEMU_PGPROT_T
typedef struct { unsigned long pgprot; } pgprot_t;
#define __pgprot(x)		((pgprot_t){ (x) })
#define pgprot_val(x)		((x).pgprot)
#define _PAGE_PRESENT		0x001
#define _PAGE_RW		0x002
#define _PAGE_PWT		0x008
#define _PAGE_PCD		0x010
#define _PAGE_ACCESSED		0x020
#define _PAGE_DIRTY		0x040
#define _PAGE_GLOBAL		0x100
#define __PAGE_KERNEL		0x163
#define __PAGE_KERNEL_RO	0x161
#define __PAGE_KERNEL_NOCACHE	0x173
#define PAGE_KERNEL		__pgprot(__PAGE_KERNEL)
#define PAGE_KERNEL_RO		__pgprot(__PAGE_KERNEL_RO)
#define PAGE_KERNEL_NOCACHE	__pgprot(__PAGE_KERNEL_NOCACHE)
#endif

/* void *vmalloc(unsigned long size): NULL on failure (or for size 0). */
static __always_inline void *vmalloc(unsigned long size)
{
	return (void *)hypercall1(HC_VMALLOC, size);
}

/* void *vzalloc(unsigned long size): vmalloc(), zeroed. */
static __always_inline void *vzalloc(unsigned long size)
{
	return (void *)hypercall1(HC_VZALLOC, size);
}

/* void *__vmalloc(unsigned long size, gfp_t gfp_mask) */
static __always_inline void *__vmalloc(unsigned long size, gfp_t gfp_mask)
{
	return (void *)hypercall2(HC___VMALLOC, size, gfp_mask);
}

/* void *vmalloc_node(unsigned long size, int node) */
static __always_inline void *vmalloc_node(unsigned long size, int node)
{
	return (void *)hypercall2(HC_VMALLOC_NODE, size, (unsigned long)node);
}

/*
 * void vfree(const void *addr): unmaps the area, flushes the TLB and gives
 * its pages back.  NULL is a no-op; anything that is not the start of a
 * vm area is reported ("Trying to vfree() nonexistent vm area") and ignored.
 */
static __always_inline void vfree(const void *addr)
{
	hypercall1(HC_VFREE, (unsigned long)addr);
}

/*
 * void *vmap(struct page **pages, unsigned int count, unsigned long flags,
 *            pgprot_t prot): map count pages contiguously.
 */
static __always_inline void *vmap(struct page **pages, unsigned int count,
				  unsigned long flags, pgprot_t prot)
{
	return (void *)hypercall4(HC_VMAP, (unsigned long)pages, count, flags,
				  pgprot_val(prot));
}

/* void vunmap(const void *addr): undo vmap(); the pages stay allocated. */
static __always_inline void vunmap(const void *addr)
{
	hypercall1(HC_VUNMAP, (unsigned long)addr);
}

/* struct page *vmalloc_to_page(const void *addr): walks the page tables. */
static __always_inline struct page *vmalloc_to_page(const void *addr)
{
	return (struct page *)hypercall1(HC_VMALLOC_TO_PAGE, (unsigned long)addr);
}

static __always_inline unsigned long vmalloc_to_pfn(const void *addr)
{
	return page_to_pfn(vmalloc_to_page(addr));
}

/* bool is_vmalloc_addr(const void *x): no hypercall, the range is in bootinfo. */
static __always_inline bool is_vmalloc_addr(const void *x)
{
	unsigned long addr = (unsigned long)x;

	return addr >= VMALLOC_START && addr < VMALLOC_END;
}

/* Pages vmalloc() holds now (/proc/meminfo's VmallocUsed is this * 4 kB). */
static __always_inline unsigned long vmalloc_nr_pages(void)
{
	return hypercall0(HC_VMALLOC_NR_PAGES);
}

#endif /* _MMEMU_VMALLOC_H */
