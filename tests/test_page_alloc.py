"""The buddy allocator (mm/page_alloc.py and its parts) on machines booted
without Unicorn: boot state, zone selection and fallback, watermarks and
reserves, the per-cpu lists, compound pages, bad frees in the kernel's
words, the failure report, shrinkers, and the checker on broken states."""
import pytest

from mmemu.errors import PageAllocCorruption
from mmemu.layout import PAGE_OFFSET, ZONE_DMA, ZONE_HIGHMEM, ZONE_NORMAL
from mmemu.mm import page_alloc as pa
from mmemu.mm.freelist import (
    _free_one_page, _rmqueue_smallest, del_page_from_free_list, expand, find_buddy_page_pfn,
)
from mmemu.mm.gfp import (
    __GFP_COMP, __GFP_DMA, __GFP_HIGH, __GFP_HIGHMEM, __GFP_NOWARN, __GFP_THISNODE, __GFP_ZERO,
    GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, GFP_NOWAIT,
)
from mmemu.mm.mmzone import (
    MAX_ORDER, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PAGE_MAPCOUNT_NONE, PAGE_TYPE_BUDDY, PG_dirty, PG_head,
    PG_reserved, PG_slab,
    W_MAPCOUNT, W_MAPPING, W_NEXT, W_PREV, W_PRIVATE, W_REFCOUNT,
)
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.pcp import drain_all_pages, order_to_pindex, zone_batchsize
from mmemu.mm.watermark import (
    _setup_per_zone_wmarks, calculate_min_free_kbytes, setup_per_zone_lowmem_reserve,
)
from mmemu.views.procfs import buddyinfo

NOWARN = __GFP_NOWARN


def word(mm, pfn, w):
    return mm.u32[mm.mbase + pfn * 10 + w]


def set_word(mm, pfn, w, value):
    mm.u32[mm.mbase + pfn * 10 + w] = value


def zone_of(mm, pfn):
    z = pa.page_zone(mm, pfn)
    return (z.node, z.name)


def alloc_all(mm, gfp, order, limit=1 << 20):
    """Allocate until the allocator says no; the pfns it gave."""
    got = []
    while len(got) < limit:
        pfn = pa.alloc_pages(mm, gfp | NOWARN, order)
        if pfn is None:
            return got
        got.append(pfn)
    return got


def log_since(mm, mark):
    return mm.log.text(mark)


# -- boot --------------------------------------------------------------------------

def test_free_area_init_reference_spans(mm_boot):
    mm = mm_boot("qemu-pc-1g")
    spans = [(z.name, z.zone_start_pfn, z.spanned_pages, z.present_pages)
             for z in mm.node_data[0].node_zones]
    # the reference 6.1 kernel's zoneinfo on QEMU pc, 1 GiB
    assert spans == [("DMA", 1, 4095, 3998), ("Normal", 4096, 220158, 220158),
                     ("HighMem", 224254, 37858, 37858), ("Movable", 0, 0, 0)]


def test_memmap_init_reserved_pages_and_zone_bits(mm_boot):
    from mmemu.kernel.image import KernelImage
    mm = mm_boot("pc-1g")
    image = KernelImage.from_config(mm.cfg.kernel)
    # page 0, the BIOS hole, the rest of the first MiB and the kernel image
    # (at 16 MiB; its init sections were freed) stay reserved with one reference
    for pfn in (0, 0xa0, 0xff, image.text >> 12, (image.init_begin >> 12) - 1,
                image.bss_start >> 12, (image.brk_end >> 12) - 1):
        assert word(mm, pfn, 0) & (1 << PG_reserved), hex(pfn)
        assert word(mm, pfn, W_REFCOUNT) == 1 and word(mm, pfn, W_MAPCOUNT) == PAGE_MAPCOUNT_NONE
    assert pa.page_zonenum(mm, 0x1000) == ZONE_NORMAL
    assert pa.page_zonenum(mm, mm.max_low_pfn) == ZONE_HIGHMEM
    assert pa.page_zonenum(mm, 0xfff) == ZONE_DMA
    top = mm.max_pfn - 1
    assert not word(mm, top, 0) & (1 << PG_reserved) and word(mm, top, W_REFCOUNT) == 0


def test_memblock_free_all_managed_is_present_minus_reserved(mm_boot):
    mm = mm_boot("pc-1g")
    dma, normal, high, _ = mm.node_data[0].node_zones
    # the reference kernel's /proc/zoneinfo on the same machine
    assert dma.managed_pages == 3998 - 158                  # the first MiB held
    assert high.managed_pages == high.present_pages == 37858
    assert normal.managed_pages == 213777
    for zone in (dma, normal, high):
        # the late frees (initrd, init sections) wait on the per-cpu lists
        assert zone.nr_free_pages + zone.per_cpu_pageset.count == zone.managed_pages
    accounts = check_page_alloc(mm)
    assert [a.buddy + a.pcp + a.reserved for a in accounts] == [3998, 220158, 37858]


