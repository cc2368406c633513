"""Atomic-context hypercalls: the slow paths of guest/include/mmemu/sched.h.

The guest keeps preempt_count and the irq flag itself, in the per-cpu
block; it calls the host only when something must be reported (a might_sleep()
in atomic context, a preempt_count underflow, a spinlock misuse, schedule()
while atomic) or for the pagefault_disable() depth, which has no per-cpu word.
Numbers are HC_SCHED_BASE + n (abi.py's range 112..127), mirrored in sched.h.
"""
from mmemu.runtime.abi import HC_SCHED_BASE

HC_MIGHT_SLEEP = HC_SCHED_BASE + 0          # (file, line)   __might_sleep()
HC_PAGEFAULT_DISABLE = HC_SCHED_BASE + 1    # ()             pagefault_disable()
HC_PAGEFAULT_ENABLE = HC_SCHED_BASE + 2     # ()             pagefault_enable()
HC_PREEMPT_COUNT_SUB = HC_SCHED_BASE + 3    # (val)          preempt_count_sub() to report
HC_SPIN_BUG = HC_SCHED_BASE + 4             # (lock, kind)   spin_bug(): 1 recursion, 2 unlocked
HC_SCHEDULE = HC_SCHED_BASE + 5             # () -> 1 if it reported   schedule()
HC_PAGEFAULT_DISABLED = HC_SCHED_BASE + 6   # () -> depth    pagefault_disabled()

SPIN_BUG_RECURSION, SPIN_BUG_UNLOCKED = 1, 2
SPINLOCK_MAGIC = 0xDEAD4EAD


def register(rt, table, sched):
    """Serve the atomic-context calls of runtime rt from sched (an AtomicContext)."""
    m = rt.machine

    def hc_might_sleep(file_va, line):
        return int(sched.might_sleep(f"{_cstr(m, file_va)}:{_s32(line)}"))

    def hc_preempt_count_sub(val):
        return int(sched.preempt_count_sub(_s32(val)))

    def hc_spin_bug(lock, kind):
        spin_dump(rt, sched, lock, kind)
        return 0

    def hc_pagefault_disable():
        sched.pagefault_disable()

    def hc_pagefault_enable():
        sched.pagefault_enable()

    table.register(HC_MIGHT_SLEEP, "__might_sleep", hc_might_sleep, 2)
    table.register(HC_PAGEFAULT_DISABLE, "pagefault_disable", hc_pagefault_disable, 0)
    table.register(HC_PAGEFAULT_ENABLE, "pagefault_enable", hc_pagefault_enable, 0)
    table.register(HC_PREEMPT_COUNT_SUB, "preempt_count_sub", hc_preempt_count_sub, 1)
    table.register(HC_SPIN_BUG, "spin_bug", hc_spin_bug, 2)
    table.register(HC_SCHEDULE, "schedule", lambda: int(sched.schedule()), 0)
    table.register(HC_PAGEFAULT_DISABLED, "pagefault_disabled",
                   lambda: sched.pagefault_disabled, 0)


def spin_dump(rt, sched, lock, kind):
    """spin_bug()/spin_dump() of kernel/locking/spinlock_debug.c (CONFIG_DEBUG_SPINLOCK).

    Differs: Linux goes on to spin forever on a recursive lock; mmemu reports
    and lets the program continue.
    """
    rep = rt.reporter
    msg = "recursion" if kind == SPIN_BUG_RECURSION else "already unlocked"
    owner = f"{rep.comm}/{sched.pid}" if kind == SPIN_BUG_RECURSION else "<none>/-1"
    owner_cpu = 0 if kind == SPIN_BUG_RECURSION else -1
    name = rt.symbolize(lock)
    lines = [f"BUG: spinlock {msg} on CPU#0, {rep.comm}/{sched.pid}",
             f" lock: {name or f'0x{lock:08x}'}, .magic: {SPINLOCK_MAGIC:08x}, "
             f".owner: {owner}, .owner_cpu: {owner_cpu}"]
    rep.report("\n".join(lines + rep.dump_stack()))


def _s32(value):
    return value - (1 << 32) if value & 0x80000000 else value


def _cstr(machine, va, limit=256):
    """A NUL-terminated string from guest memory (what a guest passes as __FILE__)."""
    out = bytearray()
    try:
        while len(out) < limit:
            chunk = machine.read(va + len(out), min(64, 4096 - ((va + len(out)) & 4095)))
            end = chunk.find(b"\0")
            if end >= 0:
                out += chunk[:end]
                break
            out += chunk
    except Exception:       # an unreadable pointer is the guest's bug: show what we have
        if not out:
            return f"<bad string 0x{va:08x}>"
    return out.decode("utf-8", "replace")
