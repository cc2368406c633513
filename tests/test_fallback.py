"""Taking pages of another migratetype (mm/fallback.py): which pageblock an
allocation steals and how much of it, the watermark boost, the high-atomic
reserve; and __free_one_page()/free_pcppages_bulk() with migratetypes.
The guest's view of it all is migrate_tour.c."""
from pathlib import Path

from mmemu.layout import ZONE_DMA, ZONE_NORMAL
from mmemu.machine import Machine
from mmemu.mm import page_alloc as pa
from mmemu.mm.fallback import (
    _rmqueue, boost_watermark, can_steal_fallback, move_freepages_block, steal_suitable_fallback,
)
from mmemu.mm.freelist import (
    _free_one_page, _rmqueue_smallest, find_buddy_page_pfn, move_to_free_list,
)
from mmemu.mm.gfp import (
    __GFP_MOVABLE, __GFP_NOWARN, __GFP_RECLAIMABLE, GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL,
    gfp_migratetype,
)
from mmemu.mm.mmzone import (
    MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE,
    W_INDEX, order_to_pindex,
)
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.pageblock import get_pfnblock_migratetype, set_pageblock_migratetype
from mmemu.mm.pcp import drain_all_pages
from mmemu.testing import run_guest

NOWARN = __GFP_NOWARN
GUEST = Path(__file__).resolve().parent.parent / "guest"


def _index(mm, pfn):
    return mm.u32[mm.memmap.page_word(pfn, W_INDEX)]


def _free_blocks(zone, mt):
    """[(order, pfn)] of every block on migratetype mt's lists."""
    out = []
    for order, area in enumerate(zone.free_area):
        if area.free_list[mt].first >= 0:
            out.append((order, area.free_list[mt].first))
    return out


def test_gfp_migratetype():
    assert gfp_migratetype(GFP_KERNEL) == MIGRATE_UNMOVABLE
    assert gfp_migratetype(GFP_HIGHUSER_MOVABLE) == MIGRATE_MOVABLE
    assert gfp_migratetype(GFP_KERNEL | __GFP_RECLAIMABLE) == MIGRATE_RECLAIMABLE
    assert gfp_migratetype(GFP_KERNEL | __GFP_RECLAIMABLE | __GFP_MOVABLE) == MIGRATE_HIGHATOMIC
    assert gfp_migratetype(GFP_HIGHUSER_MOVABLE, mobility_disabled=True) == MIGRATE_UNMOVABLE


def test_can_steal_fallback_rules():
    assert can_steal_fallback(_NoMobility(), 10, MIGRATE_MOVABLE, 10)     # a whole pageblock
    assert can_steal_fallback(_NoMobility(), 5, MIGRATE_MOVABLE, 10)      # pageblock_order / 2
    assert not can_steal_fallback(_NoMobility(), 4, MIGRATE_MOVABLE, 10)
    assert can_steal_fallback(_NoMobility(), 0, MIGRATE_UNMOVABLE, 10)
    assert can_steal_fallback(_NoMobility(), 0, MIGRATE_RECLAIMABLE, 10)


class _NoMobility:
    page_group_by_mobility_disabled = False


def test_first_unmovable_allocation_steals_the_lowest_free_pageblock(mm_boot):
    # Every pageblock is movable after the boot: the first GFP_KERNEL page steals
    # the first 4 MiB block of Normal's movable list, the lowest whole free one
    # ([32 MiB, 36 MiB): the kernel image ends in [28 MiB, 32 MiB)), whole
    mm = mm_boot("qemu-pc-64m")
    normal = mm.zones[ZONE_NORMAL]
    assert normal.free_area[10].free_list[MIGRATE_MOVABLE].first == 0x2000
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 0)
    assert pfn == 0x2000 and _index(mm, pfn) == MIGRATE_UNMOVABLE
    assert get_pfnblock_migratetype(normal, 0x2000) == MIGRATE_UNMOVABLE
    assert get_pfnblock_migratetype(normal, 0x2400) == MIGRATE_MOVABLE
    pcp = normal.per_cpu_pageset
    # the rest of the batch came from the same pageblock, in address order
    assert pcp.lists[MIGRATE_UNMOVABLE][::-1] == list(range(0x2001, 0x2000 + pcp.batch))
    assert {p >> 10 for order, p in _free_blocks(normal, MIGRATE_UNMOVABLE)} == {0x2000 >> 10}
    check_page_alloc(mm)


def test_movable_request_steals_a_whole_block_of_pageblock_order(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)
    normal = mm.zones[ZONE_NORMAL]
    _all_unmovable(mm, normal)
    first = normal.free_area[10].free_list[MIGRATE_UNMOVABLE].first
    pfn = pa.alloc_pages(mm, GFP_KERNEL | __GFP_MOVABLE, 0)
    # can_steal_fallback() looks at the block's order: a 4 MiB block is a
    # pageblock, and it changes type whole, even for a movable request
    assert pfn == first and _index(mm, pfn) == MIGRATE_MOVABLE
    assert get_pfnblock_migratetype(normal, first) == MIGRATE_MOVABLE
    check_page_alloc(mm)


