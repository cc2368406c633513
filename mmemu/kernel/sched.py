"""Atomic context as Linux 6.1 tracks it, and the reports it gives when
code sleeps (or might) where it must not.

Models include/linux/preempt.h (the preempt_count layout: preemption,
softirq, hardirq and NMI fields), include/linux/uaccess.h
(pagefault_disable), include/linux/sched/mm.h (might_alloc), and
kernel/sched/core.c (__might_sleep, __might_resched, __schedule_bug,
preempt_count_sub's DEBUG_PREEMPT underflow check).

The guest changes preempt_count and the irq flag itself, without a
hypercall, as Linux's per-cpu __preempt_count and EFLAGS.IF
(guest/include/mmemu/sched.h); they live in the per-cpu block (its words
are runtime/abi.py's PERCPU_FIELDS; machine.py says where), and the host
reads them when it must know whether the caller is in atomic context.  The
kmap_local stack depth shares that block (mm/highmem.py keeps it there, so
host and guest agree).  The guest's calls that may sleep check it first
(runtime/hc_sched.py wraps them); the page allocator calls
might_alloc_hook()'s hook.

Differs: CONFIG_DEBUG_ATOMIC_SLEEP and CONFIG_DEBUG_PREEMPT are on (Debian's
686 kernel has neither, and would stay silent); one CPU and one task (pid 1,
named after the program); pagefault_disabled is kept on the host, changed
by kmap_atomic()/kunmap_atomic() and the pagefault_* hypercalls (no per-cpu
word carries it); the once-a-second ratelimit of __might_resched() counts
host seconds, not jiffies, and applies per call site (file:line and guest
caller), so a program that makes several different mistakes sees each of
them while a loop repeating one is not a flood (``ratelimit_s``, 0 turns
it off).
"""
import time

from mmemu.kernel.panic import TAINT_WARN
from mmemu.log import KERN_INFO
from mmemu.mm.gfp import __GFP_DIRECT_RECLAIM

# include/linux/preempt.h
PREEMPT_BITS, SOFTIRQ_BITS, HARDIRQ_BITS, NMI_BITS = 8, 8, 4, 4
PREEMPT_SHIFT = 0
SOFTIRQ_SHIFT = PREEMPT_SHIFT + PREEMPT_BITS
HARDIRQ_SHIFT = SOFTIRQ_SHIFT + SOFTIRQ_BITS
NMI_SHIFT = HARDIRQ_SHIFT + HARDIRQ_BITS
PREEMPT_MASK = ((1 << PREEMPT_BITS) - 1) << PREEMPT_SHIFT
SOFTIRQ_MASK = ((1 << SOFTIRQ_BITS) - 1) << SOFTIRQ_SHIFT
HARDIRQ_MASK = ((1 << HARDIRQ_BITS) - 1) << HARDIRQ_SHIFT
NMI_MASK = ((1 << NMI_BITS) - 1) << NMI_SHIFT
PREEMPT_OFFSET = 1 << PREEMPT_SHIFT
SOFTIRQ_OFFSET = 1 << SOFTIRQ_SHIFT
HARDIRQ_OFFSET = 1 << HARDIRQ_SHIFT
NMI_OFFSET = 1 << NMI_SHIFT
SOFTIRQ_DISABLE_OFFSET = 2 * SOFTIRQ_OFFSET


# Where 6.1's might_sleep() annotations sit (__FILE__:__LINE__ as printed).
# Other subsystems pass these to might_sleep(machine, where).
MIGHT_SLEEP_SITES = {
    "might_alloc": "include/linux/sched/mm.h:274",   # page allocator, slab, vmalloc's kzalloc
    "kmap": "include/linux/highmem-internal.h:44",
    "kunmap": "include/linux/highmem-internal.h:55",
    "alloc_vmap_area": "mm/vmalloc.c:1616",
    "remove_vm_area": "mm/vmalloc.c:2606",           # iounmap()
    "cpus_read_lock": "include/linux/percpu-rwsem.h:49",   # kmem_cache_create/destroy
    "vfree": "mm/vmalloc.c:2801",                     # might_sleep_if(!in_interrupt())
    "vunmap": "mm/vmalloc.c:2822",
    "vmap": "mm/vmalloc.c:2850",
}
PREEMPT_COUNT_SUB_SITE = ("kernel/sched/core.c", 5738)

# The per-cpu words the host reads, by the names of runtime/abi.py's PERCPU_FIELDS.
PERCPU_WORDS = ("preempt_count", "irqs_disabled", "kmap_atomic_idx", "current_task")


