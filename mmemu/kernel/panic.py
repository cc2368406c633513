"""Every report the kernel prints about itself, and what happens after it.

Models kernel/panic.c (the taint flags: add_taint(), print_tainted();
__warn(); panic() and panic_on_warn), lib/dump_stack.c
(dump_stack_print_info(): the "CPU: 0 PID: 1 Comm: ... Tainted: ..." line),
lib/bug.c (report_bug(): "kernel BUG at file:line!"), lib/debug_locks.c
(debug_locks_off()) and the frame of arch/x86/kernel/dumpstack.c's die()
(the "invalid opcode: 0000 [#1] PREEMPT SMP" header, oops_end()'s summary
and its TAINT_DIE).  The x86 pieces inside a report (registers, the Code:
line, the call trace, the #PF lines) come from arch/x86/dumpstack.py and
arch/x86/fault.py.

This is the one place that formats a report's frame, owns the machine's
taint flags, and decides what a report does next.  Subsystems say only what
went wrong (bad_page()'s page dump, slab_err()'s object bytes, "kernel BUG at
mm/highmem.c:358") and hand it to the machine's Reporter:

    rep.warn("mm/vmalloc.c", None, "__vunmap", message="Trying to vfree() ...")
    rep.bug("mm/highmem.c", 358, "kunmap_high")       # a BUG in modelled code
    rep.report(text, taint=TAINT_BAD_PAGE)            # Bad page state, slab_bug()
    rep.info(text)                                    # warn_alloc(): a printk, no more

What happens next (Reporter._after(), the one table):

* WARN (__warn()): the task goes on; TAINT_WARN; then check_panic_on_warn("kernel").
* BUG (report_bug() + die()) and oops (die()): TAINT_DIE and the task is
  killed: the guest's run ends with EXIT_BUG or EXIT_OOPS.  That holds for
  the guest's own BUG() and for a BUG or VM_BUG_ON of kernel code mmemu
  models (rep.bug(..., taken=False): the modelled code refuses what it was
  asked, so the machine's state stays whole, and the run ends as 6.1's
  task would).  Differs: a BUG met in a call the host made (no guest run
  being served) kills nothing; the call returns its refusal and the
  embedding program decides.  Where the modelled code must not go on
  past the BUG, as 6.1's does not (die(), corrupt(), and
  kernel/list_debug.py's CHECK_DATA_CORRUPTION()), KernelOops is raised
  after the report: the hypercall doorbell takes it in a guest run, and
  a call from the host gets it.
* The BUG-class lines Linux prints without WARN() (Bad page state, SLUB's
  "BUG kmalloc-64 (...)", sleeping in atomic context, a spinlock BUG) and
  mmemu's own refusals ("mmemu: ..."): the task goes on, with the taint the
  caller names.  panic_on_warn does not panic after these, as in 6.1.176,
  whose check_panic_on_warn() callers are __warn(), __schedule_bug()
  ("scheduling while atomic"), KASAN, KCSAN, KFENCE and UBSAN: a report that
  stands for such a caller names it (rep.report(..., panic_origin=
  "scheduling while atomic")).
* info (warn_alloc(), "vmap allocation failed"): printed, collected, nothing
  more.
* panic(): "Kernel panic - not syncing: ..." and the machine stops (EXIT_PANIC).

Differs everywhere: the kernel is "6.1.0-mmemu #1" on one CPU; the current
task's name is the guest program's (machine.load() sets it) and its pid
is 1 unless a user task runs.
"""
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, Optional

from mmemu.arch.x86.dumpstack import call_trace_lines, show_regs_lines
from mmemu.arch.x86.fault import show_fault_oops_lines
from mmemu.errors import KernelOops
from mmemu.log import KERN_ALERT, KERN_EMERG, KERN_WARNING, KernelLog

UTS_RELEASE = "6.1.0-mmemu"
UTS_VERSION = "#1"
HARDWARE_NAME = "mmemu i386 (Unicorn), BIOS mmemu"
# CONFIG_PREEMPTION (Debian's PREEMPT_DYNAMIC) and CONFIG_SMP; no PTI without PAE.
DIE_FLAGS = " PREEMPT SMP"
CUT_HERE = "------------[ cut here ]------------"
END_TRACE = "---[ end trace 0000000000000000 ]---"

