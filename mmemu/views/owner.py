"""What owns a page frame, and what a virtual address is: the answers behind
`mmemu ptdump --lookup ADDR` and the memory map picture.

The answer comes from the machine's own state, the way a crash-dump tool
finds it: the struct page in mem_map (PG_buddy and the order in private,
PG_slab and slab_cache, PG_table, PG_reserved, a compound tail's head
pointer), the kernel page tables (which vmalloc, pkmap or fixmap address
maps the frame), the config (device windows, RAM holes) and the boot
reservations.  Other subsystems are asked only for names, and only if they
are there (a snapshot has no live allocators: ``machine.slab`` is None): a
slab cache's name for its kmem_cache pointer, a vmalloc area's caller.
Works the same on a live Machine and on a loaded snapshot (a Target,
views/target.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mmemu.arch.x86.pgtable import (
    _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PSE, _PAGE_PWT,
    _PAGE_RW, _PAGE_USER, PTE_PFN_MASK, PG_LEVEL_4M, Walk, pgd_index,
)
from mmemu.layout import (
    FIX_KMAP_BEGIN, FIX_KMAP_END, FIXADDR_TOP, KM_MAX_IDX,
    PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, PGDIR_SHIFT, PTRS_PER_PTE, ZONE_NAMES, virt_to_fix,
)
from mmemu.mm.mmzone import (
    PAGEFLAG_NAMES, PG_buddy, PG_head, PG_reserved, PG_slab, PG_table,
    STRUCT_PAGE_SIZE, page_to_nid_flags, page_type_is, page_zonenum,
)
from mmemu.mm.mmzone import pindex_to_order
from mmemu.config_schema import DeviceConfig
from mmemu.mm.page_alloc import MmState
from mmemu.runtime.loader import GuestImage
from mmemu.mm.slab import KMC_NAME
from mmemu.views.target import PcpBlock, Target

NR_PAGE_ORDERS = 11                   # orders 0..MAX_ORDER (10) on 6.1
_PAGE_NX = 1 << 63                    # only a PAE entry has it


# -- struct page ------------------------------------------------------------

@dataclass
class StructPage:
    """The fields of one struct page (see mmemu.mm.mmzone for the layout)."""

    pfn: int
    flags: int
    next: int          # lru.next / compound_head|1 / slab_list.next
    prev: int
    mapping: int       # slab_cache for a slab page
    index: int
    private: int       # the order of a free block
    mapcount: int      # page_type when it has one
    refcount: int

    def has_type(self, pg_type):
        return page_type_is(self.mapcount, pg_type)

    def test(self, bit):
        return bool(self.flags >> bit & 1)

    @property
    def zone(self):
        return page_zonenum(self.flags)

    @property
    def nid(self):
        return page_to_nid_flags(self.flags)

    @property
    def is_tail(self):
        return bool(self.next & 1)

    def flag_names(self):
        """The PG_* names set in flags, as %pGp prints them."""
        return [PAGEFLAG_NAMES[b] for b in sorted(PAGEFLAG_NAMES) if self.flags >> b & 1]


def read_struct_page(machine, pfn):
    """The struct page of pfn, or None when mem_map has none (no RAM there)."""
    mem_map = machine.mem_map
    if not 0 <= pfn < mem_map.nr_pages:
        return None
    w = mem_map.page_word(pfn)
    words = machine.pm.u32[w:w + 8]
    return StructPage(pfn, *words)


def compound_head(machine, page):
    """compound_head(): the head page of a tail page, else the page itself."""
    if not page.is_tail:
        return page
    head = read_struct_page(machine, machine.mem_map.page_to_pfn(page.next - 1))
    return head if head is not None else page


def find_free_block(machine, pfn):
    """(head pfn, order) of the free buddy block holding pfn, or None.

    Models is_free_buddy_page(): a block of order o holding pfn starts at
    pfn with its low o bits clear and has PG_buddy with private == o.
    """
    for order in range(NR_PAGE_ORDERS):
        head = pfn & ~((1 << order) - 1)
        page = read_struct_page(machine, head)
        if page is not None and page.has_type(PG_buddy) and page.private == order:
            return head, order
    return None


def live_pcp_blocks(mm: MmState) -> list[PcpBlock]:
    """Every block on the zones' per-cpu page lists (a Machine's pcp_blocks()):
    lists[pindex] holds blocks of order pindex_to_order(pindex)."""
    return [PcpBlock(zone.name, pindex_to_order(pindex, pcp.thp_order), pfn)
            for zone in mm.zones for pcp in (zone.per_cpu_pageset,)
            for pindex, lst in enumerate(pcp.lists) for pfn in lst]


def pcp_pages(machine: Target) -> dict[int, PcpBlock]:
    """{pfn: PcpBlock (zone name, order, head pfn)} for every page on a per-cpu
    page list.

    Those pages are free but carry no mark in mem_map (no PG_buddy, as in
    Linux): machine.pcp_blocks(), a live machine's zones' per_cpu_pageset
    (in guest memory or held by the host, mm/pcp_list.py), or what a
    snapshot recorded.
    """
    out = {}
    for block in machine.pcp_blocks():
        for pfn in range(block.pfn, block.pfn + (1 << block.order)):
            out[pfn] = block
    return out


# -- names from other subsystems, if they are there ------------------------

def slab_cache_name(machine: Target, cache_ptr: int) -> str:
    """The name of the kmem_cache at guest address cache_ptr.

    Reads it from guest memory first (struct kmem_cache's name pointer, see
    mmemu.mm.slab), which works on snapshots too; else asks a live
    machine's slab allocator (cache_at(ptr)); else "kmem_cache 0x...".
    """
    name = read_kernel_cstr(machine, _read_kernel_u32(machine, cache_ptr + KMC_NAME))
    if name:
        return name
    cache = machine.slab.cache_at(cache_ptr) if machine.slab is not None else None
    if cache is not None:
        return str(cache.name)
    return f"kmem_cache 0x{cache_ptr:08x}"


def _walk(machine: Target, va: int, pgd: Optional[int] = None) -> Walk:
    """lookup_address() through the machine's own tables (either flavour)."""
    return machine.pgtable.walk(va, pgd)


