"""What Linux 6.1 i386 computes at boot from the memory map: pfn limits,
zone spans, and the kernel's virtual layout (3G/1G split).

Models arch/x86/kernel/e820.c (trim_bios_range, memblock ranges),
arch/x86/mm/init_32.c (find_low_pfn_range, highmem=),
arch/x86/include/asm/pgtable_32_areas.h and fixmap.h, and
mm/page_alloc.c (zone spans).  The numbers reproduce a real 6.1.176 686
kernel booted on QEMU's pc machine (see tests/test_layout.py).

The module constants (PKMAP_BASE, VMALLOC_END, FIXMAP, ...) are the 686
flavour's; a machine's Layout carries its own flavour's (686-pae moves the
top of the address space, see mmemu/flavour.py).

Differs: the CPU entry area's size per CPU (43 pages) is reconstructed from
struct cpu_entry_area in a 686 build rather than computed from C struct
sizes; it makes PKMAP_BASE come out at the measured 0xfec00000.
"""
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1) & 0xFFFFFFFF
PAGE_OFFSET = 0xC0000000
PGDIR_SHIFT = 22
PMD_SIZE = 1 << PGDIR_SHIFT            # two-level: the pmd is the pgd
PMD_MASK = ~(PMD_SIZE - 1) & 0xFFFFFFFF
PTRS_PER_PGD = 1024
PTRS_PER_PTE = 1024
KERNEL_PGD_BOUNDARY = PAGE_OFFSET >> PGDIR_SHIFT     # 768

VMALLOC_OFFSET = 8 << 20               # the hole after the direct map (and vmalloc='s extra)
LAST_PKMAP = 1024                      # 512 with PAE
FIXADDR_TOP = 0xFFFFF000               # __FIXADDR_TOP without a hypervisor
MAX_DMA_ADDRESS = 16 << 20

# The 686 flavour's areas; a machine's own are in its Layout (the 686-pae
# flavour's differ: mmemu/flavour.py computes both).
from mmemu.flavour import (  # noqa: E402,F401  (the 686 flavour's constants, re-exported)
    CPU_ENTRY_AREA_PAGES, FIX_BTMAPS_SLOTS, FLAVOUR_686, KM_MAX_IDX, MAX_IO_APICS, Flavour,
    NR_CPUS, NR_FIX_BTMAPS, TOTAL_FIX_BTMAPS,
)
from mmemu.flavour import fixmap_indices  # noqa: E402,F401


def _fixmap_indices() -> dict[str, int]:
    """enum fixed_addresses of arch/x86/include/asm/fixmap.h for the 686 build."""
    return fixmap_indices(PTRS_PER_PTE)


FIXMAP = FLAVOUR_686.fixmap
FIX_HOLE = FIXMAP["FIX_HOLE"]
FIX_KMAP_BEGIN = FIXMAP["FIX_KMAP_BEGIN"]
FIX_KMAP_END = FIXMAP["FIX_KMAP_END"]
END_OF_PERMANENT_FIXED = FIXMAP["__end_of_permanent_fixed_addresses"]
END_OF_FIXED = FIXMAP["__end_of_fixed_addresses"]
FIXADDR_SIZE = END_OF_PERMANENT_FIXED << PAGE_SHIFT
FIXADDR_START = FLAVOUR_686.fixaddr_start
FIXADDR_TOT_SIZE = END_OF_FIXED << PAGE_SHIFT
FIXADDR_TOT_START = FLAVOUR_686.fixaddr_tot_start

CPU_ENTRY_AREA_BASE = FLAVOUR_686.cpu_entry_area_base
LDT_BASE_ADDR = FLAVOUR_686.ldt_base_addr
LDT_END_ADDR = FLAVOUR_686.ldt_end_addr
PKMAP_BASE = FLAVOUR_686.pkmap_base
VMALLOC_END = FLAVOUR_686.vmalloc_end

ZONE_DMA, ZONE_NORMAL, ZONE_HIGHMEM, ZONE_MOVABLE = range(4)
MAX_NR_ZONES = 4
ZONE_NAMES = ("DMA", "Normal", "HighMem", "Movable")


def fix_to_virt(idx: int) -> int:
    """__fix_to_virt(): the address of fixmap slot idx (slot 0 is the top page)."""
    return FIXADDR_TOP - (idx << PAGE_SHIFT)


def virt_to_fix(vaddr: int) -> int:
    """__virt_to_fix(): the fixmap slot that holds vaddr."""
    return (FIXADDR_TOP - (vaddr & PAGE_MASK)) >> PAGE_SHIFT


def pfn_up(addr: int) -> int:
    return (addr + PAGE_SIZE - 1) >> PAGE_SHIFT


def pfn_down(addr: int) -> int:
    return addr >> PAGE_SHIFT


