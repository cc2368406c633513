"""The hostile corpus, guest programs: each breaks something the way an
attacker or a careless learner would, and gets the kernel's report with the
status that report implies (docs/hostile.md lists the classes).

A case is (program, config, status, reason, the reports it must give, a
line its console must show).  Every report of the run must be one of the
expected ones (mmemu.testing.check_reports), so a case also proves that
nothing else was reported, and never an internal error (status 125).
"""
import re
from pathlib import Path

import pytest

from mmemu.config import load_config
from mmemu.testing import run_guest

HERE = Path(__file__).resolve().parent / "guest"
GUEST = Path(__file__).resolve().parent.parent.parent / "guest"

SLEEPING = "BUG: sleeping function called from invalid context at include/linux/sched/mm.h:274"
BAD_PAGE = re.compile(r"^BUG: Bad page state in process \S+ +pfn:", re.M)
PF = re.compile(r"^BUG: (unable to handle page fault for address|kernel NULL pointer "
                r"dereference, address): ", re.M)


def slub_debug(name="pc-16m"):
    cfg = load_config(name)
    cfg.slub_debug = "FZPU"
    return cfg


# class 1: kernel structures in guest memory, broken by the guest
CORRUPTION = [
    ("freelist_list_del.c", "pc-16m", 134, "bug",
     [re.compile(r"^list_del corruption\. next->prev should be ([0-9a-f]{8}), but was 00000122\. "
                 r"\(next=[0-9a-f]{8}\)\n(.*\n)*kernel BUG at lib/list_debug\.c:62!", re.M)],
     "first "),
    ("freelist_merge.c", "pc-16m", 134, "bug",
     [re.compile(r"^list_del corruption\. prev->next should be ([0-9a-f]{8}), but was "
                 r"[0-9a-f]{8}\. \(prev=[0-9a-f]{8}\)\n(.*\n)*kernel BUG at lib/list_debug\.c:59!",
                 re.M)], "second "),
    ("freelist_poison.c", "pc-16m", 134, "bug",
     [re.compile(r"^list_del corruption, [0-9a-f]{8}->prev is LIST_POISON2 \(00000122\)\n"
                 r"(.*\n)*kernel BUG at lib/list_debug\.c:56!", re.M)], "block "),
    ("pcp_list_del.c", "pc-16m", 134, "bug",
     [re.compile(r"^list_del corruption\. next->prev should be ([0-9a-f]{8}), but was 5a5a5a5a\. "
                 r"\(next=[0-9a-f]{8}\)\n(.*\n)*kernel BUG at lib/list_debug\.c:62!", re.M)],
     "entry "),
    ("pcp_list_add.c", "pc-16m", 134, "bug",
     [re.compile(r"^list_add corruption\. next->prev should be prev \([0-9a-f]{8}\), but was "
                 r"([0-9a-f]{8})\. \(next=\1\)\.\n(.*\n)*kernel BUG at lib/list_debug\.c:27!",
                 re.M)], "head "),
    ("freelist_bad_block.c", "pc-16m", 0, "exit",
     [re.compile(r"^BUG: Bad page state in process freelist_bad_bl +pfn:[0-9a-f]+\n"
                 r"(.*\n)*page dumped because: nonzero _refcount", re.M)], "freed "),
    ("pgd_outside_ram.c", "pc-16m", 139, "oops",
     [re.compile(r"^BUG: unable to handle page fault for address: bff00[0-9a-f]{3}\n"
                 r"#PF: supervisor write access in kernel mode\n(.*\n)*mmemu: in "
                 r"vmap_pages_pte_range\(\)", re.M)], ""),
    ("pgd_large_in_vmalloc.c", "pc-16m", 0, "exit",
     ["mm/pgtable-generic.c:51: bad pgd 004000e3"], "vmalloc: 00000000"),
    ("pgd_bad_on_vfree.c", "pc-16m", 0, "exit",
     [re.compile(r"^mm/pgtable-generic\.c:51: bad pgd [0-9a-f]{5}061$", re.M)],
     "pde now 00000000"),
    ("slab_freepointer.c", "pc-16m", 139, "oops",
     [re.compile(r"^BUG: kernel NULL pointer dereference, address: 00000143\n(.*\n)*"
                 r"EIP: kmalloc\+", re.M)], "again"),
    ("slab_freepointer_debug.c", slub_debug, 0, "exit",
     [re.compile(r"^BUG kmalloc-64 \(Not tainted\): Freepointer corrupt\n(.*\n)*"
                 r"Object 0x[0-9a-f]{8} @offset=\d+ fp=0x00000123\n(.*\n)*"
                 r"FIX kmalloc-64: Marking all objects used", re.M)], "after: "),
    ("slab_cpu_slab.c", "pc-16m", 134, "bug",
     [re.compile(r"^kernel BUG at mm/slub\.c!\nmmemu: in ___slab_alloc\(\), called from main\+"
                 r".*\nmmemu: kmalloc-64: c->slab 0x[0-9a-f]{8} is not a slab of this cache",
                 re.M)], ""),
    ("percpu_hardirq_bug.c", "pc-16m", 137, "panic",
     [SLEEPING, "kernel BUG at percpu_hardirq_bug.c:17!",
      "Kernel panic - not syncing: Aiee, killing interrupt handler!"], ""),
    ("vmstat_zero.c", "pc-16m", 0, "exit",
     ["vmstat_zero: page allocation failure: order:4, mode:0x10cc0(GFP_KERNEL|__GFP_NORETRY)"],
     "alloc_pages: 00000000"),
    ("mailbox_wild_cache.c", "pc-16m", 0, "exit",
     [re.compile(r"^mmemu: kmem_cache_alloc: 0xc0007000 is not a live struct kmem_cache, "
                 r"called from main\+", re.M)], "__slab_alloc(wild cache) = 00000000"),
]

