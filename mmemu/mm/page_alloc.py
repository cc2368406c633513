"""The buddy page allocator: alloc_pages() and __free_pages() and their family.

Models mm/page_alloc.c of Linux 6.1.176 (i386, one CPU online):
__alloc_pages() tries the zonelist at the low watermark, then the slow path
at the min watermark with the rights the gfp mask gives (__GFP_HIGH,
GFP_ATOMIC), __GFP_MEMALLOC's reserves, and direct reclaim (the registered
shrinkers, a drain of the per-cpu lists, one retry) before it reports the
failure; __free_pages() drops a reference and frees the block through the
per-cpu lists (orders 0-3) or straight into the buddy lists.

Host API: pfns in and out where Linux passes struct page * (a pfn is
``(page - mem_map) / 32``), virtual addresses where Linux does
(__get_free_pages, free_pages).  Every function takes ``mm``, the machine's
MmState.  Anything a guest can pass (any order, pfn, gfp mask, node)
gives the kernel's answer and report, never a Python exception.

The building blocks live in: mm/freelist.py (free lists, expand,
__rmqueue_smallest, __free_one_page), mm/pcp.py (per-cpu lists),
mm/watermark.py (watermarks, zone_watermark_ok), mm/page_alloc_debug.py
(bad_page and the checker), mm/show_mem.py (the failure report),
mm/mm_init.py (boot: free_area_init, memblock_free_all).  The names are
re-exported here.
"""
from array import array

from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, ZONE_HIGHMEM
from mmemu.mm import pcp as _pcp
from mmemu.mm.freelist import (  # noqa: F401  (re-exported kernel names)
    _free_one_page, _rmqueue_smallest, add_to_free_list, add_to_free_list_tail,
    buddy_merge_likely, del_page_from_free_list, expand, find_buddy_page_pfn, set_buddy_order,
)
from mmemu.mm.gfp import (
    __GFP_BITS_MASK, __GFP_COMP, __GFP_DIRECT_RECLAIM, __GFP_DMA, __GFP_HIGHMEM,
    __GFP_KSWAPD_RECLAIM, __GFP_MEMALLOC, __GFP_NOMEMALLOC, __GFP_NOWARN, __GFP_ZERO,
    GFP_ZONE_BAD_LINE, format_gfp, gfp_zone, gfp_zone_bad, gfp_zonelist, zonelist_zones,
)
from mmemu.mm.mmzone import (
    COMPOUND_PAGE_DTOR, MAX_ORDER, NODES_PGSHIFT, PAGE_FLAGS_CHECK_AT_FREE,
    PAGE_FLAGS_CHECK_AT_PREP, PAGE_MAPCOUNT_NONE, PAGE_TYPE_TABLE, PAGEFLAGS_MASK, PG_head,
    PG_table, W_MAPCOUNT, W_MAPPING, W_NEXT, W_PREV, W_PRIVATE, W_REFCOUNT,
    page_to_nid_flags, page_type_is, page_zonenum as _flags_zonenum,
)
from mmemu.mm.page_alloc_debug import (
    bad_page, check_new_page, dump_stack_lines, free_page_is_bad, page_bad_reason,
    vm_bug_on, vm_bug_on_page, warn_on_once,
)
from mmemu.mm.pcp import drain_all_pages, drain_pages_zone  # noqa: F401
from mmemu.mm.show_mem import warn_alloc
from mmemu.mm.watermark import (
    ALLOC_CPUSET, ALLOC_HIGHATOMIC, ALLOC_KSWAPD, ALLOC_MIN_RESERVE, ALLOC_NO_WATERMARKS,
    ALLOC_NON_BLOCK, ALLOC_WMARK_LOW, ALLOC_WMARK_MASK, ALLOC_WMARK_MIN,
    LOWMEM_RESERVE_RATIO, WATERMARK_SCALE_FACTOR, zone_watermark_fast,
)

NUMA_NO_NODE = -1
FAST_CACHE_MAX = 4096            # distinct gfp masks remembered by the order-0 fast path
# Where 6.1 (.129 numbering) reports what mmemu reports in its words.
WHERE_ALLOC_ORDER = "mm/page_alloc.c:5581"        # WARN_ON_ONCE_GFP(order >= MAX_ORDER)
WHERE_REFCOUNT_ZERO = "include/linux/mm.h:769"    # put_page_testzero()
WHERE_COMPOUND_ORDER = "mm/page_alloc.c:1432"     # free_pages_prepare()
WHERE_VIRT_VALID = "mm/page_alloc.c:5704"         # free_pages()


