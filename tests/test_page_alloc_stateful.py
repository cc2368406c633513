"""Random alloc/free sequences against the buddy allocator, checked after every step.

A hypothesis state machine per machine shape (pc-16m, pc-1g, numa-2n, and
a small machine with a ZONE_MOVABLE): allocations of every order under a mix
of GFP masks, each filled with its own byte pattern in guest RAM and checked
when freed (no two allocations overlap, nothing scribbles on them), each
from a zone its mask allows (never above gfp_zone(): only
__GFP_MOVABLE|__GFP_HIGHMEM reaches ZONE_MOVABLE); frees in random order;
now and then a bad free (double free, wrong order) that must be refused
without harm.  check_page_alloc() runs after every step, and freeing
everything at the end must give back the buddy lists of the boot (the
blocks are canonical).
"""
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmemu.config import MiB
from mmemu.layout import PAGE_SHIFT, ZONE_MOVABLE
from mmemu.mm import page_alloc as pa
from mmemu.mm.gfp import (
    GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOIO, GFP_NOWAIT,
    GFP_USER, _GFP_COMP, _GFP_HIGH, _GFP_HIGHMEM, _GFP_MOVABLE, _GFP_NOWARN, _GFP_THISNODE,
    _GFP_ZERO, gfp_zone,
)
from mmemu.init.main import boot_mm
from mmemu.mm.mmzone import MAX_ORDER
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.pcp import drain_all_pages
from mmemu.views.procfs import buddyinfo

pytestmark = pytest.mark.flavours

GFP_MASKS = [GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_NOIO, GFP_USER, GFP_DMA, GFP_HIGHUSER,
             GFP_HIGHUSER_MOVABLE, GFP_KERNEL | _GFP_ZERO, GFP_KERNEL | _GFP_COMP,
             GFP_HIGHUSER | _GFP_COMP | _GFP_ZERO, GFP_KERNEL | _GFP_HIGH,
             GFP_KERNEL | _GFP_THISNODE, GFP_DMA | _GFP_COMP, GFP_KERNEL | _GFP_MOVABLE,
             GFP_HIGHUSER_MOVABLE | _GFP_COMP]
# Small orders most of the time, as real callers; every order some of the time.
ORDERS = st.one_of(st.integers(0, 3), st.integers(0, MAX_ORDER - 1))

def _booted(name, **overrides):
    """A fresh MmState per example (booting is cheap), buddyinfo of the boot kept
    (its per-cpu lists drained: the blocks are canonical only then)."""
    mm = boot_mm(name, **overrides)
    drain_all_pages(mm)
    return mm, buddyinfo(mm)


