"""The kernel's words for a guest gone wrong: oops, BUG and WARN reports.

Pure text formatting, in the shape Linux 6.1 i386 prints: arch/x86/mm/fault.c
(show_fault_oops, dump_pagetable, page_fault_oops), arch/x86/kernel/dumpstack.c
(__die_header, show_regs, show_opcodes, show_trace_log_lvl, oops_end's
"executive summary"), arch/x86/kernel/process_32.c (__show_regs), lib/bug.c
(report_bug) and kernel/panic.c (__warn, print_tainted).  The engine gathers
registers, code bytes and the backtrace; nothing here touches the machine.

Linux's lines are kept as Linux prints them, so tools that read real oopses
(scripts/decodecode, syzkaller's report parser) read these.  mmemu's own
additions are separate lines beginning with "mmemu:" (the region the address
falls in, a BUG_ON's condition) and a capstone disassembly around EIP.

Differs: the kernel is always "6.1.0-mmemu #1" with one CPU and PID 1; the
taint letters are what the caller passes.
"""
import re

PAGE_SIZE = 4096
KERNEL_RELEASE = "6.1.0-mmemu"
KERNEL_VERSION = "#1"
HARDWARE_NAME = "mmemu i386 (Unicorn), BIOS mmemu"
# CONFIG_PREEMPTION (Debian's PREEMPT_DYNAMIC) and CONFIG_SMP; no PTI without PAE.
DIE_FLAGS = " PREEMPT SMP"
CUT_HERE = "------------[ cut here ]------------"
END_TRACE = "---[ end trace 0000000000000000 ]---"

# Page fault error code bits (arch/x86/include/asm/trap_pf.h)
X86_PF_PROT = 1 << 0
X86_PF_WRITE = 1 << 1
X86_PF_USER = 1 << 2
X86_PF_RSVD = 1 << 3
X86_PF_INSTR = 1 << 4
X86_PF_PK = 1 << 5

# taint_flags[] of kernel/panic.c, in bit order (6.1: 19 flags); 'G' is P's "false".
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"

PROLOGUE_SIZE = 42                 # show_opcodes(): bytes before EIP
EPILOGUE_SIZE = 21                 # and after the byte at EIP

# Linux's own segment values, for callers whose CPU has flat zero selectors.
LINUX_SEGMENTS = {"ds": 0x7B, "es": 0x7B, "fs": 0xD8, "gs": 0x00, "ss": 0x68}

_GPRS = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags",
         "cr0", "cr2", "cr3", "cr4")
_SYM_RE = re.compile(r"^(?P<name>.*)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)$")


# -- pieces ------------------------------------------------------------------

def decode_pf_error(error_code, user_mode=None):
    """The two "#PF:" lines of show_fault_oops() for a page-fault error code.

    >>> decode_pf_error(0x0002)
    ('#PF: supervisor write access in kernel mode', '#PF: error_code(0x0002) - not-present page')

    user_mode is where the CPU was (user_mode(regs)); by default the U bit.
    """
    if user_mode is None:
        user_mode = bool(error_code & X86_PF_USER)
    who = "user" if error_code & X86_PF_USER else "supervisor"
    if error_code & X86_PF_INSTR:
        what = "instruction fetch"
    elif error_code & X86_PF_WRITE:
        what = "write access"
    else:
        what = "read access"
    if not error_code & X86_PF_PROT:
        why = "not-present page"
    elif error_code & X86_PF_RSVD:
        why = "reserved bit violation"
    elif error_code & X86_PF_PK:
        why = "protection keys violation"
    else:
        why = "permissions violation"
    mode = "user" if user_mode else "kernel"
    return (f"#PF: {who} {what} in {mode} mode",
            f"#PF: error_code(0x{error_code:04x}) - {why}")


def dump_pagetable_line(pde, pte=None):
    """dump_pagetable() on 32-bit non-PAE: "*pde = 00000000 " (and the pte)."""
    line = f"*pde = {pde:08x} "
    if pte is not None:
        line += f"*pte = {pte:08x} "
    return line


def print_tainted(taint=""):
    """print_tainted(): "Not tainted", or "Tainted: G        W          ".

    taint holds the letters of the set flags (e.g. "W" after a WARN, "D"
    after an oops, "B" after a bad page state).
    """
    if not taint:
        return "Not tainted"
    flags = "".join(c if c in taint else ("G" if c == "P" else " ") for c in TAINT_LETTERS)
    return "Tainted: " + flags


