"""mmemu as a guest in a host program's Uc: the host's hooks, traps, memory and
CPU state are its own before, during and after mmemu (runtime/attach.py,
runtime/traps.py, engine.Engine.close()).

The host here is a small "hobby OS" Unicorn program: its kernel's memory at
8-9 MiB (kept from mmemu with a config ``host:`` range), its own GDT and
segments in protected mode, a UART on ports 0x3f8-0x3ff, int $0x80 calls,
an MMIO counter, a code hook on its kernel.
"""
import ctypes
import gc
import mmap
import struct

import pytest
from unicorn import (
    Uc, UcError, UC_ARCH_ARM, UC_ARCH_X86, UC_ERR_EXCEPTION, UC_HOOK_CODE, UC_HOOK_INSN,
    UC_HOOK_INTR, UC_MODE_16, UC_MODE_32, UC_MODE_64, UC_MODE_ARM, UC_PROT_ALL,
)
from unicorn import x86_const as x86

from mmemu.config import load_config
from mmemu.engine import AttachError, _ctx_addr
from mmemu.errors import ConfigError
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT
from mmemu.machine import Machine, MachineClosed
from mmemu.mm.gfp import GFP_KERNEL
from mmemu.runtime.abi import (
    HC_DOORBELL_PHYS, HC_DOORBELL_SIZE, HC_DOORBELL_VIRT, HC_KMALLOC, HC_MAILBOX_VIRT,
)
from mmemu.runtime.traps import Trap

KERNEL = 0x800000                  # the host's kernel: 8 MiB .. 9 MiB
KERNEL_SIZE = 0x100000
COUNTER = 0xFEB00000               # the host's MMIO counter
GDT = KERNEL + 0x8000              # the host's own GDT, in its memory
HOST_CS, HOST_DS = 0x08, 0x10
GUEST = "guest/examples/hobby_guest.c"

HOBBY_YAML = """
memory: {size: 64M}
host: [{start: 8M, size: 1M, name: hobby-kernel}]
"""

# Its kernel: print 'K' on the UART, int 0x80 call 7 (its clock), hlt.
KCODE = b"\x66\xba\xf8\x03\xb0K\xee" + b"\xb8\x07\x00\x00\x00\xcd\x80" + b"\xf4"

REGISTERS = [getattr(x86, f"UC_X86_REG_{n}") for n in (
    "EAX EBX ECX EDX ESI EDI EBP ESP EIP EFLAGS CR0 CR2 CR3 CR4 "
    "CS DS ES FS GS SS GDTR IDTR LDTR TR DR0 DR1 DR2 DR3 DR6 DR7 "
    "FPSW FPCW FP0 FP7 XMM0 XMM7 MXCSR").split()]
EFER = 0xC0000080
UC_CONTEXT_HEADER = 40
GPRS = [getattr(x86, f"UC_X86_REG_{n}") for n in "EAX EBX ECX EDX ESI EDI EBP ESP EIP".split()]


@pytest.fixture(scope="module")
def hobby_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "hobby.yaml"
    path.write_text(HOBBY_YAML)
    return str(path)