class MmState:
    """One machine's memory-management state: what Linux keeps in node_data[],
    the zones, mem_map and the page allocator's globals.

    Fields others use: ``node_data`` (PglistData by nid), ``zones`` (every
    Zone, node by node, DMA..Movable), ``zone_by_id`` (Zone by flags >> 26),
    ``memmap``, ``physmem``, ``log``, ``comm`` (the task name reports print),
    ``page_address_highmem`` (the highmem module's kmap lookup, pfn ->
    address or None), ``min_free_kbytes``, ``totalreserve_pages``,
    ``movable_is_highmem``, ``movable_start`` ({nid: first pfn of ZONE_MOVABLE}).
    """

    def __init__(self, cfg, layout, physmem, memmap, log):
        self.cfg, self.layout, self.physmem, self.memmap, self.log = cfg, layout, physmem, memmap, log
        self.u8, self.u32 = physmem.u8, physmem.u32
        self.mbase = memmap.phys >> 2            # u32 index of mem_map[0]
        self.mvirt = memmap.virt                 # struct page * of pfn 0
        self.max_pfn = memmap.nr_pages
        self.max_low_pfn = layout.max_low_pfn
        self.node_data, self.zones, self.zone_by_id = [], [], [None] * 64
        self.numa_node_id = 0                    # the node of CPU 0
        self.movable_zone, self.movable_is_highmem, self.movable_start = ZONE_HIGHMEM, True, {}
        self.user_min_free_kbytes = cfg.min_free_kbytes
        self.min_free_kbytes = 0
        self.watermark_scale_factor = WATERMARK_SCALE_FACTOR
        self.lowmem_reserve_ratio = list(LOWMEM_RESERVE_RATIO)
        self.percpu_pagelist_high_fraction = 0
        self.totalreserve_pages = 0
        self.nr_page_table_pages = 0
        self.comm = "mmemu"
        self.page_address_highmem = lambda pfn: None
        self.shrinkers = []
        self.alloc_orders = {}                   # pfn -> order, order > 0 allocations only
        self.taint, self.warned_once = set(), set()
        self._zonelists = {}                     # (nid, list, highest_zoneidx) -> zones
        self.fast_alloc = {}                     # gfp -> order-0 fast path entry or None
        self.fast_free = None                    # (max_pfn, alloc_orders, u32, mbase, pcps)

    def fast_paths_changed(self):
        """Watermarks, reserves or pcp limits moved: rebuild the fast-path tables."""
        self.fast_alloc.clear()
        pcps = [None] * 64
        for zone in self.zones:
            pcps[zone.zone_id] = (zone.per_cpu_pageset.lists[0], zone.per_cpu_pageset, zone)
        self.fast_free = (self.max_pfn, self.alloc_orders, self.u32, self.mbase, pcps)


# -- the fast paths ---------------------------------------------------------------

def alloc_pages(mm, gfp, order=0, nid=None):
    """alloc_pages(): 2^order contiguous pages; returns the first pfn or None (NULL).

    Models mm/page_alloc.c:__alloc_pages() (alloc_pages_node() when nid is
    given; None or -1 means the local node).  An order-0 request whose
    preferred zone is above its low watermark and has pages on its per-cpu
    list is served by a table lookup and a list pop, as rmqueue_pcplist()
    would serve it; everything else takes _alloc_pages().

    >>> pfn = alloc_pages(mm, GFP_KERNEL, 0)
    """
    if not order and nid is None:
        hit = mm.fast_alloc.get(gfp)
        if hit is not None:
            zone, lst, mark, u32, refw = hit
            if lst and zone.nr_free_pages > mark:
                pfn = lst.pop()
                u32[refw + (pfn << 3)] = 1           # set_page_refcounted()
                return pfn
    return _alloc_pages(mm, gfp, order, nid)


