"""The guest breaks its own kernel: the raw hypercall mix, with the guest's
stores into the structures the kernel keeps in guest memory between calls.

CorruptingFuzzer is the host driver (HostFuzzer) with one more kind of
step: the stub (guest/tests/fuzz_stub.c) executes ``movl value, (addr)``
at an address the host picks in one of the kernel's structures, as a stray
pointer in a driver would:

- struct page words in mem_map: any page's, a free block's head (its lru
  links, order, _mapcount, _refcount), a slab page's (slab_cache, freelist,
  counters), the flags' zone and node bits;
- page tables: page-directory entries of the kernel half (vmalloc, pkmap,
  fixmap, the direct map) and PTEs of the vmalloc, pkmap and fixmap tables;
- SLUB: a struct kmem_cache's words, its kmem_cache_cpu (c->freelist,
  c->slab), the free pointer inside a free object;
- the per-cpu words (preempt_count, the irq flag, kmap_atomic_idx), the
  boot information, pg_data_t and struct zone (vm_stat[NR_FREE_PAGES]).

The oracle: every run ends in the kernel's report (an oops, a BUG, a
panic, a Bad page state, a list_del corruption, ...) or goes on; a host
exception (the runtime's "internal error in hypercall") is the failure.
Once the guest has corrupted something, results and consistency are not
checked any more (the kernel could not tell either), but the consistency
checker and the views (/proc texts, ptdump) are run over the broken
machine after each run and must answer with a report or a CorruptionError,
never a host exception.  The machine is rebooted after a panic or
``runs_per_machine`` runs.

    >>> r = CorruptingFuzzer("pc-128m-highmem", seed=1).run(20000)
    >>> r.failures, r.corruptions, r.outcomes
"""
import traceback
from collections import Counter

from mmemu.errors import MmemuError
from mmemu.harness.checks import KILLS, killed_by_bug, report_kind, trim_log
from mmemu.harness.hostcalls import PAGE_WORDS, STRUCT_PAGE, U32
from mmemu.harness.hostfuzz import HostFuzzer
from mmemu.harness.records import Call
from mmemu.layout import PAGE_OFFSET
from mmemu.mm.node_data import MMZONE_PHYS, MMZONE_SIZE
from mmemu.runtime.abi import (
    BOOTINFO_FIELDS, BOOTINFO_OFFSET, HC_MAILBOX_PHYS, PERCPU_FIELDS, PERCPU_OFFSET,
)

FUZZ_STORE = 0x10000          # the stub's own step: *(u32 *)mailbox[0] = mailbox[1]
LIST_POISON1, LIST_POISON2 = 0x100, 0x122
TARGETS = ("page", "free block", "slab page", "pgd", "pte", "kmem_cache", "kmem_cache_cpu",
           "free pointer", "percpu", "bootinfo", "node data")
STUCK_RUNS = 3        # runs dying of the same report in a row: the machine is stuck, reboot
VIEWS = ("buddyinfo", "zoneinfo", "meminfo", "slabinfo", "vmallocinfo", "pagetypeinfo")