class Hobby:
    """The host program: its Uc, its memory, its hooks and what they saw."""

    def __init__(self, protected_gdt=True):
        self.uc = uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(KERNEL, KERNEL_SIZE)
        uc.mem_write(KERNEL, KCODE)
        uc.mem_write(KERNEL + 0x4000, bytes(range(256)) * 16)     # some data of its own
        self.uart, self.counter = [], [5]
        self.seen = {"code": 0, "in": 0, "out": 0, "int": [], "mmio": 0}
        if protected_gdt:
            self._load_gdt()
        for rid, value in ((x86.UC_X86_REG_EBX, 0x1111), (x86.UC_X86_REG_ESI, 0x2222),
                           (x86.UC_X86_REG_EDI, 0x3333), (x86.UC_X86_REG_EBP, 0x4444),
                           (x86.UC_X86_REG_ESP, KERNEL + 0x7FF0)):
            uc.reg_write(rid, value)

    def _load_gdt(self):
        """A GDT of its own, flat ring-0 code and data, loaded into the segments."""
        def entry(access):
            return struct.pack("<HHBBBB", 0xFFFF, 0, 0, access, 0xCF, 0)
        self.uc.mem_write(GDT, bytes(8) + entry(0x9A) + entry(0x92))
        self.uc.reg_write(x86.UC_X86_REG_GDTR, (0, GDT, 23, 0))
        for reg in ("DS", "ES", "SS", "FS", "GS"):
            self.uc.reg_write(getattr(x86, f"UC_X86_REG_{reg}"), HOST_DS)
        self.uc.reg_write(x86.UC_X86_REG_CS, HOST_CS)

    def add_hooks(self):
        uc, seen = self.uc, self.seen

        def on_in(uc_, port, size, _):
            seen["in"] += 1
            return 0x60 if port == 0x3FD else 0xFF

        def on_out(uc_, port, size, value, _):
            seen["out"] += 1
            if port == 0x3F8:
                self.uart.append(chr(value & 0xFF))

        def on_int(uc_, intno, _):
            seen["int"].append(intno)
            if intno == 0x80 and uc_.reg_read(x86.UC_X86_REG_EAX) == 7:
                uc_.reg_write(x86.UC_X86_REG_EAX, 1234)

        def on_code(uc_, addr, size, _):
            seen["code"] += 1

        def rd(uc_, offset, size, _):
            seen["mmio"] += 1
            return self.counter[0]

        def wr(uc_, offset, size, value, _):
            seen["mmio"] += 1
            self.counter[0] = value

        uc.hook_add(UC_HOOK_INSN, on_in, None, 1, 0, x86.UC_X86_INS_IN)
        uc.hook_add(UC_HOOK_INSN, on_out, None, 1, 0, x86.UC_X86_INS_OUT)
        uc.hook_add(UC_HOOK_INTR, on_int)
        for base in (KERNEL, PAGE_OFFSET + KERNEL):
            uc.hook_add(UC_HOOK_CODE, on_code, None, base, base + KERNEL_SIZE - 1)
        uc.mmio_map(COUNTER, 0x1000, rd, None, wr, None)

    def run_kernel(self, base=KERNEL):
        """Its kernel's code at base: 'K' on the UART, the clock in EAX."""
        self.uart.clear()
        self.uc.emu_start(base, base + len(KCODE))
        return self.uc.reg_read(x86.UC_X86_REG_EAX), "".join(self.uart)


def uc_state(uc, ram=((KERNEL, KERNEL + KERNEL_SIZE),)):
    """Everything of a Uc a host could notice: its mappings, the bytes of its
    RAM, every register, EFER, the whole saved CPU context (hidden segment
    parts included) and the binding's records of hooks and MMIO windows.

    Unicorn keeps the general registers in 64-bit slots whose upper halves
    32-bit code and the API never see (reg_write zero-extends, executed code
    may not): each is written back with its own value first, so that the
    context compares only what a 32-bit host could tell apart."""
    for rid in GPRS:
        uc.reg_write(rid, uc.reg_read(rid))
    ctx = uc.context_save()
    # struct uc_context (unicorn 2.1.4, include/uc_priv.h): a 40-byte header
    # (sizes, pointers) before the CPU's state; ctx.size counts both.
    context = ctypes.string_at(_ctx_addr(ctx) + UC_CONTEXT_HEADER, ctx.size - UC_CONTEXT_HEADER)
    return {
        "regions": sorted(uc.mem_regions()),
        "ram": [bytes(uc.mem_read(s, e - s)) for s, e in ram],
        "registers": [uc.reg_read(r) for r in REGISTERS],
        "efer": uc.msr_read(EFER),
        "context": context,
        "hooks": sorted(uc._callbacks),
        "mmio": sorted(uc._mmio_callbacks),
    }


def assert_same(before, after):
    for key in before:
        assert before[key] == after[key], key


# -- the worked example, both registration orders ------------------------------------