def _free_pages(mm, pfn, order=0):
    """__free_pages(): drop a reference to 2^order pages at pfn; free them on the last.

    Models mm/page_alloc.c:__free_pages().  An order-0 page with a single
    reference, no PG_* flags and no allocation order on record goes
    straight onto its zone's per-cpu list (the kernel checks the rest of
    such a page only when the list drains, as here); everything else takes
    _free_pages_slow(), which reports bad frees in the kernel's words and
    refuses them.
    """
    if not order:
        max_pfn, orders, u32, mbase, pcps = mm.fast_free
        if 0 <= pfn < max_pfn and pfn not in orders:
            w = mbase + (pfn << 3)
            flags = u32[w]
            if not flags & PAGEFLAGS_MASK and u32[w + 7] == 1:
                u32[w + 7] = 0
                lst, pcp, zone = pcps[flags >> NODES_PGSHIFT]
                lst.append(pfn)
                if len(lst) >= pcp.high0:
                    _pcp.free_pcppages_bulk(mm, zone, _pcp.nr_pcp_free(pcp, pcp.high, pcp.batch),
                                            pcp, 0)
                return
    _free_pages_slow(mm, pfn, order)


# -- allocation -----------------------------------------------------------------

def gfp_to_alloc_flags(gfp, order):
    """gfp_to_alloc_flags(): the slow path's rights, from the gfp mask (6.1.176).

    __GFP_HIGH gives ALLOC_MIN_RESERVE; a caller that cannot reclaim
    directly gets ALLOC_NON_BLOCK (and the high-atomic reserve for order > 0)
    unless __GFP_NOMEMALLOC.
    """
    flags = ALLOC_WMARK_MIN | ALLOC_CPUSET | (gfp & (ALLOC_MIN_RESERVE | ALLOC_KSWAPD))
    if not gfp & __GFP_DIRECT_RECLAIM:
        if not gfp & __GFP_NOMEMALLOC:
            flags |= ALLOC_NON_BLOCK
            if order > 0:
                flags |= ALLOC_HIGHATOMIC
        if flags & ALLOC_MIN_RESERVE:
            flags &= ~ALLOC_CPUSET
    return flags


def _gfp_pfmemalloc_flags(gfp):
    """__gfp_pfmemalloc_flags(): __GFP_MEMALLOC may ignore the watermarks."""
    if gfp & __GFP_NOMEMALLOC:
        return 0
    return ALLOC_NO_WATERMARKS if gfp & __GFP_MEMALLOC else 0


def _node_zonelist(mm, nid, gfp, highest_zoneidx):
    """node_zonelist() filtered to highest_zoneidx, cached: a tuple of Zones."""
    key = (nid, gfp_zonelist(gfp), highest_zoneidx)
    zones = mm._zonelists.get(key)
    if zones is None:
        zones = zonelist_zones(mm.node_data[nid].node_zonelists[key[1]], highest_zoneidx)
        mm._zonelists[key] = zones
    return zones


def prepare_alloc_pages(mm, gfp, nid):
    """prepare_alloc_pages(): the zonelist and the highest zone for this mask.

    Returns (zones, highest_zoneidx), or None after reporting a mask whose
    zone modifiers contradict each other (the VM_BUG_ON in gfp_zone()) or
    an offline node.
    """
    if gfp_zone_bad(gfp):
        vm_bug_on(mm, GFP_ZONE_BAD_LINE)
        return None
    if nid is None or nid == NUMA_NO_NODE:
        nid = mm.numa_node_id
    elif not (isinstance(nid, int) and 0 <= nid < len(mm.node_data)):
        lines = [f"{format_gfp(gfp)} allocation from offline node {nid}"]
        mm.log.warn("\n".join(lines + dump_stack_lines(mm)))
        return None
    highest = gfp_zone(gfp)
    return _node_zonelist(mm, nid, gfp, highest), highest


def get_page_from_freelist(mm, gfp, order, alloc_flags, ac):
    """get_page_from_freelist(): the first zone of the zonelist that passes its watermark.

    Models mm/page_alloc.c:get_page_from_freelist(); differs: no cpusets,
    dirty limits or node reclaim.  Returns the prepared pfn or None.
    """
    zones, highest = ac
    for zone in zones:
        mark = zone._watermark[alloc_flags & ALLOC_WMARK_MASK]
        if not zone_watermark_fast(zone, order, mark, highest, alloc_flags):
            if not alloc_flags & ALLOC_NO_WATERMARKS:
                continue
        pfn = rmqueue(mm, zone, order)
        if pfn is not None:
            prep_new_page(mm, pfn, order, gfp, alloc_flags)
            return pfn
    return None


