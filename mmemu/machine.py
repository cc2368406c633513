"""The machine: wires config -> physical memory -> page allocator -> page
tables -> the allocators above -> hypercalls, on one Unicorn CPU.

Every object of a machine is built here (the subsystems' own modules only
define them, and the runtime's hc_* modules only register hypercalls), in
the order data flows through them; the wiring between them (a checker, an
oops region describer, the page allocator's might_alloc hook) is set here
too, so this file is the map of what talks to what.

It is the one entry point for embedding (``mmemu.Machine``): built from a
config on a Uc the caller made and keeps driving (mmemu maps RAM, builds its
tables and adds hooks; it neither replaces the caller's hooks nor keeps
global state), or on a Uc it makes itself.  Host code can call the
allocators the guest can, and read and write guest memory by virtual address
through the page tables.
"""
import struct
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from mmemu.arch.x86.fixmap import Fixmap
from mmemu.arch.x86.init import (
    debug_checkwx, free_init_pages, idt_table_ro, mark_rodata_ro, paging_init,
    set_real_mode_permissions,
)
from mmemu.arch.x86.pgtable_3level import pgd_cache_init
from mmemu.flavour import Flavour
from mmemu.arch.x86.ioremap import describe_ioremap_address
from mmemu.arch.x86.pgtable import PageTable
from mmemu.arch.x86.segment import GDT_PHYS, KERNEL_SEGMENTS, build_gdt
from mmemu.config import MachineConfig, load_config
from mmemu.devices import DeviceBus, devices_init
from mmemu.engine import AttachError, Engine
from mmemu.errors import MmemuError, UsageError
from mmemu.kernel.bpf import ptp_classifier_init
from mmemu.kernel.panic import Reporter
from mmemu.kernel.image import KernelImage
from mmemu.kernel.sched import AtomicContext, might_alloc_hook
from mmemu.layout import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, Layout, compute_layout
from mmemu.log import KernelLog
from mmemu.mm import gfp, page_alloc
from mmemu.mm.page_alloc import MmState
from mmemu.init.main import Boot, start_kernel
from mmemu.mm.highmem import Highmem
from mmemu.mm.memblock import Memblock
from mmemu.mm.mmzone import MemMap
from mmemu.mm.node_data import publish_node_data
from mmemu.mm.pcp_list import pcp_to_guest
from mmemu.mm.page import FAST_FREE_BITS_PHYS
from mmemu.mm.percpu import pagesets_phys
from mmemu.mm.page_alloc_debug import check_page_alloc
from mmemu.mm.slab_common import MachinePages, SlabAllocator, slab_nodes
from mmemu.mm.slub_debug import check_slab_caches
from mmemu.mm.vmalloc import (
    Vmalloc, check_vmalloc_not_movable, describe_vmalloc_address, validate_vmap_areas, vmalloc_init,
)
from mmemu.physmem import PhysMem
from mmemu.runtime import hc_highmem, hc_io, hc_page, hc_sched, hc_slab, hc_vmalloc
from mmemu.runtime.abi import (
    BOOTINFO_FIELDS, BOOTINFO_MAGIC, BOOTINFO_OFFSET, HC_MAILBOX_PHYS, HC_MAILBOX_VIRT,
    PERCPU_FIELDS, PERCPU_OFFSET,
)
from mmemu.runtime.attach import check_host_ranges, plan_attach, usable_ram
from mmemu.runtime.guest import GuestRuntime, RunResult
from mmemu.runtime.loader import GuestImage
from mmemu.runtime.task import Tasks
from mmemu.views import PROC_FILES, show
from mmemu.views.owner import live_pcp_blocks
from mmemu.views.target import LiveTarget, PcpBlock


# GFP_KERNEL | __GFP_ZERO, named at module level: inside a class body Python
# would mangle "__GFP_ZERO" into "_Machine__GFP_ZERO".
_GFP_PGTABLE = gfp.GFP_KERNEL | gfp.__GFP_ZERO


