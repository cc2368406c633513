"""Tests for mmemu.runtime.build and the guest SDK (guest/).

The ELF checks read the images with pyelftools; the header checks compile
static assertions generated from abi.py and mmzone.py, so C and Python
cannot drift apart; the SDK run tests execute built programs on a bare
Unicorn CPU (a 4 MiB page mapping the image, an IN hook for hypercalls)
independent of mmemu's engine.
"""
import re
import shutil
import struct
import subprocess
import sys

import pytest
from elftools.elf.elffile import ELFFile

from mmemu.config import load_config
from mmemu.errors import BuildError
from mmemu.kernel.image import KernelImage
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, ZONE_DMA, ZONE_HIGHMEM, ZONE_MOVABLE, \
    ZONE_NORMAL
from mmemu.mm import gfp, mmzone
from mmemu.physmem import bytearray_physmem
from mmemu.mm import node_data
from mmemu.runtime import abi, build as buildmod, hc_highmem, hc_io, hc_slab, hc_vmalloc
from mmemu.runtime.build import build, compiler_family, find_guest_dir
from mmemu.runtime.loader import load_elf, read_image

pytestmark = pytest.mark.flavours

GUEST = find_guest_dir()
# pc-16m's small kernel: text at 1 MiB, so the bare CPU's 8 MiB hold a program
SMALL = KernelImage.from_config(load_config("pc-16m").kernel)
PROGRAMS = ["examples/hello.c", "examples/page_tour.c", "examples/exhaust.c",
            "tests/null_deref.c", "tests/bad_free.c"]
SDK_FUNCTIONS = ["_start", "mmemu_setup", "printk", "vprintk", "vsnprintf", "memset",
                 "memcpy"]
GCC = "gcc -m32 -ffreestanding -fno-pie -no-pie"
HEADER_TEXT = "".join(p.read_text() for p in (GUEST / "include").rglob("*.h"))


def zig_cc(*args, check=True):
    return subprocess.run([sys.executable, "-m", "ziglang", "cc", *args],
                          capture_output=True, text=True, check=check)


def compile_only(src):
    """Compile one file against the SDK headers (zig cc's -fsyntax-only is broken)."""
    return zig_cc("-target", "x86-freestanding-none", "-ffreestanding", "-c",
                  "-I", str(GUEST / "include"), str(src), "-o", str(src.with_suffix(".o")),
                  check=False)


def elf_of(path):
    f = open(path, "rb")
    return ELFFile(f)


def symbols_of(elf):
    return {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name}


@pytest.fixture(scope="module")
def built(kernel_flavour):
    """Every shipped guest program, built with zig (cached between runs)."""
    return {name: build(GUEST / name) for name in PROGRAMS}


# -- the ELF a build makes -------------------------------------------------------

@pytest.mark.parametrize("name", PROGRAMS)
def test_build_program_is_i386_at_kernel_address(built, name):
    elf = elf_of(built[name])
    assert elf["e_machine"] == "EM_386" and elf.elfclass == 32
    assert elf["e_type"] == "ET_EXEC"
    loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
    text = loads[0]
    # linked into the reference kernel's sections: _text, __start_rodata, _sdata
    assert [(s["p_vaddr"], s["p_paddr"]) for s in loads[:3]] == [
        (0xC1000000, 0x1000000), (0xC191C000, 0x191C000), (0xC1C39000, 0x1C39000)]
    assert text["p_flags"] == 5                     # R X
    for seg in loads:
        assert seg["p_vaddr"] - seg["p_paddr"] == PAGE_OFFSET
        assert seg["p_vaddr"] % 4096 == 0           # each segment on its own page
    assert loads[-1]["p_flags"] == 6                # data + bss: R W
    syms = symbols_of(elf)
    assert "main" in syms and "_start" in syms
    assert elf["e_entry"] == syms["_start"]["st_value"]


@pytest.mark.parametrize("name", PROGRAMS)
def test_build_sdk_code_inside_sdk_range(built, name):
    syms = symbols_of(elf_of(built[name]))
    start, end = syms["__mmemu_sdk_start"]["st_value"], syms["__mmemu_sdk_end"]["st_value"]
    for fn in SDK_FUNCTIONS:
        if fn in syms:
            assert start <= syms[fn]["st_value"] < end, fn
    assert not start <= syms["main"]["st_value"] < end
    assert syms["_stext"]["st_value"] <= syms["main"]["st_value"] < start
    for name_ in ("_etext", "_sdata", "_edata", "__bss_start", "__bss_end", "_end",
                  "init_stack", "init_stack_end"):
        assert name_ in syms
    assert syms["init_stack_end"]["st_value"] - syms["init_stack"]["st_value"] == 16384
    assert syms["init_stack_end"]["st_value"] % 16 == 0


