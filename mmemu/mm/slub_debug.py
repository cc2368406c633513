"""SLUB debugging: red zones, poison, alloc/free tracking, validation, and
SLUB's reports in the kernel's words.

Models the CONFIG_SLUB_DEBUG half of mm/slub.c (6.1): init_object(),
check_object(), check_bytes_and_report(), on_freelist(), the
alloc/free_debug_processing() checks, validate_slab_cache(),
list_slab_objects(), slub_debug= parsing and kmem_cache_flags(); and the
report printers slab_bug(), slab_err(), object_err(), slab_fix(),
print_trailer(), print_section().

Every line of one event goes out as one report through the machine's
Reporter (kernel/panic.py), which adds the task line and the call trace and
sets the taint (so RunResult.reports holds the event whole).

Differs: pointers print as their 8 hex digits (the kernel hashes %p unless
booted with no_hash_pointers); tracks hold the symbolized guest caller and
no stack depot trace; the line numbers in WARNING/BUG lines are those of
6.1's sources as this module names them (KERNEL_LINES); non-debug caches get
the invalid-pointer and already-free checks on the slow path too (6.1 would
corrupt its freelist), so a guest's bad free never damages the allocator.
mmemu has no timer interrupt, so jiffies stand still at INITIAL_JIFFIES and
a track's age is always 0, where Linux counts the 4 ms ticks since the
allocation or free: a report is the same on every run (host time would
make it depend on the host's speed and load).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, Optional

from mmemu.errors import SlabCorruptionError
from mmemu.kernel.panic import TAINT_BAD_PAGE, Reporter, print_tainted
from mmemu.layout import PAGE_SIZE
from mmemu.mm.gfp import format_gfp
from mmemu.mm.mmzone import PAGEFLAGS_MASK, PG_slab, ZONES_MASK, ZONES_PGSHIFT
from mmemu.mm.slab import (
    DEBUG_DEFAULT_FLAGS, KCC_FREELIST, KCC_SLAB, POISON_END, POISON_FREE, POISON_INUSE,
    SLAB_CONSISTENCY_CHECKS, SLAB_FAILSLAB, SLAB_NO_USER_FLAGS, SLAB_NOLEAKTRACE,
    SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_TRACE, SLUB_RED_ACTIVE,
    SLUB_RED_INACTIVE, TRACK_SIZE, _OBJECT_POISON,
)
from mmemu.mm.slub import Caller, KmemCache, Slub

if TYPE_CHECKING:
    from mmemu.mm.slab_common import SlabAllocator

# slub_debug= parsed: (the global flags, [(flags, [cache name patterns])]).
SlubDebugOptions = tuple[int, list[tuple[int, list[str]]]]

RULE = "=" * 77
DASHES = "-" * 77
HZ = 250                                    # the 686 build's CONFIG_HZ: jiffies in tracks
INITIAL_JIFFIES = (-300 * HZ) & 0xFFFFFFFF  # include/linux/jiffies.h: wraps 5 minutes after boot

# Where 6.1's sources print these (file:line of the WARN/BUG).
KERNEL_LINES = {
    "set_freepointer": "mm/slub.c:379",
    "new_slab": "mm/slub.c:2003",
    "kmem_cache_destroy": "mm/slab_common.c:497",
    "free_large_kmalloc": "mm/slab_common.c:956",
    "virt_to_cache": "mm/slab.h:654",
    "cache_from_obj": "mm/slab.h:672",
    "__alloc_pages": "mm/page_alloc.c:5549",
    "__ksize": "mm/slab_common.c:1010",
}

# __def_pageflag_names order (include/trace/events/mmflags.h, 6.1).
PAGEFLAG_ORDER = ("locked", "waiters", "error", "referenced", "uptodate", "dirty", "lru",
                  "active", "workingset", "slab", "owner_priv_1", "arch_1", "reserved",
                  "private", "private_2", "writeback", "head", "mappedtodisk", "reclaim",
                  "swapbacked", "unevictable", "mlocked")
_PG_BITS = {"locked": 0, "referenced": 1, "uptodate": 2, "dirty": 3, "lru": 4, "active": 5,
            "workingset": 6, "waiters": 7, "error": 8, "slab": 9, "owner_priv_1": 10,
            "arch_1": 11, "reserved": 12, "private": 13, "private_2": 14, "writeback": 15,
            "head": 16, "mappedtodisk": 17, "reclaim": 18, "swapbacked": 19,
            "unevictable": 20, "mlocked": 21}


@dataclass
class Track:
    """struct track: who allocated or freed an object, and when (jiffies)."""

    caller: str
    when: int


def format_page_flags(flags: int) -> str:
    """%pGp: "0x10200(slab|head|zone=1)" (no node or section fields on a 686 build)."""
    names = [n for n in PAGEFLAG_ORDER if flags & PAGEFLAGS_MASK & (1 << _PG_BITS[n])]
    names.append(f"zone={(flags >> ZONES_PGSHIFT) & ZONES_MASK}")
    return f"{flags:#x}({'|'.join(names)})"


def hex_dump_line(prefix: str, addr: int, data: bytes) -> str:
    """print_hex_dump(DUMP_PREFIX_ADDRESS, 16, 1, ascii) for one row."""
    hexpart = " ".join(f"{b:02x}" for b in data)
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)
    return f"{prefix}{addr:08x}: {hexpart:<49}{text}"


def parse_slub_debug(text: Optional[str]) -> SlubDebugOptions:
    """slub_debug=: (global flags, [(flags, [cache name patterns])]).

    Models mm/slub.c:setup_slub_debug()/parse_slub_debug_flags(): blocks
    split by ';', each "flags[,name,name...]"; a block without names sets the
    global flags; ",names" alone means the default flags FZPU.
    """
    if not text:
        return 0, []
    global_flags = 0
    blocks: list[tuple[int, list[str]]] = []
    for block in text.split(";"):
        if not block:
            continue
        flag_text, _, names = block.partition(",")
        flags = parse_slub_debug_flags(flag_text) if flag_text or not names else DEBUG_DEFAULT_FLAGS
        if names:
            blocks.append((flags, [n.strip() for n in names.split(",") if n.strip()]))
        else:
            global_flags = flags
    return global_flags, blocks


def parse_slub_debug_flags(text: str) -> int:
    """The flag letters of one slub_debug= block: F Z P U T A (O is accepted, ignored)."""
    letters = {"f": SLAB_CONSISTENCY_CHECKS, "z": SLAB_RED_ZONE, "p": SLAB_POISON,
               "u": SLAB_STORE_USER, "t": SLAB_TRACE, "a": SLAB_FAILSLAB, "o": 0}
    flags = 0
    for ch in text.strip().lower():
        if ch == "-":
            flags = 0
        else:
            flags |= letters.get(ch, 0)
    return flags


def kmem_cache_flags(flags: int, name: str, slub_debug: SlubDebugOptions) -> int:
    """kmem_cache_flags(): a cache's flags with the slub_debug= options that apply."""
    if flags & SLAB_NO_USER_FLAGS:
        return flags
    global_flags, blocks = slub_debug
    if flags & SLAB_NOLEAKTRACE:
        global_flags &= ~SLAB_STORE_USER
    for block_flags, patterns in blocks:
        for pat in patterns:
            star = pat.find("*")
            if (star >= 0 and name.startswith(pat[:star])) or name == pat:
                return flags | block_flags
    return flags | global_flags


