"""A real boot's capture as data: read, trim to what matters, store as a fixture.

A capture is a dict {section name: text}: the sections /init printed
between markers (initramfs.CAPTURES), the QEMU monitor's answers
(``monitor:info mem``, ``monitor:page directory``) and the oracle's own
notes (``oracle``: the kernel package, QEMU, the command, the seconds).
It comes either from a whole serial transcript (``--save-capture``) or
from a fixture folder, one small text file per section::

    tests/fixtures/oracle/qemu-pc-1g/
        dmesg.txt            the memory-related lines of the log, no timestamps
        zoneinfo.txt  buddyinfo.txt  meminfo.txt  iomem.txt  cmdline.txt ...
        slabinfo.txt         the header and the caches mmemu has
        vmallocinfo.txt      its first lines
        kcore-header.txt     the ELF header and program headers only
        monitor-info-mem.txt, monitor-page-directory.txt   the kernel half only
        uname.txt  oracle.txt

``trim()`` keeps of each section what the parsers read, so that a stored
fixture compares exactly as the whole capture does (tests check it).
"""
import re
from pathlib import Path

from mmemu.oracle.parse import (PAGE_OFFSET, PGDIR_SHIFT, dmesg_lines,
                                page_directory_base, page_directory_is_pmd,
                                parse_page_directory, pmd_runs,
                                parse_kcore_header, split_sections)

VMALLOCINFO_HEAD = 12
SLAB_CACHES = re.compile(r"(dma-)?kmalloc-(rcl-|cg-)?\S+|kmem_cache(_node)?$")

# Memory-related kernel log lines (after the timestamp): what the fixture keeps.
MEMORY_LOG = re.compile("|".join([
    r"Linux version ", r"BIOS-provided physical RAM map:", r"BIOS-e820: ",
    r"e820: (update|remove) ", r"last_pfn = ", r"initial memory mapped: ",
    r"memblock_\w+: ", r"MEMBLOCK configuration:", r" (memory|reserved)(\.cnt|\[| size)",
    r"found SMP MP-table", r"ACPI: Reserving \S+ table memory",
    r"(Allocated new |Move )?RAMDISK", r"only \d+MB highmem pages available",
    r"Warning: only 4GB", r"\d+MB (HIGHMEM|LOWMEM) available\.", r"  (mapped )?low ram: ",
    r"Zone ranges:", r"  (DMA|Normal|HighMem|Movable) ", r"Movable zone start for each node",
    r"  Node \d+: ", r"Early memory node ranges", r"  node +\d+: ", r"Initmem setup node",
    r"On node \d+, zone ", r"\[mem \S+\] available for PCI devices",
    r"PM: hibernation: Registered nosave memory", r"setup_percpu: ", r"percpu: Embedded",
    r"pcpu-alloc: ", r"Built \d+ zonelists", r"Kernel command line: ",
    r"Unknown kernel command line parameters", r".* hash table entries: ", r"mem auto-init: ",
    r"Initializing \S+ for node", r"Memory: \d+K/", r"SLUB: HWalign", r"Freeing ",
    r"Write protecting", r"HugeTLB: ", r"raising min_free_kbytes", r"x86/mm: ",
    r"acpi resource window .* not CPU addressable",
]))


def section_file(name):
    """The fixture file of a section: ``monitor:info mem`` -> monitor-info-mem.txt."""
    return re.sub(r"[^\w.-]+", "-", name) + ".txt"


def load_capture(path):
    """{section: text} of a transcript file or a fixture folder; OSError if unreadable."""
    path = Path(path)
    if not path.is_dir():
        return split_sections(path.read_text())
    names = {section_file(n): n for n in KNOWN_SECTIONS}
    out = {}
    for file in sorted(path.glob("*.txt")):
        out[names.get(file.name, file.stem)] = file.read_text()
    return out


KNOWN_SECTIONS = ("uname", "cmdline", "zoneinfo", "buddyinfo", "pagetypeinfo", "meminfo",
                  "slabinfo", "vmallocinfo", "iomem", "kcore-header", "min_free_kbytes",
                  "watermark_scale_factor", "lowmem_reserve_ratio", "dmesg",
                  "monitor:info mem", "monitor:page directory", "oracle")