def rmqueue(mm, zone, order):
    """rmqueue(): from the per-cpu list for orders 0-3, else from the buddy lists."""
    if order <= 3:
        pfn = _pcp.rmqueue_pcplist(mm, zone, order)
        if pfn is not None:
            return pfn
    return rmqueue_buddy(mm, zone, order)


def rmqueue_buddy(mm, zone, order):
    """rmqueue_buddy(): __rmqueue_smallest() under the zone lock, then check_new_pages()."""
    pfn = _rmqueue_smallest(mm, zone, order)
    if pfn is None:
        return None
    zone.nr_free_pages -= 1 << order
    check_new_pages(mm, pfn, order)
    return pfn


def check_new_pages(mm, pfn, order):
    """check_new_pages(): every page of a block leaving the buddy lists looks free.

    Bulk reads first; only a block that fails them is checked page by page
    (check_new_page() reports and repairs).
    """
    n = 1 << order
    u32, w = mm.u32, mm.mbase + (pfn << 3)
    end = w + (n << 3)
    clean = (u32[w + W_MAPCOUNT:end:8].tolist().count(PAGE_MAPCOUNT_NONE) == n
             and u32[w + W_REFCOUNT:end:8].tolist().count(0) == n
             and u32[w + W_MAPPING:end:8].tolist().count(0) == n
             and not any(f & PAGE_FLAGS_CHECK_AT_PREP for f in u32[w:end:8].tolist()))
    if not clean:
        for p in range(pfn, pfn + n):
            check_new_page(mm, p)


def prep_new_page(mm, pfn, order, gfp, alloc_flags):
    """prep_new_page(): a block's state as the caller receives it.

    Models post_alloc_hook() and prep_new_page(): private 0, _refcount 1
    on the head, zeroed contents for __GFP_ZERO (guest RAM, HighMem too), a
    compound page for order > 0 with __GFP_COMP, lru.next holding the
    pfmemalloc bit; the order is recorded for order > 0 so that a free with
    another order can be refused.
    """
    u32, w = mm.u32, mm.mbase + (pfn << 3)
    u32[w + W_PRIVATE] = 0
    u32[w + W_REFCOUNT] = 1
    if gfp & __GFP_ZERO:
        size = PAGE_SIZE << order
        mm.u8[pfn << PAGE_SHIFT:(pfn << PAGE_SHIFT) + size] = bytes(size)
    if order and gfp & __GFP_COMP:
        prep_compound_page(mm, pfn, order)
    u32[w + W_NEXT] = 2 if alloc_flags & ALLOC_NO_WATERMARKS else 0
    if order:
        mm.alloc_orders[pfn] = order


def prep_compound_page(mm, pfn, order):
    """prep_compound_page(): PG_head on the head, compound_head|1 in every tail,
    the destructor and order bytes in the first tail (lru.prev's low bytes)."""
    u32, w = mm.u32, mm.mbase + (pfn << 3)
    tails = (1 << order) - 1
    u32[w] |= 1 << PG_head
    first, end = w + 8, w + ((tails + 1) << 3)
    u32[first + W_NEXT:end:8] = array("I", [mm.mvirt + (pfn << 5) + 1]) * tails
    zeros = array("I", [0]) * tails
    u32[first + W_MAPPING:end:8] = zeros
    u32[first + W_PRIVATE:end:8] = zeros
    u32[first + W_PREV] = COMPOUND_PAGE_DTOR | (order << 8)


def _alloc_pages(mm, gfp, order, nid):
    """__alloc_pages(): the whole allocation path (the fast path's fallback).

    Out-of-range orders get the kernel's WARN_ON_ONCE (unless __GFP_NOWARN)
    and NULL; bits above __GFP_BITS_MASK are dropped as gfp_allowed_mask does.
    """
    if not (isinstance(order, int) and 0 <= order < MAX_ORDER):
        if not gfp & __GFP_NOWARN:
            warn_on_once(mm, WHERE_ALLOC_ORDER, "__alloc_pages+0x8a/0x2c0")
        return None
    mask = gfp & __GFP_BITS_MASK
    ac = prepare_alloc_pages(mm, mask, nid)
    if ac is None:
        return None
    pfn = get_page_from_freelist(mm, mask, order, ALLOC_WMARK_LOW, ac)
    if pfn is None:
        return _alloc_pages_slowpath(mm, mask, order, ac)
    if not order and nid is None:
        _remember_fast(mm, gfp, mask, ac)
    return pfn