@pytest.mark.parametrize("order", ["hooks first", "mmemu first"])
def test_hobby_host_and_mmemu_share_one_uc(hobby_config, order):
    host = Hobby()
    if order == "hooks first":
        host.add_hooks()
        assert host.run_kernel() == (1234, "K")
    m = Machine(hobby_config, uc=host.uc, echo=False)
    if order == "mmemu first":
        host.add_hooks()

    # mmemu's guest: mmemu's allocators, and the host's ports, int 0x80 and device.
    host.uart.clear()
    r = m.run(GUEST)
    assert r.status == 0, r.log
    assert "".join(host.uart) == "guest: ticks 1234, counter 5\n"
    assert host.counter == [105]
    assert host.seen["int"] == ([0x80, 0x80] if order == "hooks first" else [0x80])
    assert "line at 0xc" in r.console and "(kmalloc-64)" in r.console
    m.check()

    # The host's own kernel while attached, through mmemu's direct map, and a
    # kmalloc by hypercall from host code.
    assert host.run_kernel(PAGE_OFFSET + KERNEL) == (1234, "K")
    code = (b"\xc7\x05" + struct.pack("<II", HC_MAILBOX_VIRT, 64)
            + b"\xc7\x05" + struct.pack("<II", HC_MAILBOX_VIRT + 4, GFP_KERNEL)
            + b"\xa1" + struct.pack("<I", HC_DOORBELL_VIRT + 4 * HC_KMALLOC) + b"\xf4")
    host.uc.mem_write(KERNEL + 0x1000, code)
    host.uc.emu_start(PAGE_OFFSET + KERNEL + 0x1000, PAGE_OFFSET + KERNEL + 0x1000 + len(code))
    ptr = host.uc.reg_read(x86.UC_X86_REG_EAX)
    assert m.slab.ksize(ptr) == 64
    m.slab.kfree(ptr)

    code_hits = host.seen["code"]
    m.close()
    # After close: the host's kernel runs at its physical address again, all
    # its hooks fire, none of mmemu's is left, nothing of mmemu's is mapped.
    assert host.run_kernel() == (1234, "K")
    assert host.seen["code"] == code_hits + 6          # its six instructions
    assert sorted(host.uc.mem_regions()) == [(KERNEL, KERNEL + KERNEL_SIZE - 1, UC_PROT_ALL),
                                            (COUNTER, COUNTER + 0xFFF, 3)]


def test_hypercalls_and_the_hosts_in_hook_do_not_take_each_others_ports(hobby_config):
    # The IN hook the host adds after mmemu sees every port the guest reads,
    # and only those: no hypercall reaches it (Unicorn calls only the first IN hook).
    host = Hobby()
    m = Machine(hobby_config, uc=host.uc, echo=False)
    ports = []
    host.uc.hook_add(UC_HOOK_INSN, lambda uc, port, size, _: ports.append(port) or 0x60,
                     None, 1, 0, x86.UC_X86_INS_IN)
    host.uc.hook_add(UC_HOOK_INTR, lambda uc, intno, _: uc.reg_write(x86.UC_X86_REG_EAX, 9))
    host.uc.mmio_map(COUNTER, 0x1000, lambda *a: 1, None, lambda *a: None, None)
    r = m.run(GUEST)
    assert r.status == 0, r.log
    assert set(ports) == {0x3FD}
    assert len(ports) == len("guest: ticks 9, counter 1\n")


# -- traps ------------------------------------------------------------------------------

def _faulting_code(m):
    """Kernel code at the image area that reads an unmapped address, then halts."""
    code = b"\xa1" + struct.pack("<I", 0x1234) + b"\xf4"     # mov eax, [0x1234]
    m.write(0xC0100000, code)
    m.engine.remove_code_cache(0xC0100000, 0xC0100000 + len(code))
    return 0xC0100000, 0xC0100000 + len(code)


def test_a_fault_in_the_hosts_own_run_is_the_hosts(hobby_config):
    # No trap policy: while the host drives the CPU mmemu has no interrupt
    # hook at all, so an unhandled fault ends emu_start as bare Unicorn's would.
    host = Hobby()
    m = Machine(hobby_config, uc=host.uc, echo=False)
    begin, end = _faulting_code(m)
    with pytest.raises(UcError) as e:
        host.uc.emu_start(begin, end)
    assert e.value.errno == UC_ERR_EXCEPTION
    assert not any("Oops" in line for line in m.log.text().splitlines())


def test_a_trap_policy_lets_mmemu_report_the_hosts_fault(hobby_config):
    host = Hobby()
    host.add_hooks()
    m = Machine(hobby_config, uc=host.uc, echo=False)
    seen = []

    def policy(trap):
        seen.append((trap.vector, trap.in_mmemu_run))
        return trap.is_exception and trap.eip >= PAGE_OFFSET     # faults in kernel code: mmemu's
    m.trap_policy = policy
    begin, end = _faulting_code(m)
    host.uc.emu_start(begin, end)                # mmemu reports the oops and stops the CPU
    log = m.log.text()
    assert "BUG: kernel NULL pointer dereference, address: 00001234" not in log
    assert "BUG: unable to handle page fault for address: 00001234" in log
    assert seen == [(14, False)]
    assert host.seen["int"] == [14]              # the host's hook saw it as well
    # Its own kernel's int 0x80 stays its own.
    assert host.run_kernel(PAGE_OFFSET + KERNEL) == (1234, "K")
    assert seen[-1] == (0x80, False)


