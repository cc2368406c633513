"""/proc/buddyinfo, /proc/pagetypeinfo, /proc/zoneinfo and /proc/meminfo, in
Linux 6.1's formats.

Models mm/vmstat.c (frag_show_print, pagetypeinfo_show, zoneinfo_show_print) and
fs/proc/meminfo.c (meminfo_proc_show) for a Debian 686 build (HIGHMEM,
zswap, THP, hugetlbfs; not NUMA unless the machine has several nodes).
Counters mmemu does not model (LRU lists, page cache, swap) print as 0;
later subsystems pass theirs to meminfo() through ``extra``.

Each view takes the page allocator's state ``mm`` (a Machine works too:
its ``.mm`` is used) and only reads it.
"""
from mmemu.layout import PAGE_SHIFT
from mmemu.mm.mmzone import MAX_ORDER, MIGRATE_TYPES, MIGRATETYPE_NAMES
from mmemu.mm.page_alloc import nr_free_highpages, nr_free_pages, totalhigh_pages, totalram_pages

# enum node_stat_item / zone_stat_item names of a 6.1 686 build (mm/vmstat.c).
NODE_STAT_ITEMS = (
    "nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file",
    "nr_unevictable", "nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_isolated_anon",
    "nr_isolated_file", "workingset_nodes", "workingset_refault_anon",
    "workingset_refault_file", "workingset_activate_anon", "workingset_activate_file",
    "workingset_restore_anon", "workingset_restore_file", "workingset_nodereclaim",
    "nr_anon_pages", "nr_mapped", "nr_file_pages", "nr_dirty", "nr_writeback",
    "nr_writeback_temp", "nr_shmem", "nr_shmem_hugepages", "nr_shmem_pmdmapped",
    "nr_file_hugepages", "nr_file_pmdmapped", "nr_anon_transparent_hugepages",
    "nr_vmscan_write", "nr_vmscan_immediate_reclaim", "nr_dirtied", "nr_written",
    "nr_throttled_written", "nr_kernel_misc_reclaimable", "nr_foll_pin_acquired",
    "nr_foll_pin_released", "nr_kernel_stack", "nr_page_table_pages",
    "nr_sec_page_table_pages", "nr_swapcached")
ZONE_STAT_ITEMS = (
    "nr_free_pages", "nr_zone_inactive_anon", "nr_zone_active_anon",
    "nr_zone_inactive_file", "nr_zone_active_file", "nr_zone_unevictable",
    "nr_zone_write_pending", "nr_mlock", "nr_bounce", "nr_zspages", "nr_free_cma")
NUMA_STAT_ITEMS = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave",
                   "numa_local", "numa_other")
HPAGE_KB = 4096                         # a non-PAE huge page is 4 MiB (2 MiB with PAE)


def _online_pgdats(mm):
    return [p for p in mm.node_data if p is not None]


def buddyinfo(mm):
    """/proc/buddyinfo: free blocks per order, populated zones only.

    >>> print(buddyinfo(mm), end="")
    Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      2 
    """
    out = []
    for pgdat in _online_pgdats(mm):
        for zone in pgdat.node_zones:
            if not zone.populated:
                continue
            counts = "".join(f"{zone.free_area[o].nr_free:6d} " for o in range(MAX_ORDER))
            out.append(f"Node {pgdat.node_id}, zone {zone.name:>8s} {counts}\n")
    return "".join(out)


def pagetypeinfo(mm):
    """/proc/pagetypeinfo: free blocks per migratetype and order, and pageblocks
    per migratetype, for every node with memory.

    Models mm/vmstat.c:pagetypeinfo_show(): "Page block order" and "Pages
    per block", the free lists' lengths (walked, capped at 100000 as the
    kernel caps them: ">100000"), then each zone's pageblocks counted from
    its zone_start_pfn in steps of a pageblock.  No "Number of mixed
    blocks" (CONFIG_PAGE_OWNER is not booted on).
    """
    out = []
    for pgdat in _online_pgdats(mm):
        zones = [z for z in pgdat.node_zones if z.populated]
        if not zones:
            continue
        out.append(f"Page block order: {mm.pageblock_order}\n"
                   f"Pages per block:  {1 << mm.pageblock_order}\n\n")
        out.append(f"{'Free pages count per migrate type at order':<43s} "
                   + "".join(f"{o:6d} " for o in range(MAX_ORDER)) + "\n")
        for zone in zones:
            for mt in range(MIGRATE_TYPES):
                counts = "".join(_free_count(mm, zone.free_area[o].free_list[mt])
                                 for o in range(MAX_ORDER))
                out.append(f"Node {pgdat.node_id:4d}, zone {zone.name:>8s}, type "
                           f"{MIGRATETYPE_NAMES[mt]:>12s} {counts}\n")
        out.append(f"\n{'Number of blocks type ':<23s}"
                   + "".join(f"{name:>12s} " for name in MIGRATETYPE_NAMES) + "\n")
        for zone in zones:
            counts = _pageblock_counts(zone)
            out.append(f"Node {pgdat.node_id}, zone {zone.name:>8s} "
                       + "".join(f"{n:12d} " for n in counts) + "\n")
    return "".join(out)


