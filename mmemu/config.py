"""Machine configs: the YAML description of an emulated PC's memory.

A config says what RAM the firmware hands over (an e820-style map), how it is
split into NUMA nodes, the boot options Linux would take on its command line
(``highmem=``, ``vmalloc=``, ``min_free_kbytes``), the page size of the direct
map, and the devices on the bus.  Everything the kernel would derive is left
to mmemu.layout; a config that gives only RAM gets Linux's defaults.

``load_config("pc-1g")`` reads ``<repo>/configs/pc-1g.yaml``; anything with a
``/`` or a ``.yaml``/``.yml`` ending is a path.  The schema (every key but
``memory`` is optional; sizes are ints or strings like ``4K``, ``1M``, ``0x10M``
taken as memparse() takes them, KiB-based)::

    name: pc-1g                  # default: the file name
    description: text
    memory:
      size: 1G                   # QEMU pc's e820 for this much RAM (< 3.5 GiB), or:
      ram: [{start: 0, end: 0x9fc00}, {start: 1M, size: 255M}]   # e820 usable
      reserved: [{start: 0x9fc00, end: 0xa0000}]                 # e820 reserved
    nodes:                       # default: node 0 holds all RAM
      - {id: 0, ram: [{start: 0, end: 512M}], distance: [10, 20]}
    zones: {dma_limit: 16M, highmem: 128M}   # highmem= (HighMem size)
    vmalloc: 128M                # vmalloc=: the vmalloc area's size
    direct_map: 4M               # 4M (PSE where Linux uses it) or 4K
    min_free_kbytes: 2830        # the sysctl (kB)
    kernelcore: 50%              # kernelcore= / movablecore= (size or percent):
    movablecore: 64M             #   ZONE_MOVABLE from the top of the highest zone
    kernel:                      # the kernel booted (mmemu/kernel/image.py); defaults:
      load_address: 16M          #   the reference 686 kernel's, guest programs in its
      image: {code: 9327K, rodata: 3188K, rwdata: 1246K, init: 912K, bss: 464K}
      initrd: 1044K              #   sections; initrd 0 for none
      cmdline: console=ttyS0 nokaslr quiet panic=-1
    transparent_hugepage: always # always, madvise or never (raises min_free_kbytes)
    devices:                     # extra keys go to DeviceConfig.options
      - {name: uart0, model: uart16550, base: 0xfe000000, size: 4K}
    host:                        # ranges an embedding program keeps (page aligned):
      - {start: 0x30000, size: 64K, name: gdt}   # memblock-reserved, never mapped by mmemu
    debug: {vm: true, slub: FZPU, panic_on_warn: false}
    pae: false                   # true: the 686-pae kernel (PAE tables, NX, RAM to 64 GiB)

Ranges are ``{start, end}`` (end exclusive) or ``{start, size}``.  ``vmalloc``
is the argument of Linux's ``vmalloc=``, so MachineConfig.vmalloc holds
__VMALLOC_RESERVE = vmalloc + VMALLOC_OFFSET (8 MiB), exactly as
arch/x86/mm/pgtable_32.c:parse_vmalloc() sets it; without the key it is
Linux's default reserve, 128 MiB (a 120 MiB vmalloc area).

Every mistake raises ConfigError(path, keypath, message).  The records a
config becomes (MachineConfig, ...), sizes, QEMU pc's e820 map, parsing and
the checks that need only the file live in mmemu.config_schema (re-exported
here); the checks that need the kernel's layout (zone spans, MAXMEM) are
check_layout() below.
"""
from pathlib import Path
from typing import Optional, Union

from mmemu.config_schema import (  # noqa: F401  (re-exported: what a config is)
    DEFAULT_VMALLOC_RESERVE, DEVICE_MODELS, FOUR_GIB, GiB, KiB, LOCAL_DISTANCE, MIN_VMALLOC,
    MiB, PAGE_SIZE_4K, QEMU_PC_MAX_BELOW_4G, QEMU_PC_TOP_RESERVED, SIZE_HINT,
    DeviceConfig, HostRange, MachineConfig, NodeConfig, Range, close_match, cmdline_parse_core,
    did_you_mean, e820_table, format_size, is_qemu_pc, memparse, parse_config_file,
    qemu_pc_e820,
)
from mmemu.config_schema import (  # noqa: F401  (re-exported: the kernel flavours)
    DEFAULT_KERNEL, KERNEL_ENV, KERNEL_FLAVOURS, PAE_MAX_PHYS,
    default_kernel, qemu_pc_ram_size,
)
from mmemu.errors import ConfigError
from mmemu.flavour import flavour_of
from mmemu.layout import (  # noqa: F401  (VMALLOC_OFFSET re-exported)
    PAGE_OFFSET, PAGE_SHIFT, VMALLOC_OFFSET, ZONE_HIGHMEM, ZONE_NAMES, Layout,
    compute_layout, memblock_memory,
)

