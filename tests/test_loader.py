"""Tests for mmemu.runtime.loader: refusing what is not an i386 executable,
fitting the kernel image reservation, copying segments and zeroing .bss,
and the symbol lookups (%pS, kallsyms_lookup_name, SDK range)."""
import subprocess
import sys

import pytest
from elftools.elf.elffile import ELFFile

from mmemu.errors import LoaderError
from mmemu.config import load_config
from mmemu.kernel.image import KernelImage
from mmemu.physmem import bytearray_physmem
from mmemu.runtime.build import build, find_guest_dir
from mmemu.runtime.loader import AddrRange, load_elf, read_image

pytestmark = pytest.mark.flavours

GUEST = find_guest_dir()
MiB = 1 << 20
# pc-16m's small kernel: text at 1 MiB (so an 8 MiB physmem holds the image)
SMALL = KernelImage.from_config(load_config("pc-16m").kernel)


@pytest.fixture(scope="module")
def null_deref(kernel_flavour):
    return build(GUEST / "tests/null_deref.c", image=SMALL)


@pytest.fixture
def physmem():
    pm = bytearray_physmem(8 * MiB)
    pm.fill(0, 8 * MiB, 0xAA)              # so that zeroing shows
    return pm


def zig_compile(tmp_path, target, *extra):
    src = tmp_path / "tiny.c"
    src.write_text("void _start(void) { for (;;) ; }\n")
    out = tmp_path / "tiny.out"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", target, "-nostdlib",
                    "-ffreestanding", *extra, str(src), "-o", str(out)], check=True,
                   capture_output=True)
    return out


# -- refusals --------------------------------------------------------------------

def test_load_elf_not_an_elf(physmem, tmp_path):
    with pytest.raises(LoaderError, match="not an ELF file"):
        load_elf(b"#!/bin/sh\necho hi\n", physmem)
    script = tmp_path / "prog.sh"
    script.write_text("echo hi\n")
    with pytest.raises(LoaderError, match=r"prog\.sh: not an ELF file"):
        load_elf(script, physmem)


def test_load_elf_missing_file(physmem):
    with pytest.raises(LoaderError, match="/nonexistent.elf"):
        load_elf("/nonexistent.elf", physmem)


def test_load_elf_x86_64(physmem, tmp_path):
    elf = zig_compile(tmp_path, "x86_64-freestanding-none")
    with pytest.raises(LoaderError) as exc:
        load_elf(elf, physmem)
    assert str(exc.value) == f"{elf}: x86-64 ELF, mmemu runs i386 guests"
    assert exc.value.exit_status == 3


def elf32(e_type, entry, phdrs, machine=3):
    """A minimal little-endian ELF32 file: the header, program headers, and
    the bytes each (p_type, vaddr, data) header points at."""
    import struct
    ehsize, phentsize = 52, 32
    body_off = ehsize + phentsize * len(phdrs)
    headers, body = [], b""
    for p_type, vaddr, data in phdrs:
        headers.append(struct.pack("<8I", p_type, body_off + len(body), vaddr, vaddr,
                                   len(data), len(data), 5, 4096 if p_type == 1 else 1))
        body += data
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIIIIIHHHHHH", e_type, machine, 1, entry, ehsize, 0, 0,
                                 ehsize, phentsize, len(phdrs), 40, 0, 0)
    return header + b"".join(headers) + body


PT_LOAD, PT_INTERP = 1, 3
ET_EXEC, ET_DYN = 2, 3


@pytest.mark.parametrize("e_type", [ET_EXEC, ET_DYN])
def test_load_elf_dynamically_linked_user_program(physmem, tmp_path, e_type):
    prog = tmp_path / "ls"
    prog.write_bytes(elf32(e_type, 0x08049000, [(PT_INTERP, 0x08048154, b"/lib/ld-linux.so.2\0"),
                                                (PT_LOAD, 0x08048000, b"\x90" * 64)]))
    with pytest.raises(LoaderError) as exc:
        load_elf(prog, physmem)
    msg = str(exc.value)
    assert msg.startswith(f"{prog}: a dynamically linked user-space program (interpreter "
                          "/lib/ld-linux.so.2); mmemu runs kernel code")
    assert "\n" not in msg and "KiB" not in msg and exc.value.exit_status == 3


