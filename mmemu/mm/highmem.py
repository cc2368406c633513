"""HighMem: the persistent kmap area (pkmap) and the per-CPU kmap_local /
kmap_atomic slots in the fixmap.

Models mm/highmem.c and include/linux/highmem-internal.h of Linux 6.1
(CONFIG_HIGHMEM, CONFIG_KMAP_LOCAL, no ARCH_NEEDS_KMAP_HIGH_GET, no cache
colouring):

* kmap(page) of a lowmem page is its direct-map address.  A HighMem page
  gets one of LAST_PKMAP slots at PKMAP_BASE (map_new_virtual()), and the
  same address again while it is mapped.  pkmap_count[slot] is 0 when the
  slot is free (unmapped and flushed since), 1 when mapped with no user
  (kunmapped, waiting for flush_all_zero_pkmaps()), n + 1 with n users.
  Slots at count 1 are recycled all at once, with one TLB flush, each time
  the search for a free slot wraps (last_pkmap_nr back to 0).
* page_address() of a HighMem page is its pkmap address while a slot holds
  it (also at count 1, until the flush), NULL otherwise: the host keeps
  page_address_htable as a dict, pfn -> address.
* kmap_local_page() and kmap_atomic() map a HighMem page into this CPU's
  next fixmap slot, FIX_KMAP_BEGIN + idx + KM_MAX_IDX * cpu, a stack
  unmapped in reverse order; kmap_atomic() also disables preemption and
  page faults.  The stack depth (current->kmap_ctrl.idx) lives in the
  per-cpu word kmap_atomic_idx, so guest and host read the same number.
  6.1 pushes first and then checks BUG_ON(idx >= KM_MAX_IDX): at most
  KM_MAX_IDX - 1 = 15 mappings nest.

Where Linux BUG()s, mmemu reports "kernel BUG at mm/highmem.c:NNN!" with
6.1's line and changes nothing (the call returns NULL or does nothing);
WARN_ON_ONCE()s report once per machine.

Differs: one CPU; a kmap() that would sleep for a slot (all LAST_PKMAP in
use) reports and returns NULL, since nothing else can run to free one;
kunmap of a page that is not kmapped changes nothing after the BUG; an
out-of-order kunmap_local() flushes the whole TLB (6.1 flushes only the
address passed, and the innermost slot's translation stays stale).

TLB: kunmap_local()/kunmap_atomic() from the host flush the TLB; through
the hypercalls they only clear the PTE, and the guest flushes its own
entry with invlpg when the call returns, as arch_kmap_local_post_unmap()
does (guest/include/mmemu/highmem.h).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Optional, Protocol

from mmemu.arch.x86.pgtable import PAGE_KERNEL, _PAGE_PRESENT, PageTable
from mmemu.errors import CorruptionError, UsageError
from mmemu.kernel.panic import Reporter
from mmemu.layout import (
    FIX_KMAP_BEGIN, FIX_KMAP_END, KM_MAX_IDX, LAST_PKMAP, NR_CPUS, PAGE_MASK, PAGE_OFFSET,
    PAGE_SHIFT, PAGE_SIZE, PKMAP_BASE, Layout, fix_to_virt as _fix_to_virt,
    virt_to_fix as _virt_to_fix,
)

LAST_PKMAP_MASK = LAST_PKMAP - 1
PKMAP_END = PKMAP_BASE + LAST_PKMAP * PAGE_SIZE
kmap_prot = PAGE_KERNEL
KMAP_LOCAL_SLOTS = KM_MAX_IDX * NR_CPUS
KMAP_LOCAL_LOW = _fix_to_virt(FIX_KMAP_END)                # lowest kmap_local address
KMAP_LOCAL_HIGH = _fix_to_virt(FIX_KMAP_BEGIN)             # CPU 0's first slot
_PTE_AD = 0x060                                             # accessed, dirty: the CPU sets them

# 6.1's mm/highmem.c lines of the checks modelled here.
HIGHMEM_C = "mm/highmem.c"
BUG_FLUSH_PTE_NONE = 207        # flush_all_zero_pkmaps(): BUG_ON(pte_none(...))
BUG_KUNMAP_NOT_MAPPED = 358     # kunmap_high(): BUG_ON(!vaddr)
BUG_KUNMAP_COUNT_ZERO = 368     # kunmap_high(): case 0: BUG()
BUG_KMAP_LOCAL_PUSH = 467       # kmap_local_idx_push(): BUG_ON(idx >= KM_MAX_IDX)
BUG_KMAP_LOCAL_POP = 479        # kmap_local_idx_pop(): BUG_ON(idx < 0)
BUG_KMAP_LOCAL_PTE = 552        # __kmap_local_pfn_prot(): BUG_ON(!pte_none(*kmap_pte))
WARN_KUNMAP_LOCAL_USER = 604    # kunmap_local_indexed(): WARN_ON_ONCE(addr < PAGE_OFFSET)
WARN_KUNMAP_LOCAL_ORDER = 610   # kunmap_local_indexed(): WARN_ON_ONCE(addr != _fix_to_virt(...))

KMAP_SITE = "include/linux/highmem-internal.h:44"
KUNMAP_SITE = "include/linux/highmem-internal.h:55"

# What kunmap_local_indexed() did.
UNMAPPED, NOT_A_SLOT, REFUSED = "unmapped", "not-a-slot", "refused"


class KmapContext(Protocol):
    """What kmap reads and changes of the CPU's context: kernel/sched.py's
    AtomicContext (per-cpu words in guest memory)."""

    kmap_local_idx: int
    preempt_count: int
    pagefault_disabled: int

    def might_sleep(self, where: str) -> object: ...
    def preempt_disable(self) -> None: ...
    def preempt_enable(self) -> None: ...
    def pagefault_disable(self) -> None: ...
    def pagefault_enable(self) -> None: ...


class HighmemOwner(Protocol):
    """A machine with its kmap state (what the views and the checker read)."""

    @property
    def highmem(self) -> Highmem: ...


def _boot_pte(pt: PageTable, va: int) -> int:
    """The PTE slot of va in a page table the boot made (pkmap, fixmap)."""
    slot = pt.pte_slot(va)
    assert slot is not None, f"no boot page table for 0x{va:08x}"
    return slot


class HighmemCorruption(CorruptionError):
    """pkmap_count, page_address_htable, kmap_ctrl and the PTEs disagree."""


def PKMAP_ADDR(nr: int, base: int = PKMAP_BASE) -> int:
    """PKMAP_ADDR(): the address of pkmap slot nr (base: the machine's PKMAP_BASE)."""
    return base + (nr << PAGE_SHIFT)


def PKMAP_NR(vaddr: int, base: int = PKMAP_BASE) -> int:
    """PKMAP_NR(): the pkmap slot of vaddr."""
    return (vaddr - base) >> PAGE_SHIFT


def kmap_local_calc_idx(idx: int, cpu: int = 0) -> int:
    """kmap_local_calc_idx(): the fixmap slot offset of stack entry idx of cpu."""
    return idx + KM_MAX_IDX * cpu


class PkmapSlot(NamedTuple):
    """One pkmap slot in use: index, address, pfn mapped, pkmap_count."""

    slot: int
    va: int
    pfn: int
    count: int      # type: ignore[assignment]  # the kernel's word; shadows tuple.count

    @property
    def users(self) -> int:
        """How many kmap()s hold it (pkmap_count - 1)."""
        return max(self.count - 1, 0)


class KmapLocalSlot(NamedTuple):
    """One kmap_local/kmap_atomic fixmap slot that is mapped.

    slot is the offset from FIX_KMAP_BEGIN (idx + KM_MAX_IDX * cpu); count
    is 1 for a live entry of the per-CPU stack and 0 for a PTE nothing on
    the stack accounts for.
    """

    slot: int
    va: int
    pfn: int
    count: int      # type: ignore[assignment]  # the kernel's word; shadows tuple.count

    @property
    def cpu(self) -> int:
        return self.slot // KM_MAX_IDX

    @property
    def depth(self) -> int:
        return self.slot % KM_MAX_IDX


class Highmem:
    """The kmap state of one machine.

    pt is swapper_pg_dir's PageTable (the pkmap and fixmap page tables were
    made at boot), layout gives max_low_pfn and the flavour's PKMAP_BASE and
    LAST_PKMAP (1024 slots on 686, 512 on 686-pae), sched is the
    AtomicContext (per-cpu words), reporter the machine's Reporter
    (kernel/panic.py).  ``u32`` is the view of guest RAM that holds
    page-table entries (64-bit ones on PAE), indexed by a slot's address
    >> pt.pte_shift.
    """

    def __init__(self, pt: PageTable, layout: Layout, sched: KmapContext,
                 reporter: Reporter) -> None:
        self.pt = pt
        self.rep = reporter
        self.u32 = pt.ptes
        self.max_low_pfn = layout.max_low_pfn
        self.max_pfn = layout.max_pfn
        self.sched = sched
        self.pkmap_base = layout.pkmap_base
        self.last_pkmap = layout.last_pkmap
        self.pkmap_end = layout.pkmap_end
        self.kmap_prot = pt.flavour.PAGE_KERNEL
        self.pkmap_count = [0] * self.last_pkmap
        self.page_address_htable: dict[int, int] = {}   # pfn -> pkmap address
        self.last_pkmap_nr = 0
        self.kmap_pteval = [0] * KM_MAX_IDX     # current->kmap_ctrl.pteval[]
        self.pkmap_flushes = 0                  # TLB flushes by flush_all_zero_pkmaps()
        shift = pt.pte_shift
        self._pkmap_pte = _boot_pte(pt, self.pkmap_base) >> shift   # pkmap_page_table's index
        # kmap_get_pte() of every kmap_local slot, as entry indexes: the fixmap's
        # page table is made at boot (arch/x86/init.py) and never replaced.
        self._kmap_local_pte = [_boot_pte(pt, _fix_to_virt(FIX_KMAP_BEGIN + slot)) >> shift
                                for slot in range(KMAP_LOCAL_SLOTS)]

    def PKMAP_ADDR(self, nr: int) -> int:
        return self.pkmap_base + (nr << PAGE_SHIFT)

    def pte_pfn(self, pte: int) -> int:
        """pte_pfn(): the frame of an entry (NX and the flags dropped)."""
        return (pte & self.pt.pfn_mask) >> PAGE_SHIFT

    def PKMAP_NR(self, vaddr: int) -> int:
        return (vaddr - self.pkmap_base) >> PAGE_SHIFT

    # -- reports ----------------------------------------------------------
    def _bug(self, file: str, line: int, function: str, note: str) -> None:
        """BUG() in mm/highmem.c: reported, and the caller changes nothing."""
        self.rep.bug(file, line, function, notes=[note])

    def _warn_once(self, file: str, line: int, function: str, note: Optional[str] = None) -> None:
        """WARN_ON_ONCE() in mm/highmem.c: the first time this site fires."""
        self.rep.warn(file, line, function, once=(file, line),
                      notes=[f"mmemu: called from {self.rep.caller()}", note])

    # -- pages ----------------------------------------------------------
    def PageHighMem(self, pfn: int) -> bool:
        """PageHighMem(): the page has no permanent kernel mapping (pfn >= max_low_pfn)."""
        return pfn >= self.max_low_pfn

    def _check_pfn(self, pfn: int, what: str) -> None:
        if not 0 <= pfn < self.max_pfn:
            raise UsageError(f"{what}: pfn 0x{pfn:x} is not a page frame "
                             f"(max_pfn 0x{self.max_pfn:x})")

    def page_address(self, pfn: int) -> Optional[int]:
        """page_address(): a page's kernel address; None (NULL) for HighMem not kmapped."""
        if not self.PageHighMem(pfn):
            return PAGE_OFFSET + (pfn << PAGE_SHIFT)
        return self.page_address_htable.get(pfn)

    def page_address_kmapped(self, pfn: int) -> Optional[int]:
        """The pkmap address of a HighMem page, or None: the page allocator's hook."""
        return self.page_address_htable.get(pfn)

    # -- kmap / kunmap ----------------------------------------------------
    def kmap(self, pfn: int) -> Optional[int]:
        """kmap(page): a kernel address for the page, which may sleep.

        Models include/linux/highmem-internal.h:kmap(): might_sleep(), the
        direct-map address for lowmem, kmap_high() for HighMem.  Returns
        None (NULL) only when every pkmap slot is in use.
        """
        self._check_pfn(pfn, "kmap")
        self.sched.might_sleep(KMAP_SITE)
        if not self.PageHighMem(pfn):
            return self.page_address(pfn)
        return self.kmap_high(pfn)

    def kunmap(self, pfn: int) -> bool:
        """kunmap(page): drop one kmap() of the page (nothing for lowmem)."""
        self._check_pfn(pfn, "kunmap")
        self.sched.might_sleep(KUNMAP_SITE)
        if not self.PageHighMem(pfn):
            return True
        return self.kunmap_high(pfn)

    def kmap_high(self, pfn: int) -> Optional[int]:
        """kmap_high(): map a HighMem page in the pkmap area, or take another reference."""
        vaddr = self.page_address_htable.get(pfn)
        if vaddr is None:
            vaddr = self.map_new_virtual(pfn)
            if vaddr is None:
                return None
        self.pkmap_count[self.PKMAP_NR(vaddr)] += 1
        return vaddr

    def map_new_virtual(self, pfn: int) -> Optional[int]:
        """map_new_virtual(): find a free pkmap slot (count 0) and map pfn there.

        Scans from last_pkmap_nr on; wrapping to slot 0 first recycles every
        slot at count 1 (flush_all_zero_pkmaps()).  When all self.last_pkmap
        slots have users Linux sleeps until a kunmap(); mmemu reports and
        returns None.
        """
        count = self.last_pkmap
        while True:
            self.last_pkmap_nr = (self.last_pkmap_nr + 1) & (self.last_pkmap - 1)
            if self.last_pkmap_nr == 0:
                self.flush_all_zero_pkmaps()
                count = self.last_pkmap
            if not self.pkmap_count[self.last_pkmap_nr]:
                break
            count -= 1
            if not count:
                self.rep.report(f"mmemu: kmap: all {self.last_pkmap} pkmap slots are in use; "
                                "Linux would sleep in map_new_virtual() until one is freed "
                                f"(kmap of pfn 0x{pfn:x} returns NULL), called from "
                                f"{self.rep.caller()}")
                return None
        nr = self.last_pkmap_nr
        self.u32[self._pkmap_pte + nr] = self.pt.mk_pte(pfn, self.kmap_prot)   # was not present: no flush
        self.pkmap_count[nr] = 1
        self.page_address_htable[pfn] = self.PKMAP_ADDR(nr)
        return self.PKMAP_ADDR(nr)

    def flush_all_zero_pkmaps(self) -> None:
        """flush_all_zero_pkmaps(): unmap every slot at count 1, then one TLB flush."""
        need_flush = False
        counts, u32, base = self.pkmap_count, self.u32, self._pkmap_pte
        for i in range(self.last_pkmap):
            if counts[i] != 1:
                continue
            counts[i] = 0
            pte = u32[base + i]
            if not pte & _PAGE_PRESENT:
                self._bug(HIGHMEM_C, BUG_FLUSH_PTE_NONE, "flush_all_zero_pkmaps",
                          f"mmemu: pkmap slot {i} had count 1 but no PTE")
                continue
            u32[base + i] = 0
            pfn = self.pte_pfn(pte)
            if self.page_address_htable.get(pfn) == self.PKMAP_ADDR(i):
                del self.page_address_htable[pfn]      # set_page_address(page, NULL)
            need_flush = True
        if need_flush:
            self.pt.flush_tlb()       # flush_tlb_kernel_range() of the whole pkmap area
            self.pkmap_flushes += 1

    def kmap_flush_unused(self) -> None:
        """kmap_flush_unused(): recycle the unused pkmap slots now."""
        self.flush_all_zero_pkmaps()

    def kunmap_high(self, pfn: int) -> bool:
        """kunmap_high(): drop one reference; the slot stays mapped until the next flush.

        A page that is not kmapped, or one whose every kmap() was already
        undone, is Linux's BUG(): reported, nothing changed, False returned.
        """
        vaddr = self.page_address_htable.get(pfn)
        if vaddr is None:
            self._bug(HIGHMEM_C, BUG_KUNMAP_NOT_MAPPED, "kunmap_high",
                      f"mmemu: kunmap of pfn 0x{pfn:x}, which is not kmapped "
                      "(page_address() is NULL); nothing changed")
            return False
        nr = self.PKMAP_NR(vaddr)
        if self.pkmap_count[nr] - 1 == 0:
            self._bug(HIGHMEM_C, BUG_KUNMAP_COUNT_ZERO, "kunmap_high",
                      f"mmemu: kunmap of pfn 0x{pfn:x} (pkmap slot {nr}), which has no kmap "
                      "left to undo: more kunmap()s than kmap()s; nothing changed")
            return False
        self.pkmap_count[nr] -= 1
        return True

    # -- kmap_local / kmap_atomic -----------------------------------------
    def kmap_local_page(self, pfn: int) -> Optional[int]:
        """kmap_local_page(): a CPU-local mapping; the direct-map address for lowmem."""
        self._check_pfn(pfn, "kmap_local_page")
        return self._kmap_local_page(pfn)

    def _kmap_local_page(self, pfn: int) -> Optional[int]:
        """kmap_local_page() of a pfn already known to be a page frame."""
        if not self.PageHighMem(pfn):
            return self.page_address(pfn)
        return self.kmap_local_pfn(pfn)

    def kmap_local_pfn(self, pfn: int, prot: Optional[int] = None) -> Optional[int]:
        """__kmap_local_pfn_prot(): push a slot on this CPU's kmap stack and map pfn there.

        Returns the slot's address, or None after reporting the BUG when the
        stack is full (15 deep) or the slot's PTE is unexpectedly present.
        """
        depth = self.sched.kmap_local_idx
        if depth + 1 >= KM_MAX_IDX:
            self._bug(HIGHMEM_C, BUG_KMAP_LOCAL_PUSH, "kmap_local_idx_push",
                      f"mmemu: kmap_local/kmap_atomic nested {depth + 1} deep; 6.1 allows "
                      f"{KM_MAX_IDX - 1} (KM_MAX_IDX is {KM_MAX_IDX}); nothing was mapped")
            return None
        if prot is None:
            prot = self.kmap_prot
        idx = kmap_local_calc_idx(depth)
        vaddr = _fix_to_virt(FIX_KMAP_BEGIN + idx)
        slot = self._kmap_local_pte[idx]
        if self.u32[slot] & _PAGE_PRESENT:
            self._bug(HIGHMEM_C, BUG_KMAP_LOCAL_PTE, "__kmap_local_pfn_prot",
                      f"mmemu: kmap_local slot {depth} (0x{vaddr:08x}) is still mapped "
                      f"(pte {self.pt.entry_str(self.u32[slot])}); nothing was mapped")
            return None
        pteval = self.pt.mk_pte(pfn, prot)
        self.u32[slot] = pteval                  # was not present: no flush
        self.kmap_pteval[depth] = pteval
        self.sched.kmap_local_idx = depth + 1
        return vaddr

    def kunmap_local(self, vaddr: int, flush: bool = True) -> bool:
        """kunmap_local(): unmap the innermost kmap_local slot (see _kunmap_local_indexed)."""
        return self._kunmap_local_indexed(vaddr, flush) != REFUSED

    def _kunmap_local_indexed(self, vaddr: int, flush: bool = True) -> str:
        """kunmap_local_indexed(): pop this CPU's kmap stack.

        An address outside the kmap slots (a lowmem page's) unmaps nothing
        (NOT_A_SLOT; a user-space address also WARNs once).  The stack is
        popped from the top whatever vaddr is: an address that is not the
        innermost slot WARNs once and, as in Linux, the innermost slot is
        the one unmapped.  Popping an empty stack is a BUG (REFUSED).

        flush: flush_tlb_one_kernel() after clearing the PTE (from the host
        that is a whole-TLB flush).  The hypercalls pass False: the guest
        flushes its own TLB entry (invlpg of vaddr) when the call returns,
        as arch_kmap_local_post_unmap() does (guest/include/mmemu/highmem.h).
        Differs: out of order, 6.1 flushes only vaddr, so the innermost
        slot's stale translation survives; mmemu flushes everything then, so
        that a later use of that slot faults and is reported.
        """
        addr = vaddr & PAGE_MASK
        if addr < KMAP_LOCAL_LOW or addr > KMAP_LOCAL_HIGH:
            if addr < PAGE_OFFSET:
                self._warn_once(HIGHMEM_C, WARN_KUNMAP_LOCAL_USER, "kunmap_local_indexed",
                                f"mmemu: kunmap_local(0x{vaddr:08x}): a user-space address")
            return NOT_A_SLOT
        idx = self.sched.kmap_local_idx - 1
        if not 0 <= idx < KM_MAX_IDX:
            self._warn_once(HIGHMEM_C, WARN_KUNMAP_LOCAL_ORDER, "kunmap_local_indexed")
            self._bug(HIGHMEM_C, BUG_KMAP_LOCAL_POP, "kmap_local_idx_pop",
                      f"mmemu: kunmap_local(0x{vaddr:08x}) with no kmap_local mapping "
                      "on this CPU; nothing changed")
            return REFUSED
        slot = kmap_local_calc_idx(idx)
        top = _fix_to_virt(FIX_KMAP_BEGIN + slot)
        if addr != top:
            self._warn_once(HIGHMEM_C, WARN_KUNMAP_LOCAL_ORDER, "kunmap_local_indexed",
                            f"mmemu: kunmap_local(0x{vaddr:08x}) out of order: the innermost "
                            f"mapping is 0x{top:08x} (slot {idx}), which Linux unmaps instead")
            flush = True
        pte = self._kmap_local_pte[slot]
        old = self.u32[pte]
        self.u32[pte] = 0                        # pte_clear()
        if flush and old & _PAGE_PRESENT:
            self.pt.flush_tlb()                  # flush_tlb_one_kernel(): all of it, from the host
        self.kmap_pteval[idx] = 0
        self.sched.kmap_local_idx = idx
        return UNMAPPED

    def kmap_atomic(self, pfn: int) -> Optional[int]:
        """kmap_atomic(): preempt_disable(), pagefault_disable(), kmap_local_page().

        On failure (the BUG of a full stack) nothing is changed and None returned.
        """
        self._check_pfn(pfn, "kmap_atomic")
        return self._kmap_atomic(pfn)

    def _kmap_atomic(self, pfn: int) -> Optional[int]:
        """kmap_atomic() of a pfn already known to be a page frame (the hypercall's)."""
        return self._atomic(self._kmap_local_page, pfn)

    def kmap_atomic_pfn(self, pfn: int) -> Optional[int]:
        """kmap_atomic_pfn(): kmap_atomic() of a page frame, HighMem or not, always a slot."""
        self._check_pfn(pfn, "kmap_atomic_pfn")
        return self._atomic(self.kmap_local_pfn, pfn)

    def _atomic(self, kmap_local: Callable[[int], Optional[int]], pfn: int) -> Optional[int]:
        """The body of kmap_atomic() for a pfn already known to be a page frame."""
        self.sched.preempt_disable()
        self.sched.pagefault_disable()
        vaddr = kmap_local(pfn)
        if vaddr is None:                       # undo: the BUG changed nothing
            self.sched.pagefault_enable()
            self.sched.preempt_count = self.sched.preempt_count - 1
        return vaddr

    def kunmap_atomic(self, vaddr: int, flush: bool = True) -> bool:
        """__kunmap_atomic(): kunmap_local_indexed(), pagefault_enable(), preempt_enable().

        After the BUG of an empty stack nothing is changed (False).  flush as
        for _kunmap_local_indexed().
        """
        if self._kunmap_local_indexed(vaddr, flush) == REFUSED:
            return False
        self.sched.pagefault_enable()
        self.sched.preempt_enable()
        return True

    def kmap_local_task_dead(self) -> None:
        """The dead task's kmap_local/kmap_atomic slots go, as the last switch
        away from it does (__kmap_local_sched_out() clears their PTEs); the
        next task starts with an empty stack."""
        depth = min(self.sched.kmap_local_idx, KM_MAX_IDX)
        for idx in range(depth):
            self.u32[self._kmap_local_pte[kmap_local_calc_idx(idx)]] = 0
            self.kmap_pteval[idx] = 0
        self.sched.kmap_local_idx = 0
        if depth:
            self.pt.flush_tlb()

    # -- inspection -----------------------------------------------------
    def pkmap_slots(self) -> list[PkmapSlot]:
        """The pkmap slots that are mapped or counted, as PkmapSlot records."""
        out: list[PkmapSlot] = []
        for i in range(self.last_pkmap):
            pte = self.u32[self._pkmap_pte + i]
            if self.pkmap_count[i] or pte & _PAGE_PRESENT:
                out.append(PkmapSlot(i, self.PKMAP_ADDR(i), self.pte_pfn(pte), self.pkmap_count[i]))
        return out

    def kmap_local_pte(self, slot: int) -> int:
        """The PTE of kmap_local slot (offset from FIX_KMAP_BEGIN)."""
        if not 0 <= slot < KMAP_LOCAL_SLOTS:
            raise UsageError(f"kmap_local_pte: slot {slot} is not a kmap_local slot "
                             f"(0..{KMAP_LOCAL_SLOTS - 1})")
        return self.u32[self._kmap_local_pte[slot]]

    def kmap_local_slots(self) -> list[KmapLocalSlot]:
        """The mapped kmap_local/kmap_atomic slots of every CPU, as KmapLocalSlot records."""
        depth = self.sched.kmap_local_idx
        out: list[KmapLocalSlot] = []
        for slot in range(KMAP_LOCAL_SLOTS):
            pte = self.kmap_local_pte(slot)
            if pte & _PAGE_PRESENT:
                live = int(slot < min(depth, KM_MAX_IDX) and pte == self.kmap_pteval[slot])
                out.append(KmapLocalSlot(slot, _fix_to_virt(FIX_KMAP_BEGIN + slot),
                                         self.pte_pfn(pte), live))
        return out

    def describe(self, addr: int) -> Optional[str]:
        """A region describer for oopses: what the pkmap or kmap slot at addr holds."""
        if self.pkmap_base <= addr < self.pkmap_end:
            return self._describe_pkmap(self.PKMAP_NR(addr))
        if KMAP_LOCAL_LOW <= addr < KMAP_LOCAL_HIGH + PAGE_SIZE:
            return self._describe_kmap_local(_virt_to_fix(addr) - FIX_KMAP_BEGIN)
        return None

    def _describe_pkmap(self, nr: int) -> str:
        pte = self.u32[self._pkmap_pte + nr]
        count = self.pkmap_count[nr]
        where = f"the address is in pkmap slot {nr} (persistent kmap area, 0x{self.PKMAP_ADDR(nr):08x})"
        if not pte & _PAGE_PRESENT:
            return f"{where}, not mapped: no kmap() holds this slot"
        if count == 1:
            state = "kunmapped: no kmap() user left, awaiting flush_all_zero_pkmaps()"
        else:
            state = f"pkmap_count {count}: {count - 1} kmap() user(s)"
        return f"{where}, mapped to pfn 0x{self.pte_pfn(pte):x} ({state})"

    def _describe_kmap_local(self, slot: int) -> str:
        cpu, idx = divmod(slot, KM_MAX_IDX)
        pte = self.kmap_local_pte(slot)
        where = (f"the address is in the fixmap, kmap_local/kmap_atomic slot {idx} of CPU {cpu} "
                 f"(FIX_KMAP_BEGIN+{slot})")
        if pte & _PAGE_PRESENT:
            return f"{where}, mapped to pfn 0x{self.pte_pfn(pte):x}"
        depth = self.sched.kmap_local_idx if cpu == 0 else 0
        return (f"{where}, not mapped (CPU {cpu}'s kmap_atomic depth is {depth}: the mapping "
                "was kunmap_atomic()ed or never made)")

    # -- consistency ------------------------------------------------------
    def check(self) -> None:
        """Raise HighmemCorruption unless counts, htable, kmap stack and PTEs agree."""
        problems = self._check_pkmap() + self._check_kmap_local()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise HighmemCorruption(problems[0] + more)

    def _check_pkmap(self) -> list[str]:
        problems: list[str] = []
        owners: dict[int, int] = {}
        for i in range(self.last_pkmap):
            count, pte = self.pkmap_count[i], self.u32[self._pkmap_pte + i]
            present = pte & _PAGE_PRESENT
            if count < 0:
                problems.append(f"pkmap slot {i}: pkmap_count is {count}")
            elif count == 0 and present:
                problems.append(f"pkmap slot {i}: mapped (pte {self.pt.entry_str(pte)}) but pkmap_count is 0")
            elif count > 0 and not present:
                problems.append(f"pkmap slot {i}: pkmap_count {count} but the PTE is not present")
            elif count > 0:
                pfn = self.pte_pfn(pte)
                owners[pfn] = i
                if self.page_address_htable.get(pfn) != self.PKMAP_ADDR(i):
                    problems.append(f"pkmap slot {i}: maps pfn 0x{pfn:x}, whose page_address "
                                    f"is {self.page_address_htable.get(pfn)}")
        for pfn, va in self.page_address_htable.items():
            if owners.get(pfn) != self.PKMAP_NR(va):
                problems.append(f"page_address(pfn 0x{pfn:x}) is 0x{va:08x}, "
                                "but no counted pkmap slot maps it there")
            if not self.PageHighMem(pfn):
                problems.append(f"page_address_htable holds lowmem pfn 0x{pfn:x}")
        return problems

    def _check_kmap_local(self) -> list[str]:
        problems: list[str] = []
        depth = self.sched.kmap_local_idx
        if depth >= KM_MAX_IDX:
            problems.append(f"per-cpu kmap_atomic_idx is {depth} (at most {KM_MAX_IDX - 1})")
            depth = 0
        for slot in range(KMAP_LOCAL_SLOTS):
            pte = self.kmap_local_pte(slot) & ~_PTE_AD
            live = slot < depth
            want = self.kmap_pteval[slot] & ~_PTE_AD if slot < KM_MAX_IDX else 0
            if live and (not pte & _PAGE_PRESENT or pte != want):
                problems.append(f"kmap_local slot {slot}: on the stack as pte {self.pt.entry_str(want)}, "
                                f"but the PTE is {self.pt.entry_str(pte)}")
            elif not live and (pte & _PAGE_PRESENT or want):
                problems.append(f"kmap_local slot {slot}: above the stack (depth {depth}) "
                                f"but pte {self.pt.entry_str(pte)}, "
                                f"kmap_ctrl.pteval {self.pt.entry_str(want)}")
        if self.sched.pagefault_disabled < 0:
            problems.append(f"pagefault_disabled is {self.sched.pagefault_disabled}")
        return problems


# -- for the inspection views and the machine -------------------------------
def pkmap_slots(machine: HighmemOwner) -> list[PkmapSlot]:
    """The pkmap area's slots in use: [PkmapSlot(slot, va, pfn, count)]."""
    return machine.highmem.pkmap_slots()


def kmap_atomic_slots(machine: HighmemOwner) -> list[KmapLocalSlot]:
    """The mapped kmap_local/kmap_atomic fixmap slots: [KmapLocalSlot(slot, va, pfn, count)]."""
    return machine.highmem.kmap_local_slots()


def check_highmem(machine: HighmemOwner) -> None:
    """Raise HighmemCorruption if machine's kmap state and page tables disagree."""
    machine.highmem.check()
