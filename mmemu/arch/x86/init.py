"""Boot-time page tables: swapper_pg_dir, the direct map, and the tables
Linux preallocates for the pkmap area and the fixmap.

Models arch/x86/mm/init_32.c: kernel_physical_mapping_init(),
permanent_kmaps_init(), early_ioremap_page_table_range_init(),
paging_init() and mark_rodata_ro(), with the page-attribute changes
(arch/x86/mm/pat/set_memory.c) the boot makes.  The direct map covers pfn
0 .. max_low_pfn at PAGE_OFFSET with large pages (__PAGE_KERNEL_LARGE:
4 MiB, or 2 MiB on 686-pae) where a whole PMD is lowmem, and with page
tables (__PAGE_KERNEL) in pfn 0's PMD (init_memory_mapping() keeps the first
PMD away from large pages) and in a last PMD only partly lowmem (all of it
with direct_map: 4K).  As in 6.1, swapper_pg_dir is in the image's .bss
and the boot's page tables come from the .brk area reserve_brk() kept
(pgt_buf), and from memblock only when that runs out (alloc_low_pages()).
mark_rodata_ro() then makes [_text, __end_rodata) read-only, splitting the
large page where that range ends (set_memory_ro() -> split_large_page(),
whose page table comes from the page allocator).  vmalloc page tables are
made on demand.

On 686-pae (CONFIG_X86_PAE) swapper_pg_dir is a 4-entry PDPT whose last
entry points at the kernel's PMD, head_32.S's initial_pg_pmd, the first
page of .bss (the user entries stay empty once the boot identity map is
gone).  Every direct-map page is NX except [_text, __init_end]
(is_x86_32_kernel_text()), mapped executable as the boot leaves it; then
the frees of the SMP alternatives and of the init sections make their
pages NX and writable (free_init_pages()), and mark_rodata_ro() makes the
text and rodata read-only and, through mark_nxdata_nx(), everything from
_etext to the 2 MiB boundary past __init_end NX: each of those is
set_memory_*(), which keeps a large page whole when the range covers it or
changes nothing in it, and splits it otherwise.  The text stays executable
whatever is asked (static_protections()).  On 686 there is no NX bit, so
only the read-only change does anything.

set_memory_ro() on a vmalloc address changes its direct-map alias too
(the boot's BPF filter, kernel/bpf.py, splits a large page so).

Differs: the CPU entry area and LDT remap are not mapped (no code runs
there); where in .bss swapper_pg_dir lies on 686 is mmemu's choice (its
first page).
"""
from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Optional

from mmemu.arch.x86.pgtable import (
    PageTable, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _KERNPG_TABLE, pgd_index,
)
from mmemu.flavour import _PAGE_BIT_NX, _PAGE_GLOBAL, Flavour, flavour_of
from mmemu.config_schema import MachineConfig
from mmemu.kernel.image import KernelImage
from mmemu.layout import FIXADDR_TOP, PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, Layout
from mmemu.mm.memblock import Memblock
from mmemu.physmem import PhysMem

_PAGE_NX = 1 << _PAGE_BIT_NX


INIT_PGT_BUF_PAGES = 6          # INIT_PGT_BUF_SIZE on 32-bit: pgt_buf, at the end of .brk
ISA_END_ADDRESS = 0x100000
BM_PTE_PAGE = 8                 # early_ioremap's bm_pte: a page of .bss (8 pages in, on 686-pae)

# static_protections(): protect(va, prot) is the protection va may have.
Protect = Callable[[int, int], int]


class PgtBuf:
    """pgt_buf: page-table pages from the .brk reservation, then from memblock.

    [start, end) is the part of .brk that alloc_low_page() hands out; when
    it is used up, a page comes from memblock below the end of the mapped
    memory (alloc_low_pages()).  686: the whole .brk.  686-pae: head_32.S's
    own page tables fill .brk first, so pgt_buf is its last
    INIT_PGT_BUF_PAGES pages, as on a real 686-pae boot (whose last two
    boot page tables, the CPU entry area's, come from memblock).
    """

    def __init__(self, pm: PhysMem, mb: Memblock, start: int, end: int, mapped_end: int) -> None:
        self.pm, self.mb, self.next, self.end = pm, mb, start, end
        self.mapped_end = mapped_end

    def alloc(self) -> int:
        """alloc_low_page(): the physical address of a zeroed page for a boot page table."""
        if self.next + PAGE_SIZE <= self.end:
            page = self.next
            self.next += PAGE_SIZE
        else:
            page = self.mb.phys_alloc_range(PAGE_SIZE, PAGE_SIZE, ISA_END_ADDRESS,
                                            self.mapped_end, "alloc_low_pages", "pgtable")
        self.pm.fill(page, PAGE_SIZE, 0)
        return page


