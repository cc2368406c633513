"""The `mmemu` command: run guest programs, show the machine as Linux shows it.

Exit statuses: a guest's own status from `run`; 2 for a bad config or
command line; 3 for a program that does not build or load; 124 when a
guest's instruction or time budget runs out; 134 for BUG(); 137 for a panic
(panic_on_warn); 139 for an oops; 125 when mmemu itself failed.
"""
import argparse
import sys

from mmemu.errors import MmemuError

VIEWS = ("buddyinfo", "zoneinfo", "meminfo", "slabinfo", "vmallocinfo", "pagetypeinfo")


def _add_config(p):
    p.add_argument("--config", "-c", default="pc-1g",
                   help="machine config: a shipped name (pc-1g, pc-4g, ...) or a YAML path")


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
    p.add_argument("--gdb", metavar="PORT", type=int, help="serve the GDB remote protocol")
    p = sub.add_parser("info", help="print the boot-time memory summary (dmesg style)")
    _add_config(p)
    p = sub.add_parser("build", help="compile a guest C program into an i386 ELF")
    p.add_argument("source")
    p.add_argument("-o", "--output")
    p = sub.add_parser("configs", help="list the shipped machine configs")
    for view in VIEWS:
        p = sub.add_parser(view, help=f"print /proc/{view}")
        _add_config(p)
        p.add_argument("--after", metavar="PROGRAM", help="run this guest program first")
    p = sub.add_parser("ptdump", help="dump the kernel page tables like dump_pagetables.c")
    _add_config(p)
    p.add_argument("--after", metavar="PROGRAM", help="run this guest program first")
    p.add_argument("--region", help="only this region (e.g. vmalloc, pkmap, fixmap, lowmem)")
    p.add_argument("--all-ptes", action="store_true", help="list every PTE")
    p.add_argument("--lookup", metavar="ADDR", help="explain one virtual address")
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
    from mmemu.machine import Machine
    if args.cmd == "info":
        from mmemu.views.dmesg import boot_summary
        m = Machine(args.config, echo=False)
        sys.stdout.write(boot_summary(m))
        return 0
    m = Machine(args.config, echo=False)
    if getattr(args, "after", None):
        m.run(args.after)
    if args.cmd == "ptdump":
        from mmemu.views import ptdump
        sys.stdout.write(ptdump.cli_text(m, args))
        return 0
    from mmemu.views import show
    sys.stdout.write(show(m, args.cmd))
    return 0


def _run(args):
    from mmemu.machine import Machine
    m = Machine(args.config, echo=not args.quiet)
    kw = {}
    if args.max_insns is not None:
        kw["max_insns"] = args.max_insns
    if args.timeout is not None:
        kw["timeout"] = args.timeout
    result = m.run(args.program, **kw)
    if args.quiet and result.console:
        sys.stdout.write(result.console)
    return result.status


if __name__ == "__main__":
    sys.exit(main())
