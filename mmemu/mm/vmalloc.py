"""vmalloc: virtually contiguous kernel memory in [VMALLOC_START, VMALLOC_END).

Models mm/vmalloc.c of Linux 6.1 for i386 (non-PAE, 4 KiB pages only):

* the KVA allocator (alloc_vmap_area): busy areas and free blocks of the
  vmalloc range, searched lowest-first as find_vmap_lowest_match() does, a
  freed range merged back with its free neighbours (merge_or_add_vmap_area)
  and reused;
* vm_struct records (VmStruct) with the kernel's flags VM_IOREMAP,
  VM_ALLOC, VM_MAP, a guard page after every area (never mapped, so running
  off the end faults) and the size including it, as /proc/vmallocinfo shows;
* vmalloc/vzalloc/__vmalloc (__vmalloc_node_range + __vmalloc_area_node):
  order-0 pages from the buddy allocator with GFP_KERNEL | __GFP_HIGHMEM, so
  on a machine with HighMem they are HighMem pages, scattered physically;
  page tables for the range come on demand (PageTable.pte_alloc_kernel);
* vfree/vunmap (__vunmap), vmap, vmalloc_to_page, is_vmalloc_addr,
  find_vm_area, get_vm_area_caller, remove_vm_area.

The host API uses pfns where Linux uses ``struct page *`` (the hypercall
layer converts).  Reports use the kernel's wording, with pointers printed
in full (as with no_hash_pointers).

Differs from 6.1, on purpose:

* no lazy freeing: vfree()/vunmap() unmap the area, flush the TLB once for
  the area and give the range back at once (6.1 defers the flush and the
  range until lazy_max_pages() of them pile up), so /proc/vmallocinfo never
  shows "unpurged vm_area" lines; for a guest call the guest's wrapper does
  that flush (flush_tlb_kernel_range(), see runtime/hc_vmalloc.py);
* the pages array: an array that fits in a page is kept on the host only
  (6.1 kmallocs it); a larger one is vmalloc'd, as 6.1 does (the area shows
  as its own vmallocinfo line, and the big area says "vpages"), and filled
  with the struct page pointers, but the host's copy stays authoritative;
* vfree()/vunmap() of a page-aligned address inside an area (not its start)
  is reported as a nonexistent vm area and changes nothing; 6.1 would free
  the whole area that holds the address;
* 6.1 ORs __GFP_NOWARN into the mask before its page-allocation and
  page-mapping failure warnings, so they never print (fixed in 6.4); mmemu
  prints nothing either, but leaves a KERN_DEBUG line saying what happened.

>>> m = Machine("pc-1g")
>>> addr = m.vmalloc.vmalloc(3 * 4096, caller="demo")
>>> m.vmalloc.find_vm_area(addr).nr_pages
3
"""
from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

from mmemu.arch.x86.pgtable import __PAGE_KERNEL, _PAGE_PRESENT, _PAGE_RW, PageTable
from mmemu.errors import PageAllocCorruption, VmallocCorruption
from mmemu.kernel.panic import Reporter
from mmemu.layout import PAGE_SHIFT, PAGE_SIZE, ZONE_MOVABLE, Layout
from mmemu.log import KERN_DEBUG
from mmemu.mm import page_alloc
from mmemu.mm.gfp import (     # the unmangled _GFP_* spellings work inside classes
    GFP_KERNEL, _GFP_ATOMIC, _GFP_DMA, _GFP_DMA32, _GFP_FS, _GFP_HIGH, _GFP_HIGHMEM, _GFP_IO,
    _GFP_MEMALLOC, _GFP_MOVABLE, _GFP_NOFAIL, _GFP_NOMEMALLOC, _GFP_NORETRY, _GFP_NOWARN,
    _GFP_RECLAIM, _GFP_RETRY_MAYFAIL, _GFP_ZERO, format_gfp,
)
from mmemu.mm.mmzone import PAGE_WORDS, STRUCT_PAGE_SIZE, MemMap, page_to_nid_flags, page_zonenum
from mmemu.mm.page_alloc import MmState
from mmemu.physmem import PhysMem

# include/linux/vmalloc.h, 6.1
VM_IOREMAP = 0x00000001
VM_ALLOC = 0x00000002
VM_MAP = 0x00000004
VM_USERMAP = 0x00000008
VM_DMA_COHERENT = 0x00000010
VM_UNINITIALIZED = 0x00000020
VM_NO_GUARD = 0x00000040
VM_FLUSH_RESET_PERMS = 0x00000100
VM_MAP_PUT_PAGES = 0x00000200
IOREMAP_MAX_ORDER = 7 + PAGE_SHIFT          # 128 pages: x86 keeps the default

# mm/internal.h: the flags a nested allocation inherits
GFP_RECLAIM_MASK = (_GFP_RECLAIM | _GFP_HIGH | _GFP_IO | _GFP_FS | _GFP_NOWARN
                    | _GFP_RETRY_MAYFAIL | _GFP_NOFAIL | _GFP_NORETRY | _GFP_MEMALLOC
                    | _GFP_NOMEMALLOC | _GFP_ATOMIC)

