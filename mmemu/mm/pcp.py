"""The per-cpu page lists (pcp) of the one online CPU.

Models the pcp half of mm/page_alloc.c, Linux 6.1 with
CONFIG_TRANSPARENT_HUGEPAGE: orders 0 to PAGE_ALLOC_COSTLY_ORDER and
pageblock_order (a THP) are freed onto a per-cpu list and allocated from
it; a list per migratetype and order (order_to_pindex(): NR_PCP_LISTS =
MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1) + NR_PCP_THP), refilled
from the buddy lists batch pages at a time (rmqueue_bulk(), which may
steal through __rmqueue_fallback()) and drained back once pcp->count
reaches pcp->high (free_pcppages_bulk(), round robin over the lists, each
page to the free list of the migratetype it cached in page->index when it
was freed): batch pages, twice as many at each further drain without an
allocation between (free_factor, capped by CONFIG_PCP_BATCH_SCALE_MAX),
and every list when a block of order 1-3 is freed after a drain
(free_high); batch and high follow zone_batchsize() and zone_highsize()
(high = the zone's low watermark; the boot pageset's high 0 and batch 1
until setup_per_cpu_pageset()).

The lists live in guest memory as 6.1's do, linked through page->pcp_list,
where guest code allocates and frees order-0 pages without the host; between
guest runs the host may hold them as Python lists of pfns, head at the end
(mm/pcp_list.py moves them; mm/mmzone.py PerCpuPages says what both kinds
answer).  The pages on them have _refcount 0 and no page type, and
page->index holds their migratetype (set_pcppage_migratetype()).  Differs:
no reclaim, so ZONE_RECLAIM_ACTIVE never lowers high.  Pages that fail the
checks at drain or refill are reported and leaked, as in 6.1 (kept in
mm.leaked, so the checker still accounts for them).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from mmemu.mm.fallback import _rmqueue
from mmemu.mm.freelist import _free_one_page
from mmemu.mm.mmzone import (
    LIST_POISON2, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_TYPES, PCP_COUNT,
    PCP_HIGH,
    PAGE_ALLOC_COSTLY_ORDER, PAGE_FLAGS_CHECK_AT_PREP, PAGE_WORDS, W_INDEX, W_NEXT, W_PREV,
    PerCpuPages, Zone, order_to_pindex, pindex_to_order,
)
from mmemu.mm.page_alloc_debug import check_new_page, free_page_is_bad
from mmemu.mm.page import page_zone
from mmemu.mm.pageblock import get_pfnblock_migratetype

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

SZ_1M_PAGES = 256
PCP_BATCH_SCALE_MAX = 5          # CONFIG_PCP_BATCH_SCALE_MAX, as Debian's 6.1 config sets it


def pcp_allowed_order(order: int, thp_order: int) -> bool:
    """pcp_allowed_order(): orders that go through the per-cpu lists (thp_order:
    pageblock_order, a THP's)."""
    return order <= PAGE_ALLOC_COSTLY_ORDER or order == thp_order


def _rounddown_pow_of_two(n: int) -> int:
    return 1 << (n.bit_length() - 1)


def zone_batchsize(zone: Zone) -> int:
    """zone_batchsize(): ~0.1% of the zone or 1 MiB, /4, clamped to 2^n - 1."""
    batch = min(zone.managed_pages >> 10, SZ_1M_PAGES) // 4
    batch = max(batch, 1)
    return _rounddown_pow_of_two(batch + batch // 2) - 1


def zone_highsize(mm: MmState, zone: Zone, batch: int, cpu_online: int) -> int:
    """zone_highsize(): the low watermark split over the node's CPUs, at least 4 batches."""
    if mm.percpu_pagelist_high_fraction:
        total = zone.managed_pages // mm.percpu_pagelist_high_fraction
    else:
        total = zone.low_wmark_pages()
    pgdat = zone.zone_pgdat
    nr_split_cpus = int(pgdat is not None and pgdat.has_cpu) + cpu_online
    if not nr_split_cpus:
        nr_split_cpus = 1                  # num_online_cpus()
    return max(total // nr_split_cpus, batch << 2)


def zone_pcp_update(mm: MmState, zone: Zone, cpu_online: int = 0) -> None:
    """zone_pcp_update(): recompute the zone's pcp batch and high
    (setup_zone_pageset() at boot: the same numbers)."""
    pcp = zone.per_cpu_pageset
    pcp.batch = max(1, zone_batchsize(zone))
    pcp.high = zone_highsize(mm, zone, pcp.batch, cpu_online)
    pcp.rebudget()


def rmqueue_bulk(mm: MmState, zone: Zone, order: int, count: int, lst: Any,
                 migratetype: int, alloc_flags: int) -> int:
    """Move up to count blocks of this order and migratetype from the buddy lists
    to a pcp list.

    Models mm/page_alloc.c:rmqueue_bulk(): blocks come out of __rmqueue()
    (which may steal a pageblock of another type) in physical order and are
    added at the list's tail, so the first one is allocated first; each is
    checked as a new page (check_pcp_refill) and the pages leave
    NR_FREE_PAGES.  A BUG on the way (a free list the guest broke) leaves
    the blocks taken before it on the pcp list, as 6.1's loop, which adds
    each as it goes, leaves them.  Returns the count.
    """
    u32, mbase = mm.u32, mm.mbase
    taken: list[int] = []
    try:
        for _ in range(count):
            pfn = _rmqueue(mm, zone, order, migratetype, alloc_flags)
            if pfn is None:
                break
            w = mbase + (pfn * PAGE_WORDS)
            # What list_del() and clear_page_pfmemalloc() will have left when
            # the block is allocated (a list in guest memory links it again).
            u32[w + W_NEXT] = 0
            u32[w + W_PREV] = LIST_POISON2
            if any(check_new_page(mm, p) for p in range(pfn, pfn + (1 << order))):
                zone.nr_free_pages -= 1 << order          # check_pcp_refill(): reported, leaked
                mm.leak(pfn, order)
                continue
            taken.append(pfn)
    finally:
        zone.nr_free_pages -= len(taken) << order
        mm.zone_free_dropped(zone)
        if isinstance(lst, list):
            lst[0:0] = taken[::-1]
        else:
            lst.add_tail(taken)               # list_add_tail() each, in guest memory
        zone.per_cpu_pageset.rebudget()
    return len(taken)


def rmqueue_pcplist(mm: MmState, zone: Zone, order: int, migratetype: int,
                    alloc_flags: int) -> Optional[int]:
    """Take a block from the zone's pcp list of this order and migratetype,
    refilling the list if it is empty.

    Models mm/page_alloc.c:rmqueue_pcplist()/__rmqueue_pcplist(): an empty
    list is refilled with batch blocks (batch >> order, at least 2, for
    order > 0); every allocation halves free_factor.  Returns the pfn or
    None.  Differs: a migratetype beyond
    the pcp types (a mask with both __GFP_MOVABLE and __GFP_RECLAIMABLE,
    which 6.1 would file on another order's list) is not served here.
    """
    pcp = zone.per_cpu_pageset
    pcp.free_factor >>= 1                  # an allocation: the next drain frees less
    if migratetype >= MIGRATE_PCPTYPES:
        return None
    lst = pcp.lists[order_to_pindex(migratetype, order, pcp.thp_order)]
    if not lst:
        batch = pcp.batch
        if batch > 1:
            batch = max(batch >> order, 2)
        rmqueue_bulk(mm, zone, order, batch, lst, migratetype, alloc_flags)
        if not lst:
            return None
    return int(lst.pop())                  # a broken list in guest memory: KernelOops


def nr_pcp_free(pcp: PerCpuPages, high: int, batch: int, free_high: bool) -> int:
    """nr_pcp_free(): how many pages a drain gives back to the buddy lists.

    All of them for free_high; one for a boot pageset (high < batch);
    else batch << free_factor clamped to [batch, high - batch], and
    free_factor grows by one while that stays below high - batch and
    below PCP_BATCH_SCALE_MAX.
    """
    if free_high:
        return pcp.count
    if high < batch:
        return 1
    min_nr_free, max_nr_free = batch, high - batch
    batch <<= pcp.free_factor
    if batch < max_nr_free and pcp.free_factor < PCP_BATCH_SCALE_MAX:
        pcp.free_factor += 1
    return min(max(batch, min_nr_free), max_nr_free)       # clamp()


def nr_pcp_high(pcp: PerCpuPages, free_high: bool) -> int:
    """nr_pcp_high(): the count at which a free drains: pcp->high (no reclaim,
    so never less), 0 (drain now) for free_high."""
    if not pcp.high or free_high:
        return 0
    return pcp.high


def pcp_count_reached(mm: MmState, zone: Zone, pindex: int, free_high: bool = False) -> None:
    """free_unref_page_commit()'s test, once a free may have filled the lists:
    pcp->count reaching nr_pcp_high() drains nr_pcp_free() pages, starting
    with list pindex; then the fast path's budgets are set again
    (PerCpuPages).  A drain that leaves free_factor set drops the order-0
    allocation plans: the fast path pops pages without rmqueue_pcplist(),
    which must halve free_factor on the next allocations."""
    pcp = zone.per_cpu_pageset
    count, high = pcp.count, nr_pcp_high(pcp, free_high)
    if count >= high:
        free_pcppages_bulk(mm, zone, nr_pcp_free(pcp, high, pcp.batch, free_high), pcp, pindex)
        if pcp.free_factor:
            mm.fast_alloc.clear()
        count = pcp.count
    pcp.rebudget(pindex, high - count)


def free_unref_page(mm: MmState, zone: Zone, pfn: int, order: int,
                    migratetype: Optional[int] = None) -> None:
    """free_unref_page(): a checked block of a pcp order onto its pcp list.

    The pageblock's migratetype (looked up unless the caller did) is cached
    in page->index (free_unref_page_prepare()); MIGRATE_HIGHATOMIC pages go
    on the movable list (so that they can come back), MIGRATE_ISOLATE ones
    straight to the buddy lists (free_one_page()).
    """
    if migratetype is None:
        migratetype = get_pfnblock_migratetype(zone, pfn)
    mm.u32[mm.mbase + (pfn * PAGE_WORDS) + W_INDEX] = migratetype
    pcpmigratetype = migratetype
    if migratetype >= MIGRATE_PCPTYPES:
        if migratetype == MIGRATE_ISOLATE:
            _free_one_page(mm, zone, pfn, order, migratetype)
            return
        pcpmigratetype = MIGRATE_MOVABLE
    free_unref_page_commit(mm, zone, pfn, order, pcpmigratetype)


def free_unref_page_commit(mm: MmState, zone: Zone, pfn: int, order: int, migratetype: int) -> None:
    """free_unref_page_commit(): the block on its list; a drain if pcp->count
    reached nr_pcp_high().  A block of order 1-3 freed while free_factor is
    set (a drain since the last allocation) drains every list (free_high):
    such blocks fragment memory while they sit there.  (No reclaim, so
    ZONE_RECLAIM_ACTIVE is never set.)"""
    pcp = zone.per_cpu_pageset
    pindex = order_to_pindex(migratetype, order, pcp.thp_order)
    pcp.lists[pindex].append(pfn)
    free_high = bool(pcp.free_factor) and 0 < order <= PAGE_ALLOC_COSTLY_ORDER
    pcp_count_reached(mm, zone, pindex, free_high)


def make_fast_free_commit(mm: MmState, zone: Zone, migratetype: int) -> Callable[[int], None]:
    """free_unref_page() of an order-0 page of a migratetype's pageblock, as
    commit(pfn): the order-0 fast path of page_alloc._free_pages().

    The page caches the migratetype in page->index and goes on its list;
    pcp->count is not summed on every free: the list's length is compared
    with its budget (PerCpuPages), and only a list reaching it counts
    pcp->count again (pcp_count_reached()), which drains when that reached
    high.  MIGRATE_HIGHATOMIC and MIGRATE_ISOLATE pageblocks have no commit
    of their own (pageblock.FAST_FREE_LOOKUP: free_unref_page()).
    """
    pcp = zone.per_cpu_pageset
    lst = pcp.lists[migratetype]                 # order_to_pindex(migratetype, 0)
    append, budget = lst.append, pcp.budget
    indexes = mm.page_index

    def commit(pfn: int) -> None:
        indexes[pfn] = migratetype               # set_pcppage_migratetype()
        append(pfn)
        if len(lst) >= budget[migratetype]:      # pcp->count may be >= pcp->high
            pcp_count_reached(mm, zone, migratetype)
    return commit


def make_guest_free_commit(mm: MmState, zone: Zone, migratetype: int) -> Callable[[int], None]:
    """make_fast_free_commit() while the lists are in guest memory:
    free_unref_page() of the order-0 page (a checked list_add(), pcp->count
    in guest memory, the drain once it reaches high)."""
    pcp = zone.per_cpu_pageset
    lst, words, indexes = pcp.lists[migratetype], pcp.words, mm.page_index

    def commit(pfn: int) -> None:
        indexes[pfn] = migratetype               # set_pcppage_migratetype()
        lst.append(pfn)
        if words[PCP_COUNT] >= words[PCP_HIGH]:
            pcp_count_reached(mm, zone, migratetype)
    return commit


def make_lookup_free_commit(mm: MmState) -> Callable[[int], None]:
    """commit(pfn) for the pages whose pageblock the fast path must look up."""
    def commit(pfn: int) -> None:
        free_unref_page(mm, page_zone(mm, pfn), pfn, 0)
    return commit


def _next_list(pcp: PerCpuPages, pindex: int, bounds: list[int]) -> int:
    """The round-robin step of free_pcppages_bulk(): the next non-empty list."""
    while True:
        pindex += 1
        if pindex > bounds[1]:
            pindex = bounds[0]
        if pcp.lists[pindex]:
            return pindex
        if pindex == bounds[1]:
            bounds[1] -= 1
        if pindex == bounds[0]:
            bounds[0] += 1


def free_pcppages_bulk(mm: MmState, zone: Zone, count: int, pcp: PerCpuPages, pindex: int) -> None:
    """Return count pages from the pcp lists to the buddy lists, oldest first.

    Models mm/page_alloc.c:free_pcppages_bulk(): lists are visited round
    robin starting with pindex, each emptied from its tail until count
    pages have gone; each page is checked (bulkfree_pcp_prepare) and merged
    by __free_one_page() onto the free list of the migratetype its
    page->index cached (get_pcppage_migratetype(); differs: an index the
    guest overwrote with no migratetype is read from the pageblock instead).
    """
    count = min(pcp.count, count)
    bounds = [0, len(pcp.lists) - 1]
    pindex -= 1
    while count > 0 and any(pcp.lists):
        pindex = _next_list(pcp, pindex, bounds)
        lst = pcp.lists[pindex]
        order = pindex_to_order(pindex, pcp.thp_order)
        nr_pages = 1 << order
        want = -(-count // nr_pages)
        if isinstance(lst, list):
            take = min(len(lst), want)
            victims = lst[:take]
            del lst[:take]
            for i, pfn in enumerate(victims):
                try:
                    _free_pcp_block(mm, zone, pfn, order)
                except BaseException:
                    # A BUG (a free list the guest broke): the blocks not yet
                    # freed are still on the list, as 6.1 takes them one by one.
                    lst[0:0] = victims[i + 1:]
                    pcp.rebudget()
                    raise
        else:
            take = 0
            while take < want and lst:
                try:
                    pfn = lst.pop_tail()
                except IndexError:             # a broken list (reported): drain no more
                    count = 0
                    break
                _free_pcp_block(mm, zone, pfn, order)
                take += 1
        count -= take * nr_pages
    pcp.rebudget()


def _free_pcp_block(mm: MmState, zone: Zone, pfn: int, order: int) -> None:
    """free_pcppages_bulk()'s step for one block off a list: checked, then
    merged onto the free list its page->index names."""
    mt = mm.u32[mm.mbase + (pfn * PAGE_WORDS) + W_INDEX]
    if mt >= MIGRATE_TYPES:
        mt = get_pfnblock_migratetype(zone, pfn)
    if _bulkfree_pcp_prepare(mm, pfn):
        mm.leak(pfn, order)                  # 6.1: "continue", the page is lost
    else:
        _free_one_page(mm, zone, pfn, order, mt)


def _bulkfree_pcp_prepare(mm: MmState, pfn: int) -> bool:
    """bulkfree_pcp_prepare(): the deferred check of a page freed to a pcp list.

    True when free_page_is_bad() reported the page (the caller leaks it, as
    6.1's free_pcppages_bulk() does); else the page loses the PG_ flags
    free_pages_prepare() would have cleared.
    """
    if free_page_is_bad(mm, pfn):
        return True
    mm.u32[mm.mbase + (pfn * PAGE_WORDS)] &= ~PAGE_FLAGS_CHECK_AT_PREP
    return False


def drain_pages_zone(mm: MmState, zone: Zone) -> None:
    """drain_pages_zone(): empty the zone's pcp lists into the buddy lists."""
    pcp = zone.per_cpu_pageset
    if pcp.count:
        free_pcppages_bulk(mm, zone, pcp.count, pcp, 0)


def drain_all_pages(mm: MmState, zone: Optional[Zone] = None) -> None:
    """drain_all_pages(): drain one zone's pcp lists, or every zone's."""
    for z in ([zone] if zone is not None else mm.zones):
        drain_pages_zone(mm, z)

