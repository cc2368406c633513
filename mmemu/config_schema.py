"""What a machine config is, and reading a file into one.

The records a config becomes (MachineConfig, Range, NodeConfig,
DeviceConfig), the sizes as the kernel command line writes them (memparse()),
QEMU pc's e820 map, and the parser: YAML text in, a checked MachineConfig
out.  The schema is described in mmemu.config's docstring and at the top of
configs/pc-1g.yaml.  Everything here needs only the file: the keys, the sizes,
the RAM map, the nodes and the devices.  What needs the kernel's layout (zone
spans, MAXMEM) is mmemu.config.check_layout(); mmemu.config re-exports the
names here, so ``from mmemu.config import MachineConfig`` works.

Every fault raises ConfigError(path, keypath, message) with a key path such as
``memory.ram[1].end``; top-level and section keys are strict (a typo gets a
"did you mean"), only a device's own keys are free (they become its options).
"""
import difflib
import reprlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import yaml

from mmemu.errors import ConfigError, clip
from mmemu.kernel.image import IMAGE_KEYS, KernelConfig
from mmemu.layout import VMALLOC_OFFSET

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Range:
    """A physical range [start, end), as e820 and memblock keep them."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    def overlaps(self, other: "Range") -> bool:
        return self.start < other.end and other.start < self.end


@dataclass
class NodeConfig:
    """One NUMA node: its id, its RAM, and its distance to every node."""

    nid: int
    ram: list[Range]
    distance: Optional[list[int]] = None


@dataclass
class DeviceConfig:
    """A device on the bus: a model name and an MMIO window.

    ``options`` holds the model's own keys (a framebuffer's width, ...).
    """

    name: str
    model: str
    base: int
    size: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostRange:
    """A physical range the host program keeps for itself (embedding): mmemu
    memblock-reserves the part inside RAM, and never maps, hands out or
    ioremaps any of it.  key is the config key that named it."""

    start: int
    end: int
    name: str
    key: str = "host"

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class MachineConfig:
    """A whole machine as the config file describes it (sizes in bytes)."""

    name: str
    path: str
    ram: list[Range]               # e820 "usable", sorted
    reserved: list[Range]          # e820 "reserved", sorted
    nodes: list[NodeConfig]        # by nid
    description: str = ""
    dma_limit: int = 16 * MiB      # end of ZONE_DMA (MAX_DMA_ADDRESS)
    highmem: Optional[int] = None  # like highmem=: HighMem size; None = Linux's split
    vmalloc: int = 128 * MiB       # like vmalloc=: __VMALLOC_RESERVE
    direct_map: str = "4M"         # "4M": PSE pages where Linux uses them; "4K": PTEs only
    min_free_kbytes: Optional[int] = None   # like the sysctl; None = int_sqrt(lowmem_kbytes * 16)
    kernelcore: Optional[str] = None   # like kernelcore= (size or percent); ZONE_MOVABLE
    movablecore: Optional[str] = None  # like movablecore=
    kernel: KernelConfig = field(default_factory=KernelConfig)   # image, initrd, cmdline
    transparent_hugepage: str = "always"   # CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS
    devices: list[DeviceConfig] = field(default_factory=list)
    host: list[HostRange] = field(default_factory=list)   # the embedding program's, by start
    debug_vm: bool = False         # CONFIG_DEBUG_VM-style checking at every hypercall
    slub_debug: Optional[str] = None   # like slub_debug= ("FZPU", "FZ,kmalloc-64", ...)
    panic_on_warn: bool = False
    pae: bool = False              # the 686-pae flavour (CONFIG_X86_PAE, HIGHMEM64G)


# ---------------------------------------------------------------------------
# Registries and limits

# Device models a config may name.  A set, and consulted only when a config is
# checked, so that code registering its own models (DEVICE_MODELS.add("mydev"))
# before load_config() is honoured.
DEVICE_MODELS = {"uart16550", "framebuffer", "regs"}

PAGE_SIZE_4K = 4 * KiB
FOUR_GIB = 4 * GiB
LOCAL_DISTANCE = 10                    # include/linux/topology.h
DEFAULT_VMALLOC_RESERVE = 128 * MiB    # __VMALLOC_RESERVE without vmalloc=
MIN_VMALLOC = 16 * MiB                 # smallest vmalloc area a config may ask for
QEMU_PC_MAX_BELOW_4G = 0xE0000000      # QEMU pc splits RAM at and above 3.5 GiB
QEMU_PC_BELOW_4G_SPLIT = 0xC0000000    # ... keeping 3 GiB below 4 GiB (gigabyte_align)
QEMU_PC_MAX_RAM = 64 * GiB             # the most a config may describe
QEMU_PC_TOP_RESERVED = 128 * KiB       # the BIOS keeps the last 128 KiB of RAM
PAE_MAX_PHYS = 64 * GiB                # max_arch_pfn of a HIGHMEM64G kernel (MAX_PHYSMEM_BITS 36)

# The kernel flavour a config boots when it does not say (no `pae:` key):
# MMEMU_KERNEL in the environment ("686" or "686-pae"), else DEFAULT_KERNEL:
# 686-pae, the kernel Debian's installer picks on any i386 processor with
# PAE (686 only where PAE is missing), so the one most i386 Debian systems
# run; measured, it also runs guest code faster (NX keeps Unicorn's stores
# to data pages on its fast path: README, "Kernel flavours").
KERNEL_FLAVOURS = ("686", "686-pae")
DEFAULT_KERNEL = "686-pae"
KERNEL_ENV = "MMEMU_KERNEL"


def default_kernel() -> str:
    """The flavour of configs without a `pae:` key: $MMEMU_KERNEL, else DEFAULT_KERNEL.

    Raises ConfigError for a value that names no flavour.
    """
    import os
    value = os.environ.get(KERNEL_ENV, "").strip() or DEFAULT_KERNEL
    if value not in KERNEL_FLAVOURS:
        raise ConfigError(f"${KERNEL_ENV}", None, f"'{value}' is not a kernel flavour "
                          f"(one of: {', '.join(KERNEL_FLAVOURS)})"
                          f"{did_you_mean(value, KERNEL_FLAVOURS)}")
    return value


def close_match(word: object, choices: Iterable[str]) -> Optional[str]:
    """The one choice that looks like a typo of word, or None."""
    word = str(word)
    if len(word) > 64:                 # no name is that long; and difflib is quadratic
        return None
    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for a close match, else ""."""
    match = close_match(word, choices)
    return f" (did you mean '{match}'?)" if match else ""


