"""The x86 parts of a report: the registers, the code around EIP, the call trace.

Models the text of arch/x86/kernel/process_32.c (__show_regs(), 32-bit,
SHOW_REGS_ALL), arch/x86/kernel/dumpstack.c (show_opcodes()'s "Code:" line,
show_trace_log_lvl()'s "Call Trace:") and the frame-pointer unwinder of
arch/x86/kernel/unwind_frame.c over a guest stack.  Pure formatting: the
runtime gathers registers, code bytes and stack words; kernel/panic.py puts
these pieces into whole reports.

Linux's lines are kept as Linux prints them, so tools that read real oopses
(scripts/decodecode, syzkaller's report parser) read these.  mmemu adds a
capstone disassembly around EIP, on lines beginning with "mmemu:".
"""
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional

PROLOGUE_SIZE = 42                 # show_opcodes(): bytes before EIP
EPILOGUE_SIZE = 21                 # and after the byte at EIP

# Linux's own segment values, for callers whose CPU has flat zero selectors.
LINUX_SEGMENTS = {"ds": 0x7B, "es": 0x7B, "fs": 0xD8, "gs": 0x00, "ss": 0x68}

_GPRS = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags",
         "cr0", "cr2", "cr3", "cr4")
# symbolize(addr): "name+0x1c/0x80" or None; read32(va): a word, or None if unreadable.
Symbolize = Callable[[int], Optional[str]]
Read32 = Callable[[int], Optional[int]]

_SYM_RE = re.compile(r"^(?P<name>.*)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)$")


def format_code_line(code_bytes: Optional[bytes], code_addr: int, eip: int) -> str:
    """show_opcodes(): 42 bytes before EIP, <the byte at EIP>, 21 after.

    code_bytes are the readable bytes starting at code_addr.  Linux prints
    all 64 or "Unable to access"; mmemu prints whatever readable bytes
    surround EIP (differs only when part of the window is unmapped).
    """
    start = eip - PROLOGUE_SIZE
    if code_bytes is None or not code_addr <= eip < code_addr + len(code_bytes):
        return f"Code: Unable to access opcode bytes at 0x{start:x}."
    i = eip - code_addr
    pre = code_bytes[max(0, i - PROLOGUE_SIZE):i]
    post = code_bytes[i + 1:i + 1 + EPILOGUE_SIZE]
    parts = [b.hex(" ") for b in (pre,) if b] + [f"<{code_bytes[i]:02x}>"]
    if post:
        parts.append(post.hex(" "))
    return "Code: " + " ".join(parts)


def disassemble_around(code_bytes: Optional[bytes], code_addr: int, eip: int,
                       symbolize: Optional[Symbolize] = None, before: int = 3,
                       after: int = 3) -> list[str]:
    """mmemu's addition to the Code: line: capstone's reading of the code.

    Decoding starts at the function's first byte when it is in the window
    (from symbolize(eip)), else at the earliest offset whose instruction
    stream lands on EIP.  The faulting instruction is marked "=>".
    """
    if code_bytes is None or not code_addr <= eip < code_addr + len(code_bytes):
        return []
    insns = _decode_synced(bytes(code_bytes), code_addr, eip, _function_start(eip, symbolize))
    at = next((k for k, ins in enumerate(insns) if ins.address == eip), None)
    if at is None:
        return []
    lines = []
    for ins in insns[max(0, at - before):at + after]:
        mark = "=>" if ins.address == eip else "  "
        raw = ins.bytes.hex(" ")
        lines.append(f"{mark} {ins.address:08x}: {raw:<20} {ins.mnemonic} {ins.op_str}".rstrip())
    return lines


def _function_start(eip: int, symbolize: Optional[Symbolize]) -> Optional[int]:
    parsed = _parse_symbol(symbolize(eip)) if symbolize else None
    return eip - parsed[1] if parsed else None


def _decode_synced(code: bytes, base: int, eip: int, func_start: Optional[int]) -> list[Any]:
    from capstone import CS_ARCH_X86, CS_MODE_32, CS_OPT_SYNTAX_ATT, Cs
    md = Cs(CS_ARCH_X86, CS_MODE_32)
    md.syntax = CS_OPT_SYNTAX_ATT          # objdump's, as scripts/decodecode shows
    starts = []
    if func_start is not None and base <= func_start <= eip:
        starts.append(func_start - base)
    starts += range(eip - base + 1)
    for off in starts:
        insns = list(md.disasm(code[off:], base + off))
        if any(ins.address == eip for ins in insns):
            return insns
    return []


