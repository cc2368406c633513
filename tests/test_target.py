"""views/target.py: the one interface the views read, which a live Machine
and a loaded snapshot both provide (mypy checks the types; these tests check
that the two answer alike where a snapshot kept the answer, and say None
where it could not)."""
import pytest

from mmemu.machine import Machine
from mmemu.mm.mmzone import MIGRATE_MOVABLE, pindex_to_order
from mmemu.views import PROC_FILES, owner
from mmemu.views.snapshot import load_snapshot, write_snapshot
from mmemu.views.target import LiveTarget, PcpBlock, Target


@pytest.fixture(scope="module")
def live_and_snapshot(tmp_path_factory):
    m = Machine("pc-128m", echo=False)
    m.engine.set_reg("ebx", 0xCAFE)
    path = tmp_path_factory.mktemp("target") / "pc-128m.vmcore"
    write_snapshot(m, path)
    s = load_snapshot(path)
    yield m, s
    s.close()
    m.close()


def test_machine_and_snapshot_are_targets(live_and_snapshot):
    m, s = live_and_snapshot
    assert isinstance(m, Target) and isinstance(m, LiveTarget)
    assert isinstance(s, Target)


def test_a_snapshot_has_no_live_allocators(live_and_snapshot):
    m, s = live_and_snapshot
    assert (s.mm, s.slab, s.vmalloc, s.memblock) == (None, None, None, None)
    assert None not in (m.mm, m.slab, m.vmalloc, m.memblock)


def test_snapshot_answers_as_the_machine_did(live_and_snapshot):
    m, s = live_and_snapshot
    for name in PROC_FILES:
        assert s.proc_text(name) == m.proc_text(name) is not None, name
    assert m.proc_text("no-such-file") is None and s.proc_text("no-such-file") is None
    assert sorted(s.pcp_blocks()) == sorted(m.pcp_blocks())
    assert s.registers()["ebx"] == m.registers()["ebx"] == 0xCAFE
    assert s.pgtable.pgd == m.pgtable.pgd
    assert s.kernel_image == m.kernel_image


def test_pcp_blocks_have_the_order_of_their_list():
    # lists[pindex]: three migratetypes per order, so a movable order-0 page
    # sits on list 1 and is an order-0 block, not an order-1 one.
    m = Machine("pc-1g", echo=False)
    lists = {(z.name, i): lst for z in m.mm.zones
             for i, lst in enumerate(z.per_cpu_pageset.lists) if lst}
    movable = [(zone, pfn) for (zone, i), lst in lists.items() if i == MIGRATE_MOVABLE
               for pfn in lst]
    assert movable, "the boot leaves movable order-0 pages on a pcp list"
    blocks = m.pcp_blocks()
    assert sorted(blocks) == sorted(PcpBlock(zone, pindex_to_order(i), pfn)
                                    for (zone, i), lst in lists.items() for pfn in lst)
    pages = owner.pcp_pages(m)
    assert len(pages) == sum(1 << b.order for b in blocks)
    zone, pfn = movable[0]
    assert owner.page_owner(m, pfn).text == f"free: on the per-cpu page list of zone {zone} (order 0)"
    m.close()