# ---------------------------------------------------------------------------
# Sizes, as the kernel command line writes them

_SIZE_RE = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)\s*([kKmMgG]?)")
_SUFFIX_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30}
SIZE_HINT = "a size is a number (decimal or 0x hex) with an optional K, M or G suffix"


def memparse(value: object) -> int:
    """Turn a size (int, or a string like ``4K``, ``0x10M``, ``1G``) into bytes.

    Models lib/cmdline.c:memparse(); differs: the whole string must be a size,
    a leading 0 is decimal (not octal), and only K, M and G are suffixes.
    Raises ValueError with a message for the user.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{_repr(value)} is not a size; {SIZE_HINT}")
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE_RE.fullmatch(value.strip())
        if match is None:
            if value.strip().startswith("-"):
                raise ValueError(f"size {_repr(value)} is negative")
            raise ValueError(f"{_repr(value)} is not a size; {SIZE_HINT}")
        digits = match.group(1)
        number = int(digits, 16 if digits[:2] in ("0x", "0X") else 10)
        number <<= _SUFFIX_SHIFT[match.group(2).lower()]
    if number < 0:
        raise ValueError(f"size {_repr(value)} is negative")
    return number


def format_size(nbytes: int) -> str:
    """Write a byte count the way a config would: ``128M``, ``4K``, ``0x9fc00``."""
    for suffix, shift in (("G", 30), ("M", 20), ("K", 10)):
        if nbytes and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{suffix}"
    return hex(nbytes) if nbytes >= 1024 else str(nbytes)


def cmdline_parse_core(value: object) -> tuple[Optional[int], Optional[int]]:
    """Parse a kernelcore=/movablecore= value: returns (bytes, None) or (None, percent).

    Models mm/page_alloc.c:cmdline_parse_core(): a memparse() size, or a whole
    number of percent from 0 to 100 ending in ``%``.  Raises ValueError.
    """
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        if not number.isdigit():
            raise ValueError(f"{_repr(value)} is not a percentage (a whole number 0-100 then %)")
        if int(number) > 100:
            raise ValueError(f"{_repr(value)} is more than 100%")
        return None, int(number)
    try:
        return memparse(value), None
    except ValueError as exc:
        raise ValueError(f"{exc}, or a percentage like 50%") from None

# ---------------------------------------------------------------------------
# e820 maps and QEMU's pc machine

def qemu_pc_e820(size: int) -> list[tuple[Range, str]]:
    """The e820 map QEMU's pc machine (SeaBIOS) hands over for ``-m size``.

    Returns [(Range, "usable"|"reserved"), ...] by address, as the BIOS-e820
    lines print it.  From 3.5 GiB up QEMU keeps 3 GiB below 4 GiB and puts
    the rest at 4 GiB (as `-m 8G` does: usable up to 0x23fffffff); the 686
    kernel lists it and leaves it unused, the 686-pae kernel uses it.
    Raises ValueError for sizes the shape does not hold.
    """
    if size % PAGE_SIZE_4K or size <= MiB + QEMU_PC_TOP_RESERVED:
        raise ValueError(f"QEMU pc RAM size {format_size(size)} must be page aligned "
                         f"and more than {format_size(MiB + QEMU_PC_TOP_RESERVED)}")
    if size > QEMU_PC_MAX_RAM:
        raise ValueError(f"QEMU pc RAM size {format_size(size)} is more than "
                         f"{format_size(QEMU_PC_MAX_RAM)}")
    below = QEMU_PC_BELOW_4G_SPLIT if size >= QEMU_PC_MAX_BELOW_4G else size
    top = below - QEMU_PC_TOP_RESERVED
    above = [(Range(FOUR_GIB, FOUR_GIB + size - below), "usable")] if size > below else []
    return [
        (Range(0, 0x9FC00), "usable"),
        (Range(0x9FC00, 0xA0000), "reserved"),        # EBDA
        (Range(0xF0000, 0x100000), "reserved"),       # BIOS ROM
        (Range(0x100000, top), "usable"),
        (Range(top, below), "reserved"),              # SeaBIOS tables
        (Range(0xFFFC0000, FOUR_GIB), "reserved"),    # BIOS flash
    ] + above


def qemu_pc_ram_size(cfg: MachineConfig) -> int:
    """The -m size a QEMU pc RAM map stands for: below 4 GiB with the BIOS's
    last 128 KiB, plus what lies above 4 GiB."""
    below = [r for r in cfg.ram if r.end <= FOUR_GIB]
    above = sum(r.size for r in cfg.ram if r.start >= FOUR_GIB)
    return max(r.end for r in below) + QEMU_PC_TOP_RESERVED + above


def e820_table(cfg: MachineConfig) -> list[tuple[Range, str]]:
    """A config's RAM map in qemu_pc_e820()'s form: [(Range, kind), ...] by address."""
    table = [(r, "usable") for r in cfg.ram] + [(r, "reserved") for r in cfg.reserved]
    return sorted(table, key=lambda entry: (entry[0].start, entry[0].end))


def is_qemu_pc(cfg: MachineConfig) -> tuple[bool, str]:
    """Whether cfg's RAM map is exactly QEMU pc's for its RAM size.

    Returns (True, "QEMU pc, -m 1G") or (False, the first difference).  The
    size is read off the map: the end of the last usable range plus the
    128 KiB the BIOS keeps.
    """
    if not cfg.ram:
        return False, "no usable RAM"
    if not any(r.end <= FOUR_GIB for r in cfg.ram):
        return False, "no usable RAM below 4 GiB"
    size = qemu_pc_ram_size(cfg)
    try:
        want = qemu_pc_e820(size)
    except ValueError as exc:
        return False, str(exc)
    have = e820_table(cfg)
    for i, (mine, theirs) in enumerate(zip(have, want)):
        if mine != theirs:
            return False, (f"e820 entry {i} is {_describe_e820(mine)} where QEMU pc "
                           f"-m {format_size(size)} has {_describe_e820(theirs)}")
    if len(have) != len(want):
        extra = have[len(want)] if len(have) > len(want) else want[len(have)]
        side = "extra" if len(have) > len(want) else "missing"
        return False, f"{side} e820 entry {_describe_e820(extra)}"
    return True, f"QEMU pc, -m {format_size(size)}"


def _describe_e820(entry: tuple[Range, str]) -> str:
    rng, kind = entry
    return f"[{rng.start:#x}, {rng.end:#x}) {kind}"


# ---------------------------------------------------------------------------
# The file

TOP_KEYS = ("name", "description", "memory", "nodes", "zones", "vmalloc", "direct_map",
            "min_free_kbytes", "kernelcore", "movablecore", "kernel", "transparent_hugepage",
            "devices", "host", "debug", "pae")
KERNEL_KEYS = ("load_address", "image", "initrd", "cmdline")
THP_MODES = ("always", "madvise", "never")
MEMORY_KEYS = ("size", "ram", "reserved")
RANGE_KEYS = ("start", "end", "size")
NODE_KEYS = ("id", "ram", "distance")
ZONES_KEYS = ("dma_limit", "highmem")
DEVICE_KEYS = ("name", "model", "base", "size")      # any other key is an option
HOST_KEYS = ("start", "end", "size", "name")
DEBUG_KEYS = ("vm", "slub", "panic_on_warn")
DIRECT_MAP_SIZES = {4 * MiB: "4M", 4 * KiB: "4K"}
SLUB_DEBUG_FLAGS = "fzputao-"                       # mm/slub.c:parse_slub_debug_flags()
SLUB_DEBUG_DEFAULT = "FZPU"                         # bare slub_debug: DEBUG_DEFAULT_FLAGS
REMOTE_DISTANCE = 20
MAX_DISTANCE = 255                                  # distances are u8

# Bounds on what a file may ask for, checked before anything is built from it.
MAX_CONFIG_BYTES = 64 * KiB            # the shipped ones are 1-5 KiB; PyYAML parses ~100 KB/s
E820_MAX_ENTRIES = 128                 # E820_MAX_ENTRIES_ZEROPAGE: what boot_params can carry
NODES_SHIFT = 3                        # arch/x86/Kconfig's default for X86_32 with CONFIG_NUMA
MAX_NUMNODES = 1 << NODES_SHIFT
REPR_LIMIT = 60                        # characters of a user's value an error message repeats


class Entry(NamedTuple):
    """A range as the file gave it: its key path, and the key that set its end."""

    range: Range
    key: str
    end_key: str


class _AliasRefused(yaml.composer.ComposerError):
    """An alias in a config: not a syntax error, a refusal."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping, and aliases.

    PyYAML silently keeps the last of two equal keys, which would hide a
    mistake such as a second ``vmalloc:`` further down the file.  An alias
    (``*name``, and the ``<<: *name`` merge key) is refused where it is
    read: nested aliases expand exponentially (a "billion laughs" file of a
    few hundred bytes becomes gigabytes), and no config needs them.
    """

    def compose_node(self, parent: Optional[yaml.Node], index: int) -> Optional[yaml.Node]:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()   # type: ignore[no-untyped-call]  # untyped in the stubs
            raise _AliasRefused(None, None, f"YAML alias *{_clip(event.anchor, 20)}: aliases "
                                "are not allowed in a config; write the value out",
                                event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue               # unhashable; SafeConstructor reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key '{_clip(key, 40)}'", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def parse_config_file(path: Union[str, Path]) -> MachineConfig:
    """Read one config file and build its MachineConfig (no layout checks)."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(path, None, f"{size} bytes is not a config (at most "
                              f"{MAX_CONFIG_BYTES >> 10} KiB of YAML)")
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, None, "not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read it: {exc.strerror}") from None
    return parse_config_data(path, load_yaml(path, text))