def _read_kernel_u32(machine, va):
    """A word of guest memory at a kernel virtual address, or None if unmapped."""
    phys = _walk(machine, va & 0xFFFFFFFF).phys
    if phys is None or phys + 4 > machine.pm.size:
        return None
    return machine.pm.u32[phys >> 2] if not phys & 3 else machine.pm.unpack("<I", phys)[0]


def read_kernel_cstr(machine, va, limit=64):
    """A printable C string at a kernel virtual address, or None."""
    if not va:
        return None
    phys = _walk(machine, va).phys
    if phys is None or phys >= machine.pm.size:
        return None
    raw = bytes(machine.pm.u8[phys:min(phys + limit, machine.pm.size)])
    end = raw.find(b"\0")
    if end <= 0 or not all(32 <= b < 127 for b in raw[:end]):
        return None
    return raw[:end].decode("ascii")


@dataclass
class VmArea:
    """A vmalloc-area entry as vmallocinfo shows it."""

    addr: int
    size: int
    caller: Optional[str]
    kind: str


def find_vm_area(machine: Target, va: int) -> Optional[VmArea]:
    """The vmalloc/vmap/ioremap area holding va (guard page included), or None.

    Asks a live machine's vmalloc.find_vm_area(); a snapshot's recorded
    /proc/vmallocinfo text otherwise.
    """
    if machine.vmalloc is not None:
        area = machine.vmalloc.find_vm_area(va)
        if area is None:
            return None
        return VmArea(area.addr, area.size, area.caller, area.kind)
    for found in vmallocinfo_areas(machine):
        if found.addr <= va < found.addr + found.size:
            return found
    return None


def vmallocinfo_areas(machine: Target) -> list[VmArea]:
    """Areas parsed from /proc/vmallocinfo (its contract format), if there is one."""
    return parse_vmallocinfo(machine.proc_text("vmallocinfo") or "")


