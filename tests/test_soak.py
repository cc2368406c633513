"""Soak and exhaustion (mmemu/harness/soak.py with guest/tests/soak.c): every zone
driven to exhaustion and back, cycle after cycle; buddyinfo, slabinfo and
vmallocinfo back to their boot state, and no page lost.  CI-sized; the
long run is tools/soak.py.
"""
import pytest

from mmemu.machine import Machine
from mmemu.mm import gfp
from mmemu.harness.soak import MARK_FREED, Soak, compare, preallocate_vmalloc_tables, quiesce, snapshot

pytestmark = pytest.mark.flavours


@pytest.fixture(scope="module")
def pc4g(kernel_flavour):
    return Soak("pc-4g", cycles=2, seed=1).run()


@pytest.fixture(scope="module")
def numa(kernel_flavour):
    return Soak("numa-2n", cycles=3, seed=2).run()


def test_soak_pc4g_comes_back_every_cycle(pc4g):
    assert pc4g.ok, pc4g.problems
    assert pc4g.cycles == 2


def test_soak_pc4g_exhausts_every_zone(pc4g):
    for st in pc4g.stats:
        assert set(st.zones) == {"0/DMA", "0/Normal", "0/HighMem"}
        assert all(free < low for free, _, low in st.zones.values())
        assert st.highuser_pages > 700_000          # ~2.9 GiB of HighMem, then Normal
        assert st.fallbacks > 0                     # GFP_HIGHUSER fell back to Normal
        assert st.atomic_pages > 0                  # GFP_ATOMIC reached below the min mark
        free, low_min, _ = st.zones["0/Normal"]
        assert free < low_min                       # ... which only atomic may do


def test_soak_pc4g_reports_failures_as_linux(pc4g):
    # one loud failure per phase and cycle: "page allocation failure: order:0, mode:..."
    assert pc4g.alloc_failure_reports >= 3 * pc4g.cycles
    assert pc4g.vmalloc_failure_reports >= pc4g.cycles
    assert pc4g.shrinker_pages > 0                  # empty slabs reclaimed in direct reclaim


def test_soak_numa_two_nodes(numa):
    assert numa.ok, numa.problems
    assert numa.cycles == 3
    for st in numa.stats:
        assert {"0/DMA", "0/Normal", "1/Normal", "1/HighMem"} <= set(st.zones)
        assert all(free < low for free, _, low in st.zones.values())
        assert st.fallbacks > 0
    assert numa.alloc_failure_reports >= 4 * numa.cycles   # __GFP_THISNODE per node too


# -- the comparison catches what it must -----------------------------------------

def test_snapshot_sees_a_lost_page_block():
    m = Machine("pc-16m", echo=False)
    quiesce(m)
    base = snapshot(m)
    pfn = m.alloc_pages(gfp.GFP_KERNEL, 3)
    quiesce(m)
    diffs = compare(base, snapshot(m))
    assert len(diffs) == 1 and "buddyinfo" in diffs[0]
    m.free_pages(pfn, 3)
    quiesce(m)
    assert compare(base, snapshot(m)) == []


def test_snapshot_sees_leftover_vmalloc_and_slab():
    m = Machine("pc-16m", echo=False)
    preallocate_vmalloc_tables(m)       # kernel page tables stay once made, as in Linux
    quiesce(m)
    base = snapshot(m)
    va = m.vmalloc.vmalloc(3 * 4096)
    s = m.slab.kmem_cache_create("leftover", 100)
    quiesce(m)
    names = " ".join(d.split("\n")[0] for d in compare(base, snapshot(m)))
    assert "vmallocinfo" in names and "slabinfo" in names
    m.vmalloc.vfree(va)
    m.slab.kmem_cache_destroy(s)
    quiesce(m)
    assert compare(base, snapshot(m)) == []


class LeakySoak(Soak):
    """Keeps one page at the end of the first cycle, as a leaking allocator would."""

    def _check_mark(self, what, cycle, a, b, c):
        if what == MARK_FREED and cycle == 1:
            self.m.alloc_pages(gfp.GFP_KERNEL, 0)
        return super()._check_mark(what, cycle, a, b, c)


def test_soak_catches_a_leak():
    r = LeakySoak("numa-2n", cycles=2).run()
    assert not r.ok and r.cycles == 1
    assert "did not come back to the boot state" in r.problems[0]
    assert "buddyinfo" in r.problems[0]
