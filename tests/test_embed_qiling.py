"""mmemu inside a Qiling instance's Uc (README, "Inside Qiling"): Qiling 1.4.6
in bare-metal blob mode keeps its blob's memory (a config ``host:`` range);
mmemu's guest program allocates through mmemu while Qiling's own hooks
(hook_intno, hook_insn, map_mmio, hook_code) serve its ports, int 0x80 and
device, and Qiling runs its own blob before, with and after mmemu.

Qiling is a test-only extra (``pip install -e '.[embed]'``; .ci/run installs
it); without it these tests skip.
"""

import pytest

qiling = pytest.importorskip("qiling")

from qiling import Qiling  # noqa: E402
from qiling.const import QL_ARCH, QL_OS, QL_VERBOSE  # noqa: E402
from unicorn.x86_const import UC_X86_INS_IN, UC_X86_INS_OUT  # noqa: E402

from mmemu.layout import PAGE_OFFSET  # noqa: E402
from mmemu.machine import Machine  # noqa: E402
from mmemu.mm.gfp import GFP_KERNEL  # noqa: E402

BLOB = 0x800000
CONFIG = """
memory: {size: 64M}
host: [{start: 8M, size: 512K, name: qiling-blob}]
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "qiling.yaml"
    path.write_text(CONFIG)
    return str(path)


class QilingHost:
    """A Qiling blob (int 0x80 call 7, hlt) with its hooks and what they saw."""

    def __init__(self):
        self.ql = ql = Qiling(code=b"\xf4", archtype=QL_ARCH.X86, ostype=QL_OS.BLOB,
                              verbose=QL_VERBOSE.DISABLED,
                              profile={"CODE": {"entry_point": hex(BLOB), "ram_size": "0x40000",
                                                "heap_size": "0x40000"}})
        self.code = bytes(ql.arch.assembler.asm("mov eax, 7; int 0x80; hlt")[0])
        ql.mem.write(BLOB, self.code)
        self.ints, self.uart, self.counter, self.blob_steps = [], [], [5], 0

        def on_int(ql_, intno):
            self.ints.append(ql_.arch.regs.arch_pc)
            ql_.arch.regs.eax = 1234

        def on_code(ql_, address, size):
            self.blob_steps += 1
        ql.hook_intno(on_int, 0x80)
        ql.hook_insn(lambda ql_, port, size: (0, 0x60), UC_X86_INS_IN)
        ql.hook_insn(lambda ql_, port, size, value: self.uart.append(chr(value & 0xFF)),
                     UC_X86_INS_OUT)
        ql.mem.map_mmio(0xFEB00000, 0x1000, lambda ql_, off, size: self.counter[0],
                        lambda ql_, off, size, value: self.counter.__setitem__(0, value))
        for base in (BLOB, PAGE_OFFSET + BLOB):
            ql.hook_code(on_code, begin=base, end=base + 0x3FFFF)

    def run_blob(self, base=BLOB):
        self.ql.run(begin=base, end=base + len(self.code))
        return self.ql.arch.regs.eax


def test_qiling_keeps_its_hooks_and_blob_while_mmemu_serves_the_guest(config):
    host = QilingHost()
    assert host.run_blob() == 1234 and host.blob_steps == 3
    m = Machine(config, uc=host.ql.uc, echo=False)
    r = m.run("guest/examples/hobby_guest.c")
    assert r.status == 0, r.log
    assert "".join(host.uart) == "guest: ticks 1234, counter 5\n"   # Qiling's IN/OUT hooks
    assert host.counter == [105]                                     # Qiling's MMIO device
    assert len(host.ints) == 2 and host.ints[1] >= 0xC0100000        # its int 0x80 hook
    assert "(kmalloc-64)" in r.console
    m.check()
    # Qiling runs its blob through mmemu's direct map, and allocates from its own heap.
    assert host.run_blob(PAGE_OFFSET + BLOB) == 1234 and host.blob_steps == 6
    heap = host.ql.os.heap.alloc(64)
    assert BLOB <= heap < BLOB + (512 << 10)
    ptr = m.slab.kmalloc(64, GFP_KERNEL)
    assert ptr >= PAGE_OFFSET and not BLOB <= ptr - PAGE_OFFSET < BLOB + (512 << 10)
    m.slab.kfree(ptr)
    m.close()
    assert host.run_blob() == 1234 and host.blob_steps == 9
    assert [hex(a) for a in host.ints[2:]] == [hex(PAGE_OFFSET + BLOB + 7), hex(BLOB + 7)]
    # Left mapped: Qiling's blob, the heap page it mapped meanwhile, its device.
    assert sorted((b, e) for b, e, _ in host.ql.uc.mem_regions()) == [
        (BLOB, BLOB + 0x3FFFF), (heap & ~0xFFF, (heap & ~0xFFF) + 0xFFF), (0xFEB00000, 0xFEB00FFF)]


def test_mmemus_traps_survive_qilings_interrupt_dispatcher(config):
    # Qiling's hook_intno dispatcher raises for every vector it has no handler
    # for, and its guard stops the CPU: mmemu's own faults still get handled
    # (an exception-table fixup each) and oopses still get reported.
    host = QilingHost()
    m = Machine(config, uc=host.ql.uc, echo=False)
    r = m.run("guest/tests/nofault.c")
    assert (r.status, r.reason) == (0, "exit"), r.log
    assert "100 faults handled" in r.console
    r = m.run("guest/tests/null_deref.c", )
    assert r.reason == "oops" and "BUG: kernel NULL pointer dereference" in r.reports[0]
    assert host.run_blob(PAGE_OFFSET + BLOB) == 1234     # and Qiling's next run is its own
