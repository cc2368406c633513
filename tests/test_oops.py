"""Tests for the report texts (mmemu.kernel.panic, mmemu.arch.x86.dumpstack and
fault) against hand-checked lines (Linux 6.1's fault.c, dumpstack.c,
process_32.c, bug.c, panic.c formats) and the frame-pointer walk over a fake
stack."""
import pytest

from mmemu.arch.x86.dumpstack import (
    backtrace_symbol, disassemble_around, format_code_line, walk_frames,
)
from mmemu.arch.x86.fault import decode_pf_error, dump_pagetable_line
from mmemu.kernel.panic import cpu_line, format_bug, format_oops, format_warn, print_tainted

pytestmark = pytest.mark.flavours

EIP = 0xC0100042
# 42 nops, then at EIP `movl $0x2a,(%eax)`, `pop %ebp`, `ret`, int3 padding: 64 bytes.
CODE = bytes([0x90] * 42) + bytes.fromhex("c7002a000000") + bytes.fromhex("5dc3") + \
    bytes([0xCC] * 14)
CODE_LINE = ("Code: " + " ".join(["90"] * 42) + " <c7> 00 2a 00 00 00 5d c3 " +
             " ".join(["cc"] * 14))
REGS = dict(eip=EIP, eax=0, ebx=1, ecx=2, edx=3, esi=4, edi=5, ebp=0xC0106FF0,
            esp=0xC0106FE8, eflags=0x10246, cr0=0x80010033, cr2=0, cr3=0x2000, cr4=0x10)
REG_LINES = [
    "EAX: 00000000 EBX: 00000001 ECX: 00000002 EDX: 00000003",
    "ESI: 00000004 EDI: 00000005 EBP: c0106ff0 ESP: c0106fe8",
    "DS: 007b ES: 007b FS: 00d8 GS: 0000 SS: 0068 EFLAGS: 00010246",
    "CR0: 80010033 CR2: 00000000 CR3: 00002000 CR4: 00000010",
]


def poke_symbolize(addr):
    return "poke+0x3/0xb" if addr == EIP else None


@pytest.mark.parametrize("code, line1, line2", [
    (0x0000, "#PF: supervisor read access in kernel mode",
     "#PF: error_code(0x0000) - not-present page"),
    (0x0002, "#PF: supervisor write access in kernel mode",
     "#PF: error_code(0x0002) - not-present page"),
    (0x0003, "#PF: supervisor write access in kernel mode",
     "#PF: error_code(0x0003) - permissions violation"),
    (0x0010, "#PF: supervisor instruction fetch in kernel mode",
     "#PF: error_code(0x0010) - not-present page"),
    (0x0011, "#PF: supervisor instruction fetch in kernel mode",
     "#PF: error_code(0x0011) - permissions violation"),
    (0x0009, "#PF: supervisor read access in kernel mode",
     "#PF: error_code(0x0009) - reserved bit violation"),
    (0x0007, "#PF: user write access in user mode",
     "#PF: error_code(0x0007) - permissions violation"),
    (0x0021, "#PF: supervisor read access in kernel mode",
     "#PF: error_code(0x0021) - protection keys violation"),
])
def test_decode_pf_error(code, line1, line2):
    assert decode_pf_error(code) == (line1, line2)


def test_decode_pf_error_mode_is_the_cpus():
    # A user-bit fault taken while in kernel mode (user_mode(regs) false).
    assert decode_pf_error(0x6, user_mode=False)[0] == "#PF: user write access in kernel mode"


def test_dump_pagetable_line():
    assert dump_pagetable_line(0) == "*pde = 00000000 "
    assert dump_pagetable_line(0x1234067, 0) == "*pde = 01234067 *pte = 00000000 "


