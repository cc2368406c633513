"""i386 page tables in guest RAM: entry bits, set/clear, the walker.

Models arch/x86/include/asm/pgtable_types.h (bits and protections),
pgtable_32.h/pgtable-2level.h (index arithmetic), and the kernel's own walk
(lookup_address()).  Tables are read and written in guest physical memory
through a PhysMem, so the emulated MMU walks exactly what this module writes.
Finding an entry is kept apart from changing it; every change to an entry
that was present goes through flush_tlb, which the owner supplies.

The module constants are the 686 flavour's (two levels, 32-bit entries).
A PageTable serves either flavour: on 686-pae (arch/x86/pgtable_3level.py)
entries are 64 bits, the page directory is a 4-entry PDPT over 512-entry
PMDs, and ``ptes``/``pte_shift`` say how to index entries in guest RAM.

The tables are guest memory: a guest can write any value into a
page-directory entry.  The walkers never follow a table outside RAM (such
an entry translates nothing); the changing side does what 6.1 does with
such an entry, through the owner's Reporter (``PageTable.reporter``): a
large or bad entry where a page table should be is pmd_clear_bad()'s
pmd_ERROR() ("mm/pgtable-generic.c:51: bad pgd %08lx" on 686, where the
2-level pmd_ERROR() is pgd_ERROR(); "bad pmd %p(%016Lx)" on 686-pae), a
page table outside RAM is the oops of touching it, a PTE slot that is not
empty where vmap() maps is its WARN and -EBUSY.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

from mmemu.arch.x86.pgtable_types import (  # noqa: F401  (re-exported: the entry bits)
    PDE_LARGE_MASK, PG_LEVEL_2M, PG_LEVEL_4K, PG_LEVEL_4M, PG_LEVEL_NONE, PAGE_KERNEL,
    PAGE_KERNEL_IO, PTE_FLAGS_MASK, PTE_PFN_MASK, Walk, _KERNPG_TABLE, _PAGE_ACCESSED,
    _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_PAT, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PSE, _PAGE_PWT,
    _PAGE_RW, _PAGE_TABLE, _PAGE_USER, __PAGE_KERNEL, __PAGE_KERNEL_LARGE,
    __PAGE_KERNEL_NOCACHE, __PAGE_KERNEL_RO, __PAGE_KERNEL_RX,
)
from mmemu.arch.x86.pgtable_3level import pmd_slot, walk_3level
from mmemu.flavour import FLAVOUR_686, Flavour
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, PGDIR_SHIFT, PTRS_PER_PTE
from mmemu.physmem import PhysMem

if TYPE_CHECKING:
    from mmemu.arch.x86.init import PgtBuf
    from mmemu.kernel.panic import Reporter

# pmd_clear_bad()'s pmd_ERROR() in 6.1's mm/pgtable-generic.c, and the WARN of
# vmap_pages_pte_range() when a slot it maps is not empty.
PMD_ERROR_WHERE = "mm/pgtable-generic.c:51"
VMAP_PTE_BUSY_WHERE = ("mm/vmalloc.c", None, "vmap_pages_pte_range")


def pmd_bad(pde: int, flags_mask: int = PTE_FLAGS_MASK) -> bool:
    """pmd_bad(): present, but not a kernel page table's flags (flags_mask:
    the flavour's, which holds NX on PAE)."""
    return (pde & flags_mask & ~_PAGE_USER) != _KERNPG_TABLE


def pgd_index(va: int) -> int:
    return (va >> PGDIR_SHIFT) & 0x3FF


def pte_index(va: int) -> int:
    return (va >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)


def mk_pte(pfn: int, prot: int) -> int:
    return ((pfn << PAGE_SHIFT) | prot) & 0xFFFFFFFF


