"""The comparison: the real kernel's facts against mmemu's, one row per fact.

A fact is one thing the kernel states once: a line of its boot log, one
memblock reservation, one field of one zone in /proc/zoneinfo, one
sysctl, one meminfo total, one slab cache's geometry.  Each becomes one
row, counted once (the dma-, rcl- and cg- variants of a kmalloc size are
one geometry, so one row).  Kinds of rows:

* EXACT: mmemu must state what Linux stated.  On a ``nokaslr`` boot every
  fact is EXACT: the boot log's memory lines line by line, the memblock
  reservations one by one, every zone's spanned, present and managed
  pages, its min/low/high watermarks, protection, pcp high and batch, vm
  stats threshold and start_pfn, the sysctls, meminfo's totals and its
  set of keys, the zones buddyinfo lists, the pagetypeinfo facts the boot
  fixes (pageblock order, each zone's pageblocks, ZONE_DMA's free lists and
  pageblock types, which no boot allocation reaches, and ZONE_MOVABLE's,
  which only movable ones do), the layout bounds and the slab geometry.
  A difference is marked ``!!`` and makes the exit status 1.
* SPREAD (KASLR boots only): a zone's managed pages, equal within the
  kernel's own boot-to-boot spread (where KASLR put the image moves a few
  boot allocations across page boundaries).
* FOLLOWS (KASLR boots only): the watermarks, protection and pcp limits
  Linux derived from its managed pages must be what mmemu's own
  functions (mm/watermark.py, mm/pcp.py) derive from those same counts.
* CHECK: the capture's cross-checks of itself (the kcore header against
  the log, meminfo and the monitor's page tables); marked ``??`` when one
  fails.  Not a fact about mmemu, not counted.

On a KASLR boot the rows that say where something was placed (memblock
ranges, the initrd's move) are left out: they depend on the random load
address, not on mmemu.
"""
import re
from dataclasses import dataclass

from mmemu.oracle.parse import PAGE_OFFSET, MemblockOp

EXACT, SPREAD, FOLLOWS, CHECK = "exact", "spread", "follows", "check"
FACT_KINDS = (EXACT, SPREAD, FOLLOWS)
ZONE_ORDER = ("DMA", "Normal", "HighMem", "Movable")
ZONE_FIELDS = (("spanned", "spanned"), ("present", "present"), ("managed", "managed"),
               ("min", "min"), ("low", "low"), ("high", "high"),
               ("protection", "protection"), ("pcp high", "pcp_high"),
               ("pcp batch", "pcp_batch"), ("vm stats threshold", "stat_threshold"),
               ("start_pfn", "start_pfn"))
PLACED_BY_MANAGED = ("min", "low", "high", "protection", "pcp high", "pcp batch",
                     "vm stats threshold")
# How far a KASLR boot's managed pages may lie from a nokaslr boot's: head_32.S
# maps everything from 0 to the end of the image with page tables in .brk,
# one 4 KiB table per 4 MiB, so each 4 MiB of load offset above 16 MiB
# reserves one more page of ZONE_NORMAL; 32-bit KASLR places the image below
# KERNEL_IMAGE_SIZE (512 MiB): at most ~124 tables more.  (Measured: eight
# KASLR boots of qemu-pc-1g loaded at 128-368 MiB kept 60-88 pages fewer;
# docs/reference-6.1-686.md, "KASLR".)
KASLR_MANAGED_SPREAD = 128