def test_movable_request_splits_the_smallest_block_when_it_cannot_steal(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)
    normal = mm.zones[ZONE_NORMAL]
    _all_unmovable(mm, normal)
    # keep only blocks below pageblock_order / 2 on the lists
    aside = []
    for order in range(5, 11):
        area = normal.free_area[order]
        while area.free_list[MIGRATE_UNMOVABLE].first >= 0:
            pfn = area.free_list[MIGRATE_UNMOVABLE].first
            pa.del_page_from_free_list(mm, normal, pfn, order)
            aside.append((pfn, order))
    smallest = min(_free_blocks(normal, MIGRATE_UNMOVABLE))
    pfn = _rmqueue(mm, normal, 0, MIGRATE_MOVABLE, 0)
    # the smallest unmovable block moved to the movable lists, split for the
    # request, without its pageblock; the watermark was boosted
    assert pfn == smallest[1] and _index(mm, pfn) == MIGRATE_MOVABLE
    assert get_pfnblock_migratetype(normal, pfn) == MIGRATE_UNMOVABLE
    assert normal.watermark_boost == 1024
    for block, order in aside:
        pa.set_buddy_order(mm, block, order)
        pa.add_to_free_list(mm, normal, block, order, MIGRATE_UNMOVABLE)


def _all_unmovable(mm, zone):
    """Every pageblock of the zone unmovable, every free block on unmovable lists."""
    for pfn in range(zone.zone_start_pfn, zone.zone_end_pfn, 1024):
        set_pageblock_migratetype(mm, zone, pfn, MIGRATE_UNMOVABLE)
        move_freepages_block(mm, zone, pfn, MIGRATE_UNMOVABLE)
    # move_freepages_block() stops at the zone's end: the last, partial pageblock
    # keeps its blocks on the movable lists; move those by hand
    for order, area in enumerate(zone.free_area):
        while area.free_list[MIGRATE_MOVABLE].first >= 0:
            move_to_free_list(mm, zone, area.free_list[MIGRATE_MOVABLE].first, order,
                              MIGRATE_UNMOVABLE)
    assert _free_blocks(zone, MIGRATE_MOVABLE) == []


def test_steal_of_a_small_block_claims_the_pageblock_when_half_is_free(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)
    normal = mm.zones[ZONE_NORMAL]
    block = normal.free_area[10].free_list[MIGRATE_MOVABLE].first
    pa.del_page_from_free_list(mm, normal, block, 10)      # split it: 512 + 256 + ... + 1 + 1
    pa.expand(mm, normal, block, 0, 10, MIGRATE_MOVABLE)
    pa.set_buddy_order(mm, block, 0)
    pa.add_to_free_list(mm, normal, block, 0, MIGRATE_MOVABLE)
    steal_suitable_fallback(mm, normal, block + 512, 9, 0, MIGRATE_UNMOVABLE, True)
    # every free page of the pageblock (all 1024) moved, so it is unmovable now
    assert get_pfnblock_migratetype(normal, block) == MIGRATE_UNMOVABLE
    assert all(_block_holding(mm, normal, p)[2] == MIGRATE_UNMOVABLE
               for p in (block, block + 1, block + 2, block + 512, block + 1023))
    # a small steal boosts the watermark; without ALLOC_KSWAPD nothing drops it
    assert normal.watermark_boost == 1024
    pa.wake_all_kswapds(mm, ([normal],))
    assert normal.watermark_boost == 0
    check_page_alloc(mm)


def _block_holding(mm, zone, pfn):
    """(head pfn, order, migratetype of its list) of the free block holding pfn, or None."""
    for order, area in enumerate(zone.free_area):
        for mt, head in enumerate(area.free_list):
            p = head.first
            while p >= 0:
                if p <= pfn < p + (1 << order):
                    return p, order, mt
                nxt = mm.u32[mm.memmap.page_word(p, 1)]              # lru.next
                p = (nxt - mm.mvirt) // 40 if nxt else -1
    return None