def test_memblock_free_all_blocks_are_maximal(mm_16m):
    # DMA (to 8 MiB) after the first MiB and pc-16m's small kernel at 1 MiB (the
    # image [0x100, 0x300) and its .brk to 0x310): [0x310, 0x800) in maximal
    # aligned blocks; the init sections [0x2c0, 0x2e0), freed at the end page
    # by page, wait on the per-cpu list until it drains
    area = mm_16m.zones[ZONE_DMA].free_area
    pcp = mm_16m.zones[ZONE_DMA].per_cpu_pageset
    assert buddyinfo(mm_16m).splitlines()[0] == (
        "Node 0, zone      DMA      0      0      0      0      1      1      1      1"
        "      0      0      1 ")
    assert sorted(pcp.lists[MIGRATE_UNMOVABLE]) == list(range(0x2c0, 0x2e0))
    # the first pageblock (pfns 0-0x3ff) was never marked movable: DMA starts at pfn 1
    unmov = [a.free_list[MIGRATE_UNMOVABLE].first for a in area]
    assert (unmov[4], unmov[5], unmov[7]) == (0x310, 0x320, 0x380)
    assert area[10].free_list[MIGRATE_MOVABLE].first == 0x400
    drain_all_pages(mm_16m)
    assert buddyinfo(mm_16m).splitlines()[0] == (
        "Node 0, zone      DMA      0      0      0      0      1      2      1      1"
        "      0      0      1 ")


# -- watermarks and reserves: the reference kernel's numbers -------------------------

def _reference_managed(mm, normal):
    dma, nrm, high, _ = mm.node_data[0].node_zones
    dma.managed_pages, nrm.managed_pages, high.managed_pages = 3840, normal, 37858
    mm.min_free_kbytes = 43144      # what THP made it on the reference kernel
    _setup_per_zone_wmarks(mm)
    setup_per_zone_lowmem_reserve(mm)
    return mm.node_data[0].node_zones


def test_setup_per_zone_wmarks_reference(mm_boot):
    # The reference kernel computed its watermarks and reserves before it freed
    # its initramfs and init memory, so its final Normal managed count (213777)
    # does not reproduce them.  From 833 = N/256, 981 = (N + 37858)/256 and
    # HighMem low 506, Normal had N in [213278, 213365] then: use 213300.
    zones = _reference_managed(mm_boot("qemu-pc-1g"), 213300)
    marks = [(z.min_wmark_pages(), z.low_wmark_pages(), z.high_wmark_pages()) for z in zones]
    assert marks == [(190, 237, 284), (10595, 13243, 15891), (36, 506, 976), (32, 32, 32)]


def test_setup_per_zone_lowmem_reserve_reference(mm_boot):
    zones = _reference_managed(mm_boot("qemu-pc-1g"), 213300)
    assert [z.lowmem_reserve for z in zones[:3]] == [[0, 833, 981, 981], [0, 0, 1183, 1183],
                                                     [0, 0, 0, 0]]


def test_setup_per_zone_wmarks_final_managed_differs(mm_boot):
    # With the final managed count the formulas give what the note says.
    zones = _reference_managed(mm_boot("qemu-pc-1g"), 213777)
    assert zones[0].lowmem_reserve[1] == 835 and zones[2].low_wmark_pages() == 505


def test_calculate_min_free_kbytes_sqrt_rule(mm_boot):
    mm = mm_boot("qemu-pc-512m")
    for zone in mm.zones:
        zone._watermark[:] = [0, 0, 0, 0]
    dma, normal = mm.zones[0], mm.zones[1]
    # 512 MiB: about 125200 lowmem pages managed -> int_sqrt(500800 * 16) = 2830
    dma.managed_pages, normal.managed_pages = 3840, 125200 - 3840
    assert calculate_min_free_kbytes(mm) == 2830
    dma.managed_pages, normal.managed_pages = 100, 0
    assert calculate_min_free_kbytes(mm) == 128                 # clamped up


def test_init_per_zone_wmark_min_keeps_configured_value(mm_boot):
    mm = mm_boot("pc-16m", min_free_kbytes=1000)
    assert mm.min_free_kbytes == 1000
    assert sum(z.min_wmark_pages() for z in mm.zones if not z.is_highmem) in (249, 250)


def test_zone_batchsize_and_high_follow_6_1(mm_boot):
    mm = mm_boot("qemu-pc-1g")
    dma, normal, high, _ = mm.node_data[0].node_zones
    normal.managed_pages, high.managed_pages, dma.managed_pages = 213777, 37858, 3840
    assert [zone_batchsize(z) for z in (dma, normal, high)] == [0, 63, 7]
    pa.setup_per_zone_wmarks(mm)
    assert [z.per_cpu_pageset.batch for z in (dma, normal, high)] == [1, 63, 7]
    assert [z.per_cpu_pageset.high for z in (dma, normal, high)] == [
        z.low_wmark_pages() for z in (dma, normal, high)]


# -- zone selection and fallback ---------------------------------------------------

def test_alloc_pages_zone_by_gfp(mm_boot):
    mm = mm_boot("pc-1g")
    assert pa.page_zonenum(mm, pa.alloc_pages(mm, GFP_KERNEL, 0)) == ZONE_NORMAL
    assert pa.page_zonenum(mm, pa.alloc_pages(mm, GFP_DMA, 0)) == ZONE_DMA
    assert pa.page_zonenum(mm, pa.alloc_pages(mm, GFP_HIGHUSER, 0)) == ZONE_HIGHMEM
    assert pa.page_zonenum(mm, pa.alloc_pages(mm, GFP_KERNEL, 5)) == ZONE_NORMAL
    check_page_alloc(mm)


