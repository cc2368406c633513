"""``mmemu oracle``: boot a config on the real kernel and on mmemu, compare.

    mmemu oracle [--config NAME|PATH] [--kaslr] [--kernel VMLINUZ | --kernel-version V]
                 [--busybox PATH] [--capture FILE|DIR] [--save-capture FILE]
                 [--save-fixture DIR] [--timeout S] [--markdown] [--real-only]
    tools/oracle.py --results FILE [--stored] [--configs NAME ...]
    tools/oracle.py --update-fixtures [--configs NAME ...]

Exit statuses (EXIT_* below): 0 every fact matches; 1 a fact differs (or,
for --results, a config did not run); 2 a config or option the real
kernel cannot be booted with (not QEMU pc's RAM map, NUMA, another
ZONE_DMA) or a bad command line; 4 the real kernel could not be had,
booted or parsed (the message says what is missing: QEMU, apt, the
archive's package); 130 interrupted.
"""
import argparse
import sys
from pathlib import Path

from mmemu.errors import MmemuError

DEFAULT_CONFIG = "qemu-pc-1g"
EXIT_MATCH, EXIT_DIFFERS, EXIT_USAGE, EXIT_NO_KERNEL, EXIT_INTERRUPTED = 0, 1, 2, 4, 130
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "oracle"


def add_arguments(parser):
    """The oracle's options, on an argparse (sub)parser."""
    from mmemu.oracle.reference import KERNEL_VERSION, NEWEST
    parser.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                        help="a QEMU pc config: a shipped name (qemu-pc-1g, qemu-pc-128m, "
                             "...) or a YAML path (default: %(default)s)")
    parser.add_argument("--kaslr", action="store_true",
                        help="boot without nokaslr: managed pages are then compared within "
                             "the kernel's boot-to-boot spread")
    parser.add_argument("--kernel", metavar="VMLINUZ",
                        help="boot this i386 bzImage instead of Debian's 6.1 686 kernel")
    parser.add_argument("--kernel-version", metavar="VERSION",
                        help=f"the Debian package version to boot (default: the pinned "
                             f"{KERNEL_VERSION}; '{NEWEST}': what the archive serves today)")
    parser.add_argument("--busybox", metavar="PATH",
                        help="a static i386 busybox for the initramfs "
                             "(default: Debian's busybox-static, pinned)")
    parser.add_argument("--capture", metavar="FILE|DIR",
                        help="compare with a stored capture (a transcript or a fixture "
                             "folder) instead of booting")
    parser.add_argument("--save-capture", metavar="FILE",
                        help="write the real kernel's whole serial transcript to FILE")
    parser.add_argument("--save-fixture", metavar="DIR",
                        help="write the real kernel's capture, trimmed, as a fixture folder")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed for the real boot (default 180)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as markdown")
    parser.add_argument("--real-only", action="store_true",
                        help="only boot the real kernel and print its numbers")
    parser.add_argument("--results", metavar="FILE",
                        help="run every shipped qemu-pc-* config (or those given with "
                             "--configs), write the markdown report to FILE and the "
                             "summary table into README.md")
    parser.add_argument("--stored", action="store_true",
                        help="with --results: compare with the stored fixtures instead of "
                             "booting")
    parser.add_argument("--update-fixtures", action="store_true",
                        help="boot every config of the family (or --configs) and store "
                             "its capture in tests/fixtures/oracle/<config>/")
    parser.add_argument("--configs", nargs="+", metavar="NAME",
                        help="the configs for --results and --update-fixtures")
    return parser


def oracle_main(argv=None):
    """tools/oracle.py and ``python -m mmemu.oracle.command``: parse, run, print errors."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="oracle", description="Check mmemu against a real Linux 6.1 i386 kernel."))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except MmemuError as exc:
        print(f"mmemu oracle: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def run(args, out=None):
    """Run the oracle for parsed arguments; prints the table, returns the exit status."""
    out = out or sys.stdout
    if args.results:
        return _run_results(args, out)
    if args.update_fixtures:
        return _update_fixtures(args, out)
    if args.real_only:
        return _run_real_only(args, out)
    from mmemu.oracle.run import run_oracle
    result = run_oracle(args.config, kernel=args.kernel, busybox=args.busybox,
                        capture=args.capture, save_capture=args.save_capture,
                        timeout=args.timeout, log=_log, kernel_version=args.kernel_version,
                        kaslr=args.kaslr, save_fixture=args.save_fixture)
    out.write(result.markdown() if args.markdown else result.text())
    return EXIT_DIFFERS if result.comparison.failures else EXIT_MATCH


def _run_results(args, out):
    from mmemu.oracle.results import run_family, write_results
    results = run_family(args.configs, kernel=args.kernel, busybox=args.busybox, log=_log,
                         stored=FIXTURES if args.stored else None,
                         kernel_version=args.kernel_version)
    written = write_results(results, args.results)
    bad = False
    for name, result, error in results:
        verdict = result.comparison.summary() if result else f"not run: {error}"
        out.write(f"{name}: {verdict}\n")
        bad |= result is None or bool(result.comparison.failures)
    out.write("wrote " + ", ".join(str(p) for p in written) + "\n")
    return EXIT_DIFFERS if bad else EXIT_MATCH


def _update_fixtures(args, out):
    """Boot each config and store its trimmed capture as tests/fixtures/oracle/<name>/."""
    from mmemu.oracle.capture import save_fixture
    from mmemu.oracle.results import family
    from mmemu.oracle.run import capture_real
    for name in family(args.configs):
        cfg, params, sections, seconds = capture_real(
            name, kernel=args.kernel, busybox=args.busybox, timeout=args.timeout, log=_log,
            kernel_version=args.kernel_version)
        folder = save_fixture(sections, FIXTURES / cfg.name)
        out.write(f"{cfg.name}: {seconds:.1f} s, stored in {folder}\n")
    return EXIT_MATCH


def _run_real_only(args, out):
    from mmemu.oracle.compare import format_real
    from mmemu.oracle.run import capture_real, real_report_checked
    cfg, params, sections, seconds = capture_real(
        args.config, kernel=args.kernel, busybox=args.busybox, capture=args.capture,
        save_capture=args.save_capture, timeout=args.timeout, log=_log,
        kernel_version=args.kernel_version, kaslr=args.kaslr)
    linux = real_report_checked(sections, params)
    if args.save_fixture:
        from mmemu.oracle.capture import save_fixture
        save_fixture(sections, args.save_fixture)
    head = [f"Linux {linux.kernel} ({linux.package or 'stored capture'}) booted as "
            f"{cfg.name}: -m {params.qemu_m} \"{params.cmdline}\""
            + (f" ({seconds:.1f} s)" if seconds else "")]
    out.write(format_real(linux, head))
    return EXIT_MATCH


def _log(text):
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(oracle_main())