NUMA_NO_NODE = -1
PTE_IGNORED_BITS = 0x060                     # Accessed and Dirty: the CPU sets them
RECENTLY_FREED = 64                          # freed areas remembered for oops texts

PAGE_KERNEL = __PAGE_KERNEL


def page_align(size: int) -> int:
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def align_up(value: int, align: int) -> int:
    return (value + align - 1) & -align


def get_count_order(size: int) -> int:
    """get_count_order_long(): the order of the smallest power of two >= size."""
    return (size - 1).bit_length() if size > 1 else 0


@dataclass(eq=False)
class VmStruct:
    """struct vm_struct: one vmalloc/vmap/ioremap area.

    size includes the guard page (unless VM_NO_GUARD), as in the kernel;
    pages holds pfns (the kernel's struct page pointers) and nr_pages their
    count; caller is the symbolized caller ("main+0x1c/0x80") or None;
    pages_area is the VmStruct of a vmalloc'd pages array (shown as "vpages").
    """

    addr: int
    size: int
    flags: int
    caller: Optional[str] = None
    pages: Optional[array[int]] = None
    nr_pages: int = 0
    phys_addr: int = 0
    prot: int = PAGE_KERNEL
    pages_area: Optional[VmStruct] = None
    gfp_mask: int = 0            # vmalloc's mask (the ZONE_MOVABLE checker reads it)

    @property
    def end(self) -> int:
        return self.addr + self.size

    def get_vm_area_size(self) -> int:
        """get_vm_area_size(): the usable size, without the guard page."""
        return self.size if self.flags & VM_NO_GUARD else self.size - PAGE_SIZE

    @property
    def kind(self) -> str:
        for bit, name in ((VM_IOREMAP, "ioremap"), (VM_ALLOC, "vmalloc"), (VM_MAP, "vmap")):
            if self.flags & bit:
                return name
        return "vm area"


@dataclass(eq=False)
class VmapArea:
    """struct vmap_area: a busy range [va_start, va_end) and its vm_struct."""

    va_start: int
    va_end: int
    vm: Optional[VmStruct] = None


@dataclass
class FreedArea:
    """A vm area given back recently, remembered to explain a use after free."""

    addr: int
    size: int
    kind: str
    caller: Optional[str]
    freed_by: str


class VmapSpace:
    """The KVA allocator of one range: busy areas and free blocks, both sorted.

    Models alloc_vmap_area()/free_vmap_area() of 6.1 with sorted lists in
    place of the augmented rb-trees: the free blocks are disjoint and never
    touch (merge_or_add_vmap_area() merges neighbours), and the lowest block
    an aligned request fits in is taken (find_vmap_lowest_match()).
    """

    def __init__(self, vstart: int, vend: int) -> None:
        self.vstart = vstart
        self.vend = vend
        self.free_start = [vstart]         # free blocks [free_start[i], free_end[i])
        self.free_end = [vend]
        self.busy_start: list[int] = []    # sorted va_start of busy areas
        self.busy: dict[int, VmapArea] = {}   # va_start -> VmapArea

    # -- finding ---------------------------------------------------------
    def find_vmap_lowest_match(self, size: int, align: int, vstart: int) -> tuple[Optional[int],
                               int]:
        """The index of the lowest free block holding an aligned size, and the address."""
        for i in range(bisect_right(self.free_end, vstart), len(self.free_start)):
            nva_start = align_up(max(self.free_start[i], vstart), align)
            if nva_start + size <= self.free_end[i]:
                return i, nva_start
        return None, 0

    def find_vmap_area(self, addr: int) -> Optional[VmapArea]:
        """find_vmap_area(): the busy area holding addr, or None."""
        i = bisect_right(self.busy_start, addr) - 1
        if i < 0:
            return None
        va = self.busy[self.busy_start[i]]
        return va if addr < va.va_end else None

    def areas(self) -> list[VmapArea]:
        """Busy areas by address."""
        return [self.busy[s] for s in self.busy_start]

    def free_blocks(self) -> list[tuple[int, int]]:
        return list(zip(self.free_start, self.free_end))

    # -- changing --------------------------------------------------------
    def alloc_vmap_area(self, size: int, align: int, vstart: int, vend: int) -> Optional[VmapArea]:
        """alloc_vmap_area(): a new VmapArea of size bytes, or None when nothing fits
        (or, as 6.1's -EINVAL, for a size that is not whole pages or an align
        that is not a power of two)."""
        if size <= 0 or size % PAGE_SIZE or align <= 0 or align & (align - 1):
            return None
        i, addr = self.find_vmap_lowest_match(size, align, vstart)
        if i is None or addr + size > vend:
            return None
        self._clip_free_block(i, addr, addr + size)
        va = VmapArea(addr, addr + size)
        j = bisect_left(self.busy_start, addr)
        self.busy_start.insert(j, addr)
        self.busy[addr] = va
        return va

    def _clip_free_block(self, i: int, start: int, end: int) -> None:
        """adjust_va_to_fit_type(): cut [start, end) out of free block i."""
        free_start, free_end = self.free_start, self.free_end
        fs, fe = free_start[i], free_end[i]
        if fs == start and fe == end:          # FL_FIT_TYPE: the whole block
            del free_start[i], free_end[i]
        elif fs == start:                      # LE_FIT_TYPE: its left edge
            free_start[i] = end
        elif fe == end:                        # RE_FIT_TYPE: its right edge
            free_end[i] = start
        else:                                  # NE_FIT_TYPE: the middle; split it
            free_end[i] = start
            free_start.insert(i + 1, end)
            free_end.insert(i + 1, fe)

    def free_vmap_area(self, va: VmapArea) -> None:
        """free_vmap_area(): give the range back, merged with its free neighbours."""
        j = bisect_left(self.busy_start, va.va_start)
        assert self.busy_start[j] == va.va_start
        del self.busy_start[j]
        del self.busy[va.va_start]
        self._merge_or_add(va.va_start, va.va_end)

    def _merge_or_add(self, start: int, end: int) -> None:
        i = bisect_left(self.free_start, start)
        merge_prev = i > 0 and self.free_end[i - 1] == start
        merge_next = i < len(self.free_start) and self.free_start[i] == end
        if merge_prev and merge_next:
            self.free_end[i - 1] = self.free_end[i]
            del self.free_start[i], self.free_end[i]
        elif merge_prev:
            self.free_end[i - 1] = end
        elif merge_next:
            self.free_start[i] = start
        else:
            self.free_start.insert(i, start)
            self.free_end.insert(i, end)


