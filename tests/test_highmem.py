"""mm/highmem.py on a booted pc-1g: the pkmap area (kmap/kunmap, recycling,
page_address), the kmap_local/kmap_atomic stack, the reports Linux gives
for misuse, the region describer, and the checker on broken states.

Translations are checked twice: with mmemu's walker and with Unicorn's own
MMU (machine.engine.translate), the independent reference."""
import pytest

from mmemu.errors import UsageError
from mmemu.layout import FIX_KMAP_BEGIN, KM_MAX_IDX, PAGE_OFFSET, PAGE_SHIFT, fix_to_virt
from mmemu.mm.highmem import (
    HighmemCorruption, KmapLocalSlot, PkmapSlot, check_highmem, kmap_atomic_slots,
    pkmap_slots,
)

pytestmark = pytest.mark.flavours


def boot(config="pc-1g"):
    from mmemu.machine import Machine
    return Machine(config, echo=False)


@pytest.fixture(scope="module")
def shared(kernel_flavour):
    return boot()


@pytest.fixture
def m(shared):
    """The shared pc-1g machine, left with no kmap of any kind after each test."""
    yield shared
    hm = shared.highmem
    while shared.sched.kmap_local_idx:
        hm.kunmap_atomic(fix_to_virt(FIX_KMAP_BEGIN + shared.sched.kmap_local_idx - 1))
    for slot in hm.pkmap_slots():
        for _ in range(slot.users):
            hm.kunmap_high(slot.pfn)
    hm.flush_all_zero_pkmaps()
    shared.sched.preempt_count = 0
    shared.sched.irqs_disabled = 0
    shared.sched.pagefault_disabled = 0
    assert hm.pkmap_slots() == [] and hm.kmap_local_slots() == []


def high(m, k=0):
    """A HighMem pfn (kmap needs no allocation: it maps any page frame)."""
    return m.layout.max_low_pfn + 100 + k


def maps_to(m, va, pfn):
    want = pfn << PAGE_SHIFT
    return m.pgtable.translate(va) == want and m.engine.translate(va) == want


def since(m, mark):
    """The kernel log written after mark (m.log.mark())."""
    return m.log.text(mark)


# -- kmap / kunmap ---------------------------------------------------------

def test_kmap_lowmem_returns_the_direct_map_address(m):
    pfn = 0x1234
    assert m.highmem.kmap(pfn) == PAGE_OFFSET + (pfn << PAGE_SHIFT)
    assert m.highmem.pkmap_slots() == []
    assert m.highmem.kunmap(pfn) is True


def test_kmap_highmem_maps_a_pkmap_slot(m):
    pfn = high(m)
    assert m.highmem.page_address(pfn) is None
    va = m.highmem.kmap(pfn)
    assert m.layout.pkmap_base <= va < m.layout.pkmap_base + m.layout.last_pkmap * 4096
    assert maps_to(m, va, pfn)
    assert m.highmem.page_address(pfn) == va
    m.write32(va + 8, 0xC0FFEE)
    assert m.pm.read32((pfn << PAGE_SHIFT) + 8) == 0xC0FFEE


def test_kmap_twice_gives_the_same_address_and_counts_users(m):
    pfn = high(m)
    va = m.highmem.kmap(pfn)
    assert m.highmem.kmap(pfn) == va
    slot = (va - m.layout.pkmap_base) >> PAGE_SHIFT
    assert m.highmem.pkmap_count[slot] == 3
    assert pkmap_slots(m) == [PkmapSlot(slot, va, pfn, 3)]
    assert pkmap_slots(m)[0].users == 2


def test_kunmap_leaves_the_slot_mapped_until_the_flush(m):
    pfn = high(m)
    va = m.highmem.kmap(pfn)
    m.highmem.kunmap(pfn)
    slot = (va - m.layout.pkmap_base) >> PAGE_SHIFT
    assert m.highmem.pkmap_count[slot] == 1
    assert m.highmem.page_address(pfn) == va          # Linux: still set until the flush
    assert m.highmem.kmap(pfn) == va                  # and reused as it is
    m.highmem.kunmap(pfn)
    m.highmem.kmap_flush_unused()
    assert m.highmem.pkmap_count[slot] == 0
    assert m.highmem.page_address(pfn) is None
    assert m.pgtable.translate(va) is None and m.engine.translate(va) is None


