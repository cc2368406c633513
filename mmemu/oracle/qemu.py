"""Boot the real kernel under QEMU's pc machine and capture what it prints.

The boot (the 686 flavour; reference.py names the binary and CPU of each)::

    qemu-system-i386 -M pc -cpu qemu32 -m <RAM> -kernel vmlinuz -initrd initrd
        -append "console=ttyS0 nokaslr memblock=debug quiet panic=-1 <options>"
        -nographic -no-reboot -qmp unix:<socket>,server=on,wait=off

``memblock=debug`` makes the kernel log every memblock_reserve() and
memblock_alloc() with its size and caller: the reservations that decide
each zone's managed pages.  The initramfs is padded with zeros to exactly
the initrd size the config gives (the kernel's unpacker skips the zeros),
so that the real kernel reserves, moves and frees the same initrd mmemu
models.

The serial console (QEMU's stdout) carries the kernel's output and the
initramfs's captures between markers (initramfs.py).  When /init prints
``@@ORACLE-MONITOR@@`` it sleeps, and the host asks the QEMU monitor (HMP
commands through QMP's human-monitor-command) for ``info registers`` (CR3),
``info mem`` (the mapped virtual ranges: where the direct map ends) and the
page directory (``xp /1024wx CR3``: which page tables exist, so that the
pkmap page table can be seen), then quits QEMU.  The monitor's answers are
appended to the transcript as ``monitor:<command>`` sections, so a stored
capture holds everything the parsers need.

A boot of the 686 kernel under TCG takes about 10 s on two cores.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mmemu.config import KiB, MiB, format_size
from mmemu.oracle import OracleError
from mmemu.oracle.initramfs import (MARK_BEGIN, MARK_END, MARK_MONITOR, MARK_SUFFIX,
                                    build_initramfs)
from mmemu.oracle.reference import DEFAULT_FLAVOUR, FLAVOURS

DEFAULT_TIMEOUT = 180          # seconds for the whole boot and capture
BASE_CMDLINE = "console=ttyS0 nokaslr memblock=debug quiet panic=-1"
KASLR_CMDLINE = "console=ttyS0 memblock=debug quiet panic=-1"
DEFAULT_VMALLOC_AREA = 120 * MiB     # what the kernel uses without vmalloc=
REFERENCE_INITRD = 1044 * KiB        # the initrd of the reference boots (config default)
MONITOR_COMMANDS = ("info registers", "info mem")
QEMU_DIRS = ("/usr/libexec", "/usr/lib/qemu")   # where distributions also put QEMU
HOW_TO_GET_QEMU = ("{qemu} is not installed; on Debian or Ubuntu: "
                   "apt-get install qemu-system-x86")


@dataclass(frozen=True)
class BootParams:
    """What a config asks of the real kernel: RAM size, command line, sysctls."""

    ram: int                       # bytes, QEMU's -m
    cmdline: str                   # the whole -append string
    min_free_kbytes: int = None    # written to vm.min_free_kbytes by /init
    notes: tuple = ()              # config keys the real boot ignores, and why
    initrd: int = REFERENCE_INITRD  # bytes: the initramfs is padded to this
    flavour: str = DEFAULT_FLAVOUR  # reference.FLAVOURS key

    @property
    def kaslr(self):
        """Whether the kernel picks a random load address (no nokaslr)."""
        return "nokaslr" not in self.cmdline.split()

    @property
    def qemu_m(self):
        """The -m argument: whole MiB when possible ("1024M"), else KiB."""
        if self.ram % MiB == 0:
            return f"{self.ram // MiB}M"
        return f"{self.ram // 1024}K"


def boot_params(cfg, kaslr=False):
    """The RAM size, kernel command line and sysctls that boot cfg for real.

    cfg must already have passed config.is_qemu_pc().  The command line is
    the machine's own (init/main.py: kernel.cmdline and the options its
    keys stand for: vmalloc=, highmem=, kernelcore=, movablecore=,
    slub_debug=, transparent_hugepage=) with memblock=debug, and without
    nokaslr for a KASLR boot; min_free_kbytes is the sysctl.  Raises
    UsageError for what a real kernel cannot be told.
    """
    from mmemu.errors import UsageError
    from mmemu.oracle.reference import flavour_of
    if cfg.dma_limit != 16 * MiB:
        raise UsageError(f"{cfg.path}: zones.dma_limit {format_size(cfg.dma_limit)}: "
                         f"a real i386 kernel's ZONE_DMA always ends at 16M")
    if len(cfg.nodes) != 1:
        raise UsageError(f"{cfg.path}: {len(cfg.nodes)} NUMA nodes: the 686 kernel "
                         f"is built without NUMA and QEMU pc has one node")
    if cfg.kernel.load_address != 16 * MiB:
        raise UsageError(f"{cfg.path}: kernel.load_address "
                         f"{format_size(cfg.kernel.load_address)}: the reference kernel is "
                         f"built for 16M (CONFIG_PHYSICAL_START)")
    notes = []
    if cfg.devices:
        notes.append("devices: MMIO models exist only in mmemu (no effect on the "
                     "compared fields)")
    if cfg.direct_map != "4M":
        notes.append("direct_map: 4K has no kernel option; the real kernel uses 4M pages")
    return BootParams(ram=qemu_ram_size(cfg), cmdline=oracle_cmdline(cfg, kaslr),
                      min_free_kbytes=cfg.min_free_kbytes, notes=tuple(notes),
                      initrd=cfg.kernel.initrd or REFERENCE_INITRD,
                      flavour=flavour_of(cfg).name)


def oracle_cmdline(cfg, kaslr=False):
    """The machine's command line with memblock=debug after nokaslr (no nokaslr under KASLR)."""
    from mmemu.init.main import kernel_command_line
    words = [w for w in kernel_command_line(cfg).split() if w not in ("nokaslr", "memblock=debug")]
    extra = ["memblock=debug"] if kaslr else ["nokaslr", "memblock=debug"]
    return " ".join(words[:1] + extra + words[1:])