PAGETYPEINFO_WALK_CAP = 100000


def _free_count(mm, head):
    """pagetypeinfo_showfree_print()'s count of one list, walked in guest memory.

    Differs: a link the guest broke (not a struct page of mem_map) ends the
    walk where the kernel would follow it wherever it points.
    """
    from mmemu.mm.mmzone import PAGE_WORDS, STRUCT_PAGE_SIZE, W_NEXT
    n, pfn, u32, base = 0, head.first, mm.u32, mm.mbase
    while 0 <= pfn < mm.max_pfn:
        n += 1
        if n >= PAGETYPEINFO_WALK_CAP:
            return f">{n:6d} "
        nxt = u32[base + (pfn * PAGE_WORDS) + W_NEXT]
        off = nxt - mm.mvirt
        pfn = off // STRUCT_PAGE_SIZE if nxt and off % STRUCT_PAGE_SIZE == 0 else -1
    return f"{n:6d} "


def _pageblock_counts(zone):
    """pagetypeinfo_showblockcount_print(): the zone's pageblocks per migratetype."""
    from mmemu.mm.pageblock import get_pfnblock_migratetype
    counts = [0] * MIGRATE_TYPES
    step = 1 << zone.pageblock_flags.order
    for pfn in range(zone.zone_start_pfn, zone.zone_end_pfn, step):
        mt = get_pfnblock_migratetype(zone, pfn)
        if mt < MIGRATE_TYPES:
            counts[mt] += 1
    return counts


def _node_stats(mm, pgdat, slab_pages):
    values = dict.fromkeys(NODE_STAT_ITEMS, 0)
    values["nr_page_table_pages"] = mm.nr_page_table_pages if pgdat.node_id == mm.numa_node_id else 0
    values["nr_slab_reclaimable"], values["nr_slab_unreclaimable"] = slab_pages
    return "".join(f"\n      {name:<12s} {values[name]}" for name in NODE_STAT_ITEMS)


def _zone_block(mm, zone):
    """The populated zone's counters, pageset and start_pfn lines of zoneinfo."""
    out = [f"\n      {'nr_free_pages':<12s} {zone.nr_free_pages}"]
    out += [f"\n      {name:<12s} 0" for name in ZONE_STAT_ITEMS[1:]]
    if len(_online_pgdats(mm)) > 1:
        out += [f"\n      {name:<12s} 0" for name in NUMA_STAT_ITEMS]
    pcp = zone.per_cpu_pageset
    out.append("\n  pagesets"
               "\n    cpu: 0"
               f"\n              count: {pcp.count}"
               f"\n              high:  {pcp.high}"
               f"\n              batch: {pcp.batch}"
               f"\n  vm stats threshold: {zone.stat_threshold}")
    out.append(f"\n  node_unreclaimable:  0\n  start_pfn:           {zone.zone_start_pfn}")
    return "".join(out)


def zoneinfo_show_print(mm, pgdat, zone, slab_pages=(0, 0)):
    """One zone of /proc/zoneinfo (mm/vmstat.c:zoneinfo_show_print())."""
    out = [f"Node {pgdat.node_id}, zone {zone.name:>8s}"]
    first = next((z for z in pgdat.node_zones if z.populated), None)
    if zone is first:
        out.append("\n  per-node stats" + _node_stats(mm, pgdat, slab_pages))
    out.append(f"\n  pages free     {zone.nr_free_pages}"
               f"\n        boost    {zone.watermark_boost}"
               f"\n        min      {zone.min_wmark_pages()}"
               f"\n        low      {zone.low_wmark_pages()}"
               f"\n        high     {zone.high_wmark_pages()}"
               f"\n        spanned  {zone.spanned_pages}"
               f"\n        present  {zone.present_pages}"
               f"\n        managed  {zone.managed_pages}"
               f"\n        cma      0"
               f"\n        protection: ({', '.join(str(r) for r in zone.lowmem_reserve)})")
    if zone.populated:
        out.append(_zone_block(mm, zone))
    out.append("\n")
    return "".join(out)


