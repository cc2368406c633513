"""vmalloc hypercalls: the guest's vmalloc()/vfree()/vmap() family, and the
wiring of vmalloc, ioremap and the devices into a machine.

Numbers (HC_VMALLOC_BASE + n, mirrored in guest/include/mmemu/vmalloc.h):

  64 vmalloc(size, ip) -> address        68 vmap(pages, count, flags, prot, ip) -> address
  65 vzalloc(size, ip) -> address        69 vunmap(addr, ip) -> pages to flush
  66 __vmalloc(size, gfp, ip) -> address 70 vmalloc_to_page(addr) -> struct page *
  67 vfree(addr, ip) -> pages to flush   71 vmalloc_node(size, nid, ip) -> address
                                         72 vmalloc_nr_pages() -> pages (VmallocUsed / 4)
  73 __vmalloc_node(size, align, gfp, vm_flags, nid, ip) -> address: the common
     path of vmalloc_32(), vmalloc_user() and kvmalloc() (vm_flags: VM_USERMAP)

vfree() and vunmap() (and iounmap(), hc_io) clear the area's PTEs but do
not flush the TLB: they return the number of pages the area spans (0 when
nothing was torn down) with its start in mailbox word HC_WORD_RET2, and the
guest wrapper flushes that range itself (flush_tlb_kernel_range(): invlpg
page by page, as 6.1 does), which costs far less than a whole-TLB flush
from the host.  A caller that does not flush keeps stale translations.

The guest holds `struct page *` values where the host uses pfns; vmap()'s
array is read from guest memory and every entry must be a struct page in
mem_map, or the call fails with a report (Linux would map garbage).  The
caller recorded for an area (vmallocinfo's %pS) is the guest code that made
the call, symbolized: ip, the wrapper's _THIS_IP_ (what Linux gets from
__builtin_return_address(0)), saves reading the registers; when ip is not
the program's own code (0, SDK code, a caller that passes nothing), the
guest's frames are walked instead (GuestRuntime.guest_caller()).
"""
from mmemu.devices import devices_init
from mmemu.errors import MmemuError
from mmemu.layout import PAGE_SHIFT
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE
from mmemu.mm.vmalloc import (
    GFP_KERNEL, NUMA_NO_NODE, PAGE_KERNEL, VM_MAP, VM_USERMAP, describe_vmalloc_address,
    validate_vmap_areas, vmalloc_init,
)
from mmemu.runtime.abi import HC_MAILBOX_PHYS, HC_VMALLOC_BASE, HC_WORD_RET2

HC_VMALLOC = HC_VMALLOC_BASE + 0
HC_VZALLOC = HC_VMALLOC_BASE + 1
HC___VMALLOC = HC_VMALLOC_BASE + 2
HC_VFREE = HC_VMALLOC_BASE + 3
HC_VMAP = HC_VMALLOC_BASE + 4
HC_VUNMAP = HC_VMALLOC_BASE + 5
HC_VMALLOC_TO_PAGE = HC_VMALLOC_BASE + 6
HC_VMALLOC_NODE = HC_VMALLOC_BASE + 7
HC_VMALLOC_NR_PAGES = HC_VMALLOC_BASE + 8
HC___VMALLOC_NODE = HC_VMALLOC_BASE + 9

U32 = 0xFFFFFFFF


def attach(machine):
    """Give machine its vmalloc area, devices, ioremap and their hypercalls.

    Called once from Machine._attach_runtime(); returns (Vmalloc, DeviceBus)
    for machine.vmalloc and machine.devices.  Also adds the vmalloc checker
    to machine.checkers and the guard-page describer to the runtime's oopses.
    """
    from mmemu.runtime import hc_io
    rt = machine.runtime
    vm = vmalloc_init(machine)
    wire_reports(vm, rt)
    devices = devices_init(machine)
    register(rt, rt.table, vm)
    hc_io.register(rt, rt.table, vm)
    rt.region_describers.append(lambda addr: _describe_ioremapped(machine, vm, addr))
    rt.region_describers.append(lambda addr: describe_vmalloc_address(vm, addr))
    machine.checkers.append(lambda: validate_vmap_areas(machine))
    return vm, devices


def wire_reports(vm, rt):
    """Route vmalloc's reports through the runtime (RunResult.reports, panic_on_warn)."""
    vm.comm = lambda: rt.comm
    vm.where = rt.guest_caller
    vm.backtrace = rt.backtrace
    vm.warn = rt.warn
    report = getattr(rt, "report", None) or getattr(rt, "_report", None)
    if report is not None:
        vm.report = report


