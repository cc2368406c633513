"""Guest-program tests for vmalloc: the tour and the programs in guest/tests
that break the rules on purpose (overrun into the guard page, bad vfree,
use after vfree), each run on a fresh pc-1g machine.
"""
import re
from pathlib import Path

from mmemu.machine import Machine
from mmemu.testing import boot_areas
from mmemu.views.vmallocinfo import vmallocinfo
import pytest

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"


def run(program, config="pc-1g"):
    m = Machine(config, echo=False)
    return m, m.run(str(GUEST / program))


def test_vmalloc_tour():
    m, res = run("examples/vmalloc_tour.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    assert "is_vmalloc_addr: 1" in res.console
    runs = re.search(r"1536 pages: (\d+) in HighMem, in (\d+) physically contiguous runs", res.console)
    assert runs and int(runs.group(1)) == 1536       # pc-1g has ~148 MiB of HighMem
    assert int(runs.group(2)) > 100                  # the tour fragmented HighMem first
    assert "across 1535 page boundaries" in res.console
    # 1536 pages + the 2-page pages array + the boot's BPF program's page
    assert "VmallocUsed: 6156 kB" in res.console
    assert m.vmalloc.areas() == boot_areas(m)
    m.check()


def test_vmalloc_guard_page_oops():
    m, res = run("tests/vmalloc_guard.c")
    assert res.reason == "oops", res.log
    report = "\n".join(res.reports)
    area = re.search(r"buffer (0x)?([0-9a-f]+)", res.console)
    start = int(area.group(2), 16)
    assert f"{start + 0x2000:08x}" in report                     # the faulting address
    assert (f"the address is in the guard page after the vmalloc area 0x{start:08x}-"
            f"0x{start + 0x2000:08x} (8192 bytes, allocated by main+0x") in report


def test_vmalloc_bad_free_reported_and_survived():
    m, res = run("tests/vmalloc_bad_free.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    report = "\n".join(res.reports)
    assert report.count("Trying to vfree() nonexistent vm area") == 2
    assert report.count("Trying to vfree() bad address") == 1
    assert "main+0x" in report                                   # the guest caller
    assert m.vmalloc.areas() == boot_areas(m)


def test_vmalloc_use_after_free_oops():
    m, res = run("tests/vmalloc_use_after_free.c")
    assert res.reason == "oops", res.log
    report = "\n".join(res.reports)
    assert "a use after vfree() (allocated by main+0x" in report


def test_vmalloc_vmap_program():
    m, res = run("tests/vmalloc_vmap.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    assert "reversed: ok" in res.console


def test_vmalloc_tlb_flushed_on_vunmap():
    m, res = run("tests/vmalloc_tlb.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log


def test_vmallocinfo_names_guest_caller():
    m = Machine("pc-1g", echo=False)
    m.load(str(GUEST / "tests/vmalloc_guard.c"))
    res = m.run()
    line = vmallocinfo(m).splitlines()[1]           # after the boot's BPF program
    assert re.fullmatch(r"0x[0-9a-f]{8}-0x[0-9a-f]{8}   12288 main\+0x[0-9a-f]+/0x[0-9a-f]+ "
                        r"pages=2 vmalloc", line), line
    assert res.reason == "oops"
