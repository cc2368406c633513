"""i386 two-level page tables in guest RAM: entry bits, set/clear, the walker.

Models arch/x86/include/asm/pgtable_types.h (bits and protections),
pgtable_32.h/pgtable-2level.h (index arithmetic), and the kernel's own walk
(lookup_address()).  Tables are read and written in guest physical memory
through a PhysMem, so the emulated MMU walks exactly what this module writes.
Finding an entry is kept apart from changing it; every change to an entry
that was present goes through flush_tlb, which the owner supplies.

The tables are guest memory: a guest can write any value into a
page-directory entry.  The walker never follows a table outside RAM (such
an entry translates nothing); the changing side does what 6.1 does with
such an entry, through the owner's Reporter (``PageTable.reporter``): a
large or bad entry where a page table should be is pmd_clear_bad()'s
"mm/pgtable-generic.c:51: bad pgd %08lx" (the 2-level pmd_ERROR() is
pgd_ERROR()), a page table outside RAM is the oops of touching it, a PTE
slot that is not empty where vmap() maps is its WARN and -EBUSY.
"""
from dataclasses import dataclass

from mmemu.errors import KernelOops
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, PGDIR_SHIFT, PTRS_PER_PTE

_PAGE_PRESENT = 0x001
_PAGE_RW = 0x002
_PAGE_USER = 0x004
_PAGE_PWT = 0x008
_PAGE_PCD = 0x010
_PAGE_ACCESSED = 0x020
_PAGE_DIRTY = 0x040
_PAGE_PSE = 0x080          # in a PDE: a 4 MiB page
_PAGE_PAT = 0x080          # in a PTE
_PAGE_GLOBAL = 0x100
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

# pmd_clear_bad()'s pmd_ERROR() in 6.1's mm/pgtable-generic.c, and the WARN of
# vmap_pages_pte_range() when a slot it maps is not empty.
PMD_ERROR_WHERE = "mm/pgtable-generic.c:51"
VMAP_PTE_BUSY_WHERE = ("mm/vmalloc.c", None, "vmap_pages_pte_range")


def pmd_bad(pde):
    """pmd_bad() of 2-level i386: present, but not a kernel page table's flags."""
    return (pde & PTE_FLAGS_MASK & ~_PAGE_USER) != _KERNPG_TABLE


def pgd_index(va):
    return (va >> PGDIR_SHIFT) & 0x3FF


def pte_index(va):
    return (va >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)


def mk_pte(pfn, prot):
    return ((pfn << PAGE_SHIFT) | prot) & 0xFFFFFFFF


@dataclass
class Walk:
    """The result of walking one virtual address.

    pde/pte are the entry values (pte None for a 4 MiB page or a missing
    table), level PG_LEVEL_*, phys the translated address or None.
    """

    va: int
    pde_addr: int
    pde: int
    pte_addr: int = None
    pte: int = None
    level: int = PG_LEVEL_NONE
    phys: int = None

    @property
    def flags(self):
        entry = self.pte if self.level == PG_LEVEL_4K else self.pde
        return entry & PTE_FLAGS_MASK if entry is not None else 0


def walk(pm, pgd_phys, va):
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


def translate(pm, pgd_phys, va):
    """The physical address va maps to under pgd_phys, or None (not present)."""
    return walk(pm, pgd_phys, va).phys