def register(rt, table, vm=None):
    """Serve the vmalloc calls for runtime rt."""
    m = rt.machine
    vm = vm or m.vmalloc
    base = m.mem_map.virt
    nr = m.mem_map.nr_pages
    caller = call_site(rt)
    to_flush = guest_flushes(m.pm)

    def page_ptr(pfn):
        return 0 if pfn is None else (base + pfn * STRUCT_PAGE_SIZE) & U32

    def hc_vmalloc(size, ip=0):
        return vm.vmalloc(size, caller=caller(ip)) or 0

    def hc_vzalloc(size, ip=0):
        return vm.vzalloc(size, caller=caller(ip)) or 0

    def hc___vmalloc(size, gfp, ip=0):
        return vm._vmalloc(size, gfp, caller=caller(ip)) or 0

    def hc_vmalloc_node(size, nid, ip=0):
        nid = NUMA_NO_NODE if nid == U32 else nid
        return vm._vmalloc(size, GFP_KERNEL, caller=caller(ip), nid=nid) or 0

    def hc___vmalloc_node(size, align, gfp, vm_flags, nid, ip=0):
        nid = NUMA_NO_NODE if nid == U32 else nid
        align = align if align and not align & (align - 1) else 1
        return vm.vmalloc_node_range(size, align, vm.vstart, vm.vend, gfp, PAGE_KERNEL,
                                     vm_flags & VM_USERMAP, nid, caller(ip)) or 0

    def hc_vfree(addr, ip=0):
        return to_flush(vm.vfree(addr, caller=caller(ip), flush=False))

    def hc_vunmap(addr, ip=0):
        return to_flush(vm.vunmap(addr, caller=caller(ip), flush=False))

    def hc_vmap(pages, count, flags, prot, ip=0):
        pfns = _read_pages_array(rt, pages, count, base, nr, vm.totalram_pages())
        if pfns is None:
            return 0
        return vm.vmap(pfns, count, flags or VM_MAP, prot & 0xFFF, caller=caller(ip)) or 0

    def hc_vmalloc_to_page(addr):
        return page_ptr(vm.vmalloc_to_page(addr))

    table.register(HC_VMALLOC, "vmalloc", guest_call(vm, hc_vmalloc), 2)
    table.register(HC_VZALLOC, "vzalloc", guest_call(vm, hc_vzalloc), 2)
    table.register(HC___VMALLOC, "__vmalloc", guest_call(vm, hc___vmalloc), 3)
    table.register(HC_VFREE, "vfree", guest_call(vm, hc_vfree), 2)
    table.register(HC_VMAP, "vmap", guest_call(vm, hc_vmap), 5)
    table.register(HC_VUNMAP, "vunmap", guest_call(vm, hc_vunmap), 2)
    table.register(HC_VMALLOC_TO_PAGE, "vmalloc_to_page", hc_vmalloc_to_page, 1)
    table.register(HC_VMALLOC_NODE, "vmalloc_node", guest_call(vm, hc_vmalloc_node), 3)
    table.register(HC_VMALLOC_NR_PAGES, "vmalloc_nr_pages", vm.vmalloc_nr_pages, 0)
    table.register(HC___VMALLOC_NODE, "__vmalloc_node", guest_call(vm, hc___vmalloc_node), 6)


def call_site(rt):
    """caller(ip) -> "main+0x1c/0x80": the guest code at ip, symbolized (%pS).

    For the calls whose guest wrapper passes _THIS_IP_.  An ip that is not
    in a function of the program's own code (0, garbage from a caller that
    passes nothing, SDK code, which is attributed to its first caller
    outside the SDK) falls back to rt.guest_caller(), which walks the
    guest's frames.  Names are remembered per ip until another image loads.
    """
    names = {}
    loaded = [None]

    def caller(ip):
        image = rt.image
        if image is not loaded[0]:
            names.clear()
            loaded[0] = image
        name = names.get(ip)
        if name is None:
            if image is None or image.is_sdk(ip) or image.function_at(ip) is None:
                return rt.guest_caller()
            name = names[ip] = image.symbolize(ip)
        return name
    return caller


def guest_flushes(pm):
    """to_flush(area) -> pages: hand the TLB of a torn-down area to the guest.

    Puts the area's start in mailbox word HC_WORD_RET2 and returns its size
    in pages, the vfree()/vunmap()/iounmap() result; 0 for no area (None).
    """
    u32, ret2 = pm.u32, (HC_MAILBOX_PHYS >> 2) + HC_WORD_RET2

    def to_flush(area):
        if area is None:
            return 0
        u32[ret2] = area.addr
        return area.size >> PAGE_SHIFT
    return to_flush


def guest_call(vm, fn):
    """fn, marked as serving the guest: reports then carry the guest's call trace."""
    def call(*args):
        vm.in_guest_call = True
        try:
            return fn(*args)
        finally:
            vm.in_guest_call = False
    call.__name__ = fn.__name__
    return call


def _read_pages_array(rt, pages, count, base, nr, totalram):
    """vmap()'s struct page *pages[count], as pfns; None (after a report) if unusable."""
    if count == 0 or count > totalram:
        return None
    try:
        raw = rt.machine.read(pages, 4 * count)
    except MmemuError:
        rt.warn(f"mmemu: vmap: the pages array at 0x{pages:08x} ({count} entries) is not "
                f"mapped, called from {rt.guest_caller()}")
        return None
    pfns = []
    for i in range(count):
        page = int.from_bytes(raw[4 * i:4 * i + 4], "little")
        off = page - base
        if not (0 <= off < nr * STRUCT_PAGE_SIZE and off % STRUCT_PAGE_SIZE == 0):
            rt.warn(f"mmemu: vmap: pages[{i}] = 0x{page:08x} is not a struct page in mem_map "
                    f"(0x{base:08x}-0x{base + nr * STRUCT_PAGE_SIZE:08x}), called from "
                    f"{rt.guest_caller()}")
            return None
        pfns.append(off // STRUCT_PAGE_SIZE)
    return pfns


def _describe_ioremapped(machine, vm, addr):
    """For an oops inside an ioremap area: which device (or nothing) is behind it."""
    area = vm.find_vm_area(addr)
    devices = getattr(machine, "devices", None)
    if area is None or not area.phys_addr or devices is None:
        return None
    if addr >= area.addr + area.get_vm_area_size():
        return None
    pa = area.phys_addr + (addr - area.addr)
    what = devices.describe(pa) or "nothing"
    return f"the address is in the ioremap area 0x{area.addr:08x} of phys 0x{area.phys_addr:08x}: {what}"
