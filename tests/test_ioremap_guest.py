"""Guest-program tests for ioremap: unbacked ranges read all ones, and what
ioremap()/iounmap() refuse, reported in the kernel's words.
"""
from pathlib import Path

import pytest

from mmemu.machine import Machine
from mmemu.testing import boot_areas

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"


def run(program, config="pc-1g"):
    m = Machine(config, echo=False)
    return m, m.run(str(GUEST / program))


def test_ioremap_unbacked_reads_all_ones():
    m, res = run("tests/ioremap_unbacked.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    assert m.vmalloc.areas() == boot_areas(m)


def test_ioremap_refusals():
    m, res = run("tests/ioremap_bad.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    report = "\n".join(res.reports)
    assert report.count("ioremap on RAM at 0x") == 1            # WARN_ONCE
    assert "iounmap: bad address f" in report
    assert "main+0x" in report


def test_ioremap_use_after_iounmap_oops():
    m, res = run("tests/ioremap_use_after_iounmap.c")
    assert res.reason == "oops", res.log
    assert "a use after iounmap() (allocated by main+0x" in "\n".join(res.reports)
