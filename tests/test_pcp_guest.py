"""The per-cpu page lists in guest memory (mm/pcp_list.py, guest/lib/page_alloc.c):
guest code walks struct per_cpu_pages as kernel code would, its order-0
alloc_page()/__free_page() take and give the first page of a list there,
the host refills an empty list and drains at pcp->high over the same
lists, and the lists move between the host and guest memory around runs
without a page changing place."""
import re
from pathlib import Path

import pytest

from mmemu.layout import ZONE_NORMAL
from mmemu.mm import page_alloc
from mmemu.mm.gfp import GFP_KERNEL
from mmemu.mm.mmzone import MIGRATE_UNMOVABLE
from mmemu.testing import run_guest
from mmemu.views import show

pytestmark = pytest.mark.flavours

GUEST = Path(__file__).resolve().parent.parent / "guest"


def fields(console, tag):
    line = re.search(rf"^{tag}: (.*)$", console, re.M).group(1)
    return dict(re.findall(r"(\w+) ([^\s,]+)", line))


@pytest.fixture(scope="module")
def pcp_run(kernel_flavour):
    from mmemu.machine import Machine
    boot = Machine("pc-128m", echo=False).mm.zones[ZONE_NORMAL].per_cpu_pageset
    r = run_guest(GUEST / "tests/pcp_lists.c", config="pc-128m")
    return r, (boot.count, boot.high, boot.batch)


def test_guest_reads_the_pageset_the_host_booted(pcp_run):
    r, (count, high, batch) = pcp_run
    seen = fields(r.console, "pcp")
    assert seen == {"count": str(count), "walked": str(count), "high": str(high),
                    "batch": str(batch)}


def test_alloc_takes_the_first_page_and_free_puts_it_back_first(pcp_run):
    r, _ = pcp_run
    # list_del() then clear_page_pfmemalloc(): lru.next NULL, lru.prev LIST_POISON2
    assert fields(r.console, "alloc") == {"first": "1", "count": "1", "ref": "1",
                                          "lru": "0x00000000"}
    assert "lru 0x00000000 0x00000122" in r.console
    assert fields(r.console, "free") == {"first": "1", "count": "0", "ref": "0",
                                         "index": str(MIGRATE_UNMOVABLE)}


def test_an_empty_list_is_refilled_with_batch_pages(pcp_run):
    r, (_, _, batch) = pcp_run
    refill = fields(r.console, "refill")
    assert int(refill["list"]) == batch - 1           # batch taken, one of them allocated


def test_a_free_reaching_high_drains_batch_pages(pcp_run):
    r, (_, high, batch) = pcp_run
    drain = fields(r.console, "drain")
    assert (int(drain["at"]), int(drain["to"]), int(drain["walked"])) == \
        (high, high - batch, high - batch)


def test_the_host_sees_the_lists_the_guest_left(pcp_run):
    r, _ = pcp_run
    m = r.machine
    done = fields(r.console, "done")
    pcp = m.mm.zones[ZONE_NORMAL].per_cpu_pageset
    assert int(done["count"]) == int(done["walked"]) == pcp.count
    normal = show(m, "zoneinfo").split("zone   Normal")[1]
    assert re.search(rf"count: {pcp.count}\n +high: +{pcp.high}\n +batch: {pcp.batch}\n",
                     normal)
    m.check()


def test_lists_move_between_host_and_guest_without_a_page_moving(kernel_flavour):
    """The host's fast path holds the lists between runs; a run puts them back."""
    from mmemu.machine import Machine
    m = Machine("pc-128m", echo=False)
    mm = m.mm
    pcp = mm.zones[ZONE_NORMAL].per_cpu_pageset
    held = [page_alloc.alloc_pages(mm, GFP_KERNEL) for _ in range(5)]
    assert not pcp.in_guest                          # the host's fast path took them out
    before = {i: list(lst) for i, lst in enumerate(pcp.lists)}
    r = m.run(str(GUEST / "tests/pcp_lists.c"))
    assert r.status == 0, r.log[-2000:]
    assert pcp.in_guest
    after_run = pcp.count
    assert fields(r.console, "pcp")["count"] == str(sum(len(v) for v in before.values()))
    for pfn in held:                                 # freed onto the lists in guest memory
        page_alloc._free_pages(mm, pfn, 0)
    assert pcp.in_guest and pcp.count == after_run + 5
    assert list(pcp.lists[MIGRATE_UNMOVABLE])[-5:] == held      # newest last, as freed
    assert page_alloc.alloc_pages(mm, GFP_KERNEL) == held[-1]   # taken out again: the newest
    assert not pcp.in_guest and pcp.count == after_run + 4
    assert list(pcp.lists[MIGRATE_UNMOVABLE])[-4:] == held[:4]
    m.check()


def test_the_checker_finds_a_broken_list_and_a_wrong_fast_free_bit(kernel_flavour):
    from mmemu.errors import MmemuError
    from mmemu.machine import Machine
    from mmemu.mm.mmzone import PAGE_WORDS, W_NEXT
    from mmemu.mm.pcp_list import pcp_to_guest
    m = Machine("pc-128m", echo=False)
    mm = m.mm
    pcp_to_guest(mm)
    m.check()
    pfn = list(mm.zones[ZONE_NORMAL].per_cpu_pageset.lists[MIGRATE_UNMOVABLE])[-1]
    bits = mm.fast_free_bits
    bits[pfn >> 3] ^= 1 << (pfn & 7)
    with pytest.raises(MmemuError, match="fast-free bitmap in guest memory disagrees"):
        m.check()
    bits[pfn >> 3] ^= 1 << (pfn & 7)
    mm.u32[mm.mbase + pfn * PAGE_WORDS + W_NEXT] = mm.mvirt          # a wild pcp_list.next
    with pytest.raises(MmemuError, match="per-cpu list 0 in guest memory has a broken link"):
        m.check()


def test_guest_code_leaves_lists_the_host_holds_to_the_host(kernel_flavour):
    """A hypercall outside mmemu's own runs may give the host the lists; it
    holds pcp->lock then, and guest code's order-0 calls go to the host."""
    from unicorn import UC_HOOK_INSN
    from unicorn.x86_const import UC_X86_INS_IN
    from mmemu.machine import Machine
    from mmemu.mm.pcp_list import pcp_to_host
    m = Machine("pc-128m", echo=False)
    pcp = m.mm.zones[ZONE_NORMAL].per_cpu_pageset
    expected = []

    def on_in(uc, port, size, user_data):
        if port == 0x510:
            assert pcp_to_host(m.mm)
            expected.extend(pcp.lists[MIGRATE_UNMOVABLE][-2:])
        return 0
    m.engine.uc.hook_add(UC_HOOK_INSN, on_in, None, 1, 0, UC_X86_INS_IN)
    r = m.run(str(GUEST / "tests/pcp_locked.c"))
    assert r.status == 0, r.log[-2000:]
    assert "before: locked 0\nafter: locked 1\n" in r.console
    assert f"pages {expected[1]} {expected[0]}\n" in r.console      # the host's list heads
    assert list(pcp.lists[MIGRATE_UNMOVABLE])[-2:] == expected[::-1]    # freed a, then b
    m.check()
