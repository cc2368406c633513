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

Hostile calls are chosen so that Linux itself would refuse them or they harm
nothing of anyone's: a free of a page someone else holds is made only when
the free checks catch it (a reserved, slab or page-table page always; any
flagged page with CONFIG_DEBUG_VM-style checking, the default here:
debug_vm=True), a double free only while the block is still free.  Bugs
already found are listed in KNOWN_BUGS and steered around unless avoid=() is
given, so that a long run looks for new ones.
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
from mmemu.runtime.abi import (
    HC_DEBUG_BASE, HC_DOORBELL_SIZE, HC_MAILBOX_PHYS, HC_MAX, PERCPU_FIELDS, PERCPU_OFFSET,
)

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
STRUCT_PAGE = 40                # 6.1 686: memcg_data, aligned to 8 bytes
PAGE_WORDS = STRUCT_PAGE // 4
W_FLAGS, W_NEXT, W_MAPCOUNT, W_REFCOUNT = 0, 1, 6, 7
PG_reserved, PG_slab, PG_head = 12, 9, 16
PAGE_TYPE_BASE = 0xF0000000
STOPPING_CALLS = {"exit", "BUG"}
ZERO_SIZE_PTR = 16


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
    config: object = None      # the MachineConfig
    trail: list = field(default_factory=list)    # the last calls, as text
    calls: list = None                           # raw Calls since boot (host driver)

    def __str__(self):
        trail = "\n    ".join(self.trail[-12:])
        return (f"{self.kind} at step {self.step} (seed {self.seed}, {_config_name(self.config)}): "
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


_NUM = re.compile(r"0x[0-9a-fA-F]+|[0-9a-fA-F]*\d[0-9a-fA-F]*")


def killed_by_bug(res):
    """Whether a run ended because the call it was making hit a BUG() or an
    oops of the kernel code mmemu models (refused, and the task killed, as
    in 6.1): a report that says which modelled function it was in."""
    last = "\n" + res.reports[-1] if res.reports else ""
    return "\nkernel BUG at " in last or "\nmmemu: in " in last


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
            for order, fa in enumerate(zone.free_area):
                if (fa.nr_free == 0) != all(head.first < 0 for head in fa.free_list):
                    return (f"zone {zone.node}/{zone.name}: free_area[{order}].nr_free is "
                            f"{fa.nr_free}, its migratetype lists say otherwise")
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
    """Forget the kernel log (dmesg -C)."""
    machine.log.clear()


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

    @staticmethod
    def _spots(obj):
        """(phys, bytes) the pattern occupies: an extent's first and last 16 bytes
        (all of it, when it is 32 bytes or less)."""
        key = obj.key
        for phys, n in obj.extents:
            if n <= 2 * len(key):
                yield phys, (key * 2)[:n]
            else:
                yield phys, key
                yield phys + n - len(key), key

    def write(self, obj):
        u8 = self.u8
        for phys, data in self._spots(obj):
            u8[phys:phys + len(data)] = data

    def damaged(self, obj):
        """The first spot whose pattern changed, as text, or None."""
        u8 = self.u8
        for phys, data in self._spots(obj):
            got = bytes(u8[phys:phys + len(data)])
            if got != data:
                return (f"{obj.kind} 0x{obj.handle:08x} ({obj.size} bytes): pattern at phys "
                        f"0x{phys:08x} is {got.hex()}, wrote {data.hex()}")
        return None

    def zeroed(self, obj):
        """For GFP_ZERO_ and vzalloc: the start of each extent reads zero."""
        u8 = self.u8
        return all(not any(u8[phys:phys + min(n, 64)]) for phys, n in obj.extents)


# -- the host driver ------------------------------------------------------------------

# Realistic gfp masks; hostile ones add random bits.
GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT = 0xCC0, 0xA20, 0x800
GFP_DMA_, GFP_HIGHMEM_, GFP_ZERO_, GFP_NOWARN_, GFP_COMP_ = 0x1, 0x2, 0x100, 0x2000, 0x40000
GFP_NOFAIL_, GFP_THISNODE_, GFP_MOVABLE_ = 0x8000, 0x200000, 0x8
GFP_HIGHUSER = 0x100CC2
GFP_MASKS = (GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_KERNEL | GFP_ZERO_, GFP_HIGHUSER,
             GFP_HIGHUSER | GFP_MOVABLE_, GFP_KERNEL | GFP_DMA_, GFP_ATOMIC | GFP_DMA_,
             GFP_KERNEL | GFP_NOWARN_, GFP_KERNEL | GFP_COMP_, GFP_HIGHUSER | GFP_ZERO_)
VM_IOREMAP, VM_ALLOC, VM_MAP, VM_USERMAP, VM_MAP_PUT_PAGES = 0x1, 0x2, 0x4, 0x8, 0x200
MAX_LIVE = 48

# mmemu bugs this fuzzer found, which the generator steers around unless asked
# not to (HostFuzzer(avoid=())), so that a run can look for new ones.
# Found and fixed since: free-past-mem_map, vmap-flags (see tests/test_fuzz.py).
KNOWN_BUGS = {}     # found and fixed: free-past-mem_map, vmap-flags, slab-pad-check (tests/test_fuzz.py)

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
    "printk": 1, "WARN": 1, "check": 1, "exit": 0.1, "BUG": 0.2, "<unknown>": 0.5,
    "<percpu>": 0,
}


class _Helpers:
    """Small queries on the machine the generators and checks share."""

    def page_pfn(self, ptr):
        """The pfn of a struct page * in mem_map, or None."""
        off = ptr - self.memmap
        if 0 <= off < self.max_pfn * STRUCT_PAGE and off % STRUCT_PAGE == 0:
            return off // STRUCT_PAGE
        return None

    def page_zone(self, pfn):
        return self.u32[self.mbase + (pfn * PAGE_WORDS) + W_FLAGS] >> 30

    def is_highmem(self, pfn):
        return pfn >= self.m.layout.max_low_pfn

    def maps_to(self, va, phys):
        """Whether the page tables map va to phys."""
        return self.m.virt_to_phys(va) == phys

    def extents(self, phys, size, step=64 * 1024):
        return [(p, min(step, phys + size - p)) for p in range(phys, phys + size, step)]

    def scratch_string(self, text=None, terminate=True):
        """A poke that puts a string at the start of the scratch buffer: (addr, pokes)."""
        r = self.rng
        if text is None:
            n = r.choice((0, 1, 5, 16, 63, 64, 200, 1000))
            text = bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz-_%0123456789\n\x01\xff") for _ in range(n))
        data = text + (b"\0" if terminate else b"")
        off = r.randrange(0, 256)
        return self.scratch + off, [(self.scratch_phys + off, data)]

    def string_arg(self):
        """A string pointer argument: a scratch string, unterminated, NULL or wild."""
        x = self.rng.random()
        if x < 0.6:
            return self.scratch_string()
        if x < 0.7:
            return self.scratch_string(terminate=False)
        return self.wild(), []

    def adapt(self, o, what):
        """A post-call hook for calls whose effect on o Linux leaves open:
        drop o if it is gone, keep it otherwise."""
        def post(ret):
            if self._gone(o):
                self._drop(o)
            return None
        return post

    def _gone(self, o):
        if o.kind in ("pages", "gfp", "large"):
            return self._refcount(o.pfn) < 1
        if o.kind in ("vmalloc", "vmap", "ioremap"):
            area = self.m.vmalloc.find_vm_area(o.handle & ~(PAGE_SIZE - 1))
            return area is None or area.addr != o.handle & ~(PAGE_SIZE - 1)
        if o.kind == "cache":
            return self.m.slab.cache_at(o.handle) is None
        return True                 # slab objects: no cheap way to tell, assume freed

    def free_slot(self):
        return len(self.objs) < MAX_LIVE


