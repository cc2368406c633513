"""memblock: the boot-time allocator that runs before the page allocator.

Models mm/memblock.c of Linux 6.1 as the x86 boot uses it: memblock.memory
holds the RAM ranges (from the e820 map, already trimmed by the layout),
memblock.reserved what is taken (the first MiB, which 6.1's setup_arch()
reserves whole, and the kernel image), and memblock_alloc() hands out
further ranges top-down below memblock.current_limit (max_low_pfn: only the
direct-mapped lowmem is usable this early).  memblock_free_all() later gives
every page that is still free to the buddy allocator (mm/page_alloc.py).

Differs: reservations keep a name each and are not merged, so a view can say
what each one is; memblock_alloc() does not clear the memory (guest RAM is
still all zeroes at boot, and its callers initialise what they take).
"""
from dataclasses import dataclass, field

from mmemu.config import MiB
from mmemu.errors import MmemuError
from mmemu.layout import KERNEL_PHYS, PAGE_SHIFT, PAGE_SIZE
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE, MemMap

SMP_CACHE_BYTES = 64


@dataclass
class MemblockRegion:
    """struct memblock_region: [base, base + size) on node nid, with a name."""

    base: int
    size: int
    nid: int = 0
    name: str = ""

    @property
    def end(self):
        return self.base + self.size


@dataclass
class Memblock:
    """struct memblock: the RAM it knows of and what is reserved in it."""

    memory: list = field(default_factory=list)      # MemblockRegion, by base
    reserved: list = field(default_factory=list)    # MemblockRegion, by base
    current_limit: int = 0                          # allocations end below this
    bottom_up: bool = False

    def add_node(self, base, size, nid):
        """memblock_add_node(): RAM [base, base + size) on node nid."""
        self.memory.append(MemblockRegion(base, size, nid))
        self.memory.sort(key=lambda r: r.base)

    def reserve(self, base, size, name=""):
        """memblock_reserve(): mark [base, base + size) as taken."""
        if size > 0:
            self.reserved.append(MemblockRegion(base, size, name=name))
            self.reserved.sort(key=lambda r: r.base)

    def phys_free(self, base, size):
        """memblock_phys_free(): drop the reservations inside [base, base + size)."""
        end = base + size
        keep = []
        for r in self.reserved:
            if r.end <= base or r.base >= end:
                keep.append(r)
                continue
            if r.base < base:
                keep.append(MemblockRegion(r.base, base - r.base, name=r.name))
            if r.end > end:
                keep.append(MemblockRegion(end, r.end - end, name=r.name))
        self.reserved = sorted(keep, key=lambda r: r.base)

    def is_reserved(self, addr):
        """memblock_is_reserved()."""
        return any(r.base <= addr < r.end for r in self.reserved)

    def free_ranges(self):
        """for_each_free_mem_range(): [(nid, start, end)] of memory not reserved, in bytes."""
        out = []
        for m in self.memory:
            pos = m.base
            for r in self.reserved:
                if r.end <= pos or r.base >= m.end:
                    continue
                if r.base > pos:
                    out.append((m.nid, pos, r.base))
                pos = max(pos, r.end)
            if pos < m.end:
                out.append((m.nid, pos, m.end))
        return out

    def alloc(self, size, align=PAGE_SIZE, name=""):
        """memblock_alloc(): reserve size bytes, top-down below current_limit.

        Models mm/memblock.c:memblock_alloc_range_nid() with
        __memblock_find_range_top_down(): the highest free range that holds
        an aligned block wins.  Returns the physical address; raises
        MmemuError when nothing fits (Linux panics at this stage).
        """
        if align <= 0:
            align = SMP_CACHE_BYTES        # memblock_alloc(size, 0) warns and does this
        for _, start, end in reversed(self.free_ranges()):
            end = min(end, self.current_limit)
            start = max(start, PAGE_SIZE)  # memblock never hands out page 0
            if end - start < size:
                continue
            cand = (end - size) & ~(align - 1)
            if cand >= start:
                self.reserve(cand, size, name)
                return cand
        raise MmemuError(f"memblock_alloc: cannot allocate {size:#x} bytes "
                         f"align={align:#x} for {name or 'unnamed'} below "
                         f"{self.current_limit:#x}")


def memblock_init(cfg, layout):
    """The x86 boot's memblock: layout.memory as RAM, the first MiB and the image reserved.

    Models arch/x86/kernel/e820.c:e820__memblock_setup() (RAM ranges),
    setup_arch() (memblock_reserve(0, SZ_1M): 6.1 keeps the whole first MiB
    from the page allocator) and the reservation of the kernel image, which
    for mmemu is the guest image area [1 MiB, 1 MiB + cfg.kernel_image).
    current_limit is max_low_pfn, as init_mem_mapping() leaves it.
    """
    mb = Memblock(current_limit=layout.max_low_pfn << PAGE_SHIFT)
    for nid, start_pfn, end_pfn in layout.memory:
        mb.add_node(start_pfn << PAGE_SHIFT, (end_pfn - start_pfn) << PAGE_SHIFT, nid)
    mb.reserve(0, 1 * MiB, "first MiB")
    mb.reserve(KERNEL_PHYS, cfg.kernel_image, "kernel image")
    return mb


def alloc_mem_map(mb, layout):
    """alloc_node_mem_map() for FLATMEM: one struct page per pfn below max_pfn.

    Models mm/page_alloc.c:alloc_node_mem_map(); differs: sized to exactly
    max_pfn pages (Linux rounds up to MAX_ORDER_NR_PAGES; the buddy code
    checks the bound instead) and page aligned so that whole pages hold it.
    """
    nr_pages = layout.max_pfn
    size = (nr_pages * STRUCT_PAGE_SIZE + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    phys = mb.alloc(size, PAGE_SIZE, "mem_map")
    return MemMap(phys, nr_pages)
