"""mm/gfp.py: the 6.1 flag values, %pGg, gfp_zone() and node-ordered zonelists."""
import pytest

from mmemu.layout import ZONE_DMA, ZONE_HIGHMEM, ZONE_MOVABLE, ZONE_NORMAL
from mmemu.mm import gfp as g
from mmemu.mm.gfp import (
    GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOFS, GFP_NOIO,
    GFP_NOWAIT, GFP_USER, build_all_zonelists, find_next_best_node, format_gfp, gfp_zone,
    gfp_zone_bad, zonelist_zones,
)
from mmemu.mm.mmzone import PglistData, Zone

pytestmark = pytest.mark.flavours


def test_gfp_bits_are_6_1_values():
    # include/linux/gfp_types.h of 6.1, bit by bit
    expected = {
        "DMA": 0x01, "HIGHMEM": 0x02, "DMA32": 0x04, "MOVABLE": 0x08, "RECLAIMABLE": 0x10,
        "HIGH": 0x20, "IO": 0x40, "FS": 0x80, "ZERO": 0x100, "ATOMIC": 0x200,
        "DIRECT_RECLAIM": 0x400, "KSWAPD_RECLAIM": 0x800, "WRITE": 0x1000, "NOWARN": 0x2000,
        "RETRY_MAYFAIL": 0x4000, "NOFAIL": 0x8000, "NORETRY": 0x10000, "MEMALLOC": 0x20000,
        "COMP": 0x40000, "NOMEMALLOC": 0x80000, "HARDWALL": 0x100000, "THISNODE": 0x200000,
        "ACCOUNT": 0x400000, "ZEROTAGS": 0x800000,
    }
    for name, value in expected.items():
        assert getattr(g, "__GFP_" + name) == value, name
        assert getattr(g, "_GFP_" + name) == value, name      # the class-safe spelling


def test_gfp_composites():
    assert GFP_KERNEL == 0xcc0
    assert GFP_ATOMIC == 0xa20                # 6.1 still has __GFP_ATOMIC
    assert GFP_NOWAIT == 0x800
    assert GFP_NOIO == 0xc00
    assert GFP_NOFS == 0xc40
    assert GFP_USER == 0x100cc0
    assert GFP_DMA == 0x01
    assert GFP_HIGHUSER == 0x100cc2
    assert GFP_HIGHUSER_MOVABLE == 0x100cca   # no KASAN tag bits in a 686 build


