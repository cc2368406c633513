"""Parse what a kernel reports about its memory into one KernelReport.

The same parsers read the real kernel's capture (the serial transcript of
initramfs.py's /init plus the QEMU monitor's answers) and mmemu's own views,
which print Linux's formats: comparing like with like.

    >>> report = real_report(load_capture("tests/fixtures/oracle/qemu-pc-1g"))
    >>> report.zone("Normal").spanned
    220158

Each parse_* function takes one file's text and returns plain records; the
formats are those of Linux 6.1 (mm/vmstat.c for zoneinfo and buddyinfo,
fs/proc/meminfo.c, mm/slab_common.c for slabinfo, mm/vmalloc.c for
vmallocinfo, kernel/resource.c for iomem, fs/proc/kcore.c for the kcore ELF
header) and of QEMU's HMP monitor (``info mem``, ``xp``).
"""
import re
from dataclasses import dataclass, field

from mmemu.oracle.initramfs import MARK_BEGIN, MARK_END, MARK_SUFFIX

PAGE_OFFSET = 0xC0000000
PAGE_SIZE = 4096
PGDIR_SHIFT = 22
PMD_SHIFT_PAE = 21
PT_LOAD = 1
_PTE_PRESENT = 0x1
_PTE_PSE = 0x80


class CaptureError(ValueError):
    """A capture lacks a section or a line the comparison needs."""


# ---------------------------------------------------------------------------
# Records

@dataclass
class ZoneInfo:
    """One zone of /proc/zoneinfo (pages)."""

    node: int
    name: str
    free: int = 0
    min: int = 0
    low: int = 0
    high: int = 0
    spanned: int = 0
    present: int = 0
    managed: int = 0
    protection: tuple = ()
    pcp_high: int = None        # pagesets: high, batch (populated zones only)
    pcp_batch: int = None
    stat_threshold: int = None  # vm stats threshold
    start_pfn: int = None


@dataclass(frozen=True)
class SlabGeometry:
    """A cache's line of /proc/slabinfo, the geometry part."""

    name: str
    objsize: int
    objperslab: int
    pagesperslab: int


@dataclass(frozen=True)
class MemoryLine:
    """mem_init_print_info()'s ``Memory: 1019912K/1048056K available (...)`` (KiB)."""

    available: int
    total: int
    reserved: int
    highmem: int
    text: str


@dataclass(frozen=True)
class LayoutBounds:
    """The kernel's virtual layout, as read from the running kernel."""

    lowmem_start: int
    lowmem_end: int             # high_memory
    vmalloc_start: int
    vmalloc_end: int
    pkmap_base: int


@dataclass(frozen=True)
class MemblockOp:
    """One memblock operation of the boot log (memblock=debug), or one region
    of the ``MEMBLOCK configuration:`` dump (op ``reserved``/``memory``).

    ``base``/``end`` are the range the operation took or freed (end
    exclusive); an allocation's request (size, align, caller) and its
    placement (the memblock_reserve line that follows it) are one op.
    """

    op: str                     # add, reserve, alloc, free, memory, reserved
    base: int
    end: int
    caller: str = ""            # the kernel function, without +offset/size
    size: int = None            # alloc: the bytes asked for
    align: int = None           # alloc: the alignment asked for

    def text(self):
        """The op in one line, as the comparison shows it."""
        where = f"[{self.base:#010x}-{self.end - 1:#010x}]"
        if self.op == "alloc":
            return f"alloc {self.size} bytes align={self.align:#x} {self.caller}: {where}"
        if self.op in ("memory", "reserved"):
            return f"{self.op} {where} (MEMBLOCK configuration)"
        return f"{self.op} {where} {self.caller}".rstrip()


