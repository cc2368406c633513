"""SLUB on a bytearray: geometry, kmalloc, debugging reports, reclaim, checker.

The slab allocator runs here over a PhysMem backed by a bytearray and a
brute-force page allocator (FakePages: a set of free pfns, compound pages set
up as prep_compound_page() does), so these tests need neither Unicorn nor the
real buddy allocator.  tests/test_slab_guest.py runs the same code on a
booted Machine from guest programs.
"""
import re

import pytest

from mmemu.errors import SlabCorruptionError
from mmemu.kernel import panic
from mmemu.log import KernelLog
from mmemu.mm.gfp import (
    GFP_KERNEL, _GFP_COMP, _GFP_DIRECT_RECLAIM, _GFP_DMA, _GFP_HIGHMEM, _GFP_NOWARN,
    _GFP_RECLAIMABLE, _GFP_ZERO,
)
from mmemu.mm.mmzone import (
    MemMap, PG_head, PG_slab, W_FLAGS, W_MAPPING, W_NEXT, W_PREV, W_REFCOUNT,
)
from mmemu.mm.slab import (
    KMC_CPU_DATA, KMC_OBJECT_SIZE, KMC_OFFSET, KMC_SIZE, SLAB_HWCACHE_ALIGN, SLAB_PANIC,
    SLAB_POISON, SLAB_RECLAIM_ACCOUNT, SLAB_RED_ZONE, SLAB_STORE_USER, ZERO_SIZE_PTR,
)
from mmemu.mm.slab_common import SlabAllocator, kmalloc_index
from mmemu.mm.slub import calculate_order
from mmemu.mm.slub_debug import check_slab_caches, parse_slub_debug
from mmemu.physmem import bytearray_physmem
from mmemu.views.slabinfo import HEADER, cache_show

pytestmark = pytest.mark.flavours

GEOMETRY = """kmalloc-8 8 512 1, kmalloc-16 16 256 1, kmalloc-32 32 128 1,
kmalloc-64 64 64 1, kmalloc-96 96 42 1, kmalloc-128 128 32 1, kmalloc-192 192 21 1,
kmalloc-256 256 16 1, kmalloc-512 512 8 1, kmalloc-1k 1024 8 2, kmalloc-2k 2048 8 4,
kmalloc-4k 4096 8 8, kmalloc-8k 8192 4 8"""


class FakePages:
    """A brute-force page allocator: free pfns in a set, compound pages like
    prep_compound_page(), shrinkers run for __GFP_DIRECT_RECLAIM."""

    def __init__(self, pm, mem_map, lo, hi):
        self.pm, self.mem_map, self.lo, self.hi = pm, mem_map, lo, hi
        self.free_pfns = set(range(lo, hi))
        self.used = {}
        self.shrinkers = []

    def _find(self, order):
        n = 1 << order
        for start in range((self.lo + n - 1) & ~(n - 1), self.hi - n + 1, n):
            if all(p in self.free_pfns for p in range(start, start + n)):
                return start
        return None

    def alloc(self, gfp, order):
        start = self._find(order)
        if start is None and gfp & _GFP_DIRECT_RECLAIM:
            for fn in self.shrinkers:
                fn()
            start = self._find(order)
        if start is None:
            return None
        n, u, w = 1 << order, self.pm.u32, self.mem_map.page_word
        self.free_pfns.difference_update(range(start, start + n))
        u[w(start, W_REFCOUNT)] = 1
        if gfp & _GFP_COMP and order:
            u[w(start, W_FLAGS)] |= 1 << PG_head
            u[w(start + 1, W_PREV)] = (order << 8) | 1
            for p in range(start + 1, start + n):
                u[w(p, W_NEXT)] = self.mem_map.pfn_to_page(start) | 1
        if gfp & _GFP_ZERO:
            self.pm.u8[start << 12:(start + n) << 12] = bytes(n << 12)
        self.used[start] = order
        return start

    def free(self, pfn, order):
        assert self.used.pop(pfn) == order, "freed with the wrong order"
        u, w = self.pm.u32, self.mem_map.page_word
        assert not u[w(pfn, W_FLAGS)] & (1 << PG_slab), "a slab page freed with PG_slab"
        assert u[w(pfn, W_MAPPING)] == 0, "a page freed with a mapping"
        u[w(pfn, W_FLAGS)] &= ~(1 << PG_head)
        for p in range(pfn, pfn + (1 << order)):
            for word in (W_NEXT, W_PREV, W_REFCOUNT):
                u[w(p, word)] = 0
            self.free_pfns.add(p)

    def register_shrinker(self, fn):
        self.shrinkers.append(fn)


