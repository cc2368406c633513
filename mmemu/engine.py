"""The one module that talks to Unicorn.

Everything else sees guest physical memory as a PhysMem and the CPU through
the few methods here: map RAM and MMIO, switch paging on, flush the TLB,
read registers, map the hypercall doorbell and hook faults, run.  Unicorn's errors
stay in here.

Two Unicorn traps are handled here (facts measured for this project, see
DESIGN.md):

* a fault that a UC_HOOK_INTR hook handles is never marked delivered, so the
  next fault becomes a double fault and the third stops the CPU (Unicorn
  issue #1883).  The CPU keeps that state in CPUX86State.old_exception, and
  the fault's error code in CPUX86State.error_code, neither of them a
  register.  probe_cpu_state_offsets() finds both fields once per process by
  faulting on purpose in a scratch CPU and diffing the saved contexts, so no
  offset of one Unicorn build is hard-coded.
* after the host changes a present PTE the CPU keeps the stale translation
  until a TLB flush, which the binding does not wrap (flush_tlb()).
* emu_start(timeout=) starts a watchdog thread that wakes every few
  microseconds to look at the clock: on a busy host it takes a core's share
  from the guest (a compute loop ran 1.5x slower with it).  A time budget
  here is one thread, shared by every engine, that sleeps until the
  earliest deadline and then calls uc_emu_stop(), as Unicorn's own
  watchdog does (_Watchdog).
* any UC_HOOK_MEM_*_UNMAPPED hook sends every guest store through Unicorn's
  slow path, so the open bus (on_unmapped) is no standing hook: run()
  replays the one instruction that met unbacked memory with the hook added
  (_replay_unmapped()).

On a Uc that a host program made and keeps driving (the plugin case) the
engine is a guest in someone else's emulator: it refuses a Uc of the wrong
kind before touching it (check_uc()), claims only physical ranges that are
free (check_free()), remembers what it added (hooks, RAM, MMIO windows) and
the CPU state it found, and close() gives all of it back.
"""
import ctypes
import threading
import time

from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_32, UC_PROT_ALL, UC_PROT_READ, UC_PROT_WRITE
from unicorn import UC_HOOK_INTR
from unicorn import unicorn_const as ucc
from unicorn import x86_const
from unicorn.x86_const import (
    UC_X86_REG_CR0, UC_X86_REG_CR2, UC_X86_REG_CR3, UC_X86_REG_CR4,
    UC_X86_REG_EAX, UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_ESI,
    UC_X86_REG_EDI, UC_X86_REG_EBP, UC_X86_REG_ESP, UC_X86_REG_EIP, UC_X86_REG_EFLAGS,
    UC_X86_REG_CS, UC_X86_REG_DS, UC_X86_REG_ES, UC_X86_REG_FS, UC_X86_REG_GS, UC_X86_REG_SS,
)

from mmemu.errors import MmemuError

try:
    from unicorn.unicorn_py3.unicorn import uclib as _uclib
except ImportError:  # pragma: no cover - other binding layouts
    from unicorn.unicorn import _uc as _uclib

CR0_PE = 1 << 0
CR0_WP = 1 << 16
CR0_PG = 1 << 31
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5
MSR_EFER = 0xC0000080
EFER_NX = 1 << 11

X86_TRAP_DE, X86_TRAP_UD, X86_TRAP_GP, X86_TRAP_PF = 0, 6, 13, 14

REGS = {
    "eax": UC_X86_REG_EAX, "ebx": UC_X86_REG_EBX, "ecx": UC_X86_REG_ECX,
    "edx": UC_X86_REG_EDX, "esi": UC_X86_REG_ESI, "edi": UC_X86_REG_EDI,
    "ebp": UC_X86_REG_EBP, "esp": UC_X86_REG_ESP, "eip": UC_X86_REG_EIP,
    "eflags": UC_X86_REG_EFLAGS, "cs": UC_X86_REG_CS, "ds": UC_X86_REG_DS,
    "es": UC_X86_REG_ES, "fs": UC_X86_REG_FS, "gs": UC_X86_REG_GS,
    "ss": UC_X86_REG_SS, "cr0": UC_X86_REG_CR0, "cr2": UC_X86_REG_CR2,
    "cr3": UC_X86_REG_CR3, "cr4": UC_X86_REG_CR4,
}

