"""The buddy free lists, kept in guest memory, and the split/merge core.

Models the free-list helpers and the buddy core of mm/page_alloc.c, 6.1:
add_to_free_list(), add_to_free_list_tail(), del_page_from_free_list(),
find_buddy_page_pfn(), buddy_merge_likely(), __free_one_page(), expand()
move_to_free_list(), get_page_from_free_area() and __rmqueue_smallest(),
with a free list per migratetype of each order (free_area[order].free_list
[MIGRATE_TYPES], nr_free counting the blocks of all of them).  Differs from
Linux in one way: the list heads are host-side (FreeList.first/.last), so a
list is a chain of struct pages ending in 0 rather than a ring through
struct zone, and unlinking a block at an end finds its list among the
order's MIGRATE_TYPES heads (list_del() needs no head).

A free block of order k at pfn p (the invariant check_page_alloc() proves):
p is a multiple of 2^k; the head page's _mapcount is PAGE_TYPE_BUDDY
(page_type PG_buddy) and its private is k; its lru.next/prev hold the
struct page * of its neighbours on free_area[k] (0 at the ends); every page
of the block has _refcount 0 and no PG_* flags, and only the head is PG_buddy.

Functions take ``mm`` (page_alloc.MmState: .u32, .mbase, .mvirt, .max_pfn)
and pfns where Linux takes struct page pointers.

The links live in guest memory, so a guest can break them: every list_add()
and list_del() here is checked as CONFIG_DEBUG_LIST checks it
(kernel/list_debug.py: "list_del corruption. ..." and the BUG of
CONFIG_BUG_ON_DATA_CORRUPTION).  That BUG kills the task where the check
is: KernelOops is raised and the rest of the kernel function never runs
(no next block is tried, no merge or split goes on).  The list the check
was made on is left as the guest broke it.  A block the dying task held
off every list (being added, or split or merged on the way) is lost, as
in 6.1; mmemu records it in mm.leaked (leak_block()) as the KernelOops
leaves the function that held it, so NR_FREE_PAGES, nr_free, the free
lists and mm.leaked agree again before any caller sees the oops, and the
checker (page_alloc_debug) passes after it.  Nothing here raises on guest
data but that KernelOops.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NoReturn, Optional, Union

from mmemu.errors import KernelOops
from mmemu.kernel.list_debug import (
    DEL_NEXT_PREV, check_data_corruption, list_add_valid, list_del_entry_valid,
)
from mmemu.mm.mmzone import (
    LIST_POISON1, LIST_POISON2, MAX_ORDER, MIGRATE_ISOLATE, NODES_PGSHIFT, OFF_LRU_NEXT,
    OFF_LRU_PREV, PAGE_MAPCOUNT_NONE, PAGE_TYPE_BASE, PAGE_TYPE_BUDDY, PG_buddy, W_INDEX,
    W_MAPCOUNT, W_NEXT, W_PREV, W_PRIVATE, PAGE_WORDS, STRUCT_PAGE_SIZE,
    FreeArea, FreeList, Zone, migratetype_is_mergeable,
)
from mmemu.mm.pageblock import get_pfnblock_migratetype

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

_BUDDY_TYPE_MASK = PAGE_TYPE_BASE | PG_buddy


def _mem_map_pfn(mm: MmState, ptr: int) -> Optional[int]:
    """The pfn of struct page pointer ptr, or None when ptr is not one in mem_map."""
    off = ptr - mm.mvirt
    if off % STRUCT_PAGE_SIZE or not 0 <= off < mm.max_pfn * STRUCT_PAGE_SIZE:
        return None
    return off // STRUCT_PAGE_SIZE


def _link(mm: MmState, ptr: int, word: int) -> Optional[int]:
    """Word `word` of the struct page at ptr as the kernel would read it: from
    mem_map, or wherever ptr points (None if the kernel cannot read there)."""
    pfn = _mem_map_pfn(mm, ptr)
    if pfn is not None:
        return mm.u32[mm.mbase + pfn * PAGE_WORDS + word]
    return mm.kernel_word(ptr + 4 * word)


def _page_ptr(mm: MmState, pfn: int) -> int:
    """The struct page * of pfn; 0 for none (-1), mmemu's list head."""
    return mm.mvirt + pfn * STRUCT_PAGE_SIZE if pfn >= 0 else 0