def test_alloc_pages_highmem_exhausted_falls_back_to_normal(mm_boot):
    mm = mm_boot("pc-1g")
    high = mm.zones[ZONE_HIGHMEM]
    got = alloc_all(mm, GFP_HIGHUSER, 10, limit=35)
    assert {pa.page_zonenum(mm, p) for p in got} == {ZONE_HIGHMEM}
    # order 10 is a THP's: its per-cpu list refills two blocks at a time, so
    # HighMem's 36th block waits there, out of NR_FREE_PAGES, and HighMem is
    # at its low watermark: the next blocks come from Normal
    assert high.per_cpu_pageset.count == 1024
    nxt = [pa.alloc_pages(mm, GFP_HIGHUSER, 10) for _ in range(3)]
    assert {pa.page_zonenum(mm, p) for p in nxt} == {ZONE_NORMAL}
    assert high.nr_free_pages < 1024 + high.low_wmark_pages() + 1024
    check_page_alloc(mm)


def test_lowmem_reserve_keeps_highmem_requests_out_of_dma(mm_boot):
    mm = mm_boot("pc-1g")
    dma = mm.zones[ZONE_DMA]
    alloc_all(mm, GFP_HIGHUSER, 10)
    alloc_all(mm, GFP_HIGHUSER, 0)
    # A request that could have used HighMem leaves DMA its reserve for HighMem.
    assert dma.nr_free_pages >= dma.min_wmark_pages() + dma.lowmem_reserve[ZONE_HIGHMEM]
    assert dma.lowmem_reserve[ZONE_HIGHMEM] > 900
    # A GFP_DMA request has no reserve to respect below its own zone.
    assert pa.page_zonenum(mm, pa.alloc_pages(mm, GFP_DMA, 0)) == ZONE_DMA
    check_page_alloc(mm)


def test_get_free_pages_never_returns_highmem(mm_boot):
    mm = mm_boot("pc-1g")
    addr = pa._get_free_pages(mm, GFP_HIGHUSER, 0)
    assert PAGE_OFFSET <= addr < PAGE_OFFSET + (mm.max_low_pfn << 12)
    alloc_all(mm, GFP_KERNEL, 10)
    alloc_all(mm, GFP_KERNEL, 0)
    high_free = mm.zones[ZONE_HIGHMEM].nr_free_pages
    assert pa._get_free_pages(mm, GFP_HIGHUSER | NOWARN, 0) == 0
    assert mm.zones[ZONE_HIGHMEM].nr_free_pages == high_free > 30000


def test_gfp_high_dips_below_min(mm_16m):
    mm = mm_16m
    normal = mm.zones[ZONE_NORMAL]
    alloc_all(mm, GFP_KERNEL, 0)
    assert normal.nr_free_pages <= normal.min_wmark_pages()
    assert pa.alloc_pages(mm, GFP_NOWAIT | NOWARN, 0) is None    # no reserve rights
    high = alloc_all(mm, GFP_KERNEL | __GFP_HIGH, 0)             # half of min
    atomic = alloc_all(mm, GFP_ATOMIC, 0)                        # 62.5% of min
    assert high and atomic
    assert normal.nr_free_pages < normal.min_wmark_pages() // 2
    check_page_alloc(mm)


def test_gfp_zero_zeroes_guest_ram(mm_boot):
    mm = mm_boot("pc-1g")
    for gfp in (GFP_KERNEL, GFP_HIGHUSER):
        pfn = pa.alloc_pages(mm, gfp, 2)
        mm.u8[pfn << 12:(pfn + 4) << 12] = b"\xaa" * (4 << 12)
        pa._free_pages(mm, pfn, 2)
        again = pa.alloc_pages(mm, gfp | __GFP_ZERO, 2)
        assert again == pfn
        assert mm.u8[pfn << 12:(pfn + 4) << 12].tobytes() == bytes(4 << 12)
    assert pa.get_zeroed_page(mm, GFP_KERNEL) >= PAGE_OFFSET


def test_prep_compound_page_layout(mm_16m):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL | __GFP_COMP, 3)
    head_ptr = mm.memmap.pfn_to_page(pfn)
    assert word(mm, pfn, 0) & (1 << PG_head) and word(mm, pfn, W_REFCOUNT) == 1
    for tail in range(pfn + 1, pfn + 8):
        assert word(mm, tail, W_NEXT) == head_ptr | 1
        assert word(mm, tail, W_REFCOUNT) == 0
    assert word(mm, pfn + 1, W_PREV) & 0xFFFF == 1 | (3 << 8)    # dtor, order
    assert pa.page_count(mm, pfn + 5) == 1
    pa._free_pages(mm, pfn, 3)
    assert not word(mm, pfn, 0) & (1 << PG_head) and word(mm, pfn + 1, W_NEXT) == 0
    check_page_alloc(mm)


