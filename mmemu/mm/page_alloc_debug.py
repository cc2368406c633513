"""Bad-page reports and the page allocator's consistency checker.

Two kinds of code, kept apart from the allocation paths:

- the checks and reports Linux makes on the normal path, in its words:
  page_bad_reason()/free_page_is_bad()/check_new_page() and bad_page()
  of mm/page_alloc.c, dump_page() of mm/debug.c with %pGp of
  lib/vsprintf.c, the VM_BUG_ON_PAGE() and WARN_ON() sites;
- check_page_alloc(), the CONFIG_DEBUG_VM-style validator: it walks mem_map
  and the free lists in guest memory and raises PageAllocCorruption unless
  every page is accounted for.

Reports go to the machine's reporter (mm.reporter, kernel/panic.py), which
adds the task line, the call trace and the taint, and decides what follows.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import TYPE_CHECKING, NoReturn, Optional

from mmemu.errors import PageAllocCorruption
from mmemu.kernel.panic import TAINT_BAD_PAGE
from mmemu.layout import ZONE_MOVABLE
from mmemu.mm.mmzone import (
    MAX_ORDER, MIGRATE_HIGHATOMIC, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES, MIGRATE_UNMOVABLE, MIGRATETYPE_NAMES, NR_LOWORDER_PCP_LISTS, NODES_MASK,
    NODES_PGSHIFT, NR_PCP_LISTS, PAGE_FLAGS_CHECK_AT_FREE,
    PAGE_FLAGS_CHECK_AT_PREP, PAGE_MAPCOUNT_NONE, PAGE_TYPE_BUDDY, PAGEFLAGS_MASK,
    PG_active, PG_arch_1, PG_dirty, PG_error, PG_head, PG_locked, PG_lru, PG_mappedtodisk,
    PG_mlocked, PG_owner_priv_1, PG_private, PG_private_2, PG_reclaim, PG_referenced,
    PG_reserved, PG_slab, PG_swapbacked, PG_table, PG_unevictable, PG_uptodate, PG_waiters,
    PG_workingset, PG_writeback, STRUCT_PAGE_SIZE, W_INDEX, W_MAPCOUNT, W_MAPPING, W_NEXT,
    W_PREV, W_PRIVATE, W_REFCOUNT, ZONES_MASK, ZONES_PGSHIFT, PAGE_WORDS, FreeList, Zone,
    pindex_to_order,
)
from mmemu.mm.page import NO_FAST_FREE, fast_zone_bits
from mmemu.mm.pcp_list import GuestPcpList
from mmemu.mm.pageblock import fast_free_code, read_pageblock_bits

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

# __def_pageflag_names of include/trace/events/mmflags.h, in its order.
PAGEFLAG_NAMES = tuple((1 << bit, name) for bit, name in (
    (PG_locked, "locked"), (PG_waiters, "waiters"), (PG_error, "error"),
    (PG_referenced, "referenced"), (PG_uptodate, "uptodate"), (PG_dirty, "dirty"),
    (PG_lru, "lru"), (PG_active, "active"), (PG_workingset, "workingset"),
    (PG_slab, "slab"), (PG_owner_priv_1, "owner_priv_1"), (PG_arch_1, "arch_1"),
    (PG_reserved, "reserved"), (PG_private, "private"), (PG_private_2, "private_2"),
    (PG_writeback, "writeback"), (PG_head, "head"), (PG_mappedtodisk, "mappedtodisk"),
    (PG_reclaim, "reclaim"), (PG_swapbacked, "swapbacked"),
    (PG_unevictable, "unevictable"), (PG_mlocked, "mlocked")))

def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


# -- formatting ------------------------------------------------------------------

def format_flags(flags: int, names: Iterable[tuple[int, str]]) -> str:
    """lib/vsprintf.c:format_flags(): matching names joined by '|', the rest in hex."""
    out = []
    for mask, name in names:
        if not flags:
            break
        if flags & mask == mask:
            out.append(name)
            flags &= ~mask
    if flags:
        out.append(f"{flags:#x}")
    return "|".join(out)


def format_page_flags(mm: MmState, flags: int) -> str:
    """%pGp: "0x40001000(reserved|zone=1)", with node= when the build is NUMA.

    Models lib/vsprintf.c:format_page_flags(); a 686 FLATMEM build has only
    the zone field, a NUMA one (mmemu: more than one node) node= as well.
    """
    parts = []
    main = flags & PAGEFLAGS_MASK
    if main:
        parts.append(format_flags(main, PAGEFLAG_NAMES))
    if len(mm.node_data) > 1:
        parts.append(f"node={(flags >> NODES_PGSHIFT) & NODES_MASK}")
    parts.append(f"zone={(flags >> ZONES_PGSHIFT) & ZONES_MASK}")
    return f"{flags:#x}({'|'.join(parts)})"


def _raw_line(mm: MmState, prefix: str, pfn: int, refcount: Optional[int] = None) -> str:
    """print_hex_dump() of the struct page: rows of 32 bytes (8 words), so a
    40-byte struct page takes two ``raw:`` lines."""
    w = mm.mbase + (pfn * PAGE_WORDS)
    words = mm.u32[w:w + PAGE_WORDS].tolist()
    if refcount is not None:
        words[W_REFCOUNT] = refcount & 0xFFFFFFFF
    return "\n".join(prefix + " ".join(f"{x:08x}" for x in words[i:i + 8])
                     for i in range(0, len(words), 8))


def dump_page_lines(mm: MmState, pfn: int, reason: Optional[str],
                    refcount: Optional[int] = None) -> list[str]:
    """dump_page(): the page's fields, flags, raw words and the reason.

    Models mm/debug.c:__dump_page() for 6.1 (pointers unhashed).  pfn must
    be inside mem_map.  refcount, when given, is the count to print: a
    refused free leaves the reference in place, where the kernel had
    dropped it before its checks.
    """
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    head = pfn
    compound_head = u32[w + W_NEXT]
    if compound_head & 1:
        hp = (compound_head - 1 - mm.mvirt) // STRUCT_PAGE_SIZE
        if 0 <= hp < mm.max_pfn and hp <= pfn < hp + (1 << 10):
            head = hp
    wh = mm.mbase + (head * PAGE_WORDS)
    hflags = u32[wh]
    mapping = u32[w + W_MAPPING]
    anon = mapping & 1
    mapcount = 0 if hflags & (1 << PG_slab) else _s32(u32[w + W_MAPCOUNT]) + 1
    if head != pfn:
        refcount = None                  # a tail shows its head's count, as stored
    shown = _s32(u32[wh + W_REFCOUNT]) if refcount is None else refcount
    lines = [f"page:{mm.memmap.pfn_to_page(pfn):08x} refcount:{shown} "
             f"mapcount:{mapcount} mapping:{0 if anon else mapping & ~3:08x} "
             f"index:{u32[w + W_INDEX]:#x} pfn:{pfn:#x}"]
    if hflags & (1 << PG_head) or head != pfn:
        order = (u32[wh + PAGE_WORDS + W_PREV] >> 8) & 0xFF if head + 1 < mm.max_pfn else 0
        lines.append(f"head:{mm.memmap.pfn_to_page(head):08x} order:{order} "
                     f"compound_mapcount:0 compound_pincount:0")
    lines.append(f"{'anon ' if anon else ''}flags: {format_page_flags(mm, hflags)}")
    lines.append(_raw_line(mm, "raw: ", pfn, refcount))
    if head != pfn:
        lines.append(_raw_line(mm, "head: ", head))
    if reason:
        lines.append(f"page dumped because: {reason}")
    return lines


# -- the checks on the normal path -------------------------------------------------

def page_bad_reason(mm: MmState, pfn: int, check_flags: int,
                    refcount: Optional[int] = None) -> Optional[str]:
    """page_bad_reason(): why a page is not in the state free/alloc expects, or None.

    The later tests win, as in the kernel.  refcount overrides the stored
    _refcount (a free checks the count it would have after dropping its ref).
    """
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    reason = None
    if u32[w + W_MAPCOUNT] != PAGE_MAPCOUNT_NONE:
        reason = "nonzero mapcount"
    if u32[w + W_MAPPING]:
        reason = "non-NULL mapping"
    if (u32[w + W_REFCOUNT] if refcount is None else refcount) != 0:
        reason = "nonzero _refcount"
    if u32[w] & check_flags:
        reason = ("PAGE_FLAGS_CHECK_AT_PREP flag(s) set" if check_flags == PAGE_FLAGS_CHECK_AT_PREP
                  else "PAGE_FLAGS_CHECK_AT_FREE flag(s) set")
    return reason


def bad_page(mm: MmState, pfn: int, reason: str, refcount: Optional[int] = None) -> list[str]:
    """bad_page(): "BUG: Bad page state", the page dump, the stack; taints B.

    Models mm/page_alloc.c:bad_page(); differs: no rate limit.  The page is
    left as it was but for _mapcount (page_mapcount_reset(): no PageBuddy):
    a caller that frees refuses the free, so every page stays accounted for;
    one that allocates leaks the block, as the kernel does (mm.leaked).
    """
    rep = mm.reporter
    lines = [f"BUG: Bad page state in process {rep.comm}  pfn:{pfn & 0xFFFFFFFF:05x}"]
    if 0 <= pfn < mm.max_pfn:
        lines += dump_page_lines(mm, pfn, reason, refcount)
    else:
        lines.append(f"page:{(mm.mvirt + pfn * STRUCT_PAGE_SIZE) & 0xFFFFFFFF:08x} is outside "
                     f"mem_map (max_pfn {mm.max_pfn:#x})")
        lines.append(f"page dumped because: {reason}")
    lines.append("Modules linked in:")
    rep.report("\n".join(lines + rep.dump_stack()), taint=TAINT_BAD_PAGE)
    return lines


def vm_bug_on_page(mm: MmState, pfn: int, cond: str, where: str,
                   before: Sequence[str] = ()) -> None:
    """VM_BUG_ON_PAGE(cond, page) as CONFIG_DEBUG_VM reports it: the page, then
    the BUG at where ("file:line"); the caller refuses what it was doing.
    before: lines printed ahead of the page dump."""
    mm.reporter.bug(where, None, before=[*before, *dump_page_lines(mm, pfn,
                                                                    f"VM_BUG_ON_PAGE({cond})")])


def vm_bug_on(mm: MmState, where: str) -> None:
    """VM_BUG_ON(cond) as CONFIG_DEBUG_VM reports it (the BUG is not taken)."""
    mm.reporter.bug(where, None)


def warn_on_once(mm: MmState, where: str, function: str) -> None:
    """WARN_ON_ONCE(1) at where ("file:line"): the first time this site fires."""
    mm.reporter.warn(where, None, function, once=True)


def free_page_is_bad(mm: MmState, pfn: int, refcount: Optional[int] = None) -> bool:
    """free_page_is_bad(): report and return True unless the page may be freed."""
    reason = page_bad_reason(mm, pfn, PAGE_FLAGS_CHECK_AT_FREE, refcount)
    if reason is None:
        return False
    bad_page(mm, pfn, reason, refcount)
    return True


def check_new_page(mm: MmState, pfn: int) -> bool:
    """check_new_page(): a page leaving the free lists must look free; report if not.

    Returns True when the page was bad (bad_page() reported it and reset
    its _mapcount); the caller leaks its block and takes another, as 6.1.
    """
    reason = page_bad_reason(mm, pfn, PAGE_FLAGS_CHECK_AT_PREP)
    if reason is None:
        return False
    bad_page(mm, pfn, reason)
    mm.u32[mm.mbase + pfn * PAGE_WORDS + W_MAPCOUNT] = PAGE_MAPCOUNT_NONE   # page_mapcount_reset()
    return True


# -- the checker -------------------------------------------------------------------

@dataclass
class ZoneAccount:
    """What check_page_alloc() counted in one zone, in pages."""

    nid: int
    zone: str
    buddy: int
    pcp: int
    allocated: int
    reserved: int
    present: int
    leaked: int = 0                    # lost on purpose, as the kernel loses them (mm.leaked)


_FREE, _PCP, _ALLOC, _LEAKED = 1, 2, 3, 4
_NONZERO = bytes([0] + [1] * 255)
_FREE_OR_PCP = bytes(0xFF if b in (_FREE, _PCP) else 0 for b in range(256))
_FREE_ONLY = bytes(0xFF if b == _FREE else 0 for b in range(256))
_OPEN_TO_FAST_FREE = bytes(0 if b == NO_FAST_FREE else 0xFF for b in range(256))
_RESERVED_BIT = bytes(1 if b & (1 << (PG_reserved - 8)) else 0 for b in range(256))
_LOW6 = bytes(b & 0x3F for b in range(256))          # flags bits 16-21 of byte 2
_IS_7F = bytes(1 if b == 0x7F else 0 for b in range(256))
_IS_FF = bytes(1 if b == 0xFF else 0 for b in range(256))
_SLAB_BIT = bytes(1 if b & (1 << (PG_slab - 8)) else 0 for b in range(256))   # flags byte 1
_TABLE_BIT_CLEAR = bytes(0 if b & (PG_table >> 8) else 1 for b in range(256))  # _mapcount byte 1
_TYPE_BASE = bytes(1 if b & 0xF0 == 0xF0 else 0 for b in range(256))          # _mapcount byte 3


def _int(column: bytes | bytearray) -> int:
    return int.from_bytes(column, "little")


def _first_page(zone: Zone, bits: int) -> int:
    """The pfn of the lowest nonzero byte of a column-sized big int (a byte a page)."""
    return zone.zone_start_pfn + ((bits & -bits).bit_length() - 1) // 8


def _slab_and_table_pages(view: _ZoneView) -> tuple[tuple[int, str], ...]:
    """(big int, name) for the PG_slab pages and the PageTable pages of a zone view."""
    slab = _int(view.col(1).translate(_SLAB_BIT))
    table = (_int(view.col(25).translate(_TABLE_BIT_CLEAR))
             & _int(view.col(27).translate(_TYPE_BASE)))
    return ((slab, "a slab page (PG_slab)"), (table, "a page-table page (PageTable)"))


def _fail(zone: Zone, msg: str) -> NoReturn:
    raise PageAllocCorruption(f"Node {zone.node} {zone.name}: {msg}")


def _mark(zone: Zone, state: bytearray, start: int, n: int, value: int, what: str) -> None:
    """Claim [start, start + n) of the zone span for one owner; two owners is corruption."""
    a = start - zone.zone_start_pfn
    if a < 0 or a + n > len(state):
        _fail(zone, f"{what} at pfn {start:#x} (+{n}) outside the zone span")
    if state.count(0, a, a + n) != n:
        _fail(zone, f"{what} at pfn {start:#x} (+{n}) overlaps another free block, "
              f"per-cpu page or allocation")
    state[a:a + n] = bytes([value]) * n


class _ZoneView:
    """One zone's struct pages copied once, and byte columns of them.

    ``col(k)`` holds byte k of every struct page of the span, one byte per
    page: the bulk checks compare whole columns (as big integers) instead
    of looping over pages in Python.
    """

    def __init__(self, mm: MmState, zone: Zone) -> None:
        n = zone.spanned_pages
        b0 = mm.memmap.phys + zone.zone_start_pfn * STRUCT_PAGE_SIZE
        self.raw = mm.u8[b0:b0 + n * STRUCT_PAGE_SIZE].tobytes()
        self.n = n
        self.all_ff = (1 << (8 * n)) - 1

    def col(self, k: int) -> bytes:
        return self.raw[k::STRUCT_PAGE_SIZE]

    def word(self, i: int, w: int) -> int:
        off = i * STRUCT_PAGE_SIZE + 4 * w
        return int.from_bytes(self.raw[off:off + 4], "little")

    def refcount_nonzero(self) -> int:
        """Big int: byte i nonzero when page i's _refcount is."""
        return (_int(self.col(28)) | _int(self.col(29)) | _int(self.col(30))
                | _int(self.col(31)))


