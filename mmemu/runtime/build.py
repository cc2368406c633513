"""Compiling a guest program: one C file plus the guest SDK into an i386 ELF.

The default compiler is the `ziglang` package's clang (`python -m ziglang cc
-target x86-freestanding-none -mcpu=i686`), which needs no system cross
compiler.  The CC environment variable (or the ``cc`` argument) replaces it,
e.g. ``CC="gcc -m32 -ffreestanding -fno-pie -no-pie"``.

Guests are compiled as Linux 6.1 compiles the 686 kernel (KERNEL_CFLAGS and
ARCH_CFLAGS below, from the top-level Makefile and arch/x86/Makefile): the
compiler keeps a NULL dereference (-fno-delete-null-pointer-checks), assumes
no strict aliasing, passes the first three integer arguments in EAX, EDX and
ECX (-mregparm=3), keeps the stack 4-byte aligned, uses no FPU/MMX/SSE, and
keeps frame pointers for backtraces.  Every build links with -nostdlib: the
compiler's own runtime library is not linked (zig's compiler-rt and a host
gcc's libgcc are built without -mregparm=3, and the compiler calls them with
it), and guest/lib/compat/libgcc.c provides the 64-bit division the
compiler emits calls for, built with the same flags.  Floating point has no
runtime: with gcc (-msoft-float) a guest that uses it fails to link, as
kernel code would; zig's clang ignores -msoft-float on i386 and emits x87
instructions, which run, but kernel code must not use them.

Every build links guest/link.ld into a kernel image's sections (text at its
_text, 0xC1000000 on the reference kernel; rodata and data at its
__start_rodata and _sdata; ``image``, a KernelImage, says where), compiles
the SDK's guest/lib/*.c, *.S and compat/*.c next to the program, keeps the
symbols, and turns shrink-wrapping off so every function sets up its frame
on entry.

Results are cached by content (source, the local headers it includes, the
SDK files, flags, compiler) in $MMEMU_CACHE, else ~/.cache/mmemu/build; a
cache hit runs no compiler.
"""
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from mmemu.errors import BuildError

BUILD_FORMAT = 3                  # bump when the flags' meaning changes
COMPILE_TIMEOUT = 600

ZIG_TARGET = ("-target", "x86-freestanding-none", "-mcpu=i686")

# Linux 6.1's top-level Makefile: KBUILD_CFLAGS for every architecture, with
# CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE (-O2) and CONFIG_FRAME_POINTER.
# Differs: no -fstack-protector-strong (Debian's 686 kernel has it; its
# guard lives in a per-cpu segment mmemu does not model) and no
# CONFIG_RETPOLINE thunks.
KERNEL_CFLAGS = (
    "-std=gnu11", "-O2",
    "-Wall", "-Wundef", "-Werror=strict-prototypes", "-Wno-trigraphs",
    "-Werror=implicit-function-declaration", "-Werror=implicit-int",
    "-Werror=return-type", "-Wno-format-security",
    "-fno-strict-aliasing", "-fno-common", "-fshort-wchar", "-fno-PIE",
    "-fno-delete-null-pointer-checks",
    "-fno-stack-protector",
    "-fno-omit-frame-pointer", "-fno-optimize-sibling-calls",
    "-fno-strict-overflow", "-fno-stack-check",
)
# arch/x86/Makefile for CONFIG_X86_32, and Makefile_32.cpu for CONFIG_M686.
# -ffreestanding implies -fno-builtin; <mmemu/string.h> maps memcpy and
# memset back to the builtins, as arch/x86/include/asm/string_32.h does.
ARCH_CFLAGS = (
    "-march=i686", "-msoft-float", "-mregparm=3", "-freg-struct-return", "-fno-pic",
    "-ffreestanding",
    "-mno-sse", "-mno-mmx", "-mno-sse2", "-mno-3dnow", "-mno-avx",
    "-fcf-protection=none",
    "-Wno-sign-compare", "-fno-asynchronous-unwind-tables",
)
# The stack stays 4-byte aligned: arch/x86/Makefile's cc_stack_align4, which
# is -mpreferred-stack-boundary=2 for gcc and -mstack-alignment=4 for clang.
STACK_ALIGN4 = {"zig": ("-mstack-alignment=4",), "clang": ("-mstack-alignment=4",),
                "gcc": ("-mpreferred-stack-boundary=2", "-fno-stack-clash-protection")}
