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
__rmqueue_smallest, __free_one_page), mm/pageblock.py (pageblock
migratetypes), mm/fallback.py (__rmqueue, fallback stealing, the
high-atomic reserve), mm/pcp.py (per-cpu lists),
mm/watermark.py (watermarks, zone_watermark_ok), mm/page_free.py (the
checks and reports of a free), mm/page.py (struct page accessors:
page_address, page_count, ...), mm/page_alloc_debug.py (bad_page and the
checker), mm/show_mem.py (the failure report).  Their kernel names are
re-exported here.  Boot (free_area_init, memblock_free_all) is mm/mm_init.py,
which builds on this module; the boot itself runs from mmemu/init/main.py.
"""
from array import array
from collections.abc import Callable, Sequence
from typing import Optional, Union

from mmemu.config_schema import MachineConfig
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, ZONE_HIGHMEM, Layout
from mmemu.log import KernelLog
from mmemu.mm import pcp as _pcp
from mmemu.mm.pcp_list import pcp_to_host
from mmemu.mm.fallback import (  # noqa: F401  (re-exported kernel names)
    WATERMARK_BOOST_FACTOR, _rmqueue, reserve_highatomic_pageblock,
    unreserve_highatomic_pageblock, wakeup_kswapd,
)
from mmemu.mm.freelist import (  # noqa: F401  (re-exported kernel names)
    _free_one_page, _rmqueue_smallest, add_to_free_list, add_to_free_list_tail,
    buddy_merge_likely, del_page_from_free_list, expand, find_buddy_page_pfn, set_buddy_order,
)
from mmemu.mm.gfp import (
    __GFP_BITS_MASK, __GFP_COMP, __GFP_DIRECT_RECLAIM, __GFP_HIGHMEM, __GFP_KSWAPD_RECLAIM,
    __GFP_MEMALLOC, __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN, __GFP_RETRY_MAYFAIL,
    __GFP_ZERO, GFP_ZONE_BAD_LINE, format_gfp, gfp_migratetype, gfp_zone, gfp_zone_bad,
    gfp_zonelist, zonelist_zones,
)
from mmemu.mm.mmzone import (
    COMPOUND_PAGE_DTOR, MAX_ORDER, MIGRATE_HIGHATOMIC, MIGRATE_PCPTYPES, PAGE_ALLOC_COSTLY_ORDER,
    PAGE_FLAGS_CHECK_AT_PREP, PAGE_MAPCOUNT_NONE, PAGEBLOCK_ORDER, PAGE_WORDS, STRUCT_PAGE_SIZE,
    PG_head, W_INDEX, W_MAPCOUNT, W_MAPPING, W_NEXT, W_PREV, W_PRIVATE, W_REFCOUNT, MemMap,
    PglistData, Zone,
)
from mmemu.mm.memblock import Memblock
from mmemu.physmem import PhysMem
from mmemu.mm.pageblock import (
    FAST_FREE_LOOKUP, fast_free_code, get_pfnblock_migratetype, set_fast_free,
)
from mmemu.mm.page import (  # noqa: F401  (re-exported: the struct page helpers)
    NO_FAST_FREE, PageHighMem, checked_free_only, clear_page_table, fast_free_bitmap,
    lowmem_page_address, set_fast_zone,
    mark_page_table, page_address, page_count, page_flags, page_zone, page_zonenum,
    pfn_valid, pgtable_page_ctor, pgtable_page_dtor, virt_addr_valid, virt_to_page,
)
from mmemu.errors import KernelOops
from mmemu.kernel.panic import Reporter
from mmemu.mm.page_alloc_debug import check_new_page, vm_bug_on, warn_on_once
from mmemu.mm.page_free import (  # noqa: F401  (re-exported: the freeing half)
    _free_pages_ok, _free_pages_slow, free_pages_prepare, free_the_page,
)
from mmemu.mm.pcp import drain_all_pages, drain_pages_zone  # noqa: F401
from mmemu.mm.show_mem import warn_alloc
from mmemu.mm.watermark import (
    ALLOC_CPUSET, ALLOC_HIGHATOMIC, ALLOC_KSWAPD, ALLOC_MIN_RESERVE, ALLOC_NO_WATERMARKS,
    ALLOC_NON_BLOCK, ALLOC_OOM, ALLOC_WMARK_LOW, ALLOC_WMARK_MASK, ALLOC_WMARK_MIN,
    LOWMEM_RESERVE_RATIO, WATERMARK_SCALE_FACTOR, zone_watermark_fast,
)

NUMA_NO_NODE = -1
FAST_CACHE_MAX = 4096            # distinct gfp masks remembered by the order-0 fast path
# Where 6.1 (.129 numbering) reports what mmemu reports in its words.
WHERE_ALLOC_ORDER = "mm/page_alloc.c:5581"        # WARN_ON_ONCE_GFP(order >= MAX_ORDER)
WHERE_VIRT_VALID = "mm/page_alloc.c:5704"         # free_pages()

# struct alloc_context as prepare_alloc_pages() fills it: the zonelist's zones
# at or below highest_zoneidx, highest_zoneidx, the migratetype.
AllocContext = tuple[tuple[Zone, ...], int, int]
# might_alloc(gfp): the atomic-context check of an allocation that may sleep.
MightAlloc = Callable[[int], object]
# A shrinker: called by direct reclaim; returns the pages it freed.
Shrinker = Callable[[], object]
# The order-0 fast path's plan for one gfp mask (see _remember_fast()): the
# pcp list, mm.refcounts, the hook's context words and index, the hook.
FastPlan = tuple[list[int], memoryview, Sequence[int], int, MightAlloc]


class MmState:
    """One machine's memory-management state: what Linux keeps in node_data[],
    the zones, mem_map and the page allocator's globals.

    Fields others use: ``node_data`` (PglistData by nid), ``zones`` (every
    Zone, node by node, DMA..Movable), ``zone_by_id`` (Zone by flags >> 26),
    ``memmap``, ``physmem``, ``log``, ``reporter`` (kernel/panic.py's: reports,
    the task name they print, the taint),
    ``page_address_highmem`` (the highmem module's kmap lookup, pfn ->
    address or None), ``min_free_kbytes``, ``totalreserve_pages``,
    ``movable_is_highmem``, ``movable_start`` ({nid: first pfn of ZONE_MOVABLE}).

    Grouping by mobility: ``pageblock_order`` (the flavour's, mmzone.
    pageblock_order_for()), ``page_group_by_mobility_disabled`` (set with
    the zonelists: too little memory for a pageblock of each type),
    ``watermark_boost_factor`` (the sysctl, 15000).

    Host memory per page frame: ``fast_zone``, one byte: the pageblock
    code (pageblock.fast_free_code(): zone and migratetype) under which
    an order-0 free of the page takes the fast path, or NO_FAST_FREE (see
    _free_pages()).

    ``might_alloc`` is the hook 6.1's prepare_alloc_pages() calls as
    might_alloc(gfp_mask): a callable taking the gfp mask, called for every
    allocation whose mask has __GFP_DIRECT_RECLAIM (a no-op until the atomic-
    context checks install theirs, kernel/sched.py).

    ``zone_watchers``: callables run after watermarks, reserves or managed
    pages change (fast_paths_changed()); the guest's copies of struct zone
    (mm/node_data.py) are refreshed so.

    ``leaked``: {pfn: order} of the blocks the kernel loses on purpose: those
    bad_page() reported when they left or returned to the free lists, and
    those a task held off the lists when CONFIG_DEBUG_LIST's BUG killed it
    (the checker counts them, so every page stays accounted for).  ``kernel_word(va)``: the word kernel code
    reads at va, or None where a read would fault (the direct map of lowmem
    here; machine.py may plug in a page-table walk).
    """

    cfg: MachineConfig
    layout: Layout
    physmem: PhysMem
    memmap: MemMap
    log: KernelLog
    reporter: Reporter
    u8: memoryview
    u32: memoryview                          # guest RAM as words (PhysMem.u32)
    mbase: int
    mvirt: int
    max_pfn: int
    max_low_pfn: int
    node_data: list[Optional[PglistData]]    # by nid; None: a node id without memory
    zones: list[Zone]
    zone_by_id: list[Optional[Zone]]
    numa_node_id: int
    movable_zone: int
    movable_is_highmem: bool
    movable_start: dict[int, int]
    user_min_free_kbytes: Optional[int]
    min_free_kbytes: int
    watermark_scale_factor: int
    lowmem_reserve_ratio: list[int]
    percpu_pagelist_high_fraction: int
    totalreserve_pages: int
    nr_page_table_pages: int
    page_address_highmem: Callable[[int], Optional[int]]
    shrinkers: list[Callable[[], object]]
    alloc_orders: dict[int, int]
    _zonelists: dict[tuple[int, int, int], tuple[Zone, ...]]
    fast_zone: bytearray
    fast_free_bits: memoryview
    refcounts: memoryview
    page_index: memoryview
    fast_alloc: dict[int, Optional[FastPlan]]
    pcp_commit: list[Optional[Callable[[int], None]]]
    fast_free: tuple[Union[bytes, bytearray], memoryview, list[Optional[Callable[[int], None]]]]
    pageblock_order: int
    page_group_by_mobility_disabled: bool
    watermark_boost_factor: int
    _might_alloc: MightAlloc
    zone_watchers: list[Callable[[], object]]
    leaked: dict[int, int]
    memblock: Memblock                       # set by the boot (mm_init)
    pcpu_first_chunk: int                    # physical, set by the boot (setup_per_cpu_areas)
    pcp_placed: bool
    pcp_in_guest: bool
    pcp_hold_refused: bool
    guest_running: bool

    def __init__(self, cfg: MachineConfig, layout: Layout, physmem: PhysMem, memmap: MemMap,
                 log: KernelLog, reporter: Optional[Reporter] = None) -> None:
        self.cfg, self.layout, self.physmem, self.memmap, self.log = cfg, layout, physmem, memmap, log
        self.reporter = reporter if reporter is not None else Reporter(log)
        self.u8, self.u32 = physmem.u8, physmem.u32
        self.mbase = memmap.phys >> 2            # u32 index of mem_map[0]
        self.mvirt = memmap.virt                 # struct page * of pfn 0
        self.max_pfn = memmap.nr_pages
        self.max_low_pfn = layout.max_low_pfn
        self.node_data, self.zones, self.zone_by_id = [], [], [None] * 64
        self.numa_node_id = 0                    # the node of CPU 0
        self.movable_zone, self.movable_is_highmem, self.movable_start = ZONE_HIGHMEM, True, {}
        self.user_min_free_kbytes = None         # until the sysctl is written
        self.min_free_kbytes = 0
        self.watermark_scale_factor = WATERMARK_SCALE_FACTOR
        self.lowmem_reserve_ratio = list(LOWMEM_RESERVE_RATIO)
        self.percpu_pagelist_high_fraction = 0
        self.totalreserve_pages = 0
        self.nr_page_table_pages = 0
        self.page_address_highmem = lambda pfn: None
        self.shrinkers = []
        self.alloc_orders = {}                   # pfn -> order, order > 0 allocations only
        self._zonelists = {}                     # (nid, list, highest_zoneidx) -> zones
        # The order-0 fast paths' tables (see alloc_pages() and _free_pages()).
        # refcounts: every struct page's _refcount word, indexed by pfn (a
        # strided view of guest RAM, so a pfn needs no address arithmetic).
        self.fast_zone = bytearray([NO_FAST_FREE]) * self.max_pfn
        self.fast_free_bits = fast_free_bitmap(self.u8, self.max_pfn)
        self.fast_free_bits[:] = bytes(len(self.fast_free_bits))
        w = self.mbase + W_REFCOUNT
        self.refcounts = self.u32[w:w + (self.max_pfn * PAGE_WORDS):PAGE_WORDS]
        w = self.mbase + W_INDEX                 # page->index: the pcp's cached migratetype
        self.page_index = self.u32[w:w + (self.max_pfn * PAGE_WORDS):PAGE_WORDS]
        self.fast_alloc = {}
        self.pcp_commit = []                     # free_unref_page() by fast_zone code
        self.fast_free = (b"", self.refcounts, self.pcp_commit)   # until fast_paths_changed()
        self.pageblock_order = PAGEBLOCK_ORDER
        self.page_group_by_mobility_disabled = False
        self.watermark_boost_factor = WATERMARK_BOOST_FACTOR
        self._might_alloc = no_might_alloc
        self.zone_watchers = []
        self.leaked = {}
        # Where the per-cpu lists are (mm/pcp_list.py): with the host until
        # the machine places the pagesets in guest memory and a run starts.
        self.pcp_placed = self.pcp_in_guest = self.pcp_hold_refused = False
        self.guest_running = False
        self.pcpu_first_chunk = 0

    def leak(self, pfn: int, order: int) -> None:
        """Lose the block at pfn on purpose (see ``leaked``); its next free, if
        one comes, takes the checked path."""
        self.leaked[pfn] = order
        set_fast_zone(self, pfn, NO_FAST_FREE)

    def kernel_word(self, va: int) -> Optional[int]:
        """The little-endian word at kernel virtual address va, or None if
        kernel code could not read it (outside the direct map of RAM)."""
        pa = va - PAGE_OFFSET
        if not 0 <= pa <= (self.max_low_pfn << PAGE_SHIFT) - 4 or pa + 4 > self.physmem.size:
            return None
        return int.from_bytes(self.u8[pa:pa + 4], "little")

    @property
    def might_alloc(self) -> MightAlloc:
        """The might_alloc(gfp) hook (see the class docstring)."""
        return self._might_alloc

    @might_alloc.setter
    def might_alloc(self, fn: Optional[MightAlloc]) -> None:
        self._might_alloc = fn if fn is not None else no_might_alloc
        self.fast_alloc.clear()                  # the plans hold the hook

    def fast_paths_changed(self, watchers: bool = True) -> None:
        """Watermarks, reserves or pcp limits moved, or the pcp lists moved
        between host and guest (watchers False): rebuild the fast-path tables.
        The host's order-0 fast free path goes through the lists where they are."""
        self.fast_alloc.clear()
        for zone in self.zones:
            zone.fast_mark = -1
        self.pcp_commit = [None] * 256
        make = _pcp.make_guest_free_commit if self.pcp_in_guest else _pcp.make_fast_free_commit
        for zone in self.zones:
            for mt in range(MIGRATE_PCPTYPES):
                self.pcp_commit[fast_free_code(zone, mt)] = make(self, zone, mt)
        self.pcp_commit[FAST_FREE_LOOKUP] = _pcp.make_lookup_free_commit(self)
        # CONFIG_DEBUG_VM checks every page at free time: no fast path then.
        table = b"" if self.cfg.debug_vm else self.fast_zone
        self.fast_free = (table, self.refcounts, self.pcp_commit)
        if watchers:
            for watcher in self.zone_watchers:
                watcher()

    def reserves_changed(self) -> None:
        """A zone's watermark boost or high-atomic reserve moved: the marks the
        fast allocation plans rely on moved, and struct zone's copies too."""
        self.fast_paths_changed()

    def zone_free_dropped(self, zone: Zone) -> None:
        """NR_FREE_PAGES of zone went down: fast entries may now be under their mark."""
        if zone.nr_free_pages <= zone.fast_mark:
            self.fast_alloc.clear()
            for z in self.zones:
                z.fast_mark = -1


