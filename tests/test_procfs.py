"""views/procfs.py: buddyinfo, zoneinfo and meminfo in 6.1's exact line formats."""
import re

from mmemu.mm import page_alloc as pa
from mmemu.mm.pcp import drain_all_pages
from mmemu.mm.gfp import GFP_HIGHUSER, GFP_KERNEL
from mmemu.mm.watermark import _setup_per_zone_wmarks, setup_per_zone_lowmem_reserve
from mmemu.views.procfs import buddyinfo, meminfo, zoneinfo
import pytest

pytestmark = pytest.mark.flavours

BUDDY_LINE = re.compile(r"^Node \d, zone [ A-Za-z]{8} ( {0,5}\d+ ){11}$")
MEMINFO_KB = re.compile(r"^[A-Za-z0-9_()]+: *\d+ kB$")


def test_buddyinfo_format_and_populated_zones_only(mm_boot):
    text = buddyinfo(mm_boot("pc-1g"))
    lines = text.splitlines()
    assert text.endswith(" \n")                       # "%6lu " leaves a trailing space
    assert [ln[:21] for ln in lines] == ["Node 0, zone      DMA", "Node 0, zone   Normal",
                                         "Node 0, zone  HighMem"]
    assert all(BUDDY_LINE.match(ln) for ln in lines)
    # the first MiB held, then free to 16 MiB (the kernel image starts there)
    assert lines[0] == ("Node 0, zone      DMA      0      0      0      0      0      0      0"
                        "      0      1      1      3 ")


def test_buddyinfo_numa_nodes(mm_boot):
    lines = buddyinfo(mm_boot("numa-2n")).splitlines()
    assert [ln[:21] for ln in lines] == ["Node 0, zone      DMA", "Node 0, zone   Normal",
                                         "Node 1, zone   Normal", "Node 1, zone  HighMem"]


def test_buddyinfo_follows_allocations(mm_16m):
    before = buddyinfo(mm_16m)
    pfn = pa.alloc_pages(mm_16m, GFP_KERNEL, 10)
    assert buddyinfo(mm_16m) != before
    pa._free_pages(mm_16m, pfn, 10)
    assert buddyinfo(mm_16m) == before


def _zone_text(text, node, name):
    blocks = re.split(r"(?m)^(?=Node \d, zone)", text)
    return next(b for b in blocks if b.startswith(f"Node {node}, zone {name:>8s}"))


def test_zoneinfo_lists_all_four_zones(mm_boot):
    text = zoneinfo(mm_boot("pc-1g"))
    heads = re.findall(r"(?m)^Node \d, zone +\w+$", text)
    assert heads == ["Node 0, zone      DMA", "Node 0, zone   Normal", "Node 0, zone  HighMem",
                     "Node 0, zone  Movable"]


def test_zoneinfo_reference_numbers(mm_boot):
    mm = mm_boot("qemu-pc-1g")
    dma, normal, high, _ = mm.node_data[0].node_zones
    dma.managed_pages, normal.managed_pages, high.managed_pages = 3840, 213300, 37858
    dma.nr_free_pages = 3840
    mm.min_free_kbytes = 43144
    _setup_per_zone_wmarks(mm)
    setup_per_zone_lowmem_reserve(mm)
    block = _zone_text(zoneinfo(mm), 0, "DMA")
    assert block.startswith("Node 0, zone      DMA\n  per-node stats\n      nr_inactive_anon 0\n")
    assert ("  pages free     3840\n"
            "        boost    0\n"
            "        min      190\n"
            "        low      237\n"
            "        high     284\n"
            "        spanned  4095\n"
            "        present  3998\n"
            "        managed  3840\n"
            "        cma      0\n"
            "        protection: (0, 833, 981, 981)\n"
            "      nr_free_pages 3840\n") in block
    assert block.endswith("  node_unreclaimable:  0\n  start_pfn:           1\n")
    assert "  pagesets\n    cpu: 0\n              count: 0\n              high:  " in block
    assert "per-node stats" not in _zone_text(zoneinfo(mm), 0, "Normal")


def test_zoneinfo_unpopulated_zone_short_form(mm_boot):
    block = _zone_text(zoneinfo(mm_boot("pc-1g")), 0, "Movable")
    assert block == ("Node 0, zone  Movable\n"
                     "  pages free     0\n"
                     "        boost    0\n"
                     "        min      32\n"
                     "        low      32\n"
                     "        high     32\n"
                     "        spanned  0\n"
                     "        present  0\n"
                     "        managed  0\n"
                     "        cma      0\n"
                     "        protection: (0, 0, 0, 0)\n")


def test_zoneinfo_pageset_counts_pcp_pages(mm_boot):
    mm = mm_boot("pc-1g")
    drain_all_pages(mm)                     # the boot's late frees wait there
    pa.alloc_pages(mm, GFP_KERNEL, 0)
    normal = mm.zones[1]
    block = _zone_text(zoneinfo(mm), 0, "Normal")
    # high is the zone's low watermark (raised by THP's min_free_kbytes), batch 63
    assert normal.per_cpu_pageset.high == normal.low_wmark_pages()
    assert (f"              count: 62\n              high:  {normal.low_wmark_pages()}\n"
            "              batch: 63\n") in block
    assert "  vm stats threshold: 8\n" in block


def test_meminfo_lines_and_values(mm_boot, kernel_flavour):
    mm = mm_boot("pc-1g")
    # HighMem: 37858 pages on 686, 36834 on 686-pae, as 6.1 says
    high_pages = {"686": 37858, "686-pae": 36834}[kernel_flavour]
    hpage_kb = {"686": 4096, "686-pae": 2048}[kernel_flavour]
    pa.alloc_pages(mm, GFP_HIGHUSER, 3)
    text = meminfo(mm, {"SReclaimable": 100, "SUnreclaim": 300, "VmallocUsed": 12,
                        "DirectMap4k": 8192, "DirectMap4M": 892928})
    lines = text.splitlines()
    fields = dict(re.match(r"^([^:]+): *(\d+)", ln).groups() for ln in lines)
    assert all(MEMINFO_KB.match(ln) for ln in lines if not ln.startswith("HugePages_"))
    assert lines[0] == f"MemTotal:       {pa.totalram_pages(mm) * 4:>8d} kB"
    assert int(fields["MemFree"]) == pa.nr_free_pages(mm) * 4
    assert int(fields["HighTotal"]) == high_pages * 4
    # the order-3 pcp list took a batch of two blocks off the buddy lists
    assert int(fields["HighFree"]) == (high_pages - 2 * 8) * 4
    assert int(fields["LowTotal"]) + int(fields["HighTotal"]) == int(fields["MemTotal"])
    assert (fields["Slab"], fields["SReclaimable"], fields["SUnreclaim"]) == ("400", "100", "300")
    assert fields["VmallocTotal"] == "122880" and fields["VmallocUsed"] == "12"
    assert lines[-2:] == ["DirectMap4k:        8192 kB", "DirectMap4M:      892928 kB"]
    assert "HugePages_Total:       0" in lines and f"Hugepagesize:   {hpage_kb:>8d} kB" in lines
    order = [ln.split(":")[0] for ln in lines]
    assert order.index("MemAvailable") == 2 and order.index("HighTotal") < order.index("Slab")