@dataclass
class ZoneSpan:
    """One zone of one node: its pfn span and the pfns backed by RAM."""

    nid: int
    zid: int
    start_pfn: int
    end_pfn: int                       # exclusive
    present_ranges: list[tuple[int, int]] = field(default_factory=list)   # [(start_pfn, end_pfn)]

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.zid]

    @property
    def spanned_pages(self) -> int:
        return self.end_pfn - self.start_pfn

    @property
    def present_pages(self) -> int:
        return sum(e - s for s, e in self.present_ranges)


@dataclass
class Layout:
    """The boot-time numbers Linux derives from the machine (see module doc)."""

    memory: list[tuple[int, int, int]]   # RAM the zones hold: [(nid, start_pfn, end_pfn)]
    max_pfn: int
    max_low_pfn: int
    highstart_pfn: int
    vmalloc_reserve: int
    dma_pfn: int
    zones: list[ZoneSpan]              # for every node and zone, populated or not
    nr_nodes: int

    page_offset: int = PAGE_OFFSET
    vmalloc_end: int = VMALLOC_END
    pkmap_base: int = PKMAP_BASE
    ldt_base: int = LDT_BASE_ADDR
    cpu_entry_area_base: int = CPU_ENTRY_AREA_BASE
    fixaddr_start: int = FIXADDR_START
    fixaddr_tot_start: int = FIXADDR_TOT_START
    fixaddr_top: int = FIXADDR_TOP
    # memblock.memory: all RAM, even above max_pfn: [(nid, start_pfn, end_pfn)]
    memblock: Optional[list[tuple[int, int, int]]] = None
    flavour: Optional[Flavour] = None  # mmemu.flavour.Flavour (686 when None)
    last_pkmap: int = LAST_PKMAP

    @classmethod
    def for_flavour(cls, flavour: Flavour, **fields: Any) -> "Layout":
        """A Layout whose top-of-space areas are the flavour's (686 or 686-pae)."""
        return cls(vmalloc_end=flavour.vmalloc_end, pkmap_base=flavour.pkmap_base,
                   ldt_base=flavour.ldt_base_addr,
                   cpu_entry_area_base=flavour.cpu_entry_area_base,
                   fixaddr_start=flavour.fixaddr_start,
                   fixaddr_tot_start=flavour.fixaddr_tot_start, flavour=flavour,
                   last_pkmap=flavour.last_pkmap, **fields)

    @property
    def ldt_end(self) -> int:
        return self.ldt_base + (self.flavour.pmd_size if self.flavour else PMD_SIZE)

    @property
    def fixmap(self) -> dict[str, int]:
        """enum fixed_addresses of the flavour: name -> index."""
        return self.flavour.fixmap if self.flavour else FIXMAP

    @property
    def maxmem(self) -> int:
        """MAXMEM: the most lowmem the direct map can hold."""
        return self.vmalloc_end - PAGE_OFFSET - self.vmalloc_reserve

    @property
    def high_memory(self) -> int:
        return PAGE_OFFSET + (self.max_low_pfn << PAGE_SHIFT)

    @property
    def vmalloc_start(self) -> int:
        return self.high_memory + VMALLOC_OFFSET

    @property
    def pkmap_end(self) -> int:
        return self.pkmap_base + self.last_pkmap * PAGE_SIZE

    def zone(self, nid: int, zid: int) -> ZoneSpan:
        for z in self.zones:
            if z.nid == nid and z.zid == zid:
                return z
        raise KeyError((nid, zid))

    def node_zones(self, nid: int) -> list[ZoneSpan]:
        return [z for z in self.zones if z.nid == nid]


class RamRange(Protocol):
    """A physical range [start, end) (config_schema.Range)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class MemoryNode(Protocol):
    """A NUMA node's id and RAM (config_schema.NodeConfig)."""

    @property
    def nid(self) -> int: ...
    @property
    def ram(self) -> Sequence[RamRange]: ...


class MemoryConfig(Protocol):
    """What compute_layout() reads of a machine config (config_schema.MachineConfig,
    a layer above this module): the nodes' RAM, the zone and vmalloc options
    and the flavour (pae)."""

    @property
    def nodes(self) -> Sequence[MemoryNode]: ...
    @property
    def dma_limit(self) -> int: ...
    @property
    def highmem(self) -> Optional[int]: ...
    @property
    def vmalloc(self) -> int: ...
    @property
    def pae(self) -> bool: ...


