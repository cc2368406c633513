"""The kernel log: printk with KERN_* levels, kept like the dmesg ring and
echoed to a console stream.

Every subsystem reports through one KernelLog owned by the machine, so that a
report's lines reach the user in order and tests can read them back.  The
``where`` hook, set by the runtime, names the guest code that made the
current call ("main+0x1c/0x80"), for reports that Linux would end with a
caller or a backtrace.
"""
import sys
from dataclasses import dataclass

KERN_EMERG, KERN_ALERT, KERN_CRIT, KERN_ERR = 0, 1, 2, 3
KERN_WARNING, KERN_NOTICE, KERN_INFO, KERN_DEBUG = 4, 5, 6, 7
KERN_DEFAULT = 4
LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")


@dataclass
class LogLine:
    level: int
    text: str


class KernelLog:
    """printk's ring buffer and console."""

    def __init__(self, console=None, echo=True):
        self.lines = []
        self.console = console
        self.echo = echo
        self.where = lambda: None       # guest caller, set by the runtime
        self.backtrace = lambda: []     # guest backtrace lines, set by the runtime
        self.warnings = 0               # WARN/BUG-class reports so far
        self.on_warn = None             # fn(text) for every warn(): the runtime collects them

    def printk(self, text, level=KERN_INFO):
        """printk(): one or more lines at a level; a trailing newline is implied."""
        for line in text.rstrip("\n").split("\n"):
            self.lines.append(LogLine(level, line))
            if self.echo:
                out = self.console or sys.stdout
                out.write(line + "\n")

    def warn(self, text):
        """A report Linux prints as a warning or BUG: counted for panic_on_warn."""
        self.warnings += 1
        if self.on_warn is not None:
            self.on_warn(text)
        self.printk(text, KERN_WARNING)

    def text(self, since=0):
        return "\n".join(ln.text for ln in self.lines[since:])

    def mark(self):
        return len(self.lines)