def test_build_compiler_runtime_counts_as_sdk():
    src = GUEST / "examples/page_tour.c"
    syms = symbols_of(elf_of(build(src)))
    start, end = syms["__mmemu_sdk_start"]["st_value"], syms["__mmemu_sdk_end"]["st_value"]
    assert start <= syms["__udivdi3"]["st_value"] < end   # vsnprintf's %llu


def test_build_sdk_functions_set_up_their_frame_on_entry(built):
    """Shrink-wrapping is off: the host's caller walk relies on it."""
    elf = elf_of(built["examples/page_tour.c"])
    syms = symbols_of(elf)
    text = elf.get_section_by_name(".text")
    base, data = text["sh_addr"], text.data()
    for fn in ("alloc_pages", "__free_pages", "mmemu_setup", "vprintk", "main"):
        off = syms[fn]["st_value"] - base
        assert data[off:off + 3] == b"\x55\x89\xe5", fn     # push %ebp; mov %esp,%ebp


def test_build_uses_the_kernels_calling_convention(tmp_path):
    """-mregparm=3: the first three arguments arrive in EAX, EDX, ECX; the
    SDK's 64-bit division (called by the compiler the same way) is linked."""
    from capstone import CS_ARCH_X86, CS_MODE_32, Cs
    src = tmp_path / "regparm.c"
    src.write_text("#include <mmemu.h>\n"
                   "noinline int sum3(int a, int b, int c) { return a + 2 * b + 3 * c; }\n"
                   "noinline u64 div64(u64 a, u32 b) { return a / b; }\n"
                   "int main(void) { return sum3(1, 2, 3) + (int)div64(1ULL << 40, 1 << 20); }\n")
    elf = elf_of(build(src))
    syms = symbols_of(elf)
    text = elf.get_section_by_name(".text")
    sym = syms["sum3"]
    off = sym["st_value"] - text["sh_addr"]
    code = text.data()[off:off + sym["st_size"]]
    ops = " ".join(i.op_str for i in Cs(CS_ARCH_X86, CS_MODE_32).disasm(code, 0))
    assert "ebp + 8" not in ops and "esp + 4" not in ops, ops     # nothing from the stack
    assert "__udivdi3" in syms and "compiler_rt" not in "".join(syms)
    cpu = BareCPU(build(src, image=SMALL)).run()
    assert cpu.exit == 1 + 4 + 9 + (1 << 20)


def test_build_returns_output_copy(tmp_path):
    out = build(GUEST / "examples/hello.c", output=tmp_path / "hello.elf")
    assert out == tmp_path / "hello.elf"
    assert out.read_bytes()[:4] == b"\x7fELF"


# -- the header mirrors the Python definitions -----------------------------------