# The boot log lines mmemu models, by kind; Linux's lines of each kind are
# compared in order with mmemu's lines of the same kind.
LOG_KINDS = (
    ("e820", r"BIOS-provided physical RAM map:|BIOS-e820: |e820: (update|remove) |"
             r"last_pfn = "),
    ("initrd", r"RAMDISK: |Allocated new RAMDISK|Move RAMDISK"),
    ("lowmem", r"only \d+MB highmem pages available|Warning: only 4GB|"
               r"\d+MB (HIGHMEM|LOWMEM) available\.|  (mapped )?low ram: "),
    ("free_area_init", r"Zone ranges:|  (DMA|Normal|HighMem|Movable) |"
                       r"Movable zone start for each node|  Node \d+: |"
                       r"Early memory node ranges|  node +\d+: |Initmem setup node|"
                       r"On node \d+, zone "),
    ("percpu", r"percpu: Embedded|pcpu-alloc: "),
    ("zonelists", r"Built \d+ zonelists"),
    ("command line", r"Kernel command line: |Unknown kernel command line parameters"),
    ("hash tables", r"(Dentry cache|Inode-cache) hash table entries: "),
    ("mem_init", r"Initializing \S+ for node|Memory: \d+K/|SLUB: HWalign"),
    ("frees", r"Freeing (SMP alternatives|initrd|unused kernel image)"),
)
PLACEMENT_KINDS = ("initrd",)           # where things landed: not compared under KASLR
MEMINFO_TOTALS = ("MemTotal", "HighTotal", "LowTotal", "SwapTotal", "CommitLimit",
                  "VmallocTotal", "Percpu", "HugePages_Total", "Hugepagesize", "Hugetlb",
                  "DirectMap4k", "DirectMap4M")
KMALLOC_VARIANTS = ("kmalloc-", "dma-kmalloc-", "kmalloc-rcl-", "kmalloc-cg-")
PLAIN_KMALLOC = ("kmalloc-8", "kmalloc-16", "kmalloc-32", "kmalloc-64", "kmalloc-96",
                 "kmalloc-128", "kmalloc-192", "kmalloc-256", "kmalloc-512", "kmalloc-1k",
                 "kmalloc-2k", "kmalloc-4k", "kmalloc-8k")
SLAB_SINGLETONS = ("kmem_cache", "kmem_cache_node")


@dataclass(frozen=True)
class Row:
    """One fact (or one capture cross-check) of the table."""

    section: str
    field: str
    linux: object
    mmemu: object
    kind: str = EXACT
    note: str = ""
    passed: bool = None       # CHECK, SPREAD and FOLLOWS rows carry their verdict

    @property
    def same(self):
        if self.passed is not None:
            return bool(self.passed)
        return self.linux == self.mmemu

    @property
    def failed(self):
        """A fact mmemu gets wrong."""
        return self.kind in FACT_KINDS and not self.same

    @property
    def mark(self):
        if self.kind == CHECK:
            return "ok" if self.same else "??"
        return "ok" if self.same else "!!"


@dataclass
class Comparison:
    """All rows, with the counts the summary and the exit status need."""

    rows: list
    kaslr: bool = False

    @property
    def facts(self):
        return [r for r in self.rows if r.kind in FACT_KINDS]

    @property
    def failures(self):
        return [r for r in self.rows if r.failed]

    @property
    def doubtful(self):
        return [r for r in self.rows if r.kind == CHECK and not r.same]

    @property
    def exact(self):
        """The facts compared exactly (all of them on a nokaslr boot)."""
        return [r for r in self.rows if r.kind == EXACT]

    def summary(self):
        matched = len(self.facts) - len(self.failures)
        text = f"{matched}/{len(self.facts)} facts match"
        if self.kaslr:
            loose = len(self.facts) - len(self.exact)
            text += f" (KASLR boot: {loose} within the boot-to-boot spread or by formula)"
        return text


# ---------------------------------------------------------------------------
# Building the rows

def compare(linux, mmemu):
    """Compare two KernelReports (parse.py); returns a Comparison."""
    kaslr = linux.kaslr
    rows = []
    rows += log_rows(linux, mmemu, kaslr)
    if not kaslr:
        rows += memblock_rows(linux, mmemu)
    rows += zone_rows(linux, mmemu, kaslr)
    rows += sysctl_rows(linux, mmemu, kaslr)
    rows += meminfo_rows(linux, mmemu, kaslr)
    rows += buddyinfo_rows(linux, mmemu)
    rows += pagetypeinfo_rows(linux, mmemu)
    rows += layout_rows(linux, mmemu)
    rows += kernel_pmd_rows(linux, mmemu)
    rows += slab_rows(linux, mmemu)
    return Comparison(rows, kaslr)


