"""What the memory picture shows: every page frame's owner, what changed
between two states, and the counts behind the legend.

Every frame gets one code: a kind (KINDS: reserved, kernel image, mem_map,
page tables, allocated, vmalloc, kmap, ...), a free buddy block of order
0..10, or a slab cache.  The classification is the one `ptdump --lookup`
gives (mmemu.views.owner), done for all frames at once: mem_map is read as
strided columns (page_types.scan_mem_map) and the work per frame runs in C;
Python runs per distinct struct page state, per free block, per slab and
per mapped kernel page.  Two FrameMaps of one machine (before and after a
program) compare frame by frame into a FrameDiff, whose clusters are the
zoom windows of the picture.

The drawing is in memmap_draw (layout) and memmap_image (PNG, SVG); the
command's options and its before/after logic in mmemu/cli_memmap.py.
"""
import re
from collections import Counter
from dataclasses import dataclass, field

from mmemu.errors import UsageError
from mmemu.layout import PAGE_SHIFT, PAGE_SIZE, ZONE_NAMES
from mmemu.mm.mmzone import PAGE_TYPE_BASE, PG_reserved, PG_table, STRUCT_PAGE_SIZE
from mmemu.views import owner
from mmemu.views.page_types import NR_PAGE_ORDERS, decode_key, scan_mem_map

# -- what a frame can be ---------------------------------------------------------

KINDS = (  # (kind, legend label); a frame's code is its index here
    ("no-ram", "no RAM (hole)"),
    ("device", "device MMIO"),
    ("host", "the host program's (config host:)"),
    ("reserved", "other reservations"),
    ("kernel-image", "kernel image"),
    ("mem_map", "mem_map (struct pages)"),
    ("boot-pgtable", "boot page tables"),
    ("pgtable", "page tables"),
    ("allocated", "page allocator"),
    ("vmalloc", "vmalloc"),
    ("kmap", "kmap'd (HighMem)"),
    ("unused", "refcount 0, no flags"),
    ("pcp", "per-cpu lists"),
)
KIND_CODE = {kind: i for i, (kind, _) in enumerate(KINDS)}
FREE_BASE = len(KINDS)                         # free blocks of order 0..10
SLAB_BASE = FREE_BASE + NR_PAGE_ORDERS         # slab caches, one code each
NR_CODES = 256
RESERVED_KINDS = ("reserved", "kernel-image", "mem_map", "boot-pgtable", "host")
NO_RAM, DEVICE, HOST = KIND_CODE["no-ram"], KIND_CODE["device"], KIND_CODE["host"]


def is_free_code(code):
    """A frame nobody holds: in a buddy block or on a per-cpu list.

    A frame with no references that is in neither ("unused") counts as held:
    after boot that is the tail of a non-compound order > 0 allocation
    whose order the picture could not learn (a snapshot keeps no
    mm.alloc_orders), or a page between the allocator and its user.
    """
    return FREE_BASE <= code < SLAB_BASE or code == KIND_CODE["pcp"]


def is_held_code(code):
    """A frame something owns: slab, page tables, allocations, reservations."""
    return not is_free_code(code) and code not in (NO_RAM, DEVICE, HOST)


class SlabCodes:
    """The code of every slab cache seen so far, shared by the FrameMaps that
    are compared, so a cache keeps its code (and colour) from one to the
    next.  Past 256 - SLAB_BASE caches codes are shared ("a, b")."""

    def __init__(self):
        self.code_of = {}           # (kmem_cache pointer, name) -> code
        self.names = {}             # code -> name

    def code(self, machine, cache_ptr):
        name = owner.slab_cache_name(machine, cache_ptr)
        key = (cache_ptr, name)
        code = self.code_of.get(key)
        if code is None:
            code = SLAB_BASE + len(self.code_of) % (NR_CODES - SLAB_BASE)
            self.code_of[key] = code
            old = self.names.get(code)
            self.names[code] = name if old is None or old == name else f"{old}, {name}"
        return code


@dataclass
class FrameMap:
    """The code of every frame from pfn 0 to len(codes), of one machine at one time."""

    codes: bytearray
    slabs: SlabCodes
    nr_pages: int                   # frames with a struct page (mem_map's length)
    scan: object = None             # the page_types.MemMapScan it came from

    def kind_of(self, pfn):
        """A KINDS name, "free-N" or "slab:<cache>"."""
        return code_kind(self.codes[pfn], self.slabs)

    def counts(self, first=0, last=None):
        """{code: frames} over [first, last)."""
        return Counter(bytes(self.codes[first:last if last is not None else len(self.codes)]))


