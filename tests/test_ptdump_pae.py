"""The page-table dump of a 686-pae kernel (mmemu.views.ptdump on three levels)
and the PAE lookup (mmemu.views.owner).

Independent references: the real 686-pae kernel's own tables (captured from
QEMU, tests/fixtures/pae/kernel-page-tables-qemu-pc-1g.txt; its kernel PMD
is also compared entry by entry by the oracle), a
per-entry port of 6.1's walk for PAE (mm/pagewalk.c with folded p4d and pud,
every PTE noted), and Unicorn's MMU for what each printed range maps.

Golden files (tests/golden/ptdump-*-pae.txt) were checked line by line
against the dump of the real kernel's tables where mmemu models the same
thing (the direct map's end, the pmd holes, the pkmap, LDT, CPU entry and
fixmap areas).  Regenerate them only on purpose:

    MMEMU_REGEN_GOLDEN=1 python3 -m pytest tests/test_ptdump_pae.py -k golden
"""
import os
import random
import re
import types
from pathlib import Path

import pytest

from mmemu.arch.x86.pgtable import PageTable
from mmemu.config import load_config
from mmemu.flavour import FLAVOUR_686_PAE
from mmemu.layout import PAGE_OFFSET, PAGE_SIZE, compute_layout
from mmemu.machine import Machine
from mmemu.physmem import PhysMem
from mmemu.views import owner, ptdump
from mmemu.views.ptdump import PgState, PtRange

from test_ptdump import MARKER_LINE, RANGE_LINE, boot_tables

GOLDEN = Path(__file__).parent / "golden"
REAL_TABLES = Path(__file__).parent / "fixtures" / "pae" / "kernel-page-tables-qemu-pc-1g.txt"
NX = 1 << 63


@pytest.fixture(scope="module")
def m1g():
    return Machine("qemu-pc-1g-pae", echo=False)


def real_kernel_tables():
    """The real 686-pae kernel's PDPT, kernel PMD and page tables, in a PhysMem
    (the fixture's runs expanded: "FIRST-LAST ENTRY STEP")."""
    pm = PhysMem(1 << 30)                          # lazy: only the tables are touched
    cr3 = base = None
    for line in REAL_TABLES.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        words = line.split()
        if words[0] == "cr3":
            cr3 = int(words[1], 16)
        elif words[0] == "table":
            base = int(words[-1], 16)
        else:
            first, last = (int(n) for n in words[0].split("-"))
            entry, step = int(words[1], 16), int(words[2], 16)
            for i in range(first, last + 1):
                pm.u64[(base >> 3) + i] = entry + (i - first) * step
    lay = compute_layout(load_config("qemu-pc-1g-pae"))
    pt = PageTable(pm, cr3 & ~0x1F, lambda: None, lambda: None, FLAVOUR_686_PAE)
    return types.SimpleNamespace(pm=pm, layout=lay, pgtable=pt)


def naive_walk_3level(m, start=0, end=1 << 32):
    """6.1's walk on PAE tables, entry by entry: the generic walker with the p4d
    and pud folded into the 4-entry pgd, x86's effective_prot() at each level."""
    markers = ptdump.address_markers(m.layout)
    st = PgState(markers, ptdump._marker_index(markers, start), flavour=m.layout.flavour)
    u64 = m.pm.u64
    pgd = getattr(m, "pgd", None) or m.pgtable.pgd
    for i in range(start >> 30, ((end - 1) >> 30) + 1):
        pdpte = u64[(pgd >> 3) + i]
        if not pdpte & ~0x60:
            st.note_page(max(i << 30, start), 0, 0)
            continue
        for level in (0, 1, 2):
            st.level_effective_prot(level, pdpte)
        pmd = pdpte & 0xFFFFFFFFFF000
        for j in range(512):
            addr = (i << 30) + (j << 21)
            if addr + (1 << 21) <= start or addr >= end:
                continue
            entry = u64[(pmd >> 3) + j]
            if not entry & ~0x60:
                st.note_page(max(addr, start), 3, 0)
                continue
            eff = st.level_effective_prot(3, entry)
            if entry & 0x80 or not entry & 1:
                st.note_page(max(addr, start), 3, entry, eff)
                continue
            table = entry & 0xFFFFFFFFFF000
            for k in range(512):
                va = addr + (k << 12)
                if start <= va < end:
                    pte = u64[(table >> 3) + k]
                    st.note_page(va, 4, pte, st.level_effective_prot(4, pte))
    st.finish(end)
    return st.items


