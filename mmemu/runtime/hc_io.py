"""ioremap hypercalls: ioremap(phys, size, ip), iounmap(addr, ip), and
ioremap with a cache mode (phys, size, pcm, ip) for ioremap_uc(),
ioremap_wc(), ioremap_wt() and ioremap_cache() (their numbers are
runtime/abi.py's, mirrored in guest/include/mmemu/io.h).

On 686-pae, resource_size_t is 64 bits: ioremap() takes a fourth word, the
high half of phys.

ip is the caller's address, and iounmap() leaves the TLB to the guest, as
vfree() does (mmemu.runtime.hc_vmalloc).

readb()/writel() and friends need no hypercall: they are plain volatile
accesses in the guest that reach the device model through the page tables
ioremap() wrote and Unicorn's MMIO callbacks.
"""
from mmemu.arch.x86.ioremap import ioremap, ioremap_caller, iounmap
from mmemu.arch.x86.pgtable import _PAGE_PAT, _PAGE_PCD, _PAGE_PWT
from mmemu.runtime.abi import HC_IOREMAP, HC_IOREMAP_PCM, HC_IOUNMAP
from mmemu.runtime.hypercall import call_site, guest_flushes

# enum page_cache_mode -> PTE bits, through the PAT layout Linux programs
# (arch/x86/mm/pat/memtype.c: WB, WC, UC-, UC, WB, WP, UC-, WT).
CACHE_MODE_BITS = {0: 0,                                    # WB: ioremap_cache()
                   1: _PAGE_PWT,                            # WC: ioremap_wc()
                   2: _PAGE_PCD,                            # UC-: ioremap()
                   3: _PAGE_PCD | _PAGE_PWT,                # UC: ioremap_uc()
                   4: _PAGE_PAT | _PAGE_PCD | _PAGE_PWT,    # WT: ioremap_wt()
                   5: _PAGE_PAT | _PAGE_PWT}                # WP


def register(rt, table):
    """Serve the ioremap calls for runtime rt."""
    m = rt.machine
    caller = call_site(rt)
    to_flush = guest_flushes(m.pm)

    pae = m.pgtable.pae

    def hc_ioremap(phys, size, ip=0, phys_hi=0):
        return ioremap(m, phys | phys_hi << 32, size, caller=caller(ip)) or 0

    kernel_prot = m.pgtable.flavour.PAGE_KERNEL        # __PAGE_KERNEL: NX on 686-pae

    def hc_ioremap_pcm(phys, size, pcm, ip=0, phys_hi=0):
        bits = CACHE_MODE_BITS.get(pcm)
        if bits is None:
            rt.reporter.report(f"mmemu: ioremap: cache mode {pcm} is not an enum page_cache_mode, "
                    f"called from {rt.guest_caller()}")
            return 0
        return ioremap_caller(m, phys | phys_hi << 32, size, kernel_prot | bits,
                              caller=caller(ip)) or 0

    def hc_iounmap(addr, ip=0):
        return to_flush(iounmap(m, addr, caller=caller(ip), flush=False))

    table.register(HC_IOREMAP, "ioremap", hc_ioremap, 4 if pae else 3)
    table.register(HC_IOUNMAP, "iounmap", hc_iounmap, 2)
    table.register(HC_IOREMAP_PCM, "ioremap_prot", hc_ioremap_pcm, 5 if pae else 4)