_NEVER, _ALWAYS = (0,), (1,)     # fast-path plans: context words that never / always call


def no_might_alloc(gfp: int) -> None:
    """The default might_alloc hook: no atomic-context checks on this machine."""


# -- the fast paths ---------------------------------------------------------------

def alloc_pages(mm: MmState, gfp: int, order: int = 0, nid: Optional[int] = None) -> Optional[int]:
    """alloc_pages(): 2^order contiguous pages; returns the first pfn or None (NULL).

    Models mm/page_alloc.c:__alloc_pages() (alloc_pages_node() when nid is
    given; None or -1 means the local node), including prepare_alloc_pages()'s
    might_alloc(gfp): mm.might_alloc(gfp) runs for masks with
    __GFP_DIRECT_RECLAIM.  Order 0 has a fast path: mm.fast_alloc holds a
    plan per gfp mask, made by the first allocation with that mask: the
    preferred zone's order-0 per-cpu list, the refcount words, and the
    might_alloc hook when the mask needs it, called when its context word
    (hook.context, else always) is nonzero.  A plan exists only
    while its zone is above the mark get_page_from_freelist() checks first
    (every drop of NR_FREE_PAGES to it removes the plans), so the page comes
    off that list as rmqueue_pcplist() would give it.  Everything else takes
    _alloc_pages().

    >>> pfn = alloc_pages(mm, GFP_KERNEL, 0)
    """
    if not order and nid is None:
        try:
            lst, refs, ctx, k, check = mm.fast_alloc[gfp]   # type: ignore[misc]  # None: TypeError
        except (KeyError, TypeError):            # not seen yet, or not for the fast path
            return _alloc_pages(mm, gfp, order, nid)
        if ctx[k]:
            check(gfp)                           # might_alloc()
        if lst:
            pfn = lst.pop()                      # a broken list in guest memory: KernelOops
            refs[pfn] = 1                        # set_page_refcounted()
            return pfn
        return _alloc_pages(mm, gfp, order, nid, False)
    return _alloc_pages(mm, gfp, order, nid)


