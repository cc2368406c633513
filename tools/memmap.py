#!/usr/bin/env python3
"""Draw physical memory as PNG or SVG: every page frame coloured by what holds it.

The same command as `mmemu memmap`: both take their options from one
definition, in mmemu/cli_views.py (`--help` lists them).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.cli_views import tool_main  # noqa: E402


def main(argv=None):
    return tool_main("memmap", argv)


if __name__ == "__main__":
    sys.exit(main())
