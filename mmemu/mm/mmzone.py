"""struct page and mem_map in guest memory, zone and node records.

Models include/linux/mm_types.h (struct page, struct slab overlay),
include/linux/page-flags.h and include/linux/mmzone.h for 6.1 i386.  The
layout below is the one contract between host and guest: guest/include's
struct page mirrors it field for field, and nothing else defines it.

struct page (40 bytes on the 686 kernel: 36 bytes of fields, CONFIG_MEMCG's
memcg_data among them, rounded up by HAVE_ALIGNED_STRUCT_PAGE to
2 * sizeof(long); docs/reference-6.1-686.md, section 3):

  off  field           buddy page        compound tail      slab (struct slab)
  0    flags           zone/node + PG_*  zone/node          PG_slab|PG_head
  4    lru.next        next free block   compound_head|1    slab_list.next
  8    lru.prev        prev free block   dtor(u8),order(u8) slab_list.prev
  12   mapping         0                 0                  slab_cache
  16   index           migratetype (*)   0                  freelist
  20   private         buddy order       0                  counters
  24   _mapcount       page_type         -1                 __unused
  28   _refcount       0 when free       0                  1
  32   memcg_data      0 (mmemu has no memory cgroups)
  36   (padding to the 8-byte alignment)

(*) The migratetype the page was last taken from the free lists as, or
cached when it was freed onto a per-cpu list (set_pcppage_migratetype());
6.1 leaves it there when the page is allocated.

Pointers are guest virtual addresses: lru.next/prev point at the struct page
of the next/previous free block of the same order and migratetype, 0 at the
ends (differs:
Linux's lists are circular through a list head inside struct zone; here the
heads are host-side, so a free list is a 0-terminated chain).  A block on a
per-cpu list is linked as 6.1 links it: lru is page->pcp_list, a list_head
pointing at the neighbours' pcp_list (struct page + 4), circular through
the list head in struct per_cpu_pages (mm/pcp_list.py).

flags: PG_* bits low, the zone in bits 30-31 and the node in bits 26-29,
as page_zonenum()/page_to_nid() take them (differs: Linux packs sections and
the last-cpupid field there too; a FLATMEM 686 build has neither).
"""
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from mmemu.layout import (MAX_NR_ZONES, PAGE_OFFSET, ZONE_HIGHMEM, ZONE_MOVABLE,
                          ZONE_NAMES)

STRUCT_PAGE_SIZE = 40
PAGE_WORDS = STRUCT_PAGE_SIZE // 4       # u32 words per struct page
OFF_FLAGS = 0
OFF_LRU_NEXT = 4
OFF_LRU_PREV = 8
OFF_MAPPING = 12
OFF_INDEX = 16
OFF_PRIVATE = 20
OFF_MAPCOUNT = 24
OFF_REFCOUNT = 28
OFF_MEMCG_DATA = 32
# Word indexes inside a struct page (for PhysMem.u32).
W_FLAGS, W_NEXT, W_PREV, W_MAPPING, W_INDEX, W_PRIVATE, W_MAPCOUNT, W_REFCOUNT, \
    W_MEMCG_DATA = range(9)

# enum pageflags, 6.1
PG_locked = 0
PG_referenced = 1
PG_uptodate = 2
PG_dirty = 3
PG_lru = 4
PG_active = 5
PG_workingset = 6
PG_waiters = 7
PG_error = 8
PG_slab = 9
PG_owner_priv_1 = 10
PG_arch_1 = 11
PG_reserved = 12
PG_private = 13
PG_private_2 = 14
PG_writeback = 15
PG_head = 16
PG_mappedtodisk = 17
PG_reclaim = 18
PG_swapbacked = 19
PG_unevictable = 20
PG_mlocked = 21
NR_PAGEFLAGS = 22