def _walk_free_area(mm: MmState, zone: Zone, view: _ZoneView, state: bytearray, heads: bytearray,
                    order: int) -> int:
    """Follow every migratetype's list of free_area[order]: symmetric links,
    counts, alignment, no cycles; nr_free is the sum of the lists."""
    area = zone.free_area[order]
    count = 0
    for mt, head in enumerate(area.free_list):
        count += _walk_free_list(mm, zone, view, state, heads, order, mt, head,
                                 area.nr_free - count)
    if count != area.nr_free:
        _fail(zone, f"free_area[{order}]: its lists hold {count} blocks, nr_free says "
              f"{area.nr_free}")
    return count


def _walk_free_list(mm: MmState, zone: Zone, view: _ZoneView, state: bytearray, heads: bytearray,
                    order: int, mt: int, head: FreeList, most: int) -> int:
    """One list, free_area[order].free_list[mt]; returns its blocks (at most most)."""
    mvirt, s = mm.mvirt, zone.zone_start_pfn
    where = f"free_area[{order}].free_list[{MIGRATETYPE_NAMES[mt]}]"
    pfn, prev_ptr, count, last = head.first, 0, 0, -1
    while pfn >= 0:
        if count > most:
            _fail(zone, f"{where} holds more blocks than nr_free")
        if not zone.zone_spans_pfn(pfn):
            _fail(zone, f"{where}: pfn {pfn:#x} is not in this zone")
        i = pfn - s
        if view.word(i, W_PREV) != prev_ptr:
            _fail(zone, f"{where}: pfn {pfn:#x} lru.prev {view.word(i, W_PREV):#010x} "
                  f"!= {prev_ptr:#010x}")
        if pfn & ((1 << order) - 1):
            _fail(zone, f"free block pfn {pfn:#x} not aligned to its order {order}")
        if view.word(i, W_MAPCOUNT) != PAGE_TYPE_BUDDY or view.word(i, W_PRIVATE) != order:
            _fail(zone, f"free block pfn {pfn:#x} on {where} lacks PageBuddy "
                  f"and order {order} (_mapcount {view.word(i, W_MAPCOUNT):#x})")
        _mark(zone, state, pfn, 1 << order, _FREE, f"free block (order {order})")
        heads[i] = 0x80
        count, last, prev_ptr = count + 1, pfn, mvirt + (pfn * STRUCT_PAGE_SIZE)
        nxt = view.word(i, W_NEXT)
        if nxt and (nxt - mvirt) % STRUCT_PAGE_SIZE:
            _fail(zone, f"{where}: lru.next {nxt:#010x} is not a struct page")
        pfn = (nxt - mvirt) // STRUCT_PAGE_SIZE if nxt else -1
    if last != head.last:
        _fail(zone, f"{where}: walked {count} blocks ending at pfn {last:#x}, its head "
              f"says the list ends at {head.last:#x}")
    return count