def _free_pages(mm: MmState, pfn: int, order: int = 0) -> None:
    """__free_pages(): drop a reference to 2^order pages at pfn; free them on the last.

    Models mm/page_alloc.c:__free_pages().  Order 0 has a fast path: a page
    whose mm.fast_zone byte names its zone and pageblock migratetype (a
    page of mem_map, not reserved at boot, not the head of an order > 0
    allocation) and that holds a single reference goes straight onto the
    zone's per-cpu list of that migratetype, through free_unref_page() for
    that code (mm.pcp_commit, made by pcp.py: the same rule the checked
    path ends in).  As in a
    6.1 kernel without CONFIG_DEBUG_VM, the rest of such a page (flags,
    mapcount, mapping) is checked when the list drains
    (free_pcppages_bulk()); with debug_vm in the config every free is
    checked at once.  Everything else (a pfn outside mem_map, a page
    already free, ...) takes _free_pages_slow(), which reports bad frees in
    the kernel's words and refuses them.
    """
    if not order and pfn >= 0:
        table, refs, commit = mm.fast_free
        try:
            z = table[pfn]
        except (IndexError, TypeError):          # beyond mem_map (or debug_vm), not an int
            z = 255
        if z != 255 and refs[pfn] == 1:          # NO_FAST_FREE; put_page_testzero()
            refs[pfn] = 0
            commit[z](pfn)                       # type: ignore[misc]  # free_unref_page()
            return
    _free_pages_slow(mm, pfn, order)