PAGEFLAG_NAMES = {
    PG_locked: "locked", PG_referenced: "referenced", PG_uptodate: "uptodate",
    PG_dirty: "dirty", PG_lru: "lru", PG_active: "active",
    PG_workingset: "workingset", PG_waiters: "waiters", PG_error: "error",
    PG_slab: "slab", PG_owner_priv_1: "owner_priv_1", PG_arch_1: "arch_1",
    PG_reserved: "reserved", PG_private: "private", PG_private_2: "private_2",
    PG_writeback: "writeback", PG_head: "head", PG_mappedtodisk: "mappedtodisk",
    PG_reclaim: "reclaim", PG_swapbacked: "swapbacked",
    PG_unevictable: "unevictable", PG_mlocked: "mlocked",
}

ZONES_PGSHIFT = 30
ZONES_MASK = 0x3
NODES_PGSHIFT = 26
NODES_MASK = 0xF
PAGEFLAGS_MASK = (1 << NR_PAGEFLAGS) - 1

# page_type lives in _mapcount: a page has a type when the top bits equal
# PAGE_TYPE_BASE and the type's bit is *clear* (so -1, "no mapcount", has none).
PAGE_TYPE_BASE = 0xF0000000
PG_buddy = 0x00000080
PG_offline = 0x00000100
PG_table = 0x00000200
PG_guard = 0x00000400
PAGE_MAPCOUNT_NONE = 0xFFFFFFFF           # _mapcount == -1
PAGE_TYPE_BUDDY = PAGE_MAPCOUNT_NONE & ~PG_buddy
PAGE_TYPE_TABLE = PAGE_MAPCOUNT_NONE & ~PG_table

COMPOUND_PAGE_DTOR = 1                    # enum compound_dtor_id


def page_type_is(mapcount_word: int, pg_type: int) -> bool:
    """PageType(): the type bit is clear and the base bits are set."""
    return (mapcount_word & (PAGE_TYPE_BASE | pg_type)) == PAGE_TYPE_BASE


def page_flags_word(zid: int, nid: int, pg_bits: int = 0) -> int:
    """The initial flags word set_page_links() gives a page of zone zid, node nid."""
    return (zid << ZONES_PGSHIFT) | (nid << NODES_PGSHIFT) | pg_bits


def page_zonenum(flags: int) -> int:
    return (flags >> ZONES_PGSHIFT) & ZONES_MASK


def page_to_nid_flags(flags: int) -> int:
    return (flags >> NODES_PGSHIFT) & NODES_MASK


@dataclass
class MemMap:
    """Where mem_map lives: FLATMEM, one struct page per pfn from pfn 0.

    ``phys`` is its physical base; ``virt`` its direct-map address, which is
    what guest `struct page *` values are.
    """

    phys: int
    nr_pages: int
    pfn_limit: Optional[int] = None      # pfn_valid(): the pfns mem_map covers, if past nr_pages

    @property
    def virt(self) -> int:
        return PAGE_OFFSET + self.phys

    @property
    def size(self) -> int:
        return self.nr_pages * STRUCT_PAGE_SIZE

    def pfn_to_page(self, pfn: int) -> int:
        """pfn_to_page(): the struct page * (a guest virtual address)."""
        return self.virt + pfn * STRUCT_PAGE_SIZE

    def page_to_pfn(self, page: int) -> int:
        """page_to_pfn(): the inverse of pfn_to_page()."""
        return (page - self.virt) // STRUCT_PAGE_SIZE

    def page_word(self, pfn: int, word: int = 0) -> int:
        """Index into PhysMem.u32 of a struct page field (W_* constant)."""
        return (self.phys >> 2) + pfn * PAGE_WORDS + word


# ---------------------------------------------------------------------------
# The buddy allocator's records: free areas, per-cpu pagesets, zones, nodes.
#
# These live on the host; what they point at (the free blocks themselves,
# chained through struct page lru) lives in guest memory.  Pfns stand where
# Linux holds struct page pointers.

MAX_ORDER = 11                          # 6.1's name: orders 0..MAX_ORDER-1
NR_PAGE_ORDERS = MAX_ORDER              # later kernels' name for the same count
MAX_PAGE_ORDER = MAX_ORDER - 1          # the largest block: order 10, 4 MiB
MAX_ORDER_NR_PAGES = 1 << MAX_PAGE_ORDER
PAGE_ALLOC_COSTLY_ORDER = 3