def paging_init(pm: PhysMem, layout: Layout, cfg: MachineConfig, mb: Memblock, image: KernelImage,
                flush_tlb: Callable[[], object]) -> PageTable:
    """Build swapper_pg_dir and the boot tables; returns the PageTable.

    swapper_pg_dir is in the image's .bss; the page tables come from .brk
    (PgtBuf).  On 686-pae .bss starts with head_32.S's initial_pg_pmd (the
    kernel PMD) and initial_pg_fixmap (the early fixmap's page table, in
    the last pmd entry), then swapper_pg_dir; head_32.S's first page table
    (pfn 0's PMD) is the first page of .brk, and early_ioremap_init() puts
    its bm_pte, also in .bss, under the early-ioremap slots.
    """
    flavour = layout.flavour if layout.flavour is not None else flavour_of(cfg)
    mapped_end = layout.max_low_pfn << PAGE_SHIFT
    if flavour.pae:
        from mmemu.arch.x86.pgtable_3level import KERNEL_PGD_BOUNDARY, pgd_populate
        pmd, fixmap_pte, pgd = (image.bss_start + i * PAGE_SIZE for i in range(3))
        bm_pte = image.bss_start + BM_PTE_PAGE * PAGE_SIZE
        for page in (pmd, fixmap_pte, pgd, bm_pte, image.brk_start):
            pm.fill(page, PAGE_SIZE, 0)
        pgt_buf = PgtBuf(pm, mb, image.brk_end - INIT_PGT_BUF_PAGES * PAGE_SIZE, image.brk_end,
                         mapped_end)
        pt = PageTable(pm, pgd, pgt_buf.alloc, flush_tlb, flavour)
        pgd_populate(pm, pgd, KERNEL_PGD_BOUNDARY, pmd)
        pt.set_pde(PAGE_OFFSET, image.brk_start | _KERNPG_TABLE)          # head_32.S
        pt.set_pde(FIXADDR_TOP, fixmap_pte | _KERNPG_TABLE)               # head_32.S
        pt.set_pde(fix_to_virt(layout, "FIX_BTMAP_BEGIN"), bm_pte | pt.table_prot)
    else:
        pgt_buf = PgtBuf(pm, mb, image.brk_start, image.brk_end, mapped_end)
        pgd = image.bss_start
        pm.fill(pgd, PAGE_SIZE, 0)
        pt = PageTable(pm, pgd, pgt_buf.alloc, flush_tlb, flavour)
    kernel_physical_mapping_init(pt, layout.max_low_pfn, image, cfg.direct_map == "4M",
                                 pgt_buf.alloc)
    early_ioremap_page_table_range_init(pt, layout, pgt_buf.alloc)
    page_table_range_init(pt, layout.pkmap_base, layout.pkmap_end)     # permanent_kmaps_init()
    pt.pgt_buf = pgt_buf
    return pt


def fix_to_virt(layout: Layout, name: str) -> int:
    """fix_to_virt() of an enum fixed_addresses name."""
    return FIXADDR_TOP - (layout.fixmap[name] << PAGE_SHIFT)


