"""Page frames counted by flags, as tools/vm/page-types prints them.

Models fs/proc/page.c:stable_page_flags() (/proc/kpageflags: the KPF_* bits
a struct page exports) and tools/vm/page-types.c of Linux 6.1 (the summary
table, the flag names, raw mode, page lists, address and bit filters).

mem_map is read in bulk: each struct page field is one strided memoryview
column, the per-frame work runs in C (zip, map, Counter), and Python runs
once per distinct combination of fields, of which there are few.  A 4 GiB
machine's million frames take a fraction of a second.

Differs: no process (-p), file (-f) or cgroup walks, no hwpoison or idle
marking: there are no user processes or files to walk.
"""
from array import array
from collections import Counter
from dataclasses import dataclass

from mmemu.errors import UsageError
from mmemu.layout import PAGE_SHIFT
from mmemu.mm.mmzone import (
    PAGE_TYPE_BASE, PAGE_TYPE_BUDDY, PAGEFLAGS_MASK, PG_active, PG_arch_1, PG_buddy, PG_dirty,
    PG_error, PG_head, PG_locked, PG_lru, PG_mappedtodisk, PG_mlocked, PG_offline,
    PG_owner_priv_1, PG_private, PG_private_2, PG_reclaim, PG_referenced, PG_reserved, PG_slab,
    PG_swapbacked, PG_table, PG_unevictable, PG_uptodate, PG_writeback, STRUCT_PAGE_SIZE,
)

NR_PAGE_ORDERS = 11

# include/uapi/linux/kernel-page-flags.h, include/linux/kernel-page-flags.h,
# and page-types.c's own overloaded bits.
KPF = {
    "LOCKED": 0, "ERROR": 1, "REFERENCED": 2, "UPTODATE": 3, "DIRTY": 4, "LRU": 5,
    "ACTIVE": 6, "SLAB": 7, "WRITEBACK": 8, "RECLAIM": 9, "BUDDY": 10, "MMAP": 11,
    "ANON": 12, "SWAPCACHE": 13, "SWAPBACKED": 14, "COMPOUND_HEAD": 15,
    "COMPOUND_TAIL": 16, "HUGE": 17, "UNEVICTABLE": 18, "HWPOISON": 19, "NOPAGE": 20,
    "KSM": 21, "THP": 22, "OFFLINE": 23, "ZERO_PAGE": 24, "IDLE": 25, "PGTABLE": 26,
    "RESERVED": 32, "MLOCKED": 33, "MAPPEDTODISK": 34, "PRIVATE": 35, "PRIVATE_2": 36,
    "OWNER_PRIVATE": 37, "ARCH": 38, "UNCACHED": 39, "SOFTDIRTY": 40, "ARCH_2": 41,
    "ANON_EXCLUSIVE": 47, "READAHEAD": 48, "SLOB_FREE": 49, "SLUB_FROZEN": 50,
    "SLUB_DEBUG": 51, "FILE": 61, "SWAP": 62, "MMAP_EXCLUSIVE": 63,
}

# page_flag_names[] of page-types.c (6.1), in bit order: "X:name".
PAGE_FLAG_NAMES = {
    0: "L:locked", 1: "E:error", 2: "R:referenced", 3: "U:uptodate", 4: "D:dirty",
    5: "l:lru", 6: "A:active", 7: "S:slab", 8: "W:writeback", 9: "I:reclaim",
    10: "B:buddy", 11: "M:mmap", 12: "a:anonymous", 13: "s:swapcache",
    14: "b:swapbacked", 15: "H:compound_head", 16: "T:compound_tail", 17: "G:huge",
    18: "u:unevictable", 19: "X:hwpoison", 20: "n:nopage", 21: "x:ksm", 22: "t:thp",
    23: "o:offline", 24: "z:zero_page", 25: "i:idle_page", 26: "g:pgtable",
    32: "r:reserved", 33: "m:mlocked", 34: "d:mappedtodisk", 35: "P:private",
    36: "p:private_2", 37: "O:owner_private", 38: "h:arch", 39: "c:uncached",
    40: "f:softdirty", 41: "H:arch_2",
    47: "d:anon_exclusive", 48: "I:readahead", 49: "P:slob_free", 50: "A:slub_frozen",
    51: "E:slub_debug", 61: "F:file", 62: "w:swap", 63: "1:mmap_exclusive",
}