def scribble_3level(m, seed, n=300):
    """Random PAE entries in the kernel's page tables: NX, flags, holes, USR."""
    rng = random.Random(seed)
    tables = [va for va in range(PAGE_OFFSET, 1 << 32, 1 << 21)
              if m.pgtable.pte_slot(va) is not None]
    for _ in range(n):
        va = rng.choice(tables) + rng.randrange(512) * PAGE_SIZE
        slot = m.pgtable.pte_slot(va)
        flags = rng.choice([0, 0x163, 0x161, 0x123, 0x173, 0x167, 0x062, 0x163 | NX,
                            0x161 | NX, 0x167 | NX, NX])
        run = rng.choice([1, 1, 2, 7, 300])
        for k in range(run):
            if (slot & 0xFFF) + 8 * k < PAGE_SIZE:
                m.pm.u64[(slot >> 3) + k] = (rng.randrange(1 << 24) << 12 | flags) if flags else 0


# -- the format ------------------------------------------------------------------

@pytest.mark.parametrize("prot,level,want", [
    (0x163 | NX, 4, "    RW                 GLB NX pte"),
    (0x1E3 | NX, 3, "    RW         PSE     GLB NX pmd"),
    (0x161, 4, "    ro                 GLB x  pte"),
    (0x1E1, 3, "    ro         PSE     GLB x  pmd"),
    (0x17B | NX, 4, "    RW PWT PCD         GLB NX pte"),
    (0, 3, " " * 30 + "pmd"),
])
def test_printk_prot_has_the_nx_column(prot, level, want):
    assert ptdump.printk_prot(prot, level) == want


def test_address_markers_of_the_686_pae_layout():
    """As the real 686-pae kernel puts them: lowmem to 0xf6ffe000, PKMAP_BASE
    0xff000000, the LDT remap one PMD (2 MiB) above, the CPU entry area at 0xff400000."""
    lay = compute_layout(load_config("qemu-pc-1g-pae"))
    got = [(mk.start_address, mk.name) for mk in ptdump.address_markers(lay)]
    assert got == [(0, "User Space"), (0xC0000000, "Kernel Mapping"),
                   (0xF77FE000, "vmalloc() Area"), (0xFEFFE000, "vmalloc() End"),
                   (0xFF000000, "Persistent kmap() Area"), (0xFF200000, "LDT remap"),
                   (0xFF400000, "CPU entry area"), (0xFFDBA000, "Fixmap area")]


# -- the real kernel's tables ---------------------------------------------------------

def test_the_walk_of_the_real_kernels_tables_equals_the_per_entry_walk():
    real = real_kernel_tables()
    assert ptdump.ptdump_walk(real, PAGE_OFFSET) == naive_walk_3level(real, PAGE_OFFSET)


def test_mmemus_direct_map_and_image_are_the_real_kernels_entry_for_entry(m1g):
    """From PAGE_OFFSET to the end of lowmem's last PMD, mmemu's dump is the real
    kernel's, line for line: the real-mode trampoline's permissions, the 2 MiB
    pages, the image's text (read-only, executable), rodata (read-only, NX)
    and data (NX) with the splits set_memory_*() made, the IDT's read-only
    page, the end of the direct map.  Above it the real boot's vmalloc area,
    CPU entry area and APIC fixmaps hold what mmemu does not model; the
    pkmap and LDT areas are the same."""
    real = real_kernel_tables()
    real_text = [ptdump.format_item(i) for i in ptdump.ptdump_walk(real, PAGE_OFFSET)]
    ours = [ptdump.format_item(i) for i in ptdump.ptdump_walk(m1g, PAGE_OFFSET)]
    end = real_text.index("0xf6ffe000-0xf7000000           8K                               pte")
    assert ours[:end + 1] == real_text[:end + 1]
    for block in (["---[ vmalloc() End ]---",
                   "0xff000000-0xff001000           4K" + " " * 31 + "pte",
                   "---[ Persistent kmap() Area ]---",
                   "0xff001000-0xff200000        2044K" + " " * 31 + "pte",
                   "---[ LDT remap ]---",
                   "0xff200000-0xff400000           2M" + " " * 31 + "pmd",
                   "---[ CPU entry area ]---"],):
        for text in (real_text, ours):
            at = text.index(block[0])
            assert text[at:at + len(block)] == block


# -- golden files ------------------------------------------------------------------