def test_print_tainted():
    assert print_tainted("") == "Not tainted"
    # 19 flags in 6.1: G, then W at bit 9, D at bit 7, B at bit 5.
    assert print_tainted("W") == "Tainted: G        W         "
    assert print_tainted("DW") == "Tainted: G      D W         "
    assert print_tainted("B") == "Tainted: G    B             "
    assert len(print_tainted("W")) == len("Tainted: ") + 19


def test_cpu_line():
    assert cpu_line("null_deref") == \
        "CPU: 0 PID: 1 Comm: null_deref Not tainted 6.1.0-mmemu #1"
    assert cpu_line("a_very_long_program_name").startswith(
        "CPU: 0 PID: 1 Comm: a_very_long_pro Not")      # TASK_COMM_LEN - 1


def test_format_code_line_linux_window():
    assert format_code_line(CODE, EIP - 42, EIP) == CODE_LINE


def test_format_code_line_partial_and_unreadable():
    # Only EIP onwards is readable: the bytes there, the first one marked.
    assert format_code_line(CODE[42:50], EIP, EIP) == "Code: <c7> 00 2a 00 00 00 5d c3"
    # Nothing at EIP: Linux's words.
    assert format_code_line(b"", EIP, EIP) == \
        "Code: Unable to access opcode bytes at 0xc0100018."
    assert format_code_line(None, None, EIP).startswith("Code: Unable to access")


def test_disassemble_around_marks_eip():
    lines = disassemble_around(CODE, EIP - 42, EIP)
    assert lines[3] == "=> c0100042: c7 00 2a 00 00 00    movl $0x2a, (%eax)"
    assert lines[2] == "   c0100041: 90                   nop"
    assert lines[4].endswith("popl %ebp") and lines[5].endswith("retl")


def test_disassemble_around_syncs_from_the_function_start():
    # Garbage that decodes across EIP unless decoding starts at the function.
    code = bytes.fromhex("b8c7002a00") + bytes.fromhex("55 89 e5 c7 00 2a 00 00 00 5d c3")
    base = 0xC0100000
    eip = base + 5 + 3                      # the movl in "func" at base+5

    def sym(addr):
        return f"func+{addr - base - 5:#x}/0xb"
    lines = disassemble_around(code, base, eip, sym)
    assert lines[0].endswith("pushl %ebp")
    assert lines[2].startswith("=> c0100008: c7 00 2a 00 00 00")


def test_format_oops_null_pointer_write():
    text = format_oops(kind="page fault", addr=0, error_code=2, regs=REGS, code_bytes=CODE,
                       code_addr=EIP - 42, symbolize=poke_symbolize,
                       region="the address is in the NULL page",
                       backtrace=["main+0x23/0x3a", "_start+0x11/0x1e"],
                       comm="null_deref", pdes=["*pde = 00000000 "])
    lines = text.splitlines()
    assert lines[:9] == [
        "BUG: kernel NULL pointer dereference, address: 00000000",
        "#PF: supervisor write access in kernel mode",
        "#PF: error_code(0x0002) - not-present page",
        "*pde = 00000000 ",
        "mmemu: the address is in the NULL page",
        "Oops: 0002 [#1] PREEMPT SMP",
        "CPU: 0 PID: 1 Comm: null_deref Not tainted 6.1.0-mmemu #1",
        "Hardware name: mmemu i386 (Unicorn), BIOS mmemu",
        "EIP: poke+0x3/0xb",
    ]
    assert lines[9] == CODE_LINE
    assert "mmemu: => c0100042: c7 00 2a 00 00 00    movl $0x2a, (%eax)" in lines
    i = lines.index(REG_LINES[0])
    assert lines[i:i + 12] == REG_LINES + [
        "Call Trace:",
        " main+0x23/0x3a",
        " _start+0x11/0x1e",
        "Modules linked in:",
        "CR2: 0000000000000000",
        "---[ end trace 0000000000000000 ]---",
        "EIP: poke+0x3/0xb",
        CODE_LINE,
    ]
    assert lines[i + 12:] == REG_LINES           # the executive summary
    assert text.endswith("\n")