def zoneinfo(mm, extra=None):
    """/proc/zoneinfo: every zone of every node, populated or not.

    ``extra`` may give "SReclaimable"/"SUnreclaim" in kB for the per-node
    slab counters, as meminfo() takes them.
    """
    extra = extra or {}
    slab = (extra.get("SReclaimable", 0) >> 2, extra.get("SUnreclaim", 0) >> 2)
    return "".join(zoneinfo_show_print(mm, pgdat, zone, slab)
                   for pgdat in _online_pgdats(mm) for zone in pgdat.node_zones)


def si_mem_available(mm, sreclaimable_pages=0):
    """si_mem_available(): free pages above the reserves plus what could be reclaimed."""
    wmark_low = sum(z.low_wmark_pages() for z in mm.zones)
    available = nr_free_pages(mm) - mm.totalreserve_pages
    available += sreclaimable_pages - min(sreclaimable_pages // 2, wmark_low)
    return max(available, 0)


def _kb(label, kbytes):
    """show_val_kb(): a 16-column label, the value in 8 columns, " kB"."""
    return f"{label:<16s}{kbytes:>8d} kB\n"


def _hpage_kb(mm):
    flavour = mm.layout.flavour
    return flavour.hpage_size >> 10 if flavour is not None else HPAGE_KB


def meminfo(mm, extra=None):
    """/proc/meminfo as 6.1's meminfo_proc_show() prints it.

    ``extra`` supplies kB values other subsystems own: "SReclaimable",
    "SUnreclaim" (Slab is their sum), "VmallocUsed", "VmallocChunk",
    "Percpu", "KernelStack", "Committed_AS", and "DirectMap4k"/"DirectMap4M"
    (printed only when given, as the page-table code knows them; on
    686-pae "DirectMap2M", the huge page of a PMD).  Hugepagesize is the
    flavour's PMD page: 4096 kB on 686, 2048 kB on 686-pae.
    """
    x = dict(extra or {})
    k = 1 << (PAGE_SHIFT - 10)
    total, free = totalram_pages(mm), nr_free_pages(mm)
    high_total, high_free = totalhigh_pages(mm), nr_free_highpages(mm)
    srec, sunrec = x.get("SReclaimable", 0), x.get("SUnreclaim", 0)
    vmalloc_total = (mm.layout.vmalloc_end - mm.layout.vmalloc_start) >> 10
    rows = [("MemTotal:", total * k), ("MemFree:", free * k),
            ("MemAvailable:", si_mem_available(mm, srec // k) * k)]
    rows += [(n, 0) for n in ("Buffers:", "Cached:", "SwapCached:", "Active:", "Inactive:",
                              "Active(anon):", "Inactive(anon):", "Active(file):",
                              "Inactive(file):", "Unevictable:", "Mlocked:")]
    rows += [("HighTotal:", high_total * k), ("HighFree:", high_free * k),
             ("LowTotal:", (total - high_total) * k), ("LowFree:", (free - high_free) * k)]
    rows += [(n, 0) for n in ("SwapTotal:", "SwapFree:", "Zswap:", "Zswapped:", "Dirty:",
                              "Writeback:", "AnonPages:", "Mapped:", "Shmem:")]
    rows += [("KReclaimable:", srec), ("Slab:", srec + sunrec), ("SReclaimable:", srec),
             ("SUnreclaim:", sunrec), ("KernelStack:", x.get("KernelStack", 0)),
             ("PageTables:", mm.nr_page_table_pages * k), ("SecPageTables:", 0),
             ("NFS_Unstable:", 0), ("Bounce:", 0), ("WritebackTmp:", 0),
             ("CommitLimit:", total * 50 // 100 * k),
             ("Committed_AS:", x.get("Committed_AS", 0)), ("VmallocTotal:", vmalloc_total),
             ("VmallocUsed:", x.get("VmallocUsed", 0)),
             ("VmallocChunk:", x.get("VmallocChunk", 0)), ("Percpu:", x.get("Percpu", 0))]
    text = "".join(_kb(label, value) for label, value in rows)
    text += "HardwareCorrupted:     0 kB\n"           # CONFIG_MEMORY_FAILURE: its own %5lu
    rows = [(n, 0) for n in ("AnonHugePages:", "ShmemHugePages:", "ShmemPmdMapped:",
                             "FileHugePages:", "FilePmdMapped:")]
    text += "".join(_kb(label, value) for label, value in rows)
    text += ("HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\n"
             f"HugePages_Surp:        0\nHugepagesize:   {_hpage_kb(mm):>8d} kB\n")
    text += _kb("Hugetlb:", 0)
    for key in ("DirectMap4k", "DirectMap2M", "DirectMap4M"):
        if key in x:
            text += _kb(key + ":", x[key])
    return text