class Reporter(panic.Reporter):
    """The kernel's reporter on a quiet log, keeping every report."""

    def __init__(self):
        super().__init__(KernelLog(echo=False))
        self.comm = "pytest"
        self.reports = []
        self.on_report = self.reports.append


def make(slub_debug=None, mb=16):
    pm = bytearray_physmem(mb << 20)
    npages = (mb << 20) >> 12
    mem_map = MemMap(phys=0x10000, nr_pages=npages)
    first = (0x10000 + npages * 40 + 4095) >> 12
    pages = FakePages(pm, mem_map, first, npages)
    rep = Reporter()
    sl = SlabAllocator(pm, mem_map, pages, rep, slub_debug=slub_debug)
    sl.debug.jiffies = lambda: 0                  # every track is dated now: age=0
    return sl, pages, rep


@pytest.fixture
def sl():
    return make()[0]


def caller():
    return "main+0x10/0x40"


# -- geometry -----------------------------------------------------------------

def test_kmalloc_geometry_matches_reference(sl):
    want = [tuple(x.split()) for x in GEOMETRY.replace("\n", " ").split(",")]
    for prefix in ("", "dma-", "kmalloc-rcl-", "kmalloc-cg-"):
        for name, objsize, perslab, pages in want:
            full = prefix + name if prefix != "kmalloc-rcl-" and prefix != "kmalloc-cg-" \
                else prefix + name[len("kmalloc-"):]
            info = sl.get_slabinfo(sl.find_cache(full))
            assert (info.objsize, info.objperslab, info.pagesperslab) == \
                (int(objsize), int(perslab), int(pages)), full


def test_calculate_order_prefers_small_waste():
    assert calculate_order(96) == 0 and calculate_order(1024) == 1
    assert calculate_order(8192) == 3


def test_kmalloc_index_size_classes():
    assert [kmalloc_index(n) for n in (1, 8, 9, 65, 96, 97, 129, 193, 8192)] == \
        [3, 3, 4, 1, 1, 7, 2, 8, 13]


def test_calculate_sizes_debug_layout():
    sl, _, _ = make("FZPU,kmalloc-64")
    s = sl.find_cache("kmalloc-64")
    # 64 + 4 right red zone, free pointer after it, 2 tracks, 4 pad, 64 left red zone.
    assert (s.inuse, s.offset, s.red_left_pad, s.size, s.objects) == (68, 68, 64, 192, 21)
    assert sl.find_cache("kmalloc-32").size == 32


def test_free_pointer_mid_object_without_ctor(sl):
    s = sl.kmem_cache_create("plain", 40)
    assert s.offset == 20 and s.size == 40
    t = sl.kmem_cache_create("withctor", 40, ctor=lambda addr: None)
    assert t.offset == 40 and t.size == 48


def test_kmem_cache_struct_in_guest_memory(sl):
    s = sl.kmem_cache_create("mirror", 100, 0, SLAB_HWCACHE_ALIGN)
    rd = sl.slub.rd
    assert rd(s.addr) == s.addr + KMC_CPU_DATA
    assert (rd(s.addr + KMC_SIZE), rd(s.addr + KMC_OBJECT_SIZE), rd(s.addr + KMC_OFFSET)) == \
        (128, 100, 48)
    assert sl.get_slabinfo(sl.kmem_cache).num_objs >= len(sl.caches)