def qemu_ram_size(cfg):
    """QEMU's -m for a QEMU pc config (config.qemu_pc_ram_size())."""
    from mmemu.config import qemu_pc_ram_size
    return qemu_pc_ram_size(cfg)


def qemu_command(kernel, initrd, params, qmp_socket, qemu=None):
    """The QEMU argument list for the flavour's binary and CPU."""
    flavour = FLAVOURS[params.flavour]
    return [qemu or flavour.qemu, "-M", "pc", "-cpu", flavour.cpu, "-m", params.qemu_m,
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", params.cmdline,
            "-nographic", "-no-reboot",
            "-qmp", f"unix:{qmp_socket},server=on,wait=off"]


def find_qemu(flavour=DEFAULT_FLAVOUR, dirs=QEMU_DIRS):
    """The path of the flavour's QEMU binary, or OracleError saying how to install it.

    Looked for on PATH, then in the folders distributions keep QEMU in
    beside it (/usr/libexec).
    """
    name = FLAVOURS[flavour].qemu
    path = shutil.which(name)
    if path is not None:
        return path
    for folder in dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise OracleError(HOW_TO_GET_QEMU.format(qemu=name))


def qemu_version(flavour=DEFAULT_FLAVOUR):
    """The first line of the flavour's QEMU's --version, or why there is none."""
    try:
        done = subprocess.run([find_qemu(flavour), "--version"], capture_output=True,
                              text=True, timeout=30)
        return done.stdout.splitlines()[0] if done.stdout else "unknown"
    except OracleError:
        return "not installed"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------------------
# The boot

@dataclass
class Capture:
    """One boot's transcript: the console plus monitor sections; and its cost."""

    text: str
    seconds: float
    command: list


def boot(kernel, busybox, params, timeout=DEFAULT_TIMEOUT, log=None):
    """Boot kernel (a ReferenceKernel or vmlinuz path) with params; return a Capture.

    Raises OracleError when QEMU is missing, the kernel does not reach /init
    within timeout, or the captures are incomplete; the message ends with
    the last console lines.
    """
    qemu = find_qemu(params.flavour)
    log = log or (lambda text: None)
    vmlinuz = getattr(kernel, "vmlinuz", kernel)
    with tempfile.TemporaryDirectory(prefix="mmemu-oracle-") as tmp:
        initrd = Path(tmp) / "initrd.gz"
        initrd.write_bytes(padded_initramfs(Path(busybox).read_bytes(), params))
        qmp_path = Path(tmp) / "qmp.sock"
        cmd = qemu_command(vmlinuz, initrd, params, qmp_path, qemu)
        log(f"oracle: booting {Path(vmlinuz).name} with -m {params.qemu_m} "
            f"\"{params.cmdline}\"")
        start = time.monotonic()
        console, monitor = _run_qemu(cmd, qmp_path, timeout, params.flavour == "686-pae")
        seconds = time.monotonic() - start
    text = console + "".join(_section(f"monitor:{name}", body) for name, body in monitor)
    if MARK_MONITOR not in console:
        raise OracleError(_incomplete(console, timeout, seconds))
    label = getattr(kernel, "label", f"{vmlinuz} (--kernel)")
    notes = [f"kernel: {label}", f"flavour: {params.flavour}",
             f"qemu: {qemu_version(params.flavour)}", f"command: {' '.join(cmd)}",
             f"seconds: {seconds:.1f}"]
    text += _section("oracle", "\n".join(notes))
    return Capture(text=text, seconds=seconds, command=cmd)