def _remember_fast(mm, gfp, mask, ac):
    """Remember what the order-0 fast path needs for this gfp mask.

    The entry is the preferred zone, its order-0 pcp list and the mark
    get_page_from_freelist() checks first (low watermark plus the zone's
    lowmem_reserve for this mask); None for masks the fast path cannot
    serve (__GFP_ZERO must clear the page).
    """
    if len(mm.fast_alloc) >= FAST_CACHE_MAX:
        mm.fast_alloc.clear()
    zones, highest = ac
    if mask & __GFP_ZERO or not zones:
        mm.fast_alloc[gfp] = None
        return
    zone = zones[0]
    mark = zone._watermark[ALLOC_WMARK_LOW] + zone.lowmem_reserve[highest]
    mm.fast_alloc[gfp] = (zone, zone.per_cpu_pageset.lists[0], mark, mm.u32,
                          mm.mbase + W_REFCOUNT)


def _alloc_pages_slowpath(mm, gfp, order, ac):
    """__alloc_pages_slowpath(): min watermark with the mask's rights, reserves, reclaim.

    Differs: no kswapd, compaction or OOM killer; direct reclaim is the
    registered shrinkers and a drain of the per-cpu lists, retried once.
    """
    alloc_flags = gfp_to_alloc_flags(gfp, order)
    pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac)
    if pfn is not None:
        return pfn
    reserve = _gfp_pfmemalloc_flags(gfp)
    if reserve:
        alloc_flags = reserve | (alloc_flags & ALLOC_KSWAPD)
        pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac)
        if pfn is not None:
            return pfn
    if gfp & __GFP_DIRECT_RECLAIM:
        pfn = _alloc_pages_direct_reclaim(mm, gfp, order, alloc_flags, ac)
        if pfn is not None:
            return pfn
    warn_alloc(mm, gfp, order)
    return None


def _alloc_pages_direct_reclaim(mm, gfp, order, alloc_flags, ac):
    """__alloc_pages_direct_reclaim(): shrink, drain the pcp lists, try once more.

    Differs: drains even when the shrinkers freed nothing, standing in for
    the reclaim and OOM steps mmemu does not model.
    """
    for shrink in list(mm.shrinkers):
        shrink()
    drain_all_pages(mm)
    return get_page_from_freelist(mm, gfp, order, alloc_flags, ac)


def register_shrinker(mm, fn):
    """register_shrinker(): fn() is called when direct reclaim runs; it returns pages freed."""
    mm.shrinkers.append(fn)
    return fn


def unregister_shrinker(mm, fn):
    """unregister_shrinker()."""
    if fn in mm.shrinkers:
        mm.shrinkers.remove(fn)


# -- freeing --------------------------------------------------------------------

def _free_pages_slow(mm, pfn, order):
    """__free_pages() for everything the fast path does not take.

    put_page_testzero(): a page with other references only loses one (a
    non-compound block's tail pages are freed then, as 6.1 does); the last
    reference frees the block after free_pages_prepare()'s checks.  A pfn
    outside mem_map, an order out of range, a page already free (CONFIG_
    DEBUG_VM's VM_BUG_ON_PAGE), a compound page freed with another order,
    or a block freed with an order other than it was allocated with is
    reported and refused: nothing changes.
    """
    if not (isinstance(pfn, int) and 0 <= pfn < mm.max_pfn):
        bad_page(mm, pfn if isinstance(pfn, int) else -1, "pfn outside mem_map")
        return
    if not (isinstance(order, int) and 0 <= order < MAX_ORDER):
        bad_page(mm, pfn, f"order {order} out of range (MAX_ORDER {MAX_ORDER})")
        return
    u32, w = mm.u32, mm.mbase + (pfn << 3)
    ref, flags = u32[w + W_REFCOUNT], u32[w]
    if ref == 0:
        vm_bug_on_page(mm, pfn, "page_ref_count(page) == 0", WHERE_REFCOUNT_ZERO)
        return
    if ref != 1:
        _put_page_not_last(mm, pfn, order, ref, flags)
        return
    if not _free_order_matches(mm, pfn, order, flags):
        return
    if not free_pages_prepare(mm, pfn, order):
        return
    mm.alloc_orders.pop(pfn, None)
    free_the_page(mm, pfn, order)


