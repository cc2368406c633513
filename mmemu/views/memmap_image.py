"""A small vector scene, written as PNG or SVG with no imaging library.

A Scene is a list of items in drawing order over a white page: Rect (a
filled box, with an optional tooltip), Text (in a 5x7 bitmap font with
lowercase and descenders, optionally scaled) and Cells (a grid of page
frames, one colour per frame, with tooltips per run of frames).  PNG: the
items are rasterized into an 8-bit indexed image and encoded with zlib
and struct (IHDR colour type 3, PLTE, one IDAT).  SVG: the same items as
<rect> and <text>, every frame cell carrying a <title> tooltip.
"""
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

# -- the scene ------------------------------------------------------------------


class Palette:
    """Colours by index (at most 256: the PNG is indexed); index 0 is the page."""

    def __init__(self):
        self.colours = []
        self._index = {}
        self.add((255, 255, 255))

    def add(self, rgb):
        rgb = tuple(int(c) for c in rgb)
        i = self._index.get(rgb)
        if i is None:
            if len(self.colours) == 256:
                raise ValueError("more than 256 colours in one picture")
            i = self._index[rgb] = len(self.colours)
            self.colours.append(rgb)
        return i

    def __getitem__(self, i):
        return self.colours[i]


@dataclass
class Rect:
    x: int
    y: int
    w: int
    h: int
    colour: int
    tip: Optional[str] = None


@dataclass
class Text:
    x: int
    y: int                   # the top of the capitals
    text: str
    colour: int
    scale: int = 1
    anchor: str = "start"    # or "end": x is the right edge


@dataclass
class Cells:
    """Frames first_pfn.. drawn ``cols`` to a row, ``scale`` pixels apart,
    each ``scale - gap`` pixels square, in palette colours ``pixels``."""

    x: int
    y: int
    cols: int
    scale: int
    gap: int
    first_pfn: int
    pixels: bytes                                 # one palette index per frame
    tips: Optional[Callable] = None               # fn(start pfn, end pfn) -> [(start, end, text)]

    @property
    def rows(self):
        return (len(self.pixels) + self.cols - 1) // self.cols

    def frame_xy(self, pfn):
        row, col = divmod(pfn - self.first_pfn, self.cols)
        return self.x + col * self.scale, self.y + row * self.scale


@dataclass
class Scene:
    width: int
    height: int
    palette: Palette
    items: list = field(default_factory=list)


def text_width(text, scale=1):
    return len(text) * 6 * scale


# -- rasterizing --------------------------------------------------------------------

def rasterize(scene):
    """The scene as width*height palette indexes, row by row."""
    W, H = scene.width, scene.height
    px = bytearray(W * H)
    for item in scene.items:
        if isinstance(item, Rect):
            _fill(px, W, H, item.x, item.y, item.w, item.h, item.colour)
        elif isinstance(item, Text):
            x = item.x - text_width(item.text, item.scale) if item.anchor == "end" else item.x
            _draw_text(px, W, H, x, item.y, item.text, item.colour, item.scale)
        else:
            _draw_cells(px, W, H, item)
    return px


def _fill(px, W, H, x, y, w, h, colour):
    x0, x1 = max(x, 0), min(x + w, W)
    if x0 >= x1:
        return
    run = bytes([colour]) * (x1 - x0)
    for yy in range(max(y, 0), min(y + h, H)):
        px[yy * W + x0:yy * W + x1] = run


def _draw_cells(px, W, H, c):
    s, size = c.scale, c.scale - c.gap
    for r in range(c.rows):
        row = bytes(c.pixels[r * c.cols:(r + 1) * c.cols])
        y = c.y + r * s
        if c.gap:              # cell by cell, leaving what is under the gaps
            for i, p in enumerate(row):
                _fill(px, W, H, c.x + i * s, y, size, size, p)
            continue
        line = bytes(p for p in row for _ in range(s)) if s > 1 else row
        line = line[:max(W - c.x, 0)]
        for yy in range(max(y, 0), min(y + s, H)):
            px[yy * W + c.x:yy * W + c.x + len(line)] = line


