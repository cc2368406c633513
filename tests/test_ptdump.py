"""Tests for mmemu.views.ptdump (and the lookup in mmemu.views.owner).

Independent references: a per-entry port of the kernel's walk (every PTE
noted, as mm/pagewalk.c does) for the run-compressed walker; the page-table
walker and Unicorn's own MMU for what each printed range maps; golden files
for the boot tables of known layouts.

Golden files live in tests/golden/.  Regenerate them only on purpose, after
checking the new output against dump_pagetables.c:

    MMEMU_REGEN_GOLDEN=1 python3 -m pytest tests/test_ptdump.py -k golden
"""
import os
import random
import re
import time
import types
from pathlib import Path

import pytest

from mmemu.arch.x86.init import mark_rodata_ro, paging_init, set_memory_ro
from mmemu.arch.x86.setup import setup_arch
from mmemu.arch.x86.pgtable import PageTable, walk
from mmemu.config import load_config
from mmemu.errors import UsageError
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, compute_layout
from mmemu.physmem import PhysMem, bytearray_physmem
from mmemu.testing import boot_areas
from mmemu.views import owner, ptdump
from mmemu.views.ptdump import MarkerLine, PgState, PtRange

from test_ptdump_fixtures import CACHE_NAME, build_machine

# The format, the walk and the golden files of a two-level (686) table; the
# three-level (686-pae) ones are tests/test_ptdump_pae.py's.

GOLDEN = Path(__file__).parent / "golden"

# "0x%08lx-0x%08lx   %9lu%c " + printk_prot() columns + level name
RANGE_LINE = re.compile(
    r"^0x[0-9a-f]{8}-0x[0-9a-f]{8}   [ 0-9]{8}\d[BKMGTPE] "
    r"(?:(USR |    )(RW |ro )(PWT |    )(PCD |    )(PSE |    )(PAT |    )(GLB |    )(NX |x  )"
    r"| {30})(pgd|p4d|pud|pmd|pte)$")
MARKER_LINE = re.compile(r"^---\[ (User Space|Kernel Mapping|vmalloc\(\) Area|vmalloc\(\) End|"
                         r"Persistent kmap\(\) Area|LDT remap|CPU entry area|Fixmap area) \]---$")