# -- allocation -----------------------------------------------------------------

def gfp_to_alloc_flags(gfp: int, order: int) -> int:
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


def _gfp_pfmemalloc_flags(gfp: int) -> int:
    """__gfp_pfmemalloc_flags(): __GFP_MEMALLOC may ignore the watermarks."""
    if gfp & __GFP_NOMEMALLOC:
        return 0
    return ALLOC_NO_WATERMARKS if gfp & __GFP_MEMALLOC else 0


def _node_zonelist(mm: MmState, nid: int, gfp: int, highest_zoneidx: int) -> tuple[Zone, ...]:
    """node_zonelist() filtered to highest_zoneidx, cached: a tuple of Zones."""
    key = (nid, gfp_zonelist(gfp), highest_zoneidx)
    zones = mm._zonelists.get(key)
    if zones is None:
        pgdat = mm.node_data[nid]
        assert pgdat is not None            # prepare_alloc_pages() refused an offline node
        zones = zonelist_zones(pgdat.node_zonelists[key[1]], highest_zoneidx)
        mm._zonelists[key] = zones
    return zones


def prepare_alloc_pages(mm: MmState, gfp: int, nid: Optional[int],
                        might_alloc: bool = True) -> Optional[AllocContext]:
    """prepare_alloc_pages(): the alloc_context of this mask.

    Returns (zones, highest_zoneidx, migratetype), or None after reporting
    a mask whose zone modifiers contradict each other (the VM_BUG_ON in
    gfp_zone()) or an offline node.  Then, as 6.1 does, might_alloc(gfp):
    mm.might_alloc for a mask with __GFP_DIRECT_RECLAIM (unless might_alloc
    is False: the caller made that check already).
    """
    if gfp_zone_bad(gfp):
        vm_bug_on(mm, GFP_ZONE_BAD_LINE)
        return None
    if nid is None or nid == NUMA_NO_NODE:
        nid = mm.numa_node_id
    elif not (isinstance(nid, int) and 0 <= nid < len(mm.node_data)
              and mm.node_data[nid] is not None):
        # warn_if_node_offline(): pr_warn() and dump_stack()
        lines = [f"{format_gfp(gfp)} allocation from offline node {nid}"]
        mm.reporter.info("\n".join(lines + mm.reporter.dump_stack()))
        return None
    highest = gfp_zone(gfp)
    zones = _node_zonelist(mm, nid, gfp, highest)
    if might_alloc and gfp & __GFP_DIRECT_RECLAIM:
        mm.might_alloc(gfp)
    return zones, highest, gfp_migratetype(gfp, mm.page_group_by_mobility_disabled)


