"""PAE page tables (686-pae): a 4-entry PDPT over PMDs over page tables.

Models arch/x86/include/asm/pgtable-3level.h and pgtable-3level_types.h
(64-bit entries, PTRS_PER_PGD 4, PTRS_PER_PMD and PTRS_PER_PTE 512,
PGDIR_SHIFT 30, PMD_SHIFT 21), the PAE half of arch/x86/mm/pgtable.c
(pgd_alloc() with its preallocated PMDs, pgd_free()) and the 32-bit
vmalloc_fault(), for the walks the rest of mmemu does through
mmemu.arch.x86.pgtable.PageTable.

What the kernel writes, and so what this module writes (checked against
6.1.192 686-pae booted on QEMU, tests/test_pgtable_3level.py):

* a PDPT entry holds only _PAGE_PRESENT and the PMD's address (pud_populate():
  almost every other bit is reserved at that level);
* a pmd entry is a page table (_PAGE_TABLE, or _KERNPG_TABLE for the boot
  tables of the first 2 MiB) or a 2 MiB page (_PAGE_PSE);
* bit 63 is NX; frames may lie above 4 GiB (up to 64 GiB here).

The kernel's PMD, the one mapping 0xc0000000-0xffffffff, is made at boot
and shared: pgd_alloc() points a new PDPT's last entry at it
(SHARED_KERNEL_PMD, as on a CPU without page-table isolation), so a
vmalloc() page table made later reaches every task at once, and
vmalloc_fault() never has anything to copy.  The three user PMDs are
preallocated, as 6.1 does ("all 4 top-level entries are used almost
immediately in a new process's life"), and the PDPT itself is a 32-byte
object of the pgd_cache slab cache (pgd_cache_init(), _pgd_alloc()), so a
task's CR3 is 32-byte aligned, as on the real kernel (CR3=0x02241d40).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from mmemu.flavour import FLAVOUR_686_PAE
from mmemu.physmem import PhysMem
from mmemu.arch.x86.pgtable_types import (
    PG_LEVEL_4K, PG_LEVEL_2M, PG_LEVEL_NONE, Walk, _PAGE_PRESENT, _PAGE_PSE,
)

if TYPE_CHECKING:
    from mmemu.mm.slab_common import SlabAllocator
    from mmemu.mm.slub import KmemCache

PTRS_PER_PGD = FLAVOUR_686_PAE.ptrs_per_pgd           # 4
PTRS_PER_PMD = FLAVOUR_686_PAE.ptrs_per_pmd           # 512
PTRS_PER_PTE = FLAVOUR_686_PAE.ptrs_per_pte           # 512
PGDIR_SHIFT = FLAVOUR_686_PAE.pgdir_shift             # 30
PMD_SHIFT = FLAVOUR_686_PAE.pmd_shift                 # 21
PMD_SIZE = 1 << PMD_SHIFT
KERNEL_PGD_BOUNDARY = FLAVOUR_686_PAE.kernel_pgd_boundary   # 3
PTE_PFN_MASK = FLAVOUR_686_PAE.pte_pfn_mask           # bits 12..51
PTE_FLAGS_MASK = FLAVOUR_686_PAE.pte_flags_mask       # NX and bits 0..11
PMD_LARGE_MASK = FLAVOUR_686_PAE.pmd_large_mask
_PAGE_NX = FLAVOUR_686_PAE._PAGE_NX
PGD_ENTRY_PROT = _PAGE_PRESENT                        # what pud_populate() writes


def _u64(pm: PhysMem) -> memoryview:
    """Guest RAM as 64-bit words: a PAE machine's RAM is a whole number of them."""
    u64 = pm.u64
    assert u64 is not None, "a PAE machine's RAM is a whole number of 64-bit words"
    return u64


def pgd_index(va: int) -> int:
    """pgd_index(): which of the 4 PDPT entries maps va."""
    return (va >> PGDIR_SHIFT) & (PTRS_PER_PGD - 1)


def pmd_index(va: int) -> int:
    return (va >> PMD_SHIFT) & (PTRS_PER_PMD - 1)


def pte_index(va: int) -> int:
    return (va >> 12) & (PTRS_PER_PTE - 1)


def pmd_slot(pm: PhysMem, pgd_phys: int, va: int) -> Optional[int]:
    """pmd_offset(): the physical address of va's pmd entry, or None (no PDPT entry)."""
    pgd = _u64(pm)[(pgd_phys >> 3) + pgd_index(va)]
    if not pgd & _PAGE_PRESENT:
        return None
    return (pgd & PTE_PFN_MASK) + pmd_index(va) * 8