def log_kind(line):
    """The LOG_KINDS name of a boot log line, or None when mmemu does not model it."""
    for name, pattern in LOG_KINDS:
        if re.match(pattern, line):
            return name
    return None


def _log_by_kind(lines):
    out = {}
    for line in lines:
        kind = log_kind(line)
        if kind:
            out.setdefault(kind, []).append(line.rstrip())
    return out


def line_template(line):
    """A log line with its numbers blanked: lines are paired by template, in order."""
    return re.sub(r"0x[0-9a-f]+|(?<![A-Za-z])\d+", "#", line.strip())


def line_label(line):
    """A short name for a log line: its first words, numbers blanked."""
    return " ".join(line_template(line).split()[:4])


def pair_lines(real, mine):
    """[(Linux line or None, mmemu line or None)]: same-template lines in order,
    Linux's order first, then mmemu's unpaired lines."""
    pool = {}
    for line in mine:
        pool.setdefault(line_template(line), []).append(line)
    pairs = []
    for line in real:
        waiting = pool.get(line_template(line))
        pairs.append((line, waiting.pop(0) if waiting else None))
    used = {id(b) for _, b in pairs if b is not None}
    leftover = [line for line in mine if id(line) not in used]
    return pairs + [(None, line) for line in leftover]


def log_rows(linux, mmemu, kaslr=False):
    """One row per boot log line of a kind mmemu models, paired by template."""
    real, mine = _log_by_kind(linux.log), _log_by_kind(mmemu.log)
    rows = []
    for kind, _ in LOG_KINDS:
        if kaslr and kind in PLACEMENT_KINDS:
            continue
        seen = {}
        for la, lb in pair_lines(real.get(kind, []), mine.get(kind, [])):
            label = line_label(la if la is not None else lb)
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label += f" #{seen[label]}"
            la, lb = la if la is not None else "(missing)", lb if lb is not None else "(missing)"
            if kaslr and la.startswith("Memory: "):
                rows.append(_memory_line_row(kind, label, la, lb))
                continue
            rows.append(Row(f"boot log: {kind}", label, la, lb))
    return rows


def _memory_line_row(kind, label, la, lb):
    """Under KASLR the Memory: line's available/reserved move with managed pages."""
    mask = re.compile(r"\d+K/|\d+K reserved|\d+K highmem")
    same = mask.sub("#", la) == mask.sub("#", lb)
    return Row(f"boot log: {kind}", label, la, lb, SPREAD,
               "KASLR: available, reserved and highmem follow the managed pages", same)


def in_ram(op, memory):
    """Whether a memblock op touches RAM memblock knows of (memory: [(base, end)]).

    Reservations of firmware tables outside RAM (the MP table in the BIOS
    area, the ACPI tables in the last 128 KiB) change no page's fate.
    """
    if op.op == "memory":
        return True
    if op.end == op.base:
        return any(b <= op.base <= e for b, e in memory)
    return any(op.base < e and b < op.end for b, e in memory)


def _memblock_memory(ops):
    return [(o.base, o.end) for o in ops if o.op in ("add", "memory")]


def memblock_rows(linux, mmemu):
    """One row per memblock operation on RAM, paired in boot order."""
    real = [o for o in linux.memblock if in_ram(o, _memblock_memory(linux.memblock))]
    mine = [o for o in mmemu.memblock if in_ram(o, _memblock_memory(mmemu.memblock))]
    rows = []
    for i in range(max(len(real), len(mine))):
        a = real[i].text() if i < len(real) else "(missing)"
        b = mine[i].text() if i < len(mine) else "(missing)"
        rows.append(Row("memblock", f"#{i + 1}", a, b))
    return rows