def parse_vmallocinfo(text):
    """VmArea records from vmallocinfo lines ``0x%08lx-0x%08lx %7ld caller ... kind``."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or "-" not in parts[0]:
            continue
        try:
            start, end = (int(x, 16) for x in parts[0].split("-"))
        except ValueError:
            continue
        caller = parts[2] if len(parts) > 3 and "=" not in parts[2] else None
        kinds = [p for p in parts if p in ("ioremap", "vmalloc", "vmap", "user", "vpages")]
        out.append(VmArea(start, end - start, caller, kinds[0] if kinds else "vm area"))
    return out


def device_at(machine: Target, phys: int) -> Optional[DeviceConfig]:
    """The config's device whose MMIO window holds phys, or None."""
    for dev in machine.cfg.devices:
        if dev.base <= phys < dev.base + dev.size:
            return dev
    return None


def memblock_reservation(machine: Target, phys: int) -> Optional[str]:
    """The name memblock gave the boot reservation holding phys, or None (and
    None on a snapshot, which keeps no memblock)."""
    if machine.memblock is None:
        return None
    for region in machine.memblock.reserved:
        if region.base <= phys < region.end and region.name:
            return region.name
    return None


# -- kernel mappings of a frame (reverse map over the kernel page tables) -----

def kernel_rmap(machine, start=None):
    """pfn -> [virtual addresses] for every 4 KiB kernel mapping at or above
    ``start`` (default VMALLOC_START: vmalloc, ioremap, pkmap, fixmap).

    The direct map is left out: it maps every lowmem frame by construction.
    """
    lay = machine.layout
    start = lay.vmalloc_start if start is None else start
    geo = _geometry(machine)
    rmap = {}
    for base, table in _kernel_page_tables(machine, start):
        w = table >> geo.shift
        entries = geo.view[w:w + geo.per_table]
        if not any(entries):
            continue
        for i, pte in enumerate(entries):
            if pte & _PAGE_PRESENT:
                va = base + (i << PAGE_SHIFT)
                if va >= start:
                    rmap.setdefault((pte & geo.pfn_mask) >> PAGE_SHIFT, []).append(va)
    return rmap


@dataclass
class _Geometry:
    """How a machine's page-table entries sit in guest RAM (its flavour's)."""

    view: object          # PhysMem.u32 or u64
    shift: int            # a slot's address >> shift indexes view
    per_table: int        # PTRS_PER_PTE
    pfn_mask: int
    pae: bool


def _geometry(machine: Target) -> _Geometry:
    flavour = machine.pgtable.flavour
    if flavour.pae:
        return _Geometry(machine.pm.u64, 3, flavour.ptrs_per_pte, flavour.pte_pfn_mask, True)
    return _Geometry(machine.pm.u32, 2, PTRS_PER_PTE, PTE_PFN_MASK, False)


def _kernel_page_tables(machine, start=PAGE_OFFSET):
    """(first address mapped, physical address) of every page table of
    swapper_pg_dir that maps addresses at or above start (large pages and
    tables outside RAM left out)."""
    geo, pm = _geometry(machine), machine.pm
    for base, entry, size in _pmd_entries(machine):
        if base + size <= start or not entry & _PAGE_PRESENT or entry & _PAGE_PSE:
            continue
        table = entry & geo.pfn_mask
        if table + PAGE_SIZE <= pm.size:
            yield base, table


def page_table_pfns(machine):
    """The frames of swapper_pg_dir's tables: the pgd (the PDPT and the PMDs
    on PAE) and every page table under it."""
    geo, pgd = _geometry(machine), _pgd_of(machine)
    out = [pgd >> PAGE_SHIFT]
    if geo.pae:
        for index in range(4):
            pdpte = machine.pm.u64[(pgd >> 3) + index]
            if pdpte & _PAGE_PRESENT:
                out.append((pdpte & geo.pfn_mask) >> PAGE_SHIFT)
    out += [table >> PAGE_SHIFT for _, table in _kernel_page_tables(machine, 0)]
    return out