KPF_HACKERS_BITS = 0xFFFF << 32
KPF_OVERLOADED_BITS = 0xFFFF << 48
BITS_COMPOUND = (1 << KPF["COMPOUND_HEAD"]) | (1 << KPF["COMPOUND_TAIL"])
HASH_SHIFT = 13
HASH_SIZE = 1 << HASH_SHIFT

# PG_* bit -> KPF bit, for the flags kpf_copy_bit() copies.
_COPY_BITS = (
    (PG_locked, KPF["LOCKED"]), (PG_slab, KPF["SLAB"]), (PG_error, KPF["ERROR"]),
    (PG_dirty, KPF["DIRTY"]), (PG_uptodate, KPF["UPTODATE"]),
    (PG_writeback, KPF["WRITEBACK"]), (PG_lru, KPF["LRU"]),
    (PG_referenced, KPF["REFERENCED"]), (PG_active, KPF["ACTIVE"]),
    (PG_reclaim, KPF["RECLAIM"]), (PG_swapbacked, KPF["SWAPBACKED"]),
    (PG_unevictable, KPF["UNEVICTABLE"]), (PG_mlocked, KPF["MLOCKED"]),
    (PG_reserved, KPF["RESERVED"]), (PG_mappedtodisk, KPF["MAPPEDTODISK"]),
    (PG_private, KPF["PRIVATE"]), (PG_private_2, KPF["PRIVATE_2"]),
    (PG_owner_priv_1, KPF["OWNER_PRIVATE"]), (PG_arch_1, KPF["ARCH"]),
)


def _bit(name):
    return 1 << KPF[name]


# -- mem_map, read in bulk ------------------------------------------------------
#
# mem_map is copied once as bytes; a "plane" is one byte of one field for
# every frame (a strided slice), tests on a plane are bytes.translate(), and
# planes combine through big-integer AND/OR: all of it runs in C.  Each frame
# then gets one 64-bit key holding what stable_page_flags() reads, and the
# keys are counted; Python runs once per distinct key.

_EQ: dict[int, bytes] = {}


def _eq_table(value):
    if value not in _EQ:
        _EQ[value] = bytes(1 if b == value else 0 for b in range(256))
    return _EQ[value]


def _bit_table(mask):
    return bytes(1 if b & mask else 0 for b in range(256))


def _and(*planes):
    n = len(planes[0])
    acc = int.from_bytes(planes[0], "little")
    for plane in planes[1:]:
        acc &= int.from_bytes(plane, "little")
    return acc.to_bytes(n, "little")


def _or(*planes):
    n = len(planes[0])
    acc = 0
    for plane in planes:
        acc |= int.from_bytes(plane, "little")
    return acc.to_bytes(n, "little")


def ones(plane):
    """Indexes of the 1 bytes of a 0/1 plane."""
    out = []
    i = plane.find(1)
    while i >= 0:
        out.append(i)
        i = plane.find(1, i + 1)
    return out


# Key layout: bytes 0-2 flags (PAGEFLAGS_MASK), 3-5 _mapcount bytes 0, 1, 3,
# byte 6 the derived bits below.
K_TAIL, K_REFZERO, K_FREE, K_SLABTAIL, K_ANON = 1, 2, 4, 8, 16


@dataclass
class MemMapScan:
    """Every frame's struct page, reduced: ``keys`` (one 64-bit key per
    frame, see decode_key()), the free blocks and the slabs."""

    nr: int
    keys: array
    free_blocks: list            # (head pfn, order)
    slabs: list                  # (head pfn, number of pages, slab_cache pointer)


