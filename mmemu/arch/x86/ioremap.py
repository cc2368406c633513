"""ioremap: map device memory into the vmalloc area, uncached.

Models arch/x86/mm/ioremap.c of Linux 6.1 (i386, 686 and 686-pae):

* __ioremap_caller(): refuses size 0 and ranges that wrap; refuses RAM in
  use (__ioremap_check_ram(): a whole page of "System RAM" whose struct
  page is not PageReserved) with WARN_ONCE "ioremap on RAM at %pa - %pa";
  maps the page-aligned cover of an unaligned request and returns its base
  plus the offset; takes a VM_IOREMAP area (aligned to the size's power of
  two, at most 128 pages, as __get_vm_area_node() does for ioremap) and
  fills it with __PAGE_KERNEL_NOCACHE PTEs (0x173: PCD, which is what
  _PAGE_CACHE_MODE_UC_MINUS comes to without PAT; with NX on 686-pae, where
  phys_addr_t is 64 bits and a device may sit above 4 GiB); warns "resource sanity
  check ... mapping multiple BARs" when the range runs past a device window
  (kernel/resource.c:iomem_map_sanity_check());
* iounmap(): addresses at or below high_memory are ignored, as in 6.1;
  otherwise the ioremap area holding the address is unmapped and freed, and
  anything else gets "iounmap: bad address %p" and a stack dump.

Guest accesses through the mapping reach the device model's MMIO callbacks
through the page tables.  A range with no device behind it is given the
bus's all-ones catch-all (mmemu.devices.DeviceBus.map_unbacked), so reads
there return all ones as on a PC instead of stopping the CPU.

Differs: no PAT memtype tracking (memtype_reserve) and no mmiotrace; an
iounmap() of a vmalloc or vmap area is refused as a bad address (6.1 would
tear down whatever vm area holds the address), so the allocators stay
consistent; pointers print in full (no hashing).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Protocol

from mmemu.arch.x86.pgtable import __PAGE_KERNEL_NOCACHE, PageTable
from mmemu.config_schema import MachineConfig
from mmemu.kernel.panic import Reporter
from mmemu.layout import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, Layout
from mmemu.log import KERN_ERR
from mmemu.mm.mmzone import PG_reserved, W_FLAGS, PAGE_WORDS, MemMap
from mmemu.mm.vmalloc import VM_IOREMAP, Vmalloc, VmStruct
from mmemu.physmem import PhysMem

if TYPE_CHECKING:
    from mmemu.devices import Window

PHYS_ADDR_MAX = 0xFFFFFFFF           # phys_addr_t is 32 bits without PAE
PHYS_ADDR_MAX_PAE = (1 << 64) - 1    # and 64 bits with it
PAGE_KERNEL_IO_NOCACHE = __PAGE_KERNEL_NOCACHE


class IoBus(Protocol):
    """The device bus as ioremap sees it (mmemu.devices.DeviceBus)."""

    @property
    def windows(self) -> Sequence[Window]: ...
    def find(self, pa: int) -> Optional[Window]: ...
    def describe(self, pa: int) -> Optional[str]: ...
    def map_unbacked(self, start: int, end: int) -> object: ...


class IoremapMachine(Protocol):
    """What ioremap reads of the machine (machine.py's Machine)."""

    @property
    def vmalloc(self) -> Vmalloc: ...
    @property
    def pgtable(self) -> PageTable: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def mem_map(self) -> MemMap: ...
    @property
    def pm(self) -> PhysMem: ...
    @property
    def cfg(self) -> MachineConfig: ...
    @property
    def devices(self) -> IoBus: ...
    @property
    def reporter(self) -> Reporter: ...


def ioremap(machine: IoremapMachine, phys_addr: int, size: int,
            caller: Optional[str] = None) -> Optional[int]:
    """void __iomem *ioremap(resource_size_t offset, unsigned long size).

    Returns the virtual address for phys_addr, or None (NULL).
    """
    prot = machine.pgtable.flavour.PAGE_KERNEL_NOCACHE
    return ioremap_caller(machine, phys_addr, size, prot, caller)


def ioremap_caller(machine: IoremapMachine, phys_addr: int, size: int, prot: int,
                   caller: Optional[str] = None) -> Optional[int]:
    """__ioremap_caller(): see the module docstring."""
    vm = machine.vmalloc
    limit = PHYS_ADDR_MAX_PAE if machine.pgtable.pae else PHYS_ADDR_MAX
    phys_addr, size = phys_addr & limit, size & 0xFFFFFFFF   # as the C call takes them
    last_addr = phys_addr + size - 1
    if not size or last_addr > limit:
        return None
    if ioremap_check_ram(machine, phys_addr, last_addr):
        width = 16 if machine.pgtable.pae else 8          # %pa: a phys_addr_t
        _warn_once(vm, "ioremap on RAM", f"ioremap on RAM at 0x{phys_addr:0{width}x} - "
                   f"0x{last_addr:0{width}x}", "__ioremap_caller")
        return None
    offset = phys_addr & (PAGE_SIZE - 1)
    phys_addr &= ~(PAGE_SIZE - 1)
    size = ((last_addr + 1 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)) - phys_addr
    if size >= 1 << 32:
        return None                    # unsigned long size: no area that big
    area = vm.get_vm_area_caller(size, VM_IOREMAP, caller)
    if area is None:
        return None
    area.phys_addr, area.prot = phys_addr, prot
    if not _backed(machine.devices, phys_addr, phys_addr + size):
        machine.devices.map_unbacked(phys_addr, phys_addr + size)
    if not vm.ioremap_page_range(area.addr, area.addr + size, phys_addr, prot):
        vm.remove_vm_area(area.addr)
        return None
    if iomem_map_sanity_check(machine, phys_addr + offset, last_addr):
        vm.rep.info(f"caller {caller or '?'} mapping multiple BARs")
    return area.addr + offset


def iounmap(machine: IoremapMachine, addr: int, caller: Optional[str] = None,
            flush: bool = True) -> Optional[VmStruct]:
    """void iounmap(volatile void __iomem *addr).

    Returns the VmStruct torn down, else None (mmemu's; iounmap() is void).
    flush=False leaves the area's TLB to the caller, as for Vmalloc.vunmap().
    """
    vm = machine.vmalloc
    if addr <= machine.layout.high_memory:
        return None
    area = vm.find_vm_area(addr & PAGE_MASK)
    if area is None or not area.flags & VM_IOREMAP:
        vm.rep.info("\n".join([f"iounmap: bad address {addr & PAGE_MASK:08x}",
                               *vm.rep.dump_stack()]), KERN_ERR)
        return None
    return vm.vunmap(area.addr, caller=caller, flush=flush)


def ioremap_check_ram(machine: IoremapMachine, first: int, last: int) -> bool:
    """__ioremap_check_ram() over every System RAM range [first, last] touches.

    True when a whole page of it is RAM whose struct page is not
    PageReserved (pages reserved at boot, like the kernel image, may be
    remapped; a page that is free or allocated may not).  As in 6.1, only
    whole pages inside the request count.
    """
    mem_map, u32 = machine.mem_map, machine.pm.u32
    if first >> PAGE_SHIFT >= mem_map.nr_pages:
        return False                       # no struct page (pfn_valid()): device space
    for r in machine.cfg.ram:
        start, end = max(first, r.start), min(last, r.end - 1)
        if start > end:
            continue
        start_pfn = (start + PAGE_SIZE - 1) >> PAGE_SHIFT
        stop_pfn = min((end + 1) >> PAGE_SHIFT, mem_map.nr_pages)   # pfn_valid()
        if stop_pfn <= start_pfn:
            continue
        flags = u32[mem_map.page_word(start_pfn, W_FLAGS):mem_map.page_word(stop_pfn, W_FLAGS):PAGE_WORDS]
        if any(not f >> PG_reserved & 1 for f in flags.tolist()):
            return True
    return False


def iomem_map_sanity_check(machine: IoremapMachine, addr: int, end: int) -> bool:
    """iomem_map_sanity_check(): warn when [addr, end] runs past a device window.

    Returns True after the warning ("resource sanity check: requesting
    [mem ...], which spans more than NAME [mem ...]").
    """
    for w in machine.devices.windows:       # sorted by base
        if w.base > end:
            break
        if w.end - 1 < addr:
            continue
        if w.base >> PAGE_SHIFT <= addr >> PAGE_SHIFT and (w.end - 1) >> PAGE_SHIFT >= end >> PAGE_SHIFT:
            continue
        machine.reporter.info(f"resource sanity check: requesting [mem 0x{addr:08x}-0x{end:08x}], "
                              f"which spans more than {w.name} "
                              f"[mem 0x{w.base:08x}-0x{w.end - 1:08x}]")
        return True
    return False


def _backed(devices: IoBus, start: int, end: int) -> bool:
    """Whether one device window or catch-all covers [start, end): then
    map_unbacked() would find nothing to do (windows are never taken away)."""
    w = devices.find(start)
    return w is not None and w.end >= end


def _warn_once(vm: Vmalloc, key: str, text: str, function: str) -> None:
    """WARN_ONCE() in arch/x86/mm/ioremap.c: the first time only."""
    vm.rep.warn("arch/x86/mm/ioremap.c", None, function, message=text, once=("ioremap", key))


def describe_ioremap_address(machine: IoremapMachine, addr: int) -> Optional[str]:
    """For an oops inside an ioremap area: which device (or nothing) is behind it."""
    area = machine.vmalloc.find_vm_area(addr)
    if area is None or not area.phys_addr or addr >= area.addr + area.get_vm_area_size():
        return None
    what = machine.devices.describe(area.phys_addr + (addr - area.addr)) or "nothing"
    return (f"the address is in the ioremap area 0x{area.addr:08x} of phys "
            f"0x{area.phys_addr:08x}: {what}")
