"""The kernel a machine boots: its image, initrd and command line, and where they lie.

A machine config's ``kernel:`` section (KernelConfig) describes the kernel
whose boot mmemu reproduces; every default is the reference kernel's
(Debian's 6.1.0-50-686, docs/reference-6.1-686.md, section 2)::

    kernel:
      load_address: 16M          # CONFIG_PHYSICAL_START: where _text lies
      image: {code: 9327K, rodata: 3188K, rwdata: 1246K, init: 912K, bss: 464K,
              reserved: 15256K, brk: 64K, smp_locks: 32K}
      initrd: 1044K              # 0: no initrd
      cmdline: console=ttyS0 nokaslr quiet panic=-1

code, rodata, rwdata, init and bss are the sizes the ``Memory:`` line
prints; ``reserved`` is what early_reserve_memory() reserves, [_text,
__end_of_kernel_reserve), which also holds what the line does not count
(the bug table, .vvar, alignment); ``brk`` the part of .brk reserve_brk()
keeps (head_32.S's page tables, pgt_buf); ``smp_locks`` the .smp_locks
section freed at boot on one CPU.  KernelImage lays the sections out as
arch/x86/kernel/vmlinux.lds.S does on i386: text from _text, rodata and
data each from a page, and init, .smp_locks and bss page aligned at the
end of the reservation.  Guest programs are linked into the text, rodata
and data sections (guest/link.ld), as code built into the kernel would be.

Nothing here depends on the rest of mmemu: config parsing and the boot
both use it.
"""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

KiB = 1 << 10
MiB = 1 << 20
PAGE_SIZE = 4096
PAGE_OFFSET = 0xC0000000

REFERENCE_LOAD_ADDRESS = 16 * MiB          # CONFIG_PHYSICAL_START=0x1000000
DEFAULT_CMDLINE = "console=ttyS0 nokaslr quiet panic=-1"
IMAGE_KEYS = ("code", "rodata", "rwdata", "init", "bss", "reserved", "brk", "smp_locks")
# The 686 kernel's own sizes (the Memory: line, /proc/iomem, its ELF sections).
REFERENCE_IMAGE = {"code": 9327 * KiB, "rodata": 3188 * KiB, "rwdata": 1246 * KiB,
                   "init": 912 * KiB, "bss": 464 * KiB, "reserved": 15256 * KiB,
                   "brk": 64 * KiB, "smp_locks": 32 * KiB}
REFERENCE_INITRD = 1044 * KiB             # the oracle's initramfs, padded to this size
# The 686-pae kernel (6.1.0-50-686-pae, same source): its own sizes, and
# nopti on its command line: mmemu models no page-table isolation, which
# the PAE kernel turns on by default on a CPU without PCID (QEMU's qemu32).
REFERENCE_IMAGE_PAE = {"code": 9423 * KiB, "rodata": 3188 * KiB, "rwdata": 1265 * KiB,
                       "init": 928 * KiB, "bss": 476 * KiB, "reserved": 15404 * KiB,
                       "brk": 100 * KiB, "smp_locks": 32 * KiB}
DEFAULT_CMDLINE_PAE = DEFAULT_CMDLINE + " nopti"
# Boot options the kernel knows; anything else is handed to init (and printed
# as "Unknown kernel command line parameters").  nokaslr is consumed by the
# decompressor, not by the kernel.
KNOWN_PARAMS = ("console", "quiet", "panic", "memblock", "highmem", "vmalloc",
                "kernelcore", "movablecore", "slub_debug", "transparent_hugepage",
                "loglevel", "debug", "mem", "earlyprintk")


def _page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


@dataclass(frozen=True)
class KernelConfig:
    """The ``kernel:`` section of a machine config (sizes in bytes)."""

    load_address: int = REFERENCE_LOAD_ADDRESS
    image: dict[str, int] = field(default_factory=lambda: dict(REFERENCE_IMAGE))
    initrd: int = REFERENCE_INITRD
    cmdline: str = DEFAULT_CMDLINE

    @classmethod
    def reference(cls, pae: bool = False) -> "KernelConfig":
        """The reference kernel's defaults: the 686 build's, or the 686-pae build's."""
        if pae:
            return cls(image=dict(REFERENCE_IMAGE_PAE), cmdline=DEFAULT_CMDLINE_PAE)
        return cls()


