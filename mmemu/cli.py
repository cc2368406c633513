"""The `mmemu` command: run guest programs, show the machine as Linux shows it.

Exit statuses: a guest's own status from `run`; 2 for a bad config or
command line; 3 for a program that does not build or load; 124 when a
guest's instruction or time budget runs out; 134 for BUG(); 137 for a panic
(panic_on_warn); 139 for an oops; 125 when mmemu itself failed; 141 when
the reader of its output went away (`mmemu run prog.c | head -1`), as a
SIGPIPE gives.  The views (`mmemu ptdump`, `page-types`, `memmap`, ...) are
defined in mmemu.cli_views, with the same options as tools/<view>.py.
"""
import argparse
import math
import sys

from mmemu.errors import MmemuError

MAX_TIMEOUT = 1e9          # seconds; Unicorn takes the budget in microseconds, as a 64-bit int


def _add_config(p):
    p.add_argument("--config", "-c", default="pc-1g",
                   help="machine config: a shipped name (pc-1g, pc-4g, ...) or a YAML path")


def _count(text):
    """--max-insns: a whole number of instructions, 0 or more."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if not 0 <= value < 1 << 63:
        raise argparse.ArgumentTypeError(f"{value} is out of range (0 .. 2^63-1; 0: no budget)")
    return value


def _seconds(text):
    """--timeout: seconds, finite and 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(f"{text[:40]} is not a time budget (0 .. {MAX_TIMEOUT:g} "
                                         "seconds; 0: no budget)")
    return value


def _port(text):
    """--gdb: a TCP port, 0 .. 65535 (0: any free port)."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0 .. 65535; 0: any free one)")
    return value


def _parser():
    from mmemu.cli_views import COMMANDS, add_subcommand
    ap = argparse.ArgumentParser(prog="mmemu", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="run a guest program (C file or ELF) and exit with its status")
    p.add_argument("program")
    _add_config(p)
    p.add_argument("--max-insns", type=_count, default=None,
                   help="instruction budget: a deterministic stop, at the cost of a per-"
                        "instruction count (none by default; 0 = none)")
    p.add_argument("--timeout", type=_seconds, default=None,
                   help="wall-time budget in seconds (default 60; 0 = none)")
    p.add_argument("--quiet", "-q", action="store_true", help="do not echo the kernel log")
    p.add_argument("--dump", metavar="FILE", help="write a vmcore-style snapshot at exit")
    p.add_argument("--gdb", metavar="PORT", type=_port,
                   help="stop before main and serve the GDB remote protocol on PORT (0: any free port)")
    p.add_argument("--panic-on-warn", action="store_true",
                   help="panic at the first WARN, as the panic_on_warn sysctl (or the "
                        "config's debug.panic_on_warn)")
    p = sub.add_parser("info", help="print the boot-time memory summary (dmesg style)")
    _add_config(p)
    p = sub.add_parser("build", help="compile a guest C program into an i386 ELF")
    p.add_argument("source")
    p.add_argument("-o", "--output")
    _add_config(p)
    sub.add_parser("configs", help="list the shipped machine configs")
    for cmd in COMMANDS.values():            # the same definitions as tools/<view>.py
        add_subcommand(sub, cmd)
    p = sub.add_parser("oracle", help="boot a real Linux 6.1 i386 kernel under QEMU and compare "
                                      "it with mmemu")
    from mmemu.oracle.command import add_arguments
    add_arguments(p)
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    view = getattr(args, "view", None)
    if view is not None:
        from mmemu.cli_views import run_view
        return run_view(view, args, "mmemu")
    try:
        status = _dispatch(args)
        sys.stdout.flush()
        return status
    except MmemuError as e:
        print(f"mmemu: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        from mmemu.cli_views import stdout_gone
        return stdout_gone()


def _dispatch(args):
    if args.cmd == "configs":
        from mmemu.config import list_configs
        print("\n".join(list_configs()))
        return 0
    if args.cmd == "build":
        from mmemu.runtime.build import build
        from mmemu.config import flavour_of, load_config
        from mmemu.kernel.image import KernelImage
        cfg = load_config(args.config)
        image = KernelImage.from_config(cfg.kernel)
        print(build(args.source, output=args.output, image=image, pae=flavour_of(cfg).pae))
        return 0
    if args.cmd == "run":
        return _run(args)
    if args.cmd == "oracle":
        from mmemu.oracle.command import run
        return run(args)
    from mmemu.machine import Machine
    from mmemu.views.dmesg import boot_summary
    m = Machine(args.config, echo=False)
    sys.stdout.write(boot_summary(m))
    return 0


class PipeConsole:
    """stdout for the kernel log of `mmemu run`.

    When the reader goes away (`mmemu run prog.c | head -1`) a write fails
    with EPIPE: from then on nothing more is written and on_gone() ends the
    run, as SIGPIPE ends `yes` in `yes | head`.  The exception never reaches
    the hypercall that printed.
    """

    def __init__(self, stream):
        self.stream = stream
        self.gone = False
        self.on_gone = lambda: None

    def write(self, text):
        if self.gone:
            return
        try:
            self.stream.write(text)
        except BrokenPipeError:
            self._lost()

    def flush(self):
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._lost()

    def _lost(self):
        self.gone = True
        self.on_gone()


def _run(args):
    from mmemu.config import load_config
    from mmemu.machine import Machine
    from mmemu.cli_views import check_output_path, stdout_gone
    if args.dump:
        check_output_path(args.dump, "the snapshot")     # before the run, not after
    cfg = load_config(args.config)
    if args.panic_on_warn:
        cfg.panic_on_warn = True
    console = PipeConsole(sys.stdout)
    m = Machine(cfg, console=console, echo=not args.quiet)
    console.on_gone = lambda: m.runtime.stop("killed")
    if args.quiet:                   # the guest's own lines, as they come; no kernel log
        m.runtime.on_console = console.write
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
            _dump(m, args.dump)
    console.flush()
    if console.gone:
        return stdout_gone()
    return result.status


def _dump(m, path):
    """--dump: the snapshot at exit; a write that fails is one line (exit 2)."""
    from mmemu.errors import UsageError
    from mmemu.views.snapshot import write_snapshot
    try:
        write_snapshot(m, path)
    except OSError as e:
        raise UsageError(f"cannot write the snapshot {path}: {e.strerror}") from None


if __name__ == "__main__":
    sys.exit(main())
