"""Tests for mmemu.arch.x86.ioremap: mapping device windows uncached into the
vmalloc area, what it refuses (RAM in use, size 0, wrap-around), iounmap,
and the all-ones bus behind unbacked ranges.

Reads through a mapping go the way the CPU's would: Unicorn's MMU
translates the virtual address and the access lands on the MMIO callbacks.
"""
import pytest

from mmemu.arch.x86.ioremap import ioremap, iounmap
from mmemu.arch.x86.pgtable import __PAGE_KERNEL_NOCACHE
from mmemu.layout import PAGE_SIZE
from mmemu.machine import Machine
from mmemu.mm.gfp import GFP_KERNEL
from mmemu.mm.vmalloc import VM_IOREMAP
from mmemu.testing import boot_areas

pytestmark = pytest.mark.flavours

UART0, FB0, REGS0 = 0xFE000000, 0xFD000000, 0xFE001000
NOTHING = 0xFE100000            # no device, no RAM


@pytest.fixture
def machine():
    m = Machine("pc-1g", echo=False)
    yield m
    m.close()


def mmio_read(m, va, size):
    """A read through the page tables, as the guest's would be."""
    pa = m.engine.translate(va)
    assert pa is not None, f"0x{va:08x} is not mapped"
    return int.from_bytes(m.engine.uc.mem_read(pa, size), "little")


def mmio_write(m, va, size, value):
    pa = m.engine.translate(va, write=True)
    m.engine.uc.mem_write(pa, value.to_bytes(size, "little"))


def test_ioremap_maps_device_uncached(machine):
    addr = ioremap(machine, REGS0, 16, caller="test")
    area = machine.vmalloc.find_vm_area(addr)
    assert machine.vmalloc.is_vmalloc_addr(addr)
    assert area.flags == VM_IOREMAP and area.phys_addr == REGS0
    w = machine.pgtable.walk(addr)
    nx = machine.pgtable.flavour._PAGE_NX                    # NX on 686-pae
    assert w.pte == REGS0 | __PAGE_KERNEL_NOCACHE | nx == REGS0 | 0x173 | nx
    assert machine.engine.translate(addr) == REGS0
    mmio_write(machine, addr + 4, 4, 0xCAFEF00D)
    assert mmio_read(machine, addr + 4, 4) == 0xCAFEF00D
    assert machine.devices["regs0"].value(4) == 0xCAFEF00D
    machine.check()


def test_ioremap_unaligned_keeps_offset(machine):
    addr = ioremap(machine, UART0 + 0x7, 2)
    area = machine.vmalloc.find_vm_area(addr)
    assert addr & (PAGE_SIZE - 1) == 0x7
    assert (area.phys_addr, area.size) == (UART0, 2 * PAGE_SIZE)


def test_ioremap_unaligned_crossing_a_page(machine):
    addr = ioremap(machine, UART0 + 0xFFE, 4)        # two pages: 0xfe000000 and 0xfe001000
    area = machine.vmalloc.find_vm_area(addr)
    assert area.get_vm_area_size() == 2 * PAGE_SIZE
    assert machine.engine.translate(addr + 2) == REGS0


def test_ioremap_area_alignment(machine):
    vm = machine.vmalloc
    vm.vmalloc(PAGE_SIZE)                             # push the next free address off alignment
    three = ioremap(machine, NOTHING, 3 * PAGE_SIZE)
    assert three % (4 * PAGE_SIZE) == 0               # get_count_order(3 pages) -> 16K
    big = ioremap(machine, FB0, 2 << 20)
    assert big % (128 * PAGE_SIZE) == 0               # capped at IOREMAP_MAX_ORDER: 512K
    machine.check()


def test_ioremap_ram_in_use_refused_warn_once(machine):
    pfn = machine.alloc_pages(GFP_KERNEL, 0)
    phys = pfn * PAGE_SIZE
    mark, warnings = machine.log.mark(), machine.reporter.warnings
    assert ioremap(machine, phys, PAGE_SIZE) is None
    width = 16 if machine.pgtable.pae else 8                 # %pa: a phys_addr_t
    assert (f"ioremap on RAM at 0x{phys:0{width}x} - 0x{phys + PAGE_SIZE - 1:0{width}x}"
            in machine.log.text(mark))
    assert ioremap(machine, phys, 2 * PAGE_SIZE) is None
    assert machine.reporter.warnings == warnings + 1       # WARN_ONCE
    assert machine.vmalloc.areas() == boot_areas(machine)


