"""The inspection views as commands: one argparse definition per view,
shared by `mmemu VIEW` and `tools/VIEW.py`.

A ViewCommand names a view, adds its options to a parser and turns the
parsed options and a target (a booted machine, the machine after a program,
or a snapshot) into text.  cli.py makes a subcommand of each; every
tools/<view>.py script is `tool_main("<view>")`.  So a script and its
subcommand cannot drift apart: same options, same output, same exit
statuses.  This is the command layer: it opens machines and snapshots;
the views (mmemu/views/) only read what they are given.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from mmemu.errors import MmemuError, UsageError

if TYPE_CHECKING:
    from mmemu.views.target import Target

EXIT_SIGPIPE = 128 + 13          # what a shell shows for a reader gone away (`yes | head`)


@dataclass(frozen=True)
class ViewCommand:
    """One view: its name (the subcommand; tools/ spells '-' as '_'), a
    one-line summary, examples for --help, its options, and its body."""

    name: str
    summary: str
    examples: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    body: Callable            # fn(target, args) -> text, or (text, exit status)
    needs_target: Callable = lambda args: True
    open_target: Optional[Callable] = None     # fn(args) -> target; default: --config/--after/--snapshot

    @property
    def tool(self):
        return self.name.replace("-", "_")


def add_target_arguments(parser):
    """--config, --after, --snapshot: what a view looks at."""
    parser.add_argument("--config", "-c", default="pc-1g",
                        help="machine config: a shipped name (pc-1g, pc-4g, ...) or a YAML path")
    parser.add_argument("--after", metavar="PROGRAM",
                        help="run this guest program (C file or ELF) first")
    parser.add_argument("--snapshot", metavar="FILE",
                        help="look at a snapshot written by `mmemu run --dump` instead")


def define(cmd, parser):
    """Give parser the target options and cmd's own: the one definition of cmd's options."""
    add_target_arguments(parser)
    cmd.add_arguments(parser)
    parser.set_defaults(view=cmd)
    return parser


def tool_parser(cmd):
    """The parser of tools/<view>.py: prog is the view's name."""
    ap = argparse.ArgumentParser(prog=cmd.name, description=cmd.summary,
                                 epilog="examples:\n" + cmd.examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    return define(cmd, ap)


def add_subcommand(sub, cmd):
    """`mmemu <view>`: the same options as the tool."""
    p = sub.add_parser(cmd.name, help=cmd.summary, description=cmd.summary,
                       epilog="examples:\n" + cmd.examples.replace(f"tools/{cmd.tool}.py",
                                                                    f"mmemu {cmd.name}"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    return define(cmd, p)


def run_view(cmd, args, prog):
    """Open the target, print cmd's text; the exit status.

    A bad config, file or option is one line on stderr, "<prog>: <what>",
    and the error's exit status (2 for bad input); a reader that went away
    (`| head`) ends the command quietly with 141, as SIGPIPE would.
    """
    try:
        target = None
        if cmd.needs_target(args):
            opener = cmd.open_target or _open_default
            target = opener(args)
        result = cmd.body(target, args)
        text, status = result if isinstance(result, tuple) else (result, 0)
        write_out(text)
    except MmemuError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return e.exit_status
    except BrokenPipeError:
        return stdout_gone()
    return status


def write_out(text, chunk=1 << 16):
    """Write text to stdout a pipe's worth at a time, so that a reader who
    has gone (`| head`) shows as EPIPE now, not as a flush error at exit."""
    for i in range(0, len(text), chunk):
        sys.stdout.write(text[i:i + chunk])
        sys.stdout.flush()


def check_output_path(path, what="the output"):
    """Refuse, before any work, an output file that cannot be created: its
    folder must exist (a UsageError, one line, exit 2)."""
    folder = os.path.dirname(os.path.abspath(str(path)))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {what} {path}: no folder {folder}")
    if os.path.isdir(str(path)):
        raise UsageError(f"cannot write {what} {path}: it is a folder")


def stdout_gone():
    """The reader of stdout went away: write nothing more, not even at exit.

    Python flushes stdout when it exits and would print a BrokenPipeError
    then; pointing the descriptor at /dev/null makes that flush silent.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_SIGPIPE


def tool_main(name, argv=None):
    """main() of tools/<name>.py."""
    cmd = COMMANDS[name.replace("_", "-")]
    args = tool_parser(cmd).parse_args(argv)
    return run_view(cmd, args, cmd.name)


def open_target(config: str = "pc-1g", after: Optional[str] = None,
                snapshot: Optional[str] = None) -> Target:
    """A booted Machine (after running ``after`` on it), or a loaded Snapshot."""
    if snapshot:
        if after:
            raise UsageError("--after runs a program on a live machine; not with --snapshot")
        from mmemu.views.snapshot import load_snapshot
        return load_snapshot(snapshot)
    from mmemu.machine import Machine
    machine = Machine(config, echo=False)
    if after:
        machine.run(after)
    return machine


def _open_default(args):
    return open_target(args.config, args.after, args.snapshot)


# -- /proc views -----------------------------------------------------------

def proc_view(target: Target, name: str, what: str) -> str:
    text = target.proc_text(name)
    if text is None:
        raise MmemuError(f"no {name}: {what} is not there")
    return text


def _no_options(parser):
    pass


def _summary_option(parser, what):
    parser.add_argument("--summary", "-s", action="store_true", help=what)


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


def _buddyinfo(target, args):
    text = proc_view(target, "buddyinfo", "the page allocator")
    if args.summary:
        lines = []
        for node, zone, counts in parse_buddyinfo(text):
            pages = sum(n << order for order, n in enumerate(counts))
            lines.append(f"Node {node}, zone {zone:>8}: {pages} free pages "
                         f"({pages * 4 // 1024} MiB)")
        text += "\n" + "\n".join(lines) + "\n"
    return text


def vmallocinfo_summary(text):
    """Areas and bytes (guard pages included) per kind and per caller."""
    from mmemu.views.owner import parse_vmallocinfo
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


def _vmallocinfo(target, args):
    text = proc_view(target, "vmallocinfo", "the vmalloc allocator")
    if args.summary:
        text += "\n" + vmallocinfo_summary(text)
    return text


# -- slabinfo: /proc/slabinfo, or tools/mm/slabinfo's report ---------------

def _slabinfo_arguments(parser):
    g = parser.add_argument_group("the slabinfo tool's report (tools/mm/slabinfo)")
    g.add_argument("-l", "--slabs", action="store_true",
                   help="one line per cache: objects, space, slabs, efficiency "
                        "(implied by the options below)")
    g.add_argument("-S", "--Size", action="store_true", help="sort by size")
    g.add_argument("-W", "--Waste", action="store_true", help="sort by wasted space (Loss)")
    g.add_argument("-i", "--inverted", action="store_true", help="inverted sort order")
    g.add_argument("-z", "--zero", action="store_true", help="include empty caches")
    g.add_argument("-e", "--empty", action="store_true", help="only empty caches")
    g.add_argument("-N", "--lines", type=int, default=-1, help="at most this many caches")
    g.add_argument("-B", "--Bytes", action="store_true", help="sizes in bytes, not K/M/G")
    g.add_argument("-v", "--validate", action="store_true",
                   help="validate every cache (exit status 1 if one is damaged)")


def _slabinfo(target, args):
    report = (args.slabs or args.Size or args.Waste or args.inverted or args.zero or args.empty
              or args.lines >= 0 or args.Bytes or args.validate)
    if not report:
        return proc_view(target, "slabinfo", "the slab allocator")
    from mmemu.views.slabinfo_tool import slabinfo_report
    return slabinfo_report(target, args)


# -- ptdump ----------------------------------------------------------------

def _ptdump_arguments(parser):
    from mmemu.views.ptdump import REGION_ALIASES
    parser.add_argument("--region", help="only this region: " + ", ".join(sorted(REGION_ALIASES))
                        + ", all, kernel-half, or START-END (hex)")
    parser.add_argument("--all-ptes", action="store_true",
                        help="one line per present entry, with its physical address")
    parser.add_argument("--lookup", metavar="ADDR",
                        help="explain one virtual address: entries, frame, owner")
    parser.add_argument("--check", action="store_true",
                        help="print only what the checks find (user pages in kernel space); "
                             "exit status 1 if they find something")


def _ptdump(target, args):
    from mmemu.views import ptdump
    if args.check:
        found = ptdump.ptdump_check(target)
        text = "".join(f"{line}\n" for line in found) or "ptdump: no suspicious mappings\n"
        return text, 1 if found else 0
    if args.lookup:
        from mmemu.views.owner import lookup_text
        return lookup_text(target, ptdump.parse_address(args.lookup))
    return ptdump.ptdump_text(target, args.region, args.all_ptes)


# -- page-types --------------------------------------------------------------

def _page_types_arguments(parser):
    parser.add_argument("-r", "--raw", action="store_true", help="raw mode, for kernel developers")
    parser.add_argument("-a", "--addr", action="append", default=[], metavar="ADDR-SPEC",
                        help="walk a range of pages: N, N+M, N,M, N, or ,M (unit: pages)")
    parser.add_argument("-b", "--bits", action="append", default=[], metavar="BITS-SPEC",
                        help="walk pages with these bits: a,b (any), a,b=a, a,~b, =a,b (exact)")
    parser.add_argument("-l", "--list", action="store_true", help="show page details in ranges")
    parser.add_argument("-L", "--list-each", action="store_true",
                        help="show page details one by one")
    parser.add_argument("-N", "--no-summary", action="store_true", help="don't show summary info")
    parser.add_argument("-d", "--describe", metavar="FLAGS",
                        help="describe flags (a number or names) and exit")


def _page_types(target, args):
    from mmemu.views import page_types
    if args.describe:
        flags = page_types.parse_flag_names(args.describe)
        return (f"0x{flags:016x}\t{page_types.page_flag_name(flags)}\t"
                f"{page_types.page_flag_longname(flags)}\n")
    nr = target.mem_map.nr_pages
    ranges = [page_types.parse_addr_range(spec, nr) for spec in args.addr]
    bits = [page_types.parse_bits_filter(spec) for spec in args.bits]
    mode = 2 if args.list_each else 1 if args.list else 0
    return page_types.page_types_text(target, args.raw, ranges, bits, mode,
                                      summary=not args.no_summary)


def _page_types_needs_target(args):
    if args.describe:
        from mmemu.views import page_types
        page_types.parse_flag_names(args.describe)     # a bad name fails before a boot
        return False
    return True


# -- memmap --------------------------------------------------------------------

def _memmap_arguments(parser):
    from mmemu.cli_memmap import add_arguments
    add_arguments(parser)


def _memmap(target, args):
    from mmemu.cli_memmap import body
    return body(target, args)


def _memmap_open(args):
    from mmemu.cli_memmap import open_target
    check_output_path(args.output, "the picture")       # before any boot or run
    return open_target(args)


# -- the table -------------------------------------------------------------------

COMMANDS = {cmd.name: cmd for cmd in (
    ViewCommand("buddyinfo", "print /proc/buddyinfo: free blocks per zone and order",
                "  tools/buddyinfo.py --config pc-4g\n"
                "  tools/buddyinfo.py --after guest/examples/hello.c --summary\n",
                lambda p: _summary_option(p, "add free pages and MiB per zone"), _buddyinfo),
    ViewCommand("pagetypeinfo", "print /proc/pagetypeinfo: free blocks per migratetype and "
                                "order, pageblocks per migratetype",
                "  tools/pagetypeinfo.py --config pc-1g\n"
                "  tools/pagetypeinfo.py --after guest/examples/fragment.c\n", _no_options,
                lambda t, a: proc_view(t, "pagetypeinfo", "the page allocator")),
    ViewCommand("zoneinfo", "print /proc/zoneinfo: watermarks and counters per zone",
                "  tools/zoneinfo.py --config numa-2n\n", _no_options,
                lambda t, a: proc_view(t, "zoneinfo", "the page allocator")),
    ViewCommand("iomem", "print /proc/iomem: RAM, reserved ranges, device windows, "
                         "mmemu's doorbell and the ranges a host program keeps",
                "  tools/iomem.py --config pc-1g\n", _no_options,
                lambda t, a: proc_view(t, "iomem", "the memory map")),
    ViewCommand("meminfo", "print /proc/meminfo",
                "  tools/meminfo.py --after guest/examples/vmalloc_tour.c\n", _no_options,
                lambda t, a: proc_view(t, "meminfo", "the page allocator")),
    ViewCommand("slabinfo", "print /proc/slabinfo, or (-l, -S, -W, -v, ...) the slabinfo "
                            "tool's report",
                "  tools/slabinfo.py --after prog.c         /proc/slabinfo\n"
                "  tools/slabinfo.py -l                     the report, by name\n"
                "  tools/slabinfo.py -S                     largest caches first\n"
                "  tools/slabinfo.py -W                     most wasted space first\n"
                "  tools/slabinfo.py -v                     validate every cache\n",
                _slabinfo_arguments, _slabinfo),
    ViewCommand("vmallocinfo", "print /proc/vmallocinfo: every vmalloc, vmap and ioremap area",
                "  tools/vmallocinfo.py --after prog.c\n"
                "  tools/vmallocinfo.py --snapshot vmcore --summary\n",
                lambda p: _summary_option(p, "add totals per kind and per caller"), _vmallocinfo),
    ViewCommand("ptdump", "dump the kernel page tables as arch/x86/mm/dump_pagetables.c does",
                "  tools/ptdump.py --config pc-1g                 the whole address space\n"
                "  tools/ptdump.py --region vmalloc --all-ptes    one region, every entry\n"
                "  tools/ptdump.py --lookup 0xc1000000            one address and its owner\n"
                "  tools/ptdump.py --snapshot vmcore --check      only the sanity checks\n",
                _ptdump_arguments, _ptdump),
    ViewCommand("page-types", "count page frames by flags, as Linux's tools/mm/page-types does",
                "  tools/page_types.py --config pc-1g          the summary table\n"
                "  tools/page_types.py -r                      raw mode: reserved, compound, ...\n"
                "  tools/page_types.py -l -b buddy             free frames, as ranges\n"
                "  tools/page_types.py -a 0x100,0x200 -L       frames 0x100..0x1ff, one by one\n"
                "  tools/page_types.py -d 0x400                what a flags value means\n",
                _page_types_arguments, _page_types, _page_types_needs_target),
    ViewCommand("memmap", "draw physical memory as a PNG or SVG picture: every page frame "
                          "coloured by what holds it",
                "  tools/memmap.py -o boot.png                        the booted machine\n"
                "  tools/memmap.py --after prog.c -o after.png        what prog.c changed, "
                "outlined\n"
                "  tools/memmap.py --before a.c --after b.c -o b.svg  what b.c changed after a.c\n"
                "  tools/memmap.py --span 16M-32M -o normal.png       one physical range\n",
                _memmap_arguments, _memmap, open_target=_memmap_open),
)}
