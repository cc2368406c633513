"""GFP flags: what an allocation may do and where its pages may come from.

Models include/linux/gfp_types.h and include/linux/gfp.h of Linux 6.1 (a
686 build: no KASAN hardware tags, no lockdep, so those bits are 0),
include/trace/events/mmflags.h (the names %pGg prints), and the zonelist
construction of mm/page_alloc.c (build_zonelists(), node-ordered).

The kernel spells the flag bits ``__GFP_*``.  Those names work in module
code; inside a class body Python would mangle them, so every ``__GFP_X``
also exists as ``_GFP_X`` (STYLE.md rule 1).
"""
from collections.abc import Iterable, Sequence
from typing import Optional

from mmemu.layout import ZONE_DMA, ZONE_HIGHMEM, ZONE_MOVABLE, ZONE_NORMAL
from mmemu.mm.mmzone import (
    MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, ZONELIST_FALLBACK,
    ZONELIST_NOFALLBACK, PglistData, Zone,
)

# Plain bits (include/linux/gfp_types.h, 6.1).
__GFP_DMA = 0x01
__GFP_HIGHMEM = 0x02
__GFP_DMA32 = 0x04
__GFP_MOVABLE = 0x08
__GFP_RECLAIMABLE = 0x10
__GFP_HIGH = 0x20
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_ZERO = 0x100
__GFP_ATOMIC = 0x200
__GFP_DIRECT_RECLAIM = 0x400
__GFP_KSWAPD_RECLAIM = 0x800
__GFP_WRITE = 0x1000
__GFP_NOWARN = 0x2000
__GFP_RETRY_MAYFAIL = 0x4000
__GFP_NOFAIL = 0x8000
__GFP_NORETRY = 0x10000
__GFP_MEMALLOC = 0x20000
__GFP_COMP = 0x40000
__GFP_NOMEMALLOC = 0x80000
__GFP_HARDWALL = 0x100000
__GFP_THISNODE = 0x200000
__GFP_ACCOUNT = 0x400000
__GFP_ZEROTAGS = 0x800000
__GFP_SKIP_ZERO = 0                  # CONFIG_KASAN_HW_TAGS only
__GFP_SKIP_KASAN_UNPOISON = 0
__GFP_SKIP_KASAN_POISON = 0
__GFP_NOLOCKDEP = 0                  # CONFIG_LOCKDEP only
__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM

__GFP_BITS_SHIFT = 27
__GFP_BITS_MASK = (1 << __GFP_BITS_SHIFT) - 1
GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE

GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE
GFP_MOVABLE_SHIFT = 3
assert __GFP_MOVABLE >> GFP_MOVABLE_SHIFT == MIGRATE_MOVABLE
assert __GFP_RECLAIMABLE >> GFP_MOVABLE_SHIFT == MIGRATE_RECLAIMABLE

# Useful combinations.
GFP_ATOMIC = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL
GFP_DMA = __GFP_DMA
GFP_DMA32 = __GFP_DMA32
GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = (GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN_POISON
                        | __GFP_SKIP_KASAN_UNPOISON)
GFP_TRANSHUGE_LIGHT = ((GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN)
                       & ~__GFP_RECLAIM)
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM

