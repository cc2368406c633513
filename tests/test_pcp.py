"""The per-cpu page lists (mm/pcp.py) pinned to Linux 6.1's boundaries:
zone_batchsize() and zone_highsize(), the refill when a list is empty
(rmqueue_bulk), the drain when pcp->count reaches pcp->high
(free_unref_page_commit, nr_pcp_high, nr_pcp_free with free_factor and
CONFIG_PCP_BATCH_SCALE_MAX=5 as Debian's 6.1 config sets it), and the
high-order free that empties the lists.  Each test goes one page either
side of the boundary, through the allocator's own entry points
(alloc_pages/__free_pages: the order-0 fast paths included), so a rule
that is off by one anywhere fails here.
"""
import types

import pytest

from mmemu.layout import ZONE_DMA, ZONE_HIGHMEM, ZONE_NORMAL
from mmemu.mm import page_alloc as pa
from mmemu.mm.gfp import __GFP_DMA, __GFP_MOVABLE, __GFP_NOWARN, GFP_HIGHUSER, GFP_KERNEL
from mmemu.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, WMARK_LOW, PerCpuPages, order_to_pindex
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.pcp import drain_all_pages, nr_pcp_free, zone_batchsize, zone_pcp_update


def zone_with(managed):
    return types.SimpleNamespace(managed_pages=managed)


def drained(mm_boot, config, **kw):
    """A booted mm whose pcp lists are empty (the boot's frees left pages on them)."""
    mm = mm_boot(config, **kw)
    drain_all_pages(mm)
    return mm


# -- zone_batchsize(), zone_highsize() ------------------------------------------------

@pytest.mark.parametrize("managed, batch", [
    # min(managed >> 10, 256) / 4, at least 1, then rounddown_pow_of_two(b + b/2) - 1
    (0, 0), (4095, 0), (8191, 0), (8192, 1), (12287, 1), (12288, 3), (20479, 3),
    (24575, 3), (24576, 7), (45055, 7), (45056, 15), (90111, 15), (90112, 31),
    (176127, 31), (176128, 63), (1 << 30, 63),
    (3840, 0), (37858, 7), (213777, 63),           # the real 1 GiB kernel's DMA, HighMem, Normal
])
def test_zone_batchsize_at_every_step(managed, batch):
    assert zone_batchsize(zone_with(managed)) == batch


