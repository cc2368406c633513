"""The watermark check (mm/watermark.py) pinned to Linux 6.1's rules, page
for page: which reserve below the min watermark each kind of request may
use in __zone_watermark_ok(), and where the allocator stops.

6.1 as Debian builds it (the 6.1.176 stable series) gives __GFP_HIGH
ALLOC_MIN_RESERVE (half of min), a __GFP_HIGH caller that cannot reclaim
(GFP_ATOMIC) ALLOC_NON_BLOCK on top (a quarter of the rest), and nothing
to the other non-blocking masks (GFP_NOWAIT); the zone keeps
lowmem_reserve[highest_zoneidx] besides; a free count equal to the mark
fails.  The machine is chosen so that every rounding shows: pc-16m with
min_free_kbytes=1000 gives ZONE_DMA a min watermark of 99 (odd: half of it
leaves 50, not 49), and 50 is no multiple of 4 (a quarter off leaves 38,
not 37).
"""
import types

import pytest

from mmemu.layout import ZONE_DMA, ZONE_NORMAL
from mmemu.mm import page_alloc as pa
from mmemu.mm.gfp import (
    __GFP_DMA, __GFP_HIGH, __GFP_MEMALLOC, __GFP_NOMEMALLOC, __GFP_NOWARN, GFP_ATOMIC,
    GFP_KERNEL, GFP_NOWAIT,
)
from mmemu.mm.mmzone import MAX_ORDER, MIGRATE_MOVABLE, FreeArea
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.pcp import drain_all_pages
from mmemu.mm.watermark import (
    ALLOC_KSWAPD, ALLOC_MIN_RESERVE, ALLOC_NON_BLOCK, ALLOC_OOM, ALLOC_WMARK_MIN,
    _zone_watermark_ok,
)

MIN = 1001          # a mark whose halves round differently up and down: 501, then 376


def zone_like(reserve=0, blocks=()):
    """A zone with lowmem_reserve[1] = reserve, no high-atomic reserve and one
    free movable block of each order in blocks."""
    areas = [FreeArea() for _ in range(MAX_ORDER)]
    for order in blocks:
        areas[order].nr_free = 1
        areas[order].free_list[MIGRATE_MOVABLE].first = 0x100
    return types.SimpleNamespace(lowmem_reserve=[0, reserve, 0, 0], free_area=areas,
                                 nr_reserved_highatomic=0)


@pytest.mark.parametrize("flags, usable_min", [
    (0, 1001),                                  # GFP_KERNEL, GFP_NOWAIT: the whole mark
    (ALLOC_NON_BLOCK, 1001),                    # non-blocking without __GFP_HIGH: no reserve
    (ALLOC_MIN_RESERVE, 501),                   # __GFP_HIGH: min - min / 2
    (ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK, 376),  # GFP_ATOMIC: then - min / 4 of that
    (ALLOC_OOM, 501),
    (ALLOC_OOM | ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK, 188),
])
@pytest.mark.parametrize("reserve", [0, 7])
def test_zone_watermark_ok_order0_boundary(flags, usable_min, reserve):
    zone = zone_like(reserve)
    edge = usable_min + reserve
    assert not _zone_watermark_ok(zone, 0, MIN, 1, flags, edge)         # equal fails
    assert _zone_watermark_ok(zone, 0, MIN, 1, flags, edge + 1)


def test_zone_watermark_ok_high_order_counts_the_block_beyond_its_first_page():
    zone = zone_like(blocks=[3])
    # free_pages - ((1 << order) - 1) must exceed the mark ...
    assert not _zone_watermark_ok(zone, 3, MIN, 1, 0, MIN + 7)
    assert _zone_watermark_ok(zone, 3, MIN, 1, 0, MIN + 8)
    # ... and a free block of at least that order must exist
    assert not _zone_watermark_ok(zone_like(blocks=[2]), 3, MIN, 1, 0, 10 * MIN)
    assert _zone_watermark_ok(zone_like(blocks=[10]), 3, MIN, 1, 0, 10 * MIN)


@pytest.mark.parametrize("gfp, flags", [
    (GFP_KERNEL, ALLOC_WMARK_MIN | ALLOC_KSWAPD),
    (GFP_NOWAIT, ALLOC_NON_BLOCK | ALLOC_KSWAPD),
    (GFP_KERNEL | __GFP_HIGH, ALLOC_MIN_RESERVE | ALLOC_KSWAPD),
    (GFP_ATOMIC, ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK | ALLOC_KSWAPD),
    (GFP_ATOMIC | __GFP_NOMEMALLOC, ALLOC_MIN_RESERVE | ALLOC_KSWAPD),
])
def test_gfp_to_alloc_flags_reserve_rights(gfp, flags):
    got = pa.gfp_to_alloc_flags(gfp, 0)
    rights = ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK | ALLOC_KSWAPD | 3   # and the watermark index
    assert got & rights == flags


# -- where the allocator stops --------------------------------------------------------