def _mark_leaked(mm: MmState, zone: Zone, state: bytearray) -> int:
    """The blocks the kernel lost on purpose (bad_page(), a corrupted list): mm.leaked."""
    n = 0
    for pfn, order in mm.leaked.items():
        if zone.zone_spans_pfn(pfn):
            _mark(zone, state, pfn, 1 << order, _LEAKED, f"leaked block (order {order})")
            n += 1 << order
    return n


def _mark_pcp(zone: Zone, view: _ZoneView, state: bytearray) -> int:
    """The per-cpu lists: blocks of their order, aligned, each page->index the
    list's migratetype (MIGRATE_HIGHATOMIC too on the movable lists)."""
    pcp_pages = 0
    pcp = zone.per_cpu_pageset
    for pindex, lst in enumerate(pcp.lists[:NR_PCP_LISTS]):
        if isinstance(lst, GuestPcpList) and lst.walk() is None:
            _fail(zone, f"per-cpu list {pindex} in guest memory has a broken link")
        order = pindex_to_order(pindex, pcp.thp_order)
        want = _pcp_list_migratetypes(pindex)
        for pfn in lst:
            if pfn & ((1 << order) - 1):
                _fail(zone, f"per-cpu page pfn {pfn:#x} not aligned to its order {order}")
            _mark(zone, state, pfn, 1 << order, _PCP, f"per-cpu page (order {order})")
            index = view.word(pfn - zone.zone_start_pfn, W_INDEX)
            if index not in want:
                _fail(zone, f"per-cpu page pfn {pfn:#x} on list {pindex} caches migratetype "
                      f"{index} in page->index, not {'/'.join(map(str, want))}")
            pcp_pages += 1 << order
    if pcp_pages != pcp.count:
        _fail(zone, f"pcp->count {pcp.count}, the lists hold {pcp_pages} pages")
    return pcp_pages