class Machine:
    """An emulated i386 PC with Linux 6.1's memory management.

    >>> m = Machine("pc-1g")
    >>> pfn = m.alloc_pages(GFP_KERNEL, 0)

    A Machine is a views.target.LiveTarget: what the views read of it is
    declared there (the same a loaded snapshot offers, and the allocators).
    """

    cfg: MachineConfig
    layout: Layout
    log: KernelLog
    reporter: Reporter
    pm: PhysMem
    engine: Engine
    image: Optional[GuestImage]          # the guest program loaded last
    boot: Boot
    memblock: Memblock
    kernel_image: KernelImage
    pgtable: PageTable                   # swapper_pg_dir
    mm: MmState
    mem_map: MemMap
    mm_globals: int                      # guest address of the mm globals (node_data.py)
    slab: SlabAllocator
    vmalloc: Vmalloc
    runtime: GuestRuntime
    tasks: Tasks
    checkers: list[Callable[[], object]]
    devices: DeviceBus
    sched: AtomicContext
    fixmap: Fixmap
    highmem: Highmem

    def __init__(self, config: Union[str, MachineConfig] = "pc-1g", uc: Any = None,
                 console: Any = None, echo: bool = True, ram: Any = None) -> None:
        """config: a shipped name, a path or a MachineConfig.  uc: a Uc of the
        host's (x86, 32-bit mode) to live in; mmemu attaches fully or, with
        an AttachError naming the conflict, leaves it as it was.  ram: a
        writable buffer the host owns (offset == physical address, as long
        as the config's RAM) to be guest RAM; RAM the host already mapped
        from it with mem_map_ptr is used as it is."""
        self.cfg = config if isinstance(config, MachineConfig) else load_config(config)
        check_host_ranges(self.cfg)
        self.layout = compute_layout(self.cfg)
        self.log = KernelLog(console, echo)
        self.reporter = Reporter(self.log, self.cfg.panic_on_warn)
        self.image = None
        self.pm = _physmem(self.cfg, ram)
        self.engine = Engine(uc)
        to_map = plan_attach(self.engine, self.cfg, self.pm, ram is not None)
        try:
            self._boot(to_map)
        except BaseException:
            self.engine.close()          # the Uc as it was: nothing mapped, hooked or set
            raise

    # -- boot -----------------------------------------------------------
    def _boot(self, ram_to_map):
        cfg, layout = self.cfg, self.layout
        self.engine.map_ram(self.pm, ram_to_map)
        self.boot = start_kernel(cfg, layout, self.pm, self.log, paging=self._paging_init,
                                 reporter=self.reporter,
                                 initcalls={"mm_init": self._mm_init,
                                            "core_initcall": self._core_initcall})
        self.memblock, self.kernel_image = self.boot.memblock, self.boot.image
        self.pgtable, self.mm = self.boot.pgtable, self.boot.mm
        self._protect_kernel_image()
        self.pgtable.reporter = self.reporter
        self.mm_globals = publish_node_data(
            self.mm, pagesets_phys(self.mm.pcpu_first_chunk, self.pgtable.pae))
        self.engine.on_run.append(self._guest_runs)
        pcp_to_guest(self.mm)
        self._write_bootinfo()
        self.engine.enable_paging(self.pgtable.pgd, pae=self.pgtable.pae)
        self._load_gdt()
        self._attach_runtime()

    def _protect_kernel_image(self):
        """What the rest of the boot does to the direct map's attributes, in
        6.1's order: the SMP alternatives freed (free_init_pages(): NX and
        writable), the IDT read-only, the real-mode trampoline's permissions,
        the init sections freed, then mark_rodata_ro() (read-only text and
        rodata, NX data on 686-pae) and its W+X check, whose lines end the
        boot log."""
        pt, image, alloc = self.pgtable, self.kernel_image, self._alloc_pgtable_page
        free_init_pages(pt, image, image.smp_locks, image.smp_locks_end, alloc)
        idt_table_ro(pt, image, alloc)
        for event in self.memblock.events:
            if event.op == "alloc" and event.caller == "reserve_real_mode":
                set_real_mode_permissions(pt, event.base, event.end - event.base, alloc)
        free_init_pages(pt, image, image.init_begin, image.init_end, alloc)
        echo, self.log.echo = self.log.echo, False        # quiet, as the boot's lines
        try:
            for line in mark_rodata_ro(pt, image, alloc) + [debug_checkwx(pt)]:
                if line:
                    self.log.printk(line)
        finally:
            self.log.echo = echo
        self.boot.log_end = self.log.mark()

    def _paging_init(self, mb, image):
        self.pgtable = paging_init(self.pm, self.layout, self.cfg, mb, image,
                                   self.engine.flush_tlb)
        return self.pgtable

    def _mm_init(self, mm):
        """mm_init()'s part after mem_init(): from now on kernel page tables come
        from the page allocator; kmem_cache_init(), vmalloc_init()."""
        self.mm, self.mem_map = mm, mm.memmap
        self.pgtable.alloc_table = self._alloc_pgtable_page
        self.slab = SlabAllocator(self.pm, self.mem_map, MachinePages(mm), self.reporter,
                                  slub_debug=self.cfg.slub_debug)
        self.slab.slub.slab_nodes = slab_nodes(mm)
        self.vmalloc = vmalloc_init(self)

    def _core_initcall(self, mm):
        """sock_init()'s ptp_classifier_init(): the boot's BPF program."""
        ptp_classifier_init(self.vmalloc, self.pgtable, self._alloc_pgtable_page,
                            self.layout.max_low_pfn)

    def _guest_runs(self, running):
        """Around every stretch of guest code: the per-cpu page lists are in
        guest memory while it runs (mm/pcp_list.py), and the host's fast
        paths keep off them."""
        self.mm.guest_running = running
        if running:
            pcp_to_guest(self.mm)

    def _attach_runtime(self):
        """The guest runtime, then every allocator above the page allocator, each
        with its hypercalls, its checker and its words for an oops."""
        rt = self.runtime = GuestRuntime(self)
        self.tasks = Tasks(rt)
        hc_page.register(rt, rt.table)
        self.checkers = [lambda: check_page_alloc(self.mm)]
        self._attach_vmalloc()
        self._attach_slab()
        self._attach_highmem()

    def _attach_vmalloc(self):
        """vmalloc (made at boot), the devices on the bus, ioremap()."""
        rt = self.runtime
        vm = self.vmalloc
        self.devices = devices_init(self)
        hc_vmalloc.register(rt, rt.table, vm)
        hc_io.register(rt, rt.table)
        rt.region_describers.append(lambda addr: describe_ioremap_address(self, addr))
        rt.region_describers.append(lambda addr: describe_vmalloc_address(vm, addr))
        self.checkers.append(lambda: validate_vmap_areas(self))
        # ZONE_MOVABLE: no vmalloc page without __GFP_MOVABLE
        self.checkers.append(lambda: check_vmalloc_not_movable(self.mm, vm.areas()))

    def _attach_slab(self):
        """The slab allocator (made at boot): its hypercalls and its checker."""
        self._set_bootinfo("kmalloc_caches", self.slab.kmalloc_table)
        hc_slab.register(self.runtime, self.runtime.table, self.slab)
        self.checkers.append(lambda: check_slab_caches(self.slab))
        if self.pgtable.pae:                  # pgtable_cache_init(): PAE pgds are slab objects
            self.pgd_cache = pgd_cache_init(self.slab)

    def _attach_highmem(self):
        """Atomic context (the per-cpu words), the fixmap, kmap; then every
        sleeping entry point checks atomic context (might_sleep())."""
        rt, rep = self.runtime, self.reporter
        base = (HC_MAILBOX_PHYS + PERCPU_OFFSET) >> 2
        percpu = {name: base + i for i, name in enumerate(PERCPU_FIELDS)}
        self.sched = sched = AtomicContext(self.pm, percpu, rep)
        rep.current_pid = lambda: sched.pid
        self.fixmap = Fixmap(self.pgtable, rep)
        self.highmem = hm = Highmem(self.pgtable, self.layout, sched, rep)
        hc_highmem.register(rt, rt.table, hm, self.fixmap)
        hc_sched.register(rt, rt.table, sched)
        rt.region_describers.extend([hm.describe, self.fixmap.describe])
        self.checkers.append(hm.check)
        self.mm.page_address_highmem = hm.page_address_kmapped
        self.mm.might_alloc = might_alloc_hook(sched)        # the page allocator's own
        hc_sched.wrap_sleeping_calls(rt.table, sched)        # the guest's other sleeping calls
        rep.task_dead += [hm.kmap_local_task_dead, sched.make_task_dead]

    def _alloc_pgtable_page(self):
        """A zeroed page for a kernel page table, from lowmem (GFP_KERNEL)."""
        pfn = page_alloc.alloc_pages(self.mm, _GFP_PGTABLE, 0)
        if pfn is None:
            return None
        page_alloc.pgtable_page_ctor(self.mm, pfn)
        return pfn << PAGE_SHIFT

    def _load_gdt(self):
        """gdt_page in the reserved first MiB, and Linux's kernel selectors."""
        gdt = build_gdt(HC_MAILBOX_VIRT + PERCPU_OFFSET)
        self.pm.write(GDT_PHYS, gdt)
        self.engine.load_gdt(PAGE_OFFSET + GDT_PHYS, len(gdt) - 1, KERNEL_SEGMENTS)

    def _write_bootinfo(self):
        lay = self.layout
        movable = self.mm.movable_is_highmem
        values = {
            "magic": BOOTINFO_MAGIC, "mem_map": self.mem_map.virt,
            "max_pfn": lay.max_pfn, "max_low_pfn": lay.max_low_pfn,
            "page_offset": PAGE_OFFSET, "vmalloc_start": lay.vmalloc_start,
            "vmalloc_end": lay.vmalloc_end, "pkmap_base": lay.pkmap_base,
            "fixaddr_start": lay.fixaddr_start, "fixaddr_top": lay.fixaddr_top,
            "movable_is_highmem": int(bool(movable)), "nr_nodes": lay.nr_nodes,
            "kmalloc_caches": 0, "percpu": HC_MAILBOX_VIRT + PERCPU_OFFSET,
            "mm_globals": self.mm_globals, "kernel_pgd": PAGE_OFFSET + self.pgtable.pgd,
            "fast_free_bits": PAGE_OFFSET + FAST_FREE_BITS_PHYS,
            "fast_free_pfns": 0 if self.cfg.debug_vm else min(lay.max_pfn,
                                                              8 * len(self.mm.fast_free_bits)),
        }
        for name in BOOTINFO_FIELDS:
            self._set_bootinfo(name, values[name])
        numa_node = HC_MAILBOX_PHYS + PERCPU_OFFSET + 4 * PERCPU_FIELDS.index("numa_node")
        self.pm.write32(numa_node, self.mm.numa_node_id)

    def _set_bootinfo(self, name, value):
        """One word of the boot information the guest reads (runtime/abi.py)."""
        self.pm.write32(HC_MAILBOX_PHYS + BOOTINFO_OFFSET + 4 * BOOTINFO_FIELDS.index(name), value)

    # -- guest memory by virtual address --------------------------------
    @property
    def flavour(self) -> Flavour:
        """The kernel flavour this machine boots (mmemu/flavour.py): 686 or 686-pae."""
        return self.pgtable.flavour

    def virt_to_phys(self, va: int, pgd: Optional[int] = None) -> Optional[int]:
        """The physical address va maps to through the page tables, or None."""
        return self.pgtable.walk(va, pgd).phys

    def read(self, va: int, n: int) -> bytes:
        """Read n bytes of guest memory at virtual address va (through the tables).

        Kernel state the host held since the last run is put back into guest
        memory first (the per-cpu page lists, mm/pcp_list.py), so that what
        is read is what guest code would read."""
        pcp_to_guest(self.mm)
        out = bytearray()
        while n > 0:
            pa = self._phys_or_raise(va)
            chunk = min(n, PAGE_SIZE - (va & (PAGE_SIZE - 1)))
            out += self.pm.read(pa, chunk)
            va, n = va + chunk, n - chunk
        return bytes(out)

    def write(self, va: int, data: bytes) -> None:
        """Write bytes to guest memory at virtual address va (through the tables).

        Code the guest ran from those bytes is translated again: the write
        drops the CPU's translations of [va, va + len(data)) (no
        remove_code_cache() needed after writing code)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write: data must be bytes, not {type(data).__name__}")
        pcp_to_guest(self.mm)
        rest = memoryview(bytes(data))
        start, end = va, va + len(rest)
        while rest:
            pa = self._phys_or_raise(va)
            chunk = min(len(rest), PAGE_SIZE - (va & (PAGE_SIZE - 1)))
            self.pm.write(pa, rest[:chunk])
            va, rest = va + chunk, rest[chunk:]
        if end > start:
            self.engine.remove_code_cache(start, end)

    def read32(self, va: int) -> int:
        return struct.unpack("<I", self.read(va, 4))[0]

    def write32(self, va: int, value: int) -> None:
        self.write(va, struct.pack("<I", value & 0xFFFFFFFF))

    def _phys_or_raise(self, va: int) -> int:
        pa = self.virt_to_phys(va)
        if pa is None or pa >= self.pm.size:
            raise MmemuError(f"virtual address 0x{va:08x} is not mapped")
        return pa

    # -- the page allocator, as the guest sees it ------------------------
    def alloc_pages(self, gfp: int, order: int = 0, nid: Optional[int] = None) -> Optional[int]:
        """alloc_pages(): the first pfn of 2^order pages, or None (Linux: NULL)."""
        return page_alloc.alloc_pages(self.mm, gfp, order, nid)

    def free_pages(self, pfn: int, order: int = 0) -> None:
        """__free_pages() by pfn."""
        return page_alloc._free_pages(self.mm, pfn, order)

    def page_to_virt(self, pfn: int) -> int:
        """struct page * of a pfn, as guest code holds it."""
        return self.mem_map.pfn_to_page(pfn)

    def is_highmem_pfn(self, pfn: int) -> bool:
        """PageHighMem() by pfn; a pfn outside mem_map is a UsageError."""
        if not 0 <= pfn < self.mem_map.nr_pages:
            raise UsageError(f"is_highmem_pfn: pfn {pfn:#x} is not a page frame "
                             f"(max_pfn {self.mem_map.nr_pages:#x})")
        return bool(page_alloc.PageHighMem(self.mm, pfn))

    # -- what the views read (views/target.py) ---------------------------
    def registers(self) -> dict[str, int]:
        """The CPU's registers by lower-case name."""
        return self.engine.regs()

    def proc_text(self, name: str) -> Optional[str]:
        """The text of /proc/<name> as mmemu prints it, or None if mmemu has no such file."""
        return show(self, name) if name in PROC_FILES else None

    def pcp_blocks(self) -> list[PcpBlock]:
        """Every block on the zones' per-cpu page lists."""
        return live_pcp_blocks(self.mm)

    # -- guest programs -------------------------------------------------
    def load(self, program: object) -> GuestImage:
        """Load a guest program: a C file (built and cached) or an i386 ELF."""
        from mmemu.runtime.build import build
        path = str(program)
        self.reporter.comm = _comm(path)
        if path.endswith(".c"):
            path = build(path, image=self.kernel_image, pae=self.pgtable.pae)
        self.image = self.runtime.load(path)
        return self.image

    def run(self, program: object = None, **budget: Any) -> RunResult:
        """Run a guest program (or the loaded one) to its end: a RunResult."""
        if program is not None:
            self.load(program)
        return self.runtime.run(**budget)

    @property
    def trap_policy(self):
        """Which traps mmemu handles on a host's Uc: fn(Trap) -> True (mmemu's:
        handled, or reported as an oops that stops the CPU), False (the
        host's, left untouched) or None (mmemu's default: the CPU exceptions
        of its own runs, its user tasks' int 0x80).  runtime/traps.py."""
        return self.runtime.trap_policy

    @trap_policy.setter
    def trap_policy(self, policy):
        self.runtime.set_trap_policy(policy)

    def check(self) -> None:
        """Run every consistency checker (like CONFIG_DEBUG_VM); raises on damage."""
        for checker in self.checkers:
            checker()

    def close(self, keep_ram: bool = False) -> None:
        """Detach from the Uc and end this Machine.

        Removes everything mmemu added to the Uc (its hooks, the doorbell
        and device windows, the RAM it mapped, unless keep_ram) and puts
        back the CPU state it changed (CR0, CR3, CR4, EFER, the GDT, IDT and
        segment registers) as it found them; the host's own registers and
        hooks stay as they are.  With keep_ram the RAM stays mapped, backed
        by this machine's buffer, which the Uc then keeps alive.  Every call
        on the machine afterwards raises MachineClosed; close() again does
        nothing.
        """
        eng = self.engine
        eng.close(keep_ram=keep_ram)
        if keep_ram:
            _keep_alive(eng.uc, self.pm.buf)
        name = self.cfg.name
        self.__dict__.clear()
        self.__class__ = ClosedMachine    # type: ignore[assignment]  # what it becomes
        self._name = name


