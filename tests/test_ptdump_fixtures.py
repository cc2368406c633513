"""A synthetic machine for the inspection views, and its self-checks.

The views (ptdump, page_types, memmap, owner) read only guest memory and a
few records: cfg, layout, pm, pgtable, mem_map.  build_machine() makes those
without Unicorn or the page allocator: the boot page tables come from the
real arch/x86/setup.setup_arch() and init.paging_init(), and mem_map is
written by hand in the layout Linux's boot leaves it in (what memblock
reserved: the first MiB, the kernel image with its .brk page tables, the
initrd, mem_map; every other frame in maximal free buddy
blocks), plus a few frames whose owner the tests know: an allocated page, a
two-page slab of a named cache, a page table, a vmalloc'd page, a kmap'd
page and an order-2 compound page.  ``truth`` maps those pfns to the owner
kind the views must report.  (The tests also run the views on a booted
mmemu.Machine; this machine is the one whose truth is known.)
"""
import types
from array import array

from mmemu.arch.x86.init import paging_init
from mmemu.arch.x86.setup import setup_arch
from mmemu.config import load_config
from mmemu.layout import (
    PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, ZONE_DMA, ZONE_HIGHMEM, ZONE_NORMAL, compute_layout,
)
from mmemu.mm.mmzone import (
    PAGE_MAPCOUNT_NONE, PAGE_TYPE_BUDDY, PAGE_TYPE_TABLE, PG_head, PG_reserved, PG_slab,
    STRUCT_PAGE_SIZE, MemMap, page_flags_word,
)
from mmemu.physmem import PhysMem
import pytest

pytestmark = pytest.mark.flavours

CACHE_NAME = "kmalloc-64"
MAX_ORDER = 10


def _zone_of(layout, pfn):
    if pfn < layout.dma_pfn:
        return ZONE_DMA
    return ZONE_NORMAL if pfn < layout.max_low_pfn else ZONE_HIGHMEM


