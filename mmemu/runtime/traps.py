"""Whose trap is it: mmemu's, or the host program's?

Unicorn calls every interrupt hook of a Uc for every CPU exception and
every ``int n``, so in a Uc that a host program also hooks, mmemu must
decide for each trap whether it is its own to handle (and, failing every
handler, to report as an oops and stop the CPU) or the host's, which it
then leaves alone: no register read or written, the exception not marked
delivered.

mmemu's own (the default, ``default_owner``):

* every CPU exception (vectors 0-31) raised while mmemu runs its guest
  program (Machine.run(): its guest's faults, its user tasks' faults);
* ``int $0x80`` from ring 3 while mmemu runs a user task (runtime/task.py).

Everything else is the host's: software interrupts from ring 0 (a hobby
OS's own ``int $0x80``), and anything raised while the host drives the CPU
itself.  On a Uc of its own (no host) every trap is mmemu's.

A host changes that with a trap policy, ``machine.trap_policy = fn``:
fn(trap) returns True (mmemu's: handled, or reported as an oops), False
(the host's, even during mmemu's runs) or None (the default).  mmemu only
hooks interrupts while it runs a guest, or for good once a policy is set,
so a host that sets none drives a Uc with no interrupt hook of mmemu's.
"""
X86_TRAP_NR = 32          # vectors 0-31 are the CPU's exceptions
SYSCALL_VECTOR = 0x80     # IA32_SYSCALL_VECTOR


class Trap:
    """One trap, as a trap policy sees it.

    vector (the interrupt number) and in_mmemu_run (whether mmemu is running
    its guest) cost nothing; eip, cpl and address (CR2 of a page fault, else
    None) read a register each when first asked for.
    """

    __slots__ = ("vector", "in_mmemu_run", "_engine", "_regs")

    def __init__(self, vector, in_mmemu_run, engine):
        self.vector = vector
        self.in_mmemu_run = in_mmemu_run
        self._engine = engine
        self._regs = {}

    def _reg(self, name):
        value = self._regs.get(name)
        if value is None:
            value = self._regs[name] = self._engine.reg(name)
        return value

    @property
    def eip(self):
        """The faulting instruction (an exception) or the one after `int n`."""
        return self._reg("eip")

    @property
    def cpl(self):
        """The privilege level the trap came from: 0 kernel, 3 user."""
        return self._reg("cs") & 3

    @property
    def is_exception(self):
        """A CPU exception (vector 0-31), not a software interrupt."""
        return self.vector < X86_TRAP_NR

    @property
    def address(self):
        """The faulting address of a page fault (CR2), else None."""
        return self._reg("cr2") if self.vector == 14 else None

    def __repr__(self):
        return f"Trap(vector={self.vector}, in_mmemu_run={self.in_mmemu_run})"


def default_owner(trap, task_running):
    """mmemu's share of the traps when the host's policy has no opinion."""
    if not trap.in_mmemu_run:
        return False
    if trap.is_exception:
        return True
    return trap.vector == SYSCALL_VECTOR and task_running and trap.cpl == 3


def owns(policy, trap, task_running):
    """Whether mmemu handles trap: the host's policy first, then the default."""
    if policy is not None:
        verdict = policy(trap)
        if verdict is not None:
            return bool(verdict)
    return default_owner(trap, task_running)
