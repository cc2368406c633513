"""Random kmalloc/kfree/krealloc/kmem_cache_* sequences on a booted machine.

After every step: live objects never overlap, each keeps the bytes written
into it, and every checker passes (check_page_alloc and the slab checker).
At the end, once everything is freed, every cache shrunk and the test's
caches destroyed, all slab pages are back in the buddy allocator: only the
kmem_cache cache's boot slabs remain, as right after boot.
"""
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmemu.machine import Machine
from mmemu.mm.gfp import (
    GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT, _GFP_ACCOUNT, _GFP_DMA, _GFP_NOWARN,
    _GFP_RECLAIMABLE, _GFP_ZERO,
)
from mmemu.mm.slab import SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, ZERO_SIZE_PTR
import pytest

pytestmark = pytest.mark.flavours

GFPS = st.sampled_from([GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_KERNEL | _GFP_DMA,
                        GFP_KERNEL | _GFP_RECLAIMABLE, GFP_KERNEL | _GFP_ZERO,
                        GFP_KERNEL | _GFP_ACCOUNT, GFP_KERNEL | _GFP_NOWARN])
SIZES = st.one_of(st.integers(0, 300), st.integers(301, 9000), st.integers(9001, 70000))


class SlabMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.m = Machine("pc-128m", echo=False)
        self.sl = self.m.slab
        self.live = {}          # address -> (size, fill byte, cache or None)
        self.caches = []
        self.created = 0
        self.tag = 0
        self.boot_slab_kb = self.sl.meminfo()["Slab"]

    def _fill(self, addr, size):
        self.tag = (self.tag + 1) % 251 + 1
        self.sl.slub.fill(addr, size, self.tag)
        return self.tag

    def _track(self, addr, size, cache=None):
        if addr and addr != ZERO_SIZE_PTR:
            self.live[addr] = (size, self._fill(addr, size), cache)

    @rule(size=SIZES, gfp=GFPS)
    def kmalloc(self, size, gfp):
        self._track(self.sl.kmalloc(size, gfp), size)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def kfree(self, data):
        addr = data.draw(st.sampled_from(sorted(self.live)))
        size, _, cache = self.live.pop(addr)
        if cache is None:
            self.sl.kfree(addr)
        else:
            self.sl.kmem_cache_free(cache, addr)

    @precondition(lambda self: any(c is None for _, _, c in self.live.values()))
    @rule(data=st.data(), new_size=SIZES, gfp=GFPS)
    def krealloc(self, data, new_size, gfp):
        addr = data.draw(st.sampled_from(sorted(a for a, v in self.live.items() if v[2] is None)))
        size, tag, _ = self.live[addr]
        new = self.sl.krealloc(addr, new_size, gfp & ~_GFP_ZERO)
        if new_size == 0:
            assert new == ZERO_SIZE_PTR
            del self.live[addr]
            return
        if new is None:
            return                          # the old object stays
        del self.live[addr]
        kept = min(size, new_size)
        assert self.sl.slub.read_bytes(new, kept) == bytes([tag]) * kept
        self._track(new, new_size)

    @precondition(lambda self: len(self.caches) < 4)
    @rule(size=st.integers(1, 3000), align=st.sampled_from([0, 8, 64]),
          flags=st.sampled_from([0, SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT]))
    def kmem_cache_create(self, size, align, flags):
        # a name no cache of this run had: destroy() then checks it is gone
        self.created += 1
        s = self.sl.kmem_cache_create(f"test-{self.created}-{size}", size, align, flags)
        assert s is not None and s.object_size == size
        self.caches.append(s)

    @precondition(lambda self: self.caches)
    @rule(data=st.data(), gfp=GFPS)
    def kmem_cache_alloc(self, data, gfp):
        s = data.draw(st.sampled_from(self.caches))
        self._track(self.sl.kmem_cache_alloc(s, gfp & ~(_GFP_DMA | _GFP_RECLAIMABLE)),
                    s.object_size, s)

    @precondition(lambda self: self.caches)
    @rule(data=st.data())
    def kmem_cache_shrink(self, data):
        self.sl.kmem_cache_shrink(data.draw(st.sampled_from(self.caches)))

    @precondition(lambda self: self.caches)
    @rule(data=st.data())
    def kmem_cache_destroy_empty(self, data):
        s = data.draw(st.sampled_from(self.caches))
        if any(c is s for _, _, c in self.live.values()):
            return
        self.sl.kmem_cache_destroy(s)
        self.caches.remove(s)
        assert self.sl.find_cache(s.name) is None

    @invariant()
    def objects_do_not_overlap_and_keep_their_bytes(self):
        end = 0
        for addr in sorted(self.live):
            size, tag, _ = self.live[addr]
            assert addr >= end, f"object 0x{addr:08x} overlaps the one before"
            end = addr + max(size, 1)
            assert self.sl.slub.read_bytes(addr, size) == bytes([tag]) * size

    @invariant()
    def allocators_consistent(self):
        self.m.check()

    def teardown(self):
        for addr, (_, _, cache) in list(self.live.items()):
            if cache is None:
                self.sl.kfree(addr)
            else:
                self.sl.kmem_cache_free(cache, addr)
        for s in self.caches:
            self.sl.kmem_cache_destroy(s)
        for s in list(self.sl.caches):
            self.sl.kmem_cache_shrink(s)
        self.m.check()
        assert self.m.reporter.warnings == 0, self.m.log.text()
        assert not self.sl.large
        assert all(s.node.nr_slabs == 0 for s in self.sl.caches
                   if s not in (self.sl.kmem_cache, self.sl.kmem_cache_node))
        assert self.sl.meminfo()["Slab"] == self.boot_slab_kb
        self.m.close()


TestSlabStateful = SlabMachine.TestCase
TestSlabStateful.settings = settings(max_examples=15, stateful_step_count=25, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
