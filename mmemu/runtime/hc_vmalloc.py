"""vmalloc hypercalls: the guest's vmalloc()/vfree()/vmap() family.

The numbers and arguments are runtime/abi.py's (HC_VMALLOC_BASE + n,
mirrored in guest/include/mmemu/vmalloc.h).  __vmalloc_node(size, align,
gfp, vm_flags, nid, ip) is the common path of vmalloc_32(), vmalloc_user()
and kvmalloc() (vm_flags: VM_USERMAP).

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
from mmemu.errors import MmemuError
from mmemu.mm.mmzone import STRUCT_PAGE_SIZE
from mmemu.mm.vmalloc import GFP_KERNEL, NUMA_NO_NODE, PAGE_KERNEL, VM_MAP, VM_USERMAP
from mmemu.runtime.abi import (
    HC_VFREE, HC_VMALLOC, HC_VMALLOC_NODE, HC_VMALLOC_NR_PAGES, HC_VMALLOC_TO_PAGE, HC_VMAP,
    HC_VUNMAP, HC_VZALLOC, HC___VMALLOC, HC___VMALLOC_NODE,
)
from mmemu.runtime.hypercall import call_site, guest_flushes

U32 = 0xFFFFFFFF


def register(rt, table, vm):
    """Serve the vmalloc calls for runtime rt from vm (the machine's Vmalloc)."""
    m = rt.machine
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

    # pgprot_t is 64 bits on 686-pae: the SDK passes its high word (NX) last.
    pae = rt.machine.pgtable.pae
    prot_mask = rt.machine.pgtable.flavour.pte_flags_mask

    def hc_vmap(pages, count, flags, prot, ip=0, prot_hi=0):
        pfns = _read_pages_array(rt, pages, count, base, nr, vm.totalram_pages())
        if pfns is None:
            return 0
        prot = (prot | prot_hi << 32) & prot_mask
        return vm.vmap(pfns, count, flags or VM_MAP, prot, caller=caller(ip)) or 0

    def hc_vmalloc_to_page(addr):
        return page_ptr(vm.vmalloc_to_page(addr))

    table.register(HC_VMALLOC, "vmalloc", hc_vmalloc, 2)
    table.register(HC_VZALLOC, "vzalloc", hc_vzalloc, 2)
    table.register(HC___VMALLOC, "__vmalloc", hc___vmalloc, 3)
    table.register(HC_VFREE, "vfree", hc_vfree, 2)
    table.register(HC_VMAP, "vmap", hc_vmap, 6 if pae else 5)
    table.register(HC_VUNMAP, "vunmap", hc_vunmap, 2)
    table.register(HC_VMALLOC_TO_PAGE, "vmalloc_to_page", hc_vmalloc_to_page, 1)
    table.register(HC_VMALLOC_NODE, "vmalloc_node", hc_vmalloc_node, 3)
    table.register(HC_VMALLOC_NR_PAGES, "vmalloc_nr_pages", vm.vmalloc_nr_pages, 0)
    table.register(HC___VMALLOC_NODE, "__vmalloc_node", hc___vmalloc_node, 6)


def _read_pages_array(rt, pages, count, base, nr, totalram):
    """vmap()'s struct page *pages[count], as pfns; None (after a report) if unusable."""
    if count == 0 or count > totalram:
        return None
    try:
        raw = rt.machine.read(pages, 4 * count)
    except MmemuError:
        rt.reporter.report(f"mmemu: vmap: the pages array at 0x{pages:08x} ({count} entries) is not "
                           f"mapped, called from {rt.guest_caller()}")
        return None
    pfns = []
    for i in range(count):
        page = int.from_bytes(raw[4 * i:4 * i + 4], "little")
        off = page - base
        if not (0 <= off < nr * STRUCT_PAGE_SIZE and off % STRUCT_PAGE_SIZE == 0):
            rt.reporter.report(f"mmemu: vmap: pages[{i}] = 0x{page:08x} is not a struct page in mem_map "
                               f"(0x{base:08x}-0x{base + nr * STRUCT_PAGE_SIZE:08x}), called from "
                               f"{rt.guest_caller()}")
            return None
        pfns.append(off // STRUCT_PAGE_SIZE)
    return pfns
