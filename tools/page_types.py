#!/usr/bin/env python3
"""Count page frames by flags, as Linux's tools/vm/page-types does.

    tools/page_types.py --config pc-1g          the summary table
    tools/page_types.py -r                      raw mode: reserved, compound, ...
    tools/page_types.py -l -b buddy             free frames, as ranges
    tools/page_types.py -a 0x100,0x200 -L       frames 0x100..0x1ff, one by one

The same code as mmemu.views.page_types (stable_page_flags() over mem_map).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.views import page_types  # noqa: E402
from mmemu.cli import add_target_arguments, run_tool  # noqa: E402


def parser():
    ap = argparse.ArgumentParser(prog="page-types", description=__doc__.splitlines()[0])
    add_target_arguments(ap)
    ap.add_argument("-r", "--raw", action="store_true", help="raw mode, for kernel developers")
    ap.add_argument("-a", "--addr", action="append", default=[], metavar="ADDR-SPEC",
                    help="walk a range of pages: N, N+M, N,M, N, or ,M (unit: pages)")
    ap.add_argument("-b", "--bits", action="append", default=[], metavar="BITS-SPEC",
                    help="walk pages with these bits: a,b (any), a,b=a, a,~b, =a,b (exact)")
    ap.add_argument("-l", "--list", action="store_true", help="show page details in ranges")
    ap.add_argument("-L", "--list-each", action="store_true",
                    help="show page details one by one")
    ap.add_argument("-N", "--no-summary", action="store_true", help="don't show summary info")
    ap.add_argument("-d", "--describe", metavar="FLAGS",
                    help="describe flags (a number or names) and exit")
    return ap


def body(machine, args):
    if args.describe:
        flags = page_types.parse_flag_names(args.describe)
        return (f"0x{flags:016x}\t{page_types.page_flag_name(flags)}\t"
                f"{page_types.page_flag_longname(flags)}\n")
    nr = machine.mem_map.nr_pages
    ranges = [page_types.parse_addr_range(spec, nr) for spec in args.addr]
    bits = [page_types.parse_bits_filter(spec) for spec in args.bits]
    mode = 2 if args.list_each else 1 if args.list else 0
    return page_types.page_types_text(machine, args.raw, ranges, bits, mode,
                                      summary=not args.no_summary)


def main(argv=None):
    return run_tool(parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