def test_alloc_pages_order_too_big_warns_once(mm_16m):
    mm = mm_16m
    mark = mm.log.mark()
    assert pa.alloc_pages(mm, GFP_KERNEL, MAX_ORDER) is None
    text = log_since(mm, mark)
    assert "------------[ cut here ]------------" in text
    assert "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:5581 __alloc_pages" in text
    mark = mm.log.mark()
    assert pa.alloc_pages(mm, GFP_KERNEL, 40) is None
    assert pa.alloc_pages(mm, GFP_KERNEL, -1) is None
    assert log_since(mm, mark) == ""                            # WARN_ON_ONCE


def test_alloc_pages_order_too_big_nowarn_is_silent(mm_16m):
    mark = mm_16m.log.mark()
    assert pa.alloc_pages(mm_16m, GFP_KERNEL | NOWARN, 11) is None
    assert mm_16m.log.mark() == mark


def test_alloc_pages_dma_with_highmem_is_a_bug(mm_16m):
    mark = mm_16m.log.mark()
    assert pa.alloc_pages(mm_16m, GFP_KERNEL | __GFP_DMA | __GFP_HIGHMEM, 0) is None
    assert "kernel BUG at include/linux/gfp.h:136!" in log_since(mm_16m, mark)
    check_page_alloc(mm_16m)


def test_alloc_pages_garbage_arguments_never_raise(mm_16m):
    for gfp, order, nid in [(0xFFFFFFFF, 0, None), (0, 0, None), (GFP_KERNEL, 0, 7),
                            (GFP_KERNEL, 3, -5), (0x7FFFFFF, 2, None)]:
        pa.alloc_pages(mm_16m, gfp, order, nid)
    assert "allocation from offline node 7" in mm_16m.log.text()
    check_page_alloc(mm_16m)


# -- NUMA --------------------------------------------------------------------------

def test_alloc_pages_numa_local_node_first(mm_boot):
    mm = mm_boot("numa-2n")
    assert zone_of(mm, pa.alloc_pages(mm, GFP_KERNEL, 0)) == (0, "Normal")
    assert zone_of(mm, pa.alloc_pages(mm, GFP_KERNEL, 0, 1)) == (1, "Normal")
    # node order: the local node's zones first, even below the highest allowed
    assert zone_of(mm, pa.alloc_pages(mm, GFP_HIGHUSER, 0)) == (0, "Normal")
    assert zone_of(mm, pa.alloc_pages(mm, GFP_HIGHUSER, 0, 1)) == (1, "HighMem")
    alloc_all(mm, GFP_KERNEL | __GFP_THISNODE, 10)
    alloc_all(mm, GFP_KERNEL | __GFP_THISNODE, 0)
    # node 0 is out of Normal and DMA above their marks: node 1's Normal next
    assert zone_of(mm, pa.alloc_pages(mm, GFP_KERNEL, 0)) == (1, "Normal")
    check_page_alloc(mm)


# -- the per-cpu lists ------------------------------------------------------------

def test_rmqueue_pcplist_refills_a_batch(mm_boot):
    mm = mm_boot("pc-1g")
    normal = mm.zones[ZONE_NORMAL]
    pcp = normal.per_cpu_pageset
    free = normal.nr_free_pages
    pa.alloc_pages(mm, GFP_KERNEL, 0)
    assert len(pcp.lists[order_to_pindex(MIGRATE_UNMOVABLE, 0)]) == pcp.batch - 1 == 62
    assert normal.nr_free_pages == free - pcp.batch


def test_free_unref_page_drains_at_high(mm_boot):
    """Never pcp->high pages on the lists, and a drain leaves at least batch
    (the drain sizes, free_factor's doubling among them: test_pcp.py)."""
    mm = mm_boot("pc-1g")
    pcp = mm.zones[ZONE_NORMAL].per_cpu_pageset
    pfns = [pa.alloc_pages(mm, GFP_KERNEL, 0) for _ in range(pcp.high + 10)]
    for pfn in pfns:
        pa._free_pages(mm, pfn, 0)
        assert pcp.batch <= pcp.count < pcp.high
    drain_all_pages(mm)
    assert pcp.count == 0
    check_page_alloc(mm)


def test_pcp_high_orders_count_in_pages(mm_16m):
    pcp = mm_16m.zones[ZONE_NORMAL].per_cpu_pageset
    pfn = pa.alloc_pages(mm_16m, GFP_KERNEL, 2)
    pa._free_pages(mm_16m, pfn, 2)
    assert pfn in pcp.lists[order_to_pindex(MIGRATE_UNMOVABLE, 2)] and pcp.count >= 4
    check_page_alloc(mm_16m)


# -- the buddy core ---------------------------------------------------------------

def test_expand_and_free_one_page_merge_back(mm_16m):
    mm = mm_16m
    zone = mm.zones[ZONE_DMA]
    before = buddyinfo(mm)
    pfn = _rmqueue_smallest(mm, zone, 0, MIGRATE_UNMOVABLE)
    zone.nr_free_pages -= 1
    assert pfn == 0x310 and zone.free_area[0].free_list[MIGRATE_UNMOVABLE].first == 0x311
    assert word(mm, 0x312, W_MAPCOUNT) == PAGE_TYPE_BUDDY and word(mm, 0x312, W_PRIVATE) == 1
    set_word(mm, pfn, W_REFCOUNT, 0)
    assert _free_one_page(mm, zone, pfn, 0, MIGRATE_UNMOVABLE) == (0x310, 4)
    assert buddyinfo(mm) == before