@pytest.mark.parametrize("mask, text", [
    (GFP_KERNEL | g.__GFP_ZERO, "GFP_KERNEL|__GFP_ZERO"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (GFP_ATOMIC | g.__GFP_NOWARN, "GFP_ATOMIC|__GFP_NOWARN"),
    (GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (GFP_USER | g.__GFP_ZERO, "GFP_USER|__GFP_ZERO"),
    (GFP_KERNEL | g.__GFP_COMP, "GFP_KERNEL|__GFP_COMP"),
    (GFP_NOIO, "GFP_NOIO"),
    (GFP_DMA | GFP_KERNEL, "GFP_KERNEL|GFP_DMA"),
    (g.__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (GFP_KERNEL | 0x80000000, "GFP_KERNEL|0x80000000"),
    (0, ""),
])
def test_format_gfp_names_composites_first(mask, text):
    assert format_gfp(mask) == text


@pytest.mark.parametrize("mask, zone", [
    (GFP_KERNEL, ZONE_NORMAL),
    (GFP_ATOMIC, ZONE_NORMAL),
    (GFP_DMA, ZONE_DMA),
    (GFP_KERNEL | g.__GFP_DMA, ZONE_DMA),
    (GFP_HIGHUSER, ZONE_HIGHMEM),
    (GFP_HIGHUSER_MOVABLE, ZONE_MOVABLE),
    (g.__GFP_MOVABLE, ZONE_NORMAL),
    (g.__GFP_MOVABLE | g.__GFP_DMA, ZONE_DMA),
    (g.__GFP_DMA32, ZONE_NORMAL),            # no ZONE_DMA32 on i386
])
def test_gfp_zone_table(mask, zone):
    assert not gfp_zone_bad(mask)
    assert gfp_zone(mask) == zone


@pytest.mark.parametrize("mask", [
    g.__GFP_DMA | g.__GFP_HIGHMEM, g.__GFP_DMA | g.__GFP_DMA32,
    g.__GFP_DMA32 | g.__GFP_HIGHMEM, g.__GFP_MOVABLE | g.__GFP_HIGHMEM | g.__GFP_DMA,
])
def test_gfp_zone_bad_combinations(mask):
    assert gfp_zone_bad(mask | GFP_KERNEL)


def _zone_names(zones):
    return [(z.node, z.name) for z in zones]


def test_build_zonelists_node_order_numa(mm_boot):
    mm = mm_boot("numa-2n")
    n0, n1 = mm.node_data
    # all zones of the nearest node, highest first, then the next node's
    assert _zone_names(n0.node_zonelists[0]) == [(0, "Normal"), (0, "DMA"), (1, "HighMem"),
                                                  (1, "Normal")]
    assert _zone_names(n1.node_zonelists[0]) == [(1, "HighMem"), (1, "Normal"), (0, "Normal"),
                                                  (0, "DMA")]
    assert _zone_names(n1.node_zonelists[1]) == [(1, "HighMem"), (1, "Normal")]
    assert _zone_names(zonelist_zones(n1.node_zonelists[0], ZONE_NORMAL)) == [
        (1, "Normal"), (0, "Normal"), (0, "DMA")]


def _node(nid, distance, has_cpu=False):
    pgdat = PglistData(node_id=nid, distance=distance, has_cpu=has_cpu, node_present_pages=1)
    pgdat.node_zones = [Zone(node=nid, zone_idx=z, present_pages=1 if z == 1 else 0)
                        for z in range(4)]
    return pgdat


def test_find_next_best_node_by_distance():
    nodes = [_node(0, [10, 30, 20], has_cpu=True), _node(1, [30, 10, 20]), _node(2, [20, 20, 10])]
    used, load = set(), [0, 0, 0]
    order = [find_next_best_node(nodes, 0, used, load) for _ in range(4)]
    assert order == [0, 2, 1, -1]


def test_build_all_zonelists_single_node(mm_16m):
    assert _zone_names(mm_16m.node_data[0].node_zonelists[0]) == [(0, "Normal"), (0, "DMA")]
    build_all_zonelists(mm_16m.node_data)      # rebuilding gives the same lists
    assert _zone_names(mm_16m.node_data[0].node_zonelists[0]) == [(0, "Normal"), (0, "DMA")]


GAP_NODE_CONFIG = """\
name: gap-node
pae: false                  # the 686 kernel: RAM above 4 GiB unused
memory:
  ram:
    - {start: 0x0, end: 0x9fc00}
    - {start: 0x100000, end: 0x20000000}
    - {start: 0x20000000, end: 0x40000000}
    - {start: 0x100000000, end: 0x140000000}
nodes:
  - {id: 0, ram: [{start: 0x0, end: 0x9fc00}, {start: 0x100000, end: 0x20000000}]}
  - {id: 1, ram: [{start: 0x100000000, end: 0x140000000}]}
  - {id: 2, ram: [{start: 0x20000000, end: 0x40000000}]}
"""


def test_a_node_without_usable_memory_is_offline(tmp_path):
    # Node 1's RAM lies above 4 GiB, which the 686 kernel leaves unused: node 1
    # is offline between two online nodes.  The boot builds the others'
    # zonelists around it, and an allocation on it is warn_if_node_offline()'s.
    from mmemu.machine import Machine
    from mmemu.mm.gfp import GFP_KERNEL
    from mmemu.mm.page_alloc import alloc_pages
    path = tmp_path / "gap.yaml"
    path.write_text(GAP_NODE_CONFIG)
    m = Machine(str(path), echo=False)
    assert [p is not None for p in m.mm.node_data] == [True, False, True]
    nodes = [nid for nid, _ in _zone_names(m.mm.node_data[2].node_zonelists[0])]
    assert sorted(set(nodes), key=nodes.index) == [2, 0]     # its own first, then node 0
    mark = m.log.mark()
    assert alloc_pages(m.mm, GFP_KERNEL, 0, 1) is None
    assert "GFP_KERNEL allocation from offline node 1" in m.log.text(mark)
    assert alloc_pages(m.mm, GFP_KERNEL, 0, 2) is not None
    m.check()
    m.close()


CUT_NODE_CONFIG = """\
name: cut-node
pae: false
memory:
  ram:
    - {start: 0x0, end: 0x9fc00}
    - {start: 0x100000, end: 0x20000000}
    - {start: 0x20000000, end: 0x40000000}
    - {start: 0x40000000, end: 0x80000000}
nodes:
  - {id: 0, ram: [{start: 0x0, end: 0x9fc00}, {start: 0x100000, end: 0x20000000}]}
  - {id: 1, ram: [{start: 0x20000000, end: 0x40000000}]}
  - {id: 2, ram: [{start: 0x40000000, end: 0x80000000}]}
zones:
  highmem: 64M
"""


def test_a_node_beyond_a_lowered_max_pfn_is_offline(tmp_path):
    # highmem=64M ends RAM (max_pfn) inside node 1: node 2's RAM, still in
    # memblock, is past it, so node 2 is offline and memblock_free_all() and
    # the pageblock marking skip it (they raised IndexError before).
    from mmemu.machine import Machine
    path = tmp_path / "cut.yaml"
    path.write_text(CUT_NODE_CONFIG)
    m = Machine(str(path), echo=False)
    assert [p is not None for p in m.mm.node_data] == [True, True]
    assert m.layout.max_pfn < 0x40000000 >> 12
    m.check()
    m.close()
