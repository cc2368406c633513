"""The Mem-Info block and the allocation-failure report.

Models lib/show_mem.c:__show_mem(), mm/page_alloc.c:__show_free_areas() and
warn_alloc() of Linux 6.1: the lines a failed allocation leaves in dmesg.
Counters mmemu does not model (LRU lists, page cache, dirty pages) print as
0.  As in the kernel, "Node N " prefixes the per-zone lines only when the
build is NUMA (mmemu: more than one node; Debian's 686 kernel is not NUMA).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmemu.mm.gfp import __GFP_NOWARN, format_gfp, gfp_zone
from mmemu.mm.mmzone import MAX_ORDER, Zone, online_pgdats

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState


def K(pages: int) -> int:
    """K(x): pages to kB."""
    return pages << 2


def _show_node(mm: MmState, zone: Zone) -> str:
    return f"Node {zone.node} " if len(mm.node_data) > 1 else ""


def _zone_line(mm: MmState, zone: Zone) -> str:
    free_pcp = zone.per_cpu_pageset.count
    return (f"{_show_node(mm, zone)}{zone.name} free:{K(zone.nr_free_pages)}kB "
            f"boost:{K(zone.watermark_boost)}kB min:{K(zone.min_wmark_pages())}kB "
            f"low:{K(zone.low_wmark_pages())}kB high:{K(zone.high_wmark_pages())}kB "
            f"reserved_highatomic:{K(zone.nr_reserved_highatomic)}KB "
            f"active_anon:0kB inactive_anon:0kB active_file:0kB "
            f"inactive_file:0kB unevictable:0kB writepending:0kB "
            f"present:{K(zone.present_pages)}kB managed:{K(zone.managed_pages)}kB "
            f"mlocked:0kB bounce:0kB free_pcp:{K(free_pcp)}kB local_pcp:{K(free_pcp)}kB "
            f"free_cma:0kB")


MIGRATION_TYPE_LETTERS = "UMEHI"      # show_migration_types(): no CMA in a 686 build


def _free_area_line(mm: MmState, zone: Zone) -> str:
    """A zone's free blocks per order, each followed by the letters of the
    migratetypes whose lists hold some (show_migration_types())."""
    parts: list[str] = []
    total = 0
    for order in range(MAX_ORDER):
        area = zone.free_area[order]
        nr = area.nr_free
        total += nr << order
        types = "".join(MIGRATION_TYPE_LETTERS[mt] for mt, head in enumerate(area.free_list)
                        if head.first >= 0)
        parts.append(f"{nr}*{K(1) << order}kB " + (f"({types}) " if nr else ""))
    return f"{_show_node(mm, zone)}{zone.name}: " + "".join(parts) + f"= {K(total)}kB"


def show_free_areas(mm: MmState, max_zone_idx: int = 3) -> list[str]:
    """__show_free_areas(): global counters, then per zone its marks and free blocks."""
    zones = [z for z in mm.zones if z.populated and z.zone_idx <= max_zone_idx]
    free_pcp = sum(z.per_cpu_pageset.count for z in zones)
    nr_free = sum(z.nr_free_pages for z in mm.zones)
    lines = ["active_anon:0 inactive_anon:0 isolated_anon:0",
             " active_file:0 inactive_file:0 isolated_file:0",
             " unevictable:0 dirty:0 writeback:0",
             " slab_reclaimable:0 slab_unreclaimable:0",
             f" mapped:0 shmem:0 pagetables:{mm.nr_page_table_pages}",
             " sec_pagetables:0 bounce:0",
             " kernel_misc_reclaimable:0",
             f" free:{nr_free} free_pcp:{free_pcp} free_cma:0"]
    for pgdat in online_pgdats(mm.node_data):
        if not any(z.managed_pages for z in pgdat.node_zones[:max_zone_idx + 1]):
            continue
        lines.append(f"Node {pgdat.node_id} active_anon:0kB inactive_anon:0kB active_file:0kB "
                     "inactive_file:0kB unevictable:0kB isolated(anon):0kB "
                     "isolated(file):0kB mapped:0kB dirty:0kB writeback:0kB shmem:0kB "
                     "shmem_thp: 0kB shmem_pmdmapped: 0kB anon_thp: 0kB writeback_tmp:0kB "
                     f"kernel_stack:0kB pagetables:{K(mm.nr_page_table_pages)}kB "
                     "sec_pagetables:0kB all_unreclaimable? no")
    for zone in zones:
        lines.append(_zone_line(mm, zone))
        lines.append("lowmem_reserve[]: " + " ".join(str(r) for r in zone.lowmem_reserve))
    lines += [_free_area_line(mm, zone) for zone in zones]
    lines.append("0 total pagecache pages")
    return lines


def show_mem(mm: MmState, max_zone_idx: int = 3) -> list[str]:
    """__show_mem(): "Mem-Info:", the free areas, and the RAM/reserved totals."""
    lines = ["Mem-Info:"] + show_free_areas(mm, max_zone_idx)
    zones = [z for z in mm.zones if z.populated]
    total = sum(z.present_pages for z in zones)
    reserved = sum(z.present_pages - z.managed_pages for z in zones)
    highmem = sum(z.present_pages for z in zones if z.is_highmem)
    lines += [f"{total} pages RAM", f"{highmem} pages HighMem/MovableOnly",
              f"{reserved} pages reserved"]
    return lines


def warn_alloc(mm: MmState, gfp: int, order: int) -> None:
    """warn_alloc(): "<comm>: page allocation failure: order:N, mode:...", stack, Mem-Info.

    Models mm/page_alloc.c:warn_alloc() (no rate limit): nothing under
    __GFP_NOWARN; the mode prints as %#x(%pGg); the cpuset part is that of
    a task in the root cpuset.  Not a WARN: no taint, no panic_on_warn.
    """
    if gfp & __GFP_NOWARN:
        return
    rep = mm.reporter
    mems = "0" if len(mm.node_data) == 1 else f"0-{len(mm.node_data) - 1}"
    lines = [f"{rep.comm}: page allocation failure: order:{order}, "
             f"mode:{gfp:#x}({format_gfp(gfp)}), nodemask=(null),cpuset=/,mems_allowed={mems}"]
    lines += rep.dump_stack()
    lines += show_mem(mm, gfp_zone(gfp))
    rep.info("\n".join(lines))
