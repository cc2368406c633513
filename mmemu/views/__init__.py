"""Views: the machine's state as Linux prints it (/proc files, dmesg,
the page-table dump).  Views only read; they sit at the top of the chain.
What they read of a machine is views/target.py's Target."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmemu.views.target import LiveTarget

# The /proc files mmemu prints (show()); a snapshot keeps their texts.
PROC_FILES = ("buddyinfo", "zoneinfo", "meminfo", "slabinfo", "vmallocinfo", "pagetypeinfo",
              "iomem")


def meminfo_extra(machine: LiveTarget) -> dict[str, int]:
    """The meminfo lines other subsystems own (Slab*, Vmalloc*, Percpu, DirectMap*)."""
    from mmemu.arch.x86.init import direct_map_counts
    from mmemu.mm.percpu import UNIT_SIZE
    from mmemu.views.slabinfo import slab_meminfo
    from mmemu.views.vmallocinfo import vmalloc_meminfo
    small, large = direct_map_counts(machine.pgtable, machine.layout.max_low_pfn)
    huge_kb = machine.pgtable.pmd_size >> 10            # DirectMap4M, DirectMap2M on PAE
    extra = {"DirectMap4k": small * 4, f"DirectMap{huge_kb >> 10}M": large * huge_kb,
             "Percpu": UNIT_SIZE >> 10}
    extra.update(vmalloc_meminfo(machine))
    extra.update(slab_meminfo(machine))
    return extra


def show(machine: LiveTarget, name: str) -> str:
    """The text of /proc/<name> for a live machine."""
    from mmemu.errors import UsageError
    from mmemu.views import procfs
    if name == "buddyinfo":
        return procfs.buddyinfo(machine.mm)
    if name == "zoneinfo":
        return procfs.zoneinfo(machine.mm)
    if name == "pagetypeinfo":
        return procfs.pagetypeinfo(machine.mm)
    if name == "meminfo":
        return procfs.meminfo(machine.mm, meminfo_extra(machine))
    if name == "slabinfo":
        from mmemu.views.slabinfo import slabinfo
        return slabinfo(machine)
    if name == "vmallocinfo":
        from mmemu.views.vmallocinfo import vmallocinfo
        return vmallocinfo(machine)
    if name == "iomem":
        from mmemu.views.iomem import iomem
        return iomem(machine)
    raise UsageError(f"mmemu has no /proc/{name}")
