#!/usr/bin/env python3
"""Dump the kernel page tables as arch/x86/mm/dump_pagetables.c prints them.

The same command as `mmemu ptdump`: both take their options from one
definition, in mmemu/cli_views.py (`--help` lists them).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.cli_views import tool_main  # noqa: E402


def main(argv=None):
    return tool_main("ptdump", argv)


if __name__ == "__main__":
    sys.exit(main())