# enum migratetype (include/linux/mmzone.h, 6.1; a 686 build has
# CONFIG_MEMORY_ISOLATION and no CONFIG_CMA, so no MIGRATE_CMA).
MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_PCPTYPES = 3                    # the number of types on the pcp lists
MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES
MIGRATE_ISOLATE = 4                     # can't allocate from here
MIGRATE_TYPES = 5
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")

# pageblock_order (include/linux/pageblock-flags.h): the 686 kernel has
# CONFIG_HUGETLB_PAGE, so MIN(HUGETLB_PAGE_ORDER, MAX_ORDER - 1), the order
# of a PMD-sized huge page: 10 without PAE (4 MiB), 9 with it (2 MiB).  A
# machine's value is MmState.pageblock_order (pageblock_order_for()).
HPAGE_PMD_ORDER = 22 - 12               # PMD_SHIFT - PAGE_SHIFT, two-level tables
PAGEBLOCK_ORDER = min(HPAGE_PMD_ORDER, MAX_ORDER - 1)
NR_PAGEBLOCK_BITS = 4                   # PB_migratetype_bits (3) + PB_migrate_skip
PB_MIGRATETYPE_BITS = 3
MIGRATETYPE_MASK = (1 << PB_MIGRATETYPE_BITS) - 1

# The pcp lists (include/linux/mmzone.h, 6.1, CONFIG_TRANSPARENT_HUGEPAGE):
# one per pcp migratetype for each order up to PAGE_ALLOC_COSTLY_ORDER, and
# two for pageblock_order (THP): a movable one and one for the others.
NR_PCP_THP = 2
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + NR_PCP_THP


def pageblock_order_for(hpage_pmd_order: int = HPAGE_PMD_ORDER) -> int:
    """pageblock_order for a flavour's huge page order (HUGETLB_PAGE_ORDER)."""
    return min(hpage_pmd_order, MAX_ORDER - 1)


def migratetype_is_mergeable(mt: int) -> bool:
    """migratetype_is_mergeable(): blocks of these types may merge with each other."""
    return mt < MIGRATE_PCPTYPES


def order_to_pindex(migratetype: int, order: int, thp_order: int = PAGEBLOCK_ORDER) -> int:
    """order_to_pindex(): the pcp list of a migratetype and order.

    Orders 0..3 have MIGRATE_PCPTYPES lists each (pindex = 3 * order + mt);
    pageblock_order (THP) has two: NR_LOWORDER_PCP_LISTS for unmovable and
    reclaimable, the next for movable.
    """
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
    return MIGRATE_PCPTYPES * order + migratetype


def pindex_to_order(pindex: int, thp_order: int = PAGEBLOCK_ORDER) -> int:
    """pindex_to_order(): the order of the blocks on pcp list pindex."""
    if pindex >= NR_LOWORDER_PCP_LISTS:
        return thp_order
    return pindex // MIGRATE_PCPTYPES


WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO = range(4)
NR_WMARK = 4

# enum zone_stat_item: mmemu counts the first one only.
NR_FREE_PAGES = 0
NR_VM_ZONE_STAT_ITEMS = 1

# list_del() leaves these in lru.next/prev (POISON_POINTER_DELTA is 0 on i386).
LIST_POISON1 = 0x00000100
LIST_POISON2 = 0x00000122

PG_mlocked_bit = 1 << PG_mlocked
PAGE_FLAGS_CHECK_AT_FREE = (
    1 << PG_lru | 1 << PG_locked | 1 << PG_private | 1 << PG_private_2
    | 1 << PG_writeback | 1 << PG_reserved | 1 << PG_slab | 1 << PG_active
    | 1 << PG_unevictable | PG_mlocked_bit)
PAGE_FLAGS_CHECK_AT_PREP = PAGEFLAGS_MASK     # no PG_hwpoison in a 686 build


@dataclass(slots=True)
class FreeList:
    """One migratetype's free list of one order: the pfns at its two ends.

    The list itself is a chain in guest memory through lru.next/prev of each
    free block's head page; ``first`` and ``last`` (-1 when empty) stand in
    for the circular list head inside struct zone.
    """

    first: int = -1
    last: int = -1