def _pcp_list_migratetypes(pindex: int) -> tuple[int, ...]:
    """The page->index values the pages of pcp list pindex may cache."""
    if pindex >= NR_LOWORDER_PCP_LISTS:
        if pindex == NR_LOWORDER_PCP_LISTS:
            return (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE)
        return (MIGRATE_MOVABLE, MIGRATE_HIGHATOMIC)
    mt = pindex % MIGRATE_PCPTYPES
    return (mt, MIGRATE_HIGHATOMIC) if mt == MIGRATE_MOVABLE else (mt,)


def _check_pageblocks(mm: MmState, zone: Zone) -> None:
    """The pageblock bitmap in guest memory agrees with the allocator's copy, every
    type is a migratetype, and nr_reserved_highatomic counts the high-atomic
    pageblocks."""
    pb = zone.pageblock_flags
    order = pb.order
    highatomic = 0
    for block, mt in enumerate(pb.mt):
        pfn = max(pb.base + (block << order), zone.zone_start_pfn)
        if mt >= MIGRATE_TYPES:
            _fail(zone, f"pageblock at pfn {pfn:#x}: migratetype {mt} does not exist")
        bits = read_pageblock_bits(mm, zone, pfn)
        if bits != mt:
            _fail(zone, f"pageblock at pfn {pfn:#x}: the bitmap in guest memory says "
                  f"{bits}, the allocator {mt} ({MIGRATETYPE_NAMES[mt]})")
        highatomic += mt == MIGRATE_HIGHATOMIC
    if zone.nr_reserved_highatomic != highatomic << order:
        _fail(zone, f"nr_reserved_highatomic {zone.nr_reserved_highatomic} for {highatomic} "
              f"MIGRATE_HIGHATOMIC pageblocks")