def code_kind(code, slabs=None):
    if FREE_BASE <= code < SLAB_BASE:
        return f"free-{code - FREE_BASE}"
    if code >= SLAB_BASE:
        return f"slab:{slabs.names[code] if slabs else '?'}"
    return KINDS[code][0]


def code_words(code, slabs=None):
    """A code in words, for a tooltip: "free (a buddy block of order 3)"."""
    if FREE_BASE <= code < SLAB_BASE:
        return f"free (a buddy block of order {code - FREE_BASE})"
    if code >= SLAB_BASE:
        return f"slab (cache {slabs.names[code] if slabs else '?'})"
    return KINDS[code][1]


def code_label(code, slabs):
    """The legend's words for a code."""
    if FREE_BASE <= code < SLAB_BASE:
        return f"order {code - FREE_BASE}"
    if code >= SLAB_BASE:
        return slabs.names[code]
    return KINDS[code][1]


# -- classifying every frame ----------------------------------------------------

def frame_classes(machine, span="ram", slabs=None):
    """A FrameMap of every frame: span "ram" covers mem_map, "all" 4 GiB, a
    number that many frames from pfn 0 (at least mem_map's)."""
    nr = machine.mem_map.nr_pages
    if span == "ram":
        total = nr
    elif span == "all":
        total = 1 << 20
    elif isinstance(span, int) and span > 0:
        total = max(nr, min(span, 1 << 20))
    else:
        raise UsageError(f"span must be 'ram', 'all' or a number of frames, not {span!r}")
    slabs = slabs or SlabCodes()
    codes = bytearray([NO_RAM]) * total
    scan = scan_mem_map(machine)
    codes[:nr] = _struct_page_codes(scan)
    _mark_high_order_tails(machine, codes)
    _mark_reservations(machine, codes, nr)
    _mark_kernel_mappings(machine, codes)
    _mark_free_blocks(codes, scan)
    _mark_pcp(machine, codes, scan)
    _mark_slabs(machine, codes, scan, slabs)
    _mark_no_ram(machine, codes, nr)
    _mark_devices(machine, codes, total)
    return FrameMap(codes, slabs, nr, scan)


def _struct_page_codes(scan):
    """First pass, from the struct page alone: reserved, page table, allocated, unused."""
    def code(key):
        flags, mapcount, tail, ref_zero = decode_key(key)[:4]
        if mapcount & PAGE_TYPE_BASE == PAGE_TYPE_BASE and not mapcount & PG_table:
            return KIND_CODE["pgtable"]
        if flags >> PG_reserved & 1:
            return KIND_CODE["reserved"]
        if ref_zero and not tail:          # a compound page's tails have no references
            return KIND_CODE["unused"]
        return KIND_CODE["allocated"]

    table = {key: code(key) for key in set(scan.keys)}
    return bytes(map(table.__getitem__, scan.keys))


def _mark_high_order_tails(machine, codes):
    """The tail pages of a non-compound order > 0 allocation are held too.

    Linux gives such a block one reference, on its first page, and records
    its order nowhere in struct page: the tails look unused (refcount 0, no
    flags), which is what page-types shows.  The host page allocator keeps
    the orders (mm.alloc_orders) for its own checks; a snapshot has none.
    """
    orders = machine.mm.alloc_orders if machine.mm is not None else {}
    unused, allocated = KIND_CODE["unused"], KIND_CODE["allocated"]
    for head, order in orders.items():
        if codes[head] == allocated:
            _fill_if(codes, head + 1, head + (1 << order), unused, allocated)


def _mark_reservations(machine, codes, nr):
    """Name the reserved frames that are boot page tables, mem_map or the kernel
    image, in that order (swapper_pg_dir and the .brk page tables lie in the
    image: they are shown as the page tables they are, as the lookup says)."""
    reserved = KIND_CODE["reserved"]
    for pfn in owner.page_table_pfns(machine):
        if pfn < nr and codes[pfn] == reserved:
            codes[pfn] = KIND_CODE["boot-pgtable"]
    mem_map = machine.mem_map
    first = mem_map.phys >> PAGE_SHIFT
    last = (mem_map.phys + mem_map.nr_pages * STRUCT_PAGE_SIZE + PAGE_SIZE - 1) >> PAGE_SHIFT
    _fill_if(codes, first, last, reserved, KIND_CODE["mem_map"])
    kimage = machine.kernel_image
    _fill_if(codes, kimage.text >> PAGE_SHIFT, kimage.brk_end >> PAGE_SHIFT,
             reserved, KIND_CODE["kernel-image"])


