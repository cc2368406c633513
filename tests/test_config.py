"""Tests for mmemu.config and mmemu.config_schema: shipped configs, the QEMU pc
shorthand, size parsing, and one test per validation error.

Each bad config is a real YAML file written into tmp_path and read through
load_config(), so the test sees what a user would: a ConfigError naming the
file, the key path and the fault.
"""
import textwrap

import pytest
from hypothesis import given, strategies as st

from mmemu.config import (
    DEFAULT_CONFIG, DEVICE_MODELS, GiB, KiB, MiB, MachineConfig, NodeConfig, Range,
    boot_warnings, check_layout, cmdline_parse_core, e820_table, format_size,
    is_qemu_pc, list_configs, load_config, memparse, qemu_pc_e820)
from mmemu.errors import ConfigError
from mmemu.layout import compute_layout

SHIPPED = ["numa-2n", "pc-128m", "pc-16m", "pc-1g", "pc-1g-movable", "pc-1g-pae", "pc-4g",
           "qemu-pc-128m", "qemu-pc-16g-pae", "qemu-pc-1g", "qemu-pc-1g-highmem256",
           "qemu-pc-1g-highmem512", "qemu-pc-1g-highmem64", "qemu-pc-1g-movablecore64",
           "qemu-pc-1g-pae", "qemu-pc-1g-vmalloc256", "qemu-pc-1g-vmalloc64", "qemu-pc-2g",
           "qemu-pc-3g", "qemu-pc-4g", "qemu-pc-4g-pae", "qemu-pc-512m",
           "qemu-pc-512m-highmem128", "qemu-pc-64m", "qemu-pc-896m", "qemu-pc-8g-pae"]
SMALL_KERNEL = ("kernel:\n  load_address: 1M\n  initrd: 0\n"
                "  image: {code: 1M, rodata: 256K, rwdata: 512K, init: 128K, bss: 128K}\n")

# A small PC: 640K conventional memory, then 1M..128M, with the BIOS holes.
PC_128M = """\
memory:
  ram:
    - {start: 0, end: 0x9fc00}
    - {start: 1M, end: 128M}
  reserved:
    - {start: 0x9fc00, end: 0xa0000}
    - {start: 0xf0000, end: 1M}
"""

# The same split into two nodes at 64M.
TWO_NODES = PC_128M + """\
nodes:
  - {id: 0, ram: [{start: 0, end: 0x9fc00}, {start: 1M, end: 64M}]}
  - {id: 1, ram: [{start: 64M, end: 128M}]}
"""

# The e820 map DESIGN.md quotes for `qemu-system-i386 -M pc -m 1G`.
REFERENCE_E820_1G = [
    (0x0000000000000000, 0x000000000009fbff, "usable"),
    (0x000000000009fc00, 0x000000000009ffff, "reserved"),
    (0x00000000000f0000, 0x00000000000fffff, "reserved"),
    (0x0000000000100000, 0x000000003ffdffff, "usable"),
    (0x000000003ffe0000, 0x000000003fffffff, "reserved"),
    (0x00000000fffc0000, 0x00000000ffffffff, "reserved"),
]