def test_map_new_virtual_recycles_with_one_flush_when_it_wraps(m, monkeypatch):
    hm = m.highmem
    hm.last_pkmap_nr = 0
    flushes = []
    real = m.pgtable.flush_tlb
    monkeypatch.setattr(m.pgtable, "flush_tlb", lambda: (flushes.append(1), real()))
    pfns = [high(m, k) for k in range(m.layout.last_pkmap - 1)]       # slots 1..1023
    vas = [hm.kmap(p) for p in pfns]
    assert vas[0] == m.highmem.PKMAP_ADDR(1) and vas[-1] == m.highmem.PKMAP_ADDR(m.layout.last_pkmap - 1)
    for p in pfns:
        hm.kunmap(p)
    assert flushes == []
    before = hm.pkmap_flushes
    va = hm.kmap(high(m, 5000))                                # wraps to slot 0
    assert va == m.highmem.PKMAP_ADDR(0)
    assert len(flushes) == 1 and hm.pkmap_flushes == before + 1
    assert all(hm.page_address(p) is None for p in pfns)
    assert [s.slot for s in hm.pkmap_slots()] == [0]
    assert all(m.engine.translate(v) is None for v in vas[:50])
    hm.kunmap(high(m, 5000))


def test_kmap_when_every_slot_is_in_use_reports_and_returns_null(m):
    hm = m.highmem
    for k in range(m.layout.last_pkmap):
        assert hm.kmap(high(m, k)) is not None
    n = m.log.mark()
    assert hm.kmap(high(m, m.layout.last_pkmap)) is None
    text = since(m, n)
    assert text.startswith(f"mmemu: kmap: all {m.layout.last_pkmap} pkmap slots are in use; "
                           "Linux would sleep in map_new_virtual() until one is freed")
    assert hm.page_address(high(m, m.layout.last_pkmap)) is None
    hm.kunmap(high(m, 7))                 # one freed: the next kmap finds it
    assert hm.kmap(high(m, m.layout.last_pkmap)) is not None
    m.check()


def test_kunmap_of_a_page_not_kmapped_is_bug_358_and_changes_nothing(m):
    pfn = high(m)
    n = m.log.mark()
    assert m.highmem.kunmap(pfn) is False
    assert "kernel BUG at mm/highmem.c:358!" in since(m, n)
    assert m.highmem.pkmap_slots() == []
    check_highmem(m)


def test_kunmap_once_too_often_is_bug_368_and_changes_nothing(m):
    pfn = high(m)
    va = m.highmem.kmap(pfn)
    m.highmem.kunmap(pfn)
    n = m.log.mark()
    assert m.highmem.kunmap(pfn) is False
    assert "kernel BUG at mm/highmem.c:368!" in since(m, n)
    assert m.highmem.pkmap_count[(va - m.layout.pkmap_base) >> PAGE_SHIFT] == 1
    check_highmem(m)


def test_kmap_refuses_a_pfn_beyond_ram(m):
    with pytest.raises(UsageError):
        m.highmem.kmap(m.layout.max_pfn)


def test_page_address_of_the_page_allocator_sees_pkmap(m):
    from mmemu.mm import page_alloc
    pfn = high(m)
    assert page_alloc.page_address(m.mm, pfn) is None
    va = m.highmem.kmap(pfn)
    assert page_alloc.page_address(m.mm, pfn) == va


# -- kmap_local / kmap_atomic ----------------------------------------------

def test_kmap_atomic_takes_the_next_fixmap_slot_and_disables_preemption(m):
    hm, sched = m.highmem, m.sched
    va = hm.kmap_atomic(high(m))
    assert va == fix_to_virt(FIX_KMAP_BEGIN)
    assert maps_to(m, va, high(m))
    assert sched.preempt_count == 1 and sched.pagefault_disabled == 1
    assert sched.kmap_local_idx == 1
    assert m.pm.read32(0xC00 + 0x1000 + 8) == 1            # the per-cpu word itself
    assert kmap_atomic_slots(m) == [KmapLocalSlot(0, va, high(m), 1)]
    assert hm.kunmap_atomic(va)
    assert sched.preempt_count == 0 and sched.pagefault_disabled == 0
    assert sched.kmap_local_idx == 0
    assert m.pgtable.translate(va) is None and m.engine.translate(va) is None


