"""Transparent hugepages at boot, and the min_free_kbytes they raise.

Models mm/huge_memory.c:hugepage_init() and mm/khugepaged.c:
start_stop_khugepaged() -> set_recommended_min_free_kbytes() of Linux 6.1,
which Debian's 686 kernel runs at boot (CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS):
on a machine with at least 512 MiB of managed pages and THP enabled
(``always`` or ``madvise``), min_free_kbytes is raised so that two
pageblocks per lowmem zone, plus MIGRATE_PCPTYPES^2 more, stay free
(capped at 5% of what GFP_USER may use), and the watermarks are set again.
That subsys_initcall runs after init_per_zone_wmark_min() (postcore) and
before the initrd and the init sections are freed.  Differs: no khugepaged
thread, no sysfs; THP itself (huge page faults) is not modelled.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmemu.layout import PAGE_SHIFT, ZONE_NORMAL
from mmemu.mm.mmzone import PAGEBLOCK_ORDER

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

THP_MODES = ("always", "madvise", "never")
DEFAULT_THP = "always"          # CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS=y in the 686 kernel
MIGRATE_PCPTYPES = 3            # unmovable, movable, reclaimable
HUGEPAGE_MIN_PAGES = 512 << (20 - PAGE_SHIFT)    # hugepage_init() skips smaller machines


def hugepage_flags_enabled(mode: str) -> bool:
    """hugepage_flags_enabled(): THP for everyone (always) or on request (madvise)."""
    return mode in ("always", "madvise")


def recommended_min_free_kbytes(nr_zones: int, free_buffer_pages: int,
                                pageblock_nr_pages: int = 1 << PAGEBLOCK_ORDER) -> int:
    """The reserve set_recommended_min_free_kbytes() asks for, in kB.

    nr_zones: the populated zones GFP_USER may use (DMA, Normal);
    free_buffer_pages: nr_free_buffer_pages() (managed pages above the high
    watermarks of those zones), which caps the reserve at 5%.
    """
    pages = pageblock_nr_pages * nr_zones * 2                    # two free per zone
    pages += pageblock_nr_pages * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
    pages = min(pages, free_buffer_pages // 20)
    return pages << (PAGE_SHIFT - 10)


def set_recommended_min_free_kbytes(mm: MmState) -> None:
    """set_recommended_min_free_kbytes(): raise min_free_kbytes, set the watermarks.

    Models mm/khugepaged.c (6.1): the reserve only ever grows here, and the
    watermarks (not the lowmem reserves) are recomputed, with the pcp
    limits that follow from them.
    """
    from mmemu.mm.page_alloc import setup_per_zone_wmarks
    from mmemu.mm.watermark import nr_free_buffer_pages
    nr_zones = sum(1 for z in mm.zones if z.present_pages and z.zone_idx <= ZONE_NORMAL)
    recommended = recommended_min_free_kbytes(nr_zones, nr_free_buffer_pages(mm),
                                              1 << mm.pageblock_order)
    if recommended > mm.min_free_kbytes:
        mm.min_free_kbytes = recommended
    setup_per_zone_wmarks(mm)


def hugepage_init(mm: MmState, mode: str = DEFAULT_THP) -> bool:
    """hugepage_init(): THP on machines of 512 MiB and more; returns whether it is on.

    The size test reads totalram_pages() when the subsys_initcall runs:
    the managed pages less the initrd and the init sections, which are
    still reserved.  A smaller machine, or ``never``, keeps the reserve
    init_per_zone_wmark_min() computed.
    """
    from mmemu.mm.page_alloc import totalram_pages
    if totalram_pages(mm) < HUGEPAGE_MIN_PAGES or not hugepage_flags_enabled(mode):
        return False
    set_recommended_min_free_kbytes(mm)         # start_stop_khugepaged()
    return True
