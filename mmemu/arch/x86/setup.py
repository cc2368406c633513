"""setup_arch(): the i386 boot from the e820 map to memblock and the boot log.

Models the memory half of arch/x86/kernel/setup.c:setup_arch() in Linux 6.1
as the 686 kernel runs it on a PC: early_reserve_memory() (the image, the
low 64 KiB, the initrd, the BIOS regions), the e820 lines, reserve_brk(),
e820__memblock_setup(), reserve_real_mode(), init_mem_mapping()'s probe for
a 4 MiB start, reserve_initrd() (moving an initrd that lies above lowmem),
initmem_init()'s HIGHMEM/LOWMEM lines, and, after free_area_init(), the
small boot allocations the firmware tables cause (the HPET and IO-APIC
resources, e820__reserve_resources(), firmware_map_add_early(),
e820__register_nosave_regions()).  Each memblock call is the kernel's,
with its caller, size and alignment (docs/reference-6.1-686.md, section 4).

Differs: the machine's firmware is assumed to be a PC's (QEMU's): one
HPET, one IO-APIC, the MP table and ACPI tables outside RAM (they are not
reserved here: they change no page); the initrd lies where QEMU's loader
puts one (section 4, "early").
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Optional

from mmemu.config_schema import MachineConfig
from mmemu.kernel.image import KernelImage
from mmemu.flavour import flavour_of
from mmemu.layout import PAGE_SHIFT, PAGE_SIZE, Layout
from mmemu.mm.memblock import Memblock

MiB = 1 << 20
X86_RESERVE_LOW = 64 << 10          # CONFIG_X86_RESERVE_LOW=64
ISA_END_ADDRESS = 0x100000
MAX_ARCH_PFN = 1 << (32 - PAGE_SHIFT)     # non-PAE: 4 GiB (see max_arch_pfn())
NX_ACTIVE = "NX (Execute Disable) protection: active"
REAL_MODE_SIZE = 16 << 10           # the trampoline reserve_real_mode() takes below 1 MiB
INITRD_ADDR_MAX = 0x7FFFFFFF        # the 686 bzImage's initrd_addr_max
SIZEOF_RESOURCE = 32                # struct resource (32-bit resource_size_t; 40 on PAE)
SIZEOF_FIRMWARE_MAP_ENTRY = 64      # struct firmware_map_entry, SMP_CACHE_BYTES rounded
SIZEOF_NOSAVE_REGION = 16           # struct nosave_region
HPET_RESOURCE = 41                  # acpi_parse_hpet(): struct resource + "HPET %u" name
IOAPIC_RESOURCE = 43                # io_apic_init_mappings(): struct resource + name, 1 IO-APIC


@dataclass(frozen=True)
class Initrd:
    """The initrd as the boot loader left it and where the kernel keeps it."""

    image: int                  # where the loader put it
    size: int                   # bytes
    start: int                  # where it lies after reserve_initrd() (moved or not)

    @property
    def end(self) -> int:
        return self.start + self.size


def page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def e820_entries(cfg: MachineConfig) -> list[tuple[int, int, str]]:
    """The BIOS e820 table: [(start, end, kind)] by address, as the BIOS-e820 lines print it."""
    rows = [(r.start, r.end, "usable") for r in cfg.ram]
    rows += [(r.start, r.end, "reserved") for r in cfg.reserved]
    return sorted(rows)


def e820_table(cfg: MachineConfig) -> list[tuple[int, int, str]]:
    """e820_table after trim_bios_range(): page 0 becomes reserved (the entry splits)."""
    out: list[tuple[int, int, str]] = []
    for start, end, kind in e820_entries(cfg):
        if kind == "usable" and start < PAGE_SIZE:
            out.append((start, PAGE_SIZE, "reserved"))
            start = PAGE_SIZE
        if end > start:
            out.append((start, end, kind))
    return out


def e820_log_lines(cfg: MachineConfig) -> list[str]:
    """e820__print_table("BIOS-e820") and trim_bios_range()'s update and remove lines."""
    lines = ["BIOS-provided physical RAM map:"]
    lines += [f"BIOS-e820: [mem {s:#018x}-{e - 1:#018x}] {kind}"
              for s, e, kind in e820_entries(cfg)]
    if any(kind == "usable" and s < PAGE_SIZE for s, _, kind in e820_entries(cfg)):
        lines.append("e820: update [mem 0x00000000-0x00000fff] usable ==> reserved")
    lines.append("e820: remove [mem 0x000a0000-0x000fffff] usable")
    return lines


def max_arch_pfn(cfg: MachineConfig) -> int:
    """max_arch_pfn: 4 GiB on 686, 64 GiB on 686-pae (MAX_PHYSMEM_BITS 36)."""
    return flavour_of(cfg).max_arch_pfn


