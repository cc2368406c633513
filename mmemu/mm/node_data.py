"""pg_data_t and struct zone in guest memory, and the globals that read them.

Models what Linux keeps in kernel memory about nodes and zones: one struct
pglist_data per node with its four struct zone (include/linux/mmzone.h),
node_data[] (arch/x86/mm/numa.c), node_states[N_ONLINE], _totalram_pages
and _totalhigh_pages (mm/page_alloc.c, mm/highmem.c) and vm_zone_stat[]
(mm/vmstat.c).  Guest code walks them as kernel code does:
NODE_DATA(nid)->node_zones, for_each_online_node(), for_each_populated_zone(),
zone_page_state(zone, NR_FREE_PAGES), totalram_pages(); the layout below
is the contract, and guest/include/mmemu/mmzone.h mirrors it (the build
tests compare the two).

The host's Zone and PglistData records (mm/mmzone.py) stay the allocator's
working state.  The free-page counters live here: Zone.vm_stat and
Zone.vm_zone_stat become views of the guest's vm_stat[] and
vm_zone_stat[], so every change the buddy allocator makes is in guest
memory at once, without a copy (the order-0 fast paths, which move pages
between the per-cpu lists and their users, change no counter, as in Linux).
Watermarks, lowmem_reserve and managed pages change only when the
watermarks are set up again; MmState.zone_watchers copies them then.

The zone's pageblock bitmap (pageblock_flags, memblock memory the page
allocator keeps current, mm/pageblock.py) is reachable from struct zone, so
guest code reads a page's migratetype as get_pfnblock_migratetype() does.

zone->per_cpu_pageset points at the zone's struct per_cpu_pages in the
per-cpu area (mm/pcp_list.py places them), and zone->flags carries
ZONE_BOOSTED_WATERMARK: guest code's order-0 allocations read both.

Differs from Linux: a layout of mmemu's own (the kernel's fields by name and
in the kernel's order, without what mmemu does not model: the free_area
lists, zonelists, lruvecs, locks and padding); vm_stat
counts NR_FREE_PAGES only; the structures sit in the reserved first MiB
(MMZONE_PHYS), where a kernel would have them in its .data and memblock.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmemu.layout import MAX_NR_ZONES, PAGE_OFFSET, ZONE_NAMES
from mmemu.mm.mmzone import (
    NODES_MASK, NR_FREE_PAGES, NR_VM_ZONE_STAT_ITEMS, NR_WMARK, PglistData, Zone, online_pgdats,
)
from mmemu.mm.pcp_list import place_pagesets
from mmemu.physmem import PhysMem

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

MAX_NUMNODES = NODES_MASK + 1          # 1 << NODES_SHIFT: the node bits of page->flags
MMZONE_PHYS = 0x3000                   # in the first MiB, which 6.1 reserves whole
MMZONE_SIZE = 0x2000

# struct zone (byte offsets); unsigned long / long / pointers are 4 bytes.
STRUCT_ZONE = {
    "_watermark": 0,                   # unsigned long _watermark[NR_WMARK]
    "watermark_boost": 16,
    "nr_reserved_highatomic": 20,
    "lowmem_reserve": 24,              # long lowmem_reserve[MAX_NR_ZONES]
    "node": 40,
    "zone_pgdat": 44,                  # struct pglist_data *
    "per_cpu_pageset": 48,             # struct per_cpu_pages *: the one CPU's (mm/pcp_list.py)
    "pageblock_flags": 52,             # unsigned long *: the pageblock bitmap (FLATMEM)
    "zone_start_pfn": 56,
    "managed_pages": 60,               # atomic_long_t
    "spanned_pages": 64,
    "present_pages": 68,
    "name": 72,                        # const char *
    "flags": 76,                       # enum zone_flags bits: ZONE_BOOSTED_WATERMARK
    "vm_stat": 80,                     # atomic_long_t vm_stat[NR_VM_ZONE_STAT_ITEMS]
}
SIZEOF_ZONE = 80 + 4 * NR_VM_ZONE_STAT_ITEMS
ZONE_BOOSTED_WATERMARK = 0             # enum zone_flags: the bit in struct zone's flags

# struct pglist_data
STRUCT_PGLIST_DATA = {
    "node_zones": 0,                   # struct zone node_zones[MAX_NR_ZONES]
    "nr_zones": SIZEOF_ZONE * MAX_NR_ZONES,
    "node_start_pfn": SIZEOF_ZONE * MAX_NR_ZONES + 4,
    "node_present_pages": SIZEOF_ZONE * MAX_NR_ZONES + 8,
    "node_spanned_pages": SIZEOF_ZONE * MAX_NR_ZONES + 12,
    "node_id": SIZEOF_ZONE * MAX_NR_ZONES + 16,
    "totalreserve_pages": SIZEOF_ZONE * MAX_NR_ZONES + 20,
}
SIZEOF_PGLIST_DATA = SIZEOF_ZONE * MAX_NR_ZONES + 24

# The globals, together at MMZONE_PHYS (struct mmemu_mm_globals in the header).
MM_GLOBALS = {
    "_totalram_pages": 0,              # atomic_long_t
    "_totalhigh_pages": 4,             # atomic_long_t
    "vm_zone_stat": 8,                 # atomic_long_t vm_zone_stat[NR_VM_ZONE_STAT_ITEMS]
    "node_online_map": 8 + 4 * NR_VM_ZONE_STAT_ITEMS,     # node_states[N_ONLINE]: a bitmap
    "nr_online_nodes": 12 + 4 * NR_VM_ZONE_STAT_ITEMS,
    "page_group_by_mobility_disabled": 16 + 4 * NR_VM_ZONE_STAT_ITEMS,
    "node_data": 20 + 4 * NR_VM_ZONE_STAT_ITEMS,          # struct pglist_data *[MAX_NUMNODES]
}
SIZEOF_MM_GLOBALS = MM_GLOBALS["node_data"] + 4 * MAX_NUMNODES
ZONE_NAMES_OFFSET = 0x60               # "DMA\0Normal\0HighMem\0Movable\0"
PGDAT_OFFSET = 0x80                    # node_data[] point at pgdats from here, by node id

assert SIZEOF_MM_GLOBALS <= ZONE_NAMES_OFFSET
assert PGDAT_OFFSET + MAX_NUMNODES * SIZEOF_PGLIST_DATA <= MMZONE_SIZE


def pgdat_phys(nid: int) -> int:
    """The physical address of node nid's struct pglist_data."""
    return MMZONE_PHYS + PGDAT_OFFSET + nid * SIZEOF_PGLIST_DATA