@dataclass(slots=True)
class FreeArea:
    """struct free_area: one order's free lists, one per migratetype, and
    nr_free, the blocks on all of them."""

    free_list: list[FreeList] = field(
        default_factory=lambda: [FreeList() for _ in range(MIGRATE_TYPES)])
    nr_free: int = 0


# struct per_cpu_pages in guest memory (6.1's fields in 6.1's order, one
# 32-bit word each but free_factor and expire, the two shorts of word 4):
# spinlock_t lock; int count, high, batch; short free_factor, expire;
# struct list_head lists[NR_PCP_LISTS].
PCP_LOCK, PCP_COUNT, PCP_HIGH, PCP_BATCH, PCP_FREE_FACTOR, PCP_LISTS = range(6)
PCP_WORDS = PCP_LISTS + 2 * NR_PCP_LISTS
SIZEOF_PER_CPU_PAGES = 4 * PCP_WORDS
PCP_STRIDE = -(-SIZEOF_PER_CPU_PAGES // 64) * 64     # ____cacheline_aligned_in_smp


def _private_pcp_words() -> memoryview:
    """A private struct per_cpu_pages, until mm/node_data.py places the guest's
    (the boot pageset: high 0, batch 1)."""
    words = array("I", [0] * PCP_WORDS)
    words[PCP_BATCH] = 1
    return memoryview(words)


@dataclass(slots=True, eq=False)
class PerCpuPages:
    """struct per_cpu_pages for the one CPU: pages kept off the buddy lists.

    ``words`` is the structure itself (PCP_* word indexes): a private copy
    at boot, then guest memory, where guest code reads and changes it as
    6.1's rmqueue_pcplist()/free_unref_page() do (``base``: its u32 index
    in guest RAM, 0 until placed).  high, batch and free_factor always live
    there.

    The lists (NR_PCP_LISTS of them, order_to_pindex()) are either in guest
    memory (``in_guest``: pcp->count and lists[] are the truth,
    ``lists[pindex]`` a mm/pcp_list.py GuestPcpList over the list_head,
    linked through page->pcp_list as in 6.1) or held by the host between
    guest runs (Python lists of pfns with the list head at the end:
    list_add == append, list_first_entry == [-1], the tail that
    free_pcppages_bulk() drains first == [0]; pcp->count is summed when
    asked).  Both kinds answer len(), iteration (tail first), append(),
    pop() and truth.  mm/pcp_list.py moves the lists between the two.

    ``budget[mt]`` serves the host's order-0 fast free path (pcp.py): the
    length of lists[mt] at which pcp->count must be counted again, because
    it may have reached high.  Only one order-0 list at a time gets more
    than its length (the headroom high - count), so pcp->count cannot pass
    high between two counts; any other change of the lists sets every
    budget to its list's length.  ``thp_order`` is pageblock_order, the
    order of the two THP lists.
    """

    words: memoryview = field(default_factory=_private_pcp_words)
    lists: list[Any] = field(default_factory=lambda: [[] for _ in range(NR_PCP_LISTS)])
    budget: list[int] = field(default_factory=lambda: [0] * MIGRATE_PCPTYPES)
    thp_order: int = PAGEBLOCK_ORDER
    zone: Optional["Zone"] = None
    base: int = 0
    in_guest: bool = False

    @property
    def high(self) -> int:
        """pcp->high: the count at which a free drains the lists."""
        return int(self.words[PCP_HIGH])

    @high.setter
    def high(self, value: int) -> None:
        self.words[PCP_HIGH] = value

    @property
    def batch(self) -> int:
        """pcp->batch: the pages a refill takes and a drain gives back."""
        return int(self.words[PCP_BATCH])

    @batch.setter
    def batch(self, value: int) -> None:
        self.words[PCP_BATCH] = value

    @property
    def free_factor(self) -> int:
        """pcp->free_factor: drains since the last allocation (nr_pcp_free()
        doubles per drain); the short in the low half of its word."""
        return int(self.words[PCP_FREE_FACTOR]) & 0xFFFF

    @free_factor.setter
    def free_factor(self, value: int) -> None:
        w = self.words
        w[PCP_FREE_FACTOR] = (w[PCP_FREE_FACTOR] & 0xFFFF0000) | (value & 0xFFFF)

    @property
    def count(self) -> int:
        """pcp->count: the pages on every list (held by the host: summed in
        order_to_pindex()'s layout, three lists per order 0-3, then the two
        THP lists)."""
        if self.in_guest:
            return int(self.words[PCP_COUNT])
        lst = self.lists
        return (len(lst[0]) + len(lst[1]) + len(lst[2])
                + ((len(lst[3]) + len(lst[4]) + len(lst[5])) << 1)
                + ((len(lst[6]) + len(lst[7]) + len(lst[8])) << 2)
                + ((len(lst[9]) + len(lst[10]) + len(lst[11])) << 3)
                + ((len(lst[12]) + len(lst[13])) << self.thp_order))

    def rebudget(self, pindex: int = -1, headroom: int = 0) -> None:
        """After a change of the lists: every order-0 list's budget is its
        length, plus headroom for pindex's when that is an order-0 list
        (nothing while the lists are in guest memory: the fast path is off)."""
        if self.in_guest:
            return
        lst, budget = self.lists, self.budget
        budget[0], budget[1], budget[2] = len(lst[0]), len(lst[1]), len(lst[2])
        if 0 <= pindex < MIGRATE_PCPTYPES and headroom > 0:
            budget[pindex] += headroom


assert (MIGRATE_PCPTYPES, PAGE_ALLOC_COSTLY_ORDER, NR_PCP_LISTS) == (3, 3, 14)   # count's layout


@dataclass(slots=True, eq=False)
class PageblockFlags:
    """A zone's pageblock bitmap (zone->pageblock_flags, FLATMEM): 4 bits per
    pageblock, the migratetype in the low 3, in guest memory from memblock.

    ``phys``: the bitmap's physical address (0 for an empty zone); ``base``:
    pageblock_start_pfn(zone_start_pfn), the pfn of bit 0; ``order``:
    pageblock_order; ``mt``: the migratetypes again, one byte per pageblock,
    which the allocator reads (mm/pageblock.py writes both).
    """

    phys: int = 0
    base: int = 0
    order: int = PAGEBLOCK_ORDER
    mt: bytearray = field(default_factory=bytearray)


def _zero_stat() -> memoryview:
    """A private vm_stat array, until mm/node_data.py puts the guest's in its place."""
    return memoryview(array("i", [0] * NR_VM_ZONE_STAT_ITEMS))


@dataclass(slots=True, eq=False)
class Zone:
    """struct zone (the fields mmemu models, under the kernel's names).

    ``nr_free_pages`` is vm_stat[NR_FREE_PAGES]: pages on the buddy lists,
    not counting the per-cpu lists (as /proc/zoneinfo's "pages free") nor
    MIGRATE_ISOLATE pageblocks' free pages.  ``pageblock_flags``: the
    zone's pageblock bitmap (mm/pageblock.py); ``nr_reserved_highatomic``:
    the pages of its MIGRATE_HIGHATOMIC pageblocks; ``boosted_watermark``:
    ZONE_BOOSTED_WATERMARK, a steal raised watermark_boost and kswapd is to
    be woken.
    ``zone_id`` is the zone+node value of its pages' flags (flags >> 26).

    ``vm_stat`` holds the zone's counters (signed words, NR_VM_ZONE_STAT_ITEMS)
    and ``vm_zone_stat`` the global ones every zone adds into: private
    arrays at first, then views of the guest's struct zone and
    vm_zone_stat[] once mm/node_data.py publishes them, so that a change of
    nr_free_pages is in guest memory at once.
    """

    node: int
    zone_idx: int
    zone_start_pfn: int = 0
    spanned_pages: int = 0
    present_pages: int = 0
    present_ranges: list[tuple[int, int]] = field(default_factory=list)   # [(start_pfn, end_pfn)]
    managed_pages: int = 0
    _watermark: list[int] = field(default_factory=lambda: [0] * NR_WMARK)
    watermark_boost: int = 0
    nr_reserved_highatomic: int = 0
    lowmem_reserve: list[int] = field(default_factory=lambda: [0] * MAX_NR_ZONES)
    free_area: list[FreeArea] = field(
        default_factory=lambda: [FreeArea() for _ in range(MAX_ORDER)])
    vm_stat: memoryview = field(default_factory=lambda: _zero_stat())      # int words
    vm_zone_stat: memoryview = field(default_factory=lambda: _zero_stat())
    per_cpu_pageset: PerCpuPages = field(default_factory=PerCpuPages)
    pageblock_flags: PageblockFlags = field(default_factory=PageblockFlags)
    zone_pgdat: Optional["PglistData"] = None
    zone_id: int = 0
    is_highmem: bool = False
    stat_threshold: int = 0
    fast_mark: int = -1          # page_alloc's order-0 fast path: its highest mark here
    boosted_watermark: bool = False   # ZONE_BOOSTED_WATERMARK in zone->flags

    @property
    def nr_free_pages(self) -> int:
        """zone_page_state(zone, NR_FREE_PAGES)."""
        return self.vm_stat[NR_FREE_PAGES]

    @nr_free_pages.setter
    def nr_free_pages(self, value: int) -> None:
        """__mod_zone_page_state(zone, NR_FREE_PAGES, delta): the zone's and the global count."""
        stat = self.vm_stat
        self.vm_zone_stat[NR_FREE_PAGES] += value - stat[NR_FREE_PAGES]
        stat[NR_FREE_PAGES] = value

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.zone_idx]

    @property
    def zone_end_pfn(self) -> int:
        return self.zone_start_pfn + self.spanned_pages

    @property
    def populated(self) -> bool:
        """populated_zone(): the zone has present pages."""
        return self.present_pages != 0

    def min_wmark_pages(self) -> int:
        return self._watermark[WMARK_MIN] + self.watermark_boost

    def low_wmark_pages(self) -> int:
        return self._watermark[WMARK_LOW] + self.watermark_boost

    def high_wmark_pages(self) -> int:
        return self._watermark[WMARK_HIGH] + self.watermark_boost

    def zone_spans_pfn(self, pfn: int) -> bool:
        return self.zone_start_pfn <= pfn < self.zone_end_pfn

    def __repr__(self) -> str:
        return f"<Zone node {self.node} {self.name} [{self.zone_start_pfn:#x}, {self.zone_end_pfn:#x})>"