class Vmalloc:
    """The vmalloc subsystem of one machine.

    Wired by vmalloc_init(); takes its collaborators explicitly so that it
    sees only the page allocator, the page tables and guest physical memory.
    Reports go to ``rep``, the machine's Reporter (kernel/panic.py), which
    knows the task and its call trace; ``note`` leaves a KERN_DEBUG line.
    """

    def __init__(self, pm: PhysMem, pgtable: PageTable, mem_map: MemMap, vstart: int, vend: int,
                 alloc_page: Callable[[int, Optional[int]], Optional[int]],
                 free_page: Callable[[int], None], totalram_pages: Callable[[], int],
                 reporter: Reporter, flush_tlb: Callable[[], object], nr_nodes: int = 1,
                 page_nid: Optional[Callable[[int], int]] = None) -> None:
        self.pm = pm
        self.pgtable = pgtable
        self.mem_map = mem_map
        self.space = VmapSpace(vstart, vend)
        self.vstart, self.vend = vstart, vend
        self.alloc_page = alloc_page               # (gfp, nid) -> pfn | None
        self.free_page = free_page                 # (pfn) -> None
        self.totalram_pages = totalram_pages       # () -> int
        self.flush_tlb = flush_tlb
        self.rep = reporter
        self.nr_nodes = nr_nodes
        self.page_nid = page_nid or (lambda pfn: 0)
        # The flavour's page-table entries: 32-bit (686) or 64-bit with NX (686-pae).
        self.ptes, self.pte_shift = pgtable.ptes, pgtable.pte_shift
        self.pte_typecode = pgtable.pte_typecode
        self.PAGE_KERNEL = pgtable.flavour.PAGE_KERNEL
        self.entry_mask = (1 << (8 * pgtable.flavour.pte_size)) - 1
        self.ptrs_per_pte = pgtable.ptrs_per_pte
        self._no_ptes = memoryview(array(self.pte_typecode, bytes(4096)))
        self.nr_vmalloc_pages = 0
        self.leaked_vmalloc_pages = 0              # vunmap()ed vmalloc pages, still counted
        self.recently_freed: deque[FreedArea] = deque(maxlen=RECENTLY_FREED)
        self.note: Callable[[str], None] = lambda text: reporter.log.printk(text, KERN_DEBUG)

    # -- looking up -------------------------------------------------------
    def is_vmalloc_addr(self, addr: int) -> bool:
        """is_vmalloc_addr(): addr lies in [VMALLOC_START, VMALLOC_END)."""
        return self.vstart <= addr < self.vend

    def find_vm_area(self, addr: int) -> Optional[VmStruct]:
        """find_vm_area(): the VmStruct whose range holds addr, or None."""
        va = self.space.find_vmap_area(addr)
        return va.vm if va is not None else None

    def areas(self) -> list[VmStruct]:
        """Every VmStruct, by address."""
        return [va.vm for va in self.space.areas() if va.vm is not None]

    def vmalloc_to_pfn(self, addr: int) -> Optional[int]:
        """vmalloc_to_pfn(): the pfn mapped at addr through the page tables, or None."""
        w = self.pgtable.walk(addr)
        if w.phys is None:
            return None
        return w.phys >> PAGE_SHIFT

    def vmalloc_to_page(self, addr: int) -> Optional[int]:
        """vmalloc_to_page(): as vmalloc_to_pfn() (the host API uses pfns)."""
        return self.vmalloc_to_pfn(addr)

    def snapshot_state(self) -> dict[str, Any]:
        """The areas as plain data (views.snapshot keeps it beside the memory image)."""
        return {"vmalloc_start": self.vstart, "vmalloc_end": self.vend,
                "nr_vmalloc_pages": self.nr_vmalloc_pages,
                "areas": [{"addr": a.addr, "size": a.size, "flags": a.flags, "caller": a.caller,
                           "nr_pages": a.nr_pages, "phys_addr": a.phys_addr, "kind": a.kind}
                          for a in self.areas()]}

    def vmalloc_nr_pages(self) -> int:
        """vmalloc_nr_pages(): pages allocated by vmalloc (meminfo's VmallocUsed)."""
        return self.nr_vmalloc_pages

    # -- areas ----------------------------------------------------------------
    def get_vm_area_node(self, size: int, align: int, flags: int, start: int, end: int, gfp: int,
                         caller: Optional[str]) -> Optional[VmStruct]:
        """__get_vm_area_node(): reserve a range (plus guard page) for a new area.

        VM_IOREMAP areas are aligned to their size's power of two, at most
        128 pages.  Returns the VmStruct, or None (after 6.1's "vmap
        allocation ... failed" warning unless gfp has __GFP_NOWARN).
        """
        size = page_align(size & 0xFFFFFFFF) & 0xFFFFFFFF    # unsigned long: wraps to 0
        if not size:
            return None
        if flags & VM_IOREMAP:
            align = 1 << min(max(get_count_order(size), PAGE_SHIFT), IOREMAP_MAX_ORDER)
        if not flags & VM_NO_GUARD:
            size += PAGE_SIZE
        va = self.space.alloc_vmap_area(size, max(align, 1), start, end)
        if va is None:
            if not gfp & _GFP_NOWARN:
                self.rep.info(f"vmap allocation for size {size} failed: "
                              "use vmalloc=<size> to increase size")
            return None
        va.vm = VmStruct(va.va_start, size, flags, caller)
        return va.vm

    def get_vm_area_caller(self, size: int, flags: int,
                           caller: Optional[str] = None) -> Optional[VmStruct]:
        """get_vm_area_caller(): a bare area in the vmalloc range (no pages, nothing mapped)."""
        return self.get_vm_area_node(size, 1, flags, self.vstart, self.vend, GFP_KERNEL, caller)

    def remove_vm_area(self, addr: int) -> Optional[VmStruct]:
        """remove_vm_area(): unmap the area starting at addr and free its range.

        One TLB flush for the whole area.  Returns the VmStruct, or None when
        no area starts at addr.
        """
        va = self.space.busy.get(addr)
        if va is None:
            return None
        return self._remove_vmap_area(va)

    def _remove_vmap_area(self, va: VmapArea, flush: bool = True) -> VmStruct:
        """remove_vm_area() of a busy VmapArea: unmap, flush (unless the
        caller will), free the range."""
        self.vunmap_range(va.va_start, va.va_end)
        if flush:
            self.flush_tlb_kernel_range(va.va_start, va.va_end)
        self.space.free_vmap_area(va)
        assert va.vm is not None                 # a busy area has its vm_struct
        return va.vm

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """flush_tlb_kernel_range(): forget the translations of [start, end).

        From the host, Unicorn can only flush the whole TLB (6.1 does that too
        past tlb_single_page_flush_ceiling, 33 pages; below it, one invlpg
        per page).
        """
        self.flush_tlb()

    # -- page tables --------------------------------------------------------
    def vmap_pages_range(self, addr: int, pfns: Iterable[int], prot: int) -> bool:
        """vmap_pages_range(): map pfns at addr (PTEs not present before).

        Returns False when a page table could not be allocated.
        """
        mask = self.entry_mask
        entries = array(self.pte_typecode, [((pfn << PAGE_SHIFT) | prot) & mask for pfn in pfns])
        return self.pgtable.set_ptes(addr, entries)

    def ioremap_page_range(self, addr: int, end: int, phys_addr: int, prot: int) -> bool:
        """ioremap_page_range(): map [addr, end) to the physical range from phys_addr.

        The PTEs must not have been present.  Returns False when a page
        table could not be allocated.
        """
        first = (phys_addr | prot) & self.entry_mask
        entries = array(self.pte_typecode, range(first, first + (end - addr), PAGE_SIZE))
        return self.pgtable.set_ptes(addr, entries)

    def vunmap_range(self, start: int, end: int) -> None:
        """vunmap_range_noflush(): clear the PTEs of [start, end); the caller flushes."""
        ptes, shift, per_table = self.ptes, self.pte_shift, self.ptrs_per_pte
        pte_slot = self.pgtable.unmap_pte_slot
        start, end = start & 0xFFFFF000, min((end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), 1 << 32)
        va = start
        while va < end:
            room = per_table - ((va >> PAGE_SHIFT) & (per_table - 1))
            n = min(room, (end - va) >> PAGE_SHIFT)
            slot = pte_slot(va)
            if slot is not None:
                w = slot >> shift
                ptes[w:w + n] = self._no_ptes[:n]
            va += n << PAGE_SHIFT

    # -- vmalloc ----------------------------------------------------------------
    def vmalloc(self, size: int, caller: Optional[str] = None) -> Optional[int]:
        """void *vmalloc(unsigned long size): an address, or None (NULL).

        size is taken as the C call's unsigned long: -4096 is 0xfffff000,
        more than all of RAM (warn_alloc()'s "exceeds total pages", NULL)."""
        return self._vmalloc(size, GFP_KERNEL, caller)

    def vzalloc(self, size: int, caller: Optional[str] = None) -> Optional[int]:
        """void *vzalloc(unsigned long size): zeroed vmalloc memory, or None."""
        return self._vmalloc(size, GFP_KERNEL | _GFP_ZERO, caller)

    def _vmalloc(self, size: int, gfp_mask: int, caller: Optional[str] = None,
                 nid: int = NUMA_NO_NODE) -> Optional[int]:
        """void *__vmalloc(unsigned long size, gfp_t gfp_mask)."""
        return self.vmalloc_node_range(size & 0xFFFFFFFF, 1, self.vstart, self.vend,
                                       gfp_mask & 0xFFFFFFFF, self.PAGE_KERNEL, 0, nid, caller)

    def vmalloc_node_range(self, size: int, align: int, start: int, end: int, gfp_mask: int,
                           prot: int, vm_flags: int, nid: int,
                           caller: Optional[str]) -> Optional[int]:
        """__vmalloc_node_range(): reserve an area, back it with pages, map them.

        Returns the address or None, with 6.1's warn_alloc() texts.
        """
        if not size:
            self.warn_on_once("__vmalloc_node_range", "size == 0")
            return None
        if (size >> PAGE_SHIFT) > self.totalram_pages():
            self.warn_alloc(gfp_mask, f"vmalloc error: size {size}, exceeds total pages")
            return None
        area = self.get_vm_area_node(size, align, VM_ALLOC | VM_UNINITIALIZED | vm_flags,
                                     start, end, gfp_mask, caller)
        if area is None:
            self.warn_alloc(gfp_mask, f"vmalloc error: size {size}, vm_struct allocation failed")
            return None
        if not self.vmalloc_area_node(area, gfp_mask, prot, nid):
            return None
        area.flags &= ~VM_UNINITIALIZED
        return area.addr

    def vmalloc_area_node(self, area: VmStruct, gfp_mask: int, prot: int, nid: int) -> bool:
        """__vmalloc_area_node(): allocate the pages array and the pages, map them.

        On failure everything taken so far is given back (the area included)
        and False is returned.
        """
        nested_gfp = (gfp_mask & GFP_RECLAIM_MASK) | _GFP_ZERO
        area.gfp_mask = gfp_mask
        nr_small_pages = area.get_vm_area_size() >> PAGE_SHIFT
        array_size = nr_small_pages * 4
        gfp_mask |= _GFP_NOWARN
        if not gfp_mask & (_GFP_DMA | _GFP_DMA32):
            gfp_mask |= _GFP_HIGHMEM
        area.prot = prot
        if array_size > PAGE_SIZE:
            arr = self._vmalloc(array_size, nested_gfp, area.caller, nid)
            if arr is None:
                self._vmalloc_failed(area, f"failed to allocated page array size {array_size}")
                return False
            area.pages_area = self.find_vm_area(arr)
        area.pages = self.vm_area_alloc_pages(gfp_mask, nid, nr_small_pages)
        area.nr_pages = len(area.pages)
        self.nr_vmalloc_pages += area.nr_pages
        if area.nr_pages != nr_small_pages:
            self._vmalloc_failed(area, f"page order 0, failed to allocate pages "
                                 f"({area.nr_pages} of {nr_small_pages})")
            return False
        if not self.vmap_pages_range(area.addr, area.pages, prot):
            self._vmalloc_failed(area, "failed to map pages")
            return False
        if area.pages_area is not None:
            self._fill_pages_array(area)
        return True

    def vm_area_alloc_pages(self, gfp: int, nid: int, nr_pages: int) -> array[int]:
        """vm_area_alloc_pages(): up to nr_pages order-0 pfns; fewer when memory runs out."""
        pages = array("I")
        alloc = self.alloc_page
        node = None if nid == NUMA_NO_NODE else nid
        for _ in range(nr_pages):
            pfn = alloc(gfp, node)
            if pfn is None:
                break
            pages.append(pfn)
        return pages

    def _vmalloc_failed(self, area: VmStruct, what: str) -> None:
        """The fail: path of __vmalloc_area_node(): silent in 6.1 (see module doc)."""
        self.note(f"mmemu: vmalloc: size {area.get_vm_area_size()}: {what}; 6.1 prints no "
                  "warning here (its mask carries __GFP_NOWARN)")
        self.vunmap(area.addr, deallocate_pages=True)

    def _fill_pages_array(self, area: VmStruct) -> None:
        """Write the struct page pointers into the vmalloc'd pages array."""
        base = self.mem_map.virt
        holder = area.pages_area
        assert area.pages is not None and holder is not None and holder.pages is not None
        ptrs = array("I", [(base + pfn * STRUCT_PAGE_SIZE) & 0xFFFFFFFF for pfn in area.pages])
        per_page = PAGE_SIZE // 4
        u32 = self.pm.u32
        for i, pfn in enumerate(holder.pages):
            chunk = ptrs[i * per_page:(i + 1) * per_page]
            if not chunk:
                break
            w = pfn << (PAGE_SHIFT - 2)
            u32[w:w + len(chunk)] = chunk

    # -- vmap ----------------------------------------------------------------
    def vmap(self, pfns: Sequence[int], count: Optional[int] = None, flags: int = VM_MAP,
             prot: Optional[int] = None, caller: Optional[str] = None) -> Optional[int]:
        """void *vmap(struct page **pages, unsigned int count, unsigned long flags, pgprot_t prot).

        Maps the given pfns contiguously; the pages stay the caller's (vunmap
        leaves them allocated).  prot None is PAGE_KERNEL (NX on 686-pae).
        Returns the address, or None.
        """
        if prot is None:
            prot = self.PAGE_KERNEL
        pfns = list(pfns if count is None else pfns[:count])
        count = len(pfns)
        # A vmap area is always VM_MAP: flags that would make it look like
        # another kind (Linux trusts its callers here) are not taken.
        flags = (flags & ~(VM_IOREMAP | VM_ALLOC | VM_UNINITIALIZED)) | VM_MAP
        if flags & VM_NO_GUARD:
            self.warn_on_once("vmap", "flags & VM_NO_GUARD")
            flags &= ~VM_NO_GUARD
        if not count or count > self.totalram_pages():
            return None
        area = self.get_vm_area_caller(count << PAGE_SHIFT, flags, caller)
        if area is None:
            return None
        area.prot = prot
        if not self.vmap_pages_range(area.addr, pfns, prot):
            self.vunmap(area.addr)
            return None
        if flags & VM_MAP_PUT_PAGES:
            area.pages, area.nr_pages = array("I", pfns), count
        else:
            area.pages = array("I", pfns)      # kept for the checker; nr_pages stays 0
        return area.addr

    # -- freeing ----------------------------------------------------------------
    def vfree(self, addr: int, caller: Optional[str] = None,
              flush: bool = True) -> Optional[VmStruct]:
        """void vfree(const void *addr): NULL is a no-op; a bad address is reported.

        Returns the VmStruct freed, or None (mmemu's; vfree() is void).
        """
        addr &= 0xFFFFFFFF
        if not addr:
            return None
        return self.vunmap(addr, deallocate_pages=True, caller=caller, flush=flush)

    def vunmap(self, addr: int, deallocate_pages: bool = False, caller: Optional[str] = None,
               flush: bool = True) -> Optional[VmStruct]:
        """__vunmap(): tear down the area starting at addr; vfree() frees its pages too.

        Returns the VmStruct torn down, or None (after a WARN) when addr is
        not page aligned or no area starts there.  flush=False leaves the
        TLB of [area.addr, area.end) to the caller: the hypercalls' guest
        wrappers flush it themselves (guest/include/mmemu/vmalloc.h).
        """
        addr &= 0xFFFFFFFF
        if not addr:
            return None
        if addr & (PAGE_SIZE - 1):
            self._warn_vfree(f"Trying to vfree() bad address ({addr:08x})")
            return None
        va = self.space.busy.get(addr)
        if va is None:
            self._warn_vfree(f"Trying to vfree() nonexistent vm area ({addr:08x})")
            return None
        area = self._remove_vmap_area(va, flush)
        if area.pages is not None and area.flags & (VM_ALLOC | VM_MAP_PUT_PAGES):
            if deallocate_pages:
                self._free_area_pages(area)
            elif area.flags & VM_ALLOC:
                self._leak_area_pages(area)
        self._remember_freed(area, caller)
        return area

    def _leak_area_pages(self, area: VmStruct) -> None:
        """vunmap() of a vmalloc area: as on Linux its pages stay allocated, unreachable."""
        self.leaked_vmalloc_pages += area.nr_pages
        self.note(f"mmemu: vunmap() of vmalloc area 0x{area.addr:08x}: its {area.nr_pages} "
                  "pages are leaked, as on Linux (vfree() frees them)")

    def _free_area_pages(self, area: VmStruct) -> None:
        free = self.free_page
        for pfn in area.pages or ():
            free(pfn)
        if area.flags & VM_ALLOC:
            self.nr_vmalloc_pages -= area.nr_pages
        if area.pages_area is not None:
            self.vfree(area.pages_area.addr)          # kvfree(area->pages)
        area.pages, area.nr_pages, area.pages_area = None, 0, None

    def _remember_freed(self, area: VmStruct, caller: Optional[str]) -> None:
        freed_by = caller or (self.rep.caller() if self.rep.in_guest() else None) or "?"
        self.recently_freed.append(FreedArea(area.addr, area.size, area.kind,
                                             area.caller, freed_by))

    # -- reports -------------------------------------------------------------------
    def _warn_vfree(self, text: str) -> None:
        """WARN(1, "Trying to vfree() ...") in __vunmap()."""
        self.rep.warn("mm/vmalloc.c", None, "__vunmap", message=text)

    def warn_on_once(self, function: str, condition: str) -> None:
        """WARN_ON_ONCE() in mm/vmalloc.c: the first time only."""
        self.rep.warn("mm/vmalloc.c", None, function, once=True,
                      notes=[f"mmemu: WARN_ON_ONCE({condition})"])

    def warn_alloc(self, gfp_mask: int, text: str) -> None:
        """warn_alloc(): "comm: text, mode:0x...(names), nodemask=(null)..." and a stack.

        Nothing when gfp_mask has __GFP_NOWARN.  Not a WARN (no taint, no
        panic_on_warn); differs: no show_mem() dump follows.
        """
        if gfp_mask & _GFP_NOWARN:
            return
        rep = self.rep
        mems = "0" if self.nr_nodes == 1 else f"0-{self.nr_nodes - 1}"
        rep.info("\n".join([f"{rep.comm}: {text}, mode:{gfp_mask:#x}({format_gfp(gfp_mask)}), "
                            f"nodemask=(null),cpuset=/,mems_allowed={mems}", *rep.dump_stack()]))