# enum taint_flags of 6.1, in bit order (taint_flags[] of kernel/panic.c):
# the letter print_tainted() shows when the flag is set.  'G' shows when P is not.
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"
TAINT_BAD_PAGE = "B"
TAINT_DIE = "D"
TAINT_WARN = "W"

# The exit status a report that ends the run gives `mmemu run` (128 + the
# signal the task dies of, as a shell shows it).
EXIT_BUG = 134           # BUG()/BUG_ON(): SIGABRT
EXIT_PANIC = 137         # a panic (panic_on_warn): SIGKILL
EXIT_OOPS = 139          # an oops: SIGSEGV

# The classes of report, for Reporter._after().
WARN, BUG, OOPS, KERNEL_BUG, REPORT, INFO = "warn", "bug", "oops", "kernel-bug", "report", "info"


# -- the pieces ------------------------------------------------------------------

def print_tainted(taint: str = "") -> str:
    """print_tainted(): "Not tainted", or "Tainted: G        W          ".

    taint holds the letters of the set flags (e.g. "W" after a WARN, "D"
    after an oops, "B" after a bad page state).
    """
    if not taint:
        return "Not tainted"
    flags = "".join(c if c in taint else ("G" if c == "P" else " ") for c in TAINT_LETTERS)
    return "Tainted: " + flags


def cpu_line(comm: str, taint: str = "", pid: int = 1, cpu: int = 0) -> str:
    """dump_stack_print_info()'s first line: "CPU: 0 PID: 1 Comm: ... 6.1.0-mmemu #1"."""
    return (f"CPU: {cpu} PID: {pid} Comm: {comm[:15]} {print_tainted(taint)} "
            f"{UTS_RELEASE} {UTS_VERSION}")


def dump_stack_print_info(comm: str, taint: str = "", pid: int = 1,
                          hardware: str = HARDWARE_NAME) -> list[str]:
    """dump_stack_print_info(): the CPU line, then "Hardware name: ..."."""
    return [cpu_line(comm, taint, pid)] + ([f"Hardware name: {hardware}"] if hardware else [])


def _where(regs, symbolize):
    eip = regs.get("eip", 0) & 0xFFFFFFFF
    return (symbolize(eip) if symbolize else None) or f"0x{eip:x}"


def _die_block(header, regs, where, code_bytes, code_addr, symbolize, backtrace,
               comm, taint, hardware, pid=1):
    """__die(): the header, show_regs() (with the call trace) and the modules line."""
    lines = [header] + dump_stack_print_info(comm, taint, pid, hardware)
    if regs is not None:
        lines += show_regs_lines(regs, where, code_bytes, code_addr, symbolize, disasm=True)
    lines += call_trace_lines(backtrace)
    lines.append("Modules linked in:")
    return lines


# -- whole reports ---------------------------------------------------------------

def format_oops(kind, addr, error_code, regs, code_bytes, code_addr, symbolize,
                region, backtrace, comm, pdes, *, taint="", hardware=HARDWARE_NAME,
                die_counter=1, pid=1, where=None, first=()):
    """The whole oops for one CPU exception, as 6.1 i386 prints it.

    kind is "page fault" (page_fault_oops(): the BUG/#PF/page-table lines,
    then "Oops: ...", and the CR2 summary), or the trap's name for die()
    ("invalid opcode", "general protection fault", "divide error", ...).
    addr is CR2 for a page fault; pdes the dump_pagetable() lines; first
    the lines show_fault_oops() prints before the rest (the NX line); region
    mmemu's words for where addr is (or None).  Ends with oops_end()'s
    "executive summary" (EIP, Code and registers once more).  where
    overrides the EIP line's symbol (a fault of modelled kernel code names
    its caller); regs None leaves the registers out (a call from the host).
    """
    if where is None:
        where = _where(regs or {}, symbolize)
    lines = []
    is_pf = kind in ("page fault", "page_fault", "pf")
    if is_pf:
        lines += show_fault_oops_lines(addr, error_code, pdes, first)
        header = f"Oops: {error_code & 0xFFFF:04x} [#{die_counter}]{DIE_FLAGS}"
    else:
        header = f"{kind}: {error_code & 0xFFFF:04x} [#{die_counter}]{DIE_FLAGS}"
    if region:
        lines.append(f"mmemu: {region}")
    lines += _die_block(header, regs, where, code_bytes, code_addr, symbolize, backtrace,
                        comm, taint, hardware, pid)
    if is_pf:
        lines.append(f"CR2: {addr & 0xFFFFFFFF:016x}")
    lines.append(END_TRACE)
    if regs is not None:
        lines += show_regs_lines(regs, where, code_bytes, code_addr)
    return "\n".join(lines) + "\n"