def scan_mem_map(machine):
    """Read mem_map once and reduce it to a MemMapScan."""
    mem_map = machine.mem_map
    n = mem_map.nr_pages
    raw = bytes(machine.pm.u8[mem_map.phys:mem_map.phys + n * STRUCT_PAGE_SIZE])
    u32 = machine.pm.u32
    plane = lambda off: raw[off::STRUCT_PAGE_SIZE]                      # noqa: E731
    mc = [plane(24 + i) for i in range(4)]
    buddy = _and(*(p.translate(_eq_table(b)) for p, b in zip(mc, PAGE_TYPE_BUDDY.to_bytes(4, "little"))))
    free = bytearray(n)
    blocks = []
    for head in ones(buddy):
        order = u32[mem_map.page_word(head, 5)]
        if order < NR_PAGE_ORDERS:
            size = min(1 << order, n - head)
            free[head:head + size] = b"\x01" * size
            blocks.append((head, order))
    slab_tail = bytearray(n)
    slabs = []
    for head in ones(plane(1).translate(_bit_table(1 << (PG_slab - 8)))):
        pages = _compound_pages(u32, mem_map, head, raw[head * STRUCT_PAGE_SIZE + 2] & 1, n)
        slab_tail[head + 1:head + pages] = b"\x01" * (pages - 1)
        slabs.append((head, pages, u32[mem_map.page_word(head, 3)]))
    refzero = _or(*(plane(28 + i) for i in range(4))).translate(_eq_table(0))
    extra = _or(plane(4).translate(_bit_table(1)),
                refzero.translate(bytes([0, K_REFZERO]) + bytes(254)),
                free.translate(bytes([0, K_FREE]) + bytes(254)),
                slab_tail.translate(bytes([0, K_SLABTAIL]) + bytes(254)),
                plane(12).translate(bytes(K_ANON if b & 1 else 0 for b in range(256))))
    keys = bytearray(8 * n)
    for i, part in enumerate((plane(0), plane(1), plane(2).translate(
            bytes(b & (PAGEFLAGS_MASK >> 16) for b in range(256))), mc[0], mc[1], mc[3], extra)):
        keys[i::8] = part
    return MemMapScan(n, array("Q", bytes(keys)), blocks, slabs)


def _compound_pages(u32, mem_map, head, is_head, n):
    """The pages of a compound page at head (1 unless PG_head and a first tail)."""
    if not is_head or head + 1 >= n or not u32[mem_map.page_word(head + 1, 1)] & 1:
        return 1
    order = (u32[mem_map.page_word(head + 1, 2)] >> 8) & 0x1F
    return min(1 << order, n - head)


def decode_key(key):
    """(flags, _mapcount, tail, refcount == 0, in a free block, slab tail, anon)
    from a MemMapScan key; _mapcount's byte 2 is not kept (no test reads it)."""
    extra = key >> 48 & 0xFF
    mapcount = (key >> 24 & 0xFF) | (key >> 32 & 0xFF) << 8 | 0xFF << 16 | (key >> 40 & 0xFF) << 24
    return (key & 0xFFFFFF, mapcount, bool(extra & K_TAIL), bool(extra & K_REFZERO),
            bool(extra & K_FREE), bool(extra & K_SLABTAIL), bool(extra & K_ANON))


# -- stable_page_flags() -----------------------------------------------------

def _kpf_of(flags, mapcount, tail, ref_zero, free, slab_tail, anon):
    """stable_page_flags() for one combination of struct page fields."""
    u = 0
    typed = mapcount & PAGE_TYPE_BASE == PAGE_TYPE_BASE
    if not typed and not mapcount >> 31:
        u |= _bit("MMAP")                      # page_mapped(): _mapcount >= 0
    if anon:
        u |= _bit("ANON")
    if flags >> PG_head & 1:
        u |= _bit("COMPOUND_HEAD")
    if tail:
        u |= _bit("COMPOUND_TAIL")
    is_buddy = typed and not mapcount & PG_buddy
    if is_buddy or (ref_zero and free):
        u |= _bit("BUDDY")
    if typed and not mapcount & PG_offline:
        u |= _bit("OFFLINE")
    if typed and not mapcount & PG_table:
        u |= _bit("PGTABLE")
    for pg, kpf in _COPY_BITS:
        if flags >> pg & 1:
            u |= 1 << kpf
    if slab_tail:
        u |= _bit("SLAB")
    if flags >> PG_swapbacked & 1 and flags >> PG_owner_priv_1 & 1:
        u |= _bit("SWAPCACHE")                 # PageSwapCache()
    return u