def _pmd_entries(machine):
    """(address, entry, size) of every entry above the page tables: the pgd's
    on 686, the pmd's under every present PDPT entry on PAE."""
    geo, pgd = _geometry(machine), _pgd_of(machine)
    if not geo.pae:
        u32 = machine.pm.u32
        for index in range(PTRS_PER_PTE):
            yield index << PGDIR_SHIFT, u32[(pgd >> 2) + index], 1 << PGDIR_SHIFT
        return
    u64 = machine.pm.u64
    for index in range(4):
        pdpte = u64[(pgd >> 3) + index]
        pmd = pdpte & geo.pfn_mask
        if not pdpte & _PAGE_PRESENT or pmd + PAGE_SIZE > machine.pm.size:
            continue
        for i, entry in enumerate(u64[pmd >> 3:(pmd >> 3) + 512].tolist()):
            yield (index << 30) + (i << 21), entry, 1 << 21


def _pgd_of(machine: Target) -> int:
    return machine.pgtable.pgd


def page_table_span(machine, pfn):
    """[start, end) of the addresses the page table at pfn maps in
    swapper_pg_dir, or None when no directory entry points at it."""
    geo = _geometry(machine)
    target = pfn << PAGE_SHIFT
    if geo.pae:                                      # a PMD: the PDPT entry's gigabyte
        pgd = _pgd_of(machine)
        for index in range(4):
            pdpte = machine.pm.u64[(pgd >> 3) + index]
            if pdpte & _PAGE_PRESENT and pdpte & geo.pfn_mask == target:
                return index << 30, (index + 1) << 30
    for base, entry, size in _pmd_entries(machine):
        if entry & _PAGE_PRESENT and not entry & _PAGE_PSE and entry & geo.pfn_mask == target:
            return base, base + size
    return None


# -- what a virtual address is --------------------------------------------

def describe_va(machine, va):
    """The part of the address space va is in, with the detail that names it:
    "vmalloc() Area: vmalloc by main+0x1c/0x80", "Persistent kmap() Area:
    pkmap slot 3", "Fixmap area: FIX_KMAP_BEGIN+1 (kmap_atomic cpu 0 slot 1)".
    """
    from mmemu.views.ptdump import address_markers
    lay = machine.layout
    markers = address_markers(lay)
    region = [m.name for m in markers if m.start_address <= va][-1]
    if region == "Kernel Mapping":
        high = lay.high_memory
        what = "direct map of low memory" if va < high else "VMALLOC_OFFSET gap after high_memory"
        return f"{region}: {what}"
    if region == "vmalloc() Area":
        return f"{region}: {_describe_vmalloc(machine, va)}"
    if region == "Persistent kmap() Area":
        slot = (va - lay.pkmap_base) >> PAGE_SHIFT
        last = lay.last_pkmap
        if slot < last:
            return f"{region}: pkmap slot {slot} of {last}"
        return f"{region}: above the {last} pkmap slots"
    if va >= lay.fixaddr_tot_start and va < FIXADDR_TOP + PAGE_SIZE:
        return f"{region}: fixmap {_describe_fixmap(va)}"
    if region == "vmalloc() End":
        return f"{region}: the gap below PKMAP_BASE"
    return region


def _describe_vmalloc(machine, va):
    area = find_vm_area(machine, va)
    if area is None:
        return "not in any vmalloc area"
    guard = va >= area.addr + area.size - PAGE_SIZE
    caller = f" by {area.caller}" if area.caller else ""
    where = "guard page of " if guard else ""
    return (f"{where}{area.kind} area 0x{area.addr:08x}-0x{area.addr + area.size:08x}"
            f" ({area.size} bytes){caller}")


def _describe_fixmap(va):
    from mmemu.arch.x86.fixmap import fixmap_name
    idx = virt_to_fix(va)
    name = fixmap_name(idx)
    if FIX_KMAP_BEGIN <= idx <= FIX_KMAP_END:
        slot = idx - FIX_KMAP_BEGIN
        return f"{name} (kmap_atomic cpu {slot // KM_MAX_IDX} slot {slot % KM_MAX_IDX})"
    return name


# -- who owns a frame ---------------------------------------------------------

@dataclass
class PageOwner:
    """What a frame is used for: kind is one of free, pcp (free, on a per-cpu
    list), slab, pgtable, vmalloc, kmap, allocated, reserved, kernel-image,
    mem_map, device, host, no-ram, unused; text says it in words."""

    kind: str
    text: str

    def __str__(self):
        return self.text