def format_bug(file, line, where, regs, backtrace, *, code_bytes=None, code_addr=None,
               symbolize=None, comm="mmemu", taint="", condition=None, notes=(),
               hardware=HARDWARE_NAME, die_counter=1, pid=1):
    """BUG()/BUG_ON(): report_bug()'s lines, then die("invalid opcode").

    where is the symbolized EIP ("main+0x1c/0x80"); condition the BUG_ON's
    text (mmemu prints it on its own line; empty for BUG()); notes more
    "mmemu: ..." lines after it.  line None prints the file alone.  regs
    None (a BUG in modelled kernel code called from the host, which has no
    guest registers) leaves out the register dumps.
    """
    lines = [CUT_HERE, f"kernel BUG at {file if line is None else f'{file}:{line}'}!"]
    if condition:
        lines.append(f"mmemu: BUG_ON({condition})")
    lines += [n for n in notes if n]
    header = f"invalid opcode: 0000 [#{die_counter}]{DIE_FLAGS}"
    lines += _die_block(header, regs, where, code_bytes, code_addr, symbolize, backtrace,
                        comm, taint, hardware, pid)
    lines.append(END_TRACE)
    if regs is not None:
        lines += show_regs_lines(regs, where, code_bytes, code_addr)
    return "\n".join(lines) + "\n"


def format_warn(file, line, where, backtrace, *, regs=None, code_bytes=None,
                code_addr=None, symbolize=None, comm="mmemu", taint="", cut_here=True,
                condition=None, message=None, notes=(), after=(), hardware=HARDWARE_NAME,
                pid=1):
    """WARN()/WARN_ON(): __warn_printk() and __warn()'s report; the program carries on.

    cut_here=False when the guest already printed the cut-here line and its
    message (WARN(cond, fmt, ...): BUGFLAG_NO_CUT_HERE in the HC_WARN flags);
    message is WARN()'s own text, printed after the cut-here line.  line
    None prints the file alone.  With regs the registers are shown as x86's
    ud2-based WARN does; without, the report is dump_stack()'s.  notes are
    mmemu's lines after the WARNING line, after its lines after the end
    marker.
    """
    lines = [CUT_HERE] if cut_here else []
    if message:
        lines.append(message)
    at = file if line is None else f"{file}:{line}"
    lines.append(f"WARNING: CPU: 0 PID: {pid} at {at} {where}")
    if condition:
        lines.append(f"mmemu: WARN_ON({condition})")
    lines += [n for n in notes if n]
    lines.append("Modules linked in:")
    lines += dump_stack_print_info(comm, taint, pid, hardware)
    if regs is not None:
        lines += show_regs_lines(regs, where, code_bytes, code_addr, symbolize)
    lines += call_trace_lines(backtrace)
    lines.append(END_TRACE)
    lines += list(after)
    return "\n".join(lines) + "\n"


# -- the host as the caller ------------------------------------------------------

