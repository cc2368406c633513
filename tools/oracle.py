#!/usr/bin/env python3
"""Check mmemu against a real Linux 6.1 i386 kernel booted under QEMU.

    tools/oracle.py [--config qemu-pc-1g] [--kernel VMLINUZ] [--markdown] ...

The same as `mmemu oracle`; see mmemu/oracle/command.py for the options and
exit statuses.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmemu.oracle.command import oracle_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(oracle_main())
