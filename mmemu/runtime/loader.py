"""Loading a guest program: an i386 ELF copied into the kernel image's sections.

Models what a boot loader does with vmlinux: every PT_LOAD segment is copied
to its physical address (p_paddr) and the rest of its memory size is zeroed
(.bss).  A guest program is linked into the machine's kernel image
(guest/link.ld, mmemu/kernel/image.py): its text into the kernel's text,
its read-only data into rodata, its data (and a user task's code, stored
after it) into the data section, whose virtual addresses are direct-map
addresses, so once the direct map is up the program runs where it was
linked.

The result, a GuestImage, also carries the symbol table: it symbolizes
addresses the way Linux's %pS does ("main+0x1c/0x80") and tells SDK code
(between __mmemu_sdk_start and __mmemu_sdk_end) from the program's own.
"""
import io
import struct
from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from mmemu.errors import LoaderError, clip
from mmemu.kernel.image import KernelConfig, KernelImage

EM_386 = 3
PHDR_SIZE, SHDR_SIZE = 32, 40       # sizeof(Elf32_Phdr), sizeof(Elf32_Shdr)
# What pyelftools raises on a damaged file (its parser's own errors included).
ELF_ERRORS = (ELFError, ConstructError, ValueError, KeyError, struct.error, UnicodeDecodeError)
PF_X, PF_W, PF_R = 1, 2, 4
PAGE_OFFSET = 0xC0000000
REFERENCE_IMAGE = KernelImage.from_config(KernelConfig())

MACHINE_NAMES = {
    "EM_X86_64": "x86-64", "EM_386": "i386", "EM_ARM": "ARM", "EM_AARCH64": "AArch64",
    "EM_RISCV": "RISC-V", "EM_MIPS": "MIPS", "EM_PPC": "PowerPC", "EM_PPC64": "PowerPC64",
    "EM_S390": "s390", "EM_SPARC": "SPARC", "EM_IA_64": "IA-64",
}