__all__ = [
    # re-exported from config_schema: what a config is, and reading one
    "DEFAULT_VMALLOC_RESERVE", "DEVICE_MODELS", "FOUR_GIB", "GiB", "KiB", "LOCAL_DISTANCE",
    "MIN_VMALLOC", "MiB", "PAGE_SIZE_4K", "QEMU_PC_MAX_BELOW_4G",
    "QEMU_PC_TOP_RESERVED", "SIZE_HINT", "DeviceConfig", "HostRange", "MachineConfig",
    "NodeConfig", "Range", "close_match", "cmdline_parse_core", "did_you_mean", "e820_table",
    "format_size", "is_qemu_pc", "memparse", "parse_config_file", "qemu_pc_e820",
    "qemu_pc_ram_size", "DEFAULT_KERNEL", "KERNEL_ENV", "KERNEL_FLAVOURS", "PAE_MAX_PHYS",
    "default_kernel",
    # re-exported from layout
    "VMALLOC_OFFSET",
    # this module's
    "DEFAULT_CONFIG", "CONFIG_SUFFIXES", "MIN_LOWMEM", "MAX_ORDER_NR_PAGES", "configs_dir",
    "list_configs", "resolve_config_path", "load_config", "check_layout", "boot_warnings",
    "core_option_pages", "movablecore_rounded",
]

# ---------------------------------------------------------------------------
# Names

DEFAULT_CONFIG = "pc-1g"
CONFIG_SUFFIXES = (".yaml", ".yml")
MIN_LOWMEM = 64 * MiB                  # find_low_pfn_range()'s floor for lowmem
MAX_ORDER_NR_PAGES = 1024              # ZONE_MOVABLE starts on a 4 MiB block


def configs_dir() -> Path:
    """The shipped configs folder: <repo>/configs, beside the mmemu package."""
    return Path(__file__).resolve().parent.parent / "configs"


def list_configs() -> list[str]:
    """Names of the shipped configs, sorted (``pc-1g``, ``qemu-pc-1g``, ...)."""
    folder = configs_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in CONFIG_SUFFIXES)


# ---------------------------------------------------------------------------
# Loading

