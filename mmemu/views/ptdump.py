"""The kernel page-table dump, as arch/x86/mm/dump_pagetables.c prints it.

Models Linux 6.1 on a 32-bit kernel, 686 or 686-pae (/sys/kernel/debug/
page_tables/kernel): the generic walker of mm/ptdump.c and mm/pagewalk.c
feeding x86's note_page(), effective_prot() and printk_prot().  What that
gives on a two-level table, and what this module reproduces:

* markers, from address_markers[] for CONFIG_X86_32 with HIGHMEM and
  MODIFY_LDT_SYSCALL: "User Space" (0), "Kernel Mapping" (PAGE_OFFSET),
  "vmalloc() Area" (VMALLOC_START), "vmalloc() End" (VMALLOC_END),
  "Persistent kmap() Area" (PKMAP_BASE), "LDT remap" (LDT_BASE_ADDR),
  "CPU entry area" (CPU_ENTRY_AREA_BASE), "Fixmap area" (FIXADDR_START);
* range lines ``0x%08lx-0x%08lx   %9lu%c `` + printk_prot()'s columns
  (``USR ``, ``RW ``/``ro ``, ``PWT ``, ``PCD ``, ``PSE ``, ``PAT ``, ``GLB ``,
  and ``x  `` since there is no NX without PAE) + the level name;
* levels: an empty page-directory entry is a hole that walk_pmd_range()
  reports at real_depth(3) == 0, "pgd"; a 4 MiB page is noted by the pmd
  callback, "pmd"; a page-table entry is "pte";
* a range breaks when the 12 flag bits (PTE_FLAGS_MASK, so Accessed and
  Dirty too), the effective US/RW bits, the level or the marker change, and
  a marker is crossed only at the first entry noted at or after it;
* the last range ends at 0x00000000: the walker's final note_page(st, 0, -1, 0).

On 686-pae (three levels: PDPT, PMD, page table; PTEs of 64 bits):

* an empty PDPT entry is a hole at real_depth(2) == 0, "pgd"; an empty pmd
  entry a hole at real_depth(3) == 3, "pmd"; a 2 MiB page is noted by the
  pmd callback, "pmd"; a page-table entry is "pte";
* the last column is ``NX `` or ``x  ``: PTE_FLAGS_MASK takes bit 63;
* effective_prot() starts from the PDPT entry, which holds only
  _PAGE_PRESENT (pud_populate()), so the effective RW and USR bits of every
  entry below are 0 and only NX survives: 6.1's W+X check, which tests the
  effective RW bit, cannot find a W+X page on 686-pae, and prints "passed"
  (ptdump_check_wx()).  mmemu adds its own check of the leaf entries' bits,
  in its own words (ptdump_check_wx_leaves()).

mmemu adds what Linux does not have: one region only, every entry listed
(--all-ptes), and a lookup of one address down to the owner of its page.

The walk is fast on purpose (the whole kernel half of pc-4g in well under
0.5 s): it reads each page-directory entry once, and a page table as two
byte strings (flag bytes 0 and 1 of every entry), so a table of equal
entries costs two comparisons and a mixed one a regular-expression scan for
runs; Python only runs per run, never per entry.
"""
from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from mmemu.arch.x86.pgtable import (
    _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PSE,
    _PAGE_PWT, _PAGE_RW, _PAGE_USER, PDE_LARGE_MASK, PTE_PFN_MASK, pgd_index, pte_index,
)
from mmemu.errors import UsageError
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, PGDIR_SHIFT, PMD_SIZE, PTRS_PER_PTE

if TYPE_CHECKING:
    from mmemu.flavour import Flavour
    from mmemu.views.target import Target

PTE_FLAGS_MASK = 0xFFF               # ~PTE_PFN_MASK on a non-PAE kernel
PTE_FLAGS_MASK_PAE = 0xFFF0000000000FFF   # and on a PAE kernel: bits 52-63 too
_PAGE_PAT = 0x080                    # bit 7 in a PTE
_PAGE_PAT_LARGE = 0x1000             # bit 12 in a PDE: outside PTE_FLAGS_MASK, never shown
_PAGE_NX = 0                         # no NX bit without PAE
_PAGE_NX_PAE = 1 << 63               # bit 63 with it
_PAGE_KNL_ERRATUM_MASK = _PAGE_DIRTY | _PAGE_ACCESSED
SPACE_END = 1 << 32

