"""Boot-time page tables: swapper_pg_dir, the direct map, and the tables
Linux preallocates for the pkmap area and the fixmap.

Models arch/x86/mm/init_32.c: kernel_physical_mapping_init(),
permanent_kmaps_init(), early_ioremap_page_table_range_init(),
paging_init() and mark_rodata_ro().  The direct map covers pfn 0 ..
max_low_pfn at PAGE_OFFSET with __PAGE_KERNEL_LARGE 4 MiB pages where a
whole 4 MiB block is lowmem, and __PAGE_KERNEL 4 KiB pages in the first
4 MiB (init_memory_mapping() keeps the first 4 MiB away from large pages)
and in a last block only partly lowmem (all of it with direct_map: 4K).
As in 6.1, swapper_pg_dir is in the image's .bss and the boot's page
tables come from the .brk area reserve_brk() kept (pgt_buf), and from
memblock only when that runs out (alloc_low_pages()).  mark_rodata_ro()
then makes [_text, __end_rodata) read-only, splitting the 4 MiB page where
that range ends (set_memory_ro() -> split_large_page(), whose page table
comes from the page allocator).  vmalloc page tables are made on demand.
set_memory_ro() on a vmalloc address changes its direct-map alias too
(the boot's BPF filter, kernel/bpf.py, splits a large page so).
Differs: the CPU entry area and LDT remap are not mapped (no code runs
there).
"""
from array import array

from mmemu.arch.x86.pgtable import (
    PageTable, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, __PAGE_KERNEL, __PAGE_KERNEL_LARGE,
    _KERNPG_TABLE, pgd_index,
)
from mmemu.layout import (
    FIXADDR_TOP, FIXADDR_TOT_START, LAST_PKMAP, PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE,
    PKMAP_BASE, PMD_MASK, PMD_SIZE, PTRS_PER_PTE,
)

PFNS_PER_PMD = PMD_SIZE >> PAGE_SHIFT


class PgtBuf:
    """pgt_buf: page-table pages from the .brk reservation, then from memblock."""

    def __init__(self, pm, mb, start, end):
        self.pm, self.mb, self.next, self.end = pm, mb, start, end

    def alloc(self):
        """alloc_low_page(): the physical address of a zeroed page for a boot page table."""
        if self.next + PAGE_SIZE <= self.end:
            page = self.next
            self.next += PAGE_SIZE
        else:
            page = self.mb.alloc_try_nid(PAGE_SIZE, PAGE_SIZE, caller="alloc_low_pages",
                                         name="pgtable")
        self.pm.fill(page, PAGE_SIZE, 0)
        return page


def paging_init(pm, layout, cfg, mb, image, flush_tlb):
    """Build swapper_pg_dir and the boot tables; returns the PageTable.

    swapper_pg_dir is the first page of the image's .bss; the page tables
    come from .brk (PgtBuf).
    """
    pgt_buf = PgtBuf(pm, mb, image.brk_start, image.brk_end)
    pgd = image.bss_start
    pm.fill(pgd, PAGE_SIZE, 0)
    pt = PageTable(pm, pgd, pgt_buf.alloc, flush_tlb)
    kernel_physical_mapping_init(pt, layout.max_low_pfn, cfg.direct_map == "4M", pgt_buf.alloc)
    page_table_range_init(pt, PKMAP_BASE, PKMAP_BASE + LAST_PKMAP * PAGE_SIZE)
    page_table_range_init(pt, FIXADDR_TOT_START & PMD_MASK, FIXADDR_TOP)
    return pt


def kernel_physical_mapping_init(pt, max_low_pfn, use_pse, alloc):
    """Map pfn 0 .. max_low_pfn at PAGE_OFFSET, 4 MiB pages where allowed.

    The first 4 MiB and a block lowmem ends inside are mapped with page
    tables (split_mem_range(): no large page for the first 4 MiB, none
    past the end).
    """
    u32 = pt.pm.u32
    for first in range(0, max_low_pfn, PFNS_PER_PMD):
        last = min(first + PFNS_PER_PMD, max_low_pfn)
        va = PAGE_OFFSET + (first << PAGE_SHIFT)
        if use_pse and first and last - first == PFNS_PER_PMD:
            pt.set_pde(va, (first << PAGE_SHIFT) | __PAGE_KERNEL_LARGE)
            continue
        table = alloc()
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


