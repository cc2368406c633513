"""gdb reads a snapshot (`mmemu run PROG --dump core`) as an ELF core:
kernel memory by virtual address through the PT_LOAD segments, registers
from NT_PRSTATUS.  Skipped where gdb is not installed."""
import re
import shutil
import subprocess

import pytest

from mmemu.machine import Machine
from mmemu.runtime.build import build
from mmemu.views.snapshot import write_snapshot

pytestmark = pytest.mark.flavours

GDB = shutil.which("gdb")
pytestmark = pytest.mark.skipif(GDB is None, reason="gdb is not installed")


@pytest.fixture(scope="module")
def hello_core(tmp_path_factory, kernel_flavour):
    """(elf, core, machine) after hello.c ran to its end on pc-1g."""
    elf = build("guest/examples/hello.c")
    m = Machine("pc-1g", echo=False)
    assert m.run(elf).status == 0
    core = tmp_path_factory.mktemp("core") / "core"
    write_snapshot(m, core)
    return elf, core, m


def _gdb(elf, core, *commands):
    args = [GDB, "-nx", "-batch"]
    for c in commands:
        args += ["-ex", c]
    return subprocess.run(args + [str(elf), str(core)], capture_output=True, text=True,
                          timeout=30).stdout


def _words(out, addr):
    line = re.search(rf"^0x{addr:08x}.*:\s+(.*)$", out, re.M)
    assert line, out
    return [int(w, 16) for w in line.group(1).split()]


def test_gdb_reads_kernel_text_by_virtual_address(hello_core):
    elf, core, m = hello_core
    out = _gdb(elf, core, "x/4wx 0xc0100000")
    assert _words(out, 0xC0100000) == [m.read32(0xC0100000 + 4 * i) for i in range(4)]


def test_gdb_reads_mem_map_in_the_direct_map(hello_core):
    # mem_map (struct page[]) lives in lowmem: the core's direct-map PT_LOAD covers it.
    elf, core, m = hello_core
    out = _gdb(elf, core, "x/4wx mem_map")
    assert _words(out, m.mem_map.virt) == [m.read32(m.mem_map.virt + 4 * i) for i in range(4)]


def test_gdb_reads_registers_from_prstatus(hello_core):
    elf, core, m = hello_core
    out = _gdb(elf, core, "info registers eip esp")
    assert re.search(rf"eip\s+0x{m.engine.reg('eip'):x}\s", out), out
    assert re.search(rf"esp\s+0x{m.engine.reg('esp'):x}\s", out), out