def test_ioremap_free_highmem_refused(machine):
    hi = machine.layout.max_pfn - 16
    assert ioremap(machine, hi * PAGE_SIZE, PAGE_SIZE) is None


def test_ioremap_reserved_ram_allowed(machine):
    """The kernel image's pages are PageReserved: 6.1 lets them be remapped."""
    text = machine.kernel_image.text
    addr = ioremap(machine, text, PAGE_SIZE)
    assert addr is not None
    assert machine.engine.translate(addr) == text


def test_ioremap_part_of_a_ram_page_allowed_as_61(machine):
    """__ioremap_check_ram() only counts whole pages inside the request."""
    pfn = machine.alloc_pages(GFP_KERNEL, 0)
    assert ioremap(machine, pfn * PAGE_SIZE + 16, 64) is not None


def test_ioremap_size_zero_and_wrap_return_null(machine):
    """A range that wraps phys_addr_t: 32 bits on 686, 64 bits on 686-pae."""
    mark = machine.log.mark()
    top = (1 << 64) if machine.pgtable.pae else (1 << 32)
    assert ioremap(machine, UART0, 0) is None
    assert ioremap(machine, top - 0x1000, 0x2000) is None
    assert machine.log.text(mark) == ""


def test_iounmap_frees_area(machine):
    addr = ioremap(machine, UART0 + 4, 4)
    iounmap(machine, addr)
    assert machine.vmalloc.areas() == boot_areas(machine)
    assert machine.engine.translate(addr) is None
    machine.check()


def test_iounmap_bad_address_reported(machine):
    vm = machine.vmalloc
    buf = vm.vmalloc(PAGE_SIZE)
    mark = machine.log.mark()
    iounmap(machine, buf)
    iounmap(machine, vm.vend - PAGE_SIZE)
    text = machine.log.text(mark)
    assert f"iounmap: bad address {buf:08x}" in text
    assert f"iounmap: bad address {vm.vend - PAGE_SIZE:08x}" in text
    assert vm.find_vm_area(buf) is not None


def test_iounmap_below_high_memory_ignored(machine):
    mark = machine.log.mark()
    iounmap(machine, 0xC0100000)
    iounmap(machine, 0)
    assert machine.log.text(mark) == ""


def test_ioremap_unbacked_reads_all_ones(machine):
    addr = ioremap(machine, NOTHING + 0x10, 8)
    assert mmio_read(machine, addr, 4) == 0xFFFFFFFF
    assert mmio_read(machine, addr + 2, 2) == 0xFFFF
    assert mmio_read(machine, addr + 7, 1) == 0xFF
    mmio_write(machine, addr, 4, 0x12345678)
    assert mmio_read(machine, addr, 4) == 0xFFFFFFFF
    assert machine.devices.find(NOTHING).device is machine.devices.open_bus


def test_ioremap_twice_maps_bus_once(machine):
    a = ioremap(machine, NOTHING, PAGE_SIZE)
    b = ioremap(machine, NOTHING, 2 * PAGE_SIZE)
    assert a != b
    assert [(w.base, w.end) for w in machine.devices.holes] == [
        (NOTHING, NOTHING + PAGE_SIZE), (NOTHING + PAGE_SIZE, NOTHING + 2 * PAGE_SIZE)]


def test_ioremap_spanning_two_devices_warns(machine):
    mark = machine.log.mark()
    addr = ioremap(machine, UART0, 2 * PAGE_SIZE, caller="main+0x10/0x40")
    text = machine.log.text(mark)
    assert addr is not None
    assert ("resource sanity check: requesting [mem 0xfe000000-0xfe001fff], which spans more "
            "than uart0 [mem 0xfe000000-0xfe000fff]") in text
    assert "caller main+0x10/0x40 mapping multiple BARs" in text


def test_ioremap_fills_vmalloc_area_then_fails(machine):
    vm = machine.vmalloc
    addrs = []
    while True:
        addr = ioremap(machine, FB0, 2 << 20)
        if addr is None:
            break
        addrs.append(addr)
    assert len(addrs) >= 40                          # 2 MiB + guard, 512K-aligned: 2.5 MiB each
    machine.check()
    for addr in addrs:
        iounmap(machine, addr)
    assert vm.space.free_blocks() == [(vm.vstart + 2 * PAGE_SIZE, vm.vend)]   # after the BPF page
