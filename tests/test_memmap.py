"""Tests for the memory picture (mmemu.views.memmap*): what a user looking
at it would notice.

The PNG is decoded here with zlib alone (filter bytes, palette), so the
tests check the file a viewer reads, not the encoder's state; the SVG is
parsed with ElementTree.  Guest programs run for real: what they print
(pfns they hold) is what the picture must show.
"""
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmemu.errors import UsageError
from mmemu.layout import PAGE_SHIFT
from mmemu.machine import Machine
from mmemu import cli_memmap
from mmemu.views import memmap, owner
from mmemu.views.memmap_draw import CHANGE_RGB, build_picture, code_rgb, faded, node_rgb, zone_rgb
from mmemu.views.memmap_image import PNG_SIGNATURE, png_bytes
from mmemu.views.page_types import page_types_counts

from test_ptdump_fixtures import CACHE_NAME, build_machine

ROOT = Path(__file__).resolve().parent.parent
HOLD = str(ROOT / "guest" / "examples" / "hold_memory.c")
SVG = "{http://www.w3.org/2000/svg}"
RED, BLUE = CHANGE_RGB[memmap.ALLOCATED], CHANGE_RGB[memmap.FREED]

pytestmark = pytest.mark.flavours


def decode_png(data):
    """(width, height, rows of RGB tuples) of an 8-bit indexed PNG."""
    assert data[:8] == PNG_SIGNATURE
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


def options(**kw):
    """The parsed options of `mmemu memmap`, with these set."""
    base = dict(config="pc-16m", after=None, snapshot=None, before=None, no_diff=False,
                output="m.png", format=None, span="ram", zoom=None, cols=None, scale=None)
    base.update(kw)
    return SimpleNamespace(**base)


def picture(args):
    """(target, Picture) as `mmemu memmap` makes them for args."""
    target = cli_memmap.open_target(args)
    return target, cli_memmap.draw(target, args)


def held_pfns(console):
    """{pfn: what} for every frame hold_memory.c says it holds."""
    out = {}
    for line in console.splitlines():
        m = re.match(r"hold_memory: (.+?)\s+pfn (0x[0-9a-f]+)-(0x[0-9a-f]+) \(", line)
        if m and "vmalloc" not in m.group(1):
            for pfn in range(int(m.group(2), 16), int(m.group(3), 16) + 1):
                out[pfn] = m.group(1)
    return out


@pytest.fixture(scope="module")
def m16(kernel_flavour):
    return build_machine("pc-16m")


@pytest.fixture(scope="module")
def after_hold_1g(tmp_path_factory, kernel_flavour):
    """pc-1g before and after hold_memory.c: its console, the target and PNG rows."""
    target, pic = picture(options(config="pc-1g", after=HOLD))
    console = target.machine.log.text()
    rows = decode_png(png_bytes(pic.scene))[2]
    return SimpleNamespace(target=target, pic=pic, rows=rows, held=held_pfns(console))


def at(rows, pic_cells, pfn):
    x, y = pic_cells.frame_xy(pfn)
    return rows[y][x]


# -- the frames and their colours ------------------------------------------------

def test_png_colours_known_frames(m16, tmp_path):
    fm = memmap.frame_classes(m16)
    pic = build_picture(m16, fm, 0, fm.nr_pages, "t")
    _, _, rows = decode_png(png_bytes(pic.scene))
    expect = {
        0xA0: "no-ram", 0: "reserved", m16.kernel_image.text >> PAGE_SHIFT: "kernel-image",
        m16.mem_map.phys >> PAGE_SHIFT: "mem_map", m16.pgtable.pgd >> PAGE_SHIFT: "boot-pgtable",
        0x400: "free-10", m16.vmalloc_pfn: "vmalloc", m16.kmap_pfn: "kmap",
        m16.table_pfn: "pgtable",
    }
    expect.update({pfn: k for pfn, k in m16.truth.items() if k in ("allocated", "unused")})
    for pfn, kind in expect.items():
        code = memmap.KIND_CODE[kind] if not kind.startswith("free-") \
            else memmap.FREE_BASE + int(kind[5:])
        assert at(rows, pic.map, pfn) == code_rgb(code), (hex(pfn), kind)
    slab = next(pfn for pfn, k in m16.truth.items() if k == "slab")
    assert fm.kind_of(slab) == f"slab:{CACHE_NAME}"
    assert at(rows, pic.map, slab) == code_rgb(fm.codes[slab])