@pytest.fixture
def pc16m(mm_boot):
    mm = mm_boot("pc-16m", min_free_kbytes=1000)
    drain_all_pages(mm)             # the boot's frees left pages on the pcp lists
    dma = mm.zones[ZONE_DMA]
    assert (dma.min_wmark_pages(), dma.per_cpu_pageset.batch) == (99, 1)
    return mm


def alloc_until_refused(mm, gfp, order=0):
    n = 0
    while pa.alloc_pages(mm, gfp | __GFP_NOWARN, order) is not None:
        n += 1
    return n


@pytest.mark.parametrize("gfp, stops_at", [
    (GFP_KERNEL | __GFP_DMA, 99),
    (GFP_NOWAIT | __GFP_DMA, 99),               # non-blocking is not a right to the reserve
    (__GFP_DMA, 99),
    (GFP_KERNEL | __GFP_HIGH | __GFP_DMA, 50),  # 99 - 99 / 2
    (GFP_ATOMIC | __GFP_DMA, 38),               # 50 - 50 / 4
    (GFP_NOWAIT | __GFP_HIGH | __GFP_DMA, 38),  # __GFP_HIGH and cannot reclaim: as GFP_ATOMIC
    (GFP_ATOMIC | __GFP_NOMEMALLOC | __GFP_DMA, 50),
    (GFP_KERNEL | __GFP_MEMALLOC | __GFP_DMA, 0),    # ALLOC_NO_WATERMARKS: everything
])
def test_order0_allocations_stop_exactly_at_their_reserve(pc16m, gfp, stops_at):
    """ZONE_DMA's pcp batch is 1, so each allocation takes one page off
    NR_FREE_PAGES: the last one succeeds at stops_at + 1 free pages."""
    dma = pc16m.zones[ZONE_DMA]
    taken = alloc_until_refused(pc16m, gfp)
    assert dma.nr_free_pages == stops_at
    assert taken == dma.managed_pages - stops_at
    check_page_alloc(pc16m)


def test_gfp_kernel_leaves_dma_its_lowmem_reserve(pc16m):
    """GFP_KERNEL may fall back from Normal to DMA, but DMA keeps
    lowmem_reserve[ZONE_NORMAL] = 1971 Normal pages / 256 = 7 on top of min."""
    normal, dma = pc16m.zones[ZONE_NORMAL], pc16m.zones[ZONE_DMA]
    assert dma.lowmem_reserve[ZONE_NORMAL] == 7
    alloc_until_refused(pc16m, GFP_KERNEL)
    assert dma.nr_free_pages == 99 + 7
    assert normal.nr_free_pages == normal.min_wmark_pages()
    alloc_until_refused(pc16m, GFP_ATOMIC)
    assert dma.nr_free_pages == 38 + 7
    check_page_alloc(pc16m)


def test_order1_allocations_count_the_second_page(pc16m):
    """An order-1 request needs free - 1 > min: GFP_ATOMIC's order-1 requests
    stop at 39 free pages (from an odd count), not at 37 as a check that
    forgot the block's second page would."""
    dma = pc16m.zones[ZONE_DMA]
    if not dma.nr_free_pages % 2:
        assert pa.alloc_pages(pc16m, GFP_KERNEL | __GFP_DMA, 0) is not None
    alloc_until_refused(pc16m, GFP_ATOMIC | __GFP_DMA, order=1)
    assert dma.nr_free_pages == 39
    check_page_alloc(pc16m)


# -- the same from a guest program ------------------------------------------------------

RESERVES_C = r"""
#include <mmemu.h>

/* Take ZONE_DMA pages with one mask until the allocator says no. */
static unsigned long take_all(gfp_t gfp)
{
	unsigned long n = 0;

	while (alloc_pages(gfp | __GFP_DMA | __GFP_NOWARN, 0))
		n++;
	return n;
}

int main(void)
{
	unsigned long nowait = take_all(GFP_NOWAIT);
	unsigned long high = take_all(GFP_KERNEL | __GFP_HIGH);
	unsigned long atomic = take_all(GFP_ATOMIC);

	printk("nowait %lu high %lu atomic %lu\n", nowait, high, atomic);
	return 0;
}
"""


def test_a_guest_program_reaches_each_reserve_and_no_further(tmp_path):
    """alloc_pages() hypercalls from C: GFP_NOWAIT stops at min (99),
    __GFP_HIGH takes 49 pages more (to 50), GFP_ATOMIC 12 more (to 38)."""
    import dataclasses

    from mmemu.config import load_config
    from mmemu.machine import Machine
    m = Machine(dataclasses.replace(load_config("pc-16m"), min_free_kbytes=1000), echo=False)
    dma = m.mm.zones[ZONE_DMA]
    assert dma.min_wmark_pages() == 99
    src = tmp_path / "reserves.c"
    src.write_text(RESERVES_C)
    r = m.run(str(src))
    assert r.status == 0, r.log
    assert r.log.endswith(" high 49 atomic 12")
    assert dma.nr_free_pages == 38