def leak_block(mm: MmState, zone: Zone, pfn: int, order: int,
               migratetype: Optional[int] = None) -> None:
    """A free block off every list that a task took with it when it died (a
    CONFIG_DEBUG_LIST BUG met while it held the block): out of NR_FREE_PAGES
    (unless it was of MIGRATE_ISOLATE, never counted there), its PageBuddy
    mark cleared, remembered in mm.leaked so every page stays accounted for
    (the kernel just loses it)."""
    w = mm.mbase + pfn * PAGE_WORDS
    mm.u32[w + W_MAPCOUNT] = PAGE_MAPCOUNT_NONE
    mm.u32[w + W_PRIVATE] = 0
    if migratetype != MIGRATE_ISOLATE:
        zone.nr_free_pages -= 1 << order
        mm.zone_free_dropped(zone)
    mm.leak(pfn, order)


def set_buddy_order(mm: MmState, pfn: int, order: int) -> None:
    """set_buddy_order(): record the order in private and mark the head PageBuddy."""
    w = mm.mbase + (pfn * PAGE_WORDS)
    mm.u32[w + W_PRIVATE] = order
    mm.u32[w + W_MAPCOUNT] = PAGE_TYPE_BUDDY


def _list_add_bug(mm: MmState, new: int, prv: int, nxt: int, next_prev: int,
                  prev_next: int) -> NoReturn:
    """__list_add_valid() of links the caller found broken: its report and BUG
    (KernelOops)."""
    list_add_valid(mm.reporter, new, prv, nxt, next_prev, prev_next)
    raise AssertionError("__list_add_valid() passed links found broken")


def add_to_free_list(mm: MmState, zone: Zone, pfn: int, order: int, migratetype: int) -> None:
    """Put a free block at the head of its migratetype's list (it is taken first).

    Models mm/page_alloc.c:add_to_free_list().  When the first block's back
    link is broken or the block is already first, list_add()'s report and
    BUG: KernelOops, nothing added (the caller leaks the block).
    """
    u32, mbase = mm.u32, mm.mbase
    area = zone.free_area[order]
    head = area.free_list[migratetype]
    w = mbase + (pfn * PAGE_WORDS)
    first = head.first
    if first < 0:
        u32[w + W_NEXT] = 0
        head.last = pfn
    else:
        back = u32[mbase + (first * PAGE_WORDS) + W_PREV]
        if back or first == pfn:                 # list_add(): next->prev must be the head
            new, nxt = _page_ptr(mm, pfn), _page_ptr(mm, first)
            _list_add_bug(mm, new, 0, nxt, back, nxt)
        u32[w + W_NEXT] = mm.mvirt + (first * STRUCT_PAGE_SIZE)
        u32[mbase + (first * PAGE_WORDS) + W_PREV] = mm.mvirt + (pfn * STRUCT_PAGE_SIZE)
    u32[w + W_PREV] = 0
    head.first = pfn
    area.nr_free += 1


def add_to_free_list_tail(mm: MmState, zone: Zone, pfn: int, order: int, migratetype: int) -> None:
    """Put a free block at the tail of its migratetype's list, so it is taken last.

    Models mm/page_alloc.c:add_to_free_list_tail(): used when the block's
    buddy at the next order is free, so it is "less likely to be used soon
    and more likely to be merged" when that buddy's neighbour comes back,
    and for the boot's and moved blocks.  When the last block's forward
    link is broken or the block is already last, list_add_tail()'s report
    and BUG: KernelOops, nothing added.
    """
    u32, mbase = mm.u32, mm.mbase
    area = zone.free_area[order]
    head = area.free_list[migratetype]
    w = mbase + (pfn * PAGE_WORDS)
    last = head.last
    if last < 0:
        u32[w + W_PREV] = 0
        head.first = pfn
    else:
        fwd = u32[mbase + (last * PAGE_WORDS) + W_NEXT]
        if fwd or last == pfn:                   # list_add_tail(): prev->next must be the head
            new, prv = _page_ptr(mm, pfn), _page_ptr(mm, last)
            _list_add_bug(mm, new, prv, 0, prv, fwd)     # the head's prev is last: sound
        u32[w + W_PREV] = mm.mvirt + (last * STRUCT_PAGE_SIZE)
        u32[mbase + (last * PAGE_WORDS) + W_NEXT] = mm.mvirt + (pfn * STRUCT_PAGE_SIZE)
    u32[w + W_NEXT] = 0
    head.last = pfn
    area.nr_free += 1