def zone_rows(linux, mmemu, kaslr=False):
    """Every zoneinfo field of every zone, a row each."""
    follows = kaslr_follows(linux) if kaslr else {}
    rows = []
    for name in [n for n in ZONE_ORDER if linux.zone(n) or mmemu.zone(n)]:
        a, b = linux.zone(name), mmemu.zone(name)
        section = f"zone {name}"
        if a is None or b is None:
            rows.append(Row(section, "listed in zoneinfo", a is not None, b is not None))
            continue
        for label, attr in ZONE_FIELDS:
            va, vb = getattr(a, attr), getattr(b, attr)
            if va is None and vb is None:
                continue
            if kaslr and label == "managed":
                rows.append(Row(section, label, va, vb, SPREAD,
                                f"KASLR: within {KASLR_MANAGED_SPREAD} pages",
                                abs(va - vb) <= KASLR_MANAGED_SPREAD))
            elif kaslr and label in PLACED_BY_MANAGED and (name, label) in follows:
                want = follows[(name, label)]
                rows.append(Row(section, label, va, want, FOLLOWS,
                                "KASLR: mmemu's formula on Linux's managed pages",
                                va == want))
            else:
                rows.append(Row(section, label, va, vb))
    return rows


def kaslr_follows(linux):
    """{(zone, field): value} mmemu's functions give for Linux's own managed pages.

    The watermarks were set at boot, before the initrd and the init
    sections went back to the allocator: the boot counts are the final
    ones less those (the initrd where the log says it lay, the init
    sections where the kernel image is).
    """
    managed = boot_managed(linux)
    if managed is None:
        return {}
    thp = "always"
    for word in linux.cmdline.split():
        if word.startswith("transparent_hugepage="):
            thp = word.split("=", 1)[1]
    pageblock = 512 if "pae" in linux.kernel else 1024      # pageblock_order 9 or 10
    return zone_limits_for_managed(managed, linux.lowmem_reserve_ratio or (256, 32, 0, 0),
                                   linux.watermark_scale_factor or 10,
                                   _movable_is_highmem(linux), thp, pageblock)


class _StubZone:
    """What mm/watermark.py and mm/pcp.py read and write of a struct zone."""

    def __init__(self, zid, managed, highmem):
        self.zone_idx = zid
        self.managed_pages = self.present_pages = managed
        self.is_highmem = highmem
        self._watermark = [0, 0, 0, 0]
        self.watermark_boost = 0
        self.lowmem_reserve = [0, 0, 0, 0]

    def high_wmark_pages(self):
        return self._watermark[2]


def zone_limits_for_managed(managed, ratio, scale_factor, movable_is_highmem, thp="always",
                            pageblock_nr_pages=1024):
    """The watermarks, reserves, pcp limits and thresholds 6.1's boot derives
    from each zone's managed pages, by mmemu's functions on stand-in zones.

    init_per_zone_wmark_min() (the square-root min_free_kbytes, watermarks,
    thresholds, lowmem reserves), then hugepage_init() (THP's reserve and
    the watermarks again), then the pcp batch and high.  Returns
    {(zone, field): value} with ZONE_FIELDS' labels.
    """
    from types import SimpleNamespace

    from mmemu.mm import huge_memory, watermark
    from mmemu.mm.pcp import zone_batchsize
    highmem = {"HighMem": True, "Movable": movable_is_highmem}
    zones = [_StubZone(zid, managed.get(name, 0), highmem.get(name, False))
             for zid, name in enumerate(ZONE_ORDER)]
    pgdat = SimpleNamespace(node_zones=zones, node_zonelists=[zones[::-1]],
                            totalreserve_pages=0)
    mm = SimpleNamespace(zones=zones, node_data=[pgdat], numa_node_id=0, min_free_kbytes=0,
                         user_min_free_kbytes=None, watermark_scale_factor=scale_factor,
                         lowmem_reserve_ratio=list(ratio), totalreserve_pages=0)
    watermark.calculate_min_free_kbytes(mm)
    watermark._setup_per_zone_wmarks(mm)
    watermark.setup_per_zone_lowmem_reserve(mm)
    if sum(managed.values()) >= huge_memory.HUGEPAGE_MIN_PAGES and \
            huge_memory.hugepage_flags_enabled(thp):
        nr_zones = sum(1 for z in zones[:2] if z.managed_pages)
        mm.min_free_kbytes = max(mm.min_free_kbytes, huge_memory.recommended_min_free_kbytes(
            nr_zones, watermark.nr_free_buffer_pages(mm), pageblock_nr_pages))
        watermark._setup_per_zone_wmarks(mm)
    out = {("sysctls", "vm.min_free_kbytes"): mm.min_free_kbytes}
    for name, z in zip(ZONE_ORDER, zones):
        batch = max(1, zone_batchsize(z))
        values = {"min": z._watermark[0], "low": z._watermark[1], "high": z._watermark[2],
                  "protection": tuple(z.lowmem_reserve), "pcp batch": batch,
                  "pcp high": max(z._watermark[1], batch << 2),
                  "vm stats threshold": watermark.calculate_normal_threshold(z)}
        out.update({(name, k): v for k, v in values.items()})
    return out


