"""Tests for mmemu.mm.vmalloc: the KVA allocator, vmalloc/vfree/vmap on a
booted pc-1g machine, the checker (on states broken on purpose), and the
/proc/vmallocinfo and meminfo views.

The KVA allocator is checked against a brute-force reference (a page
bitmap searched lowest-first); mappings are checked through the software
walker and through Unicorn's own MMU.
"""
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from mmemu.errors import VmallocCorruption
from mmemu.layout import PAGE_SIZE
from mmemu.machine import Machine
from mmemu.mm import page_alloc
from mmemu.mm.gfp import GFP_KERNEL, __GFP_HIGHMEM
from mmemu.mm.pcp import drain_all_pages
from mmemu.mm.vmalloc import (
    VM_ALLOC, VM_MAP, VmapSpace, describe_vmalloc_address, validate_vmap_areas,
)
from mmemu.views.vmallocinfo import vmalloc_meminfo, vmallocinfo

pytestmark = pytest.mark.flavours

# The reference kernels' bounds on 1 GiB, read from their page tables: 686, 686-pae.
VMALLOC_1G = {"686": (0xF73FE000, 0xFEBFE000), "686-pae": (0xF77FE000, 0xFEFFE000)}


def boot(config="pc-1g"):
    """A machine with every vmalloc page table made, so page counts compare exactly."""
    m = Machine(config, echo=False)
    size = m.pgtable.pmd_size                       # 4 MiB, or 2 MiB on 686-pae
    va = m.layout.vmalloc_start & ~(size - 1)
    while va < m.layout.vmalloc_end:
        m.pgtable.pte_alloc_kernel(va)
        va += size
    return m


@pytest.fixture
def machine():
    m = boot()
    yield m
    m.close()


def nr_free(m):
    """Free pages, with the per-cpu lists drained into the buddy lists first."""
    drain_all_pages(m.mm)
    return page_alloc.nr_free_pages(m.mm, None)


def log_text(m, since=0):
    return m.log.text(since)


# -- the KVA allocator ----------------------------------------------------------

def test_alloc_vmap_area_lowest_first():
    space = VmapSpace(0x10000, 0x20000)
    a = space.alloc_vmap_area(0x3000, 1, 0x10000, 0x20000)
    b = space.alloc_vmap_area(0x1000, 1, 0x10000, 0x20000)
    assert (a.va_start, a.va_end, b.va_start) == (0x10000, 0x13000, 0x13000)
    assert space.free_blocks() == [(0x14000, 0x20000)]


def test_alloc_vmap_area_alignment():
    space = VmapSpace(0x11000, 0x40000)
    va = space.alloc_vmap_area(0x2000, 0x8000, 0x11000, 0x40000)
    assert va.va_start == 0x18000
    # the hole below the aligned area stays free and is used first by what fits
    small = space.alloc_vmap_area(0x1000, 1, 0x11000, 0x40000)
    assert small.va_start == 0x11000


def test_free_vmap_area_merges_neighbours():
    space = VmapSpace(0x10000, 0x20000)
    areas = [space.alloc_vmap_area(0x1000, 1, 0x10000, 0x20000) for _ in range(3)]
    space.free_vmap_area(areas[0])
    space.free_vmap_area(areas[2])
    assert space.free_blocks() == [(0x10000, 0x11000), (0x12000, 0x20000)]
    space.free_vmap_area(areas[1])
    assert space.free_blocks() == [(0x10000, 0x20000)]
    assert space.areas() == []


def test_alloc_vmap_area_reuses_freed_range():
    space = VmapSpace(0x10000, 0x20000)
    a = space.alloc_vmap_area(0x4000, 1, 0x10000, 0x20000)
    space.alloc_vmap_area(0x1000, 1, 0x10000, 0x20000)
    space.free_vmap_area(a)
    again = space.alloc_vmap_area(0x2000, 1, 0x10000, 0x20000)
    assert again.va_start == 0x10000


def test_alloc_vmap_area_full_returns_none():
    space = VmapSpace(0x10000, 0x14000)
    assert space.alloc_vmap_area(0x5000, 1, 0x10000, 0x14000) is None
    assert space.alloc_vmap_area(0x4000, 1, 0x10000, 0x14000) is not None
    assert space.alloc_vmap_area(0x1000, 1, 0x10000, 0x14000) is None


