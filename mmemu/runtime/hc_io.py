"""ioremap hypercalls (HC_IO_BASE + n, mirrored in guest/include/mmemu/io.h):

  80 ioremap(phys, size) -> address    81 iounmap(addr)

readb()/writel() and friends need no hypercall: they are plain volatile
accesses in the guest that reach the device model through the page tables
ioremap() wrote and Unicorn's MMIO callbacks.
"""
from mmemu.arch.x86.ioremap import ioremap, iounmap
from mmemu.runtime.abi import HC_IO_BASE
from mmemu.runtime.hc_vmalloc import guest_call

HC_IOREMAP = HC_IO_BASE + 0
HC_IOUNMAP = HC_IO_BASE + 1


def register(rt, table, vm=None):
    """Serve the ioremap calls for runtime rt (vm: the machine's Vmalloc)."""
    m = rt.machine
    vm = vm or m.vmalloc

    def hc_ioremap(phys, size):
        return ioremap(m, phys, size, caller=rt.guest_caller()) or 0

    def hc_iounmap(addr):
        iounmap(m, addr, caller=rt.guest_caller())

    table.register(HC_IOREMAP, "ioremap", guest_call(vm, hc_ioremap), 2)
    table.register(HC_IOUNMAP, "iounmap", guest_call(vm, hc_iounmap), 1)