def kpageflags(machine):
    """/proc/kpageflags: the KPF_* bits of every frame, pfn 0 .. nr_pages-1."""
    keys = scan_mem_map(machine).keys
    table = {key: _kpf_of(*decode_key(key)) for key in set(keys)}
    return list(map(table.__getitem__, keys))


def kpageflags_counts(machine):
    """{KPF bits: frames}, in the order each value first occurs (by pfn)."""
    counts = Counter()
    for key, n in Counter(scan_mem_map(machine).keys).items():
        counts[_kpf_of(*decode_key(key))] += n
    return counts


# -- page-types ----------------------------------------------------------------

def well_known_flags(flags):
    """well_known_flags(): hide the kernel-hacker bits and non-huge compound bits."""
    flags &= ~KPF_HACKERS_BITS
    if flags & BITS_COMPOUND and not flags & _bit("HUGE"):
        flags &= ~BITS_COMPOUND
    return flags


def expand_overloaded_flags(flags):
    """expand_overloaded_flags() without a pagemap entry (6.1)."""
    if flags & _bit("ANON") and flags & _bit("MAPPEDTODISK"):
        flags ^= _bit("MAPPEDTODISK") | _bit("ANON_EXCLUSIVE")
    if flags & _bit("SLAB"):
        if flags & _bit("PRIVATE"):
            flags ^= _bit("PRIVATE") | _bit("SLOB_FREE")
        if flags & _bit("ACTIVE"):
            flags ^= _bit("ACTIVE") | _bit("SLUB_FROZEN")
        if flags & _bit("ERROR"):
            flags ^= _bit("ERROR") | _bit("SLUB_DEBUG")
    if flags & (_bit("RECLAIM") | _bit("WRITEBACK")) == _bit("RECLAIM"):
        flags ^= _bit("RECLAIM") | _bit("READAHEAD")
    return flags


def page_flag_name(flags):
    """page_flag_name(): one character per named bit, '_' when clear."""
    return "".join(PAGE_FLAG_NAMES[b][0] if flags >> b & 1 else "_"
                   for b in sorted(PAGE_FLAG_NAMES))


def page_flag_longname(flags):
    """page_flag_longname(): the set bits' names, comma-separated."""
    return ",".join(PAGE_FLAG_NAMES[b][2:] for b in sorted(PAGE_FLAG_NAMES) if flags >> b & 1)


def parse_flag_names(spec):
    """parse_flag_names(): "0x400,slab" -> bits (numbers and names, comma-separated)."""
    bits = 0
    for word in filter(None, spec.split(",")):
        if word[0].isdigit():
            bits |= int(word, 0)
            continue
        for b, name in PAGE_FLAG_NAMES.items():
            if name[2:] == word:
                bits |= 1 << b
                break
        else:
            raise UsageError(f"unknown flag name: {word!r}")
    return bits


def parse_bits_filter(spec):
    """parse_bits_mask(): (mask, bits) from "a,b", "a,b=a", "a,~b" or "=a,b".

    A page passes when flags & mask == bits; for "a,b" (bits None) when
    flags & mask is not zero.
    """
    if spec.startswith("="):
        return ~0, parse_flag_names(spec[1:])
    if "=" in spec:
        left, right = spec.split("=", 1)
        return parse_flag_names(left), parse_flag_names(right)
    if "~" in spec:
        words = spec.split(",")
        mask = parse_flag_names(",".join(w.lstrip("~") for w in words))
        bits = parse_flag_names(",".join(w for w in words if not w.startswith("~")))
        return mask, bits
    return parse_flag_names(spec), None


