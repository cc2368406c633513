"""The hostile corpus, command lines: a bad option is refused before anything
runs, exit status 2, no traceback; an output file that cannot be written is
one line before the run, not a traceback after it.
"""
import pytest

HELLO = "tests/hostile/guest/printk_bad_pointers.c"

ARGUMENT_ERRORS = [
    (["--max-insns", "-5"], "argument --max-insns: -5 is out of range"),
    (["--max-insns", "lots"], "argument --max-insns: 'lots' is not a whole number"),
    (["--timeout", "nan"], "argument --timeout: nan is not a time budget"),
    (["--timeout", "inf"], "argument --timeout: inf is not a time budget"),
    (["--timeout", "-1"], "argument --timeout: -1 is not a time budget"),
    (["--gdb", "99999"], "argument --gdb: 99999 is not a TCP port (0 .. 65535"),
    (["--gdb", "-1"], "argument --gdb: -1 is not a TCP port"),
]


@pytest.mark.parametrize("args,message", ARGUMENT_ERRORS, ids=[" ".join(a) for a, _ in ARGUMENT_ERRORS])
def test_a_bad_budget_or_port_is_refused_with_status_2(args, message, mmemu_cli):
    r = mmemu_cli("run", HELLO, "--config", "pc-16m", *args)
    assert r.status == 2, r.err
    assert r.err_lines[-1] == f"mmemu run: error: {message}" or message in r.err_lines[-1]
    assert "Traceback" not in r.err and not r.out


def test_dump_into_a_missing_folder_is_one_line_before_the_run(tmp_path, mmemu_cli):
    target = tmp_path / "no" / "such" / "core"
    r = mmemu_cli("run", HELLO, "--config", "pc-16m", "--dump", target)
    assert r.status == 2
    assert r.err_lines == [f"mmemu: cannot write the snapshot {target}: no folder {target.parent}"]
    assert "null=" not in r.out                       # nothing ran


def test_dump_onto_a_folder_is_one_line(tmp_path, mmemu_cli):
    r = mmemu_cli("run", HELLO, "--config", "pc-16m", "--dump", tmp_path)
    assert r.status == 2 and r.err_lines == [f"mmemu: cannot write the snapshot {tmp_path}: "
                                             "it is a folder"]


def test_memmap_into_a_missing_folder_is_one_line(tmp_path, mmemu_cli):
    target = tmp_path / "no" / "m.png"
    r = mmemu_cli("memmap", "--config", "pc-16m", "-o", target)
    assert r.status == 2
    assert r.err_lines == [f"mmemu: cannot write the picture {target}: no folder {target.parent}"]


def test_after_with_snapshot_is_usage_status_2(tmp_path, mmemu_cli):
    r = mmemu_cli("buddyinfo", "--after", HELLO, "--snapshot", tmp_path / "core")
    assert r.status == 2
    assert r.err_lines == ["mmemu: --after runs a program on a live machine; not with --snapshot"]


def test_panic_on_warn_on_the_command_line(mmemu_cli):
    # a WARN then panics (137), as the sysctl or the config's debug.panic_on_warn
    r = mmemu_cli("run", "guest/tests/warn_on.c", "--config", "pc-16m", "--panic-on-warn")
    assert r.status == 137, r.err
    assert "Kernel panic - not syncing: kernel: panic_on_warn set ..." in r.out
    r = mmemu_cli("run", "guest/tests/warn_on.c", "--config", "pc-16m")
    assert r.status == 1 and "Kernel panic" not in r.out       # warn_on.c exits 1 after its WARN


def test_a_million_printk_lines_cost_a_fixed_amount_of_host_memory(tmp_path, mmemu_cli):
    # the kernel log is 6.1's 128 KiB ring; the console still gets every line
    src = tmp_path / "spam.c"
    src.write_text('#include <mmemu.h>\nint main(void)\n{\n\tfor (int i = 0; i < 200000; i++)\n'
                   '\t\tprintk("line %d of a guest that prints without end, padded to eighty'
                   ' chars\\n", i);\n\treturn 0;\n}\n')
    r = mmemu_cli("run", src, "--config", "pc-16m", "--timeout", "0", timeout=900)
    assert r.status == 0, r.err
    assert r.out.count("\n") >= 200000 and "line 199999 of a guest" in r.out
    small = mmemu_cli("run", HELLO, "--config", "pc-16m")
    # 200,000 lines are 16 MB of text: the run may not keep them
    assert r.peak_kib < small.peak_kib + 12 * 1024, (r.peak_kib, small.peak_kib)
