"""Helpers for testing guest programs with pytest (also a pytest plugin).

    from mmemu.testing import run_guest

    def test_my_driver():
        r = run_guest("my_driver.c", config="pc-1g")
        assert r.status == 0
        assert "probe ok" in r.console

With mmemu installed, pytest also offers the fixture ``mmemu_run``, which
does the same and runs every consistency checker after the program.
"""
import pytest


def run_guest(program, config="pc-1g", check=True, **budget):
    """Boot a machine, run one guest program, return its RunResult.

    The machine is attached as ``result.machine`` so a test can inspect the
    state the program left.  With check=True the consistency checkers run
    after the program and raise if anything is inconsistent.
    """
    from mmemu.machine import Machine
    m = Machine(config, echo=False)
    result = m.run(program, **budget)
    result.machine = m
    if check:
        m.check()
    return result


@pytest.fixture
def mmemu_run():
    """Run a guest program: mmemu_run(program, config="pc-1g", **budget) -> RunResult."""
    return run_guest