def test_frame_kinds_agree_with_the_lookup(m16):
    fm = memmap.frame_classes(m16)
    same = {"boot-pgtable": "pgtable"}
    for pfn in list(m16.truth) + [0x300, 0x400, 0x401, 0x100, m16.pgtable.pgd >> PAGE_SHIFT]:
        kind = fm.kind_of(pfn).partition(":")[0]          # "slab:<cache>" -> "slab"
        kind = "free" if kind.startswith("free-") else same.get(kind, kind)
        assert kind == owner.page_owner(m16, pfn).kind, hex(pfn)


def test_span_all_shows_the_devices(m16):
    fm = memmap.frame_classes(m16, span="all")
    assert len(fm.codes) == 1 << 20
    uart = m16.cfg.devices[0]
    assert fm.kind_of(uart.base >> PAGE_SHIFT) == "device"
    assert fm.kind_of(0x2000000 >> PAGE_SHIFT) == "no-ram"


def test_live_machine_frames():
    """A booted machine (a boot that fails fails this test)."""
    from mmemu.mm.gfp import GFP_KERNEL
    m = Machine("pc-16m", echo=False)
    obj = m.slab.kmalloc(32, GFP_KERNEL)
    kept, freed = m.alloc_pages(GFP_KERNEL, 0), m.alloc_pages(GFP_KERNEL, 0)
    m.free_pages(freed, 0)
    block = m.alloc_pages(GFP_KERNEL, 2)
    fm = memmap.frame_classes(m)
    assert fm.kind_of(kept) == "allocated"
    assert fm.kind_of(freed) == "pcp"
    assert fm.kind_of((obj - 0xC0000000) >> PAGE_SHIFT) == "slab:kmalloc-32"
    assert fm.kind_of(m.pgtable.pgd >> PAGE_SHIFT) == "boot-pgtable"
    # the tails of a non-compound order-2 block have refcount 0 but are held
    assert [fm.kind_of(block + i) for i in range(4)] == ["allocated"] * 4


# -- the legend ------------------------------------------------------------------

def test_legend_counts_equal_page_types_counts(after_hold_1g):
    """Buddy, slab and (raw) reserved totals as page-types counts them, and
    every frame counted once."""
    m, legend = after_hold_1g.target.machine, {g.title: g for g in after_hold_1g.pic.legend}
    counts, raw = page_types_counts(m), page_types_counts(m, raw=True)
    buddy, slab, reserved = 1 << 10, 1 << 7, 1 << 32          # KPF_BUDDY, KPF_SLAB, KPF_RESERVED
    assert legend["free: buddy blocks"].total == sum(n for f, n in counts.items() if f & buddy)
    assert legend["slab"].total == sum(n for f, n in counts.items() if f & slab)
    assert legend["reserved (PG_reserved)"].total == sum(n for f, n in raw.items()
                                                         if f & reserved)
    assert sum(g.total for g in legend.values()) == sum(counts.values()) == m.mem_map.nr_pages
    names = {label for g in legend.values() for _, label, _ in g.entries}
    assert {"hold_cache", "kmalloc-512", "order 10", "vmalloc", "kmap'd (HighMem)"} <= names


def test_legend_names_zones_and_counts_with_the_text_the_png_shows(m16):
    fm = memmap.frame_classes(m16)
    pic = build_picture(m16, fm, 0, fm.nr_pages, "t")
    texts = [i.text for i in pic.scene.items if hasattr(i, "text")]
    assert any(t.startswith("DMA     node 0 0x00001-0x00800") for t in texts)
    assert any(t.startswith("Normal  node 0 0x00800-0x01000") for t in texts)
    free = next(g for g in pic.legend if g.title == "free: buddy blocks")
    assert str(free.total) in texts and CACHE_NAME in texts


# -- what a program changed --------------------------------------------------------

