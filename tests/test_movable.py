"""ZONE_MOVABLE (issue 10): kernelcore=/movablecore= in the config, the zone
carved per node as 6.1's find_zone_movable_pfns_for_nodes() does, the views
that show it, the GFP rules that fill it, and the checker that keeps kernel
memory out of it.

Expected numbers were worked out by hand from 6.1's algorithm (the comments
show the arithmetic); pc-1g-movable's are also what the real kernel printed
(docs/oracle-results.md: "Movable zone start ... Node 0: 0x000000003c000000",
HighMem 21506 and Movable 16352 pages spanned and present).
"""
import re
import subprocess
import sys
import textwrap

import pytest

from mmemu.config import MiB, core_option_pages, load_config, movablecore_rounded
from mmemu.errors import ConfigError, PageAllocCorruption
from mmemu.layout import ZONE_DMA, ZONE_HIGHMEM, ZONE_MOVABLE, ZONE_NORMAL
from mmemu.mm import gfp as g
from mmemu.mm import page_alloc as pa
from mmemu.mm.gfp import (
    GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_USER, _GFP_HIGH, _GFP_MOVABLE,
    _GFP_NOWARN, gfp_zone, gfp_zone_bad,
)
from mmemu.mm.mm_init import (
    adjust_zone_range_for_zone_movable, arch_zone_pfn_limits, find_zone_movable_pfns_for_nodes,
)
from mmemu.mm.mmzone import PG_slab, W_FLAGS
from mmemu.mm.mm_init import zone_range_lines
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.vmalloc import check_vmalloc_not_movable
from mmemu.views.procfs import buddyinfo, meminfo, zoneinfo

# The expected numbers are the 686 reference's (pc-1g-movable is one of the
# configs the oracle boots), so this module runs on 686 only; the ZONE_MOVABLE
# arithmetic is the flavour's zone spans fed to the same algorithm, and
# tests/test_pae.py checks it on a 686-pae machine.

# QEMU pc -m 1G: RAM pfns [1, 0x9f) and [0x100, 0x3ffe0), lowmem ends at 0x36bfe.
PC_1G_PAGES = 0x9f - 1 + 0x3ffe0 - 0x100            # 262014 = early_calculate_totalpages()
PC_1G_LOWMEM = 0x9f - 1 + 0x36bfe - 0x100           # 224156 pages below HighMem
PC_1G_HIGHMEM = 0x3ffe0 - 0x36bfe                   # 37858

NUMA_2G = """\
name: numa-2g
memory: {size: 2G}
nodes:
  - {id: 0, ram: [{start: 0, end: 0x9fc00}, {start: 1M, end: 1G}], distance: [10, 20]}
  - {id: 1, ram: [{start: 1G, end: 0x7ffe0000}], distance: [20, 10]}
"""