def page_owner(machine, pfn, rmap=None):
    """Who owns frame pfn (a PageOwner).  rmap: a kernel_rmap() to reuse."""
    page = read_struct_page(machine, pfn)
    if page is None:
        return _no_struct_page(machine, pfn)
    head = compound_head(machine, page)
    if head.has_type(PG_buddy):
        return PageOwner("free", f"free: buddy block of order {head.private} (head)")
    block = find_free_block(machine, pfn)
    if block is not None:
        return PageOwner("free", f"free: inside the order-{block[1]} buddy block at "
                                 f"pfn 0x{block[0]:x}")
    pcp = pcp_pages(machine).get(pfn)
    if pcp is not None and page.refcount == 0:
        zone, order, first = pcp
        where = "" if first == pfn else f" at pfn 0x{first:x}"
        return PageOwner("pcp", f"free: on the per-cpu page list of zone {zone} "
                                f"(order {order}{where})")
    if head.test(PG_slab):
        name = slab_cache_name(machine, head.mapping)
        return PageOwner("slab", f"slab: a slab of cache {name}"
                                 + ("" if head is page else f" (tail of pfn 0x{head.pfn:x})"))
    if page.has_type(PG_table):
        return _page_table_owner(machine, pfn, "page table")
    if page.test(PG_reserved):
        return _reserved_owner(machine, pfn)
    return _allocated_owner(machine, page, head, rmap)


def _no_struct_page(machine, pfn):
    phys = pfn << PAGE_SHIFT
    host = host_range_at(machine, phys)
    if host is not None:
        return host
    dev = device_at(machine, phys)
    if dev is not None:
        return PageOwner("device", f"device {dev.name} ({dev.model}) MMIO "
                                   f"0x{dev.base:08x}-0x{dev.base + dev.size:08x}")
    return PageOwner("no-ram", "no RAM: beyond mem_map (a hole in the memory map)")


def _page_table_owner(machine, pfn, what):
    if pfn == _pgd_of(machine) >> PAGE_SHIFT:
        return PageOwner("pgtable", "page table: swapper_pg_dir (the kernel page directory)")
    span = page_table_span(machine, pfn)
    if span is None:
        return PageOwner("pgtable", f"{what}: not linked into swapper_pg_dir")
    region = describe_va(machine, span[0]).split(":")[0]
    return PageOwner("pgtable", f"{what} mapping 0x{span[0]:08x}-0x{span[1] & 0xFFFFFFFF:08x} "
                                f"({region})")


def host_range_at(machine, phys):
    """The PageOwner of a frame in a range the host program keeps (config host:), or None."""
    for h in machine.cfg.host:
        if h.start <= phys < h.end:
            return PageOwner("host", f"host: {h.name} [0x{h.start:08x}-0x{h.end:08x}), kept by "
                                     f"the program embedding mmemu (memblock-reserved, not "
                                     f"mapped by mmemu)")
    return None


def _reserved_owner(machine, pfn):
    phys = pfn << PAGE_SHIFT
    host = host_range_at(machine, phys)
    if host is not None:
        return host
    if pfn == _pgd_of(machine) >> PAGE_SHIFT or page_table_span(machine, pfn) is not None:
        return _page_table_owner(machine, pfn, "reserved: boot page table")
    image = _image_owner(machine, phys)
    if image is not None:
        return image
    mem_map = machine.mem_map
    if mem_map.phys <= phys < mem_map.phys + mem_map.nr_pages * STRUCT_PAGE_SIZE:
        return PageOwner("mem_map", "reserved: mem_map (the struct page array)")
    name = memblock_reservation(machine, phys)
    reason = _reserved_reason(machine, phys)
    if name and reason == "PG_reserved":
        return PageOwner("reserved", f"reserved: memblock reservation {name!r}")
    if name:
        reason += f" (memblock reservation {name!r})"
    return PageOwner("reserved", f"reserved: {reason}")