# -- kmalloc --------------------------------------------------------------------

def test_kmalloc_zero_and_ksize(sl):
    assert sl.kmalloc(0) == ZERO_SIZE_PTR
    sl.kfree(ZERO_SIZE_PTR)
    sl.kfree(0)
    p = sl.kmalloc(65)
    assert sl.ksize(p) == 96
    sl.kfree(p)
    check_slab_caches(sl)


def test_kzalloc_zeroes_whole_object(sl):
    p = sl.kmalloc(64)
    sl.slub.fill(p, 64, 0xAA)
    sl.kfree(p)
    q = sl.kzalloc(50)
    assert q == p and sl.slub.read_bytes(q, 64) == bytes(64)


def test_kcalloc_overflow_returns_null(sl):
    assert sl.kcalloc(0x10000, 0x10001) is None
    p = sl.kcalloc(4, 8)
    assert sl.slub.read_bytes(p, 32) == bytes(32)


def test_krealloc_keeps_contents_and_shrinks_in_place(sl):
    p = sl.kmalloc(100)
    sl.slub.fill(p, 100, 0x5C)
    assert sl.krealloc(p, 120) == p          # still fits in kmalloc-128
    q = sl.krealloc(p, 300)
    assert q != p and sl.slub.read_bytes(q, 100) == b"\x5c" * 100
    assert sl.krealloc(q, 10) == q
    assert sl.krealloc(q, 0) == ZERO_SIZE_PTR
    check_slab_caches(sl)


def test_kmalloc_large_is_compound_and_freed(sl):
    _, pages, _ = make()
    sl, pages, _ = make()
    before = len(pages.free_pfns)
    p = sl.kmalloc(9000)
    pfn = (p - 0xC0000000) >> 12
    assert pages.used[pfn] == 2 and sl.ksize(p) == 16384
    assert sl.meminfo()["SUnreclaim"] >= 16
    sl.kfree(p + 100)                        # any pointer into the block frees it
    assert len(pages.free_pfns) == before


def test_kmalloc_above_max_warns_unless_nowarn():
    sl, _, rep = make()
    assert sl.kmalloc((4 << 20) + 1) is None
    assert "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c" in rep.reports[-1]
    rep.reports.clear()
    assert sl.kmalloc((4 << 20) + 1, GFP_KERNEL | _GFP_NOWARN) is None
    assert rep.reports == []


def test_kmalloc_gfp_selects_cache_type(sl):
    p = sl.kmalloc(64, GFP_KERNEL | _GFP_DMA)
    q = sl.kmalloc(64, GFP_KERNEL | _GFP_RECLAIMABLE)
    assert sl.get_slabinfo(sl.find_cache("dma-kmalloc-64")).num_slabs == 1
    assert sl.find_cache("kmalloc-rcl-64").node.nr_slabs == 1
    assert sl.meminfo()["SReclaimable"] == 4
    sl.kfree(p), sl.kfree(q)


def test_kmalloc_highmem_is_fixed_up_with_warning():
    sl, _, rep = make()
    p = sl.kmalloc(8192, GFP_KERNEL | _GFP_HIGHMEM)
    assert p
    assert rep.reports[-1].startswith(
        "Unexpected gfp: 0x2 (__GFP_HIGHMEM). Fixing up to gfp: 0xcc0 (GFP_KERNEL). Fix your code!")


# -- kmem_cache -----------------------------------------------------------------

def test_ctor_runs_for_every_object_of_a_new_slab(sl):
    seen = []
    s = sl.kmem_cache_create("ctor", 24, ctor=seen.append)
    obj = sl.kmem_cache_alloc(s)
    assert len(seen) == s.objects and obj in seen


def test_guest_ctor_is_reported_as_pending(sl):
    s = sl.kmem_cache_create("gctor", 24, ctor=0xC0101234)
    sl.slab_alloc(s, GFP_KERNEL, caller)
    assert sl.slub.pending_ctor == sl.slub.slab_address(next(iter(s.node.slabs)))