def walk(pm: PhysMem, pgd_phys: int, va: int) -> Walk:
    """lookup_address() for any page directory: a Walk, mapped or not."""
    pde_addr = pgd_phys + pgd_index(va) * 4
    pde = pm.u32[pde_addr >> 2]
    w = Walk(va, pde_addr, pde)
    if not pde & _PAGE_PRESENT:
        return w
    if pde & _PAGE_PSE:
        w.level = PG_LEVEL_4M
        w.phys = (pde & PDE_LARGE_MASK) | (va & ~PDE_LARGE_MASK & 0xFFFFFFFF)
        return w
    if (pde & PTE_PFN_MASK) + PAGE_SIZE > len(pm.u32) * 4:
        return w                 # a table outside RAM (a guest wrote the entry): nothing
    w.pte_addr = (pde & PTE_PFN_MASK) + pte_index(va) * 4
    w.pte = pm.u32[w.pte_addr >> 2]
    if w.pte & _PAGE_PRESENT:
        w.level = PG_LEVEL_4K
        w.phys = (w.pte & PTE_PFN_MASK) | (va & (PAGE_SIZE - 1))
    return w


def translate(pm: PhysMem, pgd_phys: int, va: int) -> Optional[int]:
    """The physical address va maps to under pgd_phys, or None (not present)."""
    return walk(pm, pgd_phys, va).phys