def _reserved_reason(machine, phys):
    from mmemu.runtime.abi import HC_DOORBELL_PHYS, HC_MAILBOX_PHYS
    if phys < PAGE_SIZE:
        return "page 0 (the BIOS data area; never given to the allocator)"
    if phys >> PAGE_SHIFT == HC_MAILBOX_PHYS >> PAGE_SHIFT:
        return "the hypercall mailbox and boot information"
    if phys >> PAGE_SHIFT == HC_DOORBELL_PHYS >> PAGE_SHIFT:
        return "the hypercall doorbell (an MMIO page of mmemu's over this frame)"
    if 0xA0000 <= phys < 0x100000:
        return "the legacy VGA/BIOS hole (640K-1M)"
    for r in machine.cfg.reserved:
        if r.start <= phys < r.end:
            return f"e820 reserved [0x{r.start:08x}-0x{r.end:08x})"
    if not any(s <= phys >> PAGE_SHIFT < e for _, s, e in machine.layout.memory):
        return "not usable RAM (a hole in the e820 map)"
    return "PG_reserved"


def _image_owner(machine: Target, phys: int) -> Optional[PageOwner]:
    kimage = machine.kernel_image
    if not kimage.text <= phys < kimage.brk_end:
        return None
    image = machine.image
    for seg in image.segments if image is not None else []:
        if seg.paddr <= phys < seg.paddr + seg.memsz:
            perms = "".join(c for c, f in (("R", seg.readable), ("W", seg.writable),
                                           ("X", seg.executable)) if f)
            return PageOwner("kernel-image", f"kernel image: {perms} segment at "
                                             f"0x{seg.vaddr:08x} ({_section_of(image, phys)})")
    section = next((name for name, a, b in (
        ("text", kimage.text, kimage.rodata), ("rodata", kimage.rodata, kimage.sdata),
        ("data", kimage.sdata, kimage.init_begin), ("init", kimage.init_begin, kimage.init_end),
        (".smp_locks", kimage.smp_locks, kimage.smp_locks_end),
        ("bss", kimage.bss_start, kimage.bss_stop), ("brk", kimage.brk_start, kimage.brk_end))
        if a <= phys < b), "")
    return PageOwner("kernel-image", f"kernel image: {section} (no guest segment here)")


def _section_of(image: Optional[GuestImage], phys: int) -> str:
    if image is None:
        return "image"
    va = PAGE_OFFSET + phys
    for name, rng in ((".text", image.text), (".rodata", image.rodata), (".data", image.data),
                      (".bss", image.bss), ("init stack", image.stack)):
        if rng is not None and rng.start <= va < rng.end:
            return name
    return "image"


def _allocated_owner(machine, page, head, rmap):
    pfn = page.pfn
    if rmap is None:
        rmap = kernel_rmap(machine)
    vas = rmap.get(pfn, [])
    order = ""
    if head.test(PG_head) or head is not page:
        order = f", part of a compound page at pfn 0x{head.pfn:x}"
    for va in vas:
        desc = describe_va(machine, va)
        if desc.startswith("vmalloc() Area"):
            kind = "device" if "ioremap" in desc else "vmalloc"
            return PageOwner(kind, f"vmalloc: mapped at 0x{va:08x}, {desc.split(': ', 1)[1]}")
        if desc.startswith("Persistent kmap() Area") or "kmap_atomic" in desc:
            return PageOwner("kmap", f"kmap: mapped at 0x{va:08x}, {desc.split(': ', 1)[1]}")
    if head.refcount == 0 and page.refcount == 0:
        return PageOwner("unused", "unused: no flags, no references (never freed to the allocator)")
    where = f", also mapped at 0x{vas[0]:08x} ({describe_va(machine, vas[0])})" if vas else ""
    return PageOwner("allocated", f"allocated: page allocator, _refcount {head.refcount}"
                                  f"{order}{where}")


# -- the lookup -----------------------------------------------------------------

_FLAG_NAMES = ((_PAGE_PRESENT, "present"), (_PAGE_RW, "RW"), (_PAGE_USER, "USR"),
               (_PAGE_PWT, "PWT"), (_PAGE_PCD, "PCD"), (_PAGE_ACCESSED, "accessed"),
               (_PAGE_DIRTY, "dirty"), (_PAGE_GLOBAL, "GLB"))


