"""A register file: 32-bit registers that record every access.

For exercising a driver: the guest reads and writes registers through
ioremap(), and a test reads back exactly what happened, in order::

    >>> m.devices["regs0"].log
    [RegAccess(offset=0x4, size=4, value=0xcafe, direction='write'), ...]

A window of size N holds N / 4 registers, all zero unless the ``init``
option gives values (``init: {0x0: 0x1234abcd}``, an id register, say).
Accesses narrower than 4 bytes read or replace their bytes of the register
they fall in.  ``on_access``, when set, is called with each RegAccess
after it is recorded (a test can make a register react to writes).
"""
from dataclasses import dataclass


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
        self.regs = [0] * (cfg.size // 4)
        for offset, value in (cfg.options.get("init") or {}).items():
            self.regs[_number(offset) // 4] = _number(value) & 0xFFFFFFFF
        self.log = []
        self.on_access = None

    def value(self, offset):
        """The register at offset (a multiple of 4)."""
        return self.regs[offset // 4]

    def reads(self):
        return [a for a in self.log if a.direction == "read"]

    def writes(self):
        return [a for a in self.log if a.direction == "write"]

    def read(self, offset, size):
        shift = (offset & 3) * 8
        value = (self.regs[offset // 4] >> shift) & ((1 << (8 * size)) - 1)
        self._record(RegAccess(offset, size, value, "read"))
        return value

    def write(self, offset, size, value):
        shift = (offset & 3) * 8
        mask = ((1 << (8 * size)) - 1) << shift
        i = offset // 4
        self.regs[i] = (self.regs[i] & ~mask | (value << shift) & mask) & 0xFFFFFFFF
        self._record(RegAccess(offset, size, value, "write"))

    def _record(self, access):
        self.log.append(access)
        if self.on_access is not None:
            self.on_access(access)


def _number(value):
    return int(value, 0) if isinstance(value, str) else int(value)
