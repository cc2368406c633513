"""Pageblock flags (mm/pageblock.py): the bitmap in guest memory, what the
boot marks, what a change of migratetype does to the fast free path, and
/proc/pagetypeinfo against the real kernel's."""
from pathlib import Path

import pytest

from mmemu.errors import PageAllocCorruption
from mmemu.layout import ZONE_DMA, ZONE_HIGHMEM, ZONE_NORMAL
from mmemu.mm import page_alloc as pa
from mmemu.mm.gfp import GFP_KERNEL
from mmemu.mm.mmzone import (
    MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE,
    pageblock_order_for,
)
from mmemu.mm.page import NO_FAST_FREE
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.pageblock import (
    FAST_FREE_LOOKUP, fast_free_code, get_pfnblock_migratetype, read_pageblock_bits,
    set_pageblock_migratetype, usemap_size,
)
from mmemu.mm.pcp import drain_all_pages
from mmemu.views.procfs import pagetypeinfo

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"


def _types(zone):
    step = 1 << zone.pageblock_flags.order
    return [get_pfnblock_migratetype(zone, pfn)
            for pfn in range(zone.zone_start_pfn, zone.zone_end_pfn, step)]


def test_pageblock_order_is_the_huge_page_order():
    # 686: a 4 MiB PMD page (order 10, MAX_ORDER - 1); 686-pae: 2 MiB (order 9)
    assert pageblock_order_for() == 10 and pageblock_order_for(9) == 9
    assert pageblock_order_for(11) == 10                 # never above MAX_ORDER - 1


def test_usemap_size_as_the_real_boot_allocated_it():
    # setup_usemap's memblock allocations on the reference kernel (qemu-pc-1g's dmesg):
    # DMA 4 bytes, Normal 108, HighMem 20
    assert usemap_size(1, 4095, 10) == 4
    assert usemap_size(0x1000, 0x36bfe - 0x1000, 10) == 108
    assert usemap_size(0x36bfe, 0x3ffe0 - 0x36bfe, 10) == 20


def test_memmap_init_marks_every_pageblock_movable(mm_boot):
    mm = mm_boot("pc-1g")
    dma, normal, high = mm.zones[ZONE_DMA], mm.zones[ZONE_NORMAL], mm.zones[ZONE_HIGHMEM]
    # DMA starts at pfn 1: its first pageblock's first pfn is in no zone's
    # memmap_init range, so it keeps the bitmap's 0, MIGRATE_UNMOVABLE
    assert _types(dma) == [MIGRATE_UNMOVABLE] + [MIGRATE_MOVABLE] * 3
    assert set(_types(normal)) == {MIGRATE_MOVABLE}
    # HighMem starts inside the pageblock at 0x36800: its own entry for that
    # pageblock was never marked either
    assert _types(high)[0] == MIGRATE_UNMOVABLE and set(_types(high)[1:]) == {MIGRATE_MOVABLE}
    for zone in (dma, normal, high):
        for pfn in range(zone.zone_start_pfn, zone.zone_end_pfn, 1 << 10):
            assert read_pageblock_bits(mm, zone, pfn) == get_pfnblock_migratetype(zone, pfn)


def test_the_boot_frees_onto_the_lists_of_each_pageblock(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)
    dma = mm.zones[ZONE_DMA]
    # [1 MiB, 2 MiB) and [2 MiB, 4 MiB) lie in the unmovable first pageblock
    assert [a.free_list[MIGRATE_UNMOVABLE].first for a in dma.free_area[8:10]] == [0x100, 0x200]
    assert dma.free_area[10].nr_free == 3
    assert dma.free_area[10].free_list[MIGRATE_MOVABLE].first == 0x400


def test_set_pageblock_migratetype_writes_the_guest_bitmap_and_the_fast_codes(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    pfn = 0x8000
    assert mm.fast_zone[pfn] == fast_free_code(normal, MIGRATE_MOVABLE)
    set_pageblock_migratetype(mm, normal, pfn + 5, MIGRATE_RECLAIMABLE)
    assert read_pageblock_bits(mm, normal, pfn) == MIGRATE_RECLAIMABLE
    assert get_pfnblock_migratetype(normal, pfn + 1023) == MIGRATE_RECLAIMABLE
    assert get_pfnblock_migratetype(normal, pfn + 1024) == MIGRATE_MOVABLE
    code = fast_free_code(normal, MIGRATE_RECLAIMABLE)
    assert mm.fast_zone[pfn:pfn + 1024].count(code) == 1024
    # HIGHATOMIC and ISOLATE pageblocks: their frees look the pageblock up
    set_pageblock_migratetype(mm, normal, pfn, MIGRATE_HIGHATOMIC)
    assert mm.fast_zone[pfn:pfn + 1024].count(FAST_FREE_LOOKUP) == 1024
    normal.nr_reserved_highatomic = 1024                  # what reserve_highatomic_pageblock counts
    check_page_alloc(mm)


def test_set_pageblock_migratetype_keeps_closed_pages_closed(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 2)                 # an order > 0 head: checked frees only
    assert mm.fast_zone[pfn] == NO_FAST_FREE
    set_pageblock_migratetype(mm, normal, pfn, MIGRATE_MOVABLE)
    assert mm.fast_zone[pfn] == NO_FAST_FREE


def test_mobility_disabled_makes_every_pcp_type_unmovable(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    mm.page_group_by_mobility_disabled = True
    set_pageblock_migratetype(mm, normal, 0x8000, MIGRATE_MOVABLE)
    assert get_pfnblock_migratetype(normal, 0x8000) == MIGRATE_UNMOVABLE
    set_pageblock_migratetype(mm, normal, 0x8000, MIGRATE_ISOLATE)      # not a pcp type
    assert get_pfnblock_migratetype(normal, 0x8000) == MIGRATE_ISOLATE


def test_check_page_alloc_catches_a_bitmap_the_guest_changed(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    mm.u32[normal.pageblock_flags.phys >> 2] ^= 1            # pageblock 0 movable -> unmovable
    with pytest.raises(PageAllocCorruption, match="bitmap in guest memory says 0"):
        check_page_alloc(mm)


def test_check_page_alloc_catches_an_uncounted_highatomic_pageblock(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    set_pageblock_migratetype(mm, normal, 0x8000, MIGRATE_HIGHATOMIC)
    with pytest.raises(PageAllocCorruption, match="nr_reserved_highatomic 0 for 1"):
        check_page_alloc(mm)


def test_check_page_alloc_catches_a_stale_fast_code(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    mm.fast_zone[0x8000] = fast_free_code(normal, MIGRATE_UNMOVABLE)
    with pytest.raises(PageAllocCorruption, match="another zone's or migratetype's list"):
        check_page_alloc(mm)


def test_pagetypeinfo_format_and_dma_as_the_real_kernel_prints_them(mm_boot):
    # An independent source: the reference kernel's /proc/pagetypeinfo at its
    # first shell (ZONE_DMA is untouched by any boot allocation, there and here)
    real = (FIXTURES / "qemu-pc-1g" / "pagetypeinfo.txt").read_text().splitlines()
    mine = pagetypeinfo(mm_boot("qemu-pc-1g")).splitlines()
    assert mine[:4] == real[:4]                          # order, pages per block, the header
    assert [line for line in mine if "zone      DMA" in line] == \
        [line for line in real if "zone      DMA" in line]
    assert [line.split()[4:] for line in mine if ", type" not in line and "HighMem" in line][0] \
        == ["1", "36", "0", "0", "0"]                    # nothing stole from HighMem here
    heading = next(line for line in real if line.startswith("Number of blocks type"))
    assert heading in mine
