"""Snapshots: a machine's memory and metadata as an ELF core in kdump's
vmcore layout, and the object the views read in place of a live machine.

write_snapshot(machine, path) writes an i386 ELF core (ET_CORE, EM_386):
32-bit (ELFCLASS32), or 64-bit when RAM reaches above 4 GiB (a 686-pae
machine), whose physical addresses p_paddr cannot hold otherwise, as
kexec-tools writes a PAE kernel's vmcore headers in that case:

* PT_NOTE first, with the notes a kdump vmcore carries: NT_PRSTATUS
  ("CORE", struct elf_prstatus with the CPU's registers) and VMCOREINFO
  (OSRELEASE, PAGESIZE, the struct page layout, swapper_pg_dir), plus an
  "MMEMU" note of JSON: format version, the machine config, the layout,
  where swapper_pg_dir and mem_map are, the /proc texts that need host-side
  allocator state (buddyinfo, slabinfo, ...) and whatever a subsystem's
  snapshot_state() returns;
* one PT_LOAD per RAM range: p_paddr physical, p_vaddr the direct-map
  address for lowmem (ranges are split at max_low_pfn; a HighMem range has
  no permanent kernel address and gets p_vaddr 0);
* sparse: RAM sits in the file at data_start + its physical address, and
  all-zero pages are never written, so they are holes in the file.  That
  layout also lets load_snapshot() map the file once, copy-on-write, as the
  snapshot's physical memory, without reading it.

load_snapshot(path) returns a Snapshot: a views.target.Target (cfg,
layout, pm, pgtable, mem_map, kernel_image, image, proc_text(name),
pcp_blocks(), registers(); no live allocators).  A file
that is not ELF, not an i386 core, not mmemu's, of another format version,
or truncated raises SnapshotError with a message that says which.  Nothing
the file says is trusted: every key of the MMEMU note is checked for its
type, the config in it as a config file would be, and every size and
address against the file and the machine it describes (mem_map inside the
memory the file holds, as many struct pages as that machine has page
frames, ...) before anything is built from it, so a hostile file is one
line and exit status 2, never a traceback or gigabytes of host memory.
"""
from __future__ import annotations

import dataclasses
import json
import mmap
import os
import struct
from typing import TYPE_CHECKING, Any, BinaryIO, Optional

from mmemu.arch.x86.pgtable import PageTable
from mmemu.config import DeviceConfig, HostRange, MachineConfig, NodeConfig, Range
from mmemu.config_schema import E820_MAX_ENTRIES, MAX_NUMNODES
from mmemu.errors import MmemuError, clip
from mmemu.flavour import flavour_of
from mmemu.kernel.image import KernelImage
from mmemu.kernel.panic import UTS_RELEASE
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, compute_layout
from mmemu.mm.mmzone import (
    OFF_FLAGS, OFF_LRU_NEXT, OFF_MAPCOUNT, OFF_MAPPING, OFF_PRIVATE, OFF_REFCOUNT, PAGE_TYPE_BUDDY,
    PG_buddy, PG_head, PG_reserved, PG_slab, PG_table, STRUCT_PAGE_SIZE, MemMap,
)
from mmemu.mm.pcp_list import pcp_to_guest
from mmemu.physmem import PhysMem
from mmemu.runtime.loader import GuestImage, Segment
from mmemu.views import PROC_FILES
from mmemu.views.target import PcpBlock, Target

FORMAT = "mmemu-vmcore"
VERSION = 1
OSRELEASE = UTS_RELEASE                # the one release string: kernel/panic.py's

ET_CORE, EM_386, EV_CURRENT = 4, 3, 1
PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W, PF_R = 1, 2, 4
NT_PRSTATUS = 1
NT_MMEMU = 0x4D4D                       # 'MM'
EHDR = struct.Struct("<16sHHIIIIIHHHHHH")
PHDR = struct.Struct("<IIIIIIII")
EHDR64 = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR64 = struct.Struct("<IIQQQQQQ")        # p_type, p_flags, then the 64-bit fields
ELFCLASS32, ELFCLASS64 = 1, 2
FOUR_GIB = 1 << 32
# struct elf_prstatus (i386): info, cursig, sigpend, sighold, pids, times, regs, fpvalid.
PRSTATUS = struct.Struct("<3ih2xII4I8I17II")
PR_REGS = ("ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs",
           "orig_eax", "eip", "cs", "eflags", "esp", "ss")