# mmemu's own: debug info and symbols for oopses and gdb, leaf frames too,
# no unwind tables, a static image, no compiler runtime (see above), and a
# GNU build ID (in .notes, as vmlinux has it; a snapshot's VMCOREINFO names
# it, so gdb and drgn match the ELF to the snapshot).
MMEMU_CFLAGS = (
    "-g", "-mno-omit-leaf-frame-pointer", "-fno-unwind-tables", "-static", "-nostdlib",
    "-Wl,--build-id=sha1",
)
COMMON_CFLAGS = KERNEL_CFLAGS + ARCH_CFLAGS + MMEMU_CFLAGS
NO_SHRINK_WRAP = {"zig": ("-mllvm", "-enable-shrink-wrap=false"),
                  "clang": ("-mllvm", "-enable-shrink-wrap=false"),
                  "gcc": ("-fno-shrink-wrap",)}
GCC_FLAGS = ("-m32", "-fno-pie", "-no-pie")

_INCLUDE_RE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)


def find_guest_dir():
    """The guest SDK's folder: $MMEMU_GUEST_DIR, else <repo>/guest."""
    env = os.environ.get("MMEMU_GUEST_DIR")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2] / "guest"


def cache_dir():
    """Where built images are kept: $MMEMU_CACHE, else ~/.cache/mmemu/build."""
    env = os.environ.get("MMEMU_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmemu" / "build"


def compiler_command(cc=None):
    """The compiler as an argument list: cc, else $CC, else zig's clang."""
    cc = cc or os.environ.get("CC")
    if not cc:
        return [sys.executable, "-m", "ziglang", "cc"]
    return shlex.split(cc) if isinstance(cc, str) else [str(a) for a in cc]


def compiler_family(cmd):
    """'zig', 'clang' or 'gcc' (anything else is treated as GCC-compatible)."""
    names = [Path(tok).name for tok in cmd[:4]]
    if any(n in ("zig", "ziglang") or n.startswith("zig") for n in names):
        return "zig"
    if Path(cmd[0]).name.startswith("clang"):
        return "clang"
    return "gcc"


def sdk_sources(guest):
    """The SDK files compiled into every program (sorted, for a stable key)."""
    lib = guest / "lib"
    return sorted(lib.glob("*.c")) + sorted(lib.glob("*.S")) + sorted((lib / "compat").glob("*.c"))


def image_bases(image=None):
    """(text, rodata, data) virtual addresses a program is linked at: a KernelImage's
    _text, __start_rodata and _sdata (the reference kernel's without one)."""
    from mmemu.kernel.image import KernelConfig, KernelImage
    image = image or KernelImage.from_config(KernelConfig())
    return tuple(image.virt(a) for a in (image.text, image.rodata, image.sdata))


def layout_script(guest, image=None):
    """A linker script that sets the section bases and includes guest/link.ld.

    (zig's linker driver takes no --defsym, so the bases are assignments in
    a script of their own, kept in the build cache by their values.)
    """
    bases = image_bases(image)
    where = cache_dir()
    where.mkdir(parents=True, exist_ok=True)
    path = where / ("layout-" + "-".join(f"{b:08x}" for b in bases) + ".ld")
    text = "".join(f"__mmemu_{name}_base = {base:#x};\n"
                   for name, base in zip(("text", "rodata", "data"), bases))
    text += f'INCLUDE "{guest / "link.ld"}"\n'
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def compile_args(source, guest, cmd, cflags=(), image=None):
    """Every argument after the compiler command, except -o."""
    family = compiler_family(cmd)
    args = []
    if family == "zig" and "-target" not in cmd and "-target" not in cflags:
        args += ZIG_TARGET
    if family == "gcc":
        args += [f for f in GCC_FLAGS if f not in cmd]
    args += COMMON_CFLAGS
    args += STACK_ALIGN4[family]
    args += NO_SHRINK_WRAP[family]
    # __FILE__ (BUG_ON's "kernel BUG at prog.c:12!") relative to the program,
    # and guest/lib/... for the SDK's own.
    args.append(f"-fmacro-prefix-map={source.parent}{os.sep}=")
    args.append(f"-fmacro-prefix-map={guest}{os.sep}lib{os.sep}=guest/lib/")
    args += ["-I", str(guest / "include"), "-T", str(layout_script(guest, image))]
    args += list(cflags)
    args.append(str(source))
    args += [str(p) for p in sdk_sources(guest)]
    return args


PAE_CFLAGS = ("-DCONFIG_X86_PAE=1",)      # what the 686-pae kernel's autoconf.h defines


def flavour_cflags(pae):
    """The defines that select a kernel flavour in the guest headers."""
    return PAE_CFLAGS if pae else ()


def build(source, output=None, cc=None, cflags=(), image=None, pae=None):
    """Compile a guest C program with the SDK into an i386 ELF; return its path.

    image: the KernelImage whose sections it is linked into (a machine's
    ``kernel_image``; the reference kernel's by default).  pae: build for
    the 686-pae kernel (CONFIG_X86_PAE: 64-bit pte_t and phys_addr_t in the
    headers); None takes the default flavour ($MMEMU_KERNEL).  A cached
    result is returned without running the compiler.  ``output`` copies
    the result there; otherwise the path is inside the cache.  Raises
    BuildError with the compiler's own output when it fails.
    """
    if pae is None:
        from mmemu.config import default_kernel
        pae = default_kernel() == "686-pae"
    cflags = tuple(flavour_cflags(pae)) + tuple(cflags)
    src = Path(source).resolve()
    if not src.is_file():
        raise BuildError(f"{source}: no such file")
    guest = find_guest_dir()
    if not (guest / "link.ld").is_file():
        raise BuildError(f"the guest SDK is missing: no {guest / 'link.ld'}")
    cmd = compiler_command(cc)
    args = compile_args(src, guest, cmd, tuple(cflags), image)
    key = cache_key(src, guest, cmd, args)
    where = cache_dir()
    elf = where / f"{src.stem}-{key[:16]}.elf"
    if not elf.is_file():
        where.mkdir(parents=True, exist_ok=True)
        _compile(cmd, args, elf)
    if output is None:
        return elf
    out = Path(output)
    shutil.copyfile(elf, out)
    return out


def _compile(cmd, args, elf):
    """Run the compiler into a temporary file and move it into the cache."""
    tmp = elf.with_name(f".{elf.name}.{os.getpid()}.tmp")
    try:
        _run_compiler(list(cmd) + list(args) + ["-o", str(tmp)])
        os.replace(tmp, elf)
    finally:
        if tmp.exists():
            tmp.unlink()


def _run_compiler(argv):
    """Run one compiler command; its warnings go to stderr, its errors into BuildError."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=COMPILE_TIMEOUT)
    except FileNotFoundError:
        raise BuildError(f"compiler not found: {argv[0]} (set CC, or install the "
                         "ziglang package)") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"the compiler ran longer than {COMPILE_TIMEOUT} s") from None
    text = proc.stdout.decode("utf-8", "replace").rstrip()
    if proc.returncode != 0:
        raise BuildError(text or f"the compiler failed with status {proc.returncode}")
    if text:
        print(text, file=sys.stderr)


# -- the cache key -----------------------------------------------------------

def cache_key(src, guest, cmd, args):
    """SHA-256 over everything that can change the ELF."""
    h = hashlib.sha256()

    def add(label, data):
        data = data if isinstance(data, bytes) else str(data).encode()
        h.update(f"{label}:{len(data)}:".encode())
        h.update(data)

    add("format", BUILD_FORMAT)
    add("cmd", "\0".join(cmd))
    add("compiler", compiler_identity(cmd))
    add("args", "\0".join(args))
    add("source", src.read_bytes())
    for dep in local_includes(src, include_dirs(args), guest):
        add(f"dep {dep}", dep.read_bytes())
    for path in sdk_files(guest):
        add(f"sdk {path.relative_to(guest)}", path.read_bytes())
    return h.hexdigest()


def sdk_files(guest):
    """Every file of the SDK itself: include/, lib/ and link.ld."""
    files = [guest / "link.ld"]
    for sub in ("include", "lib"):
        files += (p for p in (guest / sub).rglob("*") if p.is_file())
    return sorted(files)


def compiler_identity(cmd):
    """What version of the compiler this is, without running it."""
    if compiler_family(cmd) == "zig" and "ziglang" in cmd:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return f"ziglang {version('ziglang')}"
        except PackageNotFoundError:
            pass
    exe = shutil.which(cmd[0]) or cmd[0]
    try:
        st = os.stat(exe)
    except OSError:
        return exe
    return f"{exe} {st.st_size} {st.st_mtime_ns}"


def include_dirs(args):
    """The -I folders of an argument list."""
    out = []
    for i, a in enumerate(args):
        if a == "-I" and i + 1 < len(args):
            out.append(Path(args[i + 1]))
        elif a.startswith("-I") and len(a) > 2:
            out.append(Path(a[2:]))
    return out


def local_includes(src, dirs, guest):
    """The program's own quoted #include files, recursively (SDK files excluded)."""
    seen, todo, found = set(), [src], []
    while todo:
        path = todo.pop()
        try:
            text = path.read_bytes()
        except OSError:
            continue
        for name in _INCLUDE_RE.findall(text):
            dep = _resolve_include(name.decode("utf-8", "replace"), path.parent, dirs)
            if dep is None or dep in seen or guest in dep.parents:
                continue
            seen.add(dep)
            found.append(dep)
            todo.append(dep)
    return sorted(found)


def _resolve_include(name, here, dirs):
    for d in (here, *dirs):
        p = (d / name)
        if p.is_file():
            return p.resolve()
    return None