def static_asserts():
    """C _Static_asserts for every ABI number, bootinfo field and page field."""
    lines = ["#include <mmemu.h>", "#include <mmemu/task.h>"]

    def check(expr, value):
        lines.append(f"_Static_assert(({expr}) == {value:#x}u, \"{expr}\");")
    for name in dir(abi):
        if name.startswith(("HC_", "BOOTINFO_M", "BOOTINFO_O")) and \
                isinstance(getattr(abi, name), int):
            check(name, getattr(abi, name))
    for tag, fields in (("mmemu_bootinfo", abi.BOOTINFO_FIELDS),
                        ("mmemu_percpu", abi.PERCPU_FIELDS)):
        for i, field in enumerate(fields):
            check(f"offsetof(struct {tag}, {field})", 4 * i)
        check(f"sizeof(struct {tag})", 4 * len(fields))
    check("PERCPU_OFFSET", abi.PERCPU_OFFSET)
    for name in ("flags", "lru.next", "lru.prev", "mapping", "index", "private",
                 "_mapcount", "_refcount"):
        const = "OFF_" + name.upper().replace("LRU.", "LRU_").lstrip("_")
        check(f"offsetof(struct page, {name})", getattr(mmzone, const))
    check("sizeof(struct page)", mmzone.STRUCT_PAGE_SIZE)
    for bit, name in mmzone.PAGEFLAG_NAMES.items():
        check(f"PG_{name}", bit)
    for name in ("PG_buddy", "PG_offline", "PG_table", "PG_guard", "NR_PAGEFLAGS",
                 "ZONES_PGSHIFT", "NODES_PGSHIFT", "PAGE_TYPE_BASE"):
        check(name, getattr(mmzone, name))
    check("ZONES_MASK", mmzone.ZONES_MASK)
    check("NODES_MASK", mmzone.NODES_MASK)
    for name in ("MIGRATE_UNMOVABLE", "MIGRATE_MOVABLE", "MIGRATE_RECLAIMABLE",
                 "MIGRATE_PCPTYPES", "MIGRATE_HIGHATOMIC", "MIGRATE_ISOLATE", "MIGRATE_TYPES",
                 "NR_PAGEBLOCK_BITS", "MIGRATETYPE_MASK"):
        check(name, getattr(mmzone, name))
    check("pageblock_order", mmzone.PAGEBLOCK_ORDER)
    for tag, fields, size in (("zone", node_data.STRUCT_ZONE, node_data.SIZEOF_ZONE),
                              ("pglist_data", node_data.STRUCT_PGLIST_DATA,
                               node_data.SIZEOF_PGLIST_DATA),
                              ("mmemu_mm_globals", node_data.MM_GLOBALS,
                               node_data.SIZEOF_MM_GLOBALS)):
        for field, off in fields.items():
            check(f"offsetof(struct {tag}, {field})", off)
        check(f"sizeof(struct {tag})", size)
    for field, word in (("count", mmzone.PCP_COUNT), ("high", mmzone.PCP_HIGH),
                        ("batch", mmzone.PCP_BATCH), ("free_factor", mmzone.PCP_FREE_FACTOR),
                        ("lists", mmzone.PCP_LISTS)):
        check(f"offsetof(struct per_cpu_pages, {field})", 4 * word)
    check("sizeof(struct per_cpu_pages)", mmzone.PCP_STRIDE)
    check("NR_PCP_LISTS", mmzone.NR_PCP_LISTS)
    check("offsetof(struct page, pcp_list)", mmzone.OFF_LRU_NEXT)
    check("ZONE_BOOSTED_WATERMARK", node_data.ZONE_BOOSTED_WATERMARK)
    check("(unsigned long)LIST_POISON1", mmzone.LIST_POISON1)
    check("(unsigned long)LIST_POISON2", mmzone.LIST_POISON2)
    check("__GFP_BITS_MASK", gfp.__GFP_BITS_MASK)
    for name in ("MAX_NUMNODES", "NR_FREE_PAGES", "NR_VM_ZONE_STAT_ITEMS"):
        check(name, getattr(node_data, name) if hasattr(node_data, name)
              else getattr(mmzone, name))
    for module in (hc_vmalloc, hc_io, hc_slab, hc_highmem):
        for name in dir(module):
            if name.startswith("HC_") and re.search(rf"\b{name}\b", HEADER_TEXT) and \
                    isinstance(getattr(module, name), int):
                check(name, getattr(module, name))
    for name, value in (("PAGE_OFFSET", PAGE_OFFSET), ("PAGE_SHIFT", PAGE_SHIFT),
                        ("ZONE_DMA", ZONE_DMA), ("ZONE_NORMAL", ZONE_NORMAL),
                        ("ZONE_HIGHMEM", ZONE_HIGHMEM), ("ZONE_MOVABLE", ZONE_MOVABLE),
                        ("MAX_ORDER", 11), ("NR_PAGE_ORDERS", 11)):
        check(name, value)
    return "\n".join(lines) + "\n"


def test_header_mirrors_abi_and_mmzone(tmp_path):
    src = tmp_path / "mirror.c"
    src.write_text(static_asserts())
    assert compile_only(src).returncode == 0, compile_only(src).stderr