def boot_tables(config, direct_map=None):
    """Just the boot page tables of a config (arch/x86/init.paging_init), no mem_map."""
    cfg = load_config(config)
    if direct_map:
        cfg.direct_map = direct_map
    lay = compute_layout(cfg)
    top = max(r.end for r in cfg.ram)
    pm = PhysMem((top + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
    mb, image, _ = setup_arch(cfg, lay, lambda line: None, "")
    pt = paging_init(pm, lay, cfg, mb, image, lambda: None)
    mark_rodata_ro(pt, image, lambda: mb.alloc_try_nid(PAGE_SIZE, PAGE_SIZE, caller="test"))
    return types.SimpleNamespace(cfg=cfg, layout=lay, pm=pm, pgtable=pt, memblock=mb, image=None)


def naive_walk(m, start=0, end=1 << 32):
    """The kernel's walk entry by entry: a note for every PTE, none skipped."""
    markers = ptdump.address_markers(m.layout)
    st = PgState(markers, ptdump._marker_index(markers, start))
    u32 = m.pm.u32
    for index in range(start >> 22, ((end - 1) >> 22) + 1):
        addr = index << 22
        pde = u32[(m.pgtable.pgd >> 2) + index]
        if ptdump.pmd_none(pde):
            st.note_page(max(addr, start), 0, 0)
            continue
        st.set_pde(pde)
        if pde & 0x80:
            st.note_page(max(addr, start), 3, pde)
        elif pde & 1:
            for i in range(1024):
                va = addr + (i << 12)
                if start <= va < end:
                    pte = u32[((pde & ~0xFFF) >> 2) + i]
                    st.note_page(va, 4, pte, st.pte_eff(pte))
    st.finish(end)
    return st.items


def scribble(m, seed, n=400):
    """Random entries in the kernel's page tables: flags, A/D bits, holes, USR."""
    rng = random.Random(seed)
    lay = m.layout
    tables = [va for va in range(PAGE_OFFSET, 1 << 32, 1 << 22)
              if m.pgtable.pte_slot(va) is not None]
    for _ in range(n):
        va = rng.choice(tables) + rng.randrange(1024) * PAGE_SIZE
        slot = m.pgtable.pte_slot(va)
        flags = rng.choice([0, 0x163, 0x161, 0x123, 0x143, 0x173, 0x1E3 & ~0x80, 0x167, 0x062])
        run = rng.choice([1, 1, 2, 7, 300])
        for k in range(run):
            if (slot & 0xFFF) + 4 * k < PAGE_SIZE:
                m.pm.write32(slot + 4 * k, (rng.randrange(1 << 20) << 12 | flags) if flags else 0)
    assert lay


# -- the format ------------------------------------------------------------------

@pytest.mark.parametrize("prot,level,want", [
    (0x163, 4, "    RW                 GLB x  pte"),
    (0x1E3, 3, "    RW         PSE     GLB x  pmd"),
    (0x161, 4, "    ro                 GLB x  pte"),
    (0x17B, 4, "    RW PWT PCD         GLB x  pte"),
    (0x067, 4, "USR RW                     x  pte"),
    (0x0E3, 4, "    RW             PAT     x  pte"),
    (0x000, 0, " " * 30 + "pgd"),
    (0x062, 4, " " * 30 + "pte"),
])
def test_printk_prot_columns(prot, level, want):
    assert ptdump.printk_prot(prot, level) == want


@pytest.mark.parametrize("start,end,want", [
    (0, 0xC0000000, "        3G"), (0xC0000000, 0xC0001000, "        4K"),
    (0xF6800000, 0xF6BFE000, "     4088K"), (0xFFDBA000, 1 << 32, "     2328K"),
    (0xC0000000, 0xC0000600, "     1536B"), (0, 1 << 32, "        0E"),
])
def test_format_size_units(start, end, want):
    assert ptdump.format_size(start, end) == want


def test_address_markers_for_pc_1g():
    lay = compute_layout(load_config("pc-1g"))
    got = [(m.start_address, m.name) for m in ptdump.address_markers(lay)]
    assert got == [(0, "User Space"), (0xC0000000, "Kernel Mapping"),
                   (0xF73FE000, "vmalloc() Area"), (0xFEBFE000, "vmalloc() End"),
                   (0xFEC00000, "Persistent kmap() Area"), (0xFF000000, "LDT remap"),
                   (0xFF400000, "CPU entry area"), (0xFFDBA000, "Fixmap area")]


def test_every_line_matches_the_kernel_format():
    m = build_machine("pc-16m")
    scribble(m, 1)
    for line in ptdump.ptdump_text(m).splitlines():
        if not line.startswith("mmemu: "):
            assert RANGE_LINE.match(line) or MARKER_LINE.match(line), line


# -- golden files ------------------------------------------------------------------

@pytest.mark.parametrize("config", ["pc-16m", "pc-128m", "pc-1g"])
def test_ptdump_golden_boot_tables(config):
    text = ptdump.ptdump_text(boot_tables(config))
    path = GOLDEN / f"ptdump-{config}.txt"
    if os.environ.get("MMEMU_REGEN_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def golden_items(config):
    """The golden dump of config as [("marker", name)] and [("range", start, end, prot, level)],
    prot None where the range is not mapped (end 1 << 32 for the last range)."""
    items = []
    for line in (GOLDEN / f"ptdump-{config}.txt").read_text().splitlines():
        marker = MARKER_LINE.match(line)
        if marker:
            items.append(("marker", marker.group(1)))
            continue
        m = RANGE_LINE.match(line)
        assert m, f"not a dump_pagetables.c line: {line!r}"
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        prot = "".join(g for g in m.groups()[:8] if g) if m.group(2) else None
        items.append(("range", start, end or 1 << 32, prot, m.group(9)))
    return items


@pytest.mark.parametrize("config", ["pc-16m", "pc-128m"])
def test_ptdump_golden_agrees_with_unicorns_mmu_at_every_page(config):
    """Each golden line, read as a claim about every 4 KiB page it covers,
    holds for Unicorn's own MMU on the boot tables: an unmapped range
    translates nowhere, a mapped one is the direct map (phys = va -
    PAGE_OFFSET) and takes writes exactly when it says RW; a pmd-level
    (PSE) range covers whole 4 MiB directory entries."""
    from mmemu.engine import Engine
    m = boot_tables(config)
    eng = Engine()
    eng.map_ram(m.pm, [(r.start, r.end) for r in m.cfg.ram])
    eng.enable_paging(m.pgtable.pgd)
    translate = eng.translate
    try:
        for item in golden_items(config):
            if item[0] != "range":
                continue
            _, start, end, prot, level = item
            pages = range(start, end, PAGE_SIZE)
            if prot is None:
                assert not [va for va in pages if translate(va) is not None], hex(start)
                continue
            assert [translate(va) for va in pages] == [va - PAGE_OFFSET for va in pages], hex(start)
            writable = [translate(va, write=True) is not None for va in pages]
            assert writable == [prot.startswith("    RW")] * len(pages), hex(start)
            if level == "pmd":
                assert "PSE" in prot and start % (4 << 20) == end % (4 << 20) == 0
    finally:
        eng.close()


def _next_range_after(items, marker):
    """The first range printed under a marker."""
    i = items.index(("marker", marker))
    return next(item for item in items[i:] if item[0] == "range")


def test_ptdump_golden_pc_128m_follows_the_real_kernels_layout():
    """pc-128m is `qemu-system-i386 -m 128M`: the real 6.1 kernel booted on
    it (tests/fixtures/oracle/qemu-pc-128m/) maps lowmem up to the same
    high_memory and puts the vmalloc area and the pkmap table where the
    golden's lines break."""
    from mmemu.oracle.capture import load_capture
    from mmemu.oracle.parse import real_report
    real = real_report(load_capture(Path(__file__).parent / "fixtures" / "oracle" / "qemu-pc-128m")).layout
    items = golden_items("pc-128m")
    mapped = [i for i in items if i[0] == "range" and i[3] is not None and i[1] < real.vmalloc_start]
    assert mapped[0][1] == PAGE_OFFSET == real.lowmem_start
    assert all(a[2] == b[1] for a, b in zip(mapped, mapped[1:]))      # no hole in the direct map
    assert mapped[-1][2] == real.lowmem_end == 0xC7FE0000               # high_memory
    pgdir = 4 << 20
    # The markers show at the next page-directory entry: the ones before are empty.
    assert _next_range_after(items, "vmalloc() Area")[1] == -(-real.vmalloc_start // pgdir) * pgdir
    assert _next_range_after(items, "vmalloc() End")[1] == real.pkmap_base == 0xFEC00000
    assert _next_range_after(items, "Persistent kmap() Area")[1] == real.pkmap_base + PAGE_SIZE


def test_ptdump_golden_pc_16m_follows_6_1s_layout_rules():
    """pc-16m has no real-kernel capture (its ZONE_DMA ends at 8 MiB, which no
    PC does), so its golden is checked against pgtable_32_areas.h by hand:
    16 MiB of RAM is all lowmem, so high_memory = 0xc1000000; VMALLOC_START =
    high_memory + VMALLOC_OFFSET (8 MiB) = 0xc1800000; PKMAP_BASE 0xfec00000
    and the LDT remap at 0xff000000, the CPU entry area at 0xff400000 and the
    fixmap at 0xffdba000 do not depend on the RAM size (the pc-1g capture
    has them at the same addresses)."""
    items = golden_items("pc-16m")
    mapped = [i for i in items if i[0] == "range" and i[3] is not None and i[1] < 0xFEC00000]
    assert (mapped[0][1], mapped[-1][2]) == (0xC0000000, 0xC1000000)
    assert all(a[2] == b[1] for a, b in zip(mapped, mapped[1:]))
    assert _next_range_after(items, "vmalloc() Area")[1] == 0xC1800000
    assert _next_range_after(items, "vmalloc() End")[1] == 0xFEC00000
    assert _next_range_after(items, "Persistent kmap() Area")[1] == 0xFEC01000
    assert _next_range_after(items, "LDT remap")[1] == 0xFF000000
    assert _next_range_after(items, "CPU entry area")[1] == 0xFF400000
    assert _next_range_after(items, "Fixmap area")[1:3] == (0xFFDBA000, 1 << 32)


def test_ptdump_golden_pc_1g_follows_the_reference_layout():
    """The markers fall where the reference 6.1 kernel's tables put them, and the
    kernel's text and rodata (16 MiB to 0x1c39000) are read-only, as the QEMU
    monitor's `info mem` shows them on the real kernel."""
    text = (GOLDEN / "ptdump-pc-1g.txt").read_text()
    assert "0xc0000000-0xc0400000           4M     RW                 GLB x  pte" in text
    assert "0xc1000000-0xc1c00000          12M     ro         PSE     GLB x  pmd" in text
    assert "0xc1c00000-0xc1c39000         228K     ro                 GLB x  pte" in text
    assert "0xc2000000-0xf6800000         840M     RW         PSE     GLB x  pmd" in text
    assert "0xf6800000-0xf6bfe000        4088K     RW                 GLB x  pte" in text
    assert text.endswith("---[ Fixmap area ]---\n0xffdba000-0x00000000        2328K"
                         + " " * 31 + "pte\n")


def test_machine_boot_tables_match_the_synthetic_ones():
    from mmemu.machine import Machine
    m = Machine("pc-16m", echo=False)
    ref = boot_tables("pc-16m")
    # pc-16m has no HighMem: the boot's BPF page has a direct-map alias, which
    # bpf_prog_lock_ro() made read-only too, splitting its 4 MiB page
    [bpf] = boot_areas(m)
    alias = PAGE_OFFSET + (bpf.pages[0] << PAGE_SHIFT)
    assert ptdump.ptdump_text(m, "lowmem") != ptdump.ptdump_text(ref, "lowmem")
    set_memory_ro(ref.pgtable, alias, alias + PAGE_SIZE,
                  lambda: ref.memblock.alloc_try_nid(PAGE_SIZE, PAGE_SIZE, caller="test"))
    for region in ("user", "lowmem", "pkmap"):
        assert ptdump.ptdump_text(m, region) == ptdump.ptdump_text(ref, region)


# -- the walk ------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_ptdump_walk_equals_the_per_entry_walk(seed):
    m = build_machine("pc-16m")
    scribble(m, seed)
    assert ptdump.ptdump_walk(m) == naive_walk(m)


@pytest.mark.parametrize("region", ["vmalloc", "pkmap", "fixmap", "0xc0001000-0xc0345000"])
def test_ptdump_region_equals_the_per_entry_walk(region):
    m = build_machine("pc-16m")
    scribble(m, 7)
    start, end = ptdump.region_range(m.layout, region)
    assert ptdump.ptdump_walk(m, start, end) == naive_walk(m, start, end)


def test_marker_passed_inside_a_run_breaks_at_the_next_entry():
    """PKMAP_BASE is the first entry of its table: the kernel prints one 4K
    line under "vmalloc() End" before the pkmap marker (the marker lags)."""
    text = ptdump.ptdump_text(boot_tables("pc-1g"))
    assert ("---[ vmalloc() End ]---\n0xfec00000-0xfec01000           4K"
            + " " * 31 + "pte\n---[ Persistent kmap() Area ]---\n") in text


def _samples(r):
    return {r.start, r.end - PAGE_SIZE, (r.start + (r.end - r.start) // 2) & ~0xFFF}


def test_ptdump_ranges_equal_what_the_walker_says():
    m = build_machine("pc-16m")
    scribble(m, 3)
    for r in ptdump.ptdump_walk(m):
        if not isinstance(r, PtRange):
            continue
        for va in _samples(r):
            w = walk(m.pm, m.pgtable.pgd, va)
            if r.level == ptdump.PGD_LEVEL:
                assert ptdump.pmd_none(w.pde), hex(va)
            elif r.level == ptdump.PMD_LEVEL:
                assert w.pde & 0xFFF == r.prot, hex(va)
            else:
                assert w.pte & 0xFFF == r.prot, hex(va)


def test_ptdump_ranges_equal_what_unicorns_mmu_says():
    from mmemu.engine import Engine
    m = build_machine("pc-16m")
    scribble(m, 4, n=60)
    eng = Engine()
    eng.map_ram(m.pm, [(r.start, r.end) for r in m.cfg.ram])
    eng.enable_paging(m.pgtable.pgd)
    try:
        for r in ptdump.ptdump_walk(m):
            if isinstance(r, PtRange):
                for va in _samples(r):
                    got = eng.translate(va)
                    if r.present:
                        assert got == m.pgtable.translate(va), hex(va)
                    else:
                        assert got is None, hex(va)
    finally:
        eng.close()


def test_all_ptes_lists_every_present_entry_with_its_frame():
    m = build_machine("pc-16m")
    items = ptdump.ptdump_walk(m, 0xC0000000, 0xC0010000, all_ptes=True)
    ranges = [r for r in items if isinstance(r, PtRange)]
    assert len(ranges) == 16
    assert all(r.end - r.start == PAGE_SIZE and r.phys == r.start - PAGE_OFFSET for r in ranges)
    text = ptdump.ptdump_text(m, "0xc0000000-0xc0002000", all_ptes=True)
    assert text.splitlines()[2] == ("0xc0001000-0xc0002000           4K     RW"
                                    "                 GLB x  pte  phys=0x00001000")


def test_region_output_starts_with_its_marker_and_stays_inside():
    m = build_machine("pc-16m")
    lines = ptdump.ptdump_text(m, "vmalloc").splitlines()
    assert lines[0] == "---[ vmalloc() Area ]---"
    lo, hi = ptdump.region_range(m.layout, "vmalloc")
    for line in lines[1:]:
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        assert lo <= start < end <= hi


def test_region_errors_name_the_choices():
    lay = compute_layout(load_config("pc-16m"))
    with pytest.raises(UsageError, match="unknown region 'nowhere'.*vmalloc"):
        ptdump.region_range(lay, "nowhere")
    with pytest.raises(UsageError):
        ptdump.parse_address("0xzz")
    assert ptdump.parse_address("c0100000") == 0xC0100000


def test_kernel_half_of_pc_4g_is_fast():
    """Target 0.5 s (DESIGN.md benchmark); asserted loosely here, measured in the bench."""
    for direct_map in ("4M", "4K"):
        m = boot_tables("pc-4g", direct_map)
        t = time.perf_counter()
        ptdump.ptdump_text(m, "kernel-half")
        assert time.perf_counter() - t < 1.0


# -- checks ------------------------------------------------------------------

def test_check_flags_user_pages_in_kernel_space_only():
    m = build_machine("pc-16m")
    assert ptdump.ptdump_check(m) == []
    m.pgtable.set_pde(0xC1400000, m.pgtable.pde(0xC1400000) | 0x004)     # USR on the PDE
    assert ptdump.ptdump_check(m) == []       # effective USR needs the PTE's bit as well
    m.pgtable.set_pde(0xC1400000, m.pgtable.pde(0xC1400000) & ~0x004)
    va = m.layout.vmalloc_start
    m.pgtable.set_pde(va, m.pgtable.pde(va) | 0x004)
    m.pm.write32(m.pgtable.pte_slot(va), m.pm.read32(m.pgtable.pte_slot(va)) | 0x004)
    found = ptdump.ptdump_check(m)
    assert found == [f"x86/mm: Found user-accessible mapping in kernel space at "
                     f"0x{va:08x}-0x{va + PAGE_SIZE:08x} (1 pages)"]
    assert ptdump.ptdump_text(m).endswith(f"mmemu: {found[0]}\n")


def test_wx_check_is_silent_without_nx():
    """A 686 kernel has no NX, so mark_rodata_ro() never runs debug_checkwx()."""
    assert ptdump.ptdump_check_wx(ptdump.ptdump_walk(build_machine("pc-16m"))) == []


# -- lookup ------------------------------------------------------------------

@pytest.fixture(scope="module")
def m16(kernel_flavour):
    return build_machine("pc-16m")


def _owner_of_va(m, va):
    return dict(owner.ptdump_lookup(m, va))["owner"]


def test_lookup_names_a_free_page(m16):
    assert _owner_of_va(m16, 0xC0400000).startswith("free: buddy block of order 10")
    assert _owner_of_va(m16, 0xC0403000).startswith("free: inside the order-10 buddy block")


def test_lookup_names_a_reserved_page(m16):
    assert _owner_of_va(m16, 0xC0000000).startswith("reserved: page 0")
    assert _owner_of_va(m16, 0xC00A0000).startswith("reserved: the legacy VGA/BIOS hole")
    assert _owner_of_va(m16, 0xC0100000).startswith("kernel image")
    mm_va = PAGE_OFFSET + m16.mem_map.phys
    assert _owner_of_va(m16, mm_va) == "reserved: mem_map (the struct page array)"


def test_lookup_names_page_tables(m16):
    pgd_va = PAGE_OFFSET + m16.pgtable.pgd
    assert _owner_of_va(m16, pgd_va) == "page table: swapper_pg_dir (the kernel page directory)"
    table_va = PAGE_OFFSET + (m16.table_pfn << 12)
    assert _owner_of_va(m16, table_va) == (
        f"page table mapping 0x{m16.layout.vmalloc_start:08x}-"
        f"0x{m16.layout.vmalloc_start + (4 << 20):08x} (vmalloc() Area)")
    boot_table = m16.pgtable.pde(PAGE_OFFSET) & ~0xFFF
    assert _owner_of_va(m16, PAGE_OFFSET + boot_table).startswith(
        "reserved: boot page table mapping 0xc0000000-0xc0400000 (Kernel Mapping)")


def test_lookup_names_lowmem_allocated_slab_vmalloc_and_kmap_pages(m16):
    by_kind = {}
    for pfn, kind in m16.truth.items():
        by_kind.setdefault(kind, pfn)
    assert _owner_of_va(m16, PAGE_OFFSET + (by_kind["allocated"] << 12)).startswith(
        "allocated: page allocator, _refcount 1")
    assert _owner_of_va(m16, PAGE_OFFSET + (by_kind["slab"] << 12)) == (
        f"slab: a slab of cache {CACHE_NAME}")
    assert _owner_of_va(m16, m16.layout.vmalloc_start).startswith(
        f"vmalloc: mapped at 0x{m16.layout.vmalloc_start:08x}")
    assert _owner_of_va(m16, m16.layout.pkmap_base + 3 * PAGE_SIZE) == (
        f"kmap: mapped at 0x{m16.layout.pkmap_base + 3 * PAGE_SIZE:08x}, pkmap slot 3 of 1024")


@pytest.mark.parametrize("pfn_kind", ["allocated", "unused", "slab", "pgtable", "vmalloc", "kmap"])
def test_page_owner_kind_matches_the_truth(m16, pfn_kind):
    for pfn, kind in m16.truth.items():
        if kind == pfn_kind:
            assert owner.page_owner(m16, pfn).kind == kind, hex(pfn)


def test_lookup_text_rows(m16):
    text = owner.lookup_text(m16, 0xC0400123)
    labels = [line.split()[0] for line in text.splitlines()]
    assert labels == ["address", "pde", "pte", "phys", "page", "owner"]
    assert "pde     swapper_pg_dir[769]" in text and "PSE" in text
    assert "phys    0x00400123  pfn 0x400  zone DMA  node 0" in text
    unmapped = owner.lookup_text(m16, 0x08048000)
    assert unmapped.splitlines()[-1] == "phys    not mapped"
    assert "User Space" in unmapped


def test_cli_ptdump_text_dispatches_lookup_region_and_all_ptes(m16):
    from mmemu.cli_views import _ptdump
    args = types.SimpleNamespace(region=None, all_ptes=False, lookup="0xc0400000", check=False)
    assert _ptdump(m16, args).startswith("address 0xc0400000")
    args = types.SimpleNamespace(region="pkmap", all_ptes=True, lookup=None, check=False)
    assert _ptdump(m16, args).startswith("---[ Persistent kmap() Area ]---\n")


def test_walk_copes_with_a_directory_entry_pointing_outside_ram():
    pm = bytearray_physmem(1 << 20)
    lay = compute_layout(load_config("pc-16m"))
    pt = PageTable(pm, 0x1000, None, lambda: None)
    pt.set_pde(0xC0000000, 0x7FFFF063)            # a table far beyond RAM
    m = types.SimpleNamespace(layout=lay, pm=pm, pgtable=pt, image=None)
    items = [i for i in ptdump.ptdump_walk(m) if isinstance(i, PtRange)]
    assert any(r.start == 0xC0000000 and r.level == ptdump.PMD_LEVEL for r in items)
    assert [i.name for i in ptdump.ptdump_walk(m) if isinstance(i, MarkerLine)][0] == "User Space"


# -- on a live machine ----------------------------------------------------------

@pytest.fixture(scope="module")
def live1g(kernel_flavour):
    from mmemu.machine import Machine
    return Machine("pc-1g", echo=False)


def test_lookup_on_a_live_machine(live1g):
    from mmemu.mm.gfp import GFP_HIGHUSER, GFP_KERNEL
    m = live1g
    assert _owner_of_va(m, 0xC0000000).startswith("reserved: page 0")
    assert _owner_of_va(m, PAGE_OFFSET + m.pgtable.pgd).startswith("page table: swapper_pg_dir")
    assert _owner_of_va(m, 0xC0800000).startswith("free: buddy block of order")
    pfn = m.alloc_pages(GFP_KERNEL, 0)
    assert _owner_of_va(m, PAGE_OFFSET + (pfn << 12)).startswith("allocated: page allocator")
    m.free_pages(pfn, 0)
    assert _owner_of_va(m, PAGE_OFFSET + (pfn << 12)).startswith("free: on the per-cpu page list")
    obj = m.slab.kmalloc(64, GFP_KERNEL)
    assert _owner_of_va(m, obj) == "slab: a slab of cache kmalloc-64"
    high = m.alloc_pages(GFP_HIGHUSER, 0)
    va = m.highmem.kmap(high)
    assert _owner_of_va(m, va).startswith(f"kmap: mapped at 0x{va:08x}, pkmap slot")


def test_lookup_of_vmalloc_on_a_live_machine(live1g):
    m = live1g
    area = m.vmalloc.vmalloc(8192)
    text = _owner_of_va(m, area)
    assert text.startswith(f"vmalloc: mapped at 0x{area:08x}, vmalloc area 0x{area:08x}-"
                           f"0x{area + 12288:08x} (12288 bytes)"), text
    table = m.pgtable.pde(area) & ~0xFFF
    assert _owner_of_va(m, PAGE_OFFSET + table).startswith(
        f"page table mapping 0x{area & ~0x3FFFFF:08x}-")
    lines = ptdump.ptdump_text(m, "vmalloc").splitlines()
    # first the boot's BPF program, locked read-only, and its guard page
    assert lines[1] == (f"0x{area - 8192:08x}-0x{area - 4096:08x}           4K     ro"
                        "                 GLB x  pte")
    assert lines[3] == (f"0x{area:08x}-0x{area + 8192:08x}           8K     RW"
                        "                 GLB x  pte")