CHUNK = 1 << 20
MAX_NOTES = 64 << 20                   # bytes of PT_NOTE read: the MMEMU note of pc-4g is ~100 KiB
MAX_PHYS = 1 << 36                     # the highest physical address a config may describe (PAE)
# The per-cpu lists' orders: 0 to PAGE_ALLOC_COSTLY_ORDER, and pageblock_order
# (a THP: 10 on the 686 kernel, 9 with PAE).
PCP_ORDERS = (0, 1, 2, 3, 9, 10)


class SnapshotError(MmemuError):
    """A snapshot file cannot be read: names the file and what is wrong."""

    exit_status = 2


# -- writing --------------------------------------------------------------------

def write_snapshot(machine: Target, path: str | os.PathLike[str]) -> int:
    """Write machine's memory and metadata to path as an ELF vmcore (see module doc).

    The per-cpu page lists go back into guest memory first, if the host
    held them (mm/pcp_list.py), so that the core shows them as the kernel
    keeps them.  Returns the number of bytes of RAM actually written
    (non-zero pages).
    """
    if machine.mm is not None:
        pcp_to_guest(machine.mm)
    ram = _ram_ranges(machine)
    loads = _load_segments(machine, ram)
    notes = _notes(machine)
    top = (max(e for _, e in ram) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    elf64 = top > FOUR_GIB
    ehdr, phdr = (EHDR64, PHDR64) if elf64 else (EHDR, PHDR)
    header_size = ehdr.size + phdr.size * (1 + len(loads))
    data_start = (header_size + len(notes) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    with open(path, "wb") as f:
        f.write(_ehdr(1 + len(loads), elf64))
        f.write(_phdr(elf64, PT_NOTE, header_size, 0, 0, len(notes), 0, 4))
        for paddr, vaddr, size in loads:
            f.write(_phdr(elf64, PT_LOAD, data_start + paddr, vaddr, paddr, size,
                          PF_R | PF_W | PF_X, PAGE_SIZE))
        f.write(notes)
        f.truncate(data_start + top)
        return sum(_write_nonzero(f, machine.pm, data_start, s, e) for s, e in ram)


def _ram_ranges(machine):
    """The e820 RAM ranges [start, end) that PhysMem holds, as kdump lists them."""
    out = []
    for r in sorted(machine.cfg.ram, key=lambda r: r.start):
        s, e = r.start, min(r.end, machine.pm.size)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif e > s:
            out.append((s, e))
    return out


def _load_segments(machine, ram):
    """(paddr, vaddr, size) per PT_LOAD: RAM ranges split at the end of lowmem."""
    low_end = machine.layout.max_low_pfn << PAGE_SHIFT
    out = []
    for s, e in ram:
        if s < low_end:
            out.append((s, PAGE_OFFSET + s, min(e, low_end) - s))
        if e > low_end:
            hs = max(s, low_end)
            out.append((hs, 0, e - hs))
    return out


def _ehdr(phnum, elf64=False):
    ehdr, phdr = (EHDR64, PHDR64) if elf64 else (EHDR, PHDR)
    ident = b"\x7fELF" + bytes([ELFCLASS64 if elf64 else ELFCLASS32, 1, EV_CURRENT, 0]) + bytes(8)
    return ehdr.pack(ident, ET_CORE, EM_386, EV_CURRENT, 0, ehdr.size, 0, 0,
                     ehdr.size, phdr.size, phnum, 0, 0, 0)


def _phdr(elf64, ptype, offset, vaddr, paddr, size, flags, align):
    if elf64:
        return PHDR64.pack(ptype, flags, offset, vaddr, paddr, size, size, align)
    return PHDR.pack(ptype, offset, vaddr, paddr, size, size, flags, align)


def _unpack_phdr(elf64, raw, pos):
    """A program header as the 32-bit tuple order: type, offset, vaddr, paddr,
    filesz, memsz, flags, align."""
    if not elf64:
        return PHDR.unpack_from(raw, pos)
    ptype, flags, offset, vaddr, paddr, filesz, memsz, align = PHDR64.unpack_from(raw, pos)
    return ptype, offset, vaddr, paddr, filesz, memsz, flags, align


def _note(name, ntype, desc):
    name = name.encode() + b"\0"
    pad = lambda b: b + bytes(-len(b) % 4)          # noqa: E731
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)


def _notes(machine: Target) -> bytes:
    regs = machine.registers()
    prstatus = PRSTATUS.pack(0, 0, 0, 0, 0, 0, 1, 0, 0, 0, *([0] * 8),
                             *[regs.get(r, 0) & 0xFFFFFFFF for r in PR_REGS], 0)
    return (_note("CORE", NT_PRSTATUS, prstatus)
            + _note("VMCOREINFO", 0, _vmcoreinfo(machine).encode())
            + _note("MMEMU", NT_MMEMU, json.dumps(snapshot_metadata(machine)).encode()))


def _vmcoreinfo(machine):
    pgd = _pgd_of(machine)
    lines = [f"OSRELEASE={OSRELEASE}", f"PAGESIZE={PAGE_SIZE}",
             f"SYMBOL(swapper_pg_dir)={PAGE_OFFSET + pgd:x}",
             f"SIZE(page)={STRUCT_PAGE_SIZE}", f"OFFSET(page.flags)={OFF_FLAGS}",
             f"OFFSET(page._refcount)={OFF_REFCOUNT}", f"OFFSET(page.mapping)={OFF_MAPPING}",
             f"OFFSET(page.lru)={OFF_LRU_NEXT}", f"OFFSET(page._mapcount)={OFF_MAPCOUNT}",
             f"OFFSET(page.private)={OFF_PRIVATE}",
             f"NUMBER(PG_slab)={PG_slab}", f"NUMBER(PG_head_mask)={1 << PG_head}",
             f"NUMBER(PG_reserved)={PG_reserved}",
             f"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)={PAGE_TYPE_BUDDY - (1 << 32)}",
             f"NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)={~0x100}",
             f"NUMBER(PG_buddy)={PG_buddy}", f"NUMBER(PG_table)={PG_table}",
             f"LENGTH(mem_map)={machine.mem_map.nr_pages}",
             f"NUMBER(mem_map)={machine.mem_map.virt:x}", "CRASHTIME=0"]
    build_id = machine.image.build_id if machine.image is not None else None
    if build_id:            # as kernel/crash_core.c appends vmlinux's: drgn matches the ELF by it
        lines.insert(1, f"BUILD-ID={build_id}")
    return "\n".join(lines) + "\n"


def snapshot_metadata(machine: Target) -> dict[str, Any]:
    """The JSON of the MMEMU note: enough to rebuild what the views read."""
    lay = machine.layout
    meta = {
        "format": FORMAT, "version": VERSION,
        "config": _config_dict(machine.cfg),
        "layout": {k: getattr(lay, k) for k in (
            "max_pfn", "max_low_pfn", "vmalloc_start", "vmalloc_end", "pkmap_base",
            "fixaddr_start", "high_memory")},
        "pgd": _pgd_of(machine),
        "mem_map": {"phys": machine.mem_map.phys, "nr_pages": machine.mem_map.nr_pages},
        "proc": _proc_texts(machine),
        "pcp": _pcp_lists(machine),
        "state": _subsystem_states(machine),
        "image": _image_dict(machine.image),
    }
    return meta


def _config_dict(cfg):
    return dataclasses.asdict(cfg)


def _proc_texts(machine):
    out = {}
    for name in PROC_FILES:
        text = machine.proc_text(name)
        if text is not None:
            out[name] = text
    return out


def _pcp_lists(machine: Target) -> list[PcpBlock]:
    """[zone, order, pfn] of every block on a per-cpu list (host-side state)."""
    return sorted(set(machine.pcp_blocks()), key=lambda b: b.pfn)


def _subsystem_states(machine: Target) -> dict[str, Any]:
    """Host-side state a subsystem offers through snapshot_state() (JSON-able):
    the vmalloc areas."""
    return {"vmalloc": machine.vmalloc.snapshot_state()} if machine.vmalloc is not None else {}


def _image_dict(image: Optional[GuestImage]) -> Optional[dict[str, Any]]:
    if image is None:
        return None
    segs = [{"vaddr": s.vaddr, "paddr": s.paddr, "filesz": s.filesz, "memsz": s.memsz,
             "flags": s.flags} for s in image.segments]
    return {"path": image.path, "segments": segs, "build_id": image.build_id}


def _write_nonzero(f, pm, data_start, start, end):
    """Write the non-zero pages of [start, end) at data_start + address.

    Compares as bytes (memcmp), a megabyte and then a page at a time;
    untouched guest RAM reads as the zero page, so skipping it is cheap.
    """
    written = 0
    zero_chunk = bytes(CHUNK)
    zero_page = bytes(PAGE_SIZE)
    for chunk in range(start, end, CHUNK):
        stop = min(chunk + CHUNK, end)
        data = pm.u8[chunk:stop].tobytes()
        if data == zero_chunk[:stop - chunk]:
            continue
        run = None
        for page in range(chunk, stop, PAGE_SIZE):
            nonzero = data[page - chunk:page - chunk + PAGE_SIZE] != zero_page[:stop - page]
            if nonzero and run is None:
                run = page
            elif not nonzero and run is not None:
                written += _write_run(f, pm, data_start, run, page)
                run = None
        if run is not None:
            written += _write_run(f, pm, data_start, run, stop)
    return written


def _write_run(f, pm, data_start, start, end):
    f.seek(data_start + start)
    f.write(pm.u8[start:end])
    return end - start


def _pgd_of(machine: Target) -> int:
    return machine.pgtable.pgd


# -- reading --------------------------------------------------------------------

class Snapshot:
    """A machine as a snapshot file recorded it: what the views read (a
    views.target.Target).

    cfg, layout, pm (copy-on-write over the file), pgtable (swapper_pg_dir,
    to read), mem_map, kernel_image (from the config), image (segments
    only), regs, meta; proc_text(name) gives the stored /proc texts,
    pcp_blocks() the stored per-cpu lists.  There are no live allocators
    (mm, slab, vmalloc, memblock are None).
    """

    mm: None = None
    slab: None = None
    vmalloc: None = None
    memblock: None = None

    def __init__(self, path: str, meta: dict[str, Any], pm: PhysMem, regs: dict[str, int],
                 fileobj: BinaryIO, mapping: mmap.mmap,
                 cfg: Optional[MachineConfig] = None) -> None:
        self.path = path
        self.meta = meta
        self.cfg = cfg if cfg is not None else _config_from_dict(meta["config"])
        self.layout = compute_layout(self.cfg)
        self.pm = pm
        self.pgtable = PageTable(pm, meta["pgd"], _no_table, _no_flush, flavour_of(self.cfg))
        self.mem_map = MemMap(meta["mem_map"]["phys"], meta["mem_map"]["nr_pages"])
        self.kernel_image = KernelImage.from_config(self.cfg.kernel)
        self.image = _image_from_dict(meta.get("image"))
        self.regs = regs
        self._file = fileobj
        self._mapping = mapping

    def registers(self) -> dict[str, int]:
        """The registers NT_PRSTATUS recorded."""
        return dict(self.regs)

    def proc_text(self, name: str) -> Optional[str]:
        """The /proc/<name> text as it was when the snapshot was taken, or None."""
        text = self.meta.get("proc", {}).get(name)
        return text if isinstance(text, str) else None

    def pcp_blocks(self) -> list[PcpBlock]:
        """The blocks that were on per-cpu lists when the snapshot was taken."""
        return [PcpBlock(*b) for b in self.meta.get("pcp", [])]

    def close(self):
        """Let go of the file (views over pm must be gone by now)."""
        if self.pm is not None:
            if self.pm.u64 is not None:
                self.pm.u64.release()
            self.pm.u32.release()
            self.pm.u8.release()
            self.pm = None
        self._mapping.close()
        self._file.close()


if TYPE_CHECKING:       # the type checker holds a Snapshot to what the views read
    _SNAPSHOT_IS_A_TARGET: type[Target] = Snapshot


def load_snapshot(path):
    """Open a snapshot written by write_snapshot(); SnapshotError if it is not one."""
    path = str(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise SnapshotError(f"{path}: cannot open: {e.strerror}") from None
    try:
        size = os.fstat(f.fileno()).st_size
        head = f.read(EHDR64.size)
        elf64 = _check_ehdr(path, head)
        ehdr, phdr = (EHDR64, PHDR64) if elf64 else (EHDR, PHDR)
        fields = ehdr.unpack(head[:ehdr.size])
        phoff, phnum = fields[5], fields[10]
        f.seek(phoff)
        raw = f.read(phdr.size * phnum)
        if len(raw) < phdr.size * phnum:
            raise SnapshotError(f"{path}: truncated: the program headers end past the file")
        phdrs = [_unpack_phdr(elf64, raw, i * phdr.size) for i in range(phnum)]
        notes = _read_notes(path, f, phdrs, size)
        meta = _check_meta(path, notes)
        cfg = _check_config(path, meta)
        regs = _read_regs(notes.get(("CORE", NT_PRSTATUS)))
        return _map_snapshot(path, f, phdrs, size, meta, regs, cfg)
    except BaseException:
        f.close()
        raise


def _check_ehdr(path, head):
    """Check the ELF header of an i386 core; returns True for ELFCLASS64."""
    if len(head) < 4 or head[:4] != b"\x7fELF":
        raise SnapshotError(f"{path}: not an ELF file (no \\x7fELF magic): not an mmemu snapshot")
    elf64 = len(head) > 4 and head[4] == ELFCLASS64
    if len(head) < (EHDR64 if elf64 else EHDR).size:
        raise SnapshotError(f"{path}: truncated: the ELF header is cut short")
    ident = head[:16]
    etype, machine = struct.unpack_from("<HH", head, 16)
    if ident[4] not in (ELFCLASS32, ELFCLASS64) or ident[5] != 1 or machine != EM_386 \
            or etype != ET_CORE:
        raise SnapshotError(f"{path}: an ELF file, but not an i386 core dump "
                            f"(class {ident[4]}, type {etype}, machine {machine})")
    return elf64


def _read_notes(path, f, phdrs, size):
    notes = {}
    for ptype, off, _, _, filesz, _, _, _ in phdrs:
        if ptype != PT_NOTE:
            continue
        if off + filesz > size:
            raise SnapshotError(f"{path}: truncated: the notes end at byte {off + filesz}, "
                                f"the file has {size}")
        if filesz > MAX_NOTES:
            raise SnapshotError(f"{path}: a PT_NOTE segment of {filesz} bytes is not a "
                                f"snapshot's (at most {MAX_NOTES >> 20} MiB)")
        f.seek(off)
        data = f.read(filesz)
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            pos += 12
            name = data[pos:pos + namesz].rstrip(b"\0").decode("ascii", "replace")
            pos += (namesz + 3) & ~3
            notes[(name, ntype)] = data[pos:pos + descsz]
            pos += (descsz + 3) & ~3
    return notes


def _check_meta(path, notes):
    raw = notes.get(("MMEMU", NT_MMEMU))
    if raw is None:
        raise SnapshotError(f"{path}: an i386 core dump, but not an mmemu snapshot "
                            "(it has no MMEMU note)")
    try:
        meta = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SnapshotError(f"{path}: the MMEMU note is damaged (not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SnapshotError(f"{path}: the MMEMU note is not an {FORMAT} description")
    if meta.get("version") != VERSION:
        raise SnapshotError(f"{path}: written in snapshot format version "
                            f"{_short(meta.get('version'))}; this mmemu reads version {VERSION}")
    _check_note_types(path, meta)
    return meta


# -- what the MMEMU note may hold -------------------------------------------------

def _short(value, limit=40):
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _bad(path, where, what, value):
    return SnapshotError(f"{path}: the MMEMU note is damaged: {where} must be {what}, "
                         f"not {_short(value)}")


def _get(path, obj, key, where, kinds, what, optional=False):
    """obj[key], which must be one of kinds (int never means bool)."""
    if key not in obj:
        if optional:
            return None
        raise SnapshotError(f"{path}: the MMEMU note is damaged: it has no {where}")
    value = obj[key]
    if optional and value is None:
        return None
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise _bad(path, where, what, value)
    return value


def _address(path, obj, key, where, optional=False):
    value = _get(path, obj, key, where, (int,), "an address", optional)
    if value is not None and not 0 <= value < MAX_PHYS:
        raise _bad(path, where, f"an address below {MAX_PHYS:#x}", value)
    return value


def _check_note_types(path, meta):
    """Every key a view reads, of the type it reads it as."""
    _get(path, meta, "config", "config", (dict,), "a mapping")
    _address(path, meta, "pgd", "pgd")
    mem_map = _get(path, meta, "mem_map", "mem_map", (dict,), "a mapping")
    _address(path, mem_map, "phys", "mem_map.phys")
    _get(path, mem_map, "nr_pages", "mem_map.nr_pages", (int,), "a number of pages")
    proc = _get(path, meta, "proc", "proc", (dict,), "a mapping", optional=True) or {}
    for name in proc:
        _get(path, proc, name, f"proc.{_short(name, 20)}", (str,), "a text")
    for i, block in enumerate(_get(path, meta, "pcp", "pcp", (list,), "a list",
                                   optional=True) or []):
        if not (isinstance(block, list) and len(block) == 3 and isinstance(block[0], str)
                and all(isinstance(x, int) and not isinstance(x, bool) for x in block[1:])):
            raise _bad(path, f"pcp[{i}]", "[zone, order, pfn]", block)
    _get(path, meta, "state", "state", (dict,), "a mapping", optional=True)
    image = _get(path, meta, "image", "image", (dict,), "a mapping", optional=True)
    if image is not None:
        _get(path, image, "path", "image.path", (str,), "a path", optional=True)
        segments = _get(path, image, "segments", "image.segments", (list,), "a list",
                        optional=True) or []
        for i, seg in enumerate(segments):
            seg = _get(path, {"s": seg}, "s", f"image.segments[{i}]", (dict,), "a mapping")
            if set(seg) != SEGMENT_KEYS:
                raise _bad(path, f"image.segments[{i}]", "{" + ", ".join(sorted(SEGMENT_KEYS))
                           + "}", seg)
            for key in SEGMENT_KEYS:
                _address(path, seg, key, f"image.segments[{i}].{key}")


SEGMENT_KEYS = {"vaddr", "paddr", "filesz", "memsz", "flags"}


def _check_config(path, meta):
    """The MachineConfig of the note, checked as a config file is (check_layout())."""
    from mmemu.config import check_layout
    try:
        cfg = _config_from_dict(meta["config"])
        check_layout(cfg)
    except SnapshotError:
        raise
    except MmemuError as e:
        raise SnapshotError(f"{path}: the MMEMU note's machine config is refused: "
                            f"{clip(str(e).split(': ', 1)[-1], 100)}") from None
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError,
            ZeroDivisionError, IndexError) as e:
        raise SnapshotError(f"{path}: the MMEMU note's machine config is damaged: "
                            f"{clip(e, 100)}") from None
    return cfg


def _check_against_memory(path, meta, cfg, layout, top):
    """Sizes and addresses of the note against the memory the file holds."""
    ram_end = (max(r.end for r in cfg.ram) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    if top != ram_end:
        raise SnapshotError(f"{path}: the memory in the file ends at {top:#x}, but the "
                            f"machine's RAM ends at {ram_end:#x}")
    nr_pages, phys = meta["mem_map"]["nr_pages"], meta["mem_map"]["phys"]
    if nr_pages != layout.max_pfn:
        raise SnapshotError(f"{path}: the MMEMU note is damaged: mem_map.nr_pages is "
                            f"{_short(nr_pages)}, but the machine has {layout.max_pfn} page "
                            "frames")
    if phys % PAGE_SIZE or phys + nr_pages * STRUCT_PAGE_SIZE > top:
        raise SnapshotError(f"{path}: the MMEMU note is damaged: mem_map at {phys:#x} "
                            f"({nr_pages} struct pages) is not inside the memory the file "
                            f"holds (up to {top:#x})")
    pgd = meta["pgd"]
    if pgd % 32 or pgd + 32 > top:
        raise SnapshotError(f"{path}: the MMEMU note is damaged: swapper_pg_dir at "
                            f"{pgd:#x} is not inside the memory the file holds")
    for i, (_zone, order, pfn) in enumerate(meta.get("pcp") or []):
        if not (order in PCP_ORDERS and 0 <= pfn and pfn + (1 << order) <= nr_pages):
            raise SnapshotError(f"{path}: the MMEMU note is damaged: pcp[{i}] is order "
                                f"{order} at pfn {pfn:#x}, outside mem_map")


def _read_regs(raw):
    if raw is None or len(raw) < PRSTATUS.size:
        return {}
    values = PRSTATUS.unpack_from(raw)
    return dict(zip(PR_REGS, values[-18:-1]))


def _map_snapshot(path, f, phdrs, size, meta, regs, cfg):
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    if not loads:
        raise SnapshotError(f"{path}: the snapshot holds no memory (no PT_LOAD)")
    data_start = min(off - paddr for _, off, _, paddr, _, _, _, _ in loads)
    top = max(paddr + filesz for _, _, _, paddr, filesz, _, _, _ in loads)
    top = (top + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    if data_start < 0:
        raise SnapshotError(f"{path}: a PT_LOAD segment lies before the file's memory")
    _check_against_memory(path, meta, cfg, compute_layout(cfg), top)
    if data_start + top > size:
        raise SnapshotError(f"{path}: truncated: memory runs to byte {data_start + top}, "
                            f"the file has {size}")
    if data_start % mmap.ALLOCATIONGRANULARITY:
        raise SnapshotError(f"{path}: memory is not page-aligned in the file")
    mapping = mmap.mmap(f.fileno(), top, access=mmap.ACCESS_COPY, offset=data_start)
    pm = PhysMem(top, mapping)
    return Snapshot(path, meta, pm, regs, f, mapping, cfg)


def _config_from_dict(d):
    """The MachineConfig a snapshot's note describes; a value of the wrong type,
    a range that is not one, too many of anything, is a TypeError or ValueError."""
    d = dict(d)
    d["ram"] = _ranges(d.get("ram", []), "ram")
    d["reserved"] = _ranges(d.get("reserved", []), "reserved")
    nodes = _list(d.get("nodes", []), "nodes", MAX_NUMNODES)
    if not d["ram"] or not nodes:
        raise ValueError("it has no RAM" if not d["ram"] else "it has no node")
    d["nodes"] = [NodeConfig(_int(n["nid"], "nodes[].nid"), _ranges(n["ram"], "nodes[].ram"),
                             _distances(n.get("distance"), len(nodes))) for n in nodes]
    d["devices"] = [_device(dev) for dev in _list(d.get("devices", []), "devices", 64)]
    if "kernel" in d:
        d["kernel"] = _kernel(d["kernel"])
    d["host"] = [_host_range(h) for h in _list(d.get("host", []), "host", E820_MAX_ENTRIES)]
    fields = {f.name: f for f in dataclasses.fields(MachineConfig)}
    for name, f in fields.items():
        if name in d and name not in ("ram", "reserved", "nodes", "devices", "kernel", "host"):
            _scalar(d[name], f, name)
    return MachineConfig(**{k: v for k, v in d.items() if k in fields})


def _kernel(k):
    """The kernel: section (KernelConfig), each field of its type."""
    from mmemu.kernel.image import KernelConfig
    if not isinstance(k, dict) or not set(k) <= {f.name for f in dataclasses.fields(KernelConfig)}:
        raise ValueError(f"kernel holds {_short(k)}, not a kernel section")
    if "image" in k:
        image = k["image"]
        if not isinstance(image, dict) or len(image) > 16 or not all(
                isinstance(key, str) for key in image):
            raise ValueError("kernel.image must be a mapping of section sizes")
        for key, value in image.items():
            _int(value, f"kernel.image.{key[:20]}")
    for key in ("load_address", "initrd"):
        if key in k:
            _int(k[key], f"kernel.{key}")
    if "cmdline" in k and not (isinstance(k["cmdline"], str) and len(k["cmdline"]) <= 4096):
        raise ValueError("kernel.cmdline must be a string (at most 4096 characters)")
    return KernelConfig(**k)


def _host_range(h):
    if not isinstance(h, dict) or not set(h) <= {"start", "end", "name", "key"} \
            or not isinstance(h.get("name", ""), str) or not isinstance(h.get("key", ""), str):
        raise ValueError(f"host holds {_short(h)}, not a host range")
    start, end = _int(h.get("start"), "host[].start"), _int(h.get("end"), "host[].end")
    return HostRange(start, end, h.get("name", "")[:64], h.get("key", "host")[:64])


def _list(value, what, limit):
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"{what} must be a list of at most {limit}")
    return value


def _int(value, what, lo=0, hi=MAX_PHYS):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{what} must be a whole number from {lo} to {hi:#x}, "
                         f"not {_short(value)}")
    return value


def _ranges(value, what):
    out = []
    for r in _list(value, what, E820_MAX_ENTRIES):
        if not isinstance(r, dict):
            raise ValueError(f"{what} holds {_short(r)}, not a range")
        start, end = _int(r.get("start"), f"{what}[].start"), _int(r.get("end"), f"{what}[].end")
        if end <= start:
            raise ValueError(f"{what} holds [{start:#x}, {end:#x}), an empty range")
        out.append(Range(start, end))
    return out


def _distances(value, n):
    if value is None:
        return None
    return [_int(x, "nodes[].distance", 0, 255) for x in _list(value, "nodes[].distance", n)]


def _device(dev):
    if not isinstance(dev, dict) or set(dev) != {"name", "model", "base", "size", "options"}:
        raise ValueError(f"devices holds {_short(dev)}, not a device")
    if not (isinstance(dev["name"], str) and isinstance(dev["model"], str)
            and isinstance(dev["options"], dict)):
        raise ValueError(f"device {_short(dev['name'])} is damaged")
    return DeviceConfig(dev["name"][:64], dev["model"][:64], _int(dev["base"], "devices[].base"),
                        _int(dev["size"], "devices[].size"), dev["options"])


def _scalar(value, f, name):
    """A MachineConfig field's value of the type its default says (None where allowed)."""
    default = f.default if f.default is not dataclasses.MISSING else None
    if value is None and default is None:
        return
    kind = type(default) if default is not None else _FIELD_TYPES.get(f.type, str)
    if kind is int:
        _int(value, name, 0, MAX_PHYS)
    elif not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{name} must be {kind.__name__}, not {_short(value)}")
    elif isinstance(value, str) and len(value) > 4096:
        raise ValueError(f"{name} is {len(value)} characters long")


_FIELD_TYPES: dict[object, type] = {
    "int": int, int: int, "str": str, str: str, "bool": bool, bool: bool,
    Optional[int]: int, Optional[str]: str,     # MachineConfig's options that may be unset
}


def _image_from_dict(d: Optional[dict[str, Any]]) -> Optional[GuestImage]:
    """The guest program's image as far as the snapshot kept it (no symbols)."""
    if not d:
        return None
    return GuestImage(entry=0, segments=[Segment(**s) for s in d.get("segments", [])],
                      symbols={}, path=d.get("path"), build_id=d.get("build_id"))


def _no_table() -> None:
    """A snapshot's page tables are read, never grown: no page for a new table."""
    return None


def _no_flush() -> None:
    """A snapshot has no TLB to flush."""