def test_kunmap_atomic_flushes_from_the_host_and_leaves_it_to_the_guest_through_the_hypercall(m):
    """Python callers get a flushed TLB; the hypercall only clears the PTE, and
    the guest's kunmap_atomic() flushes the address (invlpg, highmem.h)."""
    from mmemu.runtime.hc_highmem import HC_KUNMAP_ATOMIC
    flushes, real = [], m.pgtable.flush_tlb
    m.pgtable.flush_tlb = lambda: flushes.append(1) or real()
    try:
        m.highmem.kunmap_atomic(m.highmem.kmap_atomic(high(m)))
        assert len(flushes) == 1
        va = m.highmem.kmap_atomic(high(m))
        assert m.runtime.table.calls[HC_KUNMAP_ATOMIC].fn(va) == 1
        assert len(flushes) == 1 and m.pgtable.translate(va) is None
        assert m.sched.kmap_local_idx == 0 and m.sched.preempt_count == 0
    finally:
        m.pgtable.flush_tlb = real


def test_kmap_atomic_of_lowmem_takes_no_slot(m):
    va = m.highmem.kmap_atomic(0x1000)
    assert va == PAGE_OFFSET + 0x1000000
    assert m.sched.kmap_local_idx == 0 and m.sched.preempt_count == 1
    m.highmem.kunmap_atomic(va)
    assert m.sched.preempt_count == 0


def test_kmap_atomic_pfn_maps_even_lowmem_into_a_slot(m):
    va = m.highmem.kmap_atomic_pfn(0x1000)
    assert va == fix_to_virt(FIX_KMAP_BEGIN) and maps_to(m, va, 0x1000)
    m.highmem.kunmap_atomic(va)


def test_kmap_local_nests_15_deep_and_the_16th_is_bug_467(m):
    hm = m.highmem
    vas = [hm.kmap_local_page(high(m, k)) for k in range(KM_MAX_IDX - 1)]
    assert vas == [fix_to_virt(FIX_KMAP_BEGIN + k) for k in range(KM_MAX_IDX - 1)]
    assert all(maps_to(m, va, high(m, k)) for k, va in enumerate(vas))
    n = m.log.mark()
    assert hm.kmap_local_page(high(m, 99)) is None
    assert "kernel BUG at mm/highmem.c:467!" in since(m, n)
    assert m.sched.kmap_local_idx == KM_MAX_IDX - 1
    check_highmem(m)
    for va in reversed(vas):
        assert hm.kunmap_local(va)
    assert m.sched.kmap_local_idx == 0


def test_kmap_atomic_that_hits_the_bug_changes_nothing(m):
    hm = m.highmem
    for k in range(KM_MAX_IDX - 1):
        hm.kmap_local_page(high(m, k))
    assert hm.kmap_atomic(high(m, 50)) is None
    assert m.sched.preempt_count == 0 and m.sched.pagefault_disabled == 0


def test_kunmap_local_out_of_order_warns_once_at_610_and_unmaps_the_innermost(m):
    hm = m.highmem
    a = hm.kmap_local_page(high(m, 0))
    b = hm.kmap_local_page(high(m, 1))
    n = m.log.mark()
    hm.kunmap_local(a)
    assert "WARNING: CPU: 0 PID: 1 at mm/highmem.c:610 kunmap_local_indexed" in since(m, n)
    assert maps_to(m, a, high(m, 0))                     # Linux unmaps b's slot instead
    assert m.engine.translate(b) is None
    check_highmem(m)
    hm.kunmap_local(b)                                   # pops a's slot; ONCE: no second WARN
    assert since(m, n).count("WARNING:") == 1
    assert m.engine.translate(a) is None and m.sched.kmap_local_idx == 0


def test_kunmap_local_with_nothing_mapped_is_bug_479_and_changes_nothing(m):
    n = m.log.mark()
    assert m.highmem.kunmap_local(fix_to_virt(FIX_KMAP_BEGIN)) is False
    assert "kernel BUG at mm/highmem.c:479!" in since(m, n)
    assert m.sched.kmap_local_idx == 0
    assert m.highmem.kunmap_atomic(fix_to_virt(FIX_KMAP_BEGIN)) is False
    assert m.sched.preempt_count == 0


def test_kunmap_local_of_a_lowmem_address_does_nothing(m):
    n = m.log.mark()
    assert m.highmem.kunmap_local(PAGE_OFFSET + 0x5000)
    assert since(m, n) == ""


def test_kmap_local_into_a_slot_set_by_hand_is_bug_552(m):
    m.fixmap.set_fixmap(FIX_KMAP_BEGIN, 0x5000)
    n = m.log.mark()
    assert m.highmem.kmap_local_page(high(m)) is None
    assert "kernel BUG at mm/highmem.c:552!" in since(m, n)
    m.fixmap.clear_fixmap(FIX_KMAP_BEGIN)


