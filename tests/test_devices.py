"""Tests for mmemu.devices: the model registry, the three shipped models
(uart16550, framebuffer, regs), the all-ones bus, and devices built from a
config and reached through Unicorn MMIO.

The framebuffer's PNG is decoded here by an independent reader (chunk
CRCs, zlib, unfiltered lines) rather than by the encoder's own code.
"""
import struct
import textwrap
import zlib

import pytest

from mmemu import devices as devmod
from mmemu.config import DEVICE_MODELS as CONFIG_MODELS, DeviceConfig
from mmemu.devices import OpenBus, register_device_model
from mmemu.devices.framebuffer import Framebuffer, encode_png
from mmemu.devices.regs import RegAccess, RegisterFile
from mmemu.devices.uart16550 import Uart16550
from mmemu.errors import ConfigError
from mmemu.log import KernelLog
from mmemu.machine import Machine

pytestmark = pytest.mark.flavours


class FakeMachine:
    """What a device model needs of a machine: a log (and a config for errors)."""

    def __init__(self):
        self.log = KernelLog(echo=False)
        self.cfg = type("Cfg", (), {"path": "test.yaml"})()


def dev_cfg(model, size=0x1000, **options):
    return DeviceConfig(name=f"{model}0", model=model, base=0xFE000000, size=size, options=options)