class PageTable:
    """A page directory in guest RAM (swapper_pg_dir or a task's pgd).

    alloc_table() returns the physical address of a zeroed page for a new
    page table (memblock at boot, the page allocator later); flush_tlb()
    makes the CPU forget stale translations.  ``reporter`` (machine.py sets
    it) gets the reports of a corrupted directory (see the module docstring);
    without one, such an entry is a ValueError.
    """

    reporter = None

    def __init__(self, pm, pgd_phys, alloc_table, flush_tlb):
        self.pm = pm
        self.pgd = pgd_phys
        self.alloc_table = alloc_table
        self.flush_tlb = flush_tlb

    def walk(self, va):
        return walk(self.pm, self.pgd, va)

    def translate(self, va):
        return walk(self.pm, self.pgd, va).phys

    def pde(self, va):
        return self.pm.u32[(self.pgd >> 2) + pgd_index(va)]

    def set_pde(self, va, entry):
        self.pm.u32[(self.pgd >> 2) + pgd_index(va)] = entry

    def pte_alloc_kernel(self, va, function="vmap_pte_range"):
        """The physical address of va's PTE slot, making the page table if needed.

        None when no table can be had: no memory, or a 4 MiB page where a
        table should be (a bad pgd report: 6.1 would write its PTEs into
        that large page's frames).  A table outside RAM is function's oops.
        """
        pde = self.pde(va)
        if not pde & _PAGE_PRESENT:
            table = self.alloc_table()
            if table is None:
                return None
            pde = table | _KERNPG_TABLE
            self.set_pde(va, pde)
        elif pde & _PAGE_PSE:
            self._pmd_error(va, pde, f"0x{va:08x} is inside a 4 MiB page; nothing mapped")
            return None
        return self._table_slot(va, pde, function)

    def _table_slot(self, va, pde, function, write=True):
        """pte_offset_kernel(): va's slot in the table pde points to.  A table
        outside RAM is the oops of touching __va() of it (KernelOops)."""
        slot = (pde & PTE_PFN_MASK) + pte_index(va) * 4
        if slot + 4 <= len(self.pm.u32) * 4:
            return slot
        where = (PAGE_OFFSET + slot) & 0xFFFFFFFF
        if self.reporter is None:
            raise ValueError(f"the page table of 0x{va:08x} is outside RAM (pde {pde:08x})")
        self.reporter.die(where, function, write, notes=[
            f"the page-directory entry of 0x{va:08x} is {pde:08x}: its table lies "
            "outside RAM (overwritten in guest memory)"])

    def _pmd_error(self, va, pde, note):
        """pmd_ERROR() (pgd_ERROR() on 2 levels): the bad entry's line, no more."""
        if self.reporter is None:
            raise ValueError(note)
        self.reporter.report(f"{PMD_ERROR_WHERE}: bad pgd {pde:08x}\nmmemu: {note}")

    def unmap_pte_slot(self, va):
        """va's PTE slot for an unmap, or None, as vunmap_pmd_range() meets the
        directory entry: none is nothing to do, a 4 MiB page is cleared whole
        (pmd_clear_huge()), a bad entry reported and cleared
        (pmd_none_or_clear_bad()), a table outside RAM the oops of reading it."""
        pde = self.pde(va)
        if not pde & _PAGE_PRESENT:
            return None
        if pde & _PAGE_PSE or pmd_bad(pde):
            if not pde & _PAGE_PSE:
                self._pmd_error(va, pde, f"the page-directory entry of 0x{va:08x} is not a "
                                "page table's; cleared")
            self.set_pde(va, 0)
            self.flush_tlb()
            return None
        return self._table_slot(va, pde, "vunmap_pte_range")

    def pte_slot(self, va):
        """The physical address of va's PTE, or None when no table covers it
        (not present, a 4 MiB page, or a table outside RAM)."""
        pde = self.pde(va)
        if not pde & _PAGE_PRESENT or pde & _PAGE_PSE:
            return None
        slot = (pde & PTE_PFN_MASK) + pte_index(va) * 4
        return slot if slot + 4 <= len(self.pm.u32) * 4 else None

    def set_pte(self, va, entry, function="set_pte_vaddr"):
        """set_pte_at() for a kernel address; flushes if it replaced a present
        entry.  Returns the old entry, or None when no table could be had."""
        slot = self.pte_alloc_kernel(va, function)
        if slot is None:
            return None
        old = self.pm.u32[slot >> 2]
        self.pm.u32[slot >> 2] = entry
        if old & _PAGE_PRESENT:
            self.flush_tlb()
        return old

    def clear_pte(self, va, flush=True):
        """pte_clear(); returns the old entry.  flush=False lets a caller batch.

        The directory entry is met as unmap_pte_slot() says.
        """
        slot = self.unmap_pte_slot(va)
        if slot is None:
            return 0
        old = self.pm.u32[slot >> 2]
        self.pm.u32[slot >> 2] = 0
        if flush and old & _PAGE_PRESENT:
            self.flush_tlb()
        return old

    def set_ptes(self, va, entries):
        """Write consecutive PTEs from va on (one table at most per call chunk).

        Used for mapping ranges: the entries must not have been present, so
        no flush is needed (a not-present entry is never cached).
        """
        i = 0
        n = len(entries)
        while i < n:
            slot = self.pte_alloc_kernel(va + i * PAGE_SIZE, "vmap_pages_pte_range")
            if slot is None:
                return False
            room = PTRS_PER_PTE - pte_index(va + i * PAGE_SIZE)
            chunk = entries[i:i + room]
            w = slot >> 2
            if any(self.pm.u32[w:w + len(chunk)]):
                return self._pte_busy(va + i * PAGE_SIZE)
            self.pm.u32[w:w + len(chunk)] = chunk
            i += len(chunk)
        return True

    def _pte_busy(self, va):
        """WARN_ON(!pte_none(*pte)) of vmap_pages_pte_range(): -EBUSY (False)."""
        if self.reporter is None:
            raise ValueError(f"the PTE of 0x{va:08x} is not empty")
        file, line, function = VMAP_PTE_BUSY_WHERE
        self.reporter.warn(file, line, function, notes=[
            f"mmemu: a PTE at or after 0x{va:08x} is already present: the page table "
            "was overwritten in guest memory; nothing is mapped there"])
        return False