class _CoreCalls:
    def g_nop(self):
        return self._call("nop")

    def g_printk(self):
        buf, pokes = self.string_arg()
        n = self.rng.choice((0, 1, 10, 100, 1024, 4096, U32, self.rng.getrandbits(32)))
        return self._call("printk", buf, n, pokes=pokes)

    def g_WARN(self):
        f, p1 = self.string_arg()
        c, p2 = self.string_arg()
        return self._call("WARN", f, self.rng.getrandbits(32), c, self.rng.choice((0, 8, U32)),
                          pokes=p1 + p2)

    def g_BUG(self):
        f, p1 = self.string_arg()
        return self._call("BUG", f, self.rng.getrandbits(16), self.wild(), pokes=p1)

    def g_exit(self):
        return self._call("exit", self.rng.choice((0, 1, 255, U32)))

    def g_check(self):
        def post(ret):
            if ret and not self.percpu_dirty:
                return f"HC_CHECK returned {_s32(ret)}: a checker failed"
            return None
        return self._call("check", post=post)


class _PageCalls:
    def g_alloc_pages(self):
        if not self.free_slot():
            return self.g___free_pages()
        r = self.rng
        gfp, order = self.gfp(), self.order()
        nid = r.choice((U32, U32, U32, 0, 1, r.randrange(2, 64), r.getrandbits(32)))
        return self._call("alloc_pages", gfp, order, nid,
                          post=lambda ret: self._got_pages("pages", ret, self.page_pfn(ret), gfp, order))

    def g___get_free_pages(self):
        if not self.free_slot():
            return self.g_free_pages()
        gfp, order = self.gfp(), self.order()

        def post(ret):
            if ret == 0:
                return None
            lowmem_end = PAGE_OFFSET + (self.m.layout.max_low_pfn << PAGE_SHIFT)
            if not PAGE_OFFSET <= ret < lowmem_end or ret % PAGE_SIZE:
                return f"__get_free_pages returned 0x{ret:08x}, not a lowmem page address"
            return self._got_pages("gfp", ret, (ret - PAGE_OFFSET) >> PAGE_SHIFT, gfp, order)
        return self._call("__get_free_pages", gfp, order, post=post)

    def _got_pages(self, kind, ret, pfn, gfp, order):
        """Record a page block the allocator handed out, after checking it."""
        if ret == 0:
            return None
        if pfn is None:
            return f"{kind}: returned 0x{ret:08x}, not a struct page"
        if order >= 11:
            return f"{kind}: an order-{order} request succeeded"
        if pfn % (1 << order) or pfn + (1 << order) > self.max_pfn:
            return f"{kind}: order-{order} block at pfn 0x{pfn:x} is not naturally aligned"
        zone = self.page_zone(pfn)
        zbits = gfp & 0xF
        if zbits in (0, GFP_MOVABLE_) and zone >= 2:
            return f"{kind}: gfp 0x{gfp:x} without GFP_HIGHMEM_ got a page in zone {zone}"
        if zbits == GFP_DMA_ and zone != 0:
            return f"{kind}: gfp 0x{gfp:x} with GFP_DMA_ got a page in zone {zone}"
        if self._refcount(pfn) != 1:
            return f"{kind}: new block at pfn 0x{pfn:x} has refcount {self._refcount(pfn)}"
        size = PAGE_SIZE << order
        o = self._new_obj(kind, ret, size=size, order=order, pfn=pfn,
                          extents=self.extents(pfn << PAGE_SHIFT, size))
        if gfp & GFP_ZERO_ and not self.patterns.zeroed(o):
            return f"{kind}: GFP_ZERO_ block at pfn 0x{pfn:x} is not zeroed"
        self.patterns.write(o)
        return None

    def g___free_pages(self):
        r = self.rng
        x = r.random()
        o = self.pick("pages", unpinned=True)
        if x < 0.55 and o:
            return self._call("__free_pages", o.handle, o.order, post=self._freed(o))
        if x < 0.65:
            d = self._double_free_target("pages")
            if d is not None:
                return self._call("__free_pages", d.handle, d.order)
        if x < 0.72 and o and o.order > 0:
            return self._call("__free_pages", o.handle, r.randrange(o.order), post=self.adapt(o, "smaller"))
        if x < 0.77 and o and o.order < 10:
            big = o.order + r.randrange(1, 3)
            extra = range(o.pfn + (1 << o.order), o.pfn + (1 << big))
            if all(p >= self.max_pfn or self._refcount(p) > 0 for p in extra):
                return self._call("__free_pages", o.handle, big, post=self.adapt(o, "larger"))
        if x < 0.9:
            pfn, order = r.randrange(self.max_pfn), r.choice((0, 0, 0, 1, 2, 5))
            order = self._clamp_order(pfn, order)
            if all(self._page_state_ok_to_free(p) for p in range(pfn, pfn + (1 << order))):
                return self._call("__free_pages", self.page_ptr(pfn), order)
        ptr, order = self.wild(), self.order()
        pfn = self.page_pfn(ptr)
        if pfn is not None and not self._page_state_ok_to_free(pfn):
            ptr |= 4
        return self._call("__free_pages", ptr, self._clamp_order(pfn, order))

    def _clamp_order(self, pfn, order):
        """Steer around a known bug: no block may run past the end of mem_map."""
        if "free-past-mem_map" in self.avoid and pfn is not None and order < 32 \
                and pfn + (1 << order) > self.max_pfn:
            return 0
        return order

    def g_free_pages(self):
        r = self.rng
        x = r.random()
        o = self.pick("gfp", unpinned=True)
        if x < 0.5 and o:
            addr = o.handle + (r.randrange(o.size) if r.random() < 0.2 else 0)
            return self._call("free_pages", addr, o.order, post=self._freed(o))
        if x < 0.6:
            d = self._double_free_target("gfp")
            if d is not None:
                return self._call("free_pages", d.handle, d.order)
        if x < 0.7:
            v = self.pick("vmalloc", "vmap", "ioremap")
            if v is not None:
                return self._call("free_pages", v.handle, r.choice((0, 1, 3)), post=self.adapt(v, "cross"))
        if x < 0.8:
            s = self.pick("slab")
            if s is not None:       # a slab page: Bad page state, not freed
                return self._call("free_pages", s.handle & ~(PAGE_SIZE - 1), 0, post=self.adapt(s, "cross"))
        addr = self.wild()
        if PAGE_OFFSET <= addr < PAGE_OFFSET + (self.max_pfn << PAGE_SHIFT):
            pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
            if not self._page_state_ok_to_free(pfn):
                return self._call("free_pages", self.m.layout.vmalloc_end + 3, 0)
            return self._call("free_pages", addr, 0)
        return self._call("free_pages", addr, self._clamp_order(None, self.order()))

    def _freed(self, o):
        def post(ret):
            self._drop(o)
            return None
        return post

    def _double_free_target(self, kind):
        """A block of ours that was freed and is still free (refcount 0): a true double free."""
        dead = [d for d in self.dead if d.kind == kind and d.pfn >= 0]
        if not dead:
            return None
        d = self.rng.choice(dead)
        span = range(d.pfn, d.pfn + (1 << d.order))
        if all(self._refcount(p) <= 0 for p in span) and not any(
                o.pfn >= 0 and o.pfn < span.stop and span.start < o.pfn + (1 << o.order) for o in self.objs):
            return d
        return None

    def g_page_address(self):
        o = self.pick("pages")
        ptr = o.handle if o is not None and self.rng.random() < 0.6 else \
            self.page_ptr(self.rng.randrange(self.max_pfn))
        if self.rng.random() < 0.2:
            ptr = self.wild()
        pfn = self.page_pfn(ptr)

        def post(ret):
            if pfn is None:
                return f"page_address(0x{ptr:08x}) of a non-page returned 0x{ret:08x}" if ret else None
            if not self.is_highmem(pfn) and ret != PAGE_OFFSET + (pfn << PAGE_SHIFT):
                return f"page_address(pfn 0x{pfn:x}) = 0x{ret:08x}"
            if self.is_highmem(pfn) and ret and not self.maps_to(ret, pfn << PAGE_SHIFT):
                return f"page_address(highmem pfn 0x{pfn:x}) = 0x{ret:08x}, which does not map it"
            return None
        return self._call("page_address", ptr, post=post)

    def g_nr_free_pages(self):
        return self._call("nr_free_pages", self.rng.choice((U32, 0, 1, 2, 3, 4, 63, self.rng.getrandbits(32))))