class SlubDebug:
    """The checks and reports of one slab allocator.

    slub: the Slub core (guest memory, slab fields); reporter: the machine's
    Reporter (kernel/panic.py).  ``jiffies()`` dates the tracks: without a
    timer interrupt it stays at INITIAL_JIFFIES (a test may set a clock).
    """

    def __init__(self, slub: Slub, reporter: Reporter) -> None:
        self.slub = slub
        self.rep = reporter
        self.buf: list[str] = []   # the lines of the report being built
        self.taint = ""          # the taint the report being built sets ("B"), when it goes out
        self.errors = 0          # slab_bug() calls so far (validate counts them)
        self.jiffies: Callable[[], int] = lambda: INITIAL_JIFFIES

    # -- report plumbing ---------------------------------------------------
    def flush(self) -> None:
        """Send the lines gathered so far as one report, then set their taint."""
        if self.buf:
            text, self.buf = "\n".join(self.buf), []
            taint, self.taint = self.taint, ""
            self.rep.report(text, taint=taint or None)

    def print_tainted(self) -> str:
        """print_tainted() as the report being built sees it (its own taint included)."""
        return print_tainted(self.rep.taint + self.taint)

    def dump_stack(self) -> None:
        self.buf += self.rep.dump_stack(self.taint)

    def warn_block(self, func: str, message: Optional[str] = None,
                   after: Sequence[str] = ()) -> None:
        """A WARN() at 6.1's line for func (KERNEL_LINES): message, then mmemu's after lines."""
        self.flush()
        self.rep.warn(KERNEL_LINES[func], None, func, message=message, after=after)

    def slab_bug(self, s: KmemCache, text: str) -> None:
        self.errors += 1
        self.buf += [RULE, f"BUG {s.name} ({self.print_tainted()}): {text}", DASHES, ""]

    def slab_fix(self, s: KmemCache, text: str) -> None:
        self.buf.append(f"FIX {s.name}: {text}")

    def add_taint_bad_page(self) -> None:
        """add_taint(TAINT_BAD_PAGE), when the report being built goes out."""
        self.taint = TAINT_BAD_PAGE

    def print_slab_info(self, pfn: int) -> None:
        sl = self.slub
        inuse, objects, _ = sl.counters(pfn)
        self.buf.append(f"Slab 0x{sl.slab_ptr(pfn):08x} objects={objects} used={inuse} "
                        f"fp=0x{sl.slab_freelist(pfn):08x} "
                        f"flags={format_page_flags(sl.page_flags(pfn))}")

    def slab_err(self, s: KmemCache, pfn: int, text: str) -> None:
        self.slab_bug(s, text)
        self.print_slab_info(pfn)
        self.dump_stack()
        self.add_taint_bad_page()

    def object_err(self, s: KmemCache, pfn: int, obj: int, reason: str) -> None:
        self.slab_bug(s, reason)
        self.print_trailer(s, pfn, obj)
        self.add_taint_bad_page()

    def print_section(self, text: str, addr: int, length: int) -> None:
        data = self.slub.read_bytes(addr, length)
        for i in range(0, length, 16):
            self.buf.append(hex_dump_line(text, addr + i, data[i:i + 16]))

    def print_track(self, what: str, track: Optional[Track], now: int) -> None:
        if track is not None:
            self.buf.append(f"{what} in {track.caller} age={now - track.when} cpu=0 pid=1")

    def print_tracking(self, s: KmemCache, obj: int) -> None:
        if not s.flags & SLAB_STORE_USER:
            return
        now = self.jiffies()
        alloc, free = s.tracks.get(obj, (None, None))
        self.print_track("Allocated", alloc, now)
        self.print_track("Freed", free, now)

    def print_trailer(self, s: KmemCache, pfn: int, p: int) -> None:
        """print_trailer(): tracks, the slab, then the object's bytes by region."""
        sl = self.slub
        addr = sl.slab_address(pfn)
        self.print_tracking(s, p)
        self.print_slab_info(pfn)
        self.buf.append(f"Object 0x{p:08x} @offset={p - addr} fp=0x{sl.get_freepointer(s, p):08x}")
        self.buf.append("")
        if s.flags & SLAB_RED_ZONE:
            self.print_section("Redzone  ", p - s.red_left_pad, s.red_left_pad)
        elif p > addr + 16:
            self.print_section("Bytes b4 ", p - 16, 16)
        self.print_section("Object   ", p, min(s.object_size, PAGE_SIZE))
        if s.flags & SLAB_RED_ZONE:
            self.print_section("Redzone  ", p + s.object_size, s.inuse - s.object_size)
        off = s.info_end() + (2 * TRACK_SIZE if s.flags & SLAB_STORE_USER else 0)
        size_from_object = s.size - s.red_left_pad
        if off != size_from_object:
            self.print_section("Padding  ", p + off, size_from_object - off)
        self.dump_stack()

    # -- object setup ----------------------------------------------------------
    def init_object(self, s: KmemCache, obj: int, val: int) -> None:
        """init_object(): red zones to val; the object poisoned when it is free."""
        sl = self.slub
        if s.flags & SLAB_RED_ZONE:
            sl.fill(obj - s.red_left_pad, s.red_left_pad, val)
        if s.flags & _OBJECT_POISON:
            sl.fill(obj, s.object_size - 1, POISON_FREE)
            sl.fill(obj + s.object_size - 1, 1, POISON_END)
        if s.flags & SLAB_RED_ZONE:
            sl.fill(obj + s.object_size, s.inuse - s.object_size, val)

    def setup_object_debug(self, s: KmemCache, obj: int) -> None:
        """setup_object_debug(): a new slab's object: inactive red zones, no tracks."""
        self.init_object(s, obj, SLUB_RED_INACTIVE)
        if s.flags & SLAB_STORE_USER:
            self.slub.fill(obj + s.info_end(), 2 * TRACK_SIZE, 0)
            s.tracks.pop(obj, None)

    def set_track(self, s: KmemCache, obj: int, index: int, caller: Caller) -> None:
        """set_track(): the host record, and struct track in the object's metadata."""
        when = self.jiffies()
        tracks = s.tracks.setdefault(obj, [None, None])
        tracks[index] = Track(caller() if callable(caller) else str(caller), when)
        t = obj + s.info_end() + index * TRACK_SIZE
        sl = self.slub
        for i, value in enumerate((1, 0, 0, 1, when)):    # addr, handle, cpu, pid, when
            sl.wr(t + 4 * i, value)

    # -- checks ------------------------------------------------------------------
    def check_bytes_and_report(self, s: KmemCache, pfn: int, obj: int, what: str, start: int,
                               value: int, nbytes: int) -> bool:
        """check_bytes_and_report(): True if [start, start+nbytes) all hold value;
        else report, restore them (FIX ... Restoring) and return False."""
        if nbytes <= 0:
            return True
        data = self.slub.read_bytes(start, nbytes)
        fault = next((i for i, b in enumerate(data) if b != value), None)
        if fault is None:
            return True
        end = nbytes
        while end > fault and data[end - 1] == value:
            end -= 1
        addr = self.slub.slab_address(pfn)
        self.slab_bug(s, f"{what} overwritten")
        self.buf.append(f"0x{start + fault:08x}-0x{start + end - 1:08x} @offset={start + fault - addr}. "
                        f"First byte 0x{data[fault]:x} instead of 0x{value:x}")
        self.print_trailer(s, pfn, obj)
        self.add_taint_bad_page()
        self.slab_fix(s, f"Restoring {what} 0x{start + fault:08x}-0x{start + end - 1:08x}=0x{value:x}")
        self.slub.fill(start + fault, end - fault, value)
        return False

    def check_pad_bytes(self, s: KmemCache, pfn: int, p: int) -> bool:
        off = s.info_end() + (2 * TRACK_SIZE if s.flags & SLAB_STORE_USER else 0)
        size_from_object = s.size - s.red_left_pad
        if off == size_from_object:
            return True
        return self.check_bytes_and_report(s, pfn, p, "Object padding", p + off, POISON_INUSE,
                                           size_from_object - off)

    def check_object(self, s: KmemCache, pfn: int, p: int, val: int) -> bool:
        """check_object(): red zones, poison, padding and the free pointer of one object."""
        cbr = self.check_bytes_and_report
        if s.flags & SLAB_RED_ZONE:
            if not cbr(s, pfn, p, "Left Redzone", p - s.red_left_pad, val, s.red_left_pad):
                return False
            if not cbr(s, pfn, p, "Right Redzone", p + s.object_size, val, s.inuse - s.object_size):
                return False
        elif s.flags & SLAB_POISON and s.object_size < s.inuse:
            cbr(s, pfn, p, "Alignment padding", p + s.object_size, POISON_INUSE,
                s.inuse - s.object_size)
        if s.flags & SLAB_POISON:
            if val != SLUB_RED_ACTIVE and s.flags & _OBJECT_POISON and (
                    not cbr(s, pfn, p, "Poison", p, POISON_FREE, s.object_size - 1)
                    or not cbr(s, pfn, p, "End Poison", p + s.object_size - 1, POISON_END, 1)):
                return False
            self.check_pad_bytes(s, pfn, p)
        if not s.freeptr_outside_object() and val == SLUB_RED_ACTIVE:
            return True             # the object overlays its free pointer while in use
        if not self.slub.check_valid_pointer(s, pfn, self.slub.get_freepointer(s, p)):
            self.object_err(s, pfn, p, "Freepointer corrupt")
            self.slub.set_freepointer(s, p, 0)
            return False
        return True

    def slab_pad_check(self, s: KmemCache, pfn: int) -> None:
        """slab_pad_check(): the bytes after the last object keep POISON_INUSE."""
        if not s.flags & SLAB_POISON:
            return
        sl = self.slub
        length = PAGE_SIZE << s.node.slabs.get(pfn, s.order)
        remainder = length % s.size
        if not remainder:
            return
        pad = sl.slab_address(pfn) + length - remainder
        data = sl.read_bytes(pad, remainder)
        fault = next((i for i, b in enumerate(data) if b != POISON_INUSE), None)
        if fault is None:
            return
        end = remainder
        while end > fault and data[end - 1] == POISON_INUSE:
            end -= 1
        self.slab_err(s, pfn, f"Padding overwritten. 0x{pad + fault:08x}-0x{pad + end - 1:08x} "
                              f"@offset={pad + fault - sl.slab_address(pfn)}")
        self.print_section("Padding ", pad, remainder)
        self.slab_fix(s, f"Restoring slab padding 0x{pad + fault:08x}-0x{pad + end - 1:08x}=0x5a")
        sl.fill(pad + fault, end - fault, POISON_INUSE)
        self.flush()

    def check_slab(self, s: KmemCache, pfn: int) -> bool:
        """check_slab(): a slab page whose counters fit its size."""
        sl = self.slub
        if not sl.page_flags(pfn) & (1 << PG_slab):
            self.slab_err(s, pfn, "Not a valid slab page")
            return False
        inuse, objects, _ = sl.counters(pfn)
        maxobj = (PAGE_SIZE << s.node.slabs.get(pfn, s.order)) // s.size
        if objects > maxobj:
            self.slab_err(s, pfn, f"objects {objects} > max {maxobj}")
            return False
        if inuse > objects:
            self.slab_err(s, pfn, f"inuse {inuse} > max {objects}")
            return False
        self.slab_pad_check(s, pfn)
        return True

    def walk_freelist(self, s: KmemCache, pfn: int, fp: int) -> tuple[list[int], Optional[int]]:
        """The objects of a freelist chain while they are valid: (objects, bad or None)."""
        sl = self.slub
        _, objects, _ = sl.counters(pfn)
        seen: list[int] = []
        while fp and len(seen) <= objects:
            if not sl.check_valid_pointer(s, pfn, fp):
                return seen, fp
            seen.append(fp)
            fp = sl.get_freepointer(s, fp)
        return seen, None

    def on_freelist(self, s: KmemCache, pfn: int, search: int) -> bool:
        """on_freelist(): is search on the slab's freelist?  Also repairs the
        counters from what the walk found, as SLUB does (search=0: validate)."""
        sl = self.slub
        inuse, objects, frozen = sl.counters(pfn)
        fp, obj, nr = sl.slab_freelist(pfn), 0, 0
        while fp and nr <= objects:
            if fp == search:
                return True
            if not sl.check_valid_pointer(s, pfn, fp):
                if obj:
                    self.object_err(s, pfn, obj, "Freechain corrupt")
                    sl.set_freepointer(s, obj, 0)
                else:
                    self.slab_err(s, pfn, "Freepointer corrupt")
                    sl.set_slab_freelist(pfn, 0)
                    sl.set_counters(pfn, objects, objects, frozen)
                    self.slab_fix(s, "Freelist cleared")
                    return False
                break
            obj, fp, nr = fp, sl.get_freepointer(s, fp), nr + 1
        if not frozen and inuse != objects - nr:
            self.slab_err(s, pfn, f"Wrong object count. Counter is {inuse} but counted were "
                                  f"{objects - nr}")
            sl.set_counters(pfn, objects - nr, objects, frozen)
            self.slab_fix(s, "Object count adjusted")
        return search == 0

    # -- the debug hooks of the alloc and free paths --------------------------
    def alloc_debug_processing(self, s: KmemCache, pfn: int, obj: int, caller: Caller) -> bool:
        """alloc_debug_processing(): check the object about to go out, then mark it."""
        ok = True
        if s.flags & SLAB_CONSISTENCY_CHECKS:
            ok = self.alloc_consistency_checks(s, pfn, obj)
        if ok:
            if s.flags & SLAB_STORE_USER:
                self.set_track(s, obj, 0, caller)
            self.init_object(s, obj, SLUB_RED_ACTIVE)
        else:
            self.slab_fix(s, "Marking all objects used")
        self.flush()
        return ok

    def alloc_consistency_checks(self, s: KmemCache, pfn: int, obj: int) -> bool:
        if not self.check_slab(s, pfn):
            return False
        if not self.slub.check_valid_pointer(s, pfn, obj):
            self.object_err(s, pfn, obj, "Freelist Pointer check fails")
            return False
        return self.check_object(s, pfn, obj, SLUB_RED_INACTIVE)

    def free_debug_processing(self, s: KmemCache, pfn: int, obj: int, caller: Caller) -> bool:
        """free_debug_processing(): refuse bad frees; mark the object free."""
        ok = self.check_slab(s, pfn) and self.free_consistency_checks(s, pfn, obj) \
            if s.flags & SLAB_CONSISTENCY_CHECKS else self.free_sanity(s, pfn, obj, caller)
        if ok:
            if s.flags & SLAB_STORE_USER:
                self.set_track(s, obj, 1, caller)
            self.init_object(s, obj, SLUB_RED_INACTIVE)
        elif self.buf:
            self.slab_fix(s, f"Object at 0x{obj:08x} not freed")
        self.flush()
        return ok

    def free_consistency_checks(self, s: KmemCache, pfn: int, obj: int) -> bool:
        if not self.slub.check_valid_pointer(s, pfn, obj):
            self.slab_err(s, pfn, f"Invalid object pointer 0x{obj:08x}")
            return False
        if self.on_freelist(s, pfn, obj):
            self.object_err(s, pfn, obj, "Object already free")
            return False
        return self.check_object(s, pfn, obj, SLUB_RED_ACTIVE)

    def free_sanity(self, s: KmemCache, pfn: int, obj: int, caller: Caller) -> bool:
        """What mmemu checks on every slow-path free of a cache without 'F':
        the pointer is an object, and the object is not free already."""
        ok = self.slub.check_valid_pointer(s, pfn, obj)
        if not ok:
            self.slab_err(s, pfn, f"Invalid object pointer 0x{obj:08x}")
        elif obj in self.walk_freelist(s, pfn, self.slub.slab_freelist(pfn))[0]:
            self.object_err(s, pfn, obj, "Object already free")
            ok = False
        if not ok:
            self.slab_fix(s, f"Object at 0x{obj:08x} not freed")
            self.flush()
        return ok

    def invalid_pointer(self, s: KmemCache, pfn: int, obj: int) -> None:
        """A pointer into the cpu slab that is not an object's start."""
        self.slab_err(s, pfn, f"Invalid object pointer 0x{obj:08x}")
        self.slab_fix(s, f"Object at 0x{obj:08x} not freed")
        self.flush()

    def naive_double_free(self, s: KmemCache, obj: int, caller: Caller) -> None:
        """set_freepointer()'s BUG_ON(object == fp) under SLAB_FREELIST_HARDENED."""
        where = caller() if callable(caller) else caller
        self.flush()
        self.rep.bug(KERNEL_LINES["set_freepointer"], None,
                     notes=[f"mmemu: BUG_ON(object == fp): naive detection of double free or "
                            f"corruption: {s.name} object 0x{obj:08x} freed again by {where}"],
                     after=[f"mmemu: the free of 0x{obj:08x} was refused"])

    # -- warnings of the gfp and cache paths -------------------------------
    def kmalloc_fix_flags(self, flags: int) -> int:
        """kmalloc_fix_flags(): strip zone bits slab memory may not have, and say so."""
        from mmemu.mm.slub import GFP_SLAB_BUG_MASK
        invalid = flags & GFP_SLAB_BUG_MASK
        flags &= ~GFP_SLAB_BUG_MASK
        self.buf.append(f"Unexpected gfp: {invalid:#x} ({format_gfp(invalid)}). Fixing up to gfp: "
                        f"{flags:#x} ({format_gfp(flags)}). Fix your code!")
        self.dump_stack()
        self.flush()
        return flags

    def warn_ctor_zero(self, s: KmemCache) -> None:
        self.warn_block("new_slab", None,
                        [f"mmemu: WARN_ON_ONCE(s->ctor && (flags & __GFP_ZERO)) for {s.name}"])

    def slab_out_of_memory(self, s: KmemCache, flags: int) -> None:
        """slab_out_of_memory(): pr_warn lines, unless __GFP_NOWARN."""
        from mmemu.mm.gfp import _GFP_NOWARN
        if flags & _GFP_NOWARN:
            return
        n = s.node
        free = sum(self.slub.counters(p)[1] - self.slub.counters(p)[0] for p in n.partial)
        self.rep.log.printk(
            f"SLUB: Unable to allocate memory on node -1, gfp={flags:#x}({format_gfp(flags)})\n"
            f"  cache: {s.name}, object size: {s.object_size}, buffer size: {s.size}, "
            f"default order: {s.order}, min order: {s.min_order}\n"
            f"  node 0: slabs: {n.nr_slabs}, objs: {n.total_objects}, free: {free}", 4)

    # -- whole-cache operations ------------------------------------------------
    def validate_slab(self, s: KmemCache, pfn: int) -> None:
        """validate_slab(): structure, then every object against its state."""
        if not self.check_slab(s, pfn) or not self.on_freelist(s, pfn, 0):
            return
        free = set(self.walk_freelist(s, pfn, self.slub.slab_freelist(pfn))[0])
        for p in self.slub.objects_of(s, pfn):
            val = SLUB_RED_INACTIVE if p in free else SLUB_RED_ACTIVE
            if not self.check_object(s, pfn, p, val):
                break

    def validate_slab_cache(self, s: KmemCache) -> int:
        """validate_slab_cache() (slabinfo -v): check every slab; the errors found."""
        before = self.errors
        self.slub.flush_cpu_slab(s)
        for pfn in list(s.node.partial) + sorted(s.node.full):
            if pfn in s.node.slabs:
                self.validate_slab(s, pfn)
        if len(s.node.partial) + len(s.node.full) != s.node.nr_slabs:
            self.buf.append(f"SLUB: {s.name} {len(s.node.partial) + len(s.node.full)} slabs "
                            f"counted but counter={s.node.nr_slabs}")
            self.errors += 1
        self.flush()
        return self.errors - before

    def list_slab_objects(self, s: KmemCache, pfn: int, text: str) -> None:
        """list_slab_objects(): the objects still allocated in a slab at shutdown."""
        self.slab_err(s, pfn, text)
        free = set(self.walk_freelist(s, pfn, self.slub.slab_freelist(pfn))[0])
        addr = self.slub.slab_address(pfn)
        for p in self.slub.objects_of(s, pfn):
            if p not in free:
                self.buf.append(f"Object 0x{p:08x} @offset={p - addr}")
                self.print_tracking(s, p)


