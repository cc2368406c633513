"""The oracle against a real Linux 6.1 i386 kernel, booted under QEMU (qemu-pc-1g).

Runs when qemu-system-i386 is installed (CI installs qemu-system-x86) and
the kernel and busybox can be had (Debian's packages, downloaded once into
the oracle's cache, or $MMEMU_ORACLE_KERNEL / $MMEMU_ORACLE_BUSYBOX);
skipped with the reason otherwise.  One boot (about 10 s under TCG) serves
every test here.
"""
import os
import shutil

import pytest

from mmemu.oracle import OracleError

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-i386") is None,
                                reason="qemu-system-i386 is not installed "
                                       "(apt-get install qemu-system-x86)")


@pytest.fixture(scope="module")
def capture_1g():
    """(params, capture text, seconds) of one real boot of qemu-pc-1g."""
    from mmemu.config import load_config
    from mmemu.oracle import fetch, qemu
    kernel, busybox = (os.environ.get(f"MMEMU_ORACLE_{k}") for k in ("KERNEL", "BUSYBOX"))
    try:
        ref = fetch.user_kernel(kernel) if kernel else fetch.fetch_kernel()
        bb = fetch.check_busybox(busybox) if busybox else fetch.fetch_busybox()
    except OracleError as exc:
        pytest.skip(f"the reference kernel cannot be had here: {exc}")
    params = qemu.boot_params(load_config("qemu-pc-1g"))
    capture = qemu.boot(ref, bb, params, timeout=150)    # a failed boot fails the tests
    return params, capture.text, capture.seconds


def test_real_boot_reproduces_reference_numbers(capture_1g):
    # DESIGN.md's reference kernel, read fresh from a real boot.
    from mmemu.oracle.command import real_report_checked
    params, text, seconds = capture_1g
    linux = real_report_checked(text, params)
    assert linux.zone_ranges[1] == "  Normal   [mem 0x0000000001000000-0x0000000036bfdfff]"
    assert [(z.spanned, z.present) for z in linux.zones] == [
        (4095, 3998), (220158, 220158), (37858, 37858), (0, 0)]
    assert linux.memory.total == 1048056
    assert (linux.layout.lowmem_end, linux.layout.vmalloc_start, linux.layout.pkmap_base) \
        == (0xF6BFE000, 0xF73FE000, 0xFEC00000)
    assert all(ok for _, ok, _ in linux.layout_checks), linux.layout_checks
    assert seconds < 120


def test_real_boot_watermarks_follow_mmemus_formulas(capture_1g):
    from mmemu.oracle import compare
    from mmemu.oracle.command import real_report_checked
    params, text, _ = capture_1g
    rows = compare._formula_rows(real_report_checked(text, params))
    assert len(rows) == 16
    assert not [r for r in rows if r.failed], [r for r in rows if r.failed]


def test_mmemu_matches_real_kernel_qemu_pc_1g(capture_1g, tmp_path):
    from mmemu.oracle.command import run_oracle
    from mmemu.oracle.compare import format_text
    saved = tmp_path / "capture.txt"
    saved.write_text(capture_1g[1])
    result = run_oracle("qemu-pc-1g", capture=saved)
    differing = [f"{r.section}: {r.field}: Linux {r.linux} mmemu {r.mmemu}"
                 for r in result.comparison.failures]
    assert not differing, "\n".join(differing) + "\n\n" + format_text(result.comparison)