# class 3: BUG() ends the run (134); an invalid opcode is an oops (139)
BUGS = [
    ("kmap_atomic_nest40.c", "pc-1g", 134, "bug", ["kernel BUG at mm/highmem.c:467!"], ""),
    (GUEST / "tests/slab_double_free.c", "pc-16m", 134, "bug",
     ["kernel BUG at mm/slub.c:379!"], ""),
    (GUEST / "tests/bad_free.c", "pc-16m", 134, "bug",
     [BAD_PAGE, "kernel BUG at include/linux/mm.h:769!"], "still running"),
    ("gfp_bad_zone.c", "pc-16m", 134, "bug", ["kernel BUG at include/linux/gfp.h:136!"], ""),
    ("ud2_kernel.c", "pc-16m", 139, "oops",
     [re.compile(r"^invalid opcode: 0000 \[#1\] PREEMPT SMP\n(.*\n)*mmemu: => [0-9a-f]{8}: "
                 r"0f 0b +ud2", re.M)], "before"),
    ("bad_opcode.c", "pc-16m", 139, "oops",
     ["invalid opcode: 0000 [#1] PREEMPT SMP"], "run_user: 132"),
]

# class 4: sleeping in atomic context, on the slab fast path too
ATOMIC = [
    ("kmalloc_atomic_fastpath.c", "pc-1g", 0, "exit", [SLEEPING], "all allocated"),
]

# class 5: CPU corner cases
CPU = [
    ("text_poke_wp.c", "pc-16m", 0, "exit", [],
     "text_poke_wp: 1, WP off 42, fixmap alias 7, same block 9"),
    ("pte_unbacked.c", "pc-16m", 0, "exit",
     ["mmemu: read of physical 0x80400000: nothing is there (a page table entry points "
      "past RAM); the bus reads all ones and drops writes"],
     "read ffffffff, then ffffffff after writing 5"),
    ("pte_unbacked_fetch.c", "pc-16m", 139, "oops",
     [re.compile(r"^invalid opcode: 0000 \[#1\] PREEMPT SMP\n(.*\n)*EIP: 0x[0-9a-f]{8}\n",
                 re.M)], "calling "),
    ("free_pages_null.c", "pc-16m", 139, "oops",
     [re.compile(r"^BUG: kernel NULL pointer dereference, address: 00000000\n(.*\n)*"
                 r"mmemu: in __free_pages\(\), called from main\+", re.M)],
     "free_pages(0) is a no-op"),
]