def resolve_config_path(name_or_path: Union[str, Path]) -> Path:
    """The file a config name stands for: a shipped name or a path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(CONFIG_SUFFIXES):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(path, None, "no such config file")
        return path
    path = configs_dir() / f"{text}.yaml"
    if not path.is_file():
        shipped = list_configs()
        raise ConfigError(text[:60], None, f"no shipped config named '{text[:60]}'"
                          f"{did_you_mean(text, shipped)}; shipped: {', '.join(shipped)}")
    return path


def load_config(name_or_path: Union[str, Path] = DEFAULT_CONFIG) -> MachineConfig:
    """Read, parse and check a machine config; returns a MachineConfig.

    name_or_path is a shipped name (``pc-1g``) or a path to a YAML file.
    Raises ConfigError naming the file, the key path and the fault.
    """
    cfg = parse_config_file(resolve_config_path(name_or_path))
    check_layout(cfg)
    return cfg


# ---------------------------------------------------------------------------
# Checks that need the kernel's layout

def check_layout(cfg: MachineConfig) -> Layout:
    """Refuse what Linux would only warn about once it has split RAM into zones.

    Models the complaints of arch/x86/mm/init_32.c:find_low_pfn_range()
    (highmem= too big or leaving under 64 MiB of lowmem) and the limits on
    vmalloc= and movablecore=.  Returns the Layout; raises ConfigError.
    """
    _check_4gib_boundary(cfg)
    if not memblock_memory(cfg, flavour_of(cfg).pae):
        raise ConfigError(cfg.path, "memory.ram", "no whole usable page frame outside "
                          "page 0 and the BIOS hole [0xa0000, 0x100000)")
    vmalloc_end = flavour_of(cfg).vmalloc_end
    maxmem = vmalloc_end - PAGE_OFFSET - cfg.vmalloc
    if maxmem < MIN_LOWMEM:
        largest = vmalloc_end - PAGE_OFFSET - MIN_LOWMEM - VMALLOC_OFFSET
        raise ConfigError(cfg.path, "vmalloc", f"a {format_size(cfg.vmalloc - VMALLOC_OFFSET)} "
                          f"vmalloc area leaves only {maxmem >> 20} MiB for lowmem (MAXMEM); "
                          f"at most {largest >> 20} MiB keeps {MIN_LOWMEM >> 20} MiB")
    max_pfn = max(end for _, _, end in memblock_memory(cfg, flavour_of(cfg).pae))
    _check_highmem(cfg, max_pfn << PAGE_SHIFT, maxmem)
    layout = compute_layout(cfg)
    lowmem_end = layout.max_low_pfn << PAGE_SHIFT
    if layout.max_pfn > layout.max_low_pfn:     # else ZONE_DMA may end past RAM
        _check_below_lowmem(cfg, "zones.dma_limit", "ZONE_DMA's end", cfg.dma_limit,
                            lowmem_end)
    _check_kernel(cfg, lowmem_end)
    _check_min_free_kbytes(cfg, layout)
    _check_core_options(cfg, layout)
    return layout


def _check_4gib_boundary(cfg: MachineConfig) -> None:
    """A RAM range that starts below 4 GiB and ends at or above it is lost
    whole on the 686 kernel: e820__memblock_setup() skips an entry whose end
    does not fit its 32-bit phys_addr_t.  Such a config is refused, since the
    machine it would boot is not the one it describes (RAM wholly above 4 GiB
    stays accepted and unused, as QEMU's pc map puts it there)."""
    if flavour_of(cfg).pae:
        return
    for r in sorted(cfg.ram, key=lambda r: r.start):
        if r.start < FOUR_GIB <= r.end:
            raise ConfigError(cfg.path, "memory.ram", f"[{r.start:#x}, {r.end:#x}) ends at or "
                              "beyond 4 GiB: the 686 kernel (32-bit phys_addr_t) skips such a "
                              "range whole, as e820__memblock_setup() does; end it below "
                              f"{FOUR_GIB:#x}")


def _check_highmem(cfg: MachineConfig, ram_end: int, maxmem: int) -> None:
    """highmem= must leave lowmem its 64 MiB and be less than all of RAM.

    Models lowmem_pfn_init()'s two complaints, and refuses a highmem= of all
    RAM or more whatever the machine.  A highmem= below that but larger than
    the RAM above MAXMEM is not refused: Linux ignores it with a warning (see
    boot_warnings()), and configs describing such a boot must still load.
    """
    if cfg.highmem is None:
        return
    key, asked = "zones.highmem", format_size(cfg.highmem)
    if cfg.highmem >= ram_end:
        raise ConfigError(cfg.path, key, f"highmem {asked} is not less than the RAM "
                          f"(it ends at {ram_end:#x}); no lowmem would be left")
    if ram_end <= maxmem and ram_end - cfg.highmem < MIN_LOWMEM:
        raise ConfigError(cfg.path, key, f"highmem {asked} leaves "
                          f"{(ram_end - cfg.highmem) >> 20} MiB of lowmem; "
                          f"Linux needs at least {MIN_LOWMEM >> 20} MiB")


def boot_warnings(cfg: MachineConfig) -> list[str]:
    """The warnings Linux 6.1 prints for this config's boot options and accepts.

    Models arch/x86/mm/init_32.c:highmem_pfn_init()'s MSG_HIGHMEM_TOO_SMALL:
    a highmem= bigger than the RAM above MAXMEM is ignored.  Returns a list of
    log lines (empty for most configs).
    """
    if cfg.highmem is None:
        return []
    maxmem_pfn = (flavour_of(cfg).vmalloc_end - PAGE_OFFSET - cfg.vmalloc) >> PAGE_SHIFT
    max_pfn = max(end for _, _, end in memblock_memory(cfg, flavour_of(cfg).pae))
    highmem_pages = cfg.highmem >> PAGE_SHIFT
    if max_pfn <= maxmem_pfn or highmem_pages + maxmem_pfn <= max_pfn:
        return []
    return [f"only {(max_pfn - maxmem_pfn) >> 8}MB highmem pages available, "
            f"ignoring highmem size of {highmem_pages >> 8}MB!"]


def _check_kernel(cfg: MachineConfig, lowmem_end: int) -> None:
    """The kernel image, with its .brk, lies in lowmem (the direct map)."""
    from mmemu.kernel.image import KernelImage
    image = KernelImage.from_config(cfg.kernel)
    _check_below_lowmem(cfg, "kernel.image", "the kernel image's end (with .brk)",
                        image.brk_end, lowmem_end)


def _check_below_lowmem(cfg: MachineConfig, key: str, what: str, addr: int,
                        lowmem_end: int) -> None:
    if addr > lowmem_end:
        raise ConfigError(cfg.path, key, f"{what} {addr:#x} is beyond the end of "
                          f"lowmem {lowmem_end:#x}")


def _check_min_free_kbytes(cfg: MachineConfig, layout: Layout) -> None:
    """The sysctl's reserve has to fit in lowmem, where the watermarks live."""
    lowmem_kb = 4 * sum(z.present_pages for z in layout.zones if z.zid < ZONE_HIGHMEM)
    if cfg.min_free_kbytes is not None and cfg.min_free_kbytes >= lowmem_kb:
        raise ConfigError(cfg.path, "min_free_kbytes", f"{cfg.min_free_kbytes} kB is "
                          f"not less than the {lowmem_kb} kB of lowmem")


def core_option_pages(value: Optional[str], totalpages: int) -> int:
    """A kernelcore=/movablecore= value in pages: a size, or a percent of totalpages.

    Models the conversions of mm/page_alloc.c: cmdline_parse_core() (a size
    >> PAGE_SHIFT) and find_zone_movable_pfns_for_nodes() (a percent of
    early_calculate_totalpages(), rounded down).  None gives 0.
    """
    if value is None:
        return 0
    nbytes, percent = cmdline_parse_core(value)
    if percent is not None:
        return totalpages * 100 * percent // 10000
    assert nbytes is not None           # a size, when not a percent
    return nbytes // PAGE_SIZE_4K


def movablecore_rounded(movable_pages: int, totalpages: int) -> int:
    """required_movablecore as Linux uses it: whole MAX_ORDER blocks, at most all of RAM."""
    return min(totalpages, -(-movable_pages // MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES)


def _check_core_options(cfg: MachineConfig, layout: Layout) -> None:
    """kernelcore=/movablecore= must ask for a ZONE_MOVABLE the highest zone can hold.

    Models what mm/page_alloc.c:find_zone_movable_pfns_for_nodes() would
    silently do with them: ZONE_MOVABLE is carved out of movable_zone, the
    highest populated zone, so a request for more is cut short; a kernelcore
    of all RAM or more gives no ZONE_MOVABLE; with both options, kernelcore
    wins when the two do not fit together.  mmemu refuses each of these.
    """
    if cfg.kernelcore is None and cfg.movablecore is None:
        return
    zid = max(z.zid for z in layout.zones if z.present_pages)
    zone = (ZONE_NAMES[zid], sum(z.present_pages for z in layout.zones if z.zid == zid))
    total = sum(z.present_pages for z in layout.zones)
    if cfg.kernelcore is not None and cfg.movablecore is not None:
        _check_core_options_agree(cfg, total)
    if cfg.movablecore is not None:
        _check_movablecore(cfg, zone, total)
    else:
        _check_kernelcore(cfg, zone, total)


def _check_core_options_agree(cfg: MachineConfig, total: int) -> None:
    """Both given: Linux takes max(kernelcore, RAM - movablecore); they must not overlap."""
    kernel = core_option_pages(cfg.kernelcore, total)
    movable = movablecore_rounded(core_option_pages(cfg.movablecore, total), total)
    if kernel + movable > total:
        raise ConfigError(cfg.path, "kernelcore", f"kernelcore and movablecore are both given "
                          f"and disagree: kernelcore {cfg.kernelcore} ({kernel} pages) plus "
                          f"movablecore {cfg.movablecore} ({movable} pages in whole 4 MiB "
                          f"blocks) is more than the {total} pages of RAM, so Linux would keep "
                          f"kernelcore and shrink ZONE_MOVABLE to {max(total - kernel, 0)} "
                          f"pages; give only one, or a kernelcore of at most "
                          f"{total - movable} pages")


def _check_movablecore(cfg: MachineConfig, zone: tuple[str, int], total: int) -> None:
    """movablecore= can only take pages from the highest populated zone."""
    name, zone_pages = zone
    pages = core_option_pages(cfg.movablecore, total)
    if pages > zone_pages:
        raise ConfigError(cfg.path, "movablecore", f"movablecore {cfg.movablecore} "
                          f"({pages} pages) is more than the highest populated zone, "
                          f"{name}, holds ({zone_pages} pages)")


def _check_kernelcore(cfg: MachineConfig, zone: tuple[str, int], total: int) -> None:
    """kernelcore= must leave some RAM, and no more than the highest zone, to ZONE_MOVABLE.

    The pages of the zones below the highest one are kernel memory whatever
    kernelcore says (find_zone_movable_pfns_for_nodes() counts them first).
    """
    name, zone_pages = zone
    pages = core_option_pages(cfg.kernelcore, total)
    if pages >= total:
        raise ConfigError(cfg.path, "kernelcore", f"kernelcore {cfg.kernelcore} ({pages} "
                          f"pages) is not less than the {total} pages of RAM, so there would "
                          f"be no ZONE_MOVABLE (leave it out for none)")
    if total - pages > zone_pages:
        raise ConfigError(cfg.path, "kernelcore", f"kernelcore {cfg.kernelcore} ({pages} "
                          f"pages) leaves {total - pages} pages to ZONE_MOVABLE, more than "
                          f"the highest populated zone, {name}, holds ({zone_pages} pages); "
                          f"the {total - zone_pages} pages below {name} are kernel memory "
                          f"anyway, so kernelcore must be at least that")