def build_machine(config="pc-16m"):
    """A machine-like record with boot page tables and a hand-made mem_map."""
    cfg = load_config(config)
    lay = compute_layout(cfg)
    top = max(r.end for r in cfg.ram)
    pm = PhysMem((top + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
    mb, image, _ = setup_arch(cfg, lay, lambda line: None, "")
    pt = paging_init(pm, lay, cfg, mb, image, lambda: None)
    nr = lay.max_pfn
    mm_size = (nr * STRUCT_PAGE_SIZE + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    mem_map = MemMap(mb.alloc_try_nid(mm_size, PAGE_SIZE, caller="memmap_alloc",
                                      name="mem_map"), nr)
    m = types.SimpleNamespace(cfg=cfg, layout=lay, pm=pm, pgtable=pt, mem_map=mem_map,
                              image=None, kernel_image=image, truth={},
                              boot_allocs=[(r.base, r.size, r.name) for r in mb.reserved],
                              # the rest of a views.target.Target: nothing live, nothing kept
                              mm=None, slab=None, vmalloc=None, memblock=None,
                              proc_text=lambda name: None, pcp_blocks=list, registers=dict)
    words = _initial_mem_map(lay, nr)
    reserved = [(b >> PAGE_SHIFT, -(-e // PAGE_SIZE)) for b, e in mb.reserved_ranges()]
    for s, e in reserved:
        for pfn in range(s, min(e, nr)):
            _set(words, pfn, flags=words[pfn * 10] | 1 << PG_reserved, ref=1)
    busy = _owned_frames(m, words)
    _free_the_rest(lay, words, nr, reserved, busy)
    w = mem_map.phys >> 2
    pm.u32[w:w + len(words)] = words
    return m


def _initial_mem_map(lay, nr):
    """Every struct page as __init_single_page() leaves it: zone/node, _mapcount -1."""
    words = array("I", bytes(nr * STRUCT_PAGE_SIZE))
    for pfn in range(nr):
        words[pfn * 10] = page_flags_word(_zone_of(lay, pfn), 0)
        words[pfn * 10 + 6] = PAGE_MAPCOUNT_NONE
    return words


def _set(words, pfn, flags=None, nxt=None, prev=None, mapping=None, private=None,
         mapcount=None, ref=None):
    base = pfn * 10
    for off, value in ((0, flags), (1, nxt), (2, prev), (3, mapping), (5, private),
                       (6, mapcount), (7, ref)):
        if value is not None:
            words[base + off] = value & 0xFFFFFFFF


def _owned_frames(m, words):
    """Frames with a known owner, in the middle of the lowmem free space."""
    lay, pm, mem_map = m.layout, m.pm, m.mem_map
    first = lay.max_low_pfn // 2 & ~0xF
    page = mem_map.pfn_to_page
    t = m.truth
    # An allocated page, and one never given to the allocator (no references).
    _set(words, first, ref=1)
    t[first], t[first + 1] = "allocated", "unused"
    # A two-page slab of a named cache; the kmem_cache lives in another page.
    cache_pfn = first + 6
    cache_va = PAGE_OFFSET + (cache_pfn << PAGE_SHIFT)
    pm.write32((cache_pfn << PAGE_SHIFT) + 56, cache_va + 0x100)
    pm.write((cache_pfn << PAGE_SHIFT) + 0x100, CACHE_NAME.encode() + b"\0")
    _set(words, cache_pfn, ref=1)
    t[cache_pfn] = "allocated"
    head = first + 2
    flags = words[head * 10] | 1 << PG_slab | 1 << PG_head
    _set(words, head, flags=flags, mapping=cache_va, ref=1)
    _set(words, head + 1, nxt=page(head) | 1, prev=1 << 8 | 1)
    t[head] = t[head + 1] = "slab"
    # A page table for the start of the vmalloc area, mapping one allocated page.
    table, mapped = first + 4, first + 5
    _set(words, table, mapcount=PAGE_TYPE_TABLE, ref=1)
    m.pgtable.alloc_table = lambda: table << PAGE_SHIFT
    m.pgtable.set_pte(lay.vmalloc_start, mapped << PAGE_SHIFT | 0x163)
    _set(words, mapped, ref=1)
    t[table], t[mapped] = "pgtable", "vmalloc"
    # A page in pkmap slot 3.
    kmapped = first + 7
    m.pgtable.set_pte(lay.pkmap_base + 3 * PAGE_SIZE, kmapped << PAGE_SHIFT | 0x163)
    _set(words, kmapped, ref=1)
    t[kmapped] = "kmap"
    # An order-2 compound page.
    comp = first + 8
    _set(words, comp, flags=words[comp * 10] | 1 << PG_head, ref=1)
    for tail in range(comp + 1, comp + 4):
        _set(words, tail, nxt=page(comp) | 1, prev=(2 << 8 | 1) if tail == comp + 1 else 0)
    for pfn in range(comp, comp + 4):
        t[pfn] = "allocated"
    m.vmalloc_pfn, m.kmap_pfn, m.table_pfn = mapped, kmapped, table
    return set(range(first, first + 12))


def _free_the_rest(lay, words, nr, reserved, busy):
    """Every frame not reserved or owned goes into maximal aligned buddy blocks."""
    blocked = bytearray(nr)
    for s, e in reserved:
        blocked[s:e] = b"\x01" * (e - s)
    for pfn in busy:
        blocked[pfn] = 1
    limits = sorted({0, lay.dma_pfn, lay.max_low_pfn, nr})
    pfn = 0
    while pfn < nr:
        if blocked[pfn]:
            pfn += 1
            continue
        zone_end = min(x for x in limits if x > pfn)
        order = 0
        while (order < MAX_ORDER and not pfn & ((2 << order) - 1)
               and pfn + (2 << order) <= zone_end
               and not any(blocked[pfn:pfn + (2 << order)])):
            order += 1
        _set(words, pfn, mapcount=PAGE_TYPE_BUDDY, private=order, ref=0)
        pfn += 1 << order


def free_pages(m):
    """Pages in free blocks, from the struct pages (an independent count)."""
    total = 0
    for pfn in range(m.mem_map.nr_pages):
        if m.pm.u32[m.mem_map.page_word(pfn, 6)] == PAGE_TYPE_BUDDY:
            total += 1 << m.pm.u32[m.mem_map.page_word(pfn, 5)]
    return total


# -- the fixture's own checks ------------------------------------------------

def test_build_machine_accounts_for_every_frame():
    m = build_machine("pc-16m")
    reserved = sum(1 for pfn in range(m.mem_map.nr_pages)
                   if m.pm.u32[m.mem_map.page_word(pfn)] >> PG_reserved & 1)
    assert reserved + free_pages(m) + len(m.truth) == m.mem_map.nr_pages


def test_build_machine_tables_translate_like_the_direct_map():
    m = build_machine("pc-16m")
    for va in (PAGE_OFFSET, PAGE_OFFSET + 0x123456, PAGE_OFFSET + 0xFFF000):
        assert m.pgtable.translate(va) == va - PAGE_OFFSET
    assert m.pgtable.translate(m.layout.vmalloc_start) == m.vmalloc_pfn << PAGE_SHIFT
