"""The side-by-side table: the real kernel's numbers against mmemu's.

Rows are of four kinds:

* EXACT: mmemu must print what Linux printed (zone ranges, early node
  ranges, spanned and present pages, the Memory: line's total, the layout
  bounds, kmalloc slab geometry).  A difference is marked ``!!`` and makes
  the oracle's exit status 1.
* FORMULA: mmemu's own watermark and lowmem-reserve functions
  (mm/watermark.py: __setup_per_zone_wmarks, setup_per_zone_lowmem_reserve)
  fed the real kernel's managed counts and min_free_kbytes must give the
  real kernel's min/low/high and protection.  Checked twice: on the final
  zoneinfo (/init wrote vm.min_free_kbytes and vm.lowmem_reserve_ratio back,
  which reran both functions on the final managed counts), and on the
  zoneinfo read before any sysctl was touched, against the managed counts
  the kernel had when init_per_zone_wmark_min() ran: the final ones less
  the initrd and init sections it freed afterwards (dmesg says how much, and
  where).  A difference is marked ``!!`` and counts like an exact one.
* DERIVED: numbers that legitimately differ (managed pages: a real kernel
  reserves its own 15 MiB image, mem_map and boot allocations; watermarks
  and protection follow from managed pages, and the 686 kernel's
  transparent hugepages raise min_free_kbytes).  Marked ``~`` with the
  reason; never a failure.
* CHECK: the real capture's own cross-checks (the kcore header against
  dmesg, meminfo and the monitor's page tables).  A failed check is marked
  ``??``: the capture, not mmemu, is in doubt.
"""
from dataclasses import dataclass
from types import SimpleNamespace

EXACT, FORMULA, DERIVED, CHECK = "exact", "formula", "derived", "check"
WATERMARKS = ("min", "low", "high")
ZONE_ORDER = ("DMA", "Normal", "HighMem", "Movable")
HIGHMEM_LIKE = ("HighMem", "Movable")
PLAIN_KMALLOC = ("kmalloc-8", "kmalloc-16", "kmalloc-32", "kmalloc-64", "kmalloc-96",
                 "kmalloc-128", "kmalloc-192", "kmalloc-256", "kmalloc-512", "kmalloc-1k",
                 "kmalloc-2k", "kmalloc-4k", "kmalloc-8k")
KMALLOC_PREFIXES = ("kmalloc-", "dma-kmalloc-", "kmalloc-rcl-", "kmalloc-cg-")


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    section: str
    field: str
    linux: object
    mmemu: object
    kind: str
    note: str = ""
    passed: bool = None       # a CHECK row's verdict

    @property
    def same(self):
        if self.kind == CHECK:
            return bool(self.passed)
        return self.linux == self.mmemu

    @property
    def shows_note(self):
        return bool(self.note) and (not self.same or self.kind in (CHECK, FORMULA))

    @property
    def failed(self):
        """An exact or formula field that differs."""
        return self.kind in (EXACT, FORMULA) and not self.same

    @property
    def mark(self):
        if self.kind == CHECK:
            return "ok" if self.same else "??"
        if self.same:
            return "ok" if self.kind in (EXACT, FORMULA) else "="
        return "!!" if self.kind in (EXACT, FORMULA) else "~"


@dataclass
class Comparison:
    """All rows, with the counts the summary and the exit status need."""

    rows: list

    @property
    def exact(self):
        return [r for r in self.rows if r.kind in (EXACT, FORMULA)]

    @property
    def failures(self):
        return [r for r in self.rows if r.failed]

    @property
    def doubtful(self):
        return [r for r in self.rows if r.kind == CHECK and not r.same]

    def summary(self):
        matched = len(self.exact) - len(self.failures)
        return f"{matched}/{len(self.exact)} exact fields match"


# ---------------------------------------------------------------------------
# Building the rows