def test_free_one_page_tail_when_buddy_of_next_order_is_free(mm_16m):
    mm = mm_16m
    zone = mm.zones[ZONE_NORMAL]
    mt = MIGRATE_MOVABLE
    pfns = [_rmqueue_smallest(mm, zone, 0, mt) for _ in range(4)]
    zone.nr_free_pages -= 4
    other = _rmqueue_smallest(mm, zone, 0, mt)    # some unrelated order-0 block
    zone.nr_free_pages -= 1
    # free pfns[2], pfns[3] -> an order-1 block whose order-1 buddy is busy;
    # then free pfns[0]: its buddy pfns[1] is busy but [2,3] (next order) is free
    base = pfns[0]
    for p in (base + 2, base + 3):
        _free_one_page(mm, zone, p, 0, mt)
    _free_one_page(mm, zone, base, 0, mt)
    assert zone.free_area[0].free_list[mt].last == base          # placed at the tail
    assert find_buddy_page_pfn(mm, base + 2, 1) is None
    del other


def test_find_buddy_page_pfn_never_crosses_zones(mm_boot):
    mm = mm_boot("pc-1g")
    boundary = mm.max_low_pfn                       # 0x36bfe: Normal | HighMem
    assert pa.page_zonenum(mm, boundary - 1) != pa.page_zonenum(mm, boundary)
    for order in range(MAX_ORDER - 1):
        for pfn in (boundary - (1 << order), boundary):
            if pfn & ((1 << order) - 1) == 0:
                buddy = find_buddy_page_pfn(mm, pfn, order)
                assert buddy is None or pa.page_zonenum(mm, buddy) == pa.page_zonenum(mm, pfn)


# -- bad frees, in the kernel's words ---------------------------------------------

def _snapshot(mm):
    return buddyinfo(mm), [z.per_cpu_pageset.count for z in mm.zones], dict(mm.alloc_orders)


def test_free_pages_double_free(mm_16m):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 0)
    pa._free_pages(mm, pfn, 0)
    state, mark = _snapshot(mm), mm.log.mark()
    pa._free_pages(mm, pfn, 0)
    text = log_since(mm, mark)
    assert f"page:{mm.memmap.pfn_to_page(pfn):08x} refcount:0 mapcount:0" in text
    assert "page dumped because: VM_BUG_ON_PAGE(page_ref_count(page) == 0)" in text
    assert "kernel BUG at include/linux/mm.h:769!" in text
    assert _snapshot(mm) == state
    check_page_alloc(mm)


def test_free_pages_of_a_buddy_page_shows_its_page_type(mm_16m):
    mm = mm_16m
    pfn = mm.zones[ZONE_DMA].free_area[10].free_list[MIGRATE_MOVABLE].first
    mark = mm.log.mark()
    pa._free_pages(mm, pfn, 10)
    assert "refcount:0 mapcount:-128" in log_since(mm, mark)
    check_page_alloc(mm)


class _GuestCall:
    """A guest call being served, as the runtime describes it to the reporter."""

    def __init__(self, caller):
        self.caller = caller

    def in_guest(self):
        return True

    def guest_caller(self):
        return self.caller

    def backtrace(self):
        return []

    def regs(self):
        return None


def test_free_pages_reserved_page(mm_16m):
    mm = mm_16m
    mm.reporter.comm = "guestprog"
    mm.reporter.guest = _GuestCall("main+0x1c/0x80")
    state, mark = _snapshot(mm), mm.log.mark()
    pa._free_pages(mm, 0x100, 0)
    text = log_since(mm, mark)
    assert text.splitlines()[0] == "BUG: Bad page state in process guestprog  pfn:00100"
    assert "flags: 0x1000(reserved|zone=0)" in text
    assert "page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set" in text
    assert "Call Trace:\n main+0x1c/0x80" in text
    assert "Disabling lock debugging due to kernel taint" in text
    assert _snapshot(mm) == state and word(mm, 0x100, W_REFCOUNT) == 1
    check_page_alloc(mm)


def test_free_pages_outside_ram(mm_16m):
    mm = mm_16m
    for pfn in (mm.max_pfn, 1 << 30, -1):
        mark = mm.log.mark()
        pa._free_pages(mm, pfn, 0)
        text = log_since(mm, mark)
        assert "BUG: Bad page state in process mmemu" in text
        assert "page dumped because: pfn outside mem_map" in text
    check_page_alloc(mm)


def test_free_pages_wrong_order_of_a_compound_page(mm_16m):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL | __GFP_COMP, 2)
    state, mark = _snapshot(mm), mm.log.mark()
    pa._free_pages(mm, pfn, 1)
    text = log_since(mm, mark)
    assert "head:" in text and "order:2" in text
    assert "VM_BUG_ON_PAGE(compound && compound_order(page) != order)" in text
    assert _snapshot(mm) == state
    pa._free_pages(mm, pfn, 2)
    check_page_alloc(mm)