def trim(sections):
    """The sections a fixture keeps, each cut to what the parsers and the
    reference notes use."""
    out = {}
    for name in KNOWN_SECTIONS:
        if name in sections:
            out[name] = _TRIM.get(name, _keep)(sections[name], sections)
    return out


def save_fixture(sections, folder):
    """Write trim(sections) into folder, one file per section; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    for name, text in trim(sections).items():
        (folder / section_file(name)).write_text(text.rstrip("\n") + "\n")
    return folder


def _keep(text, sections):
    return text


def _memory_log(text, sections):
    return "\n".join(line for line in dmesg_lines(text) if MEMORY_LOG.match(line)) + "\n"


def _slabinfo(text, sections):
    lines = text.splitlines()
    keep = [line for line in lines if line.startswith(("slabinfo", "#"))
            or SLAB_CACHES.fullmatch(line.split()[0] if line.split() else "")]
    return "\n".join(keep) + "\n"


def _head(text, sections):
    return "\n".join(text.splitlines()[:VMALLOCINFO_HEAD]) + "\n"


def _kcore_header(text, sections):
    """The ELF32 header and its program headers, in the od format it came in."""
    words = text.split()
    data = bytes(int(b, 16) for b in words)
    phoff = int.from_bytes(data[28:32], "little")
    phentsize = int.from_bytes(data[42:44], "little")
    phnum = int.from_bytes(data[44:46], "little")
    end = phoff + phentsize * phnum
    cut = words[:end]
    return "\n".join(" " + " ".join(cut[i:i + 16]) for i in range(0, len(cut), 16)) + "\n"


def _vmalloc_end(sections):
    try:
        segments = parse_kcore_header(sections["kcore-header"])
    except (KeyError, ValueError):
        return None
    ends = [v + size for v, size, phys in segments if phys == 0xFFFFFFFF]
    return ends[0] if ends else None


def _info_mem(text, sections):
    """The mappings of the kernel half below the vmalloc area: the direct map."""
    end = _vmalloc_end(sections) or 0xFFFFFFFF
    keep = []
    for line in text.splitlines():
        match = re.match(r"\s*([0-9a-f]+)-", line)
        if match and PAGE_OFFSET <= int(match.group(1), 16) < end:
            keep.append(line)
    return "\n".join(keep) + "\n"


def _page_directory(text, sections):
    """The ``xp`` lines from the entry of VMALLOC_END's 4 MiB up (pkmap's table),
    after a ``# base`` line naming the directory's address (a PAE kernel
    PMD whole, after its PDPT's line)."""
    end = _vmalloc_end(sections)
    base = page_directory_base(text)
    lines = [line for line in text.splitlines() if ":" in line and not line.startswith("#")]
    if end is None or base is None:
        return text
    if page_directory_is_pmd(text):
        # A PAE kernel PMD (512 entries) is kept whole, the comparison looks at
        # the direct map's entries too: as runs of entries one 2 MiB step apart.
        pdpt = [line for line in text.splitlines() if line.startswith("# pdpt ")]
        return "\n".join(pdpt + [f"# base {base:#x}"]
                         + pmd_runs(parse_page_directory(text))) + "\n"
    keep = [line for line in lines
            if (int(line.split(":")[0], 16) - base) // 4 + 3 >= end >> PGDIR_SHIFT]
    return "\n".join([f"# base {base:#x}"] + keep) + "\n"


def _oracle(text, sections):
    """The oracle's notes without the boot's temporary and cache paths."""
    text = re.sub(r"/tmp/mmemu-oracle-[^/\s]+/", "<tmp>/", text)
    return re.sub(r"-kernel \S*/(vmlinuz-\S+)", r"-kernel \1", text)


_TRIM = {
    "dmesg": _memory_log, "slabinfo": _slabinfo, "vmallocinfo": _head,
    "kcore-header": _kcore_header, "monitor:info mem": _info_mem,
    "monitor:page directory": _page_directory, "oracle": _oracle,
}