# -- wiring ---------------------------------------------------------------------

class _TlbFlusher(Protocol):
    def flush_tlb(self) -> None: ...


class VmallocMachine(Protocol):
    """What vmalloc_init() reads of the machine it wires (machine.py's Machine)."""

    @property
    def mm(self) -> MmState: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def pm(self) -> PhysMem: ...
    @property
    def pgtable(self) -> PageTable: ...
    @property
    def mem_map(self) -> MemMap: ...
    @property
    def reporter(self) -> Reporter: ...
    @property
    def engine(self) -> _TlbFlusher: ...


class VmallocOwner(Protocol):
    """A machine with its vmalloc allocator (what the checker reads)."""

    @property
    def vmalloc(self) -> Vmalloc: ...

def vmalloc_init(machine: VmallocMachine) -> Vmalloc:
    """vmalloc_init(): the machine's Vmalloc over [VMALLOC_START, VMALLOC_END)."""
    mm = machine.mm
    lay = machine.layout
    alloc_pages, free_pages = page_alloc.alloc_pages, page_alloc._free_pages    # per page: bound once

    def alloc_page(gfp: int, nid: Optional[int]) -> Optional[int]:
        return alloc_pages(mm, gfp, 0, nid)

    def free_page(pfn: int) -> None:
        free_pages(mm, pfn, 0)

    def page_nid(pfn: int) -> int:
        if not 0 <= pfn < machine.mem_map.nr_pages:
            return 0
        return page_to_nid_flags(machine.pm.u32[machine.mem_map.page_word(pfn)])

    return Vmalloc(machine.pm, machine.pgtable, machine.mem_map, lay.vmalloc_start,
                   lay.vmalloc_end, alloc_page, free_page, lambda: page_alloc.totalram_pages(mm),
                   machine.reporter, machine.engine.flush_tlb, nr_nodes=lay.nr_nodes,
                   page_nid=page_nid)


