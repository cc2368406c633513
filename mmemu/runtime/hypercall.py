"""Hypercall dispatch: one table from number to handler, one doorbell.

The mechanism (see mmemu.runtime.abi): the guest stores arguments in the
mailbox and reads word nr of the doorbell page, an MMIO window of mmemu's
own; the window's read callback finds the handler by the offset, the handler
reads its arguments straight from the mailbox words, and its return value
is the value read, so it lands in the guest's register.  No register is
read or written on this path: through the binding, one reg_read costs more
than the whole callback.  Unicorn calls only the doorbell's own callback
for it, so a host program's IN/OUT and interrupt hooks never see a
hypercall, and mmemu never sees their ports.

Subsystems extend the table with register(); the mechanism never changes.
A number with no handler, and a handler that raises, give the guest an error
return (-ENOSYS / -EINVAL as Linux's syscall table would) and the user a
warning; a host exception never escapes into Unicorn.  KernelOops is not a
failure of the handler: modelled kernel code reported an oops or a BUG on
guest-corrupted state and stopped; the run is ending, and the call returns 0.
"""
from dataclasses import dataclass

from mmemu.errors import KernelOops
from mmemu.layout import PAGE_SHIFT
from mmemu.runtime.abi import HC_DOORBELL_SIZE, HC_MAILBOX_PHYS, HC_MAX, HC_WORD_RET2

ENOSYS = 38
EINVAL = 22
EFAULT = 14
ENOMEM = 12
U32 = 0xFFFFFFFF


@dataclass
class Hypercall:
    nr: int
    name: str
    fn: object
    nargs: int


