"""kmalloc and the slab cache registry: what mm/slab_common.c does for SLUB.

Models mm/slab_common.c of Linux 6.1: kmem_cache_create()/destroy() and the
slab_caches list, the kmalloc caches (kmalloc_info, size_index,
kmalloc_type(), kmalloc_slab(), create_kmalloc_caches()), kmalloc(),
kmalloc_large() and free_large_kmalloc(), kfree(), __ksize(), krealloc(),
and get_slabinfo().  The boot cache "kmem_cache" holds every struct
kmem_cache (kmem_cache_init()'s bootstrap()).

Every entry point takes an optional ``caller``: a callable giving the
symbol Linux would print for _RET_IP_ (the hypercall layer passes the guest
caller); host callers default to the Python function that called in.
"""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Union

from mmemu.errors import UsageError
from mmemu.kernel.panic import Reporter, host_caller
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE
from mmemu.log import KERN_WARNING
from mmemu.mm import page_alloc
from mmemu.mm.gfp import (
    GFP_KERNEL, _GFP_ACCOUNT, _GFP_COMP, _GFP_DIRECT_RECLAIM, _GFP_DMA, _GFP_NOWARN,
    _GFP_RECLAIMABLE, _GFP_ZERO,
)
from mmemu.mm.mmzone import PG_head, PG_slab, W_FLAGS, W_NEXT, MemMap
from mmemu.mm.page_alloc import MmState
from mmemu.mm.slab import (
    KMC_REFCOUNT, KMEM_CACHE_NODE_SIZE, KMEM_CACHE_OBJECT_SIZE, KMEM_CACHE_SIZE, SLAB_ACCOUNT,
    SLAB_CACHE_DMA, SLAB_FLAGS_PERMITTED, SLAB_HWCACHE_ALIGN,
    SLAB_KMALLOC, SLAB_PANIC, SLAB_RECLAIM_ACCOUNT, ZERO_SIZE_PTR,
)
from mmemu.mm.slub import (
    GFP_SLAB_BUG_MASK, MAX_ORDER, NUMA_NO_NODE, Caller, KmemCache, PageSource, Slub,
    calculate_alignment, calculate_sizes, get_order,
)
from mmemu.mm.slub_debug import SlubDebug, kmem_cache_flags, parse_slub_debug
from mmemu.physmem import PhysMem

# A cache as the API takes it: the KmemCache, or its struct kmem_cache's address.
CacheRef = Union[KmemCache, int]

KMALLOC_SHIFT_LOW = 3
KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1            # kmalloc-8k is the largest cache
KMALLOC_MAX_CACHE_SIZE = 1 << KMALLOC_SHIFT_HIGH
KMALLOC_MAX_SIZE = 1 << (MAX_ORDER + PAGE_SHIFT - 1)    # 4 MiB
KMALLOC_MIN_SIZE = 1 << KMALLOC_SHIFT_LOW
ARCH_KMALLOC_MINALIGN = 8

# enum kmalloc_cache_type (ZONE_DMA and MEMCG_KMEM on)
KMALLOC_NORMAL, KMALLOC_CGROUP, KMALLOC_RECLAIM, KMALLOC_DMA = range(4)
NR_KMALLOC_TYPES = 4
KMALLOC_PREFIXES = ("kmalloc-", "kmalloc-cg-", "kmalloc-rcl-", "dma-kmalloc-")
KMALLOC_TYPE_FLAGS = (0, SLAB_ACCOUNT, SLAB_RECLAIM_ACCOUNT, SLAB_CACHE_DMA)

# kmalloc_info[]: index -> (size, name suffix); index 1 and 2 are 96 and 192.
KMALLOC_INFO = {1: (96, "96"), 2: (192, "192"), 3: (8, "8"), 4: (16, "16"), 5: (32, "32"),
                6: (64, "64"), 7: (128, "128"), 8: (256, "256"), 9: (512, "512"),
                10: (1024, "1k"), 11: (2048, "2k"), 12: (4096, "4k"), 13: (8192, "8k")}
