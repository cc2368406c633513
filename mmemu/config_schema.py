"""Reading a machine config file: YAML text in, a checked MachineConfig out.

The schema is described in mmemu.config's docstring and at the top of
configs/pc-1g.yaml.  Everything here needs only the file: the keys, the sizes,
the RAM map, the nodes and the devices.  What needs the kernel's layout (zone
spans, MAXMEM) is mmemu.config.check_layout().

Every fault raises ConfigError(path, keypath, message) with a key path such as
``memory.ram[1].end``; top-level and section keys are strict (a typo gets a
"did you mean"), only a device's own keys are free (they become its options).
"""
from collections import namedtuple
from pathlib import Path

import yaml

from mmemu.config import (
    DEFAULT_VMALLOC_RESERVE, DEVICE_MODELS, FOUR_GIB, KiB, LOCAL_DISTANCE, MIN_VMALLOC,
    MiB, PAE_MESSAGE, PAGE_SIZE_4K, VMALLOC_OFFSET, DeviceConfig, MachineConfig,
    NodeConfig, Range, close_match, cmdline_parse_core, did_you_mean, format_size, memparse,
    qemu_pc_e820)
from mmemu.errors import ConfigError

TOP_KEYS = ("name", "description", "memory", "nodes", "zones", "vmalloc", "direct_map",
            "min_free_kbytes", "kernelcore", "movablecore", "kernel_image", "devices",
            "debug", "pae")
MEMORY_KEYS = ("size", "ram", "reserved")
RANGE_KEYS = ("start", "end", "size")
NODE_KEYS = ("id", "ram", "distance")
ZONES_KEYS = ("dma_limit", "highmem")
DEVICE_KEYS = ("name", "model", "base", "size")      # any other key is an option
DEBUG_KEYS = ("vm", "slub", "panic_on_warn")
DIRECT_MAP_SIZES = {4 * MiB: "4M", 4 * KiB: "4K"}
SLUB_DEBUG_FLAGS = "fzputao-"                       # mm/slub.c:parse_slub_debug_flags()
SLUB_DEBUG_DEFAULT = "FZPU"                         # bare slub_debug: DEBUG_DEFAULT_FLAGS
REMOTE_DISTANCE = 20
MAX_DISTANCE = 255                                  # distances are u8
KERNEL_IMAGE_BASE = 1 * MiB

# A range as the file gave it: its key path, and the key that set its end.
Entry = namedtuple("Entry", "range key end_key")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    PyYAML silently keeps the last of two equal keys, which would hide a
    mistake such as a second ``vmalloc:`` further down the file.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen = set()
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
                        f"duplicate key '{key}'", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def parse_config_file(path):
    """Read one config file and build its MachineConfig (no layout checks)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, None, "not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read it: {exc.strerror}") from None
    return parse_config_data(path, load_yaml(path, text))


def load_yaml(path, text):
    """Parse YAML text; a syntax error becomes a ConfigError with its line number."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(path, None, f"YAML syntax error{where}: "
                          f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"YAML syntax error: {exc}") from None


def parse_config_data(path, data):
    """Build a MachineConfig from the parsed YAML of the file at path."""
    r = _Reader(path)
    if data is None:
        raise r.error(None, "the file is empty; a config needs at least a memory section")
    r.mapping(data, None, what="the top level")
    r.keys(data, None, TOP_KEYS, required=("memory",))
    if data.get("pae", False) is not False:
        _refuse_pae(r, data["pae"])
    ram, reserved = _parse_memory(r, data["memory"])
    cfg = MachineConfig(
        name=_parse_name(r, data, path), path=str(path),
        ram=_sorted(e.range for e in ram), reserved=_sorted(e.range for e in reserved),
        nodes=_parse_nodes(r, data.get("nodes"), ram),
        description=r.string(data.get("description", ""), "description", empty=True))
    _parse_zones(r, data.get("zones", {}), cfg)
    _parse_boot_options(r, data, cfg)
    cfg.kernel_image = _parse_kernel_image(r, data.get("kernel_image"), ram, cfg.kernel_image)
    cfg.devices = _parse_devices(r, data.get("devices", []), ram, reserved)
    _parse_debug(r, data.get("debug", {}), cfg)
    return cfg


