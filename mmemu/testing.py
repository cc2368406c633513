"""Helpers for testing guest programs with pytest (also a pytest plugin).

    from mmemu.testing import run_guest

    def test_my_driver():
        r = run_guest("my_driver.c", config="pc-1g")
        assert r.status == 0
        assert "probe ok" in r.console

A run fails the test (ReportError, an AssertionError) when the kernel
reported anything: an oops, a BUG or WARN, "Bad page state", a slab
report ("BUG kmalloc-64 (Not tainted): ..."), a bad vfree, an allocation
failure, a budget running out.  The failure message holds every report in
full.  A user-mode task killed by a signal ("prog[2]: segfault at ...",
show_signal_msg()) is the task's end, not a kernel report: it fails
nothing unless expected.  A test that means to provoke a report says which:

    r = run_guest("double_free.c", expect_report="kernel BUG at mm/slub.c")
    r = run_guest("uaf.c", expect_report=re.compile(r"BUG kmalloc-\\d+ .*Poison overwritten"))
    r = run_guest("both.c", expect_report=["Right Redzone overwritten", "Object already free"])

Each expected pattern (a substring, or a compiled regular expression that
re.search()es) must match at least one report, and every report must be
matched by one of the patterns; expect_report=ANY_REPORT accepts whatever
comes (for tests that look at the reports themselves).

After the run the consistency checkers run too (check=True), as
CONFIG_DEBUG_VM would: a damaged allocator fails the test the same way.

With mmemu installed, pytest also offers the fixture ``mmemu_run``, which
is run_guest.
"""
import re

import pytest


class _AnyReport:
    """expect_report=ANY_REPORT: any reports, or none, are fine."""

    def __repr__(self):
        return "ANY_REPORT"


ANY_REPORT = _AnyReport()
# show_signal_msg() and do_trap()'s lines for a user task killed by a signal.
USER_SIGNAL_RE = re.compile(r"^(\S+\[\d+\]: segfault at |traps: \S+\[\d+\] )")


class ReportError(AssertionError):
    """A guest run reported what the test did not expect (or not what it did)."""


def run_guest(program, config="pc-1g", check=True, expect_report=None, **budget):
    """Boot a machine, run one guest program, return its RunResult.

    config is a shipped name, a path or a MachineConfig.  The machine is
    attached as ``result.machine`` so a test can inspect the state the
    program left.  Raises ReportError when the kernel's reports do not
    match expect_report (None: there must be none), or, with check=True,
    when a consistency checker finds the allocators damaged.  budget goes
    to Machine.run() (max_insns, timeout).
    """
    from mmemu.errors import MmemuError
    from mmemu.machine import Machine
    m = Machine(config, echo=False)
    result = m.run(program, **budget)
    result.machine = m
    check_reports(result, expect_report)
    if check:
        try:
            m.check()
        except MmemuError as e:
            raise ReportError(f"{program}: the consistency check failed after the run: {e}\n"
                              f"{_log_tail(result)}") from None
    return result


def check_reports(result, expect_report=None):
    """Raise ReportError unless result.reports are exactly what expect_report allows.

    expect_report: None (no report at all), a string (a substring of a
    report), a compiled regular expression (searched in a report), or a
    list/tuple of those.
    """
    if expect_report is ANY_REPORT:
        return
    patterns = _patterns(expect_report)
    reports = list(result.reports)
    unexpected = [r for r in reports if not any(_matches(p, r) for p in patterns)
                  and not USER_SIGNAL_RE.match(r)]
    missing = [p for p in patterns if not any(_matches(p, r) for r in reports)]
    if not unexpected and not missing:
        return
    lines = []
    if unexpected:
        lines.append(f"the kernel reported {len(unexpected)} unexpected report(s) "
                     f"(run ended: {result.reason}, status {result.status}):")
        for i, text in enumerate(unexpected, 1):
            lines.append(f"--- report {i} ---")
            lines.append(text.rstrip("\n"))
    for p in missing:
        what = p.pattern if isinstance(p, re.Pattern) else p
        lines.append(f"expected a report matching {what!r}, got "
                     f"{'none' if not reports else f'only {len(reports)} other(s)'}")
        if not unexpected:
            for i, text in enumerate(reports, 1):
                lines.append(f"--- report {i} ---")
                lines.append(text.rstrip("\n"))
    raise ReportError("\n".join(lines))


def _patterns(expect_report):
    if expect_report is None:
        return []
    if isinstance(expect_report, (str, re.Pattern)):
        return [expect_report]
    return list(expect_report)


def _matches(pattern, text):
    if isinstance(pattern, re.Pattern):
        return pattern.search(text) is not None
    return pattern in text


def _log_tail(result, lines=40):
    tail = result.log.splitlines()[-lines:]
    return "the kernel log ends:\n" + "\n".join(tail) if tail else ""


@pytest.fixture
def mmemu_run():
    """Run a guest program: mmemu_run(program, config="pc-1g", expect_report=None,
    **budget) -> RunResult; fails on unexpected kernel reports (see run_guest)."""
    return run_guest


def boot_areas(machine):
    """The vmalloc areas every booted machine has before a program runs: the
    boot's BPF program's (ptp_classifier_init(), kernel/bpf.py)."""
    from mmemu.kernel.bpf import BPF_PROG_ALLOC_CALLER
    return [a for a in machine.vmalloc.areas() if a.caller == BPF_PROG_ALLOC_CALLER]