# The unmangled spellings, for code inside classes (see the module doc).
_GFP_DMA = __GFP_DMA
_GFP_HIGHMEM = __GFP_HIGHMEM
_GFP_DMA32 = __GFP_DMA32
_GFP_MOVABLE = __GFP_MOVABLE
_GFP_RECLAIMABLE = __GFP_RECLAIMABLE
_GFP_HIGH = __GFP_HIGH
_GFP_IO = __GFP_IO
_GFP_FS = __GFP_FS
_GFP_ZERO = __GFP_ZERO
_GFP_ATOMIC = __GFP_ATOMIC
_GFP_DIRECT_RECLAIM = __GFP_DIRECT_RECLAIM
_GFP_KSWAPD_RECLAIM = __GFP_KSWAPD_RECLAIM
_GFP_WRITE = __GFP_WRITE
_GFP_NOWARN = __GFP_NOWARN
_GFP_RETRY_MAYFAIL = __GFP_RETRY_MAYFAIL
_GFP_NOFAIL = __GFP_NOFAIL
_GFP_NORETRY = __GFP_NORETRY
_GFP_MEMALLOC = __GFP_MEMALLOC
_GFP_COMP = __GFP_COMP
_GFP_NOMEMALLOC = __GFP_NOMEMALLOC
_GFP_HARDWALL = __GFP_HARDWALL
_GFP_THISNODE = __GFP_THISNODE
_GFP_ACCOUNT = __GFP_ACCOUNT
_GFP_ZEROTAGS = __GFP_ZEROTAGS
_GFP_SKIP_ZERO = __GFP_SKIP_ZERO
_GFP_SKIP_KASAN_UNPOISON = __GFP_SKIP_KASAN_UNPOISON
_GFP_SKIP_KASAN_POISON = __GFP_SKIP_KASAN_POISON
_GFP_NOLOCKDEP = __GFP_NOLOCKDEP
_GFP_RECLAIM = __GFP_RECLAIM
_GFP_BITS_SHIFT = __GFP_BITS_SHIFT
_GFP_BITS_MASK = __GFP_BITS_MASK
# `from mmemu.mm.gfp import *` brings both spellings and the GFP_* masks.
__all__ = [
    "GFP_ATOMIC", "GFP_DMA", "GFP_DMA32", "GFP_HIGHUSER", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL",
    "GFP_KERNEL_ACCOUNT", "GFP_MOVABLE_MASK", "GFP_MOVABLE_SHIFT", "GFP_NOFS", "GFP_NOIO",
    "GFP_NOWAIT", "GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "GFP_USER", "GFP_ZONEMASK",
    "_GFP_ACCOUNT", "_GFP_ATOMIC", "_GFP_BITS_MASK", "_GFP_BITS_SHIFT", "_GFP_COMP",
    "_GFP_DIRECT_RECLAIM", "_GFP_DMA", "_GFP_DMA32", "_GFP_FS", "_GFP_HARDWALL", "_GFP_HIGH",
    "_GFP_HIGHMEM", "_GFP_IO", "_GFP_KSWAPD_RECLAIM", "_GFP_MEMALLOC", "_GFP_MOVABLE",
    "_GFP_NOFAIL", "_GFP_NOLOCKDEP", "_GFP_NOMEMALLOC", "_GFP_NORETRY", "_GFP_NOWARN",
    "_GFP_RECLAIM", "_GFP_RECLAIMABLE", "_GFP_RETRY_MAYFAIL", "_GFP_SKIP_KASAN_POISON",
    "_GFP_SKIP_KASAN_UNPOISON", "_GFP_SKIP_ZERO", "_GFP_THISNODE", "_GFP_WRITE", "_GFP_ZERO",
    "_GFP_ZEROTAGS", "__GFP_ACCOUNT", "__GFP_ATOMIC", "__GFP_BITS_MASK", "__GFP_BITS_SHIFT",
    "__GFP_COMP", "__GFP_DIRECT_RECLAIM", "__GFP_DMA", "__GFP_DMA32", "__GFP_FS", "__GFP_HARDWALL",
    "__GFP_HIGH", "__GFP_HIGHMEM", "__GFP_IO", "__GFP_KSWAPD_RECLAIM", "__GFP_MEMALLOC",
    "__GFP_MOVABLE", "__GFP_NOFAIL", "__GFP_NOLOCKDEP", "__GFP_NOMEMALLOC", "__GFP_NORETRY",
    "__GFP_NOWARN", "__GFP_RECLAIM", "__GFP_RECLAIMABLE", "__GFP_RETRY_MAYFAIL",
    "__GFP_SKIP_KASAN_POISON", "__GFP_SKIP_KASAN_UNPOISON", "__GFP_SKIP_ZERO", "__GFP_THISNODE",
    "__GFP_WRITE", "__GFP_ZERO", "__GFP_ZEROTAGS",
]