LEVEL_NAMES = ("pgd", "p4d", "pud", "pmd", "pte")
PGD_LEVEL, PMD_LEVEL, PTE_LEVEL = 0, 3, 4
_UNITS = "BKMGTPE"


@dataclass(frozen=True)
class AddrMarker:
    """struct addr_marker: where a named part of the address space starts."""

    start_address: int
    name: str


def address_markers(layout):
    """address_markers[] of a 32-bit 6.1 kernel, as pt_dump_init() fills it in."""
    return [
        AddrMarker(0, "User Space"),
        AddrMarker(PAGE_OFFSET, "Kernel Mapping"),
        AddrMarker(layout.vmalloc_start, "vmalloc() Area"),
        AddrMarker(layout.vmalloc_end, "vmalloc() End"),
        AddrMarker(layout.pkmap_base, "Persistent kmap() Area"),
        AddrMarker(layout.ldt_base, "LDT remap"),
        AddrMarker(layout.cpu_entry_area_base, "CPU entry area"),
        AddrMarker(layout.fixaddr_start, "Fixmap area"),
    ]


@dataclass
class PtRange:
    """One printed line of the dump: [start, end) with the same protections.

    prot is the 12 flag bits of the entries (PTE_FLAGS_MASK), eff their
    effective US/RW bits through the directory entry, level an index into
    LEVEL_NAMES; phys is the first entry's frame when every entry is listed.
    end may be 1 << 32 (printed, as Linux prints it, as 0x00000000).
    """

    start: int
    end: int
    prot: int
    eff: int
    level: int
    phys: Optional[int] = None

    @property
    def present(self):
        return bool(self.prot & _PAGE_PRESENT)

    @property
    def pages(self):
        return (self.end - self.start) >> PAGE_SHIFT


@dataclass
class MarkerLine:
    """A ``---[ name ]---`` line."""

    name: str


