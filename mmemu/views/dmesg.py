"""The boot's kernel log, as dmesg prints it, and the classic layout block.

The boot (init/main.py) prints its memory lines into the machine's kernel
log in 6.1's order and words: the e820 map, the memblock calls under
memblock=debug, the initrd, the HIGHMEM/LOWMEM lines, Zone ranges to
Initmem setup, the per-cpu chunk, Built 1 zonelists, the command line, the
hash tables, Initializing HighMem, the Memory: line, the SLUB line and the
late frees.  ``mmemu info`` prints them, then the "virtual kernel memory
layout:" block that 6.1 no longer prints but kernels up to 4.x did, in that
classic form.  On 686-pae the boot log has the NX line of
arch/x86/mm/setup_nx.c's x86_report_nx() after the e820 map, and
mark_rodata_ro()'s W+X check line.
"""
from mmemu.layout import PAGE_OFFSET


def boot_log(machine):
    """The boot's kernel log lines (a list), as dmesg shows them, without timestamps."""
    end = machine.boot.log_end
    return [line.text for line in machine.log.lines[:end]]


def virtual_layout_lines(layout, image=None):
    """The classic "virtual kernel memory layout:" block of 4.x mem_init().

    image: the kernel image (KernelImage) whose .init, .data and .text it shows.
    """
    def kb(a, b):
        return (b - a) >> 10

    def mb(a, b):
        return (b - a) >> 20

    fix_s, fix_e = layout.fixaddr_start, layout.fixaddr_top
    cea_s, cea_e = layout.cpu_entry_area_base, layout.fixaddr_tot_start
    pk_s, pk_e = layout.pkmap_base, layout.pkmap_end
    vm_s, vm_e = layout.vmalloc_start, layout.vmalloc_end
    lo_s, lo_e = PAGE_OFFSET, layout.high_memory
    lines = [
        "virtual kernel memory layout:",
        f"    fixmap  : 0x{fix_s:08x} - 0x{fix_e:08x}   ({kb(fix_s, fix_e):4d} kB)",
        f"  cpu_entry : 0x{cea_s:08x} - 0x{cea_e:08x}   ({kb(cea_s, cea_e):4d} kB)",
        f"    pkmap   : 0x{pk_s:08x} - 0x{pk_e:08x}   ({kb(pk_s, pk_e):4d} kB)",
        f"    vmalloc : 0x{vm_s:08x} - 0x{vm_e:08x}   ({mb(vm_s, vm_e):4d} MB)",
        f"    lowmem  : 0x{lo_s:08x} - 0x{lo_e:08x}   ({mb(lo_s, lo_e):4d} MB)",
    ]
    if image is not None:
        i_s, i_e = PAGE_OFFSET + image.init_begin, PAGE_OFFSET + image.init_end
        d_s, d_e = PAGE_OFFSET + image.sdata, PAGE_OFFSET + image.edata
        t_s, t_e = PAGE_OFFSET + image.text, PAGE_OFFSET + image.etext
        lines += [f"      .init : 0x{i_s:08x} - 0x{i_e:08x}   ({kb(i_s, i_e):4d} kB)",
                  f"      .data : 0x{d_s:08x} - 0x{d_e:08x}   ({kb(d_s, d_e):4d} kB)",
                  f"      .text : 0x{t_s:08x} - 0x{t_e:08x}   ({kb(t_s, t_e):4d} kB)"]
    return lines


def boot_summary(machine):
    """Everything `mmemu info` prints: the boot log, then the classic layout block."""
    lines = boot_log(machine)
    lines += virtual_layout_lines(machine.layout, machine.kernel_image)
    return "\n".join(lines) + "\n"