_uclib.uc_vmem_translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                     ctypes.POINTER(ctypes.c_uint64)]
_uclib.uc_vmem_translate.restype = ctypes.c_int

# emu_start()'s errors for an access to physical memory nothing is mapped at.
_UNMAPPED_ERRORS = (ucc.UC_ERR_READ_UNMAPPED, ucc.UC_ERR_WRITE_UNMAPPED,
                    ucc.UC_ERR_FETCH_UNMAPPED)

# uc_cb_mmio_read_t: uint64_t (uc_engine *uc, uint64_t offset, unsigned size, void *user_data)
MMIO_READ_CFUNC = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64,
                                   ctypes.c_uint, ctypes.c_void_p)
# uc_cb_mmio_write_t: void (uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *)
MMIO_WRITE_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint,
                                    ctypes.c_uint64, ctypes.c_void_p)

# What close() puts back as it found it: the CPU state mmemu changes when it
# attaches (paging, the GDT and the segments, EFER) and while it runs a guest.
# Everything else the host may have changed since (its general registers,
# EIP, EFLAGS, CR2, the debug, x87 and SSE registers) stays as the host left it.
HOST_REGS = tuple(getattr(x86_const, f"UC_X86_REG_{name}") for name in (
    "EAX EBX ECX EDX ESI EDI EBP ESP EIP EFLAGS CR2 DR0 DR1 DR2 DR3 DR6 DR7 "
    "FPSW FPCW FPTAG MXCSR FP0 FP1 FP2 FP3 FP4 FP5 FP6 FP7 "
    "XMM0 XMM1 XMM2 XMM3 XMM4 XMM5 XMM6 XMM7").split())

_ARCH_NAMES = {getattr(ucc, n): n[len("UC_ARCH_"):].lower() for n in dir(ucc)
               if n.startswith("UC_ARCH_") and n != "UC_ARCH_MAX"}


class EngineError(MmemuError):
    """Unicorn refused something mmemu asked of it."""


class AttachError(EngineError):
    """mmemu cannot live in this Uc: the wrong kind of CPU, or a physical
    range it needs is the host's.  Nothing of the Uc was changed."""

    exit_status = 2


def check_uc(uc):
    """Refuse a Uc mmemu cannot drive, in one line: an i386 kernel needs an
    x86 CPU in 32-bit mode (a 64-bit mode Uc runs long-mode code, a 16-bit
    one real-mode code)."""
    try:
        arch, mode = uc.ctl_get_arch(), uc.ctl_get_mode()
    except (AttributeError, UcError, TypeError):
        raise AttachError(f"mmemu needs a unicorn.Uc, not {type(uc).__name__}") from None
    if arch != UC_ARCH_X86:
        raise AttachError(f"mmemu needs an x86 Uc (UC_ARCH_X86, UC_MODE_32); this one is "
                          f"UC_ARCH_{_ARCH_NAMES.get(arch, str(arch)).upper()}")
    if mode != UC_MODE_32:
        bits = {ucc.UC_MODE_16: "16", ucc.UC_MODE_64: "64"}.get(mode, str(mode))
        raise AttachError(f"mmemu needs a 32-bit x86 Uc (UC_MODE_32); this one is in "
                          f"{bits}-bit mode")


_cpu_state_offsets = None