def _unlink(mm: MmState, zone: Zone, order: int, pfn: int) -> None:
    """list_del() of a free block from whichever list of free_area[order] holds
    it, checked as __list_del_entry_valid() checks it: when a link does not
    hold, the report and BUG (KernelOops), nothing changed."""
    u32, mbase = mm.u32, mm.mbase
    area = zone.free_area[order]
    w = mbase + (pfn * PAGE_WORDS)
    nxt, prv = u32[w + W_NEXT], u32[w + W_PREV]
    nxt_pfn = _mem_map_pfn(mm, nxt) if nxt else -1
    prv_pfn = _mem_map_pfn(mm, prv) if prv else -1
    first = None if prv else _list_ending(area, pfn, "first")
    last = None if nxt else _list_ending(area, pfn, "last")
    entry = _page_ptr(mm, pfn)
    if (nxt_pfn is None or prv_pfn is None
            or (prv and u32[mbase + prv_pfn * PAGE_WORDS + W_NEXT] != entry) or first is False
            or (nxt and u32[mbase + nxt_pfn * PAGE_WORDS + W_PREV] != entry) or last is False):
        head = area.free_list[get_pfnblock_migratetype(zone, pfn)]
        _list_del_bug(mm, head, entry, nxt, prv)
    if nxt:
        u32[mbase + nxt_pfn * PAGE_WORDS + W_PREV] = prv
    else:
        assert last                      # the list pfn ends (found above)
        last.last = prv_pfn
    if prv:
        u32[mbase + prv_pfn * PAGE_WORDS + W_NEXT] = nxt
    else:
        assert first                     # the list pfn starts (found above)
        first.first = nxt_pfn


def _list_ending(area: FreeArea, pfn: int, end: str) -> Union[FreeList, Literal[False]]:
    """The FreeList of area whose first (or last) block is pfn; False if none
    is (the block's missing link points at a head that is not its own)."""
    for head in area.free_list:
        if getattr(head, end) == pfn:
            return head
    return False


def _list_del_bug(mm: MmState, head: FreeList, entry: int, nxt: int, prv: int) -> NoReturn:
    """__list_del_entry_valid()'s report and BUG (KernelOops) for an entry
    whose links do not hold (head: the list a 0 link is taken to mean, the
    block's pageblock's)."""
    def prev_next() -> Optional[int]:
        return _page_ptr(mm, head.first) if not prv else _link(mm, prv, W_NEXT)

    def next_prev() -> Optional[int]:
        return _page_ptr(mm, head.last) if not nxt else _link(mm, nxt, W_PREV)
    rep = mm.reporter
    if list_del_entry_valid(rep, entry, nxt, prv, prev_next, next_prev,
                            (OFF_LRU_NEXT, OFF_LRU_PREV)):
        # Sound as the kernel sees it, but through memory outside mem_map,
        # which mmemu's free lists never use: a chain the guest forged.
        outside = nxt if _mem_map_pfn(mm, nxt) is None and nxt else prv
        check_data_corruption(rep, DEL_NEXT_PREV, "__list_del_entry_valid",
                              f"list_del corruption. {entry:08x} is linked to {outside:08x}, "
                              "which is not a struct page",
                              notes=["mmemu: a free list links only struct pages of mem_map; "
                                     "this entry's neighbour lies outside it"])
    raise AssertionError("__list_del_entry_valid() passed links found broken")


