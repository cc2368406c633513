"""Atomic-context hypercalls: the slow paths of guest/include/mmemu/sched.h.

The guest keeps preempt_count and the irq flag itself, in the per-cpu
block; it calls the host only when something must be reported (a might_sleep()
in atomic context, a preempt_count underflow, a spinlock misuse, schedule()
while atomic) or for the pagefault_disable() depth, which has no per-cpu word.
Numbers are HC_SCHED_BASE + n (abi.py's range 112..127), mirrored in sched.h.
"""
from mmemu.kernel.sched import MIGHT_SLEEP_SITES
from mmemu.mm.gfp import __GFP_DIRECT_RECLAIM
from mmemu.runtime.abi import (
    HC_MIGHT_SLEEP, HC_PAGEFAULT_DISABLE, HC_PAGEFAULT_DISABLED, HC_PAGEFAULT_ENABLE,
    HC_PREEMPT_COUNT_SUB, HC_SCHEDULE, HC_SPIN_BUG,
)

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


# -- might_sleep() in front of the guest's sleeping calls ---------------------------
#
# Guest calls that may sleep, by hypercall name, and what 6.1 checks first in
# each: (index of the gfp argument, or None, and the might_sleep() site).
# wrap_sleeping_calls() puts the check in front of the ones a machine serves
# when their own subsystem does not make it (the slab fast path runs in the
# guest: guest/lib/slab.c calls sched.h's might_alloc() before it, so
# __slab_alloc, its slow path, is not checked again here; kmap() and
# kunmap() check in mm/highmem.py).
SLEEPING_CALLS = {
    "alloc_pages": (0, None),
    "__get_free_pages": (0, None),
    "kmalloc_large": (1, None),
    "__vmalloc": (1, None),
    "vmalloc": ("GFP_KERNEL", None),
    "vzalloc": ("GFP_KERNEL", None),
    "vmalloc_node": ("GFP_KERNEL", None),
    "__vmalloc_node": (2, None),
    "ioremap": ("GFP_KERNEL", None),                  # get_vm_area's kzalloc_node()
    "ioremap_prot": ("GFP_KERNEL", None),
    "iounmap": (None, MIGHT_SLEEP_SITES["remove_vm_area"]),
    "kmem_cache_create": (None, MIGHT_SLEEP_SITES["cpus_read_lock"]),
    "kmem_cache_destroy": (None, MIGHT_SLEEP_SITES["cpus_read_lock"]),
    "vmap": (None, MIGHT_SLEEP_SITES["vmap"]),
    "vunmap": (None, MIGHT_SLEEP_SITES["vunmap"]),
    "vfree": (None, MIGHT_SLEEP_SITES["vfree"]),      # might_sleep_if(!in_interrupt())
}
# The calls whose only might_alloc() is the page allocator's own (6.1's
# prepare_alloc_pages()): the allocator's hook (kernel/sched.py's
# might_alloc_hook(), MmState.might_alloc) covers them, host and guest alike.
PAGE_ALLOCATOR_CALLS = ("alloc_pages", "__get_free_pages", "kmalloc_large")


def wrap_sleeping_calls(table, sched):
    """Make the guest's sleeping calls other than the page allocator's check
    atomic context first, as 6.1 does in each; returns the names wrapped.

    Run after every subsystem registered its calls; a call already wrapped
    is left as it is.
    """
    done = []
    for call in table.calls:
        if call is None or call.name not in SLEEPING_CALLS or call.name in PAGE_ALLOCATOR_CALLS:
            continue
        if _wrap_hypercall(table, call, _sleep_check(sched, *SLEEPING_CALLS[call.name])):
            done.append(call.name)
    return done


def _sleep_check(sched, gfp_arg, site):
    """The check to run before a call: might_alloc(gfp) or might_sleep() at site.

    The common case (not atomic) costs two word reads.
    """
    u32, w_preempt, w_irqs = sched.u32, sched.w_preempt, sched.w_irqs
    alloc_site = MIGHT_SLEEP_SITES["might_alloc"]

    def atomic():
        return u32[w_preempt] or u32[w_irqs] or sched.non_block_count
    if gfp_arg == "GFP_KERNEL":
        return lambda args: atomic() and sched.might_sleep(alloc_site)
    if gfp_arg is not None:
        return lambda args: (args[gfp_arg] & __GFP_DIRECT_RECLAIM and atomic()
                             and sched.might_sleep(alloc_site))
    if site == MIGHT_SLEEP_SITES["vfree"]:
        return lambda args: atomic() and not sched.in_interrupt() and sched.might_sleep(site)
    return lambda args: atomic() and sched.might_sleep(site)


def _wrap_hypercall(table, call, check):
    """Put check(args) in front of a registered hypercall's handler (once)."""
    if getattr(call.fn, "_might_sleep", False):
        return False
    inner = call.fn

    def checked(*args):
        check(args)
        return inner(*args)
    checked._might_sleep = True
    table.replace(call.nr, checked)
    return True
