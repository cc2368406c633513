"""The kernel log: printk with KERN_* levels, kept like the dmesg ring and
echoed to a console stream.

Every subsystem prints through one KernelLog owned by the machine, so that
lines reach the user in order and tests can read them back.  Reports (WARN,
BUG, oops, Bad page state, ...) are made by the machine's Reporter
(kernel/panic.py), which formats them and prints them here.

Models kernel/printk's ring buffer as Debian's 686 kernel sizes it:
log_buf_len 128 KiB (CONFIG_LOG_BUF_SHIFT=17) of text and one record
descriptor per 32 bytes of it (4096 records, printk_ringbuffer's
_DESCS_COUNT()).  Older records drop out as new ones come, so a guest
printing without end costs the host a fixed amount of memory; the console
still gets every line as it is printed.  Differs: a record's text is
counted as its length, without the data ring's block headers.
"""
import sys
from collections import deque
from dataclasses import dataclass
from typing import Optional, TextIO

KERN_EMERG, KERN_ALERT, KERN_CRIT, KERN_ERR = 0, 1, 2, 3
KERN_WARNING, KERN_NOTICE, KERN_INFO, KERN_DEBUG = 4, 5, 6, 7
KERN_DEFAULT = 4
LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")

LOG_BUF_SHIFT = 17                      # CONFIG_LOG_BUF_SHIFT of the 686 build
LOG_BUF_LEN = 1 << LOG_BUF_SHIFT        # bytes of text the ring holds
LOG_RECORDS = 1 << (LOG_BUF_SHIFT - 5)  # _DESCS_COUNT(): one record per 32 bytes
LINE_MAX = 1024                         # PRINTKRB_RECORD_MAX / LOG_LINE_MAX: longer lines are cut


@dataclass
class LogLine:
    level: int
    text: str


class KernelLog:
    """printk's ring buffer and console.

    ``mark()`` is the sequence number of the next record; ``text(since)``
    the records from a mark on that the ring still holds.  ``dropped``
    counts the records that fell out.
    """

    def __init__(self, console: Optional[TextIO] = None, echo: bool = True,
                 size: int = LOG_BUF_LEN, records: int = LOG_RECORDS) -> None:
        self._ring: deque[tuple[int, LogLine]] = deque()
        self._bytes = 0
        self._seq = 0                   # the sequence number of the next record
        self.size, self.max_records = size, records
        self.dropped = 0
        self.console = console
        self.echo = echo

    @property
    def lines(self) -> list[LogLine]:
        """The records the ring holds, oldest first (LogLine)."""
        return [ln for _, ln in self._ring]

    def printk(self, text: str, level: int = KERN_INFO) -> None:
        """printk(): one or more lines at a level; a trailing newline is implied."""
        for line in text.rstrip("\n").split("\n"):
            line = line[:LINE_MAX]
            self._store(LogLine(level, line))
            if self.echo:
                out = self.console or sys.stdout
                out.write(line + "\n")

    def _store(self, record: LogLine) -> None:
        ring = self._ring
        ring.append((self._seq, record))
        self._seq += 1
        self._bytes += len(record.text) + 1
        while self._bytes > self.size or len(ring) > self.max_records:
            _, old = ring.popleft()
            self._bytes -= len(old.text) + 1
            self.dropped += 1

    def text(self, since: int = 0) -> str:
        """The text of the records from sequence number since on (those still held)."""
        return "\n".join(ln.text for seq, ln in self._ring if seq >= since)

    def mark(self) -> int:
        return self._seq

    def clear(self) -> None:
        """dmesg -C: empty the ring (sequence numbers go on)."""
        self._ring.clear()
        self._bytes = 0
