"""A picture of physical memory: every page frame coloured by what owns it.

Free blocks in shades of green by order (and pages on the per-cpu lists),
slab pages by cache, vmalloc and kmap'd pages, page tables, the kernel image, mem_map and other reservations,
allocated pages, device windows and the holes where there is no RAM; two
strips beside the map mark the nodes and the zones, and a legend names every
colour used.  Written as PNG (an indexed-colour image, encoded here with
zlib and struct: no imaging library) or SVG.

Frames are laid out row by row from pfn 0, ``cols`` to a row and ``scale``
pixels square; Picture.frame_xy(pfn) says where a frame is drawn.  The
classification is the one `ptdump --lookup` gives (mmemu.views.owner), done
for all frames at once: mem_map is read as strided columns and the work per
frame runs in C; Python runs per distinct struct page state, per free block,
per slab and per mapped kernel page.
"""
import colorsys
import re
import struct
import zlib
from dataclasses import dataclass, field

from mmemu.errors import UsageError
from mmemu.layout import KERNEL_PHYS, PAGE_SHIFT, PAGE_SIZE, ZONE_NAMES
from mmemu.mm.mmzone import PAGE_TYPE_BASE, PG_reserved, PG_table, STRUCT_PAGE_SIZE
from mmemu.views import owner
from mmemu.views.page_types import NR_PAGE_ORDERS, decode_key, scan_mem_map

# -- palette -------------------------------------------------------------------

BACKGROUND, TEXT, RULE = 0, 1, 2
KINDS = (  # (kind, legend label, colour)
    ("no-ram", "no RAM", (48, 48, 48)),
    ("device", "device MMIO", (0, 150, 150)),
    ("reserved", "reserved", (150, 60, 40)),
    ("kernel-image", "kernel image", (40, 80, 200)),
    ("mem_map", "mem_map", (110, 140, 190)),
    ("pgtable", "page tables", (220, 40, 200)),
    ("allocated", "allocated", (235, 200, 40)),
    ("vmalloc", "vmalloc", (140, 70, 220)),
    ("kmap", "kmap'd", (250, 130, 20)),
    ("unused", "unused (refcount 0)", (205, 205, 205)),
    ("pcp", "free, per-cpu lists", (150, 230, 210)),
)
KIND_INDEX = {kind: 3 + i for i, (kind, _, _) in enumerate(KINDS)}
FREE_BASE = 3 + len(KINDS)                     # free blocks of order 0..10
ZONE_BASE = FREE_BASE + NR_PAGE_ORDERS         # the zone strip
NODE_BASE = ZONE_BASE + len(ZONE_NAMES)        # the node strip, 16 nodes
SLAB_BASE = NODE_BASE + 16                     # one entry per slab cache
MAX_SLAB_COLOURS = 256 - SLAB_BASE
ZONE_COLOURS = ((240, 120, 120), (120, 170, 240), (240, 210, 110), (170, 120, 220))


def free_colour(order):
    """A green, lighter for small blocks and darker for large ones."""
    light = 0.86 - 0.06 * order
    r, g, b = colorsys.hls_to_rgb(0.24 + 0.016 * order, light, 0.7)
    return int(r * 255), int(g * 255), int(b * 255)


def spread_colour(i, light=0.55, sat=0.7):
    """The i-th of a run of distinct hues (golden-angle steps)."""
    r, g, b = colorsys.hls_to_rgb((i * 0.381966) % 1.0, light, sat)
    return int(r * 255), int(g * 255), int(b * 255)