def alloc_flags_nofragment(gfp: int) -> int:
    """alloc_flags_nofragment(): ALLOC_KSWAPD for a mask that may wake kswapd
    (__GFP_KSWAPD_RECLAIM is that bit); no ALLOC_NOFRAGMENT without ZONE_DMA32."""
    return gfp & __GFP_KSWAPD_RECLAIM


def wmark_pages(zone: Zone, i: int) -> int:
    """wmark_pages(): watermark i of the zone, boost included."""
    return zone._watermark[i] + zone.watermark_boost


def get_page_from_freelist(mm: MmState, gfp: int, order: int, alloc_flags: int,
                           ac: AllocContext) -> Optional[int]:
    """get_page_from_freelist(): the first zone of the zonelist that passes its watermark.

    Models mm/page_alloc.c:get_page_from_freelist(): a high-order atomic
    request that succeeds may set its pageblock aside
    (reserve_highatomic_pageblock()).  Differs: no cpusets, dirty limits
    or node reclaim.  Returns the prepared pfn or None.
    """
    zones, highest, migratetype = ac
    for zone in zones:
        mark = zone._watermark[alloc_flags & ALLOC_WMARK_MASK] + zone.watermark_boost
        if not zone_watermark_fast(zone, order, mark, highest, alloc_flags, gfp):
            if not alloc_flags & ALLOC_NO_WATERMARKS:
                continue
        pfn = rmqueue(mm, zone, order, alloc_flags, migratetype)
        if pfn is not None:
            prep_new_page(mm, pfn, order, gfp, alloc_flags)
            if alloc_flags & ALLOC_HIGHATOMIC:
                reserve_highatomic_pageblock(mm, pfn, zone)
            return pfn
    return None


def rmqueue(mm: MmState, zone: Zone, order: int, alloc_flags: int,
            migratetype: int) -> Optional[int]:
    """rmqueue(): from the per-cpu lists for their orders, else from the buddy lists.

    Then, if a steal boosted the zone's watermark for a request that may
    wake kswapd (ZONE_BOOSTED_WATERMARK), kswapd is woken (wakeup_kswapd():
    in mmemu, the boost is dropped at once).  A task that dies in between
    (CONFIG_DEBUG_LIST's BUG: KernelOops) wakes nobody: the flag stays set
    for the next rmqueue(), and only mmemu's fast-path marks follow a boost
    the steal made.
    """
    boost = zone.watermark_boost
    pfn = None
    try:
        if _pcp.pcp_allowed_order(order, zone.pageblock_flags.order):
            pfn = _pcp.rmqueue_pcplist(mm, zone, order, migratetype, alloc_flags)
        if pfn is None:
            pfn = rmqueue_buddy(mm, zone, order, alloc_flags, migratetype)
    except KernelOops:
        if zone.watermark_boost != boost:
            mm.reserves_changed()
        raise
    if zone.boosted_watermark:
        zone.boosted_watermark = False
        wakeup_kswapd(mm, zone)
    if zone.watermark_boost != boost:
        mm.reserves_changed()
    return pfn


def rmqueue_buddy(mm: MmState, zone: Zone, order: int, alloc_flags: int,
                  migratetype: int) -> Optional[int]:
    """rmqueue_buddy(): __rmqueue() under the zone lock, then check_new_pages().

    ALLOC_HIGHATOMIC requests try the high-atomic reserve first; when
    __rmqueue() finds nothing, requests that may not block (or OOM ones)
    may take from it too ("failing now is worse than failing a high-order
    atomic allocation in the future").  As 6.1's, a block that fails
    check_new_pages() (bad_page() reported it) is not handed out: it is
    leaked (mm.leaked) and the next block is taken.  A free list the guest
    broke is not such a block: CONFIG_DEBUG_LIST's BUG kills the task
    inside __rmqueue() (KernelOops), and nothing more is tried.
    """
    while True:
        pfn = None
        if alloc_flags & ALLOC_HIGHATOMIC:
            pfn = _rmqueue_smallest(mm, zone, order, MIGRATE_HIGHATOMIC)
        if pfn is None:
            pfn = _rmqueue(mm, zone, order, migratetype, alloc_flags)
            if pfn is None and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
                pfn = _rmqueue_smallest(mm, zone, order, MIGRATE_HIGHATOMIC)
            if pfn is None:
                return None
        zone.nr_free_pages -= 1 << order
        mm.zone_free_dropped(zone)
        if not check_new_pages(mm, pfn, order):
            return pfn
        mm.leak(pfn, order)


