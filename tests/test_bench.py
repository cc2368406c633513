"""tools/bench.py: the figures issue 20 asks for exist on both kernel flavours
(adjacent rows of the README's table, tests/test_figures.py checks the
table itself), and each figure boots the flavour it names."""
import importlib.util
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "tools" / "bench.py"

# Issue 20's speed figures, each measured on both kernel flavours.
BOTH = ["guest kmalloc(64)+kfree pair / raw Unicorn in-hook",
        "guest alloc_page+__free_pages pair / raw Unicorn in-hook",
        "guest memset 64 KiB: mmemu / bare Unicorn (speed)",
        "guest memcpy 64 KiB: mmemu / bare Unicorn (speed)",
        "guest compute loop: default run / no budget (speed)"]
PAE_ONLY = ["boot of qemu-pc-16g-pae, config to paging on (s)",
            "host RSS after booting qemu-pc-16g-pae beyond mem_map (bytes)"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("mmemu_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_issue_20_figures_are_registered_on_both_flavours_with_targets(bench):
    names = list(bench.FIGURES)
    for name in BOTH:
        i = names.index(f"{name} [686]")
        assert names[i + 1] == f"{name} [686-pae]"             # side by side
        for flavour in ("686", "686-pae"):
            assert bench.FIGURES[f"{name} [{flavour}]"][1] is not None
            assert bench.KERNELS[f"{name} [{flavour}]"] == flavour
    for name in PAE_ONLY:
        assert bench.KERNELS[name] == "686-pae" and bench.FIGURES[name][1] is not None


def test_a_figure_boots_the_kernel_it_names(bench, monkeypatch):
    monkeypatch.setenv("MMEMU_KERNEL", "686")
    seen = []
    bench._on_kernel("686-pae", lambda: seen.append(bench.machine("pc-16m").pgtable.pae))()
    bench._on_kernel("686", lambda: seen.append(bench.machine("pc-16m").pgtable.pae))()
    assert seen == [True, False]
    assert os.environ["MMEMU_KERNEL"] == "686"