class _Reader:
    """Typed reads of one file's values that fail with the file's name and key path."""

    def __init__(self, path):
        self.path = str(path)

    def error(self, key, message):
        return ConfigError(self.path, key, message)

    def mapping(self, value, key, what=None):
        if not isinstance(value, dict):
            raise self.error(key, f"{what or 'this'} must be a mapping "
                             f"(key: value lines), not {_kind(value)}")
        return value

    def sequence(self, value, key, empty=False):
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        if not value and not empty:
            raise self.error(key, "must not be an empty list")
        return value

    def keys(self, mapping, key, allowed, required=()):
        """Strict keys: each must be allowed (with a "did you mean"), required ones present."""
        for name in mapping:
            if name not in allowed:
                raise self.error(_join(key, name), f"unknown key '{name}'"
                                 f"{did_you_mean(name, allowed)}")
        for name in required:
            if name not in mapping:
                raise self.error(_join(key, name), f"missing required key '{name}'")

    def size(self, value, key, zero=False, aligned=False):
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

    def integer(self, value, key, minimum=0, what="a whole number"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be {what}, not {_kind(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return value

    def boolean(self, value, key):
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def string(self, value, key, empty=False):
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {_kind(value)}")
        if not value.strip() and not empty:
            raise self.error(key, "must not be empty")
        return value


def _join(key, name):
    return f"{key}.{name}" if key else str(name)


def _kind(value):
    """How a YAML value looks to the user, for "must be X, not Y" messages."""
    if value is None:
        return "empty (null)"
    names = {bool: "a boolean", int: "a number", float: "a decimal number",
             str: "a string", list: "a list", dict: "a mapping"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"


def _sorted(ranges):
    return sorted(ranges, key=lambda rng: (rng.start, rng.end))


def _span(rng):
    return f"[{rng.start:#x}, {rng.end:#x})"


def _refuse_pae(r, value):
    r.boolean(value, "pae")
    raise r.error("pae", "PAE is not modelled: mmemu models the non-PAE 686 kernel "
                  "(two-level page tables, RAM below 4 GiB)")


def _parse_name(r, data, path):
    if "name" not in data:
        return Path(path).stem
    return r.string(data["name"], "name")


# ---------------------------------------------------------------------------
# The RAM map

def _parse_memory(r, value):
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
    _check_ram_map(r, ram, reserved)
    return ram, reserved


def _qemu_pc_memory(r, mem):
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


def _parse_ranges(r, value, key, empty=False, aligned=False):
    """A list of {start, end} / {start, size} ranges, as Entries."""
    items = r.sequence(value, key, empty=empty)
    return [_parse_range(r, item, f"{key}[{i}]", aligned) for i, item in enumerate(items)]


def _parse_range(r, value, key, aligned):
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


def _check_ram_map(r, ram, reserved):
    """RAM below 4 GiB, no two ranges over the same bytes, RAM apart from reserved."""
    for e in ram:
        if e.range.end > FOUR_GIB:
            raise r.error(e.end_key, f"{_span(e.range)}: {PAE_MESSAGE}")
    for e in reserved:
        if e.range.end > FOUR_GIB:
            raise r.error(e.end_key, f"{_span(e.range)} is beyond the 4 GiB physical "
                          "address space (no PAE)")
    _check_no_overlap(r, ram, "RAM")
    for res in reserved:
        for e in ram:
            if res.range.overlaps(e.range):
                raise r.error(res.key, f"reserved range {_span(res.range)} overlaps "
                              f"RAM {e.key} {_span(e.range)}")


def _check_no_overlap(r, entries, what):
    """No two entries share a byte; the later-starting one is named."""
    ordered = sorted(entries, key=lambda e: (e.range.start, e.range.end))
    for before, after in zip(ordered, ordered[1:]):
        if before.range.overlaps(after.range):
            raise r.error(after.key, f"{what} {_span(after.range)} overlaps "
                          f"{before.key} {_span(before.range)}")


def _subtract(ranges, holes):
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

def _parse_nodes(r, value, ram):
    """nodes: ids 0..N-1 whose ranges cover the RAM exactly; default one node 0."""
    if value is None:
        return [NodeConfig(0, _sorted(e.range for e in ram), [LOCAL_DISTANCE])]
    items = r.sequence(value, "nodes")
    nodes, entries, seen = [], [], {}
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
    for i, node in enumerate(nodes):
        node.distance = _parse_distance(r, node.distance, f"nodes[{i}].distance",
                                        node.nid, len(nodes))
    return sorted(nodes, key=lambda n: n.nid)


def _check_node_ids(r, nodes):
    """Node ids index the distance table, so they must be 0..N-1."""
    ids = sorted(n.nid for n in nodes)
    if ids != list(range(len(nodes))):
        bad = next(i for i, n in enumerate(nodes) if n.nid >= len(nodes))
        raise r.error(f"nodes[{bad}].id", f"node id {nodes[bad].nid} is out of range: "
                      f"{len(nodes)} nodes have ids 0..{len(nodes) - 1}")


def _check_node_boundaries(r, entries, ram):
    """Nodes split RAM at page boundaries; only where an e820 range ends may they not."""
    e820_ends = {e.range.start for e in ram} | {e.range.end for e in ram}
    for e in entries:
        for addr, key in ((e.range.start, f"{e.key}.start"), (e.range.end, e.end_key)):
            if addr % PAGE_SIZE_4K and addr not in e820_ends:
                raise r.error(key, f"node boundary {addr:#x} is not page aligned; only "
                              "the ends of e820 RAM ranges (like 0x9fc00) may be")


def _check_node_coverage(r, entries, ram):
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


def _parse_distance(r, value, key, nid, nr_nodes):
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

def _parse_zones(r, value, cfg):
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


def _parse_boot_options(r, data, cfg):
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


def _parse_direct_map(r, value):
    """direct_map: 4M (PSE pages where Linux uses them) or 4K (PTEs only)."""
    try:
        page = memparse(value)
    except ValueError:
        page = None
    if page not in DIRECT_MAP_SIZES:
        raise r.error("direct_map", f"must be 4M (4 MiB PSE pages where Linux uses "
                      f"them) or 4K (page tables only), not {value!r}")
    return DIRECT_MAP_SIZES[page]


def _parse_core_options(r, data):
    """kernelcore= and movablecore=: a size or a percent, stored normalized ("64M", "50%").

    Whether the two agree when both are given, and whether ZONE_MOVABLE fits
    in the highest zone, needs the zones: config.check_layout() decides.
    """
    given = [k for k in ("kernelcore", "movablecore") if k in data]
    out = {"kernelcore": None, "movablecore": None}
    for key in given:
        try:
            nbytes, percent = cmdline_parse_core(data[key])
        except ValueError as exc:
            raise r.error(key, str(exc)) from None
        if nbytes == 0:
            raise r.error(key, "must not be zero (leave it out for no ZONE_MOVABLE)")
        out[key] = f"{percent}%" if percent is not None else format_size(nbytes)
    return out["kernelcore"], out["movablecore"]


def _parse_kernel_image(r, value, ram, default):
    """kernel_image: the guest image's reservation at 1 MiB, which must be RAM."""
    size = default if value is None else r.size(value, "kernel_image", aligned=True)
    image = Range(KERNEL_IMAGE_BASE, KERNEL_IMAGE_BASE + size)
    if not any(e.range.start <= image.start and image.end <= e.range.end for e in ram):
        raise r.error("kernel_image", f"the guest image reservation {_span(image)} "
                      "is not inside one usable RAM range")
    return size


# ---------------------------------------------------------------------------
# Devices and debug options

def _parse_devices(r, value, ram, reserved):
    """devices: MMIO windows of known models, apart from RAM, reserved ranges and each other."""
    items = r.sequence(value, "devices", empty=True)
    devices, windows, names = [], [], {}
    for i, item in enumerate(items):
        key = f"devices[{i}]"
        dev = _parse_device(r, item, key)
        if dev.name in names:
            raise r.error(f"{key}.name", f"duplicate device name '{dev.name}' "
                          f"(also {names[dev.name]}.name)")
        names[dev.name] = key
        window = Entry(Range(dev.base, dev.base + dev.size), key, f"{key}.size")
        _check_device_window(r, window, ram, reserved, windows)
        windows.append(window)
        devices.append(dev)
    return devices


def _parse_device(r, value, key):
    """One device: name, model, base, size; its other keys become options."""
    item = r.mapping(value, key)
    _check_device_keys(r, item, key)
    name = r.string(item["name"], f"{key}.name")
    model = r.string(item["model"], f"{key}.model")
    if model not in DEVICE_MODELS:     # read now: models may be registered at run time
        raise r.error(f"{key}.model", f"unknown device model '{model}'"
                      f"{did_you_mean(model, DEVICE_MODELS)}; known models: "
                      f"{', '.join(sorted(DEVICE_MODELS))}")
    base = r.size(item["base"], f"{key}.base", zero=True, aligned=True)
    size = r.size(item["size"], f"{key}.size", aligned=True)
    if base + size > FOUR_GIB:
        raise r.error(f"{key}.size", f"window [{base:#x}, {base + size:#x}) runs past "
                      "the 4 GiB physical address space")
    options = {k: v for k, v in item.items() if k not in DEVICE_KEYS}
    return DeviceConfig(name=name, model=model, base=base, size=size, options=options)


def _check_device_keys(r, item, key):
    """A device's own keys are free, so a missing one is most likely misspelt."""
    for name in item:
        if not isinstance(name, str):
            raise r.error(f"{key}.{name}", f"option name {name!r} is not a string")
    for name in DEVICE_KEYS:
        if name not in item:
            typo = close_match(name, [k for k in item if k not in DEVICE_KEYS])
            hint = f" ('{typo}' looks like a misspelling of it)" if typo else ""
            raise r.error(f"{key}.{name}", f"missing required key '{name}'{hint}")


def _check_device_window(r, window, ram, reserved, others):
    """An MMIO window must not shadow RAM, firmware's reserved ranges or another device."""
    for what, entries in (("RAM", ram), ("reserved range", reserved), ("device", others)):
        for e in entries:
            if window.range.overlaps(e.range):
                raise r.error(f"{window.key}.base", f"device window {_span(window.range)} "
                              f"overlaps {what} {e.key} {_span(e.range)}")


def _parse_debug(r, value, cfg):
    """debug: the VM checker, slub_debug= and panic_on_warn."""
    debug = r.mapping(value, "debug")
    r.keys(debug, "debug", DEBUG_KEYS)
    cfg.debug_vm = r.boolean(debug.get("vm", False), "debug.vm")
    cfg.panic_on_warn = r.boolean(debug.get("panic_on_warn", False), "debug.panic_on_warn")
    cfg.slub_debug = _parse_slub_debug(r, debug.get("slub"), "debug.slub")


def _parse_slub_debug(r, value, key):
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
            raise r.error(key, f"unknown slub_debug flag '{bad[0]}' in '{text}'; "
                          "the flags are F Z P U T A O and -")
    return text
