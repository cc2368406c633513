"""Soak and exhaustion: drive every zone to exhaustion and back, cycle after
cycle, and prove that nothing is lost.

guest/tests/soak.c does the work (vmalloc of big areas, high-order blocks
down to order 0 for HighMem, Normal, DMA and the atomic reserves, every
node on a NUMA machine, a kmem_cache whose freed objects leave empty slabs
for the shrinker), then frees everything in a shuffled order.  The host
checks at two points of each cycle (HC_SOAK_MARK):

- exhausted: every populated zone is below its low watermark, GFP_HIGHUSER
  fell back to Normal once HighMem was spent, and the failing calls made
  without __GFP_NOWARN were reported as Linux reports them;
- freed: after draining the per-cpu lists and shrinking every slab cache,
  /proc/buddyinfo, slabinfo and vmallocinfo are exactly what they were at
  boot, and machine.check() proves free + allocated + reserved == present.

Differs from a boot snapshot taken cold: kernel page tables are never freed
(as in Linux), so the page tables the vmalloc area needs are made before
the baseline, as x86-64's preallocate_vmalloc_pages() does.

    >>> r = Soak("pc-4g", cycles=3).run()
    >>> r.ok, r.cycles
    (True, 3)
"""
import difflib
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from mmemu import views
from mmemu.errors import MmemuError
from mmemu.machine import Machine
from mmemu.mm.pcp import drain_all_pages
from mmemu.runtime.abi import HC_DEBUG_BASE

HC_SOAK_PARAM = HC_DEBUG_BASE + 8    # (index) -> value
HC_SOAK_MARK = HC_DEBUG_BASE + 9     # (what, cycle, a, b, c) -> 0 to go on
P_SEED, P_CYCLES, P_NR_NODES, P_MAX_BLOCKS = range(4)
MARK_START, MARK_EXHAUSTED, MARK_EXHAUSTED_LOW, MARK_FREED = range(4)
VIEWS = ("buddyinfo", "slabinfo", "vmallocinfo")
PROGRAM = Path(__file__).resolve().parents[2] / "guest" / "tests" / "soak.c"


@dataclass
class CycleStats:
    """What one cycle took and what the host saw at its two marks."""

    cycle: int
    highuser_pages: int = 0        # GFP_HIGHUSER pages taken (HighMem, then Normal)
    kernel_pages: int = 0          # GFP_KERNEL pages after that
    dma_pages: int = 0
    atomic_pages: int = 0          # GFP_ATOMIC, below the min watermark
    node_pages: int = 0            # __GFP_THISNODE, per node (NUMA)
    fallbacks: int = 0             # GFP_HIGHUSER blocks that came from lowmem
    zones: dict = field(default_factory=dict)   # "node/zone" -> (free, min, low) when exhausted
    seconds: float = 0.0


@dataclass
class SoakResult:
    """A soak run: cycles done, reports counted, and anything that went wrong."""

    config: str
    cycles: int = 0
    stats: list = field(default_factory=list)
    alloc_failure_reports: int = 0     # "page allocation failure: order:N, mode:..."
    vmalloc_failure_reports: int = 0   # "vmalloc error: ..." / "vmap allocation ... failed"
    shrinker_pages: int = 0            # pages the slab shrinker gave back in direct reclaim
    problems: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        return (f"{self.config}: {self.cycles} cycles in {self.seconds:.1f} s, "
                f"{self.alloc_failure_reports} page allocation failure reports, "
                f"{self.vmalloc_failure_reports} vmalloc failure reports, "
                f"{self.shrinker_pages} pages from the shrinker, "
                f"{sum(s.fallbacks for s in self.stats)} HighMem->lowmem fallbacks, "
                f"{len(self.problems)} problems")


# -- the state that must come back --------------------------------------------

def quiesce(machine):
    """Put back what is only cached: drain the per-cpu page lists, flush every
    cpu slab and free every empty slab (kmem_cache_shrink() of each cache)."""
    sl = getattr(machine, "slab", None)
    if sl is not None:
        for s in list(sl.caches):
            sl.kmem_cache_shrink(s)
    drain_all_pages(machine.mm)


def snapshot(machine):
    """The /proc texts that must return to their boot state: {name: text}."""
    return {name: views.show(machine, name) for name in VIEWS}


def compare(before, after):
    """A unified diff per view that changed; empty when all came back."""
    out = []
    for name in VIEWS:
        if before[name] != after[name]:
            diff = difflib.unified_diff(before[name].splitlines(), after[name].splitlines(),
                                        f"{name} at boot", f"{name} now", lineterm="", n=0)
            out.append("\n".join(diff))
    return out


