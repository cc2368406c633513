"""Moving into a host's Uc: what mmemu claims of the physical address space,
checked before anything is changed.

A Machine built on a Uc that a host program made (``Machine(cfg, uc=uc)``)
either attaches fully or leaves the Uc as it was.  Everything mmemu will map
is listed first (plan_attach()): the config's RAM, less the doorbell page and
the ranges the config keeps for the host (``host:``); the device windows;
the doorbell.  A claim that meets a mapping of the host's is refused with
one error naming both ranges, unless it is RAM the host mapped from the very
buffer it gave mmemu (``Machine(..., ram=buffer)``): then mmemu uses that
mapping as it is.  mmemu's own pages in the reserved first MiB (the
mailbox, the GDT, the node data, the doorbell) are fixed and cannot be the
host's.
"""
from mmemu.flavour import flavour_of
from mmemu.arch.x86.segment import GDT_PHYS
from mmemu.arch.x86.setup import qemu_initrd_address
from mmemu.engine import AttachError
from mmemu.errors import ConfigError
from mmemu.layout import PAGE_SIZE
from mmemu.mm.node_data import MMZONE_PHYS
from mmemu.runtime.abi import HC_DOORBELL_PHYS, HC_DOORBELL_SIZE, HC_MAILBOX_PHYS

FIXED_PAGES = (
    (HC_MAILBOX_PHYS, "the hypercall mailbox and boot information"),
    (GDT_PHYS, "the GDT (gdt_page)"),
    (MMZONE_PHYS, "the node and zone data (pg_data_t) the guest reads"),
    (MMZONE_PHYS + PAGE_SIZE, "the node and zone data (pg_data_t) the guest reads"),
    (HC_DOORBELL_PHYS, "the hypercall doorbell (MMIO)"),
)


def check_host_ranges(cfg):
    """A host range may not take one of mmemu's fixed pages, nor the initrd
    (freed to the page allocator after boot): ConfigError."""
    fixed = [(base, base + PAGE_SIZE, f"mmemu's page {base:#x}: {what}")
             for base, what in FIXED_PAGES]
    if cfg.kernel.initrd:
        start = qemu_initrd_address(cfg, cfg.kernel.initrd)
        fixed.append((start, start + cfg.kernel.initrd, f"the initrd [{start:#x}, "
                      f"{start + cfg.kernel.initrd:#x}), which is freed after boot"))
    for h in cfg.host:
        for start, end, what in fixed:
            if h.start < end and start < h.end:
                raise ConfigError(cfg.path, h.key, f"host range [{h.start:#x}, {h.end:#x}) "
                                  f"takes {what}")


def usable_ram(cfg):
    """The RAM ranges the kernel uses: the 686 kernel those below 4 GiB, the
    686-pae kernel all of them (host memory for RAM mmemu maps itself is
    reserved, not committed: PhysMem)."""
    if flavour_of(cfg).pae:
        return list(cfg.ram)
    return [r for r in cfg.ram if r.end < 1 << 32]


def ram_pieces(cfg):
    """[(start, end)] of the RAM mmemu backs: the config's RAM in whole pages,
    less the doorbell page and the host's ranges."""
    holes = [(HC_DOORBELL_PHYS, HC_DOORBELL_PHYS + HC_DOORBELL_SIZE)]
    holes += [(h.start, h.end) for h in cfg.host]
    return subtract(page_ranges((r.start, r.end) for r in usable_ram(cfg)), holes)


def plan_attach(engine, cfg, pm, host_ram):
    """The RAM ranges mmemu has to map itself; raises AttachError on a conflict.

    host_ram is True when pm's buffer is the host's: RAM the host already
    mapped from it is used as it is (and checked to be that buffer).
    """
    taken = engine.regions()
    to_map, claims = [], []
    for start, end in ram_pieces(cfg):
        for s, e, theirs in split_by(start, end, taken):
            if not theirs:
                to_map.append((s, e))
                claims.append((s, e, "RAM"))
            elif not host_ram:
                claims.append((s, e, "RAM"))         # check_free() names it
            elif not _backed(engine, pm, s, e):
                raise AttachError(f"mmemu cannot attach: RAM [mem {s:#010x}-{e - 1:#010x}] is "
                                  f"mapped in the Uc, but not from the RAM buffer given to "
                                  f"Machine(ram=...) (offset == physical address)")
    claims += [(d.base, d.base + d.size, f"device {d.name}") for d in cfg.devices]
    claims.append((HC_DOORBELL_PHYS, HC_DOORBELL_PHYS + HC_DOORBELL_SIZE, "the hypercall doorbell"))
    engine.check_free(claims)
    return to_map


def _backed(engine, pm, start, end):
    """Whether [start, end) of the Uc is pm's buffer: its first, middle and last pages."""
    pages = sorted({start, (start + (end - start) // 2) & ~(PAGE_SIZE - 1), end - PAGE_SIZE})
    return all(engine.is_backed_by(pm, pa, pa + PAGE_SIZE) for pa in pages)


def page_ranges(ranges):
    """[(start, end)] rounded out to whole pages, merged where they touch."""
    out = []
    for s, e in sorted(ranges):
        s, e = s & ~(PAGE_SIZE - 1), (e + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [tuple(r) for r in out]


def subtract(ranges, holes):
    """ranges less holes, both [(start, end)]."""
    out = []
    for s, e in ranges:
        pieces = [(s, e)]
        for hs, he in holes:
            pieces = [p for ps, pe in pieces
                      for p in ((ps, min(pe, hs)), (max(ps, he), pe)) if p[0] < p[1]]
        out += pieces
    return out


def split_by(start, end, taken):
    """[start, end) cut at the edges of the taken ranges: [(s, e, inside a taken one)]."""
    cuts = {start, end}
    for b, e in taken:
        cuts.update(x for x in (b, e) if start < x < end)
    points = sorted(cuts)
    out = []
    for s, e in zip(points, points[1:]):
        out.append((s, e, any(b <= s and e <= t for b, t in taken)))
    return out