def test_format_oops_page_fault_above_null_page():
    text = format_oops(kind="page fault", addr=0xF7400000, error_code=0, regs=REGS,
                       code_bytes=CODE, code_addr=EIP - 42, symbolize=poke_symbolize,
                       region=None, backtrace=[], comm="vm", pdes=[])
    assert text.startswith("BUG: unable to handle page fault for address: f7400000\n"
                           "#PF: supervisor read access in kernel mode\n")
    assert "\nCR2: 00000000f7400000\n" in text
    assert "\nmmemu: the" not in text            # no region line


def test_format_oops_other_trap_uses_die_header():
    text = format_oops(kind="general protection fault", addr=EIP, error_code=0, regs=REGS,
                       code_bytes=None, code_addr=None, symbolize=None, region=None,
                       backtrace=None, comm="gp", pdes=[], taint="W")
    lines = text.splitlines()
    assert lines[0] == "general protection fault: 0000 [#1] PREEMPT SMP"
    assert lines[1] == "CPU: 0 PID: 1 Comm: gp Tainted: G        W          6.1.0-mmemu #1"
    assert lines[3] == "EIP: 0xc0100042"            # %pS of an address without a symbol
    assert not any(ln.startswith("CR2: 0000") for ln in lines)
    assert "Call Trace:" in lines


def test_format_bug():
    text = format_bug("prog.c", 12, "main+0x1c/0x80", REGS, ["_start+0x11/0x1e"],
                      code_bytes=CODE, code_addr=EIP - 42, comm="bug", condition="x > 3")
    lines = text.splitlines()
    assert lines[:7] == [
        "------------[ cut here ]------------",
        "kernel BUG at prog.c:12!",
        "mmemu: BUG_ON(x > 3)",
        "invalid opcode: 0000 [#1] PREEMPT SMP",
        "CPU: 0 PID: 1 Comm: bug Not tainted 6.1.0-mmemu #1",
        "Hardware name: mmemu i386 (Unicorn), BIOS mmemu",
        "EIP: main+0x1c/0x80",
    ]
    i = lines.index("Call Trace:")
    assert lines[i:i + 5] == ["Call Trace:", " _start+0x11/0x1e", "Modules linked in:",
                              "---[ end trace 0000000000000000 ]---", "EIP: main+0x1c/0x80"]
    assert lines[-4:] == REG_LINES


def test_format_bug_without_condition_or_code():
    text = format_bug("prog.c", 3, "main+0x5/0x10", {"eip": EIP}, [])
    assert "mmemu: BUG_ON" not in text
    assert "Code:" not in text
    assert "\nEIP: main+0x5/0x10\nEAX: 00000000" in text


def test_format_warn_after_guest_printed_cut_here():
    text = format_warn("prog.c", 12, "main+0x1c/0x80", ["_start+0x11/0x1e"],
                       cut_here=False, condition="x == 1", comm="warn")
    assert text.splitlines() == [
        "WARNING: CPU: 0 PID: 1 at prog.c:12 main+0x1c/0x80",
        "mmemu: WARN_ON(x == 1)",
        "Modules linked in:",
        "CPU: 0 PID: 1 Comm: warn Not tainted 6.1.0-mmemu #1",
        "Hardware name: mmemu i386 (Unicorn), BIOS mmemu",
        "Call Trace:",
        " _start+0x11/0x1e",
        "---[ end trace 0000000000000000 ]---",
    ]


def test_format_warn_with_registers():
    text = format_warn("prog.c", 12, "main+0x1c/0x80", [], regs=REGS, code_bytes=CODE,
                       code_addr=EIP - 42, taint="W")
    lines = text.splitlines()
    assert lines[0] == "------------[ cut here ]------------"
    assert lines[3].endswith("Tainted: G        W          6.1.0-mmemu #1")
    assert lines[5:7] == ["EIP: main+0x1c/0x80", CODE_LINE]
    assert lines[7:11] == REG_LINES