def preallocate_vmalloc_tables(machine):
    """Make every page table of the vmalloc area now (they are never freed)."""
    lay, pt = machine.layout, machine.pgtable
    step = pt.pmd_size                         # a page table maps 4 MiB, or 2 MiB on PAE
    for va in range(lay.vmalloc_start & ~(step - 1), lay.vmalloc_end, step):
        pt.pte_alloc_kernel(va)


def zone_levels(machine):
    """{"node/zone": (free incl. per-cpu, min, low)} for every populated zone."""
    out = {}
    for z in machine.mm.zones:
        if z.present_pages:
            free = z.nr_free_pages + z.per_cpu_pageset.count
            out[f"{z.node}/{z.name}"] = (free, z.min_wmark_pages(), z.low_wmark_pages())
    return out


# -- the run -------------------------------------------------------------------

class Soak:
    """Run guest/tests/soak.c for a number of cycles on one machine.

    config: a config name or MachineConfig (pc-4g, numa-2n ...); seed
    varies the sizes and the order things are freed in.
    """

    def __init__(self, config="pc-4g", cycles=3, seed=0, timeout=3600):
        self.config, self.ncycles, self.seed, self.timeout = config, cycles, seed, timeout
        name = config if isinstance(config, str) else config.name
        self.result = SoakResult(name)

    def run(self):
        t0 = time.monotonic()
        m = self.m = Machine(self.config, echo=False)
        m.load(str(PROGRAM))
        self._count_shrinker(m)
        t = m.runtime.table
        params = {P_SEED: random.Random(self.seed).getrandbits(32) | 1, P_CYCLES: self.ncycles,
                  P_NR_NODES: len(m.mm.node_data), P_MAX_BLOCKS: 0}
        t.register(HC_SOAK_PARAM, "soak_param", lambda i: params.get(i, 0), 1)
        t.register(HC_SOAK_MARK, "soak_mark", self._mark, 5)
        self._t = time.monotonic()
        res = m.run(timeout=self.timeout)
        log = res.log
        r = self.result
        r.alloc_failure_reports = len(re.findall(r"page allocation failure: order:\d+, mode:", log))
        r.vmalloc_failure_reports = len(re.findall(r"vmalloc error: |vmap allocation .* failed", log))
        if res.reason != "exit" or res.exit_code != 0:
            r.problems.append(f"the program stopped: {res.reason} {res.exit_code}\n"
                              + "\n".join(res.reports)[-3000:])
        r.seconds = time.monotonic() - t0
        return r

    def _count_shrinker(self, m):
        """Count the pages each registered shrinker gives back (direct reclaim)."""
        def counting(fn):
            def shrink():
                freed = fn() or 0
                self.result.shrinker_pages += freed
                return freed
            return shrink
        m.mm.shrinkers[:] = [counting(fn) for fn in m.mm.shrinkers]

    def _mark(self, what, cycle, a, b, c):
        """HC_SOAK_MARK: check the state at this point of the cycle; 1 stops the program."""
        try:
            problem = self._check_mark(what, cycle, a, b, c)
        except MmemuError as e:
            problem = f"{type(e).__name__}: {e}"
        if problem:
            self.result.problems.append(f"cycle {cycle}: {problem}")
            return 1
        return 0

    def _check_mark(self, what, cycle, a, b, c):
        m, r = self.m, self.result
        if what == MARK_START:
            preallocate_vmalloc_tables(m)
            quiesce(m)
            self.baseline = snapshot(m)
            m.check()
            return None
        if what == MARK_EXHAUSTED:
            st = CycleStats(cycle, highuser_pages=a, kernel_pages=b, fallbacks=c,
                            zones=zone_levels(m))
            r.stats.append(st)
            return self._exhausted(st)
        if what == MARK_EXHAUSTED_LOW:
            st = r.stats[-1]
            st.dma_pages, st.atomic_pages, st.node_pages = a, b, c
            return None
        if what == MARK_FREED:
            return self._freed(cycle, r.stats[-1] if r.stats else None)
        return f"unknown mark {what}"

    def _exhausted(self, st):
        """Every zone spent: below its low watermark; fallback seen if there is HighMem."""
        full = [f"{z} has {free} free pages (low watermark {low})"
                for z, (free, _, low) in st.zones.items() if free >= low]
        if full:
            return "not exhausted: " + "; ".join(full)
        has_high = any(z.is_highmem and z.present_pages for z in self.m.mm.zones)
        if has_high and not st.fallbacks:
            return "GFP_HIGHUSER never fell back from HighMem to a lowmem zone"
        return None

    def _freed(self, cycle, st):
        m = self.m
        quiesce(m)
        diffs = compare(self.baseline, snapshot(m))
        m.check()
        if st is not None:
            now = time.monotonic()
            st.seconds, self._t = now - self._t, now
        self.result.cycles = cycle
        return "did not come back to the boot state:\n" + "\n".join(diffs) if diffs else None
