"""Page directories for user tasks: pgd_alloc, pgd_free, vmalloc_sync.

Models arch/x86/mm/pgtable.c (pgd_alloc: the kernel half copied from
swapper_pg_dir, the user half empty) and the 32-bit vmalloc_fault()
(arch/x86/mm/fault.c): a kernel page table made after a pgd was copied
reaches it only when the kernel faults on it through that pgd, and the
fault handler copies the missing PDE from swapper_pg_dir.
"""
from mmemu.arch.x86.pgtable import PTE_PFN_MASK, _PAGE_PRESENT, _PAGE_PSE, pgd_index
from mmemu.layout import KERNEL_PGD_BOUNDARY, PAGE_OFFSET, PTRS_PER_PGD
from mmemu.physmem import PhysMem


def pgd_alloc(pm: PhysMem, swapper_pgd: int, pgd_phys: int) -> None:
    """Fill a zeroed page at pgd_phys as a new task's page directory."""
    src = (swapper_pgd >> 2) + KERNEL_PGD_BOUNDARY
    dst = (pgd_phys >> 2) + KERNEL_PGD_BOUNDARY
    n = PTRS_PER_PGD - KERNEL_PGD_BOUNDARY
    pm.u32[dst:dst + n] = pm.u32[src:src + n]


def user_page_tables(pm: PhysMem, pgd_phys: int) -> list[int]:
    """Physical addresses of the page tables of the user half (for pgd_free)."""
    out: list[int] = []
    base = pgd_phys >> 2
    for i in range(KERNEL_PGD_BOUNDARY):
        pde = pm.u32[base + i]
        if pde & _PAGE_PRESENT and not pde & _PAGE_PSE:
            out.append(pde & PTE_PFN_MASK)
    return out


def vmalloc_sync_one(pm: PhysMem, pgd_phys: int, swapper_pgd: int, address: int) -> bool:
    """Copy swapper's PDE for a kernel address into pgd; True if it was missing.

    vmalloc_fault(): only for kernel addresses whose PDE swapper has and the
    faulting pgd lacks; anything else is a real fault.
    """
    if address < PAGE_OFFSET:
        return False
    i = pgd_index(address)
    ref = pm.u32[(swapper_pgd >> 2) + i]
    cur = pm.u32[(pgd_phys >> 2) + i]
    if not ref & _PAGE_PRESENT or cur == ref:
        return False
    pm.u32[(pgd_phys >> 2) + i] = ref
    return True
