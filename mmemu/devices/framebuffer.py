"""A linear framebuffer on MMIO: memory-like pixels a guest draws into.

Options (the config's device keys): ``width`` (640), ``height`` (480),
``format`` (``xrgb8888``, 32 bits a pixel, blue in the low byte as on a PC;
or ``rgb565``, 16 bits), ``stride`` (bytes a line, default width * bytes a
pixel).  The whole window reads and writes like memory; pixels are the first
stride * height bytes.

save_png(path) writes the picture as an 8-bit RGB PNG, encoded here with
zlib and struct (no imaging library needed); rgb() and pixel(x, y) give the
same pixels to Python.
"""
import mmap
import struct
import zlib

from mmemu.devices import config_path, device_key, device_option
from mmemu.errors import ConfigError

FORMATS = {"xrgb8888": 4, "rgb565": 2}
MAX_SIDE = 16384                   # pixels a line or a column: more than any PC display
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STRUCTS = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
            8: struct.Struct("<Q")}


class Framebuffer:
    """A width x height framebuffer in a format of FORMATS."""

    model = "framebuffer"

    def __init__(self, machine, cfg):
        opts = cfg.options
        self.name = cfg.name
        where = device_key(machine, cfg)
        self.width = device_option(machine, cfg, "width", 640, 1, MAX_SIDE, "a width in pixels")
        self.height = device_option(machine, cfg, "height", 480, 1, MAX_SIDE,
                                    "a height in pixels")
        fmt = opts.get("format", "xrgb8888")
        self.format = fmt.lower() if isinstance(fmt, str) else fmt
        if self.format not in FORMATS:
            raise ConfigError(config_path(machine), f"{where}.format",
                              f"unknown pixel format {clip_repr(fmt)}; known: "
                              f"{', '.join(sorted(FORMATS))}")
        self.bpp = FORMATS[self.format]
        self.stride = device_option(machine, cfg, "stride", self.width * self.bpp,
                                    self.width * self.bpp, MAX_SIDE * 4,
                                    f"a line length in bytes (width x {self.bpp})")
        if self.stride * self.height > cfg.size:
            raise ConfigError(config_path(machine), f"{where}.size",
                              f"{self.width}x{self.height} {self.format} needs "
                              f"{self.stride * self.height} bytes; the window has {cfg.size}")
        # Anonymous memory: the window costs the host only the pages drawn on.
        self.mem = mmap.mmap(-1, cfg.size)

    # -- MMIO ------------------------------------------------------------------
    def read(self, offset, size):
        return _STRUCTS[size].unpack_from(self.mem, offset)[0]

    def write(self, offset, size, value):
        _STRUCTS[size].pack_into(self.mem, offset, value)

    # -- pixels ------------------------------------------------------------------
    def pixel(self, x, y):
        """(r, g, b), 8 bits each, of the pixel at column x, line y."""
        off = y * self.stride + x * self.bpp
        if self.bpp == 4:
            b, g, r = self.mem[off], self.mem[off + 1], self.mem[off + 2]
            return r, g, b
        return _rgb565_to_rgb(self.mem[off] | self.mem[off + 1] << 8)

    def rgb(self):
        """The picture as bytes: r, g, b per pixel, line after line."""
        out = bytearray()
        for y in range(self.height):
            line = self.mem[y * self.stride:y * self.stride + self.width * self.bpp]
            out += _line_to_rgb(line, self.format)
        return bytes(out)

    def save_png(self, path):
        """Write the picture to path as an 8-bit RGB PNG."""
        data = encode_png(self.width, self.height, self.rgb())
        with open(path, "wb") as f:
            f.write(data)
        return path


def _line_to_rgb(line, fmt):
    if fmt == "xrgb8888":
        out = bytearray(len(line) // 4 * 3)
        out[0::3] = line[2::4]
        out[1::3] = line[1::4]
        out[2::3] = line[0::4]
        return out
    out = bytearray()
    for (word,) in struct.iter_unpack("<H", line):
        out += bytes(_rgb565_to_rgb(word))
    return out


def _rgb565_to_rgb(word):
    """Widen 5/6/5 bits to 8 by repeating the top bits, as displays do."""
    r, g, b = (word >> 11) & 0x1F, (word >> 5) & 0x3F, word & 0x1F
    return (r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)


def encode_png(width, height, rgb):
    """A PNG file (bytes) of width x height 8-bit RGB pixels, lines unfiltered."""
    row = width * 3
    raw = b"".join(b"\x00" + rgb[y * row:(y + 1) * row] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6))
            + _chunk(b"IEND", b""))


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def clip_repr(value, limit=40):
    """repr(value), cut short (an error message never echoes unbounded input)."""
    text = repr(value) if not isinstance(value, (list, dict)) else type(value).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