def test_header_page_tables_build_for_pae(tmp_path):
    """-DCONFIG_X86_PAE gives the three-level layout; the walkers and their
    callers (lib/pgtable.c, memory_api.c) compile unchanged."""
    src = tmp_path / "pae.c"
    src.write_text("#include <mmemu.h>\n"
                   "_Static_assert(sizeof(pte_t) == 8 && PTRS_PER_PTE == 512, \"pte\");\n"
                   "_Static_assert(PTRS_PER_PGD == 4 && PTRS_PER_PMD == 512, \"pgd, pmd\");\n"
                   "_Static_assert(CONFIG_PGTABLE_LEVELS == 3 && PMD_SIZE == 2 << 20, \"pae\");\n")
    for c in (src, GUEST / "lib/pgtable.c", GUEST / "tests/memory_api.c"):
        proc = zig_cc("-target", "x86-freestanding-none", "-ffreestanding", "-DCONFIG_X86_PAE",
                      "-Werror", "-c", "-I", str(GUEST / "include"), str(c), "-o",
                      str(tmp_path / "out.o"), check=False)
        assert proc.returncode == 0, proc.stderr


def test_header_gfp_flags_are_linux_6_1(tmp_path):
    expected = {
        "__GFP_DMA": 0x01, "__GFP_HIGHMEM": 0x02, "__GFP_DMA32": 0x04, "__GFP_MOVABLE": 0x08,
        "__GFP_RECLAIMABLE": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
        "__GFP_ZERO": 0x100, "__GFP_ATOMIC": 0x200, "__GFP_DIRECT_RECLAIM": 0x400,
        "__GFP_KSWAPD_RECLAIM": 0x800, "__GFP_NOWARN": 0x2000, "__GFP_COMP": 0x40000,
        "GFP_KERNEL": 0xCC0, "GFP_ATOMIC": 0xA20, "GFP_NOWAIT": 0x800, "GFP_DMA": 0x01,
        "GFP_USER": 0x100CC0, "GFP_HIGHUSER": 0x100CC2, "GFP_HIGHUSER_MOVABLE": 0x100CCA,
    }
    try:
        from mmemu.mm import gfp as pygfp               # cross-check once it exists
    except ImportError:
        pygfp = None
    lines = ["#include <mmemu.h>"]
    for name, value in expected.items():
        lines.append(f"_Static_assert({name} == {value:#x}u, \"{name}\");")
        if isinstance(getattr(pygfp, name, None), int):
            assert getattr(pygfp, name) == value, name
    src = tmp_path / "gfp.c"
    src.write_text("\n".join(lines) + "\n")
    assert compile_only(src).returncode == 0, compile_only(src).stderr


# -- errors ----------------------------------------------------------------------

def test_build_syntax_error_gives_compiler_message(tmp_path):
    src = tmp_path / "broken.c"
    src.write_text("#include <mmemu.h>\nint main(void)\n{\n\treturn 0\n}\n")
    with pytest.raises(BuildError) as exc:
        build(src)
    msg = str(exc.value)
    assert "broken.c:4" in msg and "error" in msg
    assert exc.value.exit_status == 3


def test_build_missing_source():
    with pytest.raises(BuildError, match="no such file"):
        build("/nonexistent/prog.c")


def test_build_missing_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("MMEMU_CACHE", str(tmp_path))
    with pytest.raises(BuildError, match="compiler not found: no-such-cc"):
        build(GUEST / "examples/hello.c", cc="no-such-cc -m32")


# -- the cache -------------------------------------------------------------------

@pytest.fixture
def counting_compiler(monkeypatch, tmp_path):
    """A private cache, and a count of real compiler runs."""
    monkeypatch.setenv("MMEMU_CACHE", str(tmp_path / "cache"))
    runs = []
    real = buildmod._run_compiler

    def counted(argv):
        runs.append(argv)
        return real(argv)
    monkeypatch.setattr(buildmod, "_run_compiler", counted)
    return runs


def test_build_cache_hit_runs_no_compiler(counting_compiler, tmp_path):
    src = tmp_path / "prog.c"
    src.write_text("#include <mmemu.h>\nint main(void) { return 3; }\n")
    first = build(src)
    assert len(counting_compiler) == 1
    assert first.parent == tmp_path / "cache"
    mtime = first.stat().st_mtime_ns
    assert build(src) == first
    assert len(counting_compiler) == 1 and first.stat().st_mtime_ns == mtime
    src.write_text("#include <mmemu.h>\nint main(void) { return 4; }\n")
    assert build(src) != first
    assert len(counting_compiler) == 2
    build(src, cflags=["-O1"])                       # flags are part of the key
    assert len(counting_compiler) == 3


