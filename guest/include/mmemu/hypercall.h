/*
 * mmemu/hypercall.h - the hypercall ABI, guest side.
 *
 * Mirrors mmemu/runtime/abi.py (the definition; change both together, and
 * tests/test_build.py checks that they agree).
 *
 * A hypercall is one 32-bit read: the guest stores up to seven 32-bit
 * arguments in the mailbox (words 0..6 at HC_MAILBOX_VIRT), then reads word
 * nr of the doorbell page, `movl HC_DOORBELL_VIRT + 4 * nr, %eax`.  The
 * doorbell is an MMIO page of the host's; its read runs the call, and the
 * result is the value read.  A call with a second result leaves it in
 * mailbox word HC_WORD_RET2.  A call that ends the run or switches to a
 * user task (exit, BUG, run_user) stops the CPU on the read itself.
 *
 * The second half of the mailbox page holds the boot information (struct
 * mmemu_bootinfo), which the host writes once before the program starts,
 * and the per-cpu words (struct mmemu_percpu).
 *
 * Usable from assembly (guest/lib/start.S) for the constants.
 */
#ifndef _MMEMU_HYPERCALL_H
#define _MMEMU_HYPERCALL_H

#define HC_MAX			256
#define HC_MAILBOX_PHYS		0x1000
#define HC_MAILBOX_VIRT		0xC0001000	/* PAGE_OFFSET + HC_MAILBOX_PHYS */
#define HC_DOORBELL_PHYS	0x5000	/* MMIO: word nr is hypercall nr */
#define HC_DOORBELL_VIRT	0xC0005000	/* PAGE_OFFSET + HC_DOORBELL_PHYS */
#define HC_DOORBELL_SIZE	0x1000
#define HC_NARGS		7	/* args in words 0..6 */
#define HC_WORD_RET2		7	/* a second result */
#define HC_WORD_CTOR		8	/* slab: pending constructor work */

#define BOOTINFO_OFFSET		0x800
#define BOOTINFO_MAGIC		0x4D4D454D	/* "MEMM" */
#define PERCPU_OFFSET		0xC00	/* the one CPU's per-cpu words */

/* Hypercall numbers, by subsystem range (abi.py). */
#define HC_NOP			0
#define HC_EXIT			1	/* (status) */
#define HC_PRINTK		2	/* (buf, len) */
#define HC_BUG			3	/* (file, line, condition text) */
#define HC_WARN			4	/* (file, line, condition text, flags) */
#define HC_CHECK		5	/* () -> 0 when consistent */

#define HC_ALLOC_PAGES		16	/* (gfp, order, nid or -1) -> struct page * */
#define HC_FREE_PAGES		17	/* (page, order) */
#define HC_GET_FREE_PAGES	18	/* (gfp, order) -> address */
#define HC_FREE_PAGES_ADDR	19	/* (addr, order) */
#define HC_PAGE_ADDRESS		20	/* (page) -> address or 0 */
#define HC_NR_FREE_PAGES	21	/* (zone id or -1) -> free pages */
#define HC_ALLOC_PAGES_EXACT	22	/* (size, gfp, nid or -1) -> address */

#define HC_SLAB_BASE		32	/* 32..63: slab */
#define HC_VMALLOC_BASE		64	/* 64..79: vmalloc and vmap */
#define HC_IO_BASE		80	/* 80..95: ioremap */
#define HC_HIGHMEM_BASE		96	/* 96..111: kmap, kmap_atomic, fixmap */
#define HC_SCHED_BASE		112	/* 112..127: preempt count, irqs */
#define HC_TASK_BASE		128	/* 128..143: user-mode tasks */
#define HC_DEBUG_BASE		144	/* 144..159: fuzzing and test helpers */

#ifndef __ASSEMBLER__

#include <mmemu/types.h>
#include <mmemu/compiler.h>

