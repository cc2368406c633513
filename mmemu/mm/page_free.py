"""__free_pages() beyond the fast path: the checks, the reports, the free.

The freeing half of mm/page_alloc.c, Linux 6.1: put_page_testzero(),
free_pages_prepare() with its tail checks, free_the_page().  A bad free is
reported in the kernel's words (bad_page(), or the VM_BUG_ON_PAGE() texts
of CONFIG_DEBUG_VM) and refused: nothing changes, so every page stays
accounted for.  Pfns stand for struct page pointers; ``mm`` is the
machine's page_alloc.MmState.
"""
from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Optional

from mmemu.mm import pcp as _pcp
from mmemu.mm.freelist import _free_one_page
from mmemu.mm.mmzone import (
    MAX_ORDER, NODES_PGSHIFT, PAGE_FLAGS_CHECK_AT_FREE, PAGE_FLAGS_CHECK_AT_PREP,
    PAGE_MAPCOUNT_NONE, PG_head, W_MAPCOUNT, W_MAPPING, W_NEXT, W_PREV, W_REFCOUNT, PAGE_WORDS,
    STRUCT_PAGE_SIZE, Zone,
)
from mmemu.mm.page_alloc_debug import bad_page, free_page_is_bad, page_bad_reason, vm_bug_on_page
from mmemu.mm.page import page_zone, set_fast_zone
from mmemu.mm.pageblock import fast_free_code, get_pfnblock_migratetype

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

# Where 6.1 (.129 numbering) reports what mmemu reports in its words.
WHERE_REFCOUNT_ZERO = "include/linux/mm.h:769"    # put_page_testzero()
WHERE_COMPOUND_ORDER = "mm/page_alloc.c:1432"     # free_pages_prepare()
WHERE_BAD_RANGE = "mm/page_alloc.c:1141"          # __free_one_page() (6.1.176)


def _free_pages_slow(mm: MmState, pfn: int, order: int) -> None:
    """__free_pages() for everything the fast path does not take.

    put_page_testzero(): a page with other references only loses one (a
    non-compound block's tail pages are freed then, as 6.1 does); the last
    reference frees the block after free_pages_prepare()'s checks.  A pfn
    outside mem_map, an order out of range, a page already free (CONFIG_
    DEBUG_VM's VM_BUG_ON_PAGE), a compound page freed with another order,
    or a block freed with an order other than it was allocated with is
    reported and refused: nothing changes.
    """
    if not (isinstance(pfn, int) and 0 <= pfn < mm.max_pfn):
        bad_page(mm, pfn if isinstance(pfn, int) else -1, "pfn outside mem_map")
        return
    if not (isinstance(order, int) and 0 <= order < MAX_ORDER):
        bad_page(mm, pfn, f"order {order} out of range (MAX_ORDER {MAX_ORDER})")
        return
    if pfn + (1 << order) > mm.max_pfn:
        # The tails would lie past mem_map: no allocation can have made this block.
        bad_page(mm, pfn, f"order-{order} block runs past the end of mem_map")
        return
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    ref, flags = u32[w + W_REFCOUNT], u32[w]
    if ref == 0:
        vm_bug_on_page(mm, pfn, "page_ref_count(page) == 0", WHERE_REFCOUNT_ZERO)
        return
    if ref != 1:
        _put_page_not_last(mm, pfn, order, ref, flags)
        return
    if not _free_order_matches(mm, pfn, order, flags):
        return
    if not _zone_matches(mm, pfn, flags):
        return
    if not free_pages_prepare(mm, pfn, order):
        return
    mm.alloc_orders.pop(pfn, None)
    if mm.leaked:
        mm.leaked.pop(pfn, None)                   # a lost block comes back
    free_the_page(mm, pfn, order)


def _zone_matches(mm: MmState, pfn: int, flags: int) -> bool:
    """The zone and node bits of page->flags name the zone that spans pfn, or
    CONFIG_DEBUG_VM's report of __free_one_page()'s VM_BUG_ON_PAGE(bad_range())
    (refused: the guest overwrote the bits; 6.1 would free into that zone)."""
    zone = mm.zone_by_id[flags >> NODES_PGSHIFT]
    if zone is not None and zone.zone_spans_pfn(pfn):
        return True
    before = []
    if zone is not None:            # page_outside_zone_boundaries()'s pr_err()
        before.append(f"page {pfn:#x} outside node {zone.node} zone {zone.name} "
                      f"[ {zone.zone_start_pfn:#x} - {zone.zone_end_pfn:#x} ]")
    vm_bug_on_page(mm, pfn, "bad_range(zone, page)", WHERE_BAD_RANGE, before=before)
    return False


def _put_page_not_last(mm: MmState, pfn: int, order: int, ref: int, flags: int) -> None:
    """__free_pages() when others hold references: drop ours; free the tails of a
    non-compound block, which nobody else can be holding."""
    mm.u32[mm.mbase + (pfn * PAGE_WORDS) + W_REFCOUNT] = ref - 1
    if flags & (1 << PG_head) or not order:
        return
    mm.alloc_orders.pop(pfn, None)
    zone = page_zone(mm, pfn)                       # an order-0 allocation from now on
    set_fast_zone(mm, pfn, fast_free_code(zone, get_pfnblock_migratetype(zone, pfn)))
    while order > 0:
        order -= 1
        tail = pfn + (1 << order)
        if free_pages_prepare(mm, tail, order):
            free_the_page(mm, tail, order)