def test_kmem_cache_destroy_busy_warns_and_keeps_objects():
    sl, _, rep = make("U")
    s = sl.kmem_cache_create("busy", 100)
    obj = sl.kmem_cache_alloc(s, caller=caller)
    sl.kmem_cache_destroy(s, caller=caller)
    bug, warn = rep.reports[-2:]
    assert "BUG busy (Not tainted): Objects remaining in busy on __kmem_cache_shutdown()" in bug
    assert f"Object 0x{obj:08x} @offset=0" in bug and "Allocated in main+0x10/0x40" in bug
    assert warn.splitlines()[1] == ("kmem_cache_destroy busy: Slab cache still has objects "
                                    "when called from main+0x10/0x40")
    assert sl.find_cache("busy") is s
    check_slab_caches(sl)


def test_kmem_cache_destroy_frees_everything():
    sl, pages, _ = make()
    before = len(pages.free_pfns)
    s = sl.kmem_cache_create("tmp", 700, 0, SLAB_RECLAIM_ACCOUNT)
    objs = [sl.kmem_cache_alloc(s) for _ in range(30)]
    for o in objs:
        sl.kmem_cache_free(s, o)
    sl.kmem_cache_destroy(s)
    assert sl.find_cache("tmp") is None
    assert len(pages.free_pfns) >= before - 1     # the kmem_cache slab may stay
    check_slab_caches(sl)


def test_kmem_cache_shrink_frees_empty_slabs(sl):
    s = sl.kmem_cache_create("shrinkme", 512)
    objs = [sl.kmem_cache_alloc(s) for _ in range(80)]
    for o in objs:
        sl.kmem_cache_free(s, o)
    assert s.node.nr_slabs >= s.min_partial     # empty slabs kept for reuse
    assert sl.kmem_cache_shrink(s) == 0 and s.node.nr_slabs == 0


def test_shrinker_gives_empty_slabs_back_under_pressure():
    sl, pages, _ = make(mb=1)
    s = sl.kmem_cache_create("hog", 2048)
    objs = [sl.kmem_cache_alloc(s) for _ in range(40)]
    for o in objs:
        sl.kmem_cache_free(s, o)
    kept = s.node.nr_slabs
    assert kept == s.min_partial                 # empty slabs kept for reuse
    while pages.alloc(GFP_KERNEL & ~_GFP_DIRECT_RECLAIM, 0) is not None:
        pass                                     # only the empty slabs hold memory now
    assert pages.alloc(GFP_KERNEL, 0) is not None     # the shrinker made room
    assert list(s.node.slabs) == [sl.slub.cpu_slab_pfn(s)]    # only the cpu slab stays
    check_slab_caches(sl)


def test_kmem_cache_create_failure_panics_with_slab_panic():
    sl, _, rep = make()
    assert sl.kmem_cache_create("huge", (4 << 20) + 8, 0, SLAB_PANIC) is None
    assert "Failed to create slab 'huge'. Error -22" in rep.reports[-1]


def test_kmem_cache_free_wrong_cache_warns(sl):
    a = sl.kmem_cache_create("a", 64)
    obj = sl.kmalloc(64)
    rep = sl.rep
    sl.kmem_cache_free(a, obj)
    assert "cache_from_obj: Wrong slab cache. a but object is from kmalloc-64" in rep.reports[-1]
    check_slab_caches(sl)


# -- bugs and their reports -------------------------------------------------------

def reports_of(fn, slub_debug="FZPU"):
    sl, _, rep = make(slub_debug)
    fn(sl)
    return sl, rep.reports


