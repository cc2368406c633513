"""The fixmap: virtual addresses fixed at compile time, mapped at run time.

Models include/asm-generic/fixmap.h (fix_to_virt, virt_to_fix, set_fixmap,
clear_fixmap), arch/x86/include/asm/fixmap.h (enum fixed_addresses, built
in mmemu.layout.FIXMAP) and arch/x86/mm/pgtable.c (__native_set_fixmap,
native_set_fixmap) with pgtable_32.c:set_pte_vaddr().  The page table that
covers the whole fixmap is made at boot (arch/x86/init.py), so setting a slot
never allocates.  Slot 0 (FIX_HOLE) is the page just below FIXADDR_TOP; the
kmap_local/kmap_atomic slots FIX_KMAP_BEGIN..FIX_KMAP_END are used by
mm/highmem.py through this module.

Differs: Linux's fix_to_virt() refuses a bad index at compile time
(BUILD_BUG_ON); here it raises UsageError.  A bad index in __set_fixmap()
is reported as the BUG() it is and changes nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

from mmemu.arch.x86.pgtable import (
    PAGE_KERNEL, __PAGE_KERNEL_RO, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PWT, PageTable,
)
from mmemu.errors import UsageError
from mmemu.layout import (
    END_OF_FIXED, FIXADDR_TOP, FIXADDR_TOT_START, FIXMAP, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE,
)
from mmemu.layout import fix_to_virt as _fix_to_virt
from mmemu.layout import virt_to_fix as _virt_to_fix

if TYPE_CHECKING:
    from mmemu.kernel.panic import Reporter

FIXMAP_PAGE_NORMAL = PAGE_KERNEL
FIXMAP_PAGE_RO = __PAGE_KERNEL_RO
FIXMAP_PAGE_NOCACHE = PAGE_KERNEL | _PAGE_PCD | _PAGE_PWT    # PAGE_KERNEL_NOCACHE: UC
FIXMAP_PAGE_CLEAR = 0

SET_FIXMAP_BUG = ("arch/x86/mm/pgtable.c", 661)    # __native_set_fixmap(): BUG()
# The frame bits of an entry of either flavour: a 686 entry has none above bit 31.
_ANY_PTE_PFN_MASK = 0x000FFFFFFFFFF000


class FixmapEntry(NamedTuple):
    """One present fixmap slot: index, enum name, address, PTE."""

    idx: int
    name: str
    va: int
    pte: int

    @property
    def pfn(self) -> int:
        return self.phys >> PAGE_SHIFT

    @property
    def phys(self) -> int:
        return self.pte & _ANY_PTE_PFN_MASK


def fix_to_virt(idx: int) -> int:
    """fix_to_virt(): the address of fixmap slot idx; UsageError if there is none."""
    if not 0 <= idx < END_OF_FIXED:
        raise UsageError(f"fix_to_virt: index {idx} is not a fixmap slot "
                         f"(__end_of_fixed_addresses is {END_OF_FIXED})")
    return _fix_to_virt(idx)


def virt_to_fix(vaddr: int) -> int:
    """virt_to_fix(): the slot holding vaddr; UsageError outside the fixmap.

    Linux: BUG_ON(vaddr >= FIXADDR_TOP || vaddr < FIXADDR_START).
    """
    if not FIXADDR_TOT_START <= vaddr < FIXADDR_TOP:
        raise UsageError(f"virt_to_fix: 0x{vaddr:08x} is not in the fixmap "
                         f"(0x{FIXADDR_TOT_START:08x}-0x{FIXADDR_TOP:08x})")
    return _virt_to_fix(vaddr)


def fixmap_name(idx: int) -> str:
    """The enum fixed_addresses name of slot idx: "FIX_KMAP_BEGIN+3", "FIX_HOLE"."""
    best: Optional[tuple[str, int]] = None
    for name, value in FIXMAP.items():
        if name.startswith("__") or value > idx:
            continue
        if best is None or value > best[1] or (value == best[1] and name.endswith("BEGIN")):
            best = (name, value)
    if best is None:
        return f"slot {idx}"
    name, value = best
    return name if value == idx else f"{name}+{idx - value}"


class Fixmap:
    """The fixmap slots of one page directory.

    pt is the PageTable (swapper_pg_dir); reporter the machine's Reporter
    (kernel/panic.py), which gets the BUG reports.  The slots' protections
    are the flavour's (NX on 686-pae).
    """

    def __init__(self, pt: PageTable, reporter: Reporter) -> None:
        self.pt = pt
        self.rep = reporter
        f = pt.flavour
        self.FIXMAP_PAGE_NORMAL = f.PAGE_KERNEL
        self.FIXMAP_PAGE_RO = f.PAGE_KERNEL_RO
        self.FIXMAP_PAGE_NOCACHE = f.PAGE_KERNEL | _PAGE_PCD | _PAGE_PWT

    def _set_fixmap(self, idx: int, phys: int, flags: int) -> bool:
        """__set_fixmap(idx, phys, flags): map slot idx to phys, or clear it.

        Models native_set_fixmap() and __native_set_fixmap(): flags 0
        (FIXMAP_PAGE_CLEAR) clears the slot.  An index past
        __end_of_fixed_addresses is Linux's BUG(): reported, nothing changed,
        False returned.
        """
        if not 0 <= idx < END_OF_FIXED:
            self.rep.bug(*SET_FIXMAP_BUG, "__native_set_fixmap",
                         notes=[f"mmemu: __set_fixmap: index {idx} >= __end_of_fixed_addresses "
                                f"({END_OF_FIXED}); nothing was mapped"])
            return False
        pte = self.pt.mk_pte(phys >> PAGE_SHIFT, flags) if flags else 0
        return self.set_pte_vaddr(_fix_to_virt(idx), pte)

    def set_fixmap(self, idx: int, phys: int) -> bool:
        """set_fixmap(): map slot idx to the page holding phys, PAGE_KERNEL."""
        return self._set_fixmap(idx, phys, self.FIXMAP_PAGE_NORMAL)

    def clear_fixmap(self, idx: int) -> bool:
        """clear_fixmap(): unmap slot idx."""
        return self._set_fixmap(idx, 0, FIXMAP_PAGE_CLEAR)

    def set_pte_vaddr(self, vaddr: int, pte: int) -> bool:
        """set_pte_vaddr(): write (or clear) one kernel PTE and flush it.

        Models arch/x86/mm/pgtable_32.c:set_pte_vaddr(): the fixmap's page
        table is made at boot, so a page-directory entry that is none (the
        guest cleared it) is its BUG() (nothing is changed, False); one that
        is not a table is refused as PageTable refuses it.
        """
        vaddr = vaddr & 0xFFFFFFFF
        if not self.pt.pae:
            pte &= 0xFFFFFFFF
        if not self.pt.pde(vaddr) & _PAGE_PRESENT:
            self.rep.bug("arch/x86/mm/pgtable_32.c", None, "set_pte_vaddr", notes=[
                f"mmemu: pmd_none(*pmd): the page-directory entry of 0x{vaddr:08x} was "
                "cleared in guest memory; nothing mapped"])
            return False
        if pte:
            return self.pt.set_pte(vaddr & PAGE_MASK, pte) is not None
        self.pt.clear_pte(vaddr & PAGE_MASK)
        return True

    def pte(self, idx: int) -> int:
        """The PTE of slot idx (0 when not present)."""
        slot = self.pt.pte_slot(_fix_to_virt(idx))
        return self.pt.ptes[slot >> self.pt.pte_shift] if slot is not None else 0

    def describe(self, addr: int) -> Optional[str]:
        """A region describer for oopses: the fixmap slot at addr and what it maps."""
        if not FIXADDR_TOT_START <= addr < FIXADDR_TOP + PAGE_SIZE:
            return None
        idx = _virt_to_fix(addr)
        where = f"the address is in the fixmap, slot {idx} ({fixmap_name(idx)})"
        if idx >= END_OF_FIXED:
            return f"{where}, below the last slot: nothing is ever mapped there"
        pte = self.pte(idx)
        if pte & _PAGE_PRESENT:
            return f"{where}, mapped to phys 0x{pte & self.pt.pfn_mask:08x}"
        return f"{where}, not mapped (set_fixmap() was not called for it, or clear_fixmap() was)"

    def entries(self, first: int = 0, end: int = END_OF_FIXED) -> list[FixmapEntry]:
        """The present slots in [first, end), as FixmapEntry records."""
        out: list[FixmapEntry] = []
        for idx in range(first, end):
            pte = self.pte(idx)
            if pte & _PAGE_PRESENT:
                out.append(FixmapEntry(idx, fixmap_name(idx), _fix_to_virt(idx), pte))
        return out