def compare(linux, mmemu):
    """Compare two KernelReports; returns a Comparison."""
    rows = []
    rows += _range_rows(linux, mmemu)
    rows += _memory_rows(linux, mmemu)
    rows += _sysctl_rows(linux, mmemu)
    rows += _zone_rows(linux, mmemu)
    rows += _formula_rows(linux)
    rows += _layout_rows(linux, mmemu)
    rows += _slab_rows(linux, mmemu)
    return Comparison(rows)


def _keyed_lines(lines, nkey):
    """{key: whole line, stripped} for dmesg's indented range lines.

    The key is the line's first nkey words ("DMA", "Node 0", "node 0 #2"),
    numbered when repeated; the value is the whole line, so that a line
    printing the same range with other spacing still differs.
    """
    out, seen = {}, {}
    for line in lines:
        body = line.strip()
        key = " ".join(body.split()[:nkey]).rstrip(":")
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1 or key.startswith("node "):
            key = f"{key} #{seen[key]}"
        out[key] = body
    return out


def _range_rows(linux, mmemu):
    rows = []
    blocks = (("Zone ranges", linux.zone_ranges, mmemu.zone_ranges, 1),
              ("Movable zone start for each node", linux.movable_start,
               mmemu.movable_start, 2),
              ("Early memory node ranges", linux.node_ranges, mmemu.node_ranges, 2))
    for title, real, mine, nkey in blocks:
        real_k, mine_k = _keyed_lines(real, nkey), _keyed_lines(mine, nkey)
        for key in list(real_k) + [k for k in mine_k if k not in real_k]:
            a, b = real_k.get(key, "(missing)"), mine_k.get(key, "(missing)")
            note = "" if a == b else f"Linux prints {a!r}, mmemu {b!r}"
            rows.append(Row(title, key, a, b, EXACT, note))
    return rows


RANGE_SECTIONS = ("Zone ranges", "Movable zone start for each node", "Early memory node ranges")


def _shown(row, value):
    """A cell as the table shows it: range lines without the words the field names."""
    text = _cell(value)
    if row.section in RANGE_SECTIONS and text != "(missing)":
        words = text.split()
        nkey = 1 if row.section == "Zone ranges" else 2
        return " ".join(words[nkey:]) if len(words) > nkey else text
    return text


def _memory_rows(linux, mmemu):
    a, b = linux.memory, mmemu.memory
    managed_note = ("managed pages differ: Linux reserves its own image "
                    "(code, data, bss), mem_map and boot allocations")
    return [
        Row("Memory: line", "total (present)", f"{a.total}K", f"{b.total}K", EXACT),
        Row("Memory: line", "available", f"{a.available}K", f"{b.available}K", DERIVED,
            managed_note),
        Row("Memory: line", "reserved", f"{a.reserved}K", f"{b.reserved}K", DERIVED,
            managed_note),
        Row("Memory: line", "highmem (managed)", f"{a.highmem}K", f"{b.highmem}K", DERIVED,
            "HighMem's managed pages; equal unless one side reserved highmem"),
    ]


def _sysctl_rows(linux, mmemu):
    """vm.min_free_kbytes and friends: DERIVED (THP raises Linux's)."""
    note = ""
    if linux.min_free_kbytes != mmemu.min_free_kbytes:
        note = "the 686 kernel's transparent hugepages raise it (mmemu does not model THP)"
        sqrt_rule = _sqrt_rule(linux)
        if sqrt_rule is not None:
            note += f"; int_sqrt(lowmem_kbytes * 16) on Linux's boot counts is {sqrt_rule}"
    rows = [Row("sysctls", "vm.min_free_kbytes", linux.min_free_kbytes,
                mmemu.min_free_kbytes, DERIVED, note)]
    if mmemu.lowmem_reserve_ratio is not None:
        rows.append(Row("sysctls", "vm.lowmem_reserve_ratio", linux.lowmem_reserve_ratio,
                        mmemu.lowmem_reserve_ratio, EXACT))
    if mmemu.watermark_scale_factor is not None:
        rows.append(Row("sysctls", "vm.watermark_scale_factor", linux.watermark_scale_factor,
                        mmemu.watermark_scale_factor, EXACT))
    return rows


