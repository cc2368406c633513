"""Tests for mmemu.mm.node_data: pg_data_t and struct zone in guest memory,
read back through the page tables (Machine.read32) and compared with the
host's Zone records, before and after the allocator and the watermarks move.
"""
import pytest

from mmemu.layout import PAGE_OFFSET
from mmemu.machine import Machine
from mmemu.mm import page_alloc
from mmemu.mm.gfp import GFP_KERNEL
from mmemu.mm.node_data import (
    MAX_NUMNODES, MM_GLOBALS, MMZONE_PHYS, STRUCT_PGLIST_DATA, STRUCT_ZONE, pgdat_phys,
    zone_phys,
)
from mmemu.mm.mmzone import NR_FREE_PAGES
from mmemu.mm.page_alloc import min_free_kbytes_sysctl_handler
from mmemu.runtime.abi import BOOTINFO_FIELDS, BOOTINFO_OFFSET, HC_MAILBOX_VIRT

pytestmark = pytest.mark.flavours


@pytest.fixture(scope="module")
def numa(kernel_flavour):
    return Machine("numa-2n", echo=False)


def zone_word(m, zone, field, i=0):
    return m.read32(PAGE_OFFSET + zone_phys(zone.node, zone.zone_idx) + STRUCT_ZONE[field] + 4 * i)


def globals_word(m, field, i=0):
    return m.read32(PAGE_OFFSET + MMZONE_PHYS + MM_GLOBALS[field] + 4 * i)


def test_bootinfo_points_at_the_globals_and_swapper_pg_dir(numa):
    bootinfo = HC_MAILBOX_VIRT + BOOTINFO_OFFSET
    assert numa.read32(bootinfo + 4 * BOOTINFO_FIELDS.index("mm_globals")) == \
        PAGE_OFFSET + MMZONE_PHYS
    assert numa.read32(bootinfo + 4 * BOOTINFO_FIELDS.index("kernel_pgd")) == \
        PAGE_OFFSET + numa.pgtable.pgd


def test_node_data_and_online_map(numa):
    assert globals_word(numa, "node_online_map") == 0b11
    assert globals_word(numa, "nr_online_nodes") == 2
    for nid in range(MAX_NUMNODES):
        ptr = globals_word(numa, "node_data", nid)
        assert ptr == (PAGE_OFFSET + pgdat_phys(nid) if nid < 2 else 0)
    for pgdat in numa.mm.node_data:
        base = PAGE_OFFSET + pgdat_phys(pgdat.node_id)
        for field in ("node_start_pfn", "node_present_pages", "node_spanned_pages", "node_id",
                      "totalreserve_pages"):
            assert numa.read32(base + STRUCT_PGLIST_DATA[field]) == getattr(pgdat, field), field
        highest = max(z.zone_idx for z in pgdat.node_zones if z.spanned_pages)
        assert numa.read32(base + STRUCT_PGLIST_DATA["nr_zones"]) == highest + 1


def test_every_zone_is_in_guest_memory(numa):
    for zone in numa.mm.zones:
        for field in ("zone_start_pfn", "spanned_pages", "present_pages", "managed_pages",
                      "node", "watermark_boost"):
            assert zone_word(numa, zone, field) == getattr(zone, field), (zone, field)
        assert [zone_word(numa, zone, "_watermark", i) for i in range(4)] == zone._watermark
        assert [zone_word(numa, zone, "lowmem_reserve", i) for i in range(4)] == \
            zone.lowmem_reserve
        assert zone_word(numa, zone, "zone_pgdat") == PAGE_OFFSET + pgdat_phys(zone.node)
        name = numa.read(zone_word(numa, zone, "name"), 8).split(b"\0")[0].decode()
        assert name == zone.name
        assert zone_word(numa, zone, "vm_stat", NR_FREE_PAGES) == zone.nr_free_pages
    assert globals_word(numa, "_totalram_pages") == page_alloc.totalram_pages(numa.mm)
    assert globals_word(numa, "_totalhigh_pages") == page_alloc.totalhigh_pages(numa.mm)


def test_free_counters_follow_every_buddy_change():
    m = Machine("pc-1g", echo=False)
    normal = m.mm.node_data[0].node_zones[1]
    total = globals_word(m, "vm_zone_stat", NR_FREE_PAGES)
    assert total == page_alloc.nr_free_pages(m.mm)
    pfn = m.alloc_pages(GFP_KERNEL, 5)                   # straight from the buddy lists
    assert zone_word(m, normal, "vm_stat") == normal.nr_free_pages
    assert globals_word(m, "vm_zone_stat") == total - 32
    m.free_pages(pfn, 5)
    assert globals_word(m, "vm_zone_stat") == total
    pfns = [m.alloc_pages(GFP_KERNEL, 0) for _ in range(500)]   # refills of the pcp list
    assert globals_word(m, "vm_zone_stat") == page_alloc.nr_free_pages(m.mm) < total
    for pfn in pfns:
        m.free_pages(pfn, 0)
    page_alloc.drain_all_pages(m.mm)
    assert globals_word(m, "vm_zone_stat") == page_alloc.nr_free_pages(m.mm) >= total
    m.check()


def test_watermarks_follow_min_free_kbytes():
    m = Machine("pc-1g", echo=False)
    normal = m.mm.node_data[0].node_zones[1]
    before = [zone_word(m, normal, "_watermark", i) for i in range(3)]
    min_free_kbytes_sysctl_handler(m.mm, m.mm.min_free_kbytes * 2)
    after = [zone_word(m, normal, "_watermark", i) for i in range(3)]
    assert after == normal._watermark[:3] and after[0] > before[0]
    assert zone_word(m, normal, "lowmem_reserve", 2) == normal.lowmem_reserve[2]


def test_percpu_numa_node(numa):
    from mmemu.runtime.abi import PERCPU_FIELDS, PERCPU_OFFSET
    assert numa.read32(HC_MAILBOX_VIRT + PERCPU_OFFSET + 4 * PERCPU_FIELDS.index("numa_node")) \
        == numa.mm.numa_node_id == 0


def test_boot_mm_without_a_machine_counts_on_the_host(mm_16m):
    """No guest memory to publish into: the counters stay private, and work."""
    zone = mm_16m.node_data[0].node_zones[1]
    before = zone.nr_free_pages
    pfn = page_alloc.alloc_pages(mm_16m, GFP_KERNEL, 5)
    assert zone.nr_free_pages == before - 32
    page_alloc._free_pages(mm_16m, pfn, 5)
    assert zone.nr_free_pages == before
