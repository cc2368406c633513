"""Laying out the memory picture: a title, the map of page frames with pfn
and physical-address axes, node and zone bands, zoom panels around what a
program changed, and a legend with counts, as a memmap_image.Scene.

Colours say what matters at a glance: free memory is pale (greens, darker
for the small blocks a split leaves), everything held is saturated, and in
a picture of what a program changed the unchanged frames are faded and the
changed ones outlined (red: allocated, blue: freed, black: taken over by
another owner, green: still free but in another buddy block or on a
per-cpu list, which is where a program's freed pages and the allocator's
splitting show).  At one pixel per frame an outline is wider than the frame,
so a single page shows; the zoom panels draw the same frames 8 pixels wide.
"""
import colorsys
import re
from dataclasses import dataclass, field

from mmemu.layout import PAGE_SHIFT, ZONE_NAMES
from mmemu.views.memmap import (
    ALLOCATED, FREE_BASE, FREED, KINDS, NR_CODES, RESHUFFLED, REUSED, SLAB_BASE, ZoomWindow,
    frame_size_text, legend_groups, zoom_windows,
)
from mmemu.views.memmap_image import Cells, Palette, Rect, Scene, Text, text_width

MARGIN = 10
LINE = 11
AXIS_W = 44              # "0x3ffe0" and a tick
NODE_W, ZONE_W = 44, 50  # "node 0", "HighMem"
PHYS_W = 118             # "0x3ffe0000 1023.75M"
GUTTER = 30              # change ticks, zoom bars and letters between the map and PHYS
LEGEND_W = 262
PANEL_COLS, PANEL_SCALE = 64, 8

# -- colours ------------------------------------------------------------------------

KIND_RGB = {
    "no-ram": (70, 70, 70), "device": (0, 150, 150), "host": (150, 150, 60),
    "reserved": (160, 82, 45),
    "kernel-image": (40, 80, 200), "mem_map": (100, 140, 200), "boot-pgtable": (150, 30, 130),
    "pgtable": (225, 45, 205), "allocated": (245, 170, 0), "vmalloc": (140, 70, 220),
    "kmap": (255, 110, 20), "unused": (200, 200, 200), "pcp": (100, 195, 200),
}
SLAB_RGB = ((200, 30, 60), (235, 105, 150), (140, 40, 40), (250, 140, 95), (95, 60, 165),
            (0, 110, 180), (200, 125, 0), (120, 80, 40), (60, 60, 140), (215, 65, 0),
            (165, 100, 145), (0, 140, 120))
ZONE_RGB = ((240, 160, 160), (150, 185, 240), (240, 215, 130), (195, 165, 235))
NODE_RGB = ((70, 90, 120), (160, 100, 40), (50, 120, 80), (130, 60, 130))
CHANGE_RGB = {ALLOCATED: (225, 0, 0), FREED: (0, 90, 255), REUSED: (0, 0, 0),
              RESHUFFLED: (40, 150, 40)}
RING_ORDER = (RESHUFFLED, FREED, REUSED, ALLOCATED)        # later rings are drawn on top
CHANGE_LABELS = {ALLOCATED: "allocated: free before, held now",
                 FREED: "freed: held before, free now",
                 REUSED: "reused: another owner now",
                 RESHUFFLED: "moved: free, other block or list"}
TEXT, GREY, RULE = (0, 0, 0), (105, 105, 105), (185, 185, 185)


def free_rgb(order):
    """Pale green, palest for the largest blocks."""
    r, g, b = colorsys.hls_to_rgb(0.30, 0.62 + 0.028 * order, 0.50)
    return int(r * 255), int(g * 255), int(b * 255)


