"""The `mmemu` command as a user runs it: output formats and exit statuses."""
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.flavours

REFERENCE_1G = """\
Zone ranges:
  DMA      [mem 0x0000000000001000-0x0000000000ffffff]
  Normal   [mem 0x0000000001000000-0x0000000036bfdfff]
  HighMem  [mem 0x0000000036bfe000-0x000000003ffdffff]
Movable zone start for each node
Early memory node ranges
  node   0: [mem 0x0000000000001000-0x000000000009efff]
  node   0: [mem 0x0000000000100000-0x000000003ffdffff]
"""


def mmemu(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mmemu.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_info_prints_the_reference_kernels_zone_lines():
    r = mmemu("info", "--config", "qemu-pc-1g")
    assert r.returncode == 0, r.stderr
    assert REFERENCE_1G in r.stdout
    assert "BIOS-e820: [mem 0x0000000000100000-0x000000003ffdffff] usable" in r.stdout
    assert "Memory: " in r.stdout and "K/1048056K available" in r.stdout
    assert "    vmalloc : 0xf73fe000 - 0xfebfe000   ( 120 MB)" in r.stdout
    assert "    lowmem  : 0xc0000000 - 0xf6bfe000   ( 875 MB)" in r.stdout
    assert "    pkmap   : 0xfec00000 - 0xff000000   (4096 kB)" in r.stdout


def test_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("memory:\n  size: 12Q\n")
    r = mmemu("info", "--config", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert str(bad) in r.stderr and "memory.size" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_config_name_exits_2():
    r = mmemu("info", "--config", "pc-9g")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_run_exits_with_the_guests_status(tmp_path):
    prog = tmp_path / "seven.c"
    prog.write_text('#include <mmemu.h>\nint main(void) { printk("seven\\n"); return 7; }\n')
    r = mmemu("run", str(prog), "--config", "pc-16m")
    assert r.returncode == 7
    assert r.stdout == "seven\n"


def test_run_oops_exit_status_and_report_on_stdout():
    r = mmemu("run", "guest/tests/null_deref.c", "--config", "pc-16m")
    assert r.returncode == 139
    assert "BUG: kernel NULL pointer dereference" in r.stdout


def test_run_budget_exhausted_exits_124():
    r = mmemu("run", "guest/tests/spin.c", "--config", "pc-16m", "--max-insns", "100000")
    assert r.returncode == 124
    assert "instruction budget exhausted" in r.stdout


def test_build_error_shows_compiler_output_and_exits_3(tmp_path):
    prog = tmp_path / "broken.c"
    prog.write_text("int main(void) { return nope; }\n")
    r = mmemu("build", str(prog))
    assert r.returncode == 3
    assert "nope" in r.stderr and "Traceback" not in r.stderr


def test_run_of_a_file_that_is_not_elf_exits_3(tmp_path):
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"not an elf at all")
    r = mmemu("run", str(junk), "--config", "pc-16m")
    assert r.returncode == 3 and "not an ELF" in r.stderr


@pytest.mark.parametrize("view,first", [("buddyinfo", "Node 0, zone      DMA "),
                                        ("zoneinfo", "Node 0, zone      DMA"),
                                        ("meminfo", "MemTotal:")])
def test_proc_views(view, first):
    r = mmemu(view, "--config", "pc-16m")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(first)


def test_configs_lists_the_shipped_configs():
    r = mmemu("configs")
    assert {"pc-16m", "pc-1g", "pc-4g", "numa-2n", "qemu-pc-1g"} <= set(r.stdout.split())


@pytest.mark.parametrize("program", [
    "guest/examples/page_tour.c",                  # a few lines, written at exit
    "forever",                                     # prints until someone stops it
])
def test_run_into_head_ends_quietly_as_sigpipe_would(program, tmp_path):
    """`mmemu run prog.c | head -1`: one line, no traceback, and the status a
    shell shows for `yes | head -1` (141); a guest that prints forever ends."""
    program = Path(program)
    if program.name == "forever":
        program = tmp_path / "forever.c"
        program.write_text('#include <mmemu.h>\nint main(void)\n{\n\tunsigned long i = 0;\n\n'
                           '\tfor (;;)\n\t\tpr_info("line %lu\\n", i++);\n}\n')
    cmd = (f"{sys.executable} -m mmemu run {program} --config pc-16m --timeout 100 | head -1; "
           "echo status=${PIPESTATUS[0]} >&2")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert len(r.stdout.splitlines()) == 1
    # A short output may all be in the pipe before head exits: then, as for
    # `printf 'a\nb\n' | head -1`, nothing fails and the status is the guest's.
    allowed = {"status=141"} if program.name == "forever.c" else {"status=141", "status=0"}
    assert r.stderr.strip() in allowed, r.stderr


def test_view_into_head_ends_quietly():
    cmd = (f"{sys.executable} -m mmemu page-types -c pc-16m -L | head -1; "
           "echo status=${PIPESTATUS[0]} >&2")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert r.stdout == "offset\tflags\n"
    assert r.stderr.strip() == "status=141", r.stderr


def test_python_dash_m_mmemu_is_the_command():
    r = subprocess.run([sys.executable, "-m", "mmemu", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("usage: mmemu ")
    assert "memmap" in r.stdout and "page-types" in r.stdout