def _put_page_not_last(mm, pfn, order, ref, flags):
    """__free_pages() when others hold references: drop ours; free the tails of a
    non-compound block, which nobody else can be holding."""
    mm.u32[mm.mbase + (pfn << 3) + W_REFCOUNT] = ref - 1
    if flags & (1 << PG_head) or not order:
        return
    mm.alloc_orders.pop(pfn, None)
    while order > 0:
        order -= 1
        tail = pfn + (1 << order)
        if free_pages_prepare(mm, tail, order):
            free_the_page(mm, tail, order)


def _free_order_matches(mm, pfn, order, flags):
    """The order freed is the order allocated, or a report (and False)."""
    if flags & (1 << PG_head):
        got = (mm.u32[mm.mbase + (pfn << 3) + 8 + W_PREV] >> 8) & 0xFF
        if got != order:
            vm_bug_on_page(mm, pfn, "compound && compound_order(page) != order",
                           WHERE_COMPOUND_ORDER)
            return False
        return True
    got = mm.alloc_orders.get(pfn, 0)
    if got != order and not (got == 0 and flags & PAGE_FLAGS_CHECK_AT_FREE):
        bad_page(mm, pfn, f"freed with order {order}, allocated with order {got}")
        return False
    return True


def _tail_bad_reason(mm, head, pfn, compound):
    """free_tail_pages_check() then free_page_is_bad() for one tail, without reporting."""
    w = mm.mbase + (pfn << 3)
    if compound:
        if mm.u32[w + W_MAPPING]:
            return "corrupted mapping in tail page"
        if not mm.u32[w + W_NEXT] & 1:
            return "PageTail not set"
        if mm.u32[w + W_NEXT] != mm.mvirt + (head << 5) + 1:
            return "compound_head not consistent"
    return page_bad_reason(mm, pfn, PAGE_FLAGS_CHECK_AT_FREE)


def _read_tails(mm, pfn, order):
    """The tail pages' struct pages as one list of words, 8 per page."""
    first = mm.mbase + ((pfn + 1) << 3)
    return mm.u32[first:first + (((1 << order) - 1) << 3)].tolist()


def _flags_clean(flags, mask):
    """No word of flags has a bit of mask (quick when all are alike, as usual)."""
    if flags.count(flags[0]) == len(flags):
        return not flags[0] & mask
    return not any(f & mask for f in flags)


def _tails_clean(mm, pfn, words, compound):
    """The bulk tail checks: True when every tail is plainly fine to free."""
    n = len(words) >> 3
    if words[W_REFCOUNT::8].count(0) != n or words[W_MAPCOUNT::8].count(PAGE_MAPCOUNT_NONE) != n:
        return False
    if words[W_MAPPING::8].count(0) != n:
        return False
    if compound and words[W_NEXT::8].count(mm.mvirt + (pfn << 5) + 1) != n:
        return False
    return _flags_clean(words[0::8], PAGE_FLAGS_CHECK_AT_FREE)


def free_pages_prepare(mm, pfn, order):
    """free_pages_prepare(): check a block being freed; clear its flags if it may go.

    Models mm/page_alloc.c:free_pages_prepare() with check_free: every tail
    (free_tail_pages_check() for compound pages, free_page_is_bad()) and the
    head, as if its last reference were already dropped.  Differs: all
    checks come before any change, and a bad block is left as it was.
    Returns True when the block may be freed.
    """
    u32, w = mm.u32, mm.mbase + (pfn << 3)
    compound = bool(u32[w] & (1 << PG_head))
    words = _read_tails(mm, pfn, order) if order else None
    if order and not _tails_clean(mm, pfn, words, compound):
        for tail in range(pfn + 1, pfn + (1 << order)):
            reason = _tail_bad_reason(mm, pfn, tail, compound)
            if reason:
                bad_page(mm, tail, reason)
                return False
    if free_page_is_bad(mm, pfn, refcount=0):
        return False
    if u32[w + W_MAPPING] & 3:
        u32[w + W_MAPPING] = 0                 # PageMappingFlags(): anon/movable
    _clear_block(mm, pfn, words, compound)
    return True