def load_yaml(path: object, text: str) -> Any:
    """Parse YAML text; a syntax error becomes a ConfigError with its line number."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "refused" if isinstance(exc, _AliasRefused) else "YAML syntax error"
        raise ConfigError(path, None, f"{what}{where}: "
                          f"{_one_line(exc.problem or exc.context)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"YAML syntax error: {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(path, None, "YAML nested too deeply") from None


def parse_config_data(path: Union[str, Path], data: Any) -> MachineConfig:
    """Build a MachineConfig from the parsed YAML of the file at path."""
    r = _Reader(path)
    if data is None:
        raise r.error(None, "the file is empty; a config needs at least a memory section")
    r.mapping(data, None, what="the top level")
    if "kernel_image" in data:
        raise r.error("kernel_image", "replaced by the kernel section: guest programs live in "
                      "the kernel image's sections (kernel: {image: {code: ..., rwdata: ...}})")
    r.keys(data, None, TOP_KEYS, required=("memory",))
    pae = r.boolean(data["pae"], "pae") if "pae" in data else default_kernel() == "686-pae"
    ram, reserved = _parse_memory(r, data["memory"], pae)
    cfg = MachineConfig(
        name=_parse_name(r, data, path), path=str(path),
        ram=_sorted(e.range for e in ram), reserved=_sorted(e.range for e in reserved),
        nodes=_parse_nodes(r, data.get("nodes"), ram),
        description=r.string(data.get("description", ""), "description", empty=True),
        pae=pae)
    _parse_zones(r, data.get("zones", {}), cfg)
    _parse_boot_options(r, data, cfg)
    cfg.kernel = _parse_kernel(r, data.get("kernel", {}), ram, pae)
    cfg.transparent_hugepage = _parse_thp(r, data.get("transparent_hugepage", "always"))
    cfg.devices = _parse_devices(r, data.get("devices", []), ram, reserved)
    cfg.host = _parse_host(r, data.get("host", []), cfg)
    _parse_debug(r, data.get("debug", {}), cfg)
    return cfg


class _Reader:
    """Typed reads of one file's values that fail with the file's name and key path."""

    def __init__(self, path: object) -> None:
        self.path = str(path)

    def error(self, key: Optional[str], message: str) -> ConfigError:
        return ConfigError(self.path, key, message)

    def mapping(self, value: object, key: Optional[str],
                what: Optional[str] = None) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"{what or 'this'} must be a mapping "
                             f"(key: value lines), not {_kind(value)}")
        return value

    def sequence(self, value: object, key: str, empty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        if not value and not empty:
            raise self.error(key, "must not be an empty list")
        return value

    def keys(self, mapping: Mapping[Any, Any], key: Optional[str], allowed: Sequence[str],
             required: Sequence[str] = ()) -> None:
        """Strict keys: each must be allowed (with a "did you mean"), required ones present."""
        for name in mapping:
            if name not in allowed:
                raise self.error(_join(key, name), f"unknown key '{_clip(name, 40)}'"
                                 f"{did_you_mean(name, allowed)}")
        for name in required:
            if name not in mapping:
                raise self.error(_join(key, name), f"missing required key '{name}'")

    def size(self, value: object, key: str, zero: bool = False, aligned: bool = False) -> int:
        """A memparse() size in bytes; zero only where allowed, page aligned where asked."""
        try:
            nbytes = memparse(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if nbytes == 0 and not zero:
            raise self.error(key, "must not be zero")
        if aligned and nbytes % PAGE_SIZE_4K:
            raise self.error(key, f"{nbytes:#x} is not page aligned (a multiple of 4K)")
        return nbytes

    def integer(self, value: object, key: str, minimum: int = 0,
                what: str = "a whole number") -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be {what}, not {_kind(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return value

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def string(self, value: object, key: str, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {_kind(value)}")
        if not value.strip() and not empty:
            raise self.error(key, "must not be empty")
        return value


def _join(key: Optional[str], name: object) -> str:
    return f"{key}.{name}" if key else _clip(name, 40)


def _clip(value: object, limit: int = REPR_LIMIT) -> str:
    return clip(value, limit)


def _one_line(text: object) -> str:
    return _clip(" ".join(str(text).split()), 160)


def _repr(value: object, limit: int = REPR_LIMIT) -> str:
    """repr(value) of a user's value, bounded: built by reprlib, so a huge
    list or string is never turned into text whole."""
    return _clip(_REPR.repr(value), limit)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = REPR_LIMIT
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxlevel = 2


def _kind(value: object) -> str:
    """How a YAML value looks to the user, for "must be X, not Y" messages."""
    if value is None:
        return "empty (null)"
    names = {bool: "a boolean", int: "a number", float: "a decimal number",
             str: "a string", list: "a list", dict: "a mapping"}
    return f"{names.get(type(value), type(value).__name__)} ({_repr(value)})"


def _sorted(ranges: Iterable[Range]) -> list[Range]:
    return sorted(ranges, key=lambda rng: (rng.start, rng.end))


def _span(rng: Range) -> str:
    return f"[{rng.start:#x}, {rng.end:#x})"


def _parse_name(r: _Reader, data: dict[Any, Any], path: Union[str, Path]) -> str:
    if "name" not in data:
        return Path(path).stem
    return r.string(data["name"], "name")


# ---------------------------------------------------------------------------
# The RAM map

def _parse_memory(r: _Reader, value: object,
                  pae: bool = False) -> tuple[list[Entry], list[Entry]]:
    """memory: QEMU pc's map for a size, or explicit e820 usable/reserved lists."""
    mem = r.mapping(value, "memory")
    r.keys(mem, "memory", MEMORY_KEYS)
    if "size" in mem:
        ram, reserved = _qemu_pc_memory(r, mem)
    elif "ram" in mem:
        ram = _parse_ranges(r, mem["ram"], "memory.ram")
        reserved = _parse_ranges(r, mem.get("reserved", []), "memory.reserved", empty=True)
    else:
        raise r.error("memory", "needs either size (QEMU pc's e820 for that much RAM) "
                      "or ram (a list of e820 usable ranges)")
    _check_ram_map(r, ram, reserved, pae)
    return ram, reserved