def _movable_is_highmem(linux):
    high = linux.zone("HighMem")
    return bool(high and high.spanned)


def boot_managed(linux):
    """Each zone's managed pages when Linux set its watermarks, or None."""
    managed = {z.name: z.managed for z in linux.zones if z.node == 0}
    for line in linux.log:
        match = re.match(r"Freeing (initrd|unused kernel image \(initmem\)) memory: (\d+)K",
                         line)
        if not match:
            continue
        zone = _zone_at(linux, _freed_at(linux, match.group(1)))
        if zone not in managed:
            return None
        managed[zone] -= int(match.group(2)) // 4
    return managed


def _freed_at(linux, what):
    if what == "initrd":
        where = None
        for line in linux.log:
            match = re.search(r"RAMDISK: \[mem (0x[0-9a-f]+)-|to \[mem (0x[0-9a-f]+)-", line)
            if match:
                where = int(match.group(1) or match.group(2), 16)
        return where
    for op in linux.memblock:
        if op.op == "reserved" and op.base >= 1 << 20:
            return op.base              # the kernel image: the first reservation above 1 MiB
    return None


def _zone_at(linux, phys):
    if phys is None:
        return None
    for line in linux.zone_ranges:
        match = re.match(r"\s*(\S+)\s+\[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", line)
        if match and int(match.group(2), 16) <= phys <= int(match.group(3), 16):
            return match.group(1)
    return None


def sysctl_rows(linux, mmemu, kaslr=False):
    first = Row("sysctls", "vm.min_free_kbytes", linux.min_free_kbytes, mmemu.min_free_kbytes)
    if kaslr:
        want = kaslr_follows(linux).get(("sysctls", "vm.min_free_kbytes"))
        first = Row("sysctls", "vm.min_free_kbytes", linux.min_free_kbytes, want, FOLLOWS,
                    "KASLR: mmemu's formula on Linux's managed pages",
                    linux.min_free_kbytes == want)
    return [first,
            Row("sysctls", "vm.lowmem_reserve_ratio", linux.lowmem_reserve_ratio,
                mmemu.lowmem_reserve_ratio),
            Row("sysctls", "vm.watermark_scale_factor", linux.watermark_scale_factor,
                mmemu.watermark_scale_factor)]