def _fill_if(codes, first, last, was, now):
    """Frames in [first, last) of code ``was`` become ``now``."""
    last = min(last, len(codes))
    if first >= last:
        return
    chunk = bytes(codes[first:last])
    codes[first:last] = chunk.replace(bytes([was]), bytes([now]))


def _mark_kernel_mappings(machine, codes):
    """Allocated frames mapped in the vmalloc area or a kmap slot."""
    allocated = KIND_CODE["allocated"]
    lay = machine.layout
    for pfn, vas in owner.kernel_rmap(machine).items():
        if pfn >= len(codes) or codes[pfn] != allocated:
            continue
        va = vas[0]
        if lay.vmalloc_start <= va < lay.vmalloc_end:
            codes[pfn] = KIND_CODE["vmalloc"]
        elif va >= lay.pkmap_base:
            codes[pfn] = KIND_CODE["kmap"]


def _mark_free_blocks(codes, scan):
    for head, order in scan.free_blocks:
        n = min(1 << order, scan.nr - head)
        codes[head:head + n] = bytes([FREE_BASE + order]) * n


def _mark_pcp(machine, codes, scan):
    """Free pages on the per-cpu lists (no mark in mem_map: owner.pcp_pages())."""
    unused = KIND_CODE["unused"]
    for pfn in owner.pcp_pages(machine):
        if pfn < scan.nr and codes[pfn] == unused:
            codes[pfn] = KIND_CODE["pcp"]


def _mark_slabs(machine, codes, scan, slabs):
    for head, pages, cache in scan.slabs:
        codes[head:head + pages] = bytes([slabs.code(machine, cache)]) * pages


def _mark_no_ram(machine, codes, nr):
    """Frames inside mem_map with no byte of e820 usable RAM (the BIOS hole, gaps)."""
    ram = sorted((r.start, r.end) for r in machine.cfg.ram)
    prev_end = 0
    for start, end in ram + [(nr << PAGE_SHIFT, nr << PAGE_SHIFT)]:
        first = (prev_end + PAGE_SIZE - 1) >> PAGE_SHIFT
        last = min(start >> PAGE_SHIFT, nr)
        if first < last:
            codes[first:last] = bytes([NO_RAM]) * (last - first)
        prev_end = max(prev_end, end)


def _mark_devices(machine, codes, total):
    """Device windows, and the ranges the host program keeps (PG_reserved
    frames when they are RAM: the legend counts them with the reservations).
    The doorbell page stays a reserved frame of the first MiB."""
    windows = [(dev.base, dev.base + dev.size, DEVICE) for dev in machine.cfg.devices]
    windows += [(h.start, h.end, HOST) for h in machine.cfg.host]
    for start, end, code in windows:
        first, last = start >> PAGE_SHIFT, min(end >> PAGE_SHIFT, total)
        if first < last:
            codes[first:last] = bytes([code]) * (last - first)


# -- spans ------------------------------------------------------------------------

