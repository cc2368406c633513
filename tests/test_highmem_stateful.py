"""Random kmap/kunmap/kmap_atomic/kunmap_atomic sequences over HighMem and
lowmem pages, against a model of what each live mapping must show.

After every step: each live mapping translates to its page through mmemu's
walker and through Unicorn's own MMU (the independent reference; a stale
TLB entry would show there), page_address() agrees, pkmap counts are never
negative, preempt_count and the per-cpu kmap depth equal the atomic stack,
and the checker passes.  At the end everything is unmapped and no pkmap or
kmap_atomic PTE may be left present.  The pkmap cursor starts at a random
slot so that runs wrap it (and recycle slots) within a few steps."""
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmemu.layout import (
    FIX_KMAP_BEGIN, KM_MAX_IDX, LAST_PKMAP, PAGE_OFFSET, PAGE_SHIFT, fix_to_virt,
)
from mmemu.mm.highmem import PKMAP_NR, check_highmem

pytestmark = pytest.mark.flavours

N_HIGH, N_LOW = 24, 4
_machine = []


def machine():
    if not _machine:
        from mmemu.machine import Machine
        m = Machine("pc-1g", echo=False)
        m.sched.ratelimit_s = 600.0     # kmap under kmap_atomic is reported: keep the log small
        _machine.append(m)
    return _machine[0]


class KmapMachine(RuleBasedStateMachine):
    """The model: users per page for kmap(), a stack of (va, pfn) for kmap_atomic()."""

    @initialize(cursor=st.integers(0, LAST_PKMAP - 1))
    def boot(self, cursor):
        self.m = machine()
        self.hm = self.m.highmem
        self.hm.last_pkmap_nr = cursor
        base = self.m.layout.max_low_pfn
        self.high = [base + 7 + 3 * k for k in range(N_HIGH)]
        self.low = [0x800 + 5 * k for k in range(N_LOW)]
        self.users = {}                  # pfn -> kmap() users
        self.kmapped = {}                # pfn -> address kmap() returned
        self.stack = []                  # (va, pfn) from kmap_atomic(), innermost last
        self.preempt = self.m.sched.preempt_count

    pages = st.sampled_from(range(N_HIGH + N_LOW))

    def pfn(self, i):
        return self.high[i] if i < N_HIGH else self.low[i - N_HIGH]

    @rule(i=pages)
    def kmap(self, i):
        pfn = self.pfn(i)
        va = self.hm.kmap(pfn)
        assert va is not None
        if pfn < self.m.layout.max_low_pfn:
            assert va == PAGE_OFFSET + (pfn << PAGE_SHIFT)
        elif pfn in self.kmapped:
            assert va == self.kmapped[pfn]
        self.kmapped[pfn] = va
        self.users[pfn] = self.users.get(pfn, 0) + 1

    @precondition(lambda self: any(self.users.values()))
    @rule(data=st.data())
    def kunmap(self, data):
        pfn = data.draw(st.sampled_from(sorted(p for p, n in self.users.items() if n)))
        self.hm.kunmap(pfn)
        self.users[pfn] -= 1
        if not self.users[pfn]:
            del self.kmapped[pfn]

    @rule(i=pages)
    def kunmap_of_a_page_not_kmapped_changes_nothing(self, i):
        pfn = self.pfn(i)
        if self.users.get(pfn) or pfn < self.m.layout.max_low_pfn:
            return
        before = (list(self.hm.pkmap_count), dict(self.hm.page_address_htable))
        assert self.hm.kunmap(pfn) is False
        assert (list(self.hm.pkmap_count), dict(self.hm.page_address_htable)) == before

    @precondition(lambda self: len(self.stack) < KM_MAX_IDX - 1)
    @rule(i=pages)
    def kmap_atomic(self, i):
        pfn = self.pfn(i)
        va = self.hm.kmap_atomic(pfn)
        slots = sum(1 for _, p in self.stack if p >= self.m.layout.max_low_pfn)
        if pfn < self.m.layout.max_low_pfn:
            assert va == PAGE_OFFSET + (pfn << PAGE_SHIFT)
        else:
            assert va == fix_to_virt(FIX_KMAP_BEGIN + slots)
        self.stack.append((va, pfn))
        self.preempt += 1

    @precondition(lambda self: self.stack)
    @rule()
    def kunmap_atomic(self):
        va, _ = self.stack.pop()
        assert self.hm.kunmap_atomic(va)
        self.preempt -= 1

    @rule()
    def kmap_flush_unused(self):
        self.hm.kmap_flush_unused()

    @invariant()
    def every_live_mapping_shows_its_page(self):
        live = list(self.kmapped.items()) + [(pfn, va) for va, pfn in self.stack]
        for pfn, va in live:
            want = pfn << PAGE_SHIFT
            assert self.m.pgtable.translate(va) == want
            assert self.m.engine.translate(va) == want
        for pfn, va in self.kmapped.items():
            assert self.hm.page_address(pfn) == va

    @invariant()
    def counts_and_depths_agree(self):
        assert min(self.hm.pkmap_count) >= 0
        for pfn, n in self.users.items():
            if n and pfn >= self.m.layout.max_low_pfn:
                assert self.hm.pkmap_count[PKMAP_NR(self.kmapped[pfn])] == n + 1
        high_on_stack = sum(1 for _, p in self.stack if p >= self.m.layout.max_low_pfn)
        assert self.m.sched.kmap_local_idx == high_on_stack
        assert self.m.sched.preempt_count == self.preempt
        check_highmem(self.m)

    def teardown(self):
        if not hasattr(self, "m"):
            return
        while self.stack:
            self.hm.kunmap_atomic(self.stack.pop()[0])
        for pfn, n in self.users.items():
            for _ in range(n):
                self.hm.kunmap(pfn)
        self.hm.kmap_flush_unused()
        assert self.hm.pkmap_slots() == []
        assert self.hm.kmap_local_slots() == []
        assert self.m.sched.preempt_count == 0 and self.m.sched.kmap_local_idx == 0
        check_highmem(self.m)


KmapMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestKmapSequences = KmapMachine.TestCase


@pytest.fixture(autouse=True, scope="module")
def _no_pkmap_left(kernel_flavour):
    yield
    if _machine:
        m = _machine[0]
        for va in range(m.layout.pkmap_base, m.layout.pkmap_end, 4096):
            assert m.pgtable.translate(va) is None and m.engine.translate(va) is None
        for k in range(KM_MAX_IDX):
            va = fix_to_virt(FIX_KMAP_BEGIN + k)
            assert m.pgtable.translate(va) is None and m.engine.translate(va) is None