def del_page_from_free_list(mm: MmState, zone: Zone, pfn: int, order: int) -> None:
    """Unlink a free block from its free list and clear its PageBuddy/order.

    Models mm/page_alloc.c:del_page_from_free_list(): list_del() leaves
    LIST_POISON1/2 in lru, __ClearPageBuddy(), set_page_private(page, 0).
    With CONFIG_DEBUG_LIST's checks first: a broken link is "list_del
    corruption" and a BUG (KernelOops); the block stays on its list.
    """
    _unlink(mm, zone, order, pfn)
    u32 = mm.u32
    w = mm.mbase + (pfn * PAGE_WORDS)
    u32[w + W_NEXT] = LIST_POISON1
    u32[w + W_PREV] = LIST_POISON2
    u32[w + W_MAPCOUNT] = PAGE_MAPCOUNT_NONE
    u32[w + W_PRIVATE] = 0
    zone.free_area[order].nr_free -= 1


def move_to_free_list(mm: MmState, zone: Zone, pfn: int, order: int, migratetype: int) -> None:
    """move_to_free_list(): a free block onto the tail of migratetype's list.

    Models mm/page_alloc.c:move_to_free_list() (list_move_tail()): "so the
    moved pages won't immediately be considered for allocation again".
    A broken link is CONFIG_DEBUG_LIST's BUG (KernelOops): list_del()'s
    leaves the block on its list; list_add_tail()'s comes with the block
    off every list, lost with the task (leaked).
    """
    area = zone.free_area[order]
    _unlink(mm, zone, order, pfn)
    area.nr_free -= 1
    try:
        add_to_free_list_tail(mm, zone, pfn, order, migratetype)
    except KernelOops:
        leak_block(mm, zone, pfn, order)         # off every list: lost with the task
        raise


def get_page_from_free_area(area: FreeArea, migratetype: int) -> int:
    """get_page_from_free_area(): the first block of a migratetype's list, or -1."""
    return area.free_list[migratetype].first


def free_area_empty(area: FreeArea, migratetype: int) -> bool:
    """free_area_empty(): migratetype's list of this order holds no block."""
    return area.free_list[migratetype].first < 0


def find_buddy_page_pfn(mm: MmState, pfn: int, order: int) -> Optional[int]:
    """The pfn of the block's buddy if that buddy is free at this order, else None.

    Models mm/page_alloc.c:find_buddy_page_pfn() with page_is_buddy(): the
    buddy is pfn ^ (1 << order); it must be PageBuddy, of the same order,
    and in the same zone of the same node (blocks never merge across zones).
    Differs: also None when the buddy lies beyond mem_map (Linux sizes
    mem_map to a whole MAX_ORDER block instead).
    """
    buddy = pfn ^ (1 << order)
    if buddy >= mm.max_pfn:
        return None
    u32, mbase = mm.u32, mm.mbase
    wb = mbase + (buddy * PAGE_WORDS)
    if (u32[wb + W_MAPCOUNT] & _BUDDY_TYPE_MASK) != PAGE_TYPE_BASE:
        return None
    if u32[wb + W_PRIVATE] != order:
        return None
    if (u32[wb] ^ u32[mbase + (pfn * PAGE_WORDS)]) >> NODES_PGSHIFT:
        return None
    return buddy


def buddy_merge_likely(mm: MmState, pfn: int, buddy_pfn: int, order: int) -> bool:
    """buddy_merge_likely(): is the buddy of the next-order block free already?"""
    if order >= MAX_ORDER - 2:
        return False
    higher = buddy_pfn & pfn
    return find_buddy_page_pfn(mm, higher, order + 1) is not None