def test_after_outlines_every_frame_the_program_holds(after_hold_1g):
    t, pic, rows, held = after_hold_1g.target, after_hold_1g.pic, after_hold_1g.rows, \
        after_hold_1g.held
    assert len(held) >= 16 + 2 + 4 + 16 + 2
    diff = pic.diff
    for pfn in held:
        assert diff.change[pfn] == memmap.ALLOCATED, hex(pfn)
        x, y = pic.map.frame_xy(pfn)
        assert rows[y][x] == code_rgb(t.after.codes[pfn]), hex(pfn)       # not faded
        ring = {rows[yy][xx] for yy in range(y - 2, y + 3) for xx in range(x - 2, x + 3)}
        assert RED in ring, hex(pfn)
    # an unchanged free frame far from them is drawn faded
    quiet = 0x20000
    assert diff.change[quiet] == memmap.NO_CHANGE
    assert at(rows, pic.map, quiet) == faded(code_rgb(t.after.codes[quiet]))
    assert diff.counts[memmap.ALLOCATED] == len(diff.outlined())
    assert not diff.counts.get(memmap.FREED)


def test_zoom_panels_show_the_allocations_eight_pixels_wide(after_hold_1g):
    pic, rows, held = after_hold_1g.pic, after_hold_1g.rows, after_hold_1g.held
    assert 1 <= len(pic.panels) <= 3 and pic.scale == 1
    order4 = [pfn for pfn, what in held.items() if what == "GFP_KERNEL order 4"]
    panel = next(p for p in pic.panels if p.window.first <= order4[0] < p.window.last)
    assert panel.cells.scale == 8
    for pfn in order4:
        x, y = panel.cells.frame_xy(pfn)
        assert {rows[y + dy][x + dx] for dy in range(7) for dx in range(7)} == \
            {code_rgb(memmap.KIND_CODE["allocated"])}
    lo, hi = panel.window.first, panel.window.last
    assert panel.window.changed == len(pic.diff.outlined(lo, hi)) + len(pic.diff.moved(lo, hi))
    head = next(i.text for i in pic.scene.items if getattr(i, "text", "").startswith(
        f"{panel.window.label}: pfn 0x{lo:x}-0x{hi - 1:x}"))
    assert f"{len(pic.diff.outlined(lo, hi))} allocated" in head


def test_a_program_that_frees_everything_shows_where_its_pages_went():
    """page_tour.c gives every page back: nothing changed hands, but the pages
    it freed sit on the per-cpu lists (outlined green) and zoom panels show them."""
    target, pic = picture(options(config="pc-1g", after=str(ROOT / "guest" / "examples" /
                                                            "page_tour.c")))
    diff = pic.diff
    assert diff.outlined() == [] and diff.moved()
    pcp = [p for p in range(len(target.after.codes)) if target.after.codes[p]
           == memmap.KIND_CODE["pcp"] and target.before.codes[p] != memmap.KIND_CODE["pcp"]]
    assert pcp and all(diff.change[p] == memmap.RESHUFFLED for p in pcp)
    assert pic.panels and all(p.window.changed for p in pic.panels)
    rows = decode_png(png_bytes(pic.scene))[2]
    x, y = pic.map.frame_xy(pcp[0])
    green = CHANGE_RGB[memmap.RESHUFFLED]
    assert green in {rows[yy][xx] for yy in range(y - 1, y + 2) for xx in range(x - 1, x + 2)}


def test_before_after_shows_only_what_the_second_program_changed(tmp_path):
    prog = tmp_path / "take4.c"
    prog.write_text('#include <mmemu.h>\nint main(void)\n{\n\tstruct page *p = '
                    'alloc_pages(GFP_KERNEL, 2);\n\n\tpr_info("took pfn %#lx\\n", '
                    'page_to_pfn(p));\n\treturn 0;\n}\n')
    target, pic = picture(options(before=HOLD, after=str(prog)))
    log = target.machine.log.text()
    took = int(re.search(r"took pfn (0x[0-9a-f]+)", log).group(1), 16)
    assert pic.diff.outlined() == [took, took + 1, took + 2, took + 3]
    first_held = held_pfns(log)
    assert first_held and all(target.before.codes[p] == target.after.codes[p] for p in first_held)
    assert "after take4.c" in pic.scene.items[0].text