class CorruptingFuzzer(HostFuzzer):
    """HostFuzzer whose guest also stores into the kernel's structures.

    corrupt: the share of steps that are such stores (the rest are the host
    driver's calls); runs_per_machine: runs on a corrupted machine before a
    new one is booted (sooner when STUCK_RUNS runs in a row die of the same
    report: a poisoned free list kills every allocation).  The result adds ``corruptions`` (stores by target)
    and ``outcomes`` (how runs on a corrupted machine ended).
    """

    def __init__(self, config="pc-16m", seed=0, corrupt=0.05, runs_per_machine=30, **kw):
        kw.setdefault("percpu", True)
        kw.setdefault("log_calls", False)
        super().__init__(config, seed=seed, **kw)
        self.corrupt_share = corrupt
        self.runs_per_machine = runs_per_machine
        self.result.corruptions = Counter()
        self.result.outcomes = Counter()
        self.dirty_runs = 0
        self.last_death, self.same_deaths = None, 0

    # -- machines and runs ---------------------------------------------------
    def _boot(self):
        super()._boot()
        self.dirty_runs = 0
        self.last_death, self.same_deaths = None, 0

    def _one_run(self):
        res, pending = self._run_chunk(timeout=600)
        if res.reason == "error" or self.watch.errors:
            self._fail("error", "\n".join(self.watch.errors) or res.log[-3000:])
            return
        if pending is not None and res.reason != "exit":
            self._account(pending, 0)                # the call the run ended in
        if self.percpu_dirty:
            self._after_dirty_run(res)
        elif res.reason == "exit" and res.exit_code not in (0, None) \
                and not (pending is not None and pending.name == "exit"):
            self._fail("stopped", f"stub exited with {res.exit_code}")
        elif res.reason not in ("exit",) and not (
                (res.reason in KILLS and (killed_by_bug(res) or (
                    pending is not None and pending.name == "BUG")))
                or (res.reason == "panic" and pending is not None
                    and pending.name == "kmem_cache_create")):
            self._fail(res.reason, "\n".join(res.reports)[-4000:] or res.log[-3000:])
        elif res.reason == "panic":
            self.m = None

    def _after_dirty_run(self, res):
        """A run on a corrupted machine ended: count how, then make the checker
        and the views read the broken state; reboot after a panic or enough runs."""
        self.result.outcomes[res.reason if res.reason != "exit" or not res.exit_code
                             else "exit!=0"] += 1
        problem = self._read_broken_state()
        if problem:
            self._fail("view", problem)
            return
        self.dirty_runs += 1
        death = (res.reason, report_kind(res.reports[-1]) if res.reports else None)
        self.same_deaths = self.same_deaths + 1 if death == self.last_death else 1
        self.last_death = death
        if (res.reason == "panic" or self.dirty_runs >= self.runs_per_machine
                or self.same_deaths >= STUCK_RUNS):
            self.m = None

    def _read_broken_state(self):
        """The checker and the views over the corrupted machine: a report or a
        CorruptionError (an MmemuError) is fine, anything else is mmemu's fault."""
        from mmemu.views.ptdump import ptdump_text
        m = self.m
        steps = [("check", m.check), ("ptdump", lambda: ptdump_text(m))]
        steps += [(name, lambda name=name: m.proc_text(name)) for name in VIEWS]
        for name, step in steps:
            try:
                step()
            except MmemuError:
                pass
            except Exception:                    # noqa: BLE001 - the failure being looked for
                return f"{name} over corrupted state raised:\n{traceback.format_exc()[-3000:]}"
            finally:
                trim_log(m)
        return None

    def _after(self, call, ret):
        if self.percpu_dirty:                        # no result or consistency checks now
            if self.watch.errors:
                return self._fail("error", "\n".join(self.watch.errors))
            return False
        return super()._after(call, ret)

    def _generate(self):
        if self.rng.random() < self.corrupt_share:
            return self._g_store()
        return super()._generate()

    # -- the guest's stores --------------------------------------------------
    def _g_store(self):
        r = self.rng
        target = r.choice(TARGETS)
        where = getattr(self, "_t_" + target.replace(" ", "_").replace("-", "_"))()
        if where is None:
            return self._call("nop")
        va, old = where
        self.percpu_dirty = True
        self.result.corruptions[target] += 1
        return Call(FUZZ_STORE, (va, self.hostile_word(old)), f"<store {target}>")

    def hostile_word(self, old):
        """A value a stray store leaves: 0, ~0, poison, a near miss of the old
        word, a struct page that is another, anything."""
        r = self.rng
        return r.choice((
            0, U32, LIST_POISON1, LIST_POISON2, r.getrandbits(32), self.wild(),
            self.memmap + STRUCT_PAGE * r.randrange(self.max_pfn + 16),
            self.memmap + r.randrange(self.max_pfn * STRUCT_PAGE),
            old ^ (1 << r.randrange(32)), old + STRUCT_PAGE, old - 4, 0x80000000,
        )) & U32

    def _word(self, phys):
        """(the direct-map address of a physical word, its value now)."""
        return PAGE_OFFSET + phys, self.u32[phys >> 2]

    def _page_word(self, pfn, word):
        return self._word(self.m.mem_map.phys + pfn * STRUCT_PAGE + 4 * word)

    def _t_page(self):
        return self._page_word(self.rng.randrange(self.max_pfn), self.rng.randrange(PAGE_WORDS))

    def _t_free_block(self):
        zones = [z for z in self.m.mm.zones if z.populated]
        z = self.rng.choice(zones)
        heads = [head.first for a in z.free_area for head in a.free_list if head.first >= 0]
        heads += [p for lst in z.per_cpu_pageset.lists for p in list(lst)[-2:]]
        if not heads:
            return None
        return self._page_word(self.rng.choice(heads), self.rng.choice((1, 2, 1, 2, 0, 5, 6, 7)))

    def _t_slab_page(self):
        slab = getattr(self.m, "slab", None)
        pfns = [p for s in slab.caches for p in list(s.node.slabs)[:4]] if slab else []
        if not pfns:
            return None
        return self._page_word(self.rng.choice(pfns), self.rng.choice((0, 3, 4, 5, 1, 2)))

    def _t_pgd(self):
        pgd = self.m.pgtable.pgd
        return self._word(pgd + 4 * self.rng.randrange(768, 1024))

    def _t_pte(self):
        lay = self.m.layout
        va = self.rng.choice((self.rng.randrange(lay.vmalloc_start, lay.vmalloc_end),
                              self.rng.randrange(lay.pkmap_base, lay.fixaddr_top)))
        slot = self.m.pgtable.pte_slot(va)
        return None if slot is None else self._word(slot)

    def _caches(self):
        slab = getattr(self.m, "slab", None)
        return slab.caches if slab else []

    def _t_kmem_cache(self):
        caches = self._caches()
        if not caches:
            return None
        return self._word(self.rng.choice(caches).addr - PAGE_OFFSET + 4 * self.rng.randrange(15))

    def _t_kmem_cache_cpu(self):
        caches = self._caches()
        if not caches:
            return None
        return self._word(self.rng.choice(caches).cpu - PAGE_OFFSET + 4 * self.rng.randrange(3))

    def _t_free_pointer(self):
        caches = [s for s in self._caches() if self.u32[(s.cpu - PAGE_OFFSET) >> 2]]
        if not caches:
            return None
        s = self.rng.choice(caches)
        head = self.u32[(s.cpu - PAGE_OFFSET) >> 2]
        pa = head + s.offset - PAGE_OFFSET
        if not 0 <= pa < self.m.pm.size - 4 or pa & 3:
            return None
        return self._word(pa)

    def _t_percpu(self):
        return self._word(HC_MAILBOX_PHYS + PERCPU_OFFSET + 4 * self.rng.randrange(len(PERCPU_FIELDS)))

    def _t_bootinfo(self):
        return self._word(HC_MAILBOX_PHYS + BOOTINFO_OFFSET
                          + 4 * self.rng.randrange(len(BOOTINFO_FIELDS)))

    def _t_node_data(self):
        return self._word(MMZONE_PHYS + 4 * self.rng.randrange(MMZONE_SIZE // 4))