def test_double_free_reported_as_object_already_free():
    def bug(sl):
        p = sl.kmalloc(64, caller=caller)
        sl.kfree(p, caller=caller)
        sl.kfree(p, caller=caller)
    sl, reports = reports_of(bug)
    lines = reports[-1].splitlines()
    assert lines[:3] == ["=" * 77, "BUG kmalloc-64 (Not tainted): Object already free", "-" * 77]
    assert re.match(r"Slab 0x[0-9a-f]{8} objects=21 used=0 fp=0x[0-9a-f]{8} "
                    r"flags=0x[0-9a-f]+\(slab\|zone=0\)", lines[6])
    assert lines[4] == "Allocated in main+0x10/0x40 age=0 cpu=0 pid=1"
    assert re.match(r"Object 0x[0-9a-f]{8} @offset=64 fp=0x[0-9a-f]{8}$", lines[7])
    assert lines[9].startswith("Redzone  ") and " bb bb " in lines[9]
    assert any(ln.startswith("Object   ") and ln.endswith("kkkkkkkkkkkkkkkk") for ln in lines)
    assert lines[-1].startswith("FIX kmalloc-64: Object at 0x") and lines[-1].endswith(" not freed")
    check_slab_caches(sl)


def test_redzone_overwrite_reported_and_restored():
    def bug(sl):
        p = sl.kmalloc(64, caller=caller)
        sl.slub.fill(p + 64, 2, 0x41)
        sl.kfree(p, caller=caller)
    sl, reports = reports_of(bug)
    text = reports[-1]
    assert "BUG kmalloc-64 (Not tainted): Right Redzone overwritten" in text
    assert re.search(r"0x([0-9a-f]{8})-0x[0-9a-f]{8} @offset=128\. First byte 0x41 instead of 0xcc", text)
    assert re.search(r"FIX kmalloc-64: Restoring Right Redzone 0x[0-9a-f]{8}-0x[0-9a-f]{8}=0xcc", text)
    check_slab_caches(sl)


def test_use_after_free_detected_at_next_alloc_and_validate():
    def bug(sl):
        p = sl.kmalloc(64, caller=caller)
        sl.kfree(p, caller=caller)
        sl.slub.fill(p + 8, 1, 0x00)
        assert sl.kmem_cache_validate(sl.find_cache("kmalloc-64")) == 1
        sl.slub.fill(p + 8, 1, 0x00)
        sl.kmalloc(64, caller=caller)
    sl, reports = reports_of(bug)
    assert all("Poison overwritten" in r for r in reports)
    assert "First byte 0x0 instead of 0x6b" in reports[-1]
    assert "FIX kmalloc-64: Marking all objects used" in reports[-1]
    check_slab_caches(sl)


def test_invalid_pointer_reported():
    def bug(sl):
        p = sl.kmalloc(64, caller=caller)
        sl.kfree(p + 4, caller=caller)
    _, reports = reports_of(bug)
    assert re.search(r"BUG kmalloc-64 \(Not tainted\): Invalid object pointer 0x[0-9a-f]{8}",
                     reports[-1])


def test_non_slab_pointer_reported_by_free_large_kmalloc():
    sl, pages, rep = make()
    pfn = pages.alloc(GFP_KERNEL, 0)
    sl.kfree(0xC0000000 + (pfn << 12))
    text = rep.reports[-1]
    assert "WARNING: CPU: 0 PID: 1 at mm/slab_common.c" in text and "free_large_kmalloc" in text
    assert f"object pointer: 0x{0xC0000000 + (pfn << 12):08x}" in text
    assert pfn in pages.used


def test_naive_double_free_without_debugging():
    sl, _, rep = make()
    p = sl.kmalloc(64)
    sl.kfree(p)
    sl.kfree(p)
    assert "kernel BUG at mm/slub.c:" in rep.reports[-1]
    assert "naive detection of double free or corruption" in rep.reports[-1]
    check_slab_caches(sl)
    assert sl.kmalloc(64) == p and sl.kmalloc(64) != p


def test_double_free_to_a_non_cpu_slab_without_debugging():
    sl, _, rep = make()
    objs = [sl.kmalloc(2048) for _ in range(9)]       # the first slab is full now
    sl.kfree(objs[0])
    sl.kfree(objs[1])
    sl.kfree(objs[0])
    assert "Object already free" in rep.reports[-1]
    check_slab_caches(sl)