def _parse_symbol(text: Optional[str]) -> Optional[tuple[str, int, int]]:
    """"name+0x1c/0x80" -> (name, 0x1c, 0x80), or None."""
    m = _SYM_RE.match(text or "")
    if not m:
        return None
    return m["name"], int(m["off"], 16), int(m["size"], 16)


def show_regs_lines(regs: Mapping[str, int], where: str, code_bytes: Optional[bytes] = None,
                    code_addr: Optional[int] = None, symbolize: Optional[Symbolize] = None,
                    disasm: bool = False) -> list[str]:
    """__show_regs() 32-bit, SHOW_REGS_ALL: EIP, Code, the registers, CR0-CR4."""
    r = {name: regs.get(name, 0) & 0xFFFFFFFF for name in _GPRS}
    r.update({name: regs.get(name, dflt) & 0xFFFF for name, dflt in LINUX_SEGMENTS.items()})
    lines = [f"EIP: {where}"]
    if code_bytes is not None and code_addr is not None:
        lines.append(format_code_line(code_bytes, code_addr, r["eip"]))
        if disasm:
            lines += ["mmemu: " + ln for ln in
                      disassemble_around(code_bytes, code_addr, r["eip"], symbolize)]
    lines += [
        "EAX: {eax:08x} EBX: {ebx:08x} ECX: {ecx:08x} EDX: {edx:08x}".format(**r),
        "ESI: {esi:08x} EDI: {edi:08x} EBP: {ebp:08x} ESP: {esp:08x}".format(**r),
        "DS: {ds:04x} ES: {es:04x} FS: {fs:04x} GS: {gs:04x} SS: {ss:04x} "
        "EFLAGS: {eflags:08x}".format(**r),
        "CR0: {cr0:08x} CR2: {cr2:08x} CR3: {cr3:08x} CR4: {cr4:08x}".format(**r),
    ]
    return lines


def call_trace_lines(backtrace: Optional[Iterable[str]]) -> list[str]:
    """show_trace_log_lvl() on 32-bit: "Call Trace:" and one " entry" per frame."""
    return ["Call Trace:"] + [f" {entry}" for entry in backtrace or ()]


# -- the backtrace -----------------------------------------------------------

def walk_frames(read32: Read32, ebp: int, eip: int, symbolize: Optional[Symbolize],
                limit: int = 32, esp: Optional[int] = None) -> list[str]:
    """The call chain through saved frame pointers: one "%pBb" string per frame.

    Each frame is [ebp] = the caller's ebp, [ebp+4] = the return address.
    Stops at EBP 0 (set by _start), an unreadable or misaligned frame, or a
    frame that does not move up the stack.  read32(va) returns None for an
    unreadable address.  With esp, a fault on a function's first two bytes
    (before `mov %esp,%ebp`) still lists the caller, whose return address is
    then on the stack rather than at [ebp+4].
    """
    lines: list[str] = []
    ret = _entry_return_address(read32, eip, esp, symbolize)
    if ret:
        lines.append(backtrace_symbol(ret, symbolize))
    for _ in range(limit - len(lines)):
        if not ebp or ebp & 3:
            break
        ret, nxt = read32(ebp + 4), read32(ebp)
        if not ret or nxt is None:
            break
        lines.append(backtrace_symbol(ret, symbolize))
        if nxt and nxt <= ebp:
            break
        ebp = nxt
    return lines


def _entry_return_address(read32: Read32, eip: int, esp: Optional[int],
                          symbolize: Optional[Symbolize]) -> Optional[int]:
    """At offset 0 the return address is at [esp]; after push %ebp at [esp+4]."""
    if esp is None or symbolize is None:
        return None
    parsed = _parse_symbol(symbolize(eip))
    if parsed is None or parsed[1] > 1:
        return None
    return read32(esp + 4 * parsed[1])


def backtrace_symbol(ret: int, symbolize: Optional[Symbolize]) -> str:
    """%pB: look up ret-1 (a call may be a function's last instruction), print ret.

    >>> backtrace_symbol(0xc0100020, lambda a: "main+0x1f/0x30")
    'main+0x20/0x30'
    """
    parsed = _parse_symbol(symbolize(ret - 1)) if symbolize else None
    if parsed is None:
        return f"0x{ret:x}"
    name, off, size = parsed
    return f"{name}+{off + 1:#x}/{size:#x}"