# -- checking -------------------------------------------------------------------

def validate_vmap_areas(machine: VmallocOwner) -> None:
    """The vmalloc checker: raises VmallocCorruption when an invariant breaks.

    Areas lie in the vmalloc range, never overlap, are disjoint from the
    free blocks and together with them tile the range exactly; every area
    keeps its guard page unmapped; every page of an area maps the page or
    device it should with the area's protection; nothing else in the range
    is mapped; VmallocUsed agrees with the areas' pages.
    """
    vm = machine.vmalloc
    problems = _check_tiling(vm) or _check_ptes(vm) or _check_counts(vm)
    if problems:
        raise VmallocCorruption(problems)


def _check_tiling(vm: Vmalloc) -> Optional[str]:
    pieces = [(va.va_start, va.va_end, "area") for va in vm.space.areas()]
    pieces += [(s, e, "free block") for s, e in vm.space.free_blocks()]
    pieces.sort()
    at = vm.vstart
    for start, end, what in pieces:
        if start != at:
            gap = "overlaps the previous piece" if start < at else f"leaves 0x{at:08x} unaccounted"
            return f"{what} 0x{start:08x}-0x{end:08x} {gap}"
        if end <= start or start & (PAGE_SIZE - 1) or end & (PAGE_SIZE - 1):
            return f"{what} 0x{start:08x}-0x{end:08x} is empty or not page aligned"
        at = end
    if at != vm.vend:
        return f"the vmalloc range ends at 0x{vm.vend:08x} but its pieces end at 0x{at:08x}"
    for a, b in zip(vm.space.free_blocks(), vm.space.free_blocks()[1:]):
        if a[1] == b[0]:
            return f"free blocks 0x{a[0]:08x}-0x{a[1]:08x} and 0x{b[0]:08x}-0x{b[1]:08x} were not merged"
    for va in vm.space.areas():
        if va.vm is None or va.vm.addr != va.va_start or va.vm.end != va.va_end:
            return f"area 0x{va.va_start:08x}-0x{va.va_end:08x} disagrees with its vm_struct"
    return None


