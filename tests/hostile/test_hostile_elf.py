"""The hostile corpus, ELF files: a guest program whose headers lie.

Every size and offset the headers claim is checked against the file and the
32-bit address space before anything is read, allocated or copied
(runtime/loader.py: _check_headers()): one line naming the file and what is
wrong, status 3 (a program that does not load), and the host's peak memory
stays what starting mmemu costs.
"""
import random
import re
import struct

import pytest
from elftools.elf.elffile import ELFFile

from mmemu.errors import LoaderError, MmemuError
from mmemu.machine import Machine
from mmemu.runtime.build import build
from mmemu.runtime.loader import load_elf

PEAK_LIMIT_KIB = 96 * 1024          # booting pc-16m and failing to load: well under
PROGRAM = "#include <mmemu.h>\nint main(void) { printk(\"hi\\n\"); return 0; }\n"

E_PHOFF, E_SHOFF, E_PHENTSIZE, E_PHNUM, E_SHNUM, E_SHSTRNDX = 28, 32, 42, 44, 48, 50
P_OFFSET, P_VADDR, P_FILESZ, P_MEMSZ = 4, 8, 16, 20


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    """A real guest program, built for pc-16m: (its bytes, its segments)."""
    d = tmp_path_factory.mktemp("elf")
    src = d / "hello.c"
    src.write_text(PROGRAM)
    path = build(src, d / "hello.elf", image=Machine("pc-16m").kernel_image)
    data = path.read_bytes()
    with open(path, "rb") as f:
        e = ELFFile(f)
        segs = [(s["p_type"], s["p_filesz"], s["p_memsz"]) for s in e.iter_segments()]
        symtab = e.get_section_by_name(".symtab")
        syms = {s.name: symtab["sh_offset"] + i * 16 for i, s in enumerate(symtab.iter_symbols())}
    return data, segs, syms


def patched(data, offset, fmt, value):
    d = bytearray(data)
    struct.pack_into(fmt, d, offset, value)
    return bytes(d)


def phdr(data, segs, kind, field, value):
    """data with field of the first segment of type kind ("bss": the PT_LOAD
    with more memory than file)."""
    i = next(i for i, (t, filesz, memsz) in enumerate(segs)
             if t == kind or (kind == "bss" and t == "PT_LOAD" and memsz > filesz))
    phoff = struct.unpack_from("<I", data, E_PHOFF)[0]
    return patched(data, phoff + 32 * i + field, "<I", value)


CASES = [
    ("bss-2gib", lambda d, s, y: phdr(d, s, "bss", P_MEMSZ, 0x7FFFFFFF),
     r"segment \d: 2147483647 bytes at 0x[0-9a-f]+ wrap around 4 GiB"),
    ("filesz-256mib", lambda d, s, y: phdr(d, s, "PT_LOAD", P_FILESZ, 0x10000000),
     r"segment 0: 268435456 bytes at offset 0x[0-9a-f]+ run past its end; the file has \d+ "
     r"bytes"),
    ("offset-past-end", lambda d, s, y: phdr(d, s, "PT_LOAD", P_OFFSET, 0x7FFFFFF0),
     r"segment 0: \d+ bytes at offset 0x7ffffff0 run past its end"),
    ("note-2gib", lambda d, s, y: phdr(d, s, "PT_NOTE", P_FILESZ, 0x7FFFFFFF),
     r"segment \d: 2147483647 bytes at offset 0x[0-9a-f]+ run past its end"),
    ("vaddr-wraps", lambda d, s, y: phdr(d, s, "PT_LOAD", P_VADDR, 0xFFFFF000),
     r"segment 0: \d+ bytes at 0xfffff000 wrap around 4 GiB"),
    ("65535-phdrs", lambda d, s, y: patched(d, E_PHNUM, "<H", 0xFFFF),
     r"65535 program headers at offset 0x34 run past its end"),
    ("phentsize-0", lambda d, s, y: patched(d, E_PHENTSIZE, "<H", 0),
     r"program headers of 0 bytes, not 32"),
    ("phoff-huge", lambda d, s, y: patched(d, E_PHOFF, "<I", 0xFFFFFFF0),
     r"\d program headers at offset 0xfffffff0 run past its end"),
    ("65535-shdrs", lambda d, s, y: patched(d, E_SHNUM, "<H", 0xFFFF),
     r"65535 section headers at offset 0x[0-9a-f]+ run past its end"),
    ("shoff-huge", lambda d, s, y: patched(d, E_SHOFF, "<I", 0xFFFFFFF0),
     r"\d+ section headers at offset 0xfffffff0 run past its end"),
    ("shstrndx-bad", lambda d, s, y: patched(d, E_SHSTRNDX, "<H", 0xFFF0),
     r"section name table 65520 of \d+ sections"),
    ("truncated", lambda d, s, y: d[:len(d) // 2], r"run past its end"),
    ("ex-table-4gib", lambda d, s, y: patched(d, y["__stop___ex_table"] + 4, "<I", 0xFFFFFF00),
     r"__ex_table \[0x[0-9a-f]+, 0xffffff00\) is not inside a loaded segment"),
]


@pytest.mark.parametrize("change,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_lying_elf_is_one_line_and_status_3(change, message, elf, tmp_path, mmemu_cli):
    data, segs, syms = elf
    path = tmp_path / "bad.elf"
    path.write_bytes(change(data, segs, syms))
    r = mmemu_cli("run", "--config", "pc-16m", path)
    assert r.status == 3, r.err
    assert len(r.err_lines) == 1, r.err
    assert r.err_lines[0].startswith(f"mmemu: {path}: a damaged ELF file (")
    assert re.search(message, r.err_lines[0]), r.err_lines[0]
    assert len(r.err_lines[0]) < 300
    assert r.peak_kib < PEAK_LIMIT_KIB


def test_the_unpatched_program_runs(elf, tmp_path, mmemu_cli):
    # the cases above break a program that works
    path = tmp_path / "good.elf"
    path.write_bytes(elf[0])
    r = mmemu_cli("run", "--config", "pc-16m", path)
    assert (r.status, r.out) == (0, "hi\n"), r.err


def test_random_damage_is_a_loader_error_never_a_host_exception(elf):
    # byte damage in the headers, the tables and anywhere: each load either
    # works or raises mmemu's own error with one bounded line
    data = elf[0]
    m = Machine("pc-16m")
    rng = random.Random(17)
    kinds = {"loaded": 0, "refused": 0}
    for _ in range(600):
        d = bytearray(data)
        for _ in range(rng.choice((1, 2, 4, 8))):
            at = rng.choice((rng.randrange(16, 52), rng.randrange(52, 180),
                             rng.randrange(len(d) - 800, len(d)), rng.randrange(len(d))))
            d[at] = rng.choice((0, 0xFF, rng.randrange(256), d[at] ^ (1 << rng.randrange(8))))
        if rng.random() < 0.1:
            d = d[:rng.randrange(len(d))]
        try:
            load_elf(bytes(d), m.pm, m.kernel_image)
            kinds["loaded"] += 1
        except LoaderError as e:
            assert "\n" not in str(e) and len(str(e)) < 300, str(e)
            kinds["refused"] += 1
        except MmemuError as e:
            pytest.fail(f"not a LoaderError: {e!r}")
    assert kinds["loaded"] > 100 and kinds["refused"] > 100, kinds
