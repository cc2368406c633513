"""memblock: the boot-time allocator that runs before the page allocator.

Models mm/memblock.c of Linux 6.1 as the i386 boot uses it: memblock.memory
holds the RAM ranges e820__memblock_setup() adds, memblock.reserved what
is taken, and the allocations (memblock_phys_alloc_range(),
memblock_alloc_try_nid(), ...) find their place top-down, first fit, in
what is free, below ``current_limit`` (lowmem's end, the direct map) unless
they give a range of their own.  memblock_free_all() (mm/mm_init.py) later
gives every page still free to the buddy allocator.  The reservations the
reference kernel makes, one by one, are in docs/reference-6.1-686.md.

With ``memblock=debug`` on the kernel command line every call is logged as
6.1 logs it (``memblock_reserve: [0x01ee6000-0x01ef5fff] setup_arch``),
and every call is recorded in ``events`` either way (the oracle compares
them with the real kernel's).  Differs: the caller is printed without
+offset/size (there is no kernel text to offset into); reserved regions
keep a name each and are not merged (a view can say what holds a page),
merged only where Linux shows them merged (the dump, the free ranges);
allocations do not clear memory (guest RAM is zero at boot).
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Optional

from mmemu.errors import MmemuError
from mmemu.layout import PAGE_SHIFT, PAGE_SIZE, Layout

SMP_CACHE_BYTES = 64            # L1_CACHE_BYTES of the 686 build (X86_L1_CACHE_SHIFT 6)
MEMBLOCK_ALLOC_ACCESSIBLE = 0   # max_addr: up to memblock.current_limit
NUMA_NO_NODE = -1


@dataclass
class MemblockRegion:
    """struct memblock_region: [base, base + size) on node nid, with a name."""

    base: int
    size: int
    nid: int = 0
    name: str = ""

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class MemblockEvent:
    """One memblock call: op (add, reserve, alloc, free), the range it took or
    freed ([base, end), end == base for an empty free), the kernel function
    that made it, and an allocation's request.  ``logged``: whether 6.1 logs
    it (calls made before the command line is parsed are not)."""

    op: str
    base: int
    end: int
    caller: str
    size: Optional[int] = None
    align: Optional[int] = None
    logged: bool = True


def _merged(regions: Iterable[MemblockRegion]) -> list[tuple[int, int]]:
    """[(base, end)] of regions merged where they touch or overlap, by base."""
    out: list[list[int]] = []
    for r in sorted(regions, key=lambda r: r.base):
        if r.size <= 0:
            continue
        if out and r.base <= out[-1][1]:
            out[-1][1] = max(out[-1][1], r.end)
        else:
            out.append([r.base, r.end])
    return [(base, end) for base, end in out]


@dataclass
class Memblock:
    """struct memblock: the RAM it knows of, what is reserved in it, the log."""

    memory: list[MemblockRegion] = field(default_factory=list)      # by base
    reserved: list[MemblockRegion] = field(default_factory=list)    # by base
    current_limit: int = 0                          # allocations end below this
    bottom_up: bool = False
    events: list[MemblockEvent] = field(default_factory=list)       # in call order
    debug: bool = False                             # memblock=debug: print every call
    printk: Optional[Callable[[str], object]] = None   # fn(line) for the boot log
    memory_total: int = 0                           # memblock.memory.total_size
    pa_format: str = "#010x"                        # %pa: phys_addr_t is 64-bit on PAE

    # -- the log --------------------------------------------------------
    def pa(self, addr: int) -> str:
        """%pa: 0x and 8 hex digits, or 16 with PAE's 64-bit phys_addr_t."""
        return format(addr, self.pa_format)

    def _dbg(self, line: str) -> None:
        if self.debug and self.printk is not None:
            self.printk(line)

    def _record(self, op: str, base: int, end: int, caller: str, size: Optional[int] = None,
                align: Optional[int] = None) -> None:
        self.events.append(MemblockEvent(op, base, end, caller, size, align, self.debug))

    # -- memory and reserved --------------------------------------------
    def add_node(self, base: int, size: int, nid: int,
                 caller: str = "e820__memblock_setup") -> None:
        """memblock_add_node(): RAM [base, base + size) on node nid."""
        self._dbg(f"memblock_add: [{self.pa(base)}-{self.pa(base + size - 1)}] {caller}")
        self._record("add", base, base + size, caller)
        self.memory_total += size
        self.memory.append(MemblockRegion(base, size, nid))
        self.memory.sort(key=lambda r: r.base)

    def trim_memory(self, align: int = PAGE_SIZE) -> None:
        """memblock_trim_memory(): round every RAM region inward to whole pages."""
        keep = []
        for r in self.memory:
            base = (r.base + align - 1) & ~(align - 1)
            end = r.end & ~(align - 1)
            if end > base:
                keep.append(MemblockRegion(base, end - base, r.nid, r.name))
        self.memory = keep

    def reserve(self, base: int, size: int, caller: str = "", name: str = "") -> None:
        """memblock_reserve(): mark [base, base + size) as taken."""
        self._dbg(f"memblock_reserve: [{self.pa(base)}-{self.pa(base + size - 1)}] {caller}")
        self._record("reserve", base, base + size, caller)
        self._add_reserved(base, size, name or caller)

    def _add_reserved(self, base: int, size: int, name: str) -> None:
        if size > 0:
            self.reserved.append(MemblockRegion(base, size, name=name))
            self.reserved.sort(key=lambda r: r.base)

    def phys_free(self, base: int, size: int, caller: str = "") -> None:
        """memblock_phys_free(): drop the reservations inside [base, base + size)."""
        self._dbg(f"memblock_phys_free: [{self.pa(base)}-{self.pa(base + size - 1)}] {caller}")
        self._record("free", base, base + max(size, 0), caller)
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

    def is_reserved(self, addr: int) -> bool:
        """memblock_is_reserved()."""
        return any(r.base <= addr < r.end for r in self.reserved)

    def reserved_ranges(self) -> list[tuple[int, int]]:
        """[(base, end)] of memblock.reserved as Linux keeps it (merged)."""
        return _merged(self.reserved)

    def reserved_total(self) -> int:
        """memblock.reserved.total_size."""
        return sum(end - base for base, end in self.reserved_ranges())

    def free_ranges(self) -> list[tuple[int, int, int]]:
        """for_each_free_mem_range(): [(nid, start, end)] of memory not reserved, in bytes."""
        out = []
        taken = self.reserved_ranges()
        for m in self.memory:
            pos = m.base
            for base, end in taken:
                if end <= pos or base >= m.end:
                    continue
                if base > pos:
                    out.append((m.nid, pos, base))
                pos = max(pos, end)
            if pos < m.end:
                out.append((m.nid, pos, m.end))
        return out

    # -- allocation ------------------------------------------------------
    def find_range(self, size: int, align: int, start: int = 0,
                   end: int = MEMBLOCK_ALLOC_ACCESSIBLE) -> Optional[int]:
        """memblock_find_in_range_node() top-down: the highest aligned fit, or None.

        Models __memblock_find_range_top_down(): each free range from the
        top, clamped to [max(start, PAGE_SIZE), end), the candidate is its
        end less size rounded down to align.
        """
        if end == MEMBLOCK_ALLOC_ACCESSIBLE:
            end = self.current_limit
        start = max(start, PAGE_SIZE)
        end = max(start, end)
        for _, this_start, this_end in reversed(self.free_ranges()):
            this_start = min(max(this_start, start), end)
            this_end = min(max(this_end, start), end)
            if this_end < size:
                continue
            cand = (this_end - size) & ~(align - 1)
            if cand >= this_start:
                return cand
        return None

    def alloc_range_nid(self, size: int, align: int, start: int, end: int, nid: int,
                        name: str) -> int:
        """memblock_alloc_range_nid(): find a place and reserve it (logged as such)."""
        if align <= 0:
            align = SMP_CACHE_BYTES        # memblock_alloc(size, 0) warns and does this
        found = self.find_range(size, align, start, end)
        if found is None and start:
            found = self.find_range(size, align, 0, end)    # retry without the goal
        if found is None:
            limit = end or self.current_limit
            raise MmemuError(f"memblock_alloc: cannot allocate {size:#x} bytes "
                             f"align={align:#x} for {name or 'unnamed'} below {limit:#x}")
        self._dbg(f"memblock_reserve: [{self.pa(found)}-{self.pa(found + size - 1)}] "
                  f"memblock_alloc_range_nid")
        self._add_reserved(found, size, name)
        return found

    def phys_alloc_range(self, size: int, align: int, start: int, end: int, caller: str,
                         name: str = "") -> int:
        """memblock_phys_alloc_range(): size bytes in [start, end); returns the address."""
        self._dbg(f"memblock_phys_alloc_range: {size} bytes align={align:#x} "
                  f"from={self.pa(start)} max_addr={self.pa(end)} {caller}")
        found = self.alloc_range_nid(size, align, start, end, NUMA_NO_NODE, name or caller)
        self._record("alloc", found, found + size, caller, size, align)
        return found

    def alloc_try_nid(self, size: int, align: int = SMP_CACHE_BYTES, min_addr: int = 0,
                      max_addr: int = MEMBLOCK_ALLOC_ACCESSIBLE, nid: int = NUMA_NO_NODE,
                      caller: str = "", name: str = "", raw: bool = False) -> int:
        """memblock_alloc_try_nid() (and _raw, memblock_alloc(), memblock_alloc_node(),
        memblock_alloc_from(), which are it with defaults): returns the physical address."""
        fn = "memblock_alloc_try_nid_raw" if raw else "memblock_alloc_try_nid"
        self._dbg(f"{fn}: {size} bytes align={align:#x} nid={nid} from={self.pa(min_addr)} "
                  f"max_addr={self.pa(max_addr)} {caller}")
        if max_addr > self.current_limit:            # memblock_alloc_internal()
            max_addr = self.current_limit
        found = self.alloc_range_nid(size, align, min_addr, max_addr, nid, name or caller)
        self._record("alloc", found, found + size, caller, size, align)
        return found

    def alloc(self, size: int, align: int = PAGE_SIZE, name: str = "") -> int:
        """memblock_alloc(): size bytes, align, anywhere below current_limit."""
        return self.alloc_try_nid(size, align, caller=name, name=name)

    def free(self, phys: int, size: int, caller: str = "memblock_free") -> None:
        """memblock_free(): memblock_phys_free() of an allocation (its __pa)."""
        self.phys_free(phys, size, caller)

    # -- the dump ----------------------------------------------------------
    def dump_all(self) -> list[str]:
        """memblock_dump_all()'s ``MEMBLOCK configuration:`` lines."""
        lines = ["MEMBLOCK configuration:",
                 f" memory size = {self.pa(self.memory_total)} reserved size = "
                 f"{self.pa(self.reserved_total())}"]
        for kind, ranges in (("memory", [(r.base, r.end) for r in self.memory]),
                             ("reserved", self.reserved_ranges())):
            lines.append(f" {kind}.cnt  = {len(ranges):#x}")
            for i, (base, end) in enumerate(ranges):
                lines.append(f" {kind}[{i:#x}]\t[{self.pa(base)}-{self.pa(end - 1)}], "
                             f"{self.pa(end - base)} bytes flags: 0x0")
        return lines

    def dump(self) -> None:
        """memblock_dump_all(): the configuration, printed under memblock=debug
        and recorded as ``memory``/``reserved`` events either way."""
        for line in self.dump_all():
            self._dbg(line)
        for r in self.memory:
            self._record("memory", r.base, r.end, "")
        for base, end in self.reserved_ranges():
            self._record("reserved", base, end, "")


def memblock_init(layout: Layout, memory_ranges: object = None) -> Memblock:
    """An empty memblock whose allocations end at lowmem's end (max_low_pfn).

    The RAM and the reservations are added by the boot (arch/x86/setup.py):
    current_limit is where init_mem_mapping() leaves it.
    """
    return Memblock(current_limit=layout.max_low_pfn << PAGE_SHIFT)
