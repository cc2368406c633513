"""Hypercall fuzzing: long, seeded, reproducible sequences of every registered
hypercall with random and hostile arguments, checked after every call.

Two drivers share one set of checks (Watch):

- HostFuzzer, the raw driver.  guest/tests/fuzz_stub.c asks the host for
  each call (HC_FUZZ_NEXT); the host writes whatever mailbox words it likes
  (wild, NULL, misaligned and unmapped pointers, huge sizes, bad orders,
  double frees, frees into the wrong allocator, bogus caches) and the stub
  executes the one ``in`` instruction.  It reaches argument combinations
  the C wrappers forbid, and every registered call, including ones added
  after this module was written (they get random words).
- GuestFuzzer runs guest/tests/fuzz.c: a C program with its own PRNG that
  calls the real SDK wrappers (slab fast paths included), writes a pattern
  into every live object and checks it itself, and passes wild pointers
  only to hypercalls, never dereferencing them.

After every call: no host exception (the runtime's "internal error in
hypercall", which stops the run with reason "error"), the cheap checks
(page counters, the driver's own objects still alive), a sample of live
patterns; every ``check_every`` calls, machine.check() and every pattern.
Reports (warnings) are expected: they are counted by kind.

    >>> r = HostFuzzer("pc-16m", seed=1).run(2000)
    >>> r.failures
    []

A failure carries the seed, the step, the last calls and, for the host
driver, the raw calls since boot, which replay() re-issues on a fresh
machine and minimize() shrinks.
"""
import random
import re
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from mmemu.errors import MmemuError
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE
from mmemu.runtime.abi import HC_DEBUG_BASE, HC_MAILBOX_PHYS, HC_MAX, PERCPU_FIELDS, PERCPU_OFFSET

HC_FUZZ_NEXT = HC_DEBUG_BASE + 0     # (previous result) -> next nr, or -1; args in the mailbox
HC_FUZZ_HELLO = HC_DEBUG_BASE + 1    # (scratch, size): where the stub's scratch buffer is
HC_FUZZ_PARAM = HC_DEBUG_BASE + 2    # (index) -> a parameter of the guest fuzzer
HC_FUZZ_STEP = HC_DEBUG_BASE + 3     # (step, op, a0, a1, ret) -> 1 to stop the chunk
HC_FUZZ_FAIL = HC_DEBUG_BASE + 4     # (kind, addr, want, got): the guest found damage

GUEST_DIR = Path(__file__).resolve().parent.parent / "guest"
STUB = GUEST_DIR / "tests" / "fuzz_stub.c"
GUEST_PROGRAM = GUEST_DIR / "tests" / "fuzz.c"

U32 = 0xFFFFFFFF
MB = HC_MAILBOX_PHYS >> 2
PERCPU_WORD = (HC_MAILBOX_PHYS + PERCPU_OFFSET) >> 2
STRUCT_PAGE = 32
W_FLAGS, W_NEXT, W_MAPCOUNT, W_REFCOUNT = 0, 1, 6, 7
PG_reserved, PG_slab, PG_head = 12, 9, 16
PAGE_TYPE_BASE = 0xF0000000
STOPPING_CALLS = {"exit", "BUG"}


# -- records ---------------------------------------------------------------------

@dataclass
class Call:
    """One raw hypercall: its number and mailbox words, and scratch writes before it."""

    nr: int
    args: tuple
    name: str = "?"
    pokes: tuple = ()          # ((phys, bytes), ...) written before the call
    post: object = None        # fn(ret): the driver's bookkeeping after the call

    def __str__(self):
        words = ", ".join(f"0x{a:x}" for a in self.args)
        return f"{self.name}({words})"


@dataclass
class Failure:
    """A fault of mmemu's: what, where in the sequence, and how to get there again."""

    kind: str                  # error | check | pattern | result | oops | stopped
    step: int
    detail: str
    seed: int = None
    config: str = None
    trail: list = field(default_factory=list)    # the last calls, as text
    calls: list = None                           # raw Calls since boot (host driver)

    def __str__(self):
        trail = "\n    ".join(self.trail[-12:])
        return (f"{self.kind} at step {self.step} (seed {self.seed}, {self.config}): "
                f"{self.detail}\n  last calls:\n    {trail}")


