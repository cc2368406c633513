#!/usr/bin/env python3
"""Print /proc/buddyinfo: free blocks per zone and order, as Linux prints it.

    tools/buddyinfo.py --config pc-4g
    tools/buddyinfo.py --after guest/examples/hello.c --summary

--summary adds, per zone, the free pages and MiB the counts add up to.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.errors import MmemuError  # noqa: E402
from mmemu.cli import add_target_arguments, run_tool  # noqa: E402
from mmemu.views.snapshot import proc_text  # noqa: E402


def parser():
    ap = argparse.ArgumentParser(prog="buddyinfo", description=__doc__.splitlines()[0])
    add_target_arguments(ap)
    ap.add_argument("--summary", "-s", action="store_true",
                    help="add free pages and MiB per zone")
    return ap


def parse_buddyinfo(text):
    """[(node, zone, [count per order])] from buddyinfo lines."""
    out = []
    for line in text.splitlines():
        head, _, counts = line.partition("zone")
        if not head.startswith("Node"):
            continue
        zone, *numbers = counts.split()
        out.append((int(head.split()[1].rstrip(",")), zone, [int(n) for n in numbers]))
    return out


def body(machine, args):
    text = proc_text(machine, "buddyinfo")
    if text is None:
        raise MmemuError("no buddyinfo: the page allocator is not there")
    if args.summary:
        lines = []
        for node, zone, counts in parse_buddyinfo(text):
            pages = sum(n << order for order, n in enumerate(counts))
            lines.append(f"Node {node}, zone {zone:>8}: {pages} free pages "
                         f"({pages * 4 // 1024} MiB)")
        text += "\n" + "\n".join(lines) + "\n"
    return text


def main(argv=None):
    return run_tool(parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
