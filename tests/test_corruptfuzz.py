"""The corrupting fuzzer (mmemu/harness/corruptfuzz.py): the guest stores into
the kernel's own structures between hypercalls, and every run must end in
a kernel report or go on, never in a host exception.  CI-sized seeded
runs, and a broken view made on purpose to prove the oracle fires.

The long runs are tools/fuzz.py --driver corrupt.
"""
from mmemu.harness.corruptfuzz import TARGETS, CorruptingFuzzer
from mmemu.harness.machines import fuzz_config


def test_every_corruption_ends_in_a_report_not_a_host_exception():
    kinds = set()
    for config, seed in (("pc-16m", 1), ("pc-128m-highmem", 2)):
        f = CorruptingFuzzer(fuzz_config(config), seed=seed, corrupt=0.1)
        r = f.run(2500)
        assert r.failures == [], str(r.failures[0])
        assert r.calls == 2500
        assert set(r.corruptions) == set(TARGETS)       # every structure was hit
        assert sum(r.corruptions.values()) > 150
        # the broken machines died the kernel's deaths
        assert r.outcomes["bug"] + r.outcomes["oops"] > 20, r.outcomes
        assert r.boots > 3
        kinds |= set(r.reports)
    kinds = "\n".join(kinds)
    for text in ("list_del corruption", "kernel BUG at", "BUG: Bad page state",
                 "BUG: unable to handle page fault"):
        assert text in kinds, text


def test_a_view_that_breaks_on_corrupted_state_is_a_failure(monkeypatch):
    # the oracle can fail: a view raising a host exception over the broken
    # machine is reported as one, with the seed to reproduce it
    import mmemu.views.ptdump as ptdump

    def broken(m, *a, **kw):
        raise IndexError("list index out of range")
    monkeypatch.setattr(ptdump, "ptdump_text", broken)
    f = CorruptingFuzzer(fuzz_config("pc-16m"), seed=3, corrupt=0.2)
    r = f.run(400)
    assert r.failures, "no failure found"
    fail = r.failures[0]
    assert fail.kind == "view"
    assert "ptdump over corrupted state raised" in fail.detail
    assert "IndexError" in fail.detail
    assert fail.seed == 3