def colorsys_grey(i):
    """Node colours: blue-greys, alternating dark and light."""
    r, g, b = colorsys.hls_to_rgb(0.6, 0.35 + 0.3 * (i % 2) + 0.02 * (i // 2), 0.2)
    return int(r * 255), int(g * 255), int(b * 255)


def base_palette():
    pal = [(255, 255, 255), (0, 0, 0), (160, 160, 160)]
    pal += [colour for _, _, colour in KINDS]
    pal += [free_colour(o) for o in range(NR_PAGE_ORDERS)]
    pal += list(ZONE_COLOURS)
    pal += [colorsys_grey(i) for i in range(16)]
    pal += [spread_colour(i) for i in range(MAX_SLAB_COLOURS)]
    return pal


PALETTE = base_palette()


def kind_colour(kind):
    """The colour a kind (see KINDS, "free-N" for a free block of order N) is drawn in."""
    if kind.startswith("free-"):
        return PALETTE[FREE_BASE + int(kind[5:])]
    return PALETTE[KIND_INDEX[kind]]


# -- classifying every frame ------------------------------------------------

@dataclass
class FrameMap:
    """The palette index of every frame from pfn 0 to len(classes), and the
    names of the slab caches behind the slab colours."""

    classes: bytearray
    slab_names: dict = field(default_factory=dict)    # palette index -> cache name

    def kind_of(self, pfn):
        """The kind of a frame: a KINDS name, "free-N" or "slab:<cache>"."""
        c = self.classes[pfn]
        if FREE_BASE <= c < ZONE_BASE:
            return f"free-{c - FREE_BASE}"
        if c >= SLAB_BASE:
            return f"slab:{self.slab_names[c]}"
        return KINDS[c - 3][0]


def frame_classes(machine, span="ram"):
    """A FrameMap of every frame: span "ram" covers mem_map, "all" 4 GiB."""
    nr = machine.mem_map.nr_pages
    total = nr if span == "ram" else 1 << 20
    if span not in ("ram", "all"):
        raise UsageError(f"span must be 'ram' or 'all', not {span!r}")
    cls = bytearray([KIND_INDEX["no-ram"]]) * total
    scan = scan_mem_map(machine)
    cls[:nr] = _struct_page_classes(scan)
    _mark_reservations(machine, cls, nr)
    _mark_kernel_mappings(machine, cls)
    _mark_free_blocks(cls, scan)
    _mark_pcp(machine, cls, scan)
    slab_names = _mark_slabs(machine, cls, scan)
    _mark_no_ram(machine, cls, nr)
    _mark_devices(machine, cls, total)
    return FrameMap(cls, slab_names)


def _struct_page_classes(scan):
    """First pass, from the struct page alone: reserved, page table, allocated, unused."""
    def kind(key):
        flags, mapcount, tail, ref_zero = decode_key(key)[:4]
        if mapcount & PAGE_TYPE_BASE == PAGE_TYPE_BASE and not mapcount & PG_table:
            return KIND_INDEX["pgtable"]
        if flags >> PG_reserved & 1:
            return KIND_INDEX["reserved"]
        if ref_zero and not tail:          # a compound page's tails have no references
            return KIND_INDEX["unused"]
        return KIND_INDEX["allocated"]

    table = {key: kind(key) for key in set(scan.keys)}
    return bytes(map(table.__getitem__, scan.keys))


def _mark_reservations(machine, cls, nr):
    """Name the reserved frames that are the kernel image, mem_map or boot page tables."""
    reserved = KIND_INDEX["reserved"]
    size = getattr(machine.cfg, "kernel_image", 0)
    _fill_if(cls, KERNEL_PHYS >> PAGE_SHIFT, (KERNEL_PHYS + size) >> PAGE_SHIFT,
             reserved, KIND_INDEX["kernel-image"])
    mem_map = machine.mem_map
    first = mem_map.phys >> PAGE_SHIFT
    last = (mem_map.phys + mem_map.nr_pages * STRUCT_PAGE_SIZE + PAGE_SIZE - 1) >> PAGE_SHIFT
    _fill_if(cls, first, last, reserved, KIND_INDEX["mem_map"])
    u32 = machine.pm.u32
    pgd = owner._pgd_of(machine)
    tables = [pgd >> PAGE_SHIFT]
    for pde in u32[pgd >> 2:(pgd >> 2) + 1024]:
        if pde & 1 and not pde & 0x80:
            tables.append(pde >> PAGE_SHIFT)
    for pfn in tables:
        if pfn < nr and cls[pfn] == reserved:
            cls[pfn] = KIND_INDEX["pgtable"]


def _fill_if(cls, first, last, was, now):
    """Frames in [first, last) of class ``was`` become ``now``."""
    last = min(last, len(cls))
    if first >= last:
        return
    chunk = bytes(cls[first:last])
    cls[first:last] = chunk.replace(bytes([was]), bytes([now]))


def _mark_kernel_mappings(machine, cls):
    """Allocated frames mapped in the vmalloc area or a kmap slot."""
    allocated = KIND_INDEX["allocated"]
    lay = machine.layout
    for pfn, vas in owner.kernel_rmap(machine).items():
        if pfn >= len(cls) or cls[pfn] != allocated:
            continue
        va = vas[0]
        if lay.vmalloc_start <= va < lay.vmalloc_end:
            cls[pfn] = KIND_INDEX["vmalloc"]
        elif va >= lay.pkmap_base:
            cls[pfn] = KIND_INDEX["kmap"]


def _mark_free_blocks(cls, scan):
    for head, order in scan.free_blocks:
        n = min(1 << order, scan.nr - head)
        cls[head:head + n] = bytes([FREE_BASE + order]) * n


def _mark_pcp(machine, cls, scan):
    """Free pages on the per-cpu lists (no mark in mem_map: owner.pcp_pages())."""
    unused = KIND_INDEX["unused"]
    for pfn in owner.pcp_pages(machine):
        if pfn < scan.nr and cls[pfn] == unused:
            cls[pfn] = KIND_INDEX["pcp"]


def _mark_slabs(machine, cls, scan):
    """Slab pages in their cache's colour; returns {palette index: cache name}."""
    index_of = {}
    names = {}
    for head, pages, cache in scan.slabs:
        if cache not in index_of:
            i = SLAB_BASE + len(index_of) % MAX_SLAB_COLOURS
            index_of[cache] = i
            name = owner.slab_cache_name(machine, cache)
            names[i] = name if i not in names else f"{names[i]}, {name}"
        cls[head:head + pages] = bytes([index_of[cache]]) * pages
    return names


def _mark_no_ram(machine, cls, nr):
    """Frames inside mem_map with no byte of e820 usable RAM (the BIOS hole, gaps)."""
    ram = sorted((r.start, r.end) for r in machine.cfg.ram)
    prev_end = 0
    for start, end in ram + [(nr << PAGE_SHIFT, nr << PAGE_SHIFT)]:
        first = (prev_end + PAGE_SIZE - 1) >> PAGE_SHIFT
        last = min(start >> PAGE_SHIFT, nr)
        if first < last:
            cls[first:last] = bytes([KIND_INDEX["no-ram"]]) * (last - first)
        prev_end = max(prev_end, end)


def _mark_devices(machine, cls, total):
    for dev in getattr(machine.cfg, "devices", []):
        first, last = dev.base >> PAGE_SHIFT, min((dev.base + dev.size) >> PAGE_SHIFT, total)
        if first < last:
            cls[first:last] = bytes([KIND_INDEX["device"]]) * (last - first)


# -- the picture ---------------------------------------------------------------

MARGIN = 6
STRIP = 8
LINE = 11


@dataclass
class Picture:
    """An indexed-colour image: width x height palette indexes in ``pixels``."""

    width: int
    height: int
    pixels: bytearray
    palette: list
    cols: int
    scale: int
    map_x: int
    map_y: int
    frames: int
    legend: list                          # (palette index, label)

    def frame_xy(self, pfn):
        """The top-left pixel of frame pfn."""
        row, col = divmod(pfn, self.cols)
        return self.map_x + col * self.scale, self.map_y + row * self.scale

    def pixel(self, x, y):
        return self.palette[self.pixels[y * self.width + x]]


def default_geometry(frames):
    """(cols, scale): about square, at least ~512 pixels across."""
    cols = 1
    while cols * cols < frames:
        cols *= 2
    return cols, max(1, 512 // cols)


def memmap_picture(machine, span="ram", cols=None, scale=None):
    """The whole picture of a machine's physical memory (a Picture)."""
    fm = frame_classes(machine, span)
    frames = len(fm.classes)
    dc, ds = default_geometry(frames)
    cols, scale = cols or dc, scale or ds
    rows = (frames + cols - 1) // cols
    legend = _legend(machine, fm)
    map_x = MARGIN + 2 * STRIP + 6
    map_w, map_h = cols * scale, rows * scale
    legend_x = map_x + map_w + 12
    legend_w = 8 + max(len(label) for _, label in legend) * 6
    width = legend_x + legend_w + MARGIN
    height = max(map_h, len(legend) * LINE) + 2 * MARGIN
    pic = Picture(width, height, bytearray(width * height), PALETTE, cols, scale,
                  map_x, MARGIN, frames, legend)
    _draw_map(pic, fm.classes, rows)
    _draw_strips(pic, machine, rows)
    _draw_legend(pic, legend_x)
    return pic


def _legend(machine, fm):
    present = set(fm.classes)
    out = [(KIND_INDEX[k], label) for k, label, _ in KINDS if KIND_INDEX[k] in present]
    out += [(FREE_BASE + o, f"free, order {o}") for o in range(NR_PAGE_ORDERS)
            if FREE_BASE + o in present]
    out += [(i, f"slab {fm.slab_names[i]}") for i in sorted(fm.slab_names)]
    lay = machine.layout
    for z in lay.zones:
        if z.present_pages:
            out.append((ZONE_BASE + z.zid, f"zone {z.name} node {z.nid} pfn "
                                           f"{z.start_pfn:#x}-{z.end_pfn:#x}"))
    for nid in sorted({n for n, _, _ in lay.memory}):
        out.append((NODE_BASE + nid % 16, f"node {nid}"))
    return out


def _draw_map(pic, classes, rows):
    cols, s, W = pic.cols, pic.scale, pic.width
    pad = bytes(rows * cols - len(classes))
    data = bytes(classes) + pad
    for r in range(rows):
        row = data[r * cols:(r + 1) * cols]
        if s > 1:
            row = bytes(c for c in row for _ in range(s))
        x, y = pic.map_x, pic.map_y + r * s
        for dy in range(s):
            off = (y + dy) * W + x
            pic.pixels[off:off + len(row)] = row


def _draw_strips(pic, machine, rows):
    """The node strip and the zone strip: each row in the colour of its first frame's zone."""
    lay = machine.layout
    zone_of = {}
    for z in lay.zones:
        if z.present_pages:
            zone_of[(z.start_pfn, z.end_pfn)] = z
    spans = sorted(zone_of)
    for r in range(rows):
        pfn = r * pic.cols
        z = next((zone_of[sp] for sp in spans if sp[0] <= pfn < sp[1]), None)
        if z is None:
            z = next((zone_of[sp] for sp in spans if pfn <= sp[0] < pfn + pic.cols), None)
        if z is None:
            continue
        y = pic.map_y + r * pic.scale
        _fill_rect(pic, MARGIN, y, STRIP, pic.scale, NODE_BASE + z.nid % 16)
        _fill_rect(pic, MARGIN + STRIP + 2, y, STRIP, pic.scale, ZONE_BASE + z.zid)


def _fill_rect(pic, x, y, w, h, index):
    for yy in range(y, min(y + h, pic.height)):
        off = yy * pic.width + x
        pic.pixels[off:off + w] = bytes([index]) * w


def _draw_legend(pic, x):
    y = MARGIN
    for index, label in pic.legend:
        _fill_rect(pic, x, y, 8, 8, index)
        draw_text(pic, x + 12, y + 1, label)
        y += LINE


# -- a 5x7 font for the legend -------------------------------------------------

_GLYPHS = {
    "A": ".###. #...# #...# ##### #...# #...# #...#", "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.", "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####", "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####", "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#", "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#", "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.", "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#", "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.", "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.", "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.", "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..", "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.", "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####", "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.", "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.", "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.", "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#", "-": "..... ..... ..... ##### ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..", ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.", ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "/": "..... ....# ...#. ..#.. .#... #.... .....", "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "_": "..... ..... ..... ..... ..... ..... #####", ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "'": "..#.. ..#.. ..... ..... ..... ..... .....", "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "[": ".###. .#... .#... .#... .#... .#... .###.", "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    "=": "..... ..... ##### ..... ##### ..... .....", "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    " ": "..... ..... ..... ..... ..... ..... .....",
}


def draw_text(pic, x, y, text, index=TEXT):
    """Draw text (upper-cased, 6 pixels a character) with its top-left at (x, y)."""
    for ch in text:
        glyph = _GLYPHS.get(ch) or _GLYPHS.get(ch.upper()) or _GLYPHS["?"]
        for dy, row in enumerate(glyph.split()):
            for dx, bit in enumerate(row):
                if bit == "#" and x + dx < pic.width and y + dy < pic.height:
                    pic.pixels[(y + dy) * pic.width + x + dx] = index
        x += 6


# -- PNG and SVG ---------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(pic):
    """The picture as a PNG file: 8-bit indexed colour (IHDR colour type 3, PLTE)."""
    ihdr = struct.pack(">IIBBBBB", pic.width, pic.height, 8, 3, 0, 0, 0)
    plte = b"".join(bytes(c) for c in pic.palette)
    W = pic.width
    raw = b"".join(b"\x00" + bytes(pic.pixels[y * W:(y + 1) * W]) for y in range(pic.height))
    return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"PLTE", plte)
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


_RUN = re.compile(rb"(.)\1*", re.DOTALL)


def svg_text(pic):
    """The picture as SVG: one rect per run of equal frames in a row, text legend."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{pic.width}" '
           f'height="{pic.height}" viewBox="0 0 {pic.width} {pic.height}" '
           f'shape-rendering="crispEdges">',
           f'<rect width="{pic.width}" height="{pic.height}" fill="#ffffff"/>']
    W, s = pic.width, pic.scale
    colour = ["#%02x%02x%02x" % c for c in pic.palette]
    rows = (pic.frames + pic.cols - 1) // pic.cols
    for r in range(rows):
        y = pic.map_y + r * s
        row = bytes(pic.pixels[y * W + pic.map_x:y * W + pic.map_x + pic.cols * s:s])
        for m in _RUN.finditer(row[:max(0, min(pic.cols, pic.frames - r * pic.cols))]):
            x = pic.map_x + m.start() * s
            out.append(f'<rect x="{x}" y="{y}" width="{(m.end() - m.start()) * s}" '
                       f'height="{s}" fill="{colour[m.group()[0]]}"/>')
    _svg_strips(pic, out, colour, rows)
    legend_x = pic.map_x + pic.cols * s + 12
    for i, (index, label) in enumerate(pic.legend):
        y = MARGIN + i * LINE
        out.append(f'<rect x="{legend_x}" y="{y}" width="8" height="8" fill="{colour[index]}"/>')
        out.append(f'<text x="{legend_x + 12}" y="{y + 8}" font-family="monospace" '
                   f'font-size="9">{_xml(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_strips(pic, out, colour, rows):
    for r in range(rows):
        y = pic.map_y + r * pic.scale
        for x in (MARGIN, MARGIN + STRIP + 2):
            index = pic.pixels[y * pic.width + x]
            if index:
                out.append(f'<rect x="{x}" y="{y}" width="{STRIP}" height="{pic.scale}" '
                           f'fill="{colour[index]}"/>')


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_memmap(machine, path, fmt=None, span="ram", cols=None, scale=None):
    """Write the picture to path as PNG or SVG (from fmt, else the file suffix)."""
    fmt = (fmt or str(path).rsplit(".", 1)[-1]).lower()
    if fmt not in ("png", "svg"):
        raise UsageError(f"picture format must be png or svg, not {fmt!r}")
    pic = memmap_picture(machine, span, cols, scale)
    if fmt == "png":
        with open(path, "wb") as f:
            f.write(png_bytes(pic))
    else:
        with open(path, "w") as f:
            f.write(svg_text(pic))
    return pic
