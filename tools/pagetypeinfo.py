#!/usr/bin/env python3
"""Print /proc/pagetypeinfo: free blocks per migratetype and order, pageblocks per
migratetype, as Linux prints it.

The same command as `mmemu pagetypeinfo`: both take their options from one
definition, in mmemu/cli_views.py (`--help` lists them).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.cli_views import tool_main  # noqa: E402


def main(argv=None):
    return tool_main("pagetypeinfo", argv)


if __name__ == "__main__":
    sys.exit(main())