def meminfo_rows(linux, mmemu, kaslr=False):
    """meminfo's totals (fixed at boot) a row each, and its set of keys in one row."""
    rows = []
    for key in MEMINFO_TOTALS:
        a, b = linux.meminfo.get(key, "(missing)"), mmemu.meminfo.get(key, "(missing)")
        if kaslr and key in ("MemTotal", "LowTotal", "CommitLimit"):
            ok = isinstance(a, int) and isinstance(b, int) and \
                abs(a - b) <= 4 * KASLR_MANAGED_SPREAD
            rows.append(Row("meminfo", key, a, b, SPREAD, "KASLR: follows managed pages", ok))
            continue
        rows.append(Row("meminfo", key, a, b))
    real, mine = list(linux.meminfo), list(mmemu.meminfo)
    note = ""
    if real != mine:
        missing = [k for k in real if k not in mine]
        extra = [k for k in mine if k not in real]
        note = (f"mmemu lacks {', '.join(missing)}" if missing else "") + \
            ("; " if missing and extra else "") + \
            (f"mmemu has {', '.join(extra)} more" if extra else "") or "order differs"
    rows.append(Row("meminfo", "keys, in order", f"{len(real)} keys", f"{len(mine)} keys",
                    note=note, passed=real == mine))
    return rows


def buddyinfo_rows(linux, mmemu):
    """/proc/buddyinfo lists the populated zones: which ones is one fact."""
    return [Row("buddyinfo", "zones listed", " ".join(z for _, z in linux.buddyinfo),
                " ".join(z for _, z in mmemu.buddyinfo))]


# Zones whose pagetypeinfo lines the boot leaves as memmap_init() and
# memblock_free_all() made them: ZONE_DMA (every allocation of the boot finds
# room in a higher zone), ZONE_MOVABLE (only movable allocations reach it, and
# nothing steals from it).  Elsewhere the boot's own allocations decide.
PAGETYPEINFO_FIXED_BLOCKS = ("DMA", "Movable")
PAGETYPEINFO_FIXED_FREE = ("DMA",)


def pagetypeinfo_rows(linux, mmemu):
    """/proc/pagetypeinfo's facts that a boot fixes: the pageblock order, each
    zone's number of pageblocks, ZONE_DMA's free lists and the pageblock
    types of ZONE_DMA and ZONE_MOVABLE.  None for a capture without it."""
    a, b = linux.pagetypeinfo, mmemu.pagetypeinfo
    if a is None:
        return []
    b = b if b is not None else type(a)()
    section = "pagetypeinfo"
    rows = [Row(section, "Page block order", a.pageblock_order, b.pageblock_order),
            Row(section, "Pages per block", a.pages_per_block, b.pages_per_block)]
    for node, zone in _zone_sorted(a.blocks):
        mine = b.blocks.get((node, zone))
        rows.append(Row(section, f"zone {zone}: pageblocks", sum(a.blocks[(node, zone)].values()),
                        sum(mine.values()) if mine else "(missing)"))
        if zone in PAGETYPEINFO_FIXED_BLOCKS:
            rows.append(Row(section, f"zone {zone}: pageblocks by type",
                            _by_type(a.blocks[(node, zone)]), _by_type(mine)))
    for node, zone, mt in sorted(a.free, key=lambda k: (k[0], _zone_rank(k[1]))):
        if zone in PAGETYPEINFO_FIXED_FREE:
            mine = b.free.get((node, zone, mt))
            rows.append(Row(section, f"zone {zone}: {mt} free blocks by order",
                            " ".join(map(str, a.free[(node, zone, mt)])),
                            " ".join(map(str, mine)) if mine else "(missing)"))
    return rows


def _zone_rank(name):
    return ZONE_ORDER.index(name) if name in ZONE_ORDER else len(ZONE_ORDER)


def _zone_sorted(keys):
    return sorted(keys, key=lambda k: (k[0], _zone_rank(k[1])))


def _by_type(counts):
    if not counts:
        return "(missing)"
    return " ".join(f"{mt} {n}" for mt, n in counts.items())


def layout_rows(linux, mmemu):
    rows = []
    a, b = linux.layout, mmemu.layout
    for label, attr in (("lowmem start (PAGE_OFFSET)", "lowmem_start"),
                        ("lowmem end (high_memory)", "lowmem_end"),
                        ("VMALLOC_START", "vmalloc_start"), ("VMALLOC_END", "vmalloc_end"),
                        ("PKMAP_BASE", "pkmap_base")):
        rows.append(Row("layout", label, f"{getattr(a, attr):#010x}",
                        f"{getattr(b, attr):#010x}"))
    for what, ok, detail in linux.layout_checks:
        rows.append(Row("the capture's cross-checks", what, detail, "", CHECK, passed=ok))
    return rows


