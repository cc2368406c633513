/*
 * mmemu.h - the one header a guest program includes.
 *
 * A guest program is `int main(void)` running as kernel code in the kernel
 * image's text (0xC1000000 on the reference 686 kernel) inside mmemu.  This header gives it the Linux 6.1 kernel's names for the
 * memory-management API; each call below is served by mmemu's allocators
 * through a hypercall (see mmemu/hypercall.h and mmemu/runtime/abi.py).
 *
 * Guest programs include only <mmemu.h>; the per-subsystem headers below are
 * the SDK's own layout and may move.
 */
#ifndef _MMEMU_H
#define _MMEMU_H

#include <mmemu/types.h>	/* u8..u64, size_t, bool, NULL, atomic_t */
#include <mmemu/compiler.h>	/* __sdk, likely(), __printf(), ... */
#include <mmemu/hypercall.h>	/* the ABI: hypercallN(), bootinfo */
#include <mmemu/string.h>	/* memset, memcpy, strlen, ... */
#include <mmemu/printk.h>	/* printk, KERN_*, pr_info, snprintf */
#include <mmemu/bug.h>		/* BUG_ON, WARN_ON, WARN */
#include <mmemu/gfp.h>		/* GFP flags (6.1 values), zones */
#include <mmemu/page.h>		/* struct page, mem_map, alloc_pages, ... */
#include <mmemu/mmzone.h>	/* pg_data_t, struct zone, for_each_zone, si_meminfo */
#include <mmemu/pgtable.h>	/* pgd_offset_k .. pte_offset_kernel, lookup_address */
#include <mmemu/sched.h>	/* preempt_disable, spin_lock, might_sleep */
#include <mmemu/vmalloc.h>	/* vmalloc, vfree, vmap, vmalloc_to_page */
#include <mmemu/highmem.h>	/* kmap, kunmap, kmap_atomic, kmap_local */
#include <mmemu/io.h>		/* ioremap, iounmap, readl, writel */
#include <mmemu/uaccess.h>	/* get_kernel_nofault, copy_from_kernel_nofault */
#if __has_include(<mmemu/slab.h>)
#include <mmemu/slab.h>		/* kmalloc, kfree, kmem_cache_* */
#endif

/*
 * Later subsystems add their header here, one line each, and their library
 * code as guest/lib/<subsystem>.c (the build picks up every file there):
 */

#endif /* _MMEMU_H */
