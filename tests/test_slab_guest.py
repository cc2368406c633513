"""Guest programs on the slab allocator: the tours in guest/examples and the
bug corpus in guest/tests, each checked for its exit status, SLUB's exact
report lines, and a consistent machine afterwards (machine.check()).
"""
import re
from pathlib import Path

import pytest

from mmemu.config import load_config
from mmemu.machine import Machine
from mmemu.views.slabinfo import slab_meminfo, slabinfo

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"
HEX = r"0x[0-9a-f]{8}"


def run(program, slub_debug=None, panic_on_warn=False):
    cfg = load_config("pc-1g")
    cfg.slub_debug = slub_debug
    cfg.panic_on_warn = panic_on_warn
    m = Machine(cfg, echo=False)
    result = m.run(GUEST / program)
    m.check()
    return m, result


@pytest.mark.parametrize("program", ["slab_kmalloc.c", "slab_kzalloc.c", "slab_krealloc.c",
                                     "slab_kmem_cache.c", "slab_gfp.c"])
@pytest.mark.parametrize("debug", [None, "FZPU"])
def test_tour(program, debug):
    _, r = run(f"examples/{program}", debug)
    assert (r.reason, r.exit_code, r.reports) == ("exit", 0, []), r.log


def bug_lines(report):
    return report.splitlines()


def test_double_free_with_debugging():
    _, r = run("tests/slab_double_free.c", "FZPU")
    assert r.exit_code == 0, r.log
    (report,) = r.reports
    lines = bug_lines(report)
    assert lines[:3] == ["=" * 77, "BUG kmalloc-64 (Not tainted): Object already free", "-" * 77]
    # No timer interrupt: jiffies stand still, every age is 0 and the report
    # the same on every run (host time made it vary with the host's load).
    assert re.fullmatch(r"Allocated in main\+0x[0-9a-f]+/0x[0-9a-f]+ age=0 cpu=0 pid=1", lines[4])
    assert re.fullmatch(r"Freed in main\+0x[0-9a-f]+/0x[0-9a-f]+ age=0 cpu=0 pid=1", lines[5])
    assert re.fullmatch(rf"Slab {HEX} objects=21 used=0 fp={HEX} flags=0x[0-9a-f]+\(slab\|zone=1\)",
                        lines[6])
    assert re.fullmatch(rf"Object {HEX} @offset=\d+ fp={HEX}", lines[7])
    assert re.fullmatch(r"Redzone  [0-9a-f]{8}: (bb ){15}bb  \.{16}", lines[9])
    assert any(re.fullmatch(r"Object   [0-9a-f]{8}: (6b ){15}a5  k{15}\.", ln) for ln in lines)
    assert re.fullmatch(rf"FIX kmalloc-64: Object at {HEX} not freed", lines[-1])


def test_double_free_without_debugging_is_a_bug_that_kills_the_task():
    # 6.1: BUG_ON(object == fp) in set_freepointer() -> die(): the program ends, 134
    m, r = run("tests/slab_double_free.c")
    assert (r.reason, r.status, r.exit_code) == ("bug", 134, None), r.log
    (report,) = r.reports
    assert "kernel BUG at mm/slub.c:379!" in report
    assert "naive detection of double free or corruption: kmalloc-64 object" in report
    assert "D" in m.reporter.taint


def test_double_free_with_debugging_does_not_panic_on_warn():
    # slab_err() is no WARN: 6.1's check_panic_on_warn() is not called after it
    _, r = run("tests/slab_double_free.c", "FZPU", panic_on_warn=True)
    assert (r.reason, r.exit_code) == ("exit", 0), r.log
    assert "Kernel panic" not in r.log


def test_redzone_overwrite():
    _, r = run("tests/slab_redzone.c", "FZPU")
    assert r.exit_code == 0, r.log
    (report,) = r.reports
    lines = bug_lines(report)
    assert lines[1] == "BUG kmalloc-64 (Not tainted): Right Redzone overwritten"
    m = re.fullmatch(rf"({HEX})-({HEX}) @offset=(\d+)\. First byte 0x41 instead of 0xcc", lines[4])
    assert m and m.group(1) == m.group(2)
    assert re.fullmatch(r"Redzone  [0-9a-f]{8}: 41 cc cc cc {38}A\.\.\.", lines[-10 - 0]) or \
        any(re.fullmatch(r"Redzone  [0-9a-f]{8}: 41 cc cc cc +A\.\.\.", ln) for ln in lines)
    assert f"FIX kmalloc-64: Restoring Right Redzone {m.group(1)}-{m.group(1)}=0xcc" in lines
    assert lines[-1].endswith(" not freed")