def split_large_page(pt, va, alloc_page):
    """split_large_page(): replace va's 4 MiB page with a page table of the same
    1024 pages and attributes (PSE cleared); returns the table's address."""
    u32 = pt.pm.u32
    pde = pt.pde(va)
    table = alloc_page()
    base = pde & PMD_MASK
    attrs = (pde & 0xFFF) & ~_PAGE_PSE
    u32[table >> 2:(table >> 2) + PTRS_PER_PTE] = array(
        "I", range(base | attrs, (base + PMD_SIZE) | attrs, PAGE_SIZE))
    pt.set_pde(va, table | _KERNPG_TABLE)
    return table


def set_memory_ro(pt, start_va, end_va, alloc_page, max_low_pfn=None):
    """set_memory_ro(): [start_va, end_va) read-only, and its direct-map alias.

    Models arch/x86/mm/pat/set_memory.c's change_page_attr_set_clr() for
    clearing _PAGE_RW: a 4 MiB page the range covers whole stays large (its
    RW bit goes); one it covers in part is split first (split_large_page(),
    a page table from alloc_page()).  With max_low_pfn, a page outside the
    direct map (a vmalloc page) that has an alias there (its pfn below
    max_low_pfn: pfn_range_is_mapped()) gets that alias read-only too
    (cpa_process_alias()), which splits the large page holding it.
    """
    va = start_va & ~(PAGE_SIZE - 1)
    direct_end = PAGE_OFFSET + ((max_low_pfn or 0) << PAGE_SHIFT)
    while va < end_va:
        block = va & PMD_MASK
        pde = pt.pde(va)
        if pde & _PAGE_PRESENT and pde & _PAGE_PSE:
            if va == block and end_va >= block + PMD_SIZE:
                pt.set_pde(va, pde & ~_PAGE_RW)
                va = block + PMD_SIZE
                continue
            split_large_page(pt, va, alloc_page)
        slot = pt.pte_slot(va)
        if slot is not None:
            pt.pm.u32[slot >> 2] &= ~_PAGE_RW
            pfn = pt.pm.u32[slot >> 2] >> PAGE_SHIFT
            if max_low_pfn and not PAGE_OFFSET <= va < direct_end and pfn < max_low_pfn:
                alias = PAGE_OFFSET + (pfn << PAGE_SHIFT)
                set_memory_ro(pt, alias, alias + PAGE_SIZE, alloc_page)
        va += PAGE_SIZE
    pt.flush_tlb()


def mark_rodata_ro(pt, image, alloc_page):
    """mark_rodata_ro(): the kernel's text and read-only data, [_text, __end_rodata)."""
    set_memory_ro(pt, PAGE_OFFSET + image.text, PAGE_OFFSET + image.end_rodata, alloc_page)


def direct_map_counts(pt, max_low_pfn):
    """(DirectMap4k pages, DirectMap4M pages): how the direct map is mapped now."""
    u32 = pt.pm.u32
    small = large = 0
    for first in range(0, max_low_pfn, PFNS_PER_PMD):
        pde = u32[(pt.pgd >> 2) + pgd_index(PAGE_OFFSET + (first << PAGE_SHIFT))]
        if not pde & _PAGE_PRESENT:
            continue
        if pde & _PAGE_PSE:
            large += 1
            continue
        table = pde & ~(PAGE_SIZE - 1)
        n = min(PFNS_PER_PMD, max_low_pfn - first)
        small += sum(1 for e in u32[table >> 2:(table >> 2) + n] if e & _PAGE_PRESENT)
    return small, large

