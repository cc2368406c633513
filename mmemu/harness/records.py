"""What a fuzzing run records: the raw calls it made, the failures it found
and the totals (calls, reports by kind, machines booted).

A Failure carries what is needed to make it happen again: the seed, the
machine config, the last calls as text and, for the host driver, every raw
Call since the machine booted (harness/minimize.py replays and shrinks them).
"""
from collections import Counter
from dataclasses import dataclass, field

from mmemu.harness.machines import config_name


@dataclass
class Call:
    """One raw hypercall: its number and mailbox words, and scratch writes before it."""

    nr: int
    args: tuple
    name: str = "?"
    pokes: tuple = ()          # ((phys, bytes), ...) written before the call
    post: object = None        # fn(ret): the driver's bookkeeping after the call

    def __str__(self):
        words = ", ".join(f"0x{a:x}" for a in self.args)
        return f"{self.name}({words})"


@dataclass
class Failure:
    """A fault of mmemu's: what, where in the sequence, and how to get there again."""

    kind: str                  # error | check | pattern | result | oops | stopped
    step: int
    detail: str
    seed: int = None
    config: object = None      # the MachineConfig
    trail: list = field(default_factory=list)    # the last calls, as text
    calls: list = None                           # raw Calls since boot (host driver)

    def __str__(self):
        trail = "\n    ".join(self.trail[-12:])
        return (f"{self.kind} at step {self.step} (seed {self.seed}, {config_name(self.config)}): "
                f"{self.detail}\n  last calls:\n    {trail}")


@dataclass
class FuzzResult:
    """What a fuzzing run did: calls made, reports seen, failures found."""

    calls: int = 0
    runs: int = 0
    boots: int = 0
    by_call: Counter = field(default_factory=Counter)
    reports: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other):
        self.calls += other.calls
        self.runs += other.runs
        self.boots += other.boots
        self.by_call.update(other.by_call)
        self.reports.update(other.reports)
        self.failures += other.failures
        self.seconds += other.seconds

    def summary(self):
        nrep = sum(self.reports.values())
        return (f"{self.calls} calls ({len(self.by_call)} kinds) in {self.seconds:.1f} s, "
                f"{self.runs} runs on {self.boots} machines, {nrep} reports, "
                f"{len(self.failures)} failures")