def host_caller() -> str:
    """The host code that called into mmemu: "name [host file:line]".

    The first frame outside the mmemu package (a test, a tool, an embedder's
    program): what a report's call trace shows for a call made from Python.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("mmemu."):
        frame = frame.f_back
    if frame is None:
        return "host"
    code = frame.f_code
    return f"{code.co_name} [host {code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}]"


# -- the machine's reporter ------------------------------------------------------

class Reporter:
    """One machine's reports: the taint flags, the task they name, what comes next.

    Models the state kernel/panic.c keeps in globals (tainted_mask,
    panic_on_warn, die_counter) and lib/debug_locks.c's debug_locks.  log is
    the KernelLog reports go to.  The runtime plugs in the rest:

    * ``guest``: where a call from guest code comes from, an object with
      in_guest() (a guest run is being served), guest_caller() ("main+0x1c/0x80"),
      backtrace() (["main+0x20/0x30", ...]), regs() ({"eip": ..., ...}) and
      fault_context(addr) (dump_pagetable()'s lines and mmemu's words for
      where addr is).
      While there is none, or no guest run is being served, the caller is the
      host: the call trace names the Python code that called in.
    * ``on_report(text)``: every report (RunResult.reports collects them).
    * ``on_stop(reason)``: end the run ("bug", "oops", "panic").
    * ``current_pid()``: current->pid (kernel/sched.py's, once wired).
    * ``task_dead``: callables make_task_dead() runs once a BUG or an oops
      has stopped the task (the per-cpu context, the task's kmap_local
      slots; machine.py wires them, the runtime calls make_task_dead()).
    """

    def __init__(self, log: KernelLog, panic_on_warn: bool = False) -> None:
        self.log = log
        self.panic_on_warn = panic_on_warn
        self.taint = ""                  # tainted_mask, as the letters of the set flags
        self.debug_locks = True          # lib/debug_locks.c: off once a taint spoils it
        self.die_counter = 0             # the [#n] of die()
        self.warnings = 0                # warnings so far: WARNs and the BUG-class lines
        self.comm = "mmemu"              # current->comm: the guest program's name
        self.current_pid = lambda: 1
        self.guest = None
        self.on_report = None
        self.on_stop = None
        self.task_dead = []
        self._once = set()               # the WARN_ON_ONCE() sites that fired

    # -- taint -------------------------------------------------------------------
    def print_tainted(self) -> str:
        """print_tainted() of this machine: "Not tainted" or "Tainted: G    B  ..."."""
        return print_tainted(self.taint)

    def add_taint(self, flag: str, lockdep_ok: bool = True) -> None:
        """add_taint(flag, lockdep_ok): set a taint flag (a letter of TAINT_LETTERS).

        Like 6.1, a taint that makes lock debugging unreliable (lockdep_ok
        False: a bad page, an oops) switches debug_locks off, noisily, the
        first time.
        """
        if not lockdep_ok and self.debug_locks_off():
            self.log.printk("Disabling lock debugging due to kernel taint", KERN_WARNING)
        if flag not in self.taint:
            self.taint += flag

    def debug_locks_off(self) -> bool:
        """debug_locks_off(): True for the caller that turned lock debugging off."""
        was, self.debug_locks = self.debug_locks, False
        return was

    # -- the current task and its stack ------------------------------------------
    def in_guest(self) -> bool:
        """Whether the current call comes from guest code (a guest run is being served)."""
        return self.guest is not None and self.guest.in_guest()

    def caller(self) -> str:
        """The code that made the current call: "main+0x1c/0x80", or the host's caller."""
        return self.guest.guest_caller() if self.in_guest() else host_caller()

    def backtrace(self, with_caller: bool = True) -> list[str]:
        """The call trace of a report: the caller first, then its callers.

        A guest call that the program's own function made inline is not a
        return address, so the frame walk alone would begin at its caller;
        with_caller puts it first (a report that shows the guest's registers
        names it on its EIP line instead).
        """
        if not self.in_guest():
            return [host_caller()]
        frames = [str(f).strip() for f in self.guest.backtrace() or ()]
        caller = self.guest.guest_caller() if with_caller else None
        if caller and caller not in frames:
            frames.insert(0, caller)
        return frames

    def regs(self) -> Optional[dict[str, int]]:
        """The guest's registers at the current call, or None for a host call."""
        return self.guest.regs() if self.in_guest() else None

    def dump_stack(self, taint: str = "") -> list[str]:
        """dump_stack(): the task line, "Hardware name", the call trace (as lines).

        taint: flags the report being built sets, shown as if set already
        (SLUB taints in the middle of a report it sends out whole).
        """
        return (dump_stack_print_info(self.comm, self.taint + taint, self.current_pid())
                + call_trace_lines(self.backtrace()))

    # -- the reports -------------------------------------------------------------
    def warn(self, file: str, line: Optional[int], function: Optional[str], *,
             message: Optional[str] = None, notes: Sequence[Optional[str]] = (),
             after: Sequence[str] = (), once: object = None,
             regs: Optional[Mapping[str, int]] = None, cut_here: bool = True,
             condition: Optional[str] = None) -> bool:
        """WARN()/WARN_ON() at file:line in function (line None: the file alone).

        message is WARN()'s text; notes and after are mmemu's lines (see
        format_warn()); regs the guest's registers for a WARN the guest's own
        code hit.  once: WARN_ON_ONCE(), keyed by this value (True: by the
        site), reported the first time only.  Returns True when it reported.
        """
        if once is not None:
            key = (file, line, function, message) if once is True else once
            if key in self._once:
                return False
            self._once.add(key)
        frames = self.backtrace(with_caller=regs is None)
        text = format_warn(file, line, function, frames, regs=regs, comm=self.comm,
                           taint=self.taint, cut_here=cut_here, condition=condition,
                           message=message, notes=notes, after=after, pid=self.current_pid())
        self._emit(text, KERN_WARNING, counted=True)
        self.add_taint(TAINT_WARN)
        self._after(WARN, "kernel")
        return True

    def bug(self, file: str, line: Optional[int], function: Optional[str] = None, *,
            notes: Sequence[str] = (), before: Sequence[str] = (), after: Sequence[str] = (),
            condition: Optional[str] = None, taken: bool = False) -> None:
        """BUG()/BUG_ON()/VM_BUG_ON() at file:line (line None: file holds it).

        taken: the guest's own BUG(); else a BUG of kernel code mmemu
        models, which refuses what it was asked.  Either kills the task
        (ends the guest's run) when a guest run is being served (see the
        module docstring).  before: lines printed ahead of the
        report (VM_BUG_ON_PAGE()'s page dump); notes follow the BUG line,
        after the end marker.  function names the modelled function for
        the notes ("mmemu: in kunmap_high(), called from main+0x1c/0x80").
        """
        caller = self.caller()
        if function:
            notes = [f"mmemu: in {function}(), called from {caller}", *notes]
        self.die_counter += 1
        text = format_bug(file, line, caller, self.regs(), self.backtrace(with_caller=not taken),
                          comm=self.comm, taint=self.taint, condition=condition, notes=notes,
                          die_counter=self.die_counter, pid=self.current_pid())
        if before or after:
            text = "\n".join([*before, text.rstrip("\n"), *after]) + "\n"
        self._emit(text, KERN_EMERG, counted=not taken)
        self.add_taint(TAINT_DIE, lockdep_ok=False)
        self._after(BUG if taken else KERNEL_BUG)

    def oops(self, kind, addr, error_code, code_bytes, code_addr, symbolize, region, pdes,
             before=(), first=()):
        """die() for a CPU exception of the guest: the oops, TAINT_DIE, the task killed.

        before: lines the trap handler printed ahead of die() (e.g.
        handle_stack_overflow()'s "BUG: TASK stack guard page was hit ...");
        first: the lines show_fault_oops() prints ahead of the #PF lines (the
        NX line).
        """
        self.die_counter += 1
        text = format_oops(kind, addr, error_code, self.regs(), code_bytes, code_addr,
                           symbolize, region, self.backtrace(with_caller=False), self.comm, pdes,
                           taint=self.taint, die_counter=self.die_counter,
                           pid=self.current_pid(), first=first)
        if before:
            text = "\n".join([*before, text])
        self._emit(text, KERN_ALERT, counted=False)
        self.add_taint(TAINT_DIE, lockdep_ok=False)
        self._after(OOPS)

    def die(self, addr: int, function: str, write: bool = False,
            notes: Sequence[str] = ()) -> NoReturn:
        """kernel_fault(), then raise KernelOops: die() does not return, so the
        modelled kernel code that dereferenced addr stops right there."""
        self.kernel_fault(addr, function, write, notes)
        raise KernelOops(f"oops in {function}() at address 0x{addr & 0xFFFFFFFF:08x}: "
                         "kernel state in guest memory is corrupt (see the kernel log)")

    def corrupt(self, file: str, function: str, notes: Sequence[str]) -> NoReturn:
        """A BUG of modelled kernel code that cannot go on with what the guest
        left in a kernel structure (notes say what): rep.bug(), then raise
        KernelOops.  6.1 would oops or corrupt memory at about this point;
        mmemu stops the call before its own state follows the guest's."""
        self.bug(file, None, function, notes=notes)
        raise KernelOops(f"BUG in {function}(): {notes[0] if notes else 'corrupt kernel state'}")

    def kernel_fault(self, addr: int, function: str, write: bool = False,
                     notes: Sequence[str] = ()) -> None:
        """The oops of kernel code mmemu models that dereferences addr, a pointer
        the guest left in a kernel structure, where nothing is mapped.

        What 6.1 prints when its own code faults: show_fault_oops()'s lines,
        "Oops: 0000 [#n]", then die()'s frame with the guest's registers at
        the call and "mmemu: in function(), called from ..." (the kernel
        code itself is not emulated: differs in the EIP line).  The task is
        killed as for any oops (a host call only reports, as for rep.bug()).
        """
        error_code = 2 if write else 0             # X86_PF_WRITE; not present
        caller = self.caller()
        pdes, region = self.guest.fault_context(addr) if self.guest is not None else ([], None)
        self.die_counter += 1
        notes = [f"in {function}(), called from {caller}", *notes]
        if region:
            notes.append(region)
        text = format_oops("page fault", addr, error_code, self.regs(), None, None, None,
                           "\nmmemu: ".join(notes), self.backtrace(with_caller=False),
                           self.comm, pdes, taint=self.taint, die_counter=self.die_counter,
                           pid=self.current_pid(), where=caller)
        self._emit(text, KERN_ALERT, counted=False)
        self.add_taint(TAINT_DIE, lockdep_ok=False)
        if self.in_guest():                      # the task is the guest program
            self._stop(OOPS)

    def report(self, text: str, taint: Optional[str] = None, lockdep_ok: bool = False,
               level: int = KERN_WARNING, panic_origin: Optional[str] = None) -> None:
        """A BUG-class report the caller composed (Bad page state, slab_bug(), ...),
        or one of mmemu's own refusals; then the taint it names, if any.

        panic_origin: the origin 6.1 passes to check_panic_on_warn() after
        this report ("scheduling while atomic"), None for the reports that
        never panic on a warning (most of them).
        """
        self._emit(text, level, counted=True)
        if taint:
            self.add_taint(taint, lockdep_ok)
        self._after(REPORT, panic_origin)

    def info(self, text: str, level: int = KERN_WARNING) -> None:
        """A report that is only printed (warn_alloc(), a budget running out)."""
        self._emit(text, level, counted=False)

    def panic(self, message: str) -> None:
        """panic(): "Kernel panic - not syncing: ...", and the machine stops."""
        self._emit(f"Kernel panic - not syncing: {message}", KERN_EMERG, counted=False)
        self._stop("panic")

    # -- what happens next ---------------------------------------------------------
    def _after(self, kind: str, panic_origin: Optional[str] = None) -> None:
        """What a report of this class does next (the module docstring's table)."""
        if kind in (BUG, OOPS):
            self._stop(kind)                     # die(): the task is killed
        elif kind == KERNEL_BUG:
            if self.in_guest():                  # the task is the guest program
                self._stop(BUG)
        elif panic_origin is not None:
            self.check_panic_on_warn(panic_origin)

    def make_task_dead(self) -> None:
        """make_task_dead(): tidy up after the task a BUG or an oops stopped.

        Called by the runtime once the CPU has stopped (the modelled code
        that reported has unwound by then); runs the task_dead hooks, which
        may panic, as 6.1 does when the dead task was an interrupt handler.
        """
        for hook in self.task_dead:
            hook()

    def check_panic_on_warn(self, origin: str) -> None:
        """check_panic_on_warn(origin): panic when panic_on_warn is set.

        Models kernel/panic.c's, 6.1.176; differs: no kernel.warn_limit.
        """
        if self.panic_on_warn:
            self.panic(f"{origin}: panic_on_warn set ...")

    def _stop(self, reason: str) -> None:
        if self.on_stop is not None:
            self.on_stop(reason)

    def _emit(self, text: str, level: int, counted: bool) -> None:
        if counted:
            self.warnings += 1
        if self.on_report is not None:
            self.on_report(text)
        self.log.printk(text, level)
