"""Pageblock flags: the migratetype of every pageblock of a zone.

Models include/linux/pageblock-flags.h and the pageblock half of
mm/page_alloc.c, Linux 6.1 (FLATMEM): each zone has a bitmap,
zone->pageblock_flags, from memblock (setup_usemap()), with
NR_PAGEBLOCK_BITS bits per pageblock of 2^pageblock_order pages counted
from pageblock_start_pfn(zone_start_pfn); the low three bits are the
pageblock's migratetype (get_pfnblock_migratetype(),
set_pageblock_migratetype()).  A pageblock that two zones share has an
entry in each zone's bitmap, and a zone's pages read its own.

Differs: the allocator reads a host copy of the migratetypes
(PageblockFlags.mt, a byte per pageblock) written together with the
guest's bitmap, so guest code sees the kernel's bitmap and the hot paths
read no bits; the checker (page_alloc_debug.py) compares the two.

A pageblock's migratetype decides which free list its freed pages join,
so page_alloc's order-0 free fast path keeps it too: MmState.fast_zone
holds, per page frame, fast_free_code(zone, mt), which
set_pageblock_migratetype() rewrites for the pageblock's pages.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmemu.mm.mmzone import (
    MIGRATE_PCPTYPES, MIGRATE_UNMOVABLE, MIGRATETYPE_MASK, NR_PAGEBLOCK_BITS, PageblockFlags,
    Zone,
)
from mmemu.mm.page import NO_FAST_FREE, sync_fast_free_bits

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

# MmState.fast_zone codes: zone_id | migratetype << 6 for the pcp migratetypes
# (zone_id < 64: four zones, sixteen nodes), FAST_FREE_LOOKUP for a page of a
# MIGRATE_HIGHATOMIC or MIGRATE_ISOLATE pageblock (free_unref_page() treats
# those apart: its free finds its zone and pageblock again), NO_FAST_FREE for
# a page whose free must be checked at once (page.py).
FAST_FREE_ZONE_MASK = 63
FAST_FREE_MT_SHIFT = 6
FAST_FREE_LOOKUP = 254


def fast_free_code(zone: Zone, migratetype: int) -> int:
    """The fast_zone byte of a free page of zone in a pageblock of migratetype."""
    if migratetype < MIGRATE_PCPTYPES:
        return zone.zone_id | (migratetype << FAST_FREE_MT_SHIFT)
    return FAST_FREE_LOOKUP


def pageblock_start_pfn(pfn: int, order: int) -> int:
    """pageblock_start_pfn(): the first pfn of pfn's pageblock."""
    return pfn & -(1 << order)


def pageblock_end_pfn(pfn: int, order: int) -> int:
    """pageblock_end_pfn(): the first pfn after pfn's pageblock."""
    return pageblock_start_pfn(pfn, order) + (1 << order)


def usemap_size(zone_start_pfn: int, zonesize: int, order: int) -> int:
    """usemap_size(): the bytes of a zone's pageblock bitmap (whole longs)."""
    pageblock = 1 << order
    zonesize += zone_start_pfn & (pageblock - 1)
    bits = -(-zonesize // pageblock) * NR_PAGEBLOCK_BITS
    return -(-bits // 32) * 32 // 8


def init_pageblock_flags(mm: MmState, zone: Zone, phys: int, order: int) -> None:
    """Give zone its bitmap at phys (setup_usemap()): every pageblock 0,
    MIGRATE_UNMOVABLE, as memblock_alloc() hands it over zeroed."""
    size = usemap_size(zone.zone_start_pfn, zone.spanned_pages, order)
    mm.physmem.fill(phys, size, 0)
    base = pageblock_start_pfn(zone.zone_start_pfn, order)
    nr = -(-(zone.zone_end_pfn - base) >> order) if zone.spanned_pages else 0
    zone.pageblock_flags = PageblockFlags(phys, base, order, bytearray(nr))


def get_pfnblock_migratetype(zone: Zone, pfn: int) -> int:
    """get_pfnblock_migratetype(): the migratetype of pfn's pageblock in zone's bitmap."""
    pb = zone.pageblock_flags
    return pb.mt[(pfn - pb.base) >> pb.order]


get_pageblock_migratetype = get_pfnblock_migratetype


def read_pageblock_bits(mm: MmState, zone: Zone, pfn: int) -> int:
    """The migratetype bits of pfn's pageblock as guest memory holds them."""
    pb = zone.pageblock_flags
    bitidx = ((pfn - pb.base) >> pb.order) * NR_PAGEBLOCK_BITS
    word = mm.u32[(pb.phys >> 2) + (bitidx >> 5)]
    return (word >> (bitidx & 31)) & MIGRATETYPE_MASK


def set_pageblock_migratetype(mm: MmState, zone: Zone, pfn: int, migratetype: int) -> None:
    """set_pageblock_migratetype(): pfn's pageblock becomes migratetype.

    Models mm/page_alloc.c:set_pageblock_migratetype() (with
    page_group_by_mobility_disabled, every pcp type is MIGRATE_UNMOVABLE)
    and set_pfnblock_flags_mask() writing the bits into the zone's bitmap.
    The pageblock's pages in this zone that the fast free path may take
    get the new fast_zone code.
    """
    if mm.page_group_by_mobility_disabled and migratetype < MIGRATE_PCPTYPES:
        migratetype = MIGRATE_UNMOVABLE
    pb = zone.pageblock_flags
    block = (pfn - pb.base) >> pb.order
    old = pb.mt[block]
    pb.mt[block] = migratetype
    bitidx = block * NR_PAGEBLOCK_BITS
    w = (pb.phys >> 2) + (bitidx >> 5)
    shift = bitidx & 31
    mm.u32[w] = (mm.u32[w] & ~(MIGRATETYPE_MASK << shift)) | (migratetype << shift)
    if old != migratetype:
        start = max(pageblock_start_pfn(pfn, pb.order), zone.zone_start_pfn)
        end = min(pageblock_end_pfn(pfn, pb.order), zone.zone_end_pfn, mm.max_pfn)
        _recode_fast_free(mm, start, end, fast_free_code(zone, migratetype))


def _recode_fast_free(mm: MmState, start: int, end: int, code: int) -> None:
    """Every fast_zone byte of [start, end) that is not NO_FAST_FREE becomes code."""
    table = bytes([code]) * NO_FAST_FREE + bytes([NO_FAST_FREE])
    mm.fast_zone[start:end] = mm.fast_zone[start:end].translate(table)


def set_fast_free(mm: MmState, zone: Zone, start: int, end: int) -> None:
    """Open [start, end) of zone to the fast free path, each page with its
    pageblock's code (the pages are free, or freed as order-0 pages)."""
    pb = zone.pageblock_flags
    pfn = start
    while pfn < end:
        stop = min(pageblock_end_pfn(pfn, pb.order), end)
        code = fast_free_code(zone, pb.mt[(pfn - pb.base) >> pb.order])
        mm.fast_zone[pfn:stop] = bytes([code]) * (stop - pfn)
        pfn = stop
    sync_fast_free_bits(mm, start, end)


def change_pageblock_range(mm: MmState, zone: Zone, pfn: int, start_order: int,
                           migratetype: int) -> None:
    """change_pageblock_range(): every pageblock of a block of start_order
    (at least pageblock_order) becomes migratetype."""
    order = zone.pageblock_flags.order
    for i in range(1 << (start_order - order)):
        set_pageblock_migratetype(mm, zone, pfn + (i << order), migratetype)
