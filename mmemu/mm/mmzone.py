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
  16   index           0                 0                  freelist
  20   private         buddy order       0                  counters
  24   _mapcount       page_type         -1                 __unused
  28   _refcount       0 when free       0                  1
  32   memcg_data      0 (mmemu has no memory cgroups)
  36   (padding to the 8-byte alignment)

Pointers are guest virtual addresses: lru.next/prev point at the struct page
of the next/previous free block of the same order, 0 at the ends (differs:
Linux's lists are circular through a list head inside struct zone; here the
heads are host-side, so a free list is a 0-terminated chain).

flags: PG_* bits low, the zone in bits 30-31 and the node in bits 26-29,
as page_zonenum()/page_to_nid() take them (differs: Linux packs sections and
the last-cpupid field there too; a FLATMEM 686 build has neither).
"""
from array import array
from dataclasses import dataclass, field

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


def page_type_is(mapcount_word, pg_type):
    """PageType(): the type bit is clear and the base bits are set."""
    return (mapcount_word & (PAGE_TYPE_BASE | pg_type)) == PAGE_TYPE_BASE


def page_flags_word(zid, nid, pg_bits=0):
    """The initial flags word set_page_links() gives a page of zone zid, node nid."""
    return (zid << ZONES_PGSHIFT) | (nid << NODES_PGSHIFT) | pg_bits


def page_zonenum(flags):
    return (flags >> ZONES_PGSHIFT) & ZONES_MASK


def page_to_nid_flags(flags):
    return (flags >> NODES_PGSHIFT) & NODES_MASK


@dataclass
class MemMap:
    """Where mem_map lives: FLATMEM, one struct page per pfn from pfn 0.

    ``phys`` is its physical base; ``virt`` its direct-map address, which is
    what guest `struct page *` values are.
    """

    phys: int
    nr_pages: int

    @property
    def virt(self):
        return PAGE_OFFSET + self.phys

    @property
    def size(self):
        return self.nr_pages * STRUCT_PAGE_SIZE

    def pfn_to_page(self, pfn):
        """pfn_to_page(): the struct page * (a guest virtual address)."""
        return self.virt + pfn * STRUCT_PAGE_SIZE

    def page_to_pfn(self, page):
        """page_to_pfn(): the inverse of pfn_to_page()."""
        return (page - self.virt) // STRUCT_PAGE_SIZE

    def page_word(self, pfn, word=0):
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
PAGEBLOCK_ORDER = 10                    # pageblock_order = HUGETLB_PAGE_ORDER (a 4 MiB page)
NR_PAGEBLOCK_BITS = 4                   # migratetype (3) + skip bit, per pageblock
NR_PCP_LISTS = PAGE_ALLOC_COSTLY_ORDER + 1   # one per order 0..3 (no migratetypes)

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
class FreeArea:
    """struct free_area: one order's free list and its length.

    The list itself is a chain in guest memory through lru.next/prev of each
    free block's head page; ``first`` and ``last`` are the pfns at its ends
    (-1 when empty), standing in for the circular list head inside struct zone.
    """

    first: int = -1
    last: int = -1
    nr_free: int = 0


@dataclass(slots=True, eq=False)
class PerCpuPages:
    """struct per_cpu_pages for the one CPU: pages kept off the buddy lists.

    ``lists[order]`` for orders 0..PAGE_ALLOC_COSTLY_ORDER, pfns with the list
    head at the end (list_add == append, list_first_entry == [-1], the tail
    that free_pcppages_bulk() drains first == [0]).  ``count`` is pcp->count
    in pages: the order-0 list's length plus ``count_hi``, the pages on the
    order 1..3 lists, kept as those lists change.  ``high0`` is high minus
    count_hi, so the order-0 fast path compares one length with one number
    (``fast`` holds the list and that number for it).
    """

    high: int = 0
    batch: int = 1
    lists: list = field(default_factory=lambda: [[] for _ in range(NR_PCP_LISTS)])
    count_hi: int = 0
    high0: int = 0
    zone: object = None
    fast: list = None            # [lists[0], high0]: what page_alloc's fast free reads

    def __post_init__(self):
        self.fast = [self.lists[0], self.high0]

    @property
    def count(self):
        return len(self.lists[0]) + self.count_hi

    def hi_changed(self, delta):
        """Pages were added to (delta > 0) or taken from the order 1..3 lists."""
        self.count_hi += delta
        self.high0 = self.fast[1] = self.high - self.count_hi


@dataclass(slots=True, eq=False)
class Zone:
    """struct zone (the fields mmemu models, under the kernel's names).

    ``nr_free_pages`` is vm_stat[NR_FREE_PAGES]: pages on the buddy lists,
    not counting the per-cpu lists (as /proc/zoneinfo's "pages free").
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
    present_ranges: list = field(default_factory=list)   # [(start_pfn, end_pfn)]
    managed_pages: int = 0
    _watermark: list = field(default_factory=lambda: [0] * NR_WMARK)
    watermark_boost: int = 0
    lowmem_reserve: list = field(default_factory=lambda: [0] * MAX_NR_ZONES)
    free_area: list = field(default_factory=lambda: [FreeArea() for _ in range(MAX_ORDER)])
    vm_stat: object = None
    vm_zone_stat: object = None
    per_cpu_pageset: PerCpuPages = field(default_factory=PerCpuPages)
    zone_pgdat: object = None
    zone_id: int = 0
    is_highmem: bool = False
    stat_threshold: int = 0
    fast_mark: int = -1          # page_alloc's order-0 fast path: its highest mark here

    def __post_init__(self):
        if self.vm_stat is None:
            self.vm_stat = memoryview(array("i", [0] * NR_VM_ZONE_STAT_ITEMS))
        if self.vm_zone_stat is None:
            self.vm_zone_stat = memoryview(array("i", [0] * NR_VM_ZONE_STAT_ITEMS))

    @property
    def nr_free_pages(self):
        """zone_page_state(zone, NR_FREE_PAGES)."""
        return self.vm_stat[NR_FREE_PAGES]

    @nr_free_pages.setter
    def nr_free_pages(self, value):
        """__mod_zone_page_state(zone, NR_FREE_PAGES, delta): the zone's and the global count."""
        stat = self.vm_stat
        self.vm_zone_stat[NR_FREE_PAGES] += value - stat[NR_FREE_PAGES]
        stat[NR_FREE_PAGES] = value

    @property
    def name(self):
        return ZONE_NAMES[self.zone_idx]

    @property
    def zone_end_pfn(self):
        return self.zone_start_pfn + self.spanned_pages

    @property
    def populated(self):
        """populated_zone(): the zone has present pages."""
        return self.present_pages != 0

    def min_wmark_pages(self):
        return self._watermark[WMARK_MIN] + self.watermark_boost

    def low_wmark_pages(self):
        return self._watermark[WMARK_LOW] + self.watermark_boost

    def high_wmark_pages(self):
        return self._watermark[WMARK_HIGH] + self.watermark_boost

    def zone_spans_pfn(self, pfn):
        return self.zone_start_pfn <= pfn < self.zone_end_pfn

    def __repr__(self):
        return f"<Zone node {self.node} {self.name} [{self.zone_start_pfn:#x}, {self.zone_end_pfn:#x})>"


@dataclass(slots=True, eq=False)
class PglistData:
    """struct pglist_data (pg_data_t): one NUMA node and its four zones.

    ``node_zonelists`` holds the two zonelists as lists of Zone, highest
    zone of the nearest node first: [ZONELIST_FALLBACK, ZONELIST_NOFALLBACK].
    ``distance`` is the node's row of the SLIT distance table.
    """

    node_id: int
    node_zones: list = field(default_factory=list)
    node_zonelists: list = field(default_factory=lambda: [[], []])
    node_start_pfn: int = 0
    node_spanned_pages: int = 0
    node_present_pages: int = 0
    distance: list = field(default_factory=list)
    has_cpu: bool = False
    totalreserve_pages: int = 0

    @property
    def node_end_pfn(self):
        return self.node_start_pfn + self.node_spanned_pages


ZONELIST_FALLBACK, ZONELIST_NOFALLBACK = 0, 1


def is_highmem_idx(zid, movable_is_highmem):
    """is_highmem_idx(): HighMem, or Movable when it was carved out of HighMem."""
    return zid == ZONE_HIGHMEM or (zid == ZONE_MOVABLE and movable_is_highmem)
