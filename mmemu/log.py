"""The kernel log: printk with KERN_* levels, kept like the dmesg ring and
echoed to a console stream.

Every subsystem prints through one KernelLog owned by the machine, so that
lines reach the user in order and tests can read them back.  Reports (WARN,
BUG, oops, Bad page state, ...) are made by the machine's Reporter
(kernel/panic.py), which formats them and prints them here.
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

    def printk(self, text, level=KERN_INFO):
        """printk(): one or more lines at a level; a trailing newline is implied."""
        for line in text.rstrip("\n").split("\n"):
            self.lines.append(LogLine(level, line))
            if self.echo:
                out = self.console or sys.stdout
                out.write(line + "\n")

    def text(self, since=0):
        return "\n".join(ln.text for ln in self.lines[since:])

    def mark(self):
        return len(self.lines)
