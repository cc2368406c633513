"""Taking pages of another migratetype: fallback stealing and the high-atomic reserve.

Models the grouping-by-mobility half of mm/page_alloc.c, Linux 6.1:
__rmqueue() tries the request's own migratetype (__rmqueue_smallest()),
then __rmqueue_fallback(): the largest free block on a fallbacks[] list
(unmovable -> reclaimable, movable; movable -> reclaimable, unmovable;
reclaimable -> unmovable, movable), stolen by steal_suitable_fallback():
a block of pageblock_order or more changes its pageblocks' type whole;
a smaller one boosts the zone's watermark and, when the request may steal
(can_steal_fallback(): unmovable and reclaimable requests always, movable
ones from pageblock_order / 2), moves the pageblock's free pages
(move_freepages_block()) and claims the pageblock when at least half of
it is free or alike.  reserve_highatomic_pageblock() sets a pageblock
aside for high-order atomic requests after one succeeds;
unreserve_highatomic_pageblock() gives it back when an allocation is
about to fail.  No ALLOC_NOFRAGMENT (i386 has no ZONE_DMA32) and no CMA.

Differs: kswapd is not a thread here: a zone whose watermark a steal
boosted (ZONE_BOOSTED_WATERMARK) has the boost dropped when rmqueue()
wakes kswapd, as balance_pgdat() would after a pass that, in mmemu,
finds nothing to reclaim (wakeup_kswapd()).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Optional

from mmemu.mm.freelist import _rmqueue_smallest, free_area_empty, move_to_free_list
from mmemu.mm.mmzone import (
    MAX_ORDER, MIGRATE_HIGHATOMIC, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE,
    PAGE_TYPE_BASE, PAGE_WORDS, PG_buddy, PG_lru, W_FLAGS, W_MAPCOUNT, W_MAPPING, W_PRIVATE, WMARK_HIGH,
    FreeArea, Zone, migratetype_is_mergeable,
)
from mmemu.mm.pageblock import (
    change_pageblock_range, get_pfnblock_migratetype, pageblock_end_pfn, pageblock_start_pfn,
    set_pageblock_migratetype,
)
from mmemu.mm.watermark import ALLOC_KSWAPD, mult_frac

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

FALLBACKS = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
}
WATERMARK_BOOST_FACTOR = 15000          # vm.watermark_boost_factor's default
PAGE_MAPPING_MOVABLE = 0x2
_BUDDY_TYPE_MASK = PAGE_TYPE_BASE | PG_buddy


def _rmqueue(mm: MmState, zone: Zone, order: int, migratetype: int,
             alloc_flags: int) -> Optional[int]:
    """__rmqueue(): a block of the migratetype's own lists, else one stolen by fallback.

    A list the guest broke is CONFIG_DEBUG_LIST's BUG on the way
    (KernelOops): the task dies inside __rmqueue(), and no other block is
    tried.  Differs: 6.1 retries after every successful fallback (goto
    retry), and with sound struct pages one retry finds the moved block.
    A guest that rewrote a free page's order can make move_freepages()
    step over the block the fallback found, so that 6.1 would steal and
    retry for ever; mmemu retries once, and a second miss is NULL.
    """
    pfn = _rmqueue_smallest(mm, zone, order, migratetype)
    if pfn is not None or migratetype not in FALLBACKS:
        return pfn
    if not _rmqueue_fallback(mm, zone, order, migratetype, alloc_flags):
        return None
    return _rmqueue_smallest(mm, zone, order, migratetype)


def can_steal_fallback(mm: MmState, order: int, start_mt: int, pageblock_order: int) -> bool:
    """can_steal_fallback(): may a request of start_mt take the rest of a pageblock?"""
    if order >= pageblock_order:
        return True
    return (order >= pageblock_order // 2 or start_mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE)
            or mm.page_group_by_mobility_disabled)


def find_suitable_fallback(mm: MmState, area: FreeArea, order: int, migratetype: int,
                           only_stealable: bool, pageblock_order: int) -> tuple[int, bool]:
    """find_suitable_fallback(): (the fallback migratetype with a block of this
    order, or -1; whether the request can steal the pageblock)."""
    if area.nr_free == 0:
        return -1, False
    can_steal = False
    for fallback_mt in FALLBACKS.get(migratetype, ()):
        if free_area_empty(area, fallback_mt):
            continue
        if can_steal_fallback(mm, order, migratetype, pageblock_order):
            can_steal = True
        if not only_stealable or can_steal:
            return fallback_mt, can_steal
    return -1, can_steal


def _rmqueue_fallback(mm: MmState, zone: Zone, order: int, start_migratetype: int,
                      alloc_flags: int) -> bool:
    """__rmqueue_fallback(): move a block of another migratetype onto start's lists.

    The largest free block of a fallback type ("this roughly approximates
    finding the pageblock with the most free pages"), unless a movable
    request could not steal the pageblock, which then splits the smallest
    block instead.  Returns True when a block was moved.
    """
    order_pb = zone.pageblock_flags.order
    areas = zone.free_area
    for current in range(MAX_ORDER - 1, order - 1, -1):
        fallback_mt, can_steal = find_suitable_fallback(mm, areas[current], current,
                                                        start_migratetype, False, order_pb)
        if fallback_mt == -1:
            continue
        if not can_steal and start_migratetype == MIGRATE_MOVABLE and current > order:
            current, fallback_mt, can_steal = _find_smallest(mm, zone, order,
                                                             start_migratetype, order_pb)
        pfn = areas[current].free_list[fallback_mt].first
        steal_suitable_fallback(mm, zone, pfn, current, alloc_flags, start_migratetype,
                                can_steal)
        return True
    return False


def _find_smallest(mm: MmState, zone: Zone, order: int, start_migratetype: int,
                   order_pb: int) -> tuple[int, int, bool]:
    """__rmqueue_fallback()'s find_smallest: the smallest order with a fallback
    block (there is one: the search for the largest found it)."""
    for current in range(order, MAX_ORDER):
        fallback_mt, can_steal = find_suitable_fallback(mm, zone.free_area[current], current,
                                                        start_migratetype, False, order_pb)
        if fallback_mt != -1:
            break
    return current, fallback_mt, can_steal


def steal_suitable_fallback(mm: MmState, zone: Zone, pfn: int, current_order: int,
                            alloc_flags: int, start_type: int, whole_block: bool) -> None:
    """steal_suitable_fallback(): the block at pfn (free, of current_order) joins
    start_type's lists, with its pageblock if the request may and most of it
    is free or alike.

    Models mm/page_alloc.c:steal_suitable_fallback(): a block of
    pageblock_order or more changes type whole (change_pageblock_range());
    otherwise the zone's watermark is boosted (ZONE_BOOSTED_WATERMARK when
    the request may wake kswapd), the pageblock's free pages move
    (move_freepages_block()) and the pageblock is claimed when free plus
    alike pages reach half of it.
    """
    order_pb = zone.pageblock_flags.order
    old_block_type = get_pfnblock_migratetype(zone, pfn)
    if old_block_type == MIGRATE_HIGHATOMIC:
        move_to_free_list(mm, zone, pfn, current_order, start_type)
        return
    if current_order >= order_pb:
        change_pageblock_range(mm, zone, pfn, current_order, start_type)
        move_to_free_list(mm, zone, pfn, current_order, start_type)
        return
    if boost_watermark(mm, zone) and alloc_flags & ALLOC_KSWAPD:
        zone.boosted_watermark = True
    if not whole_block:
        move_to_free_list(mm, zone, pfn, current_order, start_type)
        return
    free_pages, movable_pages = move_freepages_block(mm, zone, pfn, start_type)
    if start_type == MIGRATE_MOVABLE:
        alike_pages = movable_pages
    elif old_block_type == MIGRATE_MOVABLE:
        alike_pages = (1 << order_pb) - (free_pages + movable_pages)
    else:
        alike_pages = 0
    if not free_pages:
        move_to_free_list(mm, zone, pfn, current_order, start_type)
        return
    if free_pages + alike_pages >= 1 << (order_pb - 1) or mm.page_group_by_mobility_disabled:
        set_pageblock_migratetype(mm, zone, pfn, start_type)


def boost_watermark(mm: MmState, zone: Zone) -> bool:
    """boost_watermark(): raise the zone's watermark_boost by a pageblock, up to
    watermark_boost_factor of its high mark; False on small zones or before
    the watermarks are set."""
    if not mm.watermark_boost_factor:
        return False
    nr = 1 << zone.pageblock_flags.order
    if nr * 4 > zone.managed_pages:
        return False
    max_boost = mult_frac(zone._watermark[WMARK_HIGH], mm.watermark_boost_factor, 10000)
    if not max_boost:
        return False
    max_boost = max(nr, max_boost)
    zone.watermark_boost = min(zone.watermark_boost + nr, max_boost)
    return True


def wakeup_kswapd(mm: MmState, zone: Zone) -> bool:
    """wakeup_kswapd(): kswapd balances the node; in mmemu it finds nothing to
    reclaim, and (as balance_pgdat() does after a boosted pass) drops the
    zone's watermark boost.  Returns True when a boost was dropped."""
    if not zone.watermark_boost:
        return False
    zone.watermark_boost = 0
    return True


