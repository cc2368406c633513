"""Guest programs that use kmap, kmap_atomic, kmap_local, the fixmap and
atomic context, run on pc-1g: their exit status and the kernel's reports.
Each program states its intent in its header comment."""
from pathlib import Path
import pytest

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"


def run(program, config="pc-1g", ratelimit=None, **budget):
    from mmemu.machine import Machine
    m = Machine(config, echo=False)
    if ratelimit is not None:
        m.sched.ratelimit_s = ratelimit
    result = m.run(str(GUEST / program), **budget)
    return m, result


def test_highmem_fill_writes_and_verifies_every_highmem_page():
    m, r = run("examples/highmem_fill.c", timeout=55)
    assert r.reason == "exit" and r.exit_code == 0, r.log[-3000:]
    line = [ln for ln in r.console.splitlines() if ln.startswith("highmem_fill:")][0]
    n = int(line.split()[1])
    highmem = m.layout.max_pfn - m.layout.max_low_pfn
    assert n > highmem * 0.95                     # all but what the watermark keeps back
    assert ", 0 bad checksums through kmap_atomic()" in line
    assert m.highmem.pkmap_flushes >= n // 1024 - 1    # the pkmap area wrapped, one flush each time
    assert m.highmem.pkmap_slots() == [] or all(s.count == 1 for s in m.highmem.pkmap_slots())
    assert r.reports == []
    m.check()


def test_nested_kmap_atomic_stacks_fixmap_slots():
    m, r = run("tests/highmem_nested_atomic.c")
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert r.reports == []


def test_kmap_of_a_lowmem_page_is_its_direct_map_address():
    m, r = run("tests/highmem_lowmem.c")
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert r.reports == []


def test_pkmap_slots_are_shared_kept_and_recycled_and_a_stray_kunmap_is_bug_358():
    m, r = run("tests/highmem_pkmap.c")
    assert (r.reason, r.status) == ("bug", 134), r.console + r.log[-2000:]
    assert "highmem_pkmap: slot" in r.console              # every check before it held
    assert len(r.reports) == 1
    assert "kernel BUG at mm/highmem.c:358!" in r.reports[0]
    assert "main+" in r.reports[0]
    assert max(m.highmem.pkmap_count) <= 1                 # no slot in use: kunmap(b) was the last


def test_fixmap_from_the_guest():
    m, r = run("tests/highmem_fixmap.c")
    assert (r.reason, r.status) == ("bug", 134), r.console + r.log[-2000:]
    assert "highmem_fixmap: FIX_TEXT_POKE0 at" in r.console
    assert len(r.reports) == 1
    assert "kernel BUG at arch/x86/mm/pgtable.c:661!" in r.reports[0]


def test_kmap_local_out_of_order_and_too_deep():
    m, r = run("tests/highmem_local_order.c")
    assert (r.reason, r.status) == ("bug", 134), r.console + r.log[-2000:]
    assert len(r.reports) == 2
    assert "WARNING: CPU: 0 PID: 1 at mm/highmem.c:610 kunmap_local_indexed" in r.reports[0]
    assert "kernel BUG at mm/highmem.c:467!" in r.reports[1]
    # the task died holding 15 slots: the last switch away from it unmapped them
    assert (m.sched.kmap_local_idx, m.highmem.kmap_local_slots()) == (0, [])
    m.check()


def test_sleeping_in_atomic_context_is_reported_as_6_1_does():
    m, r = run("tests/atomic_sleep.c")            # distinct sites: each is reported
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    bugs = [t for t in r.reports if t.startswith("BUG: sleeping function")]
    assert len(bugs) == 3
    assert bugs[0].splitlines()[:3] == [
        "BUG: sleeping function called from invalid context at include/linux/sched/mm.h:274",
        "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: atomic_sleep",
        "preempt_count: 1, expected: 0"]
    assert bugs[1].startswith("BUG: sleeping function called from invalid context at "
                              "include/linux/highmem-internal.h:44")
    assert "in_atomic(): 0, irqs_disabled(): 1," in bugs[2]
    assert "atomic_sleep.c:" in bugs[2].splitlines()[0]
    assert all("Call Trace:" in b and "main+" in b for b in bugs)
    sched = [t for t in r.reports if t.startswith("BUG: scheduling while atomic")]
    assert sched and sched[0].startswith(
        "BUG: scheduling while atomic: atomic_sleep/1/0x00000001")
    assert "preempt_count 0 after schedule()" in r.console


def test_gfp_atomic_succeeds_in_atomic_context_where_gfp_kernel_gave_up():
    m, r = run("tests/atomic_gfp.c", timeout=55)
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert not [t for t in r.reports if "sleeping function" in t]
    assert "then GFP_ATOMIC under a spinlock got" in r.console
    m.check()


def test_an_oops_in_the_pkmap_area_names_the_slot(tmp_path):
    src = tmp_path / "pkmap_oops.c"
    src.write_text(
        "/* Touch a pkmap address after its slot was recycled: an oops naming the slot. */\n"
        "#include <mmemu.h>\n#include <mmemu/highmem.h>\n"
        "int main(void)\n{\n"
        "\tstruct page *page = alloc_page(GFP_HIGHUSER);\n"
        "\tvolatile u32 *p = kmap(page);\n"
        "\tkunmap(page);\n\tkmap_flush_unused();\n"
        "\treturn *p;\n}\n")
    from mmemu.machine import Machine
    m = Machine("pc-1g", echo=False)
    r = m.run(str(src))
    assert r.reason == "oops"
    slot1 = m.layout.pkmap_base + 0x1000
    assert (f"the address is in pkmap slot 1 (persistent kmap area, 0x{slot1:08x}), not mapped"
            in r.reports[0])


def test_a_reused_kmap_atomic_slot_never_shows_the_previous_page():
    m, r = run("tests/highmem_slot_reuse.c")
    assert r.reason == "exit" and r.exit_code == 0, r.console + r.log[-2000:]
    assert r.reports == []