def _sqrt_rule(linux):
    """calculate_min_free_kbytes() without THP, on the managed counts at boot.

    It runs before the first __setup_per_zone_wmarks(), so the high
    watermarks it subtracts are still 0: lowmem_kbytes is the DMA and
    Normal zones' managed pages.
    """
    from mmemu.mm.watermark import int_sqrt
    managed, _ = boot_managed(linux)
    if managed is None:
        return None
    lowmem_kbytes = 4 * sum(managed.get(n, 0) for n in ZONE_ORDER if n not in HIGHMEM_LIKE)
    return min(max(int_sqrt(lowmem_kbytes * 16), 128), 262144)


def _zone_rows(linux, mmemu):
    rows = []
    names = [n for n in ZONE_ORDER if linux.zone(n) or mmemu.zone(n)]
    wm_note = _watermark_note(linux, mmemu)
    for name in names:
        a, b = linux.zone(name), mmemu.zone(name)
        section = f"zone {name}"
        if a is None or b is None:
            rows.append(Row(section, "listed in zoneinfo", a is not None, b is not None, EXACT))
            continue
        rows.append(Row(section, "spanned", a.spanned, b.spanned, EXACT))
        rows.append(Row(section, "present", a.present, b.present, EXACT))
        rows.append(Row(section, "managed", a.managed, b.managed, DERIVED,
                        "" if a.managed == b.managed else
                        f"Linux - mmemu = {a.managed - b.managed:+d} pages: each reserves "
                        f"its own (Linux its image, mem_map, boot allocations; mmemu its "
                        f"guest image, mem_map, page tables)"))
        for wm in WATERMARKS:
            rows.append(Row(section, wm, getattr(a, wm), getattr(b, wm), DERIVED, wm_note))
        rows.append(Row(section, "protection", a.protection, b.protection, DERIVED,
                        "follows from managed pages"))
    return rows


def _watermark_note(linux, mmemu):
    note = "follows from managed pages"
    if linux.min_free_kbytes != mmemu.min_free_kbytes:
        note += " and vm.min_free_kbytes"
    return note


def _layout_rows(linux, mmemu):
    rows = []
    a, b = linux.layout, mmemu.layout
    for label, attr in (("lowmem start (PAGE_OFFSET)", "lowmem_start"),
                        ("lowmem end (high_memory)", "lowmem_end"),
                        ("VMALLOC_START", "vmalloc_start"), ("VMALLOC_END", "vmalloc_end"),
                        ("PKMAP_BASE", "pkmap_base")):
        rows.append(Row("layout", label, f"{getattr(a, attr):#010x}",
                        f"{getattr(b, attr):#010x}", EXACT))
    for what, ok, detail in linux.layout_checks:
        rows.append(Row("layout: the real kernel's cross-checks", what, detail, "", CHECK,
                        passed=ok))
    return rows


def _slab_rows(linux, mmemu):
    """kmalloc caches: the plain ones always; the others where mmemu has them."""
    rows = []
    names = [n for n in linux.slabs if n.startswith(KMALLOC_PREFIXES)]
    names = sorted(names, key=_slab_order)
    for name in names:
        if name not in PLAIN_KMALLOC and name not in mmemu.slabs:
            continue
        a, b = linux.slabs[name], mmemu.slabs.get(name)
        real = (a.objsize, a.objperslab, a.pagesperslab)
        mine = (b.objsize, b.objperslab, b.pagesperslab) if b else "(missing)"
        rows.append(Row("slab geometry (objsize objperslab pagesperslab)", name,
                        _fmt_geom(real), _fmt_geom(mine), EXACT))
    return rows


