"""Zone watermarks, lowmem reserves and the watermark check.

Models mm/page_alloc.c of Linux 6.1.176: init_per_zone_wmark_min()
(calculate_min_free_kbytes, __setup_per_zone_wmarks,
setup_per_zone_lowmem_reserve, calculate_totalreserve_pages) and
__zone_watermark_ok()/zone_watermark_fast() with the ALLOC_* flags of the
6.1 stable series (ALLOC_MIN_RESERVE for __GFP_HIGH, ALLOC_NON_BLOCK for
callers that cannot reclaim; 6.1.0 called them ALLOC_HIGH and ALLOC_HARDER).

Every function takes ``mm`` (the page allocator's state, page_alloc.MmState)
or a Zone and only reads or sets numbers: nothing here touches guest memory.
"""
from __future__ import annotations

from math import isqrt
from typing import TYPE_CHECKING

from mmemu.layout import MAX_NR_ZONES, PAGE_SHIFT, ZONE_NORMAL
from mmemu.mm.gfp import __GFP_ATOMIC
from mmemu.mm.mmzone import (
    MAX_ORDER, MIGRATE_HIGHATOMIC, MIGRATE_PCPTYPES, WMARK_HIGH, WMARK_LOW, WMARK_MIN,
    WMARK_PROMO, Zone, online_pgdats,
)

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

# mm/internal.h, 6.1.176
ALLOC_WMARK_MIN = WMARK_MIN
ALLOC_WMARK_LOW = WMARK_LOW
ALLOC_WMARK_HIGH = WMARK_HIGH
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10          # cannot reclaim: with __GFP_HIGH, 62.5% of min usable
ALLOC_MIN_RESERVE = 0x20        # __GFP_HIGH: half of the min reserve usable
ALLOC_CPUSET = 0x40
ALLOC_CMA = 0x80
ALLOC_NOFRAGMENT = 0x0          # 0x100 only with ZONE_DMA32
ALLOC_HIGHATOMIC = 0x200
ALLOC_KSWAPD = 0x800
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM
ALLOC_HIGH = ALLOC_MIN_RESERVE  # 6.1.0's names for the same two rights
ALLOC_HARDER = ALLOC_NON_BLOCK

SWAP_CLUSTER_MAX = 32
LOWMEM_RESERVE_RATIO = (256, 32, 0, 0)     # DMA, Normal, HighMem, Movable
WATERMARK_SCALE_FACTOR = 10


def int_sqrt(x: int) -> int:
    """int_sqrt(): floor of the square root."""
    return isqrt(x)


def mult_frac(x: int, numer: int, denom: int) -> int:
    """mult_frac(): x * numer / denom without overflowing, as the kernel rounds."""
    q, r = divmod(x, denom)
    return q * numer + r * numer // denom


def nr_free_zone_pages(mm: MmState, offset: int) -> int:
    """nr_free_zone_pages(): managed pages above the high watermark, zones <= offset.

    Walks the local node's GFP_KERNEL zonelist, which reaches every node.
    """
    total = 0
    local = mm.node_data[mm.numa_node_id]
    assert local is not None                    # CPU 0's node has memory
    for zone in local.node_zonelists[0]:
        if zone.zone_idx <= offset:
            size, high = zone.managed_pages, zone.high_wmark_pages()
            if size > high:
                total += size - high
    return total


def nr_free_buffer_pages(mm: MmState) -> int:
    """nr_free_buffer_pages(): what GFP_USER may use in lowmem, in pages."""
    return nr_free_zone_pages(mm, ZONE_NORMAL)


def calculate_min_free_kbytes(mm: MmState) -> int:
    """calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16), within [128, 262144].

    A min_free_kbytes given in the config stands for the sysctl written at
    boot: it wins, as user_min_free_kbytes does when it is the larger.
    """
    lowmem_kbytes = nr_free_buffer_pages(mm) * (1 << (PAGE_SHIFT - 10))
    new = int_sqrt(lowmem_kbytes * 16)
    user = mm.user_min_free_kbytes
    if user is None or new > user:
        mm.min_free_kbytes = min(max(new, 128), 262144)
    else:
        mm.min_free_kbytes = user
    return mm.min_free_kbytes