def test_a_trap_policy_can_keep_a_trap_of_mmemus_run_for_the_host(hobby_config, tmp_path):
    # The guest divides by zero; the host's policy keeps #DE for itself, and
    # its hook steps over the 2-byte div: the guest runs on to its end.
    src = tmp_path / "div0.c"
    src.write_text('#include <mmemu.h>\nint main(void)\n{\n\tasm volatile("xorl %%ecx, %%ecx; '
                   'divl %%ecx" : : : "eax", "ecx", "edx");\n\treturn 7;\n}\n')
    host = Hobby()
    m = Machine(hobby_config, uc=host.uc, echo=False)
    host.uc.hook_add(UC_HOOK_INTR, lambda uc, intno, _: intno == 0 and uc.reg_write(
        x86.UC_X86_REG_EIP, uc.reg_read(x86.UC_X86_REG_EIP) + 2))
    m.trap_policy = lambda trap: False if trap.vector == 0 else None
    r = m.run(src)
    assert (r.status, r.reason) == (7, "exit"), r.log
    m.trap_policy = None
    r = m.run(src, )                             # the default: mmemu's run, mmemu's #DE
    assert r.reason == "oops" and "divide error: 0000 [#1]" in r.reports[0]


def test_user_tasks_int_0x80_is_mmemus_beside_a_hosts_interrupt_hook():
    # user_tasks.c's tasks make int 0x80 calls mmemu serves (write, exit) while
    # a host hook sees every interrupt too: mmemu's result stands.
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    seen = []
    uc.hook_add(UC_HOOK_INTR, lambda uc_, intno, _: seen.append(intno))
    m = Machine("pc-16m", uc=uc, echo=False)
    r = m.run("guest/tests/user_tasks.c")
    assert r.status == 0, r.log
    assert "hello from ring 3" in r.console
    assert 0x80 in seen and 14 in seen


def test_trap_record_reads_registers_only_when_asked():
    class Engine:
        def __init__(self):
            self.asked = []

        def reg(self, name):
            self.asked.append(name)
            return {"eip": 0xC0100000, "cs": 0x73, "cr2": 0x1000}[name]
    eng = Engine()
    trap = Trap(14, True, eng)
    assert trap.is_exception and eng.asked == []
    assert (trap.eip, trap.cpl, trap.address, trap.eip) == (0xC0100000, 3, 0x1000, 0xC0100000)
    assert eng.asked == ["eip", "cs", "cr2"]
    assert Trap(0x80, True, eng).address is None


# -- attaching: all or nothing ---------------------------------------------------------

def test_a_failed_attach_leaves_the_uc_as_it_was():
    # The host has memory at 1 MiB, where pc-16m's RAM goes.
    host = Hobby()
    host.uc.mem_map(0x100000, 0x100000)
    host.uc.mem_write(0x100000, b"host data")
    host.add_hooks()
    before = uc_state(host.uc, ram=((KERNEL, KERNEL + KERNEL_SIZE), (0x100000, 0x200000)))
    with pytest.raises(AttachError) as e:
        Machine("pc-16m", uc=host.uc, echo=False)
    assert str(e.value).startswith("mmemu cannot attach: RAM [mem 0x00100000-")
    assert "the host's mapping [mem 0x00100000-0x001fffff]" in str(e.value)
    gc.collect()
    after = uc_state(host.uc, ram=((KERNEL, KERNEL + KERNEL_SIZE), (0x100000, 0x200000)))
    assert_same(before, after)
    assert host.run_kernel() == (1234, "K")


def test_an_attach_that_fails_late_is_rolled_back(hobby_config, monkeypatch):
    # RAM and the doorbell are mapped, paging is on and the GDT loaded when
    # building kmap fails: the Uc goes back to what it was.
    def broken(self):
        raise RuntimeError("highmem is broken")
    monkeypatch.setattr(Machine, "_attach_highmem", broken)
    host = Hobby()
    host.add_hooks()
    before = uc_state(host.uc)
    with pytest.raises(RuntimeError, match="broken"):
        Machine(hobby_config, uc=host.uc, echo=False)
    gc.collect()
    assert_same(before, uc_state(host.uc))
    assert host.run_kernel() == (1234, "K")


def test_a_device_window_over_the_hosts_mmio_is_refused():
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mmio_map(0xFE000000, 0x1000, lambda *a: 0, None, lambda *a: None, None)
    with pytest.raises(AttachError, match=r"device uart0 \[mem 0xfe000000-0xfe000fff\] overlaps "
                                          r"the host's mapping \[mem 0xfe000000-0xfe000fff\]"):
        Machine("pc-16m", uc=uc, echo=False)
    assert sorted(uc.mem_regions()) == [(0xFE000000, 0xFE000FFF, 3)]