@pytest.mark.parametrize("low, high", [(250, 252), (251, 252), (252, 252), (253, 253)])
def test_zone_highsize_is_the_low_watermark_but_at_least_four_batches(mm_boot, low, high):
    mm = mm_boot("pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    assert zone_batchsize(zone) == 63                 # 4 batches: 252
    zone._watermark[WMARK_LOW] = low
    zone_pcp_update(mm, zone)
    assert (zone.per_cpu_pageset.batch, zone.per_cpu_pageset.high) == (63, high)


def test_zone_highsize_with_percpu_pagelist_high_fraction(mm_boot):
    mm = mm_boot("pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    mm.percpu_pagelist_high_fraction = 8
    zone_pcp_update(mm, zone)
    assert zone.per_cpu_pageset.high == zone.managed_pages // 8 == 213777 // 8


def test_pcp_batch_is_at_least_one(mm_boot):
    dma = mm_boot("pc-1g").zones[ZONE_DMA]
    assert zone_batchsize(dma) == 0 and dma.per_cpu_pageset.batch == 1


# -- the refill: only when the list is empty, batch blocks --------------------------

def test_order0_refill_takes_batch_pages_and_only_when_empty(mm_boot):
    mm = drained(mm_boot, "pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    pcp = zone.per_cpu_pageset
    free = zone.nr_free_pages
    pa.alloc_pages(mm, GFP_KERNEL, 0)
    assert (pcp.count, zone.nr_free_pages) == (62, free - 63)
    for left in range(61, -1, -1):                     # the list empties without a refill
        pa.alloc_pages(mm, GFP_KERNEL, 0)
        assert (pcp.count, zone.nr_free_pages) == (left, free - 63)
    pa.alloc_pages(mm, GFP_KERNEL, 0)                  # empty: the next batch
    assert (pcp.count, zone.nr_free_pages) == (62, free - 126)


@pytest.mark.parametrize("config, zone_idx, gfp, order, blocks", [
    ("pc-1g", ZONE_NORMAL, GFP_KERNEL, 1, 31),         # batch 63 >> 1
    ("pc-1g", ZONE_NORMAL, GFP_KERNEL, 2, 15),
    ("pc-1g", ZONE_NORMAL, GFP_KERNEL, 3, 7),
    ("pc-1g", ZONE_HIGHMEM, GFP_HIGHUSER, 2, 2),       # batch 7 >> 2 = 1: at least 2
    ("pc-1g", ZONE_HIGHMEM, GFP_HIGHUSER, 3, 2),       # 7 >> 3 = 0: at least 2
    ("pc-1g", ZONE_DMA, GFP_KERNEL | __GFP_DMA, 3, 1),  # batch 1 is not scaled
])
def test_high_order_refill_is_batch_shifted_by_order(mm_boot, config, zone_idx, gfp, order, blocks):
    mm = drained(mm_boot, config)
    zone = mm.zones[zone_idx]
    free = zone.nr_free_pages
    pfn = pa.alloc_pages(mm, gfp, order)
    assert pa.page_zonenum(mm, pfn) == zone_idx
    assert zone.nr_free_pages == free - (blocks << order)
    assert zone.per_cpu_pageset.count == (blocks - 1) << order
    check_page_alloc(mm)


def test_refilled_pages_come_out_in_physical_order(mm_boot):
    """rmqueue_bulk() puts the blocks __rmqueue_smallest() splits off at the
    list's tail, so a fresh batch is handed out lowest pfn first."""
    mm = drained(mm_boot, "pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    movable = [area.free_list[MIGRATE_MOVABLE] for area in zone.free_area]
    for order in range(10):                            # leave only whole order-10 blocks
        while movable[order].first >= 0:
            pa.rmqueue_buddy(mm, zone, order, 0, MIGRATE_MOVABLE)
    block = movable[10].first
    got = [pa.alloc_pages(mm, GFP_KERNEL | __GFP_MOVABLE, 0) for _ in range(63)]
    assert got == list(range(block, block + 63))


# -- the drain: at exactly pcp->high, batch pages, oldest first ----------------------

def alloc_n(mm, gfp, n):
    pfns = [pa.alloc_pages(mm, gfp | __GFP_NOWARN, 0) for _ in range(n)]
    assert None not in pfns
    drain_all_pages(mm)                                # what the refills left: back to buddy
    return pfns


@pytest.mark.parametrize("debug_vm", [False, True])     # the fast free path, the checked one
def test_a_free_that_brings_count_to_high_drains_exactly_batch_oldest_first(mm_boot, debug_vm):
    mm = mm_boot("pc-1g", debug_vm=debug_vm)
    zone = mm.zones[ZONE_NORMAL]
    pcp = zone.per_cpu_pageset
    high, batch = pcp.high, pcp.batch
    pfns = alloc_n(mm, GFP_KERNEL, high)
    free = zone.nr_free_pages
    for i, pfn in enumerate(pfns[:-1], 1):
        pa._free_pages(mm, pfn, 0)
        assert pcp.count == i                          # below high: no drain
    assert pcp.count == high - 1 and zone.nr_free_pages == free
    pa._free_pages(mm, pfns[-1], 0)                    # count reaches high
    assert pcp.count == high - batch
    assert zone.nr_free_pages == free + batch
    assert sorted(pcp.lists[MIGRATE_UNMOVABLE]) == sorted(pfns[batch:])   # the first batch went back
    assert all(pa.page_count(mm, p) == 0 for p in pfns)
    check_page_alloc(mm)


def drains(mm, zone, pfns):
    """Free pfns one by one; the number of pages each drain gave back to the buddy lists."""
    out = []
    for pfn in pfns:
        before = zone.nr_free_pages
        pa._free_pages(mm, pfn, 0)
        if zone.nr_free_pages != before:
            out.append(zone.nr_free_pages - before)
    return out


@pytest.mark.parametrize("debug_vm", [False, True])
def test_free_factor_doubles_each_drain_up_to_pcp_batch_scale_max(mm_boot, debug_vm):
    """nr_pcp_free(): batch << free_factor, free_factor growing by one per
    drain while that is below high - batch and below
    CONFIG_PCP_BATCH_SCALE_MAX (5 in Debian's 6.1 config), then clamped to
    [batch, high - batch]."""
    mm = mm_boot("pc-1g", min_free_kbytes=16384, debug_vm=debug_vm)   # high above 64 batches
    zone = mm.zones[ZONE_NORMAL]
    pcp = zone.per_cpu_pageset
    high = pcp.high
    assert pcp.batch == 63 and high - 63 > 63 << 6
    pfns = alloc_n(mm, GFP_KERNEL, high + 63 + 126 + 252 + 504 + 1008 + 2016)
    assert drains(mm, zone, pfns) == [63, 126, 252, 504, 1008, 2016, 2016]   # not 4032
    assert pcp.count == high - 2016


def test_free_factor_drains_are_clamped_to_high_minus_batch(mm_boot):
    mm = mm_boot("pc-1g", min_free_kbytes=4096)        # high 1256: 63 << 5 is past high - 63
    zone = mm.zones[ZONE_NORMAL]
    pcp = zone.per_cpu_pageset
    assert (pcp.high, pcp.batch) == (1256, 63)
    want = [63, 126, 252, 504, 1008, 1193, 1193]       # 2016 clamped to high - batch
    pfns = alloc_n(mm, GFP_KERNEL, 1256 + sum(want[:-1]))
    assert drains(mm, zone, pfns) == want
    assert pcp.count == 63


@pytest.mark.parametrize("debug_vm", [False, True])
def test_an_allocation_halves_free_factor(mm_boot, debug_vm):
    mm = mm_boot("pc-1g", debug_vm=debug_vm)
    zone = mm.zones[ZONE_NORMAL]
    high = zone.per_cpu_pageset.high
    first = high + 63                                    # two drains: 63, then 126
    pfns = alloc_n(mm, GFP_KERNEL, first + 127)
    assert drains(mm, zone, pfns[:first]) == [63, 126]     # free_factor is 2 now
    # The mask alloc_n() used, which has an order-0 fast-path plan by now.
    pa.alloc_pages(mm, GFP_KERNEL | __GFP_NOWARN, 0)         # 2 >> 1 = 1 (count high - 127)
    assert drains(mm, zone, pfns[first:]) == [126]          # batch << 1, not << 2


# -- high-order frees ------------------------------------------------------------------

def test_a_high_order_free_after_a_drain_empties_every_list(mm_boot):
    """free_high: with free_factor set, a free of order 1..3 makes high 0 and
    nr_pcp_free() pcp->count: every list is emptied."""
    mm = mm_boot("pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    pcp = zone.per_cpu_pageset
    blocks = [pa.alloc_pages(mm, GFP_KERNEL | __GFP_NOWARN, 1) for _ in range(2)]
    pfns = alloc_n(mm, GFP_KERNEL, pcp.high)
    pa._free_pages(mm, blocks[0], 1)                   # free_factor 0: stays on the list
    assert pcp.count == 2 and blocks[0] in pcp.lists[order_to_pindex(MIGRATE_UNMOVABLE, 1)]
    drains(mm, zone, pfns[:pcp.high - 2])              # count reaches high: one drain
    assert pcp.count == pcp.high - pcp.batch
    free = zone.nr_free_pages
    pa._free_pages(mm, blocks[1], 1)
    assert pcp.count == 0
    assert zone.nr_free_pages == free + pcp.high - pcp.batch + 2
    check_page_alloc(mm)


def test_an_order0_free_after_a_drain_does_not_empty_the_lists(mm_boot):
    mm = mm_boot("pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    pcp = zone.per_cpu_pageset
    pfns = alloc_n(mm, GFP_KERNEL, pcp.high + 1)
    drains(mm, zone, pfns[:pcp.high])
    pa._free_pages(mm, pfns[-1], 0)
    assert pcp.count == pcp.high - pcp.batch + 1


# -- nr_pcp_free() on its own ------------------------------------------------------------

@pytest.mark.parametrize("high, batch, free_factor, count, want, factor_after", [
    (0, 1, 0, 1, 1, 0),            # a boot pageset (high < batch): one page at a time
    (100, 10, 0, 100, 10, 1),      # leave at least batch
    (100, 10, 3, 100, 80, 4),      # 80 still below high - batch: free_factor grows
    (100, 10, 4, 100, 90, 4),      # 160 clamped to high - batch
    (1000, 10, 5, 1000, 320, 5),   # CONFIG_PCP_BATCH_SCALE_MAX: free_factor stops at 5
    (1000, 10, 4, 1000, 160, 5),
    (30, 20, 0, 30, 10, 0),        # high - batch < batch: clamp() gives high - batch
])
def test_nr_pcp_free(high, batch, free_factor, count, want, factor_after):
    pcp = PerCpuPages()
    pcp.high, pcp.batch, pcp.free_factor = high, batch, free_factor
    pcp.lists[0].extend(range(count))
    assert nr_pcp_free(pcp, high, batch, False) == want
    assert pcp.free_factor == factor_after
    assert nr_pcp_free(pcp, high, batch, True) == count       # free_high: everything
