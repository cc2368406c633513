"""Layout arithmetic against Linux 6.1 i386 (the reference kernel of DESIGN.md)."""
import pytest

from mmemu.config import MachineConfig, NodeConfig, Range, MiB, GiB
from mmemu import layout as L

pytestmark = pytest.mark.flavours


def qemu_pc(size, **kw):
    """QEMU pc's e820 for a RAM size (what the BIOS hands a real kernel)."""
    ram = [Range(0, 0x9FC00), Range(0x100000, size - 0x20000)]
    reserved = [Range(0x9FC00, 0xA0000), Range(0xF0000, 0x100000),
                Range(size - 0x20000, size), Range(0xFFFC0000, 1 << 32)]
    return MachineConfig(name=f"qemu-pc-{size >> 20}m", path="<test>", ram=ram,
                         reserved=reserved, nodes=[NodeConfig(0, ram)], **kw)


def test_fixed_addresses_match_the_reference_kernel():
    # Read from a real 6.1.176 686 kernel's page tables (DESIGN.md).
    assert L.PKMAP_BASE == 0xFEC00000
    assert L.VMALLOC_END == 0xFEBFE000
    assert L.FIXADDR_TOP == 0xFFFFF000
    assert L.LDT_BASE_ADDR < L.CPU_ENTRY_AREA_BASE < L.FIXADDR_TOT_START < L.FIXADDR_START
    assert L.PKMAP_BASE + L.LAST_PKMAP * L.PAGE_SIZE <= L.LDT_BASE_ADDR


def test_compute_layout_1g_matches_reference():
    lay = L.compute_layout(qemu_pc(1 * GiB))
    assert lay.maxmem == 0x36BFE000                      # 875 MiB
    assert lay.max_low_pfn == 0x36BFE
    assert lay.max_pfn == 0x3FFE0
    assert lay.high_memory == 0xF6BFE000
    assert lay.vmalloc_start == 0xF73FE000
    assert (lay.vmalloc_end - lay.vmalloc_start) // 1024 == 122880   # VmallocTotal kB
    assert lay.memory == [(0, 1, 0x9F), (0, 0x100, 0x3FFE0)]


@pytest.mark.parametrize("zid,spanned,present", [
    (L.ZONE_DMA, 4095, 3998), (L.ZONE_NORMAL, 220158, 220158), (L.ZONE_HIGHMEM, 37858, 37858),
])
def test_zone_spans_1g_match_reference_zoneinfo(zid, spanned, present):
    z = L.compute_layout(qemu_pc(1 * GiB)).zone(0, zid)
    assert (z.spanned_pages, z.present_pages) == (spanned, present)


def test_vmalloc_start_with_128m_of_ram():
    lay = L.compute_layout(qemu_pc(128 * MiB))
    assert lay.vmalloc_start == 0xC87E0000
    assert lay.vmalloc_end == 0xFEBFE000
    assert lay.zone(0, L.ZONE_HIGHMEM).spanned_pages == 0


def test_vmalloc_option_moves_maxmem():
    lay = L.compute_layout(qemu_pc(1 * GiB, vmalloc=256 * MiB))
    assert lay.maxmem == 0x36BFE000 - 128 * MiB
    assert lay.max_low_pfn == lay.maxmem >> 12
    assert lay.vmalloc_start == lay.high_memory + 8 * MiB


def test_highmem_option_larger_than_highmem_is_ignored():
    # highmem=512M on 1 GiB: highmem_pfn_init() finds only 148 MiB above MAXMEM and
    # ignores the option ("only 148MB highmem pages available, ignoring highmem size").
    lay = L.compute_layout(qemu_pc(1 * GiB, highmem=512 * MiB))
    assert (lay.max_low_pfn, lay.max_pfn) == (0x36BFE, 0x3FFE0)


