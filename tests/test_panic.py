"""Tests for mmemu.kernel.panic's Reporter: one taint state per machine, shown
by every subsystem's reports, and what each class of report does next.

The texts themselves are checked in tests/test_oops.py (the formatters) and
in each subsystem's tests; here the machine-wide state is.
"""
import re

import pytest

from mmemu.config import load_config
from mmemu.kernel.panic import EXIT_BUG, EXIT_OOPS, EXIT_PANIC, TAINT_LETTERS, print_tainted
from mmemu.machine import Machine
from mmemu.mm.gfp import GFP_ATOMIC, GFP_KERNEL

pytestmark = pytest.mark.flavours

RESERVED_PFN = 0x100            # the guest image's reservation at 1 MiB: never free


def machine(panic_on_warn=False):
    cfg = load_config("pc-16m")
    cfg.panic_on_warn = panic_on_warn
    return Machine(cfg, echo=False)


def cpu_lines(text):
    return re.findall(r"^CPU: 0 PID: 1 Comm: \S+ (Not tainted|Tainted: .{19}) ", text, re.M)


def test_one_taint_state_shows_in_every_subsystems_report():
    m = machine()
    mark = m.log.mark()
    m.free_pages(RESERVED_PFN, 0)                 # page allocator: Bad page state, taints B
    m.vmalloc.vfree(0xC0000000 + 123)             # vmalloc: a WARN, taints W
    m.vmalloc.vfree(0xC0000000 + 123)
    text = m.log.text(mark)
    assert text.startswith(f"BUG: Bad page state in process mmemu  pfn:{RESERVED_PFN:05x}")
    assert cpu_lines(text) == ["Not tainted",                   # the bad page's own report
                               print_tainted("B"),              # vmalloc sees the B
                               print_tainted("BW")]             # and then its own W
    assert m.reporter.taint == "BW"


def test_lock_debugging_goes_off_once_for_the_machine():
    m = machine()
    mark = m.log.mark()
    m.free_pages(RESERVED_PFN, 0)
    m.free_pages(RESERVED_PFN, 0)
    assert m.log.text(mark).count("Disabling lock debugging due to kernel taint") == 1
    assert not m.reporter.debug_locks
    # ... and DEBUG_LOCKS_WARN_ON() stays silent from then on, as in 6.1.
    mark = m.log.mark()
    assert m.sched.preempt_enable() is False
    assert "DEBUG_LOCKS_WARN_ON" not in m.log.text(mark)


def test_taint_letters_are_6_1s():
    assert len(TAINT_LETTERS) == 19
    assert print_tainted("DWB") == "Tainted: G    B D W         "


def test_a_page_allocator_warn_panics_under_panic_on_warn():
    m = machine(panic_on_warn=True)
    assert m.alloc_pages(GFP_KERNEL, 11) is None              # WARN_ON_ONCE(order >= MAX_ORDER)
    assert "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:5581" in m.log.text()
    assert "Kernel panic - not syncing: kernel: panic_on_warn set ..." in m.log.text()
    assert m.runtime.stop_reason == "panic"


def test_an_allocation_failure_is_printed_not_counted():
    m = machine(panic_on_warn=True)
    while m.alloc_pages(GFP_ATOMIC, 0) is not None:
        pass
    assert "page allocation failure: order:0" in m.log.text()
    assert m.reporter.warnings == 0 and m.reporter.taint == ""
    assert m.runtime.stop_reason is None                     # warn_alloc() is no WARN


def test_a_bug_in_modelled_code_called_from_the_host_is_refused_and_the_machine_goes_on():
    m = machine()
    mark = m.log.mark()
    assert m.fixmap._set_fixmap(1 << 20, 0x1000, 0x163) is False
    text = m.log.text(mark)
    assert "kernel BUG at arch/x86/mm/pgtable.c:661!" in text
    assert "invalid opcode: 0000 [#1] PREEMPT SMP" in text
    assert m.runtime.stop_reason is None and "D" in m.reporter.taint


def test_a_bug_in_modelled_code_called_from_the_guest_kills_the_task():
    r = Machine("pc-1g", echo=False).run("tests/hostile/guest/kmap_atomic_nest40.c")
    assert (r.reason, r.status) == ("bug", EXIT_BUG)
    assert "kernel BUG at mm/highmem.c:" in r.reports[-1]


def test_panic_on_warn_panics_after_a_warn_and_scheduling_while_atomic_only():
    # 6.1.176's check_panic_on_warn() callers: __warn() and __schedule_bug()
    m = machine(panic_on_warn=True)
    m.free_pages(RESERVED_PFN, 0)                       # Bad page state: no panic
    assert m.runtime.stop_reason is None
    m.sched.preempt_disable()
    assert m.sched.schedule()                           # scheduling while atomic: panic
    assert ("Kernel panic - not syncing: scheduling while atomic: panic_on_warn set ..."
            in m.log.text())


def test_a_host_calls_report_names_the_python_caller():
    m = machine()
    mark = m.log.mark()
    m.vmalloc.vfree(0xC0000000 + 123)
    trace = m.log.text(mark).split("Call Trace:\n", 1)[1].splitlines()
    assert trace[0].startswith(" test_a_host_calls_report_names_the_python_caller "
                               "[host test_panic.py:")


@pytest.mark.parametrize("program,reason,status", [
    ("guest/tests/bug_on.c", "bug", EXIT_BUG),
    ("guest/tests/null_deref.c", "oops", EXIT_OOPS),
])
def test_bug_and_oops_end_the_run_with_their_status(program, reason, status):
    m = machine()
    r = m.run(program)
    assert (r.reason, r.status) == (reason, status)
    assert "D" in m.reporter.taint                          # die() taints


def test_panic_on_warn_ends_the_run_with_exit_panic():
    r = machine(panic_on_warn=True).run("guest/tests/warn_on.c")
    assert (r.reason, r.status) == ("panic", EXIT_PANIC)
