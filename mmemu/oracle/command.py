"""``mmemu oracle``: boot a config on the real kernel and on mmemu, compare.

    mmemu oracle [--config NAME|PATH] [--kernel VMLINUZ] [--busybox PATH]
                 [--capture FILE | --save-capture FILE] [--timeout S] [--markdown]
                 [--real-only] [--results FILE [--configs NAME ...]]

Exit status: 0 when every exact field (and mmemu's watermark formulas on the
real kernel's managed counts) matches; 1 when one differs; 2 for a config
the real kernel cannot boot the same way (not QEMU pc's RAM map, NUMA, a
different ZONE_DMA); 4 when the real kernel could not be had or booted
(the message says what is missing).
"""
import argparse
import sys
from pathlib import Path

from mmemu.errors import UsageError
from mmemu.oracle import OracleError

DEFAULT_CONFIG = "qemu-pc-1g"


def add_arguments(parser):
    """The oracle's options, on an argparse (sub)parser."""
    parser.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                        help="a QEMU pc config: a shipped name (qemu-pc-1g, qemu-pc-128m, "
                             "...) or a YAML path (default: %(default)s)")
    parser.add_argument("--kernel", metavar="VMLINUZ",
                        help="boot this i386 bzImage instead of Debian's 6.1 686 kernel")
    parser.add_argument("--busybox", metavar="PATH",
                        help="a static i386 busybox for the initramfs "
                             "(default: Debian's busybox-static)")
    parser.add_argument("--capture", metavar="FILE",
                        help="compare with a stored capture instead of booting")
    parser.add_argument("--save-capture", metavar="FILE",
                        help="write the real kernel's capture to FILE")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed for the real boot (default 180)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as markdown")
    parser.add_argument("--real-only", action="store_true",
                        help="only boot the real kernel and print its numbers")
    parser.add_argument("--results", metavar="FILE",
                        help="run every shipped qemu-pc-* config (or those given with "
                             "--configs) and write the markdown report to FILE")
    parser.add_argument("--configs", nargs="+", metavar="NAME",
                        help="the configs for --results")
    return parser


def oracle_main(argv=None):
    """tools/oracle.py and ``python -m mmemu.oracle.command``: parse, run, print errors."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="oracle", description="Check mmemu against a real Linux 6.1 i386 kernel."))
    args = parser.parse_args(argv)
    from mmemu.errors import MmemuError
    try:
        return run(args)
    except MmemuError as exc:
        print(f"mmemu oracle: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130


def run(args, out=None):
    """Run the oracle for parsed arguments; prints the table, returns the exit status."""
    out = out or sys.stdout
    if args.results:
        return _run_results(args, out)
    if args.real_only:
        return _run_real_only(args, out)
    result = run_oracle(args.config, kernel=args.kernel, busybox=args.busybox,
                        capture=args.capture, save_capture=args.save_capture,
                        timeout=args.timeout, log=_log)
    if args.markdown:
        out.write(result.markdown())
    else:
        out.write(result.text())
    return 1 if result.comparison.failures else 0


def _run_results(args, out):
    from mmemu.oracle.results import results_markdown, run_family
    results = run_family(args.configs, kernel=args.kernel, busybox=args.busybox, log=_log)
    Path(args.results).write_text(results_markdown(results))
    bad = 0
    for name, result, error in results:
        verdict = result.comparison.summary() if result else f"not run: {error}"
        out.write(f"{name}: {verdict}\n")
        bad |= result is None or bool(result.comparison.failures)
    out.write(f"wrote {args.results}\n")
    return 1 if bad else 0


def _run_real_only(args, out):
    from mmemu.oracle.compare import format_real
    cfg, params, text, seconds = capture_real(
        args.config, kernel=args.kernel, busybox=args.busybox, capture=args.capture,
        save_capture=args.save_capture, timeout=args.timeout, log=_log)
    linux = real_report_checked(text, params)
    head = [f"Linux {linux.kernel} booted as {cfg.name}: -m {params.qemu_m} "
            f"\"{params.cmdline}\"" + (f" ({seconds:.1f} s)" if seconds else "")]
    out.write(format_real(linux, head))
    return 0


def _log(text):
    print(text, file=sys.stderr, flush=True)


class OracleResult:
    """One config's comparison with what it took."""

    def __init__(self, cfg, params, linux, mmemu, comparison, seconds=None):
        self.cfg, self.params = cfg, params
        self.linux, self.mmemu = linux, mmemu
        self.comparison = comparison
        self.seconds = seconds

    def header(self):
        lines = [f"mmemu oracle: {self.cfg.name} against Linux {self.linux.kernel or '(?)'}",
                 f"  qemu-system-i386 -M pc -cpu qemu32 -m {self.params.qemu_m}; "
                 f"kernel command line: {self.params.cmdline}"]
        if self.params.min_free_kbytes is not None:
            lines.append(f"  sysctl vm.min_free_kbytes={self.params.min_free_kbytes}")
        if self.seconds is not None:
            lines.append(f"  real boot and capture: {self.seconds:.1f} s")
        lines += [f"  note: {n}" for n in self.params.notes]
        lines.append("  marks: ok exact match, !! exact field differs, ~ differs for the "
                     "reason given, = equal, ?? a capture cross-check failed")
        return lines

    def text(self):
        from mmemu.oracle.compare import format_text
        return format_text(self.comparison, self.header())

    def markdown(self):
        from mmemu.oracle.compare import format_markdown
        return format_markdown(self.comparison, f"{self.cfg.name} (`-m {self.params.qemu_m}`,"
                                                f" `{self.params.cmdline}`)")


