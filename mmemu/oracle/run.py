"""One oracle run: a config booted on the real kernel (or read from a capture)
and on mmemu, and the comparison of the two.

command.py (the CLI) and results.py (the report over every config) both
build on this module; neither imports the other.
"""
from pathlib import Path

from mmemu.errors import UsageError
from mmemu.oracle import OracleError


class OracleResult:
    """One config's comparison with what it took."""

    def __init__(self, cfg, params, linux, mmemu, comparison, seconds=None):
        self.cfg, self.params = cfg, params
        self.linux, self.mmemu = linux, mmemu
        self.comparison = comparison
        self.seconds = seconds

    @property
    def kernel(self):
        """The real kernel, named by release and Debian package version."""
        release = (self.linux.kernel or "?").split()[0]
        return f"Linux {release}" + (f" ({self.linux.package})" if self.linux.package else "")

    def header(self):
        from mmemu.oracle.reference import FLAVOURS
        flavour = FLAVOURS[self.params.flavour]
        lines = [f"mmemu oracle: {self.cfg.name} against {self.kernel}",
                 f"  {flavour.qemu} -M pc -cpu {flavour.cpu} -m {self.params.qemu_m}; "
                 f"kernel command line: {self.params.cmdline}"]
        if self.params.min_free_kbytes is not None:
            lines.append(f"  sysctl vm.min_free_kbytes={self.params.min_free_kbytes}")
        if self.seconds is not None:
            lines.append(f"  real boot and capture: {self.seconds:.1f} s")
        lines += [f"  note: {n}" for n in self.params.notes]
        lines.append("  marks: ok the fact matches, !! it differs, ?? a capture cross-check "
                     "failed")
        return lines

    def text(self):
        from mmemu.oracle.compare import format_text
        return format_text(self.comparison, self.header())

    def markdown(self):
        from mmemu.oracle.compare import format_markdown
        return format_markdown(self.comparison, f"{self.cfg.name} (`-m {self.params.qemu_m}`, "
                                                f"`{self.params.cmdline}`)")


def run_oracle(config, kernel=None, busybox=None, capture=None, save_capture=None,
               timeout=None, log=None, kernel_version=None, kaslr=False, save_fixture=None):
    """Boot config on the real kernel (or read a stored capture) and on mmemu.

    save_capture: a file for the whole serial transcript; save_fixture: a
    folder for the trimmed capture (capture.save_fixture()).

    Returns an OracleResult.  Raises UsageError for a config the real
    kernel cannot be booted with, OracleError when the real kernel cannot
    be had, booted or parsed.
    """
    from mmemu.oracle.compare import compare
    cfg, params, sections, seconds = capture_real(config, kernel, busybox, capture,
                                                  save_capture, timeout, log,
                                                  kernel_version, kaslr)
    linux = real_report_checked(sections, params)
    if save_fixture:
        from mmemu.oracle.capture import save_fixture as store
        store(sections, save_fixture)
    mine = mmemu_report(cfg, params.cmdline)
    return OracleResult(cfg, params, linux, mine, compare(linux, mine), seconds)


def capture_real(config, kernel=None, busybox=None, capture=None, save_capture=None,
                 timeout=None, log=None, kernel_version=None, kaslr=False):
    """Load and check config, then boot it on the real kernel (or read a capture).

    Returns (MachineConfig, BootParams, {section: text}, boot seconds or None).
    """
    from mmemu.config import is_qemu_pc, load_config
    from mmemu.oracle.qemu import boot_params
    cfg = load_config(config)
    same, why = is_qemu_pc(cfg)
    if not same:
        raise UsageError(f"{cfg.name}: its RAM map is not what QEMU's pc machine builds: "
                         f"{why}; the oracle can only boot QEMU pc RAM maps "
                         f"(see configs/qemu-pc-*.yaml)")
    params = boot_params(cfg, kaslr=kaslr)
    sections, seconds = _real_capture(params, kernel, busybox, capture, timeout, log,
                                      kernel_version, save_capture)
    return cfg, params, sections, seconds