def check_new_pages(mm: MmState, pfn: int, order: int) -> bool:
    """check_new_pages(): True (after bad_page()) unless every page of a block
    leaving the buddy lists looks free.

    Bulk reads first; only a block that fails them is checked page by page,
    up to the first bad page (check_new_page() reports it).
    """
    n = 1 << order
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    end = w + (n * PAGE_WORDS)
    clean = (u32[w + W_MAPCOUNT:end:PAGE_WORDS].tolist().count(PAGE_MAPCOUNT_NONE) == n
             and u32[w + W_REFCOUNT:end:PAGE_WORDS].tolist().count(0) == n
             and u32[w + W_MAPPING:end:PAGE_WORDS].tolist().count(0) == n
             and not any(f & PAGE_FLAGS_CHECK_AT_PREP for f in u32[w:end:PAGE_WORDS].tolist()))
    if clean:
        return False
    return any(check_new_page(mm, p) for p in range(pfn, pfn + n))


def prep_new_page(mm: MmState, pfn: int, order: int, gfp: int, alloc_flags: int) -> None:
    """prep_new_page(): a block's state as the caller receives it.

    Models post_alloc_hook() and prep_new_page(): private 0, _refcount 1
    on the head, zeroed contents for __GFP_ZERO (guest RAM, HighMem too), a
    compound page for order > 0 with __GFP_COMP, lru.next holding the
    pfmemalloc bit; page->index keeps the migratetype the block was taken
    as.  The order is recorded for order > 0 so that a free with another
    order can be refused.
    """
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
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
        set_fast_zone(mm, pfn, NO_FAST_FREE)   # its free must check the order


def prep_compound_page(mm: MmState, pfn: int, order: int) -> None:
    """prep_compound_page(): PG_head on the head, compound_head|1 in every tail,
    the destructor and order bytes in the first tail (lru.prev's low bytes)."""
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    tails = (1 << order) - 1
    u32[w] |= 1 << PG_head
    first, end = w + PAGE_WORDS, w + ((tails + 1) * PAGE_WORDS)
    u32[first + W_NEXT:end:PAGE_WORDS] = array("I", [mm.mvirt + (pfn * STRUCT_PAGE_SIZE) + 1]) * tails
    zeros = array("I", [0]) * tails
    u32[first + W_MAPPING:end:PAGE_WORDS] = zeros
    u32[first + W_PRIVATE:end:PAGE_WORDS] = zeros
    u32[first + W_PREV] = COMPOUND_PAGE_DTOR | (order << 8)


def _alloc_pages(mm: MmState, gfp: int, order: int, nid: Optional[int],
                 might_alloc: bool = True) -> Optional[int]:
    """__alloc_pages(): the whole allocation path (the fast path's fallback).

    Out-of-range orders get the kernel's WARN_ON_ONCE (unless __GFP_NOWARN)
    and NULL; bits above __GFP_BITS_MASK are dropped as gfp_allowed_mask does.
    The first attempt is at the low watermark, with ALLOC_KSWAPD when the
    mask may wake kswapd (alloc_flags_nofragment()).
    might_alloc False: the order-0 fast path ran mm.might_alloc already.
    """
    if not (isinstance(order, int) and 0 <= order < MAX_ORDER):
        if not gfp & __GFP_NOWARN:
            warn_on_once(mm, WHERE_ALLOC_ORDER, "__alloc_pages+0x8a/0x2c0")
        return None
    mask = gfp & __GFP_BITS_MASK
    ac = prepare_alloc_pages(mm, mask, nid, might_alloc)
    if ac is None:
        return None
    pfn = get_page_from_freelist(mm, mask, order, ALLOC_WMARK_LOW | alloc_flags_nofragment(mask),
                                 ac)
    if pfn is None:
        return _alloc_pages_slowpath(mm, mask, order, ac)
    if not order and nid is None:
        _remember_fast(mm, gfp, mask, ac)
    return pfn