def _check_free_pages(zone: Zone, view: _ZoneView, state: bytearray, heads: bytearray,
                      blocks: int) -> None:
    """Free pages: no reference, no PG_ flags, only buddy heads typed; per-cpu
    pages: no reference (the rest of them is checked when their list drains,
    as 6.1 without CONFIG_DEBUG_VM does)."""
    raw_state = bytes(state)
    free_or_pcp = _int(raw_state.translate(_FREE_OR_PCP))
    free = _int(raw_state.translate(_FREE_ONLY))
    if view.refcount_nonzero() & free_or_pcp:
        _fail(zone, "a free or per-cpu page has a nonzero _refcount")
    pg_flags = _int(view.col(0)) | _int(view.col(1)) | _int(view.col(2).translate(_LOW6))
    if pg_flags & free:
        _fail(zone, "a free page has PG_ flags set")
    upper = _int(view.col(25)) & _int(view.col(26)) & _int(view.col(27))
    expect_low = view.all_ff ^ _int(heads)           # 0x7f on buddy heads, 0xff elsewhere
    if ((upper ^ view.all_ff) | (_int(view.col(24)) ^ expect_low)) & free:
        _fail(zone, "a free page other than a free block's head has a page type or mapcount")
    typed = (_int(view.col(24).translate(_IS_7F)) & _int(view.col(25).translate(_IS_FF))
             & _int(view.col(26).translate(_IS_FF)) & _int(view.col(27).translate(_IS_FF)))
    if typed.bit_count() != blocks:
        _fail(zone, f"{typed.bit_count()} PageBuddy pages for {blocks} free blocks")
    expected = (zone.zone_id << (NODES_PGSHIFT - 24)) & 0xFF
    if view.col(3).count(expected) != view.n:
        _fail(zone, "a page in the zone's span carries another zone or node in its flags")


