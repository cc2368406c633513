"""Boot of the page allocator: nodes, zones, mem_map, and the first free pages.

Models, from Linux 6.1's mm/page_alloc.c (6.4 moved them to mm/mm_init.c,
whose name this module takes): free_area_init() with
find_zone_movable_pfns_for_nodes(), setup_usemap() and memmap_init()
(which marks every pageblock it initialises MIGRATE_MOVABLE "such that
unmovable allocations won't be scattered all over the place during system
boot"), and the memblock hand-over memblock_free_all() ->
__free_pages_memory() -> memblock_free_pages() -> __free_pages_core(),
followed by what the kernel does a little later: setup_per_cpu_pageset(),
init_per_zone_wmark_min() and the late frees (free_reserved_area()).

Speed: mem_map is initialised with bulk slice writes of a 40-byte struct
page template (one per run of pages of the same zone and state), never
with a Python loop per frame; the free RAM goes to the buddy lists as
order-aligned blocks of up to 4 MiB, a few per MiB of RAM at most.
"""
import struct
from array import array
from collections.abc import Iterator
from typing import Optional

from mmemu.config import MachineConfig, core_option_pages, movablecore_rounded
from mmemu.flavour import FLAVOUR_686
from mmemu.kernel.panic import Reporter
from mmemu.layout import (
    MAX_NR_ZONES, PAGE_SHIFT, ZONE_HIGHMEM, ZONE_MOVABLE, ZONE_NAMES, Layout, pfn_down, pfn_up,
)
from mmemu.log import KernelLog
from mmemu.mm import pcp
from mmemu.mm.freelist import _free_one_page
from mmemu.mm.gfp import build_all_zonelists
from mmemu.mm.mmzone import (
    MAX_ORDER, MAX_ORDER_NR_PAGES, MIGRATE_MOVABLE, NODES_PGSHIFT, PAGE_MAPCOUNT_NONE,
    PG_reserved, ZONES_PGSHIFT, STRUCT_PAGE_SIZE, PglistData, Zone, is_highmem_idx,
    MemMap, page_flags_word, pageblock_order_for,
)
from mmemu.mm.memblock import Memblock
from mmemu.mm.page_alloc import MmState, _free_pages
from mmemu.mm.pageblock import (
    get_pfnblock_migratetype, init_pageblock_flags, set_fast_free, set_pageblock_migratetype,
    usemap_size,
)
from mmemu.mm.watermark import (
    _setup_per_zone_wmarks, calculate_min_free_kbytes, calculate_normal_threshold,
    setup_per_zone_lowmem_reserve,
)
from mmemu.physmem import PhysMem


def struct_page_template(zid: int, nid: int, reserved: bool, index: int = 0) -> bytes:
    """The 40 bytes __init_single_page() leaves: zone/node links, _mapcount -1,
    _refcount 1 and PG_reserved for a page memblock still holds; _refcount 0
    and no flags for a page about to be freed (__free_pages_core()).  index:
    page->index (the migratetype a freed page caches)."""
    flags = page_flags_word(zid, nid, (1 << PG_reserved) if reserved else 0)
    return struct.pack("<10I", flags, 0, 0, 0, index, 0, PAGE_MAPCOUNT_NONE,
                       1 if reserved else 0, 0, 0)


def _fill_pages(mm: MmState, start: int, end: int, template: bytes) -> None:
    """Write one struct page template over mem_map[start:end].

    The template is written once, then the written part is copied onto the
    rest, doubling each time: about 20 memmoves for a 4 GiB mem_map, and no
    temporary the size of mem_map.
    """
    if end <= start:
        return
    u8 = mm.u8
    base = mm.memmap.phys + start * STRUCT_PAGE_SIZE
    size = (end - start) * STRUCT_PAGE_SIZE
    u8[base:base + STRUCT_PAGE_SIZE] = template
    done = STRUCT_PAGE_SIZE
    while done < size:
        chunk = min(done, size - done)
        u8[base + done:base + done + chunk] = u8[base:base + chunk]
        done += chunk


# -- ZONE_MOVABLE ------------------------------------------------------------------

