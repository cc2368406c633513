"""The per-cpu page lists in guest memory, and their moves to and from the host.

Models the lists of 6.1's struct per_cpu_pages as the kernel keeps them: one
circular list per order and migratetype (order_to_pindex()), headed by a
struct list_head in struct per_cpu_pages and linked through each block's
page->pcp_list (the words of page->lru), newest first; every list_add()
and list_del() with CONFIG_DEBUG_LIST's checks (kernel/list_debug.py),
list_del() leaving LIST_POISON2 in lru.prev (and lru.next 0, what the
allocation's clear_page_pfmemalloc() makes of LIST_POISON1 next).  Guest code takes and gives
order-0 pages there itself (guest/lib/page_alloc.c: rmqueue_pcplist() and
free_unref_page() without a hypercall) and the host's pcp.py refills and
drains the same lists.

Differs: between guest runs the host may hold the lists itself, as Python
lists of pfns (mm/mmzone.py PerCpuPages), because its own order-0 fast path
cannot afford a walk of guest words per call; pcp_to_host() takes them out
of guest memory, pcp_to_guest() puts them back before any guest
instruction runs (the machine calls it as a run starts).  While the host
holds them, it holds pcp->lock too, so guest code that runs all the same
(a host program's own emu_start()) finds the lock taken and leaves the
lists alone, as 6.1's pcp_spin_trylock() failing sends an allocation or a
free past them: to the host, which serves it from the lists it holds.
The lru words of the pages on them are stale in guest memory meanwhile.  Lists that guest code left
broken stay in guest memory, where the next list_del() or list_add() on
them reports it, as in 6.1.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn, Optional

from mmemu.kernel.list_debug import (
    LIST_POISON2, check_data_corruption, list_add_valid, list_del_entry_valid,
    DEL_NEXT_PREV,
)
from mmemu.layout import PAGE_OFFSET
from mmemu.mm.mmzone import (
    NR_PCP_LISTS, OFF_LRU_NEXT, PAGE_WORDS, PCP_COUNT, PCP_LISTS, PCP_LOCK, PCP_STRIDE, PCP_WORDS,
    STRUCT_PAGE_SIZE, W_NEXT, W_PREV, PerCpuPages, pindex_to_order,
)

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState


class GuestPcpList:
    """One pcp list in guest memory: pcp->lists[pindex] and the blocks on it.

    Answers what pcp.py asks of a list: truth (list_empty()), append()
    (list_add(): the newest block, allocated first), pop() (list_first_entry()
    and list_del(), leaving lru.next 0 as the allocation's
    clear_page_pfmemalloc() would), add_tail() (rmqueue_bulk()'s list_add_tail()),
    pop_tail() (free_pcppages_bulk()'s list_last_entry() and list_del()),
    len() and iteration (oldest first, as a Python list's order).  Each
    move changes pcp->count by the block's pages.  A link that fails its
    check is reported as CONFIG_DEBUG_LIST reports it, the move is not
    made, and the BUG kills the task (KernelOops, kernel/list_debug.py);
    a block that was to be added is leaked first (mm.leaked), as the
    kernel loses it.  pop() and pop_tail() of an empty list raise
    IndexError.  Walks stop at a broken link and after max_pfn steps, so a
    loop the guest made cannot hang the host.
    """

    __slots__ = ("mm", "pcp", "hw", "hva", "nr_pages", "order", "u32", "words", "e0", "lim")

    def __init__(self, mm: MmState, pcp: PerCpuPages, pindex: int) -> None:
        self.mm, self.pcp = mm, pcp
        self.hw = pcp.base + PCP_LISTS + 2 * pindex          # u32 index of the list_head
        self.hva = PAGE_OFFSET + 4 * self.hw
        self.order = pindex_to_order(pindex, pcp.thp_order)
        self.nr_pages = 1 << self.order
        # For the moves' inline checks: page->pcp_list of pfn 0, and the span
        # of every pcp_list in mem_map past it.
        self.u32, self.words = mm.u32, pcp.words
        self.e0, self.lim = mm.mvirt + OFF_LRU_NEXT, mm.max_pfn * STRUCT_PAGE_SIZE

    # -- addresses ------------------------------------------------------------

    def _pfn(self, va: int) -> Optional[int]:
        """The pfn whose page->pcp_list is at va, or None (not in mem_map)."""
        pfn, rest = divmod(va - self.mm.mvirt - OFF_LRU_NEXT, STRUCT_PAGE_SIZE)
        if rest or not 0 <= pfn < self.mm.max_pfn:
            return None
        return pfn

    def _entry(self, pfn: int) -> int:
        return self.mm.mvirt + pfn * STRUCT_PAGE_SIZE + OFF_LRU_NEXT

    def _w(self, va: int) -> int:
        """The u32 index of a list_head known to be the head or in mem_map."""
        return (va - PAGE_OFFSET) >> 2

    def _member(self, va: int) -> bool:
        return va == self.hva or self._pfn(va) is not None

    # -- the moves ------------------------------------------------------------
    #
    # Each checks its links inline for a sound list and makes the move; any
    # other goes to a _*_corrupt() function, which reports what
    # CONFIG_DEBUG_LIST finds and never returns (the BUG raises KernelOops).

    def __bool__(self) -> bool:
        return self.u32[self.hw] != self.hva

    def _add(self, pfn: int, prv: int, nxt: int) -> None:
        """__list_add() of pfn's block between prv and nxt, after
        __list_add_valid()'s checks (and mmemu's: both are this list's head
        or struct pages); pcp->count grows by the block's pages."""
        u32, hva, e0, lim = self.u32, self.hva, self.e0, self.lim
        noff, poff = nxt - e0, prv - e0
        new = e0 + pfn * STRUCT_PAGE_SIZE
        if ((nxt == hva or (0 <= noff < lim and not noff % STRUCT_PAGE_SIZE))
                and (prv == hva or (0 <= poff < lim and not poff % STRUCT_PAGE_SIZE))):
            nw, pw = (nxt - PAGE_OFFSET) >> 2, (prv - PAGE_OFFSET) >> 2
            if u32[nw + 1] == prv and u32[pw] == nxt and new != prv and new != nxt:
                w = (new - PAGE_OFFSET) >> 2
                u32[w] = nxt
                u32[w + 1] = prv
                u32[nw + 1] = new
                u32[pw] = new
                self.words[PCP_COUNT] += self.nr_pages
                return
        self._add_corrupt(pfn, prv, nxt)

    def _add_corrupt(self, pfn: int, prv: int, nxt: int) -> NoReturn:
        """The report of a list_add() whose checks fail; the block is leaked
        first (the kernel's BUG leaves it on no list)."""
        self.mm.leak(pfn, self.order)
        new, u32 = self._entry(pfn), self.u32
        if self._member(nxt) and self._member(prv):
            next_prev, prev_next = u32[self._w(nxt) + 1], u32[self._w(prv)]
        else:
            next_prev = prev_next = 0xFFFFFFFF
        list_add_valid(self.mm.reporter, new, prv, nxt, next_prev, prev_next)
        check_data_corruption(self.mm.reporter, DEL_NEXT_PREV, "__list_add_valid",
                              f"list_add corruption. {new:08x} would be linked to a list "
                              "whose neighbours are not struct pages",
                              notes=["mmemu: a per-cpu page list links only its head and "
                                     "struct pages of mem_map"])

    def append(self, pfn: int) -> None:
        """list_add(&page->pcp_list, list): the block first on the list."""
        self._add(pfn, self.hva, self.u32[self.hw])

    def add_tail(self, pfns: list[int]) -> None:
        """list_add_tail() of each block in turn: the first given is allocated
        first.  Blocks after one whose list_add() BUGs are leaked (the
        kernel's loop would not have reached them either)."""
        for i, pfn in enumerate(pfns):
            try:
                self._add(pfn, self.u32[self.hw + 1], self.hva)
            except BaseException:
                for rest in pfns[i + 1:]:
                    self.mm.leak(rest, self.order)
                raise

    def _unlink(self, entry: int) -> int:
        """list_del() of the block at entry, after __list_del_entry_valid()'s
        checks (and mmemu's: entry is a struct page between two list_heads
        of this list); its pfn.  lru.next is left 0, as the allocation's
        clear_page_pfmemalloc() makes of list_del()'s LIST_POISON1 at once
        (a block off a pcp list is being allocated, or merged)."""
        u32, hva, e0, lim = self.u32, self.hva, self.e0, self.lim
        off = entry - e0
        if 0 <= off < lim and not off % STRUCT_PAGE_SIZE:
            w = (entry - PAGE_OFFSET) >> 2
            nxt, prv = u32[w], u32[w + 1]
            noff, poff = nxt - e0, prv - e0
            if ((nxt == hva or (0 <= noff < lim and not noff % STRUCT_PAGE_SIZE))
                    and (prv == hva or (0 <= poff < lim and not poff % STRUCT_PAGE_SIZE))):
                nw, pw = (nxt - PAGE_OFFSET) >> 2, (prv - PAGE_OFFSET) >> 2
                if u32[pw] == entry and u32[nw + 1] == entry:
                    u32[nw + 1] = prv
                    u32[pw] = nxt
                    u32[w] = 0
                    u32[w + 1] = LIST_POISON2
                    self.words[PCP_COUNT] -= self.nr_pages
                    return off // STRUCT_PAGE_SIZE
        self._unlink_corrupt(entry)

    def _unlink_corrupt(self, entry: int) -> NoReturn:
        """The report of a list_del() whose checks fail."""
        rep = self.mm.reporter
        if self._pfn(entry) is None:
            # The head's own link is not a struct page: list_del() of it
            # would check through it; say so as __list_del_entry_valid() would.
            check_data_corruption(rep, DEL_NEXT_PREV, "__list_del_entry_valid",
                                  f"list_del corruption. {self.hva:08x} is linked to "
                                  f"{entry:08x}, which is not a struct page",
                                  notes=["mmemu: the per-cpu page list's head points outside "
                                         "mem_map"])
        w = self._w(entry)
        nxt, prv = self.u32[w], self.u32[w + 1]
        kw = self.mm.kernel_word
        list_del_entry_valid(rep, entry, nxt, prv, lambda: kw(prv), lambda: kw(nxt + 4), (0, 4))
        outside = prv if self._member(nxt) else nxt
        check_data_corruption(
            rep, DEL_NEXT_PREV, "__list_del_entry_valid",
            f"list_del corruption. {entry:08x} is linked to {outside:08x}, which is not a "
            "struct page", notes=["mmemu: a per-cpu page list links only its head and struct "
                                  "pages of mem_map; this entry's neighbour is neither"])

    def pop(self) -> int:
        """list_first_entry() and list_del(): the newest block."""
        if not self:
            raise IndexError("pop from an empty per-cpu page list")
        return self._unlink(self.u32[self.hw])

    def pop_tail(self) -> int:
        """list_last_entry() and list_del(): the oldest block (IndexError when
        the head's prev is the head)."""
        last = self.u32[self.hw + 1]
        if last == self.hva:
            raise IndexError("pop from an empty per-cpu page list")
        return self._unlink(last)

    def walk(self) -> Optional[list[int]]:
        """The pfns on the list, oldest first, or None if a link is broken
        (a next whose prev is not where the walk came from, a link outside
        mem_map, or more entries than pages)."""
        u32, out = self.mm.u32, list[int]()
        prv, va = self.hva, u32[self.hw]
        for _ in range(self.mm.max_pfn + 1):
            if va == self.hva:
                if u32[self.hw + 1] != prv:
                    return None
                out.reverse()
                return out
            pfn = self._pfn(va)
            if pfn is None or u32[self._w(va) + 1] != prv:
                return None
            out.append(pfn)
            prv, va = va, u32[self._w(va)]
        return None

    def __iter__(self) -> Iterator[int]:
        """The pfns oldest first, as far as the links hold."""
        u32, out = self.mm.u32, list[int]()
        nxt, va = self.hva, u32[self.hw + 1]
        for _ in range(self.mm.max_pfn):
            if va == self.hva:
                break
            pfn = self._pfn(va)
            if pfn is None or u32[self._w(va)] != nxt:
                break
            out.append(pfn)
            nxt, va = va, u32[self._w(va) + 1]
        return iter(out)

    def __len__(self) -> int:
        return sum(1 for _ in self)


# -- placing the pagesets, and moving the lists ----------------------------------

def place_pagesets(mm: MmState, phys: int) -> None:
    """Give every zone's per_cpu_pageset its struct per_cpu_pages in guest
    memory from phys on (the per-cpu area's dynamic part: 6.1's
    setup_zone_pageset() allocates them there), one cache line apart.
    The lists stay with the host until pcp_to_guest()."""
    u32 = mm.u32
    for zone in mm.zones:
        pcp = zone.per_cpu_pageset
        base = phys >> 2
        u32[base:base + PCP_WORDS] = pcp.words
        pcp.words, pcp.base = u32[base:base + PCP_WORDS], base
        pcp.words[PCP_LOCK] = 1                           # the host holds the lists
        for pindex in range(NR_PCP_LISTS):
            head = base + PCP_LISTS + 2 * pindex
            u32[head] = u32[head + 1] = PAGE_OFFSET + 4 * head       # INIT_LIST_HEAD()
        phys += PCP_STRIDE
    mm.pcp_placed = True


def pcp_to_guest(mm: MmState) -> None:
    """Put the lists the host holds back into guest memory, linked newest
    first, with pcp->count; from now on the lists are the guest's, and
    the host's order-0 fast paths are off until pcp_to_host()."""
    mm.pcp_hold_refused = False            # a run: lists the guest broke may be mended
    if mm.pcp_in_guest or not mm.pcp_placed:
        return
    u32, mbase, mvirt = mm.u32, mm.mbase, mm.mvirt + OFF_LRU_NEXT
    for zone in mm.zones:
        pcp = zone.per_cpu_pageset
        count = pcp.count
        for pindex, lst in enumerate(pcp.lists):
            head = pcp.base + PCP_LISTS + 2 * pindex
            hva = PAGE_OFFSET + 4 * head
            prv = hva
            for pfn in reversed(lst):                     # newest first
                va = mvirt + pfn * STRUCT_PAGE_SIZE
                w = mbase + pfn * PAGE_WORDS
                u32[w + W_PREV] = prv
                u32[((prv - PAGE_OFFSET) >> 2)] = va
                prv = va
            u32[(prv - PAGE_OFFSET) >> 2] = hva
            u32[head + 1] = prv
        pcp.words[PCP_COUNT] = count
        pcp.words[PCP_LOCK] = 0                           # spin_unlock(&pcp->lock)
        pcp.lists = [GuestPcpList(mm, pcp, i) for i in range(NR_PCP_LISTS)]
        pcp.in_guest = True
    mm.pcp_in_guest = True
    mm.fast_paths_changed(watchers=False)


def pcp_to_host(mm: MmState) -> bool:
    """Take the lists out of guest memory for the host's fast paths, if every
    list is whole and pcp->count agrees with them; False (nothing moved)
    otherwise: broken lists stay where the next list operation reports
    them.  The blocks' lru words become what an allocation from the list
    leaves (lru.next 0, LIST_POISON2), and stay so while the host holds them."""
    if not mm.pcp_in_guest:
        return True
    held = []
    for zone in mm.zones:
        pcp = zone.per_cpu_pageset
        lists = [lst.walk() for lst in pcp.lists]
        if any(lst is None for lst in lists):
            return False
        pages = sum(len(lst) << pindex_to_order(i, pcp.thp_order)
                    for i, lst in enumerate(lists) if lst)
        if pages != pcp.count:
            return False
        held.append((pcp, lists))
    u32, mbase = mm.u32, mm.mbase
    for pcp, lists in held:
        for lst in lists:
            for pfn in lst or ():
                w = mbase + pfn * PAGE_WORDS
                u32[w + W_NEXT], u32[w + W_PREV] = 0, LIST_POISON2
        pcp.lists = [lst or [] for lst in lists]
        pcp.words[PCP_LOCK] = 1                           # the host holds pcp->lock
        pcp.in_guest = False
        pcp.rebudget()
    mm.pcp_in_guest = False
    mm.fast_paths_changed(watchers=False)
    return True
