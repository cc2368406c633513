"""docs/oracle-results.md: the oracle over the shipped QEMU pc family.

``tools/oracle.py --results docs/oracle-results.md`` boots every shipped
``qemu-pc-*`` config on the real kernel and on mmemu and writes, config by
config, the exact fields matched out of the total, every mismatch with both
values, and the full tables.
"""
import datetime
import subprocess

from mmemu.errors import MmemuError

FAMILY_PREFIX = "qemu-pc-"
# Shipped configs outside the prefix that QEMU pc boots the same way and that
# exercise something the family does not: ZONE_MOVABLE (movablecore=64M).
EXTRA_CONFIGS = ("pc-1g-movable",)

METHOD_NOTES = """\
## How the numbers are read, and what may differ

* **Exact fields** (a difference is a bug in mmemu): the `Zone ranges`,
  `Movable zone start` and `Early memory node ranges` lines of the boot log,
  compared as whole lines; each zone's spanned and present pages; the
  `Memory:` line's total; vm.lowmem_reserve_ratio and watermark_scale_factor;
  the layout bounds; the geometry (objsize, objperslab, pagesperslab) of the
  kmalloc caches (kmalloc-8 ... kmalloc-8k always, the dma-/rcl-/cg- variants
  where mmemu has them).
* **Layout bounds** come from the running kernel: VMALLOC_START and
  VMALLOC_END from the vmalloc segment of /proc/kcore's ELF header
  (fs/proc/kcore.c builds it from those macros), high_memory from its RAM
  segment; cross-checked against dmesg's `low ram:` line, meminfo's
  VmallocTotal, and the QEMU monitor's `info mem` (where the direct map
  ends).  PKMAP_BASE is the first page table present at or above
  VMALLOC_END in the page directory (read with the monitor's `xp` at CR3):
  permanent_kmaps_init() allocates it at boot.  The 686 kernel has no
  KALLSYMS_ALL, so no data symbol can be read instead.
* **Formula fields** (also exact): mmemu's own `__setup_per_zone_wmarks` and
  `setup_per_zone_lowmem_reserve` (mmemu/mm/watermark.py), fed the real
  kernel's managed pages and min_free_kbytes, must reproduce the real
  min/low/high and protection.  The real kernel set its watermarks in
  init_per_zone_wmark_min() (a postcore initcall), *before* it freed the
  initramfs and its init sections, so its final managed counts do not give
  its as-booted watermarks.  Two checks make agreement exact anyway:
  - *as booted*: the zoneinfo printed before any sysctl is touched, against
    the managed counts at that time, i.e. the final ones less the
    `Freeing initrd memory: NK` and `Freeing unused kernel image (initmem)
    memory: NK` of dmesg, each taken from the zone that holds it (the
    initrd where reserve_initrd() moved it, the init sections where
    /proc/iomem's `Kernel code` is);
  - *after init*: /init writes vm.min_free_kbytes (the config's value, or
    the kernel's own) and vm.lowmem_reserve_ratio back, whose handlers rerun
    both functions on the final managed counts, and prints zoneinfo again.
  Note: in 6.1 merely *reading* vm.lowmem_reserve_ratio reruns
  setup_per_zone_lowmem_reserve() (its handler does not test `write`), so
  /init prints the as-booted zoneinfo before reading any sysctl.
* **Derived fields** (shown, never a failure): managed pages (the real
  kernel reserves its own ~15 MiB image, mem_map, page tables and boot
  allocations; mmemu's guest image is far smaller), and the watermarks and
  protection that follow from them.  vm.min_free_kbytes differs too from
  512 MiB up: the 686 kernel enables transparent hugepages there
  (hugepage_init() skips machines under 512 MiB), and
  set_recommended_min_free_kbytes() raises min_free_kbytes to 5% of lowmem
  (43144 kB on 1 GiB); mmemu does not model THP and keeps
  int_sqrt(lowmem_kbytes * 16), which the table also shows computed on the
  real kernel's counts.
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


def run_family(names=None, kernel=None, busybox=None, log=None):
    """[(name, OracleResult or None, error text or None)] for each config."""
    from mmemu.oracle.command import run_oracle
    out = []
    for name in family(names):
        if log:
            log(f"oracle: {name}")
        try:
            out.append((name, run_oracle(name, kernel=kernel, busybox=busybox, log=log), None))
        except MmemuError as exc:
            out.append((name, None, str(exc)))
    return out


def results_markdown(results):
    """The whole docs/oracle-results.md text."""
    kernel = next((r.linux.kernel for _, r, _ in results if r), "(no boot succeeded)")
    lines = ["# mmemu against a real Linux 6.1 i386 kernel", "",
             f"Generated on {datetime.date.today().isoformat()} by "
             f"`tools/oracle.py --results docs/oracle-results.md`: every shipped "
             f"`qemu-pc-*` config (and {', '.join(EXTRA_CONFIGS)}, for ZONE_MOVABLE) "
             f"booted on the real kernel under QEMU "
             f"(`qemu-system-i386 -M pc -cpu qemu32`, TCG) and on mmemu.", "",
             f"* kernel: Linux {kernel} (Debian's `686` flavour)",
             f"* QEMU: {_qemu_version()}", "",
             "## Reproduce", "", "```",
             "apt-get install qemu-system-x86        # once; the kernel and busybox are",
             "                                       # fetched into ~/.cache/mmemu/oracle",
             "tools/oracle.py --results docs/oracle-results.md   # this file, 2-4 minutes",
             "mmemu oracle --config qemu-pc-1g       # one config's table on the terminal",
             "tools/oracle.py --config qemu-pc-1g-vmalloc256 --markdown",
             "tools/oracle.py --config qemu-pc-512m --real-only  # the real kernel alone",
             "```", "", "## Summary", "",
             "| config | QEMU -m | kernel command line | exact fields matched | real boot |",
             "|---|---|---|---|---|"]
    for name, result, error in results:
        if result is None:
            lines.append(f"| {name} | | | not run: {error} | |")
            continue
        cmp_ = result.comparison
        matched = len(cmp_.exact) - len(cmp_.failures)
        secs = f"{result.seconds:.1f} s" if result.seconds is not None else "stored"
        lines.append(f"| {name} | {result.params.qemu_m} | `{result.params.cmdline}` | "
                     f"{matched}/{len(cmp_.exact)} | {secs} |")
    lines += ["", "## Mismatches in mmemu", ""]
    lines += _mismatch_lines(results) or ["None: every exact field matches."]
    lines += ["", METHOD_NOTES, "## Tables", ""]
    for name, result, _ in results:
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


def _qemu_version():
    try:
        done = subprocess.run(["qemu-system-i386", "--version"], capture_output=True,
                              text=True, timeout=30)
        return done.stdout.splitlines()[0] if done.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "not installed"