def test_two_snapshots_compared_show_freed_frames(tmp_path):
    """--before (a snapshot after the program) and --snapshot (one of the boot):
    the program's frames are the ones freed."""
    from mmemu.views.snapshot import write_snapshot
    boot, held = Machine("pc-16m", echo=False), Machine("pc-16m", echo=False)
    result = held.run(HOLD)
    write_snapshot(boot, tmp_path / "boot.core")
    write_snapshot(held, tmp_path / "held.core")
    args = options(before=str(tmp_path / "held.core"), snapshot=str(tmp_path / "boot.core"))
    _, pic = picture(args)
    pfns = held_pfns(result.console)
    assert pfns and all(pic.diff.change[p] == memmap.FREED for p in pfns)
    _, _, rows = decode_png(png_bytes(pic.scene))
    x, y = pic.map.frame_xy(next(iter(pfns)))
    assert BLUE in {rows[yy][xx] for yy in range(y - 1, y + 9) for xx in range(x - 1, x + 9)}


# -- zoom, span, nodes --------------------------------------------------------------

def test_span_clips_the_picture_to_the_range():
    _, pic = picture(options(config="pc-1g", span="16M-32M"))
    assert (pic.first, pic.last) == (0x1000, 0x2000)
    assert pic.frame_xy(0x1000) == (pic.map.x, pic.map.y)
    assert len(pic.map.pixels) == 0x1000
    assert sum(g.total for g in pic.legend) == 0x1000
    assert [z for z in (0xFFF, 0x2000) if pic.map.first_pfn <= z < pic.map.first_pfn
            + len(pic.map.pixels)] == []
    labels = [i.text for i in pic.scene.items if hasattr(i, "text")]
    assert "0x01000" in labels and "0x01000000 16M" in labels and "0x00000" not in labels


def test_zoom_asks_for_a_panel_of_any_range():
    """At boot nothing changed: no panel unless --zoom asks; the kernel image
    at 16 MiB then shows eight pixels a frame."""
    _, plain = picture(options(config="pc-1g"))
    assert plain.panels == [] and plain.diff is None
    _, pic = picture(options(config="pc-1g", zoom=["16M-17M"]))
    (panel,) = pic.panels
    assert (panel.window.first, panel.window.last) == (0x1000, 0x1100)
    rows = decode_png(png_bytes(pic.scene))[2]
    x, y = panel.cells.frame_xy(0x1000)
    assert rows[y + 3][x + 3] == code_rgb(memmap.KIND_CODE["kernel-image"])
    assert any(getattr(i, "text", "").startswith("A: pfn 0x1000-0x10ff (1 MiB at phys 0x01000000")
               for i in pic.scene.items)


def test_parse_span_forms():
    assert memmap.parse_span("ram", 4096) == (0, 4096)
    assert memmap.parse_span("all", 4096) == (0, 1 << 20)
    assert memmap.parse_span("16M-32M", 0) == (0x1000, 0x2000)
    assert memmap.parse_span("0x100000+64K", 0) == (0x100, 0x110)
    assert memmap.parse_span("0x1001-0x1fff", 0) == (1, 2)         # rounded out to pages
    for bad in ("16M", "32M-16M", "0-5G", "x-y", "1Q-2M"):
        with pytest.raises(UsageError):
            memmap.parse_span(bad, 4096)