@pytest.mark.parametrize("make, message", [
    (lambda: Uc(UC_ARCH_X86, UC_MODE_64), "this one is in 64-bit mode"),
    (lambda: Uc(UC_ARCH_X86, UC_MODE_16), "this one is in 16-bit mode"),
    (lambda: Uc(UC_ARCH_ARM, UC_MODE_ARM), "this one is UC_ARCH_ARM"),
    (lambda: object(), "mmemu needs a unicorn.Uc, not object"),
])
def test_wrong_uc_kinds_are_refused_in_one_line(make, message):
    uc = make()
    with pytest.raises(AttachError) as e:
        Machine("pc-16m", uc=uc, echo=False)
    assert message in str(e.value) and "\n" not in str(e.value)
    if isinstance(uc, Uc):
        assert list(uc.mem_regions()) == []


# -- close ----------------------------------------------------------------------------

def test_close_gives_the_uc_back_byte_for_byte(hobby_config):
    host = Hobby()
    host.add_hooks()
    assert host.run_kernel() == (1234, "K")
    before = uc_state(host.uc)
    m = Machine(hobby_config, uc=host.uc, echo=False)
    assert host.uc.reg_read(x86.UC_X86_REG_CR0) & 0x80000000      # paging on, mmemu's GDT
    assert host.uc.reg_read(x86.UC_X86_REG_CS) == 0x60
    assert m.run(GUEST).status == 0                # a run leaves the host's registers too
    assert host.uc.reg_read(x86.UC_X86_REG_EBX) == 0x1111
    m.alloc_pages(GFP_KERNEL, 3)
    m.close()
    gc.collect()
    assert_same(before, uc_state(host.uc))
    assert host.run_kernel() == (1234, "K")


def test_close_keeps_the_hosts_own_register_changes(hobby_config):
    host = Hobby()
    m = Machine(hobby_config, uc=host.uc, echo=False)
    host.uc.reg_write(x86.UC_X86_REG_EDI, 0xD00D)
    host.uc.reg_write(x86.UC_X86_REG_XMM3, 0x1234567890ABCDEF)
    m.close()
    assert host.uc.reg_read(x86.UC_X86_REG_EDI) == 0xD00D
    assert host.uc.reg_read(x86.UC_X86_REG_XMM3) == 0x1234567890ABCDEF
    assert host.uc.reg_read(x86.UC_X86_REG_CS) == HOST_CS
    assert host.uc.reg_read(x86.UC_X86_REG_CR0) & 0x80000000 == 0


def test_close_keep_ram_leaves_guest_ram_mapped_and_alive(hobby_config):
    host = Hobby()
    m = Machine(hobby_config, uc=host.uc, echo=False)
    pfn = m.alloc_pages(GFP_KERNEL, 0)
    m.pm.write(pfn << PAGE_SHIFT, b"still here")
    m.close(keep_ram=True)
    del m
    gc.collect()
    assert bytes(host.uc.mem_read(pfn << PAGE_SHIFT, 10)) == b"still here"
    regions = sorted(host.uc.mem_regions())
    doorbell_end = HC_DOORBELL_PHYS + HC_DOORBELL_SIZE      # the hole mmemu's doorbell left
    assert (0, HC_DOORBELL_PHYS - 1, UC_PROT_ALL) in regions
    assert (doorbell_end, 0x9FFFF, UC_PROT_ALL) in regions
    assert (0x100000, 0x7FFFFF, UC_PROT_ALL) in regions        # up to the host's 8 MiB


def test_every_call_after_close_is_refused():
    m = Machine("pc-16m", echo=False)
    m.close()
    for call in (lambda: m.run("guest/examples/hello.c"), lambda: m.alloc_pages(GFP_KERNEL),
                 lambda: m.slab, lambda: m.read(PAGE_OFFSET, 4), lambda: m.check()):
        with pytest.raises(MachineClosed, match=r"this Machine \(pc-16m\) was closed"):
            call()
    m.close()                                          # closing twice is harmless


# -- the host's ranges and RAM ------------------------------------------------------------

