"""The oracle's initramfs: busybox and an /init that prints what the kernel knows.

A newc cpio archive written in pure Python (the format of
usr/gen_init_cpio.c and Documentation/driver-api/early-userspace), gzip
compressed, holding /bin/busybox, /dev/console (the kernel opens it for
init's stdin and stdout; without it init's output is lost) and /init.

/init prints every capture between markers on the serial console::

    @@ORACLE-BEGIN zoneinfo@@
    ...the file...
    @@ORACLE-END zoneinfo@@

then prints ``@@ORACLE-MONITOR@@`` and sleeps, so that the host can read
the page tables through the QEMU monitor while the machine is still up, and
finally powers off.
"""
import gzip
import io
import stat
from dataclasses import dataclass, field

MARK_BEGIN = "@@ORACLE-BEGIN "
MARK_END = "@@ORACLE-END "
MARK_START = "@@ORACLE-START@@"
MARK_MONITOR = "@@ORACLE-MONITOR@@"
MARK_SUFFIX = "@@"
MONITOR_WAIT = 60          # seconds /init waits for the host before powering off

NEWC_MAGIC = b"070701"
NEWC_TRAILER = "TRAILER!!!"


@dataclass
class CpioEntry:
    """One file, directory, symlink or device node of a newc archive."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple = (0, 0)
    ino: int = 0


@dataclass
class CpioWriter:
    """Collects entries and writes a newc ("070701") archive."""

    entries: list = field(default_factory=list)

    def add_dir(self, name, perm=0o755):
        self._add(CpioEntry(name, stat.S_IFDIR | perm))

    def add_file(self, name, data, perm=0o644):
        self._add(CpioEntry(name, stat.S_IFREG | perm, bytes(data)))

    def add_symlink(self, name, target):
        self._add(CpioEntry(name, stat.S_IFLNK | 0o777, target.encode()))

    def add_chardev(self, name, major, minor, perm=0o600):
        self._add(CpioEntry(name, stat.S_IFCHR | perm, rdev=(major, minor)))

    def _add(self, entry):
        entry.ino = len(self.entries) + 1
        self.entries.append(entry)

    def getvalue(self):
        """The archive's bytes, trailer included."""
        out = io.BytesIO()
        for entry in self.entries:
            _write_newc(out, entry)
        _write_newc(out, CpioEntry(NEWC_TRAILER, 0))
        return out.getvalue()


def _write_newc(out, entry):
    """Header, NUL-terminated name padded to 4 bytes, data padded to 4 bytes."""
    name = entry.name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (entry.ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0,
              entry.rdev[0], entry.rdev[1], len(name), 0)
    header = NEWC_MAGIC + b"".join(b"%08X" % value for value in fields)
    out.write(header + name)
    out.write(b"\0" * (-(len(header) + len(name)) % 4))
    out.write(entry.data)
    out.write(b"\0" * (-len(entry.data) % 4))


def read_newc(data):
    """[(name, mode, data)] of a newc archive: the inverse of CpioWriter, for tests."""
    out, pos = [], 0
    while True:
        if data[pos:pos + 6] != NEWC_MAGIC:
            raise ValueError(f"bad newc magic at {pos}")
        values = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize, mode = values[11], values[6], values[1]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        if name == NEWC_TRAILER:
            return out
        out.append((name, mode, data[data_start:data_start + filesize]))
        pos = data_start + filesize + (-filesize % 4)


# ---------------------------------------------------------------------------
# /init

# (section name, shell command), printed in this order.  Nothing before
# zoneinfo writes a sysctl (but the config's own vm.min_free_kbytes), so the
# watermarks and protection it shows are the ones the kernel set at boot.
CAPTURES = (
    ("uname", "uname -r -v"),
    ("cmdline", "cat /proc/cmdline"),
    ("zoneinfo", "cat /proc/zoneinfo"),
    ("buddyinfo", "cat /proc/buddyinfo"),
    ("pagetypeinfo", "cat /proc/pagetypeinfo"),
    ("meminfo", "cat /proc/meminfo"),
    ("slabinfo", "cat /proc/slabinfo"),
    ("vmallocinfo", "cat /proc/vmallocinfo"),
    ("iomem", "cat /proc/iomem"),
    ("kcore-header", "dd if=/proc/kcore bs=4096 count=1 2>/dev/null | od -An -v -tx1"),
    ("min_free_kbytes", "cat /proc/sys/vm/min_free_kbytes"),
    ("watermark_scale_factor", "cat /proc/sys/vm/watermark_scale_factor"),
    # Reading this sysctl reruns setup_per_zone_lowmem_reserve() in 6.1 (its
    # handler does not check `write`) on the managed counts of now, after the
    # initrd and init sections were freed: it must come after zoneinfo.
    ("lowmem_reserve_ratio", "cat /proc/sys/vm/lowmem_reserve_ratio"),
    ("dmesg", "dmesg"),
)


def init_script(min_free_kbytes=None):
    """The /init shell script.

    min_free_kbytes: the config's vm.min_free_kbytes, written before any
    capture (its handler reruns __setup_per_zone_wmarks() on the managed
    counts of that moment, as mmemu does for a config that sets it), or
    None to leave the kernel's own.
    """
    lines = [
        "#!/bin/busybox sh",
        "/bin/busybox mkdir -p /proc /sys /sbin /usr/bin /usr/sbin",
        "/bin/busybox --install -s",
        "export PATH=/bin:/sbin:/usr/bin:/usr/sbin",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "dmesg -n 1",
        # 1: %pK prints real addresses to root (0 would hash them; vmallocinfo)
        "echo 1 > /proc/sys/kernel/kptr_restrict",
        f'sec() {{ echo "{MARK_BEGIN}$1{MARK_SUFFIX}"; sh -c "$2"; '
        f'echo; echo "{MARK_END}$1{MARK_SUFFIX}"; }}',
    ]
    if min_free_kbytes is not None:
        lines.append(f"echo {int(min_free_kbytes)} > /proc/sys/vm/min_free_kbytes")
    lines.append(f'echo "{MARK_START}"')
    lines += [f"sec {name} '{cmd}'" for name, cmd in CAPTURES]
    lines += [
        f'echo "{MARK_MONITOR}"',
        f"sleep {MONITOR_WAIT}",
        "poweroff -f",
    ]
    return "\n".join(lines) + "\n"


def build_initramfs(busybox, min_free_kbytes=None):
    """The gzip-compressed newc initramfs: busybox, /dev/console and /init.

    busybox: bytes of a static i386 busybox.  Returns bytes.
    """
    cpio = CpioWriter()
    for name in ("bin", "dev", "proc", "sys", "sbin", "usr", "usr/bin", "usr/sbin"):
        cpio.add_dir(name)
    cpio.add_chardev("dev/console", 5, 1)
    cpio.add_file("bin/busybox", busybox, 0o755)
    cpio.add_symlink("bin/sh", "busybox")
    cpio.add_file("init", init_script(min_free_kbytes).encode(), 0o755)
    return gzip.compress(cpio.getvalue(), compresslevel=6, mtime=0)
