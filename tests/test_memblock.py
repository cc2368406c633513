"""mm/memblock.py and the boot's reservations (arch/x86/setup.py, init/main.py).

The reservations are checked against the reference kernel's own, read off a
real boot of qemu-pc-1g with memblock=debug (tests/fixtures/oracle/qemu-pc-1g,
docs/reference-6.1-686.md, section 4).
"""
from pathlib import Path

import pytest

from mmemu.errors import MmemuError
from mmemu.layout import PAGE_SIZE
from mmemu.machine import Machine
from mmemu.mm.memblock import Memblock
from mmemu.oracle.capture import load_capture
from mmemu.oracle.compare import in_ram
from mmemu.oracle.parse import parse_memblock, real_report

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"

pytestmark = pytest.mark.flavours


def _mb(limit=0x100000):
    mb = Memblock(current_limit=limit)
    mb.add_node(0x1000, limit - 0x1000, 0)
    return mb


def test_memblock_alloc_top_down_first_fit():
    mb = _mb()
    assert mb.alloc_try_nid(PAGE_SIZE, PAGE_SIZE, caller="a") == 0x100000 - PAGE_SIZE
    assert mb.alloc_try_nid(64, 64, caller="b") == 0x100000 - PAGE_SIZE - 64
    # a bigger alignment leaves a hole above it, which later small ones fill
    assert mb.alloc_try_nid(PAGE_SIZE, PAGE_SIZE, caller="c") == 0x100000 - 3 * PAGE_SIZE
    assert mb.alloc_try_nid(32, 64, caller="d") == 0x100000 - PAGE_SIZE - 128


def test_memblock_alloc_respects_min_and_max_addr():
    mb = _mb()
    assert mb.phys_alloc_range(PAGE_SIZE, PAGE_SIZE, 0, 0x20000, "low") == 0x1F000
    assert mb.alloc_try_nid(PAGE_SIZE, PAGE_SIZE, min_addr=0xF0000, caller="x") == 0xFF000
    # a goal that cannot be met is dropped (memblock_alloc_range_nid() retries)
    assert mb.alloc_try_nid(0x10000, PAGE_SIZE, min_addr=0xFF000, caller="y") == 0xEF000


def test_memblock_alloc_skips_reserved_and_fails_cleanly():
    mb = Memblock(current_limit=0x20000)
    mb.add_node(0x1000, 0x1f000, 0)
    mb.reserve(0x10000, 0x10000, "test", "held")
    assert mb.alloc(0x8000, PAGE_SIZE, "a") == 0x8000
    with pytest.raises(MmemuError, match="cannot allocate 0x8000 bytes"):
        mb.alloc(0x8000, PAGE_SIZE, "b")


def test_memblock_free_ranges_merge_overlapping_reservations():
    mb = _mb()
    mb.reserve(0x4000, 0x2000, "t", "x")
    mb.reserve(0x5000, 0x2000, "t", "y")
    assert mb.free_ranges() == [(0, 0x1000, 0x4000), (0, 0x7000, 0x100000)]
    assert mb.reserved_ranges() == [(0x4000, 0x7000)]
    mb.phys_free(0x4000, 0x1000, "t")
    assert mb.free_ranges() == [(0, 0x1000, 0x5000), (0, 0x7000, 0x100000)]


def test_memblock_debug_lines_are_the_kernels():
    lines = []
    mb = Memblock(current_limit=0x100000, debug=True, printk=lines.append)
    mb.add_node(0x1000, 0x9EC00, 0, "e820__memblock_setup")
    mb.alloc_try_nid(4, nid=0, caller="setup_usemap")
    mb.free(0x50000, 0)
    assert lines == [
        "memblock_add: [0x00001000-0x0009fbff] e820__memblock_setup",
        "memblock_alloc_try_nid: 4 bytes align=0x40 nid=0 from=0x00000000 "
        "max_addr=0x00000000 setup_usemap",
        "memblock_reserve: [0x0009fbc0-0x0009fbc3] memblock_alloc_range_nid",
        "memblock_phys_free: [0x00050000-0x0004ffff] memblock_free"]
    assert [(e.op, e.caller) for e in mb.events] == [
        ("add", "e820__memblock_setup"), ("alloc", "setup_usemap"), ("free", "memblock_free")]


def test_boot_reservations_are_the_reference_kernels_one_by_one():
    # Every memblock call on RAM the real 6.1 686 kernel logged booting
    # qemu-pc-1g, with its size, alignment, caller and placement.
    real = real_report(load_capture(FIXTURES / "qemu-pc-1g"))
    mine = parse_memblock(_boot_log("qemu-pc-1g"))
    memory = [(o.base, o.end) for o in real.memblock if o.op in ("add", "memory")]
    want = [o.text() for o in real.memblock if in_ram(o, memory)]
    assert [o.text() for o in mine if in_ram(o, memory)] == want
    assert len(want) == 51


def test_kernel_image_reserved_at_16_mib_with_its_brk():
    m = Machine("qemu-pc-1g", echo=False)
    image = m.kernel_image
    assert (image.text, image.end_of_kernel_reserve, image.brk_end) == (
        0x1000000, 0x1EE6000, 0x1EF6000)
    assert (0x1000000, 0x1EF6000) in m.memblock.reserved_ranges()     # merged with .brk
    # what the boot freed again is managed: the init sections, the SMP alternatives
    for phys in (image.init_begin, image.smp_locks):
        assert not m.mm.u32[m.mem_map.page_word(phys >> 12)] >> 12 & 1     # not PG_reserved
    assert m.mm.u32[m.mem_map.page_word(image.text >> 12)] >> 12 & 1


def test_small_machine_boots_its_own_small_kernel():
    m = Machine("pc-16m", echo=False)
    assert m.kernel_image.text == 1 << 20 and m.boot.initrd is None
    assert not any("RAMDISK" in line for line in _boot_log(m))


def _boot_log(machine):
    from mmemu.views.dmesg import boot_log
    import dataclasses
    if isinstance(machine, str):
        from mmemu.config import load_config
        cfg = load_config(machine)
        cfg = dataclasses.replace(cfg, kernel=dataclasses.replace(
            cfg.kernel, cmdline="console=ttyS0 nokaslr memblock=debug quiet panic=-1"))
        machine = Machine(cfg, echo=False)
    return boot_log(machine)