class AtomicContext:
    """The one CPU's preempt_count, irq flag and pagefault_disable() depth.

    pm is the PhysMem holding the per-cpu block; percpu maps each name of
    PERCPU_WORDS to its word (an index into pm.u32: machine.py places the
    block); reporter is the machine's Reporter (kernel/panic.py), which
    knows the current task and its stack.
    """

    def __init__(self, pm, percpu, reporter):
        self.u32 = pm.u32
        self.w_preempt, self.w_irqs, self.w_kmap_idx, self.w_task = (
            percpu[name] for name in PERCPU_WORDS)
        self.rep = reporter
        self.pagefault_disabled = 0      # current->pagefault_disabled
        self.non_block_count = 0         # current->non_block_count
        self.ratelimit_s = 1.0           # __might_resched(): once per HZ
        self.prev_jiffy = {}             # call site -> host time of its last report
        self.reports = 0                 # sleeping-in-atomic reports so far

    # -- the per-cpu words ----------------------------------------------
    @property
    def preempt_count(self):
        return self.u32[self.w_preempt]

    @preempt_count.setter
    def preempt_count(self, value):
        self.u32[self.w_preempt] = value & 0xFFFFFFFF

    @property
    def irqs_disabled(self):
        return int(self.u32[self.w_irqs] != 0)

    @irqs_disabled.setter
    def irqs_disabled(self, value):
        self.u32[self.w_irqs] = int(bool(value))

    @property
    def kmap_local_idx(self):
        """current->kmap_ctrl.idx: how many kmap_local/kmap_atomic slots are in use."""
        return self.u32[self.w_kmap_idx]

    @kmap_local_idx.setter
    def kmap_local_idx(self, value):
        self.u32[self.w_kmap_idx] = value & 0xFFFFFFFF

    @property
    def pid(self):
        """current->pid: the guest program is pid 1 (task 0 in the per-cpu block)."""
        return self.u32[self.w_task] or 1

    # -- preempt.h ------------------------------------------------------
    def in_atomic(self):
        """in_atomic(): preempt_count() != 0."""
        return self.preempt_count != 0

    def in_interrupt(self):
        """in_interrupt(): NMI, hardirq or softirq context (or bottom halves off)."""
        return (self.preempt_count & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_MASK)) != 0

    def in_task(self):
        return not self.preempt_count & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_OFFSET)

    def preempt_count_add(self, val):
        self.preempt_count = self.preempt_count + val

    def preempt_count_sub(self, val):
        """preempt_count_sub() with CONFIG_DEBUG_PREEMPT: refuse to underflow."""
        count = self.preempt_count
        if val > count:
            self._debug_locks_warn("val > preempt_count()", "preempt_count_sub")
            return False
        if val < PREEMPT_MASK and not count & PREEMPT_MASK:
            self._debug_locks_warn("(val < PREEMPT_MASK) && !(preempt_count() & PREEMPT_MASK)",
                                   "preempt_count_sub")
            return False
        self.preempt_count = count - val
        return True

    def preempt_disable(self):
        self.preempt_count_add(PREEMPT_OFFSET)

    def preempt_enable(self):
        return self.preempt_count_sub(PREEMPT_OFFSET)

    def pagefault_disable(self):
        """pagefault_disable(): the fault handler must not sleep (or fault in)."""
        self.pagefault_disabled += 1

    def pagefault_enable(self):
        if self.pagefault_disabled > 0:
            self.pagefault_disabled -= 1

    def faulthandler_disabled(self):
        return self.pagefault_disabled > 0 or self.in_atomic()

    # -- kernel/sched/core.c --------------------------------------------
    def might_sleep(self, where):
        """__might_sleep(): report a sleeping call from atomic context.

        where is "file:line" as Linux prints __FILE__:__LINE__.  Returns
        True when the caller is in atomic context (whether or not the
        ratelimit let a report through).
        """
        return self.might_resched(where, 0)

    def might_resched(self, where, offsets):
        """__might_resched(): the check and the report, offsets as expected."""
        count = self.preempt_count
        irqs = self.irqs_disabled
        if count == offsets and not irqs and not self.non_block_count:
            return False
        now = time.monotonic()
        site = (where, self.rep.caller())
        prev = self.prev_jiffy.get(site)
        if self.ratelimit_s and prev is not None and now < prev + self.ratelimit_s:
            return True
        self.prev_jiffy[site] = now
        self.reports += 1
        lines = [f"BUG: sleeping function called from invalid context at {where}",
                 f"in_atomic(): {int(count != 0)}, irqs_disabled(): {irqs}, "
                 f"non_block: {self.non_block_count}, pid: {self.pid}, name: {self.rep.comm}",
                 f"preempt_count: {count:x}, expected: {offsets & PREEMPT_MASK:x}"]
        self.rep.report("\n".join(lines + self.rep.dump_stack()), taint=TAINT_WARN,
                        lockdep_ok=True)
        return True

    def schedule(self):
        """schedule() as schedule_debug() sees it: report scheduling while atomic.

        Like Linux, it then resets preempt_count to what it should be (0 once
        schedule() returns), so the program goes on.  Returns True if it reported.
        """
        count = self.preempt_count
        if count == 0:
            return False
        lines = [f"BUG: scheduling while atomic: {self.rep.comm}/{self.pid}/0x{count:08x}",
                 "Modules linked in:"]
        self.rep.report("\n".join(lines + self.rep.dump_stack()), taint=TAINT_WARN,
                        lockdep_ok=True, panic_origin="scheduling while atomic")
        self.preempt_count = 0
        return True

    # -- kernel/exit.c -----------------------------------------------------
    def make_task_dead(self):
        """make_task_dead()'s checks of the context a BUG or an oops killed the task in.

        Models kernel/exit.c, 6.1: in interrupt context the kernel panics
        ("Aiee, killing interrupt handler!"); irqs disabled and a nonzero
        preempt_count get a note each and are reset, so the next task (the
        next run) starts clean.  current->pagefault_disabled dies with the task.
        """
        if self.in_interrupt():
            self.rep.panic("Aiee, killing interrupt handler!")
            return
        who = f"{self.rep.comm}[{self.pid}]"
        if self.irqs_disabled:
            self.rep.log.printk(f"note: {who} exited with irqs disabled", KERN_INFO)
            self.irqs_disabled = 0
        if self.in_atomic():
            self.rep.log.printk(f"note: {who} exited with preempt_count {self.preempt_count}",
                                KERN_INFO)
            self.preempt_count = 0
        self.pagefault_disabled = 0

    # -- DEBUG_LOCKS_WARN_ON ----------------------------------------------
    def _debug_locks_warn(self, cond, function):
        """DEBUG_LOCKS_WARN_ON(cond): a WARN the first time only (debug_locks_off())."""
        if not self.rep.debug_locks_off():
            return
        file, line = PREEMPT_COUNT_SUB_SITE
        self.rep.warn(file, line, function, message=f"DEBUG_LOCKS_WARN_ON({cond})",
                      notes=[f"mmemu: called from {self.rep.caller()}"])


