"""Reproducing a failure: replay a host driver's raw calls on a fresh machine,
and shrink them (ddmin) to a short list that still fails the same way."""
import time

from mmemu.harness.hostfuzz import HostFuzzer
from mmemu.harness.records import Call


def replay(config, calls, check_every=10**9, debug_vm=None, replayer=None):
    """Issue calls (raw Calls, as Failure.calls holds them) on a fresh machine.

    Returns the first Failure (a final machine.check() included), or None.
    replayer: the HostFuzzer class that made them, if a subclass.
    """
    cls = replayer or HostFuzzer
    f = cls(config, seed=None, check_every=check_every, log_calls=False, debug_vm=debug_vm)
    f._script = [Call(c.nr, c.args, c.name, c.pokes) for c in calls]
    f.run(len(calls) + 1)
    if not f.result.failures and f.m is not None:
        problem = f.watch.full()
        if problem:
            f._fail("check", problem)
    return f.result.failures[0] if f.result.failures else None


def minimize(config, calls, kind, deadline=None, log=None, replayer=None):
    """Shrink calls to a short list that still fails with kind (ddmin over complements).

    deadline: a time.monotonic() after which the smallest list so far is returned.
    """
    def fails(seq):
        got = replay(config, seq, replayer=replayer)
        return got is not None and got.kind == kind

    calls = list(calls)
    n = 2
    while len(calls) >= 2:
        if deadline is not None and time.monotonic() > deadline:
            break
        chunk = -(-len(calls) // n)
        for i in range(n):
            candidate = calls[:i * chunk] + calls[(i + 1) * chunk:]
            if candidate and fails(candidate):
                calls, n = candidate, max(n - 1, 2)
                if log:
                    log(f"minimize: {len(calls)} calls")
                break
        else:
            if n >= len(calls):
                break
            n = min(2 * n, len(calls))
    return calls


def format_calls(calls):
    """Calls as a numbered list, with the scratch strings they poke."""
    lines = []
    for i, c in enumerate(calls, 1):
        extra = "".join(f"  [poke 0x{p:x}: {bytes(d[:48])!r}]" for p, d in c.pokes)
        lines.append(f"{i:4d}  {c}{extra}")
    return "\n".join(lines)
