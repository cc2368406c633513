"""The physical-memory interface that all mm code uses.

The mm code never talks to Unicorn: it reads and writes guest physical memory
through a PhysMem, which is a flat buffer indexed by physical address (holes
simply never touched).  The engine gives one backed by the RAM Unicorn
emulates; tests give one backed by a bytearray.
"""
from __future__ import annotations

import mmap
import struct
import sys
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Linux's MAP_NORESERVE, which Python's mmap module does not name: without
# it the kernel's overcommit heuristic refuses a mapping larger than the
# host's RAM and swap (a 16 GiB guest on an 8 GiB host).
MAP_NORESERVE: int = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)


class PhysMem:
    """Guest physical memory as a host buffer: offset == physical address.

    ``u32`` is a memoryview of 32-bit words (index = pa >> 2) for the hot
    paths, ``u64`` of 64-bit words (index = pa >> 3: PAE page-table
    entries); ``u8`` is the byte view.  ``size`` is the highest RAM
    address + 1, which may lie above 4 GiB (a 686-pae machine).
    """

    def __init__(self, size: int, buf: Optional[WriteableBuffer] = None) -> None:
        self.size = size
        if buf is None:
            # Anonymous, private and not reserved against swap: untouched
            # pages cost the host nothing, however much RAM the guest has.
            buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                            | MAP_NORESERVE)
        self.buf: WriteableBuffer = buf
        self.u8 = memoryview(buf)
        self.u32 = self.u8.cast("I")
        self.u64: Optional[memoryview] = self.u8.cast("Q") if size % 8 == 0 else None

    def read(self, pa: int, n: int) -> bytes:
        return bytes(self.u8[pa:pa + n])

    def write(self, pa: int, data: bytes | bytearray | memoryview) -> None:
        self.u8[pa:pa + len(data)] = data

    def read32(self, pa: int) -> int:
        return self.u32[pa >> 2]

    def write32(self, pa: int, value: int) -> None:
        self.u32[pa >> 2] = value & 0xFFFFFFFF

    def fill(self, pa: int, n: int, byte: int = 0) -> None:
        self.u8[pa:pa + n] = bytes([byte]) * n

    def unpack(self, fmt: str, pa: int) -> tuple[Any, ...]:
        return struct.unpack_from(fmt, self.buf, pa)

    def pack(self, fmt: str, pa: int, *values: Any) -> None:
        struct.pack_into(fmt, self.buf, pa, *values)


def bytearray_physmem(size: int) -> PhysMem:
    """A PhysMem over a plain bytearray, for testing mm code without Unicorn."""
    return PhysMem(size, bytearray(size))