# show_gfp_flags()'s table (include/trace/events/mmflags.h, 6.1): the order
# matters, composites first, so that %pGg names GFP_KERNEL rather than its bits.
GFPFLAG_NAMES = (
    (GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (GFP_HIGHUSER, "GFP_HIGHUSER"),
    (GFP_USER, "GFP_USER"),
    (GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (GFP_NOFS, "GFP_NOFS"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (GFP_NOIO, "GFP_NOIO"),
    (GFP_NOWAIT, "GFP_NOWAIT"),
    (GFP_DMA, "GFP_DMA"),
    (__GFP_HIGHMEM, "__GFP_HIGHMEM"),
    (GFP_DMA32, "GFP_DMA32"),
    (__GFP_HIGH, "__GFP_HIGH"),
    (__GFP_ATOMIC, "__GFP_ATOMIC"),
    (__GFP_IO, "__GFP_IO"),
    (__GFP_FS, "__GFP_FS"),
    (__GFP_NOWARN, "__GFP_NOWARN"),
    (__GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
    (__GFP_NOFAIL, "__GFP_NOFAIL"),
    (__GFP_NORETRY, "__GFP_NORETRY"),
    (__GFP_COMP, "__GFP_COMP"),
    (__GFP_ZERO, "__GFP_ZERO"),
    (__GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (__GFP_MEMALLOC, "__GFP_MEMALLOC"),
    (__GFP_HARDWALL, "__GFP_HARDWALL"),
    (__GFP_THISNODE, "__GFP_THISNODE"),
    (__GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"),
    (__GFP_MOVABLE, "__GFP_MOVABLE"),
    (__GFP_ACCOUNT, "__GFP_ACCOUNT"),
    (__GFP_WRITE, "__GFP_WRITE"),
    (__GFP_RECLAIM, "__GFP_RECLAIM"),
    (__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (__GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
    (__GFP_ZEROTAGS, "__GFP_ZEROTAGS"),
)


def format_gfp(gfp: int) -> str:
    """%pGg: a gfp mask as its flag names, e.g. "GFP_KERNEL|__GFP_ZERO".

    Models lib/vsprintf.c:format_flags() over gfpflag_names: each table
    entry whose bits are all set is printed and its bits removed; what no
    name covers follows in hex.  A mask of 0 prints nothing.

    >>> format_gfp(0xdc0)
    'GFP_KERNEL|__GFP_ZERO'
    """
    gfp &= 0xFFFFFFFF
    names: list[str] = []
    for mask, name in GFPFLAG_NAMES:
        if not gfp:
            break
        if gfp & mask == mask:
            names.append(name)
            gfp &= ~mask
    if gfp:
        names.append(f"{gfp:#x}")
    return "|".join(names)


# GFP_ZONE_TABLE of include/linux/gfp.h: two bits per combination of the
# four zone modifiers.  A 686 build has no ZONE_DMA32: OPT_ZONE_DMA32 is
# ZONE_NORMAL.
GFP_ZONES_SHIFT = 2
_OPT_ZONE_DMA32 = ZONE_NORMAL
GFP_ZONE_TABLE = (
    ZONE_NORMAL << 0 * GFP_ZONES_SHIFT
    | ZONE_DMA << __GFP_DMA * GFP_ZONES_SHIFT
    | ZONE_HIGHMEM << __GFP_HIGHMEM * GFP_ZONES_SHIFT
    | _OPT_ZONE_DMA32 << __GFP_DMA32 * GFP_ZONES_SHIFT
    | ZONE_NORMAL << __GFP_MOVABLE * GFP_ZONES_SHIFT
    | ZONE_DMA << (__GFP_MOVABLE | __GFP_DMA) * GFP_ZONES_SHIFT
    | ZONE_MOVABLE << (__GFP_MOVABLE | __GFP_HIGHMEM) * GFP_ZONES_SHIFT
    | _OPT_ZONE_DMA32 << (__GFP_MOVABLE | __GFP_DMA32) * GFP_ZONES_SHIFT)
GFP_ZONE_BAD = (
    1 << (__GFP_DMA | __GFP_HIGHMEM)
    | 1 << (__GFP_DMA | __GFP_DMA32)
    | 1 << (__GFP_DMA32 | __GFP_HIGHMEM)
    | 1 << (__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM)
    | 1 << (__GFP_MOVABLE | __GFP_HIGHMEM | __GFP_DMA)
    | 1 << (__GFP_MOVABLE | __GFP_DMA32 | __GFP_DMA)
    | 1 << (__GFP_MOVABLE | __GFP_DMA32 | __GFP_HIGHMEM)
    | 1 << (__GFP_MOVABLE | __GFP_DMA32 | __GFP_DMA | __GFP_HIGHMEM))
GFP_ZONE_BAD_LINE = "include/linux/gfp.h:136"     # VM_BUG_ON() in gfp_zone(), 6.1


def gfp_zone(gfp: int) -> int:
    """gfp_zone(): the highest zone an allocation with this mask may use.

    Models include/linux/gfp.h:gfp_zone(); the combinations GFP_ZONE_BAD
    names (__GFP_DMA with __GFP_HIGHMEM, ...) give whatever the table holds,
    as in a kernel without CONFIG_DEBUG_VM: check gfp_zone_bad() first.
    """
    bit = gfp & GFP_ZONEMASK
    return (GFP_ZONE_TABLE >> (bit * GFP_ZONES_SHIFT)) & ((1 << GFP_ZONES_SHIFT) - 1)


def gfp_zone_bad(gfp: int) -> bool:
    """The VM_BUG_ON of gfp_zone(): the zone modifiers contradict each other."""
    return bool((GFP_ZONE_BAD >> (gfp & GFP_ZONEMASK)) & 1)


def gfp_zonelist(gfp: int) -> int:
    """gfp_zonelist(): __GFP_THISNODE asks for the node's own zones only."""
    return ZONELIST_NOFALLBACK if gfp & __GFP_THISNODE else ZONELIST_FALLBACK


# -- zonelists -----------------------------------------------------------------

PENALTY_FOR_NODE_WITH_CPUS = 1
MAX_NUMNODES = 16                     # NODES_MASK in mmzone: four node bits


def node_distance(pgdat: PglistData, to_nid: int) -> int:
    """node_distance(): the SLIT distance, LOCAL/REMOTE_DISTANCE if none was given."""
    if pgdat.distance and to_nid < len(pgdat.distance):
        return pgdat.distance[to_nid]
    return 10 if to_nid == pgdat.node_id else 20


def find_next_best_node(node_data: Sequence[Optional[PglistData]], node: int, used: set[int],
                        node_load: list[int]) -> int:
    """find_next_best_node(): the nearest node not yet in the zonelist, or -1.

    Models mm/page_alloc.c:find_next_best_node(): local node first, then by
    distance, nodes below the local one and nodes with CPUs penalised, ties
    broken by node_load (spreads equal-distance nodes round-robin).
    """
    if node not in used:
        used.add(node)
        return node
    best, min_val = -1, None
    me = node_data[node]
    assert me is not None                       # the node whose zonelist is built
    for n, pgdat in enumerate(node_data):
        if pgdat is None or n in used or not pgdat.node_present_pages:
            continue
        val = node_distance(me, n) + (n < node)
        if pgdat.has_cpu:
            val += PENALTY_FOR_NODE_WITH_CPUS
        val = val * MAX_NUMNODES + node_load[n]
        if min_val is None or val < min_val:
            best, min_val = n, val
    if best >= 0:
        used.add(best)
    return best


def build_zonerefs_node(pgdat: PglistData) -> list[Zone]:
    """build_zonerefs_node(): a node's populated zones, highest first."""
    return [z for z in reversed(pgdat.node_zones) if z.populated]


def build_zonelists(node_data: Sequence[Optional[PglistData]], pgdat: PglistData,
                    node_load: list[int]) -> None:
    """build_zonelists(): fill pgdat.node_zonelists, node-ordered.

    Models mm/page_alloc.c:build_zonelists() (NUMA): every zone of the
    nearest node, highest zone first, then the next node's, as 6.1's only
    zonelist order ("Node") has it; the NOFALLBACK list has the node's own.
    node_load is shared by all nodes' builds, as the kernel's static array.
    """
    local = pgdat.node_id
    used: set[int] = set()
    order: list[int] = []
    prev = local
    while True:
        node = find_next_best_node(node_data, local, used, node_load)
        if node < 0:
            break
        if node_distance(pgdat, node) != node_distance(pgdat, prev):
            node_load[node] += 1
        order.append(node)
        prev = node
    fallback: list[Zone] = []
    for nid in order:
        node_pgdat = node_data[nid]
        assert node_pgdat is not None           # find_next_best_node() skips offline nodes
        fallback.extend(build_zonerefs_node(node_pgdat))
    pgdat.node_zonelists = [fallback, build_zonerefs_node(pgdat)]


def build_all_zonelists(node_data: Sequence[Optional[PglistData]]) -> None:
    """build_all_zonelists(): every node's zonelists."""
    node_load = [0] * len(node_data)
    for pgdat in node_data:
        if pgdat is not None:                   # for_each_online_node()
            build_zonelists(node_data, pgdat, node_load)


def zonelist_zones(zonelist: Iterable[Zone], highest_zoneidx: int) -> tuple[Zone, ...]:
    """for_each_zone_zonelist(): the zones of a zonelist at or below highest_zoneidx."""
    return tuple(z for z in zonelist if z.zone_idx <= highest_zoneidx)


def gfp_migratetype(gfp: int, mobility_disabled: bool = False) -> int:
    """gfp_migratetype(): the free lists a mask allocates from.

    __GFP_MOVABLE: MIGRATE_MOVABLE, __GFP_RECLAIMABLE: MIGRATE_RECLAIMABLE,
    neither: MIGRATE_UNMOVABLE; everything unmovable while grouping by
    mobility is off.  Both bits give 3, MIGRATE_HIGHATOMIC (6.1 warns only
    under CONFIG_DEBUG_VM).
    """
    if mobility_disabled:
        return MIGRATE_UNMOVABLE
    return (gfp & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT
