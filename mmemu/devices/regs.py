"""A register file: 32-bit registers that record every access.

For exercising a driver: the guest reads and writes registers through
ioremap(), and a test reads back exactly what happened, in order::

    >>> m.devices["regs0"].log
    [RegAccess(offset=0x4, size=4, value=0xcafe, direction='write'), ...]

A window of size N holds N / 4 registers, all zero unless the ``init``
option gives values (``init: {0x0: 0x1234abcd}``, an id register, say:
offsets inside the window, 32-bit values; anything else is refused).
Accesses narrower than 4 bytes read or replace their bytes of the register
they fall in.  ``on_access``, when set, is called with each RegAccess
after it is recorded (a test can make a register react to writes).
"""
from dataclasses import dataclass

from mmemu.devices import config_path, device_key
from mmemu.errors import ConfigError, clip_repr


@dataclass(frozen=True)
class RegAccess:
    """One access: offset from the window's base, size in bytes, value, direction."""

    offset: int
    size: int
    value: int
    direction: str            # "read" or "write"

    def __repr__(self):
        return (f"RegAccess(offset={self.offset:#x}, size={self.size}, "
                f"value={self.value:#x}, direction={self.direction!r})")


class RegisterFile:
    """size / 4 registers of 32 bits, and the log of every access."""

    model = "regs"

    def __init__(self, machine, cfg):
        self.name = cfg.name
        self.nr_regs = cfg.size // 4
        self.regs = {}                  # register index -> value; absent ones read 0
        for offset, value in _init_values(machine, cfg):
            self.regs[offset // 4] = value
        self.log = []
        self.on_access = None

    def value(self, offset):
        """The register at offset (a multiple of 4)."""
        return self.regs.get(offset // 4, 0)

    def reads(self):
        return [a for a in self.log if a.direction == "read"]

    def writes(self):
        return [a for a in self.log if a.direction == "write"]

    def read(self, offset, size):
        shift = (offset & 3) * 8
        value = (self.regs.get(offset // 4, 0) >> shift) & ((1 << (8 * size)) - 1)
        self._record(RegAccess(offset, size, value, "read"))
        return value

    def write(self, offset, size, value):
        shift = (offset & 3) * 8
        mask = ((1 << (8 * size)) - 1) << shift
        i = offset // 4
        self.regs[i] = (self.regs.get(i, 0) & ~mask | (value << shift) & mask) & 0xFFFFFFFF
        self._record(RegAccess(offset, size, value, "write"))

    def _record(self, access):
        self.log.append(access)
        if self.on_access is not None:
            self.on_access(access)


def _init_values(machine, cfg):
    """The init option's (offset, value) pairs, each checked against the window."""
    init = cfg.options.get("init") or {}
    key = f"{device_key(machine, cfg)}.init"
    if not isinstance(init, dict):
        raise ConfigError(config_path(machine), key, "must be a mapping of register "
                          "offsets to values ({0x0: 0x1234abcd})")
    out = []
    for offset, value in init.items():
        off, val = _number(offset), _number(value)
        if off is None or not 0 <= off < cfg.size or off % 4:
            raise ConfigError(config_path(machine), key, f"offset {clip_repr(offset)} is not a "
                              f"register of the window (multiples of 4 below {cfg.size:#x})")
        if val is None or not 0 <= val <= 0xFFFFFFFF:
            raise ConfigError(config_path(machine), f"{key}.{off:#x}",
                              f"{clip_repr(value)} is not a 32-bit register value")
        out.append((off, val))
    return out


def _number(value):
    """An int, or a string like "0x40"; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