def _qemu_pc_memory(r: _Reader, mem: dict[Any, Any]) -> tuple[list[Entry], list[Entry]]:
    """memory.size: QEMU pc's e820 map (see mmemu.config.qemu_pc_e820)."""
    if "ram" in mem or "reserved" in mem:
        raise r.error("memory.size", "give either memory.size (QEMU pc's whole e820 "
                      "map) or memory.ram and memory.reserved, not both")
    size = r.size(mem["size"], "memory.size", aligned=True)
    try:
        table = qemu_pc_e820(size)
    except ValueError as exc:
        raise r.error("memory.size", str(exc)) from None
    ram = [Entry(rng, "memory.size", "memory.size") for rng, kind in table if kind == "usable"]
    reserved = [Entry(rng, "memory.size", "memory.size")
                for rng, kind in table if kind == "reserved"]
    return ram, reserved


def _parse_ranges(r: _Reader, value: object, key: str, empty: bool = False,
                  aligned: bool = False) -> list[Entry]:
    """A list of {start, end} / {start, size} ranges, as Entries."""
    items = r.sequence(value, key, empty=empty)
    if len(items) > E820_MAX_ENTRIES:
        raise r.error(key, f"{len(items)} ranges; an e820 map holds at most "
                      f"{E820_MAX_ENTRIES} (E820_MAX_ENTRIES_ZEROPAGE)")
    return [_parse_range(r, item, f"{key}[{i}]", aligned) for i, item in enumerate(items)]


