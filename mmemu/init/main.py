"""start_kernel(): the memory half of Linux 6.1's boot, in the kernel's order.

Models init/main.c:start_kernel() as it concerns memory, with the
initcalls that change it, on the 686 kernel:

    setup_arch()            memblock, the image and initrd reserved, e820
    paging_init()           swapper_pg_dir, the direct map (the machine's)
    free_area_init()        zones, mem_map, pageblock flags
    (rest of setup_arch)    firmware allocations
    setup_command_line(), setup_per_cpu_areas(), build_all_zonelists(),
    print_unknown_bootoptions(), vfs_caches_init_early(), trap_init()'s CPU entry area
    mm_init(): mem_init()   the swiotlb bounce buffer (RAM above 4 GiB),
                            memblock_free_all(), the Memory: line; the SLUB line
               kmem_cache_init(), vmalloc_init()    (the machine's: initcalls["mm_init"])
    setup_per_cpu_pageset() the pcp lists leave the boot pageset
    arch_cpu_finalize_init() frees the SMP alternatives (one CPU)
    sock_init()             core_initcall: ptp_classifier_init(), a BPF program
                            locked read-only (the machine's: initcalls["core_initcall"])
    init_per_zone_wmark_min()   postcore_initcall: min_free_kbytes, watermarks
    hugepage_init()         subsys_initcall: THP raises min_free_kbytes
    populate_rootfs()       rootfs_initcall: the initrd is freed
    free_initmem()          kernel_init: the init sections are freed

so that the watermarks are computed on the managed pages of that moment,
before the initrd and the init sections come back (docs/reference-6.1-686.md,
section 5).  A config's min_free_kbytes is the sysctl written once the boot
is done.  Every line goes to the kernel log, not to the console (``quiet``).
"""
from dataclasses import dataclass

from mmemu.kernel.image import command_line, unknown_params

SLUB_LINE = "SLUB: HWalign={align}, Order=0-3, MinObjects=0, CPUs=1, Nodes={nodes}"
CACHE_LINE_SIZE = 32            # cache_line_size() of the qemu32 CPU (clflush size)


@dataclass
class Boot:
    """What the boot leaves: memblock, the image and initrd, the page tables, mm."""

    memblock: object
    image: object
    initrd: object
    pgtable: object
    mm: object
    cmdline: str
    log_end: int                # the kernel log's length when the boot was done


def boot_options(cfg):
    """The command-line options a config's keys stand for, in a fixed order."""
    from mmemu.config import DEFAULT_VMALLOC_RESERVE, VMALLOC_OFFSET, format_size
    options = []
    if cfg.vmalloc != DEFAULT_VMALLOC_RESERVE:
        options.append(f"vmalloc={format_size(cfg.vmalloc - VMALLOC_OFFSET)}")
    if cfg.highmem is not None:
        options.append(f"highmem={format_size(cfg.highmem)}")
    if cfg.kernelcore is not None:
        options.append(f"kernelcore={cfg.kernelcore}")
    if cfg.movablecore is not None:
        options.append(f"movablecore={cfg.movablecore}")
    if cfg.slub_debug:
        options.append(f"slub_debug={cfg.slub_debug}")
    if cfg.transparent_hugepage != "always":
        options.append(f"transparent_hugepage={cfg.transparent_hugepage}")
    return options


def kernel_command_line(cfg):
    """The machine's kernel command line: kernel.cmdline and the options of its keys."""
    return command_line(cfg.kernel, boot_options(cfg))


def setup_command_line(mb, cmdline):
    """setup_command_line(): saved_command_line and static_command_line from memblock."""
    for _ in range(2):
        mb.alloc_try_nid(len(cmdline) + 1, caller="start_kernel", name="command line")


def print_unknown_bootoptions(mb, printk, cmdline):
    """print_unknown_bootoptions(): what init gets unparsed, in a buffer given back at once."""
    unknown = unknown_params(cmdline)
    if not unknown:
        return
    size = 1 + sum(len(word) + 1 for word in unknown)
    buf = mb.alloc_try_nid(size, caller="start_kernel", name="unknown options")
    printk(f"Unknown kernel command line parameters \"{' '.join(unknown)}\", will be passed "
           f"to user space.")
    mb.free(buf, size)


def built_zonelists_line(mm, estimates):
    """build_all_zonelists()'s line: Total pages is nr_free_zone_pages() on the estimates
    free_area_init_core() left in managed_pages (no watermarks yet).  Fewer
    than a pageblock of each migratetype turns grouping by mobility off
    (mm.page_group_by_mobility_disabled)."""
    from mmemu.mm.mmzone import MIGRATE_TYPES
    total = sum(estimates[z] for z in estimates)
    mm.page_group_by_mobility_disabled = total < (1 << mm.pageblock_order) * MIGRATE_TYPES
    grouping = "off" if mm.page_group_by_mobility_disabled else "on"
    nodes = sum(1 for p in mm.node_data if p is not None)
    return f"Built {nodes} zonelists, mobility grouping {grouping}.  Total pages: {total}"