def move_freepages(mm: MmState, zone: Zone, start_pfn: int, end_pfn: int,
                   migratetype: int) -> tuple[int, int]:
    """move_freepages(): the free blocks in [start_pfn, end_pfn] onto migratetype's
    lists; returns (free pages moved, pages that look movable: PageLRU or
    __PageMovable).  A broken link stops the walk with the BUG of
    move_to_free_list() (KernelOops): the blocks moved before it stay moved."""
    u32, base = mm.u32, mm.mbase
    n = end_pfn + 1 - start_pfn
    w = base + (start_pfn * PAGE_WORDS)
    mapcount = u32[w + W_MAPCOUNT:w + (n * PAGE_WORDS):PAGE_WORDS].tolist()
    moved = movable = 0
    i = 0
    while i < n:
        if (mapcount[i] & _BUDDY_TYPE_MASK) != PAGE_TYPE_BASE:          # !PageBuddy()
            wi = w + (i * PAGE_WORDS)
            if u32[wi + W_FLAGS] & (1 << PG_lru) or \
                    u32[wi + W_MAPPING] & 3 == PAGE_MAPPING_MOVABLE:
                movable += 1
            i += 1
            continue
        order = u32[w + (i * PAGE_WORDS) + W_PRIVATE]
        if order >= MAX_ORDER:                   # not a buddy the allocator made: skip it
            i += 1
            continue
        move_to_free_list(mm, zone, start_pfn + i, order, migratetype)
        moved += 1 << order
        i += 1 << order
    return moved, movable


