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
"""
from mmemu.errors import PageAllocCorruption
from mmemu.mm.mmzone import (
    LIST_POISON1, LIST_POISON2, MAX_ORDER, MIGRATE_ISOLATE, NODES_PGSHIFT, PAGE_MAPCOUNT_NONE,
    PAGE_TYPE_BASE, PAGE_TYPE_BUDDY, PG_buddy, W_INDEX, W_MAPCOUNT, W_NEXT, W_PREV, W_PRIVATE,
    PAGE_WORDS, STRUCT_PAGE_SIZE, migratetype_is_mergeable,
)
from mmemu.mm.pageblock import get_pfnblock_migratetype

_BUDDY_TYPE_MASK = PAGE_TYPE_BASE | PG_buddy


def _link_pfn(mm, ptr, where):
    """The pfn a free-list link points at; a link outside mem_map is corruption."""
    off = ptr - mm.mvirt
    pfn = off // STRUCT_PAGE_SIZE
    if off % STRUCT_PAGE_SIZE or not 0 <= pfn < mm.max_pfn:
        raise PageAllocCorruption(f"free list link 0x{ptr:08x} in {where} is not a "
                                  f"struct page in mem_map")
    return pfn


def set_buddy_order(mm, pfn, order):
    """set_buddy_order(): record the order in private and mark the head PageBuddy."""
    w = mm.mbase + (pfn * PAGE_WORDS)
    mm.u32[w + W_PRIVATE] = order
    mm.u32[w + W_MAPCOUNT] = PAGE_TYPE_BUDDY


def add_to_free_list(mm, zone, pfn, order, migratetype):
    """Put a free block at the head of its migratetype's list (it is taken first).

    Models mm/page_alloc.c:add_to_free_list().
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
        u32[w + W_NEXT] = mm.mvirt + (first * STRUCT_PAGE_SIZE)
        u32[mbase + (first * PAGE_WORDS) + W_PREV] = mm.mvirt + (pfn * STRUCT_PAGE_SIZE)
    u32[w + W_PREV] = 0
    head.first = pfn
    area.nr_free += 1


def add_to_free_list_tail(mm, zone, pfn, order, migratetype):
    """Put a free block at the tail of its migratetype's list, so it is taken last.

    Models mm/page_alloc.c:add_to_free_list_tail(): used when the block's
    buddy at the next order is free, so it is "less likely to be used soon
    and more likely to be merged" when that buddy's neighbour comes back,
    and for the boot's and moved blocks.
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
        u32[w + W_PREV] = mm.mvirt + (last * STRUCT_PAGE_SIZE)
        u32[mbase + (last * PAGE_WORDS) + W_NEXT] = mm.mvirt + (pfn * STRUCT_PAGE_SIZE)
    u32[w + W_NEXT] = 0
    head.last = pfn
    area.nr_free += 1


def _unlink(mm, area, pfn, where):
    """list_del() of a free block from whichever list of area holds it."""
    u32, mbase = mm.u32, mm.mbase
    w = mbase + (pfn * PAGE_WORDS)
    nxt, prv = u32[w + W_NEXT], u32[w + W_PREV]
    if nxt:
        u32[mbase + (_link_pfn(mm, nxt, "lru.next") * PAGE_WORDS) + W_PREV] = prv
    else:
        _list_ending(area, pfn, "last", where).last = _link_pfn(mm, prv, "lru.prev") if prv else -1
    if prv:
        u32[mbase + (_link_pfn(mm, prv, "lru.prev") * PAGE_WORDS) + W_NEXT] = nxt
    else:
        head = _list_ending(area, pfn, "first", where)
        head.first = _link_pfn(mm, nxt, "lru.next") if nxt else -1


def _list_ending(area, pfn, end, where):
    """The FreeList of area whose first (or last) block is pfn."""
    for head in area.free_list:
        if getattr(head, end) == pfn:
            return head
    link = "prev" if end == "first" else "next"
    raise PageAllocCorruption(f"free block pfn {pfn:#x} has no {link} link, yet no free list "
                              f"of {where} starts or ends there")


def del_page_from_free_list(mm, zone, pfn, order):
    """Unlink a free block from its free list and clear its PageBuddy/order.

    Models mm/page_alloc.c:del_page_from_free_list(): list_del() leaves
    LIST_POISON1/2 in lru, __ClearPageBuddy(), set_page_private(page, 0).
    """
    u32 = mm.u32
    area = zone.free_area[order]
    _unlink(mm, area, pfn, f"free_area[{order}]")
    w = mm.mbase + (pfn * PAGE_WORDS)
    u32[w + W_NEXT] = LIST_POISON1
    u32[w + W_PREV] = LIST_POISON2
    u32[w + W_MAPCOUNT] = PAGE_MAPCOUNT_NONE
    u32[w + W_PRIVATE] = 0
    area.nr_free -= 1


def move_to_free_list(mm, zone, pfn, order, migratetype):
    """move_to_free_list(): a free block onto the tail of migratetype's list.

    Models mm/page_alloc.c:move_to_free_list() (list_move_tail()): "so the
    moved pages won't immediately be considered for allocation again".
    """
    area = zone.free_area[order]
    _unlink(mm, area, pfn, f"free_area[{order}]")
    area.nr_free -= 1
    add_to_free_list_tail(mm, zone, pfn, order, migratetype)


def get_page_from_free_area(area, migratetype):
    """get_page_from_free_area(): the first block of a migratetype's list, or -1."""
    return area.free_list[migratetype].first


def free_area_empty(area, migratetype):
    """free_area_empty(): migratetype's list of this order holds no block."""
    return area.free_list[migratetype].first < 0


def find_buddy_page_pfn(mm, pfn, order):
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


def buddy_merge_likely(mm, pfn, buddy_pfn, order):
    """buddy_merge_likely(): is the buddy of the next-order block free already?"""
    if order >= MAX_ORDER - 2:
        return False
    higher = buddy_pfn & pfn
    return find_buddy_page_pfn(mm, higher, order + 1) is not None


def _free_one_page(mm, zone, pfn, order, migratetype, to_tail=False):
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
    (free_pages_prepare).
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
        del_page_from_free_list(mm, zone, buddy_pfn, order)
        pfn &= buddy_pfn
        order += 1
    set_buddy_order(mm, pfn, order)
    if to_tail or buddy_merge_likely(mm, pfn, buddy_pfn, order):
        add_to_free_list_tail(mm, zone, pfn, order, migratetype)
    else:
        add_to_free_list(mm, zone, pfn, order, migratetype)
    return pfn, order


def expand(mm, zone, pfn, low, high, migratetype):
    """Split a block of order high down to order low, freeing the upper halves.

    Models mm/page_alloc.c:expand(): each upper half goes on the head of
    migratetype's list of its order.  Differs: no guard pages.
    """
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        add_to_free_list(mm, zone, pfn + size, high, migratetype)
        set_buddy_order(mm, pfn + size, high)


def _rmqueue_smallest(mm, zone, order, migratetype):
    """Take the first block of migratetype's lists of the smallest order >= order.

    Models mm/page_alloc.c:__rmqueue_smallest(): the block is split to size
    (expand()) and its page->index records the migratetype it was taken as
    (set_pcppage_migratetype()).  Returns the pfn (Linux: struct page *),
    or None.  The caller takes the pages out of NR_FREE_PAGES.
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
