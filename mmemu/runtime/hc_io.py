"""ioremap hypercalls (HC_IO_BASE + n, mirrored in guest/include/mmemu/io.h):

  80 ioremap(phys, size, ip) -> address    81 iounmap(addr, ip) -> pages to flush
  82 ioremap with a cache mode (phys, size, pcm, ip) -> address: ioremap_uc(),
     ioremap_wc(), ioremap_wt(), ioremap_cache()

ip is the caller's address, and iounmap() leaves the TLB to the guest, as
vfree() does (mmemu.runtime.hc_vmalloc).

readb()/writel() and friends need no hypercall: they are plain volatile
accesses in the guest that reach the device model through the page tables
ioremap() wrote and Unicorn's MMIO callbacks.
"""
from mmemu.arch.x86.ioremap import ioremap, ioremap_caller, iounmap
from mmemu.arch.x86.pgtable import _PAGE_PAT, _PAGE_PCD, _PAGE_PWT, __PAGE_KERNEL
from mmemu.runtime.abi import HC_IO_BASE
from mmemu.runtime.hc_vmalloc import call_site, guest_call, guest_flushes

HC_IOREMAP = HC_IO_BASE + 0
HC_IOUNMAP = HC_IO_BASE + 1
HC_IOREMAP_PCM = HC_IO_BASE + 2

# enum page_cache_mode -> PTE bits, through the PAT layout Linux programs
# (arch/x86/mm/pat/memtype.c: WB, WC, UC-, UC, WB, WP, UC-, WT).
CACHE_MODE_BITS = {0: 0,                                    # WB: ioremap_cache()
                   1: _PAGE_PWT,                            # WC: ioremap_wc()
                   2: _PAGE_PCD,                            # UC-: ioremap()
                   3: _PAGE_PCD | _PAGE_PWT,                # UC: ioremap_uc()
                   4: _PAGE_PAT | _PAGE_PCD | _PAGE_PWT,    # WT: ioremap_wt()
                   5: _PAGE_PAT | _PAGE_PWT}                # WP


def register(rt, table, vm=None):
    """Serve the ioremap calls for runtime rt (vm: the machine's Vmalloc)."""
    m = rt.machine
    vm = vm or m.vmalloc
    caller = call_site(rt)
    to_flush = guest_flushes(m.pm)

    def hc_ioremap(phys, size, ip=0):
        return ioremap(m, phys, size, caller=caller(ip)) or 0

    def hc_ioremap_pcm(phys, size, pcm, ip=0):
        bits = CACHE_MODE_BITS.get(pcm)
        if bits is None:
            rt.warn(f"mmemu: ioremap: cache mode {pcm} is not an enum page_cache_mode, "
                    f"called from {rt.guest_caller()}")
            return 0
        return ioremap_caller(m, phys, size, __PAGE_KERNEL | bits, caller=caller(ip)) or 0

    def hc_iounmap(addr, ip=0):
        return to_flush(iounmap(m, addr, caller=caller(ip), flush=False))

    table.register(HC_IOREMAP, "ioremap", guest_call(vm, hc_ioremap), 3)
    table.register(HC_IOUNMAP, "iounmap", guest_call(vm, hc_iounmap), 2)
    table.register(HC_IOREMAP_PCM, "ioremap_prot", guest_call(vm, hc_ioremap_pcm), 4)
