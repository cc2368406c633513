"""The machine: boot every shipped config, page tables checked against
Unicorn's own MMU, guest memory by virtual address, embedding."""
import random

import pytest
from unicorn import Uc, UC_ARCH_X86, UC_MODE_32, UC_HOOK_CODE

from mmemu.arch.x86.pgtable import PG_LEVEL_4K, PG_LEVEL_4M, __PAGE_KERNEL_RO
from mmemu.config import list_configs
from mmemu.errors import MmemuError
from mmemu.layout import PAGE_OFFSET, PAGE_SIZE, PKMAP_BASE, FIXADDR_TOP
from mmemu.machine import Machine

pytestmark = pytest.mark.flavours

SMALL = ["pc-16m", "pc-128m", "pc-1g", "numa-2n"]


@pytest.fixture(scope="module")
def pc1g(kernel_flavour):
    return Machine("pc-1g", echo=False)


@pytest.mark.parametrize("name", list_configs())
def test_every_shipped_config_boots_with_paging_on(name):
    m = Machine(name, echo=False)
    assert m.engine.reg("cr0") & 0x80010001 == 0x80010001       # PE, WP, PG
    assert m.engine.reg("cr4") & 0x10                            # PSE
    assert m.engine.reg("cr3") == m.pgtable.pgd
    m.check()


def sample_addresses(m, rng):
    lay = m.layout
    regions = [(0, PAGE_SIZE), (PAGE_SIZE, PAGE_OFFSET), (PAGE_OFFSET, lay.high_memory),
               (lay.high_memory, lay.vmalloc_start), (lay.vmalloc_start, lay.vmalloc_end),
               (PKMAP_BASE, PKMAP_BASE + 0x400000), (lay.fixaddr_start, FIXADDR_TOP)]
    out = [PAGE_OFFSET, lay.high_memory - 1, lay.high_memory, PAGE_OFFSET - 1, FIXADDR_TOP]
    for lo, hi in regions:
        out += [rng.randrange(lo, hi) for _ in range(40)]
    return out


@pytest.mark.parametrize("name", SMALL + ["pc-4g"])
def test_walker_agrees_with_unicorn_mmu(name):
    m = Machine(name, echo=False)
    rng = random.Random(name)
    for va in sample_addresses(m, rng):
        assert m.pgtable.translate(va) == m.engine.translate(va), hex(va)


def test_direct_map_covers_lowmem_with_large_pages_where_linux_does(pc1g):
    lay, image = pc1g.layout, pc1g.kernel_image
    # the first 4 MiB, the block where the kernel's rodata ends (mark_rodata_ro()
    # split it) and the partial last block use 4 KiB PTEs; the kernel's text
    # is a read-only 4 MiB page
    assert pc1g.pgtable.walk(PAGE_OFFSET + 0x100000).level == PG_LEVEL_4K
    text = pc1g.pgtable.walk(PAGE_OFFSET + image.text)
    assert (text.level, text.flags) == (PG_LEVEL_4M, 0x1E1)
    end_ro = pc1g.pgtable.walk(PAGE_OFFSET + image.end_rodata - PAGE_SIZE)
    data = pc1g.pgtable.walk(PAGE_OFFSET + image.sdata)
    assert (end_ro.level, end_ro.flags & 2, data.level, data.flags & 2) == \
        (PG_LEVEL_4K, 0, PG_LEVEL_4K, 2)
    assert pc1g.pgtable.walk(PAGE_OFFSET + (64 << 20)).level == PG_LEVEL_4M
    assert pc1g.pgtable.walk(lay.high_memory - PAGE_SIZE).level == PG_LEVEL_4K
    assert pc1g.pgtable.walk(lay.high_memory).phys is None
    w = pc1g.pgtable.walk(PAGE_OFFSET + (64 << 20) + 0x1234)
    # __PAGE_KERNEL_LARGE: 4 MiB pages on 686, 2 MiB pages and NX on 686-pae
    assert w.phys == (64 << 20) + 0x1234 and w.flags == pc1g.pgtable.flavour.PAGE_KERNEL_LARGE


def test_direct_map_with_4k_pages_only():
    from mmemu.config import load_config
    cfg = load_config("pc-128m")
    cfg.direct_map = "4K"
    m = Machine(cfg, echo=False)
    assert m.pgtable.walk(PAGE_OFFSET + (64 << 20)).level == PG_LEVEL_4K
    assert m.pgtable.translate(PAGE_OFFSET + (64 << 20)) == m.engine.translate(PAGE_OFFSET + (64 << 20))


def test_nothing_mapped_below_page_offset(pc1g):
    for va in (0, 0x1000, 0x08048000, 0xBFFFF000):
        assert pc1g.virt_to_phys(va) is None
        assert pc1g.engine.translate(va) is None


def test_pkmap_and_fixmap_tables_are_preallocated(pc1g):
    pkmap = pc1g.layout.pkmap_base
    assert pc1g.pgtable.pte_slot(pkmap) is not None
    assert pc1g.pgtable.pte_slot(pc1g.layout.fixaddr_start) is not None
    assert pc1g.pgtable.translate(pkmap) is None


def test_read_write_by_virtual_address(pc1g):
    va = PAGE_OFFSET + (100 << 20)
    pc1g.write(va + PAGE_SIZE - 2, b"abcd")             # crosses a page boundary
    assert pc1g.read(va + PAGE_SIZE - 2, 4) == b"abcd"
    assert pc1g.pm.read((100 << 20) + PAGE_SIZE - 2, 4) == b"abcd"
    with pytest.raises(MmemuError, match="not mapped"):
        pc1g.read(0x1000, 4)


def test_loaded_text_is_read_only(tmp_path):
    m = Machine("pc-16m", echo=False)
    img = m.load("guest/examples/hello.c")
    w = m.pgtable.walk(img.text[0])
    # read-only and executable: 0x161 on both flavours (PAGE_KERNEL_RX on 686-pae)
    assert w.level == PG_LEVEL_4K and w.flags == __PAGE_KERNEL_RO
    data = m.pgtable.walk(img.lookup("init_stack"))     # .bss (below it: the guard page)
    assert data.level == PG_LEVEL_4K and data.flags & 0x2
    assert data.flags & (1 << 63) == m.pgtable.flavour._PAGE_NX       # NX data on 686-pae


def test_two_machines_in_one_process_do_not_interfere():
    a = Machine("pc-16m", echo=False)
    b = Machine("pc-16m", echo=False)
    a.write(PAGE_OFFSET + (8 << 20), b"A")
    b.write(PAGE_OFFSET + (8 << 20), b"B")
    assert a.read(PAGE_OFFSET + (8 << 20), 1) == b"A"
    ra = a.run("guest/examples/hello.c")
    rb = b.run("guest/examples/hello.c")
    assert ra.status == rb.status == 0
    assert ra.console == rb.console


def test_embedding_on_callers_uc_keeps_callers_hooks():
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    seen = []
    uc.hook_add(UC_HOOK_CODE, lambda uc_, addr, size, ud: seen.append(addr), None, 0xC0100000, 0xC0200000)
    m = Machine("pc-16m", uc=uc, echo=False)
    assert m.engine.uc is uc
    r = m.run("guest/examples/hello.c")
    assert r.status == 0 and "Hello" in r.console
    assert m.image.entry in seen and m.image.lookup("main") in seen
    eng = m.engine
    m.close()
    assert eng._hooks == [] and eng._raw_hooks == [] and eng._mapped == []
    assert list(uc.mem_regions()) == []