@dataclass
class KernelReport:
    """Everything the comparison needs from one kernel, real or mmemu."""

    source: str
    zone_ranges: list            # the lines under "Zone ranges:", as printed
    movable_start: list          # the lines under "Movable zone start for each node"
    node_ranges: list            # the lines under "Early memory node ranges"
    memory: MemoryLine
    zones: list                  # ZoneInfo
    slabs: dict                  # name -> SlabGeometry
    layout: LayoutBounds
    min_free_kbytes: int = None
    lowmem_reserve_ratio: tuple = None
    watermark_scale_factor: int = None
    layout_checks: list = field(default_factory=list)  # [(what, ok, detail)]
    meminfo: dict = field(default_factory=dict)
    buddyinfo: dict = field(default_factory=dict)
    pagetypeinfo: object = None  # PageTypeInfo, or None when the capture has none
    log: list = field(default_factory=list)        # the boot log lines, no timestamps
    memblock: list = field(default_factory=list)   # MemblockOp, in boot order
    cmdline: str = ""
    kernel: str = ""             # uname -r -v, or "mmemu"
    package: str = ""            # where the kernel came from (the oracle's notes)
    kernel_pmd: dict = None      # PAE: {index: entry} of the kernel's PMD (monitor, or mmemu's)

    def zone(self, name, node=0):
        for z in self.zones or ():
            if z.name == name and z.node == node:
                return z
        return None

    @property
    def kaslr(self):
        """Whether this boot placed the kernel at random (no nokaslr)."""
        return bool(self.cmdline) and "nokaslr" not in self.cmdline.split()


# ---------------------------------------------------------------------------
# The capture transcript

def split_sections(text):
    """{name: body} of the ``@@ORACLE-BEGIN name@@`` ... ``@@ORACLE-END name@@`` blocks.

    Trailing blank lines are dropped; a marker that lands at the end of a
    line without a newline before it (a file not ending in one) still ends
    the block.
    """
    sections, name, body = {}, None, []
    for line in text.splitlines():
        if name is None:
            start = line.find(MARK_BEGIN)
            if start >= 0 and line.endswith(MARK_SUFFIX):
                name, body = line[start + len(MARK_BEGIN):-len(MARK_SUFFIX)], []
            continue
        end = line.find(MARK_END + name + MARK_SUFFIX)
        if end >= 0:
            if line[:end]:
                body.append(line[:end])
            while body and not body[-1].strip():
                body.pop()
            sections[name] = "\n".join(body) + "\n" if body else ""
            name = None
            continue
        body.append(line)
    return sections


def _need(sections, name):
    if name not in sections:
        raise CaptureError(f"the capture has no '{name}' section")
    return sections[name]


# ---------------------------------------------------------------------------
# dmesg

_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ?")
_MEMORY_RE = re.compile(r"Memory: (\d+)K/(\d+)K available \(.*?(\d+)K reserved, "
                        r"\d+K cma-reserved, (\d+)K highmem\)")


def dmesg_lines(text):
    """The log lines with their ``[    0.071253] `` timestamps removed."""
    return [_TIMESTAMP.sub("", line.rstrip()) for line in text.splitlines()]


def _block(lines, header, stop):
    """The indented lines after the line ``header`` up to one matching stop."""
    try:
        start = lines.index(header) + 1
    except ValueError:
        raise CaptureError(f"the log has no '{header}' line") from None
    out = []
    for line in lines[start:]:
        if stop(line):
            break
        out.append(line)
    return out


def parse_zone_ranges(text):
    """(zone range lines, movable start lines, node range lines) of free_area_init()."""
    lines = dmesg_lines(text)
    zones = _block(lines, "Zone ranges:", lambda ln: not ln.startswith("  "))
    movable = _block(lines, "Movable zone start for each node", lambda ln: not ln.startswith("  "))
    nodes = _block(lines, "Early memory node ranges",
                   lambda ln: not ln.startswith("  node "))
    return zones, movable, nodes


def parse_memory_line(text):
    """The ``Memory:`` line of the boot log as a MemoryLine."""
    for line in dmesg_lines(text):
        match = _MEMORY_RE.search(line)
        if match:
            avail, total, reserved, high = (int(g) for g in match.groups())
            return MemoryLine(avail, total, reserved, high, line[match.start():])
    raise CaptureError("the log has no 'Memory: ...K/...K available' line")


def parse_low_ram(text):
    """setup_bootmem_allocator()'s ``low ram: 0 - 36bfe000``: lowmem's end, or None."""
    for line in dmesg_lines(text):
        match = re.match(r"\s*low ram: 0 - ([0-9a-f]+)$", line)
        if match:
            return int(match.group(1), 16)
    return None