def e820_end_of_ram_pfn(cfg: MachineConfig) -> int:
    """e820__end_of_ram_pfn(): the end of RAM below max_arch_pfn."""
    limit = max_arch_pfn(cfg)
    return max(min(r.end >> PAGE_SHIFT, limit) for r in cfg.ram
               if r.start >> PAGE_SHIFT < limit)


def qemu_initrd_address(cfg: MachineConfig, size: int) -> int:
    """Where QEMU's Linux loader puts an initrd of size bytes (hw/i386/x86.c).

    Below min(initrd_addr_max, the end of RAM below 4 GiB), page aligned
    down: the top of the last usable range, less the initrd.
    """
    top = max(r.end for r in cfg.ram if r.end <= 1 << 32)
    return (min(INITRD_ADDR_MAX, top) - size) & ~(PAGE_SIZE - 1)


def early_reserve_memory(mb: Memblock, cfg: MachineConfig, image: KernelImage, initrd_image: int,
                         initrd_size: int) -> None:
    """early_reserve_memory(): what is reserved before the command line is read."""
    mb.reserve(image.text, image.end_of_kernel_reserve - image.text, "early_reserve_memory",
               "kernel image")
    mb.reserve(0, X86_RESERVE_LOW, "early_reserve_memory", "low memory")
    if initrd_size:
        mb.reserve(initrd_image, page_align(initrd_image + initrd_size) - initrd_image,
                   "early_reserve_initrd", "initrd")
    ebda = min((s for s, _, kind in e820_entries(cfg) if kind == "reserved" and s < MiB),
               default=ISA_END_ADDRESS)
    bios_start = min(ebda, 0x9F000) & ~(PAGE_SIZE - 1)
    mb.reserve(bios_start, ISA_END_ADDRESS - bios_start, "reserve_bios_regions", "BIOS regions")


def e820_memblock_setup(mb: Memblock, cfg: MachineConfig) -> None:
    """e820__memblock_setup(): every usable e820 range below 4 GiB into memblock.memory.

    A range above 4 GiB does not fit the 686 kernel's 32-bit phys_addr_t
    and is skipped, silently, as Linux does; ranges are split at node
    boundaries (mmemu's NUMA configs).
    """
    for start, end, kind in e820_table(cfg):
        if kind != "usable" or (end >= 1 << 32 and not flavour_of(cfg).pae):
            continue
        for node in cfg.nodes:
            for r in node.ram:
                s, e = max(start, r.start), min(end, r.end)
                if e > s:
                    mb.add_node(s, e - s, node.nid)
    mb.trim_memory(PAGE_SIZE)
    mb.dump()


def reserve_initrd(mb: Memblock, log: Callable[[str], object], initrd_image: int, size: int,
                   max_low_pfn: int) -> Initrd:
    """reserve_initrd(): keep the initrd where it is when the direct map covers it,
    else move it below lowmem's end (relocate_initrd()).  Returns an Initrd."""
    ramdisk_end = page_align(initrd_image + size)
    log(f"RAMDISK: [mem {initrd_image:#010x}-{ramdisk_end - 1:#010x}]")
    if ramdisk_end <= max_low_pfn << PAGE_SHIFT:
        return Initrd(initrd_image, size, initrd_image)
    moved = mb.phys_alloc_range(page_align(size), PAGE_SIZE, 0, max_low_pfn << PAGE_SHIFT,
                                "setup_arch", "initrd")
    log(f"Allocated new RAMDISK: [mem {moved:#010x}-{moved + size - 1:#010x}]")
    log(f"Move RAMDISK from [mem {initrd_image:#010x}-{initrd_image + size - 1:#010x}] to "
        f"[mem {moved:#010x}-{moved + size - 1:#010x}]")
    mb.phys_free(initrd_image, ramdisk_end - initrd_image, "setup_arch")
    return Initrd(initrd_image, size, moved)


def initmem_init_lines(layout: Layout, warnings: Iterable[str] = ()) -> list[str]:
    """initmem_init(): the highmem= warning, the HIGHMEM and LOWMEM lines."""
    high = layout.max_pfn - layout.max_low_pfn
    lowmem_end = layout.max_low_pfn << PAGE_SHIFT
    return list(warnings) + [f"{(high << PAGE_SHIFT) >> 20}MB HIGHMEM available.",
                             f"{lowmem_end >> 20}MB LOWMEM available.",
                             f"  mapped low ram: 0 - {lowmem_end:08x}",
                             f"  low ram: 0 - {lowmem_end:08x}"]