class PgState:
    """struct pg_state and note_page(): collect ranges, break on a change.

    Items (MarkerLine and PtRange, in print order) accumulate in ``items``.
    merge=False breaks at every present entry (mmemu's --all-ptes).
    """

    def __init__(self, markers, first_marker=0, merge=True, flavour=None):
        self.markers = markers + [AddrMarker(0xFFFFFFFF, None)]   # END_OF_SPACE_NR
        self.marker = first_marker
        self.merge = merge
        pae = flavour is not None and flavour.pae
        self.flags_mask = PTE_FLAGS_MASK_PAE if pae else PTE_FLAGS_MASK
        self.nx = _PAGE_NX_PAE if pae else 0
        self.phys_masks = ((flavour.pmd_large_mask, flavour.pte_pfn_mask) if pae
                           else (PDE_LARGE_MASK, PTE_PFN_MASK))
        self.level = -1
        self.current_prot = 0
        self.effective_prot = 0
        self.start_address = 0
        self.phys = None
        self.prot_levels = [0] * 5
        self.items = []
        self.next_marker = self.markers[first_marker + 1].start_address

    def set_pde(self, pde):
        """effective_prot() for the pgd, p4d, pud and pmd callbacks: on two
        levels all four see the same directory entry."""
        prot = pde & PTE_FLAGS_MASK
        self.prot_levels[0] = prot
        for level in (1, 2, 3):
            self.prot_levels[level] = (self.prot_levels[level - 1] & prot
                                       & (_PAGE_USER | _PAGE_RW))

    def pte_eff(self, pte):
        """effective_prot() at the pte level."""
        return self.prot_levels[3] & pte & (_PAGE_USER | _PAGE_RW)

    def level_effective_prot(self, level, val):
        """x86's effective_prot() callback: the US/RW bits every level grants, and NX
        if any level sets it, stored in prot_levels[level] and returned."""
        prot = val & self.flags_mask
        if level:
            higher = self.prot_levels[level - 1]
            prot = (higher & prot & (_PAGE_USER | _PAGE_RW)) | ((higher | prot) & self.nx)
        self.prot_levels[level] = prot
        return prot

    def note_page(self, addr, level, val, eff=None):
        """note_page(): start a new range when anything but the address changes."""
        new_prot = val & self.flags_mask
        if not val:
            new_eff = 0
        elif eff is None:
            new_eff = self.prot_levels[level]
        else:
            new_eff = eff
        if self.level == -1:
            self._begin(addr, new_prot, new_eff, level, val)
            self.items.append(MarkerLine(self.markers[self.marker].name))
            return
        crossed = addr >= self.next_marker
        if (new_prot != self.current_prot or new_eff != self.effective_prot
                or level != self.level or crossed
                or (not self.merge and (new_prot | self.current_prot) & _PAGE_PRESENT)):
            self._flush(addr)
            if crossed:
                self.marker += 1
                self.next_marker = self.markers[self.marker + 1].start_address
                self.items.append(MarkerLine(self.markers[self.marker].name))
            self._begin(addr, new_prot, new_eff, level, val)

    def next_marker_start(self):
        """Where the next marker starts (0xffffffff past the last one)."""
        return self.next_marker

    def finish(self, end=SPACE_END):
        """The walker's final note_page(st, 0, -1, 0): print the open range.

        Linux calls it with address 0, which never reaches the next marker;
        so no marker line follows, also when a region ends at a marker.
        """
        if self.level != -1:
            self._flush(end)
            self.level = -1

    def _begin(self, addr, prot, eff, level, val):
        self.start_address = addr
        self.current_prot = prot
        self.effective_prot = eff
        self.level = level
        if not self.merge:
            self.phys = _entry_phys(val, level, self.phys_masks) if prot & _PAGE_PRESENT else None

    def _flush(self, addr):
        self.items.append(PtRange(self.start_address, addr, self.current_prot,
                                  self.effective_prot, self.level, self.phys))


def _entry_phys(val, level, masks=(PDE_LARGE_MASK, PTE_PFN_MASK)):
    return val & (masks[0] if level == PMD_LEVEL else masks[1])


# -- the walk ---------------------------------------------------------------

# Byte 1 of an entry holds flag bits 8-11 in its low nibble (the rest is frame).
_LOW_NIBBLE = bytes(b & 0x0F for b in range(256))
_HIGH_NIBBLE = bytes(b & 0xF0 for b in range(256))       # byte 6 of a PAE entry: bits 52-55
_RUN = re.compile(rb"(..)\1*", re.DOTALL)
_RUN4 = re.compile(rb"(....)\1*", re.DOTALL)