# -- the consistency checker (CONFIG_DEBUG_VM-style; never prints) -------------

def check_slab_caches(sl: SlabAllocator) -> None:
    """Prove every cache's slabs, freelists and counters agree; raise
    SlabCorruptionError naming the first fault."""
    for s in sl.caches:
        _check_cache(sl.slub, s)


def _fail(s: KmemCache, text: str) -> NoReturn:
    raise SlabCorruptionError(f"slab cache {s.name}: {text}")


def _chain(slub: Slub, s: KmemCache, pfn: int, fp: int, what: str) -> set[int]:
    """The objects of a freelist chain; raise on an invalid pointer or a loop."""
    _, objects, _ = slub.counters(pfn)
    seen: set[int] = set()
    while fp:
        if not slub.check_valid_pointer(s, pfn, fp):
            _fail(s, f"{what} of slab pfn {pfn:#x} holds 0x{fp:08x}, not an object")
        if fp in seen or len(seen) > objects:
            _fail(s, f"{what} of slab pfn {pfn:#x} loops at 0x{fp:08x}")
        seen.add(fp)
        fp = slub.get_freepointer(s, fp)
    return seen


def _check_cache(slub: Slub, s: KmemCache) -> None:
    node = s.node
    cpu = slub.rd(s.cpu + KCC_SLAB)
    cpu_pfn = slub.slab_pfn(cpu) if cpu else None
    if cpu_pfn is None and slub.rd(s.cpu + KCC_FREELIST):
        _fail(s, "c->freelist is set but there is no cpu slab")
    if not (set(node.partial) | node.full) <= set(node.slabs):
        _fail(s, "a listed slab is not one of the cache's slabs")
    if set(node.partial) & node.full:
        _fail(s, "a slab is on both the partial and the full list")
    total = 0
    for pfn, order in node.slabs.items():
        total += _check_one_slab(slub, s, pfn, order, pfn == cpu_pfn)
    if total != node.total_objects:
        _fail(s, f"total_objects {node.total_objects} but the slabs hold {total}")


