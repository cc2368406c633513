"""The oracle (mmemu/oracle/): parsers and comparison on stored real-kernel captures,
the capture trimming, the initramfs writer, the boot parameters a config
implies, the reference pin, the private apt setup and the errors for what is
missing.  No QEMU needed; the real boot is tests/test_oracle_boot.py, and
mmemu against every stored capture is tests/test_oracle_fixtures.py.

The fixtures in tests/fixtures/oracle/<config>/ were made with
``tools/oracle.py --update-fixtures`` on the pinned reference kernel
(mmemu/oracle/reference.py: linux-image-6.1.0-50-686 6.1.176-1).
"""
import copy
import gzip
import io
import stat
import tarfile
from pathlib import Path

import pytest

from mmemu.errors import UsageError
from mmemu.oracle import OracleError, capture as K, compare as C, fetch, initramfs
from mmemu.oracle import parse as P, qemu, reference

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"


@pytest.fixture(scope="module")
def sections_1g():
    return K.load_capture(FIXTURES / "qemu-pc-1g")


@pytest.fixture(scope="module")
def real_1g(sections_1g):
    return P.real_report(sections_1g)


@pytest.fixture(scope="module")
def real_128m():
    return P.real_report(K.load_capture(FIXTURES / "qemu-pc-128m"))