def run_oracle(config, kernel=None, busybox=None, capture=None, save_capture=None,
               timeout=None, log=None):
    """Boot config on the real kernel (or read a stored capture) and on mmemu.

    Returns an OracleResult.  Raises UsageError for a config the real
    kernel cannot be booted with, OracleError when the real kernel cannot
    be had, booted or parsed.
    """
    from mmemu.oracle.compare import compare
    cfg, params, text, seconds = capture_real(config, kernel, busybox, capture,
                                              save_capture, timeout, log)
    linux = real_report_checked(text, params)
    mine = mmemu_report(cfg)
    return OracleResult(cfg, params, linux, mine, compare(linux, mine), seconds)


def capture_real(config, kernel=None, busybox=None, capture=None, save_capture=None,
                 timeout=None, log=None):
    """Load and check config, then boot it on the real kernel (or read a capture).

    Returns (MachineConfig, BootParams, capture text, boot seconds or None).
    """
    from mmemu.config import is_qemu_pc, load_config
    from mmemu.oracle.qemu import boot_params
    cfg = load_config(config)
    same, why = is_qemu_pc(cfg)
    if not same:
        raise UsageError(f"{cfg.name}: its RAM map is not what QEMU's pc machine builds: "
                         f"{why}; the oracle can only boot QEMU pc RAM maps "
                         f"(see configs/qemu-pc-*.yaml)")
    params = boot_params(cfg)
    text, seconds = _real_capture(params, kernel, busybox, capture, timeout, log)
    if save_capture:
        Path(save_capture).write_text(text)
    return cfg, params, text, seconds


def _real_capture(params, kernel, busybox, capture, timeout, log):
    """(capture text, boot seconds or None)."""
    if capture:
        try:
            return Path(capture).read_text(), None
        except OSError as exc:
            raise OracleError(f"--capture {capture}: {exc.strerror}") from None
    from mmemu.oracle import fetch, qemu
    qemu.find_qemu()            # before downloading 50 MB for nothing
    ref = fetch.user_kernel(kernel) if kernel else fetch.fetch_kernel(log=log)
    bb = fetch.check_busybox(busybox) if busybox else fetch.fetch_busybox(log=log)
    cap = qemu.boot(ref, bb, params, timeout=timeout or qemu.DEFAULT_TIMEOUT, log=log)
    return cap.text, cap.seconds


def real_report_checked(text, params):
    """real_report(), refusing a capture taken with another command line."""
    from mmemu.oracle.parse import CaptureError, real_report, split_sections
    try:
        report = real_report(text)
    except CaptureError as exc:
        raise OracleError(f"the real kernel's capture is incomplete: {exc}") from None
    booted = (split_sections(text).get("cmdline") or "").strip()
    if booted and booted != params.cmdline:
        raise OracleError(f"the capture was booted with \"{booted}\", this config needs "
                          f"\"{params.cmdline}\"")
    return report


# ---------------------------------------------------------------------------
# mmemu's side

def mmemu_report(cfg):
    """A KernelReport of mmemu booted on cfg, read through its own Linux-format views."""
    from mmemu.machine import Machine
    machine = Machine(cfg, echo=False)
    try:
        return machine_report(machine)
    finally:
        close = getattr(machine, "close", None)
        if close:
            close()


def machine_report(machine):
    """The KernelReport of a booted Machine: parse what its views print."""
    from mmemu.oracle import parse
    from mmemu.views.dmesg import boot_summary
    show = _view
    summary = boot_summary(machine)
    zone_ranges, movable, nodes = parse.parse_zone_ranges(summary)
    lay = machine.layout
    layout = parse.LayoutBounds(lay.page_offset, lay.high_memory, lay.vmalloc_start,
                                lay.vmalloc_end, lay.pkmap_base)
    mm = machine.mm
    return parse.KernelReport(
        source="mmemu", zone_ranges=zone_ranges, movable_start=movable, node_ranges=nodes,
        memory=parse.parse_memory_line(summary),
        zones=parse.parse_zoneinfo(show(machine, "zoneinfo")),
        slabs=parse.parse_slabinfo(show(machine, "slabinfo")), layout=layout,
        min_free_kbytes=getattr(mm, "min_free_kbytes", None),
        lowmem_reserve_ratio=tuple(getattr(mm, "lowmem_reserve_ratio", ()) or ()) or None,
        watermark_scale_factor=getattr(mm, "watermark_scale_factor", None),
        meminfo=parse.parse_meminfo(show(machine, "meminfo")),
        buddyinfo=parse.parse_buddyinfo(show(machine, "buddyinfo")),
        kernel="mmemu")


def _view(machine, name):
    """The text of /proc/<name>: mmemu.views.show(), or the view module of that name
    (mmemu/views/slabinfo.py keeps /proc/slabinfo apart from procfs.py)."""
    import importlib
    from mmemu.views import show
    try:
        return show(machine, name)
    except UsageError:
        try:
            module = importlib.import_module(f"mmemu.views.{name}")
        except ImportError:
            raise UsageError(f"mmemu has no /proc/{name} view") from None
        return getattr(module, name)(machine)


if __name__ == "__main__":
    sys.exit(oracle_main())