@dataclass
class FuzzResult:
    """What a fuzzing run did: calls made, reports seen, failures found."""

    calls: int = 0
    runs: int = 0
    boots: int = 0
    by_call: Counter = field(default_factory=Counter)
    reports: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other):
        self.calls += other.calls
        self.runs += other.runs
        self.boots += other.boots
        self.by_call.update(other.by_call)
        self.reports.update(other.reports)
        self.failures += other.failures
        self.seconds += other.seconds

    def summary(self):
        nrep = sum(self.reports.values())
        return (f"{self.calls} calls ({len(self.by_call)} kinds) in {self.seconds:.1f} s, "
                f"{self.runs} runs on {self.boots} machines, {nrep} reports, "
                f"{len(self.failures)} failures")


_NUM = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-f]{8}\b|\d+")


def report_kind(text):
    """A report's kind: its first telling line with the numbers blanked."""
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("---") or line.startswith("mmemu: called from"):
            continue
        return _NUM.sub("#", line)[:90]
    return "?"


# -- the checks --------------------------------------------------------------------

class Watch:
    """The checks of one machine after each fuzzed call.

    Catches a handler's exception as it happens (the runtime's on_error),
    with the mailbox words of the call that raised.
    """

    def __init__(self, machine, check_every=500):
        self.m = machine
        self.check_every = check_every
        self.errors = []
        table = machine.runtime.table
        self._original_on_error = table.on_error
        table.on_error = self._on_error

    def _on_error(self, name, exc):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append(f"internal error in hypercall {name}{tuple(self.m.runtime.table.args(7))}:"
                           f" {exc!r}\n{tb}")
        return self._original_on_error(name, exc)

    def cheap(self):
        """Counters that must always agree; a problem as text, or None."""
        for zone in self.m.mm.zones:
            buddy = sum(fa.nr_free << o for o, fa in enumerate(zone.free_area))
            if buddy != zone.nr_free_pages or zone.nr_free_pages < 0:
                return (f"zone {zone.node}/{zone.name}: free lists hold {buddy} pages, "
                        f"NR_FREE_PAGES is {zone.nr_free_pages}")
            if zone.per_cpu_pageset.count_hi < 0:
                return f"zone {zone.name}: pcp count_hi {zone.per_cpu_pageset.count_hi}"
        sched = getattr(self.m, "sched", None)
        if sched is not None and sched.pagefault_disabled < 0:
            return f"pagefault_disabled is {sched.pagefault_disabled}"
        return None

    def full(self):
        """machine.check(); a problem as text, or None.  A checker that raises
        anything but a corruption error is a fault too."""
        try:
            self.m.check()
        except MmemuError as e:
            return f"{type(e).__name__}: {e}"
        except Exception as e:      # noqa: BLE001 - a crashing checker is a finding
            return f"checker crashed: {e!r}\n{traceback.format_exc()}"
        return None


def trim_log(machine):
    """Forget the kernel log (a long run would keep every line)."""
    del machine.log.lines[:]


# -- objects and patterns -----------------------------------------------------------

@dataclass(eq=False)
class Obj:
    """A live allocation the host driver made, and how to check it is intact.

    ``extents`` are (phys, nbytes) runs of its memory; the pattern is the
    object's 16-byte key written at the start and end of each extent.
    """

    kind: str                  # pages | gfp | vmalloc | vmap | ioremap | cache | slab | large
    handle: int                # what the free call takes: struct page *, address, cache
    size: int = 0              # bytes (pages: 2^order pages)
    order: int = 0
    pfn: int = -1
    extents: list = field(default_factory=list)
    key: bytes = b""
    pins: int = 0              # vmap areas and kmaps using these pages
    pfns: tuple = ()           # vmap: the pages it maps; vmalloc: its pages
    cache: int = 0             # slab objects: the kmem_cache they came from