def _write_config(tmp_path, body, name="t"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    return path


# ---------------------------------------------------------------------------
# Captures: sections, fixtures

def test_split_sections_reads_marked_blocks():
    text = ("kernel noise\n@@ORACLE-BEGIN a@@\nline 1\nline 2\n\n@@ORACLE-END a@@\n"
            "@@ORACLE-BEGIN b@@\nno newline@@ORACLE-END b@@\n")
    assert P.split_sections(text) == {"a": "line 1\nline 2\n", "b": "no newline\n"}


def test_split_sections_ignores_unterminated_block():
    assert P.split_sections("@@ORACLE-BEGIN a@@\nhalf\n") == {}


def test_every_stored_capture_has_every_section():
    folders = sorted(p for p in FIXTURES.iterdir() if p.is_dir())
    assert len(folders) >= 16
    for folder in folders:
        sections = K.load_capture(folder)
        for name, _ in initramfs.CAPTURES:
            assert name in sections, (folder.name, name)
        for name in ("monitor:info mem", "monitor:page directory", "oracle"):
            assert name in sections, (folder.name, name)
        flavour = "686-pae" if "pae" in folder.name else "686"
        assert f"Debian linux-image-6.1.0-50-{flavour} 6.1.176-1" in sections["oracle"]


def test_stored_captures_are_small():
    for folder in (p for p in FIXTURES.iterdir() if p.is_dir()):
        size = sum(f.stat().st_size for f in folder.iterdir())
        assert size < 40_000, (folder.name, size)


def test_trim_keeps_what_the_parsers_read(sections_1g):
    # Trimming a trimmed capture changes nothing, and the report is the same.
    again = K.trim(sections_1g)
    assert {n: t.rstrip("\n") for n, t in again.items()} == \
        {n: t.rstrip("\n") for n, t in sections_1g.items()}
    assert P.real_report(again) == P.real_report(sections_1g)


def test_trim_memory_log_drops_timestamps_and_other_lines():
    text = ("[    0.000000] BIOS-e820: [mem 0x0-0x9fbff] usable\n"
            "[    0.100000] Spectre V2 : Mitigation: Retpolines\n"
            "[    0.200000] Memory: 1K/2K available (...)\n")
    assert K.trim({"dmesg": text})["dmesg"] == ("BIOS-e820: [mem 0x0-0x9fbff] usable\n"
                                                "Memory: 1K/2K available (...)\n")


def test_save_fixture_round_trip(tmp_path, sections_1g):
    folder = K.save_fixture(sections_1g, tmp_path / "fx")
    assert (folder / "monitor-info-mem.txt").is_file()
    assert P.real_report(K.load_capture(folder)) == P.real_report(sections_1g)


def test_load_capture_reads_a_transcript(tmp_path):
    path = tmp_path / "cap.txt"
    path.write_text("noise\n@@ORACLE-BEGIN uname@@\n6.1.0-50-686 #1\n@@ORACLE-END uname@@\n")
    assert K.load_capture(path) == {"uname": "6.1.0-50-686 #1\n"}


# ---------------------------------------------------------------------------
# Parsers against DESIGN.md's reference numbers

def test_parse_zone_ranges_1g_matches_reference(real_1g):
    assert real_1g.zone_ranges == [
        "  DMA      [mem 0x0000000000001000-0x0000000000ffffff]",
        "  Normal   [mem 0x0000000001000000-0x0000000036bfdfff]",
        "  HighMem  [mem 0x0000000036bfe000-0x000000003ffdffff]"]
    assert real_1g.movable_start == []
    assert real_1g.node_ranges == [
        "  node   0: [mem 0x0000000000001000-0x000000000009efff]",
        "  node   0: [mem 0x0000000000100000-0x000000003ffdffff]"]


def test_parse_zone_ranges_128m_has_empty_highmem(real_128m):
    assert real_128m.zone_ranges[2] == "  HighMem  empty"


def test_parse_memory_line_1g(real_1g):
    mem = real_1g.memory
    assert (mem.available, mem.total, mem.reserved, mem.highmem) == (1019912, 1048056,
                                                                      28144, 151432)
    assert mem.text.startswith("Memory: 1019912K/1048056K available (9327K kernel code")


def test_parse_memory_line_missing_raises():
    with pytest.raises(P.CaptureError, match="Memory:"):
        P.parse_memory_line("[    0.1] nothing here\n")


@pytest.mark.parametrize("name,spanned,present,managed", [
    ("DMA", 4095, 3998, 3840), ("Normal", 220158, 220158, 213777),
    ("HighMem", 37858, 37858, 37858), ("Movable", 0, 0, 0)])
def test_parse_zoneinfo_1g_matches_reference(real_1g, name, spanned, present, managed):
    z = real_1g.zone(name)
    assert (z.spanned, z.present, z.managed) == (spanned, present, managed)


def test_parse_zoneinfo_watermarks_match_reference(real_1g):
    # DESIGN.md: DMA 190/237/284 (0, 833, 981, 981); Normal 10595/13243/15891;
    # HighMem 36/506/976; empty Movable 32/32/32; as booted.
    dma, normal, high, movable = (real_1g.zone(n)
                                  for n in ("DMA", "Normal", "HighMem", "Movable"))
    assert (dma.min, dma.low, dma.high, dma.protection) == (190, 237, 284, (0, 833, 981, 981))
    assert (normal.min, normal.low, normal.high) == (10595, 13243, 15891)
    assert normal.protection == (0, 0, 1183, 1183)
    assert (high.min, high.low, high.high) == (36, 506, 976)
    assert (movable.min, movable.low, movable.high) == (32, 32, 32)
    assert real_1g.min_free_kbytes == 43144
    assert real_1g.lowmem_reserve_ratio == (256, 32, 0, 0)
    assert real_1g.watermark_scale_factor == 10


def test_parse_zoneinfo_pagesets_and_threshold(real_1g):
    dma, normal, movable = real_1g.zone("DMA"), real_1g.zone("Normal"), real_1g.zone("Movable")
    assert (dma.pcp_high, dma.pcp_batch, dma.stat_threshold, dma.start_pfn) == (237, 1, 2, 1)
    assert (normal.pcp_high, normal.pcp_batch, normal.stat_threshold) == (13243, 63, 8)
    assert movable.pcp_high is None and movable.start_pfn is None      # no pagesets


def test_parse_slabinfo_kmalloc_geometry_matches_reference(real_1g):
    want = {"kmalloc-8": (8, 512, 1), "kmalloc-16": (16, 256, 1), "kmalloc-32": (32, 128, 1),
            "kmalloc-64": (64, 64, 1), "kmalloc-96": (96, 42, 1), "kmalloc-128": (128, 32, 1),
            "kmalloc-192": (192, 21, 1), "kmalloc-256": (256, 16, 1),
            "kmalloc-512": (512, 8, 1), "kmalloc-1k": (1024, 8, 2),
            "kmalloc-2k": (2048, 8, 4), "kmalloc-4k": (4096, 8, 8), "kmalloc-8k": (8192, 4, 8),
            "kmem_cache": (160, 25, 1), "kmem_cache_node": (32, 128, 1)}
    got = {n: (g.objsize, g.objperslab, g.pagesperslab) for n, g in real_1g.slabs.items()
           if n in want}
    assert got == want


def test_real_layout_1g_matches_reference(real_1g):
    assert real_1g.layout == P.LayoutBounds(0xC0000000, 0xF6BFE000, 0xF73FE000, 0xFEBFE000,
                                            0xFEC00000)
    assert all(ok for _, ok, _ in real_1g.layout_checks), real_1g.layout_checks
    assert len(real_1g.layout_checks) == 4


def test_real_layout_128m_vmalloc_start_matches_reference(real_128m):
    assert real_128m.layout.vmalloc_start == 0xC87E0000
    assert real_128m.layout.vmalloc_end == 0xFEBFE000


def test_real_layout_without_monitor_falls_back_to_definition(sections_1g):
    sections = dict(sections_1g)
    del sections["monitor:page directory"], sections["monitor:info mem"]
    bounds, checks = P.real_layout(sections, P.parse_low_ram(sections["dmesg"]))
    assert bounds.pkmap_base == bounds.vmalloc_end + 2 * 4096 == 0xFEC00000
    assert any("monitor not captured" in detail for _, _, detail in checks)


def test_parse_kcore_header_segments(sections_1g):
    segments = P.parse_kcore_header(sections_1g["kcore-header"])
    assert (0xF73FE000, 0x7800000, 0xFFFFFFFF) in segments
    assert (0xC0000000, 0x36BFE000, 0) in segments


def test_parse_kcore_header_rejects_garbage():
    with pytest.raises(P.CaptureError, match="ELF32"):
        P.parse_kcore_header("00 01 02 03 " * 16)


def test_parse_info_mem_and_direct_map_end():
    text = ("00000000bfc02000-00000000bfc03000 0000000000001000 urw\n"
            "00000000c0000000-00000000c1000000 0000000001000000 -rw\n"
            "00000000c1000000-00000000c8000000 0000000007000000 -r-\n"
            "00000000c8800000-00000000c8801000 0000000000001000 -rw\n")
    ranges = P.parse_info_mem(text)
    assert ranges[1] == (0xC0000000, 0xC1000000, "-rw")
    assert P.direct_map_end(ranges) == 0xC8000000


def test_parse_page_directory_trimmed_keeps_indexes():
    text = ("# base 0x2da2000\n"
            "0000000002da2fe0: 0x00000000 0x00000000 0x00000000 0x01ef1067\n")
    pgd = P.parse_page_directory(text)
    assert pgd[1019] == 0x01EF1067 and 1015 not in pgd
    assert P.first_table_at_or_above(pgd, 0xFEBFE000) == 0xFEC00000


def test_first_table_at_or_above():
    pgd = [0] * 1024
    pgd[1019] = 0x01EF1067
    pgd[1022] = 0x01E77067
    assert P.first_table_at_or_above(pgd, 0xFEBFE000) == 0xFEC00000
    assert P.first_table_at_or_above(pgd, 0xFEC00001) == 0xFF800000


def test_parse_memblock_pairs_requests_with_placements(real_1g):
    ops = real_1g.memblock
    mem_map = next(o for o in ops if o.caller == "memmap_alloc")
    assert (mem_map.op, mem_map.size, mem_map.align) == ("alloc", 10485760, 0x40)
    assert (mem_map.base, mem_map.end) == (0x360F9000, 0x36AF9000)
    # 262144 pfns (max_pfn rounded up to MAX_ORDER_NR_PAGES) of 40-byte struct pages
    assert mem_map.size == 262144 * 40
    image = [o for o in ops if o.op == "reserved"][2]
    assert (image.base, image.end) == (0x01000000, 0x01EF6000)      # _text at 16 MiB
    empty = [o for o in ops if o.op == "free" and o.end == o.base]
    assert len(empty) == 1                       # the per-cpu chunk's unused tail


def test_parse_memblock_line_forms():
    lines = ["memblock_alloc_try_nid: 4 bytes align=0x40 nid=0 from=0x00000000 "
             "max_addr=0x00000000 setup_usemap+0x4a/0x70",
             "memblock_reserve: [0x360f8fc0-0x360f8fc3] memblock_alloc_range_nid+0x95/0x101",
             "memblock_phys_free: [0x36400000-0x367fffff] init_mem_mapping+0x138/0x1da",
             " reserved[0x1]\t[0x0009f000-0x000fffff], 0x00061000 bytes flags: 0x0",
             "memblock_reserve: [0x000f5ba0-0x000f5baf] smp_scan_config+0x9b/0xeb"]
    ops = P.parse_memblock(lines)
    assert [o.text() for o in ops] == [
        "alloc 4 bytes align=0x40 setup_usemap: [0x360f8fc0-0x360f8fc3]",
        "free [0x36400000-0x367fffff] init_mem_mapping",
        "reserved [0x0009f000-0x000fffff] (MEMBLOCK configuration)",
        "reserve [0x000f5ba0-0x000f5baf] smp_scan_config"]


def test_parse_vmallocinfo_real_addresses(sections_1g):
    areas = P.parse_vmallocinfo(sections_1g["vmallocinfo"])
    assert areas[0][0] == 0xF73FE000           # the first area sits at VMALLOC_START
    assert all(a[0] is not None for a in areas)    # kptr_restrict=1: not hashed
    assert {a[4] for a in areas} <= {"ioremap", "vmalloc", "vmap", "user", "vpages", ""}


def test_parse_vmallocinfo_hashed_addresses():
    line = "0x(ptrval)-0x(ptrval)    8192 hpet_enable+0xc5/0x3da phys=0xfed00000 ioremap\n"
    assert P.parse_vmallocinfo(line) == [(None, None, 8192, "hpet_enable+0xc5/0x3da",
                                          "ioremap")]


def test_parse_buddyinfo_and_meminfo(real_1g):
    assert set(real_1g.buddyinfo) == {(0, "DMA"), (0, "Normal"), (0, "HighMem")}
    assert all(len(v) == 11 for v in real_1g.buddyinfo.values())
    assert real_1g.meminfo["VmallocTotal"] == 122880
    assert real_1g.meminfo["HighTotal"] == 151432
    assert list(real_1g.meminfo)[-2:] == ["DirectMap4k", "DirectMap4M"]


def test_parse_iomem_kernel_code(sections_1g):
    rows = P.parse_iomem(sections_1g["iomem"])
    assert (1, 0x01000000, 0x0191BC7F, "Kernel code") in rows
    assert rows[0] == (0, 0, 0xFFF, "Reserved")


def test_report_names_kernel_and_package(real_1g):
    assert real_1g.kernel.startswith("6.1.0-50-686 #1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1")
    assert real_1g.package == "Debian linux-image-6.1.0-50-686 6.1.176-1"
    assert not real_1g.kaslr


# ---------------------------------------------------------------------------
# The comparison

def test_compare_identical_reports_has_no_failures(real_1g):
    result = C.compare(real_1g, copy.deepcopy(real_1g))
    assert not result.failures and not result.doubtful
    assert result.summary() == f"{len(result.facts)}/{len(result.facts)} facts match"
    assert len(result.facts) > 150
    assert result.exact == result.facts                 # nokaslr: every fact exact


def test_compare_counts_each_fact_once(real_1g):
    result = C.compare(real_1g, copy.deepcopy(real_1g))
    slab = [r for r in result.facts if r.section.startswith("slab geometry")]
    assert len(slab) == 13 + 2                   # one per kmalloc size, kmem_cache(_node)
    keys = [(r.section, r.field) for r in result.rows]
    assert len(keys) == len(set(keys))


def test_compare_managed_and_watermarks_are_exact(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zone("Normal").managed -= 1
    mine.zone("Normal").min = 1
    mine.min_free_kbytes = 3727
    failed = {(r.section, r.field) for r in C.compare(real_1g, mine).failures}
    assert failed == {("zone Normal", "managed"), ("zone Normal", "min"),
                      ("sysctls", "vm.min_free_kbytes")}


def test_compare_log_lines_one_by_one(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.log = [line for line in mine.log if not line.startswith("Built 1 zonelists")]
    mine.log = [line.replace("Normal   [mem 0x0000000001000000-0x0000000036bfdfff]",
                             "Normal   [mem 0x0000000001000000-0x0000000037ffffff]")
                for line in mine.log]
    failed = {(r.section, r.field, r.mmemu) for r in C.compare(real_1g, mine).failures}
    assert ("boot log: zonelists", "Built # zonelists, mobility", "(missing)") in failed
    assert ("boot log: free_area_init", "Normal [mem #-#]",
            "  Normal   [mem 0x0000000001000000-0x0000000037ffffff]") in failed
    assert len(failed) == 2


def test_compare_memblock_one_by_one(real_1g):
    mine = copy.deepcopy(real_1g)
    ops = mine.memblock
    i = next(i for i, o in enumerate(ops) if o.caller == "setup_usemap")
    ops[i] = P.MemblockOp("alloc", ops[i].base - 64, ops[i].end - 64, "setup_usemap", 4, 64)
    failed = list(C.compare(real_1g, mine).failures)
    assert [r.section for r in failed] == ["memblock"]
    assert "setup_usemap" in failed[0].linux


def test_compare_memblock_leaves_out_firmware_outside_ram(real_1g):
    rows = C.memblock_rows(real_1g, real_1g)
    assert not any("smp_scan_config" in r.linux or "acpi_reserve" in r.linux for r in rows)
    assert any("memmap_alloc" in r.linux for r in rows)


def test_compare_meminfo_keys_in_one_row(real_1g):
    mine = copy.deepcopy(real_1g)
    for key in ("HardwareCorrupted", "DirectMap4k"):
        del mine.meminfo[key]
    failed = [(r.field, r.note) for r in C.compare(real_1g, mine).failures]
    assert ("DirectMap4k", "") in failed
    assert ("keys, in order", "mmemu lacks HardwareCorrupted, DirectMap4k") in failed
    assert len(failed) == 2


def test_compare_flags_layout_slab_and_zone(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zone("HighMem").present -= 1
    mine.layout = P.LayoutBounds(0xC0000000, 0xF6BFE000, 0xF73FE000, 0xFEBFE000, 0xFE800000)
    del mine.slabs["kmalloc-96"]
    mine.slabs["kmalloc-cg-64"] = P.SlabGeometry("kmalloc-cg-64", 64, 63, 1)
    failed = {(r.section, r.field.split()[0]) for r in C.compare(real_1g, mine).failures}
    assert failed == {("zone HighMem", "present"), ("layout", "PKMAP_BASE"),
                      ("slab geometry (objsize objperslab pagesperslab)", "kmalloc-64")}


def test_compare_slab_variant_that_differs_shows_both(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.slabs["dma-kmalloc-64"] = P.SlabGeometry("dma-kmalloc-64", 64, 32, 1)
    row = next(r for r in C.compare(real_1g, mine).failures)
    assert row.mmemu == "64 32 1 | 64 64 1"


def test_compare_zone_missing_from_mmemu(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zones = [z for z in mine.zones if z.name != "Movable"]
    failed = [(r.section, r.field) for r in C.compare(real_1g, mine).failures]
    assert failed == [("zone Movable", "listed in zoneinfo")]


def test_compare_kaslr_boot_allows_the_spread(real_1g):
    linux = copy.deepcopy(real_1g)
    linux.cmdline = "console=ttyS0 memblock=debug quiet panic=-1"
    mine = copy.deepcopy(real_1g)
    mine.zone("Normal").managed += C.KASLR_MANAGED_SPREAD
    result = C.compare(linux, mine)
    row = next(r for r in result.rows if (r.section, r.field) == ("zone Normal", "managed"))
    assert row.kind == C.SPREAD and row.same
    assert not any(r.section == "memblock" for r in result.rows)
    mine.zone("Normal").managed += 1
    assert ("zone Normal", "managed") in {(r.section, r.field)
                                          for r in C.compare(linux, mine).failures}


def test_format_text_and_markdown(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zone("DMA").spanned = 4096
    result = C.compare(real_1g, mine)
    text = C.format_text(result, ["header"])
    assert text.startswith("header\n")
    assert "  !! spanned" in text
    assert "differing: zone DMA: spanned" in text.splitlines()[-1]
    md = C.format_markdown(result, "qemu-pc-1g")
    assert md.startswith("### qemu-pc-1g")
    assert "| !! | zone DMA: spanned | 4095 | 4096 |" in md
    assert "| ok | zone DMA: present | 3998 | = |" in md


def test_format_real_lists_the_numbers(real_1g):
    text = C.format_real(real_1g)
    assert "Normal     220158   220158   213777" in text
    assert "vmalloc 0xf73fe000-0xfebfe000" in text
    assert "alloc 10485760 bytes align=0x40 memmap_alloc: [0x360f9000-0x36af8fff]" in text


# ---------------------------------------------------------------------------
# initramfs

def test_newc_round_trip_and_alignment():
    cpio = initramfs.CpioWriter()
    cpio.add_dir("bin")
    cpio.add_file("bin/x", b"abc", 0o755)
    cpio.add_symlink("bin/sh", "x")
    cpio.add_chardev("dev/console", 5, 1)
    data = cpio.getvalue()
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert data.rstrip(b"\0").endswith(b"TRAILER!!!")
    entries = initramfs.read_newc(data)
    assert [(n, stat.S_IFMT(m)) for n, m, _ in entries] == [
        ("bin", stat.S_IFDIR), ("bin/x", stat.S_IFREG), ("bin/sh", stat.S_IFLNK),
        ("dev/console", stat.S_IFCHR)]
    assert entries[1][2] == b"abc" and entries[2][2] == b"x"


def test_newc_header_fields():
    cpio = initramfs.CpioWriter()
    cpio.add_chardev("dev/console", 5, 1)
    header = cpio.getvalue()[:110]
    fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    assert fields[1] == stat.S_IFCHR | 0o600
    assert fields[9:12] == [5, 1, len("dev/console") + 1]


def test_build_initramfs_holds_init_busybox_console():
    image = initramfs.build_initramfs(b"\x7fELF-busybox", min_free_kbytes=2830)
    entries = {n: (m, d) for n, m, d in initramfs.read_newc(gzip.decompress(image))}
    assert entries["bin/busybox"] == (stat.S_IFREG | 0o755, b"\x7fELF-busybox")
    assert stat.S_ISCHR(entries["dev/console"][0])
    init = entries["init"][1].decode()
    assert init.startswith("#!/bin/busybox sh\n")
    assert init.index("echo 2830 > /proc/sys/vm/min_free_kbytes") < init.index("sec zoneinfo")
    assert init.rstrip().endswith("poweroff -f")


def test_init_script_reads_zoneinfo_before_lowmem_reserve_ratio():
    # Reading vm.lowmem_reserve_ratio reruns setup_per_zone_lowmem_reserve()
    # in 6.1, so the as-booted zoneinfo must be printed first; and no sysctl
    # is written when the config sets none.
    script = initramfs.init_script()
    assert script.index("sec zoneinfo") < script.index("lowmem_reserve_ratio")
    assert "> /proc/sys/vm/" not in script
    assert script.index(initramfs.MARK_MONITOR) > script.index("sec dmesg")


def test_padded_initramfs_has_the_config_size():
    params = qemu.BootParams(ram=1 << 30, cmdline="x", initrd=300_000)
    image = qemu.padded_initramfs(b"\x7fELF" + bytes(1000), params)
    assert len(image) == 300_000 and image.endswith(bytes(1000))
    with pytest.raises(OracleError, match="larger kernel.initrd"):
        qemu.padded_initramfs(bytes(1000), qemu.BootParams(ram=1 << 30, cmdline="x",
                                                           initrd=100))


# ---------------------------------------------------------------------------
# Boot parameters and refusals

def test_boot_params_qemu_pc_1g():
    from mmemu.config import load_config
    params = qemu.boot_params(load_config("qemu-pc-1g"))
    assert params.ram == 1 << 30 and params.qemu_m == "1024M"
    assert params.cmdline == "console=ttyS0 nokaslr memblock=debug quiet panic=-1"
    assert params.min_free_kbytes is None
    assert params.initrd == 1044 * 1024 and params.flavour == "686"
    assert not params.kaslr
    assert qemu.boot_params(load_config("qemu-pc-1g"), kaslr=True).kaslr


@pytest.mark.parametrize("name,option", [("qemu-pc-1g-vmalloc256", "vmalloc=256M"),
                                         ("qemu-pc-1g-highmem512", "highmem=512M")])
def test_boot_params_options(name, option):
    from mmemu.config import load_config
    params = qemu.boot_params(load_config(name))
    assert params.cmdline.split()[-1] == option


def test_boot_params_movablecore_and_sysctl(tmp_path):
    from mmemu.config import load_config
    path = _write_config(tmp_path, "memory: {size: 1G}\nmovablecore: 64M\n"
                                   "min_free_kbytes: 4096\n")
    params = qemu.boot_params(load_config(path))
    assert params.cmdline.endswith("movablecore=64M")
    assert params.min_free_kbytes == 4096


def test_boot_params_refuses_other_dma_limit(tmp_path):
    from mmemu.config import load_config
    path = _write_config(tmp_path, "memory: {size: 1G}\nzones: {dma_limit: 32M}\n")
    with pytest.raises(UsageError, match="ZONE_DMA always ends at 16M"):
        qemu.boot_params(load_config(path))


def test_qemu_command_line():
    params = qemu.BootParams(ram=128 << 20, cmdline="console=ttyS0")
    cmd = qemu.qemu_command("vmlinuz", "initrd", params, "/tmp/s")
    assert cmd[:7] == ["qemu-system-i386", "-M", "pc", "-cpu", "qemu32", "-m", "128M"]
    assert cmd[cmd.index("-append") + 1] == "console=ttyS0"
    assert "-nographic" in cmd and "-no-reboot" in cmd


def test_qemu_command_line_pae_flavour():
    params = qemu.BootParams(ram=4 << 30, cmdline="console=ttyS0", flavour="686-pae")
    cmd = qemu.qemu_command("vmlinuz", "initrd", params, "/tmp/s")
    assert cmd[:5] == ["qemu-system-x86_64", "-M", "pc", "-cpu", "qemu32,+pae,+nx,+pse36"]


def test_find_qemu_looks_in_libexec(monkeypatch, tmp_path):
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    binary = tmp_path / "qemu-system-i386"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert qemu.find_qemu(dirs=(str(tmp_path),)) == str(binary)
    with pytest.raises(OracleError, match="qemu-system-x86_64 is not installed"):
        qemu.find_qemu("686-pae", dirs=(str(tmp_path),))


def test_oracle_refuses_config_that_is_not_qemu_pc(tmp_path):
    from mmemu.oracle.run import run_oracle
    path = _write_config(tmp_path, "memory:\n  ram: [{start: 0, end: 0x9fc00}, "
                                   "{start: 1M, end: 512M}]\n")
    with pytest.raises(UsageError, match="not what QEMU's pc machine builds: .*e820"):
        run_oracle(path, capture=FIXTURES / "qemu-pc-1g")


def test_oracle_refuses_capture_of_another_boot():
    from mmemu.oracle.run import capture_real, real_report_checked
    cfg, params, sections, _ = capture_real("qemu-pc-1g-vmalloc256",
                                            capture=FIXTURES / "qemu-pc-1g")
    with pytest.raises(OracleError, match="vmalloc=256M"):
        real_report_checked(sections, params)


def test_oracle_main_real_only_from_capture(capsys):
    from mmemu.oracle.command import oracle_main
    status = oracle_main(["--config", "qemu-pc-128m", "--real-only", "--capture",
                          str(FIXTURES / "qemu-pc-128m")])
    out = capsys.readouterr().out
    assert status == 0
    assert "HighMem  empty" in out and "vmalloc 0xc87e0000-0xfebfe000" in out


def test_oracle_main_reports_missing_capture(capsys, tmp_path):
    from mmemu.oracle.command import oracle_main
    status = oracle_main(["--real-only", "--capture", str(tmp_path / "nope.txt")])
    assert status == OracleError.exit_status
    assert "nope.txt" in capsys.readouterr().err


def test_missing_qemu_says_how_to_install(monkeypatch):
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    with pytest.raises(OracleError, match="apt-get install qemu-system-x86"):
        qemu.find_qemu(dirs=())


def test_oracle_main_without_qemu_exits_cleanly(monkeypatch, capsys):
    from mmemu.oracle.command import oracle_main
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    monkeypatch.setattr(qemu, "QEMU_DIRS", ())
    monkeypatch.setattr(qemu.find_qemu, "__defaults__", ("686", ()))
    status = oracle_main(["--config", "qemu-pc-1g", "--real-only"])
    err = capsys.readouterr().err
    assert status == OracleError.exit_status
    assert err.startswith("mmemu oracle: qemu-system-i386 is not installed")
    assert "Traceback" not in err


def test_boot_reports_last_console_lines():
    text = qemu._incomplete("line a\nKernel panic - not syncing: VFS\n", 180, 3.0)
    assert "stopped before finishing" in text and "Kernel panic" in text


# ---------------------------------------------------------------------------
# fetch: sources, .deb unpacking, errors

def test_host_mirrors_reads_enabled_sources(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
        "deb-src http://m.example/debian bookworm main\n")
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: x\nEnabled: no\n")
    (parts / "other.sources.disabled").write_text("Types: deb\nURIs: http://x/debian\n")
    assert fetch.host_mirrors(tmp_path) == [
        ("http://m.example/debian", "/k.gpg"),
        ("http://deb.debian.org/debian-security",
         "/usr/share/keyrings/debian-archive-keyring.gpg")]


def test_private_sources_use_bookworm_suites_on_host_mirrors(tmp_path):
    (tmp_path / "sources.list").write_text(
        "deb http://mirror.example/debian trixie main\n"
        "deb http://mirror.example/debian-security trixie-security main\n"
        "deb https://packages.example.com/apt stable main\n")
    text = fetch.private_sources(tmp_path)
    assert "URIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates" in text
    assert ("URIs: http://mirror.example/debian-security\nSuites: bookworm-security"
            in text)
    assert "packages.example.com" not in text
    assert text.count("Architectures: i386") == 2


def test_private_sources_default_mirror(tmp_path):
    assert "URIs: http://deb.debian.org/debian\n" in fetch.private_sources(tmp_path)


def _make_deb(path, files):
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", b""),
               ("data.tar.xz", tar_bytes.getvalue())]
    out = b"!<arch>\n"
    for name, data in members:
        out += (f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n").encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(out)


def test_extract_deb_keeps_only_wanted_files(tmp_path):
    deb = tmp_path / "k.deb"
    _make_deb(deb, {"./boot/vmlinuz-6.1.0-50-686": b"kernel", "./lib/modules/x.ko": b"m",
                    "./boot/config-6.1.0-50-686": b"CONFIG_X=y\n"})
    assert set(fetch.ar_members(deb.read_bytes())) == {"debian-binary", "control.tar.xz",
                                                       "data.tar.xz"}
    got = fetch.extract_deb(deb, tmp_path / "out", (r"\./boot/vmlinuz-.*", r"\./boot/config-.*"))
    assert sorted(p.name for p in got) == ["config-6.1.0-50-686", "vmlinuz-6.1.0-50-686"]
    assert (tmp_path / "out" / "vmlinuz-6.1.0-50-686").read_bytes() == b"kernel"


def test_extract_deb_rejects_non_deb(tmp_path):
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"not an archive")
    with pytest.raises(OracleError, match="not a .deb"):
        fetch.extract_deb(bad, tmp_path, ())


def test_fetch_without_apt_names_the_alternative(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    with pytest.raises(OracleError, match="apt-get is not installed.*--kernel VMLINUZ"):
        fetch.fetch_kernel(cache=tmp_path)


def test_fetch_kernel_uses_cache(tmp_path):
    folder = tmp_path / "kernel" / "linux-image-6.1.0-50-686_6.1.176-1"
    folder.mkdir(parents=True)
    (folder / "vmlinuz-6.1.0-50-686").write_bytes(b"k")
    (folder / "kernel.json").write_text(
        '{"package": "linux-image-6.1.0-50-686", "version": "6.1.176-1", '
        '"release": "6.1.0-50-686", "vmlinuz": "vmlinuz-6.1.0-50-686", "config": null}')
    ref = fetch.fetch_kernel(cache=tmp_path)
    assert ref.vmlinuz == folder / "vmlinuz-6.1.0-50-686"
    assert ref.version == "linux-image-6.1.0-50-686 6.1.176-1"


def test_cache_dir_honours_mmemu_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MMEMU_CACHE", str(tmp_path))
    assert fetch.cache_dir() == tmp_path / "oracle"


def test_user_kernel_must_be_bzimage(tmp_path):
    fake = tmp_path / "vmlinuz"
    fake.write_bytes(b"\0" * 0x300)
    with pytest.raises(OracleError, match="not an x86 bzImage"):
        fetch.user_kernel(fake)
    with pytest.raises(OracleError, match="no such file"):
        fetch.user_kernel(tmp_path / "missing")


def test_check_busybox_must_be_i386_elf(tmp_path):
    bad = tmp_path / "busybox"
    bad.write_bytes(b"\x7fELF\x02" + b"\0" * 20)
    with pytest.raises(OracleError, match="i386 ELF"):
        fetch.check_busybox(bad)
    good = tmp_path / "bb32"
    good.write_bytes(b"\x7fELF\x01\x01\x01" + b"\0" * 11 + b"\x03\x00" + b"\0" * 10)
    assert fetch.check_busybox(good) == good


# ---------------------------------------------------------------------------
# The reference pin and flavours

def test_reference_is_pinned_in_one_place():
    flavour = reference.FLAVOURS["686"]
    assert reference.pinned_package(flavour) == ("linux-image-6.1.0-50-686", "6.1.176-1")
    assert flavour.release() == "6.1.0-50-686"
    pae = reference.FLAVOURS["686-pae"]
    assert pae.package() == "linux-image-6.1.0-50-686-pae"
    assert (pae.qemu, pae.cpu) == ("qemu-system-x86_64", "qemu32,+pae,+nx,+pse36")


def test_flavour_of_config():
    from types import SimpleNamespace
    assert reference.flavour_of(SimpleNamespace(pae=False)).name == "686"
    assert reference.flavour_of(SimpleNamespace(pae=True)).name == "686-pae"