PMD_SHIFT_PAE = 21
_NX = 1 << 63


def describe_pmd_entry(index, entry):
    """A kernel PMD entry as the comparison sees it: its kind and flags, and
    for a 2 MiB page whether it is the direct map's (PAGE_OFFSET + phys), not
    a page table's frame (which page the boot got for a table is the
    allocator's business)."""
    if not entry & 1:
        return "none"
    flags = f"{entry & 0xFFF:03x}{' NX' if entry & _NX else ''}"
    if entry & 0x80:
        frame = entry & 0xFFFFFFFE00000
        return f"2M {'direct' if frame == index << PMD_SHIFT_PAE else hex(frame)} {flags}"
    return f"table {flags}"


def kernel_pmd_rows(linux, mmemu):
    """PAE: the kernel PMD, entry by entry, in runs: the direct map (2 MiB pages,
    NX, the first and last PMDs' tables), the image's splits and protections,
    and the pkmap, CPU entry area and fixmap tables above VMALLOC_END.  The
    vmalloc area between is left out: what a real boot vmallocs is not mmemu's."""
    if linux.kernel_pmd is None or mmemu.kernel_pmd is None:
        return []
    lowmem_end = (linux.layout.lowmem_end - PAGE_OFFSET + (1 << PMD_SHIFT_PAE) - 1) \
        >> PMD_SHIFT_PAE
    top = (linux.layout.vmalloc_end - PAGE_OFFSET) >> PMD_SHIFT_PAE
    indices = [i for i in range(512) if i < lowmem_end or i > top]
    rows, run = [], []

    def key(i):
        return tuple(describe_pmd_entry(i, r.kernel_pmd.get(i, 0)) for r in (linux, mmemu))

    def flush():
        if not run:
            return
        lo = PAGE_OFFSET + (run[0] << PMD_SHIFT_PAE)
        hi = PAGE_OFFSET + ((run[-1] + 1) << PMD_SHIFT_PAE)
        real, mine = key(run[0])
        label = f"{lo:#010x}-{hi & 0xFFFFFFFF:#010x} ({len(run)})"
        rows.append(Row("kernel pmd (PAE)", label, real, mine))
        run.clear()
    for i in indices:
        if run and (i != run[-1] + 1 or key(i) != key(run[-1])):
            flush()
        run.append(i)
    flush()
    return rows


def slab_rows(linux, mmemu):
    """One row per kmalloc size (its dma-/rcl-/cg- variants are the same geometry)
    and one for each of kmem_cache and kmem_cache_node."""
    rows = []
    for plain in PLAIN_KMALLOC:
        size = plain[len("kmalloc-"):]
        names = [p + size for p in KMALLOC_VARIANTS]
        rows.append(_geometry_row(plain, [linux.slabs.get(n) for n in names],
                                  [mmemu.slabs.get(n) for n in names]))
    for name in SLAB_SINGLETONS:
        rows.append(_geometry_row(name, [linux.slabs.get(name)], [mmemu.slabs.get(name)]))
    return rows


def _geometry_row(name, real, mine):
    """A cache's (objsize objperslab pagesperslab): one value if every variant
    present agrees, else each variant's."""
    a, b = _geometries(real), _geometries(mine)
    section = "slab geometry (objsize objperslab pagesperslab)"
    label = name if name in SLAB_SINGLETONS else f"{name} (and its dma-, rcl-, cg- variants)"
    return Row(section, label, a, b)


def _geometries(found):
    values = sorted({(g.objsize, g.objperslab, g.pagesperslab) for g in found if g})
    if not values:
        return "(missing)"
    return " | ".join(" ".join(str(n) for n in v) for v in values)


# ---------------------------------------------------------------------------
# Printing