def test_highmem_option_smaller_than_highmem_drops_ram():
    # highmem=64M on 1 GiB: max_pfn = MAXMEM_PFN + highmem_pages; the rest is unused.
    lay = L.compute_layout(qemu_pc(1 * GiB, highmem=64 * MiB))
    assert lay.max_low_pfn == 0x36BFE
    assert lay.max_pfn == 0x36BFE + (64 * MiB >> 12)
    assert lay.zone(0, L.ZONE_HIGHMEM).present_pages == 64 * MiB >> 12


def test_highmem_option_on_small_machine():
    # max_pfn <= MAXMEM: lowmem_pfn_init() takes highmem_pages off the top.
    lay = L.compute_layout(qemu_pc(512 * MiB, highmem=128 * MiB))
    assert lay.max_low_pfn == lay.max_pfn - (128 * MiB >> 12)


def test_fixmap_slots():
    assert L.fix_to_virt(L.FIX_HOLE) == L.FIXADDR_TOP
    assert L.virt_to_fix(L.fix_to_virt(L.FIX_KMAP_BEGIN)) == L.FIX_KMAP_BEGIN
    assert L.FIX_KMAP_END - L.FIX_KMAP_BEGIN + 1 == L.KM_MAX_IDX * L.NR_CPUS
    # kmap_local slots for CPU 0 sit at descending addresses from FIX_KMAP_BEGIN
    assert L.fix_to_virt(L.FIX_KMAP_BEGIN + 1) == L.fix_to_virt(L.FIX_KMAP_BEGIN) - L.PAGE_SIZE


def test_two_nodes_each_have_their_own_zones():
    ram = [Range(0, 0x9FC00), Range(0x100000, 1 * GiB - 0x20000)]
    n0 = [Range(0, 0x9FC00), Range(0x100000, 512 * MiB)]
    n1 = [Range(512 * MiB, 1 * GiB - 0x20000)]
    cfg = MachineConfig(name="numa", path="<test>", ram=ram, reserved=[],
                        nodes=[NodeConfig(0, n0, [10, 20]), NodeConfig(1, n1, [20, 10])])
    lay = L.compute_layout(cfg)
    assert lay.zone(0, L.ZONE_DMA).present_pages == 3998
    assert lay.zone(0, L.ZONE_HIGHMEM).spanned_pages == 0
    assert lay.zone(1, L.ZONE_DMA).spanned_pages == 0
    assert lay.zone(1, L.ZONE_NORMAL).start_pfn == 512 * MiB >> 12
    assert lay.zone(1, L.ZONE_NORMAL).end_pfn == 0x36BFE
    assert lay.zone(1, L.ZONE_HIGHMEM).end_pfn == (1 * GiB - 0x20000) >> 12


@pytest.mark.parametrize("name", __import__("mmemu.config", fromlist=["x"]).list_configs())
def test_every_shipped_config_follows_the_6_1_arithmetic(name):
    from mmemu.config import load_config
    cfg = load_config(name)
    lay = L.compute_layout(cfg)
    vmalloc_end, pkmap_base = (0xFEFFE000, 0xFF000000) if cfg.pae else (0xFEBFE000, 0xFEC00000)
    assert lay.maxmem == vmalloc_end - L.PAGE_OFFSET - cfg.vmalloc
    assert lay.max_low_pfn <= lay.maxmem >> L.PAGE_SHIFT
    assert lay.high_memory == L.PAGE_OFFSET + (lay.max_low_pfn << L.PAGE_SHIFT)
    assert lay.vmalloc_start == lay.high_memory + L.VMALLOC_OFFSET
    assert lay.vmalloc_end == vmalloc_end and lay.pkmap_base == pkmap_base
    present = sum(e - s for _, s, e in lay.memory)
    assert sum(z.present_pages for z in lay.zones) == present
    for nid in {n for n, _, _ in lay.memory}:
        spans = [z for z in lay.node_zones(nid) if z.spanned_pages]
        for a, b in zip(spans, spans[1:]):
            assert a.end_pfn <= b.start_pfn          # zones of a node do not overlap
        for z in spans:
            limit = [lay.dma_pfn, lay.max_low_pfn, lay.max_pfn, lay.max_pfn][z.zid]
            assert z.end_pfn <= limit