def early_ioremap_page_table_range_init(pt: PageTable, layout: Layout, alloc: Callable[[],
                                        int]) -> None:
    """early_ioremap_page_table_range_init(): page tables for the whole fixmap.

    page_table_range_init() over [FIXADDR_TOT_START & PMD_MASK, FIXADDR_TOP):
    a pmd without a table gets one (one_page_table_init()); where the
    kmap_atomic slots span more than one pmd (686-pae), those pmds' tables
    are copied into pages taken first, all together (alloc_low_pages(count)
    and page_table_kmap_check()), so that the kmap slots' tables are
    consecutive.
    """
    f = pt.flavour
    first = fix_to_virt(layout, "FIX_KMAP_END") >> f.pmd_shift
    last = fix_to_virt(layout, "FIX_KMAP_BEGIN") >> f.pmd_shift
    start = layout.fixaddr_tot_start & f.pmd_mask
    vas = range(start, FIXADDR_TOP, pt.pmd_size)
    kmap = [va for va in vas if first != last and first <= va >> f.pmd_shift <= last]
    spare = [alloc() for _ in kmap]
    ptes, shift, n = pt.ptes, pt.pte_shift, pt.ptrs_per_pte
    for va in vas:
        pt.pte_alloc_kernel(va)                          # one_page_table_init()
        if va in kmap:
            old, new = pt.pde(va) & pt.pfn_mask, spare.pop(0)
            ptes[new >> shift:(new >> shift) + n] = ptes[old >> shift:(old >> shift) + n]
            pt.set_pde(va, new | pt.table_prot)


def setup_cpu_entry_area_ptes(pt: PageTable, layout: Layout) -> None:
    """setup_cpu_entry_area_ptes() of trap_init(): a page table for every pmd
    of the CPU entry area's map (686-pae; the 686 model maps no CPU entry
    area).  Their pages come from pgt_buf, else memblock (alloc_low_pages()).
    Differs: the area itself (the GDT, TSS and entry stack of each CPU) is
    not mapped."""
    if not pt.pae:
        return
    from mmemu.flavour import CPU_ENTRY_AREA_PAGES
    start = layout.cpu_entry_area_base
    end = start + (CPU_ENTRY_AREA_PAGES + 1) * PAGE_SIZE
    for va in range(start, end, pt.pmd_size):
        pt.pte_alloc_kernel(va)                          # populate_extra_pte()


def kernel_text(image: KernelImage) -> tuple[int, int]:
    """is_x86_32_kernel_text()'s range, physical: [_text, __init_end] (inclusive end)."""
    return image.text, image.init_end


def kernel_physical_mapping_init(pt: PageTable, max_low_pfn: int, image: KernelImage,
                                 use_pse: bool, alloc: Callable[[], int]) -> None:
    """Map pfn 0 .. max_low_pfn at PAGE_OFFSET, large pages where allowed.

    The first PMD and a block lowmem ends inside are mapped with page
    tables (split_mem_range(): no large page for the first PMD, none past
    the end).  A PMD that holds part of [_text, __init_end] is executable
    (PAGE_KERNEL_LARGE_EXEC, PAGE_KERNEL_EXEC); the rest is PAGE_KERNEL,
    which is NX on 686-pae.  The first PMD's table is head_32.S's
    (_KERNPG_TABLE); one_page_table_init() makes the others.
    """
    f = pt.flavour
    per_pmd = f.pmd_size >> PAGE_SHIFT
    text_lo, text_hi = kernel_text(image)
    ptes, shift = pt.ptes, pt.pte_shift
    for first in range(0, max_low_pfn, per_pmd):
        last = min(first + per_pmd, max_low_pfn)
        va = PAGE_OFFSET + (first << PAGE_SHIFT)
        lo, hi = first << PAGE_SHIFT, last << PAGE_SHIFT
        if use_pse and first and last - first == per_pmd:
            text = lo <= text_hi and hi - 1 >= text_lo
            prot = f.PAGE_KERNEL_LARGE_EXEC if text else f.PAGE_KERNEL_LARGE
            pt.set_pde(va, lo | prot)
            continue
        pde = pt.pde(va)
        if pde & _PAGE_PRESENT and not pde & _PAGE_PSE:
            table = pde & pt.pfn_mask                    # head_32.S's: one_page_table_init()
        else:
            table = alloc()
            pt.set_pde(va, table | (_KERNPG_TABLE if not first else pt.table_prot))
        entries = _direct_map_ptes(f, first, last, text_lo >> PAGE_SHIFT, text_hi >> PAGE_SHIFT)
        ptes[table >> shift:(table >> shift) + len(entries)] = entries


