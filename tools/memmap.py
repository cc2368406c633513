#!/usr/bin/env python3
"""Draw physical memory: every page frame coloured by its owner, as PNG or SVG.

    tools/memmap.py --config pc-1g -o memmap.png
    tools/memmap.py --after prog.c -o after.svg --span all

Free blocks are green (darker for higher orders), slab pages take a colour
per cache; vmalloc'd and kmap'd pages, page tables, the kernel image,
mem_map, other reservations, allocated pages, devices and holes each have
their own; the strips on the left mark nodes and zones; the legend names
every colour used.  The same code as mmemu.views.memmap.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.views.memmap import write_memmap  # noqa: E402
from mmemu.cli import add_target_arguments, run_tool  # noqa: E402


def parser():
    ap = argparse.ArgumentParser(prog="memmap", description=__doc__.splitlines()[0])
    add_target_arguments(ap)
    ap.add_argument("-o", "--output", default="memmap.png",
                    help="the picture to write: .png or .svg (default memmap.png)")
    ap.add_argument("--format", choices=("png", "svg"),
                    help="the format, when the file name does not say it")
    ap.add_argument("--span", choices=("ram", "all"), default="ram",
                    help="ram: the frames mem_map covers (default); all: the whole 4 GiB")
    ap.add_argument("--cols", type=int, help="frames per row (default: about square)")
    ap.add_argument("--scale", type=int, help="pixels per frame, each way")
    return ap


def body(machine, args):
    pic = write_memmap(machine, args.output, args.format, args.span, args.cols, args.scale)
    return (f"{args.output}: {pic.width}x{pic.height}, {pic.frames} frames, "
            f"{pic.cols} per row, {pic.scale} px each\n")


def main(argv=None):
    return run_tool(parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