def test_numa_nodes_and_their_zones_have_their_own_colours():
    _, pic = picture(options(config="numa-2n", after=HOLD))
    rows = decode_png(png_bytes(pic.scene))[2]
    seen = {}
    for kind, key, x, y, w, h, rgb in pic.bands:
        if y < pic.map.y + pic.map.rows * pic.map.scale:       # the overview's bands
            assert rows[y + h // 2][x + w - 1] == rgb           # drawn in that colour
            seen[(kind, key if kind == "node" else (key.nid, key.name))] = rgb
    assert seen[("node", 0)] != seen[("node", 1)]
    assert seen[("zone", (0, "Normal"))] != seen[("zone", (1, "Normal"))]
    assert seen[("zone", (0, "Normal"))] == zone_rgb(0, 1)
    assert node_rgb(0) != node_rgb(1)
    assert any(p.window.last > 0x20000 for p in pic.panels)     # node 1's pages zoomed


# -- SVG -----------------------------------------------------------------------------

def titled_rects(path):
    root = ET.parse(path).getroot()
    out = []
    for r in root.iter(f"{SVG}rect"):
        title = r.find(f"{SVG}title")
        if title is not None:
            out.append((r, title.text))
    return root, out


def tip_for(tips, pfn):
    """The tooltip whose pfn range holds pfn."""
    for _, text in tips:
        m = re.match(r"pfn (0x[0-9a-f]+)(?:-(0x[0-9a-f]+))?", text)
        if m:
            lo = int(m.group(1), 16)
            hi = int(m.group(2), 16) if m.group(2) else lo
            if lo <= pfn <= hi:
                return text
    return None


def test_svg_tooltips_carry_pfn_zone_owner_flags_and_cache(tmp_path):
    path = tmp_path / "m.svg"
    args = options(after=HOLD, output=str(path))
    target = cli_memmap.open_target(args)
    out = cli_memmap.body(target, args)
    assert out.startswith(f"{path}: ") and "changed: " in out
    root, tips = titled_rects(path)
    assert root.tag == f"{SVG}svg"
    held = held_pfns(target.machine.log.text())
    order4 = min(p for p, w in held.items() if w == "GFP_KERNEL order 4")
    text = tip_for(tips, order4)
    assert text.startswith(f"pfn 0x{order4:x} (phys 0x{order4 << PAGE_SHIFT:08x})")
    assert "zone Normal, node 0" in text and "allocated: page allocator, _refcount 1" in text
    assert "changed: allocated" in text and "flags: " in text
    tail = tip_for(tips, order4 + 5)
    assert f"part of an order-4 allocation at pfn 0x{order4:x}" in tail
    cache = next(p for p, w in held.items() if w.startswith("hold_cache"))
    text = tip_for(tips, cache)
    assert "slab cache: hold_cache" in text and "flags: slab" in text
    dma = next(p for p, w in held.items() if w.startswith("GFP_DMA"))
    assert "zone DMA, node 0" in tip_for(tips, dma)
    normal = target.machine.mm.zones[1]             # its lowest pageblock went unmovable at boot
    first_free = next(head.first for area in reversed(normal.free_area)
                      for head in area.free_list if head.first >= 0)
    free = tip_for(tips, first_free)
    assert "free: buddy block of order" in free and "zone Normal" in free
    assert "flags: buddy" in free


def test_every_drawn_frame_has_a_tooltip(m16, tmp_path):
    from mmemu.views.memmap import FrameTips
    fm = memmap.frame_classes(m16)
    tips = FrameTips(m16, fm).segments(0, fm.nr_pages)
    assert tips[0][0] == 0 and tips[-1][1] == fm.nr_pages
    assert all(a[1] == b[0] for a, b in zip(tips, tips[1:]))
    assert len({t for _, _, t in tips}) == len(tips)          # merged where equal


# -- the command -----------------------------------------------------------------------

def mmemu(*args):
    return subprocess.run([sys.executable, "-m", "mmemu", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.mark.parametrize("args,message", [
    (["--span", "32M-16M"], "is empty"),
    (["--span", "banana"], "bad span"),
    (["-o", "m.gif"], "png or svg"),
    (["--before", HOLD], "--before needs --after"),
    (["--cols", "0"], "out of range"),
    (["--span", "all", "--scale", "64"], "would be"),
    (["-o", "/nonexistent-dir/m.png"], "cannot write the picture /nonexistent-dir/m.png"),
])
def test_bad_options_are_one_line_and_status_2(args, message, tmp_path):
    r = mmemu("memmap", "-c", "pc-16m", "-o", str(tmp_path / "m.png"), *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_the_tool_and_the_subcommand_write_the_same_picture(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    r1 = mmemu("memmap", "-c", "pc-16m", "--cols", "32", "--scale", "4", "-o", str(a))
    r2 = subprocess.run([sys.executable, str(ROOT / "tools" / "memmap.py"), "-c", "pc-16m",
                         "--cols", "32", "--scale", "4", "-o", str(b)],
                        capture_output=True, text=True, timeout=300)
    assert r1.returncode == r2.returncode == 0, r1.stderr + r2.stderr
    assert "32 per row, 4 px each" in r1.stdout
    assert a.read_bytes() == b.read_bytes()
    width, height, rows = decode_png(a.read_bytes())
    assert Counter(len(r) for r in rows) == {width: height}
