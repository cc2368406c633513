"""SLUB's core: cache geometry, slabs, freelists, the cpu slab, partial lists.

Models mm/slub.c of Linux 6.1 (one CPU, CONFIG_SLUB_CPU_PARTIAL off).  All
state the guest's fast path reads lives in guest memory (mm/slab.py has the
layouts): the struct kmem_cache and its kmem_cache_cpu, the struct slab
fields of each slab's head struct page, and the free pointers inside free
objects.  What only slow paths use is kept here, on the host: the partial and
full lists (KmemCacheNode) and the debug tracks.

Frozen slabs: the cpu slab is frozen; its free objects sit on c->freelist
(which guest code pops and pushes without a hypercall) and its slab->freelist
collects only objects freed by the slow path.  Every other slab is on the
partial list (some objects free) or the full list (none free).

Differs: full slabs are tracked for every cache, not only SLAB_STORE_USER
ones (the checker and slabinfo need them); no cpu partial lists; no freelist
hardening or randomization; no cache merging (as with slub_nomerge).

Everything read from guest memory is a value the guest may have broken.
A pointer the code follows (a free pointer, c->freelist, c->slab, a
compound head) is read as the kernel reads it: where nothing is mapped in
the direct map, the read is an oops in the function that made it
(Reporter.die(); the call stops with KernelOops).  A c->slab that is not
this cache's cpu slab is a BUG with mmemu's note (6.1 would go on and
corrupt memory).  A readable but wrong free pointer is followed, as 6.1
follows it: the object handed out is wherever it points.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Protocol, Union

from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE
from mmemu.mm.mmzone import (
    NODES_MASK, NODES_PGSHIFT, PAGE_WORDS, PG_slab, STRUCT_PAGE_SIZE, W_FLAGS, W_INDEX,
    W_MAPPING, W_PRIVATE,
)
from mmemu.mm.slab import (
    KCC_FREELIST, KCC_SLAB, KCC_TID, KMC_ALIGN, KMC_ALLOCFLAGS, KMC_CPU_DATA, KMC_CPU_SLAB,
    KMC_CTOR, KMC_FLAGS, KMC_INUSE, KMC_MIN, KMC_MIN_PARTIAL, KMC_NAME, KMC_OBJECT_SIZE,
    KMC_OFFSET, KMC_OO, KMC_RED_LEFT_PAD, KMC_REFCOUNT, KMC_SIZE, KMEM_CACHE_SIZE,
    POISON_INUSE, SLAB_CACHE_DMA, SLAB_CACHE_DMA32, SLAB_DEBUG_FLAGS, SLAB_FROZEN,
    SLAB_HWCACHE_ALIGN, SLAB_INUSE_MASK, SLAB_OBJECTS_MASK, SLAB_OBJECTS_SHIFT, SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT, SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_TYPESAFE_BY_RCU,
    TRACK_SIZE, __OBJECT_POISON,
)
from mmemu.mm.gfp import (
    GFP_DMA, GFP_DMA32, _GFP_ATOMIC, _GFP_BITS_MASK, _GFP_COMP, _GFP_DIRECT_RECLAIM,
    _GFP_DMA32, _GFP_FS, _GFP_HARDWALL, _GFP_HIGH, _GFP_HIGHMEM, _GFP_IO, _GFP_MEMALLOC,
    _GFP_NOFAIL, _GFP_NOMEMALLOC, _GFP_NORETRY, _GFP_NOWARN, _GFP_RECLAIM,
    _GFP_RECLAIMABLE, _GFP_RETRY_MAYFAIL, _GFP_THISNODE, _GFP_ZERO,
)
from mmemu.mm.mmzone import MemMap
from mmemu.physmem import PhysMem

if TYPE_CHECKING:
    from mmemu.mm.slub_debug import SlubDebug, Track

# The code a slab call is made for, as Linux prints _RET_IP_: a callable that
# gives the symbol ("main+0x1c/0x80"), or the symbol itself.
Caller = Union[Callable[[], str], str]


class PageSource(Protocol):
    """The page allocator as the slab allocator uses it (slab_common.MachinePages)."""

    def alloc(self, gfp: int, order: int, nid: Optional[int] = None) -> Optional[int]: ...
    def free(self, pfn: int, order: int) -> None: ...
    def register_shrinker(self, fn: Callable[[], int]) -> None: ...

# mm/internal.h and mm/slab.h (6.1): what slab allocations may pass down.
GFP_SLAB_BUG_MASK = (_GFP_DMA32 | _GFP_HIGHMEM | ~_GFP_BITS_MASK) & 0xFFFFFFFF
GFP_RECLAIM_MASK = (_GFP_RECLAIM | _GFP_HIGH | _GFP_IO | _GFP_FS | _GFP_NOWARN
                    | _GFP_RETRY_MAYFAIL | _GFP_NOFAIL | _GFP_NORETRY | _GFP_MEMALLOC
                    | _GFP_NOMEMALLOC | _GFP_ATOMIC)
GFP_CONSTRAINT_MASK = _GFP_HARDWALL | _GFP_THISNODE

MIN_PARTIAL = 5
MAX_PARTIAL = 10
MAX_OBJS_PER_PAGE = 32767              # slab->objects is 15 bits
SLUB_MAX_ORDER = 3                     # PAGE_ALLOC_COSTLY_ORDER
MAX_ORDER = 11                         # 6.1: orders 0..MAX_ORDER-1
NR_CPU_IDS = 1                         # one CPU online (the reference kernel's)
CACHE_LINE_SIZE = 32                   # cache_line_size(): the qemu32 CPU's (HWalign=32)
ARCH_SLAB_MINALIGN = 8                 # __alignof__(unsigned long long) on i386
WORD = 4                               # sizeof(void *)

SLAB_DEBUG_CAUSES = SLAB_DEBUG_FLAGS   # kmem_cache_debug(): any of these
NUMA_NO_NODE = -1


# -- geometry (mm/slub.c: calculate_sizes and friends) ----------------------------

def fls(x: int) -> int:
    """fls(): 1-based index of the highest set bit, 0 for 0."""
    return x.bit_length()


def get_order(size: int) -> int:
    """get_order(): the smallest order whose block holds size bytes."""
    return max(0, (size - 1) >> PAGE_SHIFT).bit_length()


def order_objects(order: int, size: int) -> int:
    return (PAGE_SIZE << order) // size


def calc_slab_order(size: int, min_objects: int, max_order: int, fract_leftover: int) -> int:
    """The lowest order that wastes at most 1/fract_leftover of the slab."""
    if order_objects(0, size) > MAX_OBJS_PER_PAGE:
        return get_order(size * MAX_OBJS_PER_PAGE) - 1
    order = get_order(min_objects * size)
    while order <= max_order:
        slab_size = PAGE_SIZE << order
        if slab_size % size <= slab_size // fract_leftover:
            break
        order += 1
    return order


def calculate_order(size: int) -> int:
    """calculate_order(): slab order for objects of this size, or -1."""
    min_objects = 4 * (fls(NR_CPU_IDS) + 1)
    min_objects = min(min_objects, order_objects(SLUB_MAX_ORDER, size))
    while min_objects > 1:
        fraction = 16
        while fraction >= 4:
            order = calc_slab_order(size, min_objects, SLUB_MAX_ORDER, fraction)
            if order <= SLUB_MAX_ORDER:
                return order
            fraction //= 2
        min_objects -= 1
    order = calc_slab_order(size, 1, SLUB_MAX_ORDER, 1)
    if order <= SLUB_MAX_ORDER:
        return order
    order = calc_slab_order(size, 1, MAX_ORDER, 1)
    return order if order < MAX_ORDER else -1


def calculate_alignment(flags: int, align: int, size: int) -> int:
    """calculate_alignment() of mm/slab_common.c."""
    if flags & SLAB_HWCACHE_ALIGN:
        ralign = CACHE_LINE_SIZE
        while size <= ralign // 2:
            ralign //= 2
        align = max(align, ralign)
    align = max(align, ARCH_SLAB_MINALIGN)
    return _align(align, WORD)


def _align(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


@dataclass
class KmemCacheNode:
    """struct kmem_cache_node: the slabs of a cache that are not the cpu slab.

    ``slabs`` maps every slab's head pfn to its order (cpu slab included);
    ``partial`` is the partial list in order (head first), ``full`` the full
    slabs.  nr_partial and nr_slabs are their lengths.
    """

    slabs: dict[int, int] = field(default_factory=dict)
    partial: OrderedDict[int, None] = field(default_factory=OrderedDict)
    full: set[int] = field(default_factory=set)
    total_objects: int = 0

    @property
    def nr_partial(self) -> int:
        return len(self.partial)

    @property
    def nr_slabs(self) -> int:
        return len(self.slabs)


@dataclass(eq=False)
class KmemCache:
    """The host's view of one struct kmem_cache (the guest copy is the truth
    for cpu_slab; everything else is written once at creation).

    ``ctor`` is the guest constructor's address (0 for none); ``host_ctor`` a
    Python callable(addr) for caches made by host code.
    """

    name: str
    object_size: int
    align: int
    flags: int
    ctor: int = 0
    host_ctor: Optional[Callable[[int], object]] = None
    addr: int = 0
    name_ptr: int = 0
    size: int = 0
    offset: int = 0
    inuse: int = 0
    red_left_pad: int = 0
    order: int = 0
    objects: int = 0
    min_order: int = 0
    min_objects: int = 0
    allocflags: int = 0
    min_partial: int = MIN_PARTIAL
    refcount: int = 1
    node: KmemCacheNode = field(default_factory=KmemCacheNode)
    tracks: dict[int, list[Optional[Track]]] = field(default_factory=dict)   # [alloc, free]
    dead: bool = False                             # destroyed (struct freed)
    node_struct: int = 0                           # its struct kmem_cache_node object

    @property
    def cpu(self) -> int:
        """Address of this CPU's struct kmem_cache_cpu."""
        return self.addr + KMC_CPU_DATA

    @property
    def debug(self) -> bool:
        """kmem_cache_debug(): debug caches always take the slow paths."""
        return bool(self.flags & SLAB_DEBUG_CAUSES)

    @property
    def reclaimable(self) -> bool:
        return bool(self.flags & SLAB_RECLAIM_ACCOUNT)

    @property
    def has_ctor(self) -> bool:
        return bool(self.ctor or self.host_ctor)

    def freeptr_outside_object(self) -> bool:
        return self.offset >= self.inuse

    def info_end(self) -> int:
        """get_info_end(): where the tracks start, relative to the object."""
        return self.inuse + WORD if self.freeptr_outside_object() else self.inuse