def test_find_vmap_area_holds_address():
    space = VmapSpace(0x10000, 0x20000)
    a = space.alloc_vmap_area(0x3000, 1, 0x10000, 0x20000)
    assert space.find_vmap_area(0x12FFF) is a
    assert space.find_vmap_area(0x13000) is None
    assert space.find_vmap_area(0xF000) is None


def _reference_alloc(bitmap, vstart, size, align):
    """Lowest aligned start with size free bytes in a page bitmap; None if none."""
    addr = (vstart + align - 1) & -align
    pages = size // PAGE_SIZE
    while addr + size <= vstart + len(bitmap) * PAGE_SIZE:
        first = (addr - vstart) // PAGE_SIZE
        if not any(bitmap[first:first + pages]):
            return addr
        addr += align
    return None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 6), st.sampled_from([1, 0x2000, 0x4000]),
                          st.integers(0, 20)), max_size=40))
def test_alloc_vmap_area_matches_bruteforce(ops):
    vstart, npages = 0x11000, 48
    space = VmapSpace(vstart, vstart + npages * PAGE_SIZE)
    bitmap = [0] * npages
    live = []
    for is_alloc, pages, align, pick in ops:
        if is_alloc or not live:
            size = pages * PAGE_SIZE
            want = _reference_alloc(bitmap, vstart, size, align)
            va = space.alloc_vmap_area(size, align, vstart, vstart + npages * PAGE_SIZE)
            assert (va.va_start if va else None) == want
            if va:
                live.append(va)
                first = (va.va_start - vstart) // PAGE_SIZE
                bitmap[first:first + pages] = [1] * pages
        else:
            va = live.pop(pick % len(live))
            space.free_vmap_area(va)
            first = (va.va_start - vstart) // PAGE_SIZE
            bitmap[first:(va.va_end - vstart) // PAGE_SIZE] = [0] * ((va.va_end - va.va_start) // PAGE_SIZE)
    free = [i for i, used in enumerate(bitmap) if not used]
    assert sum((e - s) // PAGE_SIZE for s, e in space.free_blocks()) == len(free)


# -- vmalloc on a machine -----------------------------------------------------------

def test_vmalloc_starts_at_vmalloc_start(machine, kernel_flavour):
    start, end = VMALLOC_1G[kernel_flavour]
    assert (machine.vmalloc.vstart, machine.vmalloc.vend) == (start, end)
    # the boot's BPF program (ptp_classifier_init()) holds the first area: a page and its guard
    [bpf] = machine.vmalloc.areas()
    assert (bpf.addr, bpf.size, bpf.caller) == (start, 2 * PAGE_SIZE,
                                                "bpf_prog_alloc_no_stats+0x2b/0x1b0")
    addr = machine.vmalloc.vmalloc(10000, caller="test")
    area = machine.vmalloc.find_vm_area(addr)
    assert addr == start + 2 * PAGE_SIZE
    assert (area.size, area.nr_pages, area.flags) == (4 * PAGE_SIZE, 3, VM_ALLOC)
    machine.check()


def test_vmalloc_pages_are_highmem_and_mapped(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(64 * PAGE_SIZE)
    area = vm.find_vm_area(addr)
    assert all(machine.is_highmem_pfn(pfn) for pfn in area.pages)
    for i, pfn in enumerate(area.pages):
        va = addr + i * PAGE_SIZE
        assert vm.vmalloc_to_page(va) == pfn
        assert machine.pgtable.translate(va) == pfn * PAGE_SIZE
        assert machine.engine.translate(va) == pfn * PAGE_SIZE       # Unicorn's MMU agrees


def test_vmalloc_pages_scattered_after_fragmentation(machine):
    """Pages come one at a time, so a fragmented HighMem gives a non-contiguous area."""
    holes = [machine.alloc_pages(GFP_KERNEL | __GFP_HIGHMEM, 0) for _ in range(256)]
    for pfn in holes[::2]:
        machine.free_pages(pfn, 0)
    addr = machine.vmalloc.vmalloc(64 * PAGE_SIZE)
    pages = list(machine.vmalloc.find_vm_area(addr).pages)
    assert pages != list(range(pages[0], pages[0] + 64))
    assert len(set(pages)) == 64


def test_vmalloc_contents_across_pages(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(3 * PAGE_SIZE)
    data = bytes(range(256)) * 48
    machine.write(addr, data)
    assert machine.read(addr, len(data)) == data
    pfn1 = vm.vmalloc_to_page(addr + PAGE_SIZE)
    assert machine.pm.read(pfn1 * PAGE_SIZE, 16) == data[PAGE_SIZE:PAGE_SIZE + 16]


def test_vzalloc_zeroes(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(8 * PAGE_SIZE)
    machine.write(addr, b"\xaa" * 8 * PAGE_SIZE)
    vm.vfree(addr)
    again = vm.vzalloc(8 * PAGE_SIZE)
    assert machine.read(again, 8 * PAGE_SIZE) == bytes(8 * PAGE_SIZE)


def _vmalloc_state(vm):
    """The areas (the boot's BPF program's), free blocks and vmalloc'd pages now."""
    return vm.areas(), vm.space.free_blocks(), vm.vmalloc_nr_pages()


def test_vfree_gives_everything_back(machine):
    vm = machine.vmalloc
    before, boot = nr_free(machine), _vmalloc_state(vm)
    assert boot[1] == [(vm.vstart + 2 * PAGE_SIZE, vm.vend)] and boot[2] == 1
    addrs = [vm.vmalloc(n * PAGE_SIZE) for n in (1, 5, 2000)]
    assert nr_free(machine) < before
    for addr in addrs:
        vm.vfree(addr)
    assert nr_free(machine) == before
    assert _vmalloc_state(vm) == boot
    machine.check()


def test_vfree_flushes_tlb_once_per_area(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(100 * PAGE_SIZE)
    flushes = []
    vm.flush_tlb = lambda: flushes.append(1)
    vm.vfree(addr)
    assert len(flushes) == 1
    assert machine.engine.translate(addr) is None


def test_vfree_null_is_noop(machine):
    mark = machine.log.mark()
    machine.vmalloc.vfree(0)
    assert log_text(machine, mark) == ""


def test_vfree_nonexistent_area_warns(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(3 * PAGE_SIZE)
    mark, warnings = machine.log.mark(), machine.reporter.warnings
    vm.vfree(addr + PAGE_SIZE)
    assert f"Trying to vfree() nonexistent vm area ({addr + PAGE_SIZE:08x})" in log_text(machine, mark)
    assert machine.reporter.warnings == warnings + 1
    assert vm.find_vm_area(addr).nr_pages == 3
    machine.check()


def test_vfree_unaligned_warns(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(PAGE_SIZE)
    mark = machine.log.mark()
    vm.vfree(addr + 4)
    assert f"Trying to vfree() bad address ({addr + 4:08x})" in log_text(machine, mark)
    assert vm.find_vm_area(addr) is not None


def test_vfree_twice_warns_and_changes_nothing(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(PAGE_SIZE)
    vm.vfree(addr)
    before = nr_free(machine)
    mark = machine.log.mark()
    vm.vfree(addr)
    assert "nonexistent vm area" in log_text(machine, mark)
    assert nr_free(machine) == before
    machine.check()


def test_vmalloc_zero_size_returns_null_warns_once(machine):
    mark = machine.log.mark()
    assert machine.vmalloc.vmalloc(0) is None
    assert machine.vmalloc.vmalloc(0) is None
    assert log_text(machine, mark).count("WARNING:") == 1


def test_vmalloc_larger_than_vmalloc_area_fails_with_warning(machine):
    mark = machine.log.mark()
    before = nr_free(machine)
    assert machine.vmalloc.vmalloc(200 << 20) is None
    text = log_text(machine, mark)
    assert "vmap allocation for size 209719296 failed: use vmalloc=<size> to increase size" in text
    assert re.search(r"vmalloc error: size 209715200, vm_struct allocation failed, "
                     r"mode:0xcc0\(GFP_KERNEL\), nodemask=\(null\)", text)
    assert nr_free(machine) == before
    machine.check()


def test_vmalloc_exceeds_total_pages():
    m = boot("pc-16m")
    mark = m.log.mark()
    assert m.vmalloc.vmalloc(64 << 20) is None
    assert "vmalloc error: size 67108864, exceeds total pages, mode:0xcc0(GFP_KERNEL)" in log_text(m, mark)


def test_vmalloc_nowarn_is_silent(machine):
    mark = machine.log.mark()
    assert machine.vmalloc._vmalloc(200 << 20, GFP_KERNEL | 0x2000) is None
    assert log_text(machine, mark) == ""


def test_vmalloc_page_failure_frees_what_it_took(machine):
    vm = machine.vmalloc
    before, boot = nr_free(machine), _vmalloc_state(vm)
    real, taken = vm.alloc_page, []

    def failing(gfp, nid):
        if len(taken) == 300:
            return None
        taken.append(1)
        return real(gfp, nid)
    vm.alloc_page = failing
    assert vm.vmalloc(2000 * PAGE_SIZE) is None       # 2000 pages: a vmalloc'd pages array too
    vm.alloc_page = real
    assert nr_free(machine) == before
    assert _vmalloc_state(vm) == boot
    machine.check()


def test_vmalloc_big_request_is_fast(machine):
    vm = machine.vmalloc
    t0 = time.perf_counter()
    addr = vm.vmalloc(48 << 20)
    elapsed = time.perf_counter() - t0
    assert addr is not None
    assert elapsed < 1.5, f"vmalloc(48 MiB) took {elapsed:.2f} s"
    vm.vfree(addr)


def test_vmalloc_pages_array_is_vmalloced_when_big(machine):
    vm = machine.vmalloc
    boot = vm.areas()
    addr = vm.vmalloc(1280 * PAGE_SIZE)            # 1280 pointers: 5120 bytes > PAGE_SIZE
    area = vm.find_vm_area(addr)
    arr = area.pages_area
    assert arr is not None and arr.addr == area.end and arr.size == 3 * PAGE_SIZE
    assert vm.vmalloc_nr_pages() == 1 + 1280 + 2
    ptrs = [machine.read32(arr.addr + 4 * i) for i in (0, 1023, 1024, 1279)]
    assert ptrs == [machine.page_to_virt(area.pages[i]) for i in (0, 1023, 1024, 1279)]
    vm.vfree(addr)
    assert vm.areas() == boot


def test_vmalloc_to_page_of_unmapped_is_none(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(PAGE_SIZE)
    assert vm.vmalloc_to_page(addr + PAGE_SIZE) is None       # the guard page
    assert vm.vmalloc_to_page(vm.vend - PAGE_SIZE) is None


def test_is_vmalloc_addr(machine, kernel_flavour):
    vm = machine.vmalloc
    start, end = VMALLOC_1G[kernel_flavour]
    assert vm.is_vmalloc_addr(start) and vm.is_vmalloc_addr(end - 1)
    assert not vm.is_vmalloc_addr(end) and not vm.is_vmalloc_addr(0xC0000000)


def test_vmalloc_reuses_lowest_freed_range(machine):
    vm = machine.vmalloc
    a = vm.vmalloc(3 * PAGE_SIZE)
    vm.vmalloc(PAGE_SIZE)
    vm.vfree(a)
    assert vm.vmalloc(PAGE_SIZE) == a


def test_guard_page_is_never_mapped(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(2 * PAGE_SIZE)
    guard = addr + 2 * PAGE_SIZE
    assert machine.pgtable.walk(guard).phys is None
    assert machine.engine.translate(guard) is None
    assert vm.vmalloc(PAGE_SIZE) == guard + PAGE_SIZE


def test_vmap_maps_given_pages(machine):
    vm = machine.vmalloc
    pfns = [machine.alloc_pages(GFP_KERNEL, 0) for _ in range(3)]
    addr = vm.vmap(pfns[::-1], 3, VM_MAP, caller="test")
    for i, pfn in enumerate(pfns[::-1]):
        assert vm.vmalloc_to_page(addr + i * PAGE_SIZE) == pfn
    machine.write(addr, b"through vmap")
    assert machine.pm.read(pfns[2] * PAGE_SIZE, 12) == b"through vmap"
    before = nr_free(machine)
    vm.vunmap(addr)
    assert nr_free(machine) == before                 # the pages stay the caller's
    assert machine.engine.translate(addr) is None
    machine.check()


def test_vmap_zero_count_returns_null(machine):
    assert machine.vmalloc.vmap([], 0) is None


def test_vunmap_of_vmalloc_area_leaks_pages_as_linux(machine):
    vm = machine.vmalloc
    before, boot = nr_free(machine), vm.vmalloc_nr_pages()
    addr = vm.vmalloc(4 * PAGE_SIZE)
    vm.vunmap(addr)
    assert nr_free(machine) == before - 4
    assert vm.vmalloc_nr_pages() == boot + 4          # 6.1 never subtracts them either
    machine.check()


def test_describe_vmalloc_address_guard_and_freed(machine):
    vm = machine.vmalloc
    addr = vm.vmalloc(2 * PAGE_SIZE, caller="main+0x1c/0x80")
    text = describe_vmalloc_address(vm, addr + 2 * PAGE_SIZE)
    assert text == (f"the address is in the guard page after the vmalloc area "
                    f"0x{addr:08x}-0x{addr + 2 * PAGE_SIZE:08x} (8192 bytes, allocated by "
                    f"main+0x1c/0x80)")
    vm.vfree(addr, caller="main+0x40/0x80")
    text = describe_vmalloc_address(vm, addr + 8)
    assert "a use after vfree()" in text and "main+0x1c/0x80" in text and "main+0x40/0x80" in text
    assert describe_vmalloc_address(vm, 0xC0000000) is None


# -- the checker, on states broken on purpose --------------------------------------

def test_validate_vmap_areas_passes_on_boot(machine):
    validate_vmap_areas(machine)


def test_validate_vmap_areas_catches_mapped_guard_page(machine):
    addr = machine.vmalloc.vmalloc(PAGE_SIZE)
    machine.pgtable.set_pte(addr + PAGE_SIZE, 0x1000 | 0x163)
    with pytest.raises(VmallocCorruption, match="guard page"):
        validate_vmap_areas(machine)


def test_validate_vmap_areas_catches_wrong_pte(machine):
    addr = machine.vmalloc.vmalloc(2 * PAGE_SIZE)
    area = machine.vmalloc.find_vm_area(addr)
    area.pages[0], area.pages[1] = area.pages[1], area.pages[0]
    with pytest.raises(VmallocCorruption, match=f"0x{addr:08x}"):
        validate_vmap_areas(machine)


def test_validate_vmap_areas_catches_stray_pte(machine):
    vm = machine.vmalloc
    machine.pgtable.set_pte(vm.vend - PAGE_SIZE, 0x1000 | 0x163)
    with pytest.raises(VmallocCorruption, match="outside every area"):
        validate_vmap_areas(machine)


def test_validate_vmap_areas_catches_overlap(machine):
    vm = machine.vmalloc
    a = vm.vmalloc(2 * PAGE_SIZE)
    vm.space.find_vmap_area(a).va_end += PAGE_SIZE
    with pytest.raises(VmallocCorruption):
        validate_vmap_areas(machine)


def test_validate_vmap_areas_catches_unmerged_free_blocks(machine):
    vm = machine.vmalloc
    [(start, end)] = vm.space.free_blocks()           # all but the boot's BPF program
    vm.space.free_start[:] = [start, start + PAGE_SIZE]
    vm.space.free_end[:] = [start + PAGE_SIZE, end]
    with pytest.raises(VmallocCorruption, match="not merged"):
        validate_vmap_areas(machine)


def test_validate_vmap_areas_catches_bad_count(machine):
    machine.vmalloc.vmalloc(PAGE_SIZE)
    machine.vmalloc.nr_vmalloc_pages += 1
    with pytest.raises(VmallocCorruption, match="nr_vmalloc_pages"):
        machine.check()


# -- views -----------------------------------------------------------------------------

def test_vmallocinfo_lines(machine):
    vm = machine.vmalloc
    a = vm.vmalloc(3 * PAGE_SIZE, caller="main+0x1c/0x80")
    pfn = machine.alloc_pages(GFP_KERNEL, 0)
    b = vm.vmap([pfn], 1)
    from mmemu.arch.x86.ioremap import ioremap
    c = ioremap(machine, 0xFE000000, 8, caller="main+0x30/0x80")
    start = machine.vmalloc.vstart
    assert vmallocinfo(machine).splitlines() == [
        f"0x{start:08x}-0x{start + 0x2000:08x}    8192 "
        "bpf_prog_alloc_no_stats+0x2b/0x1b0 pages=1 vmalloc",
        f"0x{a:08x}-0x{a + 0x4000:08x}   16384 main+0x1c/0x80 pages=3 vmalloc",
        f"0x{b:08x}-0x{b + 0x2000:08x}    8192 vmap",
        f"0x{c:08x}-0x{c + 0x2000:08x}    8192 main+0x30/0x80 phys=0xfe000000 ioremap",
    ]


def test_vmallocinfo_vpages(machine):
    addr = machine.vmalloc.vmalloc(2048 * PAGE_SIZE, caller="main+0x1c/0x80")
    lines = vmallocinfo(machine).splitlines()[1:]      # after the boot's BPF program
    assert lines[0] == (f"0x{addr:08x}-0x{addr + 2049 * PAGE_SIZE:08x} {2049 * PAGE_SIZE:7d} "
                        "main+0x1c/0x80 pages=2048 vmalloc vpages")
    assert lines[1].endswith("   12288 main+0x1c/0x80 pages=2 vmalloc")


def test_vmalloc_meminfo(machine):
    # the boot's BPF program: one page
    assert vmalloc_meminfo(machine) == {"VmallocTotal": 122880, "VmallocUsed": 4, "VmallocChunk": 0}
    machine.vmalloc.vmalloc(10 * PAGE_SIZE)
    machine.vmalloc.vmap([machine.alloc_pages(GFP_KERNEL, 0)], 1)
    assert vmalloc_meminfo(machine)["VmallocUsed"] == 4 + 40


# -- the TLB ---------------------------------------------------------------------------

def test_vfree_flushes_from_the_host_and_leaves_it_to_the_guest_through_the_hypercall(machine):
    """Python callers get a flushed TLB; the hypercall returns the range instead
    (pages, start in HC_WORD_RET2), which the guest's vfree() flushes (vmalloc.h)."""
    from mmemu.runtime.abi import HC_MAILBOX_PHYS, HC_WORD_RET2
    from mmemu.runtime.hc_vmalloc import HC_VFREE
    vm = machine.vmalloc
    flushes, real = [], vm.flush_tlb
    vm.flush_tlb = lambda: flushes.append(1) or real()
    vm.vfree(vm.vmalloc(3 * PAGE_SIZE))
    assert len(flushes) == 1
    addr = vm.vmalloc(3 * PAGE_SIZE)
    assert machine.runtime.table.calls[HC_VFREE].fn(addr) == 4      # and the guard page
    assert machine.pm.read32(HC_MAILBOX_PHYS + 4 * HC_WORD_RET2) == addr
    assert len(flushes) == 1 and machine.pgtable.translate(addr) is None
    assert machine.runtime.table.calls[HC_VFREE].fn(0) == 0          # nothing to flush
    machine.check()


# -- the guest headers -------------------------------------------------------------------

def test_guest_headers_mirror_hypercall_numbers():
    """vmalloc.h and io.h spell HC_* as HC_VMALLOC_BASE/HC_IO_BASE + n, like the host."""
    from pathlib import Path
    from mmemu.runtime import abi, hc_io, hc_vmalloc
    inc = Path(__file__).resolve().parent.parent / "guest" / "include" / "mmemu"
    for header, module, base, top in (("vmalloc.h", hc_vmalloc, abi.HC_VMALLOC_BASE, abi.HC_IO_BASE),
                                      ("io.h", hc_io, abi.HC_IO_BASE, abi.HC_HIGHMEM_BASE)):
        found = re.findall(r"#define\s+(HC_\w+)\s+\((HC_\w+_BASE) \+ (\d+)\)",
                           (inc / header).read_text())
        assert found
        for name, base_name, n in found:
            assert getattr(abi, base_name) == base
            assert getattr(module, name) == base + int(n) < top, name