def _setup_per_zone_wmarks(mm: MmState) -> None:
    """__setup_per_zone_wmarks(): each zone's min/low/high from min_free_kbytes.

    Models mm/page_alloc.c:__setup_per_zone_wmarks(): lowmem zones share
    pages_min in proportion to their managed pages; HighMem (and a Movable
    zone carved from it) gets managed/1024 clamped to [32, 128], as
    __GFP_HIGH allocations rarely need it; the low and high marks add
    max(share/4, managed * watermark_scale_factor / 10000) each.
    """
    pages_min = mm.min_free_kbytes >> (PAGE_SHIFT - 10)
    lowmem_pages = sum(z.managed_pages for z in mm.zones if not z.is_highmem)
    for zone in mm.zones:
        tmp = pages_min * zone.managed_pages // lowmem_pages if lowmem_pages else 0
        if zone.is_highmem:
            wmin = min(max(zone.managed_pages // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            wmin = tmp
        step = max(tmp >> 2, mult_frac(zone.managed_pages, mm.watermark_scale_factor, 10000))
        wm = zone._watermark
        zone.watermark_boost = 0
        wm[WMARK_MIN] = wmin
        wm[WMARK_LOW] = wmin + step
        wm[WMARK_HIGH] = wmin + 2 * step
        wm[WMARK_PROMO] = wmin + 3 * step
    calculate_totalreserve_pages(mm)


def setup_per_zone_lowmem_reserve(mm: MmState) -> None:
    """setup_per_zone_lowmem_reserve(): what each zone keeps back from higher requests.

    zone.lowmem_reserve[j] = (managed pages of this node's zones above this
    one, up to j) / lowmem_reserve_ratio[this zone]; 0 when the ratio is 0
    or the zone has no managed pages.
    """
    for pgdat in online_pgdats(mm.node_data):
        for i in range(MAX_NR_ZONES - 1):
            zone = pgdat.node_zones[i]
            ratio = mm.lowmem_reserve_ratio[i]
            clear = not ratio or not zone.managed_pages
            managed = 0
            for j in range(i + 1, MAX_NR_ZONES):
                managed += pgdat.node_zones[j].managed_pages
                zone.lowmem_reserve[j] = 0 if clear else managed // ratio
    calculate_totalreserve_pages(mm)


def calculate_totalreserve_pages(mm: MmState) -> None:
    """calculate_totalreserve_pages(): the high marks plus the largest reserves."""
    total = 0
    for pgdat in online_pgdats(mm.node_data):
        pgdat.totalreserve_pages = 0
        for i, zone in enumerate(pgdat.node_zones):
            most = max([0] + zone.lowmem_reserve[i:]) + zone.high_wmark_pages()
            most = min(most, zone.managed_pages)
            pgdat.totalreserve_pages += most
            total += most
    mm.totalreserve_pages = total


def calculate_normal_threshold(zone: Zone, online_cpus: int = 1) -> int:
    """calculate_normal_threshold(): the vmstat drift allowed per CPU (zoneinfo prints it)."""
    mem = zone.managed_pages >> (27 - PAGE_SHIFT)
    return min(125, 2 * online_cpus.bit_length() * (1 + mem.bit_length()))


def _zone_watermark_unusable_free(zone: Zone, order: int, alloc_flags: int) -> int:
    """__zone_watermark_unusable_free(): pages of free_pages this request cannot count.

    The (1 << order) - 1 pages a high-order block needs beyond its first,
    and the high-atomic reserve for a request without rights to the
    reserves ("over-estimate ... but it avoids a search").  Differs: no CMA.
    """
    unusable = (1 << order) - 1
    if not alloc_flags & ALLOC_RESERVES:
        unusable += zone.nr_reserved_highatomic
    return unusable


def _zone_watermark_ok(zone: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int,
                       free_pages: int) -> bool:
    """__zone_watermark_ok(): may this request take pages from zone?

    Models mm/page_alloc.c:__zone_watermark_ok() of 6.1.176: __GFP_HIGH
    (ALLOC_MIN_RESERVE) may use half of the min reserve, a __GFP_HIGH caller
    that cannot reclaim (ALLOC_NON_BLOCK, GFP_ATOMIC) a quarter of the rest
    too; the zone must keep lowmem_reserve[highest_zoneidx] free for
    requests that could have used higher zones; a high-order request also
    needs a free block of at least its order on a pcp migratetype's list,
    or on MIGRATE_HIGHATOMIC's for ALLOC_HIGHATOMIC or ALLOC_OOM.
    """
    free_pages -= _zone_watermark_unusable_free(zone, order, alloc_flags)
    low = mark
    if alloc_flags & ALLOC_RESERVES:
        if alloc_flags & ALLOC_MIN_RESERVE:
            low -= low // 2
            if alloc_flags & ALLOC_NON_BLOCK:
                low -= low // 4
        if alloc_flags & ALLOC_OOM:
            low -= low // 2
    if free_pages <= low + zone.lowmem_reserve[highest_zoneidx]:
        return False
    if not order:
        return True
    highatomic = alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM)
    for area in zone.free_area[order:MAX_ORDER]:
        if not area.nr_free:
            continue
        lists = area.free_list
        for mt in range(MIGRATE_PCPTYPES):
            if lists[mt].first >= 0:
                return True
        if highatomic and lists[MIGRATE_HIGHATOMIC].first >= 0:
            return True
    return False


def zone_watermark_ok(zone: Zone, order: int, mark: int, highest_zoneidx: int,
                      alloc_flags: int) -> bool:
    """zone_watermark_ok(): _zone_watermark_ok() against the zone's free pages."""
    return _zone_watermark_ok(zone, order, mark, highest_zoneidx, alloc_flags,
                              zone.nr_free_pages)


def zone_watermark_fast(zone: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int,
                        gfp_mask: int = 0) -> bool:
    """zone_watermark_fast(): the order-0 shortcut, then the full check.

    An order-0 GFP_ATOMIC request checked at the min watermark of a zone
    whose watermark is boosted is checked again without the boost ("the
    min watermark is the point where boosting is ignored").
    """
    free_pages = zone.nr_free_pages
    if not order:
        reserved = _zone_watermark_unusable_free(zone, 0, alloc_flags)
        if free_pages - min(free_pages, reserved) > mark + zone.lowmem_reserve[highest_zoneidx]:
            return True
    if _zone_watermark_ok(zone, order, mark, highest_zoneidx, alloc_flags, free_pages):
        return True
    if (not order and gfp_mask & __GFP_ATOMIC and zone.watermark_boost
            and (alloc_flags & ALLOC_WMARK_MASK) == WMARK_MIN):
        return _zone_watermark_ok(zone, order, zone._watermark[WMARK_MIN], highest_zoneidx,
                                  alloc_flags, free_pages)
    return False