def _pte_words(vm: Vmalloc, start: int, end: int) -> list[int]:
    """The PTE values of [start, end) as a list (0 where no table exists)."""
    out: list[int] = []
    va = start
    ptes, shift, per_table = vm.ptes, vm.pte_shift, vm.ptrs_per_pte
    while va < end:
        room = per_table - ((va >> PAGE_SHIFT) & (per_table - 1))
        n = min(room, (end - va) >> PAGE_SHIFT)
        slot = vm.pgtable.pte_slot(va)
        out += ptes[slot >> shift:(slot >> shift) + n].tolist() if slot is not None else [0] * n
        va += n << PAGE_SHIFT
    return out


def _check_ptes(vm: Vmalloc) -> Optional[str]:
    ptes = _pte_words(vm, vm.vstart, vm.vend)
    mask = ~PTE_IGNORED_BITS & vm.entry_mask
    expected = [0] * len(ptes)
    for area in vm.areas():
        first = (area.addr - vm.vstart) >> PAGE_SHIFT
        for i, pfn in enumerate(_area_pfns(area)):
            expected[first + i] = ((pfn << PAGE_SHIFT) | area.prot) & mask
            if area.flags & VM_FLUSH_RESET_PERMS and not ptes[first + i] & _PAGE_RW:
                expected[first + i] &= ~_PAGE_RW   # set_memory_ro() made it read-only
    if [p & mask for p in ptes] == expected:
        return None
    for i, (have, want) in enumerate(zip(ptes, expected)):
        if have & mask != want and (have & _PAGE_PRESENT or want):
            return _pte_problem(vm, vm.vstart + (i << PAGE_SHIFT), have, want)
    return None