def _real_capture(params, kernel, busybox, capture, timeout, log, kernel_version,
                  save_capture):
    """({section: text}, boot seconds or None)."""
    from mmemu.oracle.capture import load_capture
    from mmemu.oracle.parse import split_sections
    if capture:
        try:
            return load_capture(capture), None
        except OSError as exc:
            raise OracleError(f"--capture {capture}: {exc.strerror}") from None
    from mmemu.oracle import fetch, qemu
    qemu.find_qemu(params.flavour)      # before downloading 50 MB for nothing
    if kernel:
        ref = fetch.user_kernel(kernel)
    else:
        ref = fetch.fetch_kernel(log=log, flavour=params.flavour, version=kernel_version)
    bb = fetch.check_busybox(busybox) if busybox else fetch.fetch_busybox(log=log)
    cap = qemu.boot(ref, bb, params, timeout=timeout or qemu.DEFAULT_TIMEOUT, log=log)
    if save_capture:
        Path(save_capture).write_text(cap.text)
    return split_sections(cap.text), cap.seconds


def real_report_checked(sections, params):
    """parse.real_report(), refusing a capture taken with another command line."""
    from mmemu.oracle.parse import CaptureError, real_report
    try:
        report = real_report(sections)
    except CaptureError as exc:
        raise OracleError(f"the real kernel's capture is incomplete: {exc}") from None
    booted = (sections.get("cmdline") or "").strip()
    if booted and booted != params.cmdline:
        raise OracleError(f"the capture was booted with \"{booted}\", this config needs "
                          f"\"{params.cmdline}\"")
    return report


# ---------------------------------------------------------------------------
# mmemu's side

def mmemu_report(cfg, cmdline=None):
    """A KernelReport of mmemu booted on cfg, read through its own Linux-format views.

    cmdline: the real boot's command line; mmemu boots with its words less
    the options its config keys give (memblock=debug: mmemu logs its
    memblock calls too).
    """
    import dataclasses

    from mmemu.init.main import boot_options
    from mmemu.machine import Machine
    if cmdline is not None:
        options = boot_options(cfg)
        base = [w for w in cmdline.split() if w not in options]
        kernel = dataclasses.replace(cfg.kernel, cmdline=" ".join(base))
        cfg = dataclasses.replace(cfg, kernel=kernel)
    machine = Machine(cfg, echo=False)
    try:
        return machine_report(machine)
    finally:
        machine.close()


def machine_report(machine):
    """The KernelReport of a booted Machine: parse what its views print."""
    from mmemu.oracle import parse
    from mmemu.views.dmesg import boot_log
    log = boot_log(machine)
    zone_ranges, movable, nodes = parse.parse_zone_ranges("\n".join(log))
    lay = machine.layout
    layout = parse.LayoutBounds(lay.page_offset, lay.high_memory, lay.vmalloc_start,
                                lay.vmalloc_end, lay.pkmap_base)
    mm = machine.mm
    return parse.KernelReport(
        source="mmemu", zone_ranges=zone_ranges, movable_start=movable, node_ranges=nodes,
        memory=parse.parse_memory_line("\n".join(log)),
        zones=parse.parse_zoneinfo(_view(machine, "zoneinfo")),
        slabs=parse.parse_slabinfo(_view(machine, "slabinfo")), layout=layout,
        min_free_kbytes=mm.min_free_kbytes,
        lowmem_reserve_ratio=tuple(mm.lowmem_reserve_ratio),
        watermark_scale_factor=mm.watermark_scale_factor,
        meminfo=parse.parse_meminfo(_view(machine, "meminfo")),
        buddyinfo=parse.parse_buddyinfo(_view(machine, "buddyinfo")),
        pagetypeinfo=parse.parse_pagetypeinfo(_view(machine, "pagetypeinfo")),
        log=log, memblock=parse.parse_memblock(log), kernel="mmemu",
        cmdline=machine.boot.cmdline, kernel_pmd=_kernel_pmd(machine))


def _kernel_pmd(machine):
    """PAE: {index: entry} of swapper_pg_dir's kernel PMD (the PDPT's last entry)."""
    pt = machine.pgtable
    if not pt.pae:
        return None
    pmd = machine.pm.u64[(pt.pgd >> 3) + 3] & pt.pfn_mask
    return dict(enumerate(machine.pm.u64[pmd >> 3:(pmd >> 3) + 512]))


def _view(machine, name):
    """The text of /proc/<name> as mmemu prints it."""
    text = machine.proc_text(name)
    if text is None:
        raise UsageError(f"mmemu has no /proc/{name} view")
    return text
