/*
 * mmemu/tlbflush.h - this CPU's TLB (arch/x86/include/asm/tlbflush.h,
 * arch/x86/mm/tlb.c), for the SDK's unmap wrappers.
 *
 * The host changes the page tables while it serves a hypercall, but it
 * flushes the TLB only for its own (Python) callers: a whole-TLB flush from
 * the host costs more than most calls.  Where 6.1's kernel code flushes
 * after an unmap (kunmap_local, vfree, iounmap), the SDK wrapper does it
 * here when the call returns, with the instructions Linux uses.
 */
#ifndef _MMEMU_TLBFLUSH_H
#define _MMEMU_TLBFLUSH_H

#include <mmemu/types.h>
#include <mmemu/compiler.h>
#include <mmemu/page.h>

/* arch/x86/mm/tlb.c: a range of more pages than this flushes everything */
#define tlb_single_page_flush_ceiling	33

/* flush_tlb_one_kernel(): forget one kernel address's translation (invlpg). */
static __always_inline void flush_tlb_one_kernel(unsigned long addr)
{
	__asm__ __volatile__("invlpg (%0)" : : "r"(addr) : "memory");
}

/* flush_tlb_local(): forget every translation (a CR3 reload; mmemu has no PGE). */
static __always_inline void flush_tlb_local(void)
{
	unsigned long cr3;

	__asm__ __volatile__("movl %%cr3, %0\n\tmovl %0, %%cr3" : "=r"(cr3) : : "memory");
}

/* flush_tlb_kernel_range(): [start, end), page by page up to the ceiling. */
static __always_inline void flush_tlb_kernel_range(unsigned long start, unsigned long end)
{
	unsigned long addr;

	if (end - start > ((unsigned long)tlb_single_page_flush_ceiling << PAGE_SHIFT)) {
		flush_tlb_local();
		return;
	}
	for (addr = start; addr < end; addr += PAGE_SIZE)
		flush_tlb_one_kernel(addr);
}

#endif /* _MMEMU_TLBFLUSH_H */
