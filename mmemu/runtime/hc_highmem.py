"""HighMem and fixmap hypercalls: kmap, kmap_atomic, kmap_local, set_fixmap.

The guest holds `struct page *` values where the host uses pfns; this layer
converts, and refuses pointers that are not a struct page.  The guest header
(guest/include/mmemu/highmem.h) does the cheap parts itself: the
might_sleep() of kmap()/kunmap(), and lowmem pages, which need no slot.
Numbers are HC_HIGHMEM_BASE + n (abi.py's range 96..111), mirrored there.

kunmap_atomic() and kunmap_local(): the host clears the slot's PTE without
flushing the TLB; the caller then flushes its own entry (invlpg of the
address), as 6.1's arch_kmap_local_post_unmap() does, and the SDK's
wrappers do it.  A whole-TLB flush from the host costs more than the rest
of the call.
"""
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE
from mmemu.runtime.abi import (
    HC_CLEAR_FIXMAP, HC_KMAP, HC_KMAP_ATOMIC, HC_KMAP_ATOMIC_PFN, HC_KMAP_FLUSH_UNUSED,
    HC_KMAP_LOCAL_PAGE, HC_KMAP_LOCAL_PFN, HC_KUNMAP, HC_KUNMAP_ATOMIC, HC_KUNMAP_LOCAL,
    HC_SET_FIXMAP,
)
from mmemu.runtime.hypercall import EINVAL


def register(rt, table, hm, fixmap):
    """Serve the kmap and fixmap calls of runtime rt from hm and fixmap."""
    m = rt.machine
    base = m.mem_map.virt
    nr = m.mem_map.nr_pages
    max_pfn = hm.max_pfn

    def to_pfn(page, what):
        off = page - base
        if 0 <= off < nr * STRUCT_PAGE_SIZE and off % STRUCT_PAGE_SIZE == 0 \
                and off // STRUCT_PAGE_SIZE < max_pfn:
            return off // STRUCT_PAGE_SIZE
        if m.mm.kernel_word(page) is None:       # PageHighMem(page): page->flags
            rt.reporter.die(page, what)
        rt.reporter.report(f"mmemu: {what}: 0x{page:08x} is not a struct page in mem_map "
                           f"(0x{base:08x}-0x{base + nr * STRUCT_PAGE_SIZE:08x}), called from "
                           f"{rt.guest_caller()}")
        return None

    def valid_pfn(pfn, what):
        if pfn < max_pfn:
            return pfn
        rt.reporter.report(f"mmemu: {what}: pfn 0x{pfn:x} is not a page frame (max_pfn 0x{max_pfn:x}), "
                           f"called from {rt.guest_caller()}")
        return None

    def by_page(what, fn):
        def call(page):
            pfn = to_pfn(page, what)
            return 0 if pfn is None else (fn(pfn) or 0)
        return call

    def by_pfn(what, fn):
        def call(pfn):
            pfn = valid_pfn(pfn, what)
            return 0 if pfn is None else (fn(pfn) or 0)
        return call

    def kmap_nosleep(pfn):
        return hm.kmap_high(pfn) if hm.PageHighMem(pfn) else hm.page_address(pfn)

    def kunmap_nosleep(pfn):
        if hm.PageHighMem(pfn):
            hm.kunmap_high(pfn)

    # On 686-pae phys_addr_t and pgprot_t are 64 bits: their high words follow.
    pae = m.pgtable.pae
    flag_mask = m.pgtable.flavour.pte_flags_mask

    def set_fixmap(idx, phys, flags, phys_hi=0, flags_hi=0):
        phys |= phys_hi << 32
        flags = (flags | flags_hi << 32) & flag_mask
        return 0 if fixmap._set_fixmap(idx, phys, flags) else -EINVAL

    def clear_fixmap(idx):
        return 0 if fixmap.clear_fixmap(idx) else -EINVAL

    table.register(HC_KMAP, "kmap", by_page("kmap", kmap_nosleep), 1)
    table.register(HC_KUNMAP, "kunmap", by_page("kunmap", kunmap_nosleep), 1)
    table.register(HC_KMAP_ATOMIC, "kmap_atomic", by_page("kmap_atomic", hm._kmap_atomic), 1)
    table.register(HC_KUNMAP_ATOMIC, "kunmap_atomic",
                   lambda va: int(hm.kunmap_atomic(va, flush=False)), 1)
    table.register(HC_KMAP_LOCAL_PAGE, "kmap_local_page",
                   by_page("kmap_local_page", hm._kmap_local_page), 1)
    table.register(HC_KUNMAP_LOCAL, "kunmap_local",
                   lambda va: int(hm.kunmap_local(va, flush=False)), 1)
    table.register(HC_SET_FIXMAP, "__set_fixmap", set_fixmap, 5 if pae else 3)
    table.register(HC_CLEAR_FIXMAP, "clear_fixmap", clear_fixmap, 1)
    table.register(HC_KMAP_FLUSH_UNUSED, "kmap_flush_unused", hm.kmap_flush_unused, 0)
    table.register(HC_KMAP_LOCAL_PFN, "kmap_local_pfn",
                   by_pfn("kmap_local_pfn", hm.kmap_local_pfn), 1)
    table.register(HC_KMAP_ATOMIC_PFN, "kmap_atomic_pfn",
                   by_pfn("kmap_atomic_pfn", hm.kmap_atomic_pfn), 1)