/* Boot information at HC_MAILBOX_VIRT + BOOTINFO_OFFSET (abi.BOOTINFO_FIELDS). */
struct mmemu_bootinfo {
	u32 magic;		/* BOOTINFO_MAGIC */
	u32 mem_map;		/* struct page *mem_map (virtual) */
	u32 max_pfn;
	u32 max_low_pfn;
	u32 page_offset;
	u32 vmalloc_start;
	u32 vmalloc_end;
	u32 pkmap_base;
	u32 fixaddr_start;
	u32 fixaddr_top;
	u32 movable_is_highmem;	/* 1 when ZONE_MOVABLE came out of HighMem */
	u32 nr_nodes;
	u32 kmalloc_caches;	/* slab: the kmalloc cache table (0 until slab is up) */
	u32 percpu;		/* this CPU's struct mmemu_percpu */
	u32 mm_globals;		/* struct mmemu_mm_globals: node_data[], totals (mmzone.h) */
	u32 kernel_pgd;		/* swapper_pg_dir, virtual (init_mm.pgd) */
	u32 fast_free_bits;	/* mmemu: a bit per pfn whose order-0 free may skip the host */
	u32 fast_free_pfns;	/* the pfns it covers */
};

/*
 * Per-cpu words of the one CPU at HC_MAILBOX_VIRT + PERCPU_OFFSET
 * (abi.PERCPU_FIELDS).  The guest changes preempt_count and irqs_disabled
 * itself, as Linux's per-cpu __preempt_count; the host reads them to know
 * whether a caller is in atomic context.
 */
struct mmemu_percpu {
	u32 preempt_count;
	u32 irqs_disabled;
	u32 kmap_atomic_idx;	/* highmem: depth of the kmap_atomic stack */
	u32 current_task;	/* tasks: the running task's id (0: the program) */
	u32 numa_node;		/* numa_node_id(): this CPU's node */
};

#define MMEMU_BOOTINFO \
	((const volatile struct mmemu_bootinfo *)(HC_MAILBOX_VIRT + BOOTINFO_OFFSET))
#define MMEMU_PERCPU \
	((volatile struct mmemu_percpu *)(HC_MAILBOX_VIRT + PERCPU_OFFSET))
#define HC_MAILBOX	((volatile u32 *)HC_MAILBOX_VIRT)
#define HC_DOORBELL	((volatile u32 *)HC_DOORBELL_VIRT)

/*
 * The doorbell read itself.  Inlined always, so the instruction sits in the
 * function that makes the call (the host symbolizes it as the call site),
 * and written as one asm statement with a "memory" clobber, so that every
 * store the call depends on (the mailbox, a buffer it reads) is done first.
 */
static __always_inline unsigned long __hypercall(unsigned int nr)
{
	unsigned long ret;

	__asm__ __volatile__("movl %1, %0"
			     : "=a"(ret)
			     : "m"(HC_DOORBELL[nr])
			     : "memory");
	return ret;
}

static __always_inline unsigned long hypercall0(unsigned int nr)
{
	return __hypercall(nr);
}

static __always_inline unsigned long hypercall1(unsigned int nr, unsigned long a0)
{
	HC_MAILBOX[0] = a0;
	return __hypercall(nr);
}

/* Each one stores its last argument and hands the rest to the one below. */
static __always_inline unsigned long hypercall2(unsigned int nr, unsigned long a0, unsigned long a1)
{
	HC_MAILBOX[1] = a1;
	return hypercall1(nr, a0);
}

static __always_inline unsigned long hypercall3(unsigned int nr, unsigned long a0, unsigned long a1, unsigned long a2)
{
	HC_MAILBOX[2] = a2;
	return hypercall2(nr, a0, a1);
}

static __always_inline unsigned long hypercall4(unsigned int nr, unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3)
{
	HC_MAILBOX[3] = a3;
	return hypercall3(nr, a0, a1, a2);
}

static __always_inline unsigned long hypercall5(unsigned int nr, unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4)
{
	HC_MAILBOX[4] = a4;
	return hypercall4(nr, a0, a1, a2, a3);
}

static __always_inline unsigned long hypercall6(unsigned int nr, unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)
{
	HC_MAILBOX[5] = a5;
	return hypercall5(nr, a0, a1, a2, a3, a4);
}

static __always_inline unsigned long hypercall7(unsigned int nr, unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6)
{
	HC_MAILBOX[6] = a6;
	return hypercall6(nr, a0, a1, a2, a3, a4, a5);
}

/* The second result of the last hypercall that gives one. */
static __always_inline unsigned long hypercall_ret2(void)
{
	return HC_MAILBOX[HC_WORD_RET2];
}

/* Run mmemu's consistency checkers now (like CONFIG_DEBUG_VM); 0 = consistent. */
static __always_inline int mmemu_check(void)
{
	return (int)hypercall0(HC_CHECK);
}

#endif /* !__ASSEMBLER__ */
#endif /* _MMEMU_HYPERCALL_H */
