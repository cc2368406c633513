"""The hostile corpus, machine configs: each bad file is one line naming the
file and the key, exit status 2, no traceback, and (for the ones built to
blow up host memory) a small peak of host memory.
"""
import pytest

PEAK_LIMIT_KIB = 64 * 1024           # what a refused file may cost: mmemu's start-up is ~20 MiB


def laughs(levels=8, width=9):
    """A billion-laughs YAML: `description:` nests aliases width**levels wide."""
    rows = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghij"[:levels - 1]:
        rows.append(f"&{name} [" + ",".join([f"*{prev}"] * width) + "]")
        prev = name
    return "memory: {size: 64M}\ndescription: [" + ", ".join(rows) + "]\n"


def nodes(n):
    """n NUMA nodes splitting 1 GiB of RAM."""
    size = (1 << 30) // n
    lines = ["memory: {ram: [{start: 0, end: 0x9fc00}, {start: 1M, end: 1G}]}", "nodes:"]
    for i in range(n):
        if i == 0:
            ram = f"[{{start: 0, end: 0x9fc00}}, {{start: 1M, end: {size}}}]"
        else:
            ram = f"[{{start: {i * size}, end: {(i + 1) * size}}}]"
        lines.append(f"  - {{id: {i}, ram: {ram}}}")
    return "\n".join(lines) + "\n"


DEVICE = "memory: {{size: 64M}}\ndevices:\n  - {{{}}}\n"

CASES = [
    # (id, file text, the one line's tail)
    ("alias-bomb", laughs(),
     "refused at line 2, column "),
    ("alias-merge-key", "memory: &m {size: 64M}\nzones: {<<: *m}\n",
     "YAML alias *m: aliases are not allowed in a config; write the value out"),
    ("huge-file", "memory: {size: 64M}\ndescription: \"" + "x" * (100 << 10) + "\"\n",
     "bytes is not a config (at most 64 KiB of YAML)"),
    ("long-key", "memory: {size: 64M}\n" + "k" * 1000 + ": 1\n",
     "unknown key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'"),
    ("long-list-value", "memory: {size: 64M}\ndescription: [" + ",".join(["1"] * 5000) + "]\n",
     "description: must be a string, not a list ([1, 1, 1, 1, ...])"),
    ("32-nodes", nodes(32),
     "nodes: 32 nodes; 6.1 i386 encodes at most 8 in page->flags (NODES_SHIFT 3, "
     "CONFIG_NUMA's default on X86_32)"),
    ("200-e820-ranges", "memory:\n  ram:\n" + "".join(
        f"    - {{start: {i * 0x10000}, size: 0x8000}}\n" for i in range(200)),
     "memory.ram: 200 ranges; an e820 map holds at most 128 (E820_MAX_ENTRIES_ZEROPAGE)"),
    ("fb-width-abc", DEVICE.format("name: fb0, model: framebuffer, base: 0xfd000000, size: 2M, "
                                   "width: abc, height: 480"),
     "devices[0].width: must be a width in pixels, not 'abc'"),
    ("fb-height-zero", DEVICE.format("name: fb0, model: framebuffer, base: 0xfd000000, "
                                     "size: 2M, height: 0"),
     "devices[0].height: 0 is out of range: a height in pixels from 1 to 16384"),
    ("regs-init-outside", DEVICE.format("name: r0, model: regs, base: 0xfe001000, size: 4K, "
                                        "init: {0x2000: 5}"),
     "devices[0].init: offset 8192 is not a register of the window "
     "(multiples of 4 below 0x1000)"),
    ("regs-init-not-a-map", DEVICE.format("name: r0, model: regs, base: 0xfe001000, size: 4K, "
                                          "init: [1, 2]"),
     "devices[0].init: must be a mapping of register offsets to values"),
    ("uart-reg-shift", DEVICE.format("name: u0, model: uart16550, base: 0xfe000000, size: 4K, "
                                     "reg_shift: -5"),
     "devices[0].reg_shift: -5 is out of range: a register spacing shift from 0 to 2"),
    ("not-yaml", "this is: not: yaml: [\n",
     "YAML syntax error at line 1, column 13: mapping values are not allowed here"),
    ("binary", None, "not a UTF-8 text file"),
]


@pytest.mark.parametrize("text,tail", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_config_is_one_line_and_status_2(text, tail, tmp_path, mmemu_cli):
    path = tmp_path / "bad.yaml"
    if text is None:
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    else:
        path.write_text(text)
    r = mmemu_cli("info", "--config", path)
    assert r.status == 2, r.err
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith(f"mmemu: {path}: "), r.err
    assert tail in r.err_lines[0]
    assert len(r.err_lines[0]) < 400
    assert "Traceback" not in r.err
    assert r.peak_kib < PEAK_LIMIT_KIB


def test_the_alias_bomb_costs_no_memory(tmp_path, mmemu_cli):
    # 9**8 = 43 million strings if expanded: gigabytes; refused where read
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs(levels=8))
    r = mmemu_cli("info", "--config", path)
    assert r.status == 2 and "aliases are not allowed" in r.err
    assert r.peak_kib < PEAK_LIMIT_KIB


def test_ram_ending_exactly_at_4_gib_is_one_line(tmp_path, mmemu_cli):
    # the 686 kernel's e820__memblock_setup() skips an entry whose end does
    # not fit a 32-bit phys_addr_t: refused, in one line, with that reason
    path = tmp_path / "r4g.yaml"
    path.write_text("memory: {ram: [{start: 0, end: 0x9fc00}, {start: 1M, end: 4G}]}\n")
    r = mmemu_cli("info", "--config", path)
    assert r.status == 2 and len(r.err_lines) == 1, r.err
    assert ("memory.ram: [0x100000, 0x100000000) ends at or beyond 4 GiB: the 686 kernel "
            "(32-bit phys_addr_t) skips such a range whole") in r.err


def test_ram_up_to_the_last_page_below_4_gib_runs_a_guest(tmp_path, mmemu_cli):
    path = tmp_path / "r4gm.yaml"
    path.write_text("memory: {ram: [{start: 0, end: 0x9fc00}, {start: 1M, end: 0xfffff000}]}\n")
    r = mmemu_cli("run", "tests/hostile/guest/printk_bad_pointers.c", "--config", path, "-q")
    assert r.status == 0, r.err
    assert "null=[(null)]" in r.out


def test_a_device_window_over_ram_is_one_line(tmp_path, mmemu_cli):
    path = tmp_path / "r4gdev.yaml"
    path.write_text("memory: {ram: [{start: 0, end: 0x9fc00}, {start: 1M, end: 0xfffff000}]}\n"
                    "devices:\n  - {name: uart0, model: uart16550, base: 0xfe000000, size: 4K}\n")
    r = mmemu_cli("info", "--config", path)
    assert r.status == 2 and len(r.err_lines) == 1
    assert "devices[0].base: device window [0xfe000000, 0xfe001000) overlaps RAM" in r.err