@pytest.mark.parametrize("alloc_order, free_order", [(0, 2), (2, 0), (3, 1)])
def test_free_pages_wrong_order(mm_16m, alloc_order, free_order):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL, alloc_order)
    state, mark = _snapshot(mm), mm.log.mark()
    pa._free_pages(mm, pfn, free_order)
    assert (f"page dumped because: freed with order {free_order}, allocated with order "
            f"{alloc_order}") in log_since(mm, mark)
    assert _snapshot(mm) == state
    check_page_alloc(mm)
    pa._free_pages(mm, pfn, alloc_order)
    check_page_alloc(mm)


def test_free_pages_tail_of_an_allocation(mm_16m):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 2)
    mark = mm.log.mark()
    pa._free_pages(mm, pfn + 1, 0)
    assert "VM_BUG_ON_PAGE(page_ref_count(page) == 0)" in log_since(mm, mark)
    check_page_alloc(mm)


BAD_STATES = [
    (W_MAPCOUNT, 0, "nonzero mapcount"),
    (W_MAPCOUNT, 0xFFFFFDFF, "nonzero mapcount"),      # still PageTable
    (W_MAPPING, 0xC1000000, "non-NULL mapping"),
    (0, 1 << PG_slab, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"),
]


def _spoil(mm, pfn, field, value):
    old = word(mm, pfn, field)
    set_word(mm, pfn, field, old | value if field == 0 else value)
    return old


@pytest.mark.parametrize("field, value, reason", BAD_STATES)
def test_free_pages_page_bad_reason_debug_vm(mm_boot, field, value, reason):
    # CONFIG_DEBUG_VM checks every page at free time: the free is refused.
    mm = mm_boot("pc-16m", debug_vm=True)
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 0)
    old = _spoil(mm, pfn, field, value)
    mark = mm.log.mark()
    pa._free_pages(mm, pfn, 0)
    assert f"page dumped because: {reason}" in log_since(mm, mark)
    assert word(mm, pfn, W_REFCOUNT) == 1             # refused: still allocated
    check_page_alloc(mm)
    set_word(mm, pfn, field, old)
    pa._free_pages(mm, pfn, 0)
    check_page_alloc(mm)


@pytest.mark.parametrize("field, value, reason", BAD_STATES)
def test_free_pages_page_bad_reason_when_the_pcp_list_drains(mm_16m, field, value, reason):
    # Without CONFIG_DEBUG_VM 6.1 checks an order-0 page freed to the pcp
    # list when the list drains (bulkfree_pcp_prepare), and leaks a bad one
    # (free_pcppages_bulk()'s "continue"): so does mmemu, keeping it in
    # mm.leaked so the checker still accounts for it.
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 0)
    _spoil(mm, pfn, field, value)
    mark = mm.log.mark()
    pa._free_pages(mm, pfn, 0)
    assert mm.log.mark() == mark
    check_page_alloc(mm)
    drain_all_pages(mm)
    assert f"page dumped because: {reason}" in log_since(mm, mark)
    assert mm.leaked == {pfn: 0} and word(mm, pfn, field) & value == value   # lost as it was
    accounts = check_page_alloc(mm)
    assert sum(a.leaked for a in accounts) == 1
    assert all(a.buddy + a.pcp + a.allocated + a.reserved + a.leaked == a.present
               for a in accounts)


def test_free_pages_bad_tail(mm_16m):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 2)
    set_word(mm, pfn + 3, W_REFCOUNT, 1)
    mark = mm.log.mark()
    pa._free_pages(mm, pfn, 2)
    text = log_since(mm, mark)
    assert f"pfn:{pfn + 3:05x}" in text and "nonzero _refcount" in text
    set_word(mm, pfn + 3, W_REFCOUNT, 0)
    pa._free_pages(mm, pfn, 2)
    check_page_alloc(mm)


def test_free_pages_order_out_of_range(mm_16m):
    pfn = pa.alloc_pages(mm_16m, GFP_KERNEL, 0)
    mark = mm_16m.log.mark()
    pa._free_pages(mm_16m, pfn, 11)
    assert "order 11 out of range" in log_since(mm_16m, mark)
    check_page_alloc(mm_16m)


@pytest.mark.parametrize("debug_vm", [False, True])
def test_free_pages_benign_flags_are_cleared(mm_boot, debug_vm):
    mm = mm_boot("pc-16m", debug_vm=debug_vm)
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 0)
    set_word(mm, pfn, 0, word(mm, pfn, 0) | (1 << PG_dirty))
    mark = mm.log.mark()
    pa._free_pages(mm, pfn, 0)
    drain_all_pages(mm)                    # without debug_vm: cleared on the way back
    assert mm.log.mark() == mark and not word(mm, pfn, 0) & (1 << PG_dirty)
    check_page_alloc(mm)


def test_free_pages_with_another_reference_drops_only_ours(mm_16m):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 2)
    set_word(mm, pfn, W_REFCOUNT, 2)                  # get_page()
    pa._free_pages(mm, pfn, 2)
    # 6.1 frees the tails of a non-compound block at once; the head lives on
    assert pa.page_count(mm, pfn) == 1 and pfn not in mm.alloc_orders
    check_page_alloc(mm)
    pa._free_pages(mm, pfn, 0)
    check_page_alloc(mm)