def memory_line(mm, image):
    """mem_init_print_info()'s Memory: line (KiB), right after memblock_free_all()."""
    from mmemu.mm import page_alloc
    present = sum(z.present_pages for z in mm.zones)
    managed = page_alloc.totalram_pages(mm)
    s = image.sizes
    return (f"Memory: {page_alloc.nr_free_pages(mm) * 4}K/{present * 4}K available "
            f"({s['code'] >> 10}K kernel code, {s['rwdata'] >> 10}K rwdata, "
            f"{s['rodata'] >> 10}K rodata, {s['init'] >> 10}K init, {s['bss'] >> 10}K bss, "
            f"{(present - managed) * 4}K reserved, 0K cma-reserved, "
            f"{page_alloc.totalhigh_pages(mm) * 4}K highmem)")


def start_kernel(cfg, layout, physmem, log, paging=None, reporter=None, initcalls=None):
    """Boot cfg's memory: returns a Boot.  paging(mb, image) -> PageTable builds
    the boot page tables (the machine's), or None for the allocator alone;
    reporter is the page allocator's (kernel/panic.py); initcalls:
    {"mm_init": fn(mm), "core_initcall": fn(mm)}, the machine's parts of
    the boot that need more than the page allocator (slab, vmalloc)."""
    initcalls = initcalls or {}
    from mmemu.arch.x86.setup import e820_end_of_ram_pfn, setup_arch, setup_arch_late
    from mmemu.kernel import swiotlb
    from mmemu.config import boot_warnings
    from mmemu.mm import huge_memory, mm_init, percpu, system_hash
    from mmemu.mm.page_alloc import min_free_kbytes_sysctl_handler
    cmdline = kernel_command_line(cfg)
    echo, log.echo = log.echo, False
    try:
        mb, image, initrd = setup_arch(cfg, layout, log.printk, cmdline, boot_warnings(cfg))
        pgtable = paging(mb, image) if paging else None
        mm = mm_init.free_area_init(cfg, layout, physmem, mb, log, reporter)
        setup_arch_late(mb, cfg, layout.max_pfn, log.printk)
        setup_command_line(mb, cmdline)
        mm.pcpu_first_chunk = percpu.setup_per_cpu_areas(mb, log.printk, layout.flavour.pae)
        estimates, nr_kernel, nr_all = mm_init.managed_estimates(mm)
        log.printk(built_zonelists_line(mm, estimates))
        log.printk(f"Kernel command line: {cmdline}")
        print_unknown_bootoptions(mb, log.printk, cmdline)
        system_hash.vfs_caches_init_early(mb, log.printk, nr_kernel, nr_all)
        if pgtable is not None:
            from mmemu.arch.x86.init import setup_cpu_entry_area_ptes
            setup_cpu_entry_area_ptes(pgtable, layout)      # trap_init()
        swiotlb.pci_iommu_alloc(mb, e820_end_of_ram_pfn(cfg))      # mem_init()
        mm_init.memblock_free_all(mm, mb)
        log.printk(memory_line(mm, image))
        log.printk(SLUB_LINE.format(align=CACHE_LINE_SIZE, nodes=layout.nr_nodes))
        if "mm_init" in initcalls:
            initcalls["mm_init"](mm)
        mm_init.setup_per_cpu_pageset(mm)
        mm_init.free_reserved_area(mm, image.smp_locks, image.smp_locks_end, "SMP alternatives")
        if "core_initcall" in initcalls:
            initcalls["core_initcall"](mm)
        mm_init.init_per_zone_wmark_min(mm)
        huge_memory.hugepage_init(mm, cfg.transparent_hugepage)
        if initrd is not None:
            mm_init.free_reserved_area(mm, initrd.start, initrd.end + 4095 & ~4095, "initrd")
        mm_init.free_reserved_area(mm, image.init_begin, image.init_end,
                                   "unused kernel image (initmem)")
        if cfg.min_free_kbytes is not None:
            min_free_kbytes_sysctl_handler(mm, cfg.min_free_kbytes)
    finally:
        log.echo = echo
    mm.memblock = mb
    return Boot(mb, image, initrd, pgtable, mm, cmdline, log.mark())


def boot_mm(config, log=None, **overrides):
    """The page allocator booted on its own (no page tables): the MmState."""
    import dataclasses

    from mmemu.config import MachineConfig, load_config
    from mmemu.layout import PAGE_SIZE, compute_layout
    from mmemu.log import KernelLog
    from mmemu.physmem import PhysMem
    cfg = config if isinstance(config, MachineConfig) else load_config(config)
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    layout = compute_layout(cfg)
    top = max(r.end for r in cfg.ram if r.end <= 1 << 32)
    physmem = PhysMem((top + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
    return start_kernel(cfg, layout, physmem, log or KernelLog(echo=False)).mm
