"""The oracle (mmemu/oracle/): parsers and comparison on stored real-kernel captures,
the initramfs writer, the boot parameters a config implies, the private apt
setup and the errors for what is missing.  No QEMU needed; the real boot is
tests/test_oracle_boot.py.

The fixtures in tests/fixtures/oracle/ were made with
``tools/oracle.py --config qemu-pc-1g --real-only --save-capture ...`` (and
qemu-pc-128m) on Debian's linux-image-6.1.0-50-686 6.1.176-1.
"""
import copy
import gzip
import io
import stat
import tarfile
from pathlib import Path

import pytest

from mmemu.errors import UsageError
from mmemu.oracle import OracleError, compare as C, fetch, initramfs, parse as P, qemu

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"


@pytest.fixture(scope="module")
def text_1g():
    return (FIXTURES / "qemu-pc-1g.txt").read_text()


@pytest.fixture(scope="module")
def real_1g(text_1g):
    return P.real_report(text_1g)


@pytest.fixture(scope="module")
def real_128m():
    return P.real_report((FIXTURES / "qemu-pc-128m.txt").read_text())


def _write_config(tmp_path, body, name="t"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    return path


# ---------------------------------------------------------------------------
# Captures: sections

def test_split_sections_reads_marked_blocks():
    text = ("kernel noise\n@@ORACLE-BEGIN a@@\nline 1\nline 2\n\n@@ORACLE-END a@@\n"
            "@@ORACLE-BEGIN b@@\nno newline@@ORACLE-END b@@\n")
    assert P.split_sections(text) == {"a": "line 1\nline 2\n", "b": "no newline\n"}


def test_split_sections_ignores_unterminated_block():
    assert P.split_sections("@@ORACLE-BEGIN a@@\nhalf\n") == {}


def test_capture_has_every_section(text_1g):
    sections = P.split_sections(text_1g)
    for name, _ in initramfs.BOOT_CAPTURES + initramfs.FINAL_CAPTURES:
        assert name in sections, name
    for name in ("monitor:info registers", "monitor:info mem", "monitor:page directory"):
        assert name in sections, name


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


def test_parse_zoneinfo_boot_watermarks_match_reference(real_1g):
    # DESIGN.md: DMA 190/237/284 (0, 833, 981, 981); Normal 10595/13243/15891;
    # HighMem 36/506/976; empty Movable 32/32/32.
    dma, normal, high, movable = (real_1g.zone(n, boot=True)
                                  for n in ("DMA", "Normal", "HighMem", "Movable"))
    assert (dma.min, dma.low, dma.high, dma.protection) == (190, 237, 284, (0, 833, 981, 981))
    assert (normal.min, normal.low, normal.high) == (10595, 13243, 15891)
    assert normal.protection == (0, 0, 1183, 1183)
    assert (high.min, high.low, high.high) == (36, 506, 976)
    assert (movable.min, movable.low, movable.high) == (32, 32, 32)
    assert real_1g.min_free_kbytes_boot == 43144
    assert real_1g.lowmem_reserve_ratio == (256, 32, 0, 0)
    assert real_1g.watermark_scale_factor == 10


def test_parse_slabinfo_kmalloc_geometry_matches_reference(real_1g):
    want = {"kmalloc-8": (8, 512, 1), "kmalloc-16": (16, 256, 1), "kmalloc-32": (32, 128, 1),
            "kmalloc-64": (64, 64, 1), "kmalloc-96": (96, 42, 1), "kmalloc-128": (128, 32, 1),
            "kmalloc-192": (192, 21, 1), "kmalloc-256": (256, 16, 1),
            "kmalloc-512": (512, 8, 1), "kmalloc-1k": (1024, 8, 2),
            "kmalloc-2k": (2048, 8, 4), "kmalloc-4k": (4096, 8, 8), "kmalloc-8k": (8192, 4, 8)}
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


def test_real_layout_without_monitor_falls_back_to_definition(text_1g):
    sections = P.split_sections(text_1g)
    del sections["monitor:page directory"], sections["monitor:info mem"]
    bounds, checks = P.real_layout(sections, P.parse_low_ram(sections["dmesg"]))
    assert bounds.pkmap_base == bounds.vmalloc_end + 2 * 4096 == 0xFEC00000
    assert any("monitor not captured" in detail for _, _, detail in checks)


def test_parse_kcore_header_segments(text_1g):
    segments = P.parse_kcore_header(P.split_sections(text_1g)["kcore-header"])
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


def test_first_table_at_or_above():
    pgd = [0] * 1024
    pgd[1019] = 0x01EF1067
    pgd[1022] = 0x01E77067
    assert P.first_table_at_or_above(pgd, 0xFEBFE000) == 0xFEC00000
    assert P.first_table_at_or_above(pgd, 0xFEC00001) == 0xFF800000


def test_parse_boot_frees_places_them_in_normal(real_1g):
    assert real_1g.boot_frees == [("initrd", 1044, "Normal"), ("initmem", 912, "Normal")]


def test_parse_vmallocinfo_real_addresses(text_1g):
    areas = P.parse_vmallocinfo(P.split_sections(text_1g)["vmallocinfo"])
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


def test_parse_iomem_kernel_code(text_1g):
    rows = P.parse_iomem(P.split_sections(text_1g)["iomem"])
    assert (1, 0x01000000, 0x0191BC7F, "Kernel code") in rows
    assert rows[0] == (0, 0, 0xFFF, "Reserved")


# ---------------------------------------------------------------------------
# mmemu's formulas on the real kernel's counts

def test_recompute_watermarks_reproduces_reference_boot():
    # The managed counts the 1 GiB kernel had when init_per_zone_wmark_min()
    # ran: the final 213777 less the initrd (261 pages) and init (228 pages).
    got = C.recompute_watermarks({"DMA": 3840, "Normal": 213288, "HighMem": 37858,
                                  "Movable": 0}, 43144, (256, 32, 0, 0), 10, True)
    assert got["DMA"] == (190, 237, 284, (0, 833, 981, 981))
    assert got["Normal"] == (10595, 13243, 15891, (0, 0, 1183, 1183))
    assert got["HighMem"][:3] == (36, 506, 976)
    assert got["Movable"][:3] == (32, 32, 32)


def test_recompute_watermarks_movable_below_highmem_is_lowmem_like():
    # 128 MiB: no HighMem range, so movable_zone is Normal and an empty
    # Movable zone gets 0/0/0 (the real kernel's zoneinfo shows it).
    got = C.recompute_watermarks({"DMA": 3840, "Normal": 24668}, 1339, (256, 32, 0, 0), 10,
                                 False)
    assert got["Movable"][:3] == (0, 0, 0)
    assert got["HighMem"][:3] == (32, 32, 32)


def test_boot_managed_subtracts_late_frees(real_1g):
    managed, note = C.boot_managed(real_1g)
    assert managed["Normal"] == 213777 - 1044 // 4 - 912 // 4
    assert "initrd 1044K from Normal" in note


@pytest.mark.parametrize("fixture", ["qemu-pc-1g.txt", "qemu-pc-128m.txt"])
def test_formula_rows_match_real_kernel(fixture):
    real = P.real_report((FIXTURES / fixture).read_text())
    rows = C._formula_rows(real)
    assert len(rows) == 16                       # 4 zones x 2 rows x (final, as booted)
    assert not [r for r in rows if r.failed], [r for r in rows if r.failed]


# ---------------------------------------------------------------------------
# The comparison

def test_compare_identical_reports_has_no_failures(real_1g):
    result = C.compare(real_1g, copy.deepcopy(real_1g))
    assert not result.failures and not result.doubtful
    assert result.summary().endswith("exact fields match")
    assert len(result.exact) > 50


def test_compare_managed_difference_is_derived_not_failure(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zone("Normal").managed -= 4000
    mine.zone("Normal").min = 1
    mine.min_free_kbytes = 3727
    result = C.compare(real_1g, mine)
    assert not result.failures
    marks = {(r.section, r.field): r.mark for r in result.rows}
    assert marks[("zone Normal", "managed")] == "~"
    assert marks[("zone Normal", "min")] == "~"
    row = next(r for r in result.rows if r.field == "vm.min_free_kbytes")
    assert "transparent hugepages" in row.note and "3727" in row.note


def test_compare_flags_zone_range_difference(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zone_ranges[1] = "  Normal   [mem 0x0000000001000000-0x0000000037ffffff]"
    result = C.compare(real_1g, mine)
    assert [(r.section, r.field) for r in result.failures] == [("Zone ranges", "Normal")]
    assert result.failures[0].mark == "!!"


def test_compare_flags_spacing_difference_in_ranges(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.node_ranges[0] = "  node 0: [mem 0x0000000000001000-0x000000000009efff]"
    result = C.compare(real_1g, mine)
    assert [r.field for r in result.failures] == ["node 0 #1"]


def test_compare_flags_spanned_layout_and_slab(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zone("HighMem").present -= 1
    mine.layout = P.LayoutBounds(0xC0000000, 0xF6BFE000, 0xF73FE000, 0xFEBFE000, 0xFE800000)
    del mine.slabs["kmalloc-96"]
    failed = {(r.section, r.field) for r in C.compare(real_1g, mine).failures}
    assert failed == {("zone HighMem", "present"), ("layout", "PKMAP_BASE"),
                      ("slab geometry (objsize objperslab pagesperslab)", "kmalloc-96")}


def test_compare_skips_kmalloc_variants_mmemu_lacks(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.slabs = {n: g for n, g in mine.slabs.items() if n.startswith("kmalloc-")
                  and not n.startswith(("kmalloc-cg-", "kmalloc-rcl-"))}
    result = C.compare(real_1g, mine)
    assert not result.failures
    assert not any(r.field.startswith("kmalloc-cg-") for r in result.rows)


def test_compare_zone_missing_from_mmemu(real_1g):
    mine = copy.deepcopy(real_1g)
    mine.zones = [z for z in mine.zones if z.name != "Movable"]
    failed = [(r.section, r.field) for r in C.compare(real_1g, mine).failures]
    assert failed == [("zone Movable", "listed in zoneinfo")]


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


def test_format_real_lists_the_numbers(real_1g):
    text = C.format_real(real_1g)
    assert "Normal     220158   220158   213777" in text
    assert "vmalloc 0xf73fe000-0xfebfe000" in text


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
    assert "v=2830; echo $v > /proc/sys/vm/min_free_kbytes" in init
    assert init.rstrip().endswith("poweroff -f")


def test_init_script_reads_zoneinfo_before_lowmem_reserve_ratio():
    # Reading vm.lowmem_reserve_ratio reruns setup_per_zone_lowmem_reserve()
    # in 6.1, so the as-booted zoneinfo must be printed first.
    script = initramfs.init_script()
    assert script.index("sec zoneinfo-boot") < script.index("lowmem_reserve_ratio")
    assert "v=$(cat /proc/sys/vm/min_free_kbytes)" in script
    assert script.index(initramfs.MARK_MONITOR) > script.index("sec dmesg")


# ---------------------------------------------------------------------------
# Boot parameters and refusals

def test_boot_params_qemu_pc_1g():
    from mmemu.config import load_config
    params = qemu.boot_params(load_config("qemu-pc-1g"))
    assert params.ram == 1 << 30 and params.qemu_m == "1024M"
    assert params.cmdline == "console=ttyS0 nokaslr quiet panic=-1"
    assert params.min_free_kbytes is None


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


def test_oracle_refuses_config_that_is_not_qemu_pc(tmp_path):
    from mmemu.oracle.command import run_oracle
    path = _write_config(tmp_path, "memory:\n  ram: [{start: 0, end: 0x9fc00}, "
                                   "{start: 1M, end: 512M}]\n")
    with pytest.raises(UsageError, match="not what QEMU's pc machine builds: .*e820"):
        run_oracle(path, capture=FIXTURES / "qemu-pc-1g.txt")


def test_oracle_refuses_capture_of_another_boot():
    from mmemu.oracle.command import capture_real, real_report_checked
    cfg, params, text, _ = capture_real("qemu-pc-1g-vmalloc256",
                                        capture=FIXTURES / "qemu-pc-1g.txt")
    with pytest.raises(OracleError, match="vmalloc=256M"):
        real_report_checked(text, params)


def test_oracle_main_real_only_from_capture(capsys):
    from mmemu.oracle.command import oracle_main
    status = oracle_main(["--config", "qemu-pc-128m", "--real-only", "--capture",
                          str(FIXTURES / "qemu-pc-128m.txt")])
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
        qemu.find_qemu()


def test_oracle_main_without_qemu_exits_cleanly(monkeypatch, capsys):
    from mmemu.oracle.command import oracle_main
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
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
    folder = tmp_path / "kernel"
    folder.mkdir()
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
# mmemu against the stored capture (mmemu's side; no QEMU)

@pytest.mark.parametrize("name", ["qemu-pc-1g", "qemu-pc-128m"])
def test_mmemu_matches_stored_capture(name):
    from mmemu.oracle.command import run_oracle
    result = run_oracle(name, capture=FIXTURES / f"{name}.txt")
    assert not result.comparison.failures, C.format_text(result.comparison)
    assert result.seconds is None               # nothing was booted