def move_freepages_block(mm: MmState, zone: Zone, pfn: int, migratetype: int) -> tuple[int, int]:
    """move_freepages_block(): move_freepages() over pfn's pageblock, within the zone.

    Returns (pages moved, movable pages); (0, 0) when the pageblock runs
    past the zone's end.
    """
    order = zone.pageblock_flags.order
    start, end = pageblock_start_pfn(pfn, order), pageblock_end_pfn(pfn, order) - 1
    if not zone.zone_spans_pfn(start):
        start = pfn
    if not zone.zone_spans_pfn(end) or end >= mm.max_pfn:
        return 0, 0
    return move_freepages(mm, zone, start, end, migratetype)


def reserve_highatomic_pageblock(mm: MmState, pfn: int, zone: Zone) -> None:
    """reserve_highatomic_pageblock(): after a high-order atomic allocation at
    pfn, set its pageblock aside for such requests (about 1% of the zone, at
    least a pageblock), if the pageblock is of a mergeable type."""
    nr = 1 << zone.pageblock_flags.order
    max_managed = zone.managed_pages // 100 + nr
    if zone.nr_reserved_highatomic >= max_managed:
        return
    if migratetype_is_mergeable(get_pfnblock_migratetype(zone, pfn)):
        zone.nr_reserved_highatomic += nr
        set_pageblock_migratetype(mm, zone, pfn, MIGRATE_HIGHATOMIC)
        mm.reserves_changed()                # before a move that may BUG: the marks follow
        move_freepages_block(mm, zone, pfn, MIGRATE_HIGHATOMIC)


def unreserve_highatomic_pageblock(mm: MmState, zones: Iterable[Zone], migratetype: int,
                                   force: bool) -> bool:
    """unreserve_highatomic_pageblock(): give a reserved pageblock back to the
    failing request's migratetype (keeping one pageblock per zone unless
    force).  zones: the request's zonelist.  Returns True when free pages
    moved."""
    for zone in zones:
        nr = 1 << zone.pageblock_flags.order
        if not force and zone.nr_reserved_highatomic <= nr:
            continue
        for area in zone.free_area:
            pfn = area.free_list[MIGRATE_HIGHATOMIC].first
            if pfn < 0:
                continue
            if get_pfnblock_migratetype(zone, pfn) == MIGRATE_HIGHATOMIC:
                zone.nr_reserved_highatomic -= min(nr, zone.nr_reserved_highatomic)
                mm.reserves_changed()
            set_pageblock_migratetype(mm, zone, pfn, migratetype)
            if move_freepages_block(mm, zone, pfn, migratetype)[0]:
                return True
    return False