def _fmt_geom(geom):
    return geom if isinstance(geom, str) else " ".join(str(n) for n in geom)


def _slab_order(name):
    prefix = next(p for p in reversed(KMALLOC_PREFIXES) if name.startswith(p)) \
        if name.startswith(KMALLOC_PREFIXES) else ""
    size = name[len(prefix):]
    number = int(size[:-1]) * 1024 if size.endswith("k") else int(size) if size.isdigit() else 0
    return (KMALLOC_PREFIXES.index(prefix) if prefix else 9, number)


# ---------------------------------------------------------------------------
# mmemu's formulas on the real kernel's managed counts

def recompute_watermarks(managed, min_free_kbytes, ratio, scale_factor, movable_in_highmem):
    """mmemu's __setup_per_zone_wmarks and setup_per_zone_lowmem_reserve on given counts.

    managed: {zone name: managed pages} for one node, every zone of
    ZONE_ORDER.  movable_in_highmem: whether ZONE_MOVABLE counts as highmem,
    which is_highmem() says when movable_zone (the highest zone with a
    non-empty range) is HighMem.  Returns {zone name: (min, low, high,
    protection tuple)}.  The zones are stand-ins carrying only what
    mm/watermark.py reads, so the functions run without a booted machine.
    """
    from mmemu.mm import watermark
    highmem = {"HighMem": True, "Movable": movable_in_highmem}
    zones = [_StubZone(zid, managed.get(name, 0), highmem.get(name, False))
             for zid, name in enumerate(ZONE_ORDER)]
    pgdat = SimpleNamespace(node_zones=zones, totalreserve_pages=0)
    mm = SimpleNamespace(zones=zones, node_data=[pgdat], numa_node_id=0,
                         min_free_kbytes=min_free_kbytes, user_min_free_kbytes=None,
                         watermark_scale_factor=scale_factor,
                         lowmem_reserve_ratio=list(ratio), totalreserve_pages=0)
    watermark._setup_per_zone_wmarks(mm)
    watermark.setup_per_zone_lowmem_reserve(mm)
    return {name: (*z._watermark[:3], tuple(z.lowmem_reserve))
            for name, z in zip(ZONE_ORDER, zones)}


class _StubZone:
    """What mm/watermark.py reads and writes of a struct zone."""

    def __init__(self, zid, managed, highmem):
        self.zone_idx = zid
        self.managed_pages = managed
        self.is_highmem = highmem
        self._watermark = [0, 0, 0, 0]
        self.watermark_boost = 0
        self.lowmem_reserve = [0, 0, 0, 0]

    def high_wmark_pages(self):
        return self._watermark[2]


def boot_managed(linux):
    """Each zone's managed pages when the real kernel set its watermarks.

    The final counts less what was freed afterwards (linux.boot_frees:
    the initrd and the init sections, each in the zone dmesg/iomem place
    it in).  Returns ({zone: pages}, note), or (None, why) when a free
    cannot be placed.
    """
    managed = {z.name: z.managed for z in linux.zones if z.node == 0}
    parts = []
    for what, kb, zone in linux.boot_frees:
        if zone not in managed:
            return None, f"cannot tell which zone the {what} ({kb}K) was freed into"
        managed[zone] -= kb // 4
        parts.append(f"{what} {kb}K from {zone}")
    note = "managed at boot = final managed less " + (", ".join(parts) or "nothing")
    return managed, note


def _formula_rows(linux):
    """FORMULA rows for the final zoneinfo and, when captured, the as-booted one."""
    if linux.min_free_kbytes is None or linux.lowmem_reserve_ratio is None:
        return []
    rows = []
    final = {z.name: z.managed for z in linux.zones if z.node == 0}
    rows += _formula_rows_for(linux.zones, final, linux.min_free_kbytes, linux,
                              "after init (sysctls rewritten)",
                              "mmemu's formulas on Linux's final managed counts")
    if linux.zones_boot and linux.min_free_kbytes_boot is not None:
        managed, note = boot_managed(linux)
        if managed is not None:
            rows += _formula_rows_for(linux.zones_boot, managed, linux.min_free_kbytes_boot,
                                      linux, "as booted", note)
    return rows


