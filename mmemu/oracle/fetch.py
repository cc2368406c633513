"""Get the reference kernel and a static busybox without touching the system.

Debian's ``linux-image-<abi>-<flavour>`` and ``busybox-static``, at the
versions mmemu/oracle/reference.py pins (or the archive's newest kernel,
on request), are downloaded for i386 with apt, run with a private state
directory (package lists, cache, status file, sources list) under the
tool's cache, so the machine's apt configuration and package lists are
never changed.  The private sources list points at the same Debian mirrors
the machine's own sources use.  The .debs are unpacked in pure Python
(ar + tar), keeping only /boot/vmlinuz-*, /boot/config-* and /bin/busybox;
the rest is thrown away.

Cache: ``$MMEMU_CACHE/oracle`` or ``~/.cache/mmemu/oracle``::

    apt/                              private apt state (lists, archives, sources)
    kernel/<package>_<version>/       vmlinuz-<release>, config-<release>, kernel.json
    busybox/<version>/                busybox, busybox.json
"""
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from mmemu.oracle import OracleError
from mmemu.oracle.reference import (BUSYBOX_PACKAGE, BUSYBOX_VERSION, DEFAULT_FLAVOUR,
                                    FLAVOURS, NEWEST, pinned_package)

REFERENCE_SUITE = "bookworm"                 # Debian 12 ships Linux 6.1
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRRORS = ("http://deb.debian.org/debian", "http://deb.debian.org/debian-security")
APT_TIMEOUT = 600

HOW_TO_GET_APT = ("the oracle downloads Debian's kernel and busybox with apt-get "
                  "(Debian or Ubuntu hosts); elsewhere pass --kernel VMLINUZ and "
                  "--busybox PATH (a static i386 busybox)")


@dataclass(frozen=True)
class ReferenceKernel:
    """A kernel image the oracle boots, and where it came from."""

    vmlinuz: Path
    release: str          # "6.1.0-50-686", or the file name for --kernel
    version: str          # "linux-image-6.1.0-50-686 6.1.176-1", "" for --kernel
    config: Path = None   # /boot/config-<release> when the package had it

    @property
    def label(self):
        """What a result names the kernel by: the package and its version."""
        return f"Debian {self.version}" if self.version else f"{self.vmlinuz} (--kernel)"


def cache_dir():
    """The oracle's cache folder: $MMEMU_CACHE/oracle or ~/.cache/mmemu/oracle."""
    base = os.environ.get("MMEMU_CACHE")
    if base:
        return Path(base).expanduser() / "oracle"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "mmemu" / "oracle"


# ---------------------------------------------------------------------------
# Public entry points