def _direct_map_ptes(f: Flavour, first: int, last: int, text_first: int,
                     text_last: int) -> array[int]:
    """The PTEs of pfns first..last-1: PAGE_KERNEL, PAGE_KERNEL_EXEC for the text."""
    prot, exec_prot = f.PAGE_KERNEL, f.PAGE_KERNEL_EXEC
    entries = array(f.pte_typecode, range((first << PAGE_SHIFT) | prot,
                                          (last << PAGE_SHIFT) | prot, PAGE_SIZE))
    lo, hi = max(first, text_first), min(last, text_last + 1)
    if prot != exec_prot and lo < hi:
        entries[lo - first:hi - first] = array(f.pte_typecode, range(
            (lo << PAGE_SHIFT) | exec_prot, (hi << PAGE_SHIFT) | exec_prot, PAGE_SIZE))
    return entries


def page_table_range_init(pt: PageTable, start: int, end: int) -> None:
    """Make sure a page table exists for every PDE (pmd entry on PAE) of [start, end)."""
    size = pt.pmd_size
    va = start & ~(size - 1)
    while va < end:
        pt.pte_alloc_kernel(va)
        va += size
        if va >= 1 << 32:
            break


def split_large_page(pt: PageTable, va: int, alloc_page: Callable[[], int]) -> int:
    """split_large_page(): replace va's large page with a page table of the same
    pages and attributes (PSE cleared, global set); returns the table's address."""
    pde = pt.pde(va)
    table = alloc_page()
    size = pt.pmd_size
    base = pde & pt.flavour.pmd_large_mask
    attrs = (pde & pt.flavour.pte_flags_mask & ~_PAGE_PSE) | _PAGE_GLOBAL
    entries = array(pt.flavour.pte_typecode, range(base | attrs, (base + size) | attrs,
                                                   PAGE_SIZE))
    pt.ptes[table >> pt.pte_shift:(table >> pt.pte_shift) + len(entries)] = entries
    pt.set_pde(va, table | _KERNPG_TABLE)
    return table


def change_page_attr(pt: PageTable, start_va: int, end_va: int, set_mask: int, clr_mask: int,
                     alloc_page: Callable[[], int], protect: Optional[Protect] = None,
                     max_low_pfn: Optional[int] = None) -> None:
    """__change_page_attr_set_clr() over [start_va, end_va) of the direct map.

    Each PTE gets (entry & ~clr_mask) | set_mask, less what protect(va, prot)
    forbids (static_protections()).  A large page keeps its size when the
    change leaves it as it is, or covers it whole without a conflict with
    the static protections; otherwise it is split first (split_large_page(),
    a page table from alloc_page()).  With max_low_pfn, a page outside the
    direct map (a vmalloc page) that has an alias there (its pfn below
    max_low_pfn: pfn_range_is_mapped()) gets the same change there
    (cpa_process_alias()), which may split the large page holding it.
    """
    direct_end = PAGE_OFFSET + ((max_low_pfn or 0) << PAGE_SHIFT)
    size = pt.pmd_size
    va = start_va & ~(PAGE_SIZE - 1)
    ptes, shift = pt.ptes, pt.pte_shift
    while va < end_va:
        block = va & ~(size - 1)
        pde = pt.pde(va)
        if pde & _PAGE_PRESENT and pde & _PAGE_PSE:
            new = (pde & ~clr_mask) | set_mask
            if new == pde:                              # the same pgprot: nothing to do
                va = block + size
                continue
            whole = va == block and end_va >= block + size
            if whole and (protect is None or _no_conflict(protect, block, size, new)):
                pt.set_pde(va, new)
                va = block + size
                continue
            split_large_page(pt, va, alloc_page)
        slot = pt.pte_slot(va)
        if slot is not None:
            old = ptes[slot >> shift]
            new = (old & ~clr_mask) | set_mask
            if protect is not None:
                new = protect(va, new)
            ptes[slot >> shift] = new
            pfn = (new & pt.pfn_mask) >> PAGE_SHIFT
            if max_low_pfn and not PAGE_OFFSET <= va < direct_end and pfn < max_low_pfn:
                alias = PAGE_OFFSET + (pfn << PAGE_SHIFT)
                change_page_attr(pt, alias, alias + PAGE_SIZE, set_mask, clr_mask, alloc_page,
                                 protect)
        va += PAGE_SIZE
    pt.flush_tlb()


