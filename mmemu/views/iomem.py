"""/proc/iomem: the physical address space, and what holds each part of it.

Models kernel/resource.c:r_show() — one line per resource, ``start-end :
name`` with 8 hex digits each (end inclusive) and two more spaces of indent
per level — over the resources an x86 boot registers:
arch/x86/kernel/e820.c:e820__reserve_resources() makes "System RAM" of the
usable ranges and "Reserved" of the reserved ones, and each device claims
its window.  mmemu adds its own, as children of the range they are in:

* "mmemu hypercall doorbell": the MMIO page the guest's hypercalls read,
  over a page of the first MiB (runtime/abi.py);
* "host: NAME": a range the program embedding mmemu keeps for itself
  (config ``host:``; memblock-reserved when it is RAM, never mapped by
  mmemu).

Differs: no PCI bus, ROM or "Kernel code/data/bss" resources; the guest
program's image is not listed.
"""
from dataclasses import dataclass, field

from mmemu.runtime.abi import HC_DOORBELL_PHYS, HC_DOORBELL_SIZE


@dataclass
class Resource:
    """struct resource: [start, end] inclusive, a name, and the resources inside it."""

    start: int
    end: int
    name: str
    children: list = field(default_factory=list)

    def contains(self, other):
        return self.start <= other.start and other.end <= self.end


def iomem_resources(cfg):
    """The resource tree of a machine config: the top level, by address."""
    top = [Resource(r.start, r.end - 1, "System RAM") for r in cfg.ram]
    top += [Resource(r.start, r.end - 1, "Reserved") for r in cfg.reserved]
    claims = [Resource(d.base, d.base + d.size - 1, d.name) for d in cfg.devices]
    claims.append(Resource(HC_DOORBELL_PHYS, HC_DOORBELL_PHYS + HC_DOORBELL_SIZE - 1,
                           "mmemu hypercall doorbell"))
    claims += [Resource(h.start, h.end - 1, f"host: {h.name}") for h in cfg.host]
    for res in sorted(claims, key=lambda r: r.start):
        _insert(top, res)
    return sorted(top, key=lambda r: r.start)


def _insert(level, res):
    """Put res inside the resource that holds it (request_resource()), else beside."""
    for parent in level:
        if parent.contains(res):
            _insert(parent.children, res)
            return
    level.append(res)
    level.sort(key=lambda r: r.start)


def iomem(target):
    """The text of /proc/iomem for a machine or a snapshot (from its config)."""
    lines = []

    def show(level, depth):
        for r in level:
            lines.append(f"{'  ' * depth}{r.start:08x}-{r.end:08x} : {r.name}")
            show(r.children, depth + 1)
    show(iomem_resources(target.cfg), 0)
    return "\n".join(lines) + "\n"