def walk_3level(pm: PhysMem, pgd_phys: int, va: int) -> Walk:
    """lookup_address() on PAE tables: a Walk of PDPT entry, pmd entry and PTE."""
    u64 = _u64(pm)
    pdpte_addr = pgd_phys + pgd_index(va) * 8
    pdpte = u64[pdpte_addr >> 3]
    if not pdpte & _PAGE_PRESENT:
        return Walk(va, None, 0, pdpte_addr=pdpte_addr, pdpte=pdpte,
                    flags_mask=PTE_FLAGS_MASK)
    pde_addr = (pdpte & PTE_PFN_MASK) + pmd_index(va) * 8
    if pde_addr + 8 > pm.size:
        return Walk(va, pde_addr, 0, pdpte_addr=pdpte_addr, pdpte=pdpte,
                    flags_mask=PTE_FLAGS_MASK)
    pde = u64[pde_addr >> 3]
    w = Walk(va, pde_addr, pde, pdpte_addr=pdpte_addr, pdpte=pdpte, flags_mask=PTE_FLAGS_MASK)
    if not pde & _PAGE_PRESENT:
        return w
    if pde & _PAGE_PSE:
        w.level = PG_LEVEL_2M
        w.phys = (pde & PMD_LARGE_MASK) | (va & (PMD_SIZE - 1))
        return w
    w.pte_addr = (pde & PTE_PFN_MASK) + pte_index(va) * 8
    if w.pte_addr + 8 > pm.size:
        w.pte_addr = None
        return w
    w.pte = u64[w.pte_addr >> 3]
    if w.pte & _PAGE_PRESENT:
        w.level = PG_LEVEL_4K
        w.phys = (w.pte & PTE_PFN_MASK) | (va & 0xFFF)
    return w


PGD_SIZE = PTRS_PER_PGD * 8                           # 32 bytes: the PDPT
SLAB_PANIC = 0x00040000


def pgd_cache_init(slab: SlabAllocator) -> Optional[KmemCache]:
    """pgd_cache_init(): the kmem_cache PAE page directories come from.

    6.1 makes it in pgtable_cache_init() when the kernel PMD is shared
    (SHARED_KERNEL_PMD: no page-table isolation); a PDPT is 32 bytes,
    aligned to its size (PGD_ALIGN).
    """
    return slab.kmem_cache_create("pgd_cache", PGD_SIZE, PGD_SIZE, SLAB_PANIC)


def pgd_populate(pm: PhysMem, pgd_phys: int, index: int, pmd_phys: int) -> None:
    """pud_populate() (the pud is the pgd on PAE): point PDPT entry index at a PMD."""
    _u64(pm)[(pgd_phys >> 3) + index] = pmd_phys | PGD_ENTRY_PROT


def pgd_alloc_pae(pm: PhysMem, swapper_pgd: int, pgd_phys: int, alloc_pmd: Callable[[],
                  Optional[int]]) -> Union[list[int], PgdAllocFailure]:
    """pgd_alloc() on PAE: a PDPT with three fresh user PMDs and the kernel's PMD.

    alloc_pmd() returns the physical address of a zeroed page, or None.
    Returns the user PMDs' addresses, or None when one could not be had
    (those already taken are returned to the caller through free_pmds).
    """
    pmds: list[int] = []
    for index in range(KERNEL_PGD_BOUNDARY):
        pmd = alloc_pmd()
        if pmd is None:
            return PgdAllocFailure(pmds)
        pmds.append(pmd)
        pgd_populate(pm, pgd_phys, index, pmd)
    kernel = _u64(pm)[(swapper_pgd >> 3) + KERNEL_PGD_BOUNDARY]
    _u64(pm)[(pgd_phys >> 3) + KERNEL_PGD_BOUNDARY] = kernel      # clone_pgd_range()
    return pmds


@dataclass
class PgdAllocFailure:
    """pgd_alloc() ran out of memory: the PMDs it had taken, to free."""

    free_pmds: list[int]


def user_pmds(pm: PhysMem, pgd_phys: int) -> list[int]:
    """The PMDs of a task's user half (what pgd_free() frees with the PDPT)."""
    out: list[int] = []
    for index in range(KERNEL_PGD_BOUNDARY):
        entry = _u64(pm)[(pgd_phys >> 3) + index]
        if entry & _PAGE_PRESENT:
            out.append(entry & PTE_PFN_MASK)
    return out


def user_page_tables_3level(pm: PhysMem, pgd_phys: int) -> list[int]:
    """Physical addresses of the page tables under the user PMDs."""
    out: list[int] = []
    u64 = _u64(pm)
    for pmd in user_pmds(pm, pgd_phys):
        for entry in u64[pmd >> 3:(pmd >> 3) + PTRS_PER_PMD].tolist():
            if entry & _PAGE_PRESENT and not entry & _PAGE_PSE:
                out.append(entry & PTE_PFN_MASK)
    return out


def walk_level(w: Walk) -> int:
    """The level a Walk ended at, for reports: PG_LEVEL_4K, PG_LEVEL_2M or NONE."""
    return w.level if w.level in (PG_LEVEL_4K, PG_LEVEL_2M) else PG_LEVEL_NONE
