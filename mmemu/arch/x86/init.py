"""Boot-time page tables: swapper_pg_dir, the direct map, and the tables
Linux preallocates for the pkmap area and the fixmap.

Models arch/x86/mm/init_32.c: kernel_physical_mapping_init(),
permanent_kmaps_init(), early_ioremap_page_table_range_init(), and
paging_init().  The direct map covers pfn 0 .. max_low_pfn at PAGE_OFFSET
with __PAGE_KERNEL_LARGE 4 MiB pages where a whole 4 MiB block is lowmem and
holds no part of the kernel image, and __PAGE_KERNEL 4 KiB pages elsewhere
(all of it with direct_map: 4K).  vmalloc page tables are made on demand,
as on Linux.  Differs: the guest image's text is made read-only later, by
mark_rodata_ro() once it is loaded; the CPU entry area and LDT remap are
not mapped (no code runs there).
"""
from array import array

from mmemu.arch.x86.pgtable import (
    PageTable, __PAGE_KERNEL, __PAGE_KERNEL_LARGE, __PAGE_KERNEL_RO, _KERNPG_TABLE,
)
from mmemu.layout import (
    FIXADDR_TOP, FIXADDR_TOT_START, LAST_PKMAP, PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE,
    PKMAP_BASE, PMD_MASK, PMD_SIZE, KERNEL_PHYS,
)

PFNS_PER_PMD = PMD_SIZE >> PAGE_SHIFT


def paging_init(pm, layout, cfg, alloc, flush_tlb):
    """Build swapper_pg_dir and the boot tables; returns the PageTable."""
    pgd = alloc(PAGE_SIZE, PAGE_SIZE, "swapper_pg_dir")
    pt = PageTable(pm, pgd, lambda: alloc(PAGE_SIZE, PAGE_SIZE, "pgtable"), flush_tlb)
    image = (KERNEL_PHYS >> PAGE_SHIFT, (KERNEL_PHYS + cfg.kernel_image) >> PAGE_SHIFT)
    kernel_physical_mapping_init(pt, layout.max_low_pfn, image, cfg.direct_map == "4M", alloc)
    page_table_range_init(pt, PKMAP_BASE, PKMAP_BASE + LAST_PKMAP * PAGE_SIZE)
    page_table_range_init(pt, FIXADDR_TOT_START & PMD_MASK, FIXADDR_TOP)
    return pt


def kernel_physical_mapping_init(pt, max_low_pfn, image, use_pse, alloc):
    """Map pfn 0 .. max_low_pfn at PAGE_OFFSET, 4 MiB pages where allowed."""
    u32 = pt.pm.u32
    for first in range(0, max_low_pfn, PFNS_PER_PMD):
        last = min(first + PFNS_PER_PMD, max_low_pfn)
        va = PAGE_OFFSET + (first << PAGE_SHIFT)
        whole = last - first == PFNS_PER_PMD
        holds_image = first < image[1] and image[0] < last
        if use_pse and whole and not holds_image:
            pt.set_pde(va, (first << PAGE_SHIFT) | __PAGE_KERNEL_LARGE)
            continue
        table = alloc(PAGE_SIZE, PAGE_SIZE, "pgtable")
        entries = array("I", range((first << PAGE_SHIFT) | __PAGE_KERNEL,
                                   (last << PAGE_SHIFT) | __PAGE_KERNEL, PAGE_SIZE))
        u32[table >> 2:(table >> 2) + len(entries)] = entries
        pt.set_pde(va, table | _KERNPG_TABLE)


def page_table_range_init(pt, start, end):
    """Make sure a page table exists for every PDE of [start, end)."""
    va = start & PMD_MASK
    while va < end:
        pt.pte_alloc_kernel(va)
        va += PMD_SIZE
        if va == 0:
            break


def mark_rodata_ro(pt, start_va, end_va):
    """Make kernel text read-only in the direct map (4 KiB-mapped there)."""
    for va in range(start_va & ~(PAGE_SIZE - 1), end_va, PAGE_SIZE):
        slot = pt.pte_slot(va)
        if slot is None:
            continue
        old = pt.pm.u32[slot >> 2]
        pt.pm.u32[slot >> 2] = (old & ~0xFFF) | __PAGE_KERNEL_RO
    pt.flush_tlb()
