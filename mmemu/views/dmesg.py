"""The boot-time memory summary, as Linux's dmesg prints it.

Lines from arch/x86/kernel/e820.c (e820__print_table), arch/x86/mm/init_32.c
(highmem/lowmem lines), mm/page_alloc.c (free_area_init: Zone ranges, Movable
zone start, Early memory node ranges, Initmem setup; mem_init_print_info:
the Memory: line) and the "virtual kernel memory layout:" block that 6.1 no
longer prints but kernels up to 4.x did, in that classic form.
"""
from mmemu.layout import (
    CPU_ENTRY_AREA_BASE, FIXADDR_TOT_START, KERNEL_PHYS, LAST_PKMAP, PAGE_OFFSET,
    PAGE_SHIFT, PAGE_SIZE, ZONE_NAMES,
)


def e820_table(cfg):
    """BIOS-e820 lines: usable and reserved ranges in address order."""
    rows = [(r.start, r.end, "usable") for r in cfg.ram]
    rows += [(r.start, r.end, "reserved") for r in cfg.reserved]
    lines = ["BIOS-provided physical RAM map:"]
    for start, end, kind in sorted(rows):
        lines.append(f"BIOS-e820: [mem {start:#018x}-{end - 1:#018x}] {kind}")
    return lines


def lowmem_lines(layout):
    high = layout.max_pfn - layout.max_low_pfn
    lines = []
    if high:
        lines.append(f"{(high << PAGE_SHIFT) >> 20}MB HIGHMEM available.")
    lines.append(f"{(layout.max_low_pfn << PAGE_SHIFT) >> 20}MB LOWMEM available.")
    lines.append(f"  mapped low ram: 0 - {layout.max_low_pfn << PAGE_SHIFT:08x}")
    lines.append(f"  low ram: 0 - {layout.max_low_pfn << PAGE_SHIFT:08x}")
    return lines


def zone_range_lines(layout, movable_start=None):
    """free_area_init()'s Zone ranges / Movable zone start / Early memory node ranges."""
    lowest = min(s for _, s, _ in layout.memory)
    limits = [min(layout.dma_pfn, layout.max_low_pfn), layout.max_low_pfn, layout.max_pfn]
    lines = ["Zone ranges:"]
    start = lowest
    for zid, hi in enumerate(limits):
        end = max(hi, start)
        if end == start:
            lines.append(f"  {ZONE_NAMES[zid]:<8} empty")
        else:
            lines.append(f"  {ZONE_NAMES[zid]:<8} [mem {start << PAGE_SHIFT:#018x}-"
                         f"{(end << PAGE_SHIFT) - 1:#018x}]")
        start = end
    lines.append("Movable zone start for each node")
    for nid, pfn in sorted((movable_start or {}).items()):
        if pfn:
            lines.append(f"  Node {nid}: {pfn << PAGE_SHIFT:#018x}")
    lines.append("Early memory node ranges")
    for nid, s, e in layout.memory:
        lines.append(f"  node {nid:3d}: [mem {s << PAGE_SHIFT:#018x}-{(e << PAGE_SHIFT) - 1:#018x}]")
    for nid in sorted({n for n, _, _ in layout.memory}):
        spans = [(s, e) for n, s, e in layout.memory if n == nid]
        lines.append(f"Initmem setup node {nid} [mem {min(s for s, _ in spans) << PAGE_SHIFT:#018x}-"
                     f"{(max(e for _, e in spans) << PAGE_SHIFT) - 1:#018x}]")
    return lines


def memory_line(nr_free, present, managed, highmem_managed, image=None):
    """mem_init_print_info()'s Memory: line (sizes in KiB)."""
    code = data = ro = init = bss = 0
    if image is not None:
        code, data, ro, bss = (getattr(image, k, 0) >> 10 for k in
                               ("text_size", "data_size", "rodata_size", "bss_size"))
    return (f"Memory: {nr_free * 4}K/{present * 4}K available ({code}K kernel code, "
            f"{data}K rwdata, {ro}K rodata, {init}K init, {bss}K bss, "
            f"{(present - managed) * 4}K reserved, 0K cma-reserved, {highmem_managed * 4}K highmem)")


def virtual_layout_lines(layout, image=None):
    """The classic "virtual kernel memory layout:" block of 4.x mem_init()."""
    def kb(a, b):
        return (b - a) >> 10

    def mb(a, b):
        return (b - a) >> 20

    fix_s, fix_e = layout.fixaddr_start, layout.fixaddr_top
    cea_s, cea_e = CPU_ENTRY_AREA_BASE, FIXADDR_TOT_START
    pk_s, pk_e = layout.pkmap_base, layout.pkmap_base + LAST_PKMAP * PAGE_SIZE
    vm_s, vm_e = layout.vmalloc_start, layout.vmalloc_end
    lo_s, lo_e = PAGE_OFFSET, layout.high_memory
    t_s = PAGE_OFFSET + KERNEL_PHYS
    if image is not None and getattr(image, "text", None):
        t_s, t_e = image.text
        d_s, d_e = getattr(image, "data", (t_e, t_e)) or (t_e, t_e)
    else:
        t_e = d_s = d_e = t_s
    return [
        "virtual kernel memory layout:",
        f"    fixmap  : 0x{fix_s:08x} - 0x{fix_e:08x}   ({kb(fix_s, fix_e):4d} kB)",
        f"  cpu_entry : 0x{cea_s:08x} - 0x{cea_e:08x}   ({kb(cea_s, cea_e):4d} kB)",
        f"    pkmap   : 0x{pk_s:08x} - 0x{pk_e:08x}   ({kb(pk_s, pk_e):4d} kB)",
        f"    vmalloc : 0x{vm_s:08x} - 0x{vm_e:08x}   ({mb(vm_s, vm_e):4d} MB)",
        f"    lowmem  : 0x{lo_s:08x} - 0x{lo_e:08x}   ({mb(lo_s, lo_e):4d} MB)",
        f"      .init : 0x{d_e:08x} - 0x{d_e:08x}   ({0:4d} kB)",
        f"      .data : 0x{d_s:08x} - 0x{d_e:08x}   ({kb(d_s, d_e):4d} kB)",
        f"      .text : 0x{t_s:08x} - 0x{t_e:08x}   ({kb(t_s, t_e):4d} kB)",
    ]


def boot_summary(machine):
    """Everything `mmemu info` prints, in dmesg order."""
    from mmemu.mm import page_alloc
    cfg, lay, mm = machine.cfg, machine.layout, machine.mm
    lines = e820_table(cfg) + lowmem_lines(lay)
    lines += zone_range_lines(lay, getattr(mm, "movable_start", None))
    present = sum(z.present_pages for z in lay.zones)
    managed = page_alloc.totalram_pages(mm)
    high = page_alloc.totalhigh_pages(mm)
    lines.append(memory_line(page_alloc.nr_free_pages(mm), present, managed, high,
                             getattr(machine, "image", None)))
    lines += virtual_layout_lines(lay, getattr(machine, "image", None))
    return "\n".join(lines) + "\n"


def boot_log(machine):
    """The boot's memory lines as the kernel log holds them, in order (a list)."""
    return boot_summary(machine).splitlines()
