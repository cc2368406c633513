"""Tests for mmemu.views.snapshot: the ELF vmcore writer, the loader, and
the views reading a snapshot exactly as they read the machine it came from.

The ELF structure is checked with pyelftools, an independent reader."""
import json
import os
import struct

import pytest
from elftools.elf.elffile import ELFFile

from mmemu.layout import PAGE_OFFSET
from mmemu.views import memmap, owner, page_types, ptdump, snapshot
from mmemu.views.snapshot import SnapshotError, load_snapshot, write_snapshot

from test_ptdump_fixtures import build_machine

pytestmark = pytest.mark.flavours


@pytest.fixture(scope="module")
def m16(kernel_flavour):
    return build_machine("pc-16m")


@pytest.fixture(scope="module")
def snap16(m16, tmp_path_factory, kernel_flavour):
    path = tmp_path_factory.mktemp("snap") / "pc-16m.vmcore"
    write_snapshot(m16, path)
    return path


def test_snapshot_views_equal_the_machines(m16, snap16):
    s = load_snapshot(snap16)
    assert ptdump.ptdump_text(s) == ptdump.ptdump_text(m16)
    assert ptdump.ptdump_text(s, all_ptes=True) == ptdump.ptdump_text(m16, all_ptes=True)
    assert page_types.page_types_text(s, raw=True) == page_types.page_types_text(m16, raw=True)
    assert memmap.frame_classes(s).codes == memmap.frame_classes(m16).codes
    for va in (0xC0000000, 0xC0400000, m16.layout.vmalloc_start, m16.layout.pkmap_base + 0x3000,
               PAGE_OFFSET + (min(p for p, k in m16.truth.items() if k == "slab") << 12)):
        assert owner.lookup_text(s, va) == owner.lookup_text(m16, va)
    assert s.cfg == m16.cfg and s.layout == m16.layout
    s.close()


def test_snapshot_is_a_kdump_style_elf_core(m16, snap16):
    with open(snap16, "rb") as f:
        elf = ELFFile(f)
        assert (elf.elfclass, elf["e_type"], elf["e_machine"]) == (32, "ET_CORE", "EM_386")
        segs = list(elf.iter_segments())
        assert segs[0]["p_type"] == "PT_NOTE"
        notes = {(n["n_name"], n["n_type"]) for n in segs[0].iter_notes()}
        assert ("CORE", "NT_PRSTATUS") in notes and ("MMEMU", 0x4D4D) in notes
        assert any(name == "VMCOREINFO" for name, _ in notes)
        loads = [(s["p_paddr"], s["p_vaddr"], s["p_memsz"]) for s in segs[1:]]
    low_end = m16.layout.max_low_pfn << 12
    assert loads == [(0, PAGE_OFFSET, 0x9FC00), (0x100000, PAGE_OFFSET + 0x100000,
                                                 low_end - 0x100000)]


def test_snapshot_skips_zero_pages(tmp_path):
    m = build_machine("pc-128m")
    path = tmp_path / "128m.vmcore"
    written = write_snapshot(m, path)
    st = os.stat(path)
    assert written < 2 << 20                          # mem_map and a few tables
    assert st.st_size > m.layout.max_pfn << 12        # the whole of RAM is addressable...
    assert st.st_blocks * 512 < 8 << 20               # ...but the zero pages are holes
    assert page_types.page_types_text(load_snapshot(path)) == page_types.page_types_text(m)


def test_snapshot_of_a_live_machine_keeps_registers_and_proc_texts(tmp_path):
    from mmemu.machine import Machine
    m = Machine("pc-16m", echo=False)
    m.engine.set_reg("eax", 0x12345678)
    path = tmp_path / "live.vmcore"
    write_snapshot(m, path)
    s = load_snapshot(path)
    assert s.regs["eax"] == 0x12345678
    assert s.regs["eip"] == m.engine.reg("eip")
    assert s.proc_text("buddyinfo") == m.proc_text("buddyinfo")
    assert ptdump.ptdump_text(s) == ptdump.ptdump_text(m)


# -- bad files ------------------------------------------------------------------

def test_not_elf(tmp_path):
    bad = tmp_path / "x"
    bad.write_bytes(b"not a core file at all")
    with pytest.raises(SnapshotError, match="not an ELF file"):
        load_snapshot(bad)


def test_missing_file(tmp_path):
    with pytest.raises(SnapshotError, match="cannot open"):
        load_snapshot(tmp_path / "nothing")


def test_elf_but_not_an_i386_core(snap16, tmp_path):
    data = bytearray(snap16.read_bytes())
    struct.pack_into("<H", data, 16, 2)                        # ET_EXEC
    bad = tmp_path / "exec"
    bad.write_bytes(data)
    with pytest.raises(SnapshotError, match="not an i386 core dump"):
        load_snapshot(bad)


def test_truncated(snap16, tmp_path):
    data = snap16.read_bytes()
    for cut in (30, 200, len(data) // 2):
        bad = tmp_path / f"cut{cut}"
        bad.write_bytes(data[:cut])
        with pytest.raises(SnapshotError, match="truncated"):
            load_snapshot(bad)


def test_other_version(m16, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "VERSION", 99)
    path = tmp_path / "v99"
    write_snapshot(m16, path)
    monkeypatch.setattr(snapshot, "VERSION", 1)
    with pytest.raises(SnapshotError, match="format version 99; this mmemu reads version 1"):
        load_snapshot(path)


def test_core_without_the_mmemu_note(m16, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "_notes", lambda m: snapshot._note("CORE", 1, bytes(144)))
    path = tmp_path / "plain"
    write_snapshot(m16, path)
    with pytest.raises(SnapshotError, match="not an mmemu snapshot"):
        load_snapshot(path)


def test_damaged_metadata(m16, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "snapshot_metadata", lambda m: {"format": "other"})
    path = tmp_path / "other"
    write_snapshot(m16, path)
    with pytest.raises(SnapshotError, match="not an mmemu-vmcore description"):
        load_snapshot(path)


def test_metadata_describes_the_machine(m16):
    meta = json.loads(json.dumps(snapshot.snapshot_metadata(m16)))
    assert meta["pgd"] == m16.pgtable.pgd
    assert meta["mem_map"] == {"phys": m16.mem_map.phys, "nr_pages": 4096}
    assert meta["config"]["name"] == "pc-16m"
    assert meta["layout"]["vmalloc_start"] == m16.layout.vmalloc_start


def test_snapshot_names_the_programs_build_id(tmp_path):
    # `mmemu build` links a GNU build ID into .notes (PT_NOTE); the snapshot's
    # VMCOREINFO carries it as the kernel's (BUILD-ID=), which drgn and gdb
    # use to match the ELF to the core.
    from mmemu.machine import Machine
    m = Machine("pc-16m", echo=False)
    assert m.run("guest/examples/hello.c").status == 0
    elf_path = m.image.path
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        notes = [n for seg in elf.iter_segments() if seg["p_type"] == "PT_NOTE"
                 for n in seg.iter_notes()]
        build_id = next(n["n_desc"] for n in notes if n["n_type"] == "NT_GNU_BUILD_ID")
    assert len(build_id) == 40 and m.image.build_id == build_id
    path = tmp_path / "core"
    write_snapshot(m, path)
    with open(path, "rb") as f:
        core = ELFFile(f)
        info = next(n["n_desc"] for n in next(core.iter_segments()).iter_notes()
                    if n["n_name"] == "VMCOREINFO")
    text = info.decode() if isinstance(info, bytes) else info
    assert f"\nBUILD-ID={build_id}\n" in text
    assert load_snapshot(path).image.build_id == build_id
