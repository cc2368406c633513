"""/proc/vmallocinfo and the vmalloc lines of /proc/meminfo.

Models mm/vmalloc.c:s_show() of Linux 6.1: one line per vm area, by
address::

    0xf73fe000-0xf7400000    8192 main+0x1c/0x80 pages=1 vmalloc
    0xf7400000-0xf7402000    8192 main+0x40/0x80 phys=0xfe000000 ioremap

"0x%pK-0x%pK %7ld" (start, end, size including the guard page), then " %pS"
for the caller when there is one, " pages=%d" when the area owns pages,
" phys=%pa" (with the 0x, eight digits: phys_addr_t is 32 bits) when it has
a physical address, then the flag words ioremap, vmalloc, vmap, user,
dma-coherent, and " vpages" when the pages array was itself vmalloc'd.
NUMA machines add " N<node>=<pages>" as show_numa_info() does (a 686 build
has no CONFIG_NUMA, so single-node machines print none).  mmemu frees areas
at once, so there are no "unpurged vm_area" lines.
"""
from mmemu.layout import PAGE_SHIFT
from mmemu.mm.vmalloc import VM_ALLOC, VM_DMA_COHERENT, VM_IOREMAP, VM_MAP, VM_USERMAP

_FLAG_WORDS = ((VM_IOREMAP, "ioremap"), (VM_ALLOC, "vmalloc"), (VM_MAP, "vmap"),
               (VM_USERMAP, "user"), (VM_DMA_COHERENT, "dma-coherent"))


def vmallocinfo(machine):
    """The text of /proc/vmallocinfo for machine."""
    vm = machine.vmalloc
    return "".join(s_show(vm, area) + "\n" for area in vm.areas())


def s_show(vm, v):
    """One /proc/vmallocinfo line (without the newline) for VmStruct v."""
    out = f"0x{v.addr:08x}-0x{v.addr + v.size:08x} {v.size:7d}"
    if v.caller:
        out += f" {v.caller}"
    if v.nr_pages:
        out += f" pages={v.nr_pages}"
    if v.phys_addr:
        out += f" phys=0x{v.phys_addr:08x}"
    for bit, word in _FLAG_WORDS:
        if v.flags & bit:
            out += f" {word}"
    if v.pages_area is not None:
        out += " vpages"
    if vm.nr_nodes > 1 and v.nr_pages:
        out += show_numa_info(vm, v)
    return out


def show_numa_info(vm, v):
    """" N0=12 N1=3": the area's pages by node."""
    counters = {}
    for pfn in v.pages:
        nid = vm.page_nid(pfn)
        counters[nid] = counters.get(nid, 0) + 1
    return "".join(f" N{nid}={counters[nid]}" for nid in sorted(counters))


def vmalloc_meminfo(machine):
    """The vmalloc lines of /proc/meminfo, in kB: VmallocTotal, VmallocUsed, VmallocChunk.

    As 6.1: VmallocUsed is vmalloc_nr_pages() (pages vmalloc allocated, not
    vmap or ioremap ranges) and VmallocChunk is always 0.
    """
    vm = machine.vmalloc
    return {
        "VmallocTotal": (vm.vend - vm.vstart) >> 10,
        "VmallocUsed": vm.vmalloc_nr_pages() << (PAGE_SHIFT - 10),
        "VmallocChunk": 0,
    }
