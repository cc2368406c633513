"""The reference kernel: which Debian package the oracle boots, and how.

The one place the reference is pinned.  Every number in
docs/reference-6.1-686.md and every stored capture in tests/fixtures/oracle/
comes from the package versions below; ``mmemu oracle --kernel-version
newest`` takes whatever Debian serves today instead, and every result says
which one it booted.

A flavour is one Debian kernel build of the same source: ``686`` (non-PAE,
HIGHMEM4G: what mmemu models) and ``686-pae`` (HIGHMEM64G, PAE, NX).  Each
needs its own QEMU binary and CPU model: qemu-system-i386 7.2 cuts PAE
page-table addresses to 32 bits (with RAM above 4 GiB a PAE guest hangs at
its first exec), so the PAE flavour boots under qemu-system-x86_64, and its
CPU needs pse36 for any address above 4 GiB to map.
"""
from dataclasses import dataclass

# Debian bookworm's linux-signed-i386 6.1.176-1 (ABI 6.1.0-50): the kernel the
# numbers in DESIGN.md and the stored captures come from.
KERNEL_ABI = "6.1.0-50"
KERNEL_VERSION = "6.1.176-1"
# The static busybox of the oracle's initramfs (its size bounds the initrd).
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_VERSION = "1:1.35.0-4+deb12u1+b1"
NEWEST = "newest"              # --kernel-version newest: the archive's current kernel


@dataclass(frozen=True)
class Flavour:
    """One Debian kernel flavour and the QEMU machine that boots it."""

    name: str                  # "686", "686-pae"
    qemu: str                  # the QEMU system binary
    cpu: str                   # -cpu
    metapackage: str           # depends on the current linux-image-<abi>-<name>

    def package(self, abi=KERNEL_ABI):
        """The versioned kernel package: linux-image-6.1.0-50-686."""
        return f"linux-image-{abi}-{self.name}"

    def release(self, abi=KERNEL_ABI):
        """uname -r of that package: 6.1.0-50-686."""
        return f"{abi}-{self.name}"


FLAVOURS = {
    "686": Flavour("686", "qemu-system-i386", "qemu32", "linux-image-686"),
    "686-pae": Flavour("686-pae", "qemu-system-x86_64", "qemu32,+pae,+nx,+pse36",
                       "linux-image-686-pae"),
}
DEFAULT_FLAVOUR = "686"


def flavour_of(cfg):
    """The flavour that boots a machine config: 686-pae when it asks for PAE."""
    return FLAVOURS["686-pae" if getattr(cfg, "pae", False) else DEFAULT_FLAVOUR]


def pinned_package(flavour):
    """(package, version) of the pinned reference kernel for a flavour."""
    return flavour.package(), KERNEL_VERSION
