"""MMIO device models: the ``devices:`` of a machine config, as hardware.

Every device in the config becomes an object mapped with Unicorn MMIO at its
physical window, so guest code reaches it through ioremap() and the page
tables, as a driver reaches a device.  Shipped models:

* ``uart16550`` (mmemu.devices.uart16550): a 16550A UART; bytes written to
  THR become console lines;
* ``framebuffer`` (mmemu.devices.framebuffer): memory-like pixels,
  ``width``/``height``/``format`` (xrgb8888 or rgb565) options, ``save_png()``;
* ``regs`` (mmemu.devices.regs): 32-bit registers that log every access.

Users add their own models from Python, before the config is loaded.  A
model is a factory ``factory(machine, cfg) -> device`` (cfg is the
config's mmemu.config.DeviceConfig: name, model, base, size, options) whose
device has ``read(offset, size) -> int`` and ``write(offset, size, value)``;
offsets are from the window's base and sizes are 1, 2 or 4 bytes::

    from mmemu import Machine
    from mmemu.devices import register_device_model

    class Counter:
        '''Reads count up; a write sets the count.'''
        def __init__(self, machine, cfg):
            self.count = cfg.options.get("start", 0)
        def read(self, offset, size):
            self.count += 1
            return self.count
        def write(self, offset, size, value):
            self.count = value

    register_device_model("counter", Counter)
    # my.yaml:  devices: [{name: ctr0, model: counter, base: 0xfe002000, size: 4K, start: 5}]
    m = Machine("my.yaml")
    m.devices["ctr0"].count        # the device object, by name

A device that raises in read() or write() is reported on the kernel log and
reads as all ones; the guest keeps running.  A model reads its options with
device_option(), which refuses a value of the wrong type or range with the
config error that names the key (``devices[1].width``); a factory that
raises anything else on its options is refused in one line too.

Like a PC bus, physical addresses with nothing behind them read all ones
(0xff, 0xffff, 0xffffffff) and ignore writes: when ioremap() maps a range
that is neither RAM nor a device window, DeviceBus.map_unbacked() puts a
catch-all MMIO window there (and keeps it: the bus answers the same way
whether or not anyone has mapped it).
"""
from collections.abc import Mapping
from dataclasses import dataclass

from mmemu.config import DEVICE_MODELS as CONFIG_MODEL_NAMES
from mmemu.errors import ConfigError, MmemuError, clip, clip_repr
from mmemu.layout import PAGE_SIZE
from mmemu.log import KERN_ERR

ALL_ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}

DEVICE_MODELS = {}     # model name -> factory(machine, DeviceConfig)


class DeviceError(MmemuError):
    """A device model cannot be built or mapped."""


def register_device_model(name, factory, replace=False):
    """Make a device model available to configs under ``name``.

    factory(machine, cfg) returns an object with read(offset, size) and
    write(offset, size, value).  Call it before load_config()/Machine() reads
    a config naming the model.  Registering a name twice needs replace=True.
    """
    if not callable(factory):
        raise TypeError(f"device model {name!r}: the factory must be callable")
    if name in DEVICE_MODELS and not replace:
        raise ValueError(f"device model {name!r} is already registered")
    DEVICE_MODELS[name] = factory
    CONFIG_MODEL_NAMES.add(name)


@dataclass
class Window:
    """One mapped physical window: [base, end) and what answers there."""

    base: int
    end: int
    name: str
    device: object

    def __contains__(self, pa):
        return self.base <= pa < self.end


class OpenBus:
    """What answers where nothing is: reads all ones, writes vanish."""

    def __init__(self):
        self.reads = 0
        self.writes = 0

    def read(self, offset, size):
        self.reads += 1
        return ALL_ONES.get(size, 0xFFFFFFFF)

    def write(self, offset, size, value):
        self.writes += 1


