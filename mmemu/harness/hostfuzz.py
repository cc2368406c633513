"""The raw hypercall driver: guest/tests/fuzz_stub.c asks the host for each
call (HC_FUZZ_NEXT), the host writes whatever mailbox words it likes and the
stub executes the one ``in`` instruction.

It reaches argument combinations the C wrappers forbid (wild, NULL,
misaligned and unmapped pointers, huge sizes, bad orders, double frees,
frees into the wrong allocator, bogus caches), and every registered call,
including ones added after this module was written (they get random words).
After every call: no host exception, the cheap checks, a sample of live
patterns; every ``check_every`` calls, machine.check() and every pattern.

    >>> r = HostFuzzer("pc-16m", seed=1).run(2000)
    >>> r.failures
    []
"""
import random
import time
from collections import Counter, deque
from pathlib import Path

from mmemu.harness.checks import (
    KILLS, Obj, Patterns, Watch, killed_by_bug, report_kind, trim_log,
)
from mmemu.harness.hostcalls import (
    GFP_MASKS, GFP_NOWARN_, PAGE_TYPE_BASE, PAGE_WORDS, STRUCT_PAGE, U32, W_FLAGS, W_MAPCOUNT,
    W_REFCOUNT, WEIGHTS, CoreCalls, Helpers, HighmemCalls, PageCalls, PG_reserved, PG_slab,
    SchedCalls, SlabCalls, VmallocCalls, ident, is_slab_call, s32,
)
from mmemu.harness.machines import machine_config
from mmemu.harness.records import Call, Failure, FuzzResult
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE
from mmemu.machine import Machine
from mmemu.runtime.abi import (
    HC_DEBUG_BASE, HC_DOORBELL_SIZE, HC_MAILBOX_PHYS, HC_MAX, PERCPU_FIELDS, PERCPU_OFFSET,
)
from mmemu.runtime.build import build
from mmemu.runtime.guest import FUZZ_MAX_INSNS

HC_FUZZ_NEXT = HC_DEBUG_BASE + 0     # (previous result) -> next nr, or -1; args in the mailbox
HC_FUZZ_HELLO = HC_DEBUG_BASE + 1    # (scratch, size): where the stub's scratch buffer is

STUB = Path(__file__).resolve().parents[2] / "guest" / "tests" / "fuzz_stub.c"
MB = HC_MAILBOX_PHYS >> 2
PERCPU_WORD = (HC_MAILBOX_PHYS + PERCPU_OFFSET) >> 2


class HostFuzzer(Helpers, CoreCalls, PageCalls, VmallocCalls, HighmemCalls,
                 SchedCalls, SlabCalls):
    """The raw hypercall fuzzer: the stub asks, the host writes the mailbox.

    config: a machine config name or MachineConfig; seed: the PRNG seed;
    check_every: calls between full checks; reboot_every: calls per machine
    (each machine's calls since boot are the reproduction of a failure);
    percpu: also corrupt the per-cpu words the guest owns (preempt_count,
    kmap_atomic_idx), after which only host exceptions count as failures.
    """

    def __init__(self, config="pc-16m", seed=0, check_every=500, reboot_every=20000,
                 chunk=2000, percpu=False, slab=True, log_calls=True, debug_vm=True):
        self.config = machine_config(config, debug_vm=debug_vm)
        self.seed, self.debug_vm = seed, self.config.debug_vm
        self.check_every, self.reboot_every, self.chunk = check_every, reboot_every, chunk
        self.percpu, self.slab, self.log_calls = percpu, slab, log_calls
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
        self.weights = [WEIGHTS.get(n, 1) if self.slab or not is_slab_call(n) else 0 for n in self.names]
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

    def _run_chunk(self, timeout):
        """Run the stub for the next chunk of calls: (the run's result, the
        call it was in when it stopped, or None)."""
        m = self.m
        self.chunk_end = min(self.target, self.result.calls + self.chunk)
        res = m.run(max_insns=FUZZ_MAX_INSNS, timeout=timeout)
        self.result.runs += 1
        self.result.reports.update(report_kind(r) for r in res.reports)
        trim_log(m)
        pending, self.pending = self.pending, None
        return res, pending

    def _one_run(self):
        res, pending = self._run_chunk(timeout=3600)
        asked = pending is not None and (
            (res.reason, pending.name) in (("exit", "exit"), ("bug", "BUG"))
            or (res.reason in KILLS and killed_by_bug(res))   # a kernel BUG or oops
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
        return s32(self.u32[self.mbase + (pfn * PAGE_WORDS) + W_REFCOUNT])

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
        gen = getattr(self, "g_" + ident(name), None)
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
        flags, ref, mapc = self.u32[w + W_FLAGS], s32(self.u32[w + W_REFCOUNT]), self.u32[w + W_MAPCOUNT]
        if ref <= 0:
            return True
        if ref > 1 or any(o.pfn == pfn for o in self.objs):
            return False            # dropping someone's reference is silent in Linux too
        if flags & (1 << PG_reserved):
            return True             # reserved at boot: refused even without CONFIG_DEBUG_VM
        typed = mapc & PAGE_TYPE_BASE == PAGE_TYPE_BASE and mapc != U32
        # 6.1 without CONFIG_DEBUG_VM would free a slab or page-table page under
        # its user; mmemu checks those pages always (page_alloc._free_pages()).
        return bool(flags & (1 << PG_slab) or typed)