_MB_RANGE = r"\[(0x[0-9a-f]+)-(0x[0-9a-f]+)\]"
_MB_CALLER = r"(\w+)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?"
_MB_ALLOC = re.compile(r"(memblock_\w*alloc\w*): (\d+) bytes align=(0x[0-9a-f]+) .*? "
                       + _MB_CALLER + "$")
_MB_RANGE_OP = re.compile(r"memblock_(add|reserve|phys_free|free): " + _MB_RANGE + " "
                          + _MB_CALLER + "$")
_MB_DUMP = re.compile(r" (memory|reserved)\[0x[0-9a-f]+\]\s+" + _MB_RANGE)


def parse_memblock(lines):
    """[MemblockOp] of a boot log's memblock=debug lines, in order.

    An allocation (memblock_phys_alloc_range, memblock_alloc_try_nid, ...)
    is its request line and the ``memblock_reserve: ... memblock_alloc_range_nid``
    line that places it.  A free of nothing (6.1 frees the unused tail of
    the per-cpu chunk, often empty, and logs an end below its start) is
    kept, with end == base.
    """
    ops, pending = [], None
    for line in lines:
        match = _MB_ALLOC.match(line)
        if match:
            pending = (int(match.group(2)), int(match.group(3), 16), match.group(4))
            continue
        match = _MB_DUMP.match(line)
        if match:
            base, last = (int(g, 16) for g in match.group(2, 3))
            ops.append(MemblockOp(match.group(1), base, last + 1))
            continue
        match = _MB_RANGE_OP.match(line)
        if not match:
            continue
        kind, base, last, caller = match.group(1), int(match.group(2), 16), \
            int(match.group(3), 16), match.group(4)
        end = max(last + 1, base)
        if kind == "reserve" and caller == "memblock_alloc_range_nid" and pending:
            size, align, who = pending
            ops.append(MemblockOp("alloc", base, end, who, size, align))
            pending = None
        else:
            ops.append(MemblockOp("free" if kind.endswith("free") else kind, base, end, caller))
    return ops


# ---------------------------------------------------------------------------
# /proc files

def parse_zoneinfo(text):
    """[ZoneInfo] in file order; every zone, populated or not."""
    zones, zone = [], None
    for line in text.splitlines():
        match = re.match(r"Node (\d+), zone\s+(\S+)", line)
        if match:
            zone = ZoneInfo(int(match.group(1)), match.group(2))
            zones.append(zone)
            continue
        if zone is None:
            continue
        words = line.split()
        if words[:2] == ["pages", "free"]:
            zone.free = int(words[2])
        elif len(words) == 2 and words[0] in ("min", "low", "high", "spanned",
                                             "present", "managed"):
            setattr(zone, words[0], int(words[1]))
        elif words and words[0] == "protection:":
            nums = re.findall(r"\d+", line)
            zone.protection = tuple(int(n) for n in nums)
        elif words[:1] in (["high:"], ["batch:"]) and len(words) == 2:
            setattr(zone, "pcp_" + words[0][:-1], int(words[1]))
        elif words[:3] == ["vm", "stats", "threshold:"]:
            zone.stat_threshold = int(words[3])
        elif words[:1] == ["start_pfn:"]:
            zone.start_pfn = int(words[1])
    if not zones:
        raise CaptureError("zoneinfo lists no zone")
    return zones


def parse_buddyinfo(text):
    """{(node, zone): [free blocks per order]}."""
    out = {}
    for line in text.splitlines():
        match = re.match(r"Node (\d+), zone\s+(\S+)\s+(.*)$", line)
        if match:
            out[(int(match.group(1)), match.group(2))] = [int(n) for n in match.group(3).split()]
    return out


@dataclass
class PageTypeInfo:
    """/proc/pagetypeinfo: the pageblock order, and per (node, zone) the free
    blocks of each migratetype by order and the pageblocks of each migratetype."""

    pageblock_order: int = None
    pages_per_block: int = None
    free: dict = field(default_factory=dict)       # (node, zone, type) -> [count per order]
    blocks: dict = field(default_factory=dict)     # (node, zone) -> {type: pageblocks}


