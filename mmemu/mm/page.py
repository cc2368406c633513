"""struct page accessors: zone, node, reference count, addresses.

Models the helpers of include/linux/mm.h, page_ref.h and
arch/x86/include/asm/page.h that take a struct page: here a pfn, with
``mm`` (page_alloc.MmState) to reach mem_map in guest memory.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT
from mmemu.mm.mmzone import (
    NODES_PGSHIFT, PAGE_MAPCOUNT_NONE, PAGE_TYPE_TABLE, PG_table, W_MAPCOUNT, W_NEXT,
    W_REFCOUNT, is_highmem_idx, page_to_nid_flags, page_type_is,
    page_zonenum as _flags_zonenum, PAGE_WORDS, Zone,
)

if TYPE_CHECKING:
    from mmemu.mm.page_alloc import MmState

NO_FAST_FREE = 255     # MmState.fast_zone: this pfn's free takes the checked (slow) path

# The fast-free bitmap: one bit per pfn, set where MmState.fast_zone is not
# NO_FAST_FREE, for guest code's own order-0 free path (guest/lib/
# page_alloc.c) to read: mmemu's own, in the reserved first MiB (16 GiB of
# pfns; a pfn past it, or any with CONFIG_DEBUG_VM, takes the hypercall).
FAST_FREE_BITS_PHYS = 0x10000
FAST_FREE_BITS_SIZE = 0x80000
_BIT_CHARS = bytes(b"1" * NO_FAST_FREE + b"0")     # fast_zone byte -> "1"/"0"


def fast_free_bitmap(u8: memoryview, max_pfn: int) -> memoryview:
    """The fast-free bitmap's bytes for max_pfn pages, as far as it reaches."""
    size = min(-(-max_pfn // 8), FAST_FREE_BITS_SIZE, max(len(u8) - FAST_FREE_BITS_PHYS, 0))
    return u8[FAST_FREE_BITS_PHYS:FAST_FREE_BITS_PHYS + size]


def set_fast_zone(mm: MmState, pfn: int, code: int) -> None:
    """The fast_zone byte of pfn, and its bit in the fast-free bitmap."""
    mm.fast_zone[pfn] = code
    bits, i = mm.fast_free_bits, pfn >> 3
    if i < len(bits):
        if code == NO_FAST_FREE or mm.cfg.debug_vm:
            bits[i] &= ~(1 << (pfn & 7))
        else:
            bits[i] |= 1 << (pfn & 7)


def sync_fast_free_bits(mm: MmState, start: int, end: int) -> None:
    """The fast-free bitmap's bits of [start, end) from the fast_zone bytes
    (for a range the bytes were set in at once)."""
    bits = mm.fast_free_bits
    first, last = start >> 3, min(-(-end // 8), len(bits))
    if first >= last or mm.cfg.debug_vm:
        return
    value = fast_zone_bits(mm.fast_zone[first * 8:last * 8])    # 0 past max_pfn
    bits[first:last] = value.to_bytes(last - first, "little")


def fast_zone_bits(table: bytes | bytearray) -> int:
    """Bit i set where fast_zone byte i is open (not NO_FAST_FREE)."""
    return int(bytes(table).translate(_BIT_CHARS)[::-1] or b"0", 2)


def checked_free_only(mm: MmState, pfn: int) -> None:
    """Make every free of this order-0 page take the checked path (mmemu's own rule).

    For pages whose owner keeps state in the struct page: slab pages
    (PG_slab) and page-table pages (PageTable).  Differs from 6.1 without
    CONFIG_DEBUG_VM, whose per-cpu free path would take such a page
    unchecked (its flags are cleared, the slab or page table keeps using a
    free page); mmemu reports "Bad page state" and refuses it, as a
    CONFIG_DEBUG_VM kernel does.  The fast path costs nothing more: its
    table byte for the pfn is what says so, and the next free of the page
    through the checked path opens it again.
    """
    set_fast_zone(mm, pfn, NO_FAST_FREE)


def pfn_valid(mm: MmState, pfn: object) -> bool:
    """pfn_valid(): the pfn has a struct page in mem_map."""
    return isinstance(pfn, int) and 0 <= pfn < mm.max_pfn


def page_flags(mm: MmState, pfn: int) -> int:
    """page->flags of a pfn."""
    return mm.u32[mm.mbase + (pfn * PAGE_WORDS)]


def page_zonenum(mm: MmState, pfn: int) -> int:
    """page_zonenum(): ZONE_DMA .. ZONE_MOVABLE of the page."""
    return _flags_zonenum(page_flags(mm, pfn))


def page_to_nid(mm: MmState, pfn: int) -> int:
    """page_to_nid(): the node of the page."""
    return page_to_nid_flags(page_flags(mm, pfn))


def page_zone(mm: MmState, pfn: int) -> Zone:
    """page_zone(): the Zone the page belongs to (the zone and node bits of
    page->flags name one: callers pass pages the allocator handed out or the
    free path checked)."""
    zone = mm.zone_by_id[page_flags(mm, pfn) >> NODES_PGSHIFT]
    assert zone is not None, f"pfn {pfn:#x}: page->flags name no zone"
    return zone


def PageHighMem(mm: MmState, pfn: int) -> bool:
    """PageHighMem(): the page is in ZONE_HIGHMEM (or a Movable zone made of HighMem).

    As 6.1's is_highmem_idx(page_zonenum(page)): the zone bits of page->flags
    alone, which hold a zone index whatever a guest wrote there.
    """
    return is_highmem_idx(page_zonenum(mm, pfn), mm.movable_is_highmem)


def page_count(mm: MmState, pfn: int) -> int:
    """page_count(): the _refcount of the page's compound head."""
    u32, w = mm.u32, mm.mbase + (pfn * PAGE_WORDS)
    head = u32[w + W_NEXT]
    if head & 1:
        w = mm.mbase + ((head - 1 - mm.mvirt) >> 2)
    ref = u32[w + W_REFCOUNT]
    return ref - (1 << 32) if ref & 0x80000000 else ref


def lowmem_page_address(pfn: int) -> int:
    """lowmem_page_address(): the direct-map address of a lowmem page."""
    return PAGE_OFFSET + (pfn << PAGE_SHIFT)


def page_address(mm: MmState, pfn: int) -> Optional[int]:
    """page_address(): a page's kernel virtual address, or None (NULL).

    Lowmem pages have their direct-map address; a HighMem page has one only
    while kmapped, which mm.page_address_highmem(pfn) answers.
    """
    if not pfn_valid(mm, pfn):
        return None
    if not PageHighMem(mm, pfn):
        return lowmem_page_address(pfn)
    return mm.page_address_highmem(pfn)


def virt_to_page(mm: MmState, vaddr: int) -> int:
    """virt_to_page(): the pfn of a direct-map address (not checked, as in Linux)."""
    return (vaddr - PAGE_OFFSET) >> PAGE_SHIFT


def virt_addr_valid(mm: MmState, vaddr: object) -> bool:
    """virt_addr_valid(): a direct-map address of a page in mem_map."""
    return (isinstance(vaddr, int) and PAGE_OFFSET <= vaddr < PAGE_OFFSET + (mm.max_low_pfn << PAGE_SHIFT)
            and pfn_valid(mm, virt_to_page(mm, vaddr)))


def pgtable_page_ctor(mm: MmState, pfn: int) -> None:
    """pgtable_pte_page_ctor(): mark a page-table page (PageTable) and count it."""
    w = mm.mbase + (pfn * PAGE_WORDS)
    if mm.u32[w + W_MAPCOUNT] == PAGE_MAPCOUNT_NONE:
        mm.u32[w + W_MAPCOUNT] = PAGE_TYPE_TABLE
        mm.nr_page_table_pages += 1
        checked_free_only(mm, pfn)


def pgtable_page_dtor(mm: MmState, pfn: int) -> None:
    """pgtable_pte_page_dtor(): the page stops being a page table (before it is freed)."""
    w = mm.mbase + (pfn * PAGE_WORDS)
    if page_type_is(mm.u32[w + W_MAPCOUNT], PG_table):
        mm.u32[w + W_MAPCOUNT] = PAGE_MAPCOUNT_NONE
        mm.nr_page_table_pages -= 1


mark_page_table = pgtable_page_ctor        # the names machine.py uses
clear_page_table = pgtable_page_dtor