@pytest.mark.parametrize("config", ["qemu-pc-1g-pae", "qemu-pc-4g-pae"])
def test_ptdump_golden_boot_tables_pae(config):
    text = ptdump.ptdump_text(boot_tables(config))
    path = GOLDEN / f"ptdump-{config}.txt"
    if os.environ.get("MMEMU_REGEN_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
    for line in text.splitlines():
        if not line.startswith("mmemu: "):
            assert RANGE_LINE.match(line) or MARKER_LINE.match(line), line


# -- the walk ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_ptdump_walk_equals_the_per_entry_walk_pae(seed):
    m = boot_tables("qemu-pc-1g-pae")
    scribble_3level(m, seed)
    assert ptdump.ptdump_walk(m) == naive_walk_3level(m)


@pytest.mark.parametrize("region", ["vmalloc", "pkmap", "fixmap", "0xc0001000-0xc0345000"])
def test_ptdump_region_equals_the_per_entry_walk_pae(region):
    m = boot_tables("qemu-pc-1g-pae")
    scribble_3level(m, 9)
    start, end = ptdump.region_range(m.layout, region)
    assert ptdump.ptdump_walk(m, start, end) == naive_walk_3level(m, start, end)


def test_ptdump_ranges_equal_what_unicorns_mmu_says_pae(m1g):
    """Every range the dump prints maps (or not) what Unicorn's PAE walker says."""
    m1g.vmalloc.vmalloc(300 * PAGE_SIZE)
    m1g.highmem.kmap(m1g.layout.max_low_pfn + 5)
    for r in ptdump.ptdump_walk(m1g):
        if not isinstance(r, PtRange):
            continue
        for va in {r.start, r.end - PAGE_SIZE, (r.start + (r.end - r.start) // 2) & ~0xFFF}:
            got = m1g.engine.translate(va & 0xFFFFFFFF)
            if r.present:
                assert got == m1g.pgtable.translate(va), hex(va)
            else:
                assert got is None, hex(va)


def test_all_ptes_show_frames_above_4g():
    m = Machine("qemu-pc-8g-pae", echo=False)
    pfn = 0x200000                                     # 8 GiB: HighMem above 4 GiB
    va = m.highmem.kmap(pfn)
    items = ptdump.ptdump_walk(m, va, va + PAGE_SIZE, all_ptes=True)
    r = next(i for i in items if isinstance(i, PtRange))
    assert r.phys == pfn << 12
    assert ptdump.format_item(r).endswith("GLB NX pte  phys=0x200000000")


# -- the W+X check -------------------------------------------------------------------

def test_wx_check_passes_as_6_1_prints_it(m1g):
    assert ptdump.ptdump_check(m1g)[0] == ("x86/mm: Checked W+X mappings: passed, "
                                            "no W+X pages found.")
    assert ptdump.ptdump_text(m1g).splitlines()[-1] == (
        "mmemu: x86/mm: Checked W+X mappings: passed, no W+X pages found.")


def test_a_loaded_program_leaves_no_wx_page():
    m = Machine("qemu-pc-1g-pae", echo=False)
    m.load("guest/examples/hello.c")
    assert ptdump.ptdump_check(m) == [ptdump.WX_PASSED]


def test_a_wx_vmap_is_missed_by_6_1s_check_and_found_by_mmemus():
    """vmap() with PAGE_KERNEL_EXEC makes a writable, executable page.  6.1's
    check computes effective RW from the PDPT entry, which has none, so it
    passes; mmemu's look at the leaf entries names the page."""
    m = Machine("qemu-pc-1g-pae", echo=False)
    m.load("guest/examples/hello.c")
    pfn = m.alloc_pages(0xCC0, 0)
    va = m.vmalloc.vmap([pfn], prot=m.pgtable.flavour.PAGE_KERNEL_EXEC)
    found = ptdump.ptdump_check(m)
    assert found[0] == ptdump.WX_PASSED
    assert found[1].startswith(f"W+X mapping at 0x{va:08x}-0x{va + PAGE_SIZE:08x} (1 pages, pte)")


# -- the lookup ----------------------------------------------------------------------

def test_lookup_walks_three_levels(m1g):
    text = owner.lookup_text(m1g, 0xC8000123)
    lines = text.splitlines()
    assert lines[1].startswith("pgd     swapper_pg_dir[3] at phys 0x")
    assert lines[1].endswith("present")
    assert re.match(r"pmd     \[64\] at phys 0x[0-9a-f]{8} = 0x80000000080001e3  "
                    r"present RW accessed dirty GLB PSE NX$", lines[2])
    assert lines[3] == "pte     none: a 2M page (PSE)"
    assert lines[4].startswith("phys    0x08000123  pfn 0x8000  zone Normal")
