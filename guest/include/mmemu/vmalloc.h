/*
 * mmemu/vmalloc.h - vmalloc, vfree, vmap and friends (include/linux/vmalloc.h).
 *
 * Virtually contiguous memory in [VMALLOC_START, VMALLOC_END): each call is
 * one hypercall to mmemu/mm/vmalloc.py, which takes order-0 pages from the
 * buddy allocator (GFP_KERNEL | __GFP_HIGHMEM: HighMem pages when there are
 * any, scattered physically) and maps them through the kernel page tables.
 * A guard page follows every area and is never mapped, so running off the
 * end of a vmalloc'd buffer oopses.  The host records the caller of each
 * area (the code that made the call) for /proc/vmallocinfo: the wrappers
 * pass _THIS_IP_ as their last argument, where Linux's vmalloc() takes
 * __builtin_return_address(0), so the host need not read the registers.
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
#include <mmemu/pgtable.h>		/* pgprot_t, PAGE_KERNEL */
#include <mmemu/tlbflush.h>

/* ip: the caller's address (_THIS_IP_); 0 lets the host find it from the stack */
#define HC_VMALLOC		(HC_VMALLOC_BASE + 0)	/* (size, ip) -> address */
#define HC_VZALLOC		(HC_VMALLOC_BASE + 1)	/* (size, ip) -> address */
#define HC___VMALLOC		(HC_VMALLOC_BASE + 2)	/* (size, gfp, ip) -> address */
#define HC_VFREE		(HC_VMALLOC_BASE + 3)	/* (addr, ip) -> pages to flush */
#define HC_VMAP			(HC_VMALLOC_BASE + 4)	/* (pages, count, flags, prot, ip) */
#define HC_VUNMAP		(HC_VMALLOC_BASE + 5)	/* (addr, ip) -> pages to flush */
#define HC_VMALLOC_TO_PAGE	(HC_VMALLOC_BASE + 6)	/* (addr) -> struct page * */
#define HC_VMALLOC_NODE		(HC_VMALLOC_BASE + 7)	/* (size, nid, ip) -> address */
#define HC_VMALLOC_NR_PAGES	(HC_VMALLOC_BASE + 8)	/* () -> pages vmalloc holds */
#define HC___VMALLOC_NODE	(HC_VMALLOC_BASE + 9)	/* (size, align, gfp, vm_flags, nid, ip) */

/* bits in flags of vmalloc's vm_struct (include/linux/vmalloc.h, 6.1) */
#define VM_IOREMAP		0x00000001	/* ioremap() and friends */
#define VM_ALLOC		0x00000002	/* vmalloc() */
#define VM_MAP			0x00000004	/* vmap()ed pages */
#define VM_USERMAP		0x00000008
#define VM_NO_GUARD		0x00000040	/* refused by vmap(), as in 6.1 */
#define VM_MAP_PUT_PAGES	0x00000200	/* vfree() frees the vmap()ed pages */

/*
 * _THIS_IP_ (include/linux/instruction_pointer.h): the address of the code
 * using it.  The wrappers below are inlined, so that is inside their caller.
 * An asm label rather than Linux's &&label: clang gives a label in an
 * inlined function no real address.
 */
#ifndef _THIS_IP_
#define _THIS_IP_							\
({									\
	unsigned long __here;						\
	__asm__ __volatile__("movl $1f, %0\n1:" : "=r"(__here));	\
	__here;								\
})
#endif

#define VMALLOC_START	((unsigned long)MMEMU_BOOTINFO->vmalloc_start)
#define VMALLOC_END	((unsigned long)MMEMU_BOOTINFO->vmalloc_end)

/* void *vmalloc(unsigned long size): NULL on failure (or for size 0). */
static __always_inline void *vmalloc(unsigned long size)
{
	return (void *)hypercall2(HC_VMALLOC, size, _THIS_IP_);
}

/* void *vzalloc(unsigned long size): vmalloc(), zeroed. */
static __always_inline void *vzalloc(unsigned long size)
{
	return (void *)hypercall2(HC_VZALLOC, size, _THIS_IP_);
}

/* void *__vmalloc(unsigned long size, gfp_t gfp_mask) */
static __always_inline void *__vmalloc(unsigned long size, gfp_t gfp_mask)
{
	return (void *)hypercall3(HC___VMALLOC, size, gfp_mask, _THIS_IP_);
}

/* void *vmalloc_node(unsigned long size, int node) */
static __always_inline void *vmalloc_node(unsigned long size, int node)
{
	return (void *)hypercall3(HC_VMALLOC_NODE, size, (unsigned long)node, _THIS_IP_);
}