def test_boost_watermark_stays_below_its_cap(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    cap = normal._watermark[2] * 15000 // 10000
    for _ in range(100):
        assert boost_watermark(mm, normal)
    assert normal.watermark_boost == cap
    assert not boost_watermark(mm, mm.zones[ZONE_DMA])     # too small a zone to bother


def test_free_pcppages_bulk_uses_the_migratetype_the_page_cached(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)
    normal = mm.zones[ZONE_NORMAL]
    pfn = pa.alloc_pages(mm, GFP_KERNEL | __GFP_MOVABLE, 0)
    pa._free_pages(mm, pfn, 0)
    assert pfn in normal.per_cpu_pageset.lists[MIGRATE_MOVABLE]
    assert _index(mm, pfn) == MIGRATE_MOVABLE
    set_pageblock_migratetype(mm, normal, pfn, MIGRATE_RECLAIMABLE)
    drain_all_pages(mm)
    # the page went back onto a movable list (its cached type), not a reclaimable one
    head, order, mt = _block_holding(mm, normal, pfn)
    assert mt == MIGRATE_MOVABLE


def test_isolated_pageblock_frees_skip_the_pcp_and_nr_free(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    pfn = pa.alloc_pages(mm, GFP_KERNEL | __GFP_MOVABLE, 0)
    set_pageblock_migratetype(mm, normal, pfn, MIGRATE_ISOLATE)
    free, pcp = normal.nr_free_pages, normal.per_cpu_pageset.count
    pa._free_pages(mm, pfn, 0)
    assert normal.per_cpu_pageset.count == pcp and normal.nr_free_pages == free
    assert _block_holding(mm, normal, pfn) == (pfn, 0, MIGRATE_ISOLATE)


def test_merged_block_takes_the_freed_blocks_migratetype(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)
    normal = mm.zones[ZONE_NORMAL]
    a = _rmqueue_smallest(mm, normal, 1, MIGRATE_MOVABLE)      # both halves of an order-1 block
    normal.nr_free_pages -= 2
    _free_one_page(mm, normal, a + 1, 0, MIGRATE_MOVABLE)
    assert find_buddy_page_pfn(mm, a, 0) == a + 1
    pfn, order = _free_one_page(mm, normal, a, 0, MIGRATE_UNMOVABLE)
    # below pageblock_order buddies of any types merge; the block is filed as
    # the page that was freed last says
    assert order >= 1 and _block_holding(mm, normal, pfn) == (pfn, order, MIGRATE_UNMOVABLE)


def test_high_order_atomic_success_reserves_a_pageblock_and_failure_gives_it_back(mm_boot):
    mm = mm_boot("pc-16m")
    # down to the min watermark: GFP_ATOMIC then needs its reserves (the slow path)
    while pa.alloc_pages(mm, GFP_KERNEL | NOWARN, 0) is not None:
        pass
    pfn = pa.alloc_pages(mm, GFP_ATOMIC | NOWARN, 1)
    assert pfn is not None
    zone = pa.page_zone(mm, pfn)
    assert zone.nr_reserved_highatomic == 1024
    assert get_pfnblock_migratetype(zone, pfn) == MIGRATE_HIGHATOMIC
    check_page_alloc(mm)
    pa._free_pages(mm, pfn, 1)
    # a failing GFP_KERNEL request gives the reserve up before it fails
    while pa.alloc_pages(mm, GFP_KERNEL | NOWARN, 0) is not None:
        pass
    assert zone.nr_reserved_highatomic == 0
    assert get_pfnblock_migratetype(zone, pfn) == MIGRATE_UNMOVABLE
    check_page_alloc(mm)


def test_pcp_lists_per_migratetype_and_the_thp_order(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)
    normal = mm.zones[ZONE_NORMAL]
    pcp = normal.per_cpu_pageset
    for gfp, mt in ((GFP_KERNEL, MIGRATE_UNMOVABLE), (GFP_KERNEL | __GFP_MOVABLE, MIGRATE_MOVABLE),
                    (GFP_KERNEL | __GFP_RECLAIMABLE, MIGRATE_RECLAIMABLE)):
        for order in (0, 3, 10):
            pfn = pa.alloc_pages(mm, gfp, order)
            assert pa.page_zonenum(mm, pfn) == ZONE_NORMAL
            pa._free_pages(mm, pfn, order)
            assert pfn in pcp.lists[order_to_pindex(mt, order)]
    # THP: a refill takes two blocks; unmovable and reclaimable share a list, so
    # the reclaimable order-10 request got the unmovable block waiting there
    assert len(pcp.lists[12]) == 2 and len(pcp.lists[13]) == 2
    assert pcp.count == sum(len(lst) << o for lst, o in
                            zip(pcp.lists, [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3 + [10] * 2))
    check_page_alloc(mm)


def test_migrate_tour_on_pc_1g():
    r = run_guest(str(GUEST / "examples/migrate_tour.c"), config="pc-1g")
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert "pageblock_order 10: 1024 pages, 4096 KiB a pageblock" in r.console
    assert "GFP_KERNEL | __GFP_RECLAIMABLE   pfn 0x02400: pageblock Reclaimable, page->index 2" \
        in r.console                        # the lowest movable pageblock, stolen whole
    assert "Normal: 1 Unmovable, 213 Movable, 1 Reclaimable pageblocks" in r.console
    assert "became Unmovable" in r.console
    assert "after freeing: 2 Unmovable, 1 Reclaimable pageblocks" in r.console


def test_migrate_tour_pagetypeinfo_after(tmp_path):
    m = Machine("pc-1g", echo=False)
    r = m.run(str(GUEST / "examples/migrate_tour.c"))
    assert r.exit_code == 0
    from mmemu.views.procfs import pagetypeinfo
    line = next(x for x in pagetypeinfo(m.mm).splitlines() if x.startswith("Node 0, zone   Normal"))
    assert line.split()[4:] == ["2", "212", "1", "0", "0"]
    m.check()