def _area_pfns(area: VmStruct) -> Iterable[int]:
    """The pfns an area maps, page by page (the guard page is not among them)."""
    if area.flags & VM_IOREMAP:
        first = area.phys_addr >> PAGE_SHIFT
        return range(first, first + (area.get_vm_area_size() >> PAGE_SHIFT))
    if area.flags & VM_UNINITIALIZED or area.pages is None:
        return ()
    return area.pages


def _pte_problem(vm: Vmalloc, va: int, have: int, want: int) -> str:
    area = vm.find_vm_area(va)
    where = (f"in {area.kind} area 0x{area.addr:08x}-0x{area.end:08x}" if area
             else "outside every area")
    if area is not None and va >= area.addr + area.get_vm_area_size():
        where = f"the guard page of {area.kind} area 0x{area.addr:08x}-0x{area.end:08x}"
    show = vm.pgtable.entry_str
    return f"PTE of 0x{va:08x} ({where}) is {show(have)}, expected {show(want)}"


def _check_counts(vm: Vmalloc) -> Optional[str]:
    used = sum(a.nr_pages for a in vm.areas() if a.flags & VM_ALLOC) + vm.leaked_vmalloc_pages
    if used != vm.nr_vmalloc_pages:
        return f"nr_vmalloc_pages is {vm.nr_vmalloc_pages} but vmalloc areas hold {used} pages"
    for area in vm.areas():
        if area.flags & VM_ALLOC and area.nr_pages != area.get_vm_area_size() >> PAGE_SHIFT:
            return (f"vmalloc area 0x{area.addr:08x} has {area.nr_pages} pages for "
                    f"{area.get_vm_area_size()} bytes")
    return None