def _parse_range(r: _Reader, value: object, key: str, aligned: bool) -> Entry:
    """One physical range [start, end): {start, end} or {start, size}."""
    item = r.mapping(value, key)
    r.keys(item, key, RANGE_KEYS, required=("start",))
    if ("end" in item) == ("size" in item):
        raise r.error(key, "give exactly one of end (exclusive) and size")
    start = r.size(item["start"], f"{key}.start", zero=True, aligned=aligned)
    if "size" in item:
        end_key = f"{key}.size"
        end = start + r.size(item["size"], end_key, aligned=aligned)
    else:
        end_key = f"{key}.end"
        end = r.size(item["end"], end_key, zero=True, aligned=aligned)
        if end <= start:
            raise r.error(end_key, f"end {end:#x} is not above start {start:#x}")
    return Entry(Range(start, end), key, end_key)


def _check_ram_map(r: _Reader, ram: list[Entry], reserved: list[Entry], pae: bool = False) -> None:
    """RAM some of it below 4 GiB, no two ranges over the same bytes, RAM apart
    from reserved.  RAM at or above 4 GiB is accepted: the 686-pae kernel
    uses it up to 64 GiB; the 686 kernel lists it and leaves it unused (a
    range that crosses 4 GiB as well, whole), as e820__memblock_setup() does
    with what a 32-bit phys_addr_t cannot hold."""
    for e in ram:
        if e.range.end > QEMU_PC_MAX_RAM:
            raise r.error(e.end_key, f"{_span(e.range)} is beyond "
                          f"{format_size(QEMU_PC_MAX_RAM)}")
    if not any(e.range.end < FOUR_GIB for e in ram):
        raise r.error("memory", "no usable RAM below 4 GiB (the kernel's lowmem is there)")
    limit = QEMU_PC_MAX_RAM if pae else FOUR_GIB
    for e in reserved:
        if e.range.end > limit:
            raise r.error(e.end_key, f"{_span(e.range)} is beyond the "
                          f"{limit >> 30} GiB physical address space"
                          + ("" if pae else " (no PAE)"))
    _check_no_overlap(r, ram, "RAM")
    for res in reserved:
        for e in ram:
            if res.range.overlaps(e.range):
                raise r.error(res.key, f"reserved range {_span(res.range)} overlaps "
                              f"RAM {e.key} {_span(e.range)}")


def _check_no_overlap(r: _Reader, entries: list[Entry], what: str) -> None:
    """No two entries share a byte; the later-starting one is named."""
    ordered = sorted(entries, key=lambda e: (e.range.start, e.range.end))
    for before, after in zip(ordered, ordered[1:]):
        if before.range.overlaps(after.range):
            raise r.error(after.key, f"{what} {_span(after.range)} overlaps "
                          f"{before.key} {_span(before.range)}")


def _subtract(ranges: Iterable[Range], holes: Iterable[Range]) -> list[Range]:
    """The parts of ranges that no hole covers, as Ranges."""
    pieces = list(ranges)
    for hole in holes:
        nxt = []
        for p in pieces:
            if not p.overlaps(hole):
                nxt.append(p)
                continue
            if p.start < hole.start:
                nxt.append(Range(p.start, hole.start))
            if p.end > hole.end:
                nxt.append(Range(hole.end, p.end))
        pieces = nxt
    return _sorted(pieces)


# ---------------------------------------------------------------------------
# NUMA nodes