def parse_pagetypeinfo(text):
    """A PageTypeInfo from the file's text, or None for no text."""
    if not text or not text.strip():
        return None
    out = PageTypeInfo()
    types = []
    for line in text.splitlines():
        if line.startswith("Page block order:"):
            out.pageblock_order = int(line.split(":")[1])
        elif line.startswith("Pages per block:"):
            out.pages_per_block = int(line.split(":")[1])
        elif line.startswith("Number of blocks type"):
            types = line[len("Number of blocks type"):].split()
        match = re.match(r"Node\s+(\d+), zone\s+(\S+), type\s+(\S+)\s+(.*)$", line)
        if match:
            counts = [int(n.lstrip(">")) for n in match.group(4).split()]
            out.free[(int(match.group(1)), match.group(2), match.group(3))] = counts
            continue
        match = re.match(r"Node (\d+), zone\s+(\S+)\s+([\d\s]+)$", line)
        if match and types:
            counts = [int(n) for n in match.group(3).split()]
            out.blocks[(int(match.group(1)), match.group(2))] = dict(zip(types, counts))
    return out


def parse_meminfo(text):
    """{field: value} in kB (HugePages_* are counts)."""
    out = {}
    for line in text.splitlines():
        match = re.match(r"([^:\s]+):\s+(\d+)", line)
        if match:
            out[match.group(1)] = int(match.group(2))
    return out


def parse_slabinfo(text):
    """{name: SlabGeometry} of a version 2.1 /proc/slabinfo."""
    out = {}
    for line in text.splitlines():
        if line.startswith(("slabinfo", "#")) or ":" not in line:
            continue
        words = line.split()
        if len(words) < 6:
            continue
        name = words[0]
        objsize, objperslab, pagesperslab = (int(w) for w in words[3:6])
        out[name] = SlabGeometry(name, objsize, objperslab, pagesperslab)
    return out


def parse_vmallocinfo(text):
    """[(start, end, size, caller, kind)]; addresses None where the kernel hashed them."""
    out = []
    for line in text.splitlines():
        match = re.match(r"0x(\S+)-0x(\S+)\s+(\d+)\s+(\S+)", line)
        if not match:
            continue
        start, end = (_hex_or_none(g) for g in match.group(1, 2))
        kinds = [w for w in ("ioremap", "vmalloc", "vmap", "user", "vpages", "unpurged")
                 if f" {w}" in line]
        out.append((start, end, int(match.group(3)), match.group(4), kinds[0] if kinds else ""))
    return out


def _hex_or_none(word):
    try:
        return int(word, 16)
    except ValueError:
        return None


def parse_iomem(text):
    """[(depth, start, end, name)] of /proc/iomem (end inclusive, as printed)."""
    out = []
    for line in text.splitlines():
        match = re.match(r"( *)([0-9a-f]+)-([0-9a-f]+) : (.*)$", line)
        if match:
            out.append((len(match.group(1)) // 2, int(match.group(2), 16),
                        int(match.group(3), 16), match.group(4)))
    return out


def parse_kcore_header(text):
    """The PT_LOAD segments of /proc/kcore's ELF32 header: [(vaddr, memsz, paddr)].

    text is ``od -An -tx1`` output of the file's first bytes.  fs/proc/kcore.c
    emits one segment per kclist entry: the direct map of RAM (paddr the
    physical address) and the vmalloc area [VMALLOC_START, VMALLOC_END)
    (paddr -1).
    """
    data = bytes(int(b, 16) for b in text.split())
    if data[:4] != b"\x7fELF" or data[4] != 1:
        raise CaptureError("the kcore header is not an ELF32 header")
    phoff = int.from_bytes(data[28:32], "little")
    phentsize = int.from_bytes(data[42:44], "little")
    phnum = int.from_bytes(data[44:46], "little")
    out = []
    for i in range(phnum):
        ph = data[phoff + i * phentsize: phoff + (i + 1) * phentsize]
        if len(ph) < 32:
            raise CaptureError("the kcore header is cut short")
        words = [int.from_bytes(ph[j:j + 4], "little") for j in range(0, 32, 4)]
        if words[0] == PT_LOAD:
            out.append((words[2], words[5], words[3]))
    return out


# ---------------------------------------------------------------------------
# The QEMU monitor

def parse_info_mem(text):
    """[(start, end, perms)] of HMP ``info mem`` (end exclusive)."""
    out = []
    for line in text.splitlines():
        match = re.match(r"([0-9a-f]+)-([0-9a-f]+) [0-9a-f]+ (\S+)", line.strip())
        if match:
            out.append((int(match.group(1), 16), int(match.group(2), 16), match.group(3)))
    return out


