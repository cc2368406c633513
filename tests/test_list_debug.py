"""CONFIG_DEBUG_LIST on the buddy free lists (kernel/list_debug.py, mm/freelist.py):
a failed check is CONFIG_BUG_ON_DATA_CORRUPTION's BUG, which never returns.

The task dies at the check: a guest run ends with the BUG (status 134) and
nothing after the check runs; a call from the host raises KernelOops with
the report on the kernel log.  What the dying task held off the lists is
lost as in 6.1 and kept in mm.leaked, so once the link the guest broke is
mended the checker finds every page accounted for.
"""
import re
from pathlib import Path

import pytest

from mmemu.errors import KernelOops
from mmemu.mm import page_alloc as pa
from mmemu.mm.fallback import _rmqueue
from mmemu.mm.freelist import del_page_from_free_list, expand, move_to_free_list
from mmemu.mm.mmzone import (
    MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PAGE_MAPCOUNT_NONE, PAGE_TYPE_BUDDY, PAGE_WORDS,
    W_MAPCOUNT, W_NEXT, W_PREV,
)
from mmemu.mm.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.pageblock import get_pfnblock_migratetype
from mmemu.testing import run_guest

HOSTILE = Path(__file__).resolve().parent / "hostile" / "guest"
BUG_LINES = r"(.*\n)*kernel BUG at lib/list_debug\.c:{}!\n(.*\n)*invalid opcode: 0000 \[#1\] PREEMPT SMP"


def word(mm, pfn, w):
    return mm.u32[mm.mbase + pfn * PAGE_WORDS + w]


def set_word(mm, pfn, w, value):
    mm.u32[mm.mbase + pfn * PAGE_WORDS + w] = value


def ptr(mm, pfn):
    return mm.mvirt + pfn * 40


def walk(mm, head):
    """The pfns of a free list, first to last, through the links in guest
    memory (up to a link that leaves mem_map or comes back)."""
    p, seen = head.first, set()
    while 0 <= p < mm.max_pfn and p not in seen:
        seen.add(p)
        yield p
        nxt = word(mm, p, W_NEXT)
        p = (nxt - mm.mvirt) // 40 if nxt else -1


def lists_holding(mm, zone, pfn):
    """[(order, migratetype)] of the free lists whose walk meets pfn."""
    return [(order, mt) for order, area in enumerate(zone.free_area)
            for mt, head in enumerate(area.free_list) if pfn in walk(mm, head)]


def snapshot(mm):
    """Every zone's NR_FREE_PAGES, nr_free per order and list ends."""
    return [(z.nr_free_pages, [(a.nr_free, [(h.first, h.last) for h in a.free_list])
                               for a in z.free_area]) for z in mm.zones]


def buddy_pair(mm, order=4, gfp=GFP_KERNEL):
    """Allocate blocks of order until the last two are buddies; (first, second)."""
    prev = None
    for _ in range(16):
        pfn = pa.alloc_pages(mm, gfp, order)
        assert pfn is not None
        if prev is not None and prev ^ pfn == 1 << order:
            return prev, pfn
        prev = pfn
    raise AssertionError("no buddies")


# -- the guest's view ---------------------------------------------------------------

def _mend_prev(mm, zone, pfn, order):
    """Put back the lru.prev a list walk expects of free block pfn."""
    for head in zone.free_area[order].free_list:
        prev = 0
        for p in walk(mm, head):
            if p == pfn:
                set_word(mm, pfn, W_PREV, prev)
                return
            prev = ptr(mm, p)
    raise AssertionError(f"pfn {pfn:#x} is on no list of order {order}")