def test_free_pages_by_address(mm_16m):
    mm = mm_16m
    addr = pa._get_free_pages(mm, GFP_KERNEL, 1)
    assert pa.virt_to_page(mm, addr) == (addr - PAGE_OFFSET) >> 12
    pa.free_pages(mm, addr, 1)
    pa.free_pages(mm, 0, 3)                          # NULL: nothing
    mark = mm.log.mark()
    pa.free_pages(mm, 0x1000, 0)                      # not a direct-map address
    assert "kernel BUG at mm/page_alloc.c:5704!" in log_since(mm, mark)
    check_page_alloc(mm)


def test_page_address_lowmem_and_highmem_hook(mm_boot):
    mm = mm_boot("pc-1g")
    low = pa.alloc_pages(mm, GFP_KERNEL, 0)
    high = pa.alloc_pages(mm, GFP_HIGHUSER, 0)
    assert pa.page_address(mm, low) == PAGE_OFFSET + (low << 12)
    assert pa.page_address(mm, high) is None and pa.PageHighMem(mm, high)
    mm.page_address_highmem = lambda pfn: 0xFFA00000 if pfn == high else None
    assert pa.page_address(mm, high) == 0xFFA00000
    assert pa.page_address(mm, mm.max_pfn) is None


# -- the failure report and reclaim ------------------------------------------------

def test_warn_alloc_report(mm_16m):
    mm = mm_16m
    mm.reporter.comm = "hog"
    alloc_all(mm, GFP_ATOMIC, 0)
    mark = mm.log.mark()
    assert pa.alloc_pages(mm, GFP_ATOMIC, 0) is None
    lines = log_since(mm, mark).splitlines()
    assert lines[0] == ("hog: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), "
                        "nodemask=(null),cpuset=/,mems_allowed=0")
    assert "Mem-Info:" in lines
    dma = next(ln for ln in lines if ln.startswith("DMA free:"))
    assert " min:" in dma and " managed:5184kB " in dma
    assert any(ln.startswith("Normal: ") and ln.endswith("kB") for ln in lines)
    assert "lowmem_reserve[]: 0 7 7 7" in lines
    assert lines[-1].endswith("pages reserved")


def test_warn_alloc_silent_with_nowarn(mm_16m):
    alloc_all(mm_16m, GFP_ATOMIC, 0)
    mark = mm_16m.log.mark()
    assert pa.alloc_pages(mm_16m, GFP_ATOMIC | NOWARN, 0) is None
    assert mm_16m.log.mark() == mark


def test_register_shrinker_called_then_retry(mm_16m):
    mm = mm_16m
    held = alloc_all(mm, GFP_KERNEL, 0)
    calls = []

    def shrink():
        calls.append(1)
        for pfn in held[:100]:
            pa._free_pages(mm, pfn, 0)
        del held[:100]
        return 100

    pa.register_shrinker(mm, shrink)
    assert pa.alloc_pages(mm, GFP_KERNEL, 0) is not None
    assert len(calls) == 1
    pa.unregister_shrinker(mm, shrink)
    check_page_alloc(mm)


def test_shrinker_only_for_direct_reclaim(mm_16m):
    mm = mm_16m
    alloc_all(mm, GFP_KERNEL, 0)
    calls = []
    pa.register_shrinker(mm, lambda: calls.append(1) or 0)
    assert pa.alloc_pages(mm, GFP_NOWAIT | NOWARN, 0) is None
    assert calls == []
    assert pa.alloc_pages(mm, GFP_KERNEL | NOWARN, 0) is None
    assert calls == [1]                                # called once, retried once, failed


# -- the checker on broken states ---------------------------------------------------

def test_check_page_alloc_passes_after_boot(mm_boot):
    for name in ("pc-16m", "numa-2n", "pc-1g-movable", "pc-4g"):
        accounts = check_page_alloc(mm_boot(name))
        assert all(a.buddy + a.pcp + a.allocated + a.reserved == a.present for a in accounts)


def test_check_page_alloc_catches_broken_link(mm_16m):
    pfn = mm_16m.zones[ZONE_DMA].free_area[10].free_list[MIGRATE_MOVABLE].first
    set_word(mm_16m, pfn, W_NEXT, mm_16m.memmap.pfn_to_page(pfn + 1))
    with pytest.raises(PageAllocCorruption, match="DMA"):
        check_page_alloc(mm_16m)


def test_check_page_alloc_catches_lost_buddy_flag(mm_16m):
    pfn = mm_16m.zones[ZONE_DMA].free_area[10].free_list[MIGRATE_MOVABLE].first
    set_word(mm_16m, pfn, W_MAPCOUNT, PAGE_MAPCOUNT_NONE)
    with pytest.raises(PageAllocCorruption, match="lacks PageBuddy"):
        check_page_alloc(mm_16m)


def test_check_page_alloc_catches_nr_free_mismatch(mm_16m):
    mm_16m.zones[ZONE_DMA].free_area[8].nr_free += 1
    with pytest.raises(PageAllocCorruption, match="nr_free"):
        check_page_alloc(mm_16m)


def test_check_page_alloc_catches_lost_page(mm_16m):
    pfn = pa.alloc_pages(mm_16m, GFP_KERNEL, 0)
    set_word(mm_16m, pfn, W_REFCOUNT, 0)              # nobody owns it now
    with pytest.raises(PageAllocCorruption, match="neither free"):
        check_page_alloc(mm_16m)