def test_host_ranges_are_reserved_and_never_handed_out(hobby_config):
    host = Hobby()
    m = Machine(hobby_config, uc=host.uc, echo=False)
    first, last = KERNEL >> PAGE_SHIFT, (KERNEL + KERNEL_SIZE) >> PAGE_SHIFT
    assert any(r.name == "host: hobby-kernel" and r.base == KERNEL and r.size == KERNEL_SIZE
               for r in m.memblock.reserved)
    taken = []
    while (pfn := m.alloc_pages(GFP_KERNEL | 0x200, 0)) is not None:   # __GFP_NOWARN
        taken.append(pfn)
    assert len(taken) > 2500 and not any(first <= pfn < last for pfn in taken)
    assert bytes(host.uc.mem_read(KERNEL, len(KCODE))) == KCODE        # the host's bytes, untouched
    from mmemu.views.owner import page_owner
    assert str(page_owner(m, first)).startswith("host: hobby-kernel [0x00800000-0x00900000), kept by")
    from mmemu.views.iomem import iomem
    assert "00100000-03fdffff : System RAM\n  00800000-008fffff : host: hobby-kernel\n" in iomem(m)
    from mmemu.views.memmap import frame_classes
    fm = frame_classes(m)
    assert {fm.kind_of(pfn) for pfn in range(first, last)} == {"host"}
    assert fm.kind_of(first - 1) != "host" and fm.kind_of(last) != "host"


def test_host_range_over_mmemus_own_pages_is_a_config_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("memory: {size: 64M}\nhost: [{start: 0x3000, size: 8K}]\n")
    with pytest.raises(ConfigError, match=r"host\[0\]: host range \[0x3000, 0x5000\) takes "
                                          r"mmemu's page 0x3000"):
        Machine(str(cfg), echo=False)


def test_host_range_over_a_device_is_a_config_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("memory: {size: 64M}\ndevices: [{name: u, model: uart16550, base: 0xfe000000,"
                   " size: 4K}]\nhost: [{start: 0xfe000000, size: 4K, name: mine}]\n")
    with pytest.raises(ConfigError, match=r"host\[0\]: host range .* overlaps u"):
        load_config(str(cfg))


def test_mmemu_uses_ram_the_host_mapped_from_the_buffer_it_gave():
    # The host maps the low 4 MiB itself from its own buffer and hands the
    # buffer over; mmemu maps the rest of RAM, and its tables live in it.
    buf = mmap.mmap(-1, 16 << 20)
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    uc.mem_map_ptr(0x100000, 0x300000, UC_PROT_ALL, base + 0x100000)
    m = Machine("pc-16m", uc=uc, echo=False, ram=buf)
    r = m.run("guest/examples/hello.c")
    assert r.status == 0, r.log
    assert bytes(uc.mem_read(0x100000, 4)) == bytes(buf[0x100000:0x100004])   # the image, in it
    regions = sorted(uc.mem_regions())
    assert (0x100000, 0x3FFFFF, UC_PROT_ALL) in regions and (0x400000, 0xFFFFFF, UC_PROT_ALL) in regions
    m.close()
    assert sorted(uc.mem_regions()) == [(0x100000, 0x3FFFFF, UC_PROT_ALL)]  # the host's stays


def test_ram_mapped_from_another_buffer_is_refused():
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0x100000, 0x300000)
    with pytest.raises(AttachError, match="not from the RAM buffer given to Machine"):
        Machine("pc-16m", uc=uc, echo=False, ram=bytearray(16 << 20))
    assert sorted(uc.mem_regions()) == [(0x100000, 0x3FFFFF, UC_PROT_ALL)]


def test_a_ram_buffer_too_small_is_refused():
    with pytest.raises(AttachError, match=r"holds 0x100000 bytes; config pc-16m's RAM needs "
                                          r"0x1000000"):
        Machine("pc-16m", echo=False, ram=bytearray(1 << 20))


def test_host_range_over_the_kernel_image_or_the_initrd_is_a_config_error(tmp_path):
    from mmemu.arch.x86.setup import qemu_initrd_address
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("memory: {size: 64M}\nhost: [{start: 20M, size: 4K}]\n")
    with pytest.raises(ConfigError, match=r"host\[0\]: host range .* overlaps the kernel image"):
        load_config(str(cfg))
    initrd = qemu_initrd_address(load_config("qemu-pc-128m"), load_config("qemu-pc-128m").kernel.initrd)
    cfg.write_text(f"memory: {{size: 128M}}\nhost: [{{start: {initrd:#x}, size: 4K}}]\n")
    with pytest.raises(ConfigError, match=r"host\[0\]: host range .* takes the initrd"):
        Machine(str(cfg), echo=False)