def _free_one_page(mm: MmState, zone: Zone, pfn: int, order: int, migratetype: int,
                   to_tail: bool = False) -> tuple[int, int]:
    """Give a block back to the buddy lists, merging it with free buddies.

    Models mm/page_alloc.c:__free_one_page() (FPI_TO_TAIL as to_tail):
    while the buddy is free at this order, take it off its list (whatever
    its migratetype: below pageblock_order buddies of any types merge, and
    the merged block takes the freed block's migratetype) and go up one
    order; from pageblock_order up, blocks of two types merge only if both
    are mergeable (not MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE).  The result
    goes on the tail of migratetype's list when its next-order buddy is
    free (buddy_merge_likely), else on the head.  Counts the pages into
    NR_FREE_PAGES unless migratetype is MIGRATE_ISOLATE
    (__mod_zone_freepage_state()).  The caller has checked the pages
    (free_pages_prepare).  A buddy that cannot be unlinked (list_del
    corruption) or a list the block cannot join (list_add corruption) is
    CONFIG_DEBUG_LIST's BUG: the task dies there (KernelOops), and the
    block, with the buddies merged into it so far, is lost with it
    (leaked); the buddy whose links failed stays on its list.
    """
    if migratetype != MIGRATE_ISOLATE:
        zone.nr_free_pages += 1 << order
    pageblock_order = zone.pageblock_flags.order
    buddy_pfn = 0
    while order < MAX_ORDER - 1:
        buddy_pfn = pfn ^ (1 << order)
        if find_buddy_page_pfn(mm, pfn, order) is None:
            break
        if order >= pageblock_order:
            buddy_mt = get_pfnblock_migratetype(zone, buddy_pfn)
            if migratetype != buddy_mt and not (migratetype_is_mergeable(migratetype)
                                                and migratetype_is_mergeable(buddy_mt)):
                break
        try:
            del_page_from_free_list(mm, zone, buddy_pfn, order)
        except KernelOops:
            leak_block(mm, zone, pfn, order, migratetype)     # lost with the task
            raise
        pfn &= buddy_pfn
        order += 1
    set_buddy_order(mm, pfn, order)
    try:
        if to_tail or buddy_merge_likely(mm, pfn, buddy_pfn, order):
            add_to_free_list_tail(mm, zone, pfn, order, migratetype)
        else:
            add_to_free_list(mm, zone, pfn, order, migratetype)
    except KernelOops:
        leak_block(mm, zone, pfn, order, migratetype)
        raise
    return pfn, order


def expand(mm: MmState, zone: Zone, pfn: int, low: int, high: int, migratetype: int) -> None:
    """Split a block of order high down to order low, freeing the upper halves.

    Models mm/page_alloc.c:expand(): each upper half goes on the head of
    migratetype's list of its order.  Differs: no guard pages.  A list the
    half cannot join (list_add corruption) is CONFIG_DEBUG_LIST's BUG: the
    task dies in expand() (KernelOops), and what it still held, that half
    and the lower one it was splitting, is lost with it: leaked as one
    block, out of NR_FREE_PAGES (the halves added before stay free).
    """
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        try:
            add_to_free_list(mm, zone, pfn + size, high, migratetype)
        except KernelOops:
            leak_block(mm, zone, pfn, high + 1, migratetype)
            raise
        set_buddy_order(mm, pfn + size, high)


def _rmqueue_smallest(mm: MmState, zone: Zone, order: int, migratetype: int) -> Optional[int]:
    """Take the first block of migratetype's lists of the smallest order >= order.

    Models mm/page_alloc.c:__rmqueue_smallest(): the block is split to size
    (expand()) and its page->index records the migratetype it was taken as
    (set_pcppage_migratetype()).  Returns the pfn (Linux: struct page *),
    or None.  The caller takes the pages out of NR_FREE_PAGES.  A first
    block whose links are broken is list_del corruption and the BUG
    (KernelOops): no other block or order is tried, as the task is dead.
    """
    area = zone.free_area
    for current in range(order, MAX_ORDER):
        pfn = area[current].free_list[migratetype].first
        if pfn < 0:
            continue
        del_page_from_free_list(mm, zone, pfn, current)
        expand(mm, zone, pfn, order, current, migratetype)
        mm.u32[mm.mbase + (pfn * PAGE_WORDS) + W_INDEX] = migratetype
        return pfn
    return None
