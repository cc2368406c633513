"""User space under the 3G/1G split: ring-3 tasks, segfaults, vmalloc_fault."""
import re

from mmemu.layout import PAGE_OFFSET
from mmemu.testing import run_guest
import pytest

pytestmark = pytest.mark.flavours


def test_user_tasks_run_die_and_the_kernel_goes_on():
    r = run_guest("guest/tests/user_tasks.c", config="pc-128m")
    assert (r.status, r.reason) == (0, "exit"), r.log
    assert "hello from ring 3\n" in r.console
    segv = [ln for ln in r.log.splitlines() if "segfault at" in ln]
    pattern = (r"^(\w+)\[(\d+)\]: segfault at ([0-9a-f]+) ip ([0-9a-f]{8}) sp ([0-9a-f]{8}) "
               r"error (\d+) in \1\[8048000\+[0-9a-f]+\]$")
    parsed = [re.match(pattern, ln) for ln in segv]
    assert all(parsed), segv
    got = {m.group(1): (int(m.group(3), 16), int(m.group(6))) for m in parsed}
    assert got["rdkern"][1] == 5 and got["rdkern"][0] >= PAGE_OFFSET      # user read, protection
    assert got["wrkern"][1] == 7 and got["wrkern"][0] >= PAGE_OFFSET      # user write, protection
    assert got["wrcode"] == (got["wrcode"][0], 7) and got["wrcode"][0] < PAGE_OFFSET
    assert got["unmapped"] == (0x40000000, 4)                            # user read, not present
    assert "#PF: user read access in user mode" in r.log


def test_task_memory_is_freed_and_the_allocator_is_consistent():
    r = run_guest("guest/tests/user_tasks.c", config="pc-128m")
    m = r.machine
    assert m.tasks.current is None
    assert [sig for _, sig in m.tasks.killed] == [11, 11, 11, 11]
    m.check()


def test_vmalloc_made_after_the_pgd_copy_reaches_the_task_by_vmalloc_fault(kernel_flavour):
    r = run_guest("guest/tests/user_tasks.c", config="pc-128m")
    assert "vmfault exited 42" in r.console
    if kernel_flavour == "686":
        assert r.machine.tasks.vmalloc_faults >= 1
    else:
        # 686-pae shares the kernel PMD between every pgd: the new page table
        # is there at once, and vmalloc_fault() has nothing to copy.
        assert r.machine.tasks.vmalloc_faults == 0


def test_kernel_memory_is_not_changed_by_a_task():
    r = run_guest("guest/tests/user_tasks.c", config="pc-128m")
    img = r.machine.image
    assert r.machine.read32(img.lookup("secret")) == 0x5EC12E7
