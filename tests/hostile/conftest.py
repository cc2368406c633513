"""The hostile corpus's helper: run the `mmemu` command in a fresh Python and
measure what it cost the host.

``mmemu_cli(*args)`` returns a CliRun: the exit status, stdout, stderr and
the process's peak resident memory (VmHWM of /proc/self/status, in KiB: the
high-water mark of the interpreter's own address space.  Not getrusage()'s
ru_maxrss, which carries over the forking parent's resident size across
exec, so a large pytest process would inflate it).  The file-size cases assert
that peak: a file must never make the host allocate what its sizes claim.
"""
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

# main() in-process, then the peak RSS on the fd MMEMU_PEAK_FD names (stderr
# stays the command's own).
_DRIVER = """
import os, sys
from mmemu.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as e:                       # argparse's exit 2
    status = e.code
with open("/proc/self/status") as f:
    peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
os.write(int(os.environ["MMEMU_PEAK_FD"]), peak.encode())
sys.exit(status)
"""


@dataclass
class CliRun:
    status: int
    out: str
    err: str
    peak_kib: int

    @property
    def err_lines(self):
        return self.err.strip().splitlines()


def run_mmemu(*args, cwd=ROOT, timeout=300):
    """`mmemu args...` in a fresh interpreter: a CliRun."""
    r_fd, w_fd = os.pipe()
    try:
        env = dict(os.environ, MMEMU_PEAK_FD=str(w_fd))
        proc = subprocess.run([sys.executable, "-c", _DRIVER, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              pass_fds=(w_fd,), env=env)
    finally:
        os.close(w_fd)
    with os.fdopen(r_fd) as f:
        peak = f.read()
    return CliRun(proc.returncode, proc.stdout, proc.stderr, int(peak or 0))


@pytest.fixture
def mmemu_cli():
    return run_mmemu


@pytest.fixture(scope="session")
def baseline_peak_kib():
    """The peak of `mmemu configs`: what merely starting mmemu costs here."""
    return run_mmemu("configs").peak_kib