def _no_conflict(protect: Protect, block: int, size: int, prot: int) -> bool:
    """static_protections() over a whole large page changes nothing in prot."""
    return all(protect(va, prot) == prot for va in range(block, block + size, PAGE_SIZE))


def set_memory_ro(pt: PageTable, start_va: int, end_va: int, alloc_page: Callable[[], int],
                  max_low_pfn: Optional[int] = None, protect: Optional[Protect] = None) -> None:
    """set_memory_ro(): [start_va, end_va) read-only, and its direct-map alias
    (with max_low_pfn; see change_page_attr())."""
    change_page_attr(pt, start_va, end_va, 0, _PAGE_RW, alloc_page, protect, max_low_pfn)


def set_memory_rw(pt: PageTable, start_va: int, end_va: int, alloc_page: Callable[[], int],
                  protect: Optional[Protect] = None) -> None:
    """set_memory_rw()."""
    change_page_attr(pt, start_va, end_va, _PAGE_RW, 0, alloc_page, protect)


def set_memory_nx(pt: PageTable, start_va: int, end_va: int, alloc_page: Callable[[], int],
                  protect: Optional[Protect] = None) -> None:
    """set_memory_nx(): nothing without NX support (686)."""
    if pt.pae:
        change_page_attr(pt, start_va, end_va, _PAGE_NX, 0, alloc_page, protect)


def text_protection(image: KernelImage) -> Protect:
    """static_protections()' protect_kernel_text(): the text never gets NX."""
    lo, hi = PAGE_OFFSET + image.text, PAGE_OFFSET + image.etext

    def protect(va: int, prot: int) -> int:
        if lo <= va < hi:
            return prot & ~_PAGE_NX
        return prot
    return protect


def free_init_pages(pt: PageTable, image: KernelImage, start: int, end: int,
                    alloc_page: Callable[[], int]) -> None:
    """free_init_pages()'s attribute half: what it frees becomes NX and writable
    (it may have been mapped as kernel text).  start and end are physical."""
    protect = text_protection(image)
    set_memory_nx(pt, PAGE_OFFSET + start, PAGE_OFFSET + end, alloc_page, protect)
    set_memory_rw(pt, PAGE_OFFSET + start, PAGE_OFFSET + end, alloc_page, protect)


# The 686-pae reference's read-only pages besides the image's text and rodata
# (its ptdump): the real-mode trampoline's header and text, and the IDT.
REAL_MODE_RO_PAGES = 2          # [base, ro_end): the header and the trampoline text
REAL_MODE_TEXT_PAGE = 1         # text_start, one page in
IDT_TABLE_BSS_PAGE = 7          # idt_table: a page of .bss (__page_aligned_bss)


def set_real_mode_permissions(pt: PageTable, base: int, size: int, alloc_page: Callable[[],
                              int]) -> None:
    """set_real_mode_permissions(): the real-mode trampoline at base (physical) NX,
    its header and text read-only, its text executable (686-pae; the 686 model
    leaves the trampoline as the direct map has it)."""
    if not pt.pae:
        return
    va = PAGE_OFFSET + base
    set_memory_nx(pt, va, va + size, alloc_page)
    set_memory_ro(pt, va, va + REAL_MODE_RO_PAGES * PAGE_SIZE, alloc_page)
    text = va + REAL_MODE_TEXT_PAGE * PAGE_SIZE
    change_page_attr(pt, text, va + REAL_MODE_RO_PAGES * PAGE_SIZE, 0, _PAGE_NX, alloc_page)


def idt_table_ro(pt: PageTable, image: KernelImage, alloc_page: Callable[[], int]) -> None:
    """idt_setup_apic_and_irq_gates()'s set_memory_ro() of idt_table, a page of the
    image's .bss (686-pae; on 686 the same page changes nothing mmemu shows)."""
    if not pt.pae:
        return
    va = PAGE_OFFSET + image.bss_start + IDT_TABLE_BSS_PAGE * PAGE_SIZE
    set_memory_ro(pt, va, va + PAGE_SIZE, alloc_page)