@dataclass(slots=True, eq=False)
class PglistData:
    """struct pglist_data (pg_data_t): one NUMA node and its four zones.

    ``node_zonelists`` holds the two zonelists as lists of Zone, highest
    zone of the nearest node first: [ZONELIST_FALLBACK, ZONELIST_NOFALLBACK].
    ``distance`` is the node's row of the SLIT distance table.
    """

    node_id: int
    node_zones: list[Zone] = field(default_factory=list)
    node_zonelists: list[list[Zone]] = field(default_factory=lambda: [[], []])
    node_start_pfn: int = 0
    node_spanned_pages: int = 0
    node_present_pages: int = 0
    distance: list[int] = field(default_factory=list)
    has_cpu: bool = False
    totalreserve_pages: int = 0

    @property
    def node_end_pfn(self) -> int:
        return self.node_start_pfn + self.node_spanned_pages


ZONELIST_FALLBACK, ZONELIST_NOFALLBACK = 0, 1


def online_pgdats(node_data: Sequence[Optional[PglistData]]) -> list[PglistData]:
    """for_each_online_pgdat(): the nodes that have memory (node_data[] holds
    None for a node id whose RAM the kernel does not use)."""
    return [pgdat for pgdat in node_data if pgdat is not None]


def is_highmem_idx(zid: int, movable_is_highmem: bool) -> bool:
    """is_highmem_idx(): HighMem, or Movable when it was carved out of HighMem."""
    return zid == ZONE_HIGHMEM or (zid == ZONE_MOVABLE and movable_is_highmem)
