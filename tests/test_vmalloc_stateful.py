"""A stateful property test of the vmalloc area: random sequences of vmalloc,
vzalloc, vfree, vmap, vunmap, ioremap and iounmap (and bad frees) on one
pc-1g machine.

After every step: areas never overlap and each keeps an unmapped guard page
(by the software walker and by Unicorn's MMU); every mapped page points at
the page or device it should (both walkers again); data written to each
area reads back; validate_vmap_areas() passes, and so does the page
allocator's checker for HighMem, the zone every step takes its pages from
(the vmalloc page tables are made before the first example).  At the end
of each example everything is freed, every checker of the machine runs,
and the vmalloc area and the page allocator must be exactly as they were
at boot.  (The whole page-allocator check of pc-1g costs a quarter of a
second, too much to run after every step.)
"""
from hypothesis import settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from mmemu.arch.x86.ioremap import ioremap, iounmap
from mmemu.layout import PAGE_SIZE, PMD_MASK, PMD_SIZE
from mmemu.machine import Machine
from mmemu.mm import page_alloc
from mmemu.mm.gfp import GFP_KERNEL, __GFP_HIGHMEM, __GFP_NOWARN
from mmemu.mm.page_alloc_debug import check_zone
from mmemu.mm.pcp import drain_all_pages
from mmemu.mm.vmalloc import validate_vmap_areas
import pytest

from mmemu.testing import boot_areas

pytestmark = pytest.mark.flavours

PHYS_CHOICES = [0xFE000000, 0xFE001000, 0xFD000000, 0xFD100000, 0xFE100000, 0xFEF00000]
VMAP_GFP = GFP_KERNEL | __GFP_HIGHMEM     # module level: a class body would mangle the names
NOWARN_GFP = GFP_KERNEL | __GFP_NOWARN
SAMPLES = 6                      # pages checked through Unicorn per area and step

_machine = None


def nr_free(m):
    """Free pages, the per-cpu lists drained into the buddy lists first."""
    drain_all_pages(m.mm)
    return page_alloc.nr_free_pages(m.mm, None)


def shared_machine():
    """One machine for every example: each ends with everything freed, as at boot."""
    global _machine
    if _machine is None:
        m = Machine("pc-1g", echo=False)
        va = m.layout.vmalloc_start & PMD_MASK
        while va < m.layout.vmalloc_end:       # page tables are never freed: make them now
            m.pgtable.pte_alloc_kernel(va)
            va += PMD_SIZE
        m.boot_free = nr_free(m)
        m.boot_zone_free = [z.nr_free_pages for z in m.mm.zones]
        _machine = m
    return _machine


