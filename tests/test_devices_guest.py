"""Guest-program tests for the devices: a UART driver printing through
ioremap, a framebuffer pattern saved and checked as a picture, and a
register-block driver whose every access the test reads back.
"""
import struct
import zlib
from pathlib import Path

from mmemu.devices.regs import RegAccess
from mmemu.machine import Machine
import pytest

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"


def run(program, config="pc-1g"):
    m = Machine(config, echo=False)
    return m, m.run(str(GUEST / program))


def test_uart_driver_prints_a_console_line():
    m, res = run("examples/uart_hello.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    uart = m.devices["uart0"]
    assert len(uart.lines) == 1 and uart.lines[0].startswith("Hello from the 16550 at 0xfe000000")
    assert uart.lines[0] + "\n" in res.console                   # no prefix, a line of its own
    assert uart.baud == 115200 and uart.lcr == 0x03


def _png_pixels(data):
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width

    def pixel(x, y):
        off = y * stride + 1 + 3 * x
        return tuple(raw[off:off + 3])
    return width, height, pixel


def test_framebuffer_pattern_saved_as_png(tmp_path):
    m, res = run("examples/fb_pattern.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    path = m.devices["fb0"].save_png(tmp_path / "pattern.png")
    width, height, pixel = _png_pixels(path.read_bytes())
    assert (width, height) == (640, 480)
    bars = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
            (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]
    assert [pixel(40 + 80 * i, 100) for i in range(8)] == bars
    assert pixel(0, 240) == (0, 0, 0) and pixel(639, 479) == (255, 0, 255)
    assert pixel(639, 240)[0] == 255 and pixel(0, 479)[2] == 255


def test_regs_driver_log():
    m, res = run("examples/regs_driver.c")
    assert (res.reason, res.exit_code) == ("exit", 0), res.log
    assert m.devices["regs0"].log == [
        RegAccess(0x0, 4, 0x00000001, "write"),
        RegAccess(0x8, 4, 0x00000000, "read"),
        RegAccess(0x4, 4, 0xCAFEF00D, "write"),
        RegAccess(0x4, 4, 0xCAFEF00D, "read"),
        RegAccess(0xC, 2, 0xBEEF, "write"),
        RegAccess(0xE, 1, 0x5A, "write"),
        RegAccess(0xC, 4, 0x005ABEEF, "read"),
        RegAccess(0x0, 4, 0x00000000, "write"),
    ]