def test_build_cache_follows_local_headers(counting_compiler, tmp_path):
    (tmp_path / "answer.h").write_text("#define ANSWER 41\n")
    src = tmp_path / "prog.c"
    src.write_text('#include <mmemu.h>\n#include "answer.h"\nint main(void) { return ANSWER; }\n')
    first = build(src)
    (tmp_path / "answer.h").write_text("#define ANSWER 42\n")
    assert build(src) != first
    assert len(counting_compiler) == 2


def test_compiler_family():
    assert compiler_family([sys.executable, "-m", "ziglang", "cc"]) == "zig"
    assert compiler_family(["zig", "cc"]) == "zig"
    assert compiler_family(["clang-16", "--target=i686-elf"]) == "clang"
    assert compiler_family(["gcc", "-m32"]) == "gcc"
    assert compiler_family(["i686-linux-gnu-gcc"]) == "gcc"


# -- running the SDK on a bare CPU -------------------------------------------------

class BareCPU:
    """A Unicorn CPU with paging on, the image mapped at PAGE_OFFSET, and the
    hypercall doorbell answered by a dict of handlers (nr -> fn(args) -> EAX)."""

    RAM = 8 << 20

    def __init__(self, elf, handlers=None):
        from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_32, Uc
        self.pm = bytearray_physmem(self.RAM)
        self.image = load_elf(elf, self.pm, SMALL)
        pgd = 0x2000
        self.pm.write32(pgd + 768 * 4, 0x000083)     # 4 MiB pages: PSE | RW | P
        self.pm.write32(pgd + 769 * 4, 0x400083)
        self.pm.pack("<4I", abi.HC_MAILBOX_PHYS + abi.BOOTINFO_OFFSET, abi.BOOTINFO_MAGIC,
                     0xC0600000, self.RAM >> 12, self.RAM >> 12)
        self.uc = Uc(UC_ARCH_X86, UC_MODE_32)
        bell = abi.HC_DOORBELL_PHYS
        self.uc.mem_map(0, bell)
        self.uc.mem_map(bell + abi.HC_DOORBELL_SIZE, self.RAM - bell - abi.HC_DOORBELL_SIZE)
        self.uc.mem_write(0, bytes(self.pm.buf[:bell]))
        self.uc.mem_write(bell + abi.HC_DOORBELL_SIZE, bytes(self.pm.buf[bell + abi.HC_DOORBELL_SIZE:]))
        self.uc.mmio_map(bell, abi.HC_DOORBELL_SIZE, self._on_doorbell, None, None, None)
        self._paging_on(pgd)
        self.handlers = dict(handlers or {})
        self.calls, self.console, self.exit, self.trap = [], [], None, None
        self.uc.hook_add(UC_HOOK_INTR, self._on_intr)

    def _paging_on(self, pgd):
        from unicorn.x86_const import UC_X86_REG_CR0, UC_X86_REG_CR3, UC_X86_REG_CR4
        self.uc.reg_write(UC_X86_REG_CR3, pgd)
        self.uc.reg_write(UC_X86_REG_CR4, self.uc.reg_read(UC_X86_REG_CR4) | 0x10)
        self.uc.reg_write(UC_X86_REG_CR0, self.uc.reg_read(UC_X86_REG_CR0) | 0x80000001)

    def reg(self, name):
        from unicorn import x86_const
        return self.uc.reg_read(getattr(x86_const, f"UC_X86_REG_{name.upper()}"))

    def read32(self, va):
        pa = va - PAGE_OFFSET
        if not 0 <= pa <= self.RAM - 4:
            return None
        return struct.unpack("<I", self.uc.mem_read(pa, 4))[0]

    def cstr(self, va):
        return bytes(self.uc.mem_read(va - PAGE_OFFSET, 256)).split(b"\0")[0].decode()

    def _on_doorbell(self, uc, offset, size, _):
        assert size == 4 and offset % 4 == 0, (offset, size)
        nr = offset // 4
        args = struct.unpack("<7I", uc.mem_read(abi.HC_MAILBOX_PHYS, 28))
        self.calls.append((nr, args, self.reg("eip"), self.reg("ebp")))
        if nr == abi.HC_EXIT:
            self.exit = args[0]
            uc.emu_stop()
        elif nr == abi.HC_PRINTK:
            self.console.append(bytes(uc.mem_read(args[0] - PAGE_OFFSET, args[1])).decode())
        elif nr == abi.HC_BUG:
            uc.emu_stop()
        handler = self.handlers.get(nr)
        return handler(args) & 0xFFFFFFFF if handler else 0

    def _on_intr(self, uc, intno, _):
        self.trap = (intno, self.reg("eip"), self.reg("cr2"), self.reg("ebp"), self.reg("esp"))
        uc.emu_stop()

    def run(self):
        self.uc.emu_start(self.image.entry, 0xFFFFFFFF, timeout=10_000_000, count=20_000_000)
        return self