def probe_cpu_state_offsets():
    """Find (old_exception, error_code) byte offsets in a saved uc_context.

    Faults twice on purpose in a scratch CPU: a write to an unmapped page
    (error code 2), then, with the first fault's state cleared, a write to a
    read-only page (error code 3).  old_exception is the word that went from
    -1 to 14; error_code the word that went 0 -> 2 -> 3.
    """
    global _cpu_state_offsets
    if _cpu_state_offsets is not None:
        return _cpu_state_offsets
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x4000, UC_PROT_ALL)
    # pd at 0x1000: pde0 -> pt at 0x2000; pt maps code page 0 (ro) and 0x3000 (ro)
    uc.mem_write(0x1000, (0x2000 | 0x3).to_bytes(4, "little"))
    uc.mem_write(0x2000, (0x0 | 0x1).to_bytes(4, "little") + bytes(8)
                 + (0x3000 | 0x1).to_bytes(4, "little"))
    # movl $1,0x2000 (not present: pte 2 empty); movl $1,0x3000 (read-only); hlt
    code = bytes.fromhex("c70500200000010000") + bytes.fromhex("c70500300000010000") + b"\xf4"
    uc.mem_write(0x100, code)
    uc.reg_write(UC_X86_REG_CR3, 0x1000)
    uc.reg_write(UC_X86_REG_CR0, uc.reg_read(UC_X86_REG_CR0) | CR0_PG | CR0_WP | CR0_PE)
    snaps = [_context_bytes(uc)[1]]
    found = {}

    def on_intr(uc_, intno, _):
        ctx, raw = _context_bytes(uc_)
        snaps.append(raw)
        if len(snaps) == 2:
            old = [i for i in range(0, len(raw) - 3, 4)
                   if _i32(snaps[0], i) == -1 and _i32(raw, i) == X86_TRAP_PF]
            found["old"] = old
            for i in old:
                ctypes.c_int32.from_address(_ctx_addr(ctx) + i).value = -1
            uc_.context_restore(ctx)
            uc_.reg_write(UC_X86_REG_EIP, 0x109)
        else:
            uc_.emu_stop()

    uc.hook_add(UC_HOOK_INTR, on_intr)
    uc.emu_start(0x100, 0x100 + len(code))
    a, b, c = snaps[0], snaps[1], snaps[2]
    err = [i for i in range(0, len(a) - 3, 4)
           if _i32(a, i) == 0 and _i32(b, i) == 2 and _i32(c, i) == 3]
    if len(found.get("old", ())) != 1 or not err:
        raise EngineError("cannot locate the CPU's exception state in this Unicorn build")
    _cpu_state_offsets = (found["old"][0], err[0])
    return _cpu_state_offsets


def _ctx_addr(ctx):
    return ctypes.cast(ctx.context, ctypes.c_void_p).value


def _context_bytes(uc):
    ctx = uc.context_save()
    return ctx, ctypes.string_at(_ctx_addr(ctx), 16 + ctx.size)


def _i32(raw, off):
    return int.from_bytes(raw[off:off + 4], "little", signed=True)