def decode_entry(entry, large=False):
    """An entry's flag bits in words: "present RW accessed dirty GLB"."""
    if not entry:
        return "none"
    names = [n for bit, n in _FLAG_NAMES if entry & bit]
    if not entry & _PAGE_RW and entry & _PAGE_PRESENT:
        names.insert(1, "ro")
    if entry & 0x80:
        names.append("PSE" if large else "PAT")
    if entry & _PAGE_NX:
        names.append("NX")
    if not entry & _PAGE_PRESENT:
        names.insert(0, "not-present")
    return " ".join(names)


def ptdump_lookup(machine, va):
    """Everything about one virtual address, as (label, value) rows.

    686: the pgd entry ("pde") and the pte.  686-pae walks three levels:
    the PDPT entry ("pgd", swapper_pg_dir[0..3]), the pmd entry and the
    pte, each 64 bits.
    """
    w = _walk(machine, va)
    rows = [("address", f"0x{va:08x}  {describe_va(machine, va)}")]
    if _geometry(machine).pae:
        rows += _lookup_rows_3level(w, va)
    else:
        rows.append(("pde", f"swapper_pg_dir[{pgd_index(va)}] at phys 0x{w.pde_addr:08x} = "
                            f"0x{w.pde:08x}  {decode_entry(w.pde, large=True)}"))
        rows.append(_pte_row(w, va, pae=False))
    if w.phys is None:
        rows.append(("phys", "not mapped"))
        return rows
    pfn = w.phys >> PAGE_SHIFT
    page = read_struct_page(machine, pfn)
    where = f"  zone {ZONE_NAMES[page.zone]}  node {page.nid}" if page is not None else ""
    rows.append(("phys", f"0x{w.phys:08x}  pfn 0x{pfn:x}{where}"))
    if page is not None:
        mapcount = page.mapcount - (1 << 32) if page.mapcount >> 31 else page.mapcount
        rows.append(("page", f"struct page 0x{machine.mem_map.pfn_to_page(pfn):08x}  "
                             f"flags 0x{page.flags:08x}({','.join(page.flag_names())})  "
                             f"_refcount {page.refcount}  _mapcount {mapcount}  "
                             f"private 0x{page.private:x}"))
    rows.append(("owner", page_owner(machine, pfn).text))
    return rows


def _decode_pdpte(entry):
    """A PDPT entry has only a present bit to speak of (RW, USR are reserved there)."""
    if not entry:
        return "none"
    return "present" if entry & _PAGE_PRESENT else "not-present"


def _lookup_rows_3level(w, va):
    """The PDPT, pmd and pte rows of a PAE lookup."""
    rows = [("pgd", f"swapper_pg_dir[{(va >> 30) & 3}] at phys 0x{w.pdpte_addr:08x} = "
                    f"0x{w.pdpte:016x}  {_decode_pdpte(w.pdpte)}")]
    if w.pde_addr is None:
        return rows + [("pmd", "none: no PMD (the PDPT entry is not present)")]
    rows.append(("pmd", f"[{(va >> 21) & 511}] at phys 0x{w.pde_addr:08x} = "
                        f"0x{w.pde:016x}  {decode_entry(w.pde, large=True)}"))
    return rows + [_pte_row(w, va, pae=True)]


def _pte_row(w, va, pae):
    """The pte row of a lookup: the entry (1024 of 32 bits, or 512 of 64 with
    PAE), or why there is none (a large page, no page table)."""
    if w.level == PG_LEVEL_4M:
        return ("pte", f"none: a {'2M' if pae else '4M'} page (PSE)")
    if w.pte_addr is None:
        return ("pte", "none: no page table")
    index, width = ((va >> PAGE_SHIFT) & 511, 16) if pae else ((va >> PAGE_SHIFT) & 0x3FF, 8)
    return ("pte", f"[{index}] at phys 0x{w.pte_addr:08x} = 0x{w.pte:0{width}x}  "
                   f"{decode_entry(w.pte)}")


def lookup_text(machine, va):
    """`mmemu ptdump --lookup ADDR`: one labelled line per fact."""
    return "".join(f"{label:<8}{value}\n" for label, value in ptdump_lookup(machine, va))