def _parse_nodes(r: _Reader, value: object, ram: list[Entry]) -> list[NodeConfig]:
    """nodes: ids 0..N-1 whose ranges cover the RAM exactly; default one node 0."""
    if value is None:
        return [NodeConfig(0, _sorted(e.range for e in ram), [LOCAL_DISTANCE])]
    items = r.sequence(value, "nodes")
    if len(items) > MAX_NUMNODES:
        raise r.error("nodes", f"{len(items)} nodes; 6.1 i386 encodes at most {MAX_NUMNODES} "
                      f"in page->flags (NODES_SHIFT {NODES_SHIFT}, CONFIG_NUMA's default "
                      "on X86_32)")
    nodes: list[NodeConfig] = []
    entries: list[Entry] = []
    seen: dict[int, str] = {}
    for i, item in enumerate(items):
        key = f"nodes[{i}]"
        node = r.mapping(item, key)
        r.keys(node, key, NODE_KEYS, required=("id", "ram"))
        nid = r.integer(node["id"], f"{key}.id", what="a node id (0, 1, ...)")
        if nid in seen:
            raise r.error(f"{key}.id", f"duplicate node id {nid} (also {seen[nid]}.id)")
        seen[nid] = key
        mine = _parse_ranges(r, node["ram"], f"{key}.ram")
        entries.extend(mine)
        nodes.append(NodeConfig(nid, _sorted(e.range for e in mine), node.get("distance")))
    _check_node_ids(r, nodes)
    _check_node_boundaries(r, entries, ram)
    _check_node_coverage(r, entries, ram)
    for i, nc in enumerate(nodes):
        nc.distance = _parse_distance(r, nc.distance, f"nodes[{i}].distance",
                                      nc.nid, len(nodes))
    return sorted(nodes, key=lambda n: n.nid)


def _check_node_ids(r: _Reader, nodes: list[NodeConfig]) -> None:
    """Node ids index the distance table, so they must be 0..N-1."""
    ids = sorted(n.nid for n in nodes)
    if ids != list(range(len(nodes))):
        bad = next(i for i, n in enumerate(nodes) if n.nid >= len(nodes))
        raise r.error(f"nodes[{bad}].id", f"node id {nodes[bad].nid} is out of range: "
                      f"{len(nodes)} nodes have ids 0..{len(nodes) - 1}")


def _check_node_boundaries(r: _Reader, entries: list[Entry], ram: list[Entry]) -> None:
    """Nodes split RAM at page boundaries; only where an e820 range ends may they not."""
    e820_ends = {e.range.start for e in ram} | {e.range.end for e in ram}
    for e in entries:
        for addr, key in ((e.range.start, f"{e.key}.start"), (e.range.end, e.end_key)):
            if addr % PAGE_SIZE_4K and addr not in e820_ends:
                raise r.error(key, f"node boundary {addr:#x} is not page aligned; only "
                              "the ends of e820 RAM ranges (like 0x9fc00) may be")


def _check_node_coverage(r: _Reader, entries: list[Entry], ram: list[Entry]) -> None:
    """Every byte of RAM in exactly one node, and nothing else in any node."""
    _check_no_overlap(r, entries, "node RAM")
    ram_ranges = [e.range for e in ram]
    for e in entries:
        extra = _subtract([e.range], ram_ranges)
        if extra:
            raise r.error(e.key, f"{_span(extra[0])} is not usable RAM "
                          "(no memory range holds it)")
    missing = _subtract(ram_ranges, [e.range for e in entries])
    if missing:
        raise r.error("nodes", f"RAM {_span(missing[0])} is in no node; the nodes' "
                      "ranges must cover all usable RAM")


def _parse_distance(r: _Reader, value: object, key: str, nid: int, nr_nodes: int) -> list[int]:
    """One row of the SLIT: 10 to itself, 11..255 to the others (default 20)."""
    if value is None:
        return [LOCAL_DISTANCE if j == nid else REMOTE_DISTANCE for j in range(nr_nodes)]
    row = r.sequence(value, key)
    if len(row) != nr_nodes:
        raise r.error(key, f"has {len(row)} entries; with {nr_nodes} nodes it needs "
                      f"{nr_nodes} (one per node id)")
    for j, d in enumerate(row):
        r.integer(d, f"{key}[{j}]", what="a distance")
        if j == nid and d != LOCAL_DISTANCE:
            raise r.error(f"{key}[{j}]", f"local distance (node {nid} to itself) must be "
                          f"{LOCAL_DISTANCE}, not {d}")
        if j != nid and not LOCAL_DISTANCE < d <= MAX_DISTANCE:
            raise r.error(f"{key}[{j}]", f"distance to node {j} must be above the local "
                          f"{LOCAL_DISTANCE} and at most {MAX_DISTANCE}, not {d}")
    return list(row)


# ---------------------------------------------------------------------------
# Zones and boot options

def _parse_zones(r: _Reader, value: object, cfg: MachineConfig) -> None:
    """zones: the end of ZONE_DMA and highmem= (the size of ZONE_HIGHMEM)."""
    zones = r.mapping(value, "zones")
    r.keys(zones, "zones", ZONES_KEYS)
    if "dma_limit" in zones:
        # Only a limit the file sets is checked: Linux's 16 MiB default is
        # right even on a machine with less RAM (ZONE_DMA then holds it all).
        cfg.dma_limit = r.size(zones["dma_limit"], "zones.dma_limit", aligned=True)
        ram_end = max(rng.end for rng in cfg.ram)
        if cfg.dma_limit > ram_end:
            raise r.error("zones.dma_limit", f"ZONE_DMA's end {cfg.dma_limit:#x} is "
                          f"beyond the end of RAM {ram_end:#x}")
    if "highmem" in zones:
        cfg.highmem = r.size(zones["highmem"], "zones.highmem", aligned=True)


