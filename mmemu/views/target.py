"""What the views and tools read of a machine: the one interface both a live
Machine and a loaded snapshot (views/snapshot.py's Snapshot) provide.

Like drgn's Program, which a helper takes whatever backs it (a live
kernel, a vmcore), a view takes a Target and asks it nothing else: no
probing of what the target happens to have.  What both have is the
machine as guest memory holds it (config, layout, physical memory,
mem_map, swapper_pg_dir, the kernel image) and two things a snapshot
recorded because guest memory does not hold them: the /proc texts that
need host-side allocator state (proc_text()) and the per-cpu page lists
(pcp_blocks(); Linux keeps no mark on such a page).

What only a live machine has, the host-side allocator objects (mm,
slab, vmalloc, memblock), is declared here too, as None on a snapshot: a
view that can say more with them checks for None, and says less without.
LiveTarget is a Target whose allocators are all there (a Machine): the
/proc views that compute their text take one.
"""
from typing import NamedTuple, Optional, Protocol, runtime_checkable

from mmemu.arch.x86.pgtable import PageTable
from mmemu.config_schema import MachineConfig
from mmemu.kernel.image import KernelImage
from mmemu.layout import Layout
from mmemu.mm.memblock import Memblock
from mmemu.mm.mmzone import MemMap
from mmemu.mm.page_alloc import MmState
from mmemu.mm.slab_common import SlabAllocator
from mmemu.mm.vmalloc import Vmalloc
from mmemu.physmem import PhysMem
from mmemu.runtime.loader import GuestImage


class PcpBlock(NamedTuple):
    """A block on a per-cpu page list: its zone's name, its order, its first pfn."""

    zone: str
    order: int
    pfn: int


@runtime_checkable
class Target(Protocol):
    """A machine to look at: a live Machine or a loaded Snapshot (read-only)."""

    @property
    def cfg(self) -> MachineConfig:
        """The machine config it was built from."""

    @property
    def layout(self) -> Layout:
        """The layout the kernel derived from the config (pfn limits, zones, addresses)."""

    @property
    def pm(self) -> PhysMem:
        """Guest physical memory."""

    @property
    def mem_map(self) -> MemMap:
        """Where the struct page array is."""

    @property
    def pgtable(self) -> PageTable:
        """swapper_pg_dir, the kernel page directory (pgtable.pgd: its physical
        address); a snapshot's allocates no table."""

    @property
    def kernel_image(self) -> KernelImage:
        """Where the kernel image's sections lie."""

    @property
    def image(self) -> Optional[GuestImage]:
        """The guest program loaded last (a snapshot's: segments, path and build ID
        only), or None when none was."""

    def registers(self) -> dict[str, int]:
        """The CPU's registers by lower-case name (eax, eip, cr3, ...)."""

    def proc_text(self, name: str) -> Optional[str]:
        """The text of /proc/<name> (buddyinfo, meminfo, slabinfo, ...), or None
        when the machine has no such file."""

    def pcp_blocks(self) -> list[PcpBlock]:
        """Every block on a per-cpu page list, by zone and list."""

    # -- a live machine's host-side allocators: None on a snapshot ------------
    @property
    def mm(self) -> Optional[MmState]:
        """The page allocator's state (zones, watermarks, alloc_orders)."""

    @property
    def slab(self) -> Optional[SlabAllocator]:
        """The slab allocator (its caches)."""

    @property
    def vmalloc(self) -> Optional[Vmalloc]:
        """The vmalloc allocator (its areas)."""

    @property
    def memblock(self) -> Optional[Memblock]:
        """The boot-time memblock allocator (its reservations, by name)."""


class LiveTarget(Target, Protocol):
    """A Target with every host-side allocator there: a booted Machine."""

    @property
    def mm(self) -> MmState:
        """The page allocator's state."""

    @property
    def slab(self) -> SlabAllocator:
        """The slab allocator."""

    @property
    def vmalloc(self) -> Vmalloc:
        """The vmalloc allocator."""

    @property
    def memblock(self) -> Memblock:
        """The boot-time memblock allocator."""