def _clear_block(mm, pfn, words, compound):
    """The state changes of a free: flags, compound links and the reference."""
    u32, w = mm.u32, mm.mbase + (pfn << 3)
    u32[w] &= ~PAGE_FLAGS_CHECK_AT_PREP
    u32[w + W_REFCOUNT] = 0
    if not words:
        return
    first, end = w + 8, w + 8 + len(words)
    flags = words[0::8]
    if not _flags_clean(flags, PAGE_FLAGS_CHECK_AT_PREP):
        u32[first:end:8] = array("I", [f & ~PAGE_FLAGS_CHECK_AT_PREP for f in flags])
    if compound:
        u32[first + W_NEXT:end:8] = array("I", [0]) * (len(words) >> 3)
        u32[first + W_PREV] = 0


def free_the_page(mm, pfn, order):
    """free_the_page(): orders 0-3 onto the per-cpu list, larger ones to the buddy lists."""
    zone = mm.zone_by_id[mm.u32[mm.mbase + (pfn << 3)] >> NODES_PGSHIFT]
    if order <= 3:
        _pcp.free_unref_page_commit(mm, zone, pfn, order)
    else:
        _free_one_page(mm, zone, pfn, order)


# -- the family around alloc_pages -------------------------------------------------

def alloc_page(mm, gfp):
    """alloc_page(): one page; a pfn or None."""
    return alloc_pages(mm, gfp, 0)


def alloc_pages_node(mm, nid, gfp, order):
    """alloc_pages_node(): from node nid first (NUMA_NO_NODE: the local node)."""
    return alloc_pages(mm, gfp, order, None if nid == NUMA_NO_NODE else nid)


def _get_free_pages(mm, gfp, order=0):
    """__get_free_pages(): the direct-map address of 2^order lowmem pages, or 0.

    __GFP_HIGHMEM is masked off: the result must have a permanent address.
    """
    pfn = alloc_pages(mm, gfp & ~__GFP_HIGHMEM, order)
    if pfn is None:
        return 0
    return page_address(mm, pfn) or 0


def _get_free_page(mm, gfp):
    """__get_free_page(): one page's address, or 0."""
    return _get_free_pages(mm, gfp, 0)


def get_zeroed_page(mm, gfp):
    """get_zeroed_page(): one zeroed page's address, or 0."""
    return _get_free_pages(mm, gfp | __GFP_ZERO, 0)


def _get_dma_pages(mm, gfp, order):
    """__get_dma_pages(): __get_free_pages() from ZONE_DMA."""
    return _get_free_pages(mm, gfp | __GFP_DMA, order)


def free_pages(mm, addr, order=0):
    """free_pages(): free by direct-map address; 0 is ignored.

    An address outside the direct map gets CONFIG_DEBUG_VM's
    VM_BUG_ON(!virt_addr_valid(addr)) report and is not freed.
    """
    if addr == 0:
        return
    if not virt_addr_valid(mm, addr):
        vm_bug_on(mm, WHERE_VIRT_VALID)
        return
    _free_pages(mm, virt_to_page(mm, addr), order)


def free_page(mm, addr):
    """free_page(): free_pages(addr, 0)."""
    free_pages(mm, addr, 0)


# -- pages, zones, addresses ---------------------------------------------------------

def pfn_valid(mm, pfn):
    """pfn_valid(): the pfn has a struct page in mem_map."""
    return isinstance(pfn, int) and 0 <= pfn < mm.max_pfn


def page_flags(mm, pfn):
    return mm.u32[mm.mbase + (pfn << 3)]


def page_zonenum(mm, pfn):
    """page_zonenum(): ZONE_DMA .. ZONE_MOVABLE of the page."""
    return _flags_zonenum(page_flags(mm, pfn))


def page_to_nid(mm, pfn):
    """page_to_nid(): the node of the page."""
    return page_to_nid_flags(page_flags(mm, pfn))


def page_zone_id(mm, pfn):
    """page_zone_id(): one number per (node, zone): nid * 4 + zone (the zone on node 0)."""
    flags = page_flags(mm, pfn)
    return (page_to_nid_flags(flags) << 2) | _flags_zonenum(flags)


def page_zone(mm, pfn):
    """page_zone(): the Zone the page belongs to."""
    return mm.zone_by_id[page_flags(mm, pfn) >> NODES_PGSHIFT]


def PageHighMem(mm, pfn):
    """PageHighMem(): the page is in ZONE_HIGHMEM (or a Movable zone made of HighMem)."""
    return page_zone(mm, pfn).is_highmem


