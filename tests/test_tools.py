"""The inspection scripts in tools/: each answers --help from any directory,
runs on pc-16m, on a live machine and on a snapshot of one, and takes the
same options as its `mmemu` subcommand."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmemu.views.snapshot import write_snapshot

from test_ptdump_fixtures import build_machine

pytestmark = pytest.mark.flavours

TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools"
TOOLS = ["ptdump", "buddyinfo", "zoneinfo", "meminfo", "slabinfo", "vmallocinfo", "page_types",
         "memmap"]


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f"mmemu_tool_{name}", TOOLS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", TOOLS)
def test_tool_help_runs_from_anywhere(name, tmp_path):
    out = subprocess.run([sys.executable, str(TOOLS_DIR / f"{name}.py"), "--help"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--config" in out.stdout and "--snapshot" in out.stdout and "--after" in out.stdout


def _live_args(name, tmp_path):
    return {
        "ptdump": [], "buddyinfo": ["--summary"], "zoneinfo": [], "meminfo": [],
        "slabinfo": ["-S", "-z"],
        "vmallocinfo": ["--summary"], "page_types": ["-r"],
        "memmap": ["-o", str(tmp_path / "m.png")],
    }[name]


EXPECT = {
    "ptdump": "---[ Kernel Mapping ]---", "buddyinfo": "Node 0, zone      DMA",
    "zoneinfo": "Node 0, zone      DMA", "meminfo": "MemTotal:",
    "slabinfo": "Name                   Objects Objsize", "vmallocinfo": "kind",
    "page_types": "             total\t      4096       16", "memmap": "m.png: ",
}


@pytest.mark.parametrize("name", TOOLS)
def test_tool_runs_on_pc_16m(name, tmp_path, capsys):
    status = load_tool(name).main(["--config", "pc-16m"] + _live_args(name, tmp_path))
    out = capsys.readouterr()
    assert status == 0, out.err
    assert EXPECT[name] in out.out


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory, kernel_flavour):
    path = tmp_path_factory.mktemp("snap") / "pc-16m.vmcore"
    write_snapshot(build_machine("pc-16m"), path)
    return path


@pytest.mark.parametrize("name,args,expect", [
    ("ptdump", ["--region", "pkmap"], "---[ Persistent kmap() Area ]---"),
    ("ptdump", ["--lookup", "0xc0400000"], "free: buddy block of order 10"),
    ("page_types", ["-l", "-b", "slab"], "offset\tlen\tflags"),
    ("memmap", ["--format", "svg", "-o", "{tmp}/m.out"], "4096 frames"),
])
def test_tool_runs_on_a_snapshot(name, args, expect, snapshot_file, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    status = load_tool(name).main(["--snapshot", str(snapshot_file)] + args)
    out = capsys.readouterr()
    assert status == 0, out.err
    assert expect in out.out


def test_tools_say_what_a_snapshot_lacks(snapshot_file, capsys):
    assert load_tool("buddyinfo").main(["--snapshot", str(snapshot_file)]) == 1
    assert "no buddyinfo" in capsys.readouterr().err
    assert load_tool("slabinfo").main(["--snapshot", str(snapshot_file), "-v"]) == 1
    assert "needs a live slab allocator" in capsys.readouterr().err


def test_tool_reports_bad_input_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "junk.vmcore"
    bad.write_bytes(b"hello")
    assert load_tool("ptdump").main(["--snapshot", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptdump: ") and "not an ELF file" in err and "Traceback" not in err
    assert load_tool("ptdump").main(["--config", str(tmp_path / "none.yaml")]) == 2
    assert load_tool("page_types").main(["--snapshot", str(bad), "--after", "x.c"]) == 2


def test_slabinfo_store_size_matches_the_c_tool():
    from mmemu.views import slabinfo_tool as slabinfo
    assert [slabinfo.store_size(v) for v in (999, 1001, 8192, 123456, 12345678, 2000000000)] \
        == ["999", "1.0K", "8.1K", "123.4K", "12.3M", "2.0G"]
    assert slabinfo.store_size(8192, show_bytes=True) == "8192"


def test_slabinfo_reads_proc_slabinfo_lines():
    from mmemu.views import slabinfo_tool as slabinfo
    text = ("slabinfo - version: 2.1\n# name ...\n"
            "kmalloc-64            128    192     64   64    1 : tunables    0    0    0 : "
            "slabdata      3      3      0\n"
            "kmalloc-1k              8      8   1024    8    2 : tunables    0    0    0 : "
            "slabdata      1      1      0\n")
    caches = slabinfo.caches_from_proc(text)
    assert caches[0] == slabinfo.SlabCacheUsage("kmalloc-64", 128, 64, 3, 0, 0, 64, 0, "")
    assert caches[1].order == 1 and caches[1].slab_size == 8192
    by_size = slabinfo.sort_caches(caches, by_size=True)
    assert [c.name for c in by_size] == ["kmalloc-64", "kmalloc-1k"]      # 12K before 8K
    assert [c.name for c in slabinfo.sort_caches(caches)] == ["kmalloc-1k", "kmalloc-64"]


def _help_options(argv, cwd):
    """The options part of a --help: usage, description and examples aside."""
    r = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=60, cwd=cwd,
                       env={**os.environ, "COLUMNS": "100"})
    assert r.returncode == 0, r.stderr
    blocks = r.stdout[r.stdout.index("options:"):].split("\n\n")
    return [b for b in blocks if not b.startswith("examples:")]


@pytest.mark.parametrize("name", TOOLS)
def test_tool_and_subcommand_take_the_same_options(name, tmp_path):
    tool = _help_options([sys.executable, str(TOOLS_DIR / f"{name}.py")], tmp_path)
    sub = _help_options([sys.executable, "-m", "mmemu", name.replace("_", "-")],
                        TOOLS_DIR.parent)
    assert tool == sub
    assert tool[0].count("\n  -") >= 4       # -h, --config, --after, --snapshot at least


@pytest.mark.parametrize("argv,expect", [
    (["page-types", "-c", "pc-16m", "-a", "0x100,0x102", "-L", "-N"], "offset\tflags\n100\t"),
    (["page-types", "-d", "0x400"], "0x0000000000000400\t"),
    (["slabinfo", "-c", "pc-16m"], "slabinfo - version: 2.1\n"),
    (["slabinfo", "-c", "pc-16m", "-l"], "Name                   Objects Objsize"),
    (["buddyinfo", "-c", "pc-16m", "-s"], "free pages ("),
])
def test_subcommands_have_the_tools_options(argv, expect):
    r = subprocess.run([sys.executable, "-m", "mmemu", *argv], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout


def test_slabinfo_validates_a_live_machine(capsys):
    assert load_tool("slabinfo").main(["--config", "pc-16m", "-v"]) == 0
    assert "slabinfo: every cache validated, no errors" in capsys.readouterr().out