class AddrRange(NamedTuple):
    """A half-open virtual address range [start, end)."""

    start: int
    end: int

    def __contains__(self, addr):
        return self.start <= addr < self.end

    @property
    def size(self):
        return self.end - self.start


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD program header."""

    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    flags: int                     # PF_R | PF_W | PF_X

    @property
    def readable(self):
        return bool(self.flags & PF_R)

    @property
    def writable(self):
        return bool(self.flags & PF_W)

    @property
    def executable(self):
        return bool(self.flags & PF_X)

    @property
    def vend(self):
        return self.vaddr + self.memsz

    @property
    def pend(self):
        return self.paddr + self.memsz


@dataclass(frozen=True)
class Symbol:
    """One ELF symbol: a function ("func"), an object ("object") or a label."""

    name: str
    addr: int
    size: int
    kind: str                      # func | object | notype
    local: bool = False

    @property
    def end(self):
        return self.addr + self.size

    def __contains__(self, addr):
        return self.addr <= addr < self.addr + self.size


@dataclass
class GuestImage:
    """A loaded guest program: entry, segments, section ranges and symbols."""

    entry: int
    segments: list
    symbols: dict                  # name -> Symbol (globals win over locals)
    text: Optional[AddrRange] = None         # _stext.._etext
    rodata: Optional[AddrRange] = None       # __start_rodata..__end_rodata
    data: Optional[AddrRange] = None         # _sdata.._edata
    bss: Optional[AddrRange] = None          # __bss_start..__bss_end
    sdk: Optional[AddrRange] = None          # __mmemu_sdk_start..__mmemu_sdk_end
    stack: Optional[AddrRange] = None        # init_stack..init_stack_end
    stack_guard: Optional[AddrRange] = None  # init_stack_guard..init_stack: left unmapped
    path: Optional[str] = None
    build_id: Optional[str] = None     # the GNU build ID (NT_GNU_BUILD_ID), hex, or None
    local_symbols: list = field(default_factory=list, repr=False)   # static names repeat
    ex_table: dict = field(default_factory=dict, repr=False)        # insn -> fixup
    _sized: list = field(default_factory=list, repr=False)   # sized symbols by address
    _starts: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self._index()

    def _index(self):
        """Sort the sized functions and objects for bisect lookups."""
        best = {}
        for sym in [*self.symbols.values(), *self.local_symbols]:
            if sym.size <= 0 or sym.kind not in ("func", "object"):
                continue
            cur = best.get(sym.addr)
            # At one address prefer a global, then a function, then the larger.
            if cur is None or _rank(sym) > _rank(cur):
                best[sym.addr] = sym
        self._sized = [best[a] for a in sorted(best)]
        self._starts = [s.addr for s in self._sized]

    @property
    def phys_start(self):
        """Lowest physical address the image occupies."""
        return min((s.paddr for s in self.segments if s.memsz), default=REFERENCE_IMAGE.text)

    @property
    def phys_end(self):
        """One past the highest physical address the image occupies."""
        return max((s.pend for s in self.segments if s.memsz), default=REFERENCE_IMAGE.text)

    def symbol_at(self, addr):
        """The sized function or object that contains addr, or None."""
        i = bisect_right(self._starts, addr) - 1
        if i >= 0 and addr in self._sized[i]:
            return self._sized[i]
        return None

    def function_at(self, addr):
        """The function that contains addr (a Symbol), or None."""
        sym = self.symbol_at(addr)
        return sym if sym is not None and sym.kind == "func" else None

    def symbolize(self, addr):
        """Linux's %pS: "main+0x1c/0x80" (symbol+offset/size), or None."""
        sym = self.symbol_at(addr)
        if sym is None:
            return None
        return f"{sym.name}+{addr - sym.addr:#x}/{sym.size:#x}"

    def lookup(self, name):
        """kallsyms_lookup_name(): the address of a symbol; KeyError if absent."""
        sym = self.symbols.get(name)
        if sym is None:
            for loc in self.local_symbols:
                if loc.name == name:
                    return loc.addr
            raise KeyError(f"no symbol {name!r} in the guest image")
        return sym.addr

    def is_sdk(self, addr):
        """Whether addr is SDK code (.text.mmemu and the compiler's runtime)."""
        return self.sdk is not None and addr in self.sdk

    def sdk_caller(self, eip, ebp, read32, limit=16):
        """The first return address outside the SDK, walking saved frame pointers.

        eip itself when it is not SDK code.  SDK functions set up their frame
        on entry (the build turns shrink-wrapping off), so [ebp+4] is the
        return address into the caller.  read32(va) returns None when va is
        unreadable; then the last address reached is returned.
        """
        for _ in range(limit):
            if not self.is_sdk(eip) or not ebp:
                break
            ret, nxt = read32(ebp + 4), read32(ebp)
            if ret is None:
                break
            eip, ebp = ret, nxt or 0
        return eip


def _rank(sym):
    """Which of two symbols at one address names it: a global, a function,
    the larger, a plain C name (not compiler_rt.int.__udivdi3)."""
    return (not sym.local, sym.kind == "func", sym.size, "." not in sym.name)


def load_elf(path_or_bytes, physmem, image=REFERENCE_IMAGE):
    """Load an i386 ELF into physical memory; return its GuestImage.

    image: the KernelImage it is linked into (the machine's; the reference
    kernel's by default).  Every PT_LOAD must lie inside its section of it:
    executable code in text, read-only data in rodata, the rest in data.
    Raises LoaderError for anything that is not an i386 executable or does
    not fit.
    """
    name, data = _read_input(path_or_bytes)
    elf = _open_elf(name, data)
    with _damaged(name):
        segments = _load_segments(elf)
        _check_fits(name, segments, image, physmem)
        for seg, payload in segments:
            if seg.filesz:
                physmem.write(seg.paddr, payload)
            if seg.memsz > seg.filesz:
                physmem.fill(seg.paddr + seg.filesz, seg.memsz - seg.filesz, 0)
        image = _make_image(elf, name, [seg for seg, _ in segments])
        image.ex_table = _read_ex_table(name, image, physmem)
    return image


