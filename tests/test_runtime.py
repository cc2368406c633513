"""The guest runtime end to end: C program -> hypercall -> allocator ->
page tables -> the guest reads back; reports, budgets and exit statuses."""
import pytest

from mmemu.machine import Machine
from mmemu.runtime.guest import EXIT_BUDGET, EXIT_BUG, EXIT_OOPS
from mmemu.testing import run_guest

pytestmark = pytest.mark.flavours


def test_hello_prints_and_exits_zero():
    r = run_guest("guest/examples/hello.c", config="pc-16m")
    assert (r.status, r.reason) == (0, "exit")
    assert r.console.startswith("Hello from a guest at c0100000 (main)")


def test_page_tour_on_pc_1g():
    r = run_guest("guest/examples/page_tour.c", config="pc-1g")
    assert r.status == 0, r.log
    assert "GFP_DMA        order 0" in r.console and "zone DMA" in r.console
    assert "zone HighMem" in r.console
    assert "has no page_address() (NULL) until kmapped" in r.console
    assert "then GFP_HIGHUSER got pfn" in r.console and "from Normal" in r.console


def test_exhaust_reaches_the_same_count_twice():
    r = run_guest("guest/examples/exhaust.c", config="pc-128m")
    assert r.status == 0, r.log
    runs = [line for line in r.console.splitlines() if "run " in line]
    assert len(runs) == 2
    first = int(runs[0].split("run 1: ")[1].split()[0])
    assert runs[1].endswith(f"run 2: {first} pages")


def test_null_dereference_oopses_with_the_kernels_report():
    r = run_guest("guest/tests/null_deref.c", config="pc-16m",
                  expect_report="BUG: kernel NULL pointer dereference")
    assert (r.status, r.reason) == (EXIT_OOPS, "oops")
    oops = r.reports[0]
    assert oops.startswith("BUG: kernel NULL pointer dereference, address: 00000000")
    assert "#PF: supervisor write access in kernel mode" in oops
    assert "#PF: error_code(0x0002) - not-present page" in oops
    assert "the address is in the NULL page" in oops
    assert "EIP: poke+" in oops and "=> " in oops and "movl $0x2a, (%ecx)" in oops
    assert "Call Trace:\n main+" in oops
    assert "DS: 007b ES: 007b FS: 00d8 GS: 0000 SS: 0068" in oops


def test_bad_free_is_reported_and_a_vm_bug_on_kills_the_task():
    r = run_guest("guest/tests/bad_free.c", config="pc-16m",
                  expect_report=["VM_BUG_ON_PAGE", "BUG: Bad page state"])
    assert (r.status, r.reason) == (EXIT_BUG, "bug"), r.log
    order, double = r.reports                     # the page allocator's reports are the run's
    assert order.startswith("BUG: Bad page state in process bad_free  pfn:")
    assert "page dumped because: freed with order 2, allocated with order 1" in order
    assert "still running; the allocator is consistent" in r.console
    assert "VM_BUG_ON_PAGE(page_ref_count(page) == 0)" in double
    assert "kernel BUG at include/linux/mm.h:769!" in double
    assert "not reached" not in r.console


def test_many_faults_in_one_run_are_each_handled():
    r = run_guest("guest/tests/nofault.c", config="pc-16m")
    assert r.status == 0, r.log
    assert "100 faults handled" in r.console
    assert r.machine.runtime.fault_count == 100


def test_bug_on_stops_with_the_kernels_report():
    r = run_guest("guest/tests/bug_on.c", config="pc-16m", expect_report="kernel BUG at")
    assert (r.status, r.reason) == (EXIT_BUG, "bug")
    assert "kernel BUG at bug_on.c:6!" in r.reports[0]
    assert "not reached" not in r.console


def test_warn_on_reports_and_carries_on():
    r = run_guest("guest/tests/warn_on.c", config="pc-16m", expect_report="WARNING: CPU: 0")
    assert (r.status, r.reason) == (1, "exit")
    assert "WARNING: CPU: 0 PID: 1 at warn_on.c:9 main+" in r.reports[0]
    assert "carried on after 1 warning(s)" in r.console