# -- walk_frames ---------------------------------------------------------------

def fake_memory(words):
    return lambda va: words.get(va)


def symbolize_main(addr):
    if 0xC0100000 <= addr < 0xC0100040:
        return f"main+{addr - 0xC0100000:#x}/0x40"
    if 0xC0100100 <= addr < 0xC0100120:
        return f"_start+{addr - 0xC0100100:#x}/0x20"
    return None


def test_walk_frames_follows_the_chain_to_ebp_zero():
    mem = {0xC0106F00: 0xC0106F40, 0xC0106F04: 0xC0100023,     # poke's frame -> main
           0xC0106F40: 0, 0xC0106F44: 0xC0100111}              # main's -> _start, ebp 0
    assert walk_frames(fake_memory(mem), 0xC0106F00, 0xC0100203, symbolize_main) == \
        ["main+0x23/0x40", "_start+0x11/0x20"]


def test_walk_frames_stops_at_unreadable_memory():
    mem = {0xC0106F00: 0xDEAD0000, 0xC0106F04: 0xC0100023}
    assert walk_frames(fake_memory(mem), 0xC0106F00, 0, symbolize_main) == ["main+0x23/0x40"]
    assert walk_frames(fake_memory({}), 0xC0106F00, 0, symbolize_main) == []


def test_walk_frames_stops_on_frames_that_do_not_move_up():
    mem = {0xC0106F00: 0xC0106F00, 0xC0106F04: 0xC0100023}     # a loop
    assert walk_frames(fake_memory(mem), 0xC0106F00, 0, symbolize_main) == ["main+0x23/0x40"]
    mem = {0xC0106F00: 0xC0106E00, 0xC0106F04: 0xC0100023}     # going down
    assert len(walk_frames(fake_memory(mem), 0xC0106F00, 0, symbolize_main)) == 1


def test_walk_frames_ebp_zero_misaligned_and_limit():
    assert walk_frames(fake_memory({}), 0, 0, symbolize_main) == []
    assert walk_frames(fake_memory({0xC0106F06: 1}), 0xC0106F02, 0, symbolize_main) == []
    mem = {}
    for k in range(100):
        ebp = 0xC0106000 + 16 * k
        mem[ebp], mem[ebp + 4] = ebp + 16, 0xC0100010
    assert len(walk_frames(fake_memory(mem), 0xC0106000, 0, symbolize_main, limit=5)) == 5


def test_walk_frames_unknown_return_address_prints_hex():
    mem = {0xC0106F00: 0, 0xC0106F04: 0xC0200000}
    assert walk_frames(fake_memory(mem), 0xC0106F00, 0, symbolize_main) == ["0xc0200000"]


def test_walk_frames_at_function_entry_uses_the_stack():
    # EIP on main's first byte: its caller's return address is at [esp], and
    # ebp is still _start's frame (0), so the chain itself is empty.
    mem = {0xC0106FFC: 0xC0100111}
    assert walk_frames(fake_memory(mem), 0, 0xC0100000, symbolize_main, esp=0xC0106FFC) == \
        ["_start+0x11/0x20"]
    # After push %ebp (offset 1): the return address is one word up.
    mem = {0xC0106FF8: 0, 0xC0106FFC: 0xC0100111}
    assert walk_frames(fake_memory(mem), 0, 0xC0100001, symbolize_main, esp=0xC0106FF8) == \
        ["_start+0x11/0x20"]


def test_backtrace_symbol_looks_up_the_call_not_the_return():
    # A call as a function's last instruction returns to the next function's
    # first byte; %pB still names the caller.
    assert backtrace_symbol(0xC0100040, symbolize_main) == "main+0x40/0x40"
    assert backtrace_symbol(0xC0100023, symbolize_main) == "main+0x23/0x40"