def _check_fast_zone(mm: MmState, zone: Zone, view: _ZoneView, state: bytearray) -> None:
    """The fast free path's table: free pages may use it, each with its zone's
    code for its pageblock's migratetype; order > 0 heads may not, nor
    (without debug.vm) an allocated slab or page-table page
    (page.checked_free_only()).  A per-cpu page may carry any flags: 6.1
    without CONFIG_DEBUG_VM checks those when the list drains."""
    s, e = zone.zone_start_pfn, zone.zone_end_pfn
    table = mm.fast_zone[s:e]
    free = int.from_bytes(bytes(state).translate(_FREE_OR_PCP), "little")
    mine = int.from_bytes(table.translate(_OPEN_TO_FAST_FREE), "little")
    if free & ~mine:
        _fail(zone, "a free page is not in the fast free path's table")
    _check_fast_codes(zone, table)
    _check_fast_free_bits(mm, zone, table)
    for pfn in mm.alloc_orders:
        if s <= pfn < e and table[pfn - s] != 0xFF:
            _fail(zone, f"order > 0 allocation at pfn {pfn:#x} is open to the fast free path")
    if mm.cfg.debug_vm:
        return                                   # every free is checked: no fast path
    open_allocated = mine & ~free
    for bits, what in _slab_and_table_pages(view):
        if bits & open_allocated:
            _fail(zone, f"pfn {_first_page(zone, bits & open_allocated):#x} is {what}, "
                  f"yet its free would take the unchecked fast path")