_SIZE = re.compile(r"(0x[0-9a-f]+|\d+)([kmg]?)(?:i?b)?$", re.I)
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text):
    """A physical address or size: 0x1000000, 16M, 16MiB, 4096 (bytes)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise UsageError(f"bad address {text!r}: a number (0x.. or decimal) with an optional "
                         f"K, M or G")
    return int(m.group(1), 0) * _UNIT[m.group(2).lower()]


def parse_span(text, nr_pages):
    """[first pfn, last pfn) of a span: "ram" (mem_map's frames), "all" (4 GiB),
    or physical START-END / START+SIZE (16M-32M, 0x1000000+4M), rounded out
    to whole pages."""
    text = (text or "ram").strip()
    if text == "ram":
        return 0, nr_pages
    if text == "all":
        return 0, 1 << 20
    sep = "+" if "+" in text else "-"
    start_text, _, end_text = text.partition(sep)
    if not start_text or not end_text:
        raise UsageError(f"bad span {text!r}: ram, all, START-END or START+SIZE "
                         f"(physical addresses: 16M-32M, 0x100000+64K)")
    start = parse_size(start_text)
    end = start + parse_size(end_text) if sep == "+" else parse_size(end_text)
    if end > 1 << 32:
        raise UsageError(f"span {text!r} ends past 4 GiB, the end of i386 physical memory "
                         f"without PAE")
    if start >= end:
        raise UsageError(f"span {text!r} is empty: START must be below END")
    return start >> PAGE_SHIFT, (end + PAGE_SIZE - 1) >> PAGE_SHIFT


# -- what changed -----------------------------------------------------------------

NO_CHANGE, ALLOCATED, FREED, REUSED, RESHUFFLED = range(5)
CHANGE_NAMES = {
    ALLOCATED: "allocated (free before, held after)",
    FREED: "freed (held before, free after)",
    REUSED: "reused (held before and after, by another owner)",
    RESHUFFLED: "still free, in another free block or list",
}
OUTLINED = (ALLOCATED, FREED, REUSED)


@dataclass
class FrameDiff:
    """How each frame changed between two FrameMaps (a change code per frame)."""

    change: bytearray
    counts: dict = field(default_factory=dict)      # change code -> frames

    def counts_in(self, first, last):
        """{change code: frames} in [first, last)."""
        counts = Counter(bytes(self.change[first:last]))
        counts.pop(NO_CHANGE, None)
        return dict(counts)

    def outlined(self, first=0, last=None):
        """The pfns of frames whose owner changed (not the reshuffled free ones)."""
        return self._pfns(b"[\x01-\x03]", first, last)

    def moved(self, first=0, last=None):
        """The pfns of frames free before and after, in another block or list now."""
        return self._pfns(b"\x04", first, last)

    def _pfns(self, pattern, first, last):
        last = len(self.change) if last is None else last
        return [first + m.start() for m in re.finditer(pattern, bytes(self.change[first:last]))]


def diff_frames(before, after):
    """Frame by frame: what a program did between two FrameMaps."""
    n = min(len(before.codes), len(after.codes))
    a, b = bytes(before.codes[:n]), bytes(after.codes[:n])
    change = bytearray(n)
    x = (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(n, "little")
    for m in re.finditer(rb"[^\x00]+", x):
        for pfn in range(m.start(), m.end()):
            change[pfn] = _change(a[pfn], b[pfn])
    counts = Counter(change)
    counts.pop(NO_CHANGE, None)
    return FrameDiff(change, dict(counts))


def _change(was, now):
    if is_free_code(was):
        return RESHUFFLED if is_free_code(now) else ALLOCATED
    if is_free_code(now):
        return FREED if is_held_code(was) else RESHUFFLED
    return REUSED


@dataclass(frozen=True)
class ZoomWindow:
    """A window of frames drawn large: [first, last) and the changes inside."""

    label: str
    first: int
    last: int
    changed: int


def zoom_windows(diff, first, last, limit=3, smallest=256, largest=2048):
    """Up to ``limit`` windows around the clusters of changed frames in
    [first, last) (frames whose owner changed; when there are none, free
    frames that moved): each a power of two of frames (smallest..largest),
    aligned, the clusters with the most changed frames first, then in pfn order."""
    pfns = diff.outlined(first, last) or diff.moved(first, last)
    clusters = []
    for pfn in pfns:
        if clusters and pfn - clusters[-1][1] < largest // 2:
            clusters[-1][1] = pfn
            clusters[-1][2] += 1
        else:
            clusters.append([pfn, pfn, 1])
    clusters.sort(key=lambda c: -c[2])
    windows = [_window(lo, hi, n, first, last, smallest, largest) for lo, hi, n in clusters[:limit]]
    windows.sort()
    return [ZoomWindow(chr(ord("A") + i), lo, hi, len(diff.outlined(lo, hi)) + len(diff.moved(lo, hi)))
            for i, (lo, hi, _) in enumerate(windows)]


def _window(lo, hi, n, first, last, smallest, largest):
    size = smallest
    while size < hi - lo + 1 and size < largest:
        size *= 2
    start = max(first, (lo if hi - lo + 1 > size else (lo + hi) // 2 - size // 2) & ~63)
    start = max(first, min(start, last - size))
    return start, min(start + size, last), n


# -- the legend's numbers -----------------------------------------------------------

@dataclass
class LegendGroup:
    """A heading of the legend ("free: buddy blocks") with its entries
    ((code, label, frames)) and their total."""

    title: str
    entries: list
    note: str = ""

    @property
    def total(self):
        return sum(n for _, _, n in self.entries)


def legend_groups(fm, first, last):
    """The legend of [first, last): counts per code, grouped as page-types
    groups frames (buddy, slab, reserved under -r)."""
    counts = fm.counts(first, last)
    slabs = fm.slabs

    def entries(codes):
        return [(c, code_label(c, slabs), counts[c]) for c in codes if counts.get(c)]

    k = KIND_CODE
    groups = [
        LegendGroup("free: buddy blocks", entries(range(SLAB_BASE - 1, FREE_BASE - 1, -1)),
                    "page-types: buddy"),
        LegendGroup("free, not in a buddy block", entries([k["pcp"]])),
        LegendGroup("slab", entries(sorted((c for c in counts if c >= SLAB_BASE),
                                           key=lambda c: slabs.names[c])), "page-types: slab"),
        LegendGroup("allocated", entries([k["allocated"], k["vmalloc"], k["kmap"],
                                          k["pgtable"], k["unused"]])),
        LegendGroup("reserved (PG_reserved)", entries([k[n] for n in RESERVED_KINDS]),
                    "page-types -r: reserved"),
        LegendGroup("no RAM here", entries([NO_RAM, DEVICE])),
    ]
    _move_reserved_holes(groups, fm, first, last)
    return [g for g in groups if g.entries]


def _move_reserved_holes(groups, fm, first, last):
    """Holes inside mem_map (the 640K-1M BIOS area) have a struct page with
    PG_reserved: count them with the reservations, as page-types -r does."""
    inside = fm.counts(first, min(last, fm.nr_pages)).get(NO_RAM, 0)
    if not inside:
        return
    reserved, holes = groups[4], groups[5]
    reserved.entries.append((NO_RAM, "holes (no RAM)", inside))
    holes.entries = [(c, label, n - inside if c == NO_RAM else n)
                     for c, label, n in holes.entries]
    holes.entries = [e for e in holes.entries if e[2]]


def zone_of(layout, pfn):
    """The ZoneSpan holding pfn, or None."""
    for z in layout.zones:
        if z.start_pfn <= pfn < z.end_pfn and z.present_pages:
            return z
    return None


def zone_name(zid):
    return ZONE_NAMES[zid]


# -- tooltips ------------------------------------------------------------------------

_PER_FRAME = {KIND_CODE[k] for k in ("allocated", "pgtable", "boot-pgtable", "vmalloc", "kmap",
                                     "reserved", "kernel-image")}


class FrameTips:
    """What the SVG's tooltips say: for a run of frames, their pfns and
    physical addresses, zone and node, owner (as `ptdump --lookup` words
    it), page-types flags, slab cache, and what changed.

    Frames are grouped into segments that share every line but the pfns: a
    free buddy block, a slab, a run of frames with one owner; pages whose
    owner names an address (vmalloc, kmap, page tables) are one each.
    """

    def __init__(self, machine, fm, before=None, diff=None):
        from mmemu.views.page_types import kpageflags, page_flag_longname, well_known_flags
        self.machine, self.fm, self.before, self.diff = machine, fm, before, diff
        self.kpf = kpageflags(machine)
        self._flag_names = lambda f: page_flag_longname(well_known_flags(f)) or "none"
        self.blocks = dict(fm.scan.free_blocks)
        self.slab_pages = {head: pages for head, pages, _ in fm.scan.slabs}
        self.rmap = owner.kernel_rmap(machine)
        orders = machine.mm.alloc_orders if machine.mm is not None else {}
        self.block_of = {pfn: (head, order) for head, order in orders.items()
                         for pfn in range(head, head + (1 << order))}
        self.zone_bounds = sorted({b for z in machine.layout.zones for b in (z.start_pfn, z.end_pfn)})

    def segments(self, start, end):
        """[(first pfn, end pfn, tooltip text)] covering [start, end)."""
        codes = bytes(self.fm.codes[start:end])
        out = []
        for m in re.finditer(rb"(.)\1*", codes, re.DOTALL):
            for lo, hi in self._cuts(start + m.start(), start + m.end()):
                out.extend(self._run(lo, hi, m.group()[0]))
        return [(lo, hi, self._text(lo, hi, key)) for lo, hi, key in _merge(out)]

    def _cuts(self, lo, hi):
        """[lo, hi) cut at zone boundaries and where the change code changes."""
        cuts = {b for b in self.zone_bounds if lo < b < hi}
        if self.diff is not None:
            ch = bytes(self.diff.change[lo:hi])
            cuts.update(lo + m.end() for m in re.finditer(rb"(.)\1*", ch, re.DOTALL))
        edges = [lo] + sorted(c for c in cuts if lo < c < hi) + [hi]
        return list(zip(edges, edges[1:]))

    def _run(self, lo, hi, code):
        """(lo, hi, key) pieces of a run of one code; equal keys merge."""
        if FREE_BASE <= code < SLAB_BASE or code >= SLAB_BASE:
            return self._blocks(lo, hi, code)
        if code in _PER_FRAME:
            return [(pfn, pfn + 1, (code, self._owner(pfn, code), self._flags(pfn)))
                    for pfn in range(lo, hi)]
        return [(lo, hi, (code, self._owner(lo, code), self._flags(lo)))]

    def _blocks(self, lo, hi, code):
        """A free block or a slab per piece: the run cut where they end."""
        out, pfn = [], lo
        while pfn < hi:
            if code < SLAB_BASE:            # buddy blocks are aligned to their order
                size = 1 << (code - FREE_BASE)
                head = pfn & ~(size - 1)
            else:
                head = pfn
                while head not in self.slab_pages and pfn - head < 1024 and head > 0:
                    head -= 1
                head = head if head in self.slab_pages else pfn
                size = self.slab_pages.get(head, 1)
            end = min(hi, max(head + size, pfn + 1))
            out.append((pfn, end, (code, self._owner(head, code), self._flags(pfn))))
            pfn = end
        return out

    def _owner(self, pfn, code):
        if FREE_BASE <= code < SLAB_BASE:
            return f"free: buddy block of order {code - FREE_BASE} at pfn 0x{pfn:x}"
        if code >= SLAB_BASE:
            return (f"slab: a slab of {self.slab_pages.get(pfn, 1)} page(s) at pfn 0x{pfn:x}\n"
                    f"slab cache: {self.fm.slabs.names[code]}")
        if code == KIND_CODE["allocated"]:
            return self._allocated(pfn)
        if code == KIND_CODE["mem_map"]:
            return "reserved: mem_map (the struct page array)"
        return owner.page_owner(self.machine, pfn, self.rmap).text

    def _allocated(self, pfn):
        """Cheaper than page_owner() for the many frames a program holds."""
        page = owner.read_struct_page(self.machine, pfn)
        head = owner.compound_head(self.machine, page)
        text = f"allocated: page allocator, _refcount {page.refcount}"
        if head is not page or head.test(owner.PG_head):
            text += f", part of a compound page at pfn 0x{head.pfn:x}"
        elif pfn in self.block_of:
            first, order = self.block_of[pfn]
            text += f", part of an order-{order} allocation at pfn 0x{first:x}"
        return text

    def _flags(self, pfn):
        return self._flag_names(self.kpf[pfn]) if pfn < len(self.kpf) else "no struct page"

    def _text(self, lo, hi, key):
        code, owner_text, flags = key
        if hi - lo == 1:
            where = f"pfn 0x{lo:x} (phys 0x{lo << PAGE_SHIFT:08x})"
        else:
            where = (f"pfn 0x{lo:x}-0x{hi - 1:x}: {hi - lo} frames, {frame_size_text(hi - lo)} "
                     f"(phys 0x{lo << PAGE_SHIFT:08x}-0x{(hi << PAGE_SHIFT) - 1:08x})")
        z = zone_of(self.machine.layout, lo)
        lines = [where, f"zone {z.name}, node {z.nid}" if z else "no zone", owner_text,
                 f"flags: {flags}"]
        if self.diff is not None and self.diff.change[lo]:
            was = code_words(self.before.codes[lo], self.before.slabs)
            lines.append(f"changed: {CHANGE_NAMES[self.diff.change[lo]]}; was: {was}")
        return "\n".join(lines)


def _merge(pieces):
    """Adjacent pieces with equal keys as one (lo, hi, key)."""
    out = []
    for lo, hi, key in pieces:
        if out and out[-1][1] == lo and out[-1][2] == key:
            out[-1] = (out[-1][0], hi, key)
        else:
            out.append((lo, hi, key))
    return out


def frame_size_text(frames):
    """frames as a size: 512 KiB, 4 MiB, 1 GiB."""
    kib = frames * (PAGE_SIZE >> 10)
    if kib >= 1 << 20 and kib % (1 << 20) == 0:
        return f"{kib >> 20} GiB"
    if kib >= 1024 and kib % 1024 == 0:
        return f"{kib >> 10} MiB"
    return f"{kib} KiB"
