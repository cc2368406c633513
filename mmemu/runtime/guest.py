"""Running a guest program: load it, give it the hypercalls, run it under a
budget, and turn faults, BUG and WARN into the kernel's reports.

A guest program is kernel code: it runs in ring 0 in the kernel image's
text (0xC1000000 on the reference kernel) with swapper_pg_dir loaded, so a
stray pointer faults exactly where a kernel module's would, and the oops
says so.
"""
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

from mmemu.engine import X86_TRAP_PF, X86_TRAP_UD
from mmemu.errors import KernelOops, MmemuError
from mmemu.kernel.panic import EXIT_BUG, EXIT_OOPS, EXIT_PANIC  # noqa: F401  (re-exported)
from mmemu.layout import PAGE_OFFSET as PAGE_OFFSET_VA
from mmemu.log import KERN_DEBUG, KERN_EMERG, KERN_WARNING
from mmemu.runtime import hc_core
from mmemu.runtime.abi import HC_DOORBELL_PHYS, HC_DOORBELL_SIZE
from mmemu.runtime.hypercall import EINVAL, HypercallTable
from mmemu.runtime.stack import guard_stack, stack_overflow_handler
from mmemu.runtime.traps import Trap, owns

LARGE_CHUNK = 1 << 22     # how much of the open bus one unbacked access maps

EXIT_BUDGET = 124        # like timeout(1)
EXIT_INTERNAL = 125      # mmemu itself failed

BUGFLAG_NO_CUT_HERE = 8

# What a run keeps for its RunResult, so that a guest printing (or warning)
# without end costs the host a fixed amount of memory, as the kernel's log
# ring does (log.py).  Every line still reaches the console as it is printed.
CONSOLE_KEEP = 1 << 17
REPORTS_KEEP = 1024

# The default budget is wall time only.  An instruction budget is Unicorn's
# per-instruction count hook (emu_start(count=N)), which halves the speed of
# memory-heavy guest code and slows a compute loop tenfold (tools/bench.py's
# "default run / --max-insns 0"), so it is opt-in (max_insns, --max-insns):
# a deterministic stop for tests and fuzzing.  The time budget is a thread
# that sleeps until the deadline (engine._Watchdog; Unicorn's own timeout
# polls the clock every few microseconds and cost a compute loop a third of
# its speed) and costs nothing per instruction.
DEFAULT_MAX_INSNS = 0
# The instruction budget the fuzzers opt into: a guest their corruption
# sends into an endless loop stops, at the same instruction for the same
# seed, in seconds rather than at the time budget.
FUZZ_MAX_INSNS = 2_000_000_000
DEFAULT_TIMEOUT = 60.0
X86_EFLAGS_IF = 0x200


@dataclass
class RunResult:
    """What happened to one run of a guest program."""

    status: int                    # the exit status `mmemu run` gives
    # exit | oops | bug | panic | insn-budget | time-budget | halt | error | killed
    # (halt: hlt with interrupts off, which no interrupt ends):
    reason: str
    exit_code: int = None          # main()'s return value, when it returned
    console: str = ""              # what the guest printed (the last CONSOLE_KEEP bytes)
    reports: list = field(default_factory=list)   # oops / BUG / WARN / allocator reports
    #                                               (the last REPORTS_KEEP of them)
    seconds: float = 0.0
    log: str = ""                  # the whole kernel log of the run


