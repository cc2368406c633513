"""The oracle against a real Linux 6.1 i386 kernel, booted under QEMU (qemu-pc-1g).

Runs when QEMU is installed (CI installs qemu-system-x86) and the pinned
kernel and busybox can be had (Debian's packages, downloaded once into the
oracle's cache, or $MMEMU_ORACLE_KERNEL / $MMEMU_ORACLE_BUSYBOX); skipped
with the reason otherwise.  One boot (about 10 s under TCG) serves every
test here: it must still state what the stored capture states, and mmemu
must state all of it.
"""
import os

import pytest

from mmemu.oracle import OracleError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "oracle")


@pytest.fixture(scope="module")
def boot_1g():
    """(params, {section: text}, seconds) of one real boot of qemu-pc-1g."""
    from mmemu.config import load_config
    from mmemu.oracle import fetch, qemu
    from mmemu.oracle.parse import split_sections
    try:
        qemu.find_qemu()
    except OracleError as exc:
        pytest.skip(str(exc))
    kernel, busybox = (os.environ.get(f"MMEMU_ORACLE_{k}") for k in ("KERNEL", "BUSYBOX"))
    try:
        ref = fetch.user_kernel(kernel) if kernel else fetch.fetch_kernel()
        bb = fetch.check_busybox(busybox) if busybox else fetch.fetch_busybox()
    except OracleError as exc:
        pytest.skip(f"the reference kernel cannot be had here: {exc}")
    params = qemu.boot_params(load_config("qemu-pc-1g"))
    capture = qemu.boot(ref, bb, params, timeout=150)    # a failed boot fails the tests
    return params, split_sections(capture.text), capture.seconds


def test_real_boot_states_what_the_stored_capture_states(boot_1g):
    # The pinned kernel is deterministic with nokaslr: today's boot gives the
    # stored fixture's facts, all of them.
    from mmemu.oracle.capture import load_capture
    from mmemu.oracle.compare import compare, format_text
    from mmemu.oracle.parse import real_report
    from mmemu.oracle.run import real_report_checked
    params, sections, seconds = boot_1g
    today = real_report_checked(sections, params)
    stored = real_report(load_capture(os.path.join(FIXTURES, "qemu-pc-1g")))
    assert "6.1.176-1" in today.kernel
    result = compare(stored, today)
    assert not result.failures, format_text(result)
    assert all(ok for _, ok, _ in today.layout_checks), today.layout_checks
    assert seconds < 120


def test_mmemu_matches_real_kernel_qemu_pc_1g(boot_1g, tmp_path):
    from mmemu.oracle.capture import save_fixture
    from mmemu.oracle.compare import format_text
    from mmemu.oracle.run import run_oracle
    save_fixture(boot_1g[1], tmp_path / "qemu-pc-1g")
    result = run_oracle("qemu-pc-1g", capture=tmp_path / "qemu-pc-1g")
    assert not result.comparison.failures, format_text(result.comparison)