def _remember_fast(mm: MmState, gfp: int, mask: int, ac: AllocContext) -> None:
    """Make the order-0 fast path's plan for this gfp mask.

    The plan is (the preferred zone's order-0 pcp list of the mask's
    migratetype, where it is: held by the host, or in guest memory during a
    run, mm/pcp_list.py; mm.refcounts, the might_alloc hook or None), valid while
    the zone's NR_FREE_PAGES is above the mark get_page_from_freelist()
    checks first (low watermark with its boost, plus the zone's
    lowmem_reserve for this mask and its high-atomic reserve):
    zone.fast_mark keeps the highest such mark, MmState.zone_free_dropped()
    drops the plans when NR_FREE_PAGES falls to it, reserves_changed() when
    a boost or reserve moves it.  The hook is left out when the mask cannot
    reclaim or no hook is installed.  No plan is made while the zone's pcp
    free_factor is set (a drain that sets it drops the plans:
    rmqueue_pcplist() has to halve it on the next allocations).  Masks the
    fast path cannot serve (__GFP_ZERO must clear the page; a migratetype
    with no pcp list) get None.
    """
    if mm.pcp_in_guest and not (mm.guest_running or mm.pcp_hold_refused):
        # Between runs the plan pops a list the host holds (a Python list):
        # take the lists out of guest memory if they come out whole.  During
        # a run (a hypercall) the plan pops the list in guest memory.
        if not pcp_to_host(mm):
            mm.pcp_hold_refused = True
    if len(mm.fast_alloc) >= FAST_CACHE_MAX:
        mm.fast_alloc.clear()
    zones, highest, migratetype = ac
    if mask & __GFP_ZERO or not zones or migratetype >= MIGRATE_PCPTYPES:
        mm.fast_alloc[gfp] = None
        return
    zone = zones[0]
    mark = (wmark_pages(zone, ALLOC_WMARK_LOW) + zone.lowmem_reserve[highest]
            + zone.nr_reserved_highatomic)
    if zone.nr_free_pages <= mark or zone.per_cpu_pageset.free_factor:
        return                                   # (rmqueue_pcplist() must halve free_factor)
    zone.fast_mark = max(zone.fast_mark, mark)
    hook = mm.might_alloc
    if not mask & __GFP_DIRECT_RECLAIM or hook is no_might_alloc:
        ctx, k = _NEVER, 0
    else:
        # A hook with a context word (sched's: preempt_count and irqs) is called
        # only when that word is nonzero; saves a call per allocation.
        ctx, k = getattr(hook, "context", (_ALWAYS, 0))
    mm.fast_alloc[gfp] = (zone.per_cpu_pageset.lists[migratetype], mm.refcounts, ctx, k, hook)


def _alloc_pages_slowpath(mm: MmState, gfp: int, order: int, ac: AllocContext) -> Optional[int]:
    """__alloc_pages_slowpath(): min watermark with the mask's rights, reserves, reclaim.

    kswapd is woken first (wake_all_kswapds(): in mmemu it drops the
    watermark boosts); direct reclaim gives up a high-atomic pageblock
    before it drains; and before failing, as should_reclaim_retry() does
    when reclaim makes no progress, the high-atomic reserve goes whole
    and the lists are tried once more.  Differs: no kswapd thread,
    compaction or OOM killer; direct reclaim is the registered shrinkers
    and a drain of the per-cpu lists, retried once.
    """
    alloc_flags = gfp_to_alloc_flags(gfp, order)
    if alloc_flags & ALLOC_KSWAPD:
        wake_all_kswapds(mm, ac)
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
        if _may_reclaim_retry(gfp, order) and \
                unreserve_highatomic_pageblock(mm, ac[0], ac[2], True):
            pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac)
            if pfn is not None:
                return pfn
    warn_alloc(mm, gfp, order)
    return None


def _may_reclaim_retry(gfp: int, order: int) -> bool:
    """Whether __alloc_pages_slowpath() reaches should_reclaim_retry() for this mask."""
    if gfp & __GFP_NORETRY:
        return False
    return order <= PAGE_ALLOC_COSTLY_ORDER or bool(gfp & __GFP_RETRY_MAYFAIL)


def wake_all_kswapds(mm: MmState, ac: AllocContext) -> None:
    """wake_all_kswapds(): wakeup_kswapd() for every zone of the zonelist."""
    changed = False
    for zone in ac[0]:
        changed |= wakeup_kswapd(mm, zone)
    if changed:
        mm.reserves_changed()


def _alloc_pages_direct_reclaim(mm: MmState, gfp: int, order: int, alloc_flags: int,
                                ac: AllocContext) -> Optional[int]:
    """__alloc_pages_direct_reclaim(): shrink, then unreserve a high-atomic
    pageblock and drain the pcp lists, and try once more.

    Differs: drains even when the shrinkers freed nothing, standing in for
    the reclaim and OOM steps mmemu does not model.
    """
    for shrink in list(mm.shrinkers):
        shrink()
    pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac)
    if pfn is not None:
        return pfn
    unreserve_highatomic_pageblock(mm, ac[0], ac[2], False)
    drain_all_pages(mm)
    return get_page_from_freelist(mm, gfp, order, alloc_flags, ac)


def register_shrinker(mm: MmState, fn: Shrinker) -> Shrinker:
    """register_shrinker(): fn() is called when direct reclaim runs; it returns pages freed."""
    mm.shrinkers.append(fn)
    return fn


def unregister_shrinker(mm: MmState, fn: Shrinker) -> None:
    """unregister_shrinker()."""
    if fn in mm.shrinkers:
        mm.shrinkers.remove(fn)


# -- the family around alloc_pages -------------------------------------------------

def alloc_page(mm: MmState, gfp: int) -> Optional[int]:
    """alloc_page(): one page; a pfn or None."""
    return alloc_pages(mm, gfp, 0)


def _get_free_pages(mm: MmState, gfp: int, order: int = 0) -> int:
    """__get_free_pages(): the direct-map address of 2^order lowmem pages, or 0.

    __GFP_HIGHMEM is masked off: the result must have a permanent address.
    """
    pfn = alloc_pages(mm, gfp & ~__GFP_HIGHMEM, order)
    if pfn is None:
        return 0
    return page_address(mm, pfn) or 0


