"""kernel/sched.py: preempt_count and the irq flag in the per-cpu block,
might_sleep()'s report as 6.1's __might_resched prints it, might_alloc on
the page allocator, the DEBUG_PREEMPT underflow check, schedule() while
atomic, and the sched hypercalls."""
import pytest

from mmemu.kernel.sched import (
    HARDIRQ_OFFSET, MIGHT_SLEEP_SITES, SOFTIRQ_DISABLE_OFFSET, might_alloc, might_sleep,
)
from mmemu.mm.gfp import GFP_ATOMIC, GFP_HIGHUSER, GFP_KERNEL, GFP_NOWAIT
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE
from mmemu.runtime.abi import HC_ALLOC_PAGES, HC_MAILBOX_PHYS, PERCPU_FIELDS, PERCPU_OFFSET
from mmemu.runtime import hc_sched

pytestmark = pytest.mark.flavours


def boot(config="pc-1g"):
    from mmemu.machine import Machine
    return Machine(config, echo=False)


@pytest.fixture(scope="module")
def shared(kernel_flavour):
    return boot()


@pytest.fixture
def m(shared):
    shared.sched.ratelimit_s = 0
    yield shared
    shared.sched.preempt_count = 0
    shared.sched.irqs_disabled = 0
    shared.sched.pagefault_disabled = 0
    shared.sched.ratelimit_s = 1.0


def percpu_word(m, name):
    return m.pm.read32(HC_MAILBOX_PHYS + PERCPU_OFFSET + 4 * PERCPU_FIELDS.index(name))


def report_lines(m, mark):
    return m.log.text(mark).splitlines()


def test_the_state_is_the_per_cpu_words_the_guest_writes(m):
    m.pm.write32(HC_MAILBOX_PHYS + PERCPU_OFFSET, 2)          # what the guest's spin_lock does
    assert m.sched.preempt_count == 2 and m.sched.in_atomic()
    m.sched.preempt_enable()
    assert percpu_word(m, "preempt_count") == 1
    m.sched.irqs_disabled = 1
    assert percpu_word(m, "irqs_disabled") == 1


def test_in_interrupt_counts_hardirq_and_softirq_not_preemption(m):
    m.sched.preempt_count = 1
    assert m.sched.in_atomic() and not m.sched.in_interrupt() and m.sched.in_task()
    m.sched.preempt_count = HARDIRQ_OFFSET
    assert m.sched.in_interrupt() and not m.sched.in_task()
    m.sched.preempt_count = SOFTIRQ_DISABLE_OFFSET
    assert m.sched.in_interrupt() and m.sched.in_task()


def test_might_sleep_is_silent_outside_atomic_context(m):
    mark = m.log.mark()
    assert might_sleep(m, "mm/foo.c:12") is False
    assert m.log.text(mark) == ""


def test_might_sleep_in_atomic_context_prints_what_6_1_prints(m):
    m.sched.preempt_count = 1
    mark = m.log.mark()
    assert might_sleep(m, "mm/foo.c:12") is True
    lines = report_lines(m, mark)
    assert lines[:3] == [
        "BUG: sleeping function called from invalid context at mm/foo.c:12",
        f"in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: {m.reporter.comm}",
        "preempt_count: 1, expected: 0",
    ]
    assert lines[3].startswith("CPU: 0 PID: 1 Comm: ")
    assert "Call Trace:" in lines


def test_might_sleep_with_interrupts_off(m):
    m.sched.irqs_disabled = 1
    mark = m.log.mark()
    assert might_sleep(m, "kernel/x.c:1")
    assert "in_atomic(): 0, irqs_disabled(): 1, non_block: 0" in m.log.text(mark)
    assert "preempt_count: 0, expected: 0" in m.log.text(mark)


def test_might_sleep_reports_a_call_site_at_most_once_a_second(m):
    m.sched.ratelimit_s = 1.0
    m.sched.prev_jiffy.clear()
    m.sched.preempt_count = 0x201
    mark = m.log.mark()
    assert might_sleep(m, "a.c:1") and might_sleep(m, "a.c:1") and might_sleep(m, "b.c:2")
    text = m.log.text(mark)
    assert text.count("BUG: sleeping function") == 2 and "preempt_count: 201," in text
    assert text.count("invalid context at a.c:1") == 1