def _check_fast_free_bits(mm: MmState, zone: Zone, table: bytearray) -> None:
    """The guest's fast-free bitmap (page.set_fast_zone()) says what the table
    says: a bit for every open entry it covers, none for the others, and
    none at all with CONFIG_DEBUG_VM."""
    s = zone.zone_start_pfn
    e = min(zone.zone_end_pfn, 8 * len(mm.fast_free_bits))
    if e <= s:
        return
    lo, hi = s & ~7, -(-e // 8) * 8
    bits = int.from_bytes(mm.fast_free_bits[lo >> 3:hi >> 3], "little") >> (s - lo)
    bits &= (1 << (e - s)) - 1
    want = 0 if mm.cfg.debug_vm else fast_zone_bits(table[:e - s])
    if bits != want:
        _fail(zone, "the fast-free bitmap in guest memory disagrees with the fast free table")


def _check_fast_codes(zone: Zone, table: bytearray) -> None:
    """Every open entry of the fast free table holds its pageblock's code."""
    pb = zone.pageblock_flags
    s, e = zone.zone_start_pfn, zone.zone_end_pfn
    for block, mt in enumerate(pb.mt):
        a = max(pb.base + (block << pb.order), s)
        b = min(pb.base + ((block + 1) << pb.order), e)
        want = fast_free_code(zone, mt)
        chunk = table[a - s:b - s]
        bad = len(chunk) - chunk.count(want) - chunk.count(NO_FAST_FREE)
        if bad:
            _fail(zone, f"{bad} pages of the {MIGRATETYPE_NAMES[mt]} pageblock at pfn {a:#x} "
                  f"would be freed onto another zone's or migratetype's list")


def _mark_allocations(mm: MmState, zone: Zone, view: _ZoneView, state: bytearray,
                      reserved: bytes) -> int:
    """Every page with a reference is an allocated block's head (or reserved)."""
    s, n, orders = zone.zone_start_pfn, view.n, mm.alloc_orders
    referenced = view.refcount_nonzero().to_bytes(n, "little")
    allocated = 0
    for i in compress(range(n), referenced):          # nonzero _refcount only
        pfn = s + i
        if (reserved[i] and pfn not in orders) or state[i] == _LEAKED:
            continue
        order = orders.get(pfn, 0)
        _mark(zone, state, pfn, 1 << order, _ALLOC, f"allocation (order {order})")
        allocated += 1 << order
    for pfn in orders:
        if zone.zone_spans_pfn(pfn) and not referenced[pfn - s]:
            _fail(zone, f"allocation record for pfn {pfn:#x} but its _refcount is 0")
    return allocated


def _check_coverage(zone: Zone, reserved_col: bytes, state: bytearray) -> int:
    """Present pages: exactly one owner or reserved; holes: nobody's."""
    s = zone.zone_start_pfn
    covered = reserved = 0
    for a, b in zone.present_ranges:
        owned = bytes(state[a - s:b - s]).translate(_NONZERO)
        resv = reserved_col[a - s:b - s]
        if int.from_bytes(owned, "little") & int.from_bytes(resv, "little"):
            _fail(zone, f"a reserved page in [{a:#x}, {b:#x}) is also free or allocated")
        covered += owned.count(1)
        reserved += resv.count(1)
    owned_total = len(state) - state.count(0)
    if owned_total != covered:
        _fail(zone, f"{owned_total - covered} free or allocated pages lie in holes of the zone")
    unaccounted = zone.present_pages - covered - reserved
    if unaccounted:
        _fail(zone, f"{unaccounted} present pages are neither free, per-cpu, allocated nor "
              f"reserved")
    return reserved


def check_zone(mm: MmState, zone: Zone) -> ZoneAccount:
    """check_page_alloc() for one populated zone; returns its ZoneAccount."""
    view = _ZoneView(mm, zone)
    state, heads = bytearray(view.n), bytearray(view.n)
    blocks = buddy = 0
    for order in range(MAX_ORDER):
        nr = _walk_free_area(mm, zone, view, state, heads, order)
        blocks += nr
        buddy += nr << order
    if buddy != zone.nr_free_pages:
        _fail(zone, f"free lists hold {buddy} pages, NR_FREE_PAGES says {zone.nr_free_pages}")
    if zone.fast_mark >= zone.nr_free_pages:
        _fail(zone, f"the order-0 fast path is open at {zone.nr_free_pages} free pages, "
              f"below its mark {zone.fast_mark}")
    pcp = _mark_pcp(zone, view, state)
    _check_pageblocks(mm, zone)
    leaked = _mark_leaked(mm, zone, state)
    _check_free_pages(zone, view, state, heads, blocks)
    if zone.zone_idx == ZONE_MOVABLE:
        _check_movable_pages(zone, view)
    _check_fast_zone(mm, zone, view, state)
    reserved_col = view.col(1).translate(_RESERVED_BIT)
    allocated = _mark_allocations(mm, zone, view, state, reserved_col)
    reserved = _check_coverage(zone, reserved_col, state)
    return ZoneAccount(zone.node, zone.name, buddy, pcp, allocated, reserved,
                       zone.present_pages, leaked)


def check_page_alloc(mm: MmState) -> list[ZoneAccount]:
    """Prove free (buddy + per-cpu) + allocated + reserved (+ leaked) == present in every zone.

    Walks every free list in guest memory, one per migratetype and order
    (symmetric links, nr_free the sum of an order's lists, alignment,
    PageBuddy and order on heads only, inside the zone), the per-cpu lists
    (each page->index the list's migratetype, pcp->count their sum), the
    pageblock bitmap (guest memory equals the allocator's copy; the
    high-atomic reserve counted) and mem_map (no page owned twice, none
    lost, none in a hole).  Raises PageAllocCorruption naming the zone and the fault;
    returns [ZoneAccount] for the populated zones.
    """
    accounts = []
    for zone in mm.zones:
        if zone.populated:
            accounts.append(check_zone(mm, zone))
        elif zone.nr_free_pages or any(a.nr_free for a in zone.free_area):
            _fail(zone, "an unpopulated zone has free pages")
    return accounts


# -- ZONE_MOVABLE holds no kernel memory ------------------------------------------------
#
# Pages in ZONE_MOVABLE must be movable (migratable, or free), so that the zone
# can be emptied: gfp_zone() gives ZONE_MOVABLE only to a mask with both
# __GFP_MOVABLE and __GFP_HIGHMEM, which no kernel-internal allocation uses.
# Reserved pages (boot-time memblock allocations) are not the allocator's and
# are not checked, as Linux cannot move them either.

def _check_movable_pages(zone: Zone, view: _ZoneView) -> None:
    """No slab page (PG_slab) and no page-table page (PageTable) in a ZONE_MOVABLE zone."""
    for bits, what in _slab_and_table_pages(view):
        if bits:
            _fail(zone, f"pfn {_first_page(zone, bits):#x} is {what}: kernel memory in ZONE_MOVABLE")
