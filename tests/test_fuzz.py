"""The hypercall fuzzers (mmemu/harness/): CI-sized seeded runs of both
drivers, and broken states made on purpose to prove each check fires.

The long run is tools/fuzz.py.
"""
import types

import pytest

from mmemu.harness.checks import killed_by_bug, report_kind
from mmemu.harness.guestfuzz import GuestFuzzer
from mmemu.harness.hostfuzz import HostFuzzer
from mmemu.harness.machines import fuzz_config
from mmemu.harness.minimize import minimize, replay
from mmemu.harness.records import Call
from mmemu.runtime.abi import HC_DEBUG_BASE

pytestmark = pytest.mark.flavours

HC_BROKEN = HC_DEBUG_BASE + 15


@pytest.fixture(scope="module")
def pc16m(kernel_flavour):
    return fuzz_config("pc-16m")


@pytest.fixture(scope="module")
def highmem(kernel_flavour):
    return fuzz_config("pc-128m-highmem")


def registered_names(fuzzer):
    return {c.name for c in fuzzer.calls}


def test_host_fuzzer_survives_every_hypercall(pc16m):
    f = HostFuzzer(pc16m, seed=1, check_every=500)
    r = f.run(8000)
    assert r.failures == [], str(r.failures[0])
    assert r.calls == 8000
    missed = registered_names(f) - set(r.by_call)
    assert not missed, f"never called: {missed}"
    assert r.by_call["<unknown>"] > 0                  # numbers nobody serves
    assert sum(r.reports.values()) > 500               # hostile calls are reported, and counted


def test_host_fuzzer_highmem_machine(highmem):
    r = HostFuzzer(highmem, seed=2, check_every=500).run(4000)
    assert r.failures == [], str(r.failures[0])
    assert r.by_call["kmap"] > 0 and r.by_call["kunmap_atomic"] > 0


def test_guest_fuzzer_end_to_end(highmem):
    f = GuestFuzzer(highmem, seed=1, check_every=500)
    r = f.run(4000)
    assert r.failures == [], str(r.failures[0])
    assert f.done                                     # all freed, checked once more
    assert r.calls == 4000 and len(r.by_call) >= 25
    assert r.runs >= 2                                # resumed across chunks


def test_host_fuzzer_is_reproducible(pc16m):
    a, b, c = HostFuzzer(pc16m, seed=7), HostFuzzer(pc16m, seed=7), HostFuzzer(pc16m, seed=8)
    for f in (a, b, c):
        f.run(600)
    assert list(a.trail) == list(b.trail)
    assert list(a.trail) != list(c.trail)


# -- the checks fire on broken states ----------------------------------------------

class BrokenCallFuzzer(HostFuzzer):
    """Also serves a hypercall whose handler raises for some arguments, as a buggy
    subsystem would."""

    def _boot(self):
        super()._boot()

        def broken(a):
            if a % 7 == 3:
                raise KeyError(a)
            return 0
        self.m.runtime.table.register(HC_BROKEN, "broken", broken, 1)
        self.calls.append(self.m.runtime.table.calls[HC_BROKEN])
        self.by_name["broken"] = self.calls[-1]
        self.names.insert(0, "broken")
        self.weights.insert(0, 20)


def test_fuzzer_catches_a_handler_exception_and_minimizes_it(pc16m):
    f = BrokenCallFuzzer(pc16m, seed=3)
    r = f.run(3000)
    assert len(r.failures) == 1
    fl = r.failures[0]
    assert fl.kind == "error" and "KeyError" in fl.detail
    assert "internal error in hypercall broken" in fl.detail
    assert fl.calls and fl.calls[-1].name == "broken"
    # the raw calls replay on a fresh machine (the same subclass serves them) ...
    small = minimize(pc16m, fl.calls, "error", replayer=BrokenCallFuzzer)
    assert [c.name for c in small] == ["broken"]
    assert replay(pc16m, small, replayer=BrokenCallFuzzer).kind == "error"
    assert replay(pc16m, [Call(HC_BROKEN, (4,), "broken")], replayer=BrokenCallFuzzer) is None


class DamagingFuzzer(HostFuzzer):
    """Damages the machine after a given call, in a given way."""

    at, how = 300, "counter"

    def _after(self, call, ret):
        if self.result.calls == self.at:
            if self.how == "counter":
                self.m.mm.zones[1].nr_free_pages += 1
            elif self.how == "pattern":
                o = next(o for o in self.objs if o.extents)
                phys, n = o.extents[-1]
                self.m.pm.u8[phys + n - 1] ^= 0xFF
            elif self.how == "freelist":         # one block of the largest order gone
                order, zone = max((o, z.zone_id) for z in self.m.mm.zones
                                  for o, a in enumerate(z.free_area) if a.nr_free)
                zone = self.m.mm.zone_by_id[zone]
                zone.free_area[order].nr_free -= 1
                zone.nr_free_pages -= 1 << order
                self.broken_order = order
        return super()._after(call, ret)