class PageTable:
    """A page directory in guest RAM (swapper_pg_dir or a task's pgd).

    alloc_table() returns the physical address of a zeroed page for a new
    page table (memblock at boot, the page allocator later); flush_tlb()
    makes the CPU forget stale translations.  ``flavour`` (686 or 686-pae)
    fixes the entry size and the levels: ``ptes`` is the view of guest RAM
    that holds entries (32-bit or 64-bit words) and a slot's physical
    address >> ``pte_shift`` indexes it.  pde() and set_pde() are the entry
    of the level above the page tables: the pgd on 686, the pmd on PAE
    (whose PDPT entries pgd_alloc() and paging_init() fill once).
    ``reporter`` (machine.py sets it) gets the reports of a corrupted
    directory (see the module docstring); without one, such an entry is a
    ValueError.
    """

    reporter: Optional[Reporter] = None
    pgt_buf: Optional[PgtBuf] = None      # the boot's page-table pages (arch/x86/init.py)

    def __init__(self, pm: PhysMem, pgd_phys: int, alloc_table: Callable[[], Optional[int]],
                 flush_tlb: Callable[[], object], flavour: Flavour = FLAVOUR_686) -> None:
        self.pm = pm
        self.pgd = pgd_phys
        self.alloc_table = alloc_table
        self.flush_tlb = flush_tlb
        self.flavour = flavour
        self.pae = flavour.pae
        ptes = pm.u64 if flavour.pte_size == 8 else pm.u32
        assert ptes is not None, "a PAE machine's RAM is a whole number of 64-bit words"
        self.ptes: memoryview = ptes
        self.pte_shift = flavour.pte_shift
        self.ptrs_per_pte = flavour.ptrs_per_pte
        self.pmd_size = flavour.pmd_size
        self.pfn_mask = flavour.pte_pfn_mask
        # The entry a new kernel page table gets in the level above: 6.1's
        # pmd_populate_kernel() and one_page_table_init() write _PAGE_TABLE;
        # mmemu's 686 model has always written _KERNPG_TABLE (no USR bit).
        self.table_prot = _PAGE_TABLE if flavour.pae else _KERNPG_TABLE

    def walk(self, va: int, pgd: Optional[int] = None) -> Walk:
        """lookup_address() through this page table (or another pgd of its flavour)."""
        pgd = self.pgd if pgd is None else pgd
        if self.pae:
            return walk_3level(self.pm, pgd, va)
        return walk(self.pm, pgd, va)

    def translate(self, va: int) -> Optional[int]:
        return self.walk(va).phys

    def mk_pte(self, pfn: int, prot: int) -> int:
        """mk_pte(): an entry for pfn with protections prot, in this flavour."""
        return (pfn << PAGE_SHIFT) | prot if self.pae else ((pfn << PAGE_SHIFT) | prot) & 0xFFFFFFFF

    def pde_slot(self, va: int) -> Optional[int]:
        """The physical address of va's entry above the page tables, or None.

        686: the pgd entry.  PAE: the pmd entry, found through the PDPT
        (None when the PDPT entry is not present, which never happens for a
        kernel address: the kernel PMD is part of every page directory).
        """
        if not self.pae:
            return self.pgd + pgd_index(va) * 4
        return pmd_slot(self.pm, self.pgd, va)

    def pde(self, va: int) -> int:
        slot = self.pde_slot(va)
        return 0 if slot is None else self.ptes[slot >> self.pte_shift]

    def set_pde(self, va: int, entry: int) -> None:
        slot = self.pde_slot(va)
        assert slot is not None, f"0x{va:08x} has no pmd (its PDPT entry is not present)"
        self.ptes[slot >> self.pte_shift] = entry

    def _pte_offset(self, pde: int, va: int) -> int:
        return (pde & self.pfn_mask) + ((va >> PAGE_SHIFT) & (self.ptrs_per_pte - 1)) \
            * (1 << self.pte_shift)

    def pte_alloc_kernel(self, va: int, function: str = "vmap_pte_range") -> Optional[int]:
        """The physical address of va's PTE slot, making the page table if needed.

        None when no table can be had: no memory, or a large page where a
        table should be (a bad pmd report: 6.1 would write its PTEs into
        that large page's frames).  A table outside RAM is function's oops.
        """
        slot = self.pde_slot(va)
        if slot is None:
            raise ValueError(f"0x{va:08x} has no pmd (its PDPT entry is not present)")
        pde = self.ptes[slot >> self.pte_shift]
        if not pde & _PAGE_PRESENT:
            table = self.alloc_table()
            if table is None:
                return None
            pde = table | self.table_prot
            self.ptes[slot >> self.pte_shift] = pde
        elif pde & _PAGE_PSE:
            self._pmd_error(va, slot, pde, f"0x{va:08x} is inside a large page; nothing mapped")
            return None
        return self._table_slot(va, pde, function)

    def _in_ram(self, slot: int) -> bool:
        return slot + (1 << self.pte_shift) <= self.pm.size

    def _table_slot(self, va: int, pde: int, function: str, write: bool = True) -> int:
        """pte_offset_kernel(): va's slot in the table pde points to.  A table
        outside RAM is the oops of touching __va() of it (KernelOops)."""
        slot = self._pte_offset(pde, va)
        if self._in_ram(slot):
            return slot
        where = (PAGE_OFFSET + slot) & 0xFFFFFFFF
        if self.reporter is None:
            raise ValueError(f"the page table of 0x{va:08x} is outside RAM "
                             f"(pde {self.entry_str(pde)})")
        self.reporter.die(where, function, write, notes=[
            f"the page-directory entry of 0x{va:08x} is {self.entry_str(pde)}: its table "
            "lies outside RAM (overwritten in guest memory)"])

    def _pmd_error(self, va: int, slot: int, pde: int, note: str) -> None:
        """pmd_ERROR(): the bad entry's line, no more (pgd_ERROR() on 2 levels;
        on PAE %p is the entry's address, printed unhashed)."""
        if self.reporter is None:
            raise ValueError(note)
        if self.pae:
            line = f"bad pmd {(PAGE_OFFSET + slot) & 0xFFFFFFFF:08x}({pde:016x})"
        else:
            line = f"bad pgd {pde:08x}"
        self.reporter.report(f"{PMD_ERROR_WHERE}: {line}\nmmemu: {note}")

    def unmap_pte_slot(self, va: int) -> Optional[int]:
        """va's PTE slot for an unmap, or None, as vunmap_pmd_range() meets the
        directory entry: none is nothing to do, a large page is cleared whole
        (pmd_clear_huge()), a bad entry reported and cleared
        (pmd_none_or_clear_bad()), a table outside RAM the oops of reading it."""
        slot = self.pde_slot(va)
        if slot is None:
            return None
        pde = self.ptes[slot >> self.pte_shift]
        if not pde & _PAGE_PRESENT:
            return None
        if pde & _PAGE_PSE or pmd_bad(pde, self.flavour.pte_flags_mask):
            if not pde & _PAGE_PSE:
                self._pmd_error(va, slot, pde, f"the page-directory entry of 0x{va:08x} is "
                                "not a page table's; cleared")
            self.ptes[slot >> self.pte_shift] = 0
            self.flush_tlb()
            return None
        return self._table_slot(va, pde, "vunmap_pte_range")

    def pte_slot(self, va: int) -> Optional[int]:
        """The physical address of va's PTE, or None when no table covers it
        (not present, a large page, or a table outside RAM)."""
        pde = self.pde(va)
        if not pde & _PAGE_PRESENT or pde & _PAGE_PSE:
            return None
        slot = self._pte_offset(pde, va)
        return slot if self._in_ram(slot) else None

    def set_pte(self, va: int, entry: int, function: str = "set_pte_vaddr") -> Optional[int]:
        """set_pte_at() for a kernel address; flushes if it replaced a present
        entry.  Returns the old entry, or None when no table could be had."""
        slot = self.pte_alloc_kernel(va, function)
        if slot is None:
            return None
        slot >>= self.pte_shift
        old = self.ptes[slot]
        self.ptes[slot] = entry
        if old & _PAGE_PRESENT:
            self.flush_tlb()
        return old

    def clear_pte(self, va: int, flush: bool = True) -> int:
        """pte_clear(); returns the old entry.  flush=False lets a caller batch.

        The directory entry is met as unmap_pte_slot() says.
        """
        slot = self.unmap_pte_slot(va)
        if slot is None:
            return 0
        old = self.ptes[slot >> self.pte_shift]
        self.ptes[slot >> self.pte_shift] = 0
        if flush and old & _PAGE_PRESENT:
            self.flush_tlb()
        return old

    def set_ptes(self, va: int, entries: array[int]) -> bool:
        """Write consecutive PTEs from va on (one table at most per call chunk).

        entries: an array of this flavour's entry type (``pte_typecode``).
        Used for mapping ranges: the entries must not have been present, so
        no flush is needed (a not-present entry is never cached).
        """
        i = 0
        n = len(entries)
        per_table = self.ptrs_per_pte
        while i < n:
            at = va + i * PAGE_SIZE
            slot = self.pte_alloc_kernel(at, "vmap_pages_pte_range")
            if slot is None:
                return False
            room = per_table - ((at >> PAGE_SHIFT) & (per_table - 1))
            chunk = entries[i:i + room]
            w = slot >> self.pte_shift
            if any(self.ptes[w:w + len(chunk)]):
                return self._pte_busy(at)
            self.ptes[w:w + len(chunk)] = chunk
            i += len(chunk)
        return True

    def _pte_busy(self, va: int) -> bool:
        """WARN_ON(!pte_none(*pte)) of vmap_pages_pte_range(): -EBUSY (False)."""
        if self.reporter is None:
            raise ValueError(f"the PTE of 0x{va:08x} is not empty")
        file, line, function = VMAP_PTE_BUSY_WHERE
        self.reporter.warn(file, line, function, notes=[
            f"mmemu: a PTE at or after 0x{va:08x} is already present: the page table "
            "was overwritten in guest memory; nothing is mapped there"])
        return False

    @property
    def pte_typecode(self) -> str:
        """The array typecode of one entry ("I" on 686, "Q" on PAE)."""
        return self.flavour.pte_typecode

    def entry_str(self, entry: int) -> str:
        """An entry as dump_pagetable() prints it: %08lx, or %016Lx on PAE."""
        return f"{entry:016x}" if self.pae else f"{entry:08x}"