def sdk_test(name):
    """A self-test program of guest/tests/sdk/ (each says what it checks)."""
    return GUEST / "tests" / "sdk" / name


def test_sdk_hello_prints_and_exits(built):
    cpu = BareCPU(build(GUEST / "examples/hello.c", image=SMALL)).run()
    assert cpu.exit == 0
    assert cpu.console == ["\0016Hello from a guest at c0100000 (main), "
                           "mem_map at c0600000\n"]


FORMAT_EXPECTED = [
    "-42|7|3000000000",
    "beef|BEEF|0xff|00001234|ab    |",
    "deadbeef|4000000000|-5",
    "123456789abcdef0|18446744073709551615|-9000000000",
    "0xc0100000|c0100000|0x00001234",
    "abc|     right|left      |tru|(null)",
    "ok|    x|y  |%",
    "123|-3|ff",
    "   42|42   |-0042|+7| 7|005|    -005",
    "     1|2   |xy",
    "ff|4464|10|010|-2147483648",
    "\0014level kept",
]


@pytest.mark.parametrize("cc", [None, GCC], ids=["zig", "gcc"])
def test_sdk_vsnprintf_formats(cc):
    if cc and not gcc_m32_works():
        pytest.skip("no gcc with -m32 support")
    cpu = BareCPU(build(sdk_test("formats.c"), cc=cc, image=SMALL)).run()
    assert [line.rstrip("\n") for line in cpu.console] == FORMAT_EXPECTED
    assert cpu.exit == 8 * 10 + 3          # would-be length 8, "ove" kept


def test_sdk_warn_and_bug_hypercalls():
    cpu = BareCPU(build(sdk_test("bugwarn.c"), image=SMALL)).run()
    warns = [c for c in cpu.calls if c[0] == abi.HC_WARN]
    bug = [c for c in cpu.calls if c[0] == abi.HC_BUG]
    assert len(warns) == 2 and len(bug) == 1 and cpu.exit is None
    (_, (file_, line, cond, flags, *_), eip, _) = warns[0]
    assert (cpu.cstr(file_), line, cpu.cstr(cond), flags) == ("bugwarn.c", 13, "x == 1", 1)
    assert cpu.image.symbolize(eip).startswith("main+")      # the `in` is in main itself
    (_, (file_, line, cond, flags, *_), _, _) = warns[1]
    assert (line, cpu.cstr(cond), flags) == (16, "x", 1 | 8)   # BUGFLAG_NO_CUT_HERE
    assert cpu.console == ["\0014------------[ cut here ]------------\n", "value 1\n"]
    (_, (file_, line, cond, *_), eip, _) = bug[0]
    assert (cpu.cstr(file_), line, cpu.cstr(cond)) == ("bugwarn.c", 17, "x + ret == 2")
    assert cpu.image.symbolize(eip).startswith("main+")


def test_sdk_page_allocator_hypercalls():
    page = 0xC0600000 + 0x123 * mmzone.STRUCT_PAGE_SIZE

    def alloc(args):
        return page
    cpu = BareCPU(build(sdk_test("alloc.c"), image=SMALL),
                  {abi.HC_ALLOC_PAGES: alloc, abi.HC_GET_FREE_PAGES: lambda a: 0xC0200000})
    cpu.uc.mem_write(page - PAGE_OFFSET + 28, struct.pack("<I", 1))    # _refcount
    cpu.run()
    assert cpu.exit == 1                                   # refcount 1, lowmem
    calls = [(nr, args) for nr, args, _, _ in cpu.calls
             if nr not in (abi.HC_EXIT, abi.HC_PRINTK)]
    nargs = {abi.HC_ALLOC_PAGES: 3, abi.HC_FREE_PAGES: 2, abi.HC_GET_FREE_PAGES: 2,
             abi.HC_FREE_PAGES_ADDR: 2}
    assert [(nr, args[:nargs[nr]]) for nr, args in calls] == [
        (abi.HC_ALLOC_PAGES, (0xCC0, 3, 0xFFFFFFFF)),        # nid NUMA_NO_NODE
        (abi.HC_FREE_PAGES, (page, 3)),
        (abi.HC_GET_FREE_PAGES, (0xA20 | 0x100, 0)),         # GFP_ATOMIC | __GFP_ZERO
        (abi.HC_FREE_PAGES_ADDR, (0xC0200000, 0)),
        (abi.HC_ALLOC_PAGES, (0x100CC2, 0, 1)),
        (abi.HC_GET_FREE_PAGES, (0xCC1, 2)),                 # GFP_KERNEL | GFP_DMA
    ]


