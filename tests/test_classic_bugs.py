"""The classic kernel bugs, written the plain way a learner writes them
(guest/tests/classic_*.c), each reported as Linux 6.1 reports it.

They hold only because guests are built with the kernel's own flags: with
the compiler's defaults, the NULL dereference is deleted and the program
exits with a garbage status.
"""
import dataclasses
import re

import pytest

from mmemu.config import load_config
from mmemu.runtime.build import build, find_guest_dir
from mmemu.runtime.guest import EXIT_OOPS
from mmemu.testing import run_guest

pytestmark = pytest.mark.flavours

GUEST = find_guest_dir()


def classic(name):
    return GUEST / "tests" / f"classic_{name}.c"


def config(slub_debug=None):
    return dataclasses.replace(load_config("pc-16m"), slub_debug=slub_debug)


def test_null_dereference_oopses():
    r = run_guest(classic("null"), config(),
                  expect_report="BUG: kernel NULL pointer dereference, address: 00000000")
    assert (r.status, r.reason) == (EXIT_OOPS, "oops")
    oops = r.reports[0]
    assert "#PF: supervisor read access in kernel mode" in oops
    assert "Oops: 0000 [#1] PREEMPT SMP" in oops
    assert re.search(r"^EIP: main\+0x[0-9a-f]+/0x[0-9a-f]+$", oops, re.M)


def test_null_dereference_load_is_kept_by_the_build():
    """-fno-delete-null-pointer-checks: main loads from address 0 (movl 0, %eax)."""
    from capstone import CS_ARCH_X86, CS_MODE_32, Cs
    from elftools.elf.elffile import ELFFile
    with open(build(classic("null")), "rb") as f:
        elf = ELFFile(f)
        sym = elf.get_section_by_name(".symtab").get_symbol_by_name("main")[0]
        text = elf.get_section_by_name(".text")
        off = sym["st_value"] - text["sh_addr"]
        code = text.data()[off:off + sym["st_size"]]
    insns = [(i.mnemonic, i.op_str) for i in Cs(CS_ARCH_X86, CS_MODE_32).disasm(code, sym["st_value"])]
    assert ("mov", "eax, dword ptr [0]") in insns, insns
    assert "ud2" not in [m for m, _ in insns]


def test_use_after_free_is_found_by_slub_poisoning():
    r = run_guest(classic("use_after_free"), config("FZPU"),
                  expect_report="BUG kmalloc-64 (Not tainted): Poison overwritten")
    assert r.status == 0
    lines = r.reports[0].splitlines()
    assert re.fullmatch(r"0x[0-9a-f]{8}-0x[0-9a-f]{8} @offset=\d+\. First byte 0x78 instead "
                        r"of 0x6b", lines[4]), lines[4]


def test_use_after_free_goes_unnoticed_without_slub_debug():
    r = run_guest(classic("use_after_free"), config())          # no report, as on Linux
    assert r.status == 0


def test_double_free_is_the_naive_check_bug():
    r = run_guest(classic("double_free"), config(), expect_report="kernel BUG at mm/slub.c:379!")
    assert "naive detection of double free or corruption" in r.reports[0]


def test_double_free_with_slub_debug():
    r = run_guest(classic("double_free"), config("FZPU"),
                  expect_report="BUG kmalloc-64 (Not tainted): Object already free")
    assert r.reports[0].splitlines()[-1].startswith("FIX kmalloc-64: Object at 0x")


def test_out_of_bounds_write_hits_the_red_zone():
    r = run_guest(classic("redzone"), config("FZPU"),
                  expect_report="BUG kmalloc-64 (Not tainted): Right Redzone overwritten")
    lines = r.reports[0].splitlines()
    assert re.fullmatch(r"(0x[0-9a-f]{8})-\1 @offset=\d+\. First byte 0x41 instead of 0xcc",
                        lines[4]), lines[4]


def test_stack_overflow_hits_the_guard_page():
    r = run_guest(classic("stack_overflow"), config(),
                  expect_report="stack guard page was hit")
    assert (r.status, r.reason) == (EXIT_OOPS, "oops")
    report = r.reports[0]
    stack = r.machine.image.stack
    m = re.match(r"BUG: TASK stack guard page was hit at ([0-9a-f]{8}) "
                 r"\(stack is ([0-9a-f]{8})\.\.([0-9a-f]{8})\)\n", report)
    assert m, report
    assert (int(m.group(2), 16), int(m.group(3), 16)) == (stack.start, stack.end)
    assert stack.start - 4096 <= int(m.group(1), 16) < stack.start
    assert "\nstack guard page: 0000 [#1] PREEMPT SMP\n" in report
    assert "Call Trace:\n depth+" in report


def test_the_guard_page_is_unmapped_and_the_stack_is_not(tmp_path):
    r = run_guest(GUEST / "examples/hello.c", config())
    m, img = r.machine, r.machine.image
    assert img.stack_guard.end == img.stack.start and img.stack_guard.size == 4096
    assert m.virt_to_phys(img.stack_guard.start) is None
    assert m.virt_to_phys(img.stack.start) == img.stack.start - 0xC0000000
    # The next program (more .data: its .bss, the stack first, starts later)
    # maps the old guard again and unmaps its own.
    bigger = tmp_path / "bigger.c"
    bigger.write_text("#include <mmemu.h>\nint table[8192] = { 1 };\n"
                      "int main(void) { return table[0] - 1; }\n")
    m.load(bigger)
    new = m.image.stack_guard
    assert new.start > img.stack_guard.start
    assert m.virt_to_phys(new.start) is None
    assert m.virt_to_phys(img.stack_guard.start) == img.stack_guard.start - 0xC0000000


@pytest.mark.parametrize("name", ["null", "stack_overflow"])
def test_a_classic_bug_fails_a_test_that_expects_no_report(name):
    from mmemu.testing import ReportError
    with pytest.raises(ReportError, match="unexpected report"):
        run_guest(classic(name), config())