def image_sizes(given: Mapping[str, int], pae: bool = False) -> dict[str, int]:
    """The image's sizes from the keys a config gave: the reference's (the
    flavour's) for the rest, and ``reserved`` the sum of the parts when any
    part was given but not it (the reference's own 15256K holds sections
    the parts leave out)."""
    sizes = dict(REFERENCE_IMAGE_PAE if pae else REFERENCE_IMAGE)
    sizes.update(given)
    if given and "reserved" not in given:
        sizes["reserved"] = minimal_reserve(sizes)
    return sizes


def minimal_reserve(sizes: Mapping[str, int]) -> int:
    """The smallest [_text, __end_of_kernel_reserve) that holds the parts, page aligned."""
    return (_page_align(sizes["code"]) + _page_align(sizes["rodata"])
            + _page_align(sizes["rwdata"]) + _page_align(sizes["init"])
            + _page_align(sizes["smp_locks"]) + _page_align(sizes["bss"]))


@dataclass(frozen=True)
class KernelImage:
    """Where the image's sections lie, physical addresses (end exclusive).

    Models the i386 vmlinux.lds.S layout: _text at the load address;
    __start_rodata on the page after the code; _sdata on the page after
    rodata; __init_begin, __smp_locks and __bss_start page aligned so that
    __bss_stop is __end_of_kernel_reserve; .brk right after.
    """

    text: int                   # _text = _stext
    etext: int                  # _etext
    rodata: int                 # __start_rodata
    end_rodata: int             # __end_rodata
    sdata: int                  # _sdata
    edata: int                  # _edata
    init_begin: int
    init_end: int
    smp_locks: int              # __smp_locks
    smp_locks_end: int
    bss_start: int
    bss_stop: int               # = __end_of_kernel_reserve
    brk_start: int
    brk_end: int                # _brk_end: what reserve_brk() keeps
    sizes: dict[str, int]

    @classmethod
    def from_config(cls, kernel: KernelConfig) -> "KernelImage":
        """The layout of a KernelConfig's image."""
        s = kernel.image
        text = kernel.load_address
        rodata = text + _page_align(s["code"])
        sdata = rodata + _page_align(s["rodata"])
        end = text + s["reserved"]
        bss_start = end - _page_align(s["bss"])
        smp_locks = bss_start - _page_align(s["smp_locks"])
        init_begin = smp_locks - _page_align(s["init"])
        return cls(text=text, etext=text + s["code"], rodata=rodata,
                   end_rodata=rodata + s["rodata"], sdata=sdata, edata=sdata + s["rwdata"],
                   init_begin=init_begin, init_end=smp_locks, smp_locks=smp_locks,
                   smp_locks_end=bss_start, bss_start=bss_start, bss_stop=end,
                   brk_start=end, brk_end=end + s["brk"], sizes=dict(s))

    @property
    def end_of_kernel_reserve(self) -> int:
        return self.bss_stop

    def virt(self, phys: int) -> int:
        """The image's virtual address of a physical one (PAGE_OFFSET + phys)."""
        return PAGE_OFFSET + phys

    def check(self) -> list[str]:
        """Problems with the layout, as strings (empty when it holds together)."""
        s, out = self.sizes, []
        if self.init_begin < self.sdata + s["rwdata"]:
            need = minimal_reserve(s)
            out.append(f"reserved {s['reserved'] // KiB}K is too small for the sections "
                       f"(code, rodata, rwdata, init, smp_locks, bss, each page aligned, "
                       f"need {need // KiB}K)")
        return out


def command_line(kernel: KernelConfig, options: Iterable[str] = ()) -> str:
    """The kernel command line: the config's, then the boot options its keys imply."""
    return " ".join([kernel.cmdline] + [o for o in options if o])


def unknown_params(cmdline: str) -> list[str]:
    """The words of a command line the kernel hands to init unparsed (print_unknown_bootoptions)."""
    out = []
    for word in cmdline.split():
        name = word.split("=", 1)[0]
        if name not in KNOWN_PARAMS and "." not in name:
            out.append(word)
    return out