def _free_order_matches(mm: MmState, pfn: int, order: int, flags: int) -> bool:
    """The order freed is the order allocated, or a report (and False)."""
    if flags & (1 << PG_head):
        got = (mm.u32[mm.mbase + (pfn * PAGE_WORDS) + PAGE_WORDS + W_PREV] >> 8) & 0xFF
        if got != order:
            vm_bug_on_page(mm, pfn, "compound && compound_order(page) != order",
                           WHERE_COMPOUND_ORDER)
            return False
        return True
    got = mm.alloc_orders.get(pfn, 0)
    if got != order and not (got == 0 and flags & PAGE_FLAGS_CHECK_AT_FREE):
        bad_page(mm, pfn, f"freed with order {order}, allocated with order {got}")
        return False
    return True


def _tail_bad_reason(mm: MmState, head: int, pfn: int, compound: bool) -> Optional[str]:
    """free_tail_pages_check() then free_page_is_bad() for one tail, without reporting."""
    w = mm.mbase + (pfn * PAGE_WORDS)
    if compound:
        if mm.u32[w + W_MAPPING]:
            return "corrupted mapping in tail page"
        if not mm.u32[w + W_NEXT] & 1:
            return "PageTail not set"
        if mm.u32[w + W_NEXT] != mm.mvirt + (head * STRUCT_PAGE_SIZE) + 1:
            return "compound_head not consistent"
    return page_bad_reason(mm, pfn, PAGE_FLAGS_CHECK_AT_FREE)


def _read_tails(mm: MmState, pfn: int, order: int) -> list[int]:
    """The tail pages' struct pages as one list of words, 8 per page."""
    first = mm.mbase + ((pfn + 1) * PAGE_WORDS)
    return mm.u32[first:first + (((1 << order) - 1) * PAGE_WORDS)].tolist()


def _flags_clean(flags: list[int], mask: int) -> bool:
    """No word of flags has a bit of mask (quick when all are alike, as usual)."""
    if flags.count(flags[0]) == len(flags):
        return not flags[0] & mask
    return not any(f & mask for f in flags)


def _tails_clean(mm: MmState, pfn: int, words: list[int], compound: bool) -> bool:
    """The bulk tail checks: True when every tail is plainly fine to free."""
    n = len(words) // PAGE_WORDS
    if (words[W_REFCOUNT::PAGE_WORDS].count(0) != n
            or words[W_MAPCOUNT::PAGE_WORDS].count(PAGE_MAPCOUNT_NONE) != n):
        return False
    if words[W_MAPPING::PAGE_WORDS].count(0) != n:
        return False
    if compound and words[W_NEXT::PAGE_WORDS].count(mm.mvirt + (pfn * STRUCT_PAGE_SIZE) + 1) != n:
        return False
    return _flags_clean(words[0::PAGE_WORDS], PAGE_FLAGS_CHECK_AT_FREE)


def free_pages_prepare(mm: MmState, pfn: int, order: int) -> bool:
    """free_pages_prepare(): check a block being freed; clear its flags if it may go.

    Models mm/page_alloc.c:free_pages_prepare() with check_free: every tail
    (free_tail_pages_check() for compound pages, free_page_is_bad()) and the
    head, as if its last reference were already dropped.  Differs: all
    checks come before any change, and a bad block is left as it was.
    Returns True when the block may be freed.
    """
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    compound = bool(u32[w] & (1 << PG_head))
    words = _read_tails(mm, pfn, order) if order else None
    if words is not None and not _tails_clean(mm, pfn, words, compound):
        for tail in range(pfn + 1, pfn + (1 << order)):
            reason = _tail_bad_reason(mm, pfn, tail, compound)
            if reason:
                bad_page(mm, tail, reason)
                return False
    if free_page_is_bad(mm, pfn, refcount=0):
        return False
    if u32[w + W_MAPPING] & 3:
        u32[w + W_MAPPING] = 0                 # PageMappingFlags(): anon/movable
    _clear_block(mm, pfn, words, compound)
    return True


def _clear_block(mm: MmState, pfn: int, words: Optional[list[int]], compound: bool) -> None:
    """The state changes of a free: flags, compound links and the reference."""
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    u32[w] &= ~PAGE_FLAGS_CHECK_AT_PREP
    u32[w + W_REFCOUNT] = 0
    if not words:
        return
    first, end = w + PAGE_WORDS, w + PAGE_WORDS + len(words)
    flags = words[0::PAGE_WORDS]
    if not _flags_clean(flags, PAGE_FLAGS_CHECK_AT_PREP):
        u32[first:end:PAGE_WORDS] = array("I", [f & ~PAGE_FLAGS_CHECK_AT_PREP for f in flags])
    if compound:
        u32[first + W_NEXT:end:PAGE_WORDS] = array("I", [0]) * (len(words) // PAGE_WORDS)
        u32[first + W_PREV] = 0


def free_the_page(mm: MmState, pfn: int, order: int) -> None:
    """free_the_page(): pcp orders (0-3 and pageblock_order) onto the per-cpu
    lists (free_unref_page()), others to the buddy lists (__free_pages_ok())."""
    zone = page_zone(mm, pfn)
    migratetype = get_pfnblock_migratetype(zone, pfn)
    set_fast_zone(mm, pfn, fast_free_code(zone, migratetype))   # its next free may take the fast path
    if _pcp.pcp_allowed_order(order, zone.pageblock_flags.order):
        _pcp.free_unref_page(mm, zone, pfn, order, migratetype)
    else:
        _free_pages_ok(mm, zone, pfn, order, migratetype)


def _free_pages_ok(mm: MmState, zone: Zone, pfn: int, order: int, migratetype: int,
                   to_tail: bool = False) -> None:
    """__free_pages_ok() after free_pages_prepare(): the block to the free list
    of its pageblock's migratetype (free_one_page())."""
    _free_one_page(mm, zone, pfn, order, migratetype, to_tail)
