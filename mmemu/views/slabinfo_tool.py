"""The slab report of Linux's tools/mm/slabinfo.c: one line per cache with
its objects, space, slabs and efficiency.

Columns as slabinfo's: Name, Objects (in use), Objsize, Space (or Loss with
-W), Slabs/Part/Cpu, O/S (objects per slab), O (order), %Fr (partial slabs),
%Ef (efficiency: object bytes over slab bytes), Flg (* alias, d DMA,
A hwcache-aligned, P poison, a reclaimable, Z red zone, F sanity checks,
U store user, T trace).  On a live machine the numbers come from the slab
allocator; on a snapshot from its /proc/slabinfo (no partial or cpu counts).
`mmemu slabinfo -l` and `tools/slabinfo.py -l` print it.
"""
from typing import Any, NamedTuple, Union

from mmemu.errors import MmemuError
from mmemu.layout import PAGE_SIZE
from mmemu.mm.slab import (
    SLAB_CACHE_DMA, SLAB_CONSISTENCY_CHECKS, SLAB_HWCACHE_ALIGN, SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT, SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_TRACE,
)
from mmemu.mm.slab_common import SlabAllocator
from mmemu.mm.slub_debug import check_slab_caches
from mmemu.views.target import Target

FLAG_LETTERS = ((SLAB_CACHE_DMA, "d"), (SLAB_HWCACHE_ALIGN, "A"), (SLAB_POISON, "P"),
                (SLAB_RECLAIM_ACCOUNT, "a"), (SLAB_RED_ZONE, "Z"),
                (SLAB_CONSISTENCY_CHECKS, "F"), (SLAB_STORE_USER, "U"), (SLAB_TRACE, "T"))


class SlabCacheUsage(NamedTuple):
    """One cache as slabinfo's struct slabinfo holds it."""

    name: str
    objects: int          # in use
    object_size: int
    slabs: int
    partial: int
    cpu_slabs: int
    objs_per_slab: int
    order: int
    flags: str

    @property
    def slab_size(self):
        """slab_size(): the bytes the cache's slabs take."""
        return self.slabs * (PAGE_SIZE << self.order)

    @property
    def slab_waste(self):
        """slab_waste(): those bytes not holding objects."""
        return self.slab_size - self.objects * self.object_size


def caches_from_allocator(slab: SlabAllocator) -> list[SlabCacheUsage]:
    """SlabCacheUsage of every live cache of a SlabAllocator."""
    out = []
    for s in slab.caches:
        if s.dead:
            continue
        info = slab.get_slabinfo(s)
        cpu = slab.slub.cpu_slab_pfn(s)
        letters = "*" if s.refcount > 1 else ""
        letters += "".join(c for flag, c in FLAG_LETTERS if s.flags & flag)
        out.append(SlabCacheUsage(info.name, info.active_objs, info.objsize, info.num_slabs,
                                  s.node.nr_partial, 1 if cpu else 0, info.objperslab,
                                  s.order, letters))
    return out


def caches_from_proc(text):
    """SlabCacheUsage from /proc/slabinfo 2.1 lines (no partial or cpu slab counts)."""
    out = []
    for line in text.splitlines():
        if line.startswith(("slabinfo", "#")) or ":" not in line:
            continue
        f = line.split()
        name = f[0]
        active, _, size, per_slab, pages = map(int, f[1:6])
        slabs = int(f[f.index("slabdata") + 2])
        out.append(SlabCacheUsage(name, active, size, slabs, 0, 0, per_slab,
                                  max(pages.bit_length() - 1, 0), ""))
    return out


def store_size(value, show_bytes=False):
    """store_size(): 1234567 -> "1.2M", with one decimal, as slabinfo prints sizes."""
    divisor, trailer = 1, ""
    if not show_bytes:
        for limit, div, unit in ((1000000000, 100000000, "G"), (1000000, 100000, "M"),
                                 (1000, 100, "K")):
            if value > limit:
                divisor, trailer = div, unit
                break
    text = f"{value // divisor}{trailer}"
    if divisor != 1:
        n = len(text)
        text = text[:n - 2] + "." + text[n - 2:]
    return text


def sort_caches(caches, by_size=False, by_loss=False, inverted=False):
    """sort_slabs(): by name, or largest size / loss first (ties by name)."""
    def key(s):
        if by_size:
            return (-s.slab_size, s.name.lower())
        if by_loss:
            return (-s.slab_waste, s.name.lower())
        return (s.name.lower(),)
    return sorted(caches, key=key, reverse=inverted)


def report(caches, args):
    lines = [f"Name                   Objects Objsize           {' Loss' if args.Waste else 'Space'} "
             "Slabs/Part/Cpu  O/S O %Fr %Ef Flg"]
    for s in sort_caches(caches, args.Size, args.Waste, args.inverted):
        if args.empty and s.slabs or (not args.zero and not args.empty and not s.slabs):
            continue
        if 0 <= args.lines < len(lines):
            break
        size = store_size(s.slab_waste if args.Waste else s.slab_size, args.Bytes)
        dist = f"{s.slabs - s.cpu_slabs}/{s.partial}/{s.cpu_slabs}"
        fr = s.partial * 100 // s.slabs if s.slabs else 100
        ef = s.objects * s.object_size * 100 // s.slab_size if s.slabs else 100
        lines.append(f"{s.name:<21} {s.objects:8d} {s.object_size:7d} {size:>15} {dist:>14} "
                     f"{s.objs_per_slab:4d} {s.order:1d} {fr:3d} {ef:3d} {s.flags}")
    return "\n".join(lines) + "\n"


def validate(machine: Target) -> tuple[str, int]:
    """slabinfo -v: validate_slab_cache() on every cache; (text, status)."""
    slab = machine.slab
    if slab is None:
        raise MmemuError("validation needs a live slab allocator (not a snapshot)")
    bad = []
    for s in slab.caches:
        if not s.dead:
            errors = slab.kmem_cache_validate(s)
            if errors:
                bad.append(f"{s.name}: {errors} error(s)")
    try:
        check_slab_caches(slab)
    except MmemuError as e:
        bad.append(str(e))
    text = "\n".join(bad) + "\n" if bad else "slabinfo: every cache validated, no errors\n"
    return text, 1 if bad else 0


def slabinfo_report(machine: Target, args: Any) -> Union[str, tuple[str, int]]:
    """What `slabinfo -l` (and its sort and filter options) prints, or -v's (text, status)."""
    if args.validate:
        return validate(machine)
    if machine.slab is not None:
        caches = caches_from_allocator(machine.slab)
    else:
        text = machine.proc_text("slabinfo")
        if text is None:
            raise MmemuError("no slab information: the slab allocator is not there")
        caches = caches_from_proc(text)
    return report(caches, args)
