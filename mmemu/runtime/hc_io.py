"""ioremap hypercalls: ioremap(phys, size, ip) and iounmap(addr, ip) (their
numbers are runtime/abi.py's, mirrored in guest/include/mmemu/io.h).

ip is the caller's address, and iounmap() leaves the TLB to the guest, as
vfree() does (mmemu.runtime.hc_vmalloc).

readb()/writel() and friends need no hypercall: they are plain volatile
accesses in the guest that reach the device model through the page tables
ioremap() wrote and Unicorn's MMIO callbacks.
"""
from mmemu.arch.x86.ioremap import ioremap, iounmap
from mmemu.runtime.abi import HC_IOREMAP, HC_IOUNMAP
from mmemu.runtime.hypercall import call_site, guest_flushes


def register(rt, table):
    """Serve the ioremap calls for runtime rt."""
    m = rt.machine
    caller = call_site(rt)
    to_flush = guest_flushes(m.pm)

    def hc_ioremap(phys, size, ip=0):
        return ioremap(m, phys, size, caller=caller(ip)) or 0

    def hc_iounmap(addr, ip=0):
        return to_flush(iounmap(m, addr, caller=caller(ip), flush=False))

    table.register(HC_IOREMAP, "ioremap", hc_ioremap, 3)
    table.register(HC_IOUNMAP, "iounmap", hc_iounmap, 2)