def get_zeroed_page(mm: MmState, gfp: int) -> int:
    """get_zeroed_page(): one zeroed page's address, or 0."""
    return _get_free_pages(mm, gfp | __GFP_ZERO, 0)


def free_pages(mm: MmState, addr: int, order: int = 0) -> None:
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


def free_page(mm: MmState, addr: int) -> None:
    """free_page(): free_pages(addr, 0)."""
    free_pages(mm, addr, 0)


def split_page(mm: MmState, pfn: int, order: int) -> None:
    """split_page(): a non-compound 2^order block becomes 2^order order-0 pages.

    Models mm/page_alloc.c:split_page(): every page gets a reference of its
    own (the head keeps its one), so each is freed on its own, by the
    order-0 paths.  The caller owns the block and knows it is not compound
    (6.1 checks that only under CONFIG_DEBUG_VM).
    """
    n = 1 << order
    refs = mm.refcounts
    mm.alloc_orders.pop(pfn, None)
    for p in range(pfn + 1, pfn + n):
        refs[p] = 1                              # set_page_refcounted()
    set_fast_free(mm, page_zone(mm, pfn), pfn, pfn + n)


def make_alloc_exact(mm: MmState, pfn: int, order: int, size: int) -> None:
    """make_alloc_exact(): keep the pages size needs, free the rest of the block.

    Models mm/page_alloc.c:make_alloc_exact(): the block is split and its
    pages past DIV_ROUND_UP(size, PAGE_SIZE) go straight back to the buddy
    lists, at the tail (__free_pages_ok(page, 0, FPI_TO_TAIL)).
    """
    nr = -(-size // PAGE_SIZE)
    split_page(mm, pfn, order)
    zone = page_zone(mm, pfn)
    for p in range(pfn + nr, pfn + (1 << order)):
        mm.refcounts[p] = 0                      # the reference split_page() gave
        if free_pages_prepare(mm, p, 0):
            _free_pages_ok(mm, zone, p, 0, get_pfnblock_migratetype(zone, p), to_tail=True)


def alloc_pages_exact(mm: MmState, size: int, gfp: int, nid: Optional[int] = None) -> int:
    """alloc_pages_exact() (alloc_pages_exact_nid() with nid): the address, or 0.

    PAGE_ALIGN(size) bytes of lowmem as separate order-0 pages, freed with
    free_pages_exact().  __GFP_COMP and __GFP_HIGHMEM are dropped (6.1
    also warns once; the guest SDK's wrapper does).  Differs: the nid form
    masks __GFP_HIGHMEM too (6.1 would return NULL for a HighMem page).
    """
    order = get_order(size)
    gfp &= ~(__GFP_COMP | __GFP_HIGHMEM)
    if order >= MAX_ORDER:
        return _get_free_pages(mm, gfp, order)   # the allocator's WARN, and 0
    pfn = alloc_pages(mm, gfp, order, nid)
    if pfn is None:
        return 0
    make_alloc_exact(mm, pfn, order, size)
    return lowmem_page_address(pfn)


def get_order(size: int) -> int:
    """get_order(): the order of the smallest block that holds size bytes.

    As include/asm-generic/getorder.h computes it on 32-bit: get_order(0),
    undefined there, is 20.
    """
    return (((size - 1) & 0xFFFFFFFF) >> PAGE_SHIFT).bit_length()


# -- counters -----------------------------------------------------------------

def nr_free_pages(mm: MmState, zid: Optional[int] = None) -> int:
    """nr_free_pages(): NR_FREE_PAGES of all zones, or of zone index zid on every node."""
    return sum(z.nr_free_pages for z in mm.zones if zid is None or z.zone_idx == zid)


def totalram_pages(mm: MmState) -> int:
    """totalram_pages(): the managed pages of every zone."""
    return sum(z.managed_pages for z in mm.zones)


def totalhigh_pages(mm: MmState) -> int:
    """totalhigh_pages(): the managed pages of the highmem zones."""
    return sum(z.managed_pages for z in mm.zones if z.is_highmem)


def nr_free_highpages(mm: MmState) -> int:
    """nr_free_highpages(): NR_FREE_PAGES of the highmem zones."""
    return sum(z.nr_free_pages for z in mm.zones if z.is_highmem)


def setup_per_zone_wmarks(mm: MmState) -> None:
    """setup_per_zone_wmarks(): watermarks from min_free_kbytes, then pcp high/batch."""
    from mmemu.mm.watermark import _setup_per_zone_wmarks
    _setup_per_zone_wmarks(mm)
    for zone in mm.zones:
        _pcp.zone_pcp_update(mm, zone)
    mm.fast_paths_changed()


def min_free_kbytes_sysctl_handler(mm: MmState, kbytes: int) -> None:
    """Writing vm.min_free_kbytes: a new reserve, then new watermarks.

    Models mm/page_alloc.c:min_free_kbytes_sysctl_handler(); differs: no
    proc plumbing, the value is set directly.
    """
    mm.user_min_free_kbytes = mm.min_free_kbytes = kbytes
    setup_per_zone_wmarks(mm)