def setup_arch(cfg: MachineConfig, layout: Layout, log: Callable[[str], object], cmdline: str,
               warnings: Iterable[str] = ()) -> tuple[Memblock, KernelImage, Optional[Initrd]]:
    """setup_arch() up to paging_init(): memblock with its reservations, the boot log.

    log is printk (one line per call).  Returns (Memblock, KernelImage,
    Initrd or None).
    """
    image = KernelImage.from_config(cfg.kernel)
    mb = Memblock(current_limit=layout.max_low_pfn << PAGE_SHIFT, printk=log,
                  pa_format="#018x" if flavour_of(cfg).pae else "#010x")
    size = cfg.kernel.initrd
    initrd_image = qemu_initrd_address(cfg, size) if size else 0
    early_reserve_memory(mb, cfg, image, initrd_image, size)
    reserve_host_ranges(mb, cfg)
    mb.debug = "memblock=debug" in cmdline.split()
    flavour = flavour_of(cfg)
    lines = e820_log_lines(cfg)
    if flavour.pae:                     # x86_report_nx(), after e820__memory_setup()
        last = max(i for i, line in enumerate(lines) if line.startswith("BIOS-e820: "))
        lines.insert(last + 1, NX_ACTIVE)
    for line in lines:
        log(line)
    log(f"last_pfn = {e820_end_of_ram_pfn(cfg):#x} max_arch_pfn = {max_arch_pfn(cfg):#x}")
    mb.reserve(image.brk_start, image.brk_end - image.brk_start, "setup_arch", "brk")
    e820_memblock_setup(mb, cfg)
    real_mode = mb.phys_alloc_range(REAL_MODE_SIZE, PAGE_SIZE, 0, ISA_END_ADDRESS,
                                    "reserve_real_mode", "real mode trampoline")
    mb.reserve(0, ISA_END_ADDRESS, "reserve_real_mode", "first MiB")
    assert real_mode < ISA_END_ADDRESS
    pmd_size = flavour.pmd_size
    probe = mb.phys_alloc_range(pmd_size, pmd_size, ISA_END_ADDRESS,
                                layout.max_low_pfn << PAGE_SHIFT, "init_mem_mapping")
    mb.phys_free(probe, pmd_size, "init_mem_mapping")
    initrd = reserve_initrd(mb, log, initrd_image, size, layout.max_low_pfn) if size else None
    for line in initmem_init_lines(layout, warnings):
        log(line)
    return mb, image, initrd


def reserve_host_ranges(mb: Memblock, cfg: MachineConfig) -> None:
    """mmemu's addition: the ranges the program embedding mmemu keeps (config
    host:), reserved before memblock hands anything out, so that neither
    memblock nor the page allocator ever gives a page of them away."""
    for h in cfg.host:
        mb.reserve(h.start, h.size, "mmemu_reserve_host", f"host: {h.name}")


def nosave_regions(cfg: MachineConfig, max_pfn: int) -> list[tuple[int, int]]:
    """e820__register_nosave_regions(): [(start_pfn, end_pfn)] of the holes before
    each RAM range, from pfn 0, until a range starts past max_pfn (that range's
    hole still counts: on 4 GiB, [0xbffe0000, 4 GiB) below the RAM at 4 GiB)."""
    out: list[tuple[int, int]] = []
    pfn = 0
    for start, end, kind in e820_table(cfg):
        if kind != "usable":
            continue
        if pfn < (start + PAGE_SIZE - 1) >> PAGE_SHIFT:
            out.append((pfn, (start + PAGE_SIZE - 1) >> PAGE_SHIFT))
        if pfn >= max_pfn:
            break
        pfn = end >> PAGE_SHIFT
    return out


def sizeof_resource(cfg: MachineConfig) -> int:
    """sizeof(struct resource): its start and end are resource_size_t, which
    is 64-bit with PAE (phys_addr_t), so 40 bytes there."""
    return SIZEOF_RESOURCE + (8 if flavour_of(cfg).pae else 0)


def setup_arch_late(mb: Memblock, cfg: MachineConfig, max_pfn: int, log: Callable[[str],
                    object]) -> None:
    """The rest of setup_arch() after paging_init(): the firmware's boot allocations."""
    grow = sizeof_resource(cfg) - SIZEOF_RESOURCE
    mb.alloc_try_nid(HPET_RESOURCE + grow, caller="acpi_parse_hpet", name="HPET resource")
    mb.alloc_try_nid(IOAPIC_RESOURCE + grow, caller="io_apic_init_mappings",
                     name="IO-APIC resource")
    mb.alloc_try_nid(sizeof_resource(cfg) * len(e820_table(cfg)), caller="e820__reserve_resources",
                     name="e820 resources")
    for _ in e820_entries(cfg):
        mb.alloc_try_nid(SIZEOF_FIRMWARE_MAP_ENTRY, caller="firmware_map_add_early",
                         name="firmware map")
    for start, end in nosave_regions(cfg, max_pfn):
        mb.alloc_try_nid(SIZEOF_NOSAVE_REGION, caller="register_nosave_region",
                         name="nosave region")
        log(f"PM: hibernation: Registered nosave memory: [mem {start << PAGE_SHIFT:#010x}-"
            f"{((end << PAGE_SHIFT) - 1) & 0xFFFFFFFF:#010x}]")