def mark_rodata_ro(pt: PageTable, image: KernelImage, alloc_page: Callable[[], int]) -> list[str]:
    """mark_rodata_ro(): the kernel's text and read-only data, [_text, __end_rodata),
    read-only; then mark_nxdata_nx() on 686-pae.  Returns the lines it prints."""
    start, end = PAGE_OFFSET + image.text, PAGE_OFFSET + image.end_rodata
    protect = text_protection(image)
    set_memory_ro(pt, start, end, alloc_page, protect=protect)
    size = ((end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)) - start
    lines = [f"Write protecting kernel text and read-only data: {size >> 10}k"]
    if pt.pae:
        lines.append(mark_nxdata_nx(pt, image, alloc_page, protect))
    return lines


def mark_nxdata_nx(pt: PageTable, image: KernelImage, alloc_page: Callable[[], int],
                   protect: Optional[Protect]) -> str:
    """mark_nxdata_nx(): NX from _etext to the large-page boundary past __init_end."""
    hpage = pt.pmd_size
    start = PAGE_OFFSET + ((image.etext + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
    end = ((PAGE_OFFSET + image.init_end + hpage) & ~(hpage - 1)) & 0xFFFFFFFF
    set_memory_nx(pt, start, end, alloc_page, protect)
    return f"NX-protecting the kernel data: {(end - start) >> 10}k"


def direct_map_counts(pt: PageTable, max_low_pfn: int) -> tuple[int, int]:
    """(4 KiB pages, large pages): how the direct map is mapped now (DirectMap4k
    and DirectMap4M, or DirectMap2M on PAE)."""
    small = large = 0
    per_pmd = pt.pmd_size >> PAGE_SHIFT
    ptes, shift = pt.ptes, pt.pte_shift
    for first in range(0, max_low_pfn, per_pmd):
        pde = pt.pde(PAGE_OFFSET + (first << PAGE_SHIFT))
        if not pde & _PAGE_PRESENT:
            continue
        if pde & _PAGE_PSE:
            large += 1
            continue
        table = pde & pt.pfn_mask
        n = min(per_pmd, max_low_pfn - first)
        small += sum(1 for e in ptes[table >> shift:(table >> shift) + n] if e & _PAGE_PRESENT)
    return small, large


__all__ = ["PgtBuf", "paging_init", "mark_rodata_ro", "split_large_page", "set_memory_ro",
           "direct_map_counts", "free_init_pages", "pgd_index"]


WX_PASSED = "x86/mm: Checked W+X mappings: passed, no W+X pages found."


def debug_checkwx(pt: PageTable) -> Optional[str]:
    """debug_checkwx() at the end of mark_rodata_ro() (686-pae only: it needs NX).

    ptdump_walk_pgd_level_checkwx() counts the kernel pages whose effective
    protection is writable and executable; writable must hold at every
    level, and a PAE PDPT entry has no RW bit, so the answer is "passed".
    Returns the line it prints, or None on 686.
    """
    if not pt.pae:
        return None
    pages = 0
    ptes, shift = pt.ptes, pt.pte_shift
    for index in range(PAGE_OFFSET >> 30, 4):
        pdpte = ptes[(pt.pgd >> 3) + index]              # PAE: ptes are 64-bit words
        if not pdpte & _PAGE_PRESENT or not pdpte & _PAGE_RW:
            continue
        pmd = pdpte & pt.pfn_mask
        for pmde in ptes[pmd >> shift:(pmd >> shift) + pt.flavour.ptrs_per_pmd]:
            if not pmde & _PAGE_PRESENT or not pmde & _PAGE_RW or pmde & _PAGE_NX:
                continue
            if pmde & _PAGE_PSE:
                pages += pt.flavour.ptrs_per_pte
                continue
            table = pmde & pt.pfn_mask
            pages += sum(1 for e in ptes[table >> shift:(table >> shift) + pt.ptrs_per_pte]
                         if e & _PAGE_PRESENT and e & _PAGE_RW and not e & _PAGE_NX)
    if pages:
        return f"x86/mm: Checked W+X mappings: FAILED, {pages} W+X pages found."
    return WX_PASSED