# size_index[(size - 1) / 8] for sizes up to 192 (KMALLOC_MIN_SIZE 8).
SIZE_INDEX = (3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2)
KMALLOC_NOT_NORMAL_BITS = _GFP_RECLAIMABLE | _GFP_DMA | _GFP_ACCOUNT

# The slab boot page: the kmalloc table, the static kmem_cache, the static names.
BOOT_KMALLOC_TABLE = 0
BOOT_KMEM_CACHE = 256
BOOT_KMEM_CACHE_NODE = 384
BOOT_NAMES = 512


def kmalloc_index(size: int) -> int:
    """kmalloc_index(): the kmalloc_caches column for a size (0 for 0)."""
    if size == 0:
        return 0
    if size <= 192:
        return SIZE_INDEX[(size - 1) // 8]
    return (size - 1).bit_length()


def kmalloc_type(flags: int) -> int:
    """kmalloc_type(): __GFP_DMA first, then __GFP_RECLAIMABLE, then __GFP_ACCOUNT."""
    if not flags & KMALLOC_NOT_NORMAL_BITS:
        return KMALLOC_NORMAL
    if flags & _GFP_DMA:
        return KMALLOC_DMA
    if flags & _GFP_RECLAIMABLE:
        return KMALLOC_RECLAIM
    return KMALLOC_CGROUP


@dataclass
class SlabInfo:
    """struct slabinfo of one cache (get_slabinfo()), as /proc/slabinfo shows it."""

    name: str
    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    active_slabs: int
    num_slabs: int


class MachinePages:
    """The page allocator of a booted machine (its MmState), as the slab allocator uses it."""

    def __init__(self, mm: MmState) -> None:
        self.mm = mm
        self.page_alloc = page_alloc

    def alloc(self, gfp: int, order: int, nid: Optional[int] = None) -> Optional[int]:
        pfn = self.page_alloc.alloc_pages(self.mm, gfp, order, nid)
        if pfn is not None and not order:
            # A slab page: a stray __free_pages() of it must be checked, and refused.
            self.page_alloc.checked_free_only(self.mm, pfn)
        return pfn

    def free(self, pfn: int, order: int) -> None:
        self.page_alloc._free_pages(self.mm, pfn, order)

    def register_shrinker(self, fn: Callable[[], int]) -> None:
        self.page_alloc.register_shrinker(self.mm, fn)


class SlabAllocator:
    """The slab allocator of one machine: caches, kmalloc, reclaim, accounting.

    pm: PhysMem; mem_map: MemMap; pages: alloc(gfp, order) -> pfn | None,
    free(pfn, order), register_shrinker(fn); reporter: the machine's Reporter (kernel/panic.py);
    slub_debug: the slub_debug= string ("FZPU", "FZ,kmalloc-64", ...).
    """

    kmem_cache: KmemCache                # the boot caches, made by _bootstrap_kmem_cache()
    kmem_cache_node: KmemCache

    def __init__(self, pm: PhysMem, mem_map: MemMap, pages: PageSource, reporter: Reporter,
                 slub_debug: Optional[str] = None) -> None:
        self.pm = pm
        self.pages = pages
        self.rep = reporter
        self.slub = Slub(pm, mem_map, pages)
        self.debug = SlubDebug(self.slub, reporter)
        self.slub.debug = self.debug
        self.slub.on_new_slab = self._account_slab
        self.slub_debug = parse_slub_debug(slub_debug)
        self.caches: list[KmemCache] = []          # slab_caches, oldest first
        self.by_addr: dict[int, KmemCache] = {}    # struct kmem_cache * -> KmemCache
        self.kmalloc_caches: list[list[Optional[KmemCache]]] = [
            [None] * (KMALLOC_SHIFT_HIGH + 1) for _ in range(NR_KMALLOC_TYPES)]
        self.large: dict[int, int] = {}            # pfn -> order of kmalloc_large() blocks
        self.nr_slab_pages = [0, 0]    # unreclaimable, reclaimable slab pages
        self.boot_page = self._alloc_boot_page()
        self._names_end = self.boot_page + BOOT_NAMES
        self._bootstrap_kmem_cache()         # kmem_cache and kmem_cache_node
        self.create_kmalloc_caches()
        if hasattr(pages, "register_shrinker"):
            pages.register_shrinker(self.shrink_slabs)

    # -- boot ------------------------------------------------------------------
    def _alloc_boot_page(self) -> int:
        pfn = self.pages.alloc(GFP_KERNEL | _GFP_ZERO, 0)
        if pfn is None:
            raise MemoryError("slab: no page for the boot data")
        va = PAGE_OFFSET + (pfn << PAGE_SHIFT)
        self.pm.u8[va - PAGE_OFFSET:va - PAGE_OFFSET + PAGE_SIZE] = bytes(PAGE_SIZE)
        return va

    def _static_name(self, name: str) -> int:
        """A name in the boot page, as a C string literal in the kernel's rodata."""
        raw = name.encode() + b"\0"
        va = self._names_end
        if va + len(raw) > self.boot_page + PAGE_SIZE:
            raise MemoryError("slab: boot page full of names")
        pa = va - PAGE_OFFSET
        self.pm.u8[pa:pa + len(raw)] = raw
        self._names_end += (len(raw) + 3) & ~3
        return va

    def _bootstrap_kmem_cache(self) -> None:
        """kmem_cache_init(): the caches of struct kmem_cache_node and struct
        kmem_cache, each struct moved from its static copy into a kmem_cache
        object (bootstrap()), and each cache's node struct from kmem_cache_node."""
        self.kmem_cache_node = self._boot_cache("kmem_cache_node", KMEM_CACHE_NODE_SIZE,
                                                BOOT_KMEM_CACHE_NODE)
        self.kmem_cache = self._boot_cache("kmem_cache", KMEM_CACHE_OBJECT_SIZE,
                                           BOOT_KMEM_CACHE)
        for s in (self.kmem_cache, self.kmem_cache_node):
            obj = self.slub.slab_alloc(self.kmem_cache, GFP_KERNEL, lambda: "kmem_cache_init")
            if obj is None:
                raise MemoryError("slab: cannot allocate the kmem_cache cache")
            self._bootstrap(s, obj)
            self._register(s)
            self._alloc_node_struct(s)

    def _boot_cache(self, name: str, size: int, offset: int) -> KmemCache:
        """create_boot_cache(): a cache whose struct is static, in the boot page."""
        s = KmemCache(name, size, 0, kmem_cache_flags(SLAB_HWCACHE_ALIGN, name, self.slub_debug))
        s.align = calculate_alignment(s.flags, ARCH_KMALLOC_MINALIGN, s.object_size)
        calculate_sizes(s)
        s.addr = self.boot_page + offset
        s.name_ptr = self._static_name(s.name)
        self.slub.write_kmem_cache(s)
        return s

    def _alloc_node_struct(self, s: KmemCache) -> None:
        """init_kmem_cache_nodes(): the cache's struct kmem_cache_node, from its cache
        (mmemu keeps the node's lists on the host; the object holds its place)."""
        s.node_struct = self.slub.slab_alloc(self.kmem_cache_node, GFP_KERNEL,
                                             lambda: "init_kmem_cache_nodes") or 0

    def _bootstrap(self, s: KmemCache, new_addr: int) -> None:
        """bootstrap(): copy the static struct into its object; repoint the slabs."""
        old = s.addr
        data = self.slub.read_bytes(old, KMEM_CACHE_SIZE)
        pa = new_addr - PAGE_OFFSET
        self.pm.u8[pa:pa + KMEM_CACHE_SIZE] = data
        s.addr = new_addr
        self.slub.wr(new_addr, s.cpu)          # cpu_slab moved with the struct
        for pfn in s.node.slabs:
            self.pm.u32[self.slub.pw(pfn, 3)] = new_addr
        self.slub.fill(old, KMEM_CACHE_SIZE, 0)

    def create_kmalloc_caches(self) -> None:
        """create_kmalloc_caches(): every type's caches, 96 after 64, 192 after 128."""
        for ktype in range(NR_KMALLOC_TYPES):
            for i in range(KMALLOC_SHIFT_LOW, KMALLOC_SHIFT_HIGH + 1):
                self._new_kmalloc_cache(i, ktype)
                if i == 6:
                    self._new_kmalloc_cache(1, ktype)
                if i == 7:
                    self._new_kmalloc_cache(2, ktype)
        self._write_kmalloc_table()

    def _new_kmalloc_cache(self, idx: int, ktype: int) -> None:
        size, suffix = KMALLOC_INFO[idx]
        name = KMALLOC_PREFIXES[ktype] + suffix
        flags = SLAB_KMALLOC | KMALLOC_TYPE_FLAGS[ktype]
        align = ARCH_KMALLOC_MINALIGN
        if size & (size - 1) == 0:
            align = max(align, size)           # natural alignment for power-of-two sizes
        s = self._create_cache(name, self._static_name(name), size, align, flags)
        if s is None:
            raise MemoryError(f"slab: cannot create {name}")
        self.kmalloc_caches[ktype][idx] = s

    @property
    def kmalloc_table(self) -> int:
        """The guest address of kmalloc_caches[][] (machine.py tells the guest,
        in the boot information's "kmalloc_caches" word)."""
        return self.boot_page + BOOT_KMALLOC_TABLE

    def _write_kmalloc_table(self) -> None:
        base = (self.boot_page + BOOT_KMALLOC_TABLE - PAGE_OFFSET) >> 2
        cols = KMALLOC_SHIFT_HIGH + 1
        for t, row in enumerate(self.kmalloc_caches):
            for i, s in enumerate(row):
                self.pm.u32[base + t * cols + i] = s.addr if s else 0

    # -- the cache registry --------------------------------------------------
    def _register(self, s: KmemCache) -> None:
        self.caches.append(s)
        self.by_addr[s.addr] = s

    def _create_cache(self, name: str, name_ptr: int, size: int, align: int, flags: int,
                      ctor: int = 0, host_ctor: Optional[Callable[[int],
                      object]] = None) -> Optional[KmemCache]:
        """create_cache(): a struct kmem_cache from the kmem_cache cache, opened."""
        flags = kmem_cache_flags(flags, name, self.slub_debug)
        s = KmemCache(name, size, 0, flags, ctor=ctor, host_ctor=host_ctor, name_ptr=name_ptr)
        s.align = calculate_alignment(flags, align, size)
        if not calculate_sizes(s):
            return None
        addr = self.slub.slab_alloc(self.kmem_cache, GFP_KERNEL, lambda: "create_cache")
        if addr is None:
            return None
        s.addr = addr
        self.slub.write_kmem_cache(s)
        self._register(s)
        self._alloc_node_struct(s)
        return s

    def cache_at(self, addr: int) -> Optional[KmemCache]:
        """The live cache whose struct kmem_cache is at addr, or None."""
        return self.by_addr.get(addr)

    def find_cache(self, name: str) -> Optional[KmemCache]:
        """The newest live cache of that name, or None."""
        for s in reversed(self.caches):
            if s.name == name:
                return s
        return None

    def _cache(self, s: CacheRef) -> Optional[KmemCache]:
        return self.by_addr.get(s) if isinstance(s, int) else s

    def _live_cache(self, s: CacheRef, what: str) -> KmemCache:
        """The KmemCache s names (a KmemCache or its address); a UsageError
        for anything else, since a host caller cannot be oopsed."""
        cache = self._cache(s)
        if cache is None or getattr(cache, "dead", False):
            raise UsageError(f"{what}: {s!r} is not a live kmem_cache"[:120])
        return cache

    def kmem_cache_create(self, name: str, size: int, align: int = 0, flags: int = 0,
                          ctor: Union[int, Callable[[int], object], None] = None,
                          caller: Optional[Caller] = None) -> Optional[KmemCache]:
        """kmem_cache_create(): a new cache, or None (with the kernel's warning).

        ctor: a guest function address (int) or a Python callable(addr).
        name must be a str (UsageError); size, align and flags are taken as
        the C call's unsigned ints.
        """
        if not isinstance(name, str):
            raise UsageError(f"kmem_cache_create: the name must be a string, not "
                             f"{type(name).__name__}")
        size, align, flags = size & 0xFFFFFFFF, align & 0xFFFFFFFF, flags & 0xFFFFFFFF
        err = 0
        if not name or size == 0 or size > KMALLOC_MAX_SIZE or flags & ~SLAB_FLAGS_PERMITTED:
            err = -22
        s = None
        if not err:
            name_ptr = self._kstrdup(name)
            s = None if name_ptr is None else self._create_cache(
                name, name_ptr, size, align, flags,
                ctor=ctor if isinstance(ctor, int) else 0,
                host_ctor=ctor if callable(ctor) else None)
            if s is None:
                err = -12
                if name_ptr:
                    self.kfree(name_ptr)
        if err:
            self._create_failed(name, flags, err)
        return s

    def _create_failed(self, name: str, flags: int, err: int) -> None:
        if flags & SLAB_PANIC:
            self.rep.panic(f"kmem_cache_create: Failed to create slab '{name}'. Error {err}")
        else:
            self.rep.log.printk(f"kmem_cache_create({name}) failed with error {err}", KERN_WARNING)

    def _kstrdup(self, name: str) -> Optional[int]:
        raw = name.encode() + b"\0"
        va = self.kmalloc(len(raw), GFP_KERNEL, caller=lambda: "kmem_cache_create")
        if va:
            pa = va - PAGE_OFFSET
            self.pm.u8[pa:pa + len(raw)] = raw
        return va

    def kmem_cache_destroy(self, s: CacheRef, caller: Optional[Callable[[], str]] = None) -> None:
        """kmem_cache_destroy(): free the cache, or warn and keep it if objects remain."""
        cache = self._cache(s)
        if cache is None or cache.dead:
            return
        cache.refcount -= 1
        self.slub.wr(cache.addr + KMC_REFCOUNT, cache.refcount)
        if cache.refcount > 0:
            return
        if self._kmem_cache_shutdown(cache):
            where = (caller or host_caller)()
            self.debug.warn_block(
                "kmem_cache_destroy",
                f"kmem_cache_destroy {cache.name}: Slab cache still has objects when called "
                f"from {where}")
            return
        self.caches.remove(cache)
        del self.by_addr[cache.addr]
        cache.dead = True
        self.kfree(cache.name_ptr)
        node_struct = cache.node_struct
        if node_struct:             # kmem_cache_free(): virt_to_cache()'s checks first
            self.kmem_cache_free(self.kmem_cache_node, node_struct, lambda: "kmem_cache_destroy")
        self.kmem_cache_free(self.kmem_cache, cache.addr, lambda: "kmem_cache_destroy")

    def _kmem_cache_shutdown(self, s: KmemCache) -> bool:
        """__kmem_cache_shutdown(): flush, free empty slabs, report the rest; busy?"""
        self.slub.flush_cpu_slab(s)
        for pfn in list(s.node.partial):
            if self.slub.counters(pfn)[0] == 0:
                self.slub.discard_slab(s, pfn)
            else:
                self.debug.list_slab_objects(
                    s, pfn, f"Objects remaining in {s.name} on __kmem_cache_shutdown()")
        self.debug.flush()
        return bool(s.node.slabs)

    def kmem_cache_shrink(self, s: CacheRef) -> int:
        """kmem_cache_shrink(): 1 if slabs remain in use, else 0."""
        cache = self._cache(s)
        return self.slub.kmem_cache_shrink(cache) if cache else 0

    def kmem_cache_validate(self, s: CacheRef) -> int:
        """validate_slab_cache() (`slabinfo -v`): the number of errors found."""
        cache = self._cache(s)
        return self.debug.validate_slab_cache(cache) if cache else 0

    # -- kmem_cache_alloc / free -------------------------------------------
    def slab_alloc(self, s: KmemCache, flags: int, caller: Optional[Caller] = None,
                   node: int = NUMA_NO_NODE) -> Optional[int]:
        """slab_alloc_node() without the zeroing; sets slub.pending_ctor for guest ctors."""
        if node == NUMA_NO_NODE:
            return self.slub.slab_alloc(s, flags, caller or host_caller)
        return self.slub.slab_alloc_node(s, flags, caller or host_caller, node)

    def might_alloc(self, flags: int) -> None:
        """slab_pre_alloc_hook()'s might_alloc() for a call from the host (the
        guest's own calls checked in guest/lib/slab.c): the page allocator's hook."""
        mm = getattr(self.pages, "mm", None)
        if mm is not None and flags & _GFP_DIRECT_RECLAIM:
            mm.might_alloc(flags)

    def kmem_cache_alloc(self, s: CacheRef, flags: int = GFP_KERNEL,
                         caller: Optional[Caller] = None) -> Optional[int]:
        """kmem_cache_alloc(): an object, or None.  s not a live cache: UsageError."""
        s = self._live_cache(s, "kmem_cache_alloc")
        flags &= 0xFFFFFFFF                       # gfp_t, as a C caller passes it
        self.might_alloc(flags)
        obj = self.slab_alloc(s, flags, caller)
        if self.slub.pending_ctor:
            self.slub.pending_ctor = 0
            self.rep.log.printk(f"mmemu: {s.name}: a new slab's objects were not constructed: "
                                "its constructor is guest code and this call came from the host",
                                KERN_WARNING)
        if obj and flags & _GFP_ZERO:
            self.slub.fill(obj, s.object_size, 0)
        return obj

    def kmem_cache_free(self, s: CacheRef, x: int, caller: Optional[Caller] = None) -> None:
        """kmem_cache_free(): cache_from_obj() checks, then slab_free()."""
        cache = self._cache(s)
        if not x or cache is None:
            return
        pfn = self._slab_of(x)
        if pfn is None:
            self.debug.warn_block("virt_to_cache", "virt_to_cache: Object is not a Slab page!")
            return
        real = self.by_addr.get(self.slub.slab_cache_ptr(pfn))
        if real is not cache:
            self.debug.print_tracking(real, x) if real else None
            self.debug.warn_block(
                "cache_from_obj",
                f"cache_from_obj: Wrong slab cache. {cache.name} but object is from "
                f"{real.name if real else '?'}")
            if real is None:
                return
        self.slub.slab_free(real, pfn, x, caller or host_caller)

    def _slab_of(self, x: int) -> Optional[int]:
        """virt_to_slab(): the head pfn of the slab holding x, or None."""
        pfn = self._compound_head(x)
        if pfn is None or not self.pm.u32[self.slub.pw(pfn, W_FLAGS)] & (1 << PG_slab):
            return None
        return pfn

    def _compound_head(self, x: int) -> Optional[int]:
        """virt_to_folio(): the head pfn of the page holding lowmem address x."""
        if not PAGE_OFFSET <= x < PAGE_OFFSET + self.pm.size:
            return None
        pfn = (x - PAGE_OFFSET) >> PAGE_SHIFT
        if pfn >= self.slub.mem_map.nr_pages:
            return None
        head = self.pm.u32[self.slub.pw(pfn, W_NEXT)]
        if head & 1:
            hp = self.slub.page_pfn(head - 1)
            if hp is None:      # compound_head() in guest memory points nowhere: folio->flags
                self.rep.die(head - 1, "virt_to_folio")
            return hp
        return pfn

    # -- kmalloc -------------------------------------------------------------
    def kmalloc_slab(self, size: int, flags: int) -> Optional[KmemCache]:
        """kmalloc_slab(): the cache for a size and gfp mask (None for size 0)."""
        idx = kmalloc_index(size)
        return self.kmalloc_caches[kmalloc_type(flags)][idx] if idx else None

    def kmalloc(self, size: int, flags: int = GFP_KERNEL, caller: Optional[Caller] = None,
                node: int = NUMA_NO_NODE) -> Optional[int]:
        """kmalloc() (kmalloc_node() with node): a guest virtual address,
        ZERO_SIZE_PTR for 0, or None.

        size and flags are taken as the C call takes them (size_t, gfp_t:
        32 bits, so -5 is 0xfffffffb: too big, 6.1's WARN and NULL)."""
        size, flags = size & 0xFFFFFFFF, flags & 0xFFFFFFFF
        if size > KMALLOC_MAX_CACHE_SIZE:
            return self.kmalloc_large(size, flags, caller, node)
        s = self.kmalloc_slab(size, flags)
        if s is None:
            return ZERO_SIZE_PTR
        self.might_alloc(flags)
        obj = self.slab_alloc(s, flags, caller, node)
        if obj and flags & _GFP_ZERO:
            self.slub.fill(obj, s.object_size, 0)
        return obj

    def kzalloc(self, size: int, flags: int = GFP_KERNEL,
                caller: Optional[Caller] = None) -> Optional[int]:
        return self.kmalloc(size, flags | _GFP_ZERO, caller)

    def kmalloc_array(self, n: int, size: int, flags: int = GFP_KERNEL,
                      caller: Optional[Caller] = None) -> Optional[int]:
        """kmalloc_array(): None when n * size overflows size_t (32 bits)."""
        n, size = n & 0xFFFFFFFF, size & 0xFFFFFFFF
        if n * size > 0xFFFFFFFF:
            return None
        return self.kmalloc(n * size, flags, caller)

    def kcalloc(self, n: int, size: int, flags: int = GFP_KERNEL,
                caller: Optional[Caller] = None) -> Optional[int]:
        return self.kmalloc_array(n, size, flags | _GFP_ZERO, caller)

    def kmalloc_large(self, size: int, flags: int, caller: Optional[Caller] = None,
                      node: int = NUMA_NO_NODE) -> Optional[int]:
        """kmalloc_large() (kmalloc_large_node() with node): a compound page
        block from the buddy allocator."""
        order = get_order(size)
        if order >= MAX_ORDER:
            if not flags & _GFP_NOWARN:
                self.debug.warn_block("__alloc_pages", None,
                                      [f"mmemu: WARN_ON_ONCE_GFP(order >= MAX_ORDER): kmalloc({size}) "
                                       f"is above KMALLOC_MAX_SIZE ({KMALLOC_MAX_SIZE})"])
            return None
        if flags & GFP_SLAB_BUG_MASK:
            flags = self.debug.kmalloc_fix_flags(flags)
        if node == NUMA_NO_NODE:
            pfn = self.pages.alloc(flags | _GFP_COMP, order)
        else:
            pfn = self.pages.alloc(flags | _GFP_COMP, order, node)
        if pfn is None:
            return None
        self.large[pfn] = order
        return PAGE_OFFSET + (pfn << PAGE_SHIFT)

    def kfree(self, x: int, caller: Optional[Caller] = None) -> None:
        """kfree(): NULL and ZERO_SIZE_PTR are no-ops; slab objects go back to
        their cache, compound pages to the buddy allocator."""
        x &= 0xFFFFFFFF
        if x <= ZERO_SIZE_PTR:
            return
        head = self._compound_head(x)
        if head is not None and self.pm.u32[self.slub.pw(head, W_FLAGS)] & (1 << PG_slab):
            s = self.by_addr.get(self.slub.slab_cache_ptr(head))
            if s is None:
                self.debug.warn_block("virt_to_cache", None, [
                    f"mmemu: kfree(0x{x:08x}): the slab's cache "
                    f"0x{self.slub.slab_cache_ptr(head):08x} is not a live kmem_cache; not freed"])
                return
            self.slub.slab_free(s, head, x, caller or host_caller)
            return
        self.free_large_kmalloc(head, x)

    def free_large_kmalloc(self, pfn: Optional[int], x: int) -> None:
        """free_large_kmalloc(): refuse (with 6.1's warning) a page that is not compound."""
        order = self._folio_order(pfn) if pfn is not None else 0
        if order == 0 or pfn is None:
            self.debug.warn_block("free_large_kmalloc", None, [
                f"object pointer: 0x{x:08x}",
                "mmemu: kfree() of a pointer that is neither a slab object nor a compound "
                "page; not freed"])
            return
        self.large.pop(pfn, None)
        self.pages.free(pfn, order)

    def _folio_order(self, pfn: int) -> int:
        """folio_order(): compound_order of the first tail page, 0 if not a head."""
        if not self.pm.u32[self.slub.pw(pfn, W_FLAGS)] & (1 << PG_head):
            return 0
        return (self.pm.u32[self.slub.pw(pfn + 1, 2)] >> 8) & 0xFF

    def ksize(self, x: int) -> int:
        """__ksize(): the usable size of an allocation (0 for NULL or a bad pointer)."""
        x &= 0xFFFFFFFF
        if x <= ZERO_SIZE_PTR:
            return 0
        head = self._compound_head(x)
        if head is not None and self.pm.u32[self.slub.pw(head, W_FLAGS)] & (1 << PG_slab):
            s = self.by_addr.get(self.slub.slab_cache_ptr(head))
            return slab_ksize(s) if s else 0
        order = self._folio_order(head) if head is not None else 0
        size = PAGE_SIZE << order
        if (head is None or order == 0 or size <= KMALLOC_MAX_CACHE_SIZE
                or x != PAGE_OFFSET + (head << PAGE_SHIFT)):
            self.debug.warn_block("__ksize", None,
                                  [f"mmemu: ksize(0x{x:08x}): not a kmalloc'ed object"])
            return 0
        return size

    def krealloc(self, p: int, new_size: int, flags: int = GFP_KERNEL,
                 caller: Optional[Caller] = None) -> Optional[int]:
        """krealloc(): keep p if it still fits in ksize(p), else move the contents."""
        p, new_size = p & 0xFFFFFFFF, new_size & 0xFFFFFFFF
        if new_size == 0:
            self.kfree(p, caller)
            return ZERO_SIZE_PTR
        ks = self.ksize(p) if p > ZERO_SIZE_PTR else 0
        if ks >= new_size:
            return p
        ret = self.kmalloc(new_size, flags, caller)
        if ret and p > ZERO_SIZE_PTR:
            data = self.slub.read_bytes(p, ks)
            pa = ret - PAGE_OFFSET
            self.pm.u8[pa:pa + ks] = data
            self.kfree(p, caller)
        return ret

    # -- reclaim and accounting ----------------------------------------------
    def shrink_slabs(self) -> int:
        """The shrinker: give every empty slab on a partial list back; pages freed."""
        return sum(self.slub.discard_empty_partials(s) for s in list(self.caches))

    def _account_slab(self, s: KmemCache, pfn: int, order: int, sign: int) -> None:
        self.nr_slab_pages[1 if s.reclaimable else 0] += sign << order

    def meminfo(self) -> dict[str, int]:
        """Slab, SReclaimable, SUnreclaim in kB, as /proc/meminfo shows them."""
        large = sum(1 << o for o in self.large.values())
        unrecl = (self.nr_slab_pages[0] + large) * (PAGE_SIZE // 1024)
        recl = self.nr_slab_pages[1] * (PAGE_SIZE // 1024)
        return {"Slab": recl + unrecl, "SReclaimable": recl, "SUnreclaim": unrecl}

    def get_slabinfo(self, s: KmemCache) -> SlabInfo:
        """get_slabinfo(): free objects counted on the partial list only, as SLUB does."""
        n = s.node
        free = 0
        for pfn in n.partial:
            inuse, objects, _ = self.slub.counters(pfn)
            free += objects - inuse
        return SlabInfo(s.name, n.total_objects - free, n.total_objects, s.size,
                        s.objects, 1 << s.order, n.nr_slabs, n.nr_slabs)

    def slabinfo(self) -> list[SlabInfo]:
        """Every cache's SlabInfo, newest first (slab_caches order)."""
        return [self.get_slabinfo(s) for s in reversed(self.caches)]


def slab_ksize(s: KmemCache) -> int:
    """slab_ksize(): how much of an object its user may use."""
    from mmemu.mm.slab import SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_TYPESAFE_BY_RCU
    if s.flags & (SLAB_RED_ZONE | SLAB_POISON):
        return s.object_size
    if s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_STORE_USER):
        return s.inuse
    return s.size


def slab_nodes(mm: MmState) -> set[int]:
    """6.1's slab_nodes: the nodes with normal memory (N_NORMAL_MEMORY), whose
    slabs a node-specific allocation may ask for."""
    return {z.node for z in mm.zones if z.present_pages and not z.is_highmem}
