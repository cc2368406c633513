"""x86 page-table entry bits, the kernel's protections and the walk record.

Models arch/x86/include/asm/pgtable_types.h: the bits both flavours share
(the low 12 of an entry; _PAGE_NX, bit 63, exists only on 686-pae and is in
mmemu/flavour.py), the 686 protections, and the record a walk returns (the
kernel's lookup_address() level and entry).  mmemu.arch.x86.pgtable walks
two levels, pgtable_3level three; both build a Walk.
"""
from dataclasses import dataclass
from typing import Optional

# The entry bits both flavours share are the flavour record's (one copy);
# _PAGE_PSE in a PDE/PMD is a large page, the same bit in a PTE is _PAGE_PAT.
from mmemu.flavour import _PAGE_ACCESSED as _PAGE_ACCESSED
from mmemu.flavour import _PAGE_DIRTY as _PAGE_DIRTY
from mmemu.flavour import _PAGE_GLOBAL as _PAGE_GLOBAL
from mmemu.flavour import _PAGE_PCD as _PAGE_PCD
from mmemu.flavour import _PAGE_PRESENT as _PAGE_PRESENT
from mmemu.flavour import _PAGE_PSE as _PAGE_PSE
from mmemu.flavour import _PAGE_PWT as _PAGE_PWT
from mmemu.flavour import _PAGE_RW as _PAGE_RW
from mmemu.flavour import _PAGE_USER as _PAGE_USER

_PAGE_PAT = 0x080          # in a PTE
PTE_FLAGS_MASK = 0xFFF
PTE_PFN_MASK = 0xFFFFF000
PDE_LARGE_MASK = 0xFFC00000

__PAGE_KERNEL = 0x163          # P RW A D G
__PAGE_KERNEL_RO = 0x161
__PAGE_KERNEL_RX = 0x161       # no NX without PAE: RX and RO are the same bits
__PAGE_KERNEL_LARGE = 0x1E3    # __PAGE_KERNEL | PSE
__PAGE_KERNEL_NOCACHE = 0x173  # __PAGE_KERNEL | PCD: ioremap's UC_MINUS
_KERNPG_TABLE = 0x063          # P RW A D: a kernel page-table entry in a PDE
_PAGE_TABLE = 0x067            # same, user-accessible (user page directories)
PAGE_KERNEL = __PAGE_KERNEL
PAGE_KERNEL_IO = __PAGE_KERNEL_NOCACHE

PG_LEVEL_NONE, PG_LEVEL_4K, PG_LEVEL_4M = 0, 1, 2
PG_LEVEL_2M = PG_LEVEL_4M     # the kernel's name for the large-page level


@dataclass
class Walk:
    """The result of walking one virtual address.

    pde/pte are the entry values (pte None for a large page or a missing
    table), level PG_LEVEL_*, phys the translated address or None.  On PAE
    pdpte is the PDPT entry above the pde (None on two levels, where the
    page directory is the top), and pde is 0 when that entry is absent.
    """

    va: int
    pde_addr: Optional[int]
    pde: int
    pte_addr: Optional[int] = None
    pte: Optional[int] = None
    level: int = PG_LEVEL_NONE
    phys: Optional[int] = None
    pdpte_addr: Optional[int] = None
    pdpte: Optional[int] = None
    flags_mask: int = PTE_FLAGS_MASK

    @property
    def flags(self) -> int:
        entry = self.pte if self.level == PG_LEVEL_4K else self.pde
        return entry & self.flags_mask if entry is not None else 0
