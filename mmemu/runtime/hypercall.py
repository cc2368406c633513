"""Hypercall dispatch: one table from number to handler, one IN hook.

The mechanism (see mmemu.runtime.abi): the guest stores arguments in the
mailbox and executes ``in`` on port HC_PORT_BASE + nr; the hook finds the
handler by number, the handler reads its arguments straight from the
mailbox words, and its return value becomes EAX.  No register is read or
written on this path: through the binding, one reg_read costs more than the
whole hook.

Subsystems extend the table with register(); the mechanism never changes.
A number with no handler, and a handler that raises, give the guest an error
return (-ENOSYS / -EINVAL as Linux's syscall table would) and the user a
warning; a host exception never escapes into Unicorn.
"""
from dataclasses import dataclass

from mmemu.runtime.abi import HC_MAILBOX_PHYS, HC_MAX, HC_PORT_BASE

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

    def __init__(self, physmem, log, on_error=None):
        self.u32 = physmem.u32
        self.log = log
        self.mb = HC_MAILBOX_PHYS >> 2
        self.calls = [None] * HC_MAX
        self._thunks = [self._unknown_thunk(nr) for nr in range(HC_MAX)]
        self.on_error = on_error
        self.count = 0

    def register(self, nr, name, fn, nargs):
        """Serve hypercall nr with fn(*args) -> int (None means 0)."""
        if not 0 <= nr < HC_MAX:
            raise ValueError(f"hypercall number {nr} out of range")
        if self.calls[nr] is not None:
            raise ValueError(f"hypercall {nr} already serves {self.calls[nr].name}")
        self.calls[nr] = Hypercall(nr, name, fn, nargs)
        self._thunks[nr] = self._thunk(fn, nargs)

    def args(self, n):
        """The first n mailbox words (for handlers that take a variable list)."""
        return list(self.u32[self.mb:self.mb + n])

    def _thunk(self, fn, nargs):
        u32, mb = self.u32, self.mb
        # One closure per arity: indexing a memoryview is the cheapest read.
        if nargs == 0:
            return fn
        if nargs == 1:
            return lambda: fn(u32[mb])
        if nargs == 2:
            return lambda: fn(u32[mb], u32[mb + 1])
        if nargs == 3:
            return lambda: fn(u32[mb], u32[mb + 1], u32[mb + 2])
        return lambda: fn(*u32[mb:mb + nargs])

    def _unknown_thunk(self, nr):
        def unknown():
            self.log.warn(f"mmemu: unknown hypercall {nr} (port 0x{HC_PORT_BASE + nr:04x}) "
                          f"from {self.log.where() or '?'}: returning -ENOSYS")
            return -ENOSYS
        return unknown

    def in_hook(self):
        """The binding-level IN hook: (uc, port, size, user_data) -> EAX."""
        thunks = self._thunks
        base = HC_PORT_BASE

        def on_in(uc, port, size, _):
            nr = port - base
            if not 0 <= nr < HC_MAX:
                return U32        # not ours: a PC bus with nothing behind the port
            try:
                ret = thunks[nr]()
            except Exception as exc:   # a host bug must not unwind through Unicorn
                ret = self._failed(nr, exc)
            return 0 if ret is None else ret & U32
        return on_in

    def _failed(self, nr, exc):
        call = self.calls[nr]
        name = call.name if call else str(nr)
        if self.on_error is not None:
            return self.on_error(name, exc)
        self.log.warn(f"mmemu: hypercall {name} failed: {exc!r}")
        return -EINVAL