if TYPE_CHECKING:       # the type checker holds a Machine to what the views read
    _MACHINE_IS_A_LIVE_TARGET: type[LiveTarget] = Machine


class MachineClosed(UsageError):
    """A Machine was used after close()."""


class ClosedMachine:
    """What a Machine becomes on close(): every use says so."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise MachineClosed(f"this Machine ({self.__dict__.get('_name', '?')}) was closed: "
                            f"close() gave the Uc back; build a new Machine to go on")

    def close(self, keep_ram=False):
        """Already closed: nothing to do."""

    def __repr__(self):
        return f"<closed mmemu Machine {self.__dict__.get('_name', '?')}>"


def _keep_alive(uc, buf):
    """RAM left mapped on close(keep_ram=True) points into buf: the Uc holds it."""
    kept = getattr(uc, "_mmemu_kept_ram", None)
    if kept is None:
        kept = []
        uc._mmemu_kept_ram = kept
    kept.append(buf)


def _physmem(cfg, ram):
    """Guest RAM as a PhysMem: an anonymous mapping of its own, or the host's buffer."""
    top = (max(r.end for r in usable_ram(cfg)) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    if ram is None:
        return PhysMem(top)
    try:
        view = memoryview(ram)
    except TypeError:
        raise AttachError(f"ram= must be a writable buffer (an mmap or a bytearray), "
                          f"not {type(ram).__name__}") from None
    if view.readonly or view.nbytes < top:
        raise AttachError(f"the RAM buffer given to Machine(ram=...) holds {view.nbytes:#x} "
                          f"bytes{' and is read-only' if view.readonly else ''}; config "
                          f"{cfg.name}'s RAM needs {top:#x} (offset == physical address)")
    return PhysMem(top, ram)


def _comm(path):
    """The task name a kernel would show: the program's file name, 15 chars."""
    import os
    name = os.path.basename(path)
    for ext in (".elf", ".c"):
        if name.endswith(ext):
            name = name[:-len(ext)]
    return name[:15]