def write(tmp_path, text, name="machine.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path, text):
    """load_config() on text written to a file; returns the ConfigError it raises."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert str(path) in str(err), "the message names the file"
    assert err.exit_status == 2
    return err


def expect(tmp_path, text, key, *fragments):
    """The config in text fails at key path `key` with all fragments in the message."""
    err = load_error(tmp_path, text)
    assert err.key == key, str(err)
    for fragment in fragments:
        assert fragment in err.message, str(err)
    if key:
        assert f": {key}: " in str(err)
    return err


# ---------------------------------------------------------------------------
# Shipped configs

def test_list_configs_has_every_shipped_config():
    assert list_configs() == SHIPPED
    assert DEFAULT_CONFIG == "pc-1g"


@pytest.mark.parametrize("name", SHIPPED)
def test_load_config_shipped(name):
    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.description
    assert cfg.path.endswith(f"configs/{name}.yaml")
    assert cfg.nodes and cfg.ram


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_starts_with_a_comment(name):
    path = load_config(name).path
    with open(path) as f:
        assert f.readline().startswith(f"# {name}: ")


def test_load_config_default_is_pc_1g():
    assert load_config().name == "pc-1g"


def test_load_config_by_path(tmp_path):
    path = write(tmp_path, PC_128M, name="small.yml")
    cfg = load_config(str(path))
    assert cfg.name == "small"
    assert cfg.path == str(path)


def test_load_config_unknown_name_suggests():
    with pytest.raises(ConfigError) as info:
        load_config("pc-1G")
    assert "no shipped config named 'pc-1G'" in str(info.value)
    assert "did you mean 'pc-1g'" in str(info.value)


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_pc_1g_is_qemu_pc_with_devices():
    cfg = load_config("pc-1g")
    assert is_qemu_pc(cfg) == (True, "QEMU pc, -m 1G")
    assert cfg.highmem is None and cfg.vmalloc == 128 * MiB and cfg.direct_map == "4M"
    devs = {d.name: d for d in cfg.devices}
    assert (devs["uart0"].model, devs["uart0"].base, devs["uart0"].size) == \
        ("uart16550", 0xFE000000, 4 * KiB)
    assert devs["fb0"].options == {"width": 640, "height": 480, "format": "xrgb8888"}
    assert devs["regs0"].base == 0xFE001000 and devs["regs0"].options == {}


def test_qemu_pc_1g_zones_match_reference_dmesg():
    """Zone ranges and node ranges of the reference 6.1 boot (DESIGN.md)."""
    layout = compute_layout(load_config("qemu-pc-1g"))
    spans = [(z.name, z.start_pfn << 12, (z.end_pfn << 12) - 1) for z in layout.zones[:3]]
    assert spans == [("DMA", 0x1000, 0xFFFFFF), ("Normal", 0x1000000, 0x36BFDFFF),
                     ("HighMem", 0x36BFE000, 0x3FFDFFFF)]
    assert [(s << 12, (e << 12) - 1) for _, s, e in layout.memory] == \
        [(0x1000, 0x9EFFF), (0x100000, 0x3FFDFFFF)]


def test_pc_16m_has_dma_and_normal_only():
    cfg = load_config("pc-16m")
    layout = check_layout(cfg)
    populated = [z.name for z in layout.zones if z.present_pages]
    assert populated == ["DMA", "Normal"]
    assert (cfg.kernel.load_address, cfg.kernel.initrd) == (1 * MiB, 0)
    assert cfg.kernel.image["code"] == 1 * MiB
    assert is_qemu_pc(cfg)[0] is False


def test_pc_4g_is_the_non_pae_maximum():
    cfg = load_config("pc-4g")
    assert cfg.ram == [Range(0, 0x9FC00), Range(MiB, 0xF0000000)]
    highmem = compute_layout(cfg).zone(0, 2)
    assert 2.8 * GiB < highmem.present_pages * 4096 < 3 * GiB


def test_numa_2n_nodes_and_distances():
    cfg = load_config("numa-2n")
    assert [n.nid for n in cfg.nodes] == [0, 1]
    assert cfg.nodes[0].ram == [Range(0, 0x9FC00), Range(MiB, 512 * MiB)]
    assert cfg.nodes[1].ram == [Range(512 * MiB, 0x3FFE0000)]
    assert [n.distance for n in cfg.nodes] == [[10, 20], [20, 10]]
    layout = compute_layout(cfg)
    assert [z.name for z in layout.node_zones(0) if z.present_pages] == ["DMA", "Normal"]
    assert [z.name for z in layout.node_zones(1) if z.present_pages] == ["Normal", "HighMem"]


def test_qemu_pc_1g_vmalloc256_reserves_the_guard_hole_too():
    """vmalloc=256M: __VMALLOC_RESERVE is 256M + VMALLOC_OFFSET, the area 256M."""
    cfg = load_config("qemu-pc-1g-vmalloc256")
    assert cfg.vmalloc == 264 * MiB
    layout = compute_layout(cfg)
    assert layout.vmalloc_end - layout.vmalloc_start == 256 * MiB


def test_qemu_pc_1g_highmem512_is_ignored_like_linux():
    cfg = load_config("qemu-pc-1g-highmem512")
    assert cfg.highmem == 512 * MiB
    assert boot_warnings(cfg) == [
        "only 147MB highmem pages available, ignoring highmem size of 512MB!"]
    assert compute_layout(cfg).max_low_pfn == 0x36BFE
    assert boot_warnings(load_config("pc-1g")) == []


def test_pc_1g_movable_sets_movablecore():
    assert load_config("pc-1g-movable").movablecore == "64M"


def test_default_node_holds_all_ram(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M))
    assert cfg.nodes == [NodeConfig(0, [Range(0, 0x9FC00), Range(MiB, 128 * MiB)], [10])]


def test_defaults_are_linux_defaults(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M))
    assert (cfg.dma_limit, cfg.highmem, cfg.vmalloc, cfg.direct_map) == \
        (16 * MiB, None, 128 * MiB, "4M")
    assert (cfg.min_free_kbytes, cfg.kernelcore, cfg.movablecore) == (None, None, None)
    assert (cfg.kernel.load_address, cfg.kernel.initrd, cfg.devices, cfg.pae) == \
        (16 * MiB, 1044 * KiB, [], False)
    assert (cfg.kernel.image["code"], cfg.kernel.image["reserved"]) == (9327 * KiB, 15256 * KiB)
    assert cfg.kernel.cmdline == "console=ttyS0 nokaslr quiet panic=-1"
    assert cfg.transparent_hugepage == "always"
    assert (cfg.debug_vm, cfg.slub_debug, cfg.panic_on_warn) == (False, None, False)


def test_every_option_read(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M + textwrap.dedent("""\
        name: mine
        description: all options
        zones: {dma_limit: 8M, highmem: 32M}
        vmalloc: 64M
        direct_map: 4K
        min_free_kbytes: 1024
        kernelcore: 80%
        kernel:
          load_address: 32M
          image: {code: 2M, rodata: 1M}
          initrd: 512K
          cmdline: console=ttyS0  quiet
        transparent_hugepage: madvise
        debug: {vm: true, slub: "FZ,kmalloc-64", panic_on_warn: true}
        pae: false
        """)))
    assert (cfg.name, cfg.description, cfg.dma_limit, cfg.highmem) == \
        ("mine", "all options", 8 * MiB, 32 * MiB)
    assert (cfg.vmalloc, cfg.direct_map, cfg.min_free_kbytes) == (72 * MiB, "4K", 1024)
    assert cfg.kernelcore == "80%"
    assert (cfg.kernel.load_address, cfg.kernel.initrd, cfg.kernel.cmdline) == \
        (32 * MiB, 512 * KiB, "console=ttyS0 quiet")
    sizes = cfg.kernel.image
    assert (sizes["code"], sizes["rodata"], sizes["rwdata"]) == (2 * MiB, 1 * MiB, 1246 * KiB)
    assert sizes["reserved"] == 2 * MiB + MiB + 1248 * KiB + 912 * KiB + 32 * KiB + 464 * KiB
    assert cfg.transparent_hugepage == "madvise"
    assert (cfg.debug_vm, cfg.slub_debug, cfg.panic_on_warn) == (True, "FZ,kmalloc-64", True)


def test_e820_ranges_in_start_size_form_and_sorted(tmp_path):
    cfg = load_config(write(tmp_path, """\
        memory:
          ram:
            - {start: 1M, size: 127M}
            - {start: 0, size: 0x9fc00}
        """))
    assert cfg.ram == [Range(0, 0x9FC00), Range(MiB, 128 * MiB)]
    assert cfg.reserved == []


# ---------------------------------------------------------------------------
# QEMU pc's e820 map

def test_qemu_pc_e820_1g_is_the_reference_map():
    table = [(r.start, r.end - 1, kind) for r, kind in qemu_pc_e820(GiB)]
    assert table == REFERENCE_E820_1G


def test_memory_size_shorthand_gives_reference_e820(tmp_path):
    cfg = load_config(write(tmp_path, "memory: {size: 1G}\n"))
    assert [(r.start, r.end - 1, kind) for r, kind in e820_table(cfg)] == REFERENCE_E820_1G


@pytest.mark.parametrize("size", [128 * MiB, 512 * MiB, 2 * GiB, 3 * GiB])
def test_qemu_pc_e820_same_shape_every_size(size):
    ram = [r for r, kind in qemu_pc_e820(size) if kind == "usable"]
    assert ram == [Range(0, 0x9FC00), Range(MiB, size - 128 * KiB)]


def test_qemu_pc_e820_4g_puts_the_last_gib_above_4g():
    # QEMU pc keeps 3 GiB below 4 GiB from 3.5 GiB up (the reference boot's map)
    table = [(r.start, r.end - 1, kind) for r, kind in qemu_pc_e820(4 * GiB)]
    assert table[3:] == [(0x100000, 0xBFFDFFFF, "usable"), (0xBFFE0000, 0xBFFFFFFF, "reserved"),
                         (0xFFFC0000, 0xFFFFFFFF, "reserved"),
                         (0x100000000, 0x13FFFFFFF, "usable")]
    with pytest.raises(ValueError, match="more than 64G"):
        qemu_pc_e820(65 * GiB)


def test_qemu_pc_e820_above_4g_with_pae_is_qemus_split():
    """-m 8G on QEMU pc, as the real 686-pae kernel printed it: 3 GiB below
    4 GiB (the last 128 KiB reserved), the other 5 GiB from 0x100000000."""
    table = qemu_pc_e820(8 << 30)
    assert table[3] == (Range(0x100000, 0xBFFE0000), "usable")
    assert table[4] == (Range(0xBFFE0000, 0xC0000000), "reserved")
    assert table[5] == (Range(0xFFFC0000, 1 << 32), "reserved")
    assert table[6] == (Range(1 << 32, 0x240000000), "usable")


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("qemu-pc")])
def test_is_qemu_pc_on_qemu_family(name):
    ok, reason = is_qemu_pc(load_config(name))
    assert ok, reason


def test_is_qemu_pc_names_first_difference(tmp_path):
    cfg = load_config(write(tmp_path, "memory: {size: 128M}\n"))
    cfg.reserved[0] = Range(0x9F000, 0xA0000)       # a bigger EBDA than SeaBIOS's
    cfg.ram[0] = Range(0, 0x9F000)
    assert is_qemu_pc(cfg) == (False, "e820 entry 0 is [0x0, 0x9f000) usable where QEMU "
                               "pc -m 128M has [0x0, 0x9fc00) usable")


def test_is_qemu_pc_extra_entry(tmp_path):
    cfg = load_config(write(tmp_path, "memory: {size: 128M}\n"))
    cfg.reserved.append(Range(0xFEC00000, 0xFEC01000))
    cfg.reserved.sort(key=lambda r: r.start)
    ok, reason = is_qemu_pc(cfg)
    assert not ok and "0xfec00000" in reason


def test_is_qemu_pc_missing_entry(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M))     # no top 128K or flash reserved
    assert is_qemu_pc(cfg) == (False, "missing e820 entry [0x8000000, 0x8020000) reserved")


# ---------------------------------------------------------------------------
# Sizes

@pytest.mark.parametrize("text, value", [
    (0, 0), (4096, 4096), ("4096", 4096), ("0x9fc00", 0x9FC00), ("4K", 4096),
    ("4k", 4096), ("1M", MiB), ("640K", 0xA0000), ("1G", GiB), ("0x10M", 16 * MiB),
    (" 2 M ", 2 * MiB), ("010", 10)])
def test_memparse_accepts(text, value):
    assert memparse(text) == value


@pytest.mark.parametrize("text, message", [
    ("12Q", "not a size"), ("", "not a size"), ("1.5G", "not a size"), ("M", "not a size"),
    ("4KB", "not a size"), (True, "not a size"), (1.5, "not a size"), (None, "not a size"),
    ([4], "not a size"), ("-4K", "negative"), (-1, "negative")])
def test_memparse_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        memparse(text)


@given(st.integers(min_value=0, max_value=1 << 20), st.sampled_from("KkMmGg"))
def test_memparse_suffix_round_trip(n, suffix):
    shift = {"k": 10, "m": 20, "g": 30}[suffix.lower()]
    assert memparse(f"{n}{suffix}") == n << shift
    assert memparse(f"{n:#x}{suffix}") == n << shift


@given(st.integers(min_value=0, max_value=1 << 40))
def test_format_size_round_trip(n):
    assert memparse(format_size(n)) == n


def test_format_size_picks_largest_exact_suffix():
    assert [format_size(n) for n in (0, 512, 4096, 0x9FC00, 0x9FC01, 3 * GiB)] == \
        ["0", "512", "4K", "639K", "0x9fc01", "3G"]


@pytest.mark.parametrize("text, parsed", [
    ("50%", (None, 50)), ("0%", (None, 0)), ("100%", (None, 100)), ("64M", (64 * MiB, None)),
    (4096, (4096, None))])
def test_cmdline_parse_core_accepts(text, parsed):
    assert cmdline_parse_core(text) == parsed


@pytest.mark.parametrize("text, message", [
    ("101%", "more than 100%"), ("12.5%", "not a percentage"), ("-5%", "not a percentage"),
    ("lots", "or a percentage")])
def test_cmdline_parse_core_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        cmdline_parse_core(text)


# ---------------------------------------------------------------------------
# Validation: the file as a whole

def test_yaml_syntax_error_names_the_line(tmp_path):
    expect(tmp_path, PC_128M + "zones:\n  dma_limit: 16M: 8M\n", None,
           "YAML syntax error at line 9", "mapping values are not allowed here")


def test_yaml_tab_indentation_error_names_the_line(tmp_path):
    expect(tmp_path, "memory:\n\tsize: 1G\n", None, "YAML syntax error at line 2")


def test_duplicate_key_refused(tmp_path):
    expect(tmp_path, PC_128M + "vmalloc: 64M\nvmalloc: 96M\n", None,
           "line 9", "duplicate key 'vmalloc'")


def test_empty_file(tmp_path):
    expect(tmp_path, "", None, "file is empty")
    expect(tmp_path, "# only a comment\n", None, "file is empty")


def test_config_not_a_mapping(tmp_path):
    expect(tmp_path, "- memory\n- zones\n", None, "top level must be a mapping", "a list")
    expect(tmp_path, "pc-1g\n", None, "top level must be a mapping", "a string")


def test_missing_memory_section(tmp_path):
    expect(tmp_path, "name: empty\n", "memory", "missing required key 'memory'")


def test_not_utf8(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"memory: {size: 1G}\nname: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(path)


def test_unknown_top_level_key_suggests(tmp_path):
    expect(tmp_path, PC_128M + "vmaloc: 64M\n", "vmaloc",
           "unknown key 'vmaloc' (did you mean 'vmalloc'?)")


def test_unknown_key_without_close_match(tmp_path):
    err = expect(tmp_path, PC_128M + "colour: blue\n", "colour", "unknown key 'colour'")
    assert "did you mean" not in err.message


@pytest.mark.parametrize("extra, key, suggestion", [
    ("zones: {dma_limt: 16M}\n", "zones.dma_limt", "dma_limit"),
    ("debug: {slab: FZ}\n", "debug.slab", "slub"),
    ("debug: {panic_on_warning: true}\n", "debug.panic_on_warning", "panic_on_warn"),
])
def test_unknown_section_key_suggests(tmp_path, extra, key, suggestion):
    expect(tmp_path, PC_128M + extra, key, f"did you mean '{suggestion}'")


def test_unknown_memory_key(tmp_path):
    expect(tmp_path, "memory: {rma: [{start: 1M, end: 8M}]}\n", "memory.rma",
           "did you mean 'ram'")


def test_unknown_range_key(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{start: 0, ned: 1M}]\n", "memory.ram[0].ned",
           "did you mean 'end'")


def test_unknown_node_key(tmp_path):
    expect(tmp_path, PC_128M + "nodes: [{nid: 0, ram: [{start: 0, end: 128M}]}]\n",
           "nodes[0].nid", "unknown key 'nid'", "did you mean 'id'")


def test_section_not_a_mapping(tmp_path):
    expect(tmp_path, PC_128M + "zones: 16M\n", "zones", "must be a mapping")
    expect(tmp_path, "memory: 1G\n", "memory", "must be a mapping")
    expect(tmp_path, PC_128M + "debug:\n", "debug", "must be a mapping", "null")


def test_list_not_a_list(tmp_path):
    expect(tmp_path, "memory: {ram: {start: 0, end: 1M}}\n", "memory.ram", "must be a list")
    expect(tmp_path, PC_128M + "devices: uart0\n", "devices", "must be a list")


def test_name_not_a_string(tmp_path):
    expect(tmp_path, PC_128M + "name: 42\n", "name", "must be a string")


# ---------------------------------------------------------------------------
# Validation: sizes in context

def test_bad_size_suffix(tmp_path):
    expect(tmp_path, """\
        memory:
          ram:
            - {start: 0, end: 0x9fc00}
            - {start: 1M, end: 12Q}
        """, "memory.ram[1].end", "'12Q' is not a size", "K, M or G")


def test_negative_size(tmp_path):
    expect(tmp_path, PC_128M + "kernel: {initrd: -4M}\n", "kernel.initrd", "negative")
    expect(tmp_path, "memory:\n  ram: [{start: -1, end: 128M}]\n", "memory.ram[0].start",
           "negative")


@pytest.mark.parametrize("extra, key", [
    ("kernel: {image: {code: 0}}\n", "kernel.image.code"),
    ("vmalloc: 0\n", "vmalloc"),
    ("zones: {highmem: 0}\n", "zones.highmem"),
    ("zones: {dma_limit: 0}\n", "zones.dma_limit"),
    ("devices: [{name: u, model: uart16550, base: 0xfe000000, size: 0}]\n", "devices[0].size"),
])
def test_zero_size_where_not_allowed(tmp_path, extra, key):
    expect(tmp_path, PC_128M + extra, key, "must not be zero")


def test_zero_size_range(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{start: 1M, size: 0}]\n", "memory.ram[0].size",
           "must not be zero")


@pytest.mark.parametrize("extra, key", [
    ("vmalloc: 0x1000800\n", "vmalloc"),
    ("zones: {highmem: 0x800800}\n", "zones.highmem"),
    ("zones: {dma_limit: 0xfff000}\n", None),          # aligned: accepted
    ("zones: {dma_limit: 0xfff800}\n", "zones.dma_limit"),
    ("kernel: {load_address: 0x1000200}\n", "kernel.load_address"),
    ("devices: [{name: u, model: uart16550, base: 0xfe000800, size: 4K}]\n", "devices[0].base"),
    ("devices: [{name: u, model: uart16550, base: 0xfe000000, size: 100}]\n", "devices[0].size"),
])
def test_page_alignment(tmp_path, extra, key):
    path = write(tmp_path, PC_128M + extra)
    if key is None:
        load_config(path)
        return
    expect(tmp_path, PC_128M + extra, key, "is not page aligned")


def test_e820_ends_may_be_unaligned(tmp_path):
    cfg = load_config(write(tmp_path, """\
        memory:
          ram: [{start: 0x400, end: 0x9fc00}, {start: 1M, end: 0x7fffc00}]
        """))
    assert cfg.ram[1].end == 0x7FFFC00


def test_node_boundary_must_be_page_aligned(tmp_path):
    expect(tmp_path, PC_128M + textwrap.dedent("""\
        nodes:
          - {id: 0, ram: [{start: 0, end: 0x9fc00}, {start: 1M, end: 0x4000800}]}
          - {id: 1, ram: [{start: 0x4000800, end: 128M}]}
        """), "nodes[0].ram[1].end", "node boundary 0x4000800 is not page aligned")


def test_node_boundary_at_e820_end_may_be_unaligned(tmp_path):
    cfg = load_config(write(tmp_path, TWO_NODES))
    assert cfg.nodes[0].ram[0] == Range(0, 0x9FC00)


# ---------------------------------------------------------------------------
# Validation: the RAM map

def test_range_end_not_above_start(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{start: 8M, end: 4M}]\n", "memory.ram[0].end",
           "end 0x400000 is not above start 0x800000")


def test_range_end_and_size_both(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{start: 1M, end: 8M, size: 7M}]\n", "memory.ram[0]",
           "exactly one of end")


def test_range_without_start(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{end: 8M}]\n", "memory.ram[0].start",
           "missing required key 'start'")


def test_memory_needs_size_or_ram(tmp_path):
    expect(tmp_path, "memory: {reserved: [{start: 0, end: 1M}]}\n", "memory",
           "needs either size", "or ram")


def test_memory_size_and_ram_both(tmp_path):
    expect(tmp_path, "memory: {size: 1G, ram: [{start: 1M, end: 8M}]}\n", "memory.size",
           "not both")


def test_memory_ram_empty(tmp_path):
    expect(tmp_path, "memory: {ram: []}\n", "memory.ram", "must not be an empty list")


def test_overlapping_ram(tmp_path):
    expect(tmp_path, """\
        memory:
          ram:
            - {start: 0, end: 0x9fc00}
            - {start: 1M, end: 64M}
            - {start: 32M, end: 128M}
        """, "memory.ram[2]", "RAM [0x2000000, 0x8000000) overlaps memory.ram[1]")


def test_ram_overlapping_reserved(tmp_path):
    expect(tmp_path, PC_128M.replace("{start: 0xf0000, end: 1M}", "{start: 0xf0000, end: 2M}"),
           "memory.reserved[1]", "reserved range [0xf0000, 0x200000) overlaps RAM "
           "memory.ram[1] [0x100000, 0x8000000)")


def test_ram_above_4g_is_listed_and_left_unused(tmp_path):
    # The non-PAE kernel keeps it in the e820 map and out of memblock.
    cfg = load_config(write(tmp_path, """\
        memory:
          ram:
            - {start: 1M, end: 3G}
            - {start: 4G, end: 5G}
        pae: false
        """))
    layout = check_layout(cfg)
    assert cfg.ram[-1] == Range(4 * GiB, 5 * GiB)
    assert max(e for _, _, e in layout.memory) == 3 * GiB >> 12
    assert layout.memblock == layout.memory


def test_ram_above_4g_is_used_by_the_pae_kernel(tmp_path):
    cfg = load_config(write(tmp_path, """\
        memory:
          ram:
            - {start: 1M, end: 3G}
            - {start: 4G, end: 5G}
        pae: true
        """))
    layout = check_layout(cfg)
    assert max(e for _, _, e in layout.memory) == 5 * GiB >> 12


def test_ram_only_above_4g_is_refused(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{start: 4G, size: 2G}]\n", "memory",
           "no usable RAM below 4 GiB")


def test_ram_above_64g_even_with_pae(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{start: 1M, end: 3G}, {start: 4G, end: 65G}]\n"
           "pae: true\n", "memory.ram[1].end", "beyond 64G")


def test_reserved_above_4g(tmp_path):
    expect(tmp_path, PC_128M + "    - {start: 0xfffc0000, end: 0x100001000}\n",
           "memory.reserved[2].end", "beyond the 4 GiB physical address space")


def test_memory_size_at_3_5g_splits_like_qemu(tmp_path):
    cfg = load_config(write(tmp_path, "memory: {size: 3584M}\n"))
    assert [r for r in cfg.ram if r.start >= 4 * GiB] == [Range(4 * GiB, 4 * GiB + 512 * MiB)]
    assert is_qemu_pc(cfg) == (True, "QEMU pc, -m 3584M")


def test_memory_size_too_small(tmp_path):
    expect(tmp_path, "memory: {size: 1M}\n", "memory.size", "more than")


def test_pae_true_boots_the_686_pae_flavour(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M + "pae: true\n"))
    assert cfg.pae is True
    assert load_config(write(tmp_path, PC_128M)).pae is False


def test_a_config_without_pae_boots_686_pae_unless_mmemu_kernel_says(tmp_path, monkeypatch):
    """The default flavour is Debian's most common i386 kernel, 686-pae;
    $MMEMU_KERNEL picks either for configs that do not name theirs."""
    path = write(tmp_path, PC_128M)
    monkeypatch.delenv("MMEMU_KERNEL", raising=False)
    assert load_config(path).pae is True
    monkeypatch.setenv("MMEMU_KERNEL", "686")
    assert load_config(path).pae is False
    assert load_config(write(tmp_path, PC_128M + "pae: true\n", "named.yaml")).pae is True
    monkeypatch.setenv("MMEMU_KERNEL", "686-pea")
    with pytest.raises(ConfigError, match="did you mean '686-pae'"):
        load_config(path)


def test_memory_size_above_3_5g_with_pae_puts_ram_above_4g(tmp_path):
    cfg = load_config(write(tmp_path, "memory: {size: 6G}\npae: true\n"))
    assert cfg.ram[-1] == Range(1 << 32, (1 << 32) + (3 << 30))
    ok, why = is_qemu_pc(cfg)
    assert ok and why == "QEMU pc, -m 6G"


def test_pae_not_a_boolean(tmp_path):
    expect(tmp_path, PC_128M + "pae: maybe\n", "pae", "must be true or false")


def test_no_page_frames_after_trimming(tmp_path):
    cfg = MachineConfig(name="tiny", path="tiny.yaml", ram=[Range(0, 0x1000)],
                        reserved=[], nodes=[NodeConfig(0, [Range(0, 0x1000)], [10])])
    with pytest.raises(ConfigError, match="no whole usable page frame") as info:
        check_layout(cfg)
    assert info.value.key == "memory.ram"


def test_kernel_image_outside_ram(tmp_path):
    expect(tmp_path, "memory:\n  ram: [{start: 1M, end: 24M}]\n", "kernel",
           "[0x1000000, 0x1ef6000) is not inside one usable RAM range")


def test_kernel_image_too_small_for_its_sections(tmp_path):
    expect(tmp_path, PC_128M + "kernel: {image: {code: 8M, reserved: 4M}}\n", "kernel.image",
           "reserved 4096K is too small for the sections")


def test_kernel_load_address_in_the_first_mib(tmp_path):
    expect(tmp_path, PC_128M + "kernel: {load_address: 512K}\n", "kernel.load_address",
           "inside the first MiB")


def test_kernel_image_beyond_lowmem(tmp_path):
    expect(tmp_path, PC_128M + "kernel: {load_address: 80M}\nzones: {highmem: 60M}\n",
           "kernel.image", "beyond the end of lowmem")


def test_old_kernel_image_key_says_what_replaced_it(tmp_path):
    expect(tmp_path, PC_128M + "kernel_image: 4M\n", "kernel_image",
           "replaced by the kernel section")


def test_transparent_hugepage_values(tmp_path):
    expect(tmp_path, PC_128M + "transparent_hugepage: alway\n", "transparent_hugepage",
           "did you mean 'always'")


# ---------------------------------------------------------------------------
# Validation: devices

def device(base="0xfe000000", size="4K", model="uart16550", name="u0", extra=""):
    return f"  - {{name: {name}, model: {model}, base: {base}, size: {size}{extra}}}\n"


def test_device_options_collected(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M + "devices:\n" + device(
        model="framebuffer", size="2M", extra=", width: 320, height: 200, format: rgb565")))
    assert cfg.devices[0].options == {"width": 320, "height": 200, "format": "rgb565"}


def test_device_overlapping_ram(tmp_path):
    expect(tmp_path, PC_128M + "devices:\n" + device(base="64M"), "devices[0].base",
           "device window [0x4000000, 0x4001000) overlaps RAM memory.ram[1]")


def test_device_overlapping_device(tmp_path):
    expect(tmp_path, PC_128M + "devices:\n" + device(size="8K") +
           device(base="0xfe001000", name="u1"),
           "devices[1].base", "overlaps device devices[0]")


def test_device_overlapping_reserved(tmp_path):
    expect(tmp_path, "memory: {size: 1G}\ndevices:\n" + device(base="0xfffff000"),
           "devices[0].base", "overlaps reserved range memory.size [0xfffc0000, 0x100000000)")


def test_device_past_4g(tmp_path):
    expect(tmp_path, PC_128M + "devices:\n" + device(base="0xfffff000", size="8K"),
           "devices[0].size", "runs past the 4 GiB")


def test_device_unknown_model_suggests(tmp_path):
    expect(tmp_path, PC_128M + "devices:\n" + device(model="uart16450"), "devices[0].model",
           "unknown device model 'uart16450'", "did you mean 'uart16550'",
           "framebuffer, regs, uart16550")


def test_device_models_registry_is_read_at_load_time(tmp_path):
    path = write(tmp_path, PC_128M + "devices:\n" + device(model="mydev"))
    with pytest.raises(ConfigError, match="unknown device model"):
        load_config(path)
    DEVICE_MODELS.add("mydev")                  # a user model registered later
    try:
        assert load_config(path).devices[0].model == "mydev"
    finally:
        DEVICE_MODELS.discard("mydev")


def test_device_missing_key_points_at_typo(tmp_path):
    expect(tmp_path, PC_128M + "devices:\n  - {name: u, model: regs, bsae: 0xfe000000, "
           "size: 4K}\n", "devices[0].base", "missing required key 'base'",
           "'bsae' looks like a misspelling")


def test_device_duplicate_name(tmp_path):
    expect(tmp_path, PC_128M + "devices:\n" + device() + device(base="0xfe001000"),
           "devices[1].name", "duplicate device name 'u0'")


# ---------------------------------------------------------------------------
# Validation: NUMA nodes

def test_two_nodes_accepted(tmp_path):
    cfg = load_config(write(tmp_path, TWO_NODES))
    assert [n.distance for n in cfg.nodes] == [[10, 20], [20, 10]]


def test_nodes_missing_ram(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{start: 64M, end: 128M}", "{start: 64M, end: 96M}"),
           "nodes", "RAM [0x6000000, 0x8000000) is in no node")


def test_nodes_extra_ram(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{start: 64M, end: 128M}", "{start: 64M, end: 256M}"),
           "nodes[1].ram[0]", "[0x8000000, 0x10000000) is not usable RAM")


def test_nodes_overlap(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{start: 64M, end: 128M}", "{start: 32M, end: 128M}"),
           "nodes[1].ram[0]", "overlaps nodes[0].ram[1]")


def test_nodes_duplicate_id(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{id: 1,", "{id: 0,"), "nodes[1].id",
           "duplicate node id 0 (also nodes[0].id)")


def test_nodes_id_out_of_range(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{id: 1,", "{id: 3,"), "nodes[1].id",
           "node id 3 is out of range", "ids 0..1")


def test_nodes_id_not_a_number(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{id: 1,", "{id: one,"), "nodes[1].id",
           "must be a node id")


def test_nodes_distance_wrong_shape(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{start: 64M, end: 128M}]", "{start: 64M, end: 128M}], "
                                       "distance: [20, 10, 20]"),
           "nodes[1].distance", "has 3 entries; with 2 nodes it needs 2")


def test_nodes_local_distance_not_10(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{start: 64M, end: 128M}]", "{start: 64M, end: 128M}], "
                                       "distance: [20, 12]"),
           "nodes[1].distance[1]", "local distance (node 1 to itself) must be 10, not 12")


def test_nodes_remote_distance_not_above_local(tmp_path):
    expect(tmp_path, TWO_NODES.replace("{start: 64M, end: 128M}]", "{start: 64M, end: 128M}], "
                                       "distance: [10, 10]"),
           "nodes[1].distance[0]", "distance to node 0 must be above the local 10")


def test_nodes_empty_list(tmp_path):
    expect(tmp_path, PC_128M + "nodes: []\n", "nodes", "must not be an empty list")


# ---------------------------------------------------------------------------
# Validation: zones and boot options

def test_dma_limit_beyond_end_of_ram(tmp_path):
    expect(tmp_path, PC_128M + "zones: {dma_limit: 256M}\n", "zones.dma_limit",
           "ZONE_DMA's end 0x10000000 is beyond the end of RAM 0x8000000")


def test_dma_limit_beyond_lowmem(tmp_path):
    expect(tmp_path, PC_128M + "zones: {dma_limit: 100M, highmem: 60M}\n", "zones.dma_limit",
           "beyond the end of lowmem 0x4400000")


def test_highmem_not_less_than_ram(tmp_path):
    expect(tmp_path, PC_128M + "zones: {highmem: 128M}\n", "zones.highmem",
           "highmem 128M is not less than the RAM")


def test_highmem_not_less_than_ram_above_maxmem(tmp_path):
    expect(tmp_path, "memory: {size: 2G}\nzones: {highmem: 2G}\n", "zones.highmem",
           "highmem 2G is not less than the RAM")


def test_highmem_leaves_too_little_lowmem(tmp_path):
    expect(tmp_path, PC_128M + "zones: {highmem: 96M}\n", "zones.highmem",
           "leaves 32 MiB of lowmem", "at least 64 MiB")


def test_highmem_forced_split_accepted(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M + "zones: {highmem: 64M}\n"))
    assert compute_layout(cfg).max_low_pfn == (64 * MiB) >> 12


def test_vmalloc_too_small(tmp_path):
    expect(tmp_path, PC_128M + "vmalloc: 8M\n", "vmalloc", "too small", "at least 16M")


def test_vmalloc_too_large(tmp_path):
    expect(tmp_path, PC_128M + "vmalloc: 960M\n", "vmalloc",
           "leaves only 35 MiB for lowmem", "at most 931 MiB")


def test_vmalloc_largest_allowed(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M + "vmalloc: 931M\n"))
    assert compute_layout(cfg).maxmem >= 64 * MiB


@pytest.mark.parametrize("value", ["2M", "4", "big", "true"])
def test_direct_map_not_4m_or_4k(tmp_path, value):
    expect(tmp_path, PC_128M + f"direct_map: {value}\n", "direct_map", "must be 4M", "or 4K")


def test_direct_map_accepts_byte_count(tmp_path):
    assert load_config(write(tmp_path, PC_128M + "direct_map: 4096\n")).direct_map == "4K"


def test_kernelcore_and_movablecore_both(tmp_path):
    # 90% of RAM for the kernel and 32 MiB movable do not fit in 128 MiB.
    expect(tmp_path, PC_128M + "kernelcore: 90%\nmovablecore: 32M\n", "kernelcore",
           "kernelcore and movablecore are both given and disagree")


@pytest.mark.parametrize("key, value, message", [
    ("kernelcore", "lots", "'lots' is not a size"),
    ("kernelcore", "150%", "more than 100%"),
    ("movablecore", "1.5%", "not a percentage"),
    ("movablecore", "0", "must not be zero"),
    ("movablecore", "[1]", "is not a size"),
])
def test_core_option_not_a_size_or_percent(tmp_path, key, value, message):
    expect(tmp_path, PC_128M + f"{key}: {value}\n", key, message)


def test_kernelcore_percent_accepted(tmp_path):
    assert load_config(write(tmp_path, PC_128M + "kernelcore: 25%\n")).kernelcore == "25%"


def test_movablecore_larger_than_highest_zone(tmp_path):
    expect(tmp_path, "memory: {size: 1G}\nmovablecore: 256M\n", "movablecore",
           "movablecore 256M (65536 pages) is more than the highest populated zone, "
           "HighMem, holds (37858 pages)")


def test_movablecore_percent_larger_than_highest_zone(tmp_path):
    expect(tmp_path, "memory: {size: 1G}\nmovablecore: 20%\n", "movablecore", "HighMem")


def test_movablecore_in_normal_when_no_highmem(tmp_path):
    expect(tmp_path, PC_128M + "movablecore: 125M\n", "movablecore", "Normal")
    assert load_config(write(tmp_path, PC_128M + "movablecore: 64M\n")).movablecore == "64M"


def test_min_free_kbytes_not_a_number(tmp_path):
    expect(tmp_path, PC_128M + "min_free_kbytes: 2M\n", "min_free_kbytes",
           "must be a whole number of kilobytes")
    expect(tmp_path, PC_128M + "min_free_kbytes: 0\n", "min_free_kbytes", "at least 1")


def test_min_free_kbytes_more_than_lowmem(tmp_path):
    expect(tmp_path, PC_128M + "min_free_kbytes: 200000\n", "min_free_kbytes",
           "not less than the")


# ---------------------------------------------------------------------------
# Validation: debug options

def test_debug_vm_not_boolean(tmp_path):
    expect(tmp_path, PC_128M + "debug: {vm: 1}\n", "debug.vm", "must be true or false")


def test_slub_debug_unknown_flag(tmp_path):
    expect(tmp_path, PC_128M + "debug: {slub: FZQ}\n", "debug.slub",
           "unknown slub_debug flag 'Q'")


def test_slub_debug_true_means_default_flags(tmp_path):
    cfg = load_config(write(tmp_path, PC_128M + "debug: {slub: true}\n"))
    assert cfg.slub_debug == "FZPU"


def test_slub_debug_blocks(tmp_path):
    text = "FZ,kmalloc-64;P,kmalloc-128"
    cfg = load_config(write(tmp_path, PC_128M + f"debug: {{slub: '{text}'}}\n"))
    assert cfg.slub_debug == text


def test_small_machine_keeps_default_dma_limit(tmp_path):
    """Linux's 16 MiB ZONE_DMA on an 8 MiB machine: all RAM is DMA, nothing refused."""
    cfg = load_config(write(tmp_path, "memory:\n  ram: [{start: 0, end: 0x9fc00}, "
                            "{start: 1M, end: 8M}]\n" + SMALL_KERNEL))
    layout = check_layout(cfg)
    assert [z.name for z in layout.zones if z.present_pages] == ["DMA"]
