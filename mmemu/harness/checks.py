"""The fuzzers' oracle: what must hold after every fuzzed call.

Watch catches a handler's exception as it happens and runs the cheap
counters after each call and machine.check() every check_every calls;
Patterns writes a key into every live allocation and finds it damaged;
report_kind() counts the kernel-style reports a run expects by kind;
killed_by_bug() tells a run the kernel's BUG or oops ended.
"""
import re
import traceback
from dataclasses import dataclass, field

from mmemu.errors import MmemuError

_NUM = re.compile(r"0x[0-9a-fA-F]+|[0-9a-fA-F]*\d[0-9a-fA-F]*")


AIEE = "Kernel panic - not syncing: Aiee, killing interrupt handler!"
KILLS = ("bug", "oops", "panic")       # how a run the kernel's BUG or oops ended may end


def killed_by_bug(res):
    """Whether a run ended because the call it was making hit a BUG() or an
    oops of the kernel code mmemu models (refused, and the task killed, as
    in 6.1): a report that says which modelled function it was in.  In
    interrupt context (calls left preempt_count with hardirq or softirq
    bits) make_task_dead() panics after it, as 6.1 does: that panic counts."""
    reports = list(res.reports)
    if res.reason == "panic":
        if not reports or not reports[-1].startswith(AIEE):
            return False
        reports.pop()
    last = "\n" + reports[-1] if reports else ""
    return "\nkernel BUG at " in last or "\nmmemu: in " in last


def report_kind(text):
    """A report's kind: its first telling line with the numbers blanked."""
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith(("---", "mmemu: called from")):
            continue
        return _NUM.sub("#", line)[:90]
    return "?"


class Watch:
    """The checks of one machine after each fuzzed call.

    Catches a handler's exception as it happens (the runtime's on_error),
    with the mailbox words of the call that raised.
    """

    def __init__(self, machine, check_every=500):
        self.m = machine
        self.check_every = check_every
        self.errors = []
        table = machine.runtime.table
        self._original_on_error = table.on_error
        table.on_error = self._on_error

    def _on_error(self, name, exc):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append(f"internal error in hypercall {name}{tuple(self.m.runtime.table.args(7))}:"
                           f" {exc!r}\n{tb}")
        return self._original_on_error(name, exc)

    def cheap(self):
        """Counters that must always agree; a problem as text, or None."""
        for zone in self.m.mm.zones:
            buddy = sum(fa.nr_free << o for o, fa in enumerate(zone.free_area))
            if buddy != zone.nr_free_pages or zone.nr_free_pages < 0:
                return (f"zone {zone.node}/{zone.name}: free lists hold {buddy} pages, "
                        f"NR_FREE_PAGES is {zone.nr_free_pages}")
            for order, fa in enumerate(zone.free_area):
                if (fa.nr_free == 0) != all(head.first < 0 for head in fa.free_list):
                    return (f"zone {zone.node}/{zone.name}: free_area[{order}].nr_free is "
                            f"{fa.nr_free}, its migratetype lists say otherwise")
        sched = getattr(self.m, "sched", None)
        if sched is not None and sched.pagefault_disabled < 0:
            return f"pagefault_disabled is {sched.pagefault_disabled}"
        return None

    def full(self):
        """machine.check(); a problem as text, or None.  A checker that raises
        anything but a corruption error is a fault too."""
        try:
            self.m.check()
        except MmemuError as e:
            return f"{type(e).__name__}: {e}"
        except Exception as e:      # noqa: BLE001 - a crashing checker is a finding
            return f"checker crashed: {e!r}\n{traceback.format_exc()}"
        return None


def trim_log(machine):
    """Forget the kernel log (dmesg -C)."""
    machine.log.clear()


@dataclass(eq=False)
class Obj:
    """A live allocation the host driver made, and how to check it is intact.

    ``extents`` are (phys, nbytes) runs of its memory; the pattern is the
    object's 16-byte key written at the start and end of each extent.
    """

    kind: str                  # pages | gfp | vmalloc | vmap | ioremap | cache | slab | large
    handle: int                # what the free call takes: struct page *, address, cache
    size: int = 0              # bytes (pages: 2^order pages)
    order: int = 0
    pfn: int = -1
    extents: list = field(default_factory=list)
    key: bytes = b""
    pins: int = 0              # vmap areas and kmaps using these pages
    pfns: tuple = ()           # vmap: the pages it maps; vmalloc: its pages
    cache: int = 0             # slab objects: the kmem_cache they came from


class Patterns:
    """Write and verify the objects' patterns in guest physical memory."""

    def __init__(self, pm):
        self.u8 = pm.u8

    @staticmethod
    def _spots(obj):
        """(phys, bytes) the pattern occupies: an extent's first and last 16 bytes
        (all of it, when it is 32 bytes or less)."""
        key = obj.key
        for phys, n in obj.extents:
            if n <= 2 * len(key):
                yield phys, (key * 2)[:n]
            else:
                yield phys, key
                yield phys + n - len(key), key

    def write(self, obj):
        u8 = self.u8
        for phys, data in self._spots(obj):
            u8[phys:phys + len(data)] = data

    def damaged(self, obj):
        """The first spot whose pattern changed, as text, or None."""
        u8 = self.u8
        for phys, data in self._spots(obj):
            got = bytes(u8[phys:phys + len(data)])
            if got != data:
                return (f"{obj.kind} 0x{obj.handle:08x} ({obj.size} bytes): pattern at phys "
                        f"0x{phys:08x} is {got.hex()}, wrote {data.hex()}")
        return None

    def zeroed(self, obj):
        """For GFP_ZERO_ and vzalloc: the start of each extent reads zero."""
        u8 = self.u8
        return all(not any(u8[phys:phys + min(n, 64)]) for phys, n in obj.extents)