def test_a_free_that_meets_a_broken_buddy_dies_and_loses_the_block():
    # __free_pages() merges with the free buddy; list_del() of the buddy
    # fails its check (prev->next): BUG, status 134, and the block being
    # freed dies with the task: never counted free, kept in mm.leaked.
    report = re.compile(r"^list_del corruption\. prev->next should be ([0-9a-f]{8}), but was "
                        r"[0-9a-f]{8}\. \(prev=([0-9a-f]{8})\)\n" + BUG_LINES.format(59), re.M)
    r = run_guest(HOSTILE / "freelist_merge.c", config="pc-16m", check=False,
                  expect_report=report)
    assert (r.status, r.reason) == (134, "bug")
    assert "not reached" not in r.console
    first, second, free = re.search(r"first ([0-9a-f]{8}) second ([0-9a-f]{8}) free (\d+)",
                                    r.console).groups()
    m, mm = r.machine, r.machine.mm
    assert report.search(r.reports[0]).group(1, 2) == (first, second)
    a, b = ((int(x, 16) - mm.mvirt) // 40 for x in (first, second))
    zone = pa.page_zone(mm, b)
    assert mm.leaked == {b: 4}                          # lost with the task
    assert zone.nr_free_pages == int(free)              # never counted as free
    assert word(mm, b, W_MAPCOUNT) == PAGE_MAPCOUNT_NONE and not lists_holding(mm, zone, b)
    assert lists_holding(mm, zone, a) == [(4, get_pfnblock_migratetype(zone, a))]  # not merged
    assert word(mm, a, W_PREV) == int(second, 16)       # the guest's store, as it left it
    _mend_prev(mm, zone, a, 4)
    m.check()
    assert sum(acc.leaked for acc in check_page_alloc(mm)) == 16


def test_an_allocation_that_meets_a_broken_list_takes_nothing_else():
    # The first block of free_area[4] fails list_del()'s check: the task
    # dies inside alloc_pages(); no other order or migratetype is tried
    # (before, mmemu refused the block and fell back to another list).
    r = run_guest(HOSTILE / "freelist_list_del.c", config="pc-16m", check=False,
                  expect_report=re.compile("^list_del corruption. next->prev" + BUG_LINES.format(62),
                                           re.M))
    assert (r.status, r.reason) == (134, "bug")
    assert "not reached" not in r.console
    first, second, free = re.search(r"first ([0-9a-f]{8}) second ([0-9a-f]{8}) free (\d+)",
                                    r.console).groups()
    m, mm = r.machine, r.machine.mm
    a = (int(first, 16) - mm.mvirt) // 40
    zone = pa.page_zone(mm, a)
    assert zone.nr_free_pages == int(free)              # nothing was taken
    assert mm.leaked == {}
    mt = get_pfnblock_migratetype(zone, a)
    assert zone.free_area[4].free_list[mt].first == a   # still first, not unlinked
    head = zone.free_area[4].free_list[mt]
    set_word(mm, a, W_NEXT, 0 if head.last == a else ptr(mm, _successor(mm, zone, a)))
    m.check()


def _successor(mm, zone, pfn):
    """The block whose lru.prev names pfn (the guest overwrote pfn's lru.next)."""
    for p in range(zone.zone_start_pfn, zone.zone_end_pfn):
        if word(mm, p, W_MAPCOUNT) == PAGE_TYPE_BUDDY and word(mm, p, W_PREV) == ptr(mm, pfn):
            return p
    raise AssertionError("no successor")


# -- the host's view ----------------------------------------------------------------

def test_a_host_call_that_meets_a_broken_list_raises_kernel_oops(mm_16m):
    mm = mm_16m
    a, b = buddy_pair(mm)
    pa._free_pages(mm, a, 4)
    zone = pa.page_zone(mm, b)
    before = snapshot(mm)
    saved = word(mm, a, W_PREV)
    set_word(mm, a, W_PREV, ptr(mm, b))
    mark = mm.log.mark()
    with pytest.raises(KernelOops, match=r"kernel BUG at lib/list_debug\.c:59 in "
                                         r"__list_del_entry_valid\(\): list_del corruption"):
        pa._free_pages(mm, b, 4)
    log = mm.log.text(mark)
    assert (f"list_del corruption. prev->next should be {ptr(mm, a):08x}, but was "
            f"{word(mm, b, W_NEXT):08x}. (prev={ptr(mm, b):08x})") in log
    assert re.search(BUG_LINES.format(59), log)
    assert "test_a_host_call_that_meets_a_broken_list_raises_kernel_oops [host " in log
    assert mm.leaked == {b: 4}
    assert snapshot(mm) == before                       # nothing merged, nothing added
    set_word(mm, a, W_PREV, saved)
    assert sum(acc.leaked for acc in check_page_alloc(mm)) == 16
    assert lists_holding(mm, zone, a) == [(4, get_pfnblock_migratetype(zone, a))]


def test_a_list_the_freed_block_cannot_join_loses_it(mm_16m):
    # No free buddy: __free_one_page() adds the block to its list, whose
    # ends the guest broke: list_add corruption, BUG; the block is leaked.
    mm = mm_16m
    _, e = buddy_pair(mm)                               # e's buddy stays allocated
    zone = pa.page_zone(mm, e)
    head = zone.free_area[4].free_list[get_pfnblock_migratetype(zone, e)]
    if head.first < 0:
        x, _ = buddy_pair(mm)
        pa._free_pages(mm, x, 4)
    first, last = head.first, head.last
    set_word(mm, first, W_PREV, 0x122)
    set_word(mm, last, W_NEXT, ptr(mm, e))
    before = zone.nr_free_pages
    mark = mm.log.mark()
    with pytest.raises(KernelOops, match=r"lib/list_debug\.c:(27|30) in __list_add_valid"):
        pa._free_pages(mm, e, 4)
    assert re.search(r"^list_add corruption\. (next->prev|prev->next) should be ", mm.log.text(mark),
                     re.M)
    assert mm.leaked == {e: 4} and zone.nr_free_pages == before
    set_word(mm, first, W_PREV, 0)
    set_word(mm, last, W_NEXT, 0)
    check_page_alloc(mm)


def test_a_link_the_check_cannot_read_is_the_oops_of_reading_it(mm_16m):
    mm = mm_16m
    a, b = buddy_pair(mm)
    pa._free_pages(mm, a, 4)
    set_word(mm, a, W_PREV, 0xFFFFF000)                 # no struct page, nothing mapped
    mark = mm.log.mark()
    with pytest.raises(KernelOops, match=r"oops in __list_del_entry_valid\(\) at address "
                                         r"0xfffff004"):
        pa._free_pages(mm, b, 4)
    assert "BUG: unable to handle page fault for address: fffff004" in mm.log.text(mark)
    assert mm.leaked == {b: 4}
    set_word(mm, a, W_PREV, 0)
    check_page_alloc(mm)


def _block_and_list_below(mm, mt):
    """(zone, pfn, order) of a free block of mt whose order-1 list of mt is
    not empty."""
    for zone in mm.zones:
        for order in range(1, len(zone.free_area)):
            pfn = zone.free_area[order].free_list[mt].first
            if pfn >= 0 and zone.free_area[order - 1].free_list[mt].first >= 0:
                return zone, pfn, order
    raise AssertionError("no such block")


def test_a_split_that_meets_a_broken_list_loses_what_it_held(mm_16m):
    # expand(): the upper half cannot join its list: the half and the lower
    # part being split die with the task (leaked as one block).
    mm = mm_16m
    zone, pfn, order = _block_and_list_below(mm, MIGRATE_MOVABLE)
    q = zone.free_area[order - 1].free_list[MIGRATE_MOVABLE].first
    del_page_from_free_list(mm, zone, pfn, order)       # as __rmqueue_smallest() does
    before = zone.nr_free_pages
    set_word(mm, q, W_PREV, ptr(mm, q))
    with pytest.raises(KernelOops, match="list_add corruption"):
        expand(mm, zone, pfn, 0, order, MIGRATE_MOVABLE)
    assert mm.leaked == {pfn: order}
    assert zone.nr_free_pages == before - (1 << order)
    set_word(mm, q, W_PREV, 0)
    check_page_alloc(mm)


def test_a_move_that_meets_a_broken_list_loses_the_block(mm_16m):
    # move_to_free_list(): off the old list, the new list's tail is broken:
    # list_add corruption, and the block dies with the task.
    mm = mm_16m
    for gfp in (GFP_KERNEL, GFP_HIGHUSER_MOVABLE):     # a free order-4 block of each
        x, _ = buddy_pair(mm, 4, gfp)
        pa._free_pages(mm, x, 4)
    zone = pa.page_zone(mm, x)
    area = zone.free_area[4]
    src, dst = (mt for mt, head in enumerate(area.free_list) if head.first >= 0)
    pfn, last = area.free_list[src].first, area.free_list[dst].last
    nr_free, before = area.nr_free, zone.nr_free_pages
    set_word(mm, last, W_NEXT, ptr(mm, last))
    with pytest.raises(KernelOops, match=r"lib/list_debug\.c:30"):
        move_to_free_list(mm, zone, pfn, 4, dst)
    assert mm.leaked == {pfn: 4}
    assert (area.nr_free, zone.nr_free_pages) == (nr_free - 1, before - 16)
    assert not lists_holding(mm, zone, pfn) and area.free_list[dst].last == last
    set_word(mm, last, W_NEXT, 0)
    check_page_alloc(mm)


def test_rmqueue_stops_at_the_broken_list(mm_16m):
    # __rmqueue(): the first block of the request's own list fails its
    # check: no fallback to another migratetype is made afterwards.
    mm = mm_16m
    zone = next(z for z in mm.zones if z.free_area[0].free_list[MIGRATE_UNMOVABLE].first >= 0
                or any(a.free_list[MIGRATE_UNMOVABLE].first >= 0 for a in z.free_area))
    order = next(o for o, a in enumerate(zone.free_area)
                 if a.free_list[MIGRATE_UNMOVABLE].first >= 0)
    pfn = zone.free_area[order].free_list[MIGRATE_UNMOVABLE].first
    saved = word(mm, pfn, W_PREV)
    set_word(mm, pfn, W_PREV, 0x122)                    # LIST_POISON2
    before = snapshot(mm)
    with pytest.raises(KernelOops, match=r"lib/list_debug\.c:56"):
        _rmqueue(mm, zone, 0, MIGRATE_UNMOVABLE, 0)
    assert snapshot(mm) == before and mm.leaked == {}
    set_word(mm, pfn, W_PREV, saved)
    check_page_alloc(mm)


def test_a_bug_in_a_tasks_exit_ends_the_run_as_in_a_hypercall(monkeypatch):
    # do_exit() frees the task's memory between two emu_start()s, outside any
    # hypercall: a CONFIG_DEBUG_LIST BUG met there names the guest, ends the
    # run with the BUG's status, and its KernelOops never reaches the caller
    # of Machine.run().  (The BUG is made to happen there: which free drains
    # a per-cpu list into a broken one depends on the pcp high mark.)
    from mmemu.kernel.list_debug import DEL_PREV_NEXT, check_data_corruption
    from mmemu.runtime.task import Tasks

    def free_task_and_die(self, task):
        check_data_corruption(self.rt.reporter, DEL_PREV_NEXT, "__list_del_entry_valid",
                              "list_del corruption. prev->next should be c1000000, but was "
                              "00000000. (prev=c1000028)")
    monkeypatch.setattr(Tasks, "_free_task", free_task_and_die)
    r = run_guest("guest/tests/user_tasks.c", config="pc-128m", check=False,
                  expect_report=re.compile("^list_del corruption" + BUG_LINES.format(59), re.M))
    assert (r.status, r.reason) == (134, "bug")
    assert "hello from ring 3\n" in r.console and "hello exited" not in r.log
    assert "mmemu: in __list_del_entry_valid(), called from main+" in r.reports[0]
    assert "[host " not in r.reports[0]
