"""docs/oracle-results.md and README.md's oracle table: the oracle over the family.

``tools/oracle.py --results docs/oracle-results.md`` boots every shipped
``qemu-pc-*`` config (and EXTRA_CONFIGS) on the real kernel and on mmemu
(``--stored`` reads tests/fixtures/oracle/ instead of booting) and writes,
config by config, the facts compared, how many match, every mismatch with
both values, and the full tables; the summary table goes into README.md's
generated block ``oracle`` (mmemu/harness/readme.py).  Nothing in either is
typed by hand.
"""
import datetime
from pathlib import Path

from mmemu.errors import MmemuError

FAMILY_PREFIX = "qemu-pc-"
# Shipped configs outside the prefix that QEMU pc boots the same way.
EXTRA_CONFIGS = ("pc-1g-movable", "pc-1g-pae")
README_BLOCK = "oracle"

METHOD_NOTES = """\
## What is compared

Every row is one fact the kernel states once, compared exactly on these
`nokaslr` boots (mmemu/oracle/compare.py); nothing is recomputed or
excused:

* **the boot log**, line by line, for every memory line mmemu models: the
  e820 map and `last_pfn`, the initrd's `RAMDISK` lines, the
  HIGHMEM/LOWMEM lines and the `highmem=` warning, `Zone ranges` to
  `Initmem setup` and the `On node ... unavailable ranges` lines, the
  per-cpu first chunk, `Built 1 zonelists ... Total pages`, the command
  line, the dentry and inode hash tables, `Initializing HighMem/Movable`,
  the `Memory:` line, `SLUB: HWalign=...`, and the `Freeing ...` lines of
  the SMP alternatives, the initrd and the init sections;
* **memblock**, one row per operation the kernel logged with
  `memblock=debug` on RAM (each reservation and allocation with its size,
  alignment, caller and placement, each free), and the `MEMBLOCK
  configuration` regions; firmware tables outside RAM (the MP table, the
  ACPI tables) change no page and are left out;
* **every zone**'s spanned, present and managed pages, min/low/high
  watermarks, protection, pcp high and batch, vm stats threshold and
  start_pfn, as /proc/zoneinfo prints them before any sysctl is touched;
* vm.min_free_kbytes, vm.lowmem_reserve_ratio, vm.watermark_scale_factor;
* **meminfo**'s totals (MemTotal, HighTotal, LowTotal, SwapTotal,
  CommitLimit, VmallocTotal, the huge page sizes, DirectMap4k/4M) and its
  keys, in order, as one fact; the zones /proc/buddyinfo lists;
* /proc/pagetypeinfo where the boot fixes it: the pageblock order and
  pages per block, each zone's number of pageblocks, ZONE_DMA's free
  blocks per migratetype and order and its pageblocks per migratetype (no
  boot allocation reaches ZONE_DMA), ZONE_MOVABLE's pageblocks per
  migratetype (only movable allocations reach it);
* the layout bounds read from the running kernel (VMALLOC_START/END from
  /proc/kcore's ELF header, high_memory from its RAM segment, PKMAP_BASE
  from the page directory through the QEMU monitor), cross-checked against
  the log's `low ram:`, meminfo's VmallocTotal and the monitor's
  `info mem` (those checks are marked `ok`/`??` and not counted as facts);
* the slab geometry (objsize, objperslab, pagesperslab) of each kmalloc
  size, one row for the size and its dma-/rcl-/cg- variants, and of
  kmem_cache and kmem_cache_node.

Free page counts and per-cache object counts are not facts of the boot
(the real kernel has run its init by the time /init reads them).  With
`--kaslr` the managed pages are compared within the kernel's own
boot-to-boot spread, the numbers that follow from them through mmemu's
functions on Linux's managed pages, and the placements are left out.
"""


def family(names=None):
    """The configs to run: the given names, or every shipped qemu-pc-* config
    and EXTRA_CONFIGS."""
    from mmemu.config import list_configs
    if names:
        return list(names)
    shipped = list_configs()
    return [n for n in shipped if n.startswith(FAMILY_PREFIX)] + \
        [n for n in EXTRA_CONFIGS if n in shipped]