def read_image(path_or_bytes):
    """The GuestImage of an ELF without loading it anywhere (for symbols)."""
    name, data = _read_input(path_or_bytes)
    elf = _open_elf(name, data)
    with _damaged(name):
        return _make_image(elf, name, [seg for seg, _ in _load_segments(elf)])


@contextmanager
def _damaged(name):
    """pyelftools' complaints about a file _check_headers() let through
    (a symbol table with a bad link, a string past its table): one line."""
    try:
        yield
    except ELF_ERRORS as e:
        raise LoaderError(f"{name}: a damaged ELF file ({clip(e)})") from None


def _read_input(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return "<ELF image>", bytes(path_or_bytes)
    path = Path(path_or_bytes)
    try:
        return str(path), path.read_bytes()
    except OSError as e:
        raise LoaderError(f"{path}: {e.strerror or e}") from None


def _open_elf(name, data):
    """Parse the header and refuse what mmemu cannot run."""
    if data[:4] != b"\x7fELF":
        raise LoaderError(f"{name}: not an ELF file")
    try:
        elf = ELFFile(io.BytesIO(data))
        machine = elf["e_machine"]
    except ELF_ERRORS as e:
        raise LoaderError(f"{name}: a damaged ELF file ({clip(e)})") from None
    if machine != "EM_386" or elf.elfclass != 32:
        what = MACHINE_NAMES.get(machine, str(machine).replace("EM_", ""))
        if machine == "EM_386":
            what = "64-bit i386"
        raise LoaderError(f"{name}: {what} ELF, mmemu runs i386 guests")
    if not elf.little_endian:
        raise LoaderError(f"{name}: big-endian ELF, mmemu runs i386 guests")
    _check_headers(name, elf, len(data))
    _refuse_user_program(name, elf)
    if elf["e_type"] != "ET_EXEC":
        kind = {"ET_REL": "a relocatable object (link it first)",
                "ET_DYN": "position-independent (link it with guest/link.ld)"}
        raise LoaderError(f"{name}: {kind.get(elf['e_type'], elf['e_type'])}, "
                          "mmemu runs statically linked i386 executables")
    return elf


def _check_headers(name, elf, size):
    """Every table and segment the headers claim lies inside the file and the
    32-bit address space: nothing is read, allocated or copied for a size the
    file does not back (a PT_LOAD claiming 2 GiB past the end of the file)."""
    def damaged(what):
        raise LoaderError(f"{name}: a damaged ELF file ({what}; the file has {size} bytes)")
    h = elf.header
    if h["e_phnum"]:
        if h["e_phentsize"] != PHDR_SIZE:
            damaged(f"program headers of {h['e_phentsize']} bytes, not {PHDR_SIZE}")
        if h["e_phoff"] + h["e_phnum"] * PHDR_SIZE > size:
            damaged(f"{h['e_phnum']} program headers at offset {h['e_phoff']:#x} "
                    "run past its end")
    if h["e_shnum"]:
        if h["e_shentsize"] != SHDR_SIZE:
            damaged(f"section headers of {h['e_shentsize']} bytes, not {SHDR_SIZE}")
        if h["e_shoff"] + h["e_shnum"] * SHDR_SIZE > size:
            damaged(f"{h['e_shnum']} section headers at offset {h['e_shoff']:#x} "
                    "run past its end")
        if h["e_shstrndx"] >= h["e_shnum"]:
            damaged(f"section name table {h['e_shstrndx']} of {h['e_shnum']} sections")
    for i in range(h["e_phnum"]):
        ph = elf.get_segment(i).header
        if ph["p_offset"] + ph["p_filesz"] > size:
            damaged(f"segment {i}: {ph['p_filesz']} bytes at offset {ph['p_offset']:#x} "
                    "run past its end")
        if ph["p_type"] == "PT_LOAD":
            if ph["p_filesz"] > ph["p_memsz"]:
                damaged(f"segment {i}: {ph['p_filesz']} bytes in the file but "
                        f"{ph['p_memsz']} in memory")
            if max(ph["p_vaddr"], ph["p_paddr"]) + ph["p_memsz"] > 1 << 32:
                damaged(f"segment {i}: {ph['p_memsz']} bytes at {ph['p_vaddr']:#x} "
                        "wrap around 4 GiB")
    for i in range(h["e_shnum"]):
        try:
            sh = elf.get_section(i).header
        except ELF_ERRORS as e:
            damaged(f"section {i}: {clip(e, 60)}")
        if sh["sh_type"] != "SHT_NOBITS" and sh["sh_offset"] + sh["sh_size"] > size:
            damaged(f"section {i}: {sh['sh_size']} bytes at offset {sh['sh_offset']:#x} "
                    "run past its end")


def _refuse_user_program(name, elf):
    """One line for an i386 program of user space: mmemu runs kernel code.

    A program with an interpreter (PT_INTERP: dynamically linked) or an
    entry point below PAGE_OFFSET (a static user program, linked at
    0x08048000, or a bare-metal image) is not kernel code linked at
    the kernel image's _text (0xc1000000) by guest/link.ld.
    """
    how = "build a guest program with `mmemu build` (linked at 0xc1000000 by guest/link.ld)"
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_INTERP":
            try:
                interp = seg.get_interp_name()
            except ELF_ERRORS:
                interp = "?"
            raise LoaderError(f"{name}: a dynamically linked user-space program (interpreter "
                              f"{interp}); mmemu runs kernel code: {how}")
    entry = elf["e_entry"]
    if entry < PAGE_OFFSET and elf["e_type"] in ("ET_EXEC", "ET_DYN") and entry:
        raise LoaderError(f"{name}: a user-space program (entry 0x{entry:08x}, below "
                          f"PAGE_OFFSET 0x{PAGE_OFFSET:08x}); mmemu runs kernel code: {how}")


def _load_segments(elf):
    """(Segment, file bytes) for every non-empty PT_LOAD."""
    out = []
    for ph in elf.iter_segments():
        if ph["p_type"] != "PT_LOAD" or ph["p_memsz"] == 0:
            continue
        seg = Segment(ph["p_vaddr"], ph["p_paddr"], ph["p_filesz"], ph["p_memsz"],
                      ph["p_flags"])
        out.append((seg, ph.data()[:seg.filesz]))
    return out


def image_section(image, seg):
    """(name, start, end, config key) of the image section a segment belongs in."""
    if seg.vaddr >= PAGE_OFFSET and seg.flags & PF_X:
        return "text", image.text, image.rodata, "code"
    if seg.vaddr >= PAGE_OFFSET and not seg.flags & PF_W:
        return "rodata", image.rodata, image.sdata, "rodata"
    return "data", image.sdata, image.init_begin, "rwdata"


def _check_fits(name, segments, image, physmem):
    """Every segment inside its section of the kernel image, the image inside RAM."""
    if not segments:
        raise LoaderError(f"{name}: no PT_LOAD segment to load")
    for seg, _ in segments:
        what, start, end, key = image_section(image, seg)
        if not start <= seg.paddr < end:
            raise LoaderError(f"{name}: a {what} segment loads at physical {seg.paddr:#x}, "
                              f"outside the kernel image's {what} [{start:#x}, {end:#x}) "
                              f"(build it for this machine: mmemu build --config, or link it "
                              f"with guest/link.ld)")
        if seg.pend > end:
            need = -(-(seg.pend - start) // 1024)
            raise LoaderError(f"{name}: program needs {need} KiB of {what} but the kernel "
                              f"image has {(end - start) // 1024} KiB (kernel.image.{key} "
                              f"in the config)")
    high = max(seg.pend for seg, _ in segments)
    if high > physmem.size:
        raise LoaderError(f"{name}: the image ends at physical {high:#x}, beyond RAM "
                          f"({physmem.size:#x})")


def _make_image(elf, name, segments):
    symbols, locals_ = _read_symbols(elf)
    image = GuestImage(
        entry=elf["e_entry"], segments=segments, symbols=symbols, path=name,
        local_symbols=locals_,
        text=_range(symbols, "_stext", "_etext") or _section_range(elf, ".text"),
        rodata=_range(symbols, "__start_rodata", "__end_rodata")
        or _section_range(elf, ".rodata"),
        data=_range(symbols, "_sdata", "_edata") or _section_range(elf, ".data"),
        bss=_range(symbols, "__bss_start", "__bss_end") or _section_range(elf, ".bss"),
        sdk=_range(symbols, "__mmemu_sdk_start", "__mmemu_sdk_end"),
        stack=_range(symbols, "init_stack", "init_stack_end"),
        stack_guard=_range(symbols, "init_stack_guard", "init_stack"),
        build_id=_build_id(elf))
    return image


def _build_id(elf):
    """The NT_GNU_BUILD_ID note's bytes as hex (`mmemu build` links one in), or None."""
    try:
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_NOTE":
                continue
            for note in seg.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return note["n_desc"]
    except ELF_ERRORS:
        return None
    return None


def _read_ex_table(name, image, physmem):
    """The exception table, from the loaded image: faulting insn -> fixup.

    Like Linux's __ex_table between __start___ex_table and __stop___ex_table
    (differs: absolute addresses, not relative offsets, and no handler types).
    A table outside what was loaded is a damaged file, not a read of GiBs.
    """
    try:
        start, stop = image.lookup("__start___ex_table"), image.lookup("__stop___ex_table")
    except KeyError:
        return {}
    if not any(seg.vaddr <= start <= stop <= seg.vend for seg in image.segments):
        raise LoaderError(f"{name}: a damaged ELF file (__ex_table [{start:#x}, {stop:#x}) "
                          "is not inside a loaded segment)")
    pa = start - 0xC0000000
    words = struct.unpack(f"<{(stop - start) // 4}I", physmem.read(pa, (stop - start) // 4 * 4))
    return {words[i]: words[i + 1] for i in range(0, len(words) - 1, 2)}


def _read_symbols(elf):
    """Globals by name (dict) and locals (list: static names repeat across files)."""
    symtab = elf.get_section_by_name(".symtab")
    globals_, locals_ = {}, []
    if not isinstance(symtab, SymbolTableSection):      # none, or not SHT_SYMTAB
        return globals_, locals_
    kinds = {"STT_FUNC": "func", "STT_OBJECT": "object", "STT_NOTYPE": "notype"}
    for s in symtab.iter_symbols():
        kind = kinds.get(s["st_info"]["type"])
        if not s.name or kind is None or s["st_shndx"] == "SHN_UNDEF":
            continue
        local = s["st_info"]["bind"] == "STB_LOCAL"
        sym = Symbol(s.name, s["st_value"], s["st_size"], kind, local)
        if local:
            locals_.append(sym)
        else:
            globals_.setdefault(s.name, sym)
    return globals_, locals_


def _range(symbols, start, end):
    if start in symbols and end in symbols:
        return AddrRange(symbols[start].addr, symbols[end].addr)
    return None


def _section_range(elf, name):
    sec = elf.get_section_by_name(name)
    if sec is None:
        return None
    return AddrRange(sec["sh_addr"], sec["sh_addr"] + sec["sh_size"])
