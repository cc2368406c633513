"""The buddy split (mm/freelist.py: expand() and __rmqueue_smallest()) pinned
to Linux 6.1: the first block of the smallest order that fits is taken
from the migratetype's lists, its lower end is handed out, and each upper
half goes back at the head of the same migratetype's free list of its own
order, largest first, so that the next request of that order gets the half
right next to the last one ("the order of subdivision here is critical for
the IO subsystem", mm/page_alloc.c).
"""
import pytest

from mmemu.layout import ZONE_NORMAL
from mmemu.mm.freelist import _rmqueue_smallest
from mmemu.mm.mmzone import (
    MAX_ORDER, MIGRATE_MOVABLE, MIGRATE_TYPES, PAGE_TYPE_BUDDY, PAGE_WORDS, STRUCT_PAGE_SIZE,
    W_MAPCOUNT, W_NEXT, W_PRIVATE,
)

MT = MIGRATE_MOVABLE        # what memmap_init() makes every pageblock


def free_list(mm, zone, order, mt=MT):
    """The pfns on free_area[order].free_list[mt], head first, by following
    lru.next in mem_map (whose lists together hold nr_free blocks)."""
    lists = []
    for t in range(MIGRATE_TYPES):
        out, pfn = [], zone.free_area[order].free_list[t].first
        while pfn >= 0:
            out.append(pfn)
            nxt = mm.u32[mm.mbase + pfn * PAGE_WORDS + W_NEXT]
            pfn = (nxt - mm.mvirt) // STRUCT_PAGE_SIZE if nxt else -1
        lists.append(out)
    assert sum(map(len, lists)) == zone.free_area[order].nr_free
    return lists[mt]


def only_whole_blocks(mm, zone):
    """Take every block below MAX_ORDER - 1 off zone's free lists (of every
    migratetype); the first remaining movable block."""
    for order in range(MAX_ORDER - 1):
        for t in range(MIGRATE_TYPES):
            while zone.free_area[order].free_list[t].first >= 0:
                _rmqueue_smallest(mm, zone, order, t)
    return zone.free_area[MAX_ORDER - 1].free_list[MT].first


@pytest.mark.parametrize("order", [0, 2, 5, 9])
def test_expand_frees_the_upper_halves_one_per_order(mm_boot, order):
    """An order-`order` movable request splits the first movable order-10
    block B: B itself is handed out and B + 2^o goes on free_area[o]'s
    movable list for every o from order to 9, as a PageBuddy block of
    order o; nothing else moves."""
    mm = mm_boot("pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    block = only_whole_blocks(mm, zone)
    top = free_list(mm, zone, MAX_ORDER - 1)
    assert _rmqueue_smallest(mm, zone, order, MT) == block
    for o in range(MAX_ORDER - 1):
        want = [block + (1 << o)] if o >= order else []
        assert free_list(mm, zone, o) == want, f"order {o}"
        for half in want:
            w = mm.mbase + half * PAGE_WORDS
            assert (mm.u32[w + W_MAPCOUNT], mm.u32[w + W_PRIVATE]) == (PAGE_TYPE_BUDDY, o)
    assert free_list(mm, zone, MAX_ORDER - 1) == top[1:]


def test_successive_splits_hand_out_neighbouring_pages(mm_boot):
    """Each half goes to the head of its list, so the next request of its
    order takes it: order-0 requests walk up the block page by page, and
    order-3 requests carry on from there."""
    mm = mm_boot("pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    block = only_whole_blocks(mm, zone)
    assert [_rmqueue_smallest(mm, zone, 0, MT) for _ in range(40)] == list(range(block, block + 40))
    assert [_rmqueue_smallest(mm, zone, 3, MT) for _ in range(3)] == [block + 40, block + 48,
                                                                      block + 56]


def test_the_first_block_of_the_smallest_fitting_order_is_taken(mm_boot):
    mm = mm_boot("pc-1g")
    zone = mm.zones[ZONE_NORMAL]
    lists = [free_list(mm, zone, o) for o in range(MAX_ORDER)]
    for order in range(4):
        smallest = next(o for o in range(order, MAX_ORDER) if free_list(mm, zone, o))
        head = free_list(mm, zone, smallest)[0]
        assert _rmqueue_smallest(mm, zone, order, MT) == head
    assert lists != [free_list(mm, zone, o) for o in range(MAX_ORDER)]
