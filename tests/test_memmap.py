"""Tests for mmemu.views.memmap: the PNG and SVG pictures of physical memory.

The PNG is decoded here with zlib alone (filter bytes, palette), so the test
checks the file a viewer would read, not the encoder's own state.
"""
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest

from mmemu.layout import KERNEL_PHYS, PAGE_SHIFT
from mmemu.views import memmap, owner

from test_ptdump_fixtures import CACHE_NAME, build_machine


@pytest.fixture(scope="module")
def m16():
    return build_machine("pc-16m")


def decode_png(data):
    """(width, height, rows of RGB tuples) of an 8-bit indexed PNG."""
    assert data[:8] == memmap.PNG_SIGNATURE
    pos, chunks = 8, {}
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, ctype) == (8, 3)
    palette = [tuple(chunks[b"PLTE"][i:i + 3]) for i in range(0, len(chunks[b"PLTE"]), 3)]
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (width + 1)
    rows = []
    for y in range(height):
        line = raw[y * (width + 1):(y + 1) * (width + 1)]
        assert line[0] == 0                       # filter type None
        rows.append([palette[i] for i in line[1:]])
    assert b"IEND" in chunks
    return width, height, rows


def test_png_is_valid_and_colours_known_frames(m16, tmp_path):
    path = tmp_path / "m.png"
    pic = memmap.write_memmap(m16, path)
    width, height, rows = decode_png(path.read_bytes())
    assert (width, height) == (pic.width, pic.height)
    expect = {
        0xA0: "no-ram", 0: "reserved", KERNEL_PHYS >> PAGE_SHIFT: "kernel-image",
        m16.mem_map.phys >> PAGE_SHIFT: "mem_map", m16.pgtable.pgd >> PAGE_SHIFT: "pgtable",
        0x400: "free-10", m16.vmalloc_pfn: "vmalloc", m16.kmap_pfn: "kmap",
        m16.table_pfn: "pgtable",
    }
    for pfn, kind in m16.truth.items():
        if kind in ("allocated", "unused"):
            expect[pfn] = kind
    for pfn, kind in expect.items():
        x, y = pic.frame_xy(pfn)
        assert rows[y][x] == memmap.kind_colour(kind), (hex(pfn), kind)
    slab = [pfn for pfn, k in m16.truth.items() if k == "slab"]
    x, y = pic.frame_xy(slab[0])
    index = next(i for i, label in pic.legend if label == f"slab {CACHE_NAME}")
    assert rows[y][x] == memmap.PALETTE[index]


def test_frame_kinds_agree_with_the_lookup(m16):
    fm = memmap.frame_classes(m16)
    for pfn in list(m16.truth) + [0x300, 0x400, 0x401, 0x100, m16.pgtable.pgd >> PAGE_SHIFT]:
        kind = fm.kind_of(pfn).partition(":")[0]          # "slab:<cache>" -> "slab"
        kind = "free" if kind.startswith("free-") else kind
        assert kind == owner.page_owner(m16, pfn).kind, hex(pfn)


def test_legend_names_zones_nodes_and_caches(m16):
    labels = [label for _, label in memmap.memmap_picture(m16).legend]
    assert "zone DMA node 0 pfn 0x1-0x800" in labels
    assert "zone Normal node 0 pfn 0x800-0x1000" in labels
    assert "node 0" in labels and f"slab {CACHE_NAME}" in labels
    assert "free, order 10" in labels


def test_span_all_shows_the_devices(m16):
    fm = memmap.frame_classes(m16, span="all")
    assert len(fm.classes) == 1 << 20
    uart = m16.cfg.devices[0]
    assert fm.kind_of(uart.base >> PAGE_SHIFT) == "device"
    assert fm.kind_of(0x2000000 >> PAGE_SHIFT) == "no-ram"


def test_svg_is_well_formed_with_rects_and_legend(m16, tmp_path):
    path = tmp_path / "m.svg"
    pic = memmap.write_memmap(m16, path)
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and int(root.get("width")) == pic.width
    rects = root.findall(f"{ns}rect")
    texts = [t.text for t in root.findall(f"{ns}text")]
    assert len(rects) > 20 and f"slab {CACHE_NAME}" in texts
    x, y = pic.frame_xy(0x400)
    green = "#%02x%02x%02x" % memmap.kind_colour("free-10")
    assert any(r.get("fill") == green and int(r.get("x")) <= x < int(r.get("x"))
               + int(r.get("width")) and int(r.get("y")) == y for r in rects)


def test_bad_format_and_span_are_usage_errors(m16, tmp_path):
    from mmemu.errors import UsageError
    with pytest.raises(UsageError, match="png or svg"):
        memmap.write_memmap(m16, tmp_path / "m.gif")
    with pytest.raises(UsageError, match="span"):
        memmap.frame_classes(m16, span="half")


def test_geometry_is_about_square():
    assert memmap.default_geometry(4096) == (64, 8)
    assert memmap.default_geometry(983040) == (1024, 1)


def test_live_machine_frames(tmp_path):
    try:
        from mmemu.machine import Machine
        m = Machine("pc-16m", echo=False)
    except Exception as e:          # noqa: BLE001 - the machine is optional here
        pytest.skip(f"no bootable Machine yet: {type(e).__name__}: {e}")
    from mmemu.mm.gfp import GFP_KERNEL
    obj = m.slab.kmalloc(32, GFP_KERNEL)
    kept, freed = m.alloc_pages(GFP_KERNEL, 0), m.alloc_pages(GFP_KERNEL, 0)
    m.free_pages(freed, 0)
    fm = memmap.frame_classes(m)
    assert fm.kind_of(kept) == "allocated"
    assert fm.kind_of(freed) == "pcp"
    assert fm.kind_of((obj - 0xC0000000) >> PAGE_SHIFT) == "slab:kmalloc-32"
    assert fm.kind_of(m.pgtable.pgd >> PAGE_SHIFT) == "pgtable"
    _, _, rows = decode_png(memmap.png_bytes(memmap.memmap_picture(m)))
    assert rows
