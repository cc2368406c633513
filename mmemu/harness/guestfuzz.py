"""The guest-program driver: guest/tests/fuzz.c, a C program with its own
PRNG that calls the real SDK wrappers (slab fast paths included), writes a
pattern into every live object and checks it itself, and passes wild
pointers only to hypercalls, never dereferencing them.

The host runs its cheap checks after each op the program reports
(HC_FUZZ_STEP) and machine.check() every check_every ops.
"""
import random
import time
from collections import deque
from pathlib import Path

from mmemu.harness.checks import Watch, killed_by_bug, report_kind, trim_log
from mmemu.harness.machines import machine_config
from mmemu.harness.records import Failure, FuzzResult
from mmemu.machine import Machine
from mmemu.runtime.abi import HC_DEBUG_BASE
from mmemu.runtime.guest import FUZZ_MAX_INSNS

HC_FUZZ_PARAM = HC_DEBUG_BASE + 2    # (index) -> a parameter of the guest fuzzer
HC_FUZZ_STEP = HC_DEBUG_BASE + 3     # (step, op, a0, a1, ret) -> 1 to stop the chunk
HC_FUZZ_FAIL = HC_DEBUG_BASE + 4     # (kind, addr, want, got): the guest found damage

GUEST_PROGRAM = Path(__file__).resolve().parents[2] / "guest" / "tests" / "fuzz.c"

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
F_HOSTILE = 2                                    # bit 0 was F_DEBUG_VM


class GuestFuzzer:
    """Run guest/tests/fuzz.c: the realistic mix, through the SDK's own wrappers.

    The program reports each op (HC_FUZZ_STEP); the host runs its cheap
    checks then, and machine.check() every check_every ops (the program
    also asks for it, HC_CHECK, and verifies every pattern itself).  It runs
    in chunks of ``chunk`` ops: main() returns and is run again, carrying on
    from its globals, so reports and the log never pile up.
    """

    def __init__(self, config="pc-16m", seed=0, check_every=500, chunk=3000, hostile=True,
                 debug_vm=True):
        self.config = machine_config(config, debug_vm=debug_vm)
        self.seed, self.check_every, self.chunk, self.hostile = seed, check_every, chunk, hostile
        self.result = FuzzResult()
        self.trail = deque(maxlen=40)

    def _boot(self, ncalls):
        m = self.m = Machine(self.config, echo=False)
        m.load(str(GUEST_PROGRAM))
        self.watch = Watch(m, self.check_every)
        dev = next((d for d in m.cfg.devices if d.model == "framebuffer"), None)
        self.params = {P_SEED: random.Random(self.seed).getrandbits(32) | 1, P_CALLS: ncalls,
                       P_CHECK_EVERY: self.check_every,
                       P_FLAGS: F_HOSTILE if self.hostile else 0,
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
            res = self.m.run(max_insns=FUZZ_MAX_INSNS, timeout=3600)
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