def test_sdk_caller_of_a_hypercall_in_the_sdk():
    cpu = BareCPU(build(sdk_test("alloc.c"), image=SMALL)).run()
    nr, _, eip, ebp = cpu.calls[0]
    assert nr == abi.HC_ALLOC_PAGES
    assert cpu.image.symbolize(eip).startswith("alloc_pages+") and cpu.image.is_sdk(eip)
    caller = cpu.image.sdk_caller(eip, ebp, cpu.read32)
    assert cpu.image.symbolize(caller).startswith("main+")


def test_sdk_page_flag_helpers_read_mem_map():
    words = {                                   # pfn -> {word index: value}
        1: {mmzone.W_FLAGS: 1 << mmzone.PG_reserved},
        2: {mmzone.W_PRIVATE: 3, mmzone.W_MAPCOUNT: mmzone.PAGE_TYPE_BUDDY},
        3: {mmzone.W_FLAGS: 1 << mmzone.PG_slab, mmzone.W_REFCOUNT: 1},
        4: {mmzone.W_FLAGS: 1 << mmzone.PG_head},
        5: {mmzone.W_NEXT: 0xC0600000 + 4 * mmzone.STRUCT_PAGE_SIZE + 1},
        6: {mmzone.W_FLAGS: mmzone.page_flags_word(ZONE_HIGHMEM, 2)},
    }
    cpu = BareCPU(build(sdk_test("pageflags.c"), image=SMALL), {abi.HC_PAGE_ADDRESS: lambda a: 0xFEC01000})
    for pfn, fields in words.items():
        for word, value in fields.items():
            cpu.uc.mem_write(0x600000 + pfn * mmzone.STRUCT_PAGE_SIZE + 4 * word, struct.pack("<I", value))
    cpu.run()
    assert cpu.exit == 0x3FF, bin(cpu.exit)
    assert [c[1][0] for c in cpu.calls if c[0] == abi.HC_PAGE_ADDRESS] == \
        [0xC0600000 + 6 * mmzone.STRUCT_PAGE_SIZE]


def test_sdk_null_deref_faults_with_a_backtrace(built):
    from mmemu.arch.x86.dumpstack import walk_frames
    cpu = BareCPU(build(GUEST / "tests/null_deref.c", image=SMALL)).run()
    intno, eip, cr2, ebp, esp = cpu.trap
    assert (intno, cr2) == (14, 0)
    assert cpu.image.symbolize(eip).startswith("poke+")
    trace = walk_frames(cpu.read32, ebp, eip, cpu.image.symbolize, esp=esp)
    assert trace[0].startswith("main+") and trace[-1].startswith("_start+")


def gcc_m32_works():
    if not shutil.which("gcc"):
        return False
    proc = subprocess.run(["gcc", "-m32", "-ffreestanding", "-c", "-x", "c", "-", "-o",
                           "/dev/null"], input=b"int f(void) { return 1; }\n",
                          capture_output=True)
    return proc.returncode == 0


def test_build_with_gcc(tmp_path, monkeypatch):
    if not gcc_m32_works():
        pytest.skip("no gcc with -m32 support")
    monkeypatch.setenv("CC", GCC)
    elf_path = build(GUEST / "examples/hello.c", output=tmp_path / "hello-gcc.elf",
                     image=SMALL)
    elf = elf_of(elf_path)
    assert elf["e_machine"] == "EM_386"
    syms = symbols_of(elf)
    start, end = syms["__mmemu_sdk_start"]["st_value"], syms["__mmemu_sdk_end"]["st_value"]
    assert start <= syms["__udivdi3"]["st_value"] < end       # guest/lib/compat
    cpu = BareCPU(elf_path).run()
    assert cpu.exit == 0 and cpu.console[0].startswith("\0016Hello from a guest")
    assert len(read_image(elf_path).build_id) == 40          # gcc's linker links one in too