def _parse_boot_options(r: _Reader, data: dict[Any, Any], cfg: MachineConfig) -> None:
    """The command-line options: vmalloc=, the direct map, min_free_kbytes, kernelcore=."""
    if "vmalloc" in data:
        area = r.size(data["vmalloc"], "vmalloc", aligned=True)
        if area < MIN_VMALLOC:
            raise r.error("vmalloc", f"a {format_size(area)} vmalloc area is too small; "
                          f"at least {format_size(MIN_VMALLOC)}")
        # parse_vmalloc(): __VMALLOC_RESERVE = vmalloc= + the guard hole.
        cfg.vmalloc = area + VMALLOC_OFFSET
    else:
        cfg.vmalloc = DEFAULT_VMALLOC_RESERVE
    if "direct_map" in data:
        cfg.direct_map = _parse_direct_map(r, data["direct_map"])
    if "min_free_kbytes" in data:
        cfg.min_free_kbytes = r.integer(data["min_free_kbytes"], "min_free_kbytes",
                                        minimum=1, what="a whole number of kilobytes")
    cfg.kernelcore, cfg.movablecore = _parse_core_options(r, data)


def _parse_direct_map(r: _Reader, value: object) -> str:
    """direct_map: 4M (PSE pages where Linux uses them) or 4K (PTEs only)."""
    try:
        page = memparse(value)
    except ValueError:
        page = None
    if page not in DIRECT_MAP_SIZES:
        raise r.error("direct_map", f"must be 4M (4 MiB PSE pages where Linux uses "
                      f"them) or 4K (page tables only), not {_repr(value)}")
    return DIRECT_MAP_SIZES[page]


def _parse_core_options(r: _Reader, data: dict[Any, Any]) -> tuple[Optional[str], Optional[str]]:
    """kernelcore= and movablecore=: a size or a percent, stored normalized ("64M", "50%").

    Whether the two agree when both are given, and whether ZONE_MOVABLE fits
    in the highest zone, needs the zones: config.check_layout() decides.
    """
    given = [k for k in ("kernelcore", "movablecore") if k in data]
    out: dict[str, Optional[str]] = {"kernelcore": None, "movablecore": None}
    for key in given:
        try:
            nbytes, percent = cmdline_parse_core(data[key])
        except ValueError as exc:
            raise r.error(key, str(exc)) from None
        if nbytes == 0:
            raise r.error(key, "must not be zero (leave it out for no ZONE_MOVABLE)")
        out[key] = f"{percent}%" if nbytes is None else format_size(nbytes)
    return out["kernelcore"], out["movablecore"]


def _parse_kernel(r: _Reader, value: object, ram: list[Entry], pae: bool = False) -> KernelConfig:
    """kernel: the load address, the image's sections, the initrd and the command
    line; what is not given is the flavour's reference kernel's."""
    from mmemu.kernel.image import KernelImage, image_sizes
    kernel = r.mapping(value, "kernel")
    r.keys(kernel, "kernel", KERNEL_KEYS)
    defaults = KernelConfig.reference(pae)
    load = defaults.load_address
    if "load_address" in kernel:
        load = r.size(kernel["load_address"], "kernel.load_address", aligned=True)
        if load < MiB:
            raise r.error("kernel.load_address", f"{format_size(load)} is inside the first "
                          f"MiB, which the kernel keeps reserved; at least 1M")
    given = {}
    image = r.mapping(kernel.get("image", {}), "kernel.image")
    r.keys(image, "kernel.image", IMAGE_KEYS)
    for key, val in image.items():
        given[key] = r.size(val, f"kernel.image.{key}", zero=key in ("smp_locks", "brk", "init"))
    initrd = defaults.initrd
    if "initrd" in kernel:
        initrd = r.size(kernel["initrd"], "kernel.initrd", zero=True)
    cmdline = defaults.cmdline
    if "cmdline" in kernel:
        cmdline = r.string(kernel["cmdline"], "kernel.cmdline")
    cfg = KernelConfig(load_address=load, image=image_sizes(given, pae), initrd=initrd,
                       cmdline=" ".join(cmdline.split()))
    layout = KernelImage.from_config(cfg)
    for problem in layout.check():
        raise r.error("kernel.image", problem)
    span = Range(layout.text, layout.brk_end)
    if not any(e.range.start <= span.start and span.end <= e.range.end for e in ram):
        raise r.error("kernel", f"the kernel image with its .brk {_span(span)} is not inside "
                      f"one usable RAM range (a smaller kernel.image or another "
                      f"kernel.load_address)")
    return cfg


def _parse_thp(r: _Reader, value: object) -> str:
    """transparent_hugepage: always, madvise or never (the boot option)."""
    if value not in THP_MODES:
        raise r.error("transparent_hugepage", f"must be one of {', '.join(THP_MODES)}, "
                      f"not {value!r}{did_you_mean(value, THP_MODES)}")
    return value


# ---------------------------------------------------------------------------
# Devices and debug options

