#!/usr/bin/env python3
"""Dump the kernel page tables as arch/x86/mm/dump_pagetables.c prints them.

    tools/ptdump.py --config pc-1g                 the whole address space
    tools/ptdump.py --region vmalloc --all-ptes    one region, every entry
    tools/ptdump.py --lookup 0xc0100000            one address and its owner
    tools/ptdump.py --snapshot vmcore --check      only the sanity checks

The same code as `mmemu ptdump` (mmemu.views.ptdump).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.views import ptdump  # noqa: E402
from mmemu.cli import add_target_arguments, ptdump_text, run_tool  # noqa: E402


def parser():
    ap = argparse.ArgumentParser(prog="ptdump", description=__doc__.splitlines()[0],
                                 epilog="regions: " + ", ".join(sorted(ptdump.REGION_ALIASES))
                                 + ", all, kernel-half, or START-END (hex)")
    add_target_arguments(ap)
    ap.add_argument("--region", help="only this region (user, lowmem, vmalloc, pkmap, "
                                     "fixmap, ... or START-END)")
    ap.add_argument("--all-ptes", action="store_true",
                    help="one line per present entry, with its physical address")
    ap.add_argument("--lookup", metavar="ADDR",
                    help="explain one virtual address: entries, frame, owner")
    ap.add_argument("--check", action="store_true",
                    help="print only what the checks find (W+X, user pages in kernel space)")
    return ap


def body(machine, args):
    if args.check:
        found = ptdump.ptdump_check(machine)
        text = "".join(f"{line}\n" for line in found) or "ptdump: no suspicious mappings\n"
        return text, 1 if found else 0
    return ptdump_text(machine, args)


def main(argv=None):
    return run_tool(parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