class HypercallTable:
    """The dispatch table of one machine.

    on_error(name, exc) is called when a handler raises; it reports and
    decides (it may stop the run).
    """

    def __init__(self, physmem, reporter, on_error=None):
        self.u32 = physmem.u32
        self.reporter = reporter
        self.mb = HC_MAILBOX_PHYS >> 2
        self.calls = [None] * HC_MAX
        # doorbell offset (4 * nr) -> thunk: a zero-argument callable that
        # reads the mailbox and returns the result; other offsets are strays.
        self._thunks = {4 * nr: self._unknown_thunk(nr) for nr in range(HC_MAX)}
        self.on_error = on_error

    def register(self, nr, name, fn, nargs, raw=None):
        """Serve hypercall nr with fn(*args) -> int (None means 0).

        raw, if given, is the same call in the mailbox form: raw() reads its
        own arguments from the mailbox words and returns what fn would.  The
        IN hook runs raw (one Python call less per hypercall: for the hot
        calls); fn stays the call's documented form (calls[nr].fn).
        """
        if not 0 <= nr < HC_MAX:
            raise ValueError(f"hypercall number {nr} out of range")
        if self.calls[nr] is not None:
            raise ValueError(f"hypercall {nr} already serves {self.calls[nr].name}")
        self.calls[nr] = Hypercall(nr, name, fn, nargs)
        self._thunks[4 * nr] = raw if raw is not None else self._thunk(fn, nargs)

    def replace(self, nr, fn):
        """Serve registered hypercall nr with fn from now on (same arguments);
        its mailbox form, if any, is dropped.  For wrappers (kernel/sched.py)."""
        call = self.calls[nr]
        call.fn = fn
        self._thunks[4 * nr] = self._thunk(fn, call.nargs)

    def args(self, n):
        """The first n mailbox words (for handlers that take a variable list)."""
        return list(self.u32[self.mb:self.mb + n])

    def mailbox(self, n):
        """A live view of the first n mailbox words, for handlers in the mailbox
        form: ``a, b = view`` is the cheapest way to read the arguments."""
        return self.u32[self.mb:self.mb + n]

    def _thunk(self, fn, nargs):
        u32, mb = self.u32, self.mb
        # One closure per arity.  A single word: index the memoryview; more:
        # unpack a view of the words (cheaper than indexing each).
        if nargs == 0:
            return fn
        if nargs == 1:
            return lambda: fn(u32[mb])
        box = u32[mb:mb + nargs]
        if nargs == 2:
            def thunk2():
                a, b = box
                return fn(a, b)
            return thunk2
        if nargs == 3:
            def thunk3():
                a, b, c = box
                return fn(a, b, c)
            return thunk3
        return lambda: fn(*box)

    def _unknown_thunk(self, nr):
        def unknown():
            self.reporter.report(f"mmemu: unknown hypercall {nr} (doorbell offset 0x{4 * nr:03x}) "
                                 f"from {self.reporter.caller()}: returning -ENOSYS")
            return -ENOSYS
        return unknown

    def doorbell(self, stop_cell, stop):
        """The doorbell's read callback: (handle, offset, size, user_data) -> result.

        A 32-bit read of word nr runs hypercall nr; any other read of the
        page is a stray (reported, reads all ones).  stop_cell[0], set by
        the engine's request_stop() from another thread, makes the call stop
        the CPU before it runs: the read is then abandoned and made again,
        and served, when the guest goes on.  A handler's exception goes to
        on_error and never escapes.  A BaseException that is not an
        Exception (KeyboardInterrupt, SystemExit) goes to the callback's
        ``abort`` attribute when the engine set one (it stops the CPU and
        the run raises it), else it is reported as an error.
        """
        thunks = self._thunks

        def on_read(handle, offset, size, _):
            try:
                thunk = thunks[offset]
            except KeyError:
                return self._stray(offset, size)
            if size != 4:
                return self._stray(offset, size)
            if stop_cell[0]:
                stop_cell[0] = False
                stop()
                return 0
            try:
                ret = thunk()
            except KernelOops:             # reported; the task is being killed
                ret = 0
            except BaseException as exc:   # a host bug must not unwind through Unicorn
                ret = self._failed(offset >> 2, exc, on_read)
            return 0 if ret is None else ret & U32
        on_read.abort = None
        return on_read

    def _stray(self, offset, size):
        """A read of the doorbell that is no hypercall: not 32 bits, or past HC_MAX."""
        nr = offset >> 2
        if size == 4 and offset % 4 == 0 and nr < HC_DOORBELL_SIZE // 4:
            return self._unknown_thunk(nr)() & U32
        self.reporter.report(f"mmemu: {size}-byte read at offset 0x{offset:03x} of the hypercall "
                             f"doorbell from {self.reporter.caller()} is no hypercall (a hypercall "
                             f"reads one aligned 32-bit word); reading all ones")
        return (1 << (8 * size)) - 1

    def _failed(self, nr, exc, hook=None):
        if not isinstance(exc, Exception):
            abort = getattr(hook, "abort", None)
            if abort is not None:
                abort(exc)
                return 0
            exc = RuntimeError(f"{type(exc).__name__} inside a hypercall")
        call = self.calls[nr]
        name = call.name if call else str(nr)
        if self.on_error is not None:
            return self.on_error(name, exc)
        self.reporter.report(f"mmemu: hypercall {name} failed: {exc!r}")
        return -EINVAL


# -- for handlers ------------------------------------------------------------------

def call_site(rt):
    """caller(ip) -> "main+0x1c/0x80": the guest code at ip, symbolized (%pS).

    For the calls whose guest wrapper passes _THIS_IP_.  An ip that is not
    in a function of the program's own code (0, garbage from a caller that
    passes nothing, SDK code, which is attributed to its first caller
    outside the SDK) falls back to rt.guest_caller(), which walks the
    guest's frames.  Names are remembered per ip until another image loads.
    """
    names = {}
    loaded = [None]

    def caller(ip):
        image = rt.image
        if image is not loaded[0]:
            names.clear()
            loaded[0] = image
        name = names.get(ip)
        if name is None:
            if image is None or image.is_sdk(ip) or image.function_at(ip) is None:
                return rt.guest_caller()
            name = names[ip] = image.symbolize(ip)
        return name
    return caller


def guest_flushes(pm):
    """to_flush(area) -> pages: hand the TLB of a torn-down area to the guest.

    Puts the area's start in mailbox word HC_WORD_RET2 and returns its size
    in pages, the vfree()/vunmap()/iounmap() result; 0 for no area (None).
    """
    u32, ret2 = pm.u32, (HC_MAILBOX_PHYS >> 2) + HC_WORD_RET2

    def to_flush(area):
        if area is None:
            return 0
        u32[ret2] = area.addr
        return area.size >> PAGE_SHIFT
    return to_flush