def test_might_alloc_reports_only_masks_that_may_reclaim(m):
    m.sched.preempt_count = 1
    mark = m.log.mark()
    assert might_alloc(m, GFP_ATOMIC) is False
    assert might_alloc(m, GFP_NOWAIT) is False
    assert m.log.text(mark) == ""
    assert might_alloc(m, GFP_KERNEL) is True
    assert ("at include/linux/sched/mm.h:274" in m.log.text(mark))


def test_a_gfp_kernel_page_allocation_in_atomic_context_is_reported(m):
    m.sched.preempt_count = 1
    hypercall = m.runtime.table.calls[HC_ALLOC_PAGES].fn
    for alloc in (lambda: m.alloc_pages(GFP_KERNEL, 0),                      # host API
                  lambda: (hypercall(GFP_HIGHUSER, 0, 0xFFFFFFFF) - m.mem_map.virt)
                  // STRUCT_PAGE_SIZE):                                      # the hypercall
        mark = m.log.mark()
        m.free_pages(alloc(), 0)
        assert "BUG: sleeping function called from invalid context at " \
               "include/linux/sched/mm.h:274" in m.log.text(mark)


@pytest.mark.parametrize("context", ["preempt_count", "irqs"])
def test_the_order0_fast_path_checks_the_context_too(m, context):
    # The first GFP_KERNEL allocation makes the fast-path plan; later ones take it.
    for _ in range(2):
        m.free_pages(m.alloc_pages(GFP_KERNEL, 0), 0)
    if context == "irqs":
        m.sched.irqs_disabled = True
    else:
        m.sched.preempt_count = 1
    mark = m.log.mark()
    m.free_pages(m.alloc_pages(GFP_KERNEL, 0), 0)
    text = m.log.text(mark)
    assert "BUG: sleeping function called from invalid context at " \
           "include/linux/sched/mm.h:274" in text
    assert ("irqs_disabled(): 1" if context == "irqs" else "in_atomic(): 1") in text


def test_gfp_atomic_in_atomic_context_is_fine(m):
    m.sched.preempt_count = 1
    mark = m.log.mark()
    page = m.runtime.table.calls[HC_ALLOC_PAGES].fn(GFP_ATOMIC, 0, 0xFFFFFFFF)
    assert page
    m.free_pages((page - m.mem_map.virt) // STRUCT_PAGE_SIZE, 0)
    assert "sleeping function" not in m.log.text(mark)


def test_kmap_in_atomic_context_is_reported_at_highmem_internal_44(m):
    m.sched.preempt_count = 1
    mark = m.log.mark()
    pfn = m.layout.max_low_pfn + 3
    m.highmem.kmap(pfn)
    m.highmem.kunmap(pfn)
    text = m.log.text(mark)
    assert f"invalid context at {MIGHT_SLEEP_SITES['kmap']}" in text
    assert f"invalid context at {MIGHT_SLEEP_SITES['kunmap']}" in text


def test_kmap_atomic_itself_never_reports(m):
    mark = m.log.mark()
    va = m.highmem.kmap_atomic(m.layout.max_low_pfn + 3)
    m.highmem.kunmap_atomic(va)
    assert m.log.text(mark) == ""


def test_preempt_enable_below_zero_warns_once_and_is_refused(m):
    mark = m.log.mark()
    assert m.sched.preempt_enable() is False
    assert m.sched.preempt_count == 0
    text = m.log.text(mark)
    assert "DEBUG_LOCKS_WARN_ON(val > preempt_count())" in text
    assert "WARNING: CPU: 0 PID: 1 at kernel/sched/core.c:5738 preempt_count_sub" in text
    mark = m.log.mark()
    assert m.sched.preempt_enable() is False
    assert m.log.text(mark) == ""                # debug_locks is off after the first


def test_schedule_while_atomic_reports_and_resets_the_count(m):
    m.sched.preempt_count = 2
    mark = m.log.mark()
    assert m.sched.schedule() is True
    assert m.log.text(mark).startswith(
        f"BUG: scheduling while atomic: {m.reporter.comm}/1/0x00000002")
    assert m.sched.preempt_count == 0
    assert m.sched.schedule() is False


def test_warn_once_fires_once_per_site(m):
    assert m.reporter.warn("mm/z.c", 1, "zf", once=True) is True
    assert m.reporter.warn("mm/z.c", 1, "zf", once=True) is False
    assert m.reporter.warn("mm/z.c", 2, "zf", once=True) is True


# -- the hypercalls --------------------------------------------------------------

def call(m, nr, *args):
    return m.runtime.table.calls[nr].fn(*args)


def test_hc_might_sleep_reads_the_guests_file_name(m):
    va = 0xC0000000 + 0x7000
    m.write(va, b"prog.c\0")
    m.sched.preempt_count = 1
    mark = m.log.mark()
    assert call(m, hc_sched.HC_MIGHT_SLEEP, va, 42) == 1
    assert "invalid context at prog.c:42" in m.log.text(mark)


def test_hc_pagefault_disable_and_enable_nest(m):
    call(m, hc_sched.HC_PAGEFAULT_DISABLE)
    call(m, hc_sched.HC_PAGEFAULT_DISABLE)
    assert call(m, hc_sched.HC_PAGEFAULT_DISABLED) == 2
    assert m.sched.faulthandler_disabled()
    call(m, hc_sched.HC_PAGEFAULT_ENABLE)
    call(m, hc_sched.HC_PAGEFAULT_ENABLE)
    call(m, hc_sched.HC_PAGEFAULT_ENABLE)
    assert m.sched.pagefault_disabled == 0


def test_hc_spin_bug_prints_spin_dump(m):
    mark = m.log.mark()
    call(m, hc_sched.HC_SPIN_BUG, 0xC0123450, hc_sched.SPIN_BUG_RECURSION)
    lines = report_lines(m, mark)
    assert lines[0] == f"BUG: spinlock recursion on CPU#0, {m.reporter.comm}/1"
    assert ".magic: dead4ead, .owner: " in lines[1]
    mark = m.log.mark()
    call(m, hc_sched.HC_SPIN_BUG, 0xC0123450, hc_sched.SPIN_BUG_UNLOCKED)
    assert "BUG: spinlock already unlocked on CPU#0" in m.log.text(mark)
    assert ".owner: <none>/-1, .owner_cpu: -1" in m.log.text(mark)


def test_hc_preempt_count_sub_refuses_an_underflow(m):
    m.sched.preempt_count = 0
    assert call(m, hc_sched.HC_PREEMPT_COUNT_SUB, 1) == 0
    m.sched.preempt_count = 3
    assert call(m, hc_sched.HC_PREEMPT_COUNT_SUB, 1) == 1
    assert m.sched.preempt_count == 2


def call_named(m, name, *args):
    calls = [c for c in m.runtime.table.calls if c is not None and c.name == name]
    assert calls, f"this machine serves no {name} hypercall"
    return calls[0].fn(*args)


def test_vmalloc_and_vfree_in_atomic_context_are_reported_where_6_1_checks(m):
    m.sched.preempt_count = 1
    mark = m.log.mark()
    addr = call_named(m, "vmalloc", 8192)
    assert addr
    call_named(m, "vfree", addr)
    text = m.log.text(mark)
    assert "invalid context at include/linux/sched/mm.h:274" in text     # kzalloc_node()
    assert "invalid context at mm/vmalloc.c:2801" in text                # vfree()


def test_vfree_in_interrupt_context_does_not_check(m):
    addr = call_named(m, "vmalloc", 4096)
    m.sched.preempt_count = HARDIRQ_OFFSET
    mark = m.log.mark()
    call_named(m, "vfree", addr)
    assert "sleeping function" not in m.log.text(mark)


def test_the_checks_wrap_each_sleeping_call_once(m):
    wrapped = {c.name for c in m.runtime.table.calls
               if c is not None and getattr(c.fn, "_might_sleep", False)}
    # The page allocator's own calls are checked by its might_alloc hook instead.
    assert wrapped == set(hc_sched.SLEEPING_CALLS) - set(hc_sched.PAGE_ALLOCATOR_CALLS)
    assert m.mm.might_alloc.context                       # the hook, with its context word
    assert hc_sched.wrap_sleeping_calls(m.runtime.table, m.sched) == []   # done at boot