/*
 * __vmalloc_node(size, align, gfp, vm_flags, node, caller): the common
 * path of the calls below (mm/vmalloc.c:__vmalloc_node_range() over the
 * whole vmalloc area, PAGE_KERNEL).  vm_flags may be VM_USERMAP.
 */
static __always_inline void *__vmalloc_node(unsigned long size, unsigned long align,
					    gfp_t gfp_mask, unsigned long vm_flags,
					    int node, unsigned long caller)
{
	return (void *)hypercall6(HC___VMALLOC_NODE, size, align, gfp_mask, vm_flags,
				  (unsigned long)node, caller);
}

/*
 * GFP_VMALLOC32: on i386 GFP_DMA32 | GFP_KERNEL, which (there being no
 * ZONE_DMA32) allocates from ZONE_NORMAL: vmalloc_32() memory is lowmem,
 * never HighMem, so its pages have a permanent address.
 */
#define GFP_VMALLOC32		(GFP_DMA32 | GFP_KERNEL)
#define SHMLBA			PAGE_SIZE

/* void *vmalloc_32(unsigned long size): vmalloc() from 32-bit addressable pages. */
static __always_inline void *vmalloc_32(unsigned long size)
{
	return __vmalloc_node(size, 1, GFP_VMALLOC32, 0, NUMA_NO_NODE, _THIS_IP_);
}

/*
 * void *vmalloc_user(unsigned long size): zeroed memory for mapping to user
 * space (VM_USERMAP: "user" in /proc/vmallocinfo), SHMLBA aligned.
 */
static __always_inline void *vmalloc_user(unsigned long size)
{
	return __vmalloc_node(size, SHMLBA, GFP_KERNEL | __GFP_ZERO, VM_USERMAP,
			      NUMA_NO_NODE, _THIS_IP_);
}

/* void *vmalloc_32_user(unsigned long size): both of the above. */
static __always_inline void *vmalloc_32_user(unsigned long size)
{
	return __vmalloc_node(size, SHMLBA, GFP_VMALLOC32 | __GFP_ZERO, VM_USERMAP,
			      NUMA_NO_NODE, _THIS_IP_);
}

/*
 * vfree(), vunmap() and iounmap(): the host clears the area's PTEs and
 * returns how many pages it spans (0 when nothing was torn down), its start
 * as the second result; the TLB is the caller's to flush, which it does as
 * 6.1 does for a freed area (flush_tlb_kernel_range()).
 */
static __always_inline void __vunmap_flush(unsigned long nr_pages)
{
	unsigned long start;

	if (!nr_pages)
		return;
	start = hypercall_ret2();
	flush_tlb_kernel_range(start, start + (nr_pages << PAGE_SHIFT));
}

/*
 * void vfree(const void *addr): unmaps the area, flushes the TLB and gives
 * its pages back.  NULL is a no-op; anything that is not the start of a
 * vm area is reported ("Trying to vfree() nonexistent vm area") and ignored.
 */
static __always_inline void __vfree(const void *addr, unsigned long caller)
{
	__vunmap_flush(hypercall2(HC_VFREE, (unsigned long)addr, caller));
}

static __always_inline void vfree(const void *addr)
{
	__vfree(addr, _THIS_IP_);
}

/*
 * void *vmap(struct page **pages, unsigned int count, unsigned long flags,
 *            pgprot_t prot): map count pages contiguously (PAGE_KERNEL is NX on
 *            686-pae: pass PAGE_KERNEL_EXEC for code).
 */
static __always_inline void *vmap(struct page **pages, unsigned int count,
				  unsigned long flags, pgprot_t prot)
{
#ifdef CONFIG_X86_PAE		/* a 64-bit pgprot_t: its high word (NX) goes last */
	return (void *)hypercall6(HC_VMAP, (unsigned long)pages, count, flags,
				  __mmemu_lo32(pgprot_val(prot)), _THIS_IP_,
				  __mmemu_hi32(pgprot_val(prot)));
#else
	return (void *)hypercall5(HC_VMAP, (unsigned long)pages, count, flags,
				  pgprot_val(prot), _THIS_IP_);
#endif
}

/* void vunmap(const void *addr): undo vmap(); the pages stay allocated. */
static __always_inline void vunmap(const void *addr)
{
	__vunmap_flush(hypercall2(HC_VUNMAP, (unsigned long)addr, _THIS_IP_));
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

/*
 * bool is_vmalloc_addr(const void *x): VMALLOC_START <= x < VMALLOC_END,
 * whether or not anything is mapped there (include/linux/mm.h); no
 * hypercall, the range is in the boot information.  ioremap() and vmap()
 * areas are in that range too.
 */
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