def check_vmalloc_not_movable(mm: MmState, areas: Iterable[VmStruct]) -> None:
    """No vmalloc page in ZONE_MOVABLE unless its vmalloc asked for __GFP_MOVABLE.

    areas: the VmStructs (Vmalloc.areas()); only VM_ALLOC areas own their
    pages (a vmap() of movable pages is fine).  Raises PageAllocCorruption
    naming the area; a machine without a populated ZONE_MOVABLE passes at once.
    """
    if not any(z.zone_idx == ZONE_MOVABLE and z.populated for z in mm.zones):
        return
    u32, base = mm.u32, mm.mbase
    for area in areas:
        if not area.flags & VM_ALLOC or area.gfp_mask & _GFP_MOVABLE or not area.pages:
            continue
        for pfn in area.pages:
            if 0 <= pfn < mm.max_pfn and page_zonenum(u32[base + pfn * PAGE_WORDS]) == ZONE_MOVABLE:
                gfp = format_gfp(area.gfp_mask) or "0"
                raise PageAllocCorruption(
                    f"vmalloc area {area.addr:#010x} (gfp {gfp}, caller {area.caller}): "
                    f"page pfn {pfn:#x} is in ZONE_MOVABLE without __GFP_MOVABLE")


# -- explaining faults ------------------------------------------------------------

def describe_vmalloc_address(vm: Vmalloc, addr: int) -> Optional[str]:
    """A region describer for oopses: guard pages and freed areas, else None."""
    if not vm.is_vmalloc_addr(addr):
        return None
    area = vm.find_vm_area(addr)
    if area is not None:
        usable_end = area.addr + area.get_vm_area_size()
        if addr >= usable_end:
            return (f"the address is in the guard page after the {area.kind} area "
                    f"0x{area.addr:08x}-0x{usable_end:08x} ({area.get_vm_area_size()} bytes, "
                    f"allocated by {area.caller or '?'})")
        return (f"the address is in the {area.kind} area 0x{area.addr:08x}-0x{usable_end:08x} "
                f"(allocated by {area.caller or '?'})")
    for freed in reversed(vm.recently_freed):
        if freed.addr <= addr < freed.addr + freed.size:
            how = {"vmalloc": "vfree()", "vmap": "vunmap()", "ioremap": "iounmap()"}.get(freed.kind, "free")
            return (f"the address is in the {freed.kind} area 0x{freed.addr:08x}-"
                    f"0x{freed.addr + freed.size - PAGE_SIZE:08x}, which is no longer mapped: "
                    f"a use after {how} (allocated by {freed.caller or '?'}, freed by "
                    f"{freed.freed_by})")
    return None