def run_family(names=None, kernel=None, busybox=None, log=None, stored=None,
               kernel_version=None):
    """[(name, OracleResult or None, error text or None)] for each config.

    stored: a folder of fixtures (<folder>/<config>/) to read instead of booting.
    """
    from mmemu.oracle.run import run_oracle
    out = []
    for name in family(names):
        if log:
            log(f"oracle: {name}")
        capture = None
        if stored is not None:
            capture = Path(stored) / name
            if not capture.is_dir():
                out.append((name, None, f"no stored capture in {capture}"))
                continue
        try:
            out.append((name, run_oracle(name, kernel=kernel, busybox=busybox, log=log,
                                         capture=capture, kernel_version=kernel_version),
                        None))
        except MmemuError as exc:
            out.append((name, None, str(exc)))
    return out


def write_results(results, path, readme=None):
    """Write the report to path and the summary into README.md's oracle block.

    Returns the paths written.
    """
    from mmemu.harness.readme import README, update_file
    Path(path).write_text(results_markdown(results))
    readme = Path(readme or README)
    update_file(readme, README_BLOCK, summary_table(results))
    return [Path(path), readme]


def kernel_named(results):
    """The real kernel of the runs, by release and package ("(no run)" if none ran);
    the 686-pae kernel of the -pae configs after the 686 one."""
    kernels = []
    for _, r, _ in results:
        if r and r.kernel not in kernels:
            kernels.append(r.kernel)
    if not kernels:
        return "(no run)"
    kernels.sort(key=lambda k: "pae" in k)
    return "; for the -pae configs ".join(kernels)


def summary_table(results):
    """The markdown summary: one line per config with its facts and matches."""
    from mmemu.oracle.qemu import BASE_CMDLINE
    lines = [f"Real kernel: {kernel_named(results)}.", "",
             "| config | QEMU -m | kernel command line (after the common "
             "`console=ttyS0 nokaslr memblock=debug quiet panic=-1`) "
             "| facts | exact | real boot |",
             "|---|---|---|---|---|---|"]
    for name, result, error in results:
        if result is None:
            lines.append(f"| {name} | | | not run: {error} | | |")
            continue
        cmp_ = result.comparison
        options = result.params.cmdline.split()[len(BASE_CMDLINE.split()):]
        secs = f"{result.seconds:.1f} s" if result.seconds is not None else "stored"
        lines.append(f"| {name} | {result.params.qemu_m} | {' '.join(options) or '(none)'} | "
                     f"{len(cmp_.facts)} | {len(cmp_.facts) - len(cmp_.failures)} | {secs} |")
    return "\n".join(lines) + "\n"


def results_markdown(results):
    """The whole docs/oracle-results.md text."""
    from mmemu.oracle.qemu import qemu_version
    lines = ["# mmemu against a real Linux 6.1 i386 kernel", "",
             f"Generated on {datetime.date.today().isoformat()} by "
             f"`tools/oracle.py --results docs/oracle-results.md`: every shipped "
             f"`qemu-pc-*` config (and {', '.join(EXTRA_CONFIGS)}) booted on the real "
             f"kernel under QEMU's pc machine (TCG) and on mmemu.", "",
             f"* kernel: {kernel_named(results)}, each pinned by package version in "
             f"mmemu/oracle/reference.py",
             f"* QEMU: {qemu_version()}", "",
             "## Reproduce", "", "```",
             "apt-get install qemu-system-x86        # once; the kernel and busybox are",
             "                                       # fetched into ~/.cache/mmemu/oracle",
             "tools/oracle.py --results docs/oracle-results.md   # this file and README's table",
             "tools/oracle.py --results docs/oracle-results.md --stored   # from the fixtures",
             "mmemu oracle --config qemu-pc-1g       # one config's table on the terminal",
             "tools/oracle.py --config qemu-pc-512m --real-only  # the real kernel alone",
             "tools/oracle.py --update-fixtures      # re-capture tests/fixtures/oracle/",
             "```", "", "## Summary", ""]
    lines += summary_table(results).splitlines()
    lines += ["", "## Mismatches in mmemu", ""]
    lines += _mismatch_lines(results) or ["None: every fact matches."]
    lines += ["", METHOD_NOTES, "## Tables", ""]
    for _name, result, _ in results:
        if result is not None:
            lines.append(result.markdown())
    return "\n".join(lines).rstrip() + "\n"


def _mismatch_lines(results):
    lines = []
    for name, result, error in results:
        if result is None:
            lines.append(f"* {name}: the oracle did not run: {error}")
            continue
        for row in result.comparison.failures:
            lines.append(f"* {name}: {row.section}: {row.field}: Linux "
                         f"`{_plain(row.linux)}`, mmemu `{_plain(row.mmemu)}`")
        for row in result.comparison.doubtful:
            lines.append(f"* {name}: capture cross-check failed: {row.field}: {row.linux}")
    return lines


def _plain(value):
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value).strip()