class _VmallocCalls:
    def _vmalloc_like(self, name, size, *more, zeroed=False):
        if not self.free_slot():
            return self.g_vfree()

        def post(ret):
            if ret == 0:
                return None
            vm = self.m.vmalloc
            if not vm.is_vmalloc_addr(ret) or ret % PAGE_SIZE:
                return f"{name}({size:#x}) returned 0x{ret:08x}, not a vmalloc address"
            npages = -(-size // PAGE_SIZE)
            if size == 0 or npages > self.max_pfn:
                return f"{name}({size:#x}) succeeded"
            pfns = []
            for i in range(npages):
                pfn = vm.vmalloc_to_pfn(ret + i * PAGE_SIZE)
                if pfn is None:
                    return f"{name}({size:#x}) = 0x{ret:08x}: page {i} is not mapped"
                pfns.append(pfn)
            if len(set(pfns)) != len(pfns):
                return f"{name}({size:#x}) = 0x{ret:08x} maps a page twice"
            step = max(1, len(pfns) // 24)
            o = self._new_obj("vmalloc", ret, size=size, pfns=tuple(pfns),
                              extents=[(p << PAGE_SHIFT, PAGE_SIZE) for p in pfns[::step]])
            if zeroed and not self.patterns.zeroed(o):
                return f"{name}({size:#x}) = 0x{ret:08x} is not zeroed"
            self.patterns.write(o)
            return None
        return self._call(name, size, *more, post=post)

    def g_vmalloc(self):
        return self._vmalloc_like("vmalloc", self.size())

    def g_vzalloc(self):
        return self._vmalloc_like("vzalloc", self.size(), zeroed=True)

    def g___vmalloc(self):
        gfp = self.gfp()
        return self._vmalloc_like("__vmalloc", self.size(), gfp, zeroed=bool(gfp & GFP_ZERO_))

    def g_vmalloc_node(self):
        r = self.rng
        return self._vmalloc_like("vmalloc_node", self.size(), r.choice((U32, 0, 1, 2, 64, r.getrandbits(32))))

    def _area_target(self, name, own_kind, cross_kinds):
        """An address for vfree/vunmap/iounmap: ours, another kind's, dead, mid-area, or wild."""
        r = self.rng
        x = r.random()
        o = self.pick(own_kind)
        if x < 0.55 and o:
            return o.handle, self._freed_area(o)
        if x < 0.65:
            c = self.pick(*cross_kinds)
            if c is not None:
                return c.handle, self.adapt(c, "cross")
        if x < 0.75:
            dead = [d for d in self.dead if d.kind in (own_kind,) + cross_kinds]
            if dead:
                d = r.choice(dead)
                if self.m.vmalloc.find_vm_area(d.handle & ~(PAGE_SIZE - 1)) is None:
                    return d.handle, None
        if x < 0.85 and o:
            off = r.choice((1, 4, PAGE_SIZE, r.randrange(1, max(2, o.size + PAGE_SIZE))))
            return o.handle + off, self.adapt(o, "mid-area")
        if x < 0.9:
            s = self.pick("slab", "gfp", "large")
            if s is not None:
                return s.handle, self.adapt(s, "cross")
        addr = self.wild()
        hit = [o for o in self.objs if o.kind in ("vmalloc", "vmap", "ioremap")
               and o.handle & ~(PAGE_SIZE - 1) <= addr < o.handle + max(o.size, 1) + PAGE_SIZE]
        return addr, (self.adapt(hit[0], "wild") if hit else None)

    def _freed_area(self, o):
        def post(ret):
            if not self._gone(o):
                return f"{o.kind} area 0x{o.handle:08x} still there after it was freed"
            self._drop(o)
            if o.kind == "vmap":
                self._unpin(o.pfns)
            return None
        return post

    def _unpin(self, pfns):
        for p in pfns:
            for o in self.objs:
                if o.pfn >= 0 and o.pfn <= p < o.pfn + (1 << o.order) and o.pins:
                    o.pins -= 1

    def g_vfree(self):
        addr, post = self._area_target("vfree", "vmalloc", ("vmap", "ioremap"))
        return self._call("vfree", addr, post=self._also_unpin(post))

    def g_vunmap(self):
        addr, post = self._area_target("vunmap", "vmap", ("vmalloc", "ioremap"))
        return self._call("vunmap", addr, post=self._also_unpin(post))

    def _also_unpin(self, post):
        """After a cross free, vmap areas that went away release their pages."""
        def wrapped(ret):
            problem = post(ret) if post is not None else None
            for o in [o for o in self.objs if o.kind == "vmap" and self._gone(o)]:
                self._drop(o)
                self._unpin(o.pfns)
            return problem
        return wrapped

    def g_vmap(self):
        if not self.free_slot():
            return self.g_vunmap()
        r = self.rng
        pages = [o for o in self.objs if o.kind in ("pages", "gfp")]
        pfns = []
        for o in r.sample(pages, min(len(pages), r.randrange(1, 6))):
            pfns += range(o.pfn, o.pfn + min(1 << o.order, 8))
        entries = [self.page_ptr(p) for p in pfns]
        clean = True
        if r.random() < 0.15 or not entries:
            bad = r.choice((0, self.wild(), self.memmap + 3))
            if self.page_pfn(bad) is not None:
                bad |= 2            # wild() may land on a real struct page
            entries.insert(r.randrange(len(entries) + 1), bad)
            clean = False
        count = len(entries)
        if r.random() < 0.1:
            count = r.choice((0, count + 1, 5000, U32, r.getrandbits(32)))
            clean = False
        cap = self.scratch_size // 4
        if count > cap:
            clean = None            # it reads past the scratch buffer: no verdict
        array = entries[:cap] + [0] * max(0, min(count, cap) - len(entries))
        flags = VM_MAP if r.random() < 0.8 else r.getrandbits(32) & ~VM_MAP_PUT_PAGES
        if "vmap-flags" in self.avoid:
            flags &= VM_MAP | VM_USERMAP
        prot = 0x163 if r.random() < 0.8 else r.choice((0, 0x161, 0x173, r.getrandbits(12)))
        data = b"".join(e.to_bytes(4, "little") for e in array)
        return self._call("vmap", self.scratch, count, flags, prot,
                          pokes=[(self.scratch_phys, data)],
                          post=lambda ret: self._vmapped(ret, pfns, clean, prot))

    def _vmapped(self, ret, pfns, clean, prot):
        if ret == 0:
            return None
        if clean is None:           # mapped whatever followed the buffer: ours to unmap
            self._new_obj("vmap", ret, size=PAGE_SIZE)
            return None
        if not clean:
            return f"vmap of a bad pages array or count returned 0x{ret:08x}"
        if prot & 1:
            for i, p in enumerate(pfns):
                if not self.maps_to(ret + i * PAGE_SIZE, p << PAGE_SHIFT):
                    return f"vmap = 0x{ret:08x}: page {i} does not map pfn 0x{p:x}"
        for p in pfns:
            for o in self.objs:
                if o.pfn >= 0 and o.pfn <= p < o.pfn + (1 << o.order):
                    o.pins += 1
        self._new_obj("vmap", ret, size=len(pfns) * PAGE_SIZE, pfns=tuple(pfns))
        return None

    def g_vmalloc_to_page(self):
        o = self.pick("vmalloc")
        if o is not None and self.rng.random() < 0.7:
            i = self.rng.randrange(len(o.pfns))
            want = self.page_ptr(o.pfns[i])
            return self._call("vmalloc_to_page", o.handle + i * PAGE_SIZE + self.rng.randrange(PAGE_SIZE),
                              post=lambda ret: None if ret == want else
                              f"vmalloc_to_page gave 0x{ret:08x}, want 0x{want:08x}")
        return self._call("vmalloc_to_page", self.wild())

    def g_ioremap(self):
        if not self.free_slot():
            return self.g_iounmap()
        r = self.rng
        devs = self.m.cfg.devices
        x = r.random()
        if x < 0.5 and devs:
            d = r.choice(devs)
            phys = d.base + r.randrange(d.size)
            size = r.choice((1, 4, PAGE_SIZE, d.size - (phys - d.base), r.randrange(1, 4 * PAGE_SIZE)))
        else:
            ram_end = max(rr.end for rr in self.m.cfg.ram)
            phys = r.choice((0, 0x9fc00, 0x9f000, 0xa0000, 0xc0000, 0xf0000, 0x100000, ram_end - PAGE_SIZE,
                             ram_end, 0xE0000000, 0xFEC00000, 0xFFFFF000, r.randrange(ram_end),
                             r.getrandbits(32)))
            size = r.choice((0, 1, PAGE_SIZE, 0x400, 1 << 20, U32, 0x80000000, r.getrandbits(32)))

        def post(ret):
            if ret == 0:
                return None
            if not self.m.vmalloc.is_vmalloc_addr(ret) or ret % PAGE_SIZE != phys % PAGE_SIZE:
                return f"ioremap(0x{phys:x}, {size:#x}) = 0x{ret:08x}"
            if not self.maps_to(ret & ~(PAGE_SIZE - 1), phys & ~(PAGE_SIZE - 1)):
                return f"ioremap(0x{phys:x}) = 0x{ret:08x} does not map phys 0x{phys:x}"
            self._new_obj("ioremap", ret, size=size)
            return None
        return self._call("ioremap", phys, size, post=post)

    def g_iounmap(self):
        r = self.rng
        if r.random() < 0.1:        # lowmem RAM: ignored as Linux ignores it
            o = self.pick("gfp", "slab")
            if o is not None:
                return self._call("iounmap", o.handle)
        addr, post = self._area_target("iounmap", "ioremap", ("vmalloc", "vmap"))
        return self._call("iounmap", addr, post=self._also_unpin(post))


class _HighmemCalls:
    def _some_page(self):
        """A struct page * to map: one of ours (HighMem first), any page, or wild."""
        r = self.rng
        x = r.random()
        own = [o for o in self.objs if o.kind == "pages"]
        high = [o for o in own if self.is_highmem(o.pfn)]
        if x < 0.5 and (high or own):
            o = r.choice(high or own)
            k = r.randrange(1 << o.order)
            return o.handle + STRUCT_PAGE * k, o.pfn + k
        if x < 0.85:
            pfn = r.randrange(self.max_pfn)
            return self.page_ptr(pfn), pfn
        ptr = self.wild()
        return ptr, self.page_pfn(ptr)

    def _maps(self, what, pfn):
        def post(ret):
            if ret and pfn is None:
                return f"{what} of a non-page returned 0x{ret:08x}"
            if ret and not self.maps_to(ret & ~(PAGE_SIZE - 1), pfn << PAGE_SHIFT):
                return f"{what}(pfn 0x{pfn:x}) = 0x{ret:08x}, which does not map it"
            if ret and what == "kmap":
                self.kmaps[pfn] += 1
            return None
        return post

    def g_kmap(self):
        ptr, pfn = self._some_page()
        return self._call("kmap", ptr, post=self._maps("kmap", pfn))

    def g_kunmap(self):
        r = self.rng
        mapped = [p for p, n in self.kmaps.items() if n > 0]
        if mapped and r.random() < 0.7:
            pfn = r.choice(mapped)
            self.kmaps[pfn] -= 1
            return self._call("kunmap", self.page_ptr(pfn))
        ptr, _ = self._some_page()
        return self._call("kunmap", ptr)

    def g_kmap_atomic(self):
        ptr, pfn = self._some_page()
        return self._call("kmap_atomic", ptr, post=self._maps("kmap_atomic", pfn))

    def g_kmap_local_page(self):
        ptr, pfn = self._some_page()
        return self._call("kmap_local_page", ptr, post=self._maps("kmap_local_page", pfn))

    def _some_pfn(self):
        r = self.rng
        if r.random() < 0.85:
            pfn = r.randrange(self.max_pfn)
            return pfn, pfn
        w = r.choice((self.max_pfn, self.max_pfn + 1, 0x100000, U32, r.getrandbits(32)))
        return w, (w if w < self.max_pfn else None)    # a random word may be a real pfn

    def g_kmap_local_pfn(self):
        arg, pfn = self._some_pfn()
        return self._call("kmap_local_pfn", arg, post=self._maps("kmap_local_pfn", pfn))

    def g_kmap_atomic_pfn(self):
        arg, pfn = self._some_pfn()
        return self._call("kmap_atomic_pfn", arg, post=self._maps("kmap_atomic_pfn", pfn))

    def _unmap_local_target(self):
        from mmemu.layout import FIX_KMAP_BEGIN as BEGIN, fix_to_virt as _fix_to_virt
        r = self.rng
        depth = self.m.sched.kmap_local_idx
        x = r.random()
        if x < 0.65 and 0 < depth <= 16:
            return _fix_to_virt(BEGIN + depth - 1) + r.choice((0, 0, 8))
        if x < 0.8:
            return _fix_to_virt(BEGIN + r.randrange(16 * 2))
        if x < 0.9:
            return PAGE_OFFSET + r.randrange(self.m.layout.max_low_pfn << PAGE_SHIFT)
        return self.wild()

    def g_kunmap_atomic(self):
        return self._call("kunmap_atomic", self._unmap_local_target())

    def g_kunmap_local(self):
        return self._call("kunmap_local", self._unmap_local_target())

    def _fix_idx(self):
        from mmemu.layout import END_OF_FIXED, FIX_KMAP_BEGIN as BEGIN, FIX_KMAP_END as END
        r = self.rng
        if r.random() < 0.8:
            idx = r.randrange(END_OF_FIXED)
            return idx if not BEGIN <= idx <= END else 1
        return r.choice((END_OF_FIXED, END_OF_FIXED + 1, 0x10000, U32, r.getrandbits(32)))

    def g___set_fixmap(self):
        r = self.rng
        flags = r.choice((0x163, 0x161, 0x17b, 0, 0x173, r.getrandbits(12), r.getrandbits(32)))
        return self._call("__set_fixmap", self._fix_idx(), self.wild(), flags)

    def g_clear_fixmap(self):
        return self._call("clear_fixmap", self._fix_idx())


class _SchedCalls:
    def g___might_sleep(self):
        f, pokes = self.string_arg()
        return self._call("__might_sleep", f, self.rng.getrandbits(32), pokes=pokes)

    def g_preempt_count_sub(self):
        r = self.rng
        return self._call("preempt_count_sub", r.choice((1, 1, 2, 0x100, 0x200, 0x10000, 0x80000000, U32,
                                                         r.getrandbits(32))))

    def g_spin_bug(self):
        r = self.rng
        return self._call("spin_bug", r.choice((self.scratch, self.wild())), r.choice((1, 2, 0, 3, U32)))


class _SlabCalls:
    def kmalloc_caches(self):
        sl = self.m.slab
        return [s.addr for row in sl.kmalloc_caches for s in row if s]

    def some_cache(self, own_only=False):
        """A struct kmem_cache *: ours, a kmalloc cache, a dead one, or a bogus pointer."""
        r = self.rng
        x = r.random()
        o = self.pick("cache")
        if x < 0.5 and o:
            return o.handle
        if x < 0.8 and not own_only:
            return r.choice(self.kmalloc_caches())
        if x < 0.88:
            dead = [d for d in self.dead if d.kind == "cache"]
            if dead and self.m.slab.cache_at(dead[-1].handle) is None:
                return dead[-1].handle
        s = self.pick("slab")
        if x < 0.94 and s is not None:
            return s.handle          # an object, not a cache
        return self.wild() | 1

    def g_kmem_cache_create(self):
        if not self.free_slot():
            return self.g_kmem_cache_destroy()
        r = self.rng
        name, pokes = self.string_arg() if r.random() < 0.2 else self.scratch_string(
            f"fuzz-{r.randrange(1000)}".encode())
        size = r.choice((r.randrange(1, 300), r.randrange(1, 9000), 8, 4096, 8192, 0, 1 << 22, (1 << 22) + 1,
                         U32, r.getrandbits(32)))
        align = r.choice((0, 0, 8, 64, 4096, 3, 24, 1 << 20, U32))
        flags = r.choice((0, 0, 0x2000, 0x100 | 0x400 | 0x800 | 0x10000, 0x400, 0x800, 0x4000, 0x20000,
                          0x80000, 0x40000 if r.random() < 0.05 else 0, r.getrandbits(32) & ~0x40000))
        ctor = 0 if r.random() < 0.9 else self.wild()
        if "slab-pad-check" in self.avoid:
            flags &= ~0x800             # SLAB_POISON

        def post(ret):
            if ret:
                s = self.m.slab.cache_at(ret)
                if s is None:
                    return f"kmem_cache_create returned 0x{ret:08x}, not a live cache"
                self._new_obj("cache", ret, size=s.object_size)
            return None
        return self._call("kmem_cache_create", name, size, align, flags, ctor, pokes=pokes, post=post)

    def g_kmem_cache_destroy(self):
        r = self.rng
        o = self.pick("cache")
        if o is not None and r.random() < 0.7:
            live = [s for s in self.objs if s.kind == "slab" and s.cache == o.handle]
            if r.random() < 0.7:     # empty it first: free its objects from the model's view
                for s in live:
                    return self._call("__slab_free", o.handle, s.handle, post=self._slab_freed(s))
            return self._call("kmem_cache_destroy", o.handle, post=self._destroyed(o, live))
        s = self.some_cache()
        if s in self.kmalloc_caches() or any(c.handle == s for c in self.objs):
            s = self.wild() | 2
        return self._call("kmem_cache_destroy", s)

    def _destroyed(self, o, live):
        def post(ret):
            if self._gone(o):
                if live:
                    return f"kmem_cache_destroy freed cache 0x{o.handle:08x} with {len(live)} live objects"
                self._drop(o)
            return None
        return post

    def g_kmem_cache_shrink(self):
        return self._call("kmem_cache_shrink", self.some_cache())

    def g_validate_slab_cache(self):
        s = self.some_cache()
        known = s in self.kmalloc_caches() or any(c.handle == s for c in self.objs if c.kind == "cache")

        def post(ret):
            if known and _s32(ret) > 0 and not self.percpu_dirty:
                return f"validate_slab_cache(0x{s:08x}) found {ret} errors"
            return None
        return self._call("validate_slab_cache", s, post=post)

    def g___slab_alloc(self):
        if not self.free_slot():
            return self.g___slab_free()
        s = self.some_cache()
        gfp = self.gfp()

        def post(ret):
            if ret == 0:
                return None
            c = self.m.slab.cache_at(s)
            if c is None:
                return f"__slab_alloc(0x{s:08x}) of a non-cache returned 0x{ret:08x}"
            if not PAGE_OFFSET <= ret < PAGE_OFFSET + (self.m.layout.max_low_pfn << PAGE_SHIFT):
                return f"__slab_alloc({c.name}) returned 0x{ret:08x}, not lowmem"
            if any(o.kind == "slab" and o.handle == ret for o in self.objs):
                return f"__slab_alloc({c.name}) returned 0x{ret:08x}, which is live already"
            o = self._new_obj("slab", ret, size=c.object_size, cache=s,
                              extents=[(ret - PAGE_OFFSET, c.object_size)])
            self.patterns.write(o)
            return None
        return self._call("__slab_alloc", s, gfp, post=post)

    def _slab_freed(self, o):
        def post(ret):
            self._drop(o)
            self.last_slab_free = (o, self.result.calls)
            return None
        return post

    def g___slab_free(self, kfree=False):
        r = self.rng
        x = r.random()
        o = self.pick("slab")
        big = self.pick("large")
        if x < 0.1 and big is not None:
            return self._call("__slab_free", 0, big.handle, post=self._freed(big))
        if x < 0.6 and o:
            s = 0 if r.random() < 0.5 or not o.cache else o.cache
            return self._call("__slab_free", s, o.handle, post=self._slab_freed(o))
        last = self.last_slab_free
        if x < 0.7 and last is not None and last[1] == self.result.calls:
            d = last[0]                 # immediately again: SLUB's naive check catches it
            return self._call("__slab_free", r.choice((0, d.cache)), d.handle)
        if x < 0.75 and o:            # the wrong cache: freed to the right one (with a warning) or not
            c = r.choice(self.kmalloc_caches())
            return self._call("__slab_free", c, o.handle, post=self.adapt(o, "wrong cache"))
        if x < 0.85:                  # kfree of something not from kmalloc
            v = self.pick("vmalloc", "vmap", "ioremap", "pages", "gfp", "large")
            if v is not None:
                return self._call("__slab_free", 0, v.handle, post=self.adapt(v, "kfree cross"))
        x_ = self.wild()
        pfn = (x_ - PAGE_OFFSET) >> PAGE_SHIFT if x_ >= PAGE_OFFSET else -1
        if 0 <= pfn < self.max_pfn:
            flags = self.u32[self.mbase + (pfn * PAGE_WORDS) + W_FLAGS]
            head = self.u32[self.mbase + (pfn * PAGE_WORDS) + W_NEXT]
            if flags & ((1 << PG_slab) | (1 << PG_head)) or head & 1:
                x_ = self.m.layout.vmalloc_end + 16
        return self._call("__slab_free", r.choice((0, 0, self.some_cache())), x_)

    def g_kmalloc_large(self, size=None):
        if not self.free_slot():
            return self.g___slab_free()
        r = self.rng
        if size is None:
            size = r.choice((r.randrange(8193, 1 << 20), r.randrange(8193, 1 << 22), 1 << 22,
                             (1 << 22) + 1, 0, 1, 4096, U32, r.getrandbits(32)))
        gfp = self.gfp()

        def post(ret):
            if size == 0:
                return None if ret in (0, ZERO_SIZE_PTR) else f"kmalloc(0) = 0x{ret:08x}"
            if ret == 0:
                return None
            if size > 1 << 22:
                return f"kmalloc_large({size:#x}) succeeded"
            if not PAGE_OFFSET <= ret < PAGE_OFFSET + (self.m.layout.max_low_pfn << PAGE_SHIFT):
                return f"kmalloc({size:#x}) = 0x{ret:08x}, not lowmem"
            pfn = (ret - PAGE_OFFSET) >> PAGE_SHIFT
            kind = "large" if size > 8192 else "slab"
            o = self._new_obj(kind, ret, size=size, pfn=pfn if kind == "large" else -1,
                              extents=self.extents(ret - PAGE_OFFSET, size))
            self.patterns.write(o)
            return None
        return self._call("kmalloc_large", size, gfp, post=post)

    def g_kmalloc(self):
        if not self.free_slot():
            return self.g_kfree()
        call = self.g_kmalloc_large()
        r = self.rng
        if r.random() < 0.6:       # kmalloc's own sizes, mostly from the caches
            size = r.choice((r.randrange(1, 257), r.randrange(1, 8193), 0, 8192, 8193))
            call = self.g_kmalloc_large(size)
        return self._call("kmalloc", *call.args, post=call.post)

    def g_kfree(self):
        call = self.g___slab_free(kfree=True)
        return self._call("kfree", call.args[1], post=call.post)

    def g_ksize(self):
        o = self.pick("slab", "large")
        if o is not None and self.rng.random() < 0.7:
            return self._call("ksize", o.handle, post=lambda ret: None if ret >= o.size else
                              f"ksize(0x{o.handle:08x}) = {ret} < {o.size}")
        return self._call("ksize", self.wild())


class HostFuzzer(_Helpers, _CoreCalls, _PageCalls, _VmallocCalls, _HighmemCalls,
                 _SchedCalls, _SlabCalls):
    """The raw hypercall fuzzer: the stub asks, the host writes the mailbox.

    config: a machine config name or MachineConfig; seed: the PRNG seed;
    check_every: calls between full checks; reboot_every: calls per machine
    (each machine's calls since boot are the reproduction of a failure);
    percpu: also corrupt the per-cpu words the guest owns (preempt_count,
    kmap_atomic_idx), after which only host exceptions count as failures.
    """

    def __init__(self, config="pc-16m", seed=0, check_every=500, reboot_every=20000,
                 chunk=2000, percpu=False, slab=True, log_calls=True, debug_vm=True,
                 avoid=tuple(KNOWN_BUGS)):
        self.config = machine_config(config, debug_vm=debug_vm)
        self.seed, self.debug_vm = seed, self.config.debug_vm
        self.check_every, self.reboot_every, self.chunk = check_every, reboot_every, chunk
        self.percpu, self.slab, self.log_calls = percpu, slab, log_calls
        self.avoid = set(avoid)
        self.rng = random.Random(seed)
        self.sample_rng = random.Random(f"sample-{seed}")   # apart: checking never changes the calls
        self.sample = 4
        self.result = FuzzResult()
        self.trail = deque(maxlen=40)
        self.m = None
        self._elf = None
        self._script = None            # replay(): the calls to issue instead of generating

    # -- machines and runs ----------------------------------------------
    def _boot(self):
        from mmemu.machine import Machine
        from mmemu.runtime.build import build
        m = self.m = Machine(self.config, echo=False)
        if self._elf is None:
            self._elf = build(str(STUB), image=m.kernel_image)
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
        self.names = [c.name for c in self.calls] + ["<unknown>"]
        self.weights = [WEIGHTS.get(n, 1) if self.slab or not _is_slab(n) else 0 for n in self.names]
        if self.percpu:
            self.names.append("<percpu>")
            self.weights.append(0.3)
        self.objs, self.dead, self.kmaps = [], deque(maxlen=64), Counter()
        self.step_on_machine, self.pending, self.percpu_dirty = 0, None, False
        self.since_boot = []
        self.last_slab_free = None
        self.result.boots += 1

    def run(self, ncalls, deadline=None):
        """Make ncalls calls (fewer if deadline, a time.monotonic(), passes): a FuzzResult."""
        t0 = time.monotonic()
        self.target = self.result.calls + ncalls
        self.deadline = deadline
        while self.result.calls < self.target and not self.result.failures:
            if deadline is not None and time.monotonic() > deadline:
                break
            if self._script is not None and not self._script and self.m is not None:
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
        asked = pending is not None and (
            (res.reason, pending.name) in (("exit", "exit"), ("bug", "BUG"))
            or (res.reason in ("bug", "oops") and killed_by_bug(res))   # a kernel BUG or oops
            or (res.reason == "panic" and pending.name == "kmem_cache_create"))   # SLAB_PANIC
        if res.reason == "error" or self.watch.errors:
            self._fail("error", "\n".join(self.watch.errors) or res.log[-3000:])
        elif asked:
            self._account(pending, 0)           # the guest asked for it
            if res.reason == "panic":
                self.m = None                   # a panicked machine stays down
        elif res.reason == "exit" and res.exit_code not in (0, None):
            self._fail("stopped", f"stub exited with {res.exit_code}")
        elif res.reason != "exit":
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
        if self._script is not None:
            call = self._script.pop(0) if self._script else None
        else:
            call = self._generate()
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
        self.result.by_call["<unknown>" if call.name.startswith("<nr") else call.name] += 1
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
        problem = self.watch.cheap() or self._liveness() or self._sample_patterns(self.sample)
        if not problem and self.step_on_machine % self.check_every == 0:
            problem = self.watch.full() or self._sample_patterns(len(self.objs))
            if problem:
                return self._fail("check", problem)
        if problem:
            return self._fail("check" if "pattern" not in problem else "pattern", problem)
        return False

    def _fail(self, kind, detail):
        self.result.failures.append(Failure(
            kind, self.result.calls, detail, self.seed, self.config,
            list(self.trail), list(self.since_boot) if self.log_calls else None))
        return True

    # -- model checks ----------------------------------------------------------
    def _refcount(self, pfn):
        return _s32(self.u32[self.mbase + (pfn * PAGE_WORDS) + W_REFCOUNT])

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
        objs = self.objs if n >= len(self.objs) else self.sample_rng.sample(self.objs, n)
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
        nr = r.choice(free) if r.random() < 0.8 else r.randrange(HC_MAX, HC_DOORBELL_SIZE // 4)
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
            g |= GFP_NOWARN_
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
        w = self.mbase + (pfn * PAGE_WORDS)
        flags, ref, mapc = self.u32[w + W_FLAGS], _s32(self.u32[w + W_REFCOUNT]), self.u32[w + W_MAPCOUNT]
        if ref <= 0:
            return True
        if ref > 1 or any(o.pfn == pfn for o in self.objs):
            return False            # dropping someone's reference is silent in Linux too
        if flags & (1 << PG_reserved):
            return True             # reserved at boot: refused even without CONFIG_DEBUG_VM
        typed = mapc & PAGE_TYPE_BASE == PAGE_TYPE_BASE and mapc != U32
        # 6.1 without CONFIG_DEBUG_VM would free a slab or page-table page under
        # its user; mmemu checks those pages always (page.checked_free_only()).
        return bool(flags & (1 << PG_slab) or typed)


def _s32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def _ident(name):
    return re.sub(r"\W", "_", name)


def _is_slab(name):
    return name in ("kmem_cache_create", "kmem_cache_destroy", "kmem_cache_shrink", "__slab_alloc",
                    "__slab_free", "kmalloc_large", "ksize", "validate_slab_cache")


# Machines the fuzzers use: small ones, so that machine.check() stays cheap;
# one with HighMem (kmap has real work) and one with two nodes (nid arguments).
FUZZ_CONFIGS = {
    "pc-16m": ("pc-16m", {}),
    "pc-128m-highmem": ("pc-128m", {"highmem": 32 << 20}),   # highmem=32M: 96 MiB lowmem
    "numa-2n": ("numa-2n", {}),
}


def fuzz_config(name, debug_vm=True):
    """A MachineConfig by FUZZ_CONFIGS name (or any config name or path)."""
    base, changes = FUZZ_CONFIGS.get(name, (name, {}))
    cfg = machine_config(base, debug_vm=debug_vm, **changes)
    if name in FUZZ_CONFIGS:
        cfg.name = name
    return cfg


def machine_config(config, **changes):
    """A MachineConfig from a name, path or MachineConfig, with fields changed
    (a change of None leaves the field as it is)."""
    import dataclasses
    from mmemu.config import MachineConfig, load_config
    cfg = config if isinstance(config, MachineConfig) else load_config(config)
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _config_name(config):
    return config if isinstance(config, str) else getattr(config, "name", str(config))


# -- the guest driver ------------------------------------------------------------------

# guest/tests/fuzz.c's ops and failure codes, in its enum order.
GUEST_OPS = ("alloc_pages", "__free_pages", "__get_free_pages", "free_pages", "kmalloc", "kfree",
             "krealloc", "kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free",
             "kmem_cache_destroy", "kmem_cache_shrink", "vmalloc", "vfree", "vmap", "vunmap",
             "ioremap", "iounmap", "kmap", "kunmap", "kmap_atomic nest", "GFP_ATOMIC in spinlock",
             "check one", "hostile free", "hostile vm", "hostile slab", "hostile kmap")
GUEST_FAILS = {1: "pattern damaged", 2: "memory not zeroed", 3: "page from the wrong zone",
               4: "HC_CHECK failed", 5: "validate_slab_cache found errors", 6: "ksize too small",
               7: "mapping does not show the page", 8: "krealloc lost the contents",
               9: "block not naturally aligned"}
OP_DONE = 0xFFFF
P_SEED, P_CALLS, P_CHECK_EVERY, P_FLAGS, P_DEV_BASE, P_DEV_SIZE = range(6)
F_HOSTILE, F_NO_POISON = 2, 4                    # bit 0 was F_DEBUG_VM


class GuestFuzzer:
    """Run guest/tests/fuzz.c: the realistic mix, through the SDK's own wrappers.

    The program reports each op (HC_FUZZ_STEP); the host runs its cheap
    checks then, and machine.check() every check_every ops (the program
    also asks for it, HC_CHECK, and verifies every pattern itself).  It runs
    in chunks of ``chunk`` ops: main() returns and is run again, carrying on
    from its globals, so reports and the log never pile up.
    """

    def __init__(self, config="pc-16m", seed=0, check_every=500, chunk=3000, hostile=True,
                 debug_vm=True, avoid=tuple(KNOWN_BUGS)):
        self.config = machine_config(config, debug_vm=debug_vm)
        self.avoid = set(avoid)
        self.seed, self.check_every, self.chunk, self.hostile = seed, check_every, chunk, hostile
        self.result = FuzzResult()
        self.trail = deque(maxlen=40)

    def _boot(self, ncalls):
        from mmemu.machine import Machine
        m = self.m = Machine(self.config, echo=False)
        m.load(str(GUEST_PROGRAM))
        self.watch = Watch(m, self.check_every)
        dev = next((d for d in m.cfg.devices if d.model == "framebuffer"), None)
        self.params = {P_SEED: random.Random(self.seed).getrandbits(32) | 1, P_CALLS: ncalls,
                       P_CHECK_EVERY: self.check_every,
                       P_FLAGS: (F_HOSTILE if self.hostile else 0)
                       | (F_NO_POISON if "slab-pad-check" in self.avoid else 0),
                       P_DEV_BASE: dev.base if dev else 0, P_DEV_SIZE: dev.size if dev else 0}
        t = m.runtime.table
        t.register(HC_FUZZ_PARAM, "fuzz_param", lambda i: self.params.get(i, 0), 1)
        t.register(HC_FUZZ_STEP, "fuzz_step", self._step, 5)
        t.register(HC_FUZZ_FAIL, "fuzz_fail", self._guest_fail, 4)
        self.done = False
        self.result.boots += 1

    def run(self, ncalls, deadline=None):
        """Run the program for ncalls ops on a fresh machine: a FuzzResult."""
        t0 = time.monotonic()
        self.deadline = deadline
        self._boot(ncalls)
        while not self.done and not self.result.failures:
            self.chunk_end = self.result.calls + self.chunk
            res = self.m.run(timeout=3600)
            self.result.runs += 1
            self.result.reports.update(report_kind(r) for r in res.reports)
            trim_log(self.m)
            if res.reason == "error" or self.watch.errors:
                self._fail("error", "\n".join(self.watch.errors) or res.log[-3000:])
            elif res.reason in ("bug", "oops") and killed_by_bug(res):
                self.result.by_call["killed by a BUG"] += 1     # the op died with the task
            elif res.reason != "exit" or res.exit_code != 0:
                self._fail(res.reason, "\n".join(res.reports)[-4000:] or f"exit {res.exit_code}")
            elif deadline is not None and time.monotonic() > deadline:
                break
        if self.done and not self.result.failures:
            problem = self.watch.full()
            if problem:
                self._fail("check", "after the teardown: " + problem)
        self.result.seconds += time.monotonic() - t0
        return self.result

    def _step(self, step, op, a0, a1, ret):
        """HC_FUZZ_STEP: account, check; 1 ends the chunk."""
        if op == OP_DONE:
            self.done = True
            return 1
        name = GUEST_OPS[op] if op < len(GUEST_OPS) else f"op {op}"
        self.result.calls += 1
        self.result.by_call[name] += 1
        self.trail.append(f"#{step} {name}(0x{a0:x}, 0x{a1:x}) = 0x{ret:x}")
        problem = self.watch.cheap()
        if not problem and step % self.check_every == 0:
            problem = self.watch.full()
        if problem:
            self._fail("check", problem)
            return 1
        return int(self.result.calls >= self.chunk_end)

    def _guest_fail(self, what, addr, want, got):
        self._fail("guest", f"{GUEST_FAILS.get(what, what)} at 0x{addr:08x}: want 0x{want:x}, "
                            f"got 0x{got:x}")
        return 0

    def _fail(self, kind, detail):
        self.result.failures.append(Failure(kind, self.result.calls, detail, self.seed,
                                            self.config, list(self.trail)))

# -- reproducing a failure ------------------------------------------------------------

def replay(config, calls, check_every=10**9, debug_vm=None, replayer=None):
    """Issue calls (raw Calls, as Failure.calls holds them) on a fresh machine.

    Returns the first Failure (a final machine.check() included), or None.
    replayer: the HostFuzzer class that made them, if a subclass.
    """
    cls = replayer or HostFuzzer
    f = cls(config, seed=None, check_every=check_every, log_calls=False, debug_vm=debug_vm)
    f._script = [Call(c.nr, c.args, c.name, c.pokes) for c in calls]
    f.run(len(calls) + 1)
    if not f.result.failures and f.m is not None:
        problem = f.watch.full()
        if problem:
            f._fail("check", problem)
    return f.result.failures[0] if f.result.failures else None


def minimize(config, calls, kind, deadline=None, log=None, replayer=None):
    """Shrink calls to a short list that still fails with kind (ddmin over complements).

    deadline: a time.monotonic() after which the smallest list so far is returned.
    """
    def fails(seq):
        got = replay(config, seq, replayer=replayer)
        return got is not None and got.kind == kind

    calls = list(calls)
    n = 2
    while len(calls) >= 2:
        if deadline is not None and time.monotonic() > deadline:
            break
        chunk = -(-len(calls) // n)
        for i in range(n):
            candidate = calls[:i * chunk] + calls[(i + 1) * chunk:]
            if candidate and fails(candidate):
                calls, n = candidate, max(n - 1, 2)
                if log:
                    log(f"minimize: {len(calls)} calls")
                break
        else:
            if n >= len(calls):
                break
            n = min(2 * n, len(calls))
    return calls


def format_calls(calls):
    """Calls as a numbered list, with the scratch strings they poke."""
    lines = []
    for i, c in enumerate(calls, 1):
        extra = "".join(f"  [poke 0x{p:x}: {bytes(d[:48])!r}]" for p, d in c.pokes)
        lines.append(f"{i:4d}  {c}{extra}")
    return "\n".join(lines)