def test_use_after_free_found_by_validate_and_next_alloc():
    _, r = run("tests/slab_use_after_free.c", "FZPU")
    assert r.exit_code == 0, r.log
    assert len(r.reports) == 2
    for report in r.reports:
        lines = bug_lines(report)
        assert lines[1].startswith("BUG kmalloc-64 (") and lines[1].endswith("): Poison overwritten")
        assert re.fullmatch(rf"{HEX}-{HEX} @offset=\d+\. First byte 0x0 instead of 0x6b", lines[4])
        assert re.fullmatch(rf"FIX kmalloc-64: Restoring Poison {HEX}-{HEX}=0x6b",
                            [ln for ln in lines if ln.startswith("FIX")][0])
    assert "Tainted: G    B" in r.reports[1]
    assert bug_lines(r.reports[1])[-1] == "FIX kmalloc-64: Marking all objects used"


@pytest.mark.parametrize("debug", [None, "FZPU"])
def test_bad_pointer(debug):
    _, r = run("tests/slab_bad_pointer.c", debug)
    assert r.exit_code == 0, r.log
    (report,) = r.reports
    lines = bug_lines(report)
    assert re.fullmatch(rf"BUG kmalloc-64 \(Not tainted\): Invalid object pointer {HEX}", lines[1])
    assert re.fullmatch(rf"FIX kmalloc-64: Object at {HEX} not freed", lines[-1])


def test_not_slab_pointers():
    _, r = run("tests/slab_not_slab.c")
    assert r.exit_code == 0, r.log
    large, cache = r.reports
    assert re.search(r"WARNING: CPU: 0 PID: 1 at mm/slab_common\.c:\d+ free_large_kmalloc", large)
    assert re.search(rf"^object pointer: {HEX}$", large, re.M)
    assert "virt_to_cache: Object is not a Slab page!" in cache


def test_free_page_of_a_slab_page_is_refused():
    # pc-1g has no debug.vm: the order-0 fast free path must still not take a slab page.
    m, r = run("tests/slab_page_free.c")
    assert r.exit_code == 0, r.log
    (report,) = r.reports
    assert report.startswith("BUG: Bad page state in process slab_page_free  pfn:")
    assert re.search(r"^flags: 0x[0-9a-f]+\(slab\|zone=1\)$", report, re.M)
    assert "page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set" in report
    assert "object still reads km" in r.console
    assert "the allocator is consistent" in r.console


def test_destroy_busy_cache():
    m, r = run("tests/slab_destroy_busy.c")
    assert r.exit_code == 0, r.log
    bug, warn = r.reports
    lines = bug_lines(bug)
    assert lines[1] == ("BUG busy_cache (Not tainted): Objects remaining in busy_cache on "
                        "__kmem_cache_shutdown()")
    assert re.search(rf"^Object {HEX} @offset=0$", bug, re.M)
    assert re.search(r"^Allocated in main\+0x[0-9a-f]+/0x[0-9a-f]+ age=\d+ cpu=0 pid=1$", bug, re.M)
    assert re.search(r"^kmem_cache_destroy busy_cache: Slab cache still has objects when called "
                     r"from main\+0x[0-9a-f]+/0x[0-9a-f]+$", warn, re.M)
    assert "busy_cache" in slabinfo(m)          # the cache stays, as in Linux


def test_slabinfo_and_meminfo_views():
    m, r = run("examples/slab_gfp.c")
    text = slabinfo(m)
    assert text.startswith("slabinfo - version: 2.1\n# name            <active_objs> <num_objs>")
    line = next(ln for ln in text.splitlines() if ln.startswith("kmalloc-512 "))
    assert re.fullmatch(r"kmalloc-512 +\d+ +\d+ +512 +8 +1 : tunables +0 +0 +0 : slabdata +\d+ +\d+ +0",
                        line)
    info = slab_meminfo(m)
    assert info["Slab"] == info["SReclaimable"] + info["SUnreclaim"] and info["SReclaimable"] >= 4