def _cell(value):
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    if isinstance(value, MemblockOp):
        return value.text()
    return str(value).strip()


def format_text(comparison, header=()):
    """The table for a terminal: mark, field, Linux, mmemu, note."""
    lines = list(header)
    section = None
    for row in comparison.rows:
        if row.section != section:
            section = row.section
            lines += ["", section]
        linux, mine = _cell(row.linux), _cell(row.mmemu)
        if len(linux) > 40 or len(mine) > 40:
            lines.append(f"  {row.mark:2} {row.field}")
            lines.append(f"       Linux: {linux}")
            if not row.same:
                lines.append(f"       mmemu: {mine}")
        else:
            lines.append(f"  {row.mark:2} {row.field:<34} {linux:<24} {mine}".rstrip())
        if row.note and not row.same:
            lines.append(f"       ({row.note})")
    lines += ["", verdict(comparison)]
    return "\n".join(lines) + "\n"


def format_markdown(comparison, title):
    """The same table as markdown, for docs/oracle-results.md."""
    lines = [f"### {title}", "", "| | fact | Linux | mmemu |", "|---|---|---|---|"]
    for row in comparison.rows:
        note = f" ({row.note})" if row.note and not row.same else ""
        mine = "=" if row.same and row.kind == EXACT else _cell(row.mmemu) + note
        lines.append(f"| {row.mark} | {row.section}: {row.field} | {_md(_cell(row.linux))} | "
                     f"{_md(mine)} |")
    lines += ["", verdict(comparison), ""]
    return "\n".join(lines)


def _md(text):
    return text.replace("|", "\\|").replace("`", "")


def verdict(comparison):
    """The summary line, naming what differs."""
    text = comparison.summary()
    if comparison.failures:
        text += "; differing: " + ", ".join(f"{r.section}: {r.field}"
                                            for r in comparison.failures[:12])
        if len(comparison.failures) > 12:
            text += f", and {len(comparison.failures) - 12} more"
    if comparison.doubtful:
        text += "; capture cross-checks failed: " + ", ".join(r.field for r in
                                                               comparison.doubtful)
    return text


def format_real(linux, header=()):
    """The real kernel's numbers alone (``mmemu oracle --real-only``)."""
    lines = list(header)
    lines += ["", "Zone ranges:"] + linux.zone_ranges
    lines += ["Movable zone start for each node"] + linux.movable_start
    lines += ["Early memory node ranges"] + linux.node_ranges
    lines += [linux.memory.text, "",
              f"vm.min_free_kbytes {linux.min_free_kbytes}, lowmem_reserve_ratio "
              f"{_cell(linux.lowmem_reserve_ratio)}", "",
              f"{'zone':8} {'spanned':>8} {'present':>8} {'managed':>8} {'min':>6} "
              f"{'low':>6} {'high':>6}  protection"]
    for z in linux.zones:
        lines.append(f"{z.name:8} {z.spanned:8} {z.present:8} {z.managed:8} {z.min:6} "
                     f"{z.low:6} {z.high:6}  {_cell(z.protection)}")
    b = linux.layout
    lines += ["", f"lowmem  {b.lowmem_start:#010x}-{b.lowmem_end:#010x}",
              f"vmalloc {b.vmalloc_start:#010x}-{b.vmalloc_end:#010x}",
              f"pkmap   {b.pkmap_base:#010x}"]
    lines += [f"  {'ok' if ok else '??'} {what}: {detail}" for what, ok, detail in
              linux.layout_checks]
    lines += ["", "memblock (RAM only):"]
    memory = _memblock_memory(linux.memblock)
    lines += ["  " + o.text() for o in linux.memblock if in_ram(o, memory)]
    lines += ["", "name          objsize objperslab pagesperslab"]
    for name in PLAIN_KMALLOC + SLAB_SINGLETONS:
        g = linux.slabs.get(name)
        if g:
            lines.append(f"{name:<15} {g.objsize:5} {g.objperslab:10} {g.pagesperslab:12}")
    return "\n".join(lines) + "\n"