def write(tmp_path, text, name="machine.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def config_error(tmp_path, text):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value


def zone(mm, nid, zid):
    return mm.node_data[nid].node_zones[zid]


# -- config: kernelcore= / movablecore= --------------------------------------------------

def test_core_option_pages_size_and_percent():
    assert core_option_pages("64M", PC_1G_PAGES) == 16384
    assert core_option_pages("10%", PC_1G_PAGES) == PC_1G_PAGES * 1000 // 10000   # 26201
    assert core_option_pages(None, PC_1G_PAGES) == 0
    assert movablecore_rounded(256, PC_1G_PAGES) == 1024      # whole MAX_ORDER blocks
    assert movablecore_rounded(10 ** 9, PC_1G_PAGES) == PC_1G_PAGES


def test_kernelcore_accepted_when_movable_fits_highmem(tmp_path):
    cfg = load_config(write(tmp_path, "memory: {size: 1G}\nkernelcore: 90%\n"))
    assert cfg.kernelcore == "90%"


@pytest.mark.parametrize("value", ["512M", "50%"])
def test_kernelcore_too_small_leaves_more_than_highmem(tmp_path, value):
    # Everything below HighMem is kernel memory anyway: kernelcore < 224156
    # pages would ask for a ZONE_MOVABLE larger than HighMem's 37858 pages.
    err = config_error(tmp_path, f"memory: {{size: 1G}}\nkernelcore: {value}\n")
    assert err.key == "kernelcore"
    assert "more than the highest populated zone, HighMem, holds (37858 pages)" in err.message
    assert f"the {PC_1G_LOWMEM} pages below HighMem are kernel memory" in err.message


@pytest.mark.parametrize("value", ["2G", "100%"])
def test_kernelcore_not_less_than_ram(tmp_path, value):
    err = config_error(tmp_path, f"memory: {{size: 1G}}\nkernelcore: {value}\n")
    assert err.key == "kernelcore"
    assert f"not less than the {PC_1G_PAGES} pages of RAM" in err.message
    assert "no ZONE_MOVABLE" in err.message


def test_movablecore_percent_accepted_and_too_large(tmp_path):
    assert load_config(write(tmp_path, "memory: {size: 1G}\nmovablecore: 10%\n"))
    err = config_error(tmp_path, "memory: {size: 1G}\nmovablecore: 15%\n")   # 39302 pages
    assert err.key == "movablecore" and "(39302 pages)" in err.message


def test_kernelcore_and_movablecore_that_agree_give_movablecores_zone(tmp_path, mm_boot):
    # 900M (230400 pages) + 64M (16384) <= 262014: Linux takes
    # kernelcore = max(230400, 262014 - 16384): movablecore decides.
    cfg = load_config(write(tmp_path, "memory: {size: 1G}\nkernelcore: 900M\n"
                                      "movablecore: 64M\n"))
    assert mm_boot(cfg).movable_start == mm_boot("pc-1g-movable").movable_start == {0: 0x3c000}


def test_kernelcore_and_movablecore_that_disagree(tmp_path):
    # 1000M (256000 pages) + 64M (16384) > 262014: Linux would keep kernelcore
    # and give ZONE_MOVABLE only 6014 pages, not the 64M asked for.
    err = config_error(tmp_path, "memory: {size: 1G}\nkernelcore: 1000M\nmovablecore: 64M\n")
    assert err.key == "kernelcore"
    assert "both given and disagree" in err.message
    assert "shrink ZONE_MOVABLE to 6014 pages" in err.message
    assert f"at most {PC_1G_PAGES - 16384} pages" in err.message


def test_movable_config_errors_in_the_cli_exit_2(tmp_path):
    path = write(tmp_path, "memory: {size: 1G}\nkernelcore: 100M\n")
    r = subprocess.run([sys.executable, "-m", "mmemu.cli", "info", "--config", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{path}: kernelcore: kernelcore 100M (25600 pages)" in r.stderr


# -- zones: find_zone_movable_pfns_for_nodes, adjust_zone_range_for_zone_movable -------

def test_arch_zone_pfn_limits_pc_1g(mm_boot):
    mm = mm_boot("pc-1g")
    assert arch_zone_pfn_limits(mm.layout) == [(1, 0x1000), (0x1000, 0x36bfe),
                                               (0x36bfe, 0x3ffe0), (0, 0)]


def test_movablecore_64m_matches_the_real_kernel(mm_boot):
    # kernelcore = 262014 - 16384 = 245630; 224156 below HighMem, so 21474
    # HighMem pages: 0x36bfe + 21474 = 245728, rounded up to 245760 (0x3c000).
    mm = mm_boot("pc-1g-movable")
    assert mm.movable_start == {0: 0x3c000}
    assert (mm.movable_zone, mm.movable_is_highmem) == (ZONE_HIGHMEM, True)
    high, movable = zone(mm, 0, ZONE_HIGHMEM), zone(mm, 0, ZONE_MOVABLE)
    assert (high.zone_start_pfn, high.spanned_pages, high.present_pages) == (0x36bfe, 21506, 21506)
    assert (movable.zone_start_pfn, movable.spanned_pages, movable.present_pages) == \
        (0x3c000, 16352, 16352)
    assert high.managed_pages + movable.managed_pages == PC_1G_HIGHMEM
    assert movable.is_highmem


def test_kernelcore_size_equivalent_to_movablecore(mm_boot):
    pages = PC_1G_PAGES - 16384
    mm = mm_boot("pc-1g", kernelcore=f"{pages * 4}K")
    assert mm.movable_start == {0: 0x3c000}


def test_kernelcore_percent(mm_boot):
    # 90%: 262014 * 9000 // 10000 = 235812; 0x36bfe + (235812 - 224156) =
    # 235910, rounded up to 236544.
    assert mm_boot("pc-1g", kernelcore="90%").movable_start == {0: 236544}


def test_movablecore_rounds_up_to_a_whole_block(mm_boot):
    # 1M is 256 pages, taken as 1024: kernelcore 260990, start 261088 ->
    # 261120; the zone is the 992 pages up to the end of RAM (0x3ffe0).
    mm = mm_boot("pc-1g", movablecore="1M")
    movable = zone(mm, 0, ZONE_MOVABLE)
    assert (movable.zone_start_pfn, movable.spanned_pages) == (261120, 992)


def test_no_options_no_movable_zone(mm_boot):
    mm = mm_boot("pc-1g")
    assert mm.movable_start == {} and not zone(mm, 0, ZONE_MOVABLE).populated
    assert find_zone_movable_pfns_for_nodes(mm.cfg, mm.layout, ZONE_HIGHMEM) == {}


def test_kernelcore_spread_over_two_nodes(tmp_path, mm_boot):
    # T = 158 + 261888 + 262112 = 524158; kernelcore 50% = 262079, 131039
    # per node.  Node 0: 224156 pages below HighMem use up its share (zmp
    # 0x36bfe); required 37923.  Node 1: share recomputed 18961, all HighMem:
    # zmp 281105; required 18962.  Second pass, one node: node 0 takes
    # 18962 more HighMem pages: zmp 243216.  Rounded: 243712 and 281600.
    mm = mm_boot(load_config(write(tmp_path, NUMA_2G + "kernelcore: 50%\n")))
    assert mm.movable_start == {0: 243712, 1: 281600}
    spans = [(z.node, z.name, z.zone_start_pfn, z.spanned_pages) for z in mm.zones
             if z.zone_idx >= ZONE_HIGHMEM]
    assert spans == [(0, "HighMem", 0x36bfe, 243712 - 0x36bfe), (0, "Movable", 243712, 18432),
                     (1, "HighMem", 0x40000, 281600 - 0x40000),
                     (1, "Movable", 281600, 0x7ffe0 - 281600)]
    check_page_alloc(mm)


def test_movablecore_on_numa_2n_only_where_highmem_is(mm_boot):
    # HighMem lies on node 1 only.  kernelcore = 262014 - 25600 = 236414;
    # node 0's 130974 pages and node 1's 93182 Normal pages count first;
    # the rest, 12258, is node 1's HighMem: 224254 + 12258 -> 236544.
    mm = mm_boot("numa-2n", movablecore="100M")
    assert mm.movable_start == {1: 236544}
    assert not zone(mm, 0, ZONE_MOVABLE).populated
    assert zone(mm, 1, ZONE_MOVABLE).spanned_pages == 0x3ffe0 - 236544


def test_movable_carved_from_normal_without_highmem(mm_boot):
    # 128 MiB: no HighMem, so movable_zone is Normal and Movable is lowmem.
    mm = mm_boot("pc-128m", movablecore="64M")
    assert (mm.movable_zone, mm.movable_is_highmem) == (ZONE_NORMAL, False)
    assert mm.movable_start == {0: 0x4000}
    assert not zone(mm, 0, ZONE_MOVABLE).is_highmem
    assert zone(mm, 0, ZONE_NORMAL).zone_end_pfn == 0x4000
    pfn = pa.alloc_pages(mm, GFP_HIGHUSER_MOVABLE, 0)
    assert pa.page_zonenum(mm, pfn) == ZONE_MOVABLE and not pa.PageHighMem(mm, pfn)
    assert pa.page_address(mm, pfn) == 0xC0000000 + (pfn << 12)     # in the direct map


@pytest.mark.parametrize("zid, span, expected", [
    (ZONE_MOVABLE, (0, 0), (1000, 1800)),        # Movable: zmp to the node's end
    (ZONE_HIGHMEM, (500, 1800), (500, 1000)),    # zmp inside: the zone ends there
    (ZONE_NORMAL, (100, 500), (100, 500)),       # wholly below: untouched
    (ZONE_HIGHMEM, (1200, 1800), (1800, 1800)),  # wholly above: empty
])
def test_adjust_zone_range_for_zone_movable(zid, span, expected):
    assert adjust_zone_range_for_zone_movable(zid, 1000, 1800, 2000, *span) == expected


# -- views: dmesg, buddyinfo, zoneinfo, meminfo ----------------------------------------

def test_dmesg_movable_zone_start_lines(tmp_path, mm_boot):
    mm = mm_boot("pc-1g-movable")
    lines = zone_range_lines(mm.layout, mm.movable_start)
    i = lines.index("Movable zone start for each node")
    assert lines[i + 1:i + 3] == ["  Node 0: 0x000000003c000000", "Early memory node ranges"]
    mm = mm_boot(load_config(write(tmp_path, NUMA_2G + "kernelcore: 50%\n")))
    lines = zone_range_lines(mm.layout, mm.movable_start)
    i = lines.index("Movable zone start for each node")
    assert lines[i + 1:i + 3] == [f"  Node 0: {243712 << 12:#018x}",
                                  f"  Node 1: {281600 << 12:#018x}"]


def test_mmemu_info_prints_movable_zone_start():
    r = subprocess.run([sys.executable, "-m", "mmemu.cli", "info", "--config", "pc-1g-movable"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("Movable zone start for each node\n  Node 0: 0x000000003c000000\n"
            "Early memory node ranges\n") in r.stdout
    assert "K/1048056K available" in r.stdout and ", 151432K highmem)" in r.stdout


def test_buddyinfo_lists_movable(mm_boot):
    lines = buddyinfo(mm_boot("pc-1g-movable")).splitlines()
    assert [ln[:21] for ln in lines] == ["Node 0, zone      DMA", "Node 0, zone   Normal",
                                         "Node 0, zone  HighMem", "Node 0, zone  Movable"]


def _zoneinfo_numbers(text, name):
    block = re.split(r"(?m)^(?=Node \d, zone)", text)
    block = next(b for b in block if b.startswith(f"Node 0, zone {name:>8s}"))
    return tuple(int(re.search(rf"(?m)^ +{k} +(\d+)$", block).group(1))
                 for k in ("spanned", "present", "managed"))


def test_zoneinfo_highmem_shrinks_by_movable(mm_boot):
    plain, movable = mm_boot("pc-1g"), mm_boot("pc-1g-movable")
    assert _zoneinfo_numbers(zoneinfo(plain), "HighMem") == (37858, 37858, 37858)
    assert _zoneinfo_numbers(zoneinfo(movable), "HighMem") == (21506, 21506, 21506)
    assert _zoneinfo_numbers(zoneinfo(movable), "Movable") == (16352, 16352, 16352)
    assert "start_pfn:           245760" in zoneinfo(movable)


def _meminfo_kb(text):
    return {k: int(v) for k, v in re.findall(r"(?m)^(\w+):\s+(\d+) kB$", text)}


def test_meminfo_totals_count_movable_as_highmem(mm_boot):
    plain, movable = _meminfo_kb(meminfo(mm_boot("pc-1g"))), _meminfo_kb(meminfo(mm_boot(
        "pc-1g-movable")))
    for key in ("MemTotal", "MemFree", "HighTotal", "HighFree", "LowTotal", "LowFree"):
        assert movable[key] == plain[key], key
    assert movable["HighTotal"] == PC_1G_HIGHMEM * 4


def test_meminfo_movable_from_normal_is_lowmem(mm_boot):
    info = _meminfo_kb(meminfo(mm_boot("pc-128m", movablecore="64M")))
    assert info["HighTotal"] == 0 and info["LowTotal"] == info["MemTotal"]


# -- GFP: zone selection and fallback ----------------------------------------------------

def test_gfp_movable_values():
    assert g.__GFP_MOVABLE == 0x08
    assert GFP_HIGHUSER_MOVABLE == GFP_HIGHUSER | 0x08 == 0x100CCA


# include/linux/gfp.h's table, written out: the zone modifiers 0x0..0xf.
GFP_ZONE_REFERENCE = {0x0: ZONE_NORMAL, 0x1: ZONE_DMA, 0x2: ZONE_HIGHMEM, 0x4: ZONE_NORMAL,
                      0x8: ZONE_NORMAL, 0x9: ZONE_DMA, 0xA: ZONE_MOVABLE, 0xC: ZONE_NORMAL}


@pytest.mark.parametrize("bits", range(16))
def test_gfp_zone_every_modifier_combination(bits):
    if bits in GFP_ZONE_REFERENCE:
        assert not gfp_zone_bad(bits) and gfp_zone(bits) == GFP_ZONE_REFERENCE[bits]
        assert gfp_zone(GFP_KERNEL | bits) == GFP_ZONE_REFERENCE[bits]
    else:
        assert gfp_zone_bad(bits)


def test_zonelist_movable_highmem_normal_dma(mm_boot):
    mm = mm_boot("pc-1g-movable")
    assert [z.name for z in mm.node_data[0].node_zonelists[0]] == \
        ["Movable", "HighMem", "Normal", "DMA"]


def test_highuser_movable_fills_movable_then_highmem_then_normal(mm_boot):
    mm = mm_boot("pc-1g-movable")
    order, count = [], 0
    while True:
        pfn = pa.alloc_pages(mm, GFP_HIGHUSER_MOVABLE | _GFP_NOWARN, 0)
        zid = pa.page_zonenum(mm, pfn)
        if not order or order[-1] != zid:
            order.append(zid)
        count += 1
        if zid == ZONE_NORMAL:
            break
    assert order == [ZONE_MOVABLE, ZONE_HIGHMEM, ZONE_NORMAL]
    # all but the two zones' low watermarks (Movable 235, HighMem 299 with THP's
    # min_free_kbytes), and a few pages the per-cpu lists keep
    assert PC_1G_HIGHMEM - (235 + 299) - 8 <= count <= PC_1G_HIGHMEM - (235 + 299) + 1
    check_page_alloc(mm)


@pytest.mark.parametrize("gfp", [GFP_KERNEL | _GFP_HIGH, GFP_HIGHUSER, GFP_USER,
                                 GFP_KERNEL | _GFP_MOVABLE])
def test_non_movable_masks_never_touch_movable(mm_boot, gfp):
    """Run the allocator dry with a mask lacking MOVABLE|HIGHMEM: Movable stays whole."""
    mm = mm_boot("pc-1g-movable")
    movable = zone(mm, 0, ZONE_MOVABLE)
    before = movable.nr_free_pages
    while (pfn := pa.alloc_pages(mm, gfp | _GFP_NOWARN, 3)) is not None:
        assert pa.page_zonenum(mm, pfn) != ZONE_MOVABLE
    assert movable.nr_free_pages == before
    check_page_alloc(mm)


def test_get_free_pages_highuser_movable_is_lowmem(mm_boot):
    mm = mm_boot("pc-1g-movable")
    addr = pa._get_free_pages(mm, GFP_HIGHUSER_MOVABLE, 0)     # __GFP_HIGHMEM dropped
    assert pa.page_zonenum(mm, pa.virt_to_page(mm, addr)) == ZONE_NORMAL


# -- the checker: no kernel memory in ZONE_MOVABLE ---------------------------------------

@pytest.fixture(scope="module")
def machine(kernel_flavour):
    from mmemu.machine import Machine
    return Machine("pc-1g-movable", echo=False)


def test_kernel_allocations_stay_out_of_movable(machine):
    """Slab, large kmalloc, vmalloc and its page tables, with hostile masks too."""
    m = machine
    cache = m.slab.kmem_cache_create("movable_test", 200)
    objs = [m.slab.kmem_cache_alloc(cache) for _ in range(3000)]
    big = m.slab.kmalloc(64 * 1024, GFP_KERNEL)
    stray = m.slab.kmalloc(64 * 1024, GFP_HIGHUSER_MOVABLE)   # kmalloc_fix_flags() drops HIGHMEM
    area = m.vmalloc.vmalloc(8 * MiB)
    for va in objs + [big, stray]:
        assert pa.page_zonenum(m.mm, (va - 0xC0000000) >> 12) != ZONE_MOVABLE
    assert all(pa.page_zonenum(m.mm, pfn) != ZONE_MOVABLE
               for pfn in m.vmalloc.find_vm_area(area).pages)
    assert zone(m.mm, 0, ZONE_MOVABLE).nr_free_pages > 0
    m.check()


def test_vmalloc_with_gfp_movable_may_use_movable(machine):
    m = machine
    area = m.vmalloc._vmalloc(16 * 4096, GFP_HIGHUSER_MOVABLE)
    vm = m.vmalloc.find_vm_area(area)
    assert all(pa.page_zonenum(m.mm, pfn) == ZONE_MOVABLE for pfn in vm.pages)
    m.check()
    vm.gfp_mask = GFP_KERNEL                    # now it claims to be kernel memory
    with pytest.raises(PageAllocCorruption, match="in ZONE_MOVABLE without __GFP_MOVABLE"):
        check_vmalloc_not_movable(m.mm, m.vmalloc.areas())
    with pytest.raises(PageAllocCorruption):
        m.check()
    vm.gfp_mask = GFP_HIGHUSER_MOVABLE
    m.vmalloc.vfree(area)
    m.check()


def test_checker_catches_a_slab_page_in_movable(mm_boot):
    mm = mm_boot("pc-1g-movable")
    pfn = pa.alloc_pages(mm, GFP_HIGHUSER_MOVABLE, 0)
    check_page_alloc(mm)
    mm.u32[mm.mbase + pfn * 10 + W_FLAGS] |= 1 << PG_slab
    with pytest.raises(PageAllocCorruption,
                       match=rf"Movable: pfn {pfn:#x} is a slab page \(PG_slab\)"):
        check_page_alloc(mm)


def test_checker_catches_a_page_table_page_in_movable(mm_boot):
    mm = mm_boot("pc-1g-movable")
    pfn = pa.alloc_pages(mm, GFP_HIGHUSER_MOVABLE, 0)
    pa.pgtable_page_ctor(mm, pfn)
    with pytest.raises(PageAllocCorruption, match=r"page-table page \(PageTable\): kernel memory"):
        check_page_alloc(mm)
    pa.pgtable_page_dtor(mm, pfn)
    check_page_alloc(mm)


def test_page_tables_and_slab_outside_movable_is_fine(mm_boot):
    """The same marks on a Normal page are no fault of ZONE_MOVABLE's."""
    mm = mm_boot("pc-1g-movable")
    pfn = pa.alloc_pages(mm, GFP_KERNEL, 0)
    pa.pgtable_page_ctor(mm, pfn)
    check_page_alloc(mm)