def zone_phys(nid: int, zid: int) -> int:
    """The physical address of NODE_DATA(nid)->node_zones[zid]."""
    return pgdat_phys(nid) + zid * SIZEOF_ZONE


def publish_node_data(mm: MmState, pagesets: int = 0) -> int:
    """Write node_data[], every pg_data_t and struct zone into guest memory.

    From now on the zones' free-page counters are the guest's words, and
    mm.zone_watchers keeps the rest current.  pagesets: where the zones'
    struct per_cpu_pages go (physical; 0: they stay private, as in a page
    allocator booted without a machine).  Returns the virtual address of
    the globals (struct mmemu_mm_globals) for the boot information.
    """
    pm = mm.physmem
    pm.fill(MMZONE_PHYS, MMZONE_SIZE, 0)
    names = _write_zone_names(pm)
    online = online_pgdats(mm.node_data)
    g = MMZONE_PHYS
    if pagesets:
        place_pagesets(mm, pagesets)
    pm.write32(g + MM_GLOBALS["node_online_map"], sum(1 << p.node_id for p in online))
    pm.write32(g + MM_GLOBALS["nr_online_nodes"], len(online))
    pm.write32(g + MM_GLOBALS["page_group_by_mobility_disabled"],
               int(mm.page_group_by_mobility_disabled))
    global_stat = _words(pm, g + MM_GLOBALS["vm_zone_stat"], NR_VM_ZONE_STAT_ITEMS)
    for pgdat in online:
        pm.write32(g + MM_GLOBALS["node_data"] + 4 * pgdat.node_id,
                   PAGE_OFFSET + pgdat_phys(pgdat.node_id))
        _write_pgdat(pm, pgdat, names)
        for zone in pgdat.node_zones:
            _place_vm_stat(pm, zone, global_stat)
    mm.zone_watchers.append(lambda: sync_zones(mm))
    sync_zones(mm)
    return PAGE_OFFSET + MMZONE_PHYS


def sync_zones(mm: MmState) -> None:
    """Copy what setup_per_zone_wmarks(), the boot and the page allocator's
    reserves change: watermarks and their boost, ZONE_BOOSTED_WATERMARK, the
    high-atomic reserve, lowmem_reserve, managed pages, totalram and
    totalhigh pages."""
    pm = mm.physmem
    for zone in mm.zones:
        base = zone_phys(zone.node, zone.zone_idx)
        pm.write32(base + STRUCT_ZONE["flags"], int(zone.boosted_watermark) << ZONE_BOOSTED_WATERMARK)
        for i in range(NR_WMARK):
            pm.write32(base + STRUCT_ZONE["_watermark"] + 4 * i, zone._watermark[i])
        pm.write32(base + STRUCT_ZONE["watermark_boost"], zone.watermark_boost)
        pm.write32(base + STRUCT_ZONE["nr_reserved_highatomic"], zone.nr_reserved_highatomic)
        for i in range(MAX_NR_ZONES):
            pm.write32(base + STRUCT_ZONE["lowmem_reserve"] + 4 * i, zone.lowmem_reserve[i])
        pm.write32(base + STRUCT_ZONE["managed_pages"], zone.managed_pages)
    for pgdat in online_pgdats(mm.node_data):
        pm.write32(pgdat_phys(pgdat.node_id) + STRUCT_PGLIST_DATA["totalreserve_pages"],
                   pgdat.totalreserve_pages)
    pm.write32(MMZONE_PHYS + MM_GLOBALS["_totalram_pages"],
               sum(z.managed_pages for z in mm.zones))
    pm.write32(MMZONE_PHYS + MM_GLOBALS["_totalhigh_pages"],
               sum(z.managed_pages for z in mm.zones if z.is_highmem))


def _write_zone_names(pm: PhysMem) -> list[int]:
    """zone_names[]: the strings struct zone's name points at; their addresses."""
    addrs: list[int] = []
    off = MMZONE_PHYS + ZONE_NAMES_OFFSET
    for name in ZONE_NAMES:
        pm.write(off, name.encode() + b"\0")
        addrs.append(PAGE_OFFSET + off)
        off += len(name) + 1
    return addrs


def _write_pgdat(pm: PhysMem, pgdat: PglistData, names: list[int]) -> None:
    """The fields of one node and its zones that do not change after boot."""
    base = pgdat_phys(pgdat.node_id)
    spanned = [z.zone_idx for z in pgdat.node_zones if z.spanned_pages]
    for field, value in (("nr_zones", max(spanned) + 1 if spanned else 0),
                         ("node_start_pfn", pgdat.node_start_pfn),
                         ("node_present_pages", pgdat.node_present_pages),
                         ("node_spanned_pages", pgdat.node_spanned_pages),
                         ("node_id", pgdat.node_id)):
        pm.write32(base + STRUCT_PGLIST_DATA[field], value)
    for zone in pgdat.node_zones:
        z = zone_phys(zone.node, zone.zone_idx)
        bitmap = zone.pageblock_flags.phys
        pcp = zone.per_cpu_pageset.base
        for field, value in (("node", zone.node), ("zone_pgdat", PAGE_OFFSET + base),
                             ("per_cpu_pageset", PAGE_OFFSET + 4 * pcp if pcp else 0),
                             ("pageblock_flags", PAGE_OFFSET + bitmap if bitmap else 0),
                             ("zone_start_pfn", zone.zone_start_pfn),
                             ("spanned_pages", zone.spanned_pages),
                             ("present_pages", zone.present_pages),
                             ("name", names[zone.zone_idx])):
            pm.write32(z + STRUCT_ZONE[field], value)


def _place_vm_stat(pm: PhysMem, zone: Zone, global_stat: memoryview) -> None:
    """Move the zone's counters into its guest struct zone (and the global's)."""
    stat = _words(pm, zone_phys(zone.node, zone.zone_idx) + STRUCT_ZONE["vm_stat"],
                  NR_VM_ZONE_STAT_ITEMS)
    for i in range(NR_VM_ZONE_STAT_ITEMS):
        stat[i] = zone.vm_stat[i]
        global_stat[i] += zone.vm_stat[i]
    zone.vm_stat, zone.vm_zone_stat = stat, global_stat


def _words(pm: PhysMem, pa: int, n: int) -> memoryview:
    """A view of n signed 32-bit words of guest memory (atomic_long_t)."""
    return pm.u8[pa:pa + 4 * n].cast("i")


__all__ = ["MAX_NUMNODES", "MMZONE_PHYS", "NR_FREE_PAGES", "publish_node_data", "sync_zones"]
