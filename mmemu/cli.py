"""The `mmemu` command: run guest programs, show the machine as Linux shows it.

Exit statuses: a guest's own status from `run`; 2 for a bad config or
command line; 3 for a program that does not build or load; 124 when a
guest's instruction or time budget runs out; 134 for BUG(); 137 for a panic
(panic_on_warn); 139 for an oops; 125 when mmemu itself failed.
"""
import argparse
import sys

from mmemu.errors import MmemuError

VIEWS = ("buddyinfo", "zoneinfo", "meminfo", "slabinfo", "vmallocinfo")


def _add_config(p):
    p.add_argument("--config", "-c", default="pc-1g",
                   help="machine config: a shipped name (pc-1g, pc-4g, ...) or a YAML path")


# -- a machine or a snapshot: what `mmemu VIEW` and the tools/ scripts look at --------

def add_target_arguments(parser):
    """--config NAME, --after PROGRAM, --snapshot FILE: what a tool looks at."""
    _add_config(parser)
    parser.add_argument("--after", metavar="PROGRAM",
                        help="run this guest program (C file or ELF) first")
    parser.add_argument("--snapshot", metavar="FILE",
                        help="look at a snapshot written by `mmemu run --dump` instead")


def open_target(config="pc-1g", after=None, snapshot=None):
    """A booted Machine (after running ``after`` on it), or a loaded Snapshot."""
    if snapshot:
        if after:
            raise MmemuError("--after runs a program on a live machine; not with --snapshot")
        from mmemu.views.snapshot import load_snapshot
        return load_snapshot(snapshot)
    from mmemu.machine import Machine
    machine = Machine(config, echo=False)
    if after:
        machine.run(after)
    return machine


def run_tool(parser, body, argv=None):
    """A tool's main(): parse argv, open the target, print body(target, args).

    body returns the text, or (text, exit status).  Exit status 0 unless
    body says otherwise, or the MmemuError's own (2 for a bad config or file).
    """
    args = parser.parse_args(argv)
    try:
        target = open_target(args.config, args.after, args.snapshot)
        result = body(target, args)
        text, status = result if isinstance(result, tuple) else (result, 0)
        sys.stdout.write(text)
        sys.stdout.flush()
    except MmemuError as e:
        print(f"{parser.prog}: {e}", file=sys.stderr)
        return e.exit_status
    except BrokenPipeError:
        return 0
    return status


def ptdump_text(machine, args):
    """What `mmemu ptdump` prints for its arguments (region, all_ptes, lookup)."""
    from mmemu.views import ptdump
    lookup = getattr(args, "lookup", None)
    if lookup:
        from mmemu.views.owner import lookup_text
        return lookup_text(machine, ptdump.parse_address(lookup))
    return ptdump.ptdump_text(machine, getattr(args, "region", None),
                              getattr(args, "all_ptes", False))



def _parser():
    ap = argparse.ArgumentParser(prog="mmemu", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="run a guest program (C file or ELF) and exit with its status")
    p.add_argument("program")
    _add_config(p)
    p.add_argument("--max-insns", type=int, default=None, help="instruction budget")
    p.add_argument("--timeout", type=float, default=None, help="wall-time budget in seconds")
    p.add_argument("--quiet", "-q", action="store_true", help="do not echo the kernel log")
    p.add_argument("--dump", metavar="FILE", help="write a vmcore-style snapshot at exit")
    p.add_argument("--gdb", metavar="PORT", type=int,
                   help="stop before main and serve the GDB remote protocol on PORT (0: any free port)")
    p = sub.add_parser("info", help="print the boot-time memory summary (dmesg style)")
    _add_config(p)
    p = sub.add_parser("build", help="compile a guest C program into an i386 ELF")
    p.add_argument("source")
    p.add_argument("-o", "--output")
    p = sub.add_parser("configs", help="list the shipped machine configs")
    for view in VIEWS:
        p = sub.add_parser(view, help=f"print /proc/{view}")
        add_target_arguments(p)
    p = sub.add_parser("ptdump", help="dump the kernel page tables like dump_pagetables.c")
    add_target_arguments(p)
    p.add_argument("--check", action="store_true", help="flag suspicious entries (W+X, USR in kernel)")
    p.add_argument("--region", help="only this region (e.g. vmalloc, pkmap, fixmap, lowmem)")
    p.add_argument("--all-ptes", action="store_true", help="list every PTE")
    p.add_argument("--lookup", metavar="ADDR", help="explain one virtual address")
    p = sub.add_parser("oracle", help="boot a real Linux 6.1 i386 kernel under QEMU and compare it with mmemu")
    from mmemu.oracle.command import add_arguments
    add_arguments(p)
    p = sub.add_parser("page-types", help="count frames per page-flag combination (tools/mm/page-types)")
    add_target_arguments(p)
    p.add_argument("-r", "--raw", action="store_true", help="raw flags")
    p.add_argument("-l", "--list", action="store_true", help="list pages")
    p.add_argument("-b", "--bits", action="append", default=[], help="only pages with these flags")
    p = sub.add_parser("memmap", help="draw physical memory as a PNG or SVG picture")
    add_target_arguments(p)
    p.add_argument("-o", "--output", required=True, help="picture file (.png or .svg)")
    p.add_argument("--span", help="only this physical range, START-END")
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except MmemuError as e:
        print(f"mmemu: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _dispatch(args):
    if args.cmd == "configs":
        from mmemu.config import list_configs
        print("\n".join(list_configs()))
        return 0
    if args.cmd == "build":
        from mmemu.runtime.build import build
        print(build(args.source, output=args.output))
        return 0
    if args.cmd == "run":
        return _run(args)
    if args.cmd == "oracle":
        from mmemu.oracle.command import run
        return run(args)
    from mmemu.machine import Machine
    if args.cmd == "info":
        from mmemu.views.dmesg import boot_summary
        m = Machine(args.config, echo=False)
        sys.stdout.write(boot_summary(m))
        return 0
    from mmemu.views.snapshot import proc_text
    m = open_target(args.config, getattr(args, "after", None), getattr(args, "snapshot", None))
    if args.cmd == "ptdump":
        from mmemu.views import ptdump
        if args.check:
            sys.stdout.write("\n".join(ptdump.ptdump_check(m)) + "\n")
        else:
            sys.stdout.write(ptdump_text(m, args))
        return 0
    if args.cmd == "page-types":
        from mmemu.views import page_types
        bits = [page_types.parse_bits_filter(b) for b in args.bits]
        sys.stdout.write(page_types.page_types_text(m, args.raw, (), bits, 1 if args.list else 0))
        return 0
    if args.cmd == "memmap":
        from mmemu.views import memmap
        memmap.write_memmap(m, args.output, None, args.span or "ram")
        return 0
    text = proc_text(m, args.cmd)
    if text is None:
        raise MmemuError(f"no /proc/{args.cmd} on this machine")
    sys.stdout.write(text)
    return 0


def _run(args):
    from mmemu.machine import Machine
    m = Machine(args.config, echo=not args.quiet)
    kw = {}
    if args.max_insns is not None:
        kw["max_insns"] = args.max_insns
    if args.timeout is not None:
        kw["timeout"] = args.timeout
    if args.gdb is not None:
        kw["gdb_port"] = args.gdb
    try:
        result = m.run(args.program, **kw)
    finally:
        if args.dump:
            from mmemu.views.snapshot import write_snapshot
            write_snapshot(m, args.dump)
    if args.quiet and result.console:
        sys.stdout.write(result.console)
    return result.status


if __name__ == "__main__":
    sys.exit(main())