def padded_initramfs(busybox, params):
    """The initramfs, zero-padded to params.initrd bytes; OracleError if it is larger."""
    image = build_initramfs(busybox, params.min_free_kbytes)
    if len(image) > params.initrd:
        raise OracleError(f"the oracle's initramfs is {len(image)} bytes, more than the "
                          f"config's kernel initrd ({params.initrd} bytes): give the "
                          f"config a larger kernel.initrd")
    return image + bytes(params.initrd - len(image))


def _section(name, body):
    return f"{MARK_BEGIN}{name}{MARK_SUFFIX}\n{body.rstrip()}\n{MARK_END}{name}{MARK_SUFFIX}\n"


def _incomplete(console, timeout, seconds):
    tail = "\n".join(console.rstrip().splitlines()[-15:])
    why = (f"did not finish its captures within {timeout} s" if seconds >= timeout
           else "stopped before finishing its captures")
    return f"the real kernel {why}; last console lines:\n{tail}"


def _run_qemu(cmd, qmp_path, timeout, pae=False):
    """Run QEMU; returns (console text, [(monitor command, answer)])."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    reader = _ConsoleReader(proc.stdout)
    reader.start()
    monitor = []
    try:
        if reader.monitor_ready.wait(timeout):
            monitor = _ask_monitor(qmp_path, pae)
    finally:
        _stop(proc, qmp_path)
        reader.join(5)
    return reader.text(), monitor


class _ConsoleReader(threading.Thread):
    """Collects QEMU's stdout; signals when /init asks for the monitor."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.chunks = []
        self.monitor_ready = threading.Event()

    def run(self):
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").replace("\r", "")
            self.chunks.append(line)
            if MARK_MONITOR in line:
                self.monitor_ready.set()
        self.monitor_ready.set()        # QEMU exited: nothing more will come

    def text(self):
        return "".join(self.chunks)


def _stop(proc, qmp_path):
    """Ask QEMU to quit through QMP; kill it if it does not."""
    if proc.poll() is None:
        try:
            with _Qmp(qmp_path) as qmp:
                qmp.execute("quit")
        except (OSError, OracleError):
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _ask_monitor(qmp_path, pae=False):
    """The monitor's answers: info registers, info mem, the page directory.

    With PAE, CR3 holds a 32-byte PDPT: the "page directory" is then the
    kernel's PMD (``xp /512gx`` of the PDPT's last entry), after a comment
    line with the PDPT itself.  Returns [] when the monitor cannot be
    reached (the console captures still give the layout; compare.py says
    which checks were skipped).
    """
    try:
        with _Qmp(qmp_path) as qmp:
            out = [(c, qmp.hmp(c)) for c in MONITOR_COMMANDS]
            cr3 = _cr3(out[0][1])
            if cr3 is not None and pae:
                pdpt = qmp.hmp(f"xp /4gx {cr3 & ~0x1F:#x}")
                entries = re.findall(r"0x([0-9a-f]{16})", pdpt)
                pmd = int(entries[3], 16) & 0xFFFFFFFFFF000
                head = f"# pdpt {cr3 & ~0x1F:#x} = " + " ".join(f"0x{e}" for e in entries)
                out.append(("page directory",
                            head + "\n" + qmp.hmp(f"xp /512gx {pmd:#x}")))
            elif cr3 is not None:
                command = f"xp /1024wx {cr3 & ~0xFFF:#x}"
                out.append(("page directory", qmp.hmp(command)))
            return out
    except (OSError, OracleError, ValueError):
        return []


def _cr3(registers):
    for word in registers.split():
        if word.startswith("CR3="):
            return int(word[4:], 16)
    return None


class _Qmp:
    """A minimal QMP client: JSON lines over a unix socket."""

    def __init__(self, path, timeout=20):
        self.path, self.timeout = str(path), timeout

    def __enter__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)
        self.buf = b""
        self._read()                    # the greeting
        self.execute("qmp_capabilities")
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def execute(self, command, **arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if reply is None:
                return None
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise OracleError(f"QEMU monitor: {command}: {reply['error'].get('desc')}")

    def hmp(self, command_line):
        return self.execute("human-monitor-command", **{"command-line": command_line})

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)