# -- inspection ----------------------------------------------------------------

def test_describe_names_the_pkmap_slot_and_its_page(m):
    pfn = high(m)
    va = m.highmem.kmap(pfn)
    slot = (va - m.layout.pkmap_base) >> PAGE_SHIFT
    assert m.highmem.describe(va + 12) == (
        f"the address is in pkmap slot {slot} (persistent kmap area, 0x{va:08x}), "
        f"mapped to pfn 0x{pfn:x} (pkmap_count 2: 1 kmap() user(s))")
    nr = m.layout.last_pkmap - 124                    # 900 of 1024, 388 of 512
    free = m.layout.pkmap_base + nr * 4096
    assert m.highmem.describe(free) == (f"the address is in pkmap slot {nr} (persistent kmap "
                                        f"area, 0x{free:08x}), not mapped: no kmap() holds "
                                        "this slot")
    assert m.highmem.describe(0xC0000000) is None
    assert m.highmem.describe in m.runtime.region_describers


def test_describe_names_the_kmap_atomic_slot(m):
    va = m.highmem.kmap_atomic(high(m))
    assert m.highmem.describe(va) == ("the address is in the fixmap, kmap_local/kmap_atomic "
                                      f"slot 0 of CPU 0 (FIX_KMAP_BEGIN+0), mapped to pfn "
                                      f"0x{high(m):x}")
    assert "not mapped (CPU 0's kmap_atomic depth is 1" in m.highmem.describe(va - 4096)


def test_oops_in_the_pkmap_area_names_the_slot(m):
    from mmemu.runtime.faults import describe_address
    text = describe_address(m, m.layout.pkmap_base + 12 * 4096 + 4, m.runtime.region_describers)
    assert text.startswith("the address is in pkmap slot 12")


# -- the checker -------------------------------------------------------------------

def test_check_highmem_passes_with_maps_of_every_kind(m):
    m.highmem.kmap(high(m, 0))
    m.highmem.kmap(high(m, 1))
    m.highmem.kunmap(high(m, 1))
    m.highmem.kmap_atomic(high(m, 2))
    check_highmem(m)
    m.check()


def test_check_highmem_catches_a_count_without_a_pte(m):
    m.highmem.pkmap_count[77] = 2
    with pytest.raises(HighmemCorruption, match="pkmap slot 77: pkmap_count 2 but the PTE"):
        check_highmem(m)
    m.highmem.pkmap_count[77] = 0


def test_check_highmem_catches_a_stray_pkmap_pte(m):
    m.pgtable.set_pte(m.highmem.PKMAP_ADDR(300), m.pgtable.mk_pte(high(m), m.pgtable.flavour.PAGE_KERNEL))
    with pytest.raises(HighmemCorruption, match="pkmap slot 300: mapped"):
        check_highmem(m)
    m.pgtable.clear_pte(m.highmem.PKMAP_ADDR(300))


def test_check_highmem_catches_a_lost_page_address(m):
    pfn = high(m)
    m.highmem.kmap(pfn)
    del m.highmem.page_address_htable[pfn]
    with pytest.raises(HighmemCorruption, match="whose page_address is None"):
        check_highmem(m)
    m.highmem.page_address_htable[pfn] = m.highmem.PKMAP_ADDR(m.highmem.last_pkmap_nr)


def test_check_highmem_catches_a_per_cpu_depth_the_stack_does_not_match(m):
    m.highmem.kmap_atomic(high(m))
    m.sched.kmap_local_idx = 2                # the guest scribbled on the word
    with pytest.raises(HighmemCorruption, match="kmap_local slot 1: on the stack"):
        check_highmem(m)
    m.sched.kmap_local_idx = 1


def test_check_highmem_catches_a_stray_kmap_slot_of_another_cpu(m):
    m.fixmap.set_fixmap(FIX_KMAP_BEGIN + KM_MAX_IDX * 3, 0x7000)
    with pytest.raises(HighmemCorruption, match=f"kmap_local slot {KM_MAX_IDX * 3}: above"):
        check_highmem(m)
    assert kmap_atomic_slots(m)[0].cpu == 3 and kmap_atomic_slots(m)[0].count == 0
    m.fixmap.clear_fixmap(FIX_KMAP_BEGIN + KM_MAX_IDX * 3)