def parse_addr_range(spec, nr_pages):
    """An addr-spec (N, N+M, N,M, N, ,M; units of pages) as a pfn range."""
    try:
        if "+" in spec:
            first, size = spec.split("+", 1)
            start = int(first, 0)
            end = start + int(size, 0)
        elif "," in spec:
            first, last = spec.split(",", 1)
            start = int(first, 0) if first else 0
            end = int(last, 0) if last else nr_pages
        else:
            start = int(spec, 0)
            end = start + 1
    except ValueError:
        raise UsageError(f"bad addr-spec {spec!r}: N, N+M, N,M, N, or ,M") from None
    return max(start, 0), min(end, nr_pages)


def _filtered(machine, raw, ranges, bits_filters):
    flags = kpageflags(machine)
    transform = expand_overloaded_flags if raw else well_known_flags
    table = {f: transform(f) for f in set(flags)}
    flags = list(map(table.__getitem__, flags))
    pfns = range(len(flags))
    if ranges:
        pfns = [p for start, end in ranges for p in range(start, end)]
    out = []
    for pfn in pfns:
        f = flags[pfn]
        if all(_bits_ok(f, mask, bits) for mask, bits in bits_filters):
            out.append((pfn, f))
    return out if (ranges or bits_filters) else list(enumerate(flags))


def _bits_ok(flags, mask, bits):
    if bits is None:
        return bool(flags & mask)
    return flags & mask == bits


def hash_order(values):
    """The order page-types' open-addressed hash table lists flag values in."""
    slots = {}
    taken = set()
    for flags in dict.fromkeys(values):
        if flags == 0:
            slots[0] = flags
            continue
        k = flags & (HASH_SIZE - 1)
        for _ in range(HASH_SIZE - 1):
            if not k or k >= HASH_SIZE:
                k = 1
            if k not in taken:
                taken.add(k)
                slots[k] = flags
                break
            k += 1
    return [slots[k] for k in sorted(slots)]


def pages2mb(pages):
    return (pages << PAGE_SHIFT) >> 20


def show_summary(counts):
    """show_summary(): the flags / page-count / MB / symbolic-flags table."""
    lines = ["             flags\tpage-count       MB  symbolic-flags\t\t\tlong-symbolic-flags"]
    total = 0
    for flags in hash_order(counts):
        n = counts[flags]
        total += n
        lines.append(f"0x{flags:016x}\t{n:10d} {pages2mb(n):8d}  "
                     f"{page_flag_name(flags)}\t{page_flag_longname(flags)}")
    lines.append(f"             total\t{total:10d} {pages2mb(total):8d}")
    return "\n".join(lines) + "\n"


def page_types_counts(machine, raw=False):
    """{flags: page count} over every frame, as page-types counts them."""
    transform = expand_overloaded_flags if raw else well_known_flags
    counts = Counter()
    for flags, n in kpageflags_counts(machine).items():
        counts[transform(flags)] += n
    return counts


def page_types_text(machine, raw=False, ranges=(), bits_filters=(), list_mode=0,
                    summary=True):
    """What `page-types` prints: list_mode 1 = ranges (-l), 2 = each page (-L)."""
    if not (ranges or bits_filters or list_mode):
        return show_summary(page_types_counts(machine, raw)) if summary else ""
    pages = _filtered(machine, raw, list(ranges), list(bits_filters))
    out = []
    if list_mode == 1:
        out.append("offset\tlen\tflags\n")
        out.extend(_page_ranges(pages))
    elif list_mode == 2:
        out.append("offset\tflags\n")
        out.extend(f"{pfn:x}\t{page_flag_name(f)}\n" for pfn, f in pages)
    if summary:
        if list_mode:
            out.append("\n\n")
        out.append(show_summary(Counter(f for _, f in pages)))
    return "".join(out)


def _page_ranges(pages):
    """show_page_range(): consecutive pages with equal flags as one line."""
    out = []
    start = count = 0
    flags0 = None
    for pfn, f in pages:
        if f == flags0 and pfn == start + count:
            count += 1
            continue
        if count:
            out.append(f"{start:x}\t{count:x}\t{page_flag_name(flags0)}\n")
        start, count, flags0 = pfn, 1, f
    if count:
        out.append(f"{start:x}\t{count:x}\t{page_flag_name(flags0)}\n")
    return out