def cpu_line(comm, taint="", pid=1, cpu=0):
    """dump_stack_print_info(): the "CPU: 0 PID: 1 Comm: ..." line."""
    return (f"CPU: {cpu} PID: {pid} Comm: {comm[:15]} {print_tainted(taint)} "
            f"{KERNEL_RELEASE} {KERNEL_VERSION}")


def format_code_line(code_bytes, code_addr, eip):
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


def disassemble_around(code_bytes, code_addr, eip, symbolize=None, before=3, after=3):
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


def _function_start(eip, symbolize):
    parsed = _parse_symbol(symbolize(eip)) if symbolize else None
    return eip - parsed[1] if parsed else None


def _decode_synced(code, base, eip, func_start):
    from capstone import CS_ARCH_X86, CS_MODE_32, CS_OPT_SYNTAX_ATT, Cs
    md = Cs(CS_ARCH_X86, CS_MODE_32)
    md.syntax = CS_OPT_SYNTAX_ATT          # objdump's, as scripts/decodecode shows
    starts = []
    if func_start is not None and base <= func_start <= eip:
        starts.append(func_start - base)
    starts += range(0, eip - base + 1)
    for off in starts:
        insns = list(md.disasm(code[off:], base + off))
        if any(ins.address == eip for ins in insns):
            return insns
    return []


def _parse_symbol(text):
    """"name+0x1c/0x80" -> (name, 0x1c, 0x80), or None."""
    m = _SYM_RE.match(text or "")
    if not m:
        return None
    return m["name"], int(m["off"], 16), int(m["size"], 16)


def show_regs_lines(regs, where, code_bytes=None, code_addr=None, symbolize=None,
                    disasm=False):
    """__show_regs() 32-bit, SHOW_REGS_ALL: EIP, Code, the registers, CR0-CR4."""
    r = {name: regs.get(name, 0) & 0xFFFFFFFF for name in _GPRS}
    r.update({name: regs.get(name, dflt) & 0xFFFF for name, dflt in LINUX_SEGMENTS.items()})
    lines = [f"EIP: {where}"]
    if code_bytes is not None:
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


def call_trace_lines(backtrace):
    """show_trace_log_lvl() on 32-bit: "Call Trace:" and one " entry" per frame."""
    return ["Call Trace:"] + [f" {entry}" for entry in backtrace or ()]


def _where(regs, symbolize):
    eip = regs.get("eip", 0) & 0xFFFFFFFF
    return (symbolize(eip) if symbolize else None) or f"0x{eip:x}"


def _die_block(header, regs, where, code_bytes, code_addr, symbolize, backtrace,
               comm, taint, hardware):
    """__die(): the header, show_regs() (with the call trace) and the modules line."""
    lines = [header, cpu_line(comm, taint)]
    if hardware:
        lines.append(f"Hardware name: {hardware}")
    lines += show_regs_lines(regs, where, code_bytes, code_addr, symbolize, disasm=True)
    lines += call_trace_lines(backtrace)
    lines.append("Modules linked in:")
    return lines


# -- whole reports -----------------------------------------------------------

def format_oops(kind, addr, error_code, regs, code_bytes, code_addr, symbolize,
                region, backtrace, comm, pdes, *, taint="", hardware=HARDWARE_NAME,
                die_counter=1):
    """The whole oops for one CPU exception, as 6.1 i386 prints it.

    kind is "page fault" (page_fault_oops(): the BUG/#PF/page-table lines,
    then "Oops: ...", and the CR2 summary), or the trap's name for die()
    ("invalid opcode", "general protection fault", "divide error", ...).
    addr is CR2 for a page fault; pdes the dump_pagetable() lines; region
    mmemu's words for where addr is (or None).  Ends with oops_end()'s
    "executive summary" (EIP, Code and registers once more).
    """
    where = _where(regs, symbolize)
    lines = []
    is_pf = kind in ("page fault", "page_fault", "pf")
    if is_pf:
        lines += _fault_lines(addr, error_code, pdes)
        header = f"Oops: {error_code & 0xFFFF:04x} [#{die_counter}]{DIE_FLAGS}"
    else:
        header = f"{kind}: {error_code & 0xFFFF:04x} [#{die_counter}]{DIE_FLAGS}"
    if region:
        lines.append(f"mmemu: {region}")
    lines += _die_block(header, regs, where, code_bytes, code_addr, symbolize, backtrace,
                        comm, taint, hardware)
    if is_pf:
        lines.append(f"CR2: {addr & 0xFFFFFFFF:016x}")
    lines.append(END_TRACE)
    lines += show_regs_lines(regs, where, code_bytes, code_addr)
    return "\n".join(lines) + "\n"