class Patterns:
    """Write and verify the objects' patterns in guest physical memory."""

    def __init__(self, pm):
        self.u8 = pm.u8

    def write(self, obj):
        u8, key = self.u8, obj.key
        for phys, n in obj.extents:
            k = min(n, len(key))
            u8[phys:phys + k] = key[:k]
            u8[phys + n - k:phys + n] = key[:k]

    def damaged(self, obj):
        """The first extent whose pattern changed, as text, or None."""
        u8, key = self.u8, obj.key
        for phys, n in obj.extents:
            k = min(n, len(key))
            head, tail = bytes(u8[phys:phys + k]), bytes(u8[phys + n - k:phys + n])
            if head != key[:k] or tail != key[:k]:
                got = head if head != key[:k] else tail
                return (f"{obj.kind} 0x{obj.handle:08x} ({obj.size} bytes): pattern at phys "
                        f"0x{phys:08x}+{n} is {got.hex()}, wrote {key[:k].hex()}")
        return None

    def zeroed(self, obj):
        """For __GFP_ZERO and vzalloc: the start of each extent reads zero."""
        u8 = self.u8
        return all(not any(u8[phys:phys + min(n, 64)]) for phys, n in obj.extents)


# -- the host driver ------------------------------------------------------------------

# Realistic gfp masks; hostile ones add random bits.
GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT = 0xCC0, 0xA20, 0x800
__GFP_DMA, __GFP_HIGHMEM, __GFP_ZERO, __GFP_NOWARN, __GFP_COMP = 0x1, 0x2, 0x100, 0x2000, 0x40000
__GFP_NOFAIL, __GFP_THISNODE, __GFP_MOVABLE = 0x8000, 0x200000, 0x8
GFP_HIGHUSER = 0x100CC2
GFP_MASKS = (GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_KERNEL | __GFP_ZERO, GFP_HIGHUSER,
             GFP_HIGHUSER | __GFP_MOVABLE, GFP_KERNEL | __GFP_DMA, GFP_ATOMIC | __GFP_DMA,
             GFP_KERNEL | __GFP_NOWARN, GFP_KERNEL | __GFP_COMP, GFP_HIGHUSER | __GFP_ZERO)
VM_IOREMAP, VM_ALLOC, VM_MAP, VM_MAP_PUT_PAGES = 0x1, 0x2, 0x4, 0x200
FIX_KMAP_BEGIN, FIX_KMAP_END = 66, 66 + 16 * 32 - 1
MAX_LIVE = 48

# How often each call is picked (names not listed: 1).
WEIGHTS = {
    "alloc_pages": 10, "__free_pages": 9, "__get_free_pages": 6, "free_pages": 6,
    "page_address": 2, "nr_free_pages": 1, "vmalloc": 4, "vzalloc": 2, "__vmalloc": 3,
    "vmalloc_node": 2, "vfree": 8, "vmap": 3, "vunmap": 3, "vmalloc_to_page": 2,
    "ioremap": 3, "iounmap": 3, "kmap": 4, "kunmap": 4, "kmap_atomic": 3,
    "kunmap_atomic": 4, "kmap_local_page": 3, "kunmap_local": 4, "kmap_local_pfn": 2,
    "kmap_atomic_pfn": 2, "__set_fixmap": 2, "clear_fixmap": 2, "kmap_flush_unused": 1,
    "kmem_cache_create": 2, "kmem_cache_destroy": 2, "__slab_alloc": 8, "__slab_free": 8,
    "kmalloc_large": 3, "ksize": 2, "kmem_cache_shrink": 1, "validate_slab_cache": 1,
    "printk": 1, "WARN": 1, "check": 1, "exit": 0.05, "BUG": 0.05, "<unknown>": 0.5,
    "<percpu>": 0,
}


