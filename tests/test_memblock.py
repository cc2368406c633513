"""mm/memblock.py: the boot reservations and memblock_alloc()."""
import pytest

from mmemu.config import MiB, load_config
from mmemu.errors import MmemuError
from mmemu.layout import PAGE_SIZE, compute_layout
from mmemu.mm.memblock import Memblock, alloc_mem_map, memblock_init
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE


def _mb(name="pc-1g"):
    cfg = load_config(name)
    layout = compute_layout(cfg)
    return memblock_init(cfg, layout), cfg, layout


def test_memblock_init_memory_is_the_layout():
    mb, _, layout = _mb()
    assert [(r.nid, r.base >> 12, r.end >> 12) for r in mb.memory] == layout.memory
    assert [(r.base, r.end) for r in mb.memory] == [(0x1000, 0x9f000), (0x100000, 0x3ffe0000)]


def test_memblock_init_reserves_first_mib_and_image():
    mb, cfg, _ = _mb()
    assert [(r.base, r.size, r.name) for r in mb.reserved] == [
        (0, 1 * MiB, "first MiB"), (1 * MiB, cfg.kernel_image, "kernel image")]
    assert mb.is_reserved(0x9e000) and mb.is_reserved(1 * MiB + cfg.kernel_image - 1)
    assert not mb.is_reserved(1 * MiB + cfg.kernel_image)


def test_memblock_alloc_top_down_below_max_low_pfn():
    mb, _, layout = _mb()
    pa = mb.alloc(PAGE_SIZE, PAGE_SIZE, "pgd")
    assert pa == (layout.max_low_pfn << 12) - PAGE_SIZE       # highest lowmem page
    assert mb.alloc(PAGE_SIZE, PAGE_SIZE, "pte") == pa - PAGE_SIZE
    assert mb.reserved[-1].name == "pgd"


def test_memblock_alloc_aligns_down():
    mb, _, layout = _mb()
    top = layout.max_low_pfn << 12                               # 0x36bfe000
    assert mb.alloc(100, 4 * MiB, "big-aligned") == (top - 100) & ~(4 * MiB - 1)


def test_memblock_alloc_skips_reserved_and_fails_cleanly():
    mb = Memblock(current_limit=0x20000)
    mb.add_node(0x1000, 0x1f000, 0)
    mb.reserve(0x10000, 0x10000, "held")
    assert mb.alloc(0x8000, PAGE_SIZE, "a") == 0x8000
    with pytest.raises(MmemuError, match="cannot allocate 0x8000 bytes"):
        mb.alloc(0x8000, PAGE_SIZE, "b")


def test_memblock_free_ranges_and_phys_free():
    mb = Memblock(current_limit=0x100000)
    mb.add_node(0x1000, 0xff000, 0)
    mb.reserve(0x4000, 0x2000, "x")
    assert mb.free_ranges() == [(0, 0x1000, 0x4000), (0, 0x6000, 0x100000)]
    mb.phys_free(0x4000, 0x1000)
    assert mb.free_ranges() == [(0, 0x1000, 0x5000), (0, 0x6000, 0x100000)]


def test_alloc_mem_map_one_struct_page_per_pfn():
    mb, _, layout = _mb()
    memmap = alloc_mem_map(mb, layout)
    assert memmap.nr_pages == layout.max_pfn
    assert memmap.phys % PAGE_SIZE == 0
    assert memmap.phys + layout.max_pfn * STRUCT_PAGE_SIZE <= layout.max_low_pfn << 12
    assert mb.reserved[-1].name == "mem_map"