class VmallocMachine(RuleBasedStateMachine):
    areas = Bundle("areas")

    def __init__(self):
        super().__init__()
        self.m = shared_machine()
        self.vm = self.m.vmalloc
        self.live = {}           # addr -> (kind, expected pfns, tag, owned pfns)
        self.serial = 0

    # -- making areas ------------------------------------------------------------
    def _tag(self):
        self.serial += 1
        return self.serial.to_bytes(4, "little") * 2

    def _track(self, addr, kind, pfns, owned=()):
        tag = self._tag() if kind != "ioremap" else None
        if tag is not None:
            self.m.write(addr, tag)
            self.m.write(addr + len(pfns) * PAGE_SIZE - len(tag), tag)
        self.live[addr] = (kind, list(pfns), tag, list(owned))
        return addr

    @rule(target=areas, pages=st.one_of(st.integers(1, 40), st.integers(1025, 1400)),
          zero=st.booleans())
    def vmalloc(self, pages, zero):
        alloc = self.vm.vzalloc if zero else self.vm.vmalloc
        addr = alloc(pages * PAGE_SIZE - 100, caller="stateful")
        assert addr is not None
        area = self.vm.find_vm_area(addr)
        if zero:
            assert self.m.read(addr, 64) == bytes(64)
        return self._track(addr, "vmalloc", area.pages)

    @rule(target=areas, count=st.integers(1, 8))
    def vmap(self, count):
        pfns = [self.m.alloc_pages(VMAP_GFP, 0) for _ in range(count)]
        addr = self.vm.vmap(pfns, count, caller="stateful")
        assert addr is not None
        return self._track(addr, "vmap", pfns, owned=pfns)

    @rule(target=areas, phys=st.sampled_from(PHYS_CHOICES), offset=st.integers(0, PAGE_SIZE - 1),
          size=st.integers(1, 5 * PAGE_SIZE))
    def ioremap(self, phys, offset, size):
        addr = ioremap(self.m, phys + offset, size, caller="stateful")
        assert addr is not None and addr & (PAGE_SIZE - 1) == offset
        base = addr - offset
        npages = self.vm.find_vm_area(base).get_vm_area_size() // PAGE_SIZE
        first = phys >> 12
        return self._track(base, "ioremap", range(first, first + npages))

    @rule(pages=st.integers(2, 1200), fail_after=st.integers(0, 1100))
    def vmalloc_fails_midway(self, pages, fail_after):
        """The page allocator runs dry part way: vmalloc() must give back what it took."""
        before, real, taken = nr_free(self.m), self.vm.alloc_page, []

        def failing(gfp, nid):
            if len(taken) >= fail_after:
                return None
            taken.append(1)
            return real(gfp, nid)
        self.vm.alloc_page = failing
        try:
            addr = self.vm.vmalloc(pages * PAGE_SIZE)
        finally:
            self.vm.alloc_page = real
        if addr is not None:                   # asked for no more than it was allowed
            self._track(addr, "vmalloc", self.vm.find_vm_area(addr).pages)
            return
        assert nr_free(self.m) == before

    @rule()
    def vmalloc_too_big(self):
        before = nr_free(self.m)
        assert self.vm._vmalloc(121 << 20, NOWARN_GFP) is None
        assert nr_free(self.m) == before

    # -- freeing them ----------------------------------------------------------------
    @rule(addr=consumes(areas))
    def free(self, addr):
        kind, _, _, owned = self.live.pop(addr)
        if kind == "vmalloc":
            self.vm.vfree(addr)
        elif kind == "vmap":
            self.vm.vunmap(addr)
            for pfn in owned:
                self.m.free_pages(pfn, 0)
        else:
            iounmap(self.m, addr + 5)          # any address inside the mapping will do
        assert self.vm.find_vm_area(addr) is None

    @rule(addr=areas, delta=st.sampled_from([PAGE_SIZE, 3, -PAGE_SIZE]))
    def bad_vfree(self, addr, delta):
        before = nr_free(self.m)
        target = addr + delta
        area = self.vm.find_vm_area(target)
        if area is not None and area.addr == target:
            return                               # happens to be a real area's start
        self.vm.vfree(target)
        assert nr_free(self.m) == before

    # -- what must always hold ----------------------------------------------------------
    @invariant()
    def consistent(self):
        validate_vmap_areas(self.m)
        for zone in self.m.mm.zones:
            if zone.populated and zone.name == "HighMem":
                check_zone(self.m.mm, zone)
        arrays = {a.pages_area.addr for a in self.vm.areas() if a.pages_area is not None}
        boot = {a.addr for a in boot_areas(self.m)}
        assert sorted(self.live) == [a.addr for a in self.vm.areas()
                                     if a.addr not in arrays and a.addr not in boot]

    @invariant()
    def guard_pages_unmapped(self):
        for area in self.vm.areas():
            guard = area.addr + area.get_vm_area_size()
            assert self.m.pgtable.walk(guard).phys is None
            assert self.m.engine.translate(guard) is None

    @invariant()
    def ptes_point_at_the_right_frames(self):
        for addr, (kind, pfns, tag, _) in self.live.items():
            picks = sorted({0, len(pfns) - 1, *range(0, len(pfns), max(1, len(pfns) // SAMPLES))})
            for i in picks:
                va = addr + i * PAGE_SIZE
                assert self.m.pgtable.translate(va) == pfns[i] * PAGE_SIZE
                assert self.m.engine.translate(va) == pfns[i] * PAGE_SIZE
            if tag is not None:
                assert self.m.read(addr, len(tag)) == tag
                assert self.m.read(addr + len(pfns) * PAGE_SIZE - len(tag), len(tag)) == tag
            if kind == "ioremap":
                window = self.m.devices.find(pfns[0] * PAGE_SIZE)
                if window.device is self.m.devices.open_bus:
                    assert self.m.engine.uc.mem_read(pfns[0] * PAGE_SIZE, 4) == b"\xff" * 4

    def teardown(self):
        for addr in list(self.live):
            self.free(addr)
        vm, m = self.vm, self.m
        assert vm.areas() == boot_areas(m)
        assert vm.space.free_blocks() == [(vm.vstart + 2 * PAGE_SIZE, vm.vend)]
        assert vm.vmalloc_nr_pages() == 1                  # the BPF program's page
        assert nr_free(m) == m.boot_free
        assert [z.nr_free_pages for z in m.mm.zones] == m.boot_zone_free
        m.check()


VmallocMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=20,
                                            deadline=None)
TestVmallocStateful = VmallocMachine.TestCase