def calculate_sizes(s: KmemCache) -> bool:
    """calculate_sizes(): object layout, size and slab order; False if none fits.

    Models mm/slub.c:calculate_sizes() of 6.1 (no KASAN, no kmalloc orig_size).
    """
    flags, size = s.flags, _align(s.object_size, WORD)
    if (flags & SLAB_POISON) and not (flags & SLAB_TYPESAFE_BY_RCU) and not s.has_ctor:
        s.flags |= __OBJECT_POISON
    else:
        s.flags &= ~__OBJECT_POISON
    if (flags & SLAB_RED_ZONE) and size == s.object_size:
        size += WORD                   # room for a right red zone
    s.inuse = size
    if ((flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON))
            or ((flags & SLAB_RED_ZONE) and s.object_size < WORD) or s.has_ctor):
        s.offset = size                # the free pointer may not overwrite the object
        size += WORD
    else:
        # Mid-object, away from the edges that small overflows reach.
        s.offset = (s.object_size // 2) & ~(WORD - 1)
    if flags & SLAB_STORE_USER:
        size += 2 * TRACK_SIZE
    s.red_left_pad = 0
    if flags & SLAB_RED_ZONE:
        size += WORD                   # padding that catches writes before an object
        s.red_left_pad = _align(WORD, s.align)
        size += s.red_left_pad
    size = _align(size, s.align)
    s.size = size
    order = calculate_order(size)
    if order < 0:
        return False
    s.allocflags = _GFP_COMP if order else 0
    if s.flags & SLAB_CACHE_DMA:
        s.allocflags |= GFP_DMA
    if s.flags & SLAB_CACHE_DMA32:
        s.allocflags |= GFP_DMA32
    if s.flags & SLAB_RECLAIM_ACCOUNT:
        s.allocflags |= _GFP_RECLAIMABLE
    s.order, s.objects = order, order_objects(order, size)
    s.min_order = get_order(size)
    s.min_objects = order_objects(s.min_order, size)
    s.min_partial = min(MAX_PARTIAL, max(MIN_PARTIAL, (size.bit_length() - 1) // 2))
    return s.objects > 0


class Slub:
    """The SLUB core over guest memory.

    pm: PhysMem; mem_map: MemMap; pages: the page allocator (alloc(gfp, order)
    -> pfn | None, alloc(gfp, order, nid) for a node, free(pfn, order));
    debug: the slub_debug.SlubDebug that checks and reports.  slab_nodes:
    the nodes slabs may come from when a node is asked for (6.1's
    slab_nodes, the nodes with normal memory); None for all.

    Differs: one list of partial and full slabs for all nodes (6.1 keeps a
    kmem_cache_node per node); a request for a node searches it for slabs
    of that node.
    """

    debug: SlubDebug                  # set by SlabAllocator, right after construction

    def __init__(self, pm: PhysMem, mem_map: MemMap, pages: PageSource) -> None:
        self.u32 = pm.u32
        self.u8 = pm.u8
        self.pages = pages
        self.mem_map = mem_map
        # The direct map of RAM: where kernel code can read a pointer it follows.
        mm = getattr(pages, "mm", None)
        low = mm.max_low_pfn << PAGE_SHIFT if mm is not None else len(pm.u8)
        self.lowmem_end = min(low, len(pm.u8))
        self.mm_word = mem_map.phys >> 2
        self.pending_ctor = 0         # first object of a new slab whose ctors must run
        # fn(s, pfn, order, +1 or -1): the accounting hook
        self.on_new_slab: Optional[Callable[[KmemCache, int, int, int], None]] = None
        self.slab_nodes: Optional[set[int]] = None    # nodes with normal memory (None: any)

    # -- guest memory ------------------------------------------------------
    def _pa(self, va: int, n: int, function: str, write: bool = False) -> int:
        """The physical address of [va, va + n) in the direct map; an oops of
        function (Reporter.die(): KernelOops) where the kernel could not go."""
        pa = va - PAGE_OFFSET
        if 0 <= pa and pa + n <= self.lowmem_end:
            return pa
        rep = self.debug.rep if self.debug is not None else None
        if rep is None:
            raise IndexError(f"0x{va & 0xFFFFFFFF:08x} is not in the direct map")
        rep.die(va if pa < 0 or pa >= self.lowmem_end else PAGE_OFFSET + self.lowmem_end,
                function, write)

    def rd(self, va: int, function: str = "___slab_alloc") -> int:
        pa = self._pa(va, 4, function)
        if pa & 3:
            return int.from_bytes(self.u8[pa:pa + 4], "little")
        return self.u32[pa >> 2]

    def wr(self, va: int, value: int, function: str = "___slab_alloc") -> None:
        pa = self._pa(va, 4, function, write=True)
        if pa & 3:
            self.u8[pa:pa + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
        else:
            self.u32[pa >> 2] = value & 0xFFFFFFFF

    def fill(self, va: int, n: int, byte: int) -> None:
        pa = self._pa(va, n, "memset", write=True)
        self.u8[pa:pa + n] = bytes((byte,)) * n

    def read_bytes(self, va: int, n: int) -> bytes:
        pa = self._pa(va, n, "memcpy")
        return bytes(self.u8[pa:pa + n])

    def get_freepointer(self, s: KmemCache, obj: int) -> int:
        return self.rd(obj + s.offset, "get_freepointer")

    def set_freepointer(self, s: KmemCache, obj: int, fp: int) -> None:
        self.wr(obj + s.offset, fp, "set_freepointer")

    # -- struct slab fields in the head struct page -----------------------
    def pw(self, pfn: int, word: int) -> int:
        return self.mm_word + pfn * PAGE_WORDS + word

    def slab_ptr(self, pfn: int) -> int:
        return self.mem_map.virt + pfn * STRUCT_PAGE_SIZE

    def slab_pfn(self, ptr: int) -> int:
        return (ptr - self.mem_map.virt) // STRUCT_PAGE_SIZE

    def page_pfn(self, ptr: int) -> Optional[int]:
        """The pfn of struct page pointer ptr, or None if ptr is not one in mem_map."""
        off = ptr - self.mem_map.virt
        if off % STRUCT_PAGE_SIZE or not 0 <= off < self.mem_map.nr_pages * STRUCT_PAGE_SIZE:
            return None
        return off // STRUCT_PAGE_SIZE

    def cpu_slab(self, s: KmemCache, function: str = "___slab_alloc") -> Optional[int]:
        """c->slab of cache s as a pfn, or None: checked, since the guest can
        write it.  Not a struct page: the oops of reading slab->freelist
        there; a struct page but not one of s's slabs: a BUG with a note."""
        ptr = self.rd(s.cpu + KCC_SLAB)
        if not ptr:
            return None
        pfn = self.page_pfn(ptr)
        if pfn is None and self.debug is not None:
            self.debug.rep.die((ptr + 4 * W_INDEX) & 0xFFFFFFFF, function)
        if pfn not in s.node.slabs and self.debug is not None:
            self.debug.rep.corrupt("mm/slub.c", function, [
                f"mmemu: {s.name}: c->slab 0x{ptr:08x} is not a slab of this cache: the "
                "kmem_cache_cpu in guest memory was overwritten"])
        return pfn

    def slab_freelist(self, pfn: int) -> int:
        return self.u32[self.pw(pfn, W_INDEX)]

    def set_slab_freelist(self, pfn: int, fp: int) -> None:
        self.u32[self.pw(pfn, W_INDEX)] = fp

    def counters(self, pfn: int) -> tuple[int, int, bool]:
        """(inuse, objects, frozen) of a slab."""
        c = self.u32[self.pw(pfn, W_PRIVATE)]
        return (c & SLAB_INUSE_MASK, (c >> SLAB_OBJECTS_SHIFT) & SLAB_OBJECTS_MASK,
                bool(c & SLAB_FROZEN))

    def set_counters(self, pfn: int, inuse: int, objects: int, frozen: bool) -> None:
        self.u32[self.pw(pfn, W_PRIVATE)] = (
            (inuse & SLAB_INUSE_MASK) | ((objects & SLAB_OBJECTS_MASK) << SLAB_OBJECTS_SHIFT)
            | (SLAB_FROZEN if frozen else 0))

    def slab_cache_ptr(self, pfn: int) -> int:
        return self.u32[self.pw(pfn, W_MAPPING)]

    def page_flags(self, pfn: int) -> int:
        return self.u32[self.pw(pfn, W_FLAGS)]

    @staticmethod
    def slab_address(pfn: int) -> int:
        return PAGE_OFFSET + (pfn << PAGE_SHIFT)

    def objects_of(self, s: KmemCache, pfn: int) -> list[int]:
        """Addresses of every object of a slab, in index order."""
        base = self.slab_address(pfn) + s.red_left_pad
        _, objects, _ = self.counters(pfn)
        return [base + i * s.size for i in range(objects)]

    def check_valid_pointer(self, s: KmemCache, pfn: int, obj: int) -> bool:
        """check_valid_pointer(): obj is NULL or the start of one of the slab's objects."""
        if not obj:
            return True
        base = self.slab_address(pfn)
        off = obj - s.red_left_pad - base
        _, objects, _ = self.counters(pfn)
        return 0 <= off < objects * s.size and off % s.size == 0

    # -- struct kmem_cache in guest memory ----------------------------------
    def write_kmem_cache(self, s: KmemCache) -> None:
        """Fill the guest struct kmem_cache at s.addr from the host record."""
        a, w = s.addr, self.wr
        w(a + KMC_CPU_SLAB, s.cpu)
        w(a + KMC_FLAGS, s.flags)
        w(a + KMC_MIN_PARTIAL, s.min_partial)
        w(a + KMC_SIZE, s.size)
        w(a + KMC_OBJECT_SIZE, s.object_size)
        w(a + KMC_OFFSET, s.offset)
        w(a + KMC_OO, (s.order << 16) | s.objects)
        w(a + KMC_MIN, (s.min_order << 16) | s.min_objects)
        w(a + KMC_ALLOCFLAGS, s.allocflags)
        w(a + KMC_REFCOUNT, s.refcount)
        w(a + KMC_CTOR, s.ctor)
        w(a + KMC_INUSE, s.inuse)
        w(a + KMC_ALIGN, s.align)
        w(a + KMC_RED_LEFT_PAD, s.red_left_pad)
        w(a + KMC_NAME, s.name_ptr)
        for off in (KCC_FREELIST, KCC_TID, KCC_SLAB):
            w(s.cpu + off, 0)
        assert KMC_CPU_DATA + 12 == KMEM_CACHE_SIZE

    # -- slabs from the page allocator ------------------------------------
    def new_slab(self, s: KmemCache, flags: int, node: int = NUMA_NO_NODE) -> Optional[int]:
        """new_slab(): a slab with every object free (from node, if given), or None."""
        if flags & GFP_SLAB_BUG_MASK:
            flags = self.debug.kmalloc_fix_flags(flags)
        if s.has_ctor and (flags & _GFP_ZERO):
            self.debug.warn_ctor_zero(s)
        return self.allocate_slab(s, flags & (GFP_RECLAIM_MASK | GFP_CONSTRAINT_MASK), node)

    def alloc_slab_page(self, flags: int, node: int, order: int) -> Optional[int]:
        """alloc_slab_page(): alloc_pages(), or __alloc_pages_node() for a node."""
        if node == NUMA_NO_NODE:
            return self.pages.alloc(flags, order)
        return self.pages.alloc(flags, order, node)

    def allocate_slab(self, s: KmemCache, flags: int, node: int = NUMA_NO_NODE) -> Optional[int]:
        """allocate_slab(): the preferred order without reclaim, then the minimum."""
        flags |= s.allocflags
        alloc_gfp = (flags | _GFP_NOWARN | _GFP_NORETRY) & ~_GFP_NOFAIL
        if (alloc_gfp & _GFP_DIRECT_RECLAIM) and s.order > s.min_order:
            alloc_gfp = (alloc_gfp | _GFP_NOMEMALLOC) & ~_GFP_RECLAIM
        order, objects = s.order, s.objects
        pfn = self.alloc_slab_page(alloc_gfp, node, order)
        if pfn is None and s.min_order != s.order:
            order, objects = s.min_order, s.min_objects
            min_flags = flags if order else flags & ~_GFP_COMP
            pfn = self.alloc_slab_page(min_flags, node, order)
        if pfn is None:
            return None
        self.u32[self.pw(pfn, W_FLAGS)] |= 1 << PG_slab
        self.u32[self.pw(pfn, W_MAPPING)] = s.addr
        self.set_counters(pfn, 0, objects, False)
        self._init_objects(s, pfn, objects, order)
        s.node.slabs[pfn] = order
        s.node.total_objects += objects
        if self.on_new_slab:
            self.on_new_slab(s, pfn, order, +1)
        return pfn

    def _init_objects(self, s: KmemCache, pfn: int, objects: int, order: int) -> None:
        """Chain every object onto the slab's freelist; debug setup; host ctors."""
        base = self.slab_address(pfn) + s.red_left_pad
        if s.flags & SLAB_POISON:
            self.fill(self.slab_address(pfn), PAGE_SIZE << order, POISON_INUSE)
        debug = s.debug
        for i in range(objects):
            obj = base + i * s.size
            if debug:
                self.debug.setup_object_debug(s, obj)
            self.set_freepointer(s, obj, obj + s.size if i + 1 < objects else 0)
            if s.host_ctor:
                s.host_ctor(obj)
        self.set_slab_freelist(pfn, base)
        if s.ctor:
            self.pending_ctor = base

    def discard_slab(self, s: KmemCache, pfn: int) -> None:
        """discard_slab() -> __free_slab(): clear the overlay, give the pages back."""
        if s.flags & SLAB_POISON or s.debug:
            # While the slab still knows its order: a slab made at min_order
            # under pressure is smaller than s.order, and checking (and
            # "restoring") padding past its end would write over the next pages.
            self.debug.slab_pad_check(s, pfn)
        order = s.node.slabs.pop(pfn)
        _, objects, _ = self.counters(pfn)
        s.node.total_objects -= objects
        s.node.partial.pop(pfn, None)
        s.node.full.discard(pfn)
        self.u32[self.pw(pfn, W_FLAGS)] &= ~(1 << PG_slab)
        self.u32[self.pw(pfn, W_MAPPING)] = 0
        self.u32[self.pw(pfn, W_INDEX)] = 0
        self.u32[self.pw(pfn, W_PRIVATE)] = 0
        if self.on_new_slab:
            self.on_new_slab(s, pfn, order, -1)
        self.pages.free(pfn, order)

    # -- lists ------------------------------------------------------------------
    def add_partial(self, s: KmemCache, pfn: int, tail: bool) -> None:
        s.node.full.discard(pfn)
        s.node.partial[pfn] = None
        if not tail:
            s.node.partial.move_to_end(pfn, last=False)

    def add_full(self, s: KmemCache, pfn: int) -> None:
        s.node.partial.pop(pfn, None)
        s.node.full.add(pfn)

    # -- the cpu slab --------------------------------------------------------
    def get_freelist(self, s: KmemCache, pfn: int) -> int:
        """get_freelist(): take the cpu slab's slab->freelist (remote frees)."""
        freelist = self.slab_freelist(pfn)
        _, objects, _ = self.counters(pfn)
        self.set_slab_freelist(pfn, 0)
        self.set_counters(pfn, objects, objects, freelist != 0)
        return freelist

    def acquire_slab(self, s: KmemCache, pfn: int) -> int:
        """acquire_slab(): freeze a partial slab and take its whole freelist."""
        del s.node.partial[pfn]
        freelist = self.slab_freelist(pfn)
        _, objects, _ = self.counters(pfn)
        self.set_slab_freelist(pfn, 0)
        self.set_counters(pfn, objects, objects, True)
        return freelist

    def deactivate_slab(self, s: KmemCache, pfn: int, freelist: int) -> None:
        """deactivate_slab(): give a frozen slab's free objects back and unfreeze it.

        freelist is a chain of this slab's objects (the cpu freelist, or what
        is left of a debug slab's after its first object went out).
        """
        prior = self.slab_freelist(pfn)
        inuse, objects, _ = self.counters(pfn)
        count, tail, obj = 0, 0, freelist
        while obj and count <= objects:
            count, tail = count + 1, obj
            obj = self.get_freepointer(s, obj)
        if tail:
            self.set_freepointer(s, tail, prior)
            prior = freelist
        inuse -= count
        self.set_slab_freelist(pfn, prior)
        self.set_counters(pfn, inuse, objects, False)
        if inuse == 0 and s.node.nr_partial >= s.min_partial:
            self.discard_slab(s, pfn)
        elif prior:
            self.add_partial(s, pfn, tail=bool(tail))
        else:
            self.add_full(s, pfn)

    def flush_cpu_slab(self, s: KmemCache) -> None:
        """flush_slab(): deactivate this CPU's slab, if it has one."""
        c = s.cpu
        pfn = self.cpu_slab(s, "flush_slab")
        if pfn is None:
            return
        freelist = self.rd(c + KCC_FREELIST)
        self.wr(c + KCC_SLAB, 0)
        self.wr(c + KCC_FREELIST, 0)
        self.wr(c + KCC_TID, self.rd(c + KCC_TID) + 1)
        self.deactivate_slab(s, pfn, freelist)

    def cpu_slab_pfn(self, s: KmemCache) -> Optional[int]:
        return self.cpu_slab(s)

    def slab_nid(self, pfn: int) -> int:
        """slab_nid(): the node of a slab's pages."""
        return (self.u32[self.pw(pfn, W_FLAGS)] >> NODES_PGSHIFT) & NODES_MASK

    # -- allocation ------------------------------------------------------------
    def slab_alloc(self, s: KmemCache, flags: int, caller: Caller) -> Optional[int]:
        """slab_alloc_node(): the lockless fast path, else ___slab_alloc()."""
        c = s.cpu
        obj = self.rd(c + KCC_FREELIST)
        if obj:
            self.wr(c + KCC_FREELIST, self.get_freepointer(s, obj))
            self.wr(c + KCC_TID, self.rd(c + KCC_TID) + 1)
            return obj
        return self.___slab_alloc(s, flags, caller)

    def slab_alloc_node(self, s: KmemCache, flags: int, caller: Caller, node: int) -> Optional[int]:
        """slab_alloc_node() for a node: the cpu slab serves only if it is on node.

        A node without normal memory (not in slab_nodes) or NUMA_NO_NODE
        means any node, as in 6.1.  A cpu slab on another node is
        deactivated (node_match() fails), and the object comes from a
        partial slab of node, else a new slab allocated there (which the
        page allocator may still place elsewhere when node is full).
        """
        if node != NUMA_NO_NODE and self.slab_nodes is not None and node not in self.slab_nodes:
            node = NUMA_NO_NODE
        if node == NUMA_NO_NODE:
            return self.slab_alloc(s, flags, caller)
        pfn = self.cpu_slab_pfn(s)
        if pfn is not None and self.slab_nid(pfn) != node:
            self.flush_cpu_slab(s)                      # ALLOC_NODE_MISMATCH
        obj = self.rd(s.cpu + KCC_FREELIST)
        if obj:
            self.wr(s.cpu + KCC_FREELIST, self.get_freepointer(s, obj))
            self.wr(s.cpu + KCC_TID, self.rd(s.cpu + KCC_TID) + 1)
            return obj
        return self.___slab_alloc(s, flags, caller, node)

    def ___slab_alloc(self, s: KmemCache, flags: int, caller: Caller,
                      node: int = NUMA_NO_NODE) -> Optional[int]:
        """___slab_alloc(): refill the cpu freelist from the cpu slab, a partial
        slab or a new one.  Debug caches hand out one object and keep no cpu slab."""
        c = s.cpu
        pfn = self.cpu_slab(s)
        if pfn is not None:
            freelist = self.get_freelist(s, pfn)
            if freelist:
                return self._load_freelist(s, pfn, freelist)
            self.wr(c + KCC_SLAB, 0)
            self.wr(c + KCC_TID, self.rd(c + KCC_TID) + 1)
            self.add_full(s, pfn)           # DEACTIVATE_BYPASS: full, on no list in Linux
        while True:
            pfn, freelist = self._get_slab(s, flags, node)
            if pfn is None:
                self.debug.slab_out_of_memory(s, flags)
                return None
            if not s.debug:
                return self._load_freelist(s, pfn, freelist)
            if self.debug.alloc_debug_processing(s, pfn, freelist, caller):
                self.deactivate_slab(s, pfn, self.get_freepointer(s, freelist))
                return freelist
            # The slab failed its checks: its objects are lost ("Marking all
            # objects used"); unfrozen on the full list so the books balance.
            self.set_counters(pfn, self.counters(pfn)[1], self.counters(pfn)[1], False)
            self.set_slab_freelist(pfn, 0)
            self.add_full(s, pfn)

    def _get_slab(self, s: KmemCache, flags: int,
                  node: int = NUMA_NO_NODE) -> tuple[Optional[int], int]:
        """get_partial(), else new_slab(): a frozen slab and its freelist."""
        pfn = self._get_partial(s, node)
        if pfn is not None:
            return pfn, self.acquire_slab(s, pfn)
        pfn = self.new_slab(s, flags, node)
        if pfn is None:
            return None, 0
        freelist = self.slab_freelist(pfn)
        _, objects, _ = self.counters(pfn)
        self.set_slab_freelist(pfn, 0)
        self.set_counters(pfn, objects, objects, True)
        return pfn, freelist

    def _get_partial(self, s: KmemCache, node: int) -> Optional[int]:
        """get_partial(): the first partial slab (of node, when one is asked for), or None."""
        if node == NUMA_NO_NODE:
            return next(iter(s.node.partial), None)
        return next((pfn for pfn in s.node.partial if self.slab_nid(pfn) == node), None)

    def _load_freelist(self, s: KmemCache, pfn: int, freelist: int) -> int:
        c = s.cpu
        self.wr(c + KCC_SLAB, self.slab_ptr(pfn))
        self.wr(c + KCC_FREELIST, self.get_freepointer(s, freelist))
        self.wr(c + KCC_TID, self.rd(c + KCC_TID) + 1)
        return freelist

    # -- freeing -------------------------------------------------------------
    def slab_free(self, s: KmemCache, pfn: int, obj: int, caller: Caller) -> bool:
        """do_slab_free(): push onto the cpu freelist when obj is in the cpu slab.

        Returns False when the free was refused (reported).  A page that
        says it is a slab of s (PG_slab, slab_cache) but is none of s's
        slabs was made so in guest memory: a BUG with a note (KernelOops).
        """
        c = s.cpu
        if pfn not in s.node.slabs and self.debug is not None:
            self.debug.rep.corrupt("mm/slub.c", "slab_free", [
                f"mmemu: {s.name}: 0x{obj:08x} is in a page marked as a slab of this cache "
                f"(pfn {pfn:#x}), which is none of its slabs: its struct page was overwritten "
                "in guest memory"])
        if self.rd(c + KCC_SLAB) == self.slab_ptr(pfn):
            if not self.check_valid_pointer(s, pfn, obj):
                self.debug.invalid_pointer(s, pfn, obj)
                return False
            head = self.rd(c + KCC_FREELIST)
            if obj == head:
                self.debug.naive_double_free(s, obj, caller)
                return False
            self.set_freepointer(s, obj, head)
            self.wr(c + KCC_FREELIST, obj)
            self.wr(c + KCC_TID, self.rd(c + KCC_TID) + 1)
            return True
        return self.__slab_free(s, pfn, obj, caller)

    def __slab_free(self, s: KmemCache, pfn: int, obj: int, caller: Caller) -> bool:
        """__slab_free(): the slow path; fixes the lists as the slab fills or empties."""
        if s.debug:
            if not self.debug.free_debug_processing(s, pfn, obj, caller):
                return False
        elif not self.debug.free_sanity(s, pfn, obj, caller):
            return False
        prior = self.slab_freelist(pfn)
        inuse, objects, frozen = self.counters(pfn)
        self.set_freepointer(s, obj, prior)
        self.set_slab_freelist(pfn, obj)
        inuse -= 1
        self.set_counters(pfn, inuse, objects, frozen)
        if frozen:
            return True
        if inuse == 0 and s.node.nr_partial >= s.min_partial:
            self.discard_slab(s, pfn)
        elif not prior:
            self.add_partial(s, pfn, tail=True)
        return True

    # -- shrinking -------------------------------------------------------------
    def discard_empty_partials(self, s: KmemCache) -> int:
        """Free every empty slab on the partial list: the pages freed."""
        freed = 0
        for pfn in [p for p in s.node.partial if self.counters(p)[0] == 0]:
            freed += 1 << s.node.slabs[pfn]
            self.discard_slab(s, pfn)
        return freed

    def kmem_cache_shrink(self, s: KmemCache) -> int:
        """__kmem_cache_shrink(): flush the cpu slab, free empty slabs, sort the
        partial list fullest first; 1 if slabs remain, else 0."""
        self.flush_cpu_slab(s)
        self.discard_empty_partials(s)
        order = sorted(s.node.partial, key=lambda p: -self.counters(p)[0])
        s.node.partial = OrderedDict((p, None) for p in order)
        return 1 if s.node.slabs else 0