def test_check_page_alloc_catches_double_listing(mm_16m):
    mm = mm_16m
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 0)
    pa._free_pages(mm, pfn, 0)
    mm.zones[ZONE_NORMAL].per_cpu_pageset.lists[MIGRATE_UNMOVABLE].append(pfn)   # listed twice
    with pytest.raises(PageAllocCorruption, match="overlaps"):
        check_page_alloc(mm)


def test_check_page_alloc_catches_misaligned_block(mm_16m):
    mm = mm_16m
    zone = mm.zones[ZONE_DMA]
    mt = MIGRATE_MOVABLE
    pfn = zone.free_area[10].free_list[mt].first
    del_page_from_free_list(mm, zone, pfn, 10)
    expand(mm, zone, pfn, 0, 10, mt)                # halves 512..1 go back
    from mmemu.mm.freelist import add_to_free_list, set_buddy_order
    add_to_free_list(mm, zone, pfn + 1, 1, mt)       # not aligned to order 1
    set_buddy_order(mm, pfn + 1, 1)
    with pytest.raises(PageAllocCorruption):
        check_page_alloc(mm)


def _pcp_lengths_while_freeing(mm, count):
    """Allocate count order-0 Normal pages, free them one by one: the order-0
    pcp list's length after each free."""
    zone = mm.zones[ZONE_NORMAL]
    drain_all_pages(mm)
    pfns = [pa.alloc_pages(mm, GFP_KERNEL, 0) for _ in range(count)]
    lengths = []
    for pfn in pfns:
        pa._free_pages(mm, pfn, 0)
        lengths.append(len(zone.per_cpu_pageset.lists[0]))
    return lengths


def test_fast_and_checked_frees_commit_to_the_pcp_list_alike(mm_boot):
    # The fast path (no debug_vm) and the checked path (debug_vm checks every
    # free) end in the same free_unref_page_commit(): the list grows to
    # pcp->high, then a batch drains, at the same frees.
    fast, checked = mm_boot("pc-128m"), mm_boot("pc-128m", debug_vm=True)
    pcp = fast.zones[ZONE_NORMAL].per_cpu_pageset
    count = pcp.high + 3 * pcp.batch
    lengths = _pcp_lengths_while_freeing(fast, count)
    assert lengths == _pcp_lengths_while_freeing(checked, count)
    before = next(i for i, (a, b) in enumerate(zip(lengths, lengths[1:])) if b < a)
    # The free that brings pcp->count to pcp->high drains a batch at once.
    assert (lengths[before], lengths[before + 1]) == (pcp.high - 1, pcp.high - pcp.batch)
    check_page_alloc(fast)
    check_page_alloc(checked)
# -- alloc_pages_exact, split_page, get_order ------------------------------------------

def test_get_order_as_getorder_h():
    assert [pa.get_order(n) for n in (1, 4096, 4097, 8192, 8193, 1 << 20, 4 << 20)] == \
        [0, 0, 1, 1, 2, 8, 10]
    assert pa.get_order(0) == 20                 # undefined in Linux; (0 - 1) >> 12 on 32 bits


def test_alloc_pages_exact_frees_the_tail(mm_16m):
    mm = mm_16m
    zone = mm.node_data[0].node_zones[ZONE_NORMAL]
    addr = pa.alloc_pages_exact(mm, 5 * 4096, GFP_KERNEL)
    pfn = (addr - PAGE_OFFSET) >> 12
    assert pfn % 8 == 0 and pa.page_zone(mm, pfn) is zone
    assert [pa.page_count(mm, p) for p in range(pfn, pfn + 8)] == [1] * 5 + [0] * 3
    assert pfn not in mm.alloc_orders                       # five order-0 pages now
    # The three tail pages went to the buddy lists (to the tail): pfn+5, and pfn+6..7 merged.
    assert (word(mm, pfn + 5, W_MAPCOUNT), word(mm, pfn + 5, W_PRIVATE)) == (PAGE_TYPE_BUDDY, 0)
    assert (word(mm, pfn + 6, W_MAPCOUNT), word(mm, pfn + 6, W_PRIVATE)) == (PAGE_TYPE_BUDDY, 1)
    check_page_alloc(mm)
    free_before = zone.nr_free_pages
    for p in range(pfn, pfn + 5):                            # free_pages_exact(): page by page
        pa.free_pages(mm, PAGE_OFFSET + (p << 12), 0)
    drain_all_pages(mm)
    assert zone.nr_free_pages == free_before + 5
    assert [pa.page_count(mm, p) for p in range(pfn, pfn + 8)] == [0] * 8
    check_page_alloc(mm)


def test_alloc_pages_exact_masks_comp_and_highmem():
    from mmemu.init.main import boot_mm
    mm = boot_mm("pc-1g")
    addr = pa.alloc_pages_exact(mm, 3 * 4096, GFP_HIGHUSER | __GFP_COMP)
    pfn = (addr - PAGE_OFFSET) >> 12
    assert not pa.PageHighMem(mm, pfn) and not word(mm, pfn, 0) & (1 << PG_head)
    assert pa.alloc_pages_exact(mm, 8 << 20, GFP_KERNEL | NOWARN) == 0   # order 11
    check_page_alloc(mm)