class Engine:
    """A Unicorn x86-32 CPU with guest RAM shared with a PhysMem.

    Made on a caller's Uc (the plugin case: ``host`` is True; mmemu maps
    only what is free, adds its own hooks beside the host's, and close()
    removes all of it and puts back the CPU state it found) or on its own.
    """

    def __init__(self, uc=None):
        self.host = uc is not None
        if self.host:
            check_uc(uc)
        self.uc = uc if uc is not None else Uc(UC_ARCH_X86, UC_MODE_32)
        self._hooks = []
        self._raw_hooks = []             # (handle, ctypes callback) registered past the binding
        self._mapped = []                # (start, size, kind) mmemu mapped, kind "ram" or "mmio"
        self._mmio_cbs = {}              # base -> ctypes callbacks, alive while mapped
        self._found_cpu = self.uc.context_save()   # what close() puts back
        self._found_regs = self.host_registers()
        self.running = False             # inside run(): hooks are serving the guest
        self.on_run = []                 # fn(True) as run() starts, fn(False) as it ends
        # on_unmapped(kind, paddr, size) -> bool: what run() does when the guest
        # reaches physical memory nothing backs (see run()); None: Unicorn's error.
        self.on_unmapped = None
        self._stopped = False            # stop() was asked for during run()
        self.closed = False
        self.stop_cell = [False]         # set by request_stop(): the doorbell stops before a call
        self._old_exc_off, self._err_off = probe_cpu_state_offsets()
        self._handle = self.uc._uch

    # -- memory ---------------------------------------------------------
    def regions(self):
        """[(start, end)] of everything mapped in the Uc (RAM and MMIO), end exclusive."""
        return sorted((b, e + 1) for b, e, _ in self.uc.mem_regions())

    def check_free(self, claims):
        """Raise AttachError naming the first claim that meets a mapping in the Uc.

        claims is [(start, end, what)]; nothing is changed either way.
        """
        taken = self.regions()
        for start, end, what in sorted(claims):
            for b, e in taken:
                if b < end and start < e:
                    raise AttachError(
                        f"mmemu cannot attach: {what} [mem {start:#010x}-{end - 1:#010x}] "
                        f"overlaps the host's mapping [mem {b:#010x}-{e - 1:#010x}]; reserve it "
                        f"for the host in the config (host: ranges) or pass the RAM buffer "
                        f"it is mapped from (Machine(..., ram=buffer))")

    def is_backed_by(self, physmem, start, end):
        """Whether the Uc's mapping of [start, end) is physmem's buffer (the host
        mapped it with mem_map_ptr over the buffer it gave mmemu): one byte of
        each page is changed through the buffer, read through Unicorn and put back."""
        for pa in range(start, end, 0x1000):
            old = physmem.u8[pa]
            physmem.u8[pa] = old ^ 0xA5
            try:
                seen = bytes(self.uc.mem_read(pa, 1))[0]
            except UcError:
                seen = None
            finally:
                physmem.u8[pa] = old
            if seen != old ^ 0xA5:
                return False
        return True

    def map_ram(self, physmem, ranges):
        """Map each [start, end) of guest RAM, page-rounded, onto physmem's buffer."""
        base = ctypes.addressof(ctypes.c_char.from_buffer(physmem.buf))
        for start, end in _merge_pages(ranges):
            try:
                self.uc.mem_map_ptr(start, end - start, UC_PROT_ALL, base + start)
            except UcError as e:
                raise EngineError(f"cannot map RAM 0x{start:x}-0x{end:x}: {e}") from None
            self._mapped.append((start, end - start, "ram"))

    def map_mmio(self, base, size, read_cb, write_cb):
        """Map a device window; callbacks get (offset, size[, value]).

        Registered with uc_mmio_map() through ctypes, so the callbacks cost
        one Python call each and the binding keeps no record of them.  A
        ctypes callback's exception would be lost: one that gets out of them
        (a KeyboardInterrupt) stops the CPU and run() raises it, as the
        binding's guard would.
        """
        def rd(handle, offset, sz, _):
            try:
                return read_cb(offset, sz)
            except BaseException as exc:
                self.abort_run(exc)
                return 0

        def wr(handle, offset, sz, value, _):
            try:
                write_cb(offset, sz, value)
            except BaseException as exc:
                self.abort_run(exc)
        self.map_mmio_raw(base, size, rd, wr)

    def map_mmio_raw(self, base, size, read_cb, write_cb=None):
        """Map an MMIO window whose callbacks Unicorn calls itself:
        read_cb(handle, offset, size, user_data) -> value and
        write_cb(handle, offset, size, value, user_data).  A missing write_cb
        ignores writes."""
        rd = MMIO_READ_CFUNC(read_cb)
        wr = MMIO_WRITE_CFUNC(write_cb or (lambda handle, offset, sz, value, _: None))
        status = _uclib.uc_mmio_map(self._handle, ctypes.c_uint64(base), ctypes.c_size_t(size),
                                    rd, None, wr, None)
        if status != 0:
            raise EngineError(f"cannot map MMIO 0x{base:x}+0x{size:x}: {UcError(status)}")
        self._mmio_cbs[base] = (rd, wr)
        self._mapped.append((base, size, "mmio"))

    def remove_code_cache(self, start, end):
        """Drop translated blocks after the host wrote guest code at [start, end)."""
        self.uc.ctl_remove_cache(start, end)

    def flush_code(self):
        """Drop every translated block (after the host wrote code it has no
        mapped virtual address for).  A host write into guest RAM goes
        straight into the shared buffer, where Unicorn cannot see it (nor
        does uc_mem_write() drop translations, in 2.1.4): a guest running
        code from those bytes again would run the old translation."""
        self.uc.ctl_flush_tb()

    # -- CPU ------------------------------------------------------------
    def enable_paging(self, cr3, pae=False):
        """Load CR3 and set CR4.PSE and CR0.PG|WP (paging on, as head_32.S does).

        pae: also CR4.PAE, and EFER.NXE as 6.1's x86_configure_nx() sets it
        when the CPU has NX ("NX (Execute Disable) protection: active"), so
        that bit 63 of an entry forbids instruction fetches.
        """
        uc = self.uc
        uc.reg_write(UC_X86_REG_CR3, cr3)
        cr4 = CR4_PSE | (CR4_PAE if pae else 0)
        uc.reg_write(UC_X86_REG_CR4, uc.reg_read(UC_X86_REG_CR4) | cr4)
        if pae:
            try:
                uc.msr_write(MSR_EFER, uc.msr_read(MSR_EFER) | EFER_NX)
            except UcError as e:
                raise EngineError(f"cannot set EFER.NXE: {e}") from None
        uc.reg_write(UC_X86_REG_CR0, uc.reg_read(UC_X86_REG_CR0) | CR0_PE | CR0_PG | CR0_WP)

    def nx_enabled(self):
        """Whether EFER.NXE is set (PAE with NX: execute-disable bits are honoured)."""
        try:
            return bool(self.uc.msr_read(MSR_EFER) & EFER_NX)
        except UcError:
            return False

    def load_gdt(self, base, limit, segments):
        """Load GDTR and the segment registers (name -> selector)."""
        from unicorn.x86_const import UC_X86_REG_GDTR
        self.uc.reg_write(UC_X86_REG_GDTR, (0, base, limit, 0))
        for name, sel in segments.items():
            self.uc.reg_write(REGS[name], sel)

    def save_cpu(self):
        """The whole CPU state (registers, segment caches, privilege level)."""
        return self.uc.context_save()

    def restore_cpu(self, ctx):
        """Back to a saved CPU state; the TLB is not part of it, so flush."""
        self.uc.context_restore(ctx)
        self.flush_tlb()

    def host_registers(self):
        """The registers that stay the host's across close(): [(id, value)]."""
        return [(rid, self.uc.reg_read(rid)) for rid in HOST_REGS]

    def set_registers(self, values):
        for rid, value in values:
            self.uc.reg_write(rid, value)

    def flush_tlb(self):
        """Forget every cached translation (what a CR3 reload does)."""
        self.uc.ctl(ucc.UC_CTL_TLB_FLUSH, ucc.UC_CTL_IO_WRITE)

    def reg(self, name):
        return self.uc.reg_read(REGS[name])

    def set_reg(self, name, value):
        self.uc.reg_write(REGS[name], value)

    def regs(self):
        """All general, segment and control registers, by lower-case name."""
        return {name: self.uc.reg_read(rid) for name, rid in REGS.items()}

    def translate(self, vaddr, write=False):
        """Unicorn's own MMU walk: the physical address of vaddr, or None."""
        out = ctypes.c_uint64()
        prot = UC_PROT_WRITE if write else UC_PROT_READ
        err = _uclib.uc_vmem_translate(self._handle, vaddr, prot, ctypes.byref(out))
        return None if err else out.value

    # -- hooks ----------------------------------------------------------
    def abort_run(self, exc):
        """Stop the CPU from inside a hook; emu_start() (so run()) raises exc."""
        if getattr(self.uc, "_hook_exception", None) is None:
            self.uc._hook_exception = exc
        self.uc.emu_stop()

    def hook_exceptions(self, callback):
        """callback(trapnr, error_code) for every CPU exception.

        The exception is marked delivered before the callback runs, so the
        next one is reported as itself and not as a double fault.
        """
        def cb(uc, intno, _):
            error_code = self.ack_exception()
            callback(intno, error_code)
        self._hooks.append(self.uc.hook_add(UC_HOOK_INTR, cb))

    def hook_interrupts(self, callback):
        """callback(intno) for every CPU exception and `int n`; returns the hook.

        Nothing is read or changed before the callback: it calls
        ack_exception() for the ones it handles, and leaves the others
        (a host program's) as Unicorn gave them.
        """
        hook = self.uc.hook_add(UC_HOOK_INTR, lambda uc, intno, _: callback(intno))
        self._hooks.append(hook)
        return hook

    def hook_invalid_insn(self, callback):
        """callback() when the CPU meets an instruction it cannot execute (#UD:
        ud2, an undefined opcode).  Unicorn raises no interrupt for these;
        callback's truth says the state was changed and the CPU goes on,
        else emu_start() ends with UC_ERR_INSN_INVALID.  Returns the hook."""
        from unicorn import UC_HOOK_INSN_INVALID

        def cb(uc, _):
            return bool(callback())
        hook = self.uc.hook_add(UC_HOOK_INSN_INVALID, cb)
        self._hooks.append(hook)
        return hook

    def hook_unmapped(self, callback):
        """callback(kind, paddr, size) when the CPU reads ("read"), writes
        ("write") or fetches ("fetch") physical memory nothing is mapped at
        (a guest PTE pointing past RAM).  Its truth says something is now
        mapped there and the access is retried; else emu_start() ends with
        UC_ERR_*_UNMAPPED.  Returns the hook."""
        from unicorn import (UC_HOOK_MEM_FETCH_UNMAPPED, UC_HOOK_MEM_READ_UNMAPPED,
                             UC_HOOK_MEM_WRITE_UNMAPPED, UC_MEM_FETCH_UNMAPPED,
                             UC_MEM_WRITE_UNMAPPED)

        def cb(uc, access, address, size, value, _):
            kind = ("fetch" if access == UC_MEM_FETCH_UNMAPPED
                    else "write" if access == UC_MEM_WRITE_UNMAPPED else "read")
            return bool(callback(kind, address, size))
        hook = self.uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED
                                | UC_HOOK_MEM_FETCH_UNMAPPED, cb)
        self._hooks.append(hook)
        return hook

    def hook_code_at(self, address, callback):
        """callback(address) before the instruction at address runs; returns the hook.

        A code hook bounded to one address (a debugger's breakpoint): the rest
        of the guest runs without a per-instruction hook.  emu_stop() inside
        the callback stops before that instruction runs.
        """
        from unicorn import UC_HOOK_CODE

        def cb(uc, addr, size, _):
            callback(addr)
        hook = self.uc.hook_add(UC_HOOK_CODE, cb, None, address, address)
        self._hooks.append(hook)
        return hook

    def unhook(self, hook):
        """Remove one hook that hook_code_at() or hook_interrupts() returned."""
        self.uc.hook_del(hook)
        self._hooks.remove(hook)

    def ack_exception(self):
        """Mark the exception being delivered as done (Unicorn issue #1883);
        returns its error code."""
        ctx = self.uc.context_save()
        base = _ctx_addr(ctx)
        error_code = ctypes.c_int32.from_address(base + self._err_off).value & 0xFFFF
        ctypes.c_int32.from_address(base + self._old_exc_off).value = -1
        self.uc.context_restore(ctx)
        return error_code

    def clear_exception_state(self):
        """Mark no exception in progress.  A run stopped from inside a hook
        (emu_stop in a hook) leaves one recorded, and the next fault
        would arrive as a double fault."""
        ctx = self.uc.context_save()
        slot = ctypes.c_int32.from_address(_ctx_addr(ctx) + self._old_exc_off)
        if slot.value != -1:
            slot.value = -1
            self.uc.context_restore(ctx)

    # -- running --------------------------------------------------------
    def run(self, begin, until=0xFFFFFFFF, timeout_s=0, max_insns=0):
        """emu_start(), stopped after timeout_s seconds (0: no limit) or
        max_insns instructions (0: no count; Unicorn counts with a hook on
        every instruction); returns (error or None, seconds elapsed)."""
        self.stop_cell[0] = False
        self.clear_exception_state()
        for fn in self.on_run:
            fn(True)
        t0 = time.perf_counter()
        self.running, self._stopped = True, False
        if timeout_s:
            _WATCHDOG.arm(self, timeout_s)
        try:
            err = self._emulate(begin, until, max_insns)
            while err is not None and err.errno in _UNMAPPED_ERRORS and self.on_unmapped \
                    and not self._stopped:
                err = self._replay_unmapped(until)
                if err is None and not self._stopped:
                    err = self._emulate(self.reg("eip"), until, max_insns)
        finally:
            if timeout_s:
                _WATCHDOG.disarm(self)
            self.running = False
            for fn in self.on_run:
                fn(False)
        return err, time.perf_counter() - t0

    def _emulate(self, begin, until, count):
        try:
            self.uc.emu_start(begin, until, count=count)
        except UcError as e:
            return e
        return None

    def _replay_unmapped(self, until):
        """The instruction that reached unbacked physical memory, once more,
        with on_unmapped as Unicorn's unmapped-memory hook: the hook learns
        the address and may map something there, and the access is retried.

        Only for that one instruction: while any UC_HOOK_MEM_*_UNMAPPED hook
        is added, Unicorn 2.1.4 takes its slow path for every guest store
        (a 64 KiB memset ran 10x slower on PAE tables with NX data).  EIP is
        exact after such an error (the access faulted), so nothing runs
        twice.  A budget's instruction count starts again after it."""
        hook = self.hook_unmapped(self.on_unmapped)
        try:
            return self._emulate(self.reg("eip"), until, 1)
        finally:
            self.unhook(hook)

    def stop(self):
        """emu_stop() from inside a hook: the CPU stops at once.

        Unicorn checks for a stop after every memory access, so a stop asked
        for inside an MMIO callback (a hypercall) abandons that instruction:
        EIP stays on it and the destination register keeps its old value.
        """
        self._stopped = True
        self.uc.emu_stop()

    def request_stop(self):
        """Stop a running guest from another thread (a debugger's Ctrl-C).

        A stop from outside can land while a hypercall is being served, and
        then that call would run again when the guest goes on.  So the next
        hypercall is asked to stop before it runs (stop_cell); a guest that
        makes no hypercall is stopped wherever it is by calling this again.
        """
        if self.stop_cell[0]:
            self.uc.emu_stop()
        self.stop_cell[0] = True

    def close(self, keep_ram=False):
        """Give the Uc back: remove mmemu's hooks and MMIO windows, unmap the
        RAM it mapped (unless keep_ram), and put back the CPU state it found
        (control registers, EFER, GDT/IDT and segments, with their hidden
        parts), keeping the host's own registers as they are now."""
        if self.closed:
            return
        for h in self._hooks:
            try:
                self.uc.hook_del(h)
            except (UcError, KeyError):
                pass
        self._hooks.clear()
        for h, _fptr in self._raw_hooks:
            _uclib.uc_hook_del(self._handle, h)
        self._raw_hooks.clear()
        for start, size, kind in reversed(self._mapped):
            if kind == "ram" and keep_ram:
                continue
            try:
                self.uc.mem_unmap(start, size)
            except UcError:
                pass
        self._mapped = [m for m in self._mapped if m[2] == "ram" and keep_ram]
        self._mmio_cbs.clear()
        self.restore_found_cpu()
        self.closed = True

    def restore_found_cpu(self):
        """The CPU state found at attach, with the host's registers as they are now.

        Only the registers that changed since are written back: a write of
        an unchanged one is not always a no-op (FPCW recomputes the x87
        rounding state from it).
        """
        now = self.host_registers()
        self.uc.context_restore(self._found_cpu)
        self.set_registers([(rid, value) for (rid, value), (_, found)
                            in zip(now, self._found_regs) if value != found])
        self.flush_tlb()