def read_png(data):
    """(width, height, rgb bytes) of an 8-bit RGB PNG with unfiltered lines."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[y * (1 + 3 * width):(y + 1) * (1 + 3 * width)] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, b"".join(row[1:] for row in rows)


# -- the registry -----------------------------------------------------------------

def test_register_device_model_adds_config_name():
    class Dummy:
        def __init__(self, machine, cfg):
            pass
    register_device_model("test-dummy", Dummy)
    try:
        assert "test-dummy" in CONFIG_MODELS and devmod.DEVICE_MODELS["test-dummy"] is Dummy
        with pytest.raises(ValueError):
            register_device_model("test-dummy", Dummy)
        register_device_model("test-dummy", Dummy, replace=True)
    finally:
        del devmod.DEVICE_MODELS["test-dummy"]
        CONFIG_MODELS.discard("test-dummy")


def test_shipped_models_registered():
    assert {"uart16550", "framebuffer", "regs"} <= set(devmod.DEVICE_MODELS)


def test_user_model_from_config(tmp_path):
    class Counter:
        def __init__(self, machine, cfg):
            self.count = cfg.options.get("start", 0)

        def read(self, offset, size):
            self.count += 1
            return self.count

        def write(self, offset, size, value):
            self.count = value

    register_device_model("test-counter", Counter)
    try:
        path = tmp_path / "counter.yaml"
        path.write_text(textwrap.dedent("""\
            memory: {size: 128M}
            devices:
              - {name: ctr0, model: test-counter, base: 0xfe002000, size: 4K, start: 5}
            """))
        m = Machine(str(path), echo=False)
        assert m.devices["ctr0"].count == 5
        assert int.from_bytes(m.engine.uc.mem_read(0xFE002000, 4), "little") == 6
        m.engine.uc.mem_write(0xFE002004, (100).to_bytes(4, "little"))
        assert m.devices["ctr0"].count == 100
        assert list(m.devices) == ["ctr0"] and len(m.devices) == 1
    finally:
        del devmod.DEVICE_MODELS["test-counter"]
        CONFIG_MODELS.discard("test-counter")


def test_device_exception_reads_all_ones(tmp_path):
    class Broken:
        def __init__(self, machine, cfg):
            pass

        def read(self, offset, size):
            raise RuntimeError("model bug")

        def write(self, offset, size, value):
            raise RuntimeError("model bug")

    register_device_model("test-broken", Broken)
    try:
        path = tmp_path / "broken.yaml"
        path.write_text("memory: {size: 128M}\n"
                        "devices: [{name: bad0, model: test-broken, base: 0xfe002000, size: 4K}]\n")
        m = Machine(str(path), echo=False)
        assert m.engine.uc.mem_read(0xFE002000, 2) == b"\xff\xff"
        m.engine.uc.mem_write(0xFE002000, b"\x01")
        assert "device bad0: read of 2 bytes at offset 0x0 failed" in m.log.text()
        assert "device bad0: write of 1 bytes at offset 0x0 failed" in m.log.text()
    finally:
        del devmod.DEVICE_MODELS["test-broken"]
        CONFIG_MODELS.discard("test-broken")


def test_open_bus_reads_all_ones():
    bus = OpenBus()
    assert (bus.read(0, 1), bus.read(3, 2), bus.read(8, 4)) == (0xFF, 0xFFFF, 0xFFFFFFFF)
    bus.write(0, 4, 0)
    assert (bus.reads, bus.writes) == (3, 1)


def test_pc_1g_devices_mapped():
    m = Machine("pc-1g", echo=False)
    assert sorted(m.devices) == ["fb0", "regs0", "uart0"]
    assert m.devices.describe(0xFE000005) == "device uart0 (uart16550) at offset 0x5"
    assert m.devices.find(0xFD000000).name == "fb0"
    assert m.devices.find(0xFE100000) is None
    m.engine.uc.mem_write(0xFE001008, (7).to_bytes(4, "little"))
    assert m.devices["regs0"].log == [RegAccess(8, 4, 7, "write")]


# -- uart16550 -------------------------------------------------------------------

def test_uart_thr_lines_reach_console():
    m = FakeMachine()
    uart = Uart16550(m, dev_cfg("uart16550"))
    for byte in b"hello\r\nwor":
        uart.write(0, 1, byte)
    assert uart.lines == ["hello"]
    assert m.log.text() == "hello"
    for byte in b"ld\n":
        uart.write(0, 1, byte)
    assert uart.lines == ["hello", "world"] and bytes(uart.output) == b"hello\r\nworld\n"


def test_uart_lsr_and_registers():
    uart = Uart16550(FakeMachine(), dev_cfg("uart16550"))
    assert uart.read(5, 1) == 0x60                    # THRE | TEMT, nothing received
    uart.write(7, 1, 0xA5)
    assert uart.read(7, 1) == 0xA5                    # scratch
    uart.write(3, 1, 0x80)                            # DLAB
    uart.write(0, 1, 12)
    uart.write(1, 1, 0)
    assert (uart.read(0, 1), uart.read(1, 1), uart.baud) == (12, 0, 9600)
    uart.write(3, 1, 0x03)
    assert uart.read(3, 1) == 0x03 and uart.output == bytearray()   # DLL writes are not output
    assert uart.read(6, 1) == 0xB0                    # DCD | DSR | CTS
    assert uart.read(2, 1) == 0x01                    # no interrupt pending
    uart.write(2, 1, 0x07)
    assert uart.read(2, 1) == 0xC1                    # FIFOs enabled


def test_uart_receive_and_loopback():
    uart = Uart16550(FakeMachine(), dev_cfg("uart16550"))
    uart.feed("ok")
    assert uart.read(5, 1) & 0x01
    assert (uart.read(0, 1), uart.read(0, 1)) == (ord("o"), ord("k"))
    assert not uart.read(5, 1) & 0x01
    uart.write(4, 1, 0x10)                            # loopback
    uart.write(0, 1, 0x42)
    assert uart.read(0, 1) == 0x42 and uart.output == bytearray()


def test_uart_thri_reported_once():
    uart = Uart16550(FakeMachine(), dev_cfg("uart16550"))
    uart.write(1, 1, 0x02)                            # enable THRI
    assert uart.read(2, 1) == 0x02
    assert uart.read(2, 1) == 0x01                    # reading IIR cleared it


# -- framebuffer -------------------------------------------------------------------

def test_framebuffer_memory_like():
    fb = Framebuffer(FakeMachine(), dev_cfg("framebuffer", size=0x2000, width=4, height=2))
    fb.write(0, 4, 0x00FF8000)
    fb.write(6, 2, 0xBEEF)
    assert fb.read(0, 4) == 0x00FF8000 and fb.read(0, 1) == 0x00 and fb.read(6, 2) == 0xBEEF
    assert fb.pixel(0, 0) == (0xFF, 0x80, 0x00)


def test_framebuffer_png_xrgb8888(tmp_path):
    fb = Framebuffer(FakeMachine(), dev_cfg("framebuffer", width=3, height=2))
    colours = [0xFF0000, 0x00FF00, 0x0000FF, 0xFFFFFF, 0x000000, 0x123456]
    for i, c in enumerate(colours):
        fb.write(i * 4, 4, c)
    path = fb.save_png(tmp_path / "fb.png")
    width, height, rgb = read_png(path.read_bytes())
    assert (width, height) == (3, 2)
    assert rgb == b"".join(c.to_bytes(3, "big") for c in colours)


def test_framebuffer_png_rgb565(tmp_path):
    fb = Framebuffer(FakeMachine(), dev_cfg("framebuffer", width=2, height=1, format="rgb565"))
    fb.write(0, 2, 0xF800)                            # pure red
    fb.write(2, 2, 0x07E0)                            # pure green
    _, _, rgb = read_png(encode_png(2, 1, fb.rgb()))
    assert rgb == b"\xff\x00\x00\x00\xff\x00"


def test_framebuffer_stride(tmp_path):
    fb = Framebuffer(FakeMachine(), dev_cfg("framebuffer", width=2, height=2, stride=16))
    fb.write(16, 4, 0x0000FF)
    assert fb.pixel(0, 1) == (0, 0, 0xFF)
    assert fb.rgb()[6:9] == b"\x00\x00\xff"


def test_framebuffer_bad_options():
    with pytest.raises(ConfigError, match="format"):
        Framebuffer(FakeMachine(), dev_cfg("framebuffer", format="yuv"))
    with pytest.raises(ConfigError, match="needs"):
        Framebuffer(FakeMachine(), dev_cfg("framebuffer", size=0x1000, width=640, height=480))


# -- regs --------------------------------------------------------------------------

def test_regs_log_every_access():
    regs = RegisterFile(FakeMachine(), dev_cfg("regs", size=0x20, init={0: 0x1234ABCD}))
    assert regs.read(0, 4) == 0x1234ABCD
    regs.write(4, 4, 0xCAFEF00D)
    regs.write(8, 2, 0xBEEF)
    regs.write(0xA, 1, 0x5A)
    assert regs.read(8, 4) == 0x005ABEEF
    assert regs.read(5, 1) == 0xF0
    assert regs.log == [
        RegAccess(0, 4, 0x1234ABCD, "read"), RegAccess(4, 4, 0xCAFEF00D, "write"),
        RegAccess(8, 2, 0xBEEF, "write"), RegAccess(0xA, 1, 0x5A, "write"),
        RegAccess(8, 4, 0x005ABEEF, "read"), RegAccess(5, 1, 0xF0, "read"),
    ]
    assert len(regs.reads()) == 3 and len(regs.writes()) == 3


def test_regs_on_access_hook():
    regs = RegisterFile(FakeMachine(), dev_cfg("regs", size=0x10, init={"0x4": "0x10"}))
    seen = []
    regs.on_access = seen.append
    assert regs.read(4, 4) == 0x10
    assert seen == [RegAccess(4, 4, 0x10, "read")]