def _parse_devices(r: _Reader, value: object, ram: list[Entry],
                   reserved: list[Entry]) -> list[DeviceConfig]:
    """devices: MMIO windows of known models, apart from RAM, reserved ranges and each other."""
    items = r.sequence(value, "devices", empty=True)
    devices: list[DeviceConfig] = []
    windows: list[Entry] = []
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        key = f"devices[{i}]"
        dev = _parse_device(r, item, key)
        if dev.name in names:
            raise r.error(f"{key}.name", f"duplicate device name '{_clip(dev.name, 40)}' "
                          f"(also {names[dev.name]}.name)")
        names[dev.name] = key
        window = Entry(Range(dev.base, dev.base + dev.size), key, f"{key}.size")
        _check_device_window(r, window, ram, reserved, windows)
        windows.append(window)
        devices.append(dev)
    return devices


def _parse_device(r: _Reader, value: object, key: str) -> DeviceConfig:
    """One device: name, model, base, size; its other keys become options."""
    item = r.mapping(value, key)
    _check_device_keys(r, item, key)
    name = r.string(item["name"], f"{key}.name")
    model = r.string(item["model"], f"{key}.model")
    if model not in DEVICE_MODELS:     # read now: models may be registered at run time
        raise r.error(f"{key}.model", f"unknown device model '{_clip(model, 40)}'"
                      f"{did_you_mean(model, DEVICE_MODELS)}; known models: "
                      f"{', '.join(sorted(DEVICE_MODELS))}")
    base = r.size(item["base"], f"{key}.base", zero=True, aligned=True)
    size = r.size(item["size"], f"{key}.size", aligned=True)
    if base + size > FOUR_GIB:
        raise r.error(f"{key}.size", f"window [{base:#x}, {base + size:#x}) runs past "
                      "the 4 GiB physical address space")
    options = {k: v for k, v in item.items() if k not in DEVICE_KEYS}
    return DeviceConfig(name=name, model=model, base=base, size=size, options=options)


def _check_device_keys(r: _Reader, item: dict[Any, Any], key: str) -> None:
    """A device's own keys are free, so a missing one is most likely misspelt."""
    for name in item:
        if not isinstance(name, str):
            raise r.error(f"{key}.{name}", f"option name {_repr(name)} is not a string")
    for name in DEVICE_KEYS:
        if name not in item:
            typo = close_match(name, [k for k in item if k not in DEVICE_KEYS])
            hint = f" ('{typo}' looks like a misspelling of it)" if typo else ""
            raise r.error(f"{key}.{name}", f"missing required key '{name}'{hint}")


def _check_device_window(r: _Reader, window: Entry, ram: list[Entry], reserved: list[Entry],
                         others: list[Entry]) -> None:
    """An MMIO window must not shadow RAM, firmware's reserved ranges or another device."""
    for what, entries in (("RAM", ram), ("reserved range", reserved), ("device", others)):
        for e in entries:
            if window.range.overlaps(e.range):
                raise r.error(f"{window.key}.base", f"device window {_span(window.range)} "
                              f"overlaps {what} {e.key} {_span(e.range)}")


def _parse_host(r: _Reader, value: object, cfg: MachineConfig) -> list[HostRange]:
    """host: page-aligned ranges the embedding program keeps, apart from each
    other, the devices and the kernel image."""
    from mmemu.kernel.image import KernelImage
    items = r.sequence(value, "host", empty=True)
    out: list[HostRange] = []
    for i, item in enumerate(items):
        key = f"host[{i}]"
        mapping = r.mapping(item, key)
        r.keys(mapping, key, HOST_KEYS, required=("start",))
        entry = _parse_range(r, {k: v for k, v in mapping.items() if k != "name"}, key, True)
        name = r.string(mapping.get("name", "host"), f"{key}.name")
        if entry.range.end > FOUR_GIB:
            raise r.error(entry.end_key, f"{_span(entry.range)} is beyond the 4 GiB physical "
                          "address space")
        image = KernelImage.from_config(cfg.kernel)
        clashes = [(d.name, Range(d.base, d.base + d.size)) for d in cfg.devices]
        clashes += [("the kernel image (kernel:)", Range(image.text, image.brk_end))]
        clashes += [(f"{h.key} ({h.name})", Range(h.start, h.end)) for h in out]
        for what, rng in clashes:
            if entry.range.overlaps(rng):
                raise r.error(key, f"host range {_span(entry.range)} overlaps {what} "
                              f"{_span(rng)}")
        out.append(HostRange(entry.range.start, entry.range.end, name, key))
    return sorted(out, key=lambda h: h.start)


def _parse_debug(r: _Reader, value: object, cfg: MachineConfig) -> None:
    """debug: the VM checker, slub_debug= and panic_on_warn."""
    debug = r.mapping(value, "debug")
    r.keys(debug, "debug", DEBUG_KEYS)
    cfg.debug_vm = r.boolean(debug.get("vm", False), "debug.vm")
    cfg.panic_on_warn = r.boolean(debug.get("panic_on_warn", False), "debug.panic_on_warn")
    cfg.slub_debug = _parse_slub_debug(r, debug.get("slub"), "debug.slub")


def _parse_slub_debug(r: _Reader, value: object, key: str) -> Optional[str]:
    """slub_debug=: ``FZPU``, ``FZ,kmalloc-64;P,kmalloc-128``; true means bare slub_debug."""
    if value is None or value is False:
        return None
    if value is True:
        return SLUB_DEBUG_DEFAULT
    text = r.string(value, key)
    for block in text.split(";"):
        flags = block.split(",", 1)[0].strip()
        bad = [c for c in flags if c.lower() not in SLUB_DEBUG_FLAGS]
        if bad:
            raise r.error(key, f"unknown slub_debug flag '{_clip(bad[0], 8)}' in '{_clip(text, 40)}'; "
                          "the flags are F Z P U T A O and -")
    return text