# -- for other subsystems ---------------------------------------------------
def might_sleep(machine, where):
    """might_sleep() at where ("file:line"): report if machine is in atomic context.

    For subsystems that model a sleeping kernel function (vmalloc, slab with
    GFP_KERNEL, ...).  Returns True when the caller was in atomic context.
    A machine without the atomic-context state (not wired) never reports.
    """
    sched = getattr(machine, "sched", None)
    if sched is None:
        return False
    return sched.might_sleep(where)


def gfpflags_allow_blocking(gfp):
    return bool(gfp & __GFP_DIRECT_RECLAIM)


def might_alloc(machine, gfp):
    """might_alloc(gfp): might_sleep() if the mask allows direct reclaim.

    What 6.1 checks at the top of every page, slab and vmalloc allocation
    (include/linux/sched/mm.h:274); GFP_ATOMIC and GFP_NOWAIT never report.
    """
    if gfpflags_allow_blocking(gfp):
        return might_sleep(machine, MIGHT_SLEEP_SITES["might_alloc"])
    return False


def might_alloc_hook(sched):
    """The page allocator's might_alloc hook (MmState.might_alloc): might_sleep()
    at might_alloc's site.

    The allocator calls it only for masks that allow direct reclaim, so it
    checks the context alone.  The common case (not atomic) is one read of
    preempt_count and irqs_disabled as one 64-bit word (they are adjacent
    per-cpu words) and one attribute: it runs in every GFP_KERNEL-style
    page allocation.
    """
    site = MIGHT_SLEEP_SITES["might_alloc"]
    w_preempt, w_irqs = sched.w_preempt, sched.w_irqs
    if w_irqs != w_preempt + 1 or w_preempt & 1:     # not one aligned pair
        u32 = sched.u32

        def hook(gfp):
            if u32[w_preempt] or u32[w_irqs] or sched.non_block_count:
                sched.might_sleep(site)
        return hook
    pair, i = sched.u32.cast("B").cast("Q"), w_preempt >> 1

    def hook(gfp):
        if pair[i] or sched.non_block_count:
            sched.might_sleep(site)
    # The allocator's fast path may read the word itself and call only when it
    # is nonzero: non_block_count has no setter in mmemu, it stays 0.
    hook.context = (pair, i)
    return hook
