"""The per-cpu page lists (pcp) of the one online CPU.

Models the pcp half of mm/page_alloc.c, Linux 6.1: orders 0 to
PAGE_ALLOC_COSTLY_ORDER are freed onto a per-cpu list and allocated from it,
refilled from the buddy lists batch pages at a time (rmqueue_bulk) and
drained back batch pages at a time once pcp->count reaches pcp->high
(free_pcppages_bulk); batch and high follow zone_batchsize() and
zone_highsize() (high = the zone's low watermark).

The lists are host Python lists of pfns (bounded by high), head at the end;
the pages on them have _refcount 0 and no page type, and their lru words are
clear.  Differs: one list per order (no migratetypes); no free_factor
(frees always drain batch pages, never the whole list); pages that fail the
checks at drain or refill are reported and repaired, not leaked.
"""
from mmemu.mm.freelist import _free_one_page, _rmqueue_smallest
from mmemu.mm.mmzone import PAGE_ALLOC_COSTLY_ORDER, PAGE_FLAGS_CHECK_AT_PREP, W_NEXT, W_PREV, PAGE_WORDS
from mmemu.mm.page_alloc_debug import check_new_page, free_page_is_bad, reset_free_page

SZ_1M_PAGES = 256


def pcp_allowed_order(order):
    """pcp_allowed_order(): orders that go through the per-cpu lists."""
    return order <= PAGE_ALLOC_COSTLY_ORDER


def _rounddown_pow_of_two(n):
    return 1 << (n.bit_length() - 1)