@pytest.mark.parametrize("how, kind, words", [
    ("counter", "check", "NR_FREE_PAGES"),          # the cheap check, at once
    ("pattern", "pattern", "pattern at phys"),      # a sampled or full pattern check
    ("freelist", "check", "free_area["),            # only machine.check() sees it
])
def test_fuzzer_catches_damage(pc16m, how, kind, words):
    f = DamagingFuzzer(pc16m, seed=5, check_every=100)
    f.how = how
    f.sample = 10**6                                # every pattern after every call
    r = f.run(1000)
    assert len(r.failures) == 1, r.summary()
    fl = r.failures[0]
    if how == "freelist":
        words = f"free_area[{f.broken_order}]"
    assert fl.kind == kind and words in fl.detail, fl.detail
    assert 300 <= fl.step <= 400


class ScribblingGuestFuzzer(GuestFuzzer):
    """Overwrites every plain allocated page (the guest's blocks, vmalloc pages)
    but the slab allocator's own (kmalloc_caches[], which Linux has in .data)."""

    def _step(self, step, op, a0, a1, ret):
        if step == 200:
            m = self.m
            u32, base = m.pm.u32, m.mm.mbase
            boot = (m.slab.boot_page - 0xC0000000) >> 12
            for pfn in range(m.mem_map.nr_pages):
                w = base + pfn * 10
                if pfn != boot and u32[w + 7] == 1 and not u32[w] & 0x3FFFFF \
                        and u32[w + 6] == 0xFFFFFFFF:
                    m.pm.u8[pfn << 12:(pfn << 12) + 64] = b"\xee" * 64
        return super()._step(step, op, a0, a1, ret)


def test_guest_fuzzer_catches_damage(highmem):
    r = ScribblingGuestFuzzer(highmem, seed=2, check_every=100).run(2000)
    assert len(r.failures) == 1, r.summary()
    assert r.failures[0].kind == "guest" and "pattern damaged" in r.failures[0].detail


def test_report_kind_blanks_numbers():
    text = ("------------[ cut here ]------------\n"
            "BUG: Bad page state in process fuzz_stub  pfn:0x1f3a\nmore")
    assert report_kind(text) == "BUG: Bad page state in process fuzz_stub  pfn:#"


# -- mmemu bugs the fuzzer found, as minimal reproductions ------------------------
# Each was fixed; the reproductions stay as regression tests.

def test_found_bug_free_block_past_end_of_mem_map_is_refused(pc16m):
    from mmemu.machine import Machine
    m = Machine(pc16m, echo=False)
    last = m.mem_map.virt + (m.mem_map.nr_pages - 1) * 40       # reserved at boot
    failure = replay(pc16m, [Call(17, (last, 1), "__free_pages")])      # HC_FREE_PAGES
    assert failure is None, str(failure)


@pytest.mark.parametrize("flags", [0x1 | 0x4, 0x2 | 0x4])         # VM_IOREMAP, VM_ALLOC (| VM_MAP)
def test_found_bug_vmap_flags_make_a_vmap_area(pc16m, flags):
    from mmemu.machine import Machine
    from mmemu.mm import gfp
    m = Machine(pc16m, echo=False)
    pfn = m.alloc_pages(gfp.GFP_KERNEL, 0)
    va = m.vmalloc.vmap([pfn], 1, flags=flags)
    assert va is None or m.vmalloc.find_vm_area(va).kind == "vmap"
    m.check()


def _free_and_report(m, pfn):
    from mmemu.mm import page_alloc
    mark = m.log.mark()
    page_alloc._free_pages(m.mm, pfn, 0)
    return m.log.text(mark)


def test_fuzzer_oracle_a_random_word_that_is_a_real_pfn_is_a_page(pc16m):
    # The long run's one failure: getrandbits(32) gave a word below max_pfn, which the
    # oracle called "a non-page" while kmap_local_pfn rightly mapped it.
    f = HostFuzzer(pc16m, seed=3)
    f.max_pfn = 0x1000

    class Rng:
        def random(self):
            return 0.99                                     # the hostile branch
        def choice(self, seq):
            return seq[-1]                                  # the random word
        def getrandbits(self, n):
            return 0x123
    f.rng = Rng()
    assert f._some_pfn() == (0x123, 0x123)


def test_found_gap_free_pages_of_a_slab_page_is_refused_without_debug_vm():
    # 6.1 without CONFIG_DEBUG_VM takes such a page unchecked; mmemu checks slab pages always.
    from mmemu.machine import Machine
    from mmemu.mm import gfp, page_alloc
    m = Machine(fuzz_config("pc-16m", debug_vm=False), echo=False)
    x = m.slab.kmalloc(64, gfp.GFP_KERNEL)
    pfn = (x - 0xC0000000) >> 12
    text = _free_and_report(m, pfn)
    assert "BUG: Bad page state in process" in text
    assert "flags: " in text and "(slab|" in text
    assert "page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set" in text
    assert page_alloc.page_count(m.mm, pfn) == 1                 # refused: the slab keeps it
    m.check()
    m.slab.kfree(x)
    m.check()


