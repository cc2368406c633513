"""Check mmemu against a real Linux 6.1 i386 kernel booted under QEMU.

The oracle boots Debian's ``686`` kernel (non-PAE, HIGHMEM4G, SLUB: the
kernel DESIGN.md's reference numbers come from) on QEMU's ``pc`` machine
with the RAM size and boot options a config describes, captures what the
kernel reports about its memory, boots the same config in mmemu, and prints
the two side by side.

Pieces, in data-flow order:

* reference.py: the pinned reference kernel (Debian package version) and
  the flavours (686, 686-pae) with the QEMU binary and CPU each needs;
* fetch.py: the kernel and a static busybox, downloaded with apt into the
  tool's own cache (never touching the machine's apt state);
* initramfs.py: a newc cpio (pure Python) holding busybox and an /init that
  prints the captures between markers on the serial console;
* qemu.py: the kernel command line a config implies, the boot, the
  capture, and the QEMU monitor queries (``info mem``, the page directory);
* capture.py: a capture as {section: text}, trimmed and stored as a small
  fixture folder (tests/fixtures/oracle/<config>/);
* parse.py: parsers for the captured text (the boot log and its
  memblock=debug lines, /proc/zoneinfo, buddyinfo, meminfo, slabinfo,
  vmallocinfo, the /proc/kcore header, the monitor's ``info mem``) into
  one KernelReport, for the real kernel and for mmemu alike (mmemu's views
  print the same formats);
* compare.py: one row per fact, every fact exact on a nokaslr boot;
* run.py: one config's run (boot or stored capture, mmemu, comparison);
* results.py: the whole family, docs/oracle-results.md and README's table;
* command.py: ``mmemu oracle`` and tools/oracle.py, and the exit statuses.

Where each layout bound comes from (the robust route, chosen after trying
the others on the real kernel):

* lowmem end (high_memory): the end of the run of present mappings from
  PAGE_OFFSET in the monitor's ``info mem`` (the direct map), checked
  against dmesg's ``low ram: 0 - X`` line;
* vmalloc [VMALLOC_START, VMALLOC_END): the vmalloc PT_LOAD segment of
  /proc/kcore's ELF header, which fs/proc/kcore.c builds from those two
  macros (checked against meminfo's VmallocTotal);
* PKMAP_BASE: the page directory entry at VMALLOC_END + 2 pages must be
  present (permanent_kmaps_init() allocates the pkmap page table at boot)
  and PMD aligned; 6.1 defines VMALLOC_END as PKMAP_BASE - 2 pages, and
  the 686 build keeps no data symbols in kallsyms to read it from.
"""
from mmemu.errors import MmemuError


class OracleError(MmemuError):
    """The real kernel could not be had or booted; the message says what is
    missing and how to get it."""

    exit_status = 4