def page_directory_base(text):
    """The physical address of the page directory an ``xp`` dump starts at:
    a ``# base 0x...`` line (a trimmed fixture), else its first address."""
    for line in text.splitlines():
        if line.startswith("# base "):
            return int(line.split()[2], 16)
        if ":" in line:
            return int(line.split(":", 1)[0], 16)
    return None


PMD_RUN_STEP = 1 << 21        # a 2 MiB page further on


def page_directory_is_pmd(text):
    """Whether an ``xp`` dump holds 64-bit entries: a PAE kernel PMD (``/512gx``),
    or its trimmed form (pmd_runs())."""
    for line in text.splitlines():
        if line.startswith("# run "):
            return True
        if ":" in line and not line.startswith("#"):
            words = line.split(":", 1)[1].split()
            return bool(words) and len(words[0]) == 18
    return False


def pmd_runs(entries):
    """A PAE kernel PMD {index: entry} as ``# run`` lines: "# run FIRST-LAST
    ENTRY" stands for entries FIRST..LAST, ENTRY then each 2 MiB on (a run
    of one page table is one line; empty entries are left out)."""
    lines, i = [], 0
    while i < 512:
        entry = entries.get(i, 0)
        if not entry:
            i += 1
            continue
        step = PMD_RUN_STEP if entry & 0x80 else 0
        last = i
        while (step and last + 1 < 512
               and entries.get(last + 1, 0) == entry + (last + 1 - i) * step):
            last += 1
        lines.append(f"# run {i}-{last} {entry:#018x}")
        i = last + 1
    return lines


def parse_page_directory(text):
    """{index: entry} of an HMP ``xp /1024wx CR3`` dump, or of a PAE kernel
    PMD's ``xp /512gx`` (64-bit entries), or a trimmed one."""
    base = page_directory_base(text)
    size = 8 if page_directory_is_pmd(text) else 4
    out = {}
    for line in text.splitlines():
        if line.startswith("# run "):
            span, entry = line.split()[2:4]
            first, last = (int(n) for n in span.split("-"))
            entry = int(entry, 16)
            step = PMD_RUN_STEP if entry & 0x80 else 0
            for i in range(first, last + 1):
                out[i] = entry + (i - first) * step
            continue
        if ":" not in line or line.startswith("#"):
            continue
        addr, words = line.split(":", 1)
        first = (int(addr, 16) - base) // size
        for i, word in enumerate(words.split()):
            out[first + i] = int(word, 16)
    return out


def direct_map_end(info_mem):
    """The end of the run of mappings that starts at PAGE_OFFSET (high_memory)."""
    end = None
    for start, stop, _ in sorted(info_mem):
        if end is None:
            if start == PAGE_OFFSET:
                end = stop
        elif start == end:
            end = stop
        elif start > end:
            break
    return end


def first_table_at_or_above(pgd, addr, pmd=False):
    """The address of the first present page-directory entry at or above addr.

    pgd: {index: entry} (parse_page_directory) or a list of the 1024 entries;
    pmd: they are a PAE kernel PMD's 512 (each 2 MiB from PAGE_OFFSET).
    """
    entries = pgd if isinstance(pgd, dict) else dict(enumerate(pgd))
    if pmd:
        for index in range(max(0, -(-(addr - PAGE_OFFSET) >> PMD_SHIFT_PAE)), 512):
            if entries.get(index, 0) & _PTE_PRESENT:
                return PAGE_OFFSET + (index << PMD_SHIFT_PAE)
        return None
    for index in range(-(-addr >> PGDIR_SHIFT), 1024):
        if entries.get(index, 0) & _PTE_PRESENT:
            return index << PGDIR_SHIFT
    return None


# ---------------------------------------------------------------------------
# Layout