def test_load_elf_static_user_program_at_0x08048000(physmem, tmp_path):
    prog = tmp_path / "static"
    prog.write_bytes(elf32(ET_EXEC, 0x08048074, [(PT_LOAD, 0x08048000, b"\x90" * 0x2000)]))
    with pytest.raises(LoaderError) as exc:
        load_elf(prog, physmem)
    assert str(exc.value) == (
        f"{prog}: a user-space program (entry 0x08048074, below PAGE_OFFSET 0xc0000000); "
        "mmemu runs kernel code: build a guest program with `mmemu build` (linked at "
        "0xc1000000 by guest/link.ld)")


@pytest.mark.parametrize("target,name", [("arm-freestanding-none", "ARM"),
                                         ("aarch64-freestanding-none", "AArch64"),
                                         ("riscv64-freestanding-none", "RISC-V")])
def test_load_elf_other_architectures(physmem, tmp_path, target, name):
    elf = zig_compile(tmp_path, target)
    with pytest.raises(LoaderError) as exc:
        load_elf(elf, physmem)
    assert str(exc.value) == f"{elf}: {name} ELF, mmemu runs i386 guests"


@pytest.mark.parametrize("kind", ["user", "x86-64"])
def test_cli_run_of_a_foreign_elf_is_one_line(tmp_path, kind):
    if kind == "user":
        prog, what = tmp_path / "hello", "dynamically linked user-space program"
        prog.write_bytes(elf32(ET_EXEC, 0x08049000,
                               [(PT_INTERP, 0x08048154, b"/lib/ld-linux.so.2\0"),
                                (PT_LOAD, 0x08048000, b"\x90" * 64)]))
    else:
        prog, what = zig_compile(tmp_path, "x86_64-freestanding-none"), "x86-64 ELF"
    proc = subprocess.run([sys.executable, "-m", "mmemu.cli", "run", str(prog), "--config",
                           "pc-16m"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and what in lines[0], proc.stderr


def test_load_elf_relocatable_object(physmem, tmp_path):
    obj = zig_compile(tmp_path, "x86-freestanding-none", "-c")
    with pytest.raises(LoaderError, match="relocatable object"):
        load_elf(obj, physmem)


def test_load_elf_too_big_for_its_section(physmem, null_deref):
    import dataclasses
    text = read_image(null_deref).segments[0]
    need = -(-(text.pend - SMALL.text) // 1024)
    tiny = dataclasses.replace(SMALL, rodata=SMALL.text + 4096)     # 4 KiB of text
    with pytest.raises(LoaderError) as exc:
        load_elf(null_deref, physmem, tiny)
    assert str(exc.value).endswith(
        f"program needs {need} KiB of text but the kernel image has 4 KiB "
        "(kernel.image.code in the config)")


def test_load_elf_built_for_another_kernel(physmem, null_deref):
    reference = build(GUEST / "tests/null_deref.c")          # text at 0xC1000000
    with pytest.raises(LoaderError, match="a text segment loads at physical 0x1000000, "
                                          "outside the kernel image's text"):
        load_elf(reference, physmem, SMALL)


def test_load_elf_beyond_ram(null_deref):
    with pytest.raises(LoaderError, match="beyond RAM"):
        load_elf(null_deref, bytearray_physmem(0x101000), SMALL)


# -- loading ---------------------------------------------------------------------

def test_load_elf_copies_segments_and_zeroes_bss(physmem, null_deref):
    img = load_elf(null_deref, physmem, SMALL)
    with open(null_deref, "rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_memsz"]]
        assert len(img.segments) == len(loads) == 3
        for seg, ph in zip(img.segments, loads):
            assert physmem.read(seg.paddr, seg.filesz) == ph.data()[:seg.filesz]
            tail = seg.memsz - seg.filesz
            assert physmem.read(seg.paddr + seg.filesz, tail) == bytes(tail)
    text, rodata, data = img.segments
    assert (text.readable, text.writable, text.executable) == (True, False, True)
    assert (rodata.writable, rodata.executable) == (False, False)
    assert data.writable and not data.executable
    # The stack and the printk buffer are .bss: zero, where physmem was 0xAA.
    stack = img.stack
    assert stack.size == 16384 and img.bss.start <= stack.start < img.bss.end
    assert physmem.read(stack.start - 0xC0000000, stack.size) == bytes(stack.size)
    # Just past the image nothing was touched.
    assert physmem.read(img.phys_end, 16) == b"\xAA" * 16
    assert img.phys_start == 0x100000


def test_load_elf_from_bytes(physmem, null_deref):
    img = load_elf(null_deref.read_bytes(), physmem, SMALL)
    assert img.path == "<ELF image>"
    assert img.entry == img.lookup("_start")


def test_guest_image_ranges(null_deref):
    img = read_image(null_deref)
    assert img.text.start == 0xC0000000 + SMALL.text and isinstance(img.text, AddrRange)
    assert (img.rodata.start, img.data.start) == (0xC0000000 + SMALL.rodata,
                                                  0xC0000000 + SMALL.sdata)
    assert img.text.start <= img.sdk.start < img.sdk.end <= img.text.end
    assert img.text.end <= img.rodata.start <= img.rodata.end <= img.data.start
    assert img.data.end <= img.bss.start < img.bss.end
    assert img.rodata.start % 4096 == 0 and img.data.start % 4096 == 0


# -- symbols ---------------------------------------------------------------------

def test_symbolize_like_percent_ps(null_deref):
    img = read_image(null_deref)
    main = img.symbols["main"]
    assert img.symbolize(main.addr) == f"main+0x0/{main.size:#x}"
    assert img.symbolize(main.addr + 5) == f"main+0x5/{main.size:#x}"
    assert img.symbolize(main.addr + main.size) != f"main+{main.size:#x}/{main.size:#x}"
    assert img.symbolize(0xC0000000) is None
    assert img.symbolize(0) is None


def test_symbolize_static_functions_and_data(null_deref):
    img = read_image(null_deref)
    poke = img.lookup("poke")                        # static: a local symbol
    assert img.symbolize(poke + 1).startswith("poke+0x1/")
    assert img.function_at(poke + 1).name == "poke"
    buf = img.lookup("printk_buf")
    assert img.symbolize(buf + 16) == "printk_buf+0x10/0x400"
    assert img.function_at(buf + 16) is None          # an object, not a function
    assert img.symbol_at(buf).kind == "object"


def test_lookup(null_deref):
    img = read_image(null_deref)
    assert img.lookup("_start") == img.entry
    assert img.lookup("init_stack_end") - img.lookup("init_stack") == 16384
    with pytest.raises(KeyError, match="no_such_symbol"):
        img.lookup("no_such_symbol")


def test_is_sdk(null_deref):
    img = read_image(null_deref)
    for name in ("printk", "vsnprintf", "_start", "mmemu_setup", "memset"):
        assert img.is_sdk(img.lookup(name)), name
    for name in ("main", "poke"):
        assert not img.is_sdk(img.lookup(name)), name
    assert not img.is_sdk(img.lookup("printk_buf"))


def test_sdk_caller_walks_out_of_the_sdk(null_deref):
    img = read_image(null_deref)
    printk, vprintk, main = (img.lookup(n) for n in ("printk", "vprintk", "main"))
    # vprintk's frame -> printk's frame -> main's frame
    mem = {0x1000: 0x1100, 0x1004: printk + 0x20, 0x1100: 0x1200, 0x1104: main + 0x10,
           0x1200: 0, 0x1204: img.lookup("_start") + 5}
    assert img.sdk_caller(vprintk + 4, 0x1000, mem.get) == main + 0x10
    assert img.sdk_caller(main + 3, 0x1000, mem.get) == main + 3   # already outside
    assert img.sdk_caller(vprintk + 4, 0x3000, mem.get) == vprintk + 4   # unreadable


def test_symbolize_agrees_with_a_linear_scan(null_deref):
    """The bisect lookup against brute force over every sized symbol."""
    img = read_image(null_deref)
    sized = [s for s in [*img.symbols.values(), *img.local_symbols]
             if s.size and s.kind in ("func", "object")]
    for addr in range(img.text.start - 4, img.text.end + 4):
        hits = {s.name for s in sized if s.addr <= addr < s.end}
        got = img.symbolize(addr)
        if not hits:
            assert got is None, hex(addr)
        else:
            assert got.split("+")[0] in hits, hex(addr)