class DeviceBus(Mapping):
    """The machine's devices by name, and the physical windows they answer in."""

    def __init__(self, machine):
        self.machine = machine
        self.devices = {}
        self.windows = []          # device windows, by base
        self.open_bus = OpenBus()
        self.holes = []            # catch-all windows made by map_unbacked()
        self._ram = _ram_pages(machine.cfg.ram)

    # -- Mapping -----------------------------------------------------------
    def __getitem__(self, name):
        return self.devices[name]

    def __iter__(self):
        return iter(self.devices)

    def __len__(self):
        return len(self.devices)

    # -- building ----------------------------------------------------------
    def add(self, cfg):
        """Build the device cfg names and map its window."""
        factory = DEVICE_MODELS.get(cfg.model)
        if factory is None:
            raise DeviceError(f"device {cfg.name}: no device model '{cfg.model}' is "
                              f"registered (known: {', '.join(sorted(DEVICE_MODELS))})")
        try:
            device = factory(self.machine, cfg)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise ConfigError(config_path(self.machine), device_key(self.machine, cfg),
                              f"device model '{cfg.model}' refused its options: "
                              f"{clip(str(exc))}") from None
        self._map(cfg.base, cfg.size, cfg.name, device)
        self.devices[cfg.name] = device
        self.windows.append(Window(cfg.base, cfg.base + cfg.size, cfg.name, device))
        self.windows.sort(key=lambda w: w.base)
        return device

    def _map(self, base, size, name, device):
        read, write = _guarded(self.machine.log, name, device)
        self.machine.engine.map_mmio(base, size, read, write)

    # -- looking up ----------------------------------------------------------
    def find(self, pa):
        """The Window (device or catch-all) answering at physical address pa, or None."""
        for w in self.windows:
            if pa in w:
                return w
        for w in self.holes:
            if pa in w:
                return w
        return None

    def describe(self, pa):
        """"device uart0 (uart16550) at offset 0x4", or None."""
        w = self.find(pa)
        if w is None:
            return None
        if w.device is self.open_bus:
            return "no device (the bus reads all ones there)"
        model = getattr(w.device, "model", type(w.device).__name__)
        return f"device {w.name} ({model}) at offset 0x{pa - w.base:x}"

    # -- the open bus ------------------------------------------------------------
    def map_unbacked(self, start, end):
        """Put the all-ones catch-all over every page of [start, end) nothing answers in."""
        start &= ~(PAGE_SIZE - 1)
        end = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        taken = sorted([(s, e) for s, e in self._ram]
                       + [(w.base, w.end) for w in self.windows + self.holes]
                       + [(h.start, h.end) for h in self.machine.cfg.host])   # never the host's
        for s, e in _gaps(start, end, taken):
            try:
                self._map(s, e - s, "bus", self.open_bus)
            except MmemuError:
                continue       # the embedding program mapped something there itself
            self.holes.append(Window(s, e, "bus", self.open_bus))


# -- reading a device's options ----------------------------------------------------

def device_key(machine, cfg):
    """The config key path of this device: devices[i], as config errors name it."""
    devices = getattr(getattr(machine, "cfg", None), "devices", None) or []
    for i, dev in enumerate(devices):
        if dev is cfg:
            return f"devices[{i}]"
    return f"devices[{cfg.name}]"


def config_path(machine):
    """The file the machine's config came from (or its name), for config errors."""
    cfg = getattr(machine, "cfg", None)
    return getattr(cfg, "path", None) or getattr(cfg, "name", "config")


def device_option(machine, cfg, key, default, lo=None, hi=None, what="a whole number"):
    """cfg.options[key] as an int in [lo, hi] (a number, or a string like "0x40"),
    default when absent; anything else is a ConfigError naming devices[i].key."""
    value = cfg.options.get(key, default)
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            value = cfg.options[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(config_path(machine), f"{device_key(machine, cfg)}.{key}",
                          f"must be {what}, not {clip_repr(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = (f"from {lo} to {hi}" if lo is not None and hi is not None
                  else f"at least {lo}" if lo is not None else f"at most {hi}")
        raise ConfigError(config_path(machine), f"{device_key(machine, cfg)}.{key}",
                          f"{value} is out of range: {what} {bounds}")
    return value


def _guarded(log, name, device):
    """MMIO callbacks that never let a device's exception unwind into Unicorn."""
    dev_read, dev_write = device.read, device.write

    def read(offset, size):
        try:
            value = dev_read(offset, size)
        except Exception as exc:      # a model's bug must not stop the CPU mid-instruction
            log.printk(f"mmemu: device {name}: read of {size} bytes at offset 0x{offset:x} "
                       f"failed: {exc!r}; reading all ones", KERN_ERR)
            return ALL_ONES.get(size, 0xFFFFFFFF)
        return (value or 0) & ALL_ONES.get(size, 0xFFFFFFFF)

    def write(offset, size, value):
        try:
            dev_write(offset, size, value & ALL_ONES.get(size, 0xFFFFFFFF))
        except Exception as exc:
            log.printk(f"mmemu: device {name}: write of {size} bytes at offset 0x{offset:x} "
                       f"failed: {exc!r}; ignored", KERN_ERR)
    return read, write


def _ram_pages(ram):
    """The page-rounded, merged RAM ranges (what the engine maps RAM over)."""
    out = []
    for r in sorted(ram, key=lambda r: r.start):
        s, e = r.start & ~(PAGE_SIZE - 1), (r.end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _gaps(start, end, taken):
    """The parts of [start, end) that no (s, e) in sorted taken covers."""
    at = start
    for s, e in taken:
        if e <= at or s >= end:
            continue
        if s > at:
            yield at, s
        at = max(at, e)
    if at < end:
        yield at, end


def devices_init(machine):
    """Build and map every device of the machine's config; returns the DeviceBus."""
    bus = DeviceBus(machine)
    for cfg in machine.cfg.devices:
        bus.add(cfg)
    return bus


def _builtin(module, cls):
    def factory(machine, cfg):
        import importlib
        return getattr(importlib.import_module(f"mmemu.devices.{module}"), cls)(machine, cfg)
    factory.__name__ = f"{cls}_factory"
    return factory


register_device_model("uart16550", _builtin("uart16550", "Uart16550"))
register_device_model("framebuffer", _builtin("framebuffer", "Framebuffer"))
register_device_model("regs", _builtin("regs", "RegisterFile"))