def memblock_memory(cfg: MemoryConfig, pae: bool = False) -> list[tuple[int, int, int]]:
    """The pfn ranges Linux hands to memblock: e820 RAM minus what trim_bios_range
    takes (page 0 and 640K-1M), rounded inward to whole pages, tagged by node.

    On the 686 kernel RAM that ends at or above 4 GiB is left out: its
    32-bit phys_addr_t cannot hold it (e820__memblock_setup() skips it
    silently).  The 686-pae kernel's 64-bit one takes all of it (configs
    keep RAM below 64 GiB, MAX_PHYSMEM_BITS 36).
    """
    out = []
    for node in cfg.nodes:
        for r in node.ram:
            if r.end >= 1 << 32 and not pae:
                continue
            for s, e in _trim_bios(r.start, r.end):
                sp, ep = pfn_up(s), pfn_down(e)
                if ep > sp:
                    out.append((node.nid, sp, ep))
    out.sort(key=lambda t: t[1])
    return out


def _trim_bios(start: int, end: int) -> list[tuple[int, int]]:
    """Cut page 0 and the legacy BIOS hole [0xa0000, 0x100000) out of [start, end)."""
    pieces = [(start, end)]
    for hs, he in ((0, PAGE_SIZE), (0xA0000, 0x100000)):
        nxt = []
        for s, e in pieces:
            if e <= hs or s >= he:
                nxt.append((s, e))
                continue
            if s < hs:
                nxt.append((s, hs))
            if e > he:
                nxt.append((he, e))
        pieces = nxt
    return pieces


def find_low_pfn_range(max_pfn: int, maxmem_pfn: int,
                       highmem_pages: Optional[int]) -> tuple[int, int]:
    """find_low_pfn_range(): split max_pfn into lowmem and HighMem.

    Returns (max_low_pfn, max_pfn); like Linux, a highmem= smaller than what
    lies above MAXMEM drops the RAM beyond it.  highmem_pages is None when the
    option is not given.  Config validation refuses the values Linux would
    only complain about, so here they are simply followed.
    """
    if max_pfn <= maxmem_pfn:
        if highmem_pages and highmem_pages < max_pfn:
            return max_pfn - highmem_pages, max_pfn
        return max_pfn, max_pfn
    if highmem_pages is None:
        highmem_pages = max_pfn - maxmem_pfn
    if highmem_pages + maxmem_pfn < max_pfn:
        max_pfn = maxmem_pfn + highmem_pages
    return maxmem_pfn, max_pfn


def compute_layout(cfg: MemoryConfig) -> Layout:
    """Everything Linux computes from the memory map before the page allocator runs.

    The flavour (686 or 686-pae, cfg.pae) fixes the top of the address
    space, so VMALLOC_END and MAXMEM, and which RAM memblock gets (the 686
    kernel none above 4 GiB); find_low_pfn_range() is the same.
    """
    from mmemu.flavour import flavour_of
    flavour = flavour_of(cfg)
    memory = memblock = memblock_memory(cfg, flavour.pae)
    max_pfn = max(e for _, _, e in memory)
    maxmem = flavour.vmalloc_end - PAGE_OFFSET - cfg.vmalloc
    hp = cfg.highmem >> PAGE_SHIFT if cfg.highmem else None
    max_low_pfn, max_pfn = find_low_pfn_range(max_pfn, maxmem >> PAGE_SHIFT, hp)
    memory = [(n, s, min(e, max_pfn)) for n, s, e in memory if s < max_pfn]
    dma_pfn = cfg.dma_limit >> PAGE_SHIFT
    limits = [dma_pfn, max_low_pfn, max_pfn]
    zones = []
    nids = sorted(n.nid for n in cfg.nodes)
    for nid in nids:
        ranges = [(s, e) for n, s, e in memory if n == nid]
        zones.extend(_node_zone_spans(nid, ranges, limits))
    return Layout.for_flavour(flavour, memory=memory, max_pfn=max_pfn,
                              max_low_pfn=max_low_pfn, highstart_pfn=max_low_pfn,
                              vmalloc_reserve=cfg.vmalloc, dma_pfn=dma_pfn, zones=zones,
                              nr_nodes=len(nids), memblock=memblock)


def _node_zone_spans(nid: int, ranges: list[tuple[int, int]], limits: list[int]) -> list[ZoneSpan]:
    """zone_spanned_pages_in_node(): clamp the node's span to each zone's limits."""
    out = []
    lo = 0
    node_start = min((s for s, _ in ranges), default=0)
    node_end = max((e for _, e in ranges), default=0)
    for zid, hi in enumerate(limits):
        zs, ze = max(lo, node_start), min(hi, node_end)
        present = [(max(s, zs), min(e, ze)) for s, e in ranges if s < ze and e > zs]
        if ze <= zs:
            zs = ze = 0
        out.append(ZoneSpan(nid, zid, zs, ze, present))
        lo = hi
    out.append(ZoneSpan(nid, ZONE_MOVABLE, 0, 0, []))
    return out