def arch_zone_pfn_limits(layout: Layout) -> list[tuple[int, int]]:
    """free_area_init()'s arch_zone_lowest/highest_possible_pfn: [(low, high)] per zone.

    Each zone below ZONE_MOVABLE starts where the one before it ended (the
    first at the lowest RAM pfn) and ends at its max_zone_pfn: DMA at
    min(MAX_DMA_PFN, max_low_pfn), Normal at max_low_pfn, HighMem at max_pfn.
    ZONE_MOVABLE has (0, 0): it only ever takes pages from another zone.
    """
    start = min(s for _, s, _ in layout.memory)
    limits = []
    for max_zone_pfn in (min(layout.dma_pfn, layout.max_low_pfn), layout.max_low_pfn,
                         layout.max_pfn):
        end = max(max_zone_pfn, start)
        limits.append((start, end))
        start = end
    limits.append((0, 0))
    return limits


def find_usable_zone_for_movable(limits: list[tuple[int, int]]) -> int:
    """find_usable_zone_for_movable(): the highest zone below ZONE_MOVABLE with a range."""
    return max(zid for zid, (low, high) in enumerate(limits[:ZONE_MOVABLE]) if high > low)


def find_zone_movable_pfns_for_nodes(cfg: MachineConfig, layout: Layout,
                                     movable_zone: int) -> dict[int, int]:
    """find_zone_movable_pfns_for_nodes(): where ZONE_MOVABLE starts on each node.

    Models mm/page_alloc.c's function (6.1) for kernelcore= and movablecore=
    (sizes or percentages; differs: no movable_node, no kernelcore=mirror).
    movablecore=M becomes kernelcore = RAM - M (M in whole MAX_ORDER blocks;
    with both options the larger kernelcore wins); kernelcore is spread
    evenly over the nodes, each node's share taken from its lowest pages
    (the pages below movable_zone count first), and what lies above the
    share becomes ZONE_MOVABLE, its start rounded up to a MAX_ORDER block.
    Returns {nid: zone_movable_pfn} for the nodes that get one (empty for
    no ZONE_MOVABLE).
    """
    ranges = layout.memory
    totalpages = sum(e - s for _, s, e in ranges)       # early_calculate_totalpages()
    kernelcore = core_option_pages(cfg.kernelcore, totalpages)
    movablecore = core_option_pages(cfg.movablecore, totalpages)
    if movablecore:
        kernelcore = max(kernelcore, totalpages - movablecore_rounded(movablecore, totalpages))
    if not kernelcore or kernelcore >= totalpages:
        return {}
    usable_startpfn = arch_zone_pfn_limits(layout)[movable_zone][0]
    nids = sorted({n for n, _, _ in ranges})
    zone_movable_pfn = dict.fromkeys(nids, 0)
    _spread_kernelcore(ranges, nids, zone_movable_pfn, kernelcore, usable_startpfn)
    out = {}
    for nid in nids:                                    # out2: align, drop if past the node
        start = -(-zone_movable_pfn[nid] // MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES
        if start < max(e for n, _, e in ranges if n == nid):
            out[nid] = start
    return out


def _spread_kernelcore(ranges: list[tuple[int, int, int]], nids: list[int], zmp: dict[int, int],
                       required: int, usable_startpfn: int) -> None:
    """The restart loop of find_zone_movable_pfns_for_nodes(): kernelcore per node.

    zmp ({nid: pfn}) ends holding, per node, the first pfn above its share
    of kernelcore.  A pass that leaves kernelcore unplaced (a node ran out
    of pages) is repeated with one node fewer in the division.
    """
    usable_nodes = len(nids)
    while True:
        node_share = required // usable_nodes
        for nid in nids:
            if required < node_share:
                node_share = required // usable_nodes
            remaining = node_share
            for n, start, end in ranges:
                if n != nid:
                    continue
                start = max(start, zmp[nid])
                if start >= end:
                    continue
                if start < usable_startpfn:             # only usable for kernelcore
                    kernel_pages = min(end, usable_startpfn) - start
                    remaining -= min(kernel_pages, remaining)
                    required -= min(kernel_pages, required)
                    if end <= usable_startpfn:
                        zmp[nid] = end                  # never accounted twice
                        continue
                    start = usable_startpfn
                size = min(end - start, remaining)
                zmp[nid] = start + size
                required -= min(required, size)
                remaining -= size
                if not remaining:
                    break
        usable_nodes -= 1
        if not (usable_nodes and required > usable_nodes):
            return


def adjust_zone_range_for_zone_movable(zid: int, zone_movable_pfn: int, node_end_pfn: int,
                                       movable_end: int, start: int, end: int) -> tuple[int, int]:
    """adjust_zone_range_for_zone_movable(): one zone's (start, end) on a node with ZONE_MOVABLE.

    ZONE_MOVABLE runs from zone_movable_pfn to the node's end (at most the
    end of movable_zone); a zone that ZONE_MOVABLE starts inside ends there;
    a zone wholly above it is left empty.
    """
    if zid == ZONE_MOVABLE:
        return zone_movable_pfn, min(node_end_pfn, movable_end)
    if start < zone_movable_pfn < end:
        return start, zone_movable_pfn
    if start >= zone_movable_pfn:
        return end, end
    return start, end


def _zone_spans(layout: Layout, movable: dict[int, int], movable_zone: int) -> dict[tuple[int,
                int], tuple[int, int]]:
    """Each (nid, zid): (start_pfn, end_pfn), as zone_spanned_pages_in_node() gives them."""
    spans = {}
    movable_end = arch_zone_pfn_limits(layout)[movable_zone][1]
    for z in layout.zones:
        start, end = z.start_pfn, z.end_pfn
        if movable.get(z.nid):
            node_end = max(e for n, _, e in layout.memory if n == z.nid)
            start, end = adjust_zone_range_for_zone_movable(
                z.zid, movable[z.nid], node_end, movable_end, start, end)
        if end <= start:
            start = end = 0
        spans[(z.nid, z.zid)] = (start, end)
    return spans


# -- free_area_init -----------------------------------------------------------------

def _make_zone(mm: MmState, pgdat: PglistData, zid: int, start: int, end: int) -> Zone:
    """zone_init_internals(): a Zone over [start, end) with its present ranges."""
    nid = pgdat.node_id
    present = [(max(s, start), min(e, end)) for n, s, e in mm.layout.memory
               if n == nid and s < end and e > start]
    zone = Zone(node=nid, zone_idx=zid, zone_start_pfn=start, spanned_pages=end - start,
                present_pages=sum(e - s for s, e in present), present_ranges=present,
                zone_pgdat=pgdat, zone_id=(zid << (ZONES_PGSHIFT - NODES_PGSHIFT)) | nid,
                is_highmem=is_highmem_idx(zid, mm.movable_is_highmem))
    zone.per_cpu_pageset.zone = zone
    return zone


def _build_nodes(mm: MmState, spans: dict[tuple[int, int], tuple[int, int]]) -> None:
    """free_area_init_node() for every node: pg_data_t and its four zones."""
    nids = sorted({n for n, _, _ in mm.layout.memory})
    mm.node_data = [None] * (max(nids) + 1)
    for node_cfg in mm.cfg.nodes:
        if node_cfg.nid not in nids:
            continue
        pgdat = PglistData(node_id=node_cfg.nid, distance=list(node_cfg.distance or []),
                           has_cpu=node_cfg.nid == nids[0])
        for zid in range(MAX_NR_ZONES):
            zone = _make_zone(mm, pgdat, zid, *spans[(pgdat.node_id, zid)])
            pgdat.node_zones.append(zone)
            mm.zones.append(zone)
            mm.zone_by_id[zone.zone_id] = zone
        ranges = [(s, e) for n, s, e in mm.layout.memory if n == pgdat.node_id]
        pgdat.node_start_pfn = min(s for s, _ in ranges)
        pgdat.node_spanned_pages = max(e for _, e in ranges) - pgdat.node_start_pfn
        pgdat.node_present_pages = sum(z.present_pages for z in pgdat.node_zones)
        mm.node_data[pgdat.node_id] = pgdat
    mm.numa_node_id = nids[0]


def memmap_init(mm: MmState) -> None:
    """memmap_init(): every struct page of mem_map: PG_reserved, _refcount 1, its zone.

    Pages in no zone's span (page 0, holes between nodes) take the zone of
    the span before them, or of the first one (init_unavailable_range()),
    and each hole in a populated zone is reported as 6.1 reports it ("On
    node 0, zone DMA: 97 pages in unavailable ranges"), the last one up to
    the end of RAM as far as mem_map reaches.
    """
    runs = sorted((z.zone_start_pfn, z.zone_end_pfn, z.zone_idx, z.node)
                  for z in mm.zones if z.spanned_pages)
    pos = 0
    for i, (start, end, zid, nid) in enumerate(runs):
        gap_zone = runs[i - 1][2:] if i else (zid, nid)
        _fill_pages(mm, pos, min(start, mm.max_pfn), struct_page_template(*gap_zone, True))
        _fill_pages(mm, max(start, pos), min(end, mm.max_pfn), struct_page_template(zid, nid, True))
        pos = max(pos, end)
    if runs:
        _fill_pages(mm, pos, mm.max_pfn, struct_page_template(*runs[-1][2:], True))
    mark_pageblocks_movable(mm)
    for nid, zid, count in unavailable_ranges(mm):
        mm.log.printk(f"On node {nid}, zone {ZONE_NAMES[zid]}: {count} pages in unavailable "
                      f"ranges")


def mark_pageblocks_movable(mm: MmState) -> None:
    """memmap_init_range()'s set_pageblock_migratetype(page, MIGRATE_MOVABLE)
    for every pageblock-aligned pfn it initialises: memblock's RAM ranges
    clipped to each populated zone.  A pageblock whose first pfn lies in a
    hole or in another zone keeps the bitmap's 0, MIGRATE_UNMOVABLE (the
    first pageblock of ZONE_DMA, which starts at pfn 1; the head of a zone
    that starts inside a pageblock)."""
    step = 1 << mm.pageblock_order
    ranges = mm.layout.memblock if mm.layout.memblock is not None else mm.layout.memory
    for nid, start, end in ranges:
        pgdat = mm.node_data[nid] if nid < len(mm.node_data) else None
        for zone in pgdat.node_zones if pgdat is not None else ():
            if not zone.present_pages:
                continue
            s = min(max(start, zone.zone_start_pfn), zone.zone_end_pfn)
            e = min(max(end, zone.zone_start_pfn), zone.zone_end_pfn)
            for pfn in range(-(-s // step) * step, e, step):
                set_pageblock_migratetype(mm, zone, pfn, MIGRATE_MOVABLE)


def unavailable_ranges(mm: MmState) -> list[tuple[int, int, int]]:
    """[(nid, zid, pages)] the holes memmap_init() reports, in its order.

    Walks memblock's RAM ranges (layout.memblock: all of RAM, even above a
    lowered max_pfn) zone by zone: the hole before each piece belongs to
    the piece's zone; the hole after the last piece, to the end of the
    last range, belongs to the last populated zone, as far as pfn_valid().
    """
    out, hole, last = [], 0, None
    zones = [z for z in mm.zones if z.present_pages]
    ranges = mm.layout.memblock if mm.layout.memblock is not None else mm.layout.memory
    for _, start, end in ranges:
        for zone in zones:
            s = min(max(start, zone.zone_start_pfn), zone.zone_end_pfn)
            e = min(max(end, zone.zone_start_pfn), zone.zone_end_pfn)
            if s >= e:
                continue
            if hole < s:
                out.append((zone.node, zone.zone_idx, s - hole))
            hole, last = e, zone
    end = max(e for _, _, e in ranges)
    limit = mm.memmap.pfn_limit if mm.memmap.pfn_limit is not None else mm.max_pfn
    if last is not None and hole < min(end, limit):
        out.append((last.node, last.zone_idx, min(end, limit) - hole))
    return out


def free_area_init(cfg: MachineConfig, layout: Layout, physmem: PhysMem, mb: Memblock,
                   log: KernelLog, reporter: Optional[Reporter] = None) -> MmState:
    """free_area_init(): the MmState with its nodes, zones and initialised mem_map.

    Models mm/page_alloc.c:free_area_init(): ZONE_MOVABLE carved out per
    kernelcore=/movablecore=, the Zone ranges lines, mem_map and each
    zone's pageblock bitmap taken from memblock, a pg_data_t per node with
    all four zones, every struct page reserved (memblock still owns all of
    RAM) with the holes reported and every pageblock MIGRATE_MOVABLE,
    then the zonelists (build_all_zonelists(),
    which the kernel runs a little later; start_kernel prints its line).
    """
    movable_zone = find_usable_zone_for_movable(arch_zone_pfn_limits(layout))
    movable_start = find_zone_movable_pfns_for_nodes(cfg, layout, movable_zone)
    for line in zone_range_lines(layout, movable_start):
        log.printk(line)
    spans = _zone_spans(layout, movable_start, movable_zone)
    memmap = memmap_alloc(mb, layout, spans)
    mm = MmState(cfg, layout, physmem, memmap, log, reporter)
    mm.movable_zone, mm.movable_start = movable_zone, movable_start
    mm.movable_is_highmem = movable_zone == ZONE_HIGHMEM
    flavour = layout.flavour if layout.flavour is not None else FLAVOUR_686
    mm.pageblock_order = pageblock_order_for(flavour.hpage_pmd_order)
    _build_nodes(mm, spans)
    for zone in mm.zones:
        setup_usemap(mm, mb, zone)
    memmap_init(mm)
    build_all_zonelists(mm.node_data)
    mm.fast_paths_changed()
    return mm


def zone_range_lines(layout: Layout, movable_start: Optional[dict[int, int]] = None) -> list[str]:
    """free_area_init()'s Zone ranges / Movable zone start / Early memory node ranges.

    The node ranges and "Initmem setup" print memblock's RAM, all of it,
    even where highmem= lowered max_pfn (highmem_pfn_init() leaves memblock
    alone); the zones stop at max_pfn.
    """
    lowest = min(s for _, s, _ in layout.memory)
    limits = [min(layout.dma_pfn, layout.max_low_pfn), layout.max_low_pfn, layout.max_pfn]
    lines = ["Zone ranges:"]
    start = lowest
    for zid, hi in enumerate(limits):
        end = max(hi, start)
        if end == start:
            lines.append(f"  {ZONE_NAMES[zid]:<8} empty")
        else:
            lines.append(f"  {ZONE_NAMES[zid]:<8} [mem {start << PAGE_SHIFT:#018x}-"
                         f"{(end << PAGE_SHIFT) - 1:#018x}]")
        start = end
    lines.append("Movable zone start for each node")
    for nid, pfn in sorted((movable_start or {}).items()):
        if pfn:
            lines.append(f"  Node {nid}: {pfn << PAGE_SHIFT:#018x}")
    lines.append("Early memory node ranges")
    memblock = layout.memblock if layout.memblock is not None else layout.memory
    for nid, s, e in memblock:
        lines.append(f"  node {nid:3d}: [mem {s << PAGE_SHIFT:#018x}-{(e << PAGE_SHIFT) - 1:#018x}]")
    for nid in sorted({n for n, _, _ in memblock}):
        spans = [(s, e) for n, s, e in memblock if n == nid]
        lines.append(f"Initmem setup node {nid} [mem {min(s for s, _ in spans) << PAGE_SHIFT:#018x}-"
                     f"{(max(e for _, e in spans) << PAGE_SHIFT) - 1:#018x}]")
    return lines


def memmap_alloc(mb: Memblock, layout: Layout, spans: dict[tuple[int, int], tuple[int,
                 int]]) -> MemMap:
    """alloc_node_mem_map() for FLATMEM: mem_map from memblock.

    Models mm/page_alloc.c:alloc_node_mem_map(): one struct page for every
    pfn from the node's start rounded down to MAX_ORDER_NR_PAGES to its end
    rounded up, the node's end being its zones' (max_pfn when highmem=
    lowered it), taken with memblock_alloc_try_nid_raw() below lowmem's
    end.  Differs: one mem_map for all nodes (FLATMEM), and mmemu keeps
    MemMap.nr_pages at max_pfn (the struct pages past it are never used).
    """
    end = max(e for s, e in spans.values() if e > s)
    aligned = -(-end // MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES
    size = aligned * STRUCT_PAGE_SIZE
    phys = mb.alloc_try_nid(size, nid=0, caller="memmap_alloc", name="mem_map", raw=True)
    memmap = MemMap(phys, layout.max_pfn)
    memmap.pfn_limit = aligned                  # pfn_valid(): what mem_map covers
    return memmap


def setup_usemap(mm: MmState, mb: Memblock, zone: Zone) -> None:
    """setup_usemap(): a zone's pageblock bitmap from memblock (none for an empty
    zone), every pageblock MIGRATE_UNMOVABLE (0) until memmap_init() marks it."""
    zone.per_cpu_pageset.thp_order = mm.pageblock_order
    if not zone.spanned_pages:
        return
    size = usemap_size(zone.zone_start_pfn, zone.spanned_pages, mm.pageblock_order)
    if size:
        phys = mb.alloc_try_nid(size, nid=zone.node, caller="setup_usemap",
                                name=f"pageblock flags ({zone.name})")
        init_pageblock_flags(mm, zone, phys, mm.pageblock_order)


def calc_memmap_size(spanned_pages: int) -> int:
    """calc_memmap_size(): the pages a zone's struct pages take (FLATMEM: spanned)."""
    return -(-spanned_pages * STRUCT_PAGE_SIZE // 4096)


def managed_estimates(mm: MmState) -> tuple[dict[Zone, int], int, int]:
    """free_area_init_core()'s estimates: ({zone: managed before memblock frees},
    nr_kernel_pages, nr_all_pages).

    Lowmem zones lose their mem_map's pages, highmem zones do not (their
    mem_map lies in lowmem, charged to nr_kernel_pages instead).
    """
    est, nr_kernel, nr_all = {}, 0, 0
    for zone in mm.zones:
        freesize = zone.present_pages
        memmap_pages = calc_memmap_size(zone.spanned_pages)
        if not zone.is_highmem:
            if freesize >= memmap_pages:
                freesize -= memmap_pages
            nr_kernel += freesize
        elif nr_kernel > memmap_pages * 2:
            nr_kernel -= memmap_pages
        nr_all += freesize
        est[zone] = freesize
    return est, nr_kernel, nr_all


# -- memblock_free_all ------------------------------------------------------------------

def _buddy_blocks(start: int, end: int) -> Iterator[tuple[int, int]]:
    """__free_pages_memory()'s blocks of [start, end): (pfn, order), in address
    order, each as large as its alignment and the end allow (MAX_ORDER-1 at most)."""
    pfn = start
    while pfn < end:
        order = min(MAX_ORDER - 1, (pfn & -pfn).bit_length() - 1 if pfn else MAX_ORDER - 1)
        while pfn + (1 << order) > end:
            order -= 1
        yield pfn, order
        pfn += 1 << order


def _free_pages_memory(mm: MmState, zone: Zone, start: int, end: int) -> None:
    """__free_pages_memory() for one zone's lowmem run: __free_pages_core() of
    order-aligned blocks of up to MAX_ORDER-1.

    The whole run is first given the free template (__free_pages_core()
    clears PG_reserved and the reference of every page), then each block
    goes to the tail of its pageblock's migratetype's list (FPI_TO_TAIL), so
    the lowest blocks are handed out first.
    """
    _fill_pages(mm, start, end, struct_page_template(zone.zone_idx, zone.node, False))
    set_fast_free(mm, zone, start, end)
    zone.managed_pages += end - start
    for pfn, order in _buddy_blocks(start, end):
        _free_one_page(mm, zone, pfn, order, get_pfnblock_migratetype(zone, pfn), to_tail=True)


def _free_highmem_pages(mm: MmState, zone: Zone, start: int, end: int) -> None:
    """add_highpages_with_active_regions() for one HighMem run: free_highmem_page()
    of every page, in address order.

    Each page goes through __free_page() with the boot pageset (high 0),
    so straight on to __free_one_page(), merging with the pages before it,
    not to the tail.  Differs: the run is freed as its buddy blocks in
    address order, each to the head or tail as buddy_merge_likely() says,
    which leaves the same blocks on the same lists in the same order (a
    block's place is decided when its last page comes, and only the blocks
    before it are free then); page->index is the migratetype each page's
    free cached.
    """
    common = get_pfnblock_migratetype(zone, start)
    _fill_pages(mm, start, end, struct_page_template(zone.zone_idx, zone.node, False, common))
    set_fast_free(mm, zone, start, end)
    _cache_migratetypes(mm, zone, start, end, common)
    zone.managed_pages += end - start
    for pfn, order in _buddy_blocks(start, end):
        _free_one_page(mm, zone, pfn, order, get_pfnblock_migratetype(zone, pfn))


def _cache_migratetypes(mm: MmState, zone: Zone, start: int, end: int, common: int) -> None:
    """page->index of [start, end): each page's pageblock migratetype, where
    it is not common (which the pages' template already wrote)."""
    order = zone.pageblock_flags.order
    pfn = start
    while pfn < end:
        stop = min((pfn | ((1 << order) - 1)) + 1, end)
        mt = get_pfnblock_migratetype(zone, pfn)
        if mt != common:
            mm.page_index[pfn:stop] = array("I", [mt]) * (stop - pfn)
        pfn = stop


def _free_runs(mm: MmState, mb: Memblock) -> Iterator[tuple[Zone, int, int]]:
    """The free memblock ranges as whole pages, cut at zone boundaries: (zone, start, end)."""
    for nid, start, end in mb.free_ranges():
        s, e = pfn_up(start), min(pfn_down(end), mm.max_pfn)
        pgdat = mm.node_data[nid] if nid < len(mm.node_data) else None
        for zone in pgdat.node_zones if pgdat is not None else ():      # online nodes only
            a, b = max(s, zone.zone_start_pfn), min(e, zone.zone_end_pfn)
            if a < b:
                yield zone, a, b


def memblock_free_all(mm: MmState, mb: Memblock) -> None:
    """mem_init(): set_highmem_pages_init() then memblock_free_all(): every page
    memblock does not hold goes to the buddy lists.

    Models arch/x86/mm/highmem_32.c:set_highmem_pages_init() (HighMem, page
    by page, after "Initializing HighMem for node 0 (...)" for every highmem
    zone, empty or not) and mm/memblock.c:memblock_free_all() (lowmem, in
    blocks).  A page a reservation touches at all stays reserved.  The
    watermarks come later (init_per_zone_wmark_min(), an initcall).
    """
    for zone in mm.zones:
        if zone.is_highmem:
            mm.log.printk(f"Initializing {zone.name} for node {zone.node} "
                          f"({zone.zone_start_pfn:08x}:{zone.zone_end_pfn:08x})")
    for zone, start, end in _free_runs(mm, mb):
        if zone.is_highmem:
            _free_highmem_pages(mm, zone, start, end)
        else:
            _free_pages_memory(mm, zone, start, end)
    mm.fast_paths_changed()


def setup_per_cpu_pageset(mm: MmState) -> None:
    """setup_per_cpu_pageset(): the populated zones leave the boot pageset
    (high 0, batch 1): batch from the zone's size, high 4 batches (no
    watermarks yet)."""
    for zone in mm.zones:
        if zone.populated:
            pcp.zone_pcp_update(mm, zone)
    mm.fast_paths_changed()


def free_reserved_area(mm: MmState, start: int, end: int, what: str) -> int:
    """free_reserved_area(): give reserved pages [start, end) (bytes) back, and say so.

    Models mm/page_alloc.c:free_reserved_area() for the boot's late frees
    (the SMP alternatives, the initrd, the init sections):
    free_reserved_page() of each page: it leaves PG_reserved, gets a
    reference, is managed from then on and is freed with __free_page(),
    onto the per-cpu list of its pageblock's migratetype.  Differs: the
    pages are not poisoned.  Returns the pages freed.
    """
    first, last = pfn_up(start), pfn_down(end)
    for zone in mm.zones:
        a, b = max(first, zone.zone_start_pfn), min(last, zone.zone_end_pfn)
        if a < b and zone.present_pages:
            for pfn in range(a, b):
                free_reserved_page(mm, zone, pfn)
    pages = max(last - first, 0)
    mm.log.printk(f"Freeing {what} memory: {pages << 2}K")
    mm.fast_paths_changed()
    return pages


def free_reserved_page(mm: MmState, zone: Zone, pfn: int) -> None:
    """free_reserved_page(): ClearPageReserved(), init_page_count(), __free_page(),
    adjust_managed_page_count()."""
    w = mm.memmap.page_word(pfn)
    mm.u32[w] &= ~(1 << PG_reserved)
    mm.refcounts[pfn] = 1
    _free_pages(mm, pfn, 0)
    zone.managed_pages += 1


def init_per_zone_wmark_min(mm: MmState) -> None:
    """init_per_zone_wmark_min(): min_free_kbytes (unless the config set it),
    watermarks, pcp limits, vmstat thresholds, lowmem reserves."""
    if mm.user_min_free_kbytes is None:
        calculate_min_free_kbytes(mm)
    else:
        mm.min_free_kbytes = mm.user_min_free_kbytes
    _setup_per_zone_wmarks(mm)
    for zone in mm.zones:
        pcp.zone_pcp_update(mm, zone)
        zone.stat_threshold = calculate_normal_threshold(zone) if zone.populated else 0
    setup_per_zone_lowmem_reserve(mm)
    mm.fast_paths_changed()