class HostFuzzer:
    """The raw hypercall fuzzer: the stub asks, the host writes the mailbox.

    config: a machine config name or MachineConfig; seed: the PRNG seed;
    check_every: calls between full checks; reboot_every: calls per machine
    (each machine's calls since boot are the reproduction of a failure);
    percpu: also corrupt the per-cpu words the guest owns (preempt_count,
    kmap_atomic_idx), after which only host exceptions count as failures.
    """

    def __init__(self, config="pc-16m", seed=0, check_every=500, reboot_every=20000,
                 chunk=2000, percpu=False, slab=True, log_calls=True):
        self.config, self.seed = config, seed
        self.check_every, self.reboot_every, self.chunk = check_every, reboot_every, chunk
        self.percpu, self.slab, self.log_calls = percpu, slab, log_calls
        self.rng = random.Random(seed)
        self.result = FuzzResult()
        self.trail = deque(maxlen=40)
        self.m = None
        self._elf = None
        self._script = None            # replay(): the calls to issue instead of generating

    # -- machines and runs ----------------------------------------------
    def _boot(self):
        from mmemu.machine import Machine
        from mmemu.runtime.build import build
        if self._elf is None:
            self._elf = build(str(STUB))
        m = self.m = Machine(self.config, echo=False)
        m.load(self._elf)
        self.watch = Watch(m, self.check_every)
        self.patterns = Patterns(m.pm)
        t = m.runtime.table
        t.register(HC_FUZZ_NEXT, "fuzz_next", self._next, 1)
        t.register(HC_FUZZ_HELLO, "fuzz_hello", self._hello, 2)
        self.u32 = m.pm.u32
        self.mbase = m.mm.mbase
        self.max_pfn = m.mem_map.nr_pages
        self.memmap = m.mem_map.virt
        self.calls = [c for c in t.calls if c is not None and not c.name.startswith("fuzz_")]
        self.by_name = {c.name: c for c in self.calls}
        self.names = [c.name for c in self.calls] + ["<unknown>"] + (["<percpu>"] if self.percpu else [])
        self.weights = [WEIGHTS.get(n, 1) if (self.slab or not _is_slab(n)) else 0 for n in self.names]
        if self.percpu:
            self.weights[-1] = 0.3
        self.objs, self.dead, self.kmaps, self.atomic = [], deque(maxlen=64), Counter(), []
        self.step_on_machine, self.pending, self.percpu_dirty = 0, None, False
        self.since_boot = []
        self.result.boots += 1
        self._base_warned = False

    def run(self, ncalls, deadline=None):
        """Make ncalls calls (fewer if deadline, a time.monotonic(), passes): a FuzzResult."""
        t0 = time.monotonic()
        self.target = self.result.calls + ncalls
        self.deadline = deadline
        while self.result.calls < self.target and not self.result.failures:
            if deadline is not None and time.monotonic() > deadline:
                break
            if self.m is None or self.step_on_machine >= self.reboot_every:
                self._boot()
            self._one_run()
        self.result.seconds += time.monotonic() - t0
        return self.result

    def _one_run(self):
        m = self.m
        self.chunk_end = min(self.target, self.result.calls + self.chunk)
        res = m.run(timeout=3600)
        self.result.runs += 1
        self.result.reports.update(report_kind(r) for r in res.reports)
        trim_log(m)
        pending, self.pending = self.pending, None
        if res.reason == "error" or self.watch.errors:
            self._fail("error", "\n".join(self.watch.errors) or res.log[-3000:])
        elif res.reason in ("exit", "halt") and res.exit_code not in (0, None):
            self._fail("stopped", f"stub exited with {res.exit_code}")
        elif res.reason in ("bug", "panic") and pending is not None and pending.name in STOPPING_CALLS | {"kmem_cache_create"}:
            self._account(pending, 0)           # the guest asked for it (BUG, SLAB_PANIC)
            if res.reason == "panic":
                self.m = None                   # a panicked machine stays down
        elif res.reason == "exit" and pending is not None and pending.name == "exit":
            self._account(pending, 0)
        elif res.reason not in ("exit",):
            self._fail(res.reason, "\n".join(res.reports)[-4000:] or res.log[-3000:])

    # -- the stub's requests --------------------------------------------------
    def _hello(self, scratch, size):
        self.scratch, self.scratch_size = scratch, size
        self.scratch_phys = scratch - PAGE_OFFSET
        return 0

    def _next(self, prev):
        """HC_FUZZ_NEXT: finish the previous call, check, then issue the next."""
        if self.pending is not None:
            call, self.pending = self.pending, None
            self._account(call, prev)
            if self._after(call, prev):
                return -1
        if self.result.calls >= self.chunk_end or self.result.failures:
            return -1
        if self.deadline is not None and self.result.calls % 256 == 0 \
                and time.monotonic() > self.deadline:
            return -1
        call = self._script.pop(0) if self._script is not None else self._generate()
        if call is None:
            return -1
        for phys, data in call.pokes:
            self.m.pm.u8[phys:phys + len(data)] = data
        for i, a in enumerate(call.args):
            self.u32[MB + i] = a & U32
        self.pending = call
        if self.log_calls:
            self.since_boot.append(Call(call.nr, call.args, call.name, call.pokes))
        return call.nr

    def _account(self, call, ret):
        self.result.calls += 1
        self.step_on_machine += 1
        self.result.by_call[call.name] += 1
        self.trail.append(f"#{self.result.calls} {call} = 0x{ret & U32:x}")

    def _after(self, call, ret):
        """Bookkeeping and checks after a call; True when a failure stops the run."""
        if self.watch.errors:
            return self._fail("error", "\n".join(self.watch.errors))
        if call.post is not None:
            problem = call.post(ret)
            if problem:
                return self._fail("result", problem)
        if self.percpu_dirty:
            return False                      # corrupted guest state: host exceptions only
        problem = self.watch.cheap() or self._liveness() or self._sample_patterns(4)
        if not problem and self.step_on_machine % self.check_every == 0:
            problem = self.watch.full() or self._sample_patterns(len(self.objs))
            if problem:
                return self._fail("check", problem)
        if problem:
            return self._fail("check" if "pattern" not in problem else "pattern", problem)
        return False

    def _fail(self, kind, detail):
        self.result.failures.append(Failure(
            kind, self.result.calls, detail, self.seed, _config_name(self.config),
            list(self.trail), list(self.since_boot) if self.log_calls else None))
        return True

    # -- model checks ----------------------------------------------------------
    def _refcount(self, pfn):
        return _s32(self.u32[self.mbase + (pfn << 3) + W_REFCOUNT])

    def _liveness(self):
        vm, sl = self.m.vmalloc, getattr(self.m, "slab", None)
        for o in self.objs:
            if o.kind in ("pages", "gfp", "large"):
                if self._refcount(o.pfn) < 1:
                    return f"{o.kind} 0x{o.handle:08x} (pfn 0x{o.pfn:x}) was freed behind its owner's back"
            elif o.kind in ("vmalloc", "vmap", "ioremap"):
                area = vm.find_vm_area(o.handle & ~(PAGE_SIZE - 1))
                if area is None:
                    return f"{o.kind} area 0x{o.handle:08x} vanished"
            elif o.kind == "cache" and sl is not None and sl.cache_at(o.handle) is None:
                return f"kmem_cache 0x{o.handle:08x} vanished"
        return None

    def _sample_patterns(self, n):
        objs = self.objs if n >= len(self.objs) else self.rng.sample(self.objs, n)
        for o in objs:
            problem = self.patterns.damaged(o)
            if problem:
                return "pattern: " + problem
        return None

    # -- generating calls --------------------------------------------------------
    def _generate(self):
        name = self.rng.choices(self.names, self.weights)[0]
        if name == "<unknown>":
            return self._g_unknown()
        if name == "<percpu>":
            return self._g_percpu()
        gen = getattr(self, "g_" + _ident(name), None)
        call = gen() if gen is not None else None
        if call is None:
            c = self.by_name[name]
            call = self._call(name, *[self.wild() for _ in range(c.nargs)])
        return call

    def _call(self, name, *args, pokes=(), post=None):
        c = self.by_name[name]
        args = tuple(a & U32 for a in args)
        return Call(c.nr, args, name, tuple(pokes), post)

    def _g_unknown(self):
        r = self.rng
        taken = {c.nr for c in self.m.runtime.table.calls if c is not None}
        free = [n for n in range(HC_MAX) if n not in taken]
        nr = r.choice(free) if r.random() < 0.8 else r.randrange(HC_MAX, 0x10000 - 0x4D00)
        return Call(nr, tuple(self.wild() for _ in range(7)), f"<nr {nr}>")

    def _g_percpu(self):
        """Scribble on a per-cpu word the guest owns; afterwards only exceptions count."""
        r = self.rng
        word = r.randrange(len(PERCPU_FIELDS))
        value = r.choice([0, 1, 2, 15, 16, 0xFF, 0x100, 0x10000, 0x7FFFFFFF, U32, r.getrandbits(32)])
        self.percpu_dirty = True
        return self._call("nop", pokes=[(((PERCPU_WORD + word) << 2), value.to_bytes(4, "little"))])

    # -- argument pools ------------------------------------------------------------
    def wild(self):
        """A hostile 32-bit word: NULL, ~0, misaligned, unmapped, in some other region."""
        r, lay = self.rng, self.m.layout
        return r.choice((
            lambda: 0, lambda: U32, lambda: 1, lambda: 0x10, lambda: 0x80000000,
            lambda: r.getrandbits(32), lambda: r.randrange(0, PAGE_OFFSET),
            lambda: PAGE_OFFSET + r.randrange(0, self.max_pfn << PAGE_SHIFT) | r.randrange(4),
            lambda: r.randrange(lay.vmalloc_start, lay.vmalloc_end),
            lambda: r.randrange(lay.pkmap_base, lay.fixaddr_top),
            lambda: self.memmap + r.randrange(self.max_pfn * STRUCT_PAGE + 64),
            lambda: r.randrange(0, 1 << r.randrange(1, 32)),
            lambda: (1 << r.randrange(32)) - r.randrange(2),
        ))()

    def gfp(self):
        r = self.rng
        g = r.choice(GFP_MASKS)
        if r.random() < 0.15:
            g |= 1 << r.randrange(26)
        if r.random() < 0.03:
            g = r.getrandbits(32)
        if r.random() < 0.3:
            g |= __GFP_NOWARN
        return g

    def order(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            return 0
        if x < 0.9:
            return r.randrange(1, 5)
        if x < 0.97:
            return r.randrange(5, 11)
        return r.choice((11, 12, 31, 32, 0x7FFFFFFF, U32, r.getrandbits(32)))

    def size(self):
        r = self.rng
        x = r.random()
        if x < 0.5:
            return r.randrange(1, 3 * PAGE_SIZE)
        if x < 0.8:
            return r.randrange(PAGE_SIZE, 64 * PAGE_SIZE)
        if x < 0.93:
            return r.randrange(64 * PAGE_SIZE, 1024 * PAGE_SIZE)
        return r.choice((0, U32, 0x80000000, 0x7FFFFFFF, 0xFFFFF001, 200 << 20, r.getrandbits(32)))

    def page_ptr(self, pfn):
        return self.memmap + pfn * STRUCT_PAGE

    def pick(self, *kinds, unpinned=False):
        objs = [o for o in self.objs if o.kind in kinds and (not unpinned or not o.pins)]
        return self.rng.choice(objs) if objs else None

    def _new_obj(self, kind, handle, **kw):
        o = Obj(kind, handle, key=self.rng.getrandbits(128).to_bytes(16, "little"), **kw)
        self.objs.append(o)
        return o

    def _drop(self, o):
        if o in self.objs:
            self.objs.remove(o)
            self.dead.append(o)

    def _page_state_ok_to_free(self, pfn):
        """May a hostile __free_pages hit pfn?  Only if Linux itself would refuse it
        or it frees nothing of anyone's: not a page someone holds a reference to,
        unless that page carries a flag or type that the free checks catch."""
        if not 0 <= pfn < self.max_pfn:
            return True
        w = self.mbase + (pfn << 3)
        flags, ref, mapc = self.u32[w + W_FLAGS], _s32(self.u32[w + W_REFCOUNT]), self.u32[w + W_MAPCOUNT]
        if ref <= 0:
            return True
        caught = flags & ((1 << PG_reserved) | (1 << PG_slab)) or (mapc & PAGE_TYPE_BASE == PAGE_TYPE_BASE and mapc != U32)
        return bool(caught) and not any(o.pfn == pfn for o in self.objs)


def _s32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def _ident(name):
    return re.sub(r"\W", "_", name)


def _is_slab(name):
    return name in ("kmem_cache_create", "kmem_cache_destroy", "kmem_cache_shrink", "__slab_alloc",
                    "__slab_free", "kmalloc_large", "ksize", "validate_slab_cache")


def _config_name(config):
    return config if isinstance(config, str) else getattr(config, "name", str(config))
