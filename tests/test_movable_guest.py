"""Guest programs on machines with a ZONE_MOVABLE: GFP_HIGHUSER_MOVABLE fills
it and falls back down the zonelist; kernel memory never lands in it.  Each
program states its intent in its header comment."""
from pathlib import Path

from mmemu.layout import ZONE_MOVABLE
import pytest

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"
MOVABLE_FROM_NORMAL = "memory: {size: 128M}\nmovablecore: 64M\n"


def run(program, config="pc-1g-movable", **budget):
    from mmemu.machine import Machine
    m = Machine(config, echo=False)
    return m, m.run(str(GUEST / program), **budget)


def lines_of(console, prefix):
    return [ln for ln in console.splitlines() if ln.startswith(prefix)]


def test_movable_tour_on_pc_1g_movable():
    m, r = run("examples/movable_tour.c", timeout=60)
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert "movable_tour: 16352 pages free in ZONE_MOVABLE (carved out of HighMem)" in r.console
    assert "none from Movable (16352 Movable pages free)" in r.console
    assert ("zones: GFP_KERNEL|__GFP_MOVABLE -> Normal, GFP_HIGHUSER -> HighMem, "
            "__get_free_page(GFP_HIGHUSER_MOVABLE) -> Normal, GFP_HIGHUSER_MOVABLE -> Movable"
            in r.console)
    falls = lines_of(r.console, "fallback: ")
    assert len(falls) == 2
    # HighMem's first movable block: set_highmem_pages_init() freed HighMem page
    # by page, each 4 MiB block to the head of its list as it completed, so the
    # highest one, below ZONE_MOVABLE (0x3c000), comes first
    assert "Movable pages, pfn 0x3b800 came from HighMem" in falls[0]
    assert falls[1].endswith("came from Normal")
    fill = lines_of(r.console, "fill: ")[0].split()
    # every page above the low watermark (Movable 235, HighMem 299 pages)
    assert int(fill[1]) == 16352 - 235 and 21506 - 299 - 8 <= int(fill[3]) <= 21506 - 299
    assert r.reports == []
    m.check()


def test_movable_tour_with_movable_carved_from_normal(tmp_path):
    path = tmp_path / "m128.yaml"
    path.write_text(MOVABLE_FROM_NORMAL)
    m, r = run("examples/movable_tour.c", config=str(path), timeout=60)
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert "(carved out of Normal)" in r.console
    falls = lines_of(r.console, "fallback: ")
    assert len(falls) == 1 and falls[0].endswith("came from Normal")   # no HighMem between
    m.check()


def test_movable_tour_without_a_movable_zone_says_so():
    m, r = run("examples/movable_tour.c", config="pc-1g")
    assert r.reason == "exit" and r.exit_code == 10
    assert "this machine has no ZONE_MOVABLE" in r.console + r.log


def test_kernel_memory_stays_out_of_movable():
    """Slab, kmalloc, vmalloc (and its page tables) outside Movable; the
    checkers pass with all of it still allocated, from the guest
    (mmemu_check()) and from the host."""
    from mmemu.machine import Machine
    m = Machine("pc-1g-movable", echo=False)
    r = m.run(str(GUEST / "tests/movable_kernel_memory.c"), timeout=120)
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert "__vmalloc(GFP_HIGHUSER_MOVABLE) inside it" in r.console
    assert r.reports == []
    movable = [vm for vm in m.vmalloc.areas() if vm.nr_pages and all(
        m.mm.u32[m.mm.mbase + pfn * 10] >> 30 == ZONE_MOVABLE for pfn in vm.pages)]
    assert len(movable) == 1 and movable[0].nr_pages == 16
    m.check()


def test_checker_catches_a_guest_made_slab_page_in_movable():
    m, r = run("tests/movable_checker.c")
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert len(r.reports) == 1
    assert "mmemu: consistency check failed: Node 0 Movable: pfn 0x" in r.reports[0]
    assert "is a slab page (PG_slab): kernel memory in ZONE_MOVABLE" in r.reports[0]
    m.check()