def _merge_pages(ranges):
    """Round each range out to whole pages and merge what then touches."""
    out = []
    for s, e in sorted(ranges):
        s, e = s & ~0xFFF, (e + 0xFFF) & ~0xFFF
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [tuple(r) for r in out]


class _Watchdog:
    """The time budget of running engines: one daemon thread that sleeps
    until the earliest deadline and stops that engine's CPU (uc_emu_stop(),
    which Unicorn's own timeout calls from its thread too), again each
    millisecond until the run ends.  It holds an engine's Uc only while the
    engine runs with a budget."""

    def __init__(self):
        self._cond = threading.Condition()
        self._armed = {}                 # id(engine) -> (deadline, uc)
        self._thread = None

    def arm(self, engine, seconds):
        with self._cond:
            self._armed[id(engine)] = (time.monotonic() + seconds, engine.uc)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="mmemu-budget",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def disarm(self, engine):
        with self._cond:
            self._armed.pop(id(engine), None)

    def _watch(self):
        with self._cond:
            while True:
                if not self._armed:
                    self._cond.wait()
                    continue
                key, (deadline, uc) = min(self._armed.items(), key=lambda kv: kv[1][0])
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                # A stop landing just before emu_start() begins is forgotten,
                # so it is repeated each millisecond until the run ends.
                self._armed[key] = (deadline + 0.001, uc)
                try:
                    uc.emu_stop()
                except UcError:
                    pass                 # the thread must live on for the next budget


_WATCHDOG = _Watchdog()
