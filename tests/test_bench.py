"""tools/bench.py: the figures issue 20 asks for exist on both flavours, its
README table puts them side by side, and README's block is its output."""
import importlib.util
import re
from pathlib import Path

import pytest

from mmemu.harness.readme import README, read_block

BENCH = Path(__file__).resolve().parent.parent / "tools" / "bench.py"

# Issue 20's speed figures, each measured on both kernel flavours.
BOTH = ["guest kmalloc(64)+kfree pair / raw Unicorn in-hook",
        "guest alloc_page+__free_pages pair / raw Unicorn in-hook",
        "guest memset 64 KiB: mmemu / bare Unicorn (speed)",
        "guest memcpy 64 KiB: mmemu / bare Unicorn (speed)",
        "guest compute loop: default run / no budget (speed)"]
PAE_ONLY = ["boot of qemu-pc-16g-pae, config to paging on (s)",
            "host RSS after booting qemu-pc-16g-pae beyond mem_map (MiB)"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("mmemu_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_issue_20_figures_are_registered_on_both_flavours_with_targets(bench):
    for name in BOTH:
        for flavour in ("686", "686-pae"):
            _fn, target, _unit, _lower, kernel = bench.FIGURES[f"{name} [{flavour}]"]
            assert target is not None and kernel == flavour
    for name in PAE_ONLY:
        assert bench.FIGURES[name][4] == "686-pae"


def test_markdown_puts_the_flavours_side_by_side(bench):
    rows = [{"figure": "f [686]", "kernel": "686", "value": 3.25, "unit": "x", "target": 1.5,
             "lower_is_better": True, "ok": False, "detail": "slow"},
            {"figure": "f [686-pae]", "kernel": "686-pae", "value": 1.0, "unit": "x",
             "target": 1.5, "lower_is_better": True, "ok": True, "detail": ""},
            {"figure": "boot (s)", "kernel": "686-pae", "value": 0.25, "unit": "s",
             "target": 1.0, "lower_is_better": True, "ok": True, "detail": ""}]
    lines = bench.markdown(rows).splitlines()
    assert lines[2] == "| f | 3.25× (slow) **miss** | 1× | ≤ 1.5× |"
    assert lines[3] == "| boot (s) | · | 0.25 s | ≤ 1 s |"


def test_a_figure_runs_and_the_kernel_it_names_is_booted(bench, monkeypatch, capsys):
    monkeypatch.setenv("MMEMU_KERNEL", "686")
    seen = []
    fn = bench._on_kernel("686-pae", lambda: seen.append(bench.machine("pc-16m").pgtable.pae))
    fn()
    assert seen == [True]
    import os
    assert os.environ["MMEMU_KERNEL"] == "686"
    assert bench.main(["--only", "boot of pc-1g", "--markdown"]) == 0
    out = capsys.readouterr().out
    # the value is in the 686 column (a slow moment may mark it a miss: no timing is asserted)
    assert re.search(r"\| boot of pc-1g, config to paging on \(s\) \| [0-9.]+ s( \*\*miss\*\*)? "
                     r"\| · \| ≤ 0.1 s \|", out)


def test_readme_block_is_the_tools_table_with_both_flavours():
    block = read_block(README.read_text(), "bench").splitlines()
    assert block[0].startswith("| figure | 686 (pc-1g") and "686-pae (pc-1g-pae" in block[0]
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in block[2:]}
    for name in BOTH:
        assert re.match(r"[0-9.]+×", rows[name][1]) and re.match(r"[0-9.]+×", rows[name][2])
    for name in PAE_ONLY:
        assert rows[name][1] == "·" and re.match(r"[0-9.]+ ", rows[name][2])