class PageAllocMachine(RuleBasedStateMachine):
    config = "pc-16m"
    overrides = {}

    def __init__(self):
        super().__init__()
        self.mm, self.boot_buddyinfo = _booted(self.config, **self.overrides)
        self.held = {}                       # pfn -> (order, pattern byte)
        self.freed = []                      # pfns freed, for double-free attempts
        self.counter = 0

    def _fill(self, pfn, order, byte):
        size = 1 << (order + PAGE_SHIFT)
        self.mm.u8[pfn << PAGE_SHIFT:(pfn << PAGE_SHIFT) + size] = bytes([byte]) * size

    def _intact(self, pfn, order, byte):
        size = 1 << (order + PAGE_SHIFT)
        data = self.mm.u8[pfn << PAGE_SHIFT:(pfn << PAGE_SHIFT) + size]
        return data.tobytes().count(byte) == size

    @rule(order=ORDERS, gfp=st.sampled_from(GFP_MASKS), nid=st.sampled_from([None, None, 0, 1]))
    def alloc(self, order, gfp, nid):
        if nid is not None and nid >= len(self.mm.node_data):
            nid = None
        pfn = pa.alloc_pages(self.mm, gfp | _GFP_NOWARN, order, nid)
        if pfn is None:
            return
        assert pfn % (1 << order) == 0
        zid = pa.page_zonenum(self.mm, pfn)
        assert zid <= gfp_zone(gfp), "a zone above what the mask allows"
        assert zid != ZONE_MOVABLE or gfp & _GFP_MOVABLE and gfp & _GFP_HIGHMEM
        if gfp & _GFP_ZERO:
            assert self._intact(pfn, order, 0)
        if not gfp & (GFP_DMA | 0x2):        # lowmem-only masks get lowmem
            assert not pa.PageHighMem(self.mm, pfn)
        self.counter = (self.counter % 254) + 1
        self._fill(pfn, order, self.counter)
        self.held[pfn] = (order, self.counter)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def free(self, data):
        pfn = data.draw(st.sampled_from(sorted(self.held)))
        order, byte = self.held.pop(pfn)
        assert self._intact(pfn, order, byte), "an allocation was overwritten"
        pa._free_pages(self.mm, pfn, order)
        self.freed.append(pfn)

    @precondition(lambda self: self.freed)
    @rule(data=st.data())
    def double_free(self, data):
        pfn = data.draw(st.sampled_from(self.freed))
        if pfn in self.held:
            return
        mark = self.mm.log.mark()
        pa._free_pages(self.mm, pfn, 0)
        assert self.mm.log.mark() > mark, "a free of a free page went unreported"

    @precondition(lambda self: self.held)
    @rule(data=st.data(), delta=st.sampled_from([-1, 1]))
    def wrong_order_free(self, data, delta):
        pfn = data.draw(st.sampled_from(sorted(self.held)))
        order = self.held[pfn][0] + delta
        if not 0 <= order < MAX_ORDER:
            return
        mark = self.mm.log.mark()
        pa._free_pages(self.mm, pfn, order)
        assert self.mm.log.mark() > mark, "a free with the wrong order went unreported"

    @rule()
    def drain(self):
        drain_all_pages(self.mm)

    @invariant()
    def consistent(self):
        check_page_alloc(self.mm)

    def teardown(self):
        for pfn, (order, byte) in list(self.held.items()):
            assert self._intact(pfn, order, byte)
            pa._free_pages(self.mm, pfn, order)
        drain_all_pages(self.mm)
        check_page_alloc(self.mm)
        assert buddyinfo(self.mm) == self.boot_buddyinfo


class Pc1gMachine(PageAllocMachine):
    config = "pc-1g"


class Numa2nMachine(PageAllocMachine):
    config = "numa-2n"


class MovableMachine(PageAllocMachine):
    """128 MiB, 32 MiB of it HighMem, the top 16 MiB of that ZONE_MOVABLE
    (pc-1g-movable's shape, small enough to run dry now and then)."""
    config = "pc-128m"
    overrides = {"highmem": 32 * MiB, "movablecore": "16M"}

    def __init__(self):
        super().__init__()
        assert self.mm.movable_start == {0: 0x7000}


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.filter_too_much])

TestPc16m = PageAllocMachine.TestCase
TestPc16m.settings = settings(max_examples=80, stateful_step_count=50, **_SETTINGS)
TestPc1g = Pc1gMachine.TestCase
TestPc1g.settings = settings(max_examples=8, stateful_step_count=30, **_SETTINGS)
TestNuma2n = Numa2nMachine.TestCase
TestNuma2n.settings = settings(max_examples=8, stateful_step_count=30, **_SETTINGS)
TestMovable = MovableMachine.TestCase
TestMovable.settings = settings(max_examples=20, stateful_step_count=50, **_SETTINGS)


@pytest.mark.parametrize("name, overrides", [
    ("pc-16m", {}), ("numa-2n", {}), ("pc-128m", MovableMachine.overrides)],
    ids=["pc-16m", "numa-2n", "movable"])
def test_exhaust_then_free_everything(name, overrides):
    """The allocator can be run dry at every order, every zone (Movable first, then
    down the zonelist), and gives everything back."""
    mm, boot = _booted(name, **overrides)
    held = []
    for order in reversed(range(MAX_ORDER)):
        while True:
            pfn = pa.alloc_pages(mm, GFP_HIGHUSER_MOVABLE | _GFP_NOWARN | _GFP_HIGH, order)
            if pfn is None:
                break
            held.append((pfn, order))
    check_page_alloc(mm)
    for pfn, order in held:
        pa._free_pages(mm, pfn, order)
    drain_all_pages(mm)
    check_page_alloc(mm)
    assert buddyinfo(mm) == boot