# class 8: printk
PRINTK = [
    ("printk_bad_pointers.c", "pc-16m", 0, "exit", [],
     "low=[(efault)] err=[(efault)] 42"),
]

CASES = CORRUPTION + BUGS + ATOMIC + CPU + PRINTK


@pytest.mark.parametrize("program,config,status,reason,reports,console", CASES,
                         ids=[Path(str(c[0])).stem for c in CASES])
def test_hostile_guest(program, config, status, reason, reports, console):
    cfg = config() if callable(config) else config
    path = program if isinstance(program, Path) else HERE / program
    r = run_guest(path, config=cfg, check=False, expect_report=reports or None)
    assert (r.status, r.reason) == (status, reason), r.log[-3000:]
    assert console in r.console, r.console
    assert "internal error" not in r.log and "Traceback" not in r.log
    if r.reason in ("bug", "oops", "panic"):
        assert "not reached" not in r.console


def test_a_block_that_fails_check_new_pages_is_leaked_and_accounted():
    # 6.1's rmqueue_buddy() leaks the bad block; mmemu keeps it in mm.leaked,
    # so the checker (CONFIG_DEBUG_VM style) still finds every page
    r = run_guest(HERE / "freelist_bad_block.c", config="pc-16m", check=True,
                  expect_report=BAD_PAGE)
    leaked = r.machine.mm.leaked
    assert list(leaked.values()) == [4]
    freed = int(re.search(r"freed ([0-9a-f]{8})", r.console).group(1), 16)
    assert r.machine.mem_map.pfn_to_page(next(iter(leaked))) == freed


def test_list_del_corruption_names_the_entries_the_guest_printed():
    r = run_guest(HERE / "freelist_list_del.c", config="pc-16m", check=False,
                  expect_report="list_del corruption")
    first, second = re.search(r"first ([0-9a-f]{8}) second ([0-9a-f]{8})", r.console).groups()
    assert (f"list_del corruption. next->prev should be {first}, but was 00000122. "
            f"(next={second})") in r.reports[0]


def test_a_dead_tasks_atomic_context_is_reset_for_the_next_run():
    # make_task_dead(): the notes, and a clean preempt_count for what runs next
    r = run_guest(HERE / "kmalloc_atomic_fastpath.c", config="pc-1g", expect_report=SLEEPING)
    m = r.machine
    m.sched.preempt_disable()
    r = m.run(str(HERE / "ud2_kernel.c"))
    assert r.status == 139
    assert "note: ud2_kernel[1] exited with preempt_count 1" in r.log
    assert m.sched.preempt_count == 0


def test_the_open_bus_is_no_standing_hook(monkeypatch):
    """A guest run adds Unicorn's unmapped-memory hook only to replay an
    instruction that met unbacked memory (such a hook slows every store):
    none for a run that never does, one for each such access, none left."""
    from mmemu.engine import Engine
    from mmemu.machine import Machine
    added = []
    real = Engine.hook_unmapped

    def counting(self, callback):
        added.append(callback)
        return real(self, callback)
    monkeypatch.setattr(Engine, "hook_unmapped", counting)
    m = Machine("pc-16m", echo=False)
    assert m.run("guest/examples/hello.c").status == 0
    assert added == []
    hooks = len(m.engine._hooks)
    r = m.run(str(HERE / "pte_unbacked.c"))
    assert r.status == 0 and "read ffffffff, then ffffffff after writing 5" in r.console
    assert len(added) == 1                   # the read: then the range is mapped
    assert len(m.engine._hooks) == hooks