class GuestRuntime:
    """The runtime of one machine: hypercall table, fault handling, runs."""

    def __init__(self, machine):
        self.machine = machine
        self.log = machine.log
        self.reporter = rep = machine.reporter
        self.image = None
        self.table = HypercallTable(machine.pm, rep, on_error=self._handler_failed)
        self._partial = ""
        self._console = _Tail(CONSOLE_KEEP)
        self._reports = deque(maxlen=REPORTS_KEEP)
        self.on_console = None      # fn(line): each console line as it comes (quiet CLI runs)
        # Every report is a report of the run, whoever made it (the page
        # allocator's Bad page state and allocation failures too); the
        # reporter asks this runtime for the guest's frames and to stop.
        rep.guest = self
        rep.on_report = lambda text: self._reports.append(text)   # the last REPORTS_KEEP
        rep.on_stop = self.stop
        self._stop_reason = None
        self._exit_code = None
        self.fixups = {}            # faulting EIP -> fixup EIP (exception table)
        self.pending_switch = None  # fn() -> next EIP, applied between emu_start()s
        # mmemu's own handlers of the traps it owns (runtime/traps.py), tried
        # in order: fn(trapnr, error_code) -> True when handled.  A host
        # program says which traps are mmemu's with Machine.trap_policy.
        self.trap_handlers = []
        self.trap_policy = None
        self.task_running = lambda: False   # runtime/task.py: a user task is current
        self.fault_count = 0
        self.region_describers = []   # fn(addr) -> str or None, most specific first
        self.stack_guard = None       # the loaded image's unmapped guard page (runtime/stack.py)
        self.trap_handlers.append(stack_overflow_handler(self))
        hc_core.register(self, self.table)
        eng = machine.engine
        doorbell = self.table.doorbell(eng.stop_cell, eng.stop)
        doorbell.abort = eng.abort_run
        eng.map_mmio_raw(HC_DOORBELL_PHYS, HC_DOORBELL_SIZE, doorbell)
        # On a host's Uc the interrupt hook is there only while mmemu runs its
        # guest (or once the host sets a trap policy): the host's own runs
        # see a Uc without it, so an exception nobody handles still ends
        # their emu_start() with UC_ERR_EXCEPTION, as it would without mmemu.
        self._intr_hook = None
        self._ud_hook = None          # #UD: Unicorn has no interrupt for it
        self._absorb_error = False    # Unicorn's error after a trap already delivered
        self._in_trap = False
        self._trap_exit = None        # EIP after a trap of mmemu's in a host's Uc
        if not eng.host:
            self._arm_traps()

    @property
    def comm(self):
        """current->comm: the guest program's name (the reporter's)."""
        return self.reporter.comm

    # -- loading --------------------------------------------------------
    def load(self, program):
        """Load an ELF (path or bytes) into the kernel image's sections (already
        read-only where the kernel's text and rodata are: mark_rodata_ro())."""
        from mmemu.runtime.loader import load_elf
        m = self.machine
        self.image = load_elf(program, m.pm, m.kernel_image)
        self._check_flavour(self.image)
        for seg in self.image.segments:
            m.engine.remove_code_cache(seg.vaddr, seg.vaddr + seg.memsz)
        guard_stack(self, self.image)
        self.fixups = dict(getattr(self.image, "ex_table", {}) or {})
        return self.image

    def _check_flavour(self, image):
        """Refuse a program built for the other kernel flavour (its pte_t and
        phys_addr_t would not be the machine's).  The SDK records the
        flavour in __mmemu_x86_pae; an ELF without it is taken as it is."""
        from mmemu.errors import LoaderError
        m = self.machine
        try:
            addr = image.lookup("__mmemu_x86_pae")
        except KeyError:
            return
        built_pae = bool(m.pm.read32(addr - PAGE_OFFSET_VA)) if addr >= PAGE_OFFSET_VA else None
        if built_pae is None or built_pae == m.pgtable.pae:
            return
        built, runs = ("686-pae", "686") if built_pae else ("686", "686-pae")
        raise LoaderError(f"{image.path}: built for the {built} kernel, but this machine "
                          f"({m.cfg.name}) runs {runs}; rebuild it for {runs} "
                          f"(mmemu build --config with a {runs} machine), or run the .c file")

    # -- running --------------------------------------------------------
    def run(self, max_insns=DEFAULT_MAX_INSNS, timeout=DEFAULT_TIMEOUT, entry=None,
            gdb_port=None):
        """Run from the image's entry (or entry) until exit, oops or budget.

        With gdb_port the guest stops at entry and a GDB remote-protocol
        server on that port (0: any free port) drives the run; a debugger's
        pauses count against no time budget.  A budget that is not a count
        or a finite number of seconds (0 for none) is a UsageError.
        """
        _check_budget(max_insns, timeout, gdb_port)
        if entry is None:
            if self.image is None:
                raise MmemuError("no guest program loaded")
            entry = self.image.entry
        mark = self.log.mark()
        self._console.clear()
        self._reports.clear()
        self._stop_reason, self._exit_code = None, None
        self.pending_switch = self._trap_exit = None
        stub = None
        with self._serving():
            if gdb_port is None:
                err, secs = self._run_segments(entry, max_insns, timeout)
            else:
                from mmemu.runtime.gdbstub import GdbStub
                stub, timeout = GdbStub(self, gdb_port), 0
                err, secs = stub.serve(entry, max_insns)
            self._flush_partial()
            if self._stop_reason in ("bug", "oops"):
                self.reporter.make_task_dead()           # may panic: stop() lets that win
            reason = self._stop_reason or self._budget_reason(err, secs, timeout)
        if stub is not None:
            stub.finish(reason, self._status(reason))
        return RunResult(status=self._status(reason), reason=reason,
                         exit_code=self._exit_code, console=self._console.text(),
                         reports=list(self._reports), seconds=secs,
                         log=self.log.text(mark))

    def set_trap_policy(self, policy):
        """Machine.trap_policy: fn(Trap) -> True/False/None (runtime/traps.py)."""
        self.trap_policy = policy
        if policy is not None:
            self._arm_traps()
        elif self.machine.engine.host and not self.in_guest():
            self._disarm_traps()

    def _arm_traps(self):
        if self._intr_hook is None:
            self._intr_hook = self.machine.engine.hook_interrupts(self._on_trap)
        if self._ud_hook is None:
            self._ud_hook = self.machine.engine.hook_invalid_insn(self._on_invalid_opcode)
        self.machine.engine.on_unmapped = self._on_unbacked     # no hook: see Engine.run()

    def _disarm_traps(self):
        if self._intr_hook is not None:
            self.machine.engine.unhook(self._intr_hook)
            self._intr_hook = None
        if self._ud_hook is not None:
            self.machine.engine.unhook(self._ud_hook)
            self._ud_hook = None
        self.machine.engine.on_unmapped = None

    @contextmanager
    def _serving(self):
        """A guest run on a host's Uc: mmemu's interrupt hook on, and the
        host's CPU state (registers, paging, segments) back afterwards, as
        if the run were a call."""
        eng = self.machine.engine
        if not eng.host:
            yield
            return
        saved = eng.save_cpu()
        self._disarm_traps()            # added again: mmemu's interrupt hook runs last
        self._arm_traps()
        try:
            yield
        finally:
            if self.trap_policy is None:
                self._disarm_traps()
            eng.restore_cpu(saved)

    def _run_segments(self, pc, max_insns, timeout):
        """emu_start() until the guest ends; a mode switch (a user task
        starting, a syscall, a task's exit) stops the CPU, is applied here,
        and the run goes on.  The instruction budget applies per stretch.

        Kernel code runs with EFLAGS.IF set, as after boot.  A hlt with IF
        set waits for an interrupt: on a PC the next timer tick comes and
        the code goes on after the hlt, so the run resumes there (Unicorn
        has no interrupt controller; the wait costs no time here).  A hlt
        with IF clear (cli; hlt) never wakes: the run ends as its time
        budget would (see _budget_reason())."""
        secs = 0.0
        eng = self.machine.engine
        eng.set_reg("eflags", eng.reg("eflags") | X86_EFLAGS_IF)
        while True:
            left = max(timeout - secs, 0.001) if timeout else 0
            err, dt = eng.run(pc, 0xFFFFFFFF, left, max_insns)
            if self._absorb_error:
                err, self._absorb_error = None, False
            secs += dt
            switch = self.take_switch()
            if switch is None and err is None and self._stop_reason is None \
                    and self._halted_waiting(secs, timeout):
                pc = eng.reg("eip")                 # the tick came: on past the hlt
                continue
            if switch is None or err is not None or self._stop_reason is not None:
                return err, secs
            pc = self.apply_switch(switch)
            if pc is None:                          # the task died in it
                return None, secs

    def apply_switch(self, switch):
        """Apply a mode switch: the EIP to go on at, or None when kernel code
        it ran for the guest (do_exit() freeing a task's memory) died.

        That code serves the guest's run as a hypercall does: its reports
        name the guest, and its BUG or oops (KernelOops, after the report
        stopped the run) ends the run with that report's status."""
        self._in_trap = True
        try:
            return switch()
        except KernelOops:
            return None
        finally:
            self._in_trap = False

    def _halted_waiting(self, secs, timeout):
        """The CPU stopped on a hlt with interrupts enabled, and time is left."""
        eng = self.machine.engine
        return (self._halted(eng.reg("eip")) and eng.reg("eflags") & X86_EFLAGS_IF
                and not (timeout and secs >= timeout * 0.98))

    def _budget_reason(self, err, secs, timeout):
        info = self.reporter.info
        if err is not None:
            info(f"mmemu: the CPU stopped: {err} at EIP {self.machine.engine.reg('eip'):08x}",
                 KERN_EMERG)
            return "error"
        if timeout and secs >= timeout * 0.98:
            info(f"mmemu: time budget of {timeout:g} s exhausted; guest stopped", KERN_WARNING)
            return "time-budget"
        eip = self.machine.engine.reg("eip")
        if self._halted(eip):
            self._report("mmemu: the CPU halted with interrupts disabled (hlt with EFLAGS.IF "
                         "clear) at " + (self.symbolize(eip - 1) or hex(eip - 1)) + ": no "
                         "interrupt can wake it, so it would wait forever; stopped as the time "
                         "budget would stop it", KERN_WARNING)
            return "halt"
        info("mmemu: instruction budget exhausted; guest stopped at "
             f"{self.symbolize(eip) or hex(eip)}", KERN_WARNING)
        return "insn-budget"

    def after_hypercall(self):
        """Where the guest goes on after the hypercall the CPU stopped on.

        A stop asked for inside a hypercall leaves EIP on the doorbell read
        (runtime/abi.py); the call is complete, so the guest resumes at the
        next instruction, whose address capstone's decoding gives.
        """
        from capstone import CS_ARCH_X86, CS_MODE_32, Cs
        eip = self.machine.engine.reg("eip")
        code = bytearray()
        for va in range(eip, eip + 15):
            pa = self.machine.virt_to_phys(va)
            if pa is None or pa >= self.machine.pm.size:
                break
            code.append(self.machine.pm.u8[pa])
        insn = next(Cs(CS_ARCH_X86, CS_MODE_32).disasm(bytes(code), eip, 1), None)
        if insn is None:
            raise MmemuError(f"no instruction at EIP {eip:08x} after a hypercall")
        return eip + insn.size

    def _halted(self, eip):
        try:
            return self.machine.read(eip - 1, 1) == b"\xf4"
        except MmemuError:
            return False

    def _status(self, reason):
        if reason == "exit":
            return self._exit_code & 0xFF
        return {"oops": EXIT_OOPS, "bug": EXIT_BUG, "panic": EXIT_PANIC,
                "insn-budget": EXIT_BUDGET, "time-budget": EXIT_BUDGET,
                "halt": EXIT_BUDGET, "error": EXIT_INTERNAL, "killed": EXIT_PANIC}[reason]

    @property
    def stop_reason(self):
        """Why the guest stopped (exit, oops, bug, ...); None while it may go on."""
        return self._stop_reason

    def stop(self, reason):
        """End the run for reason; the first reason stays, unless a panic follows."""
        if self._stop_reason is None or reason == "panic":
            self._stop_reason = reason
        self.machine.engine.stop()

    # -- hypercall targets ----------------------------------------------
    def guest_exit(self, status):
        self._exit_code = status - (1 << 32) if status & 0x80000000 else status
        self.stop("exit")
        return 0

    def console_write(self, text):
        level, text = hc_core.split_level(text)
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._console.append(line + "\n")
            self.log.printk(line, level if level is not None else 4)
            if self.on_console is not None:
                self.on_console(line + "\n")

    def _flush_partial(self):
        if self._partial:
            self._console.append(self._partial)
            self.log.printk(self._partial)
            if self.on_console is not None:
                self.on_console(self._partial)
            self._partial = ""

    def guest_bug(self, file_va, line, cond_va):
        """HC_BUG: the guest's BUG()/BUG_ON(); the run ends as the task dies."""
        self.reporter.bug(self._cstr(file_va), line, condition=self._cstr(cond_va) or None,
                          taken=True)
        return 0

    def guest_warn(self, file_va, line, cond_va, flags=0):
        """HC_WARN: the guest's WARN()/WARN_ON(), with its registers; it carries on."""
        self.reporter.warn(self._cstr(file_va), line, self.guest_caller(),
                           regs=self.machine.engine.regs(),
                           cut_here=not flags & BUGFLAG_NO_CUT_HERE,
                           condition=self._cstr(cond_va) or None)
        return 1

    def check_consistency(self):
        """HC_CHECK: run every checker; 0 when all pass, -EINVAL (with a report) if not."""
        try:
            self.machine.check()
        except MmemuError as e:
            self.reporter.info(f"mmemu: consistency check failed: {e}", KERN_EMERG)
            return -EINVAL
        return 0

    # -- faults ---------------------------------------------------------
    def _on_trap(self, vector):
        """The interrupt hook: handle the traps that are mmemu's (runtime/traps.py)."""
        eng = self.machine.engine
        if eng.host:
            trap = Trap(vector, eng.running, eng)
            if not owns(self.trap_policy, trap, self.task_running()):
                return                     # the host's: untouched
        self._in_trap = True               # the guest's state is the report's (in_guest())
        try:
            self._on_exception(vector, eng.ack_exception())
        finally:
            self._in_trap = False
        if eng.host and eng.running:
            self._overrule_host_hook(vector)

    def _overrule_host_hook(self, vector):
        """A host's interrupt hook may refuse a trap that is mmemu's: Qiling's
        dispatcher raises for every vector it has no handler for, and its
        guard (or the binding's) then stops the CPU.  The trap is handled;
        the exception the binding kept is dropped, and where the guest goes
        on is noted, so that a run stopped right there goes on
        (take_switch())."""
        eng = self.machine.engine
        exc = getattr(eng.uc, "_hook_exception", None)
        if exc is not None:
            eng.uc._hook_exception = None
            self.log.printk(f"mmemu: a host interrupt hook raised {exc!r} on trap {vector}, "
                            f"which is mmemu's; ignored", KERN_DEBUG)
        if self.pending_switch is None and self._stop_reason is None:
            self._trap_exit = eng.reg("eip")

    def take_switch(self):
        """What to do before the next emu_start(): a mode switch a hypercall or
        trap asked for, or going on after a trap of mmemu's at which a host
        hook stopped the CPU (_overrule_host_hook()); None when the run is over."""
        switch, self.pending_switch = self.pending_switch, None
        trap_exit, self._trap_exit = self._trap_exit, None
        if switch is None and trap_exit is not None and self._stop_reason is None:
            eng = self.machine.engine
            if eng.reg("eip") == trap_exit:
                return lambda: trap_exit
        return switch

    def _on_exception(self, trapnr, error_code):
        eng = self.machine.engine
        eip = eng.reg("eip")
        self.fault_count += 1
        fixup = self.fixups.get(eip)
        if fixup is not None and trapnr == X86_TRAP_PF:
            eng.set_reg("eip", fixup)      # exception table: like fixup_exception()
            return
        for handler in self.trap_handlers:
            if handler(trapnr, error_code):
                return
        from mmemu.runtime.faults import report_exception
        report_exception(self, trapnr, error_code)        # an oops: the run ends

    def _on_invalid_opcode(self):
        """#UD (ud2, an opcode the CPU does not know): handle_invalid_op() as a
        trap, so a user task gets SIGILL and kernel code dies with "invalid
        opcode: 0000 [#1]" (an oops: EXIT_OOPS).  Unicorn raises no interrupt
        for #UD, so this is a hook of its own, owned as the interrupt hook's
        traps are (runtime/traps.py).  True when the CPU may go on."""
        eng = self.machine.engine
        if eng.host and not owns(self.trap_policy, Trap(X86_TRAP_UD, eng.running, eng),
                                 self.task_running()):
            return False                   # the host's: Unicorn's UC_ERR_INSN_INVALID
        self._in_trap = True
        try:
            self._on_exception(X86_TRAP_UD, 0)
        finally:
            self._in_trap = False
        return self._stop_reason is None         # a task killed: the switch is pending

    def _on_unbacked(self, kind, pa, size):
        """The CPU reached physical memory nothing backs: a guest page table
        entry pointing past RAM and every device.  On a PC the bus answers
        there: reads give all ones, writes are lost, and Linux reports
        nothing.  mmemu maps its all-ones catch-all (DeviceBus.map_unbacked)
        over that 4 MiB of physical space, notes it once, and the access is
        retried.  Code fetched from there is all 0xff bytes (ff ff is no
        instruction), so a fetch is the #UD the CPU would raise.  A host's
        ranges and a host's own runs are left alone (Unicorn's error)."""
        eng = self.machine.engine
        if eng.host and not eng.running:
            return False
        if kind == "fetch":
            self._absorb_error = self._on_invalid_opcode()   # a task killed: go on
            return False
        bus = self.machine.devices
        chunk = pa & ~(LARGE_CHUNK - 1)
        before = len(bus.holes)
        bus.map_unbacked(chunk, chunk + LARGE_CHUNK)
        if bus.find(pa) is None:
            return False                 # a host range, or mapped by the host program
        if len(bus.holes) != before:
            self.reporter.info(f"mmemu: {kind} of physical {pa:#x}: nothing is there (a page "
                               "table entry points past RAM); the bus reads all ones and "
                               "drops writes", KERN_WARNING)
        return True

    def _handler_failed(self, name, exc):
        import traceback
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.reporter.info(f"mmemu: internal error in hypercall {name}: {exc!r}\n{tb}",
                           KERN_EMERG)
        self.stop("error")
        return -EINVAL

    # -- the guest, as the reporter sees it -------------------------------
    def in_guest(self):
        """Whether a guest run or trap is being served (so the current call is the guest's)."""
        return self.machine.engine.running or self._in_trap

    def regs(self):
        return self.machine.engine.regs()

    def _cstr(self, va, limit=256):
        try:
            raw = self.machine.read(va, limit)
        except MmemuError:
            return "?"
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def fault_context(self, addr):
        """For an oops of modelled kernel code at addr: dump_pagetable()'s lines
        and mmemu's words for the region addr is in."""
        from mmemu.runtime.faults import describe_address, pagetable_lines
        m = self.machine
        return pagetable_lines(m, addr), describe_address(m, addr, self.region_describers)

    def symbolize(self, addr):
        return self.image.symbolize(addr) if self.image is not None else None

    def read32_or_none(self, va):
        pa = self.machine.virt_to_phys(va)
        if pa is None or pa + 4 > self.machine.pm.size:
            return None
        return self.machine.pm.read32(pa) if pa % 4 == 0 else \
            int.from_bytes(self.machine.pm.read(pa, 4), "little")

    def backtrace(self):
        """The guest's call chain through saved frame pointers, symbolized."""
        from mmemu.arch.x86.dumpstack import walk_frames
        eng = self.machine.engine
        return walk_frames(self.read32_or_none, eng.reg("ebp"), eng.reg("eip"),
                           self.symbolize)

    def guest_caller(self):
        """The guest code that made the current call: the first frame outside the SDK."""
        eng = self.machine.engine
        eip = eng.reg("eip")
        img = self.image
        if img is None:
            return f"0x{eip:08x}"
        ebp = eng.reg("ebp")
        for _ in range(16):
            if not img.is_sdk(eip):
                break
            ret = self.read32_or_none(ebp + 4) if ebp else None
            nxt = self.read32_or_none(ebp) if ebp else None
            if ret is None:
                break
            eip, ebp = ret, nxt or 0
        return img.symbolize(eip) or f"0x{eip:08x}"