def zone_batchsize(zone):
    """zone_batchsize(): ~0.1% of the zone or 1 MiB, /4, clamped to 2^n - 1."""
    batch = min(zone.managed_pages >> 10, SZ_1M_PAGES) // 4
    batch = max(batch, 1)
    return _rounddown_pow_of_two(batch + batch // 2) - 1


def zone_highsize(mm, zone, batch, cpu_online):
    """zone_highsize(): the low watermark split over the node's CPUs, at least 4 batches."""
    if mm.percpu_pagelist_high_fraction:
        total = zone.managed_pages // mm.percpu_pagelist_high_fraction
    else:
        total = zone.low_wmark_pages()
    nr_split_cpus = int(zone.zone_pgdat.has_cpu) + cpu_online
    if not nr_split_cpus:
        nr_split_cpus = 1                  # num_online_cpus()
    return max(total // nr_split_cpus, batch << 2)


def zone_pcp_update(mm, zone, cpu_online=0):
    """zone_pcp_update(): recompute the zone's pcp batch and high."""
    pcp = zone.per_cpu_pageset
    pcp.batch = max(1, zone_batchsize(zone))
    pcp.high = zone_highsize(mm, zone, pcp.batch, cpu_online)
    pcp.hi_changed(0)


def rmqueue_bulk(mm, zone, order, count, lst):
    """Move up to count blocks of this order from the buddy lists to a pcp list.

    Models mm/page_alloc.c:rmqueue_bulk(): blocks come out of
    __rmqueue_smallest() in physical order and are added at the list's tail,
    so the first one is allocated first; each is checked as a new page
    (check_pcp_refill) and the pages leave NR_FREE_PAGES.  Returns the count.
    """
    u32, mbase = mm.u32, mm.mbase
    taken = []
    for _ in range(count):
        pfn = _rmqueue_smallest(mm, zone, order)
        if pfn is None:
            break
        w = mbase + (pfn * PAGE_WORDS)
        # The pcp chain is host-side: clear lru, so an allocation finds
        # lru.next (the pfmemalloc bit) clear as clear_page_pfmemalloc() leaves it.
        u32[w + W_NEXT] = 0
        u32[w + W_PREV] = 0
        check_new_page(mm, pfn)
        taken.append(pfn)
    zone.nr_free_pages -= len(taken) << order
    mm.zone_free_dropped(zone)
    taken.reverse()
    lst[0:0] = taken
    if order:
        zone.per_cpu_pageset.hi_changed(len(taken) << order)
    return len(taken)


def rmqueue_pcplist(mm, zone, order):
    """Take a block of this order from the zone's pcp list, refilling it if empty.

    Models mm/page_alloc.c:rmqueue_pcplist()/__rmqueue_pcplist(): an empty
    list is refilled with batch blocks (batch >> order, at least 2, for
    order > 0).  Returns the pfn or None.
    """
    pcp = zone.per_cpu_pageset
    lst = pcp.lists[order]
    if not lst:
        batch = pcp.batch
        if batch > 1:
            batch = max(batch >> order, 2)
        rmqueue_bulk(mm, zone, order, batch, lst)
        if not lst:
            return None
    pfn = lst.pop()
    if order:
        pcp.hi_changed(-(1 << order))
    return pfn


def nr_pcp_free(pcp, high, batch):
    """nr_pcp_free(): how many pages a drain frees (batch, leaving at least batch)."""
    if high < batch:
        return 1
    # clamp(batch << free_factor, batch, high - batch) with free_factor 0
    return min(batch, high - batch)


def free_unref_page_commit(mm, zone, pfn, order):
    """Put a checked block on the pcp list; drain a batch if the list is full.

    Models mm/page_alloc.c:free_unref_page_commit() (ZONE_RECLAIM_ACTIVE and
    free_factor not modelled: high is pcp->high, the drain is a batch).
    The work is the zone's commit function (make_free_unref_page_commit()),
    the one copy that page_alloc's order-0 fast path calls as well.
    """
    mm.pcp_commit[zone.zone_id](pfn, order)


def make_free_unref_page_commit(mm, zone):
    """free_unref_page_commit() for one zone, as commit(pfn, order).

    MmState.pcp_commit holds one per zone: free_unref_page_commit() and the
    order-0 fast path of page_alloc._free_pages() both call it, so the rule
    (the block goes on its list; pcp->count reaching pcp->high drains a
    batch) is written once.  pcp->count >= pcp->high is tested as the
    order-0 list's length against high0 (PerCpuPages: high less the pages on
    the other lists), one comparison however many lists there are.  The
    lists are bound here once: PerCpuPages never replaces them.
    """
    pcp = zone.per_cpu_pageset
    fast, order0 = pcp.fast, pcp.lists[0]
    appends = tuple(lst.append for lst in pcp.lists)

    def commit(pfn, order):
        appends[order](pfn)
        if order:
            pcp.hi_changed(1 << order)
        if len(order0) >= fast[1]:             # pcp->count >= pcp->high
            drain_batch(mm, zone, order)
    return commit


def drain_batch(mm, zone, pindex=0):
    """The drain free_unref_page_commit() does when pcp->count reaches pcp->high."""
    pcp = zone.per_cpu_pageset
    free_pcppages_bulk(mm, zone, nr_pcp_free(pcp, pcp.high, pcp.batch), pcp, pindex)


def _next_list(pcp, pindex, bounds):
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


def free_pcppages_bulk(mm, zone, count, pcp, pindex):
    """Return count pages from the pcp lists to the buddy lists, oldest first.

    Models mm/page_alloc.c:free_pcppages_bulk(): lists are visited round
    robin starting after pindex, each emptied from its tail until count
    pages have gone; each page is checked (bulkfree_pcp_prepare) and merged
    by __free_one_page().
    """
    count = min(pcp.count, count)
    bounds = [0, len(pcp.lists) - 1]
    pindex -= 1
    while count > 0:
        pindex = _next_list(pcp, pindex, bounds)
        lst, nr_pages = pcp.lists[pindex], 1 << pindex
        take = min(len(lst), -(-count // nr_pages))
        victims = lst[:take]
        del lst[:take]
        count -= take * nr_pages
        if pindex:
            pcp.hi_changed(-take * nr_pages)
        for pfn in victims:
            _bulkfree_pcp_prepare(mm, pfn)
            _free_one_page(mm, zone, pfn, pindex)


def _bulkfree_pcp_prepare(mm, pfn):
    """bulkfree_pcp_prepare(): the deferred check of a page freed to a pcp list.

    Reports what free_page_is_bad() finds; then the page gets a free page's
    state (differs: the kernel leaks a bad page; mmemu repairs it, so it
    stays accounted for) and loses the PG_ flags free_pages_prepare()
    would have cleared.
    """
    if free_page_is_bad(mm, pfn):
        reset_free_page(mm, pfn)
    else:
        mm.u32[mm.mbase + (pfn * PAGE_WORDS)] &= ~PAGE_FLAGS_CHECK_AT_PREP


def drain_pages_zone(mm, zone):
    """drain_pages_zone(): empty the zone's pcp lists into the buddy lists."""
    pcp = zone.per_cpu_pageset
    if pcp.count:
        free_pcppages_bulk(mm, zone, pcp.count, pcp, 0)


def drain_all_pages(mm, zone=None):
    """drain_all_pages(): drain one zone's pcp lists, or every zone's."""
    for z in ([zone] if zone is not None else mm.zones):
        drain_pages_zone(mm, z)