def real_layout(sections, low_ram):
    """LayoutBounds from the kcore header and the monitor, with cross-checks.

    Returns (LayoutBounds, [(what, ok, detail)]).  The vmalloc area and the
    direct map come from /proc/kcore's segments; PKMAP_BASE is the first
    page table present at or above VMALLOC_END (permanent_kmaps_init()
    allocates it at boot); without the monitor it falls back to
    VMALLOC_END + 2 pages, the definition in pgtable_32_areas.h.
    """
    segments = parse_kcore_header(_need(sections, "kcore-header"))
    ram = [(v, v + size) for v, size, phys in segments if phys != 0xFFFFFFFF]
    vmalloc = [(v, v + size) for v, size, phys in segments if phys == 0xFFFFFFFF]
    if not ram or len(vmalloc) != 1:
        raise CaptureError(f"unexpected /proc/kcore segments {segments}")
    lowmem_end = max(end for _, end in ram)
    vm_start, vm_end = vmalloc[0]
    checks = []
    if low_ram is not None:
        checks.append(("dmesg 'low ram'", PAGE_OFFSET + low_ram == lowmem_end,
                       f"low ram ends at {PAGE_OFFSET + low_ram:#010x}"))
    total = parse_meminfo(sections.get("meminfo", "")).get("VmallocTotal")
    if total is not None:
        checks.append(("meminfo VmallocTotal", total * 1024 == vm_end - vm_start,
                       f"VmallocTotal {total} kB"))
    pkmap = vm_end + 2 * PAGE_SIZE
    info_mem = sections.get("monitor:info mem")
    if info_mem:
        mapped = direct_map_end(parse_info_mem(info_mem))
        checks.append(("info mem: direct map end", mapped == lowmem_end,
                       f"direct map ends at {mapped:#010x}" if mapped else "no direct map"))
    pgd_text = sections.get("monitor:page directory")
    if pgd_text:
        table = first_table_at_or_above(parse_page_directory(pgd_text), vm_end,
                                        page_directory_is_pmd(pgd_text))
        checks.append(("page directory: pkmap table", table == pkmap,
                       f"first page table above VMALLOC_END at {table:#010x}" if table
                       else "no page table above VMALLOC_END"))
        pkmap = table if table is not None else pkmap
    else:
        checks.append(("page directory: pkmap table", True,
                       "monitor not captured: PKMAP_BASE = VMALLOC_END + 2 pages"))
    bounds = LayoutBounds(PAGE_OFFSET, lowmem_end, vm_start, vm_end, pkmap)
    return bounds, checks


# ---------------------------------------------------------------------------
# Whole reports

def real_report(sections):
    """A KernelReport from a real-kernel capture: {section: text} (capture.load_capture)."""
    if isinstance(sections, str):
        sections = split_sections(sections)
    log = dmesg_lines(_need(sections, "dmesg"))
    zone_ranges, movable, nodes = parse_zone_ranges("\n".join(log))
    layout, checks = real_layout(sections, parse_low_ram("\n".join(log)))
    ratio = tuple(int(n) for n in sections.get("lowmem_reserve_ratio", "").split()) or None
    notes = dict(line.split(": ", 1) for line in sections.get("oracle", "").splitlines()
                 if ": " in line)
    return KernelReport(
        source="Linux", zone_ranges=zone_ranges, movable_start=movable, node_ranges=nodes,
        memory=parse_memory_line("\n".join(log)),
        zones=parse_zoneinfo(_need(sections, "zoneinfo")),
        slabs=parse_slabinfo(_need(sections, "slabinfo")), layout=layout,
        min_free_kbytes=_int(sections.get("min_free_kbytes")),
        lowmem_reserve_ratio=ratio,
        watermark_scale_factor=_int(sections.get("watermark_scale_factor")),
        layout_checks=checks,
        meminfo=parse_meminfo(sections.get("meminfo", "")),
        buddyinfo=parse_buddyinfo(sections.get("buddyinfo", "")),
        pagetypeinfo=parse_pagetypeinfo(sections.get("pagetypeinfo")),
        log=log, memblock=parse_memblock(log),
        cmdline=(sections.get("cmdline") or "").strip(),
        kernel=(sections.get("uname") or "").strip(), package=notes.get("kernel", ""),
        kernel_pmd=_kernel_pmd(sections.get("monitor:page directory")))


def _kernel_pmd(text):
    """{index: entry} of a PAE kernel PMD dump, or None (no dump, or a 686 one)."""
    if not text or not page_directory_is_pmd(text):
        return None
    return parse_page_directory(text)


def _int(text):
    return int(text.split()[0]) if text and text.split() else None
