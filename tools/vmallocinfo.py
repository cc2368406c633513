#!/usr/bin/env python3
"""Print /proc/vmallocinfo: every vmalloc, vmap and ioremap area.

    tools/vmallocinfo.py --after prog.c
    tools/vmallocinfo.py --snapshot vmcore --summary

--summary adds the number of areas and their size per kind and per caller.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.errors import MmemuError  # noqa: E402
from mmemu.views.owner import parse_vmallocinfo  # noqa: E402
from mmemu.cli import add_target_arguments, run_tool  # noqa: E402
from mmemu.views.snapshot import proc_text  # noqa: E402


def parser():
    ap = argparse.ArgumentParser(prog="vmallocinfo", description=__doc__.splitlines()[0])
    add_target_arguments(ap)
    ap.add_argument("--summary", "-s", action="store_true",
                    help="add totals per kind and per caller")
    return ap


def summary(text):
    """Areas and bytes (guard pages included) per kind and per caller."""
    by_kind, by_caller = {}, {}
    for area in parse_vmallocinfo(text):
        for table, key in ((by_kind, area.kind), (by_caller, area.caller or "-")):
            n, size = table.get(key, (0, 0))
            table[key] = (n + 1, size + area.size)
    lines = []
    for title, table in (("kind", by_kind), ("caller", by_caller)):
        lines.append(f"{title:<32} {'areas':>6} {'bytes':>12}")
        for key in sorted(table, key=lambda k: -table[k][1]):
            n, size = table[key]
            lines.append(f"{key:<32} {n:6d} {size:12d}")
    return "\n".join(lines) + "\n"


def body(machine, args):
    text = proc_text(machine, "vmallocinfo")
    if text is None:
        raise MmemuError("no vmallocinfo: the vmalloc allocator is not there")
    if args.summary:
        text += "\n" + summary(text)
    return text


def main(argv=None):
    return run_tool(parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