def fetch_kernel(cache=None, log=None, flavour=DEFAULT_FLAVOUR, version=None):
    """The reference kernel of a flavour, downloading it on first use.

    version: None for the pinned one (reference.py), NEWEST for the package
    linux-image-<flavour> depends on today.  Returns a ReferenceKernel;
    raises OracleError saying what is missing.
    """
    root = Path(cache or cache_dir())
    flav = FLAVOURS[flavour] if isinstance(flavour, str) else flavour
    apt = None
    if version == NEWEST:
        apt = PrivateApt(root / "apt", log)
        package = apt.resolve_kernel_package(flav)
        version = apt.version(package)
    else:
        package, pinned = pinned_package(flav)
        version = version or pinned
    folder = root / "kernel" / f"{package}_{version.replace(':', '%')}"
    known = _read_manifest(folder / "kernel.json")
    if known and (folder / known["vmlinuz"]).is_file():
        return _kernel_from_manifest(folder, known)
    apt = apt or PrivateApt(root / "apt", log)
    deb = apt.download(package, version)
    members = extract_deb(deb, folder, (r"\./boot/vmlinuz-.*", r"\./boot/config-.*"))
    deb.unlink()
    vmlinuz = next((p for p in members if p.name.startswith("vmlinuz-")), None)
    if vmlinuz is None:
        raise OracleError(f"{package} {version} holds no /boot/vmlinuz-*")
    release = vmlinuz.name[len("vmlinuz-"):]
    config = next((p for p in members if p.name.startswith("config-")), None)
    manifest = {"package": package, "version": version, "release": release,
                "vmlinuz": vmlinuz.name, "config": config.name if config else None}
    (folder / "kernel.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return _kernel_from_manifest(folder, manifest)


def fetch_busybox(cache=None, log=None, version=BUSYBOX_VERSION):
    """The cached static i386 busybox of the pinned busybox-static, downloading it once."""
    folder = Path(cache or cache_dir()) / "busybox" / version.replace(":", "%")
    if (folder / "busybox").is_file():
        return folder / "busybox"
    apt = PrivateApt(Path(cache or cache_dir()) / "apt", log)
    deb = apt.download(BUSYBOX_PACKAGE, version)
    members = extract_deb(deb, folder, (r"\./bin/busybox",))
    deb.unlink()
    if not members:
        raise OracleError(f"{BUSYBOX_PACKAGE} {version} holds no /bin/busybox")
    (folder / "busybox.json").write_text(json.dumps({"version": version}) + "\n")
    return members[0]


def user_kernel(path):
    """A ReferenceKernel for a vmlinuz the user gave with --kernel."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise OracleError(f"--kernel {path}: no such file")
    with open(path, "rb") as f:
        head = f.read(0x210)
    if len(head) < 0x206 or head[0x202:0x206] != b"HdrS":
        raise OracleError(f"--kernel {path}: not an x86 bzImage (no 'HdrS' boot header)")
    return ReferenceKernel(vmlinuz=path, release=path.name, version="")


def check_busybox(path):
    """A user-given busybox must be a static i386 ELF, since the guest has no libc."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise OracleError(f"--busybox {path}: no such file")
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF" or head[4] != 1 or head[18] != 3:
        raise OracleError(f"--busybox {path}: not a 32-bit i386 ELF")
    return path


def _read_manifest(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _kernel_from_manifest(folder, known):
    config = folder / known["config"] if known.get("config") else None
    return ReferenceKernel(vmlinuz=folder / known["vmlinuz"], release=known["release"],
                           version=f"{known['package']} {known['version']}", config=config)


# ---------------------------------------------------------------------------
# apt with private state

class PrivateApt:
    """apt-get and apt-cache for i386 with their own lists, cache and sources.

    Every path apt would read or write is pointed into ``root``; the only
    system files read are the keyrings the machine's sources name.
    """

    def __init__(self, root, log=None):
        if shutil.which("apt-get") is None or shutil.which("apt-cache") is None:
            raise OracleError("apt-get is not installed: " + HOW_TO_GET_APT)
        self.root = Path(root)
        self.log = log or (lambda text: None)
        self._updated = False
        for sub in ("state/lists/partial", "cache/archives/partial", "sources.list.d",
                    "preferences.d", "debs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        (self.root / "sources.list.d" / "oracle.sources").write_text(private_sources())

    def options(self):
        r = self.root
        opts = {
            "Dir::State": r / "state", "Dir::State::status": r / "state" / "status",
            "Dir::Cache": r / "cache", "Dir::Etc::SourceList": "/dev/null",
            "Dir::Etc::SourceParts": r / "sources.list.d",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": r / "preferences.d",
            "APT::Architecture": "i386", "APT::Architectures": "i386",
            "Debug::NoLocking": "1", "APT::Get::AllowUnauthenticated": "false",
        }
        if os.geteuid() == 0:      # the _apt sandbox user cannot write a private root cache
            opts["APT::Sandbox::User"] = "root"
        out = []
        for key, value in opts.items():
            out += ["-o", f"{key}={value}"]
        return out

    def run(self, tool, *args, cwd=None):
        cmd = [tool, "-q", *self.options(), *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                                  timeout=APT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise OracleError(f"{tool} {' '.join(args)} took more than {APT_TIMEOUT} s") from None

    def update(self):
        """Refresh the private package lists once per PrivateApt.

        A mirror with a broken index only warns (apt exits 100 but keeps the
        others); whether the wanted package was found decides success.
        """
        stamp = self.root / "state" / "updated"
        if self._updated or (stamp.is_file() and time.time() - stamp.stat().st_mtime < 3600):
            return
        self.log("oracle: reading the Debian i386 package lists (private apt state)")
        done = self.run("apt-get", "update")
        self._updated = True
        if done.returncode != 0 and not any((self.root / "state" / "lists").glob("*Packages*")):
            raise OracleError("apt-get update failed for the private i386 lists:\n"
                              + _tail(done.stderr or done.stdout))
        stamp.touch()

    def resolve_kernel_package(self, flavour):
        """The versioned kernel package the flavour's metapackage depends on today."""
        self.update()
        done = self.run("apt-cache", "depends", "--no-recommends", "--no-suggests",
                        flavour.metapackage)
        found = re.findall(r"Depends:\s*(linux-image-6\.1\.\S+-" + re.escape(flavour.name)
                           + r")\s*$", done.stdout, re.M)
        if done.returncode != 0 or not found:
            raise OracleError(f"cannot find the Debian {REFERENCE_SUITE} i386 kernel "
                              f"({flavour.metapackage}) in the private package lists:\n"
                              + _tail(done.stderr or done.stdout or "(no output)"))
        return found[0]

    def version(self, package):
        done = self.run("apt-cache", "show", "--no-all-versions", package)
        match = re.search(r"^Version:\s*(\S+)", done.stdout, re.M)
        return match.group(1) if match else ""

    def download(self, package, version):
        """apt-get download package=version into the private debs folder; the .deb path.

        A version the archive no longer serves (Debian keeps one per suite)
        fails with what to do instead.
        """
        self.update()
        folder = self.root / "debs"
        for old in folder.glob(f"{package}_*.deb"):
            old.unlink()
        self.log(f"oracle: downloading {package} {version} (i386)")
        done = self.run("apt-get", "download", f"{package}={version}", cwd=folder)
        debs = sorted(folder.glob(f"{package}_*.deb"))
        if done.returncode != 0 or not debs:
            raise OracleError(f"apt-get download {package}={version} failed (the archive "
                              f"may no longer serve that version: try --kernel-version "
                              f"newest, or --kernel VMLINUZ):\n"
                              + _tail(done.stderr or done.stdout))
        return debs[-1]


def _tail(text, lines=8):
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------
# The private sources list

def private_sources(sources_dir="/etc/apt"):
    """A deb822 sources file for Debian bookworm on the machine's own mirrors.

    The machine's enabled sources (sources.list, sources.list.d/*.list and
    *.sources) are read for Debian archive URIs (…/debian and
    …/debian-security); the suites are always bookworm's, whatever the
    host runs, since bookworm ships Linux 6.1.
    """
    mirrors = [m for m in host_mirrors(sources_dir) if _debian_archive(m[0])]
    if not mirrors:
        mirrors = [(uri, DEBIAN_KEYRING if Path(DEBIAN_KEYRING).is_file() else None)
                   for uri in DEFAULT_MIRRORS]
    stanzas, seen = [], set()
    for uri, keyring in mirrors:
        uri = uri.rstrip("/")
        if uri in seen:
            continue
        seen.add(uri)
        if uri.endswith("-security"):
            suites = f"{REFERENCE_SUITE}-security"
        else:
            suites = f"{REFERENCE_SUITE} {REFERENCE_SUITE}-updates"
        lines = ["Types: deb", f"URIs: {uri}", f"Suites: {suites}", "Components: main",
                 "Architectures: i386"]
        keyring = keyring or (DEBIAN_KEYRING if Path(DEBIAN_KEYRING).is_file() else None)
        if keyring:
            lines.append(f"Signed-By: {keyring}")
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


def _debian_archive(uri):
    path = uri.rstrip("/").rsplit("/", 1)[-1]
    return path in ("debian", "debian-security")


def host_mirrors(sources_dir="/etc/apt"):
    """[(uri, signed_by or None)] from the machine's enabled deb sources."""
    root = Path(sources_dir)
    files = [root / "sources.list"] if (root / "sources.list").is_file() else []
    parts = root / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    out = []
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        parse = _parse_deb822 if path.suffix == ".sources" else _parse_one_line
        out += parse(text)
    return out


def _parse_one_line(text):
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+\S+", line)
        if not match:
            continue
        opts = dict(o.split("=", 1) for o in (match.group(1) or "").split() if "=" in o)
        out.append((match.group(2), opts.get("signed-by")))
    return out


def _parse_deb822(text):
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        keyring = fields.get("signed-by")
        if keyring and not keyring.startswith("/"):
            keyring = None          # an inline key block: fall back to the archive keyring
        out += [(uri, keyring) for uri in fields.get("uris", "").split()]
    return out


# ---------------------------------------------------------------------------
# .deb unpacking (ar + tar, pure Python)

def ar_members(data):
    """{name: bytes} of a System V / GNU ar archive (a .deb)."""
    if data[:8] != b"!<arch>\n":
        raise OracleError("not a .deb (no ar archive magic)")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip() or 0)
        members[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
    return members


def extract_deb(deb, dest, patterns):
    """Unpack the files of deb whose tar names match one of patterns into dest.

    Returns the written paths (flattened into dest by base name).
    """
    members = ar_members(Path(deb).read_bytes())
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise OracleError(f"{deb}: no data.tar member")
    if name.endswith(".zst"):
        return _extract_with_dpkg(deb, dest, patterns)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = [re.compile(p) for p in patterns]
    written = []
    with tarfile.open(fileobj=io.BytesIO(members[name]), mode="r|*") as tar:
        for info in tar:
            if not info.isfile() or not any(w.fullmatch(info.name) for w in wanted):
                continue
            target = dest / Path(info.name).name
            target.write_bytes(tar.extractfile(info).read())
            target.chmod(0o755 if info.mode & 0o111 else 0o644)
            written.append(target)
    return written


def _extract_with_dpkg(deb, dest, patterns):
    """zstd-compressed data (newer Debian/Ubuntu): Python's tarfile cannot read it."""
    if shutil.which("dpkg-deb") is None:
        raise OracleError(f"{deb} is zstd compressed and dpkg-deb is not installed")
    scratch = Path(dest) / ".unpack"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(scratch)], check=True)
    wanted = [re.compile(p) for p in patterns]
    written = []
    for path in scratch.rglob("*"):
        rel = "./" + str(path.relative_to(scratch))
        if path.is_file() and any(w.fullmatch(rel) for w in wanted):
            target = Path(dest) / path.name
            shutil.move(str(path), target)
            written.append(target)
    shutil.rmtree(scratch)
    return written