def _formula_rows_for(zones, managed, min_free_kbytes, linux, when, note):
    high = linux.zone("HighMem")
    want = recompute_watermarks(managed, min_free_kbytes, linux.lowmem_reserve_ratio,
                                linux.watermark_scale_factor or 10,
                                bool(high and high.spanned))
    rows = []
    section = f"watermarks {when}: Linux vs mmemu's formula on Linux's managed pages"
    for z in zones:
        if z.node != 0 or z.name not in want:
            continue
        wmin, wlow, whigh, prot = want[z.name]
        got = (z.min, z.low, z.high)
        rows.append(Row(section, f"{z.name} min/low/high", "/".join(map(str, got)),
                        f"{wmin}/{wlow}/{whigh}", FORMULA,
                        f"managed {managed[z.name]}" + ("" if rows else
                                                        f", min_free_kbytes {min_free_kbytes}; {note}")))
        rows.append(Row(section, f"{z.name} protection", z.protection,
                        prot[:len(z.protection)], FORMULA))
    return rows


# ---------------------------------------------------------------------------
# Printing

def format_text(comparison, header=()):
    """The table for a terminal: mark, field, Linux, mmemu, note."""
    lines = list(header)
    section = None
    width = min(max([len(_shown(r, r.linux)) for r in comparison.rows] + [5]), 44)
    for row in comparison.rows:
        if row.section != section:
            section = row.section
            lines.append("")
            lines.append(f"{section}")
        linux, mine = _shown(row, row.linux), _shown(row, row.mmemu)
        line = f"  {row.mark:2} {row.field:<28} {linux:<{width}}  {mine:<{width}}"
        if row.shows_note:
            line += f"  {row.note}"
        lines.append(line.rstrip())
    lines.append("")
    lines.append(_verdict(comparison))
    return "\n".join(lines) + "\n"


def format_markdown(comparison, title):
    """The same table as markdown, for docs/oracle-results.md."""
    lines = [f"### {title}", "", "| | field | Linux | mmemu | note |", "|---|---|---|---|---|"]
    for row in comparison.rows:
        note = row.note if row.shows_note else ""
        lines.append(f"| {row.mark} | {row.section}: {row.field} | {_shown(row, row.linux)} | "
                     f"{_shown(row, row.mmemu)} | {note} |".replace("`", ""))
    lines += ["", _verdict(comparison), ""]
    return "\n".join(lines)


def format_real(linux, header=()):
    """The real kernel's numbers alone (``mmemu oracle --real-only``)."""
    lines = list(header)
    lines += ["", "Zone ranges:"] + linux.zone_ranges
    lines += ["Movable zone start for each node"] + linux.movable_start
    lines += ["Early memory node ranges"] + linux.node_ranges
    lines += [linux.memory.text, "",
              f"vm.min_free_kbytes {linux.min_free_kbytes} (at boot "
              f"{linux.min_free_kbytes_boot}), lowmem_reserve_ratio "
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
    lines += ["", "name          objsize objperslab pagesperslab"]
    for name in PLAIN_KMALLOC:
        g = linux.slabs.get(name)
        if g:
            lines.append(f"{name:<13} {g.objsize:7} {g.objperslab:10} {g.pagesperslab:12}")
    return "\n".join(lines) + "\n"


def _cell(value):
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value).strip()


def _verdict(comparison):
    text = comparison.summary()
    if comparison.failures:
        text += "; differing: " + ", ".join(f"{r.section}: {r.field}"
                                            for r in comparison.failures)
    if comparison.doubtful:
        text += "; capture cross-checks failed: " + ", ".join(r.field for r in
                                                               comparison.doubtful)
    return text