# -- a 5x7 font with lowercase ------------------------------------------------------
# Rows 0-6 are the cell (capitals fill it, lowercase takes rows 2-6), rows 7-8
# the descenders of g, j, p, q, y, and of the comma.

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
    "a": "..... ..... .###. ....# .#### #...# .####", "b": "#.... #.... #.##. ##..# #...# #...# ####.",
    "c": "..... ..... .###. #.... #.... #...# .###.", "d": "....# ....# .##.# #..## #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.", "f": "..##. .#..# .#... ###.. .#... .#... .#...",
    "g": "..... ..... .#### #...# #...# #...# .#### ....# .###.",
    "h": "#.... #.... #.##. ##..# #...# #...# #...#", "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    "j": "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.", "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "m": "..... ..... ##.#. #.#.# #.#.# #...# #...#", "n": "..... ..... #.##. ##..# #...# #...# #...#",
    "o": "..... ..... .###. #...# #...# #...# .###.",
    "p": "..... ..... ####. #...# #...# #...# ####. #.... #....",
    "q": "..... ..... .#### #...# #...# #...# .#### ....# ....#",
    "r": "..... ..... #.##. ##..# #.... #.... #....", "s": "..... ..... .#### #.... .###. ....# ####.",
    "t": ".#... .#... ###.. .#... .#... .#..# ..##.", "u": "..... ..... #...# #...# #...# #..## .##.#",
    "v": "..... ..... #...# #...# #...# .#.#. ..#..", "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    "y": "..... ..... #...# #...# #...# #...# .#### ....# .###.",
    "z": "..... ..... ##### ...#. ..#.. .#... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.", "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####", "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.", "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.", "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.", "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "-": "..... ..... ..... ##### ..... ..... .....", ".": "..... ..... ..... ..... ..... .##.. .##..",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....", ";": "..... .##.. .##.. ..... .##.. ..#.. .#...",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.", ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "/": "..... ....# ...#. ..#.. .#... #.... .....", "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "_": "..... ..... ..... ..... ..... ..... #####", ",": "..... ..... ..... ..... ..... .##.. ..#.. .#...",
    "'": "..#.. ..#.. ..... ..... ..... ..... .....", "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "[": ".###. .#... .#... .#... .#... .#... .###.", "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    "=": "..... ..... ##### ..... ##### ..... .....", "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.", ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....", "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.", "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", "~": "..... ..... .#... #.#.# ...#. ..... .....",
    '"': ".#.#. .#.#. ..... ..... ..... ..... .....", "@": ".###. #...# #.### #.#.# #.### #.... .###.",
    " ": "..... ..... ..... ..... ..... ..... .....",
}
_BITMAPS = {ch: glyph.split() for ch, glyph in _GLYPHS.items()}


def _draw_text(px, W, H, x, y, text, colour, scale):
    for ch in text:
        rows = _BITMAPS.get(ch) or _BITMAPS.get(ch.upper()) or _BITMAPS["?"]
        for dy, row in enumerate(rows):
            for dx, bit in enumerate(row):
                if bit == "#":
                    _fill(px, W, H, x + dx * scale, y + dy * scale, scale, scale, colour)
        x += 6 * scale


# -- PNG ----------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(scene):
    """The scene as a PNG file: 8-bit indexed colour (IHDR colour type 3, PLTE)."""
    px = rasterize(scene)
    W = scene.width
    ihdr = struct.pack(">IIBBBBB", W, scene.height, 8, 3, 0, 0, 0)
    plte = b"".join(bytes(c) for c in scene.palette.colours)
    raw = b"".join(b"\x00" + bytes(px[y * W:(y + 1) * W]) for y in range(scene.height))
    return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"PLTE", plte)
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


# -- SVG ----------------------------------------------------------------------------

_RUN = re.compile(rb"(.)\1*", re.DOTALL)


def svg_text(scene):
    """The scene as SVG: frame cells as <rect>s (one per run of equal frames
    in a row) with a <title> each, which a browser shows as a tooltip."""
    colour = ["#%02x%02x%02x" % c for c in scene.palette.colours]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{scene.width}" '
           f'height="{scene.height}" viewBox="0 0 {scene.width} {scene.height}" '
           f'shape-rendering="crispEdges" font-family="monospace" font-size="9" xml:space="preserve">',
           f'<rect width="{scene.width}" height="{scene.height}" fill="{colour[0]}"/>']
    for item in scene.items:
        if isinstance(item, Rect):
            out.append(_svg_rect(item.x, item.y, item.w, item.h, colour[item.colour], item.tip))
        elif isinstance(item, Text):
            anchor = ' text-anchor="end"' if item.anchor == "end" else ""
            size = f' font-size="{9 * item.scale}"' if item.scale != 1 else ""
            out.append(f'<text x="{item.x}" y="{item.y + 7 * item.scale}"{anchor}{size} '
                       f'fill="{colour[item.colour]}">{_xml(item.text)}</text>')
        else:
            out.extend(_svg_cells(item, colour))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_rect(x, y, w, h, fill, tip=None):
    if tip is None:
        return f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}"/>'
    return (f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}">'
            f'<title>{_xml(tip)}</title></rect>')


def _svg_cells(c, colour):
    """One rect per run of equal colour and equal tooltip within a row
    (one per frame when the cells have gaps between them)."""
    out = []
    tips = c.tips(c.first_pfn, c.first_pfn + len(c.pixels)) if c.tips else []
    bounds = [start for start, _, _ in tips]
    size = c.scale - c.gap
    for r in range(c.rows):
        row = bytes(c.pixels[r * c.cols:(r + 1) * c.cols])
        row_pfn = c.first_pfn + r * c.cols
        for m in _RUN.finditer(row):
            for start, end, tip in _split(row_pfn + m.start(), row_pfn + m.end(), tips, bounds):
                n = end - start if not c.gap else 1
                for pfn in range(start, end, n):
                    x, y = c.frame_xy(pfn)
                    out.append(_svg_rect(x, y, n * c.scale - c.gap, size,
                                         colour[m.group()[0]], tip))
    return out


def _split(start, end, tips, bounds):
    """[start, end) cut where the tooltip changes: (start, end, tip) pieces."""
    if not tips:
        return [(start, end, None)]
    import bisect
    i = max(bisect.bisect_right(bounds, start) - 1, 0)
    out = []
    while start < end and i < len(tips):
        t_start, t_end, tip = tips[i]
        if t_end <= start:
            i += 1
            continue
        piece_end = min(end, t_end)
        out.append((start, piece_end, tip))
        start = piece_end
        i += 1
    if start < end:
        out.append((start, end, None))
    return out


def _xml(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