def test_panic_on_warn_stops_the_machine():
    from mmemu.config import load_config
    cfg = load_config("pc-16m")
    cfg.panic_on_warn = True
    r = Machine(cfg, echo=False).run("guest/tests/warn_on.c")
    assert r.reason == "panic"
    assert "Kernel panic - not syncing: kernel: panic_on_warn set" in r.log


def test_unknown_hypercall_gets_enosys_and_a_warning():
    r = run_guest("guest/tests/unknown_hypercall.c", config="pc-16m",
                  expect_report="unknown hypercall 250")
    assert r.status == 0
    assert "unknown hypercall 250" in r.log


@pytest.mark.parametrize("budget,reason", [({"max_insns": 200_000}, "insn-budget"),
                                           ({"timeout": 0.3}, "time-budget")])
def test_runaway_guest_stops_at_its_budget(budget, reason):
    r = run_guest("guest/tests/spin.c", config="pc-16m", expect_report="budget", **budget)
    assert (r.status, r.reason) == (EXIT_BUDGET, reason)
    assert "budget" in r.reports[-1]


def test_guest_writes_are_visible_to_the_host():
    m = Machine("pc-16m", echo=False)
    r = m.run("guest/examples/exhaust.c")
    assert r.status == 0
    m.check()


# -- the fixture fails on reports ----------------------------------------------

def test_run_guest_fails_on_an_unexpected_report():
    from mmemu.testing import ReportError
    with pytest.raises(ReportError) as exc:
        run_guest("guest/tests/bad_free.c", config="pc-16m")
    msg = str(exc.value)
    assert "unexpected report(s)" in msg
    assert "BUG: Bad page state in process bad_free" in msg       # the report itself


def test_run_guest_fails_when_the_expected_report_is_missing():
    from mmemu.testing import ReportError
    with pytest.raises(ReportError, match="expected a report matching 'kernel BUG at mm/slub.c'"):
        run_guest("guest/examples/hello.c", config="pc-16m",
                  expect_report="kernel BUG at mm/slub.c")


def test_run_guest_expected_reports_by_regex_and_list():
    import re
    from mmemu.testing import ReportError
    run_guest("guest/tests/bad_free.c", config="pc-16m",
              expect_report=[re.compile(r"VM_BUG_ON_PAGE\(page_ref_count"),
                             re.compile(r"^BUG: Bad page state in process \w+  pfn:", re.M)])
    with pytest.raises(ReportError, match="unexpected report"):      # one of two only
        run_guest("guest/tests/bad_free.c", config="pc-16m", expect_report="VM_BUG_ON_PAGE")


def test_mmemu_run_fixture_is_run_guest(mmemu_run):
    r = mmemu_run("guest/tests/warn_on.c", config="pc-16m", expect_report="warn_on.c:9")
    assert r.reason == "exit"


def test_a_keyboard_interrupt_in_a_hypercall_or_a_device_ends_the_run_with_it(monkeypatch):
    # Both callbacks are ctypes ones, whose exceptions ctypes would swallow:
    # the engine stops the CPU instead and the run raises it, as the
    # binding's guard does for its own hooks.
    from mmemu.devices.regs import RegisterFile
    from mmemu.runtime.abi import HC_PRINTK

    def interrupted(*args):
        raise KeyboardInterrupt
    m = Machine("pc-16m", echo=False)
    m.runtime.table.replace(HC_PRINTK, interrupted)
    with pytest.raises(KeyboardInterrupt):
        m.run("guest/examples/hello.c")
    monkeypatch.setattr(RegisterFile, "read", interrupted)     # regs_driver.c reads regs0
    m = Machine("pc-16m", echo=False)
    with pytest.raises(KeyboardInterrupt):
        m.run("guest/examples/regs_driver.c")