def _check_budget(max_insns, timeout, gdb_port):
    """Refuse budgets that are not a 64-bit count (Unicorn's) or finite seconds."""
    import math
    from mmemu.errors import UsageError
    if isinstance(max_insns, bool) or not isinstance(max_insns, int) \
            or not 0 <= max_insns < 1 << 63:
        raise UsageError(f"max_insns must be a count of instructions, 0 or more, "
                         f"not {str(max_insns)[:40]}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not (math.isfinite(timeout) and 0 <= timeout <= 1e9):
        raise UsageError(f"timeout must be seconds, 0 or more and finite, not {str(timeout)[:40]}")
    if gdb_port is not None and (isinstance(gdb_port, bool) or not isinstance(gdb_port, int)
                                 or not 0 <= gdb_port <= 65535):
        raise UsageError(f"gdb_port must be a TCP port (0 .. 65535), not {str(gdb_port)[:40]}")


class _Tail:
    """The last `keep` bytes of text appended line by line (whole lines)."""

    def __init__(self, keep):
        self.keep = keep
        self.parts = deque()
        self.size = 0

    def append(self, text):
        self.parts.append(text)
        self.size += len(text)
        while self.size > self.keep and len(self.parts) > 1:
            self.size -= len(self.parts.popleft())

    def clear(self):
        self.parts.clear()
        self.size = 0

    def text(self):
        return "".join(self.parts)