def _check_one_slab(slub: Slub, s: KmemCache, pfn: int, order: int, is_cpu: bool) -> int:
    node = s.node
    if not slub.page_flags(pfn) & (1 << PG_slab):
        _fail(s, f"slab pfn {pfn:#x} lacks PG_slab")
    if slub.slab_cache_ptr(pfn) != s.addr:
        _fail(s, f"slab pfn {pfn:#x} has slab_cache 0x{slub.slab_cache_ptr(pfn):08x}")
    inuse, objects, frozen = slub.counters(pfn)
    if objects != (PAGE_SIZE << order) // s.size:
        _fail(s, f"slab pfn {pfn:#x} says {objects} objects for order {order}")
    free = _chain(slub, s, pfn, slub.slab_freelist(pfn), "slab->freelist")
    if inuse != objects - len(free):
        _fail(s, f"slab pfn {pfn:#x} inuse {inuse} but {len(free)} of {objects} are free")
    if is_cpu:
        if not frozen:
            _fail(s, f"cpu slab pfn {pfn:#x} is not frozen")
        cfree = _chain(slub, s, pfn, slub.rd(s.cpu + KCC_FREELIST), "c->freelist")
        if cfree & free:
            _fail(s, f"an object of slab pfn {pfn:#x} is on both freelists")
        if pfn in node.partial or pfn in node.full:
            _fail(s, f"cpu slab pfn {pfn:#x} is on a list")
        return objects
    if frozen:
        _fail(s, f"slab pfn {pfn:#x} is frozen but not the cpu slab")
    if free and pfn not in node.partial:
        _fail(s, f"slab pfn {pfn:#x} has free objects but is not on the partial list")
    if not free and pfn not in node.full:
        _fail(s, f"slab pfn {pfn:#x} is full but not on the full list")
    return objects
