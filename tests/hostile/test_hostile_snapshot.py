"""The hostile corpus, snapshot files: a note that lies about sizes, misses
keys or has them of the wrong type is one line and exit status 2 for every
view that reads it, and costs the host no more memory than a good one.
"""
import json
import struct

import pytest

import mmemu.views.snapshot as snapshot
from mmemu.machine import Machine

PEAK_LIMIT_KIB = 96 * 1024


@pytest.fixture(scope="module")
def machine():
    return Machine("pc-16m", echo=False)


def write(machine, path, change):
    """A snapshot of machine whose MMEMU note change(meta) rewrote."""
    real = snapshot.snapshot_metadata

    def lying(m):
        meta = real(m)
        change(meta)
        return meta
    snapshot.snapshot_metadata = lying
    try:
        snapshot.write_snapshot(machine, path)
    finally:
        snapshot.snapshot_metadata = real
    return path


def setitem(*keys, value):
    def change(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


def delitem(*keys):
    def change(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return change


CASES = [
    ("2^31-pages", setitem("mem_map", "nr_pages", value=1 << 31),
     "mem_map.nr_pages is 2147483648, but the machine has 4096 page frames"),
    ("mem_map-past-the-file", setitem("mem_map", "phys", value=0xFFF000),
     "mem_map at 0xfff000 (4096 struct pages) is not inside the memory the file holds"),
    ("no-mem_map", delitem("mem_map"), "the MMEMU note is damaged: it has no mem_map"),
    ("no-config", delitem("config"), "the MMEMU note is damaged: it has no config"),
    ("pgd-a-string", setitem("pgd", value="abc"),
     "the MMEMU note is damaged: pgd must be an address, not 'abc'"),
    ("pgd-past-ram", setitem("pgd", value=0x7FFFF000),
     "swapper_pg_dir at 0x7ffff000 is not inside the memory the file holds"),
    ("pcp-order-huge", setitem("pcp", value=[["Normal", 10 ** 9, 5]]),
     "pcp[0] is order 1000000000 at pfn 0x5, outside mem_map"),
    ("pcp-not-triples", setitem("pcp", value=[1, 2, 3]), "pcp[0] must be [zone, order, pfn]"),
    ("proc-not-text", setitem("proc", "buddyinfo", value=[1]),
     "proc.'buddyinfo' must be a text, not list"),
    ("config-ram-4tib", lambda meta: meta["config"]["ram"].append(
        {"start": 0x10000000, "end": 1 << 42}),
     "the MMEMU note's machine config is damaged: ram[].end must be a whole number"),
    ("config-vmalloc-text", setitem("config", "vmalloc", value="lots"),
     "vmalloc must be a whole number from 0 to 0x1000000000, not 'lots'"),
    ("config-nodes-bad", setitem("config", "nodes", value=[{"nid": "x"}]),
     "nodes[].nid must be a whole number"),
    ("config-ram-empty", setitem("config", "ram", value=[]),
     "the MMEMU note's machine config is damaged: it has no RAM"),
    ("version", setitem("version", value=99),
     "written in snapshot format version 99; this mmemu reads version 1"),
]


# every case through page-types, the first through each view that reads snapshots
RUNS = [("page-types",) + c for c in CASES] + [
    (view,) + CASES[0] for view in ("buddyinfo", "slabinfo", "ptdump", "memmap", "zoneinfo")]


@pytest.mark.parametrize("view,change,message", [r[:1] + r[2:] for r in RUNS],
                         ids=[f"{r[0]}-{r[1]}" for r in RUNS])
def test_a_lying_snapshot_is_one_line_and_status_2(view, change, message, machine, tmp_path,
                                                   mmemu_cli):
    path = write(machine, tmp_path / "core", change)
    extra = ["-o", tmp_path / "m.png"] if view == "memmap" else []
    r = mmemu_cli(view, "--snapshot", path, *extra)
    assert r.status == 2, r.err
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith("mmemu: ") and message in r.err, \
        r.err
    assert "Traceback" not in r.err
    assert r.peak_kib < PEAK_LIMIT_KIB


def test_a_note_claiming_2_31_pages_costs_no_memory(machine, tmp_path, mmemu_cli):
    good = write(machine, tmp_path / "good", lambda meta: None)
    bad = write(machine, tmp_path / "bad", setitem("mem_map", "nr_pages", value=1 << 31))
    ok, refused = mmemu_cli("page-types", "--snapshot", good), mmemu_cli("page-types",
                                                                           "--snapshot", bad)
    assert ok.status == 0 and refused.status == 2
    assert refused.peak_kib <= ok.peak_kib + 4096        # nothing built from the lie


def test_a_truncated_or_noisy_file_is_one_line(machine, tmp_path, mmemu_cli):
    good = write(machine, tmp_path / "good", lambda meta: None)
    data = good.read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[:4096])
    r = mmemu_cli("buddyinfo", "--snapshot", cut)
    assert r.status == 2 and len(r.err_lines) == 1 and "truncated" in r.err
    deep = tmp_path / "deep"
    note = json.dumps({"format": snapshot.FORMAT, "version": 1}).encode()
    deep.write_bytes(data.replace(b'{"format"', b"[" * 9 + b'{"format"', 1))
    r = mmemu_cli("buddyinfo", "--snapshot", deep)
    assert r.status == 2 and len(r.err_lines) == 1 and "MMEMU note is damaged" in r.err
    assert note                                       # (the layout the note starts with)
    huge_note = tmp_path / "hugenote"
    ehdr = bytearray(data[:snapshot.EHDR.size + snapshot.PHDR.size])
    ptype, off, va, pa, filesz, memsz, flags, align = snapshot.PHDR.unpack_from(
        ehdr, snapshot.EHDR.size)
    struct.pack_into("<IIIIIIII", ehdr, snapshot.EHDR.size, ptype, off, va, pa,
                     0x7FFFFFFF, 0x7FFFFFFF, flags, align)
    huge_note.write_bytes(bytes(ehdr) + data[len(ehdr):])
    r = mmemu_cli("buddyinfo", "--snapshot", huge_note)
    assert r.status == 2 and len(r.err_lines) == 1 and "truncated: the notes end" in r.err
    assert r.peak_kib < PEAK_LIMIT_KIB