def test_debug_caches_keep_no_cpu_slab():
    sl, _, _ = make("FZPU")
    p = sl.kmalloc(64)
    s = sl.find_cache("kmalloc-64")
    assert sl.slub.cpu_slab_pfn(s) is None and p
    assert sl.ksize(p) == 64


# -- slub_debug=, slabinfo, checker ------------------------------------------------

def test_parse_slub_debug():
    assert parse_slub_debug("FZ,kmalloc-64") == (0, [(0x500, ["kmalloc-64"])])
    assert parse_slub_debug("P") == (SLAB_POISON, [])
    assert parse_slub_debug(",kmalloc-*")[1][0][0] == 0x10d00
    sl, _, _ = make("Z,kmalloc-1*")
    assert sl.find_cache("kmalloc-16").flags & SLAB_RED_ZONE
    assert not sl.find_cache("kmalloc-32").flags & SLAB_RED_ZONE
    assert not sl.find_cache("kmalloc-16").flags & SLAB_STORE_USER


def test_slabinfo_line_format(sl):
    for _ in range(3):
        sl.kmalloc(64)
    line = cache_show(sl.get_slabinfo(sl.find_cache("kmalloc-64")))
    # objects on the cpu freelist count as active, as SLUB's get_slabinfo() has it
    assert line == ("kmalloc-64            64     64     64   64    1 : tunables    0    0    0"
                    " : slabdata      1      1      0")
    assert HEADER.startswith("slabinfo - version: 2.1\n# name            <active_objs>")


def test_checker_catches_corrupted_freelist(sl):
    p = sl.kmalloc(128)
    s = sl.find_cache("kmalloc-128")
    cpu = sl.slub.rd(s.cpu)                    # c->freelist
    sl.slub.set_freepointer(s, cpu, p + 3)
    with pytest.raises(SlabCorruptionError, match="kmalloc-128"):
        check_slab_caches(sl)


def test_checker_catches_bad_counters(sl):
    s = sl.kmem_cache_create("count", 256)
    objs = [sl.kmem_cache_alloc(s) for _ in range(40)]
    pfn = next(p for p in s.node.slabs if p != sl.slub.cpu_slab_pfn(s))
    sl.slub.set_counters(pfn, 3, 16, False)
    with pytest.raises(SlabCorruptionError, match="inuse 3"):
        check_slab_caches(sl)
    assert objs


# -- kmalloc_node / kmem_cache_alloc_node on two nodes ---------------------------------

def test_kmalloc_node_takes_objects_from_that_node():
    from mmemu.machine import Machine
    from mmemu.mm.page import page_to_nid
    m = Machine("numa-2n", echo=False)
    sl = m.slab

    def nid(va):
        return page_to_nid(m.mm, (va - 0xC0000000) >> 12)
    local = sl.kmalloc(64, GFP_KERNEL)
    far = sl.kmalloc(64, GFP_KERNEL, node=1)
    again = sl.kmalloc(64, GFP_KERNEL, node=1)             # the cpu slab is on node 1 now
    assert (nid(local), nid(far), nid(again)) == (0, 1, 1)
    near = sl.kmalloc(64, GFP_KERNEL, node=0)              # back: node 0's partial slab
    assert nid(near) == 0 and (near - local) // 4096 == 0
    big = sl.kmalloc(20000, GFP_KERNEL, node=1)            # kmalloc_large_node()
    assert nid(big) == 1
    anywhere = sl.kmalloc(64, GFP_KERNEL, node=5)          # not a node with normal memory
    assert anywhere and nid(anywhere) in (0, 1)
    for obj in (local, far, again, near, big, anywhere):
        sl.kfree(obj)
    m.check()


def test_slab_nodes_are_the_nodes_with_normal_memory():
    from mmemu.machine import Machine
    from mmemu.mm.slab_common import slab_nodes
    assert slab_nodes(Machine("numa-2n", echo=False).mm) == {0, 1}
    assert slab_nodes(Machine("pc-16m", echo=False).mm) == {0}