def page_count(mm, pfn):
    """page_count(): the _refcount of the page's compound head."""
    u32, w = mm.u32, mm.mbase + (pfn << 3)
    head = u32[w + W_NEXT]
    if head & 1:
        w = mm.mbase + ((head - 1 - mm.mvirt) >> 2)
    ref = u32[w + W_REFCOUNT]
    return ref - (1 << 32) if ref & 0x80000000 else ref


def lowmem_page_address(pfn):
    """lowmem_page_address(): the direct-map address of a lowmem page."""
    return PAGE_OFFSET + (pfn << PAGE_SHIFT)


def page_address(mm, pfn):
    """page_address(): a page's kernel virtual address, or None (NULL).

    Lowmem pages have their direct-map address; a HighMem page has one only
    while kmapped, which mm.page_address_highmem(pfn) answers.
    """
    if not pfn_valid(mm, pfn):
        return None
    if not PageHighMem(mm, pfn):
        return lowmem_page_address(pfn)
    return mm.page_address_highmem(pfn)


def virt_to_page(mm, vaddr):
    """virt_to_page(): the pfn of a direct-map address (not checked, as in Linux)."""
    return (vaddr - PAGE_OFFSET) >> PAGE_SHIFT


def virt_addr_valid(mm, vaddr):
    """virt_addr_valid(): a direct-map address of a page in mem_map."""
    return (isinstance(vaddr, int) and PAGE_OFFSET <= vaddr < PAGE_OFFSET + (mm.max_low_pfn << PAGE_SHIFT)
            and pfn_valid(mm, virt_to_page(mm, vaddr)))


def pgtable_page_ctor(mm, pfn):
    """pgtable_pte_page_ctor(): mark a page-table page (PageTable) and count it."""
    w = mm.mbase + (pfn << 3)
    if mm.u32[w + W_MAPCOUNT] == PAGE_MAPCOUNT_NONE:
        mm.u32[w + W_MAPCOUNT] = PAGE_TYPE_TABLE
        mm.nr_page_table_pages += 1


def pgtable_page_dtor(mm, pfn):
    """pgtable_pte_page_dtor(): the page stops being a page table (before it is freed)."""
    w = mm.mbase + (pfn << 3)
    if page_type_is(mm.u32[w + W_MAPCOUNT], PG_table):
        mm.u32[w + W_MAPCOUNT] = PAGE_MAPCOUNT_NONE
        mm.nr_page_table_pages -= 1


mark_page_table = pgtable_page_ctor        # the names machine.py uses
clear_page_table = pgtable_page_dtor


# -- counters -----------------------------------------------------------------

def nr_free_pages(mm, zid=None):
    """nr_free_pages(): NR_FREE_PAGES of all zones, or of zone index zid on every node."""
    return sum(z.nr_free_pages for z in mm.zones if zid is None or z.zone_idx == zid)


def totalram_pages(mm):
    """totalram_pages(): the managed pages of every zone."""
    return sum(z.managed_pages for z in mm.zones)


def totalhigh_pages(mm):
    """totalhigh_pages(): the managed pages of the highmem zones."""
    return sum(z.managed_pages for z in mm.zones if z.is_highmem)


def nr_free_highpages(mm):
    """nr_free_highpages(): NR_FREE_PAGES of the highmem zones."""
    return sum(z.nr_free_pages for z in mm.zones if z.is_highmem)


def setup_per_zone_wmarks(mm):
    """setup_per_zone_wmarks(): watermarks from min_free_kbytes, then pcp high/batch."""
    from mmemu.mm.watermark import _setup_per_zone_wmarks
    _setup_per_zone_wmarks(mm)
    for zone in mm.zones:
        _pcp.zone_pcp_update(mm, zone)
    mm.fast_paths_changed()


def set_min_free_kbytes(mm, kbytes):
    """The vm.min_free_kbytes sysctl: a new reserve, new watermarks."""
    mm.user_min_free_kbytes = mm.min_free_kbytes = kbytes
    setup_per_zone_wmarks(mm)


def free_area_init(cfg, layout, physmem, memmap, log):
    """free_area_init(): nodes, zones and every struct page (see mm/mm_init.py)."""
    from mmemu.mm.mm_init import free_area_init as init
    return init(cfg, layout, physmem, memmap, log)


def memblock_free_all(mm, mb):
    """memblock_free_all(): free RAM into the buddy lists, then watermarks and pcp
    (see mm/mm_init.py)."""
    from mmemu.mm.mm_init import memblock_free_all as free_all
    return free_all(mm, mb)