def code_rgb(code):
    if code >= SLAB_BASE:
        i = code - SLAB_BASE
        r, g, b = SLAB_RGB[i % len(SLAB_RGB)]
        shade = 1.0 - 0.18 * (i // len(SLAB_RGB) % 3)
        return int(r * shade), int(g * shade), int(b * shade)
    if code >= FREE_BASE:
        return free_rgb(code - FREE_BASE)
    return KIND_RGB[KINDS[code][0]]


def faded(rgb, amount=0.72):
    return tuple(int(c + (255 - c) * amount) for c in rgb)


def zone_rgb(nid, zid):
    """Zone hue; each further node of the same zone a step darker."""
    shade = 1.0 - 0.22 * (nid % 3)
    return tuple(int(c * shade) for c in ZONE_RGB[zid % len(ZONE_RGB)])


def node_rgb(nid):
    return NODE_RGB[nid % len(NODE_RGB)]


# -- the picture ---------------------------------------------------------------------

@dataclass
class Panel:
    """A zoom window and the cells that draw it."""

    window: ZoomWindow
    cells: Cells


@dataclass
class Picture:
    """The laid-out picture: its scene and where things are in it."""

    scene: Scene
    map: Cells
    first: int
    last: int
    legend: list                                  # memmap.LegendGroup
    panels: list = field(default_factory=list)
    bands: list = field(default_factory=list)     # (kind "zone"/"node", ZoneSpan or nid, x, y, w, h, rgb)
    diff: object = None

    width = property(lambda self: self.scene.width)
    height = property(lambda self: self.scene.height)
    cols = property(lambda self: self.map.cols)
    scale = property(lambda self: self.map.scale)
    frames = property(lambda self: self.last - self.first)

    def frame_xy(self, pfn):
        """The top-left pixel of frame pfn in the map."""
        return self.map.frame_xy(pfn)


def default_geometry(frames):
    """(cols, scale): about square and about 512 pixels across."""
    cols = 64
    while cols * cols < frames:
        cols *= 2
    return cols, max(1, min(8, 512 // cols))


class _Layout:
    """Builds a Picture; one method per part of it."""

    def __init__(self, machine, fm, first, last, title, notes, before, diff, tips,
                 cols, scale, zooms):
        self.machine, self.fm, self.first, self.last = machine, fm, first, last
        self.title, self.notes = title, notes
        self.before, self.diff, self.tips = before, diff, tips
        dc, ds = default_geometry(last - first)
        self.cols, self.scale = cols or dc, scale or ds
        self.gap = 1 if self.scale >= 6 else 0
        self.pal = Palette()
        self.ink = {name: self.pal.add(rgb) for name, rgb in
                    (("text", TEXT), ("grey", GREY), ("rule", RULE))}
        self.items, self.bands = [], []
        self.zooms = zooms

    def colour(self, rgb):
        return self.pal.add(rgb)

    def text(self, x, y, s, ink="text", scale=1, anchor="start"):
        self.items.append(Text(x, y, s, self.ink[ink] if isinstance(ink, str) else ink,
                               scale, anchor))

    # -- the whole -------------------------------------------------------------
    def build(self):
        y = self.draw_title()
        self.map_x = MARGIN + AXIS_W + NODE_W + 2 + ZONE_W + 6
        self.map_y = y + 18
        frames = self.last - self.first
        rows = (frames + self.cols - 1) // self.cols
        map_h = rows * self.scale
        self.right_x = self.map_x + self.cols * self.scale + 3
        self.draw_headers(self.map_y - 16)
        cells = self.draw_cells(self.map_x, self.map_y, self.first, self.last, self.cols,
                                self.scale, self.gap)
        self.draw_bands(self.map_y, self.first, self.cols, self.scale, rows)
        self.draw_axes(self.map_y, self.first, self.cols, self.scale, rows, 24)
        windows = self.pick_zooms()
        self.draw_change_marks(self.map_y, rows)
        self.draw_zoom_marks(windows, self.map_y)
        y = self.map_y + map_h + 16
        panels = []
        for w in windows:
            y, panel = self.draw_panel(w, y)
            panels.append(panel)
        legend = legend_groups(self.fm, self.first, self.last)
        legend_x = self.right_x + GUTTER + PHYS_W + 10
        legend_end = self.draw_legend(legend, legend_x, self.map_y - 16)
        width = max(legend_x + LEGEND_W + MARGIN, self.title_w + 2 * MARGIN)
        height = max(y, legend_end) + MARGIN
        scene = Scene(width, height, self.pal, self.items)
        return Picture(scene, cells, self.first, self.last, legend, panels, self.bands, self.diff)

    # -- title -------------------------------------------------------------------
    def draw_title(self):
        self.text(MARGIN, MARGIN, self.title, scale=2)
        self.title_w = text_width(self.title, 2)
        y = MARGIN + 24
        for note in self.notes:
            self.text(MARGIN, y, note)
            self.title_w = max(self.title_w, text_width(note))
            y += LINE
        return y + 8

    def draw_headers(self, y):
        self.text(MARGIN + AXIS_W - 4, y, "pfn", "grey", anchor="end")
        self.text(MARGIN + AXIS_W, y, "node", "grey")
        self.text(MARGIN + AXIS_W + NODE_W + 2, y, "zone", "grey")
        self.text(self.right_x + GUTTER, y, "physical address", "grey")

    # -- the frames ---------------------------------------------------------------
    def tables(self):
        """code -> palette index: as is, and faded (for frames a program left alone)."""
        if not hasattr(self, "_tables"):
            used = set(self.fm.codes) | (set(self.before.codes) if self.before else set())
            plain, faint = bytearray(NR_CODES), bytearray(NR_CODES)
            for code in used:
                plain[code] = self.colour(code_rgb(code))
                faint[code] = self.colour(faded(code_rgb(code))) if self.diff else plain[code]
            self._tables = bytes(plain), bytes(faint)
        return self._tables

    def draw_cells(self, x, y, first, last, cols, scale, gap):
        plain, faint = self.tables()
        codes = bytes(self.fm.codes[first:last])
        pixels = bytearray(codes.translate(faint))
        if self.diff is not None:
            change = bytes(self.diff.change[first:last])
            for m in re.finditer(rb"[^\x00]+", change):
                pixels[m.start():m.end()] = codes[m.start():m.end()].translate(plain)
        tips = self.tips.segments if self.tips is not None else None
        cells = Cells(x, y, cols, scale, gap, first, bytes(pixels), tips)
        self.items.append(cells)
        if self.diff is not None:
            self.draw_outlines(cells, first, last, codes, plain)
        return cells

    def draw_outlines(self, cells, first, last, codes, plain):
        """A ring around every run of changed frames, then the frames again on top."""
        change = bytes(self.diff.change[first:last])
        runs = []
        for kind in RING_ORDER:
            # a frame that changed hands gets the thicker ring at one pixel a frame
            t = 2 if cells.scale <= 2 and kind != RESHUFFLED else 1
            ring = self.colour(CHANGE_RGB[kind])
            for m in re.finditer(bytes([kind]) + b"+", change):
                for lo, hi in _row_pieces(m.start(), m.end(), cells.cols):
                    x, y = cells.frame_xy(first + lo)
                    w = (hi - lo) * cells.scale - cells.gap
                    self.items.append(Rect(x - t, y - t, w + 2 * t, cells.scale - cells.gap + 2 * t,
                                           ring))
                    runs.append((lo, hi))
        for lo, hi in runs:
            sub = codes[lo:hi].translate(plain)
            x, y = cells.frame_xy(first + lo)
            self.items.append(Cells(x, y, hi - lo, cells.scale, cells.gap, first + lo, sub,
                                    cells.tips))

    # -- bands and axes -----------------------------------------------------------
    def draw_bands(self, y0, first, cols, scale, rows):
        """Node and zone bands beside the rows, labelled where there is room."""
        lay = self.machine.layout
        zones = [z for z in lay.zones if z.present_pages]
        for kind, x, w, key in (("node", MARGIN + AXIS_W, NODE_W, lambda z: (z.nid,)),
                                ("zone", MARGIN + AXIS_W + NODE_W + 2, ZONE_W,
                                 lambda z: (z.nid, z.zid))):
            segs = []
            for r in range(rows):
                lo = first + r * cols
                z = _zone_at(zones, lo, lo + cols)
                k = key(z) if z else None
                if segs and segs[-1][2] == k:
                    segs[-1][1] = r + 1
                else:
                    segs.append([r, r + 1, k, z])
            last_label = -100
            for r0, r1, k, z in segs:
                if k is None:
                    continue
                rgb = node_rgb(z.nid) if kind == "node" else zone_rgb(z.nid, z.zid)
                yy, h = y0 + r0 * scale, (r1 - r0) * scale
                tip = _band_tip(lay, kind, z)
                self.items.append(Rect(x, yy, w - 2, h, self.colour(rgb), tip))
                self.bands.append((kind, z.nid if kind == "node" else z, x, yy, w - 2, h, rgb))
                label = f"node {z.nid}" if kind == "node" else ZONE_NAMES[z.zid]
                ly = max(yy + (h - 7) // 2, last_label + 9)
                if ly + 7 <= y0 + rows * scale + 2:
                    ink = self.colour((255, 255, 255)) if kind == "node" else self.ink["text"]
                    self.text(x + 3, ly, label, ink)
                    last_label = ly

    def draw_axes(self, y0, first, cols, scale, rows, spacing):
        """pfn labels on the left, physical addresses on the right, every few rows."""
        step = 1
        while step * scale < spacing:
            step *= 2
        for r in range(0, rows + 1, step):
            if r == rows and rows % step:
                break
            pfn = first + r * cols
            y = y0 + r * scale
            self.items.append(Rect(MARGIN + AXIS_W - 3, y, 3, 1, self.ink["grey"]))
            self.items.append(Rect(self.right_x + GUTTER - 5, y, 3, 1, self.ink["grey"]))
            ty = min(max(y - 3, y0 - 3), y0 + rows * scale - 4)
            self.text(MARGIN + AXIS_W - 5, ty, f"0x{pfn:05x}", "grey", anchor="end")
            self.text(self.right_x + GUTTER, ty, f"0x{pfn << PAGE_SHIFT:08x} {_short(pfn)}", "grey")

    # -- what changed -------------------------------------------------------------
    def pick_zooms(self):
        if self.zooms is not None:
            return [ZoomWindow(chr(ord("A") + i), lo, hi, self._changed_in(lo, hi))
                    for i, (lo, hi) in enumerate(self.zooms)]
        if self.diff is None or self.scale >= 4:
            return []
        return zoom_windows(self.diff, self.first, self.last)

    def _changed_in(self, lo, hi):
        if self.diff is None:
            return 0
        return len(self.diff.outlined(lo, hi)) + len(self.diff.moved(lo, hi))

    def draw_change_marks(self, y0, rows):
        """A tick beside every row with an outlined frame, in the colour of
        the ring drawn last there (red over black over blue over green)."""
        if self.diff is None:
            return
        marks = {}
        rank = {kind: i for i, kind in enumerate(RING_ORDER)}
        for pfn in self.diff.outlined(self.first, self.last) + self.diff.moved(self.first,
                                                                               self.last):
            r = (pfn - self.first) // self.cols
            kind = self.diff.change[pfn]
            if r not in marks or rank[kind] > rank[marks[r]]:
                marks[r] = kind
        for r, kind in marks.items():
            self.items.append(Rect(self.right_x, y0 + r * self.scale - (1 if self.scale < 3 else 0),
                                   4, max(self.scale, 3), self.colour(CHANGE_RGB[kind])))

    def draw_zoom_marks(self, windows, y0):
        """A bar beside the rows of each zoom window, and its letter (moved
        right when it would cover the previous one)."""
        prev_y, dx = -100, 0
        for w in windows:
            r0 = (w.first - self.first) // self.cols
            r1 = (w.last - 1 - self.first) // self.cols + 1
            y, h = y0 + r0 * self.scale, max((r1 - r0) * self.scale, 3)
            ty = y + h // 2 - 3
            dx = dx + 6 if ty < prev_y + 9 else 0
            prev_y = ty
            self.items.append(Rect(self.right_x + 5, y, 2, h, self.ink["text"]))
            self.text(self.right_x + 9 + dx, ty, w.label)

    def draw_panel(self, w, y):
        """One zoom window, 64 frames a row, 8 pixels each, with its own axes."""
        zones = [f"{z.name} node {z.nid}" for z in self.machine.layout.zones
                 if z.present_pages and z.start_pfn < w.last and w.first < z.end_pfn]
        where = f", zone{'s' if len(zones) > 1 else ''} {' and '.join(zones)}" if zones else ""
        head = (f"{w.label}: pfn 0x{w.first:x}-0x{w.last - 1:x} ({frame_size_text(w.last - w.first)} at "
                f"phys 0x{w.first << PAGE_SHIFT:08x}{where})")
        if self.diff is not None:
            head += ": " + _change_counts(self.diff, w.first, w.last)
        self.text(self.map_x, y, head)
        y += 14
        rows = (w.last - w.first + PANEL_COLS - 1) // PANEL_COLS
        grey = self.colour((235, 235, 235))
        self.items.append(Rect(self.map_x - 1, y - 1, PANEL_COLS * PANEL_SCALE + 1,
                               rows * PANEL_SCALE + 1, grey))
        cells = self.draw_cells(self.map_x, y, w.first, w.last, PANEL_COLS, PANEL_SCALE, 1)
        self.draw_bands(y, w.first, PANEL_COLS, PANEL_SCALE, rows)
        self.draw_axes(y, w.first, PANEL_COLS, PANEL_SCALE, rows, 16)
        return y + rows * PANEL_SCALE + 14, Panel(w, cells)

    # -- legend ---------------------------------------------------------------------
    def draw_legend(self, groups, x, y):
        right = x + LEGEND_W
        self.text(x, y, "page frames (4 KiB) by owner")
        self.text(right, y, "frames", "grey", anchor="end")
        y += LINE + 3
        for g in groups:
            self.text(x, y, g.title)
            self.text(right, y, str(g.total), anchor="end")
            y += LINE
            for code, label, n in g.entries:
                self.items.append(Rect(x + 8, y, 8, 8, self.colour(code_rgb(code))))
                self.text(x + 20, y + 1, label)
                self.text(right, y + 1, str(n), "grey", anchor="end")
                y += LINE
            y += 3
        y = self.legend_zones(x, y + 4, right)
        if self.diff is not None:
            y = self.legend_changes(x, y + 4, right)
        return y

    def legend_zones(self, x, y, right):
        lay = self.machine.layout
        self.items.append(Rect(x, y - 4, LEGEND_W, 1, self.ink["rule"]))
        self.text(x, y, "zones and nodes")
        self.text(right, y, "present", "grey", anchor="end")
        y += LINE
        for z in lay.zones:
            if not z.present_pages:
                continue
            self.items.append(Rect(x + 8, y, 4, 8, self.colour(node_rgb(z.nid))))
            self.items.append(Rect(x + 12, y, 4, 8, self.colour(zone_rgb(z.nid, z.zid))))
            self.text(x + 20, y + 1, f"{z.name:<7} node {z.nid} 0x{z.start_pfn:05x}-"
                                     f"0x{z.end_pfn:05x}")
            self.text(right, y + 1, str(z.present_pages), "grey", anchor="end")
            y += LINE
        return y + 3

    def legend_changes(self, x, y, right):
        self.items.append(Rect(x, y - 4, LEGEND_W, 1, self.ink["rule"]))
        self.text(x, y, "changed (faded: unchanged)")
        y += LINE
        counts = self.diff.counts_in(self.first, self.last)
        for kind in (ALLOCATED, FREED, REUSED, RESHUFFLED):
            ring = self.colour(CHANGE_RGB[kind])
            self.items.append(Rect(x + 7, y - 1, 10, 10, ring))
            self.items.append(Rect(x + 9, y + 1, 6, 6, 0))
            self.text(x + 20, y + 1, CHANGE_LABELS[kind])
            self.text(right, y + 1, str(counts.get(kind, 0)), "grey", anchor="end")
            y += LINE
        return y


def _change_counts(diff, lo, hi):
    """ "3 allocated, 12 moved": the changes in [lo, hi) that happened."""
    counts = {}
    for pfn in diff.outlined(lo, hi) + diff.moved(lo, hi):
        counts[diff.change[pfn]] = counts.get(diff.change[pfn], 0) + 1
    words = {ALLOCATED: "allocated", FREED: "freed", REUSED: "reused", RESHUFFLED: "moved"}
    parts = [f"{counts[k]} {words[k]}" for k in (ALLOCATED, FREED, REUSED, RESHUFFLED) if k in counts]
    return ", ".join(parts) or "nothing changed"


def _zone_at(zones, lo, hi):
    """The zone holding pfn lo, else the first zone starting in [lo, hi)."""
    for z in zones:
        if z.start_pfn <= lo < z.end_pfn:
            return z
    starts = [z for z in zones if lo <= z.start_pfn < hi]
    return min(starts, key=lambda z: z.start_pfn) if starts else None


def _band_tip(lay, kind, z):
    if kind == "node":
        spans = [(s, e) for n, s, e in lay.memory if n == z.nid]
        pages = sum(zz.present_pages for zz in lay.zones if zz.nid == z.nid)
        return (f"node {z.nid}: pfn 0x{spans[0][0]:x}-0x{spans[-1][1] - 1:x}, "
                f"{pages} pages present")
    return (f"zone {z.name}, node {z.nid}: pfn 0x{z.start_pfn:x}-0x{z.end_pfn - 1:x} "
            f"(phys 0x{z.start_pfn << PAGE_SHIFT:08x}-0x{(z.end_pfn << PAGE_SHIFT) - 1:08x}), "
            f"{z.present_pages} pages present")


def _row_pieces(lo, hi, cols):
    """[lo, hi) cut at row ends."""
    out = []
    while lo < hi:
        end = min(hi, (lo // cols + 1) * cols)
        out.append((lo, end))
        lo = end
    return out


def _short(pfn):
    """The physical address of pfn, short: 0K, 640K, 16M, 867.25M, 1G."""
    b = pfn << PAGE_SHIFT
    for unit, shift in (("G", 30), ("M", 20)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return f"{b >> shift}{unit}"
    if b >= 1 << 20:
        return f"{b / (1 << 20):.3f}".rstrip("0") + "M"
    return f"{b >> 10}K"


def build_picture(machine, fm, first, last, title, notes=(), before=None, diff=None,
                  tips=None, cols=None, scale=None, zooms=None):
    """The Picture of frames [first, last) of fm (and of what changed, with diff)."""
    return _Layout(machine, fm, first, last, title, list(notes), before, diff, tips,
                   cols, scale, zooms).build()