def pte_runs(pm, table, first=0, last=PTRS_PER_PTE, size=4):
    """Runs of equal flag bits in entries first..last-1 of the page table at
    physical address ``table``: a list of entry indexes where a run starts.

    size is the entry size, 4 (686) or 8 (PAE, whose flag bits include bits
    52-63 in the top bytes).  Reads the table as bytes, never entry by
    entry: one run costs a few comparisons, a mixed table one
    regular-expression scan.
    """
    raw = pm.u8[table + size * first:table + size * last]
    n = last - first
    cols = [bytes(raw[0::size]), bytes(raw[1::size]).translate(_LOW_NIBBLE)]
    if size == 8:
        cols += [bytes(raw[6::8]).translate(_HIGH_NIBBLE), bytes(raw[7::8])]
    if all(c.count(c[0]) == n for c in cols):
        return [first]
    width = len(cols)
    keys = bytearray(width * n)
    for i, col in enumerate(cols):
        keys[i::width] = col
    run = _RUN if width == 2 else _RUN4
    return [first + m.start() // width for m in run.finditer(keys)]


def pmd_none(pde):
    """pmd_none(): only Accessed and Dirty set still counts as empty (KNL erratum)."""
    return not pde & ~_PAGE_KNL_ERRATUM_MASK & 0xFFFFFFFF


def ptdump_walk_pgd(st, pm, pgd, start=0, end=SPACE_END):
    """ptdump_walk_pgd() over [start, end): feed note_page() in address order.

    Models mm/ptdump.c and mm/pagewalk.c for two-level tables: one note per
    empty directory entry (a "pgd" hole) and per 4 MiB page ("pmd"); page
    tables are fed run by run (see _walk_pte_table()).  A directory entry
    that is neither empty, large nor present is skipped, as
    walk_pmd_range() skips it; one that points outside RAM is noted as it
    is, at the pmd level, rather than read.
    """
    u32 = pm.u32
    base = pgd >> 2
    for index in range(pgd_index(start), pgd_index(end - 1) + 1):
        addr = index << PGDIR_SHIFT
        lo = max(addr, start)
        pde = u32[base + index]
        if pmd_none(pde):
            st.note_page(lo, PGD_LEVEL, 0)
            continue
        st.set_pde(pde)
        table = pde & PTE_PFN_MASK
        if pde & _PAGE_PSE or (pde & _PAGE_PRESENT and table + PAGE_SIZE > pm.size):
            st.note_page(lo, PMD_LEVEL, pde)
        elif pde & _PAGE_PRESENT:
            hi = min(addr + PMD_SIZE, end)
            _walk_pte_table(st, pm, table, addr, lo, hi)
    st.finish(end)
    return st.items


def ptdump_walk_pgd_3level(st, pm, pgd, start=0, end=SPACE_END):
    """ptdump_walk_pgd() on PAE tables over [start, end).

    Models mm/ptdump.c and mm/pagewalk.c with PGTABLE_LEVELS 3: p4d and pud
    are folded into the 4-entry pgd (the PDPT).  An empty PDPT entry is a
    "pgd" hole (real_depth(2) is 0), an empty pmd entry a "pmd" hole, a
    2 MiB page a "pmd" note, a page table's entries "pte" notes (run by
    run).  The pgd, p4d and pud callbacks all see the PDPT entry, and each
    runs effective_prot() on it.
    """
    from mmemu.arch.x86.pgtable_3level import (PGDIR_SHIFT as shift3, PMD_SHIFT as pmd_shift,
                                               PTE_PFN_MASK as pfn_mask)
    u64 = pm.u64
    pmd_size = 1 << pmd_shift
    for index in range(start >> shift3, ((end - 1) >> shift3) + 1):
        base = index << shift3
        pdpte = u64[(pgd >> 3) + index]
        if pmd_none(pdpte):
            st.note_page(max(base, start), PGD_LEVEL, 0)
            continue
        for level in (0, 1, 2):                  # pgd, p4d, pud: the same entry
            st.level_effective_prot(level, pdpte)
        pmd = pdpte & pfn_mask
        if not pdpte & _PAGE_PRESENT or pmd + PAGE_SIZE > pm.size:
            continue
        lo_i = max(start, base) >> pmd_shift & 511
        hi_i = ((min(end, base + (1 << shift3)) - 1) >> pmd_shift & 511) + 1
        for i in range(lo_i, hi_i):
            addr = base + (i << pmd_shift)
            lo = max(addr, start)
            entry = u64[(pmd >> 3) + i]
            if pmd_none(entry):
                st.note_page(lo, PMD_LEVEL, 0)
                continue
            st.level_effective_prot(PMD_LEVEL, entry)
            table = entry & pfn_mask
            if entry & _PAGE_PSE or (entry & _PAGE_PRESENT and table + PAGE_SIZE > pm.size):
                st.note_page(lo, PMD_LEVEL, entry, st.prot_levels[PMD_LEVEL])
            elif entry & _PAGE_PRESENT:
                _walk_pte_table_3level(st, pm, table, addr, lo, min(addr + pmd_size, end))
    st.finish(end)
    return st.items


def _walk_pte_table_3level(st, pm, table, addr, lo, hi):
    """walk_pte_range() on a PAE page table, run by run (see _walk_pte_table())."""
    u64 = pm.u64
    w = table >> 3
    first = (lo >> PAGE_SHIFT) & 511
    last = ((hi - 1) >> PAGE_SHIFT & 511) + 1
    if not st.merge:
        for i in range(first, last):
            pte = u64[w + i]
            st.note_page(addr + (i << PAGE_SHIFT), PTE_LEVEL, pte,
                         st.level_effective_prot(PTE_LEVEL, pte))
        return
    runs = pte_runs(pm, table, first, last, size=8)
    runs.append(last)
    for r in range(len(runs) - 1):
        at = addr + (runs[r] << PAGE_SHIFT)
        run_end = addr + (runs[r + 1] << PAGE_SHIFT)
        pte = u64[w + runs[r]]
        eff = st.level_effective_prot(PTE_LEVEL, pte)
        st.note_page(at, PTE_LEVEL, pte, eff)
        while st.next_marker_start() < run_end:
            nxt = (st.next_marker_start() + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
            at = max(nxt, at + PAGE_SIZE)
            if at >= run_end:
                break
            st.note_page(at, PTE_LEVEL, u64[w + ((at - addr) >> PAGE_SHIFT)], eff)


def _walk_pte_table(st, pm, table, addr, lo, hi):
    """walk_pte_range() for [lo, hi) of the table mapping ``addr``.

    Linux notes every entry; notes inside a run of equal entries change
    nothing except where an entry lies at or past the next marker.  So one
    note per run, plus one at each entry where the kernel's walk would
    cross a marker (the state's next marker, which lags behind as Linux's
    does: a marker is passed only by a note at or after it).
    """
    u32 = pm.u32
    w = table >> 2
    first = pte_index(lo)
    last = pte_index(hi - 1) + 1
    if not st.merge:
        for i in range(first, last):
            pte = u32[w + i]
            st.note_page(addr + (i << PAGE_SHIFT), PTE_LEVEL, pte, st.pte_eff(pte))
        return
    runs = pte_runs(pm, table, first, last)
    runs.append(last)
    pde_eff = st.prot_levels[3]
    note_page = st.note_page
    for r in range(len(runs) - 1):
        at = addr + (runs[r] << PAGE_SHIFT)
        run_end = addr + (runs[r + 1] << PAGE_SHIFT)
        pte = u32[w + runs[r]]
        eff = pde_eff & pte & (_PAGE_USER | _PAGE_RW)
        note_page(at, PTE_LEVEL, pte, eff)
        while st.next_marker_start() < run_end:
            nxt = (st.next_marker_start() + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
            at = max(nxt, at + PAGE_SIZE)
            if at >= run_end:
                break
            note_page(at, PTE_LEVEL, u32[w + ((at - addr) >> PAGE_SHIFT)], eff)


# -- regions ----------------------------------------------------------------

REGION_ALIASES = {
    "user": "User Space", "kernel": "Kernel Mapping", "lowmem": "Kernel Mapping",
    "direct": "Kernel Mapping", "vmalloc": "vmalloc() Area", "vmalloc-end": "vmalloc() End",
    "pkmap": "Persistent kmap() Area", "kmap": "Persistent kmap() Area",
    "ldt": "LDT remap", "cpu-entry": "CPU entry area", "cpu_entry": "CPU entry area",
    "fixmap": "Fixmap area",
}


def region_range(layout, region):
    """[start, end) of a named region (see REGION_ALIASES) or of "START-END"."""
    markers = address_markers(layout)
    name = REGION_ALIASES.get(region.lower(), region)
    for i, m in enumerate(markers):
        if m.name.lower() == name.lower():
            end = markers[i + 1].start_address if i + 1 < len(markers) else SPACE_END
            return m.start_address, end
    if region.lower() in ("all", "kernel-half"):
        return (0 if region.lower() == "all" else PAGE_OFFSET), SPACE_END
    if "-" in region:
        try:
            start, end = (int(x, 0) for x in region.split("-", 1))
        except ValueError:
            start = end = None
        if start is not None and 0 <= start < end <= SPACE_END:
            return start & ~(PAGE_SIZE - 1), (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    choices = ", ".join(sorted(REGION_ALIASES) + ["all", "kernel-half", "START-END"])
    raise UsageError(f"unknown region {region!r} (one of: {choices})")


def _marker_index(markers, addr):
    starts = [m.start_address for m in markers]
    return max(bisect.bisect_right(starts, addr) - 1, 0)


# -- the API ------------------------------------------------------------------

def _pgd_of(machine: Target) -> int:
    return machine.pgtable.pgd


def ptdump_walk(machine: Target, start: int = 0, end: int = SPACE_END, all_ptes: bool = False,
                pgd: Optional[int] = None) -> list[Union[MarkerLine, PtRange]]:
    """Walk a machine's page directory (swapper_pg_dir unless ``pgd`` is given).

    Returns the items to print: MarkerLine and PtRange, in address order.
    >>> [r for r in ptdump_walk(m) if isinstance(r, PtRange) and r.present][0]
    """
    markers = address_markers(machine.layout)
    flavour = _flavour_of(machine)
    st = PgState(markers, _marker_index(markers, start), merge=not all_ptes, flavour=flavour)
    pgd = _pgd_of(machine) if pgd is None else pgd
    if flavour is not None and flavour.pae:
        return ptdump_walk_pgd_3level(st, machine.pm, pgd, start, end)
    return ptdump_walk_pgd(st, machine.pm, pgd, start, end)


def _flavour_of(machine: Target) -> Flavour:
    """The machine's kernel flavour (its page tables')."""
    return machine.pgtable.flavour


@functools.lru_cache(maxsize=4096)
def printk_prot(pr, level):
    """printk_prot(): the flag columns and the level name of one range."""
    if not pr & _PAGE_PRESENT:
        cols = " " * 30
    else:
        cols = "".join((
            "USR " if pr & _PAGE_USER else "    ",
            "RW " if pr & _PAGE_RW else "ro ",
            "PWT " if pr & _PAGE_PWT else "    ",
            "PCD " if pr & _PAGE_PCD else "    ",
            "PSE " if level <= PMD_LEVEL and pr & _PAGE_PSE else "    ",
            "PAT " if ((level == PTE_LEVEL and pr & _PAGE_PAT)
                       or (level in (2, 3) and pr & _PAGE_PAT_LARGE)) else "    ",
            "GLB " if pr & _PAGE_GLOBAL else "    ",
            "NX " if pr & _PAGE_NX_PAE else "x  ",
        ))
    return cols + LEVEL_NAMES[level]


def format_size(start, end):
    """note_page()'s ``%9lu%c``: the size in the largest unit that divides it."""
    return _format_delta((end - start) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=4096)
def _format_delta(delta):
    unit = 0
    while not delta & 1023 and unit < len(_UNITS) - 1:
        delta >>= 10
        unit += 1
    return f"{delta:9d}{_UNITS[unit]}"


def format_item(item):
    """One line of the dump, without the newline."""
    if isinstance(item, MarkerLine):
        return f"---[ {item.name} ]---"
    line = (f"0x{item.start:08x}-0x{item.end & 0xFFFFFFFF:08x}   "
            f"{format_size(item.start, item.end)} {printk_prot(item.prot, item.level)}")
    if item.phys is not None:
        line += f"  phys=0x{item.phys:08x}"
    return line


def ptdump_text(machine: Target, region: Optional[str] = None, all_ptes: bool = False) -> str:
    """The dump as text: the whole space, or one region (see region_range())."""
    start, end = (0, SPACE_END) if region is None else region_range(machine.layout, region)
    items = ptdump_walk(machine, start, end, all_ptes)
    lines = [format_item(i) for i in items]
    if region is None:
        lines += [f"mmemu: {w}" for w in ptdump_check(machine, items)]
    return "\n".join(lines) + "\n"


# -- checks -----------------------------------------------------------------

def ptdump_check_wx(items, flavour=None):
    """ptdump_walk_pgd_level_checkwx() as 6.1 runs it at mark_rodata_ro() time.

    686: not at all.  mark_rodata_ro() calls debug_checkwx() only when
    __supported_pte_mask has _PAGE_NX, which needs PAE; every writable
    kernel page is executable there, so the check would find them all.
    686-pae: note_page() counts the pages of ranges whose *effective* prot
    is RW and not NX.  Effective RW comes down from the PDPT entry, which
    never has it, so 6.1 finds none: "passed" (see the module doc, and
    ptdump_check_wx_leaves() for mmemu's own check).  Returns the lines the
    kernel prints.
    """
    if flavour is None or not flavour.pae:
        return []
    pages = sum(r.pages for r in items if isinstance(r, PtRange) and r.present
                and r.eff & _PAGE_RW and not r.eff & _PAGE_NX_PAE)
    if pages:
        return [f"x86/mm: Checked W+X mappings: FAILED, {pages} W+X pages found."]
    return [WX_PASSED]


WX_PASSED = "x86/mm: Checked W+X mappings: passed, no W+X pages found."


def ptdump_check_wx_leaves(items, flavour=None):
    """Kernel ranges that are writable and executable by their own entries (PAE).

    Not a Linux check: 6.1's looks at effective permissions, which on
    686-pae never include RW (see ptdump_check_wx()), so it cannot see what
    this finds: a present kernel mapping with RW set and NX clear, at the
    pte or pmd level.  Returns warning lines, in mmemu's words.
    """
    if flavour is None or not flavour.pae:
        return []
    out = []
    for r in items:
        if (isinstance(r, PtRange) and r.end > PAGE_OFFSET and r.present
                and r.prot & _PAGE_RW and not r.prot & _PAGE_NX_PAE):
            start = max(r.start, PAGE_OFFSET)
            out.append(f"W+X mapping at 0x{start:08x}-0x{r.end & 0xFFFFFFFF:08x} "
                       f"({(r.end - start) >> PAGE_SHIFT} pages, {LEVEL_NAMES[r.level]}): "
                       f"writable and executable; 6.1's own check passes it (the PDPT "
                       f"entry grants no effective RW)")
    return out


def ptdump_check_user(items, flavour=None):
    """Ranges in the kernel half that user mode can reach (effective USR).

    Not a Linux check (it trusts its own tables); mmemu flags them because a
    guest program can build them by mistake.  On PAE the hardware takes
    USR from the pmd and pte only (a PDPT entry has no such bit), so the
    leaf entry's bit is checked there.  Returns warning lines.
    """
    out = []
    pae = flavour is not None and flavour.pae
    for r in items:
        user = (r.prot if pae else r.eff) & _PAGE_USER if isinstance(r, PtRange) else 0
        if isinstance(r, PtRange) and r.end > PAGE_OFFSET and r.present and user:
            start = max(r.start, PAGE_OFFSET)
            out.append(f"x86/mm: Found user-accessible mapping in kernel space at "
                       f"0x{start:08x}-0x{r.end & 0xFFFFFFFF:08x} "
                       f"({(r.end - start) >> PAGE_SHIFT} pages)")
    return out


def ptdump_check(machine: Target,
                 items: Optional[list[Union[MarkerLine, PtRange]]] = None) -> list[str]:
    """Every check on a walk's items: W+X (silent without NX; 6.1's and, on
    PAE, mmemu's own on the leaf entries) and user-in-kernel."""
    if items is None:
        items = ptdump_walk(machine, PAGE_OFFSET, SPACE_END)
    flavour = _flavour_of(machine)
    # mmemu's own W+X check looks once a program is loaded, as 6.1 checks once
    # mark_rodata_ro() has run: until then the image is writable and executable.
    leaves = ptdump_check_wx_leaves(items, flavour) if machine.image is not None else []
    return ptdump_check_wx(items, flavour) + leaves + ptdump_check_user(items, flavour)


# -- the CLI --------------------------------------------------------------

def parse_address(text):
    """An address from the command line: hex with or without 0x, or a decimal."""
    try:
        value = int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) or text.isdigit() \
            else int(text, 16)
    except ValueError:
        raise UsageError(f"not an address: {text!r}") from None
    if not 0 <= value < SPACE_END:
        raise UsageError(f"address out of the 32-bit space: {text!r}")
    return value