def _fault_lines(addr, error_code, pdes):
    """show_fault_oops(): what was touched, how, and the page-table entries."""
    addr &= 0xFFFFFFFF
    if addr < PAGE_SIZE:
        first = f"BUG: kernel NULL pointer dereference, address: {addr:08x}"
    else:
        first = f"BUG: unable to handle page fault for address: {addr:08x}"
    return [first, *decode_pf_error(error_code, user_mode=False), *(pdes or ())]


def format_bug(file, line, where, regs, backtrace, *, code_bytes=None, code_addr=None,
               symbolize=None, comm="mmemu", taint="", condition=None,
               hardware=HARDWARE_NAME, die_counter=1):
    """BUG()/BUG_ON(): report_bug()'s lines, then die("invalid opcode").

    where is the symbolized EIP ("main+0x1c/0x80"); condition the BUG_ON's
    text (mmemu prints it on its own line; empty for BUG()).
    """
    lines = [CUT_HERE, f"kernel BUG at {file}:{line}!"]
    if condition:
        lines.append(f"mmemu: BUG_ON({condition})")
    header = f"invalid opcode: 0000 [#{die_counter}]{DIE_FLAGS}"
    lines += _die_block(header, regs, where, code_bytes, code_addr, symbolize, backtrace,
                        comm, taint, hardware)
    lines.append(END_TRACE)
    lines += show_regs_lines(regs, where, code_bytes, code_addr)
    return "\n".join(lines) + "\n"


def format_warn(file, line, where, backtrace, *, regs=None, code_bytes=None,
                code_addr=None, symbolize=None, comm="mmemu", taint="", cut_here=True,
                condition=None, hardware=HARDWARE_NAME):
    """WARN()/WARN_ON(): __warn()'s report; the program carries on.

    cut_here=False when the guest already printed the cut-here line and its
    message (WARN(cond, fmt, ...): BUGFLAG_NO_CUT_HERE in the HC_WARN flags).
    With regs the registers are shown as x86's ud2-based WARN does; without,
    the report is dump_stack()'s.
    """
    lines = [CUT_HERE] if cut_here else []
    lines.append(f"WARNING: CPU: 0 PID: 1 at {file}:{line} {where}")
    if condition:
        lines.append(f"mmemu: WARN_ON({condition})")
    lines += ["Modules linked in:", cpu_line(comm, taint)]
    if hardware:
        lines.append(f"Hardware name: {hardware}")
    if regs is not None:
        lines += show_regs_lines(regs, where, code_bytes, code_addr, symbolize)
    lines += call_trace_lines(backtrace)
    lines.append(END_TRACE)
    return "\n".join(lines) + "\n"


# -- the backtrace -----------------------------------------------------------

def walk_frames(read32, ebp, eip, symbolize, limit=32, esp=None):
    """The call chain through saved frame pointers: one "%pBb" string per frame.

    Each frame is [ebp] = the caller's ebp, [ebp+4] = the return address.
    Stops at EBP 0 (set by _start), an unreadable or misaligned frame, or a
    frame that does not move up the stack.  read32(va) returns None for an
    unreadable address.  With esp, a fault on a function's first two bytes
    (before `mov %esp,%ebp`) still lists the caller, whose return address is
    then on the stack rather than at [ebp+4].
    """
    lines = []
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


def _entry_return_address(read32, eip, esp, symbolize):
    """At offset 0 the return address is at [esp]; after push %ebp at [esp+4]."""
    if esp is None or symbolize is None:
        return None
    parsed = _parse_symbol(symbolize(eip))
    if parsed is None or parsed[1] > 1:
        return None
    return read32(esp + 4 * parsed[1])


def backtrace_symbol(ret, symbolize):
    """%pB: look up ret-1 (a call may be a function's last instruction), print ret.

    >>> backtrace_symbol(0xc0100020, lambda a: "main+0x1f/0x30")
    'main+0x20/0x30'
    """
    parsed = _parse_symbol(symbolize(ret - 1)) if symbolize else None
    if parsed is None:
        return f"0x{ret:x}"
    name, off, size = parsed
    return f"{name}+{off + 1:#x}/{size:#x}"