def test_checker_catches_a_slab_page_open_to_the_fast_free_path():
    from mmemu.machine import Machine
    from mmemu.mm import gfp, page_alloc
    from mmemu.mm.page import set_fast_zone
    from mmemu.mm.page_alloc_debug import PageAllocCorruption
    m = Machine(fuzz_config("pc-16m", debug_vm=False), echo=False)
    pfn = (m.slab.kmalloc(64, gfp.GFP_KERNEL) - 0xC0000000) >> 12
    set_fast_zone(m.mm, pfn, page_alloc.page_zone(m.mm, pfn).zone_id)  # open it again
    with pytest.raises(PageAllocCorruption,
                       match="slab page .PG_slab., yet its free would take the unchecked fast path"):
        m.check()


def test_found_gap_free_pages_of_a_page_table_page_is_refused_without_debug_vm():
    from mmemu.machine import Machine
    from mmemu.mm import page_alloc
    m = Machine(fuzz_config("pc-16m", debug_vm=False), echo=False)
    pfn = m._alloc_pgtable_page() >> 12
    text = _free_and_report(m, pfn)
    assert "page dumped because: nonzero mapcount" in text
    assert page_alloc.page_count(m.mm, pfn) == 1
    m.check()
    page_alloc.pgtable_page_dtor(m.mm, pfn)                      # the proper way: dtor, then free
    assert _free_and_report(m, pfn) == ""
    m.check()


def test_found_bug_slab_pad_check_stays_inside_a_fallback_slab(pc16m):
    from mmemu.machine import Machine
    from mmemu.mm import gfp
    from mmemu.mm.slab import SLAB_POISON
    m = Machine(pc16m, echo=False)
    s = m.slab.kmem_cache_create("padfuzz", 1000, 0, SLAB_POISON)
    assert (s.order, s.min_order) == (1, 0)
    for order in range(10, 0, -1):                 # only order 0 left: the slab falls back
        while m.alloc_pages(gfp.GFP_KERNEL | gfp.__GFP_NOWARN, order) is not None:
            pass
    x = m.slab.kmem_cache_alloc(s, gfp.GFP_KERNEL)
    pfn = (x - 0xC0000000) >> 12
    assert m.slab.slub.mem_map is not None and s.node.slabs[pfn] == 0
    after = (pfn + 1) << 12                        # the page after the one-page slab
    before = bytes(m.pm.u8[after:after + 4096])
    m.slab.kmem_cache_free(s, x)
    m.slab.kmem_cache_shrink(s)                    # discards the empty slab
    assert bytes(m.pm.u8[after:after + 4096]) == before


def test_fuzzer_oracle_the_stack_guard_page_is_unmapped_on_purpose(pc16m):
    # A 3-minute run's one failure (seed 3, pc-16m, step 17951): kmap_atomic() of the
    # frame under the guest's stack guard page, which the loader leaves unmapped,
    # returned its direct-map address, and the oracle said "which does not map it".
    f = HostFuzzer(pc16m, seed=3)
    f.run(1)                                                  # boots, loads the stub
    guard = f.m.runtime.stack_guard
    pfn = (guard.start - 0xC0000000) >> 12
    assert f.m.virt_to_phys(guard.start) is None
    assert f._maps("kmap_atomic", pfn)(guard.start) is None
    assert "does not map it" in f._maps("kmap_atomic", pfn)(guard.start + 4096)


def test_a_kill_in_interrupt_context_ends_in_make_task_deads_panic():
    """The calls may leave preempt_count with hardirq bits: an oops then ends
    in 6.1's 'Aiee, killing interrupt handler!' panic, which is still the
    kernel killing the call, not a fault of mmemu's; other panics are not."""
    oops = ("BUG: unable to handle page fault for address: 001056f7\n"
            "mmemu: in __free_pages(), called from main+0x54/0x61\nOops: 0000 [#1] PREEMPT SMP")
    aiee = "Kernel panic - not syncing: Aiee, killing interrupt handler!"
    run = lambda reason, *reports: types.SimpleNamespace(reason=reason, reports=list(reports))  # noqa: E731
    assert killed_by_bug(run("oops", oops))
    assert killed_by_bug(run("panic", "a warning", oops, aiee))
    assert not killed_by_bug(run("panic", aiee))                       # no kill before it
    assert not killed_by_bug(run("panic", oops, "Kernel panic - not syncing: Out of memory"))
    assert not killed_by_bug(run("oops", "BUG: unable to handle page fault for address: 0\n"))
